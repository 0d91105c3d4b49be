// KnotTrack: a C² curve through knots, one quintic Hermite segment between neighbouring knots.
// Each knot carries a value, a slope and a curvature shared by the two segments it joins, so the
// curve, its rate and its acceleration are continuous: what a gyro and an accelerometer need
// (docs/model-conventions.md). Extremum knots have zero slope; pass knots get their slope and
// curvature from their neighbours. Private to the simulator.
#pragma once

#include <cstddef>
#include <vector>

namespace kneeload::sim::detail {

// A value and its first two time derivatives.
struct Eval {
  double y = 0.0;
  double dy = 0.0;
  double ddy = 0.0;
};

class KnotTrack {
 public:
  struct Knot {
    double t = 0.0;  // s
    double y = 0.0;
    double v = 0.0;  // slope dy/dt
    double a = 0.0;  // curvature d²y/dt²
    bool extremum = true;
  };

  void reserve(std::size_t n) { knots_.reserve(n); }
  // REQUIRES: t greater than the previous knot's t.
  void add_extremum(double t, double y);
  void add_pass(double t, double y);

  // Slopes and curvatures from the current values:
  // - an extremum gets ±(π²/2)·min(|Δy|/h²) over its two segments (a half cosine has exactly
  //   π²/2·Δy/h² at its ends), positive at minima, negative at maxima. Taking the smaller
  //   neighbour keeps the segments monotone.
  // - a pass knot gets the harmonic mean of its two secant slopes (0 if they differ in sign,
  //   Fritsch–Carlson) and the curvature of the parabola through it and its neighbours.
  void set_derivatives();

  // Moves knot i's value so that the curve passes y_target at t_target inside the segment
  // (i, i+1). Derivatives are held; call set_derivatives() and repeat to converge.
  void pass_through(std::size_t i, double t_target, double y_target);

  // Value and derivatives at t; before the first or after the last knot the end value is held.
  Eval eval(double t) const;

  std::size_t size() const { return knots_.size(); }
  const Knot& knot(std::size_t i) const { return knots_[i]; }

 private:
  std::vector<Knot> knots_;
};

}  // namespace kneeload::sim::detail
