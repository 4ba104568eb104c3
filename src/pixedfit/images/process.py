"""The image-processing pipeline object :class:`ImageSet` (piXedfit's ``images_processing``).

Steps for each band (all state lives on the object; files go to ``output_dir`` only):

1. read the science image (and variance, or estimate it from the background RMS), check
   the WCS and that the image covers the target; optional background subtraction;
2. cut a region around the target large enough for the final stamp plus the kernel;
3. PSF matching to the target band (the worst resolution unless given): science image
   convolved with the kernel K, variance with K²;
4. flux-conserving reprojection onto the grid of the coarsest image (``stamp_size`` pixels
   centred on the target), variance propagated;
5. a Monte Carlo of steps 3-4 with white noise gives the true pixel-variance factor and the
   correlation ρ between output pixels (``ImageSet.noise``), used for honest binned errors.

Then :meth:`ImageSet.segmentation`, :meth:`ImageSet.galaxy_region` and
:meth:`ImageSet.flux_map` (→ :class:`pixedfit.cubes.FluxCube`).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS
from numpy.typing import NDArray

from .._paths import atomic_path
from ..cubes import FluxCube
from ..filters import cwave_filters
from ..units import sky_position
from ..validation import as_image, pixel_scale_arcsec, require_celestial_wcs
from . import psf as _psf
from .align import (
    ChainNoise,
    chain_noise_correlation,
    cutout,
    reproject_image,
    set_pixel_scale,
    target_grid,
)
from .background import subtract_background
from .fluxmap import FluxMapInput, build_flux_cube
from .instruments import Instrument, check_header_unit, get_instrument
from .regions import (
    BackgroundNoise,
    RegionCheck,
    background_noise,
    central_segment,
    check_region,
    ellipse_region,
    mask_stars,
    read_region_mask,
    segmentation_map,
    warn_region,
)
from .regions import galaxy_region as _union
from .variance import variance_from_background

__all__ = ["ImageSet", "StampBand", "read_noise_correlation", "read_psf"]

#: Largest stamp side (pixels) chosen from the data's footprint when stamp_size is not given.
MAX_AUTO_STAMP = 301
#: Ratio between a WCS pixel scale and the instrument's (either way) beyond which a warning
#: is given (drizzled mosaics are often at half the detector pixel or finer).
PIXEL_SCALE_RATIO = 3.0


def read_psf(obj: Any, name: str) -> tuple[NDArray[np.float64], float | None]:
    """A PSF image and its pixel scale (arcsec, None when unknown).

    The scale of a file is read from PIXELSCL (WebbPSF), then from a celestial CD/CDELT;
    without any, None (the caller then assumes the pixel scale of the band's image).

    Parameters
    ----------
    obj : path-like, array_like or tuple
        A FITS path, an array, or a tuple (path or array, pixel scale in arcsec).
    name : str
        Name of the argument, for the error messages.

    Returns
    -------
    psf : ndarray, shape (k, k)
    scale : float or None
        Its pixel scale, arcsec.
    """
    scale: float | None = None
    if isinstance(obj, tuple):
        if len(obj) != 2:
            raise ValueError(f"{name}: expected (PSF, pixel scale in arcsec)")
        obj, scale = obj
        if scale is not None and not (np.isfinite(scale) and float(scale) > 0):
            raise ValueError(f"{name}: pixel scale must be > 0 arcsec, got {scale!r}")
    if isinstance(obj, str | os.PathLike):
        path = Path(obj)
        if not path.is_file():
            raise FileNotFoundError(f"{name}: PSF file {path} not found")
        with fits.open(path) as hdul:
            hdu = next((h for h in hdul if h.data is not None and h.data.ndim == 2), None)
            if hdu is None:
                raise ValueError(f"{name}: {path} has no 2-D image HDU")
            data, hdr = np.array(hdu.data, dtype=np.float64), hdu.header
        if scale is None and "PIXELSCL" in hdr:
            scale = float(hdr["PIXELSCL"])
        elif scale is None and "CTYPE1" in hdr:
            try:
                scale = pixel_scale_arcsec(require_celestial_wcs(hdr, name))
            except ValueError:
                scale = None
    else:
        data = np.asarray(obj, dtype=np.float64)
    data = as_image(data, name)
    return data, None if scale is None else float(scale)

PathLike = str | os.PathLike[str]


@dataclass
class StampBand:
    """One processed band on the common grid (native units).

    Attributes
    ----------
    image, variance : ndarray (y, x)
        PSF-matched, reprojected image and its true pixel variance.
    noise : ChainNoise
        Pixel-variance factor and correlation ρ of the chain.
    kernel : ndarray or None
        Kernel used (None: no convolution).
    header : fits.Header
        Original science header (zero points...).
    """

    image: NDArray[np.float64]
    variance: NDArray[np.float64]
    noise: ChainNoise
    kernel: NDArray[np.float64] | None
    header: fits.Header


def _check_count(value: Any, name: str, minimum: int) -> int:
    """An integer >= minimum, or TypeError / ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _read(obj: Any, name: str) -> tuple[NDArray[np.float64], fits.Header]:
    """Image data and header from a path, HDU, HDUList or (array, header) tuple."""
    if isinstance(obj, str | os.PathLike):
        path = Path(obj)
        if not path.is_file():
            raise FileNotFoundError(f"{name}: file {path} not found")
        with warnings.catch_warnings():
            # astropy only warns about a file shorter than its headers say, then fails later
            warnings.filterwarnings("error", message=".*truncated", category=AstropyUserWarning)
            try:  # our own file handle: closed even when fits.open itself fails
                with open(path, "rb") as handle, fits.open(handle) as hdul:
                    hdu = next((h for h in hdul if h.data is not None and h.data.ndim == 2),
                               None)
                    if hdu is not None:
                        return np.array(hdu.data, dtype=np.float64), hdu.header.copy()
            except (OSError, TypeError, ValueError, AstropyUserWarning) as exc:
                raise ValueError(f"{name}: cannot read the FITS file {path}: it is truncated "
                                 f"or damaged ({exc})") from exc
        raise ValueError(f"{name}: {path} has no 2-D image HDU")
    if isinstance(obj, fits.HDUList):
        return _read(obj[0], name)
    if isinstance(obj, fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU):
        return np.array(obj.data, dtype=np.float64), obj.header.copy()
    if isinstance(obj, tuple) and len(obj) == 2:
        data, hdr = obj
        if isinstance(hdr, WCS):
            hdr = hdr.to_header()
        if not isinstance(hdr, fits.Header):
            raise TypeError(f"{name}: expected (array, fits.Header or WCS)")
        return np.array(data, dtype=np.float64), hdr
    if isinstance(obj, np.ndarray):
        raise ValueError(f"{name}: a bare array has no WCS; give (array, header) or a FITS file")
    raise TypeError(f"{name}: expected a FITS path, HDU or (array, header)")


class ImageSet:
    """Multi-band images of one galaxy → PSF-matched, aligned stamps → flux cube.

    Parameters
    ----------
    filters : sequence of str
        Filter names (sorted by wavelength internally).
    sci_img : mapping filter → FITS path, HDU or (array, header)
        Science images with a celestial WCS, in the native unit of the instrument entry
        (see :mod:`pixedfit.images.instruments`; override with ``instruments``).
    var_img : mapping filter → path, HDU, array or None, optional
        Variance images (same grid as the science image). Missing/None: estimated from
        the background RMS (:func:`pixedfit.images.variance.variance_from_background`).
    ra, dec : float or str
        Target coordinates in degrees (ICRS), or text read by
        :func:`pixedfit.units.sky_position` (e.g. ``"10:00:28.6"``, ``"+02:12:21"``).
    output_dir : path-like
        Folder for every file written (created if needed). Required: nothing is written
        to the current directory.
    z : float, optional
        Redshift (metadata of the cube).
    stamp_size : (ny, nx), optional
        Size of the final stamps in pixels of the alignment grid. Default: the largest
        odd square centred on the target that every image covers (after a margin for the
        PSF kernel), capped at :data:`MAX_AUTO_STAMP` pixels. A warning is given when more
        than half of the stamp has no data in some band.
    instruments : mapping filter → mapping, optional
        Instrument overrides or user-defined entries (``pixel_scale``, ``psf_fwhm``,
        ``unit``, ``calib_err``...).
    psfs : mapping filter → PSF, optional
        PSF images (FITS path, array, or (path or array, pixel scale [arcsec]); see
        :func:`read_psf`: without a scale, the PSF is taken to be sampled like the band's
        image). Kernels between two bands with PSF images are built from them with
        ``kernel_method``.
    kernel_method : {"wiener", "photutils"}
        Matching-kernel method (:func:`pixedfit.images.psf.matching_kernel`).
    kernel_tolerance : float
        Every kernel is checked (:func:`pixedfit.images.psf.kernel_encircled_energy`):
        the encircled energy of the band's PSF ⊗ kernel against the target PSF at radii ≥
        the target FWHM; a deviation above this fraction (default 2 %) gives a warning.
        The results are in :attr:`kernel_checks` and the stamp/flux-map headers
        (``KEEDEV``).
    mask_img : mapping filter → FITS path, HDU or array, optional
        Pixel masks on the science image's grid: non-zero = ignore (neighbours,
        artefacts). Masked pixels become NaN before background estimation and PSF
        matching, and are left out of the galaxy region.
    pixel_scale : mapping filter → float, optional
        Pixel scales (arcsec) stated by the user: the image's WCS is given this scale
        (:func:`pixedfit.images.align.set_pixel_scale`), e.g. for headers whose PC matrix
        lost its rotation terms.
    pixel_scale_check : {"error", "warn", "off"}
        "error" (default): a header whose diagonal PC matrix has |PC| ≠ 1 next to a CDELT
        (rotation terms lost, the WCS scale is wrong) raises, and a WCS pixel scale more
        than :data:`PIXEL_SCALE_RATIO` times off the instrument's warns; "warn": both
        warn; "off": no check. State the scale with ``pixel_scale`` to pass.
    kernels : mapping filter → array, optional
        User kernels (at the image's pixel scale) from the band to the target PSF.
    psf_model : {"gaussian", "moffat", "double_gaussian"}
        Analytic PSF shape used, with the instrument FWHM, for bands without PSF images.
    psf_target : str, optional
        Target band of PSF matching (default: the largest FWHM).
    align_filter : str, optional
        Band whose grid is used (default: the largest pixel scale).
    psf_match, reproject : bool
        Switch steps 3 and 4 off (reproject=False needs images on one grid already).
    background : bool or mapping filter → bool
        Subtract a Background2D sky first.
    background_box : float or mapping filter → float, optional
        Background mesh box in arcsec (default: a tenth of each image, adapted to small
        images; see :func:`pixedfit.images.background.subtract_background`). Use boxes
        larger than the galaxy for extended objects.
    background_exclude : float or mapping filter → float, optional
        Radius (arcsec) around the target excluded from the background fit, on top of the
        sep source mask.
    background_mask_sources : bool or mapping filter → bool
        Mask sep-detected sources before the final background estimate.
    zeropoints : mapping filter → float, optional
        Zero points replacing the headers': AB magnitudes for ``counts_zp`` images; for
        2MASS (``DN_2mass``) and WISE (``DN``) the image's Vega ``MAGZP`` (an AB value for
        2MASS would make the fluxes 2.3–5.5× too high).
    noise_realisations : int
        Smallest number of Monte Carlo realisations for the noise correlation (0: no
        correlation, ρ = δ); more are run until the variance factor's standard error is
        below 2 % (at most ``noise_max_realisations``).
    noise_max_realisations : int
        Largest number of realisations.
    seed : int
        Random seed of the Monte Carlo.
    """

    def __init__(
        self,
        filters: Sequence[str],
        sci_img: Mapping[str, Any],
        ra: float,
        dec: float,
        output_dir: PathLike,
        *,
        var_img: Mapping[str, Any] | None = None,
        z: float | None = None,
        stamp_size: tuple[int, int] | None = None,
        instruments: Mapping[str, Mapping[str, Any]] | None = None,
        psfs: Mapping[str, Any] | None = None,
        kernels: Mapping[str, Any] | None = None,
        kernel_method: str = "wiener",
        kernel_tolerance: float = 0.02,
        mask_img: Mapping[str, Any] | None = None,
        pixel_scale: Mapping[str, float] | None = None,
        pixel_scale_check: str = "error",
        psf_model: str = "gaussian",
        psf_target: str | None = None,
        align_filter: str | None = None,
        psf_match: bool = True,
        reproject: bool = True,
        background: bool | Mapping[str, bool] = False,
        background_box: float | Mapping[str, float] | None = None,
        background_exclude: float | Mapping[str, float] | None = None,
        background_mask_sources: bool | Mapping[str, bool] = True,
        zeropoints: Mapping[str, float] | None = None,
        noise_realisations: int = 8,
        noise_max_realisations: int = 128,
        seed: int = 0,
    ) -> None:
        if isinstance(filters, str) or len(filters) == 0:
            raise ValueError("filters: give a non-empty list of filter names")
        if len(set(filters)) != len(filters):
            raise ValueError("filters: duplicated names")
        ra, dec = sky_position(ra, dec)
        _check_count(noise_realisations, "noise_realisations", 0)
        _check_count(seed, "seed", 0)
        if output_dir is None:
            raise ValueError("output_dir: an output folder is required")
        missing = [f for f in filters if f not in sci_img]
        if missing:
            raise ValueError(f"sci_img: no science image for {missing}")
        if psf_model not in ("gaussian", "moffat", "double_gaussian"):
            raise ValueError("psf_model: use 'gaussian', 'moffat' or 'double_gaussian'")
        if stamp_size is not None:
            if isinstance(stamp_size, str | bytes) or np.ndim(stamp_size) != 1 or \
                    len(stamp_size) != 2:
                raise ValueError(f"stamp_size: give (ny, nx) in pixels, got {stamp_size!r}")
            for v in stamp_size:
                _check_count(v, "stamp_size", 0)
            ny, nx = (int(v) for v in stamp_size)
            if ny < 5 or nx < 5:
                raise ValueError("stamp_size: at least 5x5 pixels")
        if pixel_scale_check not in ("error", "warn", "off"):
            raise ValueError("pixel_scale_check: use 'error', 'warn' or 'off'")
        if kernel_method not in ("wiener", "photutils"):
            raise ValueError("kernel_method: use 'wiener' or 'photutils'")
        if not kernel_tolerance > 0:
            raise ValueError("kernel_tolerance: must be > 0")
        for opt_name, opt in (("mask_img", mask_img), ("pixel_scale", pixel_scale),
                              ("psfs", psfs), ("kernels", kernels)):
            extra = sorted(set(opt or {}) - set(filters))
            if extra:
                raise ValueError(f"{opt_name}: unknown filters {extra}")
        waves = cwave_filters(list(filters))
        self.filters: list[str] = [filters[i] for i in np.argsort(waves, kind="stable")]
        self.ra, self.dec, self.z = float(ra), float(dec), z
        # (ny, nx) once __init__ returns: None only until _footprint_stamp() below
        self.stamp_size: tuple[int, int] = cast(
            "tuple[int, int]", None if stamp_size is None else (ny, nx))
        self.output_dir = Path(output_dir)
        self.instruments: dict[str, Instrument] = {
            f: get_instrument(f, (instruments or {}).get(f)) for f in self.filters
        }
        # the PSFs and their pixel scales (arcsec; None filled in below with the image's)
        self.psfs: dict[str, tuple[NDArray[np.float64], float | None]] = {
            f: read_psf(v, f"psfs[{f}]") for f, v in (psfs or {}).items()}
        self.kernels = dict(kernels or {})
        self.kernel_method = kernel_method
        self.kernel_tolerance = float(kernel_tolerance)
        self.kernel_checks: dict[str, _psf.KernelCheck] = {}
        self.psf_model = psf_model
        self.psf_match, self.do_reproject = bool(psf_match), bool(reproject)
        self.zeropoints = dict(zeropoints or {})
        self.noise_realisations = int(noise_realisations)
        self.noise_max_realisations = max(int(noise_max_realisations),
                                          self.noise_realisations)
        self.seed = int(seed)

        def per_band(value: Any, what: str) -> dict[str, Any]:
            if isinstance(value, Mapping):
                extra = sorted(set(value) - set(filters))
                if extra:
                    raise ValueError(f"{what}: unknown filters {extra}")
                return dict(value)
            return dict.fromkeys(filters, value)

        bg = per_band(background, "background")
        bg_box = per_band(background_box, "background_box")
        bg_excl = per_band(background_exclude, "background_exclude")
        bg_mask = per_band(background_mask_sources, "background_mask_sources")

        self._images: dict[str, NDArray[np.float64]] = {}
        self._variances: dict[str, NDArray[np.float64]] = {}
        self._headers: dict[str, fits.Header] = {}
        self._wcs: dict[str, WCS] = {}
        self.pixel_scales: dict[str, float] = {}
        for f in self.filters:
            data, hdr = _read(sci_img[f], f"sci_img[{f}]")
            data = as_image(data, f"sci_img[{f}]", allow_nan=True)
            wcs = require_celestial_wcs(hdr, f"sci_img[{f}]")
            if pixel_scale and f in pixel_scale:
                wcs = set_pixel_scale(wcs, float(pixel_scale[f]))
            elif pixel_scale_check != "off":
                self._check_pixel_scale(f, wcs, pixel_scale_check)
            check_header_unit(self.instruments[f], hdr)
            if mask_img and mask_img.get(f) is not None:
                msrc = mask_img[f]
                mask = (np.asarray(msrc) if isinstance(msrc, np.ndarray)
                        else _read(msrc, f"mask_img[{f}]")[0])
                mask = as_image(mask, f"mask_img[{f}]", allow_nan=True, shape=data.shape)
                data[(mask != 0) | ~np.isfinite(mask)] = np.nan
            x, y = wcs.world_to_pixel_values(self.ra, self.dec)
            if not (-0.5 <= x < data.shape[1] - 0.5 and -0.5 <= y < data.shape[0] - 0.5):
                raise ValueError(f"sci_img[{f}]: image does not cover the target "
                                 f"(RA={ra}, Dec={dec} at pixel x={x:.1f}, y={y:.1f})")
            var_src = (var_img or {}).get(f)
            if bg.get(f, False) or var_src is None:
                scale = pixel_scale_arcsec(wcs)
                box_as, excl_as = bg_box.get(f), bg_excl.get(f)
                box = None if box_as is None else max(4, round(float(box_as) / scale))
                excl = None
                if excl_as is not None:
                    yy, xx = np.indices(data.shape)
                    excl = np.hypot(xx - x, yy - y) * scale <= float(excl_as)
                try:
                    res = subtract_background(data, box_size=box, mask=excl,
                                              mask_sources=bool(bg_mask.get(f, True)))
                except ValueError as exc:
                    why = "variance from the background" if var_src is None else "background"
                    raise ValueError(
                        f"{f}: {why} estimation failed on its {data.shape[0]}x"
                        f"{data.shape[1]} image: {exc}. Set background_box / "
                        f"background_mask_sources for {f} (TOML: [images.background_options."
                        f"{f}] box, mask_sources) or give a variance image") from None
                if bg.get(f, False):
                    data = res.subtracted
                    res.write(self.output_dir, f"{f}.fits", header=wcs.to_header())
            if var_src is None:
                var = variance_from_background(data, res.rms)
            elif isinstance(var_src, np.ndarray):
                var = as_image(var_src, f"var_img[{f}]", allow_nan=True, shape=data.shape)
            else:
                var = as_image(_read(var_src, f"var_img[{f}]")[0], f"var_img[{f}]",
                               allow_nan=True, shape=data.shape)
            if np.any(var[np.isfinite(var)] < 0):
                raise ValueError(f"var_img[{f}]: negative variances")
            var[~np.isfinite(data)] = np.nan
            self._images[f], self._variances[f] = data, var
            self._headers[f], self._wcs[f] = hdr, wcs
            self.pixel_scales[f] = pixel_scale_arcsec(wcs)
        for f, (arr, scl) in self.psfs.items():
            if scl is None:  # a PSF file without scale: sampled like its image
                self.psfs[f] = (arr, self.pixel_scales[f])
        # every filter has a pixel scale and an instrument FWHM (the keys of both dicts)
        self.align_filter = align_filter or max(
            self.filters, key=cast("Callable[[str], float]", self.pixel_scales.get))
        if self.align_filter not in self.filters:
            raise ValueError(f"align_filter: {align_filter!r} is not one of the filters")
        fwhm = {f: self.instruments[f].psf_fwhm for f in self.filters}
        self.psf_target = psf_target or max(self.filters,
                                            key=cast("Callable[[str], float]", fwhm.get))
        if self.psf_target not in self.filters:
            raise ValueError(f"psf_target: {psf_target!r} is not one of the filters")
        if self.stamp_size is None:
            self.stamp_size = self._footprint_stamp()
        self.stamps: dict[str, StampBand] = {}
        self.segmentation_maps: dict[str, NDArray[np.int32]] = {}
        self.region: NDArray[np.bool_] | None = None
        self.region_check: RegionCheck | None = None
        self.region_method: str | None = None
        self.region_source = ""
        self.background: dict[str, BackgroundNoise] = {}
        self.grid_wcs: WCS | None = None

    # ------------------------------------------------------------------ kernels
    def _psf_image(self, f: str, scale: float) -> NDArray[np.float64]:
        fwhm = self.instruments[f].psf_fwhm / scale
        if self.psf_model == "moffat":
            return _psf.moffat_psf(fwhm)
        if self.psf_model == "double_gaussian":
            return _psf.double_gaussian_psf(fwhm, 2.0 * fwhm, 0.1)
        return _psf.gaussian_psf(fwhm)

    def kernel(self, f: str) -> NDArray[np.float64] | None:
        """Kernel from band ``f`` to the target PSF at ``f``'s pixel scale (None: identity)."""
        if not self.psf_match or f == self.psf_target:
            return None
        scale = self.pixel_scales[f]
        if f in self.kernels:
            return _psf.normalize_psf(self.kernels[f], f"kernels[{f}]")
        t = self.psf_target
        if f in self.psfs and t in self.psfs:
            (src, s_scale), (tgt, t_scale) = self.psfs[f], self.psfs[t]
            # the scales are set (__init__ fills in the missing ones)
            return _psf.matching_kernel(src, tgt, cast(float, s_scale), cast(float, t_scale),
                                        image_scale=scale,
                                        method=self.kernel_method)
        fs, ft = self.instruments[f].psf_fwhm, self.instruments[t].psf_fwhm
        if fs >= ft:
            return None
        if self.psf_model == "gaussian":
            return _psf.gaussian_kernel(fs, ft, scale)
        return _psf.matching_kernel(self._psf_image(f, scale), self._psf_image(t, scale),
                                    scale, scale, method=self.kernel_method)

    def check_kernel(self, f: str, kernel: NDArray[np.float64]) -> _psf.KernelCheck:
        """Encircled-energy check of band ``f``'s kernel at ``f``'s pixel scale: the band's
        PSF (image, or the analytic model of the instrument FWHM) ⊗ kernel against the
        target PSF, at radii ≥ the target FWHM.

        Parameters
        ----------
        f : str
            The band.
        kernel : ndarray, shape (k, k)
            Its matching kernel at its pixel scale (:meth:`kernel`).

        Returns
        -------
        KernelCheck
        """
        scale, t = self.pixel_scales[f], self.psf_target
        if f in self.psfs:
            src_arr, s_scale = cast("tuple[NDArray[np.float64], float]", self.psfs[f])
            src = (_psf.resample_psf(_psf.center_psf(src_arr), s_scale, scale)
                   if not math.isclose(s_scale, scale, rel_tol=1e-6) else src_arr)
        else:
            src = self._psf_image(f, scale)
        if t in self.psfs:
            tgt_arr, t_scale = cast("tuple[NDArray[np.float64], float]", self.psfs[t])
            tgt = (_psf.resample_psf(_psf.center_psf(tgt_arr), t_scale, scale)
                   if not math.isclose(t_scale, scale, rel_tol=1e-6) else tgt_arr)
        else:
            tgt = self._psf_image(t, scale)
        fwhm = _psf.psf_fwhm(tgt) if t in self.psfs else self.instruments[t].psf_fwhm / scale
        return _psf.kernel_encircled_energy(src, tgt, kernel, fwhm,
                                            tolerance=self.kernel_tolerance)

    def _check_pixel_scale(self, f: str, wcs: WCS, action: str) -> None:
        """Check a WCS's pixel scale (see ``pixel_scale_check``).

        A diagonal PC matrix with equal |PC| different from 1 next to a CDELT is the
        signature of a rotation matrix whose off-diagonal terms were lost: the WCS scale
        is CDELT × |PC| instead of CDELT. With ``action="error"`` this raises; a scale
        more than :data:`PIXEL_SCALE_RATIO` times off the instrument's warns.
        """
        got, nominal = pixel_scale_arcsec(wcs), self.instruments[f].pixel_scale
        ratio = got / nominal
        cel = wcs.celestial.wcs
        fixes = (f"State the true scale (pixel_scale={{'{f}': arcsec}}; TOML "
                 f"[images.pixel_scale] {f} = ...), or set pixel_scale_check='warn' or 'off'.")
        if not cel.has_cd():
            pc = np.asarray(cel.get_pc(), dtype=np.float64)
            cdelt = np.abs(np.asarray(cel.get_cdelt(), dtype=np.float64))
            diag = np.abs(np.diag(pc))
            if (np.all(pc[~np.eye(2, dtype=bool)] == 0) and np.all(cdelt != 1.0)
                    and abs(diag[0] - diag[1]) < 1e-3 * diag[0]
                    and abs(diag[0] - 1.0) > 1e-3):
                msg = (f"sci_img[{f}]: the header's PC matrix is diagonal with |PC| = "
                       f"{diag[0]:.4f} while CDELT = {cdelt[0] * 3600:.4g}\": the rotation "
                       "terms of PC were probably lost, and the WCS pixel scale "
                       f"({got:.4g}\") is CDELT × |PC| instead of CDELT (the instrument "
                       f"entry says {nominal:.4g}\"). " + fixes)
                if action == "error":
                    raise ValueError(msg)
                warnings.warn(msg, UserWarning, stacklevel=3)
                return
        if not 1.0 / PIXEL_SCALE_RATIO <= ratio <= PIXEL_SCALE_RATIO:
            warnings.warn(f"sci_img[{f}]: the WCS pixel scale is {got:.4g}\" but the "
                          f"instrument entry of {f} says {nominal:.4g}\" (ratio "
                          f"{ratio:.2f}); fluxes of surface-brightness images scale with "
                          "the pixel area. " + fixes, UserWarning, stacklevel=3)

    def _footprint_stamp(self) -> tuple[int, int]:
        """Largest odd stamp (alignment-grid pixels) centred on the target inside every
        image, minus a margin for the kernel (see ``stamp_size``)."""
        fa = self.align_filter
        s_out = self.pixel_scales[fa]
        half_y, half_x = [], []
        for f in self.filters:
            x, y = self._wcs[f].world_to_pixel_values(self.ra, self.dec)
            good = np.isfinite(self._images[f])
            rows, cols = np.flatnonzero(good.any(axis=1)), np.flatnonzero(good.any(axis=0))
            margin = 0.0
            if self.psf_match and f != self.psf_target:
                t_fwhm = self.instruments[self.psf_target].psf_fwhm
                margin = 2.0 * t_fwhm / self.pixel_scales[f]
            ratio = self.pixel_scales[f] / s_out
            dx = min(float(x) - cols[0], cols[-1] - float(x)) - margin - 0.5
            dy = min(float(y) - rows[0], rows[-1] - float(y)) - margin - 0.5
            half_x.append(dx * ratio)
            half_y.append(dy * ratio)
        cap = (MAX_AUTO_STAMP - 1) // 2
        hy = int(min(cap, max(2, math.floor(min(half_y)))))
        hx = int(min(cap, max(2, math.floor(min(half_x)))))
        return 2 * hy + 1, 2 * hx + 1

    # ------------------------------------------------------------------ pipeline
    def process(self, write: bool = True) -> dict[str, StampBand]:
        """Run cut-out, PSF matching, reprojection and the noise Monte Carlo for all bands.

        Writes ``stamp_<filter>.fits`` (SCI and VAR HDUs with the grid WCS) when ``write``.
        """
        fa = self.align_filter
        grid = target_grid(self._wcs[fa], self._images[fa].shape, self.ra, self.dec,
                           self.stamp_size)
        if not self.do_reproject:
            grid = cutout(self._images[fa], self._wcs[fa], self.ra, self.dec,
                          self.stamp_size)[2]
        self.grid_wcs = grid
        scale_out = self.pixel_scales[fa]
        t_fwhm = self.instruments[self.psf_target].psf_fwhm
        half = int(min(20, math.ceil(2.0 * t_fwhm / scale_out) + 1))
        for i, f in enumerate(self.filters):
            k = self.kernel(f)
            if k is not None:
                chk = self.check_kernel(f, k)
                self.kernel_checks[f] = chk
                if not chk.passed:
                    warnings.warn(
                        f"{f}: the PSF-matching kernel to {self.psf_target} fails the "
                        f"encircled-energy check: {chk.max_deviation:.1%} > "
                        f"{chk.tolerance:.0%} at radii >= the target FWHM; check the PSFs "
                        "(psfs) or the instrument FWHMs", UserWarning, stacklevel=2)
            ratio = scale_out / self.pixel_scales[f]
            extra = 0 if k is None else k.shape[0]
            size = cast("tuple[int, int]",  # (ny, nx) like stamp_size
                        tuple(math.ceil(n * ratio * 1.2) + extra + 4 for n in self.stamp_size))
            if not self.do_reproject:
                size = self.stamp_size
            img, var, wcs = cutout(self._images[f], self._wcs[f], self.ra, self.dec, size,
                                   variance=self._variances[f])
            if not self.do_reproject:
                self._check_same_grid(f, wcs)
            sb = self.instruments[f].surface_brightness

            def apply(x: NDArray[np.float64], k: NDArray[np.float64] | None = k,
                      wcs: WCS = wcs, sb: bool = sb) -> NDArray[np.float64]:
                y = x if k is None else _psf.convolve_image(x, None, k)[0]
                if not self.do_reproject:
                    return y
                return reproject_image(y, wcs, grid, self.stamp_size, surface_brightness=sb)[0]

            conv, var_conv = (img, var) if k is None else _psf.convolve_image(img, var, k)
            if self.do_reproject:
                out, var_out = reproject_image(conv, wcs, grid, self.stamp_size,
                                               variance=var_conv, surface_brightness=sb)
            else:
                out, var_out = conv, var_conv
            var_out = cast("NDArray[np.float64]", var_out)  # a variance in, a variance out
            if self.noise_realisations > 0:
                noise = chain_noise_correlation(
                    cast("NDArray[np.float64]", var), var_out, apply, half=half,
                    n_realisations=self.noise_realisations,
                    max_realisations=self.noise_max_realisations, seed=self.seed + i)
            else:
                rho = np.zeros((2 * half + 1,) * 2)
                rho[half, half] = 1.0
                noise = ChainNoise(1.0, rho)
            var_out = var_out * noise.pixel_factor
            self.stamps[f] = StampBand(out, var_out, noise, k, self._headers[f])
            if write:
                self._write_stamp(f)
        self._warn_empty()
        return self.stamps

    def _warn_empty(self) -> None:
        empty = {f: float(np.mean(~(np.isfinite(st.image) & np.isfinite(st.variance))))
                 for f, st in self.stamps.items()}
        worst = {f: v for f, v in empty.items() if v > 0.5}
        if worst:
            txt = ", ".join(f"{f} {v:.0%}" for f, v in worst.items())
            warnings.warn(f"most of the {self.stamp_size[0]}x{self.stamp_size[1]} stamp has "
                          f"no data ({txt}): the images do not cover it; give a smaller "
                          "stamp_size (or leave it unset to use the data's footprint)",
                          UserWarning, stacklevel=3)

    def _check_same_grid(self, f: str, wcs: WCS) -> None:
        """With reproject=False every cut-out must share the alignment band's grid."""
        ref = cast(WCS, self.grid_wcs)  # set by process() before the cut-outs
        probe = np.array([[0.0, 0.0], [self.stamp_size[1] - 1.0, self.stamp_size[0] - 1.0]])
        world = ref.pixel_to_world_values(probe[:, 0], probe[:, 1])
        back = np.array(wcs.world_to_pixel_values(*world)).T
        if np.max(np.abs(back - probe)) > 0.01:
            raise ValueError(f"sci_img[{f}]: not on the grid of {self.align_filter}; "
                             "use reproject=True")

    def _write_stamp(self, f: str) -> Path:
        st = self.stamps[f]
        hdr = cast(WCS, self.grid_wcs).to_header()  # stamps made: the grid is set
        hdr["FILTER"] = f
        hdr["PSFMATCH"] = (self.psf_target if self.psf_match else "none", "target PSF band")
        hdr["NOISEFAC"] = (st.noise.pixel_factor, "pixel variance factor applied")
        hdr["NOISEMC"] = (st.noise.n_realisations, "Monte Carlo realisations of NOISEFAC")
        if f in self.kernel_checks:
            chk = self.kernel_checks[f]
            hdr["KEEDEV"] = (chk.max_deviation, "kernel EE deviation at r >= target FWHM")
            hdr["KEEOK"] = (chk.passed, f"kernel EE within {chk.tolerance:.0%}")
        path = self.output_dir / f"stamp_{f}.fits"
        with atomic_path(path) as tmp:
            fits.HDUList([
                fits.PrimaryHDU(st.image, header=hdr),
                fits.ImageHDU(st.variance, header=hdr, name="VAR"),
                fits.ImageHDU(st.noise.rho, name="RHO"),
            ]).writeto(tmp, overwrite=True)
        return path

    def _require_stamps(self) -> None:
        if not self.stamps:
            raise RuntimeError("run ImageSet.process() first")

    # ------------------------------------------------------------------ regions
    def segmentation(
        self, thresh: float = 2.0, minarea: int = 30, deblend_nthresh: int = 32,
        deblend_cont: float = 0.005,
    ) -> dict[str, NDArray[np.bool_]]:
        """Per band, the sep segment containing the stamp centre (bool masks).

        ``thresh`` is in units of the band's background noise measured on its stamp
        (:func:`~pixedfit.images.regions.background_noise`, kept in :attr:`background`):
        a pixel is detected when the 3 × 3-smoothed, background-subtracted stamp exceeds
        ``thresh`` × σ_background. Holes of a segment without another object are filled.

        Parameters
        ----------
        thresh : float
            Detection threshold, background σ.
        minarea : int
            Smallest object, pixels.
        deblend_nthresh, deblend_cont
            sep's deblending parameters.

        Returns
        -------
        dict of str to ndarray of bool, shape (ny, nx)
            Band → its central segment.
        """
        self._require_stamps()
        if not (np.isfinite(thresh) and thresh > 0):
            raise ValueError("thresh: must be a positive number of background σ")
        out = {}
        self.background = {}
        for f, st in self.stamps.items():
            try:
                noise = background_noise(st.image, st.variance)
            except ValueError as exc:
                raise ValueError(f"{f}: {exc}") from exc
            self.background[f] = noise
            segm, _ = segmentation_map(st.image - noise.level, thresh=thresh, err=noise.sigma,
                                       minarea=minarea, deblend_nthresh=deblend_nthresh,
                                       deblend_cont=deblend_cont)
            self.segmentation_maps[f] = segm
            out[f] = central_segment(segm, fill_holes=True)
        self._central = out
        self._seg_thresh = float(thresh)
        return out

    def galaxy_region(
        self, bands: Sequence[str] | None = None, use_ellipse: bool = False,
        stars: Sequence[tuple[float, float, float]] | None = None,
        mask: PathLike | NDArray | None = None, max_fraction: float = 0.5, **ellipse: Any,
    ) -> NDArray[np.bool_]:
        """Union of the central segments of ``bands`` (default all), or an ellipse
        (``x_cent, y_cent, ell, pa, radius_sma`` in stamp pixels), or a user ``mask`` (FITS
        file on the stamp grid, or a bool array of the stamp shape); foreground ``stars``
        given as (RA, Dec, radius [arcsec]) are cut out; pixels without data in any band
        are removed.

        A :class:`~pixedfit.images.regions.RegionWarning` naming the bands (or the mask)
        is issued when the region touches the stamp edge or covers more than
        ``max_fraction`` of the stamp; the result is kept in :attr:`region_check`.

        Parameters
        ----------
        bands : sequence of str, optional
            Bands whose central segments are joined (default all).
        use_ellipse : bool
            Use the ellipse of ``ellipse`` instead of the segments.
        stars : sequence of (ra, dec, radius), optional
            Foreground stars to cut out: position in degrees, radius in arcsec.
        mask : path-like or ndarray of bool, optional
            A user region: FITS file on the stamp grid, or an array of the stamp shape.
        max_fraction : float
            Largest fraction of the stamp the region may cover before a warning.
        **ellipse
            ``x_cent, y_cent, ell, pa, radius_sma`` in stamp pixels
            (:func:`~pixedfit.images.regions.ellipse_region`).

        Returns
        -------
        ndarray of bool, shape (ny, nx)
        """
        self._require_stamps()
        if use_ellipse and mask is not None:
            raise ValueError("mask: give either use_ellipse=True or a mask, not both")
        if mask is not None:
            if isinstance(mask, str | os.PathLike):
                region = read_region_mask(mask, self.stamp_size, self.grid_wcs)
                source = f"mask file {mask}"
            else:
                region = np.asarray(mask)
                if region.shape != tuple(self.stamp_size):
                    raise ValueError(f"mask: shape {region.shape} differs from the stamp "
                                     f"{tuple(self.stamp_size)}")
                region = region.astype(bool)
                source = "user mask"
            self.region_method = "mask"
        elif use_ellipse:
            region = ellipse_region(self.stamp_size, **ellipse)
            source = "ellipse"
            self.region_method = "ellipse"
        else:
            if not hasattr(self, "_central"):
                self.segmentation()
            bands = list(bands) if bands is not None else self.filters
            unknown = [b for b in bands if b not in self._central]
            if unknown:
                raise ValueError(f"bands: unknown {unknown}")
            region = _union([self._central[b] for b in bands])
            checks = {b: check_region(self._central[b], max_fraction) for b in bands}
            flagged = [b for b in bands if checks[b].flagged] or \
                [max(bands, key=lambda b: checks[b].fraction)]
            source = "segments of " + ", ".join(
                f"{b} ({100 * checks[b].fraction:.0f} %"
                f"{', at the edge' if checks[b].touches_edge else ''})" for b in flagged)
            self.region_method = "segmentation"
        valid = np.all([np.isfinite(st.image) & np.isfinite(st.variance) & (st.variance > 0)
                        for st in self.stamps.values()], axis=0)
        region = region & valid
        if stars:
            scale = self.pixel_scales[self.align_filter]
            pix = []
            for sra, sdec, rad in stars:
                sx, sy = cast(WCS, self.grid_wcs).world_to_pixel_values(sra, sdec)
                pix.append((float(sx), float(sy), rad / scale))
            region = mask_stars(region, pix)
        if not region.any():
            raise ValueError("galaxy_region: empty region (no segment at the centre, or no "
                             "pixel with data in every band)")
        self.region_check = check_region(region, max_fraction)
        self.region_source = source
        warn_region(self.region_check, source)
        self.region = region
        return region

    # ------------------------------------------------------------------ flux map
    def flux_map(
        self, region: NDArray[np.bool_] | None = None, gal_ebv: float | None = None,
        dustmap: str | None = "SFD", scale_unit: float = 1e-17,
        name_out: str | None = "fluxmap.fits",
    ) -> FluxCube:
        """Build the :class:`FluxCube` (and write it to ``output_dir/name_out``).

        The per-band noise correlation ρ is written next to it as
        ``<name>_noise.fits`` (extension per band) and kept in :attr:`noise`.

        Parameters
        ----------
        region : ndarray of bool, shape (ny, nx), optional
            Galaxy region on the stamp grid (default: :attr:`region` of
            :meth:`galaxy_region`).
        gal_ebv : float, optional
            Galactic E(B−V); None reads it from ``dustmap`` (see
            :func:`~pixedfit.images.fluxmap.build_flux_cube`).
        dustmap : str or None
            Dust map of ``gal_ebv=None`` (``"SFD"`` or ``"Planck13"``); None: no correction.
        scale_unit : float
            Stored values are f_λ / scale_unit (erg s⁻¹ cm⁻² Å⁻¹).
        name_out : str or None
            File name in ``output_dir`` (None: not written).

        Returns
        -------
        FluxCube
        """
        self._require_stamps()
        reg = self.region if region is None else np.asarray(region, dtype=bool)
        if reg is None:
            raise ValueError("region: run galaxy_region() or pass a region")
        bands = [
            FluxMapInput(self.instruments[f], self.stamps[f].image, self.stamps[f].variance,
                         header=self._headers[f], rho=self.stamps[f].noise.rho,
                         zeropoint=self.zeropoints.get(f))
            for f in self.filters
        ]
        extra: dict[str, Any] = {
            "FSAMP": self.align_filter,
            "PSFFWHM": self.instruments[self.psf_target].psf_fwhm if self.psf_match else 0.0,
            "FPSFMTCH": self.psf_target if self.psf_match else "none"}
        for i, f in enumerate(self.filters):
            if f in self.kernel_checks:
                chk = self.kernel_checks[f]
                extra[f"KEEDEV{i}"] = (chk.max_deviation, "kernel EE deviation, r >= FWHM")
        if region is None and self.region_method is not None:
            extra["REGMETH"] = (self.region_method, "galaxy region: segmentation/ellipse/mask")
            if self.region_method == "segmentation":
                extra["REGTHR"] = (self._seg_thresh, "segmentation threshold [background sigma]")
            if cast(RegionCheck, self.region_check).flagged:  # set with region_method
                extra["REGWHY"] = (self.region_source, "source of the region flag")
        cube = build_flux_cube(bands, reg, self.grid_wcs, self.pixel_scales[self.align_filter],
                               self.ra, self.dec, z=self.z, gal_ebv=gal_ebv, dustmap=dustmap,
                               scale_unit=scale_unit, header_extra=extra)
        if name_out is not None:
            path = self.output_dir / name_out
            cube.write(path, overwrite=True)
            noise_path = path.with_name(path.stem + "_noise.fits")
            with atomic_path(noise_path) as tmp:
                hdus = [fits.PrimaryHDU()]
                for f in self.filters:
                    h = fits.ImageHDU(self.stamps[f].noise.rho, name="RHO")
                    h.header["FILTER"] = f
                    h.header["NOISEFAC"] = (self.stamps[f].noise.pixel_factor,
                                            "pixel variance factor (already applied)")
                    hdus.append(h)
                fits.HDUList(hdus).writeto(tmp, overwrite=True)
        return cube

    @property
    def noise(self) -> dict[str, ChainNoise]:
        """Per band noise properties (pixel factor, ρ) of the processed stamps."""
        return {f: st.noise for f, st in self.stamps.items()}


def read_noise_correlation(path: PathLike) -> dict[str, ChainNoise]:
    """Read the per-band noise correlation written next to a flux map
    (``<name>_noise.fits``: one ``RHO`` extension per band with FILTER and NOISEFAC)."""
    out: dict[str, ChainNoise] = {}
    with fits.open(path) as hdul:
        for hdu in hdul[1:]:
            if hdu.name != "RHO" or "FILTER" not in hdu.header:
                raise ValueError(f"{path}: extension {hdu.name!r} is not a RHO map of a band")
            rho = np.array(hdu.data, dtype=np.float64)
            if rho.ndim != 2 or rho.shape[0] != rho.shape[1] or rho.shape[0] % 2 == 0:
                raise ValueError(f"{path}: RHO of {hdu.header['FILTER']} is not odd-square")
            out[str(hdu.header["FILTER"])] = ChainNoise(float(hdu.header["NOISEFAC"]), rho)
    if not out:
        raise ValueError(f"{path}: no RHO extension found")
    return out
