// MODEL.md §9 risk rules R1..R10 and the sensor-fault rules F1..F4; see the header for the
// contract and the shared onset/clear semantics.
//
// Why the code looks the way it does:
// - One state machine (step) serves every rule; a rule is only a function from inputs to a
//   Finding (On / Hold / Off / Unknown, severity, evidence). Adding a rule is adding a function
//   and a slot, not another timer.
// - Rules compare rolling 2-min medians, never single steps: one misdetected step must not
//   start or break a two-minute persistence count.
// - Unknown is not Off. A rule whose inputs are missing (no baseline yet, a NaN history hook, a
//   speed change for R7) neither fires nor clears; MODEL.md wants silence, not guesses.
// - Evidence keeps literal metric names with their unit, so the publisher copies nothing.
#include "kneeload/fusion/risk_rules.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>
#include <cstring>
#include <numbers>

namespace kneeload::fusion {

const std::array<double GaitMetrics::*, kGaitMetricCount> kGaitMetricFields{
    &GaitMetrics::contact_time_s,
    &GaitMetrics::step_time_s,
    &GaitMetrics::cadence_spm,
    &GaitMetrics::peak_force_bw,
    &GaitMetrics::impact_peak_bw,
    &GaitMetrics::valr_bw_per_s,
    &GaitMetrics::pta_g,
    &GaitMetrics::knee_angle_ic_rad,
    &GaitMetrics::knee_angle_peak_rad,
    &GaitMetrics::pfj_stress_peak_mpa,
    &GaitMetrics::stress_time_integral_per_km_mpa_s,
    &GaitMetrics::itb_zone_time_s,
    &GaitMetrics::cop_y_m,
    &GaitMetrics::midfoot_peak_pressure_pa,
};

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kDegPerRad = 180.0 / std::numbers::pi;

bool known(double x) { return std::isfinite(x); }

std::int64_t micros(double s) { return std::llround(s * 1e6); }

// Mean of the finite ones among a and b; NaN if neither.
double mean_known(double a, double b) {
  if (known(a) && known(b)) return 0.5 * (a + b);
  if (known(a)) return a;
  if (known(b)) return b;
  return kNaN;
}

// Relative change v/base − 1; NaN unless both are finite and base > 0.
double rel_change(double v, double base) {
  if (!known(v) || !known(base) || base <= 0.0) return kNaN;
  return v / base - 1.0;
}

// Slot layout (RiskRules::slots_): per-side rules take [left, right]; R10 takes [none, left,
// right]; F1 and F4 one per device slot; F2 and F3 one per insole.
constexpr int kSlotR1 = 0;
constexpr int kSlotR2 = 2;
constexpr int kSlotR3 = 3;
constexpr int kSlotR4 = 5;
constexpr int kSlotR5 = 6;
constexpr int kSlotR6 = 7;
constexpr int kSlotR7 = 9;
constexpr int kSlotR8 = 10;
constexpr int kSlotR9Km = 11;
constexpr int kSlotR9Drift = 12;
constexpr int kSlotR10 = 14;
constexpr int kSlotF1 = 17;
constexpr int kSlotF4 = 23;
constexpr int kSlotF2 = 29;
constexpr int kSlotF3 = 31;
constexpr int kSlotEndOfRules = 17;  // R1..R10 occupy [0, 17)

// F1/F4 device slot: insole L, insole R, knee L, knee R, treadmill, console. An unsided insole or
// knee takes the left slot, as role_of() does.
int device_slot(SensorKind kind, Side side) {
  const int right = side == Side::kRight ? 1 : 0;
  switch (kind) {
    case SensorKind::kInsole:
      return right;
    case SensorKind::kKnee:
      return 2 + right;
    case SensorKind::kTreadmill:
      return 4;
    case SensorKind::kConsole:
      return 5;
  }
  return 5;
}

Side device_slot_side(int d) {
  if (d == 0 || d == 2) return Side::kLeft;
  if (d == 1 || d == 3) return Side::kRight;
  return Side::kNone;
}

// On/Hold/Off accumulated over the parts of a rule that could be evaluated.
struct Tally {
  bool any = false;
  bool on = false;
  bool hold = false;
  void add(bool part_on, bool part_hold) {
    any = true;
    on = on || part_on;
    hold = hold || part_hold || part_on;
  }
};

}  // namespace

double symmetry_index_pct(double left, double right) {
  if (!known(left) || !known(right) || !(left + right > 0.0)) return kNaN;
  return 100.0 * std::fabs(left - right) / (0.5 * (left + right));
}

// ---- GaitTrends ---------------------------------------------------------------------------------

namespace {

// A half holds magnitudes up to 65504, so the rolling window keeps pressures (up to 500 kPa, a
// saturated cell) in units of 1024 Pa; every other metric fits in its own unit. Powers of two
// keep the scaling exact.
constexpr std::array<double, kGaitMetricCount> kHalfUnit{1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
                                                         1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1024.0};

bool half_known(std::uint16_t h) { return (h & 0x7c00u) != 0x7c00u; }  // not NaN, not ±∞

}  // namespace

GaitTrends::SideState::SideState(const GaitTrendParams& p)
    : rolling(std::max(1, p.rolling_capacity_steps),
              std::max<std::int64_t>(1, micros(p.rolling_window_s))),
      sorted(kGaitMetricCount, std::max(1, p.rolling_capacity_steps)) {}

void GaitTrends::SideState::unsort(int k) {
  const HalfMetrics& h = rolling.value_at(k);
  for (std::size_t f = 0; f < h.size(); ++f) {
    if (half_known(h[f])) sorted.erase(static_cast<int>(f), h[f]);
  }
}

void GaitTrends::SideState::evict_before(std::int64_t cut_t_us) {
  int k = 0;
  for (; k < rolling.size() && rolling.t_us_at(k) <= cut_t_us; ++k) unsort(k);
  rolling.evict_before(cut_t_us);
  assert(k == 0 || rolling.empty() || rolling.t_us_at(0) > cut_t_us);
}

GaitTrends::GaitTrends(const GaitTrendParams& params)
    : params_(params),
      sides_{SideState(params), SideState(params)} {}

void GaitTrends::start_session(std::int64_t t0_us) {
  t0_us_ = t0_us;
  started_ = true;
  baseline_frozen_ = false;
  baseline_ready_ = false;
  for (SideState& s : sides_) {
    s.rolling.clear();
    s.sorted.clear();
    for (StreamingMedian& m : s.baseline_medians) m.clear();
    s.baseline_count = 0;
    s.baseline = GaitMetrics{};
    s.cop_sum = 0.0;
    s.cop_count = 0;
  }
  baseline_speed_.clear();
  baseline_incline_.clear();
  baseline_speed_mps_ = kNaN;
  baseline_incline_fraction_ = kNaN;
}

