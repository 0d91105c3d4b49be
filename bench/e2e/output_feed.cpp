#include "output_feed.hpp"

#include <string_view>
#include <unordered_map>

#include "kneeload/v1/publish.pb.h"

namespace kneeload::bench {
namespace {

constexpr auto kPollSlice = std::chrono::milliseconds(20);
constexpr std::size_t kReserve = 1 << 20;

// Every output message starts with its Header as field 1 (publish.proto), which protobuf
// writes first: returns its bytes, or an empty view if the payload does not start so.
std::string_view header_bytes(const zmq::message_t& payload) {
  const auto* p = static_cast<const std::uint8_t*>(payload.data());
  const std::size_t n = payload.size();
  if (n < 2 || p[0] != 0x0A) return {};
  std::uint64_t len = 0;
  std::size_t i = 1;
  for (int shift = 0; i < n && shift < 35; shift += 7) {
    const std::uint8_t b = p[i++];
    len |= static_cast<std::uint64_t>(b & 0x7Fu) << shift;
    if ((b & 0x80u) == 0) {
      if (len > n - i) return {};
      return {reinterpret_cast<const char*>(p + i), static_cast<std::size_t>(len)};
    }
  }
  return {};
}

}  // namespace

OutputFeed::OutputFeed(zmq::context_t& ctx, const std::string& endpoint) : socket_(ctx, zmq::socket_type::sub) {
  socket_.set(zmq::sockopt::rcvhwm, 0);  // lose nothing on this side: gaps are the PUB's
  socket_.set(zmq::sockopt::linger, 0);
  socket_.set(zmq::sockopt::subscribe, "");
  socket_.connect(endpoint);
  recorded_.latency_us.reserve(kReserve);
  recorded_.age_us.reserve(kReserve);
  thread_ = std::thread([this] { run(); });
}

OutputFeed::~OutputFeed() {
  stop_.store(true, std::memory_order_release);
  thread_.join();
}

bool OutputFeed::wait_joined(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (statuses() == 0) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

void OutputFeed::start_recording() {
  std::lock_guard lock(mutex_);
  recorded_ = Recording{};
  recorded_.latency_us.reserve(kReserve);
  recorded_.age_us.reserve(kReserve);
  gaps_at_start_ = gaps_.load(std::memory_order_relaxed);
  recording_.store(true, std::memory_order_release);
}

OutputFeed::Recording OutputFeed::stop_recording() {
  std::lock_guard lock(mutex_);
  recording_.store(false, std::memory_order_release);
  Recording out = std::move(recorded_);
  out.gaps = gaps_.load(std::memory_order_relaxed) - gaps_at_start_;
  recorded_ = Recording{};
  recorded_.latency_us.reserve(kReserve);
  recorded_.age_us.reserve(kReserve);
  return out;
}

void OutputFeed::run() {
  std::unordered_map<std::string, std::uint64_t> last_seq;
  std::vector<zmq::pollitem_t> items{{socket_.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::message_t topic, payload;
  v1::Header header;
  v1::DaemonStatus status;
  while (!stop_.load(std::memory_order_acquire)) {
    try {
      if (zmq::poll(items, kPollSlice) <= 0) continue;
    } catch (const zmq::error_t&) {
      continue;  // EINTR from the bench's signal handler
    }
    for (int i = 0; i < 4096; ++i) {
      if (!socket_.recv(topic, zmq::recv_flags::dontwait)) break;
      if (!topic.more() || !socket_.recv(payload, zmq::recv_flags::dontwait)) continue;
      const std::string_view name(static_cast<const char*>(topic.data()), topic.size());
      std::uint64_t seq = 0;
      if (name == "status") {
        if (!status.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) continue;
        seq = status.header().seq();
        samples_accepted_.store(status.samples_accepted(), std::memory_order_release);
        statuses_.fetch_add(1, std::memory_order_acq_rel);
      } else {
        const std::string_view bytes = header_bytes(payload);
        if (!header.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) continue;
        seq = header.seq();
        outputs_.fetch_add(1, std::memory_order_relaxed);
        if (recording_.load(std::memory_order_acquire)) {
          std::lock_guard lock(mutex_);
          // latency_us is 0 when a timer (idle flush, shutdown) released the output: no frame
          // arrival to measure from, so it is counted apart rather than pulling p50 to 0.
          if (header.latency_us() > 0) {
            recorded_.latency_us.push_back(header.latency_us());
          } else {
            ++recorded_.timer_released;
          }
          recorded_.age_us.push_back(header.age_us());
        }
      }
      std::uint64_t& last = last_seq[std::string(name)];
      if (last != 0 && seq > last + 1) gaps_.fetch_add(seq - last - 1, std::memory_order_relaxed);
      last = seq;
    }
  }
}

}  // namespace kneeload::bench
