#include "frame_encode.hpp"

#include <type_traits>
#include <variant>

#include "kneeload/v1/ingest.pb.h"

namespace kneeload::ctl {
namespace {

constexpr const char* kPayloadKindNames[kPayloadKindCount] = {"insole", "knee",   "treadmill",
                                                              "pain",   "status", "session_end"};
static_assert(std::variant_size_v<fusion::Payload> == kPayloadKindCount);

void fill(v1::Imu6& out, const fusion::Imu6& in) {
  out.set_accel_x_mps2(in.accel_mps2[0]);
  out.set_accel_y_mps2(in.accel_mps2[1]);
  out.set_accel_z_mps2(in.accel_mps2[2]);
  out.set_gyro_x_radps(in.gyro_radps[0]);
  out.set_gyro_y_radps(in.gyro_radps[1]);
  out.set_gyro_z_radps(in.gyro_radps[2]);
}

// The wire enums share their numbers with the fusion enums (ingest.proto, sample.hpp).
v1::Side to_wire(fusion::Side s) {
  switch (s) {
    case fusion::Side::kLeft: return v1::SIDE_LEFT;
    case fusion::Side::kRight: return v1::SIDE_RIGHT;
    case fusion::Side::kNone: break;
  }
  return v1::SIDE_UNSPECIFIED;
}

v1::PainLocation to_wire(fusion::PainLocation l) {
  switch (l) {
    case fusion::PainLocation::kAnterior: return v1::PAIN_LOCATION_ANTERIOR;
    case fusion::PainLocation::kLateral: return v1::PAIN_LOCATION_LATERAL;
    case fusion::PainLocation::kMedial: return v1::PAIN_LOCATION_MEDIAL;
    case fusion::PainLocation::kPosterior: return v1::PAIN_LOCATION_POSTERIOR;
    case fusion::PainLocation::kOther: return v1::PAIN_LOCATION_OTHER;
    case fusion::PainLocation::kUnspecified: break;
  }
  return v1::PAIN_LOCATION_UNSPECIFIED;
}

}  // namespace

const char* payload_kind_name(std::size_t index) {
  return index < static_cast<std::size_t>(kPayloadKindCount) ? kPayloadKindNames[index] : "unknown";
}

FrameEncoder::FrameEncoder() : frame_(std::make_unique<v1::Frame>()) {}
FrameEncoder::~FrameEncoder() = default;

void FrameEncoder::begin(std::string_view device_id, std::uint32_t seq) {
  frame_->set_protocol_version(1);
  frame_->mutable_device_id()->assign(device_id.data(), device_id.size());
  frame_->set_seq(seq);
  frame_->mutable_samples()->Clear();  // keeps the elements for reuse
  frame_->set_recorded_arrival_us(0);
}

void FrameEncoder::add(const fusion::Sample& sample) {
  v1::Sample* s = frame_->add_samples();
  s->set_t_us(sample.device_t_us);
  std::visit(
      [s](const auto& p) {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, fusion::InsoleSample>) {
          v1::InsoleSample* m = s->mutable_insole();
          m->mutable_pressure_pa()->Clear();
          for (int c = 0; c < p.cell_count; ++c) m->add_pressure_pa(p.pressure_pa[c]);
          if (p.has_imu) {
            fill(*m->mutable_imu(), p.imu);
          } else {
            m->clear_imu();
          }
        } else if constexpr (std::is_same_v<T, fusion::KneeSample>) {
          v1::KneeSample* m = s->mutable_knee();
          if (p.has_imus) {
            fill(*m->mutable_thigh(), p.thigh);
            fill(*m->mutable_shank(), p.shank);
          } else {
            m->clear_thigh();
            m->clear_shank();
          }
          m->set_has_angle(p.has_angle);
          m->set_knee_angle_rad(p.has_angle ? p.knee_angle_rad : 0.0f);
        } else if constexpr (std::is_same_v<T, fusion::TreadmillSample>) {
          v1::TreadmillSample* m = s->mutable_treadmill();
          m->set_belt_speed_mps(p.belt_speed_mps);
          m->set_incline_fraction(p.incline_fraction);
        } else if constexpr (std::is_same_v<T, fusion::PainReport>) {
          v1::PainReport* m = s->mutable_pain();
          m->set_score(p.score);
          m->set_side(to_wire(p.side));
          m->set_location(to_wire(p.location));
        } else if constexpr (std::is_same_v<T, fusion::DeviceStatus>) {
          v1::DeviceStatus* m = s->mutable_status();
          m->set_battery_fraction(p.battery_fraction);
          m->set_error_flags(p.error_flags);
        } else {
          static_assert(std::is_same_v<T, fusion::SessionEnd>);
          s->mutable_session_end();
        }
      },
      sample.payload);
}

void FrameEncoder::finish(std::int64_t recorded_arrival_us, std::string& out) {
  frame_->set_recorded_arrival_us(recorded_arrival_us);
  out.clear();
  frame_->SerializeToString(&out);
}

int FrameEncoder::sample_count() const { return frame_->samples_size(); }

}  // namespace kneeload::ctl
