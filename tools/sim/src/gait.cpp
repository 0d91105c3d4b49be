// The simulated runner's body. Why it is built this way:
// - Momentum balance. Over one step (IC to the next IC) the only vertical forces are gravity and
//   the stance foot's vGRF, so ∫F dt = m·g·T_step; otherwise the stride-mean F ≠ 1 BW and the
//   fusion's dynamic calibration (MODEL.md §1, §9 g_cal) would learn a wrong gain. The peak
//   force is a parameter, so the fullness of the active peak (the exponent n of sin^n) is solved
//   per step to meet the impulse (MODEL.md §1's F_max ≈ m·g·(π/2)(t_f/t_c + 1) is the sine case).
// - Truth contact time is exactly the parameter at the threshold (MODEL.md §1: 40 N): the
//   stance shape sits on a pedestal at the threshold between IC and TO, with short ramps from
//   and to zero outside, so the crossings are where they were scheduled whatever n is.
// - The hip's vertical acceleration is (F_L + F_R)/m − g: free fall in flight, as the body's
//   centre of mass (the hip stands in for it) must.
// - Segment angles are C² (KnotTrack), so the gyro is the exact derivative of the truth angle
//   and the accelerometer the exact second derivative of the sensor position.
#include "gait.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <numbers>

#include "kneeload/fusion/load_model.hpp"
#include "kneeload/sim/random.hpp"

