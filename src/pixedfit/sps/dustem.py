"""Draine & Li (2007) dust emission for energy balance.

The templates per H nucleon (group ``dust_emission`` of the SSP-grid file) are resampled
onto the model wavelength grid; the C++ model interpolates them linearly in q_PAH and U_min,
mixes the δ-function (weight 1 − γ) and power-law (weight γ) U distributions per H (γ is
the dust-mass fraction exposed to the power law, DL07's definition), and scales the mix so
that its integral equals the luminosity absorbed by dust. The dust mass follows from the
number of H nucleons this implies and the model's dust-to-H mass ratio:
``M_dust = L_abs / ∫ j_λ dλ · (M_dust/M_H) · m_H``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .grids import DustEmissionGrid
from .nebular import trapezoid_weights

__all__ = ["resample_dust_emission"]


def resample_dust_emission(
    dl: DustEmissionGrid, wave: NDArray[np.float64]
) -> dict[str, NDArray]:
    """DL07 templates on the model grid ``wave`` (Å), with their integrals.

    Linear interpolation in log λ – log j (zero outside the template range).

    Parameters
    ----------
    dl : DustEmissionGrid
        The Draine & Li (2007) templates (q_PAH, U_min, wavelength).
    wave : ndarray, shape (nwave,)
        Rest-frame model wavelengths, Å, increasing.

    Returns
    -------
    dict
        ``delta`` and ``powerlaw``: the emission (nqpah, numin, nwave) on ``wave`` per unit
        dust mass (the templates' unit); ``delta_int`` and ``powerlaw_int``: their
        integrals over λ, (nqpah, numin).
    """
    dw = trapezoid_weights(wave)
    out: dict[str, NDArray] = {}
    inside = (wave >= dl.wave[0]) & (wave <= dl.wave[-1])
    lw = np.log(wave[inside])
    for key in ("delta", "powerlaw"):
        tab = getattr(dl, key)
        res = np.zeros((*tab.shape[:2], wave.size))
        logt = np.log(np.maximum(tab, 1e-300))
        for q in range(tab.shape[0]):
            for u in range(tab.shape[1]):
                res[q, u, inside] = np.exp(np.interp(lw, np.log(dl.wave), logt[q, u]))
        res[res < 1e-290] = 0.0
        out[key] = res
        out[key + "_int"] = res @ dw
    return out
