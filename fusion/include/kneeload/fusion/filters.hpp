// The Kalman filters of MODEL.md §9, each a thin model around the one KalmanFilter<N>
// (kalman.hpp):
//   KneeAngleFilter   knee flexion θ, its rate and the thigh−shank gyro bias difference (§2, §9)
//   ShankTiltFilter   shank inclination φ_s and the shank gyro bias, for the knee moment (§3A)
//   ForceFilter       vertical GRF of one foot in body weights and its rate (§1, §9)
//   ForceCalibration  the slow outer loop that fixes the insoles' total gain g_cal (§1, §9)
// Frames, signs and axes follow docs/model-conventions.md.
//
// Every model tunable lives in a params struct with MODEL.md's default and its unit (the only
// constants in code are numerical guards: kMaxNoiseDtS, and 0.05 g below which no angle can be
// read). Each filter counts gated and non-finite measurements per measurement kind.
//
// Thread ownership: none; one owner thread per filter (one per leg or foot of a runner).
// Contract: pure computation on plain values. No I/O, clock, logging or heap allocation; after
// construction every call is allocation-free (tests/fusion/filters_alloc_test.cpp).
//
// Time steps: callers pass dt_s, the time since the previous call, in seconds. dt_s <= 0 or
// non-finite is refused (counted bad_dt, nothing changes). A dt_s above the filter's max_dt_s
// (default 0.05 s) is a gap (counted dt_clamped): the state is extrapolated over max_dt_s only,
// because the motion models say nothing useful about longer spans; the process noise grows with
// the true dt_s (up to kMaxNoiseDtS), and the angle filters add (gap_rate_sigma·(dt_s −
// max_dt_s))² to the angle's variance for the span they did not extrapolate — MODEL.md's
// Q(θ,θ) = 0 relies on θ̇ being measured every few ms, which a gap breaks. The covariance
// ceiling then holds P, so the filter is honestly uncertain after a gap but cannot diverge.
#pragma once

#include <array>
#include <cstdint>
#include <numbers>

#include <Eigen/Core>

#include "kneeload/fusion/kalman.hpp"
#include "kneeload/fusion/sample.hpp"

namespace kneeload::fusion {

namespace filter_units {
constexpr double rad_from_deg(double deg) { return deg * std::numbers::pi / 180.0; }
}  // namespace filter_units

// Longest dt_s whose process noise is added in one predict; P is at its ceiling long before.
inline constexpr double kMaxNoiseDtS = 3600.0;

// ---------------------------------------------------------------------------------------------
// Geometry (docs/model-conventions.md "IMU mounting and axes")

// One IMU's hinge axis j (unit vector, sensor frame) with an orthonormal basis (x̂, ŷ) of the
// joint plane: ŷ is the sensor y axis projected onto the plane (sensor x if y ∥ j), x̂ = ŷ × j.
// For the default mounting j = (0, 0, 1) this is the sensor's own x and y, so the zero of every
// angle below is "sensor y up" — the straight, vertical leg of the conventions.
class HingeAxis {
 public:
  HingeAxis();  // j = (0, 0, 1)
  // An axis of zero length or with a non-finite entry is replaced by (0, 0, 1); valid() says so.
  explicit HingeAxis(const std::array<double, 3>& axis_sensor);

  bool valid() const { return valid_; }
  const Eigen::Vector3d& axis() const { return j_; }

  // ω·j (rad/s): the segment's rotation rate about the hinge. Thigh: dφ_t/dt; shank: −dφ_s/dt.
  double rate_radps(const Imu6& imu) const;

  // ψ = atan2(−a·x̂, a·ŷ) (rad): the angle about +j from ŷ to the measured specific force,
  // which at rest points up. Thigh: ψ = −φ_t; shank: ψ = +φ_s. NaN when the in-plane part of a
  // is below 0.05 g (free fall, or gravity along the hinge): no angle can be read.
  double gravity_angle_rad(const Imu6& imu) const;

  // a·ŷ (m/s²): the specific force along the segment's long axis, gravity included as the
  // sensor reads it. For the shank IMU this is the tibial axis of peak tibial acceleration
  // (docs/model-conventions.md: sensor y runs up the leg).
  double axial_mps2(const Imu6& imu) const;

