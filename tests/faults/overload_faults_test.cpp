// Fault tests under overload, with a real kneeloadd on loopback: a flood far beyond what a
// fusion worker takes, a subscriber that stops reading (with and without publish.nodrop), and a
// storm of SIGHUP reloads while stations stream. Each test prints (and records) what it sent and
// what the daemon counted, and checks that every accepted sample was fused or counted as dropped.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>

#include "fault_harness.hpp"

namespace kneeload::testing {
namespace {

// Sends `frames` from their own thread, `speed` times faster than their device time (arrival
// stamps make the daemon align them as live), until done or stopped.
class PacedSender {
 public:
  PacedSender(zmq::context_t& ctx, const std::string& endpoint, std::vector<v1::Frame> frames, double speed)
      : thread_([this, &ctx, endpoint, frames = std::move(frames), speed] {
          zmq::socket_t push = make_push(ctx, endpoint);
          push.set(zmq::sockopt::linger, 20000);  // what send() took must arrive: see the flood below
          const auto start = std::chrono::steady_clock::now();
          const std::int64_t t0 = frames.empty() ? 0 : frames.front().samples(0).t_us();
          for (const v1::Frame& f : frames) {
            if (stop_) break;
            std::this_thread::sleep_until(
                start + std::chrono::microseconds(static_cast<std::int64_t>(static_cast<double>(f.samples(0).t_us() - t0) / speed)));
            if (!send_frame(push, f)) ++failed_;
            ++frames_;
            samples_ += static_cast<std::uint64_t>(f.samples_size());
          }
          done_ = true;
        }) {}
  ~PacedSender() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  void join() { thread_.join(); }
  bool done() const { return done_; }
  std::uint64_t frames() const { return frames_; }
  std::uint64_t samples() const { return samples_; }
  std::uint64_t failed() const { return failed_; }

 private:
  std::atomic<bool> stop_{false}, done_{false};
  std::atomic<std::uint64_t> frames_{0}, samples_{0}, failed_{0};
  std::thread thread_;
};

std::string n(double v) { return std::to_string(static_cast<long long>(std::llround(v))); }

// Station 1 streams in real time; station 2's left insole floods: frames of 2,048 samples sent
// as fast as the socket takes them, into worker rings of 128 slots. Station 1's runner has the
// other worker (runner index mod 2), so its ring never holds flood samples; both share the
// ingest thread, the publisher and the two cores.
TEST(OverloadFaults, AFloodIsDroppedAndCountedWithBoundedMemoryWhileAGoodStationKeepsBeingServed) {
  std::string toml = with_keys(base_toml(/*stale_after_s=*/30.0), "[pipeline]",
                               "ingest_ring_capacity = 128\noutput_ring_capacity = 1024");
  // Big flood frames; rcvhwm bounds what libzmq may queue for the daemon (100 x 170 KB).
  toml += "[ingest]\nmax_samples_per_frame = 2048\nmax_frame_bytes = 262144\nrcvhwm = 100\n\n";
  Daemon daemon(toml + registry_toml(2));
  ASSERT_TRUE(daemon.started()) << daemon.log();
  zmq::context_t ctx{1};
  TopicSubscriber sub(ctx, daemon.publish_endpoint(), {"status", "step/st1", "risk/st2"});
  ASSERT_TRUE(sub.wait_joined(10s)) << daemon.log();

  int complete1 = 0;
  const auto st1 = running_frames(1, 7.0, 100.0, {}, &complete1);
  PacedSender good(ctx, daemon.ingest_endpoint(), st1, 1.0);
  std::this_thread::sleep_for(1s);
  const Scrape before = scrape(daemon);

  // The flood: 3 s of 2,048-sample frames, force a half-sine so the session has work to do.
  std::atomic<bool> flooding{true};
  std::atomic<std::uint64_t> flood_frames{0}, flood_samples{0};
  std::atomic<std::int64_t> flood_last_us{0};
  std::thread flood([&] {
    zmq::socket_t push = make_push(ctx, daemon.ingest_endpoint());
    // A frame send() accepted is counted as sent, so it must reach the daemon: with the harness's
    // linger of 0, closing the socket here threw away what still sat in its queue (up to sndhwm
    // frames when the sender outpaced the ingest thread), and wait_settled() waited for frames
    // that would never come. A linger lets libzmq's I/O thread deliver them after the close.
    push.set(zmq::sockopt::linger, 20000);
    std::int64_t t = 1'000'000;
    for (std::uint32_t seq = 0; flooding; ++seq) {
      v1::Frame f = frame("s2-L", seq);
      for (int i = 0; i < 2048; ++i, t += 10'000) {
        const double phase = std::fmod(static_cast<double>(t) * 1e-6, 0.7);
        add_insole(f, t, phase < 0.25 ? 1700.0 * std::sin(M_PI * phase / 0.25) : 0.0, 8.0);
      }
      if (!send_frame(push, f)) break;
      flood_last_us = t;
      ++flood_frames;
      flood_samples += static_cast<std::uint64_t>(f.samples_size());
    }
  });
  const std::size_t steps_at_flood_start = sub.count("step/st1");
  double rss_peak = before.rss_bytes();
  const auto flood_end = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < flood_end) {
    sub.poll(200ms);
    rss_peak = std::max(rss_peak, scrape(daemon).rss_bytes());
  }
  flooding = false;
  flood.join();
  const std::size_t steps_during_flood = sub.count("step/st1") - steps_at_flood_start;
  const Scrape at_flood_end = scrape(daemon);

