#include "baseline.hpp"

#include <vector>

#include "child_process.hpp"
#include "daemon/config.hpp"
#include "daemon/registry.hpp"
#include "kneeload/fusion/output.hpp"
#include "kneeload/fusion/session.hpp"
#include "kneeload/proto/codec.hpp"

namespace kneeload::bench {

namespace {

// Counts the sessions' outputs and keeps none.
class CountingSink final : public fusion::OutputSink {
 public:
  void emit(const fusion::Output&) override { ++outputs; }
  std::uint64_t outputs = 0;
};

}  // namespace

struct BaselineSink::State {
  State(zmq::context_t& ctx, const daemon::Config& config, Work what)
      : work(what),
        socket(ctx, zmq::socket_type::pull),
        names(config.pipeline.max_devices, config.pipeline.max_runners, config.pipeline.max_stations),
        registry(daemon::build_registry(config, names, 1)),
        limits{config.ingest.max_frame_bytes, config.ingest.max_samples_per_frame},
        samples(static_cast<std::size_t>(config.ingest.max_samples_per_frame)),
        max_devices(config.pipeline.max_devices) {}

  Work work;
  zmq::socket_t socket;
  daemon::Names names;
  std::shared_ptr<const daemon::Registry> registry;
  proto::ValidationLimits limits;
  std::vector<fusion::Sample> samples;
  std::size_t max_devices;
};

BaselineSink::BaselineSink(zmq::context_t& ctx, const std::string& bind_endpoint, const std::string& config_toml,
                           Work work) {
  const daemon::Config config = daemon::parse_config(config_toml, "kneeloadctl load --print-config");
  state_ = std::make_unique<State>(ctx, config, work);
  state_->socket.set(zmq::sockopt::rcvhwm, config.ingest.rcvhwm);
  state_->socket.set(zmq::sockopt::linger, 0);
  state_->socket.bind(bind_endpoint);
  endpoint_ = state_->socket.get(zmq::sockopt::last_endpoint);
}

BaselineSink::~BaselineSink() = default;

BaselineRun BaselineSink::receive(const std::function<bool()>& sender_done, std::chrono::milliseconds idle) {
  using Clock = std::chrono::steady_clock;
  State& s = *state_;
  proto::FrameDecoder decoder(s.limits);
  std::vector<proto::DeviceTrack> tracks(s.max_devices);
  // As the daemon's worker builds them (daemon/worker.cpp apply), before the first frame.
  std::vector<std::unique_ptr<fusion::RunnerSession>> sessions;
  if (s.work == Work::kDecodeAndFuse) {
    for (const auto& config : s.registry->sessions) {
      sessions.push_back(config ? std::make_unique<fusion::RunnerSession>(config) : nullptr);
    }
  }
  CountingSink fused;
  std::vector<zmq::pollitem_t> items{{s.socket.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::message_t message;
  BaselineRun run;
  Clock::time_point first{}, last = Clock::now();
  for (;;) {
    check_interrupted();
    try {
      zmq::poll(items, std::chrono::milliseconds(20));
    } catch (const zmq::error_t&) {
      continue;  // EINTR
    }
    // As the daemon's ingest: drain what is there, then poll again.
    while (s.socket.recv(message, zmq::recv_flags::dontwait)) {
      const auto now = Clock::now();
      if (run.frames == 0) first = now;
      last = now;
      ++run.frames;
      const proto::DecodeResult r = decoder.decode(
          std::span<const std::byte>(static_cast<const std::byte*>(message.data()), message.size()), message.size(),
          s.registry->devices, tracks, std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count(),
          s.samples);
      run.samples_accepted += static_cast<std::uint64_t>(r.accepted);
      if (!sessions.empty()) {
        for (int i = 0; i < r.accepted; ++i) {
          const fusion::Sample& sample = s.samples[static_cast<std::size_t>(i)];
          if (sample.runner < sessions.size() && sessions[sample.runner]) {
            sessions[sample.runner]->on_sample(sample, fused);
          }
        }
      }
      run.rejected += static_cast<std::uint64_t>(r.samples_rejected) + (r.frame_rejected ? 1u : 0u);
    }
    if (Clock::now() - last >= idle && sender_done()) break;
  }
  run.seconds = run.frames > 1 ? std::chrono::duration<double>(last - first).count() : 0.0;
  run.outputs = fused.outputs;
  run.samples_done = run.samples_accepted;
  if (!sessions.empty()) {
    run.samples_done = 0;
    for (const auto& session : sessions) run.samples_done += session ? session->counters().fused : 0;
  }
  return run;
}

}  // namespace kneeload::bench
