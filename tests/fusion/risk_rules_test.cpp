// The risk-rule engine (MODEL.md §9): every gait rule fires only after its persistence window,
// not for a shorter excursion, clears only past its clear threshold, respects its cooldown and
// carries its evidence; the immediate rules (R4, R5, R9 km, R10) and the sensor faults (F1..F4)
// fire and clear on their own terms; a healthy runner raises nothing in 30 minutes.
//
// Time is simulated: one evaluation per step every 0.35 s of runner time, nothing waits.
#include "kneeload/fusion/risk_rules.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <numbers>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "kneeload/fusion/load_model.hpp"
#include "kneeload/fusion/output.hpp"

namespace kneeload::fusion {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr std::int64_t kT0 = 2'000'000'000;
constexpr std::int64_t kStepUs = 350'000;
constexpr double kStepS = 0.35;
constexpr double kSpeed = 3.3;
const char* const kModelId = "pfj-mri-besier2005-m/b4+b8";

double rad(double deg) { return deg * std::numbers::pi / 180.0; }
std::int64_t at(double s) { return kT0 + std::llround(s * 1e6); }
double secs(std::int64_t t_us) { return static_cast<double>(t_us - kT0) / 1e6; }

// A healthy runner at 3.3 m/s, 170 spm, rearfoot strike.
GaitMetrics healthy_metrics() {
  GaitMetrics m;
  m.contact_time_s = 0.25;
  m.step_time_s = 60.0 / 170.0;
  m.cadence_spm = 170.0;
  m.peak_force_bw = 2.5;
  m.impact_peak_bw = 1.6;
  m.valr_bw_per_s = 50.0;
  m.pta_g = 5.0;
  m.knee_angle_ic_rad = rad(12.0);
  m.knee_angle_peak_rad = rad(42.0);
  m.pfj_stress_peak_mpa = 6.3;
  m.stress_time_integral_per_km_mpa_s = 800.0;
  m.itb_zone_time_s = 0.010;
  m.cop_y_m = 0.045;
  m.midfoot_peak_pressure_pa = 150e3;
  return m;
}

// Inputs as the session would fill them for a healthy runner whose rolling values equal the
// baseline. The shoe baseline speed is unknown, so R9 drift is silent unless a test sets it.
RuleInputs healthy_inputs(std::int64_t t_us) {
  RuleInputs in;
  in.t_us = t_us;
  in.rolling = {healthy_metrics(), healthy_metrics()};
  in.rolling_steps = {170, 170};
  in.baseline = in.rolling;
  in.baseline_ready = true;
  in.baseline_speed_mps = kSpeed;
  in.baseline_incline_fraction = 0.01;
  in.session_cop_y_m = {0.045, 0.045};
  in.session_cop_y_steps = {1000, 1000};
  in.belt_speed_mps = kSpeed;
  in.incline_fraction = 0.01;
  in.force_rate_hz = 100.0;
  in.pta_rate_hz = kNaN;
  in.session_distance_m = kSpeed * secs(t_us);
  in.session_damage_index = kNaN;
  in.history.max_session_distance_30d_m = 12'000.0;
  in.history.previous_two_weeks_mean_km = 30.0;
  in.history.week_km_before_session = 10.0;
  in.history.shoe_km_before_session = 200.0;
  in.history.shoe_baseline = {healthy_metrics(), healthy_metrics()};
  return in;
}

using Mutation = std::function<void(RuleInputs&)>;
const Mutation kHealthy = [](RuleInputs&) {};

// Drives a RiskRules through phases of simulated runner time and records every event.
class Drive {
 public:
  explicit Drive(const RiskRuleParams& params = {}) : rules_(params, kModelId) {}

  // One evaluation per step for t in [from_s, to_s).
  void run(double from_s, double to_s, const Mutation& mutate) {
    for (std::int64_t t = at(from_s); t < at(to_s); t += kStepUs) {
      RuleInputs in = healthy_inputs(t);
      mutate(in);
      rules_.evaluate(in, buf_);
      collect();
    }
  }
  void collect() {
    for (int k = 0; k < buf_.size(); ++k) events_.push_back(buf_[k]);
    buf_.clear();
  }
  RiskRules& rules() { return rules_; }
  RiskEventBuffer& buf() { return buf_; }
  const std::vector<RiskEvent>& events() const { return events_; }
  std::vector<RiskEvent> of(RuleId rule, EventPhase phase) const {
    std::vector<RiskEvent> out;
    for (const RiskEvent& e : events_) {
      if (e.rule == rule && e.phase == phase) out.push_back(e);
    }
    return out;
  }

