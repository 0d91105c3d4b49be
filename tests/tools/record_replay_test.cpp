// kneeloadctl record and replay end to end: a recorder between a device and a real kneeloadd,
// replays into fresh daemons, replay determinism across speeds, and damaged recordings.
#include <gtest/gtest.h>

#include <google/protobuf/text_format.h>

#include "ctl_harness.hpp"
#include "recording.hpp"

namespace kneeload::testing {
namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Devices are never reported stale during these tests: staleness is judged on the daemon's
// own receive clock (README "Counters"), so a replay at another speed would see other dropout
// events than the original run, whatever the recorded arrival times say.
std::string config_toml() { return base_toml(/*stale_after_s=*/600.0) + registry_toml(1, kCellAreaCm2); }

constexpr double kRunningS = 2.0;

// A recording made by `kneeloadctl record` between a paced device stream and kneeloadd, and
// what that daemon published from it.
struct Session {
  TempDir dir;
  fs::path recording = dir.path() / "session.rec";
  std::vector<std::string> sent;   // frame bytes, in sending order
  std::vector<Received> outputs;   // everything the daemon published, up to its final status
  std::string config;              // the daemon's config file
  std::string recorder_err;
};

void record_session(Session& s, bool stamp_forwarded = false) {
  zmq::context_t ctx{1};
  Daemon daemon(config_toml());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  s.config = read_file(daemon.config_path());
  Subscriber sub(ctx, daemon.publish_endpoint());
  ASSERT_TRUE(sub.wait_joined(10s)) << daemon.log();

  const fs::path endpoints = s.dir.path() / "recorder.endpoints";
  std::vector<std::string> args{"record", "--listen", "tcp://127.0.0.1:*", "--endpoints-file", endpoints.string(),
                                "--output", s.recording.string(), "--forward", daemon.ingest_endpoint(), "--config",
                                daemon.config_path().string()};
  if (stamp_forwarded) args.emplace_back("--stamp-forwarded");
  Ctl recorder(args);
  ASSERT_TRUE(eventually([&] { return fs::exists(endpoints) || !recorder.running(); }, 10s)) << recorder.err();
  const std::string line = read_file(endpoints);
  ASSERT_EQ(line.rfind("listen=tcp://127.0.0.1:", 0), 0u) << line;
  const std::string listen = line.substr(7, line.find('\n') - 7);
  zmq::socket_t push = push_to(ctx, listen);

  // Sent at the pace the devices would send (the device clock runs from kT0Us), so the
  // recorded arrival times are those of a live run.
  const auto start = std::chrono::steady_clock::now();
  for (const TimedFrame& f : running_frames_with_pain(1, kRunningS)) {
    std::this_thread::sleep_until(start + std::chrono::microseconds(f.t_us - kT0Us));
    s.sent.push_back(f.frame.SerializeAsString());
    ASSERT_TRUE(send_raw(push, s.sent.back()));
  }
  ASSERT_TRUE(wait_frames_received(sub, s.sent.size(), 10s))
      << "the daemon did not receive every forwarded frame; recorder:\n" << recorder.err();
  recorder.signal(SIGINT);
  ASSERT_EQ(recorder.wait(kExitBound).value_or(-1), 0) << recorder.err();
  s.recorder_err = recorder.err();
  ASSERT_TRUE(drain(daemon, sub)) << daemon.log();
  s.outputs = sub.received();
}

struct ReplayRun {
  int code = -1;
  std::string err;
  std::vector<Received> outputs;
};

// Replays `recording` into a fresh daemon and returns everything it published up to its final
// status. The daemon is drained only once it has received every frame, so nothing is in flight.
void replay_into_fresh_daemon(const fs::path& recording, std::size_t frames, const std::string& speed,
                              ReplayRun& run) {
  zmq::context_t ctx{1};
  Daemon daemon(config_toml());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  Subscriber sub(ctx, daemon.publish_endpoint());
  ASSERT_TRUE(sub.wait_joined(10s)) << daemon.log();
  Ctl replay({"replay", recording.string(), "--endpoint", daemon.ingest_endpoint(), "--speed", speed, "--observe",
              daemon.publish_endpoint()});
  run.code = replay.wait(kExitBound).value_or(-1);
  run.err = replay.err();
  ASSERT_EQ(run.code, 0) << run.err;
  ASSERT_TRUE(wait_frames_received(sub, frames, 10s)) << run.err;
  ASSERT_TRUE(drain(daemon, sub)) << daemon.log();
  run.outputs = sub.received();
}

std::vector<v1::RiskEvent> risk_events(const std::vector<Received>& received) {
  std::vector<v1::RiskEvent> out;
  for (const Received& r : received) {
    if (r.topic.rfind("risk/", 0) != 0) continue;
    v1::RiskEvent e;
    EXPECT_TRUE(e.ParseFromString(r.payload)) << r.topic;
    out.push_back(e);
  }
  return out;
}

std::string text(const google::protobuf::Message& m) {
  std::string s;
  google::protobuf::TextFormat::PrintToString(m, &s);
  return s;
}

TEST(Record, CapturesEveryForwardedFrameWithTheConfigSnapshot) {
  Session s;
  record_session(s);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  EXPECT_TRUE(contains(s.recorder_err, "recorded " + std::to_string(s.sent.size()) + " frames")) << s.recorder_err;
  EXPECT_TRUE(contains(s.recorder_err, "not forwarded 0")) << s.recorder_err;

  ctl::RecordingReader reader;
  std::string error;
  ASSERT_TRUE(reader.open(s.recording.string(), error)) << error;
  EXPECT_EQ(reader.header().config, s.config);
  EXPECT_EQ(reader.header().schema_version, 1u);
  ctl::RecordedFrame rec;
  std::vector<ctl::RecordedFrame> records;
  ctl::RecordingReader::Next next;
  while ((next = reader.next(rec)) == ctl::RecordingReader::Next::kRecord) records.push_back(rec);
  ASSERT_EQ(next, ctl::RecordingReader::Next::kEnd) << ctl::describe(reader.damage());
  ASSERT_EQ(records.size(), s.sent.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(records[i].payload, s.sent[i]) << "record " << i << " is not the frame sent";
    if (i > 0) {
      EXPECT_GE(records[i].arrival_steady_us, records[i - 1].arrival_steady_us) << "record " << i;
      EXPECT_GE(records[i].arrival_unix_us, reader.header().created_unix_us) << "record " << i;
    }
  }
  // Paced as sent: the recording spans about the running time (with generous slack for a
  // loaded machine; the exact value is not the point, that real arrival times were kept is).
  const double span_s = static_cast<double>(records.back().arrival_steady_us - records.front().arrival_steady_us) / 1e6;
  EXPECT_GT(span_s, kRunningS * 0.5) << "arrival times were not recorded as the frames arrived";
  EXPECT_FALSE(risk_events(s.outputs).empty()) << "the forwarded pain reports reached the daemon";
}

TEST(Replay, IntoAFreshDaemonReproducesTheRiskEvents) {
  Session s;
  record_session(s);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  ReplayRun run;
  replay_into_fresh_daemon(s.recording, s.sent.size(), "1", run);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());

