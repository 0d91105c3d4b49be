#include "daemon/store/sqlite_store.hpp"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>

namespace kneeload::store {

namespace fs = std::filesystem;

const std::array<BaselineMetric, kBaselineMetricCount> kBaselineMetrics{{
    {"contact_time_s", &fusion::GaitMetrics::contact_time_s},
    {"step_time_s", &fusion::GaitMetrics::step_time_s},
    {"cadence_spm", &fusion::GaitMetrics::cadence_spm},
    {"peak_force_bw", &fusion::GaitMetrics::peak_force_bw},
    {"valr_bw_per_s", &fusion::GaitMetrics::valr_bw_per_s},
    {"knee_angle_ic_rad", &fusion::GaitMetrics::knee_angle_ic_rad},
    {"knee_angle_peak_rad", &fusion::GaitMetrics::knee_angle_peak_rad},
    {"pfj_stress_peak_mpa", &fusion::GaitMetrics::pfj_stress_peak_mpa},
    {"stress_time_integral_per_km_mpa_s", &fusion::GaitMetrics::stress_time_integral_per_km_mpa_s},
    {"itb_zone_time_s", &fusion::GaitMetrics::itb_zone_time_s},
}};

const char* session_end_name(SessionEnd e) {
  switch (e) {
    case SessionEnd::kOpen: return "open";
    case SessionEnd::kConsole: return "console";
    case SessionEnd::kInactivity: return "inactivity";
    case SessionEnd::kRecovered: return "recovered";
  }
  return "open";
}

namespace {

constexpr std::int64_t kUsPerDay = 86'400'000'000;
constexpr double kAcuteLambda = 2.0 / (7.0 + 1.0);    // MODEL.md §4: 7-day EWMA
constexpr double kChronicLambda = 2.0 / (28.0 + 1.0); // 28-day EWMA

SessionEnd end_from_name(std::string_view s) {
  if (s == "console") return SessionEnd::kConsole;
  if (s == "inactivity") return SessionEnd::kInactivity;
  if (s == "recovered") return SessionEnd::kRecovered;
  return SessionEnd::kOpen;
}

const char* side_name(fusion::Side s) {
  switch (s) {
    case fusion::Side::kLeft: return "left";
    case fusion::Side::kRight: return "right";
    default: return "none";
  }
}

fusion::Side side_from_name(std::string_view s) {
  if (s == "left") return fusion::Side::kLeft;
  if (s == "right") return fusion::Side::kRight;
  return fusion::Side::kNone;
}

const char* severity_name(fusion::Severity s) {
  switch (s) {
    case fusion::Severity::kInfo: return "info";
    case fusion::Severity::kWarn: return "warn";
    case fusion::Severity::kHigh: return "high";
  }
  return "info";
}

std::int64_t day_of(std::int64_t unix_us) {
  return unix_us >= 0 ? unix_us / kUsPerDay : (unix_us - kUsPerDay + 1) / kUsPerDay;
}

// Ordered migrations: migrations[i] takes the schema from version i to i + 1. Never edit one
// that has shipped; add the next.
constexpr const char* kMigrations[kSchemaVersion] = {
    // 1: runners, shoes, sessions, steps, events, daily totals.
    R"sql(
CREATE TABLE runners(
  id TEXT PRIMARY KEY,
  body_mass_kg REAL,
  height_m REAL,
  shoe_id TEXT,
  first_seen_unix_us INTEGER NOT NULL);
CREATE TABLE shoes(
  runner_id TEXT NOT NULL REFERENCES runners(id),
  shoe_id TEXT NOT NULL,
  first_use_unix_us INTEGER NOT NULL,
  initial_km REAL NOT NULL,
  PRIMARY KEY(runner_id, shoe_id)) WITHOUT ROWID;
CREATE TABLE sessions(
  id INTEGER PRIMARY KEY,
  runner_id TEXT NOT NULL REFERENCES runners(id),
  station TEXT NOT NULL,
  shoe_id TEXT,
  model_id TEXT,
  start_unix_us INTEGER NOT NULL,
  end_unix_us INTEGER,
  checkpoint_unix_us INTEGER,
  checkpoint_interval_s REAL,
  start_t_us INTEGER NOT NULL,
  end_t_us INTEGER,
  steps INTEGER NOT NULL DEFAULT 0,
  distance_m REAL NOT NULL DEFAULT 0,
  duration_s REAL NOT NULL DEFAULT 0,
  stress_time_integral_mpa_s REAL,
  damage_index REAL,
  risk_events INTEGER NOT NULL DEFAULT 0,
  end_reason TEXT NOT NULL DEFAULT 'open',
  acute_chronic_ratio REAL);
CREATE INDEX sessions_by_runner ON sessions(runner_id, start_unix_us);
CREATE TABLE steps(
  session_id INTEGER NOT NULL REFERENCES sessions(id),
  step_index INTEGER NOT NULL,
  side TEXT NOT NULL,
  ic_t_us INTEGER NOT NULL,
  to_t_us INTEGER NOT NULL,
  contact_time_s REAL, flight_time_s REAL, cadence_spm REAL, step_length_m REAL,
  peak_force_bw REAL, strike_index_pct REAL, knee_angle_ic_rad REAL, knee_angle_peak_rad REAL,
  peak_knee_moment_nm_per_kg REAL, peak_pfjrf_bw REAL, peak_pfj_stress_mpa REAL,
  stress_time_integral_mpa_s REAL, itb_zone_time_s REAL, valr_bw_per_s REAL, vilr_bw_per_s REAL,
  PRIMARY KEY(session_id, step_index)) WITHOUT ROWID;
CREATE TABLE events(
  id INTEGER PRIMARY KEY,
  session_id INTEGER REFERENCES sessions(id),
  t_us INTEGER NOT NULL,
  rule TEXT NOT NULL,
  severity TEXT NOT NULL,
  phase TEXT NOT NULL,
  side TEXT NOT NULL,
  metric TEXT, value REAL, baseline REAL, threshold REAL,
  model_id TEXT);
CREATE INDEX events_by_session ON events(session_id);
CREATE TABLE daily_totals(
  runner_id TEXT NOT NULL REFERENCES runners(id),
  day TEXT NOT NULL,
  sessions INTEGER NOT NULL,
  distance_m REAL NOT NULL,
  duration_s REAL NOT NULL,
  steps INTEGER NOT NULL,
  stress_time_integral_mpa_s REAL,
  damage_index REAL,
  PRIMARY KEY(runner_id, day)) WITHOUT ROWID;
)sql",
    // 2: the runner baseline (MODEL.md §9: minutes 3-8 of the first sessions), per side and metric.
    R"sql(
CREATE TABLE baselines(
  runner_id TEXT NOT NULL REFERENCES runners(id),
  side TEXT NOT NULL,
  metric TEXT NOT NULL,
  value REAL,
  sessions INTEGER NOT NULL,
  updated_unix_us INTEGER NOT NULL,
  PRIMARY KEY(runner_id, side, metric)) WITHOUT ROWID;
)sql",
};

