"""Sky background estimation and subtraction (photutils Background2D + sep source masks)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
from astropy.io import fits
from astropy.stats import SigmaClip
from numpy.typing import ArrayLike, NDArray
from photutils.background import Background2D, MedianBackground, StdBackgroundRMS

from .._paths import atomic_path
from ..validation import as_image
from .regions import segmentation_map

__all__ = ["BackgroundResult", "subtract_background"]


@dataclass(frozen=True)
class _Flat:
    """A flat background (same attributes as Background2D)."""

    background: NDArray[np.float64]
    background_rms: NDArray[np.float64]


@dataclass(frozen=True)
class BackgroundResult:
    """Background model of one image, all arrays (y, x) in the image's unit.

    Attributes
    ----------
    background, rms, subtracted : ndarray
        Smooth background, its 1σ pixel-to-pixel RMS, and image − background.
    source_mask : ndarray of bool
        Pixels excluded as sources when estimating the background.
    """

    background: NDArray[np.float64]
    rms: NDArray[np.float64]
    subtracted: NDArray[np.float64]
    source_mask: NDArray[np.bool_]

    def write(self, output_dir: str | os.PathLike[str], name: str,
              header: fits.Header | None = None) -> list[Path]:
        """Write ``skybg_<name>``, ``skybgrms_<name>`` and ``skybgsub_<name>`` FITS files.

        Parameters
        ----------
        output_dir : path-like
            Folder of the files (must exist).
        name : str
            File name after the prefix (e.g. ``"sdss_r.fits"``).
        header : astropy.io.fits.Header, optional
            Header of the three images (e.g. the image's WCS).

        Returns
        -------
        list of Path
            The background, background RMS and subtracted images, in that order.
        """
        out = []
        for prefix, arr in (
            ("skybg_", self.background),
            ("skybgrms_", self.rms),
            ("skybgsub_", self.subtracted),
        ):
            path = Path(output_dir) / f"{prefix}{name}"
            with atomic_path(path) as tmp:
                fits.PrimaryHDU(arr, header=header).writeto(tmp, overwrite=True)
            out.append(path)
        return out


def subtract_background(
    image: ArrayLike,
    box_size: int | tuple[int, int] | None = None,
    filter_size: int = 3,
    sigma: float = 3.0,
    mask_sources: bool = True,
    thresh: float = 2.0,
    minarea: int = 5,
    dilate: int = 2,
    mask: ArrayLike | None = None,
) -> BackgroundResult:
    """Estimate and subtract a smooth sky background.

    Parameters
    ----------
    image : array_like (y, x)
        Image; NaN pixels (e.g. outside coverage) are excluded and stay NaN.
    box_size : int or (ny, nx), optional
        Background mesh box in pixels; default a tenth of the image (at least 8, at most
        a third of the image). When too few boxes have enough unmasked pixels the box is
        halved (down to 4 pixels); when that fails too, with at least 50 unmasked pixels
        left, a single sigma-clipped median and standard deviation of the whole image are
        used (a flat background).
    filter_size : int
        Median filter of the mesh, in boxes.
    sigma : float
        Sigma-clipping threshold.
    mask_sources : bool
        Detect sources with sep and exclude them, grown by ``dilate`` pixels, before the
        final estimate.
    thresh : float
        Source-detection threshold in units of the background RMS measured in the first
        pass (:attr:`BackgroundResult.rms`, per pixel), with the SExtractor convention used
        for galaxy regions (:func:`~pixedfit.images.regions.segmentation_map` with
        ``filter_type="conv"``): a pixel is a source pixel when the 3 × 3-smoothed,
        background-subtracted image exceeds ``thresh`` × RMS, in every band alike. The
        default, 2, is that of the galaxy-region segmentation (``images.segmentation_thresh``).
        On maps with strongly correlated noise (resampled or oversampled, e.g. DustPedia
        WISE W3, neighbour correlation 0.96) smoothing does not lower the noise and a low
        threshold masks noise peaks as well, biasing the background low.
    minarea : int
        Smallest source, in pixels.
    dilate : int
        Growth of the source mask, in pixels.
    mask : array_like of bool, optional
        Further pixels to exclude.

    Returns
    -------
    BackgroundResult
    """
    data = as_image(image, "image", allow_nan=True)
    bad = ~np.isfinite(data)
    if bad.all():
        raise ValueError("image: no finite pixels")
    if mask is not None:
        user = np.asarray(mask, dtype=bool)
        if user.shape != data.shape:
            raise ValueError("mask: shape does not match image")
        bad = bad | user
    if box_size is None:
        box_size = max(8, min(data.shape) // 10)
        box_size = max(4, min(box_size, min(data.shape) // 3))
    boxes = [np.atleast_1d(np.asarray(box_size, dtype=int))]
    if np.any(boxes[0] < 2):
        raise ValueError(f"box_size: must be >= 2 pixels, got {box_size!r}")
    while np.all(boxes[-1] // 2 >= 4):
        boxes.append(boxes[-1] // 2)
    clip = SigmaClip(sigma=sigma, maxiters=10)

    def estimate(excluded: NDArray[np.bool_]) -> Background2D | _Flat:
        # Crowded fields leave few clean boxes: accept boxes up to half masked, then
        # smaller boxes, then one flat level.
        errors = []
        for box in boxes:
            for pct in (10.0, 50.0):
                try:
                    return _bkg2d(excluded, pct,
                                  cast("tuple[int, int]", tuple(int(b) for b in box))
                                  if box.size == 2 else int(box[0]))
                except ValueError as exc:
                    errors.append(str(exc))
        use = ~excluded & np.isfinite(data)
        if use.sum() >= 50:
            from astropy.stats import sigma_clipped_stats

            _, med, std = sigma_clipped_stats(data[use], sigma=sigma, maxiters=10)
            if np.isfinite(std) and std > 0:
                return _Flat(np.full(data.shape, med), np.full(data.shape, std))
        raise ValueError(f"image: background estimation failed with boxes of "
                         f"{[b.tolist() for b in boxes]} pixels ({errors[-1]}) and fewer "
                         f"than 50 unmasked pixels for a flat level ({int(use.sum())} left); "
                         "give a variance image, a larger stamp, or mask_sources=False")

    def _bkg2d(excluded: NDArray[np.bool_], exclude_percentile: float,
               box: int | tuple[int, int]) -> Background2D:
        return Background2D(
            np.where(np.isfinite(data), data, 0.0),
            box,
            mask=excluded & np.isfinite(data),
            coverage_mask=~np.isfinite(data),
            filter_size=(filter_size, filter_size),
            sigma_clip=clip,
            bkg_estimator=MedianBackground(),
            bkg_rms_estimator=StdBackgroundRMS(),
            fill_value=np.nan,
            exclude_percentile=exclude_percentile,
        )

    bkg = estimate(bad)
    sources = np.zeros(data.shape, dtype=bool)
    if mask_sources:
        sub = data - bkg.background
        # "conv": the threshold is thresh × the local RMS of one pixel (sep's default
        # matched filter with a noise array would make it a S/N of the filtered image,
        # about 2.7 times lower in units of the pixel RMS).
        segm, _ = segmentation_map(sub, thresh=thresh, err=bkg.background_rms, minarea=minarea,
                                   mask=bad, filter_type="conv")
        sources = segm > 0
        if dilate > 0 and sources.any():
            from scipy.ndimage import binary_dilation

            sources = binary_dilation(sources, iterations=int(dilate))
        bkg = estimate(bad | sources)
    background = np.asarray(bkg.background, dtype=np.float64)
    rms = np.asarray(bkg.background_rms, dtype=np.float64)
    background[~np.isfinite(data)] = np.nan
    rms[~np.isfinite(data)] = np.nan
    return BackgroundResult(background, rms, data - background, sources)
