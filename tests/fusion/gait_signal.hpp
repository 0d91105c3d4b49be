// A tiny synthetic runner for fusion tests, until the simulator (MODEL.md §10) exists: a
// treadmill runner with alternating half-sine vertical forces rendered into 16-cell insole
// pressures, knee-sleeve angles and treadmill speed, on one shared device clock, with the truth
// per step. Allocation-free after construction, so the allocation test can use it too.
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
inline constexpr std::int64_t kArrivalLagUs = 4'000;  // arrival = device time + this + stream

inline constexpr int kRows = 8;  // 16 cells: 8 rows heel→toe × 2 columns medial/lateral
inline constexpr int kCells = 2 * kRows;

inline double deg(double d) { return d * std::numbers::pi / 180.0; }

struct GaitParams {
  double speed_mps = 3.3;
  double cadence_spm = 170.0;
  double contact_s = 0.25;
  double peak_bw = 2.5;
  double body_mass_kg = 70.0;
  double force_gain = 1.0;      // the pressures are rendered as F / (gain · A)
  double knee_ic_rad = deg(15.0);
  double knee_peak_rad = deg(42.0);  // stance peak, at mid-stance
  double knee_swing_rad = deg(60.0);  // added to knee_ic_rad at mid-swing
  bool left_forefoot = false;   // rearfoot strike loads row 0 first, forefoot strike row 6
  bool right_forefoot = true;
  double insole_hz = 100.0;
  double knee_hz = 100.0;
  double treadmill_hz = 10.0;
  double incline_fraction = 0.01;
  std::int64_t t0_us = 1'000'000'000;  // device clock at the first sample
  double first_ic_s = 0.5;             // after t0
  double run_s = 60.0;                 // steps only while t < t0 + run_s (whole steps)
  double duration_s = 60.0;            // samples are generated until t0 + duration_s
  bool knee_sleeve = true;             // false: IMU-only knee samples (has_angle = false)
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
  c.insoles[0] = test_geometry(p.force_gain);
  c.insoles[1] = test_geometry(p.force_gain);
  return c;
}

struct StepTruth {
  std::int64_t ic_us;  // contact start (force leaves zero)
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

  // Vertical force on one foot (N) and its stance fraction u (NaN in swing).
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
    const int k = last_step_of(side, t_us);
    if (k < 0 || k >= step_count_) return p_.knee_ic_rad;
    const double to = first_ic_abs() + k * step_us_ + p_.contact_s * 1e6;
    const double swing_us = 2.0 * step_us_ - p_.contact_s * 1e6;
    const double s = std::sin(std::numbers::pi * std::clamp((t_us - to) / swing_us, 0.0, 1.0));
    return p_.knee_ic_rad + p_.knee_swing_rad * s * s;
  }

  // Renders the pressure cells of one insole at t_us.
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
        const double cell_f = row_force[j] * (c == 0 ? 0.55 : 0.45);
        in.pressure_pa[i] += static_cast<float>(cell_f / (p_.force_gain * geometry_.area_m2[i]));
      }
    }
  }

  // The next sample in device-time order across all streams (ties: knees, insoles, treadmill).
  // Returns false after duration_s.
  bool next(Sample& s) {
    int best = -1;
    std::int64_t best_t = std::numeric_limits<std::int64_t>::max();
    for (int i = 0; i < kStreams; ++i) {
      const std::int64_t t = stream_t(i, index_[static_cast<std::size_t>(i)]);
      if (t < best_t) {
        best_t = t;
        best = i;
      }
    }
    if (best_t >= end_us_) return false;
    ++index_[static_cast<std::size_t>(best)];
    make(best, best_t, s);
    return true;
  }

  // A console sample at t_us (pain report or session end), for tests to interleave.
  static Sample console(std::int64_t t_us, Payload payload) {
    Sample s{};
    s.device_t_us = t_us;
    s.arrival_t_us = t_us + kArrivalLagUs + 900;
    s.device = kConsoleDevice;
    s.runner = kRunner;
    s.station = kStation;
    s.side = Side::kNone;
    s.kind = SensorKind::kConsole;
    s.payload = payload;
    return s;
  }

 private:
  static constexpr int kStreams = 5;  // knee L, knee R, insole L, insole R, treadmill

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

  double rate(int stream) const {
    return stream < 2 ? p_.knee_hz : stream < 4 ? p_.insole_hz : p_.treadmill_hz;
  }
  std::int64_t stream_t(int stream, std::int64_t n) const {
    return p_.t0_us + std::llround(static_cast<double>(n) * 1e6 / rate(stream));
  }

  void make(int stream, std::int64_t t, Sample& s) const {
    s = Sample{};
    s.device_t_us = t;
    s.arrival_t_us = t + kArrivalLagUs + 100 * stream;
    s.runner = kRunner;
    s.station = kStation;
    s.device_seq = static_cast<std::uint32_t>(index_[static_cast<std::size_t>(stream)]);
    const Side side = (stream % 2 == 0) ? Side::kLeft : Side::kRight;
    if (stream < 2) {
      KneeSample k{};
      k.has_angle = p_.knee_sleeve;
      k.has_imus = !p_.knee_sleeve;
      k.knee_angle_rad = p_.knee_sleeve
                             ? static_cast<float>(knee_rad(side, static_cast<double>(t)))
                             : 0.0f;
      s.device = stream == 0 ? kKneeLeftDevice : kKneeRightDevice;
      s.side = side;
      s.kind = SensorKind::kKnee;
      s.payload = k;
    } else if (stream < 4) {
      InsoleSample in{};
      render_insole(side, t, in);
      s.device = stream == 2 ? kInsoleLeftDevice : kInsoleRightDevice;
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
  std::array<std::int64_t, kStreams> index_{};
};

}  // namespace kneeload::fusion::testing
