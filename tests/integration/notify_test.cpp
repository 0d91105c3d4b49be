// kneeloadd and systemd's notify protocol, without systemd: the test owns the NOTIFY_SOCKET
// (a unix datagram socket) and sets WATCHDOG_USEC/WATCHDOG_PID as systemd would for
// Type=notify with WatchdogSec=. It checks READY=1 once the sockets (ingest, publish, metrics)
// accept connections, STATUS= with live counts, WATCHDOG=1 at half the interval, STOPPING=1 on
// SIGTERM (the signals read from a signalfd, whatever mask and dispositions the parent left), and
// with kneeloadd_faultpoints (daemon/fault_points.hpp) that a wedged worker stops the pings
// while the other threads run on, and that a failing signal read drains and exits 1.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>

#include "daemon_harness.hpp"
#include "http.hpp"
#include "../support/on_exit.hpp"

namespace kneeload::testing {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::int64_t kWatchdogUsec = 1'000'000;  // WatchdogSec=1s: pings expected every 0.5 s

inline std::string faultpoints_binary() {
  return std::string(KNEELOAD_BINARY_DIR) + "/daemon/kneeloadd_faultpoints";
}

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// The receiving end of sd_notify(): every line of every datagram, with its arrival time.
class NotifySocket {
 public:
  struct Note {
    Clock::time_point at;
    std::string line;
  };

  explicit NotifySocket(const fs::path& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    bound_ = fd_ >= 0 && path.string().size() < sizeof addr.sun_path &&
             ::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~NotifySocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool bound() const { return bound_; }
  const fs::path& path() const { return path_; }

  // Takes in what arrives within `timeout`, then whatever else is already queued.
  void receive(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return;
    char buf[4096];
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) return;
      const auto now = Clock::now();
      std::istringstream lines(std::string(buf, static_cast<std::size_t>(n)));
      std::string line;
      while (std::getline(lines, line)) notes_.push_back({now, line});
    }
  }
  // Receives until a line that starts with `prefix` arrives; returns its index.
  std::optional<std::size_t> wait_for(const std::string& prefix, std::chrono::milliseconds timeout,
                                      std::size_t from = 0) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      for (std::size_t i = from; i < notes_.size(); ++i) {
        if (notes_[i].line.rfind(prefix, 0) == 0) return i;
      }
      if (Clock::now() >= deadline) return std::nullopt;
      receive(20ms);
    }
  }
  // Receives for `duration`.
  void collect_for(std::chrono::milliseconds duration) {
    const auto deadline = Clock::now() + duration;
    while (Clock::now() < deadline) receive(20ms);
  }
  std::vector<Clock::time_point> times_of(const std::string& line) const {
    std::vector<Clock::time_point> out;
    for (const Note& n : notes_) {
      if (n.line == line) out.push_back(n.at);
    }
    return out;
  }
  const std::vector<Note>& notes() const { return notes_; }
  std::string dump() const {
    std::string s;
    for (const Note& n : notes_) s += n.line + "\n";
    return s;
  }

 private:
  fs::path path_;
  int fd_ = -1;
  bool bound_ = false;
  std::vector<Note> notes_;
};

// STATUS=running: N samples in, N published, N rejected, N dropped, N stale (control.cpp).
struct StatusLine {
  unsigned long long samples_in = 0, published = 0, rejected = 0, dropped = 0, stale = 0;
};
std::optional<StatusLine> parse_status(const std::string& line) {
  StatusLine s;
  char state[16] = {};
  if (std::sscanf(line.c_str(), "STATUS=%15[a-z]: %llu samples in, %llu published, %llu rejected, %llu dropped, %llu stale",
                  state, &s.samples_in, &s.published, &s.rejected, &s.dropped, &s.stale) != 6) {
    return std::nullopt;
  }
  return s;
}

