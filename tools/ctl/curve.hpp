// CURVE for kneeloadctl's sockets: the options that make a subcommand a CURVE client of a
// kneeloadd running with security.curve = true, and `kneeloadctl keygen`.
#pragma once

#include <zmq.hpp>

#include <string>

#include "cli.hpp"
#include "command.hpp"

namespace kneeload::ctl {

struct CurveClient {
  std::string server_key_arg;  // --server-key: the daemon's public key, or its key file
  std::string key_file;        // --key-file: this client's key pair (kneeloadctl keygen)
  // Resolved by resolve():
  std::string server_key;
  std::string public_key;
  std::string secret_key;

  bool enabled() const { return !server_key.empty(); }
};

// Adds --server-key and --key-file to a subcommand's parser.
void add_curve_options(ArgParser& args, CurveClient& curve);

// Reads the key files after parsing. Returns an error for the user ("--key-file: ...") or "".
std::string resolve(CurveClient& curve);

// Makes `socket` a CURVE client of the daemon; does nothing when !curve.enabled(). Call before
// connect().
void apply(zmq::socket_t& socket, const CurveClient& curve);

extern const Command kKeygenCommand;

}  // namespace kneeload::ctl
