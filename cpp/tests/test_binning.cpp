// Kernel tests of the pixel binning: invariants on small cubes, the trap case, bin sums.
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "check.hpp"
#include "pixedfit/binning.hpp"

namespace {

struct Cube {
    std::size_t nb, ny, nx;
    std::vector<double> flux, err;
    std::vector<std::uint8_t> region;
};

Cube gradient_cube(std::size_t nb, std::size_t ny, std::size_t nx, unsigned seed) {
    Cube c{nb, ny, nx, {}, {}, {}};
    std::mt19937 gen(seed);
    std::normal_distribution<double> noise(0.0, 1.0);
    c.flux.resize(nb * ny * nx);
    c.err.assign(nb * ny * nx, 1.0);
    c.region.assign(ny * nx, 1);
    for (std::size_t b = 0; b < nb; ++b) {
        for (std::size_t y = 0; y < ny; ++y) {
            for (std::size_t x = 0; x < nx; ++x) {
                const double r = std::hypot(y - ny / 2.0, x - nx / 2.0);
                c.flux[(b * ny + y) * nx + x] = 40.0 * std::exp(-r / 3.0) * (1.0 + 0.2 * b) +
                                                noise(gen);
            }
        }
    }
    return c;
}

// Number of 4-connected components of the pixels of bin `id`.
int components(const pixedfit::BinningResult& r, std::size_t ny, std::size_t nx,
               std::int32_t id) {
    std::vector<char> seen(ny * nx, 0);
    int n = 0;
    for (std::size_t p0 = 0; p0 < ny * nx; ++p0) {
        if (r.bin_map[p0] != id || seen[p0]) continue;
        ++n;
        std::vector<std::size_t> stack = {p0};
        seen[p0] = 1;
        while (!stack.empty()) {
            const std::size_t p = stack.back();
            stack.pop_back();
            const long y = static_cast<long>(p / nx), x = static_cast<long>(p % nx);
            const long nbr[4][2] = {{y - 1, x}, {y + 1, x}, {y, x - 1}, {y, x + 1}};
            for (const auto& q : nbr) {
                if (q[0] < 0 || q[0] >= static_cast<long>(ny) || q[1] < 0 ||
                    q[1] >= static_cast<long>(nx))
                    continue;
                const std::size_t pq = static_cast<std::size_t>(q[0]) * nx + q[1];
                if (r.bin_map[pq] == id && !seen[pq]) {
                    seen[pq] = 1;
                    stack.push_back(pq);
                }
            }
        }
    }
    return n;
}

void check_invariants(const Cube& c, const pixedfit::BinningResult& r, double snr,
                      bool connected) {
    const std::size_t npix = c.ny * c.nx;
    std::vector<double> f(r.nbins * c.nb, 0.0), v(r.nbins * c.nb, 0.0);
    for (std::size_t p = 0; p < npix; ++p) {
        CHECK((r.bin_map[p] > 0) == (c.region[p] != 0));
        if (r.bin_map[p] <= 0) continue;
        CHECK(r.bin_map[p] <= r.nbins);
        for (std::size_t b = 0; b < c.nb; ++b) {
            f[(r.bin_map[p] - 1) * c.nb + b] += c.flux[b * npix + p];
            v[(r.bin_map[p] - 1) * c.nb + b] += c.err[b * npix + p] * c.err[b * npix + p];
        }
    }
    for (std::int32_t k = 0; k < r.nbins; ++k) {
        const bool leftover = r.has_leftover && k == r.nbins - 1;
        CHECK((r.seed[k] < 0) == leftover);
        for (std::size_t b = 0; b < c.nb; ++b) {
            CHECK_CLOSE(r.bin_flux[k * c.nb + b], f[k * c.nb + b], 1e-10);
            CHECK_CLOSE(r.bin_var[k * c.nb + b], v[k * c.nb + b], 1e-10);
            if (!leftover) CHECK(r.bin_flux[k * c.nb + b] / std::sqrt(r.bin_var[k * c.nb + b]) >= snr);
        }
        if (connected && !leftover) CHECK(components(r, c.ny, c.nx, k + 1) == 1);
    }
}

}  // namespace

TEST_CASE("reduced chi2: zero for proportional SEDs, analytic otherwise") {
    const double f1[3] = {1.0, 2.0, 3.0}, s[3] = {0.1, 0.1, 0.1};
    const double f2[3] = {2.0, 4.0, 6.0}, f3[3] = {1.0, 2.0, 4.0};
    CHECK(std::fabs(pixedfit::shape_reduced_chi2(f1, s, f2, s, 3)) < 1e-20);
    const double a = (1.0 + 4.0 + 12.0) / 14.0;
    const double expect = ((1 - a) * (1 - a) + (2 - 2 * a) * (2 - 2 * a) + (4 - 3 * a) * (4 - 3 * a)) /
                          0.02 / 3.0;
    CHECK_CLOSE(pixedfit::shape_reduced_chi2(f1, s, f3, s, 3), expect, 1e-12);
    const double zero[3] = {0.0, 0.0, 0.0};
    CHECK(std::isfinite(pixedfit::shape_reduced_chi2(zero, s, f3, s, 3)));
}

