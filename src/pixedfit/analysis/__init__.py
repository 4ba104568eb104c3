"""Analysis of fit results: property maps (:mod:`~pixedfit.analysis.maps`), plots
(:mod:`~pixedfit.analysis.plots`) and the HTML report (:mod:`~pixedfit.analysis.report`).

Plots and the report import matplotlib lazily; importing this package does not.
"""

from .maps import PropertyMaps, get_bestfit_params, load_fit_results, maps_parameters

__all__ = ["PropertyMaps", "get_bestfit_params", "load_fit_results", "maps_parameters"]
