// Test harness for kneeloadctl: runs the built binary as a child process with stdout and stderr
// captured, next to real kneeloadd processes from ../integration/daemon_harness.hpp.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../integration/daemon_harness.hpp"

namespace kneeload::testing {

inline std::string ctl_binary() { return std::string(KNEELOAD_BINARY_DIR) + "/tools/ctl/kneeloadctl"; }

// kneeloadctl ARGS… as a child process; stdout and stderr go to files in its own temp dir.
// Killed (SIGKILL) on destruction if still running, so a failing test leaves nothing behind.
class Ctl {
 public:
  explicit Ctl(const std::vector<std::string>& args)
      : out_path_(dir_.path() / "stdout"),
        err_path_(dir_.path() / "stderr"),
        process_(argv(args), err_path_, out_path_) {}

  // The exit code (128 + signal if killed), or nullopt if still running after `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout) { return process_.wait(timeout); }
  bool running() { return process_.running(); }
  void signal(int signo) const { process_.signal(signo); }
  std::string out() const { return read_file(out_path_); }
  std::string err() const { return read_file(err_path_); }
  // Waits until stderr contains `text` (or the process ended).
  bool wait_for_err(const std::string& text, std::chrono::milliseconds timeout) {
    return eventually([&] { return err().find(text) != std::string::npos || !running(); }, timeout) &&
           err().find(text) != std::string::npos;
  }

 private:
  static std::vector<std::string> argv(const std::vector<std::string>& args) {
    std::vector<std::string> v{ctl_binary()};
    v.insert(v.end(), args.begin(), args.end());
    return v;
  }

  TempDir dir_;
  fs::path out_path_, err_path_;
  Process process_;
};

// Generous bound for a kneeloadctl run that should end by itself: a hang fails the test rather
// than the suite's timeout, and no assertion depends on how fast it ran.
inline constexpr auto kExitBound = 30s;

constexpr double kCellAreaCm2 = 8.0;
constexpr std::int64_t kT0Us = 1'000'000;

struct TimedFrame {
  std::int64_t t_us;  // first sample's device time: the frame's place in the stream
  v1::Frame frame;
};

// running_frames() of daemon_harness.hpp for station n, plus from the console a high pain
// report at 0.5 s and a low one at `seconds` − 0.5 s (an R10 onset and its clear), each frame
// with its place in the stream (its first sample's device time).
inline std::vector<TimedFrame> running_frames_with_pain(int n, double seconds) {
  const std::string console = "s" + std::to_string(n) + "-console";
  v1::Frame high = frame(console, 0);
  add_pain(high, kT0Us + 500'000, 7);
  v1::Frame low = frame(console, 1);
  add_pain(low, kT0Us + static_cast<std::int64_t>((seconds - 0.5) * 1e6), 1);
  std::vector<TimedFrame> frames;
  for (v1::Frame& f : running_frames(n, seconds, 100.0, {high, low})) {
    const std::int64_t t = f.samples(0).t_us();
    frames.push_back({t, std::move(f)});
  }
  return frames;
}

// A PUSH socket that never blocks a test for long.
inline zmq::socket_t push_to(zmq::context_t& ctx, const std::string& endpoint) {
  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.set(zmq::sockopt::sndtimeo, 5000);
  push.set(zmq::sockopt::linger, 5000);
  push.connect(endpoint);
  return push;
}

// Collects until the daemon's status says it has received `frames` frames since start.
inline bool wait_frames_received(Subscriber& sub, std::uint64_t frames, std::chrono::milliseconds timeout) {
  return sub.collect_until([&](const auto&) {
    const auto s = sub.last_status();
    return s && s->frames_received() >= frames;
  }, timeout);
}

// SIGTERM, then everything the daemon publishes up to its final (draining) status: by then
// every accepted sample has been fused and its outputs published (README "Signals").
inline bool drain(Daemon& daemon, Subscriber& sub) {
  daemon.process().signal(SIGTERM);
  return sub.collect_until([&](const auto&) {
    const auto s = sub.last_status();
    return s && s->draining();
  }, 10s);
}

// Published state, step and risk payloads per topic with the header's wall-clock fields
// (published_unix_us, latency_us) cleared: what must be equal between two runs of one input.
inline std::map<std::string, std::vector<std::string>> deterministic_outputs(const std::vector<Received>& received) {
  std::map<std::string, std::vector<std::string>> out;
  for (const Received& r : received) {
    const auto cleared = [&r](auto msg) {
      if (!msg.ParseFromString(r.payload)) return std::string("<undecodable>");
      msg.mutable_header()->clear_published_unix_us();
      msg.mutable_header()->clear_latency_us();
      msg.mutable_header()->clear_age_us();
      return msg.SerializeAsString();
    };
    if (r.topic.rfind("state/", 0) == 0) out[r.topic].push_back(cleared(v1::FusedState{}));
    if (r.topic.rfind("step/", 0) == 0) out[r.topic].push_back(cleared(v1::StepMetrics{}));
    if (r.topic.rfind("risk/", 0) == 0) out[r.topic].push_back(cleared(v1::RiskEvent{}));
  }
  return out;
}

}  // namespace kneeload::testing
