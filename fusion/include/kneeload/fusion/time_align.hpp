// Time alignment for one runner: every device's clock mapped onto the daemon's arrival clock
// (ClockAligner), the runner's samples merged into one deterministic time order within a bounded
// reorder window (ReorderBuffer), and a facade the session calls per sample (RunnerClock).
//
// Time is integer microseconds throughout. "Device time" is a device's own clock (arbitrary
// epoch, drifting); "daemon time" is the daemon's steady clock as stamped in Sample::arrival_t_us;
// "aligned time" is a device time mapped onto the daemon clock. The raw device time stays in the
// Sample; aligned time travels beside it (ReleasedSample).
//
// Thread ownership: one fusion worker thread owns each object; no locking. No heap allocation
// after construction, no I/O, no clock reads: the same input sequence yields the same outputs
// bit for bit (deterministic replay).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "kneeload/fusion/sample.hpp"

namespace kneeload::fusion {

// Parameters of one device's clock estimator. Every field is a config value; the defaults suit
// BLE-bridged devices at 60-200 Hz sending ~10 samples per frame.
struct AlignerParams {
  // Envelope bucket length (device time). The lowest (arrival - device) point of each bucket is
  // kept as offset evidence. Shorter buckets follow drift changes faster but keep fewer frames
  // per bucket, so each bucket minimum sits further above the true delay floor.
  std::int64_t bucket_us = 2'000'000;
  // Buckets kept (ring). bucket_us * bucket_count is the drift-fit history: 128 s by default,
  // which pins a constant drift to ~2 ppm and still follows slow thermal drift.
  int bucket_count = 64;
  static constexpr int kMaxBuckets = 65535;  // ClockAligner's hull holds bucket positions in 16 bits
  // Evidence span (device time) before the drift is fitted from the data rather than assumed
  // (0 ppm at first, the previous estimate after a jump), and before a fresh clock is kLocked.
  // Until then the offset error can reach drift * span (100 ppm * 30 s = 3 ms).
  std::int64_t lock_span_us = 30'000'000;
  // After a jump on a clock that was locked, the drift estimate carries over, so only the offset
  // has to be found again: kLocked once the new evidence spans this long.
  std::int64_t relock_span_us = 2'000'000;
  // A frame whose offset evidence lies further than this from the current estimate, either way,
  // is a jump candidate rather than evidence. Must exceed the latency jitter, or jittery frames
  // are withheld from the envelope; a persistent rise of the latency floor by more than this is
  // indistinguishable from the device clock stepping back (one-way timestamps cannot tell), so
  // it is treated as one. Smaller steps are shifts (below).
  std::int64_t jump_threshold_us = 50'000;
  // A jump is confirmed when at least this many consecutive frames agree on a new offset
  // (within jump_threshold_us of each other) ...
  int jump_confirm_frames = 5;
  // ... and they span at least this much daemon (arrival) time, so a burst of frames held back
  // by a radio stall and delivered at once does not pass for a clock step.
  std::int64_t jump_confirm_us = 500'000;
  // Steps below the jump threshold (a resync of a few ms) are shifts: re-baselined silently and
  // counted, not reported. A shift back is confirmed when shift_buckets consecutive bucket minima
  // lie more than shift_threshold_us above the estimate; a shift ahead (evidence more than
  // shift_threshold_us below the estimate, which no delay can explain) when the lower level holds
  // for shift_buckets buckets. The threshold must exceed the spread of bucket minima about the
  // delay floor; the bucket count trades detection delay (3 * 2 s) against false shifts on links
  // that rarely reach their floor.
  std::int64_t shift_threshold_us = 2'000;
  int shift_buckets = 3;
  // Known minimum transport delay of this device. The envelope finds arrival = true time +
  // minimum delay; the minimum delay itself is unobservable from timestamps, so aligned times
  // carry it as a constant bias unless it is configured here (measured on the bench).
  std::int64_t min_latency_us = 0;
  // Fitted drift beyond this magnitude is clamped: real oscillators stay within ±100 ppm, so a
  // larger slope means the evidence is bad, not the clock.
  double max_drift_ppm = 500.0;
  // Once the evidence spans 2 * lock_span_us, the drift estimate moves at most this fast (ppm per
  // second of device time). Oscillator drift changes with temperature, well under 0.01 ppm/s on a
  // body-worn device; a step or outlier too small to detect bends the hull fit by up to
  // step / history (2 ms / 128 s = 16 ppm) at once, and this keeps that out of the offset.
  double max_drift_slew_ppm_per_s = 0.05;
};

// Returns nullptr iff the parameters are usable, else which one is wrong (for config errors).
const char* invalid_reason(const AlignerParams& params);

enum class ClockState : std::uint8_t {
  kNoData = 0,      // nothing observed yet (or reset)
  kConverging = 1,  // aligned times are usable but the drift or offset is still settling
  kLocked = 2,      // offset and drift are backed by enough evidence
};

// A confirmed step of a device clock. The caller turns it into a sensor-fault event.
struct ClockJump {
  std::int64_t device_step_us;  // > 0: the device clock jumped ahead; < 0: it jumped back
  std::int64_t device_t_us;     // device time (new clock) of the first frame after the step
  std::int64_t arrival_t_us;    // arrival time of that frame
};

struct AlignerCounters {
  std::uint64_t frames = 0;          // frames (runs of equal arrival time) closed
  std::uint64_t jumps = 0;           // confirmed jumps reported as ClockJump
  std::uint64_t shifts = 0;          // sub-threshold steps (or outliers) re-baselined silently
  std::uint64_t restarts = 0;        // re-baselines before the first lock: not reported as jumps
  std::uint64_t transients = 0;      // jump candidates that did not persist (stalls, outliers)
  std::uint64_t non_monotonic = 0;   // frames whose device time did not advance: not evidence
};

// ClockAligner: maps one device's clock onto the daemon clock from (device_t_us, arrival_t_us)
// pairs with a lower-envelope estimator of offset and drift, and detects clock jumps.
// Thread ownership: one thread. Units: µs; drift in ppm (device clock rate relative to the
// daemon's: +80 means the device clock gains 80 µs per second).
class ClockAligner {
 public:
  struct Observation {
    std::int64_t aligned_t_us;  // this sample on the daemon clock
    bool jumped;                // true iff this call confirmed a jump; then `jump` is set
    ClockJump jump;
  };

