// What the fuzz targets share: an invariant check that is never compiled out, and the name of
// the input being run, so a failed check in the corpus replay test names its file.
//
// Why abort() rather than a GoogleTest assertion: the same target source runs under libFuzzer,
// which saves the input that made the process die; the replay test (replay_test.cpp) reruns
// every saved input in the normal builds, where the abort fails the test with this message.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

namespace kneeload::fuzz {

// Set by the replay test before each input; empty under libFuzzer (it prints the input itself).
inline std::string& current_input() {
  static std::string name;
  return name;
}

[[noreturn]] inline void check_failed(const char* file, int line, const char* condition,
                                      const std::string& detail) {
  std::fprintf(stderr, "%s:%d: invariant broken: %s%s%s%s%s%s\n", file, line, condition,
               detail.empty() ? "" : " (", detail.c_str(), detail.empty() ? "" : ")",
               current_input().empty() ? "" : ", input ", current_input().c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace kneeload::fuzz

// KL_FUZZ_CHECK(cond, detail): detail is any expression convertible to std::string, evaluated
// only on failure.
#define KL_FUZZ_CHECK(cond, detail)                                         \
  do {                                                                      \
    if (!(cond)) ::kneeload::fuzz::check_failed(__FILE__, __LINE__, #cond, (detail)); \
  } while (false)
