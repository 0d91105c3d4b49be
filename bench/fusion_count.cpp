// fusion_count: a small driver for instruction counts per fused sample (issue 8), which are
// stable on a noisy machine where timings are not. bench/callgrind.sh runs it under
// valgrind --tool=callgrind twice per kind, with n = 0 and with n = N, and quotes
// (Ir(N) − Ir(0)) / N: everything else (rendering the recording, building the session, the
// warm-up) is identical in both runs and cancels.
//
//   fusion_count <knee|insole|runner> <n>   warm up, then fuse n more samples of that stream
//   fusion_count digest
//       digests (FNV-1a) of what the model computes, one line each: every output of the three
//       streams and of the nine simulator scenarios (30 min each, faults and rule onsets
//       included); the state (x, P) of each filter after every predict + update over the
//       recorded data; GaitTrends' rolling medians after every step of a synthetic session.
//       Two builds that print the same lines computed the same bits (string literals are
//       hashed by content, not address). Takes about a minute.
//
// Warm-up: every sample of the stream that arrived in the recording's first 60 s (standing,
// the start blend, the filters and the calibration loop settling, the session open), so the
// counted samples are steady running.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <variant>

#include "recording.hpp"

namespace {

using namespace kneeload;

constexpr std::int64_t kWarmupUs = 60'000'000;

class CountingSink final : public fusion::OutputSink {
 public:
  void emit(const fusion::Output&) override { ++outputs; }
  std::uint64_t outputs = 0;
};

// FNV-1a over outputs, with every string literal (rule evidence names, the load model id)
// hashed by its text: a pointer's value differs between two builds of the same code.
class Digest {
 public:
  void add(const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) hash = (hash ^ b[i]) * 1099511628211ull;
  }
  template <class T>
  void add(const T& v) {
    add(&v, sizeof v);
  }
  std::uint64_t hash = 1469598103934665603ull;
};

class DigestSink final : public fusion::OutputSink {
 public:
  void emit(const fusion::Output& o) override {
    ++count[o.body.index()];
    fusion::Output copy = o;
    if (auto* e = std::get_if<fusion::RiskEvent>(&copy.body)) {
      add_text(e->model_id);
      e->model_id = nullptr;
      for (fusion::Evidence& ev : e->evidence) {
        add_text(ev.metric);
        ev.metric = nullptr;
      }
    }
    digest.add(copy);
  }
  Digest digest;
  std::uint64_t count[std::variant_size_v<fusion::OutputBody>] = {};

 private:
  void add_text(const char* s) {
    if (s != nullptr) digest.add(s, std::strlen(s) + 1);
  }
};

void print_outputs(const char* name, std::size_t samples, const DigestSink& sink) {
  std::printf("%-22s samples=%-7zu states=%-6llu steps=%-5llu events=%-4llu summaries=%llu %016llx\n",
              name, samples, static_cast<unsigned long long>(sink.count[0]),
              static_cast<unsigned long long>(sink.count[1]),
              static_cast<unsigned long long>(sink.count[2]),
              static_cast<unsigned long long>(sink.count[3]),
              static_cast<unsigned long long>(sink.digest.hash));
}

template <int N>
void add_state(Digest& d, const fusion::KalmanFilter<N>& kf) {
  d.add(kf.state().data(), sizeof(double) * N);
  d.add(kf.covariance().data(), sizeof(double) * N * N);
}

template <class Filter, class Input, class Step>
void print_filter(const char* name, const std::vector<Input>& inputs, Step step) {
  Filter f;
  Digest d;
  for (const Input& in : inputs) {
    d.add(step(f, in));
    add_state(d, f.kalman());
  }
  std::printf("%-22s calls=%-9zu %016llx\n", name, inputs.size(),
              static_cast<unsigned long long>(d.hash));
}