 private:
  Eigen::Vector3d j_;
  Eigen::Vector3d x_;
  Eigen::Vector3d y_;
  bool valid_ = true;
};

// The hinge axes of a thigh/shank IMU pair, j₁ and j₂ of MODEL.md §2 (config keys
// thigh_axis, shank_axis). Built once from config; the filters take it by reference.
struct KneeJointAxes {
  HingeAxis thigh;
  HingeAxis shank;

  KneeJointAxes() = default;
  KneeJointAxes(const std::array<double, 3>& thigh_axis, const std::array<double, 3>& shank_axis);
};

// Wraps an angle to [−π, π).
double wrap_angle_rad(double angle_rad);

// MODEL.md §2 (Seel 2014) accelerometer knee angle, joint-centre shift ignored in v1
// (conventions): θ_acc = ψ_shank − ψ_thigh = φ_s + φ_t, wrapped to [−π, π). NaN if either
// segment's angle cannot be read. Valid only with both sensors near gravity-only: see
// accel_norms_agree() and the ±50 ms IC exclusion, which is the caller's.
double accel_knee_angle_rad(const Imu6& thigh, const Imu6& shank, const KneeJointAxes& axes);

// MODEL.md §9: true iff both accelerations are finite and their norms differ by less than
// max_norm_diff_g standard gravities (default 2 g).
bool accel_norms_agree(const Imu6& thigh, const Imu6& shank, double max_norm_diff_g = 2.0);

// Conventions "Shank tilt from the accelerometer": φ_s = atan2(−a·x̂, a·ŷ), i.e.
// atan2(−a_x, a_y) for the default axis. NaN as for HingeAxis::gravity_angle_rad().
double accel_shank_tilt_rad(const Imu6& shank, const HingeAxis& shank_axis);

// MODEL.md §9: true iff a is finite and |‖a‖ − g| < tol_g·g (default 0.15 g).
bool quasi_static(const Imu6& imu, double tol_g = 0.15);

// MODEL.md §1, §9: z = g_cal·ΣpA/(m·g) in body weights. pressure_area_sum_n = Σ pᵢAᵢ (N).
double insole_force_bw(double pressure_area_sum_n, double gain, double body_mass_kg);

// ---------------------------------------------------------------------------------------------
// Counters

struct PredictCounters {
  std::uint64_t predicts = 0;
  std::uint64_t bad_dt = 0;      // dt_s <= 0 or non-finite: refused
  std::uint64_t dt_clamped = 0;  // dt_s > max_dt_s: a gap
  std::uint64_t non_finite = 0;  // a non-finite input to the predict (the shank's gyro)
};

// Per measurement kind. accepted + gated + non_finite + not_positive + skipped = calls.
struct MeasurementCounters {
  std::uint64_t accepted = 0;
  std::uint64_t gated = 0;
  std::uint64_t non_finite = 0;
  std::uint64_t not_positive = 0;
  std::uint64_t skipped = 0;     // not attempted (caller's window, norm or quasi-static rule)
  std::uint64_t reacquired = 0;  // variance re-opened after reacquire_after gated in a row
};

// ---------------------------------------------------------------------------------------------
// System models: F(dt), Q(dt) of each filter, kept apart from the filters (STYLE.md).

// MODEL.md §9 knee, x = [θ, θ̇, b_Δ]: θ integrates θ̇; θ̇ is a random walk driven by white
// angular acceleration of density σ_α; the bias difference b_Δ a slow random walk of density σ_b.
// F = [[1,Δt,0],[0,1,0],[0,0,1]], Q = diag(0, σ_α²Δt, σ_b²Δt) as MODEL.md §9 writes it.
struct KneeMotionModel {
  double angular_accel_sigma = 75.0;  // σ_α, rad/s²/√Hz
  double bias_walk_sigma = 1e-4;      // σ_b, rad/s/√s

  Eigen::Matrix3d transition(double dt_s) const;
  Eigen::Matrix3d noise(double dt_s) const;
};

// MODEL.md §9 shank, x = [φ_s, b_s], gyro-driven: the shank gyro reads ω = −dφ_s/dt + b_s
// (conventions), so φ_s ← φ_s + Δt·(b_s − ω); the gyro's white noise makes φ_s a random walk of
// density σ_g, the bias a random walk of density σ_b.
struct ShankTiltModel {
  double gyro_noise_density = filter_units::rad_from_deg(0.05);  // σ_g, rad/s/√Hz
  double bias_walk_sigma = 1e-4;                                 // σ_b, rad/s/√s

