// bench/e2e: the end-to-end benchmark of issue 8, one command. Real processes over real sockets:
// `kneeloadctl load` (pre-encoded frames from N simulated stations) drives a real kneeloadd over
// tcp loopback or ipc, and in the same run the same frames go PUSH → PULL into a decode-only
// receiver, the baseline every headline figure is a ratio of (the machine is shared and noisy).
//
// Per row (transport × stations × workers):
//   1. baseline: `load --rate 0` into BaselineSink (baseline.hpp) decoding only, median of a few
//      runs; then the same into one that also fuses (a second reference, beside the first);
//   2. a fresh kneeloadd with load's --print-config (metrics on port 0, no history store,
//      heartbeats every 50 ms), a subscriber on its publish socket (output_feed.hpp);
//   3. the highest total sample rate it sustains with zero drops: bisection with short probes,
//      then the found rate confirmed for --confirm-s (stepping down 10 % when that fails);
//   4. latency (Header.latency_us of every output) at fixed fractions of that rate;
//   5. the daemon's RSS and peak RSS from /proc.
// A run "holds" a rate iff: the generator kept its schedule (not behind); what it had queued
// reached the daemon and was ingested within kMaxBacklog of its last send (a daemon that
// keeps up clears its queues within a heartbeat; one that falls behind builds a backlog that
// grows with the run, so the 30 s confirmation catches a deficit of ~1 %); the daemon ingested
// exactly what was sent; and not one drop or rejection counter moved (README "Counters").
//
// Every child (daemon, generators) is killed on every exit path (child_process.hpp), every wait
// is bounded, and the exit code is non-zero when a row could not be measured.
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "baseline.hpp"
#include "child_process.hpp"
#include "daemon/config.hpp"
#include "daemon_probe.hpp"
#include "output_feed.hpp"

namespace kneeload::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// A backlog the daemon clears within this after the generator's last send is a hiccup of a
// shared machine, not a deficit (see the file comment).
constexpr double kMaxBacklogMs = 250.0;
// The search's ceiling, relative to the decode-only baseline: the daemon decodes the same
// frames and does more, so it cannot hold much more than the baseline.
constexpr double kCeilingVsBaseline = 1.1;
constexpr double kSearchPrecision = 0.03;  // stop bisecting when hi − lo < 3 % of hi
// After a failed confirmation: 10 % down, or lower still when the run showed what the daemon
// actually got through (samples sent minus samples dropped, per second), with 5 % to spare.
constexpr double kConfirmStepDown = 0.9;
constexpr double kCapacityMargin = 0.95;
constexpr int kConfirmAttempts = 5;
constexpr int kQuickConfirmAttempts = 3;
// Over ipc, libzmq can lose the last frames a PUSH had queued when it closes while the PULL
// pushes back (zeromq/libzmq#4660: linger not honoured): only the baseline runs at --rate 0 close
// so. Those it may lose are counted in the row and must stay below this share of what was sent;
// over tcp the baseline must receive every sample.
constexpr double kIpcCloseLossShare = 1e-4;
constexpr double kWarmupShare = 0.1;  // of the baseline: opens every station's session
constexpr auto kSettleLimit = 60s;
constexpr auto kStalledIngest = 1s;  // 20 heartbeats (50 ms) in which ingest counted nothing more    // the longest the daemon may take to empty its queues
constexpr auto kDaemonStartLimit = 120s;  // 10,000 stations: a 14 MB config to parse

struct Options {
  std::string daemon;
  std::string ctl;
  std::vector<std::string> transports{"tcp", "ipc"};
  bool transports_given = false;
  std::vector<int> stations{100};
  bool stations_given = false;
  std::vector<int> workers{0};  // the daemon's default (pipeline.workers); --scaling: 1,2
  bool workers_given = false;
  bool scaling = false;
  bool quick = false;
  bool json = false;
  int batch = 10;
  double probe_s = 4.0;
  double confirm_s = 30.0;
  double latency_s = 10.0;
  double baseline_s = 3.0;
  int baseline_runs = 3;
  int max_probes = 7;
  std::vector<double> fractions{0.25, 0.5, 0.75};
};

constexpr const char* kUsage =
    "Usage: e2e [--transport tcp|ipc|both] [--stations LIST] [--workers LIST] [--scaling]\n"
    "           [--quick] [--json] [--batch K] [--probe-s S] [--confirm-s S] [--latency-s S]\n"
    "           [--baseline-s S] [--baseline-runs N] [--max-probes N] [--daemon PATH] [--ctl PATH]\n"
    "\n"
    "End-to-end benchmark (issue 8): kneeloadctl load drives a real kneeloadd; per row it measures\n"
    "the decode-only ZeroMQ baseline, the highest sample rate the daemon sustains with zero drops\n"
    "(probes by bisection, then a --confirm-s confirmation), latency at 0.25/0.5/0.75 of that\n"
    "rate, and the daemon's RSS. See bench/README.md for what each figure means.\n"
    "\n"
    "  --transport T     tcp, ipc or both (default both; tcp with --quick and --scaling)\n"
    "  --stations LIST   comma-separated station counts (default 100)\n"
    "  --workers LIST    comma-separated fusion worker counts (default 0, the daemon's: fusion on\n"
    "                    the ingest thread)\n"
    "  --scaling         stations 1,10,100,1000,10000 x workers 1,2 over tcp: throughput and RSS\n"
    "                    per row, RSS growth per station from 1,000 to 10,000; no latency runs\n"
    "  --quick           one transport, short probes and confirmation: the whole run in < 45 s\n"
    "  --json            print one JSON object instead of the table\n"
    "  --batch K         samples per insole and knee frame (default 10, as devices batch)\n"
    "  --probe-s S       length of each search probe (default 4; --quick 1.5)\n"
    "  --confirm-s S     length of the confirmation (default 30; --quick 4)\n"
    "  --latency-s S     length of each latency run (default 10; --quick 2)\n"
    "  --baseline-s S    length of each baseline run (default 3; --quick 1.5)\n"
    "  --baseline-runs N baseline repetitions, median taken (default 3; --quick 2)\n"
    "  --max-probes N    search probes at most (default 7; --quick 4)\n"
    "  --daemon PATH     kneeloadd (default: ../daemon/kneeloadd next to this binary)\n"
    "  --ctl PATH        kneeloadctl (default: ../tools/ctl/kneeloadctl next to this binary)\n"
    "Progress goes to stderr. Exit codes: 0 every row measured; 1 a row failed (the report says\n"
    "which and why); 2 bad arguments; 130 interrupted.\n";

