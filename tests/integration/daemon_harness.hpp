// Test harness: runs a real kneeloadd process on loopback and talks to it with real ZeroMQ
// sockets. Endpoints are tcp://127.0.0.1:* resolved by the daemon (--endpoints-file), so tests
// never race for ports. The process is killed and the temp dir removed even if a test fails.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "../support/eventually.hpp"
#include "kneeload/v1/ingest.pb.h"
#include "kneeload/v1/publish.pb.h"

namespace kneeload::testing {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline std::string daemon_binary() { return std::string(KNEELOAD_BINARY_DIR) + "/daemon/kneeloadd"; }

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "kneeload-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::trunc);
  out << text;
}

// A child process running argv (argv[0] is the program's path) with stderr captured to a file,
// and stdout too when a path is given. `in_child` runs in the child between fork and exec (to
// set its environment, say). Killed (SIGKILL) on destruction if still running, so a failing
// test leaves nothing behind. The one fork/exec of the test harnesses (kneeloadctl's and the
// systemd-notify daemon's use it too).
class Process {
 public:
  Process(const std::vector<std::string>& argv, const fs::path& stderr_path,
          const std::optional<fs::path>& stdout_path = std::nullopt, const std::function<void()>& in_child = {}) {
    pid_ = ::fork();
    if (pid_ == 0) {
      if (!redirect(STDERR_FILENO, stderr_path) || (stdout_path && !redirect(STDOUT_FILENO, *stdout_path))) {
        std::_Exit(126);
      }
      if (in_child) in_child();
      std::vector<char*> args;
      for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      std::_Exit(127);
    }
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process() {
    if (pid_ > 0 && !exit_status_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  void signal(int signo) const { ::kill(pid_, signo); }
  pid_t pid() const { return pid_; }
  // Waits up to `timeout`; returns the exit code, or nullopt if still running (or killed by a
  // signal, reported as 128 + signal).
  std::optional<int> wait(std::chrono::milliseconds timeout) {
    if (exit_status_) return exit_status_;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return exit_status_;
      }
      if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
      std::this_thread::sleep_for(10ms);
    }
  }
  bool running() { return !wait(0ms).has_value(); }

 private:
  static bool redirect(int fd, const fs::path& path) {
    const int file = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    return file >= 0 && ::dup2(file, fd) >= 0;
  }

  pid_t pid_ = -1;
  std::optional<int> exit_status_;
};

// One received PUB message.
struct Received {
  std::string topic;
  std::string payload;
};

class Daemon {
 public:
  // Starts kneeloadd with `config_toml` (endpoints are forced to loopback with OS-chosen ports).
  // The runner history goes to a fresh state directory of this daemon's own (state_dir()), so
  // tests never touch /var/lib/kneeload and each starts with no history; extra_args may name
  // another --state-dir (the last one given wins), e.g. to restart on the same history.
  explicit Daemon(const std::string& config_toml, std::vector<std::string> extra_args = {})
      : config_path_(dir_.path() / "kneeloadd.toml"),
        endpoints_path_(dir_.path() / "endpoints"),
        stderr_path_(dir_.path() / "stderr.log"),
        state_dir_(dir_.path() / "state") {
    write_file(config_path_, config_toml);
    std::vector<std::string> argv{daemon_binary(), "--config", config_path_.string(),
                                  "--ingest", "tcp://127.0.0.1:*", "--publish", "tcp://127.0.0.1:*",
                                  "--endpoints-file", endpoints_path_.string(),
                                  "--state-dir", state_dir_.string(),
                                  // Any free port: tests run in parallel; extra_args may override.
                                  "--metrics", "127.0.0.1:0"};
    // extra_args may add more --ingest endpoints; the first tcp one stays ingest_endpoint().
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    process_.emplace(argv, stderr_path_);
    started_ = eventually([&] { return fs::exists(endpoints_path_) || !process_->running(); }, 10s) &&
               fs::exists(endpoints_path_);
    if (started_) {
      std::istringstream in(read_file(endpoints_path_));
      std::string line;
      while (std::getline(in, line)) {
        const auto eq = line.find('=');
        if (eq == std::string::npos) continue;
        if (line.substr(0, eq) == "ingest" && ingest_.empty()) ingest_ = line.substr(eq + 1);
        if (line.substr(0, eq) == "publish") publish_ = line.substr(eq + 1);
        if (line.substr(0, eq) == "metrics") metrics_ = line.substr(eq + 1);
      }
    }
  }

