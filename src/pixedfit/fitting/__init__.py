"""SED fitting: priors, the RDSPS kernel wrapper (and, later, MCMC and drivers)."""

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

__all__ = [
    "DEFAULT_RANGES",
    "MASS_SCALED",
    "Gamma",
    "Gaussian",
    "JointWithMass",
    "ModelPhotometry",
    "Prior",
    "PriorSet",
    "RdspsResult",
    "StudentT",
    "Tabulated",
    "Uniform",
    "rdsps",
]