  // REQUIRES: invalid_reason(params) == nullptr. Allocates all storage here.
  explicit ClockAligner(const AlignerParams& params = AlignerParams{});

  // New thresholds (a reload), applied from the next sample; the offset and drift estimates
  // are kept. bucket_us and bucket_count size the evidence ring and stay as built. A changed
  // jump_confirm_frames re-sizes the candidate ring (allocates) and drops a jump candidate run
  // in progress, which then has to be seen again. A changed min_latency_us moves this device's
  // aligned times by the difference at once (samples moved behind released ones are late).
  // REQUIRES: invalid_reason(params) == nullptr.
  void set_params(const AlignerParams& params);

  // Feeds one sample. Samples of one frame share arrival_t_us and come in device order; a new
  // arrival time closes the previous frame, whose evidence is folded in then (so a jump is
  // confirmed on the first sample after the confirming frame). The returned aligned time never
  // exceeds arrival_t_us - min_latency_us: a sample cannot be taken after it was received.
  // REQUIRES: |device_t_us|, |arrival_t_us| < 2^62.
  Observation observe(std::int64_t device_t_us, std::int64_t arrival_t_us);

  // device_t_us on the daemon clock with the current estimate (no arrival clamp).
  // REQUIRES: state() != ClockState::kNoData.
  std::int64_t aligned_t_us(std::int64_t device_t_us) const;

