// Per-sample cost of the fusion path (issue 8: ≤ 300 ns median for a knee IMU sample and for an
// insole sample), of its parts, and of frame decoding, each next to a baseline measured in the
// same run where one makes sense, because the machine is shared and noisy:
//   - BM_Fuse*Sample: one fused sample per stream of the recorded runner (bench/recording.hpp).
//   - BM_FuseManyRunners/N: the whole runner's stream, a frame of each of N runners in turn.
//   - BM_*Filter: each filter's predict + update on recorded data, beside BM_Textbook*: the same
//     predicts and updates in the textbook form ENGINEERING.md §1c timed (S⁻¹, P = (I − KH)P, no
//     gate, no guards, no bounds), i.e. what the maths costs without our numerics.
//   - BM_StepLoadPerStep, BM_CopPathPerStep: the step features of one stance (begin, its
//     samples, finish).
//   - BM_GaitTrendsPerStep, BM_RiskRulesPerStep: what runs at each toe-off: the rolling medians
//     (GaitTrends add_step + fill) and the rule evaluation, in a steady state (full windows,
//     baseline ready).
//   - BM_DecodeAndValidate next to BM_ProtobufParse: protobuf's own arena parse of the same
//     frame, against which the decoder's parse + validation is quoted as a ratio.
// Every benchmark reports allocs_per_sample (or allocs_per_step): heap allocations inside the
// timed loop per item, counted by this binary's replacement of operator new and malloc. It must
// be 0: the hot path allocates nothing once built (session.hpp's contract).
#include <benchmark/benchmark.h>

#include <google/protobuf/arena.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include <Eigen/Core>
#include <Eigen/LU>

#include "kneeload/fusion/cop_path.hpp"
#include "kneeload/fusion/filters.hpp"
#include "kneeload/fusion/load_model.hpp"
#include "kneeload/fusion/risk_rules.hpp"
#include "kneeload/fusion/session.hpp"
#include "kneeload/proto/codec.hpp"
#include "kneeload/v1/ingest.pb.h"
#include "recording.hpp"
#include "counting_new.hpp"

// ---- Allocation counting ------------------------------------------------------------------------
// kneeload_counting_new (tests/support/counting_new.hpp) replaces operator new, and on glibc
// without a sanitizer malloc too, since Eigen allocates through std::malloc.

namespace {

using namespace kneeload;

std::uint64_t allocations() { return kneeload::alloc_count::allocations(); }

// Allocations inside a benchmark's timed loop, minus those of untimed set-up inside it.
class AllocationTally {
 public:
  AllocationTally() : start_(allocations()) {}
  // Runs untimed work (a rebuild) whose allocations do not count.
  template <class F>
  void untimed(benchmark::State& state, F&& f) {
    const std::uint64_t before = allocations();
    state.PauseTiming();
    f();
    state.ResumeTiming();
    excluded_ += allocations() - before;
  }
  // Sets `name` to the allocations per item (iterations × items_per_iteration). Call it before
  // anything else touches state.counters: SetItemsProcessed() allocates a map node and a string.
  void report(benchmark::State& state, const char* name, double items_per_iteration = 1.0) const {
    const auto n = static_cast<double>(allocations() - start_ - excluded_);
    state.counters[name] = n / (static_cast<double>(state.iterations()) * items_per_iteration);
  }