StoreError::Kind kind_of(int rc) {
  switch (rc & 0xff) {
    case SQLITE_FULL: return StoreError::Kind::kFull;
    case SQLITE_READONLY:
    case SQLITE_PERM: return StoreError::Kind::kReadOnly;
    case SQLITE_CORRUPT: return StoreError::Kind::kCorrupt;
    case SQLITE_NOTADB: return StoreError::Kind::kForeign;
    default: return StoreError::Kind::kIo;
  }
}

StoreError damaged(const std::string& path, const std::string& why) {
  return StoreError(StoreError::Kind::kCorrupt,
                    path + ": the history database is damaged (" + why +
                        "); keep it for inspection and start with another --state-dir");
}

}  // namespace

class SqliteStore::Stmt {
 public:
  Stmt(const SqliteStore& owner, const char* sql) : owner_(owner) {
    const int rc = sqlite3_prepare_v3(owner.db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
    if (rc != SQLITE_OK) owner.fail(rc, "preparing a statement");
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    return *this;
  }
  Stmt& bind(int i, std::int64_t v) { return check(sqlite3_bind_int64(stmt_, i, v)); }
  Stmt& bind(int i, std::uint64_t v) { return bind(i, static_cast<std::int64_t>(v)); }
  Stmt& bind(int i, std::uint32_t v) { return bind(i, static_cast<std::int64_t>(v)); }
  // NaN is stored as NULL (unknown) by SQLite itself.
  Stmt& bind(int i, double v) { return check(sqlite3_bind_double(stmt_, i, v)); }
  Stmt& bind(int i, float v) { return bind(i, static_cast<double>(v)); }
  // The text must stay valid until the statement is stepped (it is, in every use here).
  Stmt& bind(int i, std::string_view v) {
    return check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC));
  }
  Stmt& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
  Stmt& bind_null(int i) { return check(sqlite3_bind_null(stmt_, i)); }
  Stmt& bind_text_or_null(int i, std::string_view v) { return v.empty() ? bind_null(i) : bind(i, v); }

  // True while a row is available.
  bool step(const char* what) {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    sqlite3_reset(stmt_);
    owner_.fail(rc, what);
  }
  void run(const char* what) {
    while (step(what)) {
    }
    sqlite3_reset(stmt_);
  }

  std::int64_t i64(int c) const { return sqlite3_column_int64(stmt_, c); }
  double real(int c) const {
    return sqlite3_column_type(stmt_, c) == SQLITE_NULL ? kUnknown : sqlite3_column_double(stmt_, c);
  }
  std::string text(int c) const {
    const auto* p = sqlite3_column_text(stmt_, c);
    return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p));
  }
  bool null(int c) const { return sqlite3_column_type(stmt_, c) == SQLITE_NULL; }

 private:
  Stmt& check(int rc) {
    if (rc != SQLITE_OK) owner_.fail(rc, "binding a value");
    return *this;
  }
  const SqliteStore& owner_;
  sqlite3_stmt* stmt_ = nullptr;
};

