// kneeloadctl tap against a running kneeloadd: JSON lines and the table of stations.
#include <gtest/gtest.h>

#include <sstream>

#include "ctl_harness.hpp"

namespace kneeload::testing {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A table cell as a number; NaN when it is not one ("-" for unknown).
double number(const std::string& cell) {
  char* end = nullptr;
  const double v = std::strtod(cell.c_str(), &end);
  return end == cell.c_str() + cell.size() && !cell.empty() ? v : std::nan("");
}

class TapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_.emplace(base_toml() + registry_toml(1, kCellAreaCm2));
    ASSERT_TRUE(daemon_->started()) << daemon_->log();
    push_.emplace(push_to(ctx_, daemon_->ingest_endpoint()));
  }

  zmq::context_t ctx_{1};
  std::optional<Daemon> daemon_;
  std::optional<zmq::socket_t> push_;
};

TEST_F(TapTest, JsonPrintsOneObjectPerMessageWithEveryFieldDecoded) {
  Subscriber reference(ctx_, daemon_->publish_endpoint());  // what protobuf itself decodes
  ASSERT_TRUE(reference.wait_joined(10s)) << daemon_->log();
  Ctl tap({"tap", "--endpoint", daemon_->publish_endpoint(), "--json", "--topic", "risk/", "--count", "2"});
  ASSERT_TRUE(tap.wait_for_err("subscribed", 10s)) << tap.err();
  v1::Frame f = frame("s1-console", 0);
  add_pain(f, 2'000'000, 7);
  add_pain(f, 3'000'000, 1);
  ASSERT_TRUE(send_frame(*push_, f));
  const auto code = tap.wait(kExitBound);
  ASSERT_TRUE(code.has_value()) << "tap did not print 2 risk events; stderr:\n" << tap.err();
  EXPECT_EQ(*code, 0) << tap.err();

  const std::vector<std::string> lines = lines_of(tap.out());
  ASSERT_EQ(lines.size(), 2u) << tap.out();
  for (const std::string& line : lines) {
    EXPECT_EQ(line.rfind("{\"topic\": \"risk/st1\", \"type\": \"RiskEvent\", \"message\": {", 0), 0u) << line;
    EXPECT_TRUE(contains(line, "\"rule_code\": \"R10\"")) << line;
    EXPECT_TRUE(contains(line, "\"station\": \"st1\"")) << line;
    EXPECT_TRUE(contains(line, "\"runner\": \"r1\"")) << line;
    EXPECT_TRUE(contains(line, "\"severity\": \"SEVERITY_")) << "enums by name: " << line;
    EXPECT_TRUE(contains(line, "\"evidence\": [{")) << "repeated messages as arrays: " << line;
    EXPECT_FALSE(contains(line, "NaN")) << line;
  }
  EXPECT_TRUE(contains(lines[0], "\"phase\": \"EVENT_PHASE_ONSET\"")) << lines[0];
  EXPECT_TRUE(contains(lines[0], "\"seq\": 1,")) << lines[0];
  EXPECT_TRUE(contains(lines[1], "\"phase\": \"EVENT_PHASE_CLEAR\"")) << lines[1];
  EXPECT_TRUE(contains(lines[1], "\"seq\": 2,")) << lines[1];
  // 64-bit integers as bare numbers, the ones protobuf decodes.
  ASSERT_TRUE(reference.collect_until([](const auto& r) {
    return std::count_if(r.begin(), r.end(), [](const Received& m) { return m.topic == "risk/st1"; }) >= 2;
  }, 10s));
  const auto events = reference.decoded<v1::RiskEvent>("risk/st1");
  for (std::size_t i = 0; i < 2; ++i) {
    const std::string t_us = "\"t_us\": " + std::to_string(events[i].header().t_us()) + ",";
    EXPECT_TRUE(contains(lines[i], t_us)) << "expected " << t_us << " in " << lines[i];
  }
  EXPECT_FALSE(contains(tap.err(), "lost")) << tap.err();
}

TEST_F(TapTest, JsonWritesNaNAsNull) {
  // A station without knee devices publishes NaN knee angles in its fused state.
  Ctl tap({"tap", "--endpoint", daemon_->publish_endpoint(), "--json", "--topic", "state/st1", "--count", "1"});
  ASSERT_TRUE(tap.wait_for_err("subscribed", 10s)) << tap.err();
  for (const TimedFrame& f : running_frames_with_pain(1, 1.0)) ASSERT_TRUE(send_frame(*push_, f.frame));
  ASSERT_EQ(tap.wait(kExitBound).value_or(-1), 0) << tap.err();
  const std::vector<std::string> lines = lines_of(tap.out());
  ASSERT_EQ(lines.size(), 1u) << tap.out();
  EXPECT_TRUE(contains(lines[0], "\"type\": \"FusedState\"")) << lines[0];
  EXPECT_TRUE(contains(lines[0], "\"knee_angle_left_rad\": null")) << lines[0];
  EXPECT_TRUE(contains(lines[0], "\"contact_left\": ")) << "false booleans are printed too: " << lines[0];
}

