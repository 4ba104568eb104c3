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

namespace {

// Per band, sum |rho| over the lags: the bound of (variance of a sum of pixels) / (sum of
// their variances) with correlated noise; 1 per band without. Checks rho (see
// BinningParams: (nbands, 2 rho_half + 1, 2 rho_half + 1), finite, |rho| <= 1, rho(0, 0) = 1).
std::vector<double> variance_bounds(const BinningParams& params, std::size_t nbands) {
    const std::size_t rh = params.rho_half, rw = 2 * params.rho_half + 1;
    require(params.rho.empty() || params.rho.size() == nbands * rw * rw,
            "bin_pixels: rho must be (nbands, 2 rho_half + 1, 2 rho_half + 1)");
    std::vector<double> vf(nbands, 1.0);
    if (params.rho.empty()) return vf;
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
    return vf;
}

// One run of the binning (see binning.hpp for the algorithm). The region's pixels are
// numbered r = 0..nreg-1 in row-major order (pix_of_[r]: flat pixel index y * nx + x;
// ridx_[p]: r of pixel p, -1 outside the region); per-pixel data are pixel-major, band
// fastest: F_ flux, V_ err^2, S_ the shape-test sigma sqrt(err^2 + (sys_factor flux)^2),
// each (nreg, nbands). run() does the steps in order: growth of bins from seeds, absorption
// of free pixels, the leftover bin.
class PixelBinner {
public:
    // flux, err (nbands, ny, nx) and region (ny, nx) as bin_pixels takes them; vf from
    // variance_bounds; the arguments are checked already.
    PixelBinner(const double* flux, const double* err, const std::uint8_t* region,
                 std::size_t nbands, std::size_t ny, std::size_t nx, std::size_t ref_band,
                 const double* snr, const BinningParams& params, std::vector<double> vf,
                 int nthreads)
        : snr_(snr), params_(params), nb_(nbands), ny_(ny), nx_(nx),
          lny_(static_cast<long>(ny)), lnx_(static_cast<long>(nx)), ref_band_(ref_band),
          nthreads_(nthreads), corr_(!params.rho.empty()), rw_(2 * params.rho_half + 1),
          lh_(static_cast<long>(params.rho_half)), vf_(std::move(vf)) {
        index_region(region);
        res_.bin_map.assign(ny * nx, 0);
        res_.pixel_chi2.assign(ny * nx, std::numeric_limits<double>::quiet_NaN());
        if (nreg_ > 0) copy_pixels(flux, err);
    }

    BinningResult run() {
        if (nreg_ == 0) return std::move(res_);
        order_seeds();
        bounding_box();
        init_state();
        grow_bins();
        if (params_.absorb_leftover && res_.nbins > 0) absorb_free_pixels();
        make_leftover_bin();
        return std::move(res_);
    }

private:
    enum class Growth { kClosed, kFailed, kDumped };

    long y_of(std::int64_t r) const {
        return static_cast<long>(pix_of_[r] / static_cast<std::int64_t>(nx_));
    }
    long x_of(std::int64_t r) const {
        return static_cast<long>(pix_of_[r] % static_cast<std::int64_t>(nx_));
    }
    // Flat index of the j-th side neighbour (kNy[j], kNx[j]) of pixel (y, x), -1 if outside
    // the image.
    long neighbour(long y, long x, int j) const {
        const long yy = y + kNy[j], xx = x + kNx[j];
        if (yy < 0 || yy >= lny_ || xx < 0 || xx >= lnx_) return -1;
        return yy * lnx_ + xx;
    }

    // ridx_ and pix_of_ from the region mask.
    void index_region(const std::uint8_t* region) {
        const std::size_t npix = ny_ * nx_;
        ridx_.assign(npix, -1);
        for (std::size_t p = 0; p < npix; ++p) {
            if (region[p]) {
                ridx_[p] = static_cast<std::int64_t>(pix_of_.size());
                pix_of_.push_back(static_cast<std::int64_t>(p));
            }
        }
        nreg_ = pix_of_.size();
    }

