// libFuzzer target: FrameDecoder (parsing, every frame- and sample-level check, the sequence
// and clock history) on hostile byte strings, checking invariants rather than only "no crash".
//
// Input: byte 0 chooses the set-up, the rest is a run of frames sent by one process in order,
// each as a 2-byte little-endian length and that many bytes (a length past the end takes what
// is left). Several frames per input let the fuzzer reach duplicates, reordering, restarts and
// clocks going backwards, which need the history of earlier frames. Set-up byte:
//   bit 0     tight limits (96-byte frames, 2 samples) instead of the defaults
//   bits 1-2  the CURVE sender: 0 none (plaintext), 1 a known gateway key, 2 the knee's own
//             (pinned) key, 3 a key the registry does not know
// Every input starts from fresh device histories, so it replays alike on its own.
//
// Checked per frame, against an oracle built from protobuf's own parser and the device's
// history before the call:
//  - the frame is counted exactly once: frames_received +1, and either exactly one frame-level
//    reason (the oracle's) and nothing else, or accepted + rejected samples = the frame's samples
//    with the sample-level counters moving by the rejected ones;
//  - a refused frame leaves every device's history untouched; a sequenced one sets its seq;
//  - accepted samples carry the registry's indices, kind and side, and pass ingest.proto's
//    ranges (restated here from the .proto, not taken from the decoder); a device's accepted
//    sample times never go backwards.
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include <google/protobuf/stubs/logging.h>

#include "fuzz_check.hpp"
#include "kneeload/proto/codec.hpp"
#include "kneeload/v1/ingest.pb.h"
#include "test_frames.hpp"

