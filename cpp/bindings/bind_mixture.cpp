#include <cstdint>
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "bindings.hpp"
#include "pixedfit/common.hpp"
#include "pixedfit/mixture.hpp"
#include "pixedfit/mixture_density.hpp"

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

pixedfit::ProposalDensity make_proposal_density(double df, const darray& t_chols,
                                                const py::array_t<std::int64_t, py::array::c_style |
                                                                                    py::array::forcecast>&
                                                    t_offsets,
                                                const darray& t_centres, const darray& t_log_coef,
                                                const darray& box_chols, const darray& box_means,
                                                const darray& box_log_coef,
                                                double log_defensive) {
    pixedfit::require(t_centres.ndim() == 2 && t_centres.shape(1) >= 1,
                      "ProposalDensity: t_centres must have shape (k, d)");
    const auto d = t_centres.shape(1);
    pixedfit::require(t_chols.ndim() == 3 && t_chols.shape(1) == d && t_chols.shape(2) == d,
                      "ProposalDensity: t_chols must have shape (groups, d, d)");
    const auto groups = t_chols.shape(0);
    pixedfit::require(t_offsets.ndim() == 1 && t_offsets.shape(0) == groups + 1,
                      "ProposalDensity: t_offsets must have shape (groups + 1,)");
    std::vector<std::size_t> offsets(static_cast<std::size_t>(groups + 1));
    for (py::ssize_t g = 0; g <= groups; ++g) {
        const auto v = t_offsets.at(g);
        pixedfit::require(v >= 0, "ProposalDensity: t_offsets must not be negative");
        offsets[static_cast<std::size_t>(g)] = static_cast<std::size_t>(v);
    }
    pixedfit::require(offsets.back() == static_cast<std::size_t>(t_centres.shape(0)),
                      "ProposalDensity: t_offsets must end at the number of kernels");
    pixedfit::require(t_log_coef.ndim() == 1 && t_log_coef.shape(0) == t_centres.shape(0),
                      "ProposalDensity: t_log_coef must have shape (k,)");
    pixedfit::require(box_means.ndim() == 2 && box_means.shape(1) == d,
                      "ProposalDensity: box_means must have shape (b, d)");
    const auto nb = box_means.shape(0);
    pixedfit::require(box_chols.ndim() == 3 && box_chols.shape(0) == nb &&
                          box_chols.shape(1) == d && box_chols.shape(2) == d,
                      "ProposalDensity: box_chols must have shape (b, d, d)");
    pixedfit::require(box_log_coef.ndim() == 1 && box_log_coef.shape(0) == nb,
                      "ProposalDensity: box_log_coef must have shape (b,)");
    return pixedfit::ProposalDensity(
        static_cast<std::size_t>(d), df, t_chols.data(), static_cast<std::size_t>(groups),
        offsets.data(), t_centres.data(), t_log_coef.data(), box_chols.data(),
        static_cast<std::size_t>(nb), box_means.data(), box_log_coef.data(), log_defensive);
}

darray proposal_log_density(const pixedfit::ProposalDensity& q, const darray& y,
                            const darray& log_box) {
    const auto d = static_cast<py::ssize_t>(q.dim());
    pixedfit::require(y.ndim() == 2 && y.shape(1) == d,
                      "ProposalDensity.log_density: y must have shape (n, d)");
    const auto n = y.shape(0);
    pixedfit::require(log_box.ndim() == 1 && log_box.shape(0) == n,
                      "ProposalDensity.log_density: log_box must have shape (n,)");
    darray out(n);
    {
        py::gil_scoped_release release;
        q.log_density(y.data(), static_cast<std::size_t>(n), log_box.data(), out.mutable_data());
    }
    return out;
}

darray box_fractions(const darray& chols, const darray& means, const darray& normals) {
    pixedfit::require(means.ndim() == 2 && means.shape(1) >= 1,
                      "box_fractions: means must have shape (k, d)");
    const auto k = means.shape(0), d = means.shape(1);
    pixedfit::require(chols.ndim() == 3 && chols.shape(0) == k && chols.shape(1) == d &&
                          chols.shape(2) == d,
                      "box_fractions: chols must have shape (k, d, d)");
    pixedfit::require(normals.ndim() == 2 && normals.shape(1) == d && normals.shape(0) >= 1,
                      "box_fractions: normals must have shape (n, d) with n >= 1");
    std::vector<double> shares;
    {
        py::gil_scoped_release release;
        shares = pixedfit::box_fractions(chols.data(), means.data(), static_cast<std::size_t>(k),
                                         normals.data(), static_cast<std::size_t>(normals.shape(0)),
                                         static_cast<std::size_t>(d));
    }
    darray out(k);
    std::copy(shares.begin(), shares.end(), out.mutable_data());
    return out;
}

}  // namespace

void bind_mixture(py::module_& m) {
    m.def("box_fractions", &box_fractions, py::arg("chols"), py::arg("means"), py::arg("normals"),
          "Share (k,) of the draws means[k] + chols[k] @ z (z the rows of normals (n, d), "
          "chols (k, d, d) lower triangular) inside the open unit box.");
    m.def("em_gaussian_mixture", &em_gaussian_mixture, py::arg("points"), py::arg("weights"),
          py::arg("start_means"), py::arg("start_cov"), py::arg("ridge"), py::arg("ess"),
          py::arg("min_points"), py::arg("max_iter"), py::arg("tol"),
          "Gaussian mixture fitted to weighted points by EM: returns (shares (k,), means "
          "(k, d), covariances (k, d, d), iterations); k = 0 when every kernel was dropped.");
    py::class_<pixedfit::ProposalDensity>(
        m, "ProposalDensity",
        "Log density of a mixture of Student-t kernel groups, the logistic box prior and "
        "Gaussian kernels in box coordinates (pixedfit/mixture_density.hpp; owned copy).")
        .def(py::init(&make_proposal_density), py::arg("df"), py::arg("t_chols"),
             py::arg("t_offsets"), py::arg("t_centres"), py::arg("t_log_coef"),
             py::arg("box_chols"), py::arg("box_means"), py::arg("box_log_coef"),
             py::arg("log_defensive"))
        .def("log_density", &proposal_log_density, py::arg("y"), py::arg("log_box"),
             "ln q of the rows of y (n, d), given log_box (n,) = sum_j ln sigma(y_ij) "
             "(1 - sigma(y_ij)).")
        .def_property_readonly("dim", &pixedfit::ProposalDensity::dim);
}

}  // namespace pixedfit_bindings
