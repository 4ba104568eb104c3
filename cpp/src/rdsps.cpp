#include "pixedfit/rdsps.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>

#include "pixedfit/common.hpp"

namespace pixedfit {

namespace {

constexpr std::size_t kChunk = 2048;       // models per work unit (fixed: determinism)
constexpr std::size_t kSedBlock = 8;        // SEDs sharing one pass over the model fluxes
constexpr std::size_t kMinParallelPairs = 262144;  // split one SED over threads above this
constexpr double kNegligible = -34.538776;  // ln(1e-15): weights below this are dropped
constexpr double kHistFloor = -27.631021;   // ln(1e-12): pairs spanning the histogram
const double kNegInf = -std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// Per-SED constants.
struct SedTerms {
    const double* d = nullptr;
    const double* w = nullptr;
    double dd = 0.0;        // sum d^2 w
    double ln_norm = 0.0;   // -1/2 sum ln(2 pi sigma^2) over detected bands
    int nused = 0;          // detected bands
    const std::uint8_t* up = nullptr;  // upper-limit flags of the SED's bands, or null
    std::vector<std::size_t> lim;      // bands holding upper limits (with w > 0)
    std::vector<double> lim_sw;        // their sqrt(w) = 1 / sigma
};

// Precomputed, SED-independent data.
struct Shared {
    std::size_t npairs = 0;
    std::size_t nstat = 0;
    std::size_t nchunks_per_z = 0;
    // uniform priors on mass-scaled parameters become bounds on a, per model
    std::vector<double> a_lo, a_hi;
    std::vector<const TabulatedPrior*> general_tab;  // non-uniform tabulated priors
    bool need_log_a = false;
    double t_const = 0.0;  // Student-t normalisation per band
};

// A pair that may carry a non-negligible posterior weight: its ln prob was within
// kNegligible of the running maximum when it was evaluated (a superset of the final set,
// since the maximum only grows; filtered exactly once the maximum is known).
struct Candidate {
    std::size_t pair;
    double a;
    double chi2;
    double lnp;
};

// Per-chunk results of pass 1.
struct ChunkSummary {
    double max_lnp = -std::numeric_limits<double>::infinity();
    std::size_t arg_lnp = 0;
    double a_lnp = 0.0;
    double min_chi2 = std::numeric_limits<double>::infinity();
    std::size_t arg_chi2 = 0;
    double a_chi2 = 0.0;
    std::size_t n_valid = 0;
};

// Chunk-local arrays of pass 1 (on the stack of the thread that evaluates the chunk).
struct ChunkBuffers {
    double a[kChunk];
    double chi2[kChunk];
    double lnp[kChunk];
};

// A pair of the posterior: its index, weight and log10 normalisation.
struct Significant {
    std::size_t pair;
    double w;
    double log_a;
};

// Working memory of one SED (reused from SED to SED): per-chunk summaries and candidate
// lists; the per-pair arrays only when a chi2 cut needs them.
struct SedWork {
    std::vector<ChunkSummary> summary;
    std::vector<std::vector<Candidate>> cand;
    std::vector<Significant> sig;
    // per-pair arrays (chi2 cut only; filled by pass 1, so not initialised here)
    std::unique_ptr<double[]> a, chi2, lnp;
    std::vector<double> hist, bucket_vals;
    std::vector<std::size_t> counts;
    double best_lnp = -std::numeric_limits<double>::infinity();
    double best_chi2 = std::numeric_limits<double>::infinity();
    SedWork(std::size_t nchunks, std::size_t npairs, bool keep)
        : summary(nchunks), cand(nchunks) {
        if (keep) {
            a.reset(new double[npairs]);
            chi2.reset(new double[npairs]);
            lnp.reset(new double[npairs]);
        }
    }
    void reset() {
        best_lnp = -std::numeric_limits<double>::infinity();
        best_chi2 = std::numeric_limits<double>::infinity();
        for (auto& c : cand) c.clear();
    }
};

constexpr std::size_t kBandGroup = 8;  // bands summed in registers at once
constexpr std::size_t kAhead = 16;     // prefetch distance (pairs) for parameter rows

// bsum[q] (+)= sum_j dw[j] rows[j][q], csum[q] (+)= sum_j wb[j] rows[j][q]^2 over a group of
// NB bands (rows: the chunk's model fluxes in each band), the sums held in registers; `first`
// starts them at zero. With GCC/Clang four pairs at a time in a vector extension type (AVX
// registers in the x86-64-v3 clone, SSE2 pairs in the baseline); auto-vectorisation of the
// equivalent loop falls back to scalar code on an aliasing check.
template <std::size_t NB>
PIXEDFIT_INLINE void band_sums_fixed(const double* const* rows_in, const double* dw_in,
                            const double* wb_in, bool first, double* bsum, double* csum,
                            std::size_t n) {
    const double* rows[NB > 0 ? NB : 1];
    for (std::size_t j = 0; j < NB; ++j) rows[j] = rows_in[j];
    std::size_t q = 0;
#if defined(__GNUC__)
    typedef double Vec4 __attribute__((vector_size(32)));
    Vec4 dw[NB > 0 ? NB : 1], wb[NB > 0 ? NB : 1];
    for (std::size_t j = 0; j < NB; ++j) {
        dw[j] = Vec4{dw_in[j], dw_in[j], dw_in[j], dw_in[j]};
        wb[j] = Vec4{wb_in[j], wb_in[j], wb_in[j], wb_in[j]};
    }
    for (; q + 4 <= n; q += 4) {
        Vec4 b = {0.0, 0.0, 0.0, 0.0};
        Vec4 c = {0.0, 0.0, 0.0, 0.0};
        if (!first) {
            std::memcpy(&b, bsum + q, sizeof b);
            std::memcpy(&c, csum + q, sizeof c);
        }
        for (std::size_t j = 0; j < NB; ++j) {
            Vec4 m;
            std::memcpy(&m, rows[j] + q, sizeof m);
            b += dw[j] * m;
            c += wb[j] * m * m;
        }
        std::memcpy(bsum + q, &b, sizeof b);
        std::memcpy(csum + q, &c, sizeof c);
    }
#endif
    for (; q < n; ++q) {
        double b = first ? 0.0 : bsum[q];
        double c = first ? 0.0 : csum[q];
        for (std::size_t j = 0; j < NB; ++j) {
            const double m = rows[j][q];
            b += dw_in[j] * m;
            c += wb_in[j] * m * m;
        }
        bsum[q] = b;
        csum[q] = c;
    }
}

PIXEDFIT_MULTIVERSION
void band_sums(const double* const* rows, const double* dw, const double* wb, std::size_t nb,
               bool first, double* bsum, double* csum, std::size_t n) {
    switch (nb) {
        case 0: band_sums_fixed<0>(rows, dw, wb, first, bsum, csum, n); break;
        case 1: band_sums_fixed<1>(rows, dw, wb, first, bsum, csum, n); break;
        case 2: band_sums_fixed<2>(rows, dw, wb, first, bsum, csum, n); break;
        case 3: band_sums_fixed<3>(rows, dw, wb, first, bsum, csum, n); break;
        case 4: band_sums_fixed<4>(rows, dw, wb, first, bsum, csum, n); break;
        case 5: band_sums_fixed<5>(rows, dw, wb, first, bsum, csum, n); break;
        case 6: band_sums_fixed<6>(rows, dw, wb, first, bsum, csum, n); break;
        case 7: band_sums_fixed<7>(rows, dw, wb, first, bsum, csum, n); break;
        default: band_sums_fixed<8>(rows, dw, wb, first, bsum, csum, n); break;
    }
}

struct Extrema {
    double mx = -std::numeric_limits<double>::infinity();  // max ln p
    double mn = std::numeric_limits<double>::infinity();   // min chi2 where ln p > -inf
    std::size_t nv = 0;  // pairs with ln p > -inf
    std::size_t ia = 0;  // first position of mx (when asked for)
    std::size_t ic = 0;  // first position of mn (when asked for)
};

// Gaussian ln prob of a chunk of pairs from the band sums (no prior on log10 a except
// bounds): a = bsum / csum, chi2 = dd - bsum a, ln p = base + ln prior - chi2 / 2; pairs
// with a <= 0, a non-finite a or a outside [a_lo, a_hi] (when given) get ln p = -inf.
// Returns the chunk's extrema (without their positions).
template <bool kPrior, bool kBounds>
PIXEDFIT_INLINE Extrema gauss_pairs_t(const double* bsum, const double* csum, const double* ln_prior,
                             const double* a_lo, const double* a_hi, double dd, double base,
                             std::size_t n, double* __restrict a_out,
                             double* __restrict chi2_out, double* __restrict lnp_out) {
    const double inf = std::numeric_limits<double>::infinity();
    double mx = -inf, mn = inf;
    std::size_t nv = 0;
#pragma omp simd reduction(max : mx) reduction(min : mn) reduction(+ : nv)
    for (std::size_t q = 0; q < n; ++q) {
        const double a = bsum[q] / csum[q];
        const bool ok_a = csum[q] > 0.0 && a > 0.0 && a < inf;
        const bool ok = kBounds ? ok_a && a >= a_lo[q] && a <= a_hi[q] : ok_a;
        const double chi2 = std::max(0.0, dd - bsum[q] * a);
        const double lnp = ok ? base + (kPrior ? ln_prior[q] : 0.0) - 0.5 * chi2 : -inf;
        a_out[q] = a;
        chi2_out[q] = ok_a ? chi2 : inf;
        lnp_out[q] = lnp;
        const bool v = lnp > -inf;
        mx = lnp > mx ? lnp : mx;
        mn = (v && chi2 < mn) ? chi2 : mn;
        nv += v ? 1 : 0;
    }
    return Extrema{mx, mn, nv};
}

PIXEDFIT_MULTIVERSION
Extrema gauss_pairs(const double* bsum, const double* csum, const double* ln_prior,
                    const double* a_lo, const double* a_hi, double dd, double base,
                    std::size_t n, double* a_out, double* chi2_out, double* lnp_out) {
    if (ln_prior && a_lo) {
        return gauss_pairs_t<true, true>(bsum, csum, ln_prior, a_lo, a_hi, dd, base, n, a_out,
                                         chi2_out, lnp_out);
    }
    if (ln_prior) {
        return gauss_pairs_t<true, false>(bsum, csum, ln_prior, a_lo, a_hi, dd, base, n, a_out,
                                          chi2_out, lnp_out);
    }
    if (a_lo) {
        return gauss_pairs_t<false, true>(bsum, csum, ln_prior, a_lo, a_hi, dd, base, n, a_out,
                                          chi2_out, lnp_out);
    }
    return gauss_pairs_t<false, false>(bsum, csum, ln_prior, a_lo, a_hi, dd, base, n, a_out,
                                       chi2_out, lnp_out);
}

// The extrema of a chunk's chi2 and ln p (without their positions): max ln p and count over
// the pairs with ln p > -inf and chi2 <= thr, min chi2 over those with ln p > -inf.
PIXEDFIT_MULTIVERSION
Extrema chunk_extrema(const double* chi2, const double* lnp, std::size_t n, double thr) {
    const double inf = std::numeric_limits<double>::infinity();
    double mx = -inf, mn = inf;
    std::size_t nv = 0;
#pragma omp simd reduction(max : mx) reduction(min : mn) reduction(+ : nv)
    for (std::size_t q = 0; q < n; ++q) {
        const bool v = lnp[q] > -inf;
        const bool u = v && chi2[q] <= thr;
        mx = (u && lnp[q] > mx) ? lnp[q] : mx;
        mn = (v && chi2[q] < mn) ? chi2[q] : mn;
        nv += u ? 1 : 0;
    }
    return Extrema{mx, mn, nv};
}

// First positions of the extrema of chunk_extrema, for those asked for (and present).
void extrema_positions(const double* chi2, const double* lnp, bool want_a, bool want_c,
                       double thr, Extrema& e) {
    const double inf = std::numeric_limits<double>::infinity();
    if (want_a && e.mx > -inf) {
        std::size_t q = 0;
        while (!(lnp[q] == e.mx && chi2[q] <= thr)) ++q;
        e.ia = q;
    }
    if (want_c && e.mn < inf) {
        std::size_t q = 0;
        while (!(lnp[q] > -inf && chi2[q] == e.mn)) ++q;
        e.ic = q;
    }
}

// Append the pairs with ln p > lnp_floor and chi2 <= thr (p0 + q: pair index) to `out`.
PIXEDFIT_MULTIVERSION
void collect_pairs(const double* a, const double* chi2, const double* lnp, std::size_t n,
                   std::size_t p0, double lnp_floor, double thr, std::vector<Candidate>& out) {
    constexpr std::size_t kStep = 64;  // most pairs fail: test blocks first
    for (std::size_t q0 = 0; q0 < n; q0 += kStep) {
        const std::size_t q1 = std::min(n, q0 + kStep);
        double mx = -std::numeric_limits<double>::infinity();
#pragma omp simd reduction(max : mx)
        for (std::size_t q = q0; q < q1; ++q) mx = lnp[q] > mx ? lnp[q] : mx;
        if (!(mx > lnp_floor)) continue;
        for (std::size_t q = q0; q < q1; ++q) {
            if (lnp[q] > lnp_floor && chi2[q] <= thr) {
                out.push_back({p0 + q, a[q], chi2[q], lnp[q]});
            }
        }
    }
}

// The k-th smallest (0-based) of the values v[i] with valid[i] > -inf (non-negative,
// finite), and in *next the (k+1)-th (k-th when there is none): a radix select on the IEEE
// bit patterns (ordered like the values for non-negative doubles), then nth_element within
// one bucket. v is not modified.
double select_kth(const double* v, const double* valid, std::size_t n, std::size_t k,
                  double* next, std::vector<double>& bucket_vals,
                  std::vector<std::size_t>& counts) {
    constexpr std::size_t kBuckets = 4096;
    const double neg_inf = -std::numeric_limits<double>::infinity();
    auto bits = [](double x) {
        std::uint64_t u;
        std::memcpy(&u, &x, sizeof u);
        return u;
    };
    std::uint64_t lo = ~std::uint64_t{0}, hi = 0;
    std::size_t nvalid = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (!(valid[i] > neg_inf)) continue;
        const std::uint64_t u = bits(v[i]);
        lo = std::min(lo, u);
        hi = std::max(hi, u);
        ++nvalid;
    }
    int shift = 0;
    while (((hi - lo) >> shift) >= kBuckets) ++shift;
    counts.assign(kBuckets, 0);
    for (std::size_t i = 0; i < n; ++i) {
        if (valid[i] > neg_inf) ++counts[(bits(v[i]) - lo) >> shift];
    }
    std::size_t b = 0, below = 0;
    while (below + counts[b] <= k) below += counts[b++];
    auto gather = [&](std::size_t bucket) {
        bucket_vals.clear();
        for (std::size_t i = 0; i < n; ++i) {
            if (valid[i] > neg_inf && ((bits(v[i]) - lo) >> shift) == bucket) {
                bucket_vals.push_back(v[i]);
            }
        }
    };
    gather(b);
    const std::size_t r = k - below;
    std::nth_element(bucket_vals.begin(), bucket_vals.begin() + static_cast<std::ptrdiff_t>(r),
                     bucket_vals.end());
    const double kth = bucket_vals[r];
    if (r + 1 < bucket_vals.size()) {
        *next = *std::min_element(bucket_vals.begin() + static_cast<std::ptrdiff_t>(r) + 1,
                                  bucket_vals.end());
    } else if (k + 1 < nvalid) {
        std::size_t b2 = b + 1;
        while (counts[b2] == 0) ++b2;
        gather(b2);
        *next = *std::min_element(bucket_vals.begin(), bucket_vals.end());
    } else {
        *next = kth;
    }
    return kth;
}

double interp_clamped(const std::vector<double>& x, const std::vector<double>& y, double v) {
    if (v <= x.front()) return y.front();
    if (v >= x.back()) return y.back();
    const std::size_t j =
        static_cast<std::size_t>(std::upper_bound(x.begin(), x.end(), v) - x.begin()) - 1;
    const double t = (v - x[j]) / (x[j + 1] - x[j]);
    return y[j] * (1.0 - t) + y[j + 1] * t;
}

double tabulated_ln_prior(const TabulatedPrior& tp, double x) {
    const double u = (x - tp.x0) / tp.dx;
    const double last = static_cast<double>(tp.table.size() - 1);
    if (!(u >= 0.0 && u <= last)) return kNegInf;
    std::size_t j = static_cast<std::size_t>(u);
    if (j >= tp.table.size() - 1) j = tp.table.size() - 2;
    const double t = u - static_cast<double>(j);
    const double a = tp.table[j], b = tp.table[j + 1];
    if (std::isinf(a) || std::isinf(b)) return t < 0.5 ? a : b;
    return a * (1.0 - t) + b * t;
}

class Fitter {
public:
    Fitter(const RdspsInputs& in, const RdspsOptions& opt, const Shared& sh)
        : in_(in), opt_(opt), sh_(sh) {}

