// The control plane: the main thread's Boost.Asio loop around the Pipeline.
// SIGTERM/SIGINT drain and exit 0; SIGHUP reloads the registry and thresholds (a bad file is
// refused and the running one kept); timers drive stale-device detection, the rate-limited
// rejection log, systemd notification (READY, STATUS, WATCHDOG, STOPPING) and old-generation
// retirement.
#pragma once

#include <string>

#include "daemon/config.hpp"

namespace kneeload::daemon {

struct DaemonOptions {
  std::string config_path;
  Overrides overrides;
  std::string endpoints_file;  // if set, the bound endpoints are written here after start-up
};

// Exit codes: 0 clean drain; 1 drain deadline missed or runtime failure; 2 bad config or
// start-up failure.
int run_daemon(const DaemonOptions& options);

}  // namespace kneeload::daemon