  bool started() const { return started_; }
  Process& process() { return *process_; }
  const std::string& ingest_endpoint() const { return ingest_; }
  const std::string& publish_endpoint() const { return publish_; }
  // "host:port" of the Prometheus endpoint; empty when metrics are disabled.
  const std::string& metrics_address() const { return metrics_; }
  const fs::path& config_path() const { return config_path_; }
  const fs::path& state_dir() const { return state_dir_; }
  std::string log() const { return read_file(stderr_path_); }

 private:
  TempDir dir_;
  fs::path config_path_, endpoints_path_, stderr_path_, state_dir_;
  std::optional<Process> process_;
  bool started_ = false;
  std::string ingest_, publish_, metrics_;
};

// A CURVE key pair (Z85), as kneeloadctl keygen makes it.
struct KeyPair {
  std::string public_key;
  std::string secret_key;
};
inline KeyPair curve_key_pair() {
  char pub[41], sec[41];
  zmq_curve_keypair(pub, sec);
  return {pub, sec};
}
// Makes `socket` a CURVE client of a daemon whose public key is `server_public`; call before
// connect().
inline void curve_client(zmq::socket_t& socket, const std::string& server_public, const KeyPair& mine) {
  socket.set(zmq::sockopt::curve_serverkey, server_public);
  socket.set(zmq::sockopt::curve_publickey, mine.public_key);
  socket.set(zmq::sockopt::curve_secretkey, mine.secret_key);
}

// A subscriber that has provably joined: it waits for the first status heartbeat, so nothing
// sent afterwards is lost to the PUB slow-joiner window.
class Subscriber {
 public:
  // With `server_public` non-empty the subscriber is a CURVE client with key pair `mine`.
  Subscriber(zmq::context_t& ctx, const std::string& endpoint, const std::string& server_public = {},
             const KeyPair& mine = {})
      : socket_(ctx, zmq::socket_type::sub) {
    if (!server_public.empty()) curve_client(socket_, server_public, mine);
    socket_.set(zmq::sockopt::rcvhwm, 0);  // tests must not lose messages on their side
    socket_.set(zmq::sockopt::subscribe, "");
    socket_.connect(endpoint);
  }
  bool wait_joined(std::chrono::milliseconds timeout) {
    return eventually([&] {
      poll_into_store(0ms);
      for (const Received& r : received_) if (r.topic == "status") return true;
      return false;
    }, timeout);
  }
  // Receives everything available within `timeout` into the store.
  void poll_into_store(std::chrono::milliseconds timeout) {
    std::vector<zmq::pollitem_t> items{{socket_.handle(), 0, ZMQ_POLLIN, 0}};
    if (zmq::poll(items, timeout) <= 0) return;
    for (;;) {
      std::vector<zmq::message_t> parts;
      const auto r = zmq::recv_multipart(socket_, std::back_inserter(parts), zmq::recv_flags::dontwait);
      if (!r) break;
      if (parts.size() != 2) {
        ++malformed_;
        continue;
      }
      received_.push_back({parts[0].to_string(), parts[1].to_string()});
    }
  }
  // Collects until `cond` holds on the store or the timeout passes.
  bool collect_until(const std::function<bool(const std::vector<Received>&)>& cond,
                     std::chrono::milliseconds timeout) {
    return eventually([&] {
      poll_into_store(5ms);
      return cond(received_);
    }, timeout);
  }
  const std::vector<Received>& received() const { return received_; }
  std::size_t malformed() const { return malformed_; }

  template <typename Msg>
  std::vector<Msg> decoded(const std::string& topic_prefix) const {
    std::vector<Msg> out;
    for (const Received& r : received_) {
      if (r.topic.rfind(topic_prefix, 0) != 0) continue;
      Msg m;
      if (m.ParseFromString(r.payload)) out.push_back(m);
    }
    return out;
  }
  std::optional<kneeload::v1::DaemonStatus> last_status() const {
    auto all = decoded<kneeload::v1::DaemonStatus>("status");
    if (all.empty()) return std::nullopt;
    return all.back();
  }