    SedTerms sed_terms(std::size_t s) const {
        SedTerms t;
        t.d = in_.obs + s * in_.nband;
        t.w = in_.ivar + s * in_.nband;
        t.up = in_.upper ? in_.upper + s * in_.nband : nullptr;
        for (std::size_t b = 0; b < in_.nband; ++b) {
            if (t.w[b] > 0.0 && t.up && t.up[b]) {
                t.lim.push_back(b);
                t.lim_sw.push_back(std::sqrt(t.w[b]));
            } else if (t.w[b] > 0.0) {
                t.dd += t.d[b] * t.d[b] * t.w[b];
                t.ln_norm += -0.5 * std::log(2.0 * M_PI / t.w[b]);
                ++t.nused;
            }
        }
        return t;
    }

    // Stat value of pair p (parameter k, or the redshift when k == npar).
    double stat_value(std::size_t pair, std::size_t k, double log_a) const {
        return value(pair % in_.nmod, pair / in_.nmod, k, log_a);
    }

    // The pairs of one chunk: normalisation a, chi2 and ln prob, written to a_out[q] etc.
    // for q = 0 .. chunk size - 1.
    Extrema pass1(const SedTerms& st, std::size_t s, std::size_t chunk, double* a_out,
                  double* chi2_out, double* lnp_out) const {
        const std::size_t iz = chunk / sh_.nchunks_per_z;
        const std::size_t m0 = (chunk % sh_.nchunks_per_z) * kChunk;
        const std::size_t m1 = std::min(in_.nmod, m0 + kChunk);
        const std::size_t n = m1 - m0;
        const std::size_t base = iz * in_.nmod;
        double bsum[kChunk];
        double csum[kChunk];
        const double* flux_z = in_.model_flux + iz * in_.nband * in_.nmod;
        const double* rows[kBandGroup];
        double dw[kBandGroup], wb[kBandGroup];
        std::size_t ng = 0;
        bool first = true;
        for (std::size_t b = 0; b < in_.nband; ++b) {
            if (!(st.w[b] > 0.0) || (st.up && st.up[b])) continue;  // limits: not in a
            rows[ng] = flux_z + b * in_.nmod + m0;
            wb[ng] = st.w[b];
            dw[ng] = st.d[b] * st.w[b];
            if (++ng == kBandGroup) {
                band_sums(rows, dw, wb, ng, first, bsum, csum, n);
                first = false;
                ng = 0;
            }
        }
        if (ng > 0 || first) band_sums(rows, dw, wb, ng, first, bsum, csum, n);
        const double lnz = in_.ln_prior_z ? in_.ln_prior_z[iz] : 0.0;
        if (opt_.likelihood == Likelihood::Gaussian && !sh_.need_log_a && st.lim.empty()) {
            return gauss_pairs(bsum, csum, in_.ln_prior_model ? in_.ln_prior_model + m0 : nullptr,
                               sh_.a_lo.empty() ? nullptr : sh_.a_lo.data() + m0,
                               sh_.a_hi.empty() ? nullptr : sh_.a_hi.data() + m0, st.dd,
                               st.ln_norm + lnz, n, a_out, chi2_out, lnp_out);
        }
        const double mass_off = in_.mass_offset ? in_.mass_offset[s] : 0.0;
        for (std::size_t q = 0; q < n; ++q) {
            const std::size_t m = m0 + q;
            const std::size_t pair = base + m;
            const double c = csum[q];
            const double a = c > 0.0 ? bsum[q] / c : kNaN;
            a_out[q] = a;
            if (!(a > 0.0) || !std::isfinite(a)) {
                chi2_out[q] = std::numeric_limits<double>::infinity();
                lnp_out[q] = kNegInf;
                continue;
            }
            // upper limits: ln Phi((f_lim - a m) / sigma) (Sawicki 2012)
            double ln_lim = 0.0;
            for (std::size_t j = 0; j < st.lim.size(); ++j) {
                const std::size_t b = st.lim[j];
                ln_lim += log_norm_cdf((st.d[b] - a * flux_z[b * in_.nmod + m]) * st.lim_sw[j]);
            }
            const double chi2 = std::max(0.0, st.dd - bsum[q] * a) - 2.0 * ln_lim;
            chi2_out[q] = chi2;
            double lnl;
            if (opt_.likelihood == Likelihood::Gaussian) {
                lnl = st.ln_norm - 0.5 * chi2;
            } else {
                lnl = ln_lim;
                for (std::size_t b = 0; b < in_.nband; ++b) {
                    const double wb = st.w[b];
                    if (!(wb > 0.0) || (st.up && st.up[b])) continue;
                    const double r = (st.d[b] - a * flux_z[b * in_.nmod + m]);
                    const double x2 = r * r * wb;
                    lnl += sh_.t_const - 0.5 * (opt_.dof + 1.0) * std::log1p(x2 / opt_.dof);
                }
            }
            double lnp = lnl + lnz;
            if (in_.ln_prior_model) lnp += in_.ln_prior_model[m];
            if (!sh_.a_lo.empty() && !(a >= sh_.a_lo[m] && a <= sh_.a_hi[m])) lnp = kNegInf;
            if (sh_.need_log_a && lnp > kNegInf) {
                const double la = std::log10(a);
                for (const TabulatedPrior* tp : sh_.general_tab) {
                    lnp += tabulated_ln_prior(*tp, in_.params[m * in_.npar + tp->param] + la);
                }
                for (const JointMassPrior& jp : in_.joint) {
                    const double mass = stat_value(pair, jp.mass_param, la) + mass_off;
                    const double mu = interp_clamped(jp.rel_x, jp.rel_y, mass);
                    const double x = (stat_value(pair, jp.param, la) - mu) / jp.scale;
                    lnp += -0.5 * x * x - std::log(jp.scale * std::sqrt(2.0 * M_PI));
                }
            }
            lnp_out[q] = std::isfinite(lnp) ? lnp : kNegInf;
        }
        return chunk_extrema(chi2_out, lnp_out, n, kInf);
    }