// kneeloadd started as systemd would start a Type=notify service: NOTIFY_SOCKET, and with a
// watchdog also WATCHDOG_USEC and WATCHDOG_PID (set to the daemon's own pid in the child, as
// systemd does). Endpoints are loopback with OS-chosen ports, read from --endpoints-file.
class NotifiedDaemon {
 public:
  // `also_in_child` runs in the child after the environment is set, before exec.
  NotifiedDaemon(const std::string& binary, const std::string& toml, std::optional<std::int64_t> watchdog_usec,
                 std::vector<std::pair<std::string, std::string>> env = {},
                 std::function<void()> also_in_child = {})
      : socket_(dir_.path() / "notify"),
        config_(dir_.path() / "kneeloadd.toml"),
        endpoints_(dir_.path() / "endpoints"),
        stderr_(dir_.path() / "stderr.log") {
    write_file(config_, toml);
    const std::vector<std::string> argv{binary, "--config", config_.string(), "--ingest", "tcp://127.0.0.1:*",
                                        "--publish", "tcp://127.0.0.1:*", "--endpoints-file", endpoints_.string(),
                                        "--metrics", "127.0.0.1:0", "--state-dir", (dir_.path() / "state").string()};
    started_at_ = Clock::now();
    process_.emplace(argv, stderr_, std::nullopt, [&] {
      ::setenv("NOTIFY_SOCKET", socket_.path().c_str(), 1);
      ::unsetenv("WATCHDOG_USEC");
      ::unsetenv("WATCHDOG_PID");
      if (watchdog_usec) {
        ::setenv("WATCHDOG_USEC", std::to_string(*watchdog_usec).c_str(), 1);
        ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);  // the child's own, as systemd sets it
      }
      for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
      if (also_in_child) also_in_child();
    });
  }

  NotifySocket& notes() { return socket_; }
  Clock::time_point started_at() const { return started_at_; }
  std::string log() const { return read_file(stderr_); }
  void signal(int signo) const { process_->signal(signo); }
  pid_t pid() const { return process_->pid(); }
  std::optional<int> wait(std::chrono::milliseconds timeout) { return process_->wait(timeout); }
  // "ingest", "publish" or "metrics" from the endpoints file; empty until the daemon wrote it.
  std::string endpoint(const std::string& key) const {
    std::istringstream in(read_file(endpoints_));
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind(key + "=", 0) == 0) return line.substr(key.size() + 1);
    }
    return {};
  }
  bool endpoints_written() const { return fs::exists(endpoints_); }

 private:
  TempDir dir_;
  NotifySocket socket_;
  fs::path config_, endpoints_, stderr_;
  Clock::time_point started_at_;
  std::optional<Process> process_;
};

// True iff something accepts TCP connections at tcp://127.0.0.1:PORT.
bool tcp_listening(const std::string& endpoint) {
  const auto colon = endpoint.rfind(':');
  if (endpoint.rfind("tcp://127.0.0.1:", 0) != 0 || colon == std::string::npos) return false;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(std::stoi(endpoint.substr(colon + 1))));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// 10 insole samples of device s1-L (runner r1 on st1), 10 ms apart from t_us.
