// Proves the hot-path claim of time_align.hpp: after construction, RunnerClock::on_sample,
// pop_ready, advance_watermark and flush perform no heap allocation, across clock jumps, late
// frames, overflow and a device change. This binary replaces the global allocation functions
// with counting ones; it is its own test binary so no other test runs with them.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <new>

#include "kneeload/fusion/time_align.hpp"
#include "counting_new.hpp"

namespace kneeload::fusion {
namespace {

std::uint64_t allocations() { return kneeload::alloc_count::new_calls(); }

int* volatile g_sink = nullptr;

TEST(AllocationCounter, CountsAllocations) {
  const std::uint64_t before = allocations();
  g_sink = new int(3);
  delete g_sink;
  EXPECT_EQ(allocations() - before, 1u) << "the replaced operator new is not in use";
}

// One simulated device, allocation-free: frames of `batch` samples every batch * period of true
// time, device clock with an epoch and a drift, arrival = last sample + a pseudo-random latency.
struct Device {
  SensorKind kind;
  Side side;
  std::uint32_t id;
  std::int64_t period_us;
  int batch;
  std::int64_t epoch_us;
  double drift;
  std::int64_t lat_min_us;
  std::int64_t lat_span_us;
  std::uint64_t rng;
  std::uint32_t frame = 0;
  std::int64_t step_us = 0;         // applied to the device clock from the next frame on
  std::int64_t extra_delay_us = 0;  // added to the next frame's arrival only
  int pos = 0;                      // next sample of the buffered frame
  std::array<Sample, 16> buf{};