    std::size_t chunk_size(std::size_t chunk) const {
        const std::size_t m0 = (chunk % sh_.nchunks_per_z) * kChunk;
        return std::min(in_.nmod, m0 + kChunk) - m0;
    }

    std::size_t first_pair(std::size_t chunk) const {
        return (chunk / sh_.nchunks_per_z) * in_.nmod + (chunk % sh_.nchunks_per_z) * kChunk;
    }

    // Append the pairs of a chunk with ln p > lnp_floor (and chi2 <= thr) to `out`.
    void collect(std::size_t chunk, const double* a, const double* chi2, const double* lnp,
                 double lnp_floor, double thr, std::vector<Candidate>& out) const {
        collect_pairs(a, chi2, lnp, chunk_size(chunk), first_pair(chunk), lnp_floor, thr, out);
    }

    // Pass 1 of one chunk for one SED. `best_lnp` / `best_chi2` hold the extrema of the
    // chunks already seen (their positions are needed only where a chunk improves on them);
    // pairs below max(best_lnp, floor_lnp) + kNegligible are not candidates.
    void chunk_pass(const SedTerms& st, std::size_t s, std::size_t c, ChunkBuffers& buf,
                    SedWork& wk, double& best_lnp, double& best_chi2,
                    double floor_lnp = -std::numeric_limits<double>::infinity()) const {
        if (keep_pairs()) {  // everything kept for the chi2 cut; summaries come after it
            const std::size_t p0 = first_pair(c);
            pass1(st, s, c, wk.a.get() + p0, wk.chi2.get() + p0, wk.lnp.get() + p0);
            return;
        }
        Extrema e = pass1(st, s, c, buf.a, buf.chi2, buf.lnp);
        ChunkSummary& cs = wk.summary[c];
        cs = ChunkSummary();
        wk.cand[c].clear();
        cs.n_valid = e.nv;
        if (e.nv == 0) return;
        const bool want_a = e.mx > best_lnp, want_c = e.mn < best_chi2;
        extrema_positions(buf.chi2, buf.lnp, want_a, want_c, kInf, e);
        const std::size_t p0 = first_pair(c);
        cs.max_lnp = e.mx;
        cs.min_chi2 = e.mn;
        if (want_a) {
            cs.arg_lnp = p0 + e.ia;
            cs.a_lnp = buf.a[e.ia];
            best_lnp = e.mx;
        }
        if (want_c) {
            cs.arg_chi2 = p0 + e.ic;
            cs.a_chi2 = buf.a[e.ic];
            best_chi2 = e.mn;
        }
        collect(c, buf.a, buf.chi2, buf.lnp, std::max(best_lnp, floor_lnp) + kNegligible, kInf,
                wk.cand[c]);
    }

