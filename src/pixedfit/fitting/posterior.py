"""The posterior of one SED as the samplers see it: the vectorised log posterior
(:class:`LogProbability`: photometry and/or spectrum, priors, the prior box; models made by
the batched C++ engine), the library pass that seeds every sampler (:class:`LibraryPass`),
the sampling problem of one SED (:func:`sampling_problem`: free parameters, box, the
data's mass box, start candidates) and the products of a set of posterior samples
(:func:`posterior_products`: percentiles, derived quantities, SED and SFH draws).

Shared by the adaptive RDSPS refinement (:mod:`pixedfit.fitting.adaptive`), the MCMC
(:mod:`pixedfit.fitting.mcmc`) and nested sampling (:mod:`pixedfit.fitting.nested`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
from numpy.typing import NDArray

from ..cosmology import age_of_universe
from ..library import derived_table, derived_table_of_batch
from ..sps.model import COMPONENT_NAMES, DEFAULTS, DERIVED_NAMES, PARAM_NAMES
from .boxes import (
    DEFAULT_LOG_MASS_TO_LIGHT,
    log_mass_box,
)
from .errors import BandChi2, scale_fit
from .priors import DEFAULT_RANGES, MASS_SCALED, PriorSet

if TYPE_CHECKING:
    from ..library import ModelLibrary, ModelPhotometry
    from ..sps import SEDModel
    from .rdsps import RdspsResult

__all__ = ["LibraryPass", "LogProbability", "SamplingProblem", "build_log_probability",
           "data_mass_box", "derived_logs", "posterior_products", "sampling_problem"]


class FitContext(Protocol):
    """What the samplers need of a fit's context (the drivers' ``_Context``, see
    :mod:`pixedfit.fitting.drivers`): the library, the model, the bands, the priors and the
    settings of one run."""

    @property
    def library(self) -> ModelLibrary:
        """The model library."""
        ...

    @property
    def model(self) -> SEDModel | None:
        """The library's SEDModel (None: the library records no complete configuration)."""
        ...

    @property
    def filters(self) -> list[str]:
        """The bands of the photometry."""
        ...

    @property
    def priors(self) -> PriorSet:
        """The priors of the fit."""
        ...

    @property
    def settings(self) -> dict[str, Any]:
        """The run's settings (likelihood, error model, cosmology, …)."""
        ...

    @property
    def threads(self) -> int | None:
        """Threads of the model computations."""
        ...

    def age_prior(self, z: float | None) -> NDArray[np.float64] | None:
        """ln prior (0 or −inf) of the library models from the age of the universe at z."""
        ...

    def config(self) -> dict[str, Any]:
        """The run's configuration, for the results."""
        ...


def derived_logs(model: Any, derived: Mapping[str, NDArray]) -> dict[str, NDArray]:
    """piXedfit-named log derived quantities (absolute: for the models' own masses).

    Parameters
    ----------
    model : SEDModel
        The model (whether it has dust emission and an AGN).
    derived : mapping str → ndarray
        Derived quantities of a batch (:attr:`pixedfit.sps.RestSpectrum.derived`).

    Returns
    -------
    dict of str to ndarray
    """
    return derived_table(model, derived)


def _derived_columns(derived: Mapping[str, NDArray]) -> NDArray[np.float64]:
    """Derived quantities of a batch, a mapping of arrays (n,) (:attr:`SEDModel.derived
    <pixedfit.sps.RestSpectrum.derived>`), as one array (n, len(DERIVED_NAMES)): the
    form the model's kernels return."""
    return np.column_stack([np.asarray(derived[k], dtype=np.float64) for k in DERIVED_NAMES])


