// Tests for the daemon's configuration loader: the example config, every class of refusal (with
// its key and an "expected ..., got ..." reason), command-line overrides and the reload rule.

#include "daemon/config.hpp"
#include "daemon/registry.hpp"

#include <gtest/gtest.h>

#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numbers>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace kneeload::daemon {
namespace {

using fusion::SensorKind;
using fusion::Side;

const std::string kExamplePath =
    std::string(KNEELOAD_SOURCE_DIR) + "/deploy/config/kneeloadd.example.toml";
constexpr const char* kSource = "test.toml";

Config parse(const std::string& text) { return parse_config(text, kSource); }

std::string runner(const std::string& id, const std::string& extra = "") {
  return "[[runners]]\nid = \"" + id + "\"\n" + extra;
}

// A device table; `side` may be empty (omitted). Insoles get a 3-cell table unless `extra`
// supplies their cell keys (`own_cells`).
std::string device(const std::string& id, const std::string& kind, const std::string& side,
                   const std::string& extra = "", const std::string& station = "st01",
                   const std::string& runner_id = "r01", bool own_cells = false) {
  std::string t = "[[devices]]\nid = \"" + id + "\"\nstation = \"" + station + "\"\nrunner = \"" +
                  runner_id + "\"\nkind = \"" + kind + "\"\n";
  if (!side.empty()) t += "side = \"" + side + "\"\n";
  if (kind == "insole" && !own_cells) t += "cell_areas_cm2 = [10.0, 12.5, 9.0]\n";
  return t + extra;
}

std::string numbers(int count, const std::string& value) {
  std::string out = "[";
  for (int i = 0; i < count; ++i) out += (i > 0 ? ", " : "") + value;
  return out + "]";
}

// Passes iff parsing `text` throws a ConfigError for `key` whose reason contains every part
// of `reason_parts`, and whose what() is "test.toml: KEY: REASON".
testing::AssertionResult Refused(const std::string& text, const std::string& key,
                                 const std::vector<std::string>& reason_parts) {
  try {
    parse(text);
  } catch (const ConfigError& e) {
    if (e.key() != key) {
      return testing::AssertionFailure() << "expected the refusal at key \"" << key
                                         << "\", got key \"" << e.key() << "\": " << e.what();
    }
    for (const std::string& part : reason_parts) {
      if (e.reason().find(part) == std::string::npos) {
        return testing::AssertionFailure()
               << "expected the reason to contain «" << part << "», got «" << e.reason() << "»";
      }
    }
    const std::string what = std::string(kSource) + ": " + key + ": " + e.reason();
    if (e.file() != kSource || what != e.what()) {
      return testing::AssertionFailure()
             << "expected what() «" << what << "», got «" << e.what() << "»";
    }
    return testing::AssertionSuccess();
  }
  return testing::AssertionFailure()
         << "expected a ConfigError at \"" << key << "\", got a config that loads:\n"
         << text;
}

// ---------------------------------------------------------------------------------------------
// The example config

TEST(ConfigExample, LoadsTwoStationsEachWithOneRunnerAndSixDevices) {
  const Config c = load_config(kExamplePath);
  EXPECT_EQ(c.source, kExamplePath);
  ASSERT_EQ(c.runners.size(), 2u);
  EXPECT_EQ(c.runners[0].id, "r01");
  EXPECT_EQ(c.runners[1].id, "r02");
  EXPECT_EQ(c.runners[0].params.body_mass_kg, 72.0);
  EXPECT_EQ(c.runners[0].params.height_m, 1.78);
  EXPECT_EQ(c.runners[0].shoe_km, 412.5);
  EXPECT_FALSE(c.runners[0].shoe_id.empty());
  ASSERT_EQ(c.devices.size(), 12u);

  for (const std::string station : {"st01", "st02"}) {
    const std::string runner_id = station == "st01" ? "r01" : "r02";
    std::multiset<std::pair<SensorKind, Side>> slots;
    for (const DeviceConfig& d : c.devices) {
      if (d.station != station) continue;
      EXPECT_EQ(d.runner, runner_id) << "device " << d.id << " of station " << station;
      slots.insert({d.kind, d.side});
    }
    const std::multiset<std::pair<SensorKind, Side>> expected{
        {SensorKind::kInsole, Side::kLeft},    {SensorKind::kInsole, Side::kRight},
        {SensorKind::kKnee, Side::kLeft},      {SensorKind::kKnee, Side::kRight},
        {SensorKind::kTreadmill, Side::kNone}, {SensorKind::kConsole, Side::kNone}};
    EXPECT_EQ(slots, expected) << "station " << station;
  }
}

TEST(ConfigExample, UsesTheDocumentedEndpoints) {
  const Config c = load_config(kExamplePath);
  EXPECT_EQ(c.ingest.endpoints, std::vector<std::string>{"tcp://127.0.0.1:5600"});
  EXPECT_EQ(c.publish.endpoint, "tcp://127.0.0.1:5601");
  EXPECT_EQ(c.metrics_address, "127.0.0.1:9464");
}

// The example documents the defaults; its values must be the code's defaults.
TEST(ConfigExample, SectionValuesEqualTheCodeDefaults) {
  const Config c = load_config(kExamplePath);
  const Config d;
  EXPECT_EQ(c.ingest.max_frame_bytes, d.ingest.max_frame_bytes);
  EXPECT_EQ(c.ingest.max_samples_per_frame, d.ingest.max_samples_per_frame);
  EXPECT_EQ(c.ingest.rcvhwm, d.ingest.rcvhwm);
  EXPECT_EQ(c.publish.sndhwm, d.publish.sndhwm);
  EXPECT_EQ(c.publish.nodrop, d.publish.nodrop);
  EXPECT_EQ(c.publish.heartbeat_s, d.publish.heartbeat_s);
  EXPECT_EQ(c.pipeline.workers, d.pipeline.workers);
  EXPECT_EQ(c.pipeline.ingest_ring_capacity, d.pipeline.ingest_ring_capacity);
  EXPECT_EQ(c.pipeline.output_ring_capacity, d.pipeline.output_ring_capacity);
  EXPECT_EQ(c.pipeline.max_devices, d.pipeline.max_devices);
  EXPECT_EQ(c.pipeline.max_runners, d.pipeline.max_runners);
  EXPECT_EQ(c.pipeline.max_stations, d.pipeline.max_stations);
  EXPECT_EQ(c.pipeline.idle_flush_us, d.pipeline.idle_flush_us);
  EXPECT_EQ(c.stale_after_s, d.stale_after_s);
  EXPECT_EQ(c.state_dir, d.state_dir);
  EXPECT_EQ(c.store.enabled, d.store.enabled);
  EXPECT_EQ(c.store.checkpoint_interval_s, d.store.checkpoint_interval_s);
  EXPECT_EQ(c.store.ring_capacity, d.store.ring_capacity);
  EXPECT_EQ(c.store.required, d.store.required);
  EXPECT_EQ(c.model.state_rate_hz, d.model.state_rate_hz);
  EXPECT_EQ(c.model.contact_threshold_n, d.model.contact_threshold_n);
  EXPECT_EQ(c.model.contact_threshold_bw, d.model.contact_threshold_bw);
  EXPECT_EQ(c.model.contact_hysteresis, d.model.contact_hysteresis);
  EXPECT_EQ(c.model.refractory_s, d.model.refractory_s);
  EXPECT_EQ(c.model.session_idle_end_s, d.model.session_idle_end_s);
  EXPECT_EQ(c.model.pain_high_score, d.model.pain_high_score);
}

TEST(ConfigExample, InsoleAreasAreConvertedFromCm2ToM2Exactly) {
  const Config c = load_config(kExamplePath);
  const DeviceConfig& left = c.devices[0];
  ASSERT_EQ(left.id, "st01-insole-L");
  ASSERT_EQ(left.insole.cell_count, 16);
  // 8.0, 9.0 and 9.5-style values are exact in binary; the m² value must be the double
  // nearest the exact quotient, i.e. equal to the literal.
  EXPECT_EQ(left.insole.area_m2[0], 8.0e-4);
  EXPECT_EQ(left.insole.area_m2[2], 9.0e-4);
  EXPECT_EQ(left.insole.area_m2[4], 8.5e-4);
  EXPECT_EQ(left.insole.area_m2[15], 5.5e-4);
  double total_m2 = 0.0;
  for (int i = 0; i < left.insole.cell_count; ++i) total_m2 += left.insole.area_m2[i];
  EXPECT_NEAR(total_m2, 123.5e-4, 1e-15) << "sum of the 16 cell areas of st01-insole-L";
  for (std::size_t i = 16; i < left.insole.area_m2.size(); ++i) {
    EXPECT_EQ(left.insole.area_m2[i], 0.0) << "unused cell " << i;
  }
  EXPECT_EQ(left.insole.x_norm[0], 0.06);
  EXPECT_EQ(left.insole.x_norm[13], 0.86);
  EXPECT_EQ(left.insole.y_norm[12], 0.16);
  EXPECT_EQ(left.insole.force_gain, 1.0);
}

TEST(ConfigExample, InsoleCellAreasSumToAPlausibleInsole) {
  const Config c = load_config(kExamplePath);
  for (const DeviceConfig& d : c.devices) {
    if (d.kind != SensorKind::kInsole) continue;
    double total_cm2 = 0.0;
    for (int i = 0; i < d.insole.cell_count; ++i) total_cm2 += d.insole.area_m2[i] * 1e4;
    EXPECT_EQ(d.insole.cell_count, 16) << d.id;
    EXPECT_GE(total_cm2, 100.0) << d.id;
    EXPECT_LE(total_cm2, 150.0) << d.id;
  }
}

TEST(ConfigExample, KneeAxesAreNormalisedOnLoad) {
  const Config c = load_config(kExamplePath);
  const DeviceConfig* knee = nullptr;
  for (const DeviceConfig& d : c.devices) {
    if (d.id == "st02-knee-L") knee = &d;
  }
  ASSERT_NE(knee, nullptr);
  const auto& a = knee->knee.thigh_axis;  // written as [0.04, -0.03, 0.998]
  const double norm = std::hypot(0.04, -0.03, 0.998);
  EXPECT_NEAR(std::hypot(a[0], a[1], a[2]), 1.0, 1e-15);
  EXPECT_NEAR(a[0], 0.04 / norm, 1e-15);
  EXPECT_NEAR(a[1], -0.03 / norm, 1e-15);
  EXPECT_NEAR(a[2], 0.998 / norm, 1e-15);
}

// ---------------------------------------------------------------------------------------------
// [model] and [rules]: every key, its field, and the example config that documents it

using fusion::ModelParams;

// One model or rule key and the fusion::ModelParams field it sets, in the field's C++ unit.
struct ModelKey {
  const char* key;
  std::function<double(const ModelParams&)> field;
};

#define KNEELOAD_KEY(key, expr) \
  ModelKey { key, [](const ModelParams& m) { return static_cast<double>(m.expr); } }

// Every key of [model] and [rules]; ConfigModelKeys tests hold it equal to what the parser, the
// example config and the README know.
const std::vector<ModelKey>& model_keys() {
  static const std::vector<ModelKey> keys{
      KNEELOAD_KEY("model.state_rate_hz", state_rate_hz),
      KNEELOAD_KEY("model.contact_threshold_n", contact_threshold_n),
      KNEELOAD_KEY("model.contact_threshold_bw", contact_threshold_bw),
      KNEELOAD_KEY("model.contact_hysteresis", contact_hysteresis),
      KNEELOAD_KEY("model.refractory_s", refractory_s),
      KNEELOAD_KEY("model.session_idle_end_s", session_idle_end_s),
      KNEELOAD_KEY("model.pain_high_score", pain_high_score),
      KNEELOAD_KEY("model.accel_ic_exclusion_s", accel_ic_exclusion_s),
      KNEELOAD_KEY("model.ankle_x_norm", ankle_x_norm),
      KNEELOAD_KEY("model.insole_width_m", insole_width_m),
      KNEELOAD_KEY("model.midfoot_x_min", midfoot_x_min),
      KNEELOAD_KEY("model.midfoot_x_max", midfoot_x_max),
      KNEELOAD_KEY("model.pta_lead_s", pta_lead_s),
      KNEELOAD_KEY("model.pta_window_s", pta_window_s),
      KNEELOAD_KEY("model.stance_trace_samples", stance_trace_samples),
      KNEELOAD_KEY("model.device_silent_s", device_silent_s),
      KNEELOAD_KEY("model.dynamic_calibration", dynamic_calibration),
      KNEELOAD_KEY("model.calibration_max_incline", calibration_max_incline),
      KNEELOAD_KEY("model.calibration_max_speed_change_mps", calibration_max_speed_change_mps),
      KNEELOAD_KEY("model.pfj_area_model", area_model),
      KNEELOAD_KEY("model.damage_exponent", damage_exponents.primary),
      KNEELOAD_KEY("model.damage_exponent_sensitivity", damage_exponents.sensitivity),
      KNEELOAD_KEY("model.knee.angular_accel_sigma_radps2", knee.angular_accel_sigma),
      KNEELOAD_KEY("model.knee.gyro_sigma_dps", knee.gyro_sigma_radps),
      KNEELOAD_KEY("model.knee.accel_angle_sigma_deg", knee.accel_angle_sigma_rad),
      KNEELOAD_KEY("model.knee.sleeve_angle_sigma_deg", knee.sleeve_angle_sigma_rad),
      KNEELOAD_KEY("model.knee.accel_norm_diff_max_g", knee.accel_norm_diff_max_g),
      KNEELOAD_KEY("model.knee.gate_chi2", knee.gate_chi2),
      KNEELOAD_KEY("model.knee.reacquire_after", knee.reacquire_after),
      KNEELOAD_KEY("model.knee.max_dt_s", knee.max_dt_s),
      KNEELOAD_KEY("model.shank.gyro_noise_density_dps", shank.gyro_noise_density),
      KNEELOAD_KEY("model.shank.tilt_sigma_deg", shank.tilt_sigma_rad),
      KNEELOAD_KEY("model.shank.quasi_static_tol_g", shank.quasi_static_tol_g),
      KNEELOAD_KEY("model.shank.gate_chi2", shank.gate_chi2),
      KNEELOAD_KEY("model.shank.reacquire_after", shank.reacquire_after),
      KNEELOAD_KEY("model.shank.max_dt_s", shank.max_dt_s),
      KNEELOAD_KEY("model.force.rate_noise_sigma_bwps2", force.rate_noise_sigma),
      KNEELOAD_KEY("model.force.force_sigma_bw", force.force_sigma_bw),
      KNEELOAD_KEY("model.force.gate_chi2", force.gate_chi2),
      KNEELOAD_KEY("model.force.reacquire_after", force.reacquire_after),
      KNEELOAD_KEY("model.force.max_dt_s", force.max_dt_s),
      KNEELOAD_KEY("model.calibration.time_constant_s", calibration.time_constant_s),
      KNEELOAD_KEY("model.calibration.min_gain", calibration.min_gain),
      KNEELOAD_KEY("model.calibration.max_gain", calibration.max_gain),
      KNEELOAD_KEY("model.calibration.min_stride_s", calibration.min_stride_s),
      KNEELOAD_KEY("model.calibration.max_stride_s", calibration.max_stride_s),
      KNEELOAD_KEY("model.calibration.min_steady_s", calibration.min_steady_s),
      KNEELOAD_KEY("model.calibration.convergence_window_s", calibration.convergence_window_s),
      KNEELOAD_KEY("model.calibration.convergence_tolerance", calibration.convergence_tolerance),
      KNEELOAD_KEY("model.loading_rate.impact_search_fraction",
                   loading_rate.impact_search_fraction),
      KNEELOAD_KEY("model.loading_rate.impact_min_drop_bw", loading_rate.impact_min_drop_bw),
      KNEELOAD_KEY("model.loading_rate.no_ip_window_start", loading_rate.no_ip_window_start),
      KNEELOAD_KEY("model.loading_rate.no_ip_window_end", loading_rate.no_ip_window_end),
      KNEELOAD_KEY("model.session_load.damage_reference_stress_mpa",
                   session_load.damage_reference_stress_mpa),
      KNEELOAD_KEY("model.trends.rolling_window_s", trends.rolling_window_s),
      KNEELOAD_KEY("model.trends.baseline_start_s", trends.baseline_start_s),
      KNEELOAD_KEY("model.trends.baseline_end_s", trends.baseline_end_s),
      KNEELOAD_KEY("model.trends.baseline_min_steps", trends.baseline_min_steps),
      KNEELOAD_KEY("model.trends.rolling_capacity_steps", trends.rolling_capacity_steps),
      KNEELOAD_KEY("model.trends.baseline_capacity_steps", trends.baseline_capacity_steps),
      KNEELOAD_KEY("model.clock.window_ms", clock.reorder.window_us),
      KNEELOAD_KEY("model.clock.capacity", clock.reorder.capacity),
      KNEELOAD_KEY("model.clock.jump_threshold_ms", clock.aligners[0].jump_threshold_us),
      KNEELOAD_KEY("model.clock.jump_confirm_frames", clock.aligners[0].jump_confirm_frames),
      KNEELOAD_KEY("model.clock.lock_span_s", clock.aligners[0].lock_span_us),
      KNEELOAD_KEY("model.clock.min_latency_ms", clock.aligners[0].min_latency_us),
      KNEELOAD_KEY("model.clock.max_drift_ppm", clock.aligners[0].max_drift_ppm),
      KNEELOAD_KEY("rules.max_gap_s", rules.max_gap_s),
      KNEELOAD_KEY("rules.min_rolling_steps", rules.min_rolling_steps),
      KNEELOAD_KEY("rules.r1_pfj_overload.persist_s", rules.pfj_overload.timing.persist_s),
      KNEELOAD_KEY("rules.r1_pfj_overload.clear_hold_s", rules.pfj_overload.timing.clear_hold_s),
      KNEELOAD_KEY("rules.r1_pfj_overload.cooldown_s", rules.pfj_overload.timing.cooldown_s),
      KNEELOAD_KEY("rules.r1_pfj_overload.onset_rel", rules.pfj_overload.onset_rel),
      KNEELOAD_KEY("rules.r1_pfj_overload.clear_rel", rules.pfj_overload.clear_rel),
      KNEELOAD_KEY("rules.r2_low_cadence.persist_s", rules.low_cadence.timing.persist_s),
      KNEELOAD_KEY("rules.r2_low_cadence.clear_hold_s", rules.low_cadence.timing.clear_hold_s),
      KNEELOAD_KEY("rules.r2_low_cadence.cooldown_s", rules.low_cadence.timing.cooldown_s),
      KNEELOAD_KEY("rules.r2_low_cadence.cadence_spm", rules.low_cadence.cadence_spm),
      KNEELOAD_KEY("rules.r2_low_cadence.cadence_clear_spm", rules.low_cadence.cadence_clear_spm),
      KNEELOAD_KEY("rules.r2_low_cadence.min_speed_mps", rules.low_cadence.min_speed_mps),
      KNEELOAD_KEY("rules.r2_low_cadence.preferred_fraction", rules.low_cadence.preferred_fraction),
      KNEELOAD_KEY("rules.r2_low_cadence.preferred_clear_fraction",
                   rules.low_cadence.preferred_clear_fraction),
      KNEELOAD_KEY("rules.r2_low_cadence.peak_flexion_deg", rules.low_cadence.peak_flexion_deg),
      KNEELOAD_KEY("rules.r2_low_cadence.peak_flexion_clear_deg",
                   rules.low_cadence.peak_flexion_clear_deg),
      KNEELOAD_KEY("rules.r3_impact.persist_s", rules.impact.timing.persist_s),
      KNEELOAD_KEY("rules.r3_impact.clear_hold_s", rules.impact.timing.clear_hold_s),
      KNEELOAD_KEY("rules.r3_impact.cooldown_s", rules.impact.timing.cooldown_s),
      KNEELOAD_KEY("rules.r3_impact.valr_bw_per_s", rules.impact.valr_bw_per_s),
      KNEELOAD_KEY("rules.r3_impact.valr_clear_bw_per_s", rules.impact.valr_clear_bw_per_s),
      KNEELOAD_KEY("rules.r3_impact.min_force_rate_hz", rules.impact.min_force_rate_hz),
      KNEELOAD_KEY("rules.r3_impact.onset_rel", rules.impact.onset_rel),
      KNEELOAD_KEY("rules.r3_impact.clear_rel", rules.impact.clear_rel),
      KNEELOAD_KEY("rules.r3_impact.pta_g", rules.impact.pta_g),
      KNEELOAD_KEY("rules.r3_impact.pta_clear_g", rules.impact.pta_clear_g),
      KNEELOAD_KEY("rules.r3_impact.min_pta_rate_hz", rules.impact.min_pta_rate_hz),
      KNEELOAD_KEY("rules.r4_session_spike.persist_s", rules.session_spike.timing.persist_s),
      KNEELOAD_KEY("rules.r4_session_spike.clear_hold_s", rules.session_spike.timing.clear_hold_s),
      KNEELOAD_KEY("rules.r4_session_spike.cooldown_s", rules.session_spike.timing.cooldown_s),
      KNEELOAD_KEY("rules.r4_session_spike.info_ratio", rules.session_spike.info_ratio),
      KNEELOAD_KEY("rules.r4_session_spike.warn_ratio", rules.session_spike.warn_ratio),
      KNEELOAD_KEY("rules.r4_session_spike.high_ratio", rules.session_spike.high_ratio),
      KNEELOAD_KEY("rules.r4_session_spike.clear_ratio", rules.session_spike.clear_ratio),
      KNEELOAD_KEY("rules.r5_weekly_jump.persist_s", rules.weekly_jump.timing.persist_s),
      KNEELOAD_KEY("rules.r5_weekly_jump.clear_hold_s", rules.weekly_jump.timing.clear_hold_s),
      KNEELOAD_KEY("rules.r5_weekly_jump.cooldown_s", rules.weekly_jump.timing.cooldown_s),
      KNEELOAD_KEY("rules.r5_weekly_jump.onset_ratio", rules.weekly_jump.onset_ratio),
      KNEELOAD_KEY("rules.r5_weekly_jump.clear_ratio", rules.weekly_jump.clear_ratio),
      KNEELOAD_KEY("rules.r5_weekly_jump.min_reference_km", rules.weekly_jump.min_reference_km),
      KNEELOAD_KEY("rules.r6_itbs_pattern.persist_s", rules.itbs_pattern.timing.persist_s),
      KNEELOAD_KEY("rules.r6_itbs_pattern.clear_hold_s", rules.itbs_pattern.timing.clear_hold_s),
      KNEELOAD_KEY("rules.r6_itbs_pattern.cooldown_s", rules.itbs_pattern.timing.cooldown_s),
      KNEELOAD_KEY("rules.r6_itbs_pattern.ic_min_deg", rules.itbs_pattern.ic_min_deg),
      KNEELOAD_KEY("rules.r6_itbs_pattern.ic_max_deg", rules.itbs_pattern.ic_max_deg),
      KNEELOAD_KEY("rules.r6_itbs_pattern.ic_margin_deg", rules.itbs_pattern.ic_margin_deg),
      KNEELOAD_KEY("rules.r6_itbs_pattern.onset_rel", rules.itbs_pattern.onset_rel),
      KNEELOAD_KEY("rules.r6_itbs_pattern.clear_rel", rules.itbs_pattern.clear_rel),
      KNEELOAD_KEY("rules.r6_itbs_pattern.min_increase_s", rules.itbs_pattern.min_increase_s),
      KNEELOAD_KEY("rules.r6_itbs_pattern.decline_fraction", rules.itbs_pattern.decline_fraction),
      KNEELOAD_KEY("rules.r7_fatigue_drift.persist_s", rules.fatigue_drift.timing.persist_s),
      KNEELOAD_KEY("rules.r7_fatigue_drift.clear_hold_s", rules.fatigue_drift.timing.clear_hold_s),
      KNEELOAD_KEY("rules.r7_fatigue_drift.cooldown_s", rules.fatigue_drift.timing.cooldown_s),
      KNEELOAD_KEY("rules.r7_fatigue_drift.min_changes", rules.fatigue_drift.min_changes),
      KNEELOAD_KEY("rules.r7_fatigue_drift.contact_time_rel", rules.fatigue_drift.contact_time_rel),
      KNEELOAD_KEY("rules.r7_fatigue_drift.contact_time_clear_rel",
                   rules.fatigue_drift.contact_time_clear_rel),
      KNEELOAD_KEY("rules.r7_fatigue_drift.cadence_rel", rules.fatigue_drift.cadence_rel),
      KNEELOAD_KEY("rules.r7_fatigue_drift.cadence_clear_rel",
                   rules.fatigue_drift.cadence_clear_rel),
      KNEELOAD_KEY("rules.r7_fatigue_drift.impact_rel", rules.fatigue_drift.impact_rel),
      KNEELOAD_KEY("rules.r7_fatigue_drift.impact_clear_rel", rules.fatigue_drift.impact_clear_rel),
      KNEELOAD_KEY("rules.r7_fatigue_drift.knee_ic_deg", rules.fatigue_drift.knee_ic_deg),
      KNEELOAD_KEY("rules.r7_fatigue_drift.knee_ic_clear_deg",
                   rules.fatigue_drift.knee_ic_clear_deg),
      KNEELOAD_KEY("rules.r7_fatigue_drift.timing_si_pp", rules.fatigue_drift.timing_si_pp),
      KNEELOAD_KEY("rules.r7_fatigue_drift.timing_si_clear_pp",
                   rules.fatigue_drift.timing_si_clear_pp),
      KNEELOAD_KEY("rules.r7_fatigue_drift.max_speed_change_rel",
                   rules.fatigue_drift.max_speed_change_rel),
      KNEELOAD_KEY("rules.r8_asymmetry.persist_s", rules.asymmetry.timing.persist_s),
      KNEELOAD_KEY("rules.r8_asymmetry.clear_hold_s", rules.asymmetry.timing.clear_hold_s),
      KNEELOAD_KEY("rules.r8_asymmetry.cooldown_s", rules.asymmetry.timing.cooldown_s),
      KNEELOAD_KEY("rules.r8_asymmetry.contact_time_si_pct", rules.asymmetry.contact_time_si_pct),
      KNEELOAD_KEY("rules.r8_asymmetry.contact_time_si_clear_pct",
                   rules.asymmetry.contact_time_si_clear_pct),
      KNEELOAD_KEY("rules.r8_asymmetry.step_time_si_pct", rules.asymmetry.step_time_si_pct),
      KNEELOAD_KEY("rules.r8_asymmetry.step_time_si_clear_pct",
                   rules.asymmetry.step_time_si_clear_pct),
      KNEELOAD_KEY("rules.r8_asymmetry.peak_force_si_pct", rules.asymmetry.peak_force_si_pct),
      KNEELOAD_KEY("rules.r8_asymmetry.peak_force_si_clear_pct",
                   rules.asymmetry.peak_force_si_clear_pct),
      KNEELOAD_KEY("rules.r8_asymmetry.valr_si_pct", rules.asymmetry.valr_si_pct),
      KNEELOAD_KEY("rules.r8_asymmetry.valr_si_clear_pct", rules.asymmetry.valr_si_clear_pct),
      KNEELOAD_KEY("rules.r8_asymmetry.knee_peak_diff_deg", rules.asymmetry.knee_peak_diff_deg),
      KNEELOAD_KEY("rules.r8_asymmetry.knee_peak_diff_clear_deg",
                   rules.asymmetry.knee_peak_diff_clear_deg),
      KNEELOAD_KEY("rules.r9_shoes.km_persist_s", rules.shoes.km_timing.persist_s),
      KNEELOAD_KEY("rules.r9_shoes.km_clear_hold_s", rules.shoes.km_timing.clear_hold_s),
      KNEELOAD_KEY("rules.r9_shoes.km_cooldown_s", rules.shoes.km_timing.cooldown_s),
      KNEELOAD_KEY("rules.r9_shoes.warn_km", rules.shoes.warn_km),
      KNEELOAD_KEY("rules.r9_shoes.high_km", rules.shoes.high_km),
      KNEELOAD_KEY("rules.r9_shoes.drift_persist_s", rules.shoes.drift_timing.persist_s),
      KNEELOAD_KEY("rules.r9_shoes.drift_clear_hold_s", rules.shoes.drift_timing.clear_hold_s),
      KNEELOAD_KEY("rules.r9_shoes.drift_cooldown_s", rules.shoes.drift_timing.cooldown_s),
      KNEELOAD_KEY("rules.r9_shoes.impact_rel", rules.shoes.impact_rel),
      KNEELOAD_KEY("rules.r9_shoes.impact_clear_rel", rules.shoes.impact_clear_rel),
      KNEELOAD_KEY("rules.r9_shoes.medial_cop_shift_mm", rules.shoes.medial_cop_shift_m),
      KNEELOAD_KEY("rules.r9_shoes.medial_cop_shift_clear_mm",
                   rules.shoes.medial_cop_shift_clear_m),
      KNEELOAD_KEY("rules.r9_shoes.cop_min_steps", rules.shoes.cop_min_steps),
      KNEELOAD_KEY("rules.r9_shoes.midfoot_pressure_rel", rules.shoes.midfoot_pressure_rel),
      KNEELOAD_KEY("rules.r9_shoes.midfoot_pressure_clear_rel",
                   rules.shoes.midfoot_pressure_clear_rel),
      KNEELOAD_KEY("rules.r9_shoes.max_speed_change_rel", rules.shoes.max_speed_change_rel),
      KNEELOAD_KEY("rules.r10_pain.persist_s", rules.pain.timing.persist_s),
      KNEELOAD_KEY("rules.r10_pain.clear_hold_s", rules.pain.timing.clear_hold_s),
      KNEELOAD_KEY("rules.r10_pain.cooldown_s", rules.pain.timing.cooldown_s),
      KNEELOAD_KEY("rules.r10_pain.high_score", rules.pain.high_score),
      KNEELOAD_KEY("rules.r10_pain.lateral_min_score", rules.pain.lateral_min_score),
      KNEELOAD_KEY("rules.faults.dropout_persist_s", rules.faults.dropout_timing.persist_s),
      KNEELOAD_KEY("rules.faults.dropout_clear_hold_s", rules.faults.dropout_timing.clear_hold_s),
      KNEELOAD_KEY("rules.faults.dropout_cooldown_s", rules.faults.dropout_timing.cooldown_s),
      KNEELOAD_KEY("rules.faults.saturation_persist_s", rules.faults.saturation_timing.persist_s),
      KNEELOAD_KEY("rules.faults.saturation_clear_hold_s",
                   rules.faults.saturation_timing.clear_hold_s),
      KNEELOAD_KEY("rules.faults.saturation_cooldown_s", rules.faults.saturation_timing.cooldown_s),
      KNEELOAD_KEY("rules.faults.cell_full_scale_kpa", rules.faults.cell_full_scale_pa),
      KNEELOAD_KEY("rules.faults.saturation_fraction", rules.faults.saturation_fraction),
      KNEELOAD_KEY("rules.faults.saturation_min_samples", rules.faults.saturation_min_samples),
      KNEELOAD_KEY("rules.faults.stuck_persist_s", rules.faults.stuck_timing.persist_s),
      KNEELOAD_KEY("rules.faults.stuck_clear_hold_s", rules.faults.stuck_timing.clear_hold_s),
      KNEELOAD_KEY("rules.faults.stuck_cooldown_s", rules.faults.stuck_timing.cooldown_s),
      KNEELOAD_KEY("rules.faults.stuck_s", rules.faults.stuck_s),
      KNEELOAD_KEY("rules.faults.stuck_tolerance_pa", rules.faults.stuck_tolerance_pa),
      KNEELOAD_KEY("rules.faults.stuck_min_other_changes", rules.faults.stuck_min_other_changes),
      KNEELOAD_KEY("rules.faults.stuck_zero_pa", rules.faults.stuck_zero_pa),
      KNEELOAD_KEY("rules.faults.clock_quiet_s", rules.faults.clock_quiet_s),
  };
  return keys;
}
#undef KNEELOAD_KEY

std::string read_source_file(const std::string& relative) {
  std::ifstream in(std::string(KNEELOAD_SOURCE_DIR) + "/" + relative);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// "table.key" for every `key = value` line of the example config, under its [table] header
// ([[array]] tables are skipped: they are records, not settings).
std::set<std::string> example_keys() {
  std::istringstream in(read_source_file("deploy/config/kneeloadd.example.toml"));
  std::set<std::string> keys;
  std::string table;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("[[")) {
      table.clear();
    } else if (line.starts_with("[")) {
      table = line.substr(1, line.find(']') - 1);
    } else if (!table.empty() && !line.empty() && line[0] != '#') {
      const std::size_t eq = line.find(" =");
      if (eq != std::string::npos) keys.insert(table + "." + line.substr(0, eq));
    }
  }
  return keys;
}

