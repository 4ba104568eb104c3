"""Cut-outs, reprojection onto a common grid, and the noise correlation of the whole chain.

Pixel coordinates are zero-based (astropy ``*_values`` / ``Cutout2D`` convention; the
original code passed one-based FITS coordinates to ``Cutout2D`` and shifted every cut-out
by one pixel). Images are (y, x).

Reprojection uses ``reproject_exact`` (exact spherical-polygon overlaps). Images in flux
per pixel are divided by the input pixel area, reprojected as surface brightness and
multiplied by the output pixel area, which conserves flux. The variance is reprojected
the same way (``Σ_i w_ij v_i`` with ``w_ij`` the fraction of input pixel i inside output
pixel j): this is the exact variance of sums over areas much larger than a pixel but
overestimates the variance of single pixels. The Monte Carlo of
:func:`chain_noise_correlation` measures, for the full chain (PSF matching and
reprojection), the factor that turns this into the true pixel variance and the
correlation coefficient ρ(Δy, Δx) between output pixels; :func:`binned_variance` then
gives honest variances of fluxes summed over any set of pixels.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.nddata.utils import NoOverlapError
from astropy.wcs import WCS
from numpy.typing import ArrayLike, NDArray
from reproject import reproject_exact
from scipy.signal import fftconvolve

from ..validation import as_image, pixel_scale_arcsec, require_celestial_wcs

__all__ = [
    "ChainNoise",
    "binned_variance",
    "box_variance_factor",
    "chain_noise_correlation",
    "cutout",
    "fix_cutout_wcs",
    "reproject_image",
    "set_pixel_scale",
    "target_grid",
]


def fix_cutout_wcs(header: fits.Header, origin: tuple[int, int]) -> fits.Header:
    """Header of a cut-out whose WCS was left describing the parent image (CRPIX shifted).

    Parameters
    ----------
    header : astropy.io.fits.Header
        The cut-out's header (not modified).
    origin : (x0, y0)
        Parent pixel of the cut-out's pixel (0, 0).

    Returns
    -------
    astropy.io.fits.Header
        A copy with CRPIX1 −= x0 and CRPIX2 −= y0.
    """
    out = header.copy()
    out["CRPIX1"] = float(header["CRPIX1"]) - origin[0]
    out["CRPIX2"] = float(header["CRPIX2"]) - origin[1]
    return out


def set_pixel_scale(header: fits.Header | WCS, scale: float) -> WCS:
    """A copy of a celestial WCS with its pixel scale set to ``scale`` arcsec/pixel.

    The linear part (CD, or PC × CDELT) is replaced by its nearest orthogonal matrix (polar
    decomposition: the rotation and axis flips it describes) times ``scale``; CRVAL and
    CRPIX are kept. Use it when a header's scale is known to be wrong, e.g. a PC matrix
    whose off-diagonal rotation terms were lost (a diagonal PC with |PC| < 1 shrinks the
    pixels); the orientation is then that of the diagonal (usually RA to the left).

    Parameters
    ----------
    header : astropy.io.fits.Header or WCS
        The celestial WCS (not modified).
    scale : float
        Pixel scale, arcsec/pixel, > 0.

    Returns
    -------
    astropy.wcs.WCS
    """
    wcs = require_celestial_wcs(header, "header").deepcopy()
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale: pixel scale must be > 0 arcsec, got {scale!r}")
    m = np.asarray(wcs.celestial.pixel_scale_matrix, dtype=np.float64)
    u, _, vt = np.linalg.svd(m)
    rot = u @ vt
    deg = float(scale) / 3600.0
    if wcs.wcs.has_cd():
        wcs.wcs.cd = rot * deg
    else:
        wcs.wcs.pc = rot
        wcs.wcs.cdelt = [deg, deg]
    wcs.wcs.set()
    return wcs


def _covers(wcs: WCS, shape: tuple[int, int], ra: float, dec: float) -> tuple[float, float]:
    x, y = wcs.world_to_pixel_values(ra, dec)
    x, y = float(x), float(y)
    ny, nx = shape
    inside = -0.5 <= x < nx - 0.5 and -0.5 <= y < ny - 0.5
    if not (np.isfinite(x) and np.isfinite(y)) or not inside:
        raise ValueError(
            f"image does not cover the target (RA={ra}, Dec={dec}): it falls at pixel "
            f"(x={x:.1f}, y={y:.1f}) of a {ny}x{nx} image"
        )
    return x, y


def cutout(
    image: ArrayLike,
    header: fits.Header | WCS,
    ra: float,
    dec: float,
    size: tuple[int, int],
    variance: ArrayLike | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64] | None, WCS]:
    """Cut (ny, nx) pixels centred on (ra, dec); parts outside the image become NaN.

    Parameters
    ----------
    image : array_like, shape (ny_in, nx_in)
        The image.
    header : astropy.io.fits.Header or WCS
        Its celestial WCS.
    ra, dec : float
        Centre of the cut-out, deg.
    size : (ny, nx)
        Shape of the cut-out, pixels (at least 3 × 3).
    variance : array_like, shape (ny_in, nx_in), optional
        Variance of the image, cut out the same way.

    Returns
    -------
    image : ndarray, shape (ny, nx)
    variance : ndarray, shape (ny, nx), or None
    wcs : astropy.wcs.WCS
        The cut-out's WCS.

    Raises
    ------
    ValueError
        No celestial WCS, or the target outside the image.
    """
    img = as_image(image, "image", allow_nan=True)
    wcs = require_celestial_wcs(header, "header")
    x, y = _covers(wcs, img.shape, ra, dec)
    ny, nx = (int(v) for v in size)
    if ny < 3 or nx < 3:
        raise ValueError("size: cut-outs need at least 3x3 pixels")
    try:
        cut = Cutout2D(img, (x, y), (ny, nx), wcs=wcs, mode="partial", fill_value=np.nan)
    except NoOverlapError as exc:  # pragma: no cover - guarded by _covers
        raise ValueError(f"image does not cover the target: {exc}") from None
    var_cut = None
    if variance is not None:
        var = as_image(variance, "variance", allow_nan=True, shape=img.shape)
        var_cut = Cutout2D(var, (x, y), (ny, nx), wcs=wcs, mode="partial",
                           fill_value=np.nan).data
    return np.asarray(cut.data, dtype=np.float64), var_cut, cut.wcs


def target_grid(
    header: fits.Header | WCS, shape: tuple[int, int], ra: float, dec: float,
    stamp_size: tuple[int, int],
) -> WCS:
    """WCS of a ``stamp_size`` (ny, nx) grid with the pixel scale and orientation of
    ``header``, centred on (ra, dec) (the target at the central pixel).

    Parameters
    ----------
    header : astropy.io.fits.Header or WCS
        Celestial WCS of the parent image (its distortion terms are dropped).
    shape : (ny, nx)
        Shape of the parent image (it must cover the target).
    ra, dec : float
        Centre of the grid, deg.
    stamp_size : (ny, nx)
        Shape of the grid, pixels.

    Returns
    -------
    astropy.wcs.WCS
    """
    wcs = require_celestial_wcs(header, "header")
    _covers(wcs, shape, ra, dec)
    out = wcs.celestial.deepcopy()
    out.sip = None  # distortion terms are tied to the parent's CRPIX: the grid is pure TAN
    ny, nx = (int(v) for v in stamp_size)
    out.wcs.crval = [ra, dec]
    out.wcs.crpix = [(nx - 1) / 2 + 1, (ny - 1) / 2 + 1]
    out.wcs.set()
    return out


def reproject_image(
    image: ArrayLike,
    wcs_in: WCS | fits.Header,
    wcs_out: WCS,
    shape_out: tuple[int, int],
    variance: ArrayLike | None = None,
    surface_brightness: bool = False,
) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
    """Flux-conserving exact reprojection of an image (and its variance) onto ``wcs_out``.

    Parameters
    ----------
    image : array_like (y, x)
        Flux per pixel (or surface brightness if ``surface_brightness``).
    wcs_in : astropy.wcs.WCS or Header
        Celestial WCS of the image.
    wcs_out : astropy.wcs.WCS
        Celestial WCS of the output grid.
    shape_out : (ny, nx)
        Shape of the output grid.
    variance : array_like, optional
        Variance of ``image``; reprojected as described in the module docstring.
    surface_brightness : bool
        Pixel values are per unit area (kept per area, not rescaled).

    Returns
    -------
    (image, variance) on the output grid; NaN where the input has no data.
    """
    img = as_image(image, "image", allow_nan=True)
    win = require_celestial_wcs(wcs_in, "wcs_in")
    wout = require_celestial_wcs(wcs_out, "wcs_out")
    area_in = pixel_scale_arcsec(win) ** 2
    area_out = pixel_scale_arcsec(wout) ** 2
    scale = 1.0 if surface_brightness else area_out / area_in
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out, foot = reproject_exact((img, win), wout, shape_out=tuple(shape_out))
    out = np.where(foot > 0.999, out * scale, np.nan)
    var_out = None
    if variance is not None:
        var = as_image(variance, "variance", allow_nan=True, shape=img.shape)
        # Σ w v with w = fraction of the input pixel in the output pixel (flux-like);
        # surface brightness: Σ w v · (A_in/A_out)² · (A_out/A_in) = Σ w v A_in / A_out.
        vscale = area_out / area_in if not surface_brightness else area_in / area_out
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            vout, vfoot = reproject_exact((var, win), wout, shape_out=tuple(shape_out))
        var_out = np.where(vfoot > 0.999, vout * vscale, np.nan)
        var_out[~np.isfinite(out)] = np.nan
    return out, var_out


@dataclass(frozen=True)
class ChainNoise:
    """Noise properties of one band after PSF matching and reprojection.

    Attributes
    ----------
    pixel_factor : float
        True pixel variance / propagated pixel variance (multiply the propagated variance
        map by it).
    rho : ndarray (2h+1, 2h+1)
        Correlation coefficient between output pixels at lags (Δy, Δx) = −h..h;
        ρ(0, 0) = 1.
    n_realisations : int
        Monte Carlo realisations used (0: not measured).
    """

    pixel_factor: float
    rho: NDArray[np.float64]
    n_realisations: int = 0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.pixel_factor) and self.pixel_factor > 0):
            raise ValueError(f"pixel_factor: must be finite and > 0, got {self.pixel_factor}")


def chain_noise_correlation(
    variance_in: ArrayLike,
    variance_out: ArrayLike,
    apply: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    half: int = 7,
    n_realisations: int = 8,
    seed: int = 0,
    max_realisations: int = 128,
    rtol: float = 0.02,
) -> ChainNoise:
    """Measure the pixel-variance factor and correlation of a linear image chain.

    White Gaussian noise with the input variance is pushed through ``apply`` (the same
    convolution and reprojection used for the science image). Each realisation r gives the
    ratio estimate ``f_r = Σ_j o_j² / Σ_j v_j`` (o: output noise, v: propagated variance,
    sums over valid output pixels), positive by construction and not dominated by pixels
    whose propagated variance is close to 0; realisations are added (at least
    ``n_realisations``, at most ``max_realisations``) until the standard error of the mean
    of the f_r is below ``rtol`` × the mean. The correlation ρ is the mean product of the
    normalised output noise ``o/√v`` at each lag, over pixels whose v is at least 10⁻³ of
    the median, divided by its zero-lag value. Reproducible for a given ``seed``.

    Parameters
    ----------
    variance_in : array_like (y, x)
        Input variance (NaN = no data).
    variance_out : array_like
        Variance propagated by the chain (K² convolution, flux-like reprojection).
    apply : callable
        Maps an input-grid image to the output grid.
    half : int
        Largest lag kept.
    n_realisations, max_realisations : int
        Smallest and largest number of realisations.
    seed : int
        Seed of the noise realisations.
    rtol : float
        Target relative standard error of the variance factor.

    Raises
    ------
    ValueError
        No valid output pixel, or no noise reaches the output.
    """
    vin = as_image(variance_in, "variance_in", allow_nan=True)
    vout = as_image(variance_out, "variance_out", allow_nan=True)
    n_min, n_max = int(n_realisations), int(max_realisations)
    if n_min < 1 or n_max < n_min:
        raise ValueError("n_realisations, max_realisations: need 1 <= n_realisations <= "
                         "max_realisations")
    if not rtol > 0:
        raise ValueError("rtol: must be > 0")
    rng = np.random.default_rng(seed)
    sig_in = np.sqrt(np.where(np.isfinite(vin) & (vin > 0), vin, 0.0))
    vgood = np.isfinite(vout) & (vout > 0)
    if not vgood.any():
        raise ValueError("chain_noise_correlation: no valid output pixels")
    well = vgood & (vout >= 1e-3 * np.median(vout[vgood]))
    sig_out = np.sqrt(np.where(well, vout, np.inf))
    n_lag = 2 * half + 1
    num = np.zeros((n_lag, n_lag))
    den = np.zeros((n_lag, n_lag))
    ratios: list[float] = []
    while len(ratios) < n_max:
        noise = rng.standard_normal(vin.shape) * sig_in
        noise[~np.isfinite(vin)] = np.nan
        out = apply(noise)
        good = vgood & np.isfinite(out)
        if not good.any():
            raise ValueError("chain_noise_correlation: no valid output pixels")
        ratios.append(float(np.sum(out[good] ** 2) / np.sum(vout[good])))
        use = good & well
        zf = np.where(use, out / sig_out, 0.0)
        g = use.astype(float)
        num += fftconvolve(zf, zf[::-1, ::-1], mode="full")[_centre(zf.shape, half)]
        den += fftconvolve(g, g[::-1, ::-1], mode="full")[_centre(zf.shape, half)]
        n = len(ratios)
        if n >= n_min and (n == 1 or np.std(ratios, ddof=1) / np.sqrt(n)
                           <= rtol * np.mean(ratios)):
            break
    factor = float(np.mean(ratios))
    if not factor > 0:
        raise ValueError("chain_noise_correlation: no noise reaches the output (zero input "
                         "variance?)")
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = num / den
    cov = np.where(np.isfinite(cov) & (den > 0), cov, 0.0)
    cov = 0.5 * (cov + cov[::-1, ::-1])
    if not cov[half, half] > 0:
        raise ValueError("chain_noise_correlation: no valid output pixels")
    rho = np.clip(cov / cov[half, half], -1.0, 1.0)
    # Lags where |ρ| is below the Monte Carlo noise carry no signal: set them to 0.
    npix = max(int(den[half, half]), 1)
    rho[np.abs(rho) < 3.0 / np.sqrt(npix)] = 0.0
    rho[half, half] = 1.0
    return ChainNoise(factor, rho, len(ratios))


def _centre(shape: tuple[int, int], half: int) -> tuple[slice, slice]:
    cy, cx = shape[0] - 1, shape[1] - 1
    return slice(cy - half, cy + half + 1), slice(cx - half, cx + half + 1)


def binned_variance(
    variance: ArrayLike, mask: ArrayLike, rho: ArrayLike | None = None
) -> float:
    """Variance of the flux summed over the pixels of ``mask``, with pixel correlation ρ.

    ``Σ_{i,j ∈ mask} ρ(i − j) σ_i σ_j``; without ``rho`` the plain sum of variances.

    Parameters
    ----------
    variance : array_like, shape (ny, nx)
        Pixel variances σ² (finite and >= 0 inside ``mask``).
    mask : array_like of bool, shape (ny, nx)
        The pixels summed.
    rho : array_like, shape (2h + 1, 2h + 1), optional
        Correlation coefficient at pixel lags (Δy, Δx) = −h…h.

    Returns
    -------
    float
        Variance of the sum, the unit of ``variance``.
    """
    var = as_image(variance, "variance", allow_nan=True)
    m = np.asarray(mask, dtype=bool)
    if m.shape != var.shape:
        raise ValueError("mask: shape does not match variance")
    if not m.any():
        raise ValueError("mask: empty region")
    if np.any(~np.isfinite(var[m])) or np.any(var[m] < 0):
        raise ValueError("variance: NaN or negative values inside the region")
    s = np.where(m, np.sqrt(np.where(m, var, 0.0)), 0.0)
    if rho is None:
        return float(np.sum(s**2))
    r = np.asarray(rho, dtype=np.float64)
    if r.ndim != 2 or r.shape[0] % 2 == 0 or r.shape[0] != r.shape[1]:
        raise ValueError("rho: expected an odd square array of lags")
    return float(np.sum(s * fftconvolve(s, r, mode="same")))


def box_variance_factor(rho: ArrayLike, side: int) -> float:
    """Ratio of the variance of a sum over a side×side box to the sum of its pixel
    variances, for uniform noise with correlation ``rho``.

    Parameters
    ----------
    rho : array_like, shape (2h + 1, 2h + 1)
        Correlation coefficient at pixel lags (Δy, Δx) = −h…h.
    side : int
        Side of the box, pixels.

    Returns
    -------
    float
    """
    r = np.asarray(rho, dtype=np.float64)
    h = (r.shape[0] - 1) // 2
    d = np.arange(-h, h + 1)
    w = np.clip(side - np.abs(d), 0, None).astype(float)
    return float(np.sum(r * np.outer(w, w)) / side**2)
