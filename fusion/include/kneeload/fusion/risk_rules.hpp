// The risk-rule engine of MODEL.md §9 (rules R1..R10) and the sensor-fault rules F1..F4, driven
// by data: each rule reads plain inputs, compares them with thresholds from RiskRuleParams, and a
// shared state machine turns the comparison into onset / clear events with persistence,
// hysteresis, cooldown and severity escalation.
//
// Thread ownership: one RiskRules and one GaitTrends per runner, owned by the thread that owns
// the runner's session; no locking. Pure: no I/O, clock, logging. Memory: the constructors
// allocate (GaitTrends' windows); every other call performs no heap allocation
// (tests/fusion/risk_rules_alloc_test.cpp counts them). Deterministic: the same calls give the
// same events bit for bit; events are zero-filled before their fields are set.
//
// How the session calls it (runner time t in µs, the clock StepMetrics use):
//   per step (at toe-off):  trends.add_step(side, to_t_us, metrics, speed, incline);
//                           RuleInputs in{}; trends.fill(to_t_us, in); <set the other fields>;
//                           rules.evaluate(in, events);
//   per insole sample:      rules.on_insole_cells(t, device, side, pressures, events);  (F2, F3)
//   per pain report:        rules.on_pain(t, report, history.previous_session_pain_score, events);
//   device stale edge:      rules.on_device_stale(t, device, kind, side, stale, silent_s, events);
//   clock jump detected:    rules.on_clock_jump(t, device, kind, side, jump_s, events);
//   session start:          trends.start_session(first_ic_t_us);
//   session end:            rules.end_session(t, events)  (clears R1..R10, keeps fault state).
// Each RiskEvent in `events` becomes one Output; the buffer is the caller's to clear.
//
// Semantics shared by every rule (RuleTiming):
// - An evaluation yields On (beyond the onset threshold), Hold (between the clear and the onset
//   threshold: hysteresis), Off (back past the clear threshold) or Unknown (an input is NaN, the
//   baseline is not ready, the speed changed: the rule is silent).
// - Onset when On has held continuously for persist_s of runner time (0: at once). Any other
//   verdict, or a gap of more than max_gap_s between evaluations, restarts the count.
// - Clear when Off has held for clear_hold_s; Unknown neither clears nor onsets. Then cooldown_s
//   of silence before a new onset can start counting.
// - While active, a higher severity (R4, R6, R9) re-emits an onset at that severity; the clear
//   carries the highest severity reached. No de-escalation events.
// - Evidence: up to kMaxEvidence {metric literal, value, baseline, threshold}; the threshold is
//   the onset threshold in onset events and the clear threshold in clear events. A clear reports
//   the same metrics as its onset (current values), so the reader sees what went back. Units are in
//   the metric name. Angles leave in degrees (config units), everything else SI or as named.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "kneeload/fusion/output.hpp"
#include "kneeload/fusion/sample.hpp"
#include "kneeload/fusion/stats.hpp"

