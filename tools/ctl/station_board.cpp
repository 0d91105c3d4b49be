#include "station_board.hpp"

#include <cstdio>
#include <numbers>

namespace kneeload::ctl {
namespace {

// Column widths, wide enough for the ids README allows in practice (ids may be up to 64
// characters: longer ones push the row right rather than being cut, so nothing is hidden).
constexpr int kIdWidth = 10;

std::string fixed(float v, int decimals, float scale = 1.0f) {
  if (!std::isfinite(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, static_cast<double>(v * scale));
  return buf;
}

std::string degrees(float rad) {
  return fixed(rad, 0, static_cast<float>(180.0 / std::numbers::pi));
}

const char* severity_name(int severity) {
  switch (severity) {
    case v1::SEVERITY_INFO: return "INFO";
    case v1::SEVERITY_WARN: return "WARN";
    case v1::SEVERITY_HIGH: return "HIGH";
    default: return "ok";
  }
}

const char* side_name(v1::Side side) {
  switch (side) {
    case v1::SIDE_LEFT: return " left";
    case v1::SIDE_RIGHT: return " right";
    default: return "";
  }
}

std::uint64_t total(const google::protobuf::RepeatedPtrField<v1::Count>& counts) {
  std::uint64_t n = 0;
  for (const v1::Count& c : counts) n += c.value();
  return n;
}

// "malformed 2, unknown_device 1" for the non-zero counts.
std::string breakdown(const google::protobuf::RepeatedPtrField<v1::Count>& counts) {
  std::string s;
  for (const v1::Count& c : counts) {
    if (c.value() == 0) continue;
    if (!s.empty()) s += ", ";
    s += c.name() + " " + std::to_string(c.value());
  }
  return s;
}

void row(std::string& out, const std::string& station, const std::string& runner, const std::string& cadence,
         const std::string& contact, const std::string& knee, const std::string& pfj, const std::string& risk,
         const std::string& steps, const std::string& events) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%-*s %-*s %7s %7s %9s %6s %5s %6s  ", kIdWidth, station.c_str(), kIdWidth,
                runner.c_str(), cadence.c_str(), contact.c_str(), knee.c_str(), pfj.c_str(), risk.c_str(),
                steps.c_str());
  out += buf;
  out += events;
  while (!out.empty() && out.back() == ' ') out.pop_back();
  out += '\n';
}

}  // namespace

StationBoard::Station& StationBoard::station(const v1::Header& header) {
  Station& s = stations_[header.station()];
  if (!header.runner().empty()) s.runner = header.runner();
  return s;
}

void StationBoard::update(TopicKind kind, const google::protobuf::Message& message) {
  switch (kind) {
    case TopicKind::kState: {
      const auto& m = static_cast<const v1::FusedState&>(message);
      Station& s = station(m.header());
      s.knee_angle_rad[0] = m.knee_angle_left_rad();
      s.knee_angle_rad[1] = m.knee_angle_right_rad();
      if (std::isfinite(m.cadence_spm())) s.cadence_spm = m.cadence_spm();
      return;
    }
    case TopicKind::kStep: {
      const auto& m = static_cast<const v1::StepMetrics&>(message);
      Station& s = station(m.header());
      ++s.steps;
      s.contact_time_s = m.contact_time_s();
      s.pfj_stress_mpa = m.peak_pfj_stress_mpa();
      if (std::isfinite(m.cadence_spm())) s.cadence_spm = m.cadence_spm();
      return;
    }
    case TopicKind::kRisk: {
      const auto& m = static_cast<const v1::RiskEvent&>(message);
      Station& s = station(m.header());
      const EventKey key{m.rule_code(), m.side(), m.device_id()};
      if (m.phase() == v1::EVENT_PHASE_CLEAR) {
        s.active.erase(key);
      } else {
        s.active[key] = m.severity();
      }
      std::string text = m.rule_code() + " " + m.rule_name() +
                         (m.phase() == v1::EVENT_PHASE_CLEAR ? " clear" : " onset") + side_name(m.side());
      if (!m.device_id().empty()) text += " (" + m.device_id() + ")";
      s.recent.push_front(std::move(text));
      if (s.recent.size() > kRecentEvents) s.recent.pop_back();
      return;
    }
    case TopicKind::kSession:
      station(static_cast<const v1::SessionSummary&>(message).header());
      return;
    case TopicKind::kStatus:
      status_ = static_cast<const v1::DaemonStatus&>(message);
      return;
    case TopicKind::kUnknown: return;
  }
}

std::string StationBoard::render(const std::string& title) const {
  std::string out = title + "\n\n";
  row(out, "STATION", "RUNNER", "CADENCE", "CONTACT", "KNEE L/R", "PFJ", "RISK", "STEPS", "LATEST EVENTS");
  row(out, "", "", "spm", "ms", "deg", "MPa", "", "", "(newest first)");
  if (stations_.empty()) out += "(no station has published yet)\n";
  for (const auto& [name, s] : stations_) {
    int highest = 0;
    for (const auto& [key, severity] : s.active) highest = severity > highest ? severity : highest;
    std::string events;
    for (const std::string& e : s.recent) events += (events.empty() ? "" : "; ") + e;
    row(out, name, s.runner, fixed(s.cadence_spm, 0), fixed(s.contact_time_s, 0, 1000.0f),
        degrees(s.knee_angle_rad[0]) + "/" + degrees(s.knee_angle_rad[1]), fixed(s.pfj_stress_mpa, 1),
        severity_name(highest), std::to_string(s.steps), events);
  }
  out += '\n';
  if (!status_) {
    out += "daemon: no status heartbeat yet\n";
    return out;
  }
  const v1::DaemonStatus& st = *status_;
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "daemon %s, up %lld s%s: samples %llu, rejected %llu, dropped %llu; frames %llu (%llu accepted); "
                "outputs %llu; devices %u active, %u stale\n",
                st.version().c_str(), static_cast<long long>(st.uptime_s()), st.draining() ? ", DRAINING" : "",
                static_cast<unsigned long long>(st.samples_accepted()),
                static_cast<unsigned long long>(total(st.rejected())),
                static_cast<unsigned long long>(total(st.dropped())),
                static_cast<unsigned long long>(st.frames_received()),
                static_cast<unsigned long long>(st.frames_accepted()),
                static_cast<unsigned long long>(st.outputs_published()), st.active_devices(), st.stale_devices());
  out += buf;
  if (const std::string r = breakdown(st.rejected()); !r.empty()) out += "  rejected: " + r + "\n";
  if (const std::string d = breakdown(st.dropped()); !d.empty()) out += "  dropped: " + d + "\n";
  return out;
}

}  // namespace kneeload::ctl
