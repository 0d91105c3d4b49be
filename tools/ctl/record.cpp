// kneeloadctl record: capture raw ingest frames into a recording (recording.hpp).
//
// The recorder stands where kneeloadd's ingest would: it binds a PULL on --listen, which the
// devices, gateways or simulator push to, and with --forward it pushes every frame on to the
// daemon unchanged, so a session can be recorded while it runs. Frames are recorded exactly as
// received, malformed ones included, with the recorder's wall-clock and steady-clock arrival
// times; `replay` paces by the steady one.
//
// Forwarding never holds up recording: a frame the daemon's socket does not take at once (the
// daemon is gone, or its queue is full) is recorded anyway and counted as not forwarded.
//
// --stamp-forwarded: by default the daemon aligns the live run on its own receive times, which
// trail the recorded ones by the forwarding latency, so a replay (which stamps the recorded
// times) aligns slightly differently from the live run. With the flag, forwarded frames carry
// their recorded arrival time (stamp.hpp) and the live run aligns exactly as every replay of
// the recording will; the price is that forwarded frames are no longer byte-identical to what
// the devices sent (up to 11 bytes longer), and that latency_us then counts from the recorder.
#include "record.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "cli.hpp"
#include "curve.hpp"
#include "clock.hpp"
#include "kneeload/proto/codec.hpp"
#include "recording.hpp"
#include "sockets.hpp"
#include "stamp.hpp"
#include "stop.hpp"

namespace kneeload::ctl {
namespace {

using namespace std::chrono_literals;

// Where devices push by default (the example config's ingest endpoint): a recorder that
// takes it over records them without reconfiguring a single device.
constexpr const char* kDefaultListen = "tcp://127.0.0.1:5600";
constexpr int kRcvHwm = 100000;
// Room for bursts towards the daemon before a frame counts as not forwarded.
constexpr int kForwardSndHwm = 100000;
constexpr auto kPollSlice = 100ms;
constexpr auto kFlushInterval = 1s;  // a crash loses at most this much of the recording
constexpr auto kProgressInterval = 5s;
constexpr int kFramesPerWakeup = 1000;  // between looks at the clock and the stop flag

struct RecordOptions {
  CurveClient curve;  // --server-key/--key-file: a CURVE client of the daemon
  std::string listen = kDefaultListen;
  std::string output;
  std::string forward;
  std::string config_path;
  std::string endpoints_file;
  double duration_s = 0.0;
  double timeout_s = 5.0;
  bool force = false;
  bool stamp_forwarded = false;
};

// "812 B", "45.4 KB", "12.3 MB": progress lines stay readable from the first frame on.
std::string human_bytes(std::uint64_t bytes) {
  char buf[32];
  const auto b = static_cast<double>(bytes);
  if (bytes < 1000) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  } else if (bytes < 1000 * 1000) {
    std::snprintf(buf, sizeof buf, "%.1f KB", b / 1e3);
  } else if (bytes < 1000ull * 1000 * 1000) {
    std::snprintf(buf, sizeof buf, "%.1f MB", b / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f GB", b / 1e9);
  }
  return buf;
}

class Recorder {
 public:
  Recorder(const RecordOptions& o, const std::string& program, zmq::socket_t& pull,
           std::optional<zmq::socket_t>& forward, RecordingWriter& writer)
      : o_(o), program_(program), pull_(pull), forward_(forward), writer_(writer) {}

  // Records until Ctrl-C or --duration, then takes in what the socket already holds.
  // Returns false after an I/O error on the recording (reported).
  bool run() {
    const auto start = std::chrono::steady_clock::now();
    const std::optional<std::chrono::steady_clock::time_point> end =
        o_.duration_s > 0 ? std::optional(start + to_ms(o_.duration_s)) : std::nullopt;
    auto next_flush = start + kFlushInterval;
    auto next_progress = start + kProgressInterval;
    last_progress_ = start;
    std::vector<zmq::pollitem_t> items{{pull_.handle(), 0, ZMQ_POLLIN, 0}};
    while (!stop_requested() && !(end && std::chrono::steady_clock::now() >= *end)) {
      if (poll_for(items, kPollSlice) > 0 && !take(kFramesPerWakeup)) return false;
      const auto now = std::chrono::steady_clock::now();
      if (now >= next_flush) {
        if (!writer_.flush(error_)) return report_io_error();
        next_flush = now + kFlushInterval;
      }
      if (now >= next_progress) {
        progress(now);
        next_progress = now + kProgressInterval;
      }
    }
    // What is already queued was sent to us before we stopped: keep it, as kneeloadd does.
    do {
      if (!take(kFramesPerWakeup)) return false;
    } while (received_this_take_ > 0);
    return true;
  }

