// The device registry as the pipeline sees it: immutable snapshots ("generations") built on the
// main thread from a Config, and process-lifetime name tables that give every device, runner and
// station a stable index.
//
// Why stable indices: pipeline threads keep per-device and per-runner state in flat arrays and
// outputs carry indices, not strings. An index never changes meaning across SIGHUP reloads, so a
// reload is an in-band message, not a stop-the-world.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/config.hpp"
#include "kneeload/fusion/session.hpp"
#include "kneeload/proto/codec.hpp"

namespace kneeload::daemon {

// Append-only table of short names with a fixed capacity, allocated once.
// Thread ownership: the main thread interns; any thread may read an index it received through
// a ring (ring release/acquire makes the name's bytes visible before the index).
class NameTable {
 public:
  static constexpr std::size_t kMaxNameBytes = 64;
  explicit NameTable(std::size_t capacity);

  // Main thread only. Returns the existing index for name, or appends it.
  // Returns nullopt iff the table is full.
  std::optional<std::uint32_t> intern(std::string_view name);
  // Any thread. REQUIRES: index was returned by intern().
  std::string_view name(std::uint32_t index) const;
  std::size_t size() const { return size_.load(std::memory_order_acquire); }
  std::size_t capacity() const { return capacity_; }

 private:
  struct Entry {
    std::array<char, kMaxNameBytes> bytes;
    std::uint8_t length;
  };
  std::size_t capacity_;
  std::unique_ptr<Entry[]> entries_;
  std::atomic<std::size_t> size_{0};
  std::vector<std::pair<std::string, std::uint32_t>> lookup_;  // main thread only, sorted
};

struct Names {
  Names(std::size_t max_devices, std::size_t max_runners, std::size_t max_stations)
      : devices(max_devices), runners(max_runners), stations(max_stations) {}
  NameTable devices;
  NameTable runners;
  NameTable stations;
};

// CURVE: a public key that may send frames, and what for (proto::Sender).
struct SenderKey {
  std::array<char, 40> z85;  // the key as Z85 text, as ZAP reports it in User-Id
  proto::Sender sender;
};

// One immutable generation of the registry.
struct Registry {
  std::uint64_t generation = 0;
  proto::DeviceTable devices;
  // Indexed by runner index; null for runners not in this generation's config. Pointers, not
  // optionals: the table has a slot per pipeline.max_runners and a SessionConfig is ~4.5 KB,
  // so an empty slot costs 16 bytes instead of 4.5 KB (issue 8: 32 KiB per station). Shared:
  // the runner's RunnerSession holds the same one, and keeps it after a reload replaces this
  // generation until its worker applies the next.
  std::vector<std::shared_ptr<const fusion::SessionConfig>> sessions;
  // Indexed by device index: whether the device is registered in this generation, and what
  // it is (valid iff active).
  std::vector<bool> device_active;
  std::vector<proto::DeviceInfo> device_info;
  double stale_after_s = 3.0;
  std::int64_t idle_flush_us = 500'000;  // pipeline.idle_flush_ms: reloadable, read by the workers
  std::size_t active_devices = 0;
  // CURVE (empty without): device and gateway keys sorted by z85, and the subscribers allowed
  // (empty: any subscriber holding the daemon's public key).
  std::vector<SenderKey> sender_keys;
  std::vector<std::string> subscriber_keys;

  // Ingest, per frame: binary search, no allocation. nullptr iff the key is not registered.
  const proto::Sender* find_sender(std::string_view z85) const;
  bool subscriber_allowed(std::string_view z85) const;
};

// Builds a generation. Interns new names (they stay interned even if this generation is later
// dropped: the tables are append-only by design). Throws ConfigError when a table would
// overflow its configured maximum.
// `history`, when given, fills a runner's TrainingHistory from the runner store (daemon/store)
// after the config's own hooks (shoe km) are set.
using HistoryLookup = std::function<void(std::string_view runner, fusion::TrainingHistory& history)>;
std::shared_ptr<const Registry> build_registry(const Config& config, Names& names,
                                               std::uint64_t generation,
                                               const HistoryLookup& history = {});

}  // namespace kneeload::daemon
