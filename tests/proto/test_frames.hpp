// Builders for ingest frames and a device table shared by the proto/ tests. Frames are built
// with the generated classes, i.e. the way a device or gateway would build them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kneeload/proto/codec.hpp"
#include "kneeload/v1/ingest.pb.h"

namespace kneeload::proto::test {

namespace v1 = kneeload::v1;

// Ids longer than std::string's 15-byte small buffer on purpose: a decoder that copied the id
// into a std::string would allocate, and the allocation test would see it.
inline constexpr std::string_view kInsoleLeftId = "station-a/runner-01/insole-left";
inline constexpr std::string_view kInsoleRightId = "station-a/runner-01/insole-right";
inline constexpr std::string_view kKneeLeftId = "station-a/runner-01/knee-left";
inline constexpr std::string_view kTreadmillId = "treadmill-a";
inline constexpr std::string_view kConsoleId = "console-a";

inline constexpr std::uint32_t kInsoleLeftDevice = 0;
inline constexpr std::uint32_t kInsoleRightDevice = 1;
inline constexpr std::uint32_t kKneeLeftDevice = 2;
inline constexpr std::uint32_t kTreadmillDevice = 3;
inline constexpr std::uint32_t kConsoleDevice = 4;
inline constexpr std::size_t kDeviceCapacity = 8;

inline constexpr std::uint32_t kRunner = 5;
inline constexpr std::uint32_t kStation = 7;
inline constexpr int kInsoleCells = 16;

inline DeviceInfo device_info(std::uint32_t device, fusion::SensorKind kind, fusion::Side side,
                              int cells = 0) {
  DeviceInfo info;
  info.device = device;
  info.runner = kRunner;
  info.station = kStation;
  info.kind = kind;
  info.side = side;
  info.cell_count = cells;
  return info;
}

// Deliberately not in id order: DeviceTable must sort.
inline DeviceTable make_table() {
  using fusion::SensorKind;
  using fusion::Side;
  std::vector<std::pair<std::string, DeviceInfo>> entries;
  entries.emplace_back(std::string(kTreadmillId),
                       device_info(kTreadmillDevice, SensorKind::kTreadmill, Side::kNone));
  entries.emplace_back(
      std::string(kInsoleRightId),
      device_info(kInsoleRightDevice, SensorKind::kInsole, Side::kRight, kInsoleCells));
  entries.emplace_back(std::string(kKneeLeftId),
                       device_info(kKneeLeftDevice, SensorKind::kKnee, Side::kLeft));
  entries.emplace_back(
      std::string(kInsoleLeftId),
      device_info(kInsoleLeftDevice, SensorKind::kInsole, Side::kLeft, kInsoleCells));
  entries.emplace_back(std::string(kConsoleId),
                       device_info(kConsoleDevice, SensorKind::kConsole, Side::kNone));
  return DeviceTable(std::move(entries));
}

inline void set_imu(v1::Imu6* imu, float accel_mps2, float gyro_radps) {
  imu->set_accel_x_mps2(accel_mps2);
  imu->set_accel_y_mps2(-accel_mps2 / 2);
  imu->set_accel_z_mps2(9.81f);
  imu->set_gyro_x_radps(gyro_radps);
  imu->set_gyro_y_radps(-gyro_radps / 2);
  imu->set_gyro_z_radps(0.25f);
}

// Cell i reads base_pa + 1000·i.
inline v1::Sample insole_sample(std::int64_t t_us, int cells = kInsoleCells,
                                float base_pa = 50'000.0f, bool with_imu = true) {
  v1::Sample s;
  s.set_t_us(t_us);
  v1::InsoleSample* insole = s.mutable_insole();
  for (int i = 0; i < cells; ++i)
    insole->add_pressure_pa(base_pa + 1000.0f * static_cast<float>(i));
  if (with_imu) set_imu(insole->mutable_imu(), 12.5f, 3.0f);
  return s;
}

inline v1::Sample knee_sample(std::int64_t t_us, float angle_rad = 0.6f, bool with_imus = true,
                              bool with_angle = true) {
  v1::Sample s;
  s.set_t_us(t_us);
  v1::KneeSample* knee = s.mutable_knee();
  if (with_imus) {
    set_imu(knee->mutable_thigh(), 20.0f, 5.0f);
    set_imu(knee->mutable_shank(), -30.0f, -8.0f);
  }
  if (with_angle) {
    knee->set_knee_angle_rad(angle_rad);
    knee->set_has_angle(true);
  }
  return s;
}

inline v1::Sample treadmill_sample(std::int64_t t_us, float speed_mps = 3.2f,
                                   float incline = 0.01f) {
  v1::Sample s;
  s.set_t_us(t_us);
  s.mutable_treadmill()->set_belt_speed_mps(speed_mps);
  s.mutable_treadmill()->set_incline_fraction(incline);
  return s;
}

inline v1::Sample pain_sample(std::int64_t t_us, std::uint32_t score = 4,
                              v1::Side side = v1::SIDE_LEFT,
                              v1::PainLocation location = v1::PAIN_LOCATION_ANTERIOR) {
  v1::Sample s;
  s.set_t_us(t_us);
  s.mutable_pain()->set_score(score);
  s.mutable_pain()->set_side(side);
  s.mutable_pain()->set_location(location);
  return s;
}

inline v1::Sample status_sample(std::int64_t t_us, float battery = 0.75f,
                                std::uint32_t flags = 0x5u) {
  v1::Sample s;
  s.set_t_us(t_us);
  s.mutable_status()->set_battery_fraction(battery);
  s.mutable_status()->set_error_flags(flags);
  return s;
}

inline v1::Sample session_end_sample(std::int64_t t_us) {
  v1::Sample s;
  s.set_t_us(t_us);
  s.mutable_session_end();
  return s;
}

inline v1::Frame make_frame(std::string_view device_id, std::uint32_t seq,
                            std::initializer_list<v1::Sample> samples) {
  v1::Frame f;
  f.set_protocol_version(kProtocolVersion);
  f.set_device_id(std::string(device_id));
  f.set_seq(seq);
  for (const v1::Sample& s : samples) *f.add_samples() = s;
  return f;
}

inline std::string serialize(const v1::Frame& f) {
  std::string bytes;
  f.SerializeToString(&bytes);
  return bytes;
}

inline std::span<const std::byte> as_bytes(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

// "unknown_device=1 non_finite=2" (non-zero rejection counters only), for failure messages.
inline std::string reject_counts(const DecoderCounters& c) {
  std::ostringstream out;
  for (int r = 0; r < kRejectCount; ++r) {
    const std::uint64_t n = c.rejected[static_cast<std::size_t>(r)].get();
    if (n != 0) out << reject_name(static_cast<Reject>(r)) << '=' << n << ' ';
  }
  const std::string s = out.str();
  return s.empty() ? "(none)" : s;
}

inline std::uint64_t total_rejected(const DecoderCounters& c) {
  std::uint64_t n = 0;
  for (const Counter& r : c.rejected) n += r.get();
  return n;
}

}  // namespace kneeload::proto::test
