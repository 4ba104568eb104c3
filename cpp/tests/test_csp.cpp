// Tests of the SPS forward-model kernels on small synthetic grids.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "check.hpp"
#include "tiny_grid.hpp"
#include "pixedfit/csp.hpp"
#include "pixedfit/csp_knots.hpp"
#include "pixedfit/smoothing.hpp"

using namespace pixedfit::sps;

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

namespace {

// A grid with every part: 8 wavelengths (2 ionising), nebular continuum and 2 lines in 2
// log U x 2 nebular ages, Draine & Li templates in 2 q_PAH x 2 U_min, 2 torus templates.
Grid full_grid() {
    Grid g;
    g.nz = 2;
    g.nage = 3;
    g.wave = {500.0, 800.0, 1500.0, 3000.0, 5500.0, 9000.0, 20000.0, 100000.0};
    g.nwave = g.wave.size();
    const std::size_t nw = g.nwave;
    g.dwave.assign(nw, 0.0);
    for (std::size_t k = 0; k + 1 < nw; ++k) {
        const double h = 0.5 * (g.wave[k + 1] - g.wave[k]);
        g.dwave[k] += h;
        g.dwave[k + 1] += h;
    }
    g.calzetti = {6.0, 5.0, 3.5, 2.0, 1.0, 0.6, 0.2, 0.01};
    for (double w : g.wave) g.ln_l5500.push_back(std::log(w / 5500.0));
    g.n_ionising = 2;
    g.logz = {-1.0, 0.0};
    g.age_edges = {0.0, 0.005, 0.5, 5.0};
    g.mass_surv = {1.0, 0.9, 0.7, 1.0, 0.8, 0.6};
    g.mass_living = {1.0, 0.85, 0.6, 1.0, 0.75, 0.5};
    for (std::size_t z = 0; z < 2; ++z)
        for (std::size_t a = 0; a < 3; ++a)
            for (std::size_t k = 0; k < nw; ++k)
                g.ssp.push_back(static_cast<float>((1.0 + 0.3 * z) * std::exp(-0.5 * a) *
                                                   (1.0 + 0.1 * k) * 1e-3));
    g.nu = 2;
    g.nneb = 2;
    g.nline = 2;
    g.logu = {-3.0, -2.0};
    g.neb_edges = {0.0, 0.003, 0.01};
    for (std::size_t i = 0; i < g.nu * g.nz * g.nneb; ++i) {
        for (std::size_t k = 0; k < nw; ++k)
            g.neb_cont.push_back(static_cast<float>(1e-5 * (1.0 + 0.2 * i) / (1.0 + k)));
        for (std::size_t l = 0; l < g.nline; ++l) g.line_lum.push_back(0.5 + 0.1 * i + l);
    }
    g.line_start = {3, 4};
    g.line_off = {0, 2, 4};
    for (std::size_t l = 0; l < 2; ++l)  // two points each, unit integral
        for (std::size_t j = 0; j < 2; ++j) g.line_prof.push_back(0.5 / g.dwave[3 + l + j]);
    g.line_calz = {2.0, 1.0};
    g.line_lnl = {std::log(3000.0 / 5500.0), 0.0};
    g.nq = 2;
    g.numin = 2;
    g.qpah = {0.5, 3.0};
    g.umin = {1.0, 10.0};
    for (std::size_t i = 0; i < g.nq * g.numin; ++i) {
        double id = 0.0, ip = 0.0;
        for (std::size_t k = 0; k < nw; ++k) {
            const float d = k >= 6 ? static_cast<float>(1e-30 * (1.0 + i) * (k - 5)) : 0.0f;
            const float q = k >= 5 ? static_cast<float>(2e-30 * (1.0 + 0.5 * i)) : 0.0f;
            g.dl_delta.push_back(d);
            g.dl_plaw.push_back(q);
            id += d * g.dwave[k];
            ip += q * g.dwave[k];
        }
        g.dl_int_delta.push_back(id);
        g.dl_int_plaw.push_back(ip);
    }
    g.dust_to_h = {0.01, 0.012};
    g.ntau = 2;
    g.agn_tau = {5.0, 50.0};
    for (std::size_t t = 0; t < g.ntau; ++t) {
        double norm = 0.0;
        for (std::size_t k = 0; k < nw; ++k) norm += (k >= 4 ? 1.0 + t : 0.0) * g.dwave[k];
        for (std::size_t k = 0; k < nw; ++k)
            g.agn_tmpl.push_back(static_cast<float>((k >= 4 ? 1.0 + t : 0.0) / norm));
    }
    g.validate();
    return g;
}

// n parameter vectors spreading every parameter the parts use.
std::vector<double> full_params(std::size_t n) {
    std::vector<double> p(n * N_PARAMS, 0.0);
    for (std::size_t i = 0; i < n; ++i) {
        const double u = static_cast<double>(i) / static_cast<double>(n);
        double* q = &p[i * N_PARAMS];
        q[P_LOG_MASS] = 8.0 + u;
        q[P_LOGZSOL] = -1.2 + 1.4 * u;
        q[P_LOG_AGE] = -2.4 + 3.0 * u;
        q[P_LOG_TAU] = -0.5 + u;
        q[P_DUST1] = 0.4 * (1.0 - u);
        q[P_DUST2] = 0.1 + 0.5 * u;
        q[P_DUST_INDEX] = -0.7;
        q[P_GAS_LOGU] = -3.5 + 2.0 * u;
        q[P_LOG_UMIN] = 0.3 * u;
        q[P_LOG_GAMMA] = -2.0 + u;
        q[P_LOG_QPAH] = -0.2 + 0.6 * u;
        q[P_LOG_FAGN] = -2.0 + 1.5 * u;
        q[P_LOG_TAUAGN] = 0.8 + u;
    }
    return p;
}

}  // namespace