// The keys the parser allows in `table`, read from its refusal of an unknown key.
std::vector<std::string> allowed_keys(const std::string& table) {
  try {
    parse("[" + table + "]\nno_such_key = 1\n");
  } catch (const ConfigError& e) {
    const std::string& r = e.reason();
    const std::string head = "expected one of ";
    const std::size_t end = r.find(" in [");
    if (!r.starts_with(head) || end == std::string::npos) return {};
    std::vector<std::string> keys;
    std::istringstream list(r.substr(head.size(), end - head.size()));
    for (std::string k; std::getline(list, k, ',');) keys.push_back(k.substr(k[0] == ' ' ? 1 : 0));
    return keys;
  }
  return {};
}

const std::vector<std::string> kModelTables{
    "model",         "model.knee",        "model.shank",          "model.force",
    "model.calibration", "model.loading_rate", "model.session_load", "model.trends",
    "model.clock",   "rules",             "rules.r1_pfj_overload", "rules.r2_low_cadence",
    "rules.r3_impact", "rules.r4_session_spike", "rules.r5_weekly_jump",
    "rules.r6_itbs_pattern", "rules.r7_fatigue_drift", "rules.r8_asymmetry", "rules.r9_shoes",
    "rules.r10_pain", "rules.faults"};

TEST(ConfigModelKeys, TheKeyListIsExactlyWhatTheParserAllows) {
  std::set<std::string> listed;
  for (const ModelKey& k : model_keys()) listed.insert(k.key);
  const std::set<std::string> tables(kModelTables.begin(), kModelTables.end());
  std::set<std::string> allowed;
  for (const std::string& table : kModelTables) {
    const std::vector<std::string> keys = allowed_keys(table);
    EXPECT_FALSE(keys.empty()) << "could not read the allowed keys of [" << table << "]";
    for (const std::string& k : keys) {
      if (tables.count(table + "." + k) == 0) allowed.insert(table + "." + k);
    }
  }
  for (const std::string& k : allowed) EXPECT_EQ(listed.count(k), 1u) << k << " is not listed";
  for (const std::string& k : listed) EXPECT_EQ(allowed.count(k), 1u) << k << " is not parsed";
}