  Eigen::Matrix2d transition(double dt_s) const;
  Eigen::Matrix2d noise(double dt_s) const;
  Eigen::Vector2d input(double shank_rate_radps, double dt_s) const;  // u = [−ω·Δt, 0]
};

// MODEL.md §9 vGRF, x = [F, Ḟ]: constant velocity with white Ḟ-rate noise of density σ_j
// (F̈, BW/s²). Q is the exact discretisation σ_j²·[[Δt³/3, Δt²/2], [Δt²/2, Δt]], whose Ḟ term
// is MODEL.md's q = σ_j²Δt. Its F terms are why: with Q = diag(0, σ_j²Δt), F's variance only
// grows one step after Ḟ's, so the first sample of nearly every stance (0.3–0.7 BW above a
// swing estimate pinned at 0) fails the gate: 31 of 40 stances in ForceFilter.TracksAHalfSine.
struct ForceMotionModel {
  double rate_noise_sigma = 3000.0;  // σ_j, BW/s²/√Hz

  Eigen::Matrix2d transition(double dt_s) const;
  Eigen::Matrix2d noise(double dt_s) const;
};

// ---------------------------------------------------------------------------------------------
// Knee flexion

// Defaults are MODEL.md §9's; [H] marks an engineering default with no published value.
struct KneeAngleParams {
  double angular_accel_sigma = 75.0;  // σ_α, rad/s²/√Hz; MODEL.md §9: 50–100 (tune)
  double bias_walk_sigma = 1e-4;      // σ_b, rad/s/√s; MODEL.md §9
  double gyro_sigma_radps = filter_units::rad_from_deg(0.5);      // √R of z_ω; MODEL.md §9
  double accel_angle_sigma_rad = filter_units::rad_from_deg(3.0);  // √R of z_θ; MODEL.md §9
  double sleeve_angle_sigma_rad = filter_units::rad_from_deg(2.0);  // √R of a sleeve angle [H]
  double accel_norm_diff_max_g = 2.0;  // accel update only if the norms differ less; §9
  double gate_chi2 = kChi2Gate1Dof;    // Mahalanobis gate of each scalar update
  int reacquire_after = 200;  // this many angle updates gated in a row (1 s at 200 Hz) re-open
                              // θ's variance to its ceiling, so a drifted filter is not locked
                              // out by its own gate [H]
  double max_dt_s = 0.05;     // longest step the state is extrapolated over (a gap beyond)
  double gap_rate_sigma_radps = 5.0;  // θ's uncertainty grows at this rate through a gap:
                                      // running knee rates are ±7 rad/s (MODEL.md §2) [H]
  // Initial state: standing (MODEL.md §9: 0–5°), at rest, bias difference unknown.
  double standing_angle_rad = filter_units::rad_from_deg(2.5);
  double initial_angle_sigma_rad = filter_units::rad_from_deg(5.0);
  double initial_rate_sigma_radps = 1.0;
  double initial_bias_sigma_radps = filter_units::rad_from_deg(10.0);  // zero-rate offsets ±10°/s
  // Covariance bounds (standard deviations): ceilings far above any plausible error, floor far
  // below any resolvable one.
  double max_angle_sigma_rad = filter_units::rad_from_deg(90.0);
  double max_rate_sigma_radps = 30.0;  // > the ±2000 °/s gyro range
  double max_bias_sigma_radps = filter_units::rad_from_deg(20.0);
  double min_sigma = 1e-7;  // rad, rad/s
};

struct KneeAngleCounters {
  PredictCounters predict;
  MeasurementCounters gyro;
  MeasurementCounters accel;
  MeasurementCounters sleeve;
};

// Result of one on_imu_pair(): the two measurement updates it attempted.
struct KneeImuResult {
  bool predicted = false;
  UpdateStatus gyro = UpdateStatus::kSkipped;
  UpdateStatus accel = UpdateStatus::kSkipped;
};

// MODEL.md §9 knee KF, one per leg at the IMU rate (200 Hz): x = [θ (rad), θ̇ (rad/s),
// b_Δ (rad/s)], b_Δ = b_thigh − b_shank (only the difference is observable). Gyro-driven: the
// gyro difference is a measurement of θ̇ + b_Δ every sample, and the accelerometer angle (or a
// knee sleeve's angle) anchors θ, which makes b_Δ observable.
class KneeAngleFilter {
 public:
  static constexpr int kAngle = 0;
  static constexpr int kRate = 1;
  static constexpr int kBias = 2;

