// Kernel tests of the EM fit of Gaussian mixtures.
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "check.hpp"
#include "pixedfit/mixture.hpp"

// |a - b| <= tol (CHECK_CLOSE is relative, and some of these values are zero)
#define CHECK_NEAR(a, b, tol) CHECK(std::fabs((a) - (b)) <= (tol))

namespace {

// n points in 2-D: a share `p` around (-3, 0) with covariance diag(1, 0.25), the rest around
// (3, 1) with covariance [[0.5, 0.3], [0.3, 0.5]].
std::vector<double> two_clusters(std::size_t n, double p, std::uint32_t seed) {
    std::mt19937_64 gen(seed);
    std::normal_distribution<double> g(0.0, 1.0);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::vector<double> x(2 * n);
    const double l11 = std::sqrt(0.5), l21 = 0.3 / l11, l22 = std::sqrt(0.5 - l21 * l21);
    for (std::size_t i = 0; i < n; ++i) {
        const double a = g(gen), b = g(gen);
        if (u(gen) < p) {
            x[2 * i] = -3.0 + a;
            x[2 * i + 1] = 0.5 * b;
        } else {
            x[2 * i] = 3.0 + l11 * a;
            x[2 * i + 1] = 1.0 + l21 * a + l22 * b;
        }
    }
    return x;
}

}  // namespace

TEST_CASE("two separated clusters are recovered from equal weights") {
    const std::size_t n = 20000;
    const auto x = two_clusters(n, 0.3, 7);
    std::vector<double> w(n, 1.0 / n);
    const std::vector<double> start = {-1.0, 0.0, 1.0, 0.0};  // (k, d) = (2, 2)
    const std::vector<double> cov = {4.0, 0.0, 0.0, 4.0};
    const std::vector<double> ridge = {0.0, 0.0};
    const auto fit = pixedfit::em_gaussian_mixture(x.data(), n, 2, w.data(), start.data(), 2,
                                                   cov.data(), ridge.data(), double(n), 4.0,
                                                   200, 1e-10);
    CHECK(fit.size() == 2);
    const std::size_t a = fit.means[0] < 0 ? 0 : 1, b = 1 - a;
    // sampling errors of 20 000 points: shares ~0.003, means ~0.01, covariances ~0.01
    CHECK_NEAR(fit.shares[a], 0.3, 0.015);
    CHECK_NEAR(fit.means[2 * a], -3.0, 0.05);
    CHECK_NEAR(fit.means[2 * a + 1], 0.0, 0.05);
    CHECK_NEAR(fit.means[2 * b], 3.0, 0.05);
    CHECK_NEAR(fit.means[2 * b + 1], 1.0, 0.05);
    CHECK_NEAR(fit.covs[4 * a], 1.0, 0.05);
    CHECK_NEAR(fit.covs[4 * a + 3], 0.25, 0.02);
    CHECK_NEAR(fit.covs[4 * a + 1], 0.0, 0.02);
    CHECK_NEAR(fit.covs[4 * b], 0.5, 0.03);
    CHECK_NEAR(fit.covs[4 * b + 1], 0.3, 0.03);
    CHECK_NEAR(fit.covs[4 * b + 2], 0.3, 0.03);  // symmetric
    CHECK_NEAR(fit.covs[4 * b + 3], 0.5, 0.03);
    CHECK(fit.iterations < 200);  // converged on the tolerance
}

TEST_CASE("one kernel is the weighted mean and covariance, plus the ridge") {
    // one EM step of one kernel: responsibilities are the weights themselves
    const std::vector<double> x = {0.0, 1.0, 2.0, 3.0, 4.0, 2.0};  // (3, 2)
    const std::vector<double> w = {0.5, 0.25, 0.25};
    const std::vector<double> start = {0.0, 0.0}, cov = {1.0, 0.0, 0.0, 1.0};
    const std::vector<double> ridge = {0.1, 0.2};
    const auto fit = pixedfit::em_gaussian_mixture(x.data(), 3, 2, w.data(), start.data(), 1,
                                                   cov.data(), ridge.data(), 8.0 / 3.0, 0.0,
                                                   1, 0.0);
    CHECK(fit.size() == 1);
    CHECK_NEAR(fit.shares[0], 1.0, 1e-15);
    const double mx = 0.5 * 0 + 0.25 * 2 + 0.25 * 4, my = 0.5 * 1 + 0.25 * 3 + 0.25 * 2;
    CHECK_NEAR(fit.means[0], mx, 1e-14);
    CHECK_NEAR(fit.means[1], my, 1e-14);
    const double cxx = 0.5 * mx * mx + 0.25 * (2 - mx) * (2 - mx) + 0.25 * (4 - mx) * (4 - mx);
    const double cxy = 0.5 * (0 - mx) * (1 - my) + 0.25 * (2 - mx) * (3 - my) +
                       0.25 * (4 - mx) * (2 - my);
    const double cyy = 0.5 * (1 - my) * (1 - my) + 0.25 * (3 - my) * (3 - my) +
                       0.25 * (2 - my) * (2 - my);
    CHECK_NEAR(fit.covs[0], cxx + 0.1, 1e-14);
    CHECK_NEAR(fit.covs[1], cxy, 1e-14);
    CHECK_NEAR(fit.covs[2], cxy, 1e-14);
    CHECK_NEAR(fit.covs[3], cyy + 0.2, 1e-14);
}

TEST_CASE("kernels with too few effective points or no factorisable covariance are dropped") {
    const std::size_t n = 2000;
    const auto x = two_clusters(n, 0.5, 3);
    std::vector<double> w(n, 1.0 / n);
    // a third kernel far from every point keeps no responsibility
    const std::vector<double> start = {-3.0, 0.0, 3.0, 1.0, 100.0, 100.0};
    const std::vector<double> cov = {1.0, 0.0, 0.0, 1.0};
    const std::vector<double> ridge = {1e-6, 1e-6};
    const auto fit = pixedfit::em_gaussian_mixture(x.data(), n, 2, w.data(), start.data(), 3,
                                                   cov.data(), ridge.data(), double(n), 4.0,
                                                   10, 1e-8);
    CHECK(fit.size() == 2);
    CHECK_NEAR(fit.shares[0] + fit.shares[1], 1.0, 1e-12);
    // a start covariance that is not positive definite: every kernel dropped, empty result
    const std::vector<double> bad = {1.0, 2.0, 2.0, 1.0};
    const auto none = pixedfit::em_gaussian_mixture(x.data(), n, 2, w.data(), start.data(), 3,
                                                    bad.data(), ridge.data(), double(n), 4.0,
                                                    10, 1e-8);
    CHECK(none.size() == 0);
    CHECK_THROWS(pixedfit::em_gaussian_mixture(x.data(), 0, 2, w.data(), start.data(), 3,
                                               cov.data(), ridge.data(), 1.0, 4.0, 10, 1e-8));
}

TEST_MAIN()