// ---------------------------------------------------------------------------------------------
// Small helpers

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + p.string());
}

std::string tail(const std::string& text, std::size_t lines) {
  std::size_t at = text.size();
  for (std::size_t n = 0; n <= lines && at > 0; ++n) {
    at = text.rfind('\n', at - 1);
    if (at == std::string::npos) return text;
  }
  return text.substr(at + 1);
}

// The number after "key": in a one-line JSON object; nullopt if absent.
std::optional<double> json_number(const std::string& json, const std::string& key) {
  const std::size_t at = json.find("\"" + key + "\":");
  if (at == std::string::npos) return std::nullopt;
  const char* begin = json.c_str() + at + key.size() + 3;
  char* end = nullptr;
  const double v = std::strtod(begin, &end);
  if (end == begin) return std::nullopt;
  return v;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Nearest-rank percentile of sorted values: exact, one of the observed values.
std::int64_t percentile(const std::vector<std::int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "kneeload-e2e-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void progress(const char* format, ...) __attribute__((format(printf, 1, 2)));
void progress(const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::fputs("e2e: ", stderr);
  std::vfprintf(stderr, format, args);
  std::fputc('\n', stderr);
  va_end(args);
}

// ---------------------------------------------------------------------------------------------
// kneeloadctl load

struct LoadResult {
  std::uint64_t samples = 0;
  std::uint64_t next_cursor = 0;
  double seconds = 0.0;
  double rate = 0.0;
  double flush_ms = 0.0;
  double max_lag_ms = 0.0;
  bool behind = false;
  Clock::time_point exited;
};

class Bench {
 public:
  Bench(Options o, const fs::path& dir) : o_(std::move(o)), dir_(dir) {}

  const Options& options() const { return o_; }
  const fs::path& dir() const { return dir_; }

  std::vector<std::string> load_argv(const std::string& endpoint, int stations, double rate, double seconds,
                                     std::uint64_t cursor) const {
    char rate_text[32], seconds_text[32];
    std::snprintf(rate_text, sizeof rate_text, "%.0f", rate);
    std::snprintf(seconds_text, sizeof seconds_text, "%g", seconds);
    return {o_.ctl, "load", "--endpoint", endpoint, "--stations", std::to_string(stations), "--rate", rate_text,
            "--duration", seconds_text, "--batch", std::to_string(o_.batch), "--start-cursor", std::to_string(cursor),
            "--json"};
  }

  // Runs a child to completion within `limit`; returns its stdout. Throws with its stderr on failure.
  std::string capture(const std::vector<std::string>& argv, std::chrono::seconds limit) {
    const fs::path out = dir_ / ("capture-" + std::to_string(++children_) + ".out");
    const fs::path err = dir_ / ("capture-" + std::to_string(children_) + ".err");
    ChildProcess child(argv, out.string(), err.string());
    const std::optional<int> code = child.wait(limit);
    if (code != 0) {
      throw std::runtime_error(argv[0] + " " + argv[1] + (code ? " exited with " + std::to_string(*code) : " timed out") +
                               ":\n" + tail(read_text(err), 10));
    }
    return read_text(out);
  }

  // A `load` run in the background; finish() waits for it and parses its JSON line.
  class LoadProcess {
   public:
    LoadProcess(Bench& bench, const std::vector<std::string>& argv, double seconds)
        : out_(bench.dir_ / ("load-" + std::to_string(++bench.children_) + ".out")),
          err_(bench.dir_ / ("load-" + std::to_string(bench.children_) + ".err")),
          limit_(std::chrono::seconds(static_cast<int>(seconds) + 30)),
          child_(argv, out_.string(), err_.string()) {}
    bool done() { return !child_.running(); }
    LoadResult finish() {
      const std::optional<int> code = child_.wait(limit_);
      LoadResult r;
      r.exited = Clock::now();
      const std::string json = read_text(out_);
      if (code != 0 || json.find('{') == std::string::npos) {
        throw std::runtime_error("kneeloadctl load " + (code ? "exited with " + std::to_string(*code) : std::string("timed out")) +
                                 ":\n" + tail(read_text(err_), 10));
      }
      r.samples = static_cast<std::uint64_t>(json_number(json, "samples").value_or(0));
      r.next_cursor = static_cast<std::uint64_t>(json_number(json, "next_cursor").value_or(0));
      r.seconds = json_number(json, "seconds").value_or(0);
      r.rate = json_number(json, "rate").value_or(0);
      r.flush_ms = json_number(json, "flush_ms").value_or(0);
      r.max_lag_ms = json_number(json, "max_lag_ms").value_or(0);
      r.behind = json.find("\"behind\":true") != std::string::npos;
      return r;
    }

   private:
    fs::path out_, err_;
    std::chrono::seconds limit_;
    ChildProcess child_;
  };

  std::string endpoint_for(const std::string& transport, const std::string& name) const {
    return transport == "ipc" ? "ipc://" + (dir_ / name).string() : "tcp://127.0.0.1:*";
  }

  // load's config for this row, as the daemon runs it here (see the comments inside).
  std::string daemon_config(int stations, int workers) {
    std::string config = capture({o_.ctl, "load", "--print-config", "--stations", std::to_string(stations), "--workers",
                                  std::to_string(workers), "--batch", std::to_string(o_.batch)},
                                 60s);
    // Heartbeats every 50 ms: the bench watches ingest catch up on them (output_feed.hpp).
    const std::size_t publish = config.find("[publish]\n");
    if (publish == std::string::npos) throw std::runtime_error("load --print-config wrote no [publish] table");
    config.insert(publish + 10, "heartbeat_s = 0.05\n");
    // The pauses between the bench's runs are not device silence: no stale-device events.
    config += "\n[health]\nstale_after_s = 600.0\n";
    return config;
  }

 private:
  Options o_;
  fs::path dir_;
  int children_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Rows

struct Run {
  double rate = 0.0;  // requested
  double seconds = 0.0;
  bool ok = false;
  std::string why;  // when !ok
  double achieved = 0.0;
  double backlog_ms = 0.0;
  double drops = 0.0;  // drop and reject counters' growth
  // Where the time went: the mean of the workers' timed samples, and the daemon's CPU time
  // over the run's wall time (all threads: ingest, workers, publisher, ZeroMQ's I/O).
  double fusion_ns = 0.0;
  double daemon_cores = 0.0;
  // Outputs published during the run, and those the idle flush (or a stale device) released
  // rather than an arrival. Live devices make next to none; many mean the load's visits to a
  // station came further apart than pipeline.idle_flush_ms (bench/README.md, "What the load is").
  double outputs = 0.0;
  double timer_released = 0.0;
  // The daemon's own histograms over the run: mean latency (frame arrival -> PUB socket) and
  // the workers' part of it (-> the publisher's ring); the rest is publishing. 0: none.
  double latency_mean_us = 0.0;
  double handoff_mean_us = 0.0;
};

struct LatencyRow {
  double fraction = 0.0;
  Run run;
  std::uint64_t outputs = 0;
  std::uint64_t gaps = 0;
  std::uint64_t timer_released = 0;  // outputs an idle flush released: no latency_us
  std::int64_t p50_us = 0, p99_us = 0, p999_us = 0, max_us = 0;
  std::optional<std::int64_t> age_p50_us;  // Header.age_us: the reorder window's hold included
};

// A row's references (baseline.hpp). They do not depend on the workers: measured once per
// transport and station count, and shared by that size's rows.
struct Baselines {
  std::vector<double> baseline_runs;
  double baseline = 0.0;
  std::uint64_t baseline_lost = 0;  // ipc only: samples libzmq lost at the generator's close
  // Decode and fuse on one thread: the model's own cost on top of the baseline.
  double fused_baseline = 0.0;  // 0 if it could not be measured (fused_baseline_error)
  std::vector<double> fused_baseline_runs;
  std::uint64_t fused_baseline_lost = 0;  // ipc only, as baseline_lost
  std::string fused_baseline_error;
};

struct Row : Baselines {
  std::string transport;
  int stations = 0;
  int workers = 0;
  std::vector<Run> probes;
  std::vector<Run> confirms;
  double sustained = 0.0;  // the confirmed rate, 0 if none
  std::vector<LatencyRow> latency;
  std::optional<Memory> memory;
  double drops = 0.0;  // over the confirmation and the latency runs
  std::uint64_t seq_gaps = 0;
  std::string error;  // the row could not be measured
  double ratio() const { return baseline > 0.0 ? sustained / baseline : 0.0; }
  double fused_ratio() const { return fused_baseline > 0.0 ? sustained / fused_baseline : 0.0; }
};

double measure_baseline(Bench& bench, const std::string& transport, int stations, const std::string& config,
                        BaselineSink::Work work, std::vector<double>& runs, std::uint64_t& lost) {
  const Options& o = bench.options();
  const bool fuse = work == BaselineSink::Work::kDecodeAndFuse;
  zmq::context_t ctx{1};
  BaselineSink sink(ctx, bench.endpoint_for(transport, fuse ? "fused-baseline" : "baseline"), config, work);
  for (int i = 0; i < o.baseline_runs; ++i) {
    Bench::LoadProcess load(bench, bench.load_argv(sink.endpoint(), stations, 0.0, o.baseline_s, 0), o.baseline_s);
    const BaselineRun r = sink.receive([&] { return load.done(); }, 200ms);
    const LoadResult sent = load.finish();
    const std::uint64_t shortfall = sent.samples > r.samples_accepted ? sent.samples - r.samples_accepted : 0;
    const bool close_loss = transport == "ipc" && r.samples_accepted <= sent.samples &&
                            static_cast<double>(shortfall) <= kIpcCloseLossShare * static_cast<double>(sent.samples);
    if (r.rejected != 0 || (r.samples_accepted != sent.samples && !close_loss)) {
      throw std::runtime_error(std::string(fuse ? "fused " : "") + "baseline: the decoder accepted " +
                               std::to_string(r.samples_accepted) + " of " + std::to_string(sent.samples) +
                               " samples sent and rejected " + std::to_string(r.rejected));
    }
    if (fuse && r.outputs == 0) throw std::runtime_error("fused baseline: the sessions emitted nothing");
    lost += shortfall;
    runs.push_back(r.samples_per_s());
    progress("baseline %s, %d stations: %.0f samples/s %s (%" PRIu64 " samples in %.2f s)", transport.c_str(), stations,
             r.samples_per_s(), fuse ? "decoded and fused" : "decode-only", r.samples_done, r.seconds);
  }
  return median(runs);
}

// One kneeloadd for one row, its subscriber, and the generator's cursor into its streams.
class DaemonUnderTest {
 public:
  DaemonUnderTest(Bench& bench, const std::string& transport, int stations, const std::string& config)
      : bench_(bench),
        stations_(stations),
        log_(bench.dir() / ("kneeloadd-" + transport + "-" + std::to_string(stations) + ".log")) {
    const fs::path config_path = bench.dir() / "kneeloadd.toml";
    const fs::path endpoints = bench.dir() / "endpoints";
    fs::remove(endpoints);
    write_text(config_path, config);
    process_.emplace(std::vector<std::string>{bench.options().daemon, "--config", config_path.string(), "--ingest",
                                              bench.endpoint_for(transport, "ingest"), "--publish",
                                              bench.endpoint_for(transport, "publish"), "--metrics", "127.0.0.1:0",
                                              "--endpoints-file", endpoints.string(), "--state-dir", ""},
                     (bench.dir() / "kneeloadd.out").string(), log_.string());
    const auto deadline = Clock::now() + kDaemonStartLimit;
    while (!fs::exists(endpoints)) {
      if (!process_->running()) throw std::runtime_error("kneeloadd exited at start:\n" + tail(read_text(log_), 10));
      if (Clock::now() > deadline) throw std::runtime_error("kneeloadd did not start within 120 s");
      nap(10ms);
    }
    std::istringstream in(read_text(endpoints));
    std::string line;
    while (std::getline(in, line)) {
      const auto eq = line.find('=');
      if (eq == std::string::npos) continue;
      const std::string key = line.substr(0, eq), value = line.substr(eq + 1);
      if (key == "ingest" && ingest_.empty()) ingest_ = value;
      if (key == "publish") publish_ = value;
      if (key == "metrics") metrics_ = value;
    }
    if (ingest_.empty() || publish_.empty() || metrics_.empty()) throw std::runtime_error("kneeloadd's endpoints file is incomplete");
    feed_.emplace(ctx_, publish_);
    if (!feed_->wait_joined(10s)) throw std::runtime_error("no status heartbeat from kneeloadd within 10 s");
  }

  ~DaemonUnderTest() {
    feed_.reset();
    if (process_ && process_->running()) process_->stop(10s);
  }

  OutputFeed& feed() { return *feed_; }

  // Set once kneeloadd has exited (128 + signal when killed by one): it should not during a row.
  std::optional<int> exit_code() { return process_->wait(std::chrono::milliseconds(0)); }

  // Once everything is fused, its last outputs may still be on their way to the subscriber:
  // waits until none has arrived for 100 ms (at most 2 s).
  void wait_outputs_settled() {
    const auto deadline = Clock::now() + 2s;
    std::uint64_t seen = feed_->outputs();
    auto quiet_since = Clock::now();
    while (Clock::now() - quiet_since < 100ms && Clock::now() < deadline) {
      nap(10ms);
      if (const std::uint64_t now = feed_->outputs(); now != seen) {
        seen = now;
        quiet_since = Clock::now();
      }
    }
  }
  pid_t pid() const { return process_->pid(); }
  std::string log_tail() const { return tail(read_text(log_), 10); }

  // Sends at `rate` for `seconds` and judges whether the daemon held it (file comment).
  Run run(double rate, double seconds) {
    if (!process_->running()) throw std::runtime_error("kneeloadd died:\n" + log_tail());
    const DaemonCounters before = scrape_or_throw();
    const std::optional<double> cpu_before = read_cpu_seconds(process_->pid());
    const auto started = Clock::now();
    Bench::LoadProcess load(bench_, bench_.load_argv(ingest_, stations_, rate, seconds, cursor_), seconds);
    const LoadResult sent = load.finish();
    cursor_ = sent.next_cursor;
    const double target = before.samples_ingested + static_cast<double>(sent.samples);
    // Ingest caught up: the first heartbeat that counts every sample sent. Or gave up: 20
    // heartbeats without progress mean nothing more is coming (frames lost at the generator's
    // close, kIpcCloseLossShare), and the run is judged on what arrived.
    const auto settle_deadline = sent.exited + kSettleLimit;
    std::uint64_t accepted = feed_->samples_accepted();
    auto moved = Clock::now();
    while (static_cast<double>(accepted) < target && Clock::now() < settle_deadline &&
           Clock::now() - moved < kStalledIngest) {
      check_interrupted();
      std::this_thread::sleep_for(1ms);
      if (const std::uint64_t now = feed_->samples_accepted(); now != accepted) {
        accepted = now;
        moved = Clock::now();
      }
    }
    const double caught_up_ms = std::chrono::duration<double, std::milli>(Clock::now() - sent.exited).count();
    // Fusion caught up: every ingested sample fused or counted as dropped at ingest.
    DaemonCounters after = scrape_or_throw();
    while (after.samples_fused + after.dropped_ingest < after.samples_ingested && Clock::now() < settle_deadline) {
      nap(50ms);
      after = scrape_or_throw();
    }
    Run r;
    r.rate = rate;
    r.seconds = seconds;
    r.achieved = sent.rate;
    r.backlog_ms = sent.flush_ms + caught_up_ms;
    r.drops = (after.dropped - before.dropped) + (after.rejected() - before.rejected());
    r.outputs = after.outputs - before.outputs;
    r.timer_released = after.outputs_timer_released - before.outputs_timer_released;
    r.fusion_ns = 1e9 * after.fusion.mean_s_since(before.fusion);
    r.latency_mean_us = 1e6 * after.latency.mean_s_since(before.latency);
    r.handoff_mean_us = 1e6 * after.handoff.mean_s_since(before.handoff);
    const std::optional<double> cpu_after = read_cpu_seconds(process_->pid());
    if (cpu_before && cpu_after) {
      r.daemon_cores = (*cpu_after - *cpu_before) / std::chrono::duration<double>(Clock::now() - started).count();
    }
    const double ingested = after.samples_ingested - before.samples_ingested;
    // Every reason, not just the first: together they say what bounded the run.
    const auto because = [&r](const std::string& reason) { r.why += (r.why.empty() ? "" : "; ") + reason; };
    char buf[256];
    if (sent.behind) {
      std::snprintf(buf, sizeof buf, "generator behind (sent %.0f samples/s, %.0f ms late at worst)", sent.rate,
                    sent.max_lag_ms);
      because(buf);
    }
    if (r.drops > 0) because("dropped or rejected: " + grown_series(before, after));
    if (ingested != static_cast<double>(sent.samples)) {
      std::snprintf(buf, sizeof buf, "ingested %.0f of %" PRIu64 " samples sent", ingested, sent.samples);
      because(buf);
    }
    if (r.backlog_ms > kMaxBacklogMs) {
      std::snprintf(buf, sizeof buf, "backlog: ingest caught up %.0f ms after the last send", r.backlog_ms);
      because(buf);
    }
    r.ok = r.why.empty();
    return r;
  }

 private:
  DaemonCounters scrape_or_throw() {
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (const std::optional<DaemonCounters> c = scrape(metrics_)) return *c;
      nap(100ms);
    }
    throw std::runtime_error("kneeloadd's metrics endpoint does not answer:\n" + log_tail());
  }

  Bench& bench_;
  int stations_;
  fs::path log_;
  zmq::context_t ctx_{1};
  std::optional<ChildProcess> process_;
  std::optional<OutputFeed> feed_;
  std::string ingest_, publish_, metrics_;
  std::uint64_t cursor_ = 0;
};

std::string describe(const Run& r) {
  char head[96], cost[96];
  std::snprintf(head, sizeof head, "%.0f samples/s for %g s: ", r.rate, r.seconds);
  std::snprintf(cost, sizeof cost, " (fusion %.0f ns/sample, daemon %.2f cores)", r.fusion_ns, r.daemon_cores);
  std::string text = head + (r.ok ? std::string("held") : r.why) + cost;
  if (r.timer_released > 0.0) {
    char timer[96];
    std::snprintf(timer, sizeof timer, "; %.0f of %.0f outputs timer-released", r.timer_released, r.outputs);
    text += timer;
  }
  return text;
}

void measure_row_on(Bench& bench, DaemonUnderTest& daemon, Row& row, bool latency);

// A kneeloadd that dies mid-row would otherwise be reported as whatever noticed it first (a
// metrics endpoint that does not answer, a generator whose sends time out): say it first.
void measure_row(Bench& bench, Row& row, const std::string& config, bool latency) {
  DaemonUnderTest daemon(bench, row.transport, row.stations, config);
  auto died = [&](const std::string& what) -> std::optional<std::string> {
    const std::optional<int> code = daemon.exit_code();
    if (!code) return std::nullopt;
    // kneeloadd's own exit codes are small; ChildProcess reports a signal as 128 + its number.
    return "kneeloadd exited with " + std::to_string(*code) + (*code > 128 ? " (128 + signal " + std::to_string(*code - 128) + ")" : "") +
           " during the row; " + what + "\n" + daemon.log_tail();
  };
  try {
    measure_row_on(bench, daemon, row, latency);
  } catch (const Interrupted&) {
    throw;
  } catch (const std::exception& e) {
    if (auto why = died(e.what())) throw std::runtime_error(*why);
    throw;
  }
  if (!row.error.empty()) {
    if (auto why = died(row.error)) row.error = *why;
  }
}

void measure_row_on(Bench& bench, DaemonUnderTest& daemon, Row& row, bool latency) {
  const Options& o = bench.options();
  progress("kneeloadd up: %s, %d stations, %d worker%s", row.transport.c_str(), row.stations, row.workers,
           row.workers == 1 ? "" : "s");
  daemon.run(kWarmupShare * row.baseline, o.quick ? 0.5 : 2.0);  // not judged: sessions open

  // Bisection between a rate held (lo) and one not held (hi).
  double lo = 0.0, hi = kCeilingVsBaseline * row.baseline;
  for (int i = 0; i < o.max_probes || (lo == 0.0 && hi > row.baseline / 1000.0); ++i) {
    const double rate = 0.5 * (lo + hi);
    const Run r = daemon.run(rate, o.probe_s);
    row.probes.push_back(r);
    progress("  probe %s", describe(r).c_str());
    (r.ok ? lo : hi) = rate;
    if (lo > 0.0 && hi - lo < kSearchPrecision * hi) break;
  }
  if (lo == 0.0) {
    row.error = "no rate held, down to " + std::to_string(static_cast<long>(hi)) + " samples/s";
    return;
  }
  double rate = lo;
  const int attempts = o.quick ? kQuickConfirmAttempts : kConfirmAttempts;
  for (int attempt = 0; attempt < attempts; ++attempt) {
    const Run r = daemon.run(rate, o.confirm_s);
    row.confirms.push_back(r);
    progress("  confirm %s", describe(r).c_str());
    if (r.ok) {
      row.sustained = rate;
      row.drops += r.drops;
      break;
    }
    const double delivered = r.achieved - r.drops / r.seconds;
    rate = delivered > 0.0 ? std::min(rate * kConfirmStepDown, kCapacityMargin * delivered) : rate * kConfirmStepDown;
  }
  row.memory = read_memory(daemon.pid());
  if (row.sustained == 0.0) {
    row.error = "the confirmation failed " + std::to_string(attempts) + " times, down to " +
                std::to_string(static_cast<long>(row.confirms.back().rate)) + " samples/s";
    return;
  }
  if (!latency) return;
  for (const double f : o.fractions) {
    LatencyRow l;
    l.fraction = f;
    daemon.feed().start_recording();
    l.run = daemon.run(f * row.sustained, o.latency_s);
    daemon.wait_outputs_settled();
    OutputFeed::Recording rec = daemon.feed().stop_recording();
    std::sort(rec.latency_us.begin(), rec.latency_us.end());
    l.outputs = rec.latency_us.size();
    l.timer_released = rec.timer_released;
    l.gaps = rec.gaps;
    l.p50_us = percentile(rec.latency_us, 0.50);
    l.p99_us = percentile(rec.latency_us, 0.99);
    l.p999_us = percentile(rec.latency_us, 0.999);
    l.max_us = rec.latency_us.empty() ? 0 : rec.latency_us.back();
    if (!rec.age_us.empty()) {
      std::sort(rec.age_us.begin(), rec.age_us.end());
      l.age_p50_us = percentile(rec.age_us, 0.50);
    }
    row.drops += l.run.drops;
    progress("  latency at %.2f: %s; %" PRIu64 " outputs (+%" PRIu64 " timer-released), p50 %" PRId64
             " us, p99 %" PRId64 " us, p99.9 %" PRId64 " us, age p50 %" PRId64 " us",
             f, describe(l.run).c_str(), l.outputs, l.timer_released, l.p50_us, l.p99_us, l.p999_us,
             l.age_p50_us.value_or(0));
    row.latency.push_back(l);
  }
  if (const std::optional<Memory> m = read_memory(daemon.pid())) {
    if (row.memory) {
      row.memory->rss_kib = std::max(row.memory->rss_kib, m->rss_kib);
      row.memory->hwm_kib = m->hwm_kib;
    } else {
      row.memory = m;
    }
  }
  row.seq_gaps = daemon.feed().seq_gaps();
}

// ---------------------------------------------------------------------------------------------
// Report

const LatencyRow* at_fraction(const Row& row, double f) {
  for (const LatencyRow& l : row.latency) {
    if (std::fabs(l.fraction - f) < 1e-9) return &l;
  }
  return nullptr;
}

void append(std::string& out, const char* format, ...) __attribute__((format(printf, 2, 3)));
void append(std::string& out, const char* format, ...) {
  // Any length: a run's `why` lists every grown drop series, and a cut line is invalid JSON.
  va_list args;
  va_start(args, format);
  va_list again;
  va_copy(again, args);
  const int n = std::vsnprintf(nullptr, 0, format, args);
  va_end(args);
  if (n > 0) {
    const std::size_t at = out.size();
    out.resize(at + static_cast<std::size_t>(n) + 1);
    std::vsnprintf(out.data() + at, static_cast<std::size_t>(n) + 1, format, again);
    out.resize(at + static_cast<std::size_t>(n));
  }
  va_end(again);
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
      continue;
    }
    out += c;
  }
  return out + "\"";
}

