// Runner history end to end: real kneeloadd processes with a --state-dir, fed frames over
// loopback, killed with SIGKILL mid-session and restarted; kneeloadctl runners, sessions and
// export read what they stored; R4 fires from the stored history after a restart.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "ctl_harness.hpp"
#include "../integration/http.hpp"
#include "../support/tmpfs_mount.hpp"

namespace kneeload::testing {
namespace {

// `seconds` of running for station n from device time t0_us: insoles at 100 Hz (10 samples a
// frame), treadmill at 10 Hz; device seqs continue from `seq0`. With `end`, the console sends a
// SessionEnd 0.5 s after the last step.
constexpr double kWeightN = 70.0 * 9.80665;  // registry_toml's runners

std::vector<TimedFrame> run_frames(int n, double seconds, std::int64_t t0_us, std::uint32_t seq0, bool end) {
  const double hz = 100.0, step_s = 60.0 / 170.0, contact_s = 0.25;
  std::vector<TimedFrame> frames;
  for (int side = 0; side < 2; ++side) {
    const std::string id = "s" + std::to_string(n) + (side == 0 ? "-L" : "-R");
    std::uint32_t seq = seq0;
    v1::Frame f = frame(id, seq);
    for (int i = 0; i < static_cast<int>(seconds * hz); ++i) {
      const double t = i / hz;
      const double phase = std::fmod(t - side * step_s + 2 * step_s * 100, 2 * step_s);
      const double force = phase < contact_s ? 2.5 * kWeightN * std::sin(M_PI * phase / contact_s) : 0.0;
      add_insole(f, t0_us + static_cast<std::int64_t>(std::llround(t * 1e6)), force, kCellAreaCm2);
      if (f.samples_size() == 10) {
        frames.push_back({f.samples(0).t_us(), f});
        f = frame(id, ++seq);
      }
    }
  }
  for (int i = 0; i < static_cast<int>(seconds * 10); ++i) {
    v1::Frame tm = frame("s" + std::to_string(n) + "-tm", seq0 + static_cast<std::uint32_t>(i));
    add_treadmill(tm, t0_us + i * 100'000, 3.3f);
    frames.push_back({tm.samples(0).t_us(), tm});
  }
  if (end) {
    v1::Frame e = frame("s" + std::to_string(n) + "-console", seq0);
    auto* s = e.add_samples();
    s->set_t_us(t0_us + static_cast<std::int64_t>((seconds + 0.5) * 1e6));
    s->mutable_session_end();
    frames.push_back({s->t_us(), e});
  }
  std::stable_sort(frames.begin(), frames.end(), [](const auto& a, const auto& b) { return a.t_us < b.t_us; });
  return frames;
}

// workers 0, the daemon's default: checkpoints are taken by the ingest thread's polls of its
// worker (Worker::poll), as in production.
std::string store_toml(double checkpoint_s) {
  std::ostringstream t;
  t << base_toml(30.0, 0) << "[store]\ncheckpoint_interval_s = " << checkpoint_s << "\n\n"
    << registry_toml(1);
  return t.str();
}

// The integer after "KEY": in the first JSON object of `json`; -1 if absent. (Plain string
// search: std::regex trips g++ 12's -Wmaybe-uninitialized in the sanitizer build.)
long long json_int(const std::string& json, const std::string& key) {
  const std::string tag = "\"" + key + "\": ";
  const std::size_t at = json.find(tag);
  if (at == std::string::npos) return -1;
  const char* start = json.c_str() + at + tag.size();
  char* end = nullptr;
  const long long v = std::strtoll(start, &end, 10);
  return end == start ? -1 : v;
}
std::string json_text(const std::string& json, const std::string& key) {
  const std::string tag = "\"" + key + "\": \"";
  const std::size_t at = json.find(tag);
  if (at == std::string::npos) return {};
  const std::size_t from = at + tag.size();
  const std::size_t to = json.find('"', from);
  return to == std::string::npos ? std::string() : json.substr(from, to - from);
}

struct CtlResult {
  int code;
  std::string out, err;
};
CtlResult ctl(const std::vector<std::string>& args) {
  Ctl c(args);
  const auto code = c.wait(kExitBound);
  return {code.value_or(-1), c.out(), c.err()};
}

std::uint64_t steps_published(const Subscriber& sub) { return sub.decoded<v1::StepMetrics>("step/").size(); }

TEST(History, AKilledDaemonsOpenSessionIsRecoveredWithinOneCheckpointInterval) {
  constexpr double kCheckpointS = 0.5;
  Daemon first(store_toml(kCheckpointS));
  ASSERT_TRUE(first.started()) << first.log();
  zmq::context_t ctx(1);
  Subscriber sub(ctx, first.publish_endpoint());
  ASSERT_TRUE(sub.wait_joined(5s));
  zmq::socket_t push = push_to(ctx, first.ingest_endpoint());

  // 60 s of running streamed at 10x: a frame is sent when its device time comes round.
  const auto frames = run_frames(1, 60.0, kT0Us, 0, false);
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::pair<std::chrono::steady_clock::time_point, std::uint64_t>> published;  // (when, steps)
  std::size_t next = 0;
  const auto kill_after = 3s;
  while (std::chrono::steady_clock::now() - start < kill_after && next < frames.size()) {
    const auto due = start + std::chrono::microseconds((frames[next].t_us - kT0Us) / 10);
    while (std::chrono::steady_clock::now() < due) sub.poll_into_store(1ms);
    ASSERT_TRUE(send_frame(push, frames[next].frame));
    ++next;
    sub.poll_into_store(0ms);
    published.emplace_back(std::chrono::steady_clock::now(), steps_published(sub));
  }
  const auto killed_at = std::chrono::steady_clock::now();
  first.process().signal(SIGKILL);
  ASSERT_EQ(first.process().wait(5s), 128 + SIGKILL);
  const std::uint64_t at_kill = published.back().second;
  // Steps published one checkpoint interval before the kill, plus slack for the threads on a
  // loaded 2-core machine (a worker checks its checkpoint timer at least every 100 ms, and the
  // ingest thread polls its inline worker when the timer is due; the store commits within
  // 250 ms): every one of them must be in the stored totals.
  constexpr int kSlackMs = 500;
  std::uint64_t one_interval_before = 0;
  for (const auto& [when, steps] : published) {
    if (when <= killed_at - std::chrono::milliseconds(static_cast<int>(kCheckpointS * 1000) + kSlackMs)) {
      one_interval_before = steps;
    }
  }
  ASSERT_GT(at_kill, 50u) << "the runner was running when the daemon was killed";

  // Restart on the same history.
  Daemon second(store_toml(kCheckpointS), {"--state-dir", first.state_dir().string()});
  ASSERT_TRUE(second.started()) << second.log();
  EXPECT_NE(second.log().find("recovered session 1 of runner r1 on st1 after an unclean stop"), std::string::npos)
      << second.log();

  const CtlResult r = ctl({"sessions", "r1", "--json", "--state-dir", first.state_dir().string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const long long stored = json_int(r.out, "steps");
  EXPECT_EQ(json_text(r.out, "end"), "recovered") << r.out;
  EXPECT_NE(r.out.find("\"recovered\": true"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"lost_at_most_s\": 0.5"), std::string::npos) << r.out;
  EXPECT_GE(stored, static_cast<long long>(one_interval_before))
      << "stored " << stored << " steps; " << one_interval_before << " were published " << kCheckpointS
      << " s + " << kSlackMs << " ms before the kill, " << at_kill << " at the kill";
  EXPECT_LE(stored, static_cast<long long>(at_kill));
  std::printf("[ measured ] kill -9 after %llu published steps: %lld stored (>= %llu published one checkpoint "
              "interval of %.1f s + %d ms earlier), session ended 'recovered'\n",
              static_cast<unsigned long long>(at_kill), stored, static_cast<unsigned long long>(one_interval_before),
              kCheckpointS, kSlackMs);

  const CtlResult table = ctl({"sessions", "--all", "--state-dir", first.state_dir().string()});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find("recovered (<=0.5 s lost)"), std::string::npos) << table.out;
  second.process().signal(SIGTERM);
  EXPECT_EQ(second.process().wait(10s), 0) << second.log();
}

// A session's summary is stored; after a restart the next, longer session is a spike against
// the 30-day longest run (R4) and its summary carries the acute:chronic ratio's inputs.
TEST(History, StoredHistoryReachesR4AfterARestart) {
  Daemon first(store_toml(1.0));
  ASSERT_TRUE(first.started()) << first.log();
  {
    zmq::context_t ctx(1);
    Subscriber sub(ctx, first.publish_endpoint());
    ASSERT_TRUE(sub.wait_joined(5s));
    zmq::socket_t push = push_to(ctx, first.ingest_endpoint());
    for (const auto& f : run_frames(1, 20.0, kT0Us, 0, true)) ASSERT_TRUE(send_frame(push, f.frame));
    ASSERT_TRUE(sub.collect_until([](const auto& rx) {
      return std::any_of(rx.begin(), rx.end(), [](const Received& m) { return m.topic == "session/st1"; });
    }, 20s));
    const auto summaries = sub.decoded<v1::SessionSummary>("session/");
    ASSERT_EQ(summaries.size(), 1u);
    EXPECT_TRUE(summaries[0].ended_explicitly());
    EXPECT_TRUE(std::isnan(summaries[0].acute_chronic_ratio())) << "no history before the first session";
    ASSERT_TRUE(drain(first, sub));
    EXPECT_EQ(first.process().wait(10s), 0) << first.log();
  }
  const CtlResult stored = ctl({"sessions", "r1", "--json", "--state-dir", first.state_dir().string()});
  ASSERT_EQ(stored.code, 0) << stored.err;
  EXPECT_EQ(json_text(stored.out, "end"), "console") << stored.out;
  const long long first_steps = json_int(stored.out, "steps");
  EXPECT_GT(first_steps, 40) << stored.out << " (20 s at 170 steps/min is 56 steps)";

  // A 5 km day yesterday, so the acute:chronic ratio (which needs a day before today) is known.
  ASSERT_EQ(std::system(("sqlite3 " + (first.state_dir() / "history.sqlite3").string() +
                         " \"INSERT INTO daily_totals VALUES('r1', date('now', '-1 day'), 1, 5000.0, 1800.0, "
                         "5000, NULL, NULL)\"").c_str()),
            0);
  Daemon second(store_toml(1.0), {"--state-dir", first.state_dir().string()});
  ASSERT_TRUE(second.started()) << second.log();
  zmq::context_t ctx(1);
  Subscriber sub(ctx, second.publish_endpoint());
  ASSERT_TRUE(sub.wait_joined(5s));
  zmq::socket_t push = push_to(ctx, second.ingest_endpoint());
  // 50 s, 2.5x the stored 20 s run: R4 goes info (>1.1x), warn (>1.3x), high (>2x).
  for (const auto& f : run_frames(1, 50.0, kT0Us + 100'000'000, 0, true)) ASSERT_TRUE(send_frame(push, f.frame));
  ASSERT_TRUE(sub.collect_until([](const auto& rx) {
    return std::any_of(rx.begin(), rx.end(), [](const Received& m) { return m.topic == "session/st1"; });
  }, 30s));
  std::vector<std::string> r4;
  for (const auto& e : sub.decoded<v1::RiskEvent>("risk/")) {
    if (e.rule_code() == "R4" && e.phase() == v1::EVENT_PHASE_ONSET) r4.push_back(v1::Severity_Name(e.severity()));
  }
  EXPECT_EQ(r4, (std::vector<std::string>{"SEVERITY_INFO", "SEVERITY_WARN", "SEVERITY_HIGH"}))
      << "R4 onsets against the stored 30-day longest run";
  // With a day of history, the summary carries the acute:chronic ratio, and so does the metric.
  const auto second_summaries = sub.decoded<v1::SessionSummary>("session/");
  ASSERT_EQ(second_summaries.size(), 1u);
  const double ratio = second_summaries[0].acute_chronic_ratio();
  EXPECT_TRUE(std::isfinite(ratio));
  std::optional<double> gauge;
  ASSERT_TRUE(eventually([&] {
    const auto r = http_get(second.metrics_address(), "/metrics");
    gauge = r ? parse_exposition(r->body).get("kneeload_station_acute_chronic_ratio{station=\"st1\"}") : std::nullopt;
    return gauge.has_value();
  }, 5s)) << "no kneeload_station_acute_chronic_ratio for st1";
  EXPECT_NEAR(*gauge, ratio, 1e-6 * std::max(1.0, std::fabs(ratio)));
  ASSERT_TRUE(drain(second, sub));
  const CtlResult runners = ctl({"runners", "--json", "--state-dir", first.state_dir().string()});
  ASSERT_EQ(runners.code, 0) << runners.err;
  EXPECT_EQ(json_int(runners.out, "sessions"), 2) << runners.out;
}

// Replays stay deterministic: with a fresh state dir the store changes nothing a daemon
// without one (--state-dir "") publishes on the state, step and risk topics.
TEST(History, AFreshStoreAndNoStorePublishTheSameStepsStatesAndEvents) {
  const auto frames = run_frames(1, 20.0, kT0Us, 0, true);
  std::map<std::string, std::vector<std::string>> outputs[2];
  for (int run = 0; run < 2; ++run) {
    std::vector<std::string> args;
    if (run == 1) args = {"--state-dir", ""};
    Daemon d(store_toml(0.2), args);
    ASSERT_TRUE(d.started()) << d.log();
    zmq::context_t ctx(1);
    Subscriber sub(ctx, d.publish_endpoint());
    ASSERT_TRUE(sub.wait_joined(5s));
    zmq::socket_t push = push_to(ctx, d.ingest_endpoint());
    for (const auto& f : frames) ASSERT_TRUE(send_frame(push, f.frame));
    ASSERT_TRUE(sub.collect_until([](const auto& rx) {
      return std::any_of(rx.begin(), rx.end(), [](const Received& m) { return m.topic == "session/st1"; });
    }, 20s));
    ASSERT_TRUE(drain(d, sub));
    if (run == 1) {
      EXPECT_EQ(d.log().find("runner history in"), std::string::npos) << "no store: " << d.log();
    }
    outputs[run] = deterministic_outputs(sub.received());
  }
  ASSERT_FALSE(outputs[0]["step/st1"].empty());
  EXPECT_EQ(outputs[0], outputs[1]);
}

TEST(History, ExportWritesSessionsAndStepsAsCsv) {
  Daemon d(store_toml(1.0));
  ASSERT_TRUE(d.started()) << d.log();
  zmq::context_t ctx(1);
  Subscriber sub(ctx, d.publish_endpoint());
  ASSERT_TRUE(sub.wait_joined(5s));
  zmq::socket_t push = push_to(ctx, d.ingest_endpoint());
  for (const auto& f : run_frames(1, 10.0, kT0Us, 0, true)) ASSERT_TRUE(send_frame(push, f.frame));
  ASSERT_TRUE(sub.collect_until([](const auto& rx) {
    return std::any_of(rx.begin(), rx.end(), [](const Received& m) { return m.topic == "session/st1"; });
  }, 20s));
  ASSERT_TRUE(drain(d, sub));
  const std::uint64_t published = steps_published(sub);

  TempDir out;
  const std::string prefix = (out.path() / "r1").string();
  const CtlResult r = ctl({"export", "r1", "--csv", "--output", prefix, "--state-dir", d.state_dir().string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string sessions = read_file(prefix + "-sessions.csv");
  const std::string steps = read_file(prefix + "-steps.csv");
  EXPECT_EQ(std::count(sessions.begin(), sessions.end(), '\n'), 2) << sessions;
  EXPECT_EQ(sessions.rfind("session_id,runner,station,", 0), 0u) << sessions;
  EXPECT_EQ(static_cast<std::uint64_t>(std::count(steps.begin(), steps.end(), '\n')), published + 1)
      << "one row per published step, plus the header";
  EXPECT_NE(steps.find(",left,"), std::string::npos);

  EXPECT_EQ(ctl({"export", "r1", "--state-dir", d.state_dir().string()}).code, 2) << "a format is required";
  EXPECT_EQ(ctl({"export", "nobody", "--csv", "--output", prefix, "--state-dir", d.state_dir().string()}).code, 1);
}

TEST(History, CommandsExplainTheirOptionsAndRefuseBadArguments) {
  for (const char* cmd : {"runners", "sessions", "export"}) {
    const CtlResult help = ctl({cmd, "--help"});
    EXPECT_EQ(help.code, 0) << cmd;
    EXPECT_NE(help.out.find("--state-dir DIR"), std::string::npos) << help.out;
  }
  const CtlResult neither = ctl({"sessions"});
  EXPECT_EQ(neither.code, 2);
  EXPECT_NE(neither.err.find("missing RUNNER (or --all)"), std::string::npos) << neither.err;
  EXPECT_EQ(ctl({"sessions", "r1", "--all"}).code, 2);
  EXPECT_EQ(ctl({"runners", "--bogus"}).code, 2);
  TempDir empty;
  const CtlResult none = ctl({"runners", "--state-dir", empty.path().string()});
  EXPECT_EQ(none.code, 1);
  EXPECT_NE(none.err.find("no runner history here"), std::string::npos) << none.err;
}

// ---- Failures: the daemon's side -----------------------------------------------------------------

TEST(HistoryFailures, AForeignFileInTheStateDirectoryStopsTheStartWithExit2) {
  TempDir state;
  write_file(state.path() / "history.sqlite3", "PK\x03\x04 a zip file, not a database" + std::string(4000, 'z'));
  Daemon d(store_toml(1.0), {"--state-dir", state.path().string()});
  EXPECT_FALSE(d.started());
  EXPECT_EQ(d.process().wait(10s), 2);
  EXPECT_NE(d.log().find((state.path() / "history.sqlite3").string() + ": not a kneeload history database"),
            std::string::npos) << d.log();
  EXPECT_EQ(read_file(state.path() / "history.sqlite3").substr(0, 4), "PK\x03\x04") << "left untouched";
}

TEST(HistoryFailures, StoreNotRequiredRunsWithoutHistoryAndSaysSo) {
  TempDir state;
  write_file(state.path() / "history.sqlite3", std::string(8192, '\x7f'));
  std::string cfg = store_toml(1.0);
  cfg.insert(cfg.find("[store]\n") + 8, "required = false\n");
  Daemon lenient(cfg, {"--state-dir", state.path().string()});
  ASSERT_TRUE(lenient.started()) << lenient.log();
  EXPECT_NE(lenient.log().find("running WITHOUT runner history (store.required = false)"), std::string::npos)
      << lenient.log();
}


TEST(HistoryFailures, AReadOnlyStateDirectoryStopsTheStartWithAClearError) {
  TempDir state;
  TmpfsMount ro(state.path(), "size=1m,ro");
  if (!ro.ok()) GTEST_SKIP() << "cannot mount a read-only tmpfs: " << ro.error();
  Daemon d(store_toml(1.0), {"--state-dir", state.path().string()});
  EXPECT_FALSE(d.started());
  EXPECT_EQ(d.process().wait(10s), 2);
  EXPECT_NE(d.log().find("state directory " + state.path().string() + " is not writable"), std::string::npos)
      << d.log();
}

// A 256 KiB tmpfs fills while the daemon runs: fusion and publishing go on, the lost records are
// counted (store.write_failed) and logged, and the file passes PRAGMA integrity_check afterwards.
TEST(HistoryFailures, AFullDiskKeepsTheDaemonFusingAndTheFileIntact) {
  TempDir state;
  TmpfsMount small(state.path(), "size=256k");
  if (!small.ok()) GTEST_SKIP() << "cannot mount a tmpfs: " << small.error();
  Daemon d(store_toml(0.2), {"--state-dir", state.path().string()});
  ASSERT_TRUE(d.started()) << d.log();
  zmq::context_t ctx(1);
  Subscriber sub(ctx, d.publish_endpoint());
  ASSERT_TRUE(sub.wait_joined(5s));
  zmq::socket_t push = push_to(ctx, d.ingest_endpoint());
  // Many sessions of 30 s until the store fails; each ends with the console's SessionEnd.
  std::uint64_t failed = 0;
  int sessions = 0;
  for (; sessions < 60 && failed == 0; ++sessions) {
    const std::int64_t t0 = kT0Us + sessions * 40'000'000LL;
    for (const auto& f : run_frames(1, 30.0, t0, static_cast<std::uint32_t>(sessions) * 1000, true)) {
      ASSERT_TRUE(send_frame(push, f.frame));
    }
    const std::size_t want = static_cast<std::size_t>(sessions) + 1;
    ASSERT_TRUE(sub.collect_until([&](const auto&) {
      return sub.decoded<v1::SessionSummary>("session/").size() >= want;
    }, 30s)) << "session " << sessions;
    sub.collect_until([](const auto&) { return false; }, 300ms);  // let the writer commit
    if (const auto st = sub.last_status()) failed = count_named(st->dropped(), "store.write_failed");
  }
  ASSERT_GT(failed, 0u) << "256 KiB never filled after " << sessions << " sessions";
  // After the failure the daemon still fuses and publishes: one more session comes out whole.
  const std::uint64_t steps_before = steps_published(sub);
  const std::int64_t t0 = kT0Us + sessions * 40'000'000LL;
  for (const auto& f : run_frames(1, 20.0, t0, static_cast<std::uint32_t>(sessions) * 1000, true)) {
    ASSERT_TRUE(send_frame(push, f.frame));
  }
  ASSERT_TRUE(sub.collect_until([&](const auto&) {
    return sub.decoded<v1::SessionSummary>("session/").size() >= static_cast<std::size_t>(sessions) + 1;
  }, 30s));
  const std::uint64_t steps_after = steps_published(sub);
  EXPECT_GT(steps_after - steps_before, 40u) << "fusion went on with the disk full (20 s is 56 steps)";
  ASSERT_TRUE(eventually([&] { return d.log().find("database or disk is full") != std::string::npos; }, 15s))
      << d.log();
  ASSERT_TRUE(drain(d, sub));
  EXPECT_EQ(d.process().wait(10s), 0) << d.log();

  const CtlResult listed = ctl({"sessions", "--all", "--json", "--state-dir", state.path().string()});
  EXPECT_EQ(listed.code, 0) << listed.err;
  // PRAGMA integrity_check with the sqlite3 CLI on the file the daemon left.
  const std::string cmd = "sqlite3 -readonly '" + (state.path() / "history.sqlite3").string() +
                          "' 'PRAGMA integrity_check' 2>&1";
  std::string check;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof buf, p) != nullptr) check += buf;
    ::pclose(p);
  }
  EXPECT_EQ(check, "ok\n");
  std::printf("[ measured ] 256 KiB state dir full after %d sessions: store.write_failed = %llu, %llu steps "
              "published after it, integrity_check: %s",
              sessions, static_cast<unsigned long long>(failed),
              static_cast<unsigned long long>(steps_after - steps_before), check.c_str());
}

}  // namespace
}  // namespace kneeload::testing
