#include "daemon/pipeline.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "daemon/log.hpp"
#include "daemon/thread_name.hpp"

namespace kneeload::daemon {

namespace {

zmq::socket_t make_socket(zmq::context_t& context, zmq::socket_type type) {
  zmq::socket_t s(context, type);
  // Bounded close: at shutdown the PUB gets this long to flush, then pending data is dropped.
  s.set(zmq::sockopt::linger, 2000);
  return s;
}

std::string bind_or_throw(zmq::socket_t& socket, const std::string& endpoint, const char* what) {
  try {
    socket.bind(endpoint);
  } catch (const zmq::error_t& e) {
    throw StartError(std::string("cannot bind ") + what + " endpoint \"" + endpoint + "\": " + e.what());
  }
  return socket.get(zmq::sockopt::last_endpoint);
}

constexpr const char* kDropNames[kDropReasonCount] = {
    "ingest.worker_ring_full", "worker.output_ring_full", "worker.rule_event_overflow",
    "worker.unknown_runner",   "publish.hwm",             "publish.encode_failed",
    "worker.late_sample",      "worker.resent_sample",    "store.ring_full",
    "store.write_failed",      "ingest.draining",
};

std::int64_t unix_now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A store error is logged at most this often; the counts (store.write_failed) are exact.
constexpr auto kStoreErrorLogInterval = std::chrono::seconds(10);

}  // namespace

Pipeline::Pipeline(const Config& config)
    : config_(config),
      names_(config.pipeline.max_devices, config.pipeline.max_runners, config.pipeline.max_stations),
      stale_(config.pipeline.max_devices, false),
      station_gauges_(std::make_unique<StationGauges[]>(config.pipeline.max_stations)) {
  if (config_.store_active()) open_store();
  generations_.push_back(build_registry(config_, names_, generation_, history_lookup()));
  release_inventory(config_);  // the registry has them; a reload brings its own
  const Registry& registry = *generations_.back();

  if (config.security.curve) zap_ = std::make_unique<ZapHandler>(context_, generations_.back());
  // CURVE server: the daemon's secret key, and a ZAP domain so the handler knows which
  // socket asks (ingest admits device and gateway keys, publish the subscriber keys).
  const auto secure = [&](zmq::socket_t& s, ZapSocket which) {
    if (!config.security.curve) return;
    s.set(zmq::sockopt::curve_server, true);
    s.set(zmq::sockopt::curve_secretkey, config.security.secret_key);
    s.set(zmq::sockopt::zap_domain, kZapDomains[static_cast<std::size_t>(which)]);
  };
  zmq::socket_t pull = make_socket(context_, zmq::socket_type::pull);
  secure(pull, ZapSocket::kIngest);
  pull.set(zmq::sockopt::rcvhwm, config.ingest.rcvhwm);
  // Frames above the limit are cut by libzmq before they reach our buffer, so a hostile peer
  // cannot make us allocate big messages; the decoder still counts them as oversize.
  pull.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(config.ingest.max_frame_bytes) * 4);
  for (const std::string& ep : config.ingest.endpoints) {
    ingest_endpoints_.push_back(bind_or_throw(pull, ep, "ingest"));
  }
  zmq::socket_t pub = make_socket(context_, zmq::socket_type::pub);
  secure(pub, ZapSocket::kPublish);
  pub.set(zmq::sockopt::sndhwm, config.publish.sndhwm);
  if (config.publish.nodrop) pub.set(zmq::sockopt::xpub_nodrop, true);
  publish_endpoint_ = bind_or_throw(pub, config.publish.endpoint, "publish");

