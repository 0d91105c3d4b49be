// Simulator: determinism, stream order and framing, clocks, and the consistency of the rendered
// devices with the ground truth (MODEL.md §10).
#include "kneeload/sim/simulator.hpp"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numbers>
#include <stdexcept>
#include <vector>

#include "kneeload/sim/registry.hpp"
#include "sim_test_util.hpp"

namespace kneeload::sim {
namespace {

using fusion::DeviceRole;
using fusion::Side;
using testing::collect;
using testing::Emitted;
using testing::short_config;
using testing::StreamHash;

constexpr double kDeg = std::numbers::pi / 180.0;
constexpr double kG = fusion::kGravityMps2;

std::uint64_t stream_hash(const SimConfig& c) {
  Simulator sim(c);
  StreamHash h;
  fusion::Sample s{};
  while (sim.next(s)) h.add(s);
  return h.value();
}

int role_index(DeviceRole r) { return static_cast<int>(r); }

TEST(Simulator, SameSeedSameStreamOtherSeedAnother) {
  // The fault scenario exercises every path: dropouts, clock jumps, duplicates, reorders.
  SimConfig c = short_config(80.0, Scenario::kFaults, 10.0, 60.0);
  const std::uint64_t a = stream_hash(c);
  const std::uint64_t b = stream_hash(c);
  c.seed = 2;
  const std::uint64_t other = stream_hash(c);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, other);
  std::printf("stream hash seed 1: %016llx, seed 2: %016llx\n",
              static_cast<unsigned long long>(a), static_cast<unsigned long long>(other));
}

TEST(Simulator, RejectsAnInvalidConfigAtConstruction) {
  SimConfig c;
  c.knee.rate_hz = 5000.0;
  EXPECT_THROW(Simulator{c}, std::invalid_argument);
}

TEST(Simulator, ArrivalOrderFramesAndPerDeviceTimeOrder) {
  const SimConfig c = short_config(95.0);
  Simulator sim(c);
  const std::vector<Emitted> all = collect(sim);
  ASSERT_FALSE(all.empty());
  std::array<std::int64_t, fusion::kDeviceRoleCount> last_t{};
  std::array<std::int64_t, fusion::kDeviceRoleCount> last_seq{};
  std::array<std::int64_t, fusion::kDeviceRoleCount> data{};
  std::array<std::int64_t, fusion::kDeviceRoleCount> status{};
  last_t.fill(std::numeric_limits<std::int64_t>::min());
  last_seq.fill(-1);
  std::int64_t last_arrival = std::numeric_limits<std::int64_t>::min();
  const Emitted* frame_head = nullptr;
  for (const Emitted& e : all) {
    const int r = role_index(e.info.role);
    const auto ri = static_cast<std::size_t>(r);
    ASSERT_GE(e.sample.arrival_t_us, last_arrival);
    last_arrival = e.sample.arrival_t_us;
    ASSERT_GE(e.sample.device_t_us, last_t[ri]) << "role " << r;
    last_t[ri] = e.sample.device_t_us;
    // Frames are contiguous and share arrival time and sequence number; sequence numbers of a
    // device count up by one per frame.
    if (e.info.frame_start) {
      ASSERT_EQ(frame_head, nullptr) << "a frame started inside another";
      frame_head = &e;
      ASSERT_EQ(static_cast<std::int64_t>(e.sample.device_seq), last_seq[ri] + 1) << "role " << r;
      last_seq[ri] = e.sample.device_seq;
    }
    ASSERT_NE(frame_head, nullptr);
    EXPECT_EQ(e.sample.device_seq, frame_head->sample.device_seq);
    EXPECT_EQ(e.sample.arrival_t_us, frame_head->sample.arrival_t_us);
    EXPECT_EQ(e.info.role, frame_head->info.role);
    EXPECT_GE(e.sample.arrival_t_us, e.info.true_t_us + 500) << "latency >= 0.5 ms";
    EXPECT_FALSE(e.info.duplicate);
    if (e.info.frame_end) frame_head = nullptr;
    if (std::holds_alternative<fusion::DeviceStatus>(e.sample.payload)) {
      ++status[ri];
    } else {
      ++data[ri];
    }
  }
  EXPECT_EQ(frame_head, nullptr);
  // Counts: rate × duration (±1), a status every 30 s from each streaming device, the console's
  // SessionEnd.
  EXPECT_NEAR(static_cast<double>(data[0]), 100 * 95, 1);
  EXPECT_NEAR(static_cast<double>(data[1]), 100 * 95, 1);
  EXPECT_NEAR(static_cast<double>(data[2]), 200 * 95, 1);
  EXPECT_NEAR(static_cast<double>(data[3]), 200 * 95, 1);
  EXPECT_NEAR(static_cast<double>(data[4]), 10 * 95, 1);
  EXPECT_EQ(data[5], 1);
  for (int r = 0; r < 5; ++r) EXPECT_EQ(status[static_cast<std::size_t>(r)], 3) << "role " << r;
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    if (it->info.role != DeviceRole::kConsole) continue;
    EXPECT_TRUE(std::holds_alternative<fusion::SessionEnd>(it->sample.payload));
    break;
  }
  EXPECT_EQ(sim.samples_emitted(), all.size());
}

