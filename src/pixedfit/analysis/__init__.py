"""Analysis of fit results: property maps (:mod:`~pixedfit.analysis.maps`), plots
(:mod:`~pixedfit.analysis.plots`) and the HTML report (:mod:`~pixedfit.analysis.report`).

Every name is imported on first use; importing this package imports nothing heavy.
"""

from __future__ import annotations

from .._lazy import lazy_attributes

# Public names, imported from their submodule on first use (keeps imports light).
_LAZY = {
    "PropertyMaps": "maps",
    "get_bestfit_params": "maps",
    "load_fit_results": "maps",
    "maps_parameters": "maps",
}

__all__ = ["PropertyMaps", "get_bestfit_params", "load_fit_results", "maps_parameters"]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
