"""The binned cube: :class:`BinnedCube`, result of :mod:`pixedfit.binning`.

Holds the bin map (y, x), per-bin SEDs (nbins, nbands) in units of ``unit`` erg s⁻¹ cm⁻² Å⁻¹
(f_λ), optional per-bin spectra (nbins, nwave) with wavelengths in Å, the flags and seeds
of the bins, and the cube's metadata; computes bin-level quantities (S/N, pixel counts,
areas in kpc², centroids, radii) and reads/writes piXedfit's binned-cube FITS layout.

Calibration errors: the per-band calibration fraction of the flux map (``CALERR<i>``) is
kept as :attr:`BinnedCube.calib_err` and written back as ``CALERR<i>`` in both layouts
(photometric and spectrophotometric). It is not part of ``bin_flux_err`` (statistical
errors only): a calibration offset is common to every pixel of a band, so the fit adds
``calib_err[b] × |bin_flux[b]|`` to the binned SED (:mod:`pixedfit.fitting.errors`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from astropy.io import fits
from astropy.table import Table
from numpy.typing import ArrayLike, NDArray

from .._fits import (
    filters_from_header,
    find_data,
    find_optional,
    open_fits,
    positive_or_none,
    read_wcs,
)
from .._paths import atomic_path
from ..cosmology import kpc_per_pixel
from .flux import SCHEMA_VERSION, _clean_header

__all__ = ["BinnedCube", "LeftoverWarning", "first_pixels"]

PathLike = str | os.PathLike[str]


class LeftoverWarning(UserWarning):
    """The leftover bin (pixels that could not reach the S/N target) is fitted although its
    summed flux is negative in some band: its properties are unreliable."""


class BinnedCube:
    """Result of a pixel binning: bin map, per-bin SEDs (and spectra), metadata.

    Attributes
    ----------
    bin_map : ndarray of int32, shape (ny, nx)
        Bin id of each pixel, 1 … nbins; 0 outside the region.
    bin_flux, bin_flux_err : ndarray, shape (nbins, nbands)
        Sum of the pixel fluxes of each bin and quadrature sum of their errors, in units of
        ``unit`` erg s⁻¹ cm⁻² Å⁻¹; row ``k`` is bin ``k + 1``.
    filters : list of str
    unit : float
    leftover : ndarray of bool, shape (nbins,)
        True for the leftover bin (at most one, the last), which may miss the S/N target.
    seed : ndarray of int, shape (nbins, 2)
        (y, x) of each bin's seed; (−1, −1) for the leftover bin or when unknown.
    pixel_chi2 : ndarray, shape (ny, nx)
        Reduced χ² of each pixel against its bin's seed (NaN for leftover / unknown).
    region : ndarray of bool, shape (ny, nx)
        The region that was binned.
    wave : ndarray (nwave,) or None
        Wavelengths (Å) of the binned spectra, if any.
    bin_spec_flux, bin_spec_err : ndarray (nbins, nwave) or None
        Summed spectra (NaN rows for bins without spectra; a channel is NaN when any pixel of
        the bin is masked there).
    bin_has_spec : ndarray of bool (nbins,)
        True when every pixel of the bin lies in the IFS region.
    spec_region : ndarray of bool (ny, nx) or None
    params : dict
        The binning parameters (ref_band, min_bin_diameter, snr_target, max_reduced_chi2,
        del_r, connected, shape_test_first_circle, sys_err_factor, max_radius); empty when
        unknown.
    calib_err : ndarray, shape (nbands,), or None
        Fractional calibration error of each band (NaN where unknown), from the flux map's
        ``CALERR<i>`` cards (read from ``header`` when not given); None when no band has
        one (cubes binned from flux maps written before they were recorded).
    z, pixel_scale, gal_ebv, wcs, header
        Metadata carried over from the cube.
    """

    def __init__(
        self,
        bin_map: ArrayLike,
        bin_flux: ArrayLike,
        bin_flux_err: ArrayLike,
        filters: Sequence[str],
        *,
        unit: float = 1e-17,
        region: ArrayLike | None = None,
        leftover: ArrayLike | None = None,
        seed: ArrayLike | None = None,
        pixel_chi2: ArrayLike | None = None,
        params: dict[str, Any] | None = None,
        z: float | None = None,
        pixel_scale: float | None = None,
        gal_ebv: float | None = None,
        wcs: Any = None,
        header: fits.Header | None = None,
        wave: ArrayLike | None = None,
        bin_spec_flux: ArrayLike | None = None,
        bin_spec_err: ArrayLike | None = None,
        bin_has_spec: ArrayLike | None = None,
        spec_region: ArrayLike | None = None,
        calib_err: ArrayLike | None = None,
    ) -> None:
        bm = np.asarray(bin_map)
        if bm.ndim != 2 or not np.issubdtype(bm.dtype, np.number):
            raise ValueError(f"bin_map: expected a 2-D numeric (y, x) array, got {bm.shape}")
        if not np.all(np.isfinite(bm)) or np.any(bm != np.round(bm)) or np.any(bm < 0):
            raise ValueError("bin_map: bin ids must be integers >= 0")
        self.bin_map = bm.astype(np.int32)
        nbins = int(self.bin_map.max())
        present = np.zeros(nbins + 1, bool)
        present[np.unique(self.bin_map)] = True
        if not present[1:].all():
            raise ValueError("bin_map: bin ids must run from 1 to nbins without gaps")
        self.bin_flux = np.array(bin_flux, dtype=np.float64).reshape(nbins, -1)
        self.bin_flux_err = np.array(bin_flux_err, dtype=np.float64).reshape(nbins, -1)
        self.filters = [str(f) for f in filters]
        if self.bin_flux.shape != (nbins, len(self.filters)) or \
                self.bin_flux_err.shape != self.bin_flux.shape:
            raise ValueError(
                f"bin_flux, bin_flux_err: expected shape {(nbins, len(self.filters))}")
        self.unit = float(unit)
        shape = self.bin_map.shape
        self.region = self.bin_map > 0 if region is None else np.asarray(region, bool)
        self.leftover = (np.zeros(nbins, bool) if leftover is None
                         else np.asarray(leftover, bool).reshape(nbins))
        self.seed = (np.full((nbins, 2), -1, np.int64) if seed is None
                     else np.asarray(seed, np.int64).reshape(nbins, 2))
        self.pixel_chi2 = (np.full(shape, np.nan) if pixel_chi2 is None
                           else np.asarray(pixel_chi2, np.float64))
        self.params = dict(params or {})
        self.z = z
        self.pixel_scale = pixel_scale
        self.gal_ebv = gal_ebv
        self.wcs = wcs
        self.header = _clean_header(header)
        self.calib_err = _calibration(calib_err, self.header, len(self.filters))
        for key in [c.keyword for c in self.header.cards if _CALERR_KEY.fullmatch(c.keyword)]:
            del self.header[key]  # managed through calib_err
        self.wave = None if wave is None else np.asarray(wave, np.float64)
        self.bin_spec_flux = None if bin_spec_flux is None else np.asarray(bin_spec_flux, float)
        self.bin_spec_err = None if bin_spec_err is None else np.asarray(bin_spec_err, float)
        self.bin_has_spec = (np.zeros(nbins, bool) if bin_has_spec is None
                             else np.asarray(bin_has_spec, bool).reshape(nbins))
        self.spec_region = None if spec_region is None else np.asarray(spec_region, bool)
        if self.wave is not None:
            nw = self.wave.size
            for name in ("bin_spec_flux", "bin_spec_err"):
                arr = getattr(self, name)
                if arr is None or arr.shape != (nbins, nw):
                    raise ValueError(f"{name}: expected shape {(nbins, nw)} with wave given")

    # ------------------------------------------------------------------ derived quantities
    @property
    def nbins(self) -> int:
        """Number of bins (the leftover bin included)."""
        return self.bin_flux.shape[0]

    @property
    def nbands(self) -> int:
        return len(self.filters)

    @property
    def specphot(self) -> bool:
        """True when spectra were binned too."""
        return self.wave is not None

    @property
    def leftover_bin(self) -> int:
        """Id of the leftover bin (the last one), 0 when every bin is a regular bin."""
        return int(np.flatnonzero(self.leftover)[0] + 1) if self.leftover.any() else 0

    def negative_bands(self, bin_id: int) -> list[str]:
        """Filters in which the summed flux of bin ``bin_id`` (1-based) is negative."""
        if not 1 <= int(bin_id) <= self.nbins:
            raise ValueError(f"bin_id: {bin_id} outside 1..{self.nbins}")
        flux = self.bin_flux[int(bin_id) - 1]
        return [f for f, v in zip(self.filters, flux, strict=True) if v < 0]

    @property
    def sys_err_factor(self) -> float | None:
        """Systematic error fraction used by the shape test (None if unknown)."""
        value = self.params.get("sys_err_factor")
        return None if value is None else float(value)

    @property
    def bin_snr(self) -> NDArray[np.float64]:
        """S/N of each bin in each band, (nbins, nbands)."""
        return self.bin_flux / self.bin_flux_err

    @property
    def bin_npix(self) -> NDArray[np.int64]:
        """Number of pixels of each bin, (nbins,)."""
        return np.bincount(self.bin_map.ravel(), minlength=self.nbins + 1)[1:]

    @property
    def bin_centroid(self) -> NDArray[np.float64]:
        """Geometric centroid (y, x) of each bin's pixels, (nbins, 2), pixel units."""
        ny, nx = self.bin_map.shape
        yy, xx = np.mgrid[0:ny, 0:nx]
        ids = self.bin_map.ravel()
        n = np.maximum(self.bin_npix, 1)
        cy = np.bincount(ids, weights=yy.ravel(), minlength=self.nbins + 1)[1:] / n
        cx = np.bincount(ids, weights=xx.ravel(), minlength=self.nbins + 1)[1:] / n
        return np.column_stack([cy, cx])

    def kpc_per_pixel(self) -> float:
        """Proper size of a pixel in kpc (flat ΛCDM, H0 = 70, Ωm = 0.3)."""
        if self.z is None or self.z <= 0 or self.pixel_scale is None:
            raise ValueError("the physical pixel size needs z > 0 and pixel_scale (arcsec)")
        return float(kpc_per_pixel(self.z, self.pixel_scale))

    @property
    def bin_area_kpc2(self) -> NDArray[np.float64]:
        """Area of each bin in kpc² (needs z > 0 and pixel_scale)."""
        # numpy stubs: int array × float is typed floating[Any]; it is float64
        return cast("NDArray[np.float64]", self.bin_npix * self.kpc_per_pixel() ** 2)

    def bin_radius(self, center: tuple[float, float] | None = None) -> NDArray[np.float64]:
        """Distance (pixels) of each bin's centroid from ``center`` (y, x).

        Default centre: the seed of bin 1 (the brightest pixel of the reference band), else
        the region's centroid.
        """
        if center is None:
            if self.nbins and self.seed[0, 0] >= 0:
                center = (float(self.seed[0, 0]), float(self.seed[0, 1]))
            else:
                ys, xs = np.nonzero(self.region)
                center = (float(ys.mean()), float(xs.mean()))
        c = self.bin_centroid
        return np.hypot(c[:, 0] - center[0], c[:, 1] - center[1])

    def table(self) -> Table:
        """Bin-level table: id, pixels, area (kpc², NaN if unknown), centroid, seed, radius,
        leftover and spectrum flags, SED, errors and S/N per band (units of ``unit``)."""
        try:
            area = self.bin_area_kpc2
        except ValueError:
            area = np.full(self.nbins, np.nan)
        c = self.bin_centroid
        t = Table()
        t["bin_id"] = np.arange(1, self.nbins + 1, dtype=np.int32)
        t["npix"] = self.bin_npix
        t["area_kpc2"] = area
        t["y_cent"] = c[:, 0]
        t["x_cent"] = c[:, 1]
        t["seed_y"] = self.seed[:, 0]
        t["seed_x"] = self.seed[:, 1]
        t["radius_pix"] = self.bin_radius()
        t["leftover"] = self.leftover
        t["has_spec"] = self.bin_has_spec
        t["flux"] = self.bin_flux
        t["flux_err"] = self.bin_flux_err
        t["snr"] = self.bin_snr
        t.meta["FILTERS"] = ",".join(self.filters)
        t.meta["UNIT"] = self.unit
        return t

    def pixel_values(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        """Spread per-bin rows (nbins, n) onto the map: (n, ny, nx), NaN outside bins."""
        v = np.asarray(values, np.float64)
        out = np.full((v.shape[1], *self.bin_map.shape), np.nan)
        inside = self.bin_map > 0
        out[:, inside] = v[self.bin_map[inside] - 1].T
        return out

    def __repr__(self) -> str:
        return (f"BinnedCube(nbins={self.nbins}, nbands={self.nbands}, shape="
                f"{self.bin_map.shape}, leftover={bool(self.leftover.any())}, "
                f"specphot={self.specphot})")

    # ------------------------------------------------------------------ FITS I/O
    def write(self, path: PathLike, overwrite: bool = False) -> None:
        """Write in piXedfit's binned-cube layout.

        Photometric: ``PRIMARY`` (header: NFILTERS, FILn, UNIT, REFBAND, NBINS, NBINSPH,
        SPECPHOT=0, Z, PIXSIZE, GALEBV, binning parameters), ``FLUX`` and ``FLUX_ERR``
        (band, y, x) holding each bin's SED on all its pixels (NaN outside bins),
        ``GALAXY_REGION``, ``PHOTO_BIN_MAP``, ``BIN_TABLE``, ``PIXEL_CHI2`` and
        ``STAMP_IMAGE`` (WCS) when known. Spectrophotometric: ``PHOTO_FLUX``,
        ``PHOTO_FLUXERR``, ``SPEC_WAVE``, ``SPEC_FLUX``, ``SPEC_FLUXERR`` (wave, y, x;
        filled for bins with spectra), ``SPEC_REGION``, ``PHOTO_REGION``, ``PHOTO_BIN_MAP``,
        ``SPEC_BIN_MAP`` and the same extras; header SPECPHOT=1, NBINSSP.

        Parameters
        ----------
        path : path-like
            FITS file to write (atomically).
        overwrite : bool
            Replace an existing file (else FileExistsError).
        """
        if os.path.exists(path) and not overwrite:
            raise FileExistsError(f"{path} exists (use overwrite=True)")
        hdr = fits.Header()
        hdr["PFVERSN"] = (SCHEMA_VERSION, "pixedfit file-layout version")
        hdr["PFKIND"] = ("BinnedCube", "pixedfit object stored in this file")
        hdr["NFILTERS"] = self.nbands
        hdr["UNIT"] = (self.unit, "flux = value * UNIT erg/s/cm^2/A")
        hdr["BUNIT"] = "erg/s/cm^2/A"
        hdr["STRUCT"] = "(band,y,x)"
        if self.z is not None:
            hdr["Z"] = self.z
        if self.pixel_scale is not None:
            hdr["PIXSIZE"] = (self.pixel_scale, "pixel size [arcsec]")
        if self.gal_ebv is not None:
            hdr["GALEBV"] = self.gal_ebv
        if "ref_band" in self.params:
            hdr["REFBAND"] = (int(self.params["ref_band"]), "reference band index")
        hdr["NBINS"] = (self.nbins, "number of bins (leftover included)")
        hdr["NBINSPH"] = self.nbins
        hdr["SPECPHOT"] = int(self.specphot)
        if self.specphot:
            hdr["NBINSSP"] = (int(self.bin_has_spec.sum()), "bins with spectra")
        hdr["LEFTOVER"] = (self.leftover_bin, "id of the leftover bin (0: none)")
        for key, card in _PARAM_CARDS.items():
            value = self.params.get(key)
            if value is not None and (not isinstance(value, float) or np.isfinite(value)):
                hdr[card] = (value if isinstance(value, bool | int | float) else str(value),
                             key)
        if "snr_target" in self.params:
            for i, v in enumerate(np.atleast_1d(self.params["snr_target"])):
                hdr[f"BSNR{i}"] = (float(v), f"S/N target of band {i}")
        for i, name in enumerate(self.filters):
            hdr[f"FIL{i}"] = name
            if self.calib_err is not None and np.isfinite(self.calib_err[i]):
                hdr[f"CALERR{i}"] = (float(self.calib_err[i]),
                                     f"{name} calibration error (fraction)")
        for card in self.header.cards:
            if card.keyword not in hdr:
                hdr.append(card)

        flux_cube = self.pixel_values(self.bin_flux)
        err_cube = self.pixel_values(self.bin_flux_err)
        binmap_hdu = fits.ImageHDU(self.bin_map, name="PHOTO_BIN_MAP")
        hdus: list[Any] = [fits.PrimaryHDU(header=hdr)]
        if self.specphot:
            spec_ok = self.bin_has_spec
            spec_map = np.where(self.bin_map > 0, self.bin_map, 0)
            spec_map[self.bin_map > 0] *= spec_ok[self.bin_map[self.bin_map > 0] - 1]
            # specphot: the bins have spectra
            sflux = self.pixel_values(np.where(spec_ok[:, None],
                                               cast("NDArray", self.bin_spec_flux), np.nan))
            serr = self.pixel_values(np.where(spec_ok[:, None],
                                              cast("NDArray", self.bin_spec_err), np.nan))
            sreg = self.spec_region if self.spec_region is not None else spec_map > 0
            hdus += [
                fits.ImageHDU(flux_cube, name="PHOTO_FLUX"),
                fits.ImageHDU(err_cube, name="PHOTO_FLUXERR"),
                fits.ImageHDU(self.wave, name="SPEC_WAVE"),
                fits.ImageHDU(sflux, name="SPEC_FLUX"),
                fits.ImageHDU(serr, name="SPEC_FLUXERR"),
                fits.ImageHDU(sreg.astype(np.int16), name="SPEC_REGION"),
                fits.ImageHDU(self.region.astype(np.int16), name="PHOTO_REGION"),
                binmap_hdu,
                fits.ImageHDU(spec_map.astype(np.int32), name="SPEC_BIN_MAP"),
            ]
        else:
            hdus += [
                fits.ImageHDU(flux_cube, name="FLUX"),
                fits.ImageHDU(err_cube, name="FLUX_ERR"),
                fits.ImageHDU(self.region.astype(np.int16), name="GALAXY_REGION"),
                binmap_hdu,
            ]
        table = self.table()
        table.meta.clear()
        hdus.append(fits.BinTableHDU(table, name="BIN_TABLE"))
        hdus.append(fits.ImageHDU(self.pixel_chi2, name="PIXEL_CHI2"))
        if self.wcs is not None:
            hdus.append(fits.ImageHDU(self.bin_map.astype(np.float32),
                                      header=self.wcs.to_header(), name="STAMP_IMAGE"))
        with atomic_path(path) as tmp:
            fits.HDUList(hdus).writeto(tmp, overwrite=True)

    @classmethod
    def read(cls, path: PathLike) -> BinnedCube:
        """Read a binned cube written by pixedfit or piXedfit (current or older layout).

        Bin SEDs are read at the first pixel (row-major) of each bin, as piXedfit does.
        """
        with open_fits(path) as hdul:
            primary = hdul[0].header
            bmap = find_data(hdul, ("PHOTO_BIN_MAP", "BIN_MAP"), path)
            bin_map = np.rint(np.nan_to_num(np.asarray(bmap, np.float64))).astype(np.int32)
            flux = find_data(hdul, ("FLUX", "PHOTO_FLUX", "BIN_FLUX", "BIN_PHOTO_FLUX"), path,
                              primary_fallback=True)
            err = find_data(hdul, ("FLUX_ERR", "PHOTO_FLUXERR", "BIN_FLUXERR",
                                    "BIN_PHOTO_FLUXERR"), path)
            nbins = int(bin_map.max())
            first = first_pixels(bin_map, nbins)
            flux = np.asarray(flux, np.float64).reshape(flux.shape[0], -1)
            err = np.asarray(err, np.float64).reshape(err.shape[0], -1)
            filters = filters_from_header(primary, flux.shape[0], path)
            region = find_optional(hdul, ("GALAXY_REGION", "PHOTO_REGION"))
            region = bin_map > 0 if region is None else np.nan_to_num(region) == 1
            kwargs: dict[str, Any] = {}
            table = find_optional(hdul, ("BIN_TABLE",))
            if table is not None and len(table) == nbins:
                kwargs["leftover"] = np.asarray(table["leftover"], bool)
                kwargs["seed"] = np.column_stack([table["seed_y"], table["seed_x"]])
            elif "LEFTOVER" in primary and int(primary["LEFTOVER"]) > 0:
                left = np.zeros(nbins, bool)
                left[int(primary["LEFTOVER"]) - 1] = True
                kwargs["leftover"] = left
            chi = find_optional(hdul, ("PIXEL_CHI2",))
            if chi is not None and np.shape(chi) == bin_map.shape:
                kwargs["pixel_chi2"] = np.asarray(chi, np.float64)
            params = {key: primary[card] for key, card in _PARAM_CARDS.items() if card in primary}
            if "REFBAND" in primary:
                params["ref_band"] = int(primary["REFBAND"])
            snr = [primary[f"BSNR{i}"] for i in range(len(filters)) if f"BSNR{i}" in primary]
            if len(snr) == len(filters):
                params["snr_target"] = np.asarray(snr, np.float64)
            wave = find_optional(hdul, ("SPEC_WAVE", "WAVE"))
            spec_bin_map = find_optional(hdul, ("SPEC_BIN_MAP",))
            if wave is not None and spec_bin_map is not None:
                sflux = find_data(hdul, ("SPEC_FLUX", "BIN_SPEC_FLUX", "SPEC_FLUX_CORR"), path)
                serr = find_data(hdul, ("SPEC_FLUXERR", "BIN_SPEC_FLUXERR"), path)
                smap = np.rint(np.nan_to_num(np.asarray(spec_bin_map, float))).astype(int)
                has = np.zeros(nbins, bool)
                ids = np.unique(smap[smap > 0])
                has[ids - 1] = True
                sflux = np.asarray(sflux, np.float64).reshape(sflux.shape[0], -1)
                serr = np.asarray(serr, np.float64).reshape(serr.shape[0], -1)
                bsf = np.full((nbins, sflux.shape[0]), np.nan)
                bse = np.full_like(bsf, np.nan)
                bsf[has] = sflux[:, first[has]].T
                bse[has] = serr[:, first[has]].T
                sreg = find_optional(hdul, ("SPEC_REGION",))
                kwargs.update(wave=np.asarray(wave, np.float64).ravel(), bin_spec_flux=bsf,
                              bin_spec_err=bse, bin_has_spec=has,
                              spec_region=None if sreg is None else np.nan_to_num(sreg) == 1)
            z = primary.get("Z")
            return cls(
                bin_map, flux[:, first].T, err[:, first].T, filters,
                unit=float(primary.get("UNIT", 1.0)), region=region, params=params,
                z=None if z is None else float(z),
                pixel_scale=positive_or_none(primary.get("PIXSIZE")),
                gal_ebv=primary.get("GALEBV"), wcs=read_wcs(hdul), header=primary, **kwargs,
            )


#: Binning parameters stored in the binned-cube header (key -> FITS keyword; the
#: per-band ``snr_target`` goes to BSNR<i>). The keywords are those of earlier versions,
#: whose files read with the same keys.
_PARAM_CARDS = {
    "min_bin_diameter": "BDMIN",
    "max_reduced_chi2": "BCHI2LIM",
    "del_r": "BDELR",
    "connected": "BCONNECT",
    "shape_test_first_circle": "BSHAPE1",
    "absorb_leftover": "BABSORB",
    "sys_err_factor": "BSYSERR",
    "max_radius": "BMAXRAD",
    "noise_correlation": "BNOISEC",
    "spectral_noise": "BSPECNOI",
}


_CALERR_KEY = re.compile(r"CALERR\d+")


def _calibration(value: ArrayLike | None, header: fits.Header,
                 nbands: int) -> NDArray[np.float64] | None:
    """Per-band calibration fractions: ``value``, else the header's CALERR<i> (NaN for a
    band without one), else None."""
    if value is None:
        found = {int(c.keyword[6:]): c.value for c in header.cards
                 if _CALERR_KEY.fullmatch(c.keyword)}
        if not found:
            return None
        value = [found.get(i, np.nan) for i in range(nbands)]
        if any(i >= nbands for i in found):
            raise ValueError(f"header: CALERR cards for {max(found) + 1} bands, the cube has "
                             f"{nbands}")
    try:
        out = np.array(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"calib_err: expected {nbands} fractions, got {value!r}") from None
    if out.size != nbands:
        raise ValueError(f"calib_err: expected {nbands} fractions, got {out.size}")
    ok = np.isnan(out) | ((out >= 0) & (out < 1))
    if not ok.all():
        raise ValueError(f"calib_err: fractions must be within [0, 1) (or NaN: unknown), got "
                         f"{out[~ok].tolist()}")
    return out


def first_pixels(bin_map: NDArray[np.int32], nbins: int) -> NDArray[np.int64]:
    """Flat (row-major) index of the first pixel of every bin 1..``nbins`` of ``bin_map``
    (y, x; 0 = no bin); ValueError unless the ids run from 1 to ``nbins`` without gaps.

    Parameters
    ----------
    bin_map : ndarray of int, shape (ny, nx)
        Bin id of each pixel, 0 outside the bins.
    nbins : int
        Number of bins.

    Returns
    -------
    ndarray of int64, shape (nbins,)
        Row-major index (y * nx + x) of the first pixel of bins 1..``nbins``.
    """
    flat = bin_map.ravel()
    first = np.full(nbins + 1, -1, np.int64)
    idx = np.flatnonzero(flat > 0)
    # reversed assignment: the first (row-major) pixel of each bin wins
    first[flat[idx[::-1]]] = idx[::-1]
    if np.any(first[1:] < 0):
        raise ValueError("bin map: bin ids must run from 1 to nbins without gaps")
    return first[1:]