  void summary(double seconds) const {
    std::fprintf(stderr, "%s: recorded %llu frames (%s) in %.1f s to %s\n", program_.c_str(),
                 static_cast<unsigned long long>(writer_.records()), human_bytes(writer_.bytes()).c_str(), seconds,
                 o_.output.c_str());
    if (forward_) {
      std::fprintf(stderr, "%s: forwarded %llu to %s, not forwarded %llu\n", program_.c_str(),
                   static_cast<unsigned long long>(forwarded_), o_.forward.c_str(),
                   static_cast<unsigned long long>(not_forwarded_));
    }
    if (too_large_ > 0) {
      std::fprintf(stderr, "%s: %llu frames over the %zu-byte record limit were not recorded\n", program_.c_str(),
                   static_cast<unsigned long long>(too_large_), kMaxPayloadBytes);
    }
  }

 private:
  // Receives up to `max` frames without waiting. Returns false after an I/O error.
  bool take(int max) {
    received_this_take_ = 0;
    for (int i = 0; i < max; ++i) {
      zmq::message_t msg;
      try {
        if (!pull_.recv(msg, zmq::recv_flags::dontwait)) return true;
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) return true;
        throw;
      }
      ++received_this_take_;
      const std::int64_t steady_us = steady_now_us();
      const std::int64_t unix_us = unix_now_us();
      // Forward first: the live pipeline should not wait for the disk.
      if (forward_) forward(msg, steady_us);
      if (msg.size() > kMaxPayloadBytes) {
        ++too_large_;
        std::fprintf(stderr, "%s: a frame of %zu bytes is over the %zu-byte record limit: not recorded\n",
                     program_.c_str(), msg.size(), kMaxPayloadBytes);
        continue;
      }
      const auto* data = static_cast<const std::byte*>(msg.data());
      if (!writer_.append(unix_us, steady_us, std::span<const std::byte>(data, msg.size()), error_)) {
        return report_io_error();
      }
    }
    return true;
  }

  void forward(const zmq::message_t& msg, std::int64_t arrival_steady_us) {
    zmq::const_buffer bytes(msg.data(), msg.size());
    if (o_.stamp_forwarded) {
      stamped_.assign(static_cast<const char*>(msg.data()), msg.size());
      stamp_recorded_arrival(stamped_, arrival_steady_us);
      bytes = zmq::const_buffer(stamped_.data(), stamped_.size());
    }
    bool sent = false;
    try {
      sent = forward_->send(bytes, zmq::send_flags::dontwait).has_value();
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
    }
    if (sent) {
      ++forwarded_;
    } else {
      ++not_forwarded_;
    }
  }

  void progress(std::chrono::steady_clock::time_point now) {
    const double seconds = std::chrono::duration<double>(now - last_progress_).count();
    const std::uint64_t frames = writer_.records() - records_at_last_progress_;
    std::fprintf(stderr, "%s: %llu frames, %s, %.0f frames/s", program_.c_str(),
                 static_cast<unsigned long long>(writer_.records()), human_bytes(writer_.bytes()).c_str(),
                 seconds > 0 ? static_cast<double>(frames) / seconds : 0.0);
    if (not_forwarded_ > not_forwarded_at_last_progress_) {
      std::fprintf(stderr, "; %llu not forwarded (the daemon is not taking them: down or behind)",
                   static_cast<unsigned long long>(not_forwarded_ - not_forwarded_at_last_progress_));
    }
    std::fputc('\n', stderr);
    last_progress_ = now;
    records_at_last_progress_ = writer_.records();
    not_forwarded_at_last_progress_ = not_forwarded_;
  }

  bool report_io_error() {
    std::fprintf(stderr, "%s: cannot write the recording: %s\n", program_.c_str(), error_.c_str());
    return false;
  }