void digest_all() {
  const bench::Recording& rec = bench::healthy_runner();
  const fusion::SensorKind knee = fusion::SensorKind::kKnee;
  const fusion::SensorKind insole = fusion::SensorKind::kInsole;
  const struct {
    const char* name;
    const fusion::SensorKind* kind;
  } streams[] = {{"healthy/knee", &knee}, {"healthy/insole", &insole}, {"healthy/runner", nullptr}};
  for (const auto& st : streams) {
    const std::vector<fusion::Sample> stream = bench::stream_of(rec, st.kind);
    fusion::RunnerSession session(bench::session_config(rec));
    DigestSink sink;
    for (const fusion::Sample& s : stream) session.on_sample(s, sink);
    session.finish(sink);
    print_outputs(st.name, stream.size(), sink);
  }
  // As tests/model/scenario_rules_test runs them.
  for (int k = 0; k < sim::kScenarioCount; ++k) {
    const auto scenario = static_cast<sim::Scenario>(k);
    sim::SimConfig cfg;
    cfg.seed = 1000 + static_cast<std::uint64_t>(k);
    cfg.duration_s = 1800.0;
    cfg.plan = sim::make_scenario(scenario, cfg.runner);
    sim::Simulator simulator(cfg);
    fusion::RunnerSession session(sim::session_config(cfg, 0, 0));
    DigestSink sink;
    fusion::Sample s;
    std::size_t n = 0;
    while (simulator.next(s)) {
      session.on_sample(s, sink);
      ++n;
    }
    session.finish(sink);
    const std::string name = std::string("scenario/") + sim::scenario_name(scenario);
    print_outputs(name.c_str(), n, sink);
  }
  print_filter<fusion::KneeAngleFilter>("filter/knee_angle", bench::knee_inputs(),
                                        bench::step_knee_filter);
  print_filter<fusion::ShankTiltFilter>("filter/shank_tilt", bench::knee_inputs(),
                                        bench::step_shank_filter);
  print_filter<fusion::ForceFilter>("filter/force", bench::force_inputs(),
                                    bench::step_force_filter);
  // 20 min of steps: rolling windows filling and full, the baseline of minutes 3-8 frozen.
  fusion::GaitTrends trends;
  bench::StepStream steps;
  trends.start_session(0);
  Digest d;
  int n = 0;
  for (; steps.t_us < 1'200'000'000; ++n) {
    const fusion::GaitMetrics m = steps.next();
    trends.add_step(steps.side(), steps.t_us, m, 3.0, 0.0);
    fusion::RuleInputs in;
    trends.fill(steps.t_us, in);
    d.add(in.rolling);
    d.add(in.rolling_steps);
    d.add(in.baseline);
    d.add(in.baseline_ready);
  }
  std::printf("%-22s steps=%-9d %016llx\n", "trends/medians", n,
              static_cast<unsigned long long>(d.hash));
}

int usage() {
  std::fprintf(stderr, "usage: fusion_count <knee|insole|runner> <n>\n       fusion_count digest\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string_view(argv[1]) == "digest") {
    digest_all();
    return 0;
  }
  if (argc != 3) return usage();
  const std::string_view which = argv[1];
  fusion::SensorKind kind_value{};
  const fusion::SensorKind* kind = &kind_value;
  if (which == "knee") {
    kind_value = fusion::SensorKind::kKnee;
  } else if (which == "insole") {
    kind_value = fusion::SensorKind::kInsole;
  } else if (which == "runner") {
    kind = nullptr;
  } else {
    return usage();
  }
  const bench::Recording& rec = bench::healthy_runner();
  const std::vector<fusion::Sample> stream = bench::stream_of(rec, kind);
  fusion::RunnerSession session(bench::session_config(rec));

  char* end = nullptr;
  const unsigned long long n = std::strtoull(argv[2], &end, 10);
  if (end == argv[2] || *end != '\0') return usage();
  const std::int64_t warm_until = rec.config.start_t_us + kWarmupUs;
  std::size_t i = 0;
  CountingSink sink;
  while (i < stream.size() && stream[i].arrival_t_us < warm_until) session.on_sample(stream[i++], sink);
  const std::size_t warmup = i;
  if (n > stream.size() - warmup) {
    std::fprintf(stderr, "fusion_count: %s has %zu samples after the warm-up, asked for %llu\n",
                 argv[1], stream.size() - warmup, n);
    return 2;
  }
  for (const std::size_t stop = warmup + n; i < stop;) session.on_sample(stream[i++], sink);
  std::printf("%s warmup=%zu fused=%llu outputs=%llu\n", argv[1], warmup, n,
              static_cast<unsigned long long>(sink.outputs));
  return 0;
}