    // F_, V_, S_ from the (nbands, ny, nx) cubes. Threads only pay for large cubes (a
    // parallel region costs more than small copies).
    void copy_pixels(const double* flux, const double* err) {
        const std::size_t npix = ny_ * nx_, nb = nb_;
        F_.resize(nreg_ * nb);
        V_.resize(nreg_ * nb);
        S_.resize(nreg_ * nb);
        const double k = params_.sys_factor;
        ParallelErrors errors;  // no exception may leave the parallel region
#pragma omp parallel for schedule(static) num_threads(nthreads_) if (nreg_ * nb > kParallelMin)
        for (std::int64_t r = 0; r < static_cast<std::int64_t>(nreg_); ++r) {
            if (errors.failed()) continue;
            errors.run(r, [&] {
                const std::size_t p = static_cast<std::size_t>(pix_of_[r]);
                for (std::size_t b = 0; b < nb; ++b) {
                    const double f = flux[b * npix + p];
                    const double e = err[b * npix + p];
                    F_[r * nb + b] = f;
                    V_[r * nb + b] = e * e;
                    S_[r * nb + b] = std::sqrt(e * e + (k * f) * (k * f));
                }
            });
        }
        errors.rethrow();
    }

    // Seed order order_ (region indices): decreasing reference flux, ties by index.
    void order_seeds() {
        std::vector<std::pair<double, std::int64_t>> keyed(nreg_);
        for (std::size_t r = 0; r < nreg_; ++r) {
            keyed[r] = {-F_[r * nb_ + ref_band_], static_cast<std::int64_t>(r)};
        }
        std::sort(keyed.begin(), keyed.end());  // (-flux, index): unique keys, deterministic
        order_.resize(nreg_);
        for (std::size_t r = 0; r < nreg_; ++r) order_[r] = keyed[r].second;
    }

    // The region's bounding box (pixels), for the farthest-corner stop.
    void bounding_box() {
        ymin_ = lny_;
        ymax_ = -1;
        xmin_ = lnx_;
        xmax_ = -1;
        for (std::size_t r = 0; r < nreg_; ++r) {
            const long y = y_of(static_cast<std::int64_t>(r));
            const long x = x_of(static_cast<std::int64_t>(r));
            ymin_ = std::min(ymin_, y);
            ymax_ = std::max(ymax_, y);
            xmin_ = std::min(xmin_, x);
            xmax_ = std::max(xmax_, x);
        }
    }

    // Every pixel free, and the totals of the free pixels: Frem_ the flux, Vrem_ the
    // variance (with correlated noise the bound sum|rho| sum err^2), per band, in extended
    // precision to limit the drift of the running sums.
    void init_state() {
        state_.assign(nreg_, kFree);
        no_seed_.assign(nreg_, 0);
        mark_id_.assign(nreg_, 0);
        mark_.assign(nreg_, 0);
        chi_of_.assign(nreg_, std::numeric_limits<double>::quiet_NaN());
        added_id_.assign(corr_ ? nreg_ : 0, 0);
        Frem_.assign(nb_, 0.0L);
        Vrem_.assign(nb_, 0.0L);
        for (std::size_t r = 0; r < nreg_; ++r) {
            for (std::size_t b = 0; b < nb_; ++b) {
                Frem_[b] += F_[r * nb_ + b];
                Vrem_[b] += V_[r * nb_ + b] * vf_[b];
            }
        }
        tf_.resize(nb_);
        tv_.resize(nb_);
        sf_.resize(nb_);
        sv_.resize(nb_);
        remf_.resize(nb_);
        remv_.resize(nb_);
    }

    // True when the sums tf (flux) and tv (variance), nbands each, meet the S/N target in
    // every band that has one.
    bool passes(const double* tf, const double* tv) const {
        for (std::size_t b = 0; b < nb_; ++b) {
            if (snr_[b] > 0.0 && !(tf[b] / std::sqrt(tv[b]) - snr_[b] >= 0.0)) return false;
        }
        return true;
    }

    // Whether all free pixels together meet the S/N target (the leftover rule).
    bool remaining_passes() {
        for (std::size_t b = 0; b < nb_; ++b) {
            remf_[b] = static_cast<double>(Frem_[b]);
            remv_[b] = static_cast<double>(Vrem_[b]);
        }
        return passes(remf_.data(), remv_.data());
    }

