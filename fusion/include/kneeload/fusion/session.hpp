// RunnerSession: everything the model knows about one runner, fed one sample at a time.
// Thread ownership: one fusion worker thread owns a session for its whole life; no locking.
// Contract: on_sample() performs no heap allocation, no I/O and reads no clock, so the same
// input sequence yields the same outputs bit for bit (deterministic replay).
#pragma once

#include <array>
#include <cstdint>
#include <limits>

#include "kneeload/fusion/output.hpp"
#include "kneeload/fusion/sample.hpp"

namespace kneeload::fusion {

inline constexpr double kGravityMps2 = 9.80665;

struct RunnerParams {
  double body_mass_kg = 70.0;
  double height_m = 1.75;
};

// Geometry of one insole's pressure cells (MODEL.md §1): areas and normalised positions.
struct InsoleGeometry {
  int cell_count = 0;
  std::array<double, kMaxInsoleCells> area_m2{};
  std::array<double, kMaxInsoleCells> x_norm{};  // 0 heel .. 1 toe, along the insole
  std::array<double, kMaxInsoleCells> y_norm{};  // 0 medial .. 1 lateral
  double force_gain = 1.0;  // static calibration gain on ΣpA
};

// Hinge-axis directions of a thigh/shank IMU pair in each sensor's own frame (MODEL.md §2).
struct KneeImuAxes {
  std::array<double, 3> thigh_axis{0.0, 0.0, 1.0};
  std::array<double, 3> shank_axis{0.0, 0.0, 1.0};
};

// Model defaults from MODEL.md; every one is a config key (see the example config).
struct ModelParams {
  double state_rate_hz = 50.0;          // FusedState decimation on the runner's clock
  double contact_threshold_n = 40.0;    // MODEL.md §1: IC/TO at max(40 N, 5 % BW)
  double contact_threshold_bw = 0.05;
  double contact_hysteresis = 0.8;      // toe-off below this fraction of the onset threshold
  double refractory_s = 0.150;          // MODEL.md §1: ≥150 ms between contacts of one foot
  double session_idle_end_s = 30.0;     // no steps this long (runner's clock) ends the session
  int pain_high_score = 3;              // MODEL.md §9 R10: knee pain ≥3/10 → high
};

// Which device slot of the runner a sample feeds. The registry decides; the wire cannot.
enum class DeviceRole : std::uint8_t {
  kInsoleLeft = 0,
  kInsoleRight = 1,
  kKneeLeft = 2,
  kKneeRight = 3,
  kTreadmill = 4,
  kConsole = 5,
};
inline constexpr int kDeviceRoleCount = 6;
DeviceRole role_of(SensorKind kind, Side side);

struct SessionConfig {
  std::uint32_t runner = 0;
  std::uint32_t station = 0;
  RunnerParams runner_params;
  ModelParams model;
  std::array<InsoleGeometry, 2> insoles;  // [left, right]
  std::array<KneeImuAxes, 2> knees;       // [left, right]
};

// Counters a session keeps for metrics; plain integers, read by the owning thread only.
struct SessionCounters {
  std::uint64_t samples = 0;
  std::uint64_t steps = 0;
  std::uint64_t risk_events = 0;
  std::uint64_t output_overflow = 0;
  std::uint64_t state_out_of_order = 0;  // samples older than the last published state
};

class RunnerSession {
 public:
  explicit RunnerSession(const SessionConfig& config);

  // REQUIRES: sample.runner == config.runner. Appends 0..kSessionOutputCapacity outputs.
  void on_sample(const Sample& sample, SessionOutputs& out);

  // A device of this runner went silent (stale == true) or came back; the caller reports edges.
  // Emits a sensor-fault onset or clear whose t_us is last_t_us() (the runner's clock), or 0
  // before any sample.
  void on_device_stale(std::uint32_t device, Side side, SensorKind kind, bool stale,
                       SessionOutputs& out);

  // Shutdown or removal: emit the session summary if a session is open.
  void finish(SessionOutputs& out);

  // Reload: new parameters and calibration; the open session and its totals are kept.
  void reconfigure(const SessionConfig& config);

