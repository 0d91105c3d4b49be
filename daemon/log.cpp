#include "daemon/log.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdio>

namespace kneeload::daemon {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "DEBUG";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kWarn: return "WARN";
    case LogLevel::kError: return "ERROR";
  }
  return "?";
}
}  // namespace

void set_log_level(LogLevel level) { g_level.store(static_cast<int>(level)); }

void log(LogLevel level, const char* component, const char* fmt, ...) {
  if (static_cast<int>(level) < g_level.load(std::memory_order_relaxed)) return;
  char line[1024];
  int n = std::snprintf(line, sizeof line, "%s %s: ", level_name(level), component);
  if (n < 0) return;
  std::size_t used = static_cast<std::size_t>(n) < sizeof line ? static_cast<std::size_t>(n) : sizeof line - 1;
  va_list args;
  va_start(args, fmt);
  const int m = std::vsnprintf(line + used, sizeof line - used, fmt, args);
  va_end(args);
  if (m > 0) used += static_cast<std::size_t>(m) < sizeof line - used ? static_cast<std::size_t>(m) : sizeof line - used - 1;
  if (used >= sizeof line - 1) used = sizeof line - 2;  // truncated record still ends the line
  line[used++] = '\n';
  // A failed write to stderr has nowhere to be reported; ignoring it is the only option.
  [[maybe_unused]] const ssize_t w = ::write(STDERR_FILENO, line, used);
}

bool RateLimiter::allow(std::chrono::steady_clock::time_point now, unsigned long* suppressed) {
  if (ever_ && now - last_ < interval_) {
    ++suppressed_;
    return false;
  }
  ever_ = true;
  last_ = now;
  if (suppressed != nullptr) *suppressed = suppressed_;
  suppressed_ = 0;
  return true;
}

}  // namespace kneeload::daemon
