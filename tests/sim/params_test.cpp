// Scenario plans and config validation.
#include "kneeload/sim/params.hpp"

#include <gtest/gtest.h>

#include <string>

namespace kneeload::sim {
namespace {

TEST(Params, DefaultsAndEveryScenarioValidate) {
  SimConfig c;
  EXPECT_EQ(validate(c), "");
  for (int i = 0; i < kScenarioCount; ++i) {
    const auto s = static_cast<Scenario>(i);
    c.plan = make_scenario(s, c.runner);
    EXPECT_EQ(validate(c), "") << scenario_name(s);
  }
}

TEST(Params, ScenarioNamesRoundTrip) {
  for (int i = 0; i < kScenarioCount; ++i) {
    const auto s = static_cast<Scenario>(i);
    Scenario back = Scenario::kHealthy;
    ASSERT_TRUE(parse_scenario(scenario_name(s), &back)) << scenario_name(s);
    EXPECT_EQ(back, s);
  }
  Scenario out = Scenario::kFatigue;
  EXPECT_FALSE(parse_scenario("tired", &out));
  EXPECT_EQ(out, Scenario::kFatigue);
}

TEST(Params, ValidateNamesTheKeyExpectedAndGot) {
  SimConfig c;
  c.insole.rate_hz = 50.0;
  EXPECT_EQ(validate(c), "insole.rate_hz: expected 100..1000, got 50");
  c = SimConfig{};
  c.runner.contact_time_s = 0.32;  // 85 % of a 170 spm step: no flight phase
  EXPECT_NE(validate(c).find("runner.contact_time_s: expected at most 80 %"), std::string::npos)
      << validate(c);
  c = SimConfig{};
  c.plan.drift.incline_fraction = -0.5;  // the drifted runner is checked too
  EXPECT_EQ(validate(c).rfind("runner+drift.incline_fraction", 0), 0u) << validate(c);
  c = SimConfig{};
  c.plan.habit.cadence_spm = -80.0;  // so is the habitual one, before any drift
  EXPECT_EQ(validate(c).rfind("runner+habit.cadence_spm", 0), 0u) << validate(c);
  c = SimConfig{};
  c.plan.faults.push_back({FaultKind::kStuckCell, fusion::DeviceRole::kKneeLeft, 10, 1, 0, 0, 0});
  EXPECT_EQ(validate(c), "plan.faults.device: expected an insole for stuck-cell");
}

TEST(Params, DriftAmountIsZeroUntilOnsetThenSmoothToOne) {
  const ScenarioTiming t{100.0, 50.0};
  EXPECT_EQ(drift_amount(t, 0.0), 0.0);
  EXPECT_EQ(drift_amount(t, 100.0), 0.0);
  EXPECT_DOUBLE_EQ(drift_amount(t, 125.0), 0.5);
  EXPECT_EQ(drift_amount(t, 150.0), 1.0);
  EXPECT_EQ(drift_amount(t, 1e6), 1.0);
  double prev = 0.0;
  for (double s = 100.0; s <= 150.0; s += 0.5) {
    const double a = drift_amount(t, s);
    EXPECT_GE(a, prev);
    EXPECT_LE(a - prev, 0.025) << "at " << s;  // max slope 1.875/50 per s, times 0.5 s
    prev = a;
  }
}

TEST(Params, DriftedAddsScaledDeltas) {
  RunnerParams base;
  ParamsDrift d;
  d.cadence_spm = -10.0;
  d.contact_time_factor[1] = 0.1;
  const RunnerParams half = drifted(base, d, 0.5);
  EXPECT_DOUBLE_EQ(half.cadence_spm, base.cadence_spm - 5.0);
  EXPECT_DOUBLE_EQ(half.contact_time_factor[1], 1.05);
  EXPECT_DOUBLE_EQ(half.contact_time_factor[0], 1.0);
}

// A habit is there from the first step; the drift after the onset is added on top of it.
TEST(Params, HabitAppliesFromTheStartAndDriftOnTopOfIt) {
  RunnerParams base;
  ScenarioPlan plan = make_scenario(Scenario::kFatigue, base);
  const RunnerParams start = habitual(base, plan);
  EXPECT_DOUBLE_EQ(start.cadence_spm, 178.0);
  EXPECT_DOUBLE_EQ(drifted(start, plan.drift, 1.0).cadence_spm, 178.0 * (1.0 - 0.045));
  plan = make_scenario(Scenario::kOverstride, base);
  EXPECT_DOUBLE_EQ(habitual(base, plan).cadence_spm, 155.0);
  EXPECT_DOUBLE_EQ(drifted(habitual(base, plan), plan.drift, 1.0).cadence_spm, 155.0);
}

TEST(Params, WinterLengthsUnlessGiven) {
  RunnerParams p;
  p.height_m = 1.80;
  EXPECT_DOUBLE_EQ(shank_length_m(p), 0.246 * 1.80);
  EXPECT_DOUBLE_EQ(thigh_length_m(p), 0.245 * 1.80);
  EXPECT_DOUBLE_EQ(foot_length_m(p), 0.152 * 1.80);
  p.shank_length_m = 0.40;
  EXPECT_DOUBLE_EQ(shank_length_m(p), 0.40);
}

TEST(Params, MakeSensorsIdealZeroesEveryError) {
  SimConfig c;
  make_sensors_ideal(c);
  EXPECT_EQ(c.insole.noise_pa, 0.0);
  EXPECT_EQ(c.insole.gain_error_sd, 0.0);
  EXPECT_EQ(c.knee.gyro_bias_sd_dps, 0.0);
  EXPECT_EQ(c.knee.gyro_bias_walk_radps_rts, 0.0);
  EXPECT_EQ(c.clock.drift_sd_ppm, 0.0);
  EXPECT_EQ(c.clock.offset_max_s, 0.0);
  EXPECT_EQ(validate(c), "");
}

}  // namespace
}  // namespace kneeload::sim
