// Wire codec: bytes ⇄ fusion structs, and every validity check on input in one place.
//
// Ingest: FrameDecoder parses one ZeroMQ message as a kneeload.v1.Frame, checks it against the
// device table and the device's sequence/clock history, and writes the accepted samples into a
// caller-owned array. A bad frame or sample is rejected with a Reject reason and counted; good
// samples in the same frame are kept (LevelDB's log::Reader reports every dropped byte likewise).
//
// Publish: OutputEncoder turns fusion outputs and daemon status into kneeload.v1 messages.
//
// Thread ownership: each object is used by one thread at a time: the decoder by the ingest
// thread, the encoder by whichever thread holds the Publisher's publishing right.
// After warm-up neither allocates: the decoder parses into an arena with a preallocated block,
// the encoder reuses its message objects.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kneeload/fusion/output.hpp"
#include "kneeload/fusion/sample.hpp"
#include "kneeload/proto/counter.hpp"

namespace kneeload::proto {

inline constexpr std::uint32_t kProtocolVersion = 1;
inline constexpr std::size_t kMaxDeviceIdBytes = 64;

// Why input was refused. Frame-level reasons drop the whole frame; sample-level reasons drop
// one sample and keep the rest of its frame.
enum class Reject : std::uint8_t {
  // frame level
  kOversize = 0,        // encoded frame larger than max_frame_bytes
  kMalformed,           // bytes do not parse as a Frame (truncated, garbage)
  kWrongVersion,        // protocol_version != 1
  kBadDeviceId,         // empty or longer than 64 bytes
  kUnknownDevice,       // device id not in the registry
  kKeyNotAllowed,       // CURVE: the connection's key may not send for this device (see Sender)
  kEmptyFrame,          // no samples
  kTooManySamples,      // more than max_samples_per_frame
  kDuplicateSeq,        // same seq as the device's last accepted frame
  kReorderedSeq,        // lower seq than the device's last accepted frame (not a restart)
  // sample level
  kMissingPayload,      // sample with no kind set
  kKindMismatch,        // payload kind differs from the device's registered kind
  kNonFinite,           // NaN or ±inf in any number
  kOutOfRange,          // a number outside its unit's range (see ingest.proto)
  kCellCountMismatch,   // insole pressure count differs from the registered cell count
  kTimeBackwards,       // t_us lower than the device's previous sample
  kCount_,
};
inline constexpr int kRejectCount = static_cast<int>(Reject::kCount_);
inline constexpr int kFirstSampleReject = static_cast<int>(Reject::kMissingPayload);

// Stable snake_case name for metrics, logs and the status message ("unknown_device").
const char* reject_name(Reject r);
inline bool is_frame_reject(Reject r) { return static_cast<int>(r) < kFirstSampleReject; }

// What the registry says about one device; the decoder stamps it onto every sample.
struct DeviceInfo {
  std::uint32_t device = 0;   // stable index, < DeviceTable::capacity
  std::uint32_t runner = 0;
  std::uint32_t station = 0;
  fusion::SensorKind kind = fusion::SensorKind::kInsole;
  fusion::Side side = fusion::Side::kNone;
  int cell_count = 0;         // insoles only
  bool key_pinned = false;    // CURVE: only the key bound to this device may send for it
};

// Who sent a frame, when ingest runs CURVE: the ZAP handler authenticated the connection's
// public key, and the registry says what that key may speak for. A device key speaks only for
// its own device; a gateway key for any device that has no key of its own. Without CURVE
// (loopback or ipc, or allow_plaintext) there is no sender and no check.
struct Sender {
  bool known = false;                       // the key is in the running registry
  std::uint32_t device = UINT32_MAX;        // the device the key is bound to; UINT32_MAX: gateway
};

// Immutable id → DeviceInfo lookup, built off the hot path (start-up, reload).
// find() does a binary search on a sorted vector: no allocation, no hashing of a std::string.
class DeviceTable {
 public:
  DeviceTable() = default;
  // REQUIRES: ids unique. Entries need not be sorted.
  explicit DeviceTable(std::vector<std::pair<std::string, DeviceInfo>> entries);
  // Returns nullptr iff id is not registered.
  const DeviceInfo* find(std::string_view id) const;
  std::size_t size() const { return entries_.size(); }