  // workers = 0: one Worker without a thread of its own; the ingest thread polls it after
  // each frame, so its ring never holds more than one frame's samples and a control item.
  const bool inline_fusion = config.pipeline.workers == 0;
  const int n = inline_fusion ? 1 : config.pipeline.workers;
  const std::size_t input_capacity =
      inline_fusion ? static_cast<std::size_t>(config.ingest.max_samples_per_frame) + 1
                    : config.pipeline.ingest_ring_capacity;
  std::vector<SpscRing<OutItem>*> outs;
  for (int i = 0; i < n; ++i) {
    worker_rings_.push_back(std::make_unique<SpscRing<WorkItem>>(input_capacity));
    worker_bells_.push_back(std::make_unique<Doorbell>());
    output_rings_.push_back(std::make_unique<SpscRing<OutItem>>(config.pipeline.output_ring_capacity));
    outs.push_back(output_rings_.back().get());
  }
  StorePort store_port;
  if (history_) {
    store_ring_ = std::make_unique<SpscRing<StoreItem>>(config.store.ring_capacity);
    std::unique_ptr<store::SqliteStore> writer_store;
    try {
      writer_store = store::SqliteStore::open(config_.state_dir, store::SqliteStore::Mode::kReadWrite);
    } catch (const store::StoreError& e) {
      throw StartError(e.what());
    }
    store::BaselineWindow baseline;
    baseline.start_s = config.model.trends.baseline_start_s;
    baseline.end_s = config.model.trends.baseline_end_s;
    baseline.min_steps = config.model.trends.baseline_min_steps;
    store_writer_ = std::make_unique<StoreWriter>(std::move(writer_store), *store_ring_, store_bell_,
                                                  names_, config.store.checkpoint_interval_s, baseline);
    store_port = StorePort{store_ring_.get(), &store_bell_};
  }
  status_rejected_.reserve(proto::kRejectCount);
  status_dropped_.reserve(kDropReasonCount);
  update_snapshots();
  const auto heartbeat = std::chrono::microseconds(
      static_cast<std::int64_t>(config.publish.heartbeat_s * 1e6));
  publisher_ = std::make_unique<Publisher>(std::move(pub), std::move(outs), publisher_bell_,
                                           names_, *this, heartbeat, station_gauges_.get(), store_port);
  // Workers hand their outputs to the publisher, which publishes most of them on their threads.
  for (int i = 0; i < n; ++i) {
    const auto idx = static_cast<std::size_t>(i);
    const auto checkpoint_us =
        history_ ? static_cast<std::int64_t>(config.store.checkpoint_interval_s * 1e6) : 0;
    workers_.push_back(std::make_unique<Worker>(i, n, *worker_rings_[idx], *worker_bells_[idx],
                                                *output_rings_[idx], *publisher_, registry,
                                                station_gauges_.get(), checkpoint_us));
  }
  std::vector<WorkerPort> ports;
  for (int i = 0; i < n; ++i) {
    const auto idx = static_cast<std::size_t>(i);
    ports.push_back({worker_rings_[idx].get(), worker_bells_[idx].get(),
                     inline_fusion ? workers_[idx].get() : nullptr});
  }
  proto::ValidationLimits limits;
  limits.max_frame_bytes = config.ingest.max_frame_bytes;
  limits.max_samples_per_frame = config.ingest.max_samples_per_frame;
  ingest_ = std::make_unique<Ingest>(std::move(pull), limits, config.pipeline.max_devices,
                                     std::move(ports), commands_, &registry, config.security.curve);

  // The publisher's end means every output reached the store ring; finished() waits for the
  // store thread too, so a drain leaves everything accepted committed.
  if (store_writer_) {
    threads_.emplace_back([this] {
      name_this_thread("kl-store");
      store_writer_->run();
      store_finished_.store(true, std::memory_order_release);
    });
  } else {
    store_finished_.store(true, std::memory_order_release);
  }
  threads_.emplace_back([this] {
    name_this_thread("kl-publish");
    publisher_->run();
    finished_.store(true, std::memory_order_release);
  });
  for (std::size_t i = 0; i < workers_.size() && !inline_fusion; ++i) {
    threads_.emplace_back([w = workers_[i].get(), i] {
      char name[16];
      std::snprintf(name, sizeof name, "kl-worker-%zu", i);
      name_this_thread(name);
      w->run();
    });
  }
  threads_.emplace_back([this] {
    name_this_thread("kl-ingest");
    ingest_->run();
  });
}

