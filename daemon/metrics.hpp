// The Prometheus endpoint (pull, prometheus-cpp's civetweb Exposer on --metrics / metrics.address).
//
// Nothing on the hot path touches prometheus-cpp: the pipeline threads keep single-writer
// counters, histograms and gauges of their own (proto::Counter, SingleWriterHistogram,
// StationGauges), and this collector reads them when Prometheus scrapes, on civetweb's thread,
// and builds the metric families then. So the hot path has no lock and no label lookup, and a
// station removed by a reload simply is not in the next scrape.
//
// Thread ownership: constructed and destroyed by the main thread, before the pipeline is
// destroyed; collect() runs on the scrape thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

namespace prometheus {
class Exposer;
}

namespace kneeload::daemon {

class Pipeline;

// Counts the control loop (main thread) keeps for metrics.
struct ControlCounters {
  std::atomic<std::uint64_t> reloads_applied{0};
  std::atomic<std::uint64_t> reloads_refused{0};
  std::int64_t start_unix_s = 0;
};

// Every family the daemon exports, read from the pipeline now. Any thread.
std::vector<prometheus::MetricFamily> collect_metrics(const Pipeline& pipeline,
                                                      const ControlCounters& control);

struct MetricsEndpoint {
  std::string address;          // "host:port"; port 0 picks a free one
  std::string basic_auth_file;  // "user:password"; empty: no authentication
};

class MetricsServer {
 public:
  // Binds the endpoint. Throws StartError if it cannot (address in use, unreadable auth file).
  // No TLS: Debian 12's civetweb resets the TLS handshake under OpenSSL 3 (tried with a
  // self-signed certificate and curl); README: Metrics says how to put TLS in front.
  MetricsServer(const MetricsEndpoint& endpoint, const Pipeline& pipeline, const ControlCounters& control);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // "host:port" with the port actually bound.
  const std::string& bound_address() const { return bound_; }

 private:
  class Collector;
  std::shared_ptr<Collector> collector_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string bound_;
  struct Knock;  // where the destructor knocks to end civetweb's listening poll (metrics.cpp)
  std::unique_ptr<Knock> knock_;
};

}  // namespace kneeload::daemon
