// Nebular emission of the forward model (csp_nebular.cpp): continuum and lines of the gas
// ionised by the young populations (< t_bc), interpolated in log U and log Z, per Msun
// formed.
#pragma once

#include <cstddef>

#include "csp_sfh.hpp"
#include "pixedfit/csp.hpp"

namespace pixedfit::sps::detail {

// Nebular continuum from rows `cont` ([nu][nz][nneb][ncol]) accumulated into neb (ncol),
// the mass per nebular age bin (m_neb, nneb) and the intrinsic line luminosities (l_lum,
// nline), all per Msun formed; iz, fz the metallicity bracket, mtot the SFH's unnormalised
// total mass.
void nebular_part(const Grid& g, const Config& cfg, const SfhShape& sh, double mtot,
                  const double* p, std::size_t iz, double fz, const float* cont,
                  std::size_t ncol, double* neb, double* m_neb, double* l_lum);

// The nebular step of one model on the model grid: nebular_part's continuum added to neb
// (nwave, Lsun/A per Msun formed) with, unless lines_off_grid, the line profiles; l_lum
// (nline) the line luminosities, m_neb (nneb) scratch. The ionising photons of the young
// stars (the first n_ionising points of `young`, nwave) are absorbed by the gas
// (f_esc = 0).
void add_nebular_emission(const Grid& g, const Config& cfg, const SfhShape& sh, double mtot,
                          const double* p, std::size_t iz, double fz, bool lines_off_grid,
                          float* young, double* neb, double* m_neb, double* l_lum);

}  // namespace pixedfit::sps::detail