  const SessionConfig& config() const { return config_; }
  const SessionCounters& counters() const { return counters_; }
  // The latest (largest) device time seen in any sample; INT64_MIN before the first.
  std::int64_t last_t_us() const { return last_t_us_; }

 private:
  static constexpr std::int64_t kNoTime = std::numeric_limits<std::int64_t>::min();

  struct FootState {
    bool in_contact = false;
    double last_force_n = 0.0;  // the previous insole sample's force (interpolation)
    std::int64_t last_t_us = kNoTime;  // time of the latest insole sample of this foot
    std::int64_t ic_t_us = 0;          // initial contact of the stance in progress
    std::int64_t last_ic_t_us = kNoTime;
    std::int64_t last_to_t_us = kNoTime;
    double peak_force_n = 0.0;
    double strike_index_pct = std::numeric_limits<double>::quiet_NaN();
    double knee_ic_rad = std::numeric_limits<double>::quiet_NaN();
    double knee_peak_rad = std::numeric_limits<double>::quiet_NaN();
    double force_n = std::numeric_limits<double>::quiet_NaN();
    double step_time_s = std::numeric_limits<double>::quiet_NaN();    // fixed at IC
    double flight_time_s = std::numeric_limits<double>::quiet_NaN();  // fixed at IC
  };

  // Latest two knee-sleeve angles of one side, to interpolate the angle at an IC.
  struct KneeTrack {
    std::int64_t t_us = kNoTime;
    std::int64_t prev_t_us = kNoTime;
    double prev_angle_rad = std::numeric_limits<double>::quiet_NaN();
  };

  void on_insole(const Sample& s, const InsoleSample& in, SessionOutputs& out);
  void on_knee(const Sample& s, const KneeSample& k);
  void on_treadmill(const Sample& s, const TreadmillSample& t);
  void on_pain(const Sample& s, const PainReport& p, SessionOutputs& out);
  void start_contact(int foot, std::int64_t ic_t_us, double force_n, double x_cop);
  void end_contact(const Sample& s, int foot, std::int64_t to_t_us, SessionOutputs& out);
  double knee_angle_at(int side, std::int64_t t_us) const;
  void maybe_emit_state(const Sample& s, SessionOutputs& out);
  void maybe_end_idle(const Sample& s, SessionOutputs& out);
  void emit(const Output& o, SessionOutputs& out);
  void close_session(const Sample* cause, bool explicit_end, SessionOutputs& out);
  std::int64_t state_due_t_us(std::int64_t k) const;
  double body_weight_n() const;

  SessionConfig config_;
  SessionCounters counters_;
  std::array<FootState, 2> feet_{};
  std::array<double, 2> knee_angle_rad_{std::numeric_limits<double>::quiet_NaN(),
                                        std::numeric_limits<double>::quiet_NaN()};
  std::array<KneeTrack, 2> knee_track_{};
  double belt_speed_mps_ = std::numeric_limits<double>::quiet_NaN();
  double incline_fraction_ = std::numeric_limits<double>::quiet_NaN();
  std::int64_t last_treadmill_t_us_ = kNoTime;
  double cadence_spm_ = std::numeric_limits<double>::quiet_NaN();
  std::int64_t last_any_ic_t_us_ = kNoTime;
  std::int64_t last_t_us_ = kNoTime;
  // FusedState grid: due times origin + round(k / state_rate_hz), k = 1, 2, ...
  std::int64_t state_origin_t_us_ = kNoTime;
  std::int64_t state_k_ = 0;
  std::int64_t next_state_t_us_ = kNoTime;
  std::int64_t last_state_t_us_ = kNoTime;
  bool pain_active_ = false;

  // The open session (MODEL.md §4 totals; the full load model arrives with issue 3).
  bool session_open_ = false;
  std::int64_t session_start_t_us_ = 0;
  std::int64_t last_step_t_us_ = 0;
  std::uint64_t session_steps_ = 0;
  double session_distance_m_ = 0.0;
  double pending_distance_m_ = 0.0;  // belt travel since the last step, not yet committed
  std::uint32_t session_events_ = 0;
};

}  // namespace kneeload::fusion
