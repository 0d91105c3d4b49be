// A tiny synthetic runner for fusion tests with known truth per step: a treadmill runner with
// alternating half-sine vertical forces rendered into 16-cell insole pressures, knee devices
// (sleeve angle and/or thigh + shank IMUs) and treadmill speed. Samples reach the session as
// devices send them: each device stamps its own clock (offset and drift per device), sends
// frames of `frame_samples` samples that arrive on the daemon clock at the frame's last sample's
// true time plus a latency of latency_min_us..latency_max_us (splitmix64, the same on every
// platform), and the devices' frames are interleaved in arrival order. Allocation-free after
// construction, so the allocation test uses it too. The larger simulator lives in tools/sim;
// this one stays small enough to read next to the tests.
//
// Simplifications, stated so no test leans on them unknowingly: the knee joint centre moves at
// constant velocity, so each IMU feels gravity plus its own segment's rotation about the knee
// (α×r + ω×(ω×r) at the mounting offset r of KneeImuAxes) and nothing else: no impacts, no
// pelvis motion; the force is one half-sine per stance (no impact peak); CoP rolls from the
// strike row to the toe.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>

#include "kneeload/fusion/session.hpp"

namespace kneeload::fusion::testing {

inline constexpr std::uint32_t kRunner = 7;
inline constexpr std::uint32_t kStation = 3;
inline constexpr std::uint32_t kInsoleLeftDevice = 10;
inline constexpr std::uint32_t kInsoleRightDevice = 11;
inline constexpr std::uint32_t kKneeLeftDevice = 12;
inline constexpr std::uint32_t kKneeRightDevice = 13;
inline constexpr std::uint32_t kTreadmillDevice = 14;
inline constexpr std::uint32_t kConsoleDevice = 15;
// A console message (pain report, session end) travels alone with this fixed latency, so its
// aligned time is exactly its true time + kConsoleLatencyUs (its aligner never sees a lower
// delay than the one it started from).
inline constexpr std::int64_t kConsoleLatencyUs = 3'000;

inline constexpr int kRows = 8;  // 16 cells: 8 rows heel→toe × 2 columns medial/lateral
inline constexpr int kCells = 2 * kRows;

// Device streams of the generator, in tie-break order.
enum Stream : int {
  kKneeLeft = 0,
  kKneeRight = 1,
  kInsoleLeft = 2,
  kInsoleRight = 3,
  kTreadmill = 4
};
inline constexpr int kStreamCount = 5;

inline double deg(double d) { return d * std::numbers::pi / 180.0; }
inline double to_deg(double rad) { return rad * 180.0 / std::numbers::pi; }

// device_t = true_t + offset_us + drift_ppm · 1e-6 · (true_t − t0_us), plus step_us once true
// time reaches step_at_us (a clock jump: a resync or a reset).
struct DeviceClock {
  std::int64_t offset_us = 0;
  double drift_ppm = 0.0;
  std::int64_t step_at_us = std::numeric_limits<std::int64_t>::max();
  std::int64_t step_us = 0;
};

enum class KneeDevice : std::uint8_t {
  kNone = 0,            // no knee samples at all
  kSleeve = 1,          // flexion angle only (has_angle)
  kImus = 2,            // thigh + shank IMUs only (has_imus)
  kSleeveWithImus = 3,  // both: the angle anchors θ, the shank IMU gives φ_s for the moment arm
};

struct GaitParams {
  double speed_mps = 3.3;
  double cadence_spm = 170.0;
  double contact_s = 0.25;
  double peak_bw = 2.5;
  double body_mass_kg = 70.0;
  double height_m = 1.75;
  double force_gain = 1.0;      // the insoles' static gain: pressures rendered as F / (gain · A)
  double pressure_scale = 1.0;  // a calibration error the static gain does not know about
  double knee_ic_rad = deg(15.0);
  double knee_peak_rad = deg(42.0);   // stance peak, at mid-stance
  double knee_swing_rad = deg(60.0);  // added to knee_ic_rad at mid-swing
  // Shank inclination φ_s (knee ahead of ankle > 0): from IC to TO in stance, back in swing.
  // With the rearfoot CoP roll below, 38° at TO puts the peak knee moment at ~2.4 N·m/kg, the
  // rearfoot value MODEL.md §3A quotes (JSSM).
  double shank_ic_rad = deg(-5.0);
  double shank_to_rad = deg(38.0);
  bool left_forefoot = false;  // rearfoot strike loads row 0 first, forefoot strike row 6
  bool right_forefoot = true;
  KneeImuAxes mount;  // hinge axes must be (0, 0, 1): the rendering rotates about sensor z
  double insole_hz = 100.0;
  double knee_hz = 100.0;
  double treadmill_hz = 10.0;
  // 1 % grade: not "level" for the calibration loop (calibration_max_incline 0.5 %), so g_cal
  // stays at its initial value and the forces read exactly what was rendered. The half-sine's
  // stride mean is 1.13 BW, not 1: on a level belt the loop would (rightly) rescale it.
  double incline_fraction = 0.01;
  KneeDevice knee = KneeDevice::kSleeveWithImus;
  std::int64_t t0_us = 1'000'000'000;  // true (daemon) time of the first sample
  double first_ic_s = 0.5;             // after t0
  double run_s = 60.0;                 // steps only while t < t0 + run_s (whole steps)
  double duration_s = 60.0;            // samples are generated until t0 + duration_s
  int frame_samples = 10;              // insoles and knees; the treadmill sends each reading
  std::int64_t latency_min_us = 2'000;
  std::int64_t latency_max_us = 8'000;
  std::uint64_t seed = 1;
  std::array<DeviceClock, kStreamCount> clocks{};  // indexed by Stream
};

// Cell geometry shared by the generator and the session config: unequal areas, so ΣpA is
// really weighted.
inline InsoleGeometry test_geometry(double force_gain) {
  InsoleGeometry g;
  g.cell_count = kCells;
  for (int r = 0; r < kRows; ++r) {
    for (int c = 0; c < 2; ++c) {
      const auto i = static_cast<std::size_t>(2 * r + c);
      g.area_m2[i] = (10.0 + 2.0 * r + c) * 1e-4;
      g.x_norm[i] = (r + 0.5) / kRows;
      g.y_norm[i] = c == 0 ? 0.25 : 0.75;
    }
  }
  g.force_gain = force_gain;
  return g;
}

inline SessionConfig test_config(const GaitParams& p) {
  SessionConfig c;
  c.runner = kRunner;
  c.station = kStation;
  c.runner_params.body_mass_kg = p.body_mass_kg;
  c.runner_params.height_m = p.height_m;
  c.insoles[0] = test_geometry(p.force_gain);
  c.insoles[1] = test_geometry(p.force_gain);
  c.knees = {p.mount, p.mount};
  return c;
}

struct StepTruth {
  std::int64_t ic_us;  // contact start (force leaves zero), true time
  std::int64_t to_us;  // contact end (force back to zero)
  Side side;
  double peak_bw;
  double strike_index_pct;
  double knee_ic_rad;
  double knee_peak_rad;
};

class GaitSignal {
 public:
  explicit GaitSignal(const GaitParams& p) : p_(p), geometry_(test_geometry(p.force_gain)) {
    step_us_ = 60e6 / p.cadence_spm;
    end_us_ = p.t0_us + std::llround(p.duration_s * 1e6);
    const double first = first_ic_abs();
    const double run_end = static_cast<double>(p.t0_us) + p.run_s * 1e6;
    // Whole steps only: the contact and a 50 ms margin of swing after it end within the run.
    step_count_ = 0;
    while (first + step_count_ * step_us_ + p.contact_s * 1e6 + 50e3 <= run_end) ++step_count_;
    for (int s = 0; s < kStreamCount; ++s) {
      std::int64_t n = 0;
      if (!(s <= kKneeRight && p.knee == KneeDevice::kNone)) {
        while (true_t(s, n) < end_us_) ++n;
      }
      count_[static_cast<std::size_t>(s)] = n;
    }
  }

