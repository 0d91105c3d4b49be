// libFuzzer target: the config parser (parse_config) on arbitrary text.
//
// The contract under test (daemon/config.hpp): every refusal is a ConfigError whose file is the
// source name and whose message starts "FILE: "; nothing else is thrown, nothing crashes. A
// config it accepts must also be one the rest of the daemon takes without a second opinion:
//  - compared with itself it has no restart-only changes (a SIGHUP with the same file is a no-op);
//  - applying no overrides re-validates it without a refusal (start-up does exactly that);
//  - its registry builds (for tables small enough to build per input; the fields
//    check_registry_fits() promises are what build_registry() needs).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/config.hpp"
#include "daemon/registry.hpp"
#include "fuzz_check.hpp"

namespace kneeload::fuzz {
namespace {

constexpr const char* kSource = "fuzz.toml";
// build_registry() sizes its name tables from the limits (up to 1,000,000 each); above this the
// per-input allocation would dominate the fuzzer's time, and the code path is the same.
constexpr std::size_t kMaxTableToBuild = 4096;

void check_accepted(const daemon::Config& c) {
  KL_FUZZ_CHECK(c.source == kSource, c.source);
  KL_FUZZ_CHECK(c.pipeline.workers >= 0 && c.pipeline.workers <= 64, std::to_string(c.pipeline.workers));
  KL_FUZZ_CHECK(c.runners.size() <= c.pipeline.max_runners, "more runners than max_runners");
  KL_FUZZ_CHECK(c.devices.size() <= c.pipeline.max_devices, "more devices than max_devices");
  KL_FUZZ_CHECK(!c.ingest.endpoints.empty(), "no ingest endpoint");

  const std::vector<std::string> changes = daemon::restart_only_changes(c, c);
  KL_FUZZ_CHECK(changes.empty(), "restart-only change against itself: " + changes.front());

  daemon::Config copy = c;
  try {
    daemon::apply_overrides(copy, daemon::Overrides{});
  } catch (const daemon::ConfigError& e) {
    check_failed(__FILE__, __LINE__, "accepted config refused by apply_overrides with no overrides", e.what());
  }

  if (c.pipeline.max_devices <= kMaxTableToBuild && c.pipeline.max_runners <= kMaxTableToBuild &&
      c.pipeline.max_stations <= kMaxTableToBuild) {
    daemon::Names names(c.pipeline.max_devices, c.pipeline.max_runners, c.pipeline.max_stations);
    try {
      const auto registry = daemon::build_registry(c, names, 1);
      KL_FUZZ_CHECK(registry != nullptr, "no registry");
    } catch (const daemon::ConfigError& e) {
      check_failed(__FILE__, __LINE__, "accepted config refused by build_registry", e.what());
    }
  }
}

}  // namespace
}  // namespace kneeload::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kneeload;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    fuzz::check_accepted(daemon::parse_config(text, fuzz::kSource));
  } catch (const daemon::ConfigError& e) {
    KL_FUZZ_CHECK(e.file() == fuzz::kSource, e.what());
    KL_FUZZ_CHECK(std::string_view(e.what()).starts_with(std::string(fuzz::kSource) + ": "), e.what());
    KL_FUZZ_CHECK(!e.reason().empty(), e.what());
  }
  // Any other exception leaves this function: libFuzzer reports it as a crash.
  return 0;
}