    // Pass 1 for a block of SEDs, chunk by chunk (each chunk of model fluxes is read from
    // memory once for the whole block). Keeps per-chunk summaries and candidate pairs; with
    // a chi2 cut the chi2 and ln p of every pair instead (the cut needs their distribution).
    void pass1_block(std::size_t s0, std::size_t nblock, std::vector<SedWork>& work) const {
        std::vector<SedTerms> terms(nblock);
        for (std::size_t q = 0; q < nblock; ++q) {
            terms[q] = sed_terms(s0 + q);
            work[q].reset();
        }
        const std::size_t nchunks = sh_.nchunks_per_z * in_.nz;
        ChunkBuffers buf;
        for (std::size_t c = 0; c < nchunks; ++c) {
            for (std::size_t q = 0; q < nblock; ++q) {
                chunk_pass(terms[q], s0 + q, c, buf, work[q], work[q].best_lnp,
                           work[q].best_chi2);
            }
        }
    }

    bool keep_pairs() const { return opt_.perc_chi2 < 100.0; }

    // Pass 1 for one SED with the chunks split over threads; the running maximum is shared
    // (it only prunes candidates: the final set does not depend on the order).
    void pass1_parallel(std::size_t s, SedWork& wk, int nt) const {
        const SedTerms st = sed_terms(s);
        wk.reset();
        std::atomic<double> shared_max(kNegInf);
        const std::int64_t nck = static_cast<std::int64_t>(sh_.nchunks_per_z * in_.nz);
        ParallelErrors errors;  // candidate lists allocate: keep exceptions in the region
#pragma omp parallel for num_threads(nt) schedule(static)
        for (std::int64_t ci = 0; ci < nck; ++ci) {
            if (errors.failed()) continue;
            errors.run(ci, [&] {
                const std::size_t c = static_cast<std::size_t>(ci);
                ChunkBuffers buf;
                // positions always computed (chunks complete in any order); the shared
                // maximum only sets the candidate floor
                double running = shared_max.load(std::memory_order_relaxed);
                double best_lnp = kNegInf, best_chi2 = kInf;
                chunk_pass(st, s, c, buf, wk, best_lnp, best_chi2, running);
                running = std::max(running, best_lnp);
                double seen = shared_max.load(std::memory_order_relaxed);
                while (running > seen && !shared_max.compare_exchange_weak(
                                             seen, running, std::memory_order_relaxed)) {
                }
            });
        }
        errors.rethrow();
    }

