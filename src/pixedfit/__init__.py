"""pixedfit: spatially resolved SED analysis of galaxies with a fast C++/OpenMP core.

The compiled kernels live in the private extension :mod:`pixedfit._core`; use the Python
modules, which validate their inputs:

* :mod:`pixedfit.filters` — filter library and photometry
* :mod:`pixedfit.cosmology` — distances, ages, physical pixel sizes
* :mod:`pixedfit.units` — conventions and flux-unit conversions
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pixedfit")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = ["__version__"]
