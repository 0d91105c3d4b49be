// Command-line parsing shared by the subcommands: long options (`--name VALUE` or
// `--name=VALUE`), flags, positionals, `--help`, and one way of reporting a mistake: what was
// wrong, how to get help, exit code 2.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kneeload::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // at run time: unreachable daemon, damaged file, I/O error
inline constexpr int kExitUsage = 2;    // bad command line

class ArgParser {
 public:
  // Checks and stores one option value. Returns an error phrase ("expects a positive number")
  // or an empty string when the value is taken.
  using Setter = std::function<std::string(std::string_view value)>;

  // `command` is the subcommand ("tap"); `synopsis` the usage line(s) after "Usage: ";
  // `description` the paragraph under it.
  ArgParser(std::string command, std::string synopsis, std::string description);

  void flag(std::string name, std::string help, bool* out);
  // `help` may hold '\n' for further lines; they are indented under the first.
  void option(std::string name, std::string metavar, std::string help, Setter set);
  // A positional, in the order declared; optional ones (required = false) come last.
  void positional(std::string metavar, std::string help, std::string* out, bool required = true);

  // Parses argv[0..argc) (the words after the subcommand). Returns nullopt when the command
  // should run, else the exit code to return at once: 0 after --help (printed on stdout), 2
  // after a mistake (reported on stderr).
  std::optional<int> parse(int argc, char** argv);

  // Prints "kneeloadctl CMD: MESSAGE" and the --help hint on stderr; returns kExitUsage.
  int usage_error(const std::string& message) const;
  std::string help_text() const;
  // "kneeloadctl tap": the prefix of this command's messages.
  const std::string& program() const { return program_; }

 private:
  struct Option {
    std::string name;
    std::string metavar;  // empty for a flag
    std::string help;
    Setter set;
    bool* flag = nullptr;
  };
  struct Positional {
    std::string metavar;
    std::string help;
    std::string* out;
    bool required = true;
  };

  std::string program_;
  std::string synopsis_;
  std::string description_;
  std::vector<Option> options_;
  std::vector<Positional> positionals_;
};

// Setters for the common value kinds. Each reports the value it refused.
ArgParser::Setter set_string(std::string* out);
ArgParser::Setter append_string(std::vector<std::string>* out);
// A finite number of seconds, > 0 (or >= 0 with allow_zero).
ArgParser::Setter set_seconds(double* out, bool allow_zero = false);
// A positive integer.
ArgParser::Setter set_count(std::uint64_t* out);

}  // namespace kneeload::ctl
