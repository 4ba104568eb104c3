#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "bindings.hpp"
#include "pixedfit/common.hpp"
#include "pixedfit/rdsps.hpp"

namespace py = pybind11;

namespace pixedfit_bindings {

namespace {

using darray = py::array_t<double, py::array::c_style | py::array::forcecast>;
using u8array = py::array_t<std::uint8_t, py::array::c_style | py::array::forcecast>;

// rdsps_fit's result as Python sees it (read-only attributes); nstat = npar + (nz > 1), the
// redshift last.
struct RdspsFitResult {
    darray mean, std, p16, p50, p84;       // (nsed, nstat) posterior statistics
    py::array_t<std::int64_t> best_model;  // (nsed) model index of min chi2, -1 if none
    py::array_t<std::int64_t> best_z;      // (nsed) redshift index of min chi2
    darray best_scale;                     // (nsed) normalisation of that pair
    darray chi2_min;                       // (nsed)
    darray ln_evidence;                    // (nsed) ln of the mean posterior weight
    py::array_t<std::int64_t> n_used;      // (nsed) pairs in the posterior
    darray z_posterior;                    // (nsed, nz)
    py::object weights;                    // (nsed, nz * nmod) float32, or None
};

void check_shape(const py::array& a, std::vector<py::ssize_t> shape, const std::string& name) {
    bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
    for (std::size_t i = 0; ok && i < shape.size(); ++i) ok = a.shape(i) == shape[i];
    pixedfit::require(ok, "rdsps_fit: " + name + " has the wrong shape");
}

// The tabulated priors (param, x0, dx, table) and the joint-with-mass priors (param,
// mass_param, rel_x, rel_y, scale) as Python passes them.
using TabulatedArgs = std::vector<std::tuple<std::size_t, double, double, std::vector<double>>>;
using JointArgs = std::vector<
    std::tuple<std::size_t, std::size_t, std::vector<double>, std::vector<double>, double>>;

RdspsFitResult rdsps_fit(const darray& obs, const darray& ivar, const darray& model_flux,
                         const darray& params, const u8array& mass_scaled,
                         std::optional<darray> ln_prior_model, std::optional<darray> ln_prior_z,
                         std::optional<darray> z_values, std::optional<darray> mass_offset,
                         const TabulatedArgs& tabulated, const JointArgs& joint,
                         pixedfit::Likelihood likelihood, double dof, double perc_chi2,
                         std::size_t nhist, bool return_weights, int threads,
                         std::optional<u8array> upper) {
    pixedfit::require(obs.ndim() == 2, "rdsps_fit: obs must be 2-D (nsed, nband)");
    pixedfit::require(model_flux.ndim() == 3, "rdsps_fit: model_flux must be 3-D (nz, nband, nmod)");
    pixedfit::require(params.ndim() == 2, "rdsps_fit: params must be 2-D (nmod, npar)");
    const auto nsed = obs.shape(0), nband = obs.shape(1);
    const auto nz = model_flux.shape(0), nmod = model_flux.shape(2);
    const auto npar = params.shape(1);
    check_shape(ivar, {nsed, nband}, "ivar");
    check_shape(model_flux, {nz, nband, nmod}, "model_flux");
    check_shape(params, {nmod, npar}, "params");
    check_shape(mass_scaled, {npar}, "mass_scaled");
    pixedfit::RdspsInputs in;
    in.obs = obs.data();
    in.ivar = ivar.data();
    if (upper) {
        check_shape(*upper, {nsed, nband}, "upper");
        in.upper = upper->data();
    }
    in.nsed = static_cast<std::size_t>(nsed);
    in.nband = static_cast<std::size_t>(nband);
    in.model_flux = model_flux.data();
    in.nmod = static_cast<std::size_t>(nmod);
    in.nz = static_cast<std::size_t>(nz);
    in.params = params.data();
    in.npar = static_cast<std::size_t>(npar);
    in.mass_scaled = mass_scaled.data();
    if (ln_prior_model) {
        check_shape(*ln_prior_model, {nmod}, "ln_prior_model");
        in.ln_prior_model = ln_prior_model->data();
    }
    if (ln_prior_z) {
        check_shape(*ln_prior_z, {nz}, "ln_prior_z");
        in.ln_prior_z = ln_prior_z->data();
    }
    if (z_values) {
        check_shape(*z_values, {nz}, "z_values");
        in.z_values = z_values->data();
    }
    if (mass_offset) {
        check_shape(*mass_offset, {nsed}, "mass_offset");
        in.mass_offset = mass_offset->data();
    }
    for (const auto& [param, x0, dx, table] : tabulated) {
        in.tabulated.push_back(pixedfit::TabulatedPrior{param, x0, dx, table});
    }
    for (const auto& [param, mass_param, rx, ry, scale] : joint) {
        in.joint.push_back(pixedfit::JointMassPrior{param, mass_param, rx, ry, scale});
    }
    pixedfit::RdspsOptions opt;
    opt.likelihood = likelihood;
    opt.dof = dof;
    opt.perc_chi2 = perc_chi2;
    opt.nhist = nhist;
    opt.threads = threads;

    const py::ssize_t nstat = npar + (nz > 1 ? 1 : 0);
    darray mean({nsed, nstat}), sd({nsed, nstat}), p16({nsed, nstat}), p50({nsed, nstat}),
        p84({nsed, nstat});
    py::array_t<std::int64_t> best_model(nsed), best_z(nsed), n_used(nsed);
    darray best_scale(nsed), chi2_min(nsed), ln_evidence(nsed), z_post({nsed, nz});
    py::array_t<float> weights;
    pixedfit::RdspsOutputs out;
    out.mean = mean.mutable_data();
    out.std = sd.mutable_data();
    out.p16 = p16.mutable_data();
    out.p50 = p50.mutable_data();
    out.p84 = p84.mutable_data();
    out.best_model = best_model.mutable_data();
    out.best_z = best_z.mutable_data();
    out.best_scale = best_scale.mutable_data();
    out.chi2_min = chi2_min.mutable_data();
    out.ln_evidence = ln_evidence.mutable_data();
    out.n_used = n_used.mutable_data();
    out.z_posterior = z_post.mutable_data();
    if (return_weights) {
        weights = py::array_t<float>({nsed, nz * nmod});
        out.weights = weights.mutable_data();
    }
    {
        py::gil_scoped_release release;
        pixedfit::rdsps_fit(in, opt, out);
    }
    RdspsFitResult result;
    result.mean = mean;
    result.std = sd;
    result.p16 = p16;
    result.p50 = p50;
    result.p84 = p84;
    result.best_model = best_model;
    result.best_z = best_z;
    result.best_scale = best_scale;
    result.chi2_min = chi2_min;
    result.ln_evidence = ln_evidence;
    result.n_used = n_used;
    result.z_posterior = z_post;
    result.weights = return_weights ? py::object(weights) : py::object(py::none());
    return result;
}

}  // namespace

void bind_rdsps(py::module_& m) {
    py::enum_<pixedfit::Likelihood>(m, "Likelihood",
                                    "Likelihood of the detected bands (LIKELIHOODS codes).")
        .value("GAUSSIAN", pixedfit::Likelihood::Gaussian)
        .value("STUDENT_T", pixedfit::Likelihood::StudentT);
    py::class_<RdspsFitResult>(m, "RdspsFitResult",
                               "Posterior statistics of rdsps_fit (read-only arrays).")
        .def_readonly("mean", &RdspsFitResult::mean)
        .def_readonly("std", &RdspsFitResult::std)
        .def_readonly("p16", &RdspsFitResult::p16)
        .def_readonly("p50", &RdspsFitResult::p50)
        .def_readonly("p84", &RdspsFitResult::p84)
        .def_readonly("best_model", &RdspsFitResult::best_model)
        .def_readonly("best_z", &RdspsFitResult::best_z)
        .def_readonly("best_scale", &RdspsFitResult::best_scale)
        .def_readonly("chi2_min", &RdspsFitResult::chi2_min)
        .def_readonly("ln_evidence", &RdspsFitResult::ln_evidence)
        .def_readonly("n_used", &RdspsFitResult::n_used)
        .def_readonly("z_posterior", &RdspsFitResult::z_posterior)
        .def_readonly("weights", &RdspsFitResult::weights);
    m.def("rdsps_fit", &rdsps_fit, py::arg("obs"), py::arg("ivar"), py::arg("model_flux"),
          py::arg("params"), py::arg("mass_scaled"), py::arg("ln_prior_model") = py::none(),
          py::arg("ln_prior_z") = py::none(), py::arg("z_values") = py::none(),
          py::arg("mass_offset") = py::none(),
          py::arg("tabulated") = TabulatedArgs{}, py::arg("joint") = JointArgs{},
          py::arg("likelihood") = pixedfit::Likelihood::Gaussian, py::arg("dof") = 3.0,
          py::arg("perc_chi2") = 100.0,
          py::arg("nhist") = 4096, py::arg("return_weights") = false, py::arg("threads") = 0,
          py::arg("upper") = py::none(),
          "Fused RDSPS posterior statistics of nsed SEDs against nz x nmod model pairs (see "
          "pixedfit.fitting.rdsps for the meaning of every argument; `upper` flags the bands "
          "whose obs is an upper limit): an RdspsFitResult.");
    m.def("log_norm_cdf", [](double x) { return pixedfit::log_norm_cdf(x); }, py::arg("x"),
          "ln Phi(x), the log of the standard normal CDF (the kernel's upper-limit term).");
}

}  // namespace pixedfit_bindings