  ClockState state() const { return state_; }
  // aligned - device at the latest observed device time, in µs; 0 before any data.
  double offset_us() const;
  double drift_ppm() const;
  std::uint64_t jumps() const { return counters_.jumps; }
  const AlignerCounters& counters() const { return counters_; }
  const AlignerParams& params() const { return params_; }

  // Forgets the clock (a different device took this slot); counters are kept.
  void reset();

 private:
  struct Point {
    std::int64_t t_us;  // device time
    std::int64_t y_us;  // arrival - device
  };
  // y(t) = anchor.y + slope * (t - anchor.t): the lower envelope of (arrival - device).
  struct Line {
    Point anchor;
    double slope;  // dimensionless (µs of offset per µs of device time)
  };

  Line current_line() const;
  static std::int64_t eval(const Line& line, std::int64_t t_us);
  void close_frame(Observation& obs);
  void accept(const Point& p);
  void keep_newest_buckets(int n);
  bool shift_pending() const { return lowered_ || lifted_buckets_ > 0; }
  void refit();
  void fit_hull();
  // The i-th oldest bucket, 0 <= i < bucket_size_. bucket_head_ and i are below the ring size,
  // so one conditional subtraction wraps: no integer division on a path run per frame.
  const Point& bucket_at(int i) const {
    int k = bucket_head_ + i;
    if (k >= static_cast<int>(buckets_.size())) k -= static_cast<int>(buckets_.size());
    return buckets_[static_cast<std::size_t>(k)];
  }
  void clear_regime();
  void clear_candidates();

  AlignerParams params_;
  AlignerCounters counters_;
  ClockState state_ = ClockState::kNoData;

  // The open frame: its tightest evidence so far (the largest device time of the frame).
  bool frame_open_ = false;
  std::int64_t frame_arrival_us_ = 0;
  Point frame_best_{};
  std::int64_t latest_device_t_us_ = 0;

  // Evidence of the current regime (since the first frame or the last jump): a ring of bucket
  // minima in device-time order, the last one being the bucket still filling.
  std::vector<Point> buckets_;
  int bucket_head_ = 0;  // oldest
  int bucket_size_ = 0;
  std::int64_t bucket_origin_us_ = 0;  // bucket boundaries: origin + k * bucket_us
  std::int64_t bucket_id_ = 0;         // of the newest bucket
  std::int64_t regime_t0_us_ = 0;      // device time of the oldest evidence kept (lock span)
  std::int64_t last_frame_t_us_ = 0;

  // Shift detection: the lowest residual (against ref_line_) of the bucket filling, closed
  // buckets in a row whose lowest residual was above +shift_threshold_us, and the frame that
  // lowered the envelope by more than shift_threshold_us (if any) with the buckets closed since.
  std::int64_t bucket_min_r_us_ = 0;
  int lifted_buckets_ = 0;
  bool lowered_ = false;
  std::int64_t lowered_t_us_ = 0;
  int lowered_buckets_ = 0;
  double held_slope_ = 0.0;  // the slope from before the pending shift
  Line ref_line_{};          // the line when the newest bucket opened
  bool fitted_ = false;      // the hull fit is mature: its slope is slew-limited
  std::int64_t fit_t_us_ = 0;  // device time of the last hull fit

  bool has_line_ = false;
  Line line_{};
  double prior_slope_ = 0.0;  // used until the regime spans lock_span_us
  bool ever_locked_ = false;

  // Jump candidates: consecutive frames beyond the threshold on the same side, in agreement.
  std::vector<Point> cand_;  // ring of the latest jump_confirm_frames candidate points
  int cand_head_ = 0;
  int cand_size_ = 0;
  int cand_count_ = 0;  // candidates in the run, including those overwritten in the ring
  int cand_sign_ = 0;
  std::int64_t cand_min_r_us_ = 0;
  std::int64_t cand_max_r_us_ = 0;
  std::int64_t cand_first_arrival_us_ = 0;
  Point cand_first_{};

