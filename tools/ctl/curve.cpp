#include "curve.hpp"

#include <sys/stat.h>

#include <cstdio>
#include <fstream>

#include "kneeload/proto/curve_keys.hpp"

namespace kneeload::ctl {

void add_curve_options(ArgParser& args, CurveClient& curve) {
  args.option("--server-key", "KEY|FILE",
              "CURVE: kneeloadd's public key (Z85, or its key file) when it runs with\n"
              "security.curve = true; needs --key-file",
              set_string(&curve.server_key_arg));
  args.option("--key-file", "FILE",
              "CURVE: this client's key pair (kneeloadctl keygen); the daemon must know\n"
              "its public key (a device's public_key, gateway_keys or subscriber_keys)",
              set_string(&curve.key_file));
}

std::string resolve(CurveClient& curve) {
  if (curve.server_key_arg.empty() && curve.key_file.empty()) return {};
  if (curve.server_key_arg.empty()) return "--key-file needs --server-key (the daemon's public key)";
  if (curve.key_file.empty()) return "--server-key needs --key-file (this client's key pair)";
  std::string error;
  if (proto::valid_curve_key(curve.server_key_arg)) {
    curve.server_key = curve.server_key_arg;
  } else {
    const auto server = proto::read_key_file(curve.server_key_arg, error);
    if (!server) return "--server-key: expected a Z85 key or a key file, got " + error;
    curve.server_key = server->public_key;
  }
  const auto mine = proto::read_key_file(curve.key_file, error);
  if (!mine) return "--key-file: " + error;
  if (mine->secret_key.empty()) return "--key-file: \"" + curve.key_file + "\" holds no secret_key (use the .key_secret file)";
  curve.public_key = mine->public_key;
  curve.secret_key = mine->secret_key;
  return {};
}

void apply(zmq::socket_t& socket, const CurveClient& curve) {
  if (!curve.enabled()) return;
  socket.set(zmq::sockopt::curve_serverkey, curve.server_key);
  socket.set(zmq::sockopt::curve_publickey, curve.public_key);
  socket.set(zmq::sockopt::curve_secretkey, curve.secret_key);
}

namespace {

bool write_file(const std::string& path, const std::string& text, mode_t mode, std::string& error) {
  // Created with its final mode, so a secret is never readable by others even for an instant.
  const mode_t old = ::umask(0777 & ~mode);
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  ::umask(old);
  if (!out) {
    error = "cannot write \"" + path + "\"";
    return false;
  }
  ::chmod(path.c_str(), mode);
  return true;
}

int run_keygen(int argc, char** argv) {
  std::string prefix;
  bool force = false;
  ArgParser args("keygen", "kneeloadctl keygen --out PREFIX [--force]",
                 "Makes a CURVE key pair for kneeloadd (security.secret_key_file), a device or gateway\n"
                 "(its public key goes into the daemon's config: a device's public_key or\n"
                 "security.gateway_keys) or a subscriber (security.subscriber_keys). Writes\n"
                 "PREFIX.key_secret (mode 0600: public and secret key) and PREFIX.key (the public key,\n"
                 "to hand out), and prints the public key.");
  args.option("--out", "PREFIX", "path prefix of the two files (required)", set_string(&prefix));
  args.flag("--force", "overwrite existing files", &force);
  if (const std::optional<int> code = args.parse(argc, argv)) return *code;
  if (prefix.empty()) return args.usage_error("--out PREFIX is required");
  const std::string secret_path = prefix + ".key_secret", public_path = prefix + ".key";
  struct stat st{};
  if (!force && (::stat(secret_path.c_str(), &st) == 0 || ::stat(public_path.c_str(), &st) == 0)) {
    std::fprintf(stderr, "%s: %s or %s exists; --force overwrites\n", args.program().c_str(), secret_path.c_str(),
                 public_path.c_str());
    return kExitFailure;
  }
  const proto::CurveKeyPair pair = proto::generate_curve_key_pair();
  std::string error;
  if (!write_file(secret_path, proto::format_key_file(pair, true), 0600, error) ||
      !write_file(public_path, proto::format_key_file(pair, false), 0644, error)) {
    std::fprintf(stderr, "%s: %s\n", args.program().c_str(), error.c_str());
    return kExitFailure;
  }
  std::printf("%s\n", pair.public_key.c_str());
  std::fprintf(stderr, "wrote %s (secret, 0600) and %s (public)\n", secret_path.c_str(), public_path.c_str());
  return kExitOk;
}

}  // namespace

const Command kKeygenCommand{"keygen", "make a CURVE key pair for the daemon, a device, a gateway or a subscriber",
                             run_keygen};

}  // namespace kneeload::ctl
