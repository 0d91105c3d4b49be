// StoreWriter: the history store's own thread. It takes what the publisher hands it (steps,
// risk events, summaries, and the workers' session checkpoints) from one SPSC ring and writes
// them in batched transactions, off the hot path: fusion never waits for the disk. A full ring
// drops at the publisher (store.ring_full); a failed transaction (a full disk, an I/O error) is
// rolled back, its records counted as store.write_failed, and the daemon fuses on.
//
// Session lifecycle as the store sees it: a runner's first step opens a session row, each
// checkpoint writes its running totals (so a kill -9 loses at most one checkpoint interval),
// the summary closes it. After each close the runner's history (R4, R5, R9, R10, ACWR) is
// computed here and queued for the main thread, which hands it to the runner's worker in-band.
//
// Thread ownership: run() on the store thread; take_history() and last_error() on the main
// thread (a mutex guards that hand-off: neither thread is on the hot path); counters anywhere.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "daemon/doorbell.hpp"
#include "daemon/registry.hpp"
#include "daemon/spsc_ring.hpp"
#include "daemon/store/history_store.hpp"
#include "daemon/work_item.hpp"
#include "kneeload/proto/counter.hpp"

namespace kneeload::daemon {

struct StoreCounters {
  proto::Counter records;       // records written (committed)
  proto::Counter write_failed;  // records lost in failed transactions
  proto::Counter transactions;  // committed
  proto::Counter progress;      // loop iterations, for the watchdog
};

class StoreWriter {
 public:
  StoreWriter(std::unique_ptr<store::HistoryStore> store, SpscRing<StoreItem>& ring, Doorbell& doorbell,
              const Names& names, double checkpoint_interval_s, const store::BaselineWindow& baseline);
  ~StoreWriter();

  // Thread body; returns after the DrainMarker, once everything before it is committed.
  void run();

  // Histories computed since the last call (main thread).
  std::vector<HistoryUpdate> take_history();
  // The latest failure's message and how many failures there were in total (main thread logs).
  std::string last_error(std::uint64_t* failures);
  // The runner's latest acute:chronic ratio (uncoupled EWMA of daily km), NaN when unknown:
  // for the metrics endpoint. Any thread.
  double acute_chronic_ratio(std::uint32_t runner) const;

  const StoreCounters& counters() const { return counters_; }

 private:
  struct Open {
    bool open = false;
    std::int64_t db_id = 0;  // 0: not (or no longer) in the database
    std::int64_t start_unix_us = 0;
    std::int64_t start_t_us = 0;
    std::uint32_t station = 0;
    const char* model_id = nullptr;
    bool opened_in_batch = false;
  };

  void handle(const StoreItem& item);
  std::int64_t ensure_open(std::uint32_t runner, std::uint32_t station, std::int64_t start_t_us,
                           const char* model_id);
  void begin_if_needed();
  void commit();
  void failed(const store::StoreError& e);
  void after_close(std::uint32_t runner);

  std::unique_ptr<store::HistoryStore> store_;
  SpscRing<StoreItem>& ring_;
  Doorbell& doorbell_;
  const Names& names_;
  double checkpoint_interval_s_;
  store::BaselineWindow baseline_;
  std::vector<Open> open_;                 // by runner index
  std::vector<std::uint32_t> closed_;      // runners closed in the current batch
  std::vector<std::uint32_t> touched_;     // runners whose session row was created in this batch
  bool in_tx_ = false;
  std::uint64_t batch_records_ = 0;
  std::int64_t batch_started_us_ = 0;
  bool commit_now_ = false;
  std::unique_ptr<std::atomic<double>[]> ratios_;
  StoreCounters counters_;

  std::mutex mutex_;  // guards history_out_, last_error_, failures_
  std::vector<HistoryUpdate> history_out_;
  std::string last_error_;
  std::uint64_t failures_ = 0;
};

// TrainingHistory's hooks from a stored history (at start-up and reload, on the main thread).
void apply_history(const store::RunnerHistory& h, fusion::TrainingHistory& out);
// The same through the in-band HistoryUpdate (store thread → worker). No allocation.
HistoryUpdate history_update(std::uint32_t runner, const store::RunnerHistory& h);
void apply_history_update(const HistoryUpdate& u, fusion::TrainingHistory& out);

}  // namespace kneeload::daemon
