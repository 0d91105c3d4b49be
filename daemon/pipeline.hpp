// Pipeline: owns the ZeroMQ context, the sockets, the rings and the threads
// (ingest → N workers → publisher) and the registry generations they share.
//
// Thread ownership: constructed, reloaded and polled by the main (control) thread only.
// The pipeline threads talk to it through rings and relaxed counters, never locks.
#pragma once

#include <zmq.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "daemon/config.hpp"
#include "daemon/doorbell.hpp"
#include "daemon/ingest.hpp"
#include "daemon/publisher.hpp"
#include "daemon/registry.hpp"
#include "daemon/spsc_ring.hpp"
#include "daemon/station_gauges.hpp"
#include "daemon/store/sqlite_store.hpp"
#include "daemon/store/store_writer.hpp"
#include "daemon/work_item.hpp"
#include "daemon/worker.hpp"
#include "daemon/zap.hpp"

namespace kneeload::daemon {

// A socket could not be set up (bad endpoint, address in use): start-up fails.
class StartError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A (stage, reason) drop count, for status, logs and metrics.
struct DropCount {
  const char* name;  // "ingest.worker_ring_full"
  std::uint64_t value;
};

inline constexpr std::size_t kDropReasonCount = 11;

// Totals for logs, STATUS= and the final report.
struct PipelineTotals {
  std::uint64_t frames_received = 0;
  std::uint64_t frames_accepted = 0;
  std::uint64_t samples_accepted = 0;
  std::uint64_t samples_fused = 0;  // taken from the rings by the workers (kneeload_samples_fused_total)
  std::uint64_t frames_rejected = 0;
  std::uint64_t samples_rejected = 0;
  std::uint64_t dropped = 0;
  std::uint64_t published = 0;
};

class Pipeline final : public StatusSource {
 public:
  // Opens the runner store (when config.store_active(); recovering sessions a crash left open),
  // binds every socket, then starts the threads. Throws StartError or ConfigError; a store that
  // cannot be used is a StartError naming the file, unless store.required is false.
  explicit Pipeline(const Config& config);
  ~Pipeline() override;
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Endpoints as bound (a tcp "*" port resolved), for logs and the endpoints file.
  const std::vector<std::string>& ingest_endpoints() const { return ingest_endpoints_; }
  const std::string& publish_endpoint() const { return publish_endpoint_; }

  // SIGHUP: builds and hands over a new registry generation. Throws ConfigError, in which case
  // the running registry stays. Restart-only keys are ignored by the caller (see control.cpp).
  void reload(const Config& next);
  std::uint64_t generation() const { return generation_; }

  // Control-loop tick: stale-device detection and retirement of old registry generations.
  void tick(std::int64_t now_steady_us);

  // Asks for a drain: everything accepted so far is fused and published, then threads end.
  void request_drain();
  // True once the publisher has sent its final status and the store has committed everything
  // it was handed; join() then returns at once.
  bool finished() const {
    return finished_.load(std::memory_order_acquire) && store_finished_.load(std::memory_order_acquire);
  }
  void join();

  // One progress counter per pipeline thread. Idle threads still count their idle wake-ups
  // (at least every 100 ms), so a counter that stands still means that thread is wedged.
  std::vector<std::uint64_t> thread_progress() const;

  PipelineTotals totals() const;
  std::array<DropCount, kDropReasonCount> drops() const;
  std::size_t stale_devices() const { return stale_count_; }
  std::size_t active_devices() const;
  Ingest& ingest() { return *ingest_; }
  // Whether runner history is being kept (store on and usable).
  bool store_active() const { return store_writer_ != nullptr; }
  // Records the store has committed since start (0 when off).
  std::uint64_t store_records() const {
    return store_writer_ ? store_writer_->counters().records.get() : 0;
  }
  // The runner's latest uncoupled EWMA acute:chronic ratio (MODEL.md §4), NaN if unknown: a
  // metric only. Any thread.
  double acute_chronic_ratio(std::uint32_t runner) const {
    return store_writer_ ? store_writer_->acute_chronic_ratio(runner) : store::kUnknown;
  }