TEST(Simulator, DeviceClocksFollowOffsetDriftAndLatency) {
  const SimConfig c = short_config(60.0);
  Simulator sim(c);
  const std::vector<Emitted> all = collect(sim);
  for (int r = 0; r < 5; ++r) {
    const auto role = static_cast<DeviceRole>(r);
    const ClockTruth& clock = sim.clock(role);
    ASSERT_TRUE(clock.enabled);
    const Emitted* first = nullptr;
    const Emitted* last = nullptr;
    double latency_sum = 0.0;
    int frames = 0;
    for (const Emitted& e : all) {
      if (e.info.role != role) continue;
      EXPECT_NEAR(static_cast<double>(e.sample.device_t_us),
                  static_cast<double>(sim.device_time_us(role, e.info.true_t_us)), 1.0);
      if (first == nullptr) first = &e;
      last = &e;
      if (e.info.frame_end) {
        latency_sum += static_cast<double>(e.sample.arrival_t_us - e.info.true_t_us);
        ++frames;
      }
    }
    ASSERT_NE(first, nullptr);
    const double device_span = static_cast<double>(last->sample.device_t_us -
                                                   first->sample.device_t_us);
    const double true_span = static_cast<double>(last->info.true_t_us - first->info.true_t_us);
    EXPECT_NEAR((device_span / true_span - 1.0) * 1e6, clock.drift_ppm, 0.1) << "role " << r;
    // Mean latency ≈ 8 ms (sd 2 ms per frame; the in-order rule only adds).
    EXPECT_NEAR(latency_sum / frames, 8000.0, 600.0) << "role " << r;
  }
}

TEST(Simulator, TruthCadenceContactTimeAndPeakForceMatchTheParameters) {
  SimConfig c = short_config(180.0);
  Simulator sim(c);
  const auto steps = sim.step_truths();
  ASSERT_GT(steps.size(), 400u);
  const double span_s = static_cast<double>(steps.back().ic_t_us - steps.front().ic_t_us) * 1e-6;
  const double cadence = 60.0 * static_cast<double>(steps.size() - 1) / span_s;
  EXPECT_NEAR(cadence, c.runner.cadence_spm, 0.5);
  double contact = 0.0;
  double peak = 0.0;
  for (const StepTruth& s : steps) {
    contact += s.contact_time_s;
    peak += s.peak_force_bw;
    const auto i = static_cast<std::size_t>(&s - steps.data());
    EXPECT_EQ(s.index, i);
    if (i > 0) {
      EXPECT_NE(s.side, steps[i - 1].side) << "steps alternate feet";
    }
  }
  const double n = static_cast<double>(steps.size());
  EXPECT_NEAR(contact / n, c.runner.contact_time_s, 0.01 * c.runner.contact_time_s);
  EXPECT_NEAR(peak / n, c.runner.peak_force_bw, 0.02 * c.runner.peak_force_bw);
  std::printf("cadence %.2f spm (param %.1f), contact %.4f s (%.3f), peak %.3f BW (%.2f)\n",
              cadence, c.runner.cadence_spm, contact / n, c.runner.contact_time_s, peak / n,
              c.runner.peak_force_bw);
}

