// The data fusion_bench and fusion_count run on: the simulator's healthy runner (seed 7, 300 s,
// knees 200 Hz, insoles 100 Hz, treadmill 10 Hz), rendered once up front so the figures measure
// fusion only; its streams per sensor kind; the left leg's filter inputs taken from it; and a
// synthetic sequence of step metrics for the work done at toe-off.
#pragma once

#include <algorithm>
#include <cstdint>
#include <variant>
#include <vector>

#include "kneeload/fusion/filters.hpp"
#include "kneeload/fusion/risk_rules.hpp"
#include "kneeload/fusion/sample.hpp"
#include "kneeload/fusion/session.hpp"
#include "kneeload/sim/registry.hpp"
#include "kneeload/sim/simulator.hpp"

namespace kneeload::bench {

struct Recording {
  sim::SimConfig config;
  std::vector<fusion::Sample> samples;  // arrival order, every device
};

inline const Recording& healthy_runner() {
  static const Recording r = [] {
    Recording rec;
    rec.config.seed = 7;
    rec.config.duration_s = 300.0;
    rec.config.knee.rate_hz = 200.0;  // the defaults, said here: knees 200 Hz, insoles 100 Hz
    rec.config.insole.rate_hz = 100.0;
    sim::Simulator simulator(rec.config);
    fusion::Sample s;
    while (simulator.next(s)) rec.samples.push_back(s);
    return rec;
  }();
  return r;
}

// The stream one sensor kind's figure is measured on: that kind's samples plus the treadmill's
// (the belt speed is an input of gait and calibration), in arrival order. nullptr: every sample
// of the runner. The knee stream exercises the knee filters alone; the insole stream the force
// filter, calibration, gait events, load model, trends and rules.
inline std::vector<fusion::Sample> stream_of(const Recording& rec, const fusion::SensorKind* kind) {
  std::vector<fusion::Sample> stream;
  for (const fusion::Sample& s : rec.samples) {
    if (kind == nullptr || s.kind == *kind || s.kind == fusion::SensorKind::kTreadmill) {
      stream.push_back(s);
    }
  }
  return stream;
}

inline fusion::SessionConfig session_config(const Recording& rec) {
  return sim::session_config(rec.config, 0, 0);
}

inline double seconds(std::int64_t dt_us) { return static_cast<double>(dt_us) * 1e-6; }

struct KneeInput {
  fusion::Imu6 thigh;
  fusion::Imu6 shank;
  double dt_s;  // since the previous pair (device clock)
};

// The left knee's IMU pairs of the healthy runner.
inline const std::vector<KneeInput>& knee_inputs() {
  static const std::vector<KneeInput> inputs = [] {
    std::vector<KneeInput> v;
    std::int64_t last = 0;
    for (const fusion::Sample& s : healthy_runner().samples) {
      const auto* k = std::get_if<fusion::KneeSample>(&s.payload);
      if (k == nullptr || s.side != fusion::Side::kLeft || !k->has_imus) continue;
      if (!v.empty() && s.device_t_us <= last) continue;
      v.push_back({k->thigh, k->shank, v.empty() ? 0.005 : seconds(s.device_t_us - last)});
      last = s.device_t_us;
    }
    return v;
  }();
  return inputs;
}

struct ForceInput {
  double force_bw;
  double dt_s;
  bool swing;  // below the contact threshold: the session applies the swing pseudo-measurement
};

// The left insole's uncalibrated force (ΣpA through the registry geometry) in body weights.
inline const std::vector<ForceInput>& force_inputs() {
  static const std::vector<ForceInput> inputs = [] {
    const Recording& rec = healthy_runner();
    const fusion::SessionConfig sc = session_config(rec);
    const fusion::InsoleGeometry& geo = sc.insoles[0];
    const double bw_n = sc.runner_params.body_mass_kg * fusion::kGravityMps2;
    const double threshold_bw =
        std::max(sc.model.contact_threshold_n, sc.model.contact_threshold_bw * bw_n) / bw_n;
    std::vector<ForceInput> v;
    std::int64_t last = 0;
    for (const fusion::Sample& s : rec.samples) {
      const auto* in = std::get_if<fusion::InsoleSample>(&s.payload);
      if (in == nullptr || s.side != fusion::Side::kLeft) continue;
      if (!v.empty() && s.device_t_us <= last) continue;
      double sum_pa = 0.0;
      for (int c = 0; c < std::min<int>(in->cell_count, geo.cell_count); ++c) {
        sum_pa += static_cast<double>(in->pressure_pa[c]) * geo.area_m2[static_cast<std::size_t>(c)];
      }
      const double f = geo.force_gain * sum_pa / bw_n;
      v.push_back({f, v.empty() ? 0.01 : seconds(s.device_t_us - last), f < threshold_bw});
      last = s.device_t_us;
    }
    return v;
  }();
  return inputs;
}

// One predict + update per filter and input, as fusion_bench times them and fusion_count's
// digest checks them (default mounting axes and parameters).
// KneeAngleFilter::on_imu_pair: predict, the gyro update and the accelerometer-angle update.
inline fusion::KneeImuResult step_knee_filter(fusion::KneeAngleFilter& f, const KneeInput& in) {
  static const fusion::KneeJointAxes axes;
  return f.on_imu_pair(in.thigh, in.shank, axes, in.dt_s, true);
}
// ShankTiltFilter: predict on the shank gyro, then the accelerometer-tilt update (gated or not).
inline fusion::UpdateStatus step_shank_filter(fusion::ShankTiltFilter& f, const KneeInput& in) {
  static const fusion::HingeAxis axis;
  f.predict(axis.rate_radps(in.shank), in.dt_s);
  return f.update_tilt(fusion::accel_shank_tilt_rad(in.shank, axis));
}
// ForceFilter: predict, then the force update in stance or the swing pseudo-measurement below
// the contact threshold, as the session applies them (about 60 % swing at 100 Hz running).
inline fusion::UpdateStatus step_force_filter(fusion::ForceFilter& f, const ForceInput& in) {
  f.predict(in.dt_s);
  return in.swing ? f.update_swing() : f.update(in.force_bw);
}

// Steps alternating left/right every 350 ms (171 spm) with metrics that vary from step to step
// (a fixed pseudo-random sequence), so rolling medians sort real spreads.
struct StepStream {
  std::uint64_t lcg = 12345;
  std::int64_t t_us = 0;
  int index = 0;