v1::Frame insole_frame(std::uint32_t seq, std::int64_t t_us) {
  v1::Frame f = frame("s1-L", seq);
  for (int i = 0; i < 10; ++i) add_insole(f, t_us + i * 10'000, 800.0, 8.0);
  return f;
}

// workers 0: the daemon's default (fusion on the ingest thread).
std::string config(int workers = 0) { return base_toml(3.0, workers) + registry_toml(2); }

TEST(NotifyTest, ReadyOnlyOnceIngestPublishAndMetricsSocketsAcceptConnections) {
  NotifiedDaemon d(daemon_binary(), config(), std::nullopt);
  ASSERT_TRUE(d.notes().bound()) << "cannot bind the notify socket " << d.notes().path();
  const auto ready = d.notes().wait_for("READY=1", 10s);
  ASSERT_TRUE(ready) << "no READY=1 within 10 s; got:\n" << d.notes().dump() << "log:\n" << d.log();
  // Checked the moment READY arrives: systemd starts dependent units then.
  ASSERT_TRUE(d.endpoints_written()) << "READY=1 before the endpoints file was written";
  EXPECT_TRUE(tcp_listening(d.endpoint("ingest"))) << "ingest " << d.endpoint("ingest") << " not listening at READY";
  EXPECT_TRUE(tcp_listening(d.endpoint("publish"))) << "publish " << d.endpoint("publish") << " not listening at READY";
  EXPECT_TRUE(tcp_listening("tcp://" + d.endpoint("metrics")))
      << "metrics " << d.endpoint("metrics") << " not listening at READY";
  EXPECT_EQ(*ready, 0u) << "READY=1 should be the first notification; got:\n" << d.notes().dump();
  // No WATCHDOG_USEC: the daemon must not ping (systemd would log them as unexpected).
  d.notes().collect_for(1500ms);
  EXPECT_TRUE(d.notes().times_of("WATCHDOG=1").empty()) << "pings without a watchdog:\n" << d.notes().dump();
}

TEST(NotifyTest, StatusReportsLiveSampleAndRejectCounts) {
  NotifiedDaemon d(daemon_binary(), config(), std::nullopt);
  ASSERT_TRUE(d.notes().wait_for("READY=1", 10s)) << d.log();
  zmq::context_t ctx{1};
  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.set(zmq::sockopt::sndtimeo, 2000);
  push.set(zmq::sockopt::linger, 0);
  push.connect(d.endpoint("ingest"));
  constexpr int kFrames = 5;
  for (int i = 0; i < kFrames; ++i) ASSERT_TRUE(send_frame(push, insole_frame(i, 1'000'000 + i * 100'000)));
  v1::Frame stranger = frame("nobody", 0);  // unknown_device: one frame rejected
  add_pain(stranger, 1'000'000, 2);
  ASSERT_TRUE(send_frame(push, stranger));

  std::optional<StatusLine> last;
  const bool seen = eventually([&] {
    d.notes().receive(20ms);
    for (const auto& n : d.notes().notes()) {
      if (auto s = parse_status(n.line)) last = s;
    }
    return last && last->samples_in == kFrames * 10 && last->rejected == 1;
  }, 5s);
  ASSERT_TRUE(last) << "no parsable STATUS= line; got:\n" << d.notes().dump();
  EXPECT_TRUE(seen) << "STATUS= within 5 s: expected 50 samples in and 1 rejected, got " << last->samples_in
                    << " samples in and " << last->rejected << " rejected; all:\n" << d.notes().dump();
  EXPECT_EQ(last->dropped, 0u);
  EXPECT_GT(last->published, 0u) << "the publisher's status heartbeats are counted as published";
}

void expect_watchdog_pings_every_half_interval(int workers) {
  NotifiedDaemon d(daemon_binary(), config(workers), kWatchdogUsec);
  ASSERT_TRUE(d.notes().wait_for("READY=1", 10s)) << d.log();
  d.notes().collect_for(3200ms);
  const auto pings = d.notes().times_of("WATCHDOG=1");
  ASSERT_GE(pings.size(), 6u) << "expected a ping every ~0.5 s over 3.2 s; got:\n" << d.notes().dump();
  std::vector<double> gaps;
  for (std::size_t i = 1; i < pings.size(); ++i) gaps.push_back(seconds_between(pings[i - 1], pings[i]));
  std::sort(gaps.begin(), gaps.end());
  const double median = gaps[gaps.size() / 2];
  // The control loop ticks every 100 ms and pings on the first tick at or after interval/2.
  EXPECT_GE(median, 0.45) << "median gap between pings, s";
  EXPECT_LE(median, 0.65) << "median gap between pings, s";
  // systemd kills at WatchdogSec without a ping: no gap may come near it.
  EXPECT_LT(gaps.back(), 0.9) << "longest gap between pings, s (WatchdogSec = 1 s)";
  std::printf("watchdog 1 s, %d workers: %zu pings, gaps min %.3f median %.3f max %.3f s\n", workers, pings.size(),
              gaps.front(), median, gaps.back());
}

TEST(NotifyTest, WatchdogPingsEveryHalfIntervalWhileAllThreadsRun) { expect_watchdog_pings_every_half_interval(2); }

// With workers = 0 the worker's progress is counted by the ingest thread's polls, idle or not.
TEST(NotifyTest, WatchdogPingsEveryHalfIntervalWithFusionOnTheIngestThread) {
  expect_watchdog_pings_every_half_interval(0);
}

constexpr unsigned long long kOurSignals =
    (1ULL << (SIGINT - 1)) | (1ULL << (SIGTERM - 1)) | (1ULL << (SIGHUP - 1));

// A signal mask line ("SigBlk:", "SigCgt:", ...) of a /proc status file, or ~0 if missing.
unsigned long long status_mask(const fs::path& status, const std::string& key) {
  std::ifstream in(status);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::stoull(line.substr(key.size()), nullptr, 16);
  }
  return ~0ULL;
}

// Every thread of `pid` with its pending, blocked, ignored and caught signals, and the
// process's shared pending set: what a failure message needs to tell where a signal went.
std::string signal_state(pid_t pid) {
  std::ostringstream out;
  const fs::path proc = "/proc/" + std::to_string(pid);
  out << std::hex << "ShdPnd " << status_mask(proc / "status", "ShdPnd:") << "\n";
  std::error_code ec;
  for (const auto& task : fs::directory_iterator(proc / "task", ec)) {
    std::string name;
    std::ifstream(task.path() / "comm") >> name;
    const fs::path st = task.path() / "status";
    out << task.path().filename().string() << " " << name << ": SigPnd " << status_mask(st, "SigPnd:") << " SigBlk "
        << status_mask(st, "SigBlk:") << " SigIgn " << status_mask(st, "SigIgn:") << " SigCgt "
        << status_mask(st, "SigCgt:") << "\n";
  }
  return out.str();
}

// Sends SIGHUP and expects the daemon to log a reload of its (unchanged) file within 5 s.
void expect_reload_on_sighup(NotifiedDaemon& d) {
  d.signal(SIGHUP);
  EXPECT_TRUE(eventually([&] { return d.log().find("reloaded") != std::string::npos; }, 5s))
      << "no reload within 5 s of SIGHUP; log:\n" << d.log() << "signals (hex):\n" << signal_state(d.pid());
}

TEST(NotifyTest, SigtermSendsStoppingAndExitsCleanly) {
  NotifiedDaemon d(daemon_binary(), config(), kWatchdogUsec);
  ASSERT_TRUE(d.notes().wait_for("READY=1", 10s)) << d.log();
  d.signal(SIGTERM);
  const auto stopping = d.notes().wait_for("STOPPING=1", 5s);
  EXPECT_TRUE(stopping) << "no STOPPING=1 within 5 s of SIGTERM; got:\n"
                        << d.notes().dump() << "signals (hex):\n" << signal_state(d.pid());
  EXPECT_EQ(d.wait(5s), std::optional<int>(0)) << d.log();
}

// SIGINT, SIGTERM and SIGHUP are blocked in every thread, control thread included, and no
// handler is installed for them: the kernel keeps them pending until the control loop reads
// its signalfd, so no thread is interrupted and none has to run a handler.
TEST(NotifyTest, NoThreadTakesTheSignalsTheControlLoopReadsThem) {
  NotifiedDaemon d(daemon_binary(), config(2), kWatchdogUsec);
  ASSERT_TRUE(d.notes().wait_for("READY=1", 10s)) << d.log();
  const fs::path proc = "/proc/" + std::to_string(d.pid());
  EXPECT_EQ(status_mask(proc / "status", "SigCgt:") & kOurSignals, 0ULL) << "a handler is installed";
  EXPECT_EQ(status_mask(proc / "status", "SigIgn:") & kOurSignals, 0ULL) << "a signal is ignored";
  int threads = 0;
  for (const auto& task : fs::directory_iterator(proc / "task")) {
    std::string name;
    std::ifstream(task.path() / "comm") >> name;
    ++threads;
    EXPECT_EQ(status_mask(task.path() / "status", "SigBlk:") & kOurSignals, kOurSignals)
        << "thread " << task.path().filename() << " (" << name << ") can take them";
  }
  EXPECT_GE(threads, 5) << "control, ingest, 2 workers, publisher at least";
  expect_reload_on_sighup(d);
  d.signal(SIGTERM);
  EXPECT_TRUE(d.notes().wait_for("STOPPING=1", 5s)) << "signals (hex):\n" << signal_state(d.pid());
  EXPECT_EQ(d.wait(10s), std::optional<int>(0)) << d.log();
}

// A parent can hand kneeloadd the three signals blocked (the mask survives exec) and SIGHUP
// ignored (nohup does): both would have made it deaf to them. Before signalfd, the control
// thread restored the mask it was given, and SIGHUP and SIGINT were never seen.
TEST(NotifyTest, ASignalStateInheritedFromTheParentStopsNeitherReloadNorDrain) {
  NotifiedDaemon d(daemon_binary(), config(), kWatchdogUsec, {}, [] {
    sigset_t set;
    sigemptyset(&set);
    for (const int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, s);
    ::sigprocmask(SIG_BLOCK, &set, nullptr);
    ::signal(SIGHUP, SIG_IGN);
  });
  ASSERT_TRUE(d.notes().wait_for("READY=1", 10s)) << d.log();
  expect_reload_on_sighup(d);
  d.signal(SIGINT);
  EXPECT_TRUE(d.notes().wait_for("STOPPING=1", 5s)) << "no STOPPING=1 within 5 s of SIGINT; signals (hex):\n"
                                                    << signal_state(d.pid());
  EXPECT_EQ(d.wait(10s), std::optional<int>(0)) << d.log();
}

// Deaf to signals, the daemon could only be SIGKILLed. When its signalfd read fails
// (kneeloadd_faultpoints fails the read the first signal completes), it says so, drains and
// exits 1, for Restart=on-failure to bring it back.
TEST(NotifyTest, ASignalReadThatFailsDrainsAndExitsOne) {
  NotifiedDaemon d(faultpoints_binary(), config(), kWatchdogUsec, {{"KNEELOAD_FAULT_SIGNAL_READ_FAILS", "1"}});
  ASSERT_TRUE(d.notes().wait_for("READY=1", 10s)) << d.log();
  d.signal(SIGHUP);
  EXPECT_TRUE(d.notes().wait_for("STOPPING=1", 5s)) << "no STOPPING=1 within 5 s; log:\n" << d.log();
  EXPECT_EQ(d.wait(10s), std::optional<int>(1)) << d.log();
  const std::string log = d.log();
  EXPECT_NE(log.find("cannot read signals any more"), std::string::npos) << log;
  EXPECT_NE(log.find("drained"), std::string::npos) << "it exited without draining:\n" << log;
  EXPECT_EQ(log.find("reloaded"), std::string::npos) << "the SIGHUP was acted on, so the read did not fail:\n" << log;
}

TEST(NotifyTest, WedgedWorkerStopsWatchdogPingsWhileOtherThreadsRun) {
  // Worker 1 of 2 wedges 1.5 s after it starts; runner r1 (index 0) lives on worker 0.
  constexpr double kWedgeAfterS = 1.5;
  NotifiedDaemon d(faultpoints_binary(), config(2), kWatchdogUsec,
                   {{"KNEELOAD_FAULT_WEDGE_WORKER", "1"}, {"KNEELOAD_FAULT_WEDGE_AFTER_S", "1.5"}});
  ASSERT_TRUE(d.notes().wait_for("READY=1", 10s)) << d.log();
  const auto t0 = d.started_at();  // the worker starts after this, so it wedges after t0 + 1.5 s
  zmq::context_t ctx{1};
  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.set(zmq::sockopt::sndtimeo, 2000);
  push.set(zmq::sockopt::linger, 0);
  push.connect(d.endpoint("ingest"));

  // Observe until 2.5 watchdog intervals after the latest moment the last ping may come.
  const double last_ping_limit_s = kWedgeAfterS + 0.5 + 0.5;  // one ping interval + start-up and tick slack
  const double watch_until_s = last_ping_limit_s + 2.5;
  std::uint32_t seq = 0;
  while (seconds_between(t0, Clock::now()) < watch_until_s) {
    ASSERT_TRUE(send_frame(push, insole_frame(seq, 1'000'000 + seq * 100'000)));
    ++seq;
    d.notes().collect_for(200ms);
  }
  const auto pings = d.notes().times_of("WATCHDOG=1");
  std::vector<double> at;
  for (const auto& p : pings) at.push_back(seconds_between(t0, p));
  std::string at_text;
  for (double s : at) at_text += std::to_string(s).substr(0, 5) + " ";

  ASSERT_GE(std::count_if(at.begin(), at.end(), [&](double s) { return s < kWedgeAfterS; }), 2)
      << "expected pings before the wedge (at " << kWedgeAfterS << " s); pings at: " << at_text;
  ASSERT_FALSE(at.empty());
  EXPECT_LE(at.back(), last_ping_limit_s) << "last ping, s after start (worker wedged at " << kWedgeAfterS
                                          << " s); pings at: " << at_text;

  // The other threads run on: ingest counts the frames sent after the wedge (worker 0 fuses
  // them), the publisher keeps publishing heartbeats, the control loop keeps reporting.
  std::vector<StatusLine> late;
  for (const auto& n : d.notes().notes()) {
    if (seconds_between(t0, n.at) < last_ping_limit_s) continue;
    if (auto s = parse_status(n.line)) late.push_back(*s);
  }
  ASSERT_GE(late.size(), 2u) << "STATUS= should keep coming every second; got:\n" << d.notes().dump();
  EXPECT_GT(late.back().samples_in, late.front().samples_in) << "ingest stopped accepting samples";
  EXPECT_GT(late.back().published, late.front().published) << "the publisher stopped";
  // Every frame sent, the ones after the wedge included, is accepted (STATUS= lags by <= 1 s).
  const auto want = static_cast<unsigned long long>(seq) * 10;
  const bool all_in = eventually([&] {
    d.notes().receive(20ms);
    const auto& notes = d.notes().notes();
    for (auto it = notes.rbegin(); it != notes.rend(); ++it) {
      if (auto s = parse_status(it->line)) return s->samples_in == want;
    }
    return false;
  }, 3s);
  EXPECT_TRUE(all_in) << "expected STATUS= with " << want << " samples in; got:\n" << d.notes().dump();
  std::printf("wedge at %.1f s: pings at %s; last ping %.3f s\n", kWedgeAfterS, at_text.c_str(), at.back());
}

// With workers = 0 a drain fuses what is still queued in the socket, and senders that outpace
// fusion would keep that going past the 4.5 s drain deadline (exit 1, no session summaries).
// The fault build sleeps 0.5 ms per poll (one per frame here: at most ~2,000 frames/s) while a
// sender floods until well after SIGTERM: the drain must still end in time, counting the
// frames it discarded after its 1.5 s intake (ingest.draining).
TEST(NotifyTest, ADrainUnderAFloodEndsInTimeAndCountsWhatItDiscards) {
  NotifiedDaemon d(faultpoints_binary(), config(), kWatchdogUsec, {{"KNEELOAD_FAULT_SLOW_POLL_US", "500"}});
  ASSERT_TRUE(d.notes().wait_for("READY=1", 10s)) << d.log();
  std::atomic<bool> stop{false};
  std::atomic<std::uint32_t> sent{0};
  std::thread flood([&] {
    zmq::context_t ctx{1};
    zmq::socket_t push(ctx, zmq::socket_type::push);
    push.set(zmq::sockopt::sndtimeo, 50);
    push.set(zmq::sockopt::linger, 0);
    push.connect(d.endpoint("ingest"));
    for (std::uint32_t seq = 0; !stop.load(); ++seq) {
      if (send_frame(push, insole_frame(seq, 1'000'000 + std::int64_t{seq} * 100'000))) sent.fetch_add(1);
    }
  });
  const OnExit join([&] {
    stop.store(true);
    flood.join();
  });
  // The socket's queue fills. Ingest is saturated, and the metric for it says so: each pass
  // takes its 512 frames (about 0.26 s each here). No latency histogram or drop counter would.
  double full_batches = 0;
  EXPECT_TRUE(eventually([&] {
    const auto scraped = http_get(d.endpoint("metrics"), "/metrics");
    const auto v = scraped ? parse_exposition(scraped->body).get("kneeload_ingest_full_batches_total") : std::nullopt;
    full_batches = v.value_or(0);
    return full_batches > 0;
  }, 5s)) << "kneeload_ingest_full_batches_total stayed 0 under the flood";
  const auto t0 = Clock::now();
  d.signal(SIGTERM);
  const std::optional<int> code = d.wait(8s);  // the flood goes on meanwhile
  const double took_s = seconds_between(t0, Clock::now());
  stop.store(true);
  const std::string log = d.log();
  // The control loop exits 1 when the drain misses its 4.5 s deadline. took_s also holds the
  // process's teardown after the drain: stopping the metrics server took about 1.9 s here
  // once this test had scraped it (civetweb), so it is printed, not asserted.
  EXPECT_EQ(code, std::optional<int>(0)) << "exit 1 is the drain deadline missed; log:\n" << log;
  EXPECT_EQ(log.find("drain deadline missed"), std::string::npos) << log;
  EXPECT_NE(log.find("drained"), std::string::npos) << log;
  EXPECT_NE(log.find("dropped at ingest.draining: "), std::string::npos)
      << "frames were still coming after the intake, so some must have been discarded and counted:\n" << log;
  std::printf("[ figures  ] %u frames sent; %.0f full ingest passes before SIGTERM; SIGTERM to exit %.2f s\n",
              sent.load(), full_batches, took_s);
}

TEST(NotifyTest, ShippedDaemonCarriesNoFaultPoints) {
  const std::string shipped = read_file(daemon_binary());
  const std::string twin = read_file(faultpoints_binary());
  ASSERT_FALSE(shipped.empty()) << daemon_binary();
  ASSERT_FALSE(twin.empty()) << faultpoints_binary();
  for (const std::string hook :
       {"KNEELOAD_FAULT_WEDGE_WORKER", "KNEELOAD_FAULT_SIGNAL_READ_FAILS", "KNEELOAD_FAULT_SLOW_POLL_US"}) {
    EXPECT_EQ(shipped.find(hook), std::string::npos) << "kneeloadd contains the fault-point hook " << hook;
    EXPECT_NE(twin.find(hook), std::string::npos)
        << "kneeloadd_faultpoints lacks " << hook << " (this test would prove nothing)";
  }
}

}  // namespace
}  // namespace kneeload::testing
