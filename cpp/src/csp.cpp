// Composite stellar populations: see csp.hpp. The physical steps of a model live in their
// own files (csp_sfh, csp_nebular, csp_attenuation, csp_dust_emission, csp_agn); this one
// has the stellar part, the grid checks and the entry points.
#include "pixedfit/csp.hpp"

// Floating-point exceptions are never inspected here; without trapping semantics GCC can
// vectorise branch-free clamps (the flags of the whole forward model).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "pixedfit/common.hpp"
#include "csp_internal.hpp"

namespace pixedfit::sps {

void Grid::validate() const {
    require(nz >= 1 && nage >= 1 && nwave >= 2, "csp grid: empty SSP grid");
    require(ssp.size() == nz * nage * nwave, "csp grid: ssp size mismatch");
    require(logz.size() == nz, "csp grid: logz size mismatch");
    require(age_edges.size() == nage + 1, "csp grid: age_edges must have nage + 1 values");
    require(mass_surv.size() == nz * nage && mass_living.size() == nz * nage,
            "csp grid: mass arrays must be nz x nage");
    require(wave.size() == nwave && dwave.size() == nwave && calzetti.size() == nwave &&
                ln_l5500.size() == nwave,
            "csp grid: wavelength arrays must have nwave values");
    require(n_ionising <= nwave, "csp grid: n_ionising > nwave");
    for (std::size_t i = 0; i + 1 < nz; ++i)
        require(logz[i + 1] > logz[i], "csp grid: logz must increase");
    for (std::size_t i = 0; i < nage; ++i)
        require(age_edges[i + 1] > age_edges[i], "csp grid: age_edges must increase");
    if (nu > 0) {
        require(logu.size() == nu && neb_edges.size() == nneb + 1,
                "csp grid: nebular logu/edges size mismatch");
        require(neb_cont.size() == nu * nz * nneb * nwave, "csp grid: neb_cont size mismatch");
        require(line_lum.size() == nu * nz * nneb * nline, "csp grid: line_lum size mismatch");
        require(line_calz.size() == nline && line_lnl.size() == nline,
                "csp grid: line attenuation arrays size mismatch");
        require(line_start.size() == nline && line_off.size() == nline + 1,
                "csp grid: line profile index size mismatch");
        require(line_off[0] == 0 &&
                    line_off[nline] == static_cast<std::int64_t>(line_prof.size()),
                "csp grid: line profile offsets do not match");
        for (std::size_t l = 0; l < nline; ++l) {
            const std::int64_t len = line_off[l + 1] - line_off[l];
            require(len >= 0 && line_start[l] >= 0 &&
                        line_start[l] + len <= static_cast<std::int64_t>(nwave),
                    "csp grid: line profile outside the wavelength grid");
        }
    }
    if (nq > 0) {
        require(qpah.size() == nq && umin.size() == numin && dust_to_h.size() == nq,
                "csp grid: dust-emission axes size mismatch");
        require(dl_delta.size() == nq * numin * nwave && dl_plaw.size() == nq * numin * nwave,
                "csp grid: dust-emission templates size mismatch");
        require(dl_int_delta.size() == nq * numin && dl_int_plaw.size() == nq * numin,
                "csp grid: dust-emission integrals size mismatch");
    }
    if (ntau > 0) {
        require(agn_tau.size() == ntau && agn_tmpl.size() == ntau * nwave,
                "csp grid: AGN template size mismatch");
    }
}

namespace detail {

// Index i and weight f so that x ~ (1-f) v[i] + f v[i+1]; x clamped to [v0, v_last].
void bracket(const double* v, std::size_t n, double x, std::size_t& i, double& f) {
    if (n == 1 || x <= v[0]) {
        i = 0;
        f = 0.0;
        return;
    }
    if (x >= v[n - 1]) {
        i = n - 2;
        f = 1.0;
        return;
    }
    i = static_cast<std::size_t>(std::upper_bound(v, v + n, x) - v) - 1;
    if (i > n - 2) i = n - 2;
    f = (x - v[i]) / (v[i + 1] - v[i]);
}

// y += ca * a + cb * b. The hot loop of the model: compiled for AVX2/FMA as well as the
// baseline ISA (chosen at run time) where the compiler supports function multi-versioning.
PIXEDFIT_MULTIVERSION
void axpy2(double* y, const float* a, double ca, const float* b, double cb, std::size_t n) {
    if (cb == 0.0) {
#pragma omp simd
        for (std::size_t k = 0; k < n; ++k) y[k] += ca * static_cast<double>(a[k]);
    } else if (ca == 0.0) {
#pragma omp simd
        for (std::size_t k = 0; k < n; ++k) y[k] += cb * static_cast<double>(b[k]);
    } else {
#pragma omp simd
        for (std::size_t k = 0; k < n; ++k)
            y[k] += ca * static_cast<double>(a[k]) + cb * static_cast<double>(b[k]);
    }
}

// block_sums for L lanes (models) at a time: L accumulators of one vector V of columns
// (8 or 16 floats) stay in registers while the rows of every age stream past once per
// vector of columns. Each age costs two row loads and 2L weight broadcasts for 2L vector
// multiply-adds: the broadcasts bound the loop, and with 16 columns per vector each
// broadcast does twice the work. Every column is summed over the ages in the same order
// with the same operations whatever the vector (or one column at a time, for the last
// columns), so the result does not depend on the width.
#if defined(__GNUC__)
typedef float Float8 __attribute__((vector_size(32)));
typedef float Float16 __attribute__((vector_size(64)));

template <std::size_t L, class V>
PIXEDFIT_INLINE void block_sums_pass(const float* r0, const float* r1, std::size_t ncol,
                                     const float* w0, const float* w1, std::size_t a0,
                                     std::size_t a1, float* const* out, std::size_t nb,
                                     std::size_t k0) {
    V acc[L];
    for (std::size_t u = 0; u < L; ++u) acc[u] = V{};
    for (std::size_t a = a0; a < a1; ++a) {
        V p0, p1;
        std::memcpy(&p0, r0 + a * ncol + k0, sizeof p0);
        std::memcpy(&p1, r1 + a * ncol + k0, sizeof p1);
        // the rows are read a vector of columns at a time across all ages, a stride the
        // hardware prefetchers do not follow: ask for the next cache line of each row ahead
        __builtin_prefetch(r0 + a * ncol + k0 + 16);
        __builtin_prefetch(r1 + a * ncol + k0 + 16);
        const float* c0 = w0 + a * kBlock;
        const float* c1 = w1 + a * kBlock;
        for (std::size_t u = 0; u < L; ++u) {
            acc[u] += c0[u] * p0;
            acc[u] += c1[u] * p1;
        }
    }
    for (std::size_t u = 0; u < nb; ++u) std::memcpy(out[u] + k0, &acc[u], sizeof acc[u]);
}
#endif

// (W: floats per vector of the main passes, 8 or 16; a last pass of 8 then the columns
// one at a time)
template <std::size_t L, std::size_t W>
PIXEDFIT_INLINE void block_sums_lanes(const float* r0, const float* r1, std::size_t ncol,
                                      const float* w0, const float* w1, std::size_t a0,
                                      std::size_t a1, float* const* out, std::size_t nb) {
    std::size_t k0 = 0;
#if defined(__GNUC__)
    if constexpr (W == 16) {
        for (; k0 + 16 <= ncol; k0 += 16)
            block_sums_pass<L, Float16>(r0, r1, ncol, w0, w1, a0, a1, out, nb, k0);
    }
    for (; k0 + 8 <= ncol; k0 += 8)
        block_sums_pass<L, Float8>(r0, r1, ncol, w0, w1, a0, a1, out, nb, k0);
#endif
    for (; k0 < ncol; ++k0) {  // (the last columns) the same arithmetic, one at a time
        float acc[L] = {};
        for (std::size_t a = a0; a < a1; ++a) {
            const float p0 = r0[a * ncol + k0], p1 = r1[a * ncol + k0];
            for (std::size_t u = 0; u < L; ++u) {
                acc[u] += w0[a * kBlock + u] * p0;
                acc[u] += w1[a * kBlock + u] * p1;
            }
        }
        for (std::size_t u = 0; u < nb; ++u) out[u][k0] = acc[u];
    }
}

template <std::size_t W>
PIXEDFIT_INLINE void block_sums_width(const float* r0, const float* r1, std::size_t ncol,
                                      const float* w0, const float* w1, std::size_t a0,
                                      std::size_t a1, float* const* out, std::size_t nb) {
    if (nb > 4)
        block_sums_lanes<8, W>(r0, r1, ncol, w0, w1, a0, a1, out, nb);
    else if (nb > 2)
        block_sums_lanes<4, W>(r0, r1, ncol, w0, w1, a0, a1, out, nb);
    else if (nb > 1)
        block_sums_lanes<2, W>(r0, r1, ncol, w0, w1, a0, a1, out, nb);
    else
        block_sums_lanes<1, W>(r0, r1, ncol, w0, w1, a0, a1, out, nb);
}

namespace {

PIXEDFIT_MULTIVERSION
void block_sums_8(const float* r0, const float* r1, std::size_t ncol, const float* w0,
                  const float* w1, std::size_t a0, std::size_t a1, float* const* out,
                  std::size_t nb) {
    block_sums_width<8>(r0, r1, ncol, w0, w1, a0, a1, out, nb);
}

// AVX-512 (x86-64-v4): 16 columns per vector, 32 vector registers. On 8 models x 221
// ages x 274 columns, 2.3 instead of 3.9 us per model (Xeon with AVX-512; 16 columns
// with AVX2's 16 registers spill and take 11 us).
PIXEDFIT_AVX512
void block_sums_16(const float* r0, const float* r1, std::size_t ncol, const float* w0,
                   const float* w1, std::size_t a0, std::size_t a1, float* const* out,
                   std::size_t nb) {
    block_sums_width<16>(r0, r1, ncol, w0, w1, a0, a1, out, nb);
}

}  // namespace

bool block_sums_of_width(std::size_t width, const float* r0, const float* r1,
                         std::size_t ncol, const float* w0, const float* w1, std::size_t a0,
                         std::size_t a1, float* const* out, std::size_t nb) {
    const FlushDenormals flush;  // (subnormal rows cost microcode assists: common.hpp)
    if (width == 16 && cpu_has_avx512()) {
        block_sums_16(r0, r1, ncol, w0, w1, a0, a1, out, nb);
        return true;
    }
    if (width != 8) return false;
    block_sums_8(r0, r1, ncol, w0, w1, a0, a1, out, nb);
    return true;
}

void block_sums(const float* r0, const float* r1, std::size_t ncol, const float* w0,
                const float* w1, std::size_t a0, std::size_t a1, float* const* out,
                std::size_t nb) {
    block_sums_of_width(cpu_has_avx512() ? 16 : 8, r0, r1, ncol, w0, w1, a0, a1, out, nb);
}

}  // namespace detail

std::size_t model_work_size(const Grid& g) {
    return (2 * g.nage + 1) + (4 * g.nwave + g.nneb + g.nline);
}

namespace detail {

std::size_t prepare_model(const SspRows& r, const Config& cfg, const double* p, double* work,
                          float* stars, double& fz) {
    std::fill(stars, stars + 2 * r.ncol, 0.0f);
    const SfhShape s(p);
    work[2 * r.nage] = sfh_bin_masses(cfg.sfh_form, s.shape, s.age, r.age_edges, r.nage,
                                      cfg.t_bc, work, work + r.nage);
    std::size_t iz = 0;
    fz = 0.0;
    bracket(r.logz, r.nz, p[P_LOGZSOL], iz, fz);
    return iz;
}

PIXEDFIT_MULTIVERSION
void stellar_masses(const Grid& g, const double* m_young, const double* m_old, std::size_t iz,
                    double fz, double& surv, double& living) {
    const std::size_t iz1 = (g.nz > 1) ? iz + 1 : iz;
    const double* s0 = &g.mass_surv[iz * g.nage];
    const double* s1 = &g.mass_surv[iz1 * g.nage];
    const double* l0 = &g.mass_living[iz * g.nage];
    const double* l1 = &g.mass_living[iz1 * g.nage];
    double sv = 0.0, lv = 0.0;
    // (the ages without mass add exact zeros: no branch, so that the loop vectorises)
#pragma omp simd reduction(+ : sv, lv)
    for (std::size_t a = 0; a < g.nage; ++a) {
        const double m = m_young[a] + m_old[a];
        sv += m * ((1.0 - fz) * s0[a] + fz * s1[a]);
        lv += m * ((1.0 - fz) * l0[a] + fz * l1[a]);
    }
    surv = sv;
    living = lv;
}

}  // namespace detail

namespace {

using namespace detail;

// Scratch layout of finish_model (see model_work_size): the persistent part of `work`
// (SFH weights, kept between the stages of the batched path) is followed by scratch space
// (which the batched path shares per thread: `scratch` may point elsewhere).
std::size_t scratch_size(const Grid& g) { return 4 * g.nwave + g.nneb + g.nline; }

// The buffers of one model inside `stars` (young, old: nwave floats each, Lsun/A per Msun
// formed), `work` (m_young, m_old: nage SFH weights; mtot) and the scratch space (neb,
// t_young, t_old, extra: nwave each; m_neb: nneb; l_lum: nline), in that order.
struct WorkView {
    float *young, *old;
    double *m_young, *m_old, *mtot;
    double *neb, *t_young, *t_old, *extra, *m_neb, *l_lum;
    WorkView(const Grid& g, double* w, float* stars, double* scratch = nullptr) {
        const std::size_t nw = g.nwave;
        young = stars;        // young stars (< t_bc), intrinsic
        old = young + nw;     // old stars, intrinsic
        m_young = w;
        m_old = m_young + g.nage;
        mtot = m_old + g.nage;
        neb = scratch ? scratch : mtot + 1;  // nebular, intrinsic
        t_young = neb + nw;   // transmission of the young part
        t_old = t_young + nw; // transmission of the old part
        extra = t_old + nw;   // dust emission
        m_neb = extra + nw;
        l_lum = m_neb + g.nneb;
    }
};

// Stellar spectra (young, old) of one model, with the arithmetic of the batched path.
void accumulate_stars(const Grid& g, double* work, float* stars, std::size_t iz, double fz) {
    WorkView w(g, work, stars);
    const std::size_t nw = g.nwave, iz1 = (g.nz > 1) ? iz + 1 : iz;
    std::vector<float> wt(4 * g.nage * kBlock, 0.0f);
    float *wy0 = wt.data(), *wy1 = wy0 + g.nage * kBlock;
    float *wo0 = wy1 + g.nage * kBlock, *wo1 = wo0 + g.nage * kBlock;
    lane_weights(w.m_young, w.m_old, fz, g.nage, 0, wy0, wy1, wo0, wo1);
    const float* r0 = &g.ssp[iz * g.nage * nw];
    const float* r1 = &g.ssp[iz1 * g.nage * nw];
    block_sums(r0, r1, nw, wy0, wy1, 0, g.nage, &w.young, 1);
    block_sums(r0, r1, nw, wo0, wo1, 0, g.nage, &w.old, 1);
}

// Outputs of a model without stars (a degenerate SFH or no surviving mass): all zero.
void zero_model(const Grid& g, double* spec, double* comp, double* derived, double* lines_out) {
    const std::size_t nw = g.nwave;
    std::fill(spec, spec + nw, 0.0);
    if (comp) std::fill(comp, comp + N_COMPONENTS * nw, 0.0);
    if (derived) std::fill(derived, derived + N_DERIVED, 0.0);
    if (lines_out) std::fill(lines_out, lines_out + g.nline, 0.0);
}

// Intrinsic stellar bolometric luminosity [Lsun per Msun formed] of the young and old
// stellar spectra (nwave each, Lsun/A per Msun formed).
double stellar_luminosity(const Grid& g, const float* young, const float* old) {
    double l_star = 0.0;
    for (std::size_t k = 0; k < g.nwave; ++k) l_star += (young[k] + old[k]) * g.dwave[k];
    return l_star;
}

// The sum of the steps for `scale` Msun formed: spec (nwave, Lsun/A) = attenuated stars
// and nebular continuum, dust emission (wv.extra) and the torus; with comp, the four
// components (N_COMPONENTS x nwave). Returns the bolometric luminosity of spec [Lsun].
double total_spectrum(const Grid& g, double scale, const WorkView& wv, const AgnSpectrum& agn,
                      double* spec, double* comp) {
    const std::size_t nw = g.nwave;
    double lbol = 0.0;
    for (std::size_t k = 0; k < nw; ++k) {
        const double st = wv.young[k] * wv.t_young[k] + wv.old[k] * wv.t_old[k];
        const double nb = wv.neb[k] * wv.t_young[k];
        const double ag = agn.at(k);
        const double tot = scale * (st + nb + wv.extra[k] + ag);
        spec[k] = tot;
        lbol += g.dwave[k] * tot;
        if (comp) {
            comp[C_STELLAR * nw + k] = scale * st;
            comp[C_NEBULAR * nw + k] = scale * nb;
            comp[C_DUST * nw + k] = scale * wv.extra[k];
            comp[C_AGN * nw + k] = scale * ag;
        }
    }
    return lbol;
}

}  // namespace

void compute_model(const Grid& g, const Config& cfg, const double* p, double* spec,
                   double* comp, double* derived, double* work, double* lines_out) {
    double fz = 0.0;
    std::vector<float> stars(2 * g.nwave);
    const std::size_t iz = prepare_model(spectra_rows(g), cfg, p, work, stars.data(), fz);
    accumulate_stars(g, work, stars.data(), iz, fz);
    finish_model(g, cfg, p, spec, comp, derived, work, lines_out, nullptr, stars.data());
}

void finish_model(const Grid& g, const Config& cfg, const double* p, double* spec,
                  double* comp, double* derived, double* work, double* lines_out,
                  double* scratch, float* stars) {
    WorkView wv(g, work, stars, scratch);
    std::fill(wv.neb, wv.neb + 4 * g.nwave, 0.0);  // neb, t_young, t_old, extra
    const SfhShape sh(p);
    const double mtot = *wv.mtot;
    std::size_t iz = 0;
    double fz = 0.0;
    bracket(g.logz.data(), g.nz, p[P_LOGZSOL], iz, fz);
    double surv = 0.0, living = 0.0;  // per Msun formed
    stellar_masses(g, wv.m_young, wv.m_old, iz, fz, surv, living);
    if (!(mtot > 1e-290 && std::isfinite(mtot)) || !(surv > 0.0)) {
        zero_model(g, spec, comp, derived, lines_out);
        return;
    }
    const double scale = std::pow(10.0, p[P_LOG_MASS]) / surv;  // Msun formed
    const double l_star = stellar_luminosity(g, wv.young, wv.old);

    const bool neb_on = cfg.nebular && g.nu > 0;
    if (neb_on) {
        add_nebular_emission(g, cfg, sh, mtot, p, iz, fz, lines_out != nullptr, wv.young,
                             wv.neb, wv.m_neb, wv.l_lum);
    }
    const Absorption ab = attenuate(g, cfg, p, wv.young, wv.old, wv.neb,
                                    neb_on ? wv.l_lum : nullptr, wv.t_young, wv.t_old,
                                    lines_out);
    const DustEmission de = add_dust_emission(g, cfg, p, ab.l_abs, wv.extra);
    const AgnPart agn = agn_part(g, cfg, p, l_star);

    double lbol = total_spectrum(g, scale, wv, AgnSpectrum(g, agn), spec, comp);
    if (lines_out) {
        for (std::size_t l = 0; l < g.nline; ++l) lines_out[l] *= scale;
        lbol += scale * ab.l_lines_att;
    }
    if (derived) {
        double der[N_DERIVED] = {0.0};
        sfh_derived(cfg, sh, mtot, scale, surv, living, der);
        der[D_DUST_MASS] = scale * de.dust_mass;
        der[D_LBOL] = lbol;
        der[D_FAGN_BOL] = lbol > 0.0 ? scale * agn.l_agn / lbol : 0.0;
        der[D_L_ABSORBED] = scale * ab.l_abs;
        std::copy(der, der + N_DERIVED, derived);
    }
}

void compute_spectra(const Grid& g, const Config& cfg, const double* params, std::size_t n,
                     double* spec, double* components, double* derived, int threads) {
    g.validate();
    require(is_valid(cfg.sfh_form), "sfh_form must be 0-4");
    require(is_valid(cfg.dust_law), "dust_law must be 0 or 1");
    const std::size_t nw = g.nwave;
    run_batched(spectra_rows(g), cfg, params, n, scratch_size(g), threads,
                [&](std::size_t u, double* work, double* sc, float* st) {
        finish_model(g, cfg, params + u * N_PARAMS, spec + u * nw,
                     components ? components + u * N_COMPONENTS * nw : nullptr,
                     derived ? derived + u * N_DERIVED : nullptr, work, nullptr, sc, st);
    });
}

void compute_photometry(const Grid& g, const Config& cfg, const double* params,
                        std::size_t n, const double* trans, double scale,
                        const std::int64_t* starts, const std::int64_t* offsets,
                        const double* weights, std::size_t nbands,
                        const double* line_weights, double* out, double* derived,
                        int threads) {
    g.validate();
    require(is_valid(cfg.sfh_form), "sfh_form must be 0-4");
    require(is_valid(cfg.dust_law), "dust_law must be 0 or 1");
    const std::size_t nw = g.nwave;
    for (std::size_t b = 0; b < nbands; ++b) {
        require(offsets[b + 1] >= offsets[b] && starts[b] >= 0 &&
                    starts[b] + (offsets[b + 1] - offsets[b]) <= static_cast<std::int64_t>(nw),
                "compute_photometry: band weights outside the wavelength grid");
    }
    const int nt = resolve_threads(threads);
    std::vector<double> spec_all(static_cast<std::size_t>(std::max(nt, 1)) * nw);
    std::vector<double> lines_all(static_cast<std::size_t>(std::max(nt, 1)) *
                                  std::max<std::size_t>(g.nline, 1));
    // the nonzero line weights of each band, in line order (a band sees few of the lines,
    // and adding the others' exact zeros changes no sum)
    std::vector<std::size_t> line_off(nbands + 1, 0), line_idx;
    std::vector<double> line_w;
    if (line_weights && g.nline > 0) {
        for (std::size_t b = 0; b < nbands; ++b) {
            for (std::size_t l = 0; l < g.nline; ++l) {
                if (line_weights[b * g.nline + l] != 0.0) {
                    line_idx.push_back(l);
                    line_w.push_back(line_weights[b * g.nline + l]);
                }
            }
            line_off[b + 1] = line_idx.size();
        }
    }
    run_batched(spectra_rows(g), cfg, params, n, scratch_size(g), threads,
                [&](std::size_t u, double* work, double* sc, float* st) {
        const auto tid = static_cast<std::size_t>(omp_get_thread_num());
        double* spec = &spec_all[tid * nw];
        double* lp = (line_weights && g.nline > 0)
                         ? &lines_all[tid * std::max<std::size_t>(g.nline, 1)]
                         : nullptr;
        finish_model(g, cfg, params + u * N_PARAMS, spec, nullptr,
                     derived ? derived + u * N_DERIVED : nullptr, work, lp, sc, st);
        if (trans) {
            for (std::size_t k = 0; k < nw; ++k) spec[k] *= trans[k];
        }
        for (std::size_t b = 0; b < nbands; ++b) {
            const double* w = weights + offsets[b];
            const double* f = spec + starts[b];
            const std::int64_t len = offsets[b + 1] - offsets[b];
            double acc = 0.0;
            for (std::int64_t j = 0; j < len; ++j) acc += w[j] * f[j];
            acc *= scale;
            if (lp) {
                for (std::size_t j = line_off[b]; j < line_off[b + 1]; ++j)
                    acc += line_w[j] * lp[line_idx[j]];
            }
            out[u * nbands + b] = acc;
        }
    });
}

}  // namespace pixedfit::sps
