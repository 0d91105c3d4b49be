// RunnerSession (simple model): gait events and step metrics against a synthetic runner with
// known truth, decimated state, pain and dropout events, session summaries, determinism.
#include "kneeload/fusion/session.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <numbers>
#include <vector>

#include "gait_signal.hpp"

namespace kneeload::fusion {
namespace {

using testing::GaitParams;
using testing::GaitSignal;

constexpr double kPi = std::numbers::pi;

// Runs a generator through a session. `before` is called with each generator sample before it is
// fed and may feed extra samples (console messages) through the `feed` callback it receives.
struct Runner {
  RunnerSession session;
  std::vector<Output> outputs;
  SessionOutputs out{};

  explicit Runner(const SessionConfig& c) : session(c) {}

  void feed(const Sample& s) {
    session.on_sample(s, out);
    drain();
  }
  void drain() {
    for (int i = 0; i < out.size(); ++i) outputs.push_back(out[i]);
    out.clear();
  }
  void run(GaitSignal& gen, const std::function<void(const Sample&, Runner&)>& before = {}) {
    Sample s;
    while (gen.next(s)) {
      if (before) before(s, *this);
      feed(s);
    }
  }

  template <class T>
  std::vector<T> all() const {
    std::vector<T> v;
    for (const Output& o : outputs) {
      if (const auto* b = std::get_if<T>(&o.body)) v.push_back(*b);
    }
    return v;
  }
};

struct ErrorStats {
  double max_abs = 0.0;
  double sum = 0.0;
  int n = 0;
  void add(double e) {
    max_abs = std::max(max_abs, std::abs(e));
    sum += e;
    ++n;
  }
  double mean() const { return n > 0 ? sum / n : 0.0; }
};

// ---------------------------------------------------------------------------------------------
// Gait events and step metrics at 100 Hz and 200 Hz.

class StepAccuracy : public ::testing::TestWithParam<double> {};

// Bounds on what the detector can get wrong on a clean half-sine, derived rather than tuned:
// - Peak force: the sampled maximum is at most half a sample from the true peak, so it reads
//   low by at most P·(1 − cos(π·Δt / (2·t_c))): 0.20 % (0.005 BW) at 100 Hz, 0.05 % at 200 Hz.
//   Far inside the 5 % asked for; the tolerance is this bound plus float rounding.
// - IC/TO: the thresholds (40 N up, 32 N down) sit 1.9 ms and 1.5 ms inside the 0.25 s contact,
//   and linear interpolation across the kink where the half-sine leaves zero errs by up to
//   ≈ 1/3 of a sample period. Contact time therefore reads 3.3 ms short ± about 1/3 sample at
//   each end; the 10 ms tolerance holds at 100 Hz with margin.
// - Cadence: per-step step time carries two IC errors (≤ 1/3 sample each, opposite signs
//   possible), i.e. up to ±3.4 ms at 100 Hz → ±1.6 spm per step at 170 spm. The 1 spm bound is
//   asserted on the mean over the run at both rates and per step at 200 Hz; per step at 100 Hz
//   is held to the derived 1.7 spm.
TEST_P(StepAccuracy, MatchesTruthWithinSamplingBounds) {
  const double hz = GetParam();
  GaitParams p;
  p.insole_hz = hz;
  p.knee_hz = hz;
  GaitSignal gen(p);
  Runner r(testing::test_config(p));
  r.run(gen);

  const auto steps = r.all<StepMetrics>();
  ASSERT_EQ(static_cast<int>(steps.size()), gen.step_count())
      << "steps over 60 s at " << hz << " Hz: expected " << gen.step_count() << ", got "
      << steps.size();
  EXPECT_EQ(r.session.counters().steps, static_cast<std::uint64_t>(gen.step_count()));

  const double dt = 1.0 / hz;
  const double peak_tol_bw = p.peak_bw * (1.0 - std::cos(kPi * dt / (2.0 * p.contact_s))) + 1e-4;
  const double cadence_step_tol = hz < 150.0 ? 1.7 : 1.0;
  const double truth_cadence = p.cadence_spm;
  const double truth_step_len = p.speed_mps * 60.0 / p.cadence_spm;
  const double truth_flight = 60.0 / p.cadence_spm - p.contact_s;

  ErrorStats contact, cadence, peak, step_len, flight, knee_ic, knee_peak;
  for (int k = 0; k < gen.step_count(); ++k) {
    const StepMetrics& m = steps[static_cast<std::size_t>(k)];
    const testing::StepTruth t = gen.step(k);
    SCOPED_TRACE(::testing::Message() << "step " << k << " at " << hz << " Hz");
    ASSERT_EQ(m.step_index, static_cast<std::uint64_t>(k));
    ASSERT_EQ(m.side, t.side);
    ASSERT_NEAR(static_cast<double>(m.ic_t_us), static_cast<double>(t.ic_us), 10'000.0)
        << "IC time (µs)";

    const double ct_err = m.contact_time_s - p.contact_s;
    contact.add(ct_err);
    EXPECT_LE(std::abs(ct_err), 0.010) << "contact time: expected " << p.contact_s << " s, got "
                                       << m.contact_time_s << " s, tolerance 10 ms";

    const double pk_err = m.peak_force_bw - t.peak_bw;
    peak.add(pk_err);
    EXPECT_LE(std::abs(pk_err), peak_tol_bw) << "peak force: expected " << t.peak_bw
                                             << " BW, got " << m.peak_force_bw
                                             << " BW, tolerance " << peak_tol_bw << " BW";

    EXPECT_NEAR(m.strike_index_pct, t.strike_index_pct, 1e-3)
        << "strike index: expected " << t.strike_index_pct << " %, got " << m.strike_index_pct;

    const double kic_err = m.knee_angle_ic_rad - t.knee_ic_rad;
    const double kpk_err = m.knee_angle_peak_rad - t.knee_peak_rad;
    knee_ic.add(kic_err);
    knee_peak.add(kpk_err);
    EXPECT_LE(std::abs(kic_err), testing::deg(0.5))
        << "knee angle at IC: expected " << t.knee_ic_rad << " rad, got " << m.knee_angle_ic_rad;
    EXPECT_LE(std::abs(kpk_err), testing::deg(0.5))
        << "knee peak: expected " << t.knee_peak_rad << " rad, got " << m.knee_angle_peak_rad;

    // Metrics of the load model (next issue) are NaN.
    EXPECT_TRUE(std::isnan(m.peak_pfj_stress_mpa));
    EXPECT_TRUE(std::isnan(m.peak_knee_moment_nm_per_kg));
    EXPECT_TRUE(std::isnan(m.valr_bw_per_s));

    if (k == 0) {
      EXPECT_TRUE(std::isnan(m.cadence_spm)) << "first step has no previous IC, got "
                                             << m.cadence_spm;
      EXPECT_TRUE(std::isnan(m.flight_time_s)) << "got " << m.flight_time_s;
      continue;
    }
    const double cad_err = m.cadence_spm - truth_cadence;
    cadence.add(cad_err);
    EXPECT_LE(std::abs(cad_err), cadence_step_tol)
        << "cadence: expected " << truth_cadence << " spm, got " << m.cadence_spm
        << ", tolerance " << cadence_step_tol;
    const double sl_err = m.step_length_m - truth_step_len;
    step_len.add(sl_err);
    EXPECT_LE(std::abs(sl_err), truth_step_len * cadence_step_tol / truth_cadence + 1e-4)
        << "step length: expected " << truth_step_len << " m, got " << m.step_length_m;
    const double fl_err = m.flight_time_s - truth_flight;
    flight.add(fl_err);
    EXPECT_LE(std::abs(fl_err), 0.010) << "flight time: expected " << truth_flight << " s, got "
                                       << m.flight_time_s;
  }
  EXPECT_LE(std::abs(cadence.mean()), 1.0) << "mean cadence error " << cadence.mean() << " spm";

  std::printf(
      "[measured %3.0f Hz] steps %d/%d | contact time err max %.2f ms mean %+.2f ms | cadence err "
      "max %.3f spm mean %+.4f | peak force err max %.4f BW (%.3f %%) mean %+.4f | step length "
      "err max %.1f mm | flight err max %.2f ms mean %+.2f | knee IC err max %.3f deg, peak max "
      "%.3f deg\n",
      hz, static_cast<int>(steps.size()), gen.step_count(), contact.max_abs * 1e3,
      contact.mean() * 1e3, cadence.max_abs, cadence.mean(), peak.max_abs,
      100.0 * peak.max_abs / p.peak_bw, peak.mean(), step_len.max_abs * 1e3, flight.max_abs * 1e3,
      flight.mean() * 1e3, knee_ic.max_abs * 180.0 / kPi, knee_peak.max_abs * 180.0 / kPi);
}

INSTANTIATE_TEST_SUITE_P(InsoleRates, StepAccuracy, ::testing::Values(100.0, 200.0),
                         [](const ::testing::TestParamInfo<double>& param_info) {
                           return std::to_string(static_cast<int>(param_info.param)) + "Hz";
                         });

TEST(RunnerSessionGait, ForceGainScalesPressuresToNewtons) {
  GaitParams p;
  p.force_gain = 1.25;  // pressures rendered 1.25× too low; the gain restores them
  GaitSignal gen(p);
  Runner r(testing::test_config(p));
  r.run(gen);
  const auto steps = r.all<StepMetrics>();
  ASSERT_EQ(static_cast<int>(steps.size()), gen.step_count());
  for (const StepMetrics& m : steps) {
    ASSERT_NEAR(m.peak_force_bw, p.peak_bw, 0.006)
        << "expected " << p.peak_bw << " BW, got " << m.peak_force_bw;
  }
}

TEST(RunnerSessionGait, ChatterAroundTheThresholdAddsNoPhantomStep) {
  // Stance force chattering between 45 N and 35 N never falls below the 32 N toe-off level
  // (hysteresis 0.8 × 40 N): one contact. Then bounces between 45 N and 20 N, each a full
  // crossing, all within 150 ms of the second IC: the refractory window refuses them.
  SessionConfig c = testing::test_config(GaitParams{});
  Runner r(c);
  std::int64_t t = 0;
  auto insole = [&](double force_n) {
    Sample s{};
    s.device_t_us = t;
    s.arrival_t_us = t;
    s.runner = c.runner;
    s.station = c.station;
    s.side = Side::kLeft;
    s.kind = SensorKind::kInsole;
    InsoleSample in{};
    in.cell_count = static_cast<std::uint8_t>(testing::kCells);
    in.pressure_pa[0] = static_cast<float>(force_n / c.insoles[0].area_m2[0]);
    s.payload = in;
    r.feed(s);
    t += 10'000;
  };
  for (int i = 0; i < 5; ++i) insole(0.0);
  for (int i = 0; i < 10; ++i) insole(i % 2 == 0 ? 45.0 : 35.0);  // IC at 50 ms, held
  for (int i = 0; i < 5; ++i) insole(0.0);                        // toe-off: step 1
  for (int i = 0; i < 10; ++i) insole(i % 2 == 0 ? 45.0 : 20.0);  // IC at 200 ms, then bounces
  for (int i = 0; i < 5; ++i) insole(0.0);
  EXPECT_EQ(r.all<StepMetrics>().size(), 2u)
      << "expected 2 steps, got " << r.all<StepMetrics>().size();
}

TEST(RunnerSessionGait, RefractoryWindowRejectsSecondContactOfSameFoot) {
  SessionConfig c = testing::test_config(GaitParams{});
  Runner r(c);
  std::int64_t t = 0;
  auto insole = [&](double force_n) {
    Sample s{};
    s.device_t_us = t;
    s.runner = c.runner;
    s.station = c.station;
    s.side = Side::kRight;
    s.kind = SensorKind::kInsole;
    InsoleSample in{};
    in.cell_count = static_cast<std::uint8_t>(testing::kCells);
    in.pressure_pa[4] = static_cast<float>(force_n / c.insoles[1].area_m2[4]);
    s.payload = in;
    r.feed(s);
    t += 10'000;
  };
  insole(0.0);
  for (int i = 0; i < 5; ++i) insole(500.0);  // IC at ~10 ms, 50 ms contact
  insole(0.0);                                // TO: step 1
  insole(500.0);                              // 70 ms after IC: refused (150 ms refractory)
  insole(500.0);
  insole(0.0);
  for (int i = 0; i < 10; ++i) insole(0.0);
  insole(500.0);  // well after: accepted
  insole(0.0);
  const auto steps = r.all<StepMetrics>();
  ASSERT_EQ(steps.size(), 2u) << "expected 2 steps (the bounce refused), got " << steps.size();
  EXPECT_EQ(steps[0].side, Side::kRight);
}

TEST(RunnerSessionGait, DuplicateAndOlderInsoleSamplesChangeNothing) {
  GaitParams p;
  p.duration_s = p.run_s = 20.0;
  GaitSignal gen_a(p), gen_b(p);
  Runner clean(testing::test_config(p));
  clean.run(gen_a);
  Runner dup(testing::test_config(p));
  Sample prev_insole{};
  bool have_prev = false;
  Sample s;
  while (gen_b.next(s)) {
    dup.feed(s);
    if (s.kind != SensorKind::kInsole) continue;
    dup.feed(s);                          // duplicate
    if (have_prev) dup.feed(prev_insole);  // an older one
    prev_insole = s;
    have_prev = true;
  }
  const auto a = clean.all<StepMetrics>();
  const auto b = dup.all<StepMetrics>();
  ASSERT_EQ(a.size(), b.size()) << "expected " << a.size() << " steps, got " << b.size();
  for (std::size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(std::memcmp(&a[i], &b[i], sizeof(StepMetrics)), 0) << "step " << i;
  }
}

TEST(RunnerSessionGait, StaleInsoleMidStanceAbandonsTheContact) {
  SessionConfig c = testing::test_config(GaitParams{});
  Runner r(c);
  auto insole = [&](std::int64_t t, double force_n) {
    Sample s{};
    s.device_t_us = t;
    s.runner = c.runner;
    s.side = Side::kLeft;
    s.kind = SensorKind::kInsole;
    InsoleSample in{};
    in.cell_count = static_cast<std::uint8_t>(testing::kCells);
    in.pressure_pa[0] = static_cast<float>(force_n / c.insoles[0].area_m2[0]);
    s.payload = in;
    r.feed(s);
  };
  insole(0, 0.0);
  insole(10'000, 800.0);  // IC
  insole(20'000, 1200.0);
  SessionOutputs out{};
  r.session.on_device_stale(testing::kInsoleLeftDevice, Side::kLeft, SensorKind::kInsole, true,
                            out);
  insole(5'000'000, 0.0);  // back, in swing: no toe-off across a 5 s gap
  insole(5'010'000, 0.0);
  EXPECT_TRUE(r.all<StepMetrics>().empty()) << "got " << r.all<StepMetrics>().size() << " steps";
  insole(5'020'000, 900.0);  // a fresh contact is detected normally
  insole(5'030'000, 0.0);
  EXPECT_EQ(r.all<StepMetrics>().size(), 1u);
}

TEST(RunnerSessionGait, KneeImuWithoutSleeveLeavesAnglesNaN) {
  GaitParams p;
  p.knee_sleeve = false;
  p.duration_s = p.run_s = 5.0;
  GaitSignal gen(p);
  Runner r(testing::test_config(p));
  r.run(gen);
  const auto steps = r.all<StepMetrics>();
  ASSERT_FALSE(steps.empty());
  for (const StepMetrics& m : steps) {
    EXPECT_TRUE(std::isnan(m.knee_angle_ic_rad)) << "got " << m.knee_angle_ic_rad;
    EXPECT_TRUE(std::isnan(m.knee_angle_peak_rad)) << "got " << m.knee_angle_peak_rad;
  }
  for (const FusedState& st : r.all<FusedState>()) {
    ASSERT_TRUE(std::isnan(st.knee_angle_rad[0]) && std::isnan(st.knee_angle_rad[1]));
  }
}

// ---------------------------------------------------------------------------------------------
// Decimated state.

TEST(RunnerSessionState, DecimatedExactlyAtStateRateAndStrictlyIncreasing) {
  for (double hz : {100.0, 200.0}) {
    GaitParams p;
    p.insole_hz = hz;
    p.knee_hz = hz;
    GaitSignal gen(p);
    SessionConfig c = testing::test_config(p);
    c.model.state_rate_hz = 50.0;
    Runner r(c);
    r.run(gen);
    const auto states = r.all<FusedState>();
    // Every sample lies on the 50 Hz grid, so every state does: one per 20 ms, first at t0.
    const auto expected = static_cast<std::size_t>(p.duration_s * 50.0);
    ASSERT_EQ(states.size(), expected)
        << "states at " << hz << " Hz input: expected " << expected << ", got " << states.size();
    EXPECT_EQ(states.front().t_us, p.t0_us);
    for (std::size_t i = 1; i < states.size(); ++i) {
      ASSERT_EQ(states[i].t_us - states[i - 1].t_us, 20'000)
          << "state " << i << " at " << hz << " Hz: expected a 20000 µs step, got "
          << states[i].t_us - states[i - 1].t_us;
    }
    EXPECT_EQ(r.session.counters().state_out_of_order, 0u);
  }
}

TEST(RunnerSessionState, NonDividingRateKeepsItsAverageAndNeverRepeatsATime) {
  GaitParams p;
  p.insole_hz = 200.0;
  p.knee_hz = 200.0;
  GaitSignal gen(p);
  SessionConfig c = testing::test_config(p);
  c.model.state_rate_hz = 60.0;  // 16 666.7 µs: samples every 5 ms can only approximate it
  Runner r(c);
  r.run(gen);
  const auto states = r.all<FusedState>();
  const double expected = p.duration_s * 60.0;
  EXPECT_NEAR(static_cast<double>(states.size()), expected, 1.0)
      << "expected " << expected << " states, got " << states.size();
  for (std::size_t i = 1; i < states.size(); ++i) {
    ASSERT_GT(states[i].t_us, states[i - 1].t_us) << "state " << i;
    const std::int64_t dt = states[i].t_us - states[i - 1].t_us;
    ASSERT_TRUE(dt == 15'000 || dt == 20'000) << "state " << i << ": got dt " << dt << " µs";
  }
}

TEST(RunnerSessionState, CarriesCurrentValuesAndContactBits) {
  GaitParams p;
  p.duration_s = p.run_s = 10.0;
  GaitSignal gen(p);
  Runner r(testing::test_config(p));
  int checked = 0;
  r.run(gen);
  const auto states = r.all<FusedState>();
  ASSERT_FALSE(states.empty());
  // The very first state comes from the first sample (a knee sample): no force, no belt yet.
  EXPECT_TRUE(std::isnan(states.front().vgrf_bw[0]));
  EXPECT_TRUE(std::isnan(states.front().belt_speed_mps));
  EXPECT_TRUE(std::isnan(states.front().cadence_spm));
  for (const FusedState& st : states) {
    if (st.t_us < p.t0_us + 3'000'000) continue;
    ++checked;
    ASSERT_NEAR(st.belt_speed_mps, p.speed_mps, 1e-6);
    ASSERT_NEAR(st.incline_fraction, p.incline_fraction, 1e-6);
    ASSERT_NEAR(st.cadence_spm, p.cadence_spm, 1.7);
    for (int side = 0; side < 2; ++side) {
      const Side sd = side == 0 ? Side::kLeft : Side::kRight;
      const double truth_bw = gen.force_n(sd, static_cast<double>(st.t_us)) /
                              (p.body_mass_kg * kGravityMps2);
      // States are stamped with the knee sample's time, which precedes the insole sample of
      // the same instant; vGRF is the latest insole value, one period old at most.
      ASSERT_NEAR(st.vgrf_bw[side], truth_bw, 0.35) << "t " << st.t_us << " side " << side;
      const bool bit = (st.contact_mask >> side) & 1u;
      if (truth_bw > 0.5) {
        ASSERT_TRUE(bit) << "t " << st.t_us << " side " << side;
      }
      if (truth_bw == 0.0 && gen.force_n(sd, static_cast<double>(st.t_us) - 20'000) == 0.0) {
        ASSERT_FALSE(bit) << "t " << st.t_us << " side " << side;
      }
    }
  }
  EXPECT_GT(checked, 300);
}

TEST(RunnerSessionState, SampleOlderThanLastStateIsCountedAndEmitsNothing) {
  SessionConfig c = testing::test_config(GaitParams{});
  Runner r(c);
  auto tread = [&](std::int64_t t) {
    Sample s{};
    s.device_t_us = t;
    s.runner = c.runner;
    s.station = c.station;
    s.kind = SensorKind::kTreadmill;
    s.payload = TreadmillSample{3.0f, 0.0f};
    r.feed(s);
  };
  tread(1'000'000);  // state
  tread(1'010'000);  // not due (50 Hz)
  tread(1'020'000);  // state
  tread(1'019'000);  // older than the last state
  tread(1'020'000);  // same time as the last state: no second state, not counted
  tread(1'040'000);  // state
  const auto states = r.all<FusedState>();
  ASSERT_EQ(states.size(), 3u) << "got " << states.size() << " states";
  EXPECT_EQ(states[0].t_us, 1'000'000);
  EXPECT_EQ(states[1].t_us, 1'020'000);
  EXPECT_EQ(states[2].t_us, 1'040'000);
  EXPECT_EQ(r.session.counters().state_out_of_order, 1u);
  EXPECT_EQ(r.session.counters().samples, 6u);
}

// ---------------------------------------------------------------------------------------------
// Events.

TEST(RunnerSessionEvents, PainAtThresholdOnsetOnceThenClear) {
  GaitParams p;
  p.duration_s = p.run_s = 20.0;
  GaitSignal gen(p);
  Runner r(testing::test_config(p));
  const std::int64_t t0 = p.t0_us;
  struct Report {
    std::int64_t t;
    std::uint8_t score;
    bool sent;
  };
  Report reports[] = {{t0 + 2'000'000, 2, false},  {t0 + 4'000'000, 3, false},
                      {t0 + 6'000'000, 5, false},  {t0 + 8'000'000, 4, false},
                      {t0 + 10'000'000, 2, false}, {t0 + 12'000'000, 1, false}};
  r.run(gen, [&](const Sample& s, Runner& run) {
    for (Report& rep : reports) {
      if (!rep.sent && s.device_t_us >= rep.t) {
        rep.sent = true;
        run.feed(GaitSignal::console(rep.t, PainReport{rep.score, Side::kRight,
                                                       PainLocation::kAnterior}));
      }
    }
  });
  std::vector<Output> events;
  for (const Output& o : r.outputs) {
    if (std::holds_alternative<RiskEvent>(o.body)) events.push_back(o);
  }
  ASSERT_EQ(events.size(), 2u) << "expected one onset and one clear, got " << events.size();
  const RiskEvent& on = std::get<RiskEvent>(events[0].body);
  const RiskEvent& off = std::get<RiskEvent>(events[1].body);
  EXPECT_EQ(on.rule, RuleId::kPainReport);
  EXPECT_EQ(on.phase, EventPhase::kOnset);
  EXPECT_EQ(on.severity, Severity::kHigh);
  EXPECT_EQ(on.side, Side::kRight);
  EXPECT_EQ(on.t_us, t0 + 4'000'000);
  EXPECT_EQ(on.device, UINT32_MAX);
  ASSERT_EQ(on.evidence_count, 1);
  EXPECT_STREQ(on.evidence[0].metric, "pain_score");
  EXPECT_EQ(on.evidence[0].value, 3.0f);
  EXPECT_TRUE(std::isnan(on.evidence[0].baseline));
  EXPECT_EQ(on.evidence[0].threshold, 3.0f);
  EXPECT_NE(on.model_id, nullptr);
  EXPECT_EQ(events[0].source_arrival_t_us, t0 + 4'000'000 + testing::kArrivalLagUs + 900);
  EXPECT_EQ(off.phase, EventPhase::kClear);
  EXPECT_EQ(off.rule, RuleId::kPainReport);
  EXPECT_EQ(off.t_us, t0 + 10'000'000);
  EXPECT_EQ(r.session.counters().risk_events, 2u);
}

TEST(RunnerSessionEvents, StaleDeviceOnsetAndClear) {
  GaitParams p;
  p.duration_s = p.run_s = 5.0;
  GaitSignal gen(p);
  Runner r(testing::test_config(p));
  r.run(gen);
  const std::int64_t last = r.session.last_t_us();
  SessionOutputs out{};
  r.session.on_device_stale(testing::kKneeLeftDevice, Side::kLeft, SensorKind::kKnee, true, out);
  r.session.on_device_stale(testing::kKneeLeftDevice, Side::kLeft, SensorKind::kKnee, false, out);
  ASSERT_EQ(out.size(), 2) << "expected onset and clear, got " << out.size();
  for (int i = 0; i < 2; ++i) {
    const auto& e = std::get<RiskEvent>(out[i].body);
    EXPECT_EQ(e.rule, RuleId::kSensorDropout);
    EXPECT_EQ(e.severity, Severity::kWarn);
    EXPECT_EQ(e.phase, i == 0 ? EventPhase::kOnset : EventPhase::kClear);
    EXPECT_EQ(e.side, Side::kLeft);
    EXPECT_EQ(e.device, testing::kKneeLeftDevice);
    EXPECT_EQ(e.t_us, last);
    EXPECT_EQ(e.evidence_count, 0);
    EXPECT_EQ(out[i].source_arrival_t_us, 0);
    EXPECT_EQ(out[i].runner, testing::kRunner);
    EXPECT_EQ(out[i].station, testing::kStation);
  }
  EXPECT_EQ(r.session.counters().risk_events, 2u);
}

TEST(RunnerSessionEvents, StaleBeforeAnySampleIsStampedZero) {
  RunnerSession session(testing::test_config(GaitParams{}));
  SessionOutputs out{};
  session.on_device_stale(testing::kTreadmillDevice, Side::kNone, SensorKind::kTreadmill, true,
                          out);
  ASSERT_EQ(out.size(), 1);
  EXPECT_EQ(std::get<RiskEvent>(out[0].body).t_us, 0);
}

TEST(RunnerSessionEvents, StaleKneeWithdrawsItsAngleFromState) {
  GaitParams p;
  p.duration_s = p.run_s = 3.0;
  GaitSignal gen(p);
  Runner r(testing::test_config(p));
  r.run(gen);
  SessionOutputs out{};
  r.session.on_device_stale(testing::kKneeRightDevice, Side::kRight, SensorKind::kKnee, true, out);
  Sample s{};
  s.device_t_us = r.session.last_t_us() + 1'000'000;
  s.runner = testing::kRunner;
  s.kind = SensorKind::kTreadmill;
  s.payload = TreadmillSample{3.3f, 0.0f};
  r.feed(s);
  const FusedState st = r.all<FusedState>().back();
  EXPECT_EQ(st.t_us, s.device_t_us);
  EXPECT_FALSE(std::isnan(st.knee_angle_rad[0])) << "left sleeve still reporting";
  EXPECT_TRUE(std::isnan(st.knee_angle_rad[1])) << "got " << st.knee_angle_rad[1];
}

// ---------------------------------------------------------------------------------------------
// Session summaries.

TEST(RunnerSessionSummary, SessionEndReportsStepsDistanceAndDuration) {
  GaitParams p;  // 60 s of running; samples continue 2 s after the last step
  p.duration_s = 62.0;
  GaitSignal gen(p);
  Runner r(testing::test_config(p));
  const std::int64_t end_t = p.t0_us + 61'000'000;
  bool sent = false;
  r.run(gen, [&](const Sample& s, Runner& run) {
    if (!sent && s.device_t_us >= end_t) {
      sent = true;
      run.feed(GaitSignal::console(end_t, SessionEnd{}));
    }
  });
  const auto sums = r.all<SessionSummary>();
  ASSERT_EQ(sums.size(), 1u) << "got " << sums.size() << " summaries";
  const SessionSummary& s = sums[0];
  const testing::StepTruth first = gen.step(0);
  const testing::StepTruth last = gen.step(gen.step_count() - 1);
  EXPECT_TRUE(s.ended_explicitly);
  EXPECT_EQ(s.steps, static_cast<std::uint64_t>(gen.step_count()))
      << "expected " << gen.step_count() << " steps, got " << s.steps;
  EXPECT_NEAR(static_cast<double>(s.start_t_us), static_cast<double>(first.ic_us), 5'000.0);
  EXPECT_NEAR(static_cast<double>(s.end_t_us), static_cast<double>(last.to_us), 5'000.0);
  const double duration = static_cast<double>(last.to_us - first.ic_us) / 1e6;
  EXPECT_NEAR(s.duration_s, duration, 0.01);
  // Belt travel over the same span, to within one 10 Hz treadmill interval at each end.
  const double expected_m = p.speed_mps * duration;
  const double tol_m = 2.0 * p.speed_mps / p.treadmill_hz;
  EXPECT_NEAR(s.distance_m, expected_m, tol_m)
      << "distance: expected " << expected_m << " m, got " << s.distance_m << ", tolerance "
      << tol_m;
  EXPECT_TRUE(std::isnan(s.damage_index));
  EXPECT_TRUE(std::isnan(s.stress_time_integral_mpa_s));
  EXPECT_EQ(s.risk_events, 0u);
  std::printf("[measured] session distance %.3f m vs %.3f m over %.3f s, %llu steps\n",
              static_cast<double>(s.distance_m), expected_m, duration,
              static_cast<unsigned long long>(s.steps));

  // A second SessionEnd without steps since emits nothing.
  const auto before = r.outputs.size();
  r.feed(GaitSignal::console(end_t + 500'000, SessionEnd{}));
  for (std::size_t i = before; i < r.outputs.size(); ++i) {
    EXPECT_FALSE(std::holds_alternative<SessionSummary>(r.outputs[i].body));
  }
}

TEST(RunnerSessionSummary, IdleEndsTheSessionAfterIdleTimeout) {
  GaitParams p;
  p.run_s = 20.0;
  p.duration_s = 60.0;  // the belt keeps running 40 s after the runner stops
  GaitSignal gen(p);
  SessionConfig c = testing::test_config(p);
  c.model.session_idle_end_s = 30.0;
  Runner r(c);
  r.run(gen);
  const auto sums = r.all<SessionSummary>();
  ASSERT_EQ(sums.size(), 1u) << "got " << sums.size() << " summaries";
  const SessionSummary& s = sums[0];
  EXPECT_FALSE(s.ended_explicitly);
  EXPECT_EQ(s.steps, static_cast<std::uint64_t>(gen.step_count()));
  const testing::StepTruth last = gen.step(gen.step_count() - 1);
  EXPECT_NEAR(static_cast<double>(s.end_t_us), static_cast<double>(last.to_us), 5'000.0);
  // Emitted by the first sample more than 30 s after the last toe-off.
  const Output* summary = nullptr;
  for (const Output& o : r.outputs) {
    if (std::holds_alternative<SessionSummary>(o.body)) summary = &o;
  }
  ASSERT_NE(summary, nullptr);
  const std::int64_t cause_t = summary->source_arrival_t_us - testing::kArrivalLagUs;
  EXPECT_GT(cause_t - s.end_t_us, 30'000'000 - 1'000);
  EXPECT_LT(cause_t - s.end_t_us, 30'000'000 + 11'000);
  // The idle belt travel is not counted.
  const double duration = static_cast<double>(s.end_t_us - s.start_t_us) / 1e6;
  EXPECT_NEAR(s.distance_m, p.speed_mps * duration, 2.0 * p.speed_mps / p.treadmill_hz);
  // finish() afterwards has nothing to close.
  SessionOutputs out{};
  r.session.finish(out);
  EXPECT_EQ(out.size(), 0);
}

TEST(RunnerSessionSummary, FinishClosesAnOpenSessionAndCountsOnsets) {
  GaitParams p;
  p.duration_s = p.run_s = 10.0;
  GaitSignal gen(p);
  Runner r(testing::test_config(p));
  bool sent = false;
  r.run(gen, [&](const Sample& s, Runner& run) {
    if (!sent && s.device_t_us >= p.t0_us + 5'000'000) {
      sent = true;
      run.feed(GaitSignal::console(s.device_t_us,
                                   PainReport{6, Side::kLeft, PainLocation::kLateral}));
    }
  });
  SessionOutputs out{};
  r.session.on_device_stale(testing::kInsoleRightDevice, Side::kRight, SensorKind::kInsole, true,
                            out);
  r.session.finish(out);
  ASSERT_EQ(out.size(), 2);
  const auto& s = std::get<SessionSummary>(out[1].body);
  EXPECT_FALSE(s.ended_explicitly);
  EXPECT_EQ(s.steps, static_cast<std::uint64_t>(gen.step_count()));
  EXPECT_EQ(s.risk_events, 2u) << "pain onset and dropout onset";
  EXPECT_EQ(out[1].source_arrival_t_us, 0);
  out.clear();
  r.session.finish(out);
  EXPECT_EQ(out.size(), 0) << "a closed session has no second summary";
}

TEST(RunnerSessionSummary, ReconfigureKeepsTheOpenSession) {
  GaitParams p;
  p.duration_s = p.run_s = 20.0;
  GaitSignal gen(p);
  SessionConfig c = testing::test_config(p);
  Runner r(c);
  bool done = false;
  r.run(gen, [&](const Sample& s, Runner& run) {
    if (!done && s.device_t_us >= p.t0_us + 10'000'000) {
      done = true;
      SessionConfig next = c;
      next.model.state_rate_hz = 25.0;
      run.session.reconfigure(next);
    }
  });
  SessionOutputs out{};
  r.session.finish(out);
  ASSERT_EQ(out.size(), 1);
  EXPECT_EQ(std::get<SessionSummary>(out[0].body).steps,
            static_cast<std::uint64_t>(gen.step_count()));
  const auto states = r.all<FusedState>();
  const std::int64_t dt = states.back().t_us - states[states.size() - 2].t_us;
  EXPECT_EQ(dt, 40'000) << "state period after reconfigure to 25 Hz";
}

// ---------------------------------------------------------------------------------------------
// Outputs: identity, arrival times, determinism.

TEST(RunnerSessionOutputs, CarryRunnerStationAndTheCausingArrivalTime) {
  GaitParams p;
  p.duration_s = p.run_s = 5.0;
  GaitSignal gen(p);
  RunnerSession session(testing::test_config(p));
  SessionOutputs out{};
  Sample s;
  int seen = 0;
  while (gen.next(s)) {
    session.on_sample(s, out);
    for (int i = 0; i < out.size(); ++i, ++seen) {
      ASSERT_EQ(out[i].runner, testing::kRunner);
      ASSERT_EQ(out[i].station, testing::kStation);
      ASSERT_EQ(out[i].source_arrival_t_us, s.arrival_t_us);
    }
    out.clear();
  }
  EXPECT_GT(seen, 250);
}

TEST(RunnerSessionOutputs, OverflowIsCounted) {
  GaitParams p;
  p.duration_s = p.run_s = 3.0;
  GaitSignal gen(p);
  RunnerSession session(testing::test_config(p));
  SessionOutputs out{};
  Sample s;
  while (gen.next(s)) session.on_sample(s, out);  // never cleared
  EXPECT_EQ(out.size(), kSessionOutputCapacity);
  EXPECT_GT(session.counters().output_overflow, 0u);
  EXPECT_EQ(session.counters().output_overflow, out.overflow());
}

std::vector<Output> replay_run() {
  GaitParams p;
  p.insole_hz = 200.0;
  p.knee_hz = 200.0;
  p.duration_s = 40.0;
  p.run_s = 30.0;
  GaitSignal gen(p);
  Runner r(testing::test_config(p));
  bool pain = false;
  r.run(gen, [&](const Sample& s, Runner& run) {
    if (!pain && s.device_t_us >= p.t0_us + 5'000'000) {
      pain = true;
      run.feed(GaitSignal::console(s.device_t_us, PainReport{7, Side::kLeft, PainLocation::kLateral}));
    }
  });
  r.session.on_device_stale(testing::kTreadmillDevice, Side::kNone, SensorKind::kTreadmill, true,
                            r.out);
  r.session.finish(r.out);
  r.drain();
  return r.outputs;
}

TEST(RunnerSessionOutputs, ReplayIsBitIdentical) {
  const std::vector<Output> a = replay_run();
  // Something unrelated in between, so stack and heap contents differ between the runs.
  std::vector<double> noise(4096, 3.14159);
  const std::vector<Output> b = replay_run();
  ASSERT_EQ(a.size(), b.size());
  ASSERT_GT(a.size(), 2000u);
  for (std::size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(std::memcmp(&a[i], &b[i], sizeof(Output)), 0)
        << "output " << i << " of " << a.size() << " differs (variant index " << a[i].body.index()
        << " vs " << b[i].body.index() << ")";
  }
  EXPECT_GT(noise[0], 0.0);
}

}  // namespace
}  // namespace kneeload::fusion
