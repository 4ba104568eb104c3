// Kernel tests of the knot projections (sparse_projection.hpp).
#include <cstdint>
#include <vector>

#include "check.hpp"
#include "pixedfit/sparse_projection.hpp"

TEST_CASE("knot columns: cardinal weights of the stencil, rows increasing per column") {
    // x = 0 .. 9; one piece of 4 knots at 0, 3, 6, 9 over rows 0 .. 9 (weights 2), one
    // piece of one knot over rows 2 .. 4 (weights 1, after those)
    std::vector<double> x(10), weights(13, 2.0);
    for (std::size_t i = 0; i < 10; ++i) x[i] = static_cast<double>(i);
    weights[10] = weights[11] = weights[12] = 1.0;
    const std::vector<std::int64_t> begin = {0, 2}, count = {10, 3}, wbegin = {0, 10};
    const std::vector<std::int64_t> knot_off = {0, 4, 5};
    const std::vector<double> knots = {0.0, 3.0, 6.0, 9.0, 0.0};
    const pixedfit::RowRanges pieces{begin.data(), count.data(), wbegin.data(), 2,
                                     weights.data(), weights.size()};
    const auto a = pixedfit::knot_columns(x.data(), 10, pieces, knot_off.data(), 5,
                                          knots.data());
    CHECK(a.colptr.size() == 6 && a.colptr[4] == 40 && a.colptr[5] == 43);
    for (std::size_t c = 0; c < 5; ++c)
        for (std::int64_t e = a.colptr[c] + 1; e < a.colptr[c + 1]; ++e)
            CHECK(a.rows[e] > a.rows[e - 1]);
    // row 3 sits on the knot at 3: weight 2 there, 0 at the other knots of its stencil
    for (std::int64_t e = 0; e < a.colptr[4]; ++e)
        if (a.rows[e] == 3) CHECK(a.values[e] == (e >= a.colptr[1] && e < a.colptr[2] ? 2.0 : 0.0));
    CHECK(a.rows[40] == 2 && a.values[40] == 1.0 && a.rows[42] == 4);
    const std::vector<std::int64_t> three = {0, 3};
    CHECK_THROWS(pixedfit::knot_columns(x.data(), 10, {begin.data(), count.data(),
                                                       wbegin.data(), 1, weights.data(), 10},
                                        three.data(), 3, knots.data()));
}

TEST_CASE("column projection: sums in the order of the entries, split at a row") {
    // one column with rows 2, 5, 7 (values 1) over a source whose rows are 1, 1e16 and
    // -1e16 in every one of its 70 columns (a whole block of the kernel and the rest)
    const std::size_t m = 70;
    std::vector<float> source(8 * m, 0.0f);
    for (std::size_t i = 0; i < m; ++i) {
        source[2 * m + i] = 1.0f;
        source[5 * m + i] = 1e16f;
        source[7 * m + i] = -1e16f;
    }
    const std::vector<std::int64_t> colptr = {0, 3}, rows = {2, 5, 7};
    const std::vector<double> values = {1.0, 1.0, 1.0};
    const pixedfit::ColumnsView a{colptr.data(), rows.data(), values.data(), 1};
    const std::vector<float> tail(m, 7.0f);
    std::vector<float> out(2 * m), upper(2 * m);
    // in order: (1 + 1e16) - 1e16 = 0; split at row 3: (1e16 - 1e16) + 1 = 1
    pixedfit::project_columns(a, source.data(), 8, m, 0, tail.data(), tail.data(), 1,
                              out.data(), upper.data());
    CHECK(out[0] == 0.0f && out[1] == 7.0f && out[2 * (m - 1)] == 0.0f);
    const float e16 = 1e16f;
    pixedfit::project_columns(a, source.data(), 8, m, 3, tail.data(), tail.data(), 1,
                              out.data(), upper.data());
    CHECK(out[0] == 1.0f && upper[0] == 0.0f && out[2 * (m - 1)] == 1.0f);
    pixedfit::project_columns(a, source.data(), 8, m, 6, tail.data(), tail.data(), 1,
                              out.data(), upper.data());
    CHECK(out[0] == 0.0f && upper[0] == -e16);
    const std::vector<std::int64_t> bad = {2, 7, 5};
    CHECK_THROWS(pixedfit::project_columns({colptr.data(), bad.data(), values.data(), 1},
                                           source.data(), 8, m, 0, nullptr, nullptr, 0,
                                           out.data(), nullptr));
}

TEST_CASE("band sums: weighted sums of table rows, band by band") {
    const std::vector<double> table = {1.0, 2.0, 3.0, 4.0, 5.0, 6.0};  // 3 rows, 2 columns
    const std::vector<double> weights = {0.5, 2.0, 1.0};
    const std::vector<std::int64_t> begin = {0, 2, 1}, count = {2, 1, 0}, wbegin = {0, 2, 0};
    std::vector<double> out(6);
    pixedfit::band_sums({begin.data(), count.data(), wbegin.data(), 3, weights.data(), 3},
                        table.data(), 3, 2, out.data());
    // out[t * 3 + b]: band 0 = 0.5 row 0 + 2 row 1, band 1 = row 2, band 2 empty
    CHECK(out[0] == 6.5 && out[1] == 5.0 && out[2] == 0.0);
    CHECK(out[3] == 9.0 && out[4] == 6.0 && out[5] == 0.0);
}

TEST_MAIN()
