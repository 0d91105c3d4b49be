// Per-sample cost of the fusion path (issue 8: ≤ 300 ns median for a knee IMU sample and for an
// insole sample) and of frame decoding, each next to a baseline measured in the same run
// because the machine is shared and noisy:
//   - BM_ProtobufParse: protobuf's own arena parse of the same frame, against which the
//     decoder's parse + validation is quoted as a ratio.
//
// The runner is the simulator's healthy runner (knees 200 Hz, insoles 100 Hz), rendered once
// up front so the loop measures fusion only. Sessions are rebuilt outside the timed region
// when the recorded stream runs out.
#include <benchmark/benchmark.h>

#include <google/protobuf/arena.h>

#include <memory>
#include <vector>

#include "kneeload/fusion/session.hpp"
#include "kneeload/proto/codec.hpp"
#include "kneeload/sim/registry.hpp"
#include "kneeload/sim/simulator.hpp"
#include "kneeload/v1/ingest.pb.h"

namespace {

using namespace kneeload;

class NullSink final : public fusion::OutputSink {
 public:
  void emit(const fusion::Output& o) override { benchmark::DoNotOptimize(&o); }
};

struct Recording {
  sim::SimConfig config;
  std::vector<fusion::Sample> samples;
};

const Recording& recording() {
  static const Recording r = [] {
    Recording rec;
    rec.config.seed = 7;
    rec.config.duration_s = 300.0;
    rec.config.knee.rate_hz = 200.0;  // the defaults, said here: knees 200 Hz, insoles 100 Hz
    rec.config.insole.rate_hz = 100.0;
    sim::Simulator simulator(rec.config);
    fusion::Sample s;
    while (simulator.next(s)) rec.samples.push_back(s);
    return rec;
  }();
  return r;
}

// Feeds a recorded stream one sample per iteration: the figure is the mean cost per sample,
// and the median of several repetitions is the one to quote. The session releases samples
// from its reorder window in batches (a sample is fused when a later one shows it is
// complete), so the cost of one call is not the cost of its own sample; the mean over the
// stream is. Per kind: a stream of only that kind's samples (the knee filters alone; gait,
// force, load model and rules from the insoles alone), and the whole runner.
void fuse(benchmark::State& state, int kind) {
  const Recording& rec = recording();
  std::vector<fusion::Sample> stream;
  for (const fusion::Sample& s : rec.samples) {
    if (kind < 0 || static_cast<int>(s.kind) == kind || s.kind == fusion::SensorKind::kTreadmill) stream.push_back(s);
  }
  const fusion::SessionConfig sc = sim::session_config(rec.config, 0, 0);
  auto session = std::make_unique<fusion::RunnerSession>(sc);
  NullSink sink;
  std::size_t i = 0;
  for (auto _ : state) {
    if (i == stream.size()) {  // a fresh session for another pass, untimed
      state.PauseTiming();
      session = std::make_unique<fusion::RunnerSession>(sc);
      i = 0;
      state.ResumeTiming();
    }
    session->on_sample(stream[i++], sink);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_FuseKneeImuSample(benchmark::State& state) { fuse(state, static_cast<int>(fusion::SensorKind::kKnee)); }
void BM_FuseInsoleSample(benchmark::State& state) { fuse(state, static_cast<int>(fusion::SensorKind::kInsole)); }
void BM_FuseRunnerSample(benchmark::State& state) { fuse(state, -1); }

// --- Decoding: a 10-sample insole frame, per sample.
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
  state.SetItemsProcessed(state.iterations() * 10);
}

void BM_ProtobufParse(benchmark::State& state) {
  const std::string bytes = insole_frame_bytes();
  google::protobuf::ArenaOptions options;
  std::vector<char> block(64 * 1024);
  options.initial_block = block.data();
  options.initial_block_size = block.size();
  google::protobuf::Arena arena(options);
  for (auto _ : state) {
    arena.Reset();
    auto* f = google::protobuf::Arena::CreateMessage<v1::Frame>(&arena);
    benchmark::DoNotOptimize(f->ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
  }
  state.SetItemsProcessed(state.iterations() * 10);
}

BENCHMARK(BM_FuseKneeImuSample);
BENCHMARK(BM_FuseInsoleSample);
BENCHMARK(BM_FuseRunnerSample);
BENCHMARK(BM_ProtobufParse);
BENCHMARK(BM_DecodeAndValidate);

}  // namespace

BENCHMARK_MAIN();
