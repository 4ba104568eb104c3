"""Readers of integral-field spectroscopy cubes → :class:`IFSCube`.

Every reader returns fluxes and 1σ errors ``(wavelength, y, x)`` in erg s⁻¹ cm⁻² Å⁻¹ per
spaxel (f_λ, the physical unit: survey scale factors are applied), wavelengths in Å with
their medium (``"air"`` or ``"vacuum"``) stated, a boolean mask (True = bad; masked values
are NaN in ``flux`` and ``err``), the 2-D celestial WCS of the spaxel grid, the PSF FWHM
(arcsec; a number or one value per wavelength), the spectral resolution R = λ/Δλ_FWHM per
wavelength, the survey name and the Galactic E(B−V) when the file gives it.

Data models relied on (no real MaNGA or CALIFA file was available while writing this; the
layouts below are those documented by the surveys and written by
:mod:`pixedfit.ifs.generators`):

* **MaNGA DRP LOGCUBE** (SDSS DR15–DR17 data model; mangadap ``MaNGADataCube``/``DRPFits``):
  extensions ``FLUX`` (BUNIT ``1E-17 erg/s/cm^2/Ang/spaxel``, 3-D WCS, ``CTYPE3 = WAVE-LOG``),
  ``IVAR`` (inverse variance), ``MASK`` (``MANGA_DRP3PIXMASK``: bit 0 NOCOV, 1 LOWCOV,
  2 DEADFIBER, 3 FORESTAR, 10 DONOTUSE), ``WAVE`` (vacuum Å), ``SPECRES`` (median R per
  wavelength; ``PRESPECRES``/``SPECRESD`` fallbacks), reconstructed images ``GIMG`` …
  ``ZIMG``; primary header ``EBVGAL`` (SFD E(B−V); the spectra are *not* corrected) and
  ``GFWHM``, ``RFWHM``, ``IFWHM``, ``ZFWHM`` (PSF FWHM in arcsec of the reconstructed
  g, r, i, z images). Spaxels 0.5″. The PSF FWHM per wavelength is interpolated linearly
  between the four bands' effective wavelengths (held constant beyond g and z).
* **CALIFA DR3** (Sánchez et al. 2016, A&A 594, A36, §4; V500, V1200 and COMB cubes):
  primary HDU = flux in 1e-16 erg s⁻¹ cm⁻² Å⁻¹ (wavelength, y, x), ``ERROR`` (1σ),
  ``ERRWEIGHT``, ``BADPIX`` (1 = bad), ``FIBCOVER``; wavelength axis from
  ``CRVAL3``/``CDELT3``/``CRPIX3`` (air); spatial WCS from ``CRPIX``/``CDELT``/``CRVAL``/
  ``CTYPE`` 1–2 (1″ spaxels). Resolution FWHM 6.0 Å (V500 and COMB) or 2.3 Å (V1200).
  DR3 spectra are already corrected for Galactic extinction (as the original piXedfit
  assumed; ``extinction_corrected=False`` overrides). The PSF FWHM (≈ 2.5″ in DR3) is
  not in the header: pass it (default 2.5″). ``ERRWEIGHT`` calibrates the covariance
  model of the spaxels (:func:`pixedfit.ifs.covariance.califa_covariance`).
* **MUSE** (ESO pipeline / MPDAF cubes): ``DATA`` (BUNIT e.g.
  ``10**(-20)*erg/s/cm**2/Angstrom``), ``STAT`` (variance, BUNIT squared: the ESO pipeline
  writes ``(10**(-20)*erg/s/cm**2/Angstrom)**2``, MPDAF ``10**-40 Angstrom-2 cm-4 erg2
  s-2``), optional ``DQ`` (non-zero = bad, Euro3D convention); wavelength from the 3-D WCS
  (``CTYPE3 = AWAV``: air). Both BUNITs are parsed with :mod:`astropy.units`
  (:func:`parse_bunit`); a STAT unit that is the DATA unit per Å
  (``10**(-20)*erg/s/cm**2/Angstrom**2``, written by some reductions for the squared unit)
  is read as the DATA unit squared, with a warning; any other unit that is not a squared
  f_λ is refused (pass ``var_unit``). PSF: the argument, else the MPDAF
  field-spread-function keywords ``FSFMODE = MOFFAT1`` with ``FSFnnFWA``/``FSFnnFWB``
  (FWHM = FWA + FWB λ, arcsec) of the fields that cover the cube (``FIELDMAP`` extension,
  bit 2**i = field i; all fields when there is no map), else the seeing keywords
  (:func:`seeing_fwhm`); the choice is kept in ``IFSCube.psf_source``. Resolution: the UDF
  line-spread function of Bacon et al. (2017, A&A 608, A1, eq. 8),
  FWHM(λ) = 5.866e-8 λ² − 9.187e-4 λ + 6.04 Å.
* **generic**: any cube with a 3-D WCS or a wavelength extension (:func:`read_generic`).

**Spatial covariance.** Every cube carries a model of the noise covariance of its spaxels
(``IFSCube.covariance``, :mod:`pixedfit.ifs.covariance`): MaNGA the Law et al. (2016)
relation, CALIFA the relation calibrated by ``ERRWEIGHT``, MUSE and generic cubes the
correlation function measured on the cube.

**Error scale.** Every reader measures how the reported errors compare with the noise in
the data (:func:`error_scale`: robust scatter of the second differences of neighbouring
spectral pixels two channels apart, divided by the errors propagated to them), stores the
ratio in ``IFSCube.error_scale`` and warns (:class:`ErrorScaleWarning`, naming the file)
when it lies outside [1/3, 3]. The errors are not changed.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, cast

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from numpy.typing import ArrayLike, NDArray

from .._fits import open_fits
from ..images.extinction import SF11_SCALE
from ..validation import pixel_scale_arcsec
from .covariance import (
    SpaxelCovariance,
    califa_covariance,
    manga_covariance,
    measure_covariance,
    noise_cube_pair,
    robust_sigma,
    second_differences,
)

__all__ = [
    "SURVEYS",
    "ErrorScaleWarning",
    "IFSCube",
    "error_scale",
    "parse_bunit",
    "read_califa",
    "read_generic",
    "read_ifs",
    "read_manga",
    "read_muse",
    "seeing_fwhm",
]

PathLike = str | os.PathLike[str]

#: Surveys understood by :func:`read_ifs`.
SURVEYS = ("manga", "califa", "muse", "generic")

#: MaNGA DRP3PIXMASK bits masked by default: NOCOV, LOWCOV, DEADFIBER, FORESTAR, DONOTUSE.
MANGA_BAD_BITS = (0, 1, 2, 3, 10)
#: Effective wavelengths (Å) of SDSS g, r, i, z used to interpolate MaNGA's PSF FWHM.
MANGA_PSF_WAVE = (4686.0, 6166.0, 7480.0, 8932.0)
#: CALIFA spectral resolution FWHM (Å) per setup (Sánchez et al. 2016).
CALIFA_FWHM = {"V500": 6.0, "COMB": 6.0, "V1200": 2.3}
_FLAM = u.erg / u.s / u.cm**2 / u.AA
#: Measured / reported error ratio beyond which the readers warn (and below its inverse).
ERROR_SCALE_LIMIT = 3.0


class ErrorScaleWarning(UserWarning):
    """The errors of a cube disagree with the scatter of its data (see :func:`error_scale`)."""


@dataclass
class IFSCube:
    """An IFS data cube in physical units.

    Attributes
    ----------
    flux, err : ndarray, shape (nwave, ny, nx)
        f_λ per spaxel and its 1σ error, erg s⁻¹ cm⁻² Å⁻¹; NaN where ``mask``.
    wave : ndarray, shape (nwave,)
        Wavelengths in Å (``wave_medium``), strictly increasing.
    mask : ndarray of bool, shape (nwave, ny, nx)
        True = bad value (also where the file had no data).
    wcs : astropy.wcs.WCS
        Celestial WCS of the (y, x) spaxel grid.
    wave_medium : {"air", "vacuum"}
    psf_fwhm : float, ndarray (nwave,) or None
        PSF FWHM in arcsec (per wavelength when it varies); None when unknown.
    resolution : ndarray (nwave,) or None
        Spectral resolution R = λ / FWHM_LSF.
    survey : str
    gal_ebv : float or None
        Galactic E(B−V) (mag) from the header.
    extinction_corrected : bool
        The spectra are already corrected for Galactic extinction.
    header : astropy.io.fits.Header
        Primary header of the file.
    psf_source : str or None
        Where ``psf_fwhm`` came from (argument, FSF keywords, seeing keyword …).
    error_scale : float or None
        Measured noise / reported errors (:func:`error_scale`); None when not measured.
    covariance : SpaxelCovariance or None
        Spatial covariance model of the spaxels (:mod:`pixedfit.ifs.covariance`): MaNGA
        Law+2016, CALIFA from ERRWEIGHT, MUSE and generic cubes measured on the cube;
        None when unknown (then measured where spaxels are combined).
    """

    flux: NDArray[np.float64]
    err: NDArray[np.float64]
    wave: NDArray[np.float64]
    mask: NDArray[np.bool_]
    wcs: WCS
    _: KW_ONLY
    wave_medium: str = "vacuum"
    psf_fwhm: float | NDArray[np.float64] | None = None
    resolution: NDArray[np.float64] | None = None
    survey: str = "generic"
    gal_ebv: float | None = None
    extinction_corrected: bool = False
    header: fits.Header = field(default_factory=fits.Header)
    psf_source: str | None = None
    error_scale: float | None = None
    covariance: SpaxelCovariance | None = None

    def __post_init__(self) -> None:
        f = np.array(self.flux, dtype=np.float64)
        e = np.array(self.err, dtype=np.float64)
        if f.ndim != 3:
            raise ValueError(f"flux: expected a 3-D (wave, y, x) cube, got shape {f.shape}")
        if e.shape != f.shape:
            raise ValueError(f"err: shape {e.shape} differs from flux shape {f.shape}")
        w = np.array(self.wave, dtype=np.float64).ravel()
        if w.size != f.shape[0]:
            raise ValueError(f"wave: {w.size} wavelengths for {f.shape[0]} cube channels")
        if not np.all(np.isfinite(w)) or np.any(w <= 0) or np.any(np.diff(w) <= 0):
            raise ValueError("wave: wavelengths must be finite, > 0 and strictly increasing")
        m = np.asarray(self.mask)
        if m.shape != f.shape:
            raise ValueError(f"mask: shape {m.shape} differs from flux shape {f.shape}")
        m = m.astype(bool) | ~np.isfinite(f) | ~np.isfinite(e) | ~(e > 0)
        if np.all(m):
            raise ValueError("the cube has no valid (unmasked, finite, err > 0) value")
        f[m] = np.nan
        e[m] = np.nan
        self.flux, self.err, self.wave, self.mask = f, e, w, m
        if not isinstance(self.wcs, WCS) or not self.wcs.has_celestial:
            raise ValueError("wcs: a celestial WCS of the spaxel grid is required")
        self.wcs = self.wcs.celestial
        if self.wave_medium not in ("air", "vacuum"):
            raise ValueError(f"wave_medium: 'air' or 'vacuum', got {self.wave_medium!r}")
        if self.psf_fwhm is not None:
            p = np.asarray(self.psf_fwhm, dtype=np.float64)
            if p.ndim not in (0, 1) or (p.ndim == 1 and p.size != w.size):
                raise ValueError("psf_fwhm: a number or one value per wavelength")
            if not np.all(np.isfinite(p) & (p > 0)):
                raise ValueError("psf_fwhm: values must be finite and > 0 (arcsec)")
            self.psf_fwhm = float(p) if p.ndim == 0 else p
        if self.resolution is not None:
            r = np.asarray(self.resolution, dtype=np.float64).ravel()
            if r.size != w.size or not np.all(np.isfinite(r) & (r > 0)):
                raise ValueError("resolution: one finite R > 0 per wavelength")
            self.resolution = r
        if self.gal_ebv is not None:
            g = float(self.gal_ebv)
            if not (np.isfinite(g) and g >= 0):
                raise ValueError(f"gal_ebv: must be finite and >= 0, got {self.gal_ebv}")
            self.gal_ebv = g

    @property
    def shape(self) -> tuple[int, int, int]:
        """(nwave, ny, nx)."""
        return cast("tuple[int, int, int]", self.flux.shape)  # 3-D (__post_init__)

    @property
    def pixel_scale(self) -> float:
        """Spaxel size in arcsec (square root of the spaxel area)."""
        return pixel_scale_arcsec(self.wcs)

    def psf_fwhm_per_wave(self) -> NDArray[np.float64]:
        """PSF FWHM (arcsec) at every wavelength; ValueError when unknown."""
        if self.psf_fwhm is None:
            raise ValueError(
                f"the PSF FWHM of this {self.survey} cube is unknown (no FSF or seeing "
                f"keyword: {', '.join(SEEING_KEYWORDS)}): pass psf_fwhm (arcsec) to the "
                f"reader")
        return np.broadcast_to(np.asarray(self.psf_fwhm, dtype=np.float64),
                               self.wave.shape).copy()

    def region(self, min_good_fraction: float = 0.8) -> NDArray[np.bool_]:
        """Spaxels (y, x) with valid data in more than ``min_good_fraction`` of channels."""
        if not 0 <= min_good_fraction < 1:
            raise ValueError("min_good_fraction: must be within [0, 1)")
        return np.mean(~self.mask, axis=0) > min_good_fraction

    def __repr__(self) -> str:
        return (f"IFSCube(survey={self.survey!r}, shape={self.shape}, wave={self.wave[0]:.1f}-"
                f"{self.wave[-1]:.1f} Å {self.wave_medium}, pixel={self.pixel_scale:.3g}\")")


# --------------------------------------------------------------------------- helpers


def _celestial(header: fits.Header, path: PathLike) -> WCS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header)
        except Exception as exc:
            raise ValueError(f"{path}: unreadable WCS ({exc})") from exc
    if not wcs.has_celestial:
        raise ValueError(f"{path}: no celestial WCS (CTYPE1/2 RA---/DEC--) in the header")
    return wcs.celestial


def _hdu(hdul: fits.HDUList, name: str, path: PathLike, required: bool = True) -> Any:
    try:
        hdu = hdul[name]
    except KeyError:
        if required:
            raise ValueError(f"{path}: extension {name!r} missing") from None
        return None
    if hdu.data is None:
        if required:
            raise ValueError(f"{path}: extension {name!r} holds no data")
        return None
    return hdu


_UNIT_FIXES = ((r"/\s*spaxel\b", ""), (r"\bAng\b", "Angstrom"), (r"\bAA\b", "Angstrom"),
               ("Å", "Angstrom"), (r"(?<![\w.])A\b", "Angstrom"), (r"\^", "**"),
               (r"\b10E([-+]?\d)", r"1E\1"))
_POWER = re.compile(r"^\((?P<inner>.+)\)\s*\*\*\s*\(?\s*(?P<p>[-+]?\d+)\s*\)?$")


def parse_bunit(bunit: str) -> u.UnitBase:
    """Parse a FITS ``BUNIT`` string with :mod:`astropy.units`.

    Astronomical spellings are normalised first: ``Ang``, ``AA``, ``Å`` and a bare ``A``
    mean Ångström (never Ampère), ``/spaxel`` is dropped (values per spaxel), ``^`` means
    ``**``, ``10E-17`` means ``1E-17``, and a parenthesised unit raised to a power
    (``(10**(-20)*erg/s/cm**2/Angstrom)**2``, the ESO MUSE STAT unit) is understood.

    Raises
    ------
    ValueError
        The string cannot be parsed (generic and FITS formats are tried).
    """
    text = str(bunit).strip()
    for pat, rep in _UNIT_FIXES:
        text = re.sub(pat, rep, text)
    power = 1
    m = _POWER.match(text)
    if m:
        text, power = m.group("inner"), int(m.group("p"))
    err: Exception | None = None
    for fmt in (None, "fits"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", u.UnitsWarning)
                return u.Unit(text, format=fmt, parse_strict="raise") ** power
        except (ValueError, TypeError) as exc:
            err = exc
    raise ValueError(f"BUNIT {bunit!r} cannot be parsed as a unit ({err})")


def flux_unit_scale(bunit: str | None, default: float | None, what: str) -> float:
    """Factor turning stored values into erg s⁻¹ cm⁻² Å⁻¹ from a BUNIT string.

    Parameters
    ----------
    bunit : str or None
        The BUNIT keyword's value.
    default : float or None
        The factor when ``bunit`` is None or blank (ValueError when that is None too).
    what : str
        The file and HDU, for the messages.

    Returns
    -------
    float
    """
    if bunit is None or not str(bunit).strip():
        if default is None:
            raise ValueError(f"{what}: no BUNIT and no unit given (pass unit=)")
        return float(default)
    try:
        return float(parse_bunit(str(bunit)).to(_FLAM))
    except (ValueError, u.UnitConversionError) as exc:
        raise ValueError(f"{what}: BUNIT {bunit!r} is not an f_λ unit ({exc}); pass unit= "
                         f"(scale of the stored values in erg/s/cm2/A)") from None


def variance_unit_scale(bunit: str | None, data_bunit: str | None, data_scale: float,
                        what: str) -> float:
    """Factor turning stored variances into (erg s⁻¹ cm⁻² Å⁻¹)² from their BUNIT.

    No BUNIT: the data scale squared. A squared f_λ unit: its factor. The DATA unit per
    Å (``10**(-20)*erg/s/cm**2/Angstrom**2`` next to DATA in ``10**(-20)*erg/s/cm**2/
    Angstrom``; a mis-spelling of the squared unit written by some reductions): the data
    scale squared, with a warning. Anything else raises ValueError naming ``what`` (file,
    HDU and keyword).

    Parameters
    ----------
    bunit : str or None
        BUNIT of the variances.
    data_bunit : str or None
        BUNIT of the data.
    data_scale : float
        Factor of the data (:func:`flux_unit_scale`).
    what : str
        The file and HDU, for the messages.

    Returns
    -------
    float
    """
    if bunit is None or not str(bunit).strip():
        return data_scale**2
    try:
        unit = parse_bunit(str(bunit))
    except ValueError as exc:
        raise ValueError(f"{what} BUNIT: {exc}; pass var_unit= (scale of the stored "
                         f"variances in (erg/s/cm2/A)**2)") from None
    try:
        return float(unit.to(_FLAM**2))
    except u.UnitConversionError:
        pass
    if data_bunit:
        try:
            ratio = (unit / (parse_bunit(str(data_bunit)) / u.AA)).decompose()
            same = not ratio.bases and bool(np.isclose(ratio.scale, 1.0))
        except (ValueError, TypeError, u.UnitsError):
            same = False
        if same:
            warnings.warn(
                f"{what} BUNIT {bunit!r} is not a squared f_λ unit (it is the DATA unit per "
                f"Å); read as the square of the DATA unit {data_bunit!r} (pass var_unit= to "
                f"override; the error-scale check verifies it)", u.UnitsWarning,
                stacklevel=3)
            return data_scale**2
    raise ValueError(f"{what} BUNIT {bunit!r} is not a variance of f_λ (expected e.g. "
                     f"'(10**(-20)*erg/s/cm**2/Angstrom)**2'); pass var_unit= (scale of the "
                     f"stored variances in (erg/s/cm2/A)**2)")


#: Primary-header keywords read as the seeing, in order of preference (see
#: :func:`seeing_fwhm`).
SEEING_KEYWORDS = ("SKY_RES", "ESO TEL IA FWHMLINOBS", "ESO TEL IA FWHM",
                   "ESO TEL AMBI FWHM START/END")
#: Reference wavelength (Å) of the seeing keywords and the exponent of the λ scaling.
SEEING_WAVE, SEEING_POWER = 5000.0, -0.2


def _positive(header: fits.Header, key: str) -> float | None:
    try:
        val = float(header[key])
    except (KeyError, TypeError, ValueError):
        return None
    return val if np.isfinite(val) and val > 0 else None


def seeing_fwhm(header: fits.Header, wave: ArrayLike
                ) -> tuple[NDArray[np.float64], str] | None:
    """PSF FWHM (arcsec) per wavelength from seeing keywords, when no FSF model is given.

    Tried in order (the first with a value > 0 is used):

    1. ``SKY_RES`` — ESO Phase-3 spatial resolution of the product (FWHM, arcsec), used
       at every wavelength;
    2. ``ESO TEL IA FWHMLINOBS`` then ``ESO TEL IA FWHM`` — the image quality delivered by
       the telescope (active-optics image analysis, line of sight);
    3. ``ESO TEL AMBI FWHM START``/``END`` — DIMM seeing at zenith (mean of the valid
       ones), times airmass^(3/5) (mean of ``ESO TEL AIRM START``/``END``, default 1).

    The values of 2 and 3 are taken at 5000 Å (the DIMM convention) and scaled with
    λ^(−1/5) (Kolmogorov turbulence). A seeing is only an estimate of a cube's PSF
    (typically within 10–20 %); pass a measured PSF FWHM to the reader when you have one.

    Parameters
    ----------
    header : astropy.io.fits.Header
        The primary header.
    wave : array_like, shape (nwave,)
        Wavelengths of the cube, Å.

    Returns
    -------
    (fwhm, source) : ndarray (nwave,) and a description, or None when no keyword is usable.
    """
    lam = np.asarray(wave, dtype=np.float64)
    val = _positive(header, "SKY_RES")
    if val is not None:
        return np.full(lam.shape, val), f"SKY_RES = {val:.3g} arcsec"
    scaling = (lam / SEEING_WAVE) ** SEEING_POWER
    for key in ("ESO TEL IA FWHMLINOBS", "ESO TEL IA FWHM"):
        val = _positive(header, key)
        if val is not None:
            return val * scaling, f"{key} = {val:.3g} arcsec at 5000 A, lambda^-0.2"
    dimm = [v for v in (_positive(header, "ESO TEL AMBI FWHM START"),
                        _positive(header, "ESO TEL AMBI FWHM END")) if v is not None]
    if dimm:
        airm = [v for v in (_positive(header, "ESO TEL AIRM START"),
                            _positive(header, "ESO TEL AIRM END")) if v is not None]
        x = float(np.mean(airm)) if airm else 1.0
        val = float(np.mean(dimm)) * x**0.6
        return val * scaling, (f"ESO TEL AMBI FWHM = {np.mean(dimm):.3g} arcsec x airmass "
                               f"{x:.3g}^0.6 at 5000 A, lambda^-0.2")
    return None


def error_scale(flux: ArrayLike, err: ArrayLike, lag: int = 2,
                max_values: int = 4_000_000) -> tuple[float, int] | None:
    """Ratio of the measured noise to the reported errors of a cube.

    For every spectrum the second difference ``r_i = f_i − (f_{i−k} + f_{i+k}) / 2``
    (k = ``lag`` channels) removes any locally linear continuum; for independent noise its
    variance is ``e_i² + (e_{i−k}² + e_{i+k}²) / 4``. The ratio is the robust standard
    deviation (1.4826 × median absolute deviation) of the normalised differences over all
    valid values: 1 when the errors describe the scatter, insensitive to emission lines,
    cosmic rays and a minority of bad values. ``lag`` = 2 skips the correlation that the
    resampling of the spectra leaves between adjacent channels (at lag 1 the real MUSE
    sub-cube gives 0.88 instead of 1.01).

    Parameters
    ----------
    flux, err : array_like, shape (nwave, ny, nx)
        Values and 1σ errors (NaN = masked).
    lag : int
        Channel step k (≥ 1).
    max_values : int
        Spaxels are subsampled (evenly) beyond this many values.

    Returns
    -------
    (ratio, n) : the ratio and the number of differences used, or None when fewer than
    100 are valid.
    """
    f, e, k = noise_cube_pair(flux, err, lag)
    f = f.reshape(f.shape[0], -1)
    e = e.reshape(e.shape[0], -1)
    step = max(1, int(np.ceil(f.size / max_values)))
    z = second_differences(f[:, ::step], e[:, ::step], k)
    z = z[np.isfinite(z)]  # an error of 0 gives ±inf or NaN
    if z.size < 100:
        return None
    return robust_sigma(z), int(z.size)


def _check_errors(cube: IFSCube, path: PathLike, check: bool) -> IFSCube:
    """Measure the error scale of a freshly read cube, store it, warn when it is off."""
    if not check:
        return cube
    res = error_scale(cube.flux, cube.err)
    if res is None:
        return cube
    ratio, n = res
    cube.error_scale = ratio
    if not (1.0 / ERROR_SCALE_LIMIT <= ratio <= ERROR_SCALE_LIMIT):
        warnings.warn(
            f"{path}: the scatter of the data is {ratio:.3g} times the reported errors "
            f"(second differences of {n} spectral pixels); the error units or the error "
            f"extension may be wrong (IFSCube.error_scale holds the ratio)",
            ErrorScaleWarning, stacklevel=3)
    return cube


def _wave_from_wcs(header: fits.Header, n: int, path: PathLike) -> NDArray[np.float64]:
    """Wavelengths (Å) of axis 3 from CRVAL3/CRPIX3 and CD3_3 or CDELT3 (linear or log)."""
    try:
        crval = float(header["CRVAL3"])
    except KeyError:
        raise ValueError(f"{path}: no CRVAL3: the wavelength axis is undefined") from None
    step = header.get("CD3_3", header.get("CDELT3"))
    if step is None:
        raise ValueError(f"{path}: no CD3_3/CDELT3: the wavelength step is undefined")
    crpix = float(header.get("CRPIX3", 1.0))
    pix = np.arange(n) + 1.0 - crpix
    ctype = str(header.get("CTYPE3", "WAVE")).upper()
    cunit = str(header.get("CUNIT3", "Angstrom")).strip()
    if ctype.endswith("-LOG"):
        wave = crval * np.exp(float(step) * pix / crval)
    else:
        wave = crval + float(step) * pix
    scale = 1.0
    if cunit and cunit.lower() not in ("angstrom", "a", "aa"):
        try:
            scale = float(u.Unit(cunit).to(u.AA))
        except (ValueError, u.UnitConversionError) as exc:
            raise ValueError(f"{path}: CUNIT3 {cunit!r} is not a length ({exc})") from None
    return wave * scale


def _medium_from_ctype(header: fits.Header, default: str) -> str:
    ctype = str(header.get("CTYPE3", "")).upper()
    if ctype.startswith("AWAV"):
        return "air"
    if ctype.startswith("WAVE"):
        return "vacuum"
    return default


# --------------------------------------------------------------------------- MaNGA


def read_manga(path: PathLike, mask_bits: tuple[int, ...] = MANGA_BAD_BITS,
               psf_fwhm: float | ArrayLike | None = None,
               check_errors: bool = True) -> IFSCube:
    """Read a MaNGA DRP ``LOGCUBE`` (or ``LINCUBE``) file.

    Parameters
    ----------
    path : path-like
        The ``manga-<plate>-<ifu>-LOGCUBE.fits(.gz)`` file.
    mask_bits : tuple of int
        ``MANGA_DRP3PIXMASK`` bits that mark a value bad (default NOCOV, LOWCOV, DEADFIBER,
        FORESTAR, DONOTUSE). Values with IVAR ≤ 0 are always masked.
    psf_fwhm : float or array, optional
        PSF FWHM (arcsec) overriding the header's GFWHM…ZFWHM.
    check_errors : bool
        Measure the error scale (:func:`error_scale`) and warn when it is off by > 3×.

    Returns
    -------
    IFSCube
        Vacuum wavelengths; ``gal_ebv`` = 0.86 × EBVGAL (the DRP's SFD98 value on the
        Schlafly & Finkbeiner 2011 scale, as :func:`pixedfit.images.ebv_foreground_dust`
        gives the images), ``extinction_corrected`` False.
    """
    with open_fits(path) as hdul:
        prim = hdul[0].header
        fh = _hdu(hdul, "FLUX", path)
        flux = np.asarray(fh.data, dtype=np.float64)
        if flux.ndim != 3:
            raise ValueError(f"{path}: FLUX is not a 3-D cube")
        ivar = np.asarray(_hdu(hdul, "IVAR", path).data, dtype=np.float64)
        if ivar.shape != flux.shape:
            raise ValueError(f"{path}: IVAR shape {ivar.shape} differs from FLUX {flux.shape}")
        mh = _hdu(hdul, "MASK", path, required=False)
        bits = np.zeros(flux.shape, dtype=np.int64)
        if mh is not None:
            bits = np.asarray(mh.data).astype(np.int64)
            if bits.shape != flux.shape:
                raise ValueError(f"{path}: MASK shape differs from FLUX")
        wh = _hdu(hdul, "WAVE", path, required=False)
        wave = (np.asarray(wh.data, dtype=np.float64).ravel() if wh is not None
                else _wave_from_wcs(fh.header, flux.shape[0], path))
        sres = None
        # (SPECRESD, PRESPECRESD are the standard deviations of R, not R)
        for name in ("SPECRES", "PRESPECRES"):
            sh = _hdu(hdul, name, path, required=False)
            if sh is not None and np.asarray(sh.data).ndim == 1:
                sres = np.asarray(sh.data, dtype=np.float64)
                break
        scale = flux_unit_scale(fh.header.get("BUNIT"), 1e-17, f"{path} FLUX")
        wcs = _celestial(fh.header, path)
        ebv = prim.get("EBVGAL")
        psf_src: str | None
        psf, psf_src = psf_fwhm, "argument psf_fwhm"
        if psf is None:
            keys = ("GFWHM", "RFWHM", "IFWHM", "ZFWHM")
            vals = [prim.get(k) for k in keys]
            psf_src = None
            if all(v is not None and float(v) > 0 for v in vals):
                psf = np.interp(wave, MANGA_PSF_WAVE, [float(v) for v in vals])
                psf_src = "header GFWHM/RFWHM/IFWHM/ZFWHM"
        header = prim.copy()
    bad_bits = sum(1 << int(b) for b in mask_bits)
    mask = ((bits & bad_bits) != 0) | ~(ivar > 0) | ~np.isfinite(flux)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.where(ivar > 0, 1.0 / np.sqrt(ivar), np.nan)
    if sres is not None and (sres.size != wave.size or not np.all(sres > 0)):
        good = sres > 0
        sres = (np.interp(wave, wave[good], sres[good]) if sres.size == wave.size and good.any()
                else None)
    cube = IFSCube(flux * scale, err * scale, wave, mask, wcs, wave_medium="vacuum",
                   psf_fwhm=cast("float | NDArray[np.float64] | None", psf),  # converted
                   resolution=sres, survey="manga",
                   gal_ebv=None if ebv is None else SF11_SCALE * float(ebv),
                   extinction_corrected=False,
                   header=header, psf_source=psf_src, covariance=manga_covariance())
    return _check_errors(cube, path, check_errors)


# --------------------------------------------------------------------------- CALIFA


def _califa_setup(header: fits.Header, n: int, wave0: float, path: PathLike) -> str:
    for key in ("SETUP", "INSTRUME", "OBJECT"):
        val = str(header.get(key, "")).upper()
        for s in ("COMB", "V1200", "V500"):
            if s in val:
                return s
    name = os.path.basename(str(path)).upper()
    for s in ("COMB", "V1200", "V500"):
        if s in name:
            return s
    if n == 1877 and abs(wave0 - 3749) < 1:
        return "V500"
    if n == 1901 and abs(wave0 - 3701) < 1:
        return "COMB"
    raise ValueError(f"{path}: cannot tell the CALIFA setup (V500, V1200, COMB): pass setup=")


def read_califa(path: PathLike, setup: str | None = None, psf_fwhm: float = 2.5,
                unit: float = 1e-16, extinction_corrected: bool = True,
                gal_ebv: float | None = None, check_errors: bool = True) -> IFSCube:
    """Read a CALIFA DR3 cube (V500, V1200 or COMB).

    Parameters
    ----------
    path : path-like
        ``<name>.V500.rscube.fits.gz`` or ``<name>.COMB.rscube.fits.gz``.
    setup : {"V500", "V1200", "COMB"}, optional
        Instrument setup (sets the resolution); inferred from the header, file name or
        wavelength grid when omitted.
    psf_fwhm : float
        PSF FWHM in arcsec (not in the files; 2.5″ is the DR3 typical value).
    unit : float
        Scale of the stored values (1e-16 erg s⁻¹ cm⁻² Å⁻¹ in DR3), used when the primary
        header has no parsable BUNIT.
    extinction_corrected : bool
        Whether the spectra are already corrected for Galactic extinction (DR3 cubes are;
        pass False, with ``gal_ebv``, for cubes that are not).
    gal_ebv : float, optional
        Galactic E(B−V) (mag) to keep with the cube.
    check_errors : bool
        Measure the error scale (:func:`error_scale`) and warn when it is off by > 3×.
    """
    with open_fits(path) as hdul:
        prim = hdul[0]
        if prim.data is None or np.asarray(prim.data).ndim != 3:
            raise ValueError(f"{path}: the primary HDU holds no 3-D CALIFA cube")
        flux = np.asarray(prim.data, dtype=np.float64)
        err = np.asarray(_hdu(hdul, "ERROR", path).data, dtype=np.float64)
        if err.shape != flux.shape:
            raise ValueError(f"{path}: ERROR shape differs from the flux cube")
        wh = _hdu(hdul, "ERRWEIGHT", path, required=False)
        errweight = None
        if wh is not None:
            errweight = np.asarray(wh.data, dtype=np.float64)
            if errweight.shape not in (flux.shape, flux.shape[1:]):
                raise ValueError(f"{path}: ERRWEIGHT shape {errweight.shape} matches neither "
                                 f"the cube {flux.shape} nor its (y, x) plane")
        bh = _hdu(hdul, "BADPIX", path, required=False)
        bad = np.zeros(flux.shape, dtype=bool)
        if bh is not None:
            bad = np.asarray(bh.data) != 0
            if bad.shape != flux.shape:
                raise ValueError(f"{path}: BADPIX shape differs from the flux cube")
        header = prim.header.copy()
    wave = _wave_from_wcs(header, flux.shape[0], path)
    s = (setup or _califa_setup(header, flux.shape[0], wave[0], path)).upper()
    if s not in CALIFA_FWHM:
        raise ValueError(f"setup: expected one of {sorted(CALIFA_FWHM)}, got {setup!r}")
    scale = flux_unit_scale(header.get("BUNIT"), unit, f"{path} primary")
    wcs = _celestial(header, path)
    mask = bad | ~np.isfinite(flux) | ~(err > 0)
    try:
        cov = califa_covariance(s, err, errweight, ~mask)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    cube = IFSCube(flux * scale, err * scale, wave, mask, wcs, wave_medium="air",
                   psf_fwhm=psf_fwhm, resolution=wave / CALIFA_FWHM[s],
                   survey="califa", gal_ebv=gal_ebv,
                   extinction_corrected=bool(extinction_corrected), header=header,
                   psf_source="argument psf_fwhm (CALIFA files carry no PSF)",
                   covariance=cov)
    return _check_errors(cube, path, check_errors)


# --------------------------------------------------------------------------- MUSE


def muse_lsf_fwhm(wave: ArrayLike) -> NDArray[np.float64]:
    """MUSE line-spread-function FWHM (Å) of Bacon et al. (2017), λ in Å."""
    lam = np.asarray(wave, dtype=np.float64)
    return 5.866e-8 * lam**2 - 9.187e-4 * lam + 6.04


def _muse_fsf(header: fits.Header, wave: NDArray[np.float64],
              fieldmap: NDArray[np.int64] | None = None
              ) -> tuple[NDArray[np.float64], str] | None:
    """FSF FWHM (arcsec) per wavelength from the MPDAF ``FSFnnFWA``/``FSFnnFWB`` keywords.

    A mosaic records one Moffat FSF per field (FWHM = FWA + FWB λ). With a ``FIELDMAP``
    (MPDAF convention: bit 2**i set where field i, 1…NFIELDS, covers the spaxel), the
    FWHM of every covered spaxel is the mean over the fields covering it, and the cube's
    FWHM is the mean over its covered spaxels; fields absent from the cube are ignored.
    Without a field map all fields are averaged.
    """
    if not str(header.get("FSFMODE", "")).upper().startswith("MOFFAT"):
        return None
    fwhm: dict[int, NDArray[np.float64]] = {}
    for i in range(100):
        a, b = header.get(f"FSF{i:02d}FWA"), header.get(f"FSF{i:02d}FWB")
        if a is not None and b is not None:
            fwhm[i] = float(a) + float(b) * wave
    if not fwhm:
        return None
    weights = {i: 1.0 for i in fwhm}
    how = f"mean of all {len(fwhm)} fields"
    if fieldmap is not None:
        cover = {i: (fieldmap & (1 << i)) != 0 for i in fwhm}
        nfields = np.sum([c for c in cover.values()], axis=0)
        covered = nfields > 0
        if covered.any():
            weights = {i: float(np.sum(np.where(covered, c / np.maximum(nfields, 1), 0.0)))
                       for i, c in cover.items()}
            used = sorted(i for i, w in weights.items() if w > 0)
            how = (f"fields {','.join(str(i) for i in used)} covering the cube (FIELDMAP)")
    total = sum(weights.values())
    out = sum(w * fwhm[i] for i, w in weights.items()) / total
    out = np.asarray(out, dtype=np.float64)
    return (out, how) if np.all(out > 0) else None


def read_muse(path: PathLike, psf_fwhm: float | ArrayLike | None = None,
              unit: float | None = None, var_unit: float | None = None,
              check_errors: bool = True) -> IFSCube:
    """Read a MUSE cube (``DATA``, ``STAT`` variance, optional ``DQ``).

    Parameters
    ----------
    path : path-like
        The FITS file.
    psf_fwhm : float or array, optional
        PSF FWHM (arcsec; one value or one per wavelength) overriding the header.
        Without it: the FSF keywords, else the seeing keywords (:func:`seeing_fwhm`, a
        warning says so), else unknown (matching to images then asks for it).
    unit : float, optional
        Scale of the stored values (erg s⁻¹ cm⁻² Å⁻¹) when DATA has no BUNIT.
    var_unit : float, optional
        Scale of the stored variances ((erg s⁻¹ cm⁻² Å⁻¹)²), overriding the STAT BUNIT
        (:func:`variance_unit_scale`).
    check_errors : bool
        Measure the error scale (:func:`error_scale`) and warn when it is off by > 3×.

    Raises
    ------
    ValueError
        Missing extensions, shapes that differ, or a DATA/STAT BUNIT that is not an f_λ
        (squared) unit — the message names the file, HDU and keyword.
    """
    with open_fits(path) as hdul:
        dh = _hdu(hdul, "DATA", path)
        flux = np.asarray(dh.data, dtype=np.float64)
        if flux.ndim != 3:
            raise ValueError(f"{path}: DATA is not a 3-D cube")
        sh = _hdu(hdul, "STAT", path)
        var = np.asarray(sh.data, dtype=np.float64)
        if var.shape != flux.shape:
            raise ValueError(f"{path}: STAT shape differs from DATA")
        qh = _hdu(hdul, "DQ", path, required=False)
        bad = np.zeros(flux.shape, dtype=bool)
        if qh is not None:
            bad = np.asarray(qh.data) != 0
        fh = _hdu(hdul, "FIELDMAP", path, required=False)
        fieldmap = None if fh is None else np.asarray(fh.data).astype(np.int64)
        if fieldmap is not None and fieldmap.shape != flux.shape[1:]:
            raise ValueError(f"{path}: FIELDMAP shape {fieldmap.shape} differs from the "
                             f"spaxel grid {flux.shape[1:]}")
        prim = hdul[0].header.copy()
        dbunit = dh.header.get("BUNIT")
        scale = flux_unit_scale(dbunit, unit, f"{path} HDU DATA")
        if var_unit is not None:
            vscale = float(var_unit)
            if not (np.isfinite(vscale) and vscale > 0):
                raise ValueError(f"var_unit: must be finite and > 0, got {var_unit}")
        else:
            vscale = variance_unit_scale(sh.header.get("BUNIT"), dbunit, scale,
                                         f"{path} HDU STAT")
        wave = _wave_from_wcs(dh.header, flux.shape[0], path)
        medium = _medium_from_ctype(dh.header, "air")
        wcs = _celestial(dh.header, path)
    with np.errstate(invalid="ignore"):
        err = np.where(var > 0, np.sqrt(var * vscale), np.nan)
    psf, src = _muse_psf(prim, wave, psf_fwhm, path, fieldmap)
    cube = IFSCube(flux * scale, err, wave, bad, wcs, wave_medium=medium,
                   psf_fwhm=cast("float | NDArray[np.float64] | None", psf),  # converted
                   resolution=wave / muse_lsf_fwhm(wave), survey="muse", gal_ebv=None,
                   extinction_corrected=False, header=prim, psf_source=src)
    cube.covariance = _measured(cube, "MUSE: measured on the cube")
    return _check_errors(cube, path, check_errors)


def _muse_psf(header: fits.Header, wave: NDArray[np.float64],
              psf_fwhm: float | ArrayLike | None, path: PathLike,
              fieldmap: NDArray[np.int64] | None = None
              ) -> tuple[float | ArrayLike | None, str | None]:
    """PSF FWHM and its source: argument, FSF keywords, seeing keywords (warned), none."""
    if psf_fwhm is not None:
        return psf_fwhm, "argument psf_fwhm"
    fsf = _muse_fsf(header, wave, fieldmap)
    if fsf is not None:
        return fsf[0], f"MPDAF FSF keywords, {fsf[1]}"
    return _seeing_fallback(header, wave, path)


def _measured(cube: IFSCube, source: str) -> SpaxelCovariance | None:
    """Spaxel correlation measured on a cube (None when the cube is too small)."""
    try:
        return measure_covariance(cube.flux, cube.err, source=source)
    except ValueError:
        return None


def _seeing_fallback(header: fits.Header, wave: NDArray[np.float64], path: PathLike
                     ) -> tuple[NDArray[np.float64] | None, str | None]:
    see = seeing_fwhm(header, wave)
    if see is None:
        return None, None
    fwhm, src = see
    warnings.warn(f"{path}: no PSF model in the header; PSF FWHM from the {src} "
                  f"({np.median(fwhm):.3g}\" median); pass psf_fwhm= for a measured PSF",
                  UserWarning, stacklevel=3)
    return fwhm, src


# --------------------------------------------------------------------------- generic


def _resolution_argument(resolution: Any, nwave: int, path: PathLike) -> NDArray[np.float64]:
    """``read_generic``'s ``resolution``: one R > 0, or one per wavelength of the cube."""
    try:
        res = np.asarray(resolution, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"resolution must be a number or one number per wavelength, got "
                        f"{resolution!r}") from exc
    if res.ndim > 1 or (res.ndim == 1 and res.size != nwave):
        raise ValueError(f"resolution must be one R or one per wavelength: {path} has {nwave} "
                         f"wavelengths, resolution has shape {res.shape}")
    if not (np.all(np.isfinite(res)) and np.all(res > 0)):
        raise ValueError("resolution: the resolving power R must be finite and > 0")
    return np.broadcast_to(res, (nwave,)).copy()