bool GaitTrends::set_params(const GaitTrendParams& params, std::int64_t now_us) {
  if (params.rolling_capacity_steps == params_.rolling_capacity_steps &&
      params.baseline_capacity_steps == params_.baseline_capacity_steps) {
    params_ = params;
    const std::int64_t span_us = std::max<std::int64_t>(1, micros(params.rolling_window_s));
    for (SideState& s : sides_) s.rolling.set_span_us(span_us);
    return true;
  }
  const bool started = started_;
  *this = GaitTrends(params);
  if (started) start_session(now_us);
  return false;
}

void GaitTrends::add_step(Side side, std::int64_t t_us, const GaitMetrics& m, double belt_speed_mps,
                          double incline_fraction) {
  const int i = side_index(side);
  if (i < 0) return;
  if (!started_) start_session(t_us);
  SideState& s = sides_[static_cast<std::size_t>(i)];
  HalfMetrics h;
  for (std::size_t f = 0; f < kGaitMetricFields.size(); ++f) {
    h[f] = half_from_double(m.*kGaitMetricFields[f] / kHalfUnit[f]);
  }
  if (!s.rolling.empty() && t_us < s.rolling.t_us_at(s.rolling.size() - 1)) return;  // out of order
  // What push() would evict, and the oldest entry it would overwrite when full, leave `sorted`
  // first.
  s.evict_before(t_us - s.rolling.span_us());
  if (s.rolling.size() == s.rolling.capacity()) s.unsort(0);
  const bool pushed = s.rolling.push(t_us, h);
  assert(pushed);
  (void)pushed;
  for (std::size_t f = 0; f < h.size(); ++f) {
    if (half_known(h[f])) s.sorted.insert(static_cast<int>(f), h[f]);
  }
  if (known(m.cop_y_m)) {
    s.cop_sum += m.cop_y_m;
    ++s.cop_count;
  }
  const std::int64_t dt = t_us - t0_us_;
  if (baseline_frozen_) return;
  if (dt >= micros(params_.baseline_end_s)) {
    freeze_baseline();
    return;
  }
  if (dt >= micros(params_.baseline_start_s) &&
      s.baseline_count < std::max(1, params_.baseline_capacity_steps)) {
    ++s.baseline_count;
    for (std::size_t f = 0; f < kGaitMetricFields.size(); ++f) {
      const double v = m.*kGaitMetricFields[f];
      if (known(v)) s.baseline_medians[f].add(v);
    }
    baseline_speed_.add(belt_speed_mps);
    baseline_incline_.add(incline_fraction);
  }
}

// MODEL.md §6: the baseline is the median of minutes 3-8, per metric, over the finite values.
void GaitTrends::freeze_baseline() {
  baseline_frozen_ = true;
  baseline_ready_ = false;
  for (SideState& s : sides_) {
    s.baseline = GaitMetrics{};
    if (s.baseline_count < params_.baseline_min_steps) continue;
    baseline_ready_ = true;
    for (std::size_t f = 0; f < kGaitMetricFields.size(); ++f) {
      s.baseline.*kGaitMetricFields[f] = s.baseline_medians[f].median();
    }
  }
  baseline_speed_mps_ = baseline_speed_.median();
  baseline_incline_fraction_ = baseline_incline_.median();
}

void GaitTrends::fill(std::int64_t t_us, RuleInputs& in) {
  if (started_ && !baseline_frozen_ && t_us - t0_us_ >= micros(params_.baseline_end_s)) {
    freeze_baseline();
  }
  for (std::size_t i = 0; i < 2; ++i) {
    SideState& s = sides_[i];
    s.evict_before(t_us - s.rolling.span_us());
    in.rolling_steps[i] = s.rolling.size();
    for (std::size_t f = 0; f < kGaitMetricFields.size(); ++f) {
      in.rolling[i].*kGaitMetricFields[f] = s.sorted.median(static_cast<int>(f)) * kHalfUnit[f];
    }
    in.baseline[i] = s.baseline;
    in.session_cop_y_steps[i] = s.cop_count;
    in.session_cop_y_m[i] = s.cop_count > 0 ? s.cop_sum / s.cop_count : kNaN;
  }
  in.baseline_ready = baseline_ready_;
  in.baseline_speed_mps = baseline_speed_mps_;
  in.baseline_incline_fraction = baseline_incline_fraction_;
}

// ---- RiskRules: the state machine ---------------------------------------------------------------

void RiskRules::Finding::add(const char* metric, double value, double baseline, double threshold) {
  if (evidence_count >= kFindingEvidence || !known(value)) return;
  Evidence& e = evidence[evidence_count++];
  e.metric = metric;
  e.value = static_cast<float>(value);
  e.baseline = static_cast<float>(baseline);
  e.threshold = static_cast<float>(threshold);
}

RiskRules::RiskRules(const RiskRuleParams& params, const char* model_id)
    : params_(params), model_id_(model_id) {
  assert(model_id != nullptr);
  auto init = [this](int index, RuleId rule, Side side) {
    Slot& s = slot(index);
    s.rule = rule;
    s.side = side;
  };
  for (int i = 0; i < 2; ++i) {
    const Side side = i == 0 ? Side::kLeft : Side::kRight;
    init(kSlotR1 + i, RuleId::kPfjOverload, side);
    init(kSlotR3 + i, RuleId::kImpact, side);
    init(kSlotR6 + i, RuleId::kItbsPattern, side);
    init(kSlotR9Drift + i, RuleId::kShoes, side);
    init(kSlotR10 + 1 + i, RuleId::kPainReport, side);
    init(kSlotF2 + i, RuleId::kSensorSaturation, side);
    init(kSlotF3 + i, RuleId::kStuckCell, side);
  }
  init(kSlotR2, RuleId::kLowCadence, Side::kNone);
  init(kSlotR4, RuleId::kSessionSpike, Side::kNone);
  init(kSlotR5, RuleId::kWeeklyJump, Side::kNone);
  init(kSlotR7, RuleId::kFatigueDrift, Side::kNone);
  init(kSlotR8, RuleId::kAsymmetry, Side::kNone);
  init(kSlotR9Km, RuleId::kShoes, Side::kNone);
  init(kSlotR10, RuleId::kPainReport, Side::kNone);
  for (int d = 0; d < kDeviceSlots; ++d) {
    init(kSlotF1 + d, RuleId::kSensorDropout, device_slot_side(d));
    init(kSlotF4 + d, RuleId::kClockJump, device_slot_side(d));
  }
  last_clock_jump_t_us_.fill(kNever);
}

RiskRules::Slot& RiskRules::fault_slot(RuleId rule, SensorKind kind, Side side,
                                       std::uint32_t device) {
  const int d = device_slot(kind, side);
  Slot& s = slot((rule == RuleId::kClockJump ? kSlotF4 : kSlotF1) + d);
  s.device = device;
  return s;
}

bool RiskRules::active(RuleId rule, Side side) const {
  return std::any_of(slots_.begin(), slots_.end(), [&](const Slot& s) {
    return s.rule == rule && s.side == side && s.phase == Phase::kActive;
  });
}

bool RiskRules::fault_active(RuleId rule, std::uint32_t device) const {
  return std::any_of(slots_.begin(), slots_.end(), [&](const Slot& s) {
    return s.rule == rule && s.device == device && s.phase == Phase::kActive;
  });
}

