// Dust attenuation: see csp_attenuation.hpp.
// Floating-point exceptions are never inspected here; without trapping semantics GCC can
// vectorise branch-free clamps (the flags of the whole forward model).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "csp_attenuation.hpp"

#include <algorithm>
#include <cmath>

#include "pixedfit/common.hpp"
#include "vexp.hpp"

namespace pixedfit::sps::detail {

namespace {

using pixedfit::detail::vexp_taylor;

// exp(x) to ~1e-15 relative (see vexp_taylor).
PIXEDFIT_INLINE double vexp(double x) { return vexp_taylor<12>(x); }

// Transmissions exp(-tau) of the young (< t_bc) and old parts at n wavelengths, element by
// element: the same values whatever the vector width.
PIXEDFIT_INLINE void transmissions_body(const double* calz, const double* x, std::size_t nw,
                                        DustLaw dust_law, double dust1, double dust2,
                                        double n, double n1, double* t_young, double* t_old) {
    if (dust_law == DustLaw::Calzetti) {
#pragma omp simd
        for (std::size_t i = 0; i < nw; ++i) t_old[i] = vexp(-dust2 * calz[i]);
        std::copy(t_old, t_old + nw, t_young);
        return;
    }
#pragma omp simd
    for (std::size_t i = 0; i < nw; ++i) {
        const double tau2 = dust2 * vexp(n * x[i]);
        const double tau1 = dust1 * vexp(n1 * x[i]);
        t_old[i] = vexp(-tau2);
        t_young[i] = vexp(-(tau1 + tau2));
    }
}

PIXEDFIT_MULTIVERSION
void transmissions_v3(const double* calz, const double* x, std::size_t nw, DustLaw dust_law,
                      double dust1, double dust2, double n, double n1, double* t_young,
                      double* t_old) {
    transmissions_body(calz, x, nw, dust_law, dust1, dust2, n, n1, t_young, t_old);
}

// 8 doubles per vector on AVX-512 (the compiler's default for x86-64-v4 is 4).
PIXEDFIT_AVX512_WIDE
void transmissions_v4(const double* calz, const double* x, std::size_t nw, DustLaw dust_law,
                      double dust1, double dust2, double n, double n1, double* t_young,
                      double* t_old) {
    transmissions_body(calz, x, nw, dust_law, dust1, dust2, n, n1, t_young, t_old);
}

}  // namespace

void transmissions_at(const double* calz, const double* x, std::size_t nw,
                      DustLaw dust_law, double dust1, double dust2, double n, double n1,
                      double* t_young, double* t_old) {
    call_widest(transmissions_v4, transmissions_v3, calz, x, nw, dust_law, dust1, dust2, n,
                n1, t_young, t_old);
}

// Dust transmission of nebular line l.
double line_transmission(const Grid& g, const Config& cfg, const double* p, std::size_t l) {
    const double dust2 = p[P_DUST2];
    const double dust1 = (cfg.dust_law == DustLaw::CharlotFall) ? p[P_DUST1] : 0.0;
    if (cfg.dust_law == DustLaw::Calzetti) return std::exp(-dust2 * g.line_calz[l]);
    const double x = g.line_lnl[l];
    return std::exp(
        -(dust2 * std::exp(p[P_DUST_INDEX] * x) + dust1 * std::exp(cfg.dust1_index * x)));
}

Absorption attenuate(const Grid& g, const Config& cfg, const double* p, const float* young,
                     const float* old, const double* neb, const double* l_lum,
                     double* t_young, double* t_old, double* lines_out) {
    const std::size_t nw = g.nwave;
    const double dust2 = p[P_DUST2];
    const double dust1 = (cfg.dust_law == DustLaw::CharlotFall) ? p[P_DUST1] : 0.0;
    transmissions_at(g.calzetti.data(), g.ln_l5500.data(), nw, cfg.dust_law, dust1, dust2,
                     p[P_DUST_INDEX], cfg.dust1_index, t_young, t_old);
    double l_abs = 0.0;
    for (std::size_t k = 0; k < nw; ++k)
        l_abs += g.dwave[k] *
                 ((young[k] + neb[k]) * (1.0 - t_young[k]) + old[k] * (1.0 - t_old[k]));
    double l_lines_att = 0.0;  // attenuated luminosity of lines kept off the grid
    if (lines_out) {
        for (std::size_t l = 0; l < g.nline; ++l) {
            const double tr = l_lum ? line_transmission(g, cfg, p, l) : 1.0;
            const double lum = l_lum ? l_lum[l] : 0.0;
            l_abs += lum * (1.0 - tr);
            l_lines_att += lum * tr;
            lines_out[l] = lum * tr;
        }
    }
    Absorption a;
    a.l_abs = std::max(l_abs, 0.0);
    a.l_lines_att = l_lines_att;
    return a;
}

}  // namespace pixedfit::sps::detail
