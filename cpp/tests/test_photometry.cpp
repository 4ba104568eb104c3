// Kernel tests of the photometry weights against analytic integrals.
#include <cmath>
#include <cstdint>
#include <vector>

#include "check.hpp"
#include "pixedfit/photometry.hpp"

namespace {

std::vector<double> linspace(double a, double b, int n) {
    std::vector<double> v(n);
    for (int i = 0; i < n; ++i) v[i] = a + (b - a) * i / (n - 1);
    return v;
}

double band_mean(const pixedfit::BandWeights& bw, const std::vector<double>& f) {
    double acc = 0.0;
    for (std::size_t q = 0; q < bw.weights.size(); ++q) acc += bw.weights[q] * f[bw.start + q];
    return acc;
}

}  // namespace

TEST_CASE("weights sum to one and reproduce a constant") {
    const auto grid = linspace(1000.0, 9000.0, 317);
    const std::vector<double> fw = {3000.0, 3500.0, 4100.0, 5000.0, 5200.0};
    const std::vector<double> ft = {0.0, 0.3, 1.0, 0.8, 0.0};
    const auto bw = pixedfit::band_weights(grid.data(), grid.size(), fw.data(), ft.data(), fw.size());
    double sum = 0.0;
    for (double w : bw.weights) sum += w;
    CHECK_CLOSE(sum, 1.0, 1e-14);
    std::vector<double> f(grid.size(), 3.25);
    CHECK_CLOSE(band_mean(bw, f), 3.25, 1e-14);
}

TEST_CASE("box filter, linear spectrum: exact analytic mean") {
    // <f> = Int l^2 dl / Int l dl over [a, b] for f = l, T = 1.
    const double a = 4000.0, b = 6000.0;
    const auto grid = linspace(3000.0, 7000.0, 13);  // coarse, not aligned with the box
    const std::vector<double> fw = {a, a + 1e-6, b - 1e-6, b};
    const std::vector<double> ft = {0.0, 1.0, 1.0, 0.0};
    const auto bw = pixedfit::band_weights(grid.data(), grid.size(), fw.data(), ft.data(), fw.size());
    std::vector<double> f(grid);
    const double expected = (2.0 / 3.0) * (b * b * b - a * a * a) / (b * b - a * a);
    CHECK_CLOSE(band_mean(bw, f), expected, 1e-9);
}

TEST_CASE("triangular filter, piecewise-linear spectrum on a coarse grid") {
    // Spectrum f = 2 + 1e-3 l (linear, so exact on any grid); T triangle on [5000, 7000].
    const auto grid = linspace(4000.0, 8000.0, 7);
    const std::vector<double> fw = {5000.0, 6000.0, 7000.0};
    const std::vector<double> ft = {0.0, 1.0, 0.0};
    const auto bw = pixedfit::band_weights(grid.data(), grid.size(), fw.data(), ft.data(), fw.size());
    std::vector<double> f(grid.size());
    for (std::size_t i = 0; i < grid.size(); ++i) f[i] = 2.0 + 1e-3 * grid[i];
    // Reference by a very fine midpoint rule.
    double num = 0.0, den = 0.0;
    const int nfine = 2000000;
    for (int q = 0; q < nfine; ++q) {
        const double x = 5000.0 + (q + 0.5) * 2000.0 / nfine;
        const double t = x < 6000.0 ? (x - 5000.0) / 1000.0 : (7000.0 - x) / 1000.0;
        num += (2.0 + 1e-3 * x) * t * x;
        den += t * x;
    }
    CHECK_CLOSE(band_mean(bw, f), num / den, 1e-9);
}

TEST_CASE("apply_band_weights is thread-count invariant and matches single application") {
    const auto grid = linspace(1000.0, 20000.0, 2001);
    const std::vector<double> fw1 = {2000.0, 2500.0, 3000.0};
    const std::vector<double> ft1 = {0.0, 1.0, 0.0};
    const std::vector<double> fw2 = {9000.0, 12000.0, 15000.0};
    const std::vector<double> ft2 = {0.0, 0.5, 0.0};
    const auto b1 = pixedfit::band_weights(grid.data(), grid.size(), fw1.data(), ft1.data(), 3);
    const auto b2 = pixedfit::band_weights(grid.data(), grid.size(), fw2.data(), ft2.data(), 3);
    std::vector<std::int64_t> starts = {b1.start, b2.start};
    std::vector<std::int64_t> offsets = {0, static_cast<std::int64_t>(b1.weights.size()),
                                         static_cast<std::int64_t>(b1.weights.size() + b2.weights.size())};
    std::vector<double> weights(b1.weights);
    weights.insert(weights.end(), b2.weights.begin(), b2.weights.end());
    const std::size_t nspec = 257;
    std::vector<double> flux(nspec * grid.size());
    for (std::size_t s = 0; s < nspec; ++s)
        for (std::size_t i = 0; i < grid.size(); ++i)
            flux[s * grid.size() + i] = std::sin(1e-3 * grid[i] * (1.0 + 0.01 * s)) + 2.0;
    std::vector<double> out1(nspec * 2), out2(nspec * 2);
    pixedfit::apply_band_weights(flux.data(), nspec, grid.size(), starts.data(), offsets.data(),
                                 weights.data(), 2, out1.data(), 1);
    pixedfit::apply_band_weights(flux.data(), nspec, grid.size(), starts.data(), offsets.data(),
                                 weights.data(), 2, out2.data(), 2);
    bool identical = true;
    for (std::size_t q = 0; q < out1.size(); ++q) identical = identical && out1[q] == out2[q];
    CHECK(identical);
    std::vector<double> f0(flux.begin() + 5 * grid.size(), flux.begin() + 6 * grid.size());
    CHECK_CLOSE(out1[5 * 2 + 1], band_mean(b2, f0), 1e-15);
}

TEST_CASE("bad input throws") {
    const auto grid = linspace(4000.0, 5000.0, 11);
    const std::vector<double> fw = {3000.0, 4500.0, 6000.0};
    const std::vector<double> ft = {0.0, 1.0, 0.0};
    CHECK_THROWS(pixedfit::band_weights(grid.data(), grid.size(), fw.data(), ft.data(), 3));
    const std::vector<double> fw_ok = {4200.0, 4500.0, 4800.0};
    const std::vector<double> ft_neg = {0.0, -1.0, 0.0};
    CHECK_THROWS(pixedfit::band_weights(grid.data(), grid.size(), fw_ok.data(), ft_neg.data(), 3));
    const std::vector<double> ft_zero = {0.0, 0.0, 0.0};
    CHECK_THROWS(pixedfit::band_weights(grid.data(), grid.size(), fw_ok.data(), ft_zero.data(), 3));
    std::vector<double> bad_grid(grid);
    bad_grid[5] = bad_grid[4];
    CHECK_THROWS(pixedfit::band_weights(bad_grid.data(), bad_grid.size(), fw_ok.data(), ft.data(), 3));
    std::vector<std::int64_t> starts = {8};
    std::vector<std::int64_t> offsets = {0, 5};
    std::vector<double> w(5, 0.2), flux(11, 1.0), out(1);
    CHECK_THROWS(pixedfit::apply_band_weights(flux.data(), 1, 11, starts.data(), offsets.data(),
                                              w.data(), 1, out.data(), 1));
}

TEST_MAIN()