  double noise() {
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(lcg >> 11) / 9007199254740992.0 - 0.5;  // [-0.5, 0.5)
  }
  fusion::GaitMetrics next() {
    fusion::GaitMetrics m;
    m.contact_time_s = 0.25 + 0.02 * noise();
    m.step_time_s = 0.35 + 0.02 * noise();
    m.cadence_spm = 60.0 / m.step_time_s;
    m.peak_force_bw = 2.5 + 0.2 * noise();
    m.impact_peak_bw = 1.6 + 0.2 * noise();
    m.valr_bw_per_s = 60.0 + 10.0 * noise();
    m.knee_angle_ic_rad = 0.2 + 0.05 * noise();
    m.knee_angle_peak_rad = 0.75 + 0.05 * noise();
    m.pfj_stress_peak_mpa = 8.0 + 1.0 * noise();
    m.stress_time_integral_per_km_mpa_s = 1500.0 + 100.0 * noise();
    m.itb_zone_time_s = 0.03 + 0.01 * noise();
    m.cop_y_m = 0.04 + 0.005 * noise();
    m.midfoot_peak_pressure_pa = 120e3 + 20e3 * noise();
    t_us += 350'000;
    ++index;
    return m;
  }
  fusion::Side side() const { return index % 2 == 0 ? fusion::Side::kLeft : fusion::Side::kRight; }
};

}  // namespace kneeload::bench
