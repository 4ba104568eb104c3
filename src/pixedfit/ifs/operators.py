"""The linear operators of the spatial matching of IFS cubes to images
(:mod:`pixedfit.ifs.spatial`), each a sparse matrix applied to every channel: reprojection
onto another pixel grid (:func:`reprojection_matrix`, exact spherical overlaps), 2-D
convolution (:func:`convolution_matrix`) with Gaussian kernels built for discrete
convolution (:func:`discrete_gaussian_kernel`, :func:`psf_matching_kernels`), the blur a
reprojection adds (:func:`resampling_variance`) and Gaussian smoothing along wavelength
(:func:`smooth_spectra`).

Images are (y, x) with pixel (y, x) at row y, column x; flattened row-major.
"""

from __future__ import annotations

import math

import numpy as np
from astropy.wcs import WCS
from numpy.typing import ArrayLike, NDArray
from reproject import reproject_exact
from scipy import sparse

from ..images.psf import gaussian_psf
from ..validation import pixel_scale_arcsec, require_celestial_wcs

__all__ = [
    "COVER",
    "convolution_matrix",
    "discrete_gaussian_kernel",
    "psf_matching_kernels",
    "reprojection_matrix",
    "resampling_variance",
    "smooth_spectra",
]

#: Share of an output pixel the input region must cover for the pixel to be kept.
COVER = 0.999


def reprojection_matrix(
    wcs_in: WCS, shape_in: tuple[int, int], wcs_out: WCS, shape_out: tuple[int, int]
) -> sparse.csr_matrix:
    """Flux-conserving reprojection weights between two celestial pixel grids.

    Parameters
    ----------
    wcs_in : astropy.wcs.WCS
        Celestial WCS of the input grid.
    shape_in : (ny_in, nx_in)
        Shape of the input grid.
    wcs_out : astropy.wcs.WCS
        Celestial WCS of the output grid.
    shape_out : (ny_out, nx_out)
        Shape of the output grid.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (ny_out * nx_out, ny_in * nx_in)
        ``W[j, i]`` = fraction of the area of input pixel ``i`` lying inside output pixel
        ``j`` (exact spherical-polygon overlaps of ``reproject_exact``); fluxes per pixel
        map as ``f_out = W @ f_in``. Pixels are flattened in row-major (y, x) order.
    """
    win = require_celestial_wcs(wcs_in, "wcs_in")
    wout = require_celestial_wcs(wcs_out, "wcs_out")
    ny, nx = (int(v) for v in shape_in)
    nyo, nxo = (int(v) for v in shape_out)
    a_in, a_out = pixel_scale_arcsec(win) ** 2, pixel_scale_arcsec(wout) ** 2
    ratio = math.sqrt(a_out / a_in)
    # impulses s pixels apart never share an output pixel: s > 1 + sqrt(2) * ratio
    s = math.ceil(math.sqrt(2.0) * ratio) + 2
    yo, xo = np.indices((nyo, nxo))
    px, py = win.world_to_pixel_values(*wout.pixel_to_world_values(xo.ravel(), yo.ravel()))
    px, py = np.asarray(px), np.asarray(py)
    offsets = [(a, b) for a in range(min(s, ny)) for b in range(min(s, nx))]
    stack = np.zeros((len(offsets), ny, nx))
    for k, (ay, ax) in enumerate(offsets):
        stack[k, ay::s, ax::s] = 1.0
    out, foot = reproject_exact((stack, win), wout, shape_out=(len(offsets), nyo, nxo))
    sb = np.nan_to_num(out * foot)  # Σ_i v_i A(i∩j) / A_j
    rows, cols, vals = [], [], []
    for k, (ay, ax) in enumerate(offsets):
        w = sb[k].ravel()
        j = np.nonzero(w > 1e-12)[0]
        if j.size == 0:
            continue
        iy = ay + s * np.round((py[j] - ay) / s).astype(np.int64)
        ix = ax + s * np.round((px[j] - ax) / s).astype(np.int64)
        ok = (iy >= 0) & (iy < ny) & (ix >= 0) & (ix < nx)
        rows.append(j[ok])
        cols.append(iy[ok] * nx + ix[ok])
        vals.append(w[j[ok]] * a_out / a_in)
    if not rows:
        return sparse.csr_matrix((nyo * nxo, ny * nx))
    return sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(nyo * nxo, ny * nx),
    )


