// RunnerSession: everything the model knows about one runner, fed one sample at a time.
// Thread ownership: one fusion worker thread owns a session for its whole life; no locking.
// Contract: on_sample() performs no heap allocation, no I/O and reads no clock, so the same
// input sequence yields the same outputs bit for bit (deterministic replay). Memory is
// allocated once, at construction (filters, reorder buffer, trend windows, stance traces).
//
// Pipeline inside (MODEL.md §9):
//   sample → RunnerClock (align device clocks on the arrival clock, reorder within a window)
//          → insole: stride-mean calibration, vGRF Kalman filter (gates outliers), contact
//            detection (IC/TO), stance load accumulation (StepLoad), saturation/stuck cells
//          → knee: knee-angle KF (IMU pair and/or sleeve), shank-tilt KF
//          → step at toe-off: StepMetrics, session load, rolling windows and baseline, rules
//          → FusedState decimated on the aligned clock
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <memory>

#include "kneeload/fusion/cop_path.hpp"
#include "kneeload/fusion/filters.hpp"
#include "kneeload/fusion/load_model.hpp"
#include "kneeload/fusion/output.hpp"
#include "kneeload/fusion/risk_rules.hpp"
#include "kneeload/fusion/sample.hpp"
#include "kneeload/fusion/time_align.hpp"

namespace kneeload::fusion {

inline constexpr double kGravityMps2 = 9.80665;

struct RunnerParams {
  double body_mass_kg = 70.0;
  double height_m = 1.75;
};

// Geometry of one insole's pressure cells (MODEL.md §1): areas and normalised positions.
struct InsoleGeometry {
  int cell_count = 0;
  std::array<double, kMaxInsoleCells> area_m2{};
  std::array<double, kMaxInsoleCells> x_norm{};  // 0 heel .. 1 toe, along the insole
  std::array<double, kMaxInsoleCells> y_norm{};  // 0 medial .. 1 lateral
  double force_gain = 1.0;  // static calibration gain on ΣpA
};

// Mounting of a thigh/shank IMU pair (MODEL.md §2, docs/model-conventions.md): the hinge-axis
// direction in each sensor's own frame, and where each sensor sits relative to the knee joint
// centre (the vector joint → sensor in that sensor's frame, metres). The offsets let the
// accelerometers be shifted to the joint centre (Seel 2014) so the segments' own rotation
// (ω²r reaches ~26 m/s² on the shank in swing) does not bias the accelerometer knee angle.
// Defaults: a 1.75 m runner, thigh sensor mid-thigh, shank sensor 0.6 of the shank below the knee.
struct KneeImuAxes {
  std::array<double, 3> thigh_axis{0.0, 0.0, 1.0};
  std::array<double, 3> shank_axis{0.0, 0.0, 1.0};
  std::array<double, 3> thigh_sensor_m{0.0, 0.214, 0.0};
  std::array<double, 3> shank_sensor_m{0.0, -0.258, 0.0};
};

// Model defaults from MODEL.md; every one is a config key (see the example config).
struct ModelParams {
  double state_rate_hz = 50.0;          // FusedState decimation on the runner's clock
  double contact_threshold_n = 40.0;    // MODEL.md §1: IC/TO at max(40 N, 5 % BW)
  double contact_threshold_bw = 0.05;
  double contact_hysteresis = 0.8;      // toe-off below this fraction of the onset threshold
  double refractory_s = 0.150;          // MODEL.md §1: ≥150 ms between contacts of one foot
  double session_idle_end_s = 30.0;     // no steps this long (runner's clock) ends the session
  int pain_high_score = 3;              // MODEL.md §9 R10: knee pain ≥3/10 → high

