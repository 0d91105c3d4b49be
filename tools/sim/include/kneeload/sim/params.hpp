// What a simulated runner is made of: gait parameters, how they drift (scenarios), and how the
// devices that observe the runner behave (rates, clocks, noise, faults). MODEL.md §10.
//
// Units: SI inside (kg, m, s, N, Pa, rad); angles in degrees only in names ending in _deg, forces
// in body weights only in names ending in _bw. Times called *_s inside a plan are seconds since
// the session start (the first sample's true time), not clock readings.
// These are plain values: build one, adjust fields, hand it to Simulator.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kneeload/fusion/sample.hpp"
#include "kneeload/fusion/session.hpp"

namespace kneeload::sim {

// A runner's gait at one moment. Defaults: a healthy 70 kg rearfoot striker at 3.3 m/s
// (MODEL.md §1 contact time ≈0.25 s, cadence 160–180 spm, peak 2.2–2.8 BW; §2 knee 13–21° at
// IC, 36–45° at stance peak). Index [0] is the left leg, [1] the right.
struct RunnerParams {
  double body_mass_kg = 70.0;
  double height_m = 1.75;
  // Segment lengths in m; 0 selects Winter's anthropometry from height_m (MODEL.md §3A):
  // thigh 0.245·H, shank 0.246·H, foot length 0.152·H, foot breadth 0.055·H.
  double thigh_length_m = 0.0;
  double shank_length_m = 0.0;
  double foot_length_m = 0.0;
  double foot_width_m = 0.0;

  double speed_mps = 3.3;         // belt speed once running
  double incline_fraction = 0.0;  // rise over run; negative is downhill

  double cadence_spm = 170.0;     // steps per minute (both feet)
  // Truth contact time at the contact threshold (SimConfig; MODEL.md §1: 40 N).
  double contact_time_s = 0.25;
  // Active peak of vGRF per foot. Each step's force shape is solved so its impulse is
  // m·g·step time (stride-mean vGRF = 1 BW, MODEL.md §1); a peak that cannot balance with the
  // contact time and cadence clamps the shape, and StepTruth::impulse_bw_s shows the error.
  double peak_force_bw = 2.5;
  // Impact transient, rearfoot strikes only (strike_index_pct <= 33): the total force at the
  // impact time; the rendered local maximum is reported in StepTruth.
  double impact_peak_bw = 1.7;
  double impact_time_frac = 0.12;  // impact peak at this fraction of stance (≈30 ms)
  double strike_index_pct = 15.0;  // CoP at IC, % of foot length: rearfoot 0–33, fore 68–100
  double shank_impact_g = 6.0;     // peak of the shank's axial impact spike at IC (PTA, §0/§1)

  double knee_ic_deg = 16.0;           // knee flexion at initial contact
  double knee_stance_peak_deg = 42.0;  // stance peak flexion (at 42 % of stance)
  double knee_toe_off_deg = 20.0;      // flexion at toe-off (a local minimum)
  double knee_swing_peak_deg = 95.0;   // swing peak flexion
  double thigh_ic_deg = 24.0;          // thigh angle φ_t at IC (hip flexion; overstride ↑)
  double thigh_extension_deg = -12.0;  // most extended thigh angle, just after toe-off

  // Asymmetry factors per leg (MODEL.md §7): contact time and peak force are multiplied, the
  // stance peak knee flexion is offset.
  std::array<double, 2> contact_time_factor{1.0, 1.0};
  std::array<double, 2> peak_force_factor{1.0, 1.0};
  std::array<double, 2> knee_stance_peak_offset_deg{0.0, 0.0};

