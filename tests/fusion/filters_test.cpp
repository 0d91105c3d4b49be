// The MODEL.md §9 filters (filters.hpp) on synthetic signals rendered per
// docs/model-conventions.md: the truth is known, so the tests measure estimation error.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numbers>
#include <random>

#include "kneeload/fusion/filters.hpp"

namespace kneeload::fusion {
namespace {

constexpr double kG = 9.80665;
constexpr double kPi = std::numbers::pi;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

constexpr double deg(double d) { return d * kPi / 180.0; }
double to_deg(double r) { return r * 180.0 / kPi; }

// ---------------------------------------------------------------------------------------------
// A synthetic leg (conventions): thigh angle φ_t and knee flexion θ are smooth periodic signals
// at the stride frequency of a 170 spm runner (1.42 Hz) with a second harmonic at the step
// frequency (2.83 Hz), after 1 s of standing and a 2 s smooth ramp into running; φ_s = θ − φ_t.
// θ spans 7°–73°, θ̇ peaks near 6 rad/s.
struct LegPose {
  double phi_t, phi_s, dphi_t, dphi_s;
  double theta() const { return phi_t + phi_s; }
};

class SyntheticLeg {
 public:
  static constexpr double kStrideHz = 170.0 / 120.0;

  LegPose pose(double t) const {
    const double h = 1e-6;
    LegPose p;
    angles(t, p.phi_t, p.phi_s);
    double tp, sp, tm, sm;
    angles(t + h, tp, sp);
    angles(t - h, tm, sm);
    p.dphi_t = (tp - tm) / (2.0 * h);
    p.dphi_s = (sp - sm) / (2.0 * h);
    return p;
  }

 private:
  static void angles(double t, double& phi_t, double& phi_s) {
    const double w = 2.0 * kPi * kStrideHz;
    const double u = std::clamp((t - 1.0) / 2.0, 0.0, 1.0);
    const double ramp = u * u * (3.0 - 2.0 * u);  // smoothstep: standing → running
    const double thigh_run = 0.20 + 0.35 * std::sin(w * t);
    const double knee_run = 0.70 + 0.45 * std::sin(w * t - 1.9) + 0.12 * std::sin(2.0 * w * t + 0.4);
    phi_t = ramp * thigh_run + (1.0 - ramp) * 0.02;
    const double theta = ramp * knee_run + (1.0 - ramp) * 0.05;  // standing: 2.9°
    phi_s = theta - phi_t;
  }
};

// IMU noise at MODEL.md §0's upper datasheet densities, white over the Nyquist band of fs.
struct ImuNoise {
  double gyro_density_radps = deg(0.014);  // per √Hz
  double accel_density_mps2 = 180e-6 * kG;  // per √Hz
};

// Renders gravity-only accelerometers and biased, noisy gyros (conventions "IMU mounting").
class ImuRenderer {
 public:
  ImuRenderer(double fs_hz, double thigh_bias_radps, double shank_bias_radps, std::uint64_t seed,
              ImuNoise noise = {})
      : gyro_sigma_(noise.gyro_density_radps * std::sqrt(fs_hz / 2.0)),
        accel_sigma_(noise.accel_density_mps2 * std::sqrt(fs_hz / 2.0)),
        thigh_bias_(thigh_bias_radps),
        shank_bias_(shank_bias_radps),
        rng_(seed) {}

  Imu6 thigh(const LegPose& p) {
    // Thigh frame = world rotated by +φ_t: a = Rᵀ(0, g, 0), ω_z = dφ_t/dt.
    return imu(kG * std::sin(p.phi_t), kG * std::cos(p.phi_t), p.dphi_t + thigh_bias_);
  }
  Imu6 shank(const LegPose& p) {
    // Shank frame = world rotated by −φ_s: a = (−g sin φ_s, g cos φ_s, 0), ω_z = −dφ_s/dt.
    return imu(-kG * std::sin(p.phi_s), kG * std::cos(p.phi_s), -p.dphi_s + shank_bias_);
  }

