"""Galaxy regions: segmentation with sep, merged masks, ellipses, rectangles, star masks,
user mask files, and the checks that tell when a region cannot be right.

Pixel conventions: images are (y, x) arrays, zero-based; the centre of pixel (y, x) is at
coordinates (x, y) (sep and photutils convention). Region masks are boolean (y, x).

Detection thresholds follow SExtractor: a pixel belongs to a source when the image smoothed
by sep's 3 × 3 kernel exceeds ``thresh`` × σ, where σ is the 1σ noise of one *unsmoothed*
pixel. For stamps the σ is the background noise measured on the stamp
(:func:`background_noise`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import sep
from astropy.io import fits
from astropy.stats import sigma_clipped_stats
from astropy.wcs import WCS, FITSFixedWarning
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from ..validation import as_image

__all__ = [
    "BackgroundNoise",
    "RegionCheck",
    "RegionWarning",
    "background_noise",
    "central_segment",
    "check_region",
    "ellipse_region",
    "galaxy_region",
    "mask_stars",
    "read_region_mask",
    "rectangular_region",
    "segmentation_map",
    "warn_region",
]


class RegionWarning(UserWarning):
    """The galaxy region touches the stamp edge or covers most of the stamp, so it holds
    sky (or the stamp is too small for the galaxy)."""


@dataclass(frozen=True)
class BackgroundNoise:
    """Background of one stamp, in the image's units.

    Attributes
    ----------
    sigma : float
        1σ noise of one background pixel.
    level : float
        Background level (subtracted before detection; 0 when it could not be measured).
    n_sky : int
        Number of source-free pixels the values were measured on (0: not measured).
    method : str
        ``"measured"`` (sigma-clipped statistics of the source-free pixels),
        ``"variance map"`` (the stamp has too little clean sky: σ from the 10th percentile
        of the variance map, level 0) or ``"lower half"`` (no sky and no variance map: σ
        from the spread of the pixels below the median, level 0).
    """

    sigma: float
    level: float
    n_sky: int
    method: str


def segmentation_map(
    image: ArrayLike,
    thresh: float = 1.5,
    err: float | ArrayLike | None = None,
    variance: ArrayLike | None = None,
    minarea: int = 5,
    deblend_nthresh: int = 32,
    deblend_cont: float = 0.005,
    mask: ArrayLike | None = None,
    filter_type: str = "matched",
) -> tuple[NDArray[np.int32], np.ndarray]:
    """Detect sources with sep and return the segmentation map and catalogue.

    Parameters
    ----------
    image : array_like (y, x)
        Background-subtracted image; NaN pixels are masked.
    thresh : float
        Detection threshold. With a scalar ``err`` (or ``filter_type="conv"``) it is in
        units of the per-pixel noise (SExtractor convention: the image smoothed by a 3 × 3
        kernel must exceed ``thresh`` × ``err``). With a noise *array* and the default
        matched filter it applies to the S/N of the filtered image, which for white noise
        is 2.7 times lower in units of the per-pixel noise.
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
    filter_type : {"matched", "conv"}
        sep's filtering of noise arrays (see ``thresh``).

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
    if filter_type not in ("matched", "conv"):
        raise ValueError("filter_type: must be 'matched' or 'conv'")
    kwargs: dict[str, Any] = {}  # sep.extract's noise argument
    e: float | NDArray[np.float64]
    if variance is not None:
        var = as_image(variance, "variance", allow_nan=True, shape=data.shape)
        var = np.where(np.isfinite(var) & (var > 0), var, np.nan)
        fill = np.nanmedian(var) if np.any(np.isfinite(var)) else 1.0
        kwargs["var"] = np.ascontiguousarray(np.where(np.isfinite(var), var, fill))
    elif err is not None:
        if np.ndim(err) == 0:
            e = float(cast(float, err))  # 0-d: a number
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
        filter_type=filter_type,
        **kwargs,
    )
    return segm.astype(np.int32), objects


