// Device rendering, clocks, transport and faults around the GaitModel (MODEL.md §0, §10).
//
// Why it is built this way:
// - Every sample is a pure function of (config, device, sample index): noise comes from a
//   counter-based hash, bias random walks from tables drawn at construction. A duplicated or
//   reordered frame therefore repeats its samples bit for bit, and no per-sample state can
//   drift between two runs with the same seed.
// - Devices sample on their own oscillator: sample n is at device time t0 + n/rate exactly, and
//   at true time phase + n/(rate·(1 + drift)). Frames are delivered whole, in order per device
//   (a BLE link and a gateway do not reorder), except where a fault says otherwise.
// - The merge across devices is a linear scan over six queue heads: cheaper than a heap at
//   this size, and it keeps ties in DeviceRole order.
#include "kneeload/sim/simulator.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <numbers>
#include <stdexcept>
#include <string>
#include <vector>

#include "gait.hpp"
#include "kneeload/sim/random.hpp"

namespace kneeload::sim {
namespace {

using detail::GaitModel;
using detail::kCells;
using fusion::DeviceRole;
using fusion::SensorKind;
using fusion::Side;

constexpr double kG = fusion::kGravityMps2;
constexpr double kDeg = std::numbers::pi / 180.0;
constexpr int kRoles = fusion::kDeviceRoleCount;
constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::min();

constexpr std::uint64_t kTagClock = 0x636c6f636b000000ull;
constexpr std::uint64_t kTagNoise = 0x6e6f697365000000ull;
constexpr std::uint64_t kTagLatency = 0x6c6174656e000000ull;
constexpr std::uint64_t kTagCalibration = 0x63616c6962000000ull;
constexpr std::uint64_t kTagBias = 0x6269617300000000ull;

constexpr double kBiasWalkStepS = 1.0;      // random-walk table resolution
constexpr std::int64_t kDuplicateDelayUs = 2000;
constexpr double kBatteryDrainPerHour = 0.05;

// Leg slot of a side; kNone falls to the left slot (callers pass a leg's side).
int leg_slot(Side s) { return s == Side::kRight ? 1 : 0; }

struct FrameRef {
  std::int64_t frame = 0;
  std::int64_t arrival_us = 0;
  bool duplicate = false;
};

struct FrameFault {
  double t = 0.0;
  FaultKind kind = FaultKind::kDuplicateFrame;
  bool done = false;
};

struct ClockJump {
  double t = 0.0;
  std::int64_t offset_us = 0;  // cumulative offset from this time on
};

struct Window {
  double t0 = 0.0;
  double t1 = 0.0;
};

struct CellFault {
  Window window;
  FaultKind kind = FaultKind::kStuckCell;
  int cell = 0;
  double value = 0.0;
};

struct ConsoleEvent {
  double t = 0.0;
  fusion::Payload payload;
};

// One device's sample schedule, clock, transport and delivery cursor.
struct Stream {
  bool enabled = false;
  DeviceRole role = DeviceRole::kInsoleLeft;
  SensorKind kind = SensorKind::kInsole;
  Side side = Side::kNone;
  bool periodic = true;
  double rate_hz = 0.0;
  double phase_s = 0.0;  // true time of sample 0
  double drift = 0.0;    // fractional (ppm · 1e-6)
  std::int64_t device_t0_us = 0;
  std::int64_t samples = 0;
  std::int64_t frames = 0;
  int batch = 1;
  std::vector<double> event_t;  // event-driven devices: true times
  std::vector<ClockJump> jumps;
  std::vector<Window> dropouts;
  std::vector<FrameFault> frame_faults;
  std::uint64_t noise_key = 0;
  std::uint64_t latency_key = 0;
  double latency_mean_us = 0.0;
  double latency_sd_us = 0.0;
  double battery0 = 1.0;

  std::int64_t next_frame = 0;
  std::int64_t last_arrival_us = kNever;
  std::array<FrameRef, 4> queue{};
  int q_head = 0;
  int q_count = 0;
};

}  // namespace

struct Simulator::Impl {
  SimConfig config;
  DeviceIndices indices;
  GaitModel gait;
  std::array<Stream, kRoles> streams;
  std::array<ClockTruth, kRoles> clocks;
  std::vector<FaultTruth> faults;
  std::vector<ConsoleEvent> console;

