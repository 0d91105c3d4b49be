// Ground truth the simulator reports next to the device stream (MODEL.md §10), so tests can
// measure estimation error and rule precision/recall. Every value is measured on what was
// rendered (e.g. contact time from the rendered force at the contact threshold), not copied from
// the parameters. Times are on the true clock, which is also the daemon (arrival) clock.
#pragma once

#include <cstdint>

#include "kneeload/fusion/sample.hpp"
#include "kneeload/fusion/session.hpp"
#include "kneeload/sim/params.hpp"

namespace kneeload::sim {

// One step (one foot's stance and the flight after it), MODEL.md §1 and §9 definitions.
struct StepTruth {
  std::uint64_t index = 0;  // per session, from 0, in IC order
  fusion::Side side = fusion::Side::kNone;
  std::int64_t ic_t_us = 0;  // rising crossing of the contact threshold
  std::int64_t to_t_us = 0;  // falling crossing
  double contact_time_s = 0.0;  // TO − IC
  double flight_time_s = 0.0;   // next (contralateral) IC − TO
  double step_time_s = 0.0;     // IC − previous (contralateral) IC
  double cadence_spm = 0.0;     // 60 / step_time_s
  double step_length_m = 0.0;   // belt speed × step_time_s
  double belt_speed_mps = 0.0;
  double incline_fraction = 0.0;

  double peak_force_bw = 0.0;
  double impact_peak_bw = 0.0;  // local maximum in early stance; NaN without one (non-rearfoot)
  double valr_bw_per_s = 0.0;   // 20–80 % of the impact peak, or 3–12 % of stance (MODEL.md §1)
  double vilr_bw_per_s = 0.0;   // max dF/dt in the same window
  double impulse_bw_s = 0.0;    // ∫F dt over stance
  double shank_impact_g = 0.0;  // peak of the axial impact spike added to the shank IMU
  // Peak tibial acceleration (g): the maximum of the shank IMU's noise-free axial reading
  // (specific force along the shank, gravity and the impact spike included) from
  // fusion::ModelParams' pta_lead_s before IC to pta_window_s after it, or TO if sooner; in
  // continuous time, so independent of the IMU rate.
  double pta_g = 0.0;

  double strike_index_pct = 0.0;       // 100 · x_CoP at IC, from the ideal cell pressures
  double cop_mean_x_norm = 0.0;        // time-mean over stance
  double cop_mean_y_norm = 0.0;        // 0 medial .. 1 lateral
  double cop_ml_excursion_norm = 0.0;  // max − min of y_CoP over IC .. 30 % of stance (§1)
  double cop_ml_excursion_m = 0.0;     // the same, × foot width (fusion/cop_path.hpp)
  // Length of the CoP's path over stance, IC .. TO, in metres (x × foot length, y × foot
  // width), on a 1000-point grid of the scheduled CoP, which the footprint reproduces in the
  // ideal pressures' centroid (cop_path.hpp has the definition).
  double cop_path_length_m = 0.0;
  double midfoot_peak_pressure_pa = 0.0;  // max over stance and midfoot cells (§8)

  double knee_ic_rad = 0.0;           // θ at IC
  double knee_peak_rad = 0.0;         // max θ over stance
  double thigh_ic_rad = 0.0;          // φ_t at IC
  double shank_ic_rad = 0.0;          // φ_s at IC
  // MODEL.md §3A with docs/model-conventions.md: max over stance of F·d / body mass, with
  // d = L_s·sin φ_s + (ankle_x_norm − x_CoP)·L_foot and ankle_x_norm = 0.25.
  double peak_knee_moment_nm_per_kg = 0.0;
  // MODEL.md §3C/§4: ∫PFJRF dt over stance (BW·s), PFJRF = k(θ)·M_k/MA(θ) clipped at 0, with
  // the true force, CoP, θ and φ_s (fusion::pfj_load), trapezoid rule on 101 points.
  double pfjrf_impulse_bw_s = 0.0;
  // MODEL.md §5: time from IC to the stance peak with 20° ≤ θ ≤ 30° and F ≥ 0.5 BW.
  double itb_zone_time_s = 0.0;
};

// One leg at one instant (true clock). Angles per docs/model-conventions.md.
struct LegTruth {
  double thigh_rad = 0.0;  // φ_t
  double shank_rad = 0.0;  // φ_s
  double knee_rad = 0.0;   // θ = φ_t + φ_s
  double thigh_rate_radps = 0.0;
  double shank_rate_radps = 0.0;
  double knee_rate_radps = 0.0;
  double force_n = 0.0;            // vertical GRF under this foot, before any insole error
  double cop_x_norm = 0.0;         // NaN when force_n == 0
  double cop_y_norm = 0.0;
  bool in_contact = false;         // force_n >= the truth contact threshold
  double hip_accel_y_mps2 = 0.0;   // hip vertical acceleration (world)
  double thigh_sensor_accel_mps2[2] = {0.0, 0.0};  // linear acceleration (world x, y), no impact
  double shank_sensor_accel_mps2[2] = {0.0, 0.0};
};

// How one device's clock and transport were drawn.
struct ClockTruth {
  bool enabled = false;
  std::int64_t device_t0_us = 0;  // device clock reading at true time true_t0_us
  std::int64_t true_t0_us = 0;    // true time of the device's first periodic sample
  double drift_ppm = 0.0;
  double latency_mean_us = 0.0;
  double rate_hz = 0.0;           // 0 for event-driven devices (console)
  int batch = 0;
};

// A scripted fault with its resolved true-clock window.
struct FaultTruth {
  FaultSpec spec;
  std::int64_t start_t_us = 0;
  std::int64_t end_t_us = 0;  // == start for instantaneous faults (clock jump, frame faults)
};

// Extra facts about a sample returned by Simulator::next().
struct SampleInfo {
  fusion::DeviceRole role = fusion::DeviceRole::kInsoleLeft;
  std::int64_t true_t_us = 0;   // when it was sampled, on the true clock
  std::uint32_t frame_seq = 0;  // == Sample::device_seq
  std::uint16_t index_in_frame = 0;
  std::uint16_t frame_size = 0;
  bool frame_start = false;  // first sample of its frame
  bool frame_end = false;    // last sample of its frame: the frame can be sent now
  bool duplicate = false;    // part of a second delivery of the same frame (fault)
};

}  // namespace kneeload::sim