 private:
  zmq::socket_t socket_;
  std::vector<Received> received_;
  std::size_t malformed_ = 0;
};

inline std::uint64_t count_named(const google::protobuf::RepeatedPtrField<kneeload::v1::Count>& counts,
                                 const std::string& name) {
  for (const auto& c : counts) if (c.name() == name) return c.value();
  return 0;
}

// Frame builders.
inline kneeload::v1::Frame frame(const std::string& device, std::uint32_t seq) {
  kneeload::v1::Frame f;
  f.set_protocol_version(1);
  f.set_device_id(device);
  f.set_seq(seq);
  return f;
}

inline void add_pain(kneeload::v1::Frame& f, std::int64_t t_us, unsigned score) {
  auto* s = f.add_samples();
  s->set_t_us(t_us);
  s->mutable_pain()->set_score(score);
  s->mutable_pain()->set_side(kneeload::v1::SIDE_LEFT);
  s->mutable_pain()->set_location(kneeload::v1::PAIN_LOCATION_ANTERIOR);
}

// 16 cells sharing the force equally; pressure chosen so Σ p·A = force_n.
inline void add_insole(kneeload::v1::Frame& f, std::int64_t t_us, double force_n, double cell_area_cm2) {
  auto* s = f.add_samples();
  s->set_t_us(t_us);
  const double per_cell_pa = force_n / 16.0 / (cell_area_cm2 * 1e-4);
  for (int c = 0; c < 16; ++c) s->mutable_insole()->add_pressure_pa(static_cast<float>(per_cell_pa));
}

inline void add_treadmill(kneeload::v1::Frame& f, std::int64_t t_us, float speed_mps) {
  auto* s = f.add_samples();
  s->set_t_us(t_us);
  s->mutable_treadmill()->set_belt_speed_mps(speed_mps);
  s->mutable_treadmill()->set_incline_fraction(0.01f);
}

// Tests send seconds of device data in milliseconds. Live, the daemon would see those frames
// arrive all at once and align them accordingly; so, like a replay, each frame carries the
// arrival a live device would have had: its last sample's time plus 2 ms of transport.
inline bool send_frame(zmq::socket_t& push, const kneeload::v1::Frame& f) {
  kneeload::v1::Frame stamped = f;
  if (stamped.recorded_arrival_us() == 0 && stamped.samples_size() > 0) {
    std::int64_t last = 0;
    for (const auto& s : stamped.samples()) last = std::max<std::int64_t>(last, s.t_us());
    stamped.set_recorded_arrival_us(last + 2000);
  }
  const std::string bytes = stamped.SerializeAsString();
  return push.send(zmq::buffer(bytes), zmq::send_flags::none).has_value();
}

inline bool send_raw(zmq::socket_t& push, const std::string& bytes) {
  return push.send(zmq::buffer(bytes), zmq::send_flags::none).has_value();
}

// `seconds` of running for runner n, as its devices would send it, in the order of each frame's
// first sample: insoles at `hz` in frames of 10 samples, a half-sine vertical force of 2.5 BW
// over 0.25 s contacts at 170 steps/min alternating feet (16 cells of 8 cm²), and the
// treadmill at 3.3 m/s at 10 Hz. `extra` frames of the same runner (console, …) are merged in
// time order, as live. *complete gets the number of contacts whose toe-off lies in the data.
inline std::vector<kneeload::v1::Frame> running_frames(int n, double seconds, double hz = 100.0,
                                                        std::vector<kneeload::v1::Frame> extra = {},
                                                        int* complete = nullptr) {
  constexpr double kCellAreaCm2 = 8.0;
  constexpr double kBodyWeightN = 70.0 * 9.80665;
  const double step_s = 60.0 / 170.0, contact_s = 0.25;
  const std::int64_t t0 = 1'000'000;
  int contacts = 0;
  std::vector<std::pair<std::int64_t, kneeload::v1::Frame>> frames;
  for (int side = 0; side < 2; ++side) {
    const std::string id = "s" + std::to_string(n) + (side == 0 ? "-L" : "-R");
    const double offset = side * step_s;
    std::uint32_t seq = 0;
    kneeload::v1::Frame f = frame(id, seq);
    const int samples = static_cast<int>(seconds * hz);
    for (int i = 0; i < samples; ++i) {
      const double t = i / hz;
      const double phase = std::fmod(t - offset + 2 * step_s * 100, 2 * step_s);
      const double force = phase < contact_s ? 2.5 * kBodyWeightN * std::sin(M_PI * phase / contact_s) : 0.0;
      add_insole(f, t0 + static_cast<std::int64_t>(std::llround(t * 1e6)), force, kCellAreaCm2);
      if (f.samples_size() == 10) {
        frames.emplace_back(f.samples(0).t_us(), f);
        f = frame(id, ++seq);
      }
    }
    if (f.samples_size() > 0) frames.emplace_back(f.samples(0).t_us(), f);
    for (double ic = offset; ic + contact_s < seconds - 1.0 / hz; ic += 2 * step_s) ++contacts;
  }
  for (int i = 0; i < static_cast<int>(seconds * 10); ++i) {
    kneeload::v1::Frame tm = frame("s" + std::to_string(n) + "-tm", static_cast<std::uint32_t>(i));
    add_treadmill(tm, t0 + i * 100'000, 3.3f);
    frames.emplace_back(tm.samples(0).t_us(), tm);
  }
  for (const kneeload::v1::Frame& f : extra) frames.emplace_back(f.samples(0).t_us(), f);
  std::stable_sort(frames.begin(), frames.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  if (complete != nullptr) *complete = contacts;
  std::vector<kneeload::v1::Frame> out;
  out.reserve(frames.size());
  for (auto& [t, f] : frames) out.push_back(std::move(f));
  return out;
}

// Registry TOML for `stations` stations, each with one runner wearing a left and right insole
// (16 cells of cell_area_cm2), a treadmill and a console. Device ids: s<N>-L, s<N>-R, s<N>-tm,
// s<N>-console; runner r<N>; station st<N>.
inline std::string registry_toml(int stations, double cell_area_cm2 = 8.0, int first = 1) {
  std::ostringstream t;
  for (int n = first; n < first + stations; ++n) {
    t << "[[runners]]\nid = \"r" << n << "\"\nbody_mass_kg = 70.0\nheight_m = 1.75\n\n";
  }
  for (int n = first; n < first + stations; ++n) {
    for (const char* side : {"left", "right"}) {
      t << "[[devices]]\nid = \"s" << n << "-" << (side[0] == 'l' ? "L" : "R") << "\"\nstation = \"st" << n
        << "\"\nrunner = \"r" << n << "\"\nkind = \"insole\"\nside = \"" << side << "\"\ncell_areas_cm2 = [";
      for (int c = 0; c < 16; ++c) t << (c ? ", " : "") << cell_area_cm2;
      t << "]\ncell_x = [";
      for (int c = 0; c < 16; ++c) t << (c ? ", " : "") << (0.03 + 0.06 * c);
      t << "]\n\n";
    }
    t << "[[devices]]\nid = \"s" << n << "-tm\"\nstation = \"st" << n << "\"\nrunner = \"r" << n
      << "\"\nkind = \"treadmill\"\n\n";
    t << "[[devices]]\nid = \"s" << n << "-console\"\nstation = \"st" << n << "\"\nrunner = \"r" << n
      << "\"\nkind = \"console\"\n\n";
  }
  return t.str();
}

// The names of a running process's threads (/proc/<pid>/task/*/comm), sorted.
inline std::vector<std::string> thread_names(pid_t pid) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& task : fs::directory_iterator(fs::path("/proc") / std::to_string(pid) / "task", ec)) {
    std::string name = read_file(task.path() / "comm");
    while (!name.empty() && name.back() == '\n') name.pop_back();
    names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

inline std::string base_toml(double stale_after_s = 3.0, int workers = 2) {
  std::ostringstream t;
  t << "[publish]\nheartbeat_s = 0.1\n\n[metrics]\naddress = \"\"\n\n[pipeline]\nworkers = " << workers
    << "\nmax_devices = 256\nmax_runners = 64\nmax_stations = 64\n\n[health]\nstale_after_s = " << stale_after_s
    << "\n\n";
  return t.str();
}

}  // namespace kneeload::testing