void RiskRules::emit(const Slot& slot, std::int64_t t_us, EventPhase phase,
                     RiskEventBuffer& out) const {
  RiskEvent e;
  std::memset(static_cast<void*>(&e), 0, sizeof e);  // zero padding: byte-identical replays
  e.t_us = t_us;
  e.rule = slot.rule;
  e.severity = slot.severity;
  e.phase = phase;
  e.side = slot.side;
  e.device = slot.device;
  e.evidence_count = slot.evidence_count;
  for (std::size_t k = 0; k < slot.evidence_count; ++k) {
    e.evidence[k].metric = slot.evidence[k].metric;
    e.evidence[k].value = slot.evidence[k].value;
    e.evidence[k].baseline = slot.evidence[k].baseline;
    e.evidence[k].threshold = slot.evidence[k].threshold;
  }
  e.model_id = model_id_;
  out.push(e);
}

// Onset after persist_s of continuous On, clear after clear_hold_s of continuous Off, then
// cooldown (see the header). Evidence is refreshed at every known verdict while active, so a
// clear (or end_session's) carries the latest values; an Off finding without evidence keeps the
// onset's.
void RiskRules::step(Slot& s, std::int64_t t_us, const Finding& f, const RuleTiming& timing,
                     RiskEventBuffer& out) {
  // Whether the evaluations were too far apart, computed only where it decides something
  // (micros() is a libm call, and most calls return before).
  const std::int64_t last_eval_t_us = s.last_eval_t_us;
  auto gap = [&] {
    return last_eval_t_us != kNever && t_us - last_eval_t_us > micros(params_.max_gap_s);
  };
  s.last_eval_t_us = t_us;
  // The slot keeps kMaxEvidence entries: the metrics it already shows (the onset's), with the
  // finding's current values, then the finding's others in its order.
  auto take_evidence = [&s, &f] {
    if (f.evidence_count == 0) return;
    std::array<Evidence, kMaxEvidence> next{};
    std::array<bool, kFindingEvidence> used{};
    std::size_t n = 0;
    for (std::size_t k = 0; k < s.evidence_count; ++k) {
      for (std::size_t j = 0; j < f.evidence_count; ++j) {
        if (!used[j] && std::strcmp(f.evidence[j].metric, s.evidence[k].metric) == 0) {
          used[j] = true;
          next[n++] = f.evidence[j];
          break;
        }
      }
    }
    for (std::size_t j = 0; j < f.evidence_count && n < next.size(); ++j) {
      if (!used[j]) next[n++] = f.evidence[j];
    }
    s.evidence_count = static_cast<std::uint8_t>(n);
    s.evidence = next;
  };

  if (s.phase == Phase::kCooldown) {
    if (t_us < s.until_t_us) return;
    s.phase = Phase::kIdle;
  }
  if (s.phase == Phase::kPending && (f.verdict != Verdict::kOn || gap())) s.phase = Phase::kIdle;

  switch (s.phase) {
    case Phase::kIdle:
      if (f.verdict != Verdict::kOn) return;
      s.phase = Phase::kPending;
      s.since_t_us = t_us;
      [[fallthrough]];
    case Phase::kPending:
      if (t_us - s.since_t_us < micros(timing.persist_s)) return;
      s.phase = Phase::kActive;
      s.severity = f.severity;
      s.since_t_us = kNever;
      s.evidence_count = 0;
      take_evidence();
      emit(s, t_us, EventPhase::kOnset, out);
      return;
    case Phase::kActive:
      break;
    case Phase::kCooldown:
      return;
  }

  if (f.verdict == Verdict::kUnknown) {
    s.since_t_us = kNever;
    return;
  }
  take_evidence();
  if (f.verdict != Verdict::kOff) {
    s.since_t_us = kNever;
    if (f.verdict == Verdict::kOn && static_cast<int>(f.severity) > static_cast<int>(s.severity)) {
      s.severity = f.severity;
      emit(s, t_us, EventPhase::kOnset, out);
    }
    return;
  }
  if (s.since_t_us == kNever || gap()) s.since_t_us = t_us;
  if (t_us - s.since_t_us < micros(timing.clear_hold_s)) return;
  emit(s, t_us, EventPhase::kClear, out);
  s.since_t_us = kNever;
  if (timing.cooldown_s > 0.0) {
    s.phase = Phase::kCooldown;
    s.until_t_us = t_us + micros(timing.cooldown_s);
  } else {
    s.phase = Phase::kIdle;
  }
}

// ---- RiskRules: entry points --------------------------------------------------------------------

void RiskRules::evaluate(const RuleInputs& in, RiskEventBuffer& out) {
  tick(in.t_us, out);
  const std::int64_t t = in.t_us;
  auto is_active = [this](int index) { return slot(index).phase == Phase::kActive; };
  for (int i = 0; i < 2; ++i) {
    step(slot(kSlotR1 + i), t, pfj_overload(in, i, is_active(kSlotR1 + i)),
         params_.pfj_overload.timing, out);
  }
  step(slot(kSlotR2), t, low_cadence(in, is_active(kSlotR2)), params_.low_cadence.timing, out);
  for (int i = 0; i < 2; ++i) {
    step(slot(kSlotR3 + i), t, impact(in, i, is_active(kSlotR3 + i)), params_.impact.timing, out);
  }
  step(slot(kSlotR4), t, session_spike(in, is_active(kSlotR4)), params_.session_spike.timing, out);
  step(slot(kSlotR5), t, weekly_jump(in, is_active(kSlotR5)), params_.weekly_jump.timing, out);
  for (int i = 0; i < 2; ++i) {
    step(slot(kSlotR6 + i), t, itbs_pattern(in, i, is_active(kSlotR6 + i)),
         params_.itbs_pattern.timing, out);
  }
  step(slot(kSlotR7), t, fatigue_drift(in, is_active(kSlotR7)), params_.fatigue_drift.timing, out);
  step(slot(kSlotR8), t, asymmetry(in, is_active(kSlotR8)), params_.asymmetry.timing, out);
  step(slot(kSlotR9Km), t, shoe_km(in, is_active(kSlotR9Km)), params_.shoes.km_timing, out);
  for (int i = 0; i < 2; ++i) {
    step(slot(kSlotR9Drift + i), t, shoe_drift(in, i, is_active(kSlotR9Drift + i)),
         params_.shoes.drift_timing, out);
  }
}

// MODEL.md §9 R10: knee pain >= 3/10 → high, at once; a later report below it clears. "Repeated
// in 2 sessions → see a clinician" travels as evidence (the advice already says it).
void RiskRules::on_pain(std::int64_t t_us, const PainReport& report,
                        double previous_session_pain_score, RiskEventBuffer& out) {
  const PainParams& p = params_.pain;
  const int i = side_index(report.side);
  if (report.location == PainLocation::kLateral && report.score >= p.lateral_min_score) {
    for (int k = 0; k < 2; ++k) {
      if (i < 0 || i == k) {
        int& latched = lateral_pain_[static_cast<std::size_t>(k)];
        latched = std::max(latched, static_cast<int>(report.score));
      }
    }
  }
  Finding f;
  f.severity = Severity::kHigh;
  f.verdict = report.score >= p.high_score ? Verdict::kOn : Verdict::kOff;
  f.add("pain_score", report.score, kNaN, p.high_score);
  f.add("previous_session_pain_score", previous_session_pain_score, kNaN, p.high_score);
  step(slot(kSlotR10 + 1 + i), t_us, f, p.timing, out);
}

