"""Random dense sampling of parameter space (RDSPS): posterior statistics from a library.

Given model photometry of N library models (at a fixed redshift, or on a redshift grid),
every observed SED is compared with every model in one fused C++ kernel
(:func:`pixedfit._core.rdsps_fit`, described in ``cpp/include/pixedfit/rdsps.hpp``):

* the model is scaled by the analytic least-squares normalisation ``a`` (a model flux
  library is normalised to unit mass, so ``log_mass`` and the other mass-scaled parameters
  of :data:`~pixedfit.fitting.priors.MASS_SCALED` are shifted by ``log10(a)``);
* ``chi2``, a Gaussian or Student-t likelihood and the priors give a posterior weight per
  (SED, model) pair, normalised with log-sum-exp; pairs with ``a <= 0`` (a model that can
  only fit with negative mass) get zero weight;
* the weights are reduced on the fly to the posterior mean, standard deviation and
  16/50/84th percentiles of every parameter — in the parameter's stored units (log
  parameters are averaged in log, unlike the original, which averaged 10^p) — together with
  the minimum-chi2 model, the evidence and, on a redshift grid, the redshift posterior.

Errors: the error model of :mod:`pixedfit.fitting.errors` — statistical errors plus per-band
calibration fractions (``calibration``, an array; the drivers resolve it from the instrument
table or the binned cube) plus an explicit ``error_floor``, in quadrature; upper limits
(``upper_limits``, ``upper_limit_nsigma``) enter through the Gaussian CDF (Sawicki 2012),
evaluated in the kernel; the normalisation is fitted to the detected bands only.

Differences from the original, on purpose: no hidden 10 % error floor (``error_floor`` is an
explicit argument, default 0); no adaptive error inflation; priors are applied to every
statistic including the stellar mass; ``perc_chi2`` defaults to 100 (no cut; the original
used 90); NaN fluxes or non-positive errors raise unless ``mask_invalid=True``, which drops
those bands from the SED's likelihood.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import _core
from ..library import ModelPhotometry
from ..parallel import resolve_threads
from .errors import observations
from .priors import MASS_SCALED, JointWithMass, Prior, PriorSet

__all__ = ["LIKELIHOODS", "RdspsResult", "rdsps"]

#: Share of the library below which an RDSPS pass copies out the models its priors allow
#: rather than passing them all with ln prior −inf for the excluded ones (10⁵ models × 27
#: bands: the copy takes ≈ 10 ms, the kernel's pass over all of them ≈ 3 ms).
_SUBSET_BELOW = 0.25

#: Likelihood forms and their kernel codes.
LIKELIHOODS = {"gauss": 0, "student_t": 1}
_NTAB = 4097  # samples of a tabulated prior of a mass-scaled parameter


@dataclass(frozen=True, kw_only=True)
class RdspsResult:
    """Posterior statistics of RDSPS fits of ``nsed`` SEDs.

    Attributes
    ----------
    names : tuple of str
        Statistic names: the model parameters, then ``"z"`` on a redshift grid.
    mean, std, p16, p50, p84 : ndarray, shape (nsed, nstat)
        Posterior mean, standard deviation and percentiles (stored units: dex for log
        parameters; mass-scaled ones include the fitted normalisation).
    best_model : ndarray of int, shape (nsed,)
        Library index of the minimum-chi2 model (-1 if none fits).
    best_z : ndarray, shape (nsed,)
        Redshift of that pair (NaN for a fixed-redshift fit).
    best_scale : ndarray, shape (nsed,)
        Its normalisation.
    chi2_min : ndarray, shape (nsed,)
    ln_evidence : ndarray, shape (nsed,)
        ln of the mean of exp(ln prob) over the pairs (a Monte-Carlo evidence estimate).
    n_used : ndarray of int, shape (nsed,)
        Pairs entering the posterior; 0 means no model fits (statistics are NaN).
    n_bands_used : ndarray of int, shape (nsed,)
        Bands in each SED's likelihood.
    z_grid : ndarray, shape (nz,), or None
    z_posterior : ndarray, shape (nsed, nz), or None
    weights : ndarray of float32, shape (nsed, nz * nmod), or None
        Normalised posterior weight of every pair (library order, redshift-major), if asked.
    obs_flux, obs_sigma : ndarray, shape (nsed, nband), or None
        The fluxes (limits for upper limits; 0 for dropped bands) and total errors (+inf for
        dropped bands) as fitted (:class:`~pixedfit.fitting.errors.Observations`).
    upper : ndarray of bool, shape (nsed, nband), or None
        Bands fitted as upper limits.
    """

    names: tuple[str, ...]
    mean: NDArray[np.float64]
    std: NDArray[np.float64]
    p16: NDArray[np.float64]
    p50: NDArray[np.float64]
    p84: NDArray[np.float64]
    best_model: NDArray[np.int64]
    best_z: NDArray[np.float64]
    best_scale: NDArray[np.float64]
    chi2_min: NDArray[np.float64]
    ln_evidence: NDArray[np.float64]
    n_used: NDArray[np.int64]
    n_bands_used: NDArray[np.int64]
    z_grid: NDArray[np.float64] | None = None
    z_posterior: NDArray[np.float64] | None = None
    weights: NDArray[np.float32] | None = field(default=None, repr=False)
    obs_flux: NDArray[np.float64] | None = field(default=None, repr=False)
    obs_sigma: NDArray[np.float64] | None = field(default=None, repr=False)
    upper: NDArray[np.bool_] | None = field(default=None, repr=False)

    @property
    def nsed(self) -> int:
        """Number of fitted SEDs."""
        return self.mean.shape[0]

    def summary(self, index: int = 0) -> dict[str, dict[str, float]]:
        """Statistics of SED ``index``: name → {mean, std, p16, p50, p84}."""
        return {
            name: {
                "mean": float(self.mean[index, k]),
                "std": float(self.std[index, k]),
                "p16": float(self.p16[index, k]),
                "p50": float(self.p50[index, k]),
                "p84": float(self.p84[index, k]),
            }
            for k, name in enumerate(self.names)
        }


def _closed(prior: Prior, lib_lo: float, lib_hi: float) -> Prior:
    lo = prior.lo if prior.lo is not None else lib_lo
    hi = prior.hi if prior.hi is not None else lib_hi
    if hi < lib_lo or lo > lib_hi:
        raise ValueError(
            f"the prior range of {prior.param!r} [{lo:g}, {hi:g}] does not overlap the "
            f"library's range [{lib_lo:g}, {lib_hi:g}]: no model can be selected"
        )
    return prior.with_range(lo, hi)


def rdsps(
    flux: ArrayLike,
    flux_err: ArrayLike,
    models: ModelPhotometry,
    *,
    priors: PriorSet | Mapping | Sequence[Prior] | None = None,
    likelihood: str = "gauss",
    dof: float = 3.0,
    perc_chi2: float = 100.0,
    error_floor: float = 0.0,
    mask_invalid: bool = False,
    area_kpc2: float | ArrayLike | None = None,
    calibration: ArrayLike | None = None,
    upper_limits: ArrayLike | None = None,
    upper_limit_nsigma: float | None = None,
    ln_prior_extra: ArrayLike | None = None,
    return_weights: bool = False,
    nhist: int = 4096,
    threads: int | None = None,
) -> RdspsResult:
    """Fit SEDs with a model library by random dense sampling (RDSPS).

    Parameters
    ----------
    flux, flux_err : array_like, shape (nband,) or (nsed, nband)
        Observed fluxes (the limit for an upper limit) and 1σ statistical errors, in the
        unit of the model fluxes.
    models : ModelPhotometry
        Library photometry (fixed redshift, or a redshift grid for a free-z fit).
    priors : PriorSet, mapping or sequence of Prior, optional
        Priors; parameters without one are flat over the library. Mass-scaled parameters
        take priors on their normalised value (non-uniform ones need a finite range).
    likelihood : {"gauss", "student_t"}
    dof : float
        Student-t degrees of freedom.
    perc_chi2 : float
        Keep only pairs with chi2 below this percentile of chi2 (100 keeps all).
    error_floor : float
        Fractional systematic error added in quadrature: σ² + (error_floor · f)².
    mask_invalid : bool
        Drop bands with NaN flux or a non-finite / non-positive error instead of raising.
    calibration : array_like, shape (nband,), optional
        Calibration fraction c_b of every band, added in quadrature as (c_b · f)²
        (:func:`pixedfit.fitting.errors.calibration_fractions` resolves the defaults); None:
        none.
    upper_limits : array_like of bool, shape (nband,) or (nsed, nband), optional
        Bands that are upper limits (flux = the limit, error = the 1σ noise).
    upper_limit_nsigma : float, optional
        Fluxes below this S/N, and NaN fluxes with an error, become limits at n σ.
    area_kpc2 : float or array_like, optional
        Bin area(s) for surface-density joint priors (one, or one per SED).
    ln_prior_extra : array_like, shape (nmod,), optional
        An additional ln prior per model (``-inf`` excludes a model), e.g. ages older than
        the universe.
    return_weights : bool
        Also return the normalised weight of every (SED, model) pair (memory nsed × pairs).
    nhist : int
        Histogram bins for the percentiles (their resolution is range / nhist).
    threads : int, optional
        OpenMP threads (None: all cores); results do not depend on it.

    Returns
    -------
    RdspsResult
    """
    if not isinstance(models, ModelPhotometry):
        raise TypeError("models must be a ModelPhotometry (see ModelPhotometry.from_arrays)")
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {sorted(LIKELIHOODS)}, got {likelihood!r}")
    if likelihood == "student_t" and not dof > 0:
        raise ValueError(f"dof must be > 0, got {dof}")
    if not 0 < perc_chi2 <= 100:
        raise ValueError(f"perc_chi2 must be within (0, 100], got {perc_chi2}")
    prior_set = priors if isinstance(priors, PriorSet) else PriorSet(priors)
    fitted = observations(flux, flux_err, models.nband, calibration=calibration,
                          error_floor=error_floor, upper_limits=upper_limits,
                          upper_limit_nsigma=upper_limit_nsigma, mask_invalid=mask_invalid)
    obs, ivar = fitted.flux, fitted.ivar
    nsed = obs.shape[0]
    names = models.param_names
    stat_names = names + (("z",) if models.nz > 1 else ())
    for name in prior_set.names:
        if name not in stat_names:
            raise ValueError(f"prior on {name!r}, which is not a parameter of the library "
                             f"({', '.join(stat_names)})")

    # Separable priors of parameters that do not scale with mass select models up front.
    ln_prior = np.zeros(models.nmod)
    model_prior = False  # any per-model term (ln_prior stays zero otherwise)
    tabulated, joint = [], []
    mass_scaled = np.array([n in MASS_SCALED for n in names], dtype=np.uint8)
    for k, name in enumerate(names):
        if name not in prior_set:
            continue
        col = models.params[:, k]
        prior = prior_set[name]
        if mass_scaled[k]:
            if isinstance(prior, JointWithMass):
                # e.g. a star-forming main sequence log_sfr(log_mass): evaluated per pair in
                # the kernel on the normalised values; a truncation range is not supported.
                if prior.lo is not None or prior.hi is not None:
                    raise ValueError(f"{name}: a joint-with-mass prior on a mass-scaled "
                                     "parameter cannot have a truncation range (lo, hi)")
                continue
            if prior.is_uniform() and prior.lo is None and prior.hi is None:
                continue
            lo, hi = prior.lo, prior.hi
            if lo is None or hi is None:
                if not prior.is_uniform():
                    raise ValueError(f"{name}: give a finite range (lo, hi) for this prior")
                lo = -1e300 if lo is None else lo
                hi = 1e300 if hi is None else hi
                table = np.zeros(2)
            else:
                table = prior.logpdf(np.linspace(lo, hi, _NTAB)) if hi > lo else np.zeros(2)
            nt = table.size
            tabulated.append((k, float(lo), float((hi - lo) / (nt - 1)) or 1e-300, table.tolist()))
            continue
        prior = _closed(prior, float(col.min()), float(col.max()))
        ln_prior += prior.logpdf(col)
        model_prior = True
    ln_prior_z = None
    z_values = None
    if models.nz > 1:
        z_values = cast("NDArray[np.float64]", models.z_grid)  # nz > 1: on a z grid
        if "z" in prior_set:
            zp = _closed(prior_set["z"], float(z_values.min()), float(z_values.max()))
            ln_prior_z = zp.logpdf(z_values)
    mass_offset = None
    for prior in prior_set:
        if not isinstance(prior, JointWithMass):
            continue
        if "log_mass" not in names:
            raise ValueError(f"{prior.param}: a joint-with-mass prior needs log_mass in the "
                             "library parameters")
        joint.append((stat_names.index(prior.param), names.index("log_mass"),
                      prior.log_mass.tolist(), prior.param_values.tolist(), prior.scale))
        if prior.mass_surface_density:
            if area_kpc2 is None:
                raise ValueError(f"{prior.param}: a surface-density joint prior needs area_kpc2")
            area = np.broadcast_to(np.asarray(area_kpc2, dtype=np.float64), (nsed,))
            if not np.all(np.isfinite(area)) or np.any(area <= 0):
                raise ValueError("area_kpc2 must be finite and > 0")
            mass_offset = -np.log10(area)

    if ln_prior_extra is not None:
        extra = np.asarray(ln_prior_extra, dtype=np.float64)
        if extra.shape != (models.nmod,) or np.any(np.isnan(extra)) or np.any(extra == np.inf):
            raise ValueError(f"ln_prior_extra must hold {models.nmod} values < +inf, no NaN")
        ln_prior = ln_prior + extra
        model_prior = True
    keep: slice | NDArray[np.intp] = slice(None)  # models the priors allow: all, or an index array
    sub = models
    ln_share = 0.0  # ln of the share of the library the priors allow, when not copied out
    if model_prior:
        allowed = np.isfinite(ln_prior)
        if not allowed.any():
            raise ValueError("the priors exclude every model of the library")
        if allowed.mean() < _SUBSET_BELOW:
            # the kernel gives the excluded models (ln prior -inf) no weight, no place in
            # the chi2 cut and no best model anyway; copying the allowed ones out pays only
            # when they are few
            keep = np.flatnonzero(allowed)
            sub = models.subset(keep)
        else:
            ln_share = math.log(allowed.mean())
    raw = _core.rdsps_fit(
        obs,
        ivar,
        sub.flux,
        sub.params,
        mass_scaled,
        ln_prior_model=np.ascontiguousarray(ln_prior[keep]) if model_prior else None,
        ln_prior_z=ln_prior_z,
        z_values=z_values,
        mass_offset=mass_offset,
        tabulated=tabulated,
        joint=joint,
        likelihood=_core.Likelihood(LIKELIHOODS[likelihood]),
        dof=float(dof),
        perc_chi2=float(perc_chi2),
        nhist=int(nhist),
        return_weights=bool(return_weights),
        threads=resolve_threads(threads),
        upper=fitted.upper.astype(np.uint8) if fitted.upper.any() else None,
    )
    best_model = raw.best_model
    if not isinstance(keep, slice):
        best_model = np.where(best_model >= 0, keep[np.maximum(best_model, 0)], -1)
    best_z = np.full(nsed, np.nan)
    if models.nz > 1:
        ok = raw.best_z >= 0
        best_z[ok] = cast("NDArray[np.float64]", models.z_grid)[raw.best_z[ok]]
    weights: NDArray[np.float32] | None = None
    if return_weights:
        weights = np.zeros((nsed, models.nz, models.nmod), dtype=np.float32)
        # with return_weights the kernel returns them
        weights[:, :, keep] = cast("NDArray[np.float32]", raw.weights).reshape(
            nsed, models.nz, sub.nmod)
        weights = weights.reshape(nsed, -1)
    return RdspsResult(
        names=stat_names,
        mean=raw.mean,
        std=raw.std,
        p16=raw.p16,
        p50=raw.p50,
        p84=raw.p84,
        best_model=best_model,
        best_z=best_z,
        best_scale=raw.best_scale,
        chi2_min=raw.chi2_min,
        # the mean over the models the priors allow (the excluded ones are outside the
        # normalised prior, whether or not they were copied out)
        ln_evidence=raw.ln_evidence - ln_share,
        n_used=raw.n_used,
        n_bands_used=(ivar > 0).sum(axis=1),
        z_grid=models.z_grid,
        z_posterior=raw.z_posterior if models.nz > 1 else None,
        weights=weights,
        obs_flux=fitted.flux,
        obs_sigma=fitted.sigma,
        upper=fitted.upper,
    )
