#include "cli.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace kneeload::ctl {
namespace {

constexpr std::size_t kHelpColumn = 26;

std::string quoted(std::string_view v) { return "\"" + std::string(v) + "\""; }

}  // namespace

ArgParser::ArgParser(std::string command, std::string synopsis, std::string description)
    : program_("kneeloadctl " + command), synopsis_(std::move(synopsis)),
      description_(std::move(description)) {}

void ArgParser::flag(std::string name, std::string help, bool* out) {
  options_.push_back(Option{std::move(name), "", std::move(help), nullptr, out});
}

void ArgParser::option(std::string name, std::string metavar, std::string help, Setter set) {
  options_.push_back(Option{std::move(name), std::move(metavar), std::move(help), std::move(set), nullptr});
}

void ArgParser::positional(std::string metavar, std::string help, std::string* out, bool required) {
  positionals_.push_back(Positional{std::move(metavar), std::move(help), out, required});
}

int ArgParser::usage_error(const std::string& message) const {
  std::fprintf(stderr, "%s: %s\nTry '%s --help'.\n", program_.c_str(), message.c_str(), program_.c_str());
  return kExitUsage;
}

std::string ArgParser::help_text() const {
  std::string out = "Usage: " + synopsis_ + "\n\n" + description_ + "\n";
  const auto row = [&out](std::string left, const std::string& help) {
    left = "  " + left;
    left.resize(left.size() < kHelpColumn ? kHelpColumn : left.size() + 1, ' ');
    out += left;
    for (const char c : help) {
      out += c;
      if (c == '\n') out += std::string(kHelpColumn, ' ');
    }
    out += '\n';
  };
  if (!positionals_.empty()) {
    out += "\nArguments:\n";
    for (const Positional& p : positionals_) row(p.metavar, p.help);
  }
  out += "\nOptions:\n";
  for (const Option& o : options_) row(o.metavar.empty() ? o.name : o.name + " " + o.metavar, o.help);
  row("--help", "show this help and exit");
  return out;
}

std::optional<int> ArgParser::parse(int argc, char** argv) {
  std::size_t next_positional = 0;
  bool options_ended = false;
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (options_ended || arg.size() < 2 || arg[0] != '-') {
      if (next_positional >= positionals_.size()) {
        return usage_error("unexpected argument " + quoted(arg));
      }
      *positionals_[next_positional++].out = std::string(arg);
      continue;
    }
    if (arg == "--") {
      options_ended = true;
      continue;
    }
    if (arg == "--help" || arg == "-h") {
      std::fputs(help_text().c_str(), stdout);
      return kExitOk;
    }
    const std::size_t eq = arg.find('=');
    const std::string_view name = arg.substr(0, eq);
    const Option* option = nullptr;
    for (const Option& o : options_) {
      if (o.name == name) option = &o;
    }
    if (option == nullptr) return usage_error("unknown option " + quoted(name));
    if (option->flag != nullptr) {
      if (eq != std::string_view::npos) return usage_error(std::string(name) + " takes no value");
      *option->flag = true;
      continue;
    }
    std::string_view value;
    if (eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return usage_error(std::string(name) + " needs a value: " + option->name + " " + option->metavar);
    }
    if (const std::string why = option->set(value); !why.empty()) {
      return usage_error(std::string(name) + " " + why + ", got " + quoted(value));
    }
  }
  if (next_positional < positionals_.size() && positionals_[next_positional].required) {
    return usage_error("missing " + positionals_[next_positional].metavar);
  }
  return std::nullopt;
}

ArgParser::Setter set_string(std::string* out) {
  return [out](std::string_view v) -> std::string {
    if (v.empty()) return "expects a non-empty value";
    *out = std::string(v);
    return {};
  };
}

ArgParser::Setter append_string(std::vector<std::string>* out) {
  return [out](std::string_view v) -> std::string {
    out->emplace_back(v);
    return {};
  };
}

ArgParser::Setter set_seconds(double* out, bool allow_zero) {
  return [out, allow_zero](std::string_view v) -> std::string {
    const std::string text(v);
    char* end = nullptr;
    const double s = std::strtod(text.c_str(), &end);
    const bool parsed = !text.empty() && end == text.c_str() + text.size() && std::isfinite(s);
    if (!parsed || s < 0.0 || (!allow_zero && s == 0.0)) {
      return allow_zero ? "expects a number of seconds >= 0" : "expects a number of seconds > 0";
    }
    *out = s;
    return {};
  };
}

ArgParser::Setter set_count(std::uint64_t* out) {
  return [out](std::string_view v) -> std::string {
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || end != v.data() + v.size() || n == 0) return "expects a positive integer";
    *out = n;
    return {};
  };
}

}  // namespace kneeload::ctl