SqliteStore::SqliteStore(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}

SqliteStore::~SqliteStore() {
  for (auto& s : statements_) s.reset();
  sqlite3_close_v2(db_);
}

void SqliteStore::fail(int rc, const char* what) const {
  std::string msg = path_ + ": " + what + ": " + sqlite3_errmsg(db_);
  if ((rc & 0xff) == SQLITE_FULL) msg += " (no space left on the device, or the file size limit reached)";
  throw StoreError(kind_of(rc), msg);
}

void SqliteStore::exec(const char* sql, const char* what) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) fail(rc, what);
}

SqliteStore::Stmt& SqliteStore::cached(int slot, const char* sql) {
  auto& s = statements_[slot];
  if (!s) s = std::make_unique<Stmt>(*this, sql);
  return s->reset();
}

std::unique_ptr<SqliteStore> SqliteStore::open(const std::string& state_dir, Mode mode,
                                               int busy_timeout_ms) {
  if (state_dir.empty()) throw StoreError(StoreError::Kind::kIo, "no state directory given");
  const std::string path = (fs::path(state_dir) / kHistoryFileName).string();
  int flags = SQLITE_OPEN_NOMUTEX;
  if (mode == Mode::kReadWrite) {
    std::error_code ec;
    fs::create_directories(state_dir, ec);
    if (ec) {
      throw StoreError(ec == std::errc::read_only_file_system || ec == std::errc::permission_denied
                           ? StoreError::Kind::kReadOnly
                           : StoreError::Kind::kIo,
                       "state directory " + state_dir + ": cannot create it: " + ec.message());
    }
    // SQLite needs to create history.sqlite3-wal and -shm next to the file: the directory itself
    // must be writable, not only the file.
    if (::access(state_dir.c_str(), W_OK) != 0) {
      throw StoreError(StoreError::Kind::kReadOnly,
                       "state directory " + state_dir + " is not writable (" + std::strerror(errno) +
                           "): kneeloadd keeps its runner history there; give it a writable --state-dir, "
                           "or set store.enabled = false");
    }
    flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  } else {
    if (!fs::exists(path)) {
      throw StoreError(StoreError::Kind::kIo,
                       path + ": no runner history here (no such file): kneeloadd writes it under its --state-dir");
    }
    flags |= SQLITE_OPEN_READONLY;
  }
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  std::unique_ptr<SqliteStore> store(new SqliteStore(path, db));
  if (rc != SQLITE_OK) store->fail(rc, "cannot open");
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, busy_timeout_ms);

  std::int64_t tables = 0, app_id = 0, version = 0;
  try {
    Stmt probe(*store, "SELECT (SELECT count(*) FROM sqlite_master), "
                       "(SELECT application_id FROM pragma_application_id), "
                       "(SELECT user_version FROM pragma_user_version)");
    if (probe.step("reading the header")) {
      tables = probe.i64(0);
      app_id = probe.i64(1);
      version = probe.i64(2);
    }
  } catch (const StoreError& e) {
    if (e.kind() == StoreError::Kind::kForeign) {
      throw StoreError(StoreError::Kind::kForeign,
                       path + ": not a kneeload history database (" + sqlite3_errmsg(db) +
                           "); move it away or point --state-dir elsewhere");
    }
    if (e.kind() == StoreError::Kind::kCorrupt) throw damaged(path, sqlite3_errmsg(db));
    throw;
  }
  const bool fresh = app_id == 0 && tables == 0;
  if (!fresh && app_id != kApplicationId) {
    char id[16];
    std::snprintf(id, sizeof id, "0x%08llx", static_cast<unsigned long long>(app_id));
    throw StoreError(StoreError::Kind::kForeign,
                     path + ": not a kneeload history database (a SQLite file of another program: application_id " +
                         id + ", " + std::to_string(tables) +
                         " schema objects); move it away or point --state-dir elsewhere");
  }
  if (version > kSchemaVersion) {
    throw StoreError(StoreError::Kind::kTooNew,
                     path + ": written by a newer kneeload (schema version " + std::to_string(version) +
                         ", this build knows up to " + std::to_string(kSchemaVersion) + "); refusing to touch it");
  }
  if (mode == Mode::kReadOnly && fresh) {
    throw StoreError(StoreError::Kind::kIo, path + ": an empty database, no runner history yet");
  }
  if (!fresh) {
    std::string check;
    try {
      check = store->integrity_check();
    } catch (const StoreError& e) {
      if (e.kind() != StoreError::Kind::kCorrupt) throw;
      check = sqlite3_errmsg(db);
    }
    if (check != "ok") throw damaged(path, "PRAGMA quick_check: " + check);
  }
  store->schema_version_ = static_cast<int>(version);
  if (mode == Mode::kReadWrite) {
    store->exec("PRAGMA journal_mode = WAL", "switching to WAL");
    store->exec("PRAGMA synchronous = NORMAL", "setting synchronous");
    store->exec("PRAGMA foreign_keys = ON", "enabling foreign keys");
    store->migrate();
  }
  return store;
}

