#include "recording.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstring>

#include "crc32c.hpp"

namespace kneeload::ctl {
namespace {

// Large enough that a busy recorder writes in big chunks, small enough to flush often.
constexpr std::size_t kWriteBufferBytes = 1u << 20;

void put_u32(std::byte* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xFFu);
}

void put_i64(std::byte* p, std::int64_t value) {
  const auto v = static_cast<std::uint64_t>(value);
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xFFu);
}

std::uint32_t get_u32(const std::byte* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(p[i]) << (8 * i);
  return v;
}

std::int64_t get_i64(const std::byte* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return static_cast<std::int64_t>(v);
}

std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

std::string hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08" PRIx32, v);
  return buf;
}

}  // namespace

const char* damage_name(Damage d) {
  switch (d) {
    case Damage::kNone: return "no damage";
    case Damage::kReadError: return "read error";
    case Damage::kShortHeader: return "short header";
    case Damage::kBadMagic: return "bad magic";
    case Damage::kUnsupportedVersion: return "unsupported version";
    case Damage::kConfigOverLimit: return "config length over limit";
    case Damage::kHeaderCrcMismatch: return "header CRC mismatch";
    case Damage::kShortRecord: return "short record";
    case Damage::kLengthOverLimit: return "length over limit";
    case Damage::kCrcMismatch: return "CRC mismatch";
  }
  return "unknown damage";
}

std::string describe(const DamageReport& damage) {
  std::string s = "byte " + std::to_string(damage.offset) + ", ";
  s += damage.in_header ? std::string("in the header") : "record " + std::to_string(damage.record_index);
  s += ": ";
  s += damage_name(damage.reason);
  if (!damage.detail.empty()) s += " (" + damage.detail + ")";
  return s;
}

// ---------------------------------------------------------------------------------------------
// Writer

RecordingWriter::~RecordingWriter() {
  std::string ignored;
  close(ignored);
}

bool RecordingWriter::open(const std::string& path, bool overwrite, const RecordingHeader& header,
                           std::string& error) {
  if (header.config.size() > kMaxConfigBytes) {
    error = "config snapshot of " + std::to_string(header.config.size()) + " bytes is over the " +
            std::to_string(kMaxConfigBytes) + "-byte limit";
    return false;
  }
  // "x": created here or refused, atomically; a recording is never silently replaced.
  file_ = std::fopen(path.c_str(), overwrite ? "wb" : "wbx");
  if (file_ == nullptr) {
    error = path + ": " + std::strerror(errno);
    return false;
  }
  path_ = path;
  std::setvbuf(file_, nullptr, _IOFBF, kWriteBufferBytes);
  std::byte fixed[kHeaderFixedBytes];
  std::memcpy(fixed, kRecordingMagic, sizeof kRecordingMagic);
  put_u32(fixed + 8, header.format_version);
  put_u32(fixed + 12, header.schema_version);
  put_i64(fixed + 16, header.created_unix_us);
  put_u32(fixed + 24, static_cast<std::uint32_t>(header.config.size()));
  std::uint32_t crc = crc32c(fixed);
  crc = crc32c(bytes_of(header.config), crc);
  std::byte crc_bytes[kCrcBytes];
  put_u32(crc_bytes, crc);
  return write(fixed, sizeof fixed, error) && write(header.config.data(), header.config.size(), error) &&
         write(crc_bytes, sizeof crc_bytes, error);
}

bool RecordingWriter::append(std::int64_t arrival_unix_us, std::int64_t arrival_steady_us,
                             std::span<const std::byte> payload, std::string& error) {
  std::byte prefix[kRecordPrefixBytes];
  put_u32(prefix, static_cast<std::uint32_t>(payload.size()));
  put_i64(prefix + 4, arrival_unix_us);
  put_i64(prefix + 12, arrival_steady_us);
  std::uint32_t crc = crc32c(std::span<const std::byte>(prefix + 4, kRecordPrefixBytes - 4));
  crc = crc32c(payload, crc);
  std::byte crc_bytes[kCrcBytes];
  put_u32(crc_bytes, crc);
  if (!write(prefix, sizeof prefix, error) || !write(payload.data(), payload.size(), error) ||
      !write(crc_bytes, sizeof crc_bytes, error)) {
    return false;
  }
  ++records_;
  return true;
}

bool RecordingWriter::write(const void* data, std::size_t n, std::string& error) {
  if (n > 0 && std::fwrite(data, 1, n, file_) != n) {
    error = path_ + ": " + std::strerror(errno);
    return false;
  }
  bytes_ += n;
  return true;
}

