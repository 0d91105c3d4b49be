// A histogram with one writing thread and readers at scrape time.
//
// Why not prometheus::Histogram: its Observe() takes a std::mutex (ENGINEERING.md §1e and
// pitfall 7), and the publisher and workers observe per output and per sample. Here the owner
// thread pays a bucket search and two relaxed load+store pairs; the scrape thread sums the
// buckets of every owner into one Prometheus histogram.
#pragma once

#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "kneeload/proto/counter.hpp"

namespace kneeload::daemon {

class SingleWriterHistogram {
 public:
  static constexpr std::size_t kMaxBounds = 20;

  // Upper bounds in nanoseconds, ascending; an implicit +Inf bucket follows the last.
  explicit SingleWriterHistogram(std::initializer_list<std::int64_t> upper_bounds_ns) {
    assert(upper_bounds_ns.size() <= kMaxBounds);
    for (const std::int64_t b : upper_bounds_ns) bounds_ns_[n_++] = b;
  }

  // Owner thread only. Linear search: the bounds are few and the common case sits low.
  void observe_ns(std::int64_t ns) {
    std::size_t i = 0;
    while (i < n_ && ns > bounds_ns_[i]) ++i;
    counts_[i].inc();
    sum_ns_.add(ns > 0 ? static_cast<std::uint64_t>(ns) : 0);
  }

  std::size_t bound_count() const { return n_; }
  std::int64_t bound_ns(std::size_t i) const { return bounds_ns_[i]; }

  // Any thread: adds this histogram's per-bucket counts (non-cumulative, bound_count() + 1 of
  // them, the last for +Inf) and its sum into the caller's accumulators, so the histograms of
  // several owner threads fold into one series.
  void add_to(std::vector<std::uint64_t>& counts, std::uint64_t& sum_ns) const {
    counts.resize(n_ + 1, 0);
    for (std::size_t i = 0; i <= n_; ++i) counts[i] += counts_[i].get();
    sum_ns += sum_ns_.get();
  }

 private:
  std::array<std::int64_t, kMaxBounds> bounds_ns_{};
  std::size_t n_ = 0;
  std::array<proto::Counter, kMaxBounds + 1> counts_{};
  proto::Counter sum_ns_;
};

// Pipeline latency, per output: arrival of the frame that released it → published. The issue's
// targets (p50 50 µs, p99 500 µs, p99.9 2 ms) sit on bucket bounds, so whether one is met is
// read off exactly; the bounds are 10-25 µs apart from 10 to 100 µs, where the p50 lives, so
// histogram_quantile() can say by how much (with 25/50/100 a p50 of 40 or 70 µs could only be
// told as "25-50" or "50-100"). A stalled subscriber or an overloaded worker reaches the upper
// ones. 19 bounds of kMaxBounds 20; an observation costs one compare per bound below it.
inline SingleWriterHistogram make_latency_histogram() {
  return SingleWriterHistogram{5'000,         10'000,     20'000,     30'000,      40'000,
                               50'000,        60'000,     75'000,     100'000,     150'000,
                               250'000,       500'000,    1'000'000,  2'000'000,   5'000'000,
                               10'000'000,    50'000'000, 250'000'000, 1'000'000'000};
}

// Data age, per output: arrival of the sample it was computed from → published. The reorder
// window (150 ms by default) is most of it; an idle flush releases after 500 ms.
inline SingleWriterHistogram make_age_histogram() {
  return SingleWriterHistogram{10'000'000,  50'000'000,  100'000'000,   150'000'000,
                               200'000'000, 250'000'000, 500'000'000,   1'000'000'000,
                               2'500'000'000, 10'000'000'000};
}

// Fusing one sample: the 300 ns target sits in the low buckets; filter resets and step ends
// take microseconds.
inline SingleWriterHistogram make_fusion_histogram() {
  return SingleWriterHistogram{100,    250,    500,     1'000,   2'500,   5'000,
                               10'000, 25'000, 100'000, 1'000'000};
}

}  // namespace kneeload::daemon
