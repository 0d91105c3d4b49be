#include "daemon_probe.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>


#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string_view>
#include <utility>

namespace kneeload::bench {
namespace {

std::optional<std::string> http_get(const std::string& host_port, const std::string& path) {
  const auto colon = host_port.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(std::atoi(host_port.c_str() + colon + 1)));
  if (::inet_pton(AF_INET, host_port.substr(0, colon).c_str(), &addr.sin_addr) != 1) return std::nullopt;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return std::nullopt;
  }
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: " + host_port + "\r\nConnection: close\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return std::nullopt;
  }
  std::string raw;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  int status = 0;
  if (std::sscanf(raw.c_str(), "HTTP/%*s %d", &status) != 1 || status != 200) return std::nullopt;
  const auto body = raw.find("\r\n\r\n");
  if (body == std::string::npos) return std::nullopt;
  return raw.substr(body + 4);
}

bool is_family(std::string_view series, std::string_view family) {
  return series.substr(0, family.size()) == family &&
         (series.size() == family.size() || series[family.size()] == '{');
}

// Adds a _sum or _count series of a histogram DaemonCounters keeps; false for any other series.
bool add_histogram(std::string_view series, double value, DaemonCounters& c) {
  const std::pair<std::string_view, HistogramTotals*> histograms[] = {
      {"kneeload_fusion_duration_seconds", &c.fusion},
      {"kneeload_publish_latency_seconds", &c.latency},
      {"kneeload_worker_handoff_latency_seconds", &c.handoff},
  };
  for (const auto& [name, totals] : histograms) {
    if (series.substr(0, name.size()) != name) continue;
    const std::string_view part = series.substr(name.size());
    if (is_family(part, "_sum")) {
      totals->sum_s += value;
      return true;
    }
    if (is_family(part, "_count")) {
      totals->count += value;
      return true;
    }
  }
  return false;
}

}  // namespace

std::optional<DaemonCounters> scrape(const std::string& host_port) {
  const std::optional<std::string> body = http_get(host_port, "/metrics");
  if (!body) return std::nullopt;
  DaemonCounters c;
  std::size_t begin = 0;
  while (begin < body->size()) {
    std::size_t end = body->find('\n', begin);
    if (end == std::string::npos) end = body->size();
    const std::string_view line(body->data() + begin, end - begin);
    begin = end + 1;
    if (line.empty() || line[0] == '#') continue;
    const std::size_t space = line.rfind(' ');
    if (space == std::string_view::npos) continue;
    const std::string_view series = line.substr(0, space);
    // Only kneeload_ families are read, and those are plain counters: parse the value.
    if (series.substr(0, 9) != "kneeload_") continue;
    const double value = std::strtod(std::string(line.substr(space + 1)).c_str(), nullptr);
    if (add_histogram(series, value, c)) continue;
    if (is_family(series, "kneeload_frames_received_total")) {
      c.frames_received += value;
    } else if (is_family(series, "kneeload_samples_ingested_total")) {
      c.samples_ingested += value;
    } else if (is_family(series, "kneeload_samples_fused_total")) {
      c.samples_fused += value;
    } else if (is_family(series, "kneeload_dropped_total")) {
      c.dropped += value;
      if (series.find("stage=\"ingest\"") != std::string_view::npos) c.dropped_ingest += value;
      c.series[std::string(series)] = value;
    } else if (is_family(series, "kneeload_frames_rejected_total")) {
      c.frames_rejected += value;
      c.series[std::string(series)] = value;
    } else if (is_family(series, "kneeload_samples_rejected_total")) {
      c.samples_rejected += value;
      c.series[std::string(series)] = value;
    } else if (is_family(series, "kneeload_output_age_seconds_count")) {
      c.outputs += value;
    } else if (is_family(series, "kneeload_outputs_timer_released_total")) {
      c.outputs_timer_released += value;
    }
  }
  return c;
}

std::string grown_series(const DaemonCounters& before, const DaemonCounters& after) {
  std::string out;
  for (const auto& [name, value] : after.series) {
    const auto it = before.series.find(name);
    const double delta = value - (it == before.series.end() ? 0.0 : it->second);
    if (delta <= 0.0) continue;
    char buf[32];
    std::snprintf(buf, sizeof buf, " +%.0f", delta);
    if (!out.empty()) out += ", ";
    out += name + buf;
  }
  return out;
}

std::optional<Memory> read_memory(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  if (!in) return std::nullopt;
  Memory m;
  std::string line;
  bool rss = false, hwm = false;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) rss = std::sscanf(line.c_str(), "VmRSS: %ld", &m.rss_kib) == 1;
    if (line.rfind("VmHWM:", 0) == 0) hwm = std::sscanf(line.c_str(), "VmHWM: %ld", &m.hwm_kib) == 1;
  }
  if (!rss || !hwm) return std::nullopt;
  return m;
}

std::optional<double> read_cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(in, text)) return std::nullopt;
  // Fields after the command name, which is in parentheses and may hold spaces: state is
  // field 3, utime and stime fields 14 and 15 (proc(5)).
  const std::size_t close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int n = 3; n <= 15 && fields >> field; ++n) {
    if (n == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (n == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  const long ticks = ::sysconf(_SC_CLK_TCK);
  if (ticks <= 0) return std::nullopt;
  return static_cast<double>(utime + stime) / static_cast<double>(ticks);
}

}  // namespace kneeload::bench
