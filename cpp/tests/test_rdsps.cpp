// Kernel tests of the fused RDSPS posterior.
#include <cmath>
#include <cstdint>
#include <vector>

#include "check.hpp"
#include "rdsps_fixtures.hpp"
#include "pixedfit/rdsps.hpp"

TEST_CASE("exact data: best model, normalisation and zero chi2") {
    const Library lib(5000, 6);
    const std::size_t target = 1234;
    std::vector<double> obs(6), ivar(6, 1.0 / (0.01 * 0.01));
    for (std::size_t b = 0; b < 6; ++b) obs[b] = 250.0 * lib.flux[b * lib.nmod + target];
    Outputs out(1, 2, 1);
    pixedfit::RdspsOptions opt;
    pixedfit::rdsps_fit(lib.inputs(obs, ivar, 1), opt, out.view);
    CHECK(out.best_model[0] == static_cast<std::int64_t>(target));
    CHECK_CLOSE(out.best_scale[0], 250.0, 1e-12);
    // chi2 = sum d^2 w - a sum d m w: exact up to rounding relative to sum d^2 w.
    double dd = 0.0;
    for (std::size_t b = 0; b < 6; ++b) dd += obs[b] * obs[b] * ivar[b];
    CHECK(out.chi2_min[0] < 1e-12 * dd);
    CHECK_CLOSE(out.mean[1], std::log10(250.0), 1e-6);
    CHECK(std::fabs(out.mean[0] - lib.params[target * 2]) < 1e-3);
    CHECK(out.p16[0] <= out.p50[0] && out.p50[0] <= out.p84[0]);
    CHECK(out.n_used[0] == 5000);
}

TEST_CASE("results do not depend on the number of threads or on batching") {
    const Library lib(7000, 5);
    const std::size_t nsed = 3;
    std::vector<double> obs(nsed * 5), ivar(nsed * 5, 4.0);
    for (std::size_t s = 0; s < nsed; ++s)
        for (std::size_t b = 0; b < 5; ++b)
            obs[s * 5 + b] = (10.0 + s) * (1.0 + 0.3 * (s + 1) * b / 5.0) + 0.05 * std::sin(7.0 * b + s);
    Outputs one(nsed, 2, 1), two(nsed, 2, 1);
    pixedfit::RdspsOptions opt;
    opt.perc_chi2 = 80.0;
    opt.threads = 1;
    pixedfit::rdsps_fit(lib.inputs(obs, ivar, nsed), opt, one.view);
    opt.threads = 2;
    pixedfit::rdsps_fit(lib.inputs(obs, ivar, nsed), opt, two.view);
    bool same = one.mean == two.mean && one.sd == two.sd && one.p50 == two.p50 &&
                one.ln_ev == two.ln_ev;
    CHECK(same);
    // One SED at a time with 2 threads parallelises over model chunks instead.
    for (std::size_t s = 0; s < nsed; ++s) {
        std::vector<double> o(obs.begin() + s * 5, obs.begin() + (s + 1) * 5);
        std::vector<double> iv(ivar.begin() + s * 5, ivar.begin() + (s + 1) * 5);
        Outputs single(1, 2, 1);
        pixedfit::rdsps_fit(lib.inputs(o, iv, 1), opt, single.view);
        CHECK(single.mean[0] == one.mean[s * 2] && single.mean[1] == one.mean[s * 2 + 1]);
        CHECK(single.p84[0] == one.p84[s * 2]);
    }
}

