// Fixed-capacity statistics for per-step metrics: a time window (MODEL.md §6: rolling 2-min
// values), a median buffer, a streaming median in constant memory (the runner baseline,
// MODEL.md §6/§9: median of minutes 3-8), half-precision storage for windows of many metrics,
// and an EWMA (MODEL.md §9 R1: σ_peak EWMA).
//
// Thread ownership: one owner thread, no locking. Memory: every buffer is sized at construction
// and never grows, so push/add/median/mean never allocate (the risk-rule allocation test counts
// them). NaN inputs are ignored everywhere, so a metric the session could not compute for one
// step does not poison its window. Results are deterministic: the same pushes give the same
// bits.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
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

// ---- Half precision (IEEE 754 binary16) --------------------------------------------------------
//
// Per-step metrics kept for a median need no more than 11 significant bits: a half rounds to
// within 2^-11 (0.05 %) of the value, far below the step-to-step spread and the changes the
// rules look for (MODEL.md §9: 2-20 %). A window of 14 metrics then costs 28 bytes per step
// instead of 112. Rounding is monotone, so the median of the halves is the median rounded (for
// an odd count; for an even one, the mean of the two rounded middles).

inline constexpr double kHalfMax = 65504.0;  // largest finite half

// Round to nearest, ties to even. NaN stays NaN (the "unknown" of every metric); finite values
// beyond ±kHalfMax saturate to it rather than become infinite (a saturated value still sorts on
// the right side of a median); ±infinity stays infinite.
inline std::uint16_t half_from_double(double value) {
  if (std::isfinite(value)) value = std::clamp(value, -kHalfMax, kHalfMax);
  const auto x_all = std::bit_cast<std::uint32_t>(static_cast<float>(value));
  const std::uint32_t sign = (x_all >> 16) & 0x8000u;
  const std::uint32_t x = x_all & 0x7fffffffu;
  if (x > 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7e00u);  // NaN
  if (x >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // rounds to ∞
  std::uint32_t h = 0;
  std::uint32_t rem = 0;
  std::uint32_t halfway = 0;
  if (x >= 0x38800000u) {  // a normal half: re-bias the exponent (127 → 15), keep 10 bits
    h = (x - 0x38000000u) >> 13;
    rem = x & 0x1fffu;
    halfway = 0x1000u;
  } else if (x >= 0x33000000u) {  // a subnormal half, m·2^-24: shift the 24-bit significand
    const std::uint32_t shift = 126u - (x >> 23);  // 14..24
    const std::uint32_t m = (x & 0x7fffffu) | 0x800000u;
    h = m >> shift;
    rem = m & ((1u << shift) - 1u);
    halfway = 1u << (shift - 1u);
  } else {
    return static_cast<std::uint16_t>(sign);  // below 2^-25: rounds to zero
  }
  if (rem > halfway || (rem == halfway && (h & 1u) != 0)) ++h;  // a carry moves the exponent
  return static_cast<std::uint16_t>(sign | h);
}

inline double double_from_half(std::uint16_t h) {
  const std::uint32_t sign = (static_cast<std::uint32_t>(h) & 0x8000u) << 16;
  const std::uint32_t e = (h >> 10) & 0x1fu;
  const std::uint32_t m = h & 0x3ffu;
  if (e == 0) {  // zero or subnormal: m·2^-24, exact in a double
    const double v = std::ldexp(static_cast<double>(m), -24);
    return sign != 0 ? -v : v;
  }
  const std::uint32_t bits = e == 31 ? (sign | 0x7f800000u | (m << 13))
                                     : (sign | ((e + 112u) << 23) | (m << 13));
  return static_cast<double>(std::bit_cast<float>(bits));
}

inline bool half_is_nan(std::uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }

// A half's bits mapped so that unsigned integer order is numeric order (negatives flipped,
// positives above them; -0 sorts just below +0), and back. REQUIRES: not NaN.
inline std::uint16_t half_order_key(std::uint16_t h) {
  return static_cast<std::uint16_t>((h & 0x8000u) != 0 ? ~h : (h | 0x8000u));
}
inline std::uint16_t half_from_order_key(std::uint16_t k) {
  return static_cast<std::uint16_t>((k & 0x8000u) != 0 ? (k & 0x7fffu) : ~k);
}

// The median of `n` order keys sorted ascending: the middle one, or the mean of the two middle
// ones (lower + upper, in that order) for an even count; NaN when empty.
inline double median_of_sorted_keys(const std::uint16_t* keys, std::size_t n) {
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  const std::size_t mid = n / 2;
  const double upper = double_from_half(half_from_order_key(keys[mid]));
  if (n % 2 == 1) return upper;
  const double lower = double_from_half(half_from_order_key(keys[mid - 1]));
  return 0.5 * (lower + upper);
}

// Sorted multisets of halves, `rows` of them with room for `capacity` each, kept as order keys
// so that a median is read off (median_of_sorted_keys) instead of selected. A rolling window
// changes by one value in and about one out per step, so keeping it sorted costs a binary search
// and a move of at most `capacity` 16-bit keys per change, against a selection over the whole
// window for every median read. Allocates once, in the constructor. Thread ownership: one thread.
class SortedHalves {
 public:
  // REQUIRES: rows > 0, capacity > 0.
  SortedHalves(int rows, int capacity)
      : capacity_(static_cast<std::size_t>(capacity)),
        keys_(static_cast<std::size_t>(rows) * static_cast<std::size_t>(capacity)),
        size_(static_cast<std::size_t>(rows), 0) {
    assert(rows > 0 && capacity > 0);
  }
  // REQUIRES: row in range, the row not full, h not NaN.
  void insert(int row, std::uint16_t h) {
    std::uint16_t* begin = row_begin(row);
    std::size_t& n = size_[static_cast<std::size_t>(row)];
    assert(n < capacity_);
    const std::uint16_t k = half_order_key(h);
    std::uint16_t* at = std::upper_bound(begin, begin + n, k);
    std::copy_backward(at, begin + n, begin + n + 1);
    *at = k;
    ++n;
  }
  // REQUIRES: h was inserted into row and not erased since.
  void erase(int row, std::uint16_t h) {
    std::uint16_t* begin = row_begin(row);
    std::size_t& n = size_[static_cast<std::size_t>(row)];
    const std::uint16_t k = half_order_key(h);
    std::uint16_t* at = std::lower_bound(begin, begin + n, k);
    assert(at != begin + n && *at == k);
    std::copy(at + 1, begin + n, at);
    --n;
  }
  void clear() { std::fill(size_.begin(), size_.end(), 0); }
  double median(int row) const {
    return median_of_sorted_keys(keys_.data() + static_cast<std::size_t>(row) * capacity_,
                                 size_[static_cast<std::size_t>(row)]);
  }
  int size(int row) const { return static_cast<int>(size_[static_cast<std::size_t>(row)]); }

 private:
  std::uint16_t* row_begin(int row) { return keys_.data() + static_cast<std::size_t>(row) * capacity_; }
  std::size_t capacity_;
  std::vector<std::uint16_t> keys_;
  std::vector<std::size_t> size_;
};

// ---- Medians in constant memory -----------------------------------------------------------------

// The median of a stream in constant memory: the P² algorithm (Jain & Chlamtac 1985, CACM
// 28(10):1076) keeps five markers (minimum, the 25/50/75 % quantile estimates, maximum) and
// moves the inner ones along a piecewise-parabolic fit as values arrive. Exact for up to five
// values; beyond, an estimate of a continuous quantity whose error tests/fusion/stats_test.cpp
// measures against the exact median (a few hundredths of the interquartile range for a few
// hundred values). Used where an exact median would need every value kept: the runner baseline
// of MODEL.md §6 (minutes 3-8: up to 600 steps per side, 14 metrics each). Not for a quantity
// that steps between a few levels (P² then lands between them): SetPointMedian.
// Deterministic: the same values in the same order give the same bits. 64 bytes; add() and
// median() never allocate.
class StreamingMedian {
 public:
  void clear() { count_ = 0; }
  // NaN is ignored (returns false), as everywhere in this file.
  bool add(double x) {
    if (std::isnan(x)) return false;
    if (count_ < 5) {
      // Insertion keeps the first five sorted: they are the initial markers.
      int i = count_++;
      while (i > 0 && q_[static_cast<std::size_t>(i - 1)] > x) {
        q_[static_cast<std::size_t>(i)] = q_[static_cast<std::size_t>(i - 1)];
        --i;
      }
      q_[static_cast<std::size_t>(i)] = x;
      if (count_ == 5) n_ = {0, 1, 2, 3, 4};
      return true;
    }
    // 1. The cell k the value falls in; the extreme markers follow new extremes.
    int k = 0;
    if (x < q_[0]) {
      q_[0] = x;
    } else if (x >= q_[4]) {
      q_[4] = x;
      k = 3;
    } else {
      while (k < 3 && x >= q_[static_cast<std::size_t>(k + 1)]) ++k;
    }
    // 2. Markers above that cell move up one position.
    for (std::size_t i = static_cast<std::size_t>(k) + 1; i < 5; ++i) ++n_[i];
    ++count_;
    // 3. Each inner marker more than one position off its desired position (0-based
    //    (count−1)·p for p = 1/4, 1/2, 3/4) moves one step towards it: parabolic height, or
    //    linear when the parabola would leave the neighbours' interval.
    for (std::size_t i = 1; i < 4; ++i) {
      const double desired = static_cast<double>(count_ - 1) * static_cast<double>(i) / 4.0;
      const double d = desired - static_cast<double>(n_[i]);
      if ((d >= 1.0 && n_[i + 1] - n_[i] > 1) || (d <= -1.0 && n_[i - 1] - n_[i] < -1)) {
        const int s = d > 0.0 ? 1 : -1;
        const double qp = parabolic(i, s);
        q_[i] = (q_[i - 1] < qp && qp < q_[i + 1]) ? qp : linear(i, s);
        n_[i] += s;
      }
    }
    return true;
  }
  // NaN when empty; exact for up to five values (the mean of the middle two for four, two).
  double median() const {
    if (count_ == 0) return std::numeric_limits<double>::quiet_NaN();
    if (count_ >= 5) return q_[2];
    const auto mid = static_cast<std::size_t>(count_ / 2);
    return count_ % 2 == 1 ? q_[mid] : 0.5 * (q_[mid - 1] + q_[mid]);
  }
  int size() const { return count_; }

 private:
  double parabolic(std::size_t i, int s) const {
    const double d = s;
    const double n0 = n_[i - 1], n1 = n_[i], n2 = n_[i + 1];
    return q_[i] + d / (n2 - n0) *
                       ((n1 - n0 + d) * (q_[i + 1] - q_[i]) / (n2 - n1) +
                        (n2 - n1 - d) * (q_[i] - q_[i - 1]) / (n1 - n0));
  }
  double linear(std::size_t i, int s) const {
    const auto j = static_cast<std::size_t>(static_cast<int>(i) + s);
    return q_[i] + s * (q_[j] - q_[i]) / static_cast<double>(n_[j] - n_[i]);
  }

  std::array<double, 5> q_{};  // marker heights
  std::array<int, 5> n_{};     // marker positions, 0-based
  int count_ = 0;
};

// The median of a quantity that holds a few set-points, such as a treadmill's belt speed and
// incline over minutes 3-8 (MODEL.md §6), in constant memory: the distinct values and their
// counts, sorted. Exact (the mean of the two middle values for an even count) while there are
// at most kValues distinct values; one more merges the two closest into their count-weighted
// mean, so a quantity that varies continuously gets a median within the spacing of its merged
// values. 160 bytes; add() and median() never allocate.
class SetPointMedian {
 public:
  static constexpr int kValues = 8;

  void clear() { size_ = 0; }
  // NaN is ignored (returns false).
  bool add(double x) {
    if (std::isnan(x)) return false;
    int i = 0;
    while (i < size_ && values_[static_cast<std::size_t>(i)] < x) ++i;
    if (i < size_ && values_[static_cast<std::size_t>(i)] == x) {
      ++counts_[static_cast<std::size_t>(i)];
      return true;
    }
    for (int k = size_; k > i; --k) {
      values_[static_cast<std::size_t>(k)] = values_[static_cast<std::size_t>(k - 1)];
      counts_[static_cast<std::size_t>(k)] = counts_[static_cast<std::size_t>(k - 1)];
    }
    values_[static_cast<std::size_t>(i)] = x;
    counts_[static_cast<std::size_t>(i)] = 1;
    if (++size_ > kValues) merge_closest();
    return true;
  }
  // NaN when empty.
  double median() const {
    std::uint64_t total = 0;
    for (int k = 0; k < size_; ++k) total += counts_[static_cast<std::size_t>(k)];
    if (total == 0) return std::numeric_limits<double>::quiet_NaN();
    return 0.5 * (value_at_rank((total - 1) / 2) + value_at_rank(total / 2));
  }
  int distinct() const { return size_; }

 private:
  double value_at_rank(std::uint64_t rank) const {
    std::uint64_t seen = 0;
    int k = 0;
    while (k + 1 < size_ && seen + counts_[static_cast<std::size_t>(k)] <= rank) {
      seen += counts_[static_cast<std::size_t>(k++)];
    }
    return values_[static_cast<std::size_t>(k)];
  }
  void merge_closest() {
    int best = 0;
    for (int k = 1; k + 1 < size_; ++k) {
      const auto ks = static_cast<std::size_t>(k);
      const auto bs = static_cast<std::size_t>(best);
      if (values_[ks + 1] - values_[ks] < values_[bs + 1] - values_[bs]) best = k;
    }
    const auto b = static_cast<std::size_t>(best);
    const double wa = static_cast<double>(counts_[b]);
    const double wb = static_cast<double>(counts_[b + 1]);
    values_[b] = (wa * values_[b] + wb * values_[b + 1]) / (wa + wb);
    counts_[b] += counts_[b + 1];
    for (int k = best + 1; k + 1 < size_; ++k) {
      values_[static_cast<std::size_t>(k)] = values_[static_cast<std::size_t>(k + 1)];
      counts_[static_cast<std::size_t>(k)] = counts_[static_cast<std::size_t>(k + 1)];
    }
    --size_;
  }

  std::array<double, kValues + 1> values_{};  // one spare slot: insert, then merge
  std::array<std::uint32_t, kValues + 1> counts_{};
  int size_ = 0;
};

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
