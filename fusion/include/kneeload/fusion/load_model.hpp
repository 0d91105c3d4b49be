// The sagittal knee load model of MODEL.md §3 (Ward/Powers/Brechter family), the per-step
// cumulative load of §4, the ITB loaded-zone time of §5 and the discrete loading rates of §1.
//
// Pure: no I/O, clocks, threads or logging. Thread ownership: StepLoad and SessionLoad belong to
// the one thread that owns the runner's session. Memory: StepLoad allocates its force trace at
// construction (2 KB); begin/add/finish and everything in SessionLoad never allocate.
//
// Units: forces in N at the inputs, reported in body weights (BW = m·g); moments in N·m, reported
// in N·m/kg; knee flexion and shank inclination in rad at the inputs (SI, docs/model-
// conventions.md), but the §3 polynomials take degrees because their source is written in
// degrees; areas in mm², so N/mm² is MPa; time in µs on the runner's clock, durations in s.
//
// Absolute MPa is model-dependent (MODEL.md §3D: the quadratic area gives ~1.7× the MRI
// stress), so every value that leaves this module is tagged with a model id (load_model_id()).
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <vector>

namespace kneeload::fusion {

// ---- MODEL.md §3B-§3D: closed-form pieces ----------------------------------------------------

// Flexion range over which the §3 polynomials are used; inputs outside are clamped to it. The
// sources fit stance-phase knee angles; k(θ)'s denominator falls towards zero near 130°.
inline constexpr double kLoadModelMinFlexionDeg = 0.0;
inline constexpr double kLoadModelMaxFlexionDeg = 90.0;

// MODEL.md §3B: effective quadriceps lever arm, MA [mm] = 8.0e-5θ³ − 0.013θ² + 0.28θ + 46 (θ in
// degrees) → 46/45/40/33 mm at 0/30/45/60°. van Eijden-based, as coded in aaronsfox/pfjrf-methods
// calc_PFJRF.py. θ is clamped to [0°, 90°]; NaN gives NaN.
double quadriceps_moment_arm_mm(double knee_flexion_deg);

// MODEL.md §3C: PFJRF/F_q ratio k(θ) = (0.462 + 0.00147θ − 3.84e-5θ²) /
// (1 − 0.0162θ + 1.55e-4θ² − 6.98e-7θ³) → 0.46/0.74/0.86/0.95 at 0/30/45/60° (same source).
// θ is clamped to [0°, 90°]; NaN gives NaN.
double pfjrf_ratio(double knee_flexion_deg);

// MODEL.md §3D: the patellofemoral contact-area model. The MRI tables are the verified default.
enum class ContactAreaModel : std::uint8_t {
  kMriMale = 0,          // Besier et al. 2005 J Orthop Res 23:345: 210/414/520 mm² at 0/30/60°
  kMriFemale = 1,        // Besier 2005: 210/269/396 mm² at 0/30/60°
  kQuadraticPowers = 2,  // 0.0781θ² + 0.6763θ + 151.75 mm²: recalled, NOT verified (MODEL.md §3D)
};

// MODEL.md §3D: PFJ contact area A(θ) in mm². MRI tables: linear interpolation between 0/30/60°,
// × 1.24 for weight bearing, θ clamped to [0°, 60°]. Quadratic: as written (it is reported as
// already weight-bearing), θ clamped to [0°, 90°]. NaN gives NaN.
double pfj_contact_area_mm2(ContactAreaModel model, double knee_flexion_deg);

// Damage exponents of MODEL.md §4: b = 4 (default) and b = 8 (sensitivity variant).
struct DamageExponents {
  double primary = 4.0;
  double sensitivity = 8.0;
};

// Model id string literal naming the contact-area table and the damage exponents, e.g.
// "pfj-mri-besier2005-m/b4+b8" (MODEL.md §9: each event carries the model id). Exponents other
// than the MODEL.md pair (4, 8) give ".../b-custom"; the exponents themselves are then in the
// session's configuration. Static storage: safe to keep in an event.
const char* load_model_id(ContactAreaModel model, DamageExponents b = {});

// MODEL.md §3B-§3D for one instant: from the knee extensor moment to PFJ stress.
struct PfjLoad {
  double quadriceps_force_n;  // F_q = M_k / MA (negative for a flexor moment)
  double pfjrf_n;             // PFJRF = k·F_q, clipped >= 0 (MODEL.md §3C)
  double contact_area_mm2;    // A(θ)
  double stress_mpa;          // σ = PFJRF / A (N/mm² = MPa)
};
// NaN in, NaN out (field by field).
PfjLoad pfj_load(double knee_moment_nm, double knee_flexion_deg, ContactAreaModel model);

// ---- MODEL.md §3A: knee moment from insole and shank ------------------------------------------

// Segment geometry of one runner (MODEL.md §3A, docs/model-conventions.md "Insole geometry").
struct LegGeometry {
  double shank_length_m;  // L_s, default 0.246·height (Winter)
  double foot_length_m;   // L_foot, default 0.152·height (Winter)
  double ankle_x_norm;    // ankle projection on the insole, fraction of foot length from the heel
};
constexpr LegGeometry default_leg_geometry(double height_m, double ankle_x_norm = 0.25) {
  return LegGeometry{0.246 * height_m, 0.152 * height_m, ankle_x_norm};
}

// MODEL.md §3A: d = x_knee − x_CoP = L_s·sin φ_s + (ankle_x_norm − x_CoP)·L_foot in metres;
// positive when the knee is ahead of the CoP (extensor moment demand). φ_s in rad, x_CoP in
// normalised insole length (0 heel … 1 toe).
double knee_moment_arm_m(const LegGeometry& leg, double shank_inclination_rad, double x_cop_norm);

// ---- MODEL.md §1: loading rate from discrete samples -------------------------------------------

struct LoadingRateParams {
  // The impact peak (IP) is the first local maximum in the first `impact_search_fraction` of
  // stance that stands out from the active peak: the force falls by >= impact_min_drop_bw after
  // it, before the stance's maximum. [H] engineering defaults; at 100 Hz the IP is often not
  // resolved at all, and then the 3-12 % window below is used.
  double impact_search_fraction = 0.35;
  double impact_min_drop_bw = 0.05;
  double no_ip_window_start = 0.03;  // MODEL.md §1: with no IP, 3-12 % of stance
  double no_ip_window_end = 0.12;
};

// MODEL.md §1: VALR (BW/s) = slope between 20 % and 80 % of the IP, VILR (BW/s) = max dF/dt of
// the sample intervals overlapping that window; with no IP, both over 3-12 % of stance. At
// 100 Hz 2-4 samples fall in that window and VALR reads low: trend it, and do not compare it
// with published cutoffs below ~500 Hz (sample_rate_hz says which case this is).
struct LoadingRate {
  double valr_bw_per_s = std::numeric_limits<double>::quiet_NaN();
  double vilr_bw_per_s = std::numeric_limits<double>::quiet_NaN();
  double impact_peak_bw = std::numeric_limits<double>::quiet_NaN();  // NaN: no IP found
  double sample_rate_hz = std::numeric_limits<double>::quiet_NaN();  // of the stance samples
  double window_start_s = std::numeric_limits<double>::quiet_NaN();  // after IC
  double window_end_s = std::numeric_limits<double>::quiet_NaN();
  bool has_impact_peak = false;
};

// Loading rate of one stance from its force trace: t_us and force_bw of equal length, in time
// order, the first point at initial contact (the detection threshold) and the last one at or
// before toe-off. REQUIRES: t_us.size() == force_bw.size(); ic_t_us < to_t_us. Fewer than 3
// points or no rising window gives NaN rates.
LoadingRate compute_loading_rate(std::span<const std::int64_t> t_us,
                                 std::span<const double> force_bw, std::int64_t ic_t_us,
                                 std::int64_t to_t_us, const LoadingRateParams& params = {});

// ---- MODEL.md §3-§5 per step: StepLoad ---------------------------------------------------------

// Configuration of the load model for one runner; each field is a config key.
struct LoadModelParams {
  double body_mass_kg = 70.0;
  LegGeometry leg = default_leg_geometry(1.75);
  ContactAreaModel area_model = ContactAreaModel::kMriMale;
  // Per-runner scale on M_k, calibrated against a lab session when possible (MODEL.md §3A:
  // inertia and F_ap are ignored, expect bias) [H]. 1 = uncalibrated.
  double moment_scale = 1.0;
  // MODEL.md §5: the ITB loaded zone, 20° <= θ <= 30° with F_v >= 0.5 BW, IC → peak flexion.
  double itb_zone_min_deg = 20.0;
  double itb_zone_max_deg = 30.0;
  double itb_zone_min_force_bw = 0.5;
  LoadingRateParams loading_rate;
  // Stance samples kept for the loading rate, which reads a stance up to the end of the impact
  // search (impact_search_fraction, 35 %) and up to its force maximum (before mid-stance when
  // running): half of the longest running stance, 0.35 s, at the highest insole rate MODEL.md
  // §0 weighs, 1 kHz (12 bytes each). Later samples of a longer stance still count in every
  // integral; only the trace stops, and a stance it does not cover that far gets no loading
  // rate (StepLoad::windows_cut()). ModelParams::stance_trace_samples sets it per runner.
  int max_stance_samples = 180;
};

// One stance sample as the session has it: insole force, knee flexion, shank inclination, CoP.
// NaN angles (no knee device, filter not converged) leave the load values of that sample NaN;
// the integrals then cover only the intervals where both ends are known (load_coverage).
struct StanceSample {
  std::int64_t t_us;
  double force_n;                // F_v, calibrated ΣpA
  double knee_flexion_rad;       // θ
  double shank_inclination_rad;  // φ_s
  double x_cop_norm;             // 0 heel … 1 toe
};

// Per-step results (MODEL.md §4 per step, §5, §1). NaN where the inputs did not allow a value.
struct StepLoadResult {
  std::int64_t ic_t_us = 0;
  std::int64_t to_t_us = 0;
  int samples = 0;
  double peak_force_bw = std::numeric_limits<double>::quiet_NaN();
  double peak_knee_moment_nm_per_kg = std::numeric_limits<double>::quiet_NaN();
  double peak_pfjrf_bw = std::numeric_limits<double>::quiet_NaN();
  double peak_stress_mpa = std::numeric_limits<double>::quiet_NaN();
  double stress_time_integral_mpa_s = std::numeric_limits<double>::quiet_NaN();  // J = ∫σ dt
  double pfjrf_impulse_bw_s = std::numeric_limits<double>::quiet_NaN();
  double load_coverage = 0.0;  // fraction of stance time inside the integrals (0..1)
  double peak_flexion_rad = std::numeric_limits<double>::quiet_NaN();
  double itb_zone_time_s = std::numeric_limits<double>::quiet_NaN();  // IC → peak flexion
  int itb_zone_entries = 0;  // entries into the loaded zone, IC → peak flexion ("crossings")
  LoadingRate loading_rate;
};

// Accumulates one stance: begin() at IC, add() per insole sample in stance, finish() at TO.
// Integrals use the trapezoid rule between samples; the integrand is taken to ramp linearly from
// zero at IC to the first sample and from the last sample to zero at TO (the force there is the
// detection threshold, ~0.05 BW), which biases J low by at most half a sample of threshold load.
class StepLoad {
 public:
  // Allocates the force trace (max_stance_samples). REQUIRES: body_mass_kg > 0.
  explicit StepLoad(const LoadModelParams& params);