  const GaitParams& params() const { return p_; }
  double step_time_s() const { return step_us_ / 1e6; }
  int step_count() const { return step_count_; }
  std::int64_t end_us() const { return end_us_; }

  StepTruth step(int k) const {
    StepTruth t{};
    const double ic = first_ic_abs() + k * step_us_;
    t.ic_us = std::llround(ic);
    t.to_us = std::llround(ic + p_.contact_s * 1e6);
    t.side = (k % 2 == 0) ? Side::kLeft : Side::kRight;
    t.peak_bw = p_.peak_bw;
    t.strike_index_pct = 100.0 * (start_row(t.side) + 0.5) / kRows;
    t.knee_ic_rad = p_.knee_ic_rad;
    t.knee_peak_rad = p_.knee_peak_rad;
    return t;
  }

  // Vertical force on one foot (N) at true time t_us and its stance fraction u (NaN in swing).
  double force_n(Side side, double t_us, double* u_out = nullptr) const {
    const double u = stance_fraction(side, t_us);
    if (u_out != nullptr) *u_out = u;
    if (std::isnan(u)) return 0.0;
    return p_.peak_bw * p_.body_mass_kg * kGravityMps2 * std::sin(std::numbers::pi * u);
  }

  // Knee flexion: θ_ic + (θ_peak − θ_ic)·sin²(πu) in stance, θ_ic + A·sin²(πτ) in swing, so the
  // curve is smooth at IC and TO (a knee nearly extended at contact, as in MODEL.md §2).
  double knee_rad(Side side, double t_us) const {
    const double u = stance_fraction(side, t_us);
    if (!std::isnan(u)) {
      const double s = std::sin(std::numbers::pi * u);
      return p_.knee_ic_rad + (p_.knee_peak_rad - p_.knee_ic_rad) * s * s;
    }
    const double tau = swing_fraction(side, t_us);
    if (std::isnan(tau)) return p_.knee_ic_rad;
    const double s = std::sin(std::numbers::pi * tau);
    return p_.knee_ic_rad + p_.knee_swing_rad * s * s;
  }

