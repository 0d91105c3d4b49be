// Plain input structs that cross from proto/ into fusion/: one decoded, validated device sample.
// SI units throughout (Pa, m/s², rad, rad/s, m/s); time is integer microseconds.
// Trivially copyable on purpose: samples travel through lock-free rings by value.
#pragma once

#include <cstdint>
#include <type_traits>
#include <variant>

namespace kneeload::fusion {

// Wire and ring limit on pressure cells per insole. Moticon and NURVV have 16; a Pedar-class
// lab insole (~99 cells) must be aggregated to regions by its gateway before it reaches us.
inline constexpr int kMaxInsoleCells = 32;

enum class Side : std::uint8_t { kNone = 0, kLeft = 1, kRight = 2 };

// Array index of a side: 0 left, 1 right, -1 for kNone (per-leg state is [left, right]).
constexpr int side_index(Side side) {
  return side == Side::kLeft ? 0 : side == Side::kRight ? 1 : -1;
}
// REQUIRES: i is 0 or 1.
constexpr Side side_of_index(int i) { return i == 0 ? Side::kLeft : Side::kRight; }

// What a registered device is; the registry pins every device id to one kind.
enum class SensorKind : std::uint8_t { kInsole = 0, kKnee = 1, kTreadmill = 2, kConsole = 3 };
inline constexpr int kSensorKindCount = 4;

// Which device slot of the runner a sample feeds. The registry decides; the wire cannot.
enum class DeviceRole : std::uint8_t {
  kInsoleLeft = 0,
  kInsoleRight = 1,
  kKneeLeft = 2,
  kKneeRight = 3,
  kTreadmill = 4,
  kConsole = 5,
};
inline constexpr int kDeviceRoleCount = 6;
DeviceRole role_of(SensorKind kind, Side side);

struct Imu6 {
  float accel_mps2[3];  // device axes, including gravity
  float gyro_radps[3];
};

struct InsoleSample {
  float pressure_pa[kMaxInsoleCells];  // per cell, in the order of the registry's cell table
  Imu6 imu;                            // valid iff has_imu
  std::uint8_t cell_count;
  bool has_imu;
};

struct KneeSample {
  Imu6 thigh;  // valid iff has_imus
  Imu6 shank;
  float knee_angle_rad;  // flexion, 0 = straight; valid iff has_angle (knee sleeve)
  bool has_imus;
  bool has_angle;
};

struct TreadmillSample {
  float belt_speed_mps;
  float incline_fraction;  // rise over run: 0.05 is a 5 % grade; negative is downhill
};

enum class PainLocation : std::uint8_t {
  kUnspecified = 0,
  kAnterior = 1,   // around or behind the kneecap: patellofemoral
  kLateral = 2,    // outside of the knee: iliotibial band
  kMedial = 3,
  kPosterior = 4,
  kOther = 5,
};

struct PainReport {
  std::uint8_t score;  // 0..10
  Side side;
  PainLocation location;
};

struct DeviceStatus {
  float battery_fraction;  // 0..1
  std::uint32_t error_flags;
};

// Console message that ends the runner's session explicitly (treadmill stop button).
struct SessionEnd {};

using Payload = std::variant<InsoleSample, KneeSample, TreadmillSample, PainReport, DeviceStatus,
                             SessionEnd>;

struct Sample {
  std::int64_t device_t_us;   // the device's own clock
  // The time base fusion aligns devices on: the daemon's receive time (steady clock), or the
  // recorded one when a frame is replayed (Frame.recorded_arrival_us), so replays align alike.
  std::int64_t arrival_t_us;
  // This process's receive time (steady clock), for latency only; never read by the model.
  std::int64_t receive_t_us;
  std::uint32_t device;       // stable registry index of the device
  std::uint32_t runner;       // stable registry index of the runner wearing it
  std::uint32_t station;      // stable registry index of the station
  std::uint32_t device_seq;   // the frame sequence number it arrived in
  Side side;                  // from the registry, not from the wire
  SensorKind kind;
  Payload payload;
};

static_assert(std::is_trivially_copyable_v<Sample>, "samples are copied through rings");

}  // namespace kneeload::fusion
