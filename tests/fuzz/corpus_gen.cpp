// Writes the decoder fuzz target's seed corpus (tests/fuzz/corpus/decoder): valid frames of
// every sample kind, the sequence and clock histories the decoder tracks, and bad frames for
// every rejection reason, in decoder_fuzz.cpp's input format. The files are committed; rerun
// this after a schema or format change:
//   cmake --build build/release --target fuzz_corpus_gen
//   build/release/tests/fuzz/fuzz_corpus_gen tests/fuzz/corpus/decoder
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include "test_frames.hpp"

namespace {

using namespace kneeload::proto;        // NOLINT(google-build-using-namespace)
using namespace kneeload::proto::test;  // NOLINT(google-build-using-namespace)
namespace fs = std::filesystem;

// decoder_fuzz.cpp's set-up byte.
constexpr std::uint8_t kDefault = 0;
constexpr std::uint8_t kTight = 1;
constexpr std::uint8_t kGateway = 1 << 1;
constexpr std::uint8_t kRightInsoleKey = 2 << 1;
constexpr std::uint8_t kStrangerKey = 3 << 1;

std::string input(std::uint8_t setup, std::initializer_list<std::string> frames) {
  std::string out(1, static_cast<char>(setup));
  for (const std::string& f : frames) {
    out += static_cast<char>(f.size() & 0xff);
    out += static_cast<char>((f.size() >> 8) & 0xff);
    out += f;
  }
  return out;
}

std::string frame_of(std::string_view id, std::uint32_t seq, std::initializer_list<v1::Sample> samples) {
  return serialize(make_frame(id, seq, samples));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  const fs::path dir = argv[1];
  fs::create_directories(dir);
  int written = 0;
  const auto write = [&](const std::string& name, const std::string& bytes) {
    std::ofstream(dir / name, std::ios::binary | std::ios::trunc) << bytes;
    ++written;
  };

  // Every sample kind, accepted.
  write("ok_insole", input(kDefault, {frame_of(kInsoleLeftId, 1, {insole_sample(10), insole_sample(20)})}));
  write("ok_insole_no_imu",
        input(kDefault, {frame_of(kInsoleLeftId, 1, {insole_sample(10, kInsoleCells, 50'000.0f, false)})}));
  write("ok_knee_imus_and_angle", input(kDefault, {frame_of(kKneeLeftId, 1, {knee_sample(10)})}));
  write("ok_knee_angle_only", input(kDefault, {frame_of(kKneeLeftId, 1, {knee_sample(10, 1.2f, false, true)})}));
  write("ok_knee_imus_only", input(kDefault, {frame_of(kKneeLeftId, 1, {knee_sample(10, 0.0f, true, false)})}));
  write("ok_treadmill", input(kDefault, {frame_of(kTreadmillId, 1, {treadmill_sample(10)})}));
  write("ok_pain", input(kDefault, {frame_of(kConsoleId, 1, {pain_sample(10)})}));
  write("ok_status_from_sensor", input(kDefault, {frame_of(kKneeLeftId, 1, {status_sample(10)})}));
  write("ok_session_end", input(kDefault, {frame_of(kConsoleId, 1, {pain_sample(10, 0), session_end_sample(20)})}));
  v1::Frame replayed = make_frame(kTreadmillId, 4, {treadmill_sample(10), treadmill_sample(20)});
  replayed.set_recorded_arrival_us(123'456'789);
  write("ok_replayed_arrival", input(kDefault, {serialize(replayed)}));
  write("ok_range_edges",
        input(kDefault, {frame_of(kTreadmillId, 1, {treadmill_sample(10, 12.0f, -0.15f), treadmill_sample(11, 0.0f, 0.40f)}),
                         frame_of(kKneeLeftId, 1, {knee_sample(10, -0.35f, false, true), knee_sample(11, 2.8f, false, true)})}));

  // Histories: gaps, duplicates, reordering, restarts, clocks.
  write("seq_gap_dup_reorder_restart",
        input(kDefault, {frame_of(kInsoleLeftId, 1, {insole_sample(10)}), frame_of(kInsoleLeftId, 4, {insole_sample(20)}),
                         frame_of(kInsoleLeftId, 4, {insole_sample(30)}), frame_of(kInsoleLeftId, 3, {insole_sample(40)}),
                         frame_of(kInsoleLeftId, 0, {insole_sample(5)}), frame_of(kInsoleLeftId, 1, {insole_sample(6)})}));
  write("time_backwards_within_and_across_frames",
        input(kDefault, {frame_of(kTreadmillId, 1, {treadmill_sample(100), treadmill_sample(90), treadmill_sample(110)}),
                         frame_of(kTreadmillId, 2, {treadmill_sample(50), treadmill_sample(120)})}));
  write("all_samples_rejected_frame_still_sequenced",
        input(kDefault, {frame_of(kTreadmillId, 1, {treadmill_sample(10, 99.0f)}),
                         frame_of(kTreadmillId, 1, {treadmill_sample(20)}), frame_of(kTreadmillId, 2, {treadmill_sample(30)})}));
  write("two_devices_interleaved",
        input(kDefault, {frame_of(kInsoleLeftId, 7, {insole_sample(10)}), frame_of(kKneeLeftId, 7, {knee_sample(10)}),
                         frame_of(kInsoleLeftId, 8, {insole_sample(20)}), frame_of(kKneeLeftId, 6, {knee_sample(5)})}));

  // Sample-level refusals.
  v1::Sample nan_pressure = insole_sample(10);
  nan_pressure.mutable_insole()->set_pressure_pa(3, std::nanf(""));
  v1::Sample inf_gyro = knee_sample(10);
  inf_gyro.mutable_knee()->mutable_shank()->set_gyro_x_radps(INFINITY);
  v1::Sample missing;
  missing.set_t_us(10);
  v1::Sample half_knee = knee_sample(10, 0.5f, true, true);
  half_knee.mutable_knee()->clear_shank();
  write("sample_rejects",
        input(kDefault,
              {frame_of(kInsoleLeftId, 1, {nan_pressure, insole_sample(11, 15), insole_sample(12, kInsoleCells, -1.0f),
                                           missing, treadmill_sample(13), insole_sample(14)}),
               frame_of(kKneeLeftId, 1, {inf_gyro, half_knee, knee_sample(11, 3.0f), knee_sample(12, 0.1f, false, false)}),
               frame_of(kConsoleId, 1, {pain_sample(10, 11), pain_sample(11, 3, static_cast<v1::Side>(7)),
                                        status_sample(12, 1.5f), session_end_sample(13)})}));

  // Frame-level refusals.
  v1::Frame wrong_version = make_frame(kTreadmillId, 1, {treadmill_sample(10)});
  wrong_version.set_protocol_version(2);
  v1::Frame too_many = make_frame(kTreadmillId, 2, {});
  for (int i = 0; i < 257; ++i) *too_many.add_samples() = treadmill_sample(i);
  const std::string valid = frame_of(kKneeLeftId, 3, {knee_sample(10), knee_sample(20)});
  write("frame_rejects",
        input(kDefault, {serialize(wrong_version), frame_of("", 1, {treadmill_sample(1)}),
                         frame_of(std::string(65, 'x'), 1, {treadmill_sample(1)}), frame_of("nobody", 1, {treadmill_sample(1)}),
                         frame_of(kTreadmillId, 1, {}), serialize(too_many), valid.substr(0, valid.size() / 2),
                         std::string("\xff\xff\xff\xff garbage", 12), std::string(1000, 'x')}));
  write("tight_limits",
        input(kTight, {frame_of(kTreadmillId, 1, {treadmill_sample(1), treadmill_sample(2)}),
                       frame_of(kTreadmillId, 2, {treadmill_sample(3), treadmill_sample(4), treadmill_sample(5)}),
                       frame_of(kInsoleLeftId, 1, {insole_sample(1)}), std::string(200, 'x')}));

  // CURVE senders: a gateway may not speak for a device with its own key; the device key may.
  write("sender_gateway",
        input(kGateway, {frame_of(kInsoleLeftId, 1, {insole_sample(10)}), frame_of(kInsoleRightId, 1, {insole_sample(10)})}));
  write("sender_device_key",
        input(kRightInsoleKey, {frame_of(kInsoleRightId, 1, {insole_sample(10)}), frame_of(kInsoleLeftId, 1, {insole_sample(10)})}));
  write("sender_stranger", input(kStrangerKey, {frame_of(kTreadmillId, 1, {treadmill_sample(10)})}));

  std::printf("wrote %d seeds to %s\n", written, dir.c_str());
  return 0;
}