void append_run(std::string& out, const Run& r) {
  append(out,
         "{\"rate\":%.0f,\"seconds\":%g,\"held\":%s,\"achieved\":%.0f,\"backlog_ms\":%.1f,\"drops\":%.0f,"
         "\"fusion_ns_per_sample\":%.0f,\"daemon_cores\":%.3f,\"outputs\":%.0f,\"timer_released_outputs\":%.0f,"
         "\"latency_mean_us\":%.1f,\"handoff_mean_us\":%.1f,\"why\":%s}",
         r.rate, r.seconds, r.ok ? "true" : "false", r.achieved, r.backlog_ms, r.drops, r.fusion_ns, r.daemon_cores,
         r.outputs, r.timer_released, r.latency_mean_us, r.handoff_mean_us, json_string(r.why).c_str());
}

// RSS growth per station between 1,000 and 10,000 stations, for one worker count.
std::optional<double> rss_growth_kib(const std::vector<Row>& rows, int workers) {
  const Row *small = nullptr, *large = nullptr;
  for (const Row& r : rows) {
    if (r.workers != workers || !r.memory) continue;
    if (r.stations == 1000) small = &r;
    if (r.stations == 10000) large = &r;
  }
  if (small == nullptr || large == nullptr) return std::nullopt;
  return static_cast<double>(large->memory->rss_kib - small->memory->rss_kib) / 9000.0;
}

