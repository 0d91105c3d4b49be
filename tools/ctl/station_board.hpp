// `kneeloadctl tap`'s table mode: the latest of what kneeloadd published about each station,
// rendered as a plain-text table with a footer from the daemon's status heartbeat.
//
// Pure: no I/O and no clock (the caller redraws it and supplies the title), so it can be fed
// recorded messages and compared as text.
#pragma once

#include <cmath>
#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <tuple>

#include "kneeload/v1/publish.pb.h"
#include "published.hpp"

namespace kneeload::ctl {

class StationBoard {
 public:
  // Takes one decoded message of `kind`; other kinds than the five topics are ignored.
  void update(TopicKind kind, const google::protobuf::Message& message);
  // The table, one line per station in station order, then the status footer.
  std::string render(const std::string& title) const;

 private:
  static constexpr float kUnknown = std::numeric_limits<float>::quiet_NaN();
  static constexpr std::size_t kRecentEvents = 2;

  // A risk event stays active from its onset until the clear of the same rule, side and device.
  using EventKey = std::tuple<std::string, int, std::string>;

  struct Station {
    std::string runner;
    float cadence_spm = kUnknown;
    float contact_time_s = kUnknown;
    float knee_angle_rad[2] = {kUnknown, kUnknown};  // left, right
    float pfj_stress_mpa = kUnknown;
    std::uint64_t steps = 0;
    std::map<EventKey, int> active;   // → severity
    std::deque<std::string> recent;  // newest first
  };

  Station& station(const v1::Header& header);

  std::map<std::string, Station> stations_;
  std::optional<v1::DaemonStatus> status_;
};

}  // namespace kneeload::ctl
