// Tests of the SPS forward-model kernels on small synthetic grids.
#include <cmath>
#include <vector>

#include "check.hpp"
#include "pixedfit/csp.hpp"
#include "pixedfit/smoothing.hpp"

using namespace pixedfit::sps;

namespace {

Grid tiny_grid() {
    Grid g;
    g.nz = 2;
    g.nage = 3;
    g.nwave = 4;
    g.wave = {1000.0, 3000.0, 5500.0, 9000.0};
    g.dwave = {1000.0, 2250.0, 3000.0, 1750.0};
    g.calzetti = {2.0, 1.5, 1.0, 0.5};
    for (double w : g.wave) g.ln_l5500.push_back(std::log(w / 5500.0));
    g.logz = {-1.0, 0.0};
    g.age_edges = {0.0, 0.005, 0.5, 5.0};
    g.mass_surv = {1.0, 0.9, 0.7, 1.0, 0.8, 0.6};
    g.mass_living = {1.0, 0.85, 0.6, 1.0, 0.75, 0.5};
    for (std::size_t z = 0; z < 2; ++z)
        for (std::size_t a = 0; a < 3; ++a)
            for (std::size_t k = 0; k < 4; ++k)
                g.ssp.push_back(static_cast<float>(1.0 + z + 10.0 * a + 0.1 * k));
    return g;
}

}  // namespace

TEST_CASE("tau SFH bin masses are exact and sum to one") {
    const double shape[4] = {1.0, 1.0, 1.0, 1.0};
    const double edges[4] = {0.0, 0.005, 0.5, 5.0};
    double young[3], old[3];
    const double total = sfh_bin_masses(SfhForm::Tau, shape, 2.0, edges, 3, 0.01, young, old);
    CHECK_CLOSE(total, 1.0 - std::exp(-2.0), 1e-14);
    // bin 2 covers look-back 0.5-2 Gyr: t in [0, 1.5]
    CHECK_CLOSE(old[2], (1.0 - std::exp(-1.5)) / total, 1e-12);
    CHECK_CLOSE(young[0] + young[1] + old[1] + old[2], 1.0, 1e-14);
    CHECK(old[0] == 0.0);
}

TEST_CASE("delayed-tau bin masses are the closed form, split at t_bc, never negative") {
    // G(t) = tau^2 (1 - e^{-t/tau} (1 + t/tau)) is the mass formed by time t
    const double tau = 0.7, age = 2.0, t_bc = 0.01;
    const double shape[4] = {tau, 1.0, 1.0, 1.0};
    auto g = [tau](double t) { return tau * tau * (1.0 - std::exp(-t / tau) * (1.0 + t / tau)); };
    // look-back edges: one bin straddles t_bc, one the onset, and a very narrow one
    const double edges[6] = {0.0, 0.004, 0.004 + 1e-12, 0.05, 1.5, 3.0};
    double young[5], old[5];
    const double total = sfh_bin_masses(SfhForm::DelayedTau, shape, age, edges, 5, t_bc, young, old);
    CHECK_CLOSE(total, g(age), 1e-13);
    CHECK_CLOSE(young[0] * total, g(age) - g(age - 0.004), 1e-13);
    CHECK_CLOSE(young[2] * total, g(age - 0.004 - 1e-12) - g(age - t_bc), 1e-13);
    CHECK_CLOSE(old[2] * total, g(age - t_bc) - g(age - 0.05), 1e-13);
    CHECK_CLOSE(old[4] * total, g(age - 1.5), 1e-13);  // from the onset only
    double sum = 0.0;
    for (int i = 0; i < 5; ++i) {
        CHECK(young[i] >= 0.0 && old[i] >= 0.0);
        sum += young[i] + old[i];
    }
    CHECK_CLOSE(sum, 1.0, 1e-14);
    CHECK(old[0] == 0.0 && old[1] == 0.0 && young[3] == 0.0);
}

TEST_CASE("an SFH that forms (nearly) nothing within the age has no weights and a zero total") {
    // a Gaussian SFH (form 3) peaking 11.5 Gyr after the onset, 0.28 Gyr wide, seen 1 Gyr
    // after it: 1e-302 of its mass is formed by then, and every bin mass underflows
    const double shape[4] = {0.284, 11.55, 1.0, 1.0};
    const double edges[4] = {0.0, 0.005, 0.5, 5.0};
    double young[3], old[3];
    CHECK(sfh_mass_between(SfhForm::Gaussian, shape, 0.0, 1.0) < 1e-290);
    const double total = sfh_bin_masses(SfhForm::Gaussian, shape, 1.0, edges, 3, 0.01, young, old);
    CHECK(total == 0.0);
    for (int i = 0; i < 3; ++i) CHECK(young[i] == 0.0 && old[i] == 0.0);
}

