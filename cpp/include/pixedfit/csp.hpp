// Composite stellar populations: the forward model of pixedfit's SPS engine.
//
// A model spectrum (rest frame, L_sun / Angstrom) is built from an SSP grid for one
// parameter vector, one step per source file of cpp/src:
//   1. star-formation history (5 forms) integrated exactly over each SSP age bin, split at
//      the birth-cloud age t_bc into young and old parts (csp_sfh);
//   2. linear interpolation in log Z between the two bracketing grid metallicities (csp);
//   3. nebular continuum and lines from the same young age weights (interpolated in log U),
//      ionising stellar photons removed (csp_nebular);
//   4. attenuation: Calzetti (2000) on everything, or Charlot & Fall (2000) with dust1 on the
//      young part (exponent dust1_index) and dust2 (lambda/5500)^dust_index on all
//      (csp_attenuation);
//   5. energy balance: the absorbed luminosity re-emitted with Draine & Li (2007) templates
//      (csp_dust_emission);
//   6. AGN torus: fagn times the intrinsic stellar bolometric luminosity (csp_agn);
//   7. normalisation so that the surviving stellar mass (living stars + remnants) is
//      10^log_mass (csp: finish_model calls the steps in this order).
// Everything here is per model; the batched entry points loop over models with OpenMP and
// give identical results for any number of threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace pixedfit::sps {

// Parameter vector layout (all models of a batch use it).
enum Param : int {
    P_LOG_MASS = 0,  // log10 surviving stellar mass [Msun]
    P_LOGZSOL,       // log10(Z / Zsun)
    P_LOG_AGE,       // log10 age since the onset of star formation [Gyr]
    P_LOG_TAU,       // log10 tau [Gyr]
    P_LOG_T0,        // log10 T0 (log-normal, Gaussian SFH)
    P_LOG_ALPHA,     // log10 alpha (double power law)
    P_LOG_BETA,      // log10 beta (double power law)
    P_DUST1,         // birth-cloud optical depth at 5500 A (CF00)
    P_DUST2,         // diffuse optical depth at 5500 A
    P_DUST_INDEX,    // power-law index of the diffuse curve (CF00)
    P_GAS_LOGU,      // log10 ionisation parameter
    P_LOG_UMIN,      // log10 U_min (DL07)
    P_LOG_GAMMA,     // log10 gamma (DL07)
    P_LOG_QPAH,      // log10 q_PAH [per cent]
    P_LOG_FAGN,      // log10 L_torus / L_bol,stars
    P_LOG_TAUAGN,    // log10 torus tau_V
    N_PARAMS
};

// Derived quantities written per model.
enum Derived : int {
    D_MASS_SURVIVING = 0,  // living stars + remnants [Msun] (= 10^log_mass)
    D_MASS_LIVING,         // living stars only [Msun]
    D_MASS_FORMED,         // total mass formed [Msun]
    D_SFR,                 // SFR now [Msun/yr]
    D_SFR_10MYR,           // mean SFR over the last 10 Myr [Msun/yr]
    D_SFR_100MYR,          // mean SFR over the last 100 Myr [Msun/yr]
    D_MW_AGE,              // mass-weighted (formed mass) age [Gyr]
    D_DUST_MASS,           // dust mass [Msun] (0 without dust emission)
    D_LBOL,                // bolometric luminosity of the total spectrum [Lsun]
    D_FAGN_BOL,            // L_AGN / L_bol (0 without AGN)
    D_L_ABSORBED,          // luminosity absorbed by dust [Lsun]
    N_DERIVED
};

enum Component : int { C_STELLAR = 0, C_NEBULAR, C_DUST, C_AGN, N_COMPONENTS };

// The names of the parameters (in Param order), derived quantities (in Derived order) and
// spectral components (in Component order) as the Python API spells them; the bindings
// export these tuples, the only copy of the lists.
inline constexpr const char* kParamNames[] = {
    "log_mass", "logzsol", "log_age", "log_tau", "log_t0", "log_alpha", "log_beta", "dust1",
    "dust2", "dust_index", "gas_logu", "log_umin", "log_gamma", "log_qpah", "log_fagn",
    "log_tauagn",
};
inline constexpr const char* kDerivedNames[] = {
    "stellar_mass", "living_mass", "formed_mass", "sfr", "sfr_10myr", "sfr_100myr",
    "mw_age", "dust_mass", "lbol", "fagn_bol", "l_absorbed",
};
inline constexpr const char* kComponentNames[] = {"stellar", "nebular", "dust", "agn"};
static_assert(sizeof(kParamNames) / sizeof(kParamNames[0]) == N_PARAMS,
              "one name per parameter");