  // IC at ic_t_us, with the force at the detection threshold (the first trace point). Drops an
  // unfinished stance.
  void begin(std::int64_t ic_t_us, double force_ic_n);
  // One stance sample. Ignored when no stance is open or t_us is not after the previous one.
  void add(const StanceSample& s);
  // Closes the stance at to_t_us and returns its results; NaN-filled if none was open.
  StepLoadResult finish(std::int64_t to_t_us);

  bool in_stance() const { return in_stance_; }
  // Steps whose loading rate was withheld (NaN but for sample_rate_hz): the trace filled before
  // the part of stance the rate reads had passed (the impact search, the no-IP window, and the
  // stance's force maximum, which an impact peak must precede), as in walking or standing on
  // the belt at a high insole rate. A rate from part of that could miss the impact peak or take
  // another; none is the honest answer.
  std::uint64_t windows_cut() const { return windows_cut_; }
  const LoadModelParams& params() const { return params_; }
  // New calibration between steps (e.g. RunnerSession::reconfigure); keeps the trace capacity.
  void set_params(const LoadModelParams& params);

 private:
  struct Point {
    std::int64_t t_us;
    double force_bw;
    double flexion_deg;  // NaN when unknown
    double moment_nm_per_kg;
    double pfjrf_bw;
    double stress_mpa;  // NaN when unknown
  };
  Point evaluate(const StanceSample& s) const;
  void integrate(const Point& a, const Point& b);
  void itb_interval(const Point& a, const Point& b);