    // Correlated noise: add to out[b] (nbands) the covariance terms 2 rho(r - q) s_r s_q of
    // pixel r with the region pixels q within the correlation lags for which member(q).
    template <class Member>
    void add_covariance(std::int64_t r, Member member, double* out) const {
        const long y = y_of(r), x = x_of(r);
        for (long dy = -lh_; dy <= lh_; ++dy) {
            const long yy = y + dy;
            if (yy < 0 || yy >= lny_) continue;
            for (long dx = -lh_; dx <= lh_; ++dx) {
                const long xx = x + dx;
                if ((dy == 0 && dx == 0) || xx < 0 || xx >= lnx_) continue;
                const std::int64_t q = ridx_[yy * lnx_ + xx];
                if (q < 0 || !member(q)) continue;
                const std::size_t lag =
                    static_cast<std::size_t>((dy + lh_) * static_cast<long>(rw_) + dx + lh_);
                for (std::size_t b = 0; b < nb_; ++b) {
                    out[b] += 2.0 * params_.rho[b * rw_ * rw_ + lag] *
                              std::sqrt(V_[r * nb_ + b] * V_[q * nb_ + b]);
                }
            }
        }
    }

    // The growth phase: bins grown from seeds in order_ until no pixel can seed one or the
    // leftover rule ends the phase.
    void grow_bins() {
        std::size_t cursor = 0;
        while (true) {
            while (cursor < nreg_ &&
                   (state_[order_[cursor]] != kFree || no_seed_[order_[cursor]])) {
                ++cursor;
            }
            if (cursor == nreg_) return;
            const std::int64_t seed = order_[cursor];
            switch (grow(seed)) {
                case Growth::kClosed: close_bin(seed); break;
                case Growth::kFailed: fail_attempt(); break;
                case Growth::kDumped: return;
            }
        }
    }

    // One attempt from `seed`: the first circle, then rings of del_r until the bin meets the
    // S/N target (kClosed), the growth must stop (kFailed) or all free pixels together
    // fail the target (kDumped).
    Growth grow(std::int64_t seed) {
        start_attempt(seed);
        const double rfar = std::sqrt(static_cast<double>(
            std::max((yc_ - ymin_) * (yc_ - ymin_), (ymax_ - yc_) * (ymax_ - yc_)) +
            std::max((xc_ - xmin_) * (xc_ - xmin_), (xmax_ - xc_) * (xmax_ - xc_))));
        double radius = params_.r_first;
        step(-1.0, radius, params_.shape_test_first_circle);
        if (passes(tf_.data(), tv_.data())) return Growth::kClosed;
        while (true) {
            if ((params_.max_radius > 0.0 && radius >= params_.max_radius) || radius > rfar ||
                (params_.connected && maxd_ + 1.5 < radius)) {  // neighbours are 1 apart
                return Growth::kFailed;
            }
            step(radius, radius + params_.del_r, true);
            radius = radius + params_.del_r;
            if (passes(tf_.data(), tv_.data())) return Growth::kClosed;
            if (!remaining_passes()) return Growth::kDumped;
        }
    }

    // The state of a new attempt from `seed`: no pixel, zero sums.
    void start_attempt(std::int64_t seed) {
        seed_ = seed;
        yc_ = y_of(seed);
        xc_ = x_of(seed);
        ++attempt_;
        acc_.clear();
        queue_.clear();
        std::fill(tf_.begin(), tf_.end(), 0.0);
        std::fill(tv_.begin(), tv_.end(), 0.0);
        maxd_ = 0.0;
    }

    // One growth step: candidates at distances in (rmin, rmax] from the seed (rmin < 0:
    // from 0), shape test, acceptance; the step's accepted pixels are summed in row-major
    // order and added to the attempt's totals tf_, tv_.
    void step(double rmin, double rmax, bool test_shape) {
        step_acc_.clear();
        pending_new_.clear();
        examine_candidates(rmin, rmax, test_shape);
        if (params_.connected) connect_pending();
        add_step_sums();
    }