  // Shank inclination φ_s: a half-cosine from shank_ic to shank_to over stance and back over
  // swing (zero rate at IC and TO).
  double shank_rad(Side side, double t_us) const {
    const double u = stance_fraction(side, t_us);
    const double a = p_.shank_ic_rad;
    const double b = p_.shank_to_rad;
    if (!std::isnan(u)) return a + (b - a) * 0.5 * (1.0 - std::cos(std::numbers::pi * u));
    const double tau = swing_fraction(side, t_us);
    if (std::isnan(tau)) return a;
    return b + (a - b) * 0.5 * (1.0 - std::cos(std::numbers::pi * tau));
  }

  // Thigh angle φ_t = θ − φ_s (docs/model-conventions.md).
  double thigh_rad(Side side, double t_us) const {
    return knee_rad(side, t_us) - shank_rad(side, t_us);
  }

  // Renders the pressure cells of one insole at true time t_us.
  void render_insole(Side side, std::int64_t t_us, InsoleSample& in) const {
    in = InsoleSample{};
    in.cell_count = static_cast<std::uint8_t>(kCells);
    double u = 0.0;
    const double f = force_n(side, static_cast<double>(t_us), &u);
    if (f <= 0.0) return;
    // Load row ρ(u): the strike row for the first 20 % of stance, then rolling to the toe.
    const double r0 = start_row(side);
    const double rho = u < 0.2 ? r0 : r0 + (kRows - 1 - r0) * (u - 0.2) / 0.8;
    const int lo = std::min(static_cast<int>(rho), kRows - 1);
    const int hi = std::min(lo + 1, kRows - 1);
    const double w_hi = rho - lo;
    const double row_force[2] = {f * (1.0 - w_hi), f * w_hi};
    const int rows[2] = {lo, hi};
    for (int j = 0; j < 2; ++j) {
      for (int c = 0; c < 2; ++c) {
        const auto i = static_cast<std::size_t>(2 * rows[j] + c);
        const double cell_f = row_force[j] * (c == 0 ? 0.55 : 0.45) * p_.pressure_scale;
        in.pressure_pa[i] += static_cast<float>(cell_f / (p_.force_gain * geometry_.area_m2[i]));
      }
    }
  }

