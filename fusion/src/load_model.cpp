// MODEL.md §3 (knee load), §4 (cumulative load), §5 (ITB zone) and §1 (loading rate).
//
// Why the code looks the way it does:
// - The §3 polynomials are kept exactly as MODEL.md writes them (degrees, mm), so a reviewer can
//   compare them with the source line by line; the SI conversions happen at the edges.
// - θ is clamped rather than rejected: a knee filter overshooting to −2° at heel strike must not
//   turn a whole step's load into NaN, and the clamp keeps k(θ) away from its pole near 130°.
// - ITB zone time is measured on the piecewise-linear interpolant of θ and F between samples,
//   not by counting samples: at 100 Hz a 10 ms zone passage is one sample or none.
// - Every intermediate is double; float only appears where the session writes StepMetrics.
#include "kneeload/fusion/load_model.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <numbers>

namespace kneeload::fusion {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kGravity = 9.80665;
constexpr double kDegPerRad = 180.0 / std::numbers::pi;
constexpr double kUsPerS = 1e6;

double clamp_flexion(double deg) {
  return std::clamp(deg, kLoadModelMinFlexionDeg, kLoadModelMaxFlexionDeg);
}

double seconds(std::int64_t dt_us) { return static_cast<double>(dt_us) / kUsPerS; }

// MODEL.md §3D, Besier et al. 2005: MRI contact areas (mm², non-weight-bearing) at 0/30/60°.
struct AreaTable {
  double at0;
  double at30;
  double at60;
};
constexpr AreaTable kBesierMale{210.0, 414.0, 520.0};
constexpr AreaTable kBesierFemale{210.0, 269.0, 396.0};
constexpr double kWeightBearingFactor = 1.24;  // MODEL.md §3D: weight bearing adds 24 %

double mri_area_mm2(const AreaTable& t, double deg) {
  const double th = std::clamp(deg, 0.0, 60.0);
  const double a = th <= 30.0 ? t.at0 + (t.at30 - t.at0) * th / 30.0
                              : t.at30 + (t.at60 - t.at30) * (th - 30.0) / 30.0;
  return kWeightBearingFactor * a;
}

// The sub-interval [s0, s1] ⊂ [0, 1] on which the linear g(s) = g0 + (g1 − g0)s lies within
// [lo, hi]. Returns false when empty.
bool linear_within(double g0, double g1, double lo, double hi, double& s0, double& s1) {
  if (g1 == g0) {
    s0 = 0.0;
    s1 = 1.0;
    return g0 >= lo && g0 <= hi;
  }
  const double a = (lo - g0) / (g1 - g0);
  const double b = (hi - g0) / (g1 - g0);
  s0 = std::max(0.0, std::min(a, b));
  s1 = std::min(1.0, std::max(a, b));
  return s0 <= s1;
}

// The loading-rate code reads a trace's times through `Times`: a span of absolute times, or
// StepLoad's offsets from IC (OffsetTimes), which give the same absolute values.
struct OffsetTimes {
  const std::int32_t* dt_us;
  std::int64_t origin_us;
  std::size_t n;
  std::int64_t operator[](std::size_t k) const { return origin_us + dt_us[k]; }
  std::size_t size() const { return n; }
};

// Linear interpolation of the trace at time t; REQUIRES t_us[0] <= t <= t_us.back().
template <class Times>
double trace_at(const Times& t_us, std::span<const double> f, double t) {
  for (std::size_t k = 1; k < t_us.size(); ++k) {
    const auto tk = static_cast<double>(t_us[k]);
    if (t <= tk) {
      const auto tp = static_cast<double>(t_us[k - 1]);
      const double frac = tk == tp ? 1.0 : (t - tp) / (tk - tp);
      return f[k - 1] + frac * (f[k] - f[k - 1]);
    }
  }
  return f.back();
}

// First time the trace rises to `level` at or before index `last`; the first point's time when
// the trace starts at or above it.
template <class Times>
double first_rise_t(const Times& t_us, std::span<const double> f, double level, std::size_t last) {
  if (f[0] >= level) return static_cast<double>(t_us[0]);
  for (std::size_t k = 1; k <= last; ++k) {
    if (f[k] >= level) {
      const auto tp = static_cast<double>(t_us[k - 1]);
      const auto tk = static_cast<double>(t_us[k]);
      return tp + (level - f[k - 1]) / (f[k] - f[k - 1]) * (tk - tp);
    }
  }
  return kNaN;
}

}  // namespace

