// CURVE key files: what `kneeloadctl keygen` writes and what kneeloadd and kneeloadctl read.
// A key file is TOML-compatible text: `public_key = "<Z85>"` and, in a secret file,
// `secret_key = "<Z85>"`. Z85 is ZeroMQ's 40-character text form of a 32-byte key.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kneeload::proto {

struct CurveKeyPair {
  std::string public_key;  // Z85
  std::string secret_key;  // Z85; empty for a public-only file
};

// True iff `key` is 40 characters of valid Z85.
bool valid_curve_key(std::string_view key);

// A fresh key pair from libzmq (zmq_curve_keypair, libsodium's randomness).
CurveKeyPair generate_curve_key_pair();

// The file text for `pair` (with the secret key iff with_secret).
std::string format_key_file(const CurveKeyPair& pair, bool with_secret);

// Parses key-file text. nullopt with `error` set ("line 2: expected ...") when it is not one.
std::optional<CurveKeyPair> parse_key_file(std::string_view text, std::string& error);

// Reads and parses `path`; nullopt with `error` set when it cannot be read or parsed.
std::optional<CurveKeyPair> read_key_file(const std::string& path, std::string& error);

}  // namespace kneeload::proto
