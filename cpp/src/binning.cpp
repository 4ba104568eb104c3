#include "pixedfit/binning.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "pixedfit/common.hpp"

namespace pixedfit {

namespace {

// Offsets (dy, dx) around a seed sorted by distance, built lazily up to a radius.
class OffsetTable {
public:
    void ensure(double radius) {
        if (radius <= built_) return;
        const double target = std::max(radius + 2.0, 2.0 * built_);
        const long r = static_cast<long>(std::ceil(target)) + 1;
        dy_.clear();
        dx_.clear();
        d_.clear();
        std::vector<std::int64_t> d2;
        for (long y = -r; y <= r; ++y) {
            for (long x = -r; x <= r; ++x) {
                const std::int64_t q = y * y + x * x;
                if (static_cast<double>(q) <= target * target) {
                    dy_.push_back(static_cast<int>(y));
                    dx_.push_back(static_cast<int>(x));
                    d2.push_back(q);
                }
            }
        }
        std::vector<std::size_t> idx(d2.size());
        std::iota(idx.begin(), idx.end(), 0);
        std::stable_sort(idx.begin(), idx.end(),
                         [&](std::size_t a, std::size_t b) { return d2[a] < d2[b]; });
        std::vector<int> ty(idx.size()), tx(idx.size());
        d_.resize(idx.size());
        for (std::size_t i = 0; i < idx.size(); ++i) {
            ty[i] = dy_[idx[i]];
            tx[i] = dx_[idx[i]];
            d_[i] = std::sqrt(static_cast<double>(d2[idx[i]]));
        }
        dy_.swap(ty);
        dx_.swap(tx);
        built_ = target;
    }
    // Index range [lo, hi) of the offsets with rmin < d <= rmax (rmin < 0: d >= 0).
    std::pair<std::size_t, std::size_t> slice(double rmin, double rmax) {
        ensure(rmax);
        const auto hi = std::upper_bound(d_.begin(), d_.end(), rmax) - d_.begin();
        const auto lo = rmin < 0 ? 0 : std::upper_bound(d_.begin(), d_.end(), rmin) - d_.begin();
        return {static_cast<std::size_t>(lo), static_cast<std::size_t>(std::max(lo, hi))};
    }
    int dy(std::size_t i) const { return dy_[i]; }
    int dx(std::size_t i) const { return dx_[i]; }

private:
    double built_ = -1.0;
    std::vector<int> dy_, dx_;
    std::vector<double> d_;
};

enum : std::uint8_t { kFree = 0, kBinned = 1 };

// The 4 neighbours (sharing a side) that define connectivity.
constexpr long kNy[4] = {-1, 0, 0, 1};
constexpr long kNx[4] = {0, -1, 1, 0};

// Smallest number of array elements for which the O(N) loops run multi-threaded.
constexpr std::size_t kParallelMin = std::size_t{1} << 20;
enum : std::uint8_t { kAccepted = 1, kPending = 2, kRejected = 3 };

}  // namespace

double shape_reduced_chi2(const double* f1, const double* s1, const double* f2,
                          const double* s2, std::size_t n) {
    double num = 0.0, den = 0.0;
    for (std::size_t b = 0; b < n; ++b) {
        const double var = s1[b] * s1[b] + s2[b] * s2[b];
        num += f2[b] * f1[b] / var;
        den += f1[b] * f1[b] / var;
    }
    const double a = den > 0.0 ? num / den : 0.0;
    double chi2 = 0.0;
    for (std::size_t b = 0; b < n; ++b) {
        const double var = s1[b] * s1[b] + s2[b] * s2[b];
        const double r = f2[b] - a * f1[b];
        chi2 += r * r / var;
    }
    return chi2 / static_cast<double>(n);
}

BinningResult bin_pixels(const double* flux, const double* err, const std::uint8_t* region,
                         std::size_t nbands, std::size_t ny, std::size_t nx, std::size_t ref_band,
                         const double* snr, const BinningParams& params, int threads) {
    require(nbands > 0 && ny > 0 && nx > 0, "bin_pixels: empty cube");
    require(ref_band < nbands, "bin_pixels: ref_band out of range");
    require(params.del_r > 0.0 && std::isfinite(params.del_r), "bin_pixels: del_r must be > 0");
    require(params.r_first >= 0.0 && std::isfinite(params.r_first),
            "bin_pixels: r_first must be >= 0");
    require(params.sys_factor >= 0.0 && std::isfinite(params.sys_factor),
            "bin_pixels: sys_factor must be >= 0");
    require(!std::isnan(params.chi2_limit), "bin_pixels: chi2_limit is NaN");
    const bool corr = !params.rho.empty();
    const std::size_t rh = params.rho_half, rw = 2 * params.rho_half + 1;
    require(!corr || params.rho.size() == nbands * rw * rw,
            "bin_pixels: rho must be (nbands, 2 rho_half + 1, 2 rho_half + 1)");
    // Per band, sum |rho|: the bound of (variance of a sum) / (sum of variances).
    std::vector<double> vf(nbands, 1.0);
    if (corr) {
        for (std::size_t b = 0; b < nbands; ++b) {
            double t = 0.0;
            for (std::size_t i = 0; i < rw * rw; ++i) {
                const double v = params.rho[b * rw * rw + i];
                require(std::isfinite(v) && std::fabs(v) <= 1.0 + 1e-9,
                        "bin_pixels: rho must be finite with |rho| <= 1");
                t += std::fabs(v);
            }
            require(std::fabs(params.rho[b * rw * rw + rh * rw + rh] - 1.0) < 1e-6,
                    "bin_pixels: rho(0, 0) must be 1");
            vf[b] = t;
        }
    }
    const int nthreads = resolve_threads(threads);
    const std::size_t npix = ny * nx;
    const std::size_t nb = nbands;

    // Region pixels in row-major order and the map pixel -> region index.
    std::vector<std::int64_t> ridx(npix, -1);
    std::vector<std::int64_t> pix_of;
    for (std::size_t p = 0; p < npix; ++p) {
        if (region[p]) {
            ridx[p] = static_cast<std::int64_t>(pix_of.size());
            pix_of.push_back(static_cast<std::int64_t>(p));
        }
    }
    const std::size_t nreg = pix_of.size();
    BinningResult res;
    res.bin_map.assign(npix, 0);
    res.pixel_chi2.assign(npix, std::numeric_limits<double>::quiet_NaN());
    if (nreg == 0) return res;

    // Pixel-major copies: flux, err^2 and the shape-test sigma sqrt(err^2 + (k f)^2).
    std::vector<double> F(nreg * nb), V(nreg * nb), S(nreg * nb);
    const double k = params.sys_factor;
    // Threads only pay for large cubes (a parallel region costs more than small copies).
    ParallelErrors errors;  // no exception may leave the parallel region
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nreg * nb > kParallelMin)
    for (std::int64_t r = 0; r < static_cast<std::int64_t>(nreg); ++r) {
        if (errors.failed()) continue;
        errors.run(r, [&] {
            const std::size_t p = static_cast<std::size_t>(pix_of[r]);
            for (std::size_t b = 0; b < nb; ++b) {
                const double f = flux[b * npix + p];
                const double e = err[b * npix + p];
                F[r * nb + b] = f;
                V[r * nb + b] = e * e;
                S[r * nb + b] = std::sqrt(e * e + (k * f) * (k * f));
            }
        });
    }
    errors.rethrow();