TEST_F(TapTest, TablePrintsStationsAndDaemonStatusAndStopsOnSigint) {
  // stdout is a file, not a terminal: the table is printed as plain text once a second.
  Ctl tap({"tap", "--endpoint", daemon_->publish_endpoint()});
  ASSERT_TRUE(tap.wait_for_err("subscribed", 10s)) << tap.err();
  for (const TimedFrame& f : running_frames_with_pain(1, 3.0)) ASSERT_TRUE(send_frame(*push_, f.frame));
  // The pain clear is the last event: once the table shows it, every frame has been fused.
  ASSERT_TRUE(eventually([&] { return contains(tap.out(), "R10 pain_report clear") || !tap.running(); }, 20s))
      << "stdout:\n" << tap.out() << "\nstderr:\n" << tap.err();
  tap.signal(SIGINT);
  ASSERT_EQ(tap.wait(kExitBound).value_or(-1), 0) << tap.err();

  const std::string out = tap.out();
  EXPECT_FALSE(contains(out, "\x1b[")) << "no terminal escapes when stdout is not a terminal";
  // The last table printed (at exit) holds the final state.
  const std::string last = out.substr(out.rfind("kneeloadctl tap  "));
  for (const char* column : {"STATION", "RUNNER", "CADENCE", "CONTACT", "KNEE L/R", "PFJ", "RISK", "STEPS",
                             "LATEST EVENTS"}) {
    EXPECT_TRUE(contains(last, column)) << column << " in:\n" << last;
  }
  std::vector<std::string> row;  // whitespace-separated cells of st1's row
  for (const std::string& line : lines_of(last)) {
    if (line.rfind("st1 ", 0) != 0) continue;
    std::istringstream cells(line);
    for (std::string cell; cells >> cell;) row.push_back(cell);
  }
  ASSERT_GE(row.size(), 9u) << "no full row for st1 in:\n" << last;
  EXPECT_EQ(row[1], "r1");
  // 170 steps/min and 0.25 s contacts were sent; the model's estimates are close to them.
  EXPECT_NEAR(number(row[2]), 170.0, 10.0) << "cadence, spm:\n" << last;
  EXPECT_NEAR(number(row[3]), 250.0, 20.0) << "contact time, ms:\n" << last;
  EXPECT_EQ(row[4], "-/-") << "no knee devices, so no knee angle:\n" << last;
  EXPECT_EQ(row[6], "ok") << "the pain event was cleared, nothing is active:\n" << last;
  EXPECT_GT(number(row[7]), 0.0) << "steps:\n" << last;
  const std::size_t clear = last.find("R10 pain_report clear"), onset = last.find("R10 pain_report onset");
  EXPECT_TRUE(clear != std::string::npos && onset != std::string::npos && clear < onset)
      << "latest events, newest first:\n" << last;
  EXPECT_TRUE(contains(last, "rejected 0, dropped 0")) << last;
}

TEST_F(TapTest, TableShowsTheHighestActiveSeverity) {
  Ctl tap({"tap", "--endpoint", daemon_->publish_endpoint(), "--topic", "risk/", "--count", "1"});
  ASSERT_TRUE(tap.wait_for_err("subscribed", 10s)) << tap.err();
  v1::Frame f = frame("s1-console", 0);
  add_pain(f, 2'000'000, 8);
  ASSERT_TRUE(send_frame(*push_, f));
  ASSERT_EQ(tap.wait(kExitBound).value_or(-1), 0) << tap.err();
  const std::string out = tap.out();
  std::string row;
  for (const std::string& line : lines_of(out)) {
    if (line.rfind("st1 ", 0) == 0) row = line;
  }
  EXPECT_TRUE(contains(row, " HIGH ")) << out;
  EXPECT_TRUE(contains(row, "R10 pain_report onset")) << out;
}

TEST_F(TapTest, SaysSoWhenTheHeartbeatsStopAndKeepsListening) {
  Ctl tap({"tap", "--endpoint", daemon_->publish_endpoint(), "--json", "--timeout", "0.5"});
  ASSERT_TRUE(tap.wait_for_err("subscribed", 10s)) << tap.err();
  daemon_->process().signal(SIGTERM);
  ASSERT_EQ(daemon_->process().wait(10s).value_or(-1), 0) << daemon_->log();
  EXPECT_TRUE(tap.wait_for_err("no status heartbeat for 0.5 s: is kneeloadd still running?", 10s)) << tap.err();
  EXPECT_TRUE(tap.running()) << "a daemon that goes away may come back: tap keeps listening";
  tap.signal(SIGINT);
  EXPECT_EQ(tap.wait(kExitBound).value_or(-1), 0) << tap.err();
}

}  // namespace
}  // namespace kneeload::testing
