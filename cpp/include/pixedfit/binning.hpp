// SED-shape-aware pixel binning (the piXedfit algorithm, with its defects fixed).
//
// Arrays: flux and err are (nbands, ny, nx), C order; region is (ny, nx) of 0/1 bytes;
// pixel (y, x) has flat index y * nx + x. Inside the region every flux must be finite and
// every error finite and > 0 (the Python layer checks; the kernel checks sizes only).
//
// Algorithm (see pixedfit/binning.py for the full description):
//   while an unbinned region pixel that never seeded a growth remains:
//     seed = unbinned region pixel with the largest flux in ref_band (ties: lowest index);
//     step 0: candidates are unbinned region pixels with distance d <= r_first from the
//             seed; rings k >= 1: R_{k} < d <= R_{k} + del_r (R_0 = r_first, R += del_r);
//     a candidate is similar when its reduced chi2 against the seed's SED (after the
//     least-squares scaling of the seed onto it, errors with the systematic term
//     sys_factor * flux, chi2 / nbands) is <= chi2_limit (step 0 exempt unless
//     shape_test_first_circle); rejected pixels are not reconsidered for this bin;
//     connected: the bin is the 4-connected component, containing the seed, of the
//     similar pixels found so far; otherwise every similar pixel joins;
//     after every step: if S/N >= snr[b] in every band b with snr[b] > 0 -> close the bin;
//     after every ring that fails: if the sum of ALL unbinned region pixels fails the S/N
//     target, the growth phase ends (the original's leftover rule);
//     the growth stops without success when the next ring would start beyond max_radius
//     (if > 0), beyond the farthest corner of the region's bounding box, or (connected)
//     more than 1.5 pixel beyond the bin's farthest pixel (no pixel can connect any
//     more): the attempt's pixels stay unbinned and may join later bins, but never seed.
//   absorb_leftover: then every still-unbinned pixel touching (by a side) a bin joins the
//     most similar such bin whose seed it passes the shape test against, if that bin keeps
//     its S/N target; neighbours of absorbed pixels are re-examined (a work queue).
//   The leftover bin (the pixels still unbinned), if any, is numbered last.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace pixedfit {

struct BinningParams {
    double r_first = 2.0;          // radius of the first circle (min_bin_diameter / 2), pixels
    double del_r = 2.0;            // ring width, pixels, > 0
    double chi2_limit = 4.0;       // reduced chi2 limit of the shape test
    double sys_factor = 0.0;       // systematic error fraction used in the shape test only
    double max_radius = 0.0;       // <= 0: no explicit limit
    bool connected = true;         // bins are 4-connected (pixels sharing a side)
    bool shape_test_first_circle = true;
    bool absorb_leftover = true;   // free pixels join a touching, similar bin if S/N holds
    // Pixel noise correlation per band, (nbands, 2h+1, 2h+1) with h = rho_half: rho(dy, dx)
    // at lags -h..h, rho(0, 0) = 1. Empty: uncorrelated. With it, the variances of the S/N
    // sums of growing and absorbing bins are exact, sum_{i,j in bin} rho(i - j) s_i s_j,
    // and the leftover rule (all free pixels together) uses the bound sum|rho| sum s^2;
    // bin_var returns these S/N variances.
    std::vector<double> rho;
    std::size_t rho_half = 0;
};

struct BinningResult {
    std::vector<std::int32_t> bin_map;  // (ny*nx), 0 outside the region, bins from 1
    std::vector<double> bin_flux;       // (nbins*nbands) sums of fluxes
    std::vector<double> bin_var;        // (nbins*nbands) sums of err^2
    std::vector<std::int64_t> seed;     // (nbins) flat index of the seed, -1 for the leftover
    std::vector<double> pixel_chi2;     // (ny*nx) reduced chi2 vs the bin's seed, NaN if none
    std::int32_t nbins = 0;
    bool has_leftover = false;
    std::int64_t n_failed_seeds = 0;    // growths that ended without reaching the S/N target
    std::int64_t n_absorbed = 0;        // leftover pixels absorbed into touching bins
};

// Reduced chi2 (chi2 / n) of SED f2 (sigma s2) against f1 (sigma s1) scaled onto it by
// least squares, with per-band variance s1^2 + s2^2; scale 0 when f1 is all zero.
double shape_reduced_chi2(const double* f1, const double* s1, const double* f2,
                          const double* s2, std::size_t n);

// Run the binning. snr has nbands thresholds (<= 0: no requirement in that band).
BinningResult bin_pixels(const double* flux, const double* err, const std::uint8_t* region,
                         std::size_t nbands, std::size_t ny, std::size_t nx, std::size_t ref_band,
                         const double* snr, const BinningParams& params, int threads);

// Per-bin sums over the pixels of a bin map, for values (nplanes, ny, nx):
// out (nplanes, nbins) = sum (or sqrt of the sum of squares if quadrature) over the pixels
// with bin_map == k + 1, in row-major pixel order; a non-finite value in any pixel of a bin
// makes that plane of that bin NaN. OpenMP over planes.
std::vector<double> bin_sums(const double* values, std::size_t nplanes, std::size_t ny,
                             std::size_t nx, const std::int32_t* bin_map, std::int32_t nbins,
                             bool quadrature, int threads);

}  // namespace pixedfit
