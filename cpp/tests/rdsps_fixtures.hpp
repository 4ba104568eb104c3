// RDSPS test fixtures shared by the kernel tests: output buffers and a linear model library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "pixedfit/rdsps.hpp"

// The output arrays of an RDSPS run of nsed SEDs with nstat statistics and nz redshifts,
// and the view that the kernel writes through.
struct Outputs {
    std::vector<double> mean, sd, p16, p50, p84, best_scale, chi2_min, ln_ev, zpost;
    std::vector<std::int64_t> best_model, best_z, n_used;
    pixedfit::RdspsOutputs view;
    Outputs(std::size_t nsed, std::size_t nstat, std::size_t nz)
        : mean(nsed * nstat), sd(nsed * nstat), p16(nsed * nstat), p50(nsed * nstat),
          p84(nsed * nstat), best_scale(nsed), chi2_min(nsed), ln_ev(nsed), zpost(nsed * nz),
          best_model(nsed), best_z(nsed), n_used(nsed) {
        view.mean = mean.data();
        view.std = sd.data();
        view.p16 = p16.data();
        view.p50 = p50.data();
        view.p84 = p84.data();
        view.best_scale = best_scale.data();
        view.chi2_min = chi2_min.data();
        view.ln_evidence = ln_ev.data();
        view.z_posterior = zpost.data();
        view.best_model = best_model.data();
        view.best_z = best_z.data();
        view.n_used = n_used.data();
    }
};


// Models m_j(b) = 1 + j * x_b, j = 0..nmod-1 (parameter "j" and log_mass = 0).
struct Library {
    std::size_t nmod, nband;
    std::vector<double> flux, params;
    std::vector<std::uint8_t> mass_scaled{0, 1};
    Library(std::size_t nm, std::size_t nb) : nmod(nm), nband(nb), flux(nb * nm), params(nm * 2) {
        for (std::size_t j = 0; j < nm; ++j) {
            params[j * 2] = static_cast<double>(j) / static_cast<double>(nm);
            params[j * 2 + 1] = 0.0;
            for (std::size_t b = 0; b < nb; ++b) {
                const double x = static_cast<double>(b) / static_cast<double>(nb);
                flux[b * nm + j] = 1.0 + params[j * 2] * x;
            }
        }
    }
    pixedfit::RdspsInputs inputs(const std::vector<double>& obs, const std::vector<double>& ivar,
                                 std::size_t nsed) const {
        pixedfit::RdspsInputs in;
        in.obs = obs.data();
        in.ivar = ivar.data();
        in.nsed = nsed;
        in.nband = nband;
        in.model_flux = flux.data();
        in.nmod = nmod;
        in.params = params.data();
        in.npar = 2;
        in.mass_scaled = mass_scaled.data();
        return in;
    }
};