namespace kneeload::fusion {

// ---- Inputs -------------------------------------------------------------------------------------

// Per-side gait values: one step's, a rolling window's, or a baseline's. NaN = unknown.
struct GaitMetrics {
  double contact_time_s = std::numeric_limits<double>::quiet_NaN();
  double step_time_s = std::numeric_limits<double>::quiet_NaN();
  double cadence_spm = std::numeric_limits<double>::quiet_NaN();
  double peak_force_bw = std::numeric_limits<double>::quiet_NaN();
  double impact_peak_bw = std::numeric_limits<double>::quiet_NaN();
  double valr_bw_per_s = std::numeric_limits<double>::quiet_NaN();
  double pta_g = std::numeric_limits<double>::quiet_NaN();  // peak tibial acceleration
  double knee_angle_ic_rad = std::numeric_limits<double>::quiet_NaN();
  double knee_angle_peak_rad = std::numeric_limits<double>::quiet_NaN();
  double pfj_stress_peak_mpa = std::numeric_limits<double>::quiet_NaN();
  double stress_time_integral_per_km_mpa_s = std::numeric_limits<double>::quiet_NaN();
  double itb_zone_time_s = std::numeric_limits<double>::quiet_NaN();
  // Mean stance CoP_y, metres from the medial edge of the insole (R9 drift).
  double cop_y_m = std::numeric_limits<double>::quiet_NaN();
  double midfoot_peak_pressure_pa = std::numeric_limits<double>::quiet_NaN();
};
inline constexpr int kGaitMetricCount = 14;
// The fields of GaitMetrics, for code that treats them alike (windows, medians).
extern const std::array<double GaitMetrics::*, kGaitMetricCount> kGaitMetricFields;

// What the caller knows from earlier sessions (R4, R5, R9, R10). NaN = unknown → that rule (or
// that part of it) is silent.
struct TrainingHistory {
  double max_session_distance_30d_m = std::numeric_limits<double>::quiet_NaN();  // R4
  double max_session_damage_30d = std::numeric_limits<double>::quiet_NaN();  // R4, same model id
  double previous_two_weeks_mean_km = std::numeric_limits<double>::quiet_NaN();   // R5 per week
  double week_km_before_session = std::numeric_limits<double>::quiet_NaN();       // R5
  double shoe_km_before_session = std::numeric_limits<double>::quiet_NaN();       // R9
  double previous_session_pain_score = std::numeric_limits<double>::quiet_NaN();  // R10 evidence
  // MODEL.md §4 uncoupled EWMA acute:chronic ratio of daily km (a metric, no rule): both EWMAs
  // through the day before the session's day, and the km already run on that day.
  double acute_load_ewma_km = std::numeric_limits<double>::quiet_NaN();
  double chronic_load_ewma_km = std::numeric_limits<double>::quiet_NaN();
  double day_km_before_session = std::numeric_limits<double>::quiet_NaN();
  // R9 drift: impact_peak_bw, valr_bw_per_s, cop_y_m and midfoot_peak_pressure_pa of the first
  // sessions in the current shoes, at shoe_baseline_speed_mps; other fields unused.
  std::array<GaitMetrics, 2> shoe_baseline{};
  double shoe_baseline_speed_mps = std::numeric_limits<double>::quiet_NaN();
  // MODEL.md §9: the runner baseline, minutes 3-8 of the runner's first sessions, as stored by
  // the daemon's runner store. runner_baseline_sessions == 0: none yet (the session's own
  // minutes 3-8 are the reference). Fields the store does not keep are NaN.
  std::array<GaitMetrics, 2> runner_baseline{};
  double runner_baseline_speed_mps = std::numeric_limits<double>::quiet_NaN();
  int runner_baseline_sessions = 0;
};

// Everything evaluate() reads, filled by the session at each step. [0] left, [1] right.
struct RuleInputs {
  std::int64_t t_us = 0;                  // runner time of the evaluation: the step's toe-off
  std::array<GaitMetrics, 2> rolling{};   // medians over the last rolling window (2 min)
  std::array<int, 2> rolling_steps{};     // steps in that window
  std::array<GaitMetrics, 2> baseline{};  // the runner baseline (minutes 3-8 for now)
  bool baseline_ready = false;
  double baseline_speed_mps = std::numeric_limits<double>::quiet_NaN();
  double baseline_incline_fraction = std::numeric_limits<double>::quiet_NaN();
  // R9: the session's mean stance CoP_y and its step count (MODEL.md §8: >= 200 steps).
  std::array<double, 2> session_cop_y_m{std::numeric_limits<double>::quiet_NaN(),
                                        std::numeric_limits<double>::quiet_NaN()};
  std::array<int, 2> session_cop_y_steps{};
  double belt_speed_mps = std::numeric_limits<double>::quiet_NaN();
  double incline_fraction = std::numeric_limits<double>::quiet_NaN();
  double force_rate_hz = std::numeric_limits<double>::quiet_NaN();  // insole force sampling
  double pta_rate_hz = std::numeric_limits<double>::quiet_NaN();    // shank IMU sampling
  double session_distance_m = std::numeric_limits<double>::quiet_NaN();
  double session_damage_index = std::numeric_limits<double>::quiet_NaN();  // D, primary b
  TrainingHistory history;
};

// ---- Parameters (MODEL.md §9 defaults; each a config key) ---------------------------------------

struct RuleTiming {
  double persist_s;     // On must hold this long (runner time) before the onset; 0 = at once
  double clear_hold_s;  // Off must hold this long before the clear
  double cooldown_s;    // silence after a clear
};
// MODEL.md §9: "each needs >= 2 min persistence". Clear after 10 s below the clear threshold;
// 5 min cooldown so one drifting runner is not told the same thing every few minutes [H].
inline constexpr RuleTiming kGaitRuleTiming{120.0, 10.0, 300.0};
// Counters and reports that cannot flicker: immediate, no cooldown.
inline constexpr RuleTiming kImmediateTiming{0.0, 0.0, 0.0};

struct PfjOverloadParams {  // R1, per side, warn
  RuleTiming timing = kGaitRuleTiming;
  double onset_rel = 0.15;  // σ_peak or per-km J_σ above baseline by this fraction
  double clear_rel = 0.10;
};
struct LowCadenceParams {  // R2, runner, info
  RuleTiming timing = kGaitRuleTiming;
  double cadence_spm = 166.0;  // absolute: below this at >= min_speed_mps (Thakkar 2019)
  double cadence_clear_spm = 168.0;
  double min_speed_mps = 2.5;
  double preferred_fraction = 0.95;  // or below this fraction of the baseline cadence ...
  double preferred_clear_fraction = 0.97;
  double peak_flexion_deg = 45.0;  // ... with peak stance flexion above this
  double peak_flexion_clear_deg = 44.0;
};
struct ImpactParams {  // R3, per side, info
  RuleTiming timing = kGaitRuleTiming;
  double valr_bw_per_s = 66.0;  // absolute (Davis 2016), only with force sampled >= min rate
  double valr_clear_bw_per_s = 60.0;
  double min_force_rate_hz = 500.0;  // MODEL.md §0/§1: loading rate needs >= 500 Hz
  double onset_rel = 0.20;  // VALR or IP above baseline by this fraction (any rate: a trend)
  double clear_rel = 0.15;
  double pta_g = 8.0;  // Crowell & Davis 2010, only with the shank IMU sampled >= min rate
  double pta_clear_g = 7.5;
  double min_pta_rate_hz = 500.0;
};
struct SessionSpikeParams {  // R4, runner; Frandsen 2025 bands
  RuleTiming timing = kImmediateTiming;
  double info_ratio = 1.10;  // distance (or D) over the 30-day max
  double warn_ratio = 1.30;
  double high_ratio = 2.00;
  double clear_ratio = 1.05;
};
struct WeeklyJumpParams {  // R5, runner, warn
  RuleTiming timing = kImmediateTiming;
  double onset_ratio = 1.30;  // this week's km over the previous 2 weeks' weekly mean
  double clear_ratio = 1.25;
  double min_reference_km = 1.0;  // below this weekly mean the ratio means nothing: silent [H]
};
struct ItbsPatternParams {  // R6, per side, info → warn
  RuleTiming timing = kGaitRuleTiming;
  double ic_min_deg = 15.0;  // θ_IC inside [ic_min_deg, ic_max_deg] ...
  double ic_max_deg = 30.0;
  double ic_margin_deg = 1.0;  // hysteresis: stays in while inside the range widened by this
  double onset_rel = 0.20;     // ... and zone time above baseline by this fraction
  double clear_rel = 0.10;
  double min_increase_s = 0.005;    // and by at least this much (a zero baseline) [H]
  double decline_fraction = -0.02;  // escalate to warn below this incline (downhill)
};
struct FatigueDriftParams {  // R7, runner, warn: >= min_changes of the five below
  RuleTiming timing = kGaitRuleTiming;
  int min_changes = 2;
  double contact_time_rel = 0.05, contact_time_clear_rel = 0.035;
  double cadence_rel = -0.03, cadence_clear_rel = -0.02;
  double impact_rel = 0.15, impact_clear_rel = 0.10;    // PTA or VALR
  double knee_ic_deg = 3.0, knee_ic_clear_deg = 2.0;    // |Δθ_IC|
  double timing_si_pp = 3.0, timing_si_clear_pp = 2.0;  // contact-time SI, percentage points
  double max_speed_change_rel = 0.05;  // speed differs more from baseline: silent (Zandbergen)
};
struct AsymmetryParams {  // R8, runner, warn: SI = 100·|L−R|/(0.5(L+R))
  RuleTiming timing = kGaitRuleTiming;
  double contact_time_si_pct = 4.0, contact_time_si_clear_pct = 3.0;
  double step_time_si_pct = 4.0, step_time_si_clear_pct = 3.0;
  double peak_force_si_pct = 15.0, peak_force_si_clear_pct = 12.0;
  double valr_si_pct = 25.0, valr_si_clear_pct = 20.0;
  double knee_peak_diff_deg = 5.0, knee_peak_diff_clear_deg = 4.0;
};
struct ShoeParams {  // R9: shoe km (runner, immediate) and drift vs the shoe baseline (per side)
  RuleTiming km_timing = kImmediateTiming;
  double warn_km = 600.0;
  double high_km = 800.0;
  RuleTiming drift_timing = kGaitRuleTiming;
  double impact_rel = 0.15, impact_clear_rel = 0.10;  // IP or VALR
  double medial_cop_shift_m = 0.003, medial_cop_shift_clear_m = 0.002;
  int cop_min_steps = 200;  // MODEL.md §8: average >= 200 steps to beat the 7 mm ML error
  double midfoot_pressure_rel = 0.20, midfoot_pressure_clear_rel = 0.15;
  double max_speed_change_rel = 0.05;  // "at the same speed" as the shoe baseline
  // Drift fires when at least this many of its three signs (impact, medial CoP, midfoot
  // pressure) hold [H]: impact alone is not shoe-specific.
  int drift_min_signs = 2;
};
struct PainParams {  // R10, per side, high
  RuleTiming timing = kImmediateTiming;
  int high_score = 3;         // knee pain >= 3/10 → onset
  int lateral_min_score = 1;  // a lateral report of at least this escalates R6 on that side
};
struct SensorFaultParams {                       // F1..F4, per device, warn
  RuleTiming dropout_timing = kImmediateTiming;  // F1: the caller's stale timer persists
  RuleTiming saturation_timing{0.0, 10.0, 0.0};  // F2: clear after 10 s without a saturated run
  double cell_full_scale_pa = 500e3;   // Moticon OpenGo cell range 0-50 N/cm²; <= 0 disables F2
  double saturation_fraction = 0.995;  // at or above this fraction of full scale is "at max"
  int saturation_min_samples = 5;      // a run longer than this many samples fires
  RuleTiming stuck_timing = kImmediateTiming;
  double stuck_s = 10.0;            // F3: a cell unchanged this long ...
  double stuck_tolerance_pa = 0.5;  // ... (|Δp| <= this is "unchanged") ...
  // ... while other cells changed in at least this fraction of those samples. Running at
  // 100 Hz gives ~0.35 (cells change in stance and read zero in swing); a still insole ~0.
  double stuck_min_other_changes = 0.2;
  double stuck_zero_pa = 0.0;   // readings at or below this are unloaded, not stuck
  double clock_quiet_s = 30.0;  // F4: clear after this long without another jump
};

struct RiskRuleParams {
  double max_gap_s = 10.0;     // evaluations further apart restart a persistence count
  int min_rolling_steps = 20;  // per side, before any rolling value is trusted
  PfjOverloadParams pfj_overload;
  LowCadenceParams low_cadence;
  ImpactParams impact;
  SessionSpikeParams session_spike;
  WeeklyJumpParams weekly_jump;
  ItbsPatternParams itbs_pattern;
  FatigueDriftParams fatigue_drift;
  AsymmetryParams asymmetry;
  ShoeParams shoes;
  PainParams pain;
  SensorFaultParams faults;
};

// MODEL.md §7: SI = 100·|L−R|/(0.5(L+R)) in percent; NaN unless both are finite and L+R > 0.
double symmetry_index_pct(double left, double right);

// ---- Outputs ------------------------------------------------------------------------------------

// Fixed-capacity sink for the events of one call (or several; the caller clears it, and with
// them the count of events it had no room for).
class RiskEventBuffer {
 public:
  static constexpr int kCapacity = 48;
  // Returns false, and counts, when full.
  bool push(const RiskEvent& e) {
    if (size_ == kCapacity) {
      ++overflow_;
      return false;
    }
    items_[static_cast<std::size_t>(size_++)] = e;
    return true;
  }
  int size() const { return size_; }
  const RiskEvent& operator[](int i) const { return items_[static_cast<std::size_t>(i)]; }
  void clear() {
    size_ = 0;
    overflow_ = 0;
  }
  std::uint64_t overflow() const { return overflow_; }