    // The free pixels of the step not yet seen in this attempt: shape test against the
    // seed, then accepted (not connected) or pending (connected).
    void examine_candidates(double rmin, double rmax, bool test_shape) {
        const double* fs = &F_[seed_ * nb_];
        const double* ss = &S_[seed_ * nb_];
        const auto [lo, hi] = table_.slice(rmin, rmax);
        for (std::size_t i = lo; i < hi; ++i) {
            const long y = yc_ + table_.dy(i), x = xc_ + table_.dx(i);
            if (y < 0 || y >= lny_ || x < 0 || x >= lnx_) continue;
            const std::int64_t r = ridx_[y * lnx_ + x];
            if (r < 0 || state_[r] != kFree || mark_id_[r] == attempt_) continue;
            mark_id_[r] = attempt_;
            if (r == seed_) {
                chi_of_[r] = 0.0;
                accept(r);
                continue;
            }
            const double chi = shape_reduced_chi2(fs, ss, &F_[r * nb_], &S_[r * nb_], nb_);
            chi_of_[r] = chi;
            if (test_shape && !(chi <= params_.chi2_limit)) {
                mark_[r] = kRejected;
                continue;
            }
            if (params_.connected) {
                mark_[r] = kPending;
                pending_new_.push_back(r);
            } else {
                accept(r);
            }
        }
    }

    // Connected bins: the step's pending pixels that touch an accepted one join, and the
    // pending pixels touching those, until none is left (flood fill through queue_).
    void connect_pending() {
        for (const std::int64_t r : pending_new_) {
            if (mark_[r] == kPending && accepted_neighbour(r)) accept(r);
        }
        while (!queue_.empty()) {
            const std::int64_t r = queue_.back();
            queue_.pop_back();
            const long y = y_of(r), x = x_of(r);
            for (int j = 0; j < 4; ++j) {
                const long p = neighbour(y, x, j);
                if (p < 0) continue;
                const std::int64_t q = ridx_[p];
                if (q >= 0 && mark_id_[q] == attempt_ && mark_[q] == kPending) accept(q);
            }
        }
    }

    // Pixel r joins the attempt.
    void accept(std::int64_t r) {
        mark_[r] = kAccepted;
        acc_.push_back(r);
        step_acc_.push_back(r);
        const long y = y_of(r), x = x_of(r);
        maxd_ = std::max(maxd_, std::sqrt(static_cast<double>((y - yc_) * (y - yc_) +
                                                              (x - xc_) * (x - xc_))));
        if (params_.connected) queue_.push_back(r);
    }

    // Whether a side neighbour of r was accepted in this attempt.
    bool accepted_neighbour(std::int64_t r) const {
        const long y = y_of(r), x = x_of(r);
        for (int j = 0; j < 4; ++j) {
            const long p = neighbour(y, x, j);
            if (p < 0) continue;
            const std::int64_t q = ridx_[p];
            if (q >= 0 && mark_id_[q] == attempt_ && mark_[q] == kAccepted) return true;
        }
        return false;
    }

    // The sums of the step's accepted pixels (row-major order; with correlated noise the
    // covariances with the members summed before each) added to tf_, tv_.
    void add_step_sums() {
        std::sort(step_acc_.begin(), step_acc_.end());
        std::fill(sf_.begin(), sf_.end(), 0.0);
        std::fill(sv_.begin(), sv_.end(), 0.0);
        for (const std::int64_t r : step_acc_) {
            for (std::size_t b = 0; b < nb_; ++b) {
                sf_[b] += F_[r * nb_ + b];
                sv_[b] += V_[r * nb_ + b];
            }
            if (corr_) {
                add_covariance(r, [&](std::int64_t q) { return added_id_[q] == attempt_; },
                               sv_.data());
                added_id_[r] = attempt_;
            }
        }
        for (std::size_t b = 0; b < nb_; ++b) {
            tf_[b] += sf_[b];
            tv_[b] += sv_[b];
        }
    }