// Start-up, main thread: open (create, migrate) the history, end the sessions a crash left
// open, record the configured runners and shoes. A file that cannot be used stops the start
// (StartError, exit 2) unless store.required is false, in which case the daemon runs without
// history and says so.
void Pipeline::open_store() {
  try {
    history_ = store::SqliteStore::open(config_.state_dir, store::SqliteStore::Mode::kReadWrite);
    history_->begin();
    try {
      for (const store::SessionRow& r : history_->recover_open_sessions(unix_now_us())) {
        log(LogLevel::kWarn, "store",
            "recovered session %lld of runner %s on %s after an unclean stop: %llu steps, %.3f km, %.0f s as of "
            "its last checkpoint; up to %.1f s after it were lost",
            static_cast<long long>(r.id), r.runner.c_str(), r.station.c_str(),
            static_cast<unsigned long long>(r.totals.steps), r.totals.distance_m / 1000.0, r.totals.duration_s,
            std::isfinite(r.lost_at_most_s) ? r.lost_at_most_s : config_.store.checkpoint_interval_s);
      }
      store_runners(config_);
      history_->commit();
    } catch (...) {
      history_->rollback();
      throw;
    }
    log(LogLevel::kInfo, "store", "runner history in %s (schema %d, WAL), checkpoints every %.1f s",
        history_->path().c_str(), history_->schema_version(), config_.store.checkpoint_interval_s);
  } catch (const store::StoreError& e) {
    history_.reset();
    if (config_.store.required) throw StartError(e.what());
    log(LogLevel::kError, "store", "%s; running WITHOUT runner history (store.required = false)", e.what());
  }
}

void Pipeline::store_runners(const Config& config) {
  const std::int64_t now = unix_now_us();
  for (const RunnerConfig& r : config.runners) {
    store::RunnerInfo info;
    info.id = r.id;
    info.body_mass_kg = r.params.body_mass_kg;
    info.height_m = r.params.height_m;
    info.shoe_id = r.shoe_id;
    info.shoe_km = r.shoe_km;
    history_->upsert_runner(info, now);
  }
}

HistoryLookup Pipeline::history_lookup() {
  if (!history_) return {};
  return [this](std::string_view runner, fusion::TrainingHistory& h) {
    try {
      apply_history(history_->history(runner, unix_now_us()), h);
    } catch (const store::StoreError& e) {
      log(LogLevel::kError, "store", "runner %.*s: history unavailable, rules R4/R5 stay silent: %s",
          static_cast<int>(runner.size()), runner.data(), e.what());
    }
  };
}

// Histories the store computed after sessions closed go to the runners' workers in-band.
void Pipeline::forward_history() {
  if (!store_writer_) return;
  std::vector<HistoryUpdate> fresh = store_writer_->take_history();
  history_pending_.insert(history_pending_.end(), fresh.begin(), fresh.end());
  std::size_t sent = 0;
  while (sent < history_pending_.size() && !drain_requested_ && push_command(history_pending_[sent])) ++sent;
  history_pending_.erase(history_pending_.begin(), history_pending_.begin() + static_cast<std::ptrdiff_t>(sent));
  std::uint64_t failures = 0;
  const std::string error = store_writer_->last_error(&failures);
  const auto now = std::chrono::steady_clock::now();
  if (failures != store_failures_logged_ && now - store_error_logged_ >= kStoreErrorLogInterval) {
    log(LogLevel::kError, "store", "%s (%llu failed transaction(s) so far; fusion and publishing go on)",
        error.c_str(), static_cast<unsigned long long>(failures));
    store_failures_logged_ = failures;
    store_error_logged_ = now;
  }
}

Pipeline::~Pipeline() {
  if (!drain_requested_) request_drain();
  join();
}

bool Pipeline::push_command(const ControlCommand& command) {
  return commands_.try_push(command);
}

void Pipeline::reload(const Config& next) {
  if (history_) {
    try {
      history_->begin();
      store_runners(next);
      history_->commit();
    } catch (const store::StoreError& e) {
      history_->rollback();
      log(LogLevel::kError, "store", "reload: runners not recorded: %s", e.what());
    }
  }
  auto registry = build_registry(next, names_, generation_ + 1, history_lookup());
  if (!push_command(ConfigChange{registry.get()})) {
    throw ConfigError(next.source, "(reload)", "the ingest thread is not taking commands; try again");
  }
  ++generation_;
  generations_.push_back(std::move(registry));
  if (zap_) zap_->set_registry(generations_.back());
  take_reloadable(config_, next);
  update_snapshots();
}

