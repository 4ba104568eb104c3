"""Dust attenuation curves (FSPS definitions), as optical depths τ(λ).

* Calzetti et al. (2000), FSPS ``dust_type=2``: ``τ(λ) = dust2 · k(λ) / R_V`` with
  R_V = 4.05, applied to all starlight and nebular emission alike. Outside the fitted range
  k(λ) is extended as bagpipes does: ``k(1200 Å) (λ/1200 Å)^-0.77`` below 1200 Å and the
  near-IR formula down to zero (k = 0 beyond ~3.1 µm).
* Charlot & Fall (2000), FSPS ``dust_type=0``: diffuse ``τ₂(λ) = dust2 (λ/5500)^dust_index``
  on all light; birth cloud ``τ₁(λ) = dust1 (λ/5500)^dust1_index`` (dust1_index = −1) in
  addition on stars younger than ``t_bc`` = 10 Myr and their nebular emission.

The transmission is ``exp(−τ)``; wavelengths are in Å (rest frame).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["R_V_CALZETTI", "calzetti_k", "calzetti_tau", "cf00_tau"]

R_V_CALZETTI = 4.05


def calzetti_k(wave: ArrayLike) -> NDArray[np.float64]:
    """Calzetti et al. (2000) k(λ) = A_λ / E(B−V), with the extensions described above."""
    lam = np.asarray(wave, dtype=np.float64)
    mic = lam * 1e-4
    k = np.zeros_like(lam)
    k12 = R_V_CALZETTI + 2.659 * (-2.156 + 1.509 / 0.12 - 0.198 / 0.12**2 + 0.011 / 0.12**3)
    m1 = lam < 1200.0
    m2 = (lam >= 1200.0) & (lam < 6300.0)
    m3 = (lam >= 6300.0) & (lam < 31000.0)
    k[m1] = k12 * (mic[m1] / 0.12) ** -0.77
    k[m2] = R_V_CALZETTI + 2.659 * (-2.156 + 1.509 / mic[m2] - 0.198 / mic[m2] ** 2
                                    + 0.011 / mic[m2] ** 3)
    k[m3] = R_V_CALZETTI + 2.659 * (-1.857 + 1.040 / mic[m3])
    return np.maximum(k, 0.0)


def calzetti_tau(wave: ArrayLike, dust2: float) -> NDArray[np.float64]:
    """Optical depth of the Calzetti curve for V-band optical depth ``dust2``.

    Parameters
    ----------
    wave : array_like
        Rest-frame wavelengths, Å.
    dust2 : float
        Optical depth at 5500 Å.

    Returns
    -------
    ndarray
        τ(λ), with the shape of ``wave``.
    """
    return float(dust2) * calzetti_k(wave) / R_V_CALZETTI


def cf00_tau(
    wave: ArrayLike, dust1: float, dust2: float, dust_index: float, dust1_index: float = -1.0
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Charlot & Fall optical depths ``(τ_young, τ_old)``: young = birth cloud + diffuse.

    Parameters
    ----------
    wave : array_like
        Rest-frame wavelengths, Å.
    dust1 : float
        Birth-cloud optical depth at 5500 Å (young stars only).
    dust2 : float
        Diffuse optical depth at 5500 Å (all stars).
    dust_index : float
        Power-law index of the diffuse curve, τ ∝ (λ / 5500 Å)^dust_index.
    dust1_index : float
        Power-law index of the birth-cloud curve.

    Returns
    -------
    tau_young, tau_old : ndarray
        Optical depths with the shape of ``wave``.
    """
    x = np.asarray(wave, dtype=np.float64) / 5500.0
    tau2 = float(dust2) * x ** float(dust_index)
    return tau2 + float(dust1) * x ** float(dust1_index), tau2
