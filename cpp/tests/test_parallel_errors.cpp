// Exceptions raised inside the OpenMP regions of the kernels reach the caller as exceptions
// (an exception leaving a parallel region would terminate the process, and this test with it).
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "../src/csp_internal.hpp"
#include "check.hpp"
#include "rdsps_fixtures.hpp"
#include "tiny_grid.hpp"
#include "pixedfit/common.hpp"
#include "pixedfit/rdsps.hpp"

namespace {

const int kThreads[] = {1, 2, 8, 1000000};

// RDSPS of nsed SEDs against models m_j(b) = 1 + j x_b with `nhist` histogram bins; returns
// the p50 of every SED and parameter.
std::vector<double> rdsps_p50(std::size_t nsed, std::size_t nhist, int threads) {
    const Library lib(500, 4);
    std::vector<double> obs(nsed * lib.nband), ivar(nsed * lib.nband, 100.0);
    for (std::size_t i = 0; i < obs.size(); ++i)
        obs[i] = 5.0 + 0.3 * static_cast<double>(i % lib.nband);
    Outputs out(nsed, 2, 1);
    pixedfit::RdspsOptions opt;
    opt.threads = threads;
    opt.nhist = nhist;
    pixedfit::rdsps_fit(lib.inputs(obs, ivar, nsed), opt, out.view);
    return out.p50;
}

}  // namespace

TEST_CASE("an allocation failing per SED inside the RDSPS region arrives as an exception") {
    // The histograms of the percentiles (nparams x nhist doubles) are allocated per SED
    // inside the parallel region; 2^61 bins exceed what a vector can hold (length_error,
    // raised before any memory is requested).
    const std::size_t absurd = std::size_t{1} << 61;
    CHECK(rdsps_p50(5, 64, 1) == rdsps_p50(5, 64, 2));  // the valid call works
    for (int t : kThreads) {
        bool caught = false;
        try {
            rdsps_p50(5, absurd, t);
        } catch (const std::length_error&) {
            caught = true;
        }
        CHECK(caught);
    }
}

TEST_CASE("an exception of one model in the batched SPS driver arrives as an exception") {
    using namespace pixedfit::sps;
    const Grid g = tiny_grid();
    Config cfg;
    cfg.sfh_form = SfhForm::DelayedTau;
    cfg.dust_law = DustLaw::Calzetti;
    const std::size_t n = 300;  // more than one chunk of models per thread
    std::vector<double> p(n * N_PARAMS, 0.0);
    for (std::size_t i = 0; i < n; ++i) {
        p[i * N_PARAMS + P_LOG_AGE] = -2.0 + 0.01 * static_cast<double>(i);
        p[i * N_PARAMS + P_LOGZSOL] = -1.0 + 0.003 * static_cast<double>(i);
    }
    // the models whose finishing step throws: every 7th from model 40 on
    auto run = [&](int threads) {
        std::vector<std::uint8_t> finished(n, 0);
        std::string what;
        try {
            detail::run_batched(detail::spectra_rows(g), cfg, p.data(), n, 1, threads,
                                [&](std::size_t u, double*, double*, float*) {
                                    if (u >= 40 && u % 7 == 0)
                                        throw std::runtime_error("model " + std::to_string(u));
                                    finished[u] = 1;
                                });
        } catch (const std::runtime_error& e) {
            what = e.what();
        }
        return what;
    };
    const std::string ref = run(1);
    CHECK(ref.rfind("model ", 0) == 0);
    // the same model's exception for any number of threads (blocks do not depend on them)
    for (int t : kThreads) CHECK(run(t) == ref);
}

TEST_MAIN()
