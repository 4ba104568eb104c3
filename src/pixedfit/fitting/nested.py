"""Nested sampling of one SED with nautilus, and its Bayesian evidence (models compared by
their evidences: :mod:`pixedfit.fitting.comparison`).

``method="nested"`` samples the same posterior as the MCMC fits (:mod:`.mcmc`: the
vectorised :class:`~pixedfit.fitting.posterior.LogProbability` — photometry and/or spectrum,
free redshift, priors including joint priors and priors on derived quantities, the
age-of-universe limit — evaluated in one batched C++ call per batch of points) with
nautilus (Lange 2023, MNRAS 525, 3181: importance nested sampling with neural-network
bounds; package ``nautilus-sampler``). Unlike MCMC it needs no starting point and no
burn-in, and it returns the evidence Z = ∫ L π dθ with its error.

* **Prior**: uniform in the prior box of every sampled parameter (the same box as an MCMC
  fit: the prior's range, else the library's generation range, limited to what the model
  accepts; at a fixed redshift ``log_age`` is also cut at the age of the universe), times
  the densities of the priors (:mod:`pixedfit.fitting.priors`), normalised so that the
  prior integrates to one (see *Evidence* below).
* **Stellar mass box** (photometric fits): from the data alone, the same for every model
  fitted to one SED, so that evidences of different models are comparable, and the same
  box as adaptive RDSPS and MCMC use (:mod:`pixedfit.fitting.boxes`:
  ``log M ∈ log(νL_ν,max / L☉) + log_mass_to_light``, default (−4, +4)). A ``log_mass``
  prior with ``lo`` and ``hi`` replaces this box. A :class:`~pixedfit.fitting.boxes.
  MassBoxWarning` is raised when the posterior reaches the box's edge.
* **Evidence**: ``ln_evidence`` = ln ∫ L(θ) π(θ) dθ where ln L is the likelihood of
  :class:`~pixedfit.fitting.posterior.LogProbability`, which leaves out terms that depend on
  the data only (for Gaussian errors Σ ln(√(2π) σ_b)): they are the same for every model
  fitted to the same data, so Bayes factors are exact but absolute values of different
  data sets are not comparable. The prior is normalised numerically (grid quadrature over
  the box) for priors on sampled parameters, joint priors with the mass and the
  age-of-universe limit of a free redshift; priors on derived quantities (``log_sfr``,
  ``log_mw_age``, ...) cannot be normalised without models and are left unnormalised
  (``diagnostics["prior_normalised"]`` is then False and
  :func:`pixedfit.fitting.comparison.compare_models` warns).
  Spectrum-only fits profile the normalisation (not sampled), so their "evidence" is that
  of a profile likelihood. The error ``ln_evidence_err`` is the sampling error of
  nautilus' shell estimates (importance-sampling variance of each shell's mean likelihood
  and binomial error of its volume); the scatter between seeds is measured in
  ``tests/test_nested.py``.
* **Stopping**: nautilus explores until the live set holds < ``f_live`` of the evidence,
  then samples until the effective sample size reaches ``target_ess`` or ``max_calls``
  likelihood calls are spent (then ``converged`` is False and a
  :class:`NestedSamplingWarning` says so). With ``discard_exploration`` (default) the points
  of the exploration phase are dropped, as nautilus recommends for unbiased posteriors and
  evidences.
* **Outputs**: those of an MCMC fit (statistics, best fit, photometry and model-SED
  percentiles, spectral correction moments — computed by the same function,
  :func:`pixedfit.fitting.posterior.posterior_products`, from the weighted samples), plus
  ``ln_evidence``; ``diagnostics`` holds ``ess``, ``n_model_evaluations``,
  ``ln_evidence_err`` and ``converged``. The same seed gives the same result.
* **Threads**: one thread per fit unless ``threads`` is given (batches of 100 points are
  too small for OpenMP to pay off); fit many SEDs in parallel with the drivers.
"""

from __future__ import annotations

import contextlib
import math
import threading
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray
from scipy.special import logsumexp

from ..cosmology import age_of_universe
from .boxes import (
    DEFAULT_LOG_MASS_TO_LIGHT,
    MassBoxWarning,
    check_log_mass_to_light,
    log_mass_box,
    mass_box_edge,
)
from .errors import fit_quality
from .posterior import (
    FitContext,
    LibraryPass,
    LogProbability,
    _box,
    build_log_probability,
    data_mass_box,
    posterior_products,
)
from .priors import JointWithMass
from .results import FitResult

