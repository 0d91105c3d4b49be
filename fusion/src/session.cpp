// The simple RunnerSession: gait events and step metrics from insoles (MODEL.md §1), knee-sleeve
// angles, treadmill speed and distance, pain reports (R10), sensor dropouts (F1), decimated
// state and session summaries. The filters, the load model and rules R1..R9 (MODEL.md §2-§9)
// replace parts of it behind the same interface.
//
// Why the code looks the way it does:
// - No heap, no I/O, no clock: every output is built in a local Output and copied into the
//   caller's fixed-capacity buffer. Outputs are zero-filled before their fields are set, so
//   padding bytes are zero and a replay compares equal byte for byte, not just field by field.
// - Time is the sample's device clock. Devices' clocks are not aligned yet (issue 3), so any
//   quantity that mixes two devices (step time across the two insoles, idle end, state order)
//   assumes they share a clock.
// - Each foot's gait detector only trusts its own samples in time order: an insole sample that
//   is not newer than the previous one of that foot is ignored for gait.
#include "kneeload/fusion/session.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>

namespace kneeload::fusion {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kUsPerS = 1e6;

// Load-model id carried by events. This session computes no load model yet; the next issue
// names its contact-area table and damage exponent here.
constexpr const char* kModelId = "simple-v1";

int foot_index(Side side) {
  switch (side) {
    case Side::kLeft:
      return 0;
    case Side::kRight:
      return 1;
    case Side::kNone:
      break;
  }
  return -1;
}

double seconds(std::int64_t dt_us) { return static_cast<double>(dt_us) / kUsPerS; }

// Linear sub-sample interpolation (MODEL.md §1): the time at which the straight line from
// (t0, f0) to (t1, f1) crosses `level`, rounded to the microsecond and kept within [t0, t1].
std::int64_t crossing_t_us(std::int64_t t0, double f0, std::int64_t t1, double f1, double level) {
  double frac = (f1 == f0) ? 1.0 : (level - f0) / (f1 - f0);
  frac = std::clamp(frac, 0.0, 1.0);
  return t0 + std::llround(frac * static_cast<double>(t1 - t0));
}

// A zero-filled Output carrying a value-initialised (hence zero-padded) body of type T.
template <class T>
T& begin_output(Output& o, const SessionConfig& config, const Sample* cause) {
  std::memset(static_cast<void*>(&o), 0, sizeof o);
  o.runner = config.runner;
  o.station = config.station;
  o.source_arrival_t_us = cause != nullptr ? cause->arrival_t_us : 0;
  return o.body.emplace<T>();
}

}  // namespace

RunnerSession::RunnerSession(const SessionConfig& config) : config_(config) {}

double RunnerSession::body_weight_n() const {
  return config_.runner_params.body_mass_kg * kGravityMps2;
}

void RunnerSession::reconfigure(const SessionConfig& config) {
  const bool rate_changed = config.model.state_rate_hz != config_.model.state_rate_hz;
  config_ = config;
  if (rate_changed && last_state_t_us_ != kNoTime) {
    state_origin_t_us_ = last_state_t_us_;
    state_k_ = 1;
    next_state_t_us_ = state_due_t_us(state_k_);
  }
}

void RunnerSession::on_sample(const Sample& s, SessionOutputs& out) {
  assert(s.runner == config_.runner);
  ++counters_.samples;
  last_t_us_ = std::max(last_t_us_, s.device_t_us);

  // Idle end first, so that a summary precedes the outputs of the sample that reveals it.
  maybe_end_idle(s, out);

  if (const auto* in = std::get_if<InsoleSample>(&s.payload)) {
    on_insole(s, *in, out);
  } else if (const auto* k = std::get_if<KneeSample>(&s.payload)) {
    on_knee(s, *k);
  } else if (const auto* t = std::get_if<TreadmillSample>(&s.payload)) {
    on_treadmill(s, *t);
  } else if (const auto* p = std::get_if<PainReport>(&s.payload)) {
    on_pain(s, *p, out);
  } else if (std::holds_alternative<SessionEnd>(s.payload)) {
    if (session_open_) close_session(&s, true, out);
  }
  // DeviceStatus: battery and error flags feed sensor-fault rules in the next issue.

  maybe_emit_state(s, out);
}

