// Projections onto the columns of a sparse matrix (see sparse_projection.hpp).
#include "pixedfit/sparse_projection.hpp"

#include <algorithm>
#include <string>

#include "pixedfit/common.hpp"

namespace pixedfit {

namespace {

// out_row[i] += a * src[i] for i < m (the source widened to double first)
template <class T>
PIXEDFIT_INLINE void axpy(double a, const T* __restrict src, double* __restrict out_row,
                          std::size_t m) {
    for (std::size_t i = 0; i < m; ++i) out_row[i] += a * static_cast<double>(src[i]);
}

// Source columns per pass: the output's block (ncol x kColumns doubles, 200 KB for the 200
// columns of 27 bands) stays in the cache while the rows stream through. Each output
// element still sums its terms in the order of the rows and entries.
constexpr std::size_t kColumns = 128;

template <class T>
PIXEDFIT_MULTIVERSION void project(const std::int64_t* indptr, const std::int64_t* indices,
                                   const double* data, const T* source, std::size_t m,
                                   std::size_t row_begin, std::size_t row_end, double* out) {
    for (std::size_t a = 0; a < m; a += kColumns) {
        const std::size_t len = std::min(kColumns, m - a);
        for (std::size_t w = row_begin; w < row_end; ++w) {
            const T* src = source + w * m + a;
            for (std::int64_t e = indptr[w]; e < indptr[w + 1]; ++e)
                axpy(data[e], src, out + static_cast<std::size_t>(indices[e]) * m + a, len);
        }
    }
}

}  // namespace

template <class T>
void project_rows(const std::int64_t* indptr, const std::int64_t* indices, const double* data,
                  std::size_t ncol, const T* source, std::size_t m, std::size_t row_begin,
                  std::size_t row_end, double* out) {
    require(row_begin <= row_end, "project_rows: row_begin must not exceed row_end");
    for (std::size_t w = row_begin; w < row_end; ++w) {
        for (std::int64_t e = indptr[w]; e < indptr[w + 1]; ++e) {
            // the message is built only for a bad index (for every entry it would cost more
            // than the projection)
            if (indices[e] < 0 || static_cast<std::size_t>(indices[e]) >= ncol)
                require(false, "project_rows: column index " + std::to_string(indices[e]) +
                                   " outside [0, " + std::to_string(ncol) + ")");
        }
    }
    std::fill(out, out + ncol * m, 0.0);
    project(indptr, indices, data, source, m, row_begin, row_end, out);
}

template void project_rows<float>(const std::int64_t*, const std::int64_t*, const double*,
                                  std::size_t, const float*, std::size_t, std::size_t,
                                  std::size_t, double*);
template void project_rows<double>(const std::int64_t*, const std::int64_t*, const double*,
                                   std::size_t, const double*, std::size_t, std::size_t,
                                   std::size_t, double*);

}  // namespace pixedfit
