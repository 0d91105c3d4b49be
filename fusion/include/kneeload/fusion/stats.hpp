// Fixed-capacity statistics for per-step metrics: a time window (MODEL.md §6: rolling 2-min
// values), a median buffer (the runner baseline, MODEL.md §6/§9: median of minutes 3-8) and an
// EWMA (MODEL.md §9 R1: σ_peak EWMA).
//
// Thread ownership: one owner thread, no locking. Memory: every buffer is sized at construction
// and never grows, so push/add/median/mean never allocate (the risk-rule allocation test counts
// them). NaN inputs are ignored everywhere, so a metric the session could not compute for one
// step does not poison its window. Results are deterministic: the same pushes give the same
// bits.
#pragma once

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

namespace kneeload::fusion {

// Median of `values`, reordering them in place (nth_element). The mean of the two middle values
// for an even count; NaN for an empty span. REQUIRES: no NaN in `values`.
inline double median_in_place(std::span<double> values) {
  const std::size_t n = values.size();
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  const std::size_t mid = n / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid), values.end());
  const double upper = values[mid];
  if (n % 2 == 1) return upper;
  // The lower middle is the largest element of the left part nth_element left behind.
  const double lower =
      *std::max_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid));
  return 0.5 * (lower + upper);
}

// A FIFO of (time, value) entries covering the last `span_us` of runner time, at most `capacity`
// entries. Pushing evicts entries older than the span, then, if still full, the oldest entry
// (counted in overflow(): the capacity was sized too small for the rate).
template <class T>
class TimeWindow {
 public:
  // REQUIRES: capacity > 0, span_us > 0. The only allocation.
  TimeWindow(int capacity, std::int64_t span_us)
      : t_us_(static_cast<std::size_t>(capacity)),
        values_(static_cast<std::size_t>(capacity)),
        span_us_(span_us) {
    assert(capacity > 0 && span_us > 0);
  }

  // Entries must arrive in non-decreasing time; an older one is refused (returns false).
  bool push(std::int64_t t_us, const T& value) {
    if (size_ > 0 && t_us < t_us_at(size_ - 1)) return false;
    evict_before(t_us - span_us_);
    if (size_ == capacity()) {
      pop_front();
      ++overflow_;
    }
    const std::size_t slot = index(size_);
    t_us_[slot] = t_us;
    values_[slot] = value;
    ++size_;
    return true;
  }

  // Drops entries whose time is <= cut_t_us (runner time moved on without a push).
  void evict_before(std::int64_t cut_t_us) {
    while (size_ > 0 && t_us_at(0) <= cut_t_us) pop_front();
  }

  void clear() {
    head_ = 0;
    size_ = 0;
  }
  int size() const { return size_; }
  int capacity() const { return static_cast<int>(values_.size()); }
  bool empty() const { return size_ == 0; }
  std::int64_t span_us() const { return span_us_; }
  // A new span (a reload): entries older than it leave at the next push or evict_before().
  // REQUIRES: span_us > 0.
  void set_span_us(std::int64_t span_us) {
    assert(span_us > 0);
    span_us_ = span_us;
  }
  std::uint64_t overflow() const { return overflow_; }
  // i = 0 is the oldest entry. REQUIRES: 0 <= i < size().
  const T& value_at(int i) const { return values_[index(i)]; }
  std::int64_t t_us_at(int i) const { return t_us_[index(i)]; }

 private:
  std::size_t index(int i) const {
    assert(i >= 0 && i <= capacity());
    return (head_ + static_cast<std::size_t>(i)) % values_.size();
  }
  void pop_front() {
    head_ = (head_ + 1) % values_.size();
    --size_;
  }

  std::vector<std::int64_t> t_us_;
  std::vector<T> values_;
  std::int64_t span_us_;
  std::size_t head_ = 0;
  int size_ = 0;
  std::uint64_t overflow_ = 0;
};

// A scalar rolling window over runner time with mean and median (MODEL.md §6: rolling 2-min).
class RollingWindow {
 public:
  // REQUIRES: capacity > 0, span_s > 0. Allocates the ring and the median scratch once.
  RollingWindow(int capacity, double span_s)
      : window_(capacity, std::llround(span_s * 1e6)),
        scratch_(static_cast<std::size_t>(capacity)) {}

