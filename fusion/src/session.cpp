// RunnerSession: the model of MODEL.md §1-§9 for one runner, in the order of the file comment
// in session.hpp.
//
// Why the code looks the way it does:
// - No heap after construction, no I/O, no clock: outputs are built in a local, zero-filled
//   Output (so padding bytes are zero and replays compare equal byte for byte) and streamed
//   to the caller's sink.
// - Time is the aligned clock (RunnerClock): every device of the runner on one time base, in
//   order. The raw device time stays in the Sample for reference.
// - Gait events come from the calibrated insole force itself, not from the vGRF filter's state:
//   the filter's role is to gate outliers (a cell spike must not make a phantom step) and to
//   publish a smooth force and its rate; IC/TO interpolation on the measured force is what
//   MODEL.md §1 validates (Blades 2023).
#include "kneeload/fusion/session.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>

#include <Eigen/Geometry>

namespace kneeload::fusion {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kUsPerS = 1e6;
constexpr std::int64_t kNoTime = std::numeric_limits<std::int64_t>::min();


double seconds(std::int64_t dt_us) { return static_cast<double>(dt_us) / kUsPerS; }

// Linear sub-sample interpolation (MODEL.md §1): the time at which the straight line from
// (t0, f0) to (t1, f1) crosses `level`, rounded to the microsecond and kept within [t0, t1].
std::int64_t crossing_t_us(std::int64_t t0, double f0, std::int64_t t1, double f1, double level) {
  double frac = (f1 == f0) ? 1.0 : (level - f0) / (f1 - f0);
  frac = std::clamp(frac, 0.0, 1.0);
  return t0 + std::llround(frac * static_cast<double>(t1 - t0));
}

// A zero-filled Output carrying a value-initialised (hence zero-padded) body of type T.
template <class T>
T& begin_output(Output& o, const SessionConfig& config, std::int64_t arrival_t_us,
                std::int64_t release_t_us) {
  std::memset(static_cast<void*>(&o), 0, sizeof o);
  o.runner = config.runner;
  o.station = config.station;
  o.source_arrival_t_us = arrival_t_us;
  o.release_arrival_t_us = release_t_us;
  return o.body.emplace<T>();
}

LoadModelParams load_params(const SessionConfig& c) {
  LoadModelParams p;
  p.body_mass_kg = c.runner_params.body_mass_kg;
  p.leg = default_leg_geometry(c.runner_params.height_m, c.model.ankle_x_norm);
  p.area_model = c.model.area_model;
  p.loading_rate = c.model.loading_rate;
  p.max_stance_samples = c.model.stance_trace_samples;
  return p;
}

CopPathParams cop_params(const SessionConfig& c) {
  CopPathParams p;
  p.foot_length_m = default_leg_geometry(c.runner_params.height_m).foot_length_m;
  p.insole_width_m = c.model.insole_width_m;
  p.max_stance_samples = c.model.stance_trace_samples;
  return p;
}

// Shank axial readings kept per leg: PTA's window opens at an IC that is detected up to one
// insole sample interval (and the lead) later. 128 readings span 128 ms at 1 kHz.
constexpr int kAxialHistory = 128;

// The most pressure cells an insole sample of this runner has, which sizes the reorder
// buffer's slots. A runner registered without insole geometry gets room for the wire's limit.
int insole_cells(const SessionConfig& c) {
  const int cells = std::max(c.insoles[0].cell_count, c.insoles[1].cell_count);
  return cells > 0 ? std::min(cells, kMaxInsoleCells) : kMaxInsoleCells;
}

}  // namespace

// Everything that changes per sample, behind one pointer so session.hpp stays small.
struct RunnerSession::State {
  explicit State(const SessionConfig& c)
      : clock(c.model.clock, insole_cells(c)),
        knee{KneeAngleFilter(c.model.knee), KneeAngleFilter(c.model.knee)},
        shank{ShankTiltFilter(c.model.shank), ShankTiltFilter(c.model.shank)},
        force{ForceFilter(c.model.force), ForceFilter(c.model.force)},
        calibration(c.model.calibration),
        stance{StepLoad(load_params(c)), StepLoad(load_params(c))},
        cop{CopPath(cop_params(c)), CopPath(cop_params(c))},
        session_load(c.model.session_load),
        trends(c.model.trends),
        rules(c.model.rules, load_model_id(c.model.area_model, c.model.damage_exponents)) {
    set_axes(c);
  }

  void set_axes(const SessionConfig& c) {
    for (std::size_t i = 0; i < 2; ++i) {
      axes[i] = KneeJointAxes(c.knees[i].thigh_axis, c.knees[i].shank_axis);
    }
  }

  struct Foot {
    bool in_contact = false;
    std::int64_t last_t_us = kNoTime;  // previous accepted insole sample of this foot
    double force_n = kNaN;             // calibrated ΣpA of that sample
    double raw_bw = kNaN;              // uncalibrated, for the calibration loop
    std::int64_t ic_t_us = 0;
    std::int64_t last_ic_t_us = kNoTime;
    std::int64_t last_to_t_us = kNoTime;
    double peak_force_n = 0.0;
    double strike_index_pct = kNaN;
    double knee_ic_rad = kNaN;
    double knee_peak_rad = kNaN;
    double step_time_s = kNaN;
    double flight_time_s = kNaN;
    double cop_y_sum = 0.0;            // stance mean CoP_y (normalised)
    int cop_y_n = 0;
    double midfoot_peak_pa = 0.0;
    double sample_interval_s = kNaN;   // for force_rate_hz
    std::int64_t filter_t_us = kNoTime;  // the vGRF filter's time (advances even when gated)
    // PTA of the stance in progress: the window on the aligned clock and the peak so far.
    std::int64_t pta_from_t_us = kNoTime;
    std::int64_t pta_until_t_us = kNoTime;
    double pta_peak_mps2 = kNaN;
    double pta_rate_hz = kNaN;  // the shank IMU's rate over the stride before this IC
  };
  struct Knee {
    std::array<double, 3> thigh_gyro{};  // previous sample's gyros, for angular acceleration
    std::array<double, 3> shank_gyro{};
    bool have_gyro = false;
    std::int64_t t_us = kNoTime;
    std::int64_t prev_t_us = kNoTime;
    double angle_rad = kNaN;
    double prev_angle_rad = kNaN;
    bool seen = false;
    double shank_tilt_rad = kNaN;
    // Stride-mean gravity constraint on the shank tilt (see on_knee): the shank's specific
    // force rotated to the world with the estimated tilt, summed over the current stride.
    double stride_fx = 0.0;
    double stride_fy = 0.0;
    int stride_n = 0;
    std::int64_t stride_ic_t_us = kNoTime;
    bool stride_whole = false;  // the sums began at the stride's IC and saw no gap
    // A gap in this knee's data (a dropout, or samples lost to a device clock stepping back)
    // leaves θ and φ_s extrapolated across it, wrong by however far the leg turned meanwhile.
    // φ_s (the moment arm, MODEL.md §3A) is known again after a whole stride's gravity
    // constraint, θ once the knee filter accepts an angle measurement (it may gate them until
    // its lockout re-opens). Steps whose stance began before both carry a wrong load.
    bool tilt_reacquiring = false;
    bool angle_reacquiring = false;
    std::int64_t reacquired_t_us = kNoTime;  // when the later of the two was found again
    // Shank axial readings (ring, oldest first from axial_head) for PTA, and the IMU samples
    // counted since this leg's foot last touched down, for the IMU rate.
    std::array<std::int64_t, kAxialHistory> axial_t_us{};
    std::array<double, kAxialHistory> axial_mps2{};
    int axial_head = 0;
    int axial_size = 0;
    int imu_count = 0;
    std::int64_t imu_first_t_us = kNoTime;  // device clock
    std::int64_t imu_last_t_us = kNoTime;
    std::int64_t imu_min_dt_us = 0;  // shortest positive device interval; 0 = none yet
  };