std::optional<double> throughput_ratio(const std::vector<Row>& rows, int workers, int a, int b) {
  double ra = 0, rb = 0;
  for (const Row& r : rows) {
    if (r.workers != workers) continue;
    if (r.stations == a) ra = r.sustained;
    if (r.stations == b) rb = r.sustained;
  }
  if (ra <= 0 || rb <= 0) return std::nullopt;
  return ra / rb;
}

std::string json_report(const Options& o, const std::vector<Row>& rows) {
  const Row& head = rows.front();
  const LatencyRow* half = at_fraction(head, 0.5);
  double drops = 0;
  for (const Row& r : rows) drops += r.drops;
  std::string out;
  append(out, "{\"samples_per_s\":%.0f,\"baseline_samples_per_s\":%.0f,\"ratio_vs_baseline\":%.4f,", head.sustained,
         head.baseline, head.ratio());
  append(out, "\"fused_baseline_samples_per_s\":%.0f,\"ratio_vs_fused_baseline\":%.4f,", head.fused_baseline,
         head.fused_ratio());
  if (half != nullptr) {
    append(out, "\"p50_us\":%" PRId64 ",\"p99_us\":%" PRId64 ",\"p999_us\":%" PRId64 ",", half->p50_us, half->p99_us,
           half->p999_us);
    if (half->age_p50_us) append(out, "\"age_p50_us\":%" PRId64 ",", *half->age_p50_us);
    append(out, "\"latency_mean_us\":%.1f,\"handoff_mean_us\":%.1f,", half->run.latency_mean_us,
           half->run.handoff_mean_us);
  } else {
    out += "\"p50_us\":null,\"p99_us\":null,\"p999_us\":null,";
  }
  append(out, "\"drops\":%.0f,\"headline\":{\"transport\":%s,\"stations\":%d,\"workers\":%d},", drops,
         json_string(head.transport).c_str(), head.stations, head.workers);
  append(out, "\"batch\":%d,\"quick\":%s,\"scaling\":%s,\"probe_s\":%g,\"confirm_s\":%g,\"latency_s\":%g,\"rows\":[",
         o.batch, o.quick ? "true" : "false", o.scaling ? "true" : "false", o.probe_s, o.confirm_s, o.latency_s);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    append(out, "%s{\"transport\":%s,\"stations\":%d,\"workers\":%d,\"baseline_samples_per_s\":%.0f,\"baseline_runs\":[",
           i ? "," : "", json_string(r.transport).c_str(), r.stations, r.workers, r.baseline);
    for (std::size_t k = 0; k < r.baseline_runs.size(); ++k) append(out, "%s%.0f", k ? "," : "", r.baseline_runs[k]);
    append(out, "],\"fused_baseline_samples_per_s\":%.0f,\"fused_baseline_runs\":[", r.fused_baseline);
    for (std::size_t k = 0; k < r.fused_baseline_runs.size(); ++k) {
      append(out, "%s%.0f", k ? "," : "", r.fused_baseline_runs[k]);
    }
    append(out, "],\"fused_baseline_lost_samples\":%" PRIu64 ",\"fused_baseline_error\":%s,", r.fused_baseline_lost,
           r.fused_baseline_error.empty() ? "null" : json_string(r.fused_baseline_error).c_str());
    append(out, "\"baseline_lost_samples\":%" PRIu64 ",\"samples_per_s\":%.0f,\"ratio_vs_baseline\":%.4f,\"ratio_vs_fused_baseline\":%.4f,\"drops\":%.0f,\"sub_seq_gaps\":%" PRIu64 ",",
           r.baseline_lost, r.sustained, r.ratio(), r.fused_ratio(), r.drops, r.seq_gaps);
    if (r.memory) {
      append(out, "\"rss_kib\":%" PRId64 ",\"hwm_kib\":%" PRId64 ",", r.memory->rss_kib, r.memory->hwm_kib);
    }
    out += "\"probes\":[";
    for (std::size_t k = 0; k < r.probes.size(); ++k) {
      if (k) out += ",";
      append_run(out, r.probes[k]);
    }
    out += "],\"confirms\":[";
    for (std::size_t k = 0; k < r.confirms.size(); ++k) {
      if (k) out += ",";
      append_run(out, r.confirms[k]);
    }
    out += "],\"latency\":[";
    for (std::size_t k = 0; k < r.latency.size(); ++k) {
      const LatencyRow& l = r.latency[k];
      append(out,
             "%s{\"fraction\":%g,\"outputs\":%" PRIu64 ",\"timer_released\":%" PRIu64 ",\"sub_seq_gaps\":%" PRIu64
             ",\"p50_us\":%" PRId64 ",\"p99_us\":%" PRId64 ",\"p999_us\":%" PRId64 ",\"max_us\":%" PRId64 ",",
             k ? "," : "", l.fraction, l.outputs, l.timer_released, l.gaps, l.p50_us, l.p99_us, l.p999_us,
             l.max_us);
      if (l.age_p50_us) append(out, "\"age_p50_us\":%" PRId64 ",", *l.age_p50_us);
      out += "\"run\":";
      append_run(out, l.run);
      out += "}";
    }
    append(out, "],\"error\":%s}", r.error.empty() ? "null" : json_string(r.error).c_str());
  }
  out += "]";
  if (o.scaling) {
    out += ",\"scaling\":{";
    bool first = true;
    for (const int w : o.workers) {
      const std::optional<double> g = rss_growth_kib(rows, w);
      const std::optional<double> t = throughput_ratio(rows, w, 10000, 10);
      append(out, "%s\"workers_%d\":{\"rss_growth_kib_per_station\":%s,\"throughput_10000_vs_10\":%s}",
             first ? "" : ",", w, g ? std::to_string(*g).c_str() : "null", t ? std::to_string(*t).c_str() : "null");
      first = false;
    }
    out += "}";
  }
  out += "}\n";
  return out;
}