TEST(ConfigModelKeys, TheExampleSetsEveryKeyToTheCodeDefault) {
  const std::set<std::string> in_example = example_keys();
  const Config c = load_config(kExamplePath);
  const ModelParams d;
  for (const ModelKey& k : model_keys()) {
    EXPECT_EQ(in_example.count(k.key), 1u) << k.key << " is missing from the example config";
    EXPECT_EQ(k.field(c.model), k.field(d)) << k.key << ": the example's value (in the field's "
                                            << "unit), then the C++ default";
  }
}

TEST(ConfigModelKeys, TheReadmeKeysTableHasARowForEveryKey) {
  const std::string readme = read_source_file("README.md");
  const std::size_t begin = readme.find("### Keys");
  ASSERT_NE(begin, std::string::npos) << "README.md has no \"### Keys\" section";
  const std::string table = readme.substr(begin, readme.find("\n### ", begin + 1) - begin);
  for (const ModelKey& k : model_keys()) {
    EXPECT_TRUE(table.find("| `" + std::string(k.key) + "` |") != std::string::npos)
        << k.key << " has no row in the README's Keys table";
  }
}

TEST(ConfigModelKeys, EveryAlignerSlotGetsTheClockKeys) {
  const Config c = parse("[model.clock]\njump_threshold_ms = 80\nmin_latency_ms = 2.5\n");
  for (const fusion::AlignerParams& a : c.model.clock.aligners) {
    EXPECT_EQ(a.jump_threshold_us, 80'000);
    EXPECT_EQ(a.min_latency_us, 2'500);
    EXPECT_EQ(a.bucket_us, fusion::AlignerParams{}.bucket_us) << "an internal field changed";
  }
}

TEST(ConfigModelKeys, AnglesAreConfiguredInDegreesAndStoredInRadians) {
  const Config c = parse("[model.knee]\naccel_angle_sigma_deg = 45\ngyro_sigma_dps = 18\n"
                         "[model.shank]\ntilt_sigma_deg = 4.5\n");
  EXPECT_NEAR(c.model.knee.accel_angle_sigma_rad, std::numbers::pi / 4.0, 1e-15);
  EXPECT_NEAR(c.model.knee.gyro_sigma_radps, std::numbers::pi / 10.0, 1e-15);
  EXPECT_NEAR(c.model.shank.tilt_sigma_rad, std::numbers::pi / 40.0, 1e-15);
}

TEST(ConfigModelKeys, AreaModelNamesMapToTheModels) {
  EXPECT_EQ(parse("[model]\npfj_area_model = \"mri-female\"\n").model.area_model,
            fusion::ContactAreaModel::kMriFemale);
  EXPECT_EQ(parse("[model]\npfj_area_model = \"quadratic-powers\"\n").model.area_model,
            fusion::ContactAreaModel::kQuadraticPowers);
  EXPECT_EQ(parse("[model]\npfj_area_model = \"mri-male\"\n").model.area_model,
            fusion::ContactAreaModel::kMriMale);
}

TEST(ConfigModelKeys, DamageExponentsReachTheModelIdAndTheDamageIndex) {
  const Config c = parse("[model]\ndamage_exponent = 3\ndamage_exponent_sensitivity = 6\n");
  EXPECT_EQ(c.model.damage_exponents.primary, 3.0);
  EXPECT_EQ(c.model.damage_exponents.sensitivity, 6.0);
  EXPECT_EQ(c.model.session_load.damage_exponents.primary, 3.0);
  EXPECT_EQ(c.model.session_load.damage_exponents.sensitivity, 6.0);
}

TEST(ConfigRules, AChangedThresholdReachesTheRuleParams) {
  const Config c = parse(
      "[rules]\nmin_rolling_steps = 30\n"
      "[rules.r1_pfj_overload]\nonset_rel = 0.25\nclear_rel = 0.2\npersist_s = 60\n"
      "[rules.r9_shoes]\nmedial_cop_shift_mm = 4\nmedial_cop_shift_clear_mm = 2.5\n"
      "[rules.faults]\ncell_full_scale_kpa = 600\n");
  const fusion::RiskRuleParams& r = c.model.rules;
  EXPECT_EQ(r.min_rolling_steps, 30);
  EXPECT_EQ(r.pfj_overload.onset_rel, 0.25);
  EXPECT_EQ(r.pfj_overload.clear_rel, 0.2);
  EXPECT_EQ(r.pfj_overload.timing.persist_s, 60.0);
  EXPECT_EQ(r.pfj_overload.timing.cooldown_s, fusion::kGaitRuleTiming.cooldown_s)
      << "an unset timing key keeps its default";
  EXPECT_EQ(r.shoes.medial_cop_shift_m, 0.004);
  EXPECT_EQ(r.shoes.medial_cop_shift_clear_m, 0.0025);
  EXPECT_EQ(r.faults.cell_full_scale_pa, 600e3);
  EXPECT_EQ(r.low_cadence.cadence_spm, fusion::LowCadenceParams{}.cadence_spm);
}

TEST(ConfigRules, PainHighScoreMayBeGivenUnderEitherNameOrBothAlike) {
  const Config old_name = parse("[model]\npain_high_score = 5\n");
  EXPECT_EQ(old_name.model.rules.pain.high_score, 5);
  EXPECT_EQ(old_name.model.pain_high_score, 5);
  const Config new_name = parse("[rules.r10_pain]\nhigh_score = 6\n");
  EXPECT_EQ(new_name.model.rules.pain.high_score, 6);
  EXPECT_EQ(new_name.model.pain_high_score, 6);
  const Config both = parse("[model]\npain_high_score = 4\n[rules.r10_pain]\nhigh_score = 4\n");
  EXPECT_EQ(both.model.rules.pain.high_score, 4);
}

TEST(ConfigRules, ConflictingPainHighScoresAreRefused) {
  EXPECT_TRUE(Refused("[model]\npain_high_score = 3\n[rules.r10_pain]\nhigh_score = 5\n",
                      "rules.r10_pain.high_score",
                      {"expected the same score as model.pain_high_score (3)", "got 5"}));
}

TEST(ConfigRules, UnknownKeyInARuleTableIsRefusedWithItsKeys) {
  EXPECT_TRUE(Refused("[rules.r2_low_cadence]\ncadence = 160\n", "rules.r2_low_cadence.cadence",
                      {"expected one of persist_s, clear_hold_s, cooldown_s, cadence_spm",
                       "in [rules.r2_low_cadence]", "got unknown key \"cadence\""}));
  EXPECT_TRUE(Refused("[rules.r11_sleep]\nx = 1\n", "rules.r11_sleep",
                      {"r10_pain, faults in [rules]", "got unknown table [rules.r11_sleep]"}));
  EXPECT_TRUE(Refused("[model.knee]\nstanding_angle_deg = 3\n", "model.knee.standing_angle_deg",
                      {"in [model.knee]", "got unknown key"}));
  EXPECT_TRUE(Refused("[rules.faults]\npersist_s = 1\n", "rules.faults.persist_s",
                      {"dropout_persist_s", "got unknown key \"persist_s\""}));
}

TEST(ConfigRules, InvertedHysteresisIsRefused) {
  // Fires above: the clear threshold must not exceed the onset threshold.
  EXPECT_TRUE(Refused("[rules.r1_pfj_overload]\nonset_rel = 0.15\nclear_rel = 0.2\n",
                      "rules.r1_pfj_overload.clear_rel",
                      {"expected a number <= onset_rel (0.15)", "(hysteresis)", "got 0.2"}));
  // Only the onset given: it is blamed, and the clear default named as such.
  EXPECT_TRUE(Refused("[rules.r3_impact]\nvalr_bw_per_s = 55\n", "rules.r3_impact.valr_bw_per_s",
                      {"expected a number >= valr_clear_bw_per_s (60, its default)", "got 55"}));
  // Fires below (low cadence): the clear threshold must not be below the onset threshold.
  EXPECT_TRUE(Refused("[rules.r2_low_cadence]\ncadence_spm = 170\ncadence_clear_spm = 165\n",
                      "rules.r2_low_cadence.cadence_clear_spm",
                      {"expected a number >= cadence_spm (170)", "fires below", "got 165"}));
  EXPECT_TRUE(Refused("[rules.r7_fatigue_drift]\ncadence_clear_rel = -0.05\n",
                      "rules.r7_fatigue_drift.cadence_clear_rel",
                      {">= cadence_rel (-0.03, its default)", "got -0.05"}));
  EXPECT_TRUE(Refused("[rules.r9_shoes]\nmedial_cop_shift_clear_mm = 4\n",
                      "rules.r9_shoes.medial_cop_shift_clear_mm",
                      {"<= medial_cop_shift_mm (3, its default)", "got 4"}));
  EXPECT_TRUE(Refused("[rules.r4_session_spike]\nclear_ratio = 1.2\n",
                      "rules.r4_session_spike.clear_ratio", {"<= info_ratio (1.1", "got 1.2"}));
  // Equal thresholds are allowed: no hysteresis band, not an inverted one.
  EXPECT_NO_THROW(parse("[rules.r8_asymmetry]\nvalr_si_pct = 20\nvalr_si_clear_pct = 20\n"));
}

TEST(ConfigRules, MisorderedBandsAndRangesAreRefused) {
  EXPECT_TRUE(Refused("[model]\nmidfoot_x_min = 0.7\n", "model.midfoot_x_min",
                      {"expected a number < midfoot_x_max (0.6, its default)", "got 0.7"}));
  EXPECT_TRUE(Refused("[model]\nmidfoot_x_min = 0.5\nmidfoot_x_max = 0.5\n",
                      "model.midfoot_x_max",
                      {"expected a number > midfoot_x_min (0.5)", "got 0.5"}));
  EXPECT_TRUE(Refused("[rules.r4_session_spike]\nwarn_ratio = 2.5\n",
                      "rules.r4_session_spike.warn_ratio",
                      {"expected a number <= high_ratio (2, its default)", "got 2.5"}));
  EXPECT_TRUE(Refused("[rules.r6_itbs_pattern]\nic_min_deg = 30\nic_max_deg = 20\n",
                      "rules.r6_itbs_pattern.ic_max_deg", {"> ic_min_deg (30)", "got 20"}));
  EXPECT_TRUE(Refused("[rules.r9_shoes]\nhigh_km = 500\n", "rules.r9_shoes.high_km",
                      {">= warn_km (600, its default)", "got 500"}));
  EXPECT_TRUE(Refused("[model.loading_rate]\nno_ip_window_start = 0.2\n",
                      "model.loading_rate.no_ip_window_start", {"< no_ip_window_end", "got 0.2"}));
  EXPECT_TRUE(Refused("[model.calibration]\nmin_stride_s = 1.5\nmax_stride_s = 1.0\n",
                      "model.calibration.max_stride_s", {"> min_stride_s (1.5)", "got 1"}));
  EXPECT_TRUE(Refused("[model.trends]\nbaseline_start_s = 600\n", "model.trends.baseline_start_s",
                      {"< baseline_end_s (480, its default)", "got 600"}));
}

TEST(ConfigRules, WindowsThatDoNotFitTheirBuffersAreRefused) {
  EXPECT_TRUE(Refused("[model.trends]\nrolling_window_s = 600\n",
                      "model.trends.rolling_capacity_steps",
                      {"expected at least 1200 steps (rolling_window_s = 600 s", "got 240"}));
  EXPECT_TRUE(Refused("[model.trends]\nbaseline_min_steps = 2000\n",
                      "model.trends.baseline_min_steps",
                      {"<= baseline_capacity_steps (600)", "got 2000"}));
  EXPECT_TRUE(Refused("[model.trends]\nrolling_window_s = 10\nrolling_capacity_steps = 16\n",
                      "model.trends.rolling_capacity_steps",
                      {"expected at least 20 steps", "got 16"}));
  EXPECT_TRUE(Refused("[rules]\nmin_rolling_steps = 600\n", "rules.min_rolling_steps",
                      {"<= model.trends.rolling_capacity_steps (240)", "got 600"}));
}

TEST(ConfigRules, BadAreaModelNameIsRefusedWithTheChoices) {
  EXPECT_TRUE(Refused("[model]\npfj_area_model = \"mri\"\n", "model.pfj_area_model",
                      {"expected \"mri-male\", \"mri-female\" or \"quadratic-powers\"",
                       "got \"mri\""}));
  EXPECT_TRUE(Refused("[model]\npfj_area_model = 1\n", "model.pfj_area_model",
                      {"expected \"mri-male\"", "got 1 (an integer)"}));
}

TEST(ConfigRules, ModelSubTableGivenAsAValueIsRefused) {
  EXPECT_TRUE(Refused("[model]\nknee = 3\n", "model.knee",
                      {"expected a table [model.knee]", "got 3 (an integer)"}));
  EXPECT_TRUE(Refused("rules = 1\n", "rules", {"expected a table [rules]"}));
}

// ---------------------------------------------------------------------------------------------
// Accepted configs

TEST(ConfigParse, EmptyFileGivesTheDefaults) {
  const Config c = parse("");
  const Config d;
  EXPECT_EQ(c.source, kSource);
  EXPECT_EQ(c.ingest.endpoints, d.ingest.endpoints);
  EXPECT_EQ(c.publish.endpoint, d.publish.endpoint);
  EXPECT_EQ(c.metrics_address, d.metrics_address);
  EXPECT_EQ(c.pipeline.workers, 0);
  EXPECT_TRUE(c.runners.empty());
  EXPECT_TRUE(c.devices.empty());
}

TEST(ConfigParse, FloatKeysAcceptIntegers) {
  const Config c = parse("[publish]\nheartbeat_s = 2\n[model]\nstate_rate_hz = 100\n");
  EXPECT_EQ(c.publish.heartbeat_s, 2.0);
  EXPECT_EQ(c.model.state_rate_hz, 100.0);
}

TEST(ConfigParse, RunnerDefaultsApplyWhenOnlyTheIdIsGiven) {
  const Config c = parse(runner("r01"));
  ASSERT_EQ(c.runners.size(), 1u);
  EXPECT_EQ(c.runners[0].params.body_mass_kg, 70.0);
  EXPECT_EQ(c.runners[0].params.height_m, 1.75);
  EXPECT_EQ(c.runners[0].shoe_id, "");
  EXPECT_EQ(c.runners[0].shoe_km, 0.0);
}

TEST(ConfigParse, InsoleCellPositionsDefaultToTheCentre) {
  const Config c = parse(runner("r01") + device("L", "insole", "left"));
  ASSERT_EQ(c.devices.size(), 1u);
  const fusion::InsoleGeometry& g = c.devices[0].insole;
  ASSERT_EQ(g.cell_count, 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(g.x_norm[i], 0.5) << "cell " << i;
    EXPECT_EQ(g.y_norm[i], 0.5) << "cell " << i;
  }
  EXPECT_EQ(g.area_m2[1], 12.5e-4);
}

TEST(ConfigParse, TreadmillAndConsoleMayStateSideNone) {
  const Config c =
      parse(runner("r01") + device("t", "treadmill", "none") + device("c", "console", ""));
  ASSERT_EQ(c.devices.size(), 2u);
  EXPECT_EQ(c.devices[0].side, Side::kNone);
  EXPECT_EQ(c.devices[1].side, Side::kNone);
}

TEST(ConfigParse, LeftAndRightOfOneKindAreDifferentSlots) {
  const Config c =
      parse(runner("r01") + device("L", "insole", "left") + device("R", "insole", "right") +
            device("kL", "knee", "left") + device("kR", "knee", "right"));
  EXPECT_EQ(c.devices.size(), 4u);
}

TEST(ConfigParse, WildcardPortsMayRepeatBecauseEachBindGetsItsOwnPort) {
  const Config c = parse(
      "[ingest]\nendpoints = [\"tcp://127.0.0.1:*\", \"tcp://127.0.0.1:*\"]\n"
      "[publish]\nendpoint = \"tcp://127.0.0.1:*\"\n");
  EXPECT_EQ(c.ingest.endpoints.size(), 2u);
}

TEST(ConfigParse, IpcEndpointsAndEmptyMetricsAddressAreAccepted) {
  const Config c = parse(
      "[ingest]\nendpoints = [\"ipc:///run/kneeload/ingest\"]\n"
      "[publish]\nendpoint = \"ipc:///run/kneeload/publish\"\n[metrics]\naddress = \"\"\n");
  EXPECT_EQ(c.ingest.endpoints[0], "ipc:///run/kneeload/ingest");
  EXPECT_EQ(c.metrics_address, "");
}

// ---------------------------------------------------------------------------------------------
// Refusals: syntax, unknown keys and tables, wrong types

TEST(ConfigRefusal, SyntaxErrorNamesLineAndColumn) {
  try {
    parse("[ingest]\nrcvhwm = = 3\n");
    FAIL() << "expected a ConfigError for a TOML syntax error, got a config that loads";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key().rfind("line 2, column ", 0), 0u)
        << "expected the key to start with \"line 2, column \", got \"" << e.key() << "\"";
    EXPECT_NE(e.reason().find("TOML syntax error"), std::string::npos) << e.what();
  }
}

TEST(ConfigRefusal, UnknownKeyInASectionIsRefusedWithTheKnownKeys) {
  EXPECT_TRUE(
      Refused("[ingest]\nendpiont = \"tcp://127.0.0.1:1\"\n", "ingest.endpiont",
              {"expected one of endpoints, max_frame_bytes", "got unknown key \"endpiont\""}));
  EXPECT_TRUE(Refused("[model]\nrefractory_ms = 150\n", "model.refractory_ms",
                      {"refractory_s", "got unknown key"}));
  EXPECT_TRUE(Refused(runner("r01", "mass_kg = 70\n"), "runners[0].mass_kg",
                      {"body_mass_kg", "for a runner", "got unknown key \"mass_kg\""}));
}

TEST(ConfigRefusal, UnknownTopLevelTableIsRefused) {
  EXPECT_TRUE(Refused("[ingets]\nrcvhwm = 1\n", "ingets",
                      {"expected one of ingest, publish, metrics", "got unknown table [ingets]"}));
  EXPECT_TRUE(
      Refused("[[device]]\nid = \"x\"\n", "device", {"got unknown table array [[device]]"}));
  EXPECT_TRUE(Refused("workers = 2\n", "workers", {"at the top level", "got unknown key"}));
}

TEST(ConfigRefusal, UnknownNestedTableIsRefused) {
  EXPECT_TRUE(
      Refused("[model.extra]\nx = 1\n", "model.extra", {"got unknown table [model.extra]"}));
}

TEST(ConfigRefusal, KeyOfAnotherDeviceKindIsRefused) {
  EXPECT_TRUE(Refused(runner("r01") + device("k", "knee", "left", "cell_areas_cm2 = [1.0]\n"),
                      "devices[0].cell_areas_cm2",
                      {"thigh_axis, shank_axis, thigh_sensor_m, shank_sensor_m for a knee device", "got unknown key"}));
  EXPECT_TRUE(Refused(runner("r01") + device("t", "treadmill", "", "force_gain = 1.0\n"),
                      "devices[0].force_gain", {"for a treadmill device"}));
}

TEST(ConfigRefusal, WrongTypesAreRefusedWithTypeAndValue) {
  EXPECT_TRUE(Refused("[pipeline]\nworkers = 2.0\n", "pipeline.workers",
                      {"expected an integer 0..64", "got 2.0 (a float)"}));
  EXPECT_TRUE(Refused("[ingest]\nmax_frame_bytes = \"64k\"\n", "ingest.max_frame_bytes",
                      {"expected an integer 256..16777216", "got \"64k\" (a string)"}));
  EXPECT_TRUE(Refused("[publish]\nnodrop = 1\n", "publish.nodrop",
                      {"expected a boolean", "got 1 (an integer)"}));
  EXPECT_TRUE(Refused("[publish]\nheartbeat_s = \"1s\"\n", "publish.heartbeat_s",
                      {"expected a number 0.05..60 s", "got \"1s\" (a string)"}));
  EXPECT_TRUE(Refused("[ingest]\nendpoints = \"tcp://127.0.0.1:5600\"\n", "ingest.endpoints",
                      {"expected an array", "got \"tcp://127.0.0.1:5600\" (a string)"}));
  EXPECT_TRUE(Refused("[ingest]\nendpoints = [5600]\n", "ingest.endpoints[0]",
                      {"expected a ZeroMQ endpoint", "got 5600 (an integer)"}));
  EXPECT_TRUE(
      Refused("ingest = 3\n", "ingest", {"expected a table [ingest]", "got 3 (an integer)"}));
  EXPECT_TRUE(Refused("[runners]\nid = \"r01\"\n", "runners",
                      {"expected an array of tables [[runners]]", "got a table"}));
  EXPECT_TRUE(Refused("[[model]]\n", "model", {"expected a table [model]", "got an array of 1"}));
  EXPECT_TRUE(Refused(runner("r01", "shoe_id = 42\n"), "runners[0].shoe_id",
                      {"expected a string", "got 42 (an integer)"}));
  EXPECT_TRUE(Refused(runner("r01") + device("k", "knee", "left", "thigh_axis = \"z\"\n"),
                      "devices[0].thigh_axis", {"expected an array of 3 numbers", "got \"z\""}));
}

// ---------------------------------------------------------------------------------------------
// Refusals: out of range (one case per key and bound)

struct RangeCase {
  const char* name;
  std::string text;
  std::string key;
  std::string expected;
  std::string got;
};

class ConfigOutOfRange : public testing::TestWithParam<RangeCase> {};

TEST_P(ConfigOutOfRange, IsRefusedWithTheRangeAndTheValue) {
  const RangeCase& c = GetParam();
  EXPECT_TRUE(Refused(c.text, c.key, {"expected " + c.expected, "got " + c.got}));
}

std::string section(const std::string& name, const std::string& line) {
  return "[" + name + "]\n" + line + "\n";
}
std::string runner_key(const std::string& line) { return runner("r01", line + "\n"); }
std::string insole_key(const std::string& line) {
  return runner("r01") + device("L", "insole", "left", line + "\n");
}

INSTANTIATE_TEST_SUITE_P(
    EveryBoundedKey, ConfigOutOfRange,
    testing::Values(
        RangeCase{"WorkersNegative", section("pipeline", "workers = -1"), "pipeline.workers",
                  "an integer 0..64", "-1"},
        RangeCase{"WorkersTooMany", section("pipeline", "workers = 65"), "pipeline.workers",
                  "an integer 0..64", "65"},
        RangeCase{"FrameBytesTooSmall", section("ingest", "max_frame_bytes = 255"),
                  "ingest.max_frame_bytes", "an integer 256..16777216", "255"},
        RangeCase{"SamplesPerFrameTooMany", section("ingest", "max_samples_per_frame = 4097"),
                  "ingest.max_samples_per_frame", "an integer 1..4096", "4097"},
        RangeCase{"RcvhwmNegative", section("ingest", "rcvhwm = -1"), "ingest.rcvhwm",
                  "an integer 0..2147483647", "-1"},
        RangeCase{"SndhwmTooLargeForInt", section("publish", "sndhwm = 3000000000"),
                  "publish.sndhwm", "an integer 0..2147483647", "3000000000"},
        RangeCase{"HeartbeatTooShort", section("publish", "heartbeat_s = 0.01"),
                  "publish.heartbeat_s", "a number 0.05..60 s", "0.01"},
        RangeCase{"HeartbeatNaN", section("publish", "heartbeat_s = nan"), "publish.heartbeat_s",
                  "a number 0.05..60 s", "nan"},
        RangeCase{"IngestRingTooSmall", section("pipeline", "ingest_ring_capacity = 1"),
                  "pipeline.ingest_ring_capacity", "an integer 2..16777216", "1"},
        RangeCase{"OutputRingTooLarge", section("pipeline", "output_ring_capacity = 16777217"),
                  "pipeline.output_ring_capacity", "an integer 2..16777216", "16777217"},
        RangeCase{"MaxDevicesZero", section("pipeline", "max_devices = 0"), "pipeline.max_devices",
                  "an integer 1..1000000", "0"},
        RangeCase{"MaxStationsTooMany", section("pipeline", "max_stations = 1000001"),
                  "pipeline.max_stations", "an integer 1..1000000", "1000001"},
        RangeCase{"IdleFlushTooShort", section("pipeline", "idle_flush_ms = 5"),
                  "pipeline.idle_flush_ms", "a number 10..60000 ms", "5"},
        RangeCase{"IdleFlushTooLong", section("pipeline", "idle_flush_ms = 60001"),
                  "pipeline.idle_flush_ms", "a number 10..60000 ms", "60001"},
        RangeCase{"StaleTooShort", section("health", "stale_after_s = 0.05"),
                  "health.stale_after_s", "a number 0.1..3600 s", "0.05"},
        RangeCase{"StateRateTooHigh", section("model", "state_rate_hz = 1000.5"),
                  "model.state_rate_hz", "a number 0.1..1000 Hz", "1000.5"},
        RangeCase{"ContactThresholdZero", section("model", "contact_threshold_n = 0"),
                  "model.contact_threshold_n", "a number >0..2000 N", "0"},
        RangeCase{"ContactThresholdBwAboveOne", section("model", "contact_threshold_bw = 1.5"),
                  "model.contact_threshold_bw", "a number 0..1 BW", "1.5"},
        RangeCase{"HysteresisTooLow", section("model", "contact_hysteresis = 0.05"),
                  "model.contact_hysteresis", "a number 0.1..1", "0.05"},
        RangeCase{"RefractoryTooLong", section("model", "refractory_s = 2.5"), "model.refractory_s",
                  "a number 0..2 s", "2.5"},
        RangeCase{"IdleEndTooShort", section("model", "session_idle_end_s = 0.5"),
                  "model.session_idle_end_s", "a number 1..86400 s", "0.5"},
        RangeCase{"PainScoreAboveTen", section("model", "pain_high_score = 11"),
                  "model.pain_high_score", "an integer 0..10", "11"},
        RangeCase{"PainScoreAsFloat", section("model", "pain_high_score = 3.5"),
                  "model.pain_high_score", "an integer 0..10", "3.5 (a float)"},
        RangeCase{"IcExclusionTooLong", section("model", "accel_ic_exclusion_s = 0.6"),
                  "model.accel_ic_exclusion_s", "a number 0..0.5 s", "0.6"},
        RangeCase{"InsoleTooWide", section("model", "insole_width_m = 0.3"),
                  "model.insole_width_m", "a number 0.04..0.2 m", "0.3"},
        RangeCase{"PtaWindowTooLong", section("model", "pta_window_s = 0.6"),
                  "model.pta_window_s", "a number 0.005..0.5 s", "0.6"},
        RangeCase{"DamageExponentBelowOne", section("model", "damage_exponent = 0.5"),
                  "model.damage_exponent", "a number 1..20", "0.5"},
        RangeCase{"DynamicCalibrationAsInteger", section("model", "dynamic_calibration = 1"),
                  "model.dynamic_calibration", "a boolean", "1 (an integer)"},
        RangeCase{"KneeGateBelowOne", section("model.knee", "gate_chi2 = 0.5"),
                  "model.knee.gate_chi2", "a number 1..1000", "0.5"},
        RangeCase{"KneeAccelSigmaTooWide", section("model.knee", "accel_angle_sigma_deg = 60"),
                  "model.knee.accel_angle_sigma_deg", "a number 0.1..45 °", "60"},
        RangeCase{"ShankToleranceTooWide", section("model.shank", "quasi_static_tol_g = 2"),
                  "model.shank.quasi_static_tol_g", "a number 0.01..1 g", "2"},
        RangeCase{"ForceReacquireZero", section("model.force", "reacquire_after = 0"),
                  "model.force.reacquire_after", "an integer 1..100000", "0"},
        RangeCase{"StressReferenceZero",
                  section("model.session_load", "damage_reference_stress_mpa = 0"),
                  "model.session_load.damage_reference_stress_mpa", "a number >0..100 MPa", "0"},
        RangeCase{"ReorderWindowZero", section("model.clock", "window_ms = 0"),
                  "model.clock.window_ms", "a number 1..10000 ms", "0"},
        RangeCase{"ReorderCapacityTiny", section("model.clock", "capacity = 8"),
                  "model.clock.capacity", "an integer 16..16777216", "8"},
        RangeCase{"StanceTraceTiny", section("model", "stance_trace_samples = 8"),
                  "model.stance_trace_samples", "an integer 16..8192", "8"},
        RangeCase{"JumpThresholdBelowShifts", section("model.clock", "jump_threshold_ms = 4"),
                  "model.clock.jump_threshold_ms", "a number 5..10000 ms", "4"},
        RangeCase{"LockSpanBeyondHalfTheHistory", section("model.clock", "lock_span_s = 61"),
                  "model.clock.lock_span_s", "a number 1..60 s", "61"},
        RangeCase{"RuleGapTooShort", section("rules", "max_gap_s = 0.5"), "rules.max_gap_s",
                  "a number 1..3600 s", "0.5"},
        RangeCase{"PersistNegative", section("rules.r1_pfj_overload", "persist_s = -1"),
                  "rules.r1_pfj_overload.persist_s", "a number 0..3600 s", "-1"},
        RangeCase{"CadenceTooLow", section("rules.r2_low_cadence", "cadence_spm = 90"),
                  "rules.r2_low_cadence.cadence_spm", "a number 100..240 spm", "90"},
        RangeCase{"MinChangesSix", section("rules.r7_fatigue_drift", "min_changes = 6"),
                  "rules.r7_fatigue_drift.min_changes", "an integer 1..5", "6"},
        RangeCase{"SymmetryIndexAbove200", section("rules.r8_asymmetry", "valr_si_pct = 250"),
                  "rules.r8_asymmetry.valr_si_pct", "a number 0..200 %", "250"},
        RangeCase{"LateralPainZero", section("rules.r10_pain", "lateral_min_score = 0"),
                  "rules.r10_pain.lateral_min_score", "an integer 1..10", "0"},
        RangeCase{"RulesPainAboveTen", section("rules.r10_pain", "high_score = 11"),
                  "rules.r10_pain.high_score", "an integer 0..10", "11"},
        RangeCase{"SaturationFractionLow", section("rules.faults", "saturation_fraction = 0.4"),
                  "rules.faults.saturation_fraction", "a number 0.5..1", "0.4"},
        RangeCase{"BodyMassTooLow", runner_key("body_mass_kg = 19.5"), "runners[0].body_mass_kg",
                  "a number 20..300 kg", "19.5"},
        RangeCase{"HeightTooTall", runner_key("height_m = 2.6"), "runners[0].height_m",
                  "a number 1..2.5 m", "2.6"},
        RangeCase{"ShoeKmNegative", runner_key("shoe_km = -1"), "runners[0].shoe_km",
                  "a number >= 0 km", "-1"},
        RangeCase{"ShoeKmInfinite", runner_key("shoe_km = inf"), "runners[0].shoe_km",
                  "a number >= 0 km", "inf"},
        RangeCase{"ForceGainZero", insole_key("force_gain = 0.0"), "devices[0].force_gain",
                  "a number > 0", "0"},
        RangeCase{"CellXAboveOne", insole_key("cell_x = [0.1, 1.5, 0.9]"), "devices[0].cell_x[1]",
                  "a number 0..1", "1.5"},
        RangeCase{"CellYNegative", insole_key("cell_y = [0.1, 0.5, -0.1]"), "devices[0].cell_y[2]",
                  "a number 0..1", "-0.1"},
        RangeCase{"CellAreaZero",
                  runner("r01") + device("L", "insole", "left", "cell_areas_cm2 = [1.0, 0.0]\n",
                                         "st01", "r01", true),
                  "devices[0].cell_areas_cm2[1]", "a number > 0 cm²", "0"}),
    [](const testing::TestParamInfo<RangeCase>& param_info) {
      return std::string(param_info.param.name);
    });

// ---------------------------------------------------------------------------------------------
// Refusals: the registry

TEST(ConfigRefusal, MissingRequiredKeysAreNamed) {
  EXPECT_TRUE(Refused("[[runners]]\nbody_mass_kg = 70\n", "runners[0].id",
                      {"expected a runner id", "(required), got nothing"}));
  EXPECT_TRUE(Refused(runner("r01") + "[[devices]]\nstation = \"st01\"\nrunner = \"r01\"\n",
                      "devices[0].kind", {"expected \"insole\", \"knee\"", "got nothing"}));
  EXPECT_TRUE(Refused(
      runner("r01") + "[[devices]]\nkind = \"treadmill\"\nstation = \"st01\"\nrunner = \"r01\"\n",
      "devices[0].id", {"expected a device id", "got nothing"}));
  EXPECT_TRUE(
      Refused(runner("r01") + "[[devices]]\nid = \"t\"\nkind = \"treadmill\"\nrunner = \"r01\"\n",
              "devices[0].station", {"expected a station id", "got nothing"}));
  EXPECT_TRUE(
      Refused(runner("r01") + "[[devices]]\nid = \"t\"\nkind = \"treadmill\"\nstation = \"s\"\n",
              "devices[0].runner", {"expected a runner id", "got nothing"}));
  EXPECT_TRUE(Refused(runner("r01") + device("k", "knee", ""), "devices[0].side",
                      {"expected \"left\" or \"right\" for a knee (required)", "got nothing"}));
  EXPECT_TRUE(Refused(runner("r01") + device("L", "insole", "left", "", "st01", "r01", true),
                      "devices[0].cell_areas_cm2", {"(required), got nothing"}));
}

TEST(ConfigRefusal, IdsOutsideTheCharsetOrTooLongAreRefused) {
  EXPECT_TRUE(
      Refused(runner("r 01"), "runners[0].id",
              {"expected a runner id of 1..64 characters from [A-Za-z0-9_.:-]", "got \"r 01\""}));
  EXPECT_TRUE(Refused(runner(""), "runners[0].id", {"got \"\""}));
  EXPECT_TRUE(Refused(runner("r01") + device(std::string(65, 'a'), "treadmill", ""),
                      "devices[0].id", {"1..64 characters", "got \"aaaa"}));
  EXPECT_TRUE(Refused(runner("r01") + device("t", "treadmill", "", "", "st/01"),
                      "devices[0].station", {"expected a station id", "got \"st/01\""}));
}

TEST(ConfigRefusal, DuplicateDeviceIdIsRefused) {
  EXPECT_TRUE(Refused(runner("r01") + device("dev", "treadmill", "") + device("dev", "console", ""),
                      "devices[1].id",
                      {"expected a unique device id", "got \"dev\" again (first at devices[0])"}));
}

TEST(ConfigRefusal, DuplicateRunnerIdIsRefused) {
  EXPECT_TRUE(Refused(runner("r01") + runner("r01"), "runners[1].id",
                      {"expected a unique runner id", "got \"r01\" again (first at runners[0])"}));
}

TEST(ConfigRefusal, DeviceOfAnUndefinedRunnerIsRefused) {
  EXPECT_TRUE(
      Refused(runner("r01") + runner("r02") + device("t", "treadmill", "", "", "st01", "r9"),
              "devices[0].runner",
              {"runner \"r9\" is not defined in [[runners]]",
               "expected one of \"r01\", \"r02\", got \"r9\""}));
  EXPECT_TRUE(Refused(device("t", "treadmill", "", "", "st01", "r9"), "devices[0].runner",
                      {"(there are none)", "got \"r9\""}));
}

TEST(ConfigRefusal, UnknownDeviceKindIsRefused) {
  EXPECT_TRUE(
      Refused(runner("r01") + device("f", "foot", "left"), "devices[0].kind",
              {"expected \"insole\", \"knee\", \"treadmill\" or \"console\"", "got \"foot\""}));
}

TEST(ConfigRefusal, BadSideIsRefusedForSidedKinds) {
  EXPECT_TRUE(Refused(runner("r01") + device("L", "insole", "up"), "devices[0].side",
                      {"expected \"left\" or \"right\" for an insole", "got \"up\""}));
  EXPECT_TRUE(Refused(runner("r01") + device("k", "knee", "none"), "devices[0].side",
                      {"expected \"left\" or \"right\" for a knee", "got \"none\""}));
  EXPECT_TRUE(
      Refused(runner("r01") + device("k", "knee", "Left"), "devices[0].side", {"got \"Left\""}));
}

TEST(ConfigRefusal, SideOnTreadmillOrConsoleIsRefused) {
  EXPECT_TRUE(Refused(runner("r01") + device("t", "treadmill", "left"), "devices[0].side",
                      {"expected no side (or \"none\") for a treadmill", "got \"left\""}));
  EXPECT_TRUE(Refused(runner("r01") + device("c", "console", "right"), "devices[0].side",
                      {"expected no side (or \"none\") for a console", "got \"right\""}));
}

TEST(ConfigRefusal, CellPositionArrayOfTheWrongLengthIsRefused) {
  EXPECT_TRUE(Refused(insole_key("cell_x = [0.1, 0.5]"), "devices[0].cell_x",
                      {"expected 3 positions (one per entry of cell_areas_cm2)", "got 2"}));
  EXPECT_TRUE(Refused(insole_key("cell_y = [0.1, 0.5, 0.5, 0.5]"), "devices[0].cell_y",
                      {"expected 3 positions", "got 4"}));
}

TEST(ConfigRefusal, TooManyOrNoCellsAreRefused) {
  const auto with_cells = [](int count) {
    return runner("r01") + device("L", "insole", "left",
                                  "cell_areas_cm2 = " + numbers(count, "4.0") + "\n", "st01", "r01",
                                  true);
  };
  EXPECT_NO_THROW(parse(with_cells(32)));
  EXPECT_TRUE(Refused(with_cells(33), "devices[0].cell_areas_cm2",
                      {"expected 1..32 cell areas", "got 33"}));
  EXPECT_TRUE(
      Refused(with_cells(0), "devices[0].cell_areas_cm2", {"expected 1..32 cell areas", "got 0"}));
}

TEST(ConfigRefusal, KneeAxisMustBeThreeNumbersNotAllZero) {
  EXPECT_TRUE(Refused(runner("r01") + device("k", "knee", "left", "thigh_axis = [0, 0, 0]\n"),
                      "devices[0].thigh_axis", {"not all zero", "got [0, 0, 0]"}));
  EXPECT_TRUE(Refused(runner("r01") + device("k", "knee", "left", "shank_axis = [1.0, 0.0]\n"),
                      "devices[0].shank_axis",
                      {"expected an array of 3 numbers", "got 2 numbers"}));
  EXPECT_TRUE(Refused(runner("r01") + device("k", "knee", "left", "shank_axis = [1.0, nan, 0]\n"),
                      "devices[0].shank_axis[1]", {"expected a finite number", "got nan"}));
}

TEST(ConfigRefusal, SecondDeviceInTheSameSlotIsRefused) {
  EXPECT_TRUE(
      Refused(runner("r01") + device("L1", "insole", "left") + device("L2", "insole", "left"),
              "devices[1].side",
              {"expected at most one left insole device for runner \"r01\"",
               "got a second (the first is devices[0] \"L1\")"}));
  EXPECT_TRUE(
      Refused(runner("r01") + device("t1", "treadmill", "") + device("t2", "treadmill", "none"),
              "devices[1].kind",
              {"expected at most one treadmill device for runner \"r01\"", "got a second"}));
}

TEST(ConfigRefusal, StationHoldingTwoRunnersIsRefused) {
  EXPECT_TRUE(Refused(runner("r01") + runner("r02") +
                          device("t1", "treadmill", "", "", "st01", "r01") +
                          device("t2", "treadmill", "", "", "st01", "r02"),
                      "devices[1].station",
                      {"expected every device of station \"st01\" to belong to runner \"r01\"",
                       "got runner \"r02\""}));
}

TEST(ConfigRefusal, RegistryLargerThanItsTablesIsRefused) {
  const std::string two_stations = runner("r01") + runner("r02") +
                                   device("t1", "treadmill", "", "", "st01", "r01") +
                                   device("t2", "treadmill", "", "", "st02", "r02");
  EXPECT_NO_THROW(
      parse("[pipeline]\nmax_devices = 2\nmax_runners = 2\nmax_stations = 2\n" + two_stations));
  EXPECT_TRUE(Refused("[pipeline]\nmax_devices = 1\n" + two_stations, "pipeline.max_devices",
                      {"expected at least the 2 devices this file defines", "got 1"}));
  EXPECT_TRUE(Refused("[pipeline]\nmax_runners = 1\n" + two_stations, "pipeline.max_runners",
                      {"expected at least the 2 runners", "got 1"}));
  EXPECT_TRUE(Refused("[pipeline]\nmax_stations = 1\n" + two_stations, "pipeline.max_stations",
                      {"expected at least the 2 stations", "got 1"}));
}

TEST(ConfigParse, IdleFlushIsGivenInMillisecondsAndMustOutlastTheReorderWindow) {
  EXPECT_EQ(parse("").pipeline.idle_flush_us, 500'000);
  EXPECT_EQ(parse("[pipeline]\nidle_flush_ms = 2500.5\n").pipeline.idle_flush_us, 2'500'500);
  EXPECT_EQ(parse("[pipeline]\nidle_flush_ms = 151\n").pipeline.idle_flush_us, 151'000);
  // A flush inside the window would release every runner's data between two of its frames.
  EXPECT_TRUE(Refused("[pipeline]\nidle_flush_ms = 150\n", "pipeline.idle_flush_ms",
                      {"expected more than model.clock.window_ms (150)", "got 150"}));
  EXPECT_TRUE(Refused("[pipeline]\nidle_flush_ms = 400\n[model.clock]\nwindow_ms = 600\n",
                      "pipeline.idle_flush_ms", {"expected more than model.clock.window_ms (600)", "got 400"}));
  EXPECT_NO_THROW(parse("[pipeline]\nidle_flush_ms = 400\n[model.clock]\nwindow_ms = 300\n"));
}

// ---------------------------------------------------------------------------------------------
// Refusals: endpoints and addresses

TEST(ConfigRefusal, BadEndpointsAreRefused) {
  const std::vector<std::string> expected{"expected a ZeroMQ endpoint tcp://HOST:PORT"};
  EXPECT_TRUE(Refused("[ingest]\nendpoints = [\"udp://127.0.0.1:5600\"]\n", "ingest.endpoints[0]",
                      {expected[0], "got \"udp://127.0.0.1:5600\""}));
  EXPECT_TRUE(Refused("[ingest]\nendpoints = [\"tcp://127.0.0.1:5600\", \"tcp://127.0.0.1\"]\n",
                      "ingest.endpoints[1]", {expected[0], "got \"tcp://127.0.0.1\""}));
  EXPECT_TRUE(Refused("[ingest]\nendpoints = [\"tcp://127.0.0.1:70000\"]\n", "ingest.endpoints[0]",
                      {"got \"tcp://127.0.0.1:70000\""}));
  EXPECT_TRUE(Refused("[ingest]\nendpoints = [\"tcp://:5600\"]\n", "ingest.endpoints[0]",
                      {"got \"tcp://:5600\""}));
  EXPECT_TRUE(
      Refused("[ingest]\nendpoints = [\"ipc://\"]\n", "ingest.endpoints[0]", {"got \"ipc://\""}));
  EXPECT_TRUE(Refused("[ingest]\nendpoints = []\n", "ingest.endpoints",
                      {"expected 1 or more endpoints", "got an empty array"}));
  EXPECT_TRUE(Refused("[publish]\nendpoint = \"inproc://out\"\n", "publish.endpoint",
                      {expected[0], "got \"inproc://out\""}));
}

TEST(ConfigRefusal, EndpointBoundTwiceIsRefused) {
  EXPECT_TRUE(Refused(
      "[ingest]\nendpoints = [\"tcp://127.0.0.1:5600\", \"tcp://127.0.0.1:5600\"]\n",
      "ingest.endpoints[1]", {"expected each endpoint once", "again (also ingest.endpoints[0])"}));
  EXPECT_TRUE(Refused("[publish]\nendpoint = \"tcp://127.0.0.1:5600\"\n", "publish.endpoint",
                      {"expected the publish endpoint to differ from every ingest endpoint",
                       "got \"tcp://127.0.0.1:5600\" for both"}));
}

TEST(ConfigRefusal, BadMetricsAddressIsRefused) {
  EXPECT_TRUE(Refused("[metrics]\naddress = \"localhost\"\n", "metrics.address",
                      {"expected HOST:PORT", "got \"localhost\""}));
  EXPECT_TRUE(Refused("[metrics]\naddress = \"127.0.0.1:65536\"\n", "metrics.address",
                      {"PORT 0..65535", "got \"127.0.0.1:65536\""}));
  EXPECT_NO_THROW(parse("[metrics]\naddress = \"127.0.0.1:0\"\n"));  // any free port
  EXPECT_TRUE(
      Refused("[metrics]\naddress = \"::1:9464\"\n", "metrics.address", {"got \"::1:9464\""}));
  EXPECT_NO_THROW(parse("[metrics]\naddress = \"[::1]:9464\"\n"));
}

// ---------------------------------------------------------------------------------------------
// load_config

TEST(ConfigLoad, MissingFileIsRefusedWithTheOsReason) {
  const std::string path = "/nonexistent-kneeload-dir/kneeloadd.toml";
  try {
    load_config(path);
    FAIL() << "expected a ConfigError for a missing file, got a config";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.file(), path);
    EXPECT_EQ(e.key(), "");
    EXPECT_NE(e.reason().find("No such file or directory"), std::string::npos)
        << "expected the OS reason in «" << e.reason() << "»";
    EXPECT_EQ(std::string(e.what()), path + ": " + e.reason());
  }
}

TEST(ConfigLoad, DirectoryIsRefusedWithTheOsReason) {
  const std::string path = std::string(KNEELOAD_SOURCE_DIR) + "/deploy/config";
  try {
    load_config(path);
    FAIL() << "expected a ConfigError for a directory, got a config";
  } catch (const ConfigError& e) {
    EXPECT_NE(e.reason().find("Is a directory"), std::string::npos)
        << "expected the OS reason in «" << e.reason() << "»";
  }
}

TEST(ConfigErrorText, WhatReadsFileKeyReason) {
  try {
    parse("[pipeline]\nworkers = 65\n");
    FAIL() << "expected a ConfigError for workers = 65";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "test.toml: pipeline.workers: expected an integer 0..64, got 65");
  }
}

// ---------------------------------------------------------------------------------------------
// Overrides

TEST(ConfigOverrides, ReplaceEndpointsAndMetrics) {
  Config c = load_config(kExamplePath);
  Overrides o;
  o.ingest = {"tcp://127.0.0.2:7000", "ipc:///tmp/kneeload-in"};
  o.publish = "tcp://[::1]:7001";
  o.metrics = "";
  apply_overrides(c, o);
  EXPECT_EQ(c.ingest.endpoints, o.ingest);
  EXPECT_EQ(c.publish.endpoint, "tcp://[::1]:7001");
  EXPECT_EQ(c.metrics_address, "");
}

TEST(ConfigOverrides, EmptyOverridesChangeNothing) {
  Config c = load_config(kExamplePath);
  apply_overrides(c, Overrides{});
  EXPECT_TRUE(restart_only_changes(load_config(kExamplePath), c).empty());
}

// Runs apply_overrides expecting a refusal at `key`; the config must be left unchanged.
testing::AssertionResult OverrideRefused(const Overrides& o, const std::string& key,
                                         const std::string& reason_part) {
  const Config before = load_config(kExamplePath);
  Config c = before;
  try {
    apply_overrides(c, o);
  } catch (const ConfigError& e) {
    if (e.key() != key) {
      return testing::AssertionFailure()
             << "expected key \"" << key << "\", got \"" << e.key() << "\": " << e.what();
    }
    if (e.reason().find(reason_part) == std::string::npos) {
      return testing::AssertionFailure() << "expected the reason to contain «" << reason_part
                                         << "», got «" << e.reason() << "»";
    }
    const std::vector<std::string> changed = restart_only_changes(before, c);
    if (!changed.empty()) {
      return testing::AssertionFailure()
             << "expected a refused override to leave the config unchanged, got a change of "
             << changed[0];
    }
    return testing::AssertionSuccess();
  }
  return testing::AssertionFailure() << "expected a ConfigError at " << key << ", got none";
}

TEST(ConfigOverrides, BadValuesAreRefusedUnderTheOptionName) {
  Overrides bad_ingest;
  bad_ingest.ingest = {"udp://127.0.0.1:5600"};
  EXPECT_TRUE(OverrideRefused(bad_ingest, "--ingest", "got \"udp://127.0.0.1:5600\""));

  Overrides bad_publish;
  bad_publish.publish = "tcp://127.0.0.1";
  EXPECT_TRUE(OverrideRefused(bad_publish, "--publish", "expected a ZeroMQ endpoint"));

  Overrides bad_metrics;
  bad_metrics.metrics = "9464";
  EXPECT_TRUE(OverrideRefused(bad_metrics, "--metrics", "got \"9464\""));
}

TEST(ConfigOverrides, PublishOverrideClashingWithIngestIsRefused) {
  Overrides o;
  o.publish = "tcp://127.0.0.1:5600";  // the example's ingest endpoint
  EXPECT_TRUE(OverrideRefused(o, "--publish", "to differ from every ingest endpoint"));

  Overrides both;
  both.ingest = {"tcp://127.0.0.1:5601"};  // the example's publish endpoint
  EXPECT_TRUE(OverrideRefused(both, "--ingest", "to differ from every ingest endpoint"));
}

// ---------------------------------------------------------------------------------------------
// restart_only_changes

TEST(ConfigReload, IdenticalConfigsNeedNoRestart) {
  EXPECT_TRUE(restart_only_changes(load_config(kExamplePath), load_config(kExamplePath)).empty());
}

TEST(ConfigReload, RegistryModelAndHealthChangesNeedNoRestart) {
  const Config running = load_config(kExamplePath);
  Config next = running;
  next.devices.pop_back();
  next.devices[0].insole.force_gain = 1.1;
  next.runners[0].params.body_mass_kg = 80.0;
  next.runners.push_back(RunnerConfig{"r03", {}, "", 0.0});
  next.model.refractory_s = 0.2;
  next.model.rules.pfj_overload.onset_rel = 0.3;
  next.model.rules.faults.stuck_s = 20.0;
  next.model.loading_rate.no_ip_window_end = 0.15;
  next.model.session_load.damage_reference_stress_mpa = 6.0;
  next.model.area_model = fusion::ContactAreaModel::kMriFemale;
  next.model.dynamic_calibration = false;
  next.stale_after_s = 10.0;
  next.pipeline.idle_flush_us = 2'000'000;
  const std::vector<std::string> changed = restart_only_changes(running, next);
  EXPECT_TRUE(changed.empty()) << "expected no restart-only change, got " << changed.size()
                               << ", the first: " << changed.front();
  Config taken = running;
  take_reloadable(taken, next);
  EXPECT_EQ(taken.model.refractory_s, 0.2);
  EXPECT_EQ(taken.model.rules.faults.stuck_s, 20.0);
  EXPECT_EQ(taken.model.area_model, fusion::ContactAreaModel::kMriFemale);
  EXPECT_EQ(taken.stale_after_s, 10.0);
  EXPECT_EQ(taken.pipeline.idle_flush_us, 2'000'000);
}

TEST(ConfigReload, EachRestartOnlyKeyIsReportedAlone) {
  const std::vector<std::pair<std::string, std::function<void(Config&)>>> cases{
      {"ingest.endpoints", [](Config& c) { c.ingest.endpoints.push_back("tcp://127.0.0.1:5700"); }},
      {"ingest.max_frame_bytes", [](Config& c) { c.ingest.max_frame_bytes = 1024; }},
      {"ingest.max_samples_per_frame", [](Config& c) { c.ingest.max_samples_per_frame = 8; }},
      {"ingest.rcvhwm", [](Config& c) { c.ingest.rcvhwm = 1; }},
      {"publish.endpoint", [](Config& c) { c.publish.endpoint = "tcp://127.0.0.1:5701"; }},
      {"publish.sndhwm", [](Config& c) { c.publish.sndhwm = 1; }},
      {"publish.nodrop", [](Config& c) { c.publish.nodrop = true; }},
      {"publish.heartbeat_s", [](Config& c) { c.publish.heartbeat_s = 2.0; }},
      {"metrics.address", [](Config& c) { c.metrics_address = ""; }},
      {"pipeline.workers", [](Config& c) { c.pipeline.workers = 2; }},
      {"pipeline.ingest_ring_capacity", [](Config& c) { c.pipeline.ingest_ring_capacity = 16; }},
      {"pipeline.output_ring_capacity", [](Config& c) { c.pipeline.output_ring_capacity = 16; }},
      {"pipeline.max_devices", [](Config& c) { c.pipeline.max_devices = 100; }},
      {"pipeline.max_runners", [](Config& c) { c.pipeline.max_runners = 100; }},
      {"pipeline.max_stations", [](Config& c) { c.pipeline.max_stations = 100; }},
      // Sizes each runner's reorder storage; running sessions keep theirs.
      {"model.clock.capacity", [](Config& c) { c.model.clock.reorder.capacity = 1024; }},
      // Sizes each runner's stance traces; likewise.
      {"model.stance_trace_samples", [](Config& c) { c.model.stance_trace_samples = 256; }},
  };
  const Config running = load_config(kExamplePath);
  for (const auto& [key, change] : cases) {
    Config next = running;
    change(next);
    EXPECT_EQ(restart_only_changes(running, next), std::vector<std::string>{key})
        << "after changing only " << key;
    // What a reload keeps of it: the running value, so the next reload warns again. The
    // reorder capacity and the stance traces' size are taken, because new sessions are built
    // with them.
    Config taken = running;
    take_reloadable(taken, next);
    if (key != "model.clock.capacity" && key != "model.stance_trace_samples") {
      EXPECT_EQ(restart_only_changes(taken, next), std::vector<std::string>{key}) << "a reload took " << key;
    }
  }
}

// RunnerSession::reconfigure() re-applies the filters, the calibration loop, the trend windows
// and the clock to running runners: none of their keys waits for a restart.
TEST(ConfigReload, FilterCalibrationTrendAndClockChangesNeedNoRestart) {
  const std::vector<std::pair<std::string, std::function<void(Config&)>>> cases{
      {"model.knee", [](Config& c) { c.model.knee.gate_chi2 = 6.63; }},
      {"model.knee", [](Config& c) { c.model.knee.angular_accel_sigma = 50.0; }},
      {"model.shank", [](Config& c) { c.model.shank.quasi_static_tol_g = 0.2; }},
      {"model.force", [](Config& c) { c.model.force.force_sigma_bw = 0.05; }},
      {"model.calibration", [](Config& c) { c.model.calibration.time_constant_s = 30.0; }},
      {"model.trends", [](Config& c) { c.model.trends.rolling_window_s = 60.0; }},
      {"model.trends", [](Config& c) { c.model.trends.rolling_capacity_steps = 256; }},
      {"model.clock", [](Config& c) { c.model.clock.reorder.window_us = 200'000; }},
      {"model.clock",
       [](Config& c) {
         for (fusion::AlignerParams& a : c.model.clock.aligners) a.jump_threshold_us = 80'000;
       }},
      {"model.pta_window_s", [](Config& c) { c.model.pta_window_s = 0.05; }},
      // Not a model key, but the workers read it from each registry generation.
      {"pipeline.idle_flush_ms", [](Config& c) { c.pipeline.idle_flush_us = 2'000'000; }},
  };
  const Config running = load_config(kExamplePath);
  for (const auto& [what, change] : cases) {
    Config next = running;
    change(next);
    EXPECT_EQ(restart_only_changes(running, next), std::vector<std::string>{})
        << "after changing only " << what;
  }
}

// A reload says when it restarts part of the running sessions' state: only new trend
// capacities do.
TEST(ConfigReload, OnlyTrendCapacitiesRestartSessionState) {
  const Config running = load_config(kExamplePath);
  Config next = running;
  next.model.knee.gate_chi2 = 6.63;
  next.model.trends.rolling_window_s = 60.0;
  next.model.clock.reorder.window_us = 200'000;
  EXPECT_EQ(reload_resets(running, next), std::vector<std::string>{});
  next.model.trends.rolling_capacity_steps = 256;
  next.model.trends.baseline_capacity_steps = 2048;
  const std::vector<std::string> expected{"model.trends.rolling_capacity_steps",
                                          "model.trends.baseline_capacity_steps"};
  EXPECT_EQ(reload_resets(running, next), expected);
}

TEST(ConfigReload, SeveralRestartOnlyChangesAreAllReported) {
  const Config running = load_config(kExamplePath);
  Config next = running;
  next.pipeline.workers = 4;
  next.publish.sndhwm = 5;
  next.model.state_rate_hz = 10.0;
  const std::vector<std::string> expected{"publish.sndhwm", "pipeline.workers"};
  EXPECT_EQ(restart_only_changes(running, next), expected);
}

}  // namespace
}  // namespace kneeload::daemon

namespace kneeload::daemon {
namespace {

TEST(ConfigRegistry, ARunnerSpreadOverTwoStationsIsRefused) {
  const std::string toml = R"(
[[runners]]
id = "r1"

[[devices]]
id = "tm-a"
station = "st-a"
runner = "r1"
kind = "treadmill"

[[devices]]
id = "console-b"
station = "st-b"
runner = "r1"
kind = "console"
)";
  try {
    parse_config(toml, "two-stations.toml");
    FAIL() << "a runner on two stations was accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "devices[1].station");
    EXPECT_NE(std::string(e.what()).find("expected every device of runner \"r1\" at station \"st-a\""),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("got station \"st-b\""), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kneeload::daemon

namespace kneeload::daemon {
namespace {

TEST(ConfigKnee, SensorOffsetsAreReadAsPositionsNotNormalised) {
  const Config c = parse_config(R"(
[[runners]]
id = "r1"

[[devices]]
id = "k"
station = "s"
runner = "r1"
kind = "knee"
side = "left"
thigh_sensor_m = [0.0, 0.2, 0.01]
shank_sensor_m = [0.0, -0.3, 0.0]
)", "knee.toml");
  ASSERT_EQ(c.devices.size(), 1u);
  EXPECT_DOUBLE_EQ(c.devices[0].knee.thigh_sensor_m[1], 0.2);
  EXPECT_DOUBLE_EQ(c.devices[0].knee.thigh_sensor_m[2], 0.01);
  EXPECT_DOUBLE_EQ(c.devices[0].knee.shank_sensor_m[1], -0.3);
  try {
    parse_config(R"(
[[runners]]
id = "r1"

[[devices]]
id = "k"
station = "s"
runner = "r1"
kind = "knee"
side = "left"
shank_sensor_m = [0.0, -1.5, 0.0]
)", "far.toml");
    FAIL() << "a sensor 1.5 m from the knee was accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "devices[0].shank_sensor_m[1]") << e.what();
  }
}

}  // namespace
}  // namespace kneeload::daemon

namespace kneeload::daemon {
namespace {

TEST(RegistryHistory, ShoeKmFromRunnerMetadataReachesTheR9Hook) {
  const Config c = parse_config(R"(
[[runners]]
id = "r1"
shoe_id = "pegasus-41"
shoe_km = 650.0

[[runners]]
id = "r2"

[[devices]]
id = "tm1"
station = "s1"
runner = "r1"
kind = "treadmill"

[[devices]]
id = "tm2"
station = "s2"
runner = "r2"
kind = "treadmill"
)", "shoes.toml");
  Names names(16, 16, 16);
  const auto registry = build_registry(c, names, 1);
  const auto r1 = *names.runners.intern("r1");
  const auto r2 = *names.runners.intern("r2");
  ASSERT_NE(registry->sessions[r1], nullptr);
  EXPECT_DOUBLE_EQ(registry->sessions[r1]->history.shoe_km_before_session, 650.0);
  ASSERT_NE(registry->sessions[r2], nullptr);
  EXPECT_TRUE(std::isnan(registry->sessions[r2]->history.shoe_km_before_session))
      << "no shoe id: the km are unknown, so R9's km rule stays silent";
}

// ---------------------------------------------------------------------------------------------
// The runner store: state_dir, [store], --state-dir

TEST(ConfigStore, DefaultsKeepHistoryInVarLibKneeload) {
  const Config c = parse("");
  EXPECT_EQ(c.state_dir, "/var/lib/kneeload");
  EXPECT_TRUE(c.store.enabled);
  EXPECT_TRUE(c.store_active());
  EXPECT_EQ(c.store.checkpoint_interval_s, 5.0);
  EXPECT_TRUE(c.store.required);
}

TEST(ConfigStore, AnEmptyStateDirOrEnabledFalseTurnsTheStoreOff) {
  EXPECT_FALSE(parse("state_dir = \"\"\n").store_active());
  EXPECT_FALSE(parse("[store]\nenabled = false\n").store_active());
  const Config c = parse("state_dir = \"/srv/kl\"\n[store]\ncheckpoint_interval_s = 0.5\nring_capacity = 1024\n"
                         "required = false\n");
  EXPECT_EQ(c.state_dir, "/srv/kl");
  EXPECT_EQ(c.store.checkpoint_interval_s, 0.5);
  EXPECT_EQ(c.store.ring_capacity, 1024u);
  EXPECT_FALSE(c.store.required);
}

TEST(ConfigStore, BadStoreKeysAreRefusedWithWhatWasExpected) {
  EXPECT_TRUE(Refused("[store]\ncheckpoint_interval_s = 0\n", "store.checkpoint_interval_s", {"0.1", "got 0"}));
  EXPECT_TRUE(Refused("[store]\nring_capacity = 1.5\n", "store.ring_capacity", {"integer"}));
  EXPECT_TRUE(Refused("[store]\nenabled = \"yes\"\n", "store.enabled", {"boolean"}));
  EXPECT_TRUE(Refused("[store]\npath = \"/x\"\n", "store.path", {"checkpoint_interval_s", "got unknown key"}));
  EXPECT_TRUE(Refused("state_dir = 3\n", "state_dir", {"directory path string", "got"}));
}

TEST(ConfigStore, StateDirOverrideReplacesTheFilesValueAndNeedsARestart) {
  Config c = parse("state_dir = \"/srv/kl\"\n");
  Overrides o;
  o.state_dir = "/tmp/elsewhere";
  apply_overrides(c, o);
  EXPECT_EQ(c.state_dir, "/tmp/elsewhere");
  const Config running = load_config(kExamplePath);
  Config next = running;
  next.state_dir = "/srv/other";
  next.store.checkpoint_interval_s = 1.0;
  EXPECT_EQ(restart_only_changes(running, next),
            (std::vector<std::string>{"state_dir", "store.checkpoint_interval_s"}));
}

}  // namespace
}  // namespace kneeload::daemon

namespace kneeload::daemon {
namespace {

// ---------------------------------------------------------------------------------------------
// Security (CURVE)

constexpr const char* kKeyA = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";  // libzmq's test vectors
constexpr const char* kKeyB = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";

struct KeyFiles {
  std::string dir = make_dir();
  std::string secret = dir + "/server.key_secret";
  std::string public_only = dir + "/server.key";
  static std::string make_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "kneeload-keys-XXXXXX").string();
    return ::mkdtemp(tmpl.data());
  }
  ~KeyFiles() { std::filesystem::remove_all(dir); }
  KeyFiles() {
    std::ofstream(secret) << "public_key = \"" << kKeyA << "\"\nsecret_key = \"" << kKeyB << "\"\n";
    std::ofstream(public_only) << "public_key = \"" << kKeyA << "\"\n";
  }
};

TEST(ConfigSecurity, PlaintextOnTheNetworkIsRefusedUnlessAllowed) {
  EXPECT_TRUE(Refused("[ingest]\nendpoints = [\"tcp://0.0.0.0:5600\"]\n", "ingest.endpoints[0]",
                      {"expected a loopback or ipc endpoint without CURVE", "allow_plaintext", "got \"tcp://0.0.0.0:5600\""}));
  EXPECT_TRUE(Refused("[publish]\nendpoint = \"tcp://192.168.1.5:5601\"\n", "publish.endpoint",
                      {"security.curve = true"}));
  const Config c = parse("[security]\nallow_plaintext = true\n[ingest]\nendpoints = [\"tcp://*:5600\"]\n");
  EXPECT_TRUE(c.security.allow_plaintext);
  EXPECT_NO_THROW(parse("[ingest]\nendpoints = [\"tcp://127.0.0.1:5600\", \"tcp://localhost:5602\", \"ipc:///run/k\"]\n"));
  Config d = parse("");
  Overrides o;
  o.ingest = {"tcp://10.0.0.1:5600"};
  EXPECT_THROW(apply_overrides(d, o), ConfigError);
}

TEST(ConfigSecurity, CurveReadsTheDaemonsKeyPairAndAllowsTheNetwork) {
  KeyFiles k;
  const Config c = parse("[security]\ncurve = true\nsecret_key_file = \"" + k.secret +
                         "\"\ngateway_keys = [\"" + kKeyB + "\"]\n[ingest]\nendpoints = [\"tcp://0.0.0.0:5600\"]\n");
  EXPECT_TRUE(c.security.curve);
  EXPECT_EQ(c.security.public_key, kKeyA);
  EXPECT_EQ(c.security.secret_key, kKeyB);
  EXPECT_EQ(c.security.gateway_keys, std::vector<std::string>{kKeyB});
}

TEST(ConfigSecurity, BadKeysAndKeyFilesAreRefusedWithTheirKey) {
  KeyFiles k;
  EXPECT_TRUE(Refused("[security]\ncurve = true\n", "security.secret_key_file", {"expected the daemon's key file"}));
  EXPECT_TRUE(Refused("[security]\ncurve = true\nsecret_key_file = \"" + k.public_only + "\"\n",
                      "security.secret_key_file", {"got a public-only key file"}));
  EXPECT_TRUE(Refused("[security]\ncurve = true\nsecret_key_file = \"/nonexistent/k\"\n",
                      "security.secret_key_file", {"expected a key file written by kneeloadctl keygen"}));
  EXPECT_TRUE(Refused("[security]\ngateway_keys = [\"short\"]\n", "security.gateway_keys[0]",
                      {"40-character Z85", "got \"short\""}));
  EXPECT_TRUE(Refused(std::string("[security]\ngateway_keys = [\"") + kKeyA + "\", \"" + kKeyA + "\"]\n",
                      "security.gateway_keys[1]", {"expected each key once"}));
  // A device key without CURVE would promise an authentication that does not happen.
  EXPECT_TRUE(Refused(runner("r01") + device("d1", "treadmill", "", std::string("public_key = \"") + kKeyA + "\"\n"),
                      "devices[0].public_key", {"security.curve = true"}));
  // One key, one role.
  const std::string curve = "[security]\ncurve = true\nsecret_key_file = \"" + k.secret + "\"\ngateway_keys = [\"" +
                            kKeyA + "\"]\n";
  EXPECT_TRUE(Refused(curve + runner("r01") + device("d1", "treadmill", "", std::string("public_key = \"") + kKeyA + "\"\n"),
                      "devices[0].public_key", {"got the key of security.gateway_keys[0]"}));
}

TEST(ConfigSecurity, KeysAreReloadableButCurveItselfNeedsARestart) {
  KeyFiles k;
  const std::string base = "[security]\ncurve = true\nsecret_key_file = \"" + k.secret + "\"\n";
  const Config a = parse(base);
  const Config b = parse(base + "gateway_keys = [\"" + kKeyB + "\"]\n");
  EXPECT_TRUE(restart_only_changes(a, b).empty());
  const Config plain = parse("");
  const std::vector<std::string> changed = restart_only_changes(plain, a);
  EXPECT_NE(std::find(changed.begin(), changed.end(), "security.curve"), changed.end());
}

}  // namespace
}  // namespace kneeload::daemon
