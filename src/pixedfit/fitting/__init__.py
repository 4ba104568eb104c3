"""SED fitting: priors, the RDSPS kernel, fit drivers and results."""

from .drivers import fit_binmap, fit_catalog, fit_sed
from .mcmc import McmcSettings, MCMCShortChainWarning
from .nested import (
    ModelComparison,
    NestedSamplingWarning,
    NestedSettings,
    compare_models,
)
from .priors import (
    DEFAULT_RANGES,
    MASS_SCALED,
    Gamma,
    Gaussian,
    JointWithMass,
    Prior,
    PriorSet,
    StudentT,
    Tabulated,
    Uniform,
)
from .rdsps import ModelPhotometry, RdspsResult, rdsps
from .results import FitResult, ResultStore
from .specfit import ObservedSpectrum, Resolution, read_sdss_spectrum

__all__ = [
    "DEFAULT_RANGES",
    "MASS_SCALED",
    "FitResult",
    "Gamma",
    "Gaussian",
    "JointWithMass",
    "MCMCShortChainWarning",
    "McmcSettings",
    "ModelComparison",
    "ModelPhotometry",
    "NestedSamplingWarning",
    "NestedSettings",
    "ObservedSpectrum",
    "Prior",
    "PriorSet",
    "RdspsResult",
    "Resolution",
    "ResultStore",
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
