// Projections of wavelength-major tables onto the columns of a sparse matrix: the SSP
// spectra onto the transmission knots of pixedfit.sps.knots, once per band set and redshift.
//
// out (ncol, m) = sum over the rows w in [row_begin, row_end) of A[w, c] * source[w, :],
// with A (nrow, ncol) in CSR form (indptr, indices, data) and source (nrow, m) row-major,
// single or double precision; every sum in double precision, in the order of the rows and,
// within a row, of its stored entries. Single-threaded and deterministic. indptr must run
// from 0, without decreasing, to the number of entries (the binding checks it); a column
// index outside [0, ncol) throws std::invalid_argument.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pixedfit {

template <class T>
void project_rows(const std::int64_t* indptr, const std::int64_t* indices, const double* data,
                  std::size_t ncol, const T* source, std::size_t m, std::size_t row_begin,
                  std::size_t row_end, double* out);

}  // namespace pixedfit
