// HistoryStore: the runner history kneeloadd keeps across sessions, days and restarts (runners,
// shoes, sessions with their steps and risk events, daily totals), behind one narrow interface.
// SqliteStore (sqlite_store.hpp) is the implementation today; a PostgreSQL one for sites where
// several daemons share history would implement the same interface and pass the same tests
// (tests/store/history_store_test.cpp runs against a factory).
//
// Thread ownership: one object per thread. The daemon's store writer thread owns one for its
// writes; the main thread owns another for start-up recovery and history look-ups; kneeloadctl
// opens a read-only one. Errors are thrown as StoreError; nothing here runs on the hot path.
//
// Units: SI as in fusion/output.hpp; *_t_us on the runner's aligned clock (the daemon's steady
// clock, deterministic in replays); *_unix_us wall clock, which is what "30 days" and "this
// week" are measured in. Unknown values are NaN in memory and NULL in the store.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "kneeload/fusion/output.hpp"
#include "kneeload/fusion/risk_rules.hpp"

namespace kneeload::store {

inline constexpr double kUnknown = std::numeric_limits<double>::quiet_NaN();

class StoreError : public std::runtime_error {
 public:
  enum class Kind {
    kForeign,    // not a kneeload history (another program's file, or not a database at all)
    kCorrupt,    // a kneeload history whose integrity check fails
    kTooNew,     // written by a newer kneeload (schema version above this build's)
    kReadOnly,   // the state directory or the file cannot be written
    kFull,       // the disk (or quota) is full
    kIo,         // any other failure
  };
  StoreError(Kind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

struct RunnerInfo {
  std::string id;
  double body_mass_kg = kUnknown;
  double height_m = kUnknown;
  std::string shoe_id;          // empty: unknown shoes
  double shoe_km = 0.0;         // km on the shoes before kneeload saw them (config shoe_km)
};

struct SessionStart {
  std::string_view runner;
  std::string_view station;
  std::string_view model_id;    // load model id of the session's values (R4 compares alike)
  std::int64_t start_unix_us = 0;
  std::int64_t start_t_us = 0;
};

// Running or final totals of a session (fusion::SessionSummary's, as numbers).
struct SessionTotals {
  std::int64_t start_t_us = 0;
  std::int64_t end_t_us = 0;
  std::uint64_t steps = 0;
  double distance_m = 0.0;
  double duration_s = 0.0;
  double stress_time_integral_mpa_s = kUnknown;
  double damage_index = kUnknown;
  std::uint32_t risk_events = 0;
};

// How a session ended. kOpen: in progress (or the daemon died: recover_open_sessions()).
enum class SessionEnd { kOpen, kConsole, kInactivity, kRecovered };
const char* session_end_name(SessionEnd e);  // "open", "console", "inactivity", "recovered"

// One stored session, as listed by `kneeloadctl sessions`.
struct SessionRow {
  std::int64_t id = 0;
  std::string runner;
  std::string station;
  std::string shoe_id;
  std::string model_id;
  std::int64_t start_unix_us = 0;
  std::int64_t end_unix_us = 0;         // 0 while open
  std::int64_t checkpoint_unix_us = 0;  // last checkpoint (0: none)
  SessionTotals totals;
  SessionEnd end = SessionEnd::kOpen;
  double acute_chronic_ratio = kUnknown;
  // Recovered sessions: the totals are the last checkpoint's; at most this many seconds of the
  // session (the checkpoint interval) after it were lost.
  double lost_at_most_s = kUnknown;
};

struct RunnerRow {
  std::string id;
  double body_mass_kg = kUnknown;
  double height_m = kUnknown;
  std::string shoe_id;
  double shoe_km = kUnknown;  // including every stored session in these shoes
  std::int64_t first_seen_unix_us = 0;
  std::int64_t last_session_unix_us = 0;  // 0: none
  std::uint64_t sessions = 0;
  double total_km = 0.0;
};

// The runner baseline (MODEL.md §9: minutes 3-8 of the runner's first sessions) as the store
// keeps it: per side, the metrics a stored step carries (StepMetrics), by name.
struct BaselineMetric {
  const char* name;  // column of the baselines table: "contact_time_s"
  double fusion::GaitMetrics::*field;
};
inline constexpr int kBaselineMetricCount = 10;
extern const std::array<BaselineMetric, kBaselineMetricCount> kBaselineMetrics;

// Which part of a session is baseline (model.trends): steps whose IC falls in
// [start_s, end_s) after the session's first IC, at least min_steps per side, from the first
// max_sessions sessions that have such steps.
struct BaselineWindow {
  double start_s = 180.0;
  double end_s = 480.0;
  int min_steps = 60;
  int max_sessions = 3;
};

// What the rules need from earlier sessions (fusion::TrainingHistory's hooks).
struct RunnerHistory {
  std::uint64_t sessions = 0;                     // closed sessions on record
  double max_session_distance_30d_m = kUnknown;   // R4
  double max_session_damage_30d = kUnknown;       // R4, same model id only
  double week_km = kUnknown;                      // R5: the 7 days before `now`
  double previous_two_weeks_mean_km = kUnknown;   // R5: days 8..21 before `now`, per week
  double shoe_km = kUnknown;                      // R9: current shoes
  double previous_session_pain_score = kUnknown;  // R10 evidence: highest in the last session
  double acute_load_ewma_km = kUnknown;           // ACWR: EWMAs of daily km through yesterday
  double chronic_load_ewma_km = kUnknown;
  double day_km = kUnknown;                       // km already run today (UTC day of `now`)
  // The runner baseline: the mean over baseline_sessions sessions of each one's per-side medians.
  std::array<fusion::GaitMetrics, 2> baseline{};
  double baseline_speed_mps = kUnknown;
  int baseline_sessions = 0;
};

class HistoryStore {
 public:
  virtual ~HistoryStore() = default;

  // Writes happen inside a transaction; the writer groups many records in one.
  virtual void begin() = 0;
  virtual void commit() = 0;
  virtual void rollback() = 0;  // never throws

  // Creates or refreshes the runner; a new shoe id starts a shoe record at info.shoe_km.
  virtual void upsert_runner(const RunnerInfo& info, std::int64_t now_unix_us) = 0;
  // Returns the new session's id. The runner is created if unknown.
  virtual std::int64_t open_session(const SessionStart& start) = 0;
  virtual void add_step(std::int64_t session, const fusion::StepMetrics& step) = 0;
  virtual void add_event(std::int64_t session, const fusion::RiskEvent& event) = 0;
  // model_id: the session's load model id (the first checkpoint fills it in).
  virtual void checkpoint(std::int64_t session, const SessionTotals& totals, std::string_view model_id,
                          std::int64_t now_unix_us, double checkpoint_interval_s) = 0;
  // Final totals; updates the runner's daily totals. Returns the stored ACWR (NaN unknown).
  virtual double close_session(std::int64_t session, const SessionTotals& totals, SessionEnd end,
                               std::int64_t now_unix_us) = 0;
  // Folds the closed session's baseline window into the runner baseline, if the runner has
  // fewer than window.max_sessions baseline sessions and this one has enough steps. Returns
  // whether it did.
  virtual bool update_baseline(std::int64_t session, const BaselineWindow& window,
                               std::int64_t now_unix_us) = 0;
  // Start-up after a crash: every session still open ends as kRecovered with its last
  // checkpoint's totals (and is counted in the daily totals). Returns them.
  virtual std::vector<SessionRow> recover_open_sessions(std::int64_t now_unix_us) = 0;

  virtual RunnerHistory history(std::string_view runner, std::int64_t now_unix_us) = 0;
  virtual std::vector<RunnerRow> runners() = 0;
  // All runners' sessions when runner is empty; oldest first.
  virtual std::vector<SessionRow> sessions(std::string_view runner) = 0;
  virtual std::optional<SessionRow> session(std::int64_t id) = 0;
  // A session's steps in step order (for export).
  struct StepRow {
    std::int64_t session = 0;
    fusion::StepMetrics step{};
  };
  virtual std::vector<StepRow> steps(std::int64_t session) = 0;
};

}  // namespace kneeload::store