  // Per device slot: the last aligned time fused, and whether F1 was raised from the data.
  struct Slot {
    std::int64_t last_t_us = kNoTime;
    std::int64_t newest_device_t_us = kNoTime;  // raw device clock of the newest sample seen
    std::uint32_t newest_device = 0;
    std::uint32_t device = 0;
    SensorKind kind = SensorKind::kInsole;
    Side side = Side::kNone;
    bool silent = false;
    bool streams = false;  // sends continuously (not the console, whose reports are sporadic)
  };
  std::array<Slot, kDeviceRoleCount> slots{};

  RunnerClock clock;
  std::array<KneeAngleFilter, 2> knee;
  std::array<ShankTiltFilter, 2> shank;
  std::array<KneeJointAxes, 2> axes;
  std::array<ForceFilter, 2> force;
  ForceCalibration calibration;
  std::array<StepLoad, 2> stance;
  std::array<CopPath, 2> cop;
  SessionLoad session_load;
  GaitTrends trends;
  RiskRules rules;

  std::array<Foot, 2> feet{};
  std::array<Knee, 2> knees{};
  double belt_speed_mps = kNaN;
  double incline_fraction = kNaN;
  std::int64_t last_treadmill_t_us = kNoTime;
  double pending_distance_m = 0.0;
  double cadence_spm = kNaN;
  std::int64_t last_any_ic_t_us = kNoTime;
  double speed_at_last_stride = kNaN;

  std::int64_t state_origin_t_us = 0;
  std::int64_t state_k = 0;
  std::int64_t next_state_t_us = kNoTime;
  std::int64_t last_state_t_us = kNoTime;

  bool session_open = false;
  std::int64_t session_start_t_us = 0;
  std::int64_t last_step_t_us = 0;
  std::uint64_t session_steps = 0;
  double session_distance_m = 0.0;
  std::uint32_t session_events = 0;
  std::uint64_t load_steps = 0;  // steps of this session with load values
  std::uint64_t step_index = 0;
};

RunnerSession::RunnerSession(const SessionConfig& config)
    : RunnerSession(std::make_shared<const SessionConfig>(config)) {}

RunnerSession::RunnerSession(std::shared_ptr<const SessionConfig> config)
    : config_(std::move(config)),
      history_(config_->history),
      model_id_(load_model_id(config_->model.area_model, config_->model.damage_exponents)),
      state_(std::make_unique<State>(*config_)) {}

RunnerSession::~RunnerSession() = default;

std::size_t RunnerSession::buffered() const { return state_->clock.buffered(); }

SessionLive RunnerSession::live() const {
  const State& st = *state_;
  SessionLive l;
  l.open = st.session_open;
  if (st.session_open) {
    l.steps = st.session_steps;
    l.distance_m = st.session_distance_m;
    const bool has_load = st.load_steps > 0;
    l.stress_time_integral_mpa_s = has_load ? st.session_load.stress_time_integral_mpa_s() : kNaN;
    l.damage_index = has_load ? st.session_load.damage_index() : kNaN;
  }
  for (std::size_t i = 0; i < 2; ++i) {
    const KneeAngleCounters& k = st.knee[i].counters();
    l.knee_gated += k.gyro.gated + k.accel.gated + k.sleeve.gated;
    l.shank_gated += st.shank[i].counters().tilt.gated;
    l.force_gated += st.force[i].counters().force.gated;
    l.loading_rate_withheld += st.stance[i].windows_cut();
    l.ml_excursion_withheld += st.cop[i].windows_cut();
  }
  for (int r = 0; r < kDeviceRoleCount; ++r) {
    const ClockSlotCounters c = st.clock.counters(static_cast<DeviceRole>(r));
    l.clock_jumps += c.jumps;
    l.reorder_early += c.overflow;
  }
  return l;
}

// Everything a reload can change takes effect from the next sample, and the estimates carry
// over: a converged gyro bias, g_cal and the clock fits took minutes to learn, and the new
// parameters describe the same runner and devices. The parts whose buffers were sized from the
// old values are the exceptions: the reorder capacity and the stance traces stay as built
// (RunnerClock::set_params, StepLoad/CopPath::set_params),
// and new trend capacities restart the rolling windows and the baseline (GaitTrends::set_params;
// the daemon logs it when it reloads).
void RunnerSession::reconfigure(const SessionConfig& config) {
  reconfigure(std::make_shared<const SessionConfig>(config));
}

void RunnerSession::reconfigure(std::shared_ptr<const SessionConfig> shared) {
  const SessionConfig& config = *shared;
  State& st = *state_;
  const bool rate_changed = config.model.state_rate_hz != config_->model.state_rate_hz;
  for (KneeAngleFilter& f : st.knee) f.set_params(config.model.knee);
  for (ShankTiltFilter& f : st.shank) f.set_params(config.model.shank);
  for (ForceFilter& f : st.force) f.set_params(config.model.force);
  st.calibration.set_params(config.model.calibration);
  st.trends.set_params(config.model.trends, last_t_us_ == kNoTime ? 0 : last_t_us_);
  st.clock.set_params(config.model.clock);
  st.clock.reserve_insole_cells(insole_cells(config));  // a larger insole registered: allocates
  history_ = config.history;
  config_ = std::move(shared);
  model_id_ = load_model_id(config.model.area_model, config.model.damage_exponents);
  st.rules.set_params(config.model.rules);
  st.rules.set_model_id(model_id_);
  st.session_load.set_params(config.model.session_load);
  for (StepLoad& s : st.stance) s.set_params(load_params(config));
  for (CopPath& p : st.cop) p.set_params(cop_params(config));
  st.set_axes(config);
  if (rate_changed && st.last_state_t_us != kNoTime) {
    st.state_origin_t_us = st.last_state_t_us;
    st.state_k = 1;
  }
}

namespace {

// Where the rules put the events of one call. Every call that fills it turns them into outputs
// (Ctx::flush_events) before returning, so nothing stays in it between calls and one buffer per
// thread serves every session the thread runs: a session would otherwise carry 6 KB (48 events)
// that are empty except inside a call (issue 8: memory per station). Output sinks must not call
// into a RunnerSession from emit(); none does (OutputSink).
RiskEventBuffer& event_scratch() {
  thread_local RiskEventBuffer buffer;
  return buffer;
}

// The per-sample work, as free functions over the session's state, so each stays short.
struct Ctx {
  const SessionConfig& config;
  const TrainingHistory& history;  // the session's, not config.history (set_history)
  RunnerSession::State& st;  // NOLINT: a view for one call
  SessionCounters& counters;
  OutputSink& out;
  std::int64_t t;             // aligned time of the sample being fused
  std::int64_t arrival_t_us;  // its receive time (Sample::receive_t_us), for latency
  // Receive time of the sample whose arrival released this one from the reorder window; 0 when
  // a timer or shutdown released it. Latency only (Output::release_arrival_t_us).
  std::int64_t release_t_us;
  const char* model_id;

