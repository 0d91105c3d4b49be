#include "daemon/zap.hpp"

#include <zmq_addon.hpp>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/thread_name.hpp"

namespace kneeload::daemon {

namespace {
constexpr auto kPollInterval = std::chrono::milliseconds(100);  // how soon the thread sees stop_

void copy_truncated(std::string_view from, char* to, std::size_t capacity) {
  const std::size_t n = std::min(from.size(), capacity - 1);
  std::copy_n(from.data(), n, to);
  to[n] = '\0';
}
}  // namespace

ZapHandler::ZapHandler(zmq::context_t& context, std::shared_ptr<const Registry> registry)
    : socket_(context, zmq::socket_type::rep), registry_(std::move(registry)) {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.bind("inproc://zeromq.zap.01");
  thread_ = std::thread([this] {
    name_this_thread("kl-zap");
    run();
  });
}

ZapHandler::~ZapHandler() {
  stop_.store(true, std::memory_order_relaxed);
  if (thread_.joinable()) thread_.join();
}

void ZapHandler::set_registry(std::shared_ptr<const Registry> registry) {
  const std::lock_guard<std::mutex> lock(registry_mu_);
  registry_ = std::move(registry);
}

void ZapHandler::run() {
  std::vector<zmq::pollitem_t> items{{socket_.handle(), 0, ZMQ_POLLIN, 0}};
  while (!stop_.load(std::memory_order_relaxed)) {
    if (zmq::poll(items, kPollInterval) > 0) handle(socket_);
  }
  socket_.close();
}

void ZapHandler::handle(zmq::socket_t& socket) {
  std::vector<zmq::message_t> request;
  if (!zmq::recv_multipart(socket, std::back_inserter(request), zmq::recv_flags::dontwait)) return;
  // RFC 27: version, request id, domain, address, identity, mechanism, credentials...
  const auto frame = [&](std::size_t i) {
    return i < request.size() ? request[i].to_string_view() : std::string_view();
  };
  const std::string_view domain = frame(2);
  const std::string_view address = frame(3);
  const std::string_view mechanism = frame(5);
  const ZapSocket which = domain == kZapDomains[1] ? ZapSocket::kPublish : ZapSocket::kIngest;

  std::string key;  // Z85 of the client's public key
  if (mechanism == "CURVE" && request.size() >= 7 && request[6].size() == 32) {
    key.resize(41);
    zmq_z85_encode(key.data(), static_cast<const std::uint8_t*>(request[6].data()), 32);
    key.resize(40);
  }
  bool allowed = false;
  if (!key.empty()) {
    std::shared_ptr<const Registry> registry;
    {
      const std::lock_guard<std::mutex> lock(registry_mu_);
      registry = registry_;
    }
    allowed = which == ZapSocket::kIngest ? registry->find_sender(key) != nullptr
                                          : registry->subscriber_allowed(key);
  }
  const auto slot = static_cast<std::size_t>(which);
  if (allowed) {
    counters_.accepted[slot].inc();
  } else {
    counters_.refused[slot].inc();
    ZapRefusal r;
    r.socket = which;
    copy_truncated(address, r.address.data(), r.address.size());
    copy_truncated(key.empty() ? std::string_view("(no CURVE key)") : std::string_view(key), r.key.data(),
                   r.key.size());
    (void)refusals_.try_push(r);  // details are best effort; the count above is not
  }
  std::array<zmq::const_buffer, 6> reply = {
      zmq::str_buffer("1.0"),
      zmq::buffer(request.size() > 1 ? request[1].data() : nullptr, request.size() > 1 ? request[1].size() : 0),
      allowed ? zmq::str_buffer("200") : zmq::str_buffer("400"),
      allowed ? zmq::str_buffer("OK") : zmq::str_buffer("key not allowed"),
      zmq::buffer(key.data(), allowed ? key.size() : 0),  // User-Id: the key, read per message by ingest
      zmq::const_buffer()};
  (void)zmq::send_multipart(socket, reply);
}

}  // namespace kneeload::daemon