    // Value of statistic k for a pair of model m at redshift index iz.
    double value(std::size_t m, std::size_t iz, std::size_t k, double log_a) const {
        if (k == in_.npar) return in_.z_values[iz];
        const double v = in_.params[m * in_.npar + k];
        return in_.mass_scaled[k] ? v + log_a : v;
    }

    // Everything after pass 1 for SED s.
    void finish_sed(std::size_t s, SedWork& wk) const {
        const std::size_t nchunks = sh_.nchunks_per_z * in_.nz;
        double thr = kInf;
        if (keep_pairs()) {
            // numpy's linear interpolation between order statistics of the allowed pairs
            std::size_t nallowed = 0;
            for (std::size_t p = 0; p < sh_.npairs; ++p) nallowed += wk.lnp[p] > kNegInf;
            if (nallowed > 0) {
                const double pos = opt_.perc_chi2 / 100.0 * static_cast<double>(nallowed - 1);
                const std::size_t lo = static_cast<std::size_t>(std::floor(pos));
                double next = 0.0;
                thr = select_kth(wk.chi2.get(), wk.lnp.get(), sh_.npairs, lo, &next,
                                 wk.bucket_vals, wk.counts);
                if (lo + 1 < nallowed) {
                    thr = thr + (pos - static_cast<double>(lo)) * (next - thr);
                }
            }
            for (std::size_t c = 0; c < nchunks; ++c) {
                const std::size_t p0 = first_pair(c);
                const double* chi2 = wk.chi2.get() + p0;
                const double* lnp = wk.lnp.get() + p0;
                Extrema e = chunk_extrema(chi2, lnp, chunk_size(c), thr);
                extrema_positions(chi2, lnp, true, true, thr, e);
                ChunkSummary& cs = wk.summary[c];
                cs = ChunkSummary();
                cs.n_valid = e.nv;
                cs.max_lnp = e.mx;
                cs.arg_lnp = p0 + e.ia;
                cs.a_lnp = wk.a[p0 + e.ia];
                cs.min_chi2 = e.mn;
                cs.arg_chi2 = p0 + e.ic;
                cs.a_chi2 = wk.a[p0 + e.ic];
            }
        }
        // Minimum chi2 over the pairs the priors allow (first index on ties).
        ChunkSummary best;
        for (const ChunkSummary& cs : wk.summary) {
            if (cs.min_chi2 < best.min_chi2) best = cs;
        }
        ChunkSummary top;
        std::size_t n_used = 0;
        for (const ChunkSummary& cs : wk.summary) {
            n_used += cs.n_valid;
            if (cs.max_lnp > top.max_lnp) top = cs;
        }
        const std::size_t ns = sh_.nstat;
        double* mean = out_.mean + s * ns;
        double* sd = out_.std + s * ns;
        double* p16 = out_.p16 + s * ns;
        double* p50 = out_.p50 + s * ns;
        double* p84 = out_.p84 + s * ns;
        const bool found = best.min_chi2 < kInf;
        out_.best_model[s] = found ? static_cast<std::int64_t>(best.arg_chi2 % in_.nmod) : -1;
        out_.best_z[s] = found ? static_cast<std::int64_t>(best.arg_chi2 / in_.nmod) : -1;
        out_.best_scale[s] = found ? best.a_chi2 : kNaN;
        out_.chi2_min[s] = found ? best.min_chi2 : kNaN;
        if (out_.weights) {
            std::fill(out_.weights + s * sh_.npairs, out_.weights + (s + 1) * sh_.npairs, 0.0f);
        }
        if (out_.z_posterior) {
            std::fill(out_.z_posterior + s * in_.nz, out_.z_posterior + (s + 1) * in_.nz, 0.0);
        }
        if (!(top.max_lnp > kNegInf)) {
            std::fill(mean, mean + ns, kNaN);
            std::fill(sd, sd + ns, kNaN);
            std::fill(p16, p16 + ns, kNaN);
            std::fill(p50, p50 + ns, kNaN);
            std::fill(p84, p84 + ns, kNaN);
            out_.ln_evidence[s] = kNegInf;
            out_.n_used[s] = 0;
            return;
        }
        const double lnp_max = top.max_lnp;
        if (keep_pairs()) {
            for (std::size_t c = 0; c < nchunks; ++c) {
                wk.cand[c].clear();
                if (!(wk.summary[c].max_lnp - lnp_max > kNegligible)) continue;
                const std::size_t p0 = first_pair(c);
                collect(c, wk.a.get() + p0, wk.chi2.get() + p0, wk.lnp.get() + p0,
                        lnp_max + kNegligible, thr, wk.cand[c]);
            }
        }
        // The posterior pairs, in pair order (deterministic for any split of the work):
        // weights, sums relative to the most probable pair, ranges for the histograms.
        std::vector<double> ref(ns);
        const std::size_t top_m = top.arg_lnp % in_.nmod, top_z = top.arg_lnp / in_.nmod;
        const double la_ref = std::log10(top.a_lnp);
        for (std::size_t k = 0; k < ns; ++k) ref[k] = value(top_m, top_z, k, la_ref);
        double sum_w = 0.0;
        std::vector<double> s1(ns, 0.0), s2(ns, 0.0);
        std::vector<double> lo(ns, kInf), hi(ns, -kInf);
        wk.sig.clear();
        for (std::size_t c = 0; c < nchunks; ++c) {
            const std::vector<Candidate>& cands = wk.cand[c];
            for (std::size_t i = 0; i < cands.size(); ++i) {
                const Candidate& cd = cands[i];
                const double dl = cd.lnp - lnp_max;
                if (i + kAhead < cands.size()) {  // parameter rows are scattered in memory
                    const double* row =
                        in_.params + (cands[i + kAhead].pair % in_.nmod) * in_.npar;
                    __builtin_prefetch(row);
                    __builtin_prefetch(row + in_.npar - 1);
                }
                if (!(dl > kNegligible)) continue;
                const double w = std::exp(dl);
                const double la = std::log10(cd.a);
                const std::size_t m = cd.pair % in_.nmod, iz = cd.pair / in_.nmod;
                sum_w += w;
                wk.sig.push_back({cd.pair, w, la});
                const bool span = dl > kHistFloor;
                for (std::size_t k = 0; k < ns; ++k) {
                    const double x = value(m, iz, k, la);
                    const double dx = x - ref[k];
                    s1[k] += w * dx;
                    s2[k] += w * dx * dx;
                    if (span) {
                        lo[k] = std::min(lo[k], x);
                        hi[k] = std::max(hi[k], x);
                    }
                }
            }
        }
        out_.n_used[s] = static_cast<std::int64_t>(n_used);
        out_.ln_evidence[s] = lnp_max + std::log(sum_w) - std::log(static_cast<double>(sh_.npairs));
        for (std::size_t k = 0; k < ns; ++k) {
            const double m1 = s1[k] / sum_w;
            mean[k] = ref[k] + m1;
            sd[k] = std::sqrt(std::max(0.0, s2[k] / sum_w - m1 * m1));
        }
        // Weighted histograms for the percentiles.
        const std::size_t nh = opt_.nhist;
        const double nhd = static_cast<double>(nh);
        wk.hist.assign(ns * nh, 0.0);
        std::vector<double> scale(ns, 0.0);
        for (std::size_t k = 0; k < ns; ++k) {
            if (hi[k] > lo[k]) scale[k] = nhd / (hi[k] - lo[k]);
        }
        double* hist = wk.hist.data();
        const double inv_sum = 1.0 / sum_w;
        for (const Significant& g : wk.sig) {
            const std::size_t m = g.pair % in_.nmod, iz = g.pair / in_.nmod;
            if (out_.weights) out_.weights[s * sh_.npairs + g.pair] = static_cast<float>(g.w * inv_sum);
            if (out_.z_posterior) out_.z_posterior[s * in_.nz + iz] += g.w * inv_sum;
            for (std::size_t k = 0; k < ns; ++k) {
                if (!(scale[k] > 0.0)) continue;
                const double u = (value(m, iz, k, g.log_a) - lo[k]) * scale[k];
                std::size_t b = u <= 0.0 ? 0 : static_cast<std::size_t>(u);
                if (b >= nh) b = nh - 1;
                hist[k * nh + b] += g.w;
            }
        }
        const double qs[3] = {0.16, 0.50, 0.84};
        double* outs[3] = {p16, p50, p84};
        for (std::size_t k = 0; k < ns; ++k) {
            if (!(hi[k] > lo[k])) {
                const double v = std::isfinite(lo[k]) ? lo[k] : mean[k];
                p16[k] = p50[k] = p84[k] = v;
                continue;
            }
            const double* hk = hist + k * nh;
            const double total = sum_w;  // every posterior pair is in every histogram
            const double width = (hi[k] - lo[k]) / nhd;
            // one cumulative scan for the three (increasing) quantiles
            double cum = 0.0;
            std::size_t j = 0;
            for (int qi = 0; qi < 3; ++qi) {
                const double target = qs[qi] * total;
                for (; j < nh; ++j) {
                    if (cum + hk[j] >= target) break;
                    cum += hk[j];
                }
                const std::size_t jj = j < nh ? j : nh - 1;
                const double frac = hk[jj] > 0.0 ? (target - cum) / hk[jj] : 0.5;
                outs[qi][k] = lo[k] + (static_cast<double>(jj) + frac) * width;
            }
        }
    }

