// Log densities of the adaptive sampler's proposals (see mixture_density.hpp).
#include "pixedfit/mixture_density.hpp"

// Floating-point exceptions are never inspected here; without trapping semantics GCC can
// vectorise the selects of the polynomial exp and log (the values are the same).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "pixedfit/common.hpp"
#include "vexp.hpp"
#include "vlog.hpp"

namespace pixedfit {

namespace {

constexpr std::size_t kBlock = 64;  // points per block (the terms stay in L1)

// Rows of the lower factor l (d, d) whose diagonal holds 1 / L_rr: z = L^-1 (x - mu) for
// the m points of the block xt (d, kBlock), written to z (d, kBlock). mu may be null (0).
PIXEDFIT_INLINE void forward(const double* l, std::size_t d, const double* xt, std::size_t m,
                             const double* mu, double* z) {
    for (std::size_t r = 0; r < d; ++r) {
        double* __restrict zr = z + r * kBlock;
        const double* __restrict xr = xt + r * kBlock;
        const double c = mu == nullptr ? 0.0 : mu[r];
        for (std::size_t i = 0; i < m; ++i) zr[i] = xr[i] - c;
        for (std::size_t s = 0; s < r; ++s) {
            const double lrs = l[r * d + s];
            const double* __restrict zs = z + s * kBlock;
            for (std::size_t i = 0; i < m; ++i) zr[i] -= lrs * zs[i];
        }
        const double inv = l[r * d + r];
        for (std::size_t i = 0; i < m; ++i) zr[i] *= inv;
    }
}

// The lower factors with their diagonals inverted (checked positive and finite).
std::vector<double> inverted_diagonals(const double* chols, std::size_t count, std::size_t d,
                                       const char* what) {
    std::vector<double> out(chols, chols + count * d * d);
    for (std::size_t g = 0; g < count; ++g)
        for (std::size_t r = 0; r < d; ++r) {
            double& v = out[g * d * d + r * d + r];
            if (!(v > 0.0 && std::isfinite(v)))  // the message only when it is needed
                require(false, std::string("ProposalDensity: ") + what +
                                   " factors need a positive finite diagonal");
            v = 1.0 / v;
        }
    return out;
}

// A ProposalDensity's kernels as block_log_density reads them.
struct Kernels {
    std::size_t d;
    double df;
    const std::vector<double>& chols;
    const std::vector<std::size_t>& offsets;
    const std::vector<double>& white;
    const std::vector<double>& log_coef;
    const std::vector<double>& box_chols;
    const std::vector<double>& box_means;
    const std::vector<double>& box_log_coef;
    double log_defensive;
};

// The log densities of one block of m points: the transposed points yt (d, kBlock), their
// log_box (m), written to out (m). terms (n_terms, kBlock), z and u (d, kBlock) are scratch.
PIXEDFIT_INLINE void block_log_density_body(const Kernels& kernels, const double* yt,
                                            std::size_t m, const double* log_box, double* out,
                                            double* terms, double* z, double* u) {
    const std::size_t d = kernels.d;
    const double df = kernels.df;
    const std::vector<double>& chols = kernels.chols;
    const std::vector<std::size_t>& offsets = kernels.offsets;
    const std::vector<double>& white = kernels.white;
    const std::vector<double>& log_coef = kernels.log_coef;
    const std::vector<double>& box_chols = kernels.box_chols;
    const std::vector<double>& box_means = kernels.box_means;
    const std::vector<double>& box_log_coef = kernels.box_log_coef;
    const double log_defensive = kernels.log_defensive;
    const double expo = 0.5 * (df + static_cast<double>(d));
    const double inv_df = 1.0 / df;
    std::size_t t = 0;
    for (std::size_t g = 0; g + 1 < offsets.size(); ++g) {
        forward(&chols[g * d * d], d, yt, m, nullptr, z);
        for (std::size_t k = offsets[g]; k < offsets[g + 1]; ++k, ++t) {
            double* __restrict row = terms + t * kBlock;
            const double* w = &white[k * d];
            std::fill(row, row + m, 0.0);
            for (std::size_t r = 0; r < d; ++r) {
                const double* __restrict zr = z + r * kBlock;
                const double c = w[r];
                for (std::size_t i = 0; i < m; ++i) {
                    const double diff = zr[i] - c;
                    row[i] += diff * diff;
                }
            }
            const double lc = log_coef[k];
            for (std::size_t i = 0; i < m; ++i)
                row[i] = lc - expo * detail::vlog_positive(1.0 + row[i] * inv_df);
        }
    }
    const std::size_t n_box = box_log_coef.size();
    if (n_box > 0) {
        for (std::size_t r = 0; r < d; ++r) {
            double* __restrict ur = u + r * kBlock;
            const double* __restrict yr = yt + r * kBlock;
            for (std::size_t i = 0; i < m; ++i)
                ur[i] = 1.0 / (1.0 + detail::vexp_taylor<12>(-yr[i]));
        }
        for (std::size_t k = 0; k < n_box; ++k, ++t) {
            double* __restrict row = terms + t * kBlock;
            forward(&box_chols[k * d * d], d, u, m, &box_means[k * d], z);
            std::fill(row, row + m, 0.0);
            for (std::size_t r = 0; r < d; ++r) {
                const double* __restrict zr = z + r * kBlock;
                for (std::size_t i = 0; i < m; ++i) row[i] += zr[i] * zr[i];
            }
            const double lc = box_log_coef[k];
            for (std::size_t i = 0; i < m; ++i) row[i] = lc - 0.5 * row[i] + log_box[i];
        }
    }
    double* __restrict last = terms + t * kBlock;  // the box prior
    for (std::size_t i = 0; i < m; ++i) last[i] = log_defensive + log_box[i];
    ++t;
    // log-sum-exp over the terms (written with selects, which vectorise: a point whose
    // terms are all -inf gets -inf, one with a NaN term NaN)
    const double inf = std::numeric_limits<double>::infinity();
    double top[kBlock], sum[kBlock];
    std::fill(top, top + m, -inf);
    for (std::size_t j = 0; j < t; ++j) {
        const double* __restrict row = terms + j * kBlock;
        for (std::size_t i = 0; i < m; ++i) top[i] = row[i] > top[i] ? row[i] : top[i];
    }
    for (std::size_t i = 0; i < m; ++i) top[i] = top[i] > -inf ? top[i] : 0.0;
    std::fill(sum, sum + m, 0.0);
    for (std::size_t j = 0; j < t; ++j) {
        const double* __restrict row = terms + j * kBlock;
        for (std::size_t i = 0; i < m; ++i) {
            const double x = row[i] - top[i];
            const double e = detail::vexp_taylor<12>(x);
            sum[i] += x != x ? x : (x < -745.0 ? 0.0 : e);
        }
    }
    for (std::size_t i = 0; i < m; ++i) out[i] = top[i] + std::log(sum[i]);
}

PIXEDFIT_MULTIVERSION
void block_log_density_v3(const Kernels& kernels, const double* yt, std::size_t m,
                          const double* log_box, double* out, double* terms, double* z,
                          double* u) {
    block_log_density_body(kernels, yt, m, log_box, out, terms, z, u);
}

// 8 doubles per vector on AVX-512 (the compiler's default for x86-64-v4 is 4): the same
// operations in the same order as the x86-64-v3 clone, so the same bits
// (tests/test_kernel_isa.py).
PIXEDFIT_AVX512_WIDE
void block_log_density_v4(const Kernels& kernels, const double* yt, std::size_t m,
                          const double* log_box, double* out, double* terms, double* z,
                          double* u) {
    block_log_density_body(kernels, yt, m, log_box, out, terms, z, u);
}

// Adds to count the draws of the block zt (d, kBlock; m used) inside the open unit box
// under the kernel (l, mu): coordinate r of a draw is sum_{s <= r} l[r, s] z_s + mu[r].
PIXEDFIT_INLINE void inside_count_body(const double* l, const double* mu, std::size_t d,
                                       const double* zt, std::size_t m, double* acc,
                                       unsigned char* inside, std::size_t* count) {
    std::fill(inside, inside + m, static_cast<unsigned char>(1));
    for (std::size_t r = 0; r < d; ++r) {
        double* __restrict ar = acc;
        std::fill(ar, ar + m, 0.0);
        for (std::size_t s = 0; s <= r; ++s) {
            const double lrs = l[r * d + s];
            const double* __restrict zs = zt + s * kBlock;
            for (std::size_t i = 0; i < m; ++i) ar[i] += lrs * zs[i];
        }
        const double c = mu[r];
        for (std::size_t i = 0; i < m; ++i) {
            const double v = ar[i] + c;
            inside[i] &= static_cast<unsigned char>((v > 0.0) & (v < 1.0));
        }
    }
    std::size_t n_in = 0;
    for (std::size_t i = 0; i < m; ++i) n_in += inside[i];
    *count += n_in;
}

PIXEDFIT_MULTIVERSION
void inside_count_v3(const double* l, const double* mu, std::size_t d, const double* zt,
                     std::size_t m, double* acc, unsigned char* inside, std::size_t* count) {
    inside_count_body(l, mu, d, zt, m, acc, inside, count);
}

PIXEDFIT_AVX512_WIDE
void inside_count_v4(const double* l, const double* mu, std::size_t d, const double* zt,
                     std::size_t m, double* acc, unsigned char* inside, std::size_t* count) {
    inside_count_body(l, mu, d, zt, m, acc, inside, count);
}

}  // namespace

std::vector<double> box_fractions(const double* chols, const double* means,
                                  std::size_t n_kernels, const double* normals, std::size_t n,
                                  std::size_t d) {
    require(n >= 1 && d >= 1, "box_fractions: need at least one draw and one dimension");
    std::vector<std::size_t> counts(n_kernels, 0);
    std::vector<double> zt(d * kBlock), acc(kBlock);
    std::vector<unsigned char> inside(kBlock);
    // blocks of draws outermost: each is transposed once and serves every kernel
    for (std::size_t a = 0; a < n; a += kBlock) {
        const std::size_t m = std::min(kBlock, n - a);
        for (std::size_t i = 0; i < m; ++i)
            for (std::size_t r = 0; r < d; ++r) zt[r * kBlock + i] = normals[(a + i) * d + r];
        for (std::size_t k = 0; k < n_kernels; ++k)
            call_widest(inside_count_v4, inside_count_v3, chols + k * d * d, means + k * d, d,
                        zt.data(), m, acc.data(), inside.data(), &counts[k]);
    }
    std::vector<double> out(n_kernels);
    for (std::size_t k = 0; k < n_kernels; ++k)
        out[k] = static_cast<double>(counts[k]) / static_cast<double>(n);
    return out;
}

ProposalDensity::ProposalDensity(std::size_t dim, double df, const double* t_chols,
                                 std::size_t n_groups, const std::size_t* t_offsets,
                                 const double* t_centres, const double* t_log_coef,
                                 const double* box_chols, std::size_t n_box,
                                 const double* box_means, const double* box_log_coef,
                                 double log_defensive)
    : dim_(dim), df_(df), log_defensive_(log_defensive) {
    require(dim >= 1, "ProposalDensity: need at least one dimension");
    require(df > 0.0 && std::isfinite(df), "ProposalDensity: df must be positive and finite");
    require(!std::isnan(log_defensive) && log_defensive < std::numeric_limits<double>::infinity(),
            "ProposalDensity: log_defensive must be a number below +inf");
    require(t_offsets[0] == 0, "ProposalDensity: t_offsets must start at 0");
    for (std::size_t g = 0; g < n_groups; ++g)
        require(t_offsets[g + 1] > t_offsets[g],
                "ProposalDensity: every group needs at least one kernel (increasing offsets)");
    const std::size_t d = dim, n_kernels = t_offsets[n_groups];
    chols_ = inverted_diagonals(t_chols, n_groups, d, "t_chols");
    offsets_.assign(t_offsets, t_offsets + n_groups + 1);
    log_coef_.assign(t_log_coef, t_log_coef + n_kernels);
    // whitened centres, L^-1 mu, by forward substitution
    white_.assign(n_kernels * d, 0.0);
    for (std::size_t g = 0; g < n_groups; ++g) {
        const double* l = &chols_[g * d * d];
        for (std::size_t k = offsets_[g]; k < offsets_[g + 1]; ++k)
            for (std::size_t r = 0; r < d; ++r) {
                double v = t_centres[k * d + r];
                for (std::size_t s = 0; s < r; ++s) v -= l[r * d + s] * white_[k * d + s];
                white_[k * d + r] = v * l[r * d + r];
            }
    }
    box_chols_ = inverted_diagonals(box_chols, n_box, d, "box_chols");
    box_means_.assign(box_means, box_means + n_box * d);
    box_log_coef_.assign(box_log_coef, box_log_coef + n_box);
    for (double v : log_coef_)
        require(!std::isnan(v), "ProposalDensity: t_log_coef must not be NaN");
    for (double v : box_log_coef_)
        require(!std::isnan(v), "ProposalDensity: box_log_coef must not be NaN");
}

void ProposalDensity::log_density(const double* y, std::size_t n, const double* log_box,
                                  double* out) const {
    const std::size_t d = dim_;
    std::vector<double> yt(d * kBlock), z(d * kBlock), u(d * kBlock), terms(n_terms() * kBlock);
    const Kernels kernels{d,         df_,        chols_,        offsets_,       white_,
                          log_coef_, box_chols_, box_means_, box_log_coef_, log_defensive_};
    for (std::size_t a = 0; a < n; a += kBlock) {
        const std::size_t m = std::min(kBlock, n - a);
        for (std::size_t i = 0; i < m; ++i)
            for (std::size_t r = 0; r < d; ++r) yt[r * kBlock + i] = y[(a + i) * d + r];
        call_widest(block_log_density_v4, block_log_density_v3, kernels, yt.data(), m,
                    log_box + a, out + a, terms.data(), z.data(), u.data());
    }
}

}  // namespace pixedfit
