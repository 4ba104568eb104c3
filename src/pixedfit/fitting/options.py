"""Option objects of the fit drivers (:func:`~pixedfit.fitting.fit_sed`,
:func:`~pixedfit.fitting.fit_catalog`, :func:`~pixedfit.fitting.fit_binmap`).

A driver takes the data, the library, and keyword-only option objects, each holding one
concern:

========================  =================================================================
``method=``               the sampler and its settings: ``"rdsps"`` / :class:`RdspsSettings`
                          (library pass, adaptively refined by default), ``"mcmc"`` /
                          :class:`~pixedfit.fitting.mcmc.McmcSettings`, ``"nested"`` /
                          :class:`~pixedfit.fitting.nested.NestedSettings`
``errors=``               :class:`ErrorModel`: likelihood, calibration errors, error floor,
                          invalid bands, the upper-limit rule
``spectral=``             :class:`SpectralOptions`: the spectral likelihood (line masks,
                          Legendre correction, clipping)
``cosmology=``            :class:`~pixedfit.cosmology.CosmologyParams` (or a name, code or
                          astropy cosmology)
``parallel=``             :class:`~pixedfit.parallel.Parallelism`: threads, MPI pool,
                          progress bar
========================  =================================================================

The seed is one keyword of its own (``seed=``): the drivers put it (or, for many SEDs, a
seed derived from it and each SED's position) into the sampler's settings, whatever seed
those hold.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np

from .adaptive import AdaptiveSettings
from .mcmc import McmcSettings
from .nested import NestedSettings
from .rdsps import LIKELIHOODS

__all__ = ["METHODS", "ErrorModel", "RdspsSettings", "SamplerSettings", "SpectralOptions",
           "sampler_settings"]


@dataclass(frozen=True, kw_only=True)
class ErrorModel:
    """How observed fluxes and errors enter the likelihood (:mod:`pixedfit.fitting.errors`).

    Attributes
    ----------
    likelihood : {"gauss", "student_t"}
        Likelihood of the photometry.
    dof : float
        Degrees of freedom of the Student-t likelihood.
    perc_chi2 : float
        RDSPS keeps the models with χ² below this percentile (100: all of them).
    error_floor : float
        Extra fractional error added in quadrature in every band (default 0).
    mask_invalid : bool
        Drop bands with a non-finite flux or an error ≤ 0 instead of raising.
    calibration : "auto", False, float, mapping or sequence
        Per-band calibration errors added in quadrature (σ² + (c_b f)²): ``"auto"``
        (default) takes them from the instrument table (binned cubes: from the cube);
        ``False`` turns them off; a fraction, a mapping ``{filter: fraction}`` or one
        fraction per band overrides (see :mod:`pixedfit.fitting.errors`).
    upper_limit_nsigma : float, optional
        Turn fluxes below this S/N, and NaN fluxes with an error, into limits at n σ
        (default None: every measured flux is fitted as a detection).
    """

    likelihood: str = "gauss"
    dof: float = 3.0
    perc_chi2: float = 100.0
    error_floor: float = 0.0
    mask_invalid: bool = False
    calibration: Any = "auto"
    upper_limit_nsigma: float | None = None

    def check(self) -> None:
        """Raise for a bad setting, naming it (``calibration`` is checked against the
        fitted bands by the drivers).

        Raises
        ------
        TypeError
            A number that is not one, a flag that is not a bool.
        ValueError
            A value out of its range, an unknown likelihood.
        """
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"errors.likelihood must be one of {sorted(LIKELIHOODS)}, got "
                             f"{self.likelihood!r}")
        if not _number("errors.dof", self.dof) > 0:
            raise ValueError(f"errors.dof must be > 0, got {self.dof}")
        if not 0 < _number("errors.perc_chi2", self.perc_chi2) <= 100:
            raise ValueError(f"errors.perc_chi2 must be within (0, 100], got {self.perc_chi2}")
        if not _number("errors.error_floor", self.error_floor) >= 0:
            raise ValueError(f"errors.error_floor must be a fraction >= 0, got "
                             f"{self.error_floor}")
        if not isinstance(self.mask_invalid, bool | np.bool_):
            raise TypeError(f"errors.mask_invalid must be True or False, got "
                            f"{self.mask_invalid!r}")
        if (self.upper_limit_nsigma is not None
                and not _number("errors.upper_limit_nsigma", self.upper_limit_nsigma) > 0):
            raise ValueError(f"errors.upper_limit_nsigma must be > 0 or None, got "
                             f"{self.upper_limit_nsigma}")


@dataclass(frozen=True, kw_only=True)
class SpectralOptions:
    """The spectral likelihood (:mod:`pixedfit.fitting.spectral_likelihood`).

    Attributes
    ----------
    line_mask_width : float
        Half-width (Å, observed frame) of the windows masked around emission lines
        (the original's ``del_wave_nebem``).
    poly_order : int or None
        Degree of the multiplicative Legendre calibration correction (None: none).
    clip : float or None
        Sigma-clipping threshold of spectral outliers (None: none).
    """

    line_mask_width: float = 15.0
    poly_order: int | None = 8
    clip: float | None = 4.0

    def check(self) -> None:
        """Raise for a bad setting, naming it.

        Raises
        ------
        TypeError
            A number that is not one.
        ValueError
            A value out of its range.
        """
        if not _number("spectral.line_mask_width", self.line_mask_width) >= 0:
            raise ValueError(f"spectral.line_mask_width must be >= 0 Å, got "
                             f"{self.line_mask_width}")
        order = self.poly_order
        if order is not None and (isinstance(order, bool) or not isinstance(
                order, int | np.integer) or not 0 <= order <= 40):
            raise ValueError(f"spectral.poly_order must be None or an integer 0..40, got "
                             f"{order!r}")
        if self.clip is not None and not _number("spectral.clip", self.clip) > 0:
            raise ValueError(f"spectral.clip must be > 0 or None, got {self.clip}")


def _number(name: str, value: Any) -> float:
    """``value`` as a finite float; TypeError / ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)