TEST_CASE("a burst reproduces the SSP and the mass is normalised") {
    Grid g = tiny_grid();
    g.validate();
    Config cfg;
    cfg.sfh_form = SfhForm::Tau;
    cfg.dust_law = DustLaw::Calzetti;
    std::vector<double> p(N_PARAMS, 0.0), spec(4), der(N_DERIVED);
    p[P_LOG_MASS] = 2.0;
    p[P_LOGZSOL] = 0.0;
    p[P_LOG_AGE] = std::log10(1.0);  // in bin 2 (0.5-5 Gyr)
    p[P_LOG_TAU] = -6.0;
    std::vector<double> work(model_work_size(g));
    compute_model(g, cfg, p.data(), spec.data(), nullptr, der.data(), work.data());
    CHECK_CLOSE(der[D_MASS_SURVIVING], 100.0, 1e-12);
    CHECK_CLOSE(der[D_MASS_FORMED], 100.0 / 0.6, 1e-9);
    // the SSP is stored in float32
    for (int k = 0; k < 4; ++k) {
        const double ref = static_cast<float>(2.0 + 20.0 + 0.1 * k);
        CHECK_CLOSE(spec[k], (100.0 / 0.6) * ref, 1e-9);
    }
    // Calzetti transmission on everything
    p[P_DUST2] = 0.5;
    std::vector<double> dusty(4);
    compute_model(g, cfg, p.data(), dusty.data(), nullptr, der.data(), work.data());
    for (int k = 0; k < 4; ++k) CHECK_CLOSE(dusty[k], spec[k] * std::exp(-0.5 * g.calzetti[k]), 1e-13);
}

TEST_CASE("thread count does not change batched spectra") {
    Grid g = tiny_grid();
    Config cfg;
    cfg.sfh_form = SfhForm::DelayedTau;
    cfg.dust_law = DustLaw::CharlotFall;
    const std::size_t n = 50;
    std::vector<double> p(n * N_PARAMS, 0.0);
    for (std::size_t i = 0; i < n; ++i) {
        p[i * N_PARAMS + P_LOG_AGE] = -2.0 + 0.06 * static_cast<double>(i);
        p[i * N_PARAMS + P_LOGZSOL] = -1.0 + 0.02 * static_cast<double>(i);
        p[i * N_PARAMS + P_DUST1] = 0.3;
        p[i * N_PARAMS + P_DUST2] = 0.2;
        p[i * N_PARAMS + P_DUST_INDEX] = -0.7;
    }
    std::vector<double> s1(n * 4), s2(n * 4), d1(n * N_DERIVED), d2(n * N_DERIVED);
    compute_spectra(g, cfg, p.data(), n, s1.data(), nullptr, d1.data(), 1);
    compute_spectra(g, cfg, p.data(), n, s2.data(), nullptr, d2.data(), 2);
    CHECK(s1 == s2);
    CHECK(d1 == d2);
}

TEST_CASE("inconsistent grids are rejected") {
    Grid g = tiny_grid();
    g.ssp.pop_back();
    CHECK_THROWS(g.validate());
}

TEST_CASE("smoothing conserves a flat spectrum and the integral of a line") {
    const std::size_t n = 2001;
    std::vector<double> w(n), f(n, 0.0), s(n, 2.0), out(n);
    for (std::size_t i = 0; i < n; ++i) w[i] = 5000.0 + 0.5 * static_cast<double>(i);
    f[1000] = 1.0;
    std::vector<double> flat(n, 3.0), oflat(n);
    pixedfit::smooth_gaussian(w.data(), n, flat.data(), 1, s.data(), oflat.data(), 1);
    CHECK_CLOSE(oflat[500], 3.0, 1e-12);
    pixedfit::smooth_gaussian(w.data(), n, f.data(), 1, s.data(), out.data(), 1);
    double area = 0.0;
    for (std::size_t i = 0; i < n; ++i) area += out[i] * 0.5;
    CHECK_CLOSE(area, 0.5, 1e-6);
    CHECK_CLOSE(out[1000] / out[1004], std::exp(0.5), 1e-6);  // 2 A = 1 sigma
}

TEST_MAIN()
