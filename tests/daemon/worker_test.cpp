// The worker's hand-off to the publisher when outputs come without input (8326b10).
//
// A worker tells its OutputConsumer (in the daemon the Publisher) after each input item that made
// outputs and when its input runs dry, but an idle-flush sweep emits outputs with no input item at
// all (and a reload that removes runners, one input item, emits a summary per runner): without a
// call per kRingEvery outputs, the outputs of the sweep would wait in the ring until it fills. Here
// the consumer rings a real Doorbell on which a "publisher" thread waits with a 60 s timeout, so
// only the worker's calls can wake it, and the sweep's outputs must reach it within seconds.
//
// Deterministic: the worker calls at every 64th output it pushes, so the consumer, woken by the
// last of those calls, has seen every output up to it: all but at most 63 of the total. Without
// the call every output after the input ran dry stays unseen until the 60 s timeout.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <thread>
#include <variant>
#include <vector>

#include "daemon/doorbell.hpp"
#include "daemon/ingest.hpp"  // steady_now_us: the worker's clock, which next_timer_us() is on
#include "daemon/registry.hpp"
#include "daemon/spsc_ring.hpp"
#include "daemon/station_gauges.hpp"
#include "daemon/work_item.hpp"
#include "daemon/worker.hpp"
#include "../support/eventually.hpp"
#include "../support/on_exit.hpp"
#include "kneeload/sim/registry.hpp"
#include "kneeload/sim/simulator.hpp"

namespace kneeload::daemon {
namespace {

using namespace std::chrono_literals;

constexpr std::uint32_t kRunners = 32;
constexpr std::uint32_t kDevicesPerRunner = 8;  // room for the simulator's device indices
// The margin for fusing the whole input before any runner goes quiet for this long: the
// runners are fed round-robin, so they all go quiet at about the same time, and the input takes
// well under a second even under ThreadSanitizer (scripts/test.sh runs this test there too).
// The sweep that flushes them all comes about two seconds after the input stops.
constexpr std::int64_t kIdleFlushUs = 2'000'000;

using kneeload::testing::eventually;

// A consumer that rings a doorbell, so the thread waiting on it sees each of the worker's calls.
class BellConsumer final : public OutputConsumer {
 public:
  explicit BellConsumer(Doorbell& bell) : bell_(bell) {}
  void outputs_ready() override { bell_.ring(); }

