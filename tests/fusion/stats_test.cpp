// Fixed-capacity statistics (stats.hpp): time window, rolling mean/median, median buffer,
// half-precision storage, medians in constant memory, EWMA.
#include "kneeload/fusion/stats.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <span>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <random>
#include <vector>

namespace kneeload::fusion {
namespace {

// Median of halves by selection, reordering them in place; the mean of the two middle values for
// an even count, NaN for an empty span. REQUIRES: no NaN. What GaitTrends computed per read
// before SortedHalves: the reference SortedHalves' medians are checked against.
double median_of_halves(std::span<std::uint16_t> halves) {
  const std::size_t n = halves.size();
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  for (std::uint16_t& h : halves) h = half_order_key(h);
  const std::size_t mid = n / 2;
  const auto mid_it = halves.begin() + static_cast<std::ptrdiff_t>(mid);
  std::nth_element(halves.begin(), mid_it, halves.end());
  const double upper = double_from_half(half_from_order_key(*mid_it));
  if (n % 2 == 1) return upper;
  const double lower = double_from_half(half_from_order_key(*std::max_element(halves.begin(), mid_it)));
  return 0.5 * (lower + upper);
}

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

// ---- Half precision -----------------------------------------------------------------------------

TEST(Half, KnownEncodings) {
  EXPECT_EQ(half_from_double(0.0), 0x0000);
  EXPECT_EQ(half_from_double(-0.0), 0x8000);
  EXPECT_EQ(half_from_double(1.0), 0x3c00);
  EXPECT_EQ(half_from_double(-2.0), 0xc000);
  EXPECT_EQ(half_from_double(0.1), 0x2e66);
  EXPECT_EQ(half_from_double(1.0 / 3.0), 0x3555);
  EXPECT_EQ(half_from_double(65504.0), 0x7bff);
  EXPECT_EQ(half_from_double(1e6), 0x7bff) << "finite values saturate";
  EXPECT_EQ(half_from_double(-1e6), 0xfbff);
  EXPECT_EQ(half_from_double(std::numeric_limits<double>::infinity()), 0x7c00);
  EXPECT_TRUE(half_is_nan(half_from_double(kNaN)));
  EXPECT_EQ(half_from_double(0x1p-14), 0x0400) << "smallest normal";
  EXPECT_EQ(half_from_double(0x1p-24), 0x0001) << "smallest subnormal";
  EXPECT_EQ(half_from_double(0x1p-25), 0x0000) << "a tie rounds to even";
  EXPECT_EQ(half_from_double(0x1.8p-25), 0x0001);
  EXPECT_EQ(half_from_double(1.0 + 0x1p-11), 0x3c00) << "a tie rounds to even";
  EXPECT_EQ(half_from_double(1.0 + 0x3p-11), 0x3c02) << "a tie rounds to even";
  EXPECT_EQ(half_from_double(1.0 + 0x1.8p-11), 0x3c01);
  EXPECT_EQ(double_from_half(0x3555), 0.333251953125);
  EXPECT_EQ(double_from_half(0x0001), 0x1p-24);
  EXPECT_TRUE(std::isinf(double_from_half(0xfc00)));
  EXPECT_TRUE(std::isnan(double_from_half(0x7e00)));
}

TEST(Half, EveryHalfSurvivesTheRoundTrip) {
  for (std::uint32_t h = 0; h <= 0xffffu; ++h) {
    const auto bits = static_cast<std::uint16_t>(h);
    if (half_is_nan(bits)) continue;
    ASSERT_EQ(half_from_double(double_from_half(bits)), bits) << "half 0x" << std::hex << h;
  }
}

TEST(Half, RoundsToTheNearestHalfWithinTwoToTheMinusEleven) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> exponent(-14.0, 15.9);
  for (int k = 0; k < 200000; ++k) {
    const double x = std::exp2(exponent(rng)) * (k % 2 == 0 ? 1.0 : -1.0);
    const double y = double_from_half(half_from_double(x));
    ASSERT_LE(std::fabs(y - x), std::fabs(x) * 0x1p-11) << "x = " << x << ", got " << y;
  }
}

TEST(MedianOfHalves, MatchesTheMedianOfTheDecodedValues) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> value(0.0, 100.0);
  for (int n = 1; n <= 41; ++n) {
    std::vector<std::uint16_t> halves;
    std::vector<double> decoded;
    for (int k = 0; k < n; ++k) {
      halves.push_back(half_from_double(value(rng)));
      decoded.push_back(double_from_half(halves.back()));
    }
    EXPECT_EQ(median_of_halves(halves), median_in_place(decoded)) << n << " values";
  }
  std::vector<std::uint16_t> none;
  EXPECT_TRUE(std::isnan(median_of_halves(none)));
}

