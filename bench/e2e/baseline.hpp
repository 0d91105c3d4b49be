// The decode-only baseline of bench/e2e (issue 8): raw ZeroMQ PUSH → PULL of the frames
// `kneeloadctl load --rate 0` sends, on the same transport, where the receiver does only what
// kneeloadd's ingest thread must do per frame before any fusion: receive, decode and validate
// with proto::FrameDecoder against the same registry the daemon builds from the same config.
// No fusion, no rings, no publishing: the transport's own limit with the protocol's cost on top,
// the figure the daemon's sustained rate is a ratio of.
//
// Thread ownership: the socket and the decoder belong to the thread that calls receive().
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
  double seconds = 0.0;        // first frame received → last frame received
  double samples_per_s() const { return seconds > 0.0 ? static_cast<double>(samples_accepted) / seconds : 0.0; }
};

class DecodeOnlySink {
 public:
  // Binds a PULL at `bind_endpoint` ("tcp://127.0.0.1:*", "ipc://PATH") with the daemon's
  // receive HWM, and builds the registry from `config_toml` as kneeloadd would.
  // Throws daemon::ConfigError for a config kneeloadd would refuse, zmq::error_t for a bad endpoint.
  DecodeOnlySink(zmq::context_t& ctx, const std::string& bind_endpoint, const std::string& config_toml);
  ~DecodeOnlySink();
  DecodeOnlySink(const DecodeOnlySink&) = delete;
  DecodeOnlySink& operator=(const DecodeOnlySink&) = delete;

  // The endpoint as bound (the port the OS chose).
  const std::string& endpoint() const { return endpoint_; }

  // Decodes frames until `sender_done()` returns true and nothing has arrived for `idle`.
  // Each call starts from fresh device histories (a new `load` run starts its streams afresh).
  BaselineRun receive(const std::function<bool()>& sender_done, std::chrono::milliseconds idle);

 private:
  struct State;
  std::unique_ptr<State> state_;
  std::string endpoint_;
};

}  // namespace kneeload::bench