  // NaN values are ignored; returns false for them and for out-of-order times.
  bool push(std::int64_t t_us, double value) {
    if (std::isnan(value)) return false;
    return window_.push(t_us, value);
  }
  void evict_before(std::int64_t cut_t_us) { window_.evict_before(cut_t_us); }
  void clear() { window_.clear(); }

  int size() const { return window_.size(); }
  std::uint64_t overflow() const { return window_.overflow(); }
  // NaN when empty. The sum is recomputed each call (no running-sum drift over hours).
  double mean() const {
    const int n = window_.size();
    if (n == 0) return std::numeric_limits<double>::quiet_NaN();
    double sum = 0.0;
    for (int i = 0; i < n; ++i) sum += window_.value_at(i);
    return sum / n;
  }
  // NaN when empty. Uses the preallocated scratch buffer, hence non-const.
  double median() {
    const int n = window_.size();
    for (int i = 0; i < n; ++i) scratch_[static_cast<std::size_t>(i)] = window_.value_at(i);
    return median_in_place(std::span<double>(scratch_.data(), static_cast<std::size_t>(n)));
  }

 private:
  TimeWindow<double> window_;
  std::vector<double> scratch_;
};

// Up to `capacity` values and their median: the runner baseline of MODEL.md §6 (median of
// minutes 3-8). Values beyond capacity are refused and counted, never wrapped, so the baseline
// covers the start of its window rather than silently its end.
class MedianBuffer {
 public:
  // REQUIRES: capacity > 0. The only allocation.
  explicit MedianBuffer(int capacity)
      : values_(static_cast<std::size_t>(capacity)), scratch_(static_cast<std::size_t>(capacity)) {
    assert(capacity > 0);
  }

  // Returns false for NaN and when full (counted in refused()).
  bool add(double value) {
    if (std::isnan(value)) return false;
    if (size_ == capacity()) {
      ++refused_;
      return false;
    }
    values_[static_cast<std::size_t>(size_++)] = value;
    return true;
  }
  // NaN when empty.
  double median() {
    std::copy_n(values_.begin(), size_, scratch_.begin());
    return median_in_place(std::span<double>(scratch_.data(), static_cast<std::size_t>(size_)));
  }
  void clear() {
    size_ = 0;
    refused_ = 0;
  }
  int size() const { return size_; }
  int capacity() const { return static_cast<int>(values_.size()); }
  std::uint64_t refused() const { return refused_; }

 private:
  std::vector<double> values_;
  std::vector<double> scratch_;
  int size_ = 0;
  std::uint64_t refused_ = 0;
};

// Exponentially weighted moving average, y ← y + α(x − y), seeded by the first value.
// Per-update α (fixed count of steps) or α from a time constant: α = 1 − exp(−Δt/τ).
class Ewma {
 public:
  // REQUIRES: 0 < alpha <= 1.
  explicit Ewma(double alpha) : alpha_(alpha) { assert(alpha > 0.0 && alpha <= 1.0); }

  // α whose weights have the same centre of mass as an n-value simple mean: 2/(n+1).
  static double alpha_for_span(double n) { return 2.0 / (n + 1.0); }
  static double alpha_for_time_constant(double dt_s, double tau_s) {
    return 1.0 - std::exp(-dt_s / tau_s);
  }

  // NaN inputs are ignored. Returns the updated value.
  double update(double x) { return update(x, alpha_); }
  // One update with an explicit α (irregular steps: α_for_time_constant(Δt, τ)).
  double update(double x, double alpha) {
    if (std::isnan(x)) return value_;
    value_ = std::isnan(value_) ? x : value_ + alpha * (x - value_);
    ++count_;
    return value_;
  }
  double value() const { return value_; }  // NaN before the first update
  std::uint64_t count() const { return count_; }
  void reset() {
    value_ = std::numeric_limits<double>::quiet_NaN();
    count_ = 0;
  }

 private:
  double alpha_;
  double value_ = std::numeric_limits<double>::quiet_NaN();
  std::uint64_t count_ = 0;
};

}  // namespace kneeload::fusion
