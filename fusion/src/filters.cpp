// The MODEL.md §9 filters around KalmanFilter<N>. The maths of predict/update is in kalman.hpp;
// this file holds what is specific to each model: F, Q, H, R, the initial state, the time-step
// policy, angle wrapping, and the rules on when a measurement may be used.
//
// Why the code looks the way it does:
// - Angle measurements are wrapped to the prediction (z' = θ̂ + wrap(z − θ̂)) so an atan2 result
//   near ±π never becomes a 2π innovation.
// - A gate can lock a filter out: once the estimate has drifted, every honest measurement is
//   "an outlier". After reacquire_after gated updates in a row the measured variance is opened
//   to its ceiling, so the next measurement is accepted and pulls the state back; counted.
// - Counting is per measurement kind, because "the accelerometer angle is gated 30 % of the
//   time" is a diagnosis and "3 % of all updates were gated" is not.
#include "kneeload/fusion/filters.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include <Eigen/Geometry>

namespace kneeload::fusion {
namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

constexpr double kGravity = 9.80665;        // m/s², standard gravity (conventions)
constexpr double kMinInPlaneAccelG = 0.05;  // below this no segment angle can be read
constexpr double kPi = std::numbers::pi;

double sq(double v) { return v * v; }

Eigen::Vector3d vec(const float (&v)[3]) { return {v[0], v[1], v[2]}; }

// The time-step policy of the file comment in filters.hpp.
struct StepDt {
  double state_s = 0.0;  // the state is extrapolated over this
  double noise_s = 0.0;  // process noise is added for this
  double gap_s() const { return noise_s - state_s; }  // time not extrapolated over (a gap)
};

bool accept_dt(double dt_s, double max_dt_s, PredictCounters& c, StepDt& out) {
  if (!std::isfinite(dt_s) || !(dt_s > 0.0)) {
    ++c.bad_dt;
    return false;
  }
  if (dt_s > max_dt_s) ++c.dt_clamped;
  out.state_s = std::min(dt_s, max_dt_s);
  out.noise_s = std::min(dt_s, kMaxNoiseDtS);
  return true;
}

void tally(UpdateStatus s, MeasurementCounters& c) {
  switch (s) {
    case UpdateStatus::kAccepted:
      ++c.accepted;
      break;
    case UpdateStatus::kNonFinite:
      ++c.non_finite;
      break;
    case UpdateStatus::kGated:
      ++c.gated;
      break;
    case UpdateStatus::kNotPositiveDefinite:
      ++c.not_positive;
      break;
    case UpdateStatus::kSkipped:
      ++c.skipped;
      break;
  }
}

// Counts gated updates in a row and re-opens state `index`'s variance after reacquire_after.
template <int N>
void watch_lockout(UpdateStatus s, int reacquire_after, int index, KalmanFilter<N>& kf,
                   int& gated_in_row, MeasurementCounters& c) {
  if (s == UpdateStatus::kAccepted) {
    gated_in_row = 0;
  } else if (s == UpdateStatus::kGated && reacquire_after > 0 &&
             ++gated_in_row >= reacquire_after) {
    kf.inflate_variance(index, kf.variance_ceiling()(index));
    ++c.reacquired;
    gated_in_row = 0;
  }
}

template <int N>
UpdateStatus update_scalar(KalmanFilter<N>& kf, double z, const LinearMeasurement<1, N>& m) {
  return kf.update(Eigen::Matrix<double, 1, 1>(z), m);
}

// A scalar angle measurement of state `index`, wrapped to the prediction.
template <int N>
UpdateStatus update_wrapped_angle(KalmanFilter<N>& kf, int index, double angle_rad,
                                  const LinearMeasurement<1, N>& m) {
  const double predicted = kf.state()(index);
  return update_scalar(kf, predicted + wrap_angle_rad(angle_rad - predicted), m);
}

LinearMeasurement<1, 3> knee_measurement(double h_angle, double h_rate, double h_bias,
                                         double sigma, double gate) {
  LinearMeasurement<1, 3> m;
  m.h << h_angle, h_rate, h_bias;
  m.r(0, 0) = sq(sigma);
  m.gate_chi2 = gate;
  return m;
}

KalmanFilter<3> knee_kalman(const KneeAngleParams& p) {
  const Eigen::Vector3d floor = Eigen::Vector3d::Constant(sq(p.min_sigma));
  const Eigen::Vector3d ceiling(sq(p.max_angle_sigma_rad), sq(p.max_rate_sigma_radps),
                                sq(p.max_bias_sigma_radps));
  return KalmanFilter<3>(Eigen::Vector3d::Zero(), Eigen::Matrix3d::Identity(), floor, ceiling);
}

KalmanFilter<2> shank_kalman(const ShankTiltParams& p) {
  const Eigen::Vector2d floor = Eigen::Vector2d::Constant(sq(p.min_sigma));
  const Eigen::Vector2d ceiling(sq(p.max_tilt_sigma_rad), sq(p.max_bias_sigma_radps));
  return KalmanFilter<2>(Eigen::Vector2d::Zero(), Eigen::Matrix2d::Identity(), floor, ceiling);
}

KalmanFilter<2> force_kalman(const ForceFilterParams& p) {
  const Eigen::Vector2d floor = Eigen::Vector2d::Constant(sq(p.min_sigma));
  const Eigen::Vector2d ceiling(sq(p.max_force_sigma_bw), sq(p.max_rate_sigma_bwps));
  return KalmanFilter<2>(Eigen::Vector2d::Zero(), Eigen::Matrix2d::Identity(), floor, ceiling);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Geometry

HingeAxis::HingeAxis() : HingeAxis(std::array<double, 3>{0.0, 0.0, 1.0}) {}

HingeAxis::HingeAxis(const std::array<double, 3>& axis_sensor) {
  Eigen::Vector3d j(axis_sensor[0], axis_sensor[1], axis_sensor[2]);
  const double n = j.norm();
  if (!std::isfinite(n) || n < 1e-9) {
    j = Eigen::Vector3d::UnitZ();
    valid_ = false;
  } else {
    j /= n;
  }
  // ŷ: sensor y projected onto the joint plane, so the angles' zero is the conventions' "leg
  // straight and vertical, sensor y up". Sensor x stands in when y is (nearly) the hinge.
  Eigen::Vector3d ref = Eigen::Vector3d::UnitY() - j.y() * j;
  if (ref.norm() < 0.1) ref = Eigen::Vector3d::UnitX() - j.x() * j;
  j_ = j;
  y_ = ref.normalized();
  x_ = y_.cross(j_);
}

double HingeAxis::rate_radps(const Imu6& imu) const { return vec(imu.gyro_radps).dot(j_); }

double HingeAxis::axial_mps2(const Imu6& imu) const { return vec(imu.accel_mps2).dot(y_); }

double HingeAxis::gravity_angle_rad(const Imu6& imu) const {
  const Eigen::Vector3d a = vec(imu.accel_mps2);
  const double ax = a.dot(x_);
  const double ay = a.dot(y_);
  if (!(std::hypot(ax, ay) >= kMinInPlaneAccelG * kGravity)) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  return std::atan2(-ax, ay);
}

KneeJointAxes::KneeJointAxes(const std::array<double, 3>& thigh_axis,
                             const std::array<double, 3>& shank_axis)
    : thigh(thigh_axis), shank(shank_axis) {}

double wrap_angle_rad(double angle_rad) {
  return angle_rad - 2.0 * kPi * std::floor((angle_rad + kPi) / (2.0 * kPi));
}

double accel_knee_angle_rad(const Imu6& thigh, const Imu6& shank, const KneeJointAxes& axes) {
  // Thigh ψ = −φ_t, shank ψ = +φ_s (conventions), so θ = φ_t + φ_s = ψ_s − ψ_t.
  return wrap_angle_rad(axes.shank.gravity_angle_rad(shank) - axes.thigh.gravity_angle_rad(thigh));
}

bool accel_norms_agree(const Imu6& thigh, const Imu6& shank, double max_norm_diff_g) {
  const double nt = vec(thigh.accel_mps2).norm();
  const double ns = vec(shank.accel_mps2).norm();
  return std::isfinite(nt) && std::isfinite(ns) && std::abs(nt - ns) < max_norm_diff_g * kGravity;
}

double accel_shank_tilt_rad(const Imu6& shank, const HingeAxis& shank_axis) {
  return shank_axis.gravity_angle_rad(shank);
}

bool quasi_static(const Imu6& imu, double tol_g) {
  const double n = vec(imu.accel_mps2).norm();
  return std::isfinite(n) && std::abs(n - kGravity) < tol_g * kGravity;
}

double insole_force_bw(double pressure_area_sum_n, double gain, double body_mass_kg) {
  if (!(body_mass_kg > 0.0)) return std::numeric_limits<double>::quiet_NaN();
  return gain * pressure_area_sum_n / (body_mass_kg * kGravity);
}

// ---------------------------------------------------------------------------------------------
// System models

Eigen::Matrix3d KneeMotionModel::transition(double dt_s) const {
  Eigen::Matrix3d f = Eigen::Matrix3d::Identity();
  f(0, 1) = dt_s;
  return f;
}

Eigen::Matrix3d KneeMotionModel::noise(double dt_s) const {
  // MODEL.md §9: Q = diag(0, σ_α²Δt, σ_b²Δt). θ gets no direct noise; it inherits θ̇'s.
  return Eigen::Vector3d(0.0, sq(angular_accel_sigma) * dt_s, sq(bias_walk_sigma) * dt_s)
      .asDiagonal();
}

Eigen::Matrix2d ShankTiltModel::transition(double dt_s) const {
  Eigen::Matrix2d f = Eigen::Matrix2d::Identity();
  f(0, 1) = dt_s;  // dφ_s/dt = b_s − ω
  return f;
}

Eigen::Matrix2d ShankTiltModel::noise(double dt_s) const {
  return Eigen::Vector2d(sq(gyro_noise_density) * dt_s, sq(bias_walk_sigma) * dt_s).asDiagonal();
}

Eigen::Vector2d ShankTiltModel::input(double shank_rate_radps, double dt_s) const {
  return {-shank_rate_radps * dt_s, 0.0};
}

Eigen::Matrix2d ForceMotionModel::transition(double dt_s) const {
  Eigen::Matrix2d f = Eigen::Matrix2d::Identity();
  f(0, 1) = dt_s;
  return f;
}

Eigen::Matrix2d ForceMotionModel::noise(double dt_s) const {
  const double q = sq(rate_noise_sigma);
  Eigen::Matrix2d m;
  m << dt_s * dt_s * dt_s / 3.0, dt_s * dt_s / 2.0, dt_s * dt_s / 2.0, dt_s;
  return q * m;
}

// ---------------------------------------------------------------------------------------------
// KneeAngleFilter

KneeAngleFilter::KneeAngleFilter(const KneeAngleParams& params)
    : params_(params),
      motion_{params.angular_accel_sigma, params.bias_walk_sigma},
      gyro_(knee_measurement(0.0, 1.0, 1.0, params.gyro_sigma_radps, params.gate_chi2)),
      accel_(knee_measurement(1.0, 0.0, 0.0, params.accel_angle_sigma_rad, params.gate_chi2)),
      sleeve_(knee_measurement(1.0, 0.0, 0.0, params.sleeve_angle_sigma_rad, params.gate_chi2)),
      kf_(knee_kalman(params)) {
  reset();
}

void KneeAngleFilter::set_params(const KneeAngleParams& params) {
  params_ = params;
  motion_ = KneeMotionModel{params.angular_accel_sigma, params.bias_walk_sigma};
  gyro_ = knee_measurement(0.0, 1.0, 1.0, params.gyro_sigma_radps, params.gate_chi2);
  accel_ = knee_measurement(1.0, 0.0, 0.0, params.accel_angle_sigma_rad, params.gate_chi2);
  sleeve_ = knee_measurement(1.0, 0.0, 0.0, params.sleeve_angle_sigma_rad, params.gate_chi2);
  const KalmanFilter<3> bounds = knee_kalman(params);
  kf_.set_variance_bounds(bounds.variance_floor(), bounds.variance_ceiling());
}

void KneeAngleFilter::reset() {
  // MODEL.md §9: initialise from a standing pose (0–5°), at rest, bias difference unknown.
  const Eigen::Vector3d x0(params_.standing_angle_rad, 0.0, 0.0);
  const Eigen::Vector3d sigma0(params_.initial_angle_sigma_rad, params_.initial_rate_sigma_radps,
                               params_.initial_bias_sigma_radps);
  kf_.reset(x0, sigma0.cwiseAbs2().asDiagonal());
  accel_gated_in_row_ = 0;
  sleeve_gated_in_row_ = 0;
}

bool KneeAngleFilter::predict(double dt_s) { return predict_trapezoid(dt_s, kNaN); }

// F integrates the previous rate over the whole interval (a left rectangle), so during fast
// flexion the angle trails by ≈ θ̇'·Δt²/2 — measured −2.95° at IC with 100 Hz IMUs in
// tests/model/accuracy_test. When the next rate is known (the incoming gyro minus the bias
// estimate), the control input u = [½Δt(θ̇_next − θ̇), 0, 0] makes it the trapezoid rule.
bool KneeAngleFilter::predict_trapezoid(double dt_s, double next_rate_radps) {
  StepDt dt;
  if (!accept_dt(dt_s, params_.max_dt_s, counters_.predict, dt)) return false;
  Eigen::Matrix3d q = motion_.noise(dt.noise_s);
  q(kAngle, kAngle) += sq(params_.gap_rate_sigma_radps * dt.gap_s());
  Eigen::Vector3d u = Eigen::Vector3d::Zero();
  if (std::isfinite(next_rate_radps) && dt.gap_s() == 0.0) {
    u(kAngle) = 0.5 * dt.state_s * (next_rate_radps - kf_.state()(kRate));
  }
  if (kf_.predict(motion_.transition(dt.state_s), q, u) != UpdateStatus::kAccepted) {
    ++counters_.predict.non_finite;
    return false;
  }
  ++counters_.predict.predicts;
  return true;
}

UpdateStatus KneeAngleFilter::update_gyro(double rate_difference_radps) {
  const UpdateStatus s = update_scalar(kf_, rate_difference_radps, gyro_);
  tally(s, counters_.gyro);
  return s;
}

UpdateStatus KneeAngleFilter::update_angle(double angle_rad, const LinearMeasurement<1, 3>& m,
                                           MeasurementCounters& c, int& gated_in_row) {
  const UpdateStatus s = update_wrapped_angle(kf_, kAngle, angle_rad, m);
  tally(s, c);
  watch_lockout(s, params_.reacquire_after, kAngle, kf_, gated_in_row, c);
  return s;
}

UpdateStatus KneeAngleFilter::update_accel_angle(double angle_rad) {
  return update_angle(angle_rad, accel_, counters_.accel, accel_gated_in_row_);
}

UpdateStatus KneeAngleFilter::update_sleeve_angle(double angle_rad) {
  return update_angle(angle_rad, sleeve_, counters_.sleeve, sleeve_gated_in_row_);
}

KneeImuResult KneeAngleFilter::on_imu_pair(const Imu6& thigh, const Imu6& shank,
                                           const KneeJointAxes& axes, double dt_s,
                                           bool accel_allowed) {
  KneeImuResult r;
  // MODEL.md §2 (Seel 2014): z_ω = ω_t·j₁ − ω_s·j₂ = θ̇ + b_Δ.
  const double z_rate = axes.thigh.rate_radps(thigh) - axes.shank.rate_radps(shank);
  r.predicted = predict_trapezoid(dt_s, z_rate - kf_.state()(kBias));
  r.gyro = update_gyro(z_rate);
  if (!accel_allowed) {
    r.accel = UpdateStatus::kSkipped;
    tally(r.accel, counters_.accel);
    return r;
  }
  const double angle = accel_knee_angle_rad(thigh, shank, axes);
  // MODEL.md §9: no accelerometer angle when the norms differ by > 2 g (one segment is being
  // hit or swung hard). A non-finite angle goes on to be counted as non-finite.
  if (std::isfinite(angle) && !accel_norms_agree(thigh, shank, params_.accel_norm_diff_max_g)) {
    r.accel = UpdateStatus::kSkipped;
    tally(r.accel, counters_.accel);
    return r;
  }
  r.accel = update_accel_angle(angle);
  return r;
}

double KneeAngleFilter::angle_sigma_rad() const {
  return std::sqrt(kf_.covariance()(kAngle, kAngle));
}

// ---------------------------------------------------------------------------------------------
// ShankTiltFilter

ShankTiltFilter::ShankTiltFilter(const ShankTiltParams& params)
    : params_(params),
      motion_{params.gyro_noise_density, params.bias_walk_sigma},
      kf_(shank_kalman(params)) {
  tilt_.h << 1.0, 0.0;
  tilt_.r(0, 0) = sq(params.tilt_sigma_rad);
  tilt_.gate_chi2 = params.gate_chi2;
  reset();
}

void ShankTiltFilter::set_params(const ShankTiltParams& params) {
  params_ = params;
  motion_ = ShankTiltModel{params.gyro_noise_density, params.bias_walk_sigma};
  tilt_.r(0, 0) = sq(params.tilt_sigma_rad);
  tilt_.gate_chi2 = params.gate_chi2;
  const KalmanFilter<2> bounds = shank_kalman(params);
  kf_.set_variance_bounds(bounds.variance_floor(), bounds.variance_ceiling());
}

void ShankTiltFilter::reset() {
  const Eigen::Vector2d sigma0(params_.initial_tilt_sigma_rad, params_.initial_bias_sigma_radps);
  kf_.reset(Eigen::Vector2d(params_.initial_tilt_rad, 0.0), sigma0.cwiseAbs2().asDiagonal());
  gated_in_row_ = 0;
}

bool ShankTiltFilter::predict(double shank_rate_radps, double dt_s) {
  StepDt dt;
  if (!accept_dt(dt_s, params_.max_dt_s, counters_.predict, dt)) return false;
  Eigen::Matrix2d q = motion_.noise(dt.noise_s);
  UpdateStatus s;
  if (std::isfinite(shank_rate_radps)) {
    q(kTilt, kTilt) += sq(params_.gap_rate_sigma_radps * dt.gap_s());
    s = kf_.predict(motion_.transition(dt.state_s), q,
                    motion_.input(shank_rate_radps, dt.state_s));
  } else {
    // No rate: hold φ_s, and let its variance grow as if the shank turned at a typical rate.
    ++counters_.predict.non_finite;
    q(kTilt, kTilt) += sq(params_.gap_rate_sigma_radps * dt.noise_s);
    s = kf_.predict(Eigen::Matrix2d::Identity(), q);
  }
  if (s != UpdateStatus::kAccepted) {
    ++counters_.predict.non_finite;
    return false;
  }
  ++counters_.predict.predicts;
  return true;
}

UpdateStatus ShankTiltFilter::update_tilt(double tilt_rad) {
  const UpdateStatus s = update_wrapped_angle(kf_, kTilt, tilt_rad, tilt_);
  tally(s, counters_.tilt);
  watch_lockout(s, params_.reacquire_after, kTilt, kf_, gated_in_row_, counters_.tilt);
  return s;
}

ShankImuResult ShankTiltFilter::on_imu(const Imu6& shank, const HingeAxis& shank_axis,
                                       double dt_s, bool tilt_allowed) {
  ShankImuResult r;
  r.predicted = predict(shank_axis.rate_radps(shank), dt_s);
  const double tilt = accel_shank_tilt_rad(shank, shank_axis);
  // MODEL.md §9: the accelerometer reads tilt only while it feels gravity alone,
  // |‖a‖ − g| < 0.15 g. A non-finite reading goes on to be counted as non-finite.
  if (!tilt_allowed || (std::isfinite(tilt) && !quasi_static(shank, params_.quasi_static_tol_g))) {
    r.tilt = UpdateStatus::kSkipped;
    tally(r.tilt, counters_.tilt);
    return r;
  }
  r.tilt = update_tilt(tilt);
  return r;
}

double ShankTiltFilter::tilt_sigma_rad() const { return std::sqrt(kf_.covariance()(kTilt, kTilt)); }

// ---------------------------------------------------------------------------------------------
// ForceFilter

ForceFilter::ForceFilter(const ForceFilterParams& params)
    : params_(params), motion_{params.rate_noise_sigma}, kf_(force_kalman(params)) {
  force_.h << 1.0, 0.0;
  force_.r(0, 0) = sq(params.force_sigma_bw);
  force_.gate_chi2 = params.gate_chi2;
  swing_.h.setIdentity();
  swing_.r = Eigen::Vector2d(sq(params.swing_force_sigma_bw), sq(params.swing_rate_sigma_bwps))
                 .asDiagonal();
  swing_.gate_chi2 = kNoGate;
  reset();
}

void ForceFilter::set_params(const ForceFilterParams& params) {
  params_ = params;
  motion_ = ForceMotionModel{params.rate_noise_sigma};
  force_.r(0, 0) = sq(params.force_sigma_bw);
  force_.gate_chi2 = params.gate_chi2;
  swing_.r = Eigen::Vector2d(sq(params.swing_force_sigma_bw), sq(params.swing_rate_sigma_bwps))
                 .asDiagonal();
  const KalmanFilter<2> bounds = force_kalman(params);
  kf_.set_variance_bounds(bounds.variance_floor(), bounds.variance_ceiling());
}

void ForceFilter::reset() {
  const Eigen::Vector2d sigma0(params_.initial_force_sigma_bw, params_.initial_rate_sigma_bwps);
  kf_.reset(Eigen::Vector2d::Zero(), sigma0.cwiseAbs2().asDiagonal());
  gated_in_row_ = 0;
}

bool ForceFilter::predict(double dt_s) {
  StepDt dt;
  if (!accept_dt(dt_s, params_.max_dt_s, counters_.predict, dt)) return false;
  if (kf_.predict(motion_.transition(dt.state_s), motion_.noise(dt.noise_s)) !=
      UpdateStatus::kAccepted) {
    ++counters_.predict.non_finite;
    return false;
  }
  ++counters_.predict.predicts;
  return true;
}

UpdateStatus ForceFilter::update(double force_bw) {
  const UpdateStatus s = update_scalar(kf_, force_bw, force_);
  tally(s, counters_.force);
  watch_lockout(s, params_.reacquire_after, kForce, kf_, gated_in_row_, counters_.force);
  return s;
}

UpdateStatus ForceFilter::update_swing() {
  const UpdateStatus s = kf_.update(Eigen::Vector2d::Zero().eval(), swing_);
  tally(s, counters_.swing);
  if (s == UpdateStatus::kAccepted) gated_in_row_ = 0;
  return s;
}

// ---------------------------------------------------------------------------------------------
// ForceCalibration

ForceCalibration::ForceCalibration(const ForceCalibrationParams& params) : params_(params) {
  reset();
}

void ForceCalibration::reset() {
  gain_ = std::clamp(params_.initial_gain, params_.min_gain, params_.max_gain);
  impulse_bw_s_ = 0.0;
  armed_ = false;
  stride_bad_ = false;
  converged_ = false;
  steady_s_ = 0.0;
  window_s_ = 0.0;
  window_start_gain_ = gain_;
  last_stride_gain_ = 0.0;
}

void ForceCalibration::set_params(const ForceCalibrationParams& params) {
  params_ = params;
  gain_ = std::clamp(gain_, params_.min_gain, params_.max_gain);
}

void ForceCalibration::add_sample(double raw_force_bw, double dt_s) {
  if (!std::isfinite(raw_force_bw) || !std::isfinite(dt_s) || dt_s < 0.0) {
    ++counters_.non_finite_samples;
    stride_bad_ = true;
    return;
  }
  impulse_bw_s_ += raw_force_bw * dt_s;
}

StrideStatus ForceCalibration::end_stride(double stride_time_s, bool level_constant_speed) {
  ++counters_.strides;
  const double impulse = impulse_bw_s_;
  const bool bad = stride_bad_;
  impulse_bw_s_ = 0.0;
  stride_bad_ = false;

  if (!armed_) {
    armed_ = true;
    return StrideStatus::kArmed;
  }
  // MODEL.md §1: the stride-mean = 1 BW constraint holds only on the level at constant speed.
  if (!level_constant_speed) {
    ++counters_.not_steady;
    return StrideStatus::kNotSteady;
  }
  if (!std::isfinite(stride_time_s) || stride_time_s < params_.min_stride_s ||
      stride_time_s > params_.max_stride_s) {
    ++counters_.bad_stride_time;
    return StrideStatus::kBadStrideTime;
  }
  if (bad) {
    ++counters_.bad_samples;
    return StrideStatus::kBadSamples;
  }
  // g·I/T = 1 BW  ⇒  g = T/I. A zero or negative impulse gives no finite estimate in range.
  const double stride_gain = stride_time_s / impulse;
  if (!(stride_gain >= params_.min_gain && stride_gain <= params_.max_gain)) {
    ++counters_.out_of_range;
    return StrideStatus::kOutOfRange;
  }
  last_stride_gain_ = stride_gain;

  // EWMA weighted by time, not by stride, so the averaging span is time_constant_s at any
  // cadence.
  const double w = std::min(1.0, stride_time_s / params_.time_constant_s);
  gain_ = std::clamp(gain_ + w * (stride_gain - gain_), params_.min_gain, params_.max_gain);
  ++counters_.updated;

  // Convergence: enough steady running, and g_cal moved less than the tolerance over the last
  // whole window. Re-judged at the end of every window, so a later shift clears it.
  steady_s_ += stride_time_s;
  window_s_ += stride_time_s;
  if (window_s_ >= params_.convergence_window_s) {
    const double change = std::abs(gain_ - window_start_gain_) / window_start_gain_;
    converged_ = steady_s_ >= params_.min_steady_s && change < params_.convergence_tolerance;
    window_start_gain_ = gain_;
    window_s_ = 0.0;
  }
  return StrideStatus::kUpdated;
}

}  // namespace kneeload::fusion
