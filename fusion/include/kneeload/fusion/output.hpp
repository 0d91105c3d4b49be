// Plain output structs that fusion/ emits and daemon/ publishes. SI units; time in µs on the
// runner's aligned clock (device time for now), so replay of the same input gives the same bytes.
#pragma once

#include <array>
#include <cstdint>
#include <type_traits>
#include <variant>

#include "kneeload/fusion/sample.hpp"

namespace kneeload::fusion {

// Fused state of one runner, decimated to ModelParams::state_rate_hz.
struct FusedState {
  std::int64_t t_us;
  float knee_angle_rad[2];  // [left, right]; NaN when no knee device for that side
  float vgrf_bw[2];         // vertical ground-reaction force per foot, body weights; NaN if none
  float belt_speed_mps;     // NaN until the treadmill reports
  float incline_fraction;
  float cadence_spm;        // from the last steps; NaN before two steps
  std::uint8_t contact_mask;  // bit 0 left foot in contact, bit 1 right
};

// One step, emitted at toe-off (MODEL.md §9). Metrics the session cannot compute yet are NaN.
struct StepMetrics {
  std::int64_t ic_t_us;  // initial contact
  std::int64_t to_t_us;  // toe-off
  std::uint64_t step_index;  // per runner, from 0
  Side side;
  float contact_time_s;
  float flight_time_s;
  float cadence_spm;
  float step_length_m;
  float peak_force_bw;
  float strike_index_pct;
  float knee_angle_ic_rad;
  float knee_angle_peak_rad;
  float peak_knee_moment_nm_per_kg;
  float peak_pfjrf_bw;
  float peak_pfj_stress_mpa;
  float stress_time_integral_mpa_s;
  float itb_zone_time_s;
  float valr_bw_per_s;
  float vilr_bw_per_s;
  float pfjrf_impulse_bw_s;   // MODEL.md §4: ∫PFJRF dt over stance
  float cop_path_length_m;    // MODEL.md §1/§9: CoP path over stance (cop_path.hpp)
  float cop_ml_excursion_m;   // MODEL.md §1: medio-lateral CoP excursion, IC → 30 % of stance
  float pta_g;                // peak tibial acceleration; NaN below the PTA rate (MODEL.md §0)
};

// Rule identifiers: R1..R10 of MODEL.md §9, then sensor faults.
enum class RuleId : std::uint8_t {
  kPfjOverload = 1,
  kLowCadence = 2,
  kImpact = 3,
  kSessionSpike = 4,
  kWeeklyJump = 5,
  kItbsPattern = 6,
  kFatigueDrift = 7,
  kAsymmetry = 8,
  kShoes = 9,
  kPainReport = 10,
  kSensorDropout = 20,
  kSensorSaturation = 21,
  kStuckCell = 22,
  kClockJump = 23,
};

// Every rule, for those who enumerate them (metrics), and a dense index for flat per-rule arrays.
inline constexpr std::array<RuleId, 14> kAllRules = {
    RuleId::kPfjOverload,   RuleId::kLowCadence,     RuleId::kImpact,          RuleId::kSessionSpike,
    RuleId::kWeeklyJump,    RuleId::kItbsPattern,    RuleId::kFatigueDrift,    RuleId::kAsymmetry,
    RuleId::kShoes,         RuleId::kPainReport,     RuleId::kSensorDropout,   RuleId::kSensorSaturation,
    RuleId::kStuckCell,     RuleId::kClockJump};
constexpr std::size_t rule_slot(RuleId id) {
  const auto v = static_cast<std::size_t>(id);
  return v <= 10 ? v - 1 : v - 20 + 10;
}
static_assert(rule_slot(RuleId::kClockJump) == kAllRules.size() - 1);

enum class Severity : std::uint8_t { kInfo = 1, kWarn = 2, kHigh = 3 };
enum class EventPhase : std::uint8_t { kOnset = 1, kClear = 2 };
enum class EvidenceTag : std::uint8_t { kProspective = 1, kLab = 2, kHeuristic = 3 };

// Static description of a rule: names, evidence and advice. Texts are string literals, so an
// event can carry a RuleId and the publisher looks the words up without copying strings.
struct RuleInfo {
  RuleId id;
  const char* code;  // "R10", "F1" ...
  const char* name;  // "pain_report"
  EvidenceTag evidence;
  const char* source;
  const char* advice;
};
const RuleInfo& rule_info(RuleId id);

struct Evidence {
  const char* metric;  // string literal naming the metric, e.g. "pain_score"
  float value;
  float baseline;   // NaN when the rule has no baseline
  float threshold;
};
inline constexpr int kMaxEvidence = 4;

struct RiskEvent {
  std::int64_t t_us;
  RuleId rule;
  Severity severity;
  EventPhase phase;
  Side side;
  std::uint32_t device;  // device index for sensor faults; UINT32_MAX otherwise
  std::uint8_t evidence_count;
  std::array<Evidence, kMaxEvidence> evidence;
  const char* model_id;  // string literal: which load model produced the values
};

struct SessionSummary {
  std::int64_t start_t_us;
  std::int64_t end_t_us;
  std::uint64_t steps;
  float distance_m;
  float duration_s;
  float stress_time_integral_mpa_s;
  float damage_index;              // MODEL.md §4: b = damage_exponents.primary (4)
  float damage_index_sensitivity;  // the same sum with b = damage_exponents.sensitivity (8)
  float pfjrf_impulse_bw_s;        // Σ of the steps' PFJRF impulses
  std::uint32_t risk_events;
  bool ended_explicitly;  // console end message, as opposed to inactivity or shutdown
  // MODEL.md §4: uncoupled EWMA acute:chronic ratio of daily km including this session, from
  // the runner's stored history (TrainingHistory); NaN without one. A metric, never an alert.
  float acute_chronic_ratio;
};

using OutputBody = std::variant<FusedState, StepMetrics, RiskEvent, SessionSummary>;

struct Output {
  std::uint32_t runner;
  std::uint32_t station;
  // Both receive times are this process's steady clock, for latency only (never read by the
  // model, never published as data). A sample waits in the runner's reorder window until a later
  // arrival shows it complete, so an output has two:
  std::int64_t source_arrival_t_us;   // the sample that caused it: source → publish is its age
  // the sample whose arrival released it: release → publish is the pipeline's own latency.
  // 0 when a timer released it (idle flush, shutdown) or nothing arrived (stale notice).
  std::int64_t release_arrival_t_us;
  OutputBody body;
};
static_assert(std::is_trivially_copyable_v<Output>, "outputs are copied through rings");

// Where a session puts its outputs. One sample can release many reordered samples (and a flush
// a whole window of them), so the session streams outputs instead of filling a fixed array:
// the daemon's worker implements this by pushing into its output ring (drops counted there).
// emit() must not call into a RunnerSession: sessions on one thread share a scratch buffer for
// the rule events being emitted (session.cpp, event_scratch).
class OutputSink {
 public:
  virtual void emit(const Output& o) = 0;

 protected:
  ~OutputSink() = default;
};

// Fixed-capacity sink, for tests and tools: no allocation, overflow is counted.
template <int N>
class OutputBuffer final : public OutputSink {
 public:
  void emit(const Output& o) override { (void)push(o); }
  // Returns false (and counts) when full; the caller decides nothing, the counter reports it.
  bool push(const Output& o) {
    if (size_ == N) {
      ++overflow_;
      return false;
    }
    items_[size_++] = o;
    return true;
  }
  int size() const { return size_; }
  const Output& operator[](int i) const { return items_[i]; }
  void clear() { size_ = 0; }
  std::uint64_t overflow() const { return overflow_; }

 private:
  std::array<Output, N> items_{};
  int size_ = 0;
  std::uint64_t overflow_ = 0;
};
inline constexpr int kSessionOutputCapacity = 256;
using SessionOutputs = OutputBuffer<kSessionOutputCapacity>;

}  // namespace kneeload::fusion
