// The HistoryStore contract, written against the interface: each test gets a store from a
// factory, so a PostgreSQL implementation adds one INSTANTIATE line and passes the same tests.
// SqliteStore's file-level behaviour (foreign and damaged files, versions, read-only access,
// a full disk) follows in SqliteStoreFile.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>

#include "daemon/store/history_store.hpp"
#include "daemon/store/sqlite_store.hpp"
#include "../support/tmpfs_mount.hpp"

namespace kneeload::store {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kDayUs = 86'400'000'000;
// A fixed "now": 2026-11-24 12:00:00 UTC, so day boundaries are known.
constexpr std::int64_t kNow = 1'795'521'600'000'000;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "kneeload-store-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

// ---- The contract ------------------------------------------------------------------------------

// Opens a fresh, empty store in `dir` (a real implementation may use dir for a file, or as a
// unique schema name on a database server), or reopens the same one.
using StoreFactory = std::function<std::unique_ptr<HistoryStore>(const std::string& dir)>;

std::unique_ptr<HistoryStore> open_sqlite(const std::string& dir) {
  return SqliteStore::open(dir, SqliteStore::Mode::kReadWrite);
}

fusion::StepMetrics step(std::uint64_t index, float stress_mpa) {
  fusion::StepMetrics m{};
  m.step_index = index;
  m.side = index % 2 == 0 ? fusion::Side::kLeft : fusion::Side::kRight;
  m.ic_t_us = static_cast<std::int64_t>(index) * 350'000;
  m.to_t_us = m.ic_t_us + 250'000;
  m.contact_time_s = 0.25f;
  m.flight_time_s = std::nanf("");
  m.cadence_spm = 171.5f;
  m.peak_pfj_stress_mpa = stress_mpa;
  m.stress_time_integral_mpa_s = 0.6f;
  return m;
}

SessionTotals totals(double km, std::uint64_t steps = 100, double damage = 50.0) {
  SessionTotals t;
  t.start_t_us = 1'000'000;
  t.end_t_us = 1'000'000 + static_cast<std::int64_t>(steps) * 350'000;
  t.steps = steps;
  t.distance_m = km * 1000.0;
  t.duration_s = static_cast<double>(steps) * 0.35;
  t.stress_time_integral_mpa_s = static_cast<double>(steps) * 0.6;
  t.damage_index = damage;
  t.risk_events = 1;
  return t;
}

// One closed session of `km` for `runner`, started at `start_unix_us`.
std::int64_t run_session(HistoryStore& s, const std::string& runner, std::int64_t start_unix_us, double km,
                         double damage = 50.0) {
  s.begin();
  SessionStart start;
  start.runner = runner;
  start.station = "st1";
  start.model_id = "pfj-mri-male/b4";
  start.start_unix_us = start_unix_us;
  start.start_t_us = 1'000'000;
  const std::int64_t id = s.open_session(start);
  s.close_session(id, totals(km, 100, damage), SessionEnd::kInactivity, start_unix_us + 3'600'000'000);
  s.commit();
  return id;
}

class HistoryStoreContract : public ::testing::TestWithParam<StoreFactory> {
 protected:
  std::unique_ptr<HistoryStore> open() { return GetParam()(dir_.str()); }
  TempDir dir_;
};

TEST_P(HistoryStoreContract, ASessionIsStoredWithItsStepsEventsAndFinalTotals) {
  auto s = open();
  RunnerInfo r;
  r.id = "r1";
  r.body_mass_kg = 70.0;
  r.height_m = 1.75;
  r.shoe_id = "shoe-a";
  r.shoe_km = 100.0;
  s->begin();
  s->upsert_runner(r, kNow);
  SessionStart start;
  start.runner = "r1";
  start.station = "st7";
  start.model_id = "m1";
  start.start_unix_us = kNow;
  start.start_t_us = 5'000'000;
  const std::int64_t id = s->open_session(start);
  for (std::uint64_t i = 0; i < 10; ++i) s->add_step(id, step(i, 5.0f + static_cast<float>(i)));
  fusion::RiskEvent e{};
  e.t_us = 6'000'000;
  e.rule = fusion::RuleId::kPainReport;
  e.severity = fusion::Severity::kHigh;
  e.phase = fusion::EventPhase::kOnset;
  e.side = fusion::Side::kLeft;
  e.evidence_count = 1;
  e.evidence[0] = {"pain_score", 6.0f, std::nanf(""), 3.0f};
  e.model_id = "m1";
  s->add_event(id, e);
  s->checkpoint(id, totals(1.0, 6), "m1", kNow + 2'000'000, 5.0);
  s->commit();

  auto open_rows = s->sessions("r1");
  ASSERT_EQ(open_rows.size(), 1u);
  EXPECT_EQ(open_rows[0].end, SessionEnd::kOpen);
  EXPECT_EQ(open_rows[0].totals.steps, 6u) << "an open session shows its last checkpoint";

  s->begin();
  s->close_session(id, totals(2.5, 10), SessionEnd::kConsole, kNow + 60'000'000);
  s->commit();

  const auto rows = s->sessions("r1");
  ASSERT_EQ(rows.size(), 1u);
  const SessionRow& row = rows[0];
  EXPECT_EQ(row.id, id);
  EXPECT_EQ(row.station, "st7");
  EXPECT_EQ(row.shoe_id, "shoe-a");
  EXPECT_EQ(row.model_id, "m1");
  EXPECT_EQ(row.end, SessionEnd::kConsole);
  EXPECT_EQ(row.totals.steps, 10u);
  EXPECT_DOUBLE_EQ(row.totals.distance_m, 2500.0);
  EXPECT_EQ(row.start_unix_us, kNow);
  EXPECT_EQ(row.end_unix_us, kNow + 60'000'000);

  const auto steps = s->steps(id);
  ASSERT_EQ(steps.size(), 10u);
  for (std::size_t i = 0; i < steps.size(); ++i) {
    EXPECT_EQ(steps[i].step.step_index, i);
    EXPECT_EQ(steps[i].step.peak_pfj_stress_mpa, 5.0f + static_cast<float>(i));
    EXPECT_TRUE(std::isnan(steps[i].step.flight_time_s)) << "unknown stays unknown (NaN), not 0";
  }
  const RunnerHistory h = s->history("r1", kNow + kDayUs);
  EXPECT_EQ(h.sessions, 1u);
  EXPECT_DOUBLE_EQ(h.previous_session_pain_score, 6.0);
  EXPECT_DOUBLE_EQ(h.shoe_km, 102.5) << "100 km before kneeload + the 2.5 km session";

  const auto runners = s->runners();
  ASSERT_EQ(runners.size(), 1u);
  EXPECT_EQ(runners[0].sessions, 1u);
  EXPECT_DOUBLE_EQ(runners[0].total_km, 2.5);
  EXPECT_DOUBLE_EQ(runners[0].shoe_km, 102.5);
}

TEST_P(HistoryStoreContract, HistoryGivesThe30DayLongestRunAndTheWeeklyKmForR4AndR5) {
  auto s = open();
  run_session(*s, "r1", kNow - 35 * kDayUs, 20.0, 900.0);  // outside the 30 days
  run_session(*s, "r1", kNow - 12 * kDayUs, 8.0, 300.0);   // previous two weeks
  run_session(*s, "r1", kNow - 9 * kDayUs, 6.0, 200.0);    // previous two weeks
  run_session(*s, "r1", kNow - 3 * kDayUs, 5.0, 100.0);    // this week
  run_session(*s, "r2", kNow - 1 * kDayUs, 42.0, 5000.0);  // someone else
  const RunnerHistory h = s->history("r1", kNow);
  EXPECT_EQ(h.sessions, 4u);
  EXPECT_DOUBLE_EQ(h.max_session_distance_30d_m, 8000.0);
  EXPECT_DOUBLE_EQ(h.max_session_damage_30d, 300.0);
  EXPECT_DOUBLE_EQ(h.week_km, 5.0);
  EXPECT_DOUBLE_EQ(h.previous_two_weeks_mean_km, 7.0) << "(8 + 6) km over 2 weeks";
  EXPECT_DOUBLE_EQ(h.day_km, 0.0);
  EXPECT_TRUE(std::isnan(h.shoe_km)) << "no shoes on record";

  const RunnerHistory none = s->history("nobody", kNow);
  EXPECT_EQ(none.sessions, 0u);
  EXPECT_TRUE(std::isnan(none.max_session_distance_30d_m)) << "no history: R4 stays silent";
  EXPECT_TRUE(std::isnan(none.week_km));
}

// MODEL.md §4: uncoupled EWMA ACWR. Days d0 = 10 km, d1 = rest, d2 = 4 km; on d3 a 6 km session:
// acute through d2 = 0.25·4 + 0.75·(0.75·10) = 6.625, chronic = (2/29)·4 + (27/29)·((27/29)·10);
// ratio = (0.25·6 + 0.75·6.625) / chronic.
TEST_P(HistoryStoreContract, AcuteChronicRatioIsTheUncoupledEwmaOfDailyKm) {
  auto s = open();
  const std::int64_t d3 = kNow;
  run_session(*s, "r1", d3 - 3 * kDayUs, 10.0);
  run_session(*s, "r1", d3 - 1 * kDayUs, 4.0);
  const RunnerHistory before = s->history("r1", d3);
  const double la = 0.25, lc = 2.0 / 29.0;
  const double acute = la * 4.0 + (1 - la) * ((1 - la) * 10.0);
  const double chronic = lc * 4.0 + (1 - lc) * ((1 - lc) * 10.0);
  EXPECT_NEAR(before.acute_load_ewma_km, acute, 1e-9);
  EXPECT_NEAR(before.chronic_load_ewma_km, chronic, 1e-9);
  s->begin();
  SessionStart start;
  start.runner = "r1";
  start.station = "st1";
  start.start_unix_us = d3;
  const std::int64_t id = s->open_session(start);
  const double ratio = s->close_session(id, totals(6.0), SessionEnd::kConsole, d3 + 1);
  s->commit();
  const double expected = (la * 6.0 + (1 - la) * acute) / chronic;
  EXPECT_NEAR(ratio, expected, 1e-9);
  EXPECT_NEAR(s->session(id)->acute_chronic_ratio, expected, 1e-9);
}

TEST_P(HistoryStoreContract, AnOpenSessionLeftByACrashIsRecoveredWithItsLastCheckpoint) {
  std::int64_t id = 0;
  {
    auto s = open();
    s->begin();
    SessionStart start;
    start.runner = "r1";
    start.station = "st1";
    start.start_unix_us = kNow;
    id = s->open_session(start);
    for (std::uint64_t i = 0; i < 40; ++i) s->add_step(id, step(i, 6.0f));
    s->checkpoint(id, totals(0.5, 40), "m1", kNow + 14'000'000, 2.0);
    s->commit();
  }  // the process dies here: no close
  auto s = open();
  s->begin();
  const auto recovered = s->recover_open_sessions(kNow + 100'000'000);
  s->commit();
  ASSERT_EQ(recovered.size(), 1u);
  EXPECT_EQ(recovered[0].id, id);
  const auto row = s->session(id);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->end, SessionEnd::kRecovered);
  EXPECT_EQ(row->totals.steps, 40u);
  EXPECT_DOUBLE_EQ(row->totals.distance_m, 500.0);
  EXPECT_EQ(row->end_unix_us, kNow + 14'000'000) << "ends at its last checkpoint";
  EXPECT_DOUBLE_EQ(row->lost_at_most_s, 2.0) << "the checkpoint interval bounds what was lost";
  EXPECT_EQ(s->history("r1", kNow + kDayUs).sessions, 1u) << "a recovered session counts as history";
  s->begin();
  EXPECT_TRUE(s->recover_open_sessions(kNow + 200'000'000).empty()) << "recovered once";
  s->commit();
}

TEST_P(HistoryStoreContract, ARolledBackTransactionLeavesNothingBehind) {
  auto s = open();
  run_session(*s, "r1", kNow - kDayUs, 3.0);
  s->begin();
  SessionStart start;
  start.runner = "r1";
  start.station = "st1";
  start.start_unix_us = kNow;
  const std::int64_t id = s->open_session(start);
  s->add_step(id, step(0, 5.0f));
  s->rollback();
  EXPECT_EQ(s->sessions("r1").size(), 1u);
  EXPECT_TRUE(s->steps(id).empty());
}

// MODEL.md §9: the runner baseline is the mean over the first 3 sessions of each session's
// per-side medians in its baseline window.
TEST_P(HistoryStoreContract, TheRunnerBaselineIsTheMeanOfTheFirstSessionsMedians) {
  auto s = open();
  const BaselineWindow window{1.0, 6.0, 5, 3};  // steps with IC in [1 s, 6 s) of the session
  const auto session_with = [&](float contact_s, std::int64_t start_unix_us) {
    s->begin();
    SessionStart start;
    start.runner = "r1";
    start.station = "st1";
    start.start_unix_us = start_unix_us;
    start.start_t_us = 0;
    const std::int64_t id = s->open_session(start);
    for (std::uint64_t i = 0; i < 30; ++i) {  // IC every 0.35 s: 14 steps inside the window
      fusion::StepMetrics m = step(i, 5.0f);
      m.contact_time_s = i < 3 ? 9.0f : contact_s;  // outside the window: ignored
      m.step_length_m = 1.1f;
      s->add_step(id, m);
    }
    s->close_session(id, totals(0.03, 30), SessionEnd::kConsole, start_unix_us + 1);
    const bool folded = s->update_baseline(id, window, start_unix_us + 2);
    s->commit();
    return folded;
  };
  EXPECT_TRUE(s->history("r1", kNow).baseline_sessions == 0);
  EXPECT_TRUE(session_with(0.25f, kNow - 3 * kDayUs));
  RunnerHistory h = s->history("r1", kNow);
  EXPECT_EQ(h.baseline_sessions, 1);
  EXPECT_NEAR(h.baseline[0].contact_time_s, 0.25, 1e-6);
  EXPECT_NEAR(h.baseline[1].cadence_spm, 171.5, 1e-4);
  EXPECT_NEAR(h.baseline[0].step_time_s, 60.0 / 171.5, 1e-6);
  EXPECT_NEAR(h.baseline_speed_mps, 1.1 * 171.5 / 60.0, 1e-5);
  EXPECT_TRUE(session_with(0.35f, kNow - 2 * kDayUs));
  EXPECT_TRUE(session_with(0.30f, kNow - 1 * kDayUs));
  EXPECT_FALSE(session_with(0.90f, kNow)) << "only the first 3 sessions make the baseline";
  h = s->history("r1", kNow);
  EXPECT_EQ(h.baseline_sessions, 3);
  EXPECT_NEAR(h.baseline[0].contact_time_s, 0.30, 1e-6);
  EXPECT_NEAR(h.baseline[1].contact_time_s, 0.30, 1e-6);
}

INSTANTIATE_TEST_SUITE_P(Sqlite, HistoryStoreContract, ::testing::Values(StoreFactory(open_sqlite)),
                         [](const ::testing::TestParamInfo<StoreFactory>&) { return std::string("SqliteStore"); });

// ---- SqliteStore's file ------------------------------------------------------------------------

std::string path_in(const TempDir& d) { return (d.path() / kHistoryFileName).string(); }

StoreError::Kind open_error(const std::string& dir, std::string* message,
                            SqliteStore::Mode mode = SqliteStore::Mode::kReadWrite) {
  try {
    SqliteStore::open(dir, mode);
  } catch (const StoreError& e) {
    *message = e.what();
    return e.kind();
  }
  ADD_FAILURE() << "open() succeeded";
  return StoreError::Kind::kIo;
}

void sql(const std::string& path, const std::string& statements) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, statements.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

TEST(SqliteStoreFile, ANewFileIsMarkedOursAtTheCurrentSchemaInWalMode) {
  TempDir d;
  auto s = SqliteStore::open(d.str(), SqliteStore::Mode::kReadWrite);
  EXPECT_EQ(s->schema_version(), kSchemaVersion);
  EXPECT_EQ(s->integrity_check(), "ok");
  s.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_in(d).c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT (SELECT application_id FROM pragma_application_id), "
                                   "(SELECT user_version FROM pragma_user_version), "
                                   "(SELECT journal_mode FROM pragma_journal_mode)", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), kApplicationId);
  EXPECT_EQ(sqlite3_column_int(st, 1), kSchemaVersion);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 2)), "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST(SqliteStoreFile, AVersion1FileIsMigratedAndKeepsItsData) {
  TempDir d;
  {
    auto s = SqliteStore::open(d.str(), SqliteStore::Mode::kReadWrite);
    run_session(*s, "r1", kNow, 4.0);
  }
  // Roll the file back to schema 1, as an older kneeload left it.
  sql(path_in(d), "DROP TABLE baselines; PRAGMA user_version = 1;");
  auto s = SqliteStore::open(d.str(), SqliteStore::Mode::kReadWrite);
  EXPECT_EQ(s->schema_version(), kSchemaVersion);
  EXPECT_EQ(s->sessions("r1").size(), 1u);
}