 private:
  std::vector<std::pair<std::string, DeviceInfo>> entries_;  // sorted by id
};

// Per-device sequence and clock history, owned by the decoder's thread. Indexed by
// DeviceInfo::device; survives reloads so a reload does not forgive a duplicate.
struct DeviceTrack {
  bool seen = false;
  std::uint32_t last_seq = 0;
  std::int64_t last_t_us = 0;
  std::int64_t last_arrival_t_us = 0;
};

struct ValidationLimits {
  std::size_t max_frame_bytes = 65536;
  int max_samples_per_frame = 256;
};

// Counts since start. Written by the decoder's thread only, readable from any thread.
struct DecoderCounters {
  Counter frames_received;
  Counter frames_accepted;   // at least one sample accepted
  Counter samples_accepted;
  Counter seq_gap_frames;    // frames missing according to sequence gaps
  Counter device_restarts;   // seq went back to 0
  std::array<Counter, kRejectCount> rejected;  // frames (frame level) or samples (sample level)
};

// The most recent rejection, for rate-limited log lines ("why"), copied out by the owner.
struct RejectDetail {
  Reject reason = Reject::kMalformed;
  std::uint32_t seq = 0;
  std::int64_t t_us = 0;
  char device_id[kMaxDeviceIdBytes + 1] = {};
};

struct DecodeResult {
  int accepted = 0;  // samples written to the output span
  bool frame_rejected = false;
  Reject frame_reason = Reject::kMalformed;  // valid iff frame_rejected
  int samples_rejected = 0;
};

class FrameDecoder {
 public:
  explicit FrameDecoder(ValidationLimits limits);
  ~FrameDecoder();
  FrameDecoder(const FrameDecoder&) = delete;
  FrameDecoder& operator=(const FrameDecoder&) = delete;

  // Decodes `bytes` (one ZeroMQ message; bytes.size() may exceed max_frame_bytes when the
  // caller's buffer reported truncation: pass the true size in `wire_size`).
  // REQUIRES: out.size() >= limits.max_samples_per_frame; tracks.size() > every device index
  // in `table`. Accepted samples get arrival_t_us (the frame's recorded_arrival_us when a replay
  // set it, else the argument), receive_t_us (always the argument: latency only) and the
  // registry's indices, side and kind.
  // Never throws; every rejection increments counters().rejected[reason].
  // `sender` is null without CURVE; otherwise a frame whose device the sender may not speak for
  // is refused as kKeyNotAllowed before it touches the device's sequence history.
  DecodeResult decode(std::span<const std::byte> bytes, std::size_t wire_size,
                      const DeviceTable& table, std::span<DeviceTrack> tracks,
                      std::int64_t arrival_t_us, std::span<fusion::Sample> out,
                      const Sender* sender = nullptr);

  const DecoderCounters& counters() const { return counters_; }
  const RejectDetail& last_reject() const { return last_reject_; }
  const ValidationLimits& limits() const { return limits_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  ValidationLimits limits_;
  DecoderCounters counters_;
  RejectDetail last_reject_;
};

// Names for indices, supplied by the daemon's registry when encoding.
struct OutputNames {
  std::string_view station;
  std::string_view runner;
  std::string_view device;  // for sensor-fault events; empty otherwise
};

// Per-message envelope values the publisher decides.
struct PublishMeta {
  std::uint64_t seq = 0;
  std::int64_t published_unix_us = 0;
  std::int64_t latency_us = 0;  // release frame's arrival → publish (publish.proto Header)
  std::int64_t age_us = 0;      // source sample's arrival → publish, reorder window included
};

struct NamedCount {
  std::string_view name;
  std::uint64_t value;
};

// Plain mirror of kneeload.v1.DaemonStatus, so the daemon never touches protobuf types.
struct StatusReport {
  std::string_view version;
  std::int64_t uptime_s = 0;
  std::uint64_t frames_received = 0;
  std::uint64_t frames_accepted = 0;
  std::uint64_t samples_accepted = 0;
  std::uint64_t outputs_published = 0;
  std::span<const NamedCount> rejected;
  std::span<const NamedCount> dropped;
  std::uint32_t active_devices = 0;
  std::uint32_t stale_devices = 0;
  std::uint64_t config_generation = 0;
  bool draining = false;
};

enum class Topic : std::uint8_t { kState = 0, kStep, kRisk, kSession, kStatus };
inline constexpr int kTopicCount = 5;
Topic topic_of(const fusion::OutputBody& body);
// "state", "step", "risk", "session", "status"
const char* topic_prefix(Topic t);
// Writes "<prefix>/<station>" (or "status") into buf; returns the length, 0 if it does not fit.
std::size_t format_topic(Topic t, std::string_view station, std::span<char> buf);

class OutputEncoder {
 public:
  OutputEncoder();
  ~OutputEncoder();
  OutputEncoder(const OutputEncoder&) = delete;
  OutputEncoder& operator=(const OutputEncoder&) = delete;

  // Serialises into buf. Returns the byte count, or 0 if buf is too small (nothing written).
  std::size_t encode(const fusion::Output& out, const OutputNames& names, const PublishMeta& meta,
                     std::span<std::byte> buf);
  std::size_t encode_status(const StatusReport& status, const PublishMeta& meta,
                            std::span<std::byte> buf);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kneeload::proto
