// SqliteStore: HistoryStore on one SQLite file, `<state_dir>/history.sqlite3`.
//
// Why these settings (see open() in sqlite_store.cpp for the details):
// - WAL journal: readers (kneeloadctl, the main thread) never block the writer thread, and a
//   reader sees the last committed transaction while the daemon writes.
// - synchronous = NORMAL: in WAL mode a commit is an append to the WAL without an fsync; the
//   fsync happens at WAL checkpoints. A killed process (kill -9, a crash) loses nothing that was
//   committed, because the data is in the OS page cache; only a power loss or kernel crash can
//   lose the last commits, never corrupt the file. FULL would fsync on every commit (a few per
//   second here), which buys nothing against the failure we design for (the daemon dying) and
//   costs disk latency on the writer.
// - PRAGMA application_id marks the file as ours; PRAGMA user_version is the schema version,
//   advanced by ordered migrations in one transaction. A file that is not ours, is newer than
//   this build, or fails PRAGMA quick_check is refused with an error naming it: never "repaired".
// - Read-only mode (kneeloadctl) opens with SQLITE_OPEN_READONLY and a busy timeout, so it is
//   safe while the daemon writes.
//
// Thread ownership: one SqliteStore per thread (the connection is opened SQLITE_OPEN_NOMUTEX).
#pragma once

#include <memory>
#include <string>

#include "daemon/store/history_store.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace kneeload::store {

// Highest schema version this build writes and reads.
inline constexpr int kSchemaVersion = 2;
// PRAGMA application_id of a kneeload history: "KNLH".
inline constexpr int kApplicationId = 0x4B4E4C48;
inline constexpr const char* kHistoryFileName = "history.sqlite3";

class SqliteStore final : public HistoryStore {
 public:
  enum class Mode { kReadWrite, kReadOnly };

  // Opens (read-write: creates, migrates) `<state_dir>/history.sqlite3`. Throws StoreError with
  // a message naming the file or the directory.
  static std::unique_ptr<SqliteStore> open(const std::string& state_dir, Mode mode,
                                           int busy_timeout_ms = 5000);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  const std::string& path() const { return path_; }
  int schema_version() const { return schema_version_; }
  // "ok", or SQLite's list of problems.
  std::string integrity_check();

  void begin() override;
  void commit() override;
  void rollback() override;
  void upsert_runner(const RunnerInfo& info, std::int64_t now_unix_us) override;
  std::int64_t open_session(const SessionStart& start) override;
  void add_step(std::int64_t session, const fusion::StepMetrics& step) override;
  void add_event(std::int64_t session, const fusion::RiskEvent& event) override;
  void checkpoint(std::int64_t session, const SessionTotals& totals, std::string_view model_id,
                  std::int64_t now_unix_us, double checkpoint_interval_s) override;
  double close_session(std::int64_t session, const SessionTotals& totals, SessionEnd end,
                       std::int64_t now_unix_us) override;
  bool update_baseline(std::int64_t session, const BaselineWindow& window, std::int64_t now_unix_us) override;
  std::vector<SessionRow> recover_open_sessions(std::int64_t now_unix_us) override;
  RunnerHistory history(std::string_view runner, std::int64_t now_unix_us) override;
  std::vector<RunnerRow> runners() override;
  std::vector<SessionRow> sessions(std::string_view runner) override;
  std::optional<SessionRow> session(std::int64_t id) override;
  std::vector<StepRow> steps(std::int64_t session) override;

  class Stmt;  // a prepared statement (sqlite_store.cpp)

 private:
  SqliteStore(std::string path, sqlite3* db);
  [[noreturn]] void fail(int rc, const char* what) const;
  void exec(const char* sql, const char* what);
  Stmt& cached(int slot, const char* sql);
  void migrate();
  void add_day(std::string_view runner, std::int64_t unix_us, const SessionTotals& t);
  double ratio_for(std::string_view runner, std::int64_t start_unix_us, double distance_m);
  std::vector<SessionRow> select_sessions(const char* where, std::string_view text, std::int64_t number);

  std::string path_;
  sqlite3* db_;
  int schema_version_ = 0;
  static constexpr int kCachedStatements = 8;
  std::unique_ptr<Stmt> statements_[kCachedStatements];
};

}  // namespace kneeload::store
