#include "daemon/ingest.hpp"

#include <algorithm>
#include <chrono>
#include <thread>

#include "daemon/registry.hpp"
#include "daemon/worker.hpp"

namespace kneeload::daemon {

std::int64_t steady_now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

namespace {
// Frames taken per poll wake-up before commands are looked at again: bounds reload/drain
// latency under a flood without costing anything when traffic is light.
constexpr int kFramesPerBatch = 512;
constexpr auto kPollTimeout = std::chrono::milliseconds(50);
// Items an inline worker takes per poll() before it reads its clock again (as a worker thread).
constexpr int kInlineBatch = 64;
// How long a drain takes in frames still queued in the socket, then how long it discards and
// counts them (see run()); the rest of the control loop's 4.5 s is for the workers' summaries,
// the publisher and the store.
constexpr auto kDrainIntakeBudget = std::chrono::milliseconds(1500);
constexpr auto kDrainDiscardBudget = std::chrono::milliseconds(500);
}  // namespace

Ingest::Ingest(zmq::socket_t socket, const proto::ValidationLimits& limits,
               std::size_t max_devices, std::vector<WorkerPort> workers,
               SpscRing<ControlCommand>& commands, const Registry* initial, bool curve)
    : socket_(std::move(socket)),
      decoder_(limits),
      workers_(std::move(workers)),
      commands_(commands),
      registry_(initial),
      tracks_(max_devices),
      last_arrival_us_(std::make_unique<std::atomic<std::int64_t>[]>(max_devices)),
      curve_(curve),
      samples_(std::make_unique<fusion::Sample[]>(static_cast<std::size_t>(limits.max_samples_per_frame))),
      samples_capacity_(static_cast<std::size_t>(limits.max_samples_per_frame)) {
  generation_seen_.store(initial->generation, std::memory_order_release);
}

void Ingest::hand_over(WorkerPort& port) {
  if (port.inline_worker == nullptr) {
    port.doorbell->ring();
    return;
  }
  // kDrained only follows the DrainMarker run() pushes last, so it needs no handling here.
  while (port.inline_worker->poll(kInlineBatch) == Worker::PollResult::kMore) {
  }
}

template <typename Item>
void Ingest::push_control(WorkerPort& port, const Item& item) {
  // Control items must not be lost: wait for room. The worker is draining its ring meanwhile;
  // a wedged worker stalls this too, which the watchdog and the drain deadline report. An
  // inline worker's ring is empty here (hand_over empties it), so the loop does not turn.
  while (!port.ring->try_push(WorkItem{item})) {
    hand_over(port);
    if (port.inline_worker == nullptr) std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  hand_over(port);
}

std::chrono::milliseconds Ingest::poll_timeout() const {
  std::chrono::milliseconds timeout = kPollTimeout;
  for (const WorkerPort& port : workers_) {
    if (port.inline_worker == nullptr) continue;
    // Rounded up: a poll that wakes a little early would only sleep again.
    const std::int64_t due_ms = (port.inline_worker->us_until_next_timer() + 999) / 1000;
    timeout = std::min(timeout, std::chrono::milliseconds(due_ms));
  }
  return timeout;
}

bool Ingest::handle_commands() {
  bool drain = false;
  while (ControlCommand* cmd = commands_.front()) {
    if (const auto* change = std::get_if<ConfigChange>(cmd)) {
      registry_ = change->registry;
      for (WorkerPort& port : workers_) push_control(port, *change);
      generation_seen_.store(registry_->generation, std::memory_order_release);
    } else if (const auto* stale = std::get_if<StaleChange>(cmd)) {
      push_control(workers_[stale->runner % workers_.size()], *stale);
    } else if (const auto* history = std::get_if<HistoryUpdate>(cmd)) {
      push_control(workers_[history->runner % workers_.size()], *history);
    } else {
      drain = true;
    }
    commands_.pop();
  }
  return drain;
}

void Ingest::handle_frame() {
  const std::int64_t arrival = steady_now_us();
  proto::Sender unknown_key;  // known = false: a key the running registry no longer has
  const proto::Sender* sender = nullptr;
  if (curve_) {
    // zmq_msg_gets reads the connection's metadata: no allocation, no syscall.
    const char* user_id = zmq_msg_gets(message_.handle(), "User-Id");
    sender = user_id != nullptr ? registry_->find_sender(user_id) : nullptr;
    if (sender == nullptr) sender = &unknown_key;
  }
  const proto::DecodeResult result = decoder_.decode(
      std::span<const std::byte>(static_cast<const std::byte*>(message_.data()), message_.size()), message_.size(),
      registry_->devices, std::span<proto::DeviceTrack>(tracks_), arrival,
      std::span<fusion::Sample>(samples_.get(), samples_capacity_), sender);
  if (result.frame_rejected || result.samples_rejected > 0) {
    // Best effort: when the control loop is behind, details are skipped; counts never are.
    (void)reject_details_.try_push(decoder_.last_reject());
  }
  if (result.accepted == 0) return;
  last_arrival_us_[samples_[0].device].store(arrival, std::memory_order_relaxed);
  counters_.samples_by_kind[static_cast<std::size_t>(samples_[0].kind)].add(
      static_cast<std::uint64_t>(result.accepted));
  // All samples of a frame come from one device, hence one runner and one worker.
  WorkerPort& port = workers_[samples_[0].runner % workers_.size()];
  for (int i = 0; i < result.accepted; ++i) {
    if (!port.ring->try_push(WorkItem{samples_[static_cast<std::size_t>(i)]})) {
      counters_.dropped_ring_full.inc();
    }
  }
  hand_over(port);
}

void Ingest::run() {
  std::vector<zmq::pollitem_t> items{{socket_.handle(), 0, ZMQ_POLLIN, 0}};
  for (;;) {
    counters_.loop_iterations.inc();
    if (handle_commands()) break;
    zmq::poll(items, poll_timeout());
    // An inline worker's clock work (idle sweep, checkpoints) runs even when no frame came.
    for (WorkerPort& port : workers_) {
      if (port.inline_worker != nullptr) hand_over(port);
    }
    int taken = 0;
    for (; taken < kFramesPerBatch; ++taken) {
      if (!socket_.recv(message_, zmq::recv_flags::dontwait)) break;
      handle_frame();
    }
    if (taken == kFramesPerBatch) counters_.full_batches.inc();
  }
  // Drain: what the socket already holds was sent to us before we stopped; take it in, for
  // kDrainIntakeBudget at most. Senders that outpace the pipeline (with workers = 0, fusion
  // runs in this loop) would otherwise keep it going past the control loop's 4.5 s deadline,
  // which exits without the sessions' summaries. After the budget, frames are received,
  // counted (ingest.draining) and discarded for kDrainDiscardBudget at most; what libzmq
  // holds after that goes uncounted with the socket.
  using Clock = std::chrono::steady_clock;
  const Clock::time_point intake_until = Clock::now() + kDrainIntakeBudget;
  while (Clock::now() < intake_until && socket_.recv(message_, zmq::recv_flags::dontwait)) handle_frame();
  const Clock::time_point discard_until = Clock::now() + kDrainDiscardBudget;
  while (Clock::now() < discard_until && socket_.recv(message_, zmq::recv_flags::dontwait)) {
    counters_.dropped_draining.inc();
  }
  for (WorkerPort& port : workers_) push_control(port, DrainMarker{});
  socket_.close();
}

}  // namespace kneeload::daemon
