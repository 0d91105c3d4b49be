// The centre-of-pressure features of one stance (MODEL.md §1 "Centre of pressure" and
// "Pronation indicators", §9 "CoP path"), in metres on the insole.
//
// Inputs are the per-sample CoP x_CoP = ΣpAx/ΣpA, y_CoP = ΣpAy/ΣpA in normalised insole units
// (x 0 heel … 1 toe, y 0 medial … 1 lateral; docs/model-conventions.md). Metres are those units
// times the foot length (along) and the insole width (across), both from the runner's config.
//
// Definitions (the simulator's truth, tools/sim, uses the same ones on its ideal pressures):
// - Path length: Σ √((Δx·L_foot)² + (Δy·W_insole)²) from IC to TO. Between stance samples the
//   CoP is taken to move in a straight line; the CoP at IC and at TO is not sampled (the force
//   there is the contact threshold), so the path is extended from the first sample back to IC
//   and from the last one on to TO at the velocity of the first (last) two samples, over at most
//   one sample interval. tests/model/step_features_test.cpp measures the error.
// - ML excursion: max − min of y_CoP·W_insole from IC to IC + 30 % of the stance time, with y
//   at IC extrapolated as above and y at the window's end linearly interpolated between the two
//   samples around it. The medio-lateral CoP excursion is a pronation indicator: a within-runner
//   change signal only (MODEL.md §1, §8: Nielsen 2014 found no injury link).
// Both are NaN with fewer than two usable samples (zero force: no CoP).
//
// Thread ownership: the runner session's thread. Memory: the y trace is allocated at
// construction; begin/add/finish never allocate.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <vector>

namespace kneeload::fusion {

struct CopPathParams {
  double foot_length_m = 0.266;      // L_foot: 0.152·height (Winter), as LegGeometry
  double insole_width_m = 0.09;      // ModelParams::insole_width_m
  double ml_window_fraction = 0.30;  // MODEL.md §1: IC → 30 % of stance
  // Trace capacity: the ML window (30 %) of the longest running stance, 0.35 s, at the highest
  // insole rate MODEL.md §0 weighs, 1 kHz, with room to spare (as StepLoad's trace; 12 bytes
  // each). Later samples still count in the path; a stance that outlasts the trace before the
  // ML window ends gets no ML excursion (CopPath::windows_cut()).
  int max_stance_samples = 180;
};

struct CopPathResult {
  double path_length_m = std::numeric_limits<double>::quiet_NaN();
  double ml_excursion_m = std::numeric_limits<double>::quiet_NaN();
  int samples = 0;  // stance samples with a CoP
};

class CopPath {
 public:
  // Allocates the trace.
  explicit CopPath(const CopPathParams& params = {});

  // A stance opens at ic_t_us; an unfinished one is dropped.
  void begin(std::int64_t ic_t_us);
  // One stance sample's CoP (normalised). Ignored outside a stance, when not finite, or when
  // t_us is not after the previous sample.
  void add(std::int64_t t_us, double x_norm, double y_norm);
  // Closes the stance at to_t_us; NaN-filled if none was open.
  CopPathResult finish(std::int64_t to_t_us);

  // New geometry between steps (reload); the trace capacity is kept.
  void set_params(const CopPathParams& params);
  const CopPathParams& params() const { return params_; }
  // Steps whose ML excursion was withheld (NaN): the trace filled before the ML window's end,
  // so the range would cover only part of the window.
  std::uint64_t windows_cut() const { return windows_cut_; }

 private:
  CopPathParams params_;
  std::vector<std::int32_t> trace_dt_us_;  // since IC: a stance spans seconds, not 35 min
  std::vector<double> trace_y_;
  int trace_size_ = 0;
  bool trace_cut_ = false;  // this stance had a sample the trace had no room for
  std::uint64_t windows_cut_ = 0;
  bool in_stance_ = false;
  std::int64_t ic_t_us_ = 0;
  std::int64_t last_t_us_ = 0;
  double last_x_ = 0.0;
  double last_y_ = 0.0;
  double path_m_ = 0.0;
  int samples_ = 0;
  struct Point {
    std::int64_t t_us = 0;
    double x = 0.0;
    double y = 0.0;
  };
  std::array<Point, 2> first_{};  // the first two samples of the stance
  Point prev_{};                  // the sample before the last one

};

}  // namespace kneeload::fusion
