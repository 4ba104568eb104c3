// Random dense sampling of parameter space (RDSPS): a fused likelihood / posterior kernel.
//
// For every observed SED s and every model m (optionally at every grid redshift z) the
// kernel computes, without ever holding an SED x model matrix:
//
//   * the analytic least-squares normalisation a = sum(d m w) / sum(m^2 w) over the
//     detected bands, with w = 1 / sigma^2 per band (w = 0 masks a band);
//   * chi2 = sum over detected bands of (a m - d)^2 w, plus, for every band flagged as an
//     upper limit (`upper`, Sawicki 2012: d holds the limit f_lim, sigma its 1-sigma noise),
//     -2 ln Phi((f_lim - a m) / sigma), Phi the standard normal CDF (so chi2 = -2 ln L up
//     to the Gaussian normalisation of the detected bands);
//   * ln L: Gaussian, -chi2/2 - 1/2 sum ln(2 pi sigma^2) over detected bands, or Student-t
//     with `dof` degrees of freedom, sum ln t_dof((d - a m)/sigma) over detected bands plus
//     sum ln Phi over the limits;
//   * ln prior: a per-model term (separable priors of parameters that do not scale with
//     mass), a per-redshift term, tabulated priors of mass-scaled parameters evaluated at
//     the scaled value p + log10(a), and "joint with mass" Gaussian priors whose mean
//     follows a tabulated relation of the scaled mass of the same pair;
//   * a chi2 cut: only pairs with chi2 <= the `perc_chi2` percentile of chi2 over all pairs
//     enter the posterior (100 keeps all);
//   * posterior weights exp(ln prob - max ln prob) (log-sum-exp safe), reduced on the fly to
//     the weighted mean, standard deviation and 16th/50th/84th percentiles of every
//     parameter, in the parameter's own (stored) units; mass-scaled parameters (log_mass,
//     log_sfr, log_dustmass...) are shifted by log10(a) pair by pair;
//   * the minimum-chi2 pair, ln of the summed weight (a Monte-Carlo evidence estimate up to
//     the prior volume) and, with several redshifts, the redshift posterior.
//
// Upper limits do not enter the normalisation (it stays analytic): a model whose shape
// violates a limit at the scale the detections ask for is penalised at that scale rather
// than scaled down; an SED with limits only has no normalisation (n_used = 0).
//
// Pairs with a <= 0 (data anti-correlated with the model: no positive mass fits) get zero
// weight; a SED for which no pair has a > 0 and finite ln prob reports n_used = 0 and NaN
// statistics.
//
// Percentiles come from a weighted histogram of `nhist` bins spanning the values of the
// pairs with non-negligible weight (> 1e-12 of the maximum), interpolated linearly inside
// the bin: the error is below (range / nhist).
//
// One pass over the models evaluates every pair (chunks of models, band sums in registers)
// and keeps as candidates the pairs within ln(1e-15) of the running maximum ln prob (a
// superset of the posterior's pairs, since the maximum only grows); the statistics are then
// summed over the exact set in pair order, so results are identical for any number of
// threads and either parallel mode (over SEDs, or over model chunks when there are fewer
// SEDs than threads). A chi2 cut keeps chi2 and ln prob of every pair of the SED instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace pixedfit {

// A tabulated ln-prior of a mass-scaled parameter: ln p(x) at x0 + i dx, i < table.size(),
// linear interpolation inside, -inf outside.
struct TabulatedPrior {
    std::size_t param = 0;
    double x0 = 0.0;
    double dx = 1.0;
    std::vector<double> table;
};

// ln N(p; mu(M), scale) with mu a tabulated relation (rel_x strictly increasing, linear
// interpolation, clamped at the ends) of the pair's scaled mass parameter plus the SED's
// mass offset (e.g. -log10(area) for a surface density).
struct JointMassPrior {
    std::size_t param = 0;
    std::size_t mass_param = 0;
    std::vector<double> rel_x;
    std::vector<double> rel_y;
    double scale = 1.0;
};

// Likelihood of the residuals of the detected bands; the values are the codes that
// pixedfit.fitting.rdsps.LIKELIHOODS gives "gauss" and "student_t".
enum class Likelihood : int {
    Gaussian = 0,  // -chi2 / 2 - 1/2 sum ln(2 pi sigma^2)
    StudentT = 1,  // sum ln t_dof((d - a m) / sigma)
};

struct RdspsOptions {
    Likelihood likelihood = Likelihood::Gaussian;
    double dof = 3.0;          // Student-t degrees of freedom
    double perc_chi2 = 100.0;  // keep pairs with chi2 <= this percentile of chi2
    std::size_t nhist = 4096;  // histogram bins for percentiles
    int threads = 0;           // <= 0: all cores
};

struct RdspsInputs {
    const double* obs = nullptr;          // (nsed, nband) observed fluxes
    const double* ivar = nullptr;         // (nsed, nband) 1/sigma^2, 0 masks a band
    const std::uint8_t* upper = nullptr;  // (nsed, nband) 1: obs is an upper limit, or null
    std::size_t nsed = 0;
    std::size_t nband = 0;
    const double* model_flux = nullptr;   // (nz, nband, nmod): band-major per redshift
    std::size_t nmod = 0;
    std::size_t nz = 1;
    const double* params = nullptr;       // (nmod, npar)
    std::size_t npar = 0;
    const std::uint8_t* mass_scaled = nullptr;  // (npar) 1 if shifted by log10(a)
    const double* ln_prior_model = nullptr;     // (nmod) or null
    const double* ln_prior_z = nullptr;         // (nz) or null
    const double* z_values = nullptr;           // (nz) or null; reported as a parameter if nz > 1
    const double* mass_offset = nullptr;        // (nsed) or null, for joint priors
    std::vector<TabulatedPrior> tabulated;
    std::vector<JointMassPrior> joint;
};

// Outputs; arrays of (nsed, nstat) with nstat = npar + (nz > 1 ? 1 : 0) (redshift last).
struct RdspsOutputs {
    double* mean = nullptr;
    double* std = nullptr;
    double* p16 = nullptr;
    double* p50 = nullptr;
    double* p84 = nullptr;
    std::int64_t* best_model = nullptr;  // (nsed) model index of min chi2
    std::int64_t* best_z = nullptr;      // (nsed) redshift index of min chi2
    double* best_scale = nullptr;        // (nsed) normalisation a of that pair
    double* chi2_min = nullptr;          // (nsed)
    double* ln_evidence = nullptr;       // (nsed) ln sum_pairs exp(ln prob) / npairs
    std::int64_t* n_used = nullptr;      // (nsed) pairs entering the posterior
    double* z_posterior = nullptr;       // (nsed, nz) or null
    float* weights = nullptr;            // (nsed, nz * nmod) normalised weights, or null
};

void rdsps_fit(const RdspsInputs& in, const RdspsOptions& opt, const RdspsOutputs& out);

// ln Phi(x), the log of the standard normal CDF, accurate to a few ulp for any finite x
// (an asymptotic series below x = -30, where erfc underflows).
double log_norm_cdf(double x);

}  // namespace pixedfit
