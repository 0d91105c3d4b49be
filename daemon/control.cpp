#include "daemon/control.hpp"

#include <malloc.h>
#include <pthread.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>

#include "daemon/ingest.hpp"
#ifdef KNEELOAD_FAULT_POINTS
#include "daemon/fault_points.hpp"
#endif
#include "daemon/log.hpp"
#include "daemon/metrics.hpp"
#include "daemon/pipeline.hpp"

namespace kneeload::daemon {

namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

constexpr auto kTick = std::chrono::milliseconds(100);
constexpr auto kDrainDeadline = std::chrono::milliseconds(4500);  // exit within 5 s of SIGTERM
constexpr auto kRejectLogInterval = std::chrono::seconds(10);

void write_endpoints_file(const std::string& path, const Pipeline& pipeline, const std::string& metrics) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const std::string& ep : pipeline.ingest_endpoints()) out << "ingest=" << ep << "\n";
    out << "publish=" << pipeline.publish_endpoint() << "\n";
    if (!metrics.empty()) out << "metrics=" << metrics << "\n";
    if (!out) throw StartError("cannot write endpoints file \"" + tmp + "\"");
  }
  // rename(2) makes the file appear complete or not at all, for whoever polls for it.
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw StartError("cannot rename endpoints file to \"" + path + "\"");
  }
}

// SIGINT, SIGTERM and SIGHUP, read from a signalfd by the control loop's io_context. They are
// blocked in the thread that builds this, before any other thread starts (all inherit the mask),
// and never unblocked: the kernel keeps a signal sent to the process (kill PID, as systemd and
// a shell send it) pending until the signalfd is read, and no handler runs anywhere. A signal
// aimed at one thread (tgkill) stays pending on that thread and is not seen.
// With handlers (asio::signal_set), each thread had to be kept from taking the signals, and
// under ThreadSanitizer, which runs a handler only once its thread enters an intercepted call,
// SIGTERM was twice not acted on within 5 s in CI (notify_test), once after every thread but
// the control thread blocked them.
// A disposition of SIG_IGN would discard the signal before it could pend, and exec keeps it
// (nohup ignores SIGHUP, a shell's background job SIGINT), so the three are set back to
// SIG_DFL; that is safe only because they are blocked first. A mask inherited with them
// blocked is no longer a way to lose them.
class SignalReader {
 public:
  explicit SignalReader(asio::io_context& io) : fd_(io) {
    sigset_t set;
    sigemptyset(&set);
    for (const int s : kSignals) sigaddset(&set, s);
    if (const int e = pthread_sigmask(SIG_BLOCK, &set, nullptr); e != 0) {
      throw StartError(std::string("blocking signals: ") + std::strerror(e));
    }
    for (const int s : kSignals) {
      if (std::signal(s, SIG_DFL) == SIG_ERR) throw StartError(std::string("signal: ") + std::strerror(errno));
    }
    const int fd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) throw StartError(std::string("signalfd: ") + std::strerror(errno));
    boost::system::error_code ec;
    fd_.assign(fd, ec);  // registers it with the reactor (epoll_ctl), which can fail
    if (ec) {
      ::close(fd);
      throw StartError("signalfd: " + ec.message());
    }
  }

  // Calls on_signal(signo) from the io_context for every signal read, until the io_context
  // stops, or on_error(message) once if reading fails (nothing would be read after it). A
  // signal sent again before the first is read is read once: standard signals do not queue.
  template <typename OnSignal, typename OnError>
  void start(OnSignal on_signal, OnError on_error) {
    fd_.async_read_some(asio::buffer(info_), [this, on_signal, on_error](const boost::system::error_code& ec,
                                                                        std::size_t n) {
#ifdef KNEELOAD_FAULT_POINTS
      if (fault::signal_read_fails()) {
        on_error(boost::system::error_code(EBADF, boost::system::system_category()).message());
        return;
      }
#endif
      if (ec == asio::error::operation_aborted) return;
      if (ec) {
        on_error(ec.message());
        return;
      }
      for (std::size_t i = 0; i < n / sizeof(signalfd_siginfo); ++i) on_signal(static_cast<int>(info_[i].ssi_signo));
      start(on_signal, on_error);
    });
  }

 private:
  static constexpr std::array<int, 3> kSignals{SIGINT, SIGTERM, SIGHUP};
  asio::posix::stream_descriptor fd_;
  std::array<signalfd_siginfo, 4> info_{};
};

