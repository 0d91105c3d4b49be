// FrameDecoder: one ingest message → validated fusion::Samples, every refusal counted by reason.
//
// Parsing. The top level of a Frame (version, device id, seq, the list of samples) is walked
// here by hand (WireReader); each Sample is parsed by the generated code into an arena. Why
// not parse the whole Frame with protobuf: in 3.21 an arena-owned `string` field is a
// std::string whose buffer comes from the heap once it outgrows the small-string buffer
// (15 bytes), so every frame with a device id of 16..64 bytes would allocate. Walking the top
// level lets the device id stay a string_view into the caller's bytes. Samples contain no
// strings, so the generated parser is allocation-free for them once the arena's block exists.
// The walk follows protobuf's own rules, and a test checks it against the generated parser on
// random bytes and on wire-format edge cases: last value wins for scalars, a known field with
// an unexpected wire type or an unknown field is skipped, `string` must be valid UTF-8, tag 0
// or a stray end-group is malformed. (The generated parser would also log an error for every
// invalid UTF-8 id; this one does not log.)
//
// Arena. One preallocated block sized from the limits (arena_block_bytes) and Reset() per
// frame, so decoding a frame within the limits does no heap allocation after construction.
// Two kinds of input still allocate, correctly decoded all the same: encodings the block was
// not sized for (see arena_block_bytes), which take extra arena blocks that the next Reset()
// frees; and fields unknown to this schema *inside* a Sample (a newer sender), which protobuf
// keeps in a heap-allocated UnknownFieldSet. Unknown fields at the top level cost nothing.
//
// Sequencing (DeviceTrack). A frame that passes the frame-level checks is "sequenced": its seq
// becomes the device's last_seq even when every one of its samples is then rejected. The frame
// was received and numbered; only its contents were bad, and holding last_seq back would turn
// the device's next good frame into a false gap and a retransmission of this one into a
// false success. Frames rejected at frame level (including duplicates and reordered frames)
// leave the track untouched.
//
// Clock check. last_t_us is the t_us of the device's last accepted sample. Until a sample has
// been accepted since the device was first seen or last restarted, it holds kNoClockYet, so the
// first sample after a (re)start is never "backwards" whatever its epoch.
//
// Arrival time. A replay tool sets Frame.recorded_arrival_us to the arrival time recorded in the
// original run; when it is non-zero it replaces the caller's receive time on every accepted
// sample (and in the device's track), so whatever uses arrival times downstream sees the same
// values at any replay speed. Live devices leave it 0 and get the receive time.
#include <cassert>
#include <climits>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>

#include <google/protobuf/arena.h>
#include <google/protobuf/stubs/common.h>
#include <google/protobuf/wire_format_lite.h>

#include "kneeload/proto/codec.hpp"
#include "kneeload/v1/ingest.pb.h"