  std::array<double, 2> insole_gain{1.0, 1.0};
  std::array<std::array<double, kCells>, 2> cell_gain{};
  std::array<std::vector<CellFault>, 2> cell_faults;
  std::array<std::array<double, 6>, 2> gyro_bias{};  // [side][thigh xyz, shank xyz], rad/s
  std::array<std::vector<double>, 2> bias_walk;      // [side][knot · 6 + channel], rad/s

  int current = -1;  // stream whose frame is being emitted
  int pos = 0;       // next sample within it
  std::uint64_t emitted = 0;
  std::int64_t last_arrival_us = kNever;
  std::size_t truth_pos = 0;
  bool finished = false;

  Impl(const SimConfig& c, const DeviceIndices& ix) : config(c), indices(ix), gait(c) {}

  std::int64_t to_us(double t) const { return config.start_t_us + std::llround(t * 1e6); }
  double to_s(std::int64_t us) const {
    return static_cast<double>(us - config.start_t_us) * 1e-6;
  }

  void setup_streams();
  void setup_sensors();
  void setup_faults();

  double sample_t(const Stream& s, std::int64_t n) const {
    if (!s.periodic) return s.event_t[static_cast<std::size_t>(n)];
    return s.phase_s + static_cast<double>(n) / (s.rate_hz * (1.0 + s.drift));
  }
  std::int64_t jump_us(const Stream& s, double t) const {
    std::int64_t off = 0;
    for (const ClockJump& j : s.jumps) {
      if (t >= j.t) off = j.offset_us;
    }
    return off;
  }
  std::int64_t device_t_us(const Stream& s, std::int64_t n, double t) const {
    const std::int64_t base =
        s.periodic ? std::llround(static_cast<double>(n) * 1e6 / s.rate_hz)
                   : std::llround((t - s.phase_s) * 1e6 * (1.0 + s.drift));
    return s.device_t0_us + base + jump_us(s, t);
  }
  std::int64_t frame_first(const Stream& s, std::int64_t j) const { return j * s.batch; }
  std::int64_t frame_count(const Stream& s, std::int64_t j) const {
    return std::min<std::int64_t>(s.batch, s.samples - j * s.batch);
  }
  double frame_last_t(const Stream& s, std::int64_t j) const {
    return sample_t(s, frame_first(s, j) + frame_count(s, j) - 1);
  }
  bool frame_has_status(const Stream& s, std::int64_t j) const {
    if (!s.periodic || config.status_period_s <= 0.0 || j == 0) return false;
    const double p = config.status_period_s;
    return std::floor(frame_last_t(s, j) / p) > std::floor(frame_last_t(s, j - 1) / p);
  }
  bool dropped(const Stream& s, double t) const {
    for (const Window& w : s.dropouts) {
      if (t >= w.t0 && t < w.t1) return true;
    }
    return false;
  }
  std::int64_t arrival_us(Stream& s, std::int64_t j) {
    double lat = s.latency_mean_us;
    if (s.latency_sd_us > 0.0) lat += s.latency_sd_us * hashed_normal(s.latency_key, j);
    lat = std::max(lat, 500.0);
    const std::int64_t a =
        std::max<std::int64_t>(s.last_arrival_us, to_us(frame_last_t(s, j)) + std::llround(lat));
    s.last_arrival_us = a;
    return a;
  }
  void push(Stream& s, FrameRef f) {
    assert(s.q_count < static_cast<int>(s.queue.size()));
    s.queue[static_cast<std::size_t>((s.q_head + s.q_count) % 4)] = f;
    ++s.q_count;
  }
  FrameFault* pending_fault(Stream& s, FaultKind kind, double t) {
    for (FrameFault& f : s.frame_faults) {
      if (!f.done && f.kind == kind && t >= f.t) return &f;
    }
    return nullptr;
  }
  bool refill(Stream& s);
  void render(const Stream& s, const FrameRef& f, int pos_in_frame, fusion::Sample& out,
              SampleInfo* info) const;
  void render_insole(const Stream& s, std::int64_t n, double t, fusion::Sample& out) const;
  void render_knee(const Stream& s, std::int64_t n, double t, fusion::Sample& out) const;
  double bias_walk_at(int side, int channel, double t) const;
};

void Simulator::Impl::setup_streams() {
  struct Spec {
    DeviceRole role;
    SensorKind kind;
    Side side;
    bool enabled;
    double rate;
    int batch;
  };
  const Spec specs[kRoles] = {
      {DeviceRole::kInsoleLeft, SensorKind::kInsole, Side::kLeft, config.insole.enabled,
       config.insole.rate_hz, config.insole.batch},
      {DeviceRole::kInsoleRight, SensorKind::kInsole, Side::kRight, config.insole.enabled,
       config.insole.rate_hz, config.insole.batch},
      {DeviceRole::kKneeLeft, SensorKind::kKnee, Side::kLeft, config.knee.enabled,
       config.knee.rate_hz, config.knee.batch},
      {DeviceRole::kKneeRight, SensorKind::kKnee, Side::kRight, config.knee.enabled,
       config.knee.rate_hz, config.knee.batch},
      {DeviceRole::kTreadmill, SensorKind::kTreadmill, Side::kNone, config.treadmill.enabled,
       config.treadmill.rate_hz, config.treadmill.batch},
      {DeviceRole::kConsole, SensorKind::kConsole, Side::kNone, config.console.enabled, 0.0, 1},
  };
  const double duration = config.duration_s;
  for (int r = 0; r < kRoles; ++r) {
    const Spec& sp = specs[r];
    Stream& s = streams[static_cast<std::size_t>(r)];
    s.role = sp.role;
    s.kind = sp.kind;
    s.side = sp.side;
    s.enabled = sp.enabled;
    s.periodic = sp.rate > 0.0;
    s.rate_hz = sp.rate;
    s.batch = sp.batch;
    // Draw every clock parameter even for disabled devices, so enabling one device does not
    // change the others' clocks.
    Xoshiro256 rng(derive_key(config.seed, kTagClock + static_cast<std::uint64_t>(r)));
    s.phase_s = s.periodic ? rng.uniform() / sp.rate : 0.0;
    const double offset_s = rng.uniform(1.0, std::max(1.0, config.clock.offset_max_s));
    s.drift = config.clock.drift_sd_ppm * 1e-6 * rng.normal();
    s.battery0 = rng.uniform(0.6, 1.0);
    s.device_t0_us = config.clock.offset_max_s > 0.0 ? std::llround(offset_s * 1e6)
                                                      : config.start_t_us +
                                                            std::llround(s.phase_s * 1e6);
    s.noise_key = derive_key(config.seed, kTagNoise + static_cast<std::uint64_t>(r));
    s.latency_key = derive_key(config.seed, kTagLatency + static_cast<std::uint64_t>(r));
    s.latency_mean_us = config.clock.latency_ms * 1e3;
    s.latency_sd_us = config.clock.latency_jitter_ms * 1e3;
    if (!s.enabled) continue;
    if (s.periodic) {
      s.samples = duration > s.phase_s
                      ? static_cast<std::int64_t>(
                            std::ceil((duration - s.phase_s) * sp.rate * (1.0 + s.drift)))
                      : 0;
      while (s.samples > 0 && sample_t(s, s.samples - 1) >= duration) --s.samples;
    } else {
      // The console: pain reports, then the stop button just before the end.
      for (const PainEvent& e : config.plan.pain) {
        if (e.t_s < 0.0 || e.t_s >= duration) continue;
        fusion::PainReport p{e.score, e.side, e.location};
        console.push_back({e.t_s, p});
      }
      std::stable_sort(console.begin(), console.end(),
                       [](const ConsoleEvent& a, const ConsoleEvent& b) { return a.t < b.t; });
      if (config.console.session_end) {
        console.push_back({std::max(0.0, duration - 1e-3), fusion::SessionEnd{}});
      }
      for (const ConsoleEvent& e : console) s.event_t.push_back(e.t);
      s.samples = static_cast<std::int64_t>(s.event_t.size());
    }
    s.frames = (s.samples + s.batch - 1) / s.batch;

    ClockTruth& c = clocks[static_cast<std::size_t>(r)];
    c.enabled = true;
    c.device_t0_us = s.device_t0_us;
    c.true_t0_us = to_us(s.phase_s);
    c.drift_ppm = s.drift * 1e6;
    c.latency_mean_us = s.latency_mean_us;
    c.rate_hz = s.rate_hz;
    c.batch = s.batch;
  }
}

void Simulator::Impl::setup_sensors() {
  // Calibration errors (MODEL.md §1: 30–50 % impulse error when uncalibrated; §7: per-insole
  // gains are not observable from the stride-mean constraint).
  Xoshiro256 cal(derive_key(config.seed, kTagCalibration));
  for (std::size_t s = 0; s < 2; ++s) {
    insole_gain[s] = 1.0 + config.insole.gain_error_sd * cal.normal();
    for (double& g : cell_gain[s]) g = 1.0 + config.insole.cell_gain_sd * cal.normal();
  }
  // Gyro zero-rate offsets and random walks (MODEL.md §0, §9): constant per axis plus a walk
  // tabulated once per second and interpolated linearly.
  Xoshiro256 bias(derive_key(config.seed, kTagBias));
  const auto knots = static_cast<std::size_t>(config.duration_s / kBiasWalkStepS) + 3;
  const double walk_sd = config.knee.gyro_bias_walk_radps_rts * std::sqrt(kBiasWalkStepS);
  for (std::size_t s = 0; s < 2; ++s) {
    for (double& b : gyro_bias[s]) b = config.knee.gyro_bias_sd_dps * kDeg * bias.normal();
    bias_walk[s].assign(knots * 6, 0.0);
    for (std::size_t k = 1; k < knots; ++k) {
      for (std::size_t ch = 0; ch < 6; ++ch) {
        bias_walk[s][k * 6 + ch] = bias_walk[s][(k - 1) * 6 + ch] + walk_sd * bias.normal();
      }
    }
  }
}

void Simulator::Impl::setup_faults() {
  for (const FaultSpec& f : config.plan.faults) {
    FaultTruth ft;
    ft.spec = f;
    ft.start_t_us = to_us(f.start_s);
    ft.end_t_us = to_us(f.start_s + f.duration_s);
    faults.push_back(ft);
    Stream& s = streams[static_cast<std::size_t>(f.device)];
    const Window w{f.start_s, f.start_s + f.duration_s};
    switch (f.kind) {
      case FaultKind::kDropout:
        s.dropouts.push_back(w);
        break;
      case FaultKind::kClockJump: {
        ClockJump j{f.start_s, std::llround(f.clock_jump_s * 1e6)};
        s.jumps.push_back(j);
        break;
      }
      case FaultKind::kDuplicateFrame:
      case FaultKind::kReorderFrames:
        s.frame_faults.push_back({f.start_s, f.kind, false});
        break;
      case FaultKind::kSaturatingCell:
      case FaultKind::kStuckCell:
        cell_faults[static_cast<std::size_t>(leg_slot(s.side))].push_back(
            {w, f.kind, f.cell, f.value});
        break;
    }
  }
  for (Stream& s : streams) {
    std::stable_sort(s.jumps.begin(), s.jumps.end(),
                     [](const ClockJump& a, const ClockJump& b) { return a.t < b.t; });
    std::int64_t total = 0;
    for (ClockJump& j : s.jumps) {
      total += j.offset_us;
      j.offset_us = total;
    }
  }
}

bool Simulator::Impl::refill(Stream& s) {
  while (s.q_count == 0) {
    if (!s.enabled || s.next_frame >= s.frames) return false;
    const std::int64_t j = s.next_frame++;
    const double t_last = frame_last_t(s, j);
    if (dropped(s, t_last)) continue;  // lost in the air: the receiver sees a seq gap
    const std::int64_t a = arrival_us(s, j);
    if (FrameFault* f = pending_fault(s, FaultKind::kReorderFrames, t_last);
        f != nullptr && s.next_frame < s.frames && !dropped(s, frame_last_t(s, s.next_frame))) {
      f->done = true;
      const std::int64_t j2 = s.next_frame++;
      const std::int64_t a2 = arrival_us(s, j2);
      push(s, {j2, a2, false});
      s.last_arrival_us = a2 + 1;
      push(s, {j, a2 + 1, false});
      continue;
    }
    push(s, {j, a, false});
    if (FrameFault* f = pending_fault(s, FaultKind::kDuplicateFrame, t_last)) {
      f->done = true;
      s.last_arrival_us = a + kDuplicateDelayUs;
      push(s, {j, s.last_arrival_us, true});
    }
  }
  return true;
}

double Simulator::Impl::bias_walk_at(int side, int channel, double t) const {
  const std::vector<double>& w = bias_walk[static_cast<std::size_t>(side)];
  const std::size_t knots = w.size() / 6;
  const double x = std::clamp(t / kBiasWalkStepS, 0.0, static_cast<double>(knots - 1));
  const auto k = std::min(static_cast<std::size_t>(x), knots - 2);
  const double f = x - static_cast<double>(k);
  const auto ch = static_cast<std::size_t>(channel);
  return w[k * 6 + ch] * (1.0 - f) + w[(k + 1) * 6 + ch] * f;
}

void Simulator::Impl::render_insole(const Stream& s, std::int64_t n, double t,
                                    fusion::Sample& out) const {
  const int side = leg_slot(s.side);
  const auto si = static_cast<std::size_t>(side);
  std::array<double, kCells> p{};
  gait.ideal_pressures(side, t, p);
  fusion::InsoleSample& in = out.payload.emplace<fusion::InsoleSample>();
  in.cell_count = static_cast<std::uint8_t>(kCells);
  in.has_imu = false;
  const double noise = config.insole.noise_pa;
  const double max_p = config.insole.max_pressure_pa;
  for (int c = 0; c < kCells; c += 2) {
    double z[2] = {0.0, 0.0};
    if (noise > 0.0) {
      const auto pair = static_cast<std::uint64_t>(n) * 8 + static_cast<std::uint64_t>(c / 2);
      hashed_normal_pair(s.noise_key, pair, z[0], z[1]);
    }
    for (int k = 0; k < 2; ++k) {
      const auto i = static_cast<std::size_t>(c + k);
      double v = insole_gain[si] * cell_gain[si][i] * p[i];
      bool stuck = false;
      for (const CellFault& f : cell_faults[si]) {
        if (f.cell != c + k || t < f.window.t0 || t >= f.window.t1) continue;
        if (f.kind == FaultKind::kSaturatingCell) v *= f.value;
        if (f.kind == FaultKind::kStuckCell) {
          v = f.value;
          stuck = true;
        }
      }
      if (!stuck) v = std::clamp(v + noise * z[k], 0.0, max_p);
      in.pressure_pa[i] = static_cast<float>(v);
    }
  }
}

void Simulator::Impl::render_knee(const Stream& s, std::int64_t n, double t,
                                  fusion::Sample& out) const {
  const int side = leg_slot(s.side);
  const auto si = static_cast<std::size_t>(side);
  const KneeModel& km = config.knee;
  fusion::KneeSample& k = out.payload.emplace<fusion::KneeSample>();
  const detail::LegKinematics kin = gait.kinematics(side, t);
  // Noise: 12 IMU channels and the sleeve angle, 7 normal pairs per sample.
  double z[14] = {};
  const bool noisy = km.gyro_noise_dps_rthz > 0.0 || km.accel_noise_ug_rthz > 0.0 ||
                     km.sleeve_noise_deg > 0.0;
  if (noisy) {
    for (int i = 0; i < 7; ++i) {
      hashed_normal_pair(s.noise_key,
                         static_cast<std::uint64_t>(n) * 8 + static_cast<std::uint64_t>(i),
                         z[2 * i], z[2 * i + 1]);
    }
  }
  if (km.imus) {
    k.has_imus = true;
    const double gyro_sd = km.gyro_noise_dps_rthz * kDeg * std::sqrt(km.rate_hz);
    const double accel_sd = km.accel_noise_ug_rthz * 1e-6 * kG * std::sqrt(km.rate_hz);
    const double gyro_max = km.gyro_range_dps * kDeg;
    const double accel_max = km.accel_range_g * kG;
    const double spike = gait.shank_spike_mps2(side, t);
    // docs/model-conventions.md: specific force a − g = a + (0, g) in the world, rotated into
    // the sensor frame (thigh: world rotated by +φ_t; shank: by −φ_s).
    const double ct = std::cos(kin.thigh.y);
    const double st = std::sin(kin.thigh.y);
    const double tfx = kin.thigh_acc[0];
    const double tfy = kin.thigh_acc[1] + kG;
    const std::array<double, 2> shank = gait.shank_specific_force(kin, spike);
    const double accel[2][3] = {
        {ct * tfx + st * tfy, -st * tfx + ct * tfy + km.thigh_impact_ratio * spike, 0.0},
        {shank[0], shank[1], 0.0}};
    const double gyro[2][3] = {{0.0, 0.0, kin.thigh.dy}, {0.0, 0.0, -kin.shank.dy}};
    fusion::Imu6* imus[2] = {&k.thigh, &k.shank};
    for (int m = 0; m < 2; ++m) {
      for (int a = 0; a < 3; ++a) {
        const auto ma = static_cast<std::size_t>(m * 3 + a);
        const double g = gyro[m][a] + gyro_bias[si][ma] + bias_walk_at(side, m * 3 + a, t) +
                         gyro_sd * z[ma];
        const double acc = accel[m][a] + accel_sd * z[6 + ma];
        imus[m]->gyro_radps[a] = static_cast<float>(std::clamp(g, -gyro_max, gyro_max));
        imus[m]->accel_mps2[a] = static_cast<float>(std::clamp(acc, -accel_max, accel_max));
      }
    }
  }
  if (km.sleeve) {
    k.has_angle = true;
    k.knee_angle_rad = static_cast<float>(kin.knee.y + km.sleeve_noise_deg * kDeg * z[12]);
  }
}

void Simulator::Impl::render(const Stream& s, const FrameRef& f, int pos_in_frame,
                             fusion::Sample& out, SampleInfo* info) const {
  const std::int64_t count = frame_count(s, f.frame);
  const bool status = pos_in_frame >= count;
  const std::int64_t n = frame_first(s, f.frame) + (status ? count - 1 : pos_in_frame);
  const std::int64_t true_us = to_us(sample_t(s, n));
  const double t = to_s(true_us);  // render at the reported µs, so truth_at() matches exactly
  out = fusion::Sample{};  // every field defined, including any the simulator does not set
  out.device_t_us = device_t_us(s, n, sample_t(s, n));
  out.arrival_t_us = f.arrival_us;
  out.device = indices.device[static_cast<std::size_t>(s.role)];
  out.runner = indices.runner;
  out.station = indices.station;
  out.device_seq = static_cast<std::uint32_t>(f.frame);
  out.side = s.side;
  out.kind = s.kind;
  if (status) {
    const double battery = std::max(0.0, s.battery0 - kBatteryDrainPerHour * t / 3600.0);
    out.payload = fusion::DeviceStatus{static_cast<float>(battery), 0u};
  } else {
    switch (s.kind) {
      case SensorKind::kInsole:
        render_insole(s, n, t, out);
        break;
      case SensorKind::kKnee:
        render_knee(s, n, t, out);
        break;
      case SensorKind::kTreadmill:
        out.payload = fusion::TreadmillSample{static_cast<float>(gait.belt_speed(t)),
                                              static_cast<float>(gait.incline(t))};
        break;
      case SensorKind::kConsole:
        out.payload = console[static_cast<std::size_t>(n)].payload;
        break;
    }
  }
  if (info != nullptr) {
    const std::int64_t size = count + (frame_has_status(s, f.frame) ? 1 : 0);
    info->role = s.role;
    info->true_t_us = true_us;
    info->frame_seq = out.device_seq;
    info->index_in_frame = static_cast<std::uint16_t>(pos_in_frame);
    info->frame_size = static_cast<std::uint16_t>(size);
    info->frame_start = pos_in_frame == 0;
    info->frame_end = pos_in_frame + 1 == size;
    info->duplicate = f.duplicate;
  }
}

Simulator::Simulator(const SimConfig& config, const DeviceIndices& indices) {
  if (const std::string error = validate(config); !error.empty()) {
    throw std::invalid_argument("sim config: " + error);
  }
  impl_ = std::make_unique<Impl>(config, indices);
  impl_->setup_streams();
  impl_->setup_sensors();
  impl_->setup_faults();
}

Simulator::~Simulator() = default;

bool Simulator::next(fusion::Sample& out, SampleInfo* info) {
  Impl& m = *impl_;
  if (m.current < 0) {
    std::int64_t best = std::numeric_limits<std::int64_t>::max();
    for (int r = 0; r < kRoles; ++r) {
      Stream& s = m.streams[static_cast<std::size_t>(r)];
      if (!m.refill(s)) continue;
      const std::int64_t a = s.queue[static_cast<std::size_t>(s.q_head)].arrival_us;
      if (a < best) {
        best = a;
        m.current = r;
      }
    }
    if (m.current < 0) {
      m.finished = true;
      return false;
    }
    m.pos = 0;
  }
  Stream& s = m.streams[static_cast<std::size_t>(m.current)];
  const FrameRef f = s.queue[static_cast<std::size_t>(s.q_head)];
  m.render(s, f, m.pos, out, info);
  ++m.pos;
  ++m.emitted;
  m.last_arrival_us = f.arrival_us;
  const std::int64_t size = m.frame_count(s, f.frame) + (m.frame_has_status(s, f.frame) ? 1 : 0);
  if (m.pos >= size) {
    s.q_head = (s.q_head + 1) % 4;
    --s.q_count;
    m.current = -1;
  }
  return true;
}

bool Simulator::next_step_truth(StepTruth& out) {
  Impl& m = *impl_;
  const std::span<const StepTruth> all = m.gait.truths();
  if (m.truth_pos >= all.size()) return false;
  const StepTruth& t = all[m.truth_pos];
  if (!m.finished && t.to_t_us > m.last_arrival_us) return false;
  out = t;
  ++m.truth_pos;
  return true;
}

std::span<const StepTruth> Simulator::step_truths() const { return impl_->gait.truths(); }

LegTruth Simulator::truth_at(Side side, std::int64_t true_t_us) const {
  assert(side == Side::kLeft || side == Side::kRight);
  const Impl& m = *impl_;
  const int si = leg_slot(side);
  const double t = m.to_s(true_t_us);
  const detail::LegKinematics k = m.gait.kinematics(si, t);
  LegTruth out;
  out.thigh_rad = k.thigh.y;
  out.shank_rad = k.shank.y;
  out.knee_rad = k.knee.y;
  out.thigh_rate_radps = k.thigh.dy;
  out.shank_rate_radps = k.shank.dy;
  out.knee_rate_radps = k.knee.dy;
  std::array<double, kCells> p{};
  out.force_n = m.gait.ideal_pressures(si, t, p);
  double fx = 0.0;
  double fy = 0.0;
  const InsoleLayout& l = m.gait.layout();
  for (std::size_t i = 0; i < kCells; ++i) {
    const double fi = p[i] * (l.area_cm2[i] / 1e4);
    fx += fi * l.x_norm[i];
    fy += fi * l.y_norm[i];
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  out.cop_x_norm = out.force_n > 0.0 ? fx / out.force_n : nan;
  out.cop_y_norm = out.force_n > 0.0 ? fy / out.force_n : nan;
  out.in_contact = out.force_n >= m.gait.threshold_n();
  out.hip_accel_y_mps2 = k.hip_ddy;
  for (int a = 0; a < 2; ++a) {
    out.thigh_sensor_accel_mps2[a] = k.thigh_acc[a];
    out.shank_sensor_accel_mps2[a] = k.shank_acc[a];
  }
  return out;
}

RunnerParams Simulator::params_at(std::int64_t true_t_us) const {
  return impl_->gait.params_at(impl_->to_s(true_t_us));
}
double Simulator::belt_speed_mps(std::int64_t true_t_us) const {
  return impl_->gait.belt_speed(impl_->to_s(true_t_us));
}
double Simulator::incline_fraction(std::int64_t true_t_us) const {
  return impl_->gait.incline(impl_->to_s(true_t_us));
}
std::int64_t Simulator::start_t_us() const { return impl_->config.start_t_us; }
std::int64_t Simulator::running_t_us() const { return impl_->to_us(impl_->gait.running_s()); }
std::int64_t Simulator::onset_t_us() const {
  return impl_->to_us(impl_->config.plan.timing.onset_s);
}
std::int64_t Simulator::end_t_us() const { return impl_->to_us(impl_->config.duration_s); }

const ClockTruth& Simulator::clock(DeviceRole role) const {
  return impl_->clocks[static_cast<std::size_t>(role)];
}

std::int64_t Simulator::device_time_us(DeviceRole role, std::int64_t true_t_us) const {
  const Stream& s = impl_->streams[static_cast<std::size_t>(role)];
  const double t = impl_->to_s(true_t_us);
  return s.device_t0_us + std::llround((t - s.phase_s) * 1e6 * (1.0 + s.drift)) +
         impl_->jump_us(s, t);
}

double Simulator::insole_gain(Side side) const {
  return impl_->insole_gain[static_cast<std::size_t>(leg_slot(side))];
}
std::span<const FaultTruth> Simulator::faults() const { return impl_->faults; }
const SimConfig& Simulator::config() const { return impl_->config; }
std::uint64_t Simulator::samples_emitted() const { return impl_->emitted; }

}  // namespace kneeload::sim
