// Cholesky factorisation shared by the kernels.
#pragma once

#include <cmath>
#include <cstddef>

namespace pixedfit::detail {

// Lower Cholesky factor, in place, of the symmetric (k, k) row-major matrix a: only the
// lower triangle is read and overwritten. False when a pivot is not finite or not above
// rel_tol times its diagonal element (the matrix is not numerically positive definite).
inline bool cholesky_lower(double* a, std::size_t k, double rel_tol) {
    for (std::size_t j = 0; j < k; ++j) {
        double d = a[j * k + j];
        for (std::size_t q = 0; q < j; ++q) d -= a[j * k + q] * a[j * k + q];
        if (!(d > rel_tol * std::fabs(a[j * k + j])) || !(d > 0.0) || !std::isfinite(d))
            return false;
        const double l = std::sqrt(d);
        a[j * k + j] = l;
        for (std::size_t i = j + 1; i < k; ++i) {
            double s = a[i * k + j];
            for (std::size_t q = 0; q < j; ++q) s -= a[i * k + q] * a[j * k + q];
            a[i * k + j] = s / l;
        }
    }
    return true;
}

}  // namespace pixedfit::detail
