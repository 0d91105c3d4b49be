// Helpers shared by the simulator tests: short configs, stream hashing and collection.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <variant>
#include <vector>

#include "kneeload/fusion/sample.hpp"
#include "kneeload/sim/params.hpp"
#include "kneeload/sim/simulator.hpp"

namespace kneeload::sim::testing {

// A short session: `duration_s` long, drift starting at `onset_s` over `ramp_s`.
inline SimConfig short_config(double duration_s, Scenario scenario = Scenario::kHealthy,
                              double onset_s = 60.0, double ramp_s = 120.0) {
  SimConfig c;
  c.duration_s = duration_s;
  c.plan = make_scenario(scenario, c.runner, ScenarioTiming{onset_s, ramp_s});
  return c;
}

// FNV-1a over every field of a sample that reaches the wire (payload bytes field by field, so
// padding never counts).
class StreamHash {
 public:
  void add(const fusion::Sample& s) {
    mix(s.device_t_us);
    mix(s.arrival_t_us);
    mix(s.device);
    mix(s.runner);
    mix(s.station);
    mix(s.device_seq);
    mix(static_cast<std::uint8_t>(s.side));
    mix(static_cast<std::uint8_t>(s.kind));
    mix(static_cast<std::uint8_t>(s.payload.index()));
    std::visit([this](const auto& p) { payload(p); }, s.payload);
  }
  std::uint64_t value() const { return h_; }

 private:
  template <class T>
  void mix(const T& v) {
    unsigned char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    for (unsigned char c : b) {
      h_ ^= c;
      h_ *= 0x100000001B3ull;
    }
  }
  void imu(const fusion::Imu6& m) {
    for (float f : m.accel_mps2) mix(f);
    for (float f : m.gyro_radps) mix(f);
  }
  void payload(const fusion::InsoleSample& p) {
    mix(p.cell_count);
    for (int i = 0; i < p.cell_count; ++i) mix(p.pressure_pa[i]);
  }
  void payload(const fusion::KneeSample& p) {
    imu(p.thigh);
    imu(p.shank);
    mix(p.knee_angle_rad);
    mix(p.has_imus);
    mix(p.has_angle);
  }
  void payload(const fusion::TreadmillSample& p) {
    mix(p.belt_speed_mps);
    mix(p.incline_fraction);
  }
  void payload(const fusion::PainReport& p) {
    mix(p.score);
    mix(static_cast<std::uint8_t>(p.side));
    mix(static_cast<std::uint8_t>(p.location));
  }
  void payload(const fusion::DeviceStatus& p) {
    mix(p.battery_fraction);
    mix(p.error_flags);
  }
  void payload(const fusion::SessionEnd&) {}

  std::uint64_t h_ = 0xCBF29CE484222325ull;
};

struct Emitted {
  fusion::Sample sample;
  SampleInfo info;
};

inline std::vector<Emitted> collect(Simulator& sim) {
  std::vector<Emitted> out;
  Emitted e{};
  while (sim.next(e.sample, &e.info)) out.push_back(e);
  return out;
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

}  // namespace kneeload::sim::testing
