// Fault tests at the ingest edge, with a real kneeloadd on loopback: a device that drops out and
// returns, device clocks that jump ahead and back, duplicated and reordered frames, and a peer
// spewing garbage beside good stations. Each test prints (and records) what it sent and what
// the daemon counted, and checks that every accepted sample was fused or counted as dropped.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "fault_harness.hpp"

namespace kneeload::testing {
namespace {

constexpr std::int64_t kT0Us = 1'000'000;  // running_frames()' first sample time

class IngestFaults : public ::testing::Test {
 protected:
  void start(const std::string& toml) {
    daemon_.emplace(toml);
    ASSERT_TRUE(daemon_->started()) << "kneeloadd did not start; its log:\n" << daemon_->log();
    sub_.emplace(ctx_, daemon_->publish_endpoint(), std::vector<std::string>{"status", "step/", "risk/"});
    ASSERT_TRUE(sub_->wait_joined(10s)) << "no status heartbeat; log:\n" << daemon_->log();
    push_.emplace(make_push(ctx_, daemon_->ingest_endpoint()));
  }
  void send(const v1::Frame& f) {
    ASSERT_TRUE(send_frame(*push_, f));
    sent_.add(f);
  }

  // The books: every frame sent was received; every accepted sample was fused or counted.
  Scrape settle() {
    EXPECT_TRUE(wait_settled(*daemon_, static_cast<double>(sent_.frames + extra_frames_), 20s))
        << "not settled; last scrape ingested=" << scrape(*daemon_).ingested()
        << " fused=" << scrape(*daemon_).fused() << "; log:\n" << daemon_->log();
    return scrape(*daemon_);
  }

  std::vector<v1::RiskEvent> events_named(const std::string& station, const std::string& rule_name,
                                          const std::string& device) const {
    std::vector<v1::RiskEvent> out;
    for (const auto& e : sub_->decoded<v1::RiskEvent>("risk/" + station)) {
      if (e.rule_name() == rule_name && (device.empty() || e.device_id() == device)) out.push_back(e);
    }
    return out;
  }

  zmq::context_t ctx_{1};
  std::optional<Daemon> daemon_;
  std::optional<TopicSubscriber> sub_;
  std::optional<zmq::socket_t> push_;
  Sent sent_;
  std::uint64_t extra_frames_ = 0;  // sent outside sent_ (garbage)
};

std::string n(double v) { return std::to_string(static_cast<long long>(std::llround(v))); }

std::int64_t first_t(const v1::Frame& f) { return f.samples(0).t_us(); }

TEST_F(IngestFaults, ADeviceThatDropsOutIsFlaggedAndItsReturnClearsItWithNothingAcceptedLost) {
  start(base_toml(/*stale_after_s=*/0.5) + registry_toml(2));
  int complete2 = 0;
  const auto st1 = running_frames(1, 5.0);
  const auto st2 = running_frames(2, 5.0, 100.0, {}, &complete2);
  std::vector<v1::Frame> all;
  for (const auto* fs : {&st1, &st2}) all.insert(all.end(), fs->begin(), fs->end());
  std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return first_t(a) < first_t(b); });

  // A: 0-1.5 s at once. B: 1.5-3.5 s in real time with s1-L silent (its frames are lost, as
  // over a dead radio link: the daemon sees a sequence gap). C: the rest at once.
  constexpr std::int64_t kGapFromUs = kT0Us + 1'500'000, kGapToUs = kT0Us + 3'500'000;
  std::uint64_t withheld = 0;
  const auto b_start = std::chrono::steady_clock::now();
  for (const v1::Frame& f : all) {
    const std::int64_t t = first_t(f);
    if (t >= kGapFromUs && t < kGapToUs) {
      std::this_thread::sleep_until(b_start + std::chrono::microseconds(t - kGapFromUs));
      if (f.device_id() == "s1-L") {
        withheld += static_cast<std::uint64_t>(f.samples_size());
        continue;
      }
    }
    send(f);
  }
  ASSERT_TRUE(sub_->collect_until([&] { return !events_named("st1", "sensor_dropout", "s1-L").empty(); }, 5s))
      << "no dropout event for s1-L; log:\n" << daemon_->log();
  // Its return clears it: the frames after the gap arrive within stale_after_s of each other.
  ASSERT_TRUE(sub_->collect_until([&] { return events_named("st1", "sensor_dropout", "s1-L").size() >= 2; }, 5s))
      << daemon_->log();
  const auto dropout = events_named("st1", "sensor_dropout", "s1-L");
  EXPECT_EQ(dropout[0].phase(), v1::EVENT_PHASE_ONSET);
  EXPECT_EQ(dropout[1].phase(), v1::EVENT_PHASE_CLEAR);
  // No other device was flagged while it streamed (all of them go silent after C, later).
  EXPECT_EQ(sub_->count("risk/st2"), 0u) << "station 2 streamed throughout";
  EXPECT_EQ(events_named("st1", "sensor_dropout", "").size(), 2u) << "only s1-L dropped out";
  const auto st2_steps_at_clear = sub_->count("step/st2");