TEST(SqliteStoreFile, ATextFileIsRefusedAsForeignNamingTheFile) {
  TempDir d;
  std::ofstream(path_in(d)) << "this is not a database, it is someone's notes\n" << std::string(5000, 'x');
  std::string msg;
  EXPECT_EQ(open_error(d.str(), &msg), StoreError::Kind::kForeign) << msg;
  EXPECT_NE(msg.find(path_in(d)), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a kneeload history database"), std::string::npos) << msg;
  std::ifstream in(path_in(d));
  std::string first;
  std::getline(in, first);
  EXPECT_EQ(first, "this is not a database, it is someone's notes") << "the file is left untouched";
}

TEST(SqliteStoreFile, AnotherProgramsSqliteFileIsRefusedAndLeftUntouched) {
  TempDir d;
  sql(path_in(d), "CREATE TABLE recipes(name TEXT); INSERT INTO recipes VALUES('bread');");
  std::string msg;
  EXPECT_EQ(open_error(d.str(), &msg), StoreError::Kind::kForeign) << msg;
  EXPECT_NE(msg.find("another program"), std::string::npos) << msg;
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_in(d).c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), 1) << "no kneeload tables were added";
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST(SqliteStoreFile, AFileFromANewerSchemaIsRefused) {
  TempDir d;
  { SqliteStore::open(d.str(), SqliteStore::Mode::kReadWrite); }
  sql(path_in(d), "PRAGMA user_version = 99;");
  std::string msg;
  EXPECT_EQ(open_error(d.str(), &msg), StoreError::Kind::kTooNew) << msg;
  EXPECT_NE(msg.find("schema version 99"), std::string::npos) << msg;
}

