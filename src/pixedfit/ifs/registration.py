"""Registration of an IFS cube on images, and blurring of images or cubes to a broader PSF.

* :func:`band_image` — the cube's synthetic image through a filter (photon-weighted mean
  f_λ per spaxel, masked channels excluded).
* :func:`register_cube` — the offset between a cube's WCS and an image's: the cube's band
  image through the image's filter is compared with the image brought to the cube's grid
  and PSF (the sharper of the two is blurred to the broader PSF, the image reprojected
  flux-conservingly). The integer offset maximising the normalised cross-correlation
  within ``max_shift`` is refined to a sub-pixel one by least squares (cube band image =
  a · image shifted by (dx, dy) + b, cubic-spline shifts). The shift is applied to the
  cube's WCS (``CRPIX`` += (dx, dy)), so that the image's astrometry is the reference.
  Offsets beyond ``max_shift`` (arcsec) raise ValueError: a real WCS error of an IFS cube is
  ≲ 1–2″, anything larger is a wrong field, filter or image.
* :func:`blur_image`, :func:`blur_photometry`, :func:`blur_cube` — convolution with a
  Gaussian of FWHM sqrt(target² − own²) (:func:`pixedfit.ifs.spatial.discrete_gaussian_kernel`,
  exact for pixelated data), variances with the squared kernel. Neighbouring pixels become
  correlated (the correlation is not stored); use this when the cube's PSF is the broadest
  of the data set and the images must be brought to it.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage, optimize
from scipy.signal import fftconvolve

from ..cubes import FluxCube
from ..filters import filter_weights
from ..images.align import reproject_image
from ..lines import to_vacuum
from ..validation import pixel_scale_arcsec, require_celestial_wcs
from .operators import discrete_gaussian_kernel, psf_matching_kernels
from .readers import IFSCube

__all__ = [
    "Registration",
    "band_image",
    "blur_cube",
    "blur_image",
    "blur_photometry",
    "register_cube",
    "register_to_photometry",
]

#: Default ``min_coverage`` of the band image used for registration (its flux scale does
#: not matter there, only its shape).
REGISTER_MIN_COVERAGE = 0.8


# --------------------------------------------------------------------------- blurring


def _blur_kernel(own: float, target: float, pixel_scale: float, what: str) -> NDArray:
    if not (np.isfinite(target) and target > 0):
        raise ValueError(f"target_fwhm: must be finite and > 0 (arcsec), got {target}")
    if not (np.isfinite(own) and own >= 0):
        raise ValueError(f"{what}: the PSF FWHM must be finite and >= 0, got {own}")
    if own > target * 1.0001:
        raise ValueError(f"{what}: its PSF FWHM {own:.4g}\" is broader than target_fwhm "
                         f"{target:.4g}\": a PSF cannot be sharpened")
    return discrete_gaussian_kernel(math.sqrt(max(target**2 - own**2, 0.0)) / pixel_scale)


def _convolve_stack(data: NDArray[np.float64], var: NDArray[np.float64] | None,
                    kernel: NDArray[np.float64]
                    ) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
    """Normalised convolution of (n, ny, nx) planes (NaN excluded and kept), var with K²."""
    if kernel.size == 1:
        return data.copy(), None if var is None else var.copy()
    k = kernel[None]
    good = np.isfinite(data)
    wgt = fftconvolve(good.astype(float), k, mode="same", axes=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        den = np.where(wgt > 1e-6, wgt, np.nan)
        out = fftconvolve(np.where(good, data, 0.0), k, mode="same", axes=(1, 2)) / den
        out[~good] = np.nan
        vout = None
        if var is not None:
            vg = good & np.isfinite(var)
            vout = fftconvolve(np.where(vg, var, 0.0), k**2, mode="same", axes=(1, 2)) / den**2
            vout = np.clip(vout, 0.0, None)
            vout[~vg] = np.nan
    return out, vout


def blur_image(image: ArrayLike, variance: ArrayLike | None, fwhm: float, target_fwhm: float,
               pixel_scale: float) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
    """Blur an image (or a stack of images) from PSF FWHM ``fwhm`` to ``target_fwhm``.

    Parameters
    ----------
    image : array_like, shape (ny, nx) or (nbands, ny, nx)
        Flux per pixel; NaN = no data (excluded, stays NaN).
    variance : array_like or None
        Its variance (same shape), convolved with the squared kernel.
    fwhm, target_fwhm : float
        PSF FWHM of the image and wanted FWHM, arcsec (target ≥ own).
    pixel_scale : float
        Pixel size, arcsec.

    Returns
    -------
    (image, variance) : the blurred arrays (variance None when not given).
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim not in (2, 3):
        raise ValueError(f"image: expected (ny, nx) or (nbands, ny, nx), got {img.shape}")
    if not (np.isfinite(pixel_scale) and pixel_scale > 0):
        raise ValueError(f"pixel_scale: must be finite and > 0, got {pixel_scale}")
    var = None
    if variance is not None:
        var = np.asarray(variance, dtype=np.float64)
        if var.shape != img.shape:
            raise ValueError(f"variance: shape {var.shape} differs from image {img.shape}")
    k = _blur_kernel(float(fwhm), float(target_fwhm), float(pixel_scale), "image")
    stack = img[None] if img.ndim == 2 else img
    vstack = None if var is None else (var[None] if var.ndim == 2 else var)
    out, vout = _convolve_stack(stack, vstack, k)
    if img.ndim == 2:
        return out[0], None if vout is None else vout[0]
    return out, vout