  const Scrape s = settle();
  ASSERT_TRUE(sub_->collect_until([&] { return static_cast<int>(sub_->count("step/st2")) >= complete2; }, 10s));
  sub_->poll(200ms);
  // Steps of s1-L resume after the gap (left foot: insole side left).
  bool left_after = false;
  for (const auto& st : sub_->decoded<v1::StepMetrics>("step/st1")) {
    left_after = left_after || (st.side() == v1::SIDE_LEFT && st.ic_t_us() > kGapToUs - kT0Us);
  }
  EXPECT_TRUE(left_after) << "no left step after s1-L returned";
  EXPECT_EQ(s.ingested(), static_cast<double>(sent_.samples)) << "every sample sent is valid";
  EXPECT_EQ(s.fused(), s.ingested());
  EXPECT_EQ(s.dropped(), 0);
  EXPECT_EQ(static_cast<int>(sub_->count("step/st2")), complete2) << "the other station: steps vs contacts sent";
  report("sent " + std::to_string(sent_.frames) + " frames / " + std::to_string(sent_.samples) + " samples (" +
         std::to_string(withheld) + " samples of s1-L withheld over 2 s); counted ingested " +
         std::to_string(static_cast<std::uint64_t>(s.ingested())) + ", fused " +
         std::to_string(static_cast<std::uint64_t>(s.fused())) + ", dropped " +
         std::to_string(static_cast<std::uint64_t>(s.dropped())) + "; s1-L dropout onset+clear; st2 steps " +
         std::to_string(sub_->count("step/st2")) + " of " + std::to_string(complete2) + " contacts (" +
         std::to_string(st2_steps_at_clear) + " by the clear)");
}