namespace kneeload::proto {
namespace {

namespace pb = google::protobuf;
namespace v1 = kneeload::v1;
using pb::internal::WireFormatLite;

constexpr std::int64_t kNoClockYet = std::numeric_limits<std::int64_t>::min();

// ingest.proto ranges, inclusive. Names carry the unit of the value they bound.
constexpr float kMaxAbsAccelMps2 = 400.0f;
constexpr float kMaxAbsGyroRadps = 70.0f;
constexpr float kMinPressurePa = 0.0f;
constexpr float kMaxPressurePa = 2.0e6f;
constexpr float kMinKneeAngleRad = -0.35f;
constexpr float kMaxKneeAngleRad = 2.8f;
constexpr float kMinBeltSpeedMps = 0.0f;
constexpr float kMaxBeltSpeedMps = 12.0f;
constexpr float kMinInclineFraction = -0.15f;
constexpr float kMaxInclineFraction = 0.40f;
constexpr float kMinBatteryFraction = 0.0f;
constexpr float kMaxBatteryFraction = 1.0f;
constexpr std::uint32_t kMaxPainScore = 10;
constexpr int kMaxWireSide = v1::Side_MAX;
constexpr int kMaxWirePainLocation = v1::PainLocation_MAX;

// Arena sizing. A protobuf object is larger than its wire bytes: a Sample is 40 bytes, an Imu6
// or a KneeSample 48 (sizeof on g++ 12 / x86-64, protobuf 3.21), so a knee sample with both
// IMUs and an angle costs ~216 arena bytes for ~80 wire bytes. The block therefore has a
// per-sample part (the largest sample's objects plus its slot in the repeated field, rounded
// up) and a per-wire-byte part for what grows with the bytes (repeated pressures: 4 bytes per
// value, up to twice that while a non-packed repeated field doubles its capacity), plus the
// Frame, the arena's own header and alignment. At the default limits that is 196 KiB; the
// largest frames codec_alloc_test sends (256 knee samples; 256 insole samples of 32 cells,
// 44 KB on the wire) used 55 KB and 78 KB of it when measured. Pathological encodings within
// the byte limit can still exceed it (the same oneof set thousands of times in one sample
// leaves a dead object per repetition); they cost a heap block for that frame, not a failure.
constexpr std::size_t kArenaBytesPerSample = 256;
constexpr std::size_t kArenaBytesPerWireByte = 2;
constexpr std::size_t kArenaSlackBytes = 4096;

std::size_t arena_block_bytes(const ValidationLimits& limits) {
  const std::size_t samples =
      limits.max_samples_per_frame > 0 ? static_cast<std::size_t>(limits.max_samples_per_frame) : 0;
  return kArenaBytesPerWireByte * limits.max_frame_bytes + kArenaBytesPerSample * samples +
         kArenaSlackBytes;
}

pb::ArenaOptions arena_options(char* block, std::size_t block_bytes) {
  pb::ArenaOptions options;
  options.initial_block = block;
  options.initial_block_size = block_bytes;
  return options;
}

// What the hand-walked top level of a Frame yields; samples go into the arena Frame.
struct FrameHeader {
  std::uint32_t protocol_version = 0;
  std::uint32_t seq = 0;
  std::int64_t recorded_arrival_us = 0;  // 0: not a replay
  std::string_view device_id;  // points into the caller's bytes
};

// Reads protobuf wire format the way 3.21's generated parser does (parse_context.h/.cc), so
// that parse_frame() refuses exactly the byte strings protobuf refuses: tags at most 5 bytes,
// lengths at most 5 bytes and below 2 GiB, other varints at most 10 bytes, unknown groups
// closed by the matching end-group tag and nested at most kMaxGroupDepth deep.
class WireReader {
 public:
  WireReader(const std::uint8_t* begin, const std::uint8_t* end) : p_(begin), end_(end) {}

  bool at_end() const { return p_ == end_; }

  // A field tag; the value wraps into 32 bits as protobuf's ReadTag does.
  bool tag(std::uint32_t& out) {
    std::uint64_t v = 0;
    if (!varint(v, 5)) return false;
    out = static_cast<std::uint32_t>(v);
    return true;
  }

  bool varint(std::uint64_t& out) { return varint(out, 10); }

  // A length-delimited field's payload, which must lie inside the input.
  bool length_delimited(const std::uint8_t*& data, std::size_t& length) {
    std::uint64_t len = 0;
    if (!varint(len, 5) || len >= (std::uint64_t{1} << 31)) return false;
    if (len > static_cast<std::uint64_t>(end_ - p_)) return false;
    data = p_;
    length = static_cast<std::size_t>(len);
    p_ += length;
    return true;
  }