  std::uint64_t next_rand() {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
  }
  void fill() {
    const std::int64_t t0 = 1'000'000'000;
    const std::int64_t first = t0 + static_cast<std::int64_t>(frame) * batch * period_us;
    const std::int64_t last = first + (batch - 1) * period_us;
    const std::int64_t lat =
        lat_min_us + static_cast<std::int64_t>(next_rand() % static_cast<std::uint64_t>(lat_span_us));
    for (int i = 0; i < batch; ++i) {
      const std::int64_t t = first + i * period_us;
      Sample& s = buf[static_cast<std::size_t>(i)];
      s.device_t_us = epoch_us + static_cast<std::int64_t>(static_cast<double>(t - t0) * drift) +
                      (t - t0) + step_us;
      s.arrival_t_us = last + lat + extra_delay_us;
      s.device = id;
      s.runner = 1;
      s.device_seq = frame;
      s.kind = kind;
      s.side = side;
      s.payload = TreadmillSample{static_cast<float>(i), 0.0f};
    }
    extra_delay_us = 0;
    ++frame;
    pos = 0;
  }
  std::int64_t next_arrival() const { return buf[static_cast<std::size_t>(pos)].arrival_t_us; }
};

TEST(RunnerClockAllocation, NoHeapAllocationPerSampleAfterConstruction) {
  std::array<Device, 6> devices = {{
      {SensorKind::kInsole, Side::kLeft, 10, 10'000, 10, 111'000'000, 80e-6, 2'000, 6'000, 1},
      {SensorKind::kInsole, Side::kRight, 11, 10'000, 10, 222'000'000, -40e-6, 2'000, 6'000, 2},
      {SensorKind::kKnee, Side::kLeft, 12, 5'000, 10, 333'000'000, 20e-6, 10'000, 20'000, 3},
      {SensorKind::kKnee, Side::kRight, 13, 5'000, 10, 444'000'000, 95e-6, 10'000, 20'000, 4},
      {SensorKind::kTreadmill, Side::kNone, 14, 100'000, 1, 555'000'000, 5e-6, 1'000, 3'000, 5},
      {SensorKind::kConsole, Side::kNone, 15, 1'000'000, 1, 0, -70e-6, 5'000, 50'000, 6},
  }};
  RunnerClockParams params;
  params.reorder.capacity = 96;  // small: the late-frame burst below overflows it
  // Everything the clock will ever use is allocated here, before counting starts.
  RunnerClock clock(params);
  for (Device& d : devices) d.fill();

  const std::uint64_t before = allocations();
  std::uint64_t samples = 0, released = 0, jumps = 0, late = 0;
  ReleasedSample r{};
  constexpr std::uint64_t kSamples = 100'000;
  while (samples < kSamples) {
    Device* next = &devices[0];
    for (Device& d : devices) {
      if (d.next_arrival() < next->next_arrival()) next = &d;
    }
    const Sample& s = next->buf[static_cast<std::size_t>(next->pos)];
    const ClockAdmission a = clock.on_sample(s);
    jumps += a.jumped ? 1 : 0;
    late += a.push == PushResult::kLate ? 1 : 0;
    ++samples;
    while (clock.pop_ready(r)) ++released;
    if (++next->pos == next->batch) {
      // ~164 s of runner in all; each rare path once, after the clocks have locked (30 s).
      if (next->id == 12 && next->frame == 1'000) next->step_us = 500'000;  // 50 s: knee jumps
      if (next->id == 11 && next->frame == 1'000) next->extra_delay_us = 300'000;  // 100 s: late
      if (next->id == 14 && next->frame == 1'200) next->id = 16;  // 120 s: treadmill replaced
      next->fill();
    }
    if (samples % 10'000 == 0) clock.advance_watermark(s.arrival_t_us);
  }
  clock.flush();
  while (clock.pop_ready(r)) ++released;
  const std::uint64_t hot = allocations() - before;

  std::uint64_t overflow = 0, changes = 0;
  for (int i = 0; i < kDeviceRoleCount; ++i) {
    const ClockSlotCounters c = clock.counters(static_cast<DeviceRole>(i));
    overflow += c.overflow;
    changes += c.device_changes;
  }
  std::printf("[measured] %llu samples, %llu released, %llu late, %llu jumps, %llu overflow, "
              "%llu device changes: %llu allocations\n",
              static_cast<unsigned long long>(samples), static_cast<unsigned long long>(released),
              static_cast<unsigned long long>(late), static_cast<unsigned long long>(jumps),
              static_cast<unsigned long long>(overflow), static_cast<unsigned long long>(changes),
              static_cast<unsigned long long>(hot));
  EXPECT_EQ(hot, 0u) << "expected no allocation in " << samples << " samples, got " << hot;
  EXPECT_EQ(released + late, samples) << "every sample released or counted late";
  EXPECT_GE(jumps, 1u) << "the jump path was exercised";
  EXPECT_GE(late, 1u) << "the late path was exercised";
  EXPECT_EQ(changes, 1u) << "the device-change path was exercised";
}

// Reorder slots hold a whole chunk of cells (16, or 32 for larger insoles): an insole with more
// cells than the runner's registered ones but within the chunk fits the slots it has, so
// pushing it must not build a new pool. Only one past the chunk needs one (and gets it).
TEST(ReorderBufferAllocation, MoreCellsWithinTheChunkNeedNoNewPool) {
  ReorderParams params;
  params.window_us = 0;
  ReorderBuffer buffer(params, 4);
  const auto insole = [](int cells) {
    Sample s{};
    s.kind = SensorKind::kInsole;
    s.side = Side::kLeft;
    InsoleSample in{};
    in.cell_count = static_cast<std::uint8_t>(cells);
    s.payload = in;
    return s;
  };
  ReleasedSample r{};
  const std::uint64_t before = allocations();
  for (const int cells : {4, 10, 16}) {
    ASSERT_EQ(buffer.push(insole(cells), cells, 0), PushResult::kQueued);
  }
  while (buffer.pop_ready(100, r)) {
  }
  EXPECT_EQ(allocations() - before, 0u) << "4, 10 and 16 cells share a 16-cell chunk";
  ASSERT_EQ(buffer.push(insole(17), 200, 0), PushResult::kQueued);
  EXPECT_EQ(allocations() - before, 1u) << "17 cells need 32-cell slots: one new pool";
  EXPECT_EQ(buffer.slot_bytes(), ReorderBuffer::slot_bytes(kMaxInsoleCells));
}

}  // namespace
}  // namespace kneeload::fusion