TEST(SqliteStoreFile, ADamagedFileIsRefusedNotRepaired) {
  TempDir d;
  {
    auto s = SqliteStore::open(d.str(), SqliteStore::Mode::kReadWrite);
    s->begin();
    SessionStart start;
    start.runner = "r1";
    start.station = "st1";
    start.start_unix_us = kNow;
    const std::int64_t id = s->open_session(start);
    for (std::uint64_t i = 0; i < 3000; ++i) s->add_step(id, step(i, 5.0f));
    s->commit();
  }  // the last connection checkpoints the WAL into the file
  ASSERT_FALSE(fs::exists(path_in(d) + "-wal")) << "the WAL was folded into the file";
  const auto size = fs::file_size(path_in(d));
  ASSERT_GE(size, 32u * 4096u);
  {
    std::fstream f(path_in(d), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size / 2));
    const std::string garbage(3 * 4096, '\x5a');
    f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  std::string msg;
  const StoreError::Kind kind = open_error(d.str(), &msg);
  EXPECT_EQ(kind, StoreError::Kind::kCorrupt) << msg;
  EXPECT_NE(msg.find(path_in(d)), std::string::npos) << msg;
  EXPECT_NE(msg.find("damaged"), std::string::npos) << msg;
}

TEST(SqliteStoreFile, AReaderSeesCommittedDataWhileTheWriterHoldsATransaction) {
  TempDir d;
  auto writer = SqliteStore::open(d.str(), SqliteStore::Mode::kReadWrite);
  run_session(*writer, "r1", kNow, 4.0);
  writer->begin();
  SessionStart start;
  start.runner = "r1";
  start.station = "st1";
  start.start_unix_us = kNow + 1;
  writer->open_session(start);  // uncommitted
  auto reader = SqliteStore::open(d.str(), SqliteStore::Mode::kReadOnly, 200);
  EXPECT_EQ(reader->sessions("r1").size(), 1u) << "WAL: the reader sees the last commit, without waiting";
  writer->commit();
  EXPECT_EQ(reader->sessions("r1").size(), 2u);
  std::string msg;
  TempDir empty;
  EXPECT_EQ(open_error(empty.str(), &msg, SqliteStore::Mode::kReadOnly), StoreError::Kind::kIo) << msg;
  EXPECT_NE(msg.find("no runner history here"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(path_in(empty))) << "a reader never creates the file";
}


TEST(SqliteStoreFile, AReadOnlyStateDirectoryIsAClearError) {
  TempDir d;
  testing::TmpfsMount m(d.path(), "size=1m,ro");
  if (!m.ok()) GTEST_SKIP() << "cannot mount a read-only tmpfs here: " << m.error();
  std::string msg;
  EXPECT_EQ(open_error(d.str(), &msg), StoreError::Kind::kReadOnly) << msg;
  EXPECT_NE(msg.find(d.str()), std::string::npos) << msg;
  EXPECT_NE(msg.find("not writable"), std::string::npos) << msg;
}

// A small tmpfs fills up: the failing transaction is refused with kFull and rolled back, what
// was committed before stays, and the file passes its integrity check afterwards.
TEST(SqliteStoreFile, AFullDiskFailsTheTransactionAndCorruptsNothing) {
  TempDir d;
  testing::TmpfsMount m(d.path(), "size=512k");
  if (!m.ok()) GTEST_SKIP() << "cannot mount a tmpfs here: " << m.error();
  auto s = SqliteStore::open(d.str(), SqliteStore::Mode::kReadWrite);
  run_session(*s, "r1", kNow - kDayUs, 4.0);
  StoreError::Kind kind = StoreError::Kind::kIo;
  std::string msg;
  std::uint64_t written = 0;
  try {
    for (int batch = 0; batch < 1000; ++batch) {
      s->begin();
      SessionStart start;
      start.runner = "r1";
      start.station = "st1";
      start.start_unix_us = kNow + batch;
      const std::int64_t id = s->open_session(start);
      for (std::uint64_t i = 0; i < 200; ++i) s->add_step(id, step(i, 5.0f));
      s->commit();
      written += 200;
    }
    FAIL() << "512 KiB never filled up after " << written << " steps";
  } catch (const StoreError& e) {
    kind = e.kind();
    msg = e.what();
    s->rollback();
  }
  EXPECT_EQ(kind, StoreError::Kind::kFull) << msg;
  EXPECT_NE(msg.find("full"), std::string::npos) << msg;
  EXPECT_EQ(s->integrity_check(), "ok");
  EXPECT_EQ(s->history("r1", kNow).sessions, 1u) << "the session committed before is intact";
  s.reset();
  auto reopened = SqliteStore::open(d.str(), SqliteStore::Mode::kReadOnly);
  EXPECT_EQ(reopened->integrity_check(), "ok");
  std::printf("[ measured ] %llu steps committed before the 512 KiB tmpfs was full: %s\n",
              static_cast<unsigned long long>(written), msg.c_str());
}

}  // namespace
}  // namespace kneeload::store
