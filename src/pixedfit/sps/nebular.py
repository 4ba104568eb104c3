"""Nebular emission helpers: putting emission lines on a wavelength grid.

The line and continuum luminosities themselves come from the SSP-grid file (group
``nebular``, see :mod:`pixedfit.sps.grids`) and are combined in the C++ forward model with
the same age weights as the young stars, interpolated linearly in log U and in log Z.

A line of luminosity L (L☉) becomes a profile p on the model grid with
``Σ p_k Δλ_k = 1`` (trapezoid weights), so the integrated line flux is exact on the grid:
a Gaussian of velocity dispersion ``sigma_kms`` when it spans at least ~3 grid intervals,
otherwise the line is shared between its two neighbouring grid points (linear, "cloud in
cell"), which conserves its flux and its mean wavelength.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..units import C_AA_PER_S

__all__ = ["line_profiles", "trapezoid_weights"]


def trapezoid_weights(wave: ArrayLike) -> NDArray[np.float64]:
    """Weights w with ``∫ f dλ = Σ w_k f_k`` for f linear between grid points."""
    lam = np.asarray(wave, dtype=np.float64)
    d = np.diff(lam)
    w = np.zeros_like(lam)
    w[:-1] += 0.5 * d
    w[1:] += 0.5 * d
    return w


def line_profiles(
    wave: ArrayLike, line_wave: ArrayLike, sigma_kms: float = 50.0
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Profiles of emission lines on a wavelength grid.

    Parameters
    ----------
    wave : array_like, shape (nwave,)
        Model wavelength grid in Å (increasing).
    line_wave : array_like, shape (nline,)
        Line wavelengths in Å.
    sigma_kms : float
        Gaussian velocity dispersion of the lines in km s⁻¹.

    Returns
    -------
    starts : ndarray of int64, shape (nline,)
        First grid index of each profile.
    offsets : ndarray of int64, shape (nline + 1,)
        Line ``l`` uses ``values[offsets[l]:offsets[l + 1]]``.
    values : ndarray
        Profile values in Å⁻¹, each with ``Σ p Δλ = 1``.

    Raises
    ------
    ValueError
        A line outside the grid, or a negative width.
    """
    lam = np.asarray(wave, dtype=np.float64)
    lines = np.asarray(line_wave, dtype=np.float64)
    if not (np.isfinite(sigma_kms) and sigma_kms >= 0):
        raise ValueError(f"sigma_kms must be finite and >= 0, got {sigma_kms}")
    if np.any(lines <= lam[0]) or np.any(lines >= lam[-1]):
        raise ValueError("line_wave: every line must lie inside the wavelength grid")
    if lines.size == 0:
        return np.zeros(0, np.int64), np.zeros(1, np.int64), np.zeros(0)
    dw = trapezoid_weights(lam)
    starts, chunks = [], []
    for l0 in lines:
        j = int(np.searchsorted(lam, l0)) - 1  # lam[j] < l0 <= lam[j+1]
        sig = l0 * sigma_kms * 1e13 / C_AA_PER_S
        spacing = lam[j + 1] - lam[j]
        lo = int(np.searchsorted(lam, l0 - 5 * sig))
        hi = int(np.searchsorted(lam, l0 + 5 * sig, side="right"))
        if sig > 0 and 3 * sig >= spacing and lo >= 1 and hi <= lam.size - 1 and hi - lo >= 3:
            prof = np.exp(-0.5 * ((lam[lo:hi] - l0) / sig) ** 2)
            prof /= np.sum(prof * dw[lo:hi])
            starts.append(lo)
            chunks.append(prof)
        else:
            f = (l0 - lam[j]) / spacing
            # weights a, b on points j, j+1: flux a dw_j + b dw_{j+1} = 1 and mean
            # wavelength preserved: share the flux as (1 - f, f)
            starts.append(j)
            chunks.append(np.array([(1.0 - f) / dw[j], f / dw[j + 1]]))
    offsets = np.zeros(lines.size + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([c.size for c in chunks])
    return np.asarray(starts, dtype=np.int64), offsets, np.concatenate(chunks)
