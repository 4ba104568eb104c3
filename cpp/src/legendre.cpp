#include "pixedfit/legendre.hpp"

#include <cmath>
#include <limits>
#include <vector>

#include "cholesky.hpp"
#include "pixedfit/common.hpp"

namespace pixedfit {

namespace {

// Basis values P_0..P_order on the grid, basis-major: (order + 1, n), Bonnet's recursion.
std::vector<double> basis(const double* wave, std::size_t n, int order) {
    const std::size_t kk = static_cast<std::size_t>(order) + 1;
    std::vector<double> p(kk * n);
    const double lo = wave[0], span = wave[n - 1] - wave[0];
    for (std::size_t i = 0; i < n; ++i) {
        const double x = 2.0 * (wave[i] - lo) / span - 1.0;
        p[i] = 1.0;
        if (kk > 1) p[n + i] = x;
        for (std::size_t k = 2; k < kk; ++k) {
            const double kd = static_cast<double>(k);
            p[k * n + i] =
                ((2.0 * kd - 1.0) * x * p[(k - 1) * n + i] - (kd - 1.0) * p[(k - 2) * n + i]) /
                kd;
        }
    }
    return p;
}

// Linearisation of products of Legendre polynomials (Adams 1878):
//   P_j P_q = sum_{r <= min(j, q)} c(j, q, r) P_{j + q - 2r},
//   c = a(j - r) a(r) a(q - r) / a(j + q - r) (2j + 2q - 4r + 1) / (2j + 2q - 2r + 1),
//   a(r) = prod_{k <= r} (2k - 1) / (2k).
// So the normal matrix sum_i w_i P_j(x_i) P_q(x_i) needs only the 2 order + 1 moments
// sum_i w_i P_k(x_i) instead of (order + 1)(order + 2) / 2 sums.
struct LinearTerm {
    std::size_t j, q, k;
    double c;
};

std::vector<LinearTerm> linearisation(std::size_t kk) {
    std::vector<double> a(2 * kk, 1.0);
    for (std::size_t r = 1; r < a.size(); ++r) {
        a[r] = a[r - 1] * (2.0 * static_cast<double>(r) - 1.0) / (2.0 * static_cast<double>(r));
    }
    std::vector<LinearTerm> terms;
    for (std::size_t j = 0; j < kk; ++j) {
        for (std::size_t q = 0; q <= j; ++q) {
            for (std::size_t r = 0; r <= q; ++r) {
                const double jd = static_cast<double>(j), qd = static_cast<double>(q),
                             rd = static_cast<double>(r);
                const double c = a[j - r] * a[r] * a[q - r] / a[j + q - r] *
                                 (2.0 * jd + 2.0 * qd - 4.0 * rd + 1.0) /
                                 (2.0 * jd + 2.0 * qd - 2.0 * rd + 1.0);
                terms.push_back({j, q, j + q - 2 * r, c});
            }
        }
    }
    return terms;
}

// sum_i a[i] b[i]
PIXEDFIT_MULTIVERSION
double dot(const double* a, const double* b, std::size_t n) {
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (std::size_t i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
}

// fit[i] = sum_j c[j] p[j, i] (p basis-major)
PIXEDFIT_MULTIVERSION
void series(const double* p, const double* c, std::size_t kk, std::size_t n, double* fit) {
#pragma omp simd
    for (std::size_t i = 0; i < n; ++i) fit[i] = c[0] * p[i];
    for (std::size_t j = 1; j < kk; ++j) {
        const double cj = c[j];
        const double* pj = p + j * n;
#pragma omp simd
        for (std::size_t i = 0; i < n; ++i) fit[i] += cj * pj[i];
    }
}

// The points of one spectrum that enter the fit (w > 0, both finite): wk = w there (0
// elsewhere), wy = wk y, sw = sqrt(wk) (only when `roots`); returns their number.
PIXEDFIT_MULTIVERSION
std::size_t prepare_points(const double* y, const double* w, std::size_t n, bool roots,
                           double* wk, double* wy, double* sw) {
    const double inf = std::numeric_limits<double>::infinity();
    std::size_t nkeep = 0;
#pragma omp simd reduction(+ : nkeep)
    for (std::size_t i = 0; i < n; ++i) {
        // comparisons are false for NaN: finite y and 0 < w < inf
        const bool k = w[i] > 0.0 && w[i] < inf && y[i] > -inf && y[i] < inf;
        wk[i] = k ? w[i] : 0.0;
        wy[i] = k ? w[i] * y[i] : 0.0;
        nkeep += k ? 1 : 0;
    }
    if (roots) {
#pragma omp simd
        for (std::size_t i = 0; i < n; ++i) sw[i] = std::sqrt(wk[i]);
    }
    return nkeep;
}

// Normalised residuals r = (y - fit) sqrt(w) of the points with w > 0: their sum and sum
// of squares (w is zero for the points not in the fit).
PIXEDFIT_MULTIVERSION
void residual_moments(const double* y, const double* fit, const double* sw, const double* w,
                      std::size_t n, double* sum, double* sum2) {
    double s = 0.0, s2 = 0.0;
#pragma omp simd reduction(+ : s, s2)
    for (std::size_t i = 0; i < n; ++i) {
        const double r = w[i] > 0.0 ? (y[i] - fit[i]) * sw[i] : 0.0;
        s += r;
        s2 += r * r;
    }
    *sum = s;
    *sum2 = s2;
}

// Solve the symmetric positive-definite system a c = b in place (Cholesky). Returns false
// when the matrix is not numerically positive definite.
bool cholesky_solve(std::vector<double>& a, std::vector<double>& b, std::size_t k) {
    if (!detail::cholesky_lower(a.data(), k, 1e-14)) return false;
    for (std::size_t i = 0; i < k; ++i) {  // forward: L z = b
        double s = b[i];
        for (std::size_t q = 0; q < i; ++q) s -= a[i * k + q] * b[q];
        b[i] = s / a[i * k + i];
    }
    for (std::size_t ii = k; ii-- > 0;) {  // backward: L^T c = z
        double s = b[ii];
        for (std::size_t q = ii + 1; q < k; ++q) s -= a[q * k + ii] * b[q];
        b[ii] = s / a[ii * k + ii];
    }
    return true;
}

}  // namespace

void legendre_fit(const double* wave, std::size_t n, const double* y, const double* w,
                  std::size_t nspec, int order, double clip, int max_iter, int threads,
                  const LegendreOutputs& out) {
    require(order >= 0 && order <= 64, "legendre_fit: order must be within 0..64");
    require(n >= 2, "legendre_fit: the wavelength grid needs at least 2 points");
    for (std::size_t i = 1; i < n; ++i) {
        require(wave[i] > wave[i - 1], "legendre_fit: wavelengths must be strictly increasing");
    }
    require(max_iter >= 1, "legendre_fit: max_iter must be >= 1");
    require(out.coeffs && out.status, "legendre_fit: missing output array");
    const std::size_t kk = static_cast<std::size_t>(order) + 1;
    const std::size_t km = 2 * kk - 1;                       // moments P_0 .. P_{2 order}
    const std::vector<double> p = basis(wave, n, 2 * order);  // its first kk rows: the fit's
    const std::vector<LinearTerm> terms = linearisation(kk);
    const int nt = resolve_threads(threads);
    const std::int64_t ns = static_cast<std::int64_t>(nspec);
    ParallelErrors errors;  // a failed allocation must not escape the parallel region
#pragma omp parallel num_threads(nt)
    {
        // wk: weights of the points in the fit (0 elsewhere); wy = wk y; mom: moments
        std::vector<double> a, b, fit, wk, wy, sw, mom;
        bool ready = false;
        errors.run(-1, [&] {
            a.resize(kk * kk);
            b.resize(kk);
            fit.resize(n);
            wk.resize(n);
            wy.resize(n);
            sw.resize(n);
            mom.resize(km);
            ready = true;
        });
        // (per spectrum: arithmetic on these buffers)
#pragma omp for schedule(dynamic, 16)
        for (std::int64_t si = 0; si < ns; ++si) {
            if (!ready || errors.failed()) continue;
            errors.run(si, [&] {
                const std::size_t s = static_cast<std::size_t>(si);
                const double* ys = y + s * n;
                const double* ws = w + s * n;
                double* c = out.coeffs + s * kk;
                const bool clipping = clip > 0.0 && max_iter > 1;
                std::size_t nkeep =
                    prepare_points(ys, ws, n, clipping, wk.data(), wy.data(), sw.data());
                std::int32_t status = 0;
                for (int iter = 0; iter < max_iter; ++iter) {
                    if (nkeep < kk) {
                        status = 1;
                        break;
                    }
                    // normal equations P^T W P c = P^T W y, the matrix from the moments
                    for (std::size_t k = 0; k < km; ++k)
                        mom[k] = dot(p.data() + k * n, wk.data(), n);
                    for (std::size_t j = 0; j < kk; ++j)
                        b[j] = dot(p.data() + j * n, wy.data(), n);
                    std::fill(a.begin(), a.end(), 0.0);
                    for (const LinearTerm& t : terms) a[t.j * kk + t.q] += t.c * mom[t.k];
                    for (std::size_t j = 0; j < kk; ++j) {
                        for (std::size_t q = 0; q < j; ++q) a[q * kk + j] = a[j * kk + q];
                    }
                    if (!cholesky_solve(a, b, kk)) {
                        status = 2;
                        break;
                    }
                    for (std::size_t j = 0; j < kk; ++j) c[j] = b[j];
                    series(p.data(), c, kk, n, fit.data());
                    if (!(clip > 0.0) || iter + 1 == max_iter) break;
                    double sum = 0.0, sum2 = 0.0;
                    residual_moments(ys, fit.data(), sw.data(), wk.data(), n, &sum, &sum2);
                    const double mean = sum / static_cast<double>(nkeep);
                    const double sd = std::sqrt(
                        std::max(0.0, sum2 / static_cast<double>(nkeep) - mean * mean));
                    std::size_t dropped = 0;
                    for (std::size_t i = 0; i < n; ++i) {
                        if (!(wk[i] > 0.0)) continue;
                        const double r = (ys[i] - fit[i]) * sw[i];
                        if (std::fabs(r - mean) > clip * sd) {
                            wk[i] = 0.0;
                            wy[i] = 0.0;
                            ++dropped;
                        }
                    }
                    nkeep -= dropped;
                    if (dropped == 0) break;
                }
                out.status[s] = status;
                if (status != 0) {
                    for (std::size_t j = 0; j < kk; ++j)
                        c[j] = std::numeric_limits<double>::quiet_NaN();
                }
                if (out.model) {
                    double* m = out.model + s * n;
                    for (std::size_t i = 0; i < n; ++i)
                        m[i] = status == 0 ? fit[i] : std::numeric_limits<double>::quiet_NaN();
                }
                if (out.used) {
                    std::uint8_t* uo = out.used + s * n;
                    for (std::size_t i = 0; i < n; ++i)
                        uo[i] = (status == 0 && wk[i] > 0.0) ? 1 : 0;
                }
            });
        }
    }
    errors.rethrow();
}

void legendre_eval(const double* wave, std::size_t n, const double* coeffs, std::size_t nspec,
                   int order, double* out, int threads) {
    require(order >= 0 && order <= 64, "legendre_eval: order must be within 0..64");
    require(n >= 2, "legendre_eval: the wavelength grid needs at least 2 points");
    const std::size_t kk = static_cast<std::size_t>(order) + 1;
    const std::vector<double> p = basis(wave, n, order);
    const int nt = resolve_threads(threads);
    const std::int64_t ns = static_cast<std::int64_t>(nspec);
    ParallelErrors errors;  // no exception may leave the parallel region
#pragma omp parallel for num_threads(nt) schedule(static)
    for (std::int64_t si = 0; si < ns; ++si) {
        if (errors.failed()) continue;
        errors.run(si, [&] {
            const double* c = coeffs + static_cast<std::size_t>(si) * kk;
            series(p.data(), c, kk, n, out + static_cast<std::size_t>(si) * n);
        });
    }
    errors.rethrow();
}

}  // namespace pixedfit