  // Workspace of fit_hull(): the hull's points as bucket positions (bucket_at), 2 bytes each
  // where the points themselves took 16 (issue 8: six aligners per runner).
  std::vector<std::uint16_t> hull_;
  // fit_hull()'s result, valid while hull_dirty_ is false: every change to the bucket ring sets
  // hull_dirty_.
  bool hull_dirty_ = true;
  bool hull_found_ = false;
  double hull_slope_ = 0.0;
};

// Parameters of a runner's reorder buffer.
struct ReorderParams {
  // A sample is released once the newest arrival time seen exceeds its aligned time by this
  // much. It must exceed the longest frame's sample span plus the latency jitter of the slowest
  // device (10 samples at 100 Hz span 90 ms, + jitter), or the front of every frame is late.
  // Longer windows cost latency of every downstream output, not correctness.
  std::int64_t window_us = 150'000;
  // Samples held at most. Needs about (window + frame span) * total sample rate of the runner:
  // 6 devices at 200 Hz for 300 ms is 360. When exceeded, the oldest is released early.
  std::uint32_t capacity = 512;
};

// Returns nullptr iff the parameters are usable, else which one is wrong.
const char* invalid_reason(const ReorderParams& params);

enum class PushResult : std::uint8_t {
  kQueued = 0,
  kLate = 1,            // older than a sample already released: not queued, counted
  kDroppedOldest = 2,   // queued, but the buffer was full and not drained: the oldest sample held
                        // (possibly this one) was discarded, counted
};

// A sample leaving the reorder buffer, with its aligned time beside the raw device time.
struct ReleasedSample {
  Sample sample;
  std::int64_t aligned_t_us;
  std::uint8_t slot;  // DeviceRole of the device within its runner
  bool early;         // released before its window passed because the buffer was over capacity
};

struct ReorderCounters {
  std::array<std::uint64_t, kDeviceRoleCount> late{};      // per slot
  std::array<std::uint64_t, kDeviceRoleCount> overflow{};  // released early, per slot
  std::array<std::uint64_t, kDeviceRoleCount> dropped{};   // discarded (caller did not drain)
};

// ReorderBuffer: a fixed-capacity min-heap that merges a runner's samples into aligned-time
// order. Order is total: (aligned time, slot, device sequence, push order). Output is
// non-decreasing in aligned time; a sample older than one already released is late: counted,
// never emitted out of order. Thread ownership: one thread. Units: µs.
class ReorderBuffer {
 public:
  // REQUIRES: invalid_reason(params) == nullptr; 0 <= insole_cells <= kMaxInsoleCells.
  // Allocates all storage here. insole_cells: the most pressure cells an insole sample of this
  // runner has (its registered insoles'); each held sample takes a slot of slot_bytes(), sized
  // for it, instead of a whole Sample (208 B, room for 32 cells).
  explicit ReorderBuffer(const ReorderParams& params = ReorderParams{},
                         int insole_cells = kMaxInsoleCells);

  // Bytes a held sample takes: the sample packed, an insole's cells cut to 16 (insole_cells
  // <= 16) or 32.
  static std::size_t slot_bytes(int insole_cells);
  std::size_t slot_bytes() const { return slot_bytes_; }
  // Makes the slots fit insole samples of up to `cells` cells (a reload that registered a
  // larger insole), re-packing what is held; no-op when they already fit. Allocates when it
  // grows. push() grows too, rather than lose a sample, if one arrives with more cells.
  void reserve_insole_cells(int cells);

  // A new window (a reload), from the next pop_ready(). The capacity stays as built: it sizes
  // the storage the held samples live in. REQUIRES: window_us >= 0.
  void set_window_us(std::int64_t window_us);