  // --- For the metrics collector, on the scrape thread: read-only views of counters the
  // pipeline threads write (single-writer atomics) and snapshots the main thread keeps.
  const Ingest& ingest() const { return *ingest_; }
  // CURVE's ZAP handler; nullptr without CURVE.
  ZapHandler* zap() { return zap_.get(); }
  const ZapHandler* zap() const { return zap_.get(); }
  const Publisher& publisher() const { return *publisher_; }
  const std::vector<std::unique_ptr<Worker>>& workers() const { return workers_; }
  struct RingView {
    const char* stage;  // "worker_input" (ingest → worker), "worker_output" (worker → publisher)
                        // or "store" (publisher → the runner store's thread)
    std::size_t index;
    std::size_t depth;
    std::size_t capacity;
  };
  std::vector<RingView> rings() const;
  struct StationView {
    std::uint32_t index;
    std::string name;
    std::uint32_t runner;  // the station's runner (one per station: the registry enforces it)
  };
  // The stations of the current registry generation: a removed station's series go with it.
  std::vector<StationView> stations() const;
  const StationGauges& station_gauges(std::uint32_t station) const { return station_gauges_[station]; }
  std::size_t configured_devices() const { return active_devices_snapshot_.load(std::memory_order_relaxed); }
  std::size_t streaming_devices() const { return streaming_snapshot_.load(std::memory_order_relaxed); }
  std::size_t stale_devices_snapshot() const { return stale_snapshot_.load(std::memory_order_relaxed); }
  std::uint64_t generation_snapshot() const { return generation_snapshot_.load(std::memory_order_relaxed); }

  proto::StatusReport status(bool draining) override;  // publisher thread

 private:
  bool push_command(const ControlCommand& command);
  void update_snapshots();
  void open_store();
  void store_runners(const Config& config);
  HistoryLookup history_lookup();
  void forward_history();

  Config config_;
  zmq::context_t context_{1};
  // Declared after the context (it holds a socket in it) and before the data sockets' owners,
  // so it is bound before they bind and destroyed after they close.
  std::unique_ptr<ZapHandler> zap_;
  std::vector<std::string> ingest_endpoints_;
  std::string publish_endpoint_;
  Names names_;
  std::vector<std::shared_ptr<const Registry>> generations_;  // oldest first; back() is current
  std::uint64_t generation_ = 1;

  SpscRing<ControlCommand> commands_{1024};
  std::vector<std::unique_ptr<SpscRing<WorkItem>>> worker_rings_;
  std::vector<std::unique_ptr<Doorbell>> worker_bells_;
  std::vector<std::unique_ptr<SpscRing<OutItem>>> output_rings_;
  Doorbell publisher_bell_;

  // The runner store: the main thread's own connection (start-up, reload look-ups) and the
  // writer thread with its ring. All null when the store is off.
  std::unique_ptr<store::SqliteStore> history_;
  std::unique_ptr<SpscRing<StoreItem>> store_ring_;
  Doorbell store_bell_;
  std::unique_ptr<StoreWriter> store_writer_;
  std::vector<HistoryUpdate> history_pending_;  // main thread: not yet taken by the ingest ring
  std::uint64_t store_failures_logged_ = 0;
  std::chrono::steady_clock::time_point store_error_logged_{};

  std::unique_ptr<Ingest> ingest_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<Publisher> publisher_;
  std::vector<std::thread> threads_;
  std::atomic<bool> finished_{false};
  std::atomic<bool> store_finished_{false};
  bool drain_requested_ = false;

  std::vector<bool> stale_;  // by device index, main thread only
  std::size_t stale_count_ = 0;
  std::size_t streaming_count_ = 0;  // heard from and not stale (consoles excluded)
  std::unique_ptr<StationGauges[]> station_gauges_;  // by station index

  mutable std::mutex stations_mu_;  // main thread (reload) vs scrape thread; never a pipeline thread
  std::vector<StationView> stations_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();

  std::atomic<std::size_t> active_devices_snapshot_{0};
  std::atomic<std::size_t> stale_snapshot_{0};
  std::atomic<std::size_t> streaming_snapshot_{0};
  std::atomic<std::uint64_t> generation_snapshot_{0};

  // Publisher-thread scratch for status(): sized once, so a heartbeat does not allocate.
  std::vector<proto::NamedCount> status_rejected_;
  std::vector<proto::NamedCount> status_dropped_;
};

}  // namespace kneeload::daemon
