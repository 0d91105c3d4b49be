// The recording format (tools/ctl/recording.hpp) at the byte level: the layout the README
// documents, CRC-32C, and the reader stopping at the first damage of every kind with the right
// offset and record index.
#include <gtest/gtest.h>

#include <cstring>

#include "../integration/daemon_harness.hpp"
#include "crc32c.hpp"
#include "recording.hpp"

namespace kneeload::testing {
namespace {

using ctl::Damage;
using ctl::RecordedFrame;
using ctl::RecordingHeader;
using ctl::RecordingReader;
using ctl::RecordingWriter;

std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

std::uint32_t u32_at(const std::string& b, std::size_t at) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + i])) << (8 * i);
  return v;
}

std::int64_t i64_at(const std::string& b, std::size_t at) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(b[at + i])) << (8 * i);
  return static_cast<std::int64_t>(v);
}

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct Written {
  std::string config = "[publish]\nheartbeat_s = 0.1\n";
  std::vector<std::string> payloads{std::string("\x08\x01\x12\x02id", 6), std::string(), std::string(300, 'x')};
  std::vector<std::int64_t> unix_us{1'700'000'000'000'001, 1'700'000'000'000'002, -3};
  std::vector<std::int64_t> steady_us{5'000'000, 5'000'100, 5'250'000};
};

void write_recording(const fs::path& path, const Written& w) {
  RecordingWriter writer;
  std::string error;
  RecordingHeader header;
  header.created_unix_us = 1'700'000'000'000'000;
  header.config = w.config;
  ASSERT_TRUE(writer.open(path.string(), false, header, error)) << error;
  for (std::size_t i = 0; i < w.payloads.size(); ++i) {
    ASSERT_TRUE(writer.append(w.unix_us[i], w.steady_us[i], bytes_of(w.payloads[i]), error)) << error;
  }
  ASSERT_TRUE(writer.close(error)) << error;
}

// Everything a reader returns, and how it ended.
struct ReadBack {
  std::vector<RecordedFrame> records;
  RecordingReader::Next end = RecordingReader::Next::kEnd;
  ctl::DamageReport damage;
};

ReadBack read_all(const fs::path& path) {
  ReadBack r;
  RecordingReader reader;
  std::string error;
  EXPECT_TRUE(reader.open(path.string(), error)) << error;
  RecordedFrame rec;
  while ((r.end = reader.next(rec)) == RecordingReader::Next::kRecord) r.records.push_back(rec);
  r.damage = reader.damage();
  return r;
}

TEST(Crc32c, MatchesTheStandardCheckValueAndContinues) {
  const std::string digits = "123456789";
  EXPECT_EQ(ctl::crc32c(bytes_of(digits)), 0xE3069283u);
  EXPECT_EQ(ctl::crc32c(bytes_of(digits.substr(4)), ctl::crc32c(bytes_of(digits.substr(0, 4)))), 0xE3069283u);
  EXPECT_EQ(ctl::crc32c({}), 0u);
}

