// Batched weighted least-squares fits of Legendre series, for multiplicative spectral
// corrections (model/data ratios of many spectra sharing one wavelength grid).
//
// For every spectrum s the kernel minimises
//     sum_i w[s, i] (y[s, i] - sum_{k <= order} c[s, k] P_k(x_i))^2,
// x_i = 2 (lambda_i - lambda_0) / (lambda_{n-1} - lambda_0) - 1 in [-1, 1], by normal
// equations solved with a Cholesky factorisation; the normal matrix comes from the 2 order + 1
// weighted moments of the Legendre polynomials (products linearised), so the work per grid
// point is 3 order + 2 multiply-adds.
// Optional sigma clipping: after each fit, points whose normalised residual
// r = (y - fit) sqrt(w) lies more than `clip` standard deviations from the mean of the
// kept residuals are dropped and the fit is repeated, until nothing changes or `max_iter`
// fits were done. Points with w <= 0 never enter. OpenMP over spectra; the result of each
// spectrum does not depend on the number of threads.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pixedfit {

struct LegendreOutputs {
    double* coeffs = nullptr;        // (nspec, order + 1)
    double* model = nullptr;         // (nspec, n) fitted series on the grid, or null
    std::uint8_t* used = nullptr;    // (nspec, n) 1 where the point entered the last fit, or null
    std::int32_t* status = nullptr;  // (nspec) 0 ok, 1 too few points, 2 singular system
};

void legendre_fit(const double* wave, std::size_t n, const double* y, const double* w,
                  std::size_t nspec, int order, double clip, int max_iter, int threads,
                  const LegendreOutputs& out);

// Evaluate Legendre series c (nspec, order + 1) on the grid, with the grid's own mapping to
// [-1, 1] as in legendre_fit.
void legendre_eval(const double* wave, std::size_t n, const double* coeffs, std::size_t nspec,
                   int order, double* out, int threads);

}  // namespace pixedfit
