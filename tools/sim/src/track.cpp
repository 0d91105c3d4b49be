// Quintic Hermite on s ∈ [0, 1] with h the segment length:
// y(s) = y0·H0 + y1·H5 + h(v0·H1 + v1·H4) + h²(a0·H2 + a1·H3), where
// H5 = 10s³ − 15s⁴ + 6s⁵, H0 = 1 − H5, H1 = s − 6s³ + 8s⁴ − 3s⁵, H4 = −4s³ + 7s⁴ − 3s⁵,
// H2 = s²/2 − 3s³/2 + 3s⁴/2 − s⁵/2, H3 = s³/2 − s⁴ + s⁵/2.
#include "track.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <numbers>

namespace kneeload::sim::detail {
namespace {

struct Basis {
  double h5, h1, h4, h2, h3;
};

Basis basis(double s) {
  const double s2 = s * s;
  const double s3 = s2 * s;
  const double s4 = s3 * s;
  const double s5 = s4 * s;
  return {10.0 * s3 - 15.0 * s4 + 6.0 * s5, s - 6.0 * s3 + 8.0 * s4 - 3.0 * s5,
          -4.0 * s3 + 7.0 * s4 - 3.0 * s5, 0.5 * s2 - 1.5 * s3 + 1.5 * s4 - 0.5 * s5,
          0.5 * s3 - s4 + 0.5 * s5};
}

}  // namespace

void KnotTrack::add_extremum(double t, double y) {
  assert(knots_.empty() || t > knots_.back().t);
  knots_.push_back({t, y, 0.0, 0.0, true});
}

void KnotTrack::add_pass(double t, double y) {
  assert(knots_.empty() || t > knots_.back().t);
  knots_.push_back({t, y, 0.0, 0.0, false});
}

void KnotTrack::set_derivatives() {
  constexpr double kHalfCosine = std::numbers::pi * std::numbers::pi / 2.0;
  const std::size_t n = knots_.size();
  for (std::size_t i = 0; i < n; ++i) {
    Knot& k = knots_[i];
    if (!k.extremum) {
      if (i == 0 || i + 1 == n) {
        k.v = 0.0;
        k.a = 0.0;
        continue;
      }
      const Knot& l = knots_[i - 1];
      const Knot& r = knots_[i + 1];
      const double sl = (k.y - l.y) / (k.t - l.t);
      const double sr = (r.y - k.y) / (r.t - k.t);
      k.v = sl * sr > 0.0 ? 2.0 * sl * sr / (sl + sr) : 0.0;
      k.a = 2.0 * (sr - sl) / (r.t - l.t);
      continue;
    }
    double bound = std::numeric_limits<double>::infinity();
    int above = 0;  // neighbours above this knot
    int below = 0;
    const auto side = [&](const Knot& o) {
      const double h = o.t - k.t;
      bound = std::min(bound, std::abs(o.y - k.y) / (h * h));
      if (o.y > k.y) ++above;
      if (o.y < k.y) ++below;
    };
    if (i > 0) side(knots_[i - 1]);
    if (i + 1 < n) side(knots_[i + 1]);
    k.v = 0.0;
    if (below == 0 && above > 0) {
      k.a = kHalfCosine * bound;
    } else if (above == 0 && below > 0) {
      k.a = -kHalfCosine * bound;
    } else {
      k.a = 0.0;
    }
  }
}

void KnotTrack::pass_through(std::size_t i, double t_target, double y_target) {
  assert(i + 1 < knots_.size());
  Knot& k0 = knots_[i];
  const Knot& k1 = knots_[i + 1];
  const double h = k1.t - k0.t;
  const double s = (t_target - k0.t) / h;
  assert(s > 0.0 && s < 1.0);
  const Basis b = basis(s);
  k0.y = (y_target - k1.y * b.h5 - h * (k0.v * b.h1 + k1.v * b.h4) -
          h * h * (k0.a * b.h2 + k1.a * b.h3)) /
         (1.0 - b.h5);
}

Eval KnotTrack::eval(double t) const {
  assert(!knots_.empty());
  if (t <= knots_.front().t) return {knots_.front().y, 0.0, 0.0};
  if (t >= knots_.back().t) return {knots_.back().y, 0.0, 0.0};
  const auto it = std::upper_bound(knots_.begin(), knots_.end(), t,
                                   [](double v, const Knot& k) { return v < k.t; });
  const Knot& k1 = *it;
  const Knot& k0 = *(it - 1);
  const double h = k1.t - k0.t;
  const double s = (t - k0.t) / h;
  const double s2 = s * s;
  const double s3 = s2 * s;
  const double s4 = s3 * s;
  const Basis b = basis(s);
  const double dy = k1.y - k0.y;
  const double h2 = h * h;
  const double y = k0.y + dy * b.h5 + h * (k0.v * b.h1 + k1.v * b.h4) +
                   h2 * (k0.a * b.h2 + k1.a * b.h3);
  // First and second derivatives of the bases with respect to s.
  const double d5 = 30.0 * s2 - 60.0 * s3 + 30.0 * s4;
  const double d1 = 1.0 - 18.0 * s2 + 32.0 * s3 - 15.0 * s4;
  const double d4 = -12.0 * s2 + 28.0 * s3 - 15.0 * s4;
  const double d2 = s - 4.5 * s2 + 6.0 * s3 - 2.5 * s4;
  const double d3 = 1.5 * s2 - 4.0 * s3 + 2.5 * s4;
  const double dd5 = 60.0 * s - 180.0 * s2 + 120.0 * s3;
  const double dd1 = -36.0 * s + 96.0 * s2 - 60.0 * s3;
  const double dd4 = -24.0 * s + 84.0 * s2 - 60.0 * s3;
  const double dd2 = 1.0 - 9.0 * s + 18.0 * s2 - 10.0 * s3;
  const double dd3 = 3.0 * s - 12.0 * s2 + 10.0 * s3;
  return {y,
          (dy * d5 + h * (k0.v * d1 + k1.v * d4) + h2 * (k0.a * d2 + k1.a * d3)) / h,
          (dy * dd5 + h * (k0.v * dd1 + k1.v * dd4) + h2 * (k0.a * dd2 + k1.a * dd3)) / h2};
}

}  // namespace kneeload::sim::detail
