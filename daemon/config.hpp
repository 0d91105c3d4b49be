// Daemon configuration: the TOML file (deploy/config/kneeloadd.example.toml documents every key),
// command-line overrides, and validation. Loaded on the main thread at start-up and on SIGHUP;
// never touched by pipeline threads (they get an immutable Registry built from it).
#pragma once

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "kneeload/fusion/session.hpp"

namespace kneeload::daemon {

struct DeviceConfig {
  std::string id;
  std::string station;
  std::string runner;
  fusion::SensorKind kind = fusion::SensorKind::kInsole;
  fusion::Side side = fusion::Side::kNone;
  fusion::InsoleGeometry insole;  // kind == insole
  fusion::KneeImuAxes knee;       // kind == knee
  std::string public_key;         // Z85 CURVE key pinned to this device; "" when not pinned
};

struct RunnerConfig {
  std::string id;
  fusion::RunnerParams params;
  std::string shoe_id;  // may be empty
  double shoe_km = 0.0;
};

struct IngestConfig {
  std::vector<std::string> endpoints{"tcp://127.0.0.1:5600"};
  std::size_t max_frame_bytes = 65536;
  int max_samples_per_frame = 256;
  int rcvhwm = 10000;
};

struct PublishConfig {
  std::string endpoint = "tcp://127.0.0.1:5601";
  int sndhwm = 10000;
  bool nodrop = false;
  double heartbeat_s = 1.0;
};

// ZeroMQ CURVE on the ingest and publish sockets (README: Security).
struct SecurityConfig {
  bool curve = false;
  std::string secret_key_file;   // the daemon's key pair, written by `kneeloadctl keygen`
  std::string public_key;        // Z85, read from secret_key_file
  std::string secret_key;        // Z85, read from secret_key_file
  std::vector<std::string> gateway_keys;     // may send for any device without a key of its own
  std::vector<std::string> subscriber_keys;  // empty: any subscriber holding the daemon's key
  bool allow_plaintext = false;  // bind tcp on non-loopback addresses without CURVE
};

struct PipelineConfig {
  // Fusion worker threads; 0: the ingest thread fuses and publishes itself (no worker thread,
  // no hand-off between threads, and ingest_ring_capacity unused). 0 by default: on 2 cores it
  // held as many samples/s as 1 worker at a fifth of the p50 latency (bench/RESULTS.md).
  int workers = 0;
  std::size_t ingest_ring_capacity = 65536;   // samples per worker ring
  // Outputs per worker → publisher ring. A worker emits about one output per 11 samples at
  // the default state_rate_hz (50 Hz of fused state, steps, events), so this buffers about 3x
  // as long as the input ring does, in a quarter of the memory it took at 65536 (2.5 MB per
  // worker, not 10).
  std::size_t output_ring_capacity = 16384;
  std::size_t max_devices = 4096;
  std::size_t max_runners = 1024;
  std::size_t max_stations = 1024;
  // A runner none of whose devices has sent for this long (wall time) has its reorder window
  // flushed by its worker's timer, so the tail of a run is published without a later arrival.
  std::int64_t idle_flush_us = 500'000;
};

// The runner history store (daemon/store): where, whether, how often the open sessions are
// checkpointed. Active iff enabled and Config::state_dir is not empty.
struct StoreConfig {
  bool enabled = true;
  double checkpoint_interval_s = 5.0;  // the most a kill -9 can lose of an open session
  std::size_t ring_capacity = 65536;   // records between the publisher and the store thread
  // A history file that cannot be used at start-up (foreign, damaged, newer, read-only): true
  // refuses to start (exit 2); false logs the error and runs without history.
  bool required = true;
};

struct Config {
  bool store_active() const { return store.enabled && !state_dir.empty(); }

  std::string source;  // path it was read from, for messages
  IngestConfig ingest;
  PublishConfig publish;
  std::string metrics_address = "127.0.0.1:9464";
  std::string metrics_basic_auth_file;  // "user:password" on one line; "" = no authentication
  SecurityConfig security;
  PipelineConfig pipeline;
  double stale_after_s = 3.0;
  std::string state_dir = "/var/lib/kneeload";  // "" disables the store
  StoreConfig store;
  fusion::ModelParams model;
  std::vector<RunnerConfig> runners;
  std::vector<DeviceConfig> devices;
};

// A refused configuration: what() reads "FILE: KEY: REASON", where REASON says what was
// expected and what was got; errors about the whole file (unreadable) have no KEY part.
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string file, std::string key, std::string reason);
  const std::string& file() const { return file_; }
  const std::string& key() const { return key_; }
  const std::string& reason() const { return reason_; }

 private:
  std::string file_, key_, reason_;
};

// Parses and validates. Unknown keys are refused (a typo must not silently keep a default).
// Throws ConfigError.
Config parse_config(std::string_view toml_text, const std::string& source_name);
// Reads the file and parses it. Throws ConfigError (also for an unreadable file).
Config load_config(const std::string& path);

struct Overrides {
  std::vector<std::string> ingest;  // replaces ingest.endpoints when non-empty
  std::optional<std::string> publish;
  std::optional<std::string> metrics;
  std::optional<std::string> state_dir;
};
// Applies command-line overrides and re-validates the affected keys. Throws ConfigError.
void apply_overrides(Config& config, const Overrides& overrides);

// Empties and frees the device and runner lists. The daemon keeps its running Config after
// start-up for the reload comparisons below and for its settings; the registry generation
// holds everything the threads need of the lists. A DeviceConfig is about 1 KB (an insole's
// geometry), so each kept copy of the lists cost about 5 KB per station (issue 8).
void release_inventory(Config& config);

// A reload's keys into the running Config: the model, stale_after_s and
// pipeline.idle_flush_ms. Every other key restart_only_changes() names keeps its running value,
// so the next reload warns about it again; model.clock.capacity is taken with the model, since
// the sessions a reload creates are built with it (running ones keep theirs).
void take_reloadable(Config& running, const Config& next);



// Which keys a SIGHUP reload does not apply to running runners: sockets, threads and ring sizes,
// including a runner's reorder buffer (model.clock.capacity; new runners get it at once). Every
// other model and rule key reaches running runners through RunnerSession::reconfigure(). Empty
// when the new config differs from the running one only in parts a reload applies.
std::vector<std::string> restart_only_changes(const Config& running, const Config& next);

// Which applied keys restart part of each running runner's state, so the reload can say so:
// new trend capacities re-size the rolling windows and the baseline, which start again from the
// reload (minutes 3-8 then count from it). Everything else a reload applies keeps its estimates.
std::vector<std::string> reload_resets(const Config& running, const Config& next);

}  // namespace kneeload::daemon