__all__ = ["NestedSamplingWarning", "NestedSettings", "fit_one", "log_mass_box"]


class NestedSamplingWarning(UserWarning):
    """Nested sampling stopped on its budget (or its evidences are not comparable)."""


@dataclass(frozen=True, kw_only=True)
class NestedSettings:
    """Settings of a nested-sampling fit (nautilus).

    Attributes
    ----------
    n_live : int
        Live points (nautilus' bounds enclose them); ≥ 100.
    target_ess : int
        Effective sample size at which sampling stops (≥ 100).
    max_calls : int
        At most this many likelihood calls (the run then stops unconverged).
    discard_exploration : bool
        Drop the points of the exploration phase (unbiased posterior and evidence).
    f_live : float
        Exploration ends when the live set holds less than this fraction of the evidence.
    n_networks : int
        Neural networks per nautilus bound (≥ 1).
    hidden_layers : tuple of int
        Hidden-layer sizes of those networks.
    train_patience : int
        A network's training stops after this many epochs without improvement (nautilus'
        own default is 10; 3 cut the CPU time of a 12-band fit by about a quarter with the
        same number of likelihood calls and evidence, ``benchmarks/RESULTS.md``).
    n_update : int or None
        Points added to the live set before a new bound is built (None: 3 × ``n_live``).
    seed : int
        Seed of the sampler and of the sample subsets.
    log_mass_to_light : (float, float)
        Range of log(M / νL_ν,max) [M☉ / L☉] of the stellar-mass box (see the module
        docstring).
    n_sed_samples : int
        Samples used for the model SED percentiles.
    max_derived_samples : int
        Equal-weight draws from the weighted posterior that get derived quantities.
    dz_interp : float
        Redshift grid step of free-z photometry interpolation.
    progress : bool
        Print nautilus' progress.
    """

    n_live: int = 500
    target_ess: int = 1000
    max_calls: int = 100000
    discard_exploration: bool = True
    f_live: float = 0.01
    n_networks: int = 1
    hidden_layers: tuple[int, ...] = (32, 16)
    train_patience: int = 3
    n_update: int | None = None
    seed: int = 0
    log_mass_to_light: tuple[float, float] = DEFAULT_LOG_MASS_TO_LIGHT
    n_sed_samples: int = 200
    max_derived_samples: int = 10000
    dz_interp: float = 0.001
    progress: bool = False

    def __post_init__(self) -> None:
        for name in ("n_live", "target_ess", "max_calls", "n_networks", "n_sed_samples",
                     "max_derived_samples", "train_patience", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer):
                raise ValueError(f"NestedSettings.{name} must be an integer, got {v!r}")
            if v < (0 if name == "seed" else 1):
                raise ValueError(f"NestedSettings.{name} must be "
                                 f"{'>= 0' if name == 'seed' else 'positive'}, got {v!r}")
        if self.n_live < 100:
            raise ValueError(f"NestedSettings.n_live must be >= 100, got {self.n_live}")
        if self.target_ess < 100:
            raise ValueError(f"NestedSettings.target_ess must be >= 100, got {self.target_ess}")
        if self.max_calls < self.n_live:
            raise ValueError(f"NestedSettings.max_calls must be >= n_live ({self.n_live}), "
                             f"got {self.max_calls}")
        try:
            layers = tuple(int(v) for v in self.hidden_layers)
        except (TypeError, ValueError) as exc:
            raise ValueError("NestedSettings.hidden_layers must be a sequence of positive "
                             f"integers, got {self.hidden_layers!r}") from exc
        if not layers or min(layers) < 1:
            raise ValueError("NestedSettings.hidden_layers must be a sequence of positive "
                             f"integers, got {self.hidden_layers!r}")
        object.__setattr__(self, "hidden_layers", layers)
        if self.n_update is not None and (isinstance(self.n_update, bool) or not isinstance(
                self.n_update, int | np.integer) or self.n_update < 1):
            raise ValueError(f"NestedSettings.n_update must be a positive integer or None, got "
                             f"{self.n_update!r}")
        for name in ("discard_exploration", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"NestedSettings.{name} must be True or False, got "
                                 f"{getattr(self, name)!r}")
        if not (isinstance(self.f_live, float | int) and 0 < self.f_live < 1):
            raise ValueError(f"NestedSettings.f_live must be within (0, 1), got {self.f_live!r}")
        object.__setattr__(self, "log_mass_to_light", check_log_mass_to_light(
            self.log_mass_to_light, "NestedSettings"))
        if not (isinstance(self.dz_interp, float | int) and self.dz_interp > 0):
            raise ValueError(f"NestedSettings.dz_interp must be > 0, got {self.dz_interp!r}")

    @classmethod
    def from_any(cls, value: NestedSettings | Mapping[str, Any] | None, **override: Any
                 ) -> NestedSettings:
        """Settings from an instance, a mapping of field names, or None (defaults), with
        ``override`` applied; unknown names raise ValueError naming them.

        Parameters
        ----------
        value : NestedSettings, mapping or None
            The settings, or field name → value, or None for the defaults.
        **override
            Fields set over ``value`` (e.g. ``seed``, ``progress``).

        Returns
        -------
        NestedSettings
        """
        if value is None:
            base: dict[str, Any] = {}
        elif isinstance(value, NestedSettings):
            base = {f.name: getattr(value, f.name) for f in fields(cls)}
        elif isinstance(value, Mapping):
            base = dict(value)
        else:
            raise ValueError(f"nested settings must be NestedSettings or a mapping, got "
                             f"{value!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(base) - known)
        if unknown:
            raise ValueError(f"nested settings: unknown field(s) {unknown} (known: "
                             f"{', '.join(sorted(known))})")
        base.update(override)
        return cls(**base)


# --------------------------------------------------------------------------- prior volume
def _grid(lo: float, hi: float, n: int) -> NDArray[np.float64]:
    """Midpoints of ``n`` equal cells of [lo, hi]."""
    return lo + (np.arange(n) + 0.5) * (hi - lo) / n


def log_prior_normalisation(lnprob: LogProbability, area_kpc2: float | None = None
                            ) -> tuple[float, bool]:
    """ln of ∫ U_box(θ) π̃(θ) dθ: the mass of the prior that the sampler sees.

    The sampler integrates exp(ln p) over the box with the uniform density U_box, where
    ln p (:class:`LogProbability`) holds the prior densities π̃ (not normalised over the
    box) and the age-of-universe cut. Dividing the evidence by this integral normalises the
    prior. Priors on sampled parameters are integrated on a grid of cell midpoints (4001
    per parameter; 801² for pairs tied by a joint prior with the mass or by the age limit
    of a free redshift); priors of fixed parameters enter with their density at the fixed
    value.

    Parameters
    ----------
    lnprob : LogProbability
        The log posterior the sampler explores (free parameters, box, priors).
    area_kpc2 : float, optional
        Area of the SED (kpc²), for surface-density priors.

    Returns
    -------
    (float, bool)
        The ln integral and whether every prior term could be normalised (False with
        priors on derived quantities, on a profiled mass, or in groups of > 2 parameters).
    """
    free = lnprob.free
    box = {n: (float(a), float(b)) for n, a, b in zip(free, lnprob.lo, lnprob.hi, strict=True)}
    fixed = dict(lnprob.fixed)
    if lnprob.z is not None:
        fixed["z"] = float(lnprob.z)
    profiled_mass = lnprob.spectral is not None and not lnprob.filters
    terms: list[tuple[str, set[str]]] = []
    ok = True
    for name in lnprob.priors.names:
        prior = lnprob.priors[name]
        involved = set()
        if name in free:
            involved.add(name)
        elif name not in fixed or (name == "log_mass" and profiled_mass):
            ok = False  # a derived quantity (or the profiled mass): needs models
            continue
        if isinstance(prior, JointWithMass):
            if profiled_mass:
                ok = False
                continue
            if "log_mass" in free:
                involved.add("log_mass")
            elif "log_mass" not in fixed:
                ok = False
                continue
        terms.append((name, involved))
    if lnprob.age_limit and "z" in free:
        terms.append(("__age__", {"z", "log_age"} & set(free)))
    # group the sampled parameters that share a term
    groups: list[set[str]] = []
    for _, inv in terms:
        if not inv:
            continue
        merged = set(inv)
        for g in [g for g in groups if g & merged]:
            merged |= g
            groups.remove(g)
        groups.append(merged)
    total = 0.0
    for group in groups:
        names = sorted(group)
        if len(names) > 2:
            ok = False
            continue
        npts = 4001 if len(names) == 1 else 801
        mesh = np.meshgrid(*[_grid(*box[n], npts) for n in names], indexing="ij")
        values: dict[str, Any] = {n: m.ravel() for n, m in zip(names, mesh, strict=True)}
        size = mesh[0].size
        for k, v in fixed.items():
            values.setdefault(k, np.full(size, v))
        lp = np.zeros(size)
        for name, inv in terms:
            if not inv or not inv <= group:
                continue
            if name == "__age__":
                lim = np.log10(np.asarray(age_of_universe(values["z"], lnprob.cosmo,
                                                          lnprob.H0, lnprob.Om0)))
                lp = lp + np.where(values["log_age"] <= lim, 0.0, -np.inf)
                continue
            sub = type(lnprob.priors)([lnprob.priors[name]])
            lp = lp + sub.log_prior({k: values[k] for k in {name, "log_mass"} if k in values},
                                    area_kpc2)
        if not np.isfinite(lp).any():
            raise ValueError(f"the priors of {', '.join(names)} vanish everywhere inside "
                             "the prior box")
        total += float(logsumexp(lp) - math.log(size))
    # terms that involve fixed parameters only
    values0 = {k: np.array([v]) for k, v in fixed.items()}
    for name, inv in terms:
        if inv or name == "__age__":
            continue
        sub = type(lnprob.priors)([lnprob.priors[name]])
        val = float(sub.log_prior({k: values0[k] for k in {name, "log_mass"} if k in values0},
                                  area_kpc2)[0])
        if not math.isfinite(val):
            raise ValueError(f"the prior of {name!r} vanishes at its fixed value")
        total += val
    return total, ok


def ln_evidence_error(sampler: Any) -> float:
    """Sampling error of nautilus' ln Z from its shells.

    Each shell i contributes Z_i = V_i ⟨L⟩_i; ⟨L⟩_i has a relative variance
    1/n_eff,i − 1/n_i (importance sampling with n_i points of Kish size n_eff,i) and V_i,
    the bound volume times the fraction f_i of its draws that belong to the shell, a
    binomial relative variance (1 − f_i) / (N_i f_i). σ(ln Z) = √(Σ Z_i² var_i) / Z.
    """
    n = np.asarray(sampler.shell_n, dtype=np.float64)
    neff = np.asarray(sampler.shell_n_eff, dtype=np.float64)
    nsample = np.asarray(sampler.shell_n_sample, dtype=np.float64)
    if sampler.discard_exploration and sampler.explored:
        nsample = nsample - np.asarray(sampler.shell_n_sample_exp, dtype=np.float64)
    log_zi = np.asarray(sampler.shell_log_l) + np.asarray(sampler.shell_log_v)
    use = np.isfinite(log_zi) & (n > 0) & (neff > 0) & (nsample > 0)
    if not use.any():
        return math.nan
    frac = n[use] / nsample[use]
    rel_var = (np.maximum(1.0 / neff[use] - 1.0 / n[use], 0.0)
               + np.maximum(1.0 - frac, 0.0) / (nsample[use] * frac))
    lz = log_zi[use]
    log_z = logsumexp(lz)
    return float(math.sqrt(np.sum(np.exp(2.0 * (lz - log_z)) * rel_var)))


# --------------------------------------------------------------------------- nautilus
_THREADS_LOCK = threading.Lock()
_THREADS_DEPTH = 0
_THREADS_SAVED: list[tuple[Any, Any]] = []  # (nautilus module, its threadpool_limits)
_THREADS_LIMITER: list[Any] = []  # the one-BLAS-thread limiter while fits run


@contextlib.contextmanager
def _nautilus_threads() -> Iterator[None]:
    """Thread pools as a nested fit wants them, for the duration of the block.

    * nautilus wraps every shell it samples and every bound it builds in
      ``threadpool_limits(limits=1)``; each call built a new ``ThreadpoolController``,
      which finds and reads the loaded shared libraries again (≈ 5 ms; 578 calls, ≈ 3 s
      — 15 % of the CPU time — in a 12-band, 7-parameter fit). Within the block those
      calls use threadpoolctl's cached controller (``get_cached_controller().limit``,
      the same limits).
    * BLAS pools are limited to one thread: nautilus' bound sampling and network
      predictions call BLAS on small matrices outside its own limits, where a second
      thread spins for little gain (CPU 10.4 s against 9.2 s wall per fit).

    Both are process-wide, so concurrent fits (the drivers' Python threads) share them:
    the first block sets them, the last one to exit restores nautilus' names and the
    user's thread settings. Re-entrant and thread-safe.
    """
    global _THREADS_DEPTH
    import nautilus.bounds.basic
    import nautilus.sampler
    import threadpoolctl

    # threadpoolctl >= 3.5 (threadpoolctl is untyped)
    cached: Any = getattr(threadpoolctl, "get_cached_controller", None)

    def limits(limits: int | None = None, user_api: str | None = None) -> Any:
        return cached().limit(limits=limits, user_api=user_api)

    with _THREADS_LOCK:
        if _THREADS_DEPTH == 0:
            if cached is not None:
                _THREADS_SAVED[:] = [(m, m.threadpool_limits)
                                     for m in (nautilus.sampler, nautilus.bounds.basic)
                                     if hasattr(m, "threadpool_limits")]
                for module, _ in _THREADS_SAVED:
                    module.threadpool_limits = limits
            _THREADS_LIMITER[:] = [
                limits(limits=1, user_api="blas") if cached is not None
                else threadpoolctl.threadpool_limits(limits=1, user_api="blas")]
        _THREADS_DEPTH += 1
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _THREADS_DEPTH -= 1
            if _THREADS_DEPTH == 0:
                _THREADS_LIMITER.pop().restore_original_limits()
                for module, original in _THREADS_SAVED:
                    module.threadpool_limits = original
                _THREADS_SAVED.clear()


# --------------------------------------------------------------------------- one SED
def fit_one(ctx: FitContext, lp: LibraryPass, obs: NDArray | None, err: NDArray | None,
            z: float | None, spectral: Any, area_kpc2: float | None,
            settings: NestedSettings, upper: NDArray | None = None) -> Any:
    """Nested-sampling fit of one SED (photometry and/or spectrum).

    Parameters
    ----------
    ctx : fit context
        The fit context of :mod:`pixedfit.fitting.drivers` (library, model, filters,
        priors, settings).
    lp : LibraryPass
        The library pass (its redshift grid bounds a free redshift; a spectrum's sigma
        clipping was done there).
    obs, err : ndarray, shape (nband,), or None
        Observations as fitted (f_λ, erg s⁻¹ cm⁻² Å⁻¹, and total errors); None for a
        spectrum alone.
    z : float or None
        Redshift (None: free).
    spectral : SpectralLikelihood or None
        The spectrum's likelihood.
    area_kpc2 : float or None
        Area of the SED (kpc²), for surface-density priors.
    settings : NestedSettings
        Sampler settings.
    upper : ndarray of bool, shape (nband,), optional
        Bands that are upper limits (see :mod:`pixedfit.fitting.errors`).

    Returns
    -------
    FitResult
        With ``method="nested"`` and ``ln_evidence``.
    """
    import nautilus

    model = ctx.model
    if model is None:
        raise ValueError("nested-sampling fits need an SEDModel (this library records no "
                         "complete model configuration: pass model=)")
    if not isinstance(settings, NestedSettings):
        raise ValueError(f"settings must be NestedSettings, got {settings!r}")
    has_phot = obs is not None
    free_all = [p for p in model.free_params() if has_phot or p != "log_mass"]
    if z is None:
        free_all.append("z")
    s = ctx.settings
    cosmo, H0, Om0 = s.get("cosmo"), s.get("H0", 70.0), s.get("Om0", 0.3)
    age_limit = s.get("max_age_universe", True)
    mass_box = (data_mass_box(ctx, lp, cast("NDArray", obs), cast("NDArray", err), z,
                              settings.log_mass_to_light) if has_phot else None)

    def box(name: str) -> tuple[float, float]:
        lo, hi = _box(ctx, name, lp, mass_box)
        if name == "log_age" and age_limit and z is not None:
            limit = math.log10(float(age_of_universe(z, cosmo, H0, Om0)))
            if lo > limit:
                raise ValueError(f"the prior box of 'log_age' ([{lo:g}, {hi:g}]) lies above "
                                 f"the age of the universe at z = {z:g} ({10**limit:.3g} Gyr)")
            hi = min(hi, limit)
        return lo, hi

    def check(ndim: int) -> None:
        if ndim < 2:
            raise ValueError("nested sampling needs at least 2 sampled parameters (nautilus)")

    lnprob, fixed = build_log_probability(ctx, free_all, box, obs, err, z, spectral=spectral,
                                          area_kpc2=area_kpc2, dz_interp=settings.dz_interp,
                                          check=check, upper=upper)
    lo, hi = lnprob.lo, lnprob.hi
    width = hi - lo
    ln_norm, normalised = log_prior_normalisation(lnprob, area_kpc2)

    def transform(u: NDArray) -> NDArray:
        return lo + np.asarray(u) * width

    sampler = nautilus.Sampler(transform, lnprob, n_dim=lnprob.ndim, n_live=settings.n_live,
                               n_networks=settings.n_networks, vectorized=True,
                               n_update=(3 * settings.n_live if settings.n_update is None
                                         else settings.n_update),
                               neural_network_kwargs={
                                   "hidden_layer_sizes": tuple(settings.hidden_layers),
                                   "n_iter_no_change": int(settings.train_patience)},
                               pass_dict=False, seed=settings.seed)
    with _nautilus_threads():
        converged = bool(sampler.run(f_live=settings.f_live, n_eff=settings.target_ess,
                                     n_like_max=settings.max_calls,
                                     discard_exploration=settings.discard_exploration,
                                     verbose=settings.progress))
    n_eval = int(lnprob.ncalls)
    points, log_w, log_l = sampler.posterior()
    weights = np.exp(log_w - np.max(log_w))
    ess = float(sampler.n_eff)
    ln_z = float(sampler.log_z) - ln_norm
    ln_z_err = ln_evidence_error(sampler)
    notes = []
    if not converged:
        notes.append(f"nested sampling stopped after {sampler.n_like} likelihood calls "
                     f"(max_calls) with an effective sample size of {ess:.0f} < target_ess "
                     f"= {settings.target_ess}: increase max_calls")
    rng = np.random.default_rng(settings.seed)
    post = posterior_products(ctx, lnprob, points, log_l, weights, obs=obs, err=err, z=z,
                              spectral=spectral, n_sed_samples=settings.n_sed_samples,
                              max_derived_samples=settings.max_derived_samples, rng=rng)
    for note in notes:
        warnings.warn(note, NestedSamplingWarning, stacklevel=3)
    if "log_mass" in lnprob.free:
        j = lnprob.free.index("log_mass")
        edge = mass_box_edge(post["samples"][:, post["names"].index("log_mass")], None,
                             lo[j], hi[j], ctx.priors, settings.log_mass_to_light)
        if edge is not None:
            notes.append(edge)
            warnings.warn(edge, MassBoxWarning, stacklevel=3)
    diagnostics = {
        "ess": ess,
        "n_model_evaluations": n_eval,
        "ln_evidence_err": ln_z_err,
        "converged": converged,
        "n_likelihood_calls": int(sampler.n_like),
        "ln_prior_norm": float(ln_norm),
        "prior_normalised": bool(normalised),
        "sampled": list(lnprob.free),
        "fixed": fixed,
        "box": {n: [float(a), float(b)] for n, a, b in zip(lnprob.free, lo, hi, strict=True)},
        "n_live": settings.n_live, "target_ess": settings.target_ess,
        "max_calls": settings.max_calls, "discard_exploration": settings.discard_exploration,
        "f_live": settings.f_live, "seed": settings.seed,
        "log_mass_to_light": list(settings.log_mass_to_light),
        "npoints": int(points.shape[0]), "warnings": notes,
        "spectral_pixels": None if spectral is None else spectral.npix,
        "spectral_clipped": lp.nclip,
        "spectral_template_limited": None if spectral is None else spectral.template_limited,
    }
    diagnostics.update(fit_quality(float(post["chi2_min"]),
                                   (int(np.isfinite(cast("NDArray", err)).sum())
                                    if obs is not None else 0)
                                   + (spectral.npix if spectral is not None else 0),
                                   len(lnprob.free)))
    return FitResult(method="nested", **post, ln_evidence=ln_z,
                     n_used=int(np.count_nonzero(weights > 0)), config=ctx.config(),
                     diagnostics=diagnostics, ess=float(ess), n_model_evaluations=int(n_eval),
                     rounds=1, converged=bool(converged))
