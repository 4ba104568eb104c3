"""Priors for SED fitting, usable as RDSPS weights and as an MCMC log-prior.

Every prior is a (not necessarily normalised) log-density of one parameter, truncated to a
range ``[lo, hi]``: ``-inf`` outside. Forms (piXedfit's names in brackets):

* :class:`Uniform` (``uniform``)
* :class:`Gaussian` (``gaussian``): ``loc``, ``scale``
* :class:`StudentT` (``studentt``): ``df``, ``loc``, ``scale``
* :class:`Gamma` (``gamma``): scipy's ``a``, ``loc``, ``scale``
* :class:`Tabulated` (``arbitrary``): density given at ``values``, linear in between
* :class:`JointWithMass` (``joint_with_mass``): Gaussian of width ``scale`` around a
  relation ``param(log M)`` tabulated at ``log_mass`` → ``param_values``. It is evaluated
  per model (RDSPS) or per walker (MCMC) at that model's own, normalised stellar mass — not
  at the posterior mean as in the original. With ``mass_surface_density=True`` the relation
  is in log(M / kpc²) and the fit supplies the bin area.

A range left as ``None`` is taken from the model library in RDSPS fits (and must be given
for MCMC). :data:`DEFAULT_RANGES` holds the original's default fitting ranges, except
``gas_logu``, whose default [−2, −2] in the original selected zero models from libraries
made with its own default generation range [−4, −1] (spec §2.2); pixedfit leaves it open
(the library's range).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

__all__ = [
    "DEFAULT_RANGES",
    "MASS_SCALED",
    "Gamma",
    "Gaussian",
    "JointWithMass",
    "Prior",
    "PriorSet",
    "StudentT",
    "Tabulated",
    "Uniform",
]

#: Default fitting ranges (spec §2.2), gas_logu excepted (see module docstring).
DEFAULT_RANGES: dict[str, tuple[float, float]] = {
    "z": (0.0, 1.0),
    "logzsol": (-2.0, 0.2),
    "log_tau": (-1.0, 1.5),
    "log_age": (-1.0, 1.14),
    "log_alpha": (-2.0, 2.0),
    "log_beta": (-2.0, 2.0),
    "log_t0": (-1.0, 1.14),
    "dust_index": (-2.2, 0.4),
    "dust1": (0.0, 4.0),
    "dust2": (0.0, 4.0),
    "log_gamma": (-4.0, 0.0),
    "log_umin": (-1.0, 1.39),
    "log_qpah": (-3.0, 1.0),
    "log_fagn": (-5.0, 0.48),
    "log_tauagn": (0.7, 2.18),
    "log_mw_age": (-2.0, 1.14),
    "log_mass": (4.0, 12.0),
}

#: Parameters that scale with the model normalisation (shifted by log10 of the scale).
MASS_SCALED = ("log_mass", "log_sfr", "log_sfr10", "log_sfr100", "log_dustmass",
               "log_mass_living", "log_mass_formed", "log_lbol")


def _check_float(value: Any, what: str, positive: bool = False) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be a number, got {value!r}") from exc
    if not math.isfinite(out) or (positive and out <= 0):
        raise ValueError(f"{what} must be finite{' and > 0' if positive else ''}, got {value!r}")
    return out


class Prior(ABC):
    """Base class: a truncated log-density of one parameter.

    Parameters
    ----------
    param : str
        Parameter name (e.g. ``"log_age"``).
    lo, hi : float, optional
        Truncation range in the parameter's units; ``None`` = open (the library's range in
        RDSPS).
    """

    kind = "prior"

    def __init__(self, param: str, lo: float | None = None, hi: float | None = None):
        if not isinstance(param, str) or not param:
            raise ValueError(f"param must be a non-empty parameter name, got {param!r}")
        self.param = param
        self.lo = None if lo is None else _check_float(lo, f"{param}: lo")
        self.hi = None if hi is None else _check_float(hi, f"{param}: hi")
        if self.lo is not None and self.hi is not None and self.hi < self.lo:
            raise ValueError(f"{param}: prior range is empty (lo={self.lo} > hi={self.hi})")

    @abstractmethod
    def _log_shape(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Untruncated log-density (up to a constant)."""

    def with_range(self, lo: float, hi: float) -> Prior:
        """A copy whose open ends are closed with ``lo`` / ``hi``.

        Parameters
        ----------
        lo, hi : float
            Ends used where this prior has none (``lo`` / ``hi`` None).

        Returns
        -------
        Prior
            The copy (this prior is unchanged).
        """
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.lo = lo if self.lo is None else self.lo
        clone.hi = hi if self.hi is None else self.hi
        return clone

    def logpdf(self, x: ArrayLike) -> NDArray[np.float64]:
        """Log prior density at ``x`` (``-inf`` outside the range or where it vanishes)."""
        arr = np.asarray(x, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.asarray(self._log_shape(arr), dtype=np.float64)
        out = np.where(np.isnan(out), -np.inf, out)
        if self.lo is not None:
            out = np.where(arr < self.lo, -np.inf, out)
        if self.hi is not None:
            out = np.where(arr > self.hi, -np.inf, out)
        return out

    def is_uniform(self) -> bool:
        """True for a flat density inside the range."""
        return False

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items() if k != "param")
        return f"{type(self).__name__}({self.param!r}, {fields})"