// MODEL.md §1: F = g_cal·Σ pᵢAᵢ; IC and TO are crossings of thr = max(40 N, 5 % BW) with
// hysteresis, a refractory window between ICs of one foot and linear sub-sample interpolation.
// IC needs a true rising crossing (previous sample below thr), so a foot first seen in stance,
// or a contact refused by the refractory window, waits for the next one. TO is interpolated at
// the level that ends the contact, hysteresis·thr.
void RunnerSession::on_insole(const Sample& s, const InsoleSample& in, SessionOutputs& out) {
  const int i = foot_index(s.side);
  if (i < 0) return;
  FootState& foot = feet_[static_cast<std::size_t>(i)];
  const InsoleGeometry& geo = config_.insoles[static_cast<std::size_t>(i)];

  const int cells = std::min({static_cast<int>(in.cell_count), geo.cell_count, kMaxInsoleCells});
  double sum_pa = 0.0;
  double sum_pax = 0.0;
  for (int c = 0; c < cells; ++c) {
    const auto ci = static_cast<std::size_t>(c);
    const double pa = static_cast<double>(in.pressure_pa[c]) * geo.area_m2[ci];
    sum_pa += pa;
    sum_pax += pa * geo.x_norm[ci];
  }
  const double force_n = geo.force_gain * sum_pa;
  if (!std::isfinite(force_n)) return;
  if (foot.last_t_us != kNoTime && s.device_t_us <= foot.last_t_us) return;

  const std::int64_t prev_t = foot.last_t_us;
  const double prev_f = foot.force_n;
  const bool have_prev = prev_t != kNoTime && std::isfinite(prev_f);
  foot.last_force_n = have_prev ? prev_f : 0.0;
  foot.force_n = force_n;
  foot.last_t_us = s.device_t_us;

  const double thr = std::max(config_.model.contact_threshold_n,
                              config_.model.contact_threshold_bw * body_weight_n());
  if (!foot.in_contact) {
    if (!have_prev || !(prev_f < thr) || !(force_n >= thr)) return;
    const std::int64_t ic = crossing_t_us(prev_t, prev_f, s.device_t_us, force_n, thr);
    const auto refractory_us = std::llround(config_.model.refractory_s * kUsPerS);
    if (foot.last_ic_t_us != kNoTime && ic - foot.last_ic_t_us < refractory_us) return;
    const double x_cop = sum_pa > 0.0 ? sum_pax / sum_pa : kNaN;
    start_contact(i, ic, force_n, x_cop);
    return;
  }
  foot.peak_force_n = std::max(foot.peak_force_n, force_n);
  const double off = config_.model.contact_hysteresis * thr;
  if (force_n < off) {
    end_contact(s, i, crossing_t_us(prev_t, prev_f, s.device_t_us, force_n, off), out);
  }
}

// Step time and flight time are fixed at IC, and only when the previous IC of any foot was the
// other foot's. So the step time is "this IC − the previous IC of any foot" (MODEL.md §1)
// whenever the feet alternate, and NaN, rather than a stride time read as a step time, when the
// other insole is silent or missed a contact. A contact still in progress on the other foot
// (walking, double support) gives a NaN flight time; a negative one means contacts less than a
// sample apart, or two insole clocks that disagree.
void RunnerSession::start_contact(int i, std::int64_t ic_t_us, double force_n, double x_cop) {
  FootState& foot = feet_[static_cast<std::size_t>(i)];
  const FootState& other = feet_[static_cast<std::size_t>(1 - i)];
  // The previous IC of any foot, provided it was the other foot's.
  const bool other_was_last =
      last_any_ic_t_us_ != kNoTime && other.last_ic_t_us == last_any_ic_t_us_;
  foot.step_time_s = kNaN;
  if (other_was_last && ic_t_us > last_any_ic_t_us_) {
    foot.step_time_s = seconds(ic_t_us - last_any_ic_t_us_);
    cadence_spm_ = 60.0 / foot.step_time_s;
  }
  foot.flight_time_s = kNaN;
  if (other_was_last && !other.in_contact && other.last_to_t_us != kNoTime &&
      other.last_to_t_us > other.last_ic_t_us) {
    foot.flight_time_s = seconds(ic_t_us - other.last_to_t_us);
  }

  foot.in_contact = true;
  foot.ic_t_us = ic_t_us;
  foot.last_ic_t_us = ic_t_us;
  last_any_ic_t_us_ = ic_t_us;
  foot.peak_force_n = force_n;
  foot.strike_index_pct = 100.0 * x_cop;  // MODEL.md §1: x_norm is already per foot length
  foot.knee_ic_rad = knee_angle_at(i, ic_t_us);
  foot.knee_peak_rad = foot.knee_ic_rad;
  // Before the first step, belt travel counts from the first IC (see on_treadmill).
  if (!session_open_) pending_distance_m_ = 0.0;
}