namespace kneeload::sim::detail {
namespace {

constexpr double kPi = std::numbers::pi;
constexpr double kG = fusion::kGravityMps2;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kDeg = kPi / 180.0;

constexpr std::uint64_t kTagGait = 0x6761697400000001ull;

// Standing pose (MODEL.md §9: the knee filter initialises from standing, 0–5°).
constexpr double kStandKnee = 4.0 * kDeg;
constexpr double kStandThigh = 2.0 * kDeg;
constexpr double kStandCopX = 0.42;
constexpr double kStandCopY = 0.5;

// Force ramps from zero to the threshold before IC and back after TO.
constexpr double kRampS = 0.003;

// Timing of the knots, as fractions or seconds (running kinematics, MODEL.md §2).
constexpr double kStancePeakFrac = 0.42;   // stance peak flexion, fraction of contact
constexpr double kThighMidFrac = 0.5;      // thigh mid-stance knot, fraction of contact
constexpr double kThighMidShare = 0.6;     // its value: φ_ext + 0.6·(φ_IC − φ_ext)
constexpr double kSwingPeakFrac = 0.42;    // swing peak flexion, fraction of swing
constexpr double kKneeMinBeforeIc = 0.045; // terminal-swing extension minimum, s before IC
constexpr double kThighMaxBeforeIc = 0.07; // swing-leg retraction starts, s before IC
constexpr double kThighExtAfterTo = 0.02;  // thigh most extended, s after TO

// Shank impact spike: a 30 Hz damped sine (time constant 10 ms) starting at IC.
constexpr double kSpikeOmega = 2.0 * kPi * 30.0;
constexpr double kSpikeTau = 0.010;
constexpr double kSpikeLength = 0.06;

// Shoe wear at 1 (MODEL.md §8, Escamilla-Martínez 2020), sized for R9 and no other rule. R9's
// drift needs two of its three signs: midfoot peak pressure (+20 %; here ≈ +35 %) and impact
// (IP or VALR +15 %). The same impact at +20 % is R3's insole trigger, so the impact target
// rises 15.5 %: the rendered local maximum (which the active rise props up) ≈ +14 % and the
// VALR ≈ +18 % (its 20-80 % upslope steepens more than the peak rises; the session's 100 Hz
// estimate ≈ +17 %), inside R9's 15-20 % window with ~2.5 points to either edge. The medial
// CoP shift (4 mm) is a third sign only against a shoe baseline from earlier sessions: within
// one session, the session-mean CoP_y that R9 reads still holds the baseline minutes.
constexpr double kWearImpact = 0.16;
constexpr double kWearSpike = 0.15;
constexpr double kWearMedialShiftM = 0.004;
constexpr double kWearMidfootGain = 0.15;
constexpr double kWearExcursion = 0.3;

// CoP over the metatarsal heads (cells at 0.63–0.68 of foot length).
constexpr double kForefootX = 0.68;

// The footprint is narrower across the foot than along it (the foot is ~3× longer than wide).
constexpr double kAcrossSpread = 0.6;

// MODEL.md §3A / docs/model-conventions.md: ankle projects at 0.25 of foot length.
constexpr double kAnkleXNorm = 0.25;

// Fraction of the worn-out shoe's cushioning loss at `wear` (0..1): most of it goes early
// (Cook, Kester & Brunet 1985, AJSM 13:248: shoes kept ~75 % of their shock absorption after
// 80 km and ~60 % after 400-800 km; recalled), so 1 − (1 − wear)², which is 75 % of the loss
// at half wear.
double cushioning_loss(double wear) {
  const double w = std::clamp(wear, 0.0, 1.0);
  return 1.0 - (1.0 - w) * (1.0 - w);
}

// ∫₀¹ sin^n(πu) du = Γ((n+1)/2) / (√π Γ(n/2 + 1)).
double sine_power_integral(double n) {
  return std::tgamma((n + 1.0) / 2.0) / (std::sqrt(kPi) * std::tgamma(n / 2.0 + 1.0));
}

double impact_bump(double u, double u_ip, double u_fall) {
  if (u < 0.0) return 0.0;
  if (u < u_ip) {
    const double x = std::sin(kPi / 2.0 * u / u_ip);
    return x * x;
  }
  if (u < u_ip + u_fall) {
    const double c = std::cos(kPi / 2.0 * (u - u_ip) / u_fall);
    return c * c;
  }
  return 0.0;
}

// Stance force above the pedestal, u ∈ [0, 1] between the threshold crossings.
double shape_force(double u, double n, double active, double impact, double u_ip, double u_fall) {
  const double x = std::max(0.0, std::sin(kPi * u));
  double f = active * std::pow(x, n);
  if (impact > 0.0) f += impact * impact_bump(u, u_ip, u_fall);
  return f;
}

// Root of g on [a, b] where g(a) and g(b) differ in sign (bisection: robust, 60 halvings).
template <class G>
double bisect(G g, double a, double b) {
  const bool rising = g(a) < 0.0;
  for (int i = 0; i < 60; ++i) {
    const double m = 0.5 * (a + b);
    if ((g(m) < 0.0) == rising) {
      a = m;
    } else {
      b = m;
    }
  }
  return 0.5 * (a + b);
}

// Maximum of f on [a, b]: a grid, then golden-section search around the best grid point.
template <class F>
double maximize(F f, double a, double b, int grid, double* arg) {
  double best_x = a;
  double best = f(a);
  const double h = (b - a) / grid;
  for (int i = 1; i <= grid; ++i) {
    const double x = a + h * i;
    const double v = f(x);
    if (v > best) {
      best = v;
      best_x = x;
    }
  }
  double lo = std::max(a, best_x - h);
  double hi = std::min(b, best_x + h);
  constexpr double kInvPhi = 0.6180339887498949;
  double x1 = hi - kInvPhi * (hi - lo);
  double x2 = lo + kInvPhi * (hi - lo);
  double f1 = f(x1);
  double f2 = f(x2);
  for (int i = 0; i < 40; ++i) {
    if (f1 < f2) {
      lo = x1;
      x1 = x2;
      f1 = f2;
      x2 = lo + kInvPhi * (hi - lo);
      f2 = f(x2);
    } else {
      hi = x2;
      x2 = x1;
      f2 = f1;
      x1 = hi - kInvPhi * (hi - lo);
      f1 = f(x1);
    }
  }
  const double x = f1 > f2 ? x1 : x2;
  const double v = std::max(f1, f2);
  if (v > best) {
    best = v;
    best_x = x;
  }
  if (arg != nullptr) *arg = best_x;
  return best;
}

struct Shape {
  double n, active, impact;
};

// Fullness n and amplitudes of one stance of contact time t_c (s): peak `peak` (N), impact
// total `impact_total` at u_ip (N, 0 for none), impulse over the whole support `impulse` (N·s).
// n is clamped to [0.7, 8] when the parameters cannot balance (then the impulse is off).
Shape solve_shape(double t_c, double peak, double impact_total, double u_ip, double u_fall,
                  double impulse, double threshold) {
  constexpr double kMinN = 0.7;  // flatter than a sine: a plateau-like push
  constexpr double kMaxN = 8.0;  // a narrow spike
  const double active = peak - threshold;
  const double bump_integral = 0.5 * (u_ip + u_fall);
  const auto impact_at = [&](double n) {
    if (impact_total <= 0.0) return 0.0;
    return std::max(0.0, impact_total - threshold - active * std::pow(std::sin(kPi * u_ip), n));
  };
  // ∫F = t_c·(thr + active·G(n) + impact(n)·bump) + thr·ramp, decreasing in n.
  const auto excess = [&](double n) {
    return t_c * (threshold + active * sine_power_integral(n) + impact_at(n) * bump_integral) +
           threshold * kRampS - impulse;
  };
  double n = kMinN;
  if (excess(kMaxN) >= 0.0) {
    n = kMaxN;
  } else if (excess(kMinN) > 0.0) {
    n = bisect(excess, kMinN, kMaxN);
  }
  return {n, active, impact_at(n)};
}

Eval blend_eval(const Eval& r, double stand, const Eval& run) {
  const double d = run.y - stand;
  return {stand + r.y * d, r.dy * d + r.y * run.dy,
          r.ddy * d + 2.0 * r.dy * run.dy + r.y * run.ddy};
}

Eval difference(const Eval& a, const Eval& b) { return {a.y - b.y, a.dy - b.dy, a.ddy - b.ddy}; }

}  // namespace

GaitModel::GaitModel(const SimConfig& config) : config_(config) {
  const RunnerParams& r = config_.runner;
  bw_n_ = r.body_mass_kg * kG;
  threshold_n_ = std::max(config_.contact_threshold_n, config_.contact_threshold_bw * bw_n_);
  thigh_len_ = thigh_length_m(r);
  shank_len_ = shank_length_m(r);
  foot_len_ = foot_length_m(r);
  foot_width_ = foot_width_m(r);
  running_s_ = config_.standing_s + config_.start_ramp_s;
  // The damped sine's first (largest) peak is at atan(ωτ)/ω; scale it to 1.
  const double t_peak = std::atan(kSpikeOmega * kSpikeTau) / kSpikeOmega;
  spike_norm_ = 1.0 / (std::exp(-t_peak / kSpikeTau) * std::sin(kSpikeOmega * t_peak));
  layout_ = default_insole_layout(foot_len_);
  for (int i = 0; i < kCells; ++i) {
    const auto k = static_cast<std::size_t>(i);
    cell_area_m2_[k] = layout_.area_cm2[k] / 1e4;
    cell_x_mm_[k] = layout_.x_norm[k] * foot_len_ * 1e3;
    cell_y_mm_[k] = layout_.y_norm[k] * foot_width_ * 1e3;
    cell_midfoot_[k] = layout_.region[k] == CellRegion::kMidfoot;
  }
  build_schedule();
  build_tracks();
  build_truths();
}

std::int64_t GaitModel::to_us(double t) const {
  return config_.start_t_us + std::llround(t * 1e6);
}

RunnerParams GaitModel::params_at(double t) const {
  return drifted(habitual(config_.runner, config_.plan), config_.plan.drift,
                 drift_amount(config_.plan.timing, t));
}

Eval GaitModel::blend(double t) const {
  if (running_s_ <= 0.0 || config_.start_ramp_s <= 0.0) return {1.0, 0.0, 0.0};
  const double w = config_.start_ramp_s;
  const double x = (t - config_.standing_s) / w;
  if (x <= 0.0) return {0.0, 0.0, 0.0};
  if (x >= 1.0) return {1.0, 0.0, 0.0};
  const double x2 = x * x;
  return {x2 * x * (10.0 - 15.0 * x + 6.0 * x2), 30.0 * x2 * (1.0 - x) * (1.0 - x) / w,
          60.0 * x * (1.0 - x) * (1.0 - 2.0 * x) / (w * w)};
}

double GaitModel::belt_speed(double t) const { return blend(t).y * params_at(t).speed_mps; }
double GaitModel::incline(double t) const { return params_at(t).incline_fraction; }

void GaitModel::build_schedule() {
  const GaitVariability& v = config_.variability;
  Xoshiro256 rng(derive_key(config_.seed, kTagGait));
  // Steps start 1.5 s before the session so the first sample has a past stride, and run 2 s
  // past the end so every reported step has a successor.
  const double t_end = config_.duration_s + 2.0;
  steps_.reserve(static_cast<std::size_t>((t_end + 2.0) * 250.0 / 60.0) + 8);  // ≤ 240 spm
  double t_ic = -1.5;
  int side = 0;
  while (t_ic < t_end) {
    const RunnerParams p = params_at(t_ic);
    const auto s = static_cast<std::size_t>(side);
    // Five draws per step, always, so one cv set to 0 does not shift the others' streams.
    const double z_step = rng.normal();
    const double z_contact = rng.normal();
    const double z_peak = rng.normal();
    const double z_ic = rng.normal();
    const double z_pk = rng.normal();

    const double step_s = 60.0 / p.cadence_spm * (1.0 + v.step_time_cv * z_step);
    const double t_c = std::min(p.contact_time_s * p.contact_time_factor[s] *
                                    (1.0 + v.contact_time_cv * z_contact),
                                0.85 * step_s);
    const double peak_n = p.peak_force_bw * p.peak_force_factor[s] *
                          (1.0 + v.peak_force_cv * z_peak) * bw_n_;
    const bool rearfoot = p.strike_index_pct <= 33.0;
    const double impact_n =
        rearfoot ? p.impact_peak_bw * (1.0 + kWearImpact * cushioning_loss(p.shoe_wear)) * bw_n_
                 : 0.0;

    StepPlan st;
    st.side = side;
    st.t_ic = t_ic;
    st.t_to = t_ic + t_c;
    st.u_ip = p.impact_time_frac;
    st.u_fall = 1.5 * p.impact_time_frac;
    const Shape shape =
        solve_shape(t_c, peak_n, impact_n, st.u_ip, st.u_fall, bw_n_ * step_s, threshold_n_);
    st.sup_start = t_ic - kRampS;
    st.sup_end = st.t_to + kRampS;
    st.shape_n = shape.n;
    st.active_n = shape.active;
    st.impact_n = shape.impact;

    // CoP (MODEL.md §1): from the strike point to the hallux; laterally at contact, medially
    // at push-off. Worn shoes (§8) shift it medially and speed up the early medial excursion.
    st.x0 = p.strike_index_pct / 100.0;
    st.x1 = 0.84;
    st.y0 = rearfoot ? 0.60 : 0.68;
    st.y1 = 0.35;
    st.y_k = 1.5 * (1.0 + kWearExcursion * p.shoe_wear);
    st.y_shift = -kWearMedialShiftM * p.shoe_wear / foot_width_;
    st.midfoot_gain = 1.0 + kWearMidfootGain * p.shoe_wear;
    st.spike_mps2 = p.shank_impact_g * (1.0 + kWearSpike * p.shoe_wear) * kG;

    st.knee_ic = (p.knee_ic_deg + v.angle_sd_deg * z_ic) * kDeg;
    st.knee_peak =
        (p.knee_stance_peak_deg + p.knee_stance_peak_offset_deg[s] + v.angle_sd_deg * z_pk) *
        kDeg;
    st.knee_to = p.knee_toe_off_deg * kDeg;
    st.knee_swing = p.knee_swing_peak_deg * kDeg;
    st.thigh_ic = p.thigh_ic_deg * kDeg;
    st.thigh_ext = p.thigh_extension_deg * kDeg;
    side_steps_[s].push_back(static_cast<int>(steps_.size()));
    steps_.push_back(st);
    t_ic += step_s;
    side ^= 1;
  }
}

void GaitModel::build_tracks() {
  struct Target {
    std::size_t knot;
    double t;
    double y;
  };
  for (int side = 0; side < 2; ++side) {
    const auto s = static_cast<std::size_t>(side);
    const std::vector<int>& idx = side_steps_[s];
    KnotTrack& knee = knee_[s];
    KnotTrack& thigh = thigh_[s];
    knee.reserve(4 * idx.size());
    thigh.reserve(3 * idx.size());
    std::vector<Target> knee_targets;
    std::vector<Target> thigh_targets;
    knee_targets.reserve(idx.size());
    thigh_targets.reserve(idx.size());
    double last_knee_t = -1e9;
    double last_thigh_t = -1e9;
    for (std::size_t j = 0; j < idx.size(); ++j) {
      const StepPlan& st = steps_[static_cast<std::size_t>(idx[j])];
      const double t_c = st.t_to - st.t_ic;
      const double next_ic = j + 1 < idx.size()
                                 ? steps_[static_cast<std::size_t>(idx[j + 1])].t_ic
                                 : st.t_to + 0.45;
      // Knee: terminal-swing minimum (solved so θ(t_ic) = θ_IC), stance peak, toe-off
      // minimum, swing peak.
      const double t_min = st.t_ic - std::min(kKneeMinBeforeIc, 0.5 * (st.t_ic - last_knee_t));
      knee_targets.push_back({knee.size(), st.t_ic, st.knee_ic});
      knee.add_extremum(t_min, st.knee_ic - 5.0 * kDeg);
      knee.add_extremum(st.t_ic + kStancePeakFrac * t_c, st.knee_peak);
      knee.add_extremum(st.t_to, st.knee_to);
      last_knee_t = st.t_to + kSwingPeakFrac * (next_ic - st.t_to);
      knee.add_extremum(last_knee_t, st.knee_swing);
      // Thigh: late-swing flexion maximum (solved so φ_t(t_ic) = φ_t,IC), a mid-stance pass
      // knot that keeps the thigh forward while the knee flexes, extension maximum.
      const double t_max =
          st.t_ic - std::min(kThighMaxBeforeIc, 0.5 * (st.t_ic - last_thigh_t));
      thigh_targets.push_back({thigh.size(), st.t_ic, st.thigh_ic});
      thigh.add_extremum(t_max, st.thigh_ic + 4.0 * kDeg);
      thigh.add_pass(st.t_ic + kThighMidFrac * t_c,
                     st.thigh_ext + kThighMidShare * (st.thigh_ic - st.thigh_ext));
      last_thigh_t = st.t_to + kThighExtAfterTo;
      thigh.add_extremum(last_thigh_t, st.thigh_ext);
    }
    // The solved knots change their neighbours' derivatives: iterate to a fixed point and end
    // with a solve, so θ(t_ic) and φ_t(t_ic) are exact (derivatives stay shared, so still C²).
    for (int iter = 0; iter < 6; ++iter) {
      knee.set_derivatives();
      thigh.set_derivatives();
      for (const Target& t : knee_targets) knee.pass_through(t.knot, t.t, t.y);
      for (const Target& t : thigh_targets) thigh.pass_through(t.knot, t.t, t.y);
    }
  }
}

int GaitModel::find_step(int side, double t) const {
  const std::vector<int>& idx = side_steps_[static_cast<std::size_t>(side)];
  const auto it = std::upper_bound(idx.begin(), idx.end(), t, [this](double v, int k) {
    return v < steps_[static_cast<std::size_t>(k)].sup_start;
  });
  if (it == idx.begin()) return -1;
  return *(it - 1);
}

double GaitModel::run_force(const StepPlan& s, double t) const {
  if (t <= s.sup_start || t >= s.sup_end) return 0.0;
  if (t < s.t_ic) return threshold_n_ * (t - s.sup_start) / kRampS;
  if (t > s.t_to) return threshold_n_ * (s.sup_end - t) / kRampS;
  const double u = (t - s.t_ic) / (s.t_to - s.t_ic);
  return threshold_n_ + shape_force(u, s.shape_n, s.active_n, s.impact_n, s.u_ip, s.u_fall);
}

double GaitModel::hip_accel(double t) const {
  return (force_n(0, t) + force_n(1, t)) / config_.runner.body_mass_kg - kG;
}

double GaitModel::run_force(int side, double t) const {
  const int k = find_step(side, t);
  return k < 0 ? 0.0 : run_force(steps_[static_cast<std::size_t>(k)], t);
}

double GaitModel::force_n(int side, double t) const {
  const double r = blend(t).y;
  double f = 0.0;
  if (r > 0.0) f += r * run_force(side, t);
  if (r < 1.0) f += (1.0 - r) * 0.5 * bw_n_;
  return f;
}

void GaitModel::footprint(double force, double cx, double cy, double midfoot_gain,
                          std::span<double, kCells> p) const {
  // A Gaussian footprint (sd spread_mm) normalised so Σ p·A = force (MODEL.md §1). Its centre
  // is moved (a damped Newton step per iteration) until the pressure centroid is the requested
  // CoP: the cells are coarse, so an unmoved kernel would pull the CoP towards the mid-foot.
  constexpr int kIterations = 5;
  const double sx_mm = config_.insole.spread_mm;
  const double sy_mm = kAcrossSpread * config_.insole.spread_mm;
  const double inv_x = 1.0 / (2.0 * sx_mm * sx_mm);
  const double inv_y = 1.0 / (2.0 * sy_mm * sy_mm);
  const double sx2 = sx_mm * sx_mm / (foot_len_ * foot_len_ * 1e6);  // in normalised units
  const double sy2 = sy_mm * sy_mm / (foot_width_ * foot_width_ * 1e6);
  double kx = cx;
  double ky = cy;
  std::array<double, kCells> w{};
  double sum = 0.0;
  for (int iter = 0; iter < kIterations; ++iter) {
    const double kx_mm = kx * foot_len_ * 1e3;
    const double ky_mm = ky * foot_width_ * 1e3;
    sum = 0.0;
    double mx = 0.0;
    double my = 0.0;
    for (std::size_t i = 0; i < kCells; ++i) {
      const double dx = cell_x_mm_[i] - kx_mm;
      const double dy = cell_y_mm_[i] - ky_mm;
      w[i] = std::exp(-dx * dx * inv_x - dy * dy * inv_y) * (cell_midfoot_[i] ? midfoot_gain : 1.0);
      const double wa = w[i] * cell_area_m2_[i];
      sum += wa;
      mx += wa * layout_.x_norm[i];
      my += wa * layout_.y_norm[i];
    }
    if (!(sum > 1e-300)) return;
    mx /= sum;
    my /= sum;
    const double ex = cx - mx;
    const double ey = cy - my;
    if (iter + 1 == kIterations || (std::abs(ex) < 1e-5 && std::abs(ey) < 1e-5)) break;
    // d(centroid)/d(centre) = weighted variance / spread²; clamped for a stable step.
    double vx = 0.0;
    double vy = 0.0;
    for (std::size_t i = 0; i < kCells; ++i) {
      const double wa = w[i] * cell_area_m2_[i];
      vx += wa * (layout_.x_norm[i] - mx) * (layout_.x_norm[i] - mx);
      vy += wa * (layout_.y_norm[i] - my) * (layout_.y_norm[i] - my);
    }
    kx = std::clamp(kx + ex / std::clamp(vx / sum / sx2, 0.3, 1.0), -0.5, 1.5);
    ky = std::clamp(ky + ey / std::clamp(vy / sum / sy2, 0.3, 1.0), -0.5, 1.5);
  }
  const double k = force / sum;
  for (std::size_t i = 0; i < kCells; ++i) p[i] += k * w[i];
}

void GaitModel::cop_target(const StepPlan& s, double t, double* cx, double* cy) const {
  // Stance fraction between the threshold crossings: the CoP is at the strike point at IC
  // (MODEL.md §1 strike index) and held there on the short ramps outside.
  const double u = std::clamp((t - s.t_ic) / (s.t_to - s.t_ic), 0.0, 1.0);
  // To the metatarsal heads by 60 % of stance, onto the toes in the last 30 %.
  const double a = 1.0 - std::min(u / 0.6, 1.0);
  const double b = std::clamp((u - 0.7) / 0.3, 0.0, 1.0);
  *cx = s.x0 + (kForefootX - s.x0) * (1.0 - a * a) + (s.x1 - kForefootX) * b * b * (3.0 - 2.0 * b);
  *cy = s.y0 + (s.y1 - s.y0) * (1.0 - std::pow(1.0 - u, s.y_k)) + s.y_shift;
}

double GaitModel::ideal_pressures(int side, double t, std::span<double, kCells> p) const {
  std::fill(p.begin(), p.end(), 0.0);
  const double r = blend(t).y;
  double total = 0.0;
  if (r > 0.0) {
    const int k = find_step(side, t);
    if (k >= 0) {
      const StepPlan& s = steps_[static_cast<std::size_t>(k)];
      const double f = r * run_force(s, t);
      if (f > 0.0) {
        double cx = 0.0;
        double cy = 0.0;
        cop_target(s, t, &cx, &cy);
        footprint(f, cx, cy, s.midfoot_gain, p);
        total += f;
      }
    }
  }
  if (r < 1.0) {
    const double f = (1.0 - r) * 0.5 * bw_n_;
    footprint(f, kStandCopX, kStandCopY, 1.0, p);
    total += f;
  }
  return total;
}

double GaitModel::shank_spike_mps2(int side, double t) const {
  const int k = find_step(side, t);
  if (k < 0) return 0.0;
  const StepPlan& s = steps_[static_cast<std::size_t>(k)];
  const double tau = t - s.t_ic;
  if (tau < 0.0 || tau >= kSpikeLength) return 0.0;
  return blend(t).y * s.spike_mps2 * spike_norm_ * std::exp(-tau / kSpikeTau) *
         std::sin(kSpikeOmega * tau);
}

std::array<double, 2> GaitModel::shank_specific_force(const LegKinematics& k,
                                                      double spike_mps2) const {
  // docs/model-conventions.md: specific force a − g = a + (0, g) in the world, rotated into the
  // shank frame (the world rotated by −φ_s); the impact spike is axial (sensor y).
  const double cs = std::cos(k.shank.y);
  const double ss = std::sin(k.shank.y);
  const double fx = k.shank_acc[0];
  const double fy = k.shank_acc[1] + kG;
  return {cs * fx - ss * fy, ss * fx + cs * fy + spike_mps2};
}

double GaitModel::knee_angle(int side, double t) const {
  const double r = blend(t).y;
  return kStandKnee + r * (knee_[static_cast<std::size_t>(side)].eval(t).y - kStandKnee);
}

double GaitModel::shank_angle(int side, double t) const {
  const double r = blend(t).y;
  const double thigh =
      kStandThigh + r * (thigh_[static_cast<std::size_t>(side)].eval(t).y - kStandThigh);
  return knee_angle(side, t) - thigh;
}

LegKinematics GaitModel::kinematics(int side, double t) const {
  const auto s = static_cast<std::size_t>(side);
  const Eval r = blend(t);
  LegKinematics k;
  k.thigh = blend_eval(r, kStandThigh, thigh_[s].eval(t));
  k.knee = blend_eval(r, kStandKnee, knee_[s].eval(t));
  k.shank = difference(k.knee, k.thigh);  // θ = φ_t + φ_s (docs/model-conventions.md)
  k.hip_ddy = hip_accel(t);
  // Points on a segment rotating about the hip (thigh) or the knee (shank), hip moving
  // vertically only (the treadmill holds the runner in place).
  const double ct = std::cos(k.thigh.y);
  const double st = std::sin(k.thigh.y);
  const double wt2 = k.thigh.dy * k.thigh.dy;
  // d²/dt² of (sin φ, −cos φ) = φ''(cos φ, sin φ) + φ'²(−sin φ, cos φ).
  const double ut_x = k.thigh.ddy * ct - wt2 * st;
  const double ut_y = k.thigh.ddy * st + wt2 * ct;
  const double rt = config_.knee.thigh_sensor_frac * thigh_len_;
  k.thigh_acc[0] = rt * ut_x;
  k.thigh_acc[1] = k.hip_ddy + rt * ut_y;
  const double knee_ax = thigh_len_ * ut_x;
  const double knee_ay = k.hip_ddy + thigh_len_ * ut_y;
  const double cs = std::cos(k.shank.y);
  const double ss = std::sin(k.shank.y);
  const double ws2 = k.shank.dy * k.shank.dy;
  // The shank sensor sits below the knee: p = knee − r(sin φ_s, cos φ_s), and
  // d²/dt² (sin φ, cos φ) = φ''(cos φ, −sin φ) − φ'²(sin φ, cos φ).
  const double rs = config_.knee.shank_sensor_frac * shank_len_;
  k.shank_acc[0] = knee_ax - rs * (k.shank.ddy * cs - ws2 * ss);
  k.shank_acc[1] = knee_ay - rs * (-k.shank.ddy * ss - ws2 * cs);
  return k;
}

void GaitModel::build_truths() {
  const std::size_t n = steps_.size();
  // Measured threshold crossings of every step (the rendered force, not the design).
  std::vector<double> ic(n);
  std::vector<double> to(n);
  for (std::size_t k = 0; k < n; ++k) {
    const StepPlan& s = steps_[k];
    const auto above = [&](double t) { return run_force(s, t) - threshold_n_; };
    const double mid = 0.5 * (s.t_ic + s.t_to);
    ic[k] = bisect(above, s.sup_start, mid);
    to[k] = bisect(above, mid, s.sup_end);
  }
  truths_.reserve(n);
  std::array<double, kCells> p{};
  const double mass = config_.runner.body_mass_kg;
  const fusion::ModelParams pta_defaults;
  for (std::size_t k = 1; k + 1 < n; ++k) {
    const StepPlan& s = steps_[k];
    if (s.sup_start < running_s_ || to[k] > config_.duration_s || ic[k] < 0.0) continue;
    const int side = s.side;
    StepTruth tr;
    tr.index = truths_.size();
    tr.side = side == 0 ? fusion::Side::kLeft : fusion::Side::kRight;
    tr.ic_t_us = to_us(ic[k]);
    tr.to_t_us = to_us(to[k]);
    const double t_c = to[k] - ic[k];
    tr.contact_time_s = t_c;
    tr.flight_time_s = ic[k + 1] - to[k];
    tr.step_time_s = ic[k] - ic[k - 1];
    tr.cadence_spm = 60.0 / tr.step_time_s;
    tr.belt_speed_mps = belt_speed(ic[k]);
    tr.incline_fraction = incline(ic[k]);
    tr.step_length_m = tr.belt_speed_mps * tr.step_time_s;

    const auto force = [&](double t) { return run_force(s, t); };
    tr.peak_force_bw = maximize(force, ic[k], to[k], 400, nullptr) / bw_n_;
    const double mean_above = s.active_n * sine_power_integral(s.shape_n) +
                              s.impact_n * 0.5 * (s.u_ip + s.u_fall);
    tr.impulse_bw_s = (t_c * (threshold_n_ + mean_above) + threshold_n_ * kRampS) / bw_n_;
    tr.shank_impact_g = s.spike_mps2 / kG;
    const double pta_from = ic[k] - pta_defaults.pta_lead_s;
    const double pta_until = std::min(to[k], ic[k] + pta_defaults.pta_window_s);
    const auto axial = [&](double t) {
      return shank_specific_force(kinematics(side, t), shank_spike_mps2(side, t))[1];
    };
    tr.pta_g = maximize(axial, pta_from, pta_until, 220, nullptr) / kG;

    // CoP path on the scheduled CoP (the footprint puts the pressure centroid there).
    constexpr int kPathGrid = 1000;
    double path = 0.0;
    double px = 0.0;
    double py = 0.0;
    cop_target(s, ic[k], &px, &py);
    for (int g = 1; g <= kPathGrid; ++g) {
      double cx = 0.0;
      double cy = 0.0;
      cop_target(s, ic[k] + t_c * g / kPathGrid, &cx, &cy);
      path += std::hypot((cx - px) * foot_len_, (cy - py) * foot_width_);
      px = cx;
      py = cy;
    }
    tr.cop_path_length_m = path;

    // Loading rate (MODEL.md §1): 20–80 % of the impact peak, else 3–12 % of stance.
    tr.impact_peak_bw = kNaN;
    double lr_a = ic[k] + 0.03 * t_c;
    double lr_b = ic[k] + 0.12 * t_c;
    if (s.impact_n > 0.0) {
      const double win_end = s.t_ic + (s.u_ip + s.u_fall) * (s.t_to - s.t_ic);
      double t_ip = 0.0;
      const double ip = maximize(force, ic[k], win_end, 100, &t_ip);
      if (t_ip < win_end - 1e-4) {  // an interior local maximum: a real impact peak
        tr.impact_peak_bw = ip / bw_n_;
        lr_a = bisect([&](double t) { return force(t) - 0.2 * ip; }, s.sup_start, t_ip);
        lr_b = bisect([&](double t) { return force(t) - 0.8 * ip; }, s.sup_start, t_ip);
      }
    }
    tr.valr_bw_per_s = (force(lr_b) - force(lr_a)) / (lr_b - lr_a) / bw_n_;
    const auto slope = [&](double t) { return (force(t + 1e-6) - force(t - 1e-6)) / 2e-6; };
    tr.vilr_bw_per_s = maximize(slope, lr_a, lr_b, 50, nullptr) / bw_n_;

    // Kinematics at IC and over stance.
    const LegKinematics at_ic = kinematics(side, ic[k]);
    tr.knee_ic_rad = at_ic.knee.y;
    tr.thigh_ic_rad = at_ic.thigh.y;
    tr.shank_ic_rad = at_ic.shank.y;
    double t_peak = ic[k];
    tr.knee_peak_rad =
        maximize([&](double t) { return knee_angle(side, t); }, ic[k], to[k], 100, &t_peak);

    // MODEL.md §5 loaded zone time, on a 0.25 ms grid.
    constexpr double kZoneDt = 0.25e-3;
    double zone = 0.0;
    for (double t = ic[k] + 0.5 * kZoneDt; t < t_peak; t += kZoneDt) {
      const double th = knee_angle(side, t);
      if (th >= 20.0 * kDeg && th <= 30.0 * kDeg && run_force(s, t) >= 0.5 * bw_n_) {
        zone += kZoneDt;
      }
    }
    tr.itb_zone_time_s = zone;

    // CoP statistics and knee moment from the ideal cell pressures, 100 points over stance.
    const auto centroid = [&](double t, double* x, double* y) {
      double f = 0.0;
      double fx = 0.0;
      double fy = 0.0;
      ideal_pressures(side, t, p);
      for (std::size_t i = 0; i < kCells; ++i) {
        const double fi = p[i] * cell_area_m2_[i];
        f += fi;
        fx += fi * layout_.x_norm[i];
        fy += fi * layout_.y_norm[i];
      }
      *x = fx / f;
      *y = fy / f;
      return f;
    };
    double x = 0.0;
    double y = 0.0;
    centroid(ic[k], &x, &y);
    tr.strike_index_pct = 100.0 * x;
    constexpr int kGrid = 100;
    double sum_x = 0.0;
    double sum_y = 0.0;
    double y_lo = y;
    double y_hi = y;
    double mid_peak = 0.0;
    double moment = 0.0;
    double impulse = 0.0;
    double prev_pfjrf = 0.0;
    for (int g = 0; g <= kGrid; ++g) {
      const double t = ic[k] + t_c * g / kGrid;
      const double f = centroid(t, &x, &y);
      sum_x += x;
      sum_y += y;
      if (t <= ic[k] + 0.3 * t_c) {
        y_lo = std::min(y_lo, y);
        y_hi = std::max(y_hi, y);
      }
      for (std::size_t i = 0; i < kCells; ++i) {
        if (cell_midfoot_[i]) mid_peak = std::max(mid_peak, p[i]);
      }
      const double phi_s = shank_angle(side, t);
      const double d = shank_len_ * std::sin(phi_s) + (kAnkleXNorm - x) * foot_len_;
      moment = std::max(moment, f * d / mass);
      const double pfjrf =
          fusion::pfj_load(f * d, knee_angle(side, t) / kDeg, fusion::ContactAreaModel::kMriMale)
              .pfjrf_n / bw_n_;
      if (g > 0) impulse += 0.5 * (prev_pfjrf + pfjrf) * t_c / kGrid;
      prev_pfjrf = pfjrf;
    }
    tr.cop_mean_x_norm = sum_x / (kGrid + 1);
    tr.cop_mean_y_norm = sum_y / (kGrid + 1);
    tr.cop_ml_excursion_norm = y_hi - y_lo;
    tr.cop_ml_excursion_m = tr.cop_ml_excursion_norm * foot_width_;
    tr.pfjrf_impulse_bw_s = impulse;
    tr.midfoot_peak_pressure_pa = mid_peak;
    tr.peak_knee_moment_nm_per_kg = moment;
    truths_.push_back(tr);
  }
}

}  // namespace kneeload::sim::detail
