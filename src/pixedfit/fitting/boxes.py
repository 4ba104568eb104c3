"""The stellar-mass prior box of photometric fits, from the data alone.

Every sampler (adaptive RDSPS, MCMC, nested sampling) samples ``log_mass`` with a flat prior
inside a box. The box must not depend on the library or its seed, must not cut the
posterior, and must be the same for every model fitted to one SED (so that evidences are
comparable): it is ``log(νL_ν,max / L☉) + log_mass_to_light`` with νL_ν,max = 4π D_L²
max_b(λ_b f_λ,b) over the bands with a positive flux (3 × the error when none has one).
Over models drawn from the default generation ranges (delayed-τ, double power law,
Calzetti, Charlot & Fall, with and without dust emission; FUV … W2 at z = 0.01–2)
log(M / νL_ν,max) spans −3.2 … +2.0; the default (−4, +4) adds margins for SEDs with few
bands (a galaxy seen only in the UV and far-IR). A ``log_mass`` prior with ``lo`` and
``hi`` replaces the box. A posterior that reaches the box's edge is reported
(:func:`mass_box_edge`): its mass is then bounded by the box, not by the data.

(Earlier, adaptive RDSPS and MCMC used the best library model's mass ± 1.5 dex: the box
moved with the library's seed and cut broad posteriors — a DustPedia galaxy with only
UV and far-IR bands had its log M* median moved by 0.23 dex by the cut.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..cosmology import luminosity_distance
from ..filters import cwave_filters
from ..units import L_SUN_CGS, MPC_CM

__all__ = ["DEFAULT_LOG_MASS_TO_LIGHT", "MassBoxWarning", "check_log_mass_to_light",
           "log_mass_box", "mass_box_edge"]

DEFAULT_LOG_MASS_TO_LIGHT = (-4.0, 4.0)


class MassBoxWarning(UserWarning):
    """The stellar-mass posterior reaches the edge of its prior box."""


def check_log_mass_to_light(value: Any, owner: str) -> tuple[float, float]:
    """``value`` as a (lo, hi) pair of finite floats with lo < hi; ValueError naming
    ``owner``.log_mass_to_light otherwise.

    Parameters
    ----------
    value : any
        The setting to check: a pair of log M/L values (log M☉ / L☉).
    owner : str
        Name of the settings class, for the error message.

    Returns
    -------
    (float, float)
        ``(lo, hi)``.
    """
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{owner}.log_mass_to_light must be a pair (lo, hi), got "
                         f"{value!r}") from exc
    if not (math.isfinite(a) and math.isfinite(b) and a < b):
        raise ValueError(f"{owner}.log_mass_to_light must be finite with lo < hi, got "
                         f"{value!r}")
    return a, b


def log_mass_box(obs: NDArray, err: NDArray, filters: Sequence[str], z_lo: float,
                 z_hi: float, log_mass_to_light: tuple[float, float], cosmo: Any = None,
                 H0: float = 70.0, Om0: float = 0.3) -> tuple[float, float]:
    """Stellar-mass prior box from the data alone (the same for every model).

    Parameters
    ----------
    obs, err : ndarray, shape (nband,)
        Observed f_λ and 1σ errors (erg s⁻¹ cm⁻² Å⁻¹); bands with a non-finite or infinite
        error are ignored.
    filters : sequence of str
        Bands (their pivot wavelengths λ_b, Å).
    z_lo, z_hi : float
        Redshift range (equal for a fixed redshift).
    log_mass_to_light : (float, float)
        Range of log(M / νL_ν,max), M☉ / L☉.
    cosmo, H0, Om0
        Cosmology of the luminosity distance.

    Returns
    -------
    (float, float)
        log M☉ range: log(νL_ν,max(z_lo) / L☉) + lo, log(νL_ν,max(z_hi) / L☉) + hi, with
        νL_ν,max = 4π D_L² max_b λ_b f_λ,b over bands with f > 0 (3 × error when none).
    """
    obs = np.asarray(obs, dtype=np.float64)
    err = np.asarray(err, dtype=np.float64)
    lam = np.atleast_1d(np.asarray(cwave_filters(list(filters)), dtype=np.float64))
    good = np.isfinite(obs) & np.isfinite(err) & (err > 0)
    if not good.any():
        raise ValueError("flux: no band with a finite flux and error to set the mass range")
    det = good & (obs > 0)
    ref = float(np.max(lam[det] * obs[det])) if det.any() else float(
        np.max(3.0 * lam[good] * err[good]))

    def log_l(zz: float) -> float:
        dl = float(luminosity_distance(max(zz, 1e-5), cosmo, H0, Om0)) * MPC_CM
        return math.log10(4.0 * math.pi * dl * dl * ref / L_SUN_CGS)

    l_lo = log_l(z_lo)
    l_hi = l_lo if z_hi == z_lo else log_l(z_hi)  # (a fixed redshift: one distance)
    return l_lo + log_mass_to_light[0], l_hi + log_mass_to_light[1]


def mass_box_edge(log_mass: NDArray, weights: NDArray | None, lo: float, hi: float,
                  priors: Any, log_mass_to_light: tuple[float, float], tail: float = 1e-3,
                  margin: float = 0.02) -> str | None:
    """A note when the ``log_mass`` posterior reaches the edge of its box [lo, hi], else
    None.

    The posterior reaches an edge when its ``tail`` or ``1 − tail`` weighted quantile lies
    within ``margin`` × the box's width of it.

    Parameters
    ----------
    log_mass : ndarray, shape (n,)
        Posterior samples of log_mass, log M☉.
    weights : ndarray, shape (n,), or None
        Their posterior weights (None: equal).
    lo, hi : float
        The box of log_mass, log M☉.
    priors : PriorSet
        The fit's priors (:class:`~pixedfit.fitting.priors.PriorSet`): whether the box came
        from a log_mass prior, for the note.
    log_mass_to_light : (float, float)
        The M/L range that set a data box, for the note.
    tail : float
        Weighted quantile tested at each end.
    margin : float
        Distance from an edge, as a fraction of the box's width, that counts as reaching it.

    Returns
    -------
    str or None
        The note, or None when the posterior stays inside the box.
    """
    x = np.asarray(log_mass, dtype=np.float64)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    ok = np.isfinite(x) & (w > 0)
    if not ok.any():
        return None
    order = np.argsort(x[ok], kind="stable")
    xs, ws = x[ok][order], w[ok][order]
    cdf = np.cumsum(ws) / ws.sum()
    q_lo = xs[min(int(np.searchsorted(cdf, tail)), xs.size - 1)]
    q_hi = xs[min(int(np.searchsorted(cdf, 1.0 - tail)), xs.size - 1)]
    room = margin * (hi - lo)
    if q_lo >= lo + room and q_hi <= hi - room:
        return None
    side = "lower" if q_lo < lo + room else "upper"
    prior = priors["log_mass"] if "log_mass" in priors else None
    if prior is not None and (prior.lo is not None or prior.hi is not None):
        how = "set by the log_mass prior's lo and hi: widen them"
    else:
        how = (f"from the data and log_mass_to_light = {tuple(log_mass_to_light)}: widen "
               "log_mass_to_light or give a log_mass prior with lo and hi")
    return (f"the log_mass posterior reaches the {side} edge of its box [{lo:.2f}, {hi:.2f}] "
            f"({how}): the mass is bounded by the box, not by the data")
