// Expectation-maximisation of a Gaussian mixture on weighted points (see mixture.hpp).
//
// The points are kept transposed, (d, n), so that every step of the forward substitution
// and of the moment sums is a loop over points that the compiler vectorises; the exps of
// the responsibilities use the polynomial vexp_taylor (no libm call in the loop).
#include "pixedfit/mixture.hpp"

// Floating-point exceptions are never inspected here; without trapping semantics GCC can
// vectorise the selects of the polynomial exp and log (the values are the same).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "cholesky.hpp"
#include "pixedfit/common.hpp"
#include "vexp.hpp"

namespace pixedfit {

namespace {

constexpr std::size_t kBlock = 256;  // points per block of the forward substitution

// sum_i a[i] b[i] with eight independent partial sums (vectorised without reassociating
// anything: the order of the additions is fixed, whatever the ISA).
PIXEDFIT_INLINE double dot(const double* a, const double* b, std::size_t n) {
    double acc[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (std::size_t l = 0; l < 8; ++l) acc[l] += a[i + l] * b[i + l];
    double tail = 0.0;
    for (; i < n; ++i) tail += a[i] * b[i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) +
           tail;
}

// out[i] = log_norm - |L^-1 (x_i - mean)|^2 / 2 for the n points xt (d, n); z is scratch
// of d * kBlock.
PIXEDFIT_INLINE void gaussian_log_density_body(const double* xt, std::size_t n, std::size_t d,
                                               const double* mean, const double* chol,
                                               double log_norm, double* out, double* z) {
    for (std::size_t a = 0; a < n; a += kBlock) {
        const std::size_t m = std::min(kBlock, n - a);
        double q[kBlock];
        std::fill(q, q + m, 0.0);
        for (std::size_t r = 0; r < d; ++r) {
            double* zr = z + r * kBlock;
            const double* xr = xt + r * n + a;
            const double mu = mean[r];
            for (std::size_t i = 0; i < m; ++i) zr[i] = xr[i] - mu;
            for (std::size_t s = 0; s < r; ++s) {
                const double lrs = chol[r * d + s];
                const double* zs = z + s * kBlock;
                for (std::size_t i = 0; i < m; ++i) zr[i] -= lrs * zs[i];
            }
            const double inv = 1.0 / chol[r * d + r];
            for (std::size_t i = 0; i < m; ++i) {
                zr[i] *= inv;
                q[i] += zr[i] * zr[i];
            }
        }
        for (std::size_t i = 0; i < m; ++i) out[a + i] = log_norm - 0.5 * q[i];
    }
}

// Responsibilities in place: rows log_r (k, n) of the kernels `live` become
// w_i exp(log_r - log_sum_i); returns sum_i w_i log_sum_i.
PIXEDFIT_INLINE double responsibilities_body(double* log_r, const std::vector<std::size_t>& live,
                                             std::size_t n, const double* w, double* top,
                                             double* total) {
    std::fill(top, top + n, -std::numeric_limits<double>::infinity());
    for (std::size_t c : live) {
        const double* row = log_r + c * n;
        for (std::size_t i = 0; i < n; ++i) top[i] = std::max(top[i], row[i]);
    }
    std::fill(total, total + n, 0.0);
    for (std::size_t c : live) {
        const double* row = log_r + c * n;
        for (std::size_t i = 0; i < n; ++i)
            total[i] += detail::vexp_taylor<12>(row[i] - top[i]);
    }
    for (std::size_t i = 0; i < n; ++i) total[i] = top[i] + std::log(total[i]);
    const double log_like = dot(w, total, n);  // total: the log-sums over the kernels
    for (std::size_t c : live) {
        double* row = log_r + c * n;
        for (std::size_t i = 0; i < n; ++i)
            row[i] = w[i] * detail::vexp_taylor<12>(row[i] - total[i]);
    }
    return log_like;
}

// Weighted mean and covariance (about that mean) of the points xt (d, n) under the
// responsibilities r (n) summing to nk; centred and weighted are scratch of d * n each.
PIXEDFIT_INLINE void weighted_moments_body(const double* xt, std::size_t n, std::size_t d,
                                           const double* r, double nk, double* mean, double* cov,
                                           double* centred, double* weighted) {
    for (std::size_t j = 0; j < d; ++j) {
        const double* xj = xt + j * n;
        mean[j] = dot(r, xj, n) / nk;
        double* cj = centred + j * n;
        double* uj = weighted + j * n;
        for (std::size_t i = 0; i < n; ++i) {
            cj[i] = xj[i] - mean[j];
            uj[i] = r[i] * cj[i];
        }
    }
    for (std::size_t j = 0; j < d; ++j)
        for (std::size_t l = 0; l <= j; ++l)
            cov[j * d + l] = cov[l * d + j] = dot(weighted + j * n, centred + l * n, n) / nk;
}

// Each step compiled for x86-64-v3 (and the baseline) and, 8 doubles per vector, for AVX-512
// (the compiler's default for x86-64-v4 is 4): the same operations in the same order, so
// the same bits; chosen at run time by call_widest (tests/test_kernel_isa.py).
PIXEDFIT_MULTIVERSION
void gaussian_log_density_v3(const double* xt, std::size_t n, std::size_t d, const double* mean,
                             const double* chol, double log_norm, double* out, double* z) {
    gaussian_log_density_body(xt, n, d, mean, chol, log_norm, out, z);
}

PIXEDFIT_AVX512_WIDE
void gaussian_log_density_v4(const double* xt, std::size_t n, std::size_t d, const double* mean,
                             const double* chol, double log_norm, double* out, double* z) {
    gaussian_log_density_body(xt, n, d, mean, chol, log_norm, out, z);
}

PIXEDFIT_MULTIVERSION
void responsibilities_v3(double* log_r, const std::vector<std::size_t>& live, std::size_t n,
                         const double* w, double* top, double* total, double* log_like) {
    *log_like = responsibilities_body(log_r, live, n, w, top, total);
}

PIXEDFIT_AVX512_WIDE
void responsibilities_v4(double* log_r, const std::vector<std::size_t>& live, std::size_t n,
                         const double* w, double* top, double* total, double* log_like) {
    *log_like = responsibilities_body(log_r, live, n, w, top, total);
}

PIXEDFIT_MULTIVERSION
void weighted_moments_v3(const double* xt, std::size_t n, std::size_t d, const double* r,
                         double nk, double* mean, double* cov, double* centred,
                         double* weighted) {
    weighted_moments_body(xt, n, d, r, nk, mean, cov, centred, weighted);
}

PIXEDFIT_AVX512_WIDE
void weighted_moments_v4(const double* xt, std::size_t n, std::size_t d, const double* r,
                         double nk, double* mean, double* cov, double* centred,
                         double* weighted) {
    weighted_moments_body(xt, n, d, r, nk, mean, cov, centred, weighted);
}

}  // namespace

GaussianMixture em_gaussian_mixture(const double* points, std::size_t n, std::size_t d,
                                    const double* weights, const double* start_means,
                                    std::size_t k, const double* start_cov,
                                    const double* ridge, double ess, double min_points,
                                    int max_iter, double tol) {
    require(d >= 1 && k >= 1, "em_gaussian_mixture: need at least one dimension and kernel");
    require(n >= 1, "em_gaussian_mixture: need at least one point");
    require(max_iter >= 1, "em_gaussian_mixture: max_iter must be >= 1");
    std::vector<double> xt(d * n);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < d; ++j) xt[j * n + i] = points[i * d + j];
    std::vector<double> shares(k, 1.0 / static_cast<double>(k));
    std::vector<double> means(start_means, start_means + k * d);
    std::vector<double> covs(k * d * d);
    for (std::size_t c = 0; c < k; ++c) std::copy(start_cov, start_cov + d * d, &covs[c * d * d]);
    std::vector<double> log_r(k * n), top(n), total(n), z(d * kBlock), chol(d * d),
        centred(d * n), weighted(d * n), ones(n, 1.0), nk(k);
    std::vector<std::size_t> live;
    const double log_2pi = 0.5 * static_cast<double>(d) * std::log(2.0 * 3.14159265358979323846);
    double previous = -std::numeric_limits<double>::infinity();
    GaussianMixture out;
    out.dim = d;
    int iter = 0;
    while (iter < max_iter) {
        ++iter;
        // E-step over the kernels whose covariance can be factorised
        live.clear();
        for (std::size_t c = 0; c < k; ++c) {
            std::copy(&covs[c * d * d], &covs[c * d * d] + d * d, chol.begin());
            if (!detail::cholesky_lower(chol.data(), d, 0.0)) continue;
            double log_det = 0.0;
            for (std::size_t j = 0; j < d; ++j) log_det += std::log(chol[j * d + j]);
            call_widest(gaussian_log_density_v4, gaussian_log_density_v3, xt.data(), n, d,
                        &means[c * d], chol.data(), std::log(shares[c]) - log_det - log_2pi,
                        &log_r[c * n], z.data());
            live.push_back(c);
        }
        if (live.empty()) return out;
        double log_like = 0.0;
        call_widest(responsibilities_v4, responsibilities_v3, log_r.data(), live, n, weights,
                    top.data(), total.data(), &log_like);
        // M-step over the kernels left with enough effective points
        std::vector<std::size_t> alive;
        double sum_nk = 0.0;
        for (std::size_t c : live) {
            const double s = dot(&log_r[c * n], ones.data(), n);
            if (s * ess >= min_points && s > 0.0) {
                nk[c] = s;
                sum_nk += s;
                alive.push_back(c);
            }
        }
        if (alive.empty()) return out;
        const bool dropped = alive.size() < k;
        std::vector<double> new_means(alive.size() * d), new_covs(alive.size() * d * d),
            new_shares(alive.size());
        for (std::size_t a = 0; a < alive.size(); ++a) {
            const std::size_t c = alive[a];
            double* cov = &new_covs[a * d * d];
            call_widest(weighted_moments_v4, weighted_moments_v3, xt.data(), n, d, &log_r[c * n],
                        nk[c], &new_means[a * d], cov, centred.data(), weighted.data());
            for (std::size_t j = 0; j < d; ++j) cov[j * d + j] += ridge[j];
            new_shares[a] = nk[c] / sum_nk;
        }
        k = alive.size();
        means.swap(new_means);
        covs.swap(new_covs);
        shares.swap(new_shares);
        if (!dropped && std::abs(log_like - previous) < tol) break;
        previous = log_like;
    }
    out.shares = std::move(shares);
    out.means = std::move(means);
    out.covs = std::move(covs);
    out.iterations = iter;
    return out;
}

}  // namespace pixedfit
