// Device samples → kneeload.v1.Frame bytes: what a device or its gateway sends to kneeloadd's
// ingest socket (ingest.proto), for `kneeloadctl sim`. The inverse of proto/src/decoder.cpp for
// what a device says: only the device's own time and the payload go on the wire; side, station
// and runner are the registry's, and the fusion::Sample fields that carry them are not read.
//
// Thread ownership: one thread. The frame message is kept and overwritten, so after the first
// frames an encode reuses its buffers.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "kneeload/fusion/sample.hpp"

namespace kneeload::v1 {
class Frame;
}  // namespace kneeload::v1

namespace kneeload::ctl {

// Sample payload kinds in fusion::Payload's order, for counting what was sent.
inline constexpr int kPayloadKindCount = 6;
// "insole", "knee", "treadmill", "pain", "status", "session_end"; index = Payload::index().
const char* payload_kind_name(std::size_t index);
using SampleCounts = std::array<std::uint64_t, kPayloadKindCount>;

class FrameEncoder {
 public:
  FrameEncoder();
  ~FrameEncoder();
  FrameEncoder(const FrameEncoder&) = delete;
  FrameEncoder& operator=(const FrameEncoder&) = delete;

  // Starts a frame from `device_id` with sequence number `seq`, forgetting any samples added
  // since the last begin().
  void begin(std::string_view device_id, std::uint32_t seq);
  // Appends one sample: its device_t_us and payload. An insole sends its first cell_count
  // pressures; a knee its IMU pair iff has_imus and its angle iff has_angle.
  void add(const fusion::Sample& sample);
  // Serialises the frame into `out` (replacing its contents) with recorded_arrival_us set to
  // `recorded_arrival_us` (0 leaves it unset, as a live device does).
  void finish(std::int64_t recorded_arrival_us, std::string& out);
  int sample_count() const;

 private:
  std::unique_ptr<v1::Frame> frame_;
};

}  // namespace kneeload::ctl
