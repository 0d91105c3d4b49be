// Ingest: the thread that owns the ZeroMQ PULL socket. It receives each frame into one
// preallocated buffer, decodes and validates it (proto::FrameDecoder), and routes the accepted
// samples by runner to the fusion workers' rings. It also forwards control commands from the
// main thread in-band, so a reload or a stale-device notice is ordered with the samples.
//
// With pipeline.workers = 0 it also runs the one fusion worker itself (Worker::poll after each
// frame): no worker thread, no hand-off between threads, and the outputs are published from
// this thread.
//
// Thread ownership: run() on the ingest thread; the accessors are safe from any thread.
// Per sample: no allocation, no lock, no log; a full worker ring drops the sample and counts it.
#pragma once

#include <zmq.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "daemon/doorbell.hpp"
#include "daemon/spsc_ring.hpp"
#include "daemon/work_item.hpp"
#include "kneeload/proto/codec.hpp"

namespace kneeload::daemon {

class Worker;

struct WorkerPort {
  SpscRing<WorkItem>* ring;
  Doorbell* doorbell;
  // pipeline.workers = 0: the one Worker, polled on the ingest thread right after each push
  // instead of woken on its own; then nothing is left in `ring` between frames. nullptr: the
  // worker has its own thread, and `doorbell` wakes it.
  Worker* inline_worker = nullptr;
};

struct IngestCounters {
  proto::Counter dropped_ring_full;   // accepted samples lost because a worker ring was full
  proto::Counter dropped_draining;    // frames discarded at a drain: received after its intake budget
  proto::Counter loop_iterations;     // progress, for the watchdog
  // Passes that took kFramesPerBatch frames (ingest.cpp) and so may have left more queued in
  // libzmq: a steady rise means ingest is saturated. Arrival is stamped when a frame is taken,
  // so that wait shows in no latency histogram, and with workers = 0 nothing is dropped at a
  // ring either: this is where such an overload shows.
  proto::Counter full_batches;
  // Accepted samples by fusion::SensorKind (a frame's samples share its device's kind).
  std::array<proto::Counter, fusion::kSensorKindCount> samples_by_kind;
};

class Ingest {
 public:
  // REQUIRES: initial outlives its replacement by a ConfigChange; every device index in any
  // registry < max_devices.
  // curve: the socket is a CURVE server; every message's User-Id (the key ZAP accepted) decides
  // which devices it may speak for.
  Ingest(zmq::socket_t socket, const proto::ValidationLimits& limits, std::size_t max_devices,
         std::vector<WorkerPort> workers, SpscRing<ControlCommand>& commands,
         const Registry* initial, bool curve = false);

  // Thread body. Returns after a DrainMarker command: the frames already queued in the socket
  // are taken in, then every worker gets a DrainMarker behind its samples.
  void run();

  const proto::DecoderCounters& decoder_counters() const { return decoder_.counters(); }
  const IngestCounters& counters() const { return counters_; }
  // Steady-clock µs of the device's last accepted frame; 0 if never.
  std::int64_t last_arrival_us(std::uint32_t device) const {
    return last_arrival_us_[device].load(std::memory_order_relaxed);
  }
  std::uint64_t generation_seen() const { return generation_seen_.load(std::memory_order_acquire); }
  // Rejection details for the control loop's rate-limited log (ingest produces, main consumes).
  SpscRing<proto::RejectDetail>& reject_details() { return reject_details_; }

 private:
  // Decodes the frame in message_ and routes its samples.
  void handle_frame();
  // Returns true when a DrainMarker was received.
  bool handle_commands();
  template <typename Item>
  void push_control(WorkerPort& port, const Item& item);
  // Hands what was pushed to the port's worker: rings its thread, or fuses it here.
  static void hand_over(WorkerPort& port);
  // How long the next poll may sleep: the usual timeout, or less when an inline worker's idle
  // sweep or checkpoint falls due sooner.
  std::chrono::milliseconds poll_timeout() const;

  zmq::socket_t socket_;
  proto::FrameDecoder decoder_;
  std::vector<WorkerPort> workers_;
  SpscRing<ControlCommand>& commands_;
  const Registry* registry_;
  std::vector<proto::DeviceTrack> tracks_;
  std::unique_ptr<std::atomic<std::int64_t>[]> last_arrival_us_;
  // Received into, message after message: libzmq hands over the buffer it already has (no copy);
  // its size is bounded by the socket's maxmsgsize.
  zmq::message_t message_;
  bool curve_;
  std::unique_ptr<fusion::Sample[]> samples_;
  std::size_t samples_capacity_;
  SpscRing<proto::RejectDetail> reject_details_{256};
  IngestCounters counters_;
  std::atomic<std::uint64_t> generation_seen_{0};
};

// Steady-clock microseconds, the daemon's one time base for arrival and latency.
std::int64_t steady_now_us();

}  // namespace kneeload::daemon
