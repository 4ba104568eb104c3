#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <utility>

#include "bindings.hpp"
#include "pixedfit/common.hpp"
#include "pixedfit/photometry.hpp"

namespace py = pybind11;

namespace pixedfit_bindings {

namespace {

using darray = py::array_t<double, py::array::c_style | py::array::forcecast>;
using iarray = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

std::pair<std::int64_t, darray> band_weights(const darray& grid, const darray& fwave,
                                             const darray& ftrans) {
    pixedfit::require(grid.ndim() == 1 && fwave.ndim() == 1 && ftrans.ndim() == 1,
                      "band_weights: arrays must be 1-D");
    pixedfit::require(fwave.size() == ftrans.size(),
                      "band_weights: filter wavelength and transmission differ in length");
    pixedfit::BandWeights bw;
    {
        py::gil_scoped_release release;
        bw = pixedfit::band_weights(grid.data(), static_cast<std::size_t>(grid.size()),
                                    fwave.data(), ftrans.data(),
                                    static_cast<std::size_t>(fwave.size()));
    }
    darray w(static_cast<py::ssize_t>(bw.weights.size()));
    std::copy(bw.weights.begin(), bw.weights.end(), w.mutable_data());
    return {bw.start, w};
}

darray apply_band_weights(const darray& flux, const iarray& starts, const iarray& offsets,
                          const darray& weights, int threads) {
    pixedfit::require(flux.ndim() == 2, "apply_band_weights: flux must be 2-D (nspec, nwave)");
    pixedfit::require(starts.ndim() == 1 && offsets.ndim() == 1 && weights.ndim() == 1,
                      "apply_band_weights: starts, offsets and weights must be 1-D");
    const auto nbands = static_cast<std::size_t>(starts.size());
    pixedfit::require(static_cast<std::size_t>(offsets.size()) == nbands + 1,
                      "apply_band_weights: offsets must have nbands + 1 entries");
    const std::int64_t* off = offsets.data();
    pixedfit::require(off[0] == 0 && off[nbands] == weights.size(),
                      "apply_band_weights: offsets do not match the weights array");
    for (std::size_t b = 0; b < nbands; ++b) {
        pixedfit::require(off[b + 1] >= off[b], "apply_band_weights: offsets must not decrease");
    }
    const auto nspec = static_cast<std::size_t>(flux.shape(0));
    const auto nwave = static_cast<std::size_t>(flux.shape(1));
    darray out({static_cast<py::ssize_t>(nspec), static_cast<py::ssize_t>(nbands)});
    double* o = out.mutable_data();
    {
        py::gil_scoped_release release;
        pixedfit::apply_band_weights(flux.data(), nspec, nwave, starts.data(), off,
                                     weights.data(), nbands, o, threads);
    }
    return out;
}

}  // namespace

void bind_photometry(py::module_& m) {
    m.def("band_weights", &band_weights, py::arg("grid"), py::arg("fwave"), py::arg("ftrans"),
          "Weights (start index, weights) of one filter on a wavelength grid (Angstrom) such "
          "that the photon-weighted mean f_lambda is sum(weights * flux[start:start+len]); "
          "exact for piecewise-linear spectrum and transmission.");
    m.def("apply_band_weights", &apply_band_weights, py::arg("flux"), py::arg("starts"),
          py::arg("offsets"), py::arg("weights"), py::arg("threads") = 0,
          "Band fluxes (nspec, nbands) of spectra flux (nspec, nwave) from concatenated band "
          "weights; OpenMP over spectra, threads <= 0 means all cores.");
    m.def("max_threads", []() { return pixedfit::resolve_threads(0); },
          "Number of OpenMP threads used when threads <= 0.");
}

}  // namespace pixedfit_bindings