  explicit KneeAngleFilter(const KneeAngleParams& params = {});

  // New noise, gate, timing and covariance-bound parameters (a reload), from the next call on.
  // θ, θ̇, b_Δ and their covariance are kept (P is clamped into the new bounds): re-initialising
  // would throw away a converged gyro bias. The initial-state parameters apply at reset() only.
  void set_params(const KneeAngleParams& params);

  // Back to the standing pose; counters are kept.
  void reset();

  // Advances the state by dt_s. Returns false if dt_s was refused (see file comment).
  bool predict(double dt_s);

  // z_ω = ω_t·j₁ − ω_s·j₂ (rad/s), H = [0, 1, 1].
  UpdateStatus update_gyro(double rate_difference_radps);
  // z_θ from accel_knee_angle_rad() (rad), H = [1, 0, 0], R = accel_angle_sigma_rad².
  UpdateStatus update_accel_angle(double angle_rad);
  // A knee sleeve's flexion angle (rad), H = [1, 0, 0], R = sleeve_angle_sigma_rad².
  UpdateStatus update_sleeve_angle(double angle_rad);

  // One IMU pair sample: predict(dt_s), the gyro update, then the accelerometer-angle update
  // iff accel_allowed (the caller's IC ±50 ms exclusion, MODEL.md §2) and accel_norms_agree().
  KneeImuResult on_imu_pair(const Imu6& thigh, const Imu6& shank, const KneeJointAxes& axes,
                            double dt_s, bool accel_allowed);

  double angle_rad() const { return kf_.state()(kAngle); }
  double rate_radps() const { return kf_.state()(kRate); }
  double bias_difference_radps() const { return kf_.state()(kBias); }
  double angle_sigma_rad() const;
  const KneeAngleParams& params() const { return params_; }
  const KneeAngleCounters& counters() const { return counters_; }
  const KalmanFilter<3>& kalman() const { return kf_; }

 private:
  UpdateStatus update_angle(double angle_rad, const LinearMeasurement<1, 3>& m,
                            MeasurementCounters& c, int& gated_in_row);
  // predict() with trapezoidal integration of the rate when next_rate_radps is finite.
  bool predict_trapezoid(double dt_s, double next_rate_radps);

  KneeAngleParams params_;
  KneeMotionModel motion_;
  LinearMeasurement<1, 3> gyro_;
  LinearMeasurement<1, 3> accel_;
  LinearMeasurement<1, 3> sleeve_;
  KalmanFilter<3> kf_;
  KneeAngleCounters counters_;
  int accel_gated_in_row_ = 0;
  int sleeve_gated_in_row_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Shank inclination

struct ShankTiltParams {
  double gyro_noise_density = filter_units::rad_from_deg(0.05);  // σ_g, rad/s/√Hz: datasheets
                                  // 0.003–0.014 °/s/√Hz (MODEL.md §0), ×4 for axis error [H]
  double bias_walk_sigma = 1e-4;  // σ_b, rad/s/√s, as the knee's
  double tilt_sigma_rad = filter_units::rad_from_deg(2.0);  // √R of the tilt; MODEL.md §9
  double quasi_static_tol_g = 0.15;  // tilt update only if |‖a‖ − g| < this; MODEL.md §9
  double gate_chi2 = kChi2Gate1Dof;
  int reacquire_after = 200;  // as KneeAngleParams::reacquire_after [H]
  double max_dt_s = 0.05;
  // Through a gap, or a sample whose gyro is non-finite, φ_s is held and its variance grows as
  // if the shank turned at this rate (running shank rates are a few rad/s) [H].
  double gap_rate_sigma_radps = 5.0;
  double initial_tilt_rad = 0.0;  // standing
  double initial_tilt_sigma_rad = filter_units::rad_from_deg(10.0);
  double initial_bias_sigma_radps = filter_units::rad_from_deg(10.0);
  double max_tilt_sigma_rad = filter_units::rad_from_deg(90.0);
  double max_bias_sigma_radps = filter_units::rad_from_deg(20.0);
  double min_sigma = 1e-7;
};

struct ShankTiltCounters {
  PredictCounters predict;
  MeasurementCounters tilt;
};

struct ShankImuResult {
  bool predicted = false;
  UpdateStatus tilt = UpdateStatus::kSkipped;
};

// MODEL.md §9 shank inclination KF, one per leg: x = [φ_s (rad), b_s (rad/s)]. The shank gyro
// about its hinge axis drives the prediction; the accelerometer tilt corrects it whenever the
// shank is quasi-static. Feeds the knee moment arm L_s·sin φ_s (MODEL.md §3A).
class ShankTiltFilter {
 public:
  static constexpr int kTilt = 0;
  static constexpr int kBias = 1;