// MODEL.md §3B: MA = 8.0e-5θ³ − 0.013θ² + 0.28θ + 46 mm (aaronsfox/pfjrf-methods calc_PFJRF.py,
// after van Eijden).
double quadriceps_moment_arm_mm(double knee_flexion_deg) {
  if (std::isnan(knee_flexion_deg)) return kNaN;
  const double t = clamp_flexion(knee_flexion_deg);
  return ((8.0e-5 * t - 0.013) * t + 0.28) * t + 46.0;
}

// MODEL.md §3C: k = (0.462 + 0.00147θ − 3.84e-5θ²)/(1 − 0.0162θ + 1.55e-4θ² − 6.98e-7θ³)
// (same source).
double pfjrf_ratio(double knee_flexion_deg) {
  if (std::isnan(knee_flexion_deg)) return kNaN;
  const double t = clamp_flexion(knee_flexion_deg);
  const double num = (-3.84e-5 * t + 0.00147) * t + 0.462;
  const double den = ((-6.98e-7 * t + 1.55e-4) * t - 0.0162) * t + 1.0;
  return num / den;
}

// MODEL.md §3D: Besier 2005 MRI table (verified default) or the Powers/Willson quadratic
// (recalled, not verified).
double pfj_contact_area_mm2(ContactAreaModel model, double knee_flexion_deg) {
  if (std::isnan(knee_flexion_deg)) return kNaN;
  switch (model) {
    case ContactAreaModel::kMriMale:
      return mri_area_mm2(kBesierMale, knee_flexion_deg);
    case ContactAreaModel::kMriFemale:
      return mri_area_mm2(kBesierFemale, knee_flexion_deg);
    case ContactAreaModel::kQuadraticPowers: {
      const double t = clamp_flexion(knee_flexion_deg);
      return (0.0781 * t + 0.6763) * t + 151.75;
    }
  }
  return kNaN;
}

const char* load_model_id(ContactAreaModel model, DamageExponents b) {
  const bool standard = b.primary == 4.0 && b.sensitivity == 8.0;
  switch (model) {
    case ContactAreaModel::kMriMale:
      return standard ? "pfj-mri-besier2005-m/b4+b8" : "pfj-mri-besier2005-m/b-custom";
    case ContactAreaModel::kMriFemale:
      return standard ? "pfj-mri-besier2005-f/b4+b8" : "pfj-mri-besier2005-f/b-custom";
    case ContactAreaModel::kQuadraticPowers:
      return standard ? "pfj-quadratic-powers/b4+b8" : "pfj-quadratic-powers/b-custom";
  }
  return "pfj-unknown";
}

// MODEL.md §3B-§3D: F_q = M_k/MA, PFJRF = max(0, k·F_q), σ = PFJRF/A.
PfjLoad pfj_load(double knee_moment_nm, double knee_flexion_deg, ContactAreaModel model) {
  PfjLoad out{};
  const double ma_m = quadriceps_moment_arm_mm(knee_flexion_deg) * 1e-3;
  out.quadriceps_force_n = knee_moment_nm / ma_m;
  out.pfjrf_n = std::max(0.0, pfjrf_ratio(knee_flexion_deg) * out.quadriceps_force_n);
  if (std::isnan(out.quadriceps_force_n)) out.pfjrf_n = kNaN;  // std::max would hide the NaN
  out.contact_area_mm2 = pfj_contact_area_mm2(model, knee_flexion_deg);
  out.stress_mpa = out.pfjrf_n / out.contact_area_mm2;
  return out;
}

// MODEL.md §3A and docs/model-conventions.md: d = L_s·sin φ_s + (ankle_x_norm − x_CoP)·L_foot.
double knee_moment_arm_m(const LegGeometry& leg, double shank_inclination_rad, double x_cop_norm) {
  return leg.shank_length_m * std::sin(shank_inclination_rad) +
         (leg.ankle_x_norm - x_cop_norm) * leg.foot_length_m;
}

