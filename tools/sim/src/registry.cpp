// Registry descriptions and the daemon TOML for simulated stations (docs/config.md keys).
#include "kneeload/sim/registry.hpp"

#include <cassert>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <string_view>

namespace kneeload::sim {
namespace {

// deploy/config/kneeloadd.example.toml, EU 42 (123.5 cm²), heel to toe.
constexpr int kCells = 16;
constexpr double kRefFootLengthM = 0.152 * 1.78;
constexpr double kRefArea[kCells] = {8.0, 8.0, 9.0, 9.0, 8.5, 8.5, 6.0, 7.0,
                                     7.5, 7.5, 7.5, 7.5, 9.0, 8.5, 6.5, 5.5};
constexpr double kRefX[kCells] = {0.06, 0.06, 0.17, 0.17, 0.32, 0.45, 0.40, 0.50,
                                  0.63, 0.66, 0.68, 0.68, 0.66, 0.86, 0.88, 0.84};
constexpr double kRefY[kCells] = {0.38, 0.62, 0.35, 0.65, 0.72, 0.75, 0.25, 0.50,
                                  0.82, 0.66, 0.50, 0.34, 0.16, 0.18, 0.42, 0.68};
constexpr CellRegion kRefRegion[kCells] = {
    CellRegion::kHeel,     CellRegion::kHeel,     CellRegion::kHeel,     CellRegion::kHeel,
    CellRegion::kMidfoot,  CellRegion::kMidfoot,  CellRegion::kMidfoot,  CellRegion::kMidfoot,
    CellRegion::kForefoot, CellRegion::kForefoot, CellRegion::kForefoot, CellRegion::kForefoot,
    CellRegion::kForefoot, CellRegion::kToes,     CellRegion::kToes,     CellRegion::kToes};

// TOML basic string; ids are restricted to [A-Za-z0-9_.:-] but shoe ids are free text.
void append_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned>(ch));
      out += esc;
    } else {
      out += ch;
    }
  }
  out += '"';
}

const char* side_text(fusion::Side s) {
  switch (s) {
    case fusion::Side::kLeft: return "left";
    case fusion::Side::kRight: return "right";
    case fusion::Side::kNone: break;
  }
  return "none";
}

const char* kind_text(fusion::SensorKind k) {
  switch (k) {
    case fusion::SensorKind::kInsole: return "insole";
    case fusion::SensorKind::kKnee: return "knee";
    case fusion::SensorKind::kTreadmill: return "treadmill";
    case fusion::SensorKind::kConsole: return "console";
  }
  return "console";
}

}  // namespace

// Shortest text that reads back as the same double, always with a '.' or exponent so TOML
// parses it as a float.
void append_toml_number(std::string& out, double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  assert(r.ec == std::errc{});
  std::string_view text(buf, static_cast<std::size_t>(r.ptr - buf));
  out += text;
  if (text.find_first_of(".eE") == std::string_view::npos) out += ".0";
}

void append_toml_array(std::string& out, const double* v, int n) {
  out += '[';
  for (int i = 0; i < n; ++i) {
    if (i > 0) out += ", ";
    append_toml_number(out, v[i]);
  }
  out += ']';
}

InsoleLayout default_insole_layout(double foot_length_m) {
  InsoleLayout l;
  l.cell_count = kCells;
  const double scale = (foot_length_m / kRefFootLengthM) * (foot_length_m / kRefFootLengthM);
  for (int i = 0; i < kCells; ++i) {
    const auto k = static_cast<std::size_t>(i);
    l.area_cm2[k] = std::round(kRefArea[i] * scale * 100.0) / 100.0;
    l.x_norm[k] = kRefX[i];
    l.y_norm[k] = kRefY[i];
    l.region[k] = kRefRegion[i];
  }
  return l;
}

fusion::InsoleGeometry insole_geometry(const InsoleLayout& layout, double force_gain) {
  fusion::InsoleGeometry g;
  g.cell_count = layout.cell_count;
  for (int i = 0; i < layout.cell_count; ++i) {
    const auto k = static_cast<std::size_t>(i);
    g.area_m2[k] = layout.area_cm2[k] / 1e4;  // as daemon/config.cpp: division, not × 1e-4
    g.x_norm[k] = layout.x_norm[k];
    g.y_norm[k] = layout.y_norm[k];
  }
  g.force_gain = force_gain;
  return g;
}

StationIds station_ids(int n) {
  char station[16];
  char runner[16];
  std::snprintf(station, sizeof station, "st%02d", n);
  std::snprintf(runner, sizeof runner, "r%02d", n);
  return {station, runner};
}

