// What travels through the pipeline's rings besides samples and outputs. Control items go
// in-band, in order with the data, so a reload or a drain never races a sample.
#pragma once

#include <cstdint>
#include <variant>

#include "kneeload/fusion/output.hpp"
#include "kneeload/fusion/sample.hpp"
#include "kneeload/fusion/session.hpp"

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

// The runner's history as the store computed it after one of its sessions closed
// (daemon/store): the scalar TrainingHistory hooks, by value so the item owns nothing.
// NaN = unknown. Travels main → ingest → the runner's worker, like StaleChange.
struct HistoryUpdate {
  std::uint32_t runner;
  double max_session_distance_30d_m;
  double max_session_damage_30d;
  double previous_two_weeks_mean_km;
  double week_km_before_session;
  double shoe_km_before_session;
  double previous_session_pain_score;
  double acute_load_ewma_km;
  double chronic_load_ewma_km;
  double day_km_before_session;
  // The stored runner baseline (store::kBaselineMetrics order), floats to keep the item small.
  static constexpr int kBaselineMetrics = 10;
  float baseline[2][kBaselineMetrics];
  float baseline_speed_mps;
  std::int32_t baseline_sessions;
};
// A history update must not make every ring slot bigger than a sample does.
static_assert(sizeof(HistoryUpdate) <= sizeof(fusion::Sample), "HistoryUpdate would grow the worker rings");

// An open session's running totals, taken by its worker every store.checkpoint_interval_s and
// passed through the publisher to the store (never published): what survives a kill -9.
struct SessionCheckpoint {
  std::uint32_t runner;
  std::uint32_t station;
  fusion::SessionProgress progress;
  const char* model_id;  // string literal (load_model_id)
};

// Who takes a worker's outputs from its output ring. A worker calls outputs_ready() after it has
// pushed some (after each input item that made outputs, every 64 outputs, when its input runs
// dry, and while it waits on a full ring);
// the call must not block. In the daemon it is the Publisher, which publishes them on the
// calling thread (publisher.hpp); a test may ring a doorbell instead.
class OutputConsumer {
 public:
  virtual void outputs_ready() = 0;

 protected:
  ~OutputConsumer() = default;
};

using ControlCommand = std::variant<ConfigChange, StaleChange, HistoryUpdate, DrainMarker>;  // main → ingest
using WorkItem = std::variant<fusion::Sample, ConfigChange, StaleChange, HistoryUpdate, DrainMarker>;  // ingest → worker
using OutItem = std::variant<fusion::Output, SessionCheckpoint, DrainMarker>;  // worker → publisher
using StoreItem = std::variant<fusion::Output, SessionCheckpoint, DrainMarker>;  // publisher → store

}  // namespace kneeload::daemon
