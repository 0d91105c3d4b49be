// kneeloadctl's command line: help, mistakes (exit 2 with a message saying what to do), and
// endpoints nobody answers on (a clear error and exit 1 after --timeout, never a hang).
#include <gtest/gtest.h>

#include "ctl_harness.hpp"

namespace kneeload::testing {
namespace {

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

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(CtlCli, HelpListsEveryCommandAndExitsZero) {
  const Outcome r = run({"--help"});
  EXPECT_EQ(r.code, 0) << r.err;
  for (const char* cmd : {"tap", "record", "replay"}) EXPECT_TRUE(contains(r.out, cmd)) << cmd << " in:\n" << r.out;
}

TEST(CtlCli, EachCommandHasHelpNamingItsOptions) {
  const std::map<std::string, std::vector<std::string>> options{
      {"tap", {"--endpoint", "--topic", "--json", "--count", "--duration"}},
      {"record", {"--listen", "--output", "--forward", "--duration", "--config"}},
      {"replay", {"FILE", "--endpoint", "--speed", "--from", "--limit", "--observe"}},
  };
  for (const auto& [cmd, names] : options) {
    const Outcome r = run({cmd, "--help"});
    EXPECT_EQ(r.code, 0) << cmd << ": " << r.err;
    for (const std::string& o : names) EXPECT_TRUE(contains(r.out, o)) << cmd << " --help lacks " << o << ":\n" << r.out;
  }
}

TEST(CtlCli, MistakesExitTwoSayingWhatIsWrongAndWhereToLook) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases{
      {{}, "missing command"},
      {{"frobnicate"}, "unknown command \"frobnicate\""},
      {{"--frobnicate"}, "unknown option \"--frobnicate\""},
      {{"tap", "--bogus"}, "unknown option \"--bogus\""},
      {{"tap", "--count", "0"}, "--count expects a positive integer, got \"0\""},
      {{"tap", "--count"}, "--count needs a value"},
      {{"tap", "--duration", "soon"}, "--duration expects a number of seconds > 0, got \"soon\""},
      {{"tap", "--json=yes"}, "--json takes no value"},
      {{"tap", "stray"}, "unexpected argument \"stray\""},
      {{"tap", "--endpoint", "udp://127.0.0.1:1"}, "not a ZeroMQ endpoint"},
      {{"record"}, "--output FILE is required"},
      {{"record", "--output", "x.rec", "--stamp-forwarded"}, "--stamp-forwarded needs --forward E2"},
      {{"record", "--output", "x.rec", "--config", "/nonexistent/kneeloadd.toml"}, "--config: cannot read"},
      {{"replay"}, "missing FILE"},
      {{"replay", "a.rec", "--speed", "0"}, "--speed expects a factor > 0"},
      {{"replay", "a.rec", "--speed", "fast"}, "got \"fast\""},
      {{"replay", "a.rec", "--from", "-1"}, "--from expects a number of seconds >= 0"},
      {{"replay", "a.rec", "--limit", "many"}, "--limit expects a positive integer"},
      {{"replay", "a.rec", "b.rec"}, "unexpected argument \"b.rec\""},
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
}

// Endpoints where nothing listens: an ipc path in an empty temp dir cannot be reached by
// accident, unlike a tcp port another test might be using.
TEST(CtlCli, UnreachableEndpointsFailWithAClearMessageAfterTheTimeout) {
  TempDir dir;
  const std::string nowhere = "ipc://" + (dir.path() / "nobody.sock").string();
  const fs::path rec = dir.path() / "some.rec";
  {
    const Outcome r = run({"tap", "--endpoint", nowhere, "--timeout", "0.5"});
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_TRUE(contains(r.err, "no status heartbeat from " + nowhere)) << r.err;
    EXPECT_TRUE(contains(r.err, "is kneeloadd running")) << r.err;
  }
  {
    ASSERT_EQ(run({"record", "--listen", "ipc://" + (dir.path() / "rec.sock").string(), "--output", rec.string(),
                   "--duration", "0.1"})
                  .code,
              0);
    const Outcome r = run({"replay", rec.string(), "--endpoint", nowhere, "--timeout", "0.5"});
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_TRUE(contains(r.err, "nothing answered at " + nowhere)) << r.err;
  }
  {
    const Outcome r = run({"replay", rec.string(), "--endpoint", nowhere, "--observe", nowhere, "--timeout", "0.5"});
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_TRUE(contains(r.err, "--observe: no status heartbeat")) << r.err;
  }
  {
    const fs::path other = dir.path() / "other.rec";
    const Outcome r = run({"record", "--listen", "ipc://" + (dir.path() / "rec2.sock").string(), "--output",
                       other.string(), "--forward", nowhere, "--timeout", "0.5"});
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_TRUE(contains(r.err, "--forward: nothing answered at " + nowhere)) << r.err;
    EXPECT_FALSE(fs::exists(other)) << "no recording is created when the daemon cannot be reached";
  }
}

TEST(CtlCli, PointingReplayAtAPublishEndpointIsExplained) {
  Daemon daemon(base_toml() + registry_toml(1));
  ASSERT_TRUE(daemon.started()) << daemon.log();
  TempDir dir;
  const fs::path rec = dir.path() / "empty.rec";
  ASSERT_EQ(run({"record", "--listen", "ipc://" + (dir.path() / "r.sock").string(), "--output", rec.string(),
                 "--duration", "0.1"})
                .code,
            0);
  const Outcome r = run({"replay", rec.string(), "--endpoint", daemon.publish_endpoint(), "--timeout", "1"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_TRUE(contains(r.err, "refused a PUSH socket")) << r.err;
}

TEST(CtlCli, MissingOrExistingFilesAreRuntimeErrors) {
  TempDir dir;
  const Outcome missing = run({"replay", (dir.path() / "absent.rec").string()});
  EXPECT_EQ(missing.code, 1) << missing.err;
  EXPECT_TRUE(contains(missing.err, "absent.rec: No such file or directory")) << missing.err;

  const fs::path existing = dir.path() / "existing.rec";
  write_file(existing, "keep me");
  const Outcome refused = run({"record", "--listen", "ipc://" + (dir.path() / "r.sock").string(), "--output",
                           existing.string(), "--duration", "0.1"});
  EXPECT_EQ(refused.code, 1) << refused.err;
  EXPECT_TRUE(contains(refused.err, "--force")) << refused.err;
  EXPECT_EQ(read_file(existing), "keep me");
}

}  // namespace
}  // namespace kneeload::testing