def convolution_matrix(kernel: ArrayLike, shape: tuple[int, int]) -> sparse.csr_matrix:
    """Sparse matrix C of the 'same'-mode convolution of a (ny, nx) image with ``kernel``
    (zero outside the image): ``(image * K).ravel() == C @ image.ravel()``.

    Parameters
    ----------
    kernel : array_like, shape (ky, kx)
        The kernel (odd sides: centred on its middle pixel).
    shape : (ny, nx)
        Shape of the images.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (ny * nx, ny * nx)
        Row-major (y, x) pixel order.
    """
    k = np.asarray(kernel, dtype=np.float64)
    ny, nx = shape
    cy, cx = (k.shape[0] - 1) // 2, (k.shape[1] - 1) // 2
    yy, xx = np.indices((ny, nx))
    rows, cols, vals = [], [], []
    thresh = 1e-10 * np.abs(k).max()
    for a in range(k.shape[0]):
        for b in range(k.shape[1]):
            if abs(k[a, b]) <= thresh:
                continue
            sy, sx = yy + cy - a, xx + cx - b
            ok = (sy >= 0) & (sy < ny) & (sx >= 0) & (sx < nx)
            rows.append((yy * nx + xx)[ok])
            cols.append((sy * nx + sx)[ok])
            vals.append(np.full(int(ok.sum()), k[a, b]))
    return sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(ny * nx, ny * nx),
    )


def discrete_gaussian_kernel(fwhm_pix: float, extra_variance: float = 0.0
                             ) -> NDArray[np.float64]:
    """Kernel for the discrete convolution of pixelated images with a Gaussian of FWHM
    ``fwhm_pix`` (pixels), less ``extra_variance`` (px², per axis) of blur that another
    step of the chain adds.

    Pixel values already include the integration over the pixel, so convolving them with a
    pixel-integrated Gaussian (:func:`pixedfit.images.psf.gaussian_psf`) would add the
    pixel's variance 1/12 px² once more; the pixel-integrated Gaussian of variance
    σ² − extra − 1/12 is used instead (total second moment σ² − extra). When that is
    ≤ 0.01 px² the kernel is the identity.

    Parameters
    ----------
    fwhm_pix : float
        FWHM of the Gaussian, pixels, >= 0.
    extra_variance : float
        Blur added elsewhere in the chain, px² per axis.

    Returns
    -------
    ndarray, shape (k, k)
        The normalised kernel (k odd; (1, 1) for the identity).
    """
    if not (np.isfinite(fwhm_pix) and fwhm_pix >= 0):
        raise ValueError(f"fwhm_pix: must be finite and >= 0, got {fwhm_pix}")
    to_sigma = 2.0 * math.sqrt(2.0 * math.log(2.0))
    sigma = fwhm_pix / to_sigma
    var = sigma**2 - extra_variance - 1.0 / 12.0
    if var < 0.01:
        return np.ones((1, 1))
    size = 2 * math.ceil(4.0 * sigma) + 1
    return gaussian_psf(to_sigma * math.sqrt(var), size)


def resampling_variance(w_mat: sparse.spmatrix, shape_in: tuple[int, int],
                        area_ratio: float, rows: NDArray[np.bool_] | None = None) -> float:
    """Mean extra blur (px², per axis, input pixels) of a reprojection matrix.

    For each output pixel the second moment of its weights about their centroid, less the
    (r² − 1)/12 px² that the change of pixel size r = (output / input pixel side) accounts
    for (the target image is integrated over its own pixels), averaged over the output
    pixels ``rows`` (default: all fully covered ones). Matching kernels subtract it so that
    PSF matching followed by reprojection reaches the target PSF's second moment.

    Parameters
    ----------
    w_mat : scipy sparse matrix, shape (n_out, ny_in * nx_in)
        Reprojection weights (:func:`reprojection_matrix`).
    shape_in : (ny_in, nx_in)
        Shape of the input grid.
    area_ratio : float
        Area of an input pixel over that of an output pixel.
    rows : ndarray of bool, shape (n_out,), optional
        Output pixels to average over (default: those covered to 99.9 %).

    Returns
    -------
    float
        px² per axis, in input pixels; 0 when no output pixel qualifies.
    """
    w = sparse.csr_matrix(w_mat)
    yy, xx = np.indices(shape_in)
    x, y = xx.ravel().astype(float), yy.ravel().astype(float)
    tot = np.asarray(w.sum(axis=1)).ravel()
    sel = tot * area_ratio >= COVER if rows is None else np.asarray(rows, dtype=bool)
    sel &= tot > 0
    if not sel.any():
        return 0.0
    t = tot[sel]
    ws = w[sel]
    vx = (ws @ x**2) / t - ((ws @ x) / t) ** 2
    vy = (ws @ y**2) / t - ((ws @ y) / t) ** 2
    r2 = 1.0 / area_ratio
    return float(np.mean(0.5 * (vx + vy)) - (r2 - 1.0) / 12.0)