// A rolling window kept sorted must give, after any sequence of inserts and erases, exactly the
// median a selection over the same values gives: GaitTrends' outputs depend on it bit for bit.
// Values repeat (a coarse grid), include -0 and +0, and the window fills, drains and refills.
TEST(SortedHalves, EveryMedianEqualsTheSelectedMedianOfTheSameWindow) {
  constexpr int kRows = 3, kCapacity = 40;
  SortedHalves sorted(kRows, kCapacity);
  std::vector<std::vector<std::uint16_t>> window(kRows);  // each row's values in arrival order
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<int> grid(-12, 12);
  std::uniform_int_distribution<int> action(0, 99);
  int checks = 0;
  for (int step = 0; step < 20000; ++step) {
    const int row = step % kRows;
    std::vector<std::uint16_t>& w = window[static_cast<std::size_t>(row)];
    // Mostly one in, one out when full; now and then a run of erases drains the row.
    const bool drain = action(rng) < 3;
    if (drain || w.size() == static_cast<std::size_t>(kCapacity)) {
      const std::size_t out = drain ? w.size() / 2 : 1;
      for (std::size_t k = 0; k < out; ++k) {
        sorted.erase(row, w.front());
        w.erase(w.begin());
      }
    } else {
      const int g = grid(rng);
      const double v = g == 0 ? (action(rng) < 50 ? -0.0 : 0.0) : g * 0.25;
      w.push_back(half_from_double(v));
      sorted.insert(row, w.back());
    }
    ASSERT_EQ(sorted.size(row), static_cast<int>(w.size()));
    std::vector<std::uint16_t> copy = w;
    const double expected = median_of_halves(copy);
    const double got = sorted.median(row);
    if (w.empty()) {
      EXPECT_TRUE(std::isnan(got));
    } else {
      ASSERT_EQ(std::bit_cast<std::uint64_t>(got), std::bit_cast<std::uint64_t>(expected))
          << "step " << step << ", " << w.size() << " values: " << got << " vs " << expected;
      ++checks;
    }
  }
  sorted.clear();
  for (int row = 0; row < kRows; ++row) EXPECT_TRUE(std::isnan(sorted.median(row)));
  EXPECT_GT(checks, 15000);
}

// ---- Medians in constant memory -----------------------------------------------------------------

TEST(StreamingMedian, ExactUpToFiveValuesAndIgnoresNaN) {
  StreamingMedian m;
  EXPECT_TRUE(std::isnan(m.median()));
  EXPECT_FALSE(m.add(kNaN));
  const std::vector<double> values{4.0, -1.0, 9.0, 2.0, 7.0};
  const std::vector<double> expected{4.0, 1.5, 4.0, 3.0, 4.0};
  for (std::size_t k = 0; k < values.size(); ++k) {
    m.add(values[k]);
    EXPECT_EQ(m.median(), expected[k]) << k + 1 << " values";
  }
  for (int k = 0; k < 100; ++k) m.add(5.0);
  EXPECT_NEAR(m.median(), 5.0, 1e-4) << "a constant stream pulls the middle marker onto it";
  m.clear();
  EXPECT_EQ(m.size(), 0);
  EXPECT_TRUE(std::isnan(m.median()));
}

// The error of the streaming median against the exact one, in interquartile ranges, over
// streams of 60..600 values (a baseline's steps per side): stationary normal and skewed
// (log-normal) values, and a drift of two IQRs over the stream (a runner still warming up).
TEST(StreamingMedian, ErrorAgainstTheExactMedianIsASmallFractionOfTheIqr) {
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_int_distribution<int> length(60, 600);
  struct Kind {
    const char* name;
    std::function<double(int, int)> value;  // (index, count)
  };
  const std::vector<Kind> kinds{
      {"normal", [&](int, int) { return 0.25 + 0.01 * normal(rng); }},
      {"log-normal", [&](int, int) { return std::exp(0.5 * normal(rng)); }},
      {"drifting", [&](int i, int n) { return normal(rng) + 2.7 * i / n; }},
  };
  for (const Kind& kind : kinds) {
    std::vector<double> errors;
    for (int trial = 0; trial < 300; ++trial) {
      const int n = length(rng);
      std::vector<double> values;
      StreamingMedian m;
      for (int i = 0; i < n; ++i) {
        values.push_back(kind.value(i, n));
        m.add(values.back());
      }
      std::vector<double> sorted = values;
      std::sort(sorted.begin(), sorted.end());
      const double iqr = sorted[static_cast<std::size_t>(3 * n / 4)] -
                         sorted[static_cast<std::size_t>(n / 4)];
      errors.push_back(std::fabs(m.median() - median_in_place(values)) / iqr);
    }
    std::sort(errors.begin(), errors.end());
    const double p50 = errors[errors.size() / 2];
    const double p95 = errors[errors.size() * 95 / 100];
    const double max = errors.back();
    std::printf("[measured] streaming median error / IQR, %s, 300 streams of 60-600: median "
                "%.4f, p95 %.4f, max %.4f\n",
                kind.name, p50, p95, max);
    EXPECT_LT(p50, 0.04) << kind.name;
    EXPECT_LT(p95, 0.12) << kind.name;
    EXPECT_LT(max, 0.30) << kind.name;
  }
}

TEST(SetPointMedian, ExactForAFewLevels) {
  SetPointMedian m;
  EXPECT_TRUE(std::isnan(m.median()));
  EXPECT_FALSE(m.add(kNaN));
  for (int k = 0; k < 200; ++k) m.add(3.0);
  for (int k = 0; k < 400; ++k) m.add(3.2);
  EXPECT_EQ(m.median(), 3.2) << "two thirds of the steps at 3.2 m/s";
  for (int k = 0; k < 200; ++k) m.add(3.0);
  EXPECT_EQ(m.median(), 3.1) << "an even split: the mean of the two middle values";
  m.add(2.9);
  EXPECT_EQ(m.median(), 3.0);
  EXPECT_EQ(m.distinct(), 3);
  m.clear();
  EXPECT_TRUE(std::isnan(m.median()));
}

TEST(SetPointMedian, ManyLevelsMergeIntoTheirNeighbours) {
  SetPointMedian m;
  // 0.0, 0.1, ..., 9.9 in order: more levels than slots, so the closest ones merge; the median
  // of a uniform ramp stays near its middle.
  for (int k = 0; k < 100; ++k) m.add(0.1 * k);
  EXPECT_LE(m.distinct(), SetPointMedian::kValues);
  EXPECT_NEAR(m.median(), 4.95, 1.0);
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