void RiskRules::on_device_stale(std::int64_t t_us, std::uint32_t device, SensorKind kind, Side side,
                                bool stale, double silent_s, RiskEventBuffer& out) {
  Finding f;
  f.verdict = stale ? Verdict::kOn : Verdict::kOff;
  f.add("silent_s", silent_s, kNaN, kNaN);
  step(fault_slot(RuleId::kSensorDropout, kind, side, device), t_us, f,
       params_.faults.dropout_timing, out);
}

void RiskRules::on_clock_jump(std::int64_t t_us, std::uint32_t device, SensorKind kind, Side side,
                              double jump_s, RiskEventBuffer& out) {
  last_clock_jump_t_us_[static_cast<std::size_t>(device_slot(kind, side))] = t_us;
  Finding f;
  f.verdict = Verdict::kOn;
  f.add("clock_jump_s", jump_s, kNaN, kNaN);
  step(fault_slot(RuleId::kClockJump, kind, side, device), t_us, f, kImmediateTiming, out);
}

// F4 clears once clock_quiet_s has passed since the last jump of that device.
void RiskRules::tick(std::int64_t t_us, RiskEventBuffer& out) {
  for (int d = 0; d < kDeviceSlots; ++d) {
    Slot& s = slot(kSlotF4 + d);
    if (s.phase != Phase::kActive) continue;
    const std::int64_t last = last_clock_jump_t_us_[static_cast<std::size_t>(d)];
    const double quiet_s = static_cast<double>(t_us - last) / 1e6;
    Finding f;
    f.verdict = quiet_s < params_.faults.clock_quiet_s ? Verdict::kHold : Verdict::kOff;
    f.add("clock_quiet_s", quiet_s, kNaN, params_.faults.clock_quiet_s);
    step(s, t_us, f, kImmediateTiming, out);
  }
}

// F2: a cell at or above saturation_fraction of full scale for more than saturation_min_samples
// consecutive samples. F3: a loaded, unsaturated cell unchanged for stuck_s while other cells
// changed in at least stuck_min_other_changes of those samples. Per insole, the worst cell is
// reported.
void RiskRules::on_insole_cells(std::int64_t t_us, std::uint32_t device, Side side,
                                std::span<const float> pressure_pa, RiskEventBuffer& out) {
  const int i = side_index(side);
  if (i < 0) return;
  const SensorFaultParams& p = params_.faults;
  InsoleFaultState& st = insoles_[static_cast<std::size_t>(i)];
  const int n = std::min(static_cast<int>(pressure_pa.size()), kMaxInsoleCells);
  if (st.cell_count != n) {
    st = InsoleFaultState{};
    st.cell_count = n;
    st.last_t_us = t_us;
    for (int c = 0; c < n; ++c) {
      const auto k = static_cast<std::size_t>(c);
      st.last_pa[k] = pressure_pa[k];
      st.last_change_t_us[k] = t_us;
    }
    return;
  }
  if (t_us <= st.last_t_us) return;
  st.last_t_us = t_us;

  // Per insole sample, so written for it: one pass over the cells finds which changed, which
  // are saturated now, which have run saturated too long and which are loaded (a bit per cell,
  // n <= 32); only the few cells a finding can come from are looked at again.
  static_assert(kMaxInsoleCells <= 32, "one bit per cell");
  const bool sat_enabled = p.cell_full_scale_pa > 0.0;
  const double sat_level = p.saturation_fraction * p.cell_full_scale_pa;
  const auto sat_min_samples = static_cast<std::uint32_t>(std::max(0, p.saturation_min_samples));
  const std::uint32_t samples = st.samples + 1;
  const std::uint32_t busy = st.busy + 1;  // this sample's count if any cell changed in it
  std::uint32_t changed = 0;
  std::uint32_t saturated = 0;
  std::uint32_t long_run = 0;
  std::uint32_t loaded = 0;
  for (int c = 0; c < n; ++c) {
    const auto k = static_cast<std::size_t>(c);
    const double v = pressure_pa[k];
    const bool ch = !(std::fabs(v - st.last_pa[k]) <= p.stuck_tolerance_pa);
    const bool sat = sat_enabled && v >= sat_level;
    const std::uint32_t run = sat ? st.saturated_run[k] + 1 : 0;
    st.saturated_run[k] = run;
    st.last_pa[k] = pressure_pa[k];
    if (ch) {
      st.last_change_t_us[k] = t_us;
      st.samples_at_change[k] = samples;
      st.busy_at_change[k] = busy;
    }
    changed |= static_cast<std::uint32_t>(ch) << c;
    saturated |= static_cast<std::uint32_t>(sat) << c;
    long_run |= static_cast<std::uint32_t>(run > sat_min_samples) << c;
    loaded |= static_cast<std::uint32_t>(v > p.stuck_zero_pa) << c;
  }
  st.samples = samples;
  if (changed != 0) st.busy = busy;

  // F2: the longest run over the limit, the lowest cell of equal ones.
  int sat_cell = -1;
  for (std::uint32_t m = long_run; m != 0; m &= m - 1) {
    const int c = std::countr_zero(m);
    if (sat_cell < 0 || st.saturated_run[static_cast<std::size_t>(c)] >
                            st.saturated_run[static_cast<std::size_t>(sat_cell)]) {
      sat_cell = c;
    }
  }
  // F3: a loaded, unsaturated cell that did not change, unchanged long enough while others
  // changed; the longest unchanged, the lowest cell of equal ones.
  int stuck_cell = -1;
  std::int64_t stuck_longest_us = 0;
  if (const std::uint32_t candidates = loaded & ~saturated & ~changed; candidates != 0) {
    const std::int64_t stuck_us = micros(p.stuck_s);
    for (std::uint32_t m = candidates; m != 0; m &= m - 1) {
      const auto k = static_cast<std::size_t>(std::countr_zero(m));
      const std::uint32_t samples_since_change = st.samples - st.samples_at_change[k];
      const std::uint32_t other_changes_since = st.busy - st.busy_at_change[k];
      const std::int64_t unchanged_us = t_us - st.last_change_t_us[k];
      const bool stuck = samples_since_change > 0 && unchanged_us >= stuck_us &&
                         static_cast<double>(other_changes_since) >=
                             p.stuck_min_other_changes * samples_since_change;
      if (stuck && unchanged_us > stuck_longest_us) {
        stuck_cell = static_cast<int>(k);
        stuck_longest_us = unchanged_us;
      }
    }
  }

  // Nearly every sample finds neither fault: one Off finding without evidence, built once,
  // spares two zero-filled Findings per sample.
  static const Finding kOff = [] {
    Finding f;
    f.verdict = Verdict::kOff;
    return f;
  }();
  Slot& sat_slot = slot(kSlotF2 + i);
  sat_slot.device = device;
  if (sat_cell >= 0) {
    Finding sat;
    sat.verdict = Verdict::kOn;
    const auto k = static_cast<std::size_t>(sat_cell);
    sat.add("cell_index", sat_cell, kNaN, kNaN);
    sat.add("saturated_samples", st.saturated_run[k], kNaN, p.saturation_min_samples);
    sat.add("cell_pressure_kpa", st.last_pa[k] / 1e3, kNaN, p.cell_full_scale_pa / 1e3);
    step(sat_slot, t_us, sat, p.saturation_timing, out);
  } else {
    step(sat_slot, t_us, kOff, p.saturation_timing, out);
  }

  Slot& stuck_slot = slot(kSlotF3 + i);
  stuck_slot.device = device;
  if (stuck_cell >= 0) {
    Finding stuck;
    stuck.verdict = Verdict::kOn;
    stuck.add("cell_index", stuck_cell, kNaN, kNaN);
    stuck.add("unchanged_s", static_cast<double>(stuck_longest_us) / 1e6, kNaN, p.stuck_s);
    stuck.add("cell_pressure_kpa", st.last_pa[static_cast<std::size_t>(stuck_cell)] / 1e3, kNaN,
              kNaN);
    step(stuck_slot, t_us, stuck, p.stuck_timing, out);
  } else {
    step(stuck_slot, t_us, kOff, p.stuck_timing, out);
  }
}