    // The attempt's pixels become bin nbins + 1.
    void close_bin(std::int64_t seed) {
        const std::int32_t id = ++res_.nbins;
        for (const std::int64_t r : acc_) {
            state_[r] = kBinned;
            res_.bin_map[pix_of_[r]] = id;
            res_.pixel_chi2[pix_of_[r]] = chi_of_[r];
            for (std::size_t b = 0; b < nb_; ++b) {  // no longer free
                Frem_[b] -= F_[r * nb_ + b];
                Vrem_[b] -= V_[r * nb_ + b] * vf_[b];
            }
        }
        res_.bin_flux.insert(res_.bin_flux.end(), tf_.begin(), tf_.end());
        res_.bin_var.insert(res_.bin_var.end(), tv_.begin(), tv_.end());
        res_.seed.push_back(pix_of_[seed]);
    }

    // A failed attempt: its pixels stay available to later bins but never seed one again.
    void fail_attempt() {
        ++res_.n_failed_seeds;
        for (const std::int64_t r : acc_) no_seed_[r] = 1;
    }

    // Absorption: a free pixel touching a bin joins it when it passes the shape test
    // against that bin's seed and the bin still meets the S/N target with it (the most
    // similar such bin wins, ties to the lower id). Free neighbours of an absorbed pixel are
    // examined again (a work queue). Every invariant of the bins is kept.
    void absorb_free_pixels() {
        std::vector<std::int64_t> seed_r(res_.nbins);  // region index of each bin's seed
        for (std::int32_t id = 0; id < res_.nbins; ++id) seed_r[id] = ridx_[res_.seed[id]];
        std::vector<std::uint8_t> queued(nreg_, 0);
        std::vector<std::int64_t> work;
        for (std::size_t r = 0; r < nreg_; ++r) {
            if (state_[r] == kFree) {
                work.push_back(static_cast<std::int64_t>(r));
                queued[r] = 1;
            }
        }
        std::vector<double> nv(nb_);
        for (std::size_t head = 0; head < work.size(); ++head) {
            const std::int64_t r = work[head];
            queued[r] = 0;
            if (state_[r] != kFree) continue;
            double best_chi = 0.0;
            const std::int32_t best = best_touching_bin(r, seed_r, best_chi, nv);
            if (best == 0) continue;
            absorb(r, best, best_chi, nv);
            const long y = y_of(r), x = x_of(r);
            for (int j = 0; j < 4; ++j) {
                const long p = neighbour(y, x, j);
                if (p < 0) continue;
                const std::int64_t q = ridx_[p];
                if (q >= 0 && state_[q] == kFree && !queued[q]) {
                    queued[q] = 1;
                    work.push_back(q);
                }
            }
        }
    }

    // The bin (id, 0 if none) that free pixel r joins: among the bins touching it by a side
    // that it passes the shape test against (their seed's SED, seed_r: region indices) and
    // that keep the S/N target with it, the one of smallest reduced chi2 (ties: lower id).
    // Its chi2 goes to best_chi and its variances with r to best_v (nbands).
    std::int32_t best_touching_bin(std::int64_t r, const std::vector<std::int64_t>& seed_r,
                                   double& best_chi, std::vector<double>& best_v) {
        const long y = y_of(r), x = x_of(r);
        std::int32_t best = 0;
        best_chi = 0.0;
        for (int j = 0; j < 4; ++j) {
            const long p = neighbour(y, x, j);
            if (p < 0) continue;
            const std::int32_t id = res_.bin_map[p];
            if (id <= 0 || id == best) continue;
            const std::int64_t sr = seed_r[id - 1];
            const double chi =
                shape_reduced_chi2(&F_[sr * nb_], &S_[sr * nb_], &F_[r * nb_], &S_[r * nb_], nb_);
            if (!(chi <= params_.chi2_limit)) continue;
            if (best != 0 && !(chi < best_chi || (chi == best_chi && id < best))) continue;
            for (std::size_t b = 0; b < nb_; ++b) {
                sf_[b] = res_.bin_flux[(id - 1) * nb_ + b] + F_[r * nb_ + b];
                sv_[b] = res_.bin_var[(id - 1) * nb_ + b] + V_[r * nb_ + b];
            }
            if (corr_) {
                add_covariance(r, [&](std::int64_t q) { return res_.bin_map[pix_of_[q]] == id; },
                               sv_.data());
            }
            if (!passes(sf_.data(), sv_.data())) continue;
            std::copy(sv_.begin(), sv_.end(), best_v.begin());
            best = id;
            best_chi = chi;
        }
        return best;
    }

