// kneeloadctl: the companion CLI of kneeloadd. main() only picks the subcommand; each one lives
// in its own file pair and parses its own options (cli.hpp).
#include <cstdio>
#include <exception>
#include <string_view>

#include "cli.hpp"
#include "command.hpp"
#include "history.hpp"
#include "load.hpp"
#include "record.hpp"
#include "replay.hpp"
#include "curve.hpp"
#include "sim_cmd.hpp"
#include "tap.hpp"

namespace {

using kneeload::ctl::Command;

// One row per subcommand, in the order `--help` lists them.
const Command* const kCommands[] = {
    &kneeload::ctl::kTapCommand,
    &kneeload::ctl::kRecordCommand,
    &kneeload::ctl::kReplayCommand,
    &kneeload::ctl::kSimCommand,
    &kneeload::ctl::kLoadCommand,
    &kneeload::ctl::kKeygenCommand,
    &kneeload::ctl::kRunnersCommand,
    &kneeload::ctl::kSessionsCommand,
    &kneeload::ctl::kExportCommand,
};

void print_usage(std::FILE* out) {
  std::fputs(
      "Usage: kneeloadctl <command> [options]\n"
      "\n"
      "Companion CLI of kneeloadd: watch what it publishes, record what devices send it, replay,\n"
      "simulate stations, drive it with load for benchmarks, read the runner history it keeps.\n"
      "\n"
      "Commands:\n",
      out);
  for (const Command* c : kCommands) std::fprintf(out, "  %-10s%s\n", c->name, c->summary);
  std::fputs(
      "\n"
      "Run 'kneeloadctl <command> --help' for the command's options.\n"
      "Exit codes: 0 success; 1 failure at run time (daemon unreachable, damaged recording, I/O\n"
      "error); 2 bad command line; replay interrupted by Ctrl-C: 130.\n",
      out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_usage(stderr);
    std::fputs("\nkneeloadctl: missing command\n", stderr);
    return kneeload::ctl::kExitUsage;
  }
  const std::string_view name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_usage(stdout);
    return kneeload::ctl::kExitOk;
  }
  if (name == "--version") {
    std::printf("kneeloadctl %s\n", KNEELOAD_VERSION);
    return kneeload::ctl::kExitOk;
  }
  for (const Command* c : kCommands) {
    if (name != c->name) continue;
    try {
      return c->run(argc - 2, argv + 2);
    } catch (const std::exception& e) {
      // Nothing expected gets here: every anticipated failure is reported where it happens.
      std::fprintf(stderr, "kneeloadctl %s: unexpected error: %s\n", c->name, e.what());
      return kneeload::ctl::kExitFailure;
    }
  }
  std::fprintf(stderr, "kneeloadctl: unknown %s \"%s\"\nTry 'kneeloadctl --help'.\n",
               name.starts_with("-") ? "option" : "command", argv[1]);
  return kneeload::ctl::kExitUsage;
}
