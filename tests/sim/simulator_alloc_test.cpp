// Proves the hot-path claim of simulator.hpp: after construction, next(), next_step_truth() and
// the truth queries perform no heap allocation. This binary replaces the global allocation
// functions with counting ones; it is its own test binary so no other test runs with them.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "kneeload/sim/simulator.hpp"
#include "counting_new.hpp"

namespace kneeload::sim {
namespace {

std::uint64_t allocations() { return kneeload::alloc_count::new_calls(); }

void* volatile g_sink = nullptr;

TEST(SimulatorAlloc, CounterSeesAllocations) {
  const std::uint64_t before = allocations();
  g_sink = ::operator new(16);
  ::operator delete(g_sink);
  EXPECT_EQ(allocations(), before + 1);
}

TEST(SimulatorAlloc, StreamingAndTruthQueriesDoNotAllocate) {
  // The fault scenario: every delivery path (dropouts, duplicates, reorders, jumps, cells).
  SimConfig c;
  c.duration_s = 120.0;
  c.knee.sleeve = true;
  c.plan = make_scenario(Scenario::kFaults, c.runner, ScenarioTiming{20.0, 80.0});
  Simulator sim(c);
  const std::uint64_t before = allocations();
  fusion::Sample s{};
  SampleInfo info{};
  StepTruth t{};
  std::uint64_t n = 0;
  double sink = 0.0;
  while (sim.next(s, &info)) {
    ++n;
    while (sim.next_step_truth(t)) sink += t.contact_time_s;
    if (n % 97 == 0) sink += sim.truth_at(fusion::Side::kLeft, info.true_t_us).force_n;
  }
  while (sim.next_step_truth(t)) sink += t.contact_time_s;
  EXPECT_EQ(allocations(), before) << "allocations while streaming " << n << " samples";
  EXPECT_GT(n, 50000u);
  EXPECT_GT(sink, 0.0);
}

}  // namespace
}  // namespace kneeload::sim