TEST_CASE("nebular, dust and torus emission: components, energy balance, threads") {
    const Grid g = full_grid();
    const std::size_t n = 40, nw = g.nwave;
    const std::vector<double> p = full_params(n);
    for (const DustLaw law : {DustLaw::CharlotFall, DustLaw::Calzetti}) {
        Config cfg;
        cfg.sfh_form = SfhForm::DelayedTau;
        cfg.dust_law = law;
        cfg.nebular = cfg.dust_emission = cfg.agn = true;
        std::vector<double> spec(n * nw), comp(n * N_COMPONENTS * nw), der(n * N_DERIVED);
        compute_spectra(g, cfg, p.data(), n, spec.data(), comp.data(), der.data(), 2);
        for (std::size_t i = 0; i < n; ++i) {
            const double* c = &comp[i * N_COMPONENTS * nw];
            const double* d = &der[i * N_DERIVED];
            double l_dust = 0.0, l_agn = 0.0;
            for (std::size_t k = 0; k < nw; ++k) {
                double sum = 0.0;
                for (int j = 0; j < N_COMPONENTS; ++j) sum += c[j * nw + k];
                CHECK_CLOSE(sum, spec[i * nw + k], 1e-12);
                l_dust += c[C_DUST * nw + k] * g.dwave[k];
                l_agn += c[C_AGN * nw + k] * g.dwave[k];
            }
            // the templates re-emit the absorbed light; the torus is a share of L_bol
            CHECK(d[D_L_ABSORBED] > 0.0);
            CHECK_CLOSE(l_dust, d[D_L_ABSORBED], 1e-9);
            CHECK_CLOSE(d[D_FAGN_BOL], l_agn / d[D_LBOL], 1e-6);
            CHECK(d[D_DUST_MASS] > 0.0);
            // one model alone gives the batched bits
            std::vector<double> one(nw), one_der(N_DERIVED), work(model_work_size(g));
            compute_model(g, cfg, &p[i * N_PARAMS], one.data(), nullptr, one_der.data(),
                          work.data());
            CHECK(std::equal(one.begin(), one.end(), spec.begin() + i * nw));
            CHECK(std::equal(one_der.begin(), one_der.end(), der.begin() + i * N_DERIVED));
        }
        for (int t : {1, 3, 1000}) {
            std::vector<double> s2(n * nw), d2(n * N_DERIVED);
            compute_spectra(g, cfg, p.data(), n, s2.data(), nullptr, d2.data(), t);
            CHECK(s2 == spec);
            CHECK(d2 == der);
        }
        // photometry in one bolometric band, the lines kept off the grid with unit weights:
        // the bolometric luminosity again (with dust emission on, energy balance makes it
        // independent of where the lines are attenuated, at their wavelengths here and
        // through their profiles on the grid above)
        const std::vector<std::int64_t> starts = {0}, offsets = {0, static_cast<std::int64_t>(nw)};
        const std::vector<double> line_w(g.nline, 1.0);
        std::vector<double> bol(n), bol_der(n * N_DERIVED);
        compute_photometry(g, cfg, p.data(), n, nullptr, 1.0, starts.data(), offsets.data(),
                           g.dwave.data(), 1, line_w.data(), bol.data(), bol_der.data(), 2);
        for (std::size_t i = 0; i < n; ++i) {
            CHECK_CLOSE(bol[i], der[i * N_DERIVED + D_LBOL], 1e-12);
            CHECK_CLOSE(bol_der[i * N_DERIVED + D_LBOL], bol[i], 1e-12);
        }
    }
}

