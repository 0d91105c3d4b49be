// kneeloadctl load: the frames it patches in place decode as its stations' devices, with the
// times, sequence numbers and arrival stamps the stream promises, and are the canonical
// protobuf encoding of those values; a real kneeloadd fed by two resumed runs ingests exactly
// what load reports having sent, rejects nothing and drops nothing (not even as late samples
// across the pause between the runs), and load's config is one the daemon accepts.
#include <gtest/gtest.h>


#include "../integration/http.hpp"
#include "ctl_harness.hpp"
#include "kneeload/proto/codec.hpp"
#include "load_frames.hpp"

namespace kneeload::testing {
namespace {

using ctl::kLoadClockStartUs;
using ctl::kLoadRoles;
using ctl::kLoadSeqStart;
using ctl::LoadTemplate;

constexpr int kInsoleCells = 16;

fusion::SensorKind kind_of(fusion::DeviceRole role) {
  switch (role) {
    case fusion::DeviceRole::kInsoleLeft:
    case fusion::DeviceRole::kInsoleRight: return fusion::SensorKind::kInsole;
    case fusion::DeviceRole::kKneeLeft:
    case fusion::DeviceRole::kKneeRight: return fusion::SensorKind::kKnee;
    case fusion::DeviceRole::kTreadmill: return fusion::SensorKind::kTreadmill;
    case fusion::DeviceRole::kConsole: break;
  }
  return fusion::SensorKind::kConsole;
}

fusion::Side side_of(fusion::DeviceRole role) {
  switch (role) {
    case fusion::DeviceRole::kInsoleLeft:
    case fusion::DeviceRole::kKneeLeft: return fusion::Side::kLeft;
    case fusion::DeviceRole::kInsoleRight:
    case fusion::DeviceRole::kKneeRight: return fusion::Side::kRight;
    default: return fusion::Side::kNone;
  }
}

// The registry a daemon builds from load's config for these stations, as the decoder sees it.
proto::DeviceTable device_table(const std::vector<int>& stations) {
  std::vector<std::pair<std::string, proto::DeviceInfo>> entries;
  for (std::size_t s = 0; s < stations.size(); ++s) {
    for (const fusion::DeviceRole role : kLoadRoles) {
      proto::DeviceInfo info;
      info.device = static_cast<std::uint32_t>(entries.size());
      info.runner = static_cast<std::uint32_t>(s);
      info.station = static_cast<std::uint32_t>(s);
      info.kind = kind_of(role);
      info.side = side_of(role);
      info.cell_count = info.kind == fusion::SensorKind::kInsole ? kInsoleCells : 0;
      entries.emplace_back(ctl::load_device_id(stations[s], role), info);
    }
  }
  return proto::DeviceTable(std::move(entries));
}

std::string patched(const LoadTemplate& t, const LoadTemplate::Frame& f, int station, std::int64_t q) {
  char digits[ctl::kLoadStationDigits];
  ctl::load_station_digits(station, digits);
  std::string out(f.bytes.size(), '\0');
  t.write(f, digits, q, reinterpret_cast<std::byte*>(out.data()));
  return out;
}

TEST(LoadFrames, PatchedFramesDecodeWithTheStreamsTimesAcrossTemplateLoops) {
  const LoadTemplate t(ctl::LoadTemplateOptions{});
  ASSERT_EQ(t.slot_us(), 100'000) << "batch 10: insole frames of 100 ms, knee frames of 50 ms";
  ASSERT_EQ(t.slot_count(), 600);
  const std::vector<int> stations{1, 42, ctl::kLoadMaxStations};
  const proto::DeviceTable table = device_table(stations);
  proto::FrameDecoder decoder(proto::ValidationLimits{});
  std::vector<proto::DeviceTrack> tracks(table.size());
  std::vector<fusion::Sample> out(256);
  std::uint64_t sent = 0;
  // Two whole loops of the template and a little more, each station starting elsewhere in it
  // as the schedule starts them, through the scheduler exactly as `load` walks it.
  const ctl::LoadSchedule schedule(static_cast<int>(stations.size()), t.slot_count());
  const std::uint64_t groups = stations.size() * static_cast<std::size_t>(2 * t.slot_count() + 7);
  for (std::uint64_t cursor = 0; cursor < groups; ++cursor) {
    const int index = schedule.station_index(cursor);
    const std::int64_t q = schedule.position(cursor);
    for (const LoadTemplate::Frame& f : t.slot(static_cast<int>(q % t.slot_count()))) {
      const std::string bytes = patched(t, f, stations[static_cast<std::size_t>(index)], q);
      const proto::DecodeResult r = decoder.decode(std::as_bytes(std::span(bytes.data(), bytes.size())), bytes.size(),
                                                   table, tracks, /*arrival_t_us*/ 1, out);
      ASSERT_FALSE(r.frame_rejected) << "station " << stations[static_cast<std::size_t>(index)] << " q " << q
                                     << ": " << proto::reject_name(r.frame_reason);
      ASSERT_EQ(r.accepted, f.samples) << "rejected " << r.samples_rejected << " samples at q " << q;
      const std::int64_t slot_start = kLoadClockStartUs + q * t.slot_us();
      for (int i = 0; i < r.accepted; ++i) {
        const fusion::Sample& s = out[static_cast<std::size_t>(i)];
        ASSERT_EQ(s.device_t_us, slot_start + f.t_us[static_cast<std::size_t>(i)].in_slot_us) << "q " << q;
        ASSERT_EQ(s.arrival_t_us, slot_start + f.arrival_in_slot_us) << "the recorded arrival replaces the receive time";
        ASSERT_EQ(s.receive_t_us, 1);
        ASSERT_EQ(s.kind, kind_of(f.role));
        ASSERT_EQ(s.station, static_cast<std::uint32_t>(index));
      }
      sent += static_cast<std::uint64_t>(f.samples);
    }
  }
  EXPECT_EQ(decoder.counters().samples_accepted.get(), sent);
  EXPECT_EQ(decoder.counters().seq_gap_frames.get(), 0u) << "each device's seq must go up by exactly 1 per frame";
  EXPECT_EQ(decoder.counters().device_restarts.get(), 0u);
  for (int r = 0; r < proto::kRejectCount; ++r) {
    EXPECT_EQ(decoder.counters().rejected[static_cast<std::size_t>(r)].get(), 0u)
        << proto::reject_name(static_cast<proto::Reject>(r));
  }
}

TEST(LoadFrames, PatchedFramesAreTheCanonicalEncodingOfTheirValues) {
  const LoadTemplate t(ctl::LoadTemplateOptions{});
  for (const std::int64_t q : {std::int64_t{0}, std::int64_t{599}, std::int64_t{600}, t.max_position()}) {
    for (const LoadTemplate::Frame& f : t.slot(static_cast<int>(q % t.slot_count()))) {
      const std::string bytes = patched(t, f, 31337, q);
      v1::Frame frame;
      ASSERT_TRUE(frame.ParseFromString(bytes)) << "q " << q;
      EXPECT_EQ(frame.device_id(), ctl::load_device_id(31337, f.role));
      EXPECT_EQ(frame.seq(), kLoadSeqStart + static_cast<std::uint64_t>(q) * t.frames_per_slot(f.role) + f.seq_in_slot);
      const std::int64_t slot_start = kLoadClockStartUs + q * t.slot_us();
      EXPECT_EQ(frame.recorded_arrival_us(), slot_start + f.arrival_in_slot_us);
      ASSERT_EQ(frame.samples_size(), f.samples);
      for (int i = 0; i < f.samples; ++i) {
        EXPECT_EQ(frame.samples(i).t_us(), slot_start + f.t_us[static_cast<std::size_t>(i)].in_slot_us);
      }
      // Protobuf writes the shortest varints in field order: the same bytes back means the
      // patched frame is exactly what an encoder would send for these values.
      EXPECT_EQ(frame.SerializeAsString(), bytes) << "q " << q << ", " << frame.device_id();
    }
  }
}

// The JSON line `load --json` prints: one number field.
std::uint64_t json_number(const std::string& json, const std::string& key) {
  const std::size_t at = json.find("\"" + key + "\":");
  if (at == std::string::npos) return 0;
  return std::stoull(json.substr(at + key.size() + 3));
}

double metric_sum(const Exposition& e, const std::string& family) {
  double sum = 0.0;
  for (const auto& [series, value] : e.samples) {
    if (series == family || series.rfind(family + "{", 0) == 0) sum += value;
  }
  return sum;
}

TEST(LoadCommand, ADaemonIngestsExactlyWhatTwoResumedRunsSentAndDropsNothing) {
  constexpr int kStations = 4;
  Ctl print({"load", "--print-config", "--stations", std::to_string(kStations), "--workers", "2"});
  ASSERT_EQ(print.wait(kExitBound), 0) << print.err();
  // load's idle flush outlasts the pause between two visits of a station at 10,000 stations;
  // here it would only hold the last run's tail for 10 s, so the test puts the default back.
  std::string config = print.out();
  const std::string long_flush = "idle_flush_ms = 10000\n";
  ASSERT_NE(config.find(long_flush), std::string::npos) << config;
  config.replace(config.find(long_flush), long_flush.size(), "idle_flush_ms = 500\n");
  Daemon daemon(config);
  ASSERT_TRUE(daemon.started()) << daemon.log();
  ASSERT_FALSE(daemon.metrics_address().empty());

  // 2.5x real time for 4 stations (610 samples/s each): modest even for a sanitizer build.
  std::uint64_t sent = 0;
  std::string cursor = "0";
  for (int run = 0; run < 2; ++run) {
    Ctl load({"load", "--endpoint", daemon.ingest_endpoint(), "--stations", std::to_string(kStations), "--rate",
              "6000", "--duration", "1", "--json", "--start-cursor", cursor});
    ASSERT_EQ(load.wait(kExitBound), 0) << load.err();
    const std::string json = load.out();
    ASSERT_NE(json.find("\"behind\":false"), std::string::npos) << json;
    const std::uint64_t samples = json_number(json, "samples");
    EXPECT_GT(samples, 5000u) << json;
    sent += samples;
    cursor = std::to_string(json_number(json, "next_cursor"));
    // Longer than the worker's idle flush (500 ms): every buffered sample is fused before the
    // next run, which must then bring nothing older.
    std::this_thread::sleep_for(700ms);
  }

  Exposition e;
  const bool settled = eventually([&] {
    const auto r = http_get(daemon.metrics_address(), "/metrics");
    if (!r || r->status != 200) return false;
    e = parse_exposition(r->body);
    return metric_sum(e, "kneeload_samples_ingested_total") >= static_cast<double>(sent) &&
           metric_sum(e, "kneeload_samples_fused_total") >= static_cast<double>(sent);
  }, 20s);
  EXPECT_TRUE(settled) << "sent " << sent << ", ingested " << metric_sum(e, "kneeload_samples_ingested_total")
                       << ", fused " << metric_sum(e, "kneeload_samples_fused_total") << "\n" << daemon.log();
  EXPECT_EQ(metric_sum(e, "kneeload_samples_ingested_total"), static_cast<double>(sent));
  EXPECT_EQ(metric_sum(e, "kneeload_samples_fused_total"), static_cast<double>(sent));
  EXPECT_EQ(metric_sum(e, "kneeload_frames_rejected_total"), 0.0);
  EXPECT_EQ(metric_sum(e, "kneeload_samples_rejected_total"), 0.0);
  for (const auto& [series, value] : e.samples) {
    if (series.rfind("kneeload_dropped_total{", 0) == 0) {
      EXPECT_EQ(value, 0.0) << series;
    }
  }
}

TEST(LoadCommand, RefusesStationsBeyondItsIdsAndAnUnreachableDaemon) {
  Ctl too_many({"load", "--stations", "100000"});
  EXPECT_EQ(too_many.wait(kExitBound), 2) << too_many.err();
  EXPECT_NE(too_many.err().find("--stations"), std::string::npos) << too_many.err();
  Ctl nobody({"load", "--endpoint", "tcp://127.0.0.1:1", "--timeout", "0.3", "--duration", "1"});
  EXPECT_EQ(nobody.wait(kExitBound), 1) << nobody.err();
  EXPECT_NE(nobody.err().find("nothing answered"), std::string::npos) << nobody.err();
}

}  // namespace
}  // namespace kneeload::testing
