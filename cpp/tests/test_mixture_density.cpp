// Kernel tests of the proposal densities and of the polynomial log they use.
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "../src/vlog.hpp"
#include "check.hpp"
#include "pixedfit/mixture_density.hpp"

#define CHECK_NEAR(a, b, tol) CHECK(std::fabs((a) - (b)) <= (tol))

namespace {

constexpr double kPi = 3.14159265358979323846;

// ln of the 1-D Student-t density with df degrees of freedom, location mu, scale s
double student_t(double x, double df, double mu, double s) {
    const double z = (x - mu) / s;
    return std::lgamma(0.5 * (df + 1)) - std::lgamma(0.5 * df) - 0.5 * std::log(df * kPi) -
           std::log(s) - 0.5 * (df + 1) * std::log1p(z * z / df);
}

double log_logistic(double y) { return -std::log1p(std::exp(-y)) - std::log1p(std::exp(y)); }

}  // namespace

TEST_CASE("the polynomial log agrees with std::log to a few units in the last place") {
    std::mt19937_64 gen(11);
    std::uniform_real_distribution<double> e(-300.0, 300.0);
    for (int i = 0; i < 200000; ++i) {
        const double x = std::pow(10.0, e(gen));
        const double want = std::log(x);
        CHECK(std::fabs(pixedfit::detail::vlog_positive(x) - want) <=
              4e-16 * std::fabs(want) + 1e-300);
    }
    // near 1, where the result is small: absolute error at the rounding of x
    for (double x : {1.0, 1.0 + 1e-15, 1.0 + 1e-9, 0.999999, 1.4142135623730951, 2.0, 0.5})
        CHECK_NEAR(pixedfit::detail::vlog_positive(x), std::log(x), 2.3e-16);
}

TEST_CASE("two 1-D Student-t groups and the box prior against the closed forms") {
    // group 0: two kernels at -1 and 2 sharing the scale 0.5; group 1: one at 0, scale 2
    const double chols[] = {0.5, 2.0};
    const std::size_t offsets[] = {0, 2, 3};
    const double centres[] = {-1.0, 2.0, 0.0};
    const double df = 4.0, w0 = 0.6, w1 = 0.3, wd = 0.1;
    const double norm0 = std::lgamma(2.5) - std::lgamma(2.0) - 0.5 * std::log(df * kPi);
    const double coef[] = {std::log(w0 / 2) + norm0 - std::log(0.5),
                           std::log(w0 / 2) + norm0 - std::log(0.5),
                           std::log(w1) + norm0 - std::log(2.0)};
    pixedfit::ProposalDensity q(1, df, chols, 2, offsets, centres, coef, nullptr, 0, nullptr,
                                nullptr, std::log(wd));
    std::vector<double> y, log_box;
    for (double v = -30.0; v <= 30.0; v += 0.37) {
        y.push_back(v);
        log_box.push_back(log_logistic(v));
    }
    std::vector<double> out(y.size());
    q.log_density(y.data(), y.size(), log_box.data(), out.data());
    for (std::size_t i = 0; i < y.size(); ++i) {
        const double want = std::log(w0 / 2 * std::exp(student_t(y[i], df, -1.0, 0.5)) +
                                     w0 / 2 * std::exp(student_t(y[i], df, 2.0, 0.5)) +
                                     w1 * std::exp(student_t(y[i], df, 0.0, 2.0)) +
                                     wd * std::exp(log_box[i]));
        CHECK_NEAR(out[i], want, 1e-13 * (1.0 + std::fabs(want)));
    }
}

TEST_CASE("a 2-D Gaussian kernel in the box coordinates, times the Jacobian") {
    const double chol[] = {0.1, 0.0, 0.05, 0.2};  // lower factor
    const double mean[] = {0.4, 0.6};
    const double log_det = std::log(0.1) + std::log(0.2);
    const double coef[] = {std::log(0.7) - log_det - std::log(2.0 * kPi)};
    pixedfit::ProposalDensity q(2, 1.0, nullptr, 0, std::vector<std::size_t>{0}.data(),
                                nullptr, nullptr, chol, 1, mean, coef,
                                -std::numeric_limits<double>::infinity());
    const double y[] = {-0.3, 0.5, 1.2, -2.0, 0.0, 0.0};
    double log_box[3], out[3];
    for (int i = 0; i < 3; ++i) log_box[i] = log_logistic(y[2 * i]) + log_logistic(y[2 * i + 1]);
    q.log_density(y, 3, log_box, out);
    for (int i = 0; i < 3; ++i) {
        const double u0 = 1.0 / (1.0 + std::exp(-y[2 * i]));
        const double u1 = 1.0 / (1.0 + std::exp(-y[2 * i + 1]));
        const double z0 = (u0 - 0.4) / 0.1;
        const double z1 = (u1 - 0.6 - 0.05 * z0) / 0.2;
        const double want = coef[0] - 0.5 * (z0 * z0 + z1 * z1) + log_box[i];
        CHECK_NEAR(out[i], want, 1e-13);
    }
}

