// The knee load model (MODEL.md §3), cumulative load (§4), ITB zone time (§5) and loading rate
// (§1): tabled values, the worked example, and integrals on synthetic stances whose answers are
// known in closed form.
#include "kneeload/fusion/load_model.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <vector>

#include "kneeload/fusion/cop_path.hpp"

namespace kneeload::fusion {
namespace {

constexpr double kPi = std::numbers::pi;
constexpr double kG = 9.80665;
constexpr double kMass = 70.0;
constexpr double kBw = kMass * kG;
constexpr std::int64_t kIc = 5'000'000'000;  // an arbitrary runner clock

double rad(double deg) { return deg * kPi / 180.0; }

TEST(QuadricepsMomentArm, MatchesTheTabledValues) {
  // MODEL.md §3B: 46 / 45 / 40 / 33 mm at 0 / 30 / 45 / 60° (rounded to the mm).
  const double deg[] = {0.0, 30.0, 45.0, 60.0};
  const double mm[] = {46.0, 45.0, 40.0, 33.0};
  for (int k = 0; k < 4; ++k) {
    const double got = quadriceps_moment_arm_mm(deg[k]);
    EXPECT_NEAR(got, mm[k], 0.5) << "at " << deg[k] << "°: expected " << mm[k] << " mm ±0.5, got "
                                 << got;
  }
}

TEST(PfjrfRatio, MatchesTheTabledValues) {
  // MODEL.md §3C: k = 0.46 / 0.74 / 0.86 / 0.95 at 0 / 30 / 45 / 60°.
  const double deg[] = {0.0, 30.0, 45.0, 60.0};
  const double k[] = {0.46, 0.74, 0.86, 0.95};
  for (int i = 0; i < 4; ++i) {
    const double got = pfjrf_ratio(deg[i]);
    EXPECT_NEAR(got, k[i], 0.006) << "at " << deg[i] << "°: expected " << k[i] << " ±0.006, got "
                                  << got;
  }
}

TEST(LoadModelPolynomials, ClampFlexionToTheirRangeAndPropagateNaN) {
  EXPECT_EQ(quadriceps_moment_arm_mm(-10.0), quadriceps_moment_arm_mm(0.0));
  EXPECT_EQ(pfjrf_ratio(150.0), pfjrf_ratio(90.0)) << "k has a pole near 130°: clamped at 90°";
  EXPECT_GT(pfjrf_ratio(90.0), 0.0);
  EXPECT_TRUE(std::isnan(quadriceps_moment_arm_mm(std::nan(""))));
  EXPECT_TRUE(std::isnan(pfjrf_ratio(std::nan(""))));
  EXPECT_TRUE(std::isnan(pfj_contact_area_mm2(ContactAreaModel::kMriMale, std::nan(""))));
}

TEST(ContactArea, MriTableInterpolatesLinearlyAndAddsTwentyFourPercent) {
  // Besier 2005 men 210/414/520 mm², women 210/269/396 mm² at 0/30/60°, ×1.24 weight bearing.
  struct Case {
    ContactAreaModel model;
    double deg;
    double mm2;
  } cases[] = {
      {ContactAreaModel::kMriMale, 0.0, 1.24 * 210.0},
      {ContactAreaModel::kMriMale, 30.0, 1.24 * 414.0},
      {ContactAreaModel::kMriMale, 45.0, 1.24 * 467.0},
      {ContactAreaModel::kMriMale, 60.0, 1.24 * 520.0},
      {ContactAreaModel::kMriMale, 75.0, 1.24 * 520.0},  // clamped above 60°
      {ContactAreaModel::kMriMale, -5.0, 1.24 * 210.0},  // clamped below 0°
      {ContactAreaModel::kMriMale, 15.0, 1.24 * 312.0},
      {ContactAreaModel::kMriFemale, 30.0, 1.24 * 269.0},
      {ContactAreaModel::kMriFemale, 45.0, 1.24 * 332.5},
      {ContactAreaModel::kMriFemale, 60.0, 1.24 * 396.0},
  };
  for (const Case& c : cases) {
    const double got = pfj_contact_area_mm2(c.model, c.deg);
    EXPECT_NEAR(got, c.mm2, 1e-9) << "model " << static_cast<int>(c.model) << " at " << c.deg
                                  << "°: expected " << c.mm2 << " mm², got " << got;
  }
}

TEST(ContactArea, QuadraticGivesAbout340SquareMillimetresAt45Degrees) {
  const double got = pfj_contact_area_mm2(ContactAreaModel::kQuadraticPowers, 45.0);
  EXPECT_NEAR(got, 340.0, 1.0) << "MODEL.md §3D: ~340 mm² at 45°, got " << got;
  EXPECT_NEAR(pfj_contact_area_mm2(ContactAreaModel::kQuadraticPowers, 0.0), 151.75, 1e-12);
}

TEST(PfjLoad, ReproducesTheWorkedExample) {
  // MODEL.md §3D: 70 kg, M_k = 2.4 N·m/kg at 45° → F_q ≈ 4.2 kN → PFJRF ≈ 3.7 kN (5.3 BW) →
  // σ ≈ 6.3 MPa (MRI areas) or 10.8 MPa (quadratic).
  const double moment = 2.4 * kMass;
  const PfjLoad mri = pfj_load(moment, 45.0, ContactAreaModel::kMriMale);
  EXPECT_NEAR(mri.quadriceps_force_n, 4200.0, 60.0) << "F_q: got " << mri.quadriceps_force_n;
  EXPECT_NEAR(mri.pfjrf_n, 3700.0, 50.0) << "PFJRF: got " << mri.pfjrf_n;
  EXPECT_NEAR(mri.pfjrf_n / kBw, 5.3, 0.06) << "PFJRF in BW: got " << mri.pfjrf_n / kBw;
  EXPECT_NEAR(mri.stress_mpa, 6.3, 0.06) << "σ MRI: got " << mri.stress_mpa;
  const PfjLoad quad = pfj_load(moment, 45.0, ContactAreaModel::kQuadraticPowers);
  EXPECT_NEAR(quad.stress_mpa, 10.8, 0.06) << "σ quadratic: got " << quad.stress_mpa;
  EXPECT_NEAR(quad.stress_mpa / mri.stress_mpa, 1.7, 0.02)
      << "MODEL.md: the quadratic gives ~1.7× the MRI stress";
}

TEST(PfjLoad, AFlexorMomentGivesZeroPfjrfNotNegative) {
  const PfjLoad l = pfj_load(-50.0, 20.0, ContactAreaModel::kMriMale);
  EXPECT_LT(l.quadriceps_force_n, 0.0);
  EXPECT_EQ(l.pfjrf_n, 0.0);
  EXPECT_EQ(l.stress_mpa, 0.0);
  const PfjLoad unknown = pfj_load(std::nan(""), 20.0, ContactAreaModel::kMriMale);
  EXPECT_TRUE(std::isnan(unknown.pfjrf_n));
  EXPECT_TRUE(std::isnan(unknown.stress_mpa));
}

TEST(LoadModelId, NamesTheAreaTableAndTheDamageExponents) {
  EXPECT_STREQ(load_model_id(ContactAreaModel::kMriMale), "pfj-mri-besier2005-m/b4+b8");
  EXPECT_STREQ(load_model_id(ContactAreaModel::kMriFemale), "pfj-mri-besier2005-f/b4+b8");
  EXPECT_STREQ(load_model_id(ContactAreaModel::kQuadraticPowers), "pfj-quadratic-powers/b4+b8");
  EXPECT_STREQ(load_model_id(ContactAreaModel::kMriMale, DamageExponents{3.0, 8.0}),
               "pfj-mri-besier2005-m/b-custom");
}

TEST(KneeMomentArm, FollowsTheConventionsFormula) {
  const LegGeometry leg = default_leg_geometry(1.75);
  EXPECT_NEAR(leg.shank_length_m, 0.4305, 1e-12);
  EXPECT_NEAR(leg.foot_length_m, 0.266, 1e-12);
  EXPECT_NEAR(knee_moment_arm_m(leg, 0.0, 0.25), 0.0, 1e-15) << "CoP under the ankle, shank up";
  EXPECT_NEAR(knee_moment_arm_m(leg, rad(10.0), 0.25), 0.4305 * std::sin(rad(10.0)), 1e-12);
  // CoP forward of the ankle shortens the arm by (x_CoP − ankle)·L_foot.
  EXPECT_NEAR(knee_moment_arm_m(leg, rad(10.0), 0.75), 0.4305 * std::sin(rad(10.0)) - 0.5 * 0.266,
              1e-12);
}

// A synthetic stance: F = peak·sin(πt/t_c), θ and φ_s from functions of t, CoP at the ankle.
struct Stance {
  double contact_s = 0.25;
  double peak_bw = 2.5;
  double rate_hz = 1000.0;
  double (*flexion_deg)(double t, double tc) = [](double, double) { return 45.0; };
  double shank_deg = 0.0;
  // F / peak: a half sine unless a test gives another shape.
  double (*force_shape)(double t, double tc) = [](double t, double tc) {
    return std::sin(kPi * t / tc);
  };
};

StepLoadResult run_stance(StepLoad& load, const Stance& s) {
  load.begin(kIc, 0.0);
  const auto dt_us = static_cast<std::int64_t>(std::llround(1e6 / s.rate_hz));
  const auto tc_us = static_cast<std::int64_t>(std::llround(s.contact_s * 1e6));
  for (std::int64_t t = dt_us; t < tc_us; t += dt_us) {
    const double ts = static_cast<double>(t) / 1e6;
    StanceSample x{};
    x.t_us = kIc + t;
    x.force_n = s.peak_bw * kBw * s.force_shape(ts, s.contact_s);
    x.knee_flexion_rad = rad(s.flexion_deg(ts, s.contact_s));
    x.shank_inclination_rad = rad(s.shank_deg);
    x.x_cop_norm = 0.25;
    load.add(x);
  }
  return load.finish(kIc + tc_us);
}

LoadModelParams params_70kg() {
  LoadModelParams p;
  p.body_mass_kg = kMass;
  p.leg = default_leg_geometry(1.75);
  return p;
}

TEST(StepLoad, PeaksAndIntegralsOfAHalfSineStanceMatchTheClosedForm) {
  // Constant θ = 45° and CoP under the ankle: σ(t) = c·F(t), so J = σ_peak·(2/π)·t_c and the
  // PFJRF impulse = PFJRF_peak·(2/π)·t_c. φ_s is chosen so that the peak moment is the worked
  // example's 2.4 N·m/kg.
  Stance s;
  const double d = 2.4 * kMass / (s.peak_bw * kBw);
  s.shank_deg = std::asin(d / 0.4305) * 180.0 / kPi;
  StepLoad load(params_70kg());
  const StepLoadResult r = run_stance(load, s);

  EXPECT_EQ(r.samples, 249);
  EXPECT_NEAR(r.peak_force_bw, 2.5, 1e-3);
  EXPECT_NEAR(r.peak_knee_moment_nm_per_kg, 2.4, 1e-3) << "got " << r.peak_knee_moment_nm_per_kg;
  const PfjLoad ex = pfj_load(2.4 * kMass, 45.0, ContactAreaModel::kMriMale);
  EXPECT_NEAR(r.peak_stress_mpa, ex.stress_mpa, 1e-3)
      << "expected " << ex.stress_mpa << " got " << r.peak_stress_mpa;
  EXPECT_NEAR(r.peak_pfjrf_bw, ex.pfjrf_n / kBw, 1e-3);
  const double j = ex.stress_mpa * 2.0 / kPi * s.contact_s;
  EXPECT_NEAR(r.stress_time_integral_mpa_s, j, 0.001 * j)
      << "J: expected " << j << " MPa·s ±0.1 %, got " << r.stress_time_integral_mpa_s;
  const double impulse = ex.pfjrf_n / kBw * 2.0 / kPi * s.contact_s;
  EXPECT_NEAR(r.pfjrf_impulse_bw_s, impulse, 0.001 * impulse)
      << "impulse: expected " << impulse << " BW·s, got " << r.pfjrf_impulse_bw_s;
  EXPECT_DOUBLE_EQ(r.load_coverage, 1.0);
  EXPECT_EQ(r.ic_t_us, kIc);
  EXPECT_EQ(r.to_t_us, kIc + 250'000);
}

TEST(StepLoad, WithoutAKneeAngleTheLoadIsUnknownNotZero) {
  Stance s;
  s.flexion_deg = [](double, double) { return std::nan(""); };
  StepLoad load(params_70kg());
  const StepLoadResult r = run_stance(load, s);
  EXPECT_NEAR(r.peak_force_bw, 2.5, 1e-3) << "the force is still known";
  EXPECT_TRUE(std::isnan(r.peak_stress_mpa));
  EXPECT_TRUE(std::isnan(r.stress_time_integral_mpa_s));
  EXPECT_TRUE(std::isnan(r.itb_zone_time_s));
  EXPECT_EQ(r.load_coverage, 0.0);
}

// θ rises linearly 15° → 45° over the first 40 % of stance, then falls back to 15° at TO.
double ramp_flexion(double t, double tc) {
  const double up = 0.4 * tc;
  return t <= up ? 15.0 + 30.0 * t / up : 45.0 - 30.0 * (t - up) / (tc - up);
}

TEST(StepLoad, ItbZoneTimeCountsFromContactToPeakFlexionOnly) {
  // MODEL.md §5: 20° <= θ <= 30° and F >= 0.5 BW. θ = 20° at 16.7 ms and 30° at 50 ms; with a
  // 1.5 BW half-sine the force reaches 0.5 BW at t_c·asin(1/3)/π = 27.04 ms. So the zone is
  // [27.04, 50] ms = 22.96 ms. The second passage, after peak flexion, must not count.
  Stance s;
  s.peak_bw = 1.5;
  s.flexion_deg = ramp_flexion;
  s.shank_deg = 5.0;
  const double expected = 0.050 - 0.25 * std::asin(1.0 / 3.0) / kPi;
  for (double rate : {1000.0, 100.0}) {
    s.rate_hz = rate;
    StepLoad load(params_70kg());
    const StepLoadResult r = run_stance(load, s);
    const double tol = rate >= 1000.0 ? 2e-4 : 2e-3;
    EXPECT_NEAR(r.itb_zone_time_s, expected, tol) << "at " << rate << " Hz: expected " << expected
                                                  << " s ±" << tol << ", got " << r.itb_zone_time_s;
    EXPECT_EQ(r.itb_zone_entries, 1) << "at " << rate << " Hz";
    EXPECT_NEAR(r.peak_flexion_rad, rad(45.0), rad(0.5));
  }
}

TEST(StepLoad, NoZoneTimeWhenTheKneeStaysBelowTheZone) {
  Stance s;
  s.flexion_deg = [](double, double) { return 10.0; };
  StepLoad load(params_70kg());
  const StepLoadResult r = run_stance(load, s);
  EXPECT_EQ(r.itb_zone_time_s, 0.0);
  EXPECT_EQ(r.itb_zone_entries, 0);
}

TEST(StepLoad, SamplesOutsideAStanceAreIgnored) {
  StepLoad load(params_70kg());
  load.add(StanceSample{kIc, 1000.0, 0.5, 0.1, 0.3});
  EXPECT_FALSE(load.in_stance());
  const StepLoadResult r = load.finish(kIc + 1000);
  EXPECT_EQ(r.samples, 0);
  EXPECT_TRUE(std::isnan(r.peak_force_bw));
}

// A rearfoot-strike force trace: F = IP·(t/t_ip)^1.5 up to the impact peak, a dip, the active
// peak, then down to zero at TO.
std::vector<std::pair<double, double>> rearfoot_knots() {
  return {{0.0, 0.0}, {0.030, 1.6}, {0.050, 1.3}, {0.110, 2.5}, {0.250, 0.0}};
}
double rearfoot_force(double t) {
  if (t <= 0.030) return 1.6 * std::pow(t / 0.030, 1.5);
  const auto k = rearfoot_knots();
  for (std::size_t i = 2; i < k.size(); ++i) {
    if (t <= k[i].first) {
      const double f = (t - k[i - 1].first) / (k[i].first - k[i - 1].first);
      return k[i - 1].second + f * (k[i].second - k[i - 1].second);
    }
  }
  return 0.0;
}

void trace(double rate_hz, double (*force)(double), std::vector<std::int64_t>& t,
           std::vector<double>& f) {
  t.assign(1, kIc);
  f.assign(1, 0.0);
  const auto dt = static_cast<std::int64_t>(std::llround(1e6 / rate_hz));
  for (std::int64_t k = dt; k < 250'000; k += dt) {
    t.push_back(kIc + k);
    f.push_back(force(static_cast<double>(k) / 1e6));
  }
}

TEST(LoadingRate, ImpactPeakGivesTheTwentyToEightyPercentSlope) {
  // 20 % and 80 % of IP are reached at t_ip·0.2^(2/3) and t_ip·0.8^(2/3); VILR is the steepest
  // slope in that window, F'(t80) = 1.5·IP/t_ip·0.8^(1/3).
  const double t20 = 0.030 * std::pow(0.2, 2.0 / 3.0);
  const double t80 = 0.030 * std::pow(0.8, 2.0 / 3.0);
  const double valr = 0.6 * 1.6 / (t80 - t20);
  const double vilr = 1.5 * 1.6 / 0.030 * std::cbrt(0.8);
  std::vector<std::int64_t> t;
  std::vector<double> f;
  trace(1000.0, rearfoot_force, t, f);
  const LoadingRate r = compute_loading_rate(t, f, kIc, kIc + 250'000);
  ASSERT_TRUE(r.has_impact_peak);
  EXPECT_NEAR(r.impact_peak_bw, 1.6, 1e-9);
  EXPECT_NEAR(r.valr_bw_per_s, valr, 0.01 * valr)
      << "VALR: expected " << valr << " BW/s ±1 %, got " << r.valr_bw_per_s;
  EXPECT_NEAR(r.vilr_bw_per_s, vilr, 0.03 * vilr)
      << "VILR: expected " << vilr << " BW/s ±3 %, got " << r.vilr_bw_per_s;
  EXPECT_NEAR(r.sample_rate_hz, 1000.0, 1e-6);
  EXPECT_NEAR(r.window_start_s, t20, 2e-4);
  EXPECT_NEAR(r.window_end_s, t80, 2e-4);
}

TEST(LoadingRate, ReportsTheSampleRateSoA100HzValueIsReadAsATrend) {
  std::vector<std::int64_t> t;
  std::vector<double> f;
  trace(100.0, rearfoot_force, t, f);
  const LoadingRate r = compute_loading_rate(t, f, kIc, kIc + 250'000);
  EXPECT_NEAR(r.sample_rate_hz, 100.0, 1e-6);
  EXPECT_TRUE(std::isfinite(r.valr_bw_per_s)) << "a value is still reported";
}

TEST(LoadingRate, WithoutAnImpactPeakUsesThreeToTwelvePercentOfStance) {
  auto half_sine = [](double t) { return 2.5 * std::sin(kPi * t / 0.25); };
  std::vector<std::int64_t> t;
  std::vector<double> f;
  trace(1000.0, +half_sine, t, f);
  const LoadingRate r = compute_loading_rate(t, f, kIc, kIc + 250'000);
  EXPECT_FALSE(r.has_impact_peak);
  const double a = 0.03 * 0.25, b = 0.12 * 0.25;
  const double valr = (half_sine(b) - half_sine(a)) / (b - a);
  EXPECT_NEAR(r.valr_bw_per_s, valr, 0.005 * valr)
      << "expected " << valr << " BW/s ±0.5 %, got " << r.valr_bw_per_s;
  EXPECT_NEAR(r.vilr_bw_per_s, 2.5 * kPi / 0.25, 0.01 * 2.5 * kPi / 0.25)
      << "the steepest slope is at IC";
  EXPECT_NEAR(r.window_start_s, a, 1e-9);
  EXPECT_NEAR(r.window_end_s, b, 1e-9);
}

TEST(LoadingRate, TooFewPointsGiveNaN) {
  const std::vector<std::int64_t> t{kIc, kIc + 10'000};
  const std::vector<double> f{0.05, 1.0};
  const LoadingRate r = compute_loading_rate(t, f, kIc, kIc + 250'000);
  EXPECT_TRUE(std::isnan(r.valr_bw_per_s));
  EXPECT_TRUE(std::isnan(r.vilr_bw_per_s));
}

TEST(StepLoad, CarriesTheLoadingRateOfItsForceTrace) {
  Stance s;
  StepLoad load(params_70kg());
  const StepLoadResult r = run_stance(load, s);
  EXPECT_FALSE(r.loading_rate.has_impact_peak);
  EXPECT_NEAR(r.loading_rate.sample_rate_hz, 1000.0, 1e-6);
  EXPECT_GT(r.loading_rate.valr_bw_per_s, 20.0);
}

// A trace too short for the loading rate's window (35 % of a 250 ms stance at 1 kHz is 88
// samples): the rate is withheld and counted, not read from part of the window. One that covers
// the window but not the whole stance changes nothing.
TEST(StepLoad, WithholdsTheLoadingRateWhenTheTraceEndsBeforeItsWindow) {
  Stance s;
  StepLoad whole(params_70kg());  // 180 points: the window fits
  const StepLoadResult full = run_stance(whole, s);
  ASSERT_TRUE(std::isfinite(full.loading_rate.valr_bw_per_s));
  EXPECT_EQ(whole.windows_cut(), 0u);

  LoadModelParams p = params_70kg();
  p.max_stance_samples = 130;  // past 88 ms and the force peak at 125 ms, short of 250 ms
  StepLoad covers(p);
  const StepLoadResult r = run_stance(covers, s);
  EXPECT_EQ(r.loading_rate.valr_bw_per_s, full.loading_rate.valr_bw_per_s);
  EXPECT_EQ(r.loading_rate.vilr_bw_per_s, full.loading_rate.vilr_bw_per_s);
  EXPECT_EQ(covers.windows_cut(), 0u);
  EXPECT_EQ(r.stress_time_integral_mpa_s, full.stress_time_integral_mpa_s)
      << "untraced samples still count in the integrals";

  p.max_stance_samples = 110;  // past the 35 % window, but the force peaks at 125 ms
  StepLoad before_peak(p);
  EXPECT_TRUE(std::isnan(run_stance(before_peak, s).loading_rate.valr_bw_per_s));
  EXPECT_EQ(before_peak.windows_cut(), 1u);

  p.max_stance_samples = 60;  // the trace ends at 59 ms, inside the window
  StepLoad short_trace(p);
  const StepLoadResult cut = run_stance(short_trace, s);
  EXPECT_TRUE(std::isnan(cut.loading_rate.valr_bw_per_s));
  EXPECT_TRUE(std::isnan(cut.loading_rate.vilr_bw_per_s));
  EXPECT_TRUE(std::isnan(cut.loading_rate.impact_peak_bw));
  EXPECT_NEAR(cut.loading_rate.sample_rate_hz, 1000.0, 1e-6) << "the rate of the samples is known";
  EXPECT_EQ(short_trace.windows_cut(), 1u);
  EXPECT_EQ(cut.stress_time_integral_mpa_s, full.stress_time_integral_mpa_s);

  // The next stance starts with an empty trace: a short one (50 ms) has its rate again.
  s.contact_s = 0.05;
  const StepLoadResult next = run_stance(short_trace, s);
  EXPECT_TRUE(std::isfinite(next.loading_rate.valr_bw_per_s));
  EXPECT_EQ(short_trace.windows_cut(), 1u);
}

// Walking at 1 kHz: two humps, the second (push-off, 75 % of a 0.7 s stance) the higher. The
// impact peak is the first hump, which must precede the stance's maximum with a drop between.
// A trace that covers the 35 % search but stops before the second hump makes the first hump its
// own maximum, finds no impact peak and would fall back to the 3-12 % window: a rate, but not
// the stance's. It is withheld; a trace reaching the maximum gives the whole trace's rate.
double bump(double x, double at, double height) {
  return height * std::exp(-0.5 * (x - at) * (x - at) / (0.09 * 0.09));
}

TEST(StepLoad, WithholdsTheLoadingRateWhenTheTraceStopsBeforeTheForceMaximum) {
  Stance walking;
  walking.contact_s = 0.7;
  walking.peak_bw = 1.0;
  walking.flexion_deg = [](double, double) { return 15.0; };
  walking.force_shape = [](double t, double tc) {
    const double u = t / tc;
    return (bump(u, 0.25, 1.0) + bump(u, 0.75, 1.1)) * std::sin(kPi * u);
  };
  const auto walk = [&walking](StepLoad& load) { return run_stance(load, walking); };
  LoadModelParams p = params_70kg();
  p.max_stance_samples = 800;
  StepLoad whole(p);
  const StepLoadResult full = walk(whole);
  ASSERT_TRUE(full.loading_rate.has_impact_peak) << "the first hump, before the higher second";
  ASSERT_TRUE(std::isfinite(full.loading_rate.valr_bw_per_s));

  p.max_stance_samples = 300;  // 35 % is 245 ms; the maximum comes at about 520 ms
  StepLoad cut(p);
  const StepLoadResult r = walk(cut);
  EXPECT_TRUE(std::isnan(r.loading_rate.valr_bw_per_s));
  EXPECT_FALSE(r.loading_rate.has_impact_peak);
  EXPECT_EQ(cut.windows_cut(), 1u);

  p.max_stance_samples = 600;
  StepLoad reaches(p);
  const StepLoadResult r2 = walk(reaches);
  EXPECT_EQ(r2.loading_rate.valr_bw_per_s, full.loading_rate.valr_bw_per_s);
  EXPECT_EQ(reaches.windows_cut(), 0u);
}

// The same for the ML excursion, whose window is IC → 30 % of stance (75 ms of 250 at 1 kHz).
CopPathResult run_cop(CopPath& cop, double contact_s) {
  cop.begin(kIc);
  const auto tc_us = static_cast<std::int64_t>(std::llround(contact_s * 1e6));
  for (std::int64_t t = 1000; t < tc_us; t += 1000) {
    const double ts = static_cast<double>(t) / 1e6;
    // Medial then lateral: y's range keeps growing through the window.
    cop.add(kIc + t, 0.2 + 2.0 * ts, 0.5 + 0.8 * std::sin(kPi * ts / contact_s) * (ts - 0.03));
  }
  return cop.finish(kIc + tc_us);
}

TEST(CopPath, WithholdsTheMlExcursionWhenTheTraceEndsBeforeItsWindow) {
  CopPath whole;
  const CopPathResult full = run_cop(whole, 0.25);
  ASSERT_TRUE(std::isfinite(full.ml_excursion_m));
  EXPECT_EQ(whole.windows_cut(), 0u);

  CopPathParams p;
  p.max_stance_samples = 100;
  CopPath covers(p);
  const CopPathResult r = run_cop(covers, 0.25);
  EXPECT_EQ(r.ml_excursion_m, full.ml_excursion_m);
  EXPECT_EQ(r.path_length_m, full.path_length_m);
  EXPECT_EQ(covers.windows_cut(), 0u);

  p.max_stance_samples = 60;
  CopPath short_trace(p);
  const CopPathResult cut = run_cop(short_trace, 0.25);
  EXPECT_TRUE(std::isnan(cut.ml_excursion_m));
  EXPECT_EQ(cut.path_length_m, full.path_length_m) << "the path counts every sample";
  EXPECT_EQ(short_trace.windows_cut(), 1u);

  EXPECT_TRUE(std::isfinite(run_cop(short_trace, 0.1).ml_excursion_m)) << "30 ms window fits";
  EXPECT_EQ(short_trace.windows_cut(), 1u);
}

TEST(SessionLoad, DamageIndexUsesBothExponents) {
  // σ_ref = 5 MPa: one step at 5 MPa adds 1 to both; one at 10 MPa adds 2⁴ = 16 and 2⁸ = 256.
  SessionLoad s;
  StepLoadResult a;
  a.peak_stress_mpa = 5.0;
  a.stress_time_integral_mpa_s = 0.5;
  a.pfjrf_impulse_bw_s = 0.4;
  a.itb_zone_time_s = 0.01;
  a.itb_zone_entries = 1;
  StepLoadResult b = a;
  b.peak_stress_mpa = 10.0;
  s.add_step(a);
  s.add_step(b);
  EXPECT_EQ(s.steps(), 2u);
  EXPECT_DOUBLE_EQ(s.damage_index(), 17.0) << "b = 4: 1 + 16";
  EXPECT_DOUBLE_EQ(s.damage_index_sensitivity(), 257.0) << "b = 8: 1 + 256";
  EXPECT_DOUBLE_EQ(s.stress_time_integral_mpa_s(), 1.0);
  EXPECT_DOUBLE_EQ(s.pfjrf_impulse_bw_s(), 0.8);
  EXPECT_DOUBLE_EQ(s.itb_zone_time_s(), 0.02);
  EXPECT_EQ(s.itb_zone_entries(), 2u);
  EXPECT_TRUE(std::isnan(s.stress_time_integral_per_km())) << "no distance yet";
  s.add_distance(500.0);
  s.add_distance(std::nan(""));
  EXPECT_DOUBLE_EQ(s.stress_time_integral_per_km(), 2.0) << "1 MPa·s over 0.5 km";
  s.reset();
  EXPECT_EQ(s.steps(), 0u);
  EXPECT_EQ(s.damage_index(), 0.0);
}

TEST(SessionLoad, AStepWithUnknownLoadCountsButAddsNothing) {
  SessionLoad s;
  s.add_step(StepLoadResult{});
  EXPECT_EQ(s.steps(), 1u);
  EXPECT_EQ(s.damage_index(), 0.0);
  EXPECT_EQ(s.stress_time_integral_mpa_s(), 0.0);
}

TEST(StressTimeIntegralPerKm, ScalesOneStepToAKilometre) {
  EXPECT_DOUBLE_EQ(stress_time_integral_per_km(0.8, 1.25), 640.0);
  EXPECT_TRUE(std::isnan(stress_time_integral_per_km(0.8, 0.0)));
  EXPECT_TRUE(std::isnan(stress_time_integral_per_km(0.8, std::nan(""))));
}

}  // namespace
}  // namespace kneeload::fusion