  // MODEL.md §2: accelerometer knee-angle updates are skipped this long after an IC.
  double accel_ic_exclusion_s = 0.050;
  double ankle_x_norm = 0.25;           // ankle projection on the insole (fraction of length)
  double insole_width_m = 0.09;         // converts normalised CoP_y to metres (R9 drift)
  double midfoot_x_min = 0.30;          // midfoot cells for R9's regional peak pressure
  double midfoot_x_max = 0.60;
  // F1 from the data: a device silent this long on the aligned clock while the runner's other
  // devices go on. Deterministic (replays alike); the daemon's wall-clock stale timer covers a
  // runner whose devices all fall silent.
  double device_silent_s = 2.0;
  bool dynamic_calibration = true;      // MODEL.md §1/§9: stride-mean = 1 BW outer loop
  double calibration_max_incline = 0.005;  // "level" for the calibration loop (rise/run)
  double calibration_max_speed_change_mps = 0.05;  // "constant speed" between strides
  // PTA (MODEL.md §0, §1): the peak of the shank accelerometer's axial reading, in g, from
  // pta_lead_s before IC to pta_window_s after it (or TO if sooner). The lead covers the
  // insole-to-IMU clock alignment error (a few ms); the window holds the impact transient, which
  // peaks within ~10 ms of IC, and ends before the mid-stance push (up to ~2.5 g axially). PTA is
  // published only while the shank IMU's rate over the previous stride, in whole hertz, is at
  // least rules.impact.min_pta_rate_hz (key rules.r3_impact.min_pta_rate_hz; 500 Hz, MODEL.md
  // §0); otherwise NaN.
  double pta_lead_s = 0.010;
  double pta_window_s = 0.100;
  // Stance samples kept per foot for the loading rate and the ML excursion, which read the
  // first 35 % of a stance and up to its force maximum, and the first 30 %
  // (LoadModelParams/CopPathParams::max_stance_samples): 180 covers a running stance at 1 kHz;
  // walking at 1 kHz needs up to about 600, since its highest force can come at push-off (~80 %
  // of a 0.7 s stance). A stance that outlasts the trace before those windows end publishes
  // the two metrics as NaN. 12 bytes a sample, four traces per runner; a running session keeps
  // the size it was built with.
  int stance_trace_samples = 180;
  ContactAreaModel area_model = ContactAreaModel::kMriMale;  // MODEL.md §3D
  DamageExponents damage_exponents;     // MODEL.md §4: b = 4, sensitivity b = 8

  KneeAngleParams knee;
  ShankTiltParams shank;
  ForceFilterParams force;
  ForceCalibrationParams calibration;
  LoadingRateParams loading_rate;
  SessionLoadParams session_load;
  GaitTrendParams trends;
  RiskRuleParams rules;
  RunnerClockParams clock;
};

struct SessionConfig {
  std::uint32_t runner = 0;
  std::uint32_t station = 0;
  RunnerParams runner_params;
  ModelParams model;
  std::array<InsoleGeometry, 2> insoles;  // [left, right]
  std::array<KneeImuAxes, 2> knees;       // [left, right]
  TrainingHistory history;                // R4/R5/R9 hooks; NaN = unknown (rule silent)
};

// Counters a session keeps for metrics; plain integers, read by the owning thread only.
struct SessionCounters {
  std::uint64_t samples = 0;        // handed to on_sample()
  std::uint64_t fused = 0;          // released by the reorder window and processed
  std::uint64_t steps = 0;
  std::uint64_t risk_events = 0;
  std::uint64_t late = 0;           // arrived after newer samples were fused: not fused
  std::uint64_t resent = 0;         // a device's already-fused samples sent again: not fused
  std::uint64_t force_gated = 0;    // insole samples the vGRF filter refused as outliers
  std::uint64_t event_overflow = 0; // rule events beyond one call's buffer (a bug if non-zero)
};

// The open session as a dashboard shows it, and lifetime health counts of the runner's filters
// and clocks. For metrics: the daemon's worker reads it a few times a second, not per sample.
struct SessionLive {
  bool open = false;
  std::uint64_t steps = 0;
  double distance_m = 0.0;
  double stress_time_integral_mpa_s = 0.0;  // NaN while no step of the session had load values
  double damage_index = 0.0;                // likewise
  std::uint64_t knee_gated = 0;   // knee-angle filter updates refused by the innovation gate
  std::uint64_t shank_gated = 0;  // shank-tilt updates refused by the gate
  std::uint64_t force_gated = 0;  // vGRF updates refused by the gate
  std::uint64_t clock_jumps = 0;  // device clock jumps reported (F4)
  // Samples the reorder buffer released before their window had passed, because it held
  // model.clock.capacity samples: the device rates need a larger one. A sample of that runner
  // older than one so released then arrives late (SessionCounters::late).
  std::uint64_t reorder_early = 0;
  // Steps whose stance outlasted the trace a metric reads (StepLoad/CopPath::windows_cut()):
  // that metric is NaN in their StepMetrics.
  std::uint64_t loading_rate_withheld = 0;
  std::uint64_t ml_excursion_withheld = 0;
};

// The open session's running totals, for the daemon's crash-safe checkpoints. `open` false:
// no session (the other fields are zero).
struct SessionProgress {
  bool open;
  std::int64_t start_t_us;
  std::int64_t last_step_t_us;
  std::uint64_t steps;
  double distance_m;
  double stress_time_integral_mpa_s;  // NaN until a step with load values
  double damage_index;                // NaN likewise
  std::uint32_t risk_events;
};

class RunnerSession {
 public:
  // Allocates every buffer the session will ever use. The first form keeps a copy of
  // `config`; the second shares it (REQUIRES: non-null), which is how the daemon keeps one
  // ~4.5 KB SessionConfig per runner, in the registry generation, instead of two.
  explicit RunnerSession(const SessionConfig& config);
  explicit RunnerSession(std::shared_ptr<const SessionConfig> config);
  ~RunnerSession();
  RunnerSession(const RunnerSession&) = delete;
  RunnerSession& operator=(const RunnerSession&) = delete;

