// A kneeloadctl subcommand. Each lives in its own file pair (tap.cpp, record.cpp, …) and is
// listed once in main.cpp's table; adding one is a new file pair, a row there and a line in
// CMakeLists.txt.
#pragma once

namespace kneeload::ctl {

struct Command {
  const char* name;     // "tap"
  const char* summary;  // one line for `kneeloadctl --help`
  // argv holds the words after the subcommand's name. Returns the process exit code
  // (cli.hpp: kExitOk, kExitFailure, kExitUsage).
  int (*run)(int argc, char** argv);
};

}  // namespace kneeload::ctl
