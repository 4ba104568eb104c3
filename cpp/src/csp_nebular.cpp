// Nebular emission: see csp_nebular.hpp.
// Floating-point exceptions are never inspected here; without trapping semantics GCC can
// vectorise branch-free clamps (the flags of the whole forward model).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
// No fused multiply-adds in this file: the vector variants of the line sums (line_sum_v3,
// line_sum_v4) must round like the baseline build, which has none.
#pragma GCC optimize("fp-contract=off")
#endif

#include "csp_nebular.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "csp_internal.hpp"

namespace pixedfit::sps::detail {

namespace {

// l_lum[l] += c0 la[l] + c1 lb[l] for l < n: element by element, multiplied and added
// separately, so every variant gives the same bits.
PIXEDFIT_INLINE void line_sum_body(double* l_lum, const double* la, const double* lb,
                                   double c0, double c1, std::size_t n) {
#pragma omp simd
    for (std::size_t l = 0; l < n; ++l) l_lum[l] += c0 * la[l] + c1 * lb[l];
}

PIXEDFIT_MULTIVERSION
void line_sum_v3(double* l_lum, const double* la, const double* lb, double c0, double c1,
                 std::size_t n) {
    line_sum_body(l_lum, la, lb, c0, c1, n);
}

PIXEDFIT_AVX512_WIDE
void line_sum_v4(double* l_lum, const double* la, const double* lb, double c0, double c1,
                 std::size_t n) {
    line_sum_body(l_lum, la, lb, c0, c1, n);
}

}  // namespace

void nebular_part(const Grid& g, const Config& cfg, const SfhShape& sh, double mtot,
                  const double* p, std::size_t iz, double fz, const float* cont,
                  std::size_t ncol, double* neb, double* m_neb, double* l_lum) {
    const std::size_t iz1 = (g.nz > 1) ? iz + 1 : iz;
    const double t_young = std::min(cfg.t_bc, sh.age);
    for (std::size_t k = 0; k < g.nneb; ++k) {
        const double e0 = g.neb_edges[k], e1 = std::min(g.neb_edges[k + 1], t_young);
        m_neb[k] = (e1 > e0)
                       ? sfh_mass_between(cfg.sfh_form, sh.shape, sh.age - e1, sh.age - e0) / mtot
                       : 0.0;
    }
    std::size_t iu = 0;
    double fu = 0.0;
    bracket(g.logu.data(), g.nu, p[P_GAS_LOGU], iu, fu);
    const std::size_t iu1 = (g.nu > 1) ? iu + 1 : iu;
    const std::size_t us[2] = {iu, iu1};
    const double uw[2] = {1.0 - fu, fu};
    std::fill(l_lum, l_lum + g.nline, 0.0);
    // the continuum rows of each ionisation parameter summed like the stellar ones
    // (block_sums, single precision), the lines in double precision
    thread_local std::vector<float> sums, weights;
    sums.assign(2 * ncol, 0.0f);
    weights.assign(2 * g.nneb * kBlock, 0.0f);
    float* w0 = weights.data();
    float* w1 = w0 + g.nneb * kBlock;
    for (int ju = 0; ju < 2; ++ju) {
        if (uw[ju] == 0.0) continue;
        std::size_t k0 = g.nneb, k1 = 0;
        for (std::size_t k = 0; k < g.nneb; ++k) {
            if (m_neb[k] == 0.0) continue;
            const std::size_t b0 = ((us[ju] * g.nz + iz) * g.nneb + k);
            const std::size_t b1 = ((us[ju] * g.nz + iz1) * g.nneb + k);
            const double c0 = m_neb[k] * uw[ju] * (1.0 - fz), c1 = m_neb[k] * uw[ju] * fz;
            w0[k * kBlock] = static_cast<float>(c0);
            w1[k * kBlock] = static_cast<float>(c1);
            k0 = std::min(k0, k);
            k1 = k + 1;
            const double* la = &g.line_lum[b0 * g.nline];
            const double* lb = &g.line_lum[b1 * g.nline];
            // (the line luminosities of the model: 2 x 124 lines per SSP age of the BC03
            // grids, 10 % of a knot evaluation before it had vector variants)
            call_widest(line_sum_v4, line_sum_v3, l_lum, la, lb, c0, c1, g.nline);
        }
        float* dst = sums.data() + static_cast<std::size_t>(ju) * ncol;
        if (k1 > k0)
            block_sums(&cont[(us[ju] * g.nz + iz) * g.nneb * ncol],
                       &cont[(us[ju] * g.nz + iz1) * g.nneb * ncol], ncol, w0, w1, k0, k1,
                       &dst, 1);
    }
    for (std::size_t c = 0; c < ncol; ++c)
        neb[c] += static_cast<double>(sums[c]) + static_cast<double>(sums[ncol + c]);
}


void add_nebular_emission(const Grid& g, const Config& cfg, const SfhShape& sh, double mtot,
                          const double* p, std::size_t iz, double fz, bool lines_off_grid,
                          float* young, double* neb, double* m_neb, double* l_lum) {
    nebular_part(g, cfg, sh, mtot, p, iz, fz, g.neb_cont.data(), g.nwave, neb, m_neb, l_lum);
    for (std::size_t l = 0; l < g.nline && !lines_off_grid; ++l) {
        const double* prof = &g.line_prof[g.line_off[l]];
        const std::int64_t len = g.line_off[l + 1] - g.line_off[l];
        double* dst = neb + g.line_start[l];
        for (std::int64_t j = 0; j < len; ++j) dst[j] += l_lum[l] * prof[j];
    }
    std::fill(young, young + g.n_ionising, 0.0f);
}

}  // namespace pixedfit::sps::detail
