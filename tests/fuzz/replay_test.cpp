// Reruns one fuzz target (linked into this binary) on its committed seed corpus and on every
// input the fuzzer once crashed on, in the normal builds: a fixed crash stays fixed without
// clang or libFuzzer, and the invariants the target checks hold for every seed. A broken check
// aborts the binary naming the input (fuzz_check.hpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace kneeload::fuzz {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> inputs_in(const fs::path& dir) {
  std::vector<fs::path> files;
  if (!fs::exists(dir)) return files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file() && entry.path().filename() != "README.md") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::size_t replay(const fs::path& dir) {
  std::size_t n = 0;
  for (const fs::path& file : inputs_in(dir)) {
    std::ifstream in(file, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    current_input() = file.string();
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    ++n;
  }
  current_input().clear();
  return n;
}

TEST(FuzzReplay, EverySeedPassesTheTargetsChecks) {
  const std::size_t n = replay(KNEELOAD_FUZZ_CORPUS_DIR);
  EXPECT_GE(n, 10u) << "the seed corpus in " << KNEELOAD_FUZZ_CORPUS_DIR << " is missing";
  std::cout << "[ replayed ] " << n << " seeds from " << KNEELOAD_FUZZ_CORPUS_DIR << '\n';
}

TEST(FuzzReplay, EveryInputTheFuzzerOnceCrashedOnPassesTheTargetsChecks) {
  const std::size_t n = replay(KNEELOAD_FUZZ_REGRESSION_DIR);
  std::cout << "[ replayed ] " << n << " regression inputs from " << KNEELOAD_FUZZ_REGRESSION_DIR << '\n';
}

}  // namespace
}  // namespace kneeload::fuzz
