// Internals shared by the forward-model kernels (csp.cpp, csp_knots.cpp and the physics
// steps csp_sfh, csp_nebular, csp_attenuation, csp_dust_emission, csp_agn); not installed.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "csp_agn.hpp"
#include "csp_attenuation.hpp"
#include "csp_dust_emission.hpp"
#include "csp_nebular.hpp"
#include "csp_sfh.hpp"
#include "pixedfit/common.hpp"
#include "pixedfit/csp.hpp"
#include "vexp.hpp"

namespace pixedfit::sps::detail {

using pixedfit::detail::vexp_taylor;

// The SSP part of a forward model: rows [nz][nage][ncol] in single precision (spectra on a
// wavelength grid, or their projections) summed into the old populations, and the rows
// summed into the young ones (the same, or a version without the ionising photons), with
// the metallicities and the age-bin edges.
struct SspRows {
    std::size_t nz, nage, ncol;
    const float* rows;
    const float* young_rows;
    const double* logz;
    const double* age_edges;
};

inline SspRows spectra_rows(const Grid& g) {
    return {g.nz, g.nage, g.nwave, g.ssp.data(), g.ssp.data(), g.logz.data(),
            g.age_edges.data()};
}

// Index i and weight f so that x ~ (1-f) v[i] + f v[i+1]; x clamped to [v0, v_last].
void bracket(const double* v, std::size_t n, double x, std::size_t& i, double& f);

// y += ca * a + cb * b (double accumulator, single-precision rows).
void axpy2(double* y, const float* a, double ca, const float* b, double cb, std::size_t n);

// Persistent work of one model in the batched path: SFH weights m_young[nage],
// m_old[nage] and the unnormalised total mass.
inline std::size_t persistent_size(std::size_t nage) { return 2 * nage + 1; }

// SFH weights per SSP age bin into `work` (persistent layout above); zeroes the stellar
// accumulators `stars` (2 x ncol). Returns the lower metallicity index (and fz).
std::size_t prepare_model(const SspRows& r, const Config& cfg, const double* p, double* work,
                          float* stars, double& fz);

// Surviving (living + remnants) and living mass per Msun formed.
void stellar_masses(const Grid& g, const double* m_young, const double* m_old, std::size_t iz,
                    double fz, double& surv, double& living);

constexpr std::size_t kBlock = 8;    // models sharing SSP rows

// The stellar sums of up to kBlock models that share a metallicity bracket: for every model
// u < nb and column k < ncol,
//   out[u][k] = sum over ages a in [a0, a1) of w0[a][u] r0[a][k] + w1[a][u] r1[a][k],
// with r0, r1 the rows (nage x ncol) of the two metallicities and w0, w1 the weights
// (nage x kBlock; the lanes u >= nb are ignored). Each model's sums are accumulated in the
// same order whatever the other models of the block (and a zero weight adds nothing), so
// the result of a model does not depend on the block it was computed in. Subnormal rows,
// weights and sums count as zero (FlushDenormals).
void block_sums(const float* r0, const float* r1, std::size_t ncol, const float* w0,
                const float* w1, std::size_t a0, std::size_t a1, float* const* out,
                std::size_t nb);
// block_sums with vectors of `width` floats: 8 (any CPU), or 16 (AVX-512 CPUs only, see
// cpu_has_avx512); false, with nothing computed, for a width this CPU cannot use. The
// widths give the same bits (tested); block_sums takes the widest.
bool block_sums_of_width(std::size_t width, const float* r0, const float* r1,
                         std::size_t ncol, const float* w0, const float* w1, std::size_t a0,
                         std::size_t a1, float* const* out, std::size_t nb);
// models prepared at a time: their stellar accumulators (2 x ncol floats each) fill ~8 MB
inline std::size_t chunk_size(std::size_t ncol) {
    return std::clamp<std::size_t>((8u << 20) / (8 * ncol + 1), 32, 1024);
}

// The block_sums weights of lane v (nage x kBlock, age-major) for a model's young and old
// SFH weights my, mo (nage) and metallicity fraction fz: the two metallicities' shares.
inline void lane_weights(const double* my, const double* mo, double fz, std::size_t nage,
                         std::size_t v, float* wy0, float* wy1, float* wo0, float* wo1) {
    for (std::size_t a = 0; a < nage; ++a) {
        wy0[a * kBlock + v] = static_cast<float>(my[a] * (1.0 - fz));
        wy1[a * kBlock + v] = static_cast<float>(my[a] * fz);
        wo0[a * kBlock + v] = static_cast<float>(mo[a] * (1.0 - fz));
        wo1[a * kBlock + v] = static_cast<float>(mo[a] * fz);
    }
}

// Widen [lo, hi) to cover the indices of the nonzero values of m (n).
inline void nonzero_range(const double* m, std::size_t n, std::size_t& lo, std::size_t& hi) {
    std::size_t first = 0, last = n;
    while (first < n && m[first] == 0.0) ++first;
    if (first == n) return;
    while (m[last - 1] == 0.0) --last;
    lo = std::min(lo, first);
    hi = std::max(hi, last);
}

// Run `finish(i, work, scratch, stars)` for every model after summing its SSP rows into
// young and old accumulators (stars: 2 x ncol), with models grouped by metallicity bracket
// in blocks that stream the shared rows once per vector of columns (block_sums). `scratch`
// holds `scratch_size` doubles per thread. The arithmetic of each model does not depend on
// the grouping or the thread count.
template <class Finish>
void run_batched(const SspRows& r, const Config& cfg, const double* params, std::size_t n,
                 std::size_t scratch_size, int threads, Finish&& finish) {
    const int nt = resolve_threads(threads);
    const std::size_t ws = persistent_size(r.nage), nw = r.ncol, ss = scratch_size;
    const std::size_t nthreads = static_cast<std::size_t>(std::max(nt, 1));
    std::vector<double> scratch(nthreads * std::max<std::size_t>(ss, 1));
    // per thread: the weights of a block (young and old, two metallicities each)
    const std::size_t wsize = 4 * r.nage * kBlock;
    std::vector<float> weights(nthreads * wsize);
    const std::size_t kChunk = chunk_size(nw);
    const std::size_t cmax = std::min(kChunk, n);
    std::vector<double> work(cmax * ws);
    std::vector<float> stars(cmax * 2 * nw);
    std::vector<std::size_t> izs(cmax), ends(cmax), order(cmax);
    std::vector<double> fzs(cmax);
    ParallelErrors errors;  // nothing may throw out of the parallel regions below
    for (std::size_t c0 = 0; c0 < n; c0 += kChunk) {
        const std::size_t cn = std::min(kChunk, n - c0);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 4)
        for (std::int64_t i = 0; i < static_cast<std::int64_t>(cn); ++i) {
            if (errors.failed()) continue;
            errors.run(static_cast<std::int64_t>(c0) + i, [&] {
                const auto u = static_cast<std::size_t>(i);
                izs[u] = prepare_model(r, cfg, params + (c0 + u) * N_PARAMS, &work[u * ws],
                                       &stars[u * 2 * nw], fzs[u]);
                // one past the oldest age with mass (the blocks below sum their rows over
                // the ages any of their models needs)
                const double* mo = &work[u * ws] + r.nage;
                std::size_t end = r.nage;
                while (end > 0 && mo[end - 1] == 0.0) --end;
                ends[u] = end;
            });
        }
        errors.rethrow();
        // by metallicity bracket, then by age: models of similar ages share a block, whose
        // sums then run over fewer ages that only some of its models need (the arithmetic
        // of each model is the same in any block)
        for (std::size_t i = 0; i < cn; ++i) order[i] = i;
        std::stable_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(cn),
                         [&](std::size_t a, std::size_t b) {
                             return izs[a] != izs[b] ? izs[a] < izs[b] : ends[a] < ends[b];
                         });
        // blocks of up to kBlock models with the same bracket
        std::vector<std::pair<std::size_t, std::size_t>> blocks;
        for (std::size_t i = 0; i < cn;) {
            std::size_t j = i + 1;
            while (j < cn && j - i < kBlock && izs[order[j]] == izs[order[i]]) ++j;
            blocks.emplace_back(i, j);
            i = j;
        }
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (std::int64_t b = 0; b < static_cast<std::int64_t>(blocks.size()); ++b) {
            if (errors.failed()) continue;
            const auto [i0, i1] = blocks[static_cast<std::size_t>(b)];
            errors.run(static_cast<std::int64_t>(c0 + order[i0]), [&, i0 = i0, i1 = i1] {
                const std::size_t nb = i1 - i0;
                const std::size_t iz = izs[order[i0]], iz1 = (r.nz > 1) ? iz + 1 : iz;
                // the weights of the block, age-major, and the ages where any is nonzero
                const auto thread = static_cast<std::size_t>(omp_get_thread_num());
                double* sc = &scratch[thread * ss];
                float* wt = &weights[thread * wsize];
                float *wy0 = wt, *wy1 = wy0 + r.nage * kBlock;
                float *wo0 = wy1 + r.nage * kBlock, *wo1 = wo0 + r.nage * kBlock;
                std::size_t ay0 = r.nage, ay1 = 0, ao0 = r.nage, ao1 = 0;
                float* young[kBlock];
                float* old[kBlock];
                // (lanes v >= nb keep the finite weights of an earlier block: block_sums
                // computes them alongside but stores only the first nb)
                for (std::size_t v = 0; v < nb; ++v) {
                    const std::size_t u = order[i0 + v];
                    const double* my = &work[u * ws];
                    const double* mo = my + r.nage;
                    const double fz = fzs[u];
                    young[v] = &stars[u * 2 * nw];
                    old[v] = young[v] + nw;
                    lane_weights(my, mo, fz, r.nage, v, wy0, wy1, wo0, wo1);
                    // the ages with mass (the sums skip those where every model has none)
                    nonzero_range(my, r.nage, ay0, ay1);
                    nonzero_range(mo, r.nage, ao0, ao1);
                }
                const std::size_t row = r.nage * nw;
                if (ay1 > ay0)
                    block_sums(r.young_rows + iz * row, r.young_rows + iz1 * row, nw, wy0, wy1,
                               ay0, ay1, young, nb);
                if (ao1 > ao0)
                    block_sums(r.rows + iz * row, r.rows + iz1 * row, nw, wo0, wo1, ao0, ao1,
                               old, nb);
                for (std::size_t i = i0; i < i1; ++i) {
                    const std::size_t u = order[i];
                    finish(c0 + u, &work[u * ws], sc, &stars[u * 2 * nw]);
                }
            });
        }
        errors.rethrow();
    }
}

}  // namespace pixedfit::sps::detail
