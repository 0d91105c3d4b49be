// GaitModel: the simulated runner's body, independent of any device. It schedules every step of
// the session up front (drifted parameters, stride variability, a momentum-balanced vGRF shape
// per step), builds C² thigh/knee/hip tracks through per-stride extrema, and measures the
// per-step truth on what it renders. Private to the simulator; times are seconds since the
// session start ("t"), forces in N, angles in rad.
#pragma once

#include <array>
#include <span>
#include <vector>

#include "kneeload/sim/params.hpp"
#include "kneeload/sim/registry.hpp"
#include "kneeload/sim/truth.hpp"
#include "track.hpp"

namespace kneeload::sim::detail {

inline constexpr int kCells = 16;

// One step: a stance of foot `side` and the flight that follows it.
struct StepPlan {
  int side = 0;           // 0 left, 1 right
  double t_ic = 0.0;      // rising crossing of the contact threshold
  double t_to = 0.0;      // falling crossing
  // vGRF: linear ramps 0 → threshold over kRampS before t_ic and back after t_to; in between,
  // with u = (t − t_ic)/(t_to − t_ic): threshold + active·sin^shape_n(πu) plus an impact bump
  // (sin² up to u_ip, cos² down over u_fall).
  double sup_start = 0.0;  // t_ic − kRampS: the force leaves zero
  double sup_end = 0.0;    // t_to + kRampS
  double shape_n = 1.0;
  double active_n = 0.0;
  double impact_n = 0.0;
  double u_ip = 0.12;
  double u_fall = 0.18;
  // CoP path (normalised insole coordinates).
  double x0 = 0.0, x1 = 0.0, y0 = 0.0, y1 = 0.0, y_k = 1.5, y_shift = 0.0;
  double midfoot_gain = 1.0;
  double spike_mps2 = 0.0;  // shank impact spike peak
  // Kinematic targets.
  double knee_ic = 0.0, knee_peak = 0.0, knee_to = 0.0, knee_swing = 0.0;
  double thigh_ic = 0.0, thigh_ext = 0.0;
};

// One leg at one instant: segment angles with derivatives, world linear accelerations.
struct LegKinematics {
  Eval thigh;
  Eval shank;
  Eval knee;
  double hip_ddy = 0.0;
  double thigh_acc[2] = {0.0, 0.0};  // thigh IMU position, world x, y (m/s²)
  double shank_acc[2] = {0.0, 0.0};
};

class GaitModel {
 public:
  explicit GaitModel(const SimConfig& config);

  // Weight of the running gait against the standing pose (value, rate, acceleration).
  Eval blend(double t) const;
  LegKinematics kinematics(int side, double t) const;
  // Just the angles (no accelerations): cheaper, for the truth measurements.
  double knee_angle(int side, double t) const;
  double shank_angle(int side, double t) const;
  // Vertical force under one foot (N), standing and running blended.
  double force_n(int side, double t) const;
  // Ideal pressure per cell (Pa) under one foot, Σ p·A = force_n(side, t); returns the force.
  double ideal_pressures(int side, double t, std::span<double, kCells> p) const;
  // Shank axial impact spike (m/s²) following this foot's latest initial contact.
  double shank_spike_mps2(int side, double t) const;
  // The noise-free shank accelerometer reading (m/s², sensor x and y): the specific force of
  // the sensor point rotated into the shank frame, plus the axial spike.
  std::array<double, 2> shank_specific_force(const LegKinematics& k, double spike_mps2) const;

  RunnerParams params_at(double t) const;
  double belt_speed(double t) const;
  double incline(double t) const;

  const InsoleLayout& layout() const { return layout_; }
  std::span<const StepTruth> truths() const { return truths_; }
  std::span<const StepPlan> steps() const { return steps_; }
  double body_weight_n() const { return bw_n_; }
  double running_s() const { return running_s_; }
  double threshold_n() const { return threshold_n_; }

 private:
  int find_step(int side, double t) const;  // last step of `side` with sup_start <= t, or −1
  double run_force(const StepPlan& s, double t) const;
  double run_force(int side, double t) const;
  // The scheduled CoP of a stance at t (normalised), held at the ends outside [t_ic, t_to].
  void cop_target(const StepPlan& s, double t, double* cx, double* cy) const;
  double hip_accel(double t) const;
  void footprint(double force_n, double cx, double cy, double midfoot_gain,
                 std::span<double, kCells> p) const;
  void build_schedule();
  void build_tracks();
  void build_truths();
  std::int64_t to_us(double t) const;

  SimConfig config_;
  double bw_n_ = 0.0;
  double threshold_n_ = 0.0;
  double thigh_len_ = 0.0, shank_len_ = 0.0, foot_len_ = 0.0, foot_width_ = 0.0;
  double running_s_ = 0.0;  // end of the start blend
  double spike_norm_ = 1.0;  // scales the impact spike's first peak to 1
  InsoleLayout layout_;
  std::array<double, kCells> cell_area_m2_{};
  std::array<double, kCells> cell_x_mm_{};
  std::array<double, kCells> cell_y_mm_{};
  std::array<bool, kCells> cell_midfoot_{};
  std::vector<StepPlan> steps_;
  std::array<std::vector<int>, 2> side_steps_;
  std::array<KnotTrack, 2> thigh_;
  std::array<KnotTrack, 2> knee_;
  std::vector<StepTruth> truths_;
};

}  // namespace kneeload::sim::detail