    // Seed order: decreasing reference flux, ties by row-major index.
    std::vector<std::pair<double, std::int64_t>> keyed(nreg);
    for (std::size_t r = 0; r < nreg; ++r) {
        keyed[r] = {-F[r * nb + ref_band], static_cast<std::int64_t>(r)};
    }
    std::sort(keyed.begin(), keyed.end());  // (-flux, index): unique keys, deterministic
    std::vector<std::int64_t> order(nreg);
    for (std::size_t r = 0; r < nreg; ++r) order[r] = keyed[r].second;
    std::vector<std::pair<double, std::int64_t>>().swap(keyed);

    // Region bounding box (for the farthest-corner stop).
    long ymin = static_cast<long>(ny), ymax = -1, xmin = static_cast<long>(nx), xmax = -1;
    for (std::size_t r = 0; r < nreg; ++r) {
        const long y = static_cast<long>(pix_of[r] / static_cast<std::int64_t>(nx));
        const long x = static_cast<long>(pix_of[r] % static_cast<std::int64_t>(nx));
        ymin = std::min(ymin, y);
        ymax = std::max(ymax, y);
        xmin = std::min(xmin, x);
        xmax = std::max(xmax, x);
    }

    std::vector<std::uint8_t> state(nreg, kFree);
    std::vector<std::uint8_t> no_seed(nreg, 0);  // members of a failed growth: never seeds
    std::vector<std::int32_t> mark_id(nreg, 0);
    std::vector<std::uint8_t> mark(nreg, 0);
    std::vector<double> chi_of(nreg, std::numeric_limits<double>::quiet_NaN());