bool RecordingWriter::flush(std::string& error) {
  if (file_ == nullptr) return true;
  if (std::fflush(file_) != 0) {
    error = path_ + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

bool RecordingWriter::close(std::string& error) {
  if (file_ == nullptr) return true;
  bool ok = flush(error);
  // fsync: the recording is the evidence of a run; make it survive a power cut after "closed".
  if (ok && ::fsync(::fileno(file_)) != 0 && errno != EINVAL) {
    error = path_ + ": fsync: " + std::strerror(errno);
    ok = false;
  }
  if (std::fclose(file_) != 0 && ok) {
    error = path_ + ": " + std::strerror(errno);
    ok = false;
  }
  file_ = nullptr;
  return ok;
}

// ---------------------------------------------------------------------------------------------
// Reader

RecordingReader::~RecordingReader() {
  if (file_ != nullptr) std::fclose(file_);
}

bool RecordingReader::open(const std::string& path, std::string& error) {
  file_ = std::fopen(path.c_str(), "rb");
  if (file_ == nullptr) {
    error = path + ": " + std::strerror(errno);
    return false;
  }
  struct stat st {};
  if (::fstat(::fileno(file_), &st) == 0 && S_ISDIR(st.st_mode)) {
    error = path + ": is a directory";
    return false;
  }
  file_size_ = st.st_size > 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
  read_header();
  return true;
}

std::size_t RecordingReader::read(void* data, std::size_t n) {
  const std::size_t got = n == 0 ? 0 : std::fread(data, 1, n, file_);
  if (got < n && std::ferror(file_)) read_errno_ = errno;
  offset_ += got;
  return got;
}

RecordingReader::Next RecordingReader::fail(Damage reason, std::uint64_t offset, bool in_header,
                                            std::string detail) {
  if (read_errno_ != 0) {
    reason = Damage::kReadError;
    detail = std::strerror(read_errno_);
  }
  damage_ = DamageReport{reason, offset, next_index_, in_header, std::move(detail)};
  return Next::kDamaged;
}

void RecordingReader::read_header() {
  std::byte fixed[kHeaderFixedBytes];
  const std::size_t got = read(fixed, sizeof fixed);
  // The magic is checked on whatever was read, so a short file of something else is "bad
  // magic", not "short header".
  const std::size_t magic_bytes = got < sizeof kRecordingMagic ? got : sizeof kRecordingMagic;
  if (std::memcmp(fixed, kRecordingMagic, magic_bytes) != 0) {
    fail(Damage::kBadMagic, 0, true, "expected \"KNLDREC1\": not a kneeloadctl recording");
    return;
  }
  if (got < sizeof fixed) {
    fail(Damage::kShortHeader, 0, true,
         "the file has " + std::to_string(file_size_) + " bytes, a header at least " +
             std::to_string(kHeaderFixedBytes + kCrcBytes));
    return;
  }
  header_.format_version = get_u32(fixed + 8);
  // The format version says how the rest is laid out, so it is checked before anything else.
  if (header_.format_version != kRecordingFormatVersion) {
    fail(Damage::kUnsupportedVersion, 0, true,
         "format version " + std::to_string(header_.format_version) + ", this kneeloadctl reads " +
             std::to_string(kRecordingFormatVersion));
    return;
  }
  header_.schema_version = get_u32(fixed + 12);
  header_.created_unix_us = get_i64(fixed + 16);
  const std::uint32_t config_bytes = get_u32(fixed + 24);
  if (config_bytes > kMaxConfigBytes) {
    fail(Damage::kConfigOverLimit, 0, true,
         "config length " + std::to_string(config_bytes) + ", limit " + std::to_string(kMaxConfigBytes));
    return;
  }
  header_.config.resize(config_bytes);
  std::byte crc_bytes[kCrcBytes];
  if (read(header_.config.data(), config_bytes) < config_bytes ||
      read(crc_bytes, sizeof crc_bytes) < sizeof crc_bytes) {
    fail(Damage::kShortHeader, 0, true,
         "the header needs " + std::to_string(kHeaderFixedBytes + config_bytes + kCrcBytes) +
             " bytes, the file has " + std::to_string(file_size_));
    return;
  }
  const std::uint32_t stored = get_u32(crc_bytes);
  const std::uint32_t computed = crc32c(bytes_of(header_.config), crc32c(fixed));
  if (stored != computed) {
    fail(Damage::kHeaderCrcMismatch, 0, true, "stored " + hex32(stored) + ", computed " + hex32(computed));
    return;
  }
  if (header_.schema_version != 1) {
    fail(Damage::kUnsupportedVersion, 0, true,
         "schema version " + std::to_string(header_.schema_version) +
             ", this kneeloadctl speaks kneeload.v1 protocol 1");
  }
}

RecordingReader::Next RecordingReader::next(RecordedFrame& out) {
  if (damage_.reason != Damage::kNone) return Next::kDamaged;
  const std::uint64_t start = offset_;
  std::byte prefix[kRecordPrefixBytes];
  const std::size_t got = read(prefix, sizeof prefix);
  if (got == 0 && read_errno_ == 0) return Next::kEnd;
  const auto short_record = [&](std::uint64_t need) {
    return fail(Damage::kShortRecord, start, false,
                "the record needs " + std::to_string(need) + " bytes, the file ends " +
                    std::to_string(file_size_ - start) + " bytes after its start");
  };
  if (got < sizeof prefix) return short_record(kRecordPrefixBytes + kCrcBytes);
  const std::uint32_t length = get_u32(prefix);
  if (length > kMaxPayloadBytes) {
    return fail(Damage::kLengthOverLimit, start, false,
                "length " + std::to_string(length) + ", limit " + std::to_string(kMaxPayloadBytes));
  }
  const std::uint64_t need = kRecordPrefixBytes + std::uint64_t{length} + kCrcBytes;
  out.payload.resize(length);
  if (read(out.payload.data(), length) < length) return short_record(need);
  std::byte crc_bytes[kCrcBytes];
  if (read(crc_bytes, sizeof crc_bytes) < sizeof crc_bytes) return short_record(need);
  const std::uint32_t stored = get_u32(crc_bytes);
  const std::uint32_t computed =
      crc32c(bytes_of(out.payload), crc32c(std::span<const std::byte>(prefix + 4, kRecordPrefixBytes - 4)));
  if (stored != computed) {
    return fail(Damage::kCrcMismatch, start, false, "stored " + hex32(stored) + ", computed " + hex32(computed));
  }
  out.arrival_unix_us = get_i64(prefix + 4);
  out.arrival_steady_us = get_i64(prefix + 12);
  out.offset = start;
  out.index = next_index_++;
  return Next::kRecord;
}

}  // namespace kneeload::ctl