  const std::vector<v1::RiskEvent> original = risk_events(s.outputs), replayed = risk_events(run.outputs);
  ASSERT_EQ(original.size(), 2u) << "an R10 onset and its clear were sent";
  ASSERT_EQ(replayed.size(), original.size());
  for (std::size_t i = 0; i < original.size(); ++i) {
    v1::RiskEvent a = original[i], b = replayed[i];
    // Besides the wall-clock fields, Header.t_us may differ here: it is on the daemon-aligned
    // clock, and the live daemon aligned on its own receive times, which trail the recorded
    // ones by the forwarding latency. (--stamp-forwarded removes that; see the next test.)
    for (v1::RiskEvent* e : {&a, &b}) {
      e->mutable_header()->clear_published_unix_us();
      e->mutable_header()->clear_latency_us();
      e->mutable_header()->clear_age_us();
      e->mutable_header()->clear_t_us();
    }
    EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString()) << "event " << i << "\noriginal:\n"
                                                             << text(a) << "replayed:\n" << text(b);
  }
  EXPECT_TRUE(contains(run.err, "events: R10 pain_report clear 1, R10 pain_report onset 1")) << run.err;
  EXPECT_TRUE(contains(run.err, "sent " + std::to_string(s.sent.size()) + " frames")) << run.err;
  EXPECT_TRUE(contains(run.err, "samples: insole ")) << run.err;
  EXPECT_TRUE(contains(run.err, "pain 2")) << run.err;
  EXPECT_TRUE(contains(run.err, "rejected: none; dropped: none")) << run.err;
}

// Messages of `a` and `b` must match one for one, per topic.
void expect_same_outputs(const std::map<std::string, std::vector<std::string>>& a,
                         const std::map<std::string, std::vector<std::string>>& b, const std::string& what) {
  for (const char* topic : {"state/st1", "step/st1", "risk/st1"}) {
    ASSERT_TRUE(a.count(topic) > 0 && !a.at(topic).empty()) << topic << ": nothing to compare";
  }
  std::vector<std::string> topics_a, topics_b;
  for (const auto& [topic, msgs] : a) topics_a.push_back(topic);
  for (const auto& [topic, msgs] : b) topics_b.push_back(topic);
  ASSERT_EQ(topics_a, topics_b) << what;
  for (const auto& [topic, msgs] : a) {
    const std::vector<std::string>& other = b.at(topic);
    ASSERT_EQ(msgs.size(), other.size()) << topic << ": message counts, " << what;
    for (std::size_t i = 0; i < msgs.size(); ++i) {
      ASSERT_EQ(msgs[i], other[i]) << topic << ": message " << i << " differs, " << what;
    }
  }
}