@dataclass(frozen=True, kw_only=True)
class RdspsSettings:
    """Settings of an RDSPS fit (random dense sampling of the parameter space).

    Attributes
    ----------
    refine : bool or AdaptiveSettings
        Refine the library pass by adaptive importance sampling until the effective sample
        size reaches its target (:mod:`pixedfit.fitting.adaptive`; True, the default, or
        these settings, whose seed the drivers set). False gives the original's plain RDSPS
        (the library pass only; its ``ess`` is usually far below a converged posterior's).
    """

    refine: bool | AdaptiveSettings = True

    def adaptive(self, seed: int) -> AdaptiveSettings | None:
        """The refinement's settings with ``seed`` (None: the library pass only).

        Parameters
        ----------
        seed : int
            Seed of the refinement.

        Returns
        -------
        AdaptiveSettings or None
        """
        if self.refine is False:
            return None
        if self.refine is True:
            out = AdaptiveSettings(seed=int(seed))
        elif isinstance(self.refine, AdaptiveSettings):
            out = dataclasses.replace(self.refine, seed=int(seed))
        else:
            raise TypeError(f"RdspsSettings.refine must be True, False or an "
                            f"AdaptiveSettings, got {self.refine!r}")
        out.check()
        return out


#: Settings of one sampler.
SamplerSettings: TypeAlias = RdspsSettings | McmcSettings | NestedSettings

#: Sampler names, as ``method=`` takes them and :attr:`FitResult.method` reports them.
METHODS = {"rdsps": RdspsSettings, "mcmc": McmcSettings, "nested": NestedSettings}


def sampler_settings(method: str | SamplerSettings) -> tuple[str, SamplerSettings]:
    """The sampler's name and settings from a driver's ``method=``.

    Parameters
    ----------
    method : {"rdsps", "mcmc", "nested"} or RdspsSettings, McmcSettings, NestedSettings
        A name (default settings) or the settings of one sampler.

    Returns
    -------
    name : str
        ``"rdsps"``, ``"mcmc"`` or ``"nested"``.
    settings : RdspsSettings, McmcSettings or NestedSettings
        Checked (bad settings fail here, before any fit).

    Raises
    ------
    ValueError, TypeError
        Naming ``method`` or the setting.
    """
    if isinstance(method, str):
        if method not in METHODS:
            raise ValueError(f"method must be 'rdsps', 'mcmc' or 'nested' (or their "
                             f"settings), got {method!r}")
        settings: SamplerSettings = METHODS[method]()
    else:
        settings = method
    for name, kind in METHODS.items():
        if isinstance(settings, kind):
            if isinstance(settings, RdspsSettings):
                settings.adaptive(0)  # checks refine
            elif isinstance(settings, McmcSettings):
                settings.check()
            else:
                NestedSettings.from_any(settings)
            return name, settings
    raise TypeError(f"method must be 'rdsps', 'mcmc', 'nested', RdspsSettings, McmcSettings "
                    f"or NestedSettings, got {method!r}")
