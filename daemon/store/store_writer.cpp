#include "daemon/store/store_writer.hpp"

#include <chrono>
#include <cmath>

namespace kneeload::daemon {

namespace {

// A transaction commits after this long or this many records, at every checkpoint and summary,
// and whenever the ring runs empty. With WAL and synchronous = NORMAL a commit is an append to
// the WAL (no fsync), so committing often costs little and bounds what a kill -9 can lose.
constexpr std::int64_t kMaxBatchUs = 250'000;
constexpr std::uint64_t kMaxBatchRecords = 4096;
constexpr auto kIdleWait = std::chrono::milliseconds(100);

std::int64_t unix_now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
std::int64_t steady_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

store::SessionTotals totals_of(const fusion::SessionProgress& p) {
  store::SessionTotals t;
  t.start_t_us = p.start_t_us;
  t.end_t_us = p.last_step_t_us;
  t.steps = p.steps;
  t.distance_m = p.distance_m;
  t.duration_s = static_cast<double>(p.last_step_t_us - p.start_t_us) / 1e6;
  t.stress_time_integral_mpa_s = p.stress_time_integral_mpa_s;
  t.damage_index = p.damage_index;
  t.risk_events = p.risk_events;
  return t;
}

store::SessionTotals totals_of(const fusion::SessionSummary& s) {
  store::SessionTotals t;
  t.start_t_us = s.start_t_us;
  t.end_t_us = s.end_t_us;
  t.steps = s.steps;
  t.distance_m = static_cast<double>(s.distance_m);
  t.duration_s = static_cast<double>(s.duration_s);
  t.stress_time_integral_mpa_s = static_cast<double>(s.stress_time_integral_mpa_s);
  t.damage_index = static_cast<double>(s.damage_index);
  t.risk_events = s.risk_events;
  return t;
}

}  // namespace

static_assert(HistoryUpdate::kBaselineMetrics == store::kBaselineMetricCount);

void apply_history(const store::RunnerHistory& h, fusion::TrainingHistory& out) {
  out.runner_baseline = h.baseline;
  out.runner_baseline_speed_mps = h.baseline_speed_mps;
  out.runner_baseline_sessions = h.baseline_sessions;
  out.max_session_distance_30d_m = h.max_session_distance_30d_m;
  out.max_session_damage_30d = h.max_session_damage_30d;
  out.previous_two_weeks_mean_km = h.previous_two_weeks_mean_km;
  out.week_km_before_session = h.week_km;
  if (std::isfinite(h.shoe_km)) out.shoe_km_before_session = h.shoe_km;
  out.previous_session_pain_score = h.previous_session_pain_score;
  out.acute_load_ewma_km = h.acute_load_ewma_km;
  out.chronic_load_ewma_km = h.chronic_load_ewma_km;
  out.day_km_before_session = h.day_km;
}

HistoryUpdate history_update(std::uint32_t runner, const store::RunnerHistory& h) {
  fusion::TrainingHistory t;
  apply_history(h, t);
  HistoryUpdate u{};
  u.runner = runner;
  u.max_session_distance_30d_m = t.max_session_distance_30d_m;
  u.max_session_damage_30d = t.max_session_damage_30d;
  u.previous_two_weeks_mean_km = t.previous_two_weeks_mean_km;
  u.week_km_before_session = t.week_km_before_session;
  u.shoe_km_before_session = t.shoe_km_before_session;
  u.previous_session_pain_score = t.previous_session_pain_score;
  u.acute_load_ewma_km = t.acute_load_ewma_km;
  u.chronic_load_ewma_km = t.chronic_load_ewma_km;
  u.day_km_before_session = t.day_km_before_session;
  for (std::size_t i = 0; i < 2; ++i) {
    for (std::size_t k = 0; k < store::kBaselineMetricCount; ++k) {
      u.baseline[i][k] = static_cast<float>(h.baseline[i].*store::kBaselineMetrics[k].field);
    }
  }
  u.baseline_speed_mps = static_cast<float>(h.baseline_speed_mps);
  u.baseline_sessions = h.baseline_sessions;
  return u;
}

void apply_history_update(const HistoryUpdate& u, fusion::TrainingHistory& h) {
  h.max_session_distance_30d_m = u.max_session_distance_30d_m;
  h.max_session_damage_30d = u.max_session_damage_30d;
  h.previous_two_weeks_mean_km = u.previous_two_weeks_mean_km;
  h.week_km_before_session = u.week_km_before_session;
  h.shoe_km_before_session = u.shoe_km_before_session;
  h.previous_session_pain_score = u.previous_session_pain_score;
  h.acute_load_ewma_km = u.acute_load_ewma_km;
  h.chronic_load_ewma_km = u.chronic_load_ewma_km;
  h.day_km_before_session = u.day_km_before_session;
  for (std::size_t i = 0; i < 2; ++i) {
    for (std::size_t k = 0; k < store::kBaselineMetricCount; ++k) {
      h.runner_baseline[i].*store::kBaselineMetrics[k].field = static_cast<double>(u.baseline[i][k]);
    }
  }
  h.runner_baseline_speed_mps = static_cast<double>(u.baseline_speed_mps);
  h.runner_baseline_sessions = u.baseline_sessions;
}

StoreWriter::StoreWriter(std::unique_ptr<store::HistoryStore> store, SpscRing<StoreItem>& ring,
                         Doorbell& doorbell, const Names& names, double checkpoint_interval_s,
                         const store::BaselineWindow& baseline)
    : store_(std::move(store)),
      ring_(ring),
      doorbell_(doorbell),
      names_(names),
      checkpoint_interval_s_(checkpoint_interval_s),
      baseline_(baseline),
      open_(names.runners.capacity()),
      ratios_(std::make_unique<std::atomic<double>[]>(names.runners.capacity())) {
  // Sized once: the per-record path below does not allocate.
  closed_.reserve(names.runners.capacity());
  touched_.reserve(names.runners.capacity());
  for (std::size_t r = 0; r < names.runners.capacity(); ++r) {
    ratios_[r].store(store::kUnknown, std::memory_order_relaxed);
  }
}

StoreWriter::~StoreWriter() = default;

double StoreWriter::acute_chronic_ratio(std::uint32_t runner) const {
  if (runner >= names_.runners.capacity()) return store::kUnknown;
  return ratios_[runner].load(std::memory_order_relaxed);
}

std::vector<HistoryUpdate> StoreWriter::take_history() {
  std::lock_guard lock(mutex_);
  std::vector<HistoryUpdate> out;
  out.swap(history_out_);
  return out;
}

std::string StoreWriter::last_error(std::uint64_t* failures) {
  std::lock_guard lock(mutex_);
  if (failures != nullptr) *failures = failures_;
  return last_error_;
}

void StoreWriter::begin_if_needed() {
  if (in_tx_) return;
  store_->begin();
  in_tx_ = true;
  batch_records_ = 0;
  batch_started_us_ = steady_us();
}

std::int64_t StoreWriter::ensure_open(std::uint32_t runner, std::uint32_t station,
                                      std::int64_t start_t_us, const char* model_id) {
  Open& o = open_[runner];
  if (!o.open) {
    o = Open{};
    o.open = true;
    o.start_unix_us = unix_now_us();
    o.start_t_us = start_t_us;
    o.station = station;
  }
  if (model_id != nullptr && o.model_id == nullptr) o.model_id = model_id;
  if (o.db_id == 0) {
    begin_if_needed();
    store::SessionStart start;
    start.runner = names_.runners.name(runner);
    start.station = names_.stations.name(o.station);
    start.model_id = o.model_id != nullptr ? std::string_view(o.model_id) : std::string_view();
    start.start_unix_us = o.start_unix_us;
    start.start_t_us = o.start_t_us;
    o.db_id = store_->open_session(start);
    o.opened_in_batch = true;
    touched_.push_back(runner);
  }
  return o.db_id;
}

void StoreWriter::handle(const StoreItem& item) {
  begin_if_needed();
  if (const auto* cp = std::get_if<SessionCheckpoint>(&item)) {
    Open& o = open_[cp->runner];
    // A checkpoint of a session whose first steps were lost on the way (a full ring): open it.
    if (o.open && o.start_t_us != cp->progress.start_t_us) o.open = false;
    const std::int64_t id = ensure_open(cp->runner, cp->station, cp->progress.start_t_us, cp->model_id);
    store_->checkpoint(id, totals_of(cp->progress), cp->model_id != nullptr ? cp->model_id : "",
                       unix_now_us(), checkpoint_interval_s_);
    ++batch_records_;
    commit_now_ = true;
    return;
  }
  const auto* out = std::get_if<fusion::Output>(&item);
  if (out == nullptr) return;
  if (const auto* step = std::get_if<fusion::StepMetrics>(&out->body)) {
    const std::int64_t id = ensure_open(out->runner, out->station, step->ic_t_us, nullptr);
    store_->add_step(id, *step);
  } else if (const auto* event = std::get_if<fusion::RiskEvent>(&out->body)) {
    const std::int64_t id =
        open_[out->runner].open ? ensure_open(out->runner, out->station, 0, event->model_id) : 0;
    store_->add_event(id, *event);
  } else if (const auto* summary = std::get_if<fusion::SessionSummary>(&out->body)) {
    Open& o = open_[out->runner];
    if (o.open && o.start_t_us != summary->start_t_us) o.open = false;
    const std::int64_t id = ensure_open(out->runner, out->station, summary->start_t_us, nullptr);
    const double ratio = store_->close_session(
        id, totals_of(*summary),
        summary->ended_explicitly ? store::SessionEnd::kConsole : store::SessionEnd::kInactivity,
        unix_now_us());
    ratios_[out->runner].store(ratio, std::memory_order_relaxed);
    store_->update_baseline(id, baseline_, unix_now_us());
    o.open = false;
    closed_.push_back(out->runner);
    commit_now_ = true;
  } else {
    return;
  }
  ++batch_records_;
}

void StoreWriter::failed(const store::StoreError& e) {
  store_->rollback();
  counters_.write_failed.add(batch_records_ + 1);  // the batch and the record that failed
  // Session rows created in the lost batch are gone: the next record of those runners
  // creates them again (their earlier steps are among the lost records).
  for (std::uint32_t r : touched_) {
    if (open_[r].opened_in_batch) open_[r].db_id = 0;
    open_[r].opened_in_batch = false;
  }
  touched_.clear();
  closed_.clear();
  in_tx_ = false;
  batch_records_ = 0;
  commit_now_ = false;
  std::lock_guard lock(mutex_);
  ++failures_;
  last_error_ = e.what();
}

void StoreWriter::after_close(std::uint32_t runner) {
  try {
    const store::RunnerHistory h = store_->history(names_.runners.name(runner), unix_now_us());
    const HistoryUpdate update = history_update(runner, h);
    std::lock_guard lock(mutex_);
    history_out_.push_back(update);
  } catch (const store::StoreError& e) {
    std::lock_guard lock(mutex_);
    ++failures_;
    last_error_ = e.what();
  }
}

void StoreWriter::commit() {
  commit_now_ = false;
  if (!in_tx_) return;
  try {
    store_->commit();
  } catch (const store::StoreError& e) {
    failed(e);
    return;
  }
  in_tx_ = false;
  counters_.records.add(batch_records_);
  counters_.transactions.inc();
  batch_records_ = 0;
  for (std::uint32_t r : touched_) open_[r].opened_in_batch = false;
  touched_.clear();
  for (std::uint32_t r : closed_) after_close(r);
  closed_.clear();
}

void StoreWriter::run() {
  for (;;) {
    counters_.progress.inc();
    StoreItem* item = ring_.front();
    if (item == nullptr) {
      commit();
      doorbell_.wait([this] { return ring_.front() == nullptr; }, kIdleWait);
      continue;
    }
    if (std::holds_alternative<DrainMarker>(*item)) {
      ring_.pop();
      commit();
      return;
    }
    try {
      handle(*item);
    } catch (const store::StoreError& e) {
      failed(e);
    }
    ring_.pop();
    if (commit_now_ || batch_records_ >= kMaxBatchRecords ||
        (in_tx_ && steady_us() - batch_started_us_ >= kMaxBatchUs)) {
      commit();
    }
  }
}

}  // namespace kneeload::daemon
