// Projections of blocked tables onto the columns of the knot pieces (see knot_projection.hpp).
#include "pixedfit/knot_projection.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "pixedfit/common.hpp"

namespace pixedfit {

namespace {

// 8 doubles, and 8 floats: the compiler's generic vectors (two AVX2 registers, one AVX-512
// register), so that the accumulators of a window stay in registers.
typedef double v8d __attribute__((vector_size(64)));
typedef float v8f __attribute__((vector_size(32)));

// to = 8 values from p, in double precision (through a reference: a vector returned by
// value would have an ABI that depends on the instruction set)
PIXEDFIT_INLINE void load8(const float* p, v8d& to) {
    v8f f;
    std::memcpy(&f, p, sizeof f);
    to = __builtin_convertvector(f, v8d);
}

PIXEDFIT_INLINE void load8(const double* p, v8d& to) { std::memcpy(&to, p, sizeof to); }

// Where the sums of W = 8 NV spectra go, column after column (ncol x W each). The pass over
// the rows below `split` keeps them in double precision (lower); the pass over the others
// rounds them to single precision (plus the lower sums, when there are any: stage) and
// alone (when wanted: stage_upper). The staged columns become rows of the outputs at the
// end (write_rows): storing each sum at its place in the output, ld values after the
// previous one, took a third of the projection's time.
struct Sink {
    double* lower;
    float* stage;
    float* stage_upper;
    bool add_lower;
};

template <std::size_t NV, bool Lower>
PIXEDFIT_INLINE void emit(const Sink& sink, std::size_t col, const v8d* acc) {
    constexpr std::size_t W = 8 * NV;
    double* low = sink.lower + col * W;
    if (Lower) {
        std::memcpy(low, acc, sizeof(v8d) * NV);
        return;
    }
    for (std::size_t v = 0; v < NV; ++v) {
        const v8f upper = __builtin_convertvector(acc[v], v8f);
        v8f all = upper;
        if (sink.add_lower) {
            v8d below;
            std::memcpy(&below, low + 8 * v, sizeof below);
            all = __builtin_convertvector(acc[v] + below, v8f);
        }
        std::memcpy(sink.stage + col * W + 8 * v, &all, sizeof all);
        if (sink.stage_upper != nullptr)
            std::memcpy(sink.stage_upper + col * W + 8 * v, &upper, sizeof upper);
    }
}

// Rows [0, len) of out (leading dimension ld), columns [0, ncol), from the staged columns
// (ncol x W).
template <std::size_t W>
PIXEDFIT_INLINE void write_rows(const float* stage, std::size_t ncol, std::size_t len,
                                std::size_t ld, float* out) {
    for (std::size_t i = 0; i < len; ++i)
        for (std::size_t c = 0; c < ncol; ++c) out[i * ld + c] = stage[c * W + i];
}

// The sums of the columns of piece p over its rows within [lo, hi), for W = 8 NV spectra:
// `rows` points at their values in row 0 of their block (a row is kBlock values further),
// `at` is the piece's first stencil. A piece of one knot sums its rows into one
// accumulator. Otherwise a window of 4 accumulators (the columns base .. base + 3) slides
// along the rows: every row adds its weights times its values to the 4 columns of its
// stencil; when the stencil moves past column base, that column has all its rows and is
// emitted. Each column thus sums its rows in increasing order, from 0: `acc += w * s` (one
// fused multiply-add on the x86-64-v3 and AVX-512 variants, where the compiler contracts
// it, as the projections it replaced did; a product and a sum on the baseline one). Every
// row's values are read once per piece instead of once per column, in the order they are
// stored.
template <std::size_t NV, bool Lower, class T>
PIXEDFIT_INLINE void piece_sums(const PieceStencils& a, std::size_t p, std::size_t at,
                                std::size_t lo, std::size_t hi, const T* rows,
                                const Sink& sink) {
    const auto r0 = static_cast<std::size_t>(a.row_begin[p]);
    const auto n = static_cast<std::size_t>(a.row_count[p]);
    const auto c0 = static_cast<std::size_t>(a.knot_off[p]);
    const auto c1 = static_cast<std::size_t>(a.knot_off[p + 1]);
    const std::size_t k0 = std::clamp(lo, r0, r0 + n) - r0, k1 = std::clamp(hi, r0, r0 + n) - r0;
    const std::int64_t* first = a.first + at;
    const double* w = a.weights + 4 * at;
    v8d a0[NV] = {}, a1[NV] = {}, a2[NV] = {}, a3[NV] = {};
    if (c1 - c0 == 1) {
        for (std::size_t k = k0; k < k1; ++k) {
            const T* s = rows + (r0 + k) * kBlock;
            for (std::size_t v = 0; v < NV; ++v) {
                v8d x;
                load8(s + 8 * v, x);
                a0[v] += w[4 * k] * x;
            }
        }
        emit<NV, Lower>(sink, c0, a0);
        return;
    }
    std::size_t base = c0;
    for (std::size_t k = k0; k < k1; ++k) {
        for (const auto f = static_cast<std::size_t>(first[k]); base < f; ++base) {
            emit<NV, Lower>(sink, base, a0);
            for (std::size_t v = 0; v < NV; ++v) {
                a0[v] = a1[v];
                a1[v] = a2[v];
                a2[v] = a3[v];
                a3[v] = v8d{};
            }
        }
        const T* s = rows + (r0 + k) * kBlock;
        const double* wk = w + 4 * k;
        for (std::size_t v = 0; v < NV; ++v) {
            v8d x;
            load8(s + 8 * v, x);
            a0[v] += wk[0] * x;
            a1[v] += wk[1] * x;
            a2[v] += wk[2] * x;
            a3[v] += wk[3] * x;
        }
    }
    // the window's columns, then those no row of [lo, hi) reached (0)
    emit<NV, Lower>(sink, base, a0);
    emit<NV, Lower>(sink, base + 1, a1);
    emit<NV, Lower>(sink, base + 2, a2);
    emit<NV, Lower>(sink, base + 3, a3);
    const v8d zero[NV] = {};
    for (std::size_t c = base + 4; c < c1; ++c) emit<NV, Lower>(sink, c, zero);
}

// All columns for the spectra of every block, W = 8 NV at a time (kBlock / W sub-blocks of
// a block), piece after piece: first, when any row lies below `split`, the pass over the
// piece's rows below it, kept in double precision, then the pass over the others, which
// writes the outputs.
template <std::size_t NV, class T>
PIXEDFIT_INLINE void project_body(const PieceStencils& a, const T* blocks, std::size_t nrow,
                                  std::size_t m, std::size_t split, bool lower_any,
                                  std::size_t ld, float* out, float* out_upper) {
    constexpr std::size_t W = 8 * NV;
    static_assert(kBlock % W == 0, "a block holds whole sub-blocks");
    const auto ncol = static_cast<std::size_t>(a.knot_off[a.n]);
    std::vector<double> lower(ncol * W);
    std::vector<float> stage(ncol * W), stage_upper(out_upper == nullptr ? 0 : ncol * W);
    const Sink sink{lower.data(), stage.data(),
                    out_upper == nullptr ? nullptr : stage_upper.data(), lower_any};
    for (std::size_t i0 = 0; i0 < m; i0 += W) {
        const T* rows = blocks + (i0 / kBlock) * nrow * kBlock + i0 % kBlock;
        std::size_t at = 0;  // the first stencil of piece p
        for (std::size_t p = 0; p < a.n; ++p) {
            if (lower_any) piece_sums<NV, true>(a, p, at, 0, split, rows, sink);
            piece_sums<NV, false>(a, p, at, split, nrow, rows, sink);
            at += static_cast<std::size_t>(a.row_count[p]);
        }
        const std::size_t len = std::min(W, m - i0);
        write_rows<W>(stage.data(), ncol, len, ld, out + i0 * ld);
        if (out_upper != nullptr)
            write_rows<W>(stage_upper.data(), ncol, len, ld, out_upper + i0 * ld);
    }
}

// 8 spectra at a time: the window's 4 accumulators are 8 AVX2 registers.
template <class T>
PIXEDFIT_MULTIVERSION void project_v3(const PieceStencils& a, const T* blocks, std::size_t nrow,
                                      std::size_t m, std::size_t split, bool lower_any,
                                      std::size_t ld, float* out, float* out_upper) {
    project_body<1>(a, blocks, nrow, m, split, lower_any, ld, out, out_upper);
}

// 32 spectra at a time: 16 AVX-512 registers (the same fused multiply-adds as the x86-64-v3
// variant, so the same bits).
template <class T>
PIXEDFIT_AVX512_WIDE void project_v4(const PieceStencils& a, const T* blocks, std::size_t nrow,
                                     std::size_t m, std::size_t split, bool lower_any,
                                     std::size_t ld, float* out, float* out_upper) {
    project_body<4>(a, blocks, nrow, m, split, lower_any, ld, out, out_upper);
}

}  // namespace

template <class T>
void project_stencils(const PieceStencils& a, const T* blocks, std::size_t nrow,
                      std::size_t m, std::size_t split, const float* tail,
                      const float* tail_upper, std::size_t ntail, float* out,
                      float* out_upper) {
    require(a.knot_off[0] == 0, "project_stencils: knot_off must start at 0");
    bool lower_any = false;
    std::size_t at = 0;
    for (std::size_t p = 0; p < a.n; ++p) {
        const std::int64_t r0 = a.row_begin[p], n = a.row_count[p];
        const std::int64_t c0 = a.knot_off[p], c1 = a.knot_off[p + 1];
        // the message is built only for a bad piece (for every row it would cost more than
        // the projection)
        bool ok = r0 >= 0 && n >= 0 && static_cast<std::size_t>(r0 + n) <= nrow &&
                  (c1 - c0 == 1 || c1 - c0 >= 4);
        for (std::int64_t k = 0; ok && k < n; ++k) {
            const std::int64_t f = a.first[at + static_cast<std::size_t>(k)];
            ok = c1 - c0 == 1 ? f == c0
                              : f >= c0 && f <= c1 - 4 &&
                                    (k == 0 || f >= a.first[at + static_cast<std::size_t>(k) - 1]);
        }
        if (!ok)
            throw std::invalid_argument("project_stencils: piece " + std::to_string(p) +
                                        " has rows outside the table or stencils outside "
                                        "its columns");
        lower_any = lower_any || (n > 0 && static_cast<std::size_t>(r0) < split);
        at += static_cast<std::size_t>(n);
    }
    const auto ncol = static_cast<std::size_t>(a.knot_off[a.n]);
    const std::size_t ld = ncol + ntail;
    call_widest(project_v4<T>, project_v3<T>, a, blocks, nrow, m, split, lower_any, ld, out,
                out_upper);
    for (std::size_t i = 0; i < m && ntail > 0; ++i) {
        std::memcpy(out + i * ld + ncol, tail + i * ntail, ntail * sizeof(float));
        if (out_upper != nullptr)
            std::memcpy(out_upper + i * ld + ncol, tail_upper + i * ntail,
                        ntail * sizeof(float));
    }
}

template void project_stencils<float>(const PieceStencils&, const float*, std::size_t,
                                      std::size_t, std::size_t, const float*, const float*,
                                      std::size_t, float*, float*);
template void project_stencils<double>(const PieceStencils&, const double*, std::size_t,
                                       std::size_t, std::size_t, const float*, const float*,
                                       std::size_t, float*, float*);

}  // namespace pixedfit
