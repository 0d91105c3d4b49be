// kneeloadd: command line → DaemonOptions → run_daemon(). Everything else lives in daemon/.
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "daemon/control.hpp"
#include "daemon/log.hpp"

namespace {

constexpr const char* kUsage =
    "Usage: kneeloadd --config FILE [options]\n"
    "\n"
    "Real-time knee-load fusion daemon: ZeroMQ ingest, fusion workers, ZeroMQ publish.\n"
    "\n"
    "Options:\n"
    "  --config FILE         TOML configuration (see deploy/config/kneeloadd.example.toml)\n"
    "  --ingest ENDPOINT     bind ingest here instead of the config's (repeatable)\n"
    "  --publish ENDPOINT    bind the PUB socket here instead of the config's\n"
    "  --metrics ADDRESS     metrics address host:port (\"\" disables)\n"
    "  --endpoints-file PATH write the bound endpoints (ingest=..., publish=...) once started\n"
    "  --state-dir DIR       keep the runner history here instead of the config's state_dir\n"
    "                        (\"\" runs without history)\n"
    "  --log-level LEVEL     debug, info (default), warn or error\n"
    "  --help                this text\n"
    "  --version             print the version\n"
    "\n"
    "Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP reloads devices, runners and thresholds.\n"
    "Exit codes: 0 clean stop, 1 runtime failure, 2 bad arguments, config or start-up failure.\n";

int usage_error(const char* what, const char* arg) {
  std::fprintf(stderr, "kneeloadd: %s%s%s\nTry 'kneeloadd --help'.\n", what, arg ? ": " : "", arg ? arg : "");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using kneeload::daemon::LogLevel;
  kneeload::daemon::DaemonOptions options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) return nullptr;
      (void)name;
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--version") {
      std::printf("kneeloadd %s\n", KNEELOAD_VERSION);
      return 0;
    } else if (arg == "--config" || arg == "--ingest" || arg == "--publish" || arg == "--metrics" ||
               arg == "--endpoints-file" || arg == "--log-level" || arg == "--state-dir") {
      const char* v = value(argv[i]);
      if (v == nullptr) return usage_error("missing value for", argv[i]);
      if (arg == "--config") options.config_path = v;
      if (arg == "--ingest") options.overrides.ingest.emplace_back(v);
      if (arg == "--publish") options.overrides.publish = v;
      if (arg == "--metrics") options.overrides.metrics = v;
      if (arg == "--endpoints-file") options.endpoints_file = v;
      if (arg == "--state-dir") options.overrides.state_dir = v;
      if (arg == "--log-level") {
        const std::string_view l = v;
        if (l == "debug") kneeload::daemon::set_log_level(LogLevel::kDebug);
        else if (l == "info") kneeload::daemon::set_log_level(LogLevel::kInfo);
        else if (l == "warn") kneeload::daemon::set_log_level(LogLevel::kWarn);
        else if (l == "error") kneeload::daemon::set_log_level(LogLevel::kError);
        else return usage_error("--log-level expects debug, info, warn or error, got", v);
      }
    } else {
      return usage_error("unknown argument", argv[i]);
    }
  }
  if (options.config_path.empty()) return usage_error("--config FILE is required", nullptr);
  return kneeload::daemon::run_daemon(options);
}
