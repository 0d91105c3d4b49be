// What bench/e2e reads from a running kneeloadd from outside: its counters from the Prometheus
// endpoint (a plain HTTP/1.0 GET) and its memory from /proc.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace kneeload::bench {

// A histogram's _sum (seconds) and _count, summed over its series.
struct HistogramTotals {
  double sum_s = 0;
  double count = 0;
  // The mean observation since `before`, in seconds; 0 when nothing was observed.
  double mean_s_since(const HistogramTotals& before) const {
    return count > before.count ? (sum_s - before.sum_s) / (count - before.count) : 0.0;
  }
};

// Sums over each family's series (README "Metrics").
struct DaemonCounters {
  double frames_received = 0;
  double samples_ingested = 0;   // kneeload_samples_ingested_total, every kind
  double samples_fused = 0;      // kneeload_samples_fused_total
  double dropped = 0;            // kneeload_dropped_total, every stage and reason
  double dropped_ingest = 0;     // ... {stage="ingest"}: accepted but never fused
  double frames_rejected = 0;
  double samples_rejected = 0;
  // kneeload_fusion_duration_seconds: one sample in 16 is timed in the workers.
  HistogramTotals fusion;
  // Outputs published (kneeload_output_age_seconds_count) and of those, the ones no arrival
  // released (kneeload_outputs_timer_released_total): the idle-flush regime, if many.
  double outputs = 0;
  double outputs_timer_released = 0;
  // kneeload_publish_latency_seconds (frame arrival -> PUB socket) and its workers' part,
  // kneeload_worker_handoff_latency_seconds (-> the publisher's ring).
  HistogramTotals latency;
  HistogramTotals handoff;
  std::map<std::string, double> series;  // every drop and reject series, by its full name

  double rejected() const { return frames_rejected + samples_rejected; }
};

// GET http://host_port/metrics and parse it. nullopt when the endpoint does not answer 200.
std::optional<DaemonCounters> scrape(const std::string& host_port);

// "name{labels}" of the drop and reject series that grew from `before` to `after`, with how much.
std::string grown_series(const DaemonCounters& before, const DaemonCounters& after);

struct Memory {
  std::int64_t rss_kib = 0;  // VmRSS
  std::int64_t hwm_kib = 0;  // VmHWM: the peak
};
std::optional<Memory> read_memory(pid_t pid);

// User + system CPU time the process has used, all threads (/proc/PID/stat).
std::optional<double> read_cpu_seconds(pid_t pid);

}  // namespace kneeload::bench
