// Rule table (MODEL.md §9 R1..R10, faults F1..F4) and the device-role mapping.
#include <gtest/gtest.h>

#include <cctype>
#include <cstring>
#include <set>
#include <string>

#include "kneeload/fusion/output.hpp"
#include "kneeload/fusion/session.hpp"

namespace kneeload::fusion {
namespace {

struct Expected {
  RuleId id;
  const char* code;
  const char* name;
  EvidenceTag tag;
};

// Codes, names and tags as MODEL.md §9 gives them; a two-tag rule carries the weaker tag.
constexpr Expected kExpected[] = {
    {RuleId::kPfjOverload, "R1", "pfj_overload", EvidenceTag::kHeuristic},
    {RuleId::kLowCadence, "R2", "low_cadence", EvidenceTag::kLab},
    {RuleId::kImpact, "R3", "impact", EvidenceTag::kProspective},
    {RuleId::kSessionSpike, "R4", "session_spike", EvidenceTag::kProspective},
    {RuleId::kWeeklyJump, "R5", "weekly_jump", EvidenceTag::kProspective},
    {RuleId::kItbsPattern, "R6", "itbs_pattern", EvidenceTag::kHeuristic},
    {RuleId::kFatigueDrift, "R7", "fatigue_drift", EvidenceTag::kProspective},
    {RuleId::kAsymmetry, "R8", "asymmetry", EvidenceTag::kHeuristic},
    {RuleId::kShoes, "R9", "shoes", EvidenceTag::kHeuristic},
    {RuleId::kPainReport, "R10", "pain_report", EvidenceTag::kHeuristic},
    {RuleId::kSensorDropout, "F1", "sensor_dropout", EvidenceTag::kHeuristic},
    {RuleId::kSensorSaturation, "F2", "sensor_saturation", EvidenceTag::kHeuristic},
    {RuleId::kStuckCell, "F3", "stuck_cell", EvidenceTag::kHeuristic},
    {RuleId::kClockJump, "F4", "clock_jump", EvidenceTag::kHeuristic},
};

bool is_snake_case(const char* s) {
  if (s == nullptr || *s == '\0') return false;
  for (const char* c = s; *c != '\0'; ++c) {
    if (!(std::islower(static_cast<unsigned char>(*c)) || *c == '_')) return false;
  }
  return true;
}

TEST(RuleInfo, EveryRuleHasItsCodeNameTagSourceAndAdvice) {
  std::set<std::string> codes, names;
  for (const Expected& e : kExpected) {
    const RuleInfo& info = rule_info(e.id);
    SCOPED_TRACE(e.code);
    EXPECT_EQ(info.id, e.id);
    EXPECT_STREQ(info.code, e.code);
    EXPECT_STREQ(info.name, e.name);
    EXPECT_TRUE(is_snake_case(info.name)) << "got " << info.name;
    EXPECT_EQ(info.evidence, e.tag) << "expected tag " << static_cast<int>(e.tag) << ", got "
                                    << static_cast<int>(info.evidence);
    ASSERT_NE(info.source, nullptr);
    EXPECT_GT(std::strlen(info.source), 10u) << "source: " << info.source;
    ASSERT_NE(info.advice, nullptr);
    EXPECT_GT(std::strlen(info.advice), 10u) << "advice: " << info.advice;
    codes.insert(info.code);
    names.insert(info.name);
  }
  EXPECT_EQ(codes.size(), std::size(kExpected)) << "codes must be unique";
  EXPECT_EQ(names.size(), std::size(kExpected)) << "names must be unique";
}

TEST(RuleInfo, PainAdviceSaysStopAndSeeAClinicianIfItPersists) {
  EXPECT_STREQ(rule_info(RuleId::kPainReport).advice,
               "Stop running. If knee pain persists or worsens, see a clinician.");
  EXPECT_STREQ(rule_info(RuleId::kSensorDropout).advice, "Check the device battery and connection.");
}

TEST(RuleInfo, AdviceNeverDiagnoses) {
  // MODEL.md: nothing the daemon says is a diagnosis ("check or replace shoes", never "you
  // over-pronate"); injury names belong in rule names, not in what the runner reads.
  const char* banned[] = {"syndrome", "pronat", "injur", "fracture", "diagnos", "you have"};
  for (const Expected& e : kExpected) {
    std::string advice = rule_info(e.id).advice;
    for (char& c : advice) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const char* b : banned) {
      EXPECT_EQ(advice.find(b), std::string::npos) << e.code << " advice mentions '" << b
                                                   << "': " << rule_info(e.id).advice;
    }
  }
}

TEST(RuleInfo, UnknownIdGivesAFallbackNotACrash) {
  for (int raw : {0, 11, 19, 24, 255}) {
    const RuleInfo& info = rule_info(static_cast<RuleId>(raw));
    EXPECT_STREQ(info.name, "unknown_rule") << "id " << raw;
    EXPECT_NE(info.code, nullptr);
    EXPECT_NE(info.source, nullptr);
    EXPECT_NE(info.advice, nullptr);
  }
}

TEST(RoleOf, MapsKindAndSideToTheDeviceSlot) {
  EXPECT_EQ(role_of(SensorKind::kInsole, Side::kLeft), DeviceRole::kInsoleLeft);
  EXPECT_EQ(role_of(SensorKind::kInsole, Side::kRight), DeviceRole::kInsoleRight);
  EXPECT_EQ(role_of(SensorKind::kKnee, Side::kLeft), DeviceRole::kKneeLeft);
  EXPECT_EQ(role_of(SensorKind::kKnee, Side::kRight), DeviceRole::kKneeRight);
  EXPECT_EQ(role_of(SensorKind::kTreadmill, Side::kNone), DeviceRole::kTreadmill);
  EXPECT_EQ(role_of(SensorKind::kConsole, Side::kNone), DeviceRole::kConsole);
  EXPECT_EQ(role_of(SensorKind::kTreadmill, Side::kLeft), DeviceRole::kTreadmill);
}

}  // namespace
}  // namespace kneeload::fusion
