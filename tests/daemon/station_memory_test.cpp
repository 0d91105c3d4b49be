// Issue 8's memory target, daemon side: what kneeloadd keeps per station besides the runner's
// fusion::RunnerSession (tests/model/session_memory_test bounds that): the registry generation
// (name tables, device table, session configs), the workers' per-runner vectors, and the arrays
// ingest, publisher and pipeline size from pipeline.max_devices / max_stations (sizeof-based:
// those objects need sockets). Measured with N stations of 1 runner and 6 devices each, as the
// example config's stations, and the pipeline limits set to exactly N.
//
// The bytes come from tests/support/live_bytes_new.hpp, linked into this binary alone: exact
// live bytes of the blocks allocated inside a measurement.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "daemon/config.hpp"
#include "daemon/doorbell.hpp"
#include "daemon/registry.hpp"
#include "daemon/spsc_ring.hpp"
#include "daemon/station_gauges.hpp"
#include "daemon/work_item.hpp"
#include "daemon/worker.hpp"
#include "kneeload/fusion/output.hpp"
#include "kneeload/proto/codec.hpp"
#include "live_bytes_new.hpp"

namespace kneeload::daemon {
namespace {

// The workers here never run: nothing is pushed, nobody needs telling.
class NoConsumer final : public OutputConsumer {
 public:
  void outputs_ready() override {}
};

constexpr std::size_t kStations = 100;
constexpr std::size_t kDevicesPerStation = 6;  // 2 insoles, 2 knees, treadmill, console

// What the daemon may keep per station outside the session: 32 KiB per station less the
// session's budget (tests/model/session_memory_test.cpp aims at 24 KiB).
constexpr double kDaemonSideBudgetBytes = 8 * 1024;

std::string station_config(std::size_t stations) {
  // max_runners: the idle runner below is a runner too.
  std::string t = "[pipeline]\nmax_devices = " + std::to_string(stations * kDevicesPerStation) +
                  "\nmax_runners = " + std::to_string(stations + 1) +
                  "\nmax_stations = " + std::to_string(stations) + "\n";
  const std::string cells =
      "cell_areas_cm2 = [8.0, 8.0, 9.0, 9.0, 8.5, 8.5, 6.0, 7.0, 7.5, 7.5, 7.5, 7.5, 9.0, 8.5, 6.5, 5.5]\n"
      "cell_x = [0.06, 0.06, 0.17, 0.17, 0.32, 0.45, 0.40, 0.50, 0.63, 0.66, 0.68, 0.68, 0.66, 0.86, 0.88, 0.84]\n"
      "cell_y = [0.38, 0.62, 0.35, 0.65, 0.72, 0.75, 0.25, 0.50, 0.82, 0.66, 0.50, 0.34, 0.16, 0.18, 0.42, 0.68]\n";
  for (std::size_t s = 0; s < stations; ++s) {
    const std::string st = "st" + std::to_string(s);
    const std::string r = "r" + std::to_string(s);
    t += "[[runners]]\nid = \"" + r + "\"\n";
    const auto device = [&](const std::string& id, const char* kind, const char* side) {
      t += "[[devices]]\nid = \"" + st + "-" + id + "\"\nstation = \"" + st + "\"\nrunner = \"" + r +
           "\"\nkind = \"" + kind + "\"\n";
      if (side != nullptr) t += std::string("side = \"") + side + "\"\n";
      if (std::string(kind) == "insole") t += cells;
    };
    device("insole-L", "insole", "left");
    device("insole-R", "insole", "right");
    device("knee-L", "knee", "left");
    device("knee-R", "knee", "right");
    device("treadmill", "treadmill", nullptr);
    device("console", "console", "none");
  }
  // A runner with no device: it has no station, so it must get no session anywhere.
  t += "[[runners]]\nid = \"idle\"\n";
  return t;
}

TEST(StationMemory, DaemonSideArraysStayWithinTheirShareOfThePerStationBudget) {
  const Config config = parse_config(station_config(kStations), "stations.toml");

  live_bytes::begin();
  auto names = std::make_unique<Names>(config.pipeline.max_devices, config.pipeline.max_runners,
                                       config.pipeline.max_stations);
  const std::int64_t names_bytes = live_bytes::live();
  std::shared_ptr<const Registry> registry = build_registry(config, *names, 1);
  const std::int64_t registry_bytes = live_bytes::end().live - names_bytes;

  std::size_t with_session = 0;
  for (const auto& s : registry->sessions) with_session += s != nullptr ? 1 : 0;
  EXPECT_EQ(with_session, kStations) << "one session config per runner with devices, none else";

  // The workers' per-runner vectors and sessions: two workers, as a 2-core install might run.
  SpscRing<WorkItem> in0(2), in1(2);
  SpscRing<OutItem> out0(2), out1(2);
  Doorbell bell_in0, bell_in1;
  NoConsumer consumer;
  auto gauges = std::make_unique<StationGauges[]>(config.pipeline.max_stations);
  live_bytes::begin();
  auto w0 = std::make_unique<Worker>(0, 2, in0, bell_in0, out0, consumer, *registry, gauges.get());
  auto w1 = std::make_unique<Worker>(1, 2, in1, bell_in1, out1, consumer, *registry, gauges.get());
  const std::int64_t workers_bytes = live_bytes::end().live;
  // One session alone (make_unique: its heap includes the object), to count the workers' sessions.
  // Built as the workers build theirs, on the registry's SessionConfig: shared, not copied.
  live_bytes::begin();
  auto one = std::make_unique<fusion::RunnerSession>(*std::find_if(
      registry->sessions.begin(), registry->sessions.end(), [](const auto& s) { return s != nullptr; }));
  const std::int64_t session_bytes = live_bytes::end().live;
  // Sessions exist for the runners with devices and no other: one more or one fewer would
  // move the total by a whole session.
  const auto sessions_seen =
      static_cast<double>(workers_bytes) / static_cast<double>(session_bytes);
  EXPECT_GT(sessions_seen, static_cast<double>(kStations) - 0.5);
  EXPECT_LT(sessions_seen, static_cast<double>(kStations) + 0.5);
  // The workers' per-runner vectors, from their element types: each worker sizes them for
  // every runner slot (not only its own), so they count once per worker.
  constexpr double kWorkers = 2.0;
  const double worker_vectors =
      kWorkers * static_cast<double>(sizeof(std::unique_ptr<fusion::RunnerSession>) +
                                     sizeof(std::int64_t) + sizeof(fusion::SessionCounters) +
                                     sizeof(fusion::SessionLive) + sizeof(std::uint64_t)) *
      static_cast<double>(kStations + 1) / static_cast<double>(kStations);

  // Fixed-capacity arrays sized from pipeline.max_devices / max_stations (sizeof per slot).
  const double n = static_cast<double>(kStations);
  const double per_device_slots =
      static_cast<double>(sizeof(proto::DeviceTrack)) + 1.0 / 8.0;  // ingest track + stale_ bit
  const double per_station_slots =
      static_cast<double>(sizeof(StationGauges) + proto::kTopicCount * sizeof(std::uint64_t) +
                          sizeof(std::array<std::uint8_t, fusion::kAllRules.size()>));

  const double per_station_names = static_cast<double>(names_bytes) / n;
  const double per_station_registry = static_cast<double>(registry_bytes) / n;
  const double per_station_workers = worker_vectors;
  const double per_station_fixed =
      per_station_slots + static_cast<double>(kDevicesPerStation) * per_device_slots;
  const double daemon_side =
      per_station_names + per_station_registry + per_station_workers + per_station_fixed;
  std::printf("[measured] per station (%zu stations x %zu devices, limits = exactly that), bytes:\n",
              kStations, kDevicesPerStation);
  std::printf("  name tables (devices, runners, stations)   %8.0f\n", per_station_names);
  std::printf("  registry generation (device table, configs) %8.0f (SessionConfig %zu)\n",
              per_station_registry, sizeof(fusion::SessionConfig));
  std::printf("  2 workers' per-runner vectors              %8.0f\n", per_station_workers);
  std::printf("  ingest tracks + stale bits (x%zu devices)     %8.0f (DeviceTrack %zu)\n",
              kDevicesPerStation, static_cast<double>(kDevicesPerStation) * per_device_slots,
              sizeof(proto::DeviceTrack));
  std::printf("  gauges, publisher seq + active rules        %8.0f (StationGauges %zu)\n",
              per_station_slots, sizeof(StationGauges));
  std::printf("  daemon side, total                          %8.0f (budget %.0f)\n", daemon_side,
              kDaemonSideBudgetBytes);
  std::printf("  one RunnerSession (sizeof + heap)           %8lld (workers hold %.2f of them)\n",
              static_cast<long long>(session_bytes), sessions_seen);
  std::printf("  per station, all                            %8.0f (issue 8: 32768)\n",
              daemon_side + static_cast<double>(session_bytes));
  EXPECT_LE(daemon_side, kDaemonSideBudgetBytes);
}

// kneeloadd keeps its running Config after start-up, twice (the control loop's, for reload
// comparisons, and the pipeline's, for its settings). Kept whole, each copy held the device
// and runner lists: about 5 KB per station, since an insole's geometry is most of a KB.
TEST(StationMemory, TheConfigKeptAfterStartUpHoldsNothingPerStation) {
  const Config parsed = parse_config(station_config(kStations), "stations.toml");
  live_bytes::begin();
  auto kept = std::make_unique<Config>(parsed);  // as ControlLoop and Pipeline take it
  const std::int64_t whole = live_bytes::live();
  release_inventory(*kept);
  const std::int64_t after = live_bytes::end().live;
  const double n = static_cast<double>(kStations);
  std::printf("[measured] a Config copy of %zu stations: %lld B (%.0f B per station), %lld B "
              "after release_inventory\n",
              kStations, static_cast<long long>(whole), static_cast<double>(whole) / n,
              static_cast<long long>(after));
  EXPECT_GT(static_cast<double>(whole) / n, 4000.0) << "the lists are what a copy costs per station";
  EXPECT_TRUE(kept->devices.empty());
  EXPECT_TRUE(kept->runners.empty());
  EXPECT_EQ(kept->devices.capacity(), 0U) << "emptied but not freed";
  EXPECT_EQ(kept->runners.capacity(), 0U);
  // What stays is the settings: strings and the model, the same for 1 station as for 100.
  EXPECT_LT(static_cast<double>(after), sizeof(Config) + 1024.0);
  EXPECT_EQ(kept->pipeline.max_devices, parsed.pipeline.max_devices);
}

}  // namespace
}  // namespace kneeload::daemon