std::string table_report(const Options& o, const std::vector<Row>& rows) {
  std::string out;
  append(out, "kneeload end-to-end (bench/e2e%s%s), batch %d, probes %g s, confirmation %g s, latency runs %g s\n\n",
         o.quick ? " --quick" : "", o.scaling ? " --scaling" : "", o.batch, o.probe_s, o.confirm_s, o.latency_s);
  append(out, "%-5s %8s %3s | %12s %12s %6s | %-23s %-23s %-23s | %8s %8s | %5s\n", "tport", "stations", "wk",
         "baseline/s", "sustained/s", "ratio", "lat@0.25 p50/p99/p99.9", "lat@0.50 p50/p99/p99.9",
         "lat@0.75 p50/p99/p99.9", "RSS MiB", "peak MiB", "drops");
  for (const Row& r : rows) {
    append(out, "%-5s %8d %3d | %12.0f %12.0f %6.3f |", r.transport.c_str(), r.stations, r.workers, r.baseline,
           r.sustained, r.ratio());
    for (const double f : {0.25, 0.5, 0.75}) {
      const LatencyRow* l = at_fraction(r, f);
      if (l == nullptr) {
        append(out, " %-23s", "-");
      } else {
        char cell[64];
        // '*': the run did not hold its rate (its drops are in the row's): the figures are what an
        // overloaded daemon did, not the latency at that fraction of a sustained rate.
        std::snprintf(cell, sizeof cell, "%" PRId64 "/%" PRId64 "/%" PRId64 " us%s", l->p50_us, l->p99_us, l->p999_us,
                      l->run.ok ? "" : " *");
        append(out, " %-23s", cell);
      }
    }
    if (r.memory) {
      append(out, " | %8.1f %8.1f", static_cast<double>(r.memory->rss_kib) / 1024.0,
             static_cast<double>(r.memory->hwm_kib) / 1024.0);
    } else {
      append(out, " | %8s %8s", "-", "-");
    }
    append(out, " | %5.0f\n", r.drops);
    if (!r.error.empty()) append(out, "      ^ failed: %s\n", r.error.c_str());
  }
  if (o.scaling) {
    out += "\n";
    for (const int w : o.workers) {
      if (const std::optional<double> g = rss_growth_kib(rows, w)) {
        append(out, "workers %d: RSS growth %.1f KiB per station from 1,000 to 10,000 stations\n", w, *g);
      }
      if (const std::optional<double> t = throughput_ratio(rows, w, 10000, 10)) {
        append(out, "workers %d: throughput at 10,000 stations = %.3f x that at 10\n", w, *t);
      }
    }
  }
  for (const Row& r : rows) {
    if (r.fused_baseline > 0.0) {
      append(out, "%s %d stations %d workers: decode-and-fuse baseline %.0f samples/s, sustained / it = %.3f\n",
             r.transport.c_str(), r.stations, r.workers, r.fused_baseline, r.fused_ratio());
    } else if (!r.fused_baseline_error.empty()) {
      append(out, "%s %d stations %d workers: no decode-and-fuse baseline: %s\n", r.transport.c_str(), r.stations,
             r.workers, r.fused_baseline_error.c_str());
    }
    const LatencyRow* l = at_fraction(r, 0.5);
    if (l != nullptr && l->age_p50_us) {
      append(out, "%s %d stations %d workers: Header.age_us p50 at 0.5 = %" PRId64 " us\n", r.transport.c_str(),
             r.stations, r.workers, *l->age_p50_us);
    }
    if (l != nullptr && l->run.latency_mean_us > 0.0) {
      append(out,
             "%s %d stations %d workers: mean latency at 0.5 = %.0f us, of which %.0f us until a worker handed "
             "the output on (daemon histograms)\n",
             r.transport.c_str(), r.stations, r.workers, l->run.latency_mean_us, l->run.handoff_mean_us);
    }
  }
  // A row whose confirmation had more than 1 % of its outputs released by the idle flush did not
  // run in the live regime, and its rate is not comparable with the others (bench/README.md).
  for (const Row& r : rows) {
    if (r.sustained == 0.0 || r.confirms.empty()) continue;
    const Run& c = r.confirms.back();
    if (c.timer_released > 0.01 * c.outputs) {
      append(out, "%s %d stations %d workers: %.0f of %.0f outputs of the confirmation were released by the idle "
             "flush, not by arrivals: not the live regime\n",
             r.transport.c_str(), r.stations, r.workers, c.timer_released, c.outputs);
    }
  }
  bool unheld = false;
  for (const Row& r : rows) {
    for (const LatencyRow& l : r.latency) unheld = unheld || !l.run.ok;
  }
  if (unheld) out += "* that latency run did not hold its rate: see rows[].latency[].run.why with --json\n";
  out += "\nbaseline: decode-only PULL of the same frames, median of runs (decode-and-fuse: the same, each sample\n"
         "also fused on that thread, outputs discarded); sustained: confirmed with zero drops;\n"
         "latency: Header.latency_us of every output a frame released (that frame's arrival -> publish), exact\n"
         "percentiles; age: Header.age_us (the output's own sample's arrival -> publish, reorder hold included).\n";
  return out;
}