 private:
  std::array<RiskEvent, kCapacity> items_{};
  int size_ = 0;
  std::uint64_t overflow_ = 0;
};

// ---- Rolling values and the baseline ------------------------------------------------------------

// Capacities come from physiology: a cadence of at most 240 steps/min (sprinting; running is
// 150-200) is at most 120 steps/min, 2 steps/s, per foot. The daemon's config refuses a window
// longer than its capacity holds at that rate.
struct GaitTrendParams {
  double rolling_window_s = 120.0;  // MODEL.md §6: rolling 2-min windows
  double baseline_start_s = 180.0;  // MODEL.md §6: baseline = median of minutes 3-8
  double baseline_end_s = 480.0;
  int baseline_min_steps = 60;        // per side; fewer: that side's baseline stays NaN
  int rolling_capacity_steps = 240;   // per side: 2 min at 2 steps/s per foot; 36 bytes a step
  // Per side: steps that count into the baseline, 5 min at 2 steps/s per foot; later ones are
  // refused. A streaming median keeps the baseline, so this costs no memory per step.
  int baseline_capacity_steps = 600;
};

// Keeps, per side, the rolling window of step metrics and the session baseline (MODEL.md §6:
// median of minutes 3-8 "at the same speed and incline"; the baseline speed and incline are
// reported so R7/R9 can refuse to compare across a speed change). MODEL.md §9 asks for minutes
// 3-8 of the first 3 sessions: the daemon's runner store keeps that (TrainingHistory::
// runner_baseline) and the session prefers it; this one fills in until there is one.
//
// Memory (issue 8: a station's state within 32 KiB): the rolling window keeps each step's
// metrics as halves (stats.hpp: 11 significant bits, 0.05 % rounding), so its medians are
// exact to that rounding. The baseline would need every step of minutes 3-8 kept (up to 600
// per side); it is a streaming median per metric instead (StreamingMedian, P²), 64 bytes each,
// whose error against the exact median tests/fusion/stats_test.cpp bounds, and the baseline
// speed and incline, which hold a few set-points, are exact (SetPointMedian).
class GaitTrends {
 public:
  explicit GaitTrends(const GaitTrendParams& params = {});  // allocates every buffer