    RdspsOutputs out_;

private:
    const RdspsInputs& in_;
    const RdspsOptions& opt_;
    const Shared& sh_;
};

void check_inputs(const RdspsInputs& in, const RdspsOptions& opt, const RdspsOutputs& out) {
    require(in.obs && in.ivar && in.model_flux && in.params && in.mass_scaled,
            "rdsps_fit: missing input array");
    require(in.nsed > 0 && in.nband > 0 && in.nmod > 0 && in.nz > 0,
            "rdsps_fit: empty input (no SED, band, model or redshift)");
    require(in.nz == 1 || in.z_values, "rdsps_fit: z_values are needed with several redshifts");
    require(opt.likelihood == Likelihood::Gaussian || opt.likelihood == Likelihood::StudentT,
            "rdsps_fit: likelihood must be 0 or 1");
    require(opt.likelihood == Likelihood::Gaussian || opt.dof > 0.0,
            "rdsps_fit: dof must be > 0");
    require(opt.perc_chi2 > 0.0 && opt.perc_chi2 <= 100.0,
            "rdsps_fit: perc_chi2 must be within (0, 100]");
    require(opt.nhist >= 2, "rdsps_fit: nhist must be >= 2");
    require(out.mean && out.std && out.p16 && out.p50 && out.p84 && out.best_model &&
                out.best_z && out.best_scale && out.chi2_min && out.ln_evidence && out.n_used,
            "rdsps_fit: missing output array");
    for (const TabulatedPrior& tp : in.tabulated) {
        require(tp.param < in.npar && in.mass_scaled[tp.param],
                "rdsps_fit: tabulated priors are for mass-scaled parameters");
        require(tp.table.size() >= 2 && tp.dx > 0.0, "rdsps_fit: bad tabulated prior");
    }
    for (const JointMassPrior& jp : in.joint) {
        require(jp.param < in.npar + (in.nz > 1 ? 1 : 0) && jp.mass_param < in.npar,
                "rdsps_fit: joint prior parameter index out of range");
        require(jp.rel_x.size() >= 2 && jp.rel_x.size() == jp.rel_y.size() && jp.scale > 0.0,
                "rdsps_fit: bad joint prior relation");
        for (std::size_t j = 1; j < jp.rel_x.size(); ++j) {
            require(jp.rel_x[j] > jp.rel_x[j - 1],
                    "rdsps_fit: joint prior relation must have increasing mass values");
        }
    }
}

}  // namespace

