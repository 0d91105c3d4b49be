// kneeloadctl load: drives kneeloadd's ingest socket with realistic frames from many stations,
// as fast as asked, for benchmarks (bench/e2e) — or prints a config that registers them.
//
// The generator must not be the bottleneck, so nothing is encoded while sending: the simulator
// core renders a template stream once (load_frames.hpp), and each send copies a template frame
// into the ZeroMQ message and patches its station digits, seq, sample times and
// recorded_arrival_us in place.
//
// Why recorded_arrival_us: 10,000 stations cannot each send 610 samples/s here, and a single
// station can send far more. The daemon aligns on recorded_arrival_us when it is set, so
// stamping every frame with its device time + a fixed transport delay keeps fusion in the steady
// state of live devices whatever the send rate, while latency is still measured on the daemon's
// own receive clock.
//
// Pacing. --rate R counts samples: the run is due to have sent R·t samples t seconds in. The
// clock (vDSO, no syscall) is read after every frame, and the generator sleeps only when ahead
// by more than kMinSleep: at most one sleep per kMinSleep, no syscall per frame beyond the
// socket's own. Pacing per frame rather than per station slot matters for latency runs: a
// slot's 7 frames all go to the worker of one runner, so sending slots whole in bursts of
// 200 µs made the last frames of each burst wait for the first (bench/RESULTS.md, "Generator
// pacing"). --rate 0 sends as fast as the socket takes frames. "behind" in the summary says the
// requested rate was not held (the daemon pushed back, or this process was starved).
//
// Runs resume: --start-cursor C carries on every station's stream where a run that printed
// next_cursor C stopped (same --stations and --batch), so one daemon can take many runs
// without seeing a duplicate, a reordered frame or a sample older than one it already fused.
//
// Thread ownership: one thread; the template and the socket belong to it.
#include "load.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli.hpp"
#include "clock.hpp"
#include "curve.hpp"
#include "load_frames.hpp"
#include "sockets.hpp"
#include "stop.hpp"

namespace kneeload::ctl {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr const char* kDefaultEndpoint = "tcp://127.0.0.1:5600";
// Room for ~100 ms of frames at 1 M samples/s and more: a daemon thread descheduled for a
// moment must not stall the generator. Whether the daemon keeps up is judged by its counters
// (bench/e2e), not by this queue; memory is bounded by it (~1 KB per frame).
constexpr int kSendHwm = 100'000;
// The finest sleep the pacer asks for. Finer means more even arrivals but more wake-ups of this
// process, which shares the two cores with the daemon; at 50 µs the sleeps are at most 20,000/s,
// whatever the rate. The kernel's default timer slack (50 µs) lets each sleep run up to that
// much longer; the next frames then catch up without sleeping.
constexpr auto kMinSleep = 50us;
constexpr auto kProgressInterval = 5s;
// A run holds its rate when it sent at least this share of what was due.
constexpr double kBehindShare = 0.99;

struct LoadOptions {
  CurveClient curve;
  std::string endpoint = kDefaultEndpoint;
  int stations = 1;
  double rate = 0.0;  // samples/s; 0: as fast as possible
  double duration_s = 10.0;
  int batch = 10;
  int workers = -1;  // --print-config only; -1: the daemon's default, 0: fusion on the ingest thread
  std::uint64_t start_cursor = 0;
  double timeout_s = 5.0;
  bool print_config = false;
  bool json = false;
};

ArgParser::Setter set_int(int* out, int lo, int hi) {
  return [out, lo, hi](std::string_view v) -> std::string {
    int n = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (v.empty() || ec != std::errc() || end != v.data() + v.size() || n < lo || n > hi) {
      return "expects an integer " + std::to_string(lo) + ".." + std::to_string(hi);
    }
    *out = n;
    return {};
  };
}

ArgParser::Setter set_rate(double* out) {
  return [out](std::string_view v) -> std::string {
    double x = 0.0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
    if (v.empty() || ec != std::errc() || end != v.data() + v.size() || !std::isfinite(x) || x < 0.0) {
      return "expects samples per second >= 0 (0: as fast as possible)";
    }
    *out = x;
    return {};
  };
}

ArgParser::Setter set_cursor(std::uint64_t* out) {
  return [out](std::string_view v) -> std::string {
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), *out);
    if (v.empty() || ec != std::errc() || end != v.data() + v.size()) return "expects an integer >= 0";
    return {};
  };
}

