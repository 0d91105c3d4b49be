// The two clocks kneeloadctl records and paces by, in integer microseconds.
#pragma once

#include <chrono>
#include <cstdint>

namespace kneeload::ctl {

// steady_clock is CLOCK_MONOTONIC on Linux, the clock kneeloadd stamps arrivals with, so on
// one host a recorder's and a daemon's arrival times share an epoch.
inline std::int64_t steady_now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline std::int64_t unix_now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline std::chrono::milliseconds to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000.0 + 0.5));
}

}  // namespace kneeload::ctl