    // Remaining (free) totals, extended precision to limit drift of the running sums.
    // (With correlated noise Vrem is the bound sum|rho| sum err^2.)
    std::vector<long double> Frem(nb, 0.0L), Vrem(nb, 0.0L);
    for (std::size_t r = 0; r < nreg; ++r) {
        for (std::size_t b = 0; b < nb; ++b) {
            Frem[b] += F[r * nb + b];
            Vrem[b] += V[r * nb + b] * vf[b];
        }
    }
    // Correlated noise: add to out[b] the covariance terms 2 rho(r - q) s_r s_q of pixel r
    // with the pixels q for which member(q) holds.
    const long lh = static_cast<long>(rh);
    auto add_covariance = [&](std::int64_t r, auto member, double* out) {
        const long y = static_cast<long>(pix_of[r] / static_cast<std::int64_t>(nx));
        const long x = static_cast<long>(pix_of[r] % static_cast<std::int64_t>(nx));
        for (long dy = -lh; dy <= lh; ++dy) {
            const long yy = y + dy;
            if (yy < 0 || yy >= static_cast<long>(ny)) continue;
            for (long dx = -lh; dx <= lh; ++dx) {
                const long xx = x + dx;
                if ((dy == 0 && dx == 0) || xx < 0 || xx >= static_cast<long>(nx)) continue;
                const std::int64_t q = ridx[yy * static_cast<long>(nx) + xx];
                if (q < 0 || !member(q)) continue;
                const std::size_t lag = static_cast<std::size_t>((dy + lh) * static_cast<long>(rw) + dx + lh);
                for (std::size_t b = 0; b < nb; ++b) {
                    out[b] += 2.0 * params.rho[b * rw * rw + lag] *
                              std::sqrt(V[r * nb + b] * V[q * nb + b]);
                }
            }
        }
    };
    std::vector<std::int32_t> added_id(corr ? nreg : 0, 0);  // attempt that summed a pixel

    auto passes = [&](const double* tf, const double* tv) {
        for (std::size_t b = 0; b < nb; ++b) {
            if (snr[b] > 0.0 && !(tf[b] / std::sqrt(tv[b]) - snr[b] >= 0.0)) return false;
        }
        return true;
    };
    auto remove_from_remaining = [&](std::int64_t r) {
        for (std::size_t b = 0; b < nb; ++b) {
            Frem[b] -= F[r * nb + b];
            Vrem[b] -= V[r * nb + b] * vf[b];
        }
    };

    OffsetTable table;
    std::vector<std::int64_t> acc, step_acc, pending_new, queue;
    std::vector<double> tf(nb), tv(nb), sf(nb), sv(nb), remf(nb), remv(nb);
    std::int32_t attempt = 0;
    std::size_t cursor = 0;
    bool dumped = false;
    const long lny = static_cast<long>(ny), lnx = static_cast<long>(nx);