 private:
  std::uint64_t start_;
  std::uint64_t excluded_ = 0;
};

class NullSink final : public fusion::OutputSink {
 public:
  void emit(const fusion::Output& o) override { benchmark::DoNotOptimize(&o); }
};

// ---- One fused sample ---------------------------------------------------------------------------

// Feeds a recorded stream one sample per iteration: the figure is the mean cost per sample,
// and the median of several repetitions is the one to quote. The session releases samples
// from its reorder window in batches (a sample is fused when a later one shows it is
// complete), so the cost of one call is not the cost of its own sample; the mean over the
// stream is. Per kind: a stream of only that kind's samples (the knee filters alone; gait,
// force, load model and rules from the insoles alone), and the whole runner. Sessions are
// rebuilt outside the timed region when the recorded stream runs out.
void fuse(benchmark::State& state, const fusion::SensorKind* kind) {
  const bench::Recording& rec = bench::healthy_runner();
  const std::vector<fusion::Sample> stream = bench::stream_of(rec, kind);
  const fusion::SessionConfig sc = bench::session_config(rec);
  auto session = std::make_unique<fusion::RunnerSession>(sc);
  NullSink sink;
  std::size_t i = 0;
  AllocationTally tally;
  for (auto _ : state) {
    if (i == stream.size()) {  // a fresh session for another pass, untimed
      tally.untimed(state, [&] {
        session = std::make_unique<fusion::RunnerSession>(sc);
        i = 0;
      });
    }
    session->on_sample(stream[i++], sink);
  }
  tally.report(state, "allocs_per_sample");
  state.SetItemsProcessed(state.iterations());
}

// Many runners on one worker, as kneeloadd fuses them: one frame (a device's run of samples with
// one arrival time) of each of N runners in turn, so between two frames of a runner the others'
// state passes through the caches. BM_FuseRunnerSample feeds one runner, whose state stays hot.
// Quoted as the ratio of N runners to 10, in the same run: whether a runner's state (about
// 100 KB touched per runner of the 156 KiB tests/model/session_memory_test allocates; most
// reorder slots stay unused) still sits in the caches when its next frame comes. Every runner
// is fed the same recording; sessions are rebuilt, untimed, when it runs out.
void BM_FuseManyRunners(benchmark::State& state) {
  const auto runners = static_cast<std::size_t>(state.range(0));
  const bench::Recording& rec = bench::healthy_runner();
  const fusion::SessionConfig sc = bench::session_config(rec);
  std::vector<std::pair<std::size_t, std::size_t>> frames;  // [first, last) sample of each
  for (std::size_t i = 0; i < rec.samples.size();) {
    std::size_t j = i + 1;
    while (j < rec.samples.size() && rec.samples[j].device == rec.samples[i].device &&
           rec.samples[j].arrival_t_us == rec.samples[i].arrival_t_us) {
      ++j;
    }
    frames.emplace_back(i, j);
    i = j;
  }
  std::vector<std::unique_ptr<fusion::RunnerSession>> sessions(runners);
  auto rebuild = [&] {
    for (auto& session : sessions) session = std::make_unique<fusion::RunnerSession>(sc);
  };
  rebuild();
  NullSink sink;
  std::size_t frame = 0;
  std::size_t runner = 0;
  std::uint64_t samples = 0;
  AllocationTally tally;
  for (auto _ : state) {
    if (frame == frames.size()) {
      tally.untimed(state, [&] {
        rebuild();
        frame = 0;
      });
    }
    const auto [first, last] = frames[frame];
    for (std::size_t i = first; i < last; ++i) sessions[runner]->on_sample(rec.samples[i], sink);
    samples += last - first;
    if (++runner == runners) {
      runner = 0;
      ++frame;
    }
  }
  tally.report(state, "allocs_per_sample",
               static_cast<double>(samples) / static_cast<double>(state.iterations()));
  state.SetItemsProcessed(static_cast<std::int64_t>(samples));
}

constexpr fusion::SensorKind kKnee = fusion::SensorKind::kKnee;
constexpr fusion::SensorKind kInsole = fusion::SensorKind::kInsole;
void BM_FuseKneeImuSample(benchmark::State& state) { fuse(state, &kKnee); }
void BM_FuseInsoleSample(benchmark::State& state) { fuse(state, &kInsole); }
void BM_FuseRunnerSample(benchmark::State& state) { fuse(state, nullptr); }

// ---- Filters: predict + update on recorded data -------------------------------------------------

// Iterates over a recorded input sequence, restarting the filter (untimed) at its end.
template <class Filter, class Input, class Step>
void filter_loop(benchmark::State& state, const std::vector<Input>& inputs, Step step) {
  auto filter = std::make_unique<Filter>();
  std::size_t i = 0;
  AllocationTally tally;
  for (auto _ : state) {
    if (i == inputs.size()) {
      tally.untimed(state, [&] {
        filter = std::make_unique<Filter>();
        i = 0;
      });
    }
    step(*filter, inputs[i++]);
  }
  tally.report(state, "allocs_per_sample");
  state.SetItemsProcessed(state.iterations());
}

// Each filter's predict + update (bench::step_*_filter) on the left leg's recorded data.
void BM_KneeAngleFilter(benchmark::State& state) {
  filter_loop<fusion::KneeAngleFilter>(
      state, bench::knee_inputs(), [](fusion::KneeAngleFilter& f, const bench::KneeInput& in) {
        benchmark::DoNotOptimize(bench::step_knee_filter(f, in));
      });
}
void BM_ShankTiltFilter(benchmark::State& state) {
  filter_loop<fusion::ShankTiltFilter>(
      state, bench::knee_inputs(), [](fusion::ShankTiltFilter& f, const bench::KneeInput& in) {
        benchmark::DoNotOptimize(bench::step_shank_filter(f, in));
      });
}
void BM_ForceFilter(benchmark::State& state) {
  filter_loop<fusion::ForceFilter>(
      state, bench::force_inputs(), [](fusion::ForceFilter& f, const bench::ForceInput& in) {
        benchmark::DoNotOptimize(bench::step_force_filter(f, in));
      });
}

// The baseline: x = Fx + u, P = FPFᵀ + Q; S = HPHᵀ + R, K = PHᵀS⁻¹, x += K(z − Hx),
// P = (I − KH)P, on fixed-size matrices.
template <int N>
class TextbookKalman {
 public:
  using Vector = Eigen::Matrix<double, N, 1>;
  using Matrix = Eigen::Matrix<double, N, N>;
  TextbookKalman() : x_(Vector::Zero()), p_(Matrix::Identity()) {}
  void predict(const Matrix& f, const Matrix& q, const Vector& u) {
    x_ = f * x_ + u;
    p_ = f * p_ * f.transpose() + q;
  }
  template <int M>
  void update(const Eigen::Matrix<double, M, 1>& z, const Eigen::Matrix<double, M, N>& h,
              const Eigen::Matrix<double, M, M>& r) {
    const Eigen::Matrix<double, M, M> s = h * p_ * h.transpose() + r;
    const Eigen::Matrix<double, N, M> k = p_ * h.transpose() * s.inverse();
    x_ += k * (z - h * x_);
    p_ = (Matrix::Identity() - k * h) * p_;
  }
  const Vector& state() const { return x_; }

