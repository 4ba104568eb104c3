// Photometry through transmission knots: see csp_knots.hpp.
#include "pixedfit/csp_knots.hpp"

// Floating-point exceptions are never inspected here; without trapping semantics GCC can
// vectorise the branch-free clamps of vexp8 below.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "csp_internal.hpp"
#include "pixedfit/common.hpp"

namespace pixedfit::sps {

void KnotGrid::validate(const Grid& g) const {
    require(band_off.size() == nbands + 1 && band_off[0] == 0 &&
                band_off[nbands] == static_cast<std::int64_t>(npair),
            "knot grid: band_off must hold nbands + 1 offsets from 0 to npair");
    for (std::size_t b = 0; b < nbands; ++b)
        require(band_off[b + 1] >= band_off[b], "knot grid: band_off must not decrease");
    require(knot_calz.size() == npair + nenergy && knot_lnl.size() == npair + nenergy,
            "knot grid: knot arrays must have npair + nenergy values");
    require(ncol == npair + nenergy + 2, "knot grid: ncol must be npair + nenergy + 2");
    require(ssp.size() == g.nz * g.nage * ncol, "knot grid: ssp must be nz x nage x ncol");
    require(ssp_young.empty() || ssp_young.size() == ssp.size(),
            "knot grid: ssp_young must be empty or the size of ssp");
    if (g.nu > 0) {
        require(!ssp_young.empty(), "knot grid: ssp_young is needed with nebular emission");
        require(neb.size() == g.nu * g.nz * g.nneb * ncol,
                "knot grid: neb must be nu x nz x nneb x ncol");
    }
    if (g.nq > 0)
        require(dl_delta_band.size() == g.nq * g.numin * nbands &&
                    dl_plaw_band.size() == g.nq * g.numin * nbands,
                "knot grid: dust-emission band sums must be nq x numin x nbands");
    if (g.ntau > 0)
        require(agn_band.size() == g.ntau * nbands, "knot grid: agn_band must be ntau x nbands");
}

namespace {

using namespace detail;

// exp(x) to ~2e-10 relative (see vexp_taylor): plenty for transmissions that multiply
// single-precision sums.
PIXEDFIT_INLINE double vexp8(double x) { return vexp_taylor<8>(x); }

// Transmissions of the young and old parts at n knots; `e1` holds exp(dust1_index * x)
// (the same for every model of a call). Element by element: the same values whatever the
// vector width.
PIXEDFIT_INLINE void transmissions_body(const double* calz, const double* x, const double* e1,
                                        std::size_t n, DustLaw dust_law, double dust1,
                                        double dust2, double n_index, double* t_young,
                                        double* t_old) {
    if (dust_law == DustLaw::Calzetti) {
#pragma omp simd
        for (std::size_t i = 0; i < n; ++i) t_old[i] = vexp8(-dust2 * calz[i]);
        std::copy(t_old, t_old + n, t_young);
        return;
    }
#pragma omp simd
    for (std::size_t i = 0; i < n; ++i) {
        const double tau2 = dust2 * vexp8(n_index * x[i]);
        t_old[i] = vexp8(-tau2);
        t_young[i] = vexp8(-(tau2 + dust1 * e1[i]));
    }
}

PIXEDFIT_MULTIVERSION
void transmissions_v3(const double* calz, const double* x, const double* e1, std::size_t n,
                      DustLaw dust_law, double dust1, double dust2, double n_index,
                      double* t_young, double* t_old) {
    transmissions_body(calz, x, e1, n, dust_law, dust1, dust2, n_index, t_young, t_old);
}

// 8 doubles per vector on AVX-512 (the compiler's default for x86-64-v4 is 4).
PIXEDFIT_AVX512_WIDE
void transmissions_v4(const double* calz, const double* x, const double* e1, std::size_t n,
                      DustLaw dust_law, double dust1, double dust2, double n_index,
                      double* t_young, double* t_old) {
    transmissions_body(calz, x, e1, n, dust_law, dust1, dust2, n_index, t_young, t_old);
}

void knot_transmissions(const double* calz, const double* x, const double* e1, std::size_t n,
                        DustLaw dust_law, double dust1, double dust2, double n_index,
                        double* t_young, double* t_old) {
    call_widest(transmissions_v4, transmissions_v3, calz, x, e1, n, dust_law, dust1, dust2,
                n_index, t_young, t_old);
}

// Nonzero line weights per band (compressed rows of the nbands x nline matrix).
struct LineWeights {
    std::vector<std::int64_t> off;  // [nbands + 1]
    std::vector<std::int64_t> line;
    std::vector<double> weight;
    LineWeights(const double* lw, std::size_t nbands, std::size_t nline) : off(nbands + 1, 0) {
        for (std::size_t b = 0; b < nbands; ++b) {
            for (std::size_t l = 0; lw && l < nline; ++l) {
                if (lw[b * nline + l] != 0.0) {
                    line.push_back(static_cast<std::int64_t>(l));
                    weight.push_back(lw[b * nline + l]);
                }
            }
            off[b + 1] = static_cast<std::int64_t>(line.size());
        }
    }
};

// exp(dust1_index * x) at the knots (first) and at the lines (second).
struct BirthCloud {
    std::vector<double> knots, lines;
};

// Per-thread scratch of finish_knots.
struct KnotScratch {
    double *t_young, *t_old, *neb, *m_neb, *l_lum, *lines, *line_old;
    KnotScratch(const Grid& g, const KnotGrid& kg, double* s) {
        const std::size_t nk = kg.npair + kg.nenergy;
        t_young = s;
        t_old = t_young + nk;
        neb = t_old + nk;
        m_neb = neb + kg.ncol;
        l_lum = m_neb + g.nneb;
        lines = l_lum + g.nline;
        line_old = lines + g.nline;
    }
    static std::size_t size(const Grid& g, const KnotGrid& kg) {
        return 2 * (kg.npair + kg.nenergy) + kg.ncol + g.nneb + 3 * g.nline;
    }
};

void finish_knots(const Grid& g, const KnotGrid& kg, const Config& cfg, const double* p,
                  double scale, const LineWeights& lw, const BirthCloud& bc, double* work,
                  double* scratch, const float* stars, double* out, double* derived) {
    const std::size_t nb = kg.nbands, ncol = kg.ncol;
    const std::size_t bol = kg.npair + kg.nenergy, bol_ion = bol + 1;
    KnotScratch s(g, kg, scratch);
    const float* young = stars;
    const float* old = stars + ncol;
    const double* m_young = work;
    const double* m_old = work + g.nage;
    const double mtot = work[2 * g.nage];
    const SfhShape sh(p);
    const bool ok = mtot > 1e-290 && std::isfinite(mtot);

    std::size_t iz = 0;
    double fz = 0.0;
    bracket(g.logz.data(), g.nz, p[P_LOGZSOL], iz, fz);
    double surv = 0.0, living = 0.0;
    stellar_masses(g, m_young, m_old, iz, fz, surv, living);
    if (!ok || !(surv > 0.0)) {
        std::fill(out, out + nb, 0.0);
        if (derived) std::fill(derived, derived + N_DERIVED, 0.0);
        return;
    }
    const double mscale = std::pow(10.0, p[P_LOG_MASS]) / surv;  // Msun formed
    const bool neb_on = cfg.nebular && g.nu > 0;

    // intrinsic stellar bolometric luminosity (the young rows keep their ionising part in
    // the last column only, so this holds whether or not the gas absorbs it)
    const double l_star =
        static_cast<double>(young[bol]) + young[bol_ion] + old[bol] + old[bol_ion];
    const double young_ion = neb_on ? 0.0 : young[bol_ion];

    std::fill(s.neb, s.neb + ncol, 0.0);
    if (neb_on)
        nebular_part(g, cfg, sh, mtot, p, iz, fz, kg.neb.data(), ncol, s.neb, s.m_neb, s.l_lum);

    const double dust2 = p[P_DUST2];
    const double dust1 = (cfg.dust_law == DustLaw::CharlotFall) ? p[P_DUST1] : 0.0;
    knot_transmissions(kg.knot_calz.data(), kg.knot_lnl.data(), bc.knots.data(),
                       kg.npair + kg.nenergy, cfg.dust_law, dust1, dust2, p[P_DUST_INDEX],
                       s.t_young, s.t_old);
    double l_abs_cont = 0.0;
    for (std::size_t c = kg.npair; c < bol; ++c)
        l_abs_cont += (young[c] + s.neb[c]) * (1.0 - s.t_young[c]) + old[c] * (1.0 - s.t_old[c]);
    double l_abs = l_abs_cont, l_lines_att = 0.0;
    if (neb_on) {
        // lines come from the young populations: their transmission is the young one
        knot_transmissions(g.line_calz.data(), g.line_lnl.data(), bc.lines.data(), g.nline,
                           cfg.dust_law, dust1, dust2, p[P_DUST_INDEX], s.lines, s.line_old);
        for (std::size_t l = 0; l < g.nline; ++l) {
            const double tr = s.lines[l], lum = s.l_lum[l];
            l_abs += lum * (1.0 - tr);
            l_lines_att += lum * tr;
            s.lines[l] = lum * tr * mscale;
        }
    }
    l_abs = std::max(l_abs, 0.0);
    const DustEmission de = dust_emission(g, cfg, p, l_abs);
    const AgnPart ap = agn_part(g, cfg, p, l_star);

    for (std::size_t b = 0; b < nb; ++b) {
        double acc = 0.0;
        for (auto c = static_cast<std::size_t>(kg.band_off[b]);
             c < static_cast<std::size_t>(kg.band_off[b + 1]); ++c)
            acc += (young[c] + s.neb[c]) * s.t_young[c] + old[c] * s.t_old[c];
        // the attenuated light is >= 0; the interpolant can dip below where the
        // transmission falls by orders of magnitude across a band (> ~12 mag of
        // attenuation), and the nearest admissible value is then 0
        acc = std::max(acc, 0.0);
        if (de.on) {
            for (int c = 0; c < 4; ++c) {
                if (de.w[c] == 0.0) continue;
                const std::size_t i = de.idx[c] * nb + b;
                acc += de.norm * de.w[c] *
                       ((1 - de.gam) * kg.dl_delta_band[i] + de.gam * kg.dl_plaw_band[i]);
            }
        }
        if (ap.l_agn > 0.0)
            acc += ap.l_agn * ((1.0 - ap.ft) * kg.agn_band[ap.it * nb + b] +
                               ap.ft * kg.agn_band[ap.it1 * nb + b]);
        acc *= mscale * scale;
        if (neb_on) {
            for (auto j = lw.off[b]; j < lw.off[b + 1]; ++j)
                acc += lw.weight[static_cast<std::size_t>(j)] *
                       s.lines[static_cast<std::size_t>(lw.line[static_cast<std::size_t>(j)])];
        }
        out[b] = acc;
    }
    if (derived) {
        double der[N_DERIVED] = {0.0};
        sfh_derived(cfg, sh, mtot, mscale, surv, living, der);
        // the dust templates re-emit exactly l_abs (their integrals are those of the grid)
        const double l_int = young[bol] + young_ion + s.neb[bol] + s.neb[bol_ion] + old[bol] +
                             old[bol_ion];
        const double emitted = de.on ? l_abs : 0.0;
        const double lbol = mscale * (l_int - l_abs_cont + emitted + ap.l_agn) +
                            mscale * l_lines_att;
        der[D_DUST_MASS] = mscale * de.dust_mass;
        der[D_LBOL] = lbol;
        der[D_FAGN_BOL] = lbol > 0.0 ? mscale * ap.l_agn / lbol : 0.0;
        der[D_L_ABSORBED] = mscale * l_abs;
        std::copy(der, der + N_DERIVED, derived);
    }
}

}  // namespace

void compute_photometry_knots(const Grid& g, const KnotGrid& kg, const Config& cfg,
                              const double* params, std::size_t n, double scale,
                              const double* line_weights, double* out, double* derived,
                              int threads) {
    g.validate();
    kg.validate(g);
    require(is_valid(cfg.sfh_form), "sfh_form must be 0-4");
    require(is_valid(cfg.dust_law), "dust_law must be 0 or 1");
    require(!(cfg.nebular && g.nu > 0 && g.nline > 0) || line_weights != nullptr,
            "compute_photometry_knots: line_weights are needed with nebular emission");
    const bool neb_on = cfg.nebular && g.nu > 0;
    const SspRows rows{g.nz, g.nage, kg.ncol, kg.ssp.data(),
                       neb_on ? kg.ssp_young.data() : kg.ssp.data(), g.logz.data(),
                       g.age_edges.data()};
    const std::size_t nb = kg.nbands;
    const LineWeights lw(neb_on ? line_weights : nullptr, nb, g.nline);
    BirthCloud bc;
    for (const double x : kg.knot_lnl) bc.knots.push_back(std::exp(cfg.dust1_index * x));
    for (const double x : g.line_lnl) bc.lines.push_back(std::exp(cfg.dust1_index * x));
    run_batched(rows, cfg, params, n, KnotScratch::size(g, kg), threads,
                [&](std::size_t u, double* work, double* sc, float* st) {
        finish_knots(g, kg, cfg, params + u * N_PARAMS, scale, lw, bc, work, sc, st,
                     out + u * nb, derived ? derived + u * N_DERIVED : nullptr);
    });
}

}  // namespace pixedfit::sps