  good.join();
  const std::uint64_t sent_frames = good.frames() + flood_frames;
  ASSERT_TRUE(wait_settled(daemon, static_cast<double>(sent_frames), 20s)) << daemon.log();
  // Recovery: the flooded station's console gets through, and the drops stop.
  const Scrape settled = scrape(daemon);
  v1::Frame pain = frame("s2-console", 0);
  add_pain(pain, 1'000'000, 8);
  // Live, it arrives after the flood's last frame: stamped so, or the runner's reorder window
  // would count it late.
  pain.set_recorded_arrival_us(flood_last_us + 1'000'000);
  zmq::socket_t push = make_push(ctx, daemon.ingest_endpoint());
  ASSERT_TRUE(send_frame(push, pain));
  ASSERT_TRUE(sub.collect_until([&] { return sub.count("risk/st2") > 0; }, 10s)) << daemon.log();
  ASSERT_TRUE(sub.collect_until([&] { return static_cast<int>(sub.count("step/st1")) >= complete1; }, 10s))
      << "steps " << sub.count("step/st1") << " of " << complete1;
  sub.poll(200ms);
  const Scrape after = scrape(daemon);

  const double flood_accepted = after.ingested() - static_cast<double>(good.samples()) - 1;
  const double drops = after.dropped("ingest", "worker_ring_full");
  const double flood_fused = flood_accepted - drops;
  EXPECT_EQ(good.failed(), 0u);
  EXPECT_EQ(after.ingested(), static_cast<double>(good.samples() + flood_samples + 1)) << "all valid: all accepted";
  EXPECT_EQ(after.ingested(), after.fused() + drops) << "every accepted sample fused or counted";
  EXPECT_GE(flood_accepted / flood_fused, 10.0) << "the flood offered " << flood_accepted << " samples, the worker took "
                                                << flood_fused;
  // Samples are dropped at ingest only. The flood's worker fuses 10-30x real time, so on a busy
  // machine it can also make outputs (steps, fused streams, store records) faster than the
  // publisher or the store thread take them: those are counted at their own stage, and the good
  // station, on the other worker, must not lose a step for it (checked below).
  const double output_drops = after.dropped("worker", "output_ring_full") + after.dropped("store", "ring_full");
  EXPECT_EQ(after.dropped(), drops + output_drops) << "samples dropped at ingest only, outputs only where overloaded";
  EXPECT_EQ(after.dropped("ingest", "worker_ring_full"), settled.dropped("ingest", "worker_ring_full"))
      << "drops went on after the flood";
  EXPECT_GT(steps_during_flood, 0u) << "the good station published no step during the flood";
  EXPECT_EQ(static_cast<int>(sub.count("step/st1")), complete1) << "the good station lost nothing";
  // Rings are preallocated and libzmq's queue is bounded by rcvhwm: 64 MiB is generous. Not under
  // ASan: its quarantine holds every freed block (libzmq frees one per message) up to 256 MiB by
  // default, so RSS measures the sanitizer, not the daemon; the release build checks the bound.
#if !defined(__SANITIZE_ADDRESS__)
  EXPECT_LT(rss_peak - before.rss_bytes(), 64.0 * 1024 * 1024);
#endif
  report("good station sent " + std::to_string(good.samples()) + " samples in " + std::to_string(good.frames()) +
         " frames at 1x; flood sent " + std::to_string(flood_samples.load()) + " samples in " +
         std::to_string(flood_frames.load()) + " frames over 3 s; counted ingested " + n(after.ingested()) +
         ", fused " + n(after.fused()) + ", dropped ingest.worker_ring_full " + n(drops) + ", outputs dropped " + n(output_drops) + " (flood offered " +
         std::to_string(flood_accepted / flood_fused).substr(0, 5) + "x what its worker took); st1 steps " +
         std::to_string(steps_during_flood) + " during the flood, " + std::to_string(sub.count("step/st1")) + "/" +
         std::to_string(complete1) + " in all; RSS " + n(before.rss_bytes() / 1048576) + " MiB before, peak " +
         n(rss_peak / 1048576) + " MiB, " + n(at_flood_end.rss_bytes() / 1048576) + " MiB at flood end");
}

// A subscriber connects, subscribes to everything and never reads; the daemon's PUB has a small
// sndhwm. A second subscriber reads everything. The PUB is bound on ipc: over loopback TCP the
// kernel would buffer over a megabyte for the stalled peer (its send buffer grows with a 64 KB
// MSS), hiding the HWM this test is about; a Unix socket buffers ~200 KB.
class SlowSubscriber : public ::testing::TestWithParam<bool> {};

TEST_P(SlowSubscriber, ThePublisherKeepsGoingAndEveryLossIsEitherCountedOrOnTheStalledSide) {
  const bool nodrop = GetParam();
  std::string toml = with_keys(base_toml(), "[publish]", std::string("sndhwm = 100\nnodrop = ") + (nodrop ? "true" : "false"));
  TempDir dir;
  Daemon daemon(toml + registry_toml(2), {"--publish", "ipc://" + (dir.path() / "pub.sock").string()});
  ASSERT_TRUE(daemon.started()) << daemon.log();
  zmq::context_t ctx{1};
  zmq::socket_t stalled(ctx, zmq::socket_type::sub);
  stalled.set(zmq::sockopt::rcvhwm, 10);
  stalled.set(zmq::sockopt::linger, 0);
  stalled.set(zmq::sockopt::subscribe, "");
  stalled.connect(daemon.publish_endpoint());
  TopicSubscriber reader(ctx, daemon.publish_endpoint(), {""});
  ASSERT_TRUE(reader.wait_joined(10s)) << daemon.log();

  int complete1 = 0, complete2 = 0;
  auto frames = running_frames(1, 56.0, 100.0, {}, &complete1);
  const auto st2 = running_frames(2, 56.0, 100.0, {}, &complete2);
  frames.insert(frames.end(), st2.begin(), st2.end());
  std::stable_sort(frames.begin(), frames.end(),
                   [](const auto& a, const auto& b) { return a.samples(0).t_us() < b.samples(0).t_us(); });
  {
    // 56 s of two stations in under 5 s: ~6,000 outputs, ~550 KB, while the stalled side holds
    // ~200 KB.
    PacedSender sender(ctx, daemon.ingest_endpoint(), frames, 12.0);
    while (!sender.done()) reader.poll(20ms);
    sender.join();
    ASSERT_TRUE(wait_settled(daemon, static_cast<double>(sender.frames()), 20s)) << daemon.log();
    ASSERT_EQ(sender.failed(), 0u);
  }
  // The publisher keeps going after the stream: its heartbeats are still sent, or with nodrop
  // refused at the stalled subscriber's HWM and counted.
  const Scrape mid = scrape(daemon);
  const auto heartbeats = [&](const Scrape& x) { return x.published("status") + x.dropped("publish", "hwm"); };
  ASSERT_TRUE(eventually([&] { return heartbeats(scrape(daemon)) > heartbeats(mid) + 3; }, 5s))
      << "the publisher stopped; log:\n" << daemon.log();
  reader.poll(500ms);
  const Scrape s = scrape(daemon);
  const double hwm = s.dropped("publish", "hwm");
  const double published = s.sum("kneeload_outputs_published_total");
  EXPECT_EQ(s.fused(), s.ingested());
  EXPECT_EQ(s.dropped() - hwm, 0) << "no loss anywhere but at the PUB socket";
  if (!nodrop) {
    // Only the stalled subscriber loses (invisible to the daemon: README "Counters"); the reader
    // gets every message, with no sequence gap, and every step.
    EXPECT_EQ(hwm, 0);
    EXPECT_EQ(reader.seq_gaps(), 0u);
    EXPECT_EQ(static_cast<int>(reader.count("step/st1")), complete1);
    EXPECT_EQ(static_cast<int>(reader.count("step/st2")), complete2);
  } else {
    // XPUB_NODROP refuses a message when any matching subscriber is at its HWM, so the stalled
    // one (subscribed to everything) stops delivery to everyone once its pipe is full (README
    // publish.nodrop): every refusal is counted, and what the reader got has no gap.
    EXPECT_GT(hwm, 0) << "the stalled subscriber never reached its HWM: the test proves nothing";
    EXPECT_EQ(reader.seq_gaps(), 0u);
    EXPECT_LT(static_cast<int>(reader.count("step/st1")), complete1) << "a stalled nodrop subscriber blocks all";
  }
  // Every output the daemon handed to its socket reached the reader (status heartbeats from
  // before it joined did not, hence outputs only).
  for (const char* topic : {"state", "step", "risk", "session"}) {
    EXPECT_EQ(static_cast<double>(reader.count(std::string(topic) + "/")), s.published(topic)) << topic;
  }
  report(std::string("nodrop=") + (nodrop ? "true" : "false") + ": fused " + n(s.fused()) + " of " +
         n(s.ingested()) + " ingested; published " + n(published) + " messages, publish.hwm " + n(hwm) +
         "; the reader received " + std::to_string(reader.received().size()) + " with " +
         std::to_string(reader.seq_gaps()) + " missing by seq; steps st1 " + std::to_string(reader.count("step/st1")) +
         "/" + std::to_string(complete1) + ", st2 " + std::to_string(reader.count("step/st2")) + "/" +
         std::to_string(complete2));
}

INSTANTIATE_TEST_SUITE_P(Nodrop, SlowSubscriber, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "NodropTrue" : "NodropFalse"; });

