// FrameDecoder: accepted samples carry the right values and registry fields; every bad frame or
// sample is refused with exactly its reason and counted once; bad input never stops good input.
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kneeload/proto/codec.hpp"
#include "test_frames.hpp"

namespace kneeload::proto {
namespace {

using namespace kneeload::proto::test;  // NOLINT(google-build-using-namespace): test builders

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

class FrameDecoderTest : public ::testing::Test {
 protected:
  DecodeResult decode_bytes(const std::string& bytes, std::size_t wire_size) {
    arrival_t_us_ += 1000;
    return decoder_.decode(as_bytes(bytes), wire_size, table_, tracks_, arrival_t_us_, out_, sender_);
  }
  DecodeResult decode_bytes(const std::string& bytes) { return decode_bytes(bytes, bytes.size()); }
  DecodeResult decode(const v1::Frame& frame) { return decode_bytes(serialize(frame)); }

  const DecoderCounters& counters() const { return decoder_.counters(); }
  std::uint64_t rejected(Reject r) const {
    return counters().rejected[static_cast<std::size_t>(r)].get();
  }

  // Every rejection counter is zero except `reason`, which is `n`.
  void expect_only_rejections(Reject reason, std::uint64_t n) const {
    for (int r = 0; r < kRejectCount; ++r) {
      const auto which = static_cast<Reject>(r);
      const std::uint64_t expected = which == reason ? n : 0;
      EXPECT_EQ(rejected(which), expected)
          << "counter " << reject_name(which) << ": expected " << expected << ", got "
          << rejected(which) << " (all: " << reject_counts(counters()) << ")";
    }
  }
  void expect_no_rejections() const {
    EXPECT_EQ(total_rejected(counters()), 0u) << "got " << reject_counts(counters());
  }

