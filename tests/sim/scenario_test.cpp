// Scenarios: each drift shows in the truth in the intended direction after the baseline and not
// before it, and each habit from the first step (MODEL.md §5–§9 patterns, §10), sized against
// the rule it targets and clear of the others' thresholds; the fault scenario produces the
// faults it claims.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <numbers>
#include <vector>

#include "kneeload/sim/registry.hpp"
#include "kneeload/sim/simulator.hpp"
#include "sim_test_util.hpp"

namespace kneeload::sim {
namespace {

using fusion::DeviceRole;
using fusion::Side;
using testing::collect;
using testing::Emitted;
using testing::median;
using testing::short_config;

constexpr double kDeg = std::numbers::pi / 180.0;
constexpr double kOnsetS = 60.0;
constexpr double kRampS = 120.0;
constexpr double kDurationS = 300.0;

SimConfig scenario_config(Scenario s) { return short_config(kDurationS, s, kOnsetS, kRampS); }

// Median of a step metric over steps whose IC lies in [from_s, to_s) since the start, optionally
// of one side only.
double window(const Simulator& sim, double from_s, double to_s,
              const std::function<double(const StepTruth&)>& metric, Side side = Side::kNone) {
  std::vector<double> v;
  for (const StepTruth& s : sim.step_truths()) {
    const double t = static_cast<double>(s.ic_t_us - sim.start_t_us()) * 1e-6;
    if (t < from_s || t >= to_s) continue;
    if (side != Side::kNone && s.side != side) continue;
    v.push_back(metric(s));
  }
  EXPECT_GT(v.size(), 20u);
  return median(v);
}

struct Change {
  double before;
  double after;
  double rel() const { return after / before - 1.0; }
  double abs() const { return after - before; }
};

// Baseline: the end of the healthy period; drifted: after the ramp.
Change change(const Simulator& sim, const std::function<double(const StepTruth&)>& metric,
              Side side = Side::kNone) {
  return {window(sim, 15.0, kOnsetS, metric, side),
          window(sim, kOnsetS + kRampS, kDurationS, metric, side)};
}

double symmetry_index(double l, double r) { return 100.0 * std::abs(l - r) / (0.5 * (l + r)); }

const auto kCadence = [](const StepTruth& s) { return s.cadence_spm; };
const auto kContact = [](const StepTruth& s) { return s.contact_time_s; };
const auto kKneeIc = [](const StepTruth& s) { return s.knee_ic_rad / kDeg; };
const auto kKneePeak = [](const StepTruth& s) { return s.knee_peak_rad / kDeg; };
const auto kImpact = [](const StepTruth& s) { return s.impact_peak_bw; };
const auto kValr = [](const StepTruth& s) { return s.valr_bw_per_s; };
const auto kPeak = [](const StepTruth& s) { return s.peak_force_bw; };
const auto kStepLength = [](const StepTruth& s) { return s.step_length_m; };
const auto kZone = [](const StepTruth& s) { return s.itb_zone_time_s; };
const auto kCopY = [](const StepTruth& s) { return s.cop_mean_y_norm; };
const auto kMidfoot = [](const StepTruth& s) { return s.midfoot_peak_pressure_pa; };
const auto kExcursion = [](const StepTruth& s) { return s.cop_ml_excursion_norm; };

// Before the onset a scenario is a healthy run of its habitual runner (its habit applied).
TEST(Scenario, NoScenarioChangesAnythingBeforeItsOnset) {
  for (int i = 1; i < kScenarioCount; ++i) {
    const auto sc = static_cast<Scenario>(i);
    const SimConfig c = scenario_config(sc);
    SimConfig reference = scenario_config(Scenario::kHealthy);
    reference.runner = habitual(c.runner, c.plan);
    const Simulator healthy(reference);
    const Simulator sim(c);
    const auto a = healthy.step_truths();
    const auto b = sim.step_truths();
    std::size_t compared = 0;
    for (std::size_t k = 0; k < std::min(a.size(), b.size()); ++k) {
      if (a[k].to_t_us > healthy.onset_t_us() - 2'000'000) break;
      ASSERT_EQ(a[k].ic_t_us, b[k].ic_t_us) << scenario_name(sc) << " step " << k;
      ASSERT_EQ(a[k].to_t_us, b[k].to_t_us) << scenario_name(sc) << " step " << k;
      ASSERT_NEAR(a[k].knee_ic_rad, b[k].knee_ic_rad, 1e-9) << scenario_name(sc);
      ASSERT_NEAR(a[k].peak_force_bw, b[k].peak_force_bw, 1e-9) << scenario_name(sc);
      ASSERT_NEAR(a[k].cop_mean_y_norm, b[k].cop_mean_y_norm, 1e-9) << scenario_name(sc);
      ASSERT_EQ(a[k].incline_fraction, b[k].incline_fraction) << scenario_name(sc);
      ++compared;
    }
    EXPECT_GT(compared, 100u) << scenario_name(sc);
  }
}

TEST(Scenario, HealthyStaysAtItsBaseline) {
  const Simulator sim(scenario_config(Scenario::kHealthy));
  EXPECT_NEAR(change(sim, kCadence).rel(), 0.0, 0.01);
  EXPECT_NEAR(change(sim, kContact).rel(), 0.0, 0.015);
  EXPECT_NEAR(change(sim, kKneeIc).abs(), 0.0, 0.7);
  EXPECT_NEAR(change(sim, kImpact).rel(), 0.0, 0.03);
  EXPECT_NEAR(change(sim, kPeak).rel(), 0.0, 0.02);
  EXPECT_NEAR(change(sim, kCopY).abs(), 0.0, 0.005);
}

// The same window of two runs: the scenario against the healthy runner.
Change versus_healthy(const Simulator& healthy, const Simulator& sim,
                      const std::function<double(const StepTruth&)>& metric) {
  return {window(healthy, 15.0, kDurationS, metric), window(sim, 15.0, kDurationS, metric)};
}

// A habit, not a drift: lower cadence, an extended knee, a harder impact than a healthy runner
// from the first step, and no change after the onset (so only R2's absolute cutoff sees it).
TEST(Scenario, OverstrideIsAHabitOfLowCadenceLowKneeFlexionAndHighImpact) {
  const Simulator healthy(scenario_config(Scenario::kHealthy));
  const Simulator sim(scenario_config(Scenario::kOverstride));
  const Change cadence = versus_healthy(healthy, sim, kCadence);
  EXPECT_LT(cadence.after, 157.0);  // MODEL.md §9 R2: < 166 spm
  EXPECT_LT(versus_healthy(healthy, sim, kKneeIc).abs(), -5.0);
  EXPECT_GT(versus_healthy(healthy, sim, kImpact).rel(), 0.15);
  EXPECT_GT(versus_healthy(healthy, sim, kValr).rel(), 0.15);
  EXPECT_GT(versus_healthy(healthy, sim, kStepLength).rel(), 0.08);
  EXPECT_NEAR(change(sim, kCadence).rel(), 0.0, 0.01);
  EXPECT_NEAR(change(sim, kKneeIc).abs(), 0.0, 0.7);
  EXPECT_NEAR(change(sim, kImpact).rel(), 0.0, 0.03);
  std::printf("overstride: cadence %.1f vs %.1f spm, θ_IC %+.1f°, impact %+.0f %% (vs healthy)\n",
              cadence.after, cadence.before, versus_healthy(healthy, sim, kKneeIc).abs(),
              100 * versus_healthy(healthy, sim, kImpact).rel());
}

TEST(Scenario, ItbPutsKneeFlexionAtContactInTheZoneOnADownhillBelt) {
  const Simulator sim(scenario_config(Scenario::kItb));
  const Change knee = change(sim, kKneeIc);
  EXPECT_LT(knee.before, 20.0);
  EXPECT_GE(knee.after, 20.0);
  EXPECT_LE(knee.after, 30.0);
  const Change zone = change(sim, kZone);
  EXPECT_GT(zone.rel(), 0.20) << zone.before << " → " << zone.after << " s";
  const Change incline = change(sim, [](const StepTruth& s) { return s.incline_fraction; });
  EXPECT_EQ(incline.before, 0.0);
  EXPECT_NEAR(incline.after, -0.05, 1e-9);
  std::printf("itb: θ_IC %.1f° → %.1f°, zone time %.1f → %.1f ms\n", knee.before, knee.after,
              1e3 * zone.before, 1e3 * zone.after);
}

TEST(Scenario, FatigueRaisesContactTimeAndImpactAndLowersCadence) {
  const Simulator sim(scenario_config(Scenario::kFatigue));
  // MODEL.md §9 R7: t_c +5 %, cadence −3 %, Δθ_IC ≥ 3° (three of its signs) ...
  EXPECT_GT(change(sim, kContact).rel(), 0.05);
  EXPECT_LT(change(sim, kCadence).rel(), -0.03);
  EXPECT_GT(change(sim, kKneeIc).abs(), 3.0);
  EXPECT_LT(change(sim, kPeak).rel(), 0.0);
  // ... while the cadence stays above R2's 166 spm and impact below R9's +15 % (R3: +20 %).
  EXPECT_GT(change(sim, kCadence).after, 168.0);
  EXPECT_GT(change(sim, kImpact).rel(), 0.03);
  EXPECT_LT(change(sim, kImpact).rel(), 0.13);
  EXPECT_LT(change(sim, kValr).rel(), 0.13);
  std::printf("fatigue: t_c %+.1f %%, cadence %+.1f %%, θ_IC %+.1f°, VALR %+.0f %%\n",
              100 * change(sim, kContact).rel(), 100 * change(sim, kCadence).rel(),
              change(sim, kKneeIc).abs(), 100 * change(sim, kValr).rel());
}

// A post-injury gait: asymmetric from the first step (before = the baseline minutes), and no
// more so after the onset, so R7's timing-SI sign and R6's zone time see no change.
TEST(Scenario, AsymmetryExceedsTheMODELThresholdsFromTheStartAndStaysPut) {
  const Simulator healthy(scenario_config(Scenario::kHealthy));
  const Simulator sim(scenario_config(Scenario::kAsymmetry));
  const Change tc_l = change(sim, kContact, Side::kLeft);
  const Change tc_r = change(sim, kContact, Side::kRight);
  const Change f_l = change(sim, kPeak, Side::kLeft);
  const Change f_r = change(sim, kPeak, Side::kRight);
  const Change k_l = change(sim, kKneePeak, Side::kLeft);
  const Change k_r = change(sim, kKneePeak, Side::kRight);
  // Healthy trained runners: SI ≈ 2 % for timing, ≈ 10 % for peak force (MODEL.md §7).
  const Change h_tc_l = change(healthy, kContact, Side::kLeft);
  const Change h_tc_r = change(healthy, kContact, Side::kRight);
  const Change h_f_l = change(healthy, kPeak, Side::kLeft);
  const Change h_f_r = change(healthy, kPeak, Side::kRight);
  EXPECT_LT(symmetry_index(h_tc_l.before, h_tc_r.before), 2.0);
  EXPECT_LT(symmetry_index(h_f_l.before, h_f_r.before), 5.0);
  // R8: SI > 4 % for contact time, > 15 % for peak force; Δθ_peak > 5°; before and after.
  for (const bool after : {false, true}) {
    auto at = [after](const Change& c) { return after ? c.after : c.before; };
    EXPECT_GT(symmetry_index(at(tc_l), at(tc_r)), 4.0) << (after ? "after" : "before");
    EXPECT_GT(symmetry_index(at(f_l), at(f_r)), 15.0) << (after ? "after" : "before");
    EXPECT_GT(std::abs(at(k_l) - at(k_r)), 5.0) << (after ? "after" : "before");
  }
  EXPECT_NEAR(tc_r.rel(), 0.0, 0.015);
  EXPECT_NEAR(f_r.rel(), 0.0, 0.02);
  std::printf("asymmetry: SI contact %.1f %% (healthy %.1f %%), SI peak force %.1f %% (%.1f %%)\n",
              symmetry_index(tc_l.before, tc_r.before),
              symmetry_index(h_tc_l.before, h_tc_r.before), symmetry_index(f_l.before, f_r.before),
              symmetry_index(h_f_l.before, h_f_r.before));
}

TEST(Scenario, WornShoesRaiseImpactMidfootPressureAndShiftTheCopMedially) {
  const SimConfig c = scenario_config(Scenario::kWornShoes);
  const Simulator sim(c);
  // MODEL.md §9 R9: IP/VALR +15 %, mean stance CoP_y > 3 mm medial, midfoot peak +20 %; the
  // impact stays below R3's +20 %.
  EXPECT_GT(std::max(change(sim, kImpact).rel(), change(sim, kValr).rel()), 0.15);
  EXPECT_LT(change(sim, kImpact).rel(), 0.20);
  EXPECT_LT(change(sim, kValr).rel(), 0.20);
  const double shift_mm = -change(sim, kCopY).abs() * foot_width_m(c.runner) * 1e3;
  EXPECT_GT(shift_mm, 3.0);
  EXPECT_GT(change(sim, kMidfoot).rel(), 0.20);
  EXPECT_GT(change(sim, kExcursion).rel(), 0.0);
  std::printf("worn shoes: impact %+.0f %%, CoP %.1f mm medial, midfoot peak %+.0f %%\n",
              100 * change(sim, kImpact).rel(), shift_mm, 100 * change(sim, kMidfoot).rel());
}

std::vector<std::pair<std::int64_t, fusion::PainReport>> pain_reports(Simulator& sim) {
  std::vector<std::pair<std::int64_t, fusion::PainReport>> out;
  for (const Emitted& e : collect(sim)) {
    if (const auto* p = std::get_if<fusion::PainReport>(&e.sample.payload)) {
      EXPECT_EQ(e.info.role, DeviceRole::kConsole);
      out.emplace_back(e.info.true_t_us, *p);
    }
  }
  return out;
}

TEST(Scenario, PainReportsAnteriorPainOfThreeOrMoreMidRun) {
  Simulator sim(scenario_config(Scenario::kPain));
  const auto reports = pain_reports(sim);
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_GT(reports[0].first, sim.onset_t_us());
  EXPECT_EQ(reports[0].second.score, 2);
  EXPECT_EQ(reports[1].second.score, 4);
  for (const auto& [t, p] : reports) {
    EXPECT_EQ(p.location, fusion::PainLocation::kAnterior);
    EXPECT_EQ(p.side, Side::kLeft);
    EXPECT_LT(t, sim.end_t_us());
  }
  Simulator healthy(scenario_config(Scenario::kHealthy));
  EXPECT_TRUE(pain_reports(healthy).empty());
}

TEST(Scenario, MixedBlendsFatigueShoeWearPainAndADropout) {
  Simulator sim(scenario_config(Scenario::kMixed));
  EXPECT_GT(change(sim, kContact).rel(), 0.03);
  EXPECT_GT(change(sim, kImpact).rel(), 0.15);
  EXPECT_EQ(pain_reports(sim).size(), 1u);
  ASSERT_EQ(sim.faults().size(), 1u);
  EXPECT_EQ(sim.faults()[0].spec.kind, FaultKind::kDropout);
}

// --- The fault scenario -------------------------------------------------------------------

class FaultScenario : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    sim_ = new Simulator(scenario_config(Scenario::kFaults));
    emitted_ = new std::vector<Emitted>(collect(*sim_));
  }
  static void TearDownTestSuite() {
    delete emitted_;
    delete sim_;
  }
  static std::vector<const Emitted*> of(DeviceRole role, bool data_only = true) {
    std::vector<const Emitted*> v;
    for (const Emitted& e : *emitted_) {
      if (e.info.role != role) continue;
      if (data_only && std::holds_alternative<fusion::DeviceStatus>(e.sample.payload)) continue;
      v.push_back(&e);
    }
    return v;
  }
  static const FaultTruth& fault(FaultKind kind, int nth = 0) {
    for (const FaultTruth& f : sim_->faults()) {
      if (f.spec.kind == kind && nth-- == 0) return f;
    }
    ADD_FAILURE() << "no fault " << fault_name(kind);
    return sim_->faults()[0];
  }
  static Simulator* sim_;
  static std::vector<Emitted>* emitted_;
};
Simulator* FaultScenario::sim_ = nullptr;
std::vector<Emitted>* FaultScenario::emitted_ = nullptr;

