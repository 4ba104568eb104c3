#include "pixedfit/rdsps.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
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
    double ln_norm = 0.0;   // -1/2 sum ln(2 pi sigma^2) over used bands
    int nused = 0;
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

struct ChunkPartial {
    double sum_w = 0.0;
    std::vector<double> s1, s2;  // per stat, sums of w (x - ref) and w (x - ref)^2
    std::vector<double> lo, hi;  // per stat, range of values with weight > 1e-12
    std::vector<std::size_t> significant;  // pair indices with weight > 1e-15
    std::vector<double> weight, log_a;     // their weights and log10 normalisations
    void clear() {
        sum_w = 0.0;
        significant.clear();
        weight.clear();
        log_a.clear();
    }
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

// Working memory of one SED: per-chunk summaries and partial sums; the per-pair arrays
// only when a chi2 cut needs them.
struct SedWork {
    std::vector<ChunkSummary> summary;
    std::vector<ChunkPartial> parts;
    std::vector<double> a, chi2, lnp, scratch;
    SedWork(std::size_t nchunks, std::size_t npairs, bool keep)
        : summary(nchunks), parts(nchunks) {
        if (keep) {
            a.resize(npairs);
            chi2.resize(npairs);
            lnp.resize(npairs);
        }
    }
    void store(std::size_t, std::size_t p0, std::size_t n, const ChunkBuffers& buf) {
        std::copy(buf.a, buf.a + n, a.begin() + static_cast<std::ptrdiff_t>(p0));
        std::copy(buf.chi2, buf.chi2 + n, chi2.begin() + static_cast<std::ptrdiff_t>(p0));
        std::copy(buf.lnp, buf.lnp + n, lnp.begin() + static_cast<std::ptrdiff_t>(p0));
    }
};

// bsum += dw m, csum += wb m^2 over one band of a chunk of models.
PIXEDFIT_MULTIVERSION
void accumulate_band(const double* mb, double dw, double wb, double* bsum, double* csum,
                     std::size_t n) {
#pragma omp simd
    for (std::size_t q = 0; q < n; ++q) {
        bsum[q] += dw * mb[q];
        csum[q] += wb * mb[q] * mb[q];
    }
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
        for (std::size_t b = 0; b < in_.nband; ++b) {
            if (t.w[b] > 0.0) {
                t.dd += t.d[b] * t.d[b] * t.w[b];
                t.ln_norm += -0.5 * std::log(2.0 * M_PI / t.w[b]);
                ++t.nused;
            }
        }
        return t;
    }

    // Stat value of pair p (parameter k, or the redshift when k == npar).
    double stat_value(std::size_t pair, std::size_t k, double log_a) const {
        const std::size_t iz = pair / in_.nmod;
        const std::size_t m = pair % in_.nmod;
        if (k == in_.npar) return in_.z_values[iz];
        const double v = in_.params[m * in_.npar + k];
        return in_.mass_scaled[k] ? v + log_a : v;
    }