  double body_weight_n() const { return config.runner_params.body_mass_kg * kGravityMps2; }

  void emit(const Output& o) {
    if (const auto* e = std::get_if<RiskEvent>(&o.body)) {
      ++counters.risk_events;
      if (st.session_open && e->phase == EventPhase::kOnset) ++st.session_events;
    }
    out.emit(o);
  }

  // Rule events collected in event_scratch() become outputs.
  void flush_events() {
    RiskEventBuffer& events = event_scratch();
    for (int k = 0; k < events.size(); ++k) {
      Output o;
      begin_output<RiskEvent>(o, config, arrival_t_us, release_t_us) = events[k];
      emit(o);
    }
    counters.event_overflow += events.overflow();
    events.clear();
  }
};

}  // namespace

namespace {

// The knee angle at t from the latest estimate: the filter's prediction θ + θ̇·Δt (no update),
// so a state or a stance sample between two IMU samples is not up to one IMU period stale
// (10 ms at 100 Hz is ~4° at running knee rates). Δt is capped at 20 ms: beyond, the last
// estimate is reported as is rather than extrapolated across a gap.
double knee_angle_now(const RunnerSession::State& st, int i, std::int64_t t_us) {
  const auto si = static_cast<std::size_t>(i);
  const auto& k = st.knees[si];
  if (!k.seen) return kNaN;
  const double dt = seconds(t_us - k.t_us);
  if (dt <= 0.0 || dt > 0.020) return k.angle_rad;
  return k.angle_rad + st.knee[si].rate_radps() * dt;
}

// The knee angle at an IC: linear between the two latest knee estimates when the IC falls
// between them, else the nearer of the two (no extrapolation). NaN without a knee device.
double knee_angle_at(const RunnerSession::State& st, int i, std::int64_t t_us) {
  const auto& k = st.knees[static_cast<std::size_t>(i)];
  if (!k.seen) return kNaN;
  if (t_us >= k.t_us) return knee_angle_now(st, i, t_us);
  if (k.prev_t_us == kNoTime || !std::isfinite(k.prev_angle_rad)) return k.angle_rad;
  if (t_us <= k.prev_t_us) return k.prev_angle_rad;
  const double frac =
      static_cast<double>(t_us - k.prev_t_us) / static_cast<double>(k.t_us - k.prev_t_us);
  return k.prev_angle_rad + frac * (k.angle_rad - k.prev_angle_rad);
}

double contact_threshold_n(const Ctx& c) {
  return std::max(c.config.model.contact_threshold_n,
                  c.config.model.contact_threshold_bw * c.body_weight_n());
}

// PTA's window opens at IC (MODEL.md §0/§1, ModelParams::pta_lead_s): the shank readings
// already fused since IC − lead are in the leg's history. The IMU rate is measured over the
// stride that this IC closes, on the device's own clock, in whole hertz: the nominal rate is the
// shortest sample interval, unless samples/span disagrees with it by more than 10 % (jittery
// timestamps make a short interval meaningless; then samples/span is used). Samples/span alone
// read a 500 Hz IMU as 499 Hz after a single lost sample.
void open_pta(Ctx& c, int i, std::int64_t ic) {
  auto& st = c.st;
  auto& foot = st.feet[static_cast<std::size_t>(i)];
  auto& kn = st.knees[static_cast<std::size_t>(i)];
  foot.pta_rate_hz = kNaN;
  if (kn.imu_count >= 2 && kn.imu_last_t_us > kn.imu_first_t_us && kn.imu_min_dt_us > 0) {
    const double mean_hz = static_cast<double>(kn.imu_count - 1) /
                           seconds(kn.imu_last_t_us - kn.imu_first_t_us);
    const double nominal_hz = 1.0 / seconds(kn.imu_min_dt_us);
    foot.pta_rate_hz = std::round(mean_hz >= 0.9 * nominal_hz ? nominal_hz : mean_hz);
  }
  kn.imu_count = 0;
  kn.imu_min_dt_us = 0;
  foot.pta_from_t_us = ic - std::llround(c.config.model.pta_lead_s * kUsPerS);
  foot.pta_until_t_us = ic + std::llround(c.config.model.pta_window_s * kUsPerS);
  foot.pta_peak_mps2 = kNaN;
  for (int k = 0; k < kn.axial_size; ++k) {
    const auto slot = static_cast<std::size_t>((kn.axial_head + k) % kAxialHistory);
    const std::int64_t t = kn.axial_t_us[slot];
    if (t >= foot.pta_from_t_us && t <= foot.pta_until_t_us) {
      foot.pta_peak_mps2 = std::fmax(foot.pta_peak_mps2, kn.axial_mps2[slot]);
    }
  }
}

// One shank axial reading: into the leg's history, and into the open PTA window of its foot.
void note_axial(Ctx& c, int i, std::int64_t device_t_us, double axial_mps2) {
  auto& kn = c.st.knees[static_cast<std::size_t>(i)];
  auto& foot = c.st.feet[static_cast<std::size_t>(i)];
  const int slot = (kn.axial_head + kn.axial_size) % kAxialHistory;
  kn.axial_t_us[static_cast<std::size_t>(slot)] = c.t;
  kn.axial_mps2[static_cast<std::size_t>(slot)] = axial_mps2;
  if (kn.axial_size < kAxialHistory) {
    ++kn.axial_size;
  } else {
    kn.axial_head = (kn.axial_head + 1) % kAxialHistory;
  }
  if (kn.imu_count == 0) {
    kn.imu_first_t_us = device_t_us;
  } else if (device_t_us > kn.imu_last_t_us) {
    const std::int64_t dt = device_t_us - kn.imu_last_t_us;
    if (kn.imu_min_dt_us == 0 || dt < kn.imu_min_dt_us) kn.imu_min_dt_us = dt;
  }
  kn.imu_last_t_us = device_t_us;
  ++kn.imu_count;
  if (foot.in_contact && c.t >= foot.pta_from_t_us && c.t <= foot.pta_until_t_us) {
    foot.pta_peak_mps2 = std::fmax(foot.pta_peak_mps2, axial_mps2);
  }
}

// Step time and flight time are fixed at IC, and only when the previous IC of any foot was the
// other foot's: "this IC − the previous IC" is a step time only when the feet alternate (MODEL.md
// §1); otherwise NaN rather than a stride time read as a step time.
void start_contact(Ctx& c, int i, std::int64_t ic, double x_cop, double force_n) {
  auto& st = c.st;
  auto& foot = st.feet[static_cast<std::size_t>(i)];
  const auto& other = st.feet[static_cast<std::size_t>(1 - i)];
  const bool other_was_last = st.last_any_ic_t_us != kNoTime && other.last_ic_t_us == st.last_any_ic_t_us;
  foot.step_time_s = kNaN;
  if (other_was_last && ic > st.last_any_ic_t_us) {
    foot.step_time_s = seconds(ic - st.last_any_ic_t_us);
    st.cadence_spm = 60.0 / foot.step_time_s;
  }
  foot.flight_time_s = kNaN;
  if (other_was_last && !other.in_contact && other.last_to_t_us != kNoTime &&
      other.last_to_t_us > other.last_ic_t_us) {
    foot.flight_time_s = seconds(ic - other.last_to_t_us);
  }
  // MODEL.md §1/§9 outer loop: one stride boundary per left IC; "level, constant speed" from
  // the treadmill, so the stride-mean = 1 BW constraint holds.
  if (i == 0 && foot.last_ic_t_us != kNoTime && c.config.model.dynamic_calibration) {
    const double speed = st.belt_speed_mps;
    const bool steady = std::isfinite(speed) && std::isfinite(st.speed_at_last_stride) &&
                        std::fabs(speed - st.speed_at_last_stride) <=
                            c.config.model.calibration_max_speed_change_mps &&
                        std::isfinite(st.incline_fraction) &&
                        std::fabs(st.incline_fraction) <= c.config.model.calibration_max_incline;
    st.calibration.end_stride(seconds(ic - foot.last_ic_t_us), steady);
  }
  if (i == 0) st.speed_at_last_stride = st.belt_speed_mps;

  foot.in_contact = true;
  foot.ic_t_us = ic;
  foot.last_ic_t_us = ic;
  st.last_any_ic_t_us = ic;
  foot.peak_force_n = force_n;
  foot.strike_index_pct = 100.0 * x_cop;  // MODEL.md §1: x_norm is already per foot length
  foot.knee_ic_rad = knee_angle_at(st, i, ic);
  foot.knee_peak_rad = foot.knee_ic_rad;
  foot.cop_y_sum = 0.0;
  foot.cop_y_n = 0;
  foot.midfoot_peak_pa = 0.0;
  st.stance[static_cast<std::size_t>(i)].begin(ic, contact_threshold_n(c));
  st.cop[static_cast<std::size_t>(i)].begin(ic);
  open_pta(c, i, ic);
  if (!st.session_open) st.pending_distance_m = 0.0;
}

void open_session(Ctx& c, std::int64_t first_ic) {
  auto& st = c.st;
  st.session_open = true;
  st.session_start_t_us = first_ic;
  st.session_steps = 0;
  st.session_distance_m = 0.0;
  st.session_events = 0;
  st.session_load.reset();
  st.load_steps = 0;
  st.trends.start_session(first_ic);
}

void end_contact(Ctx& c, int i, std::int64_t to) {
  auto& st = c.st;
  const auto si = static_cast<std::size_t>(i);
  auto& foot = st.feet[si];
  foot.in_contact = false;
  foot.last_to_t_us = to;
  const StepLoadResult load = st.stance[si].finish(to);
  const CopPathResult cop = st.cop[si].finish(to);
  const bool pta_rate_ok = foot.pta_rate_hz >= c.config.model.rules.impact.min_pta_rate_hz;
  const double pta_g = pta_rate_ok ? foot.pta_peak_mps2 / kGravityMps2 : kNaN;

  if (!st.session_open) open_session(c, foot.ic_t_us);
  st.session_distance_m += st.pending_distance_m;
  st.session_load.add_distance(st.pending_distance_m);
  st.pending_distance_m = 0.0;
  ++st.session_steps;
  st.last_step_t_us = to;
  st.session_load.add_step(load);
  if (std::isfinite(load.stress_time_integral_mpa_s)) ++st.load_steps;

  const double bw = c.body_weight_n();
  const double step_length_m = st.belt_speed_mps * foot.step_time_s;
  Output o;
  StepMetrics& m = begin_output<StepMetrics>(o, c.config, c.arrival_t_us, c.release_t_us);
  m.ic_t_us = foot.ic_t_us;
  m.to_t_us = to;
  m.step_index = st.step_index++;
  m.side = side_of_index(i);
  m.contact_time_s = static_cast<float>(seconds(to - foot.ic_t_us));
  m.flight_time_s = static_cast<float>(foot.flight_time_s);
  m.cadence_spm = static_cast<float>(60.0 / foot.step_time_s);
  m.step_length_m = static_cast<float>(step_length_m);
  m.peak_force_bw = static_cast<float>(foot.peak_force_n / bw);
  m.strike_index_pct = static_cast<float>(foot.strike_index_pct);
  m.knee_angle_ic_rad = static_cast<float>(foot.knee_ic_rad);
  m.knee_angle_peak_rad = static_cast<float>(foot.knee_peak_rad);
  m.peak_knee_moment_nm_per_kg = static_cast<float>(load.peak_knee_moment_nm_per_kg);
  m.peak_pfjrf_bw = static_cast<float>(load.peak_pfjrf_bw);
  m.peak_pfj_stress_mpa = static_cast<float>(load.peak_stress_mpa);
  m.stress_time_integral_mpa_s = static_cast<float>(load.stress_time_integral_mpa_s);
  m.itb_zone_time_s = static_cast<float>(load.itb_zone_time_s);
  m.valr_bw_per_s = static_cast<float>(load.loading_rate.valr_bw_per_s);
  m.vilr_bw_per_s = static_cast<float>(load.loading_rate.vilr_bw_per_s);
  m.pfjrf_impulse_bw_s = static_cast<float>(load.pfjrf_impulse_bw_s);
  m.cop_path_length_m = static_cast<float>(cop.path_length_m);
  m.cop_ml_excursion_m = static_cast<float>(cop.ml_excursion_m);
  m.pta_g = static_cast<float>(pta_g);
  ++c.counters.steps;
  c.emit(o);

  // Rules see the step through the rolling windows and the runner's baseline (MODEL.md §6, §9).
  GaitMetrics g;
  g.contact_time_s = seconds(to - foot.ic_t_us);
  g.step_time_s = foot.step_time_s;
  g.cadence_spm = 60.0 / foot.step_time_s;
  g.peak_force_bw = foot.peak_force_n / bw;
  g.impact_peak_bw = load.loading_rate.impact_peak_bw;
  g.valr_bw_per_s = load.loading_rate.valr_bw_per_s;
  g.pta_g = pta_g;
  g.knee_angle_ic_rad = foot.knee_ic_rad;
  g.knee_angle_peak_rad = foot.knee_peak_rad;
  g.pfj_stress_peak_mpa = load.peak_stress_mpa;
  g.stress_time_integral_per_km_mpa_s =
      stress_time_integral_per_km(load.stress_time_integral_mpa_s, step_length_m);
  g.itb_zone_time_s = load.itb_zone_time_s;
  if (foot.cop_y_n > 0) {
    g.cop_y_m = foot.cop_y_sum / foot.cop_y_n * c.config.model.insole_width_m;
  }
  g.midfoot_peak_pressure_pa = foot.midfoot_peak_pa > 0.0 ? foot.midfoot_peak_pa : kNaN;
  // A step measured while this insole has a saturating or stuck cell (F2/F3) carries a wrong
  // force, and one whose stance began before the knee's θ and φ_s were re-acquired after a gap
  // in its data (a dropout, a clock step back) a wrong load: it is published, but kept out of
  // the windows the gait rules judge, so a sensor fault is reported as one and not as a
  // knee-load change.
  const auto& insole = st.slots[static_cast<std::size_t>(i)];
  const bool faulty = st.rules.fault_active(RuleId::kSensorSaturation, insole.device) ||
                      st.rules.fault_active(RuleId::kStuckCell, insole.device);
  const auto& knee = st.knees[si];
  const bool knee_interrupted =
      knee.tilt_reacquiring || knee.angle_reacquiring || knee.reacquired_t_us > foot.ic_t_us;
  if (!faulty && !knee_interrupted) {
    st.trends.add_step(side_of_index(i), to, g, st.belt_speed_mps, st.incline_fraction);
  }

  RuleInputs in;
  in.t_us = to;
  st.trends.fill(to, in);
  in.belt_speed_mps = st.belt_speed_mps;
  in.incline_fraction = st.incline_fraction;
  in.force_rate_hz = std::isfinite(foot.sample_interval_s) && foot.sample_interval_s > 0.0
                         ? 1.0 / foot.sample_interval_s
                         : kNaN;
  in.pta_rate_hz = foot.pta_rate_hz;  // R3 uses PTA only at ≥ min_pta_rate_hz (MODEL.md §0)
  in.session_distance_m = st.session_distance_m;
  in.session_damage_index = st.load_steps > 0 ? st.session_load.damage_index() : kNaN;
  in.history = c.history;
  // MODEL.md §8 compares shoe drift with the first sessions in that shoe. Until the store keeps
  // shoe baselines (issue 6), this session's own minutes 3-8 are the reference: a within-session
  // drift (a worn shoe collapsing under a long run) is still seen.
  if (!std::isfinite(in.history.shoe_baseline_speed_mps) && in.baseline_ready) {
    in.history.shoe_baseline = in.baseline;
    in.history.shoe_baseline_speed_mps = in.baseline_speed_mps;
  }
  // MODEL.md §9: once the runner has a stored baseline (minutes 3-8 of the first sessions), the
  // rules compare with it from the session's first step; what the store does not keep comes
  // from this session's own minutes 3-8 when they are done.
  const TrainingHistory& h = in.history;
  if (h.runner_baseline_sessions > 0) {
    for (std::size_t side = 0; side < 2; ++side) {
      for (const auto field : kGaitMetricFields) {
        const double v = h.runner_baseline[side].*field;
        if (std::isfinite(v) || !in.baseline_ready) in.baseline[side].*field = v;
      }
    }
    in.baseline_ready = true;
    if (std::isfinite(h.runner_baseline_speed_mps)) in.baseline_speed_mps = h.runner_baseline_speed_mps;
  }
  st.rules.evaluate(in, event_scratch());
  c.flush_events();
}

void on_insole(Ctx& c, const Sample& s, const InsoleSample& in) {
  const int i = side_index(s.side);
  if (i < 0) return;
  auto& st = c.st;
  const auto si = static_cast<std::size_t>(i);
  auto& foot = st.feet[si];
  const InsoleGeometry& geo = c.config.insoles[si];
  const int cells = std::min({static_cast<int>(in.cell_count), geo.cell_count, kMaxInsoleCells});

  st.rules.on_insole_cells(c.t, s.device, s.side,
                           std::span<const float>(in.pressure_pa, static_cast<std::size_t>(cells)),
                           event_scratch());
  c.flush_events();

  double sum_pa = 0.0, sum_pax = 0.0, sum_pay = 0.0, midfoot_pa = 0.0;
  for (int k = 0; k < cells; ++k) {
    const auto ck = static_cast<std::size_t>(k);
    const double p = static_cast<double>(in.pressure_pa[k]);
    const double pa = p * geo.area_m2[ck];
    sum_pa += pa;
    sum_pax += pa * geo.x_norm[ck];
    sum_pay += pa * geo.y_norm[ck];
    if (geo.x_norm[ck] >= c.config.model.midfoot_x_min && geo.x_norm[ck] <= c.config.model.midfoot_x_max) {
      midfoot_pa = std::max(midfoot_pa, p);
    }
  }
  const double bw_n = c.body_weight_n();
  const double raw_n = geo.force_gain * sum_pa;
  const double gain = c.config.model.dynamic_calibration ? st.calibration.gain() : 1.0;
  const double force_n = raw_n * gain;
  if (!std::isfinite(force_n)) return;
  if (foot.last_t_us != kNoTime && c.t <= foot.last_t_us) return;  // same instant twice

  const std::int64_t prev_t = foot.last_t_us;
  const double prev_f = foot.force_n;
  const bool have_prev = prev_t != kNoTime && std::isfinite(prev_f);
  const double dt = have_prev ? seconds(c.t - prev_t) : 0.0;
  const double thr = contact_threshold_n(c);

  // vGRF filter (MODEL.md §9): swing pseudo-measurement below the threshold out of contact,
  // else the calibrated force, gated. A gated sample is an outlier: it must not move gait.
  if (foot.filter_t_us != kNoTime && c.t > foot.filter_t_us) st.force[si].predict(seconds(c.t - foot.filter_t_us));
  foot.filter_t_us = c.t;
  const UpdateStatus fs = (!foot.in_contact && force_n < thr) ? st.force[si].update_swing()
                                                              : st.force[si].update(force_n / bw_n);
  if (fs == UpdateStatus::kGated) {
    ++c.counters.force_gated;
    return;
  }
  if (have_prev && c.config.model.dynamic_calibration) st.calibration.add_sample(foot.raw_bw, dt);
  foot.raw_bw = raw_n / bw_n;
  foot.force_n = force_n;
  foot.last_t_us = c.t;
  if (have_prev) foot.sample_interval_s = dt;
  const double x_cop = sum_pa > 0.0 ? sum_pax / sum_pa : kNaN;

  if (!foot.in_contact) {
    if (!have_prev || !(prev_f < thr) || !(force_n >= thr)) return;
    const std::int64_t ic = crossing_t_us(prev_t, prev_f, c.t, force_n, thr);
    const auto refractory_us = std::llround(c.config.model.refractory_s * kUsPerS);
    if (foot.last_ic_t_us != kNoTime && ic - foot.last_ic_t_us < refractory_us) return;
    start_contact(c, i, ic, x_cop, force_n);
  } else {
    foot.peak_force_n = std::max(foot.peak_force_n, force_n);
    const double off = c.config.model.contact_hysteresis * thr;
    if (force_n < off) {
      end_contact(c, i, crossing_t_us(prev_t, prev_f, c.t, force_n, off));
      return;
    }
  }
  // A stance sample: load model inputs at this instant (MODEL.md §3).
  const auto& knee = st.knees[si];
  StanceSample ss;
  ss.t_us = c.t;
  ss.force_n = force_n;
  ss.knee_flexion_rad = knee.seen ? knee_angle_now(st, i, c.t) : kNaN;
  ss.shank_inclination_rad = knee.shank_tilt_rad;
  ss.x_cop_norm = x_cop;
  st.stance[si].add(ss);
  if (sum_pa > 0.0) {
    st.cop[si].add(c.t, x_cop, sum_pay / sum_pa);
    foot.cop_y_sum += sum_pay / sum_pa;
    ++foot.cop_y_n;
  }
  foot.midfoot_peak_pa = std::max(foot.midfoot_peak_pa, midfoot_pa);
}

// MODEL.md §2 (Seel 2014): the specific force at the joint centre J from a sensor at P on the
// same rigid segment, f_J = f_P − α×r − ω×(ω×r) with r = P − J in the sensor frame; α from the
// gyro's finite difference. Both sensors then see the same joint acceleration, so the angle
// between their readings is the knee angle even while the leg swings.
Imu6 shift_to_joint(const Imu6& imu, const std::array<double, 3>& prev_gyro, bool have_prev,
                    double dt, const std::array<double, 3>& r_m) {
  const Eigen::Vector3d w(imu.gyro_radps[0], imu.gyro_radps[1], imu.gyro_radps[2]);
  const Eigen::Vector3d r(r_m[0], r_m[1], r_m[2]);
  Eigen::Vector3d alpha = Eigen::Vector3d::Zero();
  if (have_prev && dt > 0.0) alpha = (w - Eigen::Vector3d(prev_gyro[0], prev_gyro[1], prev_gyro[2])) / dt;
  const Eigen::Vector3d correction = alpha.cross(r) + w.cross(w.cross(r));
  Imu6 out = imu;
  for (int k = 0; k < 3; ++k) {
    out.accel_mps2[k] = static_cast<float>(static_cast<double>(imu.accel_mps2[k]) - correction[k]);
  }
  return out;
}

// Knee: the MODEL.md §9 knee KF per leg, driven by the thigh/shank gyro difference, anchored by
// the accelerometer angle away from impacts (±50 ms of IC, MODEL.md §2) or by a sleeve's angle;
// the shank-tilt KF gives φ_s for the knee moment arm (§3A).
void on_knee(Ctx& c, const Sample& s, const KneeSample& k) {
  const int i = side_index(s.side);
  if (i < 0) return;
  auto& st = c.st;
  const auto si = static_cast<std::size_t>(i);
  auto& kn = st.knees[si];
  if (kn.t_us != kNoTime && c.t <= kn.t_us) return;
  const double dt = kn.t_us == kNoTime ? 0.0 : seconds(c.t - kn.t_us);
  const double gap_s = c.config.model.shank.max_dt_s;  // the tilt filter's own gap limit
  if (dt > gap_s) {
    kn.tilt_reacquiring = kn.angle_reacquiring = true;
    kn.stride_whole = false;
  }
  auto reacquired = [&kn, &c](bool& flag) {
    if (!flag) return;
    flag = false;
    if (!kn.tilt_reacquiring && !kn.angle_reacquiring) kn.reacquired_t_us = c.t;
  };
  if (!k.has_imus) reacquired(kn.tilt_reacquiring);  // a sleeve alone gives no φ_s to wait for
  KneeAngleFilter& filter = st.knee[si];
  if (k.has_imus) {
    const auto& foot = st.feet[si];
    const bool accel_ok = foot.last_ic_t_us == kNoTime ||
                          seconds(c.t - foot.last_ic_t_us) > c.config.model.accel_ic_exclusion_s;
    const KneeImuAxes& mount = c.config.knees[si];
    const Imu6 thigh = shift_to_joint(k.thigh, kn.thigh_gyro, kn.have_gyro, dt, mount.thigh_sensor_m);
    const Imu6 shank = shift_to_joint(k.shank, kn.shank_gyro, kn.have_gyro, dt, mount.shank_sensor_m);
    for (int a = 0; a < 3; ++a) {
      kn.thigh_gyro[static_cast<std::size_t>(a)] = static_cast<double>(k.thigh.gyro_radps[a]);
      kn.shank_gyro[static_cast<std::size_t>(a)] = static_cast<double>(k.shank.gyro_radps[a]);
    }
    kn.have_gyro = true;
    // PTA reads the shank sensor as it is (the distal-tibia reading of the literature), not
    // shifted to the joint.
    note_axial(c, i, s.device_t_us, st.axes[si].shank.axial_mps2(k.shank));
    const KneeImuResult imu = filter.on_imu_pair(thigh, shank, st.axes[si], dt, accel_ok);
    if (imu.accel == UpdateStatus::kAccepted) reacquired(kn.angle_reacquiring);
    ShankTiltFilter& tilt = st.shank[si];
    tilt.predict(st.axes[si].shank.rate_radps(k.shank), dt);
    // Standing (no IC for 2 s): the accelerometer tilt is gravity (MODEL.md §9 quasi-static
    // update). Running, a |‖a‖ − g| < 0.15 g reading is as likely a swing whose linear
    // acceleration happens to have that size, so it is not used; the stride constraint is.
    const bool standing = foot.last_ic_t_us == kNoTime || seconds(c.t - foot.last_ic_t_us) > 2.0;
    if (standing && quasi_static(k.shank) &&
        tilt.update_tilt(accel_shank_tilt_rad(k.shank, st.axes[si].shank)) ==
            UpdateStatus::kAccepted) {
      reacquired(kn.tilt_reacquiring);
    }
    // Stride-mean gravity: over a stride of periodic running the mean linear acceleration of any
    // point of the body is zero, so the mean specific force in the world frame is (0, g). With
    // the estimate φ̂ = φ + e the rotated mean reads g·(sin e, cos e): e is observable once per
    // stride and corrects the gyro-driven tilt (its bias) without any quasi-static moment.
    if (foot.last_ic_t_us != kNoTime) {
      if (kn.stride_ic_t_us != foot.last_ic_t_us) {
        if (kn.stride_ic_t_us != kNoTime && kn.stride_whole && kn.stride_n >= 20) {
          // |e| < 0.5 rad rejects a disturbed stride; after a gap any error is possible, and a
          // whole stride measures it exactly (a constant tilt error rotates the mean by itself).
          const double e = std::atan2(kn.stride_fx, kn.stride_fy);
          if ((std::fabs(e) < 0.5 || kn.tilt_reacquiring) &&
              tilt.update_tilt(tilt.tilt_rad() - e) == UpdateStatus::kAccepted) {
            reacquired(kn.tilt_reacquiring);
          }
        }
        // Whole only if it starts at its IC: not after a gap, nor at a first sample mid-stride.
        kn.stride_whole = seconds(c.t - foot.last_ic_t_us) <= gap_s;
        kn.stride_ic_t_us = foot.last_ic_t_us;
        kn.stride_fx = kn.stride_fy = 0.0;
        kn.stride_n = 0;
      }
      // Sensor → world for the shank: rotate by −φ_s about z (docs/model-conventions.md).
      const double phi = tilt.tilt_rad();
      const double ax = static_cast<double>(k.shank.accel_mps2[0]);
      const double ay = static_cast<double>(k.shank.accel_mps2[1]);
      kn.stride_fx += std::cos(phi) * ax + std::sin(phi) * ay;
      kn.stride_fy += -std::sin(phi) * ax + std::cos(phi) * ay;
      ++kn.stride_n;
    }
    kn.shank_tilt_rad = tilt.tilt_rad();
  }
  if (k.has_angle) {
    if (!k.has_imus) filter.predict(dt);
    const double sleeve_rad = static_cast<double>(k.knee_angle_rad);
    if (filter.update_sleeve_angle(sleeve_rad) == UpdateStatus::kAccepted) {
      reacquired(kn.angle_reacquiring);
    }
  }
  kn.prev_t_us = kn.t_us;
  kn.prev_angle_rad = kn.angle_rad;
  kn.t_us = c.t;
  kn.angle_rad = filter.angle_rad();
  kn.seen = true;
  auto& foot = st.feet[si];
  if (foot.in_contact) foot.knee_peak_rad = std::fmax(foot.knee_peak_rad, kn.angle_rad);
}

// Distance: each reported belt speed is held until the next report (left rectangle on the
// treadmill's intervals) and committed to the session at each step, so the summary's distance
// covers the same span as its duration.
void on_treadmill(Ctx& c, const TreadmillSample& t) {
  auto& st = c.st;
  if (st.last_treadmill_t_us != kNoTime) {
    if (c.t <= st.last_treadmill_t_us) return;
    if (std::isfinite(st.belt_speed_mps)) {
      st.pending_distance_m += st.belt_speed_mps * seconds(c.t - st.last_treadmill_t_us);
    }
  }
  st.last_treadmill_t_us = c.t;
  st.belt_speed_mps = static_cast<double>(t.belt_speed_mps);
  st.incline_fraction = static_cast<double>(t.incline_fraction);
}

// MODEL.md §4: the uncoupled EWMA ACWR (Williams 2017; Windt & Gabbett 2019) of daily km. The
// acute EWMA (7-day span, λ = 2/(7+1)) takes today's km, this session included; the chronic one
// (28-day span) stops the day before, so today's load is not in both (the coupling Lolli 2019
// criticises). A metric only: Frandsen 2025 found no dose-response that would justify a rule.
double acute_chronic_ratio(const TrainingHistory& h, double session_distance_m) {
  constexpr double kAcuteLambda = 2.0 / (7.0 + 1.0);
  if (!std::isfinite(h.acute_load_ewma_km) || !std::isfinite(h.chronic_load_ewma_km) ||
      !std::isfinite(h.day_km_before_session) || !(h.chronic_load_ewma_km > 0.0)) {
    return kNaN;
  }
  const double today_km = h.day_km_before_session + session_distance_m / 1000.0;
  const double acute = kAcuteLambda * today_km + (1.0 - kAcuteLambda) * h.acute_load_ewma_km;
  return acute / h.chronic_load_ewma_km;
}

// The summary spans first IC .. last step's TO for every kind of end (explicit, idle,
// shutdown); a stance in progress is abandoned. Rules R1..R10 clear with the session.
void close_session(Ctx& c, bool explicit_end) {
  auto& st = c.st;
  assert(st.session_open);
  Output o;
  SessionSummary& sum = begin_output<SessionSummary>(o, c.config, c.arrival_t_us, c.release_t_us);
  sum.start_t_us = st.session_start_t_us;
  sum.end_t_us = st.last_step_t_us;
  sum.steps = st.session_steps;
  sum.distance_m = static_cast<float>(st.session_distance_m);
  sum.duration_s = static_cast<float>(seconds(st.last_step_t_us - st.session_start_t_us));
  // Without any step that had load values (no knee angle or shank tilt), the totals are
  // unknown, not zero.
  const bool has_load = st.load_steps > 0;
  sum.stress_time_integral_mpa_s =
      static_cast<float>(has_load ? st.session_load.stress_time_integral_mpa_s() : kNaN);
  sum.damage_index = static_cast<float>(has_load ? st.session_load.damage_index() : kNaN);
  sum.damage_index_sensitivity =
      static_cast<float>(has_load ? st.session_load.damage_index_sensitivity() : kNaN);
  sum.pfjrf_impulse_bw_s =
      static_cast<float>(has_load ? st.session_load.pfjrf_impulse_bw_s() : kNaN);
  sum.risk_events = st.session_events;
  sum.ended_explicitly = explicit_end;
  sum.acute_chronic_ratio = static_cast<float>(acute_chronic_ratio(c.history, st.session_distance_m));
  st.rules.end_session(st.last_step_t_us, event_scratch());
  c.flush_events();
  st.session_open = false;
  st.pending_distance_m = 0.0;
  for (auto& foot : st.feet) {
    foot.in_contact = false;
    foot.last_ic_t_us = kNoTime;
    foot.last_to_t_us = kNoTime;
  }
  st.last_any_ic_t_us = kNoTime;
  st.cadence_spm = kNaN;
  c.emit(o);
}

void maybe_end_idle(Ctx& c) {
  auto& st = c.st;
  if (!st.session_open) return;
  const auto idle_us = std::llround(c.config.model.session_idle_end_s * kUsPerS);
  if (c.t - st.last_step_t_us > idle_us) close_session(c, false);
}

// F1 from the data: a streaming device silent for device_silent_s of aligned time while this
// runner's samples keep coming (we are fusing one now) is a dropout; its next sample clears it.
void check_silent_devices(Ctx& c) {
  const auto silent_us = std::llround(c.config.model.device_silent_s * kUsPerS);
  for (auto& slot : c.st.slots) {
    if (!slot.streams || slot.silent || slot.last_t_us == kNoTime) continue;
    if (c.t - slot.last_t_us <= silent_us) continue;
    slot.silent = true;
    c.st.rules.on_device_stale(c.t, slot.device, slot.kind, slot.side, true,
                               seconds(c.t - slot.last_t_us), event_scratch());
  }
  c.flush_events();
}



void note_device(Ctx& c, const ReleasedSample& r) {
  auto& slot = c.st.slots[r.slot < kDeviceRoleCount ? r.slot : 0];
  slot.last_t_us = c.t;
  slot.device = r.sample.device;
  slot.kind = r.sample.kind;
  slot.side = r.sample.side;
  slot.streams = r.sample.kind != SensorKind::kConsole;
  if (slot.silent) {
    slot.silent = false;
    c.st.rules.on_device_stale(c.t, slot.device, slot.kind, slot.side, false, kNaN, event_scratch());
    c.flush_events();
  }
}

std::int64_t state_due_t_us(const RunnerSession::State& st, double rate_hz, std::int64_t k) {
  return st.state_origin_t_us + std::llround(static_cast<double>(k) * kUsPerS / rate_hz);
}

// FusedState on a grid of state_rate_hz anchored at the first state: a sample at or past the
// next due time emits one state stamped with its own (aligned) time; times strictly increase.
void maybe_emit_state(Ctx& c) {
  auto& st = c.st;
  const double rate = c.config.model.state_rate_hz;
  if (!(rate > 0.0) || !std::isfinite(rate)) return;
  if (st.last_state_t_us != kNoTime) {
    if (c.t <= st.last_state_t_us || c.t < state_due_t_us(st, rate, st.state_k)) return;
    while (state_due_t_us(st, rate, st.state_k) <= c.t) ++st.state_k;
  } else {
    st.state_origin_t_us = c.t;
    st.state_k = 1;
  }
  st.last_state_t_us = c.t;
  st.rules.tick(c.t, event_scratch());  // time-driven clears (F4) need no step
  c.flush_events();
  check_silent_devices(c);

  const double bw = c.body_weight_n();
  Output o;
  FusedState& fs = begin_output<FusedState>(o, c.config, c.arrival_t_us, c.release_t_us);
  fs.t_us = c.t;
  std::uint8_t mask = 0;
  for (std::size_t i = 0; i < 2; ++i) {
    fs.knee_angle_rad[i] = static_cast<float>(knee_angle_now(st, static_cast<int>(i), c.t));
    fs.vgrf_bw[i] = static_cast<float>(std::isfinite(st.feet[i].force_n) ? st.feet[i].force_n / bw : kNaN);
    if (st.feet[i].in_contact) mask = static_cast<std::uint8_t>(mask | (1u << i));
  }
  fs.belt_speed_mps = static_cast<float>(st.belt_speed_mps);
  fs.incline_fraction = static_cast<float>(st.incline_fraction);
  fs.cadence_spm = static_cast<float>(st.cadence_spm);
  fs.contact_mask = mask;
  c.emit(o);
}

}  // namespace

