// Photometry of composite stellar populations through transmission knots.
//
// For fixed filters and redshift every band flux of a model is linear in its stellar and
// nebular spectra, apart from the dust transmission T(lambda), which is smooth in
// x = ln(lambda). Writing T across each band as a cubic Lagrange interpolant through a
// few knots x_j,
//   F_b = sum_k W_bk T(x_k) S_k  ~=  sum_j T(x_j) sum_k W_bk phi_bj(x_k) S_k,
// each SSP spectrum S is projected once onto the band-knot pairs (b, j), and a model needs
// sums over a few hundred projected columns instead of the whole wavelength grid. The
// absorbed luminosity (energy balance) is projected the same way onto a coarse set of
// knots spanning the grid. Lines, dust emission and the AGN torus are unattenuated or
// exact already: lines enter through line weights, dust and torus templates through their
// band fluxes. The projections are built by pixedfit.sps.knots.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "pixedfit/csp.hpp"

namespace pixedfit::sps {

// A single-precision table shared by its owners and never changed once made: the tables of a
// KnotGrid are those the projections returned to Python (pixedfit.sps.knots), not copies.
class SharedFloats {
public:
    SharedFloats() = default;
    SharedFloats(std::shared_ptr<const float[]> values, std::size_t size)
        : values_(std::move(values)), size_(size) {}
    // a table holding a copy of the n values at p
    static SharedFloats copy(const float* p, std::size_t n) {
        std::shared_ptr<float[]> values(new float[n]);
        std::copy(p, p + n, values.get());
        return {std::move(values), n};
    }
    const float* data() const { return values_.get(); }
    std::size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }

private:
    std::shared_ptr<const float[]> values_;
    std::size_t size_ = 0;
};

// Projected rows for one set of bands at one redshift. Columns of a row:
//   [0, npair)                  band-knot pairs, band b owning [band_off[b], band_off[b+1])
//   [npair, npair + nenergy)    energy knots (integral of dwave * phi_e * S)
//   npair + nenergy             the bolometric integral of the non-ionising part (>= 911.8 A)
//   npair + nenergy + 1         the bolometric integral of the ionising part
// (ncol = npair + nenergy + 2). Knot c (c < npair + nenergy) sits at knot_calz[c],
// knot_lnl[c]. `ssp` projects the whole SSP spectra; `ssp_young` (needed when the grid has
// nebular emission) the spectra without their ionising photons, which the gas absorbs
// (f_esc = 0), except in the last column. The young populations use `ssp_young` when the
// nebular emission is on.
struct KnotGrid {
    std::size_t nbands = 0, npair = 0, nenergy = 0, ncol = 0;
    std::vector<std::int64_t> band_off;   // [nbands + 1]
    std::vector<double> knot_calz;        // [npair + nenergy] Calzetti k / R_V at the knots
    std::vector<double> knot_lnl;         // [npair + nenergy] ln(lambda / 5500 A)
    SharedFloats ssp;                     // [nz][nage][ncol], per Msun formed
    SharedFloats ssp_young;               // [nz][nage][ncol] or empty
    SharedFloats neb;                     // [nu][nz][nneb][ncol] nebular continuum
    std::vector<double> dl_delta_band;    // [nq][numin][nbands] band sums of the templates
    std::vector<double> dl_plaw_band;     // [nq][numin][nbands]
    std::vector<double> agn_band;         // [ntau][nbands]

    // Check every size against the base grid; throws std::invalid_argument naming it.
    void validate(const Grid& base) const;
};

// Band fluxes (n x nbands) of models, as compute_photometry would give them on the grid the
// projections were made from (up to the interpolation of the transmission between knots):
// `scale` multiplies the stellar, nebular-continuum, dust and torus parts (the band weights
// of the projections exclude it); `line_weights` (nbands x nline) is needed when the
// nebular emission is on. derived (n x N_DERIVED, optional).
void compute_photometry_knots(const Grid& base, const KnotGrid& kg, const Config& cfg,
                              const double* params, std::size_t n, double scale,
                              const double* line_weights, double* out, double* derived,
                              int threads);

}  // namespace pixedfit::sps