 private:
  Doorbell& bell_;
};

TEST(WorkerHandOff, AnIdleFlushSweepWakesASleepingPublisher) {
  sim::SimConfig sim;
  sim.seed = 3;
  sim.duration_s = 1.0;  // the shortest the simulator takes
  std::vector<fusion::Sample> stream;
  {
    sim::Simulator simulator(sim);
    fusion::Sample s;
    while (simulator.next(s)) stream.push_back(s);
  }
  ASSERT_GT(stream.size(), 200u);

  Registry registry;
  registry.generation = 1;
  registry.idle_flush_us = kIdleFlushUs;
  for (std::uint32_t r = 0; r < kRunners; ++r) {
    registry.sessions.push_back(std::make_shared<const fusion::SessionConfig>(sim::session_config(sim, r, r)));
  }
  const std::size_t items = stream.size() * kRunners;
  SpscRing<WorkItem> input(items + 16);
  SpscRing<OutItem> output(items + 16);  // holds everything: no output may be lost to a full ring
  Doorbell input_bell;
  Doorbell output_bell;
  auto gauges = std::make_unique<StationGauges[]>(kRunners);
  BellConsumer consumer(output_bell);
  Worker worker(0, 1, input, input_bell, output, consumer, registry, gauges.get());

  std::atomic<std::uint64_t> received{0};
  std::atomic<bool> stop{false};
  std::thread publisher([&] {
    while (!stop.load()) {
      bool any = false;
      while (OutItem* item = output.front()) {
        if (std::holds_alternative<fusion::Output>(*item)) received.fetch_add(1);
        output.pop();
        any = true;
      }
      if (!any) output_bell.wait([&] { return output.front() == nullptr && !stop.load(); }, 60s);
    }
  });
  std::thread worker_thread([&] { worker.run(); });
  // Whatever an assertion below ends, both threads stop and are joined (a joinable std::thread
  // destroyed would terminate the test binary instead of failing the test).
  const testing::OnExit join_both([&] {
    while (!input.try_push(WorkItem{DrainMarker{}})) std::this_thread::sleep_for(1ms);
    input_bell.ring();
    worker_thread.join();
    stop.store(true);
    output_bell.ring();
    publisher.join();
  });

  // Every runner's stream, round-robin sample by sample, so all runners go quiet together, each
  // holding about a reorder window (150 ms) of samples that only the idle flush can release.
  for (const fusion::Sample& original : stream) {
    for (std::uint32_t r = 0; r < kRunners; ++r) {
      fusion::Sample s = original;
      s.runner = r;
      s.station = r;
      s.device = r * kDevicesPerRunner + s.device;
      ASSERT_TRUE(input.try_push(WorkItem{s}));
    }
  }
  input_bell.ring();
  ASSERT_TRUE(eventually([&] { return worker.counters().samples.get() == items; }, 60s))
      << worker.counters().samples.get() << " of " << items << " samples fused";
  // The worker called when its input ran dry, after its last output: the consumer catches up
  // with the worker's count, which then stays put until the sweep.
  ASSERT_TRUE(eventually([&] { return received.load() == worker.counters().outputs.get(); }, 10s))
      << received.load() << " of " << worker.counters().outputs.get();
  const std::uint64_t before_flush = received.load();

  // The sweep: outputs with no input. Wait until the worker's count has risen and settled.
  std::uint64_t total = before_flush;
  ASSERT_TRUE(eventually(
      [&] {
        const std::uint64_t now = worker.counters().outputs.get();
        if (now == total && now > before_flush) return true;
        total = now;
        std::this_thread::sleep_for(300ms);
        return false;
      },
      30s))
      << "no idle flush: outputs stayed at " << total;
  ASSERT_GE(total - before_flush, 128u) << "too few flushed outputs to show anything";
  std::printf("[measured] %llu outputs while fusing the input, %llu more from the idle flush\n",
              static_cast<unsigned long long>(before_flush), static_cast<unsigned long long>(total - before_flush));
  EXPECT_EQ(worker.counters().dropped_output_ring_full.get(), 0u) << "the output ring holds every output";

  // The consumer's wait is 60 s: only the worker's calls during the sweep can have woken it.
  EXPECT_TRUE(eventually([&] { return received.load() + 63 >= total; }, 10s))
      << "the consumer saw " << received.load() << " of " << total << " outputs; " << (total - before_flush)
      << " came from the idle flush, with no input item to announce them";
}

// A consumer that only counts the worker's calls (poll() runs on the test's own thread).
class CountingConsumer final : public OutputConsumer {
 public:
  void outputs_ready() override { ++calls; }
  int calls = 0;
};

// poll() is run() without the sleep, for pipeline.workers = 0, where the ingest thread polls the
// one worker after each frame and after each wait on its socket. On one thread, step by step:
// it takes at most max_items, says whether the ring is empty, runs the idle sweep when due with
// no input at all, tells the consumer, and ends on a DrainMarker.
TEST(WorkerPoll, TakesABoundedBatchRunsTheIdleSweepWithoutInputAndEndsOnDrain) {
  sim::SimConfig sim;
  sim.seed = 5;
  sim.duration_s = 1.0;
  std::vector<fusion::Sample> stream;
  {
    sim::Simulator simulator(sim);
    fusion::Sample s;
    while (simulator.next(s)) stream.push_back(s);
  }
  ASSERT_GT(stream.size(), 200u);
  constexpr std::int64_t kFlushUs = 200'000;  // sweeps every 50 ms (a quarter of it)
  Registry registry;
  registry.generation = 1;
  registry.idle_flush_us = kFlushUs;
  registry.sessions.push_back(std::make_shared<const fusion::SessionConfig>(sim::session_config(sim, 0, 0)));
  SpscRing<WorkItem> input(stream.size() + 4);
  SpscRing<OutItem> output(stream.size() + 64);
  Doorbell bell;  // never waited on: poll() does not sleep
  auto gauges = std::make_unique<StationGauges[]>(1);
  CountingConsumer consumer;
  const std::int64_t built_us = steady_now_us();
  Worker worker(0, 1, input, bell, output, consumer, registry, gauges.get());
  EXPECT_GE(worker.next_timer_us(), built_us);
  EXPECT_LE(worker.next_timer_us(), steady_now_us() + kFlushUs / 4);

  EXPECT_EQ(worker.poll(64), Worker::PollResult::kIdle) << "an empty ring";
  for (const fusion::Sample& s : stream) ASSERT_TRUE(input.try_push(WorkItem{s}));
  EXPECT_EQ(worker.poll(64), Worker::PollResult::kMore);
  EXPECT_EQ(worker.counters().samples.get(), 64u) << "at most max_items per poll";
  while (worker.poll(64) == Worker::PollResult::kMore) {
  }
  EXPECT_EQ(worker.counters().samples.get(), stream.size());
  EXPECT_EQ(input.front(), nullptr);
  const std::uint64_t fused_outputs = worker.counters().outputs.get();
  ASSERT_GT(fused_outputs, 0u);
  EXPECT_GT(consumer.calls, 0) << "the consumer is told of the outputs";

  // The reorder window still holds the last ~150 ms. No input comes; once the flush interval
  // has passed and a sweep is due, a poll of the empty ring releases it.
  const int calls_before = consumer.calls;
  std::int64_t swept_at_us = 0;
  ASSERT_TRUE(eventually([&] {
    std::this_thread::sleep_for(std::chrono::microseconds(worker.us_until_next_timer()));
    swept_at_us = steady_now_us();
    return worker.poll(64) == Worker::PollResult::kIdle && worker.counters().outputs.get() > fused_outputs;
  }, 5s)) << "no idle sweep from poll() without input";
  EXPECT_GT(consumer.calls, calls_before) << "the swept outputs are announced";
  EXPECT_GT(worker.next_timer_us(), swept_at_us) << "the sweep that ran scheduled the next one";

  ASSERT_TRUE(input.try_push(WorkItem{DrainMarker{}}));
  EXPECT_EQ(worker.poll(64), Worker::PollResult::kDrained);
  bool marker_last = false;
  while (OutItem* item = output.front()) {
    marker_last = std::holds_alternative<DrainMarker>(*item);
    output.pop();
  }
  EXPECT_TRUE(marker_last) << "the DrainMarker follows every output";
  EXPECT_EQ(worker.counters().dropped_output_ring_full.get(), 0u);
}

// A reload that shortens pipeline.idle_flush_ms applies at once: the worker's next sweep moves
// to a quarter of the new flush, not the one the old interval scheduled (a 500 ms flush sweeps
// every 125 ms, so a quiet runner's tail came up to 125 ms late). A longer flush keeps the sweep
// already due, which releases nothing early; the sweeps after it follow the longer interval.
// Step by step on one thread, like the test above.
TEST(WorkerPoll, AReloadThatShortensTheIdleFlushReschedulesTheNextSweep) {
  constexpr std::int64_t kLongFlushUs = 500'000;   // sweeps every 125 ms
  constexpr std::int64_t kShortFlushUs = 200'000;  // sweeps every 50 ms
  sim::SimConfig sim;
  sim.seed = 5;
  Registry long_flush;
  long_flush.generation = 1;
  long_flush.idle_flush_us = kLongFlushUs;
  long_flush.sessions.push_back(std::make_shared<const fusion::SessionConfig>(sim::session_config(sim, 0, 0)));
  Registry short_flush = long_flush;
  short_flush.generation = 2;
  short_flush.idle_flush_us = kShortFlushUs;
  Registry long_again = long_flush;
  long_again.generation = 3;
  SpscRing<WorkItem> input(8);
  SpscRing<OutItem> output(64);
  Doorbell bell;  // never waited on: poll() does not sleep
  auto gauges = std::make_unique<StationGauges[]>(1);
  CountingConsumer consumer;
  Worker worker(0, 1, input, bell, output, consumer, long_flush, gauges.get());
  const std::int64_t first_sweep_us = worker.next_timer_us();

  ASSERT_TRUE(input.try_push(WorkItem{ConfigChange{&short_flush}}));
  const std::int64_t before_us = steady_now_us();
  EXPECT_EQ(worker.poll(64), Worker::PollResult::kIdle);
  EXPECT_EQ(worker.generation_seen(), 2u);
  const std::int64_t short_sweep_us = worker.next_timer_us();
  EXPECT_LT(short_sweep_us, first_sweep_us) << "the sweep the 500 ms flush scheduled was kept";
  EXPECT_GE(short_sweep_us, before_us);
  EXPECT_LE(short_sweep_us, steady_now_us() + kShortFlushUs / 4);

  // Back to 500 ms before that sweep is due (50 ms: a poll takes microseconds): it stays.
  ASSERT_TRUE(input.try_push(WorkItem{ConfigChange{&long_again}}));
  const std::int64_t reloaded_us = steady_now_us();
  EXPECT_EQ(worker.poll(64), Worker::PollResult::kIdle);
  EXPECT_EQ(worker.generation_seen(), 3u);
  if (reloaded_us < short_sweep_us) {
    EXPECT_EQ(worker.next_timer_us(), short_sweep_us);
  }

  // Once it has run, the next is 125 ms on.
  std::this_thread::sleep_for(std::chrono::microseconds(std::max<std::int64_t>(short_sweep_us - steady_now_us(), 0)));
  const std::int64_t swept_us = steady_now_us();
  EXPECT_EQ(worker.poll(64), Worker::PollResult::kIdle);
  EXPECT_GE(worker.next_timer_us(), swept_us + kLongFlushUs / 4);
  EXPECT_LE(worker.next_timer_us(), steady_now_us() + kLongFlushUs / 4);
}

}  // namespace
}  // namespace kneeload::daemon
