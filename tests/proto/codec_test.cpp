// Codec helpers: stable reject names, the device table lookup, topic strings.
#include <array>
#include <cctype>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "kneeload/proto/codec.hpp"

namespace kneeload::proto {
namespace {

TEST(RejectName, EveryReasonHasItsStableSnakeCaseName) {
  // These are metric labels and status-message names: a rename breaks dashboards.
  const std::array<const char*, kRejectCount> expected = {
      "oversize",       "malformed",           "wrong_version",    "bad_device_id",
      "unknown_device", "key_not_allowed",     "empty_frame",      "too_many_samples", "duplicate_seq",
      "reordered_seq",  "missing_payload",     "kind_mismatch",    "non_finite",
      "out_of_range",   "cell_count_mismatch", "time_backwards"};
  std::set<std::string> seen;
  for (int r = 0; r < kRejectCount; ++r) {
    const std::string name = reject_name(static_cast<Reject>(r));
    EXPECT_EQ(name, expected[static_cast<std::size_t>(r)]) << "reason " << r;
    EXPECT_TRUE(seen.insert(name).second) << "duplicate name " << name;
    for (const char c : name) {
      EXPECT_TRUE(std::islower(static_cast<unsigned char>(c)) || c == '_')
          << "'" << name << "' is not snake_case";
    }
  }
}

TEST(RejectName, FrameLevelReasonsEndAtDuplicateAndReordered) {
  EXPECT_TRUE(is_frame_reject(Reject::kOversize));
  EXPECT_TRUE(is_frame_reject(Reject::kReorderedSeq));
  EXPECT_FALSE(is_frame_reject(Reject::kMissingPayload));
  EXPECT_FALSE(is_frame_reject(Reject::kTimeBackwards));
}

DeviceInfo info(std::uint32_t device) {
  DeviceInfo i;
  i.device = device;
  return i;
}

TEST(DeviceTable, FindsEveryIdWhateverTheInsertionOrder) {
  const std::vector<std::string> ids = {"zeta", "alpha", "mid", "alpha-2", "b", "", "alph"};
  std::vector<std::pair<std::string, DeviceInfo>> entries;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    entries.emplace_back(ids[i], info(static_cast<std::uint32_t>(i)));
  }
  const DeviceTable table(entries);
  ASSERT_EQ(table.size(), ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const DeviceInfo* found = table.find(ids[i]);
    ASSERT_NE(found, nullptr) << "id '" << ids[i] << "'";
    EXPECT_EQ(found->device, i) << "id '" << ids[i] << "'";
  }
}

TEST(DeviceTable, ReturnsNullForIdsNotRegistered) {
  const DeviceTable table({{"alpha", info(0)}, {"beta", info(1)}});
  for (const std::string_view missing : {"alph", "alphaa", "Alpha", "gamma", "a", ""}) {
    EXPECT_EQ(table.find(missing), nullptr) << "id '" << missing << "'";
  }
  // Lengths matter, not only characters: a string_view with an embedded NUL is another id.
  EXPECT_EQ(table.find(std::string_view("beta\0", 5)), nullptr);
  EXPECT_EQ(DeviceTable().find("alpha"), nullptr);
  EXPECT_EQ(DeviceTable().size(), 0u);
}

TEST(Topic, EachOutputTypeHasItsTopic) {
  EXPECT_EQ(topic_of(fusion::OutputBody{fusion::FusedState{}}), Topic::kState);
  EXPECT_EQ(topic_of(fusion::OutputBody{fusion::StepMetrics{}}), Topic::kStep);
  EXPECT_EQ(topic_of(fusion::OutputBody{fusion::RiskEvent{}}), Topic::kRisk);
  EXPECT_EQ(topic_of(fusion::OutputBody{fusion::SessionSummary{}}), Topic::kSession);
}

TEST(Topic, PrefixesAreThoseOfPublishProto) {
  EXPECT_STREQ(topic_prefix(Topic::kState), "state");
  EXPECT_STREQ(topic_prefix(Topic::kStep), "step");
  EXPECT_STREQ(topic_prefix(Topic::kRisk), "risk");
  EXPECT_STREQ(topic_prefix(Topic::kSession), "session");
  EXPECT_STREQ(topic_prefix(Topic::kStatus), "status");
}

std::string format(Topic t, std::string_view station, std::size_t buf_size) {
  std::vector<char> buf(buf_size, '#');
  const std::size_t n = format_topic(t, station, buf);
  return n == 0 ? std::string("<0>") : std::string(buf.data(), n);
}

TEST(Topic, FormatsPrefixSlashStation) {
  EXPECT_EQ(format(Topic::kState, "station-a", 64), "state/station-a");
  EXPECT_EQ(format(Topic::kStep, "s1", 64), "step/s1");
  EXPECT_EQ(format(Topic::kRisk, "s1", 64), "risk/s1");
  EXPECT_EQ(format(Topic::kSession, "s1", 64), "session/s1");
}

TEST(Topic, StatusTopicHasNoStation) {
  EXPECT_EQ(format(Topic::kStatus, "station-a", 64), "status");
  EXPECT_EQ(format(Topic::kStatus, "", 6), "status");
  EXPECT_EQ(format(Topic::kStatus, "", 5), "<0>");
}

TEST(Topic, ReturnsZeroWhenTheBufferIsTooSmallAndFitsExactly) {
  // "state/station-a" is 15 characters.
  EXPECT_EQ(format(Topic::kState, "station-a", 15), "state/station-a");
  EXPECT_EQ(format(Topic::kState, "station-a", 14), "<0>");
  EXPECT_EQ(format(Topic::kState, "station-a", 0), "<0>");
}

TEST(Topic, DoesNotWritePastTheReportedLength) {
  std::array<char, 32> buf{};
  buf.fill('#');
  const std::size_t n = format_topic(Topic::kStep, "ab", buf);
  ASSERT_EQ(n, 7u);
  for (std::size_t i = n; i < buf.size(); ++i) EXPECT_EQ(buf[i], '#') << "byte " << i;
}

}  // namespace
}  // namespace kneeload::proto
