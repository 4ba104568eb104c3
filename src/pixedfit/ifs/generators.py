"""Synthetic IFS cubes and imaging in the survey file layouts, for tests and demonstrations.

No real MaNGA or CALIFA cube is available to the test suite, so these writers produce files
in the layouts read by :mod:`pixedfit.ifs.readers` (see its docstring for the data models):

* :func:`write_manga_logcube` — MaNGA DRP LOGCUBE: header-only PRIMARY (EBVGAL, GFWHM…ZFWHM,
  OBJRA/OBJDEC, PLATEIFU, MANGAID, DRP3QUAL), ``FLUX`` (1e-17 erg/s/cm²/Å/spaxel, 3-D WCS
  with ``CTYPE3 = 'WAVE-LOG'``), ``IVAR``, ``MASK`` (DRP3PIXMASK bits), ``WAVE`` (vacuum),
  ``SPECRES``, ``SPECRESD``, and reconstructed ``GIMG``, ``RIMG``, ``IIMG``, ``ZIMG``
  (nanomaggies per spaxel, from the cube).
* :func:`write_califa_cube` — CALIFA DR3 V500/COMB/V1200: primary = flux (1e-16), ``ERROR``,
  ``ERRWEIGHT``, ``BADPIX``, ``FIBCOVER``; linear air wavelengths in CRVAL3/CDELT3/CRPIX3.

The spectra come from any array; :class:`AnalyticGalaxy` provides a galaxy with known
properties: two exponential-disc components (a compact red "bulge" and an extended blue
"disc") with smooth continua carrying absorption features and a 4000 Å break, plus an
emission-line component (Gaussian lines of the strong nebular lines), each with its own
elliptical spatial profile, observed at any redshift, through any Gaussian PSF (per
wavelength) and onto any WCS grid — the same galaxy seen by an IFS and by imaging.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from numpy.typing import ArrayLike, NDArray
from scipy.signal import fftconvolve

from .._paths import atomic_path
from ..filters import get_filter_curve, photometry, pivot_wavelength
from ..lines import air_to_vacuum, vacuum_to_air
from ..units import C_AA_PER_S
from ..validation import pixel_scale_arcsec, require_celestial_wcs
from .operators import discrete_gaussian_kernel
from .readers import CALIFA_FWHM

__all__ = [
    "AnalyticGalaxy",
    "ModelGalaxy",
    "califa_wave_grid",
    "manga_wave_grid",
    "write_califa_cube",
    "write_manga_logcube",
]

PathLike = str | os.PathLike[str]

#: Absorption features of the analytic continua: (rest vacuum Å, σ Å, depth).
_ABSORPTION = ((3934.8, 6.0, 0.35), (3969.6, 6.0, 0.3), (4102.9, 8.0, 0.15),
               (4305.0, 10.0, 0.1), (4341.7, 8.0, 0.12), (4862.7, 8.0, 0.12),
               (5177.0, 12.0, 0.12), (5270.0, 10.0, 0.06), (5895.0, 8.0, 0.1),
               (6564.6, 8.0, 0.08), (8544.4, 5.0, 0.1), (8664.5, 5.0, 0.12))
#: Emission lines of the analytic galaxy: (rest vacuum Å, flux relative to Hα).
_EMISSION = ((3727.1, 0.45), (3729.9, 0.6), (4102.9, 0.09), (4341.7, 0.16), (4862.7, 0.35),
             (4960.3, 0.12), (5008.2, 0.36), (6302.0, 0.05), (6549.9, 0.1), (6564.6, 1.0),
             (6585.3, 0.3), (6718.3, 0.15), (6732.7, 0.11), (9071.1, 0.05), (9533.2, 0.12))


def manga_wave_grid(step: int = 1) -> NDArray[np.float64]:
    """MaNGA LOGCUBE vacuum wavelengths: 10^(3.5589 + 1e-4 k), k = 0…4562 (every ``step``)."""
    # numpy stubs: float ** float array is typed floating[Any]; it is float64
    return cast("NDArray[np.float64]", 10.0 ** (3.5589 + 1e-4 * np.arange(0, 4563, int(step))))


def califa_wave_grid(setup: str = "V500") -> NDArray[np.float64]:
    """CALIFA DR3 air wavelengths: V500 3749 + 2k (1877), COMB 3701 + 2k (1901),
    V1200 3650 + 0.7k (1701)."""
    grids = {"V500": (3749.0, 2.0, 1877), "COMB": (3701.0, 2.0, 1901),
             "V1200": (3650.0, 0.7, 1701)}
    s = setup.upper()
    if s not in grids:
        raise ValueError(f"setup: one of {sorted(grids)}, got {setup!r}")
    w0, dw, n = grids[s]
    return cast("NDArray[np.float64]", w0 + dw * np.arange(n))  # numpy stubs: floating[Any]


@dataclass(kw_only=True)
class AnalyticGalaxy:
    """A galaxy with known spectra and light profiles (see module docstring).

    Attributes
    ----------
    ra, dec : float
        Centre (deg).
    z : float
        Redshift.
    flux_5500 : float
        Total continuum f_λ at observed 5500 Å (erg s⁻¹ cm⁻² Å⁻¹), bulge + disc.
    bulge_fraction : float
        Bulge share of ``flux_5500``.
    r_bulge, r_disc, r_lines : float
        Effective (half-light) radii (arcsec) of the components.
    axis_ratio : float, pa : float
        Shape of all components (b/a, position angle in deg east of north).
    halpha_flux : float
        Total Hα flux (erg s⁻¹ cm⁻²); line σ ``line_sigma`` (Å, rest frame).
    """

    ra: float = 150.0
    dec: float = 2.0
    z: float = 0.03
    flux_5500: float = 2e-15
    bulge_fraction: float = 0.4
    r_bulge: float = 1.5
    r_disc: float = 4.0
    r_lines: float = 3.0
    axis_ratio: float = 0.7
    pa: float = 30.0
    halpha_flux: float = 3e-14
    line_sigma: float = 2.5

    # ---------------------------------------------------------------- spectra
    def component_spectra(self, wave: ArrayLike, medium: str = "vacuum") -> NDArray[np.float64]:
        """Spectra (3, nwave) of bulge, disc and lines (total f_λ, erg s⁻¹ cm⁻² Å⁻¹) at
        observed wavelengths ``wave`` (Å, ``medium``).

        Parameters
        ----------
        wave : array_like, shape (nwave,)
            Observed wavelengths, Å.
        medium : {"vacuum", "air"}
            Medium of ``wave``.

        Returns
        -------
        ndarray, shape (3, nwave)
        """
        lam = np.asarray(wave, dtype=np.float64)
        rest = lam / (1.0 + self.z)
        if medium == "air":  # analytic features are defined in vacuum: shift them
            rest = rest * (lam / np.asarray(vacuum_to_air(lam)))
        elif medium != "vacuum":
            raise ValueError(f"medium: 'vacuum' or 'air', got {medium!r}")
        absorb = np.ones_like(rest)
        for w0, sig, depth in _ABSORPTION:
            absorb *= 1.0 - depth * np.exp(-0.5 * ((rest - w0) / sig) ** 2)
        brk = 0.5 * (1.0 + np.tanh((rest - 4000.0) / 40.0))
        x = rest / 5500.0
        bulge = x**0.5 * (0.45 + 0.55 * brk) * absorb
        disc = x**-1.2 * (0.8 + 0.2 * brk) * (0.5 + 0.5 * absorb)
        ref = 5500.0 / (1.0 + self.z)
        r0 = ref / 5500.0
        nb = r0**0.5 * (0.45 + 0.55 * 0.5 * (1 + math.tanh((ref - 4000) / 40)))
        nd = r0**-1.2 * (0.8 + 0.2 * 0.5 * (1 + math.tanh((ref - 4000) / 40)))
        bulge *= self.bulge_fraction * self.flux_5500 / nb
        disc *= (1.0 - self.bulge_fraction) * self.flux_5500 / nd
        lines = np.zeros_like(rest)
        for w0, rel in _EMISSION:
            sig = self.line_sigma
            lines += rel * np.exp(-0.5 * ((rest - w0) / sig) ** 2) / (sig * math.sqrt(2 * math.pi))
        lines *= self.halpha_flux / (1.0 + self.z)  # per observed Å
        return np.stack([bulge, disc, lines])

    # ---------------------------------------------------------------- profiles
    def _profile(self, wcs: WCS, shape: tuple[int, int], r_eff: float,
                 oversample: int = 5) -> NDArray[np.float64]:
        """Fraction of the component's flux in each pixel (exponential, no PSF)."""
        ny, nx = shape
        sub = (np.arange(oversample) + 0.5) / oversample - 0.5
        yy, xx = np.indices((ny, nx), dtype=float)
        ys, xs = np.broadcast_arrays(yy[:, :, None, None] + sub[None, None, :, None],
                                     xx[:, :, None, None] + sub[None, None, None, :])
        ys, xs = ys.ravel(), xs.ravel()
        ra, dec = wcs.pixel_to_world_values(xs, ys)
        dra = (np.asarray(ra) - self.ra + 180.0) % 360.0 - 180.0
        ex = dra * math.cos(math.radians(self.dec)) * 3600.0  # east
        ny_ = (np.asarray(dec) - self.dec) * 3600.0  # north
        pa = math.radians(self.pa)
        major = ex * math.sin(pa) + ny_ * math.cos(pa)
        minor = ex * math.cos(pa) - ny_ * math.sin(pa)
        r = np.hypot(major, minor / self.axis_ratio)
        h = r_eff / 1.6783
        area = (pixel_scale_arcsec(wcs) / oversample) ** 2
        sb = np.exp(-r / h) / (2.0 * math.pi * h * h * self.axis_ratio)
        return (sb * area).reshape(ny, nx, oversample * oversample).sum(axis=2)

    def profiles(self, wcs: WCS, shape: tuple[int, int]) -> NDArray[np.float64]:
        """Pixel flux fractions (3, ny, nx) of bulge, disc and lines, before the PSF.

        Parameters
        ----------
        wcs : astropy.wcs.WCS
            Celestial WCS of the grid.
        shape : (ny, nx)
            Shape of the grid.

        Returns
        -------
        ndarray, shape (3, ny, nx)
        """
        w = require_celestial_wcs(wcs, "wcs")
        return np.stack([self._profile(w, shape, r) for r in
                         (self.r_bulge, self.r_disc, self.r_lines)])

    def cube(self, wave: ArrayLike, wcs: WCS, shape: tuple[int, int],
             psf_fwhm: float | ArrayLike, medium: str = "vacuum") -> NDArray[np.float64]:
        """Noise-free cube (nwave, ny, nx) of f_λ per pixel seen through a Gaussian PSF of
        FWHM ``psf_fwhm`` (arcsec; one value or one per wavelength).

        Parameters
        ----------
        wave : array_like, shape (nwave,)
            Observed wavelengths, Å.
        wcs : astropy.wcs.WCS
            Celestial WCS of the spaxel grid.
        shape : (ny, nx)
            Shape of the grid.
        psf_fwhm : float or array_like, shape (nwave,)
            PSF FWHM, arcsec.
        medium : {"vacuum", "air"}
            Medium of ``wave``.

        Returns
        -------
        ndarray, shape (nwave, ny, nx)
            f_λ per pixel, erg s⁻¹ cm⁻² Å⁻¹.
        """
        lam = np.asarray(wave, dtype=np.float64)
        spec = self.component_spectra(lam, medium)
        prof = self.profiles(wcs, shape)
        scale = pixel_scale_arcsec(require_celestial_wcs(wcs, "wcs"))
        psf = np.broadcast_to(np.asarray(psf_fwhm, dtype=np.float64), lam.shape)
        key = np.round(psf / scale, 3)
        out = np.empty((lam.size, *shape))
        for kv in np.unique(key):
            ch = key == kv
            conv = _convolve(prof, kv)
            out[ch] = np.einsum("cw,cyx->wyx", spec[:, ch], conv)
        return out

    def image(self, filters: Sequence[str], wcs: WCS, shape: tuple[int, int],
              psf_fwhm: float) -> NDArray[np.float64]:
        """Noise-free band images (nbands, ny, nx) of mean f_λ per pixel (erg s⁻¹ cm⁻² Å⁻¹)
        through a Gaussian PSF of FWHM ``psf_fwhm`` (arcsec); vacuum wavelengths.

        Parameters
        ----------
        filters : sequence of str
            Bands.
        wcs : astropy.wcs.WCS
            Celestial WCS of the image grid.
        shape : (ny, nx)
            Shape of the grid.
        psf_fwhm : float
            PSF FWHM, arcsec.

        Returns
        -------
        ndarray, shape (nbands, ny, nx)
        """
        lo = min(get_filter_curve(f)[0][0] for f in filters)
        hi = max(get_filter_curve(f)[0][-1] for f in filters)
        lam = np.arange(max(lo - 10.0, 100.0), hi + 10.0, 0.5)
        bands = photometry(lam, self.component_spectra(lam), list(filters))  # (3, nbands)
        scale = pixel_scale_arcsec(require_celestial_wcs(wcs, "wcs"))
        conv = _convolve(self.profiles(wcs, shape), psf_fwhm / scale)
        return np.einsum("cb,cyx->byx", bands, conv)


