// Proves the hot-path claim of risk_rules.hpp and load_model.hpp: after construction,
// GaitTrends, RiskRules, StepLoad and SessionLoad perform no heap allocation, whether rules are
// quiet, firing, escalating or clearing. This binary replaces the global allocation functions
// with counting ones that forward to malloc/free; it is its own test binary so no other test
// runs with them.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <numbers>

#include "kneeload/fusion/load_model.hpp"
#include "kneeload/fusion/risk_rules.hpp"
#include "counting_new.hpp"

namespace kneeload::fusion {
namespace {

std::uint64_t allocations() { return kneeload::alloc_count::new_calls(); }

int* volatile g_sink = nullptr;

TEST(AllocationCounter, CountsAllocations) {
  const std::uint64_t before = allocations();
  g_sink = new int(3);
  delete g_sink;
  EXPECT_EQ(allocations() - before, 1u) << "the replaced operator new is not in use";
}

// 20 simulated minutes: per 100 Hz insole sample StepLoad.add and RiskRules.on_insole_cells;
// per step StepLoad.finish, SessionLoad, GaitTrends and RiskRules.evaluate. Halfway through the
// runner drifts (PFJ stress, contact time, asymmetry), saturates a cell, reports pain, a device
// drops out and a clock jumps, so onsets, escalations and clears all happen in the counted part.
TEST(RiskRulesAllocation, NoHeapAllocationPerSampleOrPerStepAfterConstruction) {
  constexpr double kPi = std::numbers::pi;
  constexpr std::int64_t kT0 = 1'000'000'000;
  LoadModelParams lp;
  StepLoad step_load(lp);
  SessionLoad session_load;
  GaitTrends trends;
  RiskRules rules(RiskRuleParams{}, load_model_id(lp.area_model));
  RiskEventBuffer events;
  std::array<float, 16> cells{};

  const std::uint64_t before = allocations();
  std::uint64_t calls = 0, emitted = 0;
  trends.start_session(kT0);
  const std::int64_t step_us = 350'000;
  const std::int64_t stance_us = 250'000;
  int side = 0;
  for (std::int64_t ic = kT0; ic < kT0 + 1'200'000'000; ic += step_us / 2, side ^= 1) {
    const double t_s = static_cast<double>(ic - kT0) / 1e6;
    const bool drift = t_s > 600.0;
    step_load.begin(ic, 40.0);
    for (std::int64_t dt = 10'000; dt < stance_us; dt += 10'000) {
      const double u = static_cast<double>(dt) / static_cast<double>(stance_us);
      const double f = std::sin(kPi * u);
      StanceSample s{ic + dt, 2.5 * 686.0 * f, (15.0 + 30.0 * f) * kPi / 180.0, 0.2 * f,
                     0.2 + 0.5 * u};
      step_load.add(s);
      for (std::size_t c = 0; c < cells.size(); ++c) {
        cells[c] = static_cast<float>(f * (100e3 + 1e4 * static_cast<double>(c)) *
                                      (1.0 + 0.01 * static_cast<double>((dt / 10'000 + c) % 3)));
      }
      if (drift && t_s < 700.0 && dt >= 50'000 && dt < 130'000) cells[0] = 500e3f;
      rules.on_insole_cells(ic + dt, side == 0 ? 10u : 11u, side == 0 ? Side::kLeft : Side::kRight,
                            cells, events);
      calls += 2;
    }
    const StepLoadResult r = step_load.finish(ic + stance_us);
    session_load.add_step(r);
    session_load.add_distance(3.3 * static_cast<double>(step_us / 2) / 1e6);

    GaitMetrics m;
    m.contact_time_s = 0.25 * (drift && side == 1 ? 1.1 : 1.0);
    m.step_time_s = 0.35;
    m.cadence_spm = 171.4;
    m.peak_force_bw = r.peak_force_bw;
    m.valr_bw_per_s = r.loading_rate.valr_bw_per_s;
    m.knee_angle_ic_rad = 15.0 * kPi / 180.0;
    m.knee_angle_peak_rad = r.peak_flexion_rad;
    m.pfj_stress_peak_mpa = r.peak_stress_mpa * (drift ? 1.3 : 1.0);
    m.stress_time_integral_per_km_mpa_s =
        stress_time_integral_per_km(r.stress_time_integral_mpa_s, 1.15);
    m.itb_zone_time_s = r.itb_zone_time_s;
    trends.add_step(side == 0 ? Side::kLeft : Side::kRight, ic + stance_us, m, 3.3, 0.0);
    RuleInputs in;
    trends.fill(ic + stance_us, in);
    in.t_us = ic + stance_us;
    in.belt_speed_mps = 3.3;
    in.incline_fraction = drift ? -0.03 : 0.0;
    in.force_rate_hz = r.loading_rate.sample_rate_hz;
    in.session_distance_m = session_load.distance_m();
    in.session_damage_index = session_load.damage_index();
    in.history.max_session_distance_30d_m = 3000.0;
    rules.evaluate(in, events);
    calls += 5;
    if (ic == kT0 + 700'000'000) {
      rules.on_pain(ic, PainReport{4, Side::kLeft, PainLocation::kLateral}, 3.0, events);
      rules.on_device_stale(ic, 12, SensorKind::kKnee, Side::kLeft, true, 2.0, events);
      rules.on_clock_jump(ic, 14, SensorKind::kTreadmill, Side::kNone, 1.5, events);
      calls += 3;
    }
    if (ic == kT0 + 800'000'000) {
      rules.on_pain(ic, PainReport{1, Side::kLeft, PainLocation::kLateral}, 3.0, events);
      rules.on_device_stale(ic, 12, SensorKind::kKnee, Side::kLeft, false, 0.0, events);
      calls += 2;
    }
    emitted += static_cast<std::uint64_t>(events.size());
    events.clear();
  }
  rules.end_session(kT0 + 1'200'000'000, events);
  emitted += static_cast<std::uint64_t>(events.size());
  events.clear();
  const std::uint64_t n = allocations() - before;

  std::printf("[measured] %llu calls, %llu events, %llu steps, allocations %llu\n",
              static_cast<unsigned long long>(calls), static_cast<unsigned long long>(emitted),
              static_cast<unsigned long long>(session_load.steps()),
              static_cast<unsigned long long>(n));
  EXPECT_EQ(n, 0u) << "expected no allocation in " << calls << " calls, got " << n;
  EXPECT_GE(emitted, 8u) << "the counted part must include onsets and clears";
  EXPECT_EQ(events.overflow(), 0u);
}

}  // namespace
}  // namespace kneeload::fusion
