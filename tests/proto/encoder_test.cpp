// OutputEncoder: every output type round-trips through the generated parser field for field
// (header, enums, evidence, NaN passthrough); a too-small buffer yields 0 and stays untouched;
// a reused encoder produces the same bytes as a fresh one.
#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kneeload/proto/codec.hpp"
#include "kneeload/v1/publish.pb.h"

namespace kneeload::proto {
namespace {

namespace v1 = kneeload::v1;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

constexpr OutputNames kNames{"station-a", "runner-with-a-long-name-01", ""};
constexpr PublishMeta kMeta{42, 1'700'000'000'123'456, 1234, 151'234};

fusion::Output output_of(const fusion::OutputBody& body) { return fusion::Output{3, 1, 999, 1000, body}; }

fusion::FusedState fused_state() {
  fusion::FusedState s{};
  s.t_us = 11'000'000;
  s.knee_angle_rad[0] = 0.5f;
  s.knee_angle_rad[1] = kNaN;  // no right knee device
  s.vgrf_bw[0] = 2.25f;
  s.vgrf_bw[1] = 0.0f;
  s.belt_speed_mps = 3.5f;
  s.incline_fraction = -0.02f;
  s.cadence_spm = 172.0f;
  s.contact_mask = 0x1;
  return s;
}

fusion::StepMetrics step_metrics() {
  fusion::StepMetrics m{};
  m.ic_t_us = 20'000'000;
  m.to_t_us = 20'250'000;
  m.step_index = 1234;
  m.side = fusion::Side::kRight;
  m.contact_time_s = 0.25f;
  m.flight_time_s = 0.1f;
  m.cadence_spm = 171.5f;
  m.step_length_m = 1.1f;
  m.peak_force_bw = 2.6f;
  m.strike_index_pct = 33.0f;
  m.knee_angle_ic_rad = 0.2f;
  m.knee_angle_peak_rad = 0.75f;
  m.peak_knee_moment_nm_per_kg = kNaN;
  m.peak_pfjrf_bw = 5.5f;
  m.peak_pfj_stress_mpa = 9.0f;
  m.stress_time_integral_mpa_s = 1.5f;
  m.itb_zone_time_s = 0.03f;
  m.valr_bw_per_s = 70.0f;
  m.vilr_bw_per_s = 90.0f;
  m.pfjrf_impulse_bw_s = 0.62f;
  m.cop_path_length_m = 0.185f;
  m.cop_ml_excursion_m = 0.0095f;
  m.pta_g = kNaN;  // below 500 Hz
  return m;
}

fusion::RiskEvent risk_event() {
  fusion::RiskEvent e{};
  e.t_us = 30'000'000;
  e.rule = fusion::RuleId::kPainReport;
  e.severity = fusion::Severity::kHigh;
  e.phase = fusion::EventPhase::kOnset;
  e.side = fusion::Side::kLeft;
  e.device = UINT32_MAX;
  e.evidence_count = 2;
  e.evidence[0] = {"pain_score", 6.0f, kNaN, 3.0f};
  e.evidence[1] = {"pain_location", 1.0f, 0.5f, 0.0f};
  e.model_id = "pfj-ho2012-v1";
  return e;
}

fusion::SessionSummary session_summary() {
  fusion::SessionSummary s{};
  s.start_t_us = 1'000'000;
  s.end_t_us = 3'601'000'000;
  s.steps = 10'000;
  s.distance_m = 10'000.5f;
  s.duration_s = 3600.0f;
  s.stress_time_integral_mpa_s = 1234.5f;
  s.damage_index = 0.0125f;
  s.damage_index_sensitivity = 0.00031f;
  s.pfjrf_impulse_bw_s = 6200.5f;
  s.risk_events = 3;
  s.ended_explicitly = true;
  return s;
}

template <typename Msg>
Msg parse(const std::vector<std::byte>& buf, std::size_t n) {
  Msg m;
  EXPECT_TRUE(m.ParseFromArray(buf.data(), static_cast<int>(n))) << "encoded bytes do not parse";
  return m;
}

void expect_header(const v1::Header& h, std::string_view station, std::string_view runner,
                   std::int64_t t_us) {
  EXPECT_EQ(h.station(), station);
  EXPECT_EQ(h.runner(), runner);
  EXPECT_EQ(h.seq(), kMeta.seq);
  EXPECT_EQ(h.t_us(), t_us);
  EXPECT_EQ(h.published_unix_us(), kMeta.published_unix_us);
  EXPECT_EQ(h.latency_us(), kMeta.latency_us);
  EXPECT_EQ(h.age_us(), kMeta.age_us);
}

class OutputEncoderTest : public ::testing::Test {
 protected:
  std::size_t encode(const fusion::OutputBody& body, const OutputNames& names = kNames) {
    return encoder_.encode(output_of(body), names, kMeta, buf_);
  }
  OutputEncoder encoder_;
  std::vector<std::byte> buf_ = std::vector<std::byte>(4096);
};

TEST_F(OutputEncoderTest, FusedStateRoundTripsWithNaNPassthrough) {
  const std::size_t n = encode(fused_state());
  ASSERT_GT(n, 0u);
  const auto m = parse<v1::FusedState>(buf_, n);
  ASSERT_TRUE(m.has_header());
  expect_header(m.header(), kNames.station, kNames.runner, 11'000'000);
  EXPECT_EQ(m.knee_angle_left_rad(), 0.5f);
  EXPECT_TRUE(std::isnan(m.knee_angle_right_rad())) << "got " << m.knee_angle_right_rad();
  EXPECT_EQ(m.vgrf_left_bw(), 2.25f);
  EXPECT_EQ(m.vgrf_right_bw(), 0.0f);
  EXPECT_EQ(m.belt_speed_mps(), 3.5f);
  EXPECT_EQ(m.incline_fraction(), -0.02f);
  EXPECT_EQ(m.cadence_spm(), 172.0f);
  EXPECT_TRUE(m.contact_left());
  EXPECT_FALSE(m.contact_right());
}

TEST_F(OutputEncoderTest, FusedStateContactMaskBitsMapToFeet) {
  fusion::FusedState s = fused_state();
  s.contact_mask = 0x2;
  auto m = parse<v1::FusedState>(buf_, encode(s));
  EXPECT_FALSE(m.contact_left());
  EXPECT_TRUE(m.contact_right());
  s.contact_mask = 0x3;
  m = parse<v1::FusedState>(buf_, encode(s));
  EXPECT_TRUE(m.contact_left());
  EXPECT_TRUE(m.contact_right());
}

TEST_F(OutputEncoderTest, StepMetricsRoundTripsWithToeOffAsHeaderTime) {
  const std::size_t n = encode(step_metrics());
  ASSERT_GT(n, 0u);
  const auto m = parse<v1::StepMetrics>(buf_, n);
  expect_header(m.header(), kNames.station, kNames.runner, 20'250'000);
  EXPECT_EQ(m.step_index(), 1234u);
  EXPECT_EQ(m.side(), v1::SIDE_RIGHT);
  EXPECT_EQ(m.ic_t_us(), 20'000'000);
  EXPECT_EQ(m.to_t_us(), 20'250'000);
  EXPECT_EQ(m.contact_time_s(), 0.25f);
  EXPECT_EQ(m.flight_time_s(), 0.1f);
  EXPECT_EQ(m.cadence_spm(), 171.5f);
  EXPECT_EQ(m.step_length_m(), 1.1f);
  EXPECT_EQ(m.peak_force_bw(), 2.6f);
  EXPECT_EQ(m.strike_index_pct(), 33.0f);
  EXPECT_EQ(m.knee_angle_ic_rad(), 0.2f);
  EXPECT_EQ(m.knee_angle_peak_rad(), 0.75f);
  EXPECT_TRUE(std::isnan(m.peak_knee_moment_nm_per_kg()))
      << "got " << m.peak_knee_moment_nm_per_kg();
  EXPECT_EQ(m.peak_pfjrf_bw(), 5.5f);
  EXPECT_EQ(m.peak_pfj_stress_mpa(), 9.0f);
  EXPECT_EQ(m.stress_time_integral_mpa_s(), 1.5f);
  EXPECT_EQ(m.itb_zone_time_s(), 0.03f);
  EXPECT_EQ(m.valr_bw_per_s(), 70.0f);
  EXPECT_EQ(m.vilr_bw_per_s(), 90.0f);
  EXPECT_EQ(m.pfjrf_impulse_bw_s(), 0.62f);
  EXPECT_EQ(m.cop_path_length_m(), 0.185f);
  EXPECT_EQ(m.cop_ml_excursion_m(), 0.0095f);
  EXPECT_TRUE(std::isnan(m.pta_g())) << "got " << m.pta_g();
}

TEST_F(OutputEncoderTest, RiskEventRoundTripsWithRuleTextsEvidenceAndEnums) {
  const fusion::RiskEvent e = risk_event();
  const std::size_t n = encode(e);
  ASSERT_GT(n, 0u);
  const auto m = parse<v1::RiskEvent>(buf_, n);
  expect_header(m.header(), kNames.station, kNames.runner, 30'000'000);
  const fusion::RuleInfo& rule = fusion::rule_info(fusion::RuleId::kPainReport);
  EXPECT_EQ(m.rule_number(), 10u);
  // publish.proto names these two as examples of R10: they are protocol, not prose.
  EXPECT_EQ(m.rule_code(), "R10");
  EXPECT_EQ(m.rule_name(), "pain_report");
  EXPECT_EQ(m.evidence_tag(), static_cast<int>(rule.evidence));
  EXPECT_EQ(m.source(), rule.source);
  EXPECT_EQ(m.advice(), rule.advice);
  EXPECT_FALSE(m.advice().empty());
  EXPECT_EQ(m.severity(), v1::SEVERITY_HIGH);
  EXPECT_EQ(m.phase(), v1::EVENT_PHASE_ONSET);
  EXPECT_EQ(m.side(), v1::SIDE_LEFT);
  EXPECT_EQ(m.device_id(), "");
  EXPECT_EQ(m.model_id(), "pfj-ho2012-v1");
  ASSERT_EQ(m.evidence_size(), 2);
  EXPECT_EQ(m.evidence(0).metric(), "pain_score");
  EXPECT_EQ(m.evidence(0).value(), 6.0f);
  EXPECT_TRUE(std::isnan(m.evidence(0).baseline())) << "got " << m.evidence(0).baseline();
  EXPECT_EQ(m.evidence(0).threshold(), 3.0f);
  EXPECT_EQ(m.evidence(1).metric(), "pain_location");
  EXPECT_EQ(m.evidence(1).value(), 1.0f);
  EXPECT_EQ(m.evidence(1).baseline(), 0.5f);
  EXPECT_EQ(m.evidence(1).threshold(), 0.0f);
}

TEST_F(OutputEncoderTest, SensorFaultCarriesDeviceIdAndRuleNumberAboveTwenty) {
  fusion::RiskEvent e = risk_event();
  e.rule = fusion::RuleId::kSensorDropout;
  e.severity = fusion::Severity::kWarn;
  e.phase = fusion::EventPhase::kClear;
  e.side = fusion::Side::kNone;
  e.evidence_count = 0;
  e.model_id = nullptr;
  const OutputNames names{"station-a", "runner-1", "station-a/runner-01/insole-left"};
  const auto m = parse<v1::RiskEvent>(buf_, encode(e, names));
  const fusion::RuleInfo& rule = fusion::rule_info(fusion::RuleId::kSensorDropout);
  EXPECT_EQ(m.rule_number(), 20u);
  EXPECT_EQ(m.rule_code(), rule.code);
  EXPECT_EQ(m.rule_name(), rule.name);
  EXPECT_EQ(m.device_id(), "station-a/runner-01/insole-left");
  EXPECT_EQ(m.severity(), v1::SEVERITY_WARN);
  EXPECT_EQ(m.phase(), v1::EVENT_PHASE_CLEAR);
  EXPECT_EQ(m.side(), v1::SIDE_UNSPECIFIED);
  EXPECT_EQ(m.evidence_size(), 0);
  EXPECT_EQ(m.model_id(), "") << "nullptr model_id must encode as empty";
}

TEST_F(OutputEncoderTest, EveryRuleIdEncodesItsNumberAndRuleInfo) {
  using R = fusion::RuleId;
  for (const R id : {R::kPfjOverload, R::kLowCadence, R::kImpact, R::kSessionSpike, R::kWeeklyJump,
                     R::kItbsPattern, R::kFatigueDrift, R::kAsymmetry, R::kShoes, R::kPainReport,
                     R::kSensorDropout, R::kSensorSaturation, R::kStuckCell, R::kClockJump}) {
    fusion::RiskEvent e = risk_event();
    e.rule = id;
    const auto m = parse<v1::RiskEvent>(buf_, encode(e));
    const fusion::RuleInfo& rule = fusion::rule_info(id);
    const int number = static_cast<int>(id);
    EXPECT_EQ(m.rule_number(), static_cast<std::uint32_t>(number)) << "rule " << number;
    EXPECT_EQ(m.rule_code(), rule.code) << "rule " << number;
    EXPECT_EQ(m.rule_name(), rule.name) << "rule " << number;
    EXPECT_EQ(m.evidence_tag(), static_cast<int>(rule.evidence)) << "rule " << number;
    EXPECT_EQ(m.source(), rule.source) << "rule " << number;
    EXPECT_EQ(m.advice(), rule.advice) << "rule " << number;
  }
}

TEST_F(OutputEncoderTest, EvidenceBeyondCapacityIsNotRead) {
  fusion::RiskEvent e = risk_event();
  e.evidence_count = 200;  // corrupt count: only kMaxEvidence entries exist
  for (auto& ev : e.evidence) ev = {"x", 1.0f, 2.0f, 3.0f};
  const auto m = parse<v1::RiskEvent>(buf_, encode(e));
  EXPECT_EQ(m.evidence_size(), fusion::kMaxEvidence);
}

TEST_F(OutputEncoderTest, EnumsMapOneToOneOntoWireNumbers) {
  struct SideCase {
    fusion::Side in;
    v1::Side out;
  };
  for (const SideCase c : {SideCase{fusion::Side::kNone, v1::SIDE_UNSPECIFIED},
                           SideCase{fusion::Side::kLeft, v1::SIDE_LEFT},
                           SideCase{fusion::Side::kRight, v1::SIDE_RIGHT}}) {
    fusion::StepMetrics s = step_metrics();
    s.side = c.in;
    EXPECT_EQ(parse<v1::StepMetrics>(buf_, encode(s)).side(), c.out)
        << "side " << static_cast<int>(c.in);
  }
  for (const auto sev :
       {fusion::Severity::kInfo, fusion::Severity::kWarn, fusion::Severity::kHigh}) {
    fusion::RiskEvent e = risk_event();
    e.severity = sev;
    EXPECT_EQ(static_cast<int>(parse<v1::RiskEvent>(buf_, encode(e)).severity()),
              static_cast<int>(sev));
  }
  for (const auto ph : {fusion::EventPhase::kOnset, fusion::EventPhase::kClear}) {
    fusion::RiskEvent e = risk_event();
    e.phase = ph;
    EXPECT_EQ(static_cast<int>(parse<v1::RiskEvent>(buf_, encode(e)).phase()),
              static_cast<int>(ph));
  }
  // A value outside the fusion enum is published as UNSPECIFIED, not as an undefined number.
  fusion::RiskEvent bad = risk_event();
  bad.severity = static_cast<fusion::Severity>(9);
  bad.side = static_cast<fusion::Side>(7);
  const auto m = parse<v1::RiskEvent>(buf_, encode(bad));
  EXPECT_EQ(m.severity(), v1::SEVERITY_UNSPECIFIED);
  EXPECT_EQ(m.side(), v1::SIDE_UNSPECIFIED);
}

TEST_F(OutputEncoderTest, SessionSummaryRoundTripsWithEndAsHeaderTime) {
  const std::size_t n = encode(session_summary());
  ASSERT_GT(n, 0u);
  const auto m = parse<v1::SessionSummary>(buf_, n);
  expect_header(m.header(), kNames.station, kNames.runner, 3'601'000'000);
  EXPECT_EQ(m.start_t_us(), 1'000'000);
  EXPECT_EQ(m.end_t_us(), 3'601'000'000);
  EXPECT_EQ(m.steps(), 10'000u);
  EXPECT_EQ(m.distance_m(), 10'000.5f);
  EXPECT_EQ(m.duration_s(), 3600.0f);
  EXPECT_EQ(m.stress_time_integral_mpa_s(), 1234.5f);
  EXPECT_EQ(m.damage_index(), 0.0125f);
  EXPECT_EQ(m.damage_index_sensitivity(), 0.00031f);
  EXPECT_EQ(m.pfjrf_impulse_bw_s(), 6200.5f);
  EXPECT_EQ(m.risk_events(), 3u);
  EXPECT_TRUE(m.ended_explicitly());
}

StatusReport status_report(std::span<const NamedCount> rejected,
                           std::span<const NamedCount> dropped) {
  StatusReport s;
  s.version = "0.1.0+test";
  s.uptime_s = 3600;
  s.frames_received = 1'000'000;
  s.frames_accepted = 999'000;
  s.samples_accepted = 9'990'000;
  s.outputs_published = 123'456;
  s.rejected = rejected;
  s.dropped = dropped;
  s.active_devices = 12;
  s.stale_devices = 1;
  s.config_generation = 4;
  s.draining = true;
  return s;
}

TEST_F(OutputEncoderTest, StatusRoundTripsWithCountsAndAnEmptyHeaderPlace) {
  const std::array<NamedCount, 2> rejected{{{"malformed", 7}, {"unknown_device", 3}}};
  const std::array<NamedCount, 1> dropped{{{"worker_ring_full", 11}}};
  const std::size_t n = encoder_.encode_status(status_report(rejected, dropped), kMeta, buf_);
  ASSERT_GT(n, 0u);
  const auto m = parse<v1::DaemonStatus>(buf_, n);
  expect_header(m.header(), "", "", 0);
  EXPECT_EQ(m.version(), "0.1.0+test");
  EXPECT_EQ(m.uptime_s(), 3600);
  EXPECT_EQ(m.frames_received(), 1'000'000u);
  EXPECT_EQ(m.frames_accepted(), 999'000u);
  EXPECT_EQ(m.samples_accepted(), 9'990'000u);
  EXPECT_EQ(m.outputs_published(), 123'456u);
  ASSERT_EQ(m.rejected_size(), 2);
  EXPECT_EQ(m.rejected(0).name(), "malformed");
  EXPECT_EQ(m.rejected(0).value(), 7u);
  EXPECT_EQ(m.rejected(1).name(), "unknown_device");
  EXPECT_EQ(m.rejected(1).value(), 3u);
  ASSERT_EQ(m.dropped_size(), 1);
  EXPECT_EQ(m.dropped(0).name(), "worker_ring_full");
  EXPECT_EQ(m.dropped(0).value(), 11u);
  EXPECT_EQ(m.active_devices(), 12u);
  EXPECT_EQ(m.stale_devices(), 1u);
  EXPECT_EQ(m.config_generation(), 4u);
  EXPECT_TRUE(m.draining());
}

TEST_F(OutputEncoderTest, TooSmallBufferReturnsZeroAndWritesNothing) {
  const std::size_t n = encode(risk_event());
  ASSERT_GT(n, 0u);
  std::vector<std::byte> small(n - 1, std::byte{0xAB});
  EXPECT_EQ(encoder_.encode(output_of(risk_event()), kNames, kMeta, small), 0u);
  for (std::size_t i = 0; i < small.size(); ++i) {
    ASSERT_EQ(small[i], std::byte{0xAB}) << "byte " << i << " was written";
  }
  EXPECT_EQ(encoder_.encode(output_of(risk_event()), kNames, kMeta, std::span<std::byte>()), 0u);
  std::vector<std::byte> exact(n);
  EXPECT_EQ(encoder_.encode(output_of(risk_event()), kNames, kMeta, exact), n)
      << "a buffer of exactly the encoded size must do";

  const std::array<NamedCount, 1> rejected{{{"malformed", 7}}};
  const StatusReport status = status_report(rejected, {});
  const std::size_t ns = encoder_.encode_status(status, kMeta, buf_);
  ASSERT_GT(ns, 0u);
  std::vector<std::byte> small_status(ns - 1);
  EXPECT_EQ(encoder_.encode_status(status, kMeta, small_status), 0u);
}

// A reused encoder overwrites its messages in place (see encoder.cpp): anything left over from
// a bigger previous message would show here as a difference from a fresh encoder.
TEST_F(OutputEncoderTest, ReusedEncoderProducesTheSameBytesAsAFreshOne) {
  fusion::RiskEvent big = risk_event();
  big.evidence_count = fusion::kMaxEvidence;
  for (auto& ev : big.evidence) ev = {"a_rather_long_metric_name", 1.0f, 2.0f, 3.0f};
  fusion::RiskEvent small = risk_event();
  small.rule = fusion::RuleId::kLowCadence;
  small.evidence_count = 1;
  small.model_id = nullptr;
  fusion::StepMetrics step = step_metrics();
  fusion::SessionSummary summary = session_summary();
  summary.ended_explicitly = false;
  const OutputNames long_names{"a-station-with-a-long-name", "a-runner-with-a-long-name",
                               "a-device-with-a-long-name"};
  const OutputNames short_names{"s", "r", ""};

  const auto bytes = [](OutputEncoder& enc, const fusion::OutputBody& body,
                        const OutputNames& names) {
    std::vector<std::byte> b(4096);
    b.resize(enc.encode(output_of(body), names, kMeta, b));
    return b;
  };
  // Big then small on the reused encoder, small on a fresh one.
  for (const fusion::OutputBody& body :
       {fusion::OutputBody{big}, fusion::OutputBody{fused_state()}, fusion::OutputBody{step},
        fusion::OutputBody{session_summary()}}) {
    (void)bytes(encoder_, body, long_names);
  }
  for (const fusion::OutputBody& body :
       {fusion::OutputBody{small}, fusion::OutputBody{fusion::FusedState{}},
        fusion::OutputBody{fusion::StepMetrics{}}, fusion::OutputBody{summary}}) {
    OutputEncoder fresh;
    const std::vector<std::byte> reused = bytes(encoder_, body, short_names);
    const std::vector<std::byte> expected = bytes(fresh, body, short_names);
    ASSERT_FALSE(expected.empty());
    EXPECT_EQ(reused, expected) << "output type " << body.index() << ": reused " << reused.size()
                                << " bytes, fresh " << expected.size() << " bytes";
  }

  const std::array<NamedCount, 3> many{{{"malformed", 1}, {"oversize", 2}, {"empty_frame", 3}}};
  const std::array<NamedCount, 1> one{{{"x", 9}}};
  (void)encoder_.encode_status(status_report(many, many), kMeta, buf_);
  StatusReport later = status_report(one, {});
  later.draining = false;
  later.version = "v";
  std::vector<std::byte> reused(4096);
  std::vector<std::byte> expected(4096);
  OutputEncoder fresh;
  reused.resize(encoder_.encode_status(later, kMeta, reused));
  expected.resize(fresh.encode_status(later, kMeta, expected));
  EXPECT_EQ(reused, expected) << "status: reused " << reused.size() << " bytes, fresh "
                              << expected.size() << " bytes";
}

}  // namespace
}  // namespace kneeload::proto
