// The stencils of the knot projections and the band sums of the templates (see
// knot_projection.hpp).
// No fused multiply-adds in this file: the weights and sums must round like the numpy and
// scipy code they replace, which fuses none (and a multiply-add fused in one build and not
// in another would change the projections' bits).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "pixedfit/common.hpp"
#include "pixedfit/knot_projection.hpp"

namespace pixedfit {

namespace {

// Every range within the nrow rows of the table and its weights within the weight array
// (the message is built only for a bad range).
void check_ranges(const RowRanges& r, std::size_t nrow, const char* what) {
    for (std::size_t p = 0; p < r.n; ++p) {
        const std::int64_t begin = r.row_begin[p], count = r.row_count[p];
        const std::int64_t wbegin = r.weight_begin[p];
        if (begin < 0 || count < 0 || static_cast<std::size_t>(begin + count) > nrow)
            throw std::invalid_argument(std::string(what) + " " + std::to_string(p) +
                                        ": rows outside the table");
        if (wbegin < 0 || static_cast<std::size_t>(wbegin + count) > r.nweight)
            throw std::invalid_argument(std::string(what) + " " + std::to_string(p) +
                                        ": weights outside the array");
    }
}

// The first of the 4 knots of x's stencil, as numpy's
// clip(searchsorted(knots, x, side="right") - 2, 0, nk - 4): upper_bound counts the knots <= x.
std::size_t first_knot(const double* knots, std::size_t nk, double x) {
    const std::ptrdiff_t above = std::upper_bound(knots, knots + nk, x) - knots;
    return static_cast<std::size_t>(
        std::clamp<std::ptrdiff_t>(above - 2, 0, static_cast<std::ptrdiff_t>(nk) - 4));
}

// Cardinal weights w[a] at x of the cubic through xs[0..3]: the product of the factors
// (x - xs[b]) / (xs[a] - xs[b]) over b != a, from 1 and in the order of b, as
// pixedfit.sps.knots._stencil_weights forms them.
void stencil_weights(double x, const double* xs, double* w) {
    for (int a = 0; a < 4; ++a) {
        w[a] = 1.0;
        for (int b = 0; b < 4; ++b)
            if (b != a) w[a] *= (x - xs[b]) / (xs[a] - xs[b]);
    }
}

// sum[t] = sum over i < n of weight[i] * rows[i * nt + t], in the order of i from 0, each
// product rounded before it is added: the same bits on every variant.
PIXEDFIT_INLINE void band_sum_body(const double* weight, const double* rows, std::size_t n,
                                   std::size_t nt, double* sum) {
    std::fill(sum, sum + nt, 0.0);
    for (std::size_t i = 0; i < n; ++i) {
        const double w = weight[i];
        const double* row = rows + i * nt;
        for (std::size_t t = 0; t < nt; ++t) sum[t] += w * row[t];
    }
}

PIXEDFIT_MULTIVERSION
void band_sum_v3(const double* weight, const double* rows, std::size_t n, std::size_t nt,
                 double* sum) {
    band_sum_body(weight, rows, n, nt, sum);
}

PIXEDFIT_AVX512_WIDE
void band_sum_v4(const double* weight, const double* rows, std::size_t n, std::size_t nt,
                 double* sum) {
    band_sum_body(weight, rows, n, nt, sum);
}

}  // namespace

Stencils knot_stencils(const double* x, std::size_t nrow, const RowRanges& pieces,
                       const std::int64_t* knot_off, std::size_t nknot, const double* knots) {
    check_ranges(pieces, nrow, "piece");
    require(knot_off[0] == 0 && static_cast<std::size_t>(knot_off[pieces.n]) == nknot,
            "knot_stencils: knot offsets must run from 0 to the number of knots");
    std::size_t nstencil = 0;
    for (std::size_t p = 0; p < pieces.n; ++p) {
        const std::int64_t nk = knot_off[p + 1] - knot_off[p];
        if (nk != 1 && nk < 4)
            throw std::invalid_argument("knot_stencils: piece " + std::to_string(p) +
                                        " needs 1 or at least 4 knots");
        for (std::int64_t j = knot_off[p] + 1; j < knot_off[p + 1]; ++j)
            if (!(knots[j] > knots[j - 1]))
                throw std::invalid_argument("knot_stencils: the knots of piece " +
                                            std::to_string(p) + " must increase");
        const double* xp = x + pieces.row_begin[p];
        for (std::int64_t i = 1; i < pieces.row_count[p]; ++i)
            if (!(xp[i] > xp[i - 1]))
                throw std::invalid_argument("knot_stencils: x must increase over piece " +
                                            std::to_string(p));
        nstencil += static_cast<std::size_t>(pieces.row_count[p]);
    }
    Stencils s;
    s.first.resize(nstencil);
    s.weights.assign(4 * nstencil, 0.0);
    std::size_t at = 0;
    for (std::size_t p = 0; p < pieces.n; ++p) {
        const auto nk = static_cast<std::size_t>(knot_off[p + 1] - knot_off[p]);
        const double* kn = knots + knot_off[p];
        const double* weight = pieces.weights + pieces.weight_begin[p];
        for (std::int64_t i = 0; i < pieces.row_count[p]; ++i, ++at) {
            double* w = s.weights.data() + 4 * at;
            if (nk == 1) {
                s.first[at] = knot_off[p];
                w[0] = weight[i];
                continue;
            }
            const std::size_t f = first_knot(kn, nk, x[pieces.row_begin[p] + i]);
            s.first[at] = knot_off[p] + static_cast<std::int64_t>(f);
            stencil_weights(x[pieces.row_begin[p] + i], kn + f, w);
            for (int j = 0; j < 4; ++j) w[j] = weight[i] * w[j];
        }
    }
    return s;
}

void band_sums(const RowRanges& bands, const double* table, std::size_t nrow, std::size_t nt,
               double* out) {
    check_ranges(bands, nrow, "band");
    std::vector<double> sum(nt);
    for (std::size_t b = 0; b < bands.n; ++b) {
        call_widest(band_sum_v4, band_sum_v3, bands.weights + bands.weight_begin[b],
                    table + bands.row_begin[b] * static_cast<std::int64_t>(nt),
                    static_cast<std::size_t>(bands.row_count[b]), nt, sum.data());
        for (std::size_t t = 0; t < nt; ++t) out[t * bands.n + b] = sum[t];
    }
}

}  // namespace pixedfit
