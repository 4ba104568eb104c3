// Composite stellar populations: see csp.hpp.
#include "pixedfit/csp.hpp"

// Floating-point exceptions are never inspected here; without trapping semantics GCC can
// vectorise the branch-free clamps of vexp below.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "pixedfit/common.hpp"
#include "csp_internal.hpp"

namespace pixedfit::sps {

namespace {

constexpr double kSqrtHalfPi = 1.2533141373155002512;  // sqrt(pi/2)
constexpr double kSqrt2 = 1.4142135623730950488;
constexpr double kLsunCgs = 3.826e33;       // erg/s (the L_sun of BC03 and bagpipes)
constexpr double kMsunG = 1.98847e33;       // g
constexpr double kMassH = 1.6735575e-24;    // g, hydrogen atom

// Gauss-Legendre nodes/weights on [-1, 1].
constexpr double kGL4x[4] = {-0.8611363115940526, -0.3399810435848563, 0.3399810435848563,
                             0.8611363115940526};
constexpr double kGL4w[4] = {0.3478548451374538, 0.6521451548625461, 0.6521451548625461,
                             0.3478548451374538};

// erf(b) - erf(a) for a <= b, accurate in the tails.
double erf_diff(double a, double b) {
    if (a >= 0.0) return std::erfc(a) - std::erfc(b);
    if (b <= 0.0) return std::erfc(-b) - std::erfc(-a);
    return std::erf(b) - std::erf(a);
}

double dpl_rate(const double s[4], double t) {
    if (t <= 0.0) return 0.0;
    const double x = std::log(t / s[0]);
    const double a = s[2] * x, b = -s[3] * x;
    // 1 / (e^a + e^b), written to avoid overflow
    const double m = std::max(a, b);
    return std::exp(-m) / (std::exp(a - m) + std::exp(b - m));
}

// Integral of f(t) over [lo, hi] (0 < lo < hi) in ln t with Gauss-Legendre 4 on pieces.
template <class F>
double integrate_log(F&& f, double lo, double hi, double steepness) {
    const double la = std::log(lo), lb = std::log(hi);
    const double width = lb - la;
    const int pieces = std::max(1, static_cast<int>(std::ceil(width * steepness / 0.5)));
    const double h = width / pieces;
    double total = 0.0;
    // a piece of h * steepness < 0.15 is integrated by 2-point Gauss-Legendre (relative
    // error ~ (h s)^4 / 4320 < 1e-7), otherwise 4-point (~ (h s)^8 / 3.6e9 per piece)
    const bool two = h * steepness < 0.15;
    constexpr double g2 = 0.5773502691896257645;
    for (int p = 0; p < pieces; ++p) {
        const double c = la + (p + 0.5) * h;
        double part = 0.0;
        if (two) {
            const double t0 = std::exp(c - 0.5 * h * g2), t1 = std::exp(c + 0.5 * h * g2);
            part = f(t0) * t0 + f(t1) * t1;
        } else {
            for (int k = 0; k < 4; ++k) {
                const double t = std::exp(c + 0.5 * h * kGL4x[k]);
                part += kGL4w[k] * f(t) * t;
            }
        }
        total += 0.5 * h * part;
    }
    return total;
}

// Mass of the double power law over [lo, hi], 0 < lo. Where one term of the denominator
// exceeds the other by > 1e17 the SFR is a pure power law to double precision and is
// integrated analytically; elsewhere Gauss-Legendre in ln t.
double dpl_mass_pos(const double s[4], double lo, double hi, int power = 0) {
    // integral of t^power * SFR(t) over [lo, hi]
    const double tau = s[0], al = s[2], be = s[3];
    const double cut = 39.1 / (al + be);  // |ln(t/tau)| beyond which one term dominates
    const double xlo = std::log(lo / tau), xhi = std::log(hi / tau);
    const double tp = (power == 0) ? tau : tau * tau;
    auto expint = [](double k, double a, double b) {  // integral of e^{k x} over [a, b]
        return std::fabs(k) < 1e-12 ? (b - a) : (std::exp(k * b) - std::exp(k * a)) / k;
    };
    double total = 0.0;
    // rising side: SFR = (t/tau)^beta for x < -cut
    const double r1 = std::min(xhi, -cut);
    if (r1 > xlo) total += tp * expint(be + 1.0 + power, xlo, r1);
    // falling side: SFR = (t/tau)^-alpha for x > cut
    const double f0 = std::max(xlo, cut);
    if (xhi > f0) total += tp * expint(1.0 + power - al, f0, xhi);
    // middle: numerical, in x = ln(t/tau) where the integrand is
    // tau^(1+power) / (e^{A x} + e^{-B x}), A = alpha - 1 - power, B = beta + 1 + power
    const double m0 = std::max(xlo, -cut), m1 = std::min(xhi, cut);
    if (m1 > m0) {
        const double A = al - 1.0 - power, B = be + 1.0 + power;
        auto g = [A, B](double x) {
            const double u = A * x, v = -B * x;
            const double m = std::max(u, v);
            return std::exp(-m) / (1.0 + std::exp(-std::fabs(u - v)));
        };
        const double steep = std::max({std::fabs(A), B, 1.0});
        const double width = m1 - m0;
        const int pieces = std::max(1, static_cast<int>(std::ceil(width * steep / 0.5)));
        const double h = width / pieces;
        const bool two = h * steep < 0.15;  // see integrate_log for the error bounds
        constexpr double g2 = 0.5773502691896257645;
        double acc = 0.0;
        for (int q = 0; q < pieces; ++q) {
            const double c = m0 + (q + 0.5) * h;
            double part = 0.0;
            if (two) {
                part = g(c - 0.5 * h * g2) + g(c + 0.5 * h * g2);
            } else {
                for (int k = 0; k < 4; ++k) part += kGL4w[k] * g(c + 0.5 * h * kGL4x[k]);
            }
            acc += 0.5 * h * part;
        }
        total += tp * acc;
    }
    return total;
}

double dpl_mass(const double s[4], double lo, double hi) {
    if (lo > 0.0) return dpl_mass_pos(s, lo, hi);
    // [0, hi]: below eps the SFR is a power law (t/tau)^beta to relative accuracy
    // (eps/tau)^(alpha+beta), integrated analytically.
    const double eps = hi * 1e-6;
    const double head = (eps / s[0] < 1.0) ? eps * dpl_rate(s, eps) / (s[3] + 1.0) : 0.0;
    return head + dpl_mass_pos(s, eps, hi);
}

}  // namespace

double sfh_rate(SfhForm form, const double s[4], double t) {
    if (t < 0.0) return 0.0;
    const double tau = s[0];
    switch (form) {
        case SfhForm::Tau: return std::exp(-t / tau);
        case SfhForm::DelayedTau: return t * std::exp(-t / tau);
        case SfhForm::LogNormal: {
            if (t <= 0.0) return 0.0;
            const double y = (std::log(t) - s[1]) / tau;
            return std::exp(-0.5 * y * y) / t;
        }
        case SfhForm::Gaussian: {
            const double y = (t - s[1]) / tau;
            return std::exp(-0.5 * y * y);
        }
        case SfhForm::DoublePowerLaw: return dpl_rate(s, t);
        default: throw std::invalid_argument("sfh_form must be 0-4");
    }
}

double sfh_mass_between(SfhForm form, const double s[4], double lo, double hi) {
    lo = std::max(lo, 0.0);
    if (!(hi > lo)) return 0.0;
    const double tau = s[0];
    switch (form) {
        case SfhForm::Tau: return tau * std::exp(-lo / tau) * (-std::expm1(-(hi - lo) / tau));
        case SfhForm::DelayedTau: {
            // G(t) = tau^2 e^{-t/tau} (1 + t/tau); mass = G(lo) - G(hi)
            const double elo = std::exp(-lo / tau), ehi = std::exp(-hi / tau);
            return tau * tau * (elo * (1.0 + lo / tau) - ehi * (1.0 + hi / tau));
        }
        case SfhForm::LogNormal: {
            const double c = tau * kSqrtHalfPi;
            const double b = (std::log(hi) - s[1]) / (kSqrt2 * tau);
            if (lo <= 0.0) return c * std::erfc(-b);
            const double a = (std::log(lo) - s[1]) / (kSqrt2 * tau);
            return c * erf_diff(a, b);
        }
        case SfhForm::Gaussian: {
            const double c = tau * kSqrtHalfPi;
            return c * erf_diff((lo - s[1]) / (kSqrt2 * tau), (hi - s[1]) / (kSqrt2 * tau));
        }
        case SfhForm::DoublePowerLaw: return dpl_mass(s, lo, hi);
        default: throw std::invalid_argument("sfh_form must be 0-4");
    }
}

double sfh_first_moment(SfhForm form, const double s[4], double age) {
    if (!(age > 0.0)) return 0.0;
    const double tau = s[0];
    double m = NAN;
    switch (form) {
        case SfhForm::Tau: {
            const double x = age / tau;
            m = tau * tau * (-std::expm1(-x) - x * std::exp(-x));
            break;
        }
        case SfhForm::DelayedTau: {
            const double x = age / tau;
            m = tau * tau * tau * (2.0 - std::exp(-x) * (x * x + 2.0 * x + 2.0));
            break;
        }
        case SfhForm::LogNormal: {
            const double y = (std::log(age) - s[1] - tau * tau) / (kSqrt2 * tau);
            m = std::exp(s[1] + 0.5 * tau * tau) * tau * kSqrtHalfPi * std::erfc(-y);
            break;
        }
        case SfhForm::Gaussian: {
            const double g0 = std::exp(-0.5 * (s[1] / tau) * (s[1] / tau));
            const double ga = std::exp(-0.5 * ((age - s[1]) / tau) * ((age - s[1]) / tau));
            m = tau * tau * (g0 - ga) +
                s[1] * tau * kSqrtHalfPi *
                    erf_diff(-s[1] / (kSqrt2 * tau), (age - s[1]) / (kSqrt2 * tau));
            break;
        }
        default: break;
    }
    if (form == SfhForm::DoublePowerLaw) {
        const double eps = age * 1e-9;
        m = dpl_mass_pos(s, eps, age, 1);
    }
    if (std::isfinite(m) && m > 0.0) return m;
    // numerical: pieces in ln t from age*1e-9 to age
    const double steep = (form == SfhForm::DoublePowerLaw ? std::max({s[2], s[3], 1.0}) : 1.0) + 2.0;
    auto f = [form, s](double t) { return t * sfh_rate(form, s, t); };
    return integrate_log(f, age * 1e-9, age, std::max(steep, 4.0));
}

namespace {

// H(t) = e^{-t/tau} (1 + t/tau) at every t (delayed tau: the mass formed between times lo
// and hi since the onset is tau^2 (H(lo) - H(hi))), vectorised (exp to ~1e-15 relative).
PIXEDFIT_MULTIVERSION
void delayed_h(const double* t, std::size_t n, double tau, double* h) {
    const double inv = 1.0 / tau;
#pragma omp simd
    for (std::size_t i = 0; i < n; ++i) {
        const double x = t[i] * inv;
        h[i] = detail::vexp_taylor<12>(-x) * (1.0 + x);
    }
}

// sfh_bin_masses for the delayed tau (form 1): H at the look-back edges (one vectorised
// pass) and the masses as differences of it; consecutive segments share their end.
void delayed_bin_masses(double tau, double age, const double* edges, std::size_t nage,
                        double t_bc, double* young, double* old) {
    std::size_t nb = 0;  // the bins with stars: their look-back start is below the age
    while (nb < nage && edges[nb] < age) ++nb;
    thread_local std::vector<double> times, h;
    times.resize(nb + 2);
    h.resize(nb + 2);
    // time since the onset at each bin's young end, at the old end of the last, and at t_bc
    for (std::size_t i = 0; i <= nb; ++i) times[i] = age - std::min(edges[i], age);
    times[nb + 1] = std::max(age - t_bc, 0.0);
    delayed_h(times.data(), nb + 2, tau, h.data());
    const double t2 = tau * tau, h_bc = h[nb + 1];
    // H falls with t; a segment narrower than the last bits of H could come out a rounding
    // error below zero: no mass then
    auto mass = [t2](double h_lo, double h_hi) { return std::max(t2 * (h_lo - h_hi), 0.0); };
    for (std::size_t i = 0; i < nb; ++i) {
        const double e0 = edges[i], b1 = std::min(edges[i + 1], age);
        // look-back segment [e0, b1] -> time since onset [age - b1, age - e0]
        if (e0 < t_bc) {
            young[i] = mass(b1 <= t_bc ? h[i + 1] : h_bc, h[i]);
            if (b1 > t_bc) old[i] = mass(h[i + 1], h_bc);
        } else {
            old[i] = mass(h[i + 1], h[i]);
        }
    }
}

}  // namespace

double sfh_bin_masses(SfhForm form, const double s[4], double age, const double* edges,
                      std::size_t nage, double t_bc, double* young, double* old) {
    std::fill(young, young + nage, 0.0);
    std::fill(old, old + nage, 0.0);
    if (!(age > 0.0) || !std::isfinite(age)) return 0.0;
    if (form == SfhForm::DelayedTau) {
        delayed_bin_masses(s[0], age, edges, nage, t_bc, young, old);
    } else {
        for (std::size_t i = 0; i < nage; ++i) {
            const double e0 = edges[i], e1 = edges[i + 1];
            if (e0 >= age) break;
            const double b1 = std::min(e1, age);
            // look-back segment [e0, b1] -> time since onset [age - b1, age - e0]
            if (e0 < t_bc) {
                const double mid = std::min(b1, t_bc);
                young[i] = sfh_mass_between(form, s, age - mid, age - e0);
                if (b1 > t_bc) old[i] = sfh_mass_between(form, s, age - b1, age - t_bc);
            } else {
                old[i] = sfh_mass_between(form, s, age - b1, age - e0);
            }
        }
    }
    double total = 0.0;
    for (std::size_t i = 0; i < nage; ++i) total += young[i] + old[i];
    // a vanishing total (star formation entirely outside [0, age] to double precision)
    // is degenerate: no weights, and a total of 0 (a positive one below 1e-290, whose bin
    // masses may have underflowed to zero, would tell callers that weights follow)
    if (!(total > 1e-290) || !std::isfinite(total)) {
        std::fill(young, young + nage, 0.0);
        std::fill(old, old + nage, 0.0);
        return (total > 0.0 && std::isfinite(total)) ? 0.0 : total;
    }
    const double inv = 1.0 / total;
    for (std::size_t i = 0; i < nage; ++i) {
        young[i] *= inv;
        old[i] *= inv;
    }
    return total;
}

void Grid::validate() const {
    require(nz >= 1 && nage >= 1 && nwave >= 2, "csp grid: empty SSP grid");
    require(ssp.size() == nz * nage * nwave, "csp grid: ssp size mismatch");
    require(logz.size() == nz, "csp grid: logz size mismatch");
    require(age_edges.size() == nage + 1, "csp grid: age_edges must have nage + 1 values");
    require(mass_surv.size() == nz * nage && mass_living.size() == nz * nage,
            "csp grid: mass arrays must be nz x nage");
    require(wave.size() == nwave && dwave.size() == nwave && calzetti.size() == nwave &&
                ln_l5500.size() == nwave,
            "csp grid: wavelength arrays must have nwave values");
    require(n_ionising <= nwave, "csp grid: n_ionising > nwave");
    for (std::size_t i = 0; i + 1 < nz; ++i)
        require(logz[i + 1] > logz[i], "csp grid: logz must increase");
    for (std::size_t i = 0; i < nage; ++i)
        require(age_edges[i + 1] > age_edges[i], "csp grid: age_edges must increase");
    if (nu > 0) {
        require(logu.size() == nu && neb_edges.size() == nneb + 1,
                "csp grid: nebular logu/edges size mismatch");
        require(neb_cont.size() == nu * nz * nneb * nwave, "csp grid: neb_cont size mismatch");
        require(line_lum.size() == nu * nz * nneb * nline, "csp grid: line_lum size mismatch");
        require(line_calz.size() == nline && line_lnl.size() == nline,
                "csp grid: line attenuation arrays size mismatch");
        require(line_start.size() == nline && line_off.size() == nline + 1,
                "csp grid: line profile index size mismatch");
        require(line_off[0] == 0 &&
                    line_off[nline] == static_cast<std::int64_t>(line_prof.size()),
                "csp grid: line profile offsets do not match");
        for (std::size_t l = 0; l < nline; ++l) {
            const std::int64_t len = line_off[l + 1] - line_off[l];
            require(len >= 0 && line_start[l] >= 0 &&
                        line_start[l] + len <= static_cast<std::int64_t>(nwave),
                    "csp grid: line profile outside the wavelength grid");
        }
    }
    if (nq > 0) {
        require(qpah.size() == nq && umin.size() == numin && dust_to_h.size() == nq,
                "csp grid: dust-emission axes size mismatch");
        require(dl_delta.size() == nq * numin * nwave && dl_plaw.size() == nq * numin * nwave,
                "csp grid: dust-emission templates size mismatch");
        require(dl_int_delta.size() == nq * numin && dl_int_plaw.size() == nq * numin,
                "csp grid: dust-emission integrals size mismatch");
    }
    if (ntau > 0) {
        require(agn_tau.size() == ntau && agn_tmpl.size() == ntau * nwave,
                "csp grid: AGN template size mismatch");
    }
}

namespace detail {

// Index i and weight f so that x ~ (1-f) v[i] + f v[i+1]; x clamped to [v0, v_last].
void bracket(const double* v, std::size_t n, double x, std::size_t& i, double& f) {
    if (n == 1 || x <= v[0]) {
        i = 0;
        f = 0.0;
        return;
    }
    if (x >= v[n - 1]) {
        i = n - 2;
        f = 1.0;
        return;
    }
    i = static_cast<std::size_t>(std::upper_bound(v, v + n, x) - v) - 1;
    if (i > n - 2) i = n - 2;
    f = (x - v[i]) / (v[i + 1] - v[i]);
}

// y += ca * a + cb * b. The hot loop of the model: compiled for AVX2/FMA as well as the
// baseline ISA (chosen at run time) where the compiler supports function multi-versioning.
PIXEDFIT_MULTIVERSION
void axpy2(double* y, const float* a, double ca, const float* b, double cb, std::size_t n) {
    if (cb == 0.0) {
#pragma omp simd
        for (std::size_t k = 0; k < n; ++k) y[k] += ca * static_cast<double>(a[k]);
    } else if (ca == 0.0) {
#pragma omp simd
        for (std::size_t k = 0; k < n; ++k) y[k] += cb * static_cast<double>(b[k]);
    } else {
#pragma omp simd
        for (std::size_t k = 0; k < n; ++k)
            y[k] += ca * static_cast<double>(a[k]) + cb * static_cast<double>(b[k]);
    }
}

// block_sums for L lanes (models) at a time: L accumulators of 8 columns stay in
// registers while the rows of every age stream past once per 8 columns.
#if defined(__GNUC__)
using Float8 = float __attribute__((vector_size(32)));

PIXEDFIT_INLINE void load8(Float8& v, const float* p) { std::memcpy(&v, p, sizeof v); }
#endif

template <std::size_t L>
PIXEDFIT_INLINE void block_sums_lanes(const float* r0, const float* r1, std::size_t ncol,
                                      const float* w0, const float* w1, std::size_t a0,
                                      std::size_t a1, float* const* out, std::size_t nb) {
    constexpr std::size_t kWidth = 8;
    std::size_t k0 = 0;
#if defined(__GNUC__)
    for (; k0 + kWidth <= ncol; k0 += kWidth) {
        Float8 acc[L];
        for (std::size_t u = 0; u < L; ++u) acc[u] = Float8{};
        for (std::size_t a = a0; a < a1; ++a) {
            Float8 p0, p1;
            load8(p0, r0 + a * ncol + k0);
            load8(p1, r1 + a * ncol + k0);
            // the rows are read 8 columns at a time across all ages, a stride the hardware
            // prefetchers do not follow: ask for the next cache line of each row ahead
            __builtin_prefetch(r0 + a * ncol + k0 + 16);
            __builtin_prefetch(r1 + a * ncol + k0 + 16);
            const float* c0 = w0 + a * kBlock;
            const float* c1 = w1 + a * kBlock;
            for (std::size_t u = 0; u < L; ++u) {
                acc[u] += c0[u] * p0;
                acc[u] += c1[u] * p1;
            }
        }
        for (std::size_t u = 0; u < nb; ++u) std::memcpy(out[u] + k0, &acc[u], sizeof acc[u]);
    }
#endif
    for (; k0 < ncol; ++k0) {  // (the last columns) the same arithmetic, one at a time
        float acc[L] = {};
        for (std::size_t a = a0; a < a1; ++a) {
            const float p0 = r0[a * ncol + k0], p1 = r1[a * ncol + k0];
            for (std::size_t u = 0; u < L; ++u) {
                acc[u] += w0[a * kBlock + u] * p0;
                acc[u] += w1[a * kBlock + u] * p1;
            }
        }
        for (std::size_t u = 0; u < nb; ++u) out[u][k0] = acc[u];
    }
}

PIXEDFIT_MULTIVERSION
void block_sums(const float* r0, const float* r1, std::size_t ncol, const float* w0,
                const float* w1, std::size_t a0, std::size_t a1, float* const* out,
                std::size_t nb) {
    if (nb > 4)
        block_sums_lanes<8>(r0, r1, ncol, w0, w1, a0, a1, out, nb);
    else if (nb > 2)
        block_sums_lanes<4>(r0, r1, ncol, w0, w1, a0, a1, out, nb);
    else if (nb > 1)
        block_sums_lanes<2>(r0, r1, ncol, w0, w1, a0, a1, out, nb);
    else
        block_sums_lanes<1>(r0, r1, ncol, w0, w1, a0, a1, out, nb);
}

// exp(x) to ~1e-15 relative (see vexp_taylor).
inline double vexp(double x) { return vexp_taylor<12>(x); }

// Transmissions exp(-tau) of the young (< t_bc) and old parts at n wavelengths.
PIXEDFIT_MULTIVERSION
void transmissions_at(const double* calz, const double* x, std::size_t nw,
                      DustLaw dust_law, double dust1, double dust2, double n, double n1,
                      double* t_young, double* t_old) {
    if (dust_law == DustLaw::Calzetti) {
#pragma omp simd
        for (std::size_t i = 0; i < nw; ++i) t_old[i] = vexp(-dust2 * calz[i]);
        std::copy(t_old, t_old + nw, t_young);
        return;
    }
#pragma omp simd
    for (std::size_t i = 0; i < nw; ++i) {
        const double tau2 = dust2 * vexp(n * x[i]);
        const double tau1 = dust1 * vexp(n1 * x[i]);
        t_old[i] = vexp(-tau2);
        t_young[i] = vexp(-(tau1 + tau2));
    }
}

}  // namespace detail

std::size_t model_work_size(const Grid& g) {
    return (2 * g.nage + 1) + (4 * g.nwave + g.nneb + g.nline);
}

namespace detail {

std::size_t prepare_model(const SspRows& r, const Config& cfg, const double* p, double* work,
                          float* stars, double& fz) {
    std::fill(stars, stars + 2 * r.ncol, 0.0f);
    const SfhShape s(p);
    work[2 * r.nage] = sfh_bin_masses(cfg.sfh_form, s.shape, s.age, r.age_edges, r.nage,
                                      cfg.t_bc, work, work + r.nage);
    std::size_t iz = 0;
    fz = 0.0;
    bracket(r.logz, r.nz, p[P_LOGZSOL], iz, fz);
    return iz;
}

PIXEDFIT_MULTIVERSION
void stellar_masses(const Grid& g, const double* m_young, const double* m_old, std::size_t iz,
                    double fz, double& surv, double& living) {
    const std::size_t iz1 = (g.nz > 1) ? iz + 1 : iz;
    const double* s0 = &g.mass_surv[iz * g.nage];
    const double* s1 = &g.mass_surv[iz1 * g.nage];
    const double* l0 = &g.mass_living[iz * g.nage];
    const double* l1 = &g.mass_living[iz1 * g.nage];
    double sv = 0.0, lv = 0.0;
    // (the ages without mass add exact zeros: no branch, so that the loop vectorises)
#pragma omp simd reduction(+ : sv, lv)
    for (std::size_t a = 0; a < g.nage; ++a) {
        const double m = m_young[a] + m_old[a];
        sv += m * ((1.0 - fz) * s0[a] + fz * s1[a]);
        lv += m * ((1.0 - fz) * l0[a] + fz * l1[a]);
    }
    surv = sv;
    living = lv;
}

void nebular_part(const Grid& g, const Config& cfg, const SfhShape& sh, double mtot,
                  const double* p, std::size_t iz, double fz, const float* cont,
                  std::size_t ncol, double* neb, double* m_neb, double* l_lum) {
    const std::size_t iz1 = (g.nz > 1) ? iz + 1 : iz;
    const double t_young = std::min(cfg.t_bc, sh.age);
    for (std::size_t k = 0; k < g.nneb; ++k) {
        const double e0 = g.neb_edges[k], e1 = std::min(g.neb_edges[k + 1], t_young);
        m_neb[k] = (e1 > e0)
                       ? sfh_mass_between(cfg.sfh_form, sh.shape, sh.age - e1, sh.age - e0) / mtot
                       : 0.0;
    }
    std::size_t iu = 0;
    double fu = 0.0;
    bracket(g.logu.data(), g.nu, p[P_GAS_LOGU], iu, fu);
    const std::size_t iu1 = (g.nu > 1) ? iu + 1 : iu;
    const std::size_t us[2] = {iu, iu1};
    const double uw[2] = {1.0 - fu, fu};
    std::fill(l_lum, l_lum + g.nline, 0.0);
    // the continuum rows of each ionisation parameter summed like the stellar ones
    // (block_sums, single precision), the lines in double precision
    thread_local std::vector<float> sums, weights;
    sums.assign(2 * ncol, 0.0f);
    weights.assign(2 * g.nneb * kBlock, 0.0f);
    float* w0 = weights.data();
    float* w1 = w0 + g.nneb * kBlock;
    for (int ju = 0; ju < 2; ++ju) {
        if (uw[ju] == 0.0) continue;
        std::size_t k0 = g.nneb, k1 = 0;
        for (std::size_t k = 0; k < g.nneb; ++k) {
            if (m_neb[k] == 0.0) continue;
            const std::size_t b0 = ((us[ju] * g.nz + iz) * g.nneb + k);
            const std::size_t b1 = ((us[ju] * g.nz + iz1) * g.nneb + k);
            const double c0 = m_neb[k] * uw[ju] * (1.0 - fz), c1 = m_neb[k] * uw[ju] * fz;
            w0[k * kBlock] = static_cast<float>(c0);
            w1[k * kBlock] = static_cast<float>(c1);
            k0 = std::min(k0, k);
            k1 = k + 1;
            const double* la = &g.line_lum[b0 * g.nline];
            const double* lb = &g.line_lum[b1 * g.nline];
            for (std::size_t l = 0; l < g.nline; ++l) l_lum[l] += c0 * la[l] + c1 * lb[l];
        }
        float* dst = sums.data() + static_cast<std::size_t>(ju) * ncol;
        if (k1 > k0)
            block_sums(&cont[(us[ju] * g.nz + iz) * g.nneb * ncol],
                       &cont[(us[ju] * g.nz + iz1) * g.nneb * ncol], ncol, w0, w1, k0, k1,
                       &dst, 1);
    }
    for (std::size_t c = 0; c < ncol; ++c)
        neb[c] += static_cast<double>(sums[c]) + static_cast<double>(sums[ncol + c]);
}


DustEmission dust_emission(const Grid& g, const Config& cfg, const double* p, double l_abs) {
    DustEmission d;
    if (!(cfg.dust_emission && g.nq > 0 && l_abs > 0.0)) return d;
    std::size_t iq = 0, ium = 0;
    double fq = 0.0, fum = 0.0;
    bracket(g.qpah.data(), g.nq, std::pow(10.0, p[P_LOG_QPAH]), iq, fq);
    bracket(g.umin.data(), g.numin, std::pow(10.0, p[P_LOG_UMIN]), ium, fum);
    d.gam = std::min(std::pow(10.0, p[P_LOG_GAMMA]), 1.0);
    const std::size_t iq1 = g.nq > 1 ? iq + 1 : iq, iu1 = g.numin > 1 ? ium + 1 : ium;
    const std::size_t idx[4] = {iq * g.numin + ium, iq * g.numin + iu1, iq1 * g.numin + ium,
                                iq1 * g.numin + iu1};
    const double w4[4] = {(1 - fq) * (1 - fum), (1 - fq) * fum, fq * (1 - fum), fq * fum};
    double integral = 0.0;
    for (int c = 0; c < 4; ++c)
        integral += w4[c] * ((1 - d.gam) * g.dl_int_delta[idx[c]] + d.gam * g.dl_int_plaw[idx[c]]);
    if (!(integral > 0.0)) return d;
    d.on = true;
    d.norm = l_abs / integral;
    for (int c = 0; c < 4; ++c) {
        d.idx[c] = idx[c];
        d.w[c] = w4[c];
    }
    const double d2h = (1 - fq) * g.dust_to_h[iq] + fq * g.dust_to_h[iq1];
    // number of H nucleons = L_abs [erg/s] / (emission per H [erg/s])
    d.dust_mass = l_abs * kLsunCgs / integral * d2h * kMassH / kMsunG;
    return d;
}

AgnPart agn_part(const Grid& g, const Config& cfg, const double* p, double l_star) {
    AgnPart a;
    if (cfg.agn && g.ntau > 0) {
        a.l_agn = std::pow(10.0, p[P_LOG_FAGN]) * l_star;
        bracket(g.agn_tau.data(), g.ntau, std::pow(10.0, p[P_LOG_TAUAGN]), a.it, a.ft);
        a.it1 = g.ntau > 1 ? a.it + 1 : a.it;
    }
    return a;
}

void sfh_derived(const Config& cfg, const SfhShape& sh, double mtot, double scale, double surv,
                 double living, double* der) {
    // unnormalised SFH quantities are divided by mtot before scaling (no overflow)
    const double age = sh.age;
    const double* shape = sh.shape;
    der[D_MASS_SURVIVING] = scale * surv;
    der[D_MASS_LIVING] = scale * living;
    der[D_MASS_FORMED] = scale;
    der[D_SFR] = scale * (sfh_rate(cfg.sfh_form, shape, age) / mtot) / 1e9;
    der[D_SFR_10MYR] =
        scale * (sfh_mass_between(cfg.sfh_form, shape, age - 0.01, age) / mtot) / 1e7;
    der[D_SFR_100MYR] =
        scale * (sfh_mass_between(cfg.sfh_form, shape, age - 0.1, age) / mtot) / 1e8;
    der[D_MW_AGE] = age - sfh_first_moment(cfg.sfh_form, shape, age) / mtot;
}

}  // namespace detail

namespace {

using namespace detail;

// Dust transmission of nebular line l.
double line_transmission(const Grid& g, const Config& cfg, const double* p, std::size_t l) {
    const double dust2 = p[P_DUST2];
    const double dust1 = (cfg.dust_law == DustLaw::CharlotFall) ? p[P_DUST1] : 0.0;
    if (cfg.dust_law == DustLaw::Calzetti) return std::exp(-dust2 * g.line_calz[l]);
    const double x = g.line_lnl[l];
    return std::exp(-(dust2 * std::exp(p[P_DUST_INDEX] * x) + dust1 * std::exp(cfg.dust1_index * x)));
}

// Scratch layout of finish_model (see model_work_size): the persistent part of `work`
// (SFH weights, kept between the stages of the batched path) is followed by scratch space
// (which the batched path shares per thread: `scratch` may point elsewhere).
std::size_t scratch_size(const Grid& g) { return 4 * g.nwave + g.nneb + g.nline; }

struct WorkView {
    float *young, *old;
    double *m_young, *m_old, *mtot;
    double *neb, *t_young, *t_old, *extra, *m_neb, *l_lum;
    WorkView(const Grid& g, double* w, float* stars, double* scratch = nullptr) {
        const std::size_t nw = g.nwave;
        young = stars;        // young stars (< t_bc), intrinsic
        old = young + nw;     // old stars, intrinsic
        m_young = w;
        m_old = m_young + g.nage;
        mtot = m_old + g.nage;
        neb = scratch ? scratch : mtot + 1;  // nebular, intrinsic
        t_young = neb + nw;   // transmission of the young part
        t_old = t_young + nw; // transmission of the old part
        extra = t_old + nw;   // dust emission
        m_neb = extra + nw;
        l_lum = m_neb + g.nneb;
    }
};

// Stellar spectra (young, old) of one model, with the arithmetic of the batched path.
void accumulate_stars(const Grid& g, double* work, float* stars, std::size_t iz, double fz) {
    WorkView w(g, work, stars);
    const std::size_t nw = g.nwave, iz1 = (g.nz > 1) ? iz + 1 : iz;
    std::vector<float> wt(4 * g.nage * kBlock, 0.0f);
    float *wy0 = wt.data(), *wy1 = wy0 + g.nage * kBlock;
    float *wo0 = wy1 + g.nage * kBlock, *wo1 = wo0 + g.nage * kBlock;
    lane_weights(w.m_young, w.m_old, fz, g.nage, 0, wy0, wy1, wo0, wo1);
    const float* r0 = &g.ssp[iz * g.nage * nw];
    const float* r1 = &g.ssp[iz1 * g.nage * nw];
    block_sums(r0, r1, nw, wy0, wy1, 0, g.nage, &w.young, 1);
    block_sums(r0, r1, nw, wo0, wo1, 0, g.nage, &w.old, 1);
}

}  // namespace

void compute_model(const Grid& g, const Config& cfg, const double* p, double* spec,
                   double* comp, double* derived, double* work, double* lines_out) {
    double fz = 0.0;
    std::vector<float> stars(2 * g.nwave);
    const std::size_t iz = prepare_model(spectra_rows(g), cfg, p, work, stars.data(), fz);
    accumulate_stars(g, work, stars.data(), iz, fz);
    finish_model(g, cfg, p, spec, comp, derived, work, lines_out, nullptr, stars.data());
}

void finish_model(const Grid& g, const Config& cfg, const double* p, double* spec,
                  double* comp, double* derived, double* work, double* lines_out,
                  double* scratch, float* stars) {
    const std::size_t nw = g.nwave;
    WorkView wv(g, work, stars, scratch);
    float* young = wv.young;
    const float* old = wv.old;
    double* neb = wv.neb;
    double* t_young = wv.t_young;
    double* t_old = wv.t_old;
    double* extra = wv.extra;
    std::fill(neb, neb + 4 * nw, 0.0);

    double der[N_DERIVED] = {0.0};
    const SfhShape sh(p);
    const double mtot = *wv.mtot;
    const bool ok = mtot > 1e-290 && std::isfinite(mtot);

    std::size_t iz = 0;
    double fz = 0.0;
    bracket(g.logz.data(), g.nz, p[P_LOGZSOL], iz, fz);

    // surviving and living mass per Msun formed
    double surv = 0.0, living = 0.0;
    stellar_masses(g, wv.m_young, wv.m_old, iz, fz, surv, living);
    if (!ok || !(surv > 0.0)) {
        std::fill(spec, spec + nw, 0.0);
        if (comp) std::fill(comp, comp + N_COMPONENTS * nw, 0.0);
        if (derived) std::fill(derived, derived + N_DERIVED, 0.0);
        if (lines_out) std::fill(lines_out, lines_out + g.nline, 0.0);
        return;
    }
    const double scale = std::pow(10.0, p[P_LOG_MASS]) / surv;  // Msun formed

    double l_star = 0.0;  // intrinsic stellar bolometric luminosity per Msun formed
    for (std::size_t k = 0; k < nw; ++k) l_star += (young[k] + old[k]) * g.dwave[k];

    // nebular emission from the young populations
    const bool neb_on = cfg.nebular && g.nu > 0;
    if (neb_on) {
        nebular_part(g, cfg, sh, mtot, p, iz, fz, g.neb_cont.data(), nw, neb, wv.m_neb,
                     wv.l_lum);
        for (std::size_t l = 0; l < g.nline && !lines_out; ++l) {
            const double* prof = &g.line_prof[g.line_off[l]];
            const std::int64_t len = g.line_off[l + 1] - g.line_off[l];
            double* dst = neb + g.line_start[l];
            for (std::int64_t j = 0; j < len; ++j) dst[j] += wv.l_lum[l] * prof[j];
        }
        // ionising photons of the young stars are absorbed by the gas (f_esc = 0)
        std::fill(young, young + g.n_ionising, 0.0f);
    }

    // attenuation
    const double dust2 = p[P_DUST2];
    const double dust1 = (cfg.dust_law == DustLaw::CharlotFall) ? p[P_DUST1] : 0.0;
    transmissions_at(g.calzetti.data(), g.ln_l5500.data(), nw, cfg.dust_law, dust1, dust2,
                     p[P_DUST_INDEX], cfg.dust1_index, t_young, t_old);
    double l_abs = 0.0;
    for (std::size_t k = 0; k < nw; ++k)
        l_abs += g.dwave[k] * ((young[k] + neb[k]) * (1.0 - t_young[k]) + old[k] * (1.0 - t_old[k]));
    double l_lines_att = 0.0;  // attenuated luminosity of lines kept off the grid
    if (lines_out) {
        for (std::size_t l = 0; l < g.nline; ++l) {
            const double tr = neb_on ? line_transmission(g, cfg, p, l) : 1.0;
            const double lum = neb_on ? wv.l_lum[l] : 0.0;
            l_abs += lum * (1.0 - tr);
            l_lines_att += lum * tr;
            lines_out[l] = lum * tr;
        }
    }
    l_abs = std::max(l_abs, 0.0);

    // dust emission (energy balance)
    const DustEmission de = dust_emission(g, cfg, p, l_abs);
    if (de.on) {
        for (int c = 0; c < 4; ++c) {
            if (de.w[c] == 0.0) continue;
            axpy2(extra, &g.dl_delta[de.idx[c] * nw], de.norm * de.w[c] * (1 - de.gam),
                  &g.dl_plaw[de.idx[c] * nw], de.norm * de.w[c] * de.gam, nw);
        }
    }
    // AGN torus: fagn times the intrinsic stellar bolometric luminosity
    const AgnPart ap = agn_part(g, cfg, p, l_star);
    const double l_agn = ap.l_agn;
    const float* a0 = (l_agn > 0.0) ? &g.agn_tmpl[ap.it * nw] : nullptr;
    const float* a1 = (l_agn > 0.0) ? &g.agn_tmpl[ap.it1 * nw] : nullptr;
    const double ca0 = l_agn * (1.0 - ap.ft), ca1 = l_agn * ap.ft;

    double lbol = 0.0;
    for (std::size_t k = 0; k < nw; ++k) {
        const double st = young[k] * t_young[k] + old[k] * t_old[k];
        const double nb = neb[k] * t_young[k];
        const double ag = a0 ? ca0 * static_cast<double>(a0[k]) + ca1 * static_cast<double>(a1[k])
                             : 0.0;
        const double tot = scale * (st + nb + extra[k] + ag);
        spec[k] = tot;
        lbol += g.dwave[k] * tot;
        if (comp) {
            comp[C_STELLAR * nw + k] = scale * st;
            comp[C_NEBULAR * nw + k] = scale * nb;
            comp[C_DUST * nw + k] = scale * extra[k];
            comp[C_AGN * nw + k] = scale * ag;
        }
    }
    if (lines_out) {
        for (std::size_t l = 0; l < g.nline; ++l) lines_out[l] *= scale;
        lbol += scale * l_lines_att;
    }
    if (derived) {
        sfh_derived(cfg, sh, mtot, scale, surv, living, der);
        der[D_DUST_MASS] = scale * de.dust_mass;
        der[D_LBOL] = lbol;
        der[D_FAGN_BOL] = lbol > 0.0 ? scale * l_agn / lbol : 0.0;
        der[D_L_ABSORBED] = scale * l_abs;
        std::copy(der, der + N_DERIVED, derived);
    }
}

void compute_spectra(const Grid& g, const Config& cfg, const double* params, std::size_t n,
                     double* spec, double* components, double* derived, int threads) {
    g.validate();
    require(is_valid(cfg.sfh_form), "sfh_form must be 0-4");
    require(is_valid(cfg.dust_law), "dust_law must be 0 or 1");
    const std::size_t nw = g.nwave;
    run_batched(spectra_rows(g), cfg, params, n, scratch_size(g), threads,
                [&](std::size_t u, double* work, double* sc, float* st) {
        finish_model(g, cfg, params + u * N_PARAMS, spec + u * nw,
                     components ? components + u * N_COMPONENTS * nw : nullptr,
                     derived ? derived + u * N_DERIVED : nullptr, work, nullptr, sc, st);
    });
}

void compute_photometry(const Grid& g, const Config& cfg, const double* params,
                        std::size_t n, const double* trans, double scale,
                        const std::int64_t* starts, const std::int64_t* offsets,
                        const double* weights, std::size_t nbands,
                        const double* line_weights, double* out, double* derived,
                        int threads) {
    g.validate();
    require(is_valid(cfg.sfh_form), "sfh_form must be 0-4");
    require(is_valid(cfg.dust_law), "dust_law must be 0 or 1");
    const std::size_t nw = g.nwave;
    for (std::size_t b = 0; b < nbands; ++b) {
        require(offsets[b + 1] >= offsets[b] && starts[b] >= 0 &&
                    starts[b] + (offsets[b + 1] - offsets[b]) <= static_cast<std::int64_t>(nw),
                "compute_photometry: band weights outside the wavelength grid");
    }
    const int nt = resolve_threads(threads);
    std::vector<double> spec_all(static_cast<std::size_t>(std::max(nt, 1)) * nw);
    std::vector<double> lines_all(static_cast<std::size_t>(std::max(nt, 1)) *
                                  std::max<std::size_t>(g.nline, 1));
    // the nonzero line weights of each band, in line order (a band sees few of the lines,
    // and adding the others' exact zeros changes no sum)
    std::vector<std::size_t> line_off(nbands + 1, 0), line_idx;
    std::vector<double> line_w;
    if (line_weights && g.nline > 0) {
        for (std::size_t b = 0; b < nbands; ++b) {
            for (std::size_t l = 0; l < g.nline; ++l) {
                if (line_weights[b * g.nline + l] != 0.0) {
                    line_idx.push_back(l);
                    line_w.push_back(line_weights[b * g.nline + l]);
                }
            }
            line_off[b + 1] = line_idx.size();
        }
    }
    run_batched(spectra_rows(g), cfg, params, n, scratch_size(g), threads,
                [&](std::size_t u, double* work, double* sc, float* st) {
        const auto tid = static_cast<std::size_t>(omp_get_thread_num());
        double* spec = &spec_all[tid * nw];
        double* lp = (line_weights && g.nline > 0)
                         ? &lines_all[tid * std::max<std::size_t>(g.nline, 1)]
                         : nullptr;
        finish_model(g, cfg, params + u * N_PARAMS, spec, nullptr,
                     derived ? derived + u * N_DERIVED : nullptr, work, lp, sc, st);
        if (trans) {
            for (std::size_t k = 0; k < nw; ++k) spec[k] *= trans[k];
        }
        for (std::size_t b = 0; b < nbands; ++b) {
            const double* w = weights + offsets[b];
            const double* f = spec + starts[b];
            const std::int64_t len = offsets[b + 1] - offsets[b];
            double acc = 0.0;
            for (std::int64_t j = 0; j < len; ++j) acc += w[j] * f[j];
            acc *= scale;
            if (lp) {
                for (std::size_t j = line_off[b]; j < line_off[b + 1]; ++j)
                    acc += line_w[j] * lp[line_idx[j]];
            }
            out[u * nbands + b] = acc;
        }
    });
}

}  // namespace pixedfit::sps