TEST_CASE("knot photometry with every part: positive, thread-independent") {
    // projections of the right sizes (not those of the grid: this checks the bookkeeping)
    const Grid g = full_grid();
    KnotGrid k;
    k.nbands = 2;
    k.npair = 4;
    k.nenergy = 3;
    k.ncol = k.npair + k.nenergy + 2;
    k.band_off = {0, 2, 4};
    for (std::size_t c = 0; c < k.npair + k.nenergy; ++c) {
        k.knot_calz.push_back(3.0 / (1.0 + static_cast<double>(c)));
        k.knot_lnl.push_back(-1.5 + 0.4 * static_cast<double>(c));
    }
    std::vector<float> ssp, ssp_young, neb;
    for (std::size_t i = 0; i < g.nz * g.nage * k.ncol; ++i) {
        ssp.push_back(static_cast<float>(1e-3 * (1.0 + 0.01 * static_cast<double>(i))));
        ssp_young.push_back(static_cast<float>(0.9e-3 * (1.0 + 0.01 * static_cast<double>(i))));
    }
    for (std::size_t i = 0; i < g.nu * g.nz * g.nneb * k.ncol; ++i)
        neb.push_back(static_cast<float>(1e-5 * (1.0 + 0.02 * static_cast<double>(i))));
    k.ssp = SharedFloats::copy(ssp.data(), ssp.size());
    k.ssp_young = SharedFloats::copy(ssp_young.data(), ssp_young.size());
    k.neb = SharedFloats::copy(neb.data(), neb.size());
    for (std::size_t i = 0; i < g.nq * g.numin * k.nbands; ++i) {
        k.dl_delta_band.push_back(1e-30 * (1.0 + static_cast<double>(i)));
        k.dl_plaw_band.push_back(2e-30);
    }
    for (std::size_t i = 0; i < g.ntau * k.nbands; ++i) k.agn_band.push_back(1e-4);
    k.validate(g);
    const std::size_t n = 40;
    const std::vector<double> p = full_params(n);
    const std::vector<double> line_w = {0.3, 0.0, 0.1, 0.2};  // (nbands, nline)
    Config cfg;
    cfg.sfh_form = SfhForm::DoublePowerLaw;
    cfg.dust_law = DustLaw::CharlotFall;
    cfg.nebular = cfg.dust_emission = cfg.agn = true;
    std::vector<double> o1(n * 2), d1(n * N_DERIVED);
    compute_photometry_knots(g, k, cfg, p.data(), n, 1.0, line_w.data(), o1.data(), d1.data(), 1);
    for (double v : o1) CHECK(std::isfinite(v) && v > 0.0);
    for (int t : {2, 1000}) {
        std::vector<double> o2(n * 2), d2(n * N_DERIVED);
        compute_photometry_knots(g, k, cfg, p.data(), n, 1.0, line_w.data(), o2.data(),
                                 d2.data(), t);
        CHECK(o2 == o1);
        CHECK(d2 == d1);
    }
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

// ------------------------------------------------------------------ SSP block sums
// (an internal kernel of the model: its header is in cpp/src)
#include "../src/csp_internal.hpp"

#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

namespace {

struct BlockSumsCase {
    std::size_t nage = 37, ncol = 45;  // 45 = 2 x 16 + 8 + 5: every pass of every width
    std::vector<float> r0, r1, w0, w1;
    BlockSumsCase() : r0(nage * ncol), r1(nage * ncol), w0(nage * detail::kBlock),
                      w1(nage * detail::kBlock) {
        std::uint32_t state = 12345u;
        auto next = [&] {  // a fixed LCG: the same numbers on every platform
            state = state * 1664525u + 1013904223u;
            return static_cast<float>(state >> 8) / 16777216.0f;
        };
        for (auto& v : r0) v = next();
        for (auto& v : r1) v = next() - 0.25f;
        for (auto& v : w0) v = next();
        for (auto& v : w1) v = next();
        // column 3: subnormal rows only; column 7: subnormal entries among normal ones
        for (std::size_t a = 0; a < nage; ++a) {
            r0[a * ncol + 3] = 3e-39f;
            r1[a * ncol + 3] = -1e-40f;
            if (a % 3 == 0) r0[a * ncol + 7] = 5e-39f;
        }
    }
    std::vector<float> run(std::size_t width, std::size_t a0, std::size_t a1,
                           std::size_t nb, bool* ok = nullptr) const {
        std::vector<float> out(detail::kBlock * ncol, -7.0f);
        float* ptr[detail::kBlock];
        for (std::size_t u = 0; u < detail::kBlock; ++u) ptr[u] = &out[u * ncol];
        const bool done = detail::block_sums_of_width(width, r0.data(), r1.data(), ncol,
                                                      w0.data(), w1.data(), a0, a1, ptr, nb);
        if (ok) *ok = done;
        return out;
    }
};

}  // namespace

TEST_CASE("block sums: the double-precision sums, subnormal rows counted as zero") {
    const BlockSumsCase c;
    const auto out = c.run(8, 2, 31, 8);
    for (std::size_t u = 0; u < detail::kBlock; ++u) {
        for (std::size_t k = 0; k < c.ncol; ++k) {
            double want = 0.0, scale = 0.0;
            for (std::size_t a = 2; a < 31; ++a) {
                const double x0 = std::fabs(c.r0[a * c.ncol + k]) < 1.1754944e-38f
                                      ? 0.0 : c.r0[a * c.ncol + k];
                const double x1 = std::fabs(c.r1[a * c.ncol + k]) < 1.1754944e-38f
                                      ? 0.0 : c.r1[a * c.ncol + k];
                want += c.w0[a * detail::kBlock + u] * x0 + c.w1[a * detail::kBlock + u] * x1;
                scale += std::fabs(c.w0[a * detail::kBlock + u] * x0) +
                         std::fabs(c.w1[a * detail::kBlock + u] * x1);
            }
            CHECK(std::fabs(out[u * c.ncol + k] - want) <= 1e-6 * scale);
        }
    }
#if defined(__x86_64__) || defined(_M_X64)
    // a column of subnormal rows sums to exactly zero (DAZ/FTZ on x86-64)
    for (std::size_t u = 0; u < detail::kBlock; ++u) CHECK(out[u * c.ncol + 3] == 0.0f);
#endif
}

TEST_CASE("block sums: a model's sums do not depend on its block, the age range of the "
          "others or the vector width") {
    const BlockSumsCase c;
    const auto full = c.run(8, 0, c.nage, 8);
    for (std::size_t nb = 1; nb <= detail::kBlock; ++nb) {
        const auto part = c.run(8, 0, c.nage, nb);
        for (std::size_t u = 0; u < nb; ++u)
            for (std::size_t k = 0; k < c.ncol; ++k)
                CHECK(part[u * c.ncol + k] == full[u * c.ncol + k]);
        // lanes beyond nb are never written
        for (std::size_t i = nb * c.ncol; i < part.size(); ++i) CHECK(part[i] == -7.0f);
    }
    bool ok = false;
    const auto wide = c.run(16, 0, c.nage, 8, &ok);
    if (ok) {  // an AVX-512 CPU: the 16-float path gives the same bits
        for (std::size_t i = 0; i < full.size(); ++i) CHECK(wide[i] == full[i]);
        for (std::size_t nb = 1; nb <= detail::kBlock; ++nb) {
            const auto a = c.run(16, 5, 29, nb), b = c.run(8, 5, 29, nb);
            for (std::size_t i = 0; i < nb * c.ncol; ++i) CHECK(a[i] == b[i]);
        }
    } else {
        std::fprintf(stderr, "block sums: no AVX-512 here, the 16-float path is not run\n");
    }
    CHECK(!c.run(4, 0, c.nage, 8, &ok).empty() && !ok);  // no such width: nothing done
}

#if defined(__x86_64__) || defined(_M_X64)
TEST_CASE("block sums leave the caller's floating-point mode (MXCSR) as it was") {
    const BlockSumsCase c;
    const unsigned before = _mm_getcsr();
    (void)c.run(8, 0, c.nage, 3);
    (void)c.run(16, 0, c.nage, 8);
    CHECK(_mm_getcsr() == before);
    volatile float tiny = 1e-39f;  // subnormal arithmetic still works outside
    volatile float half = tiny * 0.5f;
    CHECK(half > 0.0f);
}
#endif

TEST_MAIN()