  explicit ShankTiltFilter(const ShankTiltParams& params = {});
  // As KneeAngleFilter::set_params: φ_s, b_s and P are kept.
  void set_params(const ShankTiltParams& params);
  void reset();

  // Integrates the shank's hinge rate ω·j₂ (rad/s, bias included) over dt_s. A non-finite rate
  // is counted (predict.non_finite) and the tilt held, its variance grown as through a gap.
  bool predict(double shank_rate_radps, double dt_s);
  // z = φ_s from accel_shank_tilt_rad() (rad), H = [1, 0], R = tilt_sigma_rad².
  UpdateStatus update_tilt(double tilt_rad);

  // One shank IMU sample: predict with ω·j₂, then the tilt update iff tilt_allowed (the
  // caller's IC exclusion) and quasi_static().
  ShankImuResult on_imu(const Imu6& shank, const HingeAxis& shank_axis, double dt_s,
                        bool tilt_allowed);

  double tilt_rad() const { return kf_.state()(kTilt); }
  double bias_radps() const { return kf_.state()(kBias); }
  double tilt_sigma_rad() const;
  const ShankTiltParams& params() const { return params_; }
  const ShankTiltCounters& counters() const { return counters_; }
  const KalmanFilter<2>& kalman() const { return kf_; }

 private:
  ShankTiltParams params_;
  ShankTiltModel motion_;
  LinearMeasurement<1, 2> tilt_;
  KalmanFilter<2> kf_;
  ShankTiltCounters counters_;
  int gated_in_row_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Vertical ground reaction force

struct ForceFilterParams {
  double rate_noise_sigma = 3000.0;  // σ_j, BW/s²/√Hz; MODEL.md §9 (Ḟ reaches ~70 BW/s in ~20 ms)
  double force_sigma_bw = 0.03;      // √R of z; MODEL.md §9
  double gate_chi2 = kChi2Gate1Dof;
  // Swing pseudo-measurement F = 0, Ḟ = 0 (MODEL.md §9): tight, and never gated [H].
  double swing_force_sigma_bw = 0.01;
  double swing_rate_sigma_bwps = 1.0;
  int reacquire_after = 5;  // force samples gated in a row before F's variance re-opens [H]
  double max_dt_s = 0.05;
  double initial_force_sigma_bw = 0.1;  // starts at F = 0, Ḟ = 0 (foot in the air)
  double initial_rate_sigma_bwps = 10.0;
  double max_force_sigma_bw = 10.0;
  double max_rate_sigma_bwps = 1000.0;
  double min_sigma = 1e-7;  // BW, BW/s
};

struct ForceCounters {
  PredictCounters predict;
  MeasurementCounters force;
  MeasurementCounters swing;
};

// MODEL.md §9 vGRF KF, one per foot at the insole rate: x = [F (BW), Ḟ (BW/s)]. Measurements
// are insole_force_bw() in stance and the swing pseudo-measurement in swing; which applies is
// the gait detector's decision. Report VALR from the discrete 20–80 % definition, not from Ḟ.
class ForceFilter {
 public:
  static constexpr int kForce = 0;
  static constexpr int kRate = 1;

  explicit ForceFilter(const ForceFilterParams& params = {});
  // As KneeAngleFilter::set_params: F, Ḟ and P are kept.
  void set_params(const ForceFilterParams& params);
  void reset();

  bool predict(double dt_s);
  // z = g_cal·ΣpA/(m·g) (BW), H = [1, 0], R = force_sigma_bw², gated.
  UpdateStatus update(double force_bw);
  // Swing: pseudo-measures F = 0 and Ḟ = 0 (H = I, never gated).
  UpdateStatus update_swing();

  double force_bw() const { return kf_.state()(kForce); }
  double rate_bwps() const { return kf_.state()(kRate); }
  const ForceFilterParams& params() const { return params_; }
  const ForceCounters& counters() const { return counters_; }
  const KalmanFilter<2>& kalman() const { return kf_; }