  // Shoe wear, 0 (new) .. 1 (worn out), MODEL.md §8. At 1: rendered impact peak ≈ +20 %, shank
  // impact +15 %, mean stance CoP ≈5 mm medial, faster early medial CoP excursion, peak midfoot
  // pressure ≈ +40 % (Escamilla-Martínez 2020: +52 % at 700 km).
  double shoe_wear = 0.0;
};

// Winter's segment lengths where RunnerParams leaves them 0 (m).
double thigh_length_m(const RunnerParams& p);
double shank_length_m(const RunnerParams& p);
double foot_length_m(const RunnerParams& p);
double foot_width_m(const RunnerParams& p);

// Stride-to-stride variability, drawn per step from the gait stream. All zero gives a
// metronome runner whose truth equals the parameters.
struct GaitVariability {
  double step_time_cv = 0.01;     // coefficient of variation of step time
  double contact_time_cv = 0.015;
  double peak_force_cv = 0.02;
  double angle_sd_deg = 0.7;      // knee IC / stance peak angle jitter
};

// Additive changes to RunnerParams at full drift (see ScenarioPlan). Same units as the fields.
struct ParamsDrift {
  double speed_mps = 0.0;
  double incline_fraction = 0.0;
  double cadence_spm = 0.0;
  double contact_time_s = 0.0;
  double peak_force_bw = 0.0;
  double impact_peak_bw = 0.0;
  double strike_index_pct = 0.0;
  double shank_impact_g = 0.0;
  double knee_ic_deg = 0.0;
  double knee_stance_peak_deg = 0.0;
  double thigh_ic_deg = 0.0;
  double shoe_wear = 0.0;
  std::array<double, 2> contact_time_factor{0.0, 0.0};
  std::array<double, 2> peak_force_factor{0.0, 0.0};
  std::array<double, 2> knee_stance_peak_offset_deg{0.0, 0.0};
};

// base + amount · drift, field by field (amount 0..1).
RunnerParams drifted(const RunnerParams& base, const ParamsDrift& drift, double amount);

enum class Scenario : std::uint8_t {
  kHealthy = 0,
  kOverstride,  // habit: 155 spm, θ_IC −7°, thigh further forward, impact +25 % (§3, R2)
  kItb,         // θ_IC → 22° (20–30° zone), stance peak −9°, downhill −5 % (§5, R6)
  kFatigue,     // 178 spm habit; t_c +7 %, cadence −4.5 %, θ_IC +4°, impact +10 % (§6, R7)
  kAsymmetry,   // habit: right t_c +8 %, peak F −18 %, stance peak −6° (§7, R8)
  kWornShoes,   // shoe_wear 0 → 1: impact +16 %, CoP medial, midfoot +30 % (§8, R9)
  kPain,        // anterior knee pain reports 2 then 4 mid-run (R10)
  kFaults,      // dropout, clock jumps, duplicate and reordered frames, bad cells (F-rules)
  kMixed,       // demo blend: partial fatigue and shoe wear, a lateral pain report, a dropout
};
inline constexpr int kScenarioCount = 9;
const char* scenario_name(Scenario s);  // "healthy", "overstride", ..., "mixed"
// Returns true iff name is one of scenario_name()'s values; then *out is set.
bool parse_scenario(std::string_view name, Scenario* out);

// A scripted pain report from the console (MODEL.md §9 R10).
struct PainEvent {
  double t_s = 0.0;  // since session start
  std::uint8_t score = 0;
  fusion::Side side = fusion::Side::kLeft;
  fusion::PainLocation location = fusion::PainLocation::kAnterior;
};

enum class FaultKind : std::uint8_t {
  kDropout = 0,        // the device sends nothing for duration_s (frames lost; seq gap)
  kClockJump,          // the device clock steps by clock_jump_s (either sign) at start_s
  kDuplicateFrame,     // the first frame at/after start_s is delivered twice
  kReorderFrames,      // the first frame at/after start_s arrives after the next one
  kSaturatingCell,     // insole cell `cell` reads value× too high for duration_s (saturates)
  kStuckCell,          // insole cell `cell` reads a constant `value` Pa for duration_s
};
const char* fault_name(FaultKind k);

struct FaultSpec {
  FaultKind kind = FaultKind::kDropout;
  fusion::DeviceRole device = fusion::DeviceRole::kInsoleLeft;
  double start_s = 0.0;     // since session start (true clock)
  double duration_s = 0.0;  // dropout, saturating and stuck cells
  double clock_jump_s = 0.0;
  int cell = 0;
  double value = 0.0;       // saturating: gain factor; stuck: pressure in Pa
};

// When drift begins and how long it takes (MODEL.md §6: minutes 0–8 are the baseline).
struct ScenarioTiming {
  double onset_s = 480.0;  // end of the healthy baseline
  double ramp_s = 1200.0;  // smooth (C²) ramp from no drift to full drift
};

// Everything scripted about a session: the runner's habits, parameter drift after onset, pain
// reports, faults. The gait at time t is drifted(drifted(runner, habit, 1), drift, amount(t)).
struct ScenarioPlan {
  Scenario scenario = Scenario::kHealthy;
  ScenarioTiming timing;
  // Present from the first step, so it is part of the baseline (minutes 3-8, MODEL.md §6): a
  // habit or a lasting condition (overstriding, a post-injury gait), not an in-session change.
  // Baseline-relative rules cannot see it; absolute ones (R2's 166 spm, R8's SI) can.
  ParamsDrift habit;
  ParamsDrift drift;
  std::vector<PainEvent> pain;
  std::vector<FaultSpec> faults;
};

// The plan for a scenario, its habit and drift sized against `base` (e.g. cadence 155 spm is
// 155 − base.cadence_spm). Pain reports and faults are placed inside [onset, onset + ramp].
ScenarioPlan make_scenario(Scenario s, const RunnerParams& base, const ScenarioTiming& timing = {});

// `base` with the plan's habit applied: the runner before any drift.
RunnerParams habitual(const RunnerParams& base, const ScenarioPlan& plan);

// Drift amount 0..1 at t_s: 0 until onset, a quintic smoothstep over ramp_s, then 1.
double drift_amount(const ScenarioTiming& timing, double t_s);

// One device's clock and transport (MODEL.md §0: BLE gateways batch and delay). The device
// clock reads device_t0 + (t − t0)·(1 + drift_ppm·1e-6) plus any clock-jump faults; a frame of
// `batch` samples arrives on the daemon clock at its last sample's true time + latency.
struct ClockModel {
  double offset_max_s = 3600.0;     // device clock at session start: uniform 1 s .. this
  double drift_sd_ppm = 20.0;       // per-device drift, normal
  double latency_ms = 8.0;          // mean transport latency
  double latency_jitter_ms = 2.0;   // sd of latency, clipped to >= 0.5 ms
};

struct InsoleModel {
  bool enabled = true;
  double rate_hz = 100.0;           // 100..1000 (MODEL.md §0: Moticon 100 Hz)
  int batch = 10;                   // samples per frame
  double noise_pa = 1000.0;         // white noise per cell, sd (0.1 N/cm²)
  double max_pressure_pa = 500e3;   // saturation (Moticon range 0..50 N/cm²)
  double gain_error_sd = 0.03;      // whole-insole calibration gain error, sd (MODEL.md §1, §7)
  double cell_gain_sd = 0.02;       // per-cell gain error, sd
  // sd of the Gaussian pressure footprint along the foot (across: 0.6×). Narrower gives higher
  // cell peaks (default: healthy peaks ≈400 kPa, below max_pressure_pa).
  double spread_mm = 45.0;
};

struct KneeModel {
  bool enabled = true;
  double rate_hz = 200.0;              // 100..1000 (MODEL.md §0: 200 Hz preferred)
  int batch = 10;
  bool imus = true;                    // thigh + shank IMU pair
  bool sleeve = false;                 // direct flexion angle (knee sleeve)
  double sleeve_noise_deg = 0.5;
  // MODEL.md §0 datasheet ranges: gyro noise 0.003–0.014 °/s/√Hz, zero-rate offset ±1–10 °/s,
  // accel noise 75–180 µg/√Hz; discrete sd = density · √rate.
  double gyro_noise_dps_rthz = 0.01;
  double accel_noise_ug_rthz = 150.0;
  double gyro_bias_sd_dps = 3.0;           // constant per axis, normal
  double gyro_bias_walk_radps_rts = 1e-4;  // random walk, rad/s/√s (MODEL.md §9 σ_b)
  double gyro_range_dps = 2000.0;
  double accel_range_g = 16.0;
  double thigh_sensor_frac = 0.5;   // IMU position along hip→knee
  double shank_sensor_frac = 0.6;   // IMU position along knee→ankle (distal tibia for PTA)
  double thigh_impact_ratio = 0.3;  // thigh impact spike relative to the shank's
};

struct TreadmillModel {
  bool enabled = true;
  double rate_hz = 10.0;
  int batch = 1;
};

struct ConsoleModel {
  bool enabled = true;
  bool session_end = true;  // a SessionEnd at the end of the session (stop button)
};

struct SimConfig {
  std::uint64_t seed = 1;
  double duration_s = 1800.0;
  std::int64_t start_t_us = 10'000'000'000;  // true (= daemon) clock at session start
  // The runner stands still (both feet 0.5 BW, knee 4°) for standing_s, then blends into the
  // running gait and belt speed over start_ramp_s. Steps are reported as truth from the end of
  // the blend. Both 0: running from the first sample.
  double standing_s = 5.0;
  double start_ramp_s = 3.0;
  // Truth contact threshold, as the fusion default (MODEL.md §1): max(40 N, 5 % BW).
  double contact_threshold_n = 40.0;
  double contact_threshold_bw = 0.05;

  RunnerParams runner;
  GaitVariability variability;
  ScenarioPlan plan;

  InsoleModel insole;
  KneeModel knee;
  TreadmillModel treadmill;
  ConsoleModel console;
  ClockModel clock;
  double status_period_s = 30.0;  // DeviceStatus from each streaming device; 0 disables

  // Registry metadata (MODEL.md §8).
  std::string shoe_id = "sim-shoe";
  double shoe_km = 0.0;
  double registry_force_gain = 1.0;  // force_gain written to the registry (uncalibrated)
};

// Turns off every sensor and transport error: noise, biases, gain errors, clock offset and
// drift, latency jitter. Gait variability and faults are left as they are.
void make_sensors_ideal(SimConfig& config);

// Returns "" iff `config` is usable; otherwise the first problem, "key: expected ..., got ...".
std::string validate(const SimConfig& config);

}  // namespace kneeload::sim
