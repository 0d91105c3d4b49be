// The kneeloadctl recording format: raw ingest frames with their arrival times, written by
// `kneeloadctl record` and read by `kneeloadctl replay` (and by tests and research scripts).
//
// File layout, every integer little-endian:
//
//   header
//     0   8  magic "KNLDREC1"
//     8   4  u32 format version (kRecordingFormatVersion = 1)
//    12   4  u32 schema version: the kneeload.v1 protocol_version the frames were sent with (1)
//    16   8  i64 creation time, Unix µs (the recorder's wall clock)
//    24   4  u32 config length n (≤ kMaxConfigBytes)
//    28   n  config snapshot: the bytes of the daemon TOML given with --config, else empty
//  28+n   4  u32 CRC-32C of bytes [0, 28+n)
//   records, from byte 32+n to the end of the file, each
//     0   4  u32 payload length m (≤ kMaxPayloadBytes)
//     4   8  i64 arrival_unix_us: the recorder's wall clock when the frame arrived
//    12   8  i64 arrival_steady_us: the recorder's steady clock (CLOCK_MONOTONIC) at arrival;
//            replay paces by it and stamps it into Frame.recorded_arrival_us
//    20   m  payload: the ZeroMQ message exactly as received (normally a kneeload.v1.Frame)
//  20+m   4  u32 CRC-32C of bytes [4, 20+m) of the record (arrival times and payload)
//
// A recording has no index or footer, so a recorder that dies leaves a file that is good up to
// its last complete record. Readers stop at the first damage and say where it is (byte offset,
// record index, reason), after returning every good record before it, like LevelDB's
// log::Reader reporting dropped bytes. There is no resynchronisation past damage: a replay must
// not silently skip frames.
//
// Thread ownership: a writer or reader belongs to one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

namespace kneeload::ctl {

inline constexpr char kRecordingMagic[8] = {'K', 'N', 'L', 'D', 'R', 'E', 'C', '1'};
inline constexpr std::uint32_t kRecordingFormatVersion = 1;
// ingest.max_frame_bytes cannot exceed this either, so no frame a daemon accepts is refused.
inline constexpr std::size_t kMaxPayloadBytes = 16u * 1024 * 1024;
inline constexpr std::size_t kMaxConfigBytes = 16u * 1024 * 1024;
inline constexpr std::size_t kHeaderFixedBytes = 28;  // before the config bytes
inline constexpr std::size_t kRecordPrefixBytes = 20;  // length + two arrival times
inline constexpr std::size_t kCrcBytes = 4;

struct RecordingHeader {
  std::uint32_t format_version = kRecordingFormatVersion;
  std::uint32_t schema_version = 1;
  std::int64_t created_unix_us = 0;
  std::string config;  // daemon TOML snapshot, may be empty
};

struct RecordedFrame {
  std::int64_t arrival_unix_us = 0;
  std::int64_t arrival_steady_us = 0;
  std::string payload;
  std::uint64_t offset = 0;  // byte offset of the record in the file
  std::uint64_t index = 0;   // 0 for the first record
};

enum class Damage : std::uint8_t {
  kNone = 0,
  kReadError,           // the OS refused to read (errno in the detail)
  kShortHeader,         // the file ends inside the header
  kBadMagic,            // not a kneeloadctl recording
  kUnsupportedVersion,  // a format or schema version this tool does not read
  kConfigOverLimit,     // header config length > kMaxConfigBytes
  kHeaderCrcMismatch,
  kShortRecord,         // the file ends inside a record (a recorder that was killed, a cut copy)
  kLengthOverLimit,     // record payload length > kMaxPayloadBytes
  kCrcMismatch,         // the record's bytes changed after it was written
};

// "CRC mismatch", "short record", …
const char* damage_name(Damage d);

struct DamageReport {
  Damage reason = Damage::kNone;
  std::uint64_t offset = 0;        // first byte of the damaged header or record
  std::uint64_t record_index = 0;  // index of the damaged record (= good records before it)
  bool in_header = false;
  std::string detail;              // numbers: expected vs got
};

// "byte 1234, record 17: CRC mismatch (stored 0x…, computed 0x…)".
std::string describe(const DamageReport& damage);

class RecordingWriter {
 public:
  RecordingWriter() = default;
  ~RecordingWriter();  // closes the file if open (errors ignored: call close() to see them)
  RecordingWriter(const RecordingWriter&) = delete;
  RecordingWriter& operator=(const RecordingWriter&) = delete;

  // Creates `path` and writes `header`. An existing file is refused unless `overwrite`.
  // Returns false with a message in `error`.
  bool open(const std::string& path, bool overwrite, const RecordingHeader& header,
            std::string& error);
  // REQUIRES: open; payload.size() <= kMaxPayloadBytes.
  bool append(std::int64_t arrival_unix_us, std::int64_t arrival_steady_us,
              std::span<const std::byte> payload, std::string& error);
  // Hands buffered records to the kernel, so a crash after it loses nothing before it.
  bool flush(std::string& error);
  // Flushes, fsyncs and closes. Idempotent.
  bool close(std::string& error);

  std::uint64_t records() const { return records_; }
  std::uint64_t bytes() const { return bytes_; }  // file size so far, header included

 private:
  bool write(const void* data, std::size_t n, std::string& error);

  std::FILE* file_ = nullptr;
  std::string path_;
  std::uint64_t records_ = 0;
  std::uint64_t bytes_ = 0;
};

class RecordingReader {
 public:
  enum class Next : std::uint8_t { kRecord, kEnd, kDamaged };

  RecordingReader() = default;
  ~RecordingReader();
  RecordingReader(const RecordingReader&) = delete;
  RecordingReader& operator=(const RecordingReader&) = delete;

  // Opens `path` and reads its header. Returns false with a message in `error` when the file
  // cannot be opened; a damaged header returns true and the first next() reports it, so every
  // damage is reported the same way.
  bool open(const std::string& path, std::string& error);
  // Valid after open() when next() has not reported header damage.
  const RecordingHeader& header() const { return header_; }
  bool header_ok() const { return damage_.reason == Damage::kNone || !damage_.in_header; }

  // kRecord: `out` holds the next record. kEnd: the file ended cleanly at a record boundary.
  // kDamaged: see damage(); every later call returns kDamaged again.
  Next next(RecordedFrame& out);
  const DamageReport& damage() const { return damage_; }
  std::uint64_t offset() const { return offset_; }  // bytes consumed so far
  std::uint64_t file_size() const { return file_size_; }

 private:
  void read_header();
  // Reads exactly n bytes; returns the count actually read (short at end of file).
  std::size_t read(void* data, std::size_t n);
  Next fail(Damage reason, std::uint64_t offset, bool in_header, std::string detail);

  std::FILE* file_ = nullptr;
  RecordingHeader header_;
  DamageReport damage_;
  std::uint64_t offset_ = 0;
  std::uint64_t file_size_ = 0;
  std::uint64_t next_index_ = 0;
  int read_errno_ = 0;
};

}  // namespace kneeload::ctl