class ControlLoop {
 public:
  ControlLoop(const DaemonOptions& options, Config config)
      : options_(options), config_(std::move(config)) {}

  int run() {
    // Before any thread starts: every thread kneeloadd has (the pipeline's, libzmq's, the
    // metrics server's) inherits the blocked mask. A signal sent during start-up waits for
    // io_.run(), below.
    try {
      signals_.emplace(io_);
    } catch (const StartError& e) {
      log(LogLevel::kError, "control", "%s", e.what());
      return 2;
    }
    signals_->start([this](int signo) { on_signal(signo); }, [this](const std::string& why) { on_signals_lost(why); });
    try {
      pipeline_.emplace(config_);
      release_inventory(config_);
      // Parsing the file and building the registry leave freed blocks below the sessions,
      // which malloc would keep resident (at 1,000 stations, the list copies alone were about
      // 10 MB). Once, at start-up, before any traffic: malloc_trim locks each arena in turn,
      // and the publisher and libzmq's threads allocate. A reload's freed blocks are not
      // trimmed: the next reload reuses them, so they do not add up.
      malloc_trim(0);
    } catch (const StartError& e) {
      log(LogLevel::kError, "control", "%s", e.what());
      return 2;
    } catch (const ConfigError& e) {
      log(LogLevel::kError, "config", "%s", e.what());
      return 2;
    }
    for (const std::string& ep : pipeline_->ingest_endpoints()) log(LogLevel::kInfo, "ingest", "bound %s", ep.c_str());
    if (config_.security.curve) {
      log(LogLevel::kInfo, "security", "CURVE on ingest and publish; daemon public key %s",
          config_.security.public_key.c_str());
    } else if (config_.security.allow_plaintext) {
      log(LogLevel::kWarn, "security",
          "plaintext allowed (security.allow_plaintext): any host that reaches the sockets can send frames "
          "and read every station's data");
    }
    log(LogLevel::kInfo, "publish", "bound %s", pipeline_->publish_endpoint().c_str());
    control_counters_.start_unix_s = std::chrono::duration_cast<std::chrono::seconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count();
    std::string metrics_address;
    if (!config_.metrics_address.empty()) {
      try {
        metrics_.emplace(MetricsEndpoint{config_.metrics_address, config_.metrics_basic_auth_file},
                         *pipeline_, control_counters_);
      } catch (const StartError& e) {
        log(LogLevel::kError, "control", "%s", e.what());
        return 2;
      }
      metrics_address = metrics_->bound_address();
      log(LogLevel::kInfo, "metrics", "serving http://%s/metrics%s", metrics_address.c_str(), config_.metrics_basic_auth_file.empty() ? "" : " (basic auth)");
    } else {
      log(LogLevel::kInfo, "metrics", "disabled (metrics.address is empty)");
    }
    if (!options_.endpoints_file.empty()) {
      try {
        write_endpoints_file(options_.endpoints_file, *pipeline_, metrics_address);
      } catch (const StartError& e) {
        log(LogLevel::kError, "control", "%s", e.what());
        return 2;
      }
    }
    sd_notify(0, "READY=1\nSTATUS=running");
    std::uint64_t watchdog_usec = 0;
    if (sd_watchdog_enabled(0, &watchdog_usec) > 0) {
      watchdog_interval_ = std::chrono::microseconds(watchdog_usec / 2);
    }
    if (config_.pipeline.workers == 0) {
      log(LogLevel::kInfo, "control", "kneeloadd %s running: %zu devices, fusion on the ingest thread",
          KNEELOAD_VERSION, pipeline_->active_devices());
    } else {
      log(LogLevel::kInfo, "control", "kneeloadd %s running: %zu devices, %d worker(s)", KNEELOAD_VERSION,
          pipeline_->active_devices(), config_.pipeline.workers);
    }
    asio::steady_timer timer(io_);
    schedule_tick(timer);
    io_.run();
    return exit_code_;
  }

 private:
  void on_signal(int signo) {
    if (signo == SIGHUP) {
      reload();
    } else if (!draining_) {
      log(LogLevel::kInfo, "control", "signal %d: draining", signo);
      start_drain();
    }
  }

  // Deaf to SIGTERM, the daemon could only be stopped by SIGKILL, losing what it holds. It
  // drains now instead and exits 1, so that Restart=on-failure brings it back.
  void on_signals_lost(const std::string& why) {
    log(LogLevel::kError, "control", "cannot read signals any more (%s): draining, then exit 1", why.c_str());
    signals_lost_ = true;
    if (!draining_) start_drain();
  }

