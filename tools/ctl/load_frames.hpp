// Pre-encoded frames for `kneeloadctl load` (load.cpp): a template stream rendered once from the
// simulator core, and the in-place patch that turns a template frame into the frame station n
// sends at a given point of its endless stream. A library of its own so that the unit test
// decodes exactly the bytes the command sends.
//
// Template. One healthy simulated runner (2 insoles at 100 Hz, 2 knee IMU pairs at 200 Hz, a
// treadmill at 10 Hz; no console: its stop button would end every session once per loop) is
// rendered for `seconds` and encoded with FrameEncoder, `batch` samples per insole and knee
// frame. Sample times are then put on an exact grid (sample k of a device at k / rate), so that
// every device's frames tile a *slot* (the least common multiple of the frame periods: 100 ms
// at batch 10): no frame straddles a slot boundary. A station that stops after a whole slot has
// sent every sample older than the newest one it sent, so a later run that carries on from
// there never delivers a sample the daemon would have to call late.
//
// Stream. Station n's q-th slot (q = 0, 1, 2, ... for ever) is template slot q mod
// slot_count(), with device time kLoadClockStartUs + q · slot_us() + the sample's offset in its
// slot, seq kLoadSeqStart + q · frames_per_slot(device) + its index in the slot, and
// recorded_arrival_us its last sample's time + transport_delay_us. Times and sequence numbers
// keep growing across loops of the template. Starting the clock at 2^42 µs and seq at 2^21 keeps
// every patched varint at the length the template was encoded with (7 and 4 bytes) for 2^28 −
// 2^21 sequence numbers and 2^49 − 2^42 µs (17 years), so the patch writes in place and the bytes
// stay canonical protobuf, byte for byte what FrameEncoder would have produced for the same values.
//
// Ids: station n (1..99999) is "st%05d", its runner "r%05d", its devices "st%05d-il", "-ir",
// "-kl", "-kr", "-tm": the same length for every station, so the patch is 5 digits in place.
//
// Thread ownership: built on one thread, then read-only (write() is const and reentrant).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kneeload/fusion/sample.hpp"
#include "kneeload/sim/params.hpp"

namespace kneeload::ctl {

inline constexpr std::int64_t kLoadClockStartUs = std::int64_t{1} << 42;
inline constexpr std::uint32_t kLoadSeqStart = std::uint32_t{1} << 21;
inline constexpr int kLoadMaxStations = 99'999;
inline constexpr int kLoadMaxBatch = 100;
inline constexpr int kLoadStationDigits = 5;

// The devices of a load station, in the order the registry lists them.
inline constexpr std::array<fusion::DeviceRole, 5> kLoadRoles{
    fusion::DeviceRole::kInsoleLeft, fusion::DeviceRole::kInsoleRight, fusion::DeviceRole::kKneeLeft,
    fusion::DeviceRole::kKneeRight, fusion::DeviceRole::kTreadmill};

std::string load_station_id(int n);                            // "st00042"
std::string load_runner_id(int n);                             // "r00042"
std::string load_device_id(int n, fusion::DeviceRole role);    // "st00042-kl"
// Writes station n's kLoadStationDigits digits ("00042"), no terminator.
void load_station_digits(int n, char* out);

struct LoadTemplateOptions {
  int batch = 10;           // samples per insole and knee frame, 1..kLoadMaxBatch
  double seconds = 60.0;    // template length before it loops (rounded to whole slots)
  std::uint64_t seed = 1;
  std::int64_t transport_delay_us = 5'000;  // recorded arrival − the frame's last sample
};

// The simulated runner the template renders; --print-config registers the same body, insoles
// and knees for every station.
sim::SimConfig load_sim_config(const LoadTemplateOptions& options);

// kneeloadd configuration registering `stations` load stations with `workers` fusion workers
// (-1: the daemon's default; 0: fusion on the ingest thread), for frames of `batch` samples. `command` is quoted in the header.
std::string load_daemon_config(int stations, int workers, int batch, const std::string& command);

class LoadTemplate {
 public:
  // One varint to patch: where it starts and its value relative to the slot's start.
  struct TimeField {
    std::uint32_t at;
    std::int64_t in_slot_us;
  };
  struct Frame {
    std::string bytes;  // as encoded for station 0, slot 0
    fusion::DeviceRole role = fusion::DeviceRole::kInsoleLeft;
    int samples = 0;
    std::uint32_t seq_in_slot = 0;
    std::uint32_t digits_at = 0;   // the 5 station digits of device_id
    std::uint32_t seq_at = 0;      // 4-byte varint
    std::uint32_t arrival_at = 0;  // 7-byte varint
    std::int64_t arrival_in_slot_us = 0;
    std::vector<TimeField> t_us;   // each sample's 7-byte t_us varint
  };

  // Renders and encodes. Throws std::invalid_argument for options out of range and
  // std::logic_error if the encoding is not the one the patch expects (a schema change).
  explicit LoadTemplate(const LoadTemplateOptions& options);

  std::int64_t slot_us() const { return slot_us_; }
  int slot_count() const { return static_cast<int>(slots_.size()); }
  // Template slot j's frames in send order: by recorded arrival, then by device.
  std::span<const Frame> slot(int j) const { return slots_[static_cast<std::size_t>(j)]; }
  std::uint32_t frames_per_slot(fusion::DeviceRole role) const {
    return frames_per_slot_[static_cast<std::size_t>(role)];
  }
  // Samples across all of a station's devices in one pass over the template.
  std::uint64_t samples_per_loop() const { return samples_per_loop_; }
  // The last slot position q whose times and sequence numbers keep their varint lengths.
  std::int64_t max_position() const { return max_position_; }

  // Writes `frame` as station `digits` (kLoadStationDigits characters, "00042") sends it in its
  // q-th slot into out[0 .. frame.bytes.size()). REQUIRES: 0 <= q <= max_position().
  void write(const Frame& frame, const char* digits, std::int64_t q, std::byte* out) const;

 private:
  std::int64_t slot_us_ = 0;
  std::vector<std::vector<Frame>> slots_;
  std::array<std::uint32_t, fusion::kDeviceRoleCount> frames_per_slot_{};
  std::uint64_t samples_per_loop_ = 0;
  std::int64_t max_position_ = 0;
};

// Which station sends which slot next. The schedule goes round the stations one slot each, in
// device-time order per station; station i (0-based) starts `offset(i)` slots into the template,
// so stations step at different moments instead of all at once. A cursor counts (station, slot)
// groups sent; a run that stops at cursor c and a later run that starts there give every
// station one seamless stream.
class LoadSchedule {
 public:
  LoadSchedule(int stations, int slot_count) : stations_(stations), slot_count_(slot_count) {}
  int station_index(std::uint64_t cursor) const { return static_cast<int>(cursor % static_cast<std::uint64_t>(stations_)); }
  std::int64_t position(std::uint64_t cursor) const {
    return static_cast<std::int64_t>(cursor / static_cast<std::uint64_t>(stations_)) + offset(station_index(cursor));
  }
  std::int64_t offset(int index) const {
    return static_cast<std::int64_t>(index) * slot_count_ / stations_;
  }

 private:
  int stations_;
  int slot_count_;
};

}  // namespace kneeload::ctl
