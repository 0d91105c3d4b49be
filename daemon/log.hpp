// One-line log records to stderr ("LEVEL component: message"), which journald collects.
// Control-plane only: pipeline threads never log; they count, and the control loop reports
// the counts (rate-limited) from the main thread.
#pragma once

#include <chrono>
#include <cstdarg>

namespace kneeload::daemon {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// Sets the lowest level written (default kInfo). Call before starting threads.
void set_log_level(LogLevel level);

// printf-style; the record is written with one write(2) so lines from threads do not interleave.
void log(LogLevel level, const char* component, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));

// Allows at most one event per interval; tells how many were suppressed in between.
class RateLimiter {
 public:
  explicit RateLimiter(std::chrono::steady_clock::duration interval) : interval_(interval) {}
  // Returns true iff the caller may log now; *suppressed gets the count held back since the
  // last allowed event.
  bool allow(std::chrono::steady_clock::time_point now, unsigned long* suppressed);

 private:
  std::chrono::steady_clock::duration interval_;
  std::chrono::steady_clock::time_point last_{};
  bool ever_ = false;
  unsigned long suppressed_ = 0;
};

}  // namespace kneeload::daemon
