#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>

#include "bindings.hpp"
#include "pixedfit/common.hpp"
#include "pixedfit/legendre.hpp"

namespace py = pybind11;

namespace pixedfit_bindings {

namespace {

using darray = py::array_t<double, py::array::c_style | py::array::forcecast>;

py::tuple legendre_fit(const darray& wave, const darray& y, const darray& w, int order,
                       double clip, int max_iter, bool return_model, int threads) {
    pixedfit::require(wave.ndim() == 1, "legendre_fit: wave must be 1-D");
    pixedfit::require(y.ndim() == 2 && w.ndim() == 2, "legendre_fit: y and w must be 2-D");
    const auto n = wave.shape(0), nspec = y.shape(0);
    pixedfit::require(y.shape(1) == n && w.shape(0) == nspec && w.shape(1) == n,
                      "legendre_fit: y and w must have shape (nspec, len(wave))");
    pixedfit::require(order >= 0, "legendre_fit: order must be >= 0");
    darray coeffs({nspec, static_cast<py::ssize_t>(order + 1)});
    py::array_t<std::int32_t> status(nspec);
    darray model;
    py::array_t<std::uint8_t> used({nspec, n});
    pixedfit::LegendreOutputs out;
    out.coeffs = coeffs.mutable_data();
    out.status = status.mutable_data();
    out.used = used.mutable_data();
    if (return_model) {
        model = darray({nspec, n});
        out.model = model.mutable_data();
    }
    {
        py::gil_scoped_release release;
        pixedfit::legendre_fit(wave.data(), static_cast<std::size_t>(n), y.data(), w.data(),
                               static_cast<std::size_t>(nspec), order, clip, max_iter, threads,
                               out);
    }
    return py::make_tuple(coeffs, return_model ? py::object(model) : py::object(py::none()),
                          used, status);
}

darray legendre_eval(const darray& wave, const darray& coeffs, int threads) {
    pixedfit::require(wave.ndim() == 1 && coeffs.ndim() == 2,
                      "legendre_eval: wave must be 1-D and coeffs 2-D (nspec, order + 1)");
    pixedfit::require(coeffs.shape(1) >= 1, "legendre_eval: empty coefficients");
    darray out({coeffs.shape(0), wave.shape(0)});
    double* o = out.mutable_data();
    {
        py::gil_scoped_release release;
        pixedfit::legendre_eval(wave.data(), static_cast<std::size_t>(wave.shape(0)),
                                coeffs.data(), static_cast<std::size_t>(coeffs.shape(0)),
                                static_cast<int>(coeffs.shape(1)) - 1, o, threads);
    }
    return out;
}

}  // namespace

void bind_legendre(py::module_& m) {
    m.def("legendre_fit", &legendre_fit, py::arg("wave"), py::arg("y"), py::arg("w"),
          py::arg("order"), py::arg("clip") = 0.0, py::arg("max_iter") = 1,
          py::arg("return_model") = true, py::arg("threads") = 0,
          "Weighted least-squares Legendre fits of many spectra on one grid: returns "
          "(coeffs, model or None, used mask, status).");
    m.def("legendre_eval", &legendre_eval, py::arg("wave"), py::arg("coeffs"),
          py::arg("threads") = 0, "Evaluate Legendre series on a grid mapped to [-1, 1].");
}

}  // namespace pixedfit_bindings
