// Time alignment: ClockAligner, ReorderBuffer, RunnerClock (see time_align.hpp for contracts).
//
// Why the aligner is a lower envelope:
// - For every sample, y = arrival - device = offset(device time) + delay, with delay >= 0 and
//   jittered. Averaging y (least squares, a Kalman filter on y) estimates offset + mean delay and
//   is pulled by every slow frame; the smallest delays are the best offset evidence, and the set
//   of points {(t, y)} lies on or above the line offset(t) + min delay. So the offset is the
//   line under all points that hugs them most closely: the linear program of Moon, Skelly and
//   Towsley (1999, "Estimation and removal of clock skew from network delay measurements"):
//   minimise sum(y_i - line(t_i)) subject to line(t_i) <= y_i. Its optimum is the edge of the
//   lower convex hull of the points that lies above their mean time, so it is found exactly, with
//   no iteration, in O(n) on time-ordered points.
// - Points are bucket minima, not raw samples: the lowest y per bucket_us of device time, kept
//   in a fixed ring. That bounds memory and work (<= bucket_count points per refit) whatever the
//   rate, and loses little: within one bucket the envelope moves by at most drift * bucket_us
//   (0.2 ms at 100 ppm over 2 s), so the other points of a bucket add almost nothing to the hull.
// - Batches: samples of one frame share one arrival time, so an early sample of a frame shows
//   y = delay + (time until the frame's last sample), up to ~90 ms above the envelope. Only the
//   frame's last sample carries a tight bound. Feeding all of them into the minimum would give
//   the same envelope (the min picks the last one), but jump detection must judge the frame as a
//   whole: we keep each frame's tightest point (largest device time) and judge it when the frame
//   closes, i.e. when a sample with another arrival time comes.
// - Drift: the hull slope is only trusted once the evidence spans lock_span_us; before that a
//   short span turns envelope noise into a large slope error (0.3 ms over 2 s is 150 ppm), so a
//   prior slope is used: 0 for a new clock, the last estimate after a jump (a step changes the
//   offset of an oscillator, not its rate). Given the slope, the offset is the support line: the
//   lowest point after removing the slope. Once the fit spans twice lock_span_us its slope may
//   only slew at max_drift_slew_ppm_per_s: real drift changes slowly, while a step too small to
//   detect bends the hull at once.
// - Aligned time is clamped to arrival - min_latency: a sample cannot have been taken after it
//   was received. It costs nothing in steady state (the envelope is below the points by
//   construction) and bounds the damage while a forward jump is still being confirmed.
//
// Why jumps are detected the way they are:
// - A step of the device clock shifts all later y by the step. A frame whose tightest point lies
//   more than jump_threshold_us off the line, either way, becomes a candidate instead of
//   evidence. The step is confirmed when jump_confirm_frames consecutive candidates lie on the
//   same side, agree with each other within the threshold, and span jump_confirm_us of arrival
//   time. Agreement and span are what tell a step from a radio stall: frames held back and
//   delivered in a burst arrive within milliseconds with residuals falling frame by frame.
// - On confirmation the evidence ring restarts from the candidates; the magnitude reported is
//   the lowest candidate residual, i.e. the new envelope against the old line.
// - Steps below the threshold (resyncs of a few ms) are shifts, judged on bucket minima, where
//   latency jitter has mostly been filtered out. Left alone, a step back would leave the old,
//   lower points holding the envelope for the whole ring (aligned times late by the step for
//   ~2 min), and a step ahead, though the support line follows it at once, would put a steep
//   edge into the hull that bends the drift fit by hundreds of ppm once it reaches the mean
//   time. So a lift of shift_buckets consecutive bucket minima, or a lowering that holds that
//   long, drops the evidence from before it and keeps the drift as the prior. The same rule
//   heals a single low outlier: the buckets after it all read as lifted. Shifts are counted,
//   not reported: the caller's fault events are for jumps.
// - Before the first lock a confirmed step is a restart, not a reported jump: the "old" offset
//   may have come from one stale frame flushed at connection, and nothing downstream was locked
//   to it.
//
// Why the reorder buffer looks the way it does:
// - A binary min-heap of small keys over a fixed pool of samples: O(log n) per sample, no
//   allocation, and the key (aligned time, slot, device sequence, push order) is unique, so the
//   release order is total and does not depend on heap layout.
// - Over capacity the oldest sample is released early (counted) rather than refusing newer data:
//   the oldest is the one the watermark would release next anyway, so this only shortens its
//   window; refusing the newest would silently cut the live edge of the stream. The pool keeps
//   one spare slot so the push that crosses capacity always fits; the next pop releases early.
#include "kneeload/fusion/time_align.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <type_traits>
#include <utility>
#include <variant>

