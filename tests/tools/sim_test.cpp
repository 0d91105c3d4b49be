// kneeloadctl sim end to end: the config it prints is one kneeloadd accepts; the stations it
// streams into a real kneeloadd produce steps, states and their scenarios' events; --rate max
// and Nx runs give identical outputs; mistakes, unreachable and vanished daemons, and Ctrl-C.
#include <gtest/gtest.h>

#include <google/protobuf/text_format.h>

#include "ctl_harness.hpp"

namespace kneeload::testing {
namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

struct Outcome {
  int code = -1;
  std::string out, err;
};

Outcome run(const std::vector<std::string>& args) {
  Ctl ctl(args);
  const std::optional<int> code = ctl.wait(kExitBound);
  EXPECT_TRUE(code.has_value()) << "kneeloadctl still running after " << kExitBound.count() << " s; stderr:\n"
                                << ctl.err();
  return Outcome{code.value_or(-1), ctl.out(), ctl.err()};
}

std::string printed_config(const std::vector<std::string>& options) {
  std::vector<std::string> args{"sim", "--print-config"};
  args.insert(args.end(), options.begin(), options.end());
  const Outcome r = run(args);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  return r.out;
}

// The printed config with test-only additions. Staleness is judged on the daemon's own
// receive clock, so a run faster than life would see other dropout events than a slower one
// (README "Replay determinism"); at --rate max the simulator can outrun a fusion worker that a
// loaded machine deschedules, so the ring is made large enough to hold the whole run (a drop
// there is not what these tests are about, and would make two runs differ); and a fast
// heartbeat makes the waits on the status topic short.
std::string stream_config(int stations) {
  std::string config = printed_config({"--stations", std::to_string(stations)});
  const std::size_t publish = config.find("[publish]\n");
  EXPECT_NE(publish, std::string::npos) << config;
  if (publish != std::string::npos) config.insert(publish + 10, "heartbeat_s = 0.1\n");
  return config + "\n[health]\nstale_after_s = 600.0\n\n[pipeline]\ningest_ring_capacity = 262144\n";
}

// The daemon's metrics address is the printed one (a fixed port): tests turn it off.
const std::vector<std::string> kNoMetrics{"--metrics", ""};

// "sent 8343 frames" in the summary → 8343; 0 if absent.
std::uint64_t frames_sent(const std::string& err) {
  const std::size_t at = err.find(": sent ");
  return at == std::string::npos ? 0 : std::stoull(err.substr(at + 7));
}

std::size_t count_topic(const std::vector<Received>& received, const std::string& topic) {
  return static_cast<std::size_t>(
      std::count_if(received.begin(), received.end(), [&](const Received& r) { return r.topic == topic; }));
}

constexpr int kStations = 2;

struct SimRun {
  int code = -1;
  std::string err;
  std::vector<Received> outputs;
  std::optional<v1::DaemonStatus> final_status;
};

// `kneeloadctl sim` for kStations stations and `duration_s` simulated seconds at `rate` into a
// fresh daemon, and everything that daemon published up to its final status. The daemon is
// drained only once it has received every frame sent, so nothing is in flight.
void sim_into_fresh_daemon(const std::string& rate, const std::string& duration_s, SimRun& run) {
  zmq::context_t ctx{1};
  Daemon daemon(stream_config(kStations), kNoMetrics);
  ASSERT_TRUE(daemon.started()) << daemon.log();
  Subscriber sub(ctx, daemon.publish_endpoint());
  ASSERT_TRUE(sub.wait_joined(10s)) << daemon.log();
  Ctl sim({"sim", "--endpoint", daemon.ingest_endpoint(), "--stations", std::to_string(kStations), "--duration",
           duration_s, "--rate", rate});
  run.code = sim.wait(kExitBound).value_or(-1);
  run.err = sim.err();
  ASSERT_EQ(run.code, 0) << run.err;
  const std::uint64_t frames = frames_sent(run.err);
  ASSERT_GT(frames, 0u) << run.err;
  ASSERT_TRUE(wait_frames_received(sub, frames, 20s)) << run.err << daemon.log();
  // Received is not yet fused: a sanitizer build's worker takes many seconds over what --rate
  // max sends in a fraction of one, longer than the drain deadline. Each station's console
  // stops its session at the end, so its summary means the station has been fused.
  ASSERT_TRUE(sub.collect_until(
      [](const std::vector<Received>& received) {
        for (int n = 1; n <= kStations; ++n) {
          if (count_topic(received, "session/st0" + std::to_string(n)) == 0) return false;
        }
        return true;
      },
      120s))
      << "the daemon did not fuse every station up to its console's stop within 120 s\n" << daemon.log();
  ASSERT_TRUE(drain(daemon, sub)) << daemon.log();
  run.outputs = sub.received();
  run.final_status = sub.last_status();
}

std::vector<v1::RiskEvent> risk_events(const std::vector<Received>& received, const std::string& topic) {
  std::vector<v1::RiskEvent> out;
  for (const Received& r : received) {
    if (r.topic != topic) continue;
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

TEST(SimConfig, PrintedConfigsAreAcceptedByKneeloadd) {
  const std::vector<std::vector<std::string>> variants{
      {"--stations", "1"},
      {"--stations", "4", "--demo-timing"},
      {"--stations", "3", "--hz", "1000"},
  };
  for (const std::vector<std::string>& v : variants) {
    const std::string config = printed_config(v);
    const int stations = std::stoi(v[1]);
    Daemon daemon(config, kNoMetrics);
    ASSERT_TRUE(daemon.started()) << v[1] << " stations: kneeloadd refused the printed config:\n"
                                  << daemon.log() << "\n" << config;
    EXPECT_TRUE(contains(daemon.log(), "running: " + std::to_string(6 * stations) + " devices")) << daemon.log();
    char last[8];
    std::snprintf(last, sizeof last, "st%02d", stations);
    EXPECT_TRUE(contains(config, "id = \"" + std::string(last) + "-insole-L\"")) << config;
    EXPECT_TRUE(contains(config, "endpoints = [\"tcp://127.0.0.1:5600\"]")) << config;
    EXPECT_TRUE(contains(config, "endpoint = \"tcp://127.0.0.1:5601\"")) << config;
  }
  const std::string demo = printed_config({"--demo-timing"});
  for (const char* part : {"[model.trends]", "baseline_start_s = 20.0", "baseline_end_s = 80.0",
                           "[rules.r7_fatigue_drift]\npersist_s = 20.0", "[rules.r9_shoes]\ndrift_persist_s = 20.0"}) {
    EXPECT_TRUE(contains(demo, part)) << "--demo-timing config lacks \"" << part << "\":\n" << demo;
  }
  EXPECT_FALSE(contains(printed_config({}), "[model.trends]")) << "only --demo-timing shortens the trends";
  EXPECT_TRUE(contains(printed_config({"--hz", "1000"}), "[model.clock]\n"));
}

TEST(Sim, StreamsEveryStationIntoTheDaemonWithItsScenarioEvents) {
  SimRun run;
  sim_into_fresh_daemon("max", "60", run);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  EXPECT_TRUE(contains(run.err, "streaming 2 stations (st01 mixed, st02 fatigue)")) << run.err;
  EXPECT_TRUE(contains(run.err, "samples: insole ")) << run.err;
  EXPECT_TRUE(contains(run.err, "session_end 2")) << run.err;

  for (const char* station : {"st01", "st02"}) {
    const std::string s = station;
    // Running from 8 s (5 s standing, 3 s blending in) at about 170 steps/min.
    EXPECT_GT(count_topic(run.outputs, "step/" + s), 120u) << s;
    EXPECT_GT(count_topic(run.outputs, "state/" + s), 2000u) << s;  // 50 Hz
    EXPECT_EQ(count_topic(run.outputs, "session/" + s), 1u) << s << ": the console's stop ends the session";
  }
  // st01 runs "mixed": its timing is scaled into the 60 s session, with a 3 s dropout of the
  // right knee sensor and a lateral right-knee pain report of 3/10 inside it.
  const std::vector<v1::RiskEvent> events = risk_events(run.outputs, "risk/st01");
  const auto has = [&](const std::string& code, const std::string& device, v1::Side side) {
    return std::any_of(events.begin(), events.end(), [&](const v1::RiskEvent& e) {
      return e.rule_code() == code && e.phase() == v1::EVENT_PHASE_ONSET && e.device_id() == device && e.side() == side;
    });
  };
  std::string all;
  for (const v1::RiskEvent& e : events) all += text(e) + "\n";
  EXPECT_TRUE(has("F1", "st01-knee-R", v1::SIDE_RIGHT)) << "no dropout event for st01-knee-R in:\n" << all;
  EXPECT_TRUE(has("R10", "", v1::SIDE_RIGHT)) << "no pain event for st01 in:\n" << all;

  ASSERT_TRUE(run.final_status.has_value());
  const v1::DaemonStatus& st = *run.final_status;
  EXPECT_EQ(st.frames_accepted(), st.frames_received());
  for (const auto& c : st.rejected()) EXPECT_EQ(c.value(), 0u) << "rejected " << c.name();
  EXPECT_EQ(count_named(st.dropped(), "ingest.worker_ring_full"), 0u);
  EXPECT_EQ(count_named(st.dropped(), "worker.late_sample"), 0u);
}

// Messages of `a` and `b` must match one for one, per topic.
void expect_same_outputs(const std::map<std::string, std::vector<std::string>>& a,
                         const std::map<std::string, std::vector<std::string>>& b, const std::string& what) {
  for (const char* topic : {"state/st01", "state/st02", "step/st01", "step/st02", "risk/st01"}) {
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

TEST(Sim, StampedRunsGiveIdenticalOutputsWhateverTheSendSpeed) {
  // 30 s: the mixed scenario's dropout and pain report still fall inside (scaled timing), and
  // a sanitizer build's daemon fuses each run in a few seconds.
  SimRun first, second, paced;
  sim_into_fresh_daemon("max", "30", first);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  sim_into_fresh_daemon("max", "30", second);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  sim_into_fresh_daemon("15x", "30", paced);  // 2 s
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  const auto a = deterministic_outputs(first.outputs);
  expect_same_outputs(a, deterministic_outputs(second.outputs), "two runs at --rate max");
  expect_same_outputs(a, deterministic_outputs(paced.outputs), "--rate max and --rate 30x");
}

TEST(Sim, MistakesExitTwoSayingWhatIsWrong) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases{
      {{"sim", "--stations", "0"}, "--stations expects an integer 1..99, got \"0\""},
      {{"sim", "--stations", "100"}, "--stations expects an integer 1..99"},
      {{"sim", "--scenario", "jogging"}, "--scenario expects one of healthy, overstride, itb"},
      {{"sim", "--duration", "0"}, "--duration expects a number of seconds 1..604800"},
      {{"sim", "--seed", "-1"}, "--seed expects an integer >= 0"},
      {{"sim", "--hz", "50"}, "--hz expects a sample rate in Hz, 100..1000"},
      {{"sim", "--rate", "fast"}, "--rate expects real, max or a factor"},
      {{"sim", "--rate", "0x"}, "--rate expects real, max or a factor"},
      {{"sim", "--print-config=yes"}, "--print-config takes no value"},
      {{"sim", "stray"}, "unexpected argument \"stray\""},
      {{"sim", "--endpoint", "udp://127.0.0.1:1"}, "not a ZeroMQ endpoint"},
  };
  for (const Case& c : cases) {
    std::string line = "kneeloadctl";
    for (const std::string& a : c.args) line += " " + a;
    const Outcome r = run(c.args);
    EXPECT_EQ(r.code, 2) << line << "\nstderr:\n" << r.err;
    EXPECT_TRUE(contains(r.err, c.says)) << line << ": expected \"" << c.says << "\" in:\n" << r.err;
    EXPECT_TRUE(contains(r.err, "--help")) << line << ": no pointer to help in:\n" << r.err;
    EXPECT_TRUE(r.out.empty()) << line << ": a mistake prints nothing on stdout:\n" << r.out;
  }
  const Outcome help = run({"sim", "--help"});
  EXPECT_EQ(help.code, 0) << help.err;
  for (const char* o : {"--endpoint", "--stations", "--scenario", "--duration", "--seed", "--hz", "--rate",
                        "--print-config", "--demo-timing"}) {
    EXPECT_TRUE(contains(help.out, o)) << "sim --help lacks " << o << ":\n" << help.out;
  }
  EXPECT_TRUE(contains(run({"--help"}).out, "sim"));
}

TEST(Sim, AnUnreachableEndpointFailsWithAClearMessageAfterTheTimeout) {
  TempDir dir;
  const std::string nowhere = "ipc://" + (dir.path() / "nobody.sock").string();
  const auto start = std::chrono::steady_clock::now();
  const Outcome r = run({"sim", "--endpoint", nowhere, "--timeout", "0.5"});
  const double took_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_TRUE(contains(r.err, "nothing answered at " + nowhere)) << r.err;
  EXPECT_TRUE(contains(r.err, "is kneeloadd running")) << r.err;
  EXPECT_LT(took_s, 10.0) << "a 0.5 s timeout took " << took_s << " s";
}

TEST(Sim, ADaemonThatVanishesMidStreamIsAFailureNotAHang) {
  Daemon daemon(stream_config(1), kNoMetrics);
  ASSERT_TRUE(daemon.started()) << daemon.log();
  Ctl sim({"sim", "--endpoint", daemon.ingest_endpoint(), "--duration", "600", "--timeout", "1"});
  ASSERT_TRUE(sim.wait_for_err("streaming 1 station", 10s)) << sim.err();
  std::this_thread::sleep_for(300ms);
  daemon.process().signal(SIGKILL);
  const std::optional<int> code = sim.wait(kExitBound);
  ASSERT_TRUE(code.has_value()) << "sim still running " << kExitBound.count() << " s after the daemon died";
  EXPECT_EQ(*code, 1) << sim.err();
  EXPECT_TRUE(contains(sim.err(), "stopped taking frames")) << sim.err();
  EXPECT_TRUE(contains(sim.err(), "samples: insole ")) << "a summary of what was sent:\n" << sim.err();
}

TEST(Sim, CtrlCStopsCleanlyWithASummary) {
  Daemon daemon(stream_config(1), kNoMetrics);
  ASSERT_TRUE(daemon.started()) << daemon.log();
  Ctl sim({"sim", "--endpoint", daemon.ingest_endpoint(), "--duration", "600"});
  ASSERT_TRUE(sim.wait_for_err("streaming 1 station", 10s)) << sim.err();
  std::this_thread::sleep_for(500ms);
  sim.signal(SIGINT);
  EXPECT_EQ(sim.wait(kExitBound).value_or(-1), 0) << sim.err();
  EXPECT_TRUE(contains(sim.err(), "stopped at ")) << sim.err();
  EXPECT_TRUE(contains(sim.err(), "of 600 s simulated")) << sim.err();
  EXPECT_TRUE(contains(sim.err(), "samples: insole ")) << sim.err();
}

}  // namespace
}  // namespace kneeload::testing