namespace {
// A device re-sending samples it already sent (a retransmitted frame that got past the
// decoder's sequence check, or a copy inside one frame) is recognised on its own clock, before
// the sample can move the clock alignment: at or up to kResendWindowUs behind the newest sample
// seen from that device. Further behind is a backward clock jump, which is new data.
constexpr std::int64_t kResendWindowUs = 1'000'000;
}  // namespace

void RunnerSession::on_sample(const Sample& s, OutputSink& out) {
  assert(s.runner == config_->runner);
  ++counters_.samples;
  State& st = *state_;
  auto& slot = st.slots[static_cast<std::size_t>(role_of(s.kind, s.side))];
  // Only measurement streams can be re-sent data: a status, pain report or session end is an
  // event whose time may equal the last measurement's (devices stamp status with it).
  const bool measurement = std::holds_alternative<InsoleSample>(s.payload) ||
                           std::holds_alternative<KneeSample>(s.payload) ||
                           std::holds_alternative<TreadmillSample>(s.payload);
  if (measurement && slot.newest_device_t_us != kNoTime && slot.newest_device == s.device) {
    const std::int64_t behind = slot.newest_device_t_us - s.device_t_us;
    if (behind >= 0 && behind <= kResendWindowUs) {
      ++counters_.resent;
      return;
    }
  }
  const bool newer = slot.newest_device_t_us == kNoTime || slot.newest_device != s.device ||
                     s.device_t_us > slot.newest_device_t_us ||
                     slot.newest_device_t_us - s.device_t_us > kResendWindowUs;  // a clock jump
  if (measurement && newer) {
    slot.newest_device_t_us = s.device_t_us;
    slot.newest_device = s.device;
  }
  const ClockAdmission a = st.clock.on_sample(s);
  if (a.push == PushResult::kLate) ++counters_.late;
  if (a.jumped) {
    Ctx c{*config_, history_, st, counters_, out, a.aligned_t_us, s.receive_t_us, s.receive_t_us, model_id_};
    st.rules.on_clock_jump(a.aligned_t_us, s.device, s.kind, s.side,
                           static_cast<double>(a.jump.device_step_us) / kUsPerS, event_scratch());
    c.flush_events();
  }
  drain(out, s.receive_t_us);
}

