// ZeroMQ plumbing shared by the subcommands. Nothing here may wait without a bound: every wait
// takes a timeout and returns on Ctrl-C (stop.hpp), so an unreachable endpoint is an error
// message after --timeout, never a hang (ENGINEERING.md §3.5: a PUSH with no peer blocks
// forever in send unless told otherwise).
//
// Thread ownership: sockets belong to the thread that created them (the main thread).
#pragma once

#include <zmq.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cli.hpp"
#include "curve.hpp"

namespace kneeload::ctl {

// zmq::poll that reports a signal as a timeout (the caller then looks at stop_requested()).
int poll_for(std::vector<zmq::pollitem_t>& items, std::chrono::milliseconds timeout);

// True iff `e` says the endpoint text itself is wrong (not just unreachable): a usage error.
bool is_endpoint_syntax_error(const zmq::error_t& e);

enum class ConnectStatus : std::uint8_t { kConnected, kBadEndpoint, kUnreachable, kInterrupted };

struct ConnectResult {
  ConnectStatus status = ConnectStatus::kUnreachable;
  std::string error;  // for anything but kConnected: what happened, said for a user
};

// Makes a PUSH socket for feeding frames to kneeloadd's ingest and connects it to `endpoint`,
// waiting up to `timeout` for a ZeroMQ peer to complete its handshake (a socket monitor
// reports it). `immediate` keeps frames off connections that are not complete, so a send
// blocks (up to `timeout`, the send timeout) rather than queueing for a peer that is not there.
// With `curve` enabled the socket is a CURVE client, and a key the daemon refuses is reported.
ConnectResult connect_push(zmq::context_t& ctx, zmq::socket_t& push, const std::string& endpoint,
                           std::chrono::milliseconds timeout, const CurveClient* curve = nullptr);

// What a command does with a connect_push() result: nullopt when connected, so it goes on; else
// the exit code to return. A bad endpoint text is a usage error, an unreachable daemon a message
// "kneeloadctl CMD: OPTION: why" and kExitFailure, an interruption `interrupted_exit`.
// `option` names the command-line option that gave the endpoint ("--endpoint").
std::optional<int> connect_exit(const ConnectResult& result, const ArgParser& args, const char* option,
                                int interrupted_exit);

enum class SendStatus : std::uint8_t { kSent, kTimedOut, kInterrupted };

// Sends one single-part message; blocks up to the socket's send timeout when the peer is not
// taking frames. A signal interrupts it only when it asked to stop.
SendStatus send_frame(zmq::socket_t& push, std::span<const std::byte> bytes);

// Writes `text` to `path` atomically (a temporary file renamed over it), like kneeloadd's
// --endpoints-file, so a reader never sees half a file. Returns false with `error` set.
bool write_file_atomically(const std::string& path, const std::string& text, std::string& error);

// The endpoint a socket last bound (ZMQ_LAST_ENDPOINT): the port the OS chose for a "*".
std::string last_endpoint(zmq::socket_t& socket);

struct PublishedMessage {
  std::string topic;
  std::string payload;
};

// A SUB socket on kneeloadd's publish endpoint that knows when it has joined. A PUB drops
// whatever it sends before the subscription reaches it (ENGINEERING.md §3.2), and the first
// `status` heartbeat proves the subscription has arrived, so join() waits for it.
class PublishedFeed {
 public:
  enum class Join : std::uint8_t { kJoined, kTimedOut, kInterrupted };

  // Subscribes to `prefixes` (every topic when empty) and always to "status", then connects.
  // rcvhwm 0 means unbounded: right for a reader that drains continuously and must not lose.
  // Throws zmq::error_t for an endpoint ZeroMQ refuses outright.
  PublishedFeed(zmq::context_t& ctx, const std::string& endpoint,
                const std::vector<std::string>& prefixes, int rcvhwm, const CurveClient* curve = nullptr);

  // Receives until the first status message or the timeout. Messages received on the way are
  // kept for next().
  Join join(std::chrono::milliseconds timeout);
  // The next message, waiting up to `timeout`; false when there is none (or a signal came).
  bool next(PublishedMessage& out, std::chrono::milliseconds timeout);
  // Messages that were not two parts [topic, payload]; skipped.
  std::uint64_t malformed() const { return malformed_; }

 private:
  // Moves everything the socket holds into pending_ without waiting.
  void drain();

  zmq::socket_t socket_;
  std::deque<PublishedMessage> pending_;
  std::uint64_t malformed_ = 0;
};

}  // namespace kneeload::ctl