  // Renders one knee device sample at true time t_us (docs/model-conventions.md: sensor z along
  // the hinge; the thigh frame is the world rotated by +φ_t, the shank frame by −φ_s, so the
  // gyros read thigh ω_z = dφ_t/dt and shank ω_z = −dφ_s/dt, and gravity alone reads
  // (g·sin φ_t, g·cos φ_t) on the thigh and (−g·sin φ_s, g·cos φ_s) on the shank). Each sensor
  // adds α×r + ω×(ω×r) for its offset r from the joint centre (in its own frame).
  void render_knee(Side side, std::int64_t t_us, KneeSample& k) const {
    k = KneeSample{};
    const double t = static_cast<double>(t_us);
    k.has_angle = p_.knee == KneeDevice::kSleeve || p_.knee == KneeDevice::kSleeveWithImus;
    k.has_imus = p_.knee == KneeDevice::kImus || p_.knee == KneeDevice::kSleeveWithImus;
    if (k.has_angle) k.knee_angle_rad = static_cast<float>(knee_rad(side, t));
    if (!k.has_imus) return;
    const double phi_t = thigh_rad(side, t);
    const double phi_s = shank_rad(side, t);
    render_imu(kGravityMps2 * std::sin(phi_t), kGravityMps2 * std::cos(phi_t),
               rate(side, t, +1.0, true), accel(side, t, +1.0, true), p_.mount.thigh_sensor_m,
               k.thigh);
    render_imu(-kGravityMps2 * std::sin(phi_s), kGravityMps2 * std::cos(phi_s),
               rate(side, t, -1.0, false), accel(side, t, -1.0, false), p_.mount.shank_sensor_m,
               k.shank);
  }

  // True time of a stream's n-th sample.
  std::int64_t true_t(int stream, std::int64_t n) const {
    return p_.t0_us + std::llround(static_cast<double>(n) * 1e6 / rate(stream));
  }
  // The stream's device clock at true time t_us.
  std::int64_t device_t(int stream, std::int64_t t_us) const {
    const DeviceClock& c = p_.clocks[static_cast<std::size_t>(stream)];
    return t_us + c.offset_us +
           std::llround(c.drift_ppm * 1e-6 * static_cast<double>(t_us - p_.t0_us)) +
           (t_us >= c.step_at_us ? c.step_us : 0);
  }
  // Arrival (daemon) time of the frame holding the stream's n-th sample.
  std::int64_t arrival_t(int stream, std::int64_t n) const {
    const std::int64_t batch = frame_size(stream);
    const std::int64_t frame = n / batch;
    const std::int64_t last =
        std::min((frame + 1) * batch, count_[static_cast<std::size_t>(stream)]) - 1;
    return true_t(stream, last) +
           latency(static_cast<std::uint64_t>(stream), static_cast<std::uint64_t>(frame));
  }

  // Queues a console message (pain report, session end) sent at true time t_us; next() delivers
  // it in arrival order. Returns false when the queue (kMaxConsole) is full.
  bool schedule_console(std::int64_t t_us, const Payload& payload) {
    if (console_size_ == kMaxConsole) return false;
    std::size_t i = console_size_++;
    const Sample s = console(t_us, payload, console_seq_++);
    while (i > console_head_ && console_[i - 1].arrival_t_us > s.arrival_t_us) {
      console_[i] = console_[i - 1];
      --i;
    }
    console_[i] = s;
    return true;
  }

