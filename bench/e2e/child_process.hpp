// Child processes for bench/e2e (kneeloadd, kneeloadctl load) that cannot outlive the bench:
// killed when their ChildProcess is destroyed, when the bench is interrupted (SIGINT, SIGTERM,
// SIGHUP: the handler kills every live child at once), and when the bench itself dies
// (PR_SET_PDEATHSIG), so no exit path leaves a daemon or a generator running.
//
// Thread ownership: a ChildProcess belongs to the thread that made it; the registry the signal
// handler reads is a fixed array of atomics.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace kneeload::bench {

// Thrown from the waits once a stop signal arrived, so every destructor runs on the way out.
class Interrupted : public std::runtime_error {
 public:
  Interrupted() : std::runtime_error("interrupted") {}
};

void install_interrupt_handlers();
bool interrupted();
// Throws Interrupted if a stop signal arrived.
void check_interrupted();
// Sleeps for `d`, or less when interrupted (then throws).
void nap(std::chrono::milliseconds d);

class ChildProcess {
 public:
  // Starts argv[0] (a path) with stdout and stderr written to the given files.
  // Throws std::runtime_error if it cannot fork or the registry is full.
  ChildProcess(const std::vector<std::string>& argv, const std::string& stdout_path, const std::string& stderr_path);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // The exit code (128 + signal when killed by one), or nullopt if still running after `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  bool running() { return !wait(std::chrono::milliseconds(0)).has_value(); }
  void signal(int signo) const;
  // SIGTERM, up to `grace` for it to exit, then SIGKILL. Returns the exit code. Never throws
  // (destructors call it), even when interrupted.
  int stop(std::chrono::milliseconds grace) noexcept;

 private:
  std::optional<int> reap(std::chrono::milliseconds timeout, bool interruptible);

  pid_t pid_ = -1;
  int slot_ = -1;
  std::optional<int> code_;
};

}  // namespace kneeload::bench