struct Totals {
  std::uint64_t frames = 0;
  std::uint64_t samples = 0;
  std::uint64_t bytes = 0;
  std::uint64_t cursor = 0;
  double seconds = 0.0;
  double max_lag_s = 0.0;  // furthest behind schedule at any check
  double flush_s = 0.0;    // closing the socket: frames still queued reach the daemon
  bool behind = false;
};

enum class Outcome : std::uint8_t { kDone, kInterrupted, kSendTimedOut, kOutOfSequence };

// Sends one message; the socket's send timeout bounds a daemon that stops taking frames.
SendStatus send_message(zmq::socket_t& push, zmq::message_t& message) {
  for (;;) {
    try {
      return push.send(message, zmq::send_flags::none) ? SendStatus::kSent : SendStatus::kTimedOut;
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
      if (stop_requested()) return SendStatus::kInterrupted;
    }
  }
}

// After each frame sent: sleeps until the run is no more than kMinSleep ahead of its schedule
// (rate·t), in sleeps of at most 100 ms so that a stop request is seen; otherwise records how
// far behind it is. At low rates one frame can be worth more than 100 ms of schedule.
void pace(double rate, Clock::time_point start, Totals& totals) {
  const double due_s = static_cast<double>(totals.samples) / rate;
  for (;;) {
    const double ahead_s = due_s - std::chrono::duration<double>(Clock::now() - start).count();
    if (ahead_s * 1s <= kMinSleep) {
      if (-ahead_s > totals.max_lag_s) totals.max_lag_s = -ahead_s;
      return;
    }
    if (stop_requested()) return;
    std::this_thread::sleep_for(std::chrono::duration<double>(std::min(ahead_s, 0.1)));
  }
}

Outcome stream(const LoadOptions& o, const LoadTemplate& tmpl, zmq::socket_t& push, const std::string& program,
               Totals& totals) {
  std::vector<std::array<char, kLoadStationDigits>> digits(static_cast<std::size_t>(o.stations));
  for (int i = 0; i < o.stations; ++i) load_station_digits(i + 1, digits[static_cast<std::size_t>(i)].data());
  const LoadSchedule schedule(o.stations, tmpl.slot_count());
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration_s));
  auto next_progress = start + kProgressInterval;
  std::uint64_t cursor = o.start_cursor;
  Outcome outcome = Outcome::kDone;
  for (;;) {
    const int index = schedule.station_index(cursor);
    const std::int64_t q = schedule.position(cursor);
    if (q > tmpl.max_position()) {
      outcome = Outcome::kOutOfSequence;
      break;
    }
    for (const LoadTemplate::Frame& f : tmpl.slot(static_cast<int>(q % tmpl.slot_count()))) {
      zmq::message_t message(f.bytes.size());
      tmpl.write(f, digits[static_cast<std::size_t>(index)].data(), q, static_cast<std::byte*>(message.data()));
      const SendStatus sent = send_message(push, message);
      if (sent != SendStatus::kSent) {
        outcome = sent == SendStatus::kTimedOut ? Outcome::kSendTimedOut : Outcome::kInterrupted;
        break;
      }
      ++totals.frames;
      totals.samples += static_cast<std::uint64_t>(f.samples);
      totals.bytes += f.bytes.size();
      if (o.rate > 0.0) pace(o.rate, start, totals);
    }
    if (outcome != Outcome::kDone) break;
    ++cursor;  // only whole slots count: a station's stream resumes at a slot boundary
    const auto now = Clock::now();
    if (now >= end) break;
    if (stop_requested()) {
      outcome = Outcome::kInterrupted;
      break;
    }
    if (now >= next_progress && !o.json) {
      const double s = std::chrono::duration<double>(now - start).count();
      std::fprintf(stderr, "%s: %.0f s: %" PRIu64 " frames, %" PRIu64 " samples sent, %.0f samples/s\n",
                   program.c_str(), s, totals.frames, totals.samples, static_cast<double>(totals.samples) / s);
      next_progress = now + kProgressInterval;
    }
  }
  totals.cursor = cursor;
  totals.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (o.rate > 0.0) totals.behind = static_cast<double>(totals.samples) < kBehindShare * o.rate * totals.seconds;
  return outcome;
}