    while (!dumped) {
        while (cursor < nreg && (state[order[cursor]] != kFree || no_seed[order[cursor]])) {
            ++cursor;
        }
        if (cursor == nreg) break;
        const std::int64_t seed = order[cursor];
        const long yc = static_cast<long>(pix_of[seed] / static_cast<std::int64_t>(nx));
        const long xc = static_cast<long>(pix_of[seed] % static_cast<std::int64_t>(nx));
        const double* fs = &F[seed * nb];
        const double* ss = &S[seed * nb];
        ++attempt;
        acc.clear();
        queue.clear();
        std::fill(tf.begin(), tf.end(), 0.0);
        std::fill(tv.begin(), tv.end(), 0.0);
        double maxd = 0.0;
        const double rfar = std::sqrt(static_cast<double>(
            std::max((yc - ymin) * (yc - ymin), (ymax - yc) * (ymax - yc)) +
            std::max((xc - xmin) * (xc - xmin), (xmax - xc) * (xmax - xc))));

        auto accept = [&](std::int64_t r) {
            mark[r] = kAccepted;
            acc.push_back(r);
            step_acc.push_back(r);
            const long y = static_cast<long>(pix_of[r] / static_cast<std::int64_t>(nx));
            const long x = static_cast<long>(pix_of[r] % static_cast<std::int64_t>(nx));
            maxd = std::max(maxd, std::sqrt(static_cast<double>((y - yc) * (y - yc) +
                                                                (x - xc) * (x - xc))));
            if (params.connected) queue.push_back(r);
        };
        auto accepted_neighbour = [&](std::int64_t r) {
            const long y = static_cast<long>(pix_of[r] / static_cast<std::int64_t>(nx));
            const long x = static_cast<long>(pix_of[r] % static_cast<std::int64_t>(nx));
            for (int j = 0; j < 4; ++j) {
                const long yy = y + kNy[j], xx = x + kNx[j];
                if (yy < 0 || yy >= lny || xx < 0 || xx >= lnx) continue;
                const std::int64_t q = ridx[yy * lnx + xx];
                if (q >= 0 && mark_id[q] == attempt && mark[q] == kAccepted) return true;
            }
            return false;
        };
        // One growth step: candidates in (rmin, rmax], shape test, acceptance; the step's
        // accepted pixels are summed in row-major order and added to the totals.
        auto step = [&](double rmin, double rmax, bool test_shape) {
            step_acc.clear();
            pending_new.clear();
            const auto [lo, hi] = table.slice(rmin, rmax);
            for (std::size_t i = lo; i < hi; ++i) {
                const long y = yc + table.dy(i), x = xc + table.dx(i);
                if (y < 0 || y >= lny || x < 0 || x >= lnx) continue;
                const std::int64_t r = ridx[y * lnx + x];
                if (r < 0 || state[r] != kFree || mark_id[r] == attempt) continue;
                mark_id[r] = attempt;
                if (r == seed) {
                    chi_of[r] = 0.0;
                    accept(r);
                    continue;
                }
                const double chi = shape_reduced_chi2(fs, ss, &F[r * nb], &S[r * nb], nb);
                chi_of[r] = chi;
                if (test_shape && !(chi <= params.chi2_limit)) {
                    mark[r] = kRejected;
                    continue;
                }
                if (params.connected) {
                    mark[r] = kPending;
                    pending_new.push_back(r);
                } else {
                    accept(r);
                }
            }
            if (params.connected) {
                for (const std::int64_t r : pending_new) {
                    if (mark[r] == kPending && accepted_neighbour(r)) accept(r);
                }
                while (!queue.empty()) {
                    const std::int64_t r = queue.back();
                    queue.pop_back();
                    const long y = static_cast<long>(pix_of[r] / static_cast<std::int64_t>(nx));
                    const long x = static_cast<long>(pix_of[r] % static_cast<std::int64_t>(nx));
                    for (int j = 0; j < 4; ++j) {
                        const long yy = y + kNy[j], xx = x + kNx[j];
                        if (yy < 0 || yy >= lny || xx < 0 || xx >= lnx) continue;
                        const std::int64_t q = ridx[yy * lnx + xx];
                        if (q >= 0 && mark_id[q] == attempt && mark[q] == kPending) accept(q);
                    }
                }
            }
            std::sort(step_acc.begin(), step_acc.end());
            std::fill(sf.begin(), sf.end(), 0.0);
            std::fill(sv.begin(), sv.end(), 0.0);
            for (const std::int64_t r : step_acc) {
                for (std::size_t b = 0; b < nb; ++b) {
                    sf[b] += F[r * nb + b];
                    sv[b] += V[r * nb + b];
                }
                if (corr) {  // covariance with the members summed before it
                    add_covariance(r, [&](std::int64_t q) { return added_id[q] == attempt; },
                                   sv.data());
                    added_id[r] = attempt;
                }
            }
            for (std::size_t b = 0; b < nb; ++b) {
                tf[b] += sf[b];
                tv[b] += sv[b];
            }
        };

        double radius = params.r_first;
        step(-1.0, radius, params.shape_test_first_circle);
        bool closed = passes(tf.data(), tv.data());
        bool failed = false;
        while (!closed) {
            if ((params.max_radius > 0.0 && radius >= params.max_radius) || radius > rfar ||
                (params.connected && maxd + 1.5 < radius)) {  // neighbours are 1 apart
                failed = true;
                break;
            }
            step(radius, radius + params.del_r, true);
            radius = radius + params.del_r;
            if (passes(tf.data(), tv.data())) {
                closed = true;
                break;
            }
            for (std::size_t b = 0; b < nb; ++b) {
                remf[b] = static_cast<double>(Frem[b]);
                remv[b] = static_cast<double>(Vrem[b]);
            }
            if (!passes(remf.data(), remv.data())) {
                dumped = true;
                break;
            }
        }
        if (closed) {
            const std::int32_t id = ++res.nbins;
            for (const std::int64_t r : acc) {
                state[r] = kBinned;
                res.bin_map[pix_of[r]] = id;
                res.pixel_chi2[pix_of[r]] = chi_of[r];
                remove_from_remaining(r);
            }
            res.bin_flux.insert(res.bin_flux.end(), tf.begin(), tf.end());
            res.bin_var.insert(res.bin_var.end(), tv.begin(), tv.end());
            res.seed.push_back(pix_of[seed]);
        } else if (failed) {
            // The pixels stay available to later bins but never seed one again.
            ++res.n_failed_seeds;
            for (const std::int64_t r : acc) no_seed[r] = 1;
        }
    }

