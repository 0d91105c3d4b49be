#include "sockets.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <zmq_addon.hpp>

#include "stop.hpp"

namespace kneeload::ctl {
namespace {

// Longest single wait, so Ctrl-C is noticed promptly.
constexpr auto kPollSlice = std::chrono::milliseconds(100);

}  // namespace

int poll_for(std::vector<zmq::pollitem_t>& items, std::chrono::milliseconds timeout) {
  try {
    return zmq::poll(items, timeout);
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return 0;
    throw;
  }
}

bool is_endpoint_syntax_error(const zmq::error_t& e) {
  return e.num() == EINVAL || e.num() == EPROTONOSUPPORT || e.num() == ENOCOMPATPROTO;
}

ConnectResult connect_push(zmq::context_t& ctx, zmq::socket_t& push, const std::string& endpoint,
                           std::chrono::milliseconds timeout, const CurveClient* curve) {
  const int timeout_ms = static_cast<int>(timeout.count());
  if (curve != nullptr) apply(push, *curve);
  push.set(zmq::sockopt::immediate, true);
  push.set(zmq::sockopt::sndtimeo, timeout_ms);
  // At exit, pending frames get the same time to reach the daemon as a send would.
  push.set(zmq::sockopt::linger, timeout_ms);

  // The monitor must exist before connect() so that no event is missed. Its inproc name only
  // has to be unique within this process's context.
  static int monitors = 0;
  const std::string monitor_endpoint = "inproc://kneeloadctl-monitor-" + std::to_string(++monitors);
  if (zmq_socket_monitor(push.handle(), monitor_endpoint.c_str(),
                         ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                             ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                             ZMQ_EVENT_DISCONNECTED) != 0) {
    return {ConnectStatus::kUnreachable, std::string("cannot monitor the socket: ") + zmq_strerror(zmq_errno())};
  }
  zmq::socket_t monitor(ctx, zmq::socket_type::pair);
  monitor.set(zmq::sockopt::linger, 0);
  monitor.connect(monitor_endpoint);
  const auto stop_monitor = [&] { zmq_socket_monitor(push.handle(), nullptr, 0); };

  try {
    push.connect(endpoint);
  } catch (const zmq::error_t& e) {
    stop_monitor();
    if (is_endpoint_syntax_error(e)) {
      return {ConnectStatus::kBadEndpoint, "\"" + endpoint + "\" is not a ZeroMQ endpoint (" + e.what() +
                                               "): expected tcp://HOST:PORT or ipc://PATH"};
    }
    return {ConnectStatus::kUnreachable, "cannot connect to " + endpoint + ": " + e.what()};
  }

  bool refused = false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<zmq::pollitem_t> items{{monitor.handle(), 0, ZMQ_POLLIN, 0}};
  while (std::chrono::steady_clock::now() < deadline) {
    if (stop_requested()) {
      stop_monitor();
      return {ConnectStatus::kInterrupted, "interrupted"};
    }
    if (poll_for(items, kPollSlice) <= 0) continue;
    // A monitor event is two parts: [u16 event, u32 value][endpoint].
    std::vector<zmq::message_t> parts;
    try {
      if (!zmq::recv_multipart(monitor, std::back_inserter(parts), zmq::recv_flags::dontwait)) continue;
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      throw;
    }
    if (parts.empty() || parts[0].size() < 2) continue;
    std::uint16_t event = 0;
    std::memcpy(&event, parts[0].data(), sizeof event);
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
      stop_monitor();
      return {ConnectStatus::kConnected, {}};
    }
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
      stop_monitor();
      return {ConnectStatus::kUnreachable,
              endpoint + " refused this client's CURVE key: add its public key to the daemon's config "
                         "(a device's public_key or security.gateway_keys) and reload"};
    }
    // A failed handshake, or a disconnect before the handshake succeeded: something listens
    // there but will not take a PUSH (a PUB socket just closes the connection). libzmq retries.
    refused = true;
  }
  stop_monitor();
  if (refused) {
    return {ConnectStatus::kUnreachable,
            endpoint + " answered but refused a PUSH socket (the ZeroMQ handshake failed): is this "
                       "kneeloadd's ingest endpoint, not its publish endpoint?"};
  }
  char waited[32];
  std::snprintf(waited, sizeof waited, "%.3g", static_cast<double>(timeout.count()) / 1000.0);
  return {ConnectStatus::kUnreachable,
          "nothing answered at " + endpoint + " within " + waited +
              " s: is kneeloadd running, and is this its ingest endpoint? (--timeout S waits longer)"};
}