std::string print_config_command(const LoadOptions& o) {
  std::string c = "kneeloadctl load --print-config --stations " + std::to_string(o.stations);
  if (o.workers >= 0) c += " --workers " + std::to_string(o.workers);
  if (o.batch != 10) c += " --batch " + std::to_string(o.batch);
  return c;
}

int run_load(int argc, char** argv) {
  LoadOptions o;
  ArgParser args(
      "load",
      "kneeloadctl load [--endpoint E] [--stations N] [--rate SAMPLES_PER_S] [--duration S]\n"
      "                        [--batch K] [--start-cursor C] [--timeout S] [--json] [--print-config]",
      "Drives kneeloadd's ingest endpoint with load stations for benchmarks (bench/e2e): each\n"
      "station is a simulated healthy runner with insoles (100 Hz), knee IMU pairs (200 Hz) and a\n"
      "treadmill, its frames rendered and encoded once and only patched per send, so this process\n"
      "is not the bottleneck. Frames carry recorded_arrival_us = device time + 5 ms, so the daemon\n"
      "aligns them as live at any send rate. Station n has the device ids stNNNNN-il, -ir, -kl, -kr,\n"
      "-tm and runner rNNNNN; --print-config writes a daemon config that registers them. Sends\n"
      "go round the stations one slot (100 ms at --batch 10) each, every station in its own\n"
      "device-time order.\n"
      "A summary goes to stderr at the end (with --json: one JSON line on stdout instead).");
  args.option("--endpoint", "E", std::string("kneeloadd's ingest endpoint, tcp:// or ipc:// (default ") +
                                     kDefaultEndpoint + ")",
              set_string(&o.endpoint));
  args.option("--stations", "N", "load stations st00001..stNNNNN, 1.." + std::to_string(kLoadMaxStations) + " (default 1)",
              set_int(&o.stations, 1, kLoadMaxStations));
  args.option("--rate", "SAMPLES_PER_S", "total samples per second over all stations (default 0: as fast\nas the daemon takes them)",
              set_rate(&o.rate));
  args.option("--duration", "S", "how long to send, in seconds (default 10)", set_seconds(&o.duration_s));
  args.option("--batch", "K", "samples per insole and knee frame, 1.." + std::to_string(kLoadMaxBatch) + " (default 10)",
              set_int(&o.batch, 1, kLoadMaxBatch));
  args.option("--start-cursor", "C",
              "carry on from the next_cursor a previous run into the same daemon\nprinted (same --stations and --batch)",
              set_cursor(&o.start_cursor));
  args.option("--workers", "W", "with --print-config: the daemon's fusion workers (default: its own)",
              set_int(&o.workers, 0, 64));
  args.option("--timeout", "S",
              "give up when nothing answers at the endpoint or a frame is not taken\nwithin S seconds (default 5)",
              set_seconds(&o.timeout_s));
  args.flag("--json",
            "print one JSON line at the end: frames, samples, bytes, seconds, rate,\n"
            "requested_rate, behind, max_lag_ms, flush_ms, next_cursor",
            &o.json);
  args.flag("--print-config", "write a kneeloadd config for --stations N to stdout and exit", &o.print_config);
  add_curve_options(args, o.curve);
  if (const std::optional<int> code = args.parse(argc, argv)) return *code;
  if (const std::string e = resolve(o.curve); !e.empty()) return args.usage_error(e);
  const std::string& program = args.program();

  if (o.print_config) {
    const std::string text = load_daemon_config(o.stations, o.workers, o.batch, print_config_command(o));
    if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0) {
      std::fprintf(stderr, "%s: cannot write the config to stdout\n", program.c_str());
      return kExitFailure;
    }
    return kExitOk;
  }

  LoadTemplateOptions topt;
  topt.batch = o.batch;
  const LoadTemplate tmpl(topt);

  install_stop_handlers();
  zmq::context_t ctx{1};
  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.set(zmq::sockopt::sndhwm, kSendHwm);
  const ConnectResult c = connect_push(ctx, push, o.endpoint, to_ms(o.timeout_s), &o.curve);
  if (const auto code = connect_exit(c, args, "--endpoint", kExitOk)) return *code;

  Totals totals;
  const Outcome outcome = stream(o, tmpl, push, program, totals);
  if (outcome == Outcome::kSendTimedOut) push.set(zmq::sockopt::linger, 0);  // nothing more gets through
  // Closing waits (up to the linger, --timeout) until the queued frames are handed to the
  // daemon: a run is over when its frames are delivered, not when they are queued.
  const auto flush_start = Clock::now();
  push.close();
  ctx.close();
  totals.flush_s = std::chrono::duration<double>(Clock::now() - flush_start).count();

  const double rate = totals.seconds > 0.0 ? static_cast<double>(totals.samples) / totals.seconds : 0.0;
  if (o.json) {
    std::printf("{\"frames\":%" PRIu64 ",\"samples\":%" PRIu64 ",\"bytes\":%" PRIu64
                ",\"seconds\":%.6f,\"rate\":%.1f,\"requested_rate\":%.1f,\"behind\":%s,\"max_lag_ms\":%.3f,"
                "\"flush_ms\":%.3f,\"stations\":%d,\"next_cursor\":%" PRIu64 "}\n",
                totals.frames, totals.samples, totals.bytes, totals.seconds, rate, o.rate,
                totals.behind ? "true" : "false", totals.max_lag_s * 1e3, totals.flush_s * 1e3, o.stations,
                totals.cursor);
    std::fflush(stdout);
  } else {
    std::fprintf(stderr,
                 "%s: sent %" PRIu64 " frames (%" PRIu64 " samples, %" PRIu64
                 " bytes) from %d station%s in %.2f s: %.0f samples/s%s\n",
                 program.c_str(), totals.frames, totals.samples, totals.bytes, o.stations, o.stations == 1 ? "" : "s",
                 totals.seconds, rate,
                 o.rate <= 0.0 ? " (as fast as possible)" : totals.behind ? ", behind the requested rate" : "");
    std::fprintf(stderr, "%s: next cursor %" PRIu64 " (--start-cursor to carry on)\n", program.c_str(), totals.cursor);
  }
  switch (outcome) {
    case Outcome::kDone:
    case Outcome::kInterrupted: return kExitOk;
    case Outcome::kSendTimedOut:
      std::fprintf(stderr, "%s: %s stopped taking frames: a send waited %g s (--timeout)\n", program.c_str(),
                   o.endpoint.c_str(), o.timeout_s);
      return kExitFailure;
    case Outcome::kOutOfSequence:
      std::fprintf(stderr, "%s: the stations' sequence numbers or clocks would outgrow their encoding; start a "
                   "fresh daemon and run from cursor 0\n", program.c_str());
      return kExitFailure;
  }
  return kExitFailure;
}

}  // namespace

const Command kLoadCommand{"load", "drive kneeloadd with pre-encoded frames from many stations, for benchmarks",
                           run_load};

}  // namespace kneeload::ctl