TEST(Replay, OfARecordingMadeWithStampForwardedReproducesTheLiveRunExactly) {
  Session s;
  record_session(s, /*stamp_forwarded=*/true);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  ReplayRun run;
  replay_into_fresh_daemon(s.recording, s.sent.size(), "max", run);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  expect_same_outputs(deterministic_outputs(s.outputs), deterministic_outputs(run.outputs),
                      "live run vs replay at max speed");
}

TEST(Replay, AtRecordedPaceAndAtMaxSpeedPublishesIdenticalOutputs) {
  Session s;
  record_session(s);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  ReplayRun paced, fastest;
  replay_into_fresh_daemon(s.recording, s.sent.size(), "1", paced);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  replay_into_fresh_daemon(s.recording, s.sent.size(), "max", fastest);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());

  expect_same_outputs(deterministic_outputs(paced.outputs), deterministic_outputs(fastest.outputs),
                      "speed 1 vs max");
}

// ---------------------------------------------------------------------------------------------
// Damaged recordings, replayed into a plain PULL socket that counts what arrives.

class DamagedReplay : public ::testing::Test {
 protected:
  void SetUp() override {
    pull_.set(zmq::sockopt::rcvhwm, 0);
    pull_.bind("tcp://127.0.0.1:*");
    endpoint_ = pull_.get(zmq::sockopt::last_endpoint);
    // A recording written by the library: frames 10 ms apart, and one record that is not a
    // Frame at all (a device's garbage is recorded as received).
    ctl::RecordingWriter writer;
    std::string error;
    ctl::RecordingHeader header;
    header.created_unix_us = 1'700'000'000'000'000;
    ASSERT_TRUE(writer.open(path_.string(), false, header, error)) << error;
    std::size_t at = ctl::kHeaderFixedBytes + ctl::kCrcBytes;
    std::int64_t steady = 7'000'000'000;
    for (const TimedFrame& f : running_frames_with_pain(1, 1.0)) {
      payloads_.push_back(f.frame.SerializeAsString());
      if (payloads_.size() == 3) payloads_.back() = std::string("\xff\xff\xff garbage", 11);
      offsets_.push_back(at);
      arrivals_.push_back(steady);
      const auto* data = reinterpret_cast<const std::byte*>(payloads_.back().data());
      ASSERT_TRUE(writer.append(1'700'000'000'000'000 + steady / 1000, steady,
                                std::span<const std::byte>(data, payloads_.back().size()), error))
          << error;
      at += ctl::kRecordPrefixBytes + payloads_.back().size() + ctl::kCrcBytes;
      steady += 10'000;
    }
    offsets_.push_back(at);
    ASSERT_TRUE(writer.close(error)) << error;
    bytes_ = read_file(path_);
    ASSERT_EQ(bytes_.size(), at);
  }

  // Everything the PULL socket received, once the replay has ended (its frames were sent
  // before it exited, and linger delivers any still queued).
  std::vector<std::string> received() {
    std::vector<std::string> out;
    std::vector<zmq::pollitem_t> items{{pull_.handle(), 0, ZMQ_POLLIN, 0}};
    while (zmq::poll(items, std::chrono::milliseconds(500)) > 0) {
      zmq::message_t m;
      while (pull_.recv(m, zmq::recv_flags::dontwait)) out.push_back(m.to_string());
    }
    return out;
  }

  // Frame i as replay must send it: the recorded bytes, plus its recorded arrival when it is a
  // Frame (checked by parsing), or unchanged when it is not.
  void expect_sent_as_recorded(const std::vector<std::string>& got) {
    for (std::size_t i = 0; i < got.size() && i < payloads_.size(); ++i) {
      if (i == 2) {
        EXPECT_EQ(got[i], payloads_[i]) << "a record that is not a Frame is sent unchanged";
        continue;
      }
      EXPECT_EQ(got[i].substr(0, payloads_[i].size()), payloads_[i]) << "frame " << i;
      v1::Frame f;
      ASSERT_TRUE(f.ParseFromString(got[i])) << "frame " << i;
      EXPECT_EQ(f.recorded_arrival_us(), arrivals_[i]) << "frame " << i;
    }
  }

  Ctl replay(const fs::path& file, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"replay", file.string(), "--endpoint", endpoint_, "--speed", "max"};
    args.insert(args.end(), extra.begin(), extra.end());
    return Ctl(args);
  }

  zmq::context_t ctx_{1};
  zmq::socket_t pull_{ctx_, zmq::socket_type::pull};
  std::string endpoint_;
  TempDir dir_;
  fs::path path_ = dir_.path() / "good.rec";
  std::vector<std::string> payloads_;
  std::vector<std::size_t> offsets_;
  std::vector<std::int64_t> arrivals_;
  std::string bytes_;
};