void RiskRules::end_session(std::int64_t t_us, RiskEventBuffer& out) {
  for (int k = 0; k < kSlotEndOfRules; ++k) {
    Slot& s = slot(k);
    if (s.phase == Phase::kActive) emit(s, t_us, EventPhase::kClear, out);
    s.phase = Phase::kIdle;
    s.since_t_us = kNever;
    s.until_t_us = kNever;
    s.last_eval_t_us = kNever;
    s.evidence_count = 0;
  }
  lateral_pain_ = {0, 0};
}

// ---- RiskRules: the rules (MODEL.md §9 table) ---------------------------------------------------

// R1 PFJ overload: rolling σ_peak or per-km J_σ above the baseline by onset_rel (+15 %).
// Lenhart 2014, Willson 2014 [L]; the +15 % trigger [H].
RiskRules::Finding RiskRules::pfj_overload(const RuleInputs& in, int i, bool active) const {
  const PfjOverloadParams& p = params_.pfj_overload;
  Finding f;
  f.severity = Severity::kWarn;
  const auto si = static_cast<std::size_t>(i);
  if (!in.baseline_ready || in.rolling_steps[si] < params_.min_rolling_steps) return f;
  const double rel = active ? p.clear_rel : p.onset_rel;
  Tally t;
  auto part = [&](const char* name, double v, double base) {
    const double change = rel_change(v, base);
    if (!known(change)) return;
    t.add(change > p.onset_rel, change > p.clear_rel);
    f.add(name, v, base, base * (1.0 + rel));
  };
  part("pfj_stress_peak_mpa", in.rolling[si].pfj_stress_peak_mpa,
       in.baseline[si].pfj_stress_peak_mpa);
  part("stress_time_integral_per_km_mpa_s", in.rolling[si].stress_time_integral_per_km_mpa_s,
       in.baseline[si].stress_time_integral_per_km_mpa_s);
  if (t.any) f.verdict = t.on ? Verdict::kOn : t.hold ? Verdict::kHold : Verdict::kOff;
  return f;
}

// R2 low cadence: < 166 spm at >= 2.5 m/s, or < 95 % of the preferred (baseline) cadence with
// peak stance flexion > 45°. Thakkar 2019, Heiderscheit 2011 [L].
RiskRules::Finding RiskRules::low_cadence(const RuleInputs& in, bool active) const {
  const LowCadenceParams& p = params_.low_cadence;
  Finding f;
  f.severity = Severity::kInfo;
  double cadence = kNaN, preferred = kNaN, flexion_deg = kNaN, base_flexion_deg = kNaN;
  for (std::size_t i = 0; i < 2; ++i) {
    if (in.rolling_steps[i] < params_.min_rolling_steps) continue;
    cadence = mean_known(cadence, in.rolling[i].cadence_spm);
    flexion_deg = std::fmax(flexion_deg, in.rolling[i].knee_angle_peak_rad * kDegPerRad);
    if (in.baseline_ready) {
      preferred = mean_known(preferred, in.baseline[i].cadence_spm);
      base_flexion_deg =
          std::fmax(base_flexion_deg, in.baseline[i].knee_angle_peak_rad * kDegPerRad);
    }
  }
  if (!known(cadence)) return f;
  Tally t;
  bool absolute_part = false;
  const double v = in.belt_speed_mps;
  if (known(v)) {
    const bool fast = v >= p.min_speed_mps;
    t.add(fast && cadence < p.cadence_spm, fast && cadence < p.cadence_clear_spm);
    absolute_part = t.hold;
  }
  if (known(preferred) && known(flexion_deg)) {
    t.add(
        cadence < p.preferred_fraction * preferred && flexion_deg > p.peak_flexion_deg,
        cadence < p.preferred_clear_fraction * preferred && flexion_deg > p.peak_flexion_clear_deg);
  }
  if (!t.any) return f;
  f.verdict = t.on ? Verdict::kOn : t.hold ? Verdict::kHold : Verdict::kOff;
  const bool relative = t.hold && !absolute_part && known(preferred);
  const double cadence_thr =
      relative ? (active ? p.preferred_clear_fraction : p.preferred_fraction) * preferred
               : (active ? p.cadence_clear_spm : p.cadence_spm);
  f.add("cadence_spm", cadence, preferred, cadence_thr);
  f.add("belt_speed_mps", v, in.baseline_speed_mps, p.min_speed_mps);
  f.add("knee_angle_peak_deg", flexion_deg, base_flexion_deg,
        active ? p.peak_flexion_clear_deg : p.peak_flexion_deg);
  return f;
}