TEST_CASE("one SED split over model chunks (a large library) equals one thread") {
    // >= 262144 pairs: with fewer SEDs than threads the chunks of one SED are shared out,
    // with a shared running maximum for the candidate pairs. Every output must match the
    // sequential run exactly, with and without a chi2 cut.
    const Library lib(300000, 4);
    std::vector<double> obs{10.0, 10.9, 12.1, 12.8}, ivar(4, 25.0);
    for (double perc : {100.0, 70.0}) {
        Outputs one(1, 2, 1), two(1, 2, 1);
        pixedfit::RdspsOptions opt;
        opt.perc_chi2 = perc;
        opt.threads = 1;
        pixedfit::rdsps_fit(lib.inputs(obs, ivar, 1), opt, one.view);
        opt.threads = 2;
        pixedfit::rdsps_fit(lib.inputs(obs, ivar, 1), opt, two.view);
        CHECK(one.mean == two.mean && one.sd == two.sd);
        CHECK(one.p16 == two.p16 && one.p50 == two.p50 && one.p84 == two.p84);
        CHECK(one.best_model == two.best_model && one.n_used == two.n_used);
        CHECK(one.ln_ev == two.ln_ev && one.chi2_min == two.chi2_min);
        CHECK(std::isfinite(one.mean[0]) && one.n_used[0] > 0);
    }
}

TEST_CASE("anti-correlated data: no pair fits, NaN statistics") {
    const Library lib(100, 4);
    std::vector<double> obs(4, -1.0), ivar(4, 1.0);
    Outputs out(1, 2, 1);
    pixedfit::rdsps_fit(lib.inputs(obs, ivar, 1), pixedfit::RdspsOptions{}, out.view);
    CHECK(out.n_used[0] == 0);
    CHECK(std::isnan(out.mean[0]) && std::isnan(out.p50[1]));
    CHECK(out.best_model[0] == -1);
}

TEST_CASE("bad arguments throw") {
    const Library lib(10, 3);
    std::vector<double> obs(3, 1.0), ivar(3, 1.0);
    Outputs out(1, 2, 1);
    pixedfit::RdspsOptions opt;
    opt.perc_chi2 = 0.0;
    CHECK_THROWS(pixedfit::rdsps_fit(lib.inputs(obs, ivar, 1), opt, out.view));
    opt = pixedfit::RdspsOptions{};
    opt.likelihood = static_cast<pixedfit::Likelihood>(5);
    CHECK_THROWS(pixedfit::rdsps_fit(lib.inputs(obs, ivar, 1), opt, out.view));
    auto in = lib.inputs(obs, ivar, 1);
    in.nz = 2;  // several redshifts without z values
    CHECK_THROWS(pixedfit::rdsps_fit(in, pixedfit::RdspsOptions{}, out.view));
    in = lib.inputs(obs, ivar, 1);
    pixedfit::JointMassPrior jp;
    jp.param = 0;
    jp.mass_param = 1;
    jp.rel_x = {1.0, 0.0};
    jp.rel_y = {0.0, 1.0};
    in.joint.push_back(jp);
    CHECK_THROWS(pixedfit::rdsps_fit(in, pixedfit::RdspsOptions{}, out.view));
}

TEST_CASE("log_norm_cdf: reference values and the asymptotic branch") {
    // ln Phi at x = 0, -1, 2 (exact/closed values) and across the switch at x = -30
    CHECK_CLOSE(pixedfit::log_norm_cdf(0.0), std::log(0.5), 1e-15);
    CHECK_CLOSE(pixedfit::log_norm_cdf(-1.0), std::log(0.15865525393145705), 1e-14);
    CHECK_CLOSE(pixedfit::log_norm_cdf(2.0), std::log1p(-0.022750131948179209), 1e-12);
    const double below = pixedfit::log_norm_cdf(-30.0 - 1e-9);
    const double above = pixedfit::log_norm_cdf(-30.0 + 1e-9);
    CHECK(std::fabs(below - above) < 1e-6);  // continuous (slope ~30 per unit)
    CHECK(std::isfinite(pixedfit::log_norm_cdf(-1e6)));
    CHECK(pixedfit::log_norm_cdf(40.0) <= 0.0);
}