  void start_drain() {
    sd_notify(0, "STOPPING=1\nSTATUS=draining");
    draining_ = true;
    drain_deadline_ = Clock::now() + kDrainDeadline;
    if (pipeline_) pipeline_->request_drain();
  }

  void reload() {
    if (draining_ || !pipeline_) return;
    try {
      Config next = load_config(options_.config_path);
      apply_overrides(next, options_.overrides);
      for (const std::string& key : restart_only_changes(config_, next)) {
        log(LogLevel::kWarn, "config", "reload: %s changed but takes effect only after a restart; keeping the running value",
            key.c_str());
      }
      for (const std::string& key : reload_resets(config_, next)) {
        log(LogLevel::kInfo, "config", "reload: %s changed: running sessions restart their rolling windows and baseline",
            key.c_str());
      }
      pipeline_->reload(next);
      take_reloadable(config_, next);
      control_counters_.reloads_applied.fetch_add(1, std::memory_order_relaxed);
      log(LogLevel::kInfo, "config", "reloaded %s: generation %llu, %zu devices, %zu runners",
          options_.config_path.c_str(), static_cast<unsigned long long>(pipeline_->generation()),
          next.devices.size(), next.runners.size());
    } catch (const ConfigError& e) {
      control_counters_.reloads_refused.fetch_add(1, std::memory_order_relaxed);
      log(LogLevel::kError, "config", "reload refused, keeping the running configuration: %s", e.what());
    }
  }

  void schedule_tick(asio::steady_timer& timer) {
    timer.expires_after(kTick);
    timer.async_wait([this, &timer](const boost::system::error_code& ec) {
      if (ec) return;
      tick();
      if (!io_.stopped()) schedule_tick(timer);
    });
  }

  void tick() {
    const auto now = Clock::now();
    if (pipeline_->finished()) {
      pipeline_->join();
      report_totals("drained");
      exit_code_ = signals_lost_ ? 1 : 0;
      io_.stop();
      return;
    }
    if (draining_ && now > drain_deadline_) {
      report_totals("drain deadline missed");
      log(LogLevel::kError, "control", "pipeline did not drain within %lld ms; exiting",
          static_cast<long long>(kDrainDeadline.count()));
      // Threads are still running and cannot be joined: leave without destructors.
      std::fflush(nullptr);
      ::_exit(1);
    }
    pipeline_->tick(steady_now_us());
    log_rejections(now);
    log_drops(now);
    log_refusals(now);
    if (now >= next_status_) {
      const PipelineTotals t = pipeline_->totals();
      char status[256];
      std::snprintf(status, sizeof status,
                    "STATUS=%s: %llu samples in, %llu published, %llu rejected, %llu dropped, %zu stale",
                    draining_ ? "draining" : "running", static_cast<unsigned long long>(t.samples_accepted),
                    static_cast<unsigned long long>(t.published),
                    static_cast<unsigned long long>(t.frames_rejected + t.samples_rejected),
                    static_cast<unsigned long long>(t.dropped), pipeline_->stale_devices());
      sd_notify(0, status);
      next_status_ = now + std::chrono::seconds(1);
    }
    if (watchdog_interval_.count() > 0 && now >= next_watchdog_) {
      // Ping only if every pipeline thread moved since the last ping: a wedged thread must
      // let systemd's watchdog fire.
      const std::vector<std::uint64_t> progress = pipeline_->thread_progress();
      bool all_moved = progress.size() == last_progress_.size();
      for (std::size_t i = 0; all_moved && i < progress.size(); ++i) all_moved = progress[i] != last_progress_[i];
      if (all_moved || last_progress_.empty()) sd_notify(0, "WATCHDOG=1");
      last_progress_ = progress;
      next_watchdog_ = now + watchdog_interval_;
    }
  }

  void log_rejections(Clock::time_point now) {
    auto& details = pipeline_->ingest().reject_details();
    const proto::DecoderCounters& counters = pipeline_->ingest().decoder_counters();
    while (const proto::RejectDetail* d = details.front()) {
      const auto reason = static_cast<std::size_t>(d->reason);
      unsigned long suppressed = 0;
      if (reject_limiters_[reason].allow(now, &suppressed)) {
        log(LogLevel::kWarn, "ingest",
            "rejected %s from device \"%s\" (seq %u, t_us %lld): %s; %lu similar suppressed, %llu in total",
            proto::is_frame_reject(d->reason) ? "frame" : "sample", d->device_id, d->seq,
            static_cast<long long>(d->t_us), proto::reject_name(d->reason), suppressed,
            static_cast<unsigned long long>(counters.rejected[reason].get()));
      }
      details.pop();
    }
  }

