#include "daemon/worker.hpp"

#include <algorithm>
#include <chrono>
#include <thread>

#include "daemon/ingest.hpp"  // steady_now_us: the clock Ingest compares next_timer_us() with
#include "daemon/registry.hpp"
#include "daemon/store/store_writer.hpp"
#ifdef KNEELOAD_FAULT_POINTS
#include "daemon/fault_points.hpp"
#endif

namespace kneeload::daemon {

namespace {
// The consumer is told of new outputs after each input item that made some, after every
// kRingEvery outputs, and when the input ring is empty. The output count matters where outputs
// come without an input item (an idle-flush sweep) or many from one (a reload that removes
// runners): thousands, more than the output ring holds (16384 by default) if nobody took them
// meanwhile. Telling per item rather than at the end of a batch: at half the sustained rate the
// p50 was 48-53 µs this way and 51-62 µs the other (e2e --quick, bench/RESULTS.md "One hop
// fewer").
constexpr int kRingEvery = 64;
// Input items between reads of the worker clock within a long batch (idle sweeps, checkpoints).
constexpr int kClockEvery = 64;
// The longest an idle worker sleeps: its wake-ups are the watchdog's sign of life (progress).
// It wakes sooner when its next sweep or checkpoint falls due (next_timer_us()).
constexpr auto kIdleTimeout = std::chrono::microseconds(100'000);
// A runner silent for pipeline.idle_flush_ms (500 ms by default) on the worker's clock gets its
// reorder window fused. It must exceed the window (150 ms by default; the config refuses less)
// so that live data is released by arrivals, not by this timer; then the timer only releases
// what the next arrival would have released anyway, in the same order, and replay at any speed
// fuses identically. The sweep looks 4 times per flush interval, and at least this often, since
// it also folds the sessions' counters into the metrics.
constexpr std::int64_t kMaxSweepIntervalUs = 125'000;
}  // namespace

Worker::Worker(int index, int worker_count, SpscRing<WorkItem>& input, Doorbell& input_bell,
               SpscRing<OutItem>& output, OutputConsumer& consumer, const Registry& initial,
               StationGauges* station_gauges, std::int64_t checkpoint_interval_us)
    : index_(index),
      worker_count_(worker_count),
      input_(input),
      input_bell_(input_bell),
      output_(output),
      consumer_(consumer),
      station_gauges_(station_gauges),
      checkpoint_interval_us_(checkpoint_interval_us) {
  apply(initial);
  batch_now_us_ = steady_now_us();
  next_idle_check_us_ = batch_now_us_ + sweep_interval_us();
}

void Worker::apply(const Registry& registry) {
  idle_flush_us_ = registry.idle_flush_us;
  // A reload that shortens the flush takes effect now, not at the sweep the old interval
  // scheduled (up to kMaxSweepIntervalUs away). A longer one waits for that sweep, which is
  // harmless: it releases nothing that is not due. The constructor sets the first sweep itself.
  next_idle_check_us_ = std::min(next_idle_check_us_, batch_now_us_ + sweep_interval_us());
  if (sessions_.size() < registry.sessions.size()) {
    sessions_.resize(registry.sessions.size());
    last_fed_us_.resize(registry.sessions.size(), 0);
    folded_.resize(registry.sessions.size());
    folded_live_.resize(registry.sessions.size());
    checkpointed_steps_.resize(registry.sessions.size(), 0);
  }
  for (std::size_t r = 0; r < sessions_.size(); ++r) {
    if (static_cast<int>(r % static_cast<std::size_t>(worker_count_)) != index_) continue;
    const bool wanted = r < registry.sessions.size() && registry.sessions[r] != nullptr;
    if (wanted && !sessions_[r]) {
      sessions_[r] = std::make_unique<fusion::RunnerSession>(registry.sessions[r]);
    } else if (wanted) {
      sessions_[r]->reconfigure(registry.sessions[r]);
    } else if (sessions_[r]) {
      // A runner removed from the registry: close its session so its totals are not lost.
      sessions_[r]->finish(*this);
      fold_counters(r);
      sessions_[r].reset();
      folded_[r] = fusion::SessionCounters{};
      folded_live_[r] = fusion::SessionLive{};
    }
  }
  generation_seen_.store(registry.generation, std::memory_order_release);
}

void Worker::emit(const fusion::Output& output) {
  if (draining_) {
    push_output_blocking(OutItem{output});
    counters_.outputs.inc();
  } else if (output_.try_push(OutItem{output})) {
    counters_.outputs.inc();
    // A vDSO clock read per output (outputs are about one per 11 samples), as the publisher's.
    if (output.release_arrival_t_us > 0) {
      const std::int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                      std::chrono::steady_clock::now().time_since_epoch())
                                      .count();
      counters_.handoff_latency.observe_ns(now_ns - output.release_arrival_t_us * 1000);
    }
    if (++pushed_unannounced_ >= kRingEvery) announce_outputs();
  } else {
    counters_.dropped_output_ring_full.inc();
  }
}

void Worker::on_sample(const fusion::Sample& sample) {
  counters_.samples.inc();
  fusion::RunnerSession* session =
      sample.runner < sessions_.size() ? sessions_[sample.runner].get() : nullptr;
  if (session == nullptr) {
    counters_.dropped_unknown_runner.inc();
    return;
  }
  last_fed_us_[sample.runner] = batch_now_us_;
  if (--timing_countdown_ != 0) {
    session->on_sample(sample, *this);
  } else {
    timing_countdown_ = kFusionTimingEvery;
    const auto t0 = std::chrono::steady_clock::now();
    session->on_sample(sample, *this);
    counters_.fusion_time.observe_ns(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
  }
}

void Worker::on_stale(const StaleChange& change) {
  fusion::RunnerSession* session =
      change.runner < sessions_.size() ? sessions_[change.runner].get() : nullptr;
  if (session == nullptr) return;
  session->on_device_stale(change.device, change.side, change.kind, change.stale, *this);
}

void Worker::on_history(const HistoryUpdate& u) {
  fusion::RunnerSession* session = u.runner < sessions_.size() ? sessions_[u.runner].get() : nullptr;
  if (session == nullptr) return;
  fusion::TrainingHistory h = session->history();  // keeps the shoe baseline
  apply_history_update(u, h);
  session->set_history(h);
}

// Checkpoints ride the output ring, in order with the session's outputs, so the store never sees
// a checkpoint of a session whose summary it has already written. A full ring drops one (counted
// as worker.output_ring_full); the next interval sends fresher totals anyway.
void Worker::checkpoint_sessions() {
  for (std::size_t r = 0; r < sessions_.size(); ++r) {
    const fusion::RunnerSession* session = sessions_[r].get();
    if (session == nullptr) continue;
    const fusion::SessionProgress p = session->progress();
    if (!p.open || p.steps == checkpointed_steps_[r]) continue;
    const SessionCheckpoint cp{static_cast<std::uint32_t>(r), session->config().station, p,
                               session->model_id()};
    if (output_.try_push(OutItem{cp})) {
      checkpointed_steps_[r] = p.steps;
      ++pushed_unannounced_;
    } else {
      counters_.dropped_output_ring_full.inc();
    }
  }
}

void Worker::fold_counters(std::size_t runner) {
  const fusion::SessionCounters& now = sessions_[runner]->counters();
  fusion::SessionCounters& seen = folded_[runner];
  counters_.dropped_late.add(now.late - seen.late);
  counters_.dropped_resent.add(now.resent - seen.resent);
  counters_.dropped_rule_event_overflow.add(now.event_overflow - seen.event_overflow);
  seen = now;

  const fusion::SessionLive live = sessions_[runner]->live();
  fusion::SessionLive& before = folded_live_[runner];
  // A filter or clock slot restarted by a reload counts from zero again: fold what it has.
  auto delta = [](std::uint64_t n, std::uint64_t b) { return n >= b ? n - b : n; };
  counters_.knee_gated.add(delta(live.knee_gated, before.knee_gated));
  counters_.shank_gated.add(delta(live.shank_gated, before.shank_gated));
  counters_.force_gated.add(delta(live.force_gated, before.force_gated));
  counters_.clock_jumps.add(delta(live.clock_jumps, before.clock_jumps));
  counters_.reorder_early.add(delta(live.reorder_early, before.reorder_early));
  counters_.loading_rate_withheld.add(delta(live.loading_rate_withheld, before.loading_rate_withheld));
  counters_.ml_excursion_withheld.add(delta(live.ml_excursion_withheld, before.ml_excursion_withheld));
  before = live;

  StationGauges& g = station_gauges_[sessions_[runner]->config().station];
  constexpr auto relaxed = std::memory_order_relaxed;
  g.session_open.store(live.open, relaxed);
  g.session_distance_m.store(live.distance_m, relaxed);
  g.stress_time_integral_pa_s.store(live.stress_time_integral_mpa_s * 1e6, relaxed);
  g.damage_index.store(live.damage_index, relaxed);
}

std::int64_t Worker::sweep_interval_us() const {
  return std::min(idle_flush_us_ / 4, kMaxSweepIntervalUs);
}

void Worker::flush_idle_sessions(std::int64_t now_us) {
  for (std::size_t r = 0; r < sessions_.size(); ++r) {
    fusion::RunnerSession* session = sessions_[r].get();
    if (session == nullptr) continue;
    if (session->buffered() > 0 && now_us - last_fed_us_[r] >= idle_flush_us_) session->on_idle(*this);
    fold_counters(r);
  }
}

void Worker::push_output_blocking(const OutItem& item) {
  while (!output_.try_push(item)) {
    consumer_.outputs_ready();
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  ++pushed_unannounced_;
  announce_outputs();
}

void Worker::announce_outputs() {
  if (pushed_unannounced_ == 0) return;
  pushed_unannounced_ = 0;
  consumer_.outputs_ready();
}

Worker::PollResult Worker::poll(int max_items) {
#ifdef KNEELOAD_FAULT_POINTS
  fault::slow_poll();
#endif
  counters_.progress.inc();  // idle wake-ups count too: only a wedged worker stands still
  batch_now_us_ = steady_now_us();
  if (batch_now_us_ >= next_idle_check_us_) {
    flush_idle_sessions(batch_now_us_);
    next_idle_check_us_ = batch_now_us_ + sweep_interval_us();
  }
  if (checkpoint_interval_us_ > 0 && batch_now_us_ >= next_checkpoint_us_) {
    checkpoint_sessions();
    next_checkpoint_us_ = batch_now_us_ + checkpoint_interval_us_;
  }
  for (int n = 0; n < max_items; ++n) {
    WorkItem* item = input_.front();
    if (item == nullptr) {
      announce_outputs();
      return PollResult::kIdle;
    }
    if (const auto* sample = std::get_if<fusion::Sample>(item)) {
      on_sample(*sample);
    } else if (const auto* change = std::get_if<ConfigChange>(item)) {
      apply(*change->registry);
    } else if (const auto* stale = std::get_if<StaleChange>(item)) {
      on_stale(*stale);
    } else if (const auto* history = std::get_if<HistoryUpdate>(item)) {
      on_history(*history);
    } else {
      input_.pop();
      draining_ = true;
      for (std::size_t r = 0; r < sessions_.size(); ++r) {
        if (!sessions_[r]) continue;
        sessions_[r]->finish(*this);
        fold_counters(r);
      }
      push_output_blocking(OutItem{DrainMarker{}});
      return PollResult::kDrained;
    }
    input_.pop();
    announce_outputs();
  }
  return PollResult::kMore;
}

std::int64_t Worker::next_timer_us() const {
  return checkpoint_interval_us_ > 0 ? std::min(next_idle_check_us_, next_checkpoint_us_) : next_idle_check_us_;
}

std::int64_t Worker::us_until_next_timer() const {
  return std::max<std::int64_t>(next_timer_us() - steady_now_us(), 0);
}

void Worker::run() {
#ifdef KNEELOAD_FAULT_POINTS
  const fault::WorkerWedge wedge(index_);
#endif
  for (;;) {
#ifdef KNEELOAD_FAULT_POINTS
    wedge.check();
#endif
    switch (poll(kClockEvery)) {
      case PollResult::kDrained:
        return;
      case PollResult::kIdle: {
        // Until the next sweep at most: with a short pipeline.idle_flush_ms a quiet runner's
        // tail falls due well before kIdleTimeout (a flush of 10 ms sweeps every 2.5 ms).
        const std::chrono::microseconds due(us_until_next_timer());
        input_bell_.wait([this] { return input_.front() == nullptr; }, std::min(due, kIdleTimeout));
        break;
      }
      case PollResult::kMore:
        break;
    }
  }
}

}  // namespace kneeload::daemon