// ---------------------------------------------------------------------------------------------
// Command line

std::optional<std::vector<int>> parse_int_list(const std::string& text, long min) {
  std::vector<int> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < min || v > 99999) return std::nullopt;
    out.push_back(static_cast<int>(v));
  }
  if (out.empty()) return std::nullopt;
  return out;
}

std::optional<double> parse_seconds(const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(v) || v <= 0.0) return std::nullopt;
  return v;
}

fs::path self_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::current_path() : exe.parent_path();
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "e2e: %s\nTry 'e2e --help'.\n", message.c_str());
  return 2;
}

std::optional<int> parse_options(int argc, char** argv, Options& o) {
  bool probe_given = false, confirm_given = false, latency_given = false, baseline_given = false, runs_given = false,
       max_probes_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= argc) return std::nullopt;
      return std::string(argv[++i]);
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--quick") {
      o.quick = true;
    } else if (arg == "--json") {
      o.json = true;
    } else if (arg == "--scaling") {
      o.scaling = true;
    } else {
      const std::optional<std::string> v = value();
      if (!v) return usage_error("missing value for " + arg);
      if (arg == "--transport") {
        if (*v == "tcp" || *v == "ipc") {
          o.transports = {*v};
        } else if (*v == "both") {
          o.transports = {"tcp", "ipc"};
        } else {
          return usage_error("--transport expects tcp, ipc or both, got " + *v);
        }
        o.transports_given = true;
      } else if (arg == "--stations" || arg == "--workers") {
        // Workers 0: the daemon fuses on its ingest thread (pipeline.workers = 0).
        const bool workers = arg == "--workers";
        const std::optional<std::vector<int>> list = parse_int_list(*v, workers ? 0 : 1);
        if (!list) {
          return usage_error(arg + " expects a comma-separated list of " +
                             (workers ? "integers >= 0" : "positive integers") + ", got " + *v);
        }
        (arg == "--stations" ? o.stations : o.workers) = *list;
        (arg == "--stations" ? o.stations_given : o.workers_given) = true;
      } else if (arg == "--batch") {
        const long b = std::strtol(v->c_str(), nullptr, 10);
        if (b < 1 || b > 100) return usage_error("--batch expects 1..100, got " + *v);
        o.batch = static_cast<int>(b);
      } else if (arg == "--baseline-runs" || arg == "--max-probes") {
        const long n = std::strtol(v->c_str(), nullptr, 10);
        if (n < 1 || n > 50) return usage_error(arg + " expects 1..50, got " + *v);
        (arg == "--baseline-runs" ? o.baseline_runs : o.max_probes) = static_cast<int>(n);
        (arg == "--baseline-runs" ? runs_given : max_probes_given) = true;
      } else if (arg == "--probe-s" || arg == "--confirm-s" || arg == "--latency-s" || arg == "--baseline-s") {
        const std::optional<double> s = parse_seconds(*v);
        if (!s) return usage_error(arg + " expects a number of seconds > 0, got " + *v);
        struct Seconds {
          const char* name;
          double* value;
          bool* given;
        };
        for (const Seconds& k : {Seconds{"--probe-s", &o.probe_s, &probe_given},
                                 Seconds{"--confirm-s", &o.confirm_s, &confirm_given},
                                 Seconds{"--latency-s", &o.latency_s, &latency_given},
                                 Seconds{"--baseline-s", &o.baseline_s, &baseline_given}}) {
          if (arg != k.name) continue;
          *k.value = *s;
          *k.given = true;
        }
      } else if (arg == "--daemon") {
        o.daemon = *v;
      } else if (arg == "--ctl") {
        o.ctl = *v;
      } else {
        return usage_error("unknown argument " + arg);
      }
    }
  }
  if (o.quick) {
    if (!o.transports_given) o.transports = {"tcp"};
    if (!probe_given) o.probe_s = 1.5;
    if (!confirm_given) o.confirm_s = 4.0;
    if (!latency_given) o.latency_s = 2.0;
    if (!baseline_given) o.baseline_s = 1.5;
    if (!runs_given) o.baseline_runs = 2;
    if (!max_probes_given) o.max_probes = 4;
  }
  if (o.scaling) {
    if (!o.transports_given) o.transports = {"tcp"};
    if (!o.stations_given) o.stations = {1, 10, 100, 1000, 10000};
    if (!o.workers_given) o.workers = {1, 2};
  }
  const fs::path here = self_dir();
  if (o.daemon.empty()) o.daemon = (here / ".." / "daemon" / "kneeloadd").lexically_normal().string();
  if (o.ctl.empty()) o.ctl = (here / ".." / "tools" / "ctl" / "kneeloadctl").lexically_normal().string();
  for (const std::string& b : {o.daemon, o.ctl}) {
    if (::access(b.c_str(), X_OK) != 0) {
      return usage_error(b + " is not an executable: build kneeloadd and kneeloadctl, or pass --daemon/--ctl");
    }
  }
  return std::nullopt;
}

