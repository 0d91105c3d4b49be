// Fixed-capacity statistics (stats.hpp): time window, rolling mean/median, median buffer, EWMA.
#include "kneeload/fusion/stats.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace kneeload::fusion {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr std::int64_t kSecond = 1'000'000;

TEST(MedianInPlace, OddCountGivesTheMiddleEvenCountTheMeanOfTheTwoMiddles) {
  std::vector<double> odd{5.0, 1.0, 3.0, 9.0, 7.0};
  EXPECT_EQ(median_in_place(odd), 5.0);
  std::vector<double> even{4.0, 1.0, 3.0, 2.0};
  EXPECT_EQ(median_in_place(even), 2.5);
  std::vector<double> none;
  EXPECT_TRUE(std::isnan(median_in_place(none)));
}

TEST(TimeWindow, EvictsEntriesOlderThanTheSpan) {
  TimeWindow<int> w(8, 10 * kSecond);
  for (int k = 0; k < 5; ++k) ASSERT_TRUE(w.push(k * 3 * kSecond, k));  // t = 0, 3, 6, 9, 12 s
  // At 12 s the span covers (2 s, 12 s]: 0 s is gone.
  ASSERT_EQ(w.size(), 4) << "expected 4 entries in (2 s, 12 s], got " << w.size();
  EXPECT_EQ(w.value_at(0), 1);
  EXPECT_EQ(w.t_us_at(0), 3 * kSecond);
  w.evict_before(9 * kSecond);
  ASSERT_EQ(w.size(), 1) << "expected only the 12 s entry after evicting <= 9 s";
  EXPECT_EQ(w.value_at(0), 4);
  EXPECT_EQ(w.overflow(), 0u);
}

TEST(TimeWindow, WrapsAroundATinyCapacityAndCountsOverflow) {
  TimeWindow<int> w(3, 1000 * kSecond);
  for (int k = 0; k < 10; ++k) ASSERT_TRUE(w.push(k * kSecond, k));
  ASSERT_EQ(w.size(), 3);
  EXPECT_EQ(w.value_at(0), 7);
  EXPECT_EQ(w.value_at(1), 8);
  EXPECT_EQ(w.value_at(2), 9);
  EXPECT_EQ(w.overflow(), 7u) << "expected 7 entries dropped for capacity, got " << w.overflow();
}

TEST(TimeWindow, RefusesAnOlderEntry) {
  TimeWindow<int> w(4, 10 * kSecond);
  ASSERT_TRUE(w.push(5 * kSecond, 1));
  EXPECT_FALSE(w.push(4 * kSecond, 2));
  EXPECT_TRUE(w.push(5 * kSecond, 3)) << "equal times are in order";
  EXPECT_EQ(w.size(), 2);
}

TEST(RollingWindow, MeanAndMedianCoverOnlyTheLastSpanAndIgnoreNaN) {
  RollingWindow w(16, 2.0);
  EXPECT_TRUE(std::isnan(w.mean()));
  EXPECT_TRUE(std::isnan(w.median()));
  EXPECT_TRUE(w.push(0, 100.0));
  EXPECT_FALSE(w.push(kSecond / 2, kNaN));
  EXPECT_TRUE(w.push(kSecond, 1.0));
  EXPECT_TRUE(w.push(2 * kSecond, 2.0));  // evicts t = 0 (span (0, 2 s])
  EXPECT_TRUE(w.push(2 * kSecond + 1, 6.0));
  ASSERT_EQ(w.size(), 3);
  EXPECT_DOUBLE_EQ(w.mean(), 3.0);
  EXPECT_DOUBLE_EQ(w.median(), 2.0);
}

TEST(RollingWindow, MedianIsRobustToOneOutlier) {
  RollingWindow w(8, 100.0);
  const double values[] = {170.0, 171.0, 169.0, 20.0, 170.5};
  for (int k = 0; k < 5; ++k) w.push(k * kSecond, values[k]);
  EXPECT_DOUBLE_EQ(w.median(), 170.0);
  EXPECT_NEAR(w.mean(), 140.1, 1e-9);
}

TEST(MedianBuffer, RefusesBeyondCapacityInsteadOfWrapping) {
  MedianBuffer b(3);
  EXPECT_TRUE(b.add(1.0));
  EXPECT_FALSE(b.add(kNaN));
  EXPECT_TRUE(b.add(2.0));
  EXPECT_TRUE(b.add(30.0));
  EXPECT_FALSE(b.add(40.0));
  EXPECT_EQ(b.refused(), 1u);
  EXPECT_EQ(b.size(), 3);
  EXPECT_DOUBLE_EQ(b.median(), 2.0) << "the first three values define the median";
  b.clear();
  EXPECT_TRUE(std::isnan(b.median()));
}

TEST(Ewma, SeedsWithTheFirstValueThenMovesByAlpha) {
  Ewma e(0.25);
  EXPECT_TRUE(std::isnan(e.value()));
  EXPECT_DOUBLE_EQ(e.update(8.0), 8.0);
  EXPECT_DOUBLE_EQ(e.update(kNaN), 8.0) << "NaN is ignored";
  EXPECT_DOUBLE_EQ(e.update(16.0), 10.0);
  EXPECT_EQ(e.count(), 2u);
  e.reset();
  EXPECT_TRUE(std::isnan(e.value()));
}

TEST(Ewma, AlphaFromSpanAndTimeConstant) {
  EXPECT_DOUBLE_EQ(Ewma::alpha_for_span(9.0), 0.2);
  EXPECT_NEAR(Ewma::alpha_for_time_constant(1.0, 1.0), 1.0 - std::exp(-1.0), 1e-15);
  // A step input reaches 1 − e⁻¹ of the step after one time constant, whatever the step size.
  Ewma e(1.0);
  e.update(0.0);
  for (int k = 0; k < 100; ++k) e.update(1.0, Ewma::alpha_for_time_constant(0.01, 1.0));
  EXPECT_NEAR(e.value(), 1.0 - std::exp(-1.0), 1e-12);
}

}  // namespace
}  // namespace kneeload::fusion
