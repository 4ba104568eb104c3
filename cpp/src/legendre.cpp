#include "pixedfit/legendre.hpp"

#include <cmath>
#include <limits>
#include <vector>

#include "pixedfit/common.hpp"

namespace pixedfit {

namespace {

// Basis values P_0..P_order at every grid point: (n, order + 1), Bonnet's recursion.
std::vector<double> basis(const double* wave, std::size_t n, int order) {
    const std::size_t kk = static_cast<std::size_t>(order) + 1;
    std::vector<double> p(n * kk);
    const double lo = wave[0], span = wave[n - 1] - wave[0];
    for (std::size_t i = 0; i < n; ++i) {
        const double x = 2.0 * (wave[i] - lo) / span - 1.0;
        double* row = p.data() + i * kk;
        row[0] = 1.0;
        if (kk > 1) row[1] = x;
        for (std::size_t k = 2; k < kk; ++k) {
            const double kd = static_cast<double>(k);
            row[k] = ((2.0 * kd - 1.0) * x * row[k - 1] - (kd - 1.0) * row[k - 2]) / kd;
        }
    }
    return p;
}

// Solve the symmetric positive-definite system a c = b in place (Cholesky). Returns false
// when the matrix is not numerically positive definite.
bool cholesky_solve(std::vector<double>& a, std::vector<double>& b, std::size_t k) {
    for (std::size_t j = 0; j < k; ++j) {
        double d = a[j * k + j];
        for (std::size_t q = 0; q < j; ++q) d -= a[j * k + q] * a[j * k + q];
        if (!(d > 1e-14 * std::fabs(a[j * k + j])) || !(d > 0.0)) return false;
        const double l = std::sqrt(d);
        a[j * k + j] = l;
        for (std::size_t i = j + 1; i < k; ++i) {
            double s = a[i * k + j];
            for (std::size_t q = 0; q < j; ++q) s -= a[i * k + q] * a[j * k + q];
            a[i * k + j] = s / l;
        }
    }
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
    const std::vector<double> p = basis(wave, n, order);
    const int nt = resolve_threads(threads);
    const std::int64_t ns = static_cast<std::int64_t>(nspec);
#pragma omp parallel num_threads(nt)
    {
        std::vector<double> a(kk * kk), b(kk), fit(n);
        std::vector<std::uint8_t> keep(n);
#pragma omp for schedule(dynamic, 16)
        for (std::int64_t si = 0; si < ns; ++si) {
            const std::size_t s = static_cast<std::size_t>(si);
            const double* ys = y + s * n;
            const double* ws = w + s * n;
            double* c = out.coeffs + s * kk;
            std::size_t nkeep = 0;
            for (std::size_t i = 0; i < n; ++i) {
                keep[i] = (ws[i] > 0.0 && std::isfinite(ws[i]) && std::isfinite(ys[i])) ? 1 : 0;
                nkeep += keep[i];
            }
            std::int32_t status = 0;
            for (int iter = 0; iter < max_iter; ++iter) {
                if (nkeep < kk) {
                    status = 1;
                    break;
                }
                std::fill(a.begin(), a.end(), 0.0);
                std::fill(b.begin(), b.end(), 0.0);
                for (std::size_t i = 0; i < n; ++i) {
                    if (!keep[i]) continue;
                    const double* row = p.data() + i * kk;
                    const double wi = ws[i];
                    for (std::size_t j = 0; j < kk; ++j) {
                        const double wj = wi * row[j];
                        b[j] += wj * ys[i];
                        for (std::size_t q = 0; q <= j; ++q) a[j * kk + q] += wj * row[q];
                    }
                }
                for (std::size_t j = 0; j < kk; ++j)
                    for (std::size_t q = j + 1; q < kk; ++q) a[j * kk + q] = a[q * kk + j];
                if (!cholesky_solve(a, b, kk)) {
                    status = 2;
                    break;
                }
                for (std::size_t j = 0; j < kk; ++j) c[j] = b[j];
                for (std::size_t i = 0; i < n; ++i) {
                    const double* row = p.data() + i * kk;
                    double v = 0.0;
                    for (std::size_t j = 0; j < kk; ++j) v += c[j] * row[j];
                    fit[i] = v;
                }
                if (!(clip > 0.0) || iter + 1 == max_iter) break;
                double sum = 0.0, sum2 = 0.0;
                for (std::size_t i = 0; i < n; ++i) {
                    if (!keep[i]) continue;
                    const double r = (ys[i] - fit[i]) * std::sqrt(ws[i]);
                    sum += r;
                    sum2 += r * r;
                }
                const double mean = sum / static_cast<double>(nkeep);
                const double sd = std::sqrt(std::max(0.0, sum2 / static_cast<double>(nkeep) - mean * mean));
                std::size_t dropped = 0;
                for (std::size_t i = 0; i < n; ++i) {
                    if (!keep[i]) continue;
                    const double r = (ys[i] - fit[i]) * std::sqrt(ws[i]);
                    if (std::fabs(r - mean) > clip * sd) {
                        keep[i] = 0;
                        ++dropped;
                    }
                }
                nkeep -= dropped;
                if (dropped == 0) break;
            }
            out.status[s] = status;
            if (status != 0) {
                for (std::size_t j = 0; j < kk; ++j) c[j] = std::numeric_limits<double>::quiet_NaN();
            }
            if (out.model) {
                double* m = out.model + s * n;
                for (std::size_t i = 0; i < n; ++i)
                    m[i] = status == 0 ? fit[i] : std::numeric_limits<double>::quiet_NaN();
            }
            if (out.used) {
                std::uint8_t* u = out.used + s * n;
                for (std::size_t i = 0; i < n; ++i) u[i] = status == 0 ? keep[i] : 0;
            }
        }
    }
}

void legendre_eval(const double* wave, std::size_t n, const double* coeffs, std::size_t nspec,
                   int order, double* out, int threads) {
    require(order >= 0 && order <= 64, "legendre_eval: order must be within 0..64");
    require(n >= 2, "legendre_eval: the wavelength grid needs at least 2 points");
    const std::size_t kk = static_cast<std::size_t>(order) + 1;
    const std::vector<double> p = basis(wave, n, order);
    const int nt = resolve_threads(threads);
    const std::int64_t ns = static_cast<std::int64_t>(nspec);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (std::int64_t si = 0; si < ns; ++si) {
        const double* c = coeffs + static_cast<std::size_t>(si) * kk;
        double* o = out + static_cast<std::size_t>(si) * n;
        for (std::size_t i = 0; i < n; ++i) {
            const double* row = p.data() + i * kk;
            double v = 0.0;
            for (std::size_t j = 0; j < kk; ++j) v += c[j] * row[j];
            o[i] = v;
        }
    }
}

}  // namespace pixedfit
