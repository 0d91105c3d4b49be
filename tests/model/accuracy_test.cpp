// Issue 3's estimation-error proof: a healthy simulated runner at 100 Hz and 200 Hz, fused by
// RunnerSession, compared with the simulator's ground truth. Thresholds are the issue's; the
// measured values are printed so the note can quote them.
#include <gtest/gtest.h>

#include <map>

#include "run_sim.hpp"

namespace kneeload::testing {
namespace {

struct Matched {
  const fusion::StepMetrics* est;
  const sim::StepTruth* truth;
};

class Accuracy : public ::testing::TestWithParam<double> {};

TEST_P(Accuracy, HealthyRunnerWithinIssueToleranceOfTruth) {
  const double hz = GetParam();
  sim::SimConfig cfg;
  cfg.seed = 7;
  cfg.duration_s = 240.0;
  cfg.insole.rate_hz = hz;
  cfg.knee.rate_hz = hz;
  std::unique_ptr<sim::Simulator> holder;
  const sim::Simulator* simulator = nullptr;
  const SimRun run = run_sim(cfg, &simulator, &holder);
  ASSERT_FALSE(run.truth.empty());
  ASSERT_FALSE(run.steps.empty());

  // The aligned clock sits a constant transport latency after the true clock (the minimum
  // one-way delay is unobservable from timestamps: time_align.hpp). Measure that offset from
  // nearest IC pairs and compare on the true clock.
  std::vector<double> offsets;
  for (const auto& e : run.steps) {
    double best = 1e9;
    for (const auto& t : run.truth) {
      if (t.side != e.side) continue;
      const double d = static_cast<double>(e.ic_t_us - t.ic_t_us);
      if (std::fabs(d) < std::fabs(best)) best = d;
    }
    if (std::fabs(best) < 100'000) offsets.push_back(best);
  }
  const double offset_us = percentile(offsets, 0.5);

  // Match each truth step to the estimated step of that side within 60 ms (after the offset).
  std::vector<Matched> matched;
  std::vector<bool> used(run.steps.size(), false);
  int missed = 0;
  const std::int64_t settle_us = simulator->running_t_us() + 20'000'000;  // filters converge
  for (const auto& t : run.truth) {
    std::size_t best = run.steps.size();
    double best_d = 60'000;
    for (std::size_t i = 0; i < run.steps.size(); ++i) {
      if (used[i] || run.steps[i].side != t.side) continue;
      const double d = std::fabs(static_cast<double>(run.steps[i].ic_t_us - t.ic_t_us) - offset_us);
      if (d < best_d) {
        best_d = d;
        best = i;
      }
    }
    if (best == run.steps.size()) {
      ++missed;
      continue;
    }
    used[best] = true;
    if (t.ic_t_us >= settle_us) matched.push_back({&run.steps[best], &t});
  }
  // Truth reports steps from the end of the standing-to-running blend only; estimated steps
  // inside the blend are real contacts with no truth to match, so they are shown, not judged.
  int phantom = 0, in_blend = 0;
  const auto truth_from = simulator->running_t_us() + static_cast<std::int64_t>(offset_us) - 60'000;
  for (std::size_t i = 0; i < used.size(); ++i) {
    if (used[i]) continue;
    if (run.steps[i].ic_t_us < truth_from) {
      ++in_blend;
    } else {
      ++phantom;
      std::printf("phantom step %llu at %+.3f s: contact %.3f s, peak %.2f BW\n",
                  static_cast<unsigned long long>(run.steps[i].step_index),
                  static_cast<double>(run.steps[i].ic_t_us - simulator->running_t_us()) / 1e6,
                  run.steps[i].contact_time_s, run.steps[i].peak_force_bw);
    }
  }
  const double detected = 1.0 - static_cast<double>(missed) / static_cast<double>(run.truth.size());

  std::vector<double> contact_ms, cadence_spm, force_bw, knee_ic_deg, moment_rel;
  for (const Matched& m : matched) {
    if (std::isfinite(m.est->peak_knee_moment_nm_per_kg) && m.truth->peak_knee_moment_nm_per_kg > 0.5) {
      moment_rel.push_back(m.est->peak_knee_moment_nm_per_kg / m.truth->peak_knee_moment_nm_per_kg - 1.0);
    }
    contact_ms.push_back((m.est->contact_time_s - m.truth->contact_time_s) * 1e3);
    if (std::isfinite(m.est->cadence_spm)) cadence_spm.push_back(m.est->cadence_spm - m.truth->cadence_spm);
    force_bw.push_back(m.est->peak_force_bw - m.truth->peak_force_bw);
    knee_ic_deg.push_back(deg(m.est->knee_angle_ic_rad - m.truth->knee_ic_rad));
  }
  // Knee angle over time: every fused state after the settle time against the true angle.
  std::vector<double> knee_deg;
  for (const auto& st : run.states) {
    if (st.t_us < settle_us) continue;
    const auto true_t = st.t_us - static_cast<std::int64_t>(offset_us);
    for (int side = 0; side < 2; ++side) {
      const double est = st.knee_angle_rad[side];
      if (!std::isfinite(est)) continue;
      const sim::LegTruth leg = simulator->truth_at(side == 0 ? fusion::Side::kLeft : fusion::Side::kRight, true_t);
      knee_deg.push_back(deg(est - leg.knee_rad));
    }
  }

  std::printf("           peak knee moment error: median %+.1f %%, p95 |error| %.1f %% (%zu steps)\n",
              100.0 * percentile(moment_rel, 0.5),
              100.0 * [&] { std::vector<double> a; for (double e : moment_rel) a.push_back(std::fabs(e)); return percentile(a, 0.95); }(),
              moment_rel.size());
  std::printf(
      "[ %4.0f Hz ] steps %zu truth / %zu fused (%d in the start blend), detected %.2f %%, phantom %d, clock offset %.1f ms\n"
      "           contact time error mean|abs| %.2f ms (p95 %.2f), cadence %.3f spm (p95 %.3f),\n"
      "           peak force %.4f BW (p95 %.4f), knee angle RMSE %.2f deg over %zu states, knee at IC RMSE %.2f deg\n",
      hz, run.truth.size(), run.steps.size(), in_blend, 100.0 * detected, phantom, offset_us / 1e3, mean_abs(contact_ms),
      percentile(contact_ms, 0.95), mean_abs(cadence_spm), percentile(cadence_spm, 0.95), mean_abs(force_bw),
      percentile(force_bw, 0.95), rms(knee_deg), knee_deg.size(), rms(knee_ic_deg));

  double ic_mean = 0.0;
  for (double e : knee_ic_deg) ic_mean += e / static_cast<double>(knee_ic_deg.size());
  std::printf("           knee at IC mean error %+.2f deg (bias), p95 |error| %.2f deg\n", ic_mean,
              [&] { std::vector<double> a; for (double e : knee_ic_deg) a.push_back(std::fabs(e)); return percentile(a, 0.95); }());
  EXPECT_GE(detected, 0.995) << "step detection, missed " << missed << " of " << run.truth.size();
  EXPECT_EQ(phantom, 0) << "estimated steps with no true step";
  EXPECT_LE(mean_abs(contact_ms), 10.0) << "contact time error, ms";
  EXPECT_LE(mean_abs(cadence_spm), 1.0) << "cadence error, spm";
  EXPECT_LE(mean_abs(force_bw), 0.05) << "peak vertical force error, BW";
  EXPECT_LE(rms(knee_deg), 3.0) << "knee angle RMSE, deg";
  EXPECT_LE(rms(knee_ic_deg), 3.0) << "knee angle at contact RMSE, deg";
  EXPECT_GT(matched.size(), 500u);
  // Not an issue threshold, but the load model's input: the peak knee moment (MODEL.md §3A,
  // from force, CoP and the shank tilt estimate) must follow the truth's, step by step.
  EXPECT_LE(std::fabs(percentile(moment_rel, 0.5)), 0.10) << "median peak knee moment error";
  EXPECT_EQ(moment_rel.size(), matched.size()) << "steps without a knee moment";
}

INSTANTIATE_TEST_SUITE_P(InsoleAndImuRate, Accuracy, ::testing::Values(100.0, 200.0),
                         [](const auto& p) { return std::to_string(static_cast<int>(p.param)) + "Hz"; });

// MODEL.md plausibility for a typical 70 kg runner at 3.3 m/s: published ranges, not truth.
TEST(Plausibility, TypicalRunnerFallsInPublishedRanges) {
  sim::SimConfig cfg;
  cfg.seed = 11;
  cfg.duration_s = 180.0;
  cfg.runner.body_mass_kg = 70.0;
  cfg.runner.speed_mps = 3.3;
  const SimRun run = run_sim(cfg);
  std::vector<double> force, stress, contact, moment, pfjrf;
  for (const auto& s : run.steps) {
    force.push_back(s.peak_force_bw);
    contact.push_back(s.contact_time_s);
    if (std::isfinite(s.peak_pfj_stress_mpa)) stress.push_back(s.peak_pfj_stress_mpa);
    if (std::isfinite(s.peak_knee_moment_nm_per_kg)) moment.push_back(s.peak_knee_moment_nm_per_kg);
    if (std::isfinite(s.peak_pfjrf_bw)) pfjrf.push_back(s.peak_pfjrf_bw);
  }
  const double f = percentile(force, 0.5), c = percentile(contact, 0.5), sg = percentile(stress, 0.5),
               mk = percentile(moment, 0.5), pf = percentile(pfjrf, 0.5);
  std::printf("[ plausible ] median peak force %.2f BW, contact %.3f s, knee moment %.2f N·m/kg, "
              "PFJRF %.2f BW, PFJ stress %.2f MPa (%zu steps)\n",
              f, c, mk, pf, sg, run.steps.size());
  // MODEL.md §1: running peak 2.2–2.8 BW; §1 contact ≈0.24–0.25 s at ~3.5 m/s.
  EXPECT_GE(f, 2.2);
  EXPECT_LE(f, 2.8);
  EXPECT_GE(c, 0.2);
  EXPECT_LE(c, 0.3);
  // MODEL.md §3: knee moment 2.0–2.5 N·m/kg (JSSM; quasi-static model, so wider); PFJRF ≈4.5 BW
  // (Roos 2012); stress: worked example 6.3 MPa with MRI areas, elastic-foundation mean 5.0 and
  // peak 9.7 MPa (Lenhart 2015).
  EXPECT_GE(mk, 1.0);
  EXPECT_LE(mk, 3.5);
  EXPECT_GE(pf, 2.5);
  EXPECT_LE(pf, 7.0);
  EXPECT_GE(sg, 3.0);
  EXPECT_LE(sg, 12.0);
}

}  // namespace
}  // namespace kneeload::testing
