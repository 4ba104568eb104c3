// Thread counts far beyond the machine and exceptions inside OpenMP regions: every kernel
// caps the count (an uncapped 10^5 crashed the process) and returns the single-thread answer.
#include <climits>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <omp.h>

#include "check.hpp"
#include "rdsps_fixtures.hpp"
#include "tiny_grid.hpp"
#include "pixedfit/binning.hpp"
#include "pixedfit/common.hpp"
#include "pixedfit/csp.hpp"
#include "pixedfit/legendre.hpp"
#include "pixedfit/photometry.hpp"
#include "pixedfit/rdsps.hpp"
#include "pixedfit/smoothing.hpp"

namespace {

const int kHuge[] = {100000, 1000000, INT_MAX};

}  // namespace

TEST_CASE("resolve_threads caps any request at the available processors") {
    const int cap = pixedfit::max_threads();
    CHECK(cap >= 1);
    CHECK(cap == std::max(1, omp_get_num_procs()));
    for (int t : kHuge) CHECK(pixedfit::resolve_threads(t) == cap);
    CHECK(pixedfit::resolve_threads(1) == 1);
    // <= 0 means all cores, whatever the sign
    const int all = pixedfit::resolve_threads(0);
    CHECK(all >= 1 && all <= cap);
    CHECK(pixedfit::resolve_threads(-1) == all);
    CHECK(pixedfit::resolve_threads(INT_MIN) == all);
}

TEST_CASE("ParallelErrors carries the exception of the smallest index out of a region") {
    pixedfit::ParallelErrors errors;
    std::vector<int> done(1000, 0);
#pragma omp parallel for num_threads(pixedfit::resolve_threads(1000000)) schedule(static)
    for (std::int64_t i = 0; i < 1000; ++i) {
        errors.run(i, [&] {
            if (i % 97 == 13) throw std::runtime_error("item " + std::to_string(i));
            done[static_cast<std::size_t>(i)] = 1;
        });
    }
    CHECK(errors.failed());
    bool caught = false;
    try {
        errors.rethrow();
    } catch (const std::runtime_error& e) {
        caught = std::string(e.what()) == "item 13";
    }
    CHECK(caught);
    pixedfit::ParallelErrors clean;
    clean.run(0, [] {});
    CHECK(!clean.failed());
    clean.rethrow();  // nothing to throw
}

TEST_CASE("apply_band_weights with a huge thread count equals one thread") {
    const std::size_t nspec = 37, nwave = 200;
    std::vector<double> flux(nspec * nwave);
    for (std::size_t i = 0; i < flux.size(); ++i) flux[i] = std::sin(0.01 * static_cast<double>(i));
    const std::vector<std::int64_t> starts = {3, 50}, offsets = {0, 20, 60};
    std::vector<double> weights(60);
    for (std::size_t i = 0; i < weights.size(); ++i) weights[i] = 1.0 + 0.1 * static_cast<double>(i);
    std::vector<double> ref(nspec * 2), out(nspec * 2);
    pixedfit::apply_band_weights(flux.data(), nspec, nwave, starts.data(), offsets.data(),
                                 weights.data(), 2, ref.data(), 1);
    for (int t : kHuge) {
        pixedfit::apply_band_weights(flux.data(), nspec, nwave, starts.data(), offsets.data(),
                                     weights.data(), 2, out.data(), t);
        CHECK(out == ref);
    }
}

TEST_CASE("batched spectra with a huge thread count equal one thread") {
    using namespace pixedfit::sps;
    const Grid g = tiny_grid();
    Config cfg;
    cfg.sfh_form = SfhForm::DelayedTau;
    cfg.dust_law = DustLaw::CharlotFall;
    const std::size_t n = 40;
    std::vector<double> p(n * N_PARAMS, 0.0);
    for (std::size_t i = 0; i < n; ++i) {
        p[i * N_PARAMS + P_LOG_AGE] = -2.0 + 0.07 * static_cast<double>(i);
        p[i * N_PARAMS + P_LOGZSOL] = -1.0 + 0.025 * static_cast<double>(i);
        p[i * N_PARAMS + P_DUST2] = 0.2;
    }
    std::vector<double> s1(n * 4), d1(n * N_DERIVED), s2(n * 4), d2(n * N_DERIVED);
    compute_spectra(g, cfg, p.data(), n, s1.data(), nullptr, d1.data(), 1);
    for (int t : kHuge) {
        compute_spectra(g, cfg, p.data(), n, s2.data(), nullptr, d2.data(), t);
        CHECK(s1 == s2);
        CHECK(d1 == d2);
    }
}

TEST_CASE("smoothing, Legendre and bin sums with a huge thread count equal one thread") {
    const std::size_t n = 300, nspec = 9;
    std::vector<double> w(n), f(nspec * n), sig(n, 1.5);
    for (std::size_t i = 0; i < n; ++i) w[i] = 4000.0 + 2.0 * static_cast<double>(i);
    for (std::size_t i = 0; i < f.size(); ++i) f[i] = 1.0 + 0.3 * std::cos(0.05 * static_cast<double>(i));
    std::vector<double> ref(nspec * n), out(nspec * n);
    pixedfit::smooth_gaussian(w.data(), n, f.data(), nspec, sig.data(), ref.data(), 1);
    std::vector<double> ivar(nspec * n, 1.0), c1(nspec * 4), c2(nspec * 4);
    std::vector<std::int32_t> st1(nspec), st2(nspec);
    pixedfit::LegendreOutputs o1, o2;
    o1.coeffs = c1.data();
    o1.status = st1.data();
    o2.coeffs = c2.data();
    o2.status = st2.data();
    pixedfit::legendre_fit(w.data(), n, f.data(), ivar.data(), nspec, 3, 3.0, 3, 1, o1);
    const std::vector<std::int32_t> bins = [&] {
        std::vector<std::int32_t> b(n);
        for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::int32_t>(i % 5);
        return b;
    }();
    const auto sums1 = pixedfit::bin_sums(f.data(), nspec, 1, n, bins.data(), 4, false, 1);
    for (int t : kHuge) {
        pixedfit::smooth_gaussian(w.data(), n, f.data(), nspec, sig.data(), out.data(), t);
        CHECK(out == ref);
        pixedfit::legendre_fit(w.data(), n, f.data(), ivar.data(), nspec, 3, 3.0, 3, t, o2);
        CHECK(c1 == c2);
        CHECK(st1 == st2);
        CHECK(pixedfit::bin_sums(f.data(), nspec, 1, n, bins.data(), 4, false, t) == sums1);
    }
}

TEST_CASE("RDSPS with a huge thread count equals one thread") {
    const std::size_t nsed = 2;
    const Library lib(3000, 4);
    std::vector<double> obs(nsed * lib.nband), ivar(nsed * lib.nband, 100.0);
    for (std::size_t i = 0; i < obs.size(); ++i)
        obs[i] = 5.0 + 0.3 * static_cast<double>(i % lib.nband);
    const pixedfit::RdspsInputs in = lib.inputs(obs, ivar, nsed);
    auto run = [&](int threads, double perc) {
        Outputs out(nsed, 2, 1);
        pixedfit::RdspsOptions opt;
        opt.threads = threads;
        opt.perc_chi2 = perc;
        pixedfit::rdsps_fit(in, opt, out.view);
        out.mean.insert(out.mean.end(), out.p50.begin(), out.p50.end());
        return out.mean;
    };
    for (double perc : {100.0, 80.0}) {
        const auto ref = run(1, perc);
        for (int t : kHuge) CHECK(run(t, perc) == ref);
    }
}

TEST_MAIN()