 private:
  Imu6 imu(double ax, double ay, double wz) {
    Imu6 m{};
    m.accel_mps2[0] = static_cast<float>(ax + accel_sigma_ * n_(rng_));
    m.accel_mps2[1] = static_cast<float>(ay + accel_sigma_ * n_(rng_));
    m.accel_mps2[2] = static_cast<float>(accel_sigma_ * n_(rng_));
    m.gyro_radps[0] = static_cast<float>(gyro_sigma_ * n_(rng_));
    m.gyro_radps[1] = static_cast<float>(gyro_sigma_ * n_(rng_));
    m.gyro_radps[2] = static_cast<float>(wz + gyro_sigma_ * n_(rng_));
    return m;
  }

  double gyro_sigma_, accel_sigma_, thigh_bias_, shank_bias_;
  std::mt19937_64 rng_;
  std::normal_distribution<double> n_{0.0, 1.0};
};

struct KneeRun {
  double rmse_deg = 0.0;
  double max_abs_err_deg = 0.0;
  double final_err_deg = 0.0;
  double bias_deg_s = 0.0;
  KneeAngleCounters counters;
};

// 200 Hz knee filter over `seconds`, error statistics over t ≥ 10 s (after convergence).
// Injected bias difference b_t − b_s = 3 − (−2) = 5 °/s.
constexpr double kThighBias = deg(3.0);
constexpr double kShankBias = deg(-2.0);

KneeRun run_knee(bool accel_updates, double seconds = 40.0) {
  const double fs = 200.0, dt = 1.0 / fs;
  SyntheticLeg leg;
  ImuRenderer imu(fs, kThighBias, kShankBias, 42);
  KneeAngleFilter kf;
  const KneeJointAxes axes;
  double se = 0.0;
  int n = 0;
  KneeRun r;
  const int steps = static_cast<int>(seconds * fs);
  for (int k = 1; k <= steps; ++k) {
    const double t = k * dt;
    const LegPose p = leg.pose(t);
    const Imu6 th = imu.thigh(p), sh = imu.shank(p);
    kf.on_imu_pair(th, sh, axes, dt, accel_updates);
    const double e = kf.angle_rad() - p.theta();
    if (t >= 10.0) {
      se += e * e;
      ++n;
      r.max_abs_err_deg = std::max(r.max_abs_err_deg, std::abs(to_deg(e)));
    }
    r.final_err_deg = to_deg(e);
  }
  r.rmse_deg = to_deg(std::sqrt(se / n));
  r.bias_deg_s = to_deg(kf.bias_difference_radps());
  r.counters = kf.counters();
  return r;
}

// ---------------------------------------------------------------------------------------------
// Geometry helpers

TEST(KneeGeometry, AccelerometerAngleIsThighPlusShankAngle) {
  SyntheticLeg leg;
  ImuRenderer imu(200.0, 0.0, 0.0, 1, ImuNoise{0.0, 0.0});
  const KneeJointAxes axes;
  for (double t : {0.0, 3.1, 3.37, 4.0, 5.55}) {
    const LegPose p = leg.pose(t);
    const double got = accel_knee_angle_rad(imu.thigh(p), imu.shank(p), axes);
    EXPECT_NEAR(got, p.theta(), 1e-6) << "t = " << t << ": expected θ = " << p.theta();
    EXPECT_NEAR(accel_shank_tilt_rad(imu.shank(p), axes.shank), p.phi_s, 1e-6) << "t = " << t;
    EXPECT_NEAR(axes.thigh.rate_radps(imu.thigh(p)) - axes.shank.rate_radps(imu.shank(p)),
                p.dphi_t + p.dphi_s, 1e-5)
        << "ω_t·j₁ − ω_s·j₂ must be dθ/dt (conventions)";
  }
}

// A sensor strapped upside down along the hinge (rotated 180° about its y axis) reads
// (−x, y, −z); with its configured axis j = (0, 0, −1) every angle and rate is unchanged.
TEST(KneeGeometry, FlippedMountingWithItsAxisGivesTheSameAngles) {
  const HingeAxis normal;
  const HingeAxis flipped(std::array<double, 3>{0.0, 0.0, -1.0});
  Imu6 m{};
  m.accel_mps2[0] = 3.0f;
  m.accel_mps2[1] = 8.0f;
  m.accel_mps2[2] = 0.5f;
  m.gyro_radps[2] = 2.0f;
  Imu6 f = m;
  f.accel_mps2[0] = -m.accel_mps2[0];
  f.accel_mps2[2] = -m.accel_mps2[2];
  f.gyro_radps[0] = -m.gyro_radps[0];
  f.gyro_radps[2] = -m.gyro_radps[2];
  EXPECT_NEAR(flipped.gravity_angle_rad(f), normal.gravity_angle_rad(m), 1e-12);
  EXPECT_NEAR(flipped.rate_radps(f), normal.rate_radps(m), 1e-12);
  EXPECT_TRUE(flipped.valid());
  EXPECT_FALSE(HingeAxis(std::array<double, 3>{0.0, 0.0, 0.0}).valid());
}

TEST(KneeGeometry, AccelerometerRulesFollowModelSection9) {
  Imu6 a{}, b{};
  a.accel_mps2[1] = static_cast<float>(kG);
  b.accel_mps2[1] = static_cast<float>(2.9 * kG);
  EXPECT_TRUE(accel_norms_agree(a, b)) << "norms 1 g and 2.9 g differ by 1.9 g < 2 g";
  b.accel_mps2[1] = static_cast<float>(3.1 * kG);
  EXPECT_FALSE(accel_norms_agree(a, b)) << "norms 1 g and 3.1 g differ by 2.1 g";
  EXPECT_TRUE(quasi_static(a));
  a.accel_mps2[1] = static_cast<float>(1.2 * kG);
  EXPECT_FALSE(quasi_static(a)) << "0.2 g off 1 g is not quasi-static (tolerance 0.15 g)";
  a.accel_mps2[1] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(quasi_static(a));
  EXPECT_FALSE(accel_norms_agree(a, b));
  Imu6 free_fall{};
  EXPECT_TRUE(std::isnan(accel_shank_tilt_rad(free_fall, HingeAxis())))
      << "no tilt can be read without gravity";
}

TEST(KneeGeometry, WrapAngleMapsToMinusPiToPi) {
  EXPECT_NEAR(wrap_angle_rad(3.0 * kPi / 2.0), -kPi / 2.0, 1e-12);
  EXPECT_NEAR(wrap_angle_rad(-3.0 * kPi / 2.0), kPi / 2.0, 1e-12);
  EXPECT_NEAR(wrap_angle_rad(0.3), 0.3, 1e-15);
  EXPECT_TRUE(std::isnan(wrap_angle_rad(kNaN)));
}

// ---------------------------------------------------------------------------------------------
// KneeAngleFilter

TEST(KneeAngleFilter, TracksKneeFlexionAndLearnsTheGyroBiasDifference) {
  const KneeRun r = run_knee(true);
  const double bias_err = r.bias_deg_s - 5.0;
  std::printf("[measured] knee KF, 200 Hz, 10–40 s: RMSE %.3f°, max |error| %.3f°, "
              "b_Δ %.3f °/s (injected 5, error %+.3f); accel gated %llu of %llu\n",
              r.rmse_deg, r.max_abs_err_deg, r.bias_deg_s, bias_err,
              static_cast<unsigned long long>(r.counters.accel.gated),
              static_cast<unsigned long long>(r.counters.accel.accepted +
                                              r.counters.accel.gated));
  EXPECT_LE(r.rmse_deg, 1.5) << "expected RMSE ≤ 1.5°, got " << r.rmse_deg << "°";
  EXPECT_LE(std::abs(bias_err), 0.5)
      << "expected b_Δ = 5 ± 0.5 °/s, got " << r.bias_deg_s << " °/s";
  EXPECT_EQ(r.counters.gyro.accepted, 8000u);
  EXPECT_EQ(r.counters.gyro.non_finite + r.counters.accel.non_finite, 0u);
  EXPECT_EQ(r.counters.accel.reacquired, 0u);
}

// Only the accelerometer angle anchors θ: without it the 5 °/s bias difference is
// indistinguishable from motion and integrates into the angle.
TEST(KneeAngleFilter, AngleDriftsWithoutAccelerometerUpdates) {
  const KneeRun with = run_knee(true);
  const KneeRun without = run_knee(false);
  std::printf("[measured] knee KF without accel updates: RMSE %.1f°, error at 40 s %.1f° "
              "(with: RMSE %.3f°)\n",
              without.rmse_deg, without.final_err_deg, with.rmse_deg);
  EXPECT_GT(without.rmse_deg, 20.0 * with.rmse_deg)
      << "expected the gyro-only angle to drift; RMSE " << without.rmse_deg << "° vs "
      << with.rmse_deg << "° with accel";
  EXPECT_GT(std::abs(without.final_err_deg), 100.0)
      << "5 °/s over 40 s is ~200°; got " << without.final_err_deg << "°";
  EXPECT_EQ(without.counters.accel.skipped, 8000u);
  EXPECT_EQ(without.counters.accel.accepted, 0u);
}

// A knee sleeve measures θ directly: its updates alone (no IMU) track the angle.
TEST(KneeAngleFilter, SleeveUpdatesAloneTrackTheAngle) {
  const double fs = 100.0, dt = 1.0 / fs, sleeve_noise = deg(1.0);
  SyntheticLeg leg;
  KneeAngleFilter kf;
  std::mt19937_64 rng(7);
  std::normal_distribution<double> n(0.0, sleeve_noise);
  double se = 0.0, se_raw = 0.0;
  int count = 0;
  for (int k = 1; k <= static_cast<int>(30.0 * fs); ++k) {
    const double t = k * dt;
    const double truth = leg.pose(t).theta();
    const double z = truth + n(rng);
    ASSERT_TRUE(kf.predict(dt));
    ASSERT_EQ(kf.update_sleeve_angle(z), UpdateStatus::kAccepted) << "t = " << t;
    if (t >= 10.0) {
      se += std::pow(kf.angle_rad() - truth, 2);
      se_raw += std::pow(z - truth, 2);
      ++count;
    }
  }
  const double rmse = to_deg(std::sqrt(se / count));
  std::printf("[measured] knee KF, sleeve only at 100 Hz, noise 1°: RMSE %.3f° (raw %.3f°)\n",
              rmse, to_deg(std::sqrt(se_raw / count)));
  EXPECT_LE(rmse, 1.0) << "expected RMSE ≤ 1° (sleeve noise 1°), got " << rmse << "°";
  EXPECT_EQ(kf.counters().sleeve.accepted, 3000u);
}

TEST(KneeAngleFilter, NonFiniteSamplesAreCountedPerMeasurement) {
  KneeAngleFilter kf;
  const KneeJointAxes axes;
  Imu6 th{}, sh{};
  th.accel_mps2[1] = static_cast<float>(kG);
  sh.accel_mps2[1] = static_cast<float>(kG);
  Imu6 bad_gyro = th;
  bad_gyro.gyro_radps[2] = std::numeric_limits<float>::quiet_NaN();
  KneeImuResult r = kf.on_imu_pair(bad_gyro, sh, axes, 0.005, true);
  EXPECT_EQ(r.gyro, UpdateStatus::kNonFinite);
  EXPECT_EQ(r.accel, UpdateStatus::kAccepted) << "a bad gyro must not cost the accel update";
  Imu6 bad_accel = sh;
  bad_accel.accel_mps2[0] = std::numeric_limits<float>::infinity();
  r = kf.on_imu_pair(th, bad_accel, axes, 0.005, true);
  EXPECT_EQ(r.gyro, UpdateStatus::kAccepted);
  EXPECT_EQ(r.accel, UpdateStatus::kNonFinite);
  EXPECT_EQ(kf.update_sleeve_angle(kNaN), UpdateStatus::kNonFinite);
  EXPECT_EQ(kf.counters().gyro.non_finite, 1u);
  EXPECT_EQ(kf.counters().accel.non_finite, 1u);
  EXPECT_EQ(kf.counters().sleeve.non_finite, 1u);
  EXPECT_TRUE(std::isfinite(kf.angle_rad()));
}

TEST(KneeAngleFilter, AccelUpdateSkippedOutsideItsWindowOrWhenNormsDisagree) {
  KneeAngleFilter kf;
  const KneeJointAxes axes;
  Imu6 th{}, sh{};
  th.accel_mps2[1] = static_cast<float>(kG);
  sh.accel_mps2[1] = static_cast<float>(kG);
  EXPECT_EQ(kf.on_imu_pair(th, sh, axes, 0.005, false).accel, UpdateStatus::kSkipped);
  sh.accel_mps2[1] = static_cast<float>(8.0 * kG);  // a shank impact
  EXPECT_EQ(kf.on_imu_pair(th, sh, axes, 0.005, true).accel, UpdateStatus::kSkipped);
  EXPECT_EQ(kf.counters().accel.skipped, 2u);
  EXPECT_EQ(kf.counters().accel.accepted, 0u);
}

TEST(KneeAngleFilter, RefusesBadTimeStepsAndClampsGaps) {
  KneeAngleFilter kf;
  EXPECT_FALSE(kf.predict(0.0));
  EXPECT_FALSE(kf.predict(-0.005));
  EXPECT_FALSE(kf.predict(kNaN));
  EXPECT_FALSE(kf.predict(std::numeric_limits<double>::infinity()));
  EXPECT_EQ(kf.counters().predict.bad_dt, 4u);
  EXPECT_EQ(kf.counters().predict.predicts, 0u);
  ASSERT_EQ(kf.update_gyro(1.0), UpdateStatus::kAccepted);  // moving at ~1 rad/s
  const double before = kf.angle_rad();
  EXPECT_TRUE(kf.predict(30.0));  // a 30 s dropout
  EXPECT_EQ(kf.counters().predict.dt_clamped, 1u);
  EXPECT_LT(std::abs(kf.angle_rad() - before), 1.0 * 0.05 + 1e-9)
      << "the angle is extrapolated over max_dt_s = 0.05 s only";
  EXPECT_TRUE(is_symmetric_positive_definite(kf.kalman().covariance()));
  EXPECT_DOUBLE_EQ(kf.kalman().covariance()(KneeAngleFilter::kAngle, KneeAngleFilter::kAngle),
                   std::pow(kf.params().max_angle_sigma_rad, 2))
      << "after a 30 s dropout the angle is as uncertain as the ceiling allows";
}

// A filter whose angle has drifted (here: started 40° off with a confident prior) gates every
// honest accelerometer angle; after reacquire_after in a row it re-opens and recovers.
TEST(KneeAngleFilter, ReacquiresAfterPersistentGating) {
  KneeAngleParams p;
  p.standing_angle_rad = deg(45.0);
  p.initial_angle_sigma_rad = deg(0.5);
  p.reacquire_after = 50;
  KneeAngleFilter kf(p);
  for (int k = 0; k < 60; ++k) {
    ASSERT_TRUE(kf.predict(0.005));
    kf.update_gyro(0.0);
    kf.update_accel_angle(deg(5.0));
  }
  std::printf("[measured] reacquire: gated %llu, reacquired %llu, angle %.2f° (truth 5°)\n",
              static_cast<unsigned long long>(kf.counters().accel.gated),
              static_cast<unsigned long long>(kf.counters().accel.reacquired),
              to_deg(kf.angle_rad()));
  EXPECT_EQ(kf.counters().accel.gated, 50u);
  EXPECT_EQ(kf.counters().accel.reacquired, 1u);
  EXPECT_EQ(kf.counters().accel.accepted, 10u);
  EXPECT_NEAR(to_deg(kf.angle_rad()), 5.0, 1.0) << "expected the angle back near the truth";
}

// ---------------------------------------------------------------------------------------------
// ShankTiltFilter

TEST(ShankTiltFilter, TracksShankInclination) {
  const double fs = 200.0, dt = 1.0 / fs;
  SyntheticLeg leg;
  ImuRenderer imu(fs, kThighBias, kShankBias, 43);
  ShankTiltFilter kf;
  const HingeAxis axis;
  double se = 0.0;
  int n = 0;
  for (int k = 1; k <= static_cast<int>(40.0 * fs); ++k) {
    const double t = k * dt;
    const LegPose p = leg.pose(t);
    kf.on_imu(imu.shank(p), axis, dt, true);
    if (t >= 10.0) {
      se += std::pow(kf.tilt_rad() - p.phi_s, 2);
      ++n;
    }
  }
  const double rmse = to_deg(std::sqrt(se / n));
  std::printf("[measured] shank tilt KF, 200 Hz, 10–40 s: RMSE %.3f°, b_s %.3f °/s "
              "(injected %.1f)\n",
              rmse, to_deg(kf.bias_radps()), to_deg(kShankBias));
  EXPECT_LE(rmse, 2.0) << "expected RMSE ≤ 2°, got " << rmse << "°";
  EXPECT_NEAR(to_deg(kf.bias_radps()), to_deg(kShankBias), 0.5);
  EXPECT_EQ(kf.counters().tilt.accepted, 8000u);
}

TEST(ShankTiltFilter, TiltUpdateOnlyWhenQuasiStaticAndAllowed) {
  ShankTiltFilter kf;
  const HingeAxis axis;
  Imu6 m{};
  m.accel_mps2[1] = static_cast<float>(1.2 * kG);  // 0.2 g of linear acceleration
  EXPECT_EQ(kf.on_imu(m, axis, 0.005, true).tilt, UpdateStatus::kSkipped);
  m.accel_mps2[1] = static_cast<float>(kG);
  EXPECT_EQ(kf.on_imu(m, axis, 0.005, false).tilt, UpdateStatus::kSkipped);
  EXPECT_EQ(kf.on_imu(m, axis, 0.005, true).tilt, UpdateStatus::kAccepted);
  m.gyro_radps[2] = std::numeric_limits<float>::quiet_NaN();
  const double sigma_before = kf.tilt_sigma_rad();
  const ShankImuResult r = kf.on_imu(m, axis, 0.005, false);
  EXPECT_TRUE(r.predicted) << "time advances through a bad gyro sample";
  EXPECT_GT(kf.tilt_sigma_rad(), sigma_before);
  EXPECT_EQ(kf.counters().predict.non_finite, 1u);
  EXPECT_EQ(kf.counters().tilt.skipped, 3u);
  EXPECT_TRUE(std::isfinite(kf.tilt_rad()));
}

// ---------------------------------------------------------------------------------------------
// ForceFilter

// One foot at 170 spm: a 0.25 s half-sine stance of `peak_bw`, then swing, stride 0.706 s.
double half_sine_force(double t, double peak_bw, double stride_s = 120.0 / 170.0,
                       double contact_s = 0.25) {
  const double u = std::fmod(t, stride_s) / contact_s;
  return u < 1.0 ? peak_bw * std::sin(kPi * u) : 0.0;
}

struct ForceRun {
  double rmse_bw = 0.0;
  double raw_rmse_bw = 0.0;
  double spike_err_bw = 0.0;
  ForceCounters counters;
};

ForceRun run_force(double spike_bw) {
  const double fs = 100.0, dt = 1.0 / fs, noise = 0.03;
  ForceFilter kf;
  std::mt19937_64 rng(11);
  std::normal_distribution<double> n(0.0, noise);
  double se = 0.0, se_raw = 0.0;
  int count = 0;
  ForceRun r;
  const int spike_k = static_cast<int>(std::lround((28.0 * 120.0 / 170.0 + 0.125) * fs));  // mid-stance
  for (int k = 1; k <= static_cast<int>(30.0 * fs); ++k) {
    const double t = k * dt;
    const double truth = half_sine_force(t, 2.5);
    if (!kf.predict(dt)) ADD_FAILURE() << "predict refused dt = " << dt;
    if (truth > 0.0) {
      const double z = truth + n(rng) + (k == spike_k ? spike_bw : 0.0);
      kf.update(z);
      if (k == spike_k) r.spike_err_bw = kf.force_bw() - truth;
      if (t >= 2.0 && k != spike_k) {
        se += std::pow(kf.force_bw() - truth, 2);
        se_raw += std::pow(z - truth, 2);
        ++count;
      }
    } else {
      kf.update_swing();  // the gait detector says swing
    }
  }
  r.rmse_bw = std::sqrt(se / count);
  r.raw_rmse_bw = std::sqrt(se_raw / count);
  r.counters = kf.counters();
  return r;
}

TEST(ForceFilter, TracksAHalfSineStance) {
  const ForceRun r = run_force(0.0);
  std::printf("[measured] force KF, 100 Hz, 2.5 BW half-sine, noise 0.03 BW: stance RMSE "
              "%.4f BW (raw %.4f BW), gated %llu\n",
              r.rmse_bw, r.raw_rmse_bw, static_cast<unsigned long long>(r.counters.force.gated));
  EXPECT_LE(r.rmse_bw, 0.05) << "expected stance RMSE ≤ 0.05 BW, got " << r.rmse_bw;
  EXPECT_EQ(r.counters.force.gated, 0u) << "no honest stance sample, IC included, is gated";
  EXPECT_GT(r.counters.swing.accepted, 0u);
}

TEST(ForceFilter, GateRejectsASpike) {
  const ForceRun r = run_force(10.0);
  std::printf("[measured] force KF, +10 BW spike mid-stance: gated %llu, error at the spike "
              "%.3f BW\n",
              static_cast<unsigned long long>(r.counters.force.gated), r.spike_err_bw);
  EXPECT_EQ(r.counters.force.gated, 1u) << "expected exactly the spike gated, got "
                                        << r.counters.force.gated;
  EXPECT_LT(std::abs(r.spike_err_bw), 0.3) << "the estimate must ignore the spike";
  EXPECT_LE(r.rmse_bw, 0.05);
}

TEST(ForceFilter, SwingPseudoMeasurementPinsForceAndRateToZero) {
  ForceFilter kf;
  ASSERT_TRUE(kf.predict(0.01));
  ASSERT_EQ(kf.update(1.0), UpdateStatus::kAccepted);
  for (int k = 0; k < 5; ++k) {
    ASSERT_TRUE(kf.predict(0.01));
    ASSERT_EQ(kf.update_swing(), UpdateStatus::kAccepted);
  }
  EXPECT_NEAR(kf.force_bw(), 0.0, 0.02);
  EXPECT_NEAR(kf.rate_bwps(), 0.0, 2.0);
  EXPECT_EQ(kf.update(kNaN), UpdateStatus::kNonFinite);
  EXPECT_EQ(kf.counters().force.non_finite, 1u);
}

// ---------------------------------------------------------------------------------------------
// ForceCalibration

// Two feet on a level treadmill at ~170 spm, 100 Hz insoles that read F_true / 1.25 plus
// 0.03 BW noise, stride time and contact time jittering per stride. Each stride's F_L + F_R
// averages 1 BW (MODEL.md §1), so the right gain is 1.25; the loop starts at 1.0, 20 % low.
struct CalibrationRun {
  double gain_at_120s = 0.0;
  double converged_at_s = -1.0;
  double gain_when_converged = 0.0;
  bool converged_at_30s = false;
  ForceCalibrationCounters counters;
};

CalibrationRun run_calibration(double true_gain) {
  const double fs = 100.0, dt = 1.0 / fs;
  std::mt19937_64 rng(5);
  std::normal_distribution<double> n(0.0, 1.0);
  ForceCalibration cal;
  CalibrationRun r;

  // Stride plan: left IC times and per-stride (T, t_c); right IC half a stride later.
  struct Stride {
    double ic, period, contact, peak;
  };
  std::array<Stride, 400> strides{};
  double ic = 0.3;
  for (Stride& s : strides) {
    s.ic = ic;
    s.period = (120.0 / 170.0) * (1.0 + 0.02 * n(rng));
    s.contact = 0.25 * (1.0 + 0.03 * n(rng));
    s.peak = kPi * s.period / (4.0 * s.contact);  // 2·(2/π)·peak·t_c / T = 1 BW
    ic += s.period;
  }
  auto foot_force = [&](int foot, double t) {
    for (const Stride& s : strides) {
      const double start = s.ic + (foot == 1 ? s.period / 2.0 : 0.0);
      if (t >= start && t < start + s.contact) return s.peak * std::sin(kPi * (t - start) / s.contact);
    }
    return 0.0;
  };

  std::size_t next_ic = 0;
  for (int k = 0; k < static_cast<int>(125.0 * fs); ++k) {
    const double t = k * dt;
    // The caller's gait detector reports the left IC (with 1 ms timing noise) at the first
    // sample on or after it; the stride time is the difference of consecutive ICs.
    if (next_ic < strides.size() && t >= strides[next_ic].ic) {
      const double stride_time = next_ic == 0 ? 0.0
                                              : strides[next_ic].ic - strides[next_ic - 1].ic +
                                                    0.001 * n(rng);
      cal.end_stride(stride_time, true);
      ++next_ic;
    }
    for (int foot = 0; foot < 2; ++foot) {
      cal.add_sample(foot_force(foot, t) / true_gain + 0.03 * n(rng), dt);
    }
    if (r.converged_at_s < 0.0 && cal.converged()) {
      r.converged_at_s = t;
      r.gain_when_converged = cal.gain();
    }
    if (k == static_cast<int>(30.0 * fs)) r.converged_at_30s = cal.converged();
    if (k == static_cast<int>(120.0 * fs)) r.gain_at_120s = cal.gain();
  }
  r.counters = cal.counters();
  return r;
}

TEST(ForceCalibration, ConvergesFromA20PercentErrorWithinTwoMinutes) {
  const double truth = 1.25;
  const CalibrationRun r = run_calibration(truth);
  const double err = r.gain_at_120s / truth - 1.0;
  std::printf("[measured] g_cal: 1.000 → %.4f at 120 s (truth %.2f, error %+.2f %%); "
              "converged flag at %.1f s with error %+.2f %%; %llu strides used\n",
              r.gain_at_120s, truth, 100.0 * err, r.converged_at_s,
              100.0 * (r.gain_when_converged / truth - 1.0),
              static_cast<unsigned long long>(r.counters.updated));
  EXPECT_LT(std::abs(err), 0.02) << "expected g_cal within 2 % of " << truth << ", got "
                                 << r.gain_at_120s;
  EXPECT_FALSE(r.converged_at_30s) << "30 s of running is too little to claim convergence";
  EXPECT_GT(r.converged_at_s, 0.0) << "expected convergence within 125 s";
  EXPECT_LT(std::abs(r.gain_when_converged / truth - 1.0), 0.02)
      << "when it says converged, it must be within 2 %";
  EXPECT_EQ(r.counters.out_of_range + r.counters.bad_stride_time + r.counters.bad_samples, 0u);
}

TEST(ForceCalibration, RefusesStridesThatCannotCalibrate) {
  ForceCalibration cal;
  auto stride = [&](double mean_bw, double t_s) {
    for (int k = 0; k < static_cast<int>(t_s * 100.0); ++k) cal.add_sample(mean_bw, 0.01);
  };
  EXPECT_EQ(cal.end_stride(0.0, true), StrideStatus::kArmed);
  stride(0.8, 0.7);
  EXPECT_EQ(cal.end_stride(0.7, false), StrideStatus::kNotSteady);
  stride(0.8, 0.7);
  EXPECT_EQ(cal.end_stride(3.0, true), StrideStatus::kBadStrideTime);
  stride(0.8, 0.7);
  cal.add_sample(kNaN, 0.01);
  EXPECT_EQ(cal.end_stride(0.7, true), StrideStatus::kBadSamples);
  stride(0.1, 0.7);  // a gain of 10: the insole is off the foot
  EXPECT_EQ(cal.end_stride(0.7, true), StrideStatus::kOutOfRange);
  EXPECT_DOUBLE_EQ(cal.gain(), 1.0) << "no refused stride may move g_cal";
  stride(0.8, 0.7);
  EXPECT_EQ(cal.end_stride(0.7, true), StrideStatus::kUpdated);
  EXPECT_NEAR(cal.last_stride_gain(), 1.25, 1e-9);
  EXPECT_GT(cal.gain(), 1.0);
  const ForceCalibrationCounters& c = cal.counters();
  EXPECT_EQ(c.strides, 6u);
  EXPECT_EQ(c.not_steady, 1u);
  EXPECT_EQ(c.bad_stride_time, 1u);
  EXPECT_EQ(c.bad_samples, 1u);
  EXPECT_EQ(c.out_of_range, 1u);
  EXPECT_EQ(c.non_finite_samples, 1u);
  EXPECT_EQ(c.updated, 1u);
}

}  // namespace
}  // namespace kneeload::fusion