 private:
  ForceFilterParams params_;
  ForceMotionModel motion_;
  LinearMeasurement<1, 2> force_;
  LinearMeasurement<2, 2> swing_;
  KalmanFilter<2> kf_;
  ForceCounters counters_;
  int gated_in_row_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Insole gain calibration

struct ForceCalibrationParams {
  double initial_gain = 1.0;     // g_cal before any stride: the static calibration's gain
  double time_constant_s = 20.0;  // EWMA time constant (s): an initial error falls to 5 % of
                                  // itself in 1 min of running, to 0.25 % in 2 (MODEL.md §9)
  double min_gain = 0.5;         // per-stride estimates and g_cal are held in [min, max] [H]
  double max_gain = 2.0;
  double min_stride_s = 0.4;     // strides outside are not running strides [H]
  double max_stride_s = 2.0;
  double min_steady_s = 60.0;          // converged no earlier than this much steady running
  double convergence_window_s = 20.0;  // ... and once g_cal moved less than
  double convergence_tolerance = 0.01;  // this fraction over the last window
};

// Why one stride did or did not move g_cal.
enum class StrideStatus : std::uint8_t {
  kUpdated = 0,
  kArmed = 1,         // the first boundary: the impulse before it covered no whole stride
  kNotSteady = 2,     // the caller said not level or not constant speed
  kBadStrideTime = 3, // non-finite or outside [min_stride_s, max_stride_s]
  kBadSamples = 4,    // a non-finite force or dt went into this stride's impulse
  kOutOfRange = 5,    // the stride's gain estimate fell outside [min_gain, max_gain]
};

struct ForceCalibrationCounters {
  std::uint64_t strides = 0;  // end_stride() calls
  std::uint64_t updated = 0;
  std::uint64_t not_steady = 0;
  std::uint64_t bad_stride_time = 0;
  std::uint64_t bad_samples = 0;  // strides refused for bad samples
  std::uint64_t out_of_range = 0;
  std::uint64_t non_finite_samples = 0;  // add_sample() calls refused
};

// MODEL.md §1 dynamic calibration, the §9 outer loop: on a level treadmill at constant speed the
// net vertical momentum change over a stride is zero, so the stride-averaged F_L + F_R is 1 BW.
// Each stride's uncalibrated impulse I = ∫(F_L + F_R)dt over its duration T gives the gain
// estimate T/I; g_cal follows it through an EWMA with weight T/time_constant_s, so the loop
// averages over 1–2 min of running whatever the cadence. This fixes the total gain only, not
// the per-foot gains (MODEL.md §7). Thread ownership: one owner; no heap.
class ForceCalibration {
 public:
  explicit ForceCalibration(const ForceCalibrationParams& params = {});
  void reset();  // back to initial_gain, disarmed, not converged; counters kept
  // New loop parameters (a reload): the learnt g_cal is kept, clamped into [min_gain, max_gain];
  // the stride in progress and the convergence window carry on under the new limits.
  // initial_gain applies at reset() only.
  void set_params(const ForceCalibrationParams& params);

  // One insole sample of either foot: raw_force_bw = ΣpA/(m·g) WITHOUT g_cal (so the loop does
  // not feed on its own output), held over dt_s seconds (the time to that foot's next sample).
  void add_sample(double raw_force_bw, double dt_s);

  // A stride boundary (the caller's initial contact of one chosen foot) ending a stride of
  // stride_time_s seconds; level_constant_speed from the treadmill. Starts the next stride.
  StrideStatus end_stride(double stride_time_s, bool level_constant_speed);

  double gain() const { return gain_; }
  bool converged() const { return converged_; }
  double steady_time_s() const { return steady_s_; }  // running time that updated g_cal
  double last_stride_gain() const { return last_stride_gain_; }  // T/I of the last stride
  const ForceCalibrationCounters& counters() const { return counters_; }
  const ForceCalibrationParams& params() const { return params_; }

 private:
  ForceCalibrationParams params_;
  ForceCalibrationCounters counters_;
  double gain_ = 1.0;
  double impulse_bw_s_ = 0.0;
  bool armed_ = false;
  bool stride_bad_ = false;
  bool converged_ = false;
  double steady_s_ = 0.0;
  double window_s_ = 0.0;
  double window_start_gain_ = 1.0;
  double last_stride_gain_ = 0.0;
};

}  // namespace kneeload::fusion
