#include "history.hpp"

#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "daemon/store/sqlite_store.hpp"
#include "json.hpp"

namespace kneeload::ctl {
namespace {

using store::SqliteStore;

constexpr const char* kDefaultStateDir = "/var/lib/kneeload";
constexpr const char* kStateDirHelp =
    "kneeloadd's state directory (its --state-dir or state_dir;\ndefault /var/lib/kneeload)";

std::string utc(std::int64_t unix_us, bool iso) {
  if (unix_us == 0) return iso ? "" : "-";
  const std::time_t t = static_cast<std::time_t>(unix_us / 1'000'000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, iso ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

// Table cell: NaN (unknown) is "-".
std::string cell(double v, const char* fmt) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// CSV cell: NaN is empty; floats round-trip (%.9g), doubles with 12 significant digits.
std::string csv_num(double v, const char* fmt = "%.12g") {
  if (!std::isfinite(v)) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// RFC 4180: quote when needed.
std::string csv_text(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

void json_key(std::string& out, const char* key, bool& first) {
  out += first ? "{" : ", ";
  first = false;
  append_json_string(key, out);
  out += ": ";
}
void json_num(std::string& out, const char* key, double v, bool& first) {
  json_key(out, key, first);
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  out += buf;
}
void json_int(std::string& out, const char* key, std::int64_t v, bool& first) {
  json_key(out, key, first);
  out += std::to_string(v);
}
void json_str(std::string& out, const char* key, const std::string& v, bool& first) {
  json_key(out, key, first);
  append_json_string(v, out);
}

std::string end_text(const store::SessionRow& s) {
  if (s.end != store::SessionEnd::kRecovered) return store::session_end_name(s.end);
  return "recovered (<=" + cell(s.lost_at_most_s, "%.1f") + " s lost)";
}

struct HistoryOptions {
  std::string state_dir = kDefaultStateDir;
  bool json = false;
};

// Opens the history read-only; on failure says why on stderr and returns null.
std::unique_ptr<SqliteStore> open_or_report(const ArgParser& args, const std::string& state_dir) {
  try {
    return SqliteStore::open(state_dir, SqliteStore::Mode::kReadOnly);
  } catch (const store::StoreError& e) {
    std::fprintf(stderr, "%s: %s\n", args.program().c_str(), e.what());
    return nullptr;
  }
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& r : rows) {
    width.resize(std::max(width.size(), r.size()), 0);
    for (std::size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

// ---- runners -------------------------------------------------------------------------------

int run_runners(int argc, char** argv) {
  HistoryOptions o;
  ArgParser args("runners", "kneeloadctl runners [--state-dir DIR] [--json]",
                 "Lists the runners kneeloadd has a history for: sessions, km, the last session and\n"
                 "the current shoes' km. Safe while the daemon runs (read-only).");
  args.option("--state-dir", "DIR", kStateDirHelp, set_string(&o.state_dir));
  args.flag("--json", "one JSON array of objects instead of the table", &o.json);
  if (auto code = args.parse(argc, argv)) return *code;
  auto db = open_or_report(args, o.state_dir);
  if (!db) return kExitFailure;
  std::vector<store::RunnerRow> runners;
  try {
    runners = db->runners();
  } catch (const store::StoreError& e) {
    std::fprintf(stderr, "%s: %s\n", args.program().c_str(), e.what());
    return kExitFailure;
  }
  if (o.json) {
    std::string out = "[";
    for (std::size_t i = 0; i < runners.size(); ++i) {
      const store::RunnerRow& r = runners[i];
      bool first = true;
      out += i ? ",\n " : "";
      json_str(out, "id", r.id, first);
      json_int(out, "sessions", static_cast<std::int64_t>(r.sessions), first);
      json_num(out, "total_km", r.total_km, first);
      json_int(out, "last_session_unix_us", r.last_session_unix_us, first);
      json_str(out, "last_session_utc", utc(r.last_session_unix_us, true), first);
      json_str(out, "shoe_id", r.shoe_id, first);
      json_num(out, "shoe_km", r.shoe_km, first);
      json_num(out, "body_mass_kg", r.body_mass_kg, first);
      json_num(out, "height_m", r.height_m, first);
      json_int(out, "first_seen_unix_us", r.first_seen_unix_us, first);
      out += "}";
    }
    out += "]\n";
    std::fputs(out.c_str(), stdout);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows{
      {"RUNNER", "SESSIONS", "KM", "LAST SESSION (UTC)", "SHOE", "SHOE KM", "MASS KG"}};
  for (const store::RunnerRow& r : runners) {
    rows.push_back({r.id, std::to_string(r.sessions), cell(r.total_km, "%.2f"), utc(r.last_session_unix_us, false),
                    r.shoe_id.empty() ? "-" : r.shoe_id, cell(r.shoe_km, "%.1f"), cell(r.body_mass_kg, "%.1f")});
  }
  print_table(rows);
  return kExitOk;
}

// ---- sessions ------------------------------------------------------------------------------

void session_json(std::string& out, const store::SessionRow& s) {
  bool first = true;
  json_int(out, "id", s.id, first);
  json_str(out, "runner", s.runner, first);
  json_str(out, "station", s.station, first);
  json_str(out, "shoe_id", s.shoe_id, first);
  json_int(out, "start_unix_us", s.start_unix_us, first);
  json_str(out, "start_utc", utc(s.start_unix_us, true), first);
  json_int(out, "end_unix_us", s.end_unix_us, first);
  json_num(out, "duration_s", s.totals.duration_s, first);
  json_num(out, "distance_m", s.totals.distance_m, first);
  json_int(out, "steps", static_cast<std::int64_t>(s.totals.steps), first);
  json_num(out, "stress_time_integral_mpa_s", s.totals.stress_time_integral_mpa_s, first);
  json_num(out, "damage_index", s.totals.damage_index, first);
  json_int(out, "risk_events", s.totals.risk_events, first);
  json_num(out, "acute_chronic_ratio", s.acute_chronic_ratio, first);
  json_str(out, "end", store::session_end_name(s.end), first);
  json_key(out, "recovered", first);
  out += s.end == store::SessionEnd::kRecovered ? "true" : "false";
  json_num(out, "lost_at_most_s", s.lost_at_most_s, first);
  json_int(out, "checkpoint_unix_us", s.checkpoint_unix_us, first);
  json_str(out, "model_id", s.model_id, first);
  json_int(out, "start_t_us", s.totals.start_t_us, first);
  json_int(out, "end_t_us", s.totals.end_t_us, first);
  out += "}";
}

int run_sessions(int argc, char** argv) {
  HistoryOptions o;
  std::string runner;
  bool all = false;
  ArgParser args("sessions", "kneeloadctl sessions (RUNNER | --all) [--state-dir DIR] [--json]",
                 "Lists stored sessions, oldest first: start, duration, km, steps, load totals, the\n"
                 "acute:chronic ratio and how the session ended (console, inactivity, or recovered\n"
                 "after an unclean stop, with the most that can have been lost). Safe while the\n"
                 "daemon runs (read-only).");
  args.positional("RUNNER", "the runner's id (or --all)", &runner, false);
  args.flag("--all", "every runner's sessions", &all);
  args.option("--state-dir", "DIR", kStateDirHelp, set_string(&o.state_dir));
  args.flag("--json", "one JSON array of objects instead of the table", &o.json);
  if (auto code = args.parse(argc, argv)) return *code;
  if (runner.empty() == !all) {
    return args.usage_error(all ? "give a RUNNER or --all, not both" : "missing RUNNER (or --all)");
  }
  auto db = open_or_report(args, o.state_dir);
  if (!db) return kExitFailure;
  std::vector<store::SessionRow> sessions;
  try {
    if (!all) {
      bool known = false;
      std::string ids;
      for (const store::RunnerRow& r : db->runners()) {
        known = known || r.id == runner;
        ids += (ids.empty() ? "" : ", ") + r.id;
      }
      if (!known) {
        std::fprintf(stderr, "%s: no runner \"%s\" in %s (runners: %s)\n", args.program().c_str(), runner.c_str(),
                     db->path().c_str(), ids.empty() ? "none" : ids.c_str());
        return kExitFailure;
      }
    }
    sessions = db->sessions(all ? std::string_view() : std::string_view(runner));
  } catch (const store::StoreError& e) {
    std::fprintf(stderr, "%s: %s\n", args.program().c_str(), e.what());
    return kExitFailure;
  }
  if (o.json) {
    std::string out = "[";
    for (std::size_t i = 0; i < sessions.size(); ++i) {
      out += i ? ",\n " : "";
      session_json(out, sessions[i]);
    }
    out += "]\n";
    std::fputs(out.c_str(), stdout);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows{{"ID", "RUNNER", "STATION", "START (UTC)", "MIN", "KM", "STEPS",
                                              "J MPa*s", "DAMAGE", "ACWR", "EVENTS", "END"}};
  for (const store::SessionRow& s : sessions) {
    rows.push_back({std::to_string(s.id), s.runner, s.station, utc(s.start_unix_us, false),
                    cell(s.totals.duration_s / 60.0, "%.1f"), cell(s.totals.distance_m / 1000.0, "%.3f"),
                    std::to_string(s.totals.steps), cell(s.totals.stress_time_integral_mpa_s, "%.1f"),
                    cell(s.totals.damage_index, "%.1f"), cell(s.acute_chronic_ratio, "%.2f"),
                    std::to_string(s.totals.risk_events), end_text(s)});
  }
  print_table(rows);
  return kExitOk;
}

// ---- export --------------------------------------------------------------------------------

int run_export(int argc, char** argv) {
  HistoryOptions o;
  std::string runner, prefix;
  bool csv = false;
  ArgParser args("export", "kneeloadctl export RUNNER --csv [--output PREFIX] [--state-dir DIR]",
                 "Writes a runner's stored history for analysis: PREFIX-sessions.csv (one row per\n"
                 "session) and PREFIX-steps.csv (one row per step, every StepMetrics field, keyed by\n"
                 "session_id). Units are in the column names; an unknown value is an empty cell.\n"
                 "Safe while the daemon runs (read-only).");
  args.positional("RUNNER", "the runner's id", &runner);
  args.flag("--csv", "write CSV (RFC 4180; the only format so far, so required)", &csv);
  args.option("--output", "PREFIX", "file name prefix (default: RUNNER, in the current directory)",
              set_string(&prefix));
  args.option("--state-dir", "DIR", kStateDirHelp, set_string(&o.state_dir));
  if (auto code = args.parse(argc, argv)) return *code;
  if (!csv) return args.usage_error("choose the output format: --csv");
  if (prefix.empty()) prefix = runner;
  auto db = open_or_report(args, o.state_dir);
  if (!db) return kExitFailure;
  const std::string sessions_path = prefix + "-sessions.csv";
  const std::string steps_path = prefix + "-steps.csv";
  std::size_t session_count = 0, step_count = 0;
  try {
    bool known = false;
    for (const store::RunnerRow& r : db->runners()) known = known || r.id == runner;
    if (!known) {
      std::fprintf(stderr, "%s: no runner \"%s\" in %s\n", args.program().c_str(), runner.c_str(), db->path().c_str());
      return kExitFailure;
    }
    std::ofstream sessions_out(sessions_path, std::ios::trunc);
    std::ofstream steps_out(steps_path, std::ios::trunc);
    if (!sessions_out || !steps_out) {
      std::fprintf(stderr, "%s: cannot write %s / %s\n", args.program().c_str(), sessions_path.c_str(),
                   steps_path.c_str());
      return kExitFailure;
    }
    sessions_out << "session_id,runner,station,shoe_id,start_utc,start_unix_us,end_unix_us,end,lost_at_most_s,"
                    "duration_s,distance_m,steps,stress_time_integral_mpa_s,damage_index,risk_events,"
                    "acute_chronic_ratio,model_id,start_t_us,end_t_us\n";
    steps_out << "session_id,step_index,side,ic_t_us,to_t_us,contact_time_s,flight_time_s,cadence_spm,"
                 "step_length_m,peak_force_bw,strike_index_pct,knee_angle_ic_rad,knee_angle_peak_rad,"
                 "peak_knee_moment_nm_per_kg,peak_pfjrf_bw,peak_pfj_stress_mpa,stress_time_integral_mpa_s,"
                 "itb_zone_time_s,valr_bw_per_s,vilr_bw_per_s\n";
    for (const store::SessionRow& s : db->sessions(runner)) {
      ++session_count;
      sessions_out << s.id << ',' << csv_text(s.runner) << ',' << csv_text(s.station) << ',' << csv_text(s.shoe_id)
                   << ',' << utc(s.start_unix_us, true) << ',' << s.start_unix_us << ',' << s.end_unix_us << ','
                   << store::session_end_name(s.end) << ',' << csv_num(s.lost_at_most_s) << ','
                   << csv_num(s.totals.duration_s) << ',' << csv_num(s.totals.distance_m) << ',' << s.totals.steps
                   << ',' << csv_num(s.totals.stress_time_integral_mpa_s) << ',' << csv_num(s.totals.damage_index)
                   << ',' << s.totals.risk_events << ',' << csv_num(s.acute_chronic_ratio) << ','
                   << csv_text(s.model_id) << ',' << s.totals.start_t_us << ',' << s.totals.end_t_us << '\n';
      for (const auto& row : db->steps(s.id)) {
        ++step_count;
        const fusion::StepMetrics& m = row.step;
        const auto f = [](float v) { return csv_num(static_cast<double>(v), "%.9g"); };
        steps_out << row.session << ',' << m.step_index << ','
                  << (m.side == fusion::Side::kLeft ? "left" : m.side == fusion::Side::kRight ? "right" : "none")
                  << ',' << m.ic_t_us << ',' << m.to_t_us << ',' << f(m.contact_time_s) << ',' << f(m.flight_time_s)
                  << ',' << f(m.cadence_spm) << ',' << f(m.step_length_m) << ',' << f(m.peak_force_bw) << ','
                  << f(m.strike_index_pct) << ',' << f(m.knee_angle_ic_rad) << ',' << f(m.knee_angle_peak_rad)
                  << ',' << f(m.peak_knee_moment_nm_per_kg) << ',' << f(m.peak_pfjrf_bw) << ','
                  << f(m.peak_pfj_stress_mpa) << ',' << f(m.stress_time_integral_mpa_s) << ','
                  << f(m.itb_zone_time_s) << ',' << f(m.valr_bw_per_s) << ',' << f(m.vilr_bw_per_s) << '\n';
      }
    }
    sessions_out.flush();
    steps_out.flush();
    if (!sessions_out || !steps_out) {
      std::fprintf(stderr, "%s: writing %s / %s failed\n", args.program().c_str(), sessions_path.c_str(),
                   steps_path.c_str());
      return kExitFailure;
    }
  } catch (const store::StoreError& e) {
    std::fprintf(stderr, "%s: %s\n", args.program().c_str(), e.what());
    return kExitFailure;
  }
  std::fprintf(stderr, "%s: wrote %zu session(s) to %s and %zu step(s) to %s\n", args.program().c_str(),
               session_count, sessions_path.c_str(), step_count, steps_path.c_str());
  return kExitOk;
}

}  // namespace

const Command kRunnersCommand{"runners", "list the runners in kneeloadd's history", run_runners};
const Command kSessionsCommand{"sessions", "list a runner's (or every) stored session", run_sessions};
const Command kExportCommand{"export", "write a runner's sessions and steps as CSV", run_export};

}  // namespace kneeload::ctl