double log_norm_cdf(double x) {
    constexpr double kSqrtHalf = 0.70710678118654752440;
    if (x > 0.0) return std::log1p(-0.5 * std::erfc(x * kSqrtHalf));  // 1 - Q, Q small
    if (x > -30.0) return std::log(0.5 * std::erfc(-x * kSqrtHalf));
    if (!(x > -kInf)) return x;  // -inf (and NaN) pass through
    // Phi(x) = phi(x) / |x| * (1 - 1/x^2 + 3/x^4 - 15/x^6 + 105/x^8 - ...) for x -> -inf;
    // truncated after 945/x^10 (< 2e-12 relative at x = -30)
    const double r = 1.0 / (x * x);
    const double series =
        1.0 + r * (-1.0 + r * (3.0 + r * (-15.0 + r * (105.0 + r * -945.0))));
    return -0.5 * x * x - std::log(-x) - 0.5 * std::log(2.0 * M_PI) + std::log(series);
}

void rdsps_fit(const RdspsInputs& in, const RdspsOptions& opt, const RdspsOutputs& out) {
    check_inputs(in, opt, out);
    Shared sh;
    sh.npairs = in.nmod * in.nz;
    sh.nstat = in.npar + (in.nz > 1 ? 1 : 0);
    sh.nchunks_per_z = (in.nmod + kChunk - 1) / kChunk;
    if (opt.likelihood == Likelihood::StudentT) {
        sh.t_const = std::lgamma(0.5 * (opt.dof + 1.0)) - std::lgamma(0.5 * opt.dof) -
                     0.5 * std::log(opt.dof * M_PI);
    }
    // Uniform tabulated priors on mass-scaled parameters -> bounds on a per model.
    for (const TabulatedPrior& tp : in.tabulated) {
        const bool uniform = std::all_of(tp.table.begin(), tp.table.end(),
                                         [&](double v) { return v == tp.table.front(); }) &&
                             std::isfinite(tp.table.front());
        if (!uniform) {
            sh.general_tab.push_back(&tp);
            continue;
        }
        if (sh.a_lo.empty()) {
            sh.a_lo.assign(in.nmod, 0.0);
            sh.a_hi.assign(in.nmod, std::numeric_limits<double>::infinity());
        }
        const double xlo = tp.x0;
        const double xhi = tp.x0 + tp.dx * static_cast<double>(tp.table.size() - 1);
        for (std::size_t m = 0; m < in.nmod; ++m) {
            const double p = in.params[m * in.npar + tp.param];
            sh.a_lo[m] = std::max(sh.a_lo[m], std::pow(10.0, xlo - p));
            sh.a_hi[m] = std::min(sh.a_hi[m], std::pow(10.0, xhi - p));
        }
    }
    sh.need_log_a = !sh.general_tab.empty() || !in.joint.empty();

    Fitter fitter(in, opt, sh);
    fitter.out_ = out;
    // Splitting one SED over threads pays only for large libraries: below kMinParallelPairs
    // the fork/join cost (and, on a busy machine, waiting for a descheduled thread) exceeds
    // the work. The result is the same either way.
    const int nt_req = resolve_threads(opt.threads);
    const int nt = (in.nsed < static_cast<std::size_t>(nt_req) && sh.npairs < kMinParallelPairs)
                       ? 1
                       : nt_req;
    const std::size_t nchunks = sh.nchunks_per_z * in.nz;
    const bool keep = opt.perc_chi2 < 100.0;
    if (in.nsed >= static_cast<std::size_t>(nt) || nt == 1) {
        // Blocks of SEDs share each pass over the model fluxes; one thread per block. With a
        // chi2 cut every SED keeps all its pairs (24 bytes each): one SED per block then.
        const std::size_t block =
            keep ? 1
                 : std::max<std::size_t>(
                       1, std::min<std::size_t>(kSedBlock, (in.nsed + nt - 1) /
                                                               static_cast<std::size_t>(nt)));
        const std::int64_t nblocks = static_cast<std::int64_t>((in.nsed + block - 1) / block);
        ParallelErrors errors;  // allocations may throw: keep exceptions in the region
#pragma omp parallel num_threads(nt)
        {
            std::vector<SedWork> work;
            bool ready = false;
            errors.run(-1, [&] {
                work.reserve(block);
                for (std::size_t q = 0; q < block; ++q) {
                    work.emplace_back(nchunks, sh.npairs, keep);
                }
                ready = true;
            });
#pragma omp for schedule(dynamic, 1)
            for (std::int64_t ib = 0; ib < nblocks; ++ib) {
                if (!ready || errors.failed()) continue;
                errors.run(ib, [&] {
                    const std::size_t s0 = static_cast<std::size_t>(ib) * block;
                    const std::size_t nb = std::min(block, in.nsed - s0);
                    fitter.pass1_block(s0, nb, work);
                    for (std::size_t q = 0; q < nb; ++q) fitter.finish_sed(s0 + q, work[q]);
                });
            }
        }
        errors.rethrow();
    } else {
        SedWork work(nchunks, sh.npairs, keep);
        for (std::size_t s = 0; s < in.nsed; ++s) {
            fitter.pass1_parallel(s, work, nt);
            fitter.finish_sed(s, work);
        }
    }
}

}  // namespace pixedfit
