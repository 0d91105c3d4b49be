// Proves the hot-path claim of kalman.hpp and filters.hpp: after construction, predict/update of
// every filter performs no heap allocation. This binary replaces the global allocation
// functions with counting ones; it is its own test binary so no other test runs with them.
//
// Eigen allocates through std::malloc, not operator new, so on glibc builds without a sanitizer
// malloc/calloc/realloc are interposed and counted too (forwarding to glibc's own entry points;
// a sanitizer runtime owns malloc, so there the operator new count stands alone).
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <new>
#include <utility>

#include "kneeload/fusion/filters.hpp"
#include "kneeload/fusion/kalman.hpp"
#include "counting_new.hpp"

namespace kneeload::fusion {
namespace {

using Allocations = alloc_count::Calls;
using alloc_count::count_calls;

constexpr int kUpdates = 100'000;
constexpr double kG = 9.80665;

void* volatile g_sink = nullptr;

TEST(AllocationCounter, SeesOperatorNewAndMalloc) {
  const Allocations a = count_calls([] {
    int* p = new int(3);
    g_sink = p;
    delete p;
    void* m = std::malloc(64);
    g_sink = m;
    std::free(m);
  });
  EXPECT_EQ(a.news, 1u) << "the replaced operator new is not in use";
  if (alloc_count::counts_malloc()) {
    EXPECT_GE(a.mallocs, 2u) << "malloc is not interposed (operator new forwards to it too)";
  }
}

// Deterministic, cheap inputs: a swinging leg rendered as in filters_test.cpp, a NaN and an
// impact now and then so the rejection paths run too.
Imu6 imu_at(double angle, double rate, bool corrupt) {
  Imu6 m{};
  m.accel_mps2[0] = static_cast<float>(kG * std::sin(angle));
  m.accel_mps2[1] = static_cast<float>(kG * std::cos(angle));
  m.gyro_radps[2] = static_cast<float>(rate);
  if (corrupt) m.gyro_radps[2] = std::numeric_limits<float>::quiet_NaN();
  return m;
}

TEST(FiltersAllocation, NoHeapAllocationInAnyFilterUpdate) {
  KneeAngleFilter knee;
  ShankTiltFilter shank;
  ForceFilter force;
  ForceCalibration calibration;
  const KneeJointAxes axes;
  const double dt = 0.005;

  const Allocations knee_allocs = count_calls([&] {
    for (int k = 0; k < kUpdates; ++k) {
      const double t = k * dt, w = 2.0 * 3.14159265 * 1.4;
      const Imu6 th = imu_at(0.2 + 0.35 * std::sin(w * t), 0.35 * w * std::cos(w * t), false);
      const Imu6 sh = imu_at(0.5 * std::sin(w * t - 1.0), -0.5 * w * std::cos(w * t - 1.0),
                             k % 997 == 0);
      knee.on_imu_pair(th, sh, axes, k % 5000 == 4999 ? 2.0 : dt, k % 40 != 0);
      if (k % 2 == 0) knee.update_sleeve_angle(knee.angle_rad() + 0.01);
    }
  });
  const Allocations shank_allocs = count_calls([&] {
    for (int k = 0; k < kUpdates; ++k) {
      const double t = k * dt, w = 2.0 * 3.14159265 * 1.4;
      const Imu6 sh = imu_at(0.5 * std::sin(w * t), -0.5 * w * std::cos(w * t), k % 997 == 0);
      shank.on_imu(sh, axes.shank, dt, k % 40 != 0);
    }
  });
  const Allocations force_allocs = count_calls([&] {
    for (int k = 0; k < kUpdates; ++k) {
      const double u = std::fmod(k * 0.01, 0.706) / 0.25;
      force.predict(0.01);
      if (u < 1.0) {
        force.update(2.5 * std::sin(3.14159265 * u) + (k % 1001 == 0 ? 20.0 : 0.0));
      } else {
        force.update_swing();
      }
    }
  });
  const Allocations calibration_allocs = count_calls([&] {
    for (int k = 0; k < kUpdates; ++k) {
      calibration.add_sample(k % 70 < 25 ? 1.6 : 0.0, 0.01);
      if (k % 70 == 69) calibration.end_stride(0.70, true);
    }
  });

  std::printf("[measured] %d updates per filter; operator new / malloc calls: knee %llu/%llu, "
              "shank %llu/%llu, force %llu/%llu, calibration %llu/%llu%s\n",
              kUpdates, static_cast<unsigned long long>(knee_allocs.news),
              static_cast<unsigned long long>(knee_allocs.mallocs),
              static_cast<unsigned long long>(shank_allocs.news),
              static_cast<unsigned long long>(shank_allocs.mallocs),
              static_cast<unsigned long long>(force_allocs.news),
              static_cast<unsigned long long>(force_allocs.mallocs),
              static_cast<unsigned long long>(calibration_allocs.news),
              static_cast<unsigned long long>(calibration_allocs.mallocs),
              alloc_count::counts_malloc() ? "" : " (malloc not counted under a sanitizer)");
  for (const auto& [name, a] : {std::pair{"knee", knee_allocs}, std::pair{"shank", shank_allocs},
                                std::pair{"force", force_allocs},
                                std::pair{"calibration", calibration_allocs}}) {
    EXPECT_EQ(a.news, 0u) << name << ": expected no operator new, got " << a.news;
    EXPECT_EQ(a.mallocs, 0u) << name << ": expected no malloc, got " << a.mallocs;
  }
  // The rejection paths really ran.
  EXPECT_GT(knee.counters().gyro.non_finite, 0u);
  EXPECT_GT(knee.counters().predict.dt_clamped, 0u);
  EXPECT_GT(shank.counters().predict.non_finite, 0u);
  EXPECT_GT(force.counters().force.gated, 0u);
  EXPECT_GT(calibration.counters().updated, 0u);
  EXPECT_GE(knee.counters().gyro.accepted, static_cast<std::uint64_t>(kUpdates) - 200u);
}

}  // namespace
}  // namespace kneeload::fusion