static_assert(sizeof(kDerivedNames) / sizeof(kDerivedNames[0]) == N_DERIVED,
              "one name per derived quantity");
static_assert(sizeof(kComponentNames) / sizeof(kComponentNames[0]) == N_COMPONENTS,
              "one name per component");

// Star-formation history forms; the values are the Python API's sfh_form codes. t is the
// time since the onset [Gyr]; tau, T0, alpha, beta the linear shape parameters (10^P_LOG_*).
enum class SfhForm : int {
    Tau = 0,             // SFR ~ exp(-t / tau)
    DelayedTau = 1,      // SFR ~ t exp(-t / tau)
    LogNormal = 2,       // SFR ~ exp(-(ln t - T0)^2 / (2 tau^2)) / t
    Gaussian = 3,        // SFR ~ exp(-(t - T0)^2 / (2 tau^2))
    DoublePowerLaw = 4,  // SFR ~ 1 / ((t / tau)^alpha + (t / tau)^-beta)
};
// Dust attenuation laws; the values are the Python API's dust_law codes.
enum class DustLaw : int {
    CharlotFall = 0,  // Charlot & Fall (2000): birth clouds (dust1) and diffuse ISM (dust2)
    Calzetti = 1,     // Calzetti et al. (2000), dust2 on everything
};
// True when the value is one of the enumerators (a cast may put any int into an enum).
inline bool is_valid(SfhForm f) {
    return static_cast<int>(f) >= 0 && static_cast<int>(f) <= 4;
}
inline bool is_valid(DustLaw d) { return d == DustLaw::CharlotFall || d == DustLaw::Calzetti; }

struct Config {
    SfhForm sfh_form = SfhForm::DoublePowerLaw;
    DustLaw dust_law = DustLaw::Calzetti;
    bool dust_emission = false;
    bool nebular = false;
    bool agn = false;
    double dust1_index = -1.0;  // CF00 birth-cloud exponent (FSPS's dust1_index)
    double t_bc = 0.01;         // birth-cloud age [Gyr] (FSPS's dust_tesc = 7 -> 10 Myr)
};

// Everything the forward model needs, on one model wavelength grid (owned copies).
struct Grid {
    // SSP part
    std::size_t nz = 0, nage = 0, nwave = 0;
    std::vector<float> ssp;            // [nz][nage][nwave], Lsun/A per Msun formed
    std::vector<double> logz;          // [nz] log10(Z/Zsun), increasing
    std::vector<double> age_edges;     // [nage+1] look-back age bin edges [Gyr]
    std::vector<double> mass_surv;     // [nz][nage] living + remnants per Msun formed
    std::vector<double> mass_living;   // [nz][nage]
    std::vector<double> wave;          // [nwave] A
    std::vector<double> dwave;         // [nwave] trapezoid weights (integral = sum f*dwave)
    std::vector<double> calzetti;      // [nwave] k(lambda)/R_V (Calzetti 2000, tau/tau_V)
    std::vector<double> ln_l5500;      // [nwave] ln(lambda/5500)
    std::size_t n_ionising = 0;        // number of grid points below 911.8 A
    // nebular part (nu == 0: none)
    std::size_t nu = 0, nneb = 0, nline = 0;
    std::vector<double> logu;          // [nu]
    std::vector<double> neb_edges;     // [nneb+1] Gyr
    std::vector<float> neb_cont;       // [nu][nz][nneb][nwave] Lsun/A per Msun formed in bin
    std::vector<double> line_lum;      // [nu][nz][nneb][nline] Lsun per Msun formed in bin
    std::vector<std::int64_t> line_start;  // [nline] first grid index of each line profile
    std::vector<std::int64_t> line_off;    // [nline+1] offsets into line_prof
    std::vector<double> line_prof;     // profile values with sum(prof * dwave) = 1
    std::vector<double> line_calz;     // [nline] Calzetti k/R_V at the line wavelengths
    std::vector<double> line_lnl;      // [nline] ln(lambda_line / 5500)
    // dust emission (nq == 0: none)
    std::size_t nq = 0, numin = 0;
    std::vector<double> qpah, umin;    // [nq], [numin] (linear values)
    std::vector<float> dl_delta, dl_plaw;  // [nq][numin][nwave] erg/s/A per H
    std::vector<double> dl_int_delta, dl_int_plaw;  // [nq][numin] integrals (erg/s per H)
    std::vector<double> dust_to_h;     // [nq] dust-to-H mass ratio
    // AGN (ntau == 0: none)
    std::size_t ntau = 0;
    std::vector<double> agn_tau;       // [ntau] linear tau_V
    std::vector<float> agn_tmpl;       // [ntau][nwave] unit integral on this grid