TEST_CASE("binning invariants, connected and not, any thread count") {
    const Cube c = gradient_cube(4, 30, 33, 7);
    const std::vector<double> snr(4, 5.0);
    for (const bool connected : {true, false}) {
        pixedfit::BinningParams p;
        p.connected = connected;
        p.sys_factor = 0.05;
        const auto r1 = pixedfit::bin_pixels(c.flux.data(), c.err.data(), c.region.data(), c.nb,
                                             c.ny, c.nx, 1, snr.data(), p, 1);
        const auto r2 = pixedfit::bin_pixels(c.flux.data(), c.err.data(), c.region.data(), c.nb,
                                             c.ny, c.nx, 1, snr.data(), p, 2);
        CHECK(r1.nbins > 5);
        CHECK(r1.bin_map == r2.bin_map);
        CHECK(r1.bin_flux == r2.bin_flux);
        check_invariants(c, r1, 5.0, connected);
    }
}

TEST_CASE("correlated noise: exact S/N variances of the bins, any thread count") {
    const Cube c = gradient_cube(3, 24, 26, 11);
    const std::vector<double> snr(3, 6.0);
    pixedfit::BinningParams p;
    p.rho_half = 1;
    const double kernel[9] = {0.05, 0.2, 0.05, 0.2, 1.0, 0.2, 0.05, 0.2, 0.05};
    for (std::size_t b = 0; b < 3; ++b) p.rho.insert(p.rho.end(), kernel, kernel + 9);
    const auto r1 = pixedfit::bin_pixels(c.flux.data(), c.err.data(), c.region.data(), c.nb,
                                         c.ny, c.nx, 0, snr.data(), p, 1);
    const auto r2 = pixedfit::bin_pixels(c.flux.data(), c.err.data(), c.region.data(), c.nb,
                                         c.ny, c.nx, 0, snr.data(), p, 1000);
    CHECK(r1.nbins > 3);
    CHECK(r1.bin_map == r2.bin_map);
    CHECK(r1.bin_var == r2.bin_var);
    // bin_var = sum over pixel pairs of the bin of rho(lag) s_i s_j (unit errors here)
    const std::size_t npix = c.ny * c.nx;
    for (std::int32_t k = 1; k <= r1.nbins; ++k) {
        if (r1.has_leftover && k == r1.nbins) continue;
        double var = 0.0;
        for (std::size_t i = 0; i < npix; ++i) {
            if (r1.bin_map[i] != k) continue;
            for (std::size_t j = 0; j < npix; ++j) {
                if (r1.bin_map[j] != k) continue;
                const long dy = static_cast<long>(j / c.nx) - static_cast<long>(i / c.nx);
                const long dx = static_cast<long>(j % c.nx) - static_cast<long>(i % c.nx);
                if (dy < -1 || dy > 1 || dx < -1 || dx > 1) continue;
                var += kernel[(dy + 1) * 3 + (dx + 1)];
            }
        }
        for (std::size_t b = 0; b < c.nb; ++b) {
            CHECK_CLOSE(r1.bin_var[(k - 1) * c.nb + b], var, 1e-12);
            CHECK(r1.bin_flux[(k - 1) * c.nb + b] / std::sqrt(var) >= 6.0);
        }
    }
}

TEST_CASE("trap: an isolated pixel that can never reach S/N ends in the leftover bin") {
    Cube c = gradient_cube(3, 15, 15, 1);
    // cut pixel (10, 10) off from the rest and make it faint
    for (int dy = -2; dy <= 2; ++dy)
        for (int dx = -2; dx <= 2; ++dx)
            if (dy != 0 || dx != 0) c.region[(10 + dy) * 15 + (10 + dx)] = 0;
    for (std::size_t b = 0; b < 3; ++b) c.flux[b * 225 + 10 * 15 + 10] = 1.0;
    const std::vector<double> snr(3, 5.0);
    for (const bool connected : {true, false}) {
        pixedfit::BinningParams p;
        p.connected = connected;
        const auto r = pixedfit::bin_pixels(c.flux.data(), c.err.data(), c.region.data(), 3, 15,
                                            15, 0, snr.data(), p, 1);
        CHECK(r.has_leftover);
        CHECK(r.bin_map[10 * 15 + 10] == r.nbins);
        check_invariants(c, r, 5.0, connected);
    }
}

TEST_CASE("bin sums: sums, quadrature, NaN propagation") {
    const std::vector<std::int32_t> map = {1, 1, 2, 0};
    const std::vector<double> vals = {1.0, 2.0, 3.0, 100.0, 3.0, 4.0, NAN, 1.0};
    const auto s = pixedfit::bin_sums(vals.data(), 2, 2, 2, map.data(), 2, false, 2);
    CHECK(s[0] == 3.0 && s[1] == 3.0 && s[2] == 7.0 && std::isnan(s[3]));
    const auto q = pixedfit::bin_sums(vals.data(), 2, 2, 2, map.data(), 2, true, 1);
    CHECK_CLOSE(q[0], std::sqrt(5.0), 1e-15);
    CHECK(q[2] == 5.0);
    const std::vector<std::int32_t> bad = {1, 3, 0, 0};
    CHECK_THROWS(pixedfit::bin_sums(vals.data(), 2, 2, 2, bad.data(), 2, false, 1));
}

TEST_CASE("argument checks") {
    const Cube c = gradient_cube(2, 5, 5, 3);
    const std::vector<double> snr(2, 5.0);
    pixedfit::BinningParams p;
    CHECK_THROWS(pixedfit::bin_pixels(c.flux.data(), c.err.data(), c.region.data(), 2, 5, 5, 2,
                                      snr.data(), p, 1));
    p.del_r = 0.0;
    CHECK_THROWS(pixedfit::bin_pixels(c.flux.data(), c.err.data(), c.region.data(), 2, 5, 5, 0,
                                      snr.data(), p, 1));
}

TEST_MAIN()