  // REQUIRES: slot < kDeviceRoleCount. Over capacity after the push, the next pop_ready()
  // releases the oldest early (counted) rather than hold back newer data; pushing again before
  // that pop discards the oldest (kDroppedOldest).
  PushResult push(const Sample& sample, std::int64_t aligned_t_us, std::uint8_t slot);

  // Releases the oldest sample if its aligned time <= watermark_us - window_us, or if the buffer
  // is over capacity or flushing. Returns false iff nothing was released.
  bool pop_ready(std::int64_t watermark_us, ReleasedSample& out);

  // Makes everything held ready regardless of the watermark (shutdown, session end); pop_ready()
  // then drains it in order. Later pushes are still checked for lateness.
  void flush() { flushing_ = size_ > 0; }

  std::size_t size() const { return size_; }
  // Aligned time of the last released sample; INT64_MIN before the first.
  std::int64_t last_released_t_us() const { return last_released_t_us_; }
  const ReorderCounters& counters() const { return counters_; }
  const ReorderParams& params() const { return params_; }

 private:
  // 24 bytes: a pop's sift-down touches a cold key array (perf: most of release_top's stalls).
  struct Key {
    std::int64_t t_us;
    std::uint32_t seq;
    // Push order, the last tie-break (keys equal in time, slot and seq), which makes the key
    // order total: the low 32 bits of a 64-bit count, compared with serial-number arithmetic
    // (RFC 1982), so exact for two keys pushed fewer than 2^31 pushes apart (41 days of a
    // runner at 600 samples/s; tied keys are normally a few pushes apart). Past that a tie
    // would be broken the other way round, still the same way in every replay.
    std::uint32_t order;
    std::uint32_t index;  // into pool_
    std::uint8_t slot;
  };
  static_assert(sizeof(Key) == 24);
  static bool later(const Key& a, const Key& b);  // heap comparator: a after b
  // The heap algorithms get it as a function object, which they inline; handed the function
  // pointer they called it out of line for every comparison (2.4 % of kneeloadd under load).
  struct Later {
    bool operator()(const Key& a, const Key& b) const { return later(a, b); }
  };
  void release_top(ReleasedSample& out, bool early);
  void discard_top();

  unsigned char* slot_at(std::uint32_t index) { return pool_.get() + index * slot_bytes_; }

