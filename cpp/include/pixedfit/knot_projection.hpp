// Projections of the SSP spectra onto the transmission knots of pixedfit.sps.knots, once per
// band set and redshift, and the band sums of the dust and torus templates.
//
// The projection is the product of a table (nrow wavelengths x m spectra) with a sparse
// matrix A (nrow x ncol) made of pieces: piece p covers the rows [row_begin[p], row_begin[p]
// + row_count[p]) and owns the columns [knot_off[p], knot_off[p+1]), one per knot of a
// piecewise-cubic interpolation in x = ln(lambda). Each row of a piece has a stencil
// (knot_stencils): with at least 4 knots, the 4 consecutive columns first .. first + 3
// (first never decreases from one row to the next) and their weights; with one knot, that
// column and its weight. Everything is single-threaded and deterministic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace pixedfit {

// Weighted row ranges, one per piece of the interpolation or per band: range p covers the
// rows [row_begin[p], row_begin[p] + row_count[p]) of a table, the i-th of them weighted by
// weights[weight_begin[p] + i]. The index arrays have n entries, weights nweight.
struct RowRanges {
    const std::int64_t* row_begin;
    const std::int64_t* row_count;
    const std::int64_t* weight_begin;
    std::size_t n;
    const double* weights;
    std::size_t nweight;
};

// The stencils of the rows of all pieces, piece after piece and row after row: row s has
// the first of its columns first[s] and their weights weights[4 s .. 4 s + 3] (a piece of
// one knot: its column, the weight, then 3 zeros).
struct Stencils {
    std::vector<std::int64_t> first;
    std::vector<double> weights;
};

// The stencils of the pieces of a piecewise-cubic interpolation in x (nrow increasing
// positions, ln lambda); piece p owns the knots [knot_off[p], knot_off[p+1]) of knots
// (1, or at least 4 increasing). With at least 4 knots the row at x gets the cubic through
// the knots first .. first + 3 (the two around x and one on each side, shifted inwards at
// the ends: pixedfit.sps.knots.lagrange4) and their cardinal weights at x times its
// weight; with one knot its weight. The values are those of the numpy code this replaced:
// the same operations in the same order, none fused. Throws std::invalid_argument for a
// piece of 2 or 3 knots, knots or x not increasing, or a row or weight outside the arrays.
Stencils knot_stencils(const double* x, std::size_t nrow, const RowRanges& pieces,
                       const std::int64_t* knot_off, std::size_t nknot, const double* knots);

// The projections read the table in blocks of kBlock consecutive spectra: block b holds
// the spectra [b kBlock, (b + 1) kBlock) of every row, row after row (nrow x kBlock values,
// zeros beyond the m spectra in the last block), so that the rows of a piece are read in
// sequence.
constexpr std::size_t kBlock = 32;

// The pieces of a projection: their rows (row_begin, row_count: n each) and columns
// (knot_off: n + 1, from 0 to ncol), and the stencils of their rows.
struct PieceStencils {
    const std::int64_t* row_begin;
    const std::int64_t* row_count;
    const std::int64_t* knot_off;
    std::size_t n;
    const std::int64_t* first;
    const double* weights;
};

// out (m, ld) row-major, single precision, ld = ncol + ntail: column c < ncol of row i
// holds the sum over the rows w of column c (increasing) of A[w, c] * table[w, i], table
// (nrow, m) in blocks (kBlock) of single or double precision: every sum in double
// precision in the order of the rows, rounded to single precision once, at the end.
// Columns ncol .. ld - 1 of row i are tail[i, :] (tail (m, ntail) row-major). The rows below
// `split` and those from `split` on are summed separately: out holds the sum of the two
// when any piece has a row below `split` (else the second alone, which is then the sum over
// all rows), out_upper (nullptr for none) the second with tail_upper beside it. Throws
// std::invalid_argument for rows outside the table or stencils outside their pieces.
template <class T>
void project_stencils(const PieceStencils& a, const T* blocks, std::size_t nrow,
                      std::size_t m, std::size_t split, const float* tail,
                      const float* tail_upper, std::size_t ntail, float* out,
                      float* out_upper);

// out[t * bands.n + b] = sum over the rows of band b of weight * table[row, t], table (nrow,
// nt) row-major: each sum in double precision in the order of the rows, each product
// rounded before it is added (no fused multiply-add: the values of the scipy sparse product
// this replaced). Throws std::invalid_argument for a row or weight outside the arrays.
void band_sums(const RowRanges& bands, const double* table, std::size_t nrow, std::size_t nt,
               double* out);

}  // namespace pixedfit