// Two stations stream 24 s at 4x real time while SIGHUP arrives back to back, 40 times, alternating a
// registry that adds a third station and one that removes it. Each reload is awaited (its count
// on the metrics endpoint) before the next signal, so none is merged with another by the kernel.
TEST(OverloadFaults, ASighupStormDuringLoadAppliesEveryReloadAndLosesNothing) {
  const std::string two = base_toml() + registry_toml(2);
  const std::string three = base_toml() + registry_toml(3);
  Daemon daemon(two);
  ASSERT_TRUE(daemon.started()) << daemon.log();
  zmq::context_t ctx{1};
  TopicSubscriber sub(ctx, daemon.publish_endpoint(), {"status", "step/"});
  ASSERT_TRUE(sub.wait_joined(10s)) << daemon.log();

  int complete1 = 0, complete2 = 0;
  auto frames = running_frames(1, 24.0, 100.0, {}, &complete1);
  const auto st2 = running_frames(2, 24.0, 100.0, {}, &complete2);
  frames.insert(frames.end(), st2.begin(), st2.end());
  std::stable_sort(frames.begin(), frames.end(),
                   [](const auto& a, const auto& b) { return a.samples(0).t_us() < b.samples(0).t_us(); });
  constexpr int kReloads = 40;
  int applied = 0;
  std::uint64_t sent_frames = 0, sent_samples = 0;
  {
    PacedSender sender(ctx, daemon.ingest_endpoint(), frames, 4.0);
    for (int i = 0; i < kReloads; ++i) {
      write_file(daemon.config_path(), i % 2 == 0 ? three : two);
      daemon.process().signal(SIGHUP);
      ASSERT_TRUE(eventually([&] {
        return scrape(daemon).labelled("kneeload_reloads_total", {"outcome=\"applied\""}) >= i + 1;
      }, 10s)) << "reload " << i + 1 << " not applied; log:\n" << daemon.log();
      ++applied;
      sub.poll(0ms);
    }
    EXPECT_FALSE(sender.done()) << "the stream ended before the storm: the test proves less than it says";
    while (!sender.done()) sub.poll(20ms);
    sender.join();
    sent_frames = sender.frames();
    sent_samples = sender.samples();
    ASSERT_EQ(sender.failed(), 0u);
  }
  ASSERT_TRUE(wait_settled(daemon, static_cast<double>(sent_frames), 20s)) << daemon.log();
  ASSERT_TRUE(sub.collect_until([&] {
    return static_cast<int>(sub.count("step/st1")) >= complete1 && static_cast<int>(sub.count("step/st2")) >= complete2;
  }, 10s)) << "steps st1 " << sub.count("step/st1") << "/" << complete1 << ", st2 " << sub.count("step/st2") << "/"
           << complete2 << "; log:\n" << daemon.log();
  sub.poll(200ms);
  const Scrape s = scrape(daemon);
  EXPECT_TRUE(daemon.process().running());
  EXPECT_EQ(s.labelled("kneeload_reloads_total", {"outcome=\"applied\""}), kReloads);
  EXPECT_EQ(s.labelled("kneeload_reloads_total", {"outcome=\"refused\""}), 0);
  EXPECT_EQ(s.get("kneeload_config_generation"), kReloads + 1);
  EXPECT_EQ(s.ingested(), static_cast<double>(sent_samples));
  EXPECT_EQ(s.fused(), s.ingested());
  EXPECT_EQ(s.dropped(), 0);
  EXPECT_EQ(static_cast<int>(sub.count("step/st1")), complete1);
  EXPECT_EQ(static_cast<int>(sub.count("step/st2")), complete2);
  report("sent " + std::to_string(sent_samples) + " samples in " + std::to_string(sent_frames) + " frames and " +
         std::to_string(applied) + " SIGHUPs; counted reloads applied " +
         n(s.labelled("kneeload_reloads_total", {"outcome=\"applied\""})) + ", generation " +
         n(s.get("kneeload_config_generation")) + ", ingested " + n(s.ingested()) + " = fused " + n(s.fused()) +
         ", dropped " + n(s.dropped()) + "; steps st1 " + std::to_string(sub.count("step/st1")) + "/" +
         std::to_string(complete1) + ", st2 " + std::to_string(sub.count("step/st2")) + "/" + std::to_string(complete2));
}

}  // namespace
}  // namespace kneeload::testing