void RunnerSession::end_contact(const Sample& s, int i, std::int64_t to_t_us,
                                SessionOutputs& out) {
  FootState& foot = feet_[static_cast<std::size_t>(i)];
  foot.in_contact = false;
  foot.last_to_t_us = to_t_us;

  if (!session_open_) {
    session_open_ = true;
    session_start_t_us_ = foot.ic_t_us;
    session_steps_ = 0;
    session_distance_m_ = 0.0;
    session_events_ = 0;
  }
  session_distance_m_ += pending_distance_m_;
  pending_distance_m_ = 0.0;
  ++session_steps_;
  last_step_t_us_ = to_t_us;

  const double bw = body_weight_n();
  Output o;
  StepMetrics& m = begin_output<StepMetrics>(o, config_, &s);
  m.ic_t_us = foot.ic_t_us;
  m.to_t_us = to_t_us;
  m.step_index = counters_.steps++;
  m.side = s.side;
  m.contact_time_s = static_cast<float>(seconds(to_t_us - foot.ic_t_us));
  m.flight_time_s = static_cast<float>(foot.flight_time_s);
  m.cadence_spm = static_cast<float>(60.0 / foot.step_time_s);
  m.step_length_m = static_cast<float>(belt_speed_mps_ * foot.step_time_s);
  m.peak_force_bw = static_cast<float>(foot.peak_force_n / bw);
  m.strike_index_pct = static_cast<float>(foot.strike_index_pct);
  m.knee_angle_ic_rad = static_cast<float>(foot.knee_ic_rad);
  m.knee_angle_peak_rad = static_cast<float>(foot.knee_peak_rad);
  // Load model, ITB zone and loading rates: MODEL.md §3-§5 and §1, next issue.
  m.peak_knee_moment_nm_per_kg = static_cast<float>(kNaN);
  m.peak_pfjrf_bw = static_cast<float>(kNaN);
  m.peak_pfj_stress_mpa = static_cast<float>(kNaN);
  m.stress_time_integral_mpa_s = static_cast<float>(kNaN);
  m.itb_zone_time_s = static_cast<float>(kNaN);
  m.valr_bw_per_s = static_cast<float>(kNaN);
  m.vilr_bw_per_s = static_cast<float>(kNaN);
  emit(o, out);
}

// Knee sleeves report flexion directly. Thigh/shank IMU pairs need the gyro-driven knee Kalman
// filter of MODEL.md §2 and §9 (next issue); until then their side's angle stays NaN.
void RunnerSession::on_knee(const Sample& s, const KneeSample& k) {
  const int i = foot_index(s.side);
  if (i < 0 || !k.has_angle) return;
  const auto si = static_cast<std::size_t>(i);
  KneeTrack& track = knee_track_[si];
  if (track.t_us != kNoTime && s.device_t_us <= track.t_us) return;
  const double angle = static_cast<double>(k.knee_angle_rad);
  if (!std::isfinite(angle)) return;
  track.prev_t_us = track.t_us;
  track.prev_angle_rad = knee_angle_rad_[si];
  track.t_us = s.device_t_us;
  knee_angle_rad_[si] = angle;
  FootState& foot = feet_[si];
  if (foot.in_contact) foot.knee_peak_rad = std::fmax(foot.knee_peak_rad, angle);
}

// The sleeve angle at an IC: linear between the two latest sleeve samples when the IC falls
// between them, else the nearer of the two (no extrapolation). NaN without a sleeve.
double RunnerSession::knee_angle_at(int i, std::int64_t t_us) const {
  const auto si = static_cast<std::size_t>(i);
  const KneeTrack& track = knee_track_[si];
  const double now = knee_angle_rad_[si];
  if (track.t_us == kNoTime) return kNaN;
  if (t_us >= track.t_us || track.prev_t_us == kNoTime || !std::isfinite(track.prev_angle_rad)) {
    return now;
  }
  if (t_us <= track.prev_t_us) return track.prev_angle_rad;
  const double frac = static_cast<double>(t_us - track.prev_t_us) /
                      static_cast<double>(track.t_us - track.prev_t_us);
  return track.prev_angle_rad + frac * (now - track.prev_angle_rad);
}