  // Resets windows and baseline; minutes 3-8 count from t0_us (the session's first IC).
  void start_session(std::int64_t t0_us);
  // One step of `side` at t_us (its toe-off), in time order per side.
  void add_step(Side side, std::int64_t t_us, const GaitMetrics& m, double belt_speed_mps,
                double incline_fraction);
  // Writes rolling, rolling_steps, baseline, baseline_ready, baseline speed/incline and the
  // session CoP_y into `in`; leaves every other field alone.
  void fill(std::int64_t t_us, RuleInputs& in);

  // New parameters (a reload). With unchanged capacities the collected steps are kept: the
  // rolling span and the baseline window apply from the next step (a baseline already frozen
  // stays as computed); returns true. A capacity change re-sizes the buffers (allocates) and,
  // inside a session, restarts the windows and the baseline at now_us, so minutes 3-8 count
  // from the reload; returns false.
  bool set_params(const GaitTrendParams& params, std::int64_t now_us);

  // The baseline window has closed with enough steps on at least one side.
  bool baseline_ready() const { return baseline_ready_; }

 private:
  // One step's GaitMetrics as halves, in kGaitMetricFields order.
  using HalfMetrics = std::array<std::uint16_t, kGaitMetricCount>;
  struct SideState {
    explicit SideState(const GaitTrendParams& p);
    // Takes the known values of window entry k out of `sorted` (before it leaves the window).
    void unsort(int k);
    // Evicts the entries at or before cut_t_us from the window and from `sorted`.
    void evict_before(std::int64_t cut_t_us);
    TimeWindow<HalfMetrics> rolling;
    // The known values of `rolling`, per metric, kept sorted: fill() reads 2 x 14 medians at
    // every step, which by selection over 240 steps each was a third of an insole sample's cost.
    SortedHalves sorted;
    std::array<StreamingMedian, kGaitMetricCount> baseline_medians{};
    int baseline_count = 0;
    GaitMetrics baseline{};
    double cop_sum = 0.0;
    int cop_count = 0;
  };
  void freeze_baseline();

