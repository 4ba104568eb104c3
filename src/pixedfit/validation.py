"""Input validation of images and their WCS, shared by the image and IFS modules:
2-D float images (:func:`as_image`), celestial WCS (:func:`require_celestial_wcs`) and
pixel scales (:func:`pixel_scale_arcsec`)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from numpy.typing import ArrayLike, NDArray

__all__ = ["as_image", "pixel_scale_arcsec", "require_celestial_wcs"]


def as_image(
    data: ArrayLike,
    name: str,
    *,
    allow_nan: bool = False,
    positive: bool = False,
    nonnegative: bool = False,
    shape: tuple[int, ...] | None = None,
) -> NDArray[np.float64]:
    """Return ``data`` as a native-endian float64 2-D array, or raise naming ``name``.

    Parameters
    ----------
    data : array_like
        The image (y, x).
    name : str
        Argument name used in error messages.
    allow_nan : bool
        Accept NaN pixels (infinities are always refused).
    positive, nonnegative : bool
        Require finite values > 0 (or >= 0).
    shape : tuple, optional
        Required shape.
    """
    try:
        arr = np.array(data, dtype=np.float64)  # copy, native byte order
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected a numeric 2-D array ({exc})") from None
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D image (y, x), got {arr.ndim} dimensions")
    if arr.size == 0:
        raise ValueError(f"{name}: image is empty")
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(f"{name}: shape {arr.shape} does not match {tuple(shape)}")
    if np.any(np.isinf(arr)):
        raise ValueError(f"{name}: contains infinite values")
    if not allow_nan and np.any(np.isnan(arr)):
        raise ValueError(f"{name}: contains NaN values")
    finite = arr[np.isfinite(arr)]
    if positive and np.any(finite <= 0):
        raise ValueError(f"{name}: values must be > 0")
    if nonnegative and np.any(finite < 0):
        raise ValueError(f"{name}: values must be >= 0")
    return arr


def require_celestial_wcs(header_or_wcs: Any, name: str) -> WCS:
    """A celestial 2-D WCS from a header or WCS, or a ValueError naming ``name``.

    Parameters
    ----------
    header_or_wcs : astropy WCS or FITS Header
        The WCS, or a header holding one.
    name : str
        Name of the argument, for the error messages.

    Returns
    -------
    astropy.wcs.WCS
        A 2-D celestial WCS.
    """
    if isinstance(header_or_wcs, WCS):
        wcs = header_or_wcs
    elif isinstance(header_or_wcs, fits.Header):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(header_or_wcs, naxis=2)
    elif header_or_wcs is None:
        raise ValueError(f"{name}: no WCS given (a celestial FITS WCS is required)")
    else:
        raise TypeError(f"{name}: expected an astropy WCS or FITS header")
    if not wcs.has_celestial or wcs.naxis != 2:
        raise ValueError(f"{name}: the header has no celestial WCS (CTYPE RA---/DEC--)")
    return wcs


def pixel_scale_arcsec(wcs: WCS) -> float:
    """Pixel scale in arcsec: sqrt of the pixel area from the WCS."""
    from astropy.wcs.utils import proj_plane_pixel_area

    area = float(proj_plane_pixel_area(wcs.celestial))
    if not np.isfinite(area) or area <= 0:
        raise ValueError("WCS: degenerate pixel area")
    return float(np.sqrt(area) * 3600.0)