    // Absorption: a free pixel touching a bin joins it when it passes the shape test
    // against that bin's seed and the bin still meets the S/N target with it (the most
    // similar such bin wins, ties to the lower id). Free neighbours of an absorbed pixel are
    // examined again. Every invariant of the bins is kept.
    if (params.absorb_leftover && res.nbins > 0) {
        std::vector<std::int64_t> seed_r(res.nbins);
        for (std::int32_t id = 0; id < res.nbins; ++id) seed_r[id] = ridx[res.seed[id]];
        std::vector<std::uint8_t> queued(nreg, 0);
        std::vector<std::int64_t> work;
        for (std::size_t r = 0; r < nreg; ++r) {
            if (state[r] == kFree) {
                work.push_back(static_cast<std::int64_t>(r));
                queued[r] = 1;
            }
        }
        std::vector<double> nf(nb), nv(nb), best_v(nb);
        for (std::size_t head = 0; head < work.size(); ++head) {
            const std::int64_t r = work[head];
            queued[r] = 0;
            if (state[r] != kFree) continue;
            const long y = static_cast<long>(pix_of[r] / static_cast<std::int64_t>(nx));
            const long x = static_cast<long>(pix_of[r] % static_cast<std::int64_t>(nx));
            std::int32_t best = 0;
            double best_chi = 0.0;
            for (int j = 0; j < 4; ++j) {
                const long yy = y + kNy[j], xx = x + kNx[j];
                if (yy < 0 || yy >= lny || xx < 0 || xx >= lnx) continue;
                const std::int32_t id = res.bin_map[yy * lnx + xx];
                if (id <= 0 || id == best) continue;
                const std::int64_t sr = seed_r[id - 1];
                const double chi =
                    shape_reduced_chi2(&F[sr * nb], &S[sr * nb], &F[r * nb], &S[r * nb], nb);
                if (!(chi <= params.chi2_limit)) continue;
                if (best != 0 && !(chi < best_chi || (chi == best_chi && id < best))) continue;
                for (std::size_t b = 0; b < nb; ++b) {
                    nf[b] = res.bin_flux[(id - 1) * nb + b] + F[r * nb + b];
                    nv[b] = res.bin_var[(id - 1) * nb + b] + V[r * nb + b];
                }
                if (corr) {
                    add_covariance(r, [&](std::int64_t q) {
                        return res.bin_map[pix_of[q]] == id;
                    }, nv.data());
                }
                if (!passes(nf.data(), nv.data())) continue;
                std::copy(nv.begin(), nv.end(), best_v.begin());
                best = id;
                best_chi = chi;
            }
            if (best == 0) continue;
            for (std::size_t b = 0; b < nb; ++b) {
                res.bin_flux[(best - 1) * nb + b] += F[r * nb + b];
                res.bin_var[(best - 1) * nb + b] = best_v[b];
            }
            state[r] = kBinned;
            res.bin_map[pix_of[r]] = best;
            res.pixel_chi2[pix_of[r]] = best_chi;
            ++res.n_absorbed;
            for (int j = 0; j < 4; ++j) {
                const long yy = y + kNy[j], xx = x + kNx[j];
                if (yy < 0 || yy >= lny || xx < 0 || xx >= lnx) continue;
                const std::int64_t q = ridx[yy * lnx + xx];
                if (q >= 0 && state[q] == kFree && !queued[q]) {
                    queued[q] = 1;
                    work.push_back(q);
                }
            }
        }
    }

