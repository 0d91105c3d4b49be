// Runs a simulated runner (tools/sim) through a RunnerSession and keeps what it published, so
// the model tests can compare estimates with the simulator's ground truth (MODEL.md §10).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "kneeload/fusion/session.hpp"
#include "kneeload/sim/registry.hpp"
#include "kneeload/sim/simulator.hpp"

namespace kneeload::testing {

// Collects every output without a capacity limit (tests only; the daemon streams to a ring).
class CollectingSink final : public fusion::OutputSink {
 public:
  void emit(const fusion::Output& o) override { outputs.push_back(o); }
  std::vector<fusion::Output> outputs;
};

struct SimRun {
  std::vector<fusion::StepMetrics> steps;
  std::vector<fusion::FusedState> states;
  std::vector<fusion::RiskEvent> events;
  std::vector<fusion::SessionSummary> summaries;
  std::vector<sim::StepTruth> truth;
  fusion::SessionCounters counters;
  fusion::SessionLive live;  // after finish(): the lifetime health counts
  std::uint64_t samples = 0;
};

inline SimRun run_sim(const sim::SimConfig& cfg, const sim::Simulator** keep = nullptr,
                      std::unique_ptr<sim::Simulator>* holder = nullptr,
                      void (*tune)(fusion::SessionConfig&) = nullptr) {
  auto simulator = std::make_unique<sim::Simulator>(cfg);
  fusion::SessionConfig sc = sim::session_config(cfg, 0, 0);
  if (tune != nullptr) tune(sc);
  fusion::RunnerSession session(sc);
  CollectingSink sink;
  fusion::Sample s;
  SimRun run;
  while (simulator->next(s)) {
    session.on_sample(s, sink);
    ++run.samples;
  }
  session.finish(sink);
  for (const fusion::Output& o : sink.outputs) {
    if (const auto* m = std::get_if<fusion::StepMetrics>(&o.body)) run.steps.push_back(*m);
    if (const auto* st = std::get_if<fusion::FusedState>(&o.body)) run.states.push_back(*st);
    if (const auto* e = std::get_if<fusion::RiskEvent>(&o.body)) run.events.push_back(*e);
    if (const auto* su = std::get_if<fusion::SessionSummary>(&o.body)) run.summaries.push_back(*su);
  }
  const auto truths = simulator->step_truths();
  run.truth.assign(truths.begin(), truths.end());
  run.counters = session.counters();
  run.live = session.live();
  if (keep != nullptr && holder != nullptr) {
    *holder = std::move(simulator);
    *keep = holder->get();
  }
  return run;
}

inline double deg(double rad) { return rad * 180.0 / M_PI; }

// An estimated step and the true step it was matched with.
struct MatchedStep {
  const fusion::StepMetrics* est;
  const sim::StepTruth* truth;
};

// Pairs each true step whose IC is at or after from_true_us with the estimated step of that
// side whose IC is nearest, within 60 ms once the constant aligned-clock offset (the median
// nearest-IC difference: the unobservable minimum transport latency) is removed.
inline std::vector<MatchedStep> match_steps(const SimRun& run, std::int64_t from_true_us) {
  std::vector<double> offsets;
  for (const auto& e : run.steps) {
    double best = 1e9;
    for (const auto& t : run.truth) {
      if (t.side != e.side) continue;
      const double d = static_cast<double>(e.ic_t_us - t.ic_t_us);
      if (std::fabs(d) < std::fabs(best)) best = d;
    }
    if (std::fabs(best) < 100'000) offsets.push_back(best);
  }
  std::sort(offsets.begin(), offsets.end());
  const double offset_us = offsets.empty() ? 0.0 : offsets[offsets.size() / 2];
  std::vector<MatchedStep> matched;
  std::vector<bool> used(run.steps.size(), false);
  for (const auto& t : run.truth) {
    std::size_t best = run.steps.size();
    double best_d = 60'000;
    for (std::size_t i = 0; i < run.steps.size(); ++i) {
      if (used[i] || run.steps[i].side != t.side) continue;
      const double d =
          std::fabs(static_cast<double>(run.steps[i].ic_t_us - t.ic_t_us) - offset_us);
      if (d < best_d) {
        best_d = d;
        best = i;
      }
    }
    if (best == run.steps.size()) continue;
    used[best] = true;
    if (t.ic_t_us >= from_true_us) matched.push_back({&run.steps[best], &t});
  }
  return matched;
}

inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(std::clamp(p, 0.0, 1.0) * static_cast<double>(v.size() - 1));
  return v[i];
}

inline double rms(const std::vector<double>& v) {
  double s = 0.0;
  for (double x : v) s += x * x;
  return v.empty() ? std::numeric_limits<double>::quiet_NaN() : std::sqrt(s / static_cast<double>(v.size()));
}

inline double mean_abs(const std::vector<double>& v) {
  double s = 0.0;
  for (double x : v) s += std::fabs(x);
  return v.empty() ? std::numeric_limits<double>::quiet_NaN() : s / static_cast<double>(v.size());
}

}  // namespace kneeload::testing