  // Storage of held samples, as raw bytes on purpose: a std::vector would value-initialise
  // (write) every slot at construction, so all `capacity` slots (~70 KB at the default 512)
  // would count in RSS for every station. Slots are handed out fresh only when the free list is
  // empty, and freed ones are reused last-in first-out, so the pages touched are those of the
  // most samples ever held at once (~100 for 600 samples/s in a 150 ms window), not the
  // capacity. A slot holds the sample packed (time_align.cpp, pack/unpack): its header, and
  // only the payload alternative it carries, an insole's cells cut to 16 when its insoles have
  // no more. That is 144 B instead of a Sample's 208.
  ReorderParams params_;
  std::vector<Key> heap_;  // reserved, not filled: touched only as deep as it ever got
  std::unique_ptr<unsigned char[]> pool_;
  std::size_t slot_bytes_ = 0;
  int insole_cells_ = 0;     // the most cells a slot has room for: a whole chunk, 16 or 32
  std::uint32_t slots_ = 0;  // capacity + 1: room for the one push over capacity
  std::uint32_t fresh_ = 0;  // slots [fresh_, slots_) were never used
  std::vector<std::uint32_t> free_;  // released slots, reused last-in first-out
  std::size_t size_ = 0;
  std::uint64_t next_order_ = 0;
  std::int64_t last_released_t_us_ = std::numeric_limits<std::int64_t>::min();
  bool flushing_ = false;
  ReorderCounters counters_;
};

struct RunnerClockParams {
  std::array<AlignerParams, kDeviceRoleCount> aligners{};  // indexed by DeviceRole
  ReorderParams reorder{};
};

// Per-slot counters of a RunnerClock, folded from its aligner and reorder buffer.
struct ClockSlotCounters {
  std::uint64_t samples = 0;
  std::uint64_t late = 0;            // arrived after newer samples were released: not emitted
  std::uint64_t overflow = 0;        // released early because the buffer was over capacity
  std::uint64_t dropped = 0;         // discarded because the caller did not drain
  std::uint64_t jumps = 0;           // clock jumps reported
  std::uint64_t shifts = 0;          // small clock steps re-baselined silently
  std::uint64_t device_changes = 0;  // another device took the slot: its aligner restarted
};

// What on_sample() did with one sample.
struct ClockAdmission {
  std::int64_t aligned_t_us;
  DeviceRole slot;
  PushResult push;
  bool jumped;     // the slot's clock jumped: turn `jump` into a sensor-fault event
  ClockJump jump;  // valid iff jumped
};

// RunnerClock: the session's time base. Aligns each device of one runner onto the daemon clock
// (one ClockAligner per DeviceRole slot) and releases the runner's samples in aligned order once
// the newest arrival time has passed them by the reorder window.
// Thread ownership: the runner's fusion worker thread. Units: µs.
//
// Per sample:
//   const ClockAdmission a = clock.on_sample(s);   // a.jumped -> sensor-fault event for a.slot
//   ReleasedSample r;
//   while (clock.pop_ready(r)) session.on_sample(r.sample /* at r.aligned_t_us */, out);
// On an idle tick: clock.advance_watermark(daemon_now_us), then drain the same way.
// At session end or shutdown: clock.flush(), then drain.
class RunnerClock {
 public:
  // REQUIRES: every invalid_reason(...) of params == nullptr. Allocates all storage here.
  // insole_cells: see ReorderBuffer.
  explicit RunnerClock(const RunnerClockParams& params = RunnerClockParams{},
                       int insole_cells = kMaxInsoleCells);

  // See ReorderBuffer::reserve_insole_cells (a reload). May allocate.
  void reserve_insole_cells(int cells) { reorder_.reserve_insole_cells(cells); }

  // New aligner parameters and reorder window (a reload); see ClockAligner::set_params and
  // ReorderBuffer::set_window_us. The reorder capacity stays as built.
  void set_params(const RunnerClockParams& params);

  // Aligns the sample on its device's clock and queues it. The slot is role_of(kind, side).
  // REQUIRES: drain with pop_ready() until it returns false before the next on_sample(); an
  // undrained buffer over capacity discards its oldest sample (counted) instead of growing.
  ClockAdmission on_sample(const Sample& sample);

  // Moves the watermark to daemon_now_us if that is newer, so a runner whose devices fell silent
  // still has its last samples released.
  void advance_watermark(std::int64_t daemon_now_us);

  // Releases the next sample in aligned order if it is ready. Returns false iff none is.
  bool pop_ready(ReleasedSample& out) { return reorder_.pop_ready(watermark_us_, out); }

  // Everything held becomes ready; pop_ready() drains it in order.
  void flush() { reorder_.flush(); }

  // Newest arrival time seen (or passed to advance_watermark); INT64_MIN before any.
  std::int64_t watermark_us() const { return watermark_us_; }
  std::size_t buffered() const { return reorder_.size(); }
  const ClockAligner& aligner(DeviceRole slot) const {
    return aligners_[static_cast<std::size_t>(slot)];
  }
  ClockSlotCounters counters(DeviceRole slot) const;

 private:
  std::array<ClockAligner, kDeviceRoleCount> aligners_;
  std::array<std::uint32_t, kDeviceRoleCount> bound_device_{};
  std::array<bool, kDeviceRoleCount> bound_{};
  std::array<std::uint64_t, kDeviceRoleCount> samples_{};
  std::array<std::uint64_t, kDeviceRoleCount> device_changes_{};
  ReorderBuffer reorder_;
  std::int64_t watermark_us_ = std::numeric_limits<std::int64_t>::min();
};

}  // namespace kneeload::fusion
