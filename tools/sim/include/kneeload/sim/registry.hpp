// The simulated station as the daemon's registry sees it: device ids, kinds, sides, insole cell
// tables and knee axes. Builds the fusion::SessionConfig for a simulated runner and writes the
// [[runners]]/[[devices]] part of a daemon TOML config (docs/config.md) for N stations.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kneeload/fusion/sample.hpp"
#include "kneeload/fusion/session.hpp"
#include "kneeload/sim/params.hpp"

namespace kneeload::sim {

enum class CellRegion : std::uint8_t { kHeel = 0, kMidfoot, kForefoot, kToes };

// A 16-cell Moticon-like insole (the layout of deploy/config/kneeloadd.example.toml): 4 heel,
// 2 lateral midfoot, medial arch, central midfoot, 5 metatarsal heads (lateral to medial),
// hallux, two lesser toes. Positions normalised (0 heel .. 1 toe, 0 medial .. 1 lateral), so one
// table serves both feet.
struct InsoleLayout {
  int cell_count = 0;
  std::array<double, fusion::kMaxInsoleCells> area_cm2{};
  std::array<double, fusion::kMaxInsoleCells> x_norm{};
  std::array<double, fusion::kMaxInsoleCells> y_norm{};
  std::array<CellRegion, fusion::kMaxInsoleCells> region{};
};

// The layout for a foot of this length: areas scale with length² from 123.5 cm² at 0.2706 m
// (EU 42), rounded to 0.01 cm² so the TOML text is short and exact.
InsoleLayout default_insole_layout(double foot_length_m);

// The registry geometry: area_m2 = area_cm2 / 1e4, exactly as the daemon's loader divides.
fusion::InsoleGeometry insole_geometry(const InsoleLayout& layout, double force_gain);

// Ids used for one station: station "st01", runner "r01".
struct StationIds {
  std::string station = "st01";
  std::string runner = "r01";
};
// The conventional ids for the n-th station (n >= 1): "st%02d", "r%02d".
StationIds station_ids(int n);

struct DeviceDescription {
  std::string id;  // "st01-insole-L", "st01-knee-R", "st01-treadmill", "st01-console"
  fusion::DeviceRole role = fusion::DeviceRole::kInsoleLeft;
  fusion::SensorKind kind = fusion::SensorKind::kInsole;
  fusion::Side side = fusion::Side::kNone;
  InsoleLayout layout;             // insoles only
  double force_gain = 1.0;         // insoles only
  fusion::KneeImuAxes axes;        // knees only
};

// The enabled devices of a simulated runner, in DeviceRole order.
std::vector<DeviceDescription> describe_devices(const SimConfig& config, const StationIds& ids);

// The SessionConfig the fusion needs for this simulated runner: body mass and height, insole
// geometry per side, knee axes, model defaults.
fusion::SessionConfig session_config(const SimConfig& config, std::uint32_t runner,
                                     std::uint32_t station);

// [[runners]] and [[devices]] tables for runners[i] on station station_ids(i + 1), ready to
// append to a daemon config (the other tables keep their defaults).
std::string registry_toml(std::span<const SimConfig> runners);

// TOML values as the config writers write them (registry_toml, kneeloadctl load --print-config):
// the shortest text that reads back as the same double, always with a '.' or an exponent so that
// TOML reads a float; an array of n of them.
void append_toml_number(std::string& out, double v);
void append_toml_array(std::string& out, const double* v, int n);

}  // namespace kneeload::sim