    // Free pixel r joins bin `id` with reduced chi2 `chi`; `var` (nbands) are the bin's
    // variances with it.
    void absorb(std::int64_t r, std::int32_t id, double chi, const std::vector<double>& var) {
        for (std::size_t b = 0; b < nb_; ++b) {
            res_.bin_flux[(id - 1) * nb_ + b] += F_[r * nb_ + b];
            res_.bin_var[(id - 1) * nb_ + b] = var[b];
        }
        state_[r] = kBinned;
        res_.bin_map[pix_of_[r]] = id;
        res_.pixel_chi2[pix_of_[r]] = chi;
        ++res_.n_absorbed;
    }

    // The leftover bin, numbered last: every pixel still free (members of failed growths
    // never absorbed by a later bin, and all free pixels once the leftover rule fired).
    void make_leftover_bin() {
        bool any_left = false;
        for (std::size_t r = 0; r < nreg_; ++r) {
            if (state_[r] != kBinned) {
                any_left = true;
                break;
            }
        }
        if (!any_left) return;
        const std::int32_t id = ++res_.nbins;
        std::vector<double> lf(nb_, 0.0), lv(nb_, 0.0);
        for (std::size_t r = 0; r < nreg_; ++r) {
            if (state_[r] == kBinned) continue;
            state_[r] = kBinned;
            res_.bin_map[pix_of_[r]] = id;
            for (std::size_t b = 0; b < nb_; ++b) {
                lf[b] += F_[r * nb_ + b];
                lv[b] += V_[r * nb_ + b];
            }
        }
        res_.bin_flux.insert(res_.bin_flux.end(), lf.begin(), lf.end());
        res_.bin_var.insert(res_.bin_var.end(), lv.begin(), lv.end());
        res_.seed.push_back(-1);
        res_.has_leftover = true;
    }

    // inputs
    const double* snr_;  // (nbands) S/N targets, <= 0: none
    const BinningParams& params_;
    const std::size_t nb_, ny_, nx_;
    const long lny_, lnx_;
    const std::size_t ref_band_;
    const int nthreads_;
    const bool corr_;        // correlated noise (params_.rho given)
    const std::size_t rw_;   // width of the rho window, 2 rho_half + 1
    const long lh_;          // rho_half
    const std::vector<double> vf_;  // (nbands) variance bounds, see variance_bounds
    // the region and its pixels' data
    std::vector<std::int64_t> ridx_, pix_of_;
    std::size_t nreg_ = 0;
    std::vector<double> F_, V_, S_;
    std::vector<std::int64_t> order_;
    long ymin_ = 0, ymax_ = 0, xmin_ = 0, xmax_ = 0;
    // per region pixel
    std::vector<std::uint8_t> state_;      // kFree / kBinned
    std::vector<std::uint8_t> no_seed_;    // 1: member of a failed growth, never a seed
    std::vector<std::int32_t> mark_id_;    // the attempt that last examined the pixel
    std::vector<std::uint8_t> mark_;       // kAccepted / kPending / kRejected in that one
    std::vector<double> chi_of_;           // reduced chi2 against that attempt's seed
    std::vector<std::int32_t> added_id_;   // (correlated noise) the attempt that summed it
    std::vector<long double> Frem_, Vrem_;  // (nbands) totals of the free pixels
    // the current attempt
    OffsetTable table_;
    std::int32_t attempt_ = 0;
    std::int64_t seed_ = -1;
    long yc_ = 0, xc_ = 0;   // the seed's pixel
    double maxd_ = 0.0;      // distance of the farthest accepted pixel from the seed
    std::vector<std::int64_t> acc_, step_acc_, pending_new_, queue_;
    std::vector<double> tf_, tv_;      // (nbands) flux and variance sums of the attempt
    std::vector<double> sf_, sv_;      // (nbands) scratch sums (a step; a candidate bin)
    std::vector<double> remf_, remv_;  // (nbands) the free totals in double precision
    BinningResult res_;
};

}  // namespace

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
    std::vector<double> vf = variance_bounds(params, nbands);
    PixelBinner binner(flux, err, region, nbands, ny, nx, ref_band, snr, params, std::move(vf),
                       resolve_threads(threads));
    return binner.run();
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
