// Star-formation histories: the SFR shapes of SfhForm (pixedfit/csp.hpp), their exact
// integrals over age bins and the SFH-derived quantities (csp_sfh.hpp).
// Floating-point exceptions are never inspected here; without trapping semantics GCC can
// vectorise branch-free clamps (the flags of the whole forward model).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "csp_sfh.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "pixedfit/common.hpp"
#include "vexp.hpp"

namespace pixedfit::sps {

namespace {

constexpr double kSqrtHalfPi = 1.2533141373155002512;  // sqrt(pi/2)
constexpr double kSqrt2 = 1.4142135623730950488;

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
        h[i] = pixedfit::detail::vexp_taylor<12>(-x) * (1.0 + x);
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

namespace detail {

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

}  // namespace pixedfit::sps