std::vector<DeviceDescription> describe_devices(const SimConfig& config, const StationIds& ids) {
  std::vector<DeviceDescription> out;
  const InsoleLayout layout = default_insole_layout(foot_length_m(config.runner));
  const auto add = [&](fusion::DeviceRole role, fusion::SensorKind kind, fusion::Side side,
                       const char* suffix) {
    DeviceDescription d;
    d.id = ids.station + "-" + suffix;
    d.role = role;
    d.kind = kind;
    d.side = side;
    if (kind == fusion::SensorKind::kInsole) {
      d.layout = layout;
      d.force_gain = config.registry_force_gain;
    }
    out.push_back(d);
  };
  using fusion::DeviceRole;
  using fusion::SensorKind;
  using fusion::Side;
  if (config.insole.enabled) {
    add(DeviceRole::kInsoleLeft, SensorKind::kInsole, Side::kLeft, "insole-L");
    add(DeviceRole::kInsoleRight, SensorKind::kInsole, Side::kRight, "insole-R");
  }
  if (config.knee.enabled) {
    add(DeviceRole::kKneeLeft, SensorKind::kKnee, Side::kLeft, "knee-L");
    add(DeviceRole::kKneeRight, SensorKind::kKnee, Side::kRight, "knee-R");
  }
  if (config.treadmill.enabled) {
    add(DeviceRole::kTreadmill, SensorKind::kTreadmill, Side::kNone, "treadmill");
  }
  if (config.console.enabled) {
    add(DeviceRole::kConsole, SensorKind::kConsole, Side::kNone, "console");
  }
  return out;
}

fusion::SessionConfig session_config(const SimConfig& config, std::uint32_t runner,
                                     std::uint32_t station) {
  fusion::SessionConfig c;
  c.runner = runner;
  c.station = station;
  c.runner_params.body_mass_kg = config.runner.body_mass_kg;
  c.runner_params.height_m = config.runner.height_m;
  const InsoleLayout layout = default_insole_layout(foot_length_m(config.runner));
  c.insoles[0] = insole_geometry(layout, config.registry_force_gain);
  c.insoles[1] = insole_geometry(layout, config.registry_force_gain);
  // The simulated IMUs are strapped with sensor z along world +z (docs/model-conventions.md),
  // so both hinge axes are the defaults; their positions relative to the knee are the
  // simulator's: the thigh sensor thigh_sensor_frac of the way from hip to knee (so above the
  // knee by the rest), the shank sensor shank_sensor_frac of the shank below the knee.
  fusion::KneeImuAxes axes;
  axes.thigh_sensor_m = {0.0, (1.0 - config.knee.thigh_sensor_frac) * thigh_length_m(config.runner), 0.0};
  axes.shank_sensor_m = {0.0, -config.knee.shank_sensor_frac * shank_length_m(config.runner), 0.0};
  c.knees[0] = axes;
  c.knees[1] = axes;
  c.model.insole_width_m = foot_width_m(config.runner);
  return c;
}

std::string registry_toml(std::span<const SimConfig> runners) {
  std::string out;
  out += "# Simulated stations (tools/sim): one runner per station.\n";
  for (std::size_t i = 0; i < runners.size(); ++i) {
    const SimConfig& c = runners[i];
    const StationIds ids = station_ids(static_cast<int>(i + 1));
    out += "\n[[runners]]\nid = ";
    append_string(out, ids.runner);
    out += "\nbody_mass_kg = ";
    append_toml_number(out, c.runner.body_mass_kg);
    out += "\nheight_m = ";
    append_toml_number(out, c.runner.height_m);
    out += "\nshoe_id = ";
    append_string(out, c.shoe_id);
    out += "\nshoe_km = ";
    append_toml_number(out, c.shoe_km);
    out += "\n";
  }
  for (std::size_t i = 0; i < runners.size(); ++i) {
    const StationIds ids = station_ids(static_cast<int>(i + 1));
    for (const DeviceDescription& d : describe_devices(runners[i], ids)) {
      out += "\n[[devices]]\nid = ";
      append_string(out, d.id);
      out += "\nstation = ";
      append_string(out, ids.station);
      out += "\nrunner = ";
      append_string(out, ids.runner);
      out += "\nkind = ";
      append_string(out, kind_text(d.kind));
      if (d.side != fusion::Side::kNone) {
        out += "\nside = ";
        append_string(out, side_text(d.side));
      }
      if (d.kind == fusion::SensorKind::kInsole) {
        out += "\ncell_areas_cm2 = ";
        append_toml_array(out, d.layout.area_cm2.data(), d.layout.cell_count);
        out += "\ncell_x = ";
        append_toml_array(out, d.layout.x_norm.data(), d.layout.cell_count);
        out += "\ncell_y = ";
        append_toml_array(out, d.layout.y_norm.data(), d.layout.cell_count);
        out += "\nforce_gain = ";
        append_toml_number(out, d.force_gain);
      } else if (d.kind == fusion::SensorKind::kKnee) {
        out += "\nthigh_axis = ";
        append_toml_array(out, d.axes.thigh_axis.data(), 3);
        out += "\nshank_axis = ";
        append_toml_array(out, d.axes.shank_axis.data(), 3);
      }
      out += "\n";
    }
  }
  return out;
}

}  // namespace kneeload::sim
