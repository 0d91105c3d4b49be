// KalmanFilter<N> (kalman.hpp): the generic filter's maths, rejection paths and numerical health.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>

#include <Eigen/Dense>

#include "kneeload/fusion/kalman.hpp"

namespace kneeload::fusion {
namespace {

using Filter1 = KalmanFilter<1>;
using Filter2 = KalmanFilter<2>;
using Filter3 = KalmanFilter<3>;
using Vec1 = Eigen::Matrix<double, 1, 1>;
using Row2 = Eigen::Matrix<double, 1, 2>;
using Row3 = Eigen::Matrix<double, 1, 3>;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

Vec1 v1(double v) { return Vec1(v); }

// Constant velocity, position measured: x = [p, v].
Eigen::Matrix2d cv_transition(double dt) {
  Eigen::Matrix2d f;
  f << 1.0, dt, 0.0, 1.0;
  return f;
}
Eigen::Matrix2d cv_noise(double q, double dt) {
  Eigen::Matrix2d m;
  m << dt * dt * dt / 3.0, dt * dt / 2.0, dt * dt / 2.0, dt;
  return q * m;
}

Filter2 cv_filter() {
  return Filter2(Eigen::Vector2d::Zero(), Eigen::Vector2d(100.0, 100.0).asDiagonal(),
                 Eigen::Vector2d::Constant(1e-12), Eigen::Vector2d::Constant(1e6));
}

// A static scalar with no process noise is the textbook case with a closed form: after k
// measurements the estimate is the precision-weighted mean of the prior and the data, and
// P = 1/(1/P0 + k/R).
TEST(KalmanFilter, EstimatesAConstantAsThePrecisionWeightedMean) {
  const double x0 = 0.0, p0 = 4.0, r = 0.25, truth = 3.0;
  Filter1 kf(v1(x0), Eigen::Matrix<double, 1, 1>(p0), v1(1e-30), v1(1e30));
  std::mt19937_64 rng(1);
  std::normal_distribution<double> noise(0.0, std::sqrt(r));
  double sum_z = 0.0;
  const int n = 1000;
  for (int k = 1; k <= n; ++k) {
    ASSERT_EQ(kf.predict(Eigen::Matrix<double, 1, 1>::Identity(), Eigen::Matrix<double, 1, 1>::Zero()),
              UpdateStatus::kAccepted);
    const double z = truth + noise(rng);
    sum_z += z;
    ASSERT_EQ(kf.update<1>(v1(z), Eigen::Matrix<double, 1, 1>::Identity(),
                           Eigen::Matrix<double, 1, 1>(r), kNoGate),
              UpdateStatus::kAccepted);
    const double precision = 1.0 / p0 + k / r;
    const double expected_x = (x0 / p0 + sum_z / r) / precision;
    ASSERT_NEAR(kf.state()(0), expected_x, 1e-12 * std::abs(expected_x) + 1e-12)
        << "after " << k << " updates";
    ASSERT_NEAR(kf.covariance()(0, 0), 1.0 / precision, 1e-12 / precision) << "after " << k;
  }
  EXPECT_NEAR(kf.state()(0), truth, 3.0 * std::sqrt(r / n))
      << "expected the truth within 3σ of the mean of " << n << " samples";
  EXPECT_EQ(kf.counters().updates, static_cast<std::uint64_t>(n));
}

// A constant-velocity target with the filter's own process and measurement noise: the filter is
// consistent (mean NEES = state dimension) and its covariance converges to the Riccati fixed point.
TEST(KalmanFilter, TracksAConstantVelocityTargetConsistently) {
  const double dt = 0.01, q = 4.0, r = 0.01;
  Filter2 kf = cv_filter();
  std::mt19937_64 rng(2);
  std::normal_distribution<double> unit(0.0, 1.0);
  const Eigen::Matrix2d qd = cv_noise(q, dt);
  const Eigen::LLT<Eigen::Matrix2d> qchol(qd);
  Eigen::Vector2d truth(1.0, -0.5);
  double nees_sum = 0.0;
  int nees_n = 0;
  Eigen::Matrix2d p_at_5000 = Eigen::Matrix2d::Zero();
  const int n = 10000;
  for (int k = 1; k <= n; ++k) {
    truth = cv_transition(dt) * truth + qchol.matrixL() * Eigen::Vector2d(unit(rng), unit(rng));
    ASSERT_EQ(kf.predict(cv_transition(dt), qd), UpdateStatus::kAccepted);
    const double z = truth(0) + std::sqrt(r) * unit(rng);
    ASSERT_EQ(kf.update<1>(v1(z), Row2(1.0, 0.0), Eigen::Matrix<double, 1, 1>(r), kNoGate),
              UpdateStatus::kAccepted);
    if (k > 100) {
      const Eigen::Vector2d e = kf.state() - truth;
      nees_sum += e.dot(kf.covariance().ldlt().solve(e));
      ++nees_n;
    }
    if (k == 5000) p_at_5000 = kf.covariance();
  }
  const double mean_nees = nees_sum / nees_n;
  std::printf("[measured] CV target: mean NEES %.3f over %d steps (expected 2)\n", mean_nees,
              nees_n);
  EXPECT_GT(mean_nees, 1.7) << "expected mean NEES ≈ 2, got " << mean_nees;
  EXPECT_LT(mean_nees, 2.3) << "expected mean NEES ≈ 2, got " << mean_nees;
  EXPECT_LT((kf.covariance() - p_at_5000).cwiseAbs().maxCoeff(),
            1e-12 * kf.covariance().cwiseAbs().maxCoeff())
      << "expected P at its steady state after 5000 steps";
}

TEST(KalmanFilter, GateRejectsAnOutlierAndLeavesTheStateUntouched) {
  Filter2 kf = cv_filter();
  const Eigen::Matrix<double, 1, 1> r(0.01);
  for (int k = 0; k < 200; ++k) {
    ASSERT_EQ(kf.predict(cv_transition(0.01), cv_noise(1.0, 0.01)), UpdateStatus::kAccepted);
    ASSERT_EQ(kf.update<1>(v1(0.02 * k * 0.01), Row2(1.0, 0.0), r, kChi2Gate1Dof),
              UpdateStatus::kAccepted);
  }
  const Eigen::Vector2d x_before = kf.state();
  const Eigen::Matrix2d p_before = kf.covariance();
  const KalmanCounters c_before = kf.counters();

  EXPECT_EQ(kf.update<1>(v1(5.0), Row2(1.0, 0.0), r, kChi2Gate1Dof), UpdateStatus::kGated);
  EXPECT_GT(kf.last_mahalanobis_sq(), kChi2Gate1Dof);
  EXPECT_EQ(kf.state(), x_before) << "a gated update must not move the state";
  EXPECT_EQ(kf.covariance(), p_before) << "a gated update must not move P";
  EXPECT_EQ(kf.counters().gated, c_before.gated + 1);
  EXPECT_EQ(kf.counters().updates, c_before.updates);

  // The same outlier passes with no gate; a normal measurement passes the gate.
  Filter2 ungated = kf;
  EXPECT_EQ(ungated.update<1>(v1(5.0), Row2(1.0, 0.0), r, kNoGate), UpdateStatus::kAccepted);
  EXPECT_EQ(kf.update<1>(v1(x_before(0) + 0.05), Row2(1.0, 0.0), r, kChi2Gate1Dof),
            UpdateStatus::kAccepted);
  EXPECT_EQ(kf.counters().updates, c_before.updates + 1);
  EXPECT_EQ(kf.counters().gated, c_before.gated + 1);
}

TEST(KalmanFilter, NonFiniteInputsAreRejectedAndCounted) {
  Filter2 kf = cv_filter();
  const Eigen::Vector2d x_before = kf.state();
  const Eigen::Matrix2d p_before = kf.covariance();
  const Eigen::Matrix<double, 1, 1> r(0.01);
  EXPECT_EQ(kf.update<1>(v1(kNaN), Row2(1.0, 0.0), r, kNoGate), UpdateStatus::kNonFinite);
  EXPECT_EQ(kf.update<1>(v1(kInf), Row2(1.0, 0.0), r, kNoGate), UpdateStatus::kNonFinite);
  EXPECT_EQ(kf.update<1>(v1(-kInf), Row2(1.0, 0.0), r, kNoGate), UpdateStatus::kNonFinite);
  EXPECT_EQ(kf.update<1>(v1(0.0), Row2(kNaN, 0.0), r, kNoGate), UpdateStatus::kNonFinite);
  EXPECT_EQ(kf.update<1>(v1(0.0), Row2(1.0, 0.0), Eigen::Matrix<double, 1, 1>(kNaN), kNoGate),
            UpdateStatus::kNonFinite);
  EXPECT_EQ(kf.predict(cv_transition(kNaN), cv_noise(1.0, 0.01)), UpdateStatus::kNonFinite);
  EXPECT_EQ(kf.counters().non_finite, 6u);
  EXPECT_EQ(kf.counters().updates, 0u);
  EXPECT_EQ(kf.counters().predicts, 0u);
  EXPECT_EQ(kf.state(), x_before);
  EXPECT_EQ(kf.covariance(), p_before);
  EXPECT_EQ(kf.update<1>(v1(0.5), Row2(1.0, 0.0), r, kNoGate), UpdateStatus::kAccepted);
}

TEST(KalmanFilter, InnovationCovarianceThatIsNotPositiveIsRejected) {
  Filter2 kf(Eigen::Vector2d::Zero(), Eigen::Matrix2d::Identity(), Eigen::Vector2d::Constant(1e-12),
             Eigen::Vector2d::Constant(1e6));
  EXPECT_EQ(kf.update<1>(v1(0.1), Row2(1.0, 0.0), Eigen::Matrix<double, 1, 1>(-2.0), kNoGate),
            UpdateStatus::kNotPositiveDefinite);
  const Eigen::Matrix2d r2 = Eigen::Vector2d(1.0, -5.0).asDiagonal();
  EXPECT_EQ(kf.update<2>(Eigen::Vector2d(0.1, 0.1), Eigen::Matrix2d::Identity(), r2, kNoGate),
            UpdateStatus::kNotPositiveDefinite);
  EXPECT_EQ(kf.counters().not_positive, 2u);
  EXPECT_EQ(kf.state(), Eigen::Vector2d::Zero());
}

// The Joseph form must equal the textbook P = (I − KH)P for the optimal gain, and the LDLT
// solve must equal an explicit inverse, on a well-conditioned case: both for a scalar and for a
// vector measurement.
TEST(KalmanFilter, JosephFormAgreesWithStandardFormOnAWellConditionedCase) {
  Eigen::Matrix3d p0;
  p0 << 2.0, 0.3, -0.1, 0.3, 1.5, 0.2, -0.1, 0.2, 0.8;
  const Eigen::Vector3d x0(0.1, -0.2, 0.3);
  const Eigen::Vector3d floor = Eigen::Vector3d::Constant(1e-12);
  const Eigen::Vector3d ceiling = Eigen::Vector3d::Constant(1e6);

  auto check = [&](auto z, auto h, auto r) {
    Filter3 kf(x0, p0, floor, ceiling);
    ASSERT_EQ(kf.update(z, h, r, kNoGate), UpdateStatus::kAccepted);
    const auto s = (h * p0 * h.transpose() + r).eval();
    const auto k = (p0 * h.transpose() * s.inverse()).eval();
    const Eigen::Vector3d x_std = x0 + k * (z - h * x0);
    Eigen::Matrix3d p_std = (Eigen::Matrix3d::Identity() - k * h) * p0;
    p_std = (0.5 * (p_std + p_std.transpose())).eval();
    const double dx = (kf.state() - x_std).cwiseAbs().maxCoeff();
    const double dp = (kf.covariance() - p_std).cwiseAbs().maxCoeff();
    std::printf("[measured] M=%d: max |Δx| %.2e, max |ΔP| %.2e (Joseph vs standard)\n",
                static_cast<int>(z.rows()), dx, dp);
    EXPECT_LT(dx, 1e-13) << "expected the same state, got max difference " << dx;
    EXPECT_LT(dp, 1e-13) << "expected the same covariance, got max difference " << dp;
  };
  check(v1(0.7), Row3(1.0, 0.0, 1.0), Eigen::Matrix<double, 1, 1>(0.25));
  Eigen::Matrix<double, 2, 3> h2;
  h2 << 1.0, 0.0, 0.0, 0.0, 1.0, 1.0;
  Eigen::Matrix2d r2;
  r2 << 0.3, 0.05, 0.05, 0.2;
  check(Eigen::Vector2d(0.5, -0.4), h2, r2);
}

// A long gap or a run of missed updates must leave P bounded and positive definite.
TEST(KalmanFilter, LongGapHoldsVariancesAtTheirCeilings) {
  const Eigen::Vector2d ceiling(4.0, 9.0);
  Filter2 kf(Eigen::Vector2d(1.0, 2.0), Eigen::Matrix2d::Identity() * 0.01,
             Eigen::Vector2d::Constant(1e-10), ceiling);
  ASSERT_EQ(kf.predict(cv_transition(0.01), cv_noise(1e4, 3600.0)), UpdateStatus::kAccepted);
  EXPECT_DOUBLE_EQ(kf.covariance()(0, 0), ceiling(0));
  EXPECT_DOUBLE_EQ(kf.covariance()(1, 1), ceiling(1));
  EXPECT_TRUE(is_symmetric_positive_definite(kf.covariance()))
      << "P after the gap:\n" << kf.covariance();
  EXPECT_LE(std::abs(kf.covariance()(0, 1)), std::sqrt(ceiling(0) * ceiling(1)));
}

TEST(KalmanFilter, VarianceFloorKeepsPPositiveDefiniteWithExactMeasurements) {
  const Eigen::Vector2d floor(1e-9, 1e-9);
  Filter2 kf(Eigen::Vector2d::Zero(), Eigen::Matrix2d::Identity(), floor,
             Eigen::Vector2d::Constant(1e6));
  // R = 0 on both states: the optimal posterior would be P = 0.
  ASSERT_EQ(kf.update<2>(Eigen::Vector2d(1.0, 2.0), Eigen::Matrix2d::Identity(),
                         Eigen::Matrix2d::Zero(), kNoGate),
            UpdateStatus::kAccepted);
  EXPECT_GE(kf.covariance()(0, 0), floor(0));
  EXPECT_GE(kf.covariance()(1, 1), floor(1));
  EXPECT_TRUE(is_symmetric_positive_definite(kf.covariance())) << kf.covariance();
}

TEST(KalmanFilter, InflateVarianceRaisesOnlyThatVariance) {
  Filter2 kf = cv_filter();
  const Eigen::Matrix2d before = kf.covariance();
  kf.inflate_variance(0, 1e3);
  EXPECT_DOUBLE_EQ(kf.covariance()(0, 0), 1e3);
  EXPECT_DOUBLE_EQ(kf.covariance()(1, 1), before(1, 1));
  kf.inflate_variance(0, 1.0);  // never lowers
  EXPECT_DOUBLE_EQ(kf.covariance()(0, 0), 1e3);
}

// Numerical health: 10⁶ predict/update cycles of the knee model (MODEL.md §9) with seeded random
// time steps — ordinary 5 ms ± jitter, near-zero steps, and gaps up to 60 s — and random
// measurements of θ̇ + b, of θ, of both, outliers and NaNs. P must stay symmetric positive
// definite and within its bounds after every single call.
TEST(KalmanFilter, CovarianceStaysSymmetricPositiveDefiniteOverAMillionCycles) {
  const Eigen::Vector3d floor = Eigen::Vector3d::Constant(1e-14);
  const Eigen::Vector3d ceiling(std::pow(1.5708, 2), 900.0, std::pow(0.35, 2));
  Filter3 kf(Eigen::Vector3d(0.05, 0.0, 0.0),
             Eigen::Vector3d(std::pow(0.087, 2), 1.0, std::pow(0.17, 2)).asDiagonal(), floor,
             ceiling);
  const double sigma_alpha2 = 75.0 * 75.0, sigma_b2 = 1e-8;
  const Row3 h_gyro(0.0, 1.0, 1.0), h_angle(1.0, 0.0, 0.0);
  Eigen::Matrix<double, 2, 3> h_both;
  h_both << h_angle, h_gyro;
  const Eigen::Matrix<double, 1, 1> r_gyro(std::pow(0.0087, 2)), r_angle(std::pow(0.052, 2));
  const Eigen::Matrix2d r_both = Eigen::Vector2d(r_angle(0), r_gyro(0)).asDiagonal();

  std::mt19937_64 rng(20240607);
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  std::normal_distribution<double> unit(0.0, 1.0);
  const double bias = 0.087;
  double t = 0.0;
  double min_eig = std::numeric_limits<double>::infinity();
  double max_cond = 0.0, max_asym = 0.0;
  std::uint64_t failures = 0, gaps = 0;
  const int n = 1'000'000;
  for (int k = 0; k < n; ++k) {
    const double pick = u01(rng);
    double dt;
    if (pick < 0.001) {
      dt = 0.05 + 60.0 * u01(rng);  // a gap
      ++gaps;
    } else if (pick < 0.01) {
      dt = 1e-7 * u01(rng);  // duplicate-ish timestamps
    } else {
      dt = 0.005 * (0.8 + 0.4 * u01(rng));
    }
    t += dt;
    // The knee filter's time-step policy (filters.hpp): extrapolate over at most 0.05 s, and
    // grow θ's variance through the rest of a gap at 5 rad/s.
    Eigen::Matrix3d f = Eigen::Matrix3d::Identity();
    f(0, 1) = std::min(dt, 0.05);
    const double gap = std::max(0.0, dt - 0.05);
    const Eigen::Matrix3d q =
        Eigen::Vector3d(std::pow(5.0 * gap, 2), sigma_alpha2 * dt, sigma_b2 * dt).asDiagonal();
    if (kf.predict(f, q) != UpdateStatus::kAccepted) ++failures;

    const double w = 2.0 * 3.14159265 * 1.4;
    const double theta = 0.7 + 0.5 * std::sin(w * t);
    const double rate = 0.5 * w * std::cos(w * t);
    const double kind = u01(rng);
    UpdateStatus s;
    if (kind < 0.70) {
      s = kf.update<1>(v1(rate + bias + 0.0087 * unit(rng)), h_gyro, r_gyro, kChi2Gate1Dof);
    } else if (kind < 0.90) {
      s = kf.update<1>(v1(theta + 0.052 * unit(rng)), h_angle, r_angle, kChi2Gate1Dof);
    } else if (kind < 0.98) {
      s = kf.update<2>(Eigen::Vector2d(theta + 0.052 * unit(rng), rate + bias), h_both, r_both,
                       kChi2Gate2Dof);
    } else if (kind < 0.995) {
      s = kf.update<1>(v1(theta + 3.0 * unit(rng)), h_angle, r_angle, kChi2Gate1Dof);  // outlier
    } else {
      s = kf.update<1>(v1(kNaN), h_angle, r_angle, kChi2Gate1Dof);
    }
    (void)s;

    const Eigen::Matrix3d& p = kf.covariance();
    const bool spd = is_symmetric_positive_definite(p, 0.0);
    const bool bounded = (p.diagonal().array() >= floor.array()).all() &&
                         (p.diagonal().array() <= ceiling.array()).all();
    if (!spd || !bounded || !kf.state().allFinite()) {
      ++failures;
      if (failures < 5) {
        ADD_FAILURE() << "cycle " << k << ": P not SPD/bounded or x not finite\nP =\n"
                      << p << "\nx = " << kf.state().transpose();
      }
    }
    max_asym = std::max(max_asym, (p - p.transpose()).cwiseAbs().maxCoeff());
    if (k % 1000 == 0) {
      const Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> es(p);
      const double lo = es.eigenvalues().minCoeff(), hi = es.eigenvalues().maxCoeff();
      min_eig = std::min(min_eig, lo);
      max_cond = std::max(max_cond, hi / lo);
    }
  }
  const KalmanCounters& c = kf.counters();
  std::printf("[measured] %d cycles, %llu gaps: updates %llu, gated %llu, non-finite %llu; "
              "min eigenvalue %.3e, max condition %.3e, max |P − Pᵀ| %.1e\n",
              n, static_cast<unsigned long long>(gaps),
              static_cast<unsigned long long>(c.updates), static_cast<unsigned long long>(c.gated),
              static_cast<unsigned long long>(c.non_finite), min_eig, max_cond, max_asym);
  EXPECT_EQ(failures, 0u) << "expected P SPD and bounded after every cycle";
  EXPECT_GT(min_eig, 0.0);
  EXPECT_EQ(max_asym, 0.0) << "P is symmetrised after every call";
  EXPECT_EQ(c.predicts, static_cast<std::uint64_t>(n));
  EXPECT_GT(c.updates, 900'000u);
  EXPECT_GT(c.gated, 0u);
  EXPECT_GT(c.non_finite, 0u);
}

}  // namespace
}  // namespace kneeload::fusion