  const RecordOptions& o_;
  const std::string& program_;
  zmq::socket_t& pull_;
  std::optional<zmq::socket_t>& forward_;
  RecordingWriter& writer_;
  std::string error_;
  std::string stamped_;  // reused for --stamp-forwarded
  int received_this_take_ = 0;
  std::uint64_t forwarded_ = 0, not_forwarded_ = 0, too_large_ = 0;
  std::chrono::steady_clock::time_point last_progress_;
  std::uint64_t records_at_last_progress_ = 0, not_forwarded_at_last_progress_ = 0;
};

int run_record(int argc, char** argv) {
  RecordOptions o;
  ArgParser args("record",
                 "kneeloadctl record --output FILE [--listen E] [--forward E2 [--stamp-forwarded]]\n"
                 "                          [--duration S] [--config DAEMON.toml] [--endpoints-file PATH]\n"
                 "                          [--force] [--timeout S]",
                 "Records raw ingest frames. Binds a PULL socket on --listen, where devices, gateways or\n"
                 "the simulator push their frames, writes each frame with its arrival time to FILE and,\n"
                 "with --forward, pushes it on to kneeloadd unchanged. Progress goes to stderr every 5 s;\n"
                 "Ctrl-C or --duration closes the recording cleanly (exit 0).");
  args.option("--output", "FILE", "the recording to create (required; an existing file is refused)",
              set_string(&o.output));
  args.option("--listen", "E",
              std::string("endpoint to bind for devices (default ") + kDefaultListen +
                  ");\ntcp://HOST:* lets the OS choose the port",
              set_string(&o.listen));
  args.option("--forward", "E2", "kneeloadd's ingest endpoint to pass every frame on to", set_string(&o.forward));
  args.option("--duration", "S", "stop after S seconds", set_seconds(&o.duration_s));
  args.option("--config", "DAEMON.toml", "store this daemon configuration in the recording's header",
              set_string(&o.config_path));
  args.option("--endpoints-file", "PATH", "write \"listen=ENDPOINT\" (as bound) to PATH once recording",
              set_string(&o.endpoints_file));
  args.flag("--stamp-forwarded",
            "forward frames stamped with their recorded arrival time, so the live\n"
            "daemon aligns exactly as replays of FILE will (frames grow by <= 11 bytes)",
            &o.stamp_forwarded);
  args.flag("--force", "overwrite FILE if it exists", &o.force);
  args.option("--timeout", "S", "give up when --forward does not answer within S seconds (default 5)",
              set_seconds(&o.timeout_s));
  add_curve_options(args, o.curve);
  if (const std::optional<int> code = args.parse(argc, argv)) return *code;
  if (const std::string e = resolve(o.curve); !e.empty()) return args.usage_error(e);
  if (o.output.empty()) return args.usage_error("--output FILE is required");
  if (o.stamp_forwarded && o.forward.empty()) return args.usage_error("--stamp-forwarded needs --forward E2");

  RecordingHeader header;
  header.schema_version = proto::kProtocolVersion;
  if (!o.config_path.empty()) {
    std::ifstream in(o.config_path, std::ios::binary);
    std::ostringstream bytes;
    if (!in || !(bytes << in.rdbuf())) {
      return args.usage_error("--config: cannot read \"" + o.config_path + "\"");
    }
    header.config = bytes.str();
    if (header.config.size() > kMaxConfigBytes) {
      return args.usage_error("--config: \"" + o.config_path + "\" is over the " + std::to_string(kMaxConfigBytes) +
                              "-byte limit of a config snapshot");
    }
  }
  if (!o.force && std::filesystem::exists(o.output)) {
    std::fprintf(stderr, "%s: %s exists; pass --force to overwrite it\n", args.program().c_str(), o.output.c_str());
    return kExitFailure;
  }

  install_stop_handlers();
  zmq::context_t ctx{1};
  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  pull.set(zmq::sockopt::rcvhwm, kRcvHwm);
  pull.set(zmq::sockopt::linger, 0);
  try {
    pull.bind(o.listen);
  } catch (const zmq::error_t& e) {
    if (is_endpoint_syntax_error(e)) {
      return args.usage_error("--listen \"" + o.listen + "\" is not a ZeroMQ endpoint (" + e.what() +
                              "): expected tcp://HOST:PORT or ipc://PATH");
    }
    std::fprintf(stderr, "%s: cannot listen on %s: %s\n", args.program().c_str(), o.listen.c_str(), e.what());
    return kExitFailure;
  }
  std::optional<zmq::socket_t> forward;
  if (!o.forward.empty()) {
    forward.emplace(ctx, zmq::socket_type::push);
    forward->set(zmq::sockopt::sndhwm, kForwardSndHwm);
    const ConnectResult c = connect_push(ctx, *forward, o.forward, to_ms(o.timeout_s), &o.curve);
    // Interrupted here: nothing recorded yet, nothing to close.
    if (const auto code = connect_exit(c, args, "--forward", kExitOk)) return *code;
  }

  header.created_unix_us = unix_now_us();
  RecordingWriter writer;
  std::string error;
  if (!writer.open(o.output, o.force, header, error)) {
    std::fprintf(stderr, "%s: cannot create the recording: %s\n", args.program().c_str(), error.c_str());
    return kExitFailure;
  }
  const std::string bound = last_endpoint(pull);
  if (!o.endpoints_file.empty() && !write_file_atomically(o.endpoints_file, "listen=" + bound + "\n", error)) {
    std::fprintf(stderr, "%s: --endpoints-file: %s\n", args.program().c_str(), error.c_str());
    return kExitFailure;
  }
  std::fprintf(stderr, "%s: listening on %s, recording to %s%s%s\n", args.program().c_str(), bound.c_str(),
               o.output.c_str(), forward ? ", forwarding to " : "", forward ? o.forward.c_str() : "");

  const auto start = std::chrono::steady_clock::now();
  Recorder recorder(o, args.program(), pull, forward, writer);
  const bool recorded = recorder.run();
  const bool closed = writer.close(error);
  if (!closed) std::fprintf(stderr, "%s: cannot close the recording: %s\n", args.program().c_str(), error.c_str());
  recorder.summary(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return recorded && closed ? kExitOk : kExitFailure;
}

}  // namespace

const Command kRecordCommand{"record", "record raw ingest frames to a file, optionally forwarding them to kneeloadd",
                             run_record};

}  // namespace kneeload::ctl