// The treadmill's clock: 35 s steady (the aligner locks after 30 s of evidence), then 5 s of
// frames 3 s ahead, then a reboot (seq 0) with its clock 20 s behind. Arrival times stay
// continuous (recorded_arrival_us), as the daemon would see them live.
TEST_F(IngestFaults, ClockJumpsAheadAndBackAreCountedAndRaiseAClockFault) {
  start(base_toml() + registry_toml(1));
  constexpr int kSteady = 350, kAhead = 50, kBack = 50;
  constexpr std::int64_t kPeriodUs = 100'000;
  for (int k = 0; k < kSteady + kAhead + kBack; ++k) {
    const bool rebooted = k >= kSteady + kAhead;
    const std::int64_t step_us = k < kSteady ? 0 : rebooted ? -20'000'000 : 3'000'000;
    v1::Frame f = frame("s1-tm", static_cast<std::uint32_t>(rebooted ? k - kSteady - kAhead : k));
    add_treadmill(f, kT0Us + k * kPeriodUs + step_us, 3.0f);
    f.set_recorded_arrival_us(kT0Us + k * kPeriodUs + 2'000);
    send(f);
  }
  settle();
  // Workers fold their sessions' clock counters on their idle tick: wait for it.
  eventually([&] { return scrape(*daemon_).get("kneeload_clock_jumps_total") >= 2; }, 5s);
  sub_->poll(300ms);
  const Scrape s = scrape(*daemon_);
  const auto faults = events_named("st1", "clock_jump", "s1-tm");
  std::uint64_t onsets = 0;
  for (const auto& e : faults) onsets += e.phase() == v1::EVENT_PHASE_ONSET ? 1 : 0;
  EXPECT_EQ(s.get("kneeload_clock_jumps_total"), 2) << daemon_->log();
  EXPECT_GE(onsets, 1u) << "no clock_jump (F4) onset for s1-tm";
  EXPECT_EQ(s.sample_rejects("time_backwards"), 0) << "a reboot (seq 0) may restart the clock";
  EXPECT_EQ(s.ingested(), static_cast<double>(sent_.samples));
  EXPECT_EQ(s.fused(), s.ingested());
  std::string by_reason;
  for (const auto& [series, v] : s.e.samples) {
    if (series.rfind("kneeload_dropped_total{", 0) == 0 && v > 0) by_reason += " " + series + "=" + n(v);
  }
  // Until a backward jump is confirmed (jump_confirm_frames = 5 frames), the aligner maps the
  // new clock with the old offset, 23 s in the past, so those samples are behind the runner's
  // reorder window: dropped as late, and counted. The frames after it are fused again.
  const double late = s.dropped("worker", "late_sample");
  EXPECT_EQ(s.dropped(), late) << by_reason;
  EXPECT_LE(late, 6) << "more than the confirmation frames of the backward jump were lost";
  report("sent " + std::to_string(sent_.samples) + " treadmill samples (jump +3 s at frame 350, reboot -20 s at 400); "
         "counted clock_jumps_total " + std::to_string(static_cast<int>(s.get("kneeload_clock_jumps_total"))) +
         ", F4 onsets " + std::to_string(onsets) + ", ingested " + std::to_string(static_cast<std::uint64_t>(s.ingested())) +
         ", fused " + std::to_string(static_cast<std::uint64_t>(s.fused())) + ", dropped " +
         std::to_string(static_cast<std::uint64_t>(s.dropped())));
}

// Every 7th frame is sent twice in a row (a radio retransmission); every 5th treadmill frame
// swaps places with the next one (the later one accepted with a gap, the earlier one refused).
TEST_F(IngestFaults, DuplicateAndReorderedFramesAreRefusedWithExactCountsAndStepsAreUnaffected) {
  start(base_toml() + registry_toml(1));
  int complete = 0;
  const auto frames = running_frames(1, 6.0, 100.0, {}, &complete);
  std::uint64_t dups = 0, dup_samples = 0, reordered = 0, reordered_samples = 0;
  std::optional<v1::Frame> held;  // a treadmill frame waiting for its successor
  int treadmill_index = 0;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const v1::Frame& f = frames[i];
    if (f.device_id() == "s1-tm") {
      if (held) {
        send(f);
        send(*held);
        ++reordered;
        reordered_samples += static_cast<std::uint64_t>(held->samples_size());
        held.reset();
        ++treadmill_index;
        continue;
      }
      if (treadmill_index++ % 5 == 2) {
        held = f;
        continue;
      }
    }
    send(f);
    if (i % 7 == 3) {
      send(f);
      ++dups;
      dup_samples += static_cast<std::uint64_t>(f.samples_size());
    }
  }
  if (held) send(*held);  // held last, with no successor to swap with: in order, accepted
  const Scrape s = settle();
  ASSERT_TRUE(sub_->collect_until([&] { return static_cast<int>(sub_->count("step/st1")) >= complete; }, 10s))
      << "steps " << sub_->count("step/st1") << " of " << complete << "; log:\n" << daemon_->log();
  sub_->poll(200ms);
  // Accepted = sent - the duplicates' samples - the refused reordered frames' samples.
  EXPECT_EQ(s.frame_rejects("duplicate_seq"), static_cast<double>(dups));
  EXPECT_EQ(s.frame_rejects("reordered_seq"), static_cast<double>(reordered));
  EXPECT_EQ(s.get("kneeload_frames_received_total"), static_cast<double>(sent_.frames));
  EXPECT_EQ(s.ingested(), static_cast<double>(sent_.samples - dup_samples - reordered_samples));
  EXPECT_EQ(s.fused(), s.ingested());
  EXPECT_EQ(s.dropped(), 0);
  EXPECT_EQ(static_cast<int>(sub_->count("step/st1")), complete) << "steps published vs complete contacts sent";
  report("sent " + std::to_string(sent_.frames) + " frames (" + std::to_string(dups) + " duplicated, " +
         std::to_string(reordered) + " treadmill pairs swapped); counted duplicate_seq " +
         std::to_string(static_cast<int>(s.frame_rejects("duplicate_seq"))) + ", reordered_seq " +
         std::to_string(static_cast<int>(s.frame_rejects("reordered_seq"))) + ", ingested " +
         std::to_string(static_cast<std::uint64_t>(s.ingested())) + " = fused " +
         std::to_string(static_cast<std::uint64_t>(s.fused())) + ", dropped 0; steps " +
         std::to_string(sub_->count("step/st1")) + " of " + std::to_string(complete) + " contacts");
}

