// Dust attenuation of the forward model (csp_attenuation.cpp): Calzetti (2000) on
// everything, or Charlot & Fall (2000) with dust1 (lambda/5500)^dust1_index on the young
// populations (< t_bc) and dust2 (lambda/5500)^dust_index on all. Transmissions are
// exp(-tau); luminosities are per Msun formed.
#pragma once

#include <cstddef>

#include "pixedfit/csp.hpp"

namespace pixedfit::sps::detail {

// Transmissions t_young, t_old (n) of the young (< t_bc) and old parts at n wavelengths,
// given the Calzetti k/R_V (`calz`) and ln(lambda / 5500 A) (`x`) there; dust1, dust2 the
// optical depths at 5500 A, n_index the diffuse and n1 the birth-cloud exponent (CF00).
void transmissions_at(const double* calz, const double* x, std::size_t n, DustLaw dust_law,
                      double dust1, double dust2, double n_index, double n1, double* t_young,
                      double* t_old);

// Dust transmission of nebular line l (a young population's) for parameters p.
double line_transmission(const Grid& g, const Config& cfg, const double* p, std::size_t l);

// What the attenuation step absorbs and lets through [Lsun per Msun formed].
struct Absorption {
    double l_abs = 0.0;        // absorbed by dust (>= 0): stars, nebular continuum, lines
    double l_lines_att = 0.0;  // the lines kept off the grid, after attenuation
};

// The attenuation step of one model: the transmissions t_young, t_old (nwave) of its dust
// parameters p, and the luminosity absorbed from the young stars plus nebular continuum
// (young + neb) and the old stars (young, old, neb: nwave, Lsun/A per Msun formed) and,
// when lines_out (nline) is given, from the lines of intrinsic luminosities l_lum (nline,
// null without nebular emission), whose attenuated luminosities go to lines_out.
Absorption attenuate(const Grid& g, const Config& cfg, const double* p, const float* young,
                     const float* old, const double* neb, const double* l_lum,
                     double* t_young, double* t_old, double* lines_out);

}  // namespace pixedfit::sps::detail
