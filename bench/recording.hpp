// The recorded runner both fusion_bench and fusion_count fuse: the simulator's healthy runner
// (seed 7, 300 s, knees 200 Hz, insoles 100 Hz, treadmill 10 Hz), rendered once up front so the
// figures measure fusion only, and its streams per sensor kind.
#pragma once

#include <vector>

#include "kneeload/fusion/sample.hpp"
#include "kneeload/fusion/session.hpp"
#include "kneeload/sim/registry.hpp"
#include "kneeload/sim/simulator.hpp"

namespace kneeload::bench {

struct Recording {
  sim::SimConfig config;
  std::vector<fusion::Sample> samples;  // arrival order, every device
};

inline const Recording& healthy_runner() {
  static const Recording r = [] {
    Recording rec;
    rec.config.seed = 7;
    rec.config.duration_s = 300.0;
    rec.config.knee.rate_hz = 200.0;  // the defaults, said here: knees 200 Hz, insoles 100 Hz
    rec.config.insole.rate_hz = 100.0;
    sim::Simulator simulator(rec.config);
    fusion::Sample s;
    while (simulator.next(s)) rec.samples.push_back(s);
    return rec;
  }();
  return r;
}

// The stream one sensor kind's figure is measured on: that kind's samples plus the treadmill's
// (the belt speed is an input of gait and calibration), in arrival order. nullptr: every sample
// of the runner. The knee stream exercises the knee filters alone; the insole stream the force
// filter, calibration, gait events, load model, trends and rules.
inline std::vector<fusion::Sample> stream_of(const Recording& rec, const fusion::SensorKind* kind) {
  std::vector<fusion::Sample> stream;
  for (const fusion::Sample& s : rec.samples) {
    if (kind == nullptr || s.kind == *kind || s.kind == fusion::SensorKind::kTreadmill) {
      stream.push_back(s);
    }
  }
  return stream;
}

inline fusion::SessionConfig session_config(const Recording& rec) {
  return sim::session_config(rec.config, 0, 0);
}

}  // namespace kneeload::bench
