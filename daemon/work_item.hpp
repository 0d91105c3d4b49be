// What travels through the pipeline's rings besides samples and outputs. Control items go
// in-band, in order with the data, so a reload or a drain never races a sample.
#pragma once

#include <cstdint>
#include <variant>

#include "kneeload/fusion/output.hpp"
#include "kneeload/fusion/sample.hpp"

namespace kneeload::daemon {

struct Registry;

// A new registry generation. The pointee stays alive until every thread has acknowledged a
// later generation (Pipeline retires old generations on the main thread).
struct ConfigChange {
  const Registry* registry;
};

// A device went silent or came back (decided by the control loop's stale timer).
struct StaleChange {
  std::uint32_t device;
  std::uint32_t runner;
  fusion::Side side;
  fusion::SensorKind kind;
  bool stale;
};

// Shutdown: everything before it is processed and passed on, then the thread ends.
struct DrainMarker {};

using ControlCommand = std::variant<ConfigChange, StaleChange, DrainMarker>;  // main → ingest
using WorkItem = std::variant<fusion::Sample, ConfigChange, StaleChange, DrainMarker>;  // ingest → worker
using OutItem = std::variant<fusion::Output, DrainMarker>;  // worker → publisher

}  // namespace kneeload::daemon
