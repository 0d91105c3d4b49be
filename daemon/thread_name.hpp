// Names the calling thread, so that top -H, ps -L, perf report --sort comm, gdb and
// /proc/<pid>/task/*/comm tell kneeloadd's threads apart. Unnamed, every thread inherits
// "kneeloadd" and a busy one can only be guessed from its tid. libzmq names its own threads
// (ZMQbg/IO/0, ZMQbg/Reaper); the main thread keeps the process name and runs the control loop.
#pragma once

#include <pthread.h>

#include <cstdio>

namespace kneeload::daemon {

// Linux keeps at most 15 bytes of a thread name (pthread_setname_np refuses longer ones with
// ERANGE), so a longer name is cut rather than lost. Once per thread, at its start: not a
// per-sample cost. A failure only leaves the inherited name, so it is ignored.
inline void name_this_thread(const char* name) {
  char cut[16];
  std::snprintf(cut, sizeof cut, "%s", name);
  (void)::pthread_setname_np(::pthread_self(), cut);
}

}  // namespace kneeload::daemon
