// Gaussian mixtures fitted to weighted points by expectation-maximisation: the proposal
// densities of the adaptive importance sampler are built from them, once per round.
//
// The kernels start at given means with one shared covariance and equal shares. Each
// iteration computes the responsibilities of the kernels for every point from the current
// kernels (E-step: Cholesky factors, squared Mahalanobis distances by forward substitution,
// log-sum-exp over the kernels), then the kernels' shares, means and covariances about the
// new means from the weighted responsibilities (M-step), and adds `ridge` to the diagonal of
// every covariance. A kernel whose effective points (its summed responsibility times the
// points' effective sample size) fall below `min_points`, or whose covariance is not
// positive definite, is dropped. The iterations stop after `max_iter`, or when no kernel was
// dropped and the weighted mean log-likelihood changed by less than `tol`.
// Single-threaded and deterministic: the result depends only on the inputs.
#pragma once

#include <cstddef>
#include <vector>

namespace pixedfit {

struct GaussianMixture {
    std::size_t dim = 0;
    std::vector<double> shares;  // (k) summing to 1
    std::vector<double> means;   // (k, dim)
    std::vector<double> covs;    // (k, dim, dim)
    int iterations = 0;          // EM iterations done
    std::size_t size() const { return shares.size(); }
};

// points (n, d) row-major; weights (n) summing to 1; start_means (k, d); start_cov (d, d),
// the covariance every kernel starts with; ridge (d), added to the diagonal of every
// fitted covariance; ess, the effective sample size of the weights. Returns an empty
// mixture when every kernel was dropped. Throws std::invalid_argument on bad sizes.
GaussianMixture em_gaussian_mixture(const double* points, std::size_t n, std::size_t d,
                                    const double* weights, const double* start_means,
                                    std::size_t k, const double* start_cov,
                                    const double* ridge, double ess, double min_points,
                                    int max_iter, double tol);

}  // namespace pixedfit