def blur_photometry(phot: FluxCube, target_fwhm: float, fwhm: float | None = None) -> FluxCube:
    """Blur every band of a PSF-matched flux cube to ``target_fwhm`` (arcsec).

    The result's header gets the new ``PSFFWHM`` and ``PSFBLUR`` (the original FWHM).
    Errors are propagated with the squared kernel; pixels outside the region stay outside.

    Parameters
    ----------
    phot : FluxCube
        The flux maps (with a WCS or a pixel scale).
    target_fwhm : float
        PSF FWHM of the result, arcsec.
    fwhm : float, optional
        Their present PSF FWHM, arcsec (default: the header's ``PSFFWHM``).

    Returns
    -------
    FluxCube
    """
    if not isinstance(phot, FluxCube):
        raise TypeError(f"phot: expected a FluxCube, got {type(phot).__name__}")
    own = fwhm if fwhm is not None else phot.header.get("PSFFWHM")
    if own is None:
        raise ValueError("phot: no PSFFWHM in the header: pass fwhm (arcsec)")
    scale = (pixel_scale_arcsec(phot.wcs) if phot.wcs is not None else phot.pixel_scale)
    if scale is None:
        raise ValueError("phot: neither a WCS nor pixel_scale: the pixel size is unknown")
    flux, var = blur_image(phot.flux, phot.flux_err**2, float(own), float(target_fwhm),
                           float(scale))
    hdr = phot.header.copy()
    hdr["PSFFWHM"] = (float(target_fwhm), "PSF FWHM [arcsec] after blurring")
    hdr["PSFBLUR"] = (float(own), "PSF FWHM [arcsec] before blurring")
    assert var is not None
    return FluxCube(flux, np.sqrt(var), phot.filters, region=phot.region, unit=phot.unit,
                    wcs=phot.wcs, z=phot.z, pixel_scale=phot.pixel_scale,
                    gal_ebv=phot.gal_ebv, header=hdr, stamp=phot.stamp)


def blur_cube(cube: IFSCube, target_fwhm: float, fwhm_tolerance: float = 0.01) -> IFSCube:
    """Blur every channel of an IFS cube to the PSF FWHM ``target_fwhm`` (arcsec).

    Channels are convolved with Gaussians of FWHM sqrt(target² − own(λ)²) (channels whose
    kernels agree within ``fwhm_tolerance`` share one); variances with the squared
    kernels, times the factor of the cube's spaxel covariance (``IFSCube.covariance``:
    Σ K (ρ ⋆ K) / Σ K² for a correlation function ρ, β(1 / Σ K²)² for a relation β(N));
    masked values excluded and kept masked. The covariance model of the result is that of
    the input (the blur adds correlation it does not describe). The result has ``psf_fwhm`` =
    ``target_fwhm`` at every wavelength.

    Parameters
    ----------
    cube : IFSCube
        The cube (its ``psf_fwhm`` at every wavelength must be below ``target_fwhm``).
    target_fwhm : float
        PSF FWHM of the result, arcsec.
    fwhm_tolerance : float
        Channels whose kernel FWHMs agree within this (arcsec) share one kernel.

    Returns
    -------
    IFSCube
    """
    if not isinstance(cube, IFSCube):
        raise TypeError(f"cube: expected an IFSCube, got {type(cube).__name__}")
    if not (np.isfinite(target_fwhm) and target_fwhm > 0):
        raise ValueError(f"target_fwhm: must be finite and > 0 (arcsec), got {target_fwhm}")
    group, kernels = psf_matching_kernels(cube.psf_fwhm_per_wave(), float(target_fwhm),
                                          cube.pixel_scale, fwhm_tolerance)
    flux = cube.flux.copy()
    var = cube.err**2
    cov = cube.covariance
    for gi, k in enumerate(kernels):
        ch = np.nonzero(group == gi)[0]
        flux[ch], var[ch] = _convolve_stack(cube.flux[ch], cube.err[ch] ** 2, k)
        if cov is not None and not cov.independent:  # spaxel covariance (uniform noise)
            kn = k / np.sum(k)
            if cov.kind == "kernel":
                gamma = float(np.sum(kn * fftconvolve(kn, np.asarray(cov.rho), mode="same"))
                              / np.sum(kn**2))
            else:
                gamma = float(cov.factor(1.0 / np.sum(kn**2))) ** 2
            var[ch] *= gamma
    return dataclasses.replace(cube, flux=flux, err=np.sqrt(var), mask=cube.mask.copy(),
                               psf_fwhm=float(target_fwhm),
                               psf_source=f"blurred to {float(target_fwhm):.4g}\"",
                               error_scale=None)


