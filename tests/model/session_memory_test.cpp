// Issue 8's memory target, measured: everything the daemon keeps per station must stay within
// 32 KiB so 1,000 stations fit in 64 MiB. A station has one runner, and a runner's state is one
// RunnerSession; this test reports and bounds its peak live heap bytes through a simulated
// session long enough to fill every window (11 min: the baseline closes at minute 8 of the
// session, the 2-min rolling windows are full from minute 2), and prints the breakdown per
// component (sizeof, heap at construction).
//
// The bytes come from tests/support/live_bytes_new.hpp, linked into this binary alone: exact
// live bytes of the blocks allocated while the session (or a component under measurement) runs,
// not the simulator's.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "kneeload/fusion/session.hpp"
#include "kneeload/sim/registry.hpp"
#include "kneeload/sim/simulator.hpp"
#include "live_bytes_new.hpp"

namespace kneeload::fusion {
namespace {

// The budget this session reaches today (155.7 KiB measured, 2 % margin), so a regression
// fails here. 13 KiB of it are GaitTrends' rolling windows kept sorted per metric (2 sides x 14
// metrics x 240 halves), bought for ~40 us less CPU per step: a third of an insole sample's.
// Issue 8 leaves a session 24 KiB (32 KiB per station less the daemon's arrays,
// tests/daemon/station_memory_test): not met. The reorder pool is ~92 KB of it (512 packed
// samples of 144 B with 16-cell insoles, plus keys), though only the slots ever held at once
// are touched (~100 at these rates); one pool per worker sized by the total rate is what would
// bring the allocation down.
constexpr std::int64_t kSessionBudgetBytes = 159 * 1024;

using live_bytes::Measured;
using live_bytes::measure;

// Heap bytes a component keeps after construction; it is destroyed uncounted.
template <class T, class... Args>
std::int64_t heap_of(const Args&... args) {
  std::unique_ptr<T> keep;
  const Measured m = measure([&] { keep = std::make_unique<T>(args...); });
  return m.live - static_cast<std::int64_t>(sizeof(T));
}

class NullSink final : public OutputSink {
 public:
  void emit(const Output&) override { ++outputs; }
  std::uint64_t outputs = 0;
};

struct SessionRun {
  std::int64_t construction = 0;  // live heap bytes after the constructor
  std::int64_t peak = 0;          // peak live heap bytes, construction to finish()
  std::uint64_t news_after_construction = 0;
  std::size_t max_buffered = 0;  // most samples the reorder window held at once
  std::uint64_t samples = 0;
  std::uint64_t steps = 0;
};

// One simulated healthy runner through a session: the daemon's calls, counted.
SessionRun run_session(const sim::SimConfig& cfg, const SessionConfig& sc) {
  auto simulator = std::make_unique<sim::Simulator>(cfg);
  std::unique_ptr<RunnerSession> session;
  SessionRun r;
  // Shared, as the daemon's registry shares it with the session: the config is counted on the
  // daemon's side (tests/daemon/station_memory_test), once per runner.
  const auto shared = std::make_shared<const SessionConfig>(sc);
  const Measured ctor = measure([&] { session = std::make_unique<RunnerSession>(shared); });
  r.construction = ctor.live;
  NullSink sink;
  Sample s;
  std::int64_t peak = ctor.peak;
  std::int64_t live = ctor.live;
  while (simulator->next(s)) {
    const Measured m = measure([&] { session->on_sample(s, sink); });
    peak = std::max(peak, live + m.peak);
    live += m.live;
    r.news_after_construction += m.news;
    r.max_buffered = std::max(r.max_buffered, session->buffered());
    ++r.samples;
  }
  const Measured fin = measure([&] { session->finish(sink); });
  peak = std::max(peak, live + fin.peak);
  r.news_after_construction += fin.news;
  r.peak = peak;
  r.steps = session->counters().steps;
  return r;
}

sim::SimConfig sim_config(double knee_hz, double insole_hz, double duration_s) {
  sim::SimConfig cfg;
  cfg.seed = 8;
  cfg.duration_s = duration_s;
  cfg.knee.rate_hz = knee_hz;
  cfg.insole.rate_hz = insole_hz;
  return cfg;
}

// The first block a RunnerSession allocates is its State (a new-expression allocates before it
// constructs): the session's inline state, everything that is not in a component's own heap.
std::size_t state_inline_bytes(const SessionConfig& sc) {
  live_bytes::record_next_size();
  const auto shared = std::make_shared<const SessionConfig>(sc);  // before: not the first block
  const Measured m = measure([&] { const RunnerSession session(shared); });
  EXPECT_GT(m.news, 0u);
  return live_bytes::recorded_size();
}

void print_breakdown(const SessionConfig& sc) {
  // As the session builds them: the traces sized by model.stance_trace_samples.
  LoadModelParams load;
  load.max_stance_samples = sc.model.stance_trace_samples;
  CopPathParams cop;
  cop.max_stance_samples = sc.model.stance_trace_samples;
  std::printf("[measured] per session, bytes: sizeof | heap after construction\n");
  std::printf("  RunnerSession (shares SessionConfig %zu) %6zu | -\n", sizeof(SessionConfig),
              sizeof(RunnerSession));
  std::printf("  RunnerClock (6 aligners, reorder)     %6zu | %lld (reorder capacity %u)\n",
              sizeof(RunnerClock),
              static_cast<long long>(heap_of<RunnerClock>(
                  sc.model.clock, std::max(sc.insoles[0].cell_count, sc.insoles[1].cell_count))),
              sc.model.clock.reorder.capacity);
  const int cells = std::max(sc.insoles[0].cell_count, sc.insoles[1].cell_count);
  std::printf("    of which ReorderBuffer              %6zu | %lld (slots of %zu B: %d-cell insoles)\n",
              sizeof(ReorderBuffer),
              static_cast<long long>(heap_of<ReorderBuffer>(sc.model.clock.reorder, cells)),
              ReorderBuffer::slot_bytes(cells), cells);
  std::printf("    of which one ClockAligner           %6zu | %lld\n", sizeof(ClockAligner),
              static_cast<long long>(heap_of<ClockAligner>(sc.model.clock.aligners[0])));
  std::printf("  GaitTrends                            %6zu | %lld (rolling %d, baseline %d steps/side)\n",
              sizeof(GaitTrends), static_cast<long long>(heap_of<GaitTrends>(sc.model.trends)),
              sc.model.trends.rolling_capacity_steps, sc.model.trends.baseline_capacity_steps);
  std::printf("  StepLoad (x2)                         %6zu | %lld (trace %d points)\n",
              sizeof(StepLoad), static_cast<long long>(heap_of<StepLoad>(load)),
              load.max_stance_samples);
  std::printf("  CopPath (x2)                          %6zu | %lld (trace %d points)\n",
              sizeof(CopPath), static_cast<long long>(heap_of<CopPath>(cop)),
              cop.max_stance_samples);
  std::printf("  RunnerSession::State (inline, of it)  %6zu | -\n", state_inline_bytes(sc));
  std::printf("  RiskRules                             %6zu | -\n", sizeof(RiskRules));
  std::printf("  RiskEventBuffer (one per thread)      %6zu | -\n", sizeof(RiskEventBuffer));
  std::printf("  KneeAngleFilter, ShankTiltFilter, ForceFilter (x2 each) %zu, %zu, %zu\n",
              sizeof(KneeAngleFilter), sizeof(ShankTiltFilter), sizeof(ForceFilter));
}

void report(const char* what, const SessionRun& r) {
  std::printf("[measured] %s: %llu samples, %llu steps; heap after construction %lld B, peak %lld "
              "B (%.1f KiB); allocations after construction %llu; reorder window held at most "
              "%zu samples\n",
              what, static_cast<unsigned long long>(r.samples),
              static_cast<unsigned long long>(r.steps), static_cast<long long>(r.construction),
              static_cast<long long>(r.peak), static_cast<double>(r.peak) / 1024.0,
              static_cast<unsigned long long>(r.news_after_construction), r.max_buffered);
}

// Knees at 200 Hz and insoles at 100 Hz (MODEL.md §0: the preferred and the Moticon rates),
// a treadmill at 10 Hz, frames of 10: 11 simulated minutes of a healthy run.
TEST(SessionMemory, ReferenceRatesStayWithinTheSessionBudget) {
  const sim::SimConfig cfg = sim_config(200.0, 100.0, 660.0);
  const SessionConfig sc = sim::session_config(cfg, 0, 0);
  print_breakdown(sc);
  const SessionRun r = run_session(cfg, sc);
  report("knees 200 Hz, insoles 100 Hz, 660 s", r);
  EXPECT_GE(r.steps, 1500u) << "11 min at ~170 spm";
  EXPECT_EQ(r.news_after_construction, 0u) << "fusion allocated after construction";
  EXPECT_EQ(r.peak, r.construction) << "the peak must be what the constructor allocated";
  EXPECT_LT(r.max_buffered, sc.model.clock.reorder.capacity)
      << "the default reorder capacity must hold the reference rates without early releases";
  EXPECT_LE(r.peak, kSessionBudgetBytes)
      << "peak live heap of one session: expected <= " << kSessionBudgetBytes << " B, got "
      << r.peak;
}

// The simulator's highest rates (1 kHz knees and insoles, MODEL.md §0: loading rates need
// >= 500 Hz): the heap does not depend on the rates, but the reorder window needs more room.
// 150 s are enough: the windows' capacities are fixed, only the reorder occupancy grows.
TEST(SessionMemory, HighestRatesNeedMoreReorderCapacityNotMoreHeap) {
  const sim::SimConfig cfg = sim_config(1000.0, 1000.0, 150.0);
  SessionConfig sc = sim::session_config(cfg, 0, 0);
  const SessionRun r = run_session(cfg, sc);
  report("knees 1 kHz, insoles 1 kHz, 150 s, default reorder capacity", r);
  EXPECT_EQ(r.news_after_construction, 0u);
  EXPECT_EQ(r.peak, r.construction);

  // With room to spare, the window shows what these rates need.
  sc.model.clock.reorder.capacity = 4096;
  const SessionRun big = run_session(cfg, sc);
  report("same, reorder capacity 4096", big);
  std::printf("[measured] reorder capacity these rates need: %zu samples (default %u)\n",
              big.max_buffered, SessionConfig{}.model.clock.reorder.capacity);
  EXPECT_GT(big.max_buffered, 0u);
}

// The reorder pool is sized by [model.clock] capacity (default 512, for 6 devices at 200 Hz),
// and it is most of a session's heap. Sized for the reference runner instead, (150 ms window +
// 90 ms frame span) x 600 samples/s = 144, +10 %: what a session costs then, with the same
// steps out and no early release. This is what an install of 1,000 such stations can set.
TEST(SessionMemory, ReorderCapacitySizedForTheReferenceRatesHoldsThemWithLittleMoreThanHalfTheHeap) {
  const sim::SimConfig cfg = sim_config(200.0, 100.0, 660.0);
  SessionConfig sc = sim::session_config(cfg, 0, 0);
  const SessionRun ref = run_session(cfg, sc);
  sc.model.clock.reorder.capacity = 160;
  const SessionRun r = run_session(cfg, sc);
  report("knees 200 Hz, insoles 100 Hz, 660 s, reorder capacity 160", r);
  EXPECT_EQ(r.news_after_construction, 0u);
  EXPECT_EQ(r.peak, r.construction);
  EXPECT_LT(r.max_buffered, sc.model.clock.reorder.capacity) << "no early release";
  EXPECT_EQ(r.steps, ref.steps);
  // Each slot is a packed sample (144 B with the simulator's 16-cell insoles), its heap key
  // (24 B) and free-list entry (4 B).
  EXPECT_GE(ref.peak - r.peak,
            static_cast<std::int64_t>((512 - 160) * ReorderBuffer::slot_bytes(sc.insoles[0].cell_count)));
  EXPECT_LE(r.peak, 99 * 1024) << "96.5 KiB measured";
}

// The baseline keeps no steps: each metric's median of minutes 3-8 is a streaming estimate
// (stats.hpp StreamingMedian, P²). Its error against the exact median of the same steps, on the
// simulator's steps (healthy, and the fatigue scenario, whose baseline is as steady), in the
// metric's units and in interquartile ranges of the baseline steps.
TEST(SessionMemory, StreamingBaselineIsCloseToTheExactMedianOfMinutesThreeToEight) {
  struct Metric {
    const char* name;
    float StepMetrics::*field;
  };
  const std::vector<Metric> metrics{
      {"contact_time_s", &StepMetrics::contact_time_s},
      {"cadence_spm", &StepMetrics::cadence_spm},
      {"peak_force_bw", &StepMetrics::peak_force_bw},
      {"valr_bw_per_s", &StepMetrics::valr_bw_per_s},
      {"knee_angle_ic_rad", &StepMetrics::knee_angle_ic_rad},
      {"knee_angle_peak_rad", &StepMetrics::knee_angle_peak_rad},
      {"peak_pfj_stress_mpa", &StepMetrics::peak_pfj_stress_mpa},
      {"itb_zone_time_s", &StepMetrics::itb_zone_time_s},
  };
  class StepSink final : public OutputSink {
   public:
    void emit(const Output& o) override {
      if (const auto* m = std::get_if<StepMetrics>(&o.body)) steps.push_back(*m);
    }
    std::vector<StepMetrics> steps;
  };
  double worst = 0.0;
  for (const sim::Scenario scenario : {sim::Scenario::kHealthy, sim::Scenario::kFatigue}) {
    sim::SimConfig cfg = sim_config(200.0, 100.0, 600.0);
    cfg.plan = sim::make_scenario(scenario, cfg.runner);
    sim::Simulator simulator(cfg);
    RunnerSession session(sim::session_config(cfg, 0, 0));
    StepSink sink;
    Sample s;
    while (simulator.next(s)) session.on_sample(s, sink);
    session.finish(sink);
    ASSERT_FALSE(sink.steps.empty());
    const std::int64_t t0 = sink.steps.front().ic_t_us;
    for (const Metric& metric : metrics) {
      for (const Side side : {Side::kLeft, Side::kRight}) {
        std::vector<double> values;
        StreamingMedian streaming;
        for (const StepMetrics& m : sink.steps) {
          const std::int64_t dt = m.to_t_us - t0;
          const double v = static_cast<double>(m.*metric.field);
          if (m.side != side || dt < 180'000'000 || dt >= 480'000'000 || !std::isfinite(v)) continue;
          values.push_back(v);
          streaming.add(v);
        }
        ASSERT_GE(values.size(), 300u) << metric.name;
        std::vector<double> sorted = values;
        std::sort(sorted.begin(), sorted.end());
        const double iqr = sorted[sorted.size() * 3 / 4] - sorted[sorted.size() / 4];
        const double exact = median_in_place(values);
        const double error = std::fabs(streaming.median() - exact);
        std::printf("[measured] %s %s %s: %zu steps, exact median %.6g, streaming %.6g, error %.3g "
                    "(%.4f IQR, %.3f %%)\n",
                    sim::scenario_name(scenario), side == Side::kLeft ? "left" : "right",
                    metric.name, sorted.size(), exact, streaming.median(), error,
                    error / iqr, 100.0 * error / std::fabs(exact));
        worst = std::max(worst, error / iqr);
        EXPECT_LE(error, 0.1 * iqr) << metric.name << ": expected within 0.1 IQR (" << 0.1 * iqr
                                    << ") of the exact " << exact << ", got " << streaming.median();
      }
    }
  }
  std::printf("[measured] worst streaming baseline error: %.4f IQR\n", worst);
}

}  // namespace
}  // namespace kneeload::fusion
