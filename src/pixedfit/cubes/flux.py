"""Photometric and spectrophotometric data cubes: :class:`FluxCube` and :class:`SpecPhotCube`.

A :class:`FluxCube` holds one galaxy's multi-band flux maps: ``flux`` and ``flux_err`` of
shape ``(band, y, x)`` in units of ``unit`` erg s⁻¹ cm⁻² Å⁻¹ (f_λ; the physical flux of a
stored value ``v`` is ``v * unit``, ``unit`` = 1e-17 by default as in piXedfit), the filter
names in band order, the galaxy region (``(y, x)`` bool mask), and optional metadata:
celestial WCS of the ``(y, x)`` grid, redshift, pixel scale (arcsec), Galactic E(B−V).
Pixel ``(y, x)`` is row ``y``, column ``x``, zero-based.

Outside the region the arrays hold NaN (the original wrote −9.9e18 there; both are read).
Inside the region every flux must be finite and every error finite and > 0.

A :class:`SpecPhotCube` adds IFS spectra on the same pixel grid: ``spec_flux`` and
``spec_err`` of shape ``(wavelength, y, x)`` in the same ``unit``, ``wave`` in Å, and the
IFS footprint ``spec_region`` (a subset of the photometric region). Spectral values may be
NaN (masked channels) inside the footprint; NaN outside it.

File layouts (readable by piXedfit and written back by it):

* flux map (piXedfit ``images_processing.flux_map``): header-only ``PRIMARY`` with NFILTERS,
  FIL0.., UNIT, BUNIT, STRUCT, Z, PIXSIZE, GALEBV, RA, DEC, SPECPHOT=0; ``FLUX`` and
  ``FLUX_ERR`` (band, y, x); ``GALAXY_REGION`` (y, x) 0/1; ``STAMP_IMAGE`` carrying the WCS.
* spectrophotometric cube (piXedfit ``match_imgifs_spatial``): ``PRIMARY`` (header only —
  the original put ``PHOTO_FLUX`` first, which astropy renamed to the primary HDU, losing it
  in later steps; both forms are read), ``PHOTO_FLUX``, ``PHOTO_FLUXERR``, ``WAVE``,
  ``SPEC_FLUX``, ``SPEC_FLUXERR``, ``SPEC_REGION``, ``PHOTO_REGION``, ``STAMP_IMAGE``;
  header SPECPHOT=1.

Every file also carries ``PFVERSN`` (pixedfit schema version) and ``PFKIND`` in the primary
header. Files are written atomically (temporary file, then rename).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from numpy.typing import ArrayLike, NDArray

from .._fits import (
    filters_from_header,
    find_data,
    find_optional,
    hdu_names,
    open_fits,
    positive_or_none,
    read_wcs,
    wcs_from_header,
)
from .._paths import atomic_path

__all__ = ["SCHEMA_VERSION", "FluxCube", "SpecPhotCube", "read_cube"]

#: Version of the pixedfit FITS layouts written by this module (header key PFVERSN).
SCHEMA_VERSION = 1

#: Header keys managed by the cube classes (not copied from ``header`` on write).
_MANAGED_KEYS = {
    "SIMPLE", "BITPIX", "NAXIS", "EXTEND", "EXTNAME", "NFILTERS", "UNIT", "BUNIT", "STRUCT",
    "STRUCTPH", "STRUCTSP", "Z", "PIXSIZE", "GALEBV", "SPECPHOT", "PFVERSN", "PFKIND",
    "NBINS", "NBINSPH", "NBINSSP", "REFBAND",
}

PathLike = str | os.PathLike[str]


def _float_array(value: ArrayLike, name: str, ndim: int) -> NDArray[np.float64]:
    try:
        arr = np.array(value, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected a numeric array, got {type(value).__name__}") from exc
    if arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: the array is empty (shape {arr.shape})")
    return arr


def _bool_mask(value: ArrayLike, name: str, shape: tuple[int, int]) -> NDArray[np.bool_]:
    arr = np.asarray(value)
    if arr.shape != shape:
        raise ValueError(f"{name}: expected shape {shape} (y, x), got {arr.shape}")
    if arr.dtype == bool:
        return arr.copy()
    if not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name}: expected a boolean or 0/1 mask, got dtype {arr.dtype}")
    finite = np.where(np.isfinite(arr), arr, 0)
    if not np.all(np.isin(finite, (0, 1))):
        raise ValueError(f"{name}: a numeric mask must contain only 0 and 1 (or NaN = 0)")
    return finite == 1


def _optional_float(value: Any, name: str, positive: bool = False) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected a number or None, got {value!r}") from exc
    if not np.isfinite(out) or out < 0 or (positive and out == 0):
        raise ValueError(f"{name}: must be finite and {'> 0' if positive else '>= 0'}, got {out}")
    return out


def _celestial_wcs(wcs: Any) -> WCS | None:
    if wcs is None:
        return None
    if isinstance(wcs, fits.Header):
        wcs = wcs_from_header(wcs)
        if wcs is None:
            raise ValueError("wcs: the header given has no celestial WCS")
        return wcs
    if not isinstance(wcs, WCS):
        raise TypeError(f"wcs: expected an astropy WCS or FITS header, got {type(wcs).__name__}")
    cel = wcs.celestial
    if cel.naxis != 2:
        raise ValueError("wcs: expected a 2-D celestial WCS for the (y, x) grid")
    return cel


def _clean_header(header: fits.Header | None) -> fits.Header:
    out = fits.Header()
    if header is None:
        return out
    if not isinstance(header, fits.Header):
        raise TypeError(f"header: expected an astropy.io.fits.Header, got {type(header).__name__}")
    for card in header.cards:
        key = card.keyword
        if key in _MANAGED_KEYS or key.startswith("FIL") or key in ("COMMENT", "HISTORY", ""):
            continue
        if key.startswith("NAXIS"):
            continue
        out.append(card)
    return out


def _as_filters(filters: Sequence[str], nbands: int) -> list[str]:
    if isinstance(filters, str):
        raise TypeError("filters: expected a sequence of filter names, got a single string")
    names = [str(f) for f in filters]
    if len(names) != nbands:
        raise ValueError(f"filters: {len(names)} names for {nbands} bands in flux")
    if len(set(names)) != len(names):
        raise ValueError(f"filters: duplicated names in {names}")
    if any(not n.strip() for n in names):
        raise ValueError("filters: empty filter name")
    return names


class FluxCube:
    """Multi-band flux maps of one galaxy, ordered (band, y, x).

    Parameters
    ----------
    flux, flux_err : array_like, shape (nbands, ny, nx)
        Fluxes and 1σ errors in units of ``unit`` erg s⁻¹ cm⁻² Å⁻¹. Inside the region
        fluxes must be finite (negative values are allowed) and errors finite and > 0.
        Values outside the region are ignored and stored as NaN.
    filters : sequence of str
        Filter names, one per band, in band order.
    region : array_like of bool, shape (ny, nx), optional
        Galaxy region. ``None``: every pixel whose fluxes are finite and errors finite
        and > 0 in all bands.
    unit : float
        Scale of the stored values: physical f_λ = value × unit (default 1e-17).
    wcs : astropy.wcs.WCS or FITS header, optional
        Celestial WCS of the (y, x) pixel grid.
    z : float, optional
        Redshift of the galaxy.
    pixel_scale : float, optional
        Pixel size in arcsec.
    gal_ebv : float, optional
        Galactic E(B−V) (mag) already corrected for, kept as metadata.
    header : astropy.io.fits.Header, optional
        Extra metadata (e.g. RA, DEC, FSAMP, FPSFMTCH, PSFFWHM) kept in the primary header.
    stamp : array_like, shape (ny, nx), optional
        Image written as ``STAMP_IMAGE`` (the original kept the first band's stamp there).

    Raises
    ------
    ValueError, TypeError
        Wrong shapes, non-finite fluxes or non-positive errors in the region, empty region,
        wrong filters count, bad metadata.
    """

    def __init__(
        self,
        flux: ArrayLike,
        flux_err: ArrayLike,
        filters: Sequence[str],
        *,
        region: ArrayLike | None = None,
        unit: float = 1e-17,
        wcs: Any = None,
        z: float | None = None,
        pixel_scale: float | None = None,
        gal_ebv: float | None = None,
        header: fits.Header | None = None,
        stamp: ArrayLike | None = None,
    ) -> None:
        f = _float_array(flux, "flux", 3)
        e = _float_array(flux_err, "flux_err", 3)
        if e.shape != f.shape:
            raise ValueError(f"flux_err: shape {e.shape} differs from flux shape {f.shape}")
        nb, ny, nx = f.shape
        self.filters = _as_filters(filters, nb)
        if region is None:
            reg = np.all(np.isfinite(f) & np.isfinite(e) & (e > 0), axis=0)
        else:
            reg = _bool_mask(region, "region", (ny, nx))
        if not reg.any():
            raise ValueError("region: the galaxy region is empty (no pixel to analyse)")
        fin = f[:, reg]
        if not np.all(np.isfinite(fin)):
            nbad = int(np.sum(~np.all(np.isfinite(fin), axis=0)))
            raise ValueError(f"flux: {nbad} region pixel(s) have non-finite fluxes")
        ein = e[:, reg]
        if not np.all(np.isfinite(ein) & (ein > 0)):
            nbad = int(np.sum(~np.all(np.isfinite(ein) & (ein > 0), axis=0)))
            raise ValueError(f"flux_err: {nbad} region pixel(s) have non-finite or <= 0 errors")
        f[:, ~reg] = np.nan
        e[:, ~reg] = np.nan
        self.flux = f
        self.flux_err = e
        self.region = reg
        u = _optional_float(unit, "unit", positive=True)
        if u is None:
            raise TypeError("unit: expected a positive number, got None")
        self.unit = u
        self.wcs = _celestial_wcs(wcs)
        self.z = _optional_float(z, "z")
        self.pixel_scale = _optional_float(pixel_scale, "pixel_scale", positive=True)
        self.gal_ebv = _optional_float(gal_ebv, "gal_ebv")
        self.header = _clean_header(header)
        if stamp is not None:
            st = _float_array(stamp, "stamp", 2)
            if st.shape != (ny, nx):
                raise ValueError(f"stamp: expected shape {(ny, nx)}, got {st.shape}")
            self.stamp: NDArray[np.float64] | None = st
        else:
            self.stamp = None

    # ------------------------------------------------------------------ properties
    @property
    def nbands(self) -> int:
        """Number of bands."""
        return self.flux.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        """Image shape (ny, nx)."""
        return (self.flux.shape[1], self.flux.shape[2])

    @property
    def npix_region(self) -> int:
        """Number of pixels in the galaxy region."""
        return int(self.region.sum())

    def band_index(self, band: int | str) -> int:
        """Index of a band given by index (negative allowed) or filter name."""
        if isinstance(band, str):
            if band not in self.filters:
                raise ValueError(f"band {band!r} is not one of the cube's filters {self.filters}")
            return self.filters.index(band)
        if isinstance(band, bool) or not isinstance(band, int | np.integer):
            raise TypeError(f"band: expected an int index or a filter name, got {band!r}")
        b = int(band)
        if not -self.nbands <= b < self.nbands:
            raise ValueError(f"band index {b} out of range for {self.nbands} bands")
        return b % self.nbands

    def __repr__(self) -> str:
        return (f"FluxCube(nbands={self.nbands}, shape={self.shape}, npix_region="
                f"{self.npix_region}, unit={self.unit:g}, z={self.z}, "
                f"pixel_scale={self.pixel_scale})")

    # ------------------------------------------------------------------ FITS I/O
    def _primary_header(self, specphot: int, kind: str) -> fits.Header:
        hdr = fits.Header()
        hdr["PFVERSN"] = (SCHEMA_VERSION, "pixedfit file-layout version")
        hdr["PFKIND"] = (kind, "pixedfit object stored in this file")
        hdr["NFILTERS"] = (self.nbands, "number of photometric bands")
        hdr["UNIT"] = (self.unit, "flux = value * UNIT erg/s/cm^2/A")
        hdr["BUNIT"] = "erg/s/cm^2/A"
        hdr["STRUCT"] = "(band,y,x)"
        if self.z is not None:
            hdr["Z"] = (self.z, "redshift")
        if self.pixel_scale is not None:
            hdr["PIXSIZE"] = (self.pixel_scale, "pixel size [arcsec]")
        if self.gal_ebv is not None:
            hdr["GALEBV"] = (self.gal_ebv, "Galactic E(B-V) [mag]")
        hdr["SPECPHOT"] = specphot
        for i, name in enumerate(self.filters):
            hdr[f"FIL{i}"] = name
        for card in self.header.cards:
            if card.keyword not in hdr:
                hdr.append(card)
        return hdr

    def _stamp_hdu(self) -> fits.ImageHDU | None:
        if self.wcs is None and self.stamp is None:
            return None
        hdr = self.wcs.to_header() if self.wcs is not None else fits.Header()
        data = self.stamp if self.stamp is not None else self.flux[0]
        return fits.ImageHDU(data, header=hdr, name="STAMP_IMAGE")

    def write(self, path: PathLike, overwrite: bool = False) -> None:
        """Write the cube in the flux-map layout of piXedfit (see module docstring).

        Parameters
        ----------
        path : path-like
            Output FITS file, written atomically.
        overwrite : bool
            Replace an existing file.
        """
        if os.path.exists(path) and not overwrite:
            raise FileExistsError(f"{path} exists (use overwrite=True)")
        hdus: list[Any] = [
            fits.PrimaryHDU(header=self._primary_header(0, "FluxCube")),
            fits.ImageHDU(self.flux, name="FLUX"),
            fits.ImageHDU(self.flux_err, name="FLUX_ERR"),
            fits.ImageHDU(self.region.astype(np.int16), name="GALAXY_REGION"),
        ]
        stamp = self._stamp_hdu()
        if stamp is not None:
            hdus.append(stamp)
        with atomic_path(path) as tmp:
            fits.HDUList(hdus).writeto(tmp, overwrite=True)

    @classmethod
    def read(cls, path: PathLike) -> FluxCube:
        """Read a flux map written by pixedfit or by piXedfit's ``flux_map``.

        Reads ``FLUX``/``FLUX_ERR`` (or ``PHOTO_FLUX``/``PHOTO_FLUXERR``), the region from
        ``GALAXY_REGION`` (or ``PHOTO_REGION``; all pixels with finite values otherwise)
        and the WCS from ``STAMP_IMAGE`` (or the flux extension). The original's −9.9e18
        outside-region marker becomes NaN.
        """
        with open_fits(path) as hdul:
            return cls._from_hdul(hdul, path)

    @classmethod
    def _from_hdul(cls, hdul: fits.HDUList, path: PathLike) -> FluxCube:
        primary = hdul[0].header
        flux = find_data(hdul, ("FLUX", "PHOTO_FLUX"), path, primary_fallback=True)
        err = find_data(hdul, ("FLUX_ERR", "PHOTO_FLUXERR"), path)
        if flux.ndim != 3:
            raise ValueError(f"{path}: the flux extension is not a 3-D (band, y, x) cube")
        region_data = find_optional(hdul, ("GALAXY_REGION", "PHOTO_REGION"))
        flux = np.array(flux, dtype=np.float64)
        err = np.array(err, dtype=np.float64)
        if region_data is None:
            region = np.all(np.isfinite(flux) & np.isfinite(err) & (err > 0), axis=0)
        else:
            region = np.nan_to_num(np.asarray(region_data, dtype=np.float64)) == 1
        filters = filters_from_header(primary, flux.shape[0], path)
        wcs = read_wcs(hdul)
        stamp = find_optional(hdul, ("STAMP_IMAGE",))
        z = primary.get("Z")
        return cls(
            flux,
            err,
            filters,
            region=region,
            unit=float(primary.get("UNIT", 1.0)),
            wcs=wcs,
            z=None if z is None else float(z),
            pixel_scale=positive_or_none(primary.get("PIXSIZE")),
            gal_ebv=primary.get("GALEBV"),
            header=primary,
            stamp=None if stamp is None or np.shape(stamp) != flux.shape[1:] else stamp,
        )


class SpecPhotCube:
    """Photometric cube plus IFS spectra on the same pixel grid.

    Parameters
    ----------
    photometry : FluxCube
        The photometric cube (its region is the photometric region).
    wave : array_like, shape (nwave,)
        Wavelengths of the spectra in Å, strictly increasing.
    spec_flux, spec_err : array_like, shape (nwave, ny, nx)
        Spectra and 1σ errors in the photometry's ``unit`` (erg s⁻¹ cm⁻² Å⁻¹). Inside the
        IFS region NaN marks a masked channel; where a flux is finite its error must be
        finite and > 0. Values outside the IFS region are stored as NaN.
    spec_region : array_like of bool, shape (ny, nx), optional
        IFS footprint, a subset of the photometric region. ``None``: photometric-region
        pixels with at least one finite spectral channel.
    ifs_survey : str, optional
        Instrument/survey name (header ``IFSSURVE``), e.g. ``"manga"``.
    wave_medium : {"vacuum", "air"}, optional
        Medium of ``wave``, written as ``SPECMED`` in the file's header and in the headers
        of the cubes binned from it. Default: the photometry header's ``SPECMED`` when it
        has one, else ``"vacuum"`` — the medium pixedfit writes by
        default and that of MaNGA cubes. Spectrophotometric cubes written by the original
        piXedfit carry no ``SPECMED``: those made from CALIFA or MUSE cubes are in air and
        must be read with ``wave_medium="air"``.
    """

    def __init__(
        self,
        photometry: FluxCube,
        wave: ArrayLike,
        spec_flux: ArrayLike,
        spec_err: ArrayLike,
        spec_region: ArrayLike | None = None,
        ifs_survey: str | None = None,
        wave_medium: str | None = None,
    ) -> None:
        if not isinstance(photometry, FluxCube):
            raise TypeError(
                f"photometry: expected a FluxCube, got {type(photometry).__name__}")
        w = _float_array(wave, "wave", 1)
        if not np.all(np.isfinite(w)) or np.any(w <= 0) or np.any(np.diff(w) <= 0):
            raise ValueError("wave: wavelengths must be finite, > 0 and strictly increasing")
        s = _float_array(spec_flux, "spec_flux", 3)
        se = _float_array(spec_err, "spec_err", 3)
        shape = photometry.shape
        if s.shape != (w.size, *shape):
            raise ValueError(
                f"spec_flux: expected shape {(w.size, *shape)} (wave, y, x), got {s.shape}")
        if se.shape != s.shape:
            raise ValueError(f"spec_err: shape {se.shape} differs from spec_flux {s.shape}")
        if spec_region is None:
            sreg = photometry.region & np.any(np.isfinite(s), axis=0)
        else:
            sreg = _bool_mask(spec_region, "spec_region", shape)
        if np.any(sreg & ~photometry.region):
            raise ValueError("spec_region: IFS pixels outside the photometric region")
        if not sreg.any():
            raise ValueError("spec_region: the IFS region is empty")
        sin, ein = s[:, sreg], se[:, sreg]
        good = np.isfinite(sin)
        if np.any(np.isinf(sin)):
            raise ValueError("spec_flux: infinite values in the IFS region")
        if not np.all(np.isfinite(ein[good]) & (ein[good] > 0)):
            raise ValueError("spec_err: non-finite or <= 0 errors where spec_flux is finite")
        se[:, sreg] = np.where(good, ein, np.nan)
        s[:, ~sreg] = np.nan
        se[:, ~sreg] = np.nan
        self.photometry = photometry
        self.wave = w
        self.spec_flux = s
        self.spec_err = se
        self.spec_region = sreg
        self.ifs_survey = None if ifs_survey is None else str(ifs_survey)
        medium = str(wave_medium if wave_medium is not None
                     else photometry.header.get("SPECMED", "vacuum")).strip().lower()
        if medium not in ("vacuum", "air"):
            raise ValueError(f"wave_medium: 'vacuum' or 'air', got {medium!r} (argument or "
                             f"header SPECMED)")
        self.wave_medium = medium  # the photometry (the caller's object) is not changed

    @property
    def nwave(self) -> int:
        """Number of spectral channels."""
        return self.wave.size

    def __repr__(self) -> str:
        return (f"SpecPhotCube(nbands={self.photometry.nbands}, nwave={self.nwave}, "
                f"shape={self.photometry.shape}, npix_ifs={int(self.spec_region.sum())})")

    def write(self, path: PathLike, overwrite: bool = False) -> None:
        """Write in piXedfit's spectrophotometric layout, with a header-only PRIMARY HDU.

        Parameters
        ----------
        path : path-like
            FITS file to write (atomically).
        overwrite : bool
            Replace an existing file (else FileExistsError).
        """
        if os.path.exists(path) and not overwrite:
            raise FileExistsError(f"{path} exists (use overwrite=True)")
        p = self.photometry
        hdr = p._primary_header(1, "SpecPhotCube")
        hdr["STRUCTPH"] = "(band,y,x)"
        hdr["STRUCTSP"] = "(wavelength,y,x)"
        if self.ifs_survey is not None:
            hdr["IFSSURVE"] = self.ifs_survey
        hdr["SPECMED"] = (self.wave_medium, "medium of the WAVE wavelengths")
        hdus: list[Any] = [
            fits.PrimaryHDU(header=hdr),
            fits.ImageHDU(p.flux, name="PHOTO_FLUX"),
            fits.ImageHDU(p.flux_err, name="PHOTO_FLUXERR"),
            fits.ImageHDU(self.wave, name="WAVE"),
            fits.ImageHDU(self.spec_flux, name="SPEC_FLUX"),
            fits.ImageHDU(self.spec_err, name="SPEC_FLUXERR"),
            fits.ImageHDU(self.spec_region.astype(np.int16), name="SPEC_REGION"),
            fits.ImageHDU(p.region.astype(np.int16), name="PHOTO_REGION"),
        ]
        stamp = p._stamp_hdu()
        if stamp is not None:
            hdus.append(stamp)
        with atomic_path(path) as tmp:
            fits.HDUList(hdus).writeto(tmp, overwrite=True)

    @classmethod
    def read(cls, path: PathLike, wave_medium: str | None = None) -> SpecPhotCube:
        """Read a spectrophotometric cube (pixedfit's or piXedfit's layout).

        Parameters
        ----------
        path : path-like
            The FITS file.
        wave_medium : {"vacuum", "air"}, optional
            Medium of the wavelengths, overriding the header's ``SPECMED`` (files without
            it are read as vacuum: pass ``"air"`` for piXedfit files made from CALIFA or
            MUSE cubes).
        """
        with open_fits(path) as hdul:
            phot = FluxCube._from_hdul(hdul, path)
            wave = find_data(hdul, ("WAVE", "SPEC_WAVE"), path)
            spec = find_data(hdul, ("SPEC_FLUX", "SPEC_FLUX_CORR"), path)
            err = find_data(hdul, ("SPEC_FLUXERR",), path)
            sreg = find_optional(hdul, ("SPEC_REGION",))
            survey = hdul[0].header.get("IFSSURVE")
            # the medium is the cube's attribute (written back by write), not photometry's
            written = phot.header.pop("SPECMED", None)
            if wave_medium is None:
                wave_medium = written
            spec = np.array(spec, dtype=np.float64)
            err = np.array(err, dtype=np.float64)
            # piXedfit marks bad channels with zero or negative errors: read them as masked
            spec[~(np.isfinite(err) & (err > 0))] = np.nan
            region = None
            if sreg is not None:
                region = (np.nan_to_num(np.asarray(sreg, dtype=np.float64)) == 1) & phot.region
            return cls(phot, np.asarray(wave, dtype=np.float64).ravel(), spec, err,
                       spec_region=region, ifs_survey=survey, wave_medium=wave_medium)


def read_cube(path: PathLike) -> FluxCube | SpecPhotCube:
    """Read a flux map or a spectrophotometric cube, whichever the file holds.

    A file with spectra (a ``SPEC_FLUX`` extension, or header ``SPECPHOT=1``) gives a
    :class:`SpecPhotCube`, otherwise a :class:`FluxCube`.
    """
    with open_fits(path) as hdul:
        specphot = "SPEC_FLUX" in hdu_names(hdul) or int(hdul[0].header.get("SPECPHOT", 0)) == 1
    return SpecPhotCube.read(path) if specphot else FluxCube.read(path)