def read_generic(
    path: PathLike,
    *,
    flux_ext: int | str = 0,
    err_ext: int | str | None = None,
    var_ext: int | str | None = None,
    ivar_ext: int | str | None = None,
    mask_ext: int | str | None = None,
    wave_ext: int | str | None = None,
    unit: float | None = None,
    wave_medium: str | None = None,
    psf_fwhm: float | ArrayLike | None = None,
    resolution: ArrayLike | float | None = None,
    gal_ebv: float | None = None,
    extinction_corrected: bool = False,
    survey: str = "generic",
    check_errors: bool = True,
) -> IFSCube:
    """Read any IFS cube with a celestial WCS.

    Exactly one of ``err_ext`` (1σ), ``var_ext`` (variance) or ``ivar_ext`` (inverse
    variance) gives the uncertainties, in the flux's stored unit (squared or inverse
    squared). ``mask_ext``: non-zero = bad. Wavelengths come from ``wave_ext`` or the
    3-D WCS of the flux extension (linear or ``-LOG``); their medium from ``wave_medium``
    or ``CTYPE3`` (AWAV = air, WAVE = vacuum). ``unit`` scales stored values to
    erg s⁻¹ cm⁻² Å⁻¹ when BUNIT is absent. ``resolution``: R (number or per wavelength).
    A variance extension with a BUNIT of its own is scaled by it
    (:func:`variance_unit_scale`). ``psf_fwhm`` (arcsec) defaults to the seeing keywords
    (:func:`seeing_fwhm`, with a warning) when the primary header has them.
    ``check_errors``: measure the error scale (:func:`error_scale`) and warn when it is
    off by more than 3×.

    Parameters
    ----------
    path : path-like
        The FITS file.
    flux_ext : int or str
        Extension of the flux cube (wave, y, x).
    err_ext, var_ext, ivar_ext : int or str, optional
        Extension of the 1σ errors, variances or inverse variances (exactly one).
    mask_ext : int or str, optional
        Extension of the mask cube (non-zero: bad).
    wave_ext : int or str, optional
        Extension of the wavelengths, Å (default: the flux extension's 3-D WCS).
    unit : float, optional
        Scale of the stored values (erg s⁻¹ cm⁻² Å⁻¹) when BUNIT is absent.
    wave_medium : {"air", "vacuum"}, optional
        Medium of the wavelengths (default from ``CTYPE3``).
    psf_fwhm : float or array_like, optional
        PSF FWHM, arcsec (one value or one per wavelength).
    resolution : float or array_like, optional
        Spectral resolution R (one value or one per wavelength).
    gal_ebv : float, optional
        Galactic E(B−V) of the field, mag.
    extinction_corrected : bool
        The cube is already corrected for Galactic extinction.
    survey : str
        Survey name recorded in the cube.
    check_errors : bool
        Measure the error scale and warn when it is off by more than 3×.

    Returns
    -------
    IFSCube
    """
    given = [x is not None for x in (err_ext, var_ext, ivar_ext)]
    if sum(given) != 1:
        raise ValueError("give exactly one of err_ext, var_ext, ivar_ext")
    with open_fits(path) as hdul:
        def data(ext: int | str, what: str) -> NDArray[np.float64]:
            try:
                hdu = hdul[ext]
            except (KeyError, IndexError):
                raise ValueError(f"{path}: {what} extension {ext!r} missing") from None
            if hdu.data is None:
                raise ValueError(f"{path}: {what} extension {ext!r} holds no data")
            return np.asarray(hdu.data, dtype=np.float64)

        flux = data(flux_ext, "flux")
        if flux.ndim != 3:
            raise ValueError(f"{path}: the flux extension is not a 3-D cube")
        fh = hdul[flux_ext].header
        scale = flux_unit_scale(fh.get("BUNIT"), unit, f"{path} flux HDU {flux_ext!r}")
        err_scale = scale
        if err_ext is not None:
            err = data(err_ext, "error")
        elif var_ext is not None:
            v = data(var_ext, "variance")
            vbunit = hdul[var_ext].header.get("BUNIT")
            if vbunit is not None and str(vbunit).strip():
                err_scale = math.sqrt(variance_unit_scale(
                    vbunit, fh.get("BUNIT"), scale, f"{path} variance HDU {var_ext!r}"))
            with np.errstate(invalid="ignore"):
                err = np.sqrt(np.where(v > 0, v, np.nan))
        else:
            # exactly one of the three is given (checked above): this one
            iv = data(cast("int | str", ivar_ext), "inverse variance")
            with np.errstate(divide="ignore", invalid="ignore"):
                err = np.where(iv > 0, 1.0 / np.sqrt(iv), np.nan)
        if err.shape != flux.shape:
            raise ValueError(f"{path}: the error cube shape differs from the flux cube")
        mask = np.zeros(flux.shape, dtype=bool)
        if mask_ext is not None:
            mask = data(mask_ext, "mask") != 0
            if mask.shape != flux.shape:
                raise ValueError(f"{path}: the mask cube shape differs from the flux cube")
        wave = (data(wave_ext, "wavelength").ravel() if wave_ext is not None
                else _wave_from_wcs(fh, flux.shape[0], path))
        medium = wave_medium or _medium_from_ctype(fh, "")
        if medium not in ("air", "vacuum"):
            raise ValueError(f"{path}: the wavelength medium is unknown: pass wave_medium")
        wcs = _celestial(fh, path)
        header = hdul[0].header.copy()
    res = None
    if resolution is not None:
        res = _resolution_argument(resolution, wave.size, path)
    src: str | None
    psf, src = psf_fwhm, "argument psf_fwhm"
    if psf is None:
        psf, src = _seeing_fallback(header, wave, path)
    cube = IFSCube(flux * scale, err * err_scale, wave, mask, wcs, wave_medium=medium,
                   psf_fwhm=cast("float | NDArray[np.float64] | None", psf),  # converted
                   resolution=res, survey=survey, gal_ebv=gal_ebv,
                   extinction_corrected=extinction_corrected, header=header,
                   psf_source=src)
    cube.covariance = _measured(cube, f"{survey}: measured on the cube")
    return _check_errors(cube, path, check_errors)


def read_ifs(path: PathLike, survey: str, **kwargs: Any) -> IFSCube:
    """Read an IFS cube of ``survey`` (``"manga"``, ``"califa"``, ``"muse"``, ``"generic"``).

    Parameters
    ----------
    path : path-like
        The FITS file.
    survey : str
        ``"manga"``, ``"califa"``, ``"muse"`` or ``"generic"`` (any case).
    **kwargs
        Options of the survey's reader (:func:`read_manga`, :func:`read_califa`,
        :func:`read_muse`, :func:`read_generic`).

    Returns
    -------
    IFSCube
    """
    key = str(survey).strip().lower()
    readers: dict[str, Callable[..., IFSCube]] = {
        "manga": read_manga, "califa": read_califa, "muse": read_muse, "generic": read_generic}
    if key not in readers:
        raise ValueError(f"survey: unknown IFS survey {survey!r}; known: {', '.join(SURVEYS)}")
    return readers[key](path, **kwargs)