namespace kneeload::fusion {
namespace {

constexpr std::int64_t kMinT = std::numeric_limits<std::int64_t>::min();

// a - b for b >= 0, saturating at INT64_MIN (the watermark starts there).
std::int64_t saturating_sub(std::int64_t a, std::int64_t b) {
  return a < kMinT + b ? kMinT : a - b;
}

}  // namespace

const char* invalid_reason(const AlignerParams& p) {
  if (p.bucket_us <= 0) return "bucket_us must be > 0";
  if (p.bucket_count < 2 || p.bucket_count > AlignerParams::kMaxBuckets) return "bucket_count must be in [2, 65535]";
  if (p.lock_span_us < 0) return "lock_span_us must be >= 0";
  if (p.relock_span_us < 0) return "relock_span_us must be >= 0";
  if (p.jump_threshold_us <= 0) return "jump_threshold_us must be > 0";
  if (p.jump_confirm_frames < 1) return "jump_confirm_frames must be >= 1";
  if (p.jump_confirm_us < 0) return "jump_confirm_us must be >= 0";
  if (p.shift_threshold_us <= 0 || p.shift_threshold_us >= p.jump_threshold_us) {
    return "shift_threshold_us must be > 0 and < jump_threshold_us";
  }
  if (p.shift_buckets < 1) return "shift_buckets must be >= 1";
  if (p.min_latency_us < 0) return "min_latency_us must be >= 0";
  if (!(p.max_drift_ppm > 0.0 && p.max_drift_ppm <= 100'000.0)) {
    return "max_drift_ppm must be in (0, 100000]";
  }
  if (!(p.max_drift_slew_ppm_per_s > 0.0)) return "max_drift_slew_ppm_per_s must be > 0";
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// ClockAligner

ClockAligner::ClockAligner(const AlignerParams& params) : params_(params) {
  assert(invalid_reason(params) == nullptr);
  const auto buckets = static_cast<std::size_t>(std::max(params_.bucket_count, 2));
  buckets_.resize(buckets);
  hull_.reserve(buckets);
  cand_.resize(static_cast<std::size_t>(std::max(params_.jump_confirm_frames, 1)));
}

void ClockAligner::set_params(const AlignerParams& params) {
  assert(invalid_reason(params) == nullptr);
  const AlignerParams old = params_;
  params_ = params;
  params_.bucket_us = old.bucket_us;
  params_.bucket_count = old.bucket_count;
  if (params.jump_confirm_frames != old.jump_confirm_frames) {
    cand_.assign(static_cast<std::size_t>(std::max(params.jump_confirm_frames, 1)), Point{});
    clear_candidates();
  }
}

void ClockAligner::reset() {
  state_ = ClockState::kNoData;
  frame_open_ = false;
  latest_device_t_us_ = 0;
  clear_regime();
  prior_slope_ = 0.0;
  held_slope_ = 0.0;
  ever_locked_ = false;
  clear_candidates();
}

void ClockAligner::clear_regime() {
  bucket_head_ = 0;
  bucket_size_ = 0;
  bucket_origin_us_ = 0;
  bucket_id_ = 0;
  regime_t0_us_ = 0;
  last_frame_t_us_ = 0;
  bucket_min_r_us_ = 0;
  lifted_buckets_ = 0;
  lowered_ = false;
  lowered_t_us_ = 0;
  lowered_buckets_ = 0;
  has_line_ = false;
  fitted_ = false;
  hull_dirty_ = true;
}

void ClockAligner::clear_candidates() {
  cand_head_ = 0;
  cand_size_ = 0;
  cand_count_ = 0;
  cand_sign_ = 0;
}

ClockAligner::Line ClockAligner::current_line() const {
  if (has_line_) return line_;
  // Only the first frame of a regime is open: its tightest point so far, with the prior slope.
  return Line{frame_best_, prior_slope_};
}

std::int64_t ClockAligner::eval(const Line& line, std::int64_t t_us) {
  return line.anchor.y_us + std::llround(line.slope * static_cast<double>(t_us - line.anchor.t_us));
}

ClockAligner::Observation ClockAligner::observe(std::int64_t device_t_us,
                                                std::int64_t arrival_t_us) {
  Observation obs{};
  if (frame_open_ && arrival_t_us != frame_arrival_us_) close_frame(obs);
  const Point p{device_t_us, arrival_t_us - device_t_us};
  if (!frame_open_) {
    frame_open_ = true;
    frame_arrival_us_ = arrival_t_us;
    frame_best_ = p;
  } else if (p.y_us < frame_best_.y_us) {
    frame_best_ = p;
  }
  latest_device_t_us_ = device_t_us;
  if (state_ == ClockState::kNoData) state_ = ClockState::kConverging;
  const std::int64_t y = std::min(eval(current_line(), device_t_us), p.y_us);
  obs.aligned_t_us = device_t_us + y - params_.min_latency_us;
  return obs;
}

std::int64_t ClockAligner::aligned_t_us(std::int64_t device_t_us) const {
  assert(state_ != ClockState::kNoData);
  return device_t_us + eval(current_line(), device_t_us) - params_.min_latency_us;
}

double ClockAligner::offset_us() const {
  if (state_ == ClockState::kNoData) return 0.0;
  const Line line = current_line();
  return static_cast<double>(line.anchor.y_us - params_.min_latency_us) +
         line.slope * static_cast<double>(latest_device_t_us_ - line.anchor.t_us);
}

double ClockAligner::drift_ppm() const {
  // daemon = device + y(device), so d(device)/d(daemon) = 1 / (1 + slope).
  const double s = has_line_ ? line_.slope : prior_slope_;
  return -s / (1.0 + s) * 1e6;
}

void ClockAligner::close_frame(Observation& obs) {
  frame_open_ = false;
  ++counters_.frames;
  const Point p = frame_best_;
  if (!has_line_) {
    accept(p);
    return;
  }
  const std::int64_t r = p.y_us - eval(line_, p.t_us);
  const std::int64_t threshold = params_.jump_threshold_us;
  if (r <= threshold && r >= -threshold) {
    if (cand_count_ > 0) {
      ++counters_.transients;
      clear_candidates();
    }
    accept(p);
    return;
  }

  const int sign = r > 0 ? 1 : -1;
  if (cand_count_ > 0 && (sign != cand_sign_ ||
                          std::max(cand_max_r_us_, r) - std::min(cand_min_r_us_, r) > threshold)) {
    // Not the same step as the run so far: that run was transient; this frame may start a new one.
    ++counters_.transients;
    clear_candidates();
  }
  if (cand_count_ == 0) {
    cand_sign_ = sign;
    cand_min_r_us_ = r;
    cand_max_r_us_ = r;
    cand_first_arrival_us_ = frame_arrival_us_;
    cand_first_ = p;
  } else {
    cand_min_r_us_ = std::min(cand_min_r_us_, r);
    cand_max_r_us_ = std::max(cand_max_r_us_, r);
  }
  const int cap = static_cast<int>(cand_.size());
  if (cand_size_ < cap) {
    cand_[static_cast<std::size_t>((cand_head_ + cand_size_) % cap)] = p;
    ++cand_size_;
  } else {
    cand_[static_cast<std::size_t>(cand_head_)] = p;
    cand_head_ = (cand_head_ + 1) % cap;
  }
  ++cand_count_;
  if (cand_count_ < params_.jump_confirm_frames ||
      frame_arrival_us_ - cand_first_arrival_us_ < params_.jump_confirm_us) {
    return;
  }

  if (ever_locked_) {
    ++counters_.jumps;
    obs.jumped = true;
    obs.jump = ClockJump{-cand_min_r_us_, cand_first_.t_us, cand_first_arrival_us_};
  } else {
    ++counters_.restarts;
  }
  prior_slope_ = line_.slope;
  clear_regime();
  for (int i = 0; i < cand_size_; ++i) {
    accept(cand_[static_cast<std::size_t>((cand_head_ + i) % cap)]);
  }
  clear_candidates();
}

void ClockAligner::accept(const Point& p) {
  const int cap = static_cast<int>(buckets_.size());
  if (bucket_size_ == 0) {
    bucket_origin_us_ = p.t_us;
    regime_t0_us_ = p.t_us;
    bucket_id_ = 0;
    bucket_head_ = 0;
    buckets_[0] = p;
    bucket_size_ = 1;
    hull_dirty_ = true;
    last_frame_t_us_ = p.t_us;
    bucket_min_r_us_ = 0;
    refit();
    ref_line_ = line_;
    return;
  }
  if (p.t_us <= last_frame_t_us_) {
    // Device time did not advance: the bucket ring must stay time-ordered for the hull.
    ++counters_.non_monotonic;
    return;
  }
  last_frame_t_us_ = p.t_us;
  const bool judge = state_ == ClockState::kLocked;
  const bool was_pending = shift_pending();
  const std::int64_t id = (p.t_us - bucket_origin_us_) / params_.bucket_us;
  if (id != bucket_id_) {
    lifted_buckets_ =
        judge && bucket_min_r_us_ > params_.shift_threshold_us ? lifted_buckets_ + 1 : 0;
    if (lowered_) ++lowered_buckets_;
    ref_line_ = line_;
  }
  // Against the line as it stood when the bucket opened, so that a step ahead seen as several
  // partial lowerings (each frame's excess delay hides part of it) still adds up.
  const std::int64_t residual_us = p.y_us - eval(ref_line_, p.t_us);
  if (id == bucket_id_) {
    Point& newest = buckets_[static_cast<std::size_t>((bucket_head_ + bucket_size_ - 1) % cap)];
    if (p.y_us < newest.y_us) {
      newest = p;
      hull_dirty_ = true;
    }
    bucket_min_r_us_ = std::min(bucket_min_r_us_, residual_us);
  } else {
    bucket_id_ = id;
    bucket_min_r_us_ = residual_us;
    if (bucket_size_ < cap) {
      buckets_[static_cast<std::size_t>((bucket_head_ + bucket_size_) % cap)] = p;
      ++bucket_size_;
    } else {
      buckets_[static_cast<std::size_t>(bucket_head_)] = p;
      bucket_head_ = (bucket_head_ + 1) % cap;
    }
    hull_dirty_ = true;
  }

  // Shifts are judged only when locked: before the first lock the slope is assumed (0 ppm) and a
  // real drift would read as a steady lift; right after a jump the new floor is still being found.
  if (judge) {
    if (residual_us < -params_.shift_threshold_us) {
      lowered_ = true;
      lowered_t_us_ = p.t_us;
      lowered_buckets_ = 0;
    }
    // While a shift is pending its evidence is already in the ring and may bend the hull, so the
    // slope from before it is held (refit) and becomes the prior if the shift is confirmed.
    if (!was_pending && shift_pending()) held_slope_ = line_.slope;
    if (lifted_buckets_ >= params_.shift_buckets) {
      // Shift back (or a low outlier now left behind): keep the lifted buckets and the one filling.
      keep_newest_buckets(lifted_buckets_ + 1);
    } else if (lowered_ && lowered_buckets_ >= params_.shift_buckets && lifted_buckets_ == 0) {
      // Shift ahead that held (the buckets since sit on the new level, none above it): the
      // evidence from before it would bend the drift fit.
      int n = 0;
      while (n < bucket_size_ &&
             buckets_[static_cast<std::size_t>((bucket_head_ + bucket_size_ - 1 - n) % cap)].t_us >=
                 lowered_t_us_) {
        ++n;
      }
      keep_newest_buckets(n);
    }
  }
  refit();
}

void ClockAligner::keep_newest_buckets(int n) {
  const int cap = static_cast<int>(buckets_.size());
  n = std::clamp(n, 1, bucket_size_);
  if (n < bucket_size_) {
    ++counters_.shifts;
    bucket_head_ = (bucket_head_ + bucket_size_ - n) % cap;
    bucket_size_ = n;
    hull_dirty_ = true;
    regime_t0_us_ = buckets_[static_cast<std::size_t>(bucket_head_)].t_us;
    prior_slope_ = held_slope_;
    fitted_ = false;
  }
  bucket_min_r_us_ = 0;
  lifted_buckets_ = 0;
  lowered_ = false;
  lowered_buckets_ = 0;
}

// The slope of the lower hull's edge over the mean bucket time (refit), into hull_slope_;
// hull_found_ false when there is no such edge (then the prior stands).
void ClockAligner::fit_hull() {
  auto at = [this](int i) -> const Point& { return bucket_at(i); };
  // Lower hull by Andrew's monotone chain (points are strictly increasing in t), in
  // coordinates relative to the oldest point so the products stay exact in double.
  const Point base = at(0);
  auto rel_t = [&](const Point& q) { return static_cast<double>(q.t_us - base.t_us); };
  auto rel_y = [&](const Point& q) { return static_cast<double>(q.y_us - base.y_us); };
  hull_.clear();
  double mean_t = 0.0;
  for (int i = 0; i < bucket_size_; ++i) {
    const Point& q = at(i);
    mean_t += rel_t(q);
    while (hull_.size() >= 2) {
      const Point& o = at(hull_[hull_.size() - 2]);
      const Point& a = at(hull_.back());
      const double cross = (rel_t(a) - rel_t(o)) * (rel_y(q) - rel_y(o)) -
                           (rel_y(a) - rel_y(o)) * (rel_t(q) - rel_t(o));
      if (cross > 0.0) break;
      hull_.pop_back();
    }
    hull_.push_back(static_cast<std::uint16_t>(i));
  }
  mean_t /= static_cast<double>(bucket_size_);
  // The LP optimum: the hull edge over the mean time (sum of y - line(t) is minimal when the
  // line is highest at the mean time, and the highest feasible line there is that edge's).
  hull_found_ = false;
  for (std::size_t j = 0; j + 1 < hull_.size(); ++j) {
    const Point& a = at(hull_[j]);
    const Point& b = at(hull_[j + 1]);
    if (rel_t(b) >= mean_t) {
      hull_slope_ = static_cast<double>(b.y_us - a.y_us) / static_cast<double>(b.t_us - a.t_us);
      hull_found_ = true;
      break;
    }
  }
}

void ClockAligner::refit() {
  auto at = [this](int i) -> const Point& { return bucket_at(i); };
  const std::int64_t span = last_frame_t_us_ - regime_t0_us_;
  double slope = prior_slope_;

  if (shift_pending()) {
    slope = held_slope_;
  } else if (span >= params_.lock_span_us && bucket_size_ >= 2) {
    // The hull's slope depends on the bucket points alone, and most frames leave them as they
    // were (a frame only lowers its bucket's minimum now and then), so it is recomputed only
    // after they changed: the same slope from the same points, bit for bit.
    if (hull_dirty_) {
      fit_hull();
      hull_dirty_ = false;
    }
    if (hull_found_) slope = hull_slope_;
    // While the evidence is young the fit improves quickly (its error falls as 1/span) and is
    // taken as is; from twice lock_span_us on it is already within a few ppm, and later changes
    // are slew-limited.
    if (fitted_) {
      const double max_step = params_.max_drift_slew_ppm_per_s * 1e-12 *
                              static_cast<double>(last_frame_t_us_ - fit_t_us_);
      slope = std::clamp(slope, line_.slope - max_step, line_.slope + max_step);
    }
    fitted_ = span >= 2 * params_.lock_span_us;
    fit_t_us_ = last_frame_t_us_;
  }
  const double max_slope = params_.max_drift_ppm * 1e-6;
  slope = std::clamp(slope, -max_slope, max_slope);

  // Support line of that slope: the point lowest once the slope is removed (the later on ties).
  const Point& ref = at(bucket_size_ - 1);
  int best = 0;
  double best_v = 0.0;
  for (int i = 0; i < bucket_size_; ++i) {
    const Point& q = at(i);
    const double v = static_cast<double>(q.y_us - ref.y_us) -
                     slope * static_cast<double>(q.t_us - ref.t_us);
    if (i == 0 || v <= best_v) {
      best = i;
      best_v = v;
    }
  }
  line_ = Line{at(best), slope};
  has_line_ = true;

  if (span >= params_.lock_span_us || (ever_locked_ && span >= params_.relock_span_us)) {
    state_ = ClockState::kLocked;
    ever_locked_ = true;
  } else {
    state_ = ClockState::kConverging;
  }
}

// ---------------------------------------------------------------------------------------------
// ReorderBuffer

const char* invalid_reason(const ReorderParams& p) {
  if (p.window_us < 0) return "window_us must be >= 0";
  if (p.capacity < 1) return "capacity must be >= 1";
  if (p.capacity > (1u << 24)) return "capacity must be <= 16777216";
  return nullptr;
}

namespace {

// A held sample as its reorder slot keeps it: these fields, then the bytes of the payload
// alternative it carries (an insole: PackedInsole, then its cells in a chunk of 16 or 32).
// Packing and unpacking reproduce every field the Sample had; of an insole's cells past its
// cell_count, those in the chunk come back as they went in and the rest as 0 (nothing reads
// them).
struct PackedHead {
  std::int64_t device_t_us;
  std::int64_t arrival_t_us;
  std::int64_t receive_t_us;
  std::uint32_t device;
  std::uint32_t runner;
  std::uint32_t station;
  std::uint32_t device_seq;
  Side side;
  SensorKind kind;
  std::uint8_t alternative;  // Payload::index()
};
struct PackedInsole {
  Imu6 imu;
  std::uint8_t cell_count;
  bool has_imu;
};
static_assert(std::variant_size_v<Payload> == 6, "pack() and unpack() know every alternative");

constexpr std::size_t kLargestOtherPayload =
    std::max({sizeof(KneeSample), sizeof(TreadmillSample), sizeof(PainReport),
              sizeof(DeviceStatus), sizeof(SessionEnd)});

// Cells are copied in whole chunks of 16 or 32, so each copy has a size the compiler knows
// (a few vector moves) instead of a call with a run-time length: per sample that was 9 % of
// the insole micro-benchmark. An insole of up to 16 cells (Moticon, NURVV) takes one chunk.
constexpr int kCellChunk = 16;
static_assert(kMaxInsoleCells == 2 * kCellChunk);

int chunk_cells(int cells) { return cells <= kCellChunk ? kCellChunk : kMaxInsoleCells; }

int insole_cells_of(const InsoleSample& in) {
  return std::min<int>(in.cell_count, kMaxInsoleCells);  // the decoder's limit; never read past
}

// Copies the cells of a chunk of `cells`: 16 or 32 floats.
void copy_cells(void* dst, const void* src, int cells) {
  if (cells <= kCellChunk) {
    std::memcpy(dst, src, sizeof(float) * kCellChunk);
  } else {
    std::memcpy(dst, src, sizeof(float) * kMaxInsoleCells);
  }
}

// Writes each field straight into the slot. Building a PackedHead on the stack and copying it
// made g++ assemble it with scalar stores and read it back with 16-byte loads, which stall on
// store forwarding (perf annotate of the knee benchmark: most of push()'s time).
template <class T>
void store(unsigned char* dst, std::size_t offset, const T& field) {
  std::memcpy(dst + offset, &field, sizeof field);
}

// REQUIRES: dst has ReorderBuffer::slot_bytes(cells of s) bytes.
void pack(const Sample& s, unsigned char* dst) {
  store(dst, offsetof(PackedHead, device_t_us), s.device_t_us);
  store(dst, offsetof(PackedHead, arrival_t_us), s.arrival_t_us);
  store(dst, offsetof(PackedHead, receive_t_us), s.receive_t_us);
  store(dst, offsetof(PackedHead, device), s.device);
  store(dst, offsetof(PackedHead, runner), s.runner);
  store(dst, offsetof(PackedHead, station), s.station);
  store(dst, offsetof(PackedHead, device_seq), s.device_seq);
  store(dst, offsetof(PackedHead, side), s.side);
  store(dst, offsetof(PackedHead, kind), s.kind);
  store(dst, offsetof(PackedHead, alternative), static_cast<std::uint8_t>(s.payload.index()));
  unsigned char* body = dst + sizeof(PackedHead);
  if (const auto* in = std::get_if<InsoleSample>(&s.payload)) {
    store(body, offsetof(PackedInsole, imu), in->imu);
    store(body, offsetof(PackedInsole, cell_count), in->cell_count);
    store(body, offsetof(PackedInsole, has_imu), in->has_imu);
    copy_cells(body + sizeof(PackedInsole), in->pressure_pa, insole_cells_of(*in));
  } else {
    std::visit([body](const auto& v) { std::memcpy(body, &v, sizeof v); }, s.payload);
  }
}

// Reads each field straight from the slot: copying the header to the stack first and then
// reading the alternative back from it stalled on store forwarding (perf, insole benchmark).
template <class T>
void load(T& field, const unsigned char* src, std::size_t offset) {
  std::memcpy(&field, src + offset, sizeof field);
}

template <std::size_t I>
void unpack_payload(const unsigned char* body, Payload& out) {
  using T = std::variant_alternative_t<I, Payload>;
  // Re-using the alternative already there saves value-initialising it: for an insole that is
  // 156 B that g++ clears with `rep stos`, 17 % of release_top() in the insole benchmark.
  if (out.index() != I) out.emplace<I>();
  T& v = *std::get_if<I>(&out);
  if constexpr (std::is_same_v<T, InsoleSample>) {
    load(v.imu, body, offsetof(PackedInsole, imu));
    load(v.cell_count, body, offsetof(PackedInsole, cell_count));
    load(v.has_imu, body, offsetof(PackedInsole, has_imu));
    const int cells = insole_cells_of(v);
    copy_cells(v.pressure_pa, body + sizeof(PackedInsole), cells);
    if (cells <= kCellChunk) {  // the cells past the chunk were not packed: 0, whatever was there
      std::memset(v.pressure_pa + kCellChunk, 0, sizeof(float) * (kMaxInsoleCells - kCellChunk));
    }
  } else {
    std::memcpy(&v, body, sizeof v);
  }
}

void unpack(const unsigned char* src, Sample& out) {
  load(out.device_t_us, src, offsetof(PackedHead, device_t_us));
  load(out.arrival_t_us, src, offsetof(PackedHead, arrival_t_us));
  load(out.receive_t_us, src, offsetof(PackedHead, receive_t_us));
  load(out.device, src, offsetof(PackedHead, device));
  load(out.runner, src, offsetof(PackedHead, runner));
  load(out.station, src, offsetof(PackedHead, station));
  load(out.device_seq, src, offsetof(PackedHead, device_seq));
  load(out.side, src, offsetof(PackedHead, side));
  load(out.kind, src, offsetof(PackedHead, kind));
  const unsigned char* body = src + sizeof(PackedHead);
  switch (src[offsetof(PackedHead, alternative)]) {
    case 0: unpack_payload<0>(body, out.payload); break;
    case 1: unpack_payload<1>(body, out.payload); break;
    case 2: unpack_payload<2>(body, out.payload); break;
    case 3: unpack_payload<3>(body, out.payload); break;
    case 4: unpack_payload<4>(body, out.payload); break;
    default: unpack_payload<5>(body, out.payload); break;
  }
}

}  // namespace

std::size_t ReorderBuffer::slot_bytes(int insole_cells) {
  const std::size_t insole =
      sizeof(PackedInsole) + sizeof(float) * static_cast<std::size_t>(chunk_cells(insole_cells));
  const std::size_t bytes = sizeof(PackedHead) + std::max(kLargestOtherPayload, insole);
  return (bytes + 7) / 8 * 8;  // keeps every slot 8-byte aligned, as the header's int64s like
}

ReorderBuffer::ReorderBuffer(const ReorderParams& params, int insole_cells) : params_(params) {
  assert(invalid_reason(params) == nullptr);
  assert(insole_cells >= 0 && insole_cells <= kMaxInsoleCells);
  insole_cells_ = chunk_cells(std::clamp(insole_cells, 0, kMaxInsoleCells));
  slot_bytes_ = slot_bytes(insole_cells_);
  slots_ = std::max<std::uint32_t>(params_.capacity, 1) + 1;
  heap_.reserve(slots_);
  pool_.reset(new unsigned char[slots_ * slot_bytes_]);  // default-initialised: not written
  free_.reserve(slots_);
}

void ReorderBuffer::reserve_insole_cells(int cells) {
  // Slots hold whole chunks: 5 to 16 cells fit where 4 did, and need no new pool.
  cells = chunk_cells(std::min(cells, kMaxInsoleCells));
  if (cells <= insole_cells_) return;
  const std::size_t bytes = slot_bytes(cells);
  std::unique_ptr<unsigned char[]> pool(new unsigned char[slots_ * bytes]);
  // A packed sample fits the slot it was written to, so the old slot's bytes carry it whole.
  for (const Key& key : heap_) {
    std::memcpy(pool.get() + key.index * bytes, slot_at(key.index), slot_bytes_);
  }
  pool_ = std::move(pool);
  slot_bytes_ = bytes;
  insole_cells_ = cells;
}

void ReorderBuffer::set_window_us(std::int64_t window_us) {
  assert(window_us >= 0);
  params_.window_us = window_us;
}

bool ReorderBuffer::later(const Key& a, const Key& b) {
  if (a.t_us != b.t_us) return a.t_us > b.t_us;
  if (a.slot != b.slot) return a.slot > b.slot;
  if (a.seq != b.seq) return a.seq > b.seq;
  return static_cast<std::int32_t>(a.order - b.order) > 0;
}

PushResult ReorderBuffer::push(const Sample& sample, std::int64_t aligned_t_us,
                               std::uint8_t slot) {
  assert(slot < kDeviceRoleCount);
  if (aligned_t_us < last_released_t_us_) {
    ++counters_.late[slot];
    return PushResult::kLate;
  }
  const Key key{aligned_t_us, sample.device_seq, static_cast<std::uint32_t>(next_order_++), 0, slot};
  PushResult result = PushResult::kQueued;
  if (size_ == slots_) {
    // Over capacity and not drained since: the oldest of what is held and this one goes.
    result = PushResult::kDroppedOldest;
    if (later(heap_.front(), key)) {
      ++counters_.dropped[slot];
      return result;
    }
    discard_top();
  }
  std::uint32_t index = fresh_;
  if (free_.empty()) {
    ++fresh_;
  } else {
    index = free_.back();
    free_.pop_back();
  }
  if (const auto* in = std::get_if<InsoleSample>(&sample.payload);
      in != nullptr && insole_cells_of(*in) > insole_cells_) {
    reserve_insole_cells(insole_cells_of(*in));  // not expected: see reserve_insole_cells
  }
  pack(sample, slot_at(index));
  // Field by field, as pack() does: a copy of `key` was assembled on the stack with scalar
  // stores and read back with 16-byte loads (a store-forwarding stall per sample).
  Key& held = heap_.emplace_back();
  held.t_us = key.t_us;
  held.order = key.order;
  held.seq = key.seq;
  held.index = index;
  held.slot = key.slot;
  std::push_heap(heap_.begin(), heap_.end(), Later{});
  ++size_;
  return result;
}

bool ReorderBuffer::pop_ready(std::int64_t watermark_us, ReleasedSample& out) {
  if (size_ == 0) {
    flushing_ = false;
    return false;
  }
  const bool due = flushing_ || heap_.front().t_us <= saturating_sub(watermark_us, params_.window_us);
  const bool over = size_ > params_.capacity;
  if (!due && !over) return false;
  release_top(out, !due);
  if (size_ == 0) flushing_ = false;
  return true;
}

void ReorderBuffer::release_top(ReleasedSample& out, bool early) {
  std::pop_heap(heap_.begin(), heap_.end(), Later{});
  const Key key = heap_.back();
  heap_.pop_back();
  --size_;
  assert(key.t_us >= last_released_t_us_);
  unpack(slot_at(key.index), out.sample);
  out.aligned_t_us = key.t_us;
  out.slot = key.slot;
  out.early = early;
  if (early) ++counters_.overflow[key.slot];
  free_.push_back(key.index);
  last_released_t_us_ = key.t_us;
  // The next release copies the new top out of the pool. It was written a reorder window
  // (150 ms) ago, so with many stations per worker it has left the caches: perf at 1 M samples/s,
  // 100 stations, put 10 % of kneeloadd's time in this function, most of it stalled on that
  // copy. Fetching it now overlaps the miss with fusing the sample just released. A hint only:
  // no effect on what is released or in which order.
  if (!heap_.empty()) {
    const unsigned char* next = slot_at(heap_.front().index);
    for (std::size_t off = 0; off < slot_bytes_; off += 64) __builtin_prefetch(next + off);
    __builtin_prefetch(next + slot_bytes_ - 1);
  }
}

void ReorderBuffer::discard_top() {
  std::pop_heap(heap_.begin(), heap_.end(), Later{});
  const Key key = heap_.back();
  heap_.pop_back();
  --size_;
  ++counters_.dropped[key.slot];
  free_.push_back(key.index);
}

// ---------------------------------------------------------------------------------------------
// RunnerClock

namespace {

template <std::size_t... I>
std::array<ClockAligner, kDeviceRoleCount> make_aligners(const RunnerClockParams& p,
                                                         std::index_sequence<I...>) {
  return {ClockAligner(p.aligners[I])...};
}

}  // namespace

RunnerClock::RunnerClock(const RunnerClockParams& params, int insole_cells)
    : aligners_(make_aligners(params, std::make_index_sequence<kDeviceRoleCount>{})),
      reorder_(params.reorder, insole_cells) {}

void RunnerClock::set_params(const RunnerClockParams& params) {
  for (std::size_t i = 0; i < aligners_.size(); ++i) aligners_[i].set_params(params.aligners[i]);
  reorder_.set_window_us(params.reorder.window_us);
}

ClockAdmission RunnerClock::on_sample(const Sample& sample) {
  const DeviceRole role = role_of(sample.kind, sample.side);
  const auto i = static_cast<std::size_t>(role);
  if (bound_[i] && bound_device_[i] != sample.device) {
    // A replaced device brings its own clock; judging it against the old one would report a
    // jump that never happened.
    aligners_[i].reset();
    ++device_changes_[i];
  }
  bound_[i] = true;
  bound_device_[i] = sample.device;
  ++samples_[i];

  const ClockAligner::Observation obs = aligners_[i].observe(sample.device_t_us,
                                                             sample.arrival_t_us);
  watermark_us_ = std::max(watermark_us_, sample.arrival_t_us);
  ClockAdmission a{};
  a.aligned_t_us = obs.aligned_t_us;
  a.slot = role;
  a.push = reorder_.push(sample, obs.aligned_t_us, static_cast<std::uint8_t>(i));
  a.jumped = obs.jumped;
  a.jump = obs.jump;
  return a;
}

void RunnerClock::advance_watermark(std::int64_t daemon_now_us) {
  watermark_us_ = std::max(watermark_us_, daemon_now_us);
}

ClockSlotCounters RunnerClock::counters(DeviceRole slot) const {
  const auto i = static_cast<std::size_t>(slot);
  const ReorderCounters& r = reorder_.counters();
  ClockSlotCounters c;
  c.samples = samples_[i];
  c.late = r.late[i];
  c.overflow = r.overflow[i];
  c.dropped = r.dropped[i];
  c.jumps = aligners_[i].jumps();
  c.shifts = aligners_[i].counters().shifts;
  c.device_changes = device_changes_[i];
  return c;
}

}  // namespace kneeload::fusion
