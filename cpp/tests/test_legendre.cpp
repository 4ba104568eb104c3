// Kernel tests of the batched Legendre fits.
#include <cmath>
#include <cstdint>
#include <vector>

#include "check.hpp"
#include "pixedfit/legendre.hpp"

TEST_CASE("a quadratic is recovered exactly in the Legendre basis") {
    const std::size_t n = 200;
    std::vector<double> wave(n), y(n), w(n, 1.0);
    for (std::size_t i = 0; i < n; ++i) wave[i] = 4000.0 + 10.0 * static_cast<double>(i);
    for (std::size_t i = 0; i < n; ++i) {
        const double x = 2.0 * (wave[i] - wave[0]) / (wave[n - 1] - wave[0]) - 1.0;
        y[i] = 2.0 + 0.5 * x + 0.25 * (1.5 * x * x - 0.5);  // 2 P0 + 0.5 P1 + 0.25 P2
    }
    std::vector<double> c(3), model(n);
    std::vector<std::int32_t> status(1);
    pixedfit::LegendreOutputs out;
    out.coeffs = c.data();
    out.model = model.data();
    out.status = status.data();
    pixedfit::legendre_fit(wave.data(), n, y.data(), w.data(), 1, 2, 0.0, 1, 1, out);
    CHECK(status[0] == 0);
    CHECK_CLOSE(c[0], 2.0, 1e-12);
    CHECK_CLOSE(c[1], 0.5, 1e-12);
    CHECK_CLOSE(c[2], 0.25, 1e-11);
    CHECK_CLOSE(model[17], y[17], 1e-12);
    std::vector<double> ev(n);
    pixedfit::legendre_eval(wave.data(), n, c.data(), 1, 2, ev.data(), 2);
    CHECK_CLOSE(ev[123], y[123], 1e-12);
}

TEST_CASE("too few points and bad grids are reported") {
    std::vector<double> wave = {1.0, 2.0, 3.0}, y = {1.0, 1.0, 1.0}, w = {1.0, 0.0, 0.0};
    std::vector<double> c(2);
    std::vector<std::int32_t> status(1);
    pixedfit::LegendreOutputs out;
    out.coeffs = c.data();
    out.status = status.data();
    pixedfit::legendre_fit(wave.data(), 3, y.data(), w.data(), 1, 1, 0.0, 1, 1, out);
    CHECK(status[0] == 1 && std::isnan(c[0]));
    std::vector<double> bad = {1.0, 1.0, 3.0};
    CHECK_THROWS(pixedfit::legendre_fit(bad.data(), 3, y.data(), w.data(), 1, 1, 0.0, 1, 1, out));
    CHECK_THROWS(pixedfit::legendre_fit(wave.data(), 3, y.data(), w.data(), 1, -1, 0.0, 1, 1, out));
}

TEST_MAIN()