std::optional<int> connect_exit(const ConnectResult& result, const ArgParser& args, const char* option,
                                int interrupted_exit) {
  switch (result.status) {
    case ConnectStatus::kConnected: return std::nullopt;
    case ConnectStatus::kInterrupted: return interrupted_exit;
    case ConnectStatus::kBadEndpoint: return args.usage_error(std::string(option) + ": " + result.error);
    case ConnectStatus::kUnreachable: break;
  }
  std::fprintf(stderr, "%s: %s: %s\n", args.program().c_str(), option, result.error.c_str());
  return kExitFailure;
}

SendStatus send_frame(zmq::socket_t& push, std::span<const std::byte> bytes) {
  for (;;) {
    try {
      return push.send(zmq::const_buffer(bytes.data(), bytes.size()), zmq::send_flags::none)
                 ? SendStatus::kSent
                 : SendStatus::kTimedOut;
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
      if (stop_requested()) return SendStatus::kInterrupted;
    }
  }
}

bool write_file_atomically(const std::string& path, const std::string& text, std::string& error) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) {
    error = tmp + ": " + std::strerror(errno);
    return false;
  }
  const bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  const int saved = errno;
  if (std::fclose(f) != 0 || !written) {
    error = tmp + ": " + std::strerror(written ? errno : saved);
    std::remove(tmp.c_str());
    return false;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    error = path + ": " + std::strerror(errno);
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

std::string last_endpoint(zmq::socket_t& socket) { return socket.get(zmq::sockopt::last_endpoint); }

PublishedFeed::PublishedFeed(zmq::context_t& ctx, const std::string& endpoint,
                             const std::vector<std::string>& prefixes, int rcvhwm, const CurveClient* curve)
    : socket_(ctx, zmq::socket_type::sub) {
  if (curve != nullptr) apply(socket_, *curve);
  socket_.set(zmq::sockopt::rcvhwm, rcvhwm);
  socket_.set(zmq::sockopt::linger, 0);
  if (prefixes.empty()) {
    socket_.set(zmq::sockopt::subscribe, "");
  } else {
    for (const std::string& p : prefixes) socket_.set(zmq::sockopt::subscribe, p);
    socket_.set(zmq::sockopt::subscribe, "status");
  }
  socket_.connect(endpoint);
}

void PublishedFeed::drain() {
  for (;;) {
    std::vector<zmq::message_t> parts;
    try {
      if (!zmq::recv_multipart(socket_, std::back_inserter(parts), zmq::recv_flags::dontwait)) return;
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) return;
      throw;
    }
    if (parts.size() != 2) {
      ++malformed_;
      continue;
    }
    pending_.push_back({parts[0].to_string(), parts[1].to_string()});
  }
}

PublishedFeed::Join PublishedFeed::join(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<zmq::pollitem_t> items{{socket_.handle(), 0, ZMQ_POLLIN, 0}};
  std::size_t looked_at = 0;
  for (;;) {
    for (; looked_at < pending_.size(); ++looked_at) {
      if (pending_[looked_at].topic == "status") return Join::kJoined;
    }
    if (stop_requested()) return Join::kInterrupted;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return Join::kTimedOut;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    if (poll_for(items, std::min(left, kPollSlice)) > 0) drain();
  }
}

bool PublishedFeed::next(PublishedMessage& out, std::chrono::milliseconds timeout) {
  if (pending_.empty()) {
    std::vector<zmq::pollitem_t> items{{socket_.handle(), 0, ZMQ_POLLIN, 0}};
    if (poll_for(items, timeout) > 0) drain();
    if (pending_.empty()) return false;
  }
  out = std::move(pending_.front());
  pending_.pop_front();
  return true;
}

}  // namespace kneeload::ctl
