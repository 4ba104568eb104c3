// Declarations of the per-family binding functions assembled in module.cpp.
#pragma once

#include <pybind11/pybind11.h>

namespace pixedfit_bindings {

void bind_photometry(pybind11::module_& m);
void bind_rdsps(pybind11::module_& m);
void bind_legendre(pybind11::module_& m);
void bind_binning(pybind11::module_& m);
void bind_sps(pybind11::module_& m);
void bind_mixture(pybind11::module_& m);

}  // namespace pixedfit_bindings