TEST_F(DamagedReplay, AnIntactRecordingIsSentWholeAndStamped) {
  Ctl r = replay(path_);
  ASSERT_EQ(r.wait(kExitBound).value_or(-1), 0) << r.err();
  const std::vector<std::string> got = received();
  EXPECT_EQ(got.size(), payloads_.size());
  expect_sent_as_recorded(got);
  EXPECT_TRUE(contains(r.err(), "1 frames do not parse as a kneeload.v1.Frame: sent unchanged")) << r.err();
}

TEST_F(DamagedReplay, ATruncatedRecordingIsSentUpToTheCutAndTheOffsetReported) {
  const std::size_t k = payloads_.size() - 4;
  const fs::path cut = dir_.path() / "cut.rec";
  write_file(cut, bytes_.substr(0, offsets_[k] + 7));  // 7 bytes into record k
  Ctl r = replay(cut);
  ASSERT_EQ(r.wait(kExitBound).value_or(-1), 1) << r.err();
  const std::string expected = "is damaged at byte " + std::to_string(offsets_[k]) + ", record " + std::to_string(k) +
                               ": short record";
  EXPECT_TRUE(contains(r.err(), expected)) << "expected \"" << expected << "\" in:\n" << r.err();
  const std::vector<std::string> got = received();
  EXPECT_EQ(got.size(), k) << "every record before the cut is sent";
  expect_sent_as_recorded(got);
}

TEST_F(DamagedReplay, AFlippedByteStopsTheReplayAtItsRecordWithTheOffset) {
  const std::size_t k = 5;
  std::string flipped = bytes_;
  const std::size_t at = offsets_[k] + ctl::kRecordPrefixBytes + 3;  // inside record k's payload
  flipped[at] = static_cast<char>(flipped[at] ^ 0x01);
  const fs::path bad = dir_.path() / "flipped.rec";
  write_file(bad, flipped);
  Ctl r = replay(bad);
  ASSERT_EQ(r.wait(kExitBound).value_or(-1), 1) << r.err();
  const std::string expected = "is damaged at byte " + std::to_string(offsets_[k]) + ", record " + std::to_string(k) +
                               ": CRC mismatch (stored 0x";
  EXPECT_TRUE(contains(r.err(), expected)) << "expected \"" << expected << "\" in:\n" << r.err();
  EXPECT_TRUE(contains(r.err(), "the 5 records before it were read and 5 frames sent")) << r.err();
  const std::vector<std::string> got = received();
  EXPECT_EQ(got.size(), k);
  expect_sent_as_recorded(got);
}

TEST_F(DamagedReplay, ALengthOverTheLimitIsReported) {
  std::string bad_length = bytes_;
  bad_length.replace(offsets_[4], 4, std::string("\x00\x00\x00\x7f", 4));
  const fs::path bad = dir_.path() / "length.rec";
  write_file(bad, bad_length);
  Ctl r = replay(bad);
  ASSERT_EQ(r.wait(kExitBound).value_or(-1), 1) << r.err();
  EXPECT_TRUE(contains(r.err(), "byte " + std::to_string(offsets_[4]) + ", record 4: length over limit")) << r.err();
  EXPECT_EQ(received().size(), 4u);
}

TEST_F(DamagedReplay, SomethingElseThanARecordingIsRefusedWithNothingSent) {
  const fs::path other = dir_.path() / "notes.txt";
  write_file(other, "these are not the frames you are looking for");
  Ctl r = replay(other);
  ASSERT_EQ(r.wait(kExitBound).value_or(-1), 1) << r.err();
  EXPECT_TRUE(contains(r.err(), "byte 0, in the header: bad magic")) << r.err();
  EXPECT_TRUE(contains(r.err(), "nothing sent")) << r.err();
  EXPECT_TRUE(received().empty());
}

TEST_F(DamagedReplay, FromAndLimitChooseWhichFramesAreSent) {
  // Frames are 10 ms apart: --from 0.05 skips the first 5, --limit 4 sends the next 4.
  Ctl r = replay(path_, {"--from", "0.05", "--limit", "4"});
  ASSERT_EQ(r.wait(kExitBound).value_or(-1), 0) << r.err();
  const std::vector<std::string> got = received();
  ASSERT_EQ(got.size(), 4u) << r.err();
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].substr(0, payloads_[5 + i].size()), payloads_[5 + i]) << "frame " << i;
  }
  EXPECT_TRUE(contains(r.err(), "skipped 5 frames before --from 0.05")) << r.err();
}

}  // namespace
}  // namespace kneeload::testing
