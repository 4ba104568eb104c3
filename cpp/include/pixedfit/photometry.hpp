// Broadband photometry through filter curves.
//
// Convention (the one of piXedfit): the flux of a spectrum f_lambda in a band with
// transmission T is the photon-weighted mean flux density
//
//     <f_lambda> = Integral f_lambda(l) T(l) l dl / Integral T(l) l dl,
//
// in the units of f_lambda (erg s^-1 cm^-2 A^-1 in pixedfit). Both the spectrum and the
// curve are taken as piecewise-linear functions of wavelength between their samples, and the
// integrals are exact for that interpretation: on every sub-interval between consecutive
// break points of either sampling the integrand is a cubic polynomial, which Simpson's rule
// integrates exactly. The result is a set of weights w_i on the spectrum's grid with
// <f_lambda> = sum_i w_i f_i and sum_i w_i = 1.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace pixedfit {

struct BandWeights {
    std::int64_t start = 0;        // index of the first grid point with a weight
    std::vector<double> weights;   // weights for grid points start, start+1, ...
};

// Weights of one filter on the wavelength grid `grid` (n points, strictly increasing).
// `fwave` (m points, strictly increasing) and `ftrans` (m values, >= 0, not all 0) sample
// the filter curve, taken as zero outside [fwave[0], fwave[m-1]]. Throws
// std::invalid_argument when the grid does not cover the wavelengths where T > 0.
BandWeights band_weights(const double* grid, std::size_t n, const double* fwave,
                         const double* ftrans, std::size_t m);

// Apply concatenated band weights to `nspec` spectra of `nwave` points each (row-major,
// flux[s * nwave + i]). Filter b uses weights[offsets[b] .. offsets[b+1]) starting at grid
// index starts[b]. Writes out[s * nbands + b]. OpenMP over spectra; the result does not
// depend on the number of threads.
void apply_band_weights(const double* flux, std::size_t nspec, std::size_t nwave,
                        const std::int64_t* starts, const std::int64_t* offsets,
                        const double* weights, std::size_t nbands, double* out,
                        int threads);

}  // namespace pixedfit
