// Proves the hot-path claim of session.hpp: on_sample (and on_device_stale, finish) performs no
// heap allocation. This binary replaces the global allocation functions with counting ones that
// forward to malloc/free; it is its own test binary so no other test runs with them.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "gait_signal.hpp"
#include "kneeload/fusion/session.hpp"

namespace {

std::atomic<std::uint64_t> g_allocations{0};

void* counted_alloc(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size == 0 ? 1 : size);
}

void* counted_aligned_alloc(std::size_t size, std::align_val_t al) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  const auto a = static_cast<std::size_t>(al);
  const std::size_t rounded = (size + a - 1) / a * a;
  return std::aligned_alloc(a, rounded == 0 ? a : rounded);
}

}  // namespace

void* operator new(std::size_t size) {
  if (void* p = counted_alloc(size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) {
  if (void* p = counted_alloc(size)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return counted_alloc(size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return counted_alloc(size);
}
void* operator new(std::size_t size, std::align_val_t al) {
  if (void* p = counted_aligned_alloc(size, al)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size, std::align_val_t al) {
  if (void* p = counted_aligned_alloc(size, al)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t size, std::align_val_t al, const std::nothrow_t&) noexcept {
  return counted_aligned_alloc(size, al);
}
void* operator new[](std::size_t size, std::align_val_t al, const std::nothrow_t&) noexcept {
  return counted_aligned_alloc(size, al);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(p);
}

namespace kneeload::fusion {
namespace {

std::uint64_t allocations() { return g_allocations.load(std::memory_order_relaxed); }

// The pointers escape through volatile sinks, so the compiler may not elide the allocations.
int* volatile g_sink_one = nullptr;
int* volatile g_sink_array = nullptr;

TEST(AllocationCounter, CountsAllocations) {
  const std::uint64_t before = allocations();
  g_sink_one = new int(3);
  g_sink_array = new int[4];
  delete[] g_sink_array;
  delete g_sink_one;
  EXPECT_EQ(allocations() - before, 2u) << "the replaced operator new is not in use";
}

// 60 s of a runner at 200 Hz insoles and sleeves, with pain reports, a dropout, a session end
// and the idle end of a second session: every call into the session is counted after a 5 s
// warm-up, and the warm-up itself is reported.
TEST(RunnerSessionAllocation, NoHeapAllocationInOnSampleAfterWarmUp) {
  testing::GaitParams p;
  p.insole_hz = 200.0;
  p.knee_hz = 200.0;
  p.duration_s = 95.0;
  p.run_s = 60.0;
  testing::GaitSignal gen(p);
  RunnerSession session(testing::test_config(p));
  SessionOutputs out{};

  const std::int64_t warm_end = p.t0_us + 5'000'000;
  std::uint64_t warm_allocs = 0, hot_allocs = 0, hot_calls = 0, outputs = 0;
  auto call = [&](std::int64_t t, auto&& fn) {
    const std::uint64_t before = allocations();
    fn();
    const std::uint64_t n = allocations() - before;
    if (t < warm_end) {
      warm_allocs += n;
    } else {
      hot_allocs += n;
      ++hot_calls;
    }
    outputs += static_cast<std::uint64_t>(out.size());
    out.clear();
  };

  struct Console {
    std::int64_t t;
    Payload payload;
    bool sent;
  } console[] = {
      {p.t0_us + 10'000'000, PainReport{4, Side::kLeft, PainLocation::kAnterior}, false},
      {p.t0_us + 12'000'000, PainReport{5, Side::kLeft, PainLocation::kAnterior}, false},
      {p.t0_us + 20'000'000, PainReport{1, Side::kLeft, PainLocation::kAnterior}, false},
      {p.t0_us + 30'000'000, SessionEnd{}, false},
  };
  bool stale_sent = false, back_sent = false;
  Sample s;
  while (gen.next(s)) {
    for (Console& c : console) {
      if (!c.sent && s.device_t_us >= c.t) {
        c.sent = true;
        const Sample cs = testing::GaitSignal::console(c.t, c.payload);
        call(c.t, [&] { session.on_sample(cs, out); });
      }
    }
    if (!stale_sent && s.device_t_us >= p.t0_us + 40'000'000) {
      stale_sent = true;
      call(s.device_t_us, [&] {
        session.on_device_stale(testing::kKneeLeftDevice, Side::kLeft, SensorKind::kKnee, true,
                                out);
      });
    }
    if (!back_sent && s.device_t_us >= p.t0_us + 41'000'000) {
      back_sent = true;
      call(s.device_t_us, [&] {
        session.on_device_stale(testing::kKneeLeftDevice, Side::kLeft, SensorKind::kKnee, false,
                                out);
      });
    }
    call(s.device_t_us, [&] { session.on_sample(s, out); });
  }
  call(gen.end_us(), [&] { session.finish(out); });

  std::printf("[measured] %llu calls after warm-up, %llu outputs, allocations: warm-up %llu, "
              "after %llu\n",
              static_cast<unsigned long long>(hot_calls),
              static_cast<unsigned long long>(outputs),
              static_cast<unsigned long long>(warm_allocs),
              static_cast<unsigned long long>(hot_allocs));
  EXPECT_EQ(hot_allocs, 0u) << "expected no allocation in " << hot_calls << " calls, got "
                            << hot_allocs;
  EXPECT_EQ(warm_allocs, 0u) << "warm-up allocated " << warm_allocs << " times";
  EXPECT_GT(hot_calls, 60'000u);
  EXPECT_GE(session.counters().steps, 160u);
  EXPECT_EQ(session.counters().risk_events, 4u) << "pain onset/clear and dropout onset/clear";
}

}  // namespace
}  // namespace kneeload::fusion