// R3 impact: VALR > 66 BW/s with force sampled >= 500 Hz (Davis 2016 [P, weak]); VALR or IP
// above baseline by +20 % at any rate (a trend, MODEL.md §1); PTA > 8 g with the shank IMU at
// >= 500 Hz (Crowell & Davis 2010 [L]).
RiskRules::Finding RiskRules::impact(const RuleInputs& in, int i, bool active) const {
  const ImpactParams& p = params_.impact;
  Finding f;
  f.severity = Severity::kInfo;
  const auto si = static_cast<std::size_t>(i);
  if (in.rolling_steps[si] < params_.min_rolling_steps) return f;
  const GaitMetrics& r = in.rolling[si];
  const GaitMetrics base = in.baseline_ready ? in.baseline[si] : GaitMetrics{};
  const double rel = active ? p.clear_rel : p.onset_rel;
  Tally t;
  double valr_thr = kNaN;
  if (known(in.force_rate_hz) && in.force_rate_hz >= p.min_force_rate_hz &&
      known(r.valr_bw_per_s)) {
    t.add(r.valr_bw_per_s > p.valr_bw_per_s, r.valr_bw_per_s > p.valr_clear_bw_per_s);
    valr_thr = active ? p.valr_clear_bw_per_s : p.valr_bw_per_s;
  }
  const double valr_change = rel_change(r.valr_bw_per_s, base.valr_bw_per_s);
  if (known(valr_change)) {
    t.add(valr_change > p.onset_rel, valr_change > p.clear_rel);
    valr_thr = std::fmin(valr_thr, base.valr_bw_per_s * (1.0 + rel));
  }
  const double ip_change = rel_change(r.impact_peak_bw, base.impact_peak_bw);
  if (known(ip_change)) t.add(ip_change > p.onset_rel, ip_change > p.clear_rel);
  const bool pta_valid = known(in.pta_rate_hz) && in.pta_rate_hz >= p.min_pta_rate_hz;
  if (pta_valid && known(r.pta_g)) t.add(r.pta_g > p.pta_g, r.pta_g > p.pta_clear_g);
  if (!t.any) return f;
  f.verdict = t.on ? Verdict::kOn : t.hold ? Verdict::kHold : Verdict::kOff;
  f.add("valr_bw_per_s", r.valr_bw_per_s, base.valr_bw_per_s, valr_thr);
  f.add("impact_peak_bw", r.impact_peak_bw, base.impact_peak_bw, base.impact_peak_bw * (1.0 + rel));
  if (pta_valid) f.add("pta_g", r.pta_g, base.pta_g, active ? p.pta_clear_g : p.pta_g);
  f.add("force_rate_hz", in.force_rate_hz, kNaN, p.min_force_rate_hz);
  return f;
}

// R4 session spike: distance (or D) over the 30-day max, > 1.10 / 1.30 / 2.0 → info / warn /
// high (Frandsen et al. 2025 [P]).
RiskRules::Finding RiskRules::session_spike(const RuleInputs& in, bool active) const {
  const SessionSpikeParams& p = params_.session_spike;
  const TrainingHistory& h = in.history;
  Finding f;
  const double ratio_distance = h.max_session_distance_30d_m > 0.0
                                    ? in.session_distance_m / h.max_session_distance_30d_m
                                    : kNaN;
  const double ratio_damage =
      h.max_session_damage_30d > 0.0 ? in.session_damage_index / h.max_session_damage_30d : kNaN;
  const double ratio = std::fmax(ratio_distance, ratio_damage);
  if (!known(ratio)) return f;
  double band = p.info_ratio;
  f.severity = Severity::kInfo;
  if (ratio > p.high_ratio) {
    f.severity = Severity::kHigh;
    band = p.high_ratio;
  } else if (ratio > p.warn_ratio) {
    f.severity = Severity::kWarn;
    band = p.warn_ratio;
  }
  f.verdict = ratio > p.info_ratio    ? Verdict::kOn
              : ratio > p.clear_ratio ? Verdict::kHold
                                      : Verdict::kOff;
  if (active && f.verdict != Verdict::kOn) band = p.clear_ratio;
  if (known(ratio_distance)) {
    f.add("session_distance_m", in.session_distance_m, h.max_session_distance_30d_m,
          band * h.max_session_distance_30d_m);
  }
  if (known(ratio_damage)) {
    f.add("session_damage_index", in.session_damage_index, h.max_session_damage_30d,
          band * h.max_session_damage_30d);
  }
  return f;
}

// R5 weekly jump: this week's km (before the session plus the session so far) over the previous
// two weeks' weekly mean > 1.30 (Nielsen et al. 2014 JOSPT [P, weak]).
RiskRules::Finding RiskRules::weekly_jump(const RuleInputs& in, bool active) const {
  const WeeklyJumpParams& p = params_.weekly_jump;
  const TrainingHistory& h = in.history;
  Finding f;
  f.severity = Severity::kWarn;
  const double prev = h.previous_two_weeks_mean_km;
  if (!known(prev) || prev < p.min_reference_km || !known(h.week_km_before_session)) return f;
  const double session_km = known(in.session_distance_m) ? in.session_distance_m / 1000.0 : 0.0;
  const double week = h.week_km_before_session + session_km;
  f.verdict = week > p.onset_ratio * prev   ? Verdict::kOn
              : week > p.clear_ratio * prev ? Verdict::kHold
                                            : Verdict::kOff;
  f.add("week_km", week, prev, (active ? p.clear_ratio : p.onset_ratio) * prev);
  return f;
}

// R6 ITBS pattern: θ_IC within 15-30° and the ITB loaded-zone time (MODEL.md §5) above baseline
// by +20 %; warn on a decline steeper than −2 % or a lateral-knee pain report (Orchard 1996 [L],
// trigger [H]).
RiskRules::Finding RiskRules::itbs_pattern(const RuleInputs& in, int i, bool active) const {
  const ItbsPatternParams& p = params_.itbs_pattern;
  Finding f;
  f.severity = Severity::kInfo;
  const auto si = static_cast<std::size_t>(i);
  if (!in.baseline_ready || in.rolling_steps[si] < params_.min_rolling_steps) return f;
  const double ic_deg = in.rolling[si].knee_angle_ic_rad * kDegPerRad;
  const double zone = in.rolling[si].itb_zone_time_s;
  const double zone_base = in.baseline[si].itb_zone_time_s;
  if (!known(ic_deg) || !known(zone) || !known(zone_base)) return f;
  const bool range_on = ic_deg >= p.ic_min_deg && ic_deg <= p.ic_max_deg;
  const bool range_hold =
      ic_deg >= p.ic_min_deg - p.ic_margin_deg && ic_deg <= p.ic_max_deg + p.ic_margin_deg;
  const double zone_on_thr =
      std::max(zone_base * (1.0 + p.onset_rel), zone_base + p.min_increase_s);
  const double zone_clear_thr =
      std::max(zone_base * (1.0 + p.clear_rel), zone_base + 0.5 * p.min_increase_s);
  const bool on = range_on && zone > zone_on_thr;
  const bool hold = range_hold && zone > zone_clear_thr;
  f.verdict = on ? Verdict::kOn : hold ? Verdict::kHold : Verdict::kOff;
  const bool downhill = known(in.incline_fraction) && in.incline_fraction < p.decline_fraction;
  const int lateral = lateral_pain_[si];
  if (downhill || lateral >= params_.pain.lateral_min_score) f.severity = Severity::kWarn;
  f.add("itb_zone_time_s", zone, zone_base, active ? zone_clear_thr : zone_on_thr);
  f.add("knee_angle_ic_deg", ic_deg, in.baseline[si].knee_angle_ic_rad * kDegPerRad,
        active ? p.ic_min_deg - p.ic_margin_deg : p.ic_min_deg);
  f.add("incline_fraction", in.incline_fraction, in.baseline_incline_fraction, p.decline_fraction);
  if (lateral > 0) f.add("lateral_knee_pain_score", lateral, kNaN, params_.pain.lateral_min_score);
  return f;
}