  GaitTrendParams params_;
  std::array<SideState, 2> sides_;
  SetPointMedian baseline_speed_;
  SetPointMedian baseline_incline_;
  std::int64_t t0_us_ = 0;
  bool started_ = false;
  bool baseline_frozen_ = false;
  bool baseline_ready_ = false;
  double baseline_speed_mps_ = std::numeric_limits<double>::quiet_NaN();
  double baseline_incline_fraction_ = std::numeric_limits<double>::quiet_NaN();
};

// ---- The engine ---------------------------------------------------------------------------------

class RiskRules {
 public:
  // model_id: a string literal (load_model_id()) carried by every event.
  RiskRules(const RiskRuleParams& params, const char* model_id);

  // Gait and history rules R1..R9, and the time-driven clears of F4. Call once per step.
  void evaluate(const RuleInputs& in, RiskEventBuffer& out);
  // R10 (immediate) and the lateral-pain latch of R6. previous_session_pain_score: NaN unknown.
  void on_pain(std::int64_t t_us, const PainReport& report, double previous_session_pain_score,
               RiskEventBuffer& out);
  // F1: the caller's stale timer reports an edge. silent_s: how long, NaN if unknown.
  void on_device_stale(std::int64_t t_us, std::uint32_t device, SensorKind kind, Side side,
                       bool stale, double silent_s, RiskEventBuffer& out);
  // F4: the caller found the device clock inconsistent by jump_s; clears after clock_quiet_s.
  void on_clock_jump(std::int64_t t_us, std::uint32_t device, SensorKind kind, Side side,
                     double jump_s, RiskEventBuffer& out);
  // F2 saturation and F3 stuck cell, per insole sample (pressures in Pa, registry cell order).
  void on_insole_cells(std::int64_t t_us, std::uint32_t device, Side side,
                       std::span<const float> pressure_pa, RiskEventBuffer& out);
  // Time-driven clears (F4) without a step; evaluate() calls it too.
  void tick(std::int64_t t_us, RiskEventBuffer& out);
  // Session end: a clear for every active R1..R10, then all of them idle and the pain latch
  // reset. Sensor-fault state belongs to the devices and is kept.
  void end_session(std::int64_t t_us, RiskEventBuffer& out);

