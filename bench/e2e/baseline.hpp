// The baselines of bench/e2e (issue 8): raw ZeroMQ PUSH → PULL of the frames `kneeloadctl load
// --rate 0` sends, on the same transport, into one receiving thread.
// - Decode only (the baseline every headline ratio is of): the receiver does what kneeloadd's
//   ingest thread must do per frame before any fusion: receive, decode and validate with
//   proto::FrameDecoder against the same registry the daemon builds from the same config. No
//   fusion, no rings, no publishing: the transport's own limit with the protocol's cost on top.
// - Decode and fuse (a second reference, reported beside it): the same, and every accepted
//   sample fused by a RunnerSession per runner, as the daemon's worker does, its outputs
//   counted and dropped. No rings, no publishing, no subscriber, no metrics: an upper bound for
//   the daemon with fusion on its ingest thread (pipeline.workers = 0), and what is left of that
//   daemon's throughput against it is what everything around the model costs. Its rate counts
//   the samples fused, not those the reorder windows still hold when the run ends.
//
// Thread ownership: the socket, the decoder and the sessions belong to the thread that calls
// receive().
#pragma once

#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace kneeload::bench {

struct BaselineRun {
  std::uint64_t frames = 0;
  std::uint64_t samples_accepted = 0;
  std::uint64_t rejected = 0;  // frames and samples the decoder refused: a bench bug if non-zero
  std::uint64_t outputs = 0;   // what the sessions emitted (decode and fuse only)
  // The samples the run's rate counts: those accepted (decode only), or those fused (decode and
  // fuse: not what the reorder windows still hold at the end, about 100 a runner, which with
  // 10,000 runners would be a sixth of a run).
  std::uint64_t samples_done = 0;
  double seconds = 0.0;  // first frame received → last frame received
  double samples_per_s() const { return seconds > 0.0 ? static_cast<double>(samples_done) / seconds : 0.0; }
};

class BaselineSink {
 public:
  enum class Work { kDecode, kDecodeAndFuse };
  // Binds a PULL at `bind_endpoint` ("tcp://127.0.0.1:*", "ipc://PATH") with the daemon's
  // receive HWM, and builds the registry from `config_toml` as kneeloadd would.
  // Throws daemon::ConfigError for a config kneeloadd would refuse, zmq::error_t for a bad endpoint.
  BaselineSink(zmq::context_t& ctx, const std::string& bind_endpoint, const std::string& config_toml, Work work);
  ~BaselineSink();
  BaselineSink(const BaselineSink&) = delete;
  BaselineSink& operator=(const BaselineSink&) = delete;

  // The endpoint as bound (the port the OS chose).
  const std::string& endpoint() const { return endpoint_; }

  // Takes frames until `sender_done()` returns true and nothing has arrived for `idle`.
  // Each call starts from fresh device histories and sessions (a new `load` run starts its
  // streams afresh).
  BaselineRun receive(const std::function<bool()>& sender_done, std::chrono::milliseconds idle);

 private:
  struct State;
  std::unique_ptr<State> state_;
  std::string endpoint_;
};

}  // namespace kneeload::bench