TEST(Simulator, MetronomeRunnerTruthEqualsParametersStepByStep) {
  SimConfig c = short_config(60.0);
  c.variability = GaitVariability{0.0, 0.0, 0.0, 0.0};
  Simulator sim(c);
  double impulse = 0.0;
  double time = 0.0;
  for (const StepTruth& s : sim.step_truths()) {
    EXPECT_NEAR(s.contact_time_s, c.runner.contact_time_s, 1e-7);
    EXPECT_NEAR(s.cadence_spm, c.runner.cadence_spm, 1e-4);
    EXPECT_NEAR(s.peak_force_bw, c.runner.peak_force_bw, 1e-6);
    EXPECT_NEAR(s.knee_ic_rad, c.runner.knee_ic_deg * kDeg, 1e-9);
    EXPECT_NEAR(s.knee_peak_rad, c.runner.knee_stance_peak_deg * kDeg, 1e-6);
    EXPECT_NEAR(s.thigh_ic_rad, c.runner.thigh_ic_deg * kDeg, 1e-9);
    EXPECT_NEAR(s.strike_index_pct, c.runner.strike_index_pct, 0.5);
    EXPECT_NEAR(s.step_length_m, c.runner.speed_mps * 60.0 / c.runner.cadence_spm, 1e-6);
    EXPECT_GT(s.flight_time_s, 0.05);
    EXPECT_GT(s.impact_peak_bw, c.runner.impact_peak_bw - 0.01);  // rearfoot: a real peak
    EXPECT_GT(s.valr_bw_per_s, 40.0);
    EXPECT_LT(s.valr_bw_per_s, 120.0);
    EXPECT_GE(s.vilr_bw_per_s, s.valr_bw_per_s);
    impulse += s.impulse_bw_s;
    time += s.step_time_s;
  }
  // MODEL.md §1 dynamic calibration relies on it: stride-mean vGRF is 1 BW.
  EXPECT_NEAR(impulse / time, 1.0, 0.002);
}

TEST(Simulator, CellPressuresTimesAreasSumToTheRenderedForce) {
  SimConfig c = short_config(30.0);
  make_sensors_ideal(c);
  Simulator sim(c);
  const fusion::SessionConfig sc = session_config(c, 0, 0);
  double max_err = 0.0;
  int loaded = 0;
  Emitted e{};
  while (sim.next(e.sample, &e.info)) {
    const auto* in = std::get_if<fusion::InsoleSample>(&e.sample.payload);
    if (in == nullptr) continue;
    ASSERT_EQ(in->cell_count, 16);
    const int side = e.sample.side == Side::kLeft ? 0 : 1;
    double f = 0.0;
    for (int i = 0; i < in->cell_count; ++i) {
      f += static_cast<double>(in->pressure_pa[i]) *
           sc.insoles[static_cast<std::size_t>(side)].area_m2[static_cast<std::size_t>(i)];
    }
    const double truth = sim.truth_at(e.sample.side, e.info.true_t_us).force_n;
    max_err = std::max(max_err, std::abs(f - truth) / std::max(truth, 1.0));
    if (truth > 100.0) ++loaded;
  }
  EXPECT_GT(loaded, 1000);
  EXPECT_LT(max_err, 1e-5) << "relative error of Σp·A (float pressures)";
}

TEST(Simulator, GyroIntegratesToTheTruthKneeAngle) {
  // Seel 2014 / MODEL.md §2: ∫(ω_t·j₁ − ω_s·j₂)dt = θ. Noise and bias off.
  SimConfig c = short_config(40.0);
  make_sensors_ideal(c);
  for (Side side : {Side::kLeft, Side::kRight}) {
    Simulator run(c);
    bool started = false;
    double theta = 0.0;
    double prev_rate = 0.0;
    std::int64_t prev_t = 0;
    std::int64_t t0 = 0;
    double max_err = 0.0;
    const std::int64_t begin = run.running_t_us() + 5'000'000;
    Emitted e{};
    while (run.next(e.sample, &e.info)) {
      const auto* k = std::get_if<fusion::KneeSample>(&e.sample.payload);
      if (k == nullptr || e.sample.side != side || e.info.true_t_us < begin) continue;
      const double rate = static_cast<double>(k->thigh.gyro_radps[2]) -
                          static_cast<double>(k->shank.gyro_radps[2]);
      if (!started) {
        started = true;
        t0 = e.info.true_t_us;
        theta = run.truth_at(side, t0).knee_rad;
      } else {
        theta += 0.5 * (rate + prev_rate) * static_cast<double>(e.sample.device_t_us - prev_t) *
                 1e-6;
        const double truth = run.truth_at(side, e.info.true_t_us).knee_rad;
        max_err = std::max(max_err, std::abs(theta - truth));
      }
      prev_rate = rate;
      prev_t = e.sample.device_t_us;
      if (e.info.true_t_us - t0 > 10'000'000) break;
    }
    ASSERT_TRUE(started);
    EXPECT_LT(max_err, 0.5 * kDeg) << "max |∫Δω − θ| over 10 s, deg: " << max_err / kDeg;
    std::printf("side %d: gyro-integrated knee angle max error over 10 s: %.4f deg\n",
                static_cast<int>(side), max_err / kDeg);
  }
}