def psf_matching_kernels(
    psf_ifs: ArrayLike, psf_target: float, pixel_scale: float, fwhm_tolerance: float = 0.01,
    extra_variance: float = 0.0,
) -> tuple[NDArray[np.int64], list[NDArray[np.float64]]]:
    """Gaussian PSF-matching kernels per wavelength, grouped.

    Parameters
    ----------
    psf_ifs : array_like, shape (nwave,)
        IFS PSF FWHM (arcsec) per channel.
    psf_target : float
        FWHM (arcsec) of the imaging PSF.
    pixel_scale : float
        IFS spaxel size (arcsec); kernels are sampled on it.
    fwhm_tolerance : float
        Channels whose kernel FWHMs agree within this fraction share one kernel.
    extra_variance : float
        Blur (px², per axis) added later by the reprojection (:func:`resampling_variance`),
        removed from the kernels (see :func:`discrete_gaussian_kernel`).

    Returns
    -------
    (group, kernels) : group index per channel and one kernel (odd size, sum 1) per group.

    Raises
    ------
    ValueError
        The IFS PSF is broader than the target (by more than 1 %) at some wavelength.
    """
    p = np.asarray(psf_ifs, dtype=np.float64)
    if not (np.isfinite(psf_target) and psf_target > 0):
        raise ValueError(f"psf_target: must be finite and > 0, got {psf_target}")
    worst = float(np.max(p))
    if worst > psf_target * 1.01:
        raise ValueError(
            f"the IFS PSF (FWHM up to {worst:.3g}\") is broader than the imaging PSF "
            f"({psf_target:.3g}\"): a PSF cannot be sharpened; match the images to a "
            f"broader PSF (blur_photometry=True does it) or pass kernels")
    kf = np.sqrt(np.clip(psf_target**2 - p**2, 0.0, None)) / pixel_scale
    key = np.where(kf < 0.1, -1, np.round(np.log(np.maximum(kf, 0.1)) /
                                          math.log1p(fwhm_tolerance))).astype(np.int64)
    uniq, group = np.unique(key, return_inverse=True)
    kernels = []
    for g, kv in enumerate(uniq):
        if kv < 0:
            kernels.append(np.ones((1, 1)))
        else:
            kernels.append(discrete_gaussian_kernel(float(np.mean(kf[group == g])),
                                                    extra_variance))
    return group.astype(np.int64), kernels


def smooth_spectra(
    wave: ArrayLike, flux: ArrayLike, var: ArrayLike, sigma: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Gaussian smoothing of spectra along wavelength.

    Parameters
    ----------
    wave : array_like, shape (nwave,)
        Wavelengths, Å.
    flux, var : array_like, shape (nwave, nspec)
        Spectra and their variances; NaN = masked channel.
    sigma : float
        Gaussian σ in Å.

    Returns
    -------
    flux, var : ndarray, shape (nwave, nspec)
        Smoothed values (weights ∝ exp(−Δλ²/2σ²) Δλ over good channels within 5σ; var
        with the squared weights); masked channels stay NaN.
    """
    lam = np.asarray(wave, dtype=np.float64)
    f = np.asarray(flux, dtype=np.float64)
    v = np.asarray(var, dtype=np.float64)
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"kernel_sigma: must be finite and > 0 (Å), got {sigma}")
    dl = np.gradient(lam)
    n = lam.size
    rows, cols, vals = [], [], []
    for a in range(n):
        lo, hi = np.searchsorted(lam, [lam[a] - 5 * sigma, lam[a] + 5 * sigma])
        b = np.arange(lo, max(hi, lo + 1))
        w = np.exp(-0.5 * ((lam[b] - lam[a]) / sigma) ** 2) * dl[b]
        rows.append(np.full(b.size, a))
        cols.append(b)
        vals.append(w / w.sum())
    s = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(n, n))
    good = np.isfinite(f) & np.isfinite(v)
    den = s @ good.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        fo = (s @ np.where(good, f, 0.0)) / den
        vo = (s.multiply(s) @ np.where(good, v, 0.0)) / den**2
    fo[~good] = np.nan
    vo[~good] = np.nan
    return fo, vo
