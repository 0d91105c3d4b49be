// What the floor dashboard shows per station, kept where the data passes and read at scrape.
//
// Two writers, disjoint fields: the publisher (whichever thread holds its publishing right)
// writes what it sees in the outputs (the last step's metrics, the current risk level); the
// worker that owns the station's runner writes the open session's totals. Relaxed atomics:
// each value stands alone, and a scrape that sees one field a step older than another is fine
// for a gauge.
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>

namespace kneeload::daemon {

struct StationGauges {
  static constexpr double kUnknown = std::numeric_limits<double>::quiet_NaN();

  // Publisher: the last step of the station's runner.
  std::atomic<double> cadence_spm{kUnknown};
  std::atomic<double> contact_time_s{kUnknown};
  std::atomic<double> peak_knee_flexion_deg{kUnknown};
  std::atomic<double> pfj_stress_pa{kUnknown};
  // Publisher: highest severity among the rules currently active (0 none … 3 high).
  std::atomic<std::uint8_t> risk_level{0};

  // Worker thread: the open session (zeros when none is open).
  std::atomic<bool> session_open{false};
  std::atomic<double> session_distance_m{0.0};
  std::atomic<double> stress_time_integral_pa_s{0.0};
  std::atomic<double> damage_index{0.0};
};

static_assert(std::atomic<double>::is_always_lock_free, "gauges are read by the scrape thread");

}  // namespace kneeload::daemon