# --------------------------------------------------------------------------- band image


def band_image(cube: IFSCube, band: str, min_coverage: float = 0.99,
               min_good: float = 0.9) -> tuple[NDArray[np.float64], float]:
    """Synthetic image of a cube through a filter.

    Parameters
    ----------
    cube : IFSCube
    band : str
        Filter name (curves in vacuum; air wavelengths are converted).
    min_coverage : float
        Share of the filter's ∫ T λ dλ the cube must cover (see
        :func:`pixedfit.filters.filter_weights`).
    min_good : float
        Spaxels with less than this share of the filter weight in valid channels are NaN.

    Returns
    -------
    (image, missing) : photon-weighted mean f_λ (erg s⁻¹ cm⁻² Å⁻¹) per spaxel, shape
    (ny, nx), over the valid channels; and the missing share of the filter.
    """
    wave = to_vacuum(cube.wave, cube.wave_medium)
    fw = filter_weights(band, wave, min_coverage=min_coverage)
    nw, ny, nx = cube.shape
    good = ~cube.mask.reshape(nw, -1).T
    f = np.where(good, cube.flux.reshape(nw, -1).T, 0.0)
    num = fw.apply(f)[:, 0]
    den = fw.apply(good.astype(float))[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        img = np.where(den >= min_good, num / den, np.nan)
    return img.reshape(ny, nx), float(fw.missing[0])


# --------------------------------------------------------------------------- registration


@dataclass(frozen=True)
class Registration:
    """Result of :func:`register_cube`.

    Attributes
    ----------
    cube : IFSCube
        The cube with its WCS corrected (``CRPIX`` += (dx, dy)); data unchanged.
    shift_pix : (float, float)
        (dx, dy) in cube spaxels: where the cube shows a feature relative to where the
        image's WCS puts it.
    offset_arcsec : (float, float)
        Change of the sky position of the cube's centre, (ΔRA cos δ, ΔDec) in arcsec.
    offset : float
        Its length, arcsec.
    correlation : float
        Correlation coefficient of the cube band image and the shifted image.
    band : str
        Filter of the comparison.
    missing : float
        Share of the filter's ∫ T λ dλ outside the cube's wavelength range.
    """

    cube: IFSCube
    shift_pix: tuple[float, float]
    offset_arcsec: tuple[float, float]
    offset: float
    correlation: float
    band: str
    missing: float

    def __str__(self) -> str:
        return (f"IFS registration on {self.band}: cube WCS moved by "
                f"(dRA cos dec, dDec) = ({self.offset_arcsec[0]:+.3f}\", "
                f"{self.offset_arcsec[1]:+.3f}\") = {self.offset:.3f}\" "
                f"(dx, dy = {self.shift_pix[0]:+.3f}, {self.shift_pix[1]:+.3f} spaxels), "
                f"correlation {self.correlation:.3f}")


def _corr(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float(np.sum(a * a) * np.sum(b * b)))
    return float(np.sum(a * b) / den) if den > 0 else 0.0


def _integer_peak(ref: NDArray, mov: NDArray, valid: NDArray, smax: int
                  ) -> tuple[int, int, float]:
    """Integer (dy, dx) within ±smax maximising corr(ref(x), mov(x − d)) over valid pairs."""
    ny, nx = ref.shape
    best = (0, 0, -2.0)
    min_pairs = max(16, int(0.25 * valid.sum()))
    for dy in range(-smax, smax + 1):
        for dx in range(-smax, smax + 1):
            ys = slice(max(dy, 0), ny + min(dy, 0))
            xs = slice(max(dx, 0), nx + min(dx, 0))
            ym = slice(max(-dy, 0), ny + min(-dy, 0))
            xm = slice(max(-dx, 0), nx + min(-dx, 0))
            ok = valid[ys, xs] & valid[ym, xm]
            if ok.sum() < min_pairs:
                continue
            c = _corr(ref[ys, xs][ok], mov[ym, xm][ok])
            if c > best[2]:
                best = (dy, dx, c)
    return best


def _shifted_wcs(wcs: WCS, dx: float, dy: float) -> WCS:
    out = wcs.deepcopy()
    out.wcs.crpix = [out.wcs.crpix[0] + dx, out.wcs.crpix[1] + dy]
    out.wcs.set()
    return out


def register_cube(
    cube: IFSCube,
    image: ArrayLike,
    image_wcs: WCS | fits.Header,
    band: str,
    image_psf_fwhm: float,
    max_shift: float = 3.0,
    min_coverage: float = REGISTER_MIN_COVERAGE,
    min_correlation: float = 0.5,
) -> Registration:
    """Register an IFS cube on an image by cross-correlating its synthetic band image.

    Parameters
    ----------
    cube : IFSCube
    image : array_like, shape (ny, nx)
        The image (any flux unit; NaN = no data).
    image_wcs : WCS or header
        Celestial WCS of the image (the astrometric reference).
    band : str
        Filter of the image.
    image_psf_fwhm : float
        PSF FWHM of the image, arcsec.
    max_shift : float
        Largest offset searched and accepted, arcsec (default 3″).
    min_coverage : float
        Share of the filter the cube must cover (default 0.8: only the image's shape
        matters here).
    min_correlation : float
        Below this correlation after the shift the registration is refused.

    Returns
    -------
    Registration

    Raises
    ------
    ValueError
        No overlap, an offset beyond ``max_shift``, a correlation below
        ``min_correlation``, bad arguments.
    """
    if not isinstance(cube, IFSCube):
        raise TypeError(f"cube: expected an IFSCube, got {type(cube).__name__}")
    if not (np.isfinite(max_shift) and max_shift > 0):
        raise ValueError(f"max_shift: must be finite and > 0 (arcsec), got {max_shift}")
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"image: expected a 2-D image, got shape {img.shape}")
    iwcs = require_celestial_wcs(image_wcs, "image_wcs")
    if not (np.isfinite(image_psf_fwhm) and image_psf_fwhm > 0):
        raise ValueError(f"image_psf_fwhm: must be finite and > 0, got {image_psf_fwhm}")
    ref, missing = band_image(cube, band, min_coverage=min_coverage)
    scale = cube.pixel_scale
    cube_psf = float(np.median(cube.psf_fwhm_per_wave()))
    target = max(cube_psf, float(image_psf_fwhm))
    if image_psf_fwhm < target:
        img, _ = blur_image(img, None, float(image_psf_fwhm), target, pixel_scale_arcsec(iwcs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mov, _ = reproject_image(np.where(np.isfinite(img), img, np.nan), iwcs, cube.wcs,
                                 ref.shape)
    if cube_psf < target:
        ref, _ = blur_image(ref, None, cube_psf, target, scale)
    valid = np.isfinite(ref) & np.isfinite(mov)
    if valid.sum() < 25:
        raise ValueError("image: it does not overlap the cube (fewer than 25 common spaxels)")
    smax = math.ceil(max_shift / scale) + 1
    dy0, dx0, _ = _integer_peak(np.where(valid, ref, 0.0), np.where(valid, mov, 0.0), valid,
                                smax)
    # sub-pixel refinement: ref ≈ a · mov(x − d) + b, on a fixed set of pixels that stay
    # valid for every shift within 1.5 spaxels of the integer peak; values normalised
    norm_r = float(np.max(np.abs(ref[valid])))
    norm_m = float(np.max(np.abs(mov[valid])))
    if not (norm_r > 0 and norm_m > 0):
        raise ValueError("registration: the cube band image or the image is empty")
    ref_n = np.where(valid, ref / norm_r, 0.0)
    fill = np.where(valid, mov / norm_m, 0.0)
    ok = ndimage.binary_erosion(
        valid & (ndimage.shift(valid.astype(float), (dy0, dx0), order=0, cval=0.0) > 0.5),
        iterations=2)
    if ok.sum() < 16:
        raise ValueError("registration: too few spaxels in common after the shift")

    def fit(d: NDArray[np.float64]) -> tuple[float, NDArray]:
        m = ndimage.shift(fill, d, order=3, mode="nearest")
        a = np.vstack([m[ok], np.ones(int(ok.sum()))]).T
        coef, *_ = np.linalg.lstsq(a, ref_n[ok], rcond=None)
        return float(np.mean((ref_n[ok] - a @ coef) ** 2)), m

    sol = optimize.minimize(lambda d: fit(d)[0], x0=np.array([dy0, dx0], dtype=float),
                            method="Nelder-Mead",
                            options={"xatol": 1e-3, "fatol": 1e-12, "initial_simplex":
                                     np.array([[dy0, dx0], [dy0 + 0.5, dx0],
                                               [dy0, dx0 + 0.5]], dtype=float)})
    dy, dx = (float(v) for v in sol.x)
    if abs(dy - dy0) > 1.5 or abs(dx - dx0) > 1.5:
        raise ValueError("registration: the sub-pixel refinement did not converge near the "
                         "cross-correlation peak")
    _, m = fit(sol.x)
    corr = _corr(ref_n[ok], m[ok])
    new_wcs = _shifted_wcs(cube.wcs, dx, dy)
    cy, cx = (ref.shape[0] - 1) / 2.0, (ref.shape[1] - 1) / 2.0
    ra0, dec0 = cube.wcs.pixel_to_world_values(cx, cy)
    ra1, dec1 = new_wcs.pixel_to_world_values(cx, cy)
    dra = ((float(ra1) - float(ra0) + 180.0) % 360.0 - 180.0) * math.cos(
        math.radians(float(dec0))) * 3600.0
    ddec = (float(dec1) - float(dec0)) * 3600.0
    offset = math.hypot(dra, ddec)
    if offset > max_shift:
        raise ValueError(
            f"the offset between the cube and the image ({offset:.3g}\") exceeds max_shift "
            f"= {max_shift:.3g}\": check the band ({band}), the image and its WCS, or raise "
            f"max_shift")
    if corr < min_correlation:
        raise ValueError(
            f"registration on {band}: the cube's band image and the image correlate poorly "
            f"(r = {corr:.2f} < min_correlation = {min_correlation}); not applied")
    hdr = cube.header.copy()
    hdr["REGBAND"] = (band, "band of the IFS registration")
    hdr["REGDRA"] = (dra, "[arcsec] registration shift dRA cos(dec)")
    hdr["REGDDEC"] = (ddec, "[arcsec] registration shift dDec")
    new = dataclasses.replace(cube, wcs=new_wcs, header=hdr, mask=cube.mask.copy())
    return Registration(cube=new, shift_pix=(dx, dy), offset_arcsec=(dra, ddec),
                        offset=offset, correlation=corr, band=band, missing=missing)


def register_to_photometry(cube: IFSCube, phot: FluxCube, band: str | None = None,
                           max_shift: float = 3.0, psf_fwhm: float | None = None,
                           min_coverage: float = REGISTER_MIN_COVERAGE) -> Registration:
    """Register a cube on one band of a flux cube (:func:`register_cube`).

    Parameters
    ----------
    cube : IFSCube
        The cube to register.
    phot : FluxCube
        The flux maps (with a WCS).
    band : str, optional
        Band of the image to register on; default the band whose filter the cube covers
        best (ties: the first).
    max_shift : float
        Largest offset accepted, arcsec (larger: ValueError).
    psf_fwhm : float, optional
        PSF FWHM of the image, arcsec (default: the header's ``PSFFWHM``).
    min_coverage : float
        Smallest fraction of the filter curve the cube must cover for its band image.

    Returns
    -------
    Registration
    """
    if not isinstance(phot, FluxCube) or phot.wcs is None:
        raise ValueError("phot: a FluxCube with a WCS is required for registration")
    own = psf_fwhm if psf_fwhm is not None else phot.header.get("PSFFWHM")
    if own is None:
        raise ValueError("phot: no PSFFWHM in the header: pass psf_fwhm (arcsec)")
    wave = to_vacuum(cube.wave, cube.wave_medium)
    if band is None:
        best, best_cov = None, -1.0
        for name in phot.filters:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    cov = 1.0 - filter_weights(name, wave, min_coverage=min_coverage).missing[0]
            except ValueError:
                continue
            if cov > best_cov:
                best, best_cov = name, cov
        if best is None:
            raise ValueError(f"no band of the photometry ({', '.join(phot.filters)}) is "
                             f"covered to {min_coverage:.0%} by the cube: pass band")
        band = best
    if band not in phot.filters:
        raise ValueError(f"band: {band!r} is not a band of the photometry")
    b = phot.filters.index(band)
    img = np.where(phot.region, phot.flux[b], np.nan)
    return register_cube(cube, img, phot.wcs, band, float(own), max_shift=max_shift,
                         min_coverage=min_coverage)
