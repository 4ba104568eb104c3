// Kernel tests of the knot projections (knot_projection.hpp).
#include <cstdint>
#include <vector>

#include "check.hpp"
#include "pixedfit/knot_projection.hpp"

TEST_CASE("knot stencils: the cubic's knots and cardinal weights, one knot alone") {
    // x = 0 .. 9; a piece of 4 knots at 0, 3, 6, 9 over rows 0 .. 9 (weights 2), a piece of
    // one knot over rows 2 .. 4 (weights 1, after those)
    std::vector<double> x(10), weights(13, 2.0);
    for (std::size_t i = 0; i < 10; ++i) x[i] = static_cast<double>(i);
    weights[10] = weights[11] = weights[12] = 1.0;
    const std::vector<std::int64_t> begin = {0, 2}, count = {10, 3}, wbegin = {0, 10};
    const std::vector<std::int64_t> knot_off = {0, 4, 5};
    const std::vector<double> knots = {0.0, 3.0, 6.0, 9.0, 0.0};
    const pixedfit::RowRanges pieces{begin.data(), count.data(), wbegin.data(), 2,
                                     weights.data(), weights.size()};
    const auto s = pixedfit::knot_stencils(x.data(), 10, pieces, knot_off.data(), 5,
                                           knots.data());
    CHECK(s.first.size() == 13 && s.weights.size() == 52);
    // every row of the first piece uses its 4 knots; row 3 sits on the knot at 3
    for (std::size_t r = 0; r < 10; ++r) CHECK(s.first[r] == 0);
    CHECK(s.weights[12] == 0.0 && s.weights[13] == 2.0 && s.weights[14] == 0.0 &&
          s.weights[15] == 0.0);
    CHECK(s.first[10] == 4 && s.weights[40] == 1.0 && s.weights[41] == 0.0);
    const std::vector<std::int64_t> three = {0, 3};
    CHECK_THROWS(pixedfit::knot_stencils(x.data(), 10, {begin.data(), count.data(),
                                                        wbegin.data(), 1, weights.data(), 10},
                                         three.data(), 3, knots.data()));
}

TEST_CASE("projection: sums in the order of the rows, split at a row") {
    // a piece of one knot over rows 0 .. 7 with weights 1 at rows 2, 5, 7 (0 elsewhere), over
    // a table whose rows 2, 5, 7 are 1, 1e16 and -1e16 in each of its 70 spectra (whole
    // blocks of the kernel and the rest)
    const std::size_t m = 70, nblock = (m + pixedfit::kBlock - 1) / pixedfit::kBlock;
    std::vector<float> blocks(nblock * 8 * pixedfit::kBlock, 0.0f);
    for (std::size_t i = 0; i < m; ++i) {
        float* b = blocks.data() + (i / pixedfit::kBlock) * 8 * pixedfit::kBlock +
                   i % pixedfit::kBlock;
        b[2 * pixedfit::kBlock] = 1.0f;
        b[5 * pixedfit::kBlock] = 1e16f;
        b[7 * pixedfit::kBlock] = -1e16f;
    }
    const std::vector<std::int64_t> begin = {0}, count = {8}, knot_off = {0, 1};
    const std::vector<std::int64_t> first(8, 0);
    std::vector<double> weights(32, 0.0);
    weights[8] = weights[20] = weights[28] = 1.0;
    const pixedfit::PieceStencils a{begin.data(), count.data(), knot_off.data(), 1,
                                    first.data(),  weights.data()};
    const std::vector<float> tail(m, 7.0f);
    std::vector<float> out(2 * m), upper(2 * m);
    // in order: (1 + 1e16) - 1e16 = 0; split at row 3: (1e16 - 1e16) + 1 = 1
    pixedfit::project_stencils(a, blocks.data(), 8, m, 0, tail.data(), tail.data(), 1,
                               out.data(), upper.data());
    CHECK(out[0] == 0.0f && out[1] == 7.0f && out[2 * (m - 1)] == 0.0f);
    pixedfit::project_stencils(a, blocks.data(), 8, m, 3, tail.data(), tail.data(), 1,
                               out.data(), upper.data());
    CHECK(out[0] == 1.0f && upper[0] == 0.0f && out[2 * (m - 1)] == 1.0f);
    const float e16 = 1e16f;
    pixedfit::project_stencils(a, blocks.data(), 8, m, 6, tail.data(), tail.data(), 1,
                               out.data(), upper.data());
    CHECK(out[0] == 0.0f && upper[0] == -e16);
    const std::vector<std::int64_t> beyond = {1};  // rows 1 .. 8 of a table of 8
    CHECK_THROWS(pixedfit::project_stencils(
        {beyond.data(), count.data(), knot_off.data(), 1, first.data(), weights.data()},
        blocks.data(), 8, m, 0, nullptr, nullptr, 0, out.data(), nullptr));
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
