// The codec's hot-path claim (codec.hpp, STYLE.md "The hot path"): after warm-up, decoding a
// frame within the limits and encoding an output perform no heap allocation.
//
// This binary links tests/support/counting_new, which replaces every global operator new/delete
// with counting versions that forward to malloc/free. Protobuf's arena blocks, std::string
// buffers and repeated-field storage all come through operator new, so the counters see them. Each test first checks that the counters do
// see a protobuf allocation, so a zero can only mean "none happened".
#include <cstdint>
#include <iostream>
#include <iterator>
#include <limits>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "counting_new.hpp"
#include "kneeload/proto/codec.hpp"
#include "kneeload/v1/publish.pb.h"
#include "test_frames.hpp"

namespace kneeload::proto {
namespace {

using namespace kneeload::proto::test;  // NOLINT(google-build-using-namespace): test builders

struct HeapCounts {
  std::uint64_t allocations;
  std::uint64_t frees;
};

HeapCounts heap_now() { return {alloc_count::new_calls(), alloc_count::delete_calls()}; }

HeapCounts heap_since(const HeapCounts& start) {
  const HeapCounts now = heap_now();
  return {now.allocations - start.allocations, now.frees - start.frees};
}

// ---------------------------------------------------------------------------------------------
// Decoder

// A 32-cell insole (the wire maximum) in addition to the shared table's 16-cell ones, for the
// largest frames.
constexpr std::string_view kWideInsoleId = "station-b/runner-02/insole-left-32-cells";
constexpr std::uint32_t kWideInsoleDevice = 5;
constexpr int kWideCells = fusion::kMaxInsoleCells;

DeviceTable alloc_table() {
  using fusion::SensorKind;
  using fusion::Side;
  std::vector<std::pair<std::string, DeviceInfo>> e;
  e.emplace_back(std::string(kInsoleLeftId),
                 device_info(kInsoleLeftDevice, SensorKind::kInsole, Side::kLeft, kInsoleCells));
  e.emplace_back(std::string(kInsoleRightId),
                 device_info(kInsoleRightDevice, SensorKind::kInsole, Side::kRight, kInsoleCells));
  e.emplace_back(std::string(kKneeLeftId),
                 device_info(kKneeLeftDevice, SensorKind::kKnee, Side::kLeft));
  e.emplace_back(std::string(kTreadmillId),
                 device_info(kTreadmillDevice, SensorKind::kTreadmill, Side::kNone));
  e.emplace_back(std::string(kConsoleId),
                 device_info(kConsoleDevice, SensorKind::kConsole, Side::kNone));
  e.emplace_back(std::string(kWideInsoleId),
                 device_info(kWideInsoleDevice, SensorKind::kInsole, Side::kLeft, kWideCells));
  return DeviceTable(std::move(e));
}

struct EncodedFrame {
  std::string bytes;
  std::size_t wire_size;
  int expected_accepted;  // what a correct decoder accepts: the test checks the work was done
};

// Produces the same mix of frame shapes over and over with fresh seq numbers, times and values:
// batches of 10 samples per device kind, the largest frames the default limits allow, and the
// usual rejections (so the rejection paths are measured too).
class FrameStream {
 public:
  explicit FrameStream(const ValidationLimits& limits) : limits_(limits) {}

