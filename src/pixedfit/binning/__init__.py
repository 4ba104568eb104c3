"""SED-shape-aware pixel binning of data cubes.

* :mod:`~pixedfit.binning.pixels` — the binning itself (:func:`bin_pixels`, and the
  drivers from cubes, files and images) → :class:`~pixedfit.cubes.BinnedCube`
* :mod:`~pixedfit.binning.plots` — bin map, bin SEDs, S/N against radius

:class:`BinnedCube` (the data object and its FITS layouts) lives in :mod:`pixedfit.cubes`
and is re-exported here.
"""

from __future__ import annotations

from .._lazy import lazy_attributes

# Public names, imported from their submodule on first use (keeps imports light).
_LAZY = {
    "BinnedCube": "pixedfit.cubes",
    "bin_file": "pixels",
    "bin_images": "pixels",
    "bin_pixels": "pixels",
    "bin_with_map": "pixels",
    "correlated_bin_variance": "pixels",
    "reduced_chi2": "pixels",
    "systematic_error_factor": "pixels",
    "plot_bin_map": "plots",
    "plot_bin_seds": "plots",
    "plot_bin_snr_radius": "plots",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