  // The next sample in arrival order across all streams and queued console messages (ties:
  // console first, then stream order; a frame's samples in device order). Returns false when
  // every stream has sent its samples up to duration_s and the console queue is empty.
  bool next(Sample& s) {
    int best = -1;
    std::int64_t best_arrival = std::numeric_limits<std::int64_t>::max();
    for (int i = 0; i < kStreamCount; ++i) {
      const std::int64_t n = index_[static_cast<std::size_t>(i)];
      if (n >= count_[static_cast<std::size_t>(i)]) continue;
      const std::int64_t a = arrival_t(i, n);
      if (a < best_arrival) {
        best_arrival = a;
        best = i;
      }
    }
    if (console_head_ < console_size_ && console_[console_head_].arrival_t_us <= best_arrival) {
      s = console_[console_head_++];
      return true;
    }
    if (best < 0) return false;
    const std::int64_t n = index_[static_cast<std::size_t>(best)]++;
    make(best, n, s);
    return true;
  }

  // A console sample sent at true time t_us, arriving kConsoleLatencyUs later.
  static Sample console(std::int64_t t_us, const Payload& payload, std::uint32_t seq = 0) {
    Sample s{};
    s.device_t_us = t_us;
    s.arrival_t_us = t_us + kConsoleLatencyUs;
    s.receive_t_us = s.arrival_t_us;
    s.device = kConsoleDevice;
    s.runner = kRunner;
    s.station = kStation;
    s.device_seq = seq;
    s.side = Side::kNone;
    s.kind = SensorKind::kConsole;
    s.payload = payload;
    return s;
  }

 private:
  static constexpr std::size_t kMaxConsole = 32;

  double first_ic_abs() const { return static_cast<double>(p_.t0_us) + p_.first_ic_s * 1e6; }
  double start_row(Side side) const {
    const bool fore = side == Side::kLeft ? p_.left_forefoot : p_.right_forefoot;
    return fore ? 6.0 : 0.0;
  }

  // Latest step k of this side with IC ≤ t, or −1.
  int last_step_of(Side side, double t_us) const {
    const int parity = side == Side::kLeft ? 0 : 1;
    const double rel = t_us - first_ic_abs() - parity * step_us_;
    if (rel < 0.0) return -1;
    return 2 * static_cast<int>(std::floor(rel / (2.0 * step_us_))) + parity;
  }

  double stance_fraction(Side side, double t_us) const {
    const int k = last_step_of(side, t_us);
    if (k < 0 || k >= step_count_) return std::numeric_limits<double>::quiet_NaN();
    const double u = (t_us - (first_ic_abs() + k * step_us_)) / (p_.contact_s * 1e6);
    return u < 1.0 ? u : std::numeric_limits<double>::quiet_NaN();
  }

  // Fraction of the swing after step k's TO up to the IC of step k + 2 (NaN outside a swing
  // between two steps of the run).
  double swing_fraction(Side side, double t_us) const {
    const int k = last_step_of(side, t_us);
    if (k < 0 || k + 2 >= step_count_) return std::numeric_limits<double>::quiet_NaN();
    const double to = first_ic_abs() + k * step_us_ + p_.contact_s * 1e6;
    const double swing_us = 2.0 * step_us_ - p_.contact_s * 1e6;
    return std::clamp((t_us - to) / swing_us, 0.0, 1.0);
  }