  // Reload: thresholds take effect at the next evaluation; active rules stay active.
  void set_params(const RiskRuleParams& params) { params_ = params; }
  void set_model_id(const char* model_id) { model_id_ = model_id; }
  const RiskRuleParams& params() const { return params_; }
  // Whether the rule is active (onset emitted, no clear yet) for that side, or for the runner
  // (kNone: R2, R4, R5, R7, R8, the R9 km part, side-less R10). For F1..F4: any device of that
  // side (kNone: treadmill or console).
  bool active(RuleId rule, Side side) const;
  // F1..F4 for one device.
  bool fault_active(RuleId rule, std::uint32_t device) const;

 private:
  enum class Verdict : std::uint8_t { kUnknown = 0, kOff = 1, kHold = 2, kOn = 3 };

  // One rule's evaluation: verdict, severity if it fires, and up to kFindingEvidence candidate
  // evidence entries, most relevant first; an event carries kMaxEvidence of them.
  static constexpr int kFindingEvidence = 8;
  struct Finding {
    Verdict verdict = Verdict::kUnknown;
    Severity severity = Severity::kWarn;
    std::uint8_t evidence_count = 0;
    std::array<Evidence, kFindingEvidence> evidence{};
    void add(const char* metric, double value, double baseline, double threshold);
  };