  // CURVE connections the ZAP handler refused, with the peer's address and key.
  void log_refusals(Clock::time_point now) {
    ZapHandler* zap = pipeline_->zap();
    if (zap == nullptr) return;
    while (const ZapRefusal* r = zap->refusals().front()) {
      const auto which = static_cast<std::size_t>(r->socket);
      unsigned long suppressed = 0;
      if (refusal_limiters_[which].allow(now, &suppressed)) {
        log(LogLevel::kWarn, "security",
            "refused a connection to the %s socket from %s: key %s is not allowed; %lu similar suppressed, %llu in total",
            kZapDomains[which], r->address.data(), r->key.data(), suppressed,
            static_cast<unsigned long long>(zap->counters().refused[which].get()));
      }
      zap->refusals().pop();
    }
  }

  void log_drops(Clock::time_point now) {
    const auto drops = pipeline_->drops();
    for (std::size_t i = 0; i < drops.size(); ++i) {
      if (drops[i].value == last_drops_[i]) continue;
      unsigned long suppressed = 0;
      if (drop_limiters_[i].allow(now, &suppressed)) {
        log(LogLevel::kWarn, "pipeline", "dropped %llu at %s since the last report (%llu in total)",
            static_cast<unsigned long long>(drops[i].value - last_drops_[i]), drops[i].name,
            static_cast<unsigned long long>(drops[i].value));
        last_drops_[i] = drops[i].value;
      }
    }
  }

  void report_totals(const char* why) {
    const PipelineTotals t = pipeline_->totals();
    log(LogLevel::kInfo, "control",
        "%s: frames received %llu, accepted %llu, rejected %llu; samples accepted %llu, rejected %llu; "
        "dropped %llu; published %llu",
        why, static_cast<unsigned long long>(t.frames_received),
        static_cast<unsigned long long>(t.frames_accepted), static_cast<unsigned long long>(t.frames_rejected),
        static_cast<unsigned long long>(t.samples_accepted), static_cast<unsigned long long>(t.samples_rejected),
        static_cast<unsigned long long>(t.dropped), static_cast<unsigned long long>(t.published));
    for (const DropCount& d : pipeline_->drops()) {
      if (d.value > 0) log(LogLevel::kWarn, "control", "dropped at %s: %llu", d.name, static_cast<unsigned long long>(d.value));
    }
  }

  const DaemonOptions& options_;
  Config config_;
  asio::io_context io_;
  // After io_: destroyed first, which cancels its read; io_ then frees the handler uncalled.
  std::optional<SignalReader> signals_;
  bool signals_lost_ = false;
  ControlCounters control_counters_;
  std::optional<Pipeline> pipeline_;
  std::optional<MetricsServer> metrics_;  // after pipeline_: destroyed first, it reads the pipeline
  bool draining_ = false;
  int exit_code_ = 1;
  Clock::time_point drain_deadline_{};
  Clock::time_point next_status_{};
  Clock::time_point next_watchdog_{};
  std::chrono::microseconds watchdog_interval_{0};
  std::vector<std::uint64_t> last_progress_;
  std::array<RateLimiter, proto::kRejectCount> reject_limiters_ = make_limiters<proto::kRejectCount>();
  std::array<RateLimiter, kDropReasonCount> drop_limiters_ = make_limiters<kDropReasonCount>();
  std::array<RateLimiter, 2> refusal_limiters_ = make_limiters<2>();
  std::array<std::uint64_t, kDropReasonCount> last_drops_{};

  template <std::size_t N>
  static std::array<RateLimiter, N> make_limiters() {
    return make_limiters_impl(std::make_index_sequence<N>{});
  }
  template <std::size_t... I>
  static std::array<RateLimiter, sizeof...(I)> make_limiters_impl(std::index_sequence<I...>) {
    return {((void)I, RateLimiter(kRejectLogInterval))...};
  }
};

}  // namespace

int run_daemon(const DaemonOptions& options) {
  Config config;
  try {
    config = load_config(options.config_path);
    apply_overrides(config, options.overrides);
  } catch (const ConfigError& e) {
    log(LogLevel::kError, "config", "%s", e.what());
    return 2;
  }
  ControlLoop loop(options, std::move(config));
  return loop.run();
}

}  // namespace kneeload::daemon
