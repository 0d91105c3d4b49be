#include "daemon/registry.hpp"

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>

namespace kneeload::daemon {

NameTable::NameTable(std::size_t capacity)
    : capacity_(capacity), entries_(std::make_unique<Entry[]>(capacity)) {}

std::optional<std::uint32_t> NameTable::intern(std::string_view name) {
  auto it = std::lower_bound(lookup_.begin(), lookup_.end(), name,
                             [](const auto& e, std::string_view n) { return e.first < n; });
  if (it != lookup_.end() && it->first == name) return it->second;
  const std::size_t index = size_.load(std::memory_order_relaxed);
  if (index >= capacity_ || name.size() > kMaxNameBytes) return std::nullopt;
  Entry& e = entries_[index];
  std::memcpy(e.bytes.data(), name.data(), name.size());
  e.length = static_cast<std::uint8_t>(name.size());
  size_.store(index + 1, std::memory_order_release);
  const auto idx = static_cast<std::uint32_t>(index);
  lookup_.insert(it, {std::string(name), idx});
  return idx;
}

std::string_view NameTable::name(std::uint32_t index) const {
  if (index >= capacity_) return {};
  const Entry& e = entries_[index];
  return {e.bytes.data(), e.length};
}

namespace {
std::uint32_t intern_or_throw(NameTable& table, std::string_view name, const Config& config,
                              const char* what, const char* key) {
  auto idx = table.intern(name);
  if (!idx) {
    throw ConfigError(config.source, key,
                      std::string("too many ") + what + " over the daemon's lifetime: the table holds " +
                          std::to_string(table.capacity()) + " (raise " + key +
                          " and restart), got a new one \"" + std::string(name) + "\"");
  }
  return *idx;
}
}  // namespace

std::shared_ptr<const Registry> build_registry(const Config& config, Names& names,
                                               std::uint64_t generation,
                                               const HistoryLookup& history) {
  auto reg = std::make_shared<Registry>();
  reg->generation = generation;
  reg->stale_after_s = config.stale_after_s;
  reg->idle_flush_us = config.pipeline.idle_flush_us;

  // Resolve every index first so a failure leaves nothing half-applied but interned names.
  struct RunnerSlot {
    std::uint32_t index;
    const RunnerConfig* config;
  };
  std::vector<RunnerSlot> runners;
  for (const RunnerConfig& r : config.runners) {
    runners.push_back({intern_or_throw(names.runners, r.id, config, "runners", "pipeline.max_runners"), &r});
  }
  std::vector<std::pair<std::string, proto::DeviceInfo>> entries;
  for (const DeviceConfig& d : config.devices) {
    proto::DeviceInfo info;
    info.device = intern_or_throw(names.devices, d.id, config, "devices", "pipeline.max_devices");
    info.station = intern_or_throw(names.stations, d.station, config, "stations", "pipeline.max_stations");
    info.runner = *names.runners.intern(d.runner);  // validated by parse_config: runner exists
    info.kind = d.kind;
    info.side = d.side;
    info.cell_count = d.kind == fusion::SensorKind::kInsole ? d.insole.cell_count : 0;
    info.key_pinned = !d.public_key.empty();
    entries.emplace_back(d.id, info);
  }

  // Built mutable here, then shared read-only: the registry and the runner's RunnerSession
  // hold the same SessionConfig (issue 8: one 4.5 KB copy per runner, not two).
  std::vector<std::shared_ptr<fusion::SessionConfig>> sessions(names.runners.capacity());
  reg->device_active.assign(names.devices.capacity(), false);
  reg->device_info.assign(names.devices.capacity(), proto::DeviceInfo{});
  for (const RunnerSlot& r : runners) {
    fusion::SessionConfig sc;
    sc.runner = r.index;
    sc.runner_params = r.config->params;
    sc.model = config.model;
    // R9's km hook (MODEL.md §8): the shoe's distance before this session, from the runner's
    // metadata; the runner store (when on) replaces it with the km it has counted since.
    if (!r.config->shoe_id.empty()) sc.history.shoe_km_before_session = r.config->shoe_km;
    if (history) history(r.config->id, sc.history);
    sessions[r.index] = std::make_shared<fusion::SessionConfig>(std::move(sc));
  }
  std::vector<bool> has_device(sessions.size(), false);
  for (std::size_t i = 0; i < config.devices.size(); ++i) {
    const DeviceConfig& d = config.devices[i];
    const proto::DeviceInfo& info = entries[i].second;
    reg->device_active[info.device] = true;
    reg->device_info[info.device] = info;
    const auto& session = sessions[info.runner];
    if (!session) continue;
    has_device[info.runner] = true;
    session->station = info.station;
    const int side = d.side == fusion::Side::kRight ? 1 : 0;
    if (d.kind == fusion::SensorKind::kInsole) session->insoles[static_cast<std::size_t>(side)] = d.insole;
    if (d.kind == fusion::SensorKind::kKnee) session->knees[static_cast<std::size_t>(side)] = d.knee;
  }
  // A runner without devices has no station and can produce nothing: no session for it.
  reg->sessions.resize(sessions.size());
  for (std::size_t r = 0; r < sessions.size(); ++r) {
    if (has_device[r]) reg->sessions[r] = std::move(sessions[r]);
  }
  reg->active_devices = config.devices.size();
  if (config.security.curve) {
    const auto add_key = [&](const std::string& z85, std::uint32_t device) {
      SenderKey k{};
      std::copy_n(z85.begin(), k.z85.size(), k.z85.begin());  // validated: 40 characters
      k.sender = proto::Sender{true, device};
      reg->sender_keys.push_back(k);
    };
    for (const std::string& key : config.security.gateway_keys) add_key(key, UINT32_MAX);
    for (std::size_t i = 0; i < config.devices.size(); ++i) {
      if (!config.devices[i].public_key.empty()) add_key(config.devices[i].public_key, entries[i].second.device);
    }
    std::sort(reg->sender_keys.begin(), reg->sender_keys.end(),
              [](const SenderKey& a, const SenderKey& b) { return a.z85 < b.z85; });
    reg->subscriber_keys = config.security.subscriber_keys;
  }
  reg->devices = proto::DeviceTable(std::move(entries));
  return reg;
}

const proto::Sender* Registry::find_sender(std::string_view z85) const {
  if (z85.size() != 40) return nullptr;
  const auto it = std::lower_bound(sender_keys.begin(), sender_keys.end(), z85, [](const SenderKey& k, std::string_view v) {
    return std::string_view(k.z85.data(), k.z85.size()) < v;
  });
  if (it == sender_keys.end() || std::string_view(it->z85.data(), it->z85.size()) != z85) return nullptr;
  return &it->sender;
}

bool Registry::subscriber_allowed(std::string_view z85) const {
  return subscriber_keys.empty() || std::find(subscriber_keys.begin(), subscriber_keys.end(), z85) != subscriber_keys.end();
}

}  // namespace kneeload::daemon
