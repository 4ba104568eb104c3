"""Variance images (σ² per pixel, in the squared unit of the science image).

Each survey gets one function; all return float64 (y, x) arrays with NaN where the
variance cannot be computed. Calibration (zero-point) uncertainties are *not* folded into
pixel variances, because they are fully correlated between pixels and do not average down
when pixels are binned. Nothing in this module uses them: they are kept per band in the
instrument table (:attr:`pixedfit.instruments.Instrument.calib_err`), written by the flux
map into its header (``CALERR<i>``, a fraction) and listed in the report's error budget;
adding them to the errors of binned SEDs is the job of the fitting stage's likelihood.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.ndimage import map_coordinates

from ..validation import as_image

if TYPE_CHECKING:
    from astropy.io import fits
    from astropy.wcs import WCS

__all__ = [
    "SDSS_DARK_VARIANCE",
    "SDSS_GAIN",
    "sdss_cutout_origin",
    "sdss_gain_dark_variance",
    "variance_2mass",
    "variance_from_background",
    "variance_from_uncertainty",
    "variance_from_weight",
    "variance_galex",
    "variance_sdss",
    "variance_sdss_frame",
    "variance_wise",
]

# SDSS gain (e-/DN) and dark variance (DN²) by camcol 1-6 for u, g, r, i, z (SDSS frame data
# model). Entries that depend on the run are (value before, value from, run threshold).
SDSS_GAIN: dict[str, tuple[Any, ...]] = {
    "u": (1.62, (1.595, 1.825, 1100), 1.59, 1.6, 1.47, 2.17),
    "g": (3.32, 3.855, 3.845, 3.995, 4.05, 4.035),
    "r": (4.71, 4.6, 4.72, 4.76, 4.725, 4.895),
    "i": (5.165, 6.565, 4.86, 4.885, 4.64, 4.76),
    "z": (4.745, 5.155, 4.885, 4.775, 3.48, 4.69),
}
SDSS_DARK_VARIANCE: dict[str, tuple[Any, ...]] = {
    "u": (9.61, 12.6025, 8.7025, 12.6025, 9.3025, 7.0225),
    "g": (15.6025, 1.44, 1.3225, 1.96, 1.1025, 1.8225),
    "r": (1.8225, 1.00, 1.3225, 1.3225, 0.81, 0.9025),
    "i": (7.84, (5.76, 6.25, 1500), 4.6225, (6.25, 7.5625, 1500), 7.84, 5.0625),
    "z": (0.81, 1.0, 1.0, (9.61, 12.6025, 1500), (1.8225, 2.1025, 1500), 1.21),
}


def _pick(entry: Any, run: int | None) -> float:
    if isinstance(entry, tuple):
        before, after, threshold = entry
        if run is None:
            raise ValueError("run: this camcol/band needs the run number (gain/dark variance)")
        return float(after if run > threshold else before)
    return float(entry)


def sdss_gain_dark_variance(band: str, camcol: int, run: int | None = None) -> tuple[float, float]:
    """Gain (e⁻/DN) and dark variance (DN²) of an SDSS camcol and band.

    Parameters
    ----------
    band : str
        SDSS band: u, g, r, i or z (an ``sdss_`` prefix is allowed).
    camcol : int
        Camera column, 1–6.
    run : int, optional
        Run number; needed where the values changed during the survey.

    Returns
    -------
    gain, dark_variance : float
    """
    band = band.strip().lower()
    if band.startswith("sdss_"):
        band = band[5:]
    if band not in SDSS_GAIN:
        raise ValueError(f"band: unknown SDSS band {band!r} (use u, g, r, i or z)")
    if int(camcol) not in range(1, 7):
        raise ValueError(f"camcol: must be 1-6, got {camcol!r}")
    i = int(camcol) - 1
    return _pick(SDSS_GAIN[band][i], run), _pick(SDSS_DARK_VARIANCE[band][i], run)


def variance_sdss(
    image: ArrayLike,
    calib: ArrayLike,
    allsky: ArrayLike,
    xinterp: ArrayLike,
    yinterp: ArrayLike,
    band: str,
    camcol: int,
    run: int | None = None,
    origin: tuple[int, int] = (0, 0),
) -> NDArray[np.float64]:
    """Variance of an SDSS corrected frame (or a cut-out of one), in nanomaggy².

    Follows the SDSS frame data model: the sky (DN) is the ALLSKY grid bilinearly
    interpolated at (XINTERP, YINTERP) (edge values beyond the grid), the counts are
    ``DN = image / calib[x] + sky``, and ``σ²_DN = DN / gain + dark_variance``, so
    ``var = σ²_DN × calib[x]²``.

    Parameters
    ----------
    image : array_like (y, x)
        Frame image in nanomaggies.
    calib : array_like (2048,)
        Calibration vector (nanomaggy per DN, per frame column), HDU 1.
    allsky : array_like (ny_sky, nx_sky)
        Sky grid (DN), HDU 2 column ALLSKY, reshaped (192, 256) for full frames.
    xinterp, yinterp : array_like
        Positions of the frame columns / rows on the sky grid, HDU 2.
    band : str
        u, g, r, i or z (or ``sdss_<band>``).
    camcol : int
        Camera column 1-6 (header CAMCOL).
    run : int, optional
        Run number (header RUN), needed for run-dependent gain/dark entries.
    origin : (x0, y0)
        Frame pixel of the cut-out's pixel (0, 0); (0, 0) for a full frame.
    """
    img = as_image(image, "image", allow_nan=True)
    cal = np.asarray(calib, dtype=np.float64).ravel()
    sky = np.asarray(allsky, dtype=np.float64)
    xi = np.asarray(xinterp, dtype=np.float64).ravel()
    yi = np.asarray(yinterp, dtype=np.float64).ravel()
    if sky.ndim != 2:
        raise ValueError("allsky: expected the 2-D sky grid (ny_sky, nx_sky)")
    if cal.size != xi.size:
        raise ValueError("calib, xinterp: must both have one entry per frame column")
    if not np.all(np.isfinite(cal)) or np.any(cal <= 0):
        raise ValueError("calib: nanomaggy-per-DN values must be finite and > 0")
    ny, nx = img.shape
    x0, y0 = (int(v) for v in origin)
    if x0 < 0 or y0 < 0 or x0 + nx > xi.size or y0 + ny > yi.size:
        raise ValueError(
            f"origin: a {ny}x{nx} cut-out at (x0={x0}, y0={y0}) does not fit in the "
            f"{yi.size}x{xi.size} frame described by the calibration HDUs"
        )
    gain, dark = sdss_gain_dark_variance(band, camcol, run)
    cols = cal[x0 : x0 + nx]
    yy, xx = np.meshgrid(yi[y0 : y0 + ny], xi[x0 : x0 + nx], indexing="ij")
    sky_dn = map_coordinates(sky, [yy.ravel(), xx.ravel()], order=1, mode="nearest")
    sky_dn = sky_dn.reshape(ny, nx)
    dn = img / cols[None, :] + sky_dn
    var_dn = np.abs(dn) / gain + dark
    return var_dn * cols[None, :] ** 2


def sdss_cutout_origin(
    full_frame_wcs: WCS, ra: float, dec: float, shape: tuple[int, int]
) -> tuple[int, int]:
    """Frame pixel (x0, y0) of a cut-out centred on (ra, dec) whose header kept the frame WCS.

    Some cut-out tools (e.g. hostphot) cut SDSS frames with astropy ``Cutout2D`` but kept
    the full-frame header. The cut-out origin is then that of ``Cutout2D`` at the target's
    full-frame pixel position; shift the WCS with ``wcs.slice`` or CRPIX −= origin.

    Parameters
    ----------
    full_frame_wcs : astropy.wcs.WCS
        WCS of the full SDSS frame.
    ra, dec : float
        Centre of the cut-out, deg.
    shape : (ny, nx)
        Shape of the cut-out, pixels.

    Returns
    -------
    (int, int)
        Frame pixel (x0, y0) of the cut-out's pixel (0, 0).
    """
    from astropy.nddata.utils import overlap_slices

    x, y = full_frame_wcs.world_to_pixel_values(ra, dec)
    big = (10**7, 10**7)
    slices, _ = overlap_slices(big, tuple(shape), (float(y) + 5 * 10**6, float(x) + 5 * 10**6),
                               mode="partial")
    y0 = slices[0].start - 5 * 10**6
    x0 = slices[1].start - 5 * 10**6
    return int(x0), int(y0)


def variance_sdss_frame(hdul: fits.HDUList, origin: tuple[int, int] = (0, 0)
                        ) -> NDArray[np.float64]:
    """Variance (nanomaggy²) of an SDSS frame file opened with :func:`astropy.io.fits.open`.

    Reads the image (HDU 0, BUNIT nanomaggy), calibration vector (HDU 1), sky grid (HDU 2)
    and FILTER, CAMCOL, RUN from the header; see :func:`variance_sdss`.

    Parameters
    ----------
    hdul : astropy.io.fits.HDUList
        The opened frame file.
    origin : (x0, y0)
        Frame pixel of the image's pixel (0, 0), for a cut-out of the frame
        (:func:`sdss_cutout_origin`).

    Returns
    -------
    ndarray
        Variance per pixel, nanomaggy², with the image's shape.
    """
    if len(hdul) < 3:
        raise ValueError("hdul: an SDSS frame needs HDU 1 (calib) and HDU 2 (sky)")
    hdr = hdul[0].header
    for key in ("FILTER", "CAMCOL"):
        if key not in hdr:
            raise ValueError(f"hdul: header keyword {key} missing (not an SDSS frame?)")
    if str(hdr.get("BUNIT", "nanomaggy")).strip().lower() not in ("nanomaggy", "nmgy"):
        raise ValueError(f"hdul: image unit {hdr.get('BUNIT')!r} is not nanomaggy")
    table = hdul[2].data
    nsx, nsy = (int(v) for v in hdul[2].header.get("TDIM1", "(256, 192)").strip("() ").split(","))
    allsky = np.asarray(table["ALLSKY"][0], dtype=np.float64).reshape(nsy, nsx)
    return variance_sdss(
        hdul[0].data,
        hdul[1].data,
        allsky,
        table["XINTERP"][0],
        table["YINTERP"][0],
        band=str(hdr["FILTER"]),
        camcol=int(hdr["CAMCOL"]),
        run=int(hdr["RUN"]) if "RUN" in hdr else None,
        origin=origin,
    )


def variance_galex(
    image: ArrayLike, exptime: float | ArrayLike, background: ArrayLike | float = 0.0
) -> NDArray[np.float64]:
    """Poisson variance of a GALEX count-rate image, (counts/s)².

    ``var = (|f| + b) / t`` with f the count rate per pixel, b the background rate already
    subtracted from it (0 for intensity maps that include the sky) and t the exposure time
    (a number or an effective-exposure map).

    Parameters
    ----------
    image : array_like, shape (ny, nx)
        Count rate per pixel, counts/s.
    exptime : float or array_like
        Exposure time, s (a number or an effective-exposure map).
    background : float or array_like
        Background rate subtracted from the image, counts/s, >= 0.

    Returns
    -------
    ndarray, shape (ny, nx)
        Variance, (counts/s)².
    """
    img = as_image(image, "image", allow_nan=True)
    t = np.broadcast_to(np.asarray(exptime, dtype=np.float64), img.shape)
    if not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise ValueError("exptime: exposure times must be finite and > 0")
    b = np.broadcast_to(np.asarray(background, dtype=np.float64), img.shape)
    if np.any(b < 0):
        raise ValueError("background: rates must be >= 0")
    return (np.abs(img) + b) / t


def variance_2mass(
    image: ArrayLike,
    sky_rms: float | ArrayLike,
    gain: float = 10.0,
    n_coadd: int = 6,
    k_z: float = 1.7,
    sigma_zero: float = 0.024,
) -> NDArray[np.float64]:
    """Variance of a 2MASS atlas image, DN² (2MASS explanatory supplement, per pixel).

    ``var = |f| / (gain·n_coadd) + (2 k_z σ_sky)² + (σ_zero σ_sky)²``: Poisson noise of
    the source, sky noise including the atlas resampling (k_z), and the background
    subtraction term.

    Parameters
    ----------
    image : array_like, shape (ny, nx)
        Atlas image, DN.
    sky_rms : float or array_like
        Sky noise σ_sky per pixel, DN.
    gain : float
        Gain, e⁻/DN.
    n_coadd : int
        Number of coadded frames per pixel.
    k_z : float
        Kernel smoothing factor of the atlas resampling.
    sigma_zero : float
        Relative error of the background subtraction.

    Returns
    -------
    ndarray, shape (ny, nx)
        Variance, DN².
    """
    img = as_image(image, "image", allow_nan=True)
    rms = np.broadcast_to(np.asarray(sky_rms, dtype=np.float64), img.shape)
    if np.any(~np.isfinite(rms)) or np.any(rms < 0):
        raise ValueError("sky_rms: must be finite and >= 0")
    return np.abs(img) / (gain * n_coadd) + (2.0 * k_z * rms) ** 2 + (sigma_zero * rms) ** 2


def variance_wise(
    uncertainty: ArrayLike, sky_rms: float | ArrayLike = 0.0
) -> NDArray[np.float64]:
    """Variance of a WISE atlas image, DN², from its ``-unc-`` map plus a sky term.

    ``var = σ_unc² + σ_sky²``. (The original added σ_src² multiplied by f², which is
    dimensionally wrong.) The correlation of WISE atlas pixels is handled like any other
    resampling correlation, by the noise-correlation factor of the pipeline.

    Parameters
    ----------
    uncertainty : array_like, shape (ny, nx)
        The ``-unc-`` map, DN, >= 0.
    sky_rms : float or array_like
        Sky noise σ_sky, DN, >= 0.

    Returns
    -------
    ndarray, shape (ny, nx)
        Variance, DN².
    """
    unc = as_image(uncertainty, "uncertainty", allow_nan=True, nonnegative=True)
    rms = np.broadcast_to(np.asarray(sky_rms, dtype=np.float64), unc.shape)
    if np.any(~np.isfinite(rms)) or np.any(rms < 0):
        raise ValueError("sky_rms: must be finite and >= 0")
    return unc**2 + rms**2


def variance_from_uncertainty(uncertainty: ArrayLike) -> NDArray[np.float64]:
    """Variance from a 1σ uncertainty (RMS) map: ``σ²``; negative σ is refused."""
    unc = as_image(uncertainty, "uncertainty", allow_nan=True, nonnegative=True)
    return unc**2


def variance_from_weight(weight: ArrayLike) -> NDArray[np.float64]:
    """Variance from an inverse-variance weight map: ``1 / w``; w <= 0 gives NaN (no data)."""
    w = as_image(weight, "weight", allow_nan=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = np.where(w > 0, 1.0 / w, np.nan)
    return var


def variance_from_background(
    image: ArrayLike, rms: float | ArrayLike, gain: float | None = None
) -> NDArray[np.float64]:
    """Variance from a background RMS plus, with a ``gain`` (e⁻ per image unit), source
    Poisson noise: ``σ_sky² + max(f, 0) / gain``.

    Parameters
    ----------
    image : array_like, shape (ny, nx)
        The image (any unit).
    rms : float or array_like
        Background RMS σ_sky, the image's unit, >= 0.
    gain : float, optional
        e⁻ per image unit (None: no source noise).

    Returns
    -------
    ndarray, shape (ny, nx)
        Variance, the image's unit².
    """
    img = as_image(image, "image", allow_nan=True)
    r = np.broadcast_to(np.asarray(rms, dtype=np.float64), img.shape)
    if np.any(r[np.isfinite(r)] < 0):
        raise ValueError("rms: must be >= 0")
    var = r**2
    if gain is not None:
        if not (np.isfinite(gain) and gain > 0):
            raise ValueError("gain: must be > 0")
        var = var + np.clip(img, 0.0, None) / gain
    return var