std::string SqliteStore::integrity_check() {
  Stmt s(*this, "PRAGMA quick_check");
  std::string out;
  while (s.step("checking integrity")) {
    if (!out.empty()) out += "; ";
    out += s.text(0);
  }
  return out;
}

void SqliteStore::migrate() {
  if (schema_version_ == kSchemaVersion) return;
  exec("BEGIN IMMEDIATE", "starting the schema migration");
  try {
    if (schema_version_ == 0) {
      exec(("PRAGMA application_id = " + std::to_string(kApplicationId)).c_str(), "marking the file");
    }
    for (int v = schema_version_; v < kSchemaVersion; ++v) {
      exec(kMigrations[v], "migrating the schema");
    }
    exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str(), "setting the schema version");
    exec("COMMIT", "committing the schema migration");
  } catch (...) {
    rollback();
    throw;
  }
  schema_version_ = kSchemaVersion;
}

void SqliteStore::begin() { exec("BEGIN IMMEDIATE", "starting a transaction"); }
void SqliteStore::commit() { exec("COMMIT", "committing"); }
void SqliteStore::rollback() {
  if (sqlite3_get_autocommit(db_) == 0) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

void SqliteStore::upsert_runner(const RunnerInfo& info, std::int64_t now_unix_us) {
  Stmt r(*this,
         "INSERT INTO runners(id, body_mass_kg, height_m, shoe_id, first_seen_unix_us) VALUES(?1,?2,?3,?4,?5) "
         "ON CONFLICT(id) DO UPDATE SET body_mass_kg = ?2, height_m = ?3, shoe_id = ?4");
  r.bind(1, std::string_view(info.id)).bind(2, info.body_mass_kg).bind(3, info.height_m);
  r.bind_text_or_null(4, info.shoe_id).bind(5, now_unix_us).run("storing a runner");
  if (info.shoe_id.empty()) return;
  Stmt s(*this,
         "INSERT OR IGNORE INTO shoes(runner_id, shoe_id, first_use_unix_us, initial_km) VALUES(?1,?2,?3,?4)");
  s.bind(1, std::string_view(info.id)).bind(2, std::string_view(info.shoe_id)).bind(3, now_unix_us);
  s.bind(4, info.shoe_km).run("storing a shoe");
}

std::int64_t SqliteStore::open_session(const SessionStart& st) {
  cached(4, "INSERT OR IGNORE INTO runners(id, first_seen_unix_us) VALUES(?1, ?2)")
      .bind(1, st.runner).bind(2, st.start_unix_us).run("storing a runner");
  cached(3,
         "INSERT INTO sessions(runner_id, station, shoe_id, model_id, start_unix_us, start_t_us, end_t_us) "
         "VALUES(?1, ?2, (SELECT shoe_id FROM runners WHERE id = ?1), ?3, ?4, ?5, ?5)")
      .bind(1, st.runner).bind(2, st.station).bind_text_or_null(3, st.model_id)
      .bind(4, st.start_unix_us).bind(5, st.start_t_us).run("opening a session");
  return sqlite3_last_insert_rowid(db_);
}

void SqliteStore::add_step(std::int64_t session, const fusion::StepMetrics& m) {
  Stmt& s = cached(0,
                   "INSERT OR REPLACE INTO steps VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,"
                   "?18,?19,?20)");
  s.bind(1, session).bind(2, m.step_index).bind(3, side_name(m.side)).bind(4, m.ic_t_us).bind(5, m.to_t_us);
  s.bind(6, m.contact_time_s).bind(7, m.flight_time_s).bind(8, m.cadence_spm).bind(9, m.step_length_m);
  s.bind(10, m.peak_force_bw).bind(11, m.strike_index_pct).bind(12, m.knee_angle_ic_rad);
  s.bind(13, m.knee_angle_peak_rad).bind(14, m.peak_knee_moment_nm_per_kg).bind(15, m.peak_pfjrf_bw);
  s.bind(16, m.peak_pfj_stress_mpa).bind(17, m.stress_time_integral_mpa_s).bind(18, m.itb_zone_time_s);
  s.bind(19, m.valr_bw_per_s).bind(20, m.vilr_bw_per_s);
  s.run("storing a step");
}

void SqliteStore::add_event(std::int64_t session, const fusion::RiskEvent& e) {
  Stmt& s = cached(1,
                   "INSERT INTO events(session_id, t_us, rule, severity, phase, side, metric, value, baseline, "
                   "threshold, model_id) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)");
  if (session > 0) {
    s.bind(1, session);
  } else {
    s.bind_null(1);
  }
  s.bind(2, e.t_us).bind(3, fusion::rule_info(e.rule).code).bind(4, severity_name(e.severity));
  s.bind(5, e.phase == fusion::EventPhase::kOnset ? "onset" : "clear").bind(6, side_name(e.side));
  if (e.evidence_count > 0) {
    s.bind(7, e.evidence[0].metric).bind(8, e.evidence[0].value).bind(9, e.evidence[0].baseline);
    s.bind(10, e.evidence[0].threshold);
  }
  if (e.model_id != nullptr) s.bind(11, e.model_id);
  s.run("storing a risk event");
}

void SqliteStore::checkpoint(std::int64_t session, const SessionTotals& t, std::string_view model_id,
                             std::int64_t now_unix_us, double checkpoint_interval_s) {
  cached(2,
         "UPDATE sessions SET checkpoint_unix_us = ?2, checkpoint_interval_s = ?3, end_t_us = ?4, steps = ?5, "
         "distance_m = ?6, duration_s = ?7, stress_time_integral_mpa_s = ?8, damage_index = ?9, "
         "risk_events = ?10, model_id = coalesce(?11, model_id) WHERE id = ?1 AND end_reason = 'open'")
      .bind_text_or_null(11, model_id)
      .bind(1, session).bind(2, now_unix_us).bind(3, checkpoint_interval_s).bind(4, t.end_t_us)
      .bind(5, t.steps).bind(6, t.distance_m).bind(7, t.duration_s).bind(8, t.stress_time_integral_mpa_s)
      .bind(9, t.damage_index).bind(10, t.risk_events).run("checkpointing a session");
}

void SqliteStore::add_day(std::string_view runner, std::int64_t unix_us, const SessionTotals& t) {
  Stmt s(*this,
         "INSERT INTO daily_totals VALUES(?1, date(?2 / 1000000, 'unixepoch'), 1, ?3, ?4, ?5, ?6, ?7) "
         "ON CONFLICT(runner_id, day) DO UPDATE SET sessions = sessions + 1, distance_m = distance_m + ?3, "
         "duration_s = duration_s + ?4, steps = steps + ?5, "
         "stress_time_integral_mpa_s = coalesce(stress_time_integral_mpa_s, 0) + coalesce(?6, 0), "
         "damage_index = coalesce(damage_index, 0) + coalesce(?7, 0)");
  s.bind(1, runner).bind(2, unix_us).bind(3, t.distance_m).bind(4, t.duration_s).bind(5, t.steps);
  s.bind(6, t.stress_time_integral_mpa_s).bind(7, t.damage_index).run("adding to the daily totals");
}

// EWMAs of daily km over every stored day before `day`, days without running counting 0 km.
struct LoadEwma {
  double acute = kUnknown;
  double chronic = kUnknown;
  double day_km = 0.0;  // on `day` itself
};

namespace {
LoadEwma load_ewma(SqliteStore::Stmt& days, std::int64_t day) {
  LoadEwma out;
  std::int64_t next = 0;
  bool started = false;
  while (days.step("reading the daily totals")) {
    const std::int64_t d = days.i64(0);
    const double km = days.real(1) / 1000.0;
    if (d > day) break;
    if (d == day) {
      out.day_km = km;
      break;
    }
    if (!started) {
      out.acute = out.chronic = km;  // EWMA seeded with the first day's load
      started = true;
    } else {
      for (; next < d; ++next) {  // rest days
        out.acute *= 1.0 - kAcuteLambda;
        out.chronic *= 1.0 - kChronicLambda;
      }
      out.acute = kAcuteLambda * km + (1.0 - kAcuteLambda) * out.acute;
      out.chronic = kChronicLambda * km + (1.0 - kChronicLambda) * out.chronic;
    }
    next = d + 1;
  }
  if (started) {
    for (; next < day; ++next) {
      out.acute *= 1.0 - kAcuteLambda;
      out.chronic *= 1.0 - kChronicLambda;
    }
  }
  days.reset();
  return out;
}
constexpr const char* kDaysSql =
    "SELECT CAST(julianday(day) - 2440587.5 AS INTEGER), distance_m FROM daily_totals WHERE runner_id = ?1 "
    "ORDER BY day";
}  // namespace

double SqliteStore::ratio_for(std::string_view runner, std::int64_t start_unix_us, double distance_m) {
  Stmt days(*this, kDaysSql);
  days.bind(1, runner);
  const LoadEwma e = load_ewma(days, day_of(start_unix_us));
  if (!(e.chronic > 0.0)) return kUnknown;
  const double acute = kAcuteLambda * (e.day_km + distance_m / 1000.0) + (1.0 - kAcuteLambda) * e.acute;
  return acute / e.chronic;
}

double SqliteStore::close_session(std::int64_t session, const SessionTotals& t, SessionEnd end,
                                  std::int64_t now_unix_us) {
  std::string runner;
  std::int64_t start_unix_us = 0;
  {
    Stmt q(*this, "SELECT runner_id, start_unix_us FROM sessions WHERE id = ?1");
    q.bind(1, session);
    if (!q.step("finding a session")) return kUnknown;
    runner = q.text(0);
    start_unix_us = q.i64(1);
  }
  const double ratio = ratio_for(runner, start_unix_us, t.distance_m);
  Stmt u(*this,
         "UPDATE sessions SET end_unix_us = ?2, end_t_us = ?3, steps = ?4, distance_m = ?5, duration_s = ?6, "
         "stress_time_integral_mpa_s = ?7, damage_index = ?8, risk_events = ?9, end_reason = ?10, "
         "acute_chronic_ratio = ?11 WHERE id = ?1");
  u.bind(1, session).bind(2, now_unix_us).bind(3, t.end_t_us).bind(4, t.steps).bind(5, t.distance_m);
  u.bind(6, t.duration_s).bind(7, t.stress_time_integral_mpa_s).bind(8, t.damage_index).bind(9, t.risk_events);
  u.bind(10, session_end_name(end)).bind(11, ratio).run("closing a session");
  add_day(runner, start_unix_us, t);
  return ratio;
}

namespace {
double median(std::vector<double>& v) {
  if (v.empty()) return kUnknown;
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  if (v.size() % 2 == 1) return *mid;
  const double upper = *mid;
  const double lower = *std::max_element(v.begin(), mid);
  return 0.5 * (lower + upper);
}
}  // namespace

// MODEL.md §6/§9: per side, the median of each metric over the session's baseline window, then
// the mean of those medians over the runner's first baseline sessions. The per-step values are
// the stored StepMetrics; step time, per-km J and the belt speed are derived from them as the
// session derives them (step time = 60/cadence, J/km = J·1000/step length, v = length/time).
bool SqliteStore::update_baseline(std::int64_t session, const BaselineWindow& w, std::int64_t now_unix_us) {
  std::string runner;
  std::int64_t start_t_us = 0;
  {
    Stmt q(*this, "SELECT runner_id, start_t_us FROM sessions WHERE id = ?1");
    q.bind(1, session);
    if (!q.step("finding a session")) return false;
    runner = q.text(0);
    start_t_us = q.i64(1);
  }
  int done = 0;
  {
    Stmt q(*this, "SELECT coalesce(max(sessions), 0) FROM baselines WHERE runner_id = ?1");
    q.bind(1, std::string_view(runner));
    if (q.step("reading the baseline")) done = static_cast<int>(q.i64(0));
  }
  if (done >= w.max_sessions) return false;
  std::array<std::array<std::vector<double>, kBaselineMetricCount>, 2> values;
  std::array<int, 2> counts{};
  std::vector<double> speeds;
  Stmt q(*this,
         "SELECT side, contact_time_s, cadence_spm, peak_force_bw, valr_bw_per_s, knee_angle_ic_rad, "
         "knee_angle_peak_rad, peak_pfj_stress_mpa, stress_time_integral_mpa_s, step_length_m, itb_zone_time_s "
         "FROM steps WHERE session_id = ?1 AND ic_t_us >= ?2 AND ic_t_us < ?3");
  q.bind(1, session)
      .bind(2, start_t_us + static_cast<std::int64_t>(std::llround(w.start_s * 1e6)))
      .bind(3, start_t_us + static_cast<std::int64_t>(std::llround(w.end_s * 1e6)));
  while (q.step("reading baseline steps")) {
    const fusion::Side side = side_from_name(q.text(0));
    if (side == fusion::Side::kNone) continue;
    const std::size_t i = side == fusion::Side::kLeft ? 0 : 1;
    ++counts[i];
    const double cadence = q.real(2), length = q.real(9), j = q.real(8);
    fusion::GaitMetrics g;
    g.contact_time_s = q.real(1);
    g.cadence_spm = cadence;
    g.step_time_s = cadence > 0.0 ? 60.0 / cadence : kUnknown;
    g.peak_force_bw = q.real(3);
    g.valr_bw_per_s = q.real(4);
    g.knee_angle_ic_rad = q.real(5);
    g.knee_angle_peak_rad = q.real(6);
    g.pfj_stress_peak_mpa = q.real(7);
    g.stress_time_integral_per_km_mpa_s = length > 0.0 ? j * 1000.0 / length : kUnknown;
    g.itb_zone_time_s = q.real(10);
    for (std::size_t k = 0; k < kBaselineMetricCount; ++k) {
      const double v = g.*kBaselineMetrics[k].field;
      if (std::isfinite(v)) values[i][k].push_back(v);
    }
    if (std::isfinite(g.step_time_s) && std::isfinite(length)) speeds.push_back(length / g.step_time_s);
  }
  if (counts[0] < w.min_steps && counts[1] < w.min_steps) return false;
  Stmt old(*this, "SELECT value FROM baselines WHERE runner_id = ?1 AND side = ?2 AND metric = ?3");
  Stmt put(*this,
           "INSERT OR REPLACE INTO baselines(runner_id, side, metric, value, sessions, updated_unix_us) "
           "VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
  const auto fold = [&](const char* side, const char* metric, double value) {
    old.reset().bind(1, std::string_view(runner)).bind(2, side).bind(3, metric);
    double prev = kUnknown;
    if (old.step("reading the baseline")) prev = old.real(0);
    old.reset();
    double next = value;
    if (std::isfinite(prev) && std::isfinite(value)) next = (prev * done + value) / (done + 1);
    if (!std::isfinite(value)) next = prev;
    put.reset().bind(1, std::string_view(runner)).bind(2, side).bind(3, metric).bind(4, next);
    put.bind(5, static_cast<std::int64_t>(done + 1)).bind(6, now_unix_us).run("storing the baseline");
  };
  for (std::size_t i = 0; i < 2; ++i) {
    if (counts[i] < w.min_steps) continue;
    for (std::size_t k = 0; k < kBaselineMetricCount; ++k) {
      fold(i == 0 ? "left" : "right", kBaselineMetrics[k].name, median(values[i][k]));
    }
  }
  fold("both", "belt_speed_mps", median(speeds));
  return true;
}

std::vector<SessionRow> SqliteStore::recover_open_sessions(std::int64_t now_unix_us) {
  std::vector<SessionRow> open = select_sessions("end_reason = 'open'", {}, 0);
  for (SessionRow& s : open) {
    const std::int64_t end_unix = s.checkpoint_unix_us > 0 ? s.checkpoint_unix_us : s.start_unix_us;
    s.acute_chronic_ratio = ratio_for(s.runner, s.start_unix_us, s.totals.distance_m);
    Stmt u(*this,
           "UPDATE sessions SET end_reason = 'recovered', end_unix_us = ?2, acute_chronic_ratio = ?3 WHERE id = ?1");
    u.bind(1, s.id).bind(2, end_unix).bind(3, s.acute_chronic_ratio).run("recovering a session");
    add_day(s.runner, s.start_unix_us, s.totals);
    s.end = SessionEnd::kRecovered;
    s.end_unix_us = end_unix;
  }
  (void)now_unix_us;
  return open;
}

RunnerHistory SqliteStore::history(std::string_view runner, std::int64_t now_unix_us) {
  RunnerHistory h;
  constexpr std::int64_t kDay = kUsPerDay;
  {
    Stmt q(*this,
           "SELECT count(*), "
           "max(CASE WHEN start_unix_us >= ?2 - 30 * ?3 THEN distance_m END), "
           "max(CASE WHEN start_unix_us >= ?2 - 30 * ?3 AND model_id IS (SELECT model_id FROM sessions "
           "  WHERE runner_id = ?1 ORDER BY id DESC LIMIT 1) THEN damage_index END), "
           "total(CASE WHEN start_unix_us >= ?2 - 7 * ?3 THEN distance_m END), "
           "total(CASE WHEN start_unix_us >= ?2 - 21 * ?3 AND start_unix_us < ?2 - 7 * ?3 THEN distance_m END) "
           "FROM sessions WHERE runner_id = ?1 AND end_reason != 'open'");
    q.bind(1, runner).bind(2, now_unix_us).bind(3, kDay);
    if (q.step("reading the runner's history")) {
      h.sessions = static_cast<std::uint64_t>(q.i64(0));
      if (h.sessions > 0) {
        h.max_session_distance_30d_m = q.real(1);
        h.max_session_damage_30d = q.real(2);
        h.week_km = q.real(3) / 1000.0;
        h.previous_two_weeks_mean_km = q.real(4) / 1000.0 / 2.0;
      }
    }
  }
  {
    Stmt q(*this,
           "SELECT s.initial_km + coalesce((SELECT total(distance_m) FROM sessions WHERE runner_id = r.id AND "
           "shoe_id = r.shoe_id AND end_reason != 'open'), 0) / 1000.0 "
           "FROM runners r JOIN shoes s ON s.runner_id = r.id AND s.shoe_id = r.shoe_id WHERE r.id = ?1");
    q.bind(1, runner);
    if (q.step("reading the shoe km")) h.shoe_km = q.real(0);
  }
  {
    Stmt q(*this,
           "SELECT max(value) FROM events WHERE rule = 'R10' AND metric = 'pain_score' AND session_id = "
           "(SELECT id FROM sessions WHERE runner_id = ?1 AND end_reason != 'open' ORDER BY id DESC LIMIT 1)");
    q.bind(1, runner);
    if (q.step("reading the last pain report")) h.previous_session_pain_score = q.real(0);
  }
  Stmt days(*this, kDaysSql);
  days.bind(1, runner);
  const LoadEwma e = load_ewma(days, day_of(now_unix_us));
  h.acute_load_ewma_km = e.acute;
  h.chronic_load_ewma_km = e.chronic;
  h.day_km = h.sessions > 0 ? e.day_km : kUnknown;
  Stmt b(*this, "SELECT side, metric, value, sessions FROM baselines WHERE runner_id = ?1");
  b.bind(1, runner);
  while (b.step("reading the baseline")) {
    const std::string side = b.text(0), metric = b.text(1);
    const double value = b.real(2);
    h.baseline_sessions = std::max(h.baseline_sessions, static_cast<int>(b.i64(3)));
    if (side == "both" && metric == "belt_speed_mps") {
      h.baseline_speed_mps = value;
      continue;
    }
    const std::size_t i = side == "left" ? 0 : 1;
    for (const BaselineMetric& m : kBaselineMetrics) {
      if (metric == m.name) h.baseline[i].*m.field = value;
    }
  }
  return h;
}

std::vector<RunnerRow> SqliteStore::runners() {
  Stmt q(*this,
         "SELECT r.id, r.body_mass_kg, r.height_m, r.shoe_id, r.first_seen_unix_us, "
         "(SELECT max(start_unix_us) FROM sessions WHERE runner_id = r.id), "
         "(SELECT count(*) FROM sessions WHERE runner_id = r.id), "
         "(SELECT total(distance_m) FROM sessions WHERE runner_id = r.id) / 1000.0, "
         "(SELECT s.initial_km + (SELECT total(distance_m) FROM sessions WHERE runner_id = r.id AND "
         "  shoe_id = r.shoe_id) / 1000.0 FROM shoes s WHERE s.runner_id = r.id AND s.shoe_id = r.shoe_id) "
         "FROM runners r ORDER BY r.id");
  std::vector<RunnerRow> out;
  while (q.step("listing runners")) {
    RunnerRow r;
    r.id = q.text(0);
    r.body_mass_kg = q.real(1);
    r.height_m = q.real(2);
    r.shoe_id = q.text(3);
    r.first_seen_unix_us = q.i64(4);
    r.last_session_unix_us = q.null(5) ? 0 : q.i64(5);
    r.sessions = static_cast<std::uint64_t>(q.i64(6));
    r.total_km = q.real(7);
    r.shoe_km = q.real(8);
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<SessionRow> SqliteStore::select_sessions(const char* where, std::string_view text,
                                                     std::int64_t number) {
  const std::string sql =
      std::string("SELECT id, runner_id, station, shoe_id, model_id, start_unix_us, end_unix_us, checkpoint_unix_us, "
                  "checkpoint_interval_s, start_t_us, end_t_us, steps, distance_m, duration_s, "
                  "stress_time_integral_mpa_s, damage_index, risk_events, end_reason, acute_chronic_ratio "
                  "FROM sessions WHERE ") +
      where + " ORDER BY start_unix_us, id";
  Stmt q(*this, sql.c_str());
  if (!text.empty()) q.bind(1, text);
  if (number != 0) q.bind(1, number);
  std::vector<SessionRow> out;
  while (q.step("listing sessions")) {
    SessionRow s;
    s.id = q.i64(0);
    s.runner = q.text(1);
    s.station = q.text(2);
    s.shoe_id = q.text(3);
    s.model_id = q.text(4);
    s.start_unix_us = q.i64(5);
    s.end_unix_us = q.null(6) ? 0 : q.i64(6);
    s.checkpoint_unix_us = q.null(7) ? 0 : q.i64(7);
    const double interval = q.real(8);
    s.totals.start_t_us = q.i64(9);
    s.totals.end_t_us = q.i64(10);
    s.totals.steps = static_cast<std::uint64_t>(q.i64(11));
    s.totals.distance_m = q.real(12);
    s.totals.duration_s = q.real(13);
    s.totals.stress_time_integral_mpa_s = q.real(14);
    s.totals.damage_index = q.real(15);
    s.totals.risk_events = static_cast<std::uint32_t>(q.i64(16));
    s.end = end_from_name(q.text(17));
    s.acute_chronic_ratio = q.real(18);
    if (s.end == SessionEnd::kRecovered || s.end == SessionEnd::kOpen) s.lost_at_most_s = interval;
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<SessionRow> SqliteStore::sessions(std::string_view runner) {
  return runner.empty() ? select_sessions("1", {}, 0) : select_sessions("runner_id = ?1", runner, 0);
}

std::optional<SessionRow> SqliteStore::session(std::int64_t id) {
  auto rows = select_sessions("id = ?1", {}, id);
  if (rows.empty()) return std::nullopt;
  return rows.front();
}

std::vector<HistoryStore::StepRow> SqliteStore::steps(std::int64_t session) {
  Stmt q(*this, "SELECT * FROM steps WHERE session_id = ?1 ORDER BY step_index");
  q.bind(1, session);
  std::vector<StepRow> out;
  const auto f = [&q](int c) { return static_cast<float>(q.real(c)); };
  while (q.step("reading steps")) {
    StepRow r;
    r.session = q.i64(0);
    fusion::StepMetrics& m = r.step;
    m.step_index = static_cast<std::uint64_t>(q.i64(1));
    m.side = side_from_name(q.text(2));
    m.ic_t_us = q.i64(3);
    m.to_t_us = q.i64(4);
    m.contact_time_s = f(5);
    m.flight_time_s = f(6);
    m.cadence_spm = f(7);
    m.step_length_m = f(8);
    m.peak_force_bw = f(9);
    m.strike_index_pct = f(10);
    m.knee_angle_ic_rad = f(11);
    m.knee_angle_peak_rad = f(12);
    m.peak_knee_moment_nm_per_kg = f(13);
    m.peak_pfjrf_bw = f(14);
    m.peak_pfj_stress_mpa = f(15);
    m.stress_time_integral_mpa_s = f(16);
    m.itb_zone_time_s = f(17);
    m.valr_bw_per_s = f(18);
    m.vilr_bw_per_s = f(19);
    out.push_back(r);
  }
  return out;
}

}  // namespace kneeload::store
