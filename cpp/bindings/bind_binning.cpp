#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <optional>

#include "bindings.hpp"
#include "pixedfit/binning.hpp"
#include "pixedfit/common.hpp"

namespace py = pybind11;

namespace pixedfit_bindings {

namespace {

using darray = py::array_t<double, py::array::c_style | py::array::forcecast>;
using u8array = py::array_t<std::uint8_t, py::array::c_style | py::array::forcecast>;
using i32array = py::array_t<std::int32_t, py::array::c_style | py::array::forcecast>;

// bin_pixels' result as Python sees it (read-only attributes); see BinningResult.
struct BinPixelsResult {
    i32array bin_map;                // (ny, nx) 0 outside the region, bins from 1
    darray bin_flux;                 // (nbins, nbands) sums of fluxes
    darray bin_var;                  // (nbins, nbands) S/N variances of the sums
    py::array_t<std::int64_t> seed;  // (nbins) flat pixel index of the seed, -1: leftover
    darray pixel_chi2;               // (ny, nx) reduced chi2 against the bin's seed, or NaN
    bool has_leftover = false;       // the last bin is the leftover bin
    std::int64_t n_failed_seeds = 0;
    std::int64_t n_absorbed = 0;
};

BinPixelsResult bin_pixels(const darray& flux, const darray& err, const u8array& region,
                           int ref_band, const darray& snr, double r_first, double del_r,
                           double chi2_limit, double sys_factor, double max_radius,
                           bool connected, bool shape_test_first_circle, bool absorb_leftover,
                           const std::optional<darray>& rho, int threads) {
    pixedfit::require(flux.ndim() == 3, "bin_pixels: flux must be 3-D (band, y, x)");
    pixedfit::require(err.ndim() == 3, "bin_pixels: err must be 3-D (band, y, x)");
    const auto nb = static_cast<std::size_t>(flux.shape(0));
    const auto ny = static_cast<std::size_t>(flux.shape(1));
    const auto nx = static_cast<std::size_t>(flux.shape(2));
    for (int i = 0; i < 3; ++i) {
        pixedfit::require(err.shape(i) == flux.shape(i), "bin_pixels: err shape != flux shape");
    }
    pixedfit::require(region.ndim() == 2 && static_cast<std::size_t>(region.shape(0)) == ny &&
                          static_cast<std::size_t>(region.shape(1)) == nx,
                      "bin_pixels: region must be (ny, nx)");
    pixedfit::require(snr.ndim() == 1 && static_cast<std::size_t>(snr.size()) == nb,
                      "bin_pixels: snr must have one value per band");
    pixedfit::require(ref_band >= 0 && static_cast<std::size_t>(ref_band) < nb,
                      "bin_pixels: ref_band out of range");
    pixedfit::BinningParams p;
    p.r_first = r_first;
    p.del_r = del_r;
    p.chi2_limit = chi2_limit;
    p.sys_factor = sys_factor;
    p.max_radius = max_radius;
    p.connected = connected;
    p.shape_test_first_circle = shape_test_first_circle;
    p.absorb_leftover = absorb_leftover;
    if (rho) {
        pixedfit::require(rho->ndim() == 3 && static_cast<std::size_t>(rho->shape(0)) == nb &&
                              rho->shape(1) == rho->shape(2) && rho->shape(1) % 2 == 1,
                          "bin_pixels: rho must be (nbands, 2h+1, 2h+1)");
        p.rho.assign(rho->data(), rho->data() + rho->size());
        p.rho_half = static_cast<std::size_t>(rho->shape(1) / 2);
    }
    pixedfit::BinningResult res;
    {
        py::gil_scoped_release release;
        res = pixedfit::bin_pixels(flux.data(), err.data(), region.data(), nb, ny, nx,
                                   static_cast<std::size_t>(ref_band), snr.data(), p, threads);
    }
    const auto nbins = static_cast<py::ssize_t>(res.nbins);
    i32array bin_map({static_cast<py::ssize_t>(ny), static_cast<py::ssize_t>(nx)});
    std::copy(res.bin_map.begin(), res.bin_map.end(), bin_map.mutable_data());
    darray chi({static_cast<py::ssize_t>(ny), static_cast<py::ssize_t>(nx)});
    std::copy(res.pixel_chi2.begin(), res.pixel_chi2.end(), chi.mutable_data());
    darray bflux({nbins, static_cast<py::ssize_t>(nb)});
    darray bvar({nbins, static_cast<py::ssize_t>(nb)});
    std::copy(res.bin_flux.begin(), res.bin_flux.end(), bflux.mutable_data());
    std::copy(res.bin_var.begin(), res.bin_var.end(), bvar.mutable_data());
    py::array_t<std::int64_t> seed(nbins);
    std::copy(res.seed.begin(), res.seed.end(), seed.mutable_data());
    BinPixelsResult out;
    out.bin_map = bin_map;
    out.bin_flux = bflux;
    out.bin_var = bvar;
    out.seed = seed;
    out.pixel_chi2 = chi;
    out.has_leftover = res.has_leftover;
    out.n_failed_seeds = res.n_failed_seeds;
    out.n_absorbed = res.n_absorbed;
    return out;
}

darray bin_sums(const darray& values, const i32array& bin_map, int nbins, bool quadrature,
                int threads) {
    pixedfit::require(values.ndim() == 3, "bin_sums: values must be 3-D (plane, y, x)");
    pixedfit::require(bin_map.ndim() == 2 && bin_map.shape(0) == values.shape(1) &&
                          bin_map.shape(1) == values.shape(2),
                      "bin_sums: bin_map must be (ny, nx) like values");
    pixedfit::require(nbins >= 0, "bin_sums: nbins must be >= 0");
    const auto np_ = static_cast<std::size_t>(values.shape(0));
    const auto ny = static_cast<std::size_t>(values.shape(1));
    const auto nx = static_cast<std::size_t>(values.shape(2));
    std::vector<double> out;
    {
        py::gil_scoped_release release;
        out = pixedfit::bin_sums(values.data(), np_, ny, nx, bin_map.data(), nbins, quadrature,
                                 threads);
    }
    darray res({static_cast<py::ssize_t>(np_), static_cast<py::ssize_t>(nbins)});
    std::copy(out.begin(), out.end(), res.mutable_data());
    return res;
}

}  // namespace

void bind_binning(py::module_& m) {
    py::class_<BinPixelsResult>(m, "BinPixelsResult", "The bins of bin_pixels (read-only).")
        .def_readonly("bin_map", &BinPixelsResult::bin_map)
        .def_readonly("bin_flux", &BinPixelsResult::bin_flux)
        .def_readonly("bin_var", &BinPixelsResult::bin_var)
        .def_readonly("seed", &BinPixelsResult::seed)
        .def_readonly("pixel_chi2", &BinPixelsResult::pixel_chi2)
        .def_readonly("has_leftover", &BinPixelsResult::has_leftover)
        .def_readonly("n_failed_seeds", &BinPixelsResult::n_failed_seeds)
        .def_readonly("n_absorbed", &BinPixelsResult::n_absorbed);
    m.def("bin_pixels", &bin_pixels, py::arg("flux"), py::arg("err"), py::arg("region"),
          py::arg("ref_band"), py::arg("snr"), py::arg("r_first"), py::arg("del_r"),
          py::arg("chi2_limit"), py::arg("sys_factor"), py::arg("max_radius"),
          py::arg("connected"), py::arg("shape_test_first_circle"), py::arg("absorb_leftover"),
          py::arg("rho") = py::none(), py::arg("threads") = 0,
          "SED-shape-aware pixel binning of a (band, y, x) cube; returns a BinPixelsResult "
          "with bin_map (ny, nx) int32, bin_flux and bin_var (nbins, nbands), seed (nbins) "
          "flat indices (-1 for the leftover bin), pixel_chi2 (ny, nx), has_leftover, "
          "n_failed_seeds, n_absorbed.");
    m.def("bin_sums", &bin_sums, py::arg("values"), py::arg("bin_map"), py::arg("nbins"),
          py::arg("quadrature"), py::arg("threads") = 0,
          "Per-bin sums (or quadrature sums) of values (nplanes, ny, nx) over a bin map: "
          "(nplanes, nbins); NaN where any pixel of the bin is non-finite.");
    m.def("shape_reduced_chi2",
          [](const darray& f1, const darray& s1, const darray& f2, const darray& s2) {
              pixedfit::require(f1.ndim() == 1 && f1.size() == s1.size() &&
                                    f1.size() == f2.size() && f1.size() == s2.size() &&
                                    f1.size() > 0,
                                "shape_reduced_chi2: four 1-D arrays of equal, non-zero size");
              return pixedfit::shape_reduced_chi2(f1.data(), s1.data(), f2.data(), s2.data(),
                                                  static_cast<std::size_t>(f1.size()));
          },
          py::arg("f1"), py::arg("s1"), py::arg("f2"), py::arg("s2"),
          "Reduced chi2 of SED f2 against f1 scaled onto it by least squares.");
}

}  // namespace pixedfit_bindings
