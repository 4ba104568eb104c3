// Gaussian smoothing of spectra with a wavelength-dependent width.
#pragma once

#include <cstddef>

namespace pixedfit {

// Smooth nspec spectra (row-major, nspec x n) sampled on the increasing grid `wave` with a
// Gaussian of standard deviation sigma[i] (Angstrom) at output pixel i:
//   out_i = sum_j f_j G_ij dw_j / sum_j G_ij dw_j over |wave_j - wave_i| <= 5 sigma_i,
// dw the trapezoid weights. sigma[i] = 0, or a kernel narrower than the local sampling,
// leaves the pixel unchanged. OpenMP over spectra; identical for any thread count.
void smooth_gaussian(const double* wave, std::size_t n, const double* flux, std::size_t nspec,
                     const double* sigma, double* out, int threads);

}  // namespace pixedfit