// R7 fatigue drift: at least min_changes of t_c +5 %, cadence −3 %, PTA or VALR +15 %,
// |Δθ_IC| >= 3°, contact-time SI +3 pp against the baseline; silent when the belt speed differs
// from the baseline speed by more than 5 % (speed masks fatigue: Zandbergen 2023). Apte 2021
// [P, direction only].
RiskRules::Finding RiskRules::fatigue_drift(const RuleInputs& in, bool active) const {
  const FatigueDriftParams& p = params_.fatigue_drift;
  Finding f;
  f.severity = Severity::kWarn;
  if (!in.baseline_ready) return f;
  const double speed_change = rel_change(in.belt_speed_mps, in.baseline_speed_mps);
  if (!known(speed_change) || std::fabs(speed_change) > p.max_speed_change_rel) return f;

  struct Part {
    const char* metric;
    double value, base, on_thr, clear_thr;
    bool on, hold;
  };
  std::array<Part, 5> parts{};
  int n = 0;
  std::array<bool, 2> usable{};
  for (std::size_t i = 0; i < 2; ++i) usable[i] = in.rolling_steps[i] >= params_.min_rolling_steps;

  // Per-side metrics: the side with the largest change speaks for the runner.
  auto worst_side = [&](double GaitMetrics::*field, auto change_of) {
    double best_change = kNaN;
    std::size_t best = 0;
    for (std::size_t i = 0; i < 2; ++i) {
      if (!usable[i]) continue;
      const double c = change_of(in.rolling[i].*field, in.baseline[i].*field);
      if (known(c) && !(c <= best_change)) {
        best_change = c;
        best = i;
      }
    }
    return std::pair<double, std::size_t>{best_change, best};
  };

  {
    const auto [c, i] = worst_side(&GaitMetrics::contact_time_s, rel_change);
    if (known(c)) {
      const double b = in.baseline[i].contact_time_s;
      parts[static_cast<std::size_t>(n++)] = Part{"contact_time_s",
                                                  in.rolling[i].contact_time_s,
                                                  b,
                                                  b * (1.0 + p.contact_time_rel),
                                                  b * (1.0 + p.contact_time_clear_rel),
                                                  c >= p.contact_time_rel,
                                                  c >= p.contact_time_clear_rel};
    }
  }
  {
    double cadence = kNaN, base = kNaN;
    for (std::size_t i = 0; i < 2; ++i) {
      if (!usable[i]) continue;
      cadence = mean_known(cadence, in.rolling[i].cadence_spm);
      base = mean_known(base, in.baseline[i].cadence_spm);
    }
    const double c = rel_change(cadence, base);
    if (known(c)) {
      parts[static_cast<std::size_t>(n++)] = Part{"cadence_spm",
                                                  cadence,
                                                  base,
                                                  base * (1.0 + p.cadence_rel),
                                                  base * (1.0 + p.cadence_clear_rel),
                                                  c <= p.cadence_rel,
                                                  c <= p.cadence_clear_rel};
    }
  }
  {
    const auto [c_pta, i_pta] = worst_side(&GaitMetrics::pta_g, rel_change);
    const auto [c_valr, i_valr] = worst_side(&GaitMetrics::valr_bw_per_s, rel_change);
    const bool use_pta = known(c_pta) && !(c_pta < c_valr);
    const double c = use_pta ? c_pta : c_valr;
    if (known(c)) {
      const std::size_t i = use_pta ? i_pta : i_valr;
      double GaitMetrics::*field = use_pta ? &GaitMetrics::pta_g : &GaitMetrics::valr_bw_per_s;
      const double b = in.baseline[i].*field;
      parts[static_cast<std::size_t>(n++)] = Part{use_pta ? "pta_g" : "valr_bw_per_s",
                                                  in.rolling[i].*field,
                                                  b,
                                                  b * (1.0 + p.impact_rel),
                                                  b * (1.0 + p.impact_clear_rel),
                                                  c >= p.impact_rel,
                                                  c >= p.impact_clear_rel};
    }
  }
  {
    auto abs_diff_deg = [](double v, double b) { return std::fabs(v - b) * kDegPerRad; };
    const auto [c, i] = worst_side(&GaitMetrics::knee_angle_ic_rad, abs_diff_deg);
    if (known(c)) {
      const double v = in.rolling[i].knee_angle_ic_rad * kDegPerRad;
      const double b = in.baseline[i].knee_angle_ic_rad * kDegPerRad;
      const double dir = v >= b ? 1.0 : -1.0;
      parts[static_cast<std::size_t>(n++)] = Part{"knee_angle_ic_deg",
                                                  v,
                                                  b,
                                                  b + dir * p.knee_ic_deg,
                                                  b + dir * p.knee_ic_clear_deg,
                                                  c >= p.knee_ic_deg,
                                                  c >= p.knee_ic_clear_deg};
    }
  }
  if (usable[0] && usable[1]) {
    const double si =
        symmetry_index_pct(in.rolling[0].contact_time_s, in.rolling[1].contact_time_s);
    const double si_base =
        symmetry_index_pct(in.baseline[0].contact_time_s, in.baseline[1].contact_time_s);
    if (known(si) && known(si_base)) {
      const double d = si - si_base;
      parts[static_cast<std::size_t>(n++)] = Part{"contact_time_si_pct",
                                                  si,
                                                  si_base,
                                                  si_base + p.timing_si_pp,
                                                  si_base + p.timing_si_clear_pp,
                                                  d >= p.timing_si_pp,
                                                  d >= p.timing_si_clear_pp};
    }
  }

  if (n < p.min_changes) return f;
  int on = 0, hold = 0;
  for (int k = 0; k < n; ++k) {
    on += parts[static_cast<std::size_t>(k)].on ? 1 : 0;
    hold += parts[static_cast<std::size_t>(k)].hold ? 1 : 0;
  }
  f.verdict = on >= p.min_changes     ? Verdict::kOn
              : hold >= p.min_changes ? Verdict::kHold
                                      : Verdict::kOff;
  // The changed parts first, then the rest.
  for (int pass = 0; pass < 2; ++pass) {
    for (int k = 0; k < n; ++k) {
      const Part& part = parts[static_cast<std::size_t>(k)];
      const bool beyond = active ? part.hold : part.on;
      if (beyond != (pass == 0)) continue;
      f.add(part.metric, part.value, part.base, active ? part.clear_thr : part.on_thr);
    }
  }
  return f;
}