class SpectrumModel(Protocol):
    """What :class:`ModelGalaxy` needs of its model: an observed-frame spectrum
    (:meth:`pixedfit.sps.SEDModel.spectrum`)."""

    def spectrum(self, params: Any = None, z: Any = None, threads: int | None = None
                 ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Observed-frame spectrum of the model ``params``.

        Parameters
        ----------
        params : dict or array_like
            Model parameters (a dict of scalars for one model).
        z : float
            Redshift, > 0.
        threads : int, optional
            Threads of the model computation.

        Returns
        -------
        wave : ndarray, shape (nwave,)
            Observed wavelengths λ(1+z), Å.
        flux : ndarray, shape (nwave,)
            f_λ, erg s⁻¹ cm⁻² Å⁻¹.
        """
        ...


@dataclass(kw_only=True)
class ModelGalaxy(AnalyticGalaxy):
    """:class:`AnalyticGalaxy` whose bulge and disc spectra come from an SEDModel.

    ``bulge_params`` and ``disc_params`` are SEDModel parameter dicts (``log_mass`` sets each
    component's total mass); nebular emission, if the model has it, is part of the component
    spectra, so the separate line component is zero. ``flux_5500``, ``bulge_fraction`` and
    ``halpha_flux`` are not used. The model's wavelengths are taken as vacuum.
    """

    model: SpectrumModel | None = None
    bulge_params: dict | None = None
    disc_params: dict | None = None

    def component_spectra(self, wave: ArrayLike, medium: str = "vacuum") -> NDArray[np.float64]:
        """Spectra (3, nwave): bulge, disc (SEDModel, observed frame) and zero lines.

        Parameters
        ----------
        wave : array_like, shape (nwave,)
            Observed wavelengths, Å.
        medium : {"vacuum", "air"}
            Medium of ``wave``.

        Returns
        -------
        ndarray, shape (3, nwave)
            f_λ, erg s⁻¹ cm⁻² Å⁻¹.
        """
        if self.model is None or self.bulge_params is None or self.disc_params is None:
            raise ValueError("ModelGalaxy needs model, bulge_params and disc_params")
        lam = np.asarray(wave, dtype=np.float64)
        if medium == "air":
            lam_vac = np.asarray(air_to_vacuum(lam))
        elif medium == "vacuum":
            lam_vac = lam
        else:
            raise ValueError(f"medium: 'vacuum' or 'air', got {medium!r}")
        out = np.zeros((3, lam.size))
        for i, params in enumerate((self.bulge_params, self.disc_params)):
            w, f = self.model.spectrum(params, z=self.z)
            out[i] = np.interp(lam_vac, w, f)
        return out


def _convolve(prof: NDArray[np.float64], fwhm_pix: float) -> NDArray[np.float64]:
    k = discrete_gaussian_kernel(float(fwhm_pix))
    if k.size == 1:
        return prof
    return fftconvolve(prof, k[None], mode="same", axes=(1, 2))


# --------------------------------------------------------------------------- writers


def _as_cube(value: ArrayLike, name: str, shape: tuple[int, ...] | None = None) -> NDArray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 3:
        raise ValueError(f"{name}: expected a (wave, y, x) cube, got shape {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name}: shape {arr.shape} differs from {shape}")
    return arr


def _cube_header(wcs: WCS, wave0: float, step: float, ctype3: str) -> fits.Header:
    hdr = require_celestial_wcs(wcs, "wcs").to_header()
    hdr["CTYPE3"] = ctype3
    hdr["CUNIT3"] = "Angstrom"
    hdr["CRPIX3"] = 1.0
    hdr["CRVAL3"] = wave0
    hdr["CD3_3"] = step
    return hdr


def write_manga_logcube(
    path: PathLike,
    wave: ArrayLike,
    flux: ArrayLike,
    err: ArrayLike,
    wcs: WCS,
    *,
    mask: ArrayLike | None = None,
    psf_fwhm: Sequence[float] = (2.6, 2.5, 2.45, 2.4),
    specres: ArrayLike | None = None,
    ebv: float = 0.0,
    plateifu: str = "9999-12701",
    overwrite: bool = False,
) -> None:
    """Write a cube in the MaNGA DRP LOGCUBE layout.

    Parameters
    ----------
    path : path-like
        FITS file to write.
    wave : array_like, shape (nwave,)
        Vacuum wavelengths, Å, log-spaced (e.g. :func:`manga_wave_grid`).
    flux, err : array_like, shape (nwave, ny, nx)
        f_λ and errors per spaxel, erg s⁻¹ cm⁻² Å⁻¹ (stored ×1e17).
    wcs : astropy.wcs.WCS
        Celestial WCS of the spaxel grid.
    mask : array_like of int, shape (nwave, ny, nx), optional
        DRP3PIXMASK values (default: 1024 = DONOTUSE where flux or err is not finite).
    psf_fwhm : (g, r, i, z)
        PSF FWHM (arcsec) written as GFWHM…ZFWHM.
    specres : array_like, shape (nwave,), optional
        Resolving power R (default a smooth MaNGA-like curve, 1400–2600).
    ebv : float
        Galactic E(B−V) written as EBVGAL (the spectra are not corrected by it).
    plateifu : str
        PLATEIFU keyword of the file.
    overwrite : bool
        Replace an existing file.
    """
    lam = np.asarray(wave, dtype=np.float64)
    f = _as_cube(flux, "flux")
    e = _as_cube(err, "err", f.shape)
    if lam.ndim != 1 or lam.size != f.shape[0]:
        raise ValueError("wave: one wavelength per cube channel")
    dlog = np.diff(np.log10(lam))
    if lam.size > 1 and not np.allclose(dlog, dlog[0], rtol=1e-6, atol=1e-12):
        raise ValueError("wave: a LOGCUBE needs log-spaced wavelengths")
    bad = ~np.isfinite(f) | ~np.isfinite(e) | ~(e > 0)
    m = (np.where(bad, 1024, 0) if mask is None else np.asarray(mask)).astype(np.int32)
    if m.shape != f.shape:
        raise ValueError("mask: shape differs from flux")
    if len(psf_fwhm) != 4:
        raise ValueError("psf_fwhm: four values (g, r, i, z)")
    sres = (np.interp(lam, [3600, 10400], [1400, 2600]) if specres is None
            else np.asarray(specres, dtype=np.float64))
    prim = fits.Header()
    prim["PLATEIFU"] = plateifu
    prim["MANGAID"] = "1-000000"
    prim["DRP3QUAL"] = 0
    prim["EBVGAL"] = (float(ebv), "Galactic E(B-V) from SFD")
    for k, v in zip(("GFWHM", "RFWHM", "IFWHM", "ZFWHM"), psf_fwhm, strict=True):
        prim[k] = (float(v), "reconstructed PSF FWHM [arcsec]")
    cel = require_celestial_wcs(wcs, "wcs")
    ra, dec = cel.pixel_to_world_values((f.shape[2] - 1) / 2, (f.shape[1] - 1) / 2)
    prim["OBJRA"], prim["OBJDEC"] = float(ra), float(dec)
    prim["IFURA"], prim["IFUDEC"] = float(ra), float(dec)
    step = math.log(10.0) * 1e-4 * lam[0] if lam.size == 1 else math.log(lam[1] / lam[0]) * lam[0]
    hdr = _cube_header(cel, float(lam[0]), step, "WAVE-LOG")
    hdr["BUNIT"] = "1E-17 erg/s/cm^2/Ang/spaxel"
    ivar = np.where(bad, 0.0, 1.0 / np.where(bad, 1.0, e * 1e17) ** 2)
    hdus = [fits.PrimaryHDU(header=prim),
            fits.ImageHDU(np.where(bad, 0.0, f * 1e17).astype(np.float32), hdr, name="FLUX"),
            fits.ImageHDU(ivar.astype(np.float32), hdr, name="IVAR"),
            fits.ImageHDU(m, hdr, name="MASK"),
            fits.ImageHDU(lam, name="WAVE"),
            fits.ImageHDU(sres, name="SPECRES"),
            fits.ImageHDU(0.05 * sres, name="SPECRESD")]
    img_hdr = cel.to_header()
    img_hdr["BUNIT"] = "nanomaggies/pixel"
    band_filters = ("sdss_g", "sdss_r", "sdss_i", "sdss_z")
    for band, fname in zip("GRIZ", band_filters, strict=True):
        wf, _ = get_filter_curve(fname)
        inside = (lam >= wf[0]) & (lam <= wf[-1])
        img = np.zeros(f.shape[1:])
        if lam[0] <= wf[0] and lam[-1] >= wf[-1] and inside.sum() > 2:
            fl = np.where(bad, 0.0, f).reshape(lam.size, -1).T
            mean_flam = photometry(lam, fl, fname).reshape(f.shape[1:])
            piv = pivot_wavelength(*get_filter_curve(fname))
            img = mean_flam * piv**2 / C_AA_PER_S / 3.631e-29
        hdus.append(fits.ImageHDU(img.astype(np.float32), img_hdr, name=f"{band}IMG"))
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists (use overwrite=True)")
    with atomic_path(path) as tmp:
        fits.HDUList(hdus).writeto(tmp, overwrite=True)


def write_califa_cube(
    path: PathLike,
    wave: ArrayLike,
    flux: ArrayLike,
    err: ArrayLike,
    wcs: WCS,
    badpix: ArrayLike | None = None,
    setup: str = "V500",
    med_vel: float = 0.0,
    overwrite: bool = False,
) -> None:
    """Write a cube in the CALIFA DR3 layout (``setup`` V500, COMB or V1200).

    Parameters
    ----------
    path : path-like
        FITS file to write.
    wave : array_like, shape (nwave,)
        Air wavelengths, Å, linear (e.g. :func:`califa_wave_grid`).
    flux, err : array_like, shape (nwave, ny, nx)
        f_λ and errors per spaxel, erg s⁻¹ cm⁻² Å⁻¹ (stored ×1e16).
    wcs : astropy.wcs.WCS
        Celestial WCS (written as CRPIX/CDELT/CRVAL/CTYPE 1–2; no rotation allowed).
    badpix : array_like of bool, shape (nwave, ny, nx), optional
        Bad pixels (default: non-finite flux or err).
    setup : {"V500", "COMB", "V1200"}
        The CALIFA setup.
    med_vel : float
        Systemic velocity (km/s) written as MED_VEL.
    overwrite : bool
        Replace an existing file.
    """
    s = setup.upper()
    if s not in CALIFA_FWHM:
        raise ValueError(f"setup: one of {sorted(CALIFA_FWHM)}, got {setup!r}")
    lam = np.asarray(wave, dtype=np.float64)
    f = _as_cube(flux, "flux")
    e = _as_cube(err, "err", f.shape)
    if lam.ndim != 1 or lam.size != f.shape[0]:
        raise ValueError("wave: one wavelength per cube channel")
    step = float(lam[1] - lam[0]) if lam.size > 1 else 2.0
    if lam.size > 1 and not np.allclose(np.diff(lam), step, rtol=1e-6):
        raise ValueError("wave: CALIFA cubes need linear wavelengths")
    cel = require_celestial_wcs(wcs, "wcs")
    pc = cel.wcs.get_pc()
    if abs(pc[0, 1]) > 1e-9 or abs(pc[1, 0]) > 1e-9:
        raise ValueError("wcs: CALIFA headers carry no rotation (CDELT only)")
    bad = ~np.isfinite(f) | ~np.isfinite(e) | ~(e > 0)
    if badpix is not None:
        bad |= np.asarray(badpix, dtype=bool)
    hdr = fits.Header()
    hdr["OBJECT"] = "SYNTH"
    hdr["SETUP"] = s
    hdr["MED_VEL"] = (float(med_vel), "km/s")
    hdr["HIERARCH PIPE UNITS"] = "10^-16 erg/s/cm^2/A"
    cdelt = cel.wcs.get_cdelt() * np.diag(pc)
    for i in (1, 2):
        hdr[f"CRPIX{i}"] = float(cel.wcs.crpix[i - 1])
        hdr[f"CRVAL{i}"] = float(cel.wcs.crval[i - 1])
        hdr[f"CDELT{i}"] = float(cdelt[i - 1])
        hdr[f"CTYPE{i}"] = cel.wcs.ctype[i - 1]
        hdr[f"CUNIT{i}"] = "deg"
    hdr["CRPIX3"] = 1.0
    hdr["CRVAL3"] = float(lam[0])
    hdr["CDELT3"] = step
    hdr["CTYPE3"] = "AWAV"
    hdr["CUNIT3"] = "Angstrom"
    data = np.where(bad, 0.0, f * 1e16).astype(np.float32)
    error = np.where(bad, 1e10, e * 1e16).astype(np.float32)
    cover = (~bad).any(axis=0).astype(np.int16)
    hdus = [fits.PrimaryHDU(data, hdr),
            fits.ImageHDU(error, name="ERROR"),
            fits.ImageHDU(np.ones_like(error), name="ERRWEIGHT"),
            fits.ImageHDU(bad.astype(np.uint8), name="BADPIX"),
            fits.ImageHDU(cover, name="FIBCOVER")]
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists (use overwrite=True)")
    with atomic_path(path) as tmp:
        fits.HDUList(hdus).writeto(tmp, overwrite=True)