class LogProbability:
    """Vectorised log posterior of a set of walkers (callable on (n, ndim) arrays).

    At a fixed redshift, a box (with the fixed parameters) that the model accepts whole is
    checked once, here, and the positions inside it go to the model's kernel unchecked;
    any other box goes through :meth:`SEDModel.photometry
    <pixedfit.sps.SEDModel.photometry>`, which refuses invalid positions with a ValueError
    naming the parameter.

    Parameters
    ----------
    model : SEDModel
    free : sequence of str
        Sampled parameters (model parameter names and possibly ``z``), column order.
    lo, hi : ndarray, shape (ndim,)
        Prior box.
    fixed : mapping
        Values of the fixed model parameters (others take ``DEFAULTS``).
    priors : PriorSet
    z : float or None
        Fixed redshift, or None when ``z`` is in ``free``.
    filters, obs, err : photometry (None for a spectrum-only fit)
        Bands and f_λ (the limit for an upper limit), total 1σ errors (erg s⁻¹ cm⁻² Å⁻¹;
        the error model's :attr:`~pixedfit.fitting.errors.Observations.sigma`, +inf drops
        a band).
    spectral : SpectralLikelihood, optional
    area_kpc2 : float, optional
        Bin area for surface-density joint priors.
    age_limit : bool
        Exclude ``log_age`` above the age of the universe at z.
    cosmo, H0, Om0
        Cosmology of the age limit.
    dz_interp : float
        Free-z interpolation step.
    threads : int, optional
    upper : ndarray of bool, shape (nband,), optional
        Bands that are upper limits (see :mod:`pixedfit.fitting.errors`).
    """

    def __init__(self, model: Any, free: Sequence[str], lo: NDArray, hi: NDArray,
                 fixed: Mapping[str, float], priors: PriorSet, z: float | None,
                 filters: Sequence[str] | None, obs: NDArray | None, err: NDArray | None,
                 *, spectral: Any = None, area_kpc2: float | None = None, age_limit: bool = True,
                 cosmo: Any = None, H0: float = 70.0, Om0: float = 0.3,
                 dz_interp: float = 0.001, threads: int | None = None,
                 upper: NDArray | None = None):
        self.model = model
        self.free = list(free)
        self.lo = np.asarray(lo, dtype=np.float64)
        self.hi = np.asarray(hi, dtype=np.float64)
        self.priors = priors
        self.z = z
        self.filters = list(filters) if filters else []
        self._names = tuple(self.filters)
        self.obs = obs
        self.err = None if err is None else np.asarray(err, dtype=np.float64)
        self.ivar = None if err is None else 1.0 / cast("NDArray[np.float64]", self.err)**2
        self.upper = (None if upper is None or not np.any(upper)
                      else np.asarray(upper, dtype=bool))
        # photometric fits (filters) have observations
        self._chi2 = (BandChi2(cast("NDArray", obs), cast("NDArray", self.err), self.upper)
                      if self.filters else None)
        self.spectral = spectral
        self.area = area_kpc2
        self.age_limit = age_limit
        self.cosmo, self.H0, self.Om0 = cosmo, H0, Om0
        self.dz = float(dz_interp)
        self.threads = threads
        self.base = np.array([float(fixed.get(n, DEFAULTS[n])) for n in PARAM_NAMES])
        # the sampled model parameters: their columns in theta and in the model's array
        # (param_array copies them in one go)
        self._src = np.array([j for j, n in enumerate(self.free) if n in PARAM_NAMES],
                             dtype=np.intp)
        self._dst = np.array([PARAM_NAMES.index(self.free[j]) for j in self._src],
                             dtype=np.intp)
        self.iz = self.free.index("z") if "z" in self.free else None
        self.iv = self.free.index("veldisp") if "veldisp" in self.free else None
        self.im = self.free.index("log_mass") if "log_mass" in self.free else None
        self.fixed = dict(fixed)
        if self.age_limit and self.z is not None:
            self._age_max = math.log10(float(age_of_universe(self.z, cosmo, H0, Om0)))
        # photometry at one valid redshift from a box the model accepts whole: the model is
        # called without checking every batch again (see _photometry)
        self._unchecked = (self.iz is None and bool(self.filters) and self.z is not None
                           and math.isfinite(self.z) and self.z > 0 and self._valid_box())
        self.ncalls = 0

    def _valid_box(self) -> bool:
        """Whether the model accepts every position inside the box: it checks each
        parameter against a range of its own, so the box's two corners stand for all."""
        corners = np.tile(self.base, (2, 1))
        corners[:, self._dst] = np.stack([self.lo, self.hi])[:, self._src]
        try:
            self.model._checked(corners)
        except ValueError:
            return False
        return True

    @property
    def ndim(self) -> int:
        """Number of sampled parameters."""
        return len(self.free)

    def param_array(self, theta: NDArray) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(n, 16) model parameter arrays and (n,) redshifts of walker positions."""
        theta = np.atleast_2d(theta)
        zz = theta[:, self.iz] if self.iz is not None else np.full(theta.shape[0], self.z)
        return self._model_params(theta), zz

    def _model_params(self, theta: NDArray[np.float64]) -> NDArray[np.float64]:
        """(n, 16) model parameter array (C order) of positions ``theta`` (n, ndim)."""
        arr = np.empty((theta.shape[0], self.base.size))
        arr[:] = self.base
        if self._src.size:
            arr[:, self._dst] = theta[:, self._src]
        return arr

    def _photometry(self, arr: NDArray, zz: NDArray | None) -> tuple[NDArray, NDArray]:
        """Band fluxes (n, nband) and derived quantities (n, len(DERIVED_NAMES)) of the
        models ``arr`` (n, 16) at the fixed redshift (``zz`` None) or at their own ``zz``."""
        if zz is None:
            # one redshift for every evaluation: the transmission knots (sps.knots), ≈ 5×
            # faster than summing the grid, within 3e-5 of it
            z = float(cast(float, self.z))
            if self._unchecked:  # positions inside a box the model accepts (_valid_box)
                return self.model._photometry_at(arr, z, self._names, False, True,
                                                 self.threads)
            flux, der = self.model.photometry(arr, z, self.filters, threads=self.threads,
                                              return_derived=True, knots=True)
            return flux, _derived_columns(der)
        # free z: interpolate in ln f between the grid nodes around each walker's z
        node = np.floor(zz / self.dz).astype(np.int64)
        t = zz / self.dz - node
        out = np.empty((arr.shape[0], len(self.filters)))
        derived = np.empty((arr.shape[0], len(DERIVED_NAMES)))
        for k in np.unique(node):
            sel = node == k
            sub = np.ascontiguousarray(arr[sel])
            za, zb = max(k * self.dz, 1e-5), (k + 1) * self.dz
            # the grid sum: the transmission knots would need a projection per node
            fa, der = self.model.photometry(sub, za, self.filters, threads=self.threads,
                                            return_derived=True)
            fb = self.model.photometry(sub, zb, self.filters, threads=self.threads)
            tt = t[sel][:, None]
            with np.errstate(divide="ignore", invalid="ignore"):
                inter = np.exp((1 - tt) * np.log(fa) + tt * np.log(fb))
            out[sel] = np.where((fa > 0) & (fb > 0), inter, (1 - tt) * fa + tt * fb)
            derived[sel] = _derived_columns(der)
        return out, derived

    def evaluate(self, theta: NDArray, extras: bool = False,
                 mass_proposal: Callable[[NDArray, NDArray], tuple[NDArray, NDArray]]
                 | None = None, values: bool = True) -> tuple[NDArray, dict]:
        """Log posterior of walker positions (n, ndim) and, with ``extras``, model outputs.

        Parameters
        ----------
        theta : ndarray, shape (n, ndim) or (ndim,)
            Positions in the sampled parameters (:attr:`free`).
        extras : bool
            Also return the model outputs of the m positions inside the box: ``index``
            (their rows), ``chi2``, ``photometry`` (m, nband), ``values`` (parameters and
            log derived quantities, absolute), ``scale`` (profiled spectral normalisation)
            and ``spec_model`` / ``spec_factor`` (m, npix) for spectral fits.
        mass_proposal : callable, optional
            Photometric fits with ``log_mass`` sampled: draws ``log_mass`` given the rest of
            each position, from the model photometry the position's own ``log_mass`` gives.
            It is called as ``mass_proposal(photometry (m, nband), log_mass (m,))`` for the
            m positions inside the box and returns the new log masses (m,) and their log
            proposal densities (m,, per dex). The model scales exactly with the mass, so no
            second model evaluation is needed; the posterior is that of the new positions,
            returned in ``extras`` as ``theta`` (m, ndim) with ``log_q_mass``.
        values : bool
            With ``extras``: include ``values`` (False: the callers that need only the
            fluxes or χ² skip building them).

        Returns
        -------
        lnp : ndarray, shape (n,)
            Log posterior (−inf outside the box or the priors).
        extras : dict
            The model outputs (empty without ``extras``).
        """
        theta = np.array(theta, dtype=np.float64, ndmin=2)
        n = theta.shape[0]
        lnp = np.full(n, -np.inf)
        inside = ((theta >= self.lo) & (theta <= self.hi)).all(axis=1)
        arr = self._model_params(theta)
        zz = None if self.iz is None else theta[:, self.iz]
        if self.age_limit:
            if zz is None:
                inside &= arr[:, 2] <= self._age_max
            elif inside.any():
                # the age of the universe at the redshifts inside the box only: a walker
                # may be proposed at z < 0, where it is undefined (and raises)
                lim = np.full(n, -np.inf)
                lim[inside] = np.log10(np.asarray(age_of_universe(zz[inside], self.cosmo,
                                                                  self.H0, self.Om0)))
                inside &= arr[:, 2] <= lim
        out: dict[str, Any] = {}
        idx = np.flatnonzero(inside)
        if idx.size == 0:
            return lnp, out
        self.ncalls += idx.size
        sub = arr if idx.size == n else arr[idx]  # (C order either way)
        chi2 = np.zeros(idx.size)
        derived_raw = None
        phot = None
        mass_shift = log_q_mass = None
        if self._chi2 is not None:  # photometry
            phot, derived_raw = self._photometry(sub, None if zz is None else zz[idx])
            if mass_proposal is not None and self.im is not None:
                new_mass, log_q_mass = mass_proposal(phot, sub[:, 0].copy())
                mass_shift = np.asarray(new_mass, dtype=np.float64) - sub[:, 0]
                phot = phot * 10.0 ** mass_shift[:, None]
                sub[:, 0] += mass_shift
                theta[idx, self.im] = sub[:, 0]
            chi2 += self._chi2(phot)
        scale = np.ones(idx.size)
        spec = None
        if self.spectral is not None:
            model_pix, der_s = self.spectral.model_on_pixels(
                sub, veldisp=None if self.iv is None else theta[idx, self.iv])
            spec = self.spectral.compare(model_pix)
            chi2 += spec["chi2"]
            scale = spec["scale"]
            if derived_raw is None:
                derived_raw = _derived_columns(der_s)
        vals = None
        if (extras and values) or len(self.priors):
            # from the photometry or the spectrum: a fit has one or both
            vals = self._values(theta[idx], sub, cast("NDArray", derived_raw), mass_shift,
                                scale)
        lp = self.priors.log_prior({k: vals[k] for k in self.priors.names}, self.area) \
            if vals is not None and len(self.priors) else np.zeros(idx.size)
        post = lp - 0.5 * chi2
        lnp[idx] = np.where(np.isfinite(post), post, -np.inf)
        if extras:
            out = {"index": idx, "chi2": chi2, "photometry": phot, "scale": scale}
            if vals is not None and values:
                out["values"] = vals
            if log_q_mass is not None:
                out["theta"] = theta[idx]
                out["log_q_mass"] = np.asarray(log_q_mass, dtype=np.float64)
            if spec is not None:
                out["spec_model"] = model_pix
                out["spec_factor"] = spec["factor"]
        return lnp, out

    def _values(self, inside_theta: NDArray, sub: NDArray, derived: NDArray,
                mass_shift: NDArray | None, scale: NDArray) -> dict[str, NDArray]:
        """Parameters and log derived quantities (absolute) of the m positions inside the
        box.

        Parameters
        ----------
        inside_theta : ndarray, shape (m, ndim)
            The positions (with their drawn masses).
        sub : ndarray, shape (m, 16)
            Their model parameter arrays (with their drawn masses).
        derived : ndarray, shape (m, len(DERIVED_NAMES))
            Derived quantities of the models (per the masses they were computed with).
        mass_shift : ndarray, shape (m,), or None
            The drawn masses minus those the models were computed with (dex).
        scale : ndarray, shape (m,)
            Profiled spectral normalisation (spectrum-only fits; ones otherwise).

        Returns
        -------
        dict of str to ndarray, shape (m,)
        """
        logs = derived_table_of_batch(self.model, derived)
        if mass_shift is not None:  # the derived quantities came from the old masses
            logs = {k: (v + mass_shift if k in MASS_SCALED else v) for k, v in logs.items()}
        if self.spectral is not None and not self.filters:
            with np.errstate(divide="ignore", invalid="ignore"):
                shift = np.log10(np.where(scale > 0, scale, np.nan))
            logs = {k: (v + shift if k in MASS_SCALED else v) for k, v in logs.items()}
        m = inside_theta.shape[0]
        values = {name: inside_theta[:, j] for j, name in enumerate(self.free)}
        for name, v in self.fixed.items():
            values.setdefault(name, np.full(m, v))
        if self.spectral is not None and not self.filters:
            with np.errstate(divide="ignore", invalid="ignore"):
                values["log_mass"] = np.log10(np.where(scale > 0, scale, np.nan))
        values.setdefault("log_mass", sub[:, 0])
        if self.z is not None:
            values.setdefault("z", np.full(m, self.z))
        values.update({k: v for k, v in logs.items() if k not in values})
        return values

    def __call__(self, theta: NDArray) -> NDArray[np.float64]:
        return self.evaluate(theta)[0]


def component_percentiles(model: Any, params: NDArray, z: float, spectral_scale: NDArray,
                          threads: int | None = None) -> tuple[NDArray, dict[str, NDArray]]:
    """Observed-frame wavelengths and p16/p50/p84 (3, nwave) of the total and component
    spectra of a batch of parameter arrays (n, 16) at redshift ``z``, each model multiplied
    by its ``spectral_scale``.

    Parameters
    ----------
    model : SEDModel
        The model.
    params : ndarray, shape (n, 16)
        Parameter arrays (columns :attr:`SEDModel.param_names`).
    z : float
        Redshift, > 0.
    spectral_scale : ndarray, shape (n,)
        Factor of each model.
    threads : int, optional
        Threads of the model computation.

    Returns
    -------
    wave : ndarray, shape (nwave,)
        Observed wavelengths, Å.
    percentiles : dict of str to ndarray, shape (3, nwave)
        ``total`` and the non-zero components, f_λ (erg s⁻¹ cm⁻² Å⁻¹).
    """
    wave, comps = model.observed_components(params, z=z, threads=threads)
    out = {}
    for name in ("total", *COMPONENT_NAMES):
        v = np.atleast_2d(comps[name]) * spectral_scale[:, None]
        if name != "total" and not np.any(v):
            continue
        out[name] = np.percentile(v, [16, 50, 84], axis=0)
    return wave, out


def build_log_probability(ctx: FitContext, free_all: Sequence[str], box: Any, obs: NDArray | None,
                          err: NDArray | None, z: float | None, *, spectral: Any,
                          area_kpc2: float | None, dz_interp: float,
                          check: Any = None, upper: NDArray | None = None
                          ) -> tuple[LogProbability, dict[str, float]]:
    """The :class:`LogProbability` of one SED and the fixed parameters.

    The velocity dispersion is added when the spectrum samples it. Raises ValueError for
    priors on unknown quantities.

    Parameters
    ----------
    ctx : fit context
        The fit context of :mod:`pixedfit.fitting.drivers` (library, model, filters,
        priors, settings).
    free_all : sequence of str
        The candidate parameters.
    box : callable
        ``box(name)`` gives each one's prior box ``(lo, hi)`` (``lo == hi`` fixes it).
    obs, err : ndarray, shape (nband,), or None
        Observations as fitted (f_λ, erg s⁻¹ cm⁻² Å⁻¹, and total errors).
    z : float or None
        Redshift (None: sampled).
    spectral : SpectralLikelihood or None
        The spectrum's likelihood.
    area_kpc2 : float or None
        Area of the SED (kpc²), for surface-density priors.
    dz_interp : float
        Step of the redshift grid of a free redshift's model photometry.
    check : callable, optional
        ``check(ndim)`` validates the sampler settings for the number of sampled
        parameters.
    upper : ndarray of bool, shape (nband,), optional
        Bands that are upper limits.

    Returns
    -------
    lnprob : LogProbability
    fixed : dict of str to float
        The fixed parameters and their values.
    """
    free: list[str] = []
    fixed: dict[str, float] = {}
    lo: list[float] = []
    hi: list[float] = []
    for name in free_all:
        a, b = box(name)
        if a == b:
            fixed[name] = a
        else:
            free.append(name)
            lo.append(a)
            hi.append(b)
    if spectral is not None and spectral.fit_veldisp:
        vlo, vhi = spectral.spectrum.veldisp_range
        free.append("veldisp")
        lo.append(vlo)
        hi.append(vhi)
    if not free:
        raise ValueError("every parameter is fixed: nothing to sample")
    derived_names = list(ctx.library.derived)
    known = set(free) | set(fixed) | set(derived_names) | {"log_mass", "z"}
    for name in ctx.priors.names:
        if name not in known:
            raise ValueError(f"prior on {name!r}, which this fit does not know (sampled: "
                             f"{', '.join(free)})")
    if check is not None:
        check(len(free))
    has_phot = obs is not None
    lnprob = LogProbability(
        ctx.model, free, np.array(lo), np.array(hi), fixed, ctx.priors, z,
        ctx.filters if has_phot else None, obs, err, spectral=spectral, area_kpc2=area_kpc2,
        age_limit=ctx.settings.get("max_age_universe", True), cosmo=ctx.settings.get("cosmo"),
        H0=ctx.settings.get("H0", 70.0), Om0=ctx.settings.get("Om0", 0.3),
        dz_interp=dz_interp, threads=1 if ctx.threads is None else ctx.threads,
        upper=upper if has_phot else None)
    return lnprob, fixed


def _equal_weight_subset(nsamp: int, weights: NDArray | None, nmax: int,
                         rng: np.random.Generator) -> tuple[NDArray[np.int64], NDArray]:
    """Indices of the samples that get derived quantities, and their counts.

    Equal weights (``weights`` None): all samples, or ``nmax`` of them drawn without
    replacement. Importance weights: ``nmax`` draws with replacement in proportion to the
    weights, each distinct sample kept once and weighted by its number of draws (so that
    the samples, repeated by their counts, are an equal-weight posterior sample).
    """
    if weights is None:
        sub = np.arange(nsamp)
        if nsamp > nmax:
            sub = np.sort(rng.choice(nsamp, nmax, replace=False))
        return sub, np.ones(sub.size, dtype=np.int64)
    w = np.asarray(weights, dtype=np.float64)
    pos = np.flatnonzero(w > 0)
    if pos.size == 0:
        raise ValueError("no posterior sample has a positive weight")
    draws = rng.choice(pos, nmax, replace=True, p=w[pos] / w[pos].sum())
    sub, counts = np.unique(draws, return_counts=True)
    return sub, counts.astype(np.int64)


def posterior_products(ctx: FitContext, lnprob: LogProbability, samples: NDArray,
                       samples_lnp: NDArray, weights: NDArray | None, *, obs: NDArray | None,
                       err: NDArray | None, z: float | None, spectral: Any, n_sed_samples: int,
                       max_derived_samples: int, rng: np.random.Generator) -> dict[str, Any]:
    """Posterior summaries of one SED from samples of any sampler (MCMC, nested).

    Parameters
    ----------
    ctx : fit context of :mod:`pixedfit.fitting.drivers`
    lnprob : LogProbability
        The log posterior the samples were drawn from.
    samples : ndarray, shape (nsamp, ndim)
        Positions in ``lnprob.free`` order.
    samples_lnp : ndarray, shape (nsamp,)
        Their log posterior (the maximum is the best fit).
    weights : ndarray, shape (nsamp,), or None
        Importance weights (any normalisation; nested sampling), turned into an
        equal-weight sample by ``max_derived_samples`` draws; None for equal weights (MCMC).
    obs, err : ndarray or None
        Observed photometry and its errors as fitted (None for a spectrum-only fit).
    z : float or None
        Fixed redshift, None if sampled.
    spectral : SpectralLikelihood or None
    n_sed_samples, max_derived_samples : int
        Samples used for the model-SED percentiles; at most this many samples get derived
        quantities (see :func:`_equal_weight_subset`).
    rng : numpy.random.Generator
        Draws the subsets.

    Returns
    -------
    dict
        FitResult fields: ``names``, ``mean``, ``std``, ``p16``, ``p50``, ``p84``, ``best``,
        ``filters``, ``obs_flux``, ``obs_flux_err``, ``bfit_photo``, ``z``, ``chi2_min``,
        ``n_bands_used``, ``samples`` (an equal-weight sample: with importance weights, the
        distinct drawn samples repeated by their number of draws; statistics are those of
        this sample),
        ``photo_pct``, ``sed_wave``, ``sed_pct`` and ``spectrum``.
    """
    has_phot = obs is not None
    free = lnprob.free
    nsamp = samples.shape[0]
    sub, counts = _equal_weight_subset(nsamp, weights, max_derived_samples, rng)
    stat_names = (list(ctx.library.params) + list(ctx.library.derived)
                  + (["z"] if z is None else []) + (["veldisp"] if "veldisp" in free else []))
    table_s = np.empty((sub.size, len(stat_names)))
    phot = np.empty((sub.size, len(ctx.filters))) if has_phot else None
    scales = np.ones(sub.size)
    # posterior mean and std of the spectral correction (relative to the model's scale)
    fac_sum = fac_sq = None
    for a in range(0, sub.size, 2000):
        idx = sub[a : a + 2000]
        wa = counts[a : a + 2000, None]
        _, ex = lnprob.evaluate(samples[idx], extras=True)
        if ex.get("index") is None or ex["index"].size != idx.size:
            raise RuntimeError("a posterior sample has zero probability on re-evaluation")
        if spectral is not None:
            rel = ex["spec_factor"] / ex["scale"][:, None]
            fac_sum = (wa * rel).sum(axis=0) + (0.0 if fac_sum is None else fac_sum)
            fac_sq = (wa * rel * rel).sum(axis=0) + (0.0 if fac_sq is None else fac_sq)
        for k, name in enumerate(stat_names):
            table_s[a : a + idx.size, k] = ex["values"][name]
        if has_phot:
            cast("NDArray[np.float64]", phot)[a : a + idx.size] = ex["photometry"]
        scales[a : a + idx.size] = ex["scale"]
    # the equal-weight sample: each evaluated sample repeated by its count
    table_e = np.repeat(table_s, counts, axis=0)
    stats = {
        "mean": table_e.mean(axis=0),
        "std": table_e.std(axis=0),
        "p16": np.percentile(table_e, 16, axis=0),
        "p50": np.percentile(table_e, 50, axis=0),
        "p84": np.percentile(table_e, 84, axis=0),
    }
    ibest = int(np.argmax(samples_lnp))
    _, bex = lnprob.evaluate(samples[ibest : ibest + 1], extras=True)
    best = np.array([float(bex["values"][n][0]) for n in stat_names])
    bfit = bex["photometry"][0] if has_phot else np.zeros(0)
    spectrum = None
    if spectral is not None:
        factor = bex["spec_factor"][0]
        model_pix = bex["spec_model"][0]
        rel = factor / bex["scale"][0]
        norm = counts.sum()
        fac_mean = fac_sum / norm
        fac_std = np.sqrt(np.maximum(fac_sq / norm - fac_mean**2, 0.0))
        spectrum = {"wave": spectral.wave, "flux": spectral.flux, "flux_err": spectral.err,
                    "used": spectral.use.copy(), "model": factor * model_pix, "factor": rel,
                    "factor_mean": fac_mean, "factor_std": fac_std}
    owner = np.repeat(np.arange(sub.size), counts)
    nsed = min(n_sed_samples, owner.size)
    pick = owner[np.sort(rng.choice(owner.size, nsed, replace=False))]
    arr, zz = lnprob.param_array(samples[sub[pick]])
    z_sed = float(z) if z is not None else float(np.median(zz))
    sed_wave, sed_pct = component_percentiles(ctx.model, arr, z_sed, scales[pick], ctx.threads)
    photo_pct = (np.percentile(np.repeat(cast("NDArray[np.float64]", phot), counts, axis=0),
                               [16, 50, 84], axis=0)
                 if has_phot else None)
    return {
        "names": tuple(stat_names), **stats, "best": best,
        "filters": tuple(ctx.filters) if has_phot else (),
        "obs_flux": obs if has_phot else np.zeros(0),
        "obs_flux_err": err if has_phot else np.zeros(0),
        "bfit_photo": bfit, "z": z, "chi2_min": float(bex["chi2"][0]),
        "n_bands_used": len(ctx.filters) if has_phot else 0,
        "samples": table_e, "photo_pct": photo_pct, "sed_wave": sed_wave,
        "sed_pct": sed_pct, "spectrum": spectrum,
    }


# --------------------------------------------------------------------------- orchestration
@dataclass
class LibraryPass:
    """The RDSPS pass over a library that starts an MCMC fit (or is the RDSPS fit).

    Attributes
    ----------
    result : RdspsResult
        Posterior statistics (one SED).
    models : ModelPhotometry
        Library photometry used (or the single pseudo-band of a spectrum-only fit).
    weights : ndarray, shape (nz * nmod,)
        Normalised posterior weight of every (redshift, model) pair.
    scales : ndarray, shape (nmod,) or None
        Profiled spectral normalisation of each model (spectrum-only fits).
    chi2_spec : ndarray, shape (nmod,) or None
        Spectral χ² of each model.
    nclip : int
        Spectral pixels removed by sigma clipping.
    """

    result: RdspsResult
    models: ModelPhotometry
    weights: NDArray[np.float64]
    scales: NDArray[np.float64] | None = None
    chi2_spec: NDArray[np.float64] | None = None
    nclip: int = 0


def _box(ctx: FitContext, name: str, lp: LibraryPass,
         mass_box: tuple[float, float] | None) -> tuple[float, float]:
    """Prior box of parameter ``name``: the prior's lo and hi, else the library's generation
    range (``log_mass``: ``mass_box``, from :func:`data_mass_box`; ``z``: the library's
    redshift grid), limited to what the model accepts."""
    prior = ctx.priors[name] if name in ctx.priors else None
    if name == "log_mass":
        if mass_box is None:
            raise ValueError("log_mass is sampled only in fits with photometry")
        lo, hi = mass_box
    elif name == "z":
        grid = cast("NDArray[np.float64]", lp.models.z_grid)  # a free z: on a z grid
        lo, hi = float(grid.min()), float(grid.max())
    else:
        # (None, None) for an unknown range: refused just below
        lo, hi = cast("tuple[float, float]",
                      ctx.library.ranges.get(name, DEFAULT_RANGES.get(name, (None, None))))
        if lo is None:
            raise ValueError(f"no range known for {name!r}: give a prior with lo and hi")
    if prior is not None:
        lo = prior.lo if prior.lo is not None else lo
        hi = prior.hi if prior.hi is not None else hi
    # the samplers need the model (checked by their callers); it refuses values outside
    if name in (limits := cast("SEDModel", ctx.model).param_limits()):
        lo, hi = max(lo, limits[name][0]), min(hi, limits[name][1])
    elif name == "z":
        lo = max(lo, 1e-4)
    if hi < lo:
        raise ValueError(f"the prior box of {name!r} is empty ([{lo:g}, {hi:g}] after limiting "
                         "it to the model's valid range)")
    return float(lo), float(hi)


def data_mass_box(ctx: FitContext, lp: LibraryPass, obs: NDArray, err: NDArray, z: float | None,
                  log_mass_to_light: tuple[float, float]) -> tuple[float, float]:
    """The ``log_mass`` prior box of a photometric fit from the data alone
    (:func:`~pixedfit.fitting.boxes.log_mass_box` over the bands fitted, at ``z`` or the two
    ends of the library's redshift grid); a ``log_mass`` prior's lo and hi replace it (in
    :func:`_box`).

    Parameters
    ----------
    ctx : fit context
        The fit context (filters, settings).
    lp : LibraryPass
        The library pass (its redshift grid for a free redshift).
    obs, err : ndarray, shape (nband,)
        Observations as fitted (f_λ, erg s⁻¹ cm⁻² Å⁻¹; +inf errors for dropped bands).
    z : float or None
        Redshift (None: free).
    log_mass_to_light : (float, float)
        Range of log M/L (log M☉ / L☉) of the box.

    Returns
    -------
    (float, float)
        The box of log_mass, log M☉.
    """
    zlo, zhi = (z, z) if z is not None else _box(ctx, "z", lp, None)
    use = np.isfinite(err)
    s = ctx.settings
    return log_mass_box(obs[use], err[use],
                        [f for f, u in zip(ctx.filters, use, strict=True) if u], zlo, zhi,
                        log_mass_to_light, s.get("cosmo"), s.get("H0", 70.0),
                        s.get("Om0", 0.3))


@dataclass
class SamplingProblem:
    """What a sampler of one SED needs, set up from the library pass.

    Attributes
    ----------
    lnprob : LogProbability
        The vectorised log posterior.
    free : list of str
        Sampled parameters (columns of the positions).
    fixed : dict of str to float
        Parameters whose box has zero width.
    lo, hi : ndarray, shape (ndim,)
        Prior box of the sampled parameters.
    candidates : ndarray, shape (ncand, ndim)
        Library models (most probable first) as positions, each with its best
        normalisation.
    candidate_weights : ndarray, shape (ncand,)
        Their library-pass posterior weights.
    stat_names : list of str
        Names of the statistics of the result: library parameters, derived quantities,
        then ``z`` (free redshift) and ``veldisp`` (sampled dispersion).
    starts : ndarray, shape (nstart, ndim) or None
        Photometric fits at one redshift: the library models of lowest profiled χ² (best
        first, each with its best normalisation), whatever their library weight — the
        library pass keeps float32 weights, which vanish beyond Δχ² ≈ 200 and leave a
        well-measured SED only a handful of candidates, often all around one mode.
        None otherwise.
    """

    lnprob: LogProbability
    free: list[str]
    fixed: dict[str, float]
    lo: NDArray[np.float64]
    hi: NDArray[np.float64]
    candidates: NDArray[np.float64]
    candidate_weights: NDArray[np.float64]
    stat_names: list[str]
    starts: NDArray[np.float64] | None = None


#: Library models of lowest χ² offered as starting points (:attr:`SamplingProblem.starts`).
N_START_POOL = 64


#: Library models per block of the squared fluxes in :func:`_lowest_chi2`.
_CHI2_BLOCK = 4096


def _lowest_chi2(lp: LibraryPass, obs: NDArray, err: NDArray, upper: NDArray | None,
                 extra: NDArray | None, n: int) -> tuple[NDArray, NDArray]:
    """Indices (best first) and best normalisations of the ``n`` library models of lowest
    profiled χ² over the detected bands, at a single redshift (models whose library prior
    ``extra`` is −inf, or with no positive normalisation, excluded).

    With ``a = Σ f m / σ²`` and ``b = Σ m² / σ²`` over the bands, the best scale is
    ``a / b`` and ``χ² = Σ f² / σ² − a² / b``: two vector–matrix products with the
    band-major library photometry (ivar, obs: (nband,); flux: (nband, nmod))."""
    use = np.isfinite(obs) & np.isfinite(err) & (err > 0)
    if upper is not None:
        use &= ~np.asarray(upper, dtype=bool)
    # every band, the unused ones with zero weight: no copy of the (nband, nmod) fluxes
    flux = lp.models.flux[0]
    ivar = np.zeros(use.size)
    ivar[use] = 1.0 / err[use] ** 2
    data = np.where(use, obs, 0.0)
    a = (data * ivar) @ flux
    b = np.empty(flux.shape[1])
    for start in range(0, flux.shape[1], _CHI2_BLOCK):  # squares in cache-sized blocks
        part = flux[:, start:start + _CHI2_BLOCK]
        b[start:start + part.shape[1]] = ivar @ (part * part)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = a / b
        chi2 = float((data**2 * ivar).sum()) - a * scale
    ok = np.isfinite(chi2) & (scale > 0)
    if extra is not None:
        ok &= np.isfinite(extra)
    idx = np.flatnonzero(ok)
    best = idx[_smallest_first(chi2[idx], n)]
    return best, scale[best]


def _smallest_first(values: NDArray, n: int) -> NDArray[np.int64]:
    """Indices of the ``n`` smallest of ``values``, smallest first, ties by index, NaN last:
    ``np.argsort(values, kind="stable")[:n]`` without sorting them all (a library holds 10⁵
    models; the starts need 64, the candidates 20 000)."""
    if values.size <= n:
        return np.argsort(values, kind="stable")
    cut = np.partition(values, n - 1)[n - 1]  # the n-th smallest value
    if np.isnan(cut):  # fewer than n numbers: all of them, then NaNs
        return np.argsort(values, kind="stable")[:n]
    pool = np.flatnonzero(values <= cut)  # every tie of it too, in index order
    return pool[np.argsort(values[pool], kind="stable")[:n]]


def sampling_problem(ctx: FitContext, lp: LibraryPass, obs: NDArray | None, err: NDArray | None,
                     z: float | None, *, spectral: Any, area_kpc2: float | None,
                     max_candidates: int, dz_interp: float = 0.001,
                     upper: NDArray | None = None,
                     log_mass_to_light: tuple[float, float] = DEFAULT_LOG_MASS_TO_LIGHT
                     ) -> SamplingProblem:
    """Set up the sampled parameters, prior box, log posterior and library candidates of
    one SED (photometry and/or spectrum) from its library pass.

    The ``log_mass`` box comes from the data and ``log_mass_to_light``
    (:mod:`pixedfit.fitting.boxes`), never from the library.

    Parameters
    ----------
    ctx : fit context
        The fit context of :mod:`pixedfit.fitting.drivers` (library, model, filters,
        priors, settings).
    lp : LibraryPass
        The SED's library pass.
    obs, err : ndarray, shape (nband,), or None
        Observations as fitted (:class:`~pixedfit.fitting.errors.Observations`: f_λ in
        erg s⁻¹ cm⁻² Å⁻¹, total errors, +inf for a dropped band); None for a spectrum
        alone.
    z : float or None
        Redshift (None: sampled).
    spectral : SpectralLikelihood or None
        The spectrum's likelihood.
    area_kpc2 : float or None
        Area of the SED (kpc²), for surface-density priors.
    max_candidates : int
        Library models kept as candidates, at most.
    dz_interp : float
        Step of the redshift grid of a free redshift's model photometry.
    upper : ndarray of bool, shape (nband,), optional
        Bands that are upper limits.
    log_mass_to_light : (float, float)
        Range of log M/L (log M☉ / L☉) of the data's log_mass box.

    Returns
    -------
    SamplingProblem
    """
    model = ctx.model
    if model is None:
        raise ValueError("this fit needs an SEDModel (this library records no complete model "
                         "configuration: pass model=)")
    has_phot = obs is not None
    free_all = [p for p in model.free_params() if has_phot or p != "log_mass"]
    if z is None:
        free_all.append("z")
    table = ctx.library.params
    nmod = ctx.library.nmodels
    w = np.asarray(lp.weights, dtype=np.float64)
    order = _smallest_first(-w, max(int(max_candidates), 1))  # largest weights first
    order = order[w[order] > 0]
    if order.size == 0:
        raise ValueError("no library model has a finite posterior: cannot start the sampler")
    im, iz = order % nmod, order // nmod
    if has_phot:
        flux = lp.models.flux[iz, :, im]  # (ncand, nband)
        # the normalisation follows the detected bands (as RDSPS); masked bands do not count
        s = scale_fit(flux, cast("NDArray", obs), cast("NDArray", err),
                      None if upper is None else ~np.asarray(upper, bool))[0]
    else:  # a spectrum-only library pass has the profiled scales
        s = cast("NDArray[np.float64]", lp.scales)[im]
    with np.errstate(divide="ignore", invalid="ignore"):
        cand_mass = np.log10(np.where(s > 0, s, np.nan))
    good = np.isfinite(cand_mass)
    order, im, iz, cand_mass = order[good], im[good], iz[good], cand_mass[good]
    if order.size == 0:
        raise ValueError("no library model fits with a positive normalisation")
    mass_box = (data_mass_box(ctx, lp, cast("NDArray", obs), cast("NDArray", err), z,
                              log_mass_to_light) if has_phot
                else None)

    derived_names = list(ctx.library.derived)
    lnprob, fixed = build_log_probability(
        ctx, free_all, lambda name: _box(ctx, name, lp, mass_box), obs, err, z,
        spectral=spectral, area_kpc2=area_kpc2, dz_interp=dz_interp,
        upper=upper if has_phot else None)
    free, lo, hi = lnprob.free, lnprob.lo, lnprob.hi
    cand = np.empty((order.size, len(free)))
    for j, name in enumerate(free):
        if name == "log_mass":
            cand[:, j] = cand_mass
        elif name == "z":
            cand[:, j] = cast("NDArray[np.float64]", lp.models.z_grid)[iz]  # free z: a grid
        elif name == "veldisp":
            cand[:, j] = spectral.spectrum.veldisp
        else:
            cand[:, j] = table[name][im]
    stat_names = (list(ctx.library.params) + derived_names + (["z"] if z is None else [])
                  + (["veldisp"] if "veldisp" in free else []))
    starts = None
    if has_phot and lp.models.nz == 1 and spectral is None:
        idx, scale = _lowest_chi2(lp, cast("NDArray", obs), cast("NDArray", err), upper,
                                  ctx.age_prior(z), N_START_POOL)
        starts = np.empty((idx.size, len(free)))
        for j, name in enumerate(free):
            starts[:, j] = np.log10(scale) if name == "log_mass" else table[name][idx]
    return SamplingProblem(lnprob=lnprob, free=free, fixed=fixed, lo=np.array(lo),
                           hi=np.array(hi), candidates=cand, candidate_weights=w[order],
                           stat_names=stat_names, starts=starts)
