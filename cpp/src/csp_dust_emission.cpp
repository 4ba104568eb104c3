// Dust emission: see csp_dust_emission.hpp.
// Floating-point exceptions are never inspected here; without trapping semantics GCC can
// vectorise branch-free clamps (the flags of the whole forward model).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "csp_dust_emission.hpp"

#include <algorithm>
#include <cmath>

#include "csp_internal.hpp"

namespace pixedfit::sps::detail {

namespace {

constexpr double kLsunCgs = 3.826e33;       // erg/s (the L_sun of BC03 and bagpipes)
constexpr double kMsunG = 1.98847e33;       // g
constexpr double kMassH = 1.6735575e-24;    // g, hydrogen atom

}  // namespace

DustEmission dust_emission(const Grid& g, const Config& cfg, const double* p, double l_abs) {
    DustEmission d;
    if (!(cfg.dust_emission && g.nq > 0 && l_abs > 0.0)) return d;
    std::size_t iq = 0, ium = 0;
    double fq = 0.0, fum = 0.0;
    bracket(g.qpah.data(), g.nq, std::pow(10.0, p[P_LOG_QPAH]), iq, fq);
    bracket(g.umin.data(), g.numin, std::pow(10.0, p[P_LOG_UMIN]), ium, fum);
    d.gam = std::min(std::pow(10.0, p[P_LOG_GAMMA]), 1.0);
    const std::size_t iq1 = g.nq > 1 ? iq + 1 : iq, iu1 = g.numin > 1 ? ium + 1 : ium;
    const std::size_t idx[4] = {iq * g.numin + ium, iq * g.numin + iu1, iq1 * g.numin + ium,
                                iq1 * g.numin + iu1};
    const double w4[4] = {(1 - fq) * (1 - fum), (1 - fq) * fum, fq * (1 - fum), fq * fum};
    double integral = 0.0;
    for (int c = 0; c < 4; ++c)
        integral += w4[c] * ((1 - d.gam) * g.dl_int_delta[idx[c]] + d.gam * g.dl_int_plaw[idx[c]]);
    if (!(integral > 0.0)) return d;
    d.on = true;
    d.norm = l_abs / integral;
    for (int c = 0; c < 4; ++c) {
        d.idx[c] = idx[c];
        d.w[c] = w4[c];
    }
    const double d2h = (1 - fq) * g.dust_to_h[iq] + fq * g.dust_to_h[iq1];
    // number of H nucleons = L_abs [erg/s] / (emission per H [erg/s])
    d.dust_mass = l_abs * kLsunCgs / integral * d2h * kMassH / kMsunG;
    return d;
}

DustEmission add_dust_emission(const Grid& g, const Config& cfg, const double* p, double l_abs,
                               double* extra) {
    const DustEmission de = dust_emission(g, cfg, p, l_abs);
    if (!de.on) return de;
    const std::size_t nw = g.nwave;
    for (int c = 0; c < 4; ++c) {
        if (de.w[c] == 0.0) continue;
        axpy2(extra, &g.dl_delta[de.idx[c] * nw], de.norm * de.w[c] * (1 - de.gam),
              &g.dl_plaw[de.idx[c] * nw], de.norm * de.w[c] * de.gam, nw);
    }
    return de;
}

}  // namespace pixedfit::sps::detail
