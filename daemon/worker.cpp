#include "daemon/worker.hpp"

#include <chrono>
#include <thread>

#include "daemon/registry.hpp"

namespace kneeload::daemon {

namespace {
// Outputs pushed between doorbell rings: the publisher wakes at most once per batch.
constexpr int kRingEvery = 64;
constexpr auto kIdleTimeout = std::chrono::milliseconds(100);
}  // namespace

Worker::Worker(int index, int worker_count, SpscRing<WorkItem>& input, Doorbell& input_bell,
               SpscRing<OutItem>& output, Doorbell& output_bell, const Registry& initial)
    : index_(index),
      worker_count_(worker_count),
      input_(input),
      input_bell_(input_bell),
      output_(output),
      output_bell_(output_bell) {
  apply(initial);
}

void Worker::apply(const Registry& registry) {
  if (sessions_.size() < registry.sessions.size()) sessions_.resize(registry.sessions.size());
  for (std::size_t r = 0; r < sessions_.size(); ++r) {
    if (static_cast<int>(r % static_cast<std::size_t>(worker_count_)) != index_) continue;
    const bool wanted = r < registry.sessions.size() && registry.sessions[r].has_value();
    if (wanted && !sessions_[r]) {
      sessions_[r] = std::make_unique<fusion::RunnerSession>(*registry.sessions[r]);
    } else if (wanted) {
      sessions_[r]->reconfigure(*registry.sessions[r]);
    } else if (sessions_[r]) {
      // A runner removed from the registry: close its session so its totals are not lost.
      outputs_.clear();
      sessions_[r]->finish(outputs_);
      flush(outputs_);
      sessions_[r].reset();
    }
  }
  generation_seen_.store(registry.generation, std::memory_order_release);
}

void Worker::flush(fusion::SessionOutputs& outputs) {
  for (int i = 0; i < outputs.size(); ++i) {
    if (output_.try_push(OutItem{outputs[i]})) {
      counters_.outputs.inc();
    } else {
      counters_.dropped_output_ring_full.inc();
    }
  }
  if (outputs.overflow() != overflow_seen_) {
    counters_.dropped_session_overflow.add(outputs.overflow() - overflow_seen_);
    overflow_seen_ = outputs.overflow();
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
  outputs_.clear();
  session->on_sample(sample, outputs_);
  flush(outputs_);
}

void Worker::on_stale(const StaleChange& change) {
  fusion::RunnerSession* session =
      change.runner < sessions_.size() ? sessions_[change.runner].get() : nullptr;
  if (session == nullptr) return;
  outputs_.clear();
  session->on_device_stale(change.device, change.side, change.kind, change.stale, outputs_);
  flush(outputs_);
}

void Worker::push_output_blocking(const OutItem& item) {
  while (!output_.try_push(item)) {
    output_bell_.ring();
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  output_bell_.ring();
}

void Worker::run() {
  int since_ring = 0;
  for (;;) {
    counters_.progress.inc();  // idle wake-ups count too: only a wedged worker stands still
    WorkItem* item = input_.front();
    if (item == nullptr) {
      if (since_ring > 0) {
        output_bell_.ring();
        since_ring = 0;
      }
      input_bell_.wait([this] { return input_.front() == nullptr; }, kIdleTimeout);
      continue;
    }
    if (const auto* sample = std::get_if<fusion::Sample>(item)) {
      on_sample(*sample);
    } else if (const auto* change = std::get_if<ConfigChange>(item)) {
      apply(*change->registry);
    } else if (const auto* stale = std::get_if<StaleChange>(item)) {
      on_stale(*stale);
    } else {
      input_.pop();
      for (auto& session : sessions_) {
        if (!session) continue;
        outputs_.clear();
        session->finish(outputs_);
        for (int i = 0; i < outputs_.size(); ++i) {
          push_output_blocking(OutItem{outputs_[i]});
          counters_.outputs.inc();
        }
      }
      push_output_blocking(OutItem{DrainMarker{}});
      return;
    }
    input_.pop();
    if (++since_ring >= kRingEvery) {
      output_bell_.ring();
      since_ring = 0;
    }
  }
}

}  // namespace kneeload::daemon
