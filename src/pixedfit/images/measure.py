"""Measurements on flux cubes: apertures, total and pixel SEDs, radial profiles.

Cube arrays are (band, y, x); pixel (y, x) centres at coordinates (x, y), zero-based.
Summed fluxes use the per-band noise correlation ρ when given (see
:func:`pixedfit.images.align.binned_variance`), so their errors stay honest after PSF
matching and resampling.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..cubes import FluxCube
from .align import binned_variance
from .psf import radial_profile

__all__ = [
    "aperture_mask",
    "aperture_photometry",
    "brightest_central_pixel",
    "flux_radial_profile",
    "pixel_seds",
    "snr_radial_profile",
    "total_sed",
]


def aperture_mask(shape: tuple[int, int], x: float, y: float, radius: float) -> NDArray:
    """Pixels whose centres lie within ``radius`` pixels of (x, y).

    Parameters
    ----------
    shape : (ny, nx)
        Shape of the image.
    x, y : float
        Centre (column, row), pixels.
    radius : float
        Radius, pixels, > 0.

    Returns
    -------
    ndarray of bool, shape (ny, nx)
    """
    if radius <= 0:
        raise ValueError("radius: must be > 0")
    yy, xx = np.indices(shape)
    return np.hypot(xx - x, yy - y) <= radius


def _sum_bands(
    cube: FluxCube, mask: NDArray[np.bool_], rho: Sequence[ArrayLike | None] | None
) -> tuple[NDArray, NDArray]:
    m = mask & cube.region
    if not m.any():
        raise ValueError("the aperture/region contains no pixel of the galaxy region")
    flux = np.array([np.sum(cube.flux[b][m]) for b in range(cube.nbands)])
    var = []
    for b in range(cube.nbands):
        r = None if rho is None else rho[b]
        var.append(binned_variance(np.where(m, cube.flux_err[b] ** 2, 0.0), m, r))
    return flux, np.sqrt(np.asarray(var))


def aperture_photometry(
    cube: FluxCube,
    radius: float,
    x: float | None = None,
    y: float | None = None,
    rho: Sequence[ArrayLike | None] | None = None,
) -> tuple[NDArray, NDArray]:
    """Flux and 1σ error (cube units) of each band in a circular aperture (pixels).

    Only pixels of the galaxy region are summed.

    Parameters
    ----------
    cube : FluxCube
        The flux maps.
    radius : float
        Radius of the aperture, pixels.
    x, y : float, optional
        Centre (column, row), pixels; default the image centre.
    rho : sequence of array_like or None, optional
        Pixel noise correlation ρ(Δy, Δx) of each band (None: uncorrelated); see
        :func:`pixedfit.images.align.binned_variance`.

    Returns
    -------
    flux, err : ndarray, shape (nbands,)
        In the cube's unit (× erg s⁻¹ cm⁻² Å⁻¹).
    """
    ny, nx = cube.shape
    x = (nx - 1) / 2 if x is None else x
    y = (ny - 1) / 2 if y is None else y
    return _sum_bands(cube, aperture_mask(cube.shape, x, y, radius), rho)


def total_sed(
    cube: FluxCube, rho: Sequence[ArrayLike | None] | None = None
) -> tuple[NDArray, NDArray]:
    """Total flux and error of each band summed over the galaxy region (cube units).

    Parameters
    ----------
    cube : FluxCube
        The flux maps.
    rho : sequence of array_like or None, optional
        Pixel noise correlation ρ(Δy, Δx) of each band (None: uncorrelated).

    Returns
    -------
    flux, err : ndarray, shape (nbands,)
        In the cube's unit (× erg s⁻¹ cm⁻² Å⁻¹).
    """
    return _sum_bands(cube, cube.region, rho)


def pixel_seds(cube: FluxCube) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    """SEDs of the region pixels: ``(y, x, flux (npix, nbands), err (npix, nbands))``."""
    y, x = np.nonzero(cube.region)
    return y, x, cube.flux[:, y, x].T.copy(), cube.flux_err[:, y, x].T.copy()


def brightest_central_pixel(
    cube: FluxCube, band: int | str = 0, radius: float = 5.0
) -> tuple[int, int]:
    """(y, x) of the brightest region pixel of ``band`` within ``radius`` pixels of the
    image centre.

    Parameters
    ----------
    cube : FluxCube
        The flux maps.
    band : int or str
        Band index or filter name.
    radius : float
        Search radius around the image centre, pixels.

    Returns
    -------
    (int, int)
        Row and column.
    """
    b = cube.band_index(band)
    ny, nx = cube.shape
    m = aperture_mask(cube.shape, (nx - 1) / 2, (ny - 1) / 2, radius) & cube.region
    if not m.any():
        raise ValueError("no galaxy-region pixel within radius of the centre")
    img = np.where(m, cube.flux[b], -np.inf)
    iy, ix = np.unravel_index(np.argmax(img), img.shape)
    return int(iy), int(ix)


def flux_radial_profile(
    cube: FluxCube, band: int | str = 0, center: tuple[float, float] | None = None,
    step: float = 1.0,
) -> tuple[NDArray, NDArray]:
    """Azimuthally averaged flux per pixel of ``band`` (radius in pixels).

    Parameters
    ----------
    cube : FluxCube
        The flux maps (pixels outside the region are left out).
    band : int or str
        Band index or filter name.
    center : (x, y), optional
        Centre in pixels (default the image centre).
    step : float
        Width of the annuli, pixels.

    Returns
    -------
    radius, flux : ndarray
        Annulus centres (pixels) and mean flux per pixel (cube unit).
    """
    b = cube.band_index(band)
    return radial_profile(np.where(cube.region, cube.flux[b], np.nan), center, step)


def snr_radial_profile(
    cube: FluxCube, band: int | str = 0, center: tuple[float, float] | None = None,
    step: float = 1.0,
) -> tuple[NDArray, NDArray]:
    """Azimuthally averaged per-pixel S/N of ``band``.

    Parameters
    ----------
    cube : FluxCube
        The flux maps (pixels outside the region are left out).
    band : int or str
        Band index or filter name.
    center : (x, y), optional
        Centre in pixels (default the image centre).
    step : float
        Width of the annuli, pixels.

    Returns
    -------
    radius, snr : ndarray
        Annulus centres (pixels) and mean S/N per pixel.
    """
    b = cube.band_index(band)
    snr = np.where(cube.region, cube.flux[b] / cube.flux_err[b], np.nan)
    return radial_profile(snr, center, step)