def central_segment(
    segm: ArrayLike, x: float | None = None, y: float | None = None, fill_holes: bool = False
) -> NDArray:
    """Boolean mask of the segment containing pixel (x, y) (default: the image centre).

    Parameters
    ----------
    segm : array_like of int, shape (ny, nx)
        Segmentation map (0: background).
    x, y : float, optional
        The pixel (column, row; rounded); default the image centre.
    fill_holes : bool
        Fill the holes of the segment made only of undetected pixels (noise dips, faint
        patches); holes holding another (deblended) object stay out.

    Returns
    -------
    ndarray of bool, shape (ny, nx)
        The segment; all False when the pixel is background.
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
    central = seg == label
    if fill_holes:
        holes, n = ndimage.label(ndimage.binary_fill_holes(central) & ~central)
        if n:
            has_object = ndimage.maximum(seg > 0, holes, index=np.arange(1, n + 1))
            empty = np.flatnonzero(~np.asarray(has_object, dtype=bool)) + 1
            central |= np.isin(holes, empty)
    return central


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
    """Rectangle of ``width`` × ``height`` pixels with lower-left pixel (x, y).

    Parameters
    ----------
    shape : (ny, nx)
        Shape of the image.
    x, y : int
        Lower-left pixel (column, row) of the rectangle.
    width, height : int
        Size in pixels along x and y (cut at the image border).

    Returns
    -------
    ndarray of bool, shape (ny, nx)
    """
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
    """Remove circular patches (x, y, radius in pixels) of foreground stars from a region.

    Parameters
    ----------
    region : array_like of bool, shape (ny, nx)
        The region (not modified).
    stars : sequence of (x, y, radius)
        Centre (column, row) and radius of each star, pixels.

    Returns
    -------
    ndarray of bool, shape (ny, nx)
    """
    reg = np.asarray(region, dtype=bool).copy()
    ny, nx = reg.shape
    y, x = np.mgrid[0:ny, 0:nx]
    for xs, ys, rs in stars:
        if rs <= 0:
            raise ValueError("stars: radius must be > 0")
        reg[(x - xs) ** 2 + (y - ys) ** 2 <= rs**2] = False
    return reg


def _initial_noise(data: NDArray, good: NDArray, variance: NDArray | None) -> float:
    """σ from the variance map (10th percentile: background-limited pixels) or from the
    lower half of the pixel distribution (robust to galaxy light, which only adds flux)."""
    if variance is not None:
        v = variance[good & np.isfinite(variance) & (variance > 0)]
        if v.size:
            return float(np.sqrt(np.percentile(v, 10)))
    x = data[good]
    med = np.median(x)
    low = med - x[x <= med]
    return float(1.4826 * np.median(low)) if low.size else 0.0


def background_noise(
    image: ArrayLike,
    variance: ArrayLike | None = None,
    mask: ArrayLike | None = None,
    nsigma: float = 2.0,
    dilate: int = 3,
    min_sky_fraction: float = 0.05,
    max_ratio: float = 1.5,
) -> BackgroundNoise:
    """Measure the background level and per-pixel noise of a stamp.

    Sources are detected at ``nsigma`` × a first σ estimate (3 × 3 smoothing, 5 pixels),
    their masks grown by ``dilate`` pixels, and the remaining pixels sigma-clipped (3σ);
    this is done twice. When fewer than ``min_sky_fraction`` of the pixels (or fewer than
    100) are left, or when the σ measured on them exceeds ``max_ratio`` times the σ of the
    variance map (the "sky" is then the galaxy's outskirts), the variance map is used.

    Parameters
    ----------
    image : array_like (y, x)
        Stamp (NaN = no data).
    variance : array_like (y, x), optional
        Variance map of the stamp (same units squared).
    mask : array_like of bool (y, x), optional
        Pixels to ignore.
    nsigma, dilate, min_sky_fraction, max_ratio : float, int, float, float
        See above.

    Returns
    -------
    BackgroundNoise
    """
    data = as_image(image, "image", allow_nan=True)
    good = np.isfinite(data)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != data.shape:
            raise ValueError("mask: shape does not match image")
        good &= ~m
    if good.sum() < 10:
        raise ValueError("image: fewer than 10 finite pixels, no background can be measured")
    var = None
    if variance is not None:
        var = as_image(variance, "variance", allow_nan=True, shape=data.shape)
    sigma_ref = _initial_noise(data, good, var)
    if not (np.isfinite(sigma_ref) and sigma_ref > 0):
        raise ValueError("image: cannot estimate the noise (constant image?)")
    filled = np.ascontiguousarray(np.where(good, data, 0.0))
    level, sigma, n_sky = float(np.median(data[good])), sigma_ref, 0
    for _ in range(2):
        _, segm = sep.extract(filled - level, nsigma, err=sigma, mask=~good, minarea=5,
                              segmentation_map=True, filter_type="conv")
        sources = ndimage.binary_dilation(segm > 0, iterations=max(int(dilate), 0)) \
            if dilate > 0 else segm > 0
        sky = data[good & ~sources]
        if sky.size < max(100, min_sky_fraction * data.size):
            n_sky = 0
            break
        _, level, sigma = (float(v) for v in sigma_clipped_stats(sky, sigma=3.0))
        n_sky = int(sky.size)
        if not sigma > 0:
            n_sky = 0
            break
    if n_sky and (var is None or sigma <= max_ratio * sigma_ref):
        return BackgroundNoise(sigma, level, n_sky, "measured")
    return BackgroundNoise(sigma_ref, 0.0, 0, "variance map" if var is not None else
                           "lower half")


@dataclass(frozen=True)
class RegionCheck:
    """How a region sits in its stamp.

    Attributes
    ----------
    fraction : float
        Fraction of the stamp's pixels in the region.
    edge_pixels : int
        Region pixels on the outermost rows and columns of the stamp.
    max_fraction : float
        Fraction above which the region "covers most of the stamp".
    """

    fraction: float
    edge_pixels: int
    max_fraction: float

    @property
    def touches_edge(self) -> bool:
        """True when the region reaches the stamp border."""
        return self.edge_pixels > 0

    @property
    def covers_most(self) -> bool:
        """True when the region covers more than ``max_fraction`` of the stamp."""
        return self.fraction > self.max_fraction

    @property
    def flagged(self) -> bool:
        """True when the region probably contains sky or is cut by the stamp."""
        return self.touches_edge or self.covers_most

    def describe(self) -> str:
        """One sentence: the covered fraction and the edge contact."""
        parts = [f"covers {100 * self.fraction:.1f} % of the stamp"]
        if self.touches_edge:
            parts.append(f"touches the stamp edge ({self.edge_pixels} border pixels)")
        return " and ".join(parts)


def check_region(region: ArrayLike, max_fraction: float = 0.5) -> RegionCheck:
    """Fraction of the stamp covered by ``region`` and its contact with the border.

    Parameters
    ----------
    region : array_like of bool (y, x)
    max_fraction : float
        In (0, 1]; a region above it "covers most of the stamp".
    """
    reg = np.asarray(region, dtype=bool)
    if reg.ndim != 2 or min(reg.shape) < 3:
        raise ValueError("region: expected a 2-D mask of at least 3 × 3 pixels")
    if not (0 < max_fraction <= 1):
        raise ValueError("max_fraction: must be in (0, 1]")
    border = reg.copy()
    border[1:-1, 1:-1] = False
    return RegionCheck(float(reg.mean()), int(border.sum()), float(max_fraction))


def warn_region(check: RegionCheck, source: str, stacklevel: int = 3) -> None:
    """Issue a :class:`RegionWarning` for a flagged region (nothing otherwise).

    Parameters
    ----------
    check : RegionCheck
        The region's check (:func:`check_region`).
    source : str
        The bands (or mask) the region came from, for the message.
    stacklevel : int
        Stack level of the warning.
    """
    if not check.flagged:
        return
    warnings.warn(
        f"the galaxy region {check.describe()} (from the {source}): it probably includes "
        "sky, or the galaxy is larger than the stamp. Enlarge the stamp (stamp_size), raise "
        "the segmentation threshold, or give the region as an ellipse or a mask file.",
        RegionWarning, stacklevel=stacklevel)


def read_region_mask(
    path: str | os.PathLike[str], shape: tuple[int, int], wcs: WCS | None = None,
    tolerance: float = 0.05,
) -> NDArray[np.bool_]:
    """Read a user's galaxy-region mask from a FITS file.

    The first 2-D image HDU is read; pixels that are finite and non-zero belong to the
    region. The mask must be on the stamp grid: same shape, and when both the file and
    ``wcs`` carry a celestial WCS, the same pixel ↔ sky mapping (within ``tolerance``
    pixels at the stamp corners and centre).

    Parameters
    ----------
    path : path-like
        FITS file.
    shape : (ny, nx)
        Stamp shape.
    wcs : astropy.wcs.WCS, optional
        WCS of the stamp grid.
    tolerance : float
        Largest allowed position mismatch, pixels.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file, no 2-D image, wrong shape or WCS, or an empty mask (the message
        names the file).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"region mask {p} not found")
    try:
        with fits.open(p) as hdul:
            hdu = next((h for h in hdul if h.data is not None and h.data.ndim == 2), None)
            if hdu is None:
                raise ValueError(f"region mask {p}: no 2-D image HDU")
            data = np.asarray(hdu.data, dtype=np.float64)
            header = hdu.header.copy()
    except OSError as exc:
        raise ValueError(f"region mask {p}: not a readable FITS file ({exc})") from exc
    if data.shape != tuple(shape):
        raise ValueError(f"region mask {p}: shape {data.shape} differs from the stamp "
                         f"{tuple(shape)}; make the mask on the stamp grid (stamp_*.fits)")
    if wcs is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            mwcs = WCS(header, naxis=2)
        if mwcs.has_celestial:
            ny, nx = shape
            px = np.array([0.0, nx - 1.0, 0.0, nx - 1.0, (nx - 1) / 2])
            py = np.array([0.0, 0.0, ny - 1.0, ny - 1.0, (ny - 1) / 2])
            world = wcs.pixel_to_world_values(px, py)
            bx, by = mwcs.world_to_pixel_values(*world)
            off = float(np.max(np.hypot(np.asarray(bx) - px, np.asarray(by) - py)))
            if not off <= tolerance:
                raise ValueError(f"region mask {p}: its WCS is not the stamp grid (pixels "
                                 f"differ by up to {off:.2f}); make the mask on the stamp "
                                 "grid (stamp_*.fits)")
    region = np.isfinite(data) & (data != 0)
    if not region.any():
        raise ValueError(f"region mask {p}: no non-zero pixel (empty region)")
    return region

