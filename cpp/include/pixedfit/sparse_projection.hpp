// Projections of wavelength-major tables onto the columns of a sparse matrix: the SSP
// spectra onto the transmission knots of pixedfit.sps.knots, once per band set and redshift.
//
// The matrix A (nrow, ncol) is held by columns (compressed sparse columns): column c has
// the entries e in [colptr[c], colptr[c+1]), at rows rows[e] (strictly increasing within
// the column) with values values[e]. knot_columns builds it from the pieces of the
// interpolation, project_columns multiplies the tables by it, band_sums gives the band
// fluxes of the dust and torus templates. Everything is single-threaded and deterministic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace pixedfit {

// A sparse matrix by columns, owning its arrays (see above): colptr has ncol + 1 entries.
struct SparseColumns {
    std::vector<std::int64_t> colptr;
    std::vector<std::int64_t> rows;
    std::vector<double> values;
};

// The same, as views of arrays held elsewhere (colptr has ncol + 1 entries).
struct ColumnsView {
    const std::int64_t* colptr;
    const std::int64_t* rows;
    const double* values;
    std::size_t ncol;
};

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

// The cardinal-weight columns of the pieces of a piecewise-cubic interpolation in x (nrow
// increasing positions, ln lambda). Piece p owns the columns [knot_off[p], knot_off[p+1]),
// one per knot of knots (increasing within a piece). With at least 4 knots, the row at x
// gets the weights of the cubic through the knots first .. first + 3 (the two around x and
// one on each side, shifted inwards at the ends: pixedfit.sps.knots.lagrange4), times its
// weight, in those 4 columns; with one knot every row of the piece gets its weight in that
// column (a single wavelength, or a bolometric integral). Each column lists its rows in
// increasing order. The values are those of the numpy code this replaces: the same
// operations in the same order, none fused. Throws std::invalid_argument for a piece of 2
// or 3 knots, knots not increasing, or a row, weight or knot outside the arrays.
SparseColumns knot_columns(const double* x, std::size_t nrow, const RowRanges& pieces,
                           const std::int64_t* knot_off, std::size_t nknot,
                           const double* knots);

// out (m, ld) row-major, single precision, ld = a.ncol + ntail: column c < a.ncol of row i
// holds the sum over the entries e of column c of values[e] * source[rows[e], i], for source
// (nrow, m) row-major in single or double precision: every sum in double precision in the
// order of the entries, rounded to single precision once, at the end. Columns a.ncol ..
// ld - 1 of row i are tail[i, :] (tail (m, ntail) row-major). The entries at rows below
// `split` and those from `split` on are summed separately: out holds the sum of the two
// when any entry of the matrix lies below `split` (else the second alone, which is then
// the sum over all rows), out_upper (nullptr for none) the second with tail_upper beside
// it. Throws std::invalid_argument for rows outside [0, nrow) or not increasing within a
// column.
template <class T>
void project_columns(const ColumnsView& a, const T* source, std::size_t nrow, std::size_t m,
                     std::size_t split, const float* tail, const float* tail_upper,
                     std::size_t ntail, float* out, float* out_upper);

// out[t * bands.n + b] = sum over the rows of band b of weight * table[row, t], table (nrow,
// nt) row-major: each sum in double precision in the order of the rows, each product
// rounded before it is added (no fused multiply-add: the values of the scipy sparse product
// this replaces). Throws std::invalid_argument for a row or weight outside the arrays.
void band_sums(const RowRanges& bands, const double* table, std::size_t nrow, std::size_t nt,
               double* out);

}  // namespace pixedfit