// Distance: left rectangle rule on the treadmill's own sample intervals, i.e. each reported
// speed is held until the next report (exact for a belt that reports every speed change). The
// travel is committed to the session at each step, so the summary's distance covers the same
// span as its duration (first IC .. last step's TO, to within one treadmill interval at each
// end); belt travel after the last step is dropped when the session closes. A speed unknown
// since a treadmill dropout (NaN) adds nothing.
void RunnerSession::on_treadmill(const Sample& s, const TreadmillSample& t) {
  if (last_treadmill_t_us_ != kNoTime) {
    if (s.device_t_us <= last_treadmill_t_us_) return;
    if (std::isfinite(belt_speed_mps_)) {
      pending_distance_m_ += belt_speed_mps_ * seconds(s.device_t_us - last_treadmill_t_us_);
    }
  }
  last_treadmill_t_us_ = s.device_t_us;
  belt_speed_mps_ = static_cast<double>(t.belt_speed_mps);
  incline_fraction_ = static_cast<double>(t.incline_fraction);
}

// MODEL.md §9 R10: knee pain ≥ pain_high_score → high. One onset while active; the first report
// below the threshold clears it. Persistence across sessions ("see a clinician") is next issue.
void RunnerSession::on_pain(const Sample& s, const PainReport& p, SessionOutputs& out) {
  const bool high = p.score >= config_.model.pain_high_score;
  if (high == pain_active_) return;
  pain_active_ = high;
  Output o;
  RiskEvent& e = begin_output<RiskEvent>(o, config_, &s);
  e.t_us = s.device_t_us;
  e.rule = RuleId::kPainReport;
  e.severity = Severity::kHigh;
  e.phase = high ? EventPhase::kOnset : EventPhase::kClear;
  e.side = p.side;
  e.device = UINT32_MAX;
  e.evidence_count = 1;
  // Field by field: a temporary Evidence would bring its indeterminate padding along.
  e.evidence[0].metric = "pain_score";
  e.evidence[0].value = static_cast<float>(p.score);
  e.evidence[0].baseline = static_cast<float>(kNaN);
  e.evidence[0].threshold = static_cast<float>(config_.model.pain_high_score);
  e.model_id = kModelId;
  emit(o, out);
}

// F1. The session does not know how long the device has been silent (the caller's stale timer
// does), so the event carries no evidence rather than a guess. A silent device's last values
// are withdrawn: its side's force or angle, or the belt speed, read NaN until it reports again,
// and a stance in progress on a silent insole is abandoned instead of ending in a step whose
// toe-off is interpolated across the gap.
void RunnerSession::on_device_stale(std::uint32_t device, Side side, SensorKind kind, bool stale,
                                    SessionOutputs& out) {
  if (stale) {
    const int i = foot_index(side);
    if (kind == SensorKind::kInsole && i >= 0) {
      FootState& foot = feet_[static_cast<std::size_t>(i)];
      foot.in_contact = false;
      foot.force_n = kNaN;
    } else if (kind == SensorKind::kKnee && i >= 0) {
      knee_angle_rad_[static_cast<std::size_t>(i)] = kNaN;
      knee_track_[static_cast<std::size_t>(i)] = KneeTrack{};
    } else if (kind == SensorKind::kTreadmill) {
      belt_speed_mps_ = kNaN;
      incline_fraction_ = kNaN;
    }
  }
  Output o;
  RiskEvent& e = begin_output<RiskEvent>(o, config_, nullptr);
  e.t_us = last_t_us_ == kNoTime ? 0 : last_t_us_;
  e.rule = RuleId::kSensorDropout;
  e.severity = Severity::kWarn;
  e.phase = stale ? EventPhase::kOnset : EventPhase::kClear;
  e.side = side;
  e.device = device;
  e.evidence_count = 0;
  e.model_id = kModelId;
  emit(o, out);
}

void RunnerSession::finish(SessionOutputs& out) {
  if (session_open_) close_session(nullptr, false, out);
}

void RunnerSession::maybe_end_idle(const Sample& s, SessionOutputs& out) {
  if (!session_open_) return;
  const auto idle_us = std::llround(config_.model.session_idle_end_s * kUsPerS);
  if (s.device_t_us - last_step_t_us_ > idle_us) close_session(&s, false, out);
}