TEST(Simulator, AccelerometerTiltMatchesSegmentAnglesWhenQuasiStatic) {
  // docs/model-conventions.md: shank φ_s = atan2(−a_x, a_y), thigh φ_t = atan2(a_x, a_y), when
  // the sensor is not accelerating. Default (noisy) sensors.
  const SimConfig c = short_config(40.0);
  Simulator sim(c);
  std::vector<std::int64_t> ic[2];
  for (const StepTruth& s : sim.step_truths()) {
    ic[s.side == Side::kLeft ? 0 : 1].push_back(s.ic_t_us);
  }
  int standing = 0;
  int running = 0;
  double max_err = 0.0;
  Emitted e{};
  while (sim.next(e.sample, &e.info)) {
    const auto* k = std::get_if<fusion::KneeSample>(&e.sample.payload);
    if (k == nullptr) continue;
    const LegTruth t = sim.truth_at(e.sample.side, e.info.true_t_us);
    const double lin = std::hypot(t.shank_sensor_accel_mps2[0], t.shank_sensor_accel_mps2[1]);
    const double lin_thigh =
        std::hypot(t.thigh_sensor_accel_mps2[0], t.thigh_sensor_accel_mps2[1]);
    const bool still = e.info.true_t_us < sim.start_t_us() + 4'900'000;  // standing_s = 5
    bool quiet = lin < 0.1 && lin_thigh < 0.1;
    // Outside the impact spike (60 ms after this foot's IC).
    for (std::int64_t t_ic : ic[e.sample.side == Side::kLeft ? 0 : 1]) {
      if (e.info.true_t_us >= t_ic && e.info.true_t_us < t_ic + 70'000) quiet = false;
    }
    if (!still && !quiet) continue;
    (still ? standing : running) += 1;
    const double shank = std::atan2(-static_cast<double>(k->shank.accel_mps2[0]),
                                    static_cast<double>(k->shank.accel_mps2[1]));
    const double thigh = std::atan2(static_cast<double>(k->thigh.accel_mps2[0]),
                                    static_cast<double>(k->thigh.accel_mps2[1]));
    max_err = std::max({max_err, std::abs(shank - t.shank_rad), std::abs(thigh - t.thigh_rad)});
  }
  EXPECT_GT(standing, 1500);
  EXPECT_LT(max_err, 1.0 * kDeg) << "max tilt error, deg: " << max_err / kDeg;
  std::printf("quasi-static samples: %d standing, %d running; max tilt error %.3f deg\n",
              standing, running, max_err / kDeg);
}

TEST(Simulator, ImuNoiseAndGyroBiasMatchTheConfiguredModel) {
  // MODEL.md §0 densities: sd = density · √rate. The x/y gyro axes and the z accel axis see no
  // motion in the sagittal model, so they show the errors alone.
  SimConfig c = short_config(60.0);
  c.knee.gyro_bias_walk_radps_rts = 0.0;
  c.knee.gyro_bias_sd_dps = 0.0;
  Simulator noisy(c);
  double g_sum2 = 0.0;
  double a_sum2 = 0.0;
  int n = 0;
  Emitted e{};
  while (noisy.next(e.sample, &e.info)) {
    const auto* k = std::get_if<fusion::KneeSample>(&e.sample.payload);
    if (k == nullptr) continue;
    g_sum2 += static_cast<double>(k->shank.gyro_radps[0]) * k->shank.gyro_radps[0];
    a_sum2 += static_cast<double>(k->thigh.accel_mps2[2]) * k->thigh.accel_mps2[2];
    ++n;
  }
  EXPECT_NEAR(std::sqrt(g_sum2 / n), 0.01 * kDeg * std::sqrt(200.0), 0.03 * 0.01 * kDeg * 14.14);
  EXPECT_NEAR(std::sqrt(a_sum2 / n), 150e-6 * kG * std::sqrt(200.0), 0.03 * 150e-6 * kG * 14.14);

  // Bias: a constant per axis (sd 3 °/s) plus a slow walk; no white noise here.
  c.knee.gyro_noise_dps_rthz = 0.0;
  c.knee.gyro_bias_sd_dps = 3.0;
  c.knee.gyro_bias_walk_radps_rts = 1e-4;
  Simulator biased(c);
  double first = std::numeric_limits<double>::quiet_NaN();
  double last = 0.0;
  while (biased.next(e.sample, &e.info)) {
    const auto* k = std::get_if<fusion::KneeSample>(&e.sample.payload);
    if (k == nullptr || e.info.role != DeviceRole::kKneeLeft) continue;
    last = k->thigh.gyro_radps[1];
    if (std::isnan(first)) first = last;
  }
  EXPECT_GT(std::abs(first), 0.01 * kDeg);  // a zero offset is (almost) impossible
  EXPECT_LT(std::abs(first), 15.0 * kDeg);
  // The walk: sd 1e-4 rad/s/√s over 60 s is ≈ 8e-4 rad/s; 5 sd.
  EXPECT_NE(first, last);
  EXPECT_LT(std::abs(last - first), 5 * 1e-4 * std::sqrt(60.0));
}

TEST(Simulator, LegTruthIsTwiceDifferentiable) {
  const SimConfig c = short_config(30.0);
  Simulator sim(c);
  constexpr std::int64_t kStepUs = 50;
  double max_rate_err = 0.0;
  double max_accel_jump = 0.0;
  double prev_accel = std::numeric_limits<double>::quiet_NaN();
  LegTruth prev = sim.truth_at(Side::kLeft, sim.running_t_us());
  for (std::int64_t t = sim.running_t_us() + kStepUs; t < sim.running_t_us() + 3'000'000;
       t += kStepUs) {
    const LegTruth cur = sim.truth_at(Side::kLeft, t);
    const double h = kStepUs * 1e-6;
    // The reported rate is the derivative of the angle (midpoint rule error ~ h²·θ''').
    const double mean_rate = 0.5 * (cur.knee_rate_radps + prev.knee_rate_radps);
    max_rate_err =
        std::max(max_rate_err, std::abs((cur.knee_rad - prev.knee_rad) / h - mean_rate));
    const double accel = (cur.shank_rate_radps - prev.shank_rate_radps) / h;
    if (!std::isnan(prev_accel)) {
      max_accel_jump = std::max(max_accel_jump, std::abs(accel - prev_accel));
    }
    prev_accel = accel;
    prev = cur;
  }
  EXPECT_LT(max_rate_err, 1e-3);
  // A jump in angular acceleration (a C¹-only curve) would show as ~100 rad/s² here; a C²
  // curve changes by at most jerk × h ≈ 10⁴ rad/s³ × 50 µs.
  EXPECT_LT(max_accel_jump, 5.0);
}

TEST(Simulator, KneeSleeveReportsTheTruthAngleWithItsNoise) {
  SimConfig c = short_config(30.0);
  c.knee.sleeve = true;
  Simulator sim(c);
  double sum = 0.0;
  double sum2 = 0.0;
  int n = 0;
  Emitted e{};
  while (sim.next(e.sample, &e.info)) {
    const auto* k = std::get_if<fusion::KneeSample>(&e.sample.payload);
    if (k == nullptr) continue;
    ASSERT_TRUE(k->has_angle);
    ASSERT_TRUE(k->has_imus);
    const double err = static_cast<double>(k->knee_angle_rad) -
                       sim.truth_at(e.sample.side, e.info.true_t_us).knee_rad;
    sum += err;
    sum2 += err * err;
    ++n;
  }
  ASSERT_GT(n, 10000);
  EXPECT_NEAR(sum / n, 0.0, 0.05 * kDeg);
  EXPECT_NEAR(std::sqrt(sum2 / n), 0.5 * kDeg, 0.05 * kDeg);
}

TEST(Simulator, StandingThenBlendIntoRunning) {
  SimConfig c = short_config(30.0);
  make_sensors_ideal(c);
  Simulator sim(c);
  EXPECT_EQ(sim.running_t_us(), sim.start_t_us() + 8'000'000);
  ASSERT_FALSE(sim.step_truths().empty());
  EXPECT_GE(sim.step_truths().front().ic_t_us, sim.running_t_us());
  const double bw = c.runner.body_mass_kg * kG;
  const LegTruth stand = sim.truth_at(Side::kLeft, sim.start_t_us() + 2'000'000);
  EXPECT_NEAR(stand.force_n, 0.5 * bw, 1e-9);
  EXPECT_NEAR(stand.knee_rad, 4.0 * kDeg, 1e-12);
  EXPECT_EQ(stand.knee_rate_radps, 0.0);
  EXPECT_EQ(sim.belt_speed_mps(sim.start_t_us() + 2'000'000), 0.0);
  EXPECT_DOUBLE_EQ(sim.belt_speed_mps(sim.running_t_us() + 1), c.runner.speed_mps);
  Emitted e{};
  int treadmill = 0;
  while (sim.next(e.sample, &e.info)) {
    const auto* tm = std::get_if<fusion::TreadmillSample>(&e.sample.payload);
    if (tm == nullptr) continue;
    ++treadmill;
    EXPECT_NEAR(tm->belt_speed_mps, sim.belt_speed_mps(e.info.true_t_us), 1e-6);
    EXPECT_EQ(tm->incline_fraction, 0.0f);
  }
  EXPECT_NEAR(treadmill, 300, 1);
}

TEST(Simulator, StepTruthsDrainInStepWithTheStream) {
  const SimConfig c = short_config(40.0);
  Simulator sim(c);
  std::size_t drained = 0;
  Emitted e{};
  StepTruth t;
  while (sim.next(e.sample, &e.info)) {
    while (sim.next_step_truth(t)) {
      EXPECT_EQ(t.index, drained);
      EXPECT_LE(t.to_t_us, e.sample.arrival_t_us);
      ++drained;
    }
  }
  while (sim.next_step_truth(t)) ++drained;
  EXPECT_EQ(drained, sim.step_truths().size());
  EXPECT_GT(drained, 80u);
}

TEST(Simulator, DeviceIndicesAreStampedFromTheCallersMapping) {
  SimConfig c = short_config(5.0);
  DeviceIndices ix;
  ix.device = {10, 11, 12, 13, 14, 15};
  ix.runner = 7;
  ix.station = 3;
  Simulator sim(c, ix);
  Emitted e{};
  while (sim.next(e.sample, &e.info)) {
    EXPECT_EQ(e.sample.device, 10u + static_cast<std::uint32_t>(e.info.role));
    EXPECT_EQ(e.sample.runner, 7u);
    EXPECT_EQ(e.sample.station, 3u);
  }
}

TEST(Simulator, RenderingSpeedThirtyMinutes) {
  // Printed, not asserted (no timed tests): one runner, 30 min, all devices at default rates.
  SimConfig c;
  const auto t0 = std::chrono::steady_clock::now();
  Simulator sim(c);
  const auto t1 = std::chrono::steady_clock::now();
  fusion::Sample s{};
  std::uint64_t n = 0;
  while (sim.next(s)) ++n;
  const auto t2 = std::chrono::steady_clock::now();
  const double build = std::chrono::duration<double>(t1 - t0).count();
  const double render = std::chrono::duration<double>(t2 - t1).count();
  std::printf("30 min simulated: construction %.3f s (%zu steps), %llu samples in %.3f s "
              "(%.2f M samples/s)\n",
              build, sim.step_truths().size(), static_cast<unsigned long long>(n), render,
              static_cast<double>(n) / render * 1e-6);
  EXPECT_GT(n, 1'000'000u);
}

}  // namespace
}  // namespace kneeload::sim