// Two good stations, each on its own connection, and a third peer sending random bytes (some
// over max_frame_bytes), interleaved with theirs. Every garbage message is refused and counted
// once, and the good stations' books and steps are exactly as without it.
TEST_F(IngestFaults, AGarbageSpewingPeerIsCountedOnceAndTheGoodStationsAreServedExactly) {
  start(base_toml() + registry_toml(2));
  zmq::socket_t good2 = make_push(ctx_, daemon_->ingest_endpoint());
  zmq::socket_t garbage = make_push(ctx_, daemon_->ingest_endpoint());
  int complete1 = 0, complete2 = 0;
  const auto st1 = running_frames(1, 6.0, 100.0, {}, &complete1);
  const auto st2 = running_frames(2, 6.0, 100.0, {}, &complete2);
  std::mt19937_64 rng(0x6b6e6565);
  std::uniform_int_distribution<int> byte(0, 255), length(1, 400);
  std::uint64_t junk = 0, oversize = 0;
  const std::size_t n = std::max(st1.size(), st2.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (i < st1.size()) send(st1[i]);
    if (i < st2.size()) {
      ASSERT_TRUE(send_frame(good2, st2[i]));
      sent_.add(st2[i]);
    }
    for (int g = 0; g < 2; ++g) {
      // Within libzmq's maxmsgsize (4 x max_frame_bytes), so it reaches the decoder.
      const bool big = (junk % 50) == 49;
      std::string b(big ? 70'000 : static_cast<std::size_t>(length(rng)), '\0');
      for (char& c : b) c = static_cast<char>(byte(rng));
      ASSERT_TRUE(send_raw(garbage, b));
      ++junk;
      oversize += big ? 1 : 0;
    }
  }
  extra_frames_ = junk;
  const Scrape s = settle();
  ASSERT_TRUE(sub_->collect_until([&] {
    return static_cast<int>(sub_->count("step/st1")) >= complete1 && static_cast<int>(sub_->count("step/st2")) >= complete2;
  }, 10s)) << daemon_->log();
  sub_->poll(200ms);
  const double frame_rejects = s.sum("kneeload_frames_rejected_total");
  EXPECT_EQ(s.get("kneeload_frames_received_total"), static_cast<double>(sent_.frames + junk));
  EXPECT_EQ(frame_rejects, static_cast<double>(junk)) << "each garbage message refused once, whole";
  EXPECT_EQ(s.frame_rejects("oversize"), static_cast<double>(oversize));
  EXPECT_EQ(s.sum("kneeload_samples_rejected_total"), 0) << "no garbage got as far as a sample";
  EXPECT_EQ(s.ingested(), static_cast<double>(sent_.samples));
  EXPECT_EQ(s.fused(), s.ingested());
  EXPECT_EQ(s.dropped(), 0);
  EXPECT_EQ(static_cast<int>(sub_->count("step/st1")), complete1);
  EXPECT_EQ(static_cast<int>(sub_->count("step/st2")), complete2);
  report("sent " + std::to_string(sent_.frames) + " good frames / " + std::to_string(sent_.samples) + " samples and " +
         std::to_string(junk) + " garbage messages (" + std::to_string(oversize) + " oversize); counted frames rejected " +
         std::to_string(static_cast<std::uint64_t>(frame_rejects)) + " (malformed " +
         std::to_string(static_cast<std::uint64_t>(s.frame_rejects("malformed"))) + "), ingested " +
         std::to_string(static_cast<std::uint64_t>(s.ingested())) + " = fused, dropped 0; steps st1 " +
         std::to_string(sub_->count("step/st1")) + "/" + std::to_string(complete1) + ", st2 " +
         std::to_string(sub_->count("step/st2")) + "/" + std::to_string(complete2));
}

}  // namespace
}  // namespace kneeload::testing
