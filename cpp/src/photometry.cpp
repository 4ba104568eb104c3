#include "pixedfit/photometry.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "pixedfit/common.hpp"

namespace pixedfit {

namespace {

// Linear interpolation of the filter curve at x, with fwave[k] <= x <= fwave[k+1].
inline double curve_at(const double* fwave, const double* ftrans, std::size_t k, double x) {
    const double h = fwave[k + 1] - fwave[k];
    const double t = (x - fwave[k]) / h;
    return ftrans[k] * (1.0 - t) + ftrans[k + 1] * t;
}

}  // namespace

BandWeights band_weights(const double* grid, std::size_t n, const double* fwave,
                         const double* ftrans, std::size_t m) {
    require(n >= 2, "band_weights: the wavelength grid needs at least 2 points");
    require(m >= 2, "band_weights: the filter curve needs at least 2 points");
    for (std::size_t i = 1; i < n; ++i) {
        require(grid[i] > grid[i - 1], "band_weights: wavelength grid is not strictly increasing");
    }
    for (std::size_t k = 1; k < m; ++k) {
        require(fwave[k] > fwave[k - 1], "band_weights: filter wavelengths are not strictly increasing");
    }
    std::size_t first = m, last = 0;
    for (std::size_t k = 0; k < m; ++k) {
        require(std::isfinite(ftrans[k]) && ftrans[k] >= 0.0,
                "band_weights: filter transmission must be finite and >= 0");
        if (ftrans[k] > 0.0) {
            first = std::min(first, k);
            last = k;
        }
    }
    require(first < m, "band_weights: filter transmission is zero everywhere");
    // Support of T: from the last zero sample before the first positive one to the first zero
    // sample after the last positive one.
    const std::size_t k_lo = first > 0 ? first - 1 : 0;
    const std::size_t k_hi = last + 1 < m ? last + 1 : last;
    const double lo = fwave[k_lo];
    const double hi = fwave[k_hi];
    require(grid[0] <= lo && grid[n - 1] >= hi,
            "band_weights: the wavelength grid [" + std::to_string(grid[0]) + ", " +
                std::to_string(grid[n - 1]) + "] does not cover the filter's range [" +
                std::to_string(lo) + ", " + std::to_string(hi) + "]");
    if (k_hi == k_lo) {
        throw std::invalid_argument("band_weights: filter curve has zero width");
    }

    // Grid interval containing lo: grid[i] <= lo < grid[i+1].
    std::size_t i = static_cast<std::size_t>(std::upper_bound(grid, grid + n, lo) - grid);
    i = i == 0 ? 0 : i - 1;
    if (i >= n - 1) i = n - 2;
    std::size_t k = k_lo;
    const std::size_t i_start = i;
    std::vector<double> w;
    w.reserve(64);
    w.assign(2, 0.0);
    double denom = 0.0;
    double a = lo;
    while (a < hi) {
        // Advance the interval indices so that a lies in [grid[i], grid[i+1]) and
        // [fwave[k], fwave[k+1]).
        while (i + 1 < n - 1 && grid[i + 1] <= a) {
            ++i;
            w.push_back(0.0);
        }
        while (k + 1 < k_hi && fwave[k + 1] <= a) ++k;
        const double b = std::min({grid[i + 1], fwave[k + 1], hi});
        if (b <= a) break;  // defensive; cannot happen with strictly increasing inputs
        const double mid = 0.5 * (a + b);
        const double xs[3] = {a, mid, b};
        const double simpson[3] = {1.0, 4.0, 1.0};
        const double h = grid[i + 1] - grid[i];
        const std::size_t j = i - i_start;
        double wi = 0.0, wj = 0.0, d = 0.0;
        for (int q = 0; q < 3; ++q) {
            const double x = xs[q];
            const double tx = curve_at(fwave, ftrans, k, x) * x * simpson[q];
            const double phi_right = (x - grid[i]) / h;
            wi += tx * (1.0 - phi_right);
            wj += tx * phi_right;
            d += tx;
        }
        const double scale = (b - a) / 6.0;
        w[j] += wi * scale;
        w[j + 1] += wj * scale;
        denom += d * scale;
        a = b;
    }
    require(denom > 0.0, "band_weights: filter has zero integrated response");
    for (double& v : w) v /= denom;
    BandWeights out;
    out.start = static_cast<std::int64_t>(i_start);
    out.weights = std::move(w);
    return out;
}

void apply_band_weights(const double* flux, std::size_t nspec, std::size_t nwave,
                        const std::int64_t* starts, const std::int64_t* offsets,
                        const double* weights, std::size_t nbands, double* out,
                        int threads) {
    for (std::size_t b = 0; b < nbands; ++b) {
        const std::int64_t len = offsets[b + 1] - offsets[b];
        require(starts[b] >= 0 && len >= 0 &&
                    static_cast<std::size_t>(starts[b] + len) <= nwave,
                "apply_band_weights: band weights do not fit the wavelength grid");
    }
    const int nt = resolve_threads(threads);
    const std::int64_t ns = static_cast<std::int64_t>(nspec);
    ParallelErrors errors;  // no exception may leave the parallel region
#pragma omp parallel for num_threads(nt) schedule(static)
    for (std::int64_t s = 0; s < ns; ++s) {
        if (errors.failed()) continue;
        errors.run(s, [&] {
            const double* f = flux + static_cast<std::size_t>(s) * nwave;
            double* o = out + static_cast<std::size_t>(s) * nbands;
            for (std::size_t b = 0; b < nbands; ++b) {
                const double* w = weights + offsets[b];
                const double* fs = f + starts[b];
                const std::int64_t len = offsets[b + 1] - offsets[b];
                // Four independent partial sums let the compiler vectorise; the summation
                // order is fixed, so the result is the same for any number of threads.
                double acc0 = 0.0, acc1 = 0.0, acc2 = 0.0, acc3 = 0.0;
                std::int64_t q = 0;
                for (; q + 4 <= len; q += 4) {
                    acc0 += w[q] * fs[q];
                    acc1 += w[q + 1] * fs[q + 1];
                    acc2 += w[q + 2] * fs[q + 2];
                    acc3 += w[q + 3] * fs[q + 3];
                }
                for (; q < len; ++q) acc0 += w[q] * fs[q];
                o[b] = (acc0 + acc1) + (acc2 + acc3);
            }
        });
    }
    errors.rethrow();
}

}  // namespace pixedfit
