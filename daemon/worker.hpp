// Worker: fusion for a share of the runners, on a thread of its own (run()) or, with
// pipeline.workers = 0, on the ingest thread (poll()). It owns the RunnerSessions of the
// runners routed to it (runner index mod worker count), feeds them samples from its input
// ring, and passes their outputs on through its output ring; after each input item that made
// outputs it calls the OutputConsumer (the Publisher, which then mostly publishes them on
// this thread: publisher.hpp).
//
// Thread ownership: run() on the worker's own thread, or poll() on the ingest thread (with
// pipeline.workers = 0 there is one Worker and no worker thread); accessors from any thread.
// Per sample: no allocation, no lock, no log. Sessions are created and removed only when a
// ConfigChange arrives in-band (start-up and SIGHUP), which may allocate.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "daemon/doorbell.hpp"
#include "daemon/histogram.hpp"
#include "daemon/spsc_ring.hpp"
#include "daemon/station_gauges.hpp"
#include "daemon/work_item.hpp"
#include "kneeload/fusion/session.hpp"
#include "kneeload/proto/counter.hpp"

namespace kneeload::daemon {

struct WorkerCounters {
  proto::Counter samples;
  proto::Counter outputs;
  proto::Counter dropped_output_ring_full;  // outputs lost: publisher ring full
  proto::Counter dropped_rule_event_overflow;  // rule events beyond a session's event buffer
  proto::Counter dropped_late;              // samples that arrived after newer ones were fused
  proto::Counter dropped_resent;            // samples a device sent again after they were fused
  proto::Counter dropped_unknown_runner;    // samples for a runner this worker has no session for
  proto::Counter progress;                  // poll() passes (up to 64 items each), for the watchdog
  // Folded from the sessions' SessionLive (lifetime counts of the runners' filters and clocks).
  proto::Counter knee_gated;
  proto::Counter shank_gated;
  proto::Counter force_gated;
  proto::Counter clock_jumps;
  proto::Counter reorder_early;          // samples released before their window: capacity too small
  proto::Counter loading_rate_withheld;  // steps whose stance outlasted the force trace
  proto::Counter ml_excursion_withheld;  // steps whose stance outlasted the CoP trace
  // One sample in kFusionTimingEvery is timed (two vDSO clock reads), so the histogram costs
  // the other samples nothing but a counter test.
  SingleWriterHistogram fusion_time = make_fusion_histogram();
  // Per output a frame released: that frame's arrival → this worker handed the output to the
  // publisher's ring (the wait in the input ring and the fusion). With the publisher's
  // latency histogram (arrival → PUB socket) it splits the pipeline's latency by thread.
  SingleWriterHistogram handoff_latency = make_latency_histogram();
};

inline constexpr std::uint32_t kFusionTimingEvery = 16;

class Worker final : private fusion::OutputSink {
 public:
  // checkpoint_interval_us > 0: every open session's totals go to the output ring that often
  // (worker clock) as a SessionCheckpoint for the store; 0: never (no store).
  Worker(int index, int worker_count, SpscRing<WorkItem>& input, Doorbell& input_bell,
         SpscRing<OutItem>& output, OutputConsumer& consumer, const Registry& initial,
         StationGauges* station_gauges, std::int64_t checkpoint_interval_us = 0);

  // Thread body; returns after a DrainMarker, once every session has emitted its summary and
  // the marker has been passed to the publisher.
  void run();

  // One turn of run() without the sleep, for a worker that runs on another thread's loop
  // (pipeline.workers = 0: the ingest thread fuses what it has just pushed). Reads the clock,
  // runs the idle sweep and checkpoints when due, then takes up to max_items from the ring.
  // kIdle: the ring is empty and the consumer has been told of every output; kMore: items are
  // left; kDrained: a DrainMarker was taken (as run() returning).
  enum class PollResult { kIdle, kMore, kDrained };
  PollResult poll(int max_items);
  // Worker clock (steady µs) of the next idle sweep or checkpoint: a poll() at or after it
  // runs them. The caller of poll() wakes by then even without input.
  std::int64_t next_timer_us() const;
  // How long from now (steady_now_us()) until next_timer_us(); 0 if it is due.
  std::int64_t us_until_next_timer() const;

  const WorkerCounters& counters() const { return counters_; }
  std::uint64_t generation_seen() const { return generation_seen_.load(std::memory_order_acquire); }

 private:
  void apply(const Registry& registry);
  void on_sample(const fusion::Sample& sample);
  void on_stale(const StaleChange& change);
  void on_history(const HistoryUpdate& update);
  // Queues a SessionCheckpoint per open session whose step count moved since the last one.
  void checkpoint_sessions();
  // OutputSink: a session's output goes straight into the ring; a full ring drops and counts,
  // except while draining, when nothing new arrives and waiting loses nothing.
  void emit(const fusion::Output& output) override;
  void push_output_blocking(const OutItem& item);
  // Tells the consumer when something was pushed since it was last told.
  void announce_outputs();
  // Fuses what the reorder windows of quiet runners still hold (see kMaxSweepIntervalUs in
  // worker.cpp).
  void flush_idle_sessions(std::int64_t now_us);
  std::int64_t sweep_interval_us() const;
  // Folds a session's own loss and health counters into this worker's (single-writer)
  // counters, and its open-session totals into its station's gauges.
  void fold_counters(std::size_t runner);

  int index_;
  int worker_count_;
  SpscRing<WorkItem>& input_;
  Doorbell& input_bell_;
  SpscRing<OutItem>& output_;
  OutputConsumer& consumer_;
  std::vector<std::unique_ptr<fusion::RunnerSession>> sessions_;  // by runner index
  std::vector<std::int64_t> last_fed_us_;  // by runner index: worker clock of the last sample
  std::vector<fusion::SessionCounters> folded_;  // by runner index: counts already folded
  std::vector<fusion::SessionLive> folded_live_;  // by runner index: health counts already folded
  StationGauges* station_gauges_;                 // by station index
  std::uint32_t timing_countdown_ = kFusionTimingEvery;
  int pushed_unannounced_ = 0;  // output ring items pushed since consumer_ was last told
  std::vector<std::uint64_t> checkpointed_steps_;  // by runner index: steps at the last checkpoint
  std::int64_t checkpoint_interval_us_;
  std::int64_t next_checkpoint_us_ = 0;
  std::int64_t batch_now_us_ = 0;          // worker clock, read once per batch, not per sample
  std::int64_t next_idle_check_us_ = 0;
  std::int64_t idle_flush_us_ = 0;         // the registry's pipeline.idle_flush_ms, set by apply()
  bool draining_ = false;
  WorkerCounters counters_;
  std::atomic<std::uint64_t> generation_seen_{0};
};

}  // namespace kneeload::daemon