  // Skips one unknown field whose tag was just read. depth counts enclosing groups.
  bool skip(std::uint32_t field_tag, int depth = 0) {
    const int field = WireFormatLite::GetTagFieldNumber(field_tag);
    if (field == 0) return false;
    switch (WireFormatLite::GetTagWireType(field_tag)) {
      case WireFormatLite::WIRETYPE_VARINT: {
        std::uint64_t ignored = 0;
        return varint(ignored);
      }
      case WireFormatLite::WIRETYPE_FIXED64: return advance(8);
      case WireFormatLite::WIRETYPE_LENGTH_DELIMITED: {
        const std::uint8_t* ignored = nullptr;
        std::size_t len = 0;
        return length_delimited(ignored, len);
      }
      case WireFormatLite::WIRETYPE_START_GROUP: {
        if (depth >= kMaxGroupDepth) return false;
        for (;;) {
          std::uint32_t t = 0;
          if (at_end() || !tag(t)) return false;  // a group must be closed
          if (WireFormatLite::GetTagWireType(t) == WireFormatLite::WIRETYPE_END_GROUP) {
            return WireFormatLite::GetTagFieldNumber(t) == field;
          }
          if (!skip(t, depth + 1)) return false;
        }
      }
      case WireFormatLite::WIRETYPE_FIXED32: return advance(4);
      case WireFormatLite::WIRETYPE_END_GROUP: break;  // no group open here
    }
    return false;  // end group out of place, or wire type 6 or 7
  }

 private:
  // io::CodedInputStream's default recursion limit, which bounds groups in ParseContext.
  static constexpr int kMaxGroupDepth = 100;

  bool varint(std::uint64_t& out, int max_bytes) {
    std::uint64_t v = 0;
    for (int i = 0; i < max_bytes; ++i) {
      if (p_ == end_) return false;
      const std::uint8_t byte = *p_++;
      v |= static_cast<std::uint64_t>(byte & 0x7Fu) << (7 * i);  // bits past 64 drop out
      if ((byte & 0x80u) == 0) {
        out = v;
        return true;
      }
    }
    return false;
  }