void RunnerSession::drain(OutputSink& out, std::int64_t release_t_us) {
  ReleasedSample r;
  while (state_->clock.pop_ready(r)) fuse(r, out, release_t_us);
}

void RunnerSession::fuse(const ReleasedSample& r, OutputSink& out, std::int64_t release_t_us) {
  State& st = *state_;
  ++counters_.fused;
  Ctx c{*config_, history_, st, counters_, out, r.aligned_t_us, r.sample.receive_t_us, release_t_us, model_id_};
  last_t_us_ = std::max(last_t_us_, r.aligned_t_us);
  maybe_end_idle(c);  // a summary precedes the outputs of the sample that reveals the idle end
  note_device(c, r);
  const Sample& s = r.sample;
  if (const auto* in = std::get_if<InsoleSample>(&s.payload)) {
    on_insole(c, s, *in);
  } else if (const auto* k = std::get_if<KneeSample>(&s.payload)) {
    on_knee(c, s, *k);
  } else if (const auto* t = std::get_if<TreadmillSample>(&s.payload)) {
    on_treadmill(c, *t);
  } else if (const auto* p = std::get_if<PainReport>(&s.payload)) {
    st.rules.on_pain(c.t, *p, history_.previous_session_pain_score, event_scratch());
    c.flush_events();
  } else if (std::holds_alternative<SessionEnd>(s.payload)) {
    if (st.session_open) close_session(c, true);
  }
  maybe_emit_state(c);
}

