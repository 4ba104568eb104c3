#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "bindings.hpp"
#include "pixedfit/common.hpp"
#include "pixedfit/mixture.hpp"

namespace py = pybind11;

namespace pixedfit_bindings {

namespace {

using darray = py::array_t<double, py::array::c_style | py::array::forcecast>;

py::tuple em_gaussian_mixture(const darray& points, const darray& weights,
                              const darray& start_means, const darray& start_cov,
                              const darray& ridge, double ess, double min_points, int max_iter,
                              double tol) {
    pixedfit::require(points.ndim() == 2, "em_gaussian_mixture: points must be 2-D (n, d)");
    const auto n = points.shape(0), d = points.shape(1);
    pixedfit::require(weights.ndim() == 1 && weights.shape(0) == n,
                      "em_gaussian_mixture: weights must have shape (n,)");
    pixedfit::require(start_means.ndim() == 2 && start_means.shape(1) == d,
                      "em_gaussian_mixture: start_means must have shape (k, d)");
    pixedfit::require(start_cov.ndim() == 2 && start_cov.shape(0) == d && start_cov.shape(1) == d,
                      "em_gaussian_mixture: start_cov must have shape (d, d)");
    pixedfit::require(ridge.ndim() == 1 && ridge.shape(0) == d,
                      "em_gaussian_mixture: ridge must have shape (d,)");
    pixedfit::GaussianMixture fit;
    {
        py::gil_scoped_release release;
        fit = pixedfit::em_gaussian_mixture(
            points.data(), static_cast<std::size_t>(n), static_cast<std::size_t>(d),
            weights.data(), start_means.data(), static_cast<std::size_t>(start_means.shape(0)),
            start_cov.data(), ridge.data(), ess, min_points, max_iter, tol);
    }
    const auto k = static_cast<py::ssize_t>(fit.size());
    darray shares(k), means({k, d}), covs({k, d, d});
    std::copy(fit.shares.begin(), fit.shares.end(), shares.mutable_data());
    std::copy(fit.means.begin(), fit.means.end(), means.mutable_data());
    std::copy(fit.covs.begin(), fit.covs.end(), covs.mutable_data());
    return py::make_tuple(shares, means, covs, fit.iterations);
}

}  // namespace

void bind_mixture(py::module_& m) {
    m.def("em_gaussian_mixture", &em_gaussian_mixture, py::arg("points"), py::arg("weights"),
          py::arg("start_means"), py::arg("start_cov"), py::arg("ridge"), py::arg("ess"),
          py::arg("min_points"), py::arg("max_iter"), py::arg("tol"),
          "Gaussian mixture fitted to weighted points by EM: returns (shares (k,), means "
          "(k, d), covariances (k, d, d), iterations); k = 0 when every kernel was dropped.");
}

}  // namespace pixedfit_bindings
