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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from .._paths import hdf5_atomic, open_hdf5
from .adaptive import AdaptiveSettings, run_adaptive
from .boxes import (
    DEFAULT_LOG_MASS_TO_LIGHT,
    MassBoxWarning,
    check_log_mass_to_light,
    mass_box_edge,
)
from .errors import fit_quality
from .posterior import (
    FitContext,
    LibraryPass,
    LogProbability,
    SamplingProblem,
    posterior_products,
    sampling_problem,
)
from .results import FitResult

__all__ = ["MOVES", "ChainRepairWarning", "MCMCShortChainWarning", "McmcSettings", "make_moves",
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


@dataclass(frozen=True, kw_only=True)
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
            if not isinstance(self.refine, AdaptiveSettings):
                raise TypeError(f"refine must be an AdaptiveSettings or None, got "
                                f"{self.refine!r}")
            self.refine.check()
        if self.backend is not None and not isinstance(self.backend, str | os.PathLike):
            raise TypeError(f"backend must be a file path or None, got {self.backend!r}")
        if ndim is not None and self.nwalkers < 2 * ndim:
            raise ValueError(f"nwalkers must be >= 2 x the number of free parameters "
                             f"({2 * ndim}), got {self.nwalkers}")


def initial_positions(lnprob: LogProbability, candidates: NDArray, weights: NDArray,
                      settings: McmcSettings, rng: np.random.Generator,
                      jitter: NDArray | None = None) -> NDArray:
    """``nwalkers`` starting points drawn from weighted candidate positions (ncand, ndim),
    jittered and kept inside the box, each with a finite log posterior.

    Candidates are drawn without replacement when at least twice ``nwalkers`` of them have
    a positive weight.

    Parameters
    ----------
    lnprob : LogProbability
        The log posterior (box of the sampled parameters).
    candidates : ndarray, shape (ncand, ndim)
        Candidate positions.
    weights : ndarray, shape (ncand,)
        Their weights (non-finite or <= 0: never drawn).
    settings : McmcSettings
        ``nwalkers`` and ``init_spread``.
    rng : numpy.random.Generator
        Random numbers.
    jitter : ndarray, shape (ndim,), optional
        Standard deviation of the jitter per parameter (parameter units); None:
        ``init_spread`` × the box width.

    Returns
    -------
    ndarray, shape (nwalkers, ndim)
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

    Parameters
    ----------
    prob : SamplingProblem
        The SED's sampling problem (:func:`pixedfit.fitting.posterior.sampling_problem`).
    settings : McmcSettings
        ``start``, ``refine``, ``seed``, ``nwalkers`` and ``init_spread``.
    rng : numpy.random.Generator
        Random numbers of the draws.

    Returns
    -------
    positions : ndarray, shape (nwalkers, ndim)
    record : dict
        ``start`` ("refined" or "library"), and for a refined start the refinement's
        ``start_ess``, ``start_evaluations`` and ``start_converged``.
    """
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

    Parameters
    ----------
    chain : ndarray, shape (nsteps, nwalkers, ndim)
        The chain.
    settings : McmcSettings
        ``nsteps``, ``nsteps_cut`` and ``burn_tau``.

    Returns
    -------
    tau : ndarray, shape (ndim,)
        Autocorrelation time of each parameter, steps.
    burn : int
        Burn-in, steps.
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
    while the chain is being written (``running``) :data:`CHAIN_STEP_OVERHEAD` per step.

    Parameters
    ----------
    ndim : int
        Sampled parameters.
    nwalkers : int
        Walkers.
    nsteps : int
        Steps of the chain.
    running : bool
        Count the overhead of a chain being written.

    Returns
    -------
    int
        Bytes.
    """
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


class ChainRepairWarning(UserWarning):
    """A chain file damaged by an interrupted write was rewritten to resume it."""


def _repair_chain(path: str, name: str, seed: int, done: int) -> None:
    """Rewrite the chain file ``path`` (emcee's layout, group ``name``) from its first
    ``done`` steps, with a new random state drawn from (``seed``, ``done``).

    A kill while emcee writes a step can leave the random-state attributes unreadable
    (HDF5: "len not positive after adjustment for EOA") while the stored steps are intact:
    emcee writes the step's positions first and counts it (``iteration``) last. The steps
    are kept; the new stream makes the chain differ from an uninterrupted one from step
    ``done`` on. The new file replaces the old one atomically.

    Raises
    ------
    ValueError
        The stored steps themselves cannot be read (naming the file).
    """
    try:
        with open_hdf5(path) as src:
            g = src[name]
            attrs = {k: g.attrs[k] for k in g.attrs if not k.startswith("random_state_")}
            data = {k: g[k][:done] for k in ("chain", "log_prob", "blobs")
                    if k != "blobs" or k in g}
            accepted = g["accepted"][...]
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{path}: damaged chain file whose steps cannot be read ({exc}); "
                         "move it away to start the chain again") from None
    state = np.random.RandomState(np.random.SeedSequence([int(seed), int(done)])
                                  .generate_state(4)).get_state()
    with hdf5_atomic(path) as dst:
        g = dst.create_group(name)
        for key, value in attrs.items():
            g.attrs[key] = value
        g.attrs["iteration"] = done
        g.create_dataset("accepted", data=accepted)
        for key, arr in data.items():
            g.create_dataset(key, data=arr, maxshape=(None, *arr.shape[1:]))
        for i, value in enumerate(state):
            g.attrs[f"random_state_{i}"] = value


def _open_backend(lnprob: LogProbability, settings: McmcSettings) -> tuple[Any, int]:
    """emcee's HDF5 backend of ``settings.backend`` (None without one) and the steps it
    already holds. A chain file whose random state or last step cannot be read (a kill
    during a write) is repaired first (:func:`_repair_chain`, with a
    :class:`ChainRepairWarning`)."""
    import emcee

    if settings.backend is None:
        return None, 0
    path = os.fspath(settings.backend)
    backend = emcee.backends.HDFBackend(path, name="mcmc")
    done = 0
    if os.path.exists(path):
        try:
            done = backend.iteration
            shape = backend.shape
        except (KeyError, OSError, AttributeError):
            done, shape = 0, None
        if done and shape != (settings.nwalkers, lnprob.ndim):
            raise ValueError(f"{path}: holds a chain of shape {shape}, not "
                             f"({settings.nwalkers}, {lnprob.ndim}); use another file")
        if done:
            try:
                _ = backend.random_state, backend.get_last_sample()
            except (KeyError, OSError, ValueError) as exc:
                _repair_chain(path, "mcmc", settings.seed, done)
                warnings.warn(
                    f"{path}: the chain's random state could not be read ({exc}): the file "
                    f"was damaged by an interrupted write. Its {done} steps are kept and the "
                    f"chain continues with a new random stream, so from step {done} on it "
                    "differs from an uninterrupted run", ChainRepairWarning, stacklevel=3)
        else:
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

    Parameters
    ----------
    lnprob : LogProbability
        The log posterior.
    start : ndarray, shape (nwalkers, ndim), or callable
        Starting positions, or a function returning them.
    settings : McmcSettings
        Walkers, steps, seed, backend and the convergence criterion.

    Returns
    -------
    dict
        ``chain`` (nsteps, nwalkers, ndim), ``lnprob`` (nsteps, nwalkers), ``samples``
        (nsamp, ndim) and ``samples_lnprob`` after burn-in and thinning, ``acceptance``
        (nwalkers,), ``autocorr`` (ndim,), ``burn`` and ``thin`` (steps), ``converged``
        (the autocorrelation criterion is met), ``segments``, ``tau_history`` (τ_max after
        each segment) and ``resumed_at`` (steps found in the backend).
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
        n = int(cast(int, settings.nsteps))  # fixed: a number of steps
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
    """Diagnostics messages (and :class:`MCMCShortChainWarning`) for a finished run.

    Parameters
    ----------
    run : dict
        The run (:func:`run_mcmc`).
    settings : McmcSettings
        Its settings (``tau_factor``, ``tau_rtol``, ``max_steps``).
    names : sequence of str
        Names of the sampled parameters, for the messages.

    Returns
    -------
    list of str
        The messages (empty for a chain that passes the checks).
    """
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


def fit_one(ctx: FitContext, lp: LibraryPass, obs: NDArray | None, err: NDArray | None,
            z: float | None, spectral: Any, area_kpc2: float | None,
            settings: McmcSettings, upper: NDArray | None = None) -> Any:
    """MCMC fit of one SED (photometry and/or spectrum) started from a library pass.

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
    settings : McmcSettings
        Walkers, steps, seed, backend and the start's refinement.
    upper : ndarray of bool, shape (nband,), optional
        Bands that are upper limits.

    Returns
    -------
    FitResult
        Its ``ess`` is nwalkers × (steps after burn-in) / τ_max, ``n_model_evaluations``
        counts the start's refinement and the chain, ``rounds`` the chain segments and
        ``converged`` says whether the autocorrelation criterion was met.
    """
    has_phot = obs is not None
    max_cand = 4 * settings.nwalkers
    if settings.start == "refined":  # the refinement's first proposal wants many models
        max_cand = max(max_cand, (settings.refine.max_candidates if settings.refine
                                  is not None else 20000))
    prob = sampling_problem(ctx, lp, obs, err, z, spectral=spectral, area_kpc2=area_kpc2,
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
    post = posterior_products(ctx, lnprob, run["samples"], run["samples_lnprob"], None,
                              obs=obs, err=err, z=z, spectral=spectral,
                              n_sed_samples=settings.n_sed_samples,
                              max_derived_samples=settings.max_derived_samples, rng=rng)
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
                      (int(np.isfinite(cast("NDArray", err)).sum()) if has_phot else 0)
                      + (spectral.npix if spectral is not None else 0), len(free)),
    }
    tau = np.asarray(run["autocorr"], dtype=np.float64)
    n_after = run["nsteps"] - run["burn"]
    tau_max = float(np.max(tau)) if np.isfinite(tau).all() else math.inf
    ess = n_after * settings.nwalkers / max(tau_max, 1.0)
    return FitResult(method="mcmc", **post, n_used=int(nsamp), config=ctx.config(),
                     diagnostics=diagnostics, ess=float(ess), n_model_evaluations=int(n_eval),
                     rounds=int(run["segments"]), converged=bool(run["converged"]))