  // REQUIRES: sample.runner == config.runner; the runner's samples in arrival order.
  // Outputs of the samples the reorder window releases go to `out`.
  void on_sample(const Sample& sample, OutputSink& out);

  // The runner has been silent longer than the reorder window (the caller's clock says so):
  // fuse what the window still holds. Deterministic: those samples would have been released
  // by the next arrival anyway, in the same order.
  void on_idle(OutputSink& out);

  // A device of this runner went silent (stale == true) or came back; the caller reports edges.
  // Emits a sensor-fault onset or clear stamped with last_t_us() (0 before any sample).
  void on_device_stale(std::uint32_t device, Side side, SensorKind kind, bool stale,
                       OutputSink& out);

  // Shutdown or removal: fuse what the window holds, then emit the summary of an open session.
  void finish(OutputSink& out);

  // Reload: new parameters and calibration, from the next sample on; the open session and its
  // totals are kept, and so are the estimates (filter states, g_cal, clock fits). Exceptions,
  // because a buffer was sized from the old value: the reorder capacity stays as built, and new
  // trend capacities restart the rolling windows and the baseline. May allocate (those
  // buffers); on_sample() after it does not.
  // The history is replaced by config.history, as every other field.
  void reconfigure(const SessionConfig& config);
  void reconfigure(std::shared_ptr<const SessionConfig> config);  // REQUIRES: non-null

  // The runner's history changed (the store closed a session): R4, R5, R9 and R10 read it from
  // the next step on, the summary's acute:chronic ratio at the session's end. No allocation.
  // Kept apart from the (shared, immutable) config: config().history stays as configured.
  void set_history(const TrainingHistory& history) { history_ = history; }
  // The history the rules read: config().history until set_history() replaces it.
  const TrainingHistory& history() const { return history_; }
  // Running totals of the open session; cheap, no allocation.
  SessionProgress progress() const;

  const SessionConfig& config() const { return *config_; }
  const SessionCounters& counters() const { return counters_; }
  SessionLive live() const;
  // Largest aligned time fused so far; INT64_MIN before any.
  std::int64_t last_t_us() const { return last_t_us_; }
  // Buffered in the reorder window, not fused yet.
  std::size_t buffered() const;
  const char* model_id() const { return model_id_; }

  struct State;  // the per-sample state (filters, rules, buffers); opaque outside session.cpp

 private:
  // release_t_us: receive time of the sample whose arrival let these out; 0 for a timer.
  void fuse(const ReleasedSample& r, OutputSink& out, std::int64_t release_t_us);
  void drain(OutputSink& out, std::int64_t release_t_us);

  std::shared_ptr<const SessionConfig> config_;  // never null
  TrainingHistory history_;
  SessionCounters counters_;
  std::int64_t last_t_us_ = std::numeric_limits<std::int64_t>::min();
  const char* model_id_;
  std::unique_ptr<State> state_;
};

}  // namespace kneeload::fusion