void Pipeline::tick(std::int64_t now_steady_us) {
  const Registry& registry = *generations_.back();
  streaming_count_ = 0;
  const auto stale_after_us = static_cast<std::int64_t>(registry.stale_after_s * 1e6);
  for (std::size_t d = 0; d < registry.device_active.size(); ++d) {
    if (!registry.device_active[d]) {
      if (stale_[d]) {  // removed while stale: forget it quietly
        stale_[d] = false;
        --stale_count_;
      }
      continue;
    }
    const auto index = static_cast<std::uint32_t>(d);
    // A treadmill console sends events (pain reports, stop), not a stream: silence is normal.
    if (registry.device_info[d].kind == fusion::SensorKind::kConsole) continue;
    const std::int64_t last = ingest_->last_arrival_us(index);
    if (last == 0) continue;  // never heard from: not a dropout, just not started
    const bool stale = now_steady_us - last > stale_after_us;
    if (!stale) ++streaming_count_;
    if (stale == stale_[d]) continue;
    const proto::DeviceInfo& info = registry.device_info[d];
    if (!push_command(StaleChange{index, info.runner, info.side, info.kind, stale})) continue;
    stale_[d] = stale;
    if (stale) {
      ++stale_count_;
      log(LogLevel::kWarn, "control", "device %.*s silent for more than %.1f s",
          static_cast<int>(names_.devices.name(index).size()), names_.devices.name(index).data(),
          registry.stale_after_s);
    } else {
      --stale_count_;
      log(LogLevel::kInfo, "control", "device %.*s is sending again",
          static_cast<int>(names_.devices.name(index).size()), names_.devices.name(index).data());
    }
  }
  // Retire generations no thread can still reach: every thread has seen a newer one.
  std::uint64_t oldest_in_use = ingest_->generation_seen();
  for (const auto& w : workers_) oldest_in_use = std::min(oldest_in_use, w->generation_seen());
  while (generations_.size() > 1 && generations_.front()->generation < oldest_in_use) {
    generations_.erase(generations_.begin());
  }
  forward_history();
  update_snapshots();
}

