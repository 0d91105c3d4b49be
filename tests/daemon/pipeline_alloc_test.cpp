// Proves the per-sample path allocates nothing after warm-up: the real Pipeline (ingest,
// workers, publisher, real ZeroMQ sockets on loopback) runs in this process while the counting
// operator new (tests/support/counting_new.hpp, linked into this binary only) counts every
// call made by any thread.
//
// What this does not count: libzmq's own message buffers, which it takes with malloc(), not
// operator new (one per message over 33 bytes, ENGINEERING.md §1a), hence new_calls() and not
// allocations(), which would count those mallocs where malloc is interposed. Everything of
// ours — decoding (protobuf arena), rings, sessions, encoding (reused messages), status — is
// counted.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "counting_new.hpp"
#include "daemon/pipeline.hpp"
#include "kneeload/v1/ingest.pb.h"

namespace kneeload::daemon {
namespace {

constexpr double kCellAreaCm2 = 8.0;

// A fresh state directory, removed at exit.
std::string store_dir() {
  struct Dir {
    Dir() {
      std::string tmpl = "/tmp/kneeload-alloc-XXXXXX";
      path = ::mkdtemp(tmpl.data());
    }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
    std::string path;
  };
  static const Dir dir;
  return dir.path;
}

Config test_config(int workers) {
  Config c;
  c.source = "pipeline_alloc_test";
  c.ingest.endpoints = {"tcp://127.0.0.1:*"};
  c.publish.endpoint = "tcp://127.0.0.1:*";
  c.publish.heartbeat_s = 0.05;  // many heartbeats inside the window: status must not allocate
  c.pipeline.workers = workers;
  c.pipeline.max_devices = 64;
  c.pipeline.max_runners = 16;
  c.pipeline.max_stations = 16;
  c.metrics_address = "";
  // The runner store runs too, in a fresh directory: its ring and writer thread are part of the
  // claim (the writer binds prepared statements; SQLite's own malloc is outside operator new).
  c.state_dir = store_dir();
  for (int r = 0; r < 2; ++r) {
    RunnerConfig rc;
    rc.id = "r" + std::to_string(r);
    c.runners.push_back(rc);
    for (int side = 0; side < 2; ++side) {
      DeviceConfig d;
      d.id = rc.id + (side == 0 ? "-L" : "-R");
      d.station = "st" + std::to_string(r);
      d.runner = rc.id;
      d.kind = fusion::SensorKind::kInsole;
      d.side = side == 0 ? fusion::Side::kLeft : fusion::Side::kRight;
      d.insole.cell_count = 16;
      for (int k = 0; k < 16; ++k) {
        d.insole.area_m2[static_cast<std::size_t>(k)] = kCellAreaCm2 * 1e-4;
        d.insole.x_norm[static_cast<std::size_t>(k)] = 0.03 + 0.06 * k;
        d.insole.y_norm[static_cast<std::size_t>(k)] = 0.5;
      }
      c.devices.push_back(d);
    }
    DeviceConfig tm;
    tm.id = rc.id + "-tm";
    tm.station = "st" + std::to_string(r);
    tm.runner = rc.id;
    tm.kind = fusion::SensorKind::kTreadmill;
    c.devices.push_back(tm);
    DeviceConfig console = tm;
    console.id = rc.id + "-console";
    console.kind = fusion::SensorKind::kConsole;
    c.devices.push_back(console);
  }
  return c;
}

// Pre-serialised frames for [t_begin, t_end) seconds of running for every runner: insoles at
// 200 Hz in frames of 10, treadmill at 10 Hz, a pain report every second alternating high/low.
std::vector<std::string> running_frames(double t_begin, double t_end, std::vector<std::uint32_t>& seqs,
                                        std::uint64_t& samples) {
  std::vector<std::pair<std::int64_t, std::string>> out;  // (arrival, frame): sent in arrival order
  const double hz = 200.0, step_s = 60.0 / 170.0, contact_s = 0.25, bw = 70.0 * 9.80665;
  for (int r = 0; r < 2; ++r) {
    for (int side = 0; side < 2; ++side) {
      v1::Frame f;
      const std::string id = "r" + std::to_string(r) + (side == 0 ? "-L" : "-R");
      std::uint32_t& seq = seqs[static_cast<std::size_t>(r * 4 + side)];
      for (int i = static_cast<int>(t_begin * hz); i < static_cast<int>(t_end * hz); ++i) {
        const double t = i / hz;
        const double phase = std::fmod(t - side * step_s + 100 * step_s, 2 * step_s);
        const double force = phase < contact_s ? 2.5 * bw * std::sin(M_PI * phase / contact_s) : 0.0;
        auto* s = f.add_samples();
        s->set_t_us(1'000'000 + static_cast<std::int64_t>(std::llround(t * 1e6)));
        for (int k = 0; k < 16; ++k) s->mutable_insole()->add_pressure_pa(static_cast<float>(force / 16 / (kCellAreaCm2 * 1e-4)));
        if (f.samples_size() == 10) {
          f.set_protocol_version(1);
          f.set_device_id(id);
          f.set_seq(seq++);
          // Sent faster than real time: carry the arrival a live device would have had.
          f.set_recorded_arrival_us(s->t_us() + 2000);
          samples += 10;
          out.emplace_back(f.recorded_arrival_us(), f.SerializeAsString());
          f.Clear();
        }
      }
    }
    for (int i = static_cast<int>(t_begin * 10); i < static_cast<int>(t_end * 10); ++i) {
      v1::Frame f;
      f.set_protocol_version(1);
      f.set_device_id("r" + std::to_string(r) + "-tm");
      f.set_seq(seqs[static_cast<std::size_t>(r * 4 + 2)]++);
      auto* s = f.add_samples();
      s->set_t_us(1'000'000 + i * 100'000);
      s->mutable_treadmill()->set_belt_speed_mps(3.3f);
      f.set_recorded_arrival_us(s->t_us() + 2000);
      ++samples;
      out.emplace_back(f.recorded_arrival_us(), f.SerializeAsString());
      if (i % 10 == 0) {
        v1::Frame p;
        p.set_protocol_version(1);
        p.set_device_id("r" + std::to_string(r) + "-console");
        p.set_seq(seqs[static_cast<std::size_t>(r * 4 + 3)]++);
        auto* ps = p.add_samples();
        ps->set_t_us(1'000'000 + i * 100'000);
        ps->mutable_pain()->set_score((i / 10) % 2 == 0 ? 6u : 0u);
        p.set_recorded_arrival_us(ps->t_us() + 2000);
        ++samples;
        out.emplace_back(p.recorded_arrival_us(), p.SerializeAsString());
      }
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> frames;
  for (auto& [t, bytes] : out) frames.push_back(std::move(bytes));
  return frames;
}

// Workers 2: worker threads publishing; 0: the ingest thread fuses and publishes itself.
class PipelineAllocation : public ::testing::TestWithParam<int> {};

INSTANTIATE_TEST_SUITE_P(Workers, PipelineAllocation, ::testing::Values(2, 0));

TEST_P(PipelineAllocation, SteadyStateMakesNoHeapAllocationPerSample) {
  zmq::context_t ctx(1);
  const Config config = test_config(GetParam());
  Pipeline pipeline(config);
  if (GetParam() == 0) {
    // One worker without a thread: its ring holds one frame at most, not 14 MB of samples.
    const auto rings = pipeline.rings();
    const auto input = std::find_if(rings.begin(), rings.end(),
                                    [](const Pipeline::RingView& r) { return std::string(r.stage) == "worker_input"; });
    ASSERT_NE(input, rings.end());
    EXPECT_EQ(std::count_if(rings.begin(), rings.end(),
                            [](const Pipeline::RingView& r) { return std::string(r.stage) == "worker_input"; }),
              1);
    EXPECT_EQ(input->capacity, static_cast<std::size_t>(config.ingest.max_samples_per_frame) + 1);
  }
  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.set(zmq::sockopt::sndhwm, 0);
  push.connect(pipeline.ingest_endpoints()[0]);
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::subscribe, "");
  sub.connect(pipeline.publish_endpoint());
  std::vector<std::byte> rx(1 << 16);
  auto drain_sub = [&] {
    while (sub.recv(zmq::mutable_buffer(rx.data(), rx.size()), zmq::recv_flags::dontwait)) {
    }
  };
  // Until the workers have taken `target` samples from their rings (samples_fused counts each as
  // it goes into its session), then until the publisher has sent what they made: the published
  // count grows by heartbeats only (one per 50 ms) over 300 ms.
  auto wait_fused = [&](std::uint64_t target) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (pipeline.totals().samples_fused < target && std::chrono::steady_clock::now() < deadline) {
      drain_sub();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::uint64_t last = pipeline.totals().published;
    for (int quiet = 0; quiet < 3 && std::chrono::steady_clock::now() < deadline;) {
      for (int i = 0; i < 20; ++i) {
        drain_sub();
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      const std::uint64_t now = pipeline.totals().published;
      quiet = now - last <= 3 ? quiet + 1 : 0;
      last = now;
    }
  };

  std::vector<std::uint32_t> seqs(8, 0);
  std::uint64_t warm_samples = 0, measured_samples = 0;
  const auto warm = running_frames(0.0, 5.0, seqs, warm_samples);
  const auto measured = running_frames(5.0, 35.0, seqs, measured_samples);

  for (const auto& f : warm) ASSERT_TRUE(push.send(zmq::buffer(f), zmq::send_flags::none));
  wait_fused(warm_samples);
  ASSERT_EQ(pipeline.totals().samples_fused, warm_samples);

  const PipelineTotals before = pipeline.totals();
  const std::uint64_t stored_before = pipeline.store_records();
  const std::uint64_t news_before = alloc_count::new_calls();
  for (const auto& f : measured) {
    (void)push.send(zmq::buffer(f), zmq::send_flags::none);
    drain_sub();
  }
  wait_fused(warm_samples + measured_samples);
  const std::uint64_t news = alloc_count::new_calls() - news_before;
  const PipelineTotals after = pipeline.totals();

  const std::uint64_t fused = after.samples_fused - before.samples_fused;
  const std::uint64_t published = after.published - before.published;
  EXPECT_EQ(after.samples_accepted - before.samples_accepted, measured_samples) << "every measured sample was accepted";
  EXPECT_EQ(fused, measured_samples) << "every measured sample was taken by the workers in the window";
  EXPECT_EQ(after.dropped, 0u);
  EXPECT_TRUE(pipeline.store_active()) << "the runner store ran through the window";
  const std::uint64_t stored = pipeline.store_records() - stored_before;
  EXPECT_GT(stored, 100u) << "steps and events were written to the store in the window";
  EXPECT_GT(published, 1000u) << "states, steps, events and heartbeats were published";
  EXPECT_EQ(news, 0u) << "operator new calls while fusing " << fused << " samples and publishing "
                                      << published << " messages";
  std::printf("[ measured ] %llu samples fused, %llu messages published, %llu records stored, %llu heap allocations\n",
              static_cast<unsigned long long>(fused), static_cast<unsigned long long>(published),
              static_cast<unsigned long long>(stored),
              static_cast<unsigned long long>(news));
}

}  // namespace
}  // namespace kneeload::daemon