    // The pairs of one chunk: normalisation a, chi2 and ln prob, written to a_out[q] etc.
    // for q = 0 .. chunk size - 1.
    void pass1(const SedTerms& st, std::size_t s, std::size_t chunk, double* a_out,
               double* chi2_out, double* lnp_out) const {
        const std::size_t iz = chunk / sh_.nchunks_per_z;
        const std::size_t m0 = (chunk % sh_.nchunks_per_z) * kChunk;
        const std::size_t m1 = std::min(in_.nmod, m0 + kChunk);
        const std::size_t n = m1 - m0;
        const std::size_t base = iz * in_.nmod;
        double bsum[kChunk];
        double csum[kChunk];
        std::fill(bsum, bsum + n, 0.0);
        std::fill(csum, csum + n, 0.0);
        const double* flux_z = in_.model_flux + iz * in_.nband * in_.nmod;
        for (std::size_t b = 0; b < in_.nband; ++b) {
            const double wb = st.w[b];
            if (!(wb > 0.0)) continue;
            const double dw = st.d[b] * wb;
            accumulate_band(flux_z + b * in_.nmod + m0, dw, wb, bsum, csum, n);
        }
        const double lnz = in_.ln_prior_z ? in_.ln_prior_z[iz] : 0.0;
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
            const double chi2 = std::max(0.0, st.dd - bsum[q] * a);
            chi2_out[q] = chi2;
            double lnl;
            if (opt_.likelihood == 0) {
                lnl = st.ln_norm - 0.5 * chi2;
            } else {
                lnl = 0.0;
                for (std::size_t b = 0; b < in_.nband; ++b) {
                    const double wb = st.w[b];
                    if (!(wb > 0.0)) continue;
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
    }

    std::size_t chunk_size(std::size_t chunk) const {
        const std::size_t m0 = (chunk % sh_.nchunks_per_z) * kChunk;
        return std::min(in_.nmod, m0 + kChunk) - m0;
    }

    std::size_t first_pair(std::size_t chunk) const {
        return (chunk / sh_.nchunks_per_z) * in_.nmod + (chunk % sh_.nchunks_per_z) * kChunk;
    }

    // Summary of one chunk's pairs given their chi2 and ln p (pairs with chi2 > thr are cut).
    ChunkSummary summarize(std::size_t chunk, const double* a, const double* chi2,
                           const double* lnp, double thr) const {
        ChunkSummary cs;
        const std::size_t n = chunk_size(chunk), p0 = first_pair(chunk);
        for (std::size_t q = 0; q < n; ++q) {
            if (!(lnp[q] > kNegInf)) continue;
            if (chi2[q] < cs.min_chi2) {
                cs.min_chi2 = chi2[q];
                cs.arg_chi2 = p0 + q;
                cs.a_chi2 = a[q];
            }
            if (chi2[q] > thr) continue;
            ++cs.n_valid;
            if (lnp[q] > cs.max_lnp) {
                cs.max_lnp = lnp[q];
                cs.arg_lnp = p0 + q;
                cs.a_lnp = a[q];
            }
        }
        return cs;
    }

    // Weighted sums of one chunk relative to `ref`, ranges, and its significant pairs.
    void accumulate(std::size_t chunk, const double* a, const double* chi2, const double* lnp,
                    double thr, double lnp_max, const std::vector<double>& ref,
                    ChunkPartial& part) const {
        const std::size_t ns = sh_.nstat;
        const std::size_t n = chunk_size(chunk), p0 = first_pair(chunk);
        part.sum_w = 0.0;
        part.s1.assign(ns, 0.0);
        part.s2.assign(ns, 0.0);
        part.lo.assign(ns, std::numeric_limits<double>::infinity());
        part.hi.assign(ns, -std::numeric_limits<double>::infinity());
        part.significant.clear();
        part.weight.clear();
        part.log_a.clear();
        for (std::size_t q = 0; q < n; ++q) {
            if (chi2[q] > thr) continue;
            const double dl = lnp[q] - lnp_max;
            if (!(dl > kNegligible)) continue;
            const double w = std::exp(dl);
            const double la = std::log10(a[q]);
            const std::size_t pair = p0 + q;
            part.sum_w += w;
            part.significant.push_back(pair);
            part.weight.push_back(w);
            part.log_a.push_back(la);
            for (std::size_t k = 0; k < ns; ++k) {
                const double x = stat_value(pair, k, la);
                const double dx = x - ref[k];
                part.s1[k] += w * dx;
                part.s2[k] += w * dx * dx;
                if (dl > kHistFloor) {
                    part.lo[k] = std::min(part.lo[k], x);
                    part.hi[k] = std::max(part.hi[k], x);
                }
            }
        }
    }

    // Pass 1 for a block of SEDs, chunk by chunk (each chunk of model fluxes is read from
    // memory once for the whole block). Keeps per-chunk summaries only; with a chi2 cut the
    // chi2 and ln p of every pair are kept too (the cut needs their distribution).
    void pass1_block(std::size_t s0, std::size_t nblock, std::vector<SedWork>& work) const {
        std::vector<SedTerms> terms(nblock);
        for (std::size_t q = 0; q < nblock; ++q) terms[q] = sed_terms(s0 + q);
        const std::size_t nchunks = sh_.nchunks_per_z * in_.nz;
        ChunkBuffers buf;
        for (std::size_t c = 0; c < nchunks; ++c) {
            for (std::size_t q = 0; q < nblock; ++q) {
                SedWork& wk = work[q];
                pass1(terms[q], s0 + q, c, buf.a, buf.chi2, buf.lnp);
                wk.summary[c] = summarize(c, buf.a, buf.chi2, buf.lnp, kInf);
                if (keep_pairs()) wk.store(c, first_pair(c), chunk_size(c), buf);
            }
        }
    }

    bool keep_pairs() const { return opt_.perc_chi2 < 100.0; }

    void pass1_parallel(std::size_t s, SedWork& wk, int nt) const {
        const SedTerms st = sed_terms(s);
        const std::int64_t nck = static_cast<std::int64_t>(sh_.nchunks_per_z * in_.nz);
#pragma omp parallel for num_threads(nt) schedule(static)
        for (std::int64_t ci = 0; ci < nck; ++ci) {
            const std::size_t c = static_cast<std::size_t>(ci);
            ChunkBuffers buf;
            pass1(st, s, c, buf.a, buf.chi2, buf.lnp);
            wk.summary[c] = summarize(c, buf.a, buf.chi2, buf.lnp, kInf);
            if (keep_pairs()) wk.store(c, first_pair(c), chunk_size(c), buf);
        }
    }

    // Everything after pass 1 for SED s.
    void finish_sed(std::size_t s, SedWork& wk) const {
        const std::size_t nchunks = sh_.nchunks_per_z * in_.nz;
        const std::int64_t nck = static_cast<std::int64_t>(nchunks);
        // Minimum chi2 over the pairs the priors allow (first index on ties).
        ChunkSummary best;
        for (const ChunkSummary& cs : wk.summary) {
            if (cs.min_chi2 < best.min_chi2) best = cs;
        }
        double thr = kInf;
        if (keep_pairs() && best.min_chi2 < kInf) {
            // numpy's linear interpolation between order statistics of the allowed pairs
            wk.scratch.clear();
            for (std::size_t p = 0; p < sh_.npairs; ++p) {
                if (wk.lnp[p] > kNegInf) wk.scratch.push_back(wk.chi2[p]);
            }
            const double pos =
                opt_.perc_chi2 / 100.0 * static_cast<double>(wk.scratch.size() - 1);
            const std::size_t lo = static_cast<std::size_t>(std::floor(pos));
            std::nth_element(wk.scratch.begin(), wk.scratch.begin() + lo, wk.scratch.end());
            thr = wk.scratch[lo];
            if (lo + 1 < wk.scratch.size()) {
                const double next =
                    *std::min_element(wk.scratch.begin() + lo + 1, wk.scratch.end());
                thr = thr + (pos - static_cast<double>(lo)) * (next - thr);
            }
            for (std::size_t c = 0; c < nchunks; ++c) {
                const std::size_t p0 = first_pair(c);
                wk.summary[c] = summarize(c, wk.a.data() + p0, wk.chi2.data() + p0,
                                          wk.lnp.data() + p0, thr);
            }
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
        std::vector<double> ref(ns);
        const double la_ref = std::log10(top.a_lnp);
        for (std::size_t k = 0; k < ns; ++k) ref[k] = stat_value(top.arg_lnp, k, la_ref);
        // Pass 2: only chunks that hold a non-negligible weight are evaluated again (few:
        // sequential).
        const SedTerms st = sed_terms(s);
        for (std::int64_t ci = 0; ci < nck; ++ci) {
            const std::size_t c = static_cast<std::size_t>(ci);
            ChunkPartial& part = wk.parts[c];
            if (!(wk.summary[c].max_lnp - lnp_max > kNegligible)) {
                part.clear();
                continue;
            }
            if (keep_pairs()) {
                const std::size_t p0 = first_pair(c);
                accumulate(c, wk.a.data() + p0, wk.chi2.data() + p0, wk.lnp.data() + p0, thr,
                           lnp_max, ref, part);
            } else {
                ChunkBuffers buf;
                pass1(st, s, c, buf.a, buf.chi2, buf.lnp);
                accumulate(c, buf.a, buf.chi2, buf.lnp, thr, lnp_max, ref, part);
            }
        }
        double sum_w = 0.0;
        std::vector<double> s1(ns, 0.0), s2(ns, 0.0);
        std::vector<double> lo(ns, kInf), hi(ns, -kInf);
        for (std::size_t c = 0; c < nchunks; ++c) {
            const ChunkPartial& pc = wk.parts[c];
            if (pc.significant.empty()) continue;
            sum_w += pc.sum_w;
            for (std::size_t k = 0; k < ns; ++k) {
                s1[k] += pc.s1[k];
                s2[k] += pc.s2[k];
                lo[k] = std::min(lo[k], pc.lo[k]);
                hi[k] = std::max(hi[k], pc.hi[k]);
            }
        }
        out_.n_used[s] = static_cast<std::int64_t>(n_used);
        out_.ln_evidence[s] = lnp_max + std::log(sum_w) - std::log(static_cast<double>(sh_.npairs));
        for (std::size_t k = 0; k < ns; ++k) {
            const double m1 = s1[k] / sum_w;
            mean[k] = ref[k] + m1;
            sd[k] = std::sqrt(std::max(0.0, s2[k] / sum_w - m1 * m1));
        }
        // Weighted histograms for the percentiles, in pair order (deterministic).
        const std::size_t nh = opt_.nhist;
        std::vector<double> hist(ns * nh, 0.0);
        for (std::size_t c = 0; c < nchunks; ++c) {
            const ChunkPartial& pc = wk.parts[c];
            for (std::size_t j = 0; j < pc.significant.size(); ++j) {
                const std::size_t pair = pc.significant[j];
                const double w = pc.weight[j];
                const double la = pc.log_a[j];
                if (out_.weights) out_.weights[s * sh_.npairs + pair] = static_cast<float>(w / sum_w);
                if (out_.z_posterior) out_.z_posterior[s * in_.nz + pair / in_.nmod] += w / sum_w;
                for (std::size_t k = 0; k < ns; ++k) {
                    if (!(hi[k] > lo[k])) continue;
                    const double x = stat_value(pair, k, la);
                    const double u = (x - lo[k]) / (hi[k] - lo[k]) * static_cast<double>(nh);
                    std::size_t b = u <= 0.0 ? 0 : static_cast<std::size_t>(u);
                    if (b >= nh) b = nh - 1;
                    hist[k * nh + b] += w;
                }
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
            const double* hk = hist.data() + k * nh;
            const double total = std::accumulate(hk, hk + nh, 0.0);
            const double width = (hi[k] - lo[k]) / static_cast<double>(nh);
            for (int qi = 0; qi < 3; ++qi) {
                const double target = qs[qi] * total;
                double cum = 0.0;
                std::size_t j = 0;
                for (; j < nh; ++j) {
                    if (cum + hk[j] >= target) break;
                    cum += hk[j];
                }
                if (j >= nh) j = nh - 1;
                const double frac = hk[j] > 0.0 ? (target - cum) / hk[j] : 0.5;
                outs[qi][k] = lo[k] + (static_cast<double>(j) + frac) * width;
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
    require(opt.likelihood == 0 || opt.likelihood == 1, "rdsps_fit: likelihood must be 0 or 1");
    require(opt.likelihood == 0 || opt.dof > 0.0, "rdsps_fit: dof must be > 0");
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

void rdsps_fit(const RdspsInputs& in, const RdspsOptions& opt, const RdspsOutputs& out) {
    check_inputs(in, opt, out);
    Shared sh;
    sh.npairs = in.nmod * in.nz;
    sh.nstat = in.npar + (in.nz > 1 ? 1 : 0);
    sh.nchunks_per_z = (in.nmod + kChunk - 1) / kChunk;
    if (opt.likelihood == 1) {
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
        // Blocks of SEDs share each pass over the model fluxes; one thread per block.
        const std::size_t block = std::max<std::size_t>(
            1, std::min<std::size_t>(kSedBlock, (in.nsed + nt - 1) / static_cast<std::size_t>(nt)));
        const std::int64_t nblocks = static_cast<std::int64_t>((in.nsed + block - 1) / block);
#pragma omp parallel num_threads(nt)
        {
            std::vector<SedWork> work(block, SedWork(nchunks, sh.npairs, keep));
#pragma omp for schedule(dynamic, 1)
            for (std::int64_t ib = 0; ib < nblocks; ++ib) {
                const std::size_t s0 = static_cast<std::size_t>(ib) * block;
                const std::size_t nb = std::min(block, in.nsed - s0);
                fitter.pass1_block(s0, nb, work);
                for (std::size_t q = 0; q < nb; ++q) fitter.finish_sed(s0 + q, work[q]);
            }
        }
    } else {
        SedWork work(nchunks, sh.npairs, keep);
        for (std::size_t s = 0; s < in.nsed; ++s) {
            fitter.pass1_parallel(s, work, nt);
            fitter.finish_sed(s, work);
        }
    }
}

}  // namespace pixedfit
