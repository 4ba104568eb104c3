"""Argument checks of the fitting drivers, run before any work.

Every check raises TypeError (wrong kind of value) or ValueError (value out of range) with
a message naming the argument — and, for catalogues, the row and its id.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..cosmology import redshift_at_distance


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(
        value, int | float | np.integer | np.floating)


def check_redshift(z: Any, name: str = "z", allow_none: bool = True) -> float | None:
    """A single redshift: a real number, finite and > 0 (or None when allowed)."""
    if z is None and allow_none:
        return None
    if not _is_number(z):
        none = " or None for a free redshift" if allow_none else ""
        raise TypeError(f"{name} must be a number{none}, got {z!r}")
    if not (math.isfinite(z) and z > 0):
        raise ValueError(f"{name} must be > 0 and finite, got {z!r}")
    return float(z)


#: Most redshift planes a driver computes model photometry on (each holds every model).
MAX_Z_PLANES = 100_000


def check_dz(dz: Any, span: float = 1.0) -> float:
    """A redshift-grid step: a finite number in (0, 1] giving at most MAX_Z_PLANES planes
    over a redshift interval of width ``span``."""
    if not _is_number(dz):
        raise TypeError(f"dz must be a number (the redshift grid step), got {dz!r}")
    if not (math.isfinite(dz) and 0 < dz <= 1):
        raise ValueError(f"dz must be within (0, 1] (the redshift grid step), got {dz!r}")
    if span / dz > MAX_Z_PLANES:
        raise ValueError(f"dz = {dz:g} makes {span / dz:.3g} redshift planes over a range of "
                         f"{span:g} (at most {MAX_Z_PLANES}): use a larger dz")
    return float(dz)


def check_catalog(fluxes: ArrayLike, flux_errs: ArrayLike, z: ArrayLike | None,
                  distance_mpc: ArrayLike | None, ids: Sequence[Any] | None, dz: float,
                  cosmo: Any, H0: float, Om0: float
                  ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64],
                             list[str]]:
    """(fluxes, errors, redshifts, keys) of a catalogue, checked row by row."""
    try:
        obs = np.atleast_2d(np.asarray(fluxes, dtype=np.float64))
        err = np.atleast_2d(np.asarray(flux_errs, dtype=np.float64))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"fluxes and flux_errs must be numeric arrays (ngal, nband) ({exc})"
                        ) from exc
    if obs.ndim != 2 or obs.shape != err.shape:
        raise ValueError(f"fluxes {obs.shape} and flux_errs {err.shape} must both have shape "
                         "(ngal, nband)")
    nrows = obs.shape[0]
    if nrows == 0:
        raise ValueError("the catalogue is empty: fluxes have no rows")
    keys = [str(i) for i in (ids if ids is not None else range(nrows))]
    if len(keys) != nrows:
        raise ValueError(f"ids must hold one id per row ({nrows}), got {len(keys)}")
    if len(set(keys)) != len(keys):
        raise ValueError("ids must be unique")
    zz = catalog_redshifts(z, distance_mpc, nrows, keys, cosmo, H0, Om0)
    check_dz(dz, float(zz.max() - zz.min()) + 2.5 * float(dz) if _is_number(dz) else 1.0)
    return obs, err, zz, keys


def catalog_redshifts(z: ArrayLike | None, distance_mpc: ArrayLike | None, nrows: int,
                      keys: Sequence[str], cosmo: Any, H0: float, Om0: float
                      ) -> NDArray[np.float64]:
    """Redshift of every catalogue row from ``z`` and/or luminosity distances.

    A row with a finite ``distance_mpc`` is fitted at the redshift of that luminosity
    distance (:func:`pixedfit.cosmology.redshift_at_distance`), whatever its ``z``; every
    other row needs a finite ``z`` > 0. The first bad row is named with its id.
    """
    if nrows == 0:
        raise ValueError("the catalogue is empty: fluxes have no rows")

    def column(values: ArrayLike, name: str) -> NDArray[np.float64]:
        try:
            arr = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be numbers, one per row, got {values!r}") from exc
        arr = np.broadcast_to(arr, (nrows,)) if arr.ndim == 0 else arr
        if arr.shape != (nrows,):
            raise ValueError(f"{name} must hold one value per row ({nrows}): fluxes and "
                             f"{name} must describe the same galaxies, got shape {arr.shape}")
        return arr

    if z is None and distance_mpc is None:
        raise ValueError("give z (redshifts) or distance_mpc (luminosity distances)")
    zz = column(z, "z") if z is not None else np.full(nrows, np.nan)
    zz = zz.copy()
    if distance_mpc is not None:
        dist = column(distance_mpc, "distance_mpc")
        given = np.isfinite(dist)
        bad = given & ~(dist > 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"distance_mpc of row {i} (id {keys[i]!r}) must be > 0 Mpc, got "
                             f"{dist[i]:g}")
        if given.any():
            zz[given] = redshift_at_distance(dist[given], cosmo, H0, Om0)
    bad = ~(np.isfinite(zz) & (zz > 0))
    if bad.any():
        i = int(np.argmax(bad))
        hint = ("; give its luminosity distance instead (distance_mpc=, or a distance column "
                "with `pixedfit fit --distance-column`)")
        raise ValueError(f"z of row {i} (id {keys[i]!r}) must be finite and > 0, got "
                         f"{zz[i]:g}{hint}")
    return zz
