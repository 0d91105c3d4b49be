#include "daemon/publisher.hpp"

#include <algorithm>
#include <array>
#include <thread>

#include "daemon/ingest.hpp"

namespace kneeload::daemon {

namespace {
constexpr std::size_t kEncodeBufferBytes = 64 * 1024;
constexpr int kItemsPerRingVisit = 64;  // fairness between workers
constexpr auto kMaxIdleWait = std::chrono::milliseconds(100);
// A worker publishes at most this many passes (kItemsPerRingVisit per ring each) per call, so
// that other workers' outputs cannot keep it from fusing for long; what is left then goes to the
// publisher thread, rung.
constexpr int kDrainRounds = 4;
// The publisher thread's next look when a worker held the right.
constexpr auto kBusyRetry = std::chrono::milliseconds(1);

std::int64_t unix_now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

Publisher::Publisher(zmq::socket_t socket, std::vector<SpscRing<OutItem>*> rings,
                     Doorbell& doorbell, const Names& names, StatusSource& status,
                     std::chrono::microseconds heartbeat, StationGauges* station_gauges,
                     StorePort store)
    : socket_(std::move(socket)),
      rings_(std::move(rings)),
      doorbell_(doorbell),
      names_(names),
      status_(status),
      heartbeat_(heartbeat),
      buffer_(kEncodeBufferBytes),
      seq_(names.stations.capacity() * proto::kTopicCount, 0),
      station_gauges_(station_gauges),
      active_rules_(names.stations.capacity()),
      store_(store),
      drained_(rings_.size(), 0) {}

void Publisher::to_store(const StoreItem& item) {
  if (store_.ring == nullptr) return;
  if (store_.ring->try_push(item)) {
    if (++store_unrung_ >= kItemsPerRingVisit) {
      store_.doorbell->ring();
      store_unrung_ = 0;
    }
  } else {
    counters_.dropped_store.inc();
  }
}

bool Publisher::send(std::string_view topic, std::size_t payload_size) {
  // dontwait: the publisher never blocks. Without ZMQ_XPUB_NODROP a full subscriber pipe drops
  // inside libzmq (the subscriber sees a seq gap); with it, send fails here and we count.
  const auto first = socket_.send(zmq::const_buffer(topic.data(), topic.size()),
                                  zmq::send_flags::sndmore | zmq::send_flags::dontwait);
  if (!first) {
    counters_.dropped_hwm.inc();
    return false;
  }
  // The second part of a multipart message cannot be refused once the first was queued.
  (void)socket_.send(zmq::const_buffer(buffer_.data(), payload_size), zmq::send_flags::dontwait);
  counters_.published.inc();
  return true;
}

void Publisher::publish(const fusion::Output& output) {
  const proto::Topic topic = proto::topic_of(output.body);
  const std::string_view station = names_.stations.name(output.station);
  proto::OutputNames names{station, names_.runners.name(output.runner), {}};
  if (const auto* event = std::get_if<fusion::RiskEvent>(&output.body)) {
    if (event->device != UINT32_MAX) names.device = names_.devices.name(event->device);
  }
  std::uint64_t& seq = seq_[output.station * proto::kTopicCount + static_cast<std::size_t>(topic)];
  update_gauges(output);
  proto::PublishMeta meta;
  meta.seq = seq + 1;
  meta.published_unix_us = unix_now_us();
  const std::int64_t now_us = steady_now_us();
  meta.latency_us = output.release_arrival_t_us > 0 ? now_us - output.release_arrival_t_us : 0;
  meta.age_us = output.source_arrival_t_us > 0 ? now_us - output.source_arrival_t_us : 0;
  const std::size_t n = encoder_.encode(output, names, meta, std::span<std::byte>(buffer_));
  if (n == 0) {
    counters_.dropped_encode.inc();
    return;
  }
  std::array<char, 160> topic_buf{};
  const std::size_t topic_len = proto::format_topic(topic, station, std::span<char>(topic_buf));
  // The sequence advances even when the output is lost, so the loss shows as a gap downstream.
  seq = meta.seq;
  if (topic_len == 0) {  // cannot happen with names ≤ NameTable::kMaxNameBytes; counted if it does
    counters_.dropped_encode.inc();
    return;
  }
  if (send(std::string_view(topic_buf.data(), topic_len), n)) {
    counters_.published_by_topic[static_cast<std::size_t>(topic)].inc();
    if (output.release_arrival_t_us > 0) {
      counters_.latency.observe_ns(meta.latency_us * 1000);
    } else {
      counters_.timer_released.inc();
    }
    if (output.source_arrival_t_us > 0) counters_.age.observe_ns(meta.age_us * 1000);
  }
}

void Publisher::update_gauges(const fusion::Output& output) {
  StationGauges& g = station_gauges_[output.station];
  constexpr auto relaxed = std::memory_order_relaxed;
  constexpr double kDegPerRad = 57.29577951308232;
  if (const auto* step = std::get_if<fusion::StepMetrics>(&output.body)) {
    g.cadence_spm.store(step->cadence_spm, relaxed);
    g.contact_time_s.store(step->contact_time_s, relaxed);
    g.peak_knee_flexion_deg.store(static_cast<double>(step->knee_angle_peak_rad) * kDegPerRad, relaxed);
    g.pfj_stress_pa.store(static_cast<double>(step->peak_pfj_stress_mpa) * 1e6, relaxed);
  } else if (const auto* event = std::get_if<fusion::RiskEvent>(&output.body)) {
    const std::size_t slot = fusion::rule_slot(event->rule);
    const auto severity = static_cast<std::uint8_t>(event->severity);
    auto& active = active_rules_[output.station];
    if (event->phase == fusion::EventPhase::kOnset) {
      // An escalation is an onset at a higher severity while the rule is active: counted too.
      if (severity < counters_.risk_onsets[slot].size()) counters_.risk_onsets[slot][severity].inc();
      active[slot] = severity;
    } else {
      active[slot] = 0;
    }
    std::uint8_t level = 0;
    for (const std::uint8_t s : active) level = std::max(level, s);
    g.risk_level.store(level, relaxed);
  }
}

void Publisher::publish_status(bool draining) {
  proto::PublishMeta meta;
  meta.seq = ++status_seq_;
  meta.published_unix_us = unix_now_us();
  const proto::StatusReport report = status_.status(draining);
  const std::size_t n = encoder_.encode_status(report, meta, std::span<std::byte>(buffer_));
  if (n == 0) {
    counters_.dropped_encode.inc();
    return;
  }
  if (send(proto::topic_prefix(proto::Topic::kStatus), n)) {
    counters_.published_by_topic[static_cast<std::size_t>(proto::Topic::kStatus)].inc();
  }
}

bool Publisher::release() {
  busy_.store(false, std::memory_order_release);
  // Pairs with the fence in outputs_ready(): either we see the worker's push here, or its
  // exchange sees the right free and it publishes itself.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // size_approx loads each index atomically (two loads). A new holder may be popping meanwhile:
  // a ring that looks empty then is that holder's to publish, one that looks full costs one
  // more round.
  return std::any_of(rings_.begin(), rings_.end(), [](auto* r) { return r->size_approx() != 0; });
}

bool Publisher::drain_pass() {
  bool any = false;
  for (std::size_t i = 0; i < rings_.size(); ++i) {
    for (int k = 0; k < kItemsPerRingVisit; ++k) {
      OutItem* item = rings_[i]->front();
      if (item == nullptr) break;
      any = true;
      if (const auto* output = std::get_if<fusion::Output>(item)) {
        publish(*output);
        // The store keeps what history needs: steps, events, summaries, not the states.
        if (!std::holds_alternative<fusion::FusedState>(output->body)) to_store(StoreItem{*output});
      } else if (const auto* checkpoint = std::get_if<SessionCheckpoint>(item)) {
        to_store(StoreItem{*checkpoint});
      } else if (drained_[i] == 0) {
        drained_[i] = 1;
        // The last marker: the publisher thread ends the run (final status, store drain).
        if (++drained_count_ == rings_.size()) wake_publisher_thread();
      }
      rings_[i]->pop();
    }
  }
  return any;
}

void Publisher::outputs_ready() {
  // Pairs with the fence in release() (Dekker): our pushes before this call are seen by a
  // holder that lets go after our exchange below fails.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  for (int round = 0; round < kDrainRounds; ++round) {
    if (!try_acquire()) return;  // the holder publishes ours after letting go
    drain_pass();
    if (!release()) return;
  }
  wake_publisher_thread();
}

void Publisher::wake_publisher_thread() {
  wake_.store(true, std::memory_order_relaxed);
  doorbell_.ring();  // its fence orders the store before the look at the sleeper's state
}

void Publisher::run() {
  auto next_status = std::chrono::steady_clock::now();
  for (;;) {
    counters_.progress.inc();
    // A wake-up asked for before this point is served by the pass below; one asked for later
    // keeps the wait at the end from sleeping.
    wake_.store(false, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    auto wait = std::chrono::duration_cast<std::chrono::microseconds>(kBusyRetry);
    if (try_acquire()) {
      const bool any = drain_pass();
      const auto now = std::chrono::steady_clock::now();
      if (drained_count_ == rings_.size()) {
        publish_status(true);
        if (store_.ring != nullptr) {
          // The store's last record: it commits what it holds and ends. Waiting is fine now.
          while (!store_.ring->try_push(StoreItem{DrainMarker{}})) {
            store_.doorbell->ring();
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
          }
          store_.doorbell->ring();
        }
        return;
      }
      // Workers publish most outputs and leave the store's doorbell to this thread, so that a
      // batch costs them no futex wake; kItemsPerRingVisit records ring it sooner (to_store).
      if (store_unrung_ > 0 && !any) {
        store_.doorbell->ring();
        store_unrung_ = 0;
      }
      if (now >= next_status) {
        publish_status(false);
        next_status = now + heartbeat_;
      }
      if (release() || any) continue;
      wait = std::min<std::chrono::microseconds>(
          std::chrono::duration_cast<std::chrono::microseconds>(next_status - now), kMaxIdleWait);
    }
    // Woken by the timeout, by a worker that gave up after kDrainRounds, or by the last
    // DrainMarker.
    doorbell_.wait([this] { return !wake_.load(std::memory_order_relaxed); }, wait);
  }
}

}  // namespace kneeload::daemon
