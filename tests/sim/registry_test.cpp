// Registry description, SessionConfig and the daemon TOML for simulated stations.
#include "kneeload/sim/registry.hpp"

#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <string>
#include <vector>

namespace kneeload::sim {
namespace {

using fusion::DeviceRole;
using fusion::SensorKind;
using fusion::Side;

TEST(Registry, DefaultInsoleLayoutIsAPlausibleSixteenCellInsole) {
  const InsoleLayout l = default_insole_layout(0.152 * 1.78);
  ASSERT_EQ(l.cell_count, 16);
  double total = 0.0;
  int midfoot = 0;
  for (int i = 0; i < l.cell_count; ++i) {
    const auto k = static_cast<std::size_t>(i);
    total += l.area_cm2[k];
    EXPECT_GT(l.area_cm2[k], 0.0);
    EXPECT_GE(l.x_norm[k], 0.0);
    EXPECT_LE(l.x_norm[k], 1.0);
    EXPECT_GE(l.y_norm[k], 0.0);
    EXPECT_LE(l.y_norm[k], 1.0);
    if (l.region[k] == CellRegion::kMidfoot) ++midfoot;
  }
  EXPECT_NEAR(total, 123.5, 1e-9);  // the example config's EU 42 insole
  EXPECT_EQ(midfoot, 4);
  // Smaller feet, smaller cells: area scales with length².
  const InsoleLayout small = default_insole_layout(0.152 * 1.78 * 0.9);
  double small_total = 0.0;
  for (int i = 0; i < 16; ++i) small_total += small.area_cm2[static_cast<std::size_t>(i)];
  EXPECT_NEAR(small_total, 123.5 * 0.81, 0.1);
  EXPECT_GT(small_total, 95.0);
}

TEST(Registry, DescribesEveryEnabledDeviceWithConventionalIds) {
  SimConfig c;
  const auto d = describe_devices(c, station_ids(3));
  ASSERT_EQ(d.size(), 6u);
  const char* ids[] = {"st03-insole-L", "st03-insole-R", "st03-knee-L",
                       "st03-knee-R",   "st03-treadmill", "st03-console"};
  for (std::size_t i = 0; i < d.size(); ++i) {
    EXPECT_EQ(d[i].id, ids[i]);
    EXPECT_EQ(d[i].role, static_cast<DeviceRole>(i));
    EXPECT_EQ(fusion::role_of(d[i].kind, d[i].side), d[i].role);
  }
  EXPECT_EQ(d[0].layout.cell_count, 16);
  EXPECT_EQ(d[2].axes.thigh_axis, (std::array<double, 3>{0.0, 0.0, 1.0}));
  c.knee.enabled = false;
  c.treadmill.enabled = false;
  EXPECT_EQ(describe_devices(c, station_ids(1)).size(), 3u);
}

TEST(Registry, SessionConfigCarriesBodyGeometryAndAxes) {
  SimConfig c;
  c.runner.body_mass_kg = 81.0;
  c.runner.height_m = 1.86;
  const fusion::SessionConfig sc = session_config(c, 4, 9);
  EXPECT_EQ(sc.runner, 4u);
  EXPECT_EQ(sc.station, 9u);
  EXPECT_EQ(sc.runner_params.body_mass_kg, 81.0);
  EXPECT_EQ(sc.runner_params.height_m, 1.86);
  const InsoleLayout l = default_insole_layout(foot_length_m(c.runner));
  for (const fusion::InsoleGeometry& g : sc.insoles) {
    ASSERT_EQ(g.cell_count, 16);
    for (std::size_t i = 0; i < 16; ++i) {
      EXPECT_EQ(g.area_m2[i], l.area_cm2[i] / 1e4);  // bit for bit as the daemon loads it
      EXPECT_EQ(g.x_norm[i], l.x_norm[i]);
    }
    EXPECT_EQ(g.force_gain, 1.0);
  }
}

// The value text of `key = ...` in the n-th table that has it.
std::string value_of(const std::string& toml, const std::string& key, int nth) {
  std::size_t pos = 0;
  for (int i = 0; i <= nth; ++i) {
    pos = toml.find("\n" + key + " = ", pos);
    if (pos == std::string::npos) return "";
    pos += key.size() + 4;
  }
  return toml.substr(pos, toml.find('\n', pos) - pos);
}

std::vector<double> numbers_in(const std::string& text) {
  std::vector<double> out;
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    if ((*p >= '0' && *p <= '9') || *p == '-') {
      double v = 0.0;
      const auto r = std::from_chars(p, end, v);
      out.push_back(v);
      p = r.ptr;
    } else {
      ++p;
    }
  }
  return out;
}

TEST(Registry, TomlListsRunnersAndDevicesForEachStation) {
  std::vector<SimConfig> runners(2);
  runners[1].runner.body_mass_kg = 58.5;
  runners[1].runner.height_m = 1.64;
  runners[1].shoe_id = "worn \"pair\"";
  runners[1].shoe_km = 712.5;
  const std::string toml = registry_toml(runners);
  std::size_t devices = 0;
  for (std::size_t p = toml.find("[[devices]]"); p != std::string::npos;
       p = toml.find("[[devices]]", p + 1)) {
    ++devices;
  }
  EXPECT_EQ(devices, 12u);
  EXPECT_EQ(value_of(toml, "id", 0), "\"r01\"");
  EXPECT_EQ(value_of(toml, "id", 1), "\"r02\"");
  EXPECT_EQ(value_of(toml, "body_mass_kg", 1), "58.5");
  EXPECT_EQ(value_of(toml, "height_m", 0), "1.75");
  EXPECT_EQ(value_of(toml, "shoe_id", 1), "\"worn \\\"pair\\\"\"");
  EXPECT_EQ(value_of(toml, "shoe_km", 0), "0.0");  // always a float literal
  EXPECT_EQ(value_of(toml, "id", 2), "\"st01-insole-L\"");
  EXPECT_EQ(value_of(toml, "station", 6), "\"st02\"");
  EXPECT_EQ(value_of(toml, "runner", 6), "\"r02\"");
  EXPECT_EQ(value_of(toml, "kind", 4), "\"treadmill\"");
  EXPECT_EQ(value_of(toml, "side", 3), "\"right\"");  // st01-knee-R
  EXPECT_EQ(value_of(toml, "thigh_axis", 0), "[0.0, 0.0, 1.0]");
  // Cell tables read back to the exact doubles of the layout.
  const InsoleLayout l = default_insole_layout(foot_length_m(runners[1].runner));
  const std::vector<double> areas = numbers_in(value_of(toml, "cell_areas_cm2", 2));
  const std::vector<double> xs = numbers_in(value_of(toml, "cell_x", 2));
  ASSERT_EQ(areas.size(), 16u);
  ASSERT_EQ(xs.size(), 16u);
  for (std::size_t i = 0; i < 16; ++i) {
    EXPECT_EQ(areas[i], l.area_cm2[i]);
    EXPECT_EQ(xs[i], l.x_norm[i]);
  }
}

}  // namespace
}  // namespace kneeload::sim
