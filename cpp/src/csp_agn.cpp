// AGN torus: see csp_agn.hpp.
// Floating-point exceptions are never inspected here; without trapping semantics GCC can
// vectorise branch-free clamps (the flags of the whole forward model).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "csp_agn.hpp"

#include <cmath>

#include "csp_internal.hpp"

namespace pixedfit::sps::detail {

AgnPart agn_part(const Grid& g, const Config& cfg, const double* p, double l_star) {
    AgnPart a;
    if (cfg.agn && g.ntau > 0) {
        a.l_agn = std::pow(10.0, p[P_LOG_FAGN]) * l_star;
        bracket(g.agn_tau.data(), g.ntau, std::pow(10.0, p[P_LOG_TAUAGN]), a.it, a.ft);
        a.it1 = g.ntau > 1 ? a.it + 1 : a.it;
    }
    return a;
}

}  // namespace pixedfit::sps::detail
