// SingleWriterHistogram: Prometheus "le" bucket semantics, sums, folding of several owners,
// and no allocation when observing.
#include "daemon/histogram.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace kneeload::daemon {
namespace {

TEST(SingleWriterHistogram, AValueOnABoundCountsInThatBucketAndAboveTheLastInInf) {
  SingleWriterHistogram h{100, 1000};
  h.observe_ns(0);
  h.observe_ns(100);   // le="1e-07": inclusive upper bound
  h.observe_ns(101);
  h.observe_ns(1000);
  h.observe_ns(5000);  // +Inf
  std::vector<std::uint64_t> counts;
  std::uint64_t sum = 0;
  h.add_to(counts, sum);
  ASSERT_EQ(counts.size(), 3u);
  EXPECT_EQ(counts[0], 2u);
  EXPECT_EQ(counts[1], 2u);
  EXPECT_EQ(counts[2], 1u);
  EXPECT_EQ(sum, 0u + 100 + 101 + 1000 + 5000);
}

TEST(SingleWriterHistogram, NegativeDurationsCountInTheFirstBucketWithoutMovingTheSum) {
  SingleWriterHistogram h{100};
  h.observe_ns(-5);  // a clock read that went backwards must not wrap the unsigned sum
  std::vector<std::uint64_t> counts;
  std::uint64_t sum = 0;
  h.add_to(counts, sum);
  EXPECT_EQ(counts[0], 1u);
  EXPECT_EQ(sum, 0u);
}

TEST(SingleWriterHistogram, SeveralOwnersFoldIntoOneSeries) {
  SingleWriterHistogram a = make_fusion_histogram();
  SingleWriterHistogram b = make_fusion_histogram();
  std::thread ta([&] { for (int i = 0; i < 100000; ++i) a.observe_ns(200); });
  std::thread tb([&] { for (int i = 0; i < 50000; ++i) b.observe_ns(2'000'000); });
  ta.join();
  tb.join();
  std::vector<std::uint64_t> counts;
  std::uint64_t sum = 0;
  a.add_to(counts, sum);
  b.add_to(counts, sum);
  ASSERT_EQ(counts.size(), a.bound_count() + 1);
  EXPECT_EQ(counts[1], 100000u);             // 200 ns ≤ 250 ns
  EXPECT_EQ(counts.back(), 50000u);          // 2 ms > the last bound, 1 ms
  EXPECT_EQ(sum, 100000ull * 200 + 50000ull * 2'000'000);
}

// The latency targets (p50 50 µs, p99 500 µs, p99.9 2 ms) must be bucket bounds, and the
// p50's range finely divided, for the dashboards' quantiles to say whether and by how much.
TEST(LatencyHistogram, ItsBoundsHoldTheTargetsAndResolveTheP50Range) {
  const SingleWriterHistogram h = make_latency_histogram();
  std::vector<std::int64_t> bounds;
  for (std::size_t i = 0; i < h.bound_count(); ++i) bounds.push_back(h.bound_ns(i));
  for (std::size_t i = 1; i < bounds.size(); ++i) EXPECT_LT(bounds[i - 1], bounds[i]) << i;
  for (const std::int64_t target : {50'000, 500'000, 2'000'000}) {
    EXPECT_NE(std::find(bounds.begin(), bounds.end(), target), bounds.end()) << target << " ns";
  }
  for (std::size_t i = 1; i < bounds.size(); ++i) {
    if (bounds[i] > 10'000 && bounds[i] <= 100'000) {
      EXPECT_LE(bounds[i] - bounds[i - 1], 25'000) << "between " << bounds[i - 1] << " and "
                                                   << bounds[i] << " ns";
    }
  }
}

}  // namespace
}  // namespace kneeload::daemon
