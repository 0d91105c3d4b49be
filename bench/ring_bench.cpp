// SpscRing vs boost::lockfree::spsc_queue: two threads pass 64-byte items. The ratio between
// the two, measured in the same run, is the figure to quote; absolute items/s swing with
// whatever else shares the 2 cores.
#include <benchmark/benchmark.h>

#include <boost/lockfree/spsc_queue.hpp>
#include <cstdint>
#include <thread>

#include "daemon/spsc_ring.hpp"

namespace {

struct Item {
  std::uint64_t seq;
  char pad[56];
};
static_assert(sizeof(Item) == 64);

constexpr std::uint64_t kItems = 1'000'000;

template <typename Push, typename Pop>
void run_pair(benchmark::State& state, Push push, Pop pop) {
  for (auto _ : state) {
    std::thread producer([&] {
      for (std::uint64_t i = 0; i < kItems;) {
        if (push(Item{i, {}})) ++i;
      }
    });
    std::uint64_t sum = 0;
    for (std::uint64_t got = 0; got < kItems;) {
      Item item;
      if (pop(item)) {
        sum += item.seq;
        ++got;
      }
    }
    producer.join();
    if (sum != kItems * (kItems - 1) / 2) state.SkipWithError("checksum mismatch");
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kItems));
}

void BM_SpscRing(benchmark::State& state) {
  kneeload::daemon::SpscRing<Item> ring(static_cast<std::size_t>(state.range(0)));
  run_pair(
      state, [&](const Item& i) { return ring.try_push(i); },
      [&](Item& out) {
        Item* f = ring.front();
        if (f == nullptr) return false;
        out = *f;
        ring.pop();
        return true;
      });
}

void BM_BoostSpscQueue(benchmark::State& state) {
  boost::lockfree::spsc_queue<Item> queue(static_cast<std::size_t>(state.range(0)));
  run_pair(
      state, [&](const Item& i) { return queue.push(i); }, [&](Item& out) { return queue.pop(out); });
}

BENCHMARK(BM_BoostSpscQueue)->Arg(1024)->Arg(65536)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SpscRing)->Arg(1024)->Arg(65536)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