TEST(Recording, WriterProducesTheDocumentedLayout) {
  TempDir dir;
  const fs::path path = dir.path() / "a.rec";
  const Written w;
  write_recording(path, w);
  const std::string b = read_bytes(path);

  ASSERT_GE(b.size(), 32u + w.config.size());
  EXPECT_EQ(b.substr(0, 8), "KNLDREC1");
  EXPECT_EQ(u32_at(b, 8), 1u) << "format version";
  EXPECT_EQ(u32_at(b, 12), 1u) << "schema version";
  EXPECT_EQ(i64_at(b, 16), 1'700'000'000'000'000) << "creation time";
  ASSERT_EQ(u32_at(b, 24), w.config.size());
  EXPECT_EQ(b.substr(28, w.config.size()), w.config);
  std::size_t at = 28 + w.config.size();
  EXPECT_EQ(u32_at(b, at), ctl::crc32c(bytes_of(b.substr(0, at)))) << "header CRC over bytes [0, 28+n)";
  at += 4;
  for (std::size_t i = 0; i < w.payloads.size(); ++i) {
    const std::size_t m = w.payloads[i].size();
    ASSERT_LE(at + 24 + m, b.size()) << "record " << i;
    EXPECT_EQ(u32_at(b, at), m) << "record " << i;
    EXPECT_EQ(i64_at(b, at + 4), w.unix_us[i]) << "record " << i;
    EXPECT_EQ(i64_at(b, at + 12), w.steady_us[i]) << "record " << i;
    EXPECT_EQ(b.substr(at + 20, m), w.payloads[i]) << "record " << i;
    EXPECT_EQ(u32_at(b, at + 20 + m), ctl::crc32c(bytes_of(b.substr(at + 4, 16 + m)))) << "record " << i;
    at += 24 + m;
  }
  EXPECT_EQ(at, b.size()) << "nothing after the last record";
}

TEST(Recording, ReaderReturnsEveryRecordThenEnds) {
  TempDir dir;
  const fs::path path = dir.path() / "a.rec";
  const Written w;
  write_recording(path, w);
  RecordingReader reader;
  std::string error;
  ASSERT_TRUE(reader.open(path.string(), error)) << error;
  EXPECT_EQ(reader.header().config, w.config);
  EXPECT_EQ(reader.header().created_unix_us, 1'700'000'000'000'000);
  const ReadBack r = read_all(path);
  EXPECT_EQ(r.end, RecordingReader::Next::kEnd) << ctl::describe(r.damage);
  ASSERT_EQ(r.records.size(), w.payloads.size());
  for (std::size_t i = 0; i < w.payloads.size(); ++i) {
    EXPECT_EQ(r.records[i].payload, w.payloads[i]);
    EXPECT_EQ(r.records[i].arrival_unix_us, w.unix_us[i]);
    EXPECT_EQ(r.records[i].arrival_steady_us, w.steady_us[i]);
    EXPECT_EQ(r.records[i].index, i);
  }
}

TEST(Recording, WriterRefusesToReplaceAFileUnlessTold) {
  TempDir dir;
  const fs::path path = dir.path() / "a.rec";
  write_file(path, "precious");
  RecordingWriter writer;
  std::string error;
  EXPECT_FALSE(writer.open(path.string(), false, RecordingHeader{}, error));
  EXPECT_NE(error.find("File exists"), std::string::npos) << error;
  EXPECT_EQ(read_file(path), "precious");
  RecordingWriter overwriting;
  EXPECT_TRUE(overwriting.open(path.string(), true, RecordingHeader{}, error)) << error;
}

// Record i's first byte, from the documented layout.
std::vector<std::size_t> record_offsets(const Written& w) {
  std::vector<std::size_t> offsets;
  std::size_t at = 32 + w.config.size();
  for (const std::string& p : w.payloads) {
    offsets.push_back(at);
    at += 24 + p.size();
  }
  offsets.push_back(at);  // end of file
  return offsets;
}

TEST(Recording, ATruncatedFileIsReadUpToTheCutWhereverItFalls) {
  TempDir dir;
  const Written w;
  const fs::path good = dir.path() / "good.rec", cut = dir.path() / "cut.rec";
  write_recording(good, w);
  const std::string b = read_bytes(good);
  const std::vector<std::size_t> offsets = record_offsets(w);
  for (std::size_t size = 0; size < b.size(); ++size) {
    write_bytes(cut, b.substr(0, size));
    const ReadBack r = read_all(cut);
    std::size_t complete = 0;  // records wholly inside the first `size` bytes
    while (complete < w.payloads.size() && offsets[complete + 1] <= size) ++complete;
    if (size < offsets[0]) {
      EXPECT_EQ(r.end, RecordingReader::Next::kDamaged) << "cut at " << size;
      EXPECT_TRUE(r.damage.in_header) << "cut at " << size;
      EXPECT_EQ(r.damage.reason, Damage::kShortHeader)
          << "cut at " << size << ": " << ctl::describe(r.damage);
      continue;
    }
    EXPECT_EQ(r.records.size(), complete) << "cut at " << size;
    if (size == offsets[complete]) {
      // The format has no footer (a recorder that dies cannot write one), so a cut exactly
      // between two records reads as a shorter recording.
      EXPECT_EQ(r.end, RecordingReader::Next::kEnd) << "cut between records, at " << size;
      continue;
    }
    EXPECT_EQ(r.end, RecordingReader::Next::kDamaged) << "cut at " << size;
    EXPECT_EQ(r.damage.reason, Damage::kShortRecord) << "cut at " << size << ": " << ctl::describe(r.damage);
    EXPECT_EQ(r.damage.offset, offsets[complete]) << "cut at " << size;
    EXPECT_EQ(r.damage.record_index, complete) << "cut at " << size;
  }
}

TEST(Recording, AFlippedByteStopsTheReaderAtItsRecordWhereverItIs) {
  TempDir dir;
  const Written w;
  const fs::path good = dir.path() / "good.rec", bad = dir.path() / "bad.rec";
  write_recording(good, w);
  const std::string b = read_bytes(good);
  const std::vector<std::size_t> offsets = record_offsets(w);
  for (std::size_t at = 0; at < b.size(); ++at) {
    std::string flipped = b;
    flipped[at] = static_cast<char>(flipped[at] ^ 0x10);
    write_bytes(bad, flipped);
    const ReadBack r = read_all(bad);
    ASSERT_EQ(r.end, RecordingReader::Next::kDamaged) << "flip at " << at << " went unnoticed";
    if (at < offsets[0]) {
      EXPECT_TRUE(r.damage.in_header) << "flip at " << at;
      EXPECT_TRUE(r.records.empty());
      continue;
    }
    std::size_t record = 0;
    while (offsets[record + 1] <= at) ++record;
    EXPECT_EQ(r.records.size(), record) << "flip at " << at;
    EXPECT_EQ(r.damage.record_index, record) << "flip at " << at << ": " << ctl::describe(r.damage);
    EXPECT_EQ(r.damage.offset, offsets[record]) << "flip at " << at;
    // A flip in the length field reads as another length: a record running past the end of
    // the file (short) or over the limit; anywhere else the CRC catches it.
    if (at >= offsets[record] + 4) {
      EXPECT_EQ(r.damage.reason, Damage::kCrcMismatch) << "flip at " << at << ": " << ctl::describe(r.damage);
    }
  }
}

TEST(Recording, HeaderDamageIsNamed) {
  TempDir dir;
  const Written w;
  const fs::path good = dir.path() / "good.rec", bad = dir.path() / "bad.rec";
  write_recording(good, w);
  const std::string b = read_bytes(good);
  const auto damage_of = [&](std::string bytes) {
    write_bytes(bad, bytes);
    return read_all(bad).damage;
  };
  EXPECT_EQ(damage_of("not a recording at all, but long enough").reason, Damage::kBadMagic);
  EXPECT_EQ(damage_of("KNL").reason, Damage::kShortHeader);
  EXPECT_EQ(damage_of("XNL").reason, Damage::kBadMagic);
  std::string v2 = b;
  v2[8] = 2;
  const ctl::DamageReport version = damage_of(v2);
  EXPECT_EQ(version.reason, Damage::kUnsupportedVersion);
  EXPECT_NE(ctl::describe(version).find("format version 2"), std::string::npos) << ctl::describe(version);
  std::string huge_config = b;
  huge_config[27] = '\x7f';
  EXPECT_EQ(damage_of(huge_config).reason, Damage::kConfigOverLimit);
  std::string changed_config = b;
  changed_config[30] ^= 1;
  const ctl::DamageReport crc = damage_of(changed_config);
  EXPECT_EQ(crc.reason, Damage::kHeaderCrcMismatch);
  EXPECT_EQ(ctl::describe(crc).rfind("byte 0, in the header: header CRC mismatch (stored 0x", 0), 0u)
      << ctl::describe(crc);
}

TEST(Recording, ALengthOverTheLimitIsNamed) {
  TempDir dir;
  const Written w;
  const fs::path good = dir.path() / "good.rec", bad = dir.path() / "bad.rec";
  write_recording(good, w);
  std::string b = read_bytes(good);
  const std::size_t second = record_offsets(w)[1];
  b.replace(second, 4, std::string("\xff\xff\xff\xff", 4));
  write_bytes(bad, b);
  const ReadBack r = read_all(bad);
  EXPECT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.damage.reason, Damage::kLengthOverLimit);
  EXPECT_EQ(ctl::describe(r.damage),
            "byte " + std::to_string(second) + ", record 1: length over limit (length 4294967295, limit 16777216)");
}

}  // namespace
}  // namespace kneeload::testing
