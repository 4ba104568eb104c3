"""SED fitting: priors, the RDSPS kernel, fit drivers and results."""

from __future__ import annotations

from .._lazy import lazy_attributes

# ``rdsps`` is both a submodule and a function: bind the function now, or a
# later ``import pixedfit.fitting.rdsps`` would leave the module under that name.
from .rdsps import rdsps

# Public names, imported from their submodule on first use (keeps imports light).
_LAZY = {
    "fit_binmap": "drivers",
    "fit_catalog": "drivers",
    "fit_sed": "drivers",
    "ErrorModel": "options",
    "RdspsSettings": "options",
    "SpectralOptions": "options",
    "CosmologyParams": "pixedfit.cosmology",
    "Parallelism": "pixedfit.parallel",
    "ChainRepairWarning": "mcmc",
    "MCMCShortChainWarning": "mcmc",
    "McmcSettings": "mcmc",
    "DEFAULT_RANGES": "priors",
    "Gamma": "priors",
    "Gaussian": "priors",
    "JointWithMass": "priors",
    "MASS_SCALED": "priors",
    "Prior": "priors",
    "PriorSet": "priors",
    "StudentT": "priors",
    "Tabulated": "priors",
    "Uniform": "priors",
    "ModelComparison": "comparison",
    "NestedSamplingWarning": "nested",
    "NestedSettings": "nested",
    "compare_models": "comparison",
    "AdaptiveSettings": "adaptive",
    "ConvergenceWarning": "adaptive",
    "MassBoxWarning": "boxes",
    "ModelPhotometry": "pixedfit.library",
    "RdspsResult": "rdsps",
    "FitResult": "results",
    "FitResults": "results",
    "ResultStore": "results",
    "ObservedSpectrum": "spectral_likelihood",
    "Resolution": "spectral_likelihood",
    "read_sdss_spectrum": "spectral_likelihood",
}

__all__ = [
    "DEFAULT_RANGES",
    "MASS_SCALED",
    "AdaptiveSettings",
    "ChainRepairWarning",
    "ConvergenceWarning",
    "CosmologyParams",
    "ErrorModel",
    "FitResult",
    "FitResults",
    "Gamma",
    "Gaussian",
    "JointWithMass",
    "MCMCShortChainWarning",
    "MassBoxWarning",
    "McmcSettings",
    "ModelComparison",
    "ModelPhotometry",
    "NestedSamplingWarning",
    "NestedSettings",
    "ObservedSpectrum",
    "Parallelism",
    "Prior",
    "PriorSet",
    "RdspsResult",
    "RdspsSettings",
    "Resolution",
    "ResultStore",
    "SpectralOptions",
    "StudentT",
    "Tabulated",
    "Uniform",
    "compare_models",
    "fit_binmap",
    "fit_catalog",
    "fit_sed",
    "rdsps",
    "read_sdss_spectrum",
]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