TEST_CASE("points with no mass, NaN points and bad arguments") {
    const double chol[] = {1.0};
    const std::size_t offsets[] = {0, 1};
    const double centre[] = {0.0};
    const double coef[] = {-std::numeric_limits<double>::infinity()};
    const double inf = std::numeric_limits<double>::infinity();
    pixedfit::ProposalDensity q(1, 5.0, chol, 1, offsets, centre, coef, nullptr, 0, nullptr,
                                nullptr, -inf);
    const double y[] = {0.3, std::nan("")};
    const double log_box[] = {-1.0, std::nan("")};
    double out[2];
    q.log_density(y, 2, log_box, out);
    CHECK(out[0] == -inf);
    CHECK(std::isnan(out[1]));
    const double zero[] = {0.0};
    CHECK_THROWS(pixedfit::ProposalDensity(1, 5.0, zero, 1, offsets, centre, coef, nullptr, 0,
                                           nullptr, nullptr, 0.0));
    CHECK_THROWS(pixedfit::ProposalDensity(1, 0.0, chol, 1, offsets, centre, coef, nullptr, 0,
                                           nullptr, nullptr, 0.0));
    const std::size_t empty_group[] = {0, 0};
    CHECK_THROWS(pixedfit::ProposalDensity(1, 5.0, chol, 1, empty_group, centre, coef, nullptr,
                                           0, nullptr, nullptr, 0.0));
}

TEST_CASE("in-box shares of box kernels: a corner holds a quarter, the centre all") {
    // draws in sign-symmetric quadruples: a kernel centred on a corner of the unit square
    // puts exactly one of each quadruple inside; one at the centre, narrow, all of them
    std::mt19937_64 gen(11);
    std::normal_distribution<double> normal(0.0, 1.0);
    std::vector<double> z;
    for (int i = 0; i < 250; ++i) {
        const double a = normal(gen), b = normal(gen);
        for (const double sa : {1.0, -1.0})
            for (const double sb : {1.0, -1.0}) {
                z.push_back(sa * a);
                z.push_back(sb * b);
            }
    }
    const std::size_t n = z.size() / 2;
    // kernels: the corner (0, 0) with a correlated factor whose rows keep the signs apart
    // (L = [[0.01, 0], [0.003, 0.004]]: u1 = 0.003 a + 0.004 b has no fixed sign, so only
    // the first coordinate is checked analytically), the centre, and outside the square
    const double chols[] = {0.01, 0.0, 0.0, 0.01,   0.01, 0.0, 0.0, 0.01,
                            0.01, 0.0, 0.0, 0.01,   0.01, 0.0, 0.003, 0.004};
    const double means[] = {0.0, 0.0, 0.5, 0.5, 1.5, 0.5, 0.5, 0.0};
    const std::vector<double> got = pixedfit::box_fractions(chols, means, 4, z.data(), n, 2);
    CHECK(got.size() == 4);
    CHECK(got[0] == 0.25);
    CHECK(got[1] == 1.0);
    CHECK(got[2] == 0.0);
    std::size_t inside = 0;  // the correlated kernel, counted directly
    for (std::size_t i = 0; i < n; ++i) {
        const double u0 = 0.5 + 0.01 * z[2 * i], u1 = 0.003 * z[2 * i] + 0.004 * z[2 * i + 1];
        inside += (u0 > 0.0 && u0 < 1.0 && u1 > 0.0 && u1 < 1.0) ? 1 : 0;
    }
    CHECK(got[3] == static_cast<double>(inside) / static_cast<double>(n));
    CHECK_THROWS(pixedfit::box_fractions(chols, means, 1, z.data(), 0, 2));
}

TEST_MAIN()