TEST_CASE("upper limits: chi2 adds -2 ln Phi((f_lim - a m) / sigma), a from detections") {
    const Library lib(50, 5);
    const std::size_t target = 20;
    std::vector<double> obs(5), ivar(5, 1.0 / (0.02 * 0.02));
    for (std::size_t b = 0; b < 5; ++b) obs[b] = 3.0 * lib.flux[b * lib.nmod + target];
    obs[4] = 0.99 * obs[4];  // a limit just below the model: penalised (x ~ -2)
    std::vector<std::uint8_t> upper{0, 0, 0, 0, 1};
    auto in = lib.inputs(obs, ivar, 1);
    in.upper = upper.data();
    std::vector<float> weights(lib.nmod);
    Outputs out(1, 2, 1);
    out.view.weights = weights.data();
    pixedfit::rdsps_fit(in, pixedfit::RdspsOptions{}, out.view);
    // direct evaluation of every model
    std::vector<double> lnp(lib.nmod);
    double best = 1e300, lnp_max = -1e300;
    for (std::size_t m = 0; m < lib.nmod; ++m) {
        double num = 0.0, den = 0.0;
        for (std::size_t b = 0; b < 4; ++b) {
            num += obs[b] * lib.flux[b * lib.nmod + m] * ivar[b];
            den += lib.flux[b * lib.nmod + m] * lib.flux[b * lib.nmod + m] * ivar[b];
        }
        const double a = num / den;
        double chi2 = 0.0;
        for (std::size_t b = 0; b < 4; ++b) {
            const double r = obs[b] - a * lib.flux[b * lib.nmod + m];
            chi2 += r * r * ivar[b];
        }
        const double x = (obs[4] - a * lib.flux[4 * lib.nmod + m]) * std::sqrt(ivar[4]);
        chi2 += -2.0 * std::log(0.5 * std::erfc(-x / std::sqrt(2.0)));
        best = std::min(best, chi2);
        lnp[m] = -0.5 * chi2;
        lnp_max = std::max(lnp_max, lnp[m]);
    }
    CHECK_CLOSE(out.chi2_min[0], best, 1e-9);
    double sum = 0.0;
    for (double v : lnp) sum += std::exp(v - lnp_max);
    for (std::size_t m = 0; m < lib.nmod; ++m) {
        CHECK(std::fabs(weights[m] - std::exp(lnp[m] - lnp_max) / sum) < 1e-6);
    }
    // a limit far above every model changes nothing but the (zero) chi2 of that band
    obs[4] = 1e6;
    Outputs far(1, 2, 1), none(1, 2, 1);
    pixedfit::rdsps_fit(in, pixedfit::RdspsOptions{}, far.view);
    ivar[4] = 0.0;
    pixedfit::rdsps_fit(lib.inputs(obs, ivar, 1), pixedfit::RdspsOptions{}, none.view);
    CHECK(far.best_model[0] == none.best_model[0]);
    CHECK_CLOSE(far.mean[0], none.mean[0], 1e-12);
}

TEST_CASE("upper limits: same answer for any number of threads") {
    const Library lib(300000, 5);
    std::vector<double> obs{10.0, 10.9, 12.1, 12.8, 20.0}, ivar(5, 25.0);
    std::vector<std::uint8_t> upper{0, 1, 0, 0, 1};
    auto in = lib.inputs(obs, ivar, 1);
    in.upper = upper.data();
    Outputs one(1, 2, 1), two(1, 2, 1);
    pixedfit::RdspsOptions opt;
    opt.threads = 1;
    pixedfit::rdsps_fit(in, opt, one.view);
    opt.threads = 2;
    pixedfit::rdsps_fit(in, opt, two.view);
    CHECK(one.mean == two.mean && one.sd == two.sd && one.p50 == two.p50);
    CHECK(one.ln_ev == two.ln_ev && one.chi2_min == two.chi2_min);
    CHECK(one.best_model == two.best_model && one.n_used[0] > 0);
}

TEST_MAIN()