  bool advance(std::size_t n) {
    if (n > static_cast<std::size_t>(end_ - p_)) return false;
    p_ += n;
    return true;
  }

  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

// Walks the top level of a Frame (ingest.proto field numbers). Returns false iff protobuf
// would refuse the bytes as a kneeload.v1.Frame. `frame` receives the samples only.
bool parse_frame(std::span<const std::byte> bytes, v1::Frame& frame, FrameHeader& header) {
  const auto* begin = reinterpret_cast<const std::uint8_t*>(bytes.data());
  WireReader in(begin, begin + bytes.size());
  while (!in.at_end()) {
    std::uint32_t tag = 0;
    if (!in.tag(tag)) return false;
    switch (tag) {
      case WireFormatLite::MakeTag(v1::Frame::kProtocolVersionFieldNumber,
                                   WireFormatLite::WIRETYPE_VARINT): {
        std::uint64_t v = 0;
        if (!in.varint(v)) return false;
        header.protocol_version = static_cast<std::uint32_t>(v);  // uint32: protobuf truncates
        continue;
      }
      case WireFormatLite::MakeTag(v1::Frame::kDeviceIdFieldNumber,
                                   WireFormatLite::WIRETYPE_LENGTH_DELIMITED): {
        const std::uint8_t* data = nullptr;
        std::size_t len = 0;
        if (!in.length_delimited(data, len)) return false;
        const auto* text = reinterpret_cast<const char*>(data);
        // proto3 `string` must be UTF-8: the generated parser refuses the frame otherwise.
        if (!pb::internal::IsStructurallyValidUTF8(text, static_cast<int>(len))) return false;
        header.device_id = std::string_view(text, len);
        continue;
      }
      case WireFormatLite::MakeTag(v1::Frame::kSeqFieldNumber, WireFormatLite::WIRETYPE_VARINT): {
        std::uint64_t v = 0;
        if (!in.varint(v)) return false;
        header.seq = static_cast<std::uint32_t>(v);
        continue;
      }
      case WireFormatLite::MakeTag(v1::Frame::kRecordedArrivalUsFieldNumber,
                                   WireFormatLite::WIRETYPE_VARINT): {
        std::uint64_t v = 0;
        if (!in.varint(v)) return false;
        // int64 is two's complement in 64 bits on the wire: a negative value takes 10 bytes.
        header.recorded_arrival_us = static_cast<std::int64_t>(v);
        continue;
      }
      case WireFormatLite::MakeTag(v1::Frame::kSamplesFieldNumber,
                                   WireFormatLite::WIRETYPE_LENGTH_DELIMITED): {
        const std::uint8_t* data = nullptr;
        std::size_t len = 0;
        if (!in.length_delimited(data, len)) return false;
        // Every sample is parsed, even past max_samples_per_frame: a malformed frame is
        // reported as malformed whatever else is wrong with it. (One difference from parsing
        // the whole Frame: the sample starts at recursion depth 100 instead of 99, so unknown
        // groups nested exactly 100 deep in a sample pass here. No real sender nests groups.)
        if (!frame.add_samples()->ParseFromArray(data, static_cast<int>(len))) return false;
        continue;
      }
      default: break;
    }
    // Tag 0, a stray end-group, wire type 6/7 refuse the frame; anything else is an unknown
    // field (or a known one with another wire type), which protobuf keeps and we skip.
    if (!in.skip(tag)) return false;
  }
  return true;
}

// The device kind a payload may come from; nullopt when any kind may send it (device status).
std::optional<fusion::SensorKind> required_kind(v1::Sample::KindCase k) {
  switch (k) {
    case v1::Sample::kInsole: return fusion::SensorKind::kInsole;
    case v1::Sample::kKnee: return fusion::SensorKind::kKnee;
    case v1::Sample::kTreadmill: return fusion::SensorKind::kTreadmill;
    case v1::Sample::kPain: return fusion::SensorKind::kConsole;
    case v1::Sample::kSessionEnd: return fusion::SensorKind::kConsole;
    case v1::Sample::kStatus: return std::nullopt;
    case v1::Sample::KIND_NOT_SET: break;
  }
  return std::nullopt;
}

bool finite(const v1::Imu6& m) {
  return std::isfinite(m.accel_x_mps2()) && std::isfinite(m.accel_y_mps2()) &&
         std::isfinite(m.accel_z_mps2()) && std::isfinite(m.gyro_x_radps()) &&
         std::isfinite(m.gyro_y_radps()) && std::isfinite(m.gyro_z_radps());
}

// Every float the sample carries, present or not: a NaN in a field the device did not mean
// to fill is still a device bug worth counting.
bool finite(const v1::Sample& s) {
  switch (s.kind_case()) {
    case v1::Sample::kInsole: {
      const v1::InsoleSample& m = s.insole();
      for (const float p : m.pressure_pa()) {
        if (!std::isfinite(p)) return false;
      }
      return !m.has_imu() || finite(m.imu());
    }
    case v1::Sample::kKnee: {
      const v1::KneeSample& m = s.knee();
      return std::isfinite(m.knee_angle_rad()) && (!m.has_thigh() || finite(m.thigh())) &&
             (!m.has_shank() || finite(m.shank()));
    }
    case v1::Sample::kTreadmill:
      return std::isfinite(s.treadmill().belt_speed_mps()) &&
             std::isfinite(s.treadmill().incline_fraction());
    case v1::Sample::kStatus: return std::isfinite(s.status().battery_fraction());
    case v1::Sample::kPain:
    case v1::Sample::kSessionEnd:
    case v1::Sample::KIND_NOT_SET: return true;
  }
  return true;
}

bool within(float v, float lo, float hi) { return v >= lo && v <= hi; }

bool in_range(const v1::Imu6& m) {
  return std::fabs(m.accel_x_mps2()) <= kMaxAbsAccelMps2 &&
         std::fabs(m.accel_y_mps2()) <= kMaxAbsAccelMps2 &&
         std::fabs(m.accel_z_mps2()) <= kMaxAbsAccelMps2 &&
         std::fabs(m.gyro_x_radps()) <= kMaxAbsGyroRadps &&
         std::fabs(m.gyro_y_radps()) <= kMaxAbsGyroRadps &&
         std::fabs(m.gyro_z_radps()) <= kMaxAbsGyroRadps;
}

// REQUIRES: finite(s). Ranges from ingest.proto; an enum value this version does not know is
// out of range (proto3 keeps unknown enum numbers rather than refusing them).
bool in_range(const v1::Sample& s) {
  switch (s.kind_case()) {
    case v1::Sample::kInsole: {
      const v1::InsoleSample& m = s.insole();
      for (const float p : m.pressure_pa()) {
        if (!within(p, kMinPressurePa, kMaxPressurePa)) return false;
      }
      return !m.has_imu() || in_range(m.imu());
    }
    case v1::Sample::kKnee: {
      const v1::KneeSample& m = s.knee();
      // The two IMUs only mean something as a pair (the angle is between them), and a knee
      // sample with neither IMUs nor an angle carries nothing.
      if (m.has_thigh() != m.has_shank()) return false;
      if (!m.has_thigh() && !m.has_angle()) return false;
      if (m.has_thigh() && !(in_range(m.thigh()) && in_range(m.shank()))) return false;
      return !m.has_angle() || within(m.knee_angle_rad(), kMinKneeAngleRad, kMaxKneeAngleRad);
    }
    case v1::Sample::kTreadmill:
      return within(s.treadmill().belt_speed_mps(), kMinBeltSpeedMps, kMaxBeltSpeedMps) &&
             within(s.treadmill().incline_fraction(), kMinInclineFraction, kMaxInclineFraction);
    case v1::Sample::kPain: {
      const v1::PainReport& m = s.pain();
      const int side = m.side();
      const int location = m.location();
      return m.score() <= kMaxPainScore && side >= 0 && side <= kMaxWireSide && location >= 0 &&
             location <= kMaxWirePainLocation;
    }
    case v1::Sample::kStatus:
      return within(s.status().battery_fraction(), kMinBatteryFraction, kMaxBatteryFraction);
    case v1::Sample::kSessionEnd:
    case v1::Sample::KIND_NOT_SET: return true;
  }
  return true;
}

fusion::Imu6 to_fusion(const v1::Imu6& m) {
  return fusion::Imu6{{m.accel_x_mps2(), m.accel_y_mps2(), m.accel_z_mps2()},
                      {m.gyro_x_radps(), m.gyro_y_radps(), m.gyro_z_radps()}};
}

fusion::Side to_fusion_side(int wire_side) {
  switch (wire_side) {
    case v1::SIDE_LEFT: return fusion::Side::kLeft;
    case v1::SIDE_RIGHT: return fusion::Side::kRight;
    default: return fusion::Side::kNone;
  }
}

// REQUIRES: the sample passed every check (payload set, finite, in range, cell count <= 32).
fusion::Payload to_fusion(const v1::Sample& s) {
  switch (s.kind_case()) {
    case v1::Sample::kInsole: {
      const v1::InsoleSample& m = s.insole();
      fusion::InsoleSample out{};  // unused cells stay 0: replays compare samples bytewise
      const int cells = m.pressure_pa_size();
      for (int i = 0; i < cells; ++i) out.pressure_pa[i] = m.pressure_pa(i);
      out.cell_count = static_cast<std::uint8_t>(cells);
      out.has_imu = m.has_imu();
      if (out.has_imu) out.imu = to_fusion(m.imu());
      return out;
    }
    case v1::Sample::kKnee: {
      const v1::KneeSample& m = s.knee();
      fusion::KneeSample out{};
      out.has_imus = m.has_thigh();  // in_range() guarantees the pair
      if (out.has_imus) {
        out.thigh = to_fusion(m.thigh());
        out.shank = to_fusion(m.shank());
      }
      out.has_angle = m.has_angle();
      out.knee_angle_rad = out.has_angle ? m.knee_angle_rad() : 0.0f;
      return out;
    }
    case v1::Sample::kTreadmill:
      return fusion::TreadmillSample{s.treadmill().belt_speed_mps(),
                                     s.treadmill().incline_fraction()};
    case v1::Sample::kPain:
      return fusion::PainReport{static_cast<std::uint8_t>(s.pain().score()),
                                to_fusion_side(s.pain().side()),
                                static_cast<fusion::PainLocation>(s.pain().location())};
    case v1::Sample::kStatus:
      return fusion::DeviceStatus{s.status().battery_fraction(), s.status().error_flags()};
    case v1::Sample::kSessionEnd:
    case v1::Sample::KIND_NOT_SET: break;
  }
  return fusion::SessionEnd{};
}

// First reason this sample is refused, in the order codec.hpp lists them; nullopt to accept.
std::optional<Reject> check_sample(const v1::Sample& s, const DeviceInfo& info,
                                   std::int64_t last_t_us) {
  if (s.kind_case() == v1::Sample::KIND_NOT_SET) return Reject::kMissingPayload;
  const std::optional<fusion::SensorKind> kind = required_kind(s.kind_case());
  if (kind && *kind != info.kind) return Reject::kKindMismatch;
  if (!finite(s)) return Reject::kNonFinite;
  if (!in_range(s)) return Reject::kOutOfRange;
  if (s.kind_case() == v1::Sample::kInsole) {
    const int cells = s.insole().pressure_pa_size();
    // The second test guards the fixed-size array even if a registry ever held > 32 cells.
    if (cells != info.cell_count || cells > fusion::kMaxInsoleCells) {
      return Reject::kCellCountMismatch;
    }
  }
  if (s.t_us() < last_t_us) return Reject::kTimeBackwards;
  return std::nullopt;
}

void note_reject(DecoderCounters& counters, RejectDetail& detail, Reject reason,
                 std::string_view device_id, std::uint32_t seq, std::int64_t t_us) {
  counters.rejected[static_cast<std::size_t>(reason)].inc();
  detail.reason = reason;
  detail.seq = seq;
  detail.t_us = t_us;
  const std::size_t n = device_id.size() < kMaxDeviceIdBytes ? device_id.size() : kMaxDeviceIdBytes;
  if (n > 0) std::memcpy(detail.device_id, device_id.data(), n);
  detail.device_id[n] = '\0';
}

}  // namespace

struct FrameDecoder::Impl {
  explicit Impl(std::size_t block_bytes)
      : block(std::make_unique<char[]>(block_bytes)),
        arena(arena_options(block.get(), block_bytes)) {}

