// Fault points: test-only ways to make a thread misbehave, so tests can prove that the daemon
// copes (the watchdog notices a wedged worker; a failing signal read drains; a drain under a
// flood of frames fusion cannot keep up with still ends in time). Compiled only into
// kneeloadd_faultpoints (KNEELOAD_FAULT_POINTS defined, see daemon/CMakeLists.txt); the shipped
// kneeloadd contains neither this code nor the environment variable names, which
// tests/integration/notify_test.cpp checks.
//
// KNEELOAD_FAULT_WEDGE_WORKER=<index>   the worker thread with this index (0-based) stops
// KNEELOAD_FAULT_WEDGE_AFTER_S=<s>      ... this many seconds after it started (default 0)
// KNEELOAD_FAULT_SIGNAL_READ_FAILS=1    the control loop's first read of its signalfd fails
//                                       (EBADF), as a broken descriptor would make it
// KNEELOAD_FAULT_SLOW_POLL_US=<us>      every Worker::poll() sleeps this long first: fusion
//                                       far slower than its senders (with workers = 0, one
//                                       poll per frame), as on a starved machine
//
// A wedged worker sleeps inside its loop for the rest of the process lifetime: it neither
// consumes its ring nor counts progress, as a worker stuck in a deadlock or an endless loop.
//
// Thread ownership: one WorkerWedge per worker thread, created and checked on that thread;
// signal_read_fails() on the control thread; slow_poll() on whichever thread polls a worker.
#pragma once

#ifndef KNEELOAD_FAULT_POINTS
#error "fault_points.hpp is for the test-only kneeloadd_faultpoints build"
#endif

#include <chrono>
#include <cstdlib>
#include <thread>

namespace kneeload::daemon::fault {

class WorkerWedge {
 public:
  explicit WorkerWedge(int worker_index) {
    const char* index = std::getenv("KNEELOAD_FAULT_WEDGE_WORKER");
    if (index == nullptr || std::atoi(index) != worker_index) return;
    const char* after = std::getenv("KNEELOAD_FAULT_WEDGE_AFTER_S");
    const double after_s = after != nullptr ? std::atof(after) : 0.0;
    armed_ = true;
    at_ = std::chrono::steady_clock::now() +
          std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(after_s));
  }

  // Called once per loop iteration; never returns once the wedge time has passed.
  void check() const {
    if (!armed_ || std::chrono::steady_clock::now() < at_) return;
    for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
  }

 private:
  bool armed_ = false;
  std::chrono::steady_clock::time_point at_{};
};

inline void slow_poll() {
  static const long us = [] {
    const char* v = std::getenv("KNEELOAD_FAULT_SLOW_POLL_US");
    return v != nullptr ? std::atol(v) : 0L;
  }();
  if (us > 0) std::this_thread::sleep_for(std::chrono::microseconds(us));
}

inline bool signal_read_fails() {
  const char* on = std::getenv("KNEELOAD_FAULT_SIGNAL_READ_FAILS");
  return on != nullptr && std::atoi(on) == 1;
}

}  // namespace kneeload::daemon::fault
