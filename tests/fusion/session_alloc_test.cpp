// Proves the hot-path claim of session.hpp: after construction, on_sample, on_idle,
// on_device_stale and finish perform no heap allocation — through the reorder window, the
// filters, the load model, the rules and the session summaries. This binary replaces the global
// allocation functions with counting ones; it is its own test binary so no other test runs with
// them.
//
// Eigen allocates through std::malloc, not operator new, so on glibc builds without a sanitizer
// malloc/calloc/realloc are interposed and counted too (forwarding to glibc's own entry points;
// a sanitizer runtime owns malloc, so there the operator new count stands alone).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "gait_signal.hpp"
#include "kneeload/fusion/session.hpp"
#include "counting_new.hpp"

namespace kneeload::fusion {
namespace {

using Allocations = alloc_count::Calls;
using alloc_count::count_calls;

void* volatile g_sink = nullptr;

TEST(AllocationCounter, SeesOperatorNewAndMalloc) {
  const Allocations a = count_calls([] {
    int* p = new int(3);
    g_sink = p;
    delete p;
    void* m = std::malloc(64);
    g_sink = m;
    std::free(m);
  });
  EXPECT_EQ(a.news, 1u) << "the replaced operator new is not in use";
  if (alloc_count::counts_malloc()) {
    EXPECT_GE(a.mallocs, 2u) << "malloc is not interposed (operator new forwards to it too)";
  }
}

// 5 s of warm-up, then 60 s of a runner at 200 Hz with insoles, knee sleeves with IMUs and a
// treadmill, frames of 10 with jittered latency on a drifting device clock: pain reports (onset,
// clear), a session end, a second session, an explicit dropout and its clear, an on_idle()
// flush mid-stream (whose stragglers arrive late), the idle end of the second session and
// finish(). Every call into the session after construction is counted.
TEST(RunnerSessionAllocation, NoHeapAllocationAfterConstruction) {
  testing::GaitParams p;
  p.insole_hz = 200.0;
  p.knee_hz = 200.0;
  p.run_s = 65.0;        // 5 s of warm-up, then 60 s of running
  p.duration_s = 100.0;  // the belt and the devices go on 35 s after the last step: idle end
  p.clocks[testing::kInsoleLeft] = {1'000'000, 50.0};
  testing::GaitSignal gen(p);
  const std::int64_t t0 = p.t0_us;
  ASSERT_TRUE(
      gen.schedule_console(t0 + 10'000'000, PainReport{4, Side::kLeft, PainLocation::kAnterior}));
  ASSERT_TRUE(
      gen.schedule_console(t0 + 12'000'000, PainReport{5, Side::kLeft, PainLocation::kLateral}));
  ASSERT_TRUE(
      gen.schedule_console(t0 + 20'000'000, PainReport{1, Side::kLeft, PainLocation::kAnterior}));
  ASSERT_TRUE(gen.schedule_console(t0 + 30'000'000, SessionEnd{}));

  // Built before the counted region (std::unique_ptr<State>, filters, windows, reorder pool).
  RunnerSession session(testing::test_config(p));
  SessionOutputs out{};

  const std::int64_t warm_end = t0 + 5'000'000;
  Allocations warm, hot;
  std::uint64_t hot_calls = 0, outputs = 0, summaries = 0;
  auto call = [&](std::int64_t t, auto&& fn) {
    const Allocations a = count_calls(fn);
    if (t < warm_end) {
      warm += a;
    } else {
      hot += a;
      ++hot_calls;
    }
    for (int i = 0; i < out.size(); ++i) {
      if (std::holds_alternative<SessionSummary>(out[i].body)) ++summaries;
    }
    outputs += static_cast<std::uint64_t>(out.size());
    out.clear();
  };

  bool stale_sent = false, back_sent = false, idle_sent = false;
  Sample s;
  while (gen.next(s)) {
    const std::int64_t t = s.arrival_t_us;
    if (!stale_sent && t >= t0 + 40'000'000) {
      stale_sent = true;
      call(t, [&] {
        session.on_device_stale(testing::kKneeLeftDevice, Side::kLeft, SensorKind::kKnee, true,
                                out);
      });
    }
    if (!back_sent && t >= t0 + 41'000'000) {
      back_sent = true;
      call(t, [&] {
        session.on_device_stale(testing::kKneeLeftDevice, Side::kLeft, SensorKind::kKnee, false,
                                out);
      });
    }
    if (!idle_sent && t >= t0 + 50'000'000) {
      idle_sent = true;
      call(t, [&] { session.on_idle(out); });
    }
    call(t, [&] { session.on_sample(s, out); });
  }
  call(gen.end_us(), [&] { session.on_idle(out); });
  call(gen.end_us(), [&] { session.finish(out); });

  const SessionCounters& n = session.counters();
  std::printf(
      "[measured] %llu calls after warm-up, %llu outputs, %llu steps, %llu late; operator "
      "new / malloc calls: warm-up %llu/%llu, after %llu/%llu%s\n",
      static_cast<unsigned long long>(hot_calls), static_cast<unsigned long long>(outputs),
      static_cast<unsigned long long>(n.steps), static_cast<unsigned long long>(n.late),
      static_cast<unsigned long long>(warm.news), static_cast<unsigned long long>(warm.mallocs),
      static_cast<unsigned long long>(hot.news), static_cast<unsigned long long>(hot.mallocs),
      alloc_count::counts_malloc() ? "" : " (malloc not counted under a sanitizer)");
  EXPECT_EQ(hot.news, 0u) << "expected no operator new in " << hot_calls << " calls, got "
                          << hot.news;
  EXPECT_EQ(hot.mallocs, 0u) << "expected no malloc in " << hot_calls << " calls, got "
                             << hot.mallocs;
  EXPECT_EQ(warm.news, 0u) << "warm-up: expected no operator new, got " << warm.news;
  EXPECT_EQ(warm.mallocs, 0u) << "warm-up: expected no malloc, got " << warm.mallocs;

  // The paths the test claims to cover really ran.
  EXPECT_GT(hot_calls, 75'000u) << "95 s after warm-up at 810 samples/s";
  EXPECT_EQ(out.overflow(), 0u) << "the sink was cleared after every call";
  EXPECT_GE(n.steps, 180u) << "65 s at 170 spm";
  EXPECT_GT(n.late, 0u) << "stragglers after the mid-stream on_idle() flush";
  EXPECT_EQ(summaries, 2u) << "the explicit end, then the idle end of the second session";
  EXPECT_GE(n.risk_events, 4u) << "pain onset/clear and dropout onset/clear";
  EXPECT_EQ(n.event_overflow, 0u);
}

// A reload (reconfigure) may allocate: new trend capacities re-size the windows, a new
// jump_confirm_frames the aligners' candidate rings. Fusion after it must not: 10 s of running,
// a reconfigure that changes every model group the daemon re-applies on SIGHUP, then 30 s of
// running and finish() counted. Knee IMUs at 500 Hz, so the PTA path runs too.
TEST(RunnerSessionAllocation, NoHeapAllocationAfterReconfigure) {
  testing::GaitParams p;
  p.insole_hz = 200.0;
  p.knee_hz = 500.0;
  p.run_s = 40.0;
  p.duration_s = 40.0;
  testing::GaitSignal gen(p);
  const std::int64_t t0 = p.t0_us;
  const SessionConfig c = testing::test_config(p);
  RunnerSession session(c);
  SessionOutputs out{};

  SessionConfig next = c;
  next.model.knee.accel_angle_sigma_rad *= 2.0;
  next.model.knee.gate_chi2 = 6.63;
  next.model.shank.tilt_sigma_rad *= 2.0;
  next.model.force.force_sigma_bw = 0.05;
  next.model.force.gate_chi2 = 20.0;
  next.model.calibration.time_constant_s = 30.0;
  next.model.trends.rolling_window_s = 60.0;
  next.model.trends.rolling_capacity_steps = 256;
  for (AlignerParams& a : next.model.clock.aligners) a.jump_confirm_frames = 7;
  next.model.clock.reorder.window_us = 200'000;
  next.model.pta_window_s = 0.05;

  bool reconfigured = false;
  Allocations hot;
  std::uint64_t hot_calls = 0, outputs = 0;
  Sample s;
  while (gen.next(s)) {
    if (!reconfigured && s.arrival_t_us >= t0 + 10'000'000) {
      reconfigured = true;
      session.reconfigure(next);
    }
    const Allocations a = count_calls([&] { session.on_sample(s, out); });
    if (reconfigured) {
      hot += a;
      ++hot_calls;
    }
    outputs += static_cast<std::uint64_t>(out.size());
    out.clear();
  }
  hot += count_calls([&] { session.finish(out); });
  std::printf("[measured] %llu calls after reconfigure, %llu outputs, %llu steps; operator new "
              "/ malloc calls after it: %llu/%llu\n",
              static_cast<unsigned long long>(hot_calls), static_cast<unsigned long long>(outputs),
              static_cast<unsigned long long>(session.counters().steps),
              static_cast<unsigned long long>(hot.news),
              static_cast<unsigned long long>(hot.mallocs));
  ASSERT_TRUE(reconfigured);
  EXPECT_EQ(hot.news, 0u) << "expected no operator new after reconfigure, got " << hot.news;
  EXPECT_EQ(hot.mallocs, 0u) << "expected no malloc after reconfigure, got " << hot.mallocs;
  EXPECT_GT(hot_calls, 30'000u) << "30 s at 1400 samples/s";
  EXPECT_GE(session.counters().steps, 100u) << "40 s at 170 spm";
}

}  // namespace
}  // namespace kneeload::fusion
