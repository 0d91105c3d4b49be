// The ZAP handler (ZeroMQ RFC 27): libzmq asks it, once per new CURVE connection on the ingest
// and publish sockets, whether the client's public key may connect. Ingest admits device and
// gateway keys of the running registry; publish admits security.subscriber_keys (or anyone
// holding the daemon's public key when that list is empty). The accepted key goes back as the
// connection's User-Id, which ingest reads on every message to check which devices that key may
// speak for (proto::Sender): authenticating the connection alone would let a known key send
// frames in another device's name.
//
// Thread ownership: its own thread (ZAP is per connection, not per sample, so the registry
// snapshot it reads sits behind a mutex the main thread takes on reload). Refusals are counted
// and their details handed to the control loop's rate-limited log through a ring.
#pragma once

#include <zmq.hpp>

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>

#include "daemon/registry.hpp"
#include "daemon/spsc_ring.hpp"
#include "kneeload/proto/counter.hpp"

namespace kneeload::daemon {

enum class ZapSocket : std::uint8_t { kIngest = 0, kPublish = 1 };
inline constexpr const char* kZapDomains[2] = {"ingest", "publish"};

struct ZapCounters {
  std::array<proto::Counter, 2> accepted;  // by ZapSocket
  std::array<proto::Counter, 2> refused;
};

// One refused connection, for the log.
struct ZapRefusal {
  ZapSocket socket = ZapSocket::kIngest;
  std::array<char, 48> address{};  // peer IP as libzmq reports it
  std::array<char, 41> key{};      // Z85 public key
};

class ZapHandler {
 public:
  // Binds inproc://zeromq.zap.01 in `context` (must happen before any CURVE socket binds, or
  // libzmq lets connections through unauthenticated) and starts the thread.
  ZapHandler(zmq::context_t& context, std::shared_ptr<const Registry> registry);
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  // Main thread, on reload: new connections are judged by the new keys.
  void set_registry(std::shared_ptr<const Registry> registry);

  const ZapCounters& counters() const { return counters_; }
  SpscRing<ZapRefusal>& refusals() { return refusals_; }

 private:
  void run();
  void handle(zmq::socket_t& socket);

  zmq::socket_t socket_;
  std::mutex registry_mu_;
  std::shared_ptr<const Registry> registry_;
  ZapCounters counters_;
  SpscRing<ZapRefusal> refusals_{64};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace kneeload::daemon