namespace {

// MODEL.md §1 loading rate; see compute_loading_rate in the header for the definitions.
template <class Times>
LoadingRate loading_rate_of(const Times& t_us, std::span<const double> force_bw,
                            std::int64_t ic_t_us, std::int64_t to_t_us,
                            const LoadingRateParams& params) {
  assert(t_us.size() == force_bw.size());
  LoadingRate r;
  const std::size_t n = t_us.size();
  if (n >= 3 && t_us[n - 1] > t_us[1]) {
    r.sample_rate_hz = static_cast<double>(n - 2) / seconds(t_us[n - 1] - t_us[1]);
  }
  if (n < 3 || to_t_us <= ic_t_us) return r;
  const double tc_s = seconds(to_t_us - ic_t_us);
  const double ic = static_cast<double>(ic_t_us);

  const auto imax = static_cast<std::size_t>(std::max_element(force_bw.begin(), force_bw.end()) -
                                             force_bw.begin());
  std::size_t ip = 0;
  for (std::size_t i = 1; i + 1 < n && i < imax; ++i) {
    if (seconds(t_us[i] - ic_t_us) > params.impact_search_fraction * tc_s) break;
    if (!(force_bw[i] >= force_bw[i - 1] && force_bw[i] > force_bw[i + 1])) continue;
    const double dip = *std::min_element(force_bw.begin() + static_cast<std::ptrdiff_t>(i + 1),
                                         force_bw.begin() + static_cast<std::ptrdiff_t>(imax));
    if (force_bw[i] - dip >= params.impact_min_drop_bw) {
      ip = i;
      break;
    }
  }

  double w0 = kNaN;
  double w1 = kNaN;
  if (ip > 0) {
    r.has_impact_peak = true;
    r.impact_peak_bw = force_bw[ip];
    w0 = first_rise_t(t_us, force_bw, 0.2 * r.impact_peak_bw, ip);
    w1 = first_rise_t(t_us, force_bw, 0.8 * r.impact_peak_bw, ip);
  } else {
    w0 = ic + params.no_ip_window_start * tc_s * kUsPerS;
    w1 = ic + params.no_ip_window_end * tc_s * kUsPerS;
    const auto last_t = static_cast<double>(t_us[n - 1]);
    if (w0 < static_cast<double>(t_us[0]) || w1 > last_t) return r;
  }
  if (!(w1 > w0)) return r;
  r.window_start_s = (w0 - ic) / kUsPerS;
  r.window_end_s = (w1 - ic) / kUsPerS;
  r.valr_bw_per_s =
      (trace_at(t_us, force_bw, w1) - trace_at(t_us, force_bw, w0)) / ((w1 - w0) / kUsPerS);
  double vilr = kNaN;
  for (std::size_t k = 1; k < n; ++k) {
    const auto ta = static_cast<double>(t_us[k - 1]);
    const auto tb = static_cast<double>(t_us[k]);
    if (tb <= w0 || ta >= w1 || tb <= ta) continue;
    vilr = std::fmax(vilr, (force_bw[k] - force_bw[k - 1]) / ((tb - ta) / kUsPerS));
  }
  r.vilr_bw_per_s = vilr;
  return r;
}

}  // namespace

LoadingRate compute_loading_rate(std::span<const std::int64_t> t_us,
                                 std::span<const double> force_bw, std::int64_t ic_t_us,
                                 std::int64_t to_t_us, const LoadingRateParams& params) {
  return loading_rate_of(t_us, force_bw, ic_t_us, to_t_us, params);
}

// ---- StepLoad -----------------------------------------------------------------------------------

StepLoad::StepLoad(const LoadModelParams& params)
    : params_(params),
      body_weight_n_(params.body_mass_kg * kGravity),
      trace_dt_us_(static_cast<std::size_t>(std::max(params.max_stance_samples, 3))),
      trace_force_bw_(trace_dt_us_.size()) {
  assert(params.body_mass_kg > 0.0);
}

void StepLoad::set_params(const LoadModelParams& params) {
  const int capacity = static_cast<int>(trace_dt_us_.size());
  params_ = params;
  params_.max_stance_samples = capacity;
  body_weight_n_ = params.body_mass_kg * kGravity;
}

void StepLoad::begin(std::int64_t ic_t_us, double force_ic_n) {
  in_stance_ = true;
  r_ = StepLoadResult{};
  r_.ic_t_us = ic_t_us;
  covered_s_ = 0.0;
  j_ = 0.0;
  impulse_ = 0.0;
  zone_s_ = 0.0;
  zone_entries_ = 0;
  in_zone_ = false;
  // The IC point: force at the threshold, load taken as zero (see the class comment).
  last_ = Point{ic_t_us, force_ic_n / body_weight_n_, kNaN, 0.0, 0.0, 0.0};
  have_point_ = false;
  trace_dt_us_[0] = 0;
  trace_force_bw_[0] = last_.force_bw;
  trace_size_ = 1;
  trace_cut_ = false;
  peak_bw_ = last_.force_bw;
  peak_t_us_ = ic_t_us;
}

