// Static rule descriptions (MODEL.md §9 table R1..R10, then sensor faults F1..F4) and the
// device-role mapping. Everything here is a string literal in static storage, so an event can
// carry a RuleId and the publisher looks the words up without copying or allocating.
//
// Evidence tags: where MODEL.md gives two tags ("[L]/[H]"), the entry carries the weaker one.
// The study behind the direction of effect is lab work, but the cutoff that fires the rule is an
// engineering default, and an event must not sound surer than its cutoff. The source text keeps
// both. Advice follows MODEL.md's advice column and its introduction: plain guidance for the
// runner, never a diagnosis. Sensor-fault advice is for the operator.
#include <array>
#include <cassert>

#include "kneeload/fusion/output.hpp"
#include "kneeload/fusion/sample.hpp"
#include "kneeload/fusion/output.hpp"

namespace kneeload::fusion {
namespace {

constexpr std::array<RuleInfo, 14> kRules{{
    {RuleId::kPfjOverload, "R1", "pfj_overload", EvidenceTag::kHeuristic,
     "Lenhart et al. 2014 MSSE 46:557; Willson et al. 2014 Clin Biomech 29:243 [L]; "
     "+15 % over baseline trigger [H]",
     "Your knee load is rising: raise your cadence by 5-10 % or slow down."},
    {RuleId::kLowCadence, "R2", "low_cadence", EvidenceTag::kLab,
     "Heiderscheit et al. 2011 MSSE 43:296; Thakkar et al. 2019 MSSE 51:1444 [L]",
     "Try shorter, quicker steps: raise your cadence by 5-10 %."},
    {RuleId::kImpact, "R3", "impact", EvidenceTag::kProspective,
     "Davis et al. 2016 (VALR > 66 BW/s) [P, weak]; Schmida et al. 2022 no association [P]; "
     "Crowell & Davis 2010 (PTA > 8 g) [L]",
     "Try to land more softly, and check your shoes."},
    {RuleId::kSessionSpike, "R4", "session_spike", EvidenceTag::kProspective,
     "Frandsen et al. 2025 BJSM 59:1203 [P]",
     "This run is much longer than your longest run of the last 30 days: consider shortening "
     "the session."},
    {RuleId::kWeeklyJump, "R5", "weekly_jump", EvidenceTag::kProspective,
     "Nielsen et al. 2014 JOSPT [P, weak]",
     "Your weekly distance is rising quickly: build up more gradually."},
    {RuleId::kItbsPattern, "R6", "itbs_pattern", EvidenceTag::kHeuristic,
     "Orchard et al. 1996 AJSM 24:375; Aderem & Louw 2015 [L]; zone-time trigger [H]",
     "Stop and stretch. Strengthening your hip muscles may help."},
    {RuleId::kFatigueDrift, "R7", "fatigue_drift", EvidenceTag::kProspective,
     "Apte et al. 2021 Front Physiol 12:646042; Sports Biomech 2024 meta-analysis "
     "[P, direction only]",
     "Your stride shows signs of fatigue: slow down or stop."},
    {RuleId::kAsymmetry, "R8", "asymmetry", EvidenceTag::kHeuristic,
     "Girard et al. 2019 Front Sports Act Living 1:36 (healthy ranges) [L]; thresholds [H]",
     "Your left and right steps differ. If this persists, see a clinician."},
    {RuleId::kShoes, "R9", "shoes", EvidenceTag::kHeuristic,
     "Escamilla-Martinez et al. 2020 IJERPH [L]; Nielsen et al. 2014 BJSM 48:440; "
     "thresholds [H]",
     "Check your shoes, and replace them if they are worn."},
    {RuleId::kPainReport, "R10", "pain_report", EvidenceTag::kHeuristic,
     "Engineering default: knee pain >= 3/10 [H]",
     "Stop running. If knee pain persists or worsens, see a clinician."},
    {RuleId::kSensorDropout, "F1", "sensor_dropout", EvidenceTag::kHeuristic,
     "Engineering default: device silent longer than the stale timeout [H]",
     "Check the device battery and connection."},
    {RuleId::kSensorSaturation, "F2", "sensor_saturation", EvidenceTag::kHeuristic,
     "MODEL.md section 1: saturated cells clip peak force; Morin et al. 2005 J Appl Biomech "
     "21:167 fallback [L]",
     "Pressure cells are at the top of their range: check the insole size and calibration."},
    {RuleId::kStuckCell, "F3", "stuck_cell", EvidenceTag::kHeuristic,
     "Engineering default: a cell that does not change across steps [H]",
     "A pressure cell reads a constant value: check or replace the insole."},
    {RuleId::kClockJump, "F4", "clock_jump", EvidenceTag::kHeuristic,
     "Engineering default: device time inconsistent with arrival time [H]",
     "The device clock jumped: check the device firmware and its time source."},
}};

// Returned for an id outside the table (a newer peer, a corrupted value): never a crash.
constexpr RuleInfo kUnknownRule{static_cast<RuleId>(0), "?", "unknown_rule",
                                EvidenceTag::kHeuristic, "unknown rule id",
                                "No advice available for this event."};

}  // namespace

const RuleInfo& rule_info(RuleId id) {
  for (const RuleInfo& info : kRules) {
    if (info.id == id) return info;
  }
  return kUnknownRule;
}

// Insoles and knee devices need a side; config validation refuses them without one. An unsided
// insole or knee maps to the left slot (asserted in debug builds), since the role enum has no
// "invalid" value to return.
DeviceRole role_of(SensorKind kind, Side side) {
  switch (kind) {
    case SensorKind::kInsole:
      assert(side != Side::kNone);
      return side == Side::kRight ? DeviceRole::kInsoleRight : DeviceRole::kInsoleLeft;
    case SensorKind::kKnee:
      assert(side != Side::kNone);
      return side == Side::kRight ? DeviceRole::kKneeRight : DeviceRole::kKneeLeft;
    case SensorKind::kTreadmill:
      return DeviceRole::kTreadmill;
    case SensorKind::kConsole:
      return DeviceRole::kConsole;
  }
  return DeviceRole::kConsole;
}

}  // namespace kneeload::fusion
