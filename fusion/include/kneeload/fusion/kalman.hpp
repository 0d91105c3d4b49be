// KalmanFilter<N>: the one linear Kalman filter of fusion/, written once and templated on the
// fixed state size N; measurement size M is a template parameter of update(). The models
// (filters.hpp) supply F, Q, H and R as small separate classes (STYLE.md, after mherb/kalman).
//
// Numerics (STYLE.md, after robot_localization's Ekf::correct; not mherb's):
// - S is never inverted: the Mahalanobis distance and the gain both come from one LDLT of S.
// - Covariance update in Joseph form, which stays symmetric positive semi-definite under
//   round-off and with a sub-optimal gain, unlike P = (I − KH)P.
// - After every predict and update P is symmetrised and its diagonal held between a floor and
//   a ceiling, so a long gap or a run of missed updates cannot make it diverge or collapse
//   (ENGINEERING.md §5 "Bounded filters").
//
// Thread ownership: none; one owner thread per filter. Units are the model's.
// Hot path: Eigen fixed-size types only, so predict() and update() never touch the heap
// (ENGINEERING.md §1c: fixed-size is the only allocation-free variant; proved by
// tests/fusion/filters_alloc_test.cpp).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include <Eigen/Cholesky>
#include <Eigen/Core>

namespace kneeload::fusion {

// What happened to one predict or update. Rejected calls leave x and P untouched.
enum class UpdateStatus : std::uint8_t {
  kAccepted = 0,
  kNonFinite = 1,            // z, H, R (or F, Q, u) held a NaN or infinity
  kGated = 2,                // Mahalanobis distance² above the gate
  kNotPositiveDefinite = 3,  // S (= HPHᵀ + R) has a non-positive pivot: R is not a covariance
  kSkipped = 4,              // not attempted: a model filter's caller or precondition said no
};

// Gate value that accepts every finite innovation (pseudo-measurements).
inline constexpr double kNoGate = std::numeric_limits<double>::infinity();

// Chi-square quantiles at p = 0.001 for 1 and 2 degrees of freedom: a correct measurement is
// gated one time in a thousand.
inline constexpr double kChi2Gate1Dof = 10.828;
inline constexpr double kChi2Gate2Dof = 13.816;

// A linear measurement z = H·x + v, v ~ N(0, R), with its gate (kNoGate for none).
template <int M, int N>
struct LinearMeasurement {
  Eigen::Matrix<double, M, N> h = Eigen::Matrix<double, M, N>::Zero();
  Eigen::Matrix<double, M, M> r = Eigen::Matrix<double, M, M>::Identity();
  double gate_chi2 = kNoGate;
};

struct KalmanCounters {
  std::uint64_t predicts = 0;    // accepted predicts
  std::uint64_t updates = 0;     // accepted updates
  std::uint64_t gated = 0;       // updates rejected by the Mahalanobis gate
  std::uint64_t non_finite = 0;  // predicts or updates rejected for a NaN/inf input
  std::uint64_t not_positive = 0;  // updates rejected because S was not positive definite
};

// Returns true iff every entry is finite, P equals Pᵀ within rel_tol·max|P|, and a Cholesky
// (LLT) factorisation succeeds, i.e. P is symmetric positive definite. For tests and asserts.
template <int N>
bool is_symmetric_positive_definite(const Eigen::Matrix<double, N, N>& p, double rel_tol = 1e-12) {
  if (!p.allFinite()) return false;
  const double scale = p.cwiseAbs().maxCoeff();
  if (!(scale > 0.0)) return false;
  if ((p - p.transpose()).cwiseAbs().maxCoeff() > rel_tol * scale) return false;
  const Eigen::LLT<Eigen::Matrix<double, N, N>> llt(p);
  return llt.info() == Eigen::Success;
}

namespace kalman_detail {

// Solves with the innovation covariance S through its LDLT factorisation (STYLE.md: no
// explicit inverse). Kᵀ = S⁻¹(HP) because S and P are symmetric.
template <int M>
class InnovationSolver {
 public:
  explicit InnovationSolver(const Eigen::Matrix<double, M, M>& s) : ldlt_(s) {}
  bool positive_definite() const {
    return ldlt_.info() == Eigen::Success && (ldlt_.vectorD().array() > 0.0).all();
  }
  double mahalanobis_sq(const Eigen::Matrix<double, M, 1>& y) const {
    return y.dot(ldlt_.solve(y));
  }
  // Row by row: with a vector right-hand side Eigen takes its unrolled fixed-size triangular
  // solve; with a matrix one, its blocked general kernel (packing, no unrolling), several times
  // slower at these sizes. The arithmetic per column is the same, so the gain is the same bits.
  template <int N>
  Eigen::Matrix<double, N, M> gain(const Eigen::Matrix<double, N, M>& pht) const {
    Eigen::Matrix<double, N, M> k;
    for (int i = 0; i < N; ++i) {
      const Eigen::Matrix<double, M, 1> column = pht.row(i).transpose();
      k.row(i) = ldlt_.solve(column).transpose();
    }
    return k;
  }

