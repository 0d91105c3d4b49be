// Small pieces of the codec shared by the decoder and the encoder: reject names, the device
// table and topic strings. See codec.hpp for the contracts.
#include <algorithm>
#include <cassert>
#include <cstring>
#include <type_traits>
#include <utility>
#include <variant>

#include "kneeload/proto/codec.hpp"

namespace kneeload::proto {

const char* reject_name(Reject r) {
  // These strings are metric label values and appear in the status message: renaming one
  // breaks dashboards and alerts, so they are part of the protocol.
  switch (r) {
    case Reject::kOversize: return "oversize";
    case Reject::kMalformed: return "malformed";
    case Reject::kWrongVersion: return "wrong_version";
    case Reject::kBadDeviceId: return "bad_device_id";
    case Reject::kUnknownDevice: return "unknown_device";
    case Reject::kKeyNotAllowed: return "key_not_allowed";
    case Reject::kEmptyFrame: return "empty_frame";
    case Reject::kTooManySamples: return "too_many_samples";
    case Reject::kDuplicateSeq: return "duplicate_seq";
    case Reject::kReorderedSeq: return "reordered_seq";
    case Reject::kMissingPayload: return "missing_payload";
    case Reject::kKindMismatch: return "kind_mismatch";
    case Reject::kNonFinite: return "non_finite";
    case Reject::kOutOfRange: return "out_of_range";
    case Reject::kCellCountMismatch: return "cell_count_mismatch";
    case Reject::kTimeBackwards: return "time_backwards";
    case Reject::kCount_: break;
  }
  // Not a reason; a caller iterating 0..kRejectCount never gets here.
  return "unknown";
}

namespace {
bool id_less(const std::pair<std::string, DeviceInfo>& a,
             const std::pair<std::string, DeviceInfo>& b) {
  return a.first < b.first;
}
}  // namespace

DeviceTable::DeviceTable(std::vector<std::pair<std::string, DeviceInfo>> entries)
    : entries_(std::move(entries)) {
  std::sort(entries_.begin(), entries_.end(), id_less);
  assert(std::adjacent_find(entries_.begin(), entries_.end(),
                            [](const auto& a, const auto& b) { return a.first == b.first; }) ==
             entries_.end() &&
         "DeviceTable: duplicate device id");
}

const DeviceInfo* DeviceTable::find(std::string_view id) const {
  // Comparing through string_view keeps the lookup allocation-free: no temporary std::string.
  const auto it =
      std::lower_bound(entries_.begin(), entries_.end(), id,
                       [](const std::pair<std::string, DeviceInfo>& e, std::string_view key) {
                         return std::string_view(e.first) < key;
                       });
  if (it == entries_.end() || std::string_view(it->first) != id) return nullptr;
  return &it->second;
}

Topic topic_of(const fusion::OutputBody& body) {
  return std::visit(
      [](const auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, fusion::FusedState>) {
          return Topic::kState;
        } else if constexpr (std::is_same_v<T, fusion::StepMetrics>) {
          return Topic::kStep;
        } else if constexpr (std::is_same_v<T, fusion::RiskEvent>) {
          return Topic::kRisk;
        } else {
          static_assert(std::is_same_v<T, fusion::SessionSummary>, "new output type: add a topic");
          return Topic::kSession;
        }
      },
      body);
}

const char* topic_prefix(Topic t) {
  // Subscribers filter on these prefixes (publish.proto); they are part of the protocol.
  switch (t) {
    case Topic::kState: return "state";
    case Topic::kStep: return "step";
    case Topic::kRisk: return "risk";
    case Topic::kSession: return "session";
    case Topic::kStatus: return "status";
  }
  return "unknown";
}

std::size_t format_topic(Topic t, std::string_view station, std::span<char> buf) {
  // The result is not NUL-terminated: ZeroMQ frames carry their length.
  const std::string_view prefix = topic_prefix(t);
  if (t == Topic::kStatus) {
    if (prefix.size() > buf.size()) return 0;
    std::memcpy(buf.data(), prefix.data(), prefix.size());
    return prefix.size();
  }
  const std::size_t len = prefix.size() + 1 + station.size();
  if (len > buf.size()) return 0;
  std::memcpy(buf.data(), prefix.data(), prefix.size());
  buf[prefix.size()] = '/';
  if (!station.empty()) std::memcpy(buf.data() + prefix.size() + 1, station.data(), station.size());
  return len;
}

}  // namespace kneeload::proto