    // The leftover bin: every pixel still free (members of failed growths never absorbed
    // by a later bin, and all free pixels once the global rule fired).
    bool any_left = false;
    for (std::size_t r = 0; r < nreg; ++r) {
        if (state[r] != kBinned) {
            any_left = true;
            break;
        }
    }
    if (any_left) {
        const std::int32_t id = ++res.nbins;
        std::vector<double> lf(nb, 0.0), lv(nb, 0.0);
        for (std::size_t r = 0; r < nreg; ++r) {
            if (state[r] == kBinned) continue;
            state[r] = kBinned;
            res.bin_map[pix_of[r]] = id;
            for (std::size_t b = 0; b < nb; ++b) {
                lf[b] += F[r * nb + b];
                lv[b] += V[r * nb + b];
            }
        }
        res.bin_flux.insert(res.bin_flux.end(), lf.begin(), lf.end());
        res.bin_var.insert(res.bin_var.end(), lv.begin(), lv.end());
        res.seed.push_back(-1);
        res.has_leftover = true;
    }
    return res;
}

std::vector<double> bin_sums(const double* values, std::size_t nplanes, std::size_t ny,
                             std::size_t nx, const std::int32_t* bin_map, std::int32_t nbins,
                             bool quadrature, int threads) {
    require(nbins >= 0, "bin_sums: nbins must be >= 0");
    const std::size_t npix = ny * nx;
    for (std::size_t p = 0; p < npix; ++p) {
        require(bin_map[p] >= 0 && bin_map[p] <= nbins, "bin_sums: bin id out of range");
    }
    const int nthreads = resolve_threads(threads);
    const auto nbin = static_cast<std::size_t>(nbins);
    std::vector<double> out(nplanes * nbin, 0.0);
    ParallelErrors errors;  // no exception may leave the parallel region
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads) \
    if (nplanes * npix > kParallelMin)
    for (std::int64_t w = 0; w < static_cast<std::int64_t>(nplanes); ++w) {
        if (errors.failed()) continue;
        errors.run(w, [&] {
            const double* plane = values + static_cast<std::size_t>(w) * npix;
            double* o = out.data() + static_cast<std::size_t>(w) * nbin;
            for (std::size_t p = 0; p < npix; ++p) {
                const std::int32_t id = bin_map[p];
                if (id == 0) continue;
                const double v = plane[p];
                o[id - 1] += quadrature ? v * v : v;  // NaN / inf propagate
            }
            if (quadrature) {
                for (std::size_t kb = 0; kb < nbin; ++kb) o[kb] = std::sqrt(o[kb]);
            }
            for (std::size_t kb = 0; kb < nbin; ++kb) {
                if (!std::isfinite(o[kb])) o[kb] = std::numeric_limits<double>::quiet_NaN();
            }
        });
    }
    errors.rethrow();
    return out;
}

}  // namespace pixedfit