  ValidationLimits limits_;
  FrameDecoder decoder_{limits_};
  DeviceTable table_ = make_table();
  std::vector<DeviceTrack> tracks_ = std::vector<DeviceTrack>(kDeviceCapacity);
  std::vector<fusion::Sample> out_ =
      std::vector<fusion::Sample>(static_cast<std::size_t>(limits_.max_samples_per_frame));
  std::int64_t arrival_t_us_ = 5'000'000;
  const Sender* sender_ = nullptr;  // CURVE sender; null: plaintext, no key check
};

// ---------------------------------------------------------------------------------------------
// Good frames

TEST_F(FrameDecoderTest, InsoleSampleIsAcceptedWithValuesAndRegistryFields) {
  const DecodeResult r = decode(make_frame(kInsoleLeftId, 7, {insole_sample(123'456)}));
  ASSERT_FALSE(r.frame_rejected) << "reason " << reject_name(r.frame_reason);
  ASSERT_EQ(r.accepted, 1);
  EXPECT_EQ(r.samples_rejected, 0);
  const fusion::Sample& s = out_[0];
  EXPECT_EQ(s.device_t_us, 123'456);
  EXPECT_EQ(s.arrival_t_us, arrival_t_us_);
  EXPECT_EQ(s.device, kInsoleLeftDevice);
  EXPECT_EQ(s.runner, kRunner);
  EXPECT_EQ(s.station, kStation);
  EXPECT_EQ(s.device_seq, 7u);
  EXPECT_EQ(s.side, fusion::Side::kLeft);
  EXPECT_EQ(s.kind, fusion::SensorKind::kInsole);
  const auto* insole = std::get_if<fusion::InsoleSample>(&s.payload);
  ASSERT_NE(insole, nullptr) << "payload index " << s.payload.index();
  ASSERT_EQ(insole->cell_count, kInsoleCells);
  for (int i = 0; i < kInsoleCells; ++i) {
    EXPECT_EQ(insole->pressure_pa[i], 50'000.0f + 1000.0f * static_cast<float>(i)) << "cell " << i;
  }
  for (int i = kInsoleCells; i < fusion::kMaxInsoleCells; ++i) {
    EXPECT_EQ(insole->pressure_pa[i], 0.0f) << "unused cell " << i << " must be zero";
  }
  ASSERT_TRUE(insole->has_imu);
  EXPECT_EQ(insole->imu.accel_mps2[0], 12.5f);
  EXPECT_EQ(insole->imu.accel_mps2[1], -6.25f);
  EXPECT_EQ(insole->imu.accel_mps2[2], 9.81f);
  EXPECT_EQ(insole->imu.gyro_radps[0], 3.0f);
  EXPECT_EQ(insole->imu.gyro_radps[1], -1.5f);
  EXPECT_EQ(insole->imu.gyro_radps[2], 0.25f);
  EXPECT_EQ(counters().frames_received.get(), 1u);
  EXPECT_EQ(counters().frames_accepted.get(), 1u);
  EXPECT_EQ(counters().samples_accepted.get(), 1u);
  expect_no_rejections();
}

TEST_F(FrameDecoderTest, InsoleWithoutImuHasNoImu) {
  const DecodeResult r =
      decode(make_frame(kInsoleRightId, 1, {insole_sample(10, kInsoleCells, 0.0f, false)}));
  ASSERT_EQ(r.accepted, 1) << reject_counts(counters());
  const auto& insole = std::get<fusion::InsoleSample>(out_[0].payload);
  EXPECT_FALSE(insole.has_imu);
  EXPECT_EQ(out_[0].side, fusion::Side::kRight);
  EXPECT_EQ(out_[0].device, kInsoleRightDevice);
}

TEST_F(FrameDecoderTest, KneeSampleCarriesBothImusAndAngle) {
  const DecodeResult r = decode(make_frame(kKneeLeftId, 1, {knee_sample(99, 1.25f)}));
  ASSERT_EQ(r.accepted, 1) << reject_counts(counters());
  EXPECT_EQ(out_[0].kind, fusion::SensorKind::kKnee);
  const auto& knee = std::get<fusion::KneeSample>(out_[0].payload);
  EXPECT_TRUE(knee.has_imus);
  EXPECT_TRUE(knee.has_angle);
  EXPECT_EQ(knee.knee_angle_rad, 1.25f);
  EXPECT_EQ(knee.thigh.accel_mps2[0], 20.0f);
  EXPECT_EQ(knee.thigh.gyro_radps[0], 5.0f);
  EXPECT_EQ(knee.shank.accel_mps2[0], -30.0f);
  EXPECT_EQ(knee.shank.gyro_radps[1], 4.0f);
}

TEST_F(FrameDecoderTest, KneeSleeveAngleOnlyAndImuOnlyAreBothAccepted) {
  const DecodeResult r = decode(make_frame(
      kKneeLeftId, 1, {knee_sample(1, 0.3f, false, true), knee_sample(2, 0.0f, true, false)}));
  ASSERT_EQ(r.accepted, 2) << reject_counts(counters());
  const auto& sleeve = std::get<fusion::KneeSample>(out_[0].payload);
  EXPECT_FALSE(sleeve.has_imus);
  EXPECT_TRUE(sleeve.has_angle);
  EXPECT_EQ(sleeve.knee_angle_rad, 0.3f);
  const auto& imus = std::get<fusion::KneeSample>(out_[1].payload);
  EXPECT_TRUE(imus.has_imus);
  EXPECT_FALSE(imus.has_angle);
}

TEST_F(FrameDecoderTest, TreadmillConsoleAndStatusSamplesConvert) {
  ASSERT_EQ(decode(make_frame(kTreadmillId, 1, {treadmill_sample(5, 3.5f, -0.05f)})).accepted, 1);
  const auto& belt = std::get<fusion::TreadmillSample>(out_[0].payload);
  EXPECT_EQ(belt.belt_speed_mps, 3.5f);
  EXPECT_EQ(belt.incline_fraction, -0.05f);
  EXPECT_EQ(out_[0].kind, fusion::SensorKind::kTreadmill);
  EXPECT_EQ(out_[0].side, fusion::Side::kNone);

  const DecodeResult r = decode(make_frame(
      kConsoleId, 1,
      {pain_sample(6, 7, v1::SIDE_RIGHT, v1::PAIN_LOCATION_LATERAL), session_end_sample(7)}));
  ASSERT_EQ(r.accepted, 2) << reject_counts(counters());
  const auto& pain = std::get<fusion::PainReport>(out_[0].payload);
  EXPECT_EQ(pain.score, 7);
  EXPECT_EQ(pain.side, fusion::Side::kRight);
  EXPECT_EQ(pain.location, fusion::PainLocation::kLateral);
  EXPECT_EQ(out_[0].kind, fusion::SensorKind::kConsole);
  EXPECT_TRUE(std::holds_alternative<fusion::SessionEnd>(out_[1].payload));

  ASSERT_EQ(decode(make_frame(kConsoleId, 2, {status_sample(8, 0.5f, 0xA5u)})).accepted, 1);
  const auto& status = std::get<fusion::DeviceStatus>(out_[0].payload);
  EXPECT_EQ(status.battery_fraction, 0.5f);
  EXPECT_EQ(status.error_flags, 0xA5u);
  expect_no_rejections();
}

TEST_F(FrameDecoderTest, DeviceStatusIsAcceptedFromEveryKind) {
  for (const std::string_view id :
       {kInsoleLeftId, kInsoleRightId, kKneeLeftId, kTreadmillId, kConsoleId}) {
    const DecodeResult r = decode(make_frame(id, 1, {status_sample(1)}));
    EXPECT_EQ(r.accepted, 1) << "device " << id << ": " << reject_counts(counters());
  }
  expect_no_rejections();
}

TEST_F(FrameDecoderTest, RangeLimitsAreInclusive) {
  v1::Sample insole_edges = insole_sample(1, kInsoleCells, 0.0f);
  insole_edges.mutable_insole()->set_pressure_pa(kInsoleCells - 1, 2.0e6f);
  insole_edges.mutable_insole()->mutable_imu()->set_accel_x_mps2(400.0f);
  insole_edges.mutable_insole()->mutable_imu()->set_accel_y_mps2(-400.0f);
  insole_edges.mutable_insole()->mutable_imu()->set_gyro_x_radps(70.0f);
  insole_edges.mutable_insole()->mutable_imu()->set_gyro_y_radps(-70.0f);
  EXPECT_EQ(decode(make_frame(kInsoleLeftId, 1, {insole_edges})).accepted, 1);
  EXPECT_EQ(
      decode(make_frame(kKneeLeftId, 1, {knee_sample(1, -0.35f), knee_sample(2, 2.8f)})).accepted,
      2);
  EXPECT_EQ(
      decode(make_frame(kTreadmillId, 1,
                        {treadmill_sample(1, 0.0f, -0.15f), treadmill_sample(2, 12.0f, 0.40f)}))
          .accepted,
      2);
  EXPECT_EQ(
      decode(make_frame(kConsoleId, 1,
                        {pain_sample(1, 0, v1::SIDE_UNSPECIFIED, v1::PAIN_LOCATION_UNSPECIFIED),
                         pain_sample(2, 10, v1::SIDE_RIGHT, v1::PAIN_LOCATION_OTHER),
                         status_sample(3, 0.0f), status_sample(4, 1.0f)}))
          .accepted,
      4);
  expect_no_rejections();
}

TEST_F(FrameDecoderTest, EqualTimestampsAreAccepted) {
  const DecodeResult r =
      decode(make_frame(kInsoleLeftId, 1, {insole_sample(500), insole_sample(500)}));
  EXPECT_EQ(r.accepted, 2) << reject_counts(counters());
  EXPECT_EQ(decode(make_frame(kInsoleLeftId, 2, {insole_sample(500)})).accepted, 1);
  expect_no_rejections();
}

TEST_F(FrameDecoderTest, FirstSampleOfADeviceMayHaveAnyTimestamp) {
  // "any epoch": a device clock may be negative; there is no earlier sample to compare with.
  EXPECT_EQ(decode(make_frame(kInsoleLeftId, 1, {insole_sample(-9'000'000)})).accepted, 1);
  expect_no_rejections();
}

TEST_F(FrameDecoderTest, UnknownFieldsAreSkippedForForwardCompatibility) {
  std::string bytes = serialize(make_frame(kInsoleLeftId, 1, {insole_sample(1)}));
  // Field 15 varint 300, field 16 fixed32, field 17 a group holding field 1 = 5.
  bytes += std::string("\x78\xac\x02", 3);
  bytes += std::string("\x85\x01\x01\x02\x03\x04", 6);
  bytes += std::string("\x8b\x01\x08\x05\x8c\x01", 6);
  const DecodeResult r = decode_bytes(bytes);
  EXPECT_FALSE(r.frame_rejected) << reject_name(r.frame_reason);
  EXPECT_EQ(r.accepted, 1);
  expect_no_rejections();
}

TEST_F(FrameDecoderTest, LastValueOfARepeatedScalarFieldWins) {
  // protobuf semantics: version 2 then version 1 reads as version 1.
  v1::Frame first;
  first.set_protocol_version(2);
  const std::string bytes =
      serialize(first) + serialize(make_frame(kInsoleLeftId, 1, {insole_sample(1)}));
  EXPECT_EQ(decode_bytes(bytes).accepted, 1) << reject_counts(counters());
}

TEST_F(FrameDecoderTest, FrameOfExactlyMaxSamplesIsAccepted) {
  v1::Frame f = make_frame(kConsoleId, 1, {});
  for (int i = 0; i < limits_.max_samples_per_frame; ++i) *f.add_samples() = status_sample(i);
  const DecodeResult r = decode(f);
  EXPECT_FALSE(r.frame_rejected) << reject_name(r.frame_reason);
  EXPECT_EQ(r.accepted, limits_.max_samples_per_frame);
  EXPECT_EQ(out_[static_cast<std::size_t>(limits_.max_samples_per_frame - 1)].device_t_us,
            limits_.max_samples_per_frame - 1);
}

TEST_F(FrameDecoderTest, WireSizeOfExactlyMaxFrameBytesIsAccepted) {
  const std::string bytes = serialize(make_frame(kInsoleLeftId, 1, {insole_sample(1)}));
  EXPECT_EQ(decode_bytes(bytes, limits_.max_frame_bytes).accepted, 1);
  EXPECT_EQ(rejected(Reject::kOversize), 0u);
}

TEST_F(FrameDecoderTest, MoreBytesThanWireSizeClaimsIsStillOversize) {
  // A caller that under-reports wire_size must not get a frame past the arena's sizing.
  std::string bytes = serialize(make_frame(kInsoleLeftId, 1, {insole_sample(1)}));
  bytes.resize(limits_.max_frame_bytes + 1, '\0');
  const DecodeResult r = decode_bytes(bytes, 10);
  EXPECT_TRUE(r.frame_rejected);
  EXPECT_EQ(r.frame_reason, Reject::kOversize) << reject_name(r.frame_reason);
  expect_only_rejections(Reject::kOversize, 1);
}

// ---------------------------------------------------------------------------------------------
// Replay: Frame.recorded_arrival_us

// Appends field 5 (recorded_arrival_us) as a varint, the way `kneeloadctl replay` stamps a
// recorded frame without re-serialising it.
std::string with_appended_arrival(std::string bytes, std::int64_t arrival_us) {
  bytes.push_back(static_cast<char>(v1::Frame::kRecordedArrivalUsFieldNumber << 3));
  auto v = static_cast<std::uint64_t>(arrival_us);
  do {
    const auto low = static_cast<std::uint8_t>(v & 0x7Fu);
    v >>= 7;
    bytes.push_back(static_cast<char>(v != 0 ? (low | 0x80u) : low));
  } while (v != 0);
  return bytes;
}

TEST_F(FrameDecoderTest, RecordedArrivalTimeReplacesTheReceiveTimeOnEverySample) {
  v1::Frame f = make_frame(kInsoleLeftId, 1, {insole_sample(10), insole_sample(20)});
  constexpr std::int64_t kRecorded = 987'654'321'000;
  f.set_recorded_arrival_us(kRecorded);
  const DecodeResult r = decode(f);
  ASSERT_EQ(r.accepted, 2) << reject_counts(counters());
  ASSERT_NE(kRecorded, arrival_t_us_);
  EXPECT_EQ(out_[0].arrival_t_us, kRecorded) << "receive time was " << arrival_t_us_;
  EXPECT_EQ(out_[1].arrival_t_us, kRecorded);
  EXPECT_EQ(tracks_[kInsoleLeftDevice].last_arrival_t_us, kRecorded);
  // The next live frame (field absent, i.e. 0) gets the receive time again.
  ASSERT_EQ(decode(make_frame(kInsoleLeftId, 2, {insole_sample(30)})).accepted, 1);
  EXPECT_EQ(out_[0].arrival_t_us, arrival_t_us_);
  expect_no_rejections();
}

TEST_F(FrameDecoderTest, RecordedArrivalAppendedToTheBytesOverridesAnEarlierValue) {
  v1::Frame f = make_frame(kConsoleId, 1, {pain_sample(5)});
  f.set_recorded_arrival_us(111);
  // Last value wins, as in protobuf; a negative int64 is a 10-byte varint.
  for (const std::int64_t stamp : {std::int64_t{5'000'000'123}, std::int64_t{-42}}) {
    const std::string bytes = with_appended_arrival(serialize(f), stamp);
    v1::Frame reference;
    ASSERT_TRUE(reference.ParseFromString(bytes));
    ASSERT_EQ(reference.recorded_arrival_us(), stamp) << "the generated parser agrees";
    ASSERT_EQ(decode_bytes(bytes).accepted, 1) << reject_counts(counters());
    EXPECT_EQ(out_[0].arrival_t_us, stamp);
    f.set_seq(f.seq() + 1);
  }
  expect_no_rejections();
}

TEST_F(FrameDecoderTest, RecordedArrivalWithAnotherWireTypeIsSkippedLikeAnUnknownField) {
  // Field 5 as a length-delimited field (2 bytes): protobuf keeps it as unknown, so do we.
  const std::string bytes =
      serialize(make_frame(kConsoleId, 1, {pain_sample(5)})) + std::string("\x2a\x02\x01\x02", 4);
  ASSERT_EQ(decode_bytes(bytes).accepted, 1) << reject_counts(counters());
  EXPECT_EQ(out_[0].arrival_t_us, arrival_t_us_);
  expect_no_rejections();
}

TEST_F(FrameDecoderTest, TruncatedRecordedArrivalIsMalformed) {
  std::string bytes = with_appended_arrival(serialize(make_frame(kConsoleId, 1, {pain_sample(5)})),
                                            5'000'000'123);
  bytes.pop_back();  // the varint's last byte still has its continuation bit clear: drop it
  const DecodeResult r = decode_bytes(bytes);
  EXPECT_TRUE(r.frame_rejected);
  expect_only_rejections(Reject::kMalformed, 1);
}

// ---------------------------------------------------------------------------------------------
// Sequence numbers

TEST_F(FrameDecoderTest, SeqGapIsCountedAndTheFrameAccepted) {
  ASSERT_EQ(decode(make_frame(kInsoleLeftId, 1, {insole_sample(1)})).accepted, 1);
  ASSERT_EQ(decode(make_frame(kInsoleLeftId, 5, {insole_sample(2)})).accepted, 1);
  EXPECT_EQ(counters().seq_gap_frames.get(), 3u) << "frames 2, 3 and 4 are missing";
  ASSERT_EQ(decode(make_frame(kInsoleLeftId, 6, {insole_sample(3)})).accepted, 1);
  EXPECT_EQ(counters().seq_gap_frames.get(), 3u) << "6 follows 5: no new gap";
  expect_no_rejections();
}

TEST_F(FrameDecoderTest, FirstFrameOfADeviceIsNotAGapWhateverItsSeq) {
  ASSERT_EQ(decode(make_frame(kInsoleLeftId, 1000, {insole_sample(1)})).accepted, 1);
  EXPECT_EQ(counters().seq_gap_frames.get(), 0u);
}

TEST_F(FrameDecoderTest, SeqZeroAfterHigherSeqIsARestartThatResetsTheClockCheck) {
  ASSERT_EQ(decode(make_frame(kInsoleLeftId, 100, {insole_sample(5'000'000)})).accepted, 1);
  // The device rebooted: seq and clock start again.
  const DecodeResult restart = decode(make_frame(kInsoleLeftId, 0, {insole_sample(10)}));
  EXPECT_FALSE(restart.frame_rejected) << reject_name(restart.frame_reason);
  EXPECT_EQ(restart.accepted, 1) << reject_counts(counters());
  EXPECT_EQ(counters().device_restarts.get(), 1u);
  EXPECT_EQ(counters().seq_gap_frames.get(), 0u);
  // The clock check resumes from the new clock.
  const DecodeResult back = decode(make_frame(kInsoleLeftId, 1, {insole_sample(9)}));
  EXPECT_EQ(back.accepted, 0);
  expect_only_rejections(Reject::kTimeBackwards, 1);
  // And seq 0 again is a duplicate of the restart frame, not a second restart.
  ASSERT_EQ(decode(make_frame(kInsoleLeftId, 2, {insole_sample(20)})).accepted, 1);
  EXPECT_EQ(decode(make_frame(kInsoleLeftId, 2, {insole_sample(30)})).frame_reason,
            Reject::kDuplicateSeq);
  EXPECT_EQ(counters().device_restarts.get(), 1u);
}

TEST_F(FrameDecoderTest, RepeatedSeqZeroIsADuplicate) {
  ASSERT_EQ(decode(make_frame(kInsoleLeftId, 0, {insole_sample(1)})).accepted, 1);
  const DecodeResult r = decode(make_frame(kInsoleLeftId, 0, {insole_sample(2)}));
  EXPECT_TRUE(r.frame_rejected);
  expect_only_rejections(Reject::kDuplicateSeq, 1);
  EXPECT_EQ(counters().device_restarts.get(), 0u);
}

TEST_F(FrameDecoderTest, FrameWhoseSamplesAreAllRejectedStillAdvancesSeq) {
  ASSERT_EQ(decode(make_frame(kInsoleLeftId, 1, {insole_sample(1)})).accepted, 1);
  const DecodeResult bad = decode(make_frame(kInsoleLeftId, 2, {insole_sample(2, 15)}));
  EXPECT_FALSE(bad.frame_rejected);
  EXPECT_EQ(bad.accepted, 0);
  EXPECT_EQ(bad.samples_rejected, 1);
  EXPECT_EQ(tracks_[kInsoleLeftDevice].last_seq, 2u);
  // A resend of frame 2 is a duplicate; frame 3 follows without a gap.
  EXPECT_EQ(decode(make_frame(kInsoleLeftId, 2, {insole_sample(3)})).frame_reason,
            Reject::kDuplicateSeq);
  EXPECT_EQ(decode(make_frame(kInsoleLeftId, 3, {insole_sample(4)})).accepted, 1);
  EXPECT_EQ(counters().seq_gap_frames.get(), 0u);
  EXPECT_EQ(counters().frames_accepted.get(), 2u) << "frame 2 had no accepted sample";
}

TEST_F(FrameDecoderTest, SequenceIsTrackedPerDevice) {
  ASSERT_EQ(decode(make_frame(kInsoleLeftId, 50, {insole_sample(1)})).accepted, 1);
  ASSERT_EQ(decode(make_frame(kInsoleRightId, 3, {insole_sample(1)})).accepted, 1);
  ASSERT_EQ(decode(make_frame(kInsoleRightId, 4, {insole_sample(2)})).accepted, 1);
  EXPECT_EQ(tracks_[kInsoleLeftDevice].last_seq, 50u);
  EXPECT_EQ(tracks_[kInsoleRightDevice].last_seq, 4u);
  EXPECT_EQ(tracks_[kInsoleRightDevice].last_arrival_t_us, arrival_t_us_);
  expect_no_rejections();
}

// ---------------------------------------------------------------------------------------------
// A frame mixing good and bad samples

TEST_F(FrameDecoderTest, MixedFrameKeepsTheGoodSamplesInOrder) {
  v1::Sample nan = insole_sample(20);
  nan.mutable_insole()->set_pressure_pa(3, kNaN);
  v1::Sample too_high = insole_sample(40);
  too_high.mutable_insole()->set_pressure_pa(0, 2.5e6f);
  const DecodeResult r = decode(
      make_frame(kInsoleLeftId, 1,
                 {insole_sample(10), nan, insole_sample(30), knee_sample(35), too_high,
                  insole_sample(50), insole_sample(45), insole_sample(60, 12), status_sample(70)}));
  EXPECT_FALSE(r.frame_rejected);
  ASSERT_EQ(r.accepted, 4) << reject_counts(counters());
  EXPECT_EQ(r.samples_rejected, 5);
  const std::int64_t expected_t[] = {10, 30, 50, 70};
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(out_[i].device_t_us, expected_t[i]) << "accepted sample " << i;
  }
  EXPECT_TRUE(std::holds_alternative<fusion::DeviceStatus>(out_[3].payload));
  EXPECT_EQ(rejected(Reject::kNonFinite), 1u);
  EXPECT_EQ(rejected(Reject::kKindMismatch), 1u);
  EXPECT_EQ(rejected(Reject::kOutOfRange), 1u);
  EXPECT_EQ(rejected(Reject::kTimeBackwards), 1u) << "45 after 50";
  EXPECT_EQ(rejected(Reject::kCellCountMismatch), 1u);
  EXPECT_EQ(total_rejected(counters()), 5u) << reject_counts(counters());
  EXPECT_EQ(counters().samples_accepted.get(), 4u);
  EXPECT_EQ(counters().frames_accepted.get(), 1u);
  EXPECT_EQ(tracks_[kInsoleLeftDevice].last_t_us, 70);
}

TEST_F(FrameDecoderTest, RejectedSampleDoesNotMoveTheClock) {
  // A rejected sample with a far-future time must not make the next good sample "backwards".
  v1::Sample future_nan = insole_sample(9'000'000);
  future_nan.mutable_insole()->set_pressure_pa(0, kNaN);
  const DecodeResult r =
      decode(make_frame(kInsoleLeftId, 1, {insole_sample(10), future_nan, insole_sample(20)}));
  EXPECT_EQ(r.accepted, 2);
  expect_only_rejections(Reject::kNonFinite, 1);
}

// ---------------------------------------------------------------------------------------------
// last_reject()

TEST_F(FrameDecoderTest, LastRejectRecordsReasonDeviceSeqAndTime) {
  decode(make_frame(kInsoleLeftId, 42, {insole_sample(777, 15)}));
  const RejectDetail& d = decoder_.last_reject();
  EXPECT_EQ(d.reason, Reject::kCellCountMismatch) << reject_name(d.reason);
  EXPECT_STREQ(d.device_id, std::string(kInsoleLeftId).c_str());
  EXPECT_EQ(d.seq, 42u);
  EXPECT_EQ(d.t_us, 777);
}

TEST_F(FrameDecoderTest, LastRejectTruncatesALongDeviceIdAndTerminatesIt) {
  const std::string long_id(kMaxDeviceIdBytes + 20, 'x');
  decode(make_frame(long_id, 3, {insole_sample(1)}));
  const RejectDetail& d = decoder_.last_reject();
  EXPECT_EQ(d.reason, Reject::kBadDeviceId) << reject_name(d.reason);
  EXPECT_EQ(std::strlen(d.device_id), kMaxDeviceIdBytes);
  EXPECT_EQ(std::string(d.device_id), long_id.substr(0, kMaxDeviceIdBytes));
  // A shorter id afterwards is not polluted by the longer one.
  decode(make_frame("nobody", 1, {insole_sample(1)}));
  EXPECT_STREQ(decoder_.last_reject().device_id, "nobody");
}

TEST_F(FrameDecoderTest, LastRejectOfAMalformedFrameHasNoDeviceId) {
  decode(make_frame("nobody", 1, {insole_sample(1)}));
  decode_bytes(std::string("\x0f", 1));
  EXPECT_EQ(decoder_.last_reject().reason, Reject::kMalformed);
  EXPECT_STREQ(decoder_.last_reject().device_id, "");
  EXPECT_EQ(decoder_.last_reject().seq, 0u);
}

// ---------------------------------------------------------------------------------------------
// Each bad frame between two good ones: exactly its reason, and the good ones get through.

// The good frame before the bad one leaves the insole's track at this seq and time.
constexpr std::uint32_t kSeqBefore = 10;
constexpr std::int64_t kTBeforeUs = 1'000'000;
constexpr std::uint32_t kBadSeq = kSeqBefore + 1;
constexpr std::int64_t kTBadUs = 2'000'000;
constexpr std::int64_t kTAfterUs = 3'000'000;

struct WireBytes {
  std::string bytes;
  std::size_t wire_size;
};

WireBytes wire(const v1::Frame& f) {
  std::string b = serialize(f);
  const std::size_t n = b.size();
  return {std::move(b), n};
}

// One insole sample from the usual device, changed by `edit`.
WireBytes insole_with(const std::function<void(v1::Sample&)>& edit) {
  v1::Sample s = insole_sample(kTBadUs);
  edit(s);
  return wire(make_frame(kInsoleLeftId, kBadSeq, {s}));
}

WireBytes one_sample(std::string_view device, const v1::Sample& s) {
  return wire(make_frame(device, kBadSeq, {s}));
}

struct BadFrameCase {
  const char* name;
  Reject reason;
  std::function<WireBytes()> make;
};

std::ostream& operator<<(std::ostream& os, const BadFrameCase& c) { return os << c.name; }

std::vector<BadFrameCase> bad_frame_cases() {
  using R = Reject;
  std::vector<BadFrameCase> c;
  // Frame level, before parsing.
  c.push_back({"oversize_wire_size", R::kOversize, [] {
                 WireBytes w = wire(make_frame(kInsoleLeftId, kBadSeq, {insole_sample(kTBadUs)}));
                 w.wire_size = ValidationLimits{}.max_frame_bytes + 1;  // as ZeroMQ reports it
                 return w;
               }});
  // Parsing.
  c.push_back({"truncated_last_byte", R::kMalformed, [] {
                 WireBytes w = wire(make_frame(kInsoleLeftId, kBadSeq, {insole_sample(kTBadUs)}));
                 w.bytes.pop_back();
                 w.wire_size = w.bytes.size();
                 return w;
               }});
  c.push_back({"truncated_inside_device_id", R::kMalformed, [] {
                 WireBytes w = wire(make_frame(kInsoleLeftId, kBadSeq, {insole_sample(kTBadUs)}));
                 w.bytes.resize(6);
                 w.wire_size = 6;
                 return w;
               }});
  c.push_back({"garbage_wire_type_7", R::kMalformed, [] {
                 const std::string g("\x0f\xde\xad\xbe\xef", 5);
                 return WireBytes{g, g.size()};
               }});
  c.push_back({"garbage_overlong_varint", R::kMalformed, [] {
                 const std::string g("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12);
                 return WireBytes{g, g.size()};
               }});
  c.push_back({"garbage_text", R::kMalformed, [] {
                 const std::string g = "hello, world";  // 'l' reads as an end-group tag
                 return WireBytes{g, g.size()};
               }});
  c.push_back({"device_id_not_utf8", R::kMalformed, [] {
                 // Patched after serialising: protobuf would log about it while serialising.
                 WireBytes w = wire(make_frame("@@-insole", kBadSeq, {insole_sample(kTBadUs)}));
                 w.bytes.replace(w.bytes.find("@@"), 2, "\xff\xfe");
                 return w;
               }});
  c.push_back({"sample_length_past_end", R::kMalformed, [] {
                 WireBytes w = wire(make_frame(kInsoleLeftId, kBadSeq, {}));
                 w.bytes += std::string("\x22\x7f\x08\x01", 4);  // sample claims 127 bytes
                 w.wire_size = w.bytes.size();
                 return w;
               }});
  // Frame level, after parsing.
  c.push_back({"wrong_version_2", R::kWrongVersion, [] {
                 v1::Frame f = make_frame(kInsoleLeftId, kBadSeq, {insole_sample(kTBadUs)});
                 f.set_protocol_version(2);
                 return wire(f);
               }});
  c.push_back({"missing_version", R::kWrongVersion, [] {
                 v1::Frame f = make_frame(kInsoleLeftId, kBadSeq, {insole_sample(kTBadUs)});
                 f.clear_protocol_version();
                 return wire(f);
               }});
  c.push_back({"empty_device_id", R::kBadDeviceId,
               [] { return wire(make_frame("", kBadSeq, {insole_sample(kTBadUs)})); }});
  c.push_back({"device_id_65_bytes", R::kBadDeviceId, [] {
                 return wire(make_frame(std::string(kMaxDeviceIdBytes + 1, 'a'), kBadSeq,
                                        {insole_sample(kTBadUs)}));
               }});
  c.push_back({"unknown_device", R::kUnknownDevice, [] {
                 return wire(
                     make_frame("station-z/insole-left", kBadSeq, {insole_sample(kTBadUs)}));
               }});
  c.push_back({"unknown_device_prefix_of_known", R::kUnknownDevice, [] {
                 return wire(
                     make_frame(kInsoleLeftId.substr(0, 10), kBadSeq, {insole_sample(kTBadUs)}));
               }});
  c.push_back(
      {"empty_frame", R::kEmptyFrame, [] { return wire(make_frame(kInsoleLeftId, kBadSeq, {})); }});
  c.push_back({"too_many_samples", R::kTooManySamples, [] {
                 v1::Frame f = make_frame(kInsoleLeftId, kBadSeq, {});
                 for (int i = 0; i <= ValidationLimits{}.max_samples_per_frame; ++i) {
                   *f.add_samples() = status_sample(kTBadUs + i);
                 }
                 return wire(f);
               }});
  c.push_back({"duplicate_seq", R::kDuplicateSeq, [] {
                 return wire(make_frame(kInsoleLeftId, kSeqBefore, {insole_sample(kTBadUs)}));
               }});
  c.push_back({"reordered_seq", R::kReorderedSeq, [] {
                 return wire(make_frame(kInsoleLeftId, kSeqBefore - 1, {insole_sample(kTBadUs)}));
               }});
  // Sample level.
  c.push_back({"missing_payload", R::kMissingPayload, [] {
                 v1::Sample s;
                 s.set_t_us(kTBadUs);
                 return one_sample(kInsoleLeftId, s);
               }});
  c.push_back({"knee_sample_from_insole", R::kKindMismatch,
               [] { return one_sample(kInsoleLeftId, knee_sample(kTBadUs)); }});
  c.push_back({"pain_report_from_insole", R::kKindMismatch,
               [] { return one_sample(kInsoleLeftId, pain_sample(kTBadUs)); }});
  c.push_back({"session_end_from_treadmill", R::kKindMismatch,
               [] { return one_sample(kTreadmillId, session_end_sample(kTBadUs)); }});
  c.push_back({"insole_sample_from_console", R::kKindMismatch,
               [] { return one_sample(kConsoleId, insole_sample(kTBadUs)); }});
  c.push_back({"nan_pressure", R::kNonFinite, [] {
                 return insole_with(
                     [](v1::Sample& s) { s.mutable_insole()->set_pressure_pa(5, kNaN); });
               }});
  c.push_back({"pos_inf_insole_gyro", R::kNonFinite, [] {
                 return insole_with([](v1::Sample& s) {
                   s.mutable_insole()->mutable_imu()->set_gyro_z_radps(kInf);
                 });
               }});
  c.push_back({"neg_inf_insole_accel", R::kNonFinite, [] {
                 return insole_with([](v1::Sample& s) {
                   s.mutable_insole()->mutable_imu()->set_accel_y_mps2(-kInf);
                 });
               }});
  c.push_back({"nan_knee_shank", R::kNonFinite, [] {
                 v1::Sample s = knee_sample(kTBadUs);
                 s.mutable_knee()->mutable_shank()->set_gyro_x_radps(kNaN);
                 return one_sample(kKneeLeftId, s);
               }});
  c.push_back({"nan_belt_speed", R::kNonFinite,
               [] { return one_sample(kTreadmillId, treadmill_sample(kTBadUs, kNaN)); }});
  c.push_back({"inf_battery", R::kNonFinite,
               [] { return one_sample(kInsoleLeftId, status_sample(kTBadUs, kInf)); }});
  c.push_back({"nan_in_range_and_count_error_reports_nan_first", R::kNonFinite, [] {
                 return insole_with([](v1::Sample& s) {
                   s.mutable_insole()->set_pressure_pa(0, -5.0f);
                   s.mutable_insole()->set_pressure_pa(1, kNaN);
                   s.mutable_insole()->add_pressure_pa(1.0f);
                 });
               }});
  c.push_back({"negative_pressure", R::kOutOfRange, [] {
                 return insole_with(
                     [](v1::Sample& s) { s.mutable_insole()->set_pressure_pa(0, -1.0f); });
               }});
  c.push_back({"pressure_over_2_mpa", R::kOutOfRange, [] {
                 return insole_with(
                     [](v1::Sample& s) { s.mutable_insole()->set_pressure_pa(15, 2.0001e6f); });
               }});
  c.push_back({"accel_over_400_mps2", R::kOutOfRange, [] {
                 return insole_with([](v1::Sample& s) {
                   s.mutable_insole()->mutable_imu()->set_accel_z_mps2(-400.5f);
                 });
               }});
  c.push_back({"gyro_over_70_radps", R::kOutOfRange, [] {
                 return insole_with([](v1::Sample& s) {
                   s.mutable_insole()->mutable_imu()->set_gyro_x_radps(70.5f);
                 });
               }});
  c.push_back({"knee_angle_over_2_8_rad", R::kOutOfRange,
               [] { return one_sample(kKneeLeftId, knee_sample(kTBadUs, 2.81f)); }});
  c.push_back({"knee_angle_under_minus_0_35_rad", R::kOutOfRange,
               [] { return one_sample(kKneeLeftId, knee_sample(kTBadUs, -0.36f)); }});
  c.push_back({"knee_thigh_without_shank", R::kOutOfRange, [] {
                 v1::Sample s = knee_sample(kTBadUs);
                 s.mutable_knee()->clear_shank();
                 return one_sample(kKneeLeftId, s);
               }});
  c.push_back({"knee_shank_without_thigh", R::kOutOfRange, [] {
                 v1::Sample s = knee_sample(kTBadUs);
                 s.mutable_knee()->clear_thigh();
                 return one_sample(kKneeLeftId, s);
               }});
  c.push_back({"knee_without_imus_or_angle", R::kOutOfRange,
               [] { return one_sample(kKneeLeftId, knee_sample(kTBadUs, 0.0f, false, false)); }});
  c.push_back({"knee_imu_gyro_over_70_radps", R::kOutOfRange, [] {
                 v1::Sample s = knee_sample(kTBadUs);
                 s.mutable_knee()->mutable_thigh()->set_gyro_y_radps(-71.0f);
                 return one_sample(kKneeLeftId, s);
               }});
  c.push_back({"belt_speed_over_12_mps", R::kOutOfRange,
               [] { return one_sample(kTreadmillId, treadmill_sample(kTBadUs, 12.5f)); }});
  c.push_back({"belt_speed_negative", R::kOutOfRange,
               [] { return one_sample(kTreadmillId, treadmill_sample(kTBadUs, -0.1f)); }});
  c.push_back({"incline_over_0_40", R::kOutOfRange,
               [] { return one_sample(kTreadmillId, treadmill_sample(kTBadUs, 3.0f, 0.41f)); }});
  c.push_back({"incline_under_minus_0_15", R::kOutOfRange,
               [] { return one_sample(kTreadmillId, treadmill_sample(kTBadUs, 3.0f, -0.16f)); }});
  c.push_back({"pain_score_11", R::kOutOfRange,
               [] { return one_sample(kConsoleId, pain_sample(kTBadUs, 11)); }});
  c.push_back({"pain_side_unknown_enum", R::kOutOfRange, [] {
                 return one_sample(kConsoleId, pain_sample(kTBadUs, 3, static_cast<v1::Side>(3)));
               }});
  c.push_back({"pain_location_unknown_enum", R::kOutOfRange, [] {
                 return one_sample(kConsoleId, pain_sample(kTBadUs, 3, v1::SIDE_LEFT,
                                                           static_cast<v1::PainLocation>(6)));
               }});
  c.push_back({"pain_side_negative_enum", R::kOutOfRange, [] {
                 return one_sample(kConsoleId, pain_sample(kTBadUs, 3, static_cast<v1::Side>(-1)));
               }});
  c.push_back({"battery_over_1", R::kOutOfRange,
               [] { return one_sample(kInsoleLeftId, status_sample(kTBadUs, 1.01f)); }});
  c.push_back({"battery_negative", R::kOutOfRange,
               [] { return one_sample(kKneeLeftId, status_sample(kTBadUs, -0.01f)); }});
  c.push_back({"insole_15_of_16_cells", R::kCellCountMismatch,
               [] { return one_sample(kInsoleLeftId, insole_sample(kTBadUs, 15)); }});
  c.push_back({"insole_17_of_16_cells", R::kCellCountMismatch,
               [] { return one_sample(kInsoleLeftId, insole_sample(kTBadUs, 17)); }});
  c.push_back({"insole_40_cells_more_than_the_struct_holds", R::kCellCountMismatch,
               [] { return one_sample(kInsoleLeftId, insole_sample(kTBadUs, 40)); }});
  c.push_back({"time_backwards_by_1_us", R::kTimeBackwards,
               [] { return one_sample(kInsoleLeftId, insole_sample(kTBeforeUs - 1)); }});
  return c;
}

class BadFrameBetweenGoodFrames : public FrameDecoderTest,
                                  public ::testing::WithParamInterface<BadFrameCase> {};

TEST_P(BadFrameBetweenGoodFrames, IsRefusedWithExactlyItsReasonAndGoodFramesGetThrough) {
  const BadFrameCase& bad = GetParam();
  constexpr int kGoodSamples = 3;
  const v1::Frame before = make_frame(
      kInsoleLeftId, kSeqBefore,
      {insole_sample(kTBeforeUs - 20), insole_sample(kTBeforeUs - 10), insole_sample(kTBeforeUs)});
  const DecodeResult r1 = decode(before);
  ASSERT_EQ(r1.accepted, kGoodSamples) << reject_counts(counters());

  const WireBytes w = bad.make();
  const DecodeResult r2 = decode_bytes(w.bytes, w.wire_size);
  if (is_frame_reject(bad.reason)) {
    EXPECT_TRUE(r2.frame_rejected);
    EXPECT_EQ(r2.frame_reason, bad.reason)
        << "expected " << reject_name(bad.reason) << ", got " << reject_name(r2.frame_reason);
    EXPECT_EQ(r2.samples_rejected, 0);
  } else {
    EXPECT_FALSE(r2.frame_rejected) << "got frame reason " << reject_name(r2.frame_reason);
    EXPECT_EQ(r2.samples_rejected, 1);
  }
  EXPECT_EQ(r2.accepted, 0);
  expect_only_rejections(bad.reason, 1);
  EXPECT_EQ(decoder_.last_reject().reason, bad.reason)
      << "last_reject: expected " << reject_name(bad.reason) << ", got "
      << reject_name(decoder_.last_reject().reason);

  // A sequenced frame from the same device (sample-level rejection) consumed seq kBadSeq.
  {
    v1::Frame parsed;
    const bool same_device = parsed.ParseFromString(w.bytes) && parsed.device_id() == kInsoleLeftId;
    const std::uint32_t after_seq =
        same_device && !is_frame_reject(bad.reason) ? kBadSeq + 1 : kBadSeq;
    const v1::Frame after = make_frame(
        kInsoleLeftId, after_seq,
        {insole_sample(kTAfterUs), insole_sample(kTAfterUs + 10), insole_sample(kTAfterUs + 20)});
    const DecodeResult r3 = decode(after);
    EXPECT_FALSE(r3.frame_rejected) << "good frame after: " << reject_name(r3.frame_reason);
    EXPECT_EQ(r3.accepted, kGoodSamples) << reject_counts(counters());
  }
  EXPECT_EQ(out_[0].device_t_us, kTAfterUs);
  EXPECT_EQ(counters().frames_received.get(), 3u);
  EXPECT_EQ(counters().frames_accepted.get(), 2u);
  EXPECT_EQ(counters().samples_accepted.get(), 2u * kGoodSamples);
  EXPECT_EQ(counters().seq_gap_frames.get(), 0u);
  EXPECT_EQ(counters().device_restarts.get(), 0u);
  expect_only_rejections(bad.reason, 1);
}

INSTANTIATE_TEST_SUITE_P(EveryReason, BadFrameBetweenGoodFrames,
                         ::testing::ValuesIn(bad_frame_cases()),
                         [](const ::testing::TestParamInfo<BadFrameCase>& param_info) {
                           return std::string(param_info.param.name);
                         });

TEST(BadFrameCases, CoverEveryRejectReason) {
  std::vector<int> seen(static_cast<std::size_t>(kRejectCount), 0);
  for (const BadFrameCase& c : bad_frame_cases()) ++seen[static_cast<std::size_t>(c.reason)];
  // key_not_allowed needs a CURVE sender; the SenderKey tests below cover it.
  ++seen[static_cast<std::size_t>(Reject::kKeyNotAllowed)];
  for (int r = 0; r < kRejectCount; ++r) {
    EXPECT_GT(seen[static_cast<std::size_t>(r)], 0)
        << "no bad-frame case for " << reject_name(static_cast<Reject>(r));
  }
}

// ---------------------------------------------------------------------------------------------
// CURVE senders: a device key speaks only for its own device; a gateway key for devices
// without a key of their own; a key the registry no longer knows for nobody.

class SenderKeyTest : public FrameDecoderTest {
 protected:
  SenderKeyTest() {
    // The right insole is pinned to its own key; every other device is not.
    std::vector<std::pair<std::string, DeviceInfo>> entries;
    DeviceInfo right = device_info(kInsoleRightDevice, fusion::SensorKind::kInsole, fusion::Side::kRight, kInsoleCells);
    right.key_pinned = true;
    entries.emplace_back(std::string(kInsoleRightId), right);
    entries.emplace_back(std::string(kInsoleLeftId), device_info(kInsoleLeftDevice, fusion::SensorKind::kInsole,
                                                                 fusion::Side::kLeft, kInsoleCells));
    table_ = DeviceTable(std::move(entries));
  }
  DecodeResult send(std::string_view device, std::uint32_t seq, const Sender& sender) {
    sender_ = &sender;
    return decode(make_frame(device, seq, {insole_sample(1'000 + seq)}));
  }
  const Sender right_key_{true, kInsoleRightDevice};
  const Sender gateway_{true, UINT32_MAX};
  const Sender forgotten_{false, UINT32_MAX};
};

TEST_F(SenderKeyTest, ADeviceKeySpeaksForItsOwnDevice) {
  EXPECT_EQ(send(kInsoleRightId, 0, right_key_).accepted, 1);
  expect_no_rejections();
}

TEST_F(SenderKeyTest, ADeviceKeyClaimingAnotherDeviceIsRefusedBeforeItsSequenceMoves) {
  const DecodeResult r = send(kInsoleLeftId, 7, right_key_);
  EXPECT_TRUE(r.frame_rejected);
  EXPECT_EQ(r.frame_reason, Reject::kKeyNotAllowed);
  expect_only_rejections(Reject::kKeyNotAllowed, 1);
  EXPECT_FALSE(tracks_[kInsoleLeftDevice].seen) << "a refused sender must not advance the victim's seq";
  // The real left insole (via a gateway) is unaffected: seq 0 is not a duplicate or reorder.
  EXPECT_EQ(send(kInsoleLeftId, 0, gateway_).accepted, 1);
}

TEST_F(SenderKeyTest, AGatewayKeyMayNotSpeakForAPinnedDevice) {
  EXPECT_EQ(send(kInsoleLeftId, 0, gateway_).accepted, 1);
  const DecodeResult r = send(kInsoleRightId, 0, gateway_);
  EXPECT_EQ(r.frame_reason, Reject::kKeyNotAllowed);
  expect_only_rejections(Reject::kKeyNotAllowed, 1);
}

TEST_F(SenderKeyTest, AKeyRemovedFromTheRegistrySpeaksForNobody) {
  EXPECT_EQ(send(kInsoleLeftId, 0, forgotten_).frame_reason, Reject::kKeyNotAllowed);
  EXPECT_EQ(send(kInsoleRightId, 0, forgotten_).frame_reason, Reject::kKeyNotAllowed);
  expect_only_rejections(Reject::kKeyNotAllowed, 2);
}

}  // namespace
}  // namespace kneeload::proto