  // Sensor z rate and angular acceleration of the thigh (+φ_t) or shank (−φ_s), by central
  // differences over ±100 µs of the analytic angles.
  double segment_rad(Side side, double t_us, bool thigh) const {
    return thigh ? thigh_rad(side, t_us) : shank_rad(side, t_us);
  }
  double rate(Side side, double t_us, double sign, bool thigh) const {
    constexpr double h = 100.0;
    return sign * (segment_rad(side, t_us + h, thigh) - segment_rad(side, t_us - h, thigh)) /
           (2e-6 * h);
  }
  double accel(Side side, double t_us, double sign, bool thigh) const {
    constexpr double h = 100.0;
    return sign *
           (segment_rad(side, t_us + h, thigh) - 2.0 * segment_rad(side, t_us, thigh) +
            segment_rad(side, t_us - h, thigh)) /
           (1e-12 * h * h);
  }
  // Specific force of gravity (gx, gy) plus the rotation about z at offset r: α×r + ω×(ω×r).
  static void render_imu(double gx, double gy, double w, double alpha,
                         const std::array<double, 3>& r, Imu6& imu) {
    imu = Imu6{};
    imu.accel_mps2[0] = static_cast<float>(gx - alpha * r[1] - w * w * r[0]);
    imu.accel_mps2[1] = static_cast<float>(gy + alpha * r[0] - w * w * r[1]);
    imu.accel_mps2[2] = 0.0f;
    imu.gyro_radps[2] = static_cast<float>(w);
  }

  double rate(int stream) const {
    return stream <= kKneeRight     ? p_.knee_hz
           : stream <= kInsoleRight ? p_.insole_hz
                                    : p_.treadmill_hz;
  }
  std::int64_t frame_size(int stream) const {
    return stream == kTreadmill ? 1 : std::max(1, p_.frame_samples);
  }

  // splitmix64 of (seed, stream, frame): a latency uniform in [latency_min_us, latency_max_us].
  std::int64_t latency(std::uint64_t stream, std::uint64_t frame) const {
    std::uint64_t z = p_.seed * 0x9E3779B97F4A7C15ull + (stream << 40) + frame + 1;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const auto span = static_cast<std::uint64_t>(p_.latency_max_us - p_.latency_min_us + 1);
    return p_.latency_min_us + static_cast<std::int64_t>(z % span);
  }

  void make(int stream, std::int64_t n, Sample& s) const {
    const std::int64_t t = true_t(stream, n);
    s = Sample{};
    s.device_t_us = device_t(stream, t);
    s.arrival_t_us = arrival_t(stream, n);
    s.receive_t_us = s.arrival_t_us;
    s.runner = kRunner;
    s.station = kStation;
    s.device_seq = static_cast<std::uint32_t>(n / frame_size(stream));
    const Side side = (stream == kKneeLeft || stream == kInsoleLeft) ? Side::kLeft : Side::kRight;
    if (stream <= kKneeRight) {
      KneeSample k{};
      render_knee(side, t, k);
      s.device = stream == kKneeLeft ? kKneeLeftDevice : kKneeRightDevice;
      s.side = side;
      s.kind = SensorKind::kKnee;
      s.payload = k;
    } else if (stream <= kInsoleRight) {
      InsoleSample in{};
      render_insole(side, t, in);
      s.device = stream == kInsoleLeft ? kInsoleLeftDevice : kInsoleRightDevice;
      s.side = side;
      s.kind = SensorKind::kInsole;
      s.payload = in;
    } else {
      TreadmillSample tm{};
      tm.belt_speed_mps = static_cast<float>(p_.speed_mps);
      tm.incline_fraction = static_cast<float>(p_.incline_fraction);
      s.device = kTreadmillDevice;
      s.side = Side::kNone;
      s.kind = SensorKind::kTreadmill;
      s.payload = tm;
    }
  }

  GaitParams p_;
  InsoleGeometry geometry_;
  double step_us_ = 0.0;
  std::int64_t end_us_ = 0;
  int step_count_ = 0;
  std::array<std::int64_t, kStreamCount> index_{};
  std::array<std::int64_t, kStreamCount> count_{};
  std::array<Sample, kMaxConsole> console_{};
  std::size_t console_head_ = 0;
  std::size_t console_size_ = 0;
  std::uint32_t console_seq_ = 0;
};

}  // namespace kneeload::fusion::testing