 private:
  RiskRules rules_;
  RiskEventBuffer buf_;
  std::vector<RiskEvent> events_;
};

std::string describe(const std::vector<RiskEvent>& events) {
  std::string s;
  for (const RiskEvent& e : events) {
    s += std::string(rule_info(e.rule).code) +
         (e.phase == EventPhase::kOnset ? " onset" : " clear") + " side " +
         std::to_string(static_cast<int>(e.side)) + " sev " +
         std::to_string(static_cast<int>(e.severity)) + " at " + std::to_string(secs(e.t_us)) +
         " s; ";
  }
  return s.empty() ? "none" : s;
}

const Evidence* find_evidence(const RiskEvent& e, const char* metric) {
  for (int k = 0; k < e.evidence_count; ++k) {
    if (std::strcmp(e.evidence[static_cast<std::size_t>(k)].metric, metric) == 0) {
      return &e.evidence[static_cast<std::size_t>(k)];
    }
  }
  return nullptr;
}

// ---- The gait rules, one scenario each ----------------------------------------------------------

struct Scenario {
  const char* name;
  RuleId rule;
  Side side;
  Severity severity;
  Mutation bad;        // beyond the onset threshold
  Mutation band;       // between the clear and the onset threshold (hysteresis)
  const char* metric;  // evidence expected in the onset
  double value, baseline, threshold;
  double clear_threshold;  // the threshold the clear event carries
  RiskRuleParams params = {};
  Mutation base = kHealthy;  // applied under bad and band too
};

void PrintTo(const Scenario& sc, std::ostream* os) { *os << sc.name; }

// R9's per-sign mechanics are tested one sign at a time, so these cases lower drift_min_signs
// to 1; SingleShoeSignDoesNotFireAtTheDefault checks the default of 2.
RiskRuleParams one_shoe_sign() {
  RiskRuleParams p;
  p.shoes.drift_min_signs = 1;
  return p;
}

std::vector<Scenario> scenarios() {
  std::vector<Scenario> s;
  s.push_back({"R1_PfjStressAboveBaseline", RuleId::kPfjOverload, Side::kLeft, Severity::kWarn,
               [](RuleInputs& in) { in.rolling[0].pfj_stress_peak_mpa = 6.3 * 1.20; },
               [](RuleInputs& in) { in.rolling[0].pfj_stress_peak_mpa = 6.3 * 1.12; },
               "pfj_stress_peak_mpa", 6.3 * 1.20, 6.3, 6.3 * 1.15, 6.3 * 1.10});
  s.push_back({"R1_PerKmStressIntegralAboveBaseline", RuleId::kPfjOverload, Side::kRight,
               Severity::kWarn,
               [](RuleInputs& in) { in.rolling[1].stress_time_integral_per_km_mpa_s = 960.0; },
               [](RuleInputs& in) { in.rolling[1].stress_time_integral_per_km_mpa_s = 900.0; },
               "stress_time_integral_per_km_mpa_s", 960.0, 800.0, 920.0, 880.0});
  s.push_back(
      {"R2_LowCadenceAtSpeed", RuleId::kLowCadence, Side::kNone, Severity::kInfo,
       [](RuleInputs& in) { in.rolling[0].cadence_spm = in.rolling[1].cadence_spm = 160.0; },
       [](RuleInputs& in) { in.rolling[0].cadence_spm = in.rolling[1].cadence_spm = 167.0; },
       "cadence_spm", 160.0, 170.0, 166.0, 168.0});
  s.push_back(
      {"R2_BelowPreferredWithDeepFlexion",
       RuleId::kLowCadence,
       Side::kNone,
       Severity::kInfo,
       [](RuleInputs& in) {
         in.rolling[0].cadence_spm = in.rolling[1].cadence_spm = 175.0;
         in.rolling[0].knee_angle_peak_rad = rad(46.5);
       },
       [](RuleInputs& in) {
         in.rolling[0].cadence_spm = in.rolling[1].cadence_spm = 180.0;
         in.rolling[0].knee_angle_peak_rad = rad(46.5);
       },
       "cadence_spm",
       175.0,
       190.0,
       0.95 * 190.0,
       168.0,
       {},
       [](RuleInputs& in) { in.baseline[0].cadence_spm = in.baseline[1].cadence_spm = 190.0; }});
  s.push_back({"R3_ValrAboveBaselineAtInsoleRate", RuleId::kImpact, Side::kLeft, Severity::kInfo,
               [](RuleInputs& in) { in.rolling[0].valr_bw_per_s = 62.5; },
               [](RuleInputs& in) { in.rolling[0].valr_bw_per_s = 58.0; }, "valr_bw_per_s", 62.5,
               50.0, 60.0, 57.5});
  s.push_back({"R6_ItbZoneTimeUpWithIcInTheZone", RuleId::kItbsPattern, Side::kLeft,
               Severity::kInfo,
               [](RuleInputs& in) {
                 in.rolling[0].itb_zone_time_s = 0.016;
                 in.rolling[0].knee_angle_ic_rad = rad(22.0);
               },
               [](RuleInputs& in) {
                 in.rolling[0].itb_zone_time_s = 0.014;
                 in.rolling[0].knee_angle_ic_rad = rad(22.0);
               },
               "itb_zone_time_s", 0.016, 0.010, 0.015, 0.0125});
  s.push_back({"R7_ContactTimeAndKneeIcDrift", RuleId::kFatigueDrift, Side::kNone, Severity::kWarn,
               [](RuleInputs& in) {
                 for (auto& r : in.rolling) {
                   r.contact_time_s = 0.265;
                   r.knee_angle_ic_rad = rad(16.0);
                 }
               },
               [](RuleInputs& in) {
                 for (auto& r : in.rolling) {
                   r.contact_time_s = 0.259;
                   r.knee_angle_ic_rad = rad(14.5);
                 }
               },
               "contact_time_s", 0.265, 0.25, 0.25 * 1.05, 0.25 * 1.035});
  s.push_back({"R8_ContactTimeAsymmetry", RuleId::kAsymmetry, Side::kNone, Severity::kWarn,
               [](RuleInputs& in) { in.rolling[1].contact_time_s = 0.262; },
               [](RuleInputs& in) { in.rolling[1].contact_time_s = 0.258; }, "contact_time_si_pct",
               100.0 * 0.012 / 0.256, 0.0, 4.0, 3.0});
  s.push_back({"R8_PeakFlexionDifference", RuleId::kAsymmetry, Side::kNone, Severity::kWarn,
               [](RuleInputs& in) { in.rolling[1].knee_angle_peak_rad = rad(42.0 + 6.0); },
               [](RuleInputs& in) { in.rolling[1].knee_angle_peak_rad = rad(42.0 + 4.5); },
               "knee_angle_peak_diff_deg", 6.0, 0.0, 5.0, 4.0});
  s.push_back({"R9_MidfootPressureDriftInTheseShoes",
               RuleId::kShoes,
               Side::kRight,
               Severity::kWarn,
               [](RuleInputs& in) { in.rolling[1].midfoot_peak_pressure_pa = 150e3 * 1.25; },
               [](RuleInputs& in) { in.rolling[1].midfoot_peak_pressure_pa = 150e3 * 1.17; },
               "midfoot_peak_pressure_kpa",
               150.0 * 1.25,
               150.0,
               150.0 * 1.20,
               150.0 * 1.15,
               one_shoe_sign(),
               [](RuleInputs& in) { in.history.shoe_baseline_speed_mps = kSpeed; }});
  s.push_back({"R9_MedialCopShiftOverManySteps",
               RuleId::kShoes,
               Side::kLeft,
               Severity::kWarn,
               [](RuleInputs& in) { in.session_cop_y_m[0] = 0.045 - 0.004; },
               [](RuleInputs& in) { in.session_cop_y_m[0] = 0.045 - 0.0025; },
               "cop_y_mm",
               41.0,
               45.0,
               42.0,
               43.0,
               one_shoe_sign(),
               [](RuleInputs& in) { in.history.shoe_baseline_speed_mps = kSpeed; }});
  return s;
}

class GaitRule : public ::testing::TestWithParam<Scenario> {
 protected:
  Mutation with_base(const Mutation& m) const {
    const Scenario& sc = GetParam();
    return [&sc, m](RuleInputs& in) {
      sc.base(in);
      m(in);
    };
  }
};

TEST_P(GaitRule, FiresOnceAfterItsPersistenceWindowWithEvidence) {
  const Scenario& sc = GetParam();
  Drive d(sc.params);
  d.run(0.0, 600.0, with_base(kHealthy));
  ASSERT_TRUE(d.events().empty()) << "healthy prefix raised: " << describe(d.events());
  d.run(600.0, 900.0, with_base(sc.bad));

  ASSERT_EQ(d.events().size(), 1u) << "expected exactly one onset, got " << describe(d.events());
  const RiskEvent& e = d.events()[0];
  EXPECT_EQ(e.rule, sc.rule) << describe(d.events());
  EXPECT_EQ(e.phase, EventPhase::kOnset);
  EXPECT_EQ(e.side, sc.side);
  EXPECT_EQ(e.severity, sc.severity) << "expected severity " << static_cast<int>(sc.severity)
                                     << ", got " << static_cast<int>(e.severity);
  EXPECT_EQ(e.device, UINT32_MAX);
  EXPECT_STREQ(e.model_id, kModelId);
  const double onset_s = secs(e.t_us);
  EXPECT_GE(onset_s, 600.0 + 120.0) << "onset before the 120 s persistence window";
  EXPECT_LT(onset_s, 600.0 + 120.0 + kStepS) << "onset later than the first step after 120 s";

  const Evidence* ev = find_evidence(e, sc.metric);
  ASSERT_NE(ev, nullptr) << "no evidence '" << sc.metric << "' among " << int{e.evidence_count};
  EXPECT_NEAR(ev->value, sc.value, 1e-3 * std::fabs(sc.value) + 1e-5)
      << sc.metric << " value: expected " << sc.value << ", got " << ev->value;
  EXPECT_NEAR(ev->baseline, sc.baseline, 1e-3 * std::fabs(sc.baseline) + 1e-5)
      << sc.metric << " baseline: expected " << sc.baseline << ", got " << ev->baseline;
  EXPECT_NEAR(ev->threshold, sc.threshold, 1e-3 * std::fabs(sc.threshold) + 1e-5)
      << sc.metric << " threshold: expected " << sc.threshold << ", got " << ev->threshold;
  EXPECT_LE(e.evidence_count, kMaxEvidence);
}

TEST(RiskRules, SingleShoeSignDoesNotFireAtTheDefault) {
  // Midfoot pressure alone (+25 %), as in the R9 case above but with the default two signs:
  // a shoe-specific sign without a second one is not enough to say "check the shoes".
  const Scenario midfoot = scenarios()[scenarios().size() - 2];
  ASSERT_EQ(midfoot.rule, RuleId::kShoes);
  Drive d(RiskRuleParams{});
  d.run(0.0, 600.0, [&](RuleInputs& in) { kHealthy(in); midfoot.base(in); });
  d.run(600.0, 900.0, [&](RuleInputs& in) { kHealthy(in); midfoot.base(in); midfoot.bad(in); });
  EXPECT_TRUE(d.events().empty()) << "one sign raised: " << describe(d.events());
  d.run(900.0, 1200.0, [&](RuleInputs& in) {
    kHealthy(in);
    midfoot.base(in);
    midfoot.bad(in);
    in.rolling[1].impact_peak_bw *= 1.20;  // a second sign: impact +20 % on the same foot
  });
  ASSERT_FALSE(d.events().empty()) << "two signs must raise R9";
  EXPECT_EQ(d.events()[0].rule, RuleId::kShoes);
}

TEST_P(GaitRule, AnExcursionShorterThanThePersistenceWindowRaisesNothing) {
  const Scenario& sc = GetParam();
  Drive d(sc.params);
  d.run(0.0, 600.0, with_base(kHealthy));
  d.run(600.0, 710.0, with_base(sc.bad));  // 110 s < 120 s
  d.run(710.0, 800.0, with_base(kHealthy));
  d.run(800.0, 900.0, with_base(sc.bad));  // another 100 s: the count restarted
  d.run(900.0, 1200.0, with_base(kHealthy));
  EXPECT_TRUE(d.events().empty()) << "expected no events, got " << describe(d.events());
}

TEST_P(GaitRule, ClearsOnlyPastTheClearThreshold) {
  const Scenario& sc = GetParam();
  Drive d(sc.params);
  d.run(0.0, 600.0, with_base(kHealthy));
  d.run(600.0, 800.0, with_base(sc.bad));
  d.run(800.0, 1000.0, with_base(sc.band));  // hysteresis band: stays active
  ASSERT_EQ(d.events().size(), 1u) << "expected only the onset, got " << describe(d.events());
  EXPECT_TRUE(d.rules().active(sc.rule, sc.side));
  d.run(1000.0, 1100.0, with_base(kHealthy));
  ASSERT_EQ(d.events().size(), 2u) << "expected onset and clear, got " << describe(d.events());
  const RiskEvent& c = d.events()[1];
  EXPECT_EQ(c.rule, sc.rule);
  EXPECT_EQ(c.phase, EventPhase::kClear);
  EXPECT_EQ(c.side, sc.side);
  EXPECT_STREQ(c.model_id, kModelId);
  const double clear_s = secs(c.t_us);
  EXPECT_GE(clear_s, 1000.0 + 10.0) << "clear before the 10 s clear hold";
  EXPECT_LT(clear_s, 1000.0 + 10.0 + kStepS);
  const Evidence* ev = find_evidence(c, sc.metric);
  ASSERT_NE(ev, nullptr);
  EXPECT_NEAR(ev->threshold, sc.clear_threshold, 1e-3 * std::fabs(sc.clear_threshold) + 1e-5)
      << "the clear carries the clear threshold: expected " << sc.clear_threshold << ", got "
      << ev->threshold;
  EXPECT_FALSE(d.rules().active(sc.rule, sc.side));
}

TEST_P(GaitRule, RespectsTheCooldownAfterAClear) {
  const Scenario& sc = GetParam();
  Drive d(sc.params);
  d.run(0.0, 600.0, with_base(kHealthy));
  d.run(600.0, 760.0, with_base(sc.bad));
  d.run(760.0, 780.0, with_base(kHealthy));
  ASSERT_EQ(d.events().size(), 2u) << describe(d.events());
  const double clear_s = secs(d.events()[1].t_us);
  d.run(780.0, 1400.0, with_base(sc.bad));
  ASSERT_EQ(d.events().size(), 3u) << "expected a second onset, got " << describe(d.events());
  const double second_s = secs(d.events()[2].t_us);
  const double earliest = clear_s + 300.0 + 120.0;  // cooldown, then persistence
  EXPECT_GE(second_s, earliest) << "second onset at " << second_s << " s, expected >= " << earliest;
  EXPECT_LT(second_s, earliest + 2 * kStepS);
}

INSTANTIATE_TEST_SUITE_P(RiskRules, GaitRule, ::testing::ValuesIn(scenarios()),
                         [](const ::testing::TestParamInfo<Scenario>& param) {
                           return std::string(param.param.name);
                         });

// ---- Rule specifics -----------------------------------------------------------------------------

TEST(RiskRules, EventsCarryTheRuleTableEvidenceTagAndAdvice) {
  Drive d;
  d.run(0.0, 200.0, [](RuleInputs& in) { in.rolling[0].pfj_stress_peak_mpa = 8.0; });
  ASSERT_EQ(d.events().size(), 1u) << describe(d.events());
  const RuleInfo& info = rule_info(d.events()[0].rule);
  EXPECT_STREQ(info.code, "R1");
  EXPECT_EQ(info.evidence, EvidenceTag::kHeuristic);
  EXPECT_NE(std::string(info.advice).find("cadence"), std::string::npos) << info.advice;
}

TEST(RiskRules, NoBaselineKeepsTheBaselineRulesSilent) {
  Drive d;
  d.run(0.0, 600.0, [](RuleInputs& in) {
    in.baseline_ready = false;
    in.rolling[0].pfj_stress_peak_mpa = 9.0;
    in.rolling[0].itb_zone_time_s = 0.03;
    in.rolling[0].knee_angle_ic_rad = rad(22.0);
    for (auto& r : in.rolling) r.contact_time_s = 0.3;
  });
  EXPECT_TRUE(d.events().empty()) << describe(d.events());
}

TEST(RiskRules, ImpactAbsoluteValrCutoffNeedsFiveHundredHertz) {
  // VALR 70 BW/s is only +4 % over a 67 BW/s baseline: the relative part stays quiet, so only
  // the absolute 66 BW/s cutoff can fire, and only with force sampled at >= 500 Hz.
  auto valr70 = [](double rate) {
    return [rate](RuleInputs& in) {
      in.baseline[0].valr_bw_per_s = in.baseline[1].valr_bw_per_s = 67.0;
      in.rolling[0].valr_bw_per_s = 70.0;  // +4 %: the relative part stays quiet
      in.rolling[1].valr_bw_per_s = 62.0;  // below 66 and an SI of 12 % (R8 stays quiet)
      in.force_rate_hz = rate;
    };
  };
  Drive slow;
  slow.run(0.0, 400.0, valr70(100.0));
  EXPECT_TRUE(slow.events().empty()) << "at 100 Hz: " << describe(slow.events());
  Drive fast;
  fast.run(0.0, 400.0, valr70(1000.0));
  ASSERT_EQ(fast.events().size(), 1u) << "at 1000 Hz: " << describe(fast.events());
  const Evidence* v = find_evidence(fast.events()[0], "valr_bw_per_s");
  ASSERT_NE(v, nullptr);
  EXPECT_FLOAT_EQ(v->threshold, 66.0f);
  const Evidence* rate = find_evidence(fast.events()[0], "force_rate_hz");
  ASSERT_NE(rate, nullptr) << "the event says which sampling rate its value came from";
  EXPECT_FLOAT_EQ(rate->value, 1000.0f);
  EXPECT_FLOAT_EQ(rate->threshold, 500.0f);
}

TEST(RiskRules, ImpactPtaCutoffNeedsAFastShankImu) {
  auto pta9 = [](double rate) {
    return [rate](RuleInputs& in) {
      in.rolling[1].pta_g = 9.0;
      in.baseline[1].pta_g = 8.5;
      in.pta_rate_hz = rate;
    };
  };
  Drive slow;
  slow.run(0.0, 400.0, pta9(100.0));
  EXPECT_TRUE(slow.events().empty()) << describe(slow.events());
  Drive fast;
  fast.run(0.0, 400.0, pta9(1000.0));
  ASSERT_EQ(fast.events().size(), 1u) << describe(fast.events());
  EXPECT_EQ(fast.events()[0].side, Side::kRight);
  const Evidence* pta = find_evidence(fast.events()[0], "pta_g");
  ASSERT_NE(pta, nullptr);
  EXPECT_FLOAT_EQ(pta->threshold, 8.0f);
}

TEST(RiskRules, ItbsPatternEscalatesToWarnOnADecline) {
  Drive d;
  auto itb = [](RuleInputs& in) {
    in.rolling[0].itb_zone_time_s = 0.016;
    in.rolling[0].knee_angle_ic_rad = rad(22.0);
  };
  d.run(0.0, 200.0, itb);
  ASSERT_EQ(d.events().size(), 1u) << describe(d.events());
  EXPECT_EQ(d.events()[0].severity, Severity::kInfo);
  d.run(200.0, 300.0, [&](RuleInputs& in) {
    itb(in);
    in.incline_fraction = -0.03;
  });
  ASSERT_EQ(d.events().size(), 2u) << describe(d.events());
  const RiskEvent& e = d.events()[1];
  EXPECT_EQ(e.phase, EventPhase::kOnset) << "an escalation is a new onset at the higher severity";
  EXPECT_EQ(e.severity, Severity::kWarn);
  EXPECT_NEAR(secs(e.t_us), 200.0, kStepS) << "escalation is immediate once active";
  const Evidence* incline = find_evidence(e, "incline_fraction");
  ASSERT_NE(incline, nullptr);
  EXPECT_FLOAT_EQ(incline->value, -0.03f);
  EXPECT_FLOAT_EQ(incline->threshold, -0.02f);
  d.run(300.0, 400.0, kHealthy);
  ASSERT_EQ(d.events().size(), 3u) << describe(d.events());
  EXPECT_EQ(d.events()[2].phase, EventPhase::kClear);
  EXPECT_EQ(d.events()[2].severity, Severity::kWarn) << "the clear carries the highest severity";
}

TEST(RiskRules, ItbsPatternIsWarnAfterALateralKneePainReport) {
  Drive d;
  d.rules().on_pain(at(10.0), PainReport{2, Side::kLeft, PainLocation::kLateral}, kNaN, d.buf());
  d.collect();
  ASSERT_TRUE(d.events().empty()) << "pain 2/10 is below R10's 3/10: " << describe(d.events());
  d.run(20.0, 200.0, [](RuleInputs& in) {
    in.rolling[0].itb_zone_time_s = 0.016;
    in.rolling[0].knee_angle_ic_rad = rad(22.0);
  });
  ASSERT_EQ(d.events().size(), 1u) << describe(d.events());
  EXPECT_EQ(d.events()[0].severity, Severity::kWarn);
  const Evidence* pain = find_evidence(d.events()[0], "lateral_knee_pain_score");
  ASSERT_NE(pain, nullptr);
  EXPECT_FLOAT_EQ(pain->value, 2.0f);
}

TEST(RiskRules, FatigueDriftIsSilentWhenTheSpeedChangedMoreThanFivePercent) {
  Drive d;
  d.run(0.0, 600.0, [](RuleInputs& in) {
    in.belt_speed_mps = kSpeed * 1.06;
    for (auto& r : in.rolling) {
      r.contact_time_s = 0.27;
      r.knee_angle_ic_rad = rad(16.0);
    }
  });
  EXPECT_TRUE(d.of(RuleId::kFatigueDrift, EventPhase::kOnset).empty()) << describe(d.events());
}

TEST(RiskRules, FatigueDriftNeedsTwoChangesNotOne) {
  Drive d;
  d.run(0.0, 600.0, [](RuleInputs& in) {
    for (auto& r : in.rolling) r.contact_time_s = 0.28;  // +12 %, but alone
  });
  EXPECT_TRUE(d.events().empty()) << describe(d.events());
}

TEST(RiskRules, AGapInTheStepsRestartsThePersistenceCount) {
  Drive d;
  auto bad = [](RuleInputs& in) { in.rolling[0].pfj_stress_peak_mpa = 8.0; };
  d.run(0.0, 100.0, bad);
  d.run(130.0, 200.0, bad);  // 30 s without steps (> max_gap_s = 10 s)
  EXPECT_TRUE(d.events().empty()) << describe(d.events());
  d.run(200.0, 260.0, bad);
  ASSERT_EQ(d.events().size(), 1u) << describe(d.events());
  EXPECT_GE(secs(d.events()[0].t_us), 130.0 + 120.0);
}

TEST(RiskRules, SessionSpikeEscalatesInfoWarnHighWithTheThirtyDayMax) {
  // 30-day max 5 km; at 3.3 m/s the session passes 5.5 km (×1.1) at 1667 s, 6.5 km (×1.3) at
  // 1970 s and 10 km (×2) at 3030 s. Frandsen 2025 [P].
  Drive d;
  d.run(0.0, 3100.0, [](RuleInputs& in) { in.history.max_session_distance_30d_m = 5000.0; });
  const auto on = d.of(RuleId::kSessionSpike, EventPhase::kOnset);
  ASSERT_EQ(on.size(), 3u) << describe(d.events());
  const Severity expected_sev[] = {Severity::kInfo, Severity::kWarn, Severity::kHigh};
  const double expected_t[] = {5500.0 / kSpeed, 6500.0 / kSpeed, 10000.0 / kSpeed};
  const double expected_thr[] = {5500.0, 6500.0, 10000.0};
  for (std::size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(on[k].severity, expected_sev[k]) << "onset " << k;
    EXPECT_NEAR(secs(on[k].t_us), expected_t[k], kStepS) << "onset " << k;
    const Evidence* ev = find_evidence(on[k], "session_distance_m");
    ASSERT_NE(ev, nullptr);
    EXPECT_FLOAT_EQ(ev->baseline, 5000.0f);
    EXPECT_FLOAT_EQ(ev->threshold, static_cast<float>(expected_thr[k]));
  }
  EXPECT_EQ(d.events().size(), 3u) << "no clears while the distance keeps growing";
  d.rules().end_session(at(3100.0), d.buf());
  d.collect();
  const auto clears = d.of(RuleId::kSessionSpike, EventPhase::kClear);
  ASSERT_EQ(clears.size(), 1u) << describe(d.events());
  EXPECT_EQ(clears[0].severity, Severity::kHigh);
  EXPECT_FALSE(d.rules().active(RuleId::kSessionSpike, Side::kNone));
}

TEST(RiskRules, SessionSpikeAlsoReadsTheDamageIndex) {
  Drive d;
  d.run(0.0, 10.0, [](RuleInputs& in) {
    in.history.max_session_damage_30d = 1000.0;
    in.session_damage_index = 1400.0;
  });
  ASSERT_EQ(d.events().size(), 1u) << describe(d.events());
  EXPECT_EQ(d.events()[0].severity, Severity::kWarn);
  EXPECT_NE(find_evidence(d.events()[0], "session_damage_index"), nullptr);
}

TEST(RiskRules, HistoryRulesAreSilentWhenTheHistoryIsUnknown) {
  Drive d;
  d.run(0.0, 600.0, [](RuleInputs& in) {
    in.session_distance_m = 1e6;
    in.history = TrainingHistory{};
  });
  EXPECT_TRUE(d.events().empty()) << describe(d.events());
}

TEST(RiskRules, WeeklyJumpFiresWhenTheWeekPassesThirtyPercentOverTheTwoWeekMean) {
  // 20 km/week before; 24 km already this week; 26 km is ×1.3: the session's 2 km at 606 s.
  Drive d;
  d.run(0.0, 900.0, [](RuleInputs& in) {
    in.history.previous_two_weeks_mean_km = 20.0;
    in.history.week_km_before_session = 24.0;
  });
  ASSERT_EQ(d.events().size(), 1u) << describe(d.events());
  const RiskEvent& e = d.events()[0];
  EXPECT_EQ(e.rule, RuleId::kWeeklyJump);
  EXPECT_EQ(e.severity, Severity::kWarn);
  EXPECT_NEAR(secs(e.t_us), 2000.0 / kSpeed, kStepS);
  const Evidence* ev = find_evidence(e, "week_km");
  ASSERT_NE(ev, nullptr);
  EXPECT_FLOAT_EQ(ev->baseline, 20.0f);
  EXPECT_FLOAT_EQ(ev->threshold, 26.0f);
}

TEST(RiskRules, ShoesWarnPastSixHundredKmAndHighPastEightHundred) {
  Drive warn;
  warn.run(0.0, 900.0, [](RuleInputs& in) { in.history.shoe_km_before_session = 599.0; });
  ASSERT_EQ(warn.events().size(), 1u) << describe(warn.events());
  EXPECT_EQ(warn.events()[0].severity, Severity::kWarn);
  EXPECT_EQ(warn.events()[0].side, Side::kNone);
  EXPECT_NEAR(secs(warn.events()[0].t_us), 1000.0 / kSpeed, kStepS);
  Drive high;
  high.run(0.0, 900.0, [](RuleInputs& in) { in.history.shoe_km_before_session = 799.0; });
  const auto on = high.of(RuleId::kShoes, EventPhase::kOnset);
  ASSERT_EQ(on.size(), 2u) << describe(high.events());
  EXPECT_EQ(on[0].severity, Severity::kWarn);
  EXPECT_EQ(on[1].severity, Severity::kHigh);
  const Evidence* km = find_evidence(on[1], "shoe_km");
  ASSERT_NE(km, nullptr);
  EXPECT_FLOAT_EQ(km->threshold, 800.0f);
}

TEST(RiskRules, ShoeDriftNeedsTheSameSpeedAsTheShoeBaseline) {
  Drive d;
  d.run(0.0, 600.0, [](RuleInputs& in) {
    in.history.shoe_baseline_speed_mps = kSpeed * 0.9;
    in.rolling[1].midfoot_peak_pressure_pa = 200e3;
  });
  EXPECT_TRUE(d.events().empty()) << describe(d.events());
}

TEST(RiskRules, PainReportIsImmediateHighAndClearsOnALowerReport) {
  Drive d;
  RiskRules& r = d.rules();
  r.on_pain(at(5.0), PainReport{2, Side::kRight, PainLocation::kAnterior}, kNaN, d.buf());
  d.collect();
  EXPECT_TRUE(d.events().empty()) << describe(d.events());
  r.on_pain(at(10.0), PainReport{4, Side::kRight, PainLocation::kAnterior}, 5.0, d.buf());
  d.collect();
  ASSERT_EQ(d.events().size(), 1u) << describe(d.events());
  const RiskEvent& e = d.events()[0];
  EXPECT_EQ(e.rule, RuleId::kPainReport);
  EXPECT_EQ(e.severity, Severity::kHigh);
  EXPECT_EQ(e.phase, EventPhase::kOnset);
  EXPECT_EQ(e.side, Side::kRight);
  EXPECT_EQ(e.t_us, at(10.0));
  const Evidence* score = find_evidence(e, "pain_score");
  ASSERT_NE(score, nullptr);
  EXPECT_FLOAT_EQ(score->value, 4.0f);
  EXPECT_FLOAT_EQ(score->threshold, 3.0f);
  const Evidence* prev = find_evidence(e, "previous_session_pain_score");
  ASSERT_NE(prev, nullptr) << "repeated pain across sessions travels as evidence";
  EXPECT_FLOAT_EQ(prev->value, 5.0f);
  r.on_pain(at(12.0), PainReport{6, Side::kRight, PainLocation::kAnterior}, 5.0, d.buf());
  d.collect();
  EXPECT_EQ(d.events().size(), 1u) << "still active: no second onset";
  r.on_pain(at(20.0), PainReport{1, Side::kRight, PainLocation::kAnterior}, 5.0, d.buf());
  d.collect();
  ASSERT_EQ(d.events().size(), 2u) << describe(d.events());
  EXPECT_EQ(d.events()[1].phase, EventPhase::kClear);
  EXPECT_EQ(d.events()[1].t_us, at(20.0));
}

TEST(RiskRules, EndSessionClearsActiveRulesButKeepsSensorFaults) {
  Drive d;
  RiskRules& r = d.rules();
  r.on_pain(at(1.0), PainReport{5, Side::kNone, PainLocation::kUnspecified}, kNaN, d.buf());
  r.on_device_stale(at(2.0), 11, SensorKind::kInsole, Side::kRight, true, 3.0, d.buf());
  d.collect();
  ASSERT_EQ(d.events().size(), 2u) << describe(d.events());
  r.end_session(at(3.0), d.buf());
  d.collect();
  ASSERT_EQ(d.events().size(), 3u) << describe(d.events());
  EXPECT_EQ(d.events()[2].rule, RuleId::kPainReport);
  EXPECT_EQ(d.events()[2].phase, EventPhase::kClear);
  EXPECT_TRUE(r.fault_active(RuleId::kSensorDropout, 11));
}

// ---- Sensor faults ------------------------------------------------------------------------------

TEST(SensorFaults, DropoutOnsetAndClearFollowTheCallersEdges) {
  Drive d;
  RiskRules& r = d.rules();
  r.on_device_stale(at(1.0), 12, SensorKind::kKnee, Side::kLeft, true, 2.5, d.buf());
  r.on_device_stale(at(1.5), 12, SensorKind::kKnee, Side::kLeft, true, 3.0, d.buf());
  r.on_device_stale(at(4.0), 12, SensorKind::kKnee, Side::kLeft, false, kNaN, d.buf());
  d.collect();
  ASSERT_EQ(d.events().size(), 2u) << describe(d.events());
  const RiskEvent& on = d.events()[0];
  EXPECT_EQ(on.rule, RuleId::kSensorDropout);
  EXPECT_EQ(on.phase, EventPhase::kOnset);
  EXPECT_EQ(on.device, 12u);
  EXPECT_EQ(on.side, Side::kLeft);
  EXPECT_EQ(on.severity, Severity::kWarn);
  const Evidence* silent = find_evidence(on, "silent_s");
  ASSERT_NE(silent, nullptr);
  EXPECT_FLOAT_EQ(silent->value, 2.5f);
  EXPECT_EQ(d.events()[1].phase, EventPhase::kClear);
  EXPECT_EQ(d.events()[1].t_us, at(4.0));
}

TEST(SensorFaults, ClockJumpClearsAfterThirtyQuietSeconds) {
  Drive d;
  RiskRules& r = d.rules();
  r.on_clock_jump(at(10.0), 14, SensorKind::kTreadmill, Side::kNone, -2.0, d.buf());
  d.collect();
  ASSERT_EQ(d.events().size(), 1u) << describe(d.events());
  EXPECT_EQ(d.events()[0].rule, RuleId::kClockJump);
  EXPECT_EQ(d.events()[0].device, 14u);
  r.tick(at(39.9), d.buf());
  d.collect();
  EXPECT_EQ(d.events().size(), 1u) << "cleared early: " << describe(d.events());
  r.tick(at(40.0), d.buf());
  d.collect();
  ASSERT_EQ(d.events().size(), 2u) << describe(d.events());
  EXPECT_EQ(d.events()[1].phase, EventPhase::kClear);
  EXPECT_EQ(d.events()[1].t_us, at(40.0));
}

// 16 cells at 100 Hz: a stance every 0.7 s of 0.25 s in which every cell's pressure follows a
// half sine scaled per cell, plus a small per-sample wobble; zeros in swing.
struct CellStream {
  std::array<float, 16> p{};
  void at_sample(std::int64_t k) {
    const double t = static_cast<double>(k) * 0.01;
    const double phase = std::fmod(t, 0.7);
    const double load = phase < 0.25 ? std::sin(std::numbers::pi * phase / 0.25) : 0.0;
    for (int c = 0; c < 16; ++c) {
      const double wobble = 1.0 + 0.01 * static_cast<double>((k * 7 + c * 3) % 5);
      p[static_cast<std::size_t>(c)] = static_cast<float>(load * (100e3 + 10e3 * c) * wobble);
    }
  }
};

TEST(SensorFaults, SaturationFiresOnARunLongerThanFiveSamplesAndClearsAfterTenQuietSeconds) {
  Drive d;
  RiskRules& r = d.rules();
  CellStream s;
  auto feed = [&](std::int64_t from, std::int64_t to, int run) {
    for (std::int64_t k = from; k < to; ++k) {
      s.at_sample(k);
      const std::int64_t in_stance = k % 70;
      if (in_stance >= 5 && in_stance < 5 + run) s.p[0] = 500e3f;
      r.on_insole_cells(at(static_cast<double>(k) * 0.01), 10, Side::kLeft, s.p, d.buf());
      d.collect();
    }
  };
  feed(0, 2000, 5);  // runs of exactly 5 samples: not "more than 5"
  EXPECT_TRUE(d.events().empty()) << describe(d.events());
  feed(2000, 3000, 6);
  ASSERT_EQ(d.events().size(), 1u) << describe(d.events());
  const RiskEvent& e = d.events()[0];
  EXPECT_EQ(e.rule, RuleId::kSensorSaturation);
  EXPECT_EQ(e.device, 10u);
  EXPECT_EQ(e.t_us, at(20.40)) << "the sixth saturated sample of the first stance after 20 s";
  const Evidence* cell = find_evidence(e, "cell_index");
  ASSERT_NE(cell, nullptr);
  EXPECT_FLOAT_EQ(cell->value, 0.0f);
  const Evidence* run = find_evidence(e, "saturated_samples");
  ASSERT_NE(run, nullptr);
  EXPECT_FLOAT_EQ(run->value, 6.0f);
  EXPECT_FLOAT_EQ(run->threshold, 5.0f);
  feed(3000, 5000, 0);
  ASSERT_EQ(d.events().size(), 2u) << describe(d.events());
  EXPECT_EQ(d.events()[1].phase, EventPhase::kClear);
  // The last run's sixth sample was k = 2950; Off from 29.51 s, the clear 10 s later.
  EXPECT_EQ(d.events()[1].t_us, at(39.51));
}

TEST(SensorFaults, StuckCellFiresAfterTenSecondsWhileOthersVary) {
  Drive d;
  RiskRules& r = d.rules();
  CellStream s;
  auto feed = [&](std::int64_t from, std::int64_t to, bool stuck) {
    for (std::int64_t k = from; k < to; ++k) {
      s.at_sample(k);
      if (stuck) s.p[5] = 20e3f;
      r.on_insole_cells(at(static_cast<double>(k) * 0.01), 11, Side::kRight, s.p, d.buf());
      d.collect();
    }
  };
  feed(0, 500, false);
  feed(500, 1499, true);  // stuck from 5.00 s; 9.98 s later: not yet
  EXPECT_TRUE(d.events().empty()) << describe(d.events());
  feed(1499, 1600, true);
  ASSERT_EQ(d.events().size(), 1u) << describe(d.events());
  const RiskEvent& e = d.events()[0];
  EXPECT_EQ(e.rule, RuleId::kStuckCell);
  EXPECT_EQ(e.device, 11u);
  EXPECT_EQ(e.side, Side::kRight);
  EXPECT_EQ(e.t_us, at(15.0));
  const Evidence* cell = find_evidence(e, "cell_index");
  ASSERT_NE(cell, nullptr);
  EXPECT_FLOAT_EQ(cell->value, 5.0f);
  feed(1600, 1700, false);
  ASSERT_EQ(d.events().size(), 2u) << describe(d.events());
  EXPECT_EQ(d.events()[1].phase, EventPhase::kClear);
}

TEST(SensorFaults, AnUnloadedCellOrAStillInsoleIsNotStuck) {
  Drive d;
  RiskRules& r = d.rules();
  CellStream s;
  for (std::int64_t k = 0; k < 3000; ++k) {
    s.at_sample(k);
    s.p[15] = 0.0f;  // a toe cell a heel striker never loads
    r.on_insole_cells(at(static_cast<double>(k) * 0.01), 10, Side::kLeft, s.p, d.buf());
  }
  std::array<float, 16> still{};
  still.fill(30e3f);  // standing still: nothing varies
  for (std::int64_t k = 3000; k < 6000; ++k) {
    r.on_insole_cells(at(static_cast<double>(k) * 0.01), 10, Side::kLeft, still, d.buf());
  }
  d.collect();
  EXPECT_TRUE(d.events().empty()) << describe(d.events());
}

// ---- GaitTrends ---------------------------------------------------------------------------------

// A stride of 0.7 s (171 spm), inside the 240 spm the default capacities are sized for. The
// baseline is a streaming median (P²) and the rolling window keeps halves, so both are compared
// within their own error: P² interpolates its markers (the right foot's first baseline step
// still carries minute 2's 0.30 s), a half rounds 0.20 to 0.19995.
TEST(GaitTrends, BaselineIsTheMedianOfMinutesThreeToEight) {
  GaitTrends trends;
  trends.start_session(kT0);
  RuleInputs in;
  for (std::int64_t t = kT0; t < at(600.0); t += 2 * kStepUs) {
    GaitMetrics m = healthy_metrics();
    const double s = secs(t);
    m.contact_time_s = s < 180.0 ? 0.30 : s < 480.0 ? 0.25 : 0.20;
    trends.add_step(Side::kLeft, t, m, s < 480.0 ? 3.0 : 3.5, 0.0);
    trends.add_step(Side::kRight, t + kStepUs, m, 3.0, 0.0);
    if (s < 479.0) {
      trends.fill(t, in);
      ASSERT_FALSE(in.baseline_ready) << "ready before minute 8, at " << s << " s";
    }
  }
  trends.fill(at(600.0), in);
  ASSERT_TRUE(in.baseline_ready);
  EXPECT_NEAR(in.baseline[0].contact_time_s, 0.25, 1e-6);
  EXPECT_NEAR(in.baseline[1].contact_time_s, 0.25, 1e-6);
  EXPECT_DOUBLE_EQ(in.baseline_speed_mps, 3.0);
  EXPECT_NEAR(in.rolling[0].contact_time_s, 0.20, 0.20 * 0x1p-11)
      << "the rolling window is the last 2 min";
  EXPECT_NEAR(in.rolling_steps[0], 120.0 / (2 * kStepS), 1.0);
}

TEST(GaitTrends, RollingMedianIgnoresNaNAndEmptiesAfterTwoMinutes) {
  GaitTrends trends;
  trends.start_session(kT0);
  GaitMetrics m = healthy_metrics();
  m.pta_g = kNaN;
  trends.add_step(Side::kLeft, at(1.0), m, kSpeed, 0.0);
  RuleInputs in;
  trends.fill(at(1.0), in);
  EXPECT_EQ(in.rolling_steps[0], 1);
  EXPECT_EQ(in.rolling_steps[1], 0);
  EXPECT_TRUE(std::isnan(in.rolling[0].pta_g));
  EXPECT_DOUBLE_EQ(in.rolling[0].cadence_spm, 170.0);
  trends.fill(at(122.0), in);
  EXPECT_EQ(in.rolling_steps[0], 0);
  EXPECT_TRUE(std::isnan(in.rolling[0].cadence_spm));
}

// ---- A healthy runner ---------------------------------------------------------------------------

// 30 minutes of a healthy runner: per-step metrics jitter around their means (both sides), go
// through GaitTrends as the session will, and the insoles stream 100 Hz cells. Nothing fires.
TEST(RiskRules, AHealthyRunnerRaisesNothingInThirtyMinutes) {
  GaitTrends trends;
  RiskRules rules(RiskRuleParams{}, kModelId);
  RiskEventBuffer buf;
  std::vector<RiskEvent> events;
  std::mt19937 rng(12345);
  std::normal_distribution<double> jitter(0.0, 1.0);
  const GaitMetrics mean = healthy_metrics();
  auto jittered = [&] {
    GaitMetrics m = mean;
    for (double GaitMetrics::*field : kGaitMetricFields) m.*field *= 1.0 + 0.03 * jitter(rng);
    m.knee_angle_ic_rad = mean.knee_angle_ic_rad + rad(1.5) * jitter(rng);
    m.knee_angle_peak_rad = mean.knee_angle_peak_rad + rad(1.5) * jitter(rng);
    return m;
  };
  CellStream cells;
  std::int64_t cell_k = 0;
  trends.start_session(kT0);
  int steps = 0;
  for (std::int64_t t = kT0; t < at(1800.0); t += kStepUs / 2) {
    for (; at(static_cast<double>(cell_k) * 0.01) <= t; ++cell_k) {
      cells.at_sample(cell_k);
      const std::int64_t tc = at(static_cast<double>(cell_k) * 0.01);
      rules.on_insole_cells(tc, 10, Side::kLeft, cells.p, buf);
      rules.on_insole_cells(tc, 11, Side::kRight, cells.p, buf);
    }
    const Side side = steps % 2 == 0 ? Side::kLeft : Side::kRight;
    const double speed = kSpeed * (1.0 + 0.005 * jitter(rng));
    trends.add_step(side, t, jittered(), speed, 0.01);
    ++steps;
    RuleInputs in = healthy_inputs(t);
    trends.fill(t, in);
    in.belt_speed_mps = speed;
    in.history.shoe_baseline_speed_mps = kSpeed;  // R9 drift on too
    rules.evaluate(in, buf);
    for (int k = 0; k < buf.size(); ++k) events.push_back(buf[k]);
    buf.clear();
  }
  EXPECT_GT(steps, 10000);
  EXPECT_TRUE(trends.baseline_ready());
  EXPECT_TRUE(events.empty()) << "expected no events in 30 min, got " << events.size() << ": "
                              << describe(events);
}

TEST(RiskRules, ReplayingTheSameInputsGivesByteIdenticalEvents) {
  auto run = [] {
    Drive d;
    d.run(0.0, 400.0, [](RuleInputs& in) {
      in.rolling[0].pfj_stress_peak_mpa = 8.0;
      in.rolling[1].contact_time_s = 0.27;
    });
    d.rules().end_session(at(400.0), d.buf());
    d.collect();
    return d.events();
  };
  const auto a = run();
  const auto b = run();
  ASSERT_EQ(a.size(), b.size());
  ASSERT_GE(a.size(), 2u);
  for (std::size_t k = 0; k < a.size(); ++k) {
    EXPECT_EQ(std::memcmp(&a[k], &b[k], sizeof(RiskEvent)), 0) << "event " << k << " differs";
  }
}

TEST(SymmetryIndex, IsHundredTimesTheDifferenceOverTheMean) {
  EXPECT_DOUBLE_EQ(symmetry_index_pct(0.25, 0.25), 0.0);
  EXPECT_DOUBLE_EQ(symmetry_index_pct(1.1, 0.9), 20.0);
  EXPECT_DOUBLE_EQ(symmetry_index_pct(0.9, 1.1), 20.0);
  EXPECT_TRUE(std::isnan(symmetry_index_pct(kNaN, 1.0)));
  EXPECT_TRUE(std::isnan(symmetry_index_pct(0.0, 0.0)));
}

}  // namespace
}  // namespace kneeload::fusion
