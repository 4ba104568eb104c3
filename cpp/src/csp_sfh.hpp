// Star-formation histories, internal part (csp_sfh.cpp): the linear shape of a parameter
// vector and the SFH-derived quantities. The SFR shapes and their integrals (sfh_rate,
// sfh_mass_between, sfh_first_moment, sfh_bin_masses) are declared in pixedfit/csp.hpp.
#pragma once

#include <cmath>

#include "pixedfit/csp.hpp"

namespace pixedfit::sps::detail {

// The age since the onset [Gyr] and the linear SFH shape parameters (tau [Gyr], T0, alpha,
// beta) of a parameter vector p (N_PARAMS, Param layout).
struct SfhShape {
    double age;
    double shape[4];
    explicit SfhShape(const double* p)
        : age(std::pow(10.0, p[P_LOG_AGE])),
          shape{std::pow(10.0, p[P_LOG_TAU]), std::pow(10.0, p[P_LOG_T0]),
                std::pow(10.0, p[P_LOG_ALPHA]), std::pow(10.0, p[P_LOG_BETA])} {}
};

// The SFH-only derived quantities of `scale` Msun formed into der (N_DERIVED; entries
// D_MASS_SURVIVING .. D_MW_AGE): masses [Msun], SFRs [Msun/yr], mass-weighted age [Gyr].
// mtot: the unnormalised total mass of the SFH (sfh_bin_masses); surv, living: surviving
// and living mass per Msun formed.
void sfh_derived(const Config& cfg, const SfhShape& sh, double mtot, double scale, double surv,
                 double living, double* der);

}  // namespace pixedfit::sps::detail
