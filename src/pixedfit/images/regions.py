"""Galaxy regions: segmentation with sep, merged masks, ellipses, rectangles, star masks.

Pixel conventions: images are (y, x) arrays, zero-based; the centre of pixel (y, x) is at
coordinates (x, y) (sep and photutils convention). Region masks are boolean (y, x).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sep
from numpy.typing import ArrayLike, NDArray

from ._checks import as_image

__all__ = [
    "central_segment",
    "ellipse_region",
    "galaxy_region",
    "mask_stars",
    "rectangular_region",
    "segmentation_map",
]


def segmentation_map(
    image: ArrayLike,
    thresh: float = 1.5,
    err: float | ArrayLike | None = None,
    variance: ArrayLike | None = None,
    minarea: int = 5,
    deblend_nthresh: int = 32,
    deblend_cont: float = 0.005,
    mask: ArrayLike | None = None,
) -> tuple[NDArray[np.int32], np.ndarray]:
    """Detect sources with sep and return the segmentation map and catalogue.

    Parameters
    ----------
    image : array_like (y, x)
        Background-subtracted image; NaN pixels are masked.
    thresh : float
        Detection threshold in units of ``err`` (or absolute if no noise is given).
    err : float or array_like, optional
        1σ noise per pixel. If neither ``err`` nor ``variance`` is given the global
        background RMS of sep is used.
    variance : array_like, optional
        Variance image (y, x) instead of ``err``.
    minarea : int
        Minimum number of pixels of an object.
    deblend_nthresh, deblend_cont
        sep deblending parameters.
    mask : array_like of bool, optional
        Pixels to ignore.

    Returns
    -------
    segm : ndarray of int32 (y, x)
        0 = background, k = object k (1-based, the row k-1 of ``objects``).
    objects : numpy structured array
        sep catalogue.
    """
    data = as_image(image, "image", allow_nan=True)
    bad = ~np.isfinite(data)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != data.shape:
            raise ValueError("mask: shape does not match image")
        bad |= m
    data = np.where(bad, 0.0, data)
    if thresh <= 0:
        raise ValueError("thresh: must be > 0")
    kwargs = {}
    if variance is not None:
        var = as_image(variance, "variance", allow_nan=True, shape=data.shape)
        var = np.where(np.isfinite(var) & (var > 0), var, np.nan)
        fill = np.nanmedian(var) if np.any(np.isfinite(var)) else 1.0
        kwargs["var"] = np.ascontiguousarray(np.where(np.isfinite(var), var, fill))
    elif err is not None:
        if np.ndim(err) == 0:
            e = float(err)
            if not (np.isfinite(e) and e > 0):
                raise ValueError("err: must be a positive number")
            kwargs["err"] = e
        else:
            e = as_image(err, "err", allow_nan=True, shape=data.shape)
            e = np.where(np.isfinite(e) & (e > 0), e, np.nan)
            if not np.any(np.isfinite(e)):
                raise ValueError("err: no positive finite noise values")
            kwargs["err"] = np.ascontiguousarray(np.where(np.isfinite(e), e, np.nanmedian(e)))
    else:
        kwargs["err"] = float(sep.Background(np.ascontiguousarray(data), mask=bad).globalrms)
        if kwargs["err"] <= 0:
            raise ValueError("image: cannot estimate the noise (constant image?)")
    objects, segm = sep.extract(
        np.ascontiguousarray(data),
        thresh,
        mask=bad,
        minarea=int(minarea),
        deblend_nthresh=int(deblend_nthresh),
        deblend_cont=float(deblend_cont),
        segmentation_map=True,
        **kwargs,
    )
    return segm.astype(np.int32), objects


def central_segment(segm: ArrayLike, x: float | None = None, y: float | None = None) -> NDArray:
    """Boolean mask of the segment containing pixel (x, y) (default: the image centre).

    Returns an all-False mask when the centre is background.
    """
    seg = np.asarray(segm)
    ny, nx = seg.shape
    xc = round((nx - 1) / 2 if x is None else x)
    yc = round((ny - 1) / 2 if y is None else y)
    if not (0 <= xc < nx and 0 <= yc < ny):
        raise ValueError("x, y: centre outside the segmentation map")
    label = seg[yc, xc]
    if label == 0:
        return np.zeros(seg.shape, dtype=bool)
    return seg == label


def galaxy_region(segments: Sequence[ArrayLike]) -> NDArray[np.bool_]:
    """Union (logical OR) of the selected per-band region masks (y, x)."""
    if len(segments) == 0:
        raise ValueError("segments: at least one mask is needed")
    masks = [np.asarray(s) != 0 for s in segments]
    shape = masks[0].shape
    if any(m.shape != shape for m in masks):
        raise ValueError("segments: masks must share one shape")
    region = np.logical_or.reduce(masks)
    return region


def ellipse_region(
    shape: tuple[int, int],
    x_cent: float | None = None,
    y_cent: float | None = None,
    ell: float = 0.0,
    pa: float = 45.0,
    radius_sma: float = 30.0,
) -> NDArray[np.bool_]:
    """Elliptical region: pixels whose semi-major-axis radius is <= ``radius_sma``.

    Parameters
    ----------
    shape : (ny, nx)
    x_cent, y_cent : float, optional
        Centre in pixels (default: image centre).
    ell : float
        Ellipticity 1 - b/a, in [0, 1).
    pa : float
        Position angle of the major axis in degrees, counter-clockwise from the +x axis.
    radius_sma : float
        Semi-major axis in pixels (> 0).
    """
    ny, nx = shape
    if not (0 <= ell < 1):
        raise ValueError("ell: ellipticity must be in [0, 1)")
    if radius_sma <= 0:
        raise ValueError("radius_sma: must be > 0")
    xc = (nx - 1) / 2 if x_cent is None else x_cent
    yc = (ny - 1) / 2 if y_cent is None else y_cent
    y, x = np.mgrid[0:ny, 0:nx]
    dx, dy = x - xc, y - yc
    t = np.radians(pa)
    xp = dx * np.cos(t) + dy * np.sin(t)  # along the major axis
    yp = -dx * np.sin(t) + dy * np.cos(t)
    r = np.sqrt(xp**2 + (yp / (1.0 - ell)) ** 2)
    return r <= radius_sma


def rectangular_region(
    shape: tuple[int, int], x: int, y: int, width: int, height: int
) -> NDArray[np.bool_]:
    """Rectangle of ``width`` × ``height`` pixels with lower-left pixel (x, y)."""
    if width <= 0 or height <= 0:
        raise ValueError("width, height: must be > 0")
    ny, nx = shape
    if not (0 <= x < nx and 0 <= y < ny):
        raise ValueError("x, y: corner outside the image")
    region = np.zeros(shape, dtype=bool)
    region[y : min(y + height, ny), x : min(x + width, nx)] = True
    return region


def mask_stars(
    region: ArrayLike, stars: Sequence[tuple[float, float, float]]
) -> NDArray[np.bool_]:
    """Remove circular patches (x, y, radius in pixels) of foreground stars from a region."""
    reg = np.asarray(region, dtype=bool).copy()
    ny, nx = reg.shape
    y, x = np.mgrid[0:ny, 0:nx]
    for xs, ys, rs in stars:
        if rs <= 0:
            raise ValueError("stars: radius must be > 0")
        reg[(x - xs) ** 2 + (y - ys) ** 2 <= rs**2] = False
    return reg