StepLoad::Point StepLoad::evaluate(const StanceSample& s) const {
  Point p{};
  p.t_us = s.t_us;
  const double force_n = std::max(0.0, s.force_n);
  p.force_bw = force_n / body_weight_n_;
  p.flexion_deg = s.knee_flexion_rad * kDegPerRad;
  const double moment_nm = params_.moment_scale * force_n *
                           knee_moment_arm_m(params_.leg, s.shank_inclination_rad, s.x_cop_norm);
  p.moment_nm_per_kg = moment_nm / params_.body_mass_kg;
  const PfjLoad pfj = pfj_load(moment_nm, p.flexion_deg, params_.area_model);
  p.pfjrf_bw = pfj.pfjrf_n / body_weight_n_;
  p.stress_mpa = pfj.stress_mpa;
  return p;
}

// MODEL.md §4: J = ∫σ dt and the PFJRF impulse, trapezoid rule over intervals with both ends
// known.
void StepLoad::integrate(const Point& a, const Point& b) {
  if (std::isnan(a.stress_mpa) || std::isnan(b.stress_mpa)) return;
  const double dt = seconds(b.t_us - a.t_us);
  covered_s_ += dt;
  j_ += 0.5 * (a.stress_mpa + b.stress_mpa) * dt;
  impulse_ += 0.5 * (a.pfjrf_bw + b.pfjrf_bw) * dt;
}

// MODEL.md §5: time with itb_zone_min_deg <= θ <= itb_zone_max_deg and F >= 0.5 BW, on the
// linear interpolant between two samples, and entries into that zone.
void StepLoad::itb_interval(const Point& a, const Point& b) {
  double f0 = 0.0, f1 = 0.0, g0 = 0.0, g1 = 0.0;
  const bool in_angle = !std::isnan(a.flexion_deg) && !std::isnan(b.flexion_deg) &&
                        linear_within(a.flexion_deg, b.flexion_deg, params_.itb_zone_min_deg,
                                      params_.itb_zone_max_deg, f0, f1);
  const bool loaded = linear_within(a.force_bw, b.force_bw, params_.itb_zone_min_force_bw,
                                    std::numeric_limits<double>::infinity(), g0, g1);
  const double s0 = std::max(f0, g0);
  const double s1 = std::min(f1, g1);
  if (!in_angle || !loaded || s0 > s1) {
    in_zone_ = false;
    return;
  }
  zone_s_ += (s1 - s0) * seconds(b.t_us - a.t_us);
  if (s0 > 0.0 || !in_zone_) ++zone_entries_;
  in_zone_ = s1 >= 1.0;
}

void StepLoad::add(const StanceSample& s) {
  if (!in_stance_ || s.t_us <= last_.t_us) return;
  const Point p = evaluate(s);
  ++r_.samples;
  integrate(last_, p);
  if (have_point_) itb_interval(last_, p);

  r_.peak_force_bw = std::fmax(r_.peak_force_bw, p.force_bw);
  if (p.force_bw > peak_bw_) {  // the first maximum, as the loading rate's search takes it
    peak_bw_ = p.force_bw;
    peak_t_us_ = p.t_us;
  }
  if (!std::isnan(p.stress_mpa)) {
    r_.peak_knee_moment_nm_per_kg = std::fmax(r_.peak_knee_moment_nm_per_kg, p.moment_nm_per_kg);
    r_.peak_pfjrf_bw = std::fmax(r_.peak_pfjrf_bw, p.pfjrf_bw);
    r_.peak_stress_mpa = std::fmax(r_.peak_stress_mpa, p.stress_mpa);
  }
  // The ITB zone counts from IC to peak flexion: snapshot the running totals at each new peak.
  if (!std::isnan(p.flexion_deg) &&
      (std::isnan(r_.peak_flexion_rad) || p.flexion_deg / kDegPerRad > r_.peak_flexion_rad)) {
    r_.peak_flexion_rad = p.flexion_deg / kDegPerRad;
    r_.itb_zone_time_s = zone_s_;
    r_.itb_zone_entries = zone_entries_;
  }

  const std::int64_t dt_us = s.t_us - r_.ic_t_us;
  if (trace_size_ < static_cast<int>(trace_dt_us_.size()) && dt_us <= INT32_MAX) {
    trace_dt_us_[static_cast<std::size_t>(trace_size_)] = static_cast<std::int32_t>(dt_us);
    trace_force_bw_[static_cast<std::size_t>(trace_size_)] = p.force_bw;
    ++trace_size_;
  } else {
    trace_cut_ = true;
  }
  last_ = p;
  have_point_ = true;
}

