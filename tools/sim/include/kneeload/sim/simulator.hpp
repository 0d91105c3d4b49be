// Simulator: renders one simulated runner into exactly what its devices send (16-cell insoles,
// thigh/shank IMU pairs or a knee sleeve, treadmill, console), with ground truth, deterministic
// from SimConfig::seed (MODEL.md §10).
//
// Use:
//   sim::SimConfig cfg;                       // healthy runner, 30 min
//   cfg.plan = sim::make_scenario(sim::Scenario::kFatigue, cfg.runner);
//   sim::Simulator s(cfg);
//   fusion::Sample x; sim::SampleInfo info;
//   while (s.next(x, &info)) { ... }          // all devices, merged in arrival order
//
// Clocks: the true clock is also the daemon clock: arrival_t_us = true sample time of the
// frame's last sample + latency. Each device stamps device_t_us with its own clock (offset,
// drift, scripted jumps). Truth is on the true clock.
//
// Thread ownership: one thread. Contract: after construction, next() and the truth queries
// perform no heap allocation, no I/O, and read no clock; the same config gives the same stream
// bit for bit (noise is counter-based, so duplicated frames repeat their samples exactly).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>

#include "kneeload/fusion/sample.hpp"
#include "kneeload/fusion/session.hpp"
#include "kneeload/sim/params.hpp"
#include "kneeload/sim/truth.hpp"

namespace kneeload::sim {

// Registry indices stamped on samples, one per DeviceRole (kInsoleLeft .. kConsole).
struct DeviceIndices {
  std::array<std::uint32_t, fusion::kDeviceRoleCount> device{0, 1, 2, 3, 4, 5};
  std::uint32_t runner = 0;
  std::uint32_t station = 0;
};

class Simulator {
 public:
  // Throws std::invalid_argument with validate()'s message if the config is unusable (start-up
  // only). Renders the step schedule and per-step truth for the whole session up front: about
  // 1.5 ms per simulated minute.
  explicit Simulator(const SimConfig& config, const DeviceIndices& indices = {});
  ~Simulator();
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  // The next sample of any device in arrival order (ties: DeviceRole order; a frame's samples
  // are consecutive). Returns false once every device is exhausted. `info` may be null.
  bool next(fusion::Sample& out, SampleInfo* info = nullptr);

  // Step truths in order whose toe-off is at or before the arrival time of the last sample
  // next() returned (all of them once next() has returned false). Returns false if none is due.
  bool next_step_truth(StepTruth& out);
  // Every step of the session (reported from the end of the start blend), known up front.
  std::span<const StepTruth> step_truths() const;

  // Continuous truth of one leg at a true time; outside the session the edge pose is held.
  // REQUIRES: side is kLeft or kRight.
  LegTruth truth_at(fusion::Side side, std::int64_t true_t_us) const;
  // The scheduled parameters at a true time (drift applied, no stride variability).
  RunnerParams params_at(std::int64_t true_t_us) const;
  double belt_speed_mps(std::int64_t true_t_us) const;
  double incline_fraction(std::int64_t true_t_us) const;

  // Session landmarks on the true clock.
  std::int64_t start_t_us() const;    // session start (the config's start_t_us)
  std::int64_t running_t_us() const;  // end of the start blend: truth steps begin here
  std::int64_t onset_t_us() const;    // scenario drift begins (end of baseline)
  std::int64_t end_t_us() const;      // start + duration

  const ClockTruth& clock(fusion::DeviceRole role) const;
  // Device clock reading at a true time, including scripted clock jumps.
  std::int64_t device_time_us(fusion::DeviceRole role, std::int64_t true_t_us) const;
  // Whole-insole calibration gain actually applied: measured ΣpA = gain · true force.
  double insole_gain(fusion::Side side) const;
  std::span<const FaultTruth> faults() const;
  const SimConfig& config() const;
  std::uint64_t samples_emitted() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kneeload::sim
