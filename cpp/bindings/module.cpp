// pixedfit._core: the compiled kernels behind pixedfit's Python API.
#include <pybind11/pybind11.h>

#include "bindings.hpp"

PYBIND11_MODULE(_core, m) {
    m.doc() =
        "pixedfit compiled kernels (C++17/OpenMP). Private: use the pixedfit Python API, which "
        "validates inputs before calling these functions.";
    pixedfit_bindings::bind_photometry(m);
    pixedfit_bindings::bind_rdsps(m);
    pixedfit_bindings::bind_legendre(m);
    pixedfit_bindings::bind_binning(m);
    pixedfit_bindings::bind_sps(m);
    pixedfit_bindings::bind_mixture(m);
}