// R8 asymmetry: SI > 4 % for contact or step time, > 15 % for peak force, > 25 % for loading
// rate, or peak flexion differing by > 5°. Girard 2019 healthy ranges [L], thresholds [H].
// MODEL.md §7: trust temporal asymmetry first (insole kinetics depend on per-foot calibration),
// so the temporal parts come first in the evidence.
RiskRules::Finding RiskRules::asymmetry(const RuleInputs& in, bool active) const {
  const AsymmetryParams& p = params_.asymmetry;
  Finding f;
  f.severity = Severity::kWarn;
  if (in.rolling_steps[0] < params_.min_rolling_steps ||
      in.rolling_steps[1] < params_.min_rolling_steps) {
    return f;
  }
  struct Part {
    const char* metric;
    double value, base, on_thr, clear_thr;
  };
  const GaitMetrics& l = in.rolling[0];
  const GaitMetrics& r = in.rolling[1];
  const GaitMetrics& bl = in.baseline[0];
  const GaitMetrics& br = in.baseline[1];
  auto si_base = [&](double GaitMetrics::*field) {
    return in.baseline_ready ? symmetry_index_pct(bl.*field, br.*field) : kNaN;
  };
  auto diff_deg = [](double a, double b) { return std::fabs(a - b) * kDegPerRad; };
  const std::array<Part, 5> parts{{
      {"contact_time_si_pct", symmetry_index_pct(l.contact_time_s, r.contact_time_s),
       si_base(&GaitMetrics::contact_time_s), p.contact_time_si_pct, p.contact_time_si_clear_pct},
      {"step_time_si_pct", symmetry_index_pct(l.step_time_s, r.step_time_s),
       si_base(&GaitMetrics::step_time_s), p.step_time_si_pct, p.step_time_si_clear_pct},
      {"peak_force_si_pct", symmetry_index_pct(l.peak_force_bw, r.peak_force_bw),
       si_base(&GaitMetrics::peak_force_bw), p.peak_force_si_pct, p.peak_force_si_clear_pct},
      {"valr_si_pct", symmetry_index_pct(l.valr_bw_per_s, r.valr_bw_per_s),
       si_base(&GaitMetrics::valr_bw_per_s), p.valr_si_pct, p.valr_si_clear_pct},
      {"knee_angle_peak_diff_deg", diff_deg(l.knee_angle_peak_rad, r.knee_angle_peak_rad),
       in.baseline_ready ? diff_deg(bl.knee_angle_peak_rad, br.knee_angle_peak_rad) : kNaN,
       p.knee_peak_diff_deg, p.knee_peak_diff_clear_deg},
  }};
  Tally t;
  for (const Part& part : parts) {
    if (known(part.value)) t.add(part.value > part.on_thr, part.value > part.clear_thr);
  }
  if (!t.any) return f;
  f.verdict = t.on ? Verdict::kOn : t.hold ? Verdict::kHold : Verdict::kOff;
  for (int pass = 0; pass < 2; ++pass) {
    for (const Part& part : parts) {
      const double thr = active ? part.clear_thr : part.on_thr;
      if ((part.value > thr) != (pass == 0)) continue;
      f.add(part.metric, part.value, part.base, thr);
    }
  }
  return f;
}

// R9, shoe age: > 600 km warn, > 800 km high (shoe life 300-1000 km, MODEL.md §8) [H].
RiskRules::Finding RiskRules::shoe_km(const RuleInputs& in, bool /*active*/) const {
  const ShoeParams& p = params_.shoes;
  Finding f;
  const double before = in.history.shoe_km_before_session;
  if (!known(before)) return f;
  const double km = before + (known(in.session_distance_m) ? in.session_distance_m / 1000.0 : 0.0);
  f.severity = km > p.high_km ? Severity::kHigh : Severity::kWarn;
  f.verdict = km > p.warn_km ? Verdict::kOn : Verdict::kOff;
  f.add("shoe_km", km, kNaN, km > p.high_km ? p.high_km : p.warn_km);
  return f;
}

// R9, drift against the first sessions in these shoes at the same speed (MODEL.md §8): IP or
// VALR +15 %, mean stance CoP_y medial by > 3 mm over >= 200 steps, midfoot peak pressure +20 %
// (Escamilla-Martínez 2020 [L], thresholds [H]).
RiskRules::Finding RiskRules::shoe_drift(const RuleInputs& in, int i, bool active) const {
  const ShoeParams& p = params_.shoes;
  Finding f;
  f.severity = Severity::kWarn;
  const auto si = static_cast<std::size_t>(i);
  const GaitMetrics& base = in.history.shoe_baseline[si];
  const double speed_change = rel_change(in.belt_speed_mps, in.history.shoe_baseline_speed_mps);
  if (!known(speed_change) || std::fabs(speed_change) > p.max_speed_change_rel) return f;
  const bool rolling_ok = in.rolling_steps[si] >= params_.min_rolling_steps;
  const GaitMetrics r = rolling_ok ? in.rolling[si] : GaitMetrics{};
  Tally t;
  struct Part {
    const char* metric;
    double value, base, on_thr, clear_thr;
    bool on, hold;
    bool known;
  };
  auto rel_part = [&](const char* metric, double v, double b, double on_rel, double clear_rel) {
    const double c = rel_change(v, b);
    return Part{metric,        v,       b, b * (1.0 + on_rel), b * (1.0 + clear_rel), c > on_rel,
                c > clear_rel, known(c)};
  };
  const double cop = in.session_cop_y_steps[si] >= p.cop_min_steps ? in.session_cop_y_m[si] : kNaN;
  const double shift = base.cop_y_m - cop;  // medial is towards y = 0
  const std::array<Part, 4> parts{{
      rel_part("impact_peak_bw", r.impact_peak_bw, base.impact_peak_bw, p.impact_rel,
               p.impact_clear_rel),
      rel_part("valr_bw_per_s", r.valr_bw_per_s, base.valr_bw_per_s, p.impact_rel,
               p.impact_clear_rel),
      Part{"cop_y_mm", cop * 1e3, base.cop_y_m * 1e3, (base.cop_y_m - p.medial_cop_shift_m) * 1e3,
           (base.cop_y_m - p.medial_cop_shift_clear_m) * 1e3, shift > p.medial_cop_shift_m,
           shift > p.medial_cop_shift_clear_m, known(shift)},
      rel_part("midfoot_peak_pressure_kpa", r.midfoot_peak_pressure_pa / 1e3,
               base.midfoot_peak_pressure_pa / 1e3, p.midfoot_pressure_rel,
               p.midfoot_pressure_clear_rel),
  }};
  for (const Part& part : parts) {
    if (part.known) t.add(part.on, part.hold);
  }
  if (!t.any) return f;
  // Three signs: impact (IP or VALR), medial CoP shift, midfoot pressure. Impact alone also
  // rises with fatigue and overstriding (R3, R7); drift_min_signs (default 2, [H]) makes a
  // shoe-specific sign necessary before the advice is "check the shoes".
  const int signs_on = static_cast<int>(parts[0].on || parts[1].on) + static_cast<int>(parts[2].on) +
                       static_cast<int>(parts[3].on);
  const int signs_hold = static_cast<int>(parts[0].hold || parts[1].hold) +
                         static_cast<int>(parts[2].hold) + static_cast<int>(parts[3].hold);
  f.verdict = signs_on >= p.drift_min_signs     ? Verdict::kOn
              : signs_hold >= p.drift_min_signs ? Verdict::kHold
                                                : Verdict::kOff;
  for (const Part& part : parts) {
    if (part.known)
      f.add(part.metric, part.value, part.base, active ? part.clear_thr : part.on_thr);
  }
  return f;
}

}  // namespace kneeload::fusion