  LoadModelParams params_;
  double body_weight_n_;
  std::vector<std::int32_t> trace_dt_us_;  // since IC: a stance spans seconds, not 35 min
  std::vector<double> trace_force_bw_;
  int trace_size_ = 0;
  bool trace_cut_ = false;  // this stance had a sample the trace had no room for
  std::uint64_t windows_cut_ = 0;
  double peak_bw_ = 0.0;  // the stance's first force maximum so far, traced or not, and its time
  std::int64_t peak_t_us_ = 0;

  bool in_stance_ = false;
  bool have_point_ = false;
  Point last_{};
  StepLoadResult r_{};
  double covered_s_ = 0.0;
  double j_ = 0.0;
  double impulse_ = 0.0;
  double zone_s_ = 0.0;
  int zone_entries_ = 0;
  bool in_zone_ = false;
};

// Stress-time integral per km from one step (MODEL.md §4: per km, 1000/(v·t_step) steps):
// J·1000/step_length. NaN unless step_length_m > 0.
double stress_time_integral_per_km(double stress_time_integral_mpa_s, double step_length_m);

// ---- MODEL.md §4 per session: SessionLoad ------------------------------------------------------

struct SessionLoadParams {
  // σ_ref of D = Σ(σᵢ/σ_ref)^b. 5 MPa is the elastic-foundation mean contact pressure in
  // running (Lenhart et al. 2015) [H]; D is a relative index, comparable only within one model
  // id and one σ_ref.
  double damage_reference_stress_mpa = 5.0;
  DamageExponents damage_exponents;
};

// Session totals (MODEL.md §4): steps, distance, ΣJ, PFJRF impulse, ITB zone time, and the
// damage index D with the default and the sensitivity exponent.
class SessionLoad {
 public:
  explicit SessionLoad(const SessionLoadParams& params = {}) : params_(params) {}