void Pipeline::request_drain() {
  if (drain_requested_) return;
  drain_requested_ = true;
  while (!push_command(DrainMarker{})) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void Pipeline::join() {
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

std::vector<std::uint64_t> Pipeline::thread_progress() const {
  std::vector<std::uint64_t> p{ingest_->counters().loop_iterations.get(),
                               publisher_->counters().progress.get()};
  for (const auto& w : workers_) p.push_back(w->counters().progress.get());
  if (store_writer_) p.push_back(store_writer_->counters().progress.get());
  return p;
}

std::size_t Pipeline::active_devices() const { return generations_.back()->active_devices; }

std::array<DropCount, kDropReasonCount> Pipeline::drops() const {
  std::uint64_t out_full = 0, overflow = 0, unknown = 0, late = 0, resent = 0;
  for (const auto& w : workers_) {
    out_full += w->counters().dropped_output_ring_full.get();
    overflow += w->counters().dropped_rule_event_overflow.get();
    unknown += w->counters().dropped_unknown_runner.get();
    late += w->counters().dropped_late.get();
    resent += w->counters().dropped_resent.get();
  }
  return {{{kDropNames[0], ingest_->counters().dropped_ring_full.get()},
           {kDropNames[1], out_full},
           {kDropNames[2], overflow},
           {kDropNames[3], unknown},
           {kDropNames[4], publisher_->counters().dropped_hwm.get()},
           {kDropNames[5], publisher_->counters().dropped_encode.get()},
           {kDropNames[6], late},
           {kDropNames[7], resent},
           {kDropNames[8], publisher_->counters().dropped_store.get()},
           {kDropNames[9], store_writer_ ? store_writer_->counters().write_failed.get() : 0},
           {kDropNames[10], ingest_->counters().dropped_draining.get()}}};
}

PipelineTotals Pipeline::totals() const {
  PipelineTotals t;
  const proto::DecoderCounters& d = ingest_->decoder_counters();
  t.frames_received = d.frames_received.get();
  t.frames_accepted = d.frames_accepted.get();
  t.samples_accepted = d.samples_accepted.get();
  for (int r = 0; r < proto::kRejectCount; ++r) {
    const std::uint64_t v = d.rejected[static_cast<std::size_t>(r)].get();
    if (r < proto::kFirstSampleReject) {
      t.frames_rejected += v;
    } else {
      t.samples_rejected += v;
    }
  }
  for (const std::unique_ptr<Worker>& w : workers_) t.samples_fused += w->counters().samples.get();
  for (const DropCount& c : drops()) t.dropped += c.value;
  t.published = publisher_->counters().published.get();
  return t;
}

std::vector<Pipeline::RingView> Pipeline::rings() const {
  std::vector<RingView> v;
  for (std::size_t i = 0; i < worker_rings_.size(); ++i) {
    v.push_back({"worker_input", i, worker_rings_[i]->size_approx(), worker_rings_[i]->capacity()});
    v.push_back({"worker_output", i, output_rings_[i]->size_approx(), output_rings_[i]->capacity()});
  }
  if (store_ring_) v.push_back({"store", 0, store_ring_->size_approx(), store_ring_->capacity()});
  return v;
}

std::vector<Pipeline::StationView> Pipeline::stations() const {
  const std::lock_guard<std::mutex> lock(stations_mu_);
  return stations_;
}

void Pipeline::update_snapshots() {
  const Registry& registry = *generations_.back();
  if (registry.generation != generation_snapshot_.load(std::memory_order_relaxed) || stations_.empty()) {
    std::vector<StationView> stations;
    for (const auto& session : registry.sessions) {
      if (!session) continue;
      const bool known = std::any_of(stations.begin(), stations.end(),
                                     [&](const StationView& v) { return v.index == session->station; });
      if (!known) {
        stations.push_back({session->station, std::string(names_.stations.name(session->station)), session->runner});
      }
    }
    const std::lock_guard<std::mutex> lock(stations_mu_);
    stations_ = std::move(stations);
  }
  streaming_snapshot_.store(streaming_count_, std::memory_order_relaxed);
  active_devices_snapshot_.store(generations_.back()->active_devices, std::memory_order_relaxed);
  stale_snapshot_.store(stale_count_, std::memory_order_relaxed);
  generation_snapshot_.store(generation_, std::memory_order_relaxed);
}

proto::StatusReport Pipeline::status(bool draining) {
  proto::StatusReport s;
  s.version = KNEELOAD_VERSION;
  s.uptime_s = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_).count();
  const proto::DecoderCounters& d = ingest_->decoder_counters();
  s.frames_received = d.frames_received.get();
  s.frames_accepted = d.frames_accepted.get();
  s.samples_accepted = d.samples_accepted.get();
  s.outputs_published = publisher_->counters().published.get();
  status_rejected_.clear();
  for (int r = 0; r < proto::kRejectCount; ++r) {
    status_rejected_.push_back({proto::reject_name(static_cast<proto::Reject>(r)),
                                d.rejected[static_cast<std::size_t>(r)].get()});
  }
  status_dropped_.clear();
  for (const DropCount& c : drops()) status_dropped_.push_back({c.name, c.value});
  s.rejected = status_rejected_;
  s.dropped = status_dropped_;
  // Main-thread state reaches the publisher thread only through these snapshots.
  s.active_devices = static_cast<std::uint32_t>(active_devices_snapshot_.load(std::memory_order_relaxed));
  s.stale_devices = static_cast<std::uint32_t>(stale_snapshot_.load(std::memory_order_relaxed));
  s.config_generation = generation_snapshot_.load(std::memory_order_relaxed);
  s.draining = draining;
  return s;
}

}  // namespace kneeload::daemon