namespace kneeload::fuzz {
namespace {

using namespace kneeload::proto;        // NOLINT(google-build-using-namespace)
using namespace kneeload::proto::test;  // NOLINT(google-build-using-namespace): table builders

// ingest.proto's ranges, inclusive.
constexpr float kMaxAbsAccelMps2 = 400.0f;
constexpr float kMaxAbsGyroRadps = 70.0f;
constexpr float kMaxPressurePa = 2.0e6f;
constexpr float kMinKneeAngleRad = -0.35f;
constexpr float kMaxKneeAngleRad = 2.8f;
constexpr float kMaxBeltSpeedMps = 12.0f;
constexpr float kMinInclineFraction = -0.15f;
constexpr float kMaxInclineFraction = 0.40f;
constexpr unsigned kMaxPainScore = 10;

bool within(float v, float lo, float hi) { return std::isfinite(v) && v >= lo && v <= hi; }

bool imu_ok(const fusion::Imu6& m) {
  for (int i = 0; i < 3; ++i) {
    if (!within(m.accel_mps2[i], -kMaxAbsAccelMps2, kMaxAbsAccelMps2)) return false;
    if (!within(m.gyro_radps[i], -kMaxAbsGyroRadps, kMaxAbsGyroRadps)) return false;
  }
  return true;
}

// Returns an empty string when the payload is one a device of `info` may send and every value
// lies in its range; otherwise what is wrong.
std::string payload_problem(const fusion::Sample& s, const DeviceInfo& info) {
  if (const auto* m = std::get_if<fusion::InsoleSample>(&s.payload)) {
    if (info.kind != fusion::SensorKind::kInsole) return "insole payload from another kind";
    if (m->cell_count != info.cell_count) return "cell count differs from the registry";
    for (int i = 0; i < m->cell_count; ++i) {
      if (!within(m->pressure_pa[i], 0.0f, kMaxPressurePa)) return "pressure out of range";
    }
    if (m->has_imu && !imu_ok(m->imu)) return "insole IMU out of range";
  } else if (const auto* k = std::get_if<fusion::KneeSample>(&s.payload)) {
    if (info.kind != fusion::SensorKind::kKnee) return "knee payload from another kind";
    if (!k->has_imus && !k->has_angle) return "knee sample without IMUs or angle";
    if (k->has_imus && !(imu_ok(k->thigh) && imu_ok(k->shank))) return "knee IMU out of range";
    if (k->has_angle && !within(k->knee_angle_rad, kMinKneeAngleRad, kMaxKneeAngleRad)) {
      return "knee angle out of range";
    }
  } else if (const auto* t = std::get_if<fusion::TreadmillSample>(&s.payload)) {
    if (info.kind != fusion::SensorKind::kTreadmill) return "treadmill payload from another kind";
    if (!within(t->belt_speed_mps, 0.0f, kMaxBeltSpeedMps)) return "belt speed out of range";
    if (!within(t->incline_fraction, kMinInclineFraction, kMaxInclineFraction)) {
      return "incline out of range";
    }
  } else if (const auto* p = std::get_if<fusion::PainReport>(&s.payload)) {
    if (info.kind != fusion::SensorKind::kConsole) return "pain report from a sensor";
    if (p->score > kMaxPainScore) return "pain score out of range";
    if (static_cast<int>(p->location) > static_cast<int>(fusion::PainLocation::kOther)) {
      return "pain location out of range";
    }
  } else if (const auto* d = std::get_if<fusion::DeviceStatus>(&s.payload)) {
    if (!within(d->battery_fraction, 0.0f, 1.0f)) return "battery out of range";
  } else if (info.kind != fusion::SensorKind::kConsole) {
    return "session end from a sensor";
  }
  return {};
}

// The table of tests/proto/test_frames.hpp, with the right insole's key pinned (a device key).
DeviceTable fuzz_table() {
  using fusion::SensorKind;
  using fusion::Side;
  std::vector<std::pair<std::string, DeviceInfo>> entries;
  entries.emplace_back(std::string(kInsoleLeftId),
                       device_info(kInsoleLeftDevice, SensorKind::kInsole, Side::kLeft, kInsoleCells));
  DeviceInfo right = device_info(kInsoleRightDevice, SensorKind::kInsole, Side::kRight, kInsoleCells);
  right.key_pinned = true;
  entries.emplace_back(std::string(kInsoleRightId), right);
  entries.emplace_back(std::string(kKneeLeftId), device_info(kKneeLeftDevice, SensorKind::kKnee, Side::kLeft));
  entries.emplace_back(std::string(kTreadmillId),
                       device_info(kTreadmillDevice, SensorKind::kTreadmill, Side::kNone));
  entries.emplace_back(std::string(kConsoleId), device_info(kConsoleDevice, SensorKind::kConsole, Side::kNone));
  return DeviceTable(std::move(entries));
}

struct Rig {
  explicit Rig(ValidationLimits l)
      : limits(l), decoder(l), out(static_cast<std::size_t>(l.max_samples_per_frame)) {}
  ValidationLimits limits;
  FrameDecoder decoder;
  std::vector<fusion::Sample> out;
};

struct Counts {
  std::uint64_t received, frames_accepted, samples_accepted;
  std::uint64_t frame_level, sample_level;
  std::array<std::uint64_t, kRejectCount> by_reason;
};

Counts counts(const DecoderCounters& c) {
  Counts n{c.frames_received.get(), c.frames_accepted.get(), c.samples_accepted.get(), 0, 0, {}};
  for (int r = 0; r < kRejectCount; ++r) {
    const std::uint64_t v = c.rejected[static_cast<std::size_t>(r)].get();
    n.by_reason[static_cast<std::size_t>(r)] = v;
    (is_frame_reject(static_cast<Reject>(r)) ? n.frame_level : n.sample_level) += v;
  }
  return n;
}

bool same_track(const DeviceTrack& a, const DeviceTrack& b) {
  return a.seen == b.seen && a.last_seq == b.last_seq && a.last_t_us == b.last_t_us &&
         a.last_arrival_t_us == b.last_arrival_t_us;
}

// What the decoder must decide at frame level, from protobuf's parse and the history before the
// call. Returns true and sets `reason` when the frame must be refused.
bool expected_reject(std::span<const std::uint8_t> bytes, const Rig& rig, const DeviceTable& table,
                     const std::vector<DeviceTrack>& tracks, const Sender* sender, v1::Frame& ref,
                     Reject& reason) {
  if (bytes.size() > rig.limits.max_frame_bytes) {
    reason = Reject::kOversize;
    return true;
  }
  bool parsed = false;
  {
    google::protobuf::LogSilencer quiet;  // protobuf logs every invalid UTF-8 string it meets
    parsed = ref.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  }
  if (!parsed) {
    reason = Reject::kMalformed;
    return true;
  }
  const std::string& id = ref.device_id();
  const DeviceInfo* info = table.find(id);
  if (ref.protocol_version() != kProtocolVersion) {
    reason = Reject::kWrongVersion;
  } else if (id.empty() || id.size() > kMaxDeviceIdBytes) {
    reason = Reject::kBadDeviceId;
  } else if (info == nullptr) {
    reason = Reject::kUnknownDevice;
  } else if (sender != nullptr &&
             !(sender->known && (sender->device == info->device ||
                                 (sender->device == UINT32_MAX && !info->key_pinned)))) {
    reason = Reject::kKeyNotAllowed;
  } else if (ref.samples_size() == 0) {
    reason = Reject::kEmptyFrame;
  } else if (ref.samples_size() > rig.limits.max_samples_per_frame) {
    reason = Reject::kTooManySamples;
  } else {
    const DeviceTrack& t = tracks[info->device];
    if (t.seen && ref.seq() == t.last_seq) {
      reason = Reject::kDuplicateSeq;
    } else if (t.seen && ref.seq() < t.last_seq && ref.seq() != 0) {
      reason = Reject::kReorderedSeq;
    } else {
      return false;
    }
  }
  return true;
}

void check_frame(Rig& rig, const DeviceTable& table, std::vector<DeviceTrack>& tracks,
                 const Sender* sender, std::span<const std::uint8_t> bytes, std::int64_t arrival_us) {
  v1::Frame ref;
  Reject want = Reject::kMalformed;
  const bool want_rejected = expected_reject(bytes, rig, table, tracks, sender, ref, want);
  const std::vector<DeviceTrack> before_tracks = tracks;
  const Counts before = counts(rig.decoder.counters());

  const DecodeResult r = rig.decoder.decode(
      std::as_bytes(std::span<const std::uint8_t>(bytes)), bytes.size(), table,
      std::span<DeviceTrack>(tracks), arrival_us, std::span<fusion::Sample>(rig.out), sender);
  const Counts after = counts(rig.decoder.counters());

  const auto said = [&] {
    return std::string("frame_rejected=") + (r.frame_rejected ? "yes" : "no") +
           " reason=" + reject_name(r.frame_reason) + " accepted=" + std::to_string(r.accepted) +
           " samples_rejected=" + std::to_string(r.samples_rejected) +
           "; oracle: " + (want_rejected ? reject_name(want) : "sequenced");
  };
  KL_FUZZ_CHECK(after.received == before.received + 1, said());
  KL_FUZZ_CHECK(r.frame_rejected == want_rejected, said());
  KL_FUZZ_CHECK(after.samples_accepted - before.samples_accepted == static_cast<std::uint64_t>(r.accepted),
                said());
  KL_FUZZ_CHECK(after.frames_accepted - before.frames_accepted == (r.accepted > 0 ? 1u : 0u), said());

  if (want_rejected) {
    KL_FUZZ_CHECK(r.frame_reason == want, said());
    KL_FUZZ_CHECK(after.frame_level - before.frame_level == 1, said());
    KL_FUZZ_CHECK(after.by_reason[static_cast<std::size_t>(want)] -
                          before.by_reason[static_cast<std::size_t>(want)] == 1, said());
    KL_FUZZ_CHECK(after.sample_level == before.sample_level, said());
    KL_FUZZ_CHECK(r.accepted == 0 && r.samples_rejected == 0, said());
    for (std::size_t d = 0; d < tracks.size(); ++d) {
      KL_FUZZ_CHECK(same_track(tracks[d], before_tracks[d]),
                    "a refused frame changed device " + std::to_string(d) + "'s history; " + said());
    }
    return;
  }

  const DeviceInfo& info = *table.find(ref.device_id());
  KL_FUZZ_CHECK(after.frame_level == before.frame_level, said());
  KL_FUZZ_CHECK(r.accepted + r.samples_rejected == ref.samples_size(),
                "samples in frame " + std::to_string(ref.samples_size()) + "; " + said());
  KL_FUZZ_CHECK(after.sample_level - before.sample_level == static_cast<std::uint64_t>(r.samples_rejected),
                said());
  const DeviceTrack& was = before_tracks[info.device];
  const DeviceTrack& now = tracks[info.device];
  KL_FUZZ_CHECK(now.seen && now.last_seq == ref.seq(), said());
  for (std::size_t d = 0; d < tracks.size(); ++d) {
    if (d != info.device) KL_FUZZ_CHECK(same_track(tracks[d], before_tracks[d]), "another device's history moved");
  }

  // Time: from the device's last accepted sample on, unless this frame (re)starts the device.
  const bool restart = was.seen && ref.seq() == 0 && was.last_seq != 0;
  std::int64_t floor_t_us =
      (!was.seen || restart) ? std::numeric_limits<std::int64_t>::min() : was.last_t_us;
  const std::int64_t arrival = ref.recorded_arrival_us() != 0 ? ref.recorded_arrival_us() : arrival_us;
  for (int i = 0; i < r.accepted; ++i) {
    const fusion::Sample& s = rig.out[static_cast<std::size_t>(i)];
    const std::string at = "accepted sample " + std::to_string(i) + "; " + said();
    KL_FUZZ_CHECK(s.device == info.device && s.runner == info.runner && s.station == info.station, at);
    KL_FUZZ_CHECK(s.kind == info.kind && s.side == info.side && s.device_seq == ref.seq(), at);
    KL_FUZZ_CHECK(s.arrival_t_us == arrival && s.receive_t_us == arrival_us, at);
    KL_FUZZ_CHECK(s.device_t_us >= floor_t_us, "sample time went backwards: " + at);
    const std::string problem = payload_problem(s, info);
    KL_FUZZ_CHECK(problem.empty(), problem + ": " + at);
    floor_t_us = s.device_t_us;
  }
  if (r.accepted > 0) KL_FUZZ_CHECK(now.last_t_us == floor_t_us, said());
}

}  // namespace
}  // namespace kneeload::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace kneeload;
  using kneeload::proto::Sender;
  // Built once: the decoders' arenas are the expensive part, and their counters are compared
  // as deltas, so sharing them between inputs changes nothing a check looks at.
  static const proto::DeviceTable table = fuzz::fuzz_table();
  static fuzz::Rig default_rig{proto::ValidationLimits{}};
  static fuzz::Rig tight_rig{proto::ValidationLimits{96, 2}};
  if (size == 0) return 0;

  const std::uint8_t setup = data[0];
  fuzz::Rig& rig = (setup & 1u) != 0 ? tight_rig : default_rig;
  Sender sender_storage;
  const Sender* sender = nullptr;
  switch ((setup >> 1) & 3u) {
    case 1: sender_storage = Sender{true, UINT32_MAX}; sender = &sender_storage; break;
    case 2: sender_storage = Sender{true, proto::test::kInsoleRightDevice}; sender = &sender_storage; break;
    case 3: sender_storage = Sender{false, UINT32_MAX}; sender = &sender_storage; break;
    default: break;
  }

  std::vector<proto::DeviceTrack> tracks(proto::test::kDeviceCapacity);
  std::int64_t arrival_us = 1'000'000;
  std::size_t at = 1;
  while (at < size) {
    std::size_t len = data[at];
    if (at + 1 < size) len |= static_cast<std::size_t>(data[at + 1]) << 8;
    at += 2;
    if (at > size) at = size;
    if (len > size - at) len = size - at;
    fuzz::check_frame(rig, table, tracks, sender, std::span<const std::uint8_t>(data + at, len), arrival_us);
    at += len;
    arrival_us += 1000;
  }
  return 0;
}
