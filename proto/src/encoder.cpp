// OutputEncoder: fusion outputs and daemon status → kneeload.v1 publish messages.
//
// No allocation after warm-up. The encoder keeps one heap-owned message per output type and
// overwrites it in place, so every std::string and repeated element allocated for an earlier
// message of the same shape is reused. Two protobuf 3.21 behaviours shape the code:
//  - The generated top-level Clear() deletes the Header sub-message (a heap message frees its
//    singular sub-messages), which would cost a new Header per encode. So the top level is
//    never Clear()ed: every field is written on every encode (the tests compare a reused
//    encoder's bytes against a fresh one's to catch a field that is not), and only the
//    repeated fields are Clear()ed, which keeps their elements for reuse.
//  - set_x(const char*, size_t) and set_x(std::string) build a temporary std::string, which
//    allocates beyond 15 bytes; mutable_x()->assign() copies into the existing buffer instead.
#include <climits>
#include <cstring>
#include <string>
#include <type_traits>
#include <variant>

#include "kneeload/proto/codec.hpp"
#include "kneeload/v1/publish.pb.h"

namespace kneeload::proto {
namespace {

namespace pb = google::protobuf;
namespace v1 = kneeload::v1;

void assign(std::string* dst, std::string_view value) { dst->assign(value.data(), value.size()); }

// The fusion model's strings are literals; nullptr (no model id, no metric name) becomes "".
void assign(std::string* dst, const char* value) {
  if (value == nullptr) {
    dst->clear();
  } else {
    dst->assign(value, std::strlen(value));
  }
}

// The fusion enums share their numbers with the wire enums (publish.proto, ingest.proto); a
// value outside the enum maps to UNSPECIFIED rather than publishing an undefined number.
v1::Side to_wire(fusion::Side s) {
  switch (s) {
    case fusion::Side::kNone: return v1::SIDE_UNSPECIFIED;
    case fusion::Side::kLeft: return v1::SIDE_LEFT;
    case fusion::Side::kRight: return v1::SIDE_RIGHT;
  }
  return v1::SIDE_UNSPECIFIED;
}

v1::Severity to_wire(fusion::Severity s) {
  switch (s) {
    case fusion::Severity::kInfo: return v1::SEVERITY_INFO;
    case fusion::Severity::kWarn: return v1::SEVERITY_WARN;
    case fusion::Severity::kHigh: return v1::SEVERITY_HIGH;
  }
  return v1::SEVERITY_UNSPECIFIED;
}

v1::EventPhase to_wire(fusion::EventPhase p) {
  switch (p) {
    case fusion::EventPhase::kOnset: return v1::EVENT_PHASE_ONSET;
    case fusion::EventPhase::kClear: return v1::EVENT_PHASE_CLEAR;
  }
  return v1::EVENT_PHASE_UNSPECIFIED;
}

v1::EvidenceTag to_wire(fusion::EvidenceTag t) {
  switch (t) {
    case fusion::EvidenceTag::kProspective: return v1::EVIDENCE_TAG_PROSPECTIVE;
    case fusion::EvidenceTag::kLab: return v1::EVIDENCE_TAG_LAB;
    case fusion::EvidenceTag::kHeuristic: return v1::EVIDENCE_TAG_HEURISTIC;
  }
  return v1::EVIDENCE_TAG_UNSPECIFIED;
}

void fill_header(v1::Header* h, std::string_view station, std::string_view runner,
                 std::int64_t t_us, const PublishMeta& meta) {
  assign(h->mutable_station(), station);
  assign(h->mutable_runner(), runner);
  h->set_seq(meta.seq);
  h->set_t_us(t_us);
  h->set_published_unix_us(meta.published_unix_us);
  h->set_latency_us(meta.latency_us);
  h->set_age_us(meta.age_us);
}

// Returns the byte count, or 0 (nothing written) when buf is too small.
std::size_t serialize(const pb::MessageLite& msg, std::span<std::byte> buf) {
  // ByteSizeLong() caches every sub-message's size; the write below reuses them.
  const std::size_t n = msg.ByteSizeLong();
  if (n > buf.size() || n > static_cast<std::size_t>(INT_MAX)) return 0;
  msg.SerializeWithCachedSizesToArray(reinterpret_cast<std::uint8_t*>(buf.data()));
  return n;
}

void fill(v1::FusedState& m, const fusion::FusedState& s) {
  m.set_knee_angle_left_rad(s.knee_angle_rad[0]);
  m.set_knee_angle_right_rad(s.knee_angle_rad[1]);
  m.set_vgrf_left_bw(s.vgrf_bw[0]);
  m.set_vgrf_right_bw(s.vgrf_bw[1]);
  m.set_belt_speed_mps(s.belt_speed_mps);
  m.set_incline_fraction(s.incline_fraction);
  m.set_cadence_spm(s.cadence_spm);
  m.set_contact_left((s.contact_mask & 0x1u) != 0);
  m.set_contact_right((s.contact_mask & 0x2u) != 0);
}

void fill(v1::StepMetrics& m, const fusion::StepMetrics& s) {
  m.set_step_index(s.step_index);
  m.set_side(to_wire(s.side));
  m.set_ic_t_us(s.ic_t_us);
  m.set_to_t_us(s.to_t_us);
  m.set_contact_time_s(s.contact_time_s);
  m.set_flight_time_s(s.flight_time_s);
  m.set_cadence_spm(s.cadence_spm);
  m.set_step_length_m(s.step_length_m);
  m.set_peak_force_bw(s.peak_force_bw);
  m.set_strike_index_pct(s.strike_index_pct);
  m.set_knee_angle_ic_rad(s.knee_angle_ic_rad);
  m.set_knee_angle_peak_rad(s.knee_angle_peak_rad);
  m.set_peak_knee_moment_nm_per_kg(s.peak_knee_moment_nm_per_kg);
  m.set_peak_pfjrf_bw(s.peak_pfjrf_bw);
  m.set_peak_pfj_stress_mpa(s.peak_pfj_stress_mpa);
  m.set_stress_time_integral_mpa_s(s.stress_time_integral_mpa_s);
  m.set_itb_zone_time_s(s.itb_zone_time_s);
  m.set_valr_bw_per_s(s.valr_bw_per_s);
  m.set_vilr_bw_per_s(s.vilr_bw_per_s);
  m.set_pfjrf_impulse_bw_s(s.pfjrf_impulse_bw_s);
  m.set_cop_path_length_m(s.cop_path_length_m);
  m.set_cop_ml_excursion_m(s.cop_ml_excursion_m);
  m.set_pta_g(s.pta_g);
}

void fill(v1::RiskEvent& m, const fusion::RiskEvent& e, std::string_view device) {
  const fusion::RuleInfo& rule = fusion::rule_info(e.rule);
  m.set_rule_number(static_cast<std::uint32_t>(e.rule));
  assign(m.mutable_rule_code(), rule.code);
  assign(m.mutable_rule_name(), rule.name);
  m.set_severity(to_wire(e.severity));
  m.set_phase(to_wire(e.phase));
  m.set_side(to_wire(e.side));
  assign(m.mutable_device_id(), device);
  m.mutable_evidence()->Clear();
  const int count =
      e.evidence_count < fusion::kMaxEvidence ? e.evidence_count : fusion::kMaxEvidence;
  for (int i = 0; i < count; ++i) {
    const fusion::Evidence& ev = e.evidence[static_cast<std::size_t>(i)];
    v1::Evidence* out = m.add_evidence();
    assign(out->mutable_metric(), ev.metric);
    out->set_value(ev.value);
    out->set_baseline(ev.baseline);
    out->set_threshold(ev.threshold);
  }
  m.set_evidence_tag(to_wire(rule.evidence));
  assign(m.mutable_source(), rule.source);
  assign(m.mutable_advice(), rule.advice);
  assign(m.mutable_model_id(), e.model_id);
}

void fill(v1::SessionSummary& m, const fusion::SessionSummary& s) {
  m.set_start_t_us(s.start_t_us);
  m.set_end_t_us(s.end_t_us);
  m.set_steps(s.steps);
  m.set_distance_m(s.distance_m);
  m.set_duration_s(s.duration_s);
  m.set_stress_time_integral_mpa_s(s.stress_time_integral_mpa_s);
  m.set_damage_index(s.damage_index);
  m.set_risk_events(s.risk_events);
  m.set_ended_explicitly(s.ended_explicitly);
  m.set_damage_index_sensitivity(s.damage_index_sensitivity);
  m.set_pfjrf_impulse_bw_s(s.pfjrf_impulse_bw_s);
  m.set_acute_chronic_ratio(s.acute_chronic_ratio);
}

void fill_counts(pb::RepeatedPtrField<v1::Count>* dst, std::span<const NamedCount> counts) {
  dst->Clear();  // keeps the Count objects for Add() to reuse
  for (const NamedCount& c : counts) {
    v1::Count* out = dst->Add();
    assign(out->mutable_name(), c.name);
    out->set_value(c.value);
  }
}

}  // namespace

struct OutputEncoder::Impl {
  v1::FusedState state;
  v1::StepMetrics step;
  v1::RiskEvent risk;
  v1::SessionSummary session;
  v1::DaemonStatus status;
};

OutputEncoder::OutputEncoder() : impl_(std::make_unique<Impl>()) {}
OutputEncoder::~OutputEncoder() = default;

std::size_t OutputEncoder::encode(const fusion::Output& out, const OutputNames& names,
                                  const PublishMeta& meta, std::span<std::byte> buf) {
  Impl& m = *impl_;
  return std::visit(
      [&](const auto& body) -> std::size_t {
        using T = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<T, fusion::FusedState>) {
          fill_header(m.state.mutable_header(), names.station, names.runner, body.t_us, meta);
          fill(m.state, body);
          return serialize(m.state, buf);
        } else if constexpr (std::is_same_v<T, fusion::StepMetrics>) {
          // publish.proto: a step's header time is its toe-off.
          fill_header(m.step.mutable_header(), names.station, names.runner, body.to_t_us, meta);
          fill(m.step, body);
          return serialize(m.step, buf);
        } else if constexpr (std::is_same_v<T, fusion::RiskEvent>) {
          fill_header(m.risk.mutable_header(), names.station, names.runner, body.t_us, meta);
          fill(m.risk, body, names.device);
          return serialize(m.risk, buf);
        } else {
          static_assert(std::is_same_v<T, fusion::SessionSummary>, "new output type: encode it");
          // publish.proto: a summary's header time is the session end.
          fill_header(m.session.mutable_header(), names.station, names.runner, body.end_t_us, meta);
          fill(m.session, body);
          return serialize(m.session, buf);
        }
      },
      out.body);
}

std::size_t OutputEncoder::encode_status(const StatusReport& s, const PublishMeta& meta,
                                         std::span<std::byte> buf) {
  v1::DaemonStatus& m = impl_->status;
  // publish.proto: the status header has no station, runner or device time.
  fill_header(m.mutable_header(), {}, {}, 0, meta);
  assign(m.mutable_version(), s.version);
  m.set_uptime_s(s.uptime_s);
  m.set_frames_received(s.frames_received);
  m.set_frames_accepted(s.frames_accepted);
  m.set_samples_accepted(s.samples_accepted);
  m.set_outputs_published(s.outputs_published);
  fill_counts(m.mutable_rejected(), s.rejected);
  fill_counts(m.mutable_dropped(), s.dropped);
  m.set_active_devices(s.active_devices);
  m.set_stale_devices(s.stale_devices);
  m.set_config_generation(s.config_generation);
  m.set_draining(s.draining);
  return serialize(m, buf);
}

}  // namespace kneeload::proto
