"""MCMC SED fitting with emcee and models made on the fly by the batched C++ engine.

The posterior of the free parameters of an :class:`~pixedfit.sps.SEDModel` (and the redshift,
if free) given photometry, a spectrum, or both, is sampled with emcee's affine-invariant
ensemble sampler (``vectorize=True``): every step evaluates the model **once for all the
walkers being moved**, in one batched C++ call (photometry, ≈ 45 µs per model per core;
spectra with the Legendre step of :mod:`pixedfit.fitting.spectral_likelihood` when a
spectrum is fitted).

* **Parameters**: the model's free parameters (``SEDModel.free_params()``) and ``z`` for a
  free-redshift fit. A parameter whose prior range (or, without a prior, the library's
  generation range) has ``lo == hi`` is fixed at that value. Fitting a spectrum alone, the
  normalisation is profiled (see :mod:`pixedfit.fitting.spectral_likelihood`) and
  ``log_mass`` is not sampled.
* **Prior box**: the prior's range, else the library's generation range (the same box as an
  RDSPS fit with that library), intersected with what the model accepts (the SSP grid's
  metallicity and age range); ``log_mass``: the prior's range, else a box from the data
  alone (:mod:`pixedfit.fitting.boxes`; the original used the best RDSPS model ± 1.5 dex,
  which moved with the library and cut broad posteriors). Priors are those of
  :mod:`pixedfit.fitting.priors` (joint priors use each walker's own mass), plus
  ``log_age`` ≤ the age of the universe at z (``max_age_universe``). Priors may also be
  put on derived quantities (``log_mw_age``, ``log_sfr``, ...), evaluated per walker.
* **Start**: by default the walkers start from the posterior of the adaptive RDSPS
  refinement of the library pass (:func:`pixedfit.fitting.adaptive.run_adaptive`, at most
  30 000 evaluations): samples drawn (seeded) with their importance weights, jittered by
  1 % of the posterior's standard deviation, so that hardly any burn-in is needed.
  ``start="library"`` (the drivers' ``refine=False``), or a refinement without a finite
  posterior, starts them at library models drawn with their RDSPS posterior weights, each
  with its best normalisation, jittered by ``init_spread`` × the box width and kept inside
  the box (the original drew Gaussians around a single best model and could start outside
  the box).
* **Moves**: emcee's differential evolution (80 % ``DEMove``, 20 % ``DESnookerMove``):
  measured on mocks of a delayed-τ model (``benchmarks/bench_mcmc_moves.py``), their
  integrated autocorrelation times on the curved age–τ–metallicity–mass posterior were
  about half those of emcee's default stretch move.
* **Stopping**: with ``nsteps=None`` (default) the chain runs in segments of
  ``check_every`` steps and stops once, after a burn-in of ``burn_tau`` × τ_max, it is
  ``tau_factor`` (50) × τ_max long and τ changed by less than ``tau_rtol`` since the last
  segment, or at ``max_steps`` (``converged=False`` and a warning); an explicit ``nsteps``
  gives the original's fixed count.
* **Likelihood**: Gaussian, ``−½ χ²`` of photometry plus spectrum; photometric errors are
  the totals of the error model (:mod:`pixedfit.fitting.errors`: statistical, calibration
  and floor in quadrature) and bands flagged as upper limits contribute
  ``−2 ln Φ((f_lim − m)/σ)`` to χ² (Sawicki 2012), exactly as in RDSPS; every sampler built
  on :class:`LogProbability` inherits both.
* **Free redshift**: photometry is evaluated at the two nodes of a grid of step ``dz_interp``
  (default 0.001) around each walker's z and interpolated linearly in ln f (error ≪ 0.1 %).
* **Chains** can be kept in an emcee HDF5 backend (``backend=`` a path): an interrupted fit
  resumes where it stopped and, the random state being stored with every step, gives the
  same chain as an uninterrupted run with the same ``seed``.
* **Threads**: a step evaluates only half the walkers (16 models by default), too few for
  OpenMP to pay off on a shared machine (measured: 1 thread 5.5 s, 2 threads 12.5 s for
  100 × 600), so MCMC fits use 1 thread unless ``threads`` is given; run SEDs in parallel
  with MPI.
* **Outputs**: posterior samples after burn-in and thinning (``nsteps=None``: thinned by
  ½ τ_min); their
  derived quantities (SFR, mass-weighted age, ... from the same batched call; at most
  ``max_derived_samples`` samples, drawn with the seed); mean, std and percentiles; the
  maximum-posterior sample; p16/p50/p84 of the model photometry and of the observed-frame
  model spectrum, total and per component, over ``n_sed_samples`` samples; the acceptance
  fraction and the integrated autocorrelation time (a warning when the chain is shorter than
  50 autocorrelation times); ``ess`` = walkers × steps after burn-in / τ_max.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._paths import hdf5_atomic, open_hdf5
from ..cosmology import age_of_universe
from ..library import derived_table
from ..sps.model import COMPONENT_NAMES, DEFAULTS, PARAM_NAMES
from .boxes import (
    DEFAULT_LOG_MASS_TO_LIGHT,
    MassBoxWarning,
    check_log_mass_to_light,
    log_mass_box,
    mass_box_edge,
)
from .errors import chi2_terms, fit_quality, scale_fit
from .priors import MASS_SCALED, PriorSet

__all__ = ["MOVES", "LogProbability", "MCMCShortChainWarning", "McmcSettings", "make_moves",
           "run_mcmc"]

class MCMCShortChainWarning(UserWarning):
    """The chain is shorter than 50 integrated autocorrelation times."""


#: Move sets of :attr:`McmcSettings.moves` (emcee moves and their probabilities).
MOVES = ("de-snooker", "de", "stretch", "de-stretch")


def make_moves(name: str) -> list[tuple[Any, float]]:
    """emcee moves of the move set ``name`` (see :attr:`McmcSettings.moves`)."""
    import emcee

    if name == "stretch":
        return [(emcee.moves.StretchMove(), 1.0)]
    if name == "de":
        return [(emcee.moves.DEMove(), 1.0)]
    if name == "de-snooker":
        return [(emcee.moves.DEMove(), 0.8), (emcee.moves.DESnookerMove(), 0.2)]
    if name == "de-stretch":
        return [(emcee.moves.DEMove(), 0.8), (emcee.moves.StretchMove(), 0.2)]
    raise ValueError(f"moves must be one of {', '.join(MOVES)}, got {name!r}")


@dataclass(frozen=True)
class McmcSettings:
    """Sampler settings.

    Two ways to stop. By default (``nsteps=None``) the chain runs in segments of
    ``check_every`` steps and stops when it has converged by the autocorrelation
    criterion: after discarding a burn-in of ``burn_tau`` × the longest integrated
    autocorrelation time τ_max (at least ``nsteps_cut`` steps), the rest is longer than
    ``tau_factor`` × τ_max and every parameter's τ changed by less than ``tau_rtol``
    (relative) since the previous segment; or at ``max_steps`` (then the fit says
    ``converged=False`` and warns). With an explicit ``nsteps`` the chain has exactly that
    many steps, ``nsteps_cut`` of them burn-in (the original's fixed count).

    Attributes
    ----------
    nwalkers : int
        Walkers (≥ 2 × number of free parameters).
    nsteps : int or None
        Steps per walker (total, including burn-in and steps of a resumed run); None stops
        on the autocorrelation criterion.
    nsteps_cut : int
        Burn-in steps discarded (with ``nsteps=None``: at least this many).
    thin : int
        Keep every ``thin``-th step (with ``nsteps=None``: at least every
        ½ τ_min-th step).
    seed : int
        Seed of the starting positions, the sampler and the sample subsets.
    backend : path-like, optional
        emcee HDF5 backend file for resumable chains.
    init_spread : float
        Jitter of starting positions drawn from the library, in units of the box width.
    n_sed_samples : int
        Samples used for the model SED percentiles.
    max_derived_samples : int
        At most this many samples get derived quantities.
    dz_interp : float
        Redshift grid step of free-z photometry interpolation.
    progress : bool
        Show emcee's progress bar.
    max_steps : int
        Steps per walker at most (``nsteps=None``).
    tau_factor : float
        The chain after burn-in must be this many τ_max long (``nsteps=None``; and the
        short-chain warning of both modes).
    tau_rtol : float
        Largest relative change of τ between two segments of a converged chain.
    check_every : int
        Steps per segment (τ is estimated after each).
    burn_tau : float
        Burn-in in units of τ_max (``nsteps=None``).
    moves : str
        emcee moves: ``"de-snooker"`` (default: 80 % differential evolution, 20 %
        DE snooker; best measured on curved age–τ–mass posteriors), ``"de"``,
        ``"stretch"`` (emcee's default, the original's) or ``"de-stretch"``.
    start : {"refined", "library"}
        Start the walkers from the posterior of the adaptive RDSPS refinement of the
        library pass (default; samples drawn with their weights, tiny jitter), or from the
        library models themselves (the original; also the fallback when the refinement
        finds no finite posterior).
    refine : AdaptiveSettings, optional
        Settings of that refinement (default: :class:`~pixedfit.fitting.adaptive.
        AdaptiveSettings` with ``max_evaluations=30000``; its seed is always ``seed``).
    log_mass_to_light : (float, float)
        Range of log(M / νL_ν,max) [M☉ / L☉] that makes the ``log_mass`` prior box of a
        photometric fit (:mod:`pixedfit.fitting.boxes`; a ``log_mass`` prior with lo and hi
        replaces it).
    """

    nwalkers: int = 32
    nsteps: int | None = None
    nsteps_cut: int = 50
    thin: int = 1
    seed: int = 0
    backend: str | os.PathLike[str] | None = None
    init_spread: float = 0.01
    n_sed_samples: int = 200
    max_derived_samples: int = 10000
    dz_interp: float = 0.001
    progress: bool = False
    max_steps: int = 20000
    tau_factor: float = 50.0
    tau_rtol: float = 0.02
    check_every: int = 100
    burn_tau: float = 2.0
    moves: str = "de-snooker"
    start: str = "refined"
    refine: Any = None
    log_mass_to_light: tuple[float, float] = DEFAULT_LOG_MASS_TO_LIGHT

    @property
    def fixed(self) -> bool:
        """True for a fixed number of steps (``nsteps`` given)."""
        return self.nsteps is not None

    @property
    def step_limit(self) -> int:
        """Steps per walker at most."""
        return int(self.nsteps) if self.nsteps is not None else int(self.max_steps)

    def check(self, ndim: int | None = None) -> None:
        """Raise for bad settings, naming the setting.

        Parameters
        ----------
        ndim : int, optional
            Number of free parameters; None checks everything that does not depend on it
            (call it so before any work, and with ``ndim`` once the parameters are known).

        Raises
        ------
        TypeError
            A count that is not an integer (``nwalkers=14.5``), a number that is not one.
        ValueError
            A value out of its range.
        """
        def integer(name: str, minimum: int) -> int:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer):
                raise TypeError(f"{name} must be an integer, got {v!r}")
            if v < minimum:
                raise ValueError(f"{name} must be >= {minimum}, got {v}")
            return int(v)

        def number(name: str) -> float:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
                raise TypeError(f"{name} must be a number, got {v!r}")
            return float(v)

        for name in ("nwalkers", "thin", "n_sed_samples", "max_derived_samples", "max_steps",
                     "check_every"):
            integer(name, 1)
        limit_name = "max_steps"
        if self.nsteps is not None:
            integer("nsteps", 1)
            limit_name = "nsteps"
        if not integer("nsteps_cut", 0) < self.step_limit:
            raise ValueError(f"nsteps_cut must be within 0..{limit_name}-1 "
                             f"({self.step_limit - 1}), got {self.nsteps_cut}")
        if integer("seed", 0) >= 2**32:
            raise ValueError(f"seed must be < 2**32 (numpy's RandomState), got {self.seed}")
        if not (0 < number("init_spread") < 0.5):
            raise ValueError(f"init_spread must be within (0, 0.5), got {self.init_spread!r}")
        if not (number("dz_interp") > 0 and np.isfinite(self.dz_interp)):
            raise ValueError(f"dz_interp must be finite and > 0, got {self.dz_interp!r}")
        if not (number("tau_factor") >= 1 and np.isfinite(self.tau_factor)):
            raise ValueError(f"tau_factor must be finite and >= 1, got {self.tau_factor!r}")
        if not (0 < number("tau_rtol") < 1):
            raise ValueError(f"tau_rtol must be within (0, 1), got {self.tau_rtol!r}")
        if not (0 <= number("burn_tau") <= 100):
            raise ValueError(f"burn_tau must be within [0, 100], got {self.burn_tau!r}")
        if not isinstance(self.moves, str):
            raise TypeError(f"moves must be a string, one of {', '.join(MOVES)}, got "
                            f"{self.moves!r}")
        if self.moves not in MOVES:
            raise ValueError(f"moves must be one of {', '.join(MOVES)}, got {self.moves!r}")
        if self.start not in ("refined", "library"):
            raise ValueError(f"start must be 'refined' or 'library', got {self.start!r}")
        check_log_mass_to_light(self.log_mass_to_light, "McmcSettings")
        if self.refine is not None:
            from .adaptive import AdaptiveSettings

            if not isinstance(self.refine, AdaptiveSettings):
                raise TypeError(f"refine must be an AdaptiveSettings or None, got "
                                f"{self.refine!r}")
            self.refine.check()
        if self.backend is not None and not isinstance(self.backend, str | os.PathLike):
            raise TypeError(f"backend must be a file path or None, got {self.backend!r}")
        if ndim is not None and self.nwalkers < 2 * ndim:
            raise ValueError(f"nwalkers must be >= 2 x the number of free parameters "
                             f"({2 * ndim}), got {self.nwalkers}")


def derived_logs(model: Any, derived: Mapping[str, NDArray]) -> dict[str, NDArray]:
    """piXedfit-named log derived quantities (absolute: for the models' own masses)."""
    return derived_table(model, derived)


class LogProbability:
    """Vectorised log posterior of a set of walkers (callable on (n, ndim) arrays).

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
                 spectral: Any = None, area_kpc2: float | None = None, age_limit: bool = True,
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
        self.obs = obs
        self.err = None if err is None else np.asarray(err, dtype=np.float64)
        self.ivar = None if err is None else 1.0 / self.err**2
        self.upper = (None if upper is None or not np.any(upper)
                      else np.asarray(upper, dtype=bool))
        self.spectral = spectral
        self.area = area_kpc2
        self.age_limit = age_limit
        self.cosmo, self.H0, self.Om0 = cosmo, H0, Om0
        self.dz = float(dz_interp)
        self.threads = threads
        self.base = np.array([float(fixed.get(n, DEFAULTS[n])) for n in PARAM_NAMES])
        # the sampled model parameters: their columns in theta and in the model's array
        # (param_array copies them in one go)
        self._src = [j for j, n in enumerate(self.free) if n in PARAM_NAMES]
        self._dst = [PARAM_NAMES.index(self.free[j]) for j in self._src]
        self.iz = self.free.index("z") if "z" in self.free else None
        self.iv = self.free.index("veldisp") if "veldisp" in self.free else None
        self.im = self.free.index("log_mass") if "log_mass" in self.free else None
        self.fixed = dict(fixed)
        if self.age_limit and self.z is not None:
            self._age_max = math.log10(float(age_of_universe(self.z, cosmo, H0, Om0)))
        self.ncalls = 0

    @property
    def ndim(self) -> int:
        """Number of sampled parameters."""
        return len(self.free)

    def param_array(self, theta: NDArray) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(n, 16) model parameter arrays and (n,) redshifts of walker positions."""
        theta = np.atleast_2d(theta)
        arr = np.empty((theta.shape[0], self.base.size))
        arr[:] = self.base
        if self._src:
            arr[:, self._dst] = theta[:, self._src]
        zz = theta[:, self.iz] if self.iz is not None else np.full(theta.shape[0], self.z)
        return arr, zz

    def _photometry(self, arr: NDArray, zz: NDArray) -> tuple[NDArray, dict]:
        if self.iz is None:
            # one redshift for every evaluation: the transmission knots (sps.knots), ≈ 5×
            # faster than summing the grid, within 3e-5 of it
            return self.model.photometry(arr, float(zz[0]), self.filters, threads=self.threads,
                                         return_derived=True, knots=True)
        # free z: interpolate in ln f between the grid nodes around each walker's z
        node = np.floor(zz / self.dz).astype(np.int64)
        t = zz / self.dz - node
        out = np.empty((arr.shape[0], len(self.filters)))
        derived: dict[str, NDArray] = {}
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
            for name, v in der.items():
                derived.setdefault(name, np.empty(arr.shape[0]))[sel] = v
        return out, derived

    def evaluate(self, theta: NDArray, extras: bool = False,
                 mass_proposal: Callable[[NDArray, NDArray], tuple[NDArray, NDArray]]
                 | None = None) -> tuple[NDArray, dict]:
        """Log posterior of walker positions (n, ndim) and, with ``extras``, model outputs.

        ``extras`` holds ``chi2``, ``photometry`` (n, nband), ``derived`` (log quantities,
        absolute), ``scale`` (profiled spectral normalisation) and ``spec_model`` /
        ``spec_factor`` (n, npix) for spectral fits.

        ``mass_proposal`` (photometric fits with ``log_mass`` sampled) draws ``log_mass``
        given the rest of each position, from the model photometry the position's own
        ``log_mass`` gives: it is called as ``mass_proposal(photometry (m, nband),
        log_mass (m,))`` for the m positions inside the box and returns the new log masses
        (m,) and their log proposal densities (m,, per dex). The model scales exactly with
        the mass, so no second model evaluation is needed; the posterior is that of the new
        positions, returned in ``extras`` as ``theta`` (m, ndim) with ``log_q_mass``.
        """
        theta = np.array(theta, dtype=np.float64, ndmin=2)
        n = theta.shape[0]
        lnp = np.full(n, -np.inf)
        inside = np.all((theta >= self.lo) & (theta <= self.hi), axis=1)
        arr, zz = self.param_array(theta)
        if self.age_limit:
            if self.iz is None:
                inside &= arr[:, 2] <= self._age_max
            else:
                lim = np.log10(np.asarray(age_of_universe(zz, self.cosmo, self.H0, self.Om0)))
                inside &= arr[:, 2] <= lim
        out: dict[str, Any] = {}
        idx = np.flatnonzero(inside)
        if idx.size == 0:
            return lnp, out
        self.ncalls += idx.size
        sub = np.ascontiguousarray(arr[idx])
        chi2 = np.zeros(idx.size)
        derived_raw = None
        phot = None
        mass_shift = log_q_mass = None
        if self.filters:
            phot, derived_raw = self._photometry(sub, zz[idx])
            if mass_proposal is not None and self.im is not None:
                new_mass, log_q_mass = mass_proposal(phot, sub[:, 0].copy())
                mass_shift = np.asarray(new_mass, dtype=np.float64) - sub[:, 0]
                phot = phot * 10.0 ** mass_shift[:, None]
                sub[:, 0] += mass_shift
                theta[idx, self.im] = sub[:, 0]
            chi2 += chi2_terms(phot, self.obs, self.err, self.upper)
        scale = np.ones(idx.size)
        spec = None
        if self.spectral is not None:
            model_pix, der_s = self.spectral.model_on_pixels(
                sub, veldisp=None if self.iv is None else theta[idx, self.iv])
            spec = self.spectral.compare(model_pix)
            chi2 += spec["chi2"]
            scale = spec["scale"]
            if derived_raw is None:
                derived_raw = der_s
        logs = derived_logs(self.model, derived_raw)
        if mass_shift is not None:  # the derived quantities came from the old masses
            logs = {k: (v + mass_shift if k in MASS_SCALED else v) for k, v in logs.items()}
        if self.spectral is not None and not self.filters:
            with np.errstate(divide="ignore", invalid="ignore"):
                shift = np.log10(np.where(scale > 0, scale, np.nan))
            logs = {k: (v + shift if k in MASS_SCALED else v) for k, v in logs.items()}
        inside_theta = theta[idx]
        values = {name: inside_theta[:, j] for j, name in enumerate(self.free)}
        for name, v in self.fixed.items():
            values.setdefault(name, np.full(idx.size, v))
        if self.spectral is not None and not self.filters:
            with np.errstate(divide="ignore", invalid="ignore"):
                values["log_mass"] = np.log10(np.where(scale > 0, scale, np.nan))
        values.setdefault("log_mass", sub[:, 0])
        if self.z is not None:
            values.setdefault("z", np.full(idx.size, self.z))
        values.update({k: v for k, v in logs.items() if k not in values})
        lp = self.priors.log_prior({k: values[k] for k in self.priors.names}, self.area) \
            if len(self.priors) else np.zeros(idx.size)
        post = lp - 0.5 * chi2
        lnp[idx] = np.where(np.isfinite(post), post, -np.inf)
        if extras:
            out = {"index": idx, "chi2": chi2, "photometry": phot, "values": values,
                   "scale": scale}
            if log_q_mass is not None:
                out["theta"] = theta[idx]
                out["log_q_mass"] = np.asarray(log_q_mass, dtype=np.float64)
            if spec is not None:
                out["spec_model"] = model_pix
                out["spec_factor"] = spec["factor"]
        return lnp, out

    def __call__(self, theta: NDArray) -> NDArray[np.float64]:
        return self.evaluate(theta)[0]


def initial_positions(lnprob: LogProbability, candidates: NDArray, weights: NDArray,
                      settings: McmcSettings, rng: np.random.Generator,
                      jitter: NDArray | None = None) -> NDArray:
    """``nwalkers`` starting points drawn from weighted candidate positions (ncand, ndim),
    jittered and kept inside the box, each with a finite log posterior.

    ``jitter`` is the standard deviation of the jitter per parameter (parameter units);
    None: ``init_spread`` × the box width. Candidates are drawn without replacement when
    at least twice ``nwalkers`` of them have a positive weight.
    """
    nw, ndim = settings.nwalkers, lnprob.ndim
    width = lnprob.hi - lnprob.lo
    scale = settings.init_spread * width if jitter is None else np.asarray(jitter, float)
    w = np.where(np.isfinite(weights) & (weights > 0), weights, 0.0)
    if not w.sum() > 0:
        raise ValueError("no library model has a finite posterior: cannot start the walkers")
    w = w / w.sum()
    distinct = np.count_nonzero(w) >= 2 * nw
    pos = np.empty((0, ndim))
    for _ in range(20):
        pick = rng.choice(w.size, size=nw, p=w, replace=not distinct)
        trial = candidates[pick] + rng.normal(0.0, 1.0, (nw, ndim)) * scale
        margin = 1e-6 * width
        trial = np.clip(trial, lnprob.lo + margin, lnprob.hi - margin)
        fixed_width = width == 0
        trial[:, fixed_width] = lnprob.lo[fixed_width]
        ok = np.isfinite(lnprob(trial))
        pos = np.vstack([pos, trial[ok]])
        if pos.shape[0] >= nw:
            return pos[:nw]
    raise ValueError("could not find starting positions with a finite posterior inside the "
                     "prior box (check the priors and the data)")


def refined_start(prob: SamplingProblem, settings: McmcSettings, rng: np.random.Generator
                  ) -> tuple[NDArray, dict[str, Any]]:
    """Starting positions (nwalkers, ndim) drawn from the adaptive RDSPS posterior of
    ``prob`` (:func:`pixedfit.fitting.adaptive.run_adaptive`), jittered by 1 % of its
    standard deviation; with ``settings.start == "library"``, or when the refinement finds
    no finite posterior, from the library candidates (jitter ``init_spread`` × box width).

    Returns the positions and a record: ``start`` ("refined" or "library"), and for a
    refined start the refinement's ``start_ess``, ``start_evaluations`` and
    ``start_converged``.
    """
    from .adaptive import AdaptiveSettings, run_adaptive

    lnprob = prob.lnprob
    if settings.start == "refined":
        # the walkers need the posterior's bulk, not medians to 0.02 dex
        aset = settings.refine if settings.refine is not None else AdaptiveSettings(
            max_evaluations=30000, median_precision=0.0)
        aset = dataclasses.replace(aset, seed=int(settings.seed), n_samples=0)
        before = lnprob.ncalls
        run = run_adaptive(lnprob, prob.lo, prob.hi, prob.candidates, prob.candidate_weights,
                           prob.stat_names, aset, starts=prob.starts)
        w = run.normalised_weights()
        info = {"start": "refined", "start_ess": float(run.ess),
                "start_evaluations": int(lnprob.ncalls - before),
                "start_converged": bool(run.converged)}
        if np.isfinite(w).all() and w.sum() > 0:
            mean = w @ run.theta
            sd = np.sqrt(np.maximum(w @ (run.theta - mean) ** 2, 0.0))
            sd = np.where(sd > 0, sd, 1e-6 * (lnprob.hi - lnprob.lo))
            try:
                return initial_positions(lnprob, run.theta, w, settings, rng,
                                         jitter=0.01 * sd), info
            except ValueError:
                pass
        info["start"] = "library"
    else:
        info = {"start": "library"}
    return initial_positions(lnprob, prob.candidates, prob.candidate_weights, settings,
                             rng), info


def chain_autocorr(chain: NDArray, settings: McmcSettings
                   ) -> tuple[NDArray[np.float64], int]:
    """Integrated autocorrelation time per parameter (steps) and the burn-in (steps).

    Fixed count (``nsteps`` given): burn-in ``nsteps_cut``, τ of the rest. Otherwise τ of
    the whole chain sets a burn-in of ``burn_tau`` × τ_max (at least ``nsteps_cut``), and τ
    is estimated again on the chain after it. emcee's estimator, windowed
    (``integrated_time(..., tol=0)``: no exception for short chains); NaN when fewer than 4
    steps remain.
    """
    import emcee

    def tau_of(c: NDArray) -> NDArray[np.float64]:
        if c.shape[0] < 4:
            return np.full(chain.shape[2], np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(emcee.autocorr.integrated_time(c, tol=0), dtype=np.float64)

    n = chain.shape[0]
    burn = min(int(settings.nsteps_cut), n)
    if not settings.fixed:
        tau0 = tau_of(chain)
        if np.isfinite(tau0).any():
            burn = max(burn, math.ceil(settings.burn_tau * float(np.nanmax(tau0))))
        burn = min(burn, n // 2)
    return tau_of(chain[burn:]), burn


#: Bytes per step by which emcee's HDF5 chain file grows beyond its data while it is written:
#: emcee rewrites its random-state attributes (624 integers) at every step and HDF5 does not
#: reuse the freed space across emcee's per-step open and close (measured 4.2 kB per step
#: for 32 walkers × 5 parameters, the data being 1.5 kB; 2× margin). A finished chain is
#: rewritten without it (:func:`compact_chain_file`).
CHAIN_STEP_OVERHEAD = 8192


def chain_file_bytes(ndim: int, nwalkers: int, nsteps: int, running: bool = False) -> int:
    """Upper bound of the size (bytes) of emcee's HDF5 chain file of ``nsteps`` steps: the
    positions and log probabilities in float64 (+ 50 % for HDF5's chunks, + 64 kB), and
    while the chain is being written (``running``) :data:`CHAIN_STEP_OVERHEAD` per step."""
    data = int(1.5 * nsteps * nwalkers * (ndim + 1) * 8) + 65536
    return data + (CHAIN_STEP_OVERHEAD * nsteps if running else 0)


def compact_chain_file(path: str | os.PathLike[str]) -> None:
    """Rewrite a finished chain file without the space its writing leaked
    (:data:`CHAIN_STEP_OVERHEAD`; a 10 000-step chain shrinks ≈ 3×). Everything in the
    file is copied (other groups, attributes); the new file replaces the old one atomically
    (:func:`pixedfit._paths.hdf5_atomic`), so a crash or a full disk leaves the old one,
    which is then kept as it is."""
    with contextlib.suppress(OSError), open_hdf5(path) as src, hdf5_atomic(path) as dst:
        for name in src:
            src.copy(src[name], dst, name=name)
        for key, value in src.attrs.items():
            dst.attrs[key] = value


def _open_backend(lnprob: LogProbability, settings: McmcSettings) -> tuple[Any, int]:
    """emcee's HDF5 backend of ``settings.backend`` (None without one) and the steps it
    already holds."""
    import emcee

    if settings.backend is None:
        return None, 0
    backend = emcee.backends.HDFBackend(os.fspath(settings.backend), name="mcmc")
    done = 0
    if os.path.exists(settings.backend):
        try:
            done = backend.iteration
            shape = backend.shape
        except (KeyError, OSError, AttributeError):
            done, shape = 0, None
        if done and shape != (settings.nwalkers, lnprob.ndim):
            raise ValueError(f"{settings.backend}: holds a chain of shape {shape}, not "
                             f"({settings.nwalkers}, {lnprob.ndim}); use another file")
        if not done:
            backend.reset(settings.nwalkers, lnprob.ndim)
    else:
        backend.reset(settings.nwalkers, lnprob.ndim)
    return backend, done


def run_mcmc(lnprob: LogProbability, start: Any, settings: McmcSettings) -> dict[str, Any]:
    """Run (or resume) emcee from ``start`` (nwalkers, ndim), or a callable returning it
    (called only when the chain does not resume from a backend).

    With ``settings.nsteps`` the chain has that many steps; otherwise it runs in segments of
    ``check_every`` steps until the autocorrelation criterion of :class:`McmcSettings` is
    met or ``max_steps`` are reached. The decision after each segment depends only on the
    chain up to it, so a run resumed from a backend (which replays the decisions on the
    stored steps) gives the same chain as an uninterrupted one.

    Returns a dict: ``chain`` (nsteps, nwalkers, ndim), ``lnprob`` (nsteps, nwalkers),
    ``samples`` (nsamp, ndim) and ``samples_lnprob`` after burn-in and thinning,
    ``acceptance`` (nwalkers,), ``autocorr`` (ndim,), ``burn`` and ``thin`` (steps),
    ``converged`` (the autocorrelation criterion is met), ``segments``, ``tau_history``
    (τ_max after each segment) and ``resumed_at`` (steps found in the backend).
    """
    import emcee

    backend, done = _open_backend(lnprob, settings)
    sampler = emcee.EnsembleSampler(settings.nwalkers, lnprob.ndim, lnprob, vectorize=True,
                                    backend=backend, moves=make_moves(settings.moves))
    if done == 0:
        sampler.random_state = np.random.RandomState(settings.seed).get_state()
        initial = start() if callable(start) else start
    else:
        initial = None

    def advance(to: int) -> None:
        have = sampler.iteration
        if to > have:
            sampler.run_mcmc(initial if have == 0 else None, to - have,
                             progress=settings.progress)

    history: list[float] = []
    if settings.fixed:
        n = int(settings.nsteps)
        advance(n)
        tau, burn = chain_autocorr(sampler.get_chain()[:n], settings)
        segments = 1
        converged = bool(np.isfinite(tau).all()
                         and n - burn >= settings.tau_factor * float(np.max(tau)))
        thin = int(settings.thin)
    else:
        n, prev, converged, segments = 0, None, False, 0
        while True:
            n = min(n + settings.check_every, settings.max_steps)
            advance(n)
            segments += 1
            tau, burn = chain_autocorr(sampler.get_chain()[:n], settings)
            tau_max = float(np.max(tau)) if np.isfinite(tau).all() else math.inf
            history.append(tau_max)
            stable = (prev is not None and np.isfinite(tau).all()
                      and bool(np.all(np.abs(tau - prev) < settings.tau_rtol * tau)))
            prev = tau
            if stable and n - burn >= settings.tau_factor * tau_max:
                converged = True
                break
            if n >= settings.max_steps:
                break
        finite = np.isfinite(tau)
        half = int(0.5 * float(np.min(tau[finite]))) if finite.any() else 1
        thin = max(int(settings.thin), half, 1)
    chain = sampler.get_chain()[:n]
    lnp = sampler.get_log_prob()[:n]
    acc = sampler.backend.accepted / max(sampler.backend.iteration, 1)
    kept = chain[burn::thin]
    kept_lnp = lnp[burn::thin]
    out = {
        "chain": chain,
        "lnprob": lnp,
        "samples": kept.reshape(-1, lnprob.ndim),
        "samples_lnprob": kept_lnp.reshape(-1),
        "acceptance": acc,
        "autocorr": tau,
        "burn": int(burn),
        "thin": int(thin),
        "nsteps": int(n),
        "converged": converged,
        "segments": int(segments),
        "tau_history": history,
        "resumed_at": done,
    }
    if settings.backend is not None:
        compact_chain_file(settings.backend)
    return out


def check_chain(run: dict[str, Any], settings: McmcSettings, names: Sequence[str]) -> list[str]:
    """Diagnostics messages (and :class:`MCMCShortChainWarning`) for a finished run."""
    notes = []
    n_after = run["nsteps"] - run["burn"]
    tau = run["autocorr"]
    finite = np.isfinite(tau)
    if finite.any():
        worst = int(np.nanargmax(tau))
        if n_after < settings.tau_factor * tau[worst]:
            fix = ("increase nsteps" if settings.fixed else
                   f"max_steps ({settings.max_steps}) reached: increase it")
            notes.append(f"chain too short: {n_after} steps after burn-in < "
                         f"{settings.tau_factor:g} x the autocorrelation time of "
                         f"{names[worst]} ({tau[worst]:.1f} steps); {fix}")
        elif not settings.fixed and not run["converged"]:
            notes.append(f"the autocorrelation times still changed by more than "
                         f"{settings.tau_rtol:g} (relative) between the last segments when "
                         f"max_steps ({settings.max_steps}) was reached: increase it")
    else:
        notes.append("the autocorrelation time could not be estimated (chain too short)")
    acc = float(np.mean(run["acceptance"]))
    if not 0.1 <= acc <= 0.9:
        notes.append(f"mean acceptance fraction {acc:.2f} is outside 0.1-0.9")
    for note in notes:
        warnings.warn(note, MCMCShortChainWarning, stacklevel=3)
    return notes


def component_percentiles(model: Any, params: NDArray, z: float, spectral_scale: NDArray,
                          threads: int | None = None) -> tuple[NDArray, dict[str, NDArray]]:
    """Observed-frame wavelengths and p16/p50/p84 (3, nwave) of the total and component
    spectra of a batch of parameter arrays (n, 16) at redshift ``z``, each model multiplied
    by its ``spectral_scale``."""
    wave, comps = model.observed_components(params, z=z, threads=threads)
    out = {}
    for name in ("total", *COMPONENT_NAMES):
        v = np.atleast_2d(comps[name]) * spectral_scale[:, None]
        if name != "total" and not np.any(v):
            continue
        out[name] = np.percentile(v, [16, 50, 84], axis=0)
    return wave, out


def build_log_probability(ctx: Any, free_all: Sequence[str], box: Any, obs: NDArray | None,
                          err: NDArray | None, z: float | None, spectral: Any,
                          area_kpc2: float | None, dz_interp: float,
                          check: Any = None, upper: NDArray | None = None
                          ) -> tuple[LogProbability, dict[str, float]]:
    """The :class:`LogProbability` of one SED and the fixed parameters.

    ``free_all`` lists the candidate parameters; ``box(name)`` gives each one's prior box
    ``(lo, hi)`` (``lo == hi`` fixes it). The velocity dispersion is added when the
    spectrum samples it. ``check(ndim)``, if given, validates the sampler settings for
    the number of sampled parameters; ``upper`` flags the bands that are upper limits.
    Raises ValueError for priors on unknown quantities.
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


def posterior_products(ctx: Any, lnprob: LogProbability, samples: NDArray,
                       samples_lnp: NDArray, weights: NDArray | None, obs: NDArray | None,
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
            phot[a : a + idx.size] = ex["photometry"]
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
    photo_pct = (np.percentile(np.repeat(phot, counts, axis=0), [16, 50, 84], axis=0)
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

    result: Any
    models: Any
    weights: NDArray[np.float64]
    scales: NDArray[np.float64] | None = None
    chi2_spec: NDArray[np.float64] | None = None
    nclip: int = 0


def _box(ctx: Any, name: str, lp: LibraryPass,
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
        grid = lp.models.z_grid
        lo, hi = float(grid.min()), float(grid.max())
    else:
        from .priors import DEFAULT_RANGES

        lo, hi = ctx.library.ranges.get(name, DEFAULT_RANGES.get(name, (None, None)))
        if lo is None:
            raise ValueError(f"no range known for {name!r}: give a prior with lo and hi")
    if prior is not None:
        lo = prior.lo if prior.lo is not None else lo
        hi = prior.hi if prior.hi is not None else hi
    if name in (limits := ctx.model.param_limits()):  # the model refuses values outside
        lo, hi = max(lo, limits[name][0]), min(hi, limits[name][1])
    elif name == "z":
        lo = max(lo, 1e-4)
    if hi < lo:
        raise ValueError(f"the prior box of {name!r} is empty ([{lo:g}, {hi:g}] after limiting "
                         "it to the model's valid range)")
    return float(lo), float(hi)


def data_mass_box(ctx: Any, lp: LibraryPass, obs: NDArray, err: NDArray, z: float | None,
                  log_mass_to_light: tuple[float, float]) -> tuple[float, float]:
    """The ``log_mass`` prior box of a photometric fit from the data alone
    (:func:`~pixedfit.fitting.boxes.log_mass_box` over the bands fitted, at ``z`` or the two
    ends of the library's redshift grid); a ``log_mass`` prior's lo and hi replace it (in
    :func:`_box`)."""
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


def sampling_problem(ctx: Any, lp: LibraryPass, obs: NDArray | None, err: NDArray | None,
                     z: float | None, spectral: Any, area_kpc2: float | None,
                     max_candidates: int, dz_interp: float = 0.001,
                     upper: NDArray | None = None,
                     log_mass_to_light: tuple[float, float] = DEFAULT_LOG_MASS_TO_LIGHT
                     ) -> SamplingProblem:
    """Set up the sampled parameters, prior box, log posterior and library candidates of
    one SED (photometry and/or spectrum) from its library pass.

    ``ctx`` is the fit context of :mod:`pixedfit.fitting.drivers` (library, model,
    filters, priors, settings); ``obs``, ``err`` and ``upper`` are the observations as
    fitted (:class:`~pixedfit.fitting.errors.Observations`: total errors, +inf for a
    dropped band, upper-limit flags); at most ``max_candidates`` library models are kept.
    The ``log_mass`` box comes from the data and ``log_mass_to_light``
    (:mod:`pixedfit.fitting.boxes`), never from the library.
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
        s = scale_fit(flux, obs, err, None if upper is None else ~np.asarray(upper, bool))[0]
    else:
        s = lp.scales[im]
    with np.errstate(divide="ignore", invalid="ignore"):
        cand_mass = np.log10(np.where(s > 0, s, np.nan))
    good = np.isfinite(cand_mass)
    order, im, iz, cand_mass = order[good], im[good], iz[good], cand_mass[good]
    if order.size == 0:
        raise ValueError("no library model fits with a positive normalisation")
    mass_box = (data_mass_box(ctx, lp, obs, err, z, log_mass_to_light) if has_phot
                else None)

    derived_names = list(ctx.library.derived)
    lnprob, fixed = build_log_probability(
        ctx, free_all, lambda name: _box(ctx, name, lp, mass_box), obs, err, z, spectral,
        area_kpc2, dz_interp, upper=upper if has_phot else None)
    free, lo, hi = lnprob.free, lnprob.lo, lnprob.hi
    cand = np.empty((order.size, len(free)))
    for j, name in enumerate(free):
        if name == "log_mass":
            cand[:, j] = cand_mass
        elif name == "z":
            cand[:, j] = lp.models.z_grid[iz]
        elif name == "veldisp":
            cand[:, j] = spectral.spectrum.veldisp
        else:
            cand[:, j] = table[name][im]
    stat_names = (list(ctx.library.params) + derived_names + (["z"] if z is None else [])
                  + (["veldisp"] if "veldisp" in free else []))
    starts = None
    if has_phot and lp.models.nz == 1 and spectral is None:
        idx, scale = _lowest_chi2(lp, obs, err, upper, ctx.age_prior(z), N_START_POOL)
        starts = np.empty((idx.size, len(free)))
        for j, name in enumerate(free):
            starts[:, j] = np.log10(scale) if name == "log_mass" else table[name][idx]
    return SamplingProblem(lnprob=lnprob, free=free, fixed=fixed, lo=np.array(lo),
                           hi=np.array(hi), candidates=cand, candidate_weights=w[order],
                           stat_names=stat_names, starts=starts)


def fit_one(ctx: Any, lp: LibraryPass, obs: NDArray | None, err: NDArray | None,
            z: float | None, spectral: Any, area_kpc2: float | None,
            settings: McmcSettings, upper: NDArray | None = None) -> Any:
    """MCMC fit of one SED (photometry and/or spectrum) started from a library pass.

    ``ctx`` is the fit context of :mod:`pixedfit.fitting.drivers` (library, model,
    filters, priors, settings); ``obs``, ``err`` and ``upper`` are the observations as
    fitted (:class:`~pixedfit.fitting.errors.Observations`: total errors, +inf for a
    dropped band, upper-limit flags). Returns a :class:`~pixedfit.fitting.results.FitResult`
    whose ``ess`` is nwalkers × (steps after burn-in) / τ_max, ``n_model_evaluations``
    counts the start's refinement and the chain, ``rounds`` the chain segments and
    ``converged`` says whether the autocorrelation criterion was met.
    """
    from .results import FitResult

    has_phot = obs is not None
    max_cand = 4 * settings.nwalkers
    if settings.start == "refined":  # the refinement's first proposal wants many models
        max_cand = max(max_cand, (settings.refine.max_candidates if settings.refine
                                  is not None else 20000))
    prob = sampling_problem(ctx, lp, obs, err, z, spectral, area_kpc2,
                            max_candidates=max_cand, dz_interp=settings.dz_interp, upper=upper,
                            log_mass_to_light=settings.log_mass_to_light)
    lnprob, free, fixed, lo, hi = prob.lnprob, prob.free, prob.fixed, prob.lo, prob.hi
    settings.check(len(free))
    start_info: dict[str, Any] = {}

    def start() -> NDArray:
        pos, info = refined_start(prob, settings, np.random.default_rng([settings.seed, 0]))
        start_info.update(info)
        return pos

    run = run_mcmc(lnprob, start, settings)
    n_eval = lnprob.ncalls
    notes = check_chain(run, settings, free)
    if "log_mass" in free:
        j = free.index("log_mass")
        edge = mass_box_edge(run["samples"][:, j], None, lo[j], hi[j], ctx.priors,
                             settings.log_mass_to_light)
        if edge is not None:
            notes.append(edge)
            warnings.warn(edge, MassBoxWarning, stacklevel=3)

    rng = np.random.default_rng([settings.seed, 1])
    post = posterior_products(ctx, lnprob, run["samples"], run["samples_lnprob"], None, obs,
                              err, z, spectral, settings.n_sed_samples,
                              settings.max_derived_samples, rng)
    nsamp = run["samples"].shape[0]
    diagnostics = {
        "acceptance": float(np.mean(run["acceptance"])),
        "autocorr": [float(t) for t in run["autocorr"]],
        "sampled": free,
        "fixed": fixed,
        "box": {n: [float(a), float(b)] for n, a, b in zip(free, lo, hi, strict=True)},
        "nwalkers": settings.nwalkers, "nsteps": run["nsteps"],
        "nsteps_cut": run["burn"], "thin": run["thin"], "seed": settings.seed,
        "stop": "fixed" if settings.fixed else "autocorr", "moves": settings.moves,
        "tau_history": run["tau_history"], **start_info,
        "resumed_at": int(run["resumed_at"]), "nsamples": int(nsamp),
        "n_model_evaluations": int(n_eval), "warnings": notes,
        "spectral_pixels": None if spectral is None else spectral.npix,
        "spectral_clipped": lp.nclip,
        "spectral_template_limited": None if spectral is None else spectral.template_limited,
        **fit_quality(float(post["chi2_min"]),
                      (int(np.isfinite(err).sum()) if has_phot else 0)
                      + (spectral.npix if spectral is not None else 0), len(free)),
    }
    tau = np.asarray(run["autocorr"], dtype=np.float64)
    n_after = run["nsteps"] - run["burn"]
    tau_max = float(np.max(tau)) if np.isfinite(tau).all() else math.inf
    ess = n_after * settings.nwalkers / max(tau_max, 1.0)
    return FitResult(method="mcmc", **post, n_used=int(nsamp), config=ctx.config(),
                     diagnostics=diagnostics, ess=float(ess), n_model_evaluations=int(n_eval),
                     rounds=int(run["segments"]), converged=bool(run["converged"]))


#: Keys of the drivers' ``mcmc_options`` (the McmcSettings without an argument of their own).
OPTION_KEYS = ("max_steps", "tau_factor", "tau_rtol", "check_every", "burn_tau", "moves",
               "start", "init_spread", "n_sed_samples", "max_derived_samples", "dz_interp",
               "log_mass_to_light")


def option_settings(options: Mapping[str, Any] | None, refine: Any = True) -> dict[str, Any]:
    """McmcSettings keywords from the drivers' ``mcmc_options`` mapping and ``refine``.

    ``refine=False`` starts the walkers from the library (``start="library"``, unless the
    options say otherwise); an :class:`~pixedfit.fitting.adaptive.AdaptiveSettings` sets
    the refinement of the start. Raises TypeError / ValueError naming ``mcmc_options`` and
    the key for anything else than a mapping of :data:`OPTION_KEYS`.
    """
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise TypeError(f"mcmc_options must be a mapping (keys {', '.join(OPTION_KEYS)}), "
                        f"got {options!r}")
    unknown = [k for k in options if k not in OPTION_KEYS]
    if unknown:
        raise ValueError(f"mcmc_options: unknown key(s) {', '.join(map(repr, unknown))} "
                         f"(known: {', '.join(OPTION_KEYS)}; nwalkers, nsteps, nsteps_cut, "
                         "thin, seed and backend are arguments of their own)")
    out = dict(options)
    if refine is False:
        out.setdefault("start", "library")
    elif refine is not True:
        out["refine"] = refine
    return out
