// The reload path piece by piece (RunnerSession::reconfigure on SIGHUP): each filter, the
// calibration loop, the trend windows and the clock take new parameters without losing what they
// estimated, except where a buffer's size changes (then that part restarts, as documented).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

#include "kneeload/fusion/filters.hpp"
#include "kneeload/fusion/risk_rules.hpp"
#include "kneeload/fusion/time_align.hpp"

namespace kneeload::fusion {
namespace {

constexpr double kDeg = 3.14159265358979323846 / 180.0;

// Two knee filters with one history; the second takes a 10× looser accelerometer angle: the
// state is untouched by set_params, and the same angle update then moves it far less.
TEST(KneeAngleFilterReload, KeepsTheStateAndWeighsTheAccelerometerByTheNewNoise) {
  KneeAngleFilter a, b;
  for (int k = 0; k < 200; ++k) {
    for (KneeAngleFilter* f : {&a, &b}) {
      ASSERT_TRUE(f->predict(0.005));
      f->update_gyro(0.0);
      f->update_accel_angle(10.0 * kDeg);
    }
  }
  KneeAngleParams loose;
  loose.accel_angle_sigma_rad = 10.0 * a.params().accel_angle_sigma_rad;
  b.set_params(loose);
  EXPECT_EQ(b.angle_rad(), a.angle_rad()) << "set_params must not touch θ";
  EXPECT_EQ(b.bias_difference_radps(), a.bias_difference_radps());
  EXPECT_EQ(b.angle_sigma_rad(), a.angle_sigma_rad());
  const double before = a.angle_rad();
  ASSERT_EQ(a.update_accel_angle(before + 1.0 * kDeg), UpdateStatus::kAccepted);
  ASSERT_EQ(b.update_accel_angle(before + 1.0 * kDeg), UpdateStatus::kAccepted);
  const double step_a = a.angle_rad() - before;
  const double step_b = b.angle_rad() - before;
  EXPECT_GT(step_a, 0.0);
  EXPECT_LT(step_b, 0.1 * step_a) << "gain with σ×10: expected < 1/10 of " << step_a / kDeg
                                  << "°, got " << step_b / kDeg << "°";
}

// The vGRF gate: a 10 BW jump from swing fails the default χ² gate and passes a reloaded one.
TEST(ForceFilterReload, NewGateDecidesTheNextUpdate) {
  ForceFilter f;
  for (int k = 0; k < 50; ++k) {
    ASSERT_TRUE(f.predict(0.01));
    f.update_swing();
  }
  ASSERT_TRUE(f.predict(0.01));
  EXPECT_EQ(f.update(10.0), UpdateStatus::kGated) << "default gate";
  const double force = f.force_bw();
  ForceFilterParams wide = f.params();
  wide.gate_chi2 = 1e9;
  f.set_params(wide);
  EXPECT_EQ(f.force_bw(), force);
  EXPECT_EQ(f.update(10.0), UpdateStatus::kAccepted) << "reloaded gate " << wide.gate_chi2;
  EXPECT_GT(f.force_bw(), 1.0);
}

TEST(ShankTiltFilterReload, NewQuasiStaticToleranceAndStateKept) {
  ShankTiltFilter f;
  ASSERT_TRUE(f.predict(0.0, 0.01));
  ASSERT_EQ(f.update_tilt(5.0 * kDeg), UpdateStatus::kAccepted);
  const double tilt = f.tilt_rad();
  ShankTiltParams p = f.params();
  p.quasi_static_tol_g = 0.3;
  f.set_params(p);
  EXPECT_EQ(f.tilt_rad(), tilt);
  EXPECT_EQ(f.params().quasi_static_tol_g, 0.3);
}

// g_cal is learnt over minutes: kept, only clamped into the new limits.
TEST(ForceCalibrationReload, KeepsTheGainInsideTheNewLimits) {
  ForceCalibrationParams p;
  p.initial_gain = 1.5;
  ForceCalibration c(p);
  ASSERT_DOUBLE_EQ(c.gain(), 1.5);
  ForceCalibrationParams slower = p;
  slower.time_constant_s = 60.0;
  c.set_params(slower);
  EXPECT_DOUBLE_EQ(c.gain(), 1.5);
  ForceCalibrationParams tight = p;
  tight.max_gain = 1.2;
  c.set_params(tight);
  EXPECT_DOUBLE_EQ(c.gain(), 1.2);
}

// Same capacities: the steps collected so far stay and the new rolling span applies at once.
// New capacities re-size the windows: they restart, and the baseline counts from the reload.
TEST(GaitTrendsReload, NewSpanKeepsStepsNewCapacityRestarts) {
  constexpr std::int64_t kT0 = 1'000'000'000;
  constexpr std::int64_t kStepUs = 700'000;
  GaitTrends trends;
  trends.start_session(kT0);
  GaitMetrics m;
  m.contact_time_s = 0.25;
  std::int64_t t = kT0;
  for (; t < kT0 + 100'000'000; t += kStepUs) trends.add_step(Side::kLeft, t, m, 3.0, 0.0);
  RuleInputs in;
  trends.fill(t, in);
  const int all = in.rolling_steps[0];
  ASSERT_GT(all, 100);

  GaitTrendParams shorter;
  shorter.rolling_window_s = 30.0;
  EXPECT_TRUE(trends.set_params(shorter, t));
  trends.fill(t, in);
  EXPECT_NEAR(in.rolling_steps[0], 30e6 / kStepUs, 1.0) << "of " << all << " steps";

  GaitTrendParams bigger = shorter;
  bigger.rolling_capacity_steps = 1024;
  EXPECT_FALSE(trends.set_params(bigger, t));
  trends.fill(t, in);
  EXPECT_EQ(in.rolling_steps[0], 0);
  EXPECT_FALSE(in.baseline_ready);
}

// The reorder window applies to the next release; aligner thresholds are taken as given.
TEST(RunnerClockReload, NewWindowReleasesByTheNewWindow) {
  ReorderParams rp;
  rp.window_us = 150'000;
  ReorderBuffer b(rp);
  Sample s{};
  ASSERT_EQ(b.push(s, 1'000'000, 0), PushResult::kQueued);
  ReleasedSample r{};
  EXPECT_FALSE(b.pop_ready(1'100'000, r)) << "100 ms on, window 150 ms";
  b.set_window_us(50'000);
  EXPECT_TRUE(b.pop_ready(1'100'000, r)) << "100 ms on, window 50 ms";

  RunnerClockParams cp;
  for (AlignerParams& a : cp.aligners) {
    a.jump_threshold_us = 80'000;
    a.jump_confirm_frames = 9;
  }
  RunnerClock clock;
  clock.set_params(cp);
  EXPECT_EQ(clock.aligner(DeviceRole::kKneeLeft).params().jump_threshold_us, 80'000);
  EXPECT_EQ(clock.aligner(DeviceRole::kKneeLeft).params().jump_confirm_frames, 9);
}

}  // namespace
}  // namespace kneeload::fusion