  enum class Phase : std::uint8_t { kIdle, kPending, kActive, kCooldown };
  static constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::min();
  // F1/F4 device slots: insole L, insole R, knee L, knee R, treadmill, console.
  static constexpr int kDeviceSlots = 6;

  struct Slot {
    RuleId rule = RuleId::kPfjOverload;
    Side side = Side::kNone;
    std::uint32_t device = UINT32_MAX;
    Phase phase = Phase::kIdle;
    Severity severity = Severity::kInfo;
    std::int64_t since_t_us = kNever;  // pending onset since / Off since
    std::int64_t until_t_us = kNever;  // cooldown end
    std::int64_t last_eval_t_us = kNever;
    std::uint8_t evidence_count = 0;
    std::array<Evidence, kMaxEvidence> evidence{};
  };

  // Per insole state for F2 and F3, a column per quantity so the per-sample pass over the
  // cells is a few straight loads and stores. A cell's samples since its last change, and the
  // samples since then in which another cell changed, are differences of the insole's running
  // counts (samples, busy) and their values at the cell's last change: nothing to increment in
  // every unchanged cell (unsigned, so they wrap exactly as per-cell counters would).
  struct InsoleFaultState {
    std::array<float, kMaxInsoleCells> last_pa{};
    std::array<std::int64_t, kMaxInsoleCells> last_change_t_us{};
    std::array<std::uint32_t, kMaxInsoleCells> samples_at_change{};
    std::array<std::uint32_t, kMaxInsoleCells> busy_at_change{};
    std::array<std::uint32_t, kMaxInsoleCells> saturated_run{};
    std::uint32_t samples = 0;  // samples checked since the cell count was set
    std::uint32_t busy = 0;     // of those, samples in which at least one cell changed
    int cell_count = -1;
    std::int64_t last_t_us = kNever;
  };

  void step(Slot& slot, std::int64_t t_us, const Finding& f, const RuleTiming& timing,
            RiskEventBuffer& out);
  void emit(const Slot& slot, std::int64_t t_us, EventPhase phase, RiskEventBuffer& out) const;

  Finding pfj_overload(const RuleInputs& in, int i, bool active) const;
  Finding low_cadence(const RuleInputs& in, bool active) const;
  Finding impact(const RuleInputs& in, int i, bool active) const;
  Finding session_spike(const RuleInputs& in, bool active) const;
  Finding weekly_jump(const RuleInputs& in, bool active) const;
  Finding itbs_pattern(const RuleInputs& in, int i, bool active) const;
  Finding fatigue_drift(const RuleInputs& in, bool active) const;
  Finding asymmetry(const RuleInputs& in, bool active) const;
  Finding shoe_km(const RuleInputs& in, bool active) const;
  Finding shoe_drift(const RuleInputs& in, int i, bool active) const;

  Slot& slot(int index) { return slots_[static_cast<std::size_t>(index)]; }
  Slot& fault_slot(RuleId rule, SensorKind kind, Side side, std::uint32_t device);

  RiskRuleParams params_;
  const char* model_id_;
  // Slots: R1..R10 (per side where MODEL.md's metric is per side), then F1..F4 per device role.
  static constexpr int kSlotCount = 33;
  std::array<Slot, kSlotCount> slots_{};
  std::array<InsoleFaultState, 2> insoles_{};
  std::array<int, 2> lateral_pain_{};  // highest lateral-knee pain score this session, per side
  std::array<std::int64_t, kDeviceSlots> last_clock_jump_t_us_{};
};

}  // namespace kneeload::fusion