 private:
  Eigen::LDLT<Eigen::Matrix<double, M, M>> ldlt_;
};

// A scalar measurement: the LDLT of a 1×1 S is S itself (L = 1, D = s). Written out because it
// is most of our updates, and because g++ 12 reports a false -Warray-bounds inside Eigen's
// pivoting code for a 1×1 LDLT solved against a 1×N right-hand side.
template <>
class InnovationSolver<1> {
 public:
  explicit InnovationSolver(const Eigen::Matrix<double, 1, 1>& s) : s_(s(0, 0)) {}
  bool positive_definite() const { return s_ > 0.0; }
  double mahalanobis_sq(const Eigen::Matrix<double, 1, 1>& y) const { return y(0) * y(0) / s_; }
  template <int N>
  Eigen::Matrix<double, N, 1> gain(const Eigen::Matrix<double, N, 1>& pht) const {
    return pht / s_;
  }

 private:
  double s_;
};

}  // namespace kalman_detail

template <int N>
class KalmanFilter {
  static_assert(N >= 1, "a filter needs a state");

 public:
  using Vector = Eigen::Matrix<double, N, 1>;
  using Matrix = Eigen::Matrix<double, N, N>;

  // REQUIRES: 0 < variance_floor(i) <= variance_ceiling(i) for every i; p0 symmetric PSD.
  KalmanFilter(const Vector& x0, const Matrix& p0, const Vector& variance_floor,
               const Vector& variance_ceiling)
      : floor_(variance_floor), ceiling_(variance_ceiling) {
    reset(x0, p0);
  }

  // Restarts from (x0, p0); counters are kept (they are totals for metrics).
  void reset(const Vector& x0, const Matrix& p0) {
    x_ = x0;
    p_ = p0;
    bound_covariance();
  }

  // x ← F·x + u, P ← F·P·Fᵀ + Q, then P is bounded. u carries a known input (a gyro-driven
  // model's integrated rate). Returns kAccepted, or kNonFinite with x and P untouched.
  UpdateStatus predict(const Matrix& f, const Matrix& q, const Vector& u) {
    if (!f.allFinite() || !q.allFinite() || !u.allFinite()) {
      ++counters_.non_finite;
      return UpdateStatus::kNonFinite;
    }
    x_ = f * x_ + u;
    p_ = f * p_ * f.transpose() + q;
    bound_covariance();
    ++counters_.predicts;
    return UpdateStatus::kAccepted;
  }
  UpdateStatus predict(const Matrix& f, const Matrix& q) { return predict(f, q, Vector::Zero()); }

