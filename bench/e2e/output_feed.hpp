// bench/e2e's subscriber: a SUB on kneeloadd's publish socket, drained by a thread of its own for
// the daemon's whole life (as a real subscriber would be), which
//   - keeps the newest DaemonStatus counters (heartbeats), so the bench sees ingest catch up
//     within a heartbeat without scraping the metrics endpoint in a loop;
//   - while recording, keeps Header.latency_us (arrival of the frame that released the output →
//     publish) and Header.age_us (arrival of the output's own source sample → publish: the
//     reorder window's hold included) of every output (state, step, risk, session);
//   - counts Header.seq gaps per topic: messages the PUB dropped for this subscriber, which the
//     daemon cannot count (README "Counters").
//
// Thread ownership: the socket and the thread are the feed's; the accessors are safe from any
// thread.
#pragma once

#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace kneeload::bench {

class OutputFeed {
 public:
  OutputFeed(zmq::context_t& ctx, const std::string& endpoint);
  ~OutputFeed();
  OutputFeed(const OutputFeed&) = delete;
  OutputFeed& operator=(const OutputFeed&) = delete;

  // True once a status heartbeat arrived: the subscription has reached the PUB.
  bool wait_joined(std::chrono::milliseconds timeout) const;
  // samples_accepted of the newest status, and how many statuses have arrived.
  std::uint64_t samples_accepted() const { return samples_accepted_.load(std::memory_order_acquire); }
  std::uint64_t statuses() const { return statuses_.load(std::memory_order_acquire); }
  std::uint64_t outputs() const { return outputs_.load(std::memory_order_relaxed); }
  std::uint64_t seq_gaps() const { return gaps_.load(std::memory_order_relaxed); }

  struct Recording {
    std::vector<std::int64_t> latency_us;  // outputs a frame's arrival released
    std::vector<std::int64_t> age_us;      // every output
    std::uint64_t timer_released = 0;      // outputs with latency_us 0, not in latency_us
    std::uint64_t gaps = 0;
  };
  void start_recording();
  Recording stop_recording();

 private:
  void run();

  zmq::socket_t socket_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> samples_accepted_{0};
  std::atomic<std::uint64_t> statuses_{0};
  std::atomic<std::uint64_t> outputs_{0};
  std::atomic<std::uint64_t> gaps_{0};
  std::atomic<bool> recording_{false};
  std::mutex mutex_;  // guards recorded_ (the bench is not a hot path)
  Recording recorded_;
  std::uint64_t gaps_at_start_ = 0;
  std::thread thread_;
};

}  // namespace kneeload::bench
