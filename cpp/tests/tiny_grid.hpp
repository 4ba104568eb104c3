// The tiny SSP grid shared by the kernel tests: 2 metallicities (log Z = -1, 0), 3 age bins
// (edges 0, 5 Myr, 0.5, 5 Gyr), 4 wavelengths (1000-9000 A); SSP luminosities
// 1 + z + 10 a + 0.1 k (z, a, k the metallicity, age and wavelength indices).
#pragma once

#include <cmath>
#include <cstddef>

#include "pixedfit/csp.hpp"

inline pixedfit::sps::Grid tiny_grid() {
    using pixedfit::sps::Grid;
    Grid g;
    g.nz = 2;
    g.nage = 3;
    g.nwave = 4;
    g.wave = {1000.0, 3000.0, 5500.0, 9000.0};
    g.dwave = {1000.0, 2250.0, 3000.0, 1750.0};
    g.calzetti = {2.0, 1.5, 1.0, 0.5};
    for (double w : g.wave) g.ln_l5500.push_back(std::log(w / 5500.0));
    g.logz = {-1.0, 0.0};
    g.age_edges = {0.0, 0.005, 0.5, 5.0};
    g.mass_surv = {1.0, 0.9, 0.7, 1.0, 0.8, 0.6};
    g.mass_living = {1.0, 0.85, 0.6, 1.0, 0.75, 0.5};
    for (std::size_t z = 0; z < 2; ++z)
        for (std::size_t a = 0; a < 3; ++a)
            for (std::size_t k = 0; k < 4; ++k)
                g.ssp.push_back(static_cast<float>(1.0 + z + 10.0 * a + 0.1 * k));
    return g;
}