  // A step's results; its NaN parts add nothing (the step still counts).
  void add_step(const StepLoadResult& step);
  // Belt travel (m), as the session commits it.
  void add_distance(double distance_m);
  void reset();
  void set_params(const SessionLoadParams& params) { params_ = params; }

  std::uint64_t steps() const { return steps_; }
  double distance_m() const { return distance_m_; }
  double stress_time_integral_mpa_s() const { return j_; }
  double pfjrf_impulse_bw_s() const { return impulse_; }
  double itb_zone_time_s() const { return zone_s_; }
  std::uint64_t itb_zone_entries() const { return zone_entries_; }
  double damage_index() const { return d_primary_; }  // b = damage_exponents.primary
  double damage_index_sensitivity() const { return d_sensitivity_; }  // b = .sensitivity
  // ΣJ per km of belt travel; NaN before any distance.
  double stress_time_integral_per_km() const;
  const SessionLoadParams& params() const { return params_; }

 private:
  SessionLoadParams params_;
  std::uint64_t steps_ = 0;
  double distance_m_ = 0.0;
  double j_ = 0.0;
  double impulse_ = 0.0;
  double zone_s_ = 0.0;
  std::uint64_t zone_entries_ = 0;
  double d_primary_ = 0.0;
  double d_sensitivity_ = 0.0;
};

}  // namespace kneeload::fusion