StepLoadResult StepLoad::finish(std::int64_t to_t_us) {
  if (!in_stance_) return StepLoadResult{};
  in_stance_ = false;
  if (have_point_ && to_t_us > last_.t_us) {
    const Point end{to_t_us, 0.0, kNaN, 0.0, 0.0, 0.0};
    integrate(last_, end);
  }
  r_.to_t_us = to_t_us;
  const double stance_s = seconds(to_t_us - r_.ic_t_us);
  if (covered_s_ > 0.0) {
    r_.stress_time_integral_mpa_s = j_;
    r_.pfjrf_impulse_bw_s = impulse_;
  }
  r_.load_coverage = stance_s > 0.0 ? std::min(1.0, covered_s_ / stance_s) : 0.0;
  const auto n = static_cast<std::size_t>(trace_size_);
  r_.loading_rate = loading_rate_of(OffsetTimes{trace_dt_us_.data(), r_.ic_t_us, n},
                                    std::span<const double>(trace_force_bw_.data(), n),
                                    r_.ic_t_us, to_t_us, params_.loading_rate);
  // The rate reads the trace up to its search end (a candidate peak needs the point after it,
  // hence strictly past it) and up to the stance's force maximum (an impact peak must come
  // before it, with a drop in between): a cut trace must reach both to give the rate the whole
  // trace would. The IC point is always traced, so n >= 1.
  if (trace_cut_) {
    const LoadingRateParams& lr = params_.loading_rate;
    const double read_fraction = std::max(lr.impact_search_fraction, lr.no_ip_window_end);
    const double read_until_us = static_cast<double>(r_.ic_t_us) +
                                 read_fraction * static_cast<double>(to_t_us - r_.ic_t_us);
    const std::int64_t last_t_us = r_.ic_t_us + trace_dt_us_[n - 1];
    if (static_cast<double>(last_t_us) <= read_until_us || last_t_us < peak_t_us_) {
      LoadingRate withheld;
      withheld.sample_rate_hz = r_.loading_rate.sample_rate_hz;
      r_.loading_rate = withheld;
      ++windows_cut_;
    }
  }
  return r_;
}

double stress_time_integral_per_km(double stress_time_integral_mpa_s, double step_length_m) {
  if (!(step_length_m > 0.0)) return kNaN;
  return stress_time_integral_mpa_s * 1000.0 / step_length_m;
}

// ---- SessionLoad --------------------------------------------------------------------------------

// MODEL.md §4: D = Σ(σᵢ/σ_ref)^b over the steps' peak stresses, b = 4 and the b = 8 variant.
void SessionLoad::add_step(const StepLoadResult& step) {
  ++steps_;
  if (std::isfinite(step.stress_time_integral_mpa_s)) j_ += step.stress_time_integral_mpa_s;
  if (std::isfinite(step.pfjrf_impulse_bw_s)) impulse_ += step.pfjrf_impulse_bw_s;
  if (std::isfinite(step.itb_zone_time_s)) zone_s_ += step.itb_zone_time_s;
  zone_entries_ += static_cast<std::uint64_t>(std::max(0, step.itb_zone_entries));
  if (std::isfinite(step.peak_stress_mpa) && params_.damage_reference_stress_mpa > 0.0) {
    const double ratio = std::max(0.0, step.peak_stress_mpa) / params_.damage_reference_stress_mpa;
    d_primary_ += std::pow(ratio, params_.damage_exponents.primary);
    d_sensitivity_ += std::pow(ratio, params_.damage_exponents.sensitivity);
  }
}

void SessionLoad::add_distance(double distance_m) {
  if (std::isfinite(distance_m) && distance_m > 0.0) distance_m_ += distance_m;
}

void SessionLoad::reset() {
  const SessionLoadParams p = params_;
  *this = SessionLoad(p);
}

double SessionLoad::stress_time_integral_per_km() const {
  if (!(distance_m_ > 0.0)) return kNaN;
  return j_ * 1000.0 / distance_m_;
}

}  // namespace kneeload::fusion
