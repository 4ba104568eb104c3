"""Star-formation histories: parameter meanings and a pure-Python reference.

The five forms of piXedfit, as functions of ``t`` = time since the onset of star formation
(Gyr, 0 … age), unnormalised:

0. tau model ``exp(−t/τ)``
1. delayed tau ``t exp(−t/τ)``
2. log-normal ``(1/t) exp(−(ln t − T0)² / (2τ²))`` (T0 = 10^log_t0 used inside ln-space, as
   in piXedfit)
3. Gaussian ``exp(−(t − T0)² / (2τ²))``
4. double power law ``1 / ((t/τ)^α + (t/τ)^−β)``

with τ = 10^log_tau, T0 = 10^log_t0, α = 10^log_alpha, β = 10^log_beta, age = 10^log_age.
The C++ engine integrates them exactly (analytically for forms 0–3, by adaptive
Gauss–Legendre quadrature for form 4) over each SSP age bin. The functions here are a slow,
independent numerical reference used by the tests.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import integrate

__all__ = ["SFH_FORMS", "reference_bin_masses", "sfr_shape"]

SFH_FORMS = {0: "tau", 1: "delayed_tau", 2: "log_normal", 3: "gaussian", 4: "double_power_law"}


def sfr_shape(t: ArrayLike, form: int, tau: float, t0: float = 1.0, alpha: float = 1.0,
              beta: float = 1.0) -> NDArray[np.float64]:
    """Unnormalised SFR at times ``t`` (Gyr since the onset); 0 for t < 0.

    Parameters
    ----------
    t : array_like
        Time since the onset of star formation, Gyr.
    form : int
        0 exponential, 1 delayed exponential, 2 log-normal, 3 Gaussian, 4 double power law.
    tau : float
        Time scale, Gyr (width in ln t for the log-normal).
    t0 : float
        Peak time of the Gaussian (Gyr) and of the log-normal (ln Gyr).
    alpha, beta : float
        Falling and rising slopes of the double power law.

    Returns
    -------
    ndarray
        SFR in arbitrary units, with the shape of ``t``.
    """
    t = np.asarray(t, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if form == 0:
            r = np.exp(-t / tau)
        elif form == 1:
            r = t * np.exp(-t / tau)
        elif form == 2:
            r = np.exp(-0.5 * ((np.log(t) - t0) / tau) ** 2) / t
        elif form == 3:
            r = np.exp(-0.5 * ((t - t0) / tau) ** 2)
        elif form == 4:
            r = 1.0 / ((t / tau) ** alpha + (t / tau) ** -beta)
        else:
            raise ValueError(f"sfh_form must be 0-4, got {form}")
    return np.where((t > 0) | ((t == 0) & (form in (0, 3))), np.nan_to_num(r), 0.0)


def reference_bin_masses(form: int, shape: tuple[float, float, float, float], age: float,
                         edges: ArrayLike) -> NDArray[np.float64]:
    """Mass formed in look-back bins ``edges`` (Gyr) for 1 M☉ formed, by scipy quadrature.

    Parameters
    ----------
    form : int
        SFH form (0–4, as :func:`sfr_shape`).
    shape : (tau, t0, alpha, beta)
        SFH shape parameters (Gyr; t0 of form 2 in ln Gyr).
    age : float
        Age of the population, Gyr.
    edges : array_like, shape (nbin + 1,)
        Look-back time edges, Gyr, increasing.

    Returns
    -------
    ndarray, shape (nbin,)
        Fraction of the mass formed in each bin (sums to 1).
    """
    tau, t0, alpha, beta = shape
    e = np.asarray(edges, dtype=np.float64)
    out = np.zeros(e.size - 1)

    def f(t: float) -> float:
        return float(sfr_shape(t, form, tau, t0, alpha, beta))

    for i in range(e.size - 1):
        lo, hi = age - min(e[i + 1], age), age - e[i]
        if hi <= 0:
            break
        out[i] = integrate.quad(f, max(lo, 0.0), hi, limit=200, epsabs=0, epsrel=1e-10)[0]
    return out / out.sum()
