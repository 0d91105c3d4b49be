#include "stamp.hpp"

#include <google/protobuf/stubs/logging.h>

#include "kneeload/v1/ingest.pb.h"

namespace kneeload::ctl {
namespace {

const char* sample_kind_name(v1::Sample::KindCase k) {
  switch (k) {
    case v1::Sample::kInsole: return "insole";
    case v1::Sample::kKnee: return "knee";
    case v1::Sample::kTreadmill: return "treadmill";
    case v1::Sample::kPain: return "pain";
    case v1::Sample::kStatus: return "status";
    case v1::Sample::kSessionEnd: return "session_end";
    case v1::Sample::KIND_NOT_SET: break;
  }
  return "no_payload";
}

}  // namespace

bool stamp_recorded_arrival(std::string& frame, std::int64_t arrival_us,
                            std::map<std::string, std::uint64_t>* samples_by_kind) {
  v1::Frame parsed;
  bool ok = false;
  {
    google::protobuf::LogSilencer quiet;  // protobuf logs every invalid UTF-8 string it meets
    ok = parsed.ParseFromString(frame);
  }
  if (!ok) return false;
  if (samples_by_kind != nullptr) {
    for (const v1::Sample& s : parsed.samples()) ++(*samples_by_kind)[sample_kind_name(s.kind_case())];
  }
  if (arrival_us == 0) return true;
  frame.push_back(static_cast<char>(v1::Frame::kRecordedArrivalUsFieldNumber << 3));  // wire type 0: varint
  auto v = static_cast<std::uint64_t>(arrival_us);  // int64: two's complement, 10 bytes if negative
  do {
    const auto low = static_cast<std::uint8_t>(v & 0x7Fu);
    v >>= 7;
    frame.push_back(static_cast<char>(v != 0 ? (low | 0x80u) : low));
  } while (v != 0);
  return true;
}

}  // namespace kneeload::ctl