void RunnerSession::on_idle(OutputSink& out) {
  if (state_->clock.buffered() == 0) return;
  state_->clock.flush();
  drain(out, 0);
}

// F1. A silent device's last values are withdrawn: its side's force or angle, or the belt
// speed, read NaN until it reports again, and a stance in progress on a silent insole is
// abandoned instead of ending in a step whose toe-off is interpolated across the gap.
void RunnerSession::on_device_stale(std::uint32_t device, Side side, SensorKind kind, bool stale,
                                    OutputSink& out) {
  State& st = *state_;
  const std::int64_t t = last_t_us_ == kNoTime ? 0 : last_t_us_;
  Ctx c{*config_, history_, st, counters_, out, t, 0, 0, model_id_};
  if (stale) {
    const int i = side_index(side);
    if (kind == SensorKind::kInsole && i >= 0) {
      auto& foot = st.feet[static_cast<std::size_t>(i)];
      foot.in_contact = false;
      foot.force_n = kNaN;
      foot.last_t_us = kNoTime;
    } else if (kind == SensorKind::kKnee && i >= 0) {
      auto& knee = st.knees[static_cast<std::size_t>(i)];
      const std::int64_t last_t_us = knee.t_us;
      knee = State::Knee{};
      knee.t_us = last_t_us;  // the next sample's dt spans the silence: on_knee sees a gap
    } else if (kind == SensorKind::kTreadmill) {
      st.belt_speed_mps = kNaN;
      st.incline_fraction = kNaN;
    }
  }
  st.rules.on_device_stale(t, device, kind, side, stale, kNaN, event_scratch());
  c.flush_events();
}

SessionProgress RunnerSession::progress() const {
  const State& st = *state_;
  SessionProgress p{};
  if (!st.session_open) return p;
  p.open = true;
  p.start_t_us = st.session_start_t_us;
  p.last_step_t_us = st.last_step_t_us;
  p.steps = st.session_steps;
  p.distance_m = st.session_distance_m;
  const bool has_load = st.load_steps > 0;
  p.stress_time_integral_mpa_s = has_load ? st.session_load.stress_time_integral_mpa_s() : kNaN;
  p.damage_index = has_load ? st.session_load.damage_index() : kNaN;
  p.risk_events = st.session_events;
  return p;
}

void RunnerSession::finish(OutputSink& out) {
  State& st = *state_;
  st.clock.flush();
  drain(out, 0);
  if (!st.session_open) return;
  Ctx c{*config_, history_, st, counters_, out, last_t_us_, 0, 0, model_id_};
  close_session(c, false);
}

}  // namespace kneeload::fusion
