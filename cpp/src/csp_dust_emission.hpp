// Dust emission of the forward model (csp_dust_emission.cpp): energy balance, the
// luminosity absorbed by dust re-emitted with Draine & Li (2007) templates interpolated in
// (q_PAH, U_min), a share gamma of it in the power-law part.
#pragma once

#include <cstddef>

#include "pixedfit/csp.hpp"

namespace pixedfit::sps::detail {

// Draine & Li templates re-emitting l_abs: 4 bilinear corners (idx, w) in (q_PAH, U_min),
// the power-law share gam and the normalisation (template units per Lsun); dust_mass [Msun]
// per Msun formed.
struct DustEmission {
    bool on = false;
    std::size_t idx[4] = {0, 0, 0, 0};
    double w[4] = {0.0, 0.0, 0.0, 0.0};
    double gam = 0.0, norm = 0.0, dust_mass = 0.0;
};
// The templates re-emitting l_abs [Lsun per Msun formed] for parameters p (on = false
// without dust emission or absorbed light).
DustEmission dust_emission(const Grid& g, const Config& cfg, const double* p, double l_abs);

// The dust-emission step of one model: dust_emission's templates added to extra (nwave,
// Lsun/A per Msun formed); returns them.
DustEmission add_dust_emission(const Grid& g, const Config& cfg, const double* p, double l_abs,
                               double* extra);

}  // namespace pixedfit::sps::detail