 private:
  Vector x_;
  Matrix p_;
};

void BM_TextbookKnee(benchmark::State& state) {
  const fusion::KneeJointAxes axes;
  const fusion::KneeAngleParams p;
  const fusion::KneeMotionModel model{p.angular_accel_sigma, p.bias_walk_sigma};
  const Eigen::RowVector3d h_gyro(0.0, 1.0, 1.0);
  const Eigen::RowVector3d h_angle(1.0, 0.0, 0.0);
  const Eigen::Matrix<double, 1, 1> r_gyro(p.gyro_sigma_radps * p.gyro_sigma_radps);
  const Eigen::Matrix<double, 1, 1> r_angle(p.accel_angle_sigma_rad * p.accel_angle_sigma_rad);
  filter_loop<TextbookKalman<3>>(state, bench::knee_inputs(), [&](TextbookKalman<3>& f, const bench::KneeInput& in) {
    f.predict(model.transition(in.dt_s), model.noise(in.dt_s), Eigen::Vector3d::Zero());
    const double rate = axes.thigh.rate_radps(in.thigh) - axes.shank.rate_radps(in.shank);
    f.update<1>(Eigen::Matrix<double, 1, 1>(rate), h_gyro, r_gyro);
    f.update<1>(Eigen::Matrix<double, 1, 1>(fusion::accel_knee_angle_rad(in.thigh, in.shank, axes)),
                h_angle, r_angle);
    benchmark::DoNotOptimize(f.state());
  });
}

void BM_TextbookShankTilt(benchmark::State& state) {
  const fusion::HingeAxis axis;
  const fusion::ShankTiltParams p;
  const fusion::ShankTiltModel model{p.gyro_noise_density, p.bias_walk_sigma};
  const Eigen::RowVector2d h(1.0, 0.0);
  const Eigen::Matrix<double, 1, 1> r(p.tilt_sigma_rad * p.tilt_sigma_rad);
  filter_loop<TextbookKalman<2>>(state, bench::knee_inputs(), [&](TextbookKalman<2>& f, const bench::KneeInput& in) {
    f.predict(model.transition(in.dt_s), model.noise(in.dt_s),
              model.input(axis.rate_radps(in.shank), in.dt_s));
    f.update<1>(Eigen::Matrix<double, 1, 1>(fusion::accel_shank_tilt_rad(in.shank, axis)), h, r);
    benchmark::DoNotOptimize(f.state());
  });
}

void BM_TextbookForce(benchmark::State& state) {
  const fusion::ForceFilterParams p;
  const fusion::ForceMotionModel model{p.rate_noise_sigma};
  const Eigen::RowVector2d h(1.0, 0.0);
  const Eigen::Matrix<double, 1, 1> r(p.force_sigma_bw * p.force_sigma_bw);
  const Eigen::Matrix2d h_swing = Eigen::Matrix2d::Identity();
  const Eigen::Matrix2d r_swing =
      Eigen::Vector2d(p.swing_force_sigma_bw * p.swing_force_sigma_bw,
                      p.swing_rate_sigma_bwps * p.swing_rate_sigma_bwps)
          .asDiagonal();
  filter_loop<TextbookKalman<2>>(state, bench::force_inputs(), [&](TextbookKalman<2>& f, const bench::ForceInput& in) {
    f.predict(model.transition(in.dt_s), model.noise(in.dt_s), Eigen::Vector2d::Zero());
    if (in.swing) {
      f.update<2>(Eigen::Vector2d::Zero().eval(), h_swing, r_swing);
    } else {
      f.update<1>(Eigen::Matrix<double, 1, 1>(in.force_bw), h, r);
    }
    benchmark::DoNotOptimize(f.state());
  });
}

// ---- Step features: one stance ------------------------------------------------------------------

// A 250 ms stance at 100 Hz (the recorded runner's insole rate): a vGRF half-sine peaking at
// 2.5 BW with an impact bump, the knee flexing 10° → 45° → 10°, the shank from +20° to −20°,
// the CoP rolling heel to toe. The values only steer branches; the cost is per sample and step.
constexpr int kStanceSamples = 25;
constexpr std::int64_t kStanceIntervalUs = 10'000;
constexpr double kBodyMassKg = 70.0;

fusion::StanceSample stance_sample(int k, std::int64_t ic_t_us) {
  constexpr double kPi = 3.14159265358979323846;
  const double u = (k + 0.5) / kStanceSamples;
  const double bw = kBodyMassKg * fusion::kGravityMps2;
  fusion::StanceSample s;
  s.t_us = ic_t_us + 5'000 + k * kStanceIntervalUs;
  s.force_n = bw * (2.5 * std::sin(kPi * u) + 0.4 * std::exp(-std::pow((u - 0.1) / 0.04, 2)));
  s.knee_flexion_rad = (10.0 + 35.0 * std::sin(kPi * u)) * kPi / 180.0;
  s.shank_inclination_rad = (20.0 - 40.0 * u) * kPi / 180.0;
  s.x_cop_norm = 0.15 + 0.7 * u;
  return s;
}

void BM_StepLoadPerStep(benchmark::State& state) {
  fusion::LoadModelParams params;
  params.body_mass_kg = kBodyMassKg;
  fusion::StepLoad load(params);
  std::array<fusion::StanceSample, kStanceSamples> stance;
  for (int k = 0; k < kStanceSamples; ++k) stance[static_cast<std::size_t>(k)] = stance_sample(k, 0);
  const double threshold_n = 0.05 * kBodyMassKg * fusion::kGravityMps2;
  const std::int64_t stride_us = 700'000;
  std::int64_t t0 = 0;
  AllocationTally tally;
  for (auto _ : state) {
    load.begin(t0, threshold_n);
    for (fusion::StanceSample s : stance) {
      s.t_us += t0;
      load.add(s);
    }
    benchmark::DoNotOptimize(load.finish(t0 + kStanceSamples * kStanceIntervalUs + 5'000));
    t0 += stride_us;
  }
  tally.report(state, "allocs_per_step");
  state.SetItemsProcessed(state.iterations());
}

void BM_CopPathPerStep(benchmark::State& state) {
  fusion::CopPath cop;
  std::array<fusion::StanceSample, kStanceSamples> stance;
  for (int k = 0; k < kStanceSamples; ++k) stance[static_cast<std::size_t>(k)] = stance_sample(k, 0);
  const std::int64_t stride_us = 700'000;
  std::int64_t t0 = 0;
  AllocationTally tally;
  for (auto _ : state) {
    cop.begin(t0);
    for (const fusion::StanceSample& s : stance) {
      cop.add(t0 + s.t_us, s.x_cop_norm, 0.45 + 0.05 * s.shank_inclination_rad);
    }
    benchmark::DoNotOptimize(cop.finish(t0 + kStanceSamples * kStanceIntervalUs + 5'000));
    t0 += stride_us;
  }
  tally.report(state, "allocs_per_step");
  state.SetItemsProcessed(state.iterations());
}

// ---- At toe-off: rolling medians and the rules --------------------------------------------------

// GaitTrends after 10 min of steps: both rolling windows full, the baseline frozen.
void warm_trends(fusion::GaitTrends& trends, bench::StepStream& steps) {
  trends.start_session(0);
  while (steps.t_us < 600'000'000) {
    const fusion::GaitMetrics m = steps.next();
    trends.add_step(steps.side(), steps.t_us, m, 3.0, 0.0);
  }
}

void BM_GaitTrendsPerStep(benchmark::State& state) {
  fusion::GaitTrends trends;
  bench::StepStream steps;
  warm_trends(trends, steps);
  fusion::RuleInputs in;
  AllocationTally tally;
  for (auto _ : state) {
    const fusion::GaitMetrics m = steps.next();
    trends.add_step(steps.side(), steps.t_us, m, 3.0, 0.0);
    trends.fill(steps.t_us, in);
    benchmark::DoNotOptimize(in);
  }
  tally.report(state, "allocs_per_step");
  state.SetItemsProcessed(state.iterations());
}

void BM_RiskRulesPerStep(benchmark::State& state) {
  fusion::GaitTrends trends;
  bench::StepStream steps;
  warm_trends(trends, steps);
  fusion::RuleInputs in;
  trends.fill(steps.t_us, in);
  in.belt_speed_mps = 3.0;
  in.incline_fraction = 0.0;
  in.force_rate_hz = 100.0;
  in.pta_rate_hz = 200.0;
  in.session_distance_m = 1800.0;
  in.session_damage_index = 1.0;
  fusion::RiskRules rules(fusion::RiskRuleParams{}, "bench");
  fusion::RiskEventBuffer events;
  AllocationTally tally;
  for (auto _ : state) {
    in.t_us += 350'000;
    rules.evaluate(in, events);
    events.clear();
  }
  benchmark::DoNotOptimize(events);
  tally.report(state, "allocs_per_step");
  state.SetItemsProcessed(state.iterations());
}

// ---- Decoding: a 10-sample insole frame, per sample ---------------------------------------------

std::string insole_frame_bytes() {
  v1::Frame f;
  f.set_protocol_version(1);
  f.set_device_id("st01-insole-L");
  f.set_seq(1);
  for (int i = 0; i < 10; ++i) {
    v1::Sample* s = f.add_samples();
    s->set_t_us(1'000'000 + i * 10'000);
    for (int c = 0; c < 16; ++c) s->mutable_insole()->add_pressure_pa(40'000.0f + static_cast<float>(c));
  }
  return f.SerializeAsString();
}

void BM_DecodeAndValidate(benchmark::State& state) {
  const std::string bytes = insole_frame_bytes();
  proto::DeviceInfo info;
  info.device = 0;
  info.kind = fusion::SensorKind::kInsole;
  info.side = fusion::Side::kLeft;
  info.cell_count = 16;
  const proto::DeviceTable table({{"st01-insole-L", info}});
  std::vector<proto::DeviceTrack> tracks(1);
  proto::FrameDecoder decoder(proto::ValidationLimits{});
  std::vector<fusion::Sample> out(256);
  AllocationTally tally;
  // The sequence and clock must advance or the decoder refuses duplicates: re-stamp by
  // resetting the track (what a new device would look like), which costs nothing measurable.
  for (auto _ : state) {
    tracks[0] = proto::DeviceTrack{};
    const proto::DecodeResult r =
        decoder.decode(std::span<const std::byte>(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()),
                       bytes.size(), table, tracks, 5'000'000, out);
    benchmark::DoNotOptimize(r);
    if (r.accepted != 10) state.SkipWithError("frame not accepted");
  }
  tally.report(state, "allocs_per_sample", 10.0);
  state.SetItemsProcessed(state.iterations() * 10);
}

void BM_ProtobufParse(benchmark::State& state) {
  const std::string bytes = insole_frame_bytes();
  google::protobuf::ArenaOptions options;
  std::vector<char> block(64 * 1024);
  options.initial_block = block.data();
  options.initial_block_size = block.size();
  google::protobuf::Arena arena(options);
  AllocationTally tally;
  for (auto _ : state) {
    arena.Reset();
    auto* f = google::protobuf::Arena::CreateMessage<v1::Frame>(&arena);
    benchmark::DoNotOptimize(f->ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
  }
  tally.report(state, "allocs_per_sample", 10.0);
  state.SetItemsProcessed(state.iterations() * 10);
}

BENCHMARK(BM_FuseKneeImuSample);
BENCHMARK(BM_FuseInsoleSample);
BENCHMARK(BM_FuseRunnerSample);
BENCHMARK(BM_FuseManyRunners)->Arg(10)->Arg(100)->Arg(1000);
BENCHMARK(BM_KneeAngleFilter);
BENCHMARK(BM_TextbookKnee);
BENCHMARK(BM_ShankTiltFilter);
BENCHMARK(BM_TextbookShankTilt);
BENCHMARK(BM_ForceFilter);
BENCHMARK(BM_TextbookForce);
BENCHMARK(BM_StepLoadPerStep);
BENCHMARK(BM_CopPathPerStep);
BENCHMARK(BM_GaitTrendsPerStep);
BENCHMARK(BM_RiskRulesPerStep);
BENCHMARK(BM_ProtobufParse);
BENCHMARK(BM_DecodeAndValidate);

}  // namespace

BENCHMARK_MAIN();
