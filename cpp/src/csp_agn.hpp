// AGN torus of the forward model (csp_agn.cpp): fagn times the intrinsic stellar
// bolometric luminosity, emitted with the Nenkova et al. (2008) templates interpolated in
// the torus optical depth tau_V.
#pragma once

#include <cstddef>

#include "pixedfit/csp.hpp"

namespace pixedfit::sps::detail {

// AGN torus luminosity (fagn times l_star) and its template bracket in tau_V: templates
// it, it1 with weights 1 - ft, ft.
struct AgnPart {
    double l_agn = 0.0, ft = 0.0;
    std::size_t it = 0, it1 = 0;
};
// The torus of parameters p for an intrinsic stellar luminosity l_star (both per Msun
// formed, Lsun); l_agn = 0 without AGN.
AgnPart agn_part(const Grid& g, const Config& cfg, const double* p, double l_star);

// The torus spectrum of an AgnPart on the model grid [Lsun/A per Msun formed]: l_agn times
// the templates' interpolation (unit integral), 0 without AGN.
class AgnSpectrum {
public:
    AgnSpectrum(const Grid& g, const AgnPart& a)
        : a0_(a.l_agn > 0.0 ? &g.agn_tmpl[a.it * g.nwave] : nullptr),
          a1_(a.l_agn > 0.0 ? &g.agn_tmpl[a.it1 * g.nwave] : nullptr),
          c0_(a.l_agn * (1.0 - a.ft)),
          c1_(a.l_agn * a.ft) {}
    // The spectrum at grid point k.
    double at(std::size_t k) const {
        return a0_ ? c0_ * static_cast<double>(a0_[k]) + c1_ * static_cast<double>(a1_[k])
                   : 0.0;
    }

private:
    const float* a0_;
    const float* a1_;
    double c0_, c1_;
};

}  // namespace pixedfit::sps::detail
