#include "pixedfit/smoothing.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "pixedfit/common.hpp"

namespace pixedfit {

void smooth_gaussian(const double* wave, std::size_t n, const double* flux, std::size_t nspec,
                     const double* sigma, double* out, int threads) {
    require(n >= 2, "smooth_gaussian: need at least 2 wavelengths");
    std::vector<double> dw(n, 0.0);
    for (std::size_t i = 0; i + 1 < n; ++i) {
        require(wave[i + 1] > wave[i], "smooth_gaussian: wavelengths must increase");
        const double h = 0.5 * (wave[i + 1] - wave[i]);
        dw[i] += h;
        dw[i + 1] += h;
    }
    for (std::size_t i = 0; i < n; ++i)
        require(std::isfinite(sigma[i]) && sigma[i] >= 0.0, "smooth_gaussian: bad sigma");
    // per output pixel: window [lo, hi) and normalised weights (shared by all spectra)
    std::vector<std::size_t> lo(n), hi(n), off(n + 1, 0);
    std::vector<double> w;
    for (std::size_t i = 0; i < n; ++i) {
        const double s = sigma[i];
        std::size_t a = i, b = i + 1;
        if (s > 0.0) {
            a = static_cast<std::size_t>(std::lower_bound(wave, wave + n, wave[i] - 5 * s) - wave);
            b = static_cast<std::size_t>(std::upper_bound(wave, wave + n, wave[i] + 5 * s) - wave);
        }
        if (b - a < 3) {
            a = i;
            b = i + 1;
        }
        lo[i] = a;
        hi[i] = b;
        double norm = 0.0;
        const std::size_t start = w.size();
        for (std::size_t j = a; j < b; ++j) {
            const double x = (b - a == 1) ? 0.0 : (wave[j] - wave[i]) / s;
            const double g = std::exp(-0.5 * x * x) * ((b - a == 1) ? 1.0 : dw[j]);
            w.push_back(g);
            norm += g;
        }
        for (std::size_t j = start; j < w.size(); ++j) w[j] /= norm;
        off[i + 1] = w.size();
    }
    const int nt = resolve_threads(threads);
    ParallelErrors errors;  // no exception may leave the parallel region
#pragma omp parallel for num_threads(nt) schedule(static)
    for (std::int64_t s = 0; s < static_cast<std::int64_t>(nspec); ++s) {
        if (errors.failed()) continue;
        errors.run(s, [&] {
            const double* f = flux + static_cast<std::size_t>(s) * n;
            double* o = out + static_cast<std::size_t>(s) * n;
            for (std::size_t i = 0; i < n; ++i) {
                double acc = 0.0;
                const double* wi = &w[off[i]];
                for (std::size_t j = lo[i]; j < hi[i]; ++j) acc += wi[j - lo[i]] * f[j];
                o[i] = acc;
            }
        });
    }
    errors.rethrow();
}

}  // namespace pixedfit