  std::unique_ptr<char[]> block;  // outlives the arena: declared first
  pb::Arena arena;
};

FrameDecoder::FrameDecoder(ValidationLimits limits)
    : impl_(std::make_unique<Impl>(arena_block_bytes(limits))), limits_(limits) {}

FrameDecoder::~FrameDecoder() = default;

DecodeResult FrameDecoder::decode(std::span<const std::byte> bytes, std::size_t wire_size,
                                  const DeviceTable& table, std::span<DeviceTrack> tracks,
                                  std::int64_t arrival_t_us, std::span<fusion::Sample> out,
                                  const Sender* sender) {
  assert(out.size() >= static_cast<std::size_t>(limits_.max_samples_per_frame));
  counters_.frames_received.inc();
  DecodeResult result;
  const auto reject_frame = [&](Reject reason, std::string_view device_id, std::uint32_t seq) {
    note_reject(counters_, last_reject_, reason, device_id, seq, 0);
    result.frame_rejected = true;
    result.frame_reason = reason;
    return result;
  };

  // 1. Size, before any parsing: the arena is sized for max_frame_bytes. bytes.size() is
  // checked too in case a caller passes more than it says; INT_MAX is protobuf's own limit.
  const std::size_t size = bytes.size() > wire_size ? bytes.size() : wire_size;
  if (size > limits_.max_frame_bytes || bytes.size() > static_cast<std::size_t>(INT_MAX)) {
    return reject_frame(Reject::kOversize, {}, 0);
  }

  // 2. Parse. Reset() first rather than after: it also binds the arena to the calling thread,
  // so the first decode on the ingest thread does not allocate a per-thread arena.
  impl_->arena.Reset();
  auto* frame = pb::Arena::CreateMessage<v1::Frame>(&impl_->arena);
  FrameHeader header;
  if (!parse_frame(bytes, *frame, header)) return reject_frame(Reject::kMalformed, {}, 0);

  // 3. Frame-level checks, in codec.hpp's order.
  if (header.protocol_version != kProtocolVersion) {
    return reject_frame(Reject::kWrongVersion, header.device_id, header.seq);
  }
  if (header.device_id.empty() || header.device_id.size() > kMaxDeviceIdBytes) {
    return reject_frame(Reject::kBadDeviceId, header.device_id, header.seq);
  }
  const DeviceInfo* info = table.find(header.device_id);
  // A device index beyond `tracks` breaks decode()'s REQUIRES; refusing it as unknown keeps a
  // release build memory-safe while the assert names the bug in a debug build.
  assert(info == nullptr || info->device < tracks.size());
  if (info == nullptr || info->device >= tracks.size()) {
    return reject_frame(Reject::kUnknownDevice, header.device_id, header.seq);
  }
  if (sender != nullptr) {
    const bool own_device = sender->device == info->device;
    const bool gateway_for_unpinned = sender->device == UINT32_MAX && !info->key_pinned;
    if (!sender->known || !(own_device || gateway_for_unpinned)) {
      return reject_frame(Reject::kKeyNotAllowed, header.device_id, header.seq);
    }
  }
  const int sample_count = frame->samples_size();
  if (sample_count == 0) return reject_frame(Reject::kEmptyFrame, header.device_id, header.seq);
  if (sample_count > limits_.max_samples_per_frame) {
    return reject_frame(Reject::kTooManySamples, header.device_id, header.seq);
  }

  DeviceTrack& track = tracks[info->device];
  const std::uint32_t seq = header.seq;
  bool restart = false;
  std::uint64_t missing_frames = 0;
  if (track.seen) {
    if (seq == track.last_seq) return reject_frame(Reject::kDuplicateSeq, header.device_id, seq);
    if (seq < track.last_seq) {
      if (seq != 0) return reject_frame(Reject::kReorderedSeq, header.device_id, seq);
      restart = true;
    } else {
      missing_frames = static_cast<std::uint64_t>(seq) - track.last_seq - 1;
    }
  }

  // 4. The frame is sequenced (see the file comment): the track advances whatever the samples.
  // A replayed frame carries its original arrival time (see the file comment).
  const std::int64_t arrival_us =
      header.recorded_arrival_us != 0 ? header.recorded_arrival_us : arrival_t_us;
  if (restart) counters_.device_restarts.inc();
  if (missing_frames > 0) counters_.seq_gap_frames.add(missing_frames);
  if (!track.seen || restart) track.last_t_us = kNoClockYet;
  track.seen = true;
  track.last_seq = seq;
  track.last_arrival_t_us = arrival_us;

  // 5. Per sample: keep the good ones in frame order, count the others.
  for (const v1::Sample& s : frame->samples()) {
    if (const std::optional<Reject> why = check_sample(s, *info, track.last_t_us)) {
      note_reject(counters_, last_reject_, *why, header.device_id, seq, s.t_us());
      ++result.samples_rejected;
      continue;
    }
    fusion::Sample& dst = out[static_cast<std::size_t>(result.accepted)];
    dst.device_t_us = s.t_us();
    dst.arrival_t_us = arrival_us;
    dst.receive_t_us = arrival_t_us;  // this process's clock, for latency only
    dst.device = info->device;
    dst.runner = info->runner;
    dst.station = info->station;
    dst.device_seq = seq;
    dst.side = info->side;
    dst.kind = info->kind;
    dst.payload = to_fusion(s);
    track.last_t_us = s.t_us();
    ++result.accepted;
  }
  if (result.accepted > 0) {
    counters_.frames_accepted.inc();
    counters_.samples_accepted.add(static_cast<std::uint64_t>(result.accepted));
  }
  return result;
}

}  // namespace kneeload::proto