  // Measurement update with z (M), H (M×N), R (M×M) and a gate on d² = yᵀS⁻¹y (kNoGate: none).
  // Returns kAccepted, or a rejection with x and P untouched and the matching counter raised.
  template <int M>
  UpdateStatus update(const Eigen::Matrix<double, M, 1>& z, const Eigen::Matrix<double, M, N>& h,
                      const Eigen::Matrix<double, M, M>& r, double gate_chi2) {
    using MVector = Eigen::Matrix<double, M, 1>;
    using MMatrix = Eigen::Matrix<double, M, M>;
    using Gain = Eigen::Matrix<double, N, M>;

    // 1. NaN guard: one bad sample must not poison the state for good.
    if (!z.allFinite() || !h.allFinite() || !r.allFinite()) {
      ++counters_.non_finite;
      return UpdateStatus::kNonFinite;
    }

    // 2. Innovation y = z − Hx and its covariance S = HPHᵀ + R (symmetrised against round-off).
    const MVector y = z - h * x_;
    const Gain pht = p_ * h.transpose();
    MMatrix s = h * pht + r;
    s = (0.5 * (s + s.transpose())).eval();

    // 3. Mahalanobis gate d² = yᵀS⁻¹y, solved through LDLT (no explicit inverse). A
    //    non-positive pivot means S is not a covariance (R was not), so nothing is learned.
    const kalman_detail::InnovationSolver<M> solver(s);
    if (!solver.positive_definite()) {
      ++counters_.not_positive;
      return UpdateStatus::kNotPositiveDefinite;
    }
    const double d2 = solver.mahalanobis_sq(y);
    last_d2_ = d2;
    if (!(d2 <= gate_chi2)) {
      ++counters_.gated;
      return UpdateStatus::kGated;
    }

    // 4. Gain K = PHᵀS⁻¹ from the same factorisation.
    const Gain k = solver.gain(pht);
    x_ += k * y;

    // 5. Joseph form P = (I − KH)P(I − KH)ᵀ + KRKᵀ: symmetric PSD by construction.
    const Matrix ikh = Matrix::Identity() - k * h;
    const Matrix joseph = ikh * p_ * ikh.transpose() + k * r * k.transpose();
    p_ = joseph;

    // 6. Symmetrise and bound the diagonal.
    bound_covariance();
    ++counters_.updates;
    return UpdateStatus::kAccepted;
  }

  template <int M>
  UpdateStatus update(const Eigen::Matrix<double, M, 1>& z, const LinearMeasurement<M, N>& m) {
    return update<M>(z, m.h, m.r, m.gate_chi2);
  }

  // New variance bounds (a reload); the state is kept and P is brought inside them at once.
  // REQUIRES: as the constructor's.
  void set_variance_bounds(const Vector& variance_floor, const Vector& variance_ceiling) {
    floor_ = variance_floor;
    ceiling_ = variance_ceiling;
    bound_covariance();
  }

  // Raises P(i,i) to at least `variance` (a re-acquisition after a run of gated updates).
  // Adding to the diagonal keeps P positive definite.
  void inflate_variance(int i, double variance) {
    if (variance > p_(i, i)) p_(i, i) = variance;
    bound_covariance();
  }

  const Vector& state() const { return x_; }
  const Matrix& covariance() const { return p_; }
  const Vector& variance_floor() const { return floor_; }
  const Vector& variance_ceiling() const { return ceiling_; }
  const KalmanCounters& counters() const { return counters_; }
  // d² of the latest update that reached the gate (accepted or gated); NaN before any.
  double last_mahalanobis_sq() const { return last_d2_; }

 private:
  // Symmetrise, then hold every variance in [floor, ceiling]. A variance above its ceiling is
  // brought down by scaling its row and column by √(ceiling/P_ii) — a congruence D·P·D with a
  // positive diagonal D — which keeps P positive definite and its correlations intact; merely
  // overwriting P_ii could leave |P_ij| > √(P_ii·P_jj). Raising a variance to its floor adds a
  // positive diagonal term, which can only make P more positive definite.
  void bound_covariance() {
    // Each pair once: the same bits as P = ½(P + Pᵀ) (addition commutes; ½(a + a) = a), without
    // Eigen's N×N temporary.
    for (int i = 0; i < N; ++i) {
      for (int j = i + 1; j < N; ++j) {
        const double v = 0.5 * (p_(i, j) + p_(j, i));
        p_(i, j) = v;
        p_(j, i) = v;
      }
    }
    for (int i = 0; i < N; ++i) {
      const double v = p_(i, i);
      if (v > ceiling_(i)) {
        const double scale = std::sqrt(ceiling_(i) / v);
        p_.row(i) *= scale;
        p_.col(i) *= scale;
        p_(i, i) = ceiling_(i);
      }
    }
    for (int i = 0; i < N; ++i) {
      if (!(p_(i, i) >= floor_(i))) p_(i, i) = floor_(i);
    }
  }

  Vector x_;
  Matrix p_;
  Vector floor_;
  Vector ceiling_;
  KalmanCounters counters_;
  double last_d2_ = std::numeric_limits<double>::quiet_NaN();
};

}  // namespace kneeload::fusion