class Uniform(Prior):
    """Flat prior inside ``[lo, hi]``."""

    kind = "uniform"

    def _log_shape(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.zeros_like(x)

    def is_uniform(self) -> bool:
        return True


class Gaussian(Prior):
    """Gaussian prior N(loc, scale), truncated to ``[lo, hi]``."""

    kind = "gaussian"

    def __init__(self, param: str, loc: float, scale: float, lo: float | None = None,
                 hi: float | None = None):
        super().__init__(param, lo, hi)
        self.loc = _check_float(loc, f"{param}: loc")
        self.scale = _check_float(scale, f"{param}: scale", positive=True)

    def _log_shape(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        u = (x - self.loc) / self.scale
        return -0.5 * u * u - math.log(self.scale * math.sqrt(2 * math.pi))


class StudentT(Prior):
    """Student-t prior with ``df`` degrees of freedom, location and scale."""

    kind = "studentt"

    def __init__(self, param: str, df: float, loc: float, scale: float,
                 lo: float | None = None, hi: float | None = None):
        super().__init__(param, lo, hi)
        self.df = _check_float(df, f"{param}: df", positive=True)
        self.loc = _check_float(loc, f"{param}: loc")
        self.scale = _check_float(scale, f"{param}: scale", positive=True)

    def _log_shape(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        return stats.t.logpdf(x, self.df, loc=self.loc, scale=self.scale)


class Gamma(Prior):
    """Gamma prior with scipy's parameterisation (shape ``a``, ``loc``, ``scale``)."""

    kind = "gamma"

    def __init__(self, param: str, a: float, loc: float = 0.0, scale: float = 1.0,
                 lo: float | None = None, hi: float | None = None):
        super().__init__(param, lo, hi)
        self.a = _check_float(a, f"{param}: a", positive=True)
        self.loc = _check_float(loc, f"{param}: loc")
        self.scale = _check_float(scale, f"{param}: scale", positive=True)

    def _log_shape(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        return stats.gamma.logpdf(x, self.a, loc=self.loc, scale=self.scale)


class Tabulated(Prior):
    """Arbitrary prior: density ``prob`` at ``values`` (increasing), linear in between.

    The range defaults to ``[values[0], values[-1]]``; the density is zero outside.
    """

    kind = "arbitrary"

    def __init__(self, param: str, values: ArrayLike, prob: ArrayLike,
                 lo: float | None = None, hi: float | None = None):
        v = np.asarray(values, dtype=np.float64)
        p = np.asarray(prob, dtype=np.float64)
        if v.ndim != 1 or v.shape != p.shape or v.size < 2:
            raise ValueError(f"{param}: values and prob must be 1-D of the same length >= 2")
        if not (np.all(np.isfinite(v)) and np.all(np.isfinite(p))):
            raise ValueError(f"{param}: values and prob must be finite")
        if np.any(np.diff(v) <= 0):
            raise ValueError(f"{param}: values must be strictly increasing")
        if np.any(p < 0) or not np.any(p > 0):
            raise ValueError(f"{param}: prob must be >= 0 and not all zero")
        super().__init__(param, v[0] if lo is None else lo, v[-1] if hi is None else hi)
        self.values = v
        self.prob = p

    def _log_shape(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        dens = np.interp(x, self.values, self.prob, left=0.0, right=0.0)
        return np.log(dens)


class JointWithMass(Prior):
    """Gaussian prior around a relation ``param = f(log M)`` (e.g. mass–metallicity).

    Parameters
    ----------
    param : str
        The parameter constrained (e.g. ``"logzsol"``).
    log_mass : array_like
        Stellar masses (log M☉, or log M☉ kpc⁻² with ``mass_surface_density``), increasing.
    param_values : array_like
        Median of ``param`` at each ``log_mass``; linear in between, constant beyond.
    scale : float
        Gaussian scatter around the relation.
    mass_surface_density : bool
        If True the relation is in log surface density; fits pass the bin area in kpc².
    lo, hi : float, optional
        Truncation range of ``param``.
    """

    kind = "joint_with_mass"

    def __init__(self, param: str, log_mass: ArrayLike, param_values: ArrayLike, scale: float,
                 mass_surface_density: bool = False, lo: float | None = None,
                 hi: float | None = None):
        super().__init__(param, lo, hi)
        x = np.asarray(log_mass, dtype=np.float64)
        y = np.asarray(param_values, dtype=np.float64)
        if x.ndim != 1 or x.shape != y.shape or x.size < 2:
            raise ValueError(f"{param}: log_mass and param_values must be 1-D, same length >= 2")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise ValueError(f"{param}: log_mass and param_values must be finite")
        if np.any(np.diff(x) <= 0):
            raise ValueError(f"{param}: log_mass must be strictly increasing")
        self.log_mass = x
        self.param_values = y
        self.scale = _check_float(scale, f"{param}: scale", positive=True)
        self.mass_surface_density = bool(mass_surface_density)

    def _log_shape(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        # Without a mass the relation cannot be evaluated: only the range applies here.
        return np.zeros_like(x)

    def logpdf_given_mass(self, x: ArrayLike, log_mass: ArrayLike) -> NDArray[np.float64]:
        """Log density of ``param`` = x for models of (normalised) ``log_mass``.

        Parameters
        ----------
        x : array_like
            Values of ``param``.
        log_mass : array_like
            log M☉ (or log M☉ kpc⁻² with ``mass_surface_density``) of the models,
            broadcast against ``x``.

        Returns
        -------
        ndarray
            ln p(x | log_mass), including the range of this prior.
        """
        mu = np.interp(np.asarray(log_mass, dtype=np.float64), self.log_mass, self.param_values)
        u = (np.asarray(x, dtype=np.float64) - mu) / self.scale
        return self.logpdf(x) - 0.5 * u * u - math.log(self.scale * math.sqrt(2 * math.pi))


class PriorSet:
    """The priors of one fit, at most one per parameter.

    Parameters
    ----------
    priors : iterable of Prior, or mapping name → Prior or (lo, hi)
        A ``(lo, hi)`` tuple is shorthand for :class:`Uniform`.
    """

    def __init__(
        self, priors: Iterable[Prior] | Mapping[str, Prior | Sequence[float]] | None = None
    ):
        self._priors: dict[str, Prior] = {}
        if priors is None:
            return
        items: Iterable[Any]
        if isinstance(priors, Mapping):
            items = []
            for name, value in priors.items():
                if isinstance(value, Prior):
                    if value.param != name:
                        raise ValueError(f"prior for {name!r} is declared for {value.param!r}")
                    items.append(value)
                else:
                    try:
                        lo, hi = value
                    except (TypeError, ValueError) as exc:
                        raise TypeError(f"priors[{name!r}] must be a Prior or a (lo, hi) pair "
                                        f"for a uniform prior, got {value!r}") from exc
                    items.append(Uniform(name, lo, hi))
        else:
            items = priors
        for prior in items:
            if not isinstance(prior, Prior):
                raise TypeError(f"expected Prior objects, got {prior!r}")
            if prior.param in self._priors:
                raise ValueError(f"two priors given for {prior.param!r}")
            self._priors[prior.param] = prior

    def __contains__(self, name: object) -> bool:
        return name in self._priors

    def __getitem__(self, name: str) -> Prior:
        return self._priors[name]

    def __iter__(self) -> Iterator[Prior]:
        return iter(self._priors.values())

    def __len__(self) -> int:
        return len(self._priors)

    def __repr__(self) -> str:
        return f"PriorSet({list(self._priors.values())!r})"

    @property
    def names(self) -> list[str]:
        """Parameters that have a prior."""
        return list(self._priors)

    def log_prior(self, values: Mapping[str, ArrayLike], area_kpc2: float | None = None
                  ) -> NDArray[np.float64]:
        """Total log prior of parameter vectors (MCMC use).

        Parameters
        ----------
        values : mapping name → array_like
            Parameter values (all broadcastable to one shape); must include every
            parameter with a prior, and ``log_mass`` for joint priors.
        area_kpc2 : float, optional
            Bin area for surface-density joint priors.
        """
        total: NDArray[np.float64] | float = 0.0
        for name, prior in self._priors.items():
            if name not in values:
                raise ValueError(f"log_prior: no value given for parameter {name!r}")
            if isinstance(prior, JointWithMass):
                mass = np.asarray(values["log_mass"], dtype=np.float64)
                if prior.mass_surface_density:
                    if area_kpc2 is None or not area_kpc2 > 0:
                        raise ValueError(f"{name}: a surface-density joint prior needs "
                                         "area_kpc2 > 0")
                    mass = mass - math.log10(area_kpc2)
                total = total + prior.logpdf_given_mass(values[name], mass)
            else:
                total = total + prior.logpdf(values[name])
        return np.asarray(total, dtype=np.float64)
