// Publisher: owns the ZeroMQ PUB socket. It takes outputs from every worker's ring, encodes
// them (proto::OutputEncoder) and sends [topic, payload]; its own thread also sends the status
// heartbeat. A per-topic sequence number lets each subscriber see its own losses.
//
// Who publishes: whichever thread holds the publishing right, an atomic flag taken with a
// non-blocking exchange. A worker (on its own thread, or on the ingest thread with
// pipeline.workers = 0) that has pushed outputs calls outputs_ready(): if the right is
// free it publishes what every ring holds, then lets go; if another thread holds it, that
// thread re-checks the rings after letting go and publishes what it finds (a seq_cst fence on
// each side, as in Doorbell), so no output waits for a wake-up in the common case. A worker
// stops after kDrainRounds passes (publisher.cpp) and leaves the rest to the publisher thread,
// woken for it. Why: handing outputs to a sleeping publisher thread cost a futex wake per batch
// and ~30 µs of the p50 latency at 0.9 M samples/s (bench/RESULTS.md, "one hop fewer"); the
// wire contract (one PUB endpoint) is kept. The flag is a try-lock nobody waits on: a thread
// that finds it taken goes on with its work. libzmq allows a socket to move between threads with
// a full memory barrier in between, which the flag's acquire/release and the fences give.
//
// Thread ownership: outputs_ready() from any thread that runs a Worker (a worker thread, or
// the ingest thread with pipeline.workers = 0), run() on the publisher thread;
// the socket, encoder, sequences, station state and the rings' consumer side only while holding
// the right; counters readable from any thread (their single writer at any moment is the holder,
// except `progress`, which only the publisher thread writes).
// Per output: no allocation of ours, no lock, no log. (libzmq itself allocates one block per
// message over 33 bytes: ENGINEERING.md §1a; that is outside the pipeline's guarantee.)
#pragma once

#include <zmq.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <vector>

#include "daemon/doorbell.hpp"
#include "daemon/histogram.hpp"
#include "daemon/station_gauges.hpp"
#include "daemon/registry.hpp"
#include "daemon/spsc_ring.hpp"
#include "daemon/work_item.hpp"
#include "kneeload/proto/codec.hpp"

namespace kneeload::daemon {

// Supplies the heartbeat's contents; called on the publisher thread only.
class StatusSource {
 public:
  virtual ~StatusSource() = default;
  virtual proto::StatusReport status(bool draining) = 0;
};

struct PublisherCounters {
  proto::Counter published;        // messages sent, status included
  proto::Counter dropped_hwm;      // refused by the PUB socket (only with publish.nodrop)
  proto::Counter dropped_encode;   // larger than the encode buffer (a bug if ever non-zero)
  proto::Counter progress;         // loop iterations, for the watchdog
  std::array<proto::Counter, proto::kTopicCount> published_by_topic;
  // Risk-event onsets by rule (fusion::rule_slot) and severity (1…3; index 0 unused).
  std::array<std::array<proto::Counter, 4>, fusion::kAllRules.size()> risk_onsets;
  // Arrival of the frame that released an output → handed to the PUB socket (timer-released
  // outputs are not in it), and arrival of the output's source sample → the same moment.
  SingleWriterHistogram latency = make_latency_histogram();
  SingleWriterHistogram age = make_age_histogram();
  // Outputs published that no arrival released: the idle flush (pipeline.idle_flush_ms), a
  // stale device or the drain released them, so they are in `age` but not in `latency`.
  proto::Counter timer_released;
  proto::Counter dropped_store;    // records the history store's ring had no room for
};

// Where the publisher hands steps, risk events, summaries and checkpoints on to the history
// store's writer thread (daemon/store/store_writer.hpp); absent when the store is off.
struct StorePort {
  SpscRing<StoreItem>* ring = nullptr;
  Doorbell* doorbell = nullptr;
};

class Publisher final : public OutputConsumer {
 public:
  Publisher(zmq::socket_t socket, std::vector<SpscRing<OutItem>*> rings, Doorbell& doorbell,
            const Names& names, StatusSource& status, std::chrono::microseconds heartbeat,
            StationGauges* station_gauges, StorePort store = {});

  // Thread body: the heartbeat, the store's doorbell, and whatever outputs no worker published
  // (a worker gives up after kDrainRounds, see publisher.cpp). Returns once every ring has
  // delivered its DrainMarker and the final status (draining = true) has been sent, still
  // holding the publishing right, so a late outputs_ready() does nothing.
  void run();

  // Any thread that has pushed into an output ring. Never waits.
  void outputs_ready() override;

  const PublisherCounters& counters() const { return counters_; }

 private:
  void publish(const fusion::Output& output);
  void publish_status(bool draining);
  // The floor dashboard's per-station view of what passes: last step, current risk level.
  void update_gauges(const fusion::Output& output);
  bool send(std::string_view topic, std::size_t payload_size);
  bool try_acquire() { return !busy_.exchange(true, std::memory_order_acquire); }
  // Holder: lets go. True when an output ring is not empty afterwards: its worker may have
  // found the right taken and left the outputs to us.
  bool release();
  // Holder: publishes up to kItemsPerRingVisit items of each ring; true if there were any.
  bool drain_pass();
  // Any thread: the publisher thread runs its loop once more, even if it was about to sleep.
  void wake_publisher_thread();
  // Never blocks fusion: a full store ring drops the record and counts it (store.ring_full).
  void to_store(const StoreItem& item);

  zmq::socket_t socket_;
  std::vector<SpscRing<OutItem>*> rings_;
  Doorbell& doorbell_;
  const Names& names_;
  StatusSource& status_;
  std::chrono::microseconds heartbeat_;
  proto::OutputEncoder encoder_;
  std::vector<std::byte> buffer_;
  std::vector<std::uint64_t> seq_;  // [station * kTopicCount + topic]
  std::uint64_t status_seq_ = 0;
  StationGauges* station_gauges_;  // by station index
  // By station: the severity of each rule while active (0 when clear), for risk_level.
  std::vector<std::array<std::uint8_t, fusion::kAllRules.size()>> active_rules_;
  StorePort store_;
  int store_unrung_ = 0;  // records pushed since the store's doorbell was last rung
  // Set before a worker rings doorbell_ (it gave up after kDrainRounds, or passed the last
  // DrainMarker): the publisher thread's wait re-checks it, so a ring that comes while the
  // thread is still awake is not lost.
  std::atomic<bool> wake_{false};
  std::vector<char> drained_;  // by ring: its DrainMarker was seen
  std::size_t drained_count_ = 0;
  alignas(64) std::atomic<bool> busy_{false};  // the publishing right
  alignas(64) PublisherCounters counters_;
};

}  // namespace kneeload::daemon