  EncodedFrame next() {
    const int shape = static_cast<int>(count_++ % kShapes);
    const float v = static_cast<float>(count_ % 1000);  // values vary, shapes do not
    t_us_ += 10'000;
    switch (shape) {
      case 0:
        return batch(kInsoleLeftId, kInsoleLeftDevice,
                     [&](std::int64_t t) { return insole_sample(t, kInsoleCells, 40'000.0f + v); });
      case 1:
        return batch(kInsoleRightId, kInsoleRightDevice,
                     [&](std::int64_t t) { return insole_sample(t, kInsoleCells, 30'000.0f + v); });
      case 2:
        return batch(kKneeLeftId, kKneeLeftDevice,
                     [&](std::int64_t t) { return knee_sample(t, 0.001f * v); });
      case 3:
        return batch(kTreadmillId, kTreadmillDevice,
                     [&](std::int64_t t) { return treadmill_sample(t, 2.0f + 0.001f * v); });
      case 4: {  // console: pain reports, a status, a session end
        v1::Frame f = make_frame(kConsoleId, next_seq(kConsoleDevice), {});
        for (int i = 0; i < 8; ++i)
          *f.add_samples() = pain_sample(t_us_ + i, static_cast<std::uint32_t>(i));
        *f.add_samples() = status_sample(t_us_ + 8, 0.001f * v);
        *f.add_samples() = session_end_sample(t_us_ + 9);
        return {serialize(f), 0, 10};
      }
      case 5: {  // 10 samples, 3 of them bad: NaN, out of range, wrong cell count
        v1::Frame f = make_frame(kInsoleLeftId, next_seq(kInsoleLeftDevice), {});
        for (int i = 0; i < 10; ++i) {
          v1::Sample s = insole_sample(t_us_ + i);
          if (i == 2)
            s.mutable_insole()->set_pressure_pa(1, std::numeric_limits<float>::quiet_NaN());
          if (i == 5) s.mutable_insole()->set_pressure_pa(1, 3.0e6f);
          if (i == 7) s.mutable_insole()->mutable_pressure_pa()->RemoveLast();
          *f.add_samples() = s;
        }
        return {serialize(f), 0, 7};
      }
      case 6: {  // duplicate of the knee's last frame
        v1::Frame f = make_frame(kKneeLeftId, seq_[kKneeLeftDevice], {knee_sample(t_us_)});
        return {serialize(f), 0, 0};
      }
      case 7:  // unknown device, with an id as long as allowed
        return {
            serialize(make_frame(std::string(kMaxDeviceIdBytes, 'u'), 1, {status_sample(t_us_)})),
            0, 0};
      case 8: {  // malformed: a valid frame cut short
        std::string b = serialize(make_frame(kTreadmillId, 1, {treadmill_sample(t_us_)}));
        b.pop_back();
        return {b, 0, 0};
      }
      case 9: {  // oversize as ZeroMQ reports it: the first bytes, the true size
        std::string b = serialize(make_frame(kTreadmillId, 1, {treadmill_sample(t_us_)}));
        return {b, limits_.max_frame_bytes + 1, 0};
      }
      case 10: {  // the largest knee frame: max samples, both IMUs and the angle
        v1::Frame f = make_frame(kKneeLeftId, next_seq(kKneeLeftDevice), {});
        for (int i = 0; i < limits_.max_samples_per_frame; ++i) {
          *f.add_samples() = knee_sample(t_us_ + i, 0.001f * v);
        }
        return checked_big(f);
      }
      default: {  // the largest insole frame: max samples of 32 cells with IMU
        v1::Frame f = make_frame(kWideInsoleId, next_seq(kWideInsoleDevice), {});
        for (int i = 0; i < limits_.max_samples_per_frame; ++i) {
          *f.add_samples() = insole_sample(t_us_ + i, kWideCells, 1.0e6f + v);
        }
        return checked_big(f);
      }
    }
  }

  static constexpr int kShapes = 12;

 private:
  template <typename MakeSample>
  EncodedFrame batch(std::string_view id, std::uint32_t device, MakeSample make) {
    v1::Frame f = make_frame(id, next_seq(device), {});
    for (int i = 0; i < 10; ++i) *f.add_samples() = make(t_us_ + i);
    return {serialize(f), 0, 10};
  }

  EncodedFrame checked_big(const v1::Frame& f) {
    std::string b = serialize(f);
    // A frame over the limit would be refused before parsing and prove nothing about the arena.
    EXPECT_LE(b.size(), limits_.max_frame_bytes) << "test frame exceeds max_frame_bytes";
    return {std::move(b), 0, f.samples_size()};
  }

  std::uint32_t next_seq(std::uint32_t device) { return ++seq_[device]; }

  ValidationLimits limits_;
  std::uint64_t count_ = 0;
  std::int64_t t_us_ = 0;
  std::uint32_t seq_[8] = {};
};

std::vector<EncodedFrame> take(FrameStream& s, int n) {
  std::vector<EncodedFrame> frames;
  frames.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    frames.push_back(s.next());
    if (frames.back().wire_size == 0) frames.back().wire_size = frames.back().bytes.size();
  }
  return frames;
}

TEST(CodecAllocation, DecodingTenThousandFramesAfterWarmUpAllocatesNothing) {
  const ValidationLimits limits;  // the daemon's defaults: 64 KiB, 256 samples
  const DeviceTable table = alloc_table();
  std::vector<DeviceTrack> tracks(kDeviceCapacity);
  std::vector<fusion::Sample> out(static_cast<std::size_t>(limits.max_samples_per_frame));
  FrameStream stream(limits);
  const std::vector<EncodedFrame> warm = take(stream, 2 * FrameStream::kShapes);
  constexpr int kFrames = 10'000;
  const std::vector<EncodedFrame> frames = take(stream, kFrames);

  const HeapCounts construct_start = heap_now();
  FrameDecoder decoder(limits);
  const HeapCounts construction = heap_since(construct_start);
  ASSERT_GT(construction.allocations, 0u) << "the counting operator new sees nothing";

  const HeapCounts warm_start = heap_now();
  std::int64_t arrival_t_us = 0;
  for (const EncodedFrame& f : warm) {
    decoder.decode(as_bytes(f.bytes), f.wire_size, table, tracks, ++arrival_t_us, out);
  }
  const HeapCounts warm_up = heap_since(warm_start);

  std::int64_t expected_accepted = 0;
  std::int64_t accepted = 0;
  std::int64_t wrong_count_frames = 0;
  const HeapCounts start = heap_now();
  for (const EncodedFrame& f : frames) {
    const DecodeResult r =
        decoder.decode(as_bytes(f.bytes), f.wire_size, table, tracks, ++arrival_t_us, out);
    accepted += r.accepted;
    expected_accepted += f.expected_accepted;
    if (r.accepted != f.expected_accepted) ++wrong_count_frames;
  }
  const HeapCounts measured = heap_since(start);

  std::cout << "[ alloc    ] decoder: construction " << construction.allocations
            << " allocations; warm-up (" << warm.size() << " frames) " << warm_up.allocations
            << "; measured " << kFrames << " frames (" << accepted << " samples accepted, "
            << total_rejected(decoder.counters()) << " rejections in all): " << measured.allocations
            << " allocations, " << measured.frees << " frees\n";
  EXPECT_EQ(wrong_count_frames, 0) << "frames whose accepted count differs from expected";
  EXPECT_EQ(accepted, expected_accepted);
  EXPECT_EQ(measured.allocations, 0u) << "expected no heap allocation after warm-up";
  EXPECT_EQ(measured.frees, 0u) << "expected no heap free after warm-up";
}

// The daemon builds its decoder on the main thread and decodes on the ingest thread. A protobuf
// arena keeps per-thread state; the decoder's Reset() before each parse rebinds the
// preallocated block to the calling thread, so even the first decode there allocates nothing.
TEST(CodecAllocation, DecoderBuiltOnOneThreadDecodesOnAnotherWithoutAllocating) {
  const ValidationLimits limits;
  const DeviceTable table = alloc_table();
  std::vector<DeviceTrack> tracks(kDeviceCapacity);
  std::vector<fusion::Sample> out(static_cast<std::size_t>(limits.max_samples_per_frame));
  FrameStream stream(limits);
  const std::vector<EncodedFrame> frames = take(stream, 4 * FrameStream::kShapes);
  FrameDecoder decoder(limits);
  // Used on this thread first, as a daemon's start-up self-check might.
  decoder.decode(as_bytes(frames[0].bytes), frames[0].wire_size, table, tracks, 1, out);

  HeapCounts on_thread{0, 0};
  std::int64_t accepted = 0;
  std::thread ingest([&] {
    const HeapCounts start = heap_now();
    for (std::size_t i = 1; i < frames.size(); ++i) {
      accepted += decoder
                      .decode(as_bytes(frames[i].bytes), frames[i].wire_size, table, tracks,
                              static_cast<std::int64_t>(i + 1), out)
                      .accepted;
    }
    on_thread = heap_since(start);
  });
  ingest.join();
  std::cout << "[ alloc    ] decoder on a second thread: " << frames.size() - 1 << " frames ("
            << accepted << " samples accepted) from the first: " << on_thread.allocations
            << " allocations, " << on_thread.frees << " frees\n";
  EXPECT_GT(accepted, 0);
  EXPECT_EQ(on_thread.allocations, 0u) << "expected no allocation on the decoding thread";
  EXPECT_EQ(on_thread.frees, 0u);
}

// ---------------------------------------------------------------------------------------------
// Encoder

// Cycles through every rule, evidence count 0..4, with and without a model id, long and short
// names: the same shapes over and over with changing values.
fusion::Output make_output(int kind, int i) {
  static constexpr fusion::RuleId kRules[] = {
      fusion::RuleId::kPfjOverload,   fusion::RuleId::kLowCadence,
      fusion::RuleId::kImpact,        fusion::RuleId::kSessionSpike,
      fusion::RuleId::kWeeklyJump,    fusion::RuleId::kItbsPattern,
      fusion::RuleId::kFatigueDrift,  fusion::RuleId::kAsymmetry,
      fusion::RuleId::kShoes,         fusion::RuleId::kPainReport,
      fusion::RuleId::kSensorDropout, fusion::RuleId::kSensorSaturation,
      fusion::RuleId::kStuckCell,     fusion::RuleId::kClockJump};
  static constexpr const char* kMetrics[] = {"pfj_stress_time_integral_mpa_s", "cadence_spm",
                                             "valr_bw_per_s", "pain_score"};
  const float v = static_cast<float>(i);
  const auto t = static_cast<std::int64_t>(i) * 1000;
  fusion::Output o{static_cast<std::uint32_t>(i % 3), static_cast<std::uint32_t>(i % 2), t, t, {}};
  switch (kind) {
    case 0: {
      fusion::FusedState s{};
      s.t_us = t;
      s.knee_angle_rad[0] = 0.001f * v;
      s.knee_angle_rad[1] = i % 2 ? std::numeric_limits<float>::quiet_NaN() : 0.5f;
      s.vgrf_bw[0] = 2.0f;
      s.vgrf_bw[1] = v;
      s.belt_speed_mps = 3.0f;
      s.incline_fraction = 0.01f;
      s.cadence_spm = 170.0f + v;
      s.contact_mask = static_cast<std::uint8_t>(i % 4);
      o.body = s;
      break;
    }
    case 1: {
      fusion::StepMetrics m{};
      m.ic_t_us = t;
      m.to_t_us = t + 250'000;
      m.step_index = static_cast<std::uint64_t>(i);
      m.side = i % 2 ? fusion::Side::kLeft : fusion::Side::kRight;
      m.contact_time_s = 0.25f;
      m.cadence_spm = v;
      m.peak_pfj_stress_mpa = 0.01f * v;
      m.valr_bw_per_s = std::numeric_limits<float>::quiet_NaN();
      o.body = m;
      break;
    }
    case 2: {
      fusion::RiskEvent e{};
      e.t_us = t;
      e.rule = kRules[static_cast<std::size_t>(i) % std::size(kRules)];
      e.severity = static_cast<fusion::Severity>(1 + i % 3);
      e.phase = static_cast<fusion::EventPhase>(1 + i % 2);
      e.side = static_cast<fusion::Side>(i % 3);
      e.device = i % 2 ? 3 : UINT32_MAX;
      e.evidence_count = static_cast<std::uint8_t>(i % (fusion::kMaxEvidence + 1));
      for (int k = 0; k < fusion::kMaxEvidence; ++k) {
        e.evidence[static_cast<std::size_t>(k)] = {kMetrics[(i + k) % 4], v, v / 2, 3.0f};
      }
      e.model_id = i % 3 ? "pfj-ho2012-with-a-long-model-id" : nullptr;
      o.body = e;
      break;
    }
    default: {
      fusion::SessionSummary s{};
      s.start_t_us = 0;
      s.end_t_us = t;
      s.steps = static_cast<std::uint64_t>(i);
      s.distance_m = v;
      s.duration_s = v / 3;
      s.risk_events = static_cast<std::uint32_t>(i % 7);
      s.ended_explicitly = i % 2 == 0;
      o.body = s;
      break;
    }
  }
  return o;
}

OutputNames names_for(int i) {
  static constexpr std::string_view kStations[] = {"station-a", "station-b-in-the-far-hall"};
  static constexpr std::string_view kRunners[] = {"r1", "runner-with-a-long-name-0042", "r3"};
  static constexpr std::string_view kDevices[] = {"", "station-a/runner-01/insole-left"};
  return {kStations[i % 2], kRunners[i % 3], kDevices[i % 2]};
}

StatusReport make_status(int i, std::vector<NamedCount>& rejected,
                         std::vector<NamedCount>& dropped) {
  for (std::size_t r = 0; r < rejected.size(); ++r)
    rejected[r].value = static_cast<std::uint64_t>(i) * r;
  for (std::size_t d = 0; d < dropped.size(); ++d)
    dropped[d].value = static_cast<std::uint64_t>(i) + d;
  StatusReport s;
  s.version = "0.1.0-alloc-test-build";
  s.uptime_s = i;
  s.frames_received = static_cast<std::uint64_t>(i) * 10;
  s.rejected = rejected;
  s.dropped = dropped;
  s.active_devices = 6;
  s.draining = i % 2 == 1;
  return s;
}

TEST(CodecAllocation, EncodingTenThousandOutputsOfEachTypeAfterWarmUpAllocatesNothing) {
  std::vector<std::byte> buf(4096);
  std::vector<NamedCount> rejected;
  for (int r = 0; r < kRejectCount; ++r)
    rejected.push_back({reject_name(static_cast<Reject>(r)), 0});
  std::vector<NamedCount> dropped = {
      {"worker_ring_full", 0}, {"publisher_ring_full", 0}, {"session_output_overflow", 0}};

  const HeapCounts construct_start = heap_now();
  OutputEncoder encoder;
  const HeapCounts construction = heap_since(construct_start);

  // Warm-up: two full cycles of every shape (rules, evidence counts, names).
  constexpr int kWarm = 2 * 14 * 5 * 6;
  const HeapCounts warm_start = heap_now();
  for (int kind = 0; kind < 4; ++kind) {
    for (int i = 0; i < kWarm; ++i) {
      (void)encoder.encode(make_output(kind, i), names_for(i), PublishMeta{1, 2, 3}, buf);
    }
  }
  for (int i = 0; i < kWarm; ++i) {
    (void)encoder.encode_status(make_status(i, rejected, dropped), PublishMeta{1, 2, 3}, buf);
  }
  const HeapCounts warm_up = heap_since(warm_start);
  ASSERT_GT(warm_up.allocations, 0u) << "the counting operator new sees nothing";

  constexpr int kOutputs = 10'000;
  const char* const kTypeNames[] = {"FusedState", "StepMetrics", "RiskEvent", "SessionSummary"};
  std::uint64_t total = 0;
  for (int kind = 0; kind < 4; ++kind) {
    std::size_t zero_sized = 0;
    std::size_t bytes = 0;
    const HeapCounts start = heap_now();
    for (int i = kWarm; i < kWarm + kOutputs; ++i) {
      const std::size_t n = encoder.encode(make_output(kind, i), names_for(i),
                                           PublishMeta{static_cast<std::uint64_t>(i), i, 7}, buf);
      if (n == 0) ++zero_sized;
      bytes += n;
    }
    const HeapCounts measured = heap_since(start);
    total += measured.allocations;
    std::cout << "[ alloc    ] encoder " << kTypeNames[kind] << ": " << kOutputs << " outputs, "
              << bytes << " bytes: " << measured.allocations << " allocations, " << measured.frees
              << " frees\n";
    EXPECT_EQ(zero_sized, 0u) << kTypeNames[kind] << ": encodes that returned 0";
    EXPECT_EQ(measured.allocations, 0u) << kTypeNames[kind] << ": expected no allocation";
    EXPECT_EQ(measured.frees, 0u) << kTypeNames[kind] << ": expected no free";
  }
  {
    std::size_t zero_sized = 0;
    const HeapCounts start = heap_now();
    for (int i = kWarm; i < kWarm + kOutputs; ++i) {
      if (encoder.encode_status(make_status(i, rejected, dropped),
                                PublishMeta{static_cast<std::uint64_t>(i), i, 0}, buf) == 0) {
        ++zero_sized;
      }
    }
    const HeapCounts measured = heap_since(start);
    total += measured.allocations;
    std::cout << "[ alloc    ] encoder DaemonStatus: " << kOutputs << " outputs ("
              << rejected.size() << " rejected + " << dropped.size()
              << " dropped counts): " << measured.allocations << " allocations, " << measured.frees
              << " frees\n";
    EXPECT_EQ(zero_sized, 0u);
    EXPECT_EQ(measured.allocations, 0u) << "DaemonStatus: expected no allocation";
    EXPECT_EQ(measured.frees, 0u) << "DaemonStatus: expected no free";
  }
  std::cout << "[ alloc    ] encoder: construction " << construction.allocations
            << " allocations; warm-up " << warm_up.allocations << "; measured total " << total
            << '\n';
}

}  // namespace
}  // namespace kneeload::proto