// The summary spans first IC .. last step's TO for every kind of end (explicit, idle,
// shutdown), so duration and distance describe the running, not the idle wait. A stance in
// progress is abandoned: its toe-off would otherwise open a new session with a partial step.
// risk_events counts event onsets (any rule, faults included) while the session was open.
void RunnerSession::close_session(const Sample* cause, bool explicit_end, SessionOutputs& out) {
  assert(session_open_);
  Output o;
  SessionSummary& sum = begin_output<SessionSummary>(o, config_, cause);
  sum.start_t_us = session_start_t_us_;
  sum.end_t_us = last_step_t_us_;
  sum.steps = session_steps_;
  sum.distance_m = static_cast<float>(session_distance_m_);
  sum.duration_s = static_cast<float>(seconds(last_step_t_us_ - session_start_t_us_));
  sum.stress_time_integral_mpa_s = static_cast<float>(kNaN);  // MODEL.md §4, next issue
  sum.damage_index = static_cast<float>(kNaN);
  sum.risk_events = session_events_;
  sum.ended_explicitly = explicit_end;

  session_open_ = false;
  session_steps_ = 0;
  session_distance_m_ = 0.0;
  pending_distance_m_ = 0.0;
  session_events_ = 0;
  for (FootState& foot : feet_) {
    foot.in_contact = false;
    foot.last_ic_t_us = kNoTime;
    foot.last_to_t_us = kNoTime;
  }
  last_any_ic_t_us_ = kNoTime;
  cadence_spm_ = kNaN;
  emit(o, out);
}

std::int64_t RunnerSession::state_due_t_us(std::int64_t k) const {
  const double period_us = kUsPerS / config_.model.state_rate_hz;
  return state_origin_t_us_ + std::llround(static_cast<double>(k) * period_us);
}

// FusedState on a grid of state_rate_hz anchored at the first state: a sample at or past the
// next due time emits one state stamped with its own time, and the grid skips the slots it
// passed. State times strictly increase; a sample older than the last state emits nothing and
// is counted (unaligned device clocks, until the next issue).
void RunnerSession::maybe_emit_state(const Sample& s, SessionOutputs& out) {
  const double rate = config_.model.state_rate_hz;
  if (!(rate > 0.0) || !std::isfinite(rate)) return;
  const std::int64_t t = s.device_t_us;
  if (last_state_t_us_ != kNoTime) {
    if (t < last_state_t_us_) {
      ++counters_.state_out_of_order;
      return;
    }
    if (t < next_state_t_us_) return;
    const double period_us = kUsPerS / rate;
    state_k_ = static_cast<std::int64_t>(static_cast<double>(t - state_origin_t_us_) / period_us);
    while (state_k_ > 1 && state_due_t_us(state_k_ - 1) > t) --state_k_;
    while (state_due_t_us(state_k_) <= t) ++state_k_;
  } else {
    state_origin_t_us_ = t;
    state_k_ = 1;
  }
  last_state_t_us_ = t;
  next_state_t_us_ = state_due_t_us(state_k_);

  const double bw = body_weight_n();
  Output o;
  FusedState& st = begin_output<FusedState>(o, config_, &s);
  st.t_us = t;
  std::uint8_t mask = 0;
  for (std::size_t i = 0; i < 2; ++i) {
    st.knee_angle_rad[i] = static_cast<float>(knee_angle_rad_[i]);
    st.vgrf_bw[i] = static_cast<float>(feet_[i].force_n / bw);
    if (feet_[i].in_contact) mask = static_cast<std::uint8_t>(mask | (1u << i));
  }
  st.belt_speed_mps = static_cast<float>(belt_speed_mps_);
  st.incline_fraction = static_cast<float>(incline_fraction_);
  st.cadence_spm = static_cast<float>(cadence_spm_);
  st.contact_mask = mask;
  emit(o, out);
}

void RunnerSession::emit(const Output& o, SessionOutputs& out) {
  if (const auto* e = std::get_if<RiskEvent>(&o.body)) {
    ++counters_.risk_events;
    if (session_open_ && e->phase == EventPhase::kOnset) ++session_events_;
  }
  if (!out.push(o)) ++counters_.output_overflow;
}

}  // namespace kneeload::fusion
