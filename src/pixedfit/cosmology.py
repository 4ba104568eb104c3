"""Cosmology helpers: luminosity distance, age of the universe, physical pixel size.

A cosmology is given as

* ``"flat_LCDM"`` (or ``None``, the default) with ``H0`` (km s⁻¹ Mpc⁻¹) and ``Om0``,
  i.e. :class:`astropy.cosmology.FlatLambdaCDM` (H0 = 70, Om0 = 0.3 by default);
* the name of one of astropy's built-in realisations: ``"WMAP5"``, ``"WMAP7"``,
  ``"WMAP9"``, ``"Planck13"``, ``"Planck15"``, ``"Planck18"``;
* piXedfit's integer code: 0 flat ΛCDM, 1 WMAP5, 2 WMAP7, 3 WMAP9, 4 Planck13,
  5 Planck15, 6 Planck18;
* any :class:`astropy.cosmology.Cosmology` instance.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TypeAlias, overload

import numpy as np
from astropy import cosmology as _astropy_cosmology
from astropy import units as u
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "COSMOLOGY_CODES",
    "CosmologyParams",
    "age_of_universe",
    "get_cosmology",
    "kpc_per_pixel",
    "luminosity_distance",
    "redshift_at_distance",
]

#: piXedfit's integer cosmology codes.
COSMOLOGY_CODES = {
    0: "flat_LCDM",
    1: "WMAP5",
    2: "WMAP7",
    3: "WMAP9",
    4: "Planck13",
    5: "Planck15",
    6: "Planck18",
}
_NAMED = ("WMAP5", "WMAP7", "WMAP9", "Planck13", "Planck15", "Planck18")

CosmologyLike: TypeAlias = str | int | _astropy_cosmology.Cosmology | None


@dataclass(frozen=True)
class CosmologyParams:
    """A cosmology as pixedfit's functions take it: ``cosmo`` with ``H0`` and ``Om0``.

    Attributes
    ----------
    cosmo : str, int, astropy Cosmology or None
        See the module docstring; None means flat ΛCDM with ``H0`` and ``Om0``.
    H0 : float
        Hubble constant in km s⁻¹ Mpc⁻¹ (flat ΛCDM only).
    Om0 : float
        Matter density parameter today (flat ΛCDM only).
    """

    cosmo: CosmologyLike = None
    H0: float = 70.0
    Om0: float = 0.3

    @classmethod
    def from_any(cls, value: CosmologyParams | CosmologyLike) -> CosmologyParams:
        """``value`` itself, or a name, code or astropy cosmology wrapped (H0 = 70,
        Om0 = 0.3 for flat ΛCDM).

        Parameters
        ----------
        value : CosmologyParams, str, int, astropy Cosmology or None
            The cosmology.

        Returns
        -------
        CosmologyParams
            Checked: an unknown name or code, or H0 / Om0 out of range, raises.
        """
        out = value if isinstance(value, CosmologyParams) else cls(cosmo=value)
        out.astropy()
        return out

    def astropy(self) -> _astropy_cosmology.Cosmology:
        """The astropy cosmology (:func:`get_cosmology`).

        Returns
        -------
        astropy.cosmology.Cosmology
        """
        return get_cosmology(self.cosmo, self.H0, self.Om0)


@functools.lru_cache(maxsize=64)
def _flat_lcdm(H0: float, Om0: float) -> _astropy_cosmology.FlatLambdaCDM:
    # astropy cosmologies are immutable and costly to build (~50 ms): build each once.
    return _astropy_cosmology.FlatLambdaCDM(H0=H0, Om0=Om0)


def get_cosmology(
    cosmo: CosmologyLike = None, H0: float = 70.0, Om0: float = 0.3
) -> _astropy_cosmology.Cosmology:
    """An astropy cosmology from pixedfit's cosmology arguments.

    Parameters
    ----------
    cosmo : str, int, astropy Cosmology or None
        See the module docstring. ``None`` means ``"flat_LCDM"``.
    H0 : float
        Hubble constant in km s⁻¹ Mpc⁻¹ (flat ΛCDM only).
    Om0 : float
        Matter density parameter today (flat ΛCDM only).

    Raises
    ------
    ValueError
        Unknown name or code, or H0/Om0 out of range.
    """
    if isinstance(cosmo, _astropy_cosmology.Cosmology):
        return cosmo
    if cosmo is None:
        cosmo = "flat_LCDM"
    if isinstance(cosmo, bool) or not isinstance(cosmo, str | int | np.integer):
        raise TypeError(f"cosmo must be a name, a code or an astropy Cosmology, got {cosmo!r}")
    if not isinstance(cosmo, str):
        if int(cosmo) not in COSMOLOGY_CODES:
            raise ValueError(f"cosmo: unknown cosmology code {cosmo}; known: {COSMOLOGY_CODES}")
        cosmo = COSMOLOGY_CODES[int(cosmo)]
    key = cosmo.strip()
    if key.lower() in ("flat_lcdm", "flatlambdacdm", "lcdm"):
        if not (np.isfinite(H0) and H0 > 0):
            raise ValueError(f"H0 must be finite and > 0 km/s/Mpc, got {H0}")
        if not (np.isfinite(Om0) and 0 <= Om0 <= 1):
            raise ValueError(f"Om0 must be within [0, 1], got {Om0}")
        return _flat_lcdm(float(H0), float(Om0))
    for name in _NAMED:
        if key.lower() == name.lower():
            return getattr(_astropy_cosmology, name)
    raise ValueError(
        f"cosmo: unknown cosmology {cosmo!r}; use 'flat_LCDM' (with H0, Om0), one of "
        f"{', '.join(_NAMED)}, a code 0-6 or an astropy Cosmology"
    )


def _redshift(z: ArrayLike, strictly_positive: bool = False) -> NDArray[np.float64]:
    arr = np.asarray(z, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError("z: redshifts must be finite")
    if strictly_positive and np.any(arr <= 0):
        raise ValueError("z: redshifts must be > 0 here (the angular scale diverges at z = 0)")
    if np.any(arr < 0):
        raise ValueError("z: redshifts must be >= 0")
    return arr


def _evaluate(method: str, unit: u.UnitBase, z: ArrayLike, cosmo: CosmologyLike, H0: float,
              Om0: float) -> float | NDArray[np.float64]:
    """Call an astropy cosmology method on validated redshifts; float for scalar input."""
    value = getattr(get_cosmology(cosmo, H0, Om0), method)(_redshift(z)).to_value(unit)
    return float(value) if np.ndim(value) == 0 else np.asarray(value)


@overload
def luminosity_distance(
    z: float, cosmo: CosmologyLike = None, H0: float = 70.0, Om0: float = 0.3
) -> float: ...
@overload
def luminosity_distance(
    z: ArrayLike, cosmo: CosmologyLike = None, H0: float = 70.0, Om0: float = 0.3
) -> float | NDArray[np.float64]: ...
def luminosity_distance(
    z: ArrayLike, cosmo: CosmologyLike = None, H0: float = 70.0, Om0: float = 0.3
) -> float | NDArray[np.float64]:
    """Luminosity distance in Mpc.

    Parameters
    ----------
    z : float or array_like
        Redshift(s), >= 0.
    cosmo, H0, Om0
        Cosmology, see :func:`get_cosmology`.

    Returns
    -------
    float or ndarray
        D_L in Mpc, with the shape of ``z``.
    """
    return _evaluate("luminosity_distance", u.Mpc, z, cosmo, H0, Om0)


@overload
def redshift_at_distance(
    d_mpc: float, cosmo: CosmologyLike = None, H0: float = 70.0, Om0: float = 0.3
) -> float: ...
@overload
def redshift_at_distance(
    d_mpc: ArrayLike, cosmo: CosmologyLike = None, H0: float = 70.0, Om0: float = 0.3
) -> float | NDArray[np.float64]: ...
def redshift_at_distance(
    d_mpc: ArrayLike, cosmo: CosmologyLike = None, H0: float = 70.0, Om0: float = 0.3
) -> float | NDArray[np.float64]:
    """The redshift whose luminosity distance is ``d_mpc``: the inverse of
    :func:`luminosity_distance` (relative accuracy ≤ 1e-10 in D_L).

    For a nearby galaxy whose observed redshift is dominated by its peculiar velocity (or
    negative), fitting at the Hubble-flow redshift of its measured distance gives the right
    flux dimming; the wavelength shift it neglects (|Δz| ≲ 0.003) is far below a filter width.

    Parameters
    ----------
    d_mpc : float or array_like
        Luminosity distance(s) in Mpc, finite and > 0.
    cosmo, H0, Om0
        Cosmology, see :func:`get_cosmology`.

    Returns
    -------
    float or ndarray
        Redshift(s) > 0, with the shape of ``d_mpc``.
    """
    try:
        d = np.asarray(d_mpc, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"d_mpc: distances must be numbers, got {d_mpc!r}") from exc
    if not (np.all(np.isfinite(d)) and np.all(d > 0)):
        raise ValueError("d_mpc: luminosity distances must be finite and > 0 (Mpc)")
    cosmology = get_cosmology(cosmo, H0, Om0)

    def dist(z: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(cosmology.luminosity_distance(z).to_value(u.Mpc), dtype=np.float64)

    zmax = 1.0
    while dist(np.array([zmax]))[0] < d.max():
        zmax *= 4.0
        if zmax > 1e4:
            raise ValueError(f"d_mpc: {d.max():g} Mpc is beyond any redshift <= 1e4")
    grid = np.geomspace(1e-12, zmax, 4096)
    z = np.exp(np.interp(np.log(d), np.log(dist(grid)), np.log(grid)))
    for _ in range(3):  # Newton steps on D_L(z) = d; dD_L/dz by a central difference
        h = 1e-6 * z
        slope = (dist(z + h) - dist(z - h)) / (2 * h)
        z = z - (dist(z) - d) / slope
    z = z.reshape(d.shape)
    return float(z) if z.ndim == 0 else z


@overload
def age_of_universe(
    z: float, cosmo: CosmologyLike = None, H0: float = 70.0, Om0: float = 0.3
) -> float: ...
@overload
def age_of_universe(
    z: ArrayLike, cosmo: CosmologyLike = None, H0: float = 70.0, Om0: float = 0.3
) -> float | NDArray[np.float64]: ...
def age_of_universe(
    z: ArrayLike, cosmo: CosmologyLike = None, H0: float = 70.0, Om0: float = 0.3
) -> float | NDArray[np.float64]:
    """Age of the universe at redshift ``z`` in Gyr.

    Parameters
    ----------
    z : float or array_like
        Redshift(s), >= 0.
    cosmo, H0, Om0
        Cosmology, see :func:`get_cosmology`.
    """
    return _evaluate("age", u.Gyr, z, cosmo, H0, Om0)


def kpc_per_pixel(
    z: ArrayLike,
    arcsec_per_pix: float,
    cosmo: CosmologyLike = None,
    H0: float = 70.0,
    Om0: float = 0.3,
) -> float | NDArray[np.float64]:
    """Physical (proper) size of one pixel in kpc.

    Parameters
    ----------
    z : float or array_like
        Redshift(s), > 0.
    arcsec_per_pix : float
        Pixel scale in arcsec per pixel, > 0.
    cosmo, H0, Om0
        Cosmology, see :func:`get_cosmology`.

    Returns
    -------
    float or ndarray
        kpc per pixel: angular-diameter distance × pixel angle.
    """
    zz = _redshift(z, strictly_positive=True)
    if not (np.isfinite(arcsec_per_pix) and arcsec_per_pix > 0):
        raise ValueError(f"arcsec_per_pix must be finite and > 0, got {arcsec_per_pix}")
    scale = get_cosmology(cosmo, H0, Om0).kpc_proper_per_arcmin(zz).to_value(u.kpc / u.arcmin)
    out = scale * arcsec_per_pix / 60.0
    return float(out) if np.ndim(out) == 0 else np.asarray(out)
