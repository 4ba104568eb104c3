// Projections onto the columns of a sparse matrix (see sparse_projection.hpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-loop-unroll-and-jam")
#endif
#include "pixedfit/sparse_projection.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "pixedfit/common.hpp"

namespace pixedfit {

namespace {

// sums[i] = sum over the entries e in [begin, end) of values[e] * block[(rows[e] - row0) * W +
// i], for i < len <= W: the products added in the order of the entries (fused into one
// rounding on the x86-64-v3 and AVX-512 variants, where the compiler contracts
// `acc += v * s`, as in the row projection this replaces; not on the baseline one).
template <std::size_t W>
PIXEDFIT_INLINE void entry_sums(const std::int64_t* rows, const double* values,
                                std::int64_t begin, std::int64_t end, const double* block,
                                std::size_t row0, std::size_t len, double* __restrict sums) {
    double acc[W] = {};
    for (std::int64_t e = begin; e < end; ++e) {
        const double v = values[e];
        const double* src = block + (static_cast<std::size_t>(rows[e]) - row0) * W;
        for (std::size_t i = 0; i < len; ++i) acc[i] += v * src[i];
    }
    std::copy(acc, acc + len, sums);
}

// entry_sums with W as the bound of its inner loop when the block is whole (a constant for
// the compiler: the accumulators stay in registers while the entries stream through). No
// lambda: it would not be compiled for the instruction set of the variant that calls it.
template <std::size_t W>
PIXEDFIT_INLINE void block_sums(const ColumnsView& a, std::int64_t begin, std::int64_t end,
                                const double* block, std::size_t row0, std::size_t len,
                                double* sums) {
    if (len == W)
        entry_sums<W>(a.rows, a.values, begin, end, block, row0, W, sums);
    else
        entry_sums<W>(a.rows, a.values, begin, end, block, row0, len, sums);
}

// The columns [0, a.ncol) of out and out_upper (leading dimension ld), W source columns (the
// index i of source[w, i], a row of the output) at a time. For each block of W, the values of
// the rows [row0, row1) that the matrix uses are widened to double precision once (W of each
// row, in the cache: the neighbouring columns share most rows), then column after column the
// entries stream through them and the W sums go to the W output rows, rounded to single
// precision. Every output element is the sum of its column's terms in the order of the
// entries, whatever W.
template <std::size_t W, class T>
PIXEDFIT_INLINE void project_body(const ColumnsView& a, const T* source, std::size_t m,
                                  std::size_t row0, std::size_t row1, std::size_t split,
                                  bool lower_any, std::size_t ld, float* out,
                                  float* out_upper) {
    std::vector<double> block((row1 - row0) * W);
    double upper[W], lower[W];
    for (std::size_t i0 = 0; i0 < m; i0 += W) {
        const std::size_t len = std::min(W, m - i0);
        for (std::size_t r = row0; r < row1; ++r) {
            const T* src = source + r * m + i0;
            double* dst = block.data() + (r - row0) * W;
            for (std::size_t i = 0; i < len; ++i) dst[i] = static_cast<double>(src[i]);
        }
        for (std::size_t c = 0; c < a.ncol; ++c) {
            const std::int64_t begin = a.colptr[c], end = a.colptr[c + 1];
            // rows increase within a column: the first entry at or after `split`
            const std::int64_t mid =
                std::lower_bound(a.rows + begin, a.rows + end,
                                 static_cast<std::int64_t>(split)) - a.rows;
            block_sums<W>(a, mid, end, block.data(), row0, len, upper);
            if (out_upper != nullptr)
                for (std::size_t i = 0; i < len; ++i)
                    out_upper[(i0 + i) * ld + c] = static_cast<float>(upper[i]);
            if (lower_any) {
                block_sums<W>(a, begin, mid, block.data(), row0, len, lower);
                for (std::size_t i = 0; i < len; ++i) upper[i] += lower[i];
            }
            for (std::size_t i = 0; i < len; ++i)
                out[(i0 + i) * ld + c] = static_cast<float>(upper[i]);
        }
    }
}

// A block of 32 accumulators: 8 registers of 4 doubles on AVX2.
template <class T>
PIXEDFIT_MULTIVERSION void project_v3(const ColumnsView& a, const T* source, std::size_t m,
                                      std::size_t row0, std::size_t row1, std::size_t split,
                                      bool lower_any, std::size_t ld, float* out,
                                      float* out_upper) {
    project_body<32>(a, source, m, row0, row1, split, lower_any, ld, out, out_upper);
}

// A block of 64: 8 registers of 8 doubles on AVX-512 (the same fused multiply-adds as the
// x86-64-v3 variant, so the same bits).
template <class T>
PIXEDFIT_AVX512_WIDE void project_v4(const ColumnsView& a, const T* source, std::size_t m,
                                     std::size_t row0, std::size_t row1, std::size_t split,
                                     bool lower_any, std::size_t ld, float* out,
                                     float* out_upper) {
    project_body<64>(a, source, m, row0, row1, split, lower_any, ld, out, out_upper);
}

}  // namespace

template <class T>
void project_columns(const ColumnsView& a, const T* source, std::size_t nrow, std::size_t m,
                     std::size_t split, const float* tail, const float* tail_upper,
                     std::size_t ntail, float* out, float* out_upper) {
    require(a.colptr[0] == 0, "project_columns: colptr must start at 0");
    bool lower_any = false;
    std::size_t row0 = nrow, row1 = 0;  // the rows the matrix uses
    for (std::size_t c = 0; c < a.ncol; ++c) {
        const std::int64_t begin = a.colptr[c], end = a.colptr[c + 1];
        require(end >= begin, "project_columns: colptr must not decrease");
        for (std::int64_t e = begin; e < end; ++e) {
            // the message is built only for a bad row (for every entry it would cost more
            // than the projection)
            if (a.rows[e] < 0 || static_cast<std::size_t>(a.rows[e]) >= nrow ||
                (e > begin && a.rows[e] <= a.rows[e - 1]))
                require(false, "project_columns: the rows of column " + std::to_string(c) +
                                   " must increase within [0, " + std::to_string(nrow) + ")");
        }
        if (end > begin) {
            row0 = std::min(row0, static_cast<std::size_t>(a.rows[begin]));
            row1 = std::max(row1, static_cast<std::size_t>(a.rows[end - 1]) + 1);
            lower_any = lower_any || static_cast<std::size_t>(a.rows[begin]) < split;
        }
    }
    const std::size_t ld = a.ncol + ntail;
    call_widest(project_v4<T>, project_v3<T>, a, source, m, std::min(row0, row1), row1, split,
                lower_any, ld, out, out_upper);
    for (std::size_t i = 0; i < m && ntail > 0; ++i) {
        std::memcpy(out + i * ld + a.ncol, tail + i * ntail, ntail * sizeof(float));
        if (out_upper != nullptr)
            std::memcpy(out_upper + i * ld + a.ncol, tail_upper + i * ntail,
                        ntail * sizeof(float));
    }
}

template void project_columns<float>(const ColumnsView&, const float*, std::size_t,
                                     std::size_t, std::size_t, const float*, const float*,
                                     std::size_t, float*, float*);
template void project_columns<double>(const ColumnsView&, const double*, std::size_t,
                                      std::size_t, std::size_t, const float*, const float*,
                                      std::size_t, float*, float*);

}  // namespace pixedfit
