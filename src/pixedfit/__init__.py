"""pixedfit: spatially resolved SED analysis of galaxies with a fast C++/OpenMP core.

The compiled kernels live in the private extension :mod:`pixedfit._core`; use the Python
modules, which validate their inputs:

* :mod:`pixedfit.filters` — filter library and photometry
* :mod:`pixedfit.cosmology` — distances, ages, physical pixel sizes
* :mod:`pixedfit.units` — conventions and flux-unit conversions
* :mod:`pixedfit.cubes` — :class:`FluxCube`, :class:`SpecPhotCube` (data cubes, FITS I/O)
* :mod:`pixedfit.binning` — SED-shape-aware pixel binning → :class:`BinnedCube`
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("pixedfit")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

# Public objects imported on first use (keeps ``import pixedfit`` light).
_LAZY = {
    "FluxCube": "pixedfit.cubes",
    "SpecPhotCube": "pixedfit.cubes",
    "BinnedCube": "pixedfit.cubes",
    "SEDModel": "pixedfit.sps",
    "ModelLibrary": "pixedfit.library",
    "generate_library": "pixedfit.library",
    "fit_sed": "pixedfit.fitting",
    "fit_catalog": "pixedfit.fitting",
    "fit_binmap": "pixedfit.fitting",
    "FitResult": "pixedfit.fitting",
}

__all__ = [
    "BinnedCube",
    "FitResult",
    "FluxCube",
    "ModelLibrary",
    "SEDModel",
    "SpecPhotCube",
    "__version__",
    "fit_binmap",
    "fit_catalog",
    "fit_sed",
    "generate_library",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    if name == "binning":
        return import_module("pixedfit.binning")
    raise AttributeError(f"module 'pixedfit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