    // Check every size; throws std::invalid_argument naming the problem.
    void validate() const;
};

// Mass formed (per unit of the unnormalised SFR shape) between times t_lo and t_hi since
// the onset, for SFH form `form` with the linear shape parameters (tau, t0, alpha, beta).
double sfh_mass_between(SfhForm form, const double shape[4], double t_lo, double t_hi);
// The unnormalised SFR shape at time t since the onset.
double sfh_rate(SfhForm form, const double shape[4], double t);
// Integral of t * SFR(t) over [0, age] (first moment, unnormalised).
double sfh_first_moment(SfhForm form, const double shape[4], double age);

// Mass formed per SSP age bin for 1 Msun formed in total: `young` gets the part of each bin
// younger than t_bc, `old` the rest (both of length nage). Returns the total unnormalised
// mass (<= 0 or non-finite when the SFH is degenerate, i.e. forms less than 1e-290 within
// [0, age]; the weights are then zero).
double sfh_bin_masses(SfhForm form, const double shape[4], double age, const double* edges,
                      std::size_t nage, double t_bc, double* young, double* old);

// One model: rest-frame total spectrum (nwave) and optional components
// (N_COMPONENTS x nwave, may be null), derived quantities (N_DERIVED). `work` is scratch
// space of at least model_work_size(grid) doubles.
std::size_t model_work_size(const Grid& grid);
// If `lines` is not null the nebular lines are not put on the grid but returned there
// (nline values, attenuated luminosities in Lsun, already scaled to the model's mass).
void compute_model(const Grid& grid, const Config& cfg, const double* params, double* spec,
                   double* components, double* derived, double* work,
                   double* lines = nullptr);

// The second half of compute_model: everything after the stellar spectra, which the
// batched entry points compute for blocks of models at once.
// `scratch` (optional) replaces the scratch part of `work`; `stars` holds the young and
// old stellar spectra (2 x nwave, single precision) (see csp.cpp).
void finish_model(const Grid& grid, const Config& cfg, const double* params, double* spec,
                  double* components, double* derived, double* work, double* lines,
                  double* scratch, float* stars);

// Batched spectra: params (n x N_PARAMS) -> spec (n x nwave), components
// (n x N_COMPONENTS x nwave, optional), derived (n x N_DERIVED). OpenMP over models.
void compute_spectra(const Grid& grid, const Config& cfg, const double* params, std::size_t n,
                     double* spec, double* components, double* derived, int threads);

// Batched photometry: every model spectrum is multiplied by `trans` (nwave, optional, e.g.
// IGM) and by `scale` (e.g. the dimming factor), then reduced with concatenated band
// weights (see photometry.hpp). Nebular lines, when `line_weights` (nbands x nline) is
// given, are added exactly as sum_l line_weights[b][l] * L_line (the weights hold the
// filter response at the line, IGM and dimming) instead of being put on the grid.
// out (n x nbands), derived (n x N_DERIVED, optional).
void compute_photometry(const Grid& grid, const Config& cfg, const double* params,
                        std::size_t n, const double* trans, double scale,
                        const std::int64_t* starts, const std::int64_t* offsets,
                        const double* weights, std::size_t nbands,
                        const double* line_weights, double* out, double* derived,
                        int threads);

}  // namespace pixedfit::sps
