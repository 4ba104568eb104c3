// Bindings of the SPS forward model (csp.hpp).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "bindings.hpp"
#include "pixedfit/common.hpp"
#include "pixedfit/csp.hpp"
#include "pixedfit/csp_knots.hpp"
#include "pixedfit/smoothing.hpp"
#include "pixedfit/knot_projection.hpp"

namespace py = pybind11;
namespace sps = pixedfit::sps;

namespace pixedfit_bindings {

namespace {

using darray = py::array_t<double, py::array::c_style | py::array::forcecast>;
using farray = py::array_t<float, py::array::c_style | py::array::forcecast>;
using iarray = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

template <class T>
std::vector<T> take(const py::dict& d, const char* key, bool required = true) {
    if (!d.contains(key)) {
        pixedfit::require(!required, std::string("CSPGrid: missing array '") + key + "'");
        return {};
    }
    auto arr = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(d[key]);
    pixedfit::require(static_cast<bool>(arr), std::string("CSPGrid: '") + key +
                                                  "' is not convertible to an array");
    return std::vector<T>(arr.data(), arr.data() + arr.size());
}

std::size_t take_size(const py::dict& d, const char* key) {
    return d.contains(key) ? py::cast<std::size_t>(d[key]) : 0;
}

sps::Grid make_grid(const py::dict& d) {
    sps::Grid g;
    g.nz = take_size(d, "nz");
    g.nage = take_size(d, "nage");
    g.nwave = take_size(d, "nwave");
    g.ssp = take<float>(d, "ssp");
    g.logz = take<double>(d, "logz");
    g.age_edges = take<double>(d, "age_edges");
    g.mass_surv = take<double>(d, "mass_surv");
    g.mass_living = take<double>(d, "mass_living");
    g.wave = take<double>(d, "wave");
    g.dwave = take<double>(d, "dwave");
    g.calzetti = take<double>(d, "calzetti");
    g.ln_l5500 = take<double>(d, "ln_l5500");
    g.n_ionising = take_size(d, "n_ionising");
    g.nu = take_size(d, "nu");
    g.nneb = take_size(d, "nneb");
    g.nline = take_size(d, "nline");
    g.logu = take<double>(d, "logu", false);
    g.neb_edges = take<double>(d, "neb_edges", false);
    g.neb_cont = take<float>(d, "neb_cont", false);
    g.line_lum = take<double>(d, "line_lum", false);
    g.line_start = take<std::int64_t>(d, "line_start", false);
    g.line_off = take<std::int64_t>(d, "line_off", false);
    g.line_prof = take<double>(d, "line_prof", false);
    g.line_calz = take<double>(d, "line_calz", false);
    g.line_lnl = take<double>(d, "line_lnl", false);
    g.nq = take_size(d, "nq");
    g.numin = take_size(d, "numin");
    g.qpah = take<double>(d, "qpah", false);
    g.umin = take<double>(d, "umin", false);
    g.dl_delta = take<float>(d, "dl_delta", false);
    g.dl_plaw = take<float>(d, "dl_plaw", false);
    g.dl_int_delta = take<double>(d, "dl_int_delta", false);
    g.dl_int_plaw = take<double>(d, "dl_int_plaw", false);
    g.dust_to_h = take<double>(d, "dust_to_h", false);
    g.ntau = take_size(d, "ntau");
    g.agn_tau = take<double>(d, "agn_tau", false);
    g.agn_tmpl = take<float>(d, "agn_tmpl", false);
    g.validate();
    return g;
}

sps::Config make_config(sps::SfhForm sfh_form, sps::DustLaw dust_law, bool duste, bool neb,
                        bool agn, double dust1_index, double t_bc) {
    pixedfit::require(sps::is_valid(sfh_form), "sfh_form must be 0-4");
    pixedfit::require(sps::is_valid(dust_law), "dust_law must be 0 or 1");
    pixedfit::require(t_bc > 0.0, "t_bc must be > 0");
    sps::Config c;
    c.sfh_form = sfh_form;
    c.dust_law = dust_law;
    c.dust_emission = duste;
    c.nebular = neb;
    c.agn = agn;
    c.dust1_index = dust1_index;
    c.t_bc = t_bc;
    return c;
}

std::size_t check_params(const darray& params) {
    pixedfit::require(params.ndim() == 2 && params.shape(1) == sps::N_PARAMS,
                      "params must have shape (n, " + std::to_string(sps::N_PARAMS) + ")");
    return static_cast<std::size_t>(params.shape(0));
}

py::tuple csp_spectra(const sps::Grid& g, const darray& params, sps::SfhForm sfh_form,
                      sps::DustLaw dust_law, bool duste, bool neb, bool agn,
                      double dust1_index, double t_bc, bool components, int threads) {
    const auto cfg = make_config(sfh_form, dust_law, duste, neb, agn, dust1_index, t_bc);
    const std::size_t n = check_params(params);
    const auto nn = static_cast<py::ssize_t>(n), nw = static_cast<py::ssize_t>(g.nwave);
    darray spec({nn, nw});
    darray der({nn, static_cast<py::ssize_t>(sps::N_DERIVED)});
    py::object comp = py::none();
    double* cp = nullptr;
    if (components) {
        darray c({nn, static_cast<py::ssize_t>(sps::N_COMPONENTS), nw});
        cp = c.mutable_data();
        comp = c;
    }
    double* sp = spec.mutable_data();
    double* dp = der.mutable_data();
    {
        py::gil_scoped_release release;
        sps::compute_spectra(g, cfg, params.data(), n, sp, cp, dp, threads);
    }
    return py::make_tuple(spec, comp, der);
}

py::tuple csp_photometry(const sps::Grid& g, const darray& params, sps::SfhForm sfh_form,
                         sps::DustLaw dust_law, bool duste, bool neb, bool agn,
                         double dust1_index, double t_bc, const py::object& trans,
                         double scale, const iarray& starts, const iarray& offsets,
                         const darray& weights, const py::object& line_weights, int threads) {
    const auto cfg = make_config(sfh_form, dust_law, duste, neb, agn, dust1_index, t_bc);
    const std::size_t n = check_params(params);
    const auto nbands = static_cast<std::size_t>(starts.size());
    pixedfit::require(static_cast<std::size_t>(offsets.size()) == nbands + 1,
                      "offsets must have nbands + 1 entries");
    pixedfit::require(offsets.data()[0] == 0 && offsets.data()[nbands] == weights.size(),
                      "offsets do not match the weights array");
    darray tr;
    const double* tp = nullptr;
    if (!trans.is_none()) {
        tr = darray::ensure(trans);
        pixedfit::require(static_cast<bool>(tr) && tr.ndim() == 1 &&
                              static_cast<std::size_t>(tr.size()) == g.nwave,
                          "trans must be 1-D with nwave values");
        tp = tr.data();
    }
    darray lw;
    const double* lwp = nullptr;
    if (!line_weights.is_none()) {
        lw = darray::ensure(line_weights);
        pixedfit::require(static_cast<bool>(lw) && lw.ndim() == 2 &&
                              static_cast<std::size_t>(lw.shape(0)) == nbands &&
                              static_cast<std::size_t>(lw.shape(1)) == g.nline,
                          "line_weights must have shape (nbands, nline)");
        lwp = lw.data();
    }
    darray out({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(nbands)});
    darray der({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(sps::N_DERIVED)});
    double* op = out.mutable_data();
    double* dp = der.mutable_data();
    {
        py::gil_scoped_release release;
        sps::compute_photometry(g, cfg, params.data(), n, tp, scale, starts.data(),
                                offsets.data(), weights.data(), nbands, lwp, op, dp, threads);
    }
    return py::make_tuple(out, der);
}

// The name of the capsules that own the tables project_stencils returns (their arrays' base).
constexpr const char* kSharedFloats = "pixedfit.SharedFloats";

// A read-only (rows, cols) array of the values of `table`, which its base (a capsule) keeps.
py::array shared_array(sps::SharedFloats table, std::size_t rows, std::size_t cols) {
    auto* owner = new sps::SharedFloats(std::move(table));
    py::capsule base(owner, kSharedFloats,
                     [](void* p) { delete static_cast<sps::SharedFloats*>(p); });
    py::array_t<float> a({static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(cols)},
                         owner->data(), base);
    a.attr("flags").attr("writeable") = false;
    return a;
}

// The table `key` of a KnotGrid's arrays: shared when it is all of a table project_stencils
// returned (read-only, so that it never changes), else a single-precision copy.
sps::SharedFloats shared_table(const py::dict& d, const char* key, bool required = true) {
    if (!d.contains(key)) {
        pixedfit::require(!required, std::string("KnotGrid: missing array '") + key + "'");
        return {};
    }
    const py::object value = d[key];
    if (py::isinstance<py::array>(value)) {
        const auto arr = py::reinterpret_borrow<py::array>(value);
        const py::object base = arr.base();
        if (PyCapsule_IsValid(base.ptr(), kSharedFloats)) {
            const auto* owner =
                static_cast<const sps::SharedFloats*>(PyCapsule_GetPointer(base.ptr(),
                                                                           kSharedFloats));
            if (arr.data() == owner->data() && static_cast<std::size_t>(arr.size()) ==
                    owner->size() && arr.dtype().is(py::dtype::of<float>()) &&
                (arr.flags() & py::array::c_style) != 0 && !arr.writeable())
                return *owner;
        }
    }
    const auto arr = farray::ensure(value);
    pixedfit::require(static_cast<bool>(arr), std::string("KnotGrid: '") + key +
                                                  "' is not convertible to an array");
    return sps::SharedFloats::copy(arr.data(), static_cast<std::size_t>(arr.size()));
}

sps::KnotGrid make_knot_grid(const sps::Grid& g, const py::dict& d) {
    sps::KnotGrid k;
    k.nbands = take_size(d, "nbands");
    k.npair = take_size(d, "npair");
    k.nenergy = take_size(d, "nenergy");
    k.ncol = take_size(d, "ncol");
    k.band_off = take<std::int64_t>(d, "band_off");
    k.knot_calz = take<double>(d, "knot_calz");
    k.knot_lnl = take<double>(d, "knot_lnl");
    k.ssp = shared_table(d, "ssp");
    k.ssp_young = shared_table(d, "ssp_young", false);
    k.neb = shared_table(d, "neb", false);
    k.dl_delta_band = take<double>(d, "dl_delta_band", false);
    k.dl_plaw_band = take<double>(d, "dl_plaw_band", false);
    k.agn_band = take<double>(d, "agn_band", false);
    k.validate(g);
    return k;
}

py::tuple csp_photometry_knots(const sps::Grid& g, const sps::KnotGrid& k, const darray& params,
                               sps::SfhForm sfh_form, sps::DustLaw dust_law, bool duste,
                               bool neb, bool agn, double dust1_index, double t_bc,
                               double scale, const py::object& line_weights, int threads) {
    const auto cfg = make_config(sfh_form, dust_law, duste, neb, agn, dust1_index, t_bc);
    const std::size_t n = check_params(params);
    darray lw;
    const double* lwp = nullptr;
    if (!line_weights.is_none()) {
        lw = darray::ensure(line_weights);
        pixedfit::require(static_cast<bool>(lw) && lw.ndim() == 2 &&
                              static_cast<std::size_t>(lw.shape(0)) == k.nbands &&
                              static_cast<std::size_t>(lw.shape(1)) == g.nline,
                          "line_weights must have shape (nbands, nline)");
        lwp = lw.data();
    }
    darray out({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(k.nbands)});
    darray der({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(sps::N_DERIVED)});
    double* op = out.mutable_data();
    double* dp = der.mutable_data();
    {
        py::gil_scoped_release release;
        sps::compute_photometry_knots(g, k, cfg, params.data(), n, scale, lwp, op, dp, threads);
    }
    return py::make_tuple(out, der);
}

py::tuple sfh_bin_masses(sps::SfhForm form, const darray& shape, double age,
                         const darray& edges, double t_bc) {
    pixedfit::require(sps::is_valid(form), "sfh_form must be 0-4");
    pixedfit::require(shape.size() == 4, "shape must hold (tau, t0, alpha, beta)");
    pixedfit::require(edges.ndim() == 1 && edges.size() >= 2, "edges must be 1-D, >= 2 values");
    const auto nage = static_cast<std::size_t>(edges.size() - 1);
    darray young(static_cast<py::ssize_t>(nage)), old(static_cast<py::ssize_t>(nage));
    const double total = sps::sfh_bin_masses(form, shape.data(), age, edges.data(), nage, t_bc,
                                             young.mutable_data(), old.mutable_data());
    return py::make_tuple(young, old, total);
}

darray smooth_gaussian(const darray& wave, const darray& flux, const darray& sigma,
                       int threads) {
    pixedfit::require(wave.ndim() == 1 && sigma.ndim() == 1 && sigma.size() == wave.size(),
                      "smooth_gaussian: wave and sigma must be 1-D of equal length");
    pixedfit::require(flux.ndim() == 2 && flux.shape(1) == wave.size(),
                      "smooth_gaussian: flux must be (nspec, nwave)");
    darray out({flux.shape(0), flux.shape(1)});
    double* o = out.mutable_data();
    {
        py::gil_scoped_release release;
        pixedfit::smooth_gaussian(wave.data(), static_cast<std::size_t>(wave.size()),
                                  flux.data(), static_cast<std::size_t>(flux.shape(0)),
                                  sigma.data(), o, threads);
    }
    return out;
}

// The weighted row ranges (pixedfit::RowRanges) of pieces or bands: three index arrays of
// one length and the weights they point into.
pixedfit::RowRanges row_ranges(const iarray& row_begin, const iarray& row_count,
                               const iarray& weight_begin, const darray& weights) {
    pixedfit::require(row_begin.ndim() == 1 && row_count.ndim() == 1 &&
                          weight_begin.ndim() == 1 && weights.ndim() == 1,
                      "row_begin, row_count, weight_begin and weights must be 1-D");
    pixedfit::require(row_count.size() == row_begin.size() &&
                          weight_begin.size() == row_begin.size(),
                      "row_begin, row_count and weight_begin must have one length");
    return {row_begin.data(),
            row_count.data(),
            weight_begin.data(),
            static_cast<std::size_t>(row_begin.size()),
            weights.data(),
            static_cast<std::size_t>(weights.size())};
}

template <class T>
py::array_t<T> to_numpy(const std::vector<T>& v) {
    return py::array_t<T>(static_cast<py::ssize_t>(v.size()), v.data());
}

py::tuple knot_stencils(const darray& x, const iarray& row_begin, const iarray& row_count,
                        const iarray& weight_begin, const darray& weights,
                        const iarray& knot_off, const darray& knots) {
    const auto pieces = row_ranges(row_begin, row_count, weight_begin, weights);
    pixedfit::require(x.ndim() == 1 && knots.ndim() == 1, "x and knots must be 1-D");
    pixedfit::require(knot_off.ndim() == 1 &&
                          static_cast<std::size_t>(knot_off.size()) == pieces.n + 1,
                      "knot_off must have one entry per piece and one more");
    pixedfit::Stencils st;
    {
        py::gil_scoped_release release;
        st = pixedfit::knot_stencils(x.data(), static_cast<std::size_t>(x.size()), pieces,
                                     knot_off.data(), static_cast<std::size_t>(knots.size()),
                                     knots.data());
    }
    py::array_t<double> w({static_cast<py::ssize_t>(st.first.size()), py::ssize_t{4}});
    std::copy(st.weights.begin(), st.weights.end(), w.mutable_data());
    return py::make_tuple(to_numpy(st.first), w);
}

// A single-precision (m, ntail) table beside the projected columns, or none (ntail 0).
farray tail_table(const py::object& tail, std::size_t m, const char* name) {
    if (tail.is_none()) return farray(std::vector<py::ssize_t>{static_cast<py::ssize_t>(m), 0});
    auto t = farray::ensure(tail);
    pixedfit::require(static_cast<bool>(t) && t.ndim() == 2 &&
                          static_cast<std::size_t>(t.shape(0)) == m,
                      std::string("project_stencils: ") + name + " must have shape (m, ntail)");
    return t;
}

template <class T>
py::tuple project_stencils(const iarray& row_begin, const iarray& row_count,
                           const iarray& knot_off, const iarray& first, const darray& weights,
                           const py::array_t<T, py::array::c_style>& blocks, std::size_t m,
                           std::size_t split, bool upper, const py::object& tail,
                           const py::object& upper_tail) {
    const auto n = static_cast<std::size_t>(row_begin.size());
    pixedfit::require(row_begin.ndim() == 1 && row_count.ndim() == 1 && knot_off.ndim() == 1 &&
                          static_cast<std::size_t>(row_count.size()) == n &&
                          static_cast<std::size_t>(knot_off.size()) == n + 1,
                      "project_stencils: row_begin and row_count must be 1-D of one length, "
                      "knot_off one longer");
    std::int64_t nstencil = 0;
    for (std::size_t p = 0; p < n; ++p) nstencil += row_count.data()[p];
    pixedfit::require(first.ndim() == 1 && first.size() == nstencil && weights.ndim() == 2 &&
                          weights.shape(0) == nstencil && weights.shape(1) == 4,
                      "project_stencils: first must have a row per stencil, weights 4");
    pixedfit::require(blocks.ndim() == 3 &&
                          static_cast<std::size_t>(blocks.shape(2)) == pixedfit::kBlock,
                      "project_stencils: blocks must have shape (nblock, nrow, PROJECTION_BLOCK)");
    const auto nrow = static_cast<std::size_t>(blocks.shape(1));
    pixedfit::require(static_cast<std::size_t>(blocks.shape(0)) ==
                          (m + pixedfit::kBlock - 1) / pixedfit::kBlock,
                      "project_stencils: the blocks must hold the m spectra");
    pixedfit::require(upper || upper_tail.is_none(),
                      "project_stencils: upper_tail is for upper=True");
    const farray t = tail_table(tail, m, "tail");
    const auto ntail = static_cast<std::size_t>(t.shape(1));
    farray tu;
    if (upper) {
        tu = tail_table(upper_tail, m, "upper_tail");
        pixedfit::require(static_cast<std::size_t>(tu.shape(1)) == ntail,
                          "project_stencils: tail and upper_tail must have one shape");
    }
    const std::size_t ld = static_cast<std::size_t>(knot_off.data()[n]) + ntail;
    // the tables a KnotGrid shares (shared_table), written here and never after
    std::shared_ptr<float[]> out(new float[m * ld]);
    std::shared_ptr<float[]> out_upper(upper ? new float[m * ld] : nullptr);
    {
        py::gil_scoped_release release;
        pixedfit::project_stencils<T>(
            {row_begin.data(), row_count.data(), knot_off.data(), n, first.data(),
             weights.data()},
            blocks.data(), nrow, m, split, t.data(), upper ? tu.data() : nullptr, ntail,
            out.get(), out_upper.get());
    }
    return py::make_tuple(shared_array({out, m * ld}, m, ld),
                          upper ? py::object(shared_array({out_upper, m * ld}, m, ld))
                                : py::object(py::none()));
}

darray band_sums(const iarray& row_begin, const iarray& row_count, const iarray& weight_begin,
                 const darray& weights, const darray& table) {
    const auto bands = row_ranges(row_begin, row_count, weight_begin, weights);
    pixedfit::require(table.ndim() == 2, "band_sums: table must be 2-D (nrow, nt)");
    const auto nt = static_cast<std::size_t>(table.shape(1));
    darray out({static_cast<py::ssize_t>(nt), static_cast<py::ssize_t>(bands.n)});
    double* op = out.mutable_data();
    {
        py::gil_scoped_release release;
        pixedfit::band_sums(bands, table.data(), static_cast<std::size_t>(table.shape(0)), nt,
                            op);
    }
    return out;
}

// A tuple of str from a constant array of names (the column names of params, derived and
// components).
template <std::size_t N>
py::tuple names_tuple(const char* const (&names)[N]) {
    py::tuple t(N);
    for (std::size_t i = 0; i < N; ++i) t[i] = py::str(names[i]);
    return t;
}

}  // namespace

void bind_sps(py::module_& m) {
    py::enum_<sps::SfhForm>(m, "SfhForm", "Star-formation history form (sfh_form codes 0-4).")
        .value("TAU", sps::SfhForm::Tau)
        .value("DELAYED_TAU", sps::SfhForm::DelayedTau)
        .value("LOG_NORMAL", sps::SfhForm::LogNormal)
        .value("GAUSSIAN", sps::SfhForm::Gaussian)
        .value("DOUBLE_POWER_LAW", sps::SfhForm::DoublePowerLaw);
    py::enum_<sps::DustLaw>(m, "DustLaw", "Dust attenuation law (dust_law codes 0-1).")
        .value("CHARLOT_FALL", sps::DustLaw::CharlotFall)
        .value("CALZETTI", sps::DustLaw::Calzetti);
    py::class_<sps::Grid>(m, "CSPGrid",
                          "SSP grid and templates on one model wavelength grid (owned copy).")
        .def(py::init(&make_grid), py::arg("arrays"))
        .def_property_readonly("nwave", [](const sps::Grid& g) { return g.nwave; })
        .def_property_readonly("nage", [](const sps::Grid& g) { return g.nage; })
        .def_property_readonly("nz", [](const sps::Grid& g) { return g.nz; });
    py::class_<sps::KnotGrid>(m, "KnotGrid",
                              "SSP projections onto the transmission knots of a set of bands "
                              "at one redshift (pixedfit.sps.knots; owned copy).")
        .def(py::init(&make_knot_grid), py::arg("grid"), py::arg("arrays"))
        .def_property_readonly("ncol", [](const sps::KnotGrid& k) { return k.ncol; })
        .def_property_readonly("nbands", [](const sps::KnotGrid& k) { return k.nbands; });
    m.def("csp_photometry_knots", &csp_photometry_knots, py::arg("grid"), py::arg("knots"),
          py::arg("params"), py::arg("sfh_form"), py::arg("dust_law"), py::arg("duste"),
          py::arg("nebular"), py::arg("agn"), py::arg("dust1_index"), py::arg("t_bc"),
          py::arg("scale"), py::arg("line_weights"), py::arg("threads"),
          "Band fluxes (n, nbands) through transmission knots, and derived (n, N_DERIVED).");
    m.def("knot_stencils", &knot_stencils, py::arg("x"), py::arg("row_begin"),
          py::arg("row_count"), py::arg("weight_begin"), py::arg("weights"),
          py::arg("knot_off"), py::arg("knots"),
          "Stencils (first (nrow,), weights (nrow, 4)) of the rows of the pieces of a "
          "piecewise-cubic interpolation in x: piece p weights rows [row_begin[p], "
          "row_begin[p] + row_count[p]) by weights[weight_begin[p]:] and owns "
          "knots[knot_off[p]:knot_off[p + 1]] (1 or at least 4).");
    const char* project_doc =
        "Projections of a table (nrow, m), given in blocks (nblock, nrow, PROJECTION_BLOCK), "
        "onto the columns of the pieces (row_begin, row_count, knot_off) with the stencils "
        "(first, weights) of their rows: a single-precision (m, ncol + ntail) table, every "
        "column summed over its rows in order in double precision, with tail (m, ntail) "
        "beside it; the rows below split and the others are summed separately and added "
        "(when any row lies below split); with upper=True also the sums from split on, with "
        "upper_tail.";
    m.def("project_stencils", &project_stencils<double>, py::arg("row_begin"),
          py::arg("row_count"), py::arg("knot_off"), py::arg("first"), py::arg("weights"),
          py::arg("blocks"), py::arg("m"), py::arg("split"), py::arg("upper"),
          py::arg("tail") = py::none(), py::arg("upper_tail") = py::none(), project_doc);
    m.def("project_stencils", &project_stencils<float>, py::arg("row_begin"),
          py::arg("row_count"), py::arg("knot_off"), py::arg("first"), py::arg("weights"),
          py::arg("blocks"), py::arg("m"), py::arg("split"), py::arg("upper"),
          py::arg("tail") = py::none(), py::arg("upper_tail") = py::none(), project_doc);
    m.attr("PROJECTION_BLOCK") = static_cast<int>(pixedfit::kBlock);
    m.def("band_sums", &band_sums, py::arg("row_begin"), py::arg("row_count"),
          py::arg("weight_begin"), py::arg("weights"), py::arg("table"),
          "Band sums (nt, nbands) of a table (nrow, nt): band b sums weights[weight_begin[b] "
          "+ i] * table[row_begin[b] + i, :] over i < row_count[b], in the order of i, "
          "products rounded before they are added.");
    m.attr("SPS_N_PARAMS") = static_cast<int>(sps::N_PARAMS);
    m.attr("SPS_N_DERIVED") = static_cast<int>(sps::N_DERIVED);
    m.attr("SPS_PARAM_NAMES") = names_tuple(sps::kParamNames);
    m.attr("SPS_DERIVED_NAMES") = names_tuple(sps::kDerivedNames);
    m.attr("SPS_COMPONENT_NAMES") = names_tuple(sps::kComponentNames);
    m.def("csp_spectra", &csp_spectra, py::arg("grid"), py::arg("params"), py::arg("sfh_form"),
          py::arg("dust_law"), py::arg("duste"), py::arg("nebular"), py::arg("agn"),
          py::arg("dust1_index"), py::arg("t_bc"), py::arg("components"), py::arg("threads"),
          "Rest-frame spectra (n, nwave) [Lsun/A], components (n, 4, nwave) or None, "
          "derived (n, N_DERIVED) for parameter vectors (n, N_PARAMS).");
    m.def("csp_photometry", &csp_photometry, py::arg("grid"), py::arg("params"),
          py::arg("sfh_form"), py::arg("dust_law"), py::arg("duste"), py::arg("nebular"),
          py::arg("agn"), py::arg("dust1_index"), py::arg("t_bc"), py::arg("trans"),
          py::arg("scale"), py::arg("starts"), py::arg("offsets"), py::arg("weights"),
          py::arg("line_weights"), py::arg("threads"),
          "Band fluxes (n, nbands) of scale * trans * spectrum, and derived (n, N_DERIVED).");
    m.def("sfh_bin_masses", &sfh_bin_masses, py::arg("form"), py::arg("shape"), py::arg("age"),
          py::arg("edges"), py::arg("t_bc"),
          "Mass formed per look-back age bin (young, old parts; 1 Msun formed in total) and "
          "the unnormalised total.");
    m.def("sfh_mass_between",
          [](sps::SfhForm form, const darray& shape, double lo, double hi) {
              pixedfit::require(sps::is_valid(form) && shape.size() == 4, "bad SFH args");
              return sps::sfh_mass_between(form, shape.data(), lo, hi);
          },
          py::arg("form"), py::arg("shape"), py::arg("t_lo"), py::arg("t_hi"));
    m.def("smooth_gaussian", &smooth_gaussian, py::arg("wave"), py::arg("flux"),
          py::arg("sigma"), py::arg("threads") = 0,
          "Gaussian smoothing of spectra (nspec, nwave) with per-pixel sigma (Angstrom).");
    m.def("sfh_first_moment",
          [](sps::SfhForm form, const darray& shape, double age) {
              pixedfit::require(sps::is_valid(form) && shape.size() == 4, "bad SFH args");
              return sps::sfh_first_moment(form, shape.data(), age);
          },
          py::arg("form"), py::arg("shape"), py::arg("age"));
}

}  // namespace pixedfit_bindings