int run(int argc, char** argv) {
  Options o;
  if (const std::optional<int> code = parse_options(argc, argv, o)) return *code;
  install_interrupt_handlers();
  const TempDir dir;
  Bench bench(o, dir.path());
  std::vector<Row> rows;
  const auto start = Clock::now();
  try {
    std::map<std::pair<std::string, int>, Baselines> baselines;
    for (const std::string& transport : o.transports) {
      for (const int stations : o.stations) {
        for (const int workers : o.workers) {
          Row row;
          row.transport = transport;
          row.stations = stations;
          row.workers = workers;
          try {
            const std::string config = bench.daemon_config(stations, workers);
            auto it = baselines.find({transport, stations});
            if (it == baselines.end()) {
              Baselines b;
              b.baseline = measure_baseline(bench, transport, stations, config, BaselineSink::Work::kDecode,
                                            b.baseline_runs, b.baseline_lost);
              // A second reference: should it fail, the row is still measured, and says why.
              try {
                b.fused_baseline = measure_baseline(bench, transport, stations, config,
                                                    BaselineSink::Work::kDecodeAndFuse, b.fused_baseline_runs,
                                                    b.fused_baseline_lost);
              } catch (const Interrupted&) {
                throw;
              } catch (const std::exception& e) {
                b.fused_baseline_error = e.what();
                progress("%s", e.what());
              }
              it = baselines.emplace(std::make_pair(transport, stations), std::move(b)).first;
            }
            static_cast<Baselines&>(row) = it->second;
            measure_row(bench, row, config, !o.scaling);
          } catch (const Interrupted&) {
            throw;
          } catch (const std::exception& e) {
            row.error = e.what();
          }
          if (!row.error.empty()) progress("row failed: %s", row.error.c_str());
          rows.push_back(std::move(row));
        }
      }
    }
  } catch (const Interrupted&) {
    std::fputs("e2e: interrupted; every child process killed\n", stderr);
    return 130;
  }
  progress("done in %.0f s", std::chrono::duration<double>(Clock::now() - start).count());
  const std::string report = o.json ? json_report(o, rows) : table_report(o, rows);
  std::fputs(report.c_str(), stdout);
  for (const Row& r : rows) {
    if (!r.error.empty()) return 1;
  }
  return 0;
}

}  // namespace
}  // namespace kneeload::bench

int main(int argc, char** argv) {
  try {
    return kneeload::bench::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "e2e: %s\n", e.what());
    return 1;
  }
}