TEST_F(FaultScenario, ListsItsFaultsAfterTheBaseline) {
  ASSERT_EQ(sim_->faults().size(), 7u);
  for (const FaultTruth& f : sim_->faults()) {
    EXPECT_GT(f.start_t_us, sim_->onset_t_us()) << fault_name(f.spec.kind);
    EXPECT_LT(f.end_t_us, sim_->end_t_us()) << fault_name(f.spec.kind);
  }
}

TEST_F(FaultScenario, StillDeliversInArrivalOrder) {
  std::int64_t last = std::numeric_limits<std::int64_t>::min();
  for (const Emitted& e : *emitted_) {
    ASSERT_GE(e.sample.arrival_t_us, last);
    last = e.sample.arrival_t_us;
  }
}

TEST_F(FaultScenario, DropoutSilencesTheDeviceForSeveralSecondsWithASeqGap) {
  const FaultTruth& f = fault(FaultKind::kDropout);
  const auto samples = of(f.spec.device);
  std::int64_t max_gap = 0;
  std::int64_t gap_at = 0;
  std::int64_t seq_jump = 0;
  for (std::size_t i = 1; i < samples.size(); ++i) {
    const std::int64_t gap = samples[i]->info.true_t_us - samples[i - 1]->info.true_t_us;
    if (gap > max_gap) {
      max_gap = gap;
      gap_at = samples[i - 1]->info.true_t_us;
      seq_jump = static_cast<std::int64_t>(samples[i]->sample.device_seq) -
                 static_cast<std::int64_t>(samples[i - 1]->sample.device_seq);
    }
  }
  EXPECT_GE(max_gap, 4'900'000);
  EXPECT_LE(max_gap, 5'200'000);
  EXPECT_NEAR(static_cast<double>(gap_at), static_cast<double>(f.start_t_us), 200'000.0);
  EXPECT_GE(seq_jump, 49);  // 5 s of 10-sample frames at 100 Hz are lost
  // The devices without transport faults keep sending (gaps of one sample period).
  for (DeviceRole other : {DeviceRole::kInsoleLeft, DeviceRole::kKneeLeft}) {
    const auto v = of(other);
    for (std::size_t i = 1; i < v.size(); ++i) {
      ASSERT_LT(v[i]->info.true_t_us - v[i - 1]->info.true_t_us, 20'000);
    }
  }
}

TEST_F(FaultScenario, ClockJumpsForwardThenBackward) {
  const FaultTruth& fwd = fault(FaultKind::kClockJump, 0);
  const FaultTruth& back = fault(FaultKind::kClockJump, 1);
  EXPECT_EQ(fwd.spec.device, DeviceRole::kKneeLeft);
  const auto v = of(DeviceRole::kKneeLeft);
  std::vector<std::int64_t> jumps;
  for (std::size_t i = 1; i < v.size(); ++i) {
    const std::int64_t d = v[i]->sample.device_t_us - v[i - 1]->sample.device_t_us;
    if (d < 0 || d > 10'000) {
      jumps.push_back(d);
      const std::int64_t t = v[i]->info.true_t_us;
      EXPECT_TRUE(std::llabs(t - fwd.start_t_us) < 10'000 ||
                  std::llabs(t - back.start_t_us) < 10'000);
    }
  }
  ASSERT_EQ(jumps.size(), 2u);
  EXPECT_NEAR(static_cast<double>(jumps[0]), 1.5e6 + 5e3, 1e3);
  EXPECT_NEAR(static_cast<double>(jumps[1]), -3.0e6 + 5e3, 1e3);
}

TEST_F(FaultScenario, DuplicatedFrameRepeatsItsSamplesBitForBit) {
  const auto v = of(DeviceRole::kInsoleLeft, false);
  std::map<std::uint32_t, std::vector<const Emitted*>> by_seq;
  for (const Emitted* e : v) by_seq[e->sample.device_seq].push_back(e);
  int duplicated = 0;
  for (const auto& [seq, samples] : by_seq) {
    if (samples.size() <= 11) continue;  // one frame: 10 samples (+ a status)
    ++duplicated;
    const std::size_t half = samples.size() / 2;
    ASSERT_EQ(samples.size(), 2 * half);
    for (std::size_t i = 0; i < half; ++i) {
      testing::StreamHash a;
      testing::StreamHash b;
      fusion::Sample x = samples[i]->sample;
      fusion::Sample y = samples[half + i]->sample;
      EXPECT_FALSE(samples[i]->info.duplicate);
      EXPECT_TRUE(samples[half + i]->info.duplicate);
      EXPECT_GT(y.arrival_t_us, x.arrival_t_us);
      x.arrival_t_us = y.arrival_t_us = 0;
      a.add(x);
      b.add(y);
      EXPECT_EQ(a.value(), b.value());
    }
  }
  EXPECT_EQ(duplicated, 1);
}

TEST_F(FaultScenario, ReorderedFramesArriveOnceOutOfSequence) {
  const auto v = of(DeviceRole::kKneeRight);
  int decreases = 0;
  for (std::size_t i = 1; i < v.size(); ++i) {
    if (v[i]->sample.device_seq < v[i - 1]->sample.device_seq) {
      ++decreases;
      EXPECT_EQ(v[i]->sample.device_seq + 1, v[i - 1]->sample.device_seq);
      EXPECT_LT(v[i]->sample.device_t_us, v[i - 1]->sample.device_t_us);
    }
  }
  EXPECT_EQ(decreases, 1);
}

TEST_F(FaultScenario, SaturatingAndStuckCellsOnlyInsideTheirWindows) {
  const FaultTruth& sat = fault(FaultKind::kSaturatingCell);
  const FaultTruth& stuck = fault(FaultKind::kStuckCell);
  const float max_p = static_cast<float>(sim_->config().insole.max_pressure_pa);
  int saturated_inside = 0;
  for (const Emitted* e : of(sat.spec.device)) {
    const auto& in = std::get<fusion::InsoleSample>(e->sample.payload);
    const bool inside = e->info.true_t_us >= sat.start_t_us && e->info.true_t_us < sat.end_t_us;
    const bool at_max = in.pressure_pa[sat.spec.cell] == max_p;
    if (inside && at_max) ++saturated_inside;
    if (!inside) {
      ASSERT_FALSE(at_max) << "saturated outside the fault window";
    }
  }
  EXPECT_GT(saturated_inside, 100);
  int stuck_inside = 0;
  for (const Emitted* e : of(stuck.spec.device)) {
    const auto& in = std::get<fusion::InsoleSample>(e->sample.payload);
    const bool inside =
        e->info.true_t_us >= stuck.start_t_us && e->info.true_t_us < stuck.end_t_us;
    const bool at_value = in.pressure_pa[stuck.spec.cell] == static_cast<float>(stuck.spec.value);
    if (inside) {
      ASSERT_TRUE(at_value);
      ++stuck_inside;
    } else {
      ASSERT_FALSE(at_value);
    }
  }
  EXPECT_NEAR(stuck_inside, 100.0 * stuck.spec.duration_s, 2.0);
}

}  // namespace
}  // namespace kneeload::sim
