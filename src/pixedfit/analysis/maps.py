"""Property maps from the fits of a binned cube (piXedfit's ``maps_parameters``).

Bin maps
    Every statistic of every fitted and derived quantity of every bin is painted on the
    bin's pixels: ``bin-<param>-<stat>`` (NaN outside the region and for bins without a
    result; the original wrote 0 and −99). Statistics are ``mean``, ``mean_err`` (posterior
    standard deviation), ``p16``, ``p50``, ``p84`` — whichever the results hold finite
    values for (RDSPS results hold all; MCMC results at least the percentiles) — plus
    ``chi2`` and ``n_used`` maps of the fits.

Pixel maps
    Additive quantities (``log_mass``, ``log_sfr``, ``log_dustmass``) are shared out within a
    bin in proportion to the flux of each pixel in a reference band (stellar mass and dust
    mass: the reddest band; SFR: the bluest, as in the original):

    ``M_pix = M_bin · w``,  ``w = f_p / F``,  ``F = Σ_bin f``

    so the pixel values of a bin add up to the bin value exactly. The uncertainty combines
    the bin's posterior width with the error of the share ``w`` (first-order propagation;
    ``f_p`` is part of ``F``, which the formula accounts for — with ``r = F − f_p`` and
    ``σ_r² = Σ_bin σ² − σ_p²``)::

        σ_w / w = sqrt( (r σ_p / (f_p F))² + (σ_r / F)² )
        σ_log w = (σ_w / w) / ln 10
        pix-q-mean_err = sqrt(bin-q-mean_err² + σ_log w²)
        pix-q-p16      = pix-q-p50 − sqrt((bin-q-p50 − bin-q-p16)² + σ_log w²)   (p84 alike)

    A one-pixel bin has ``w = 1`` and ``σ_w = 0``: the pixel inherits the bin's values. Pixels
    with ``f_p <= 0`` in the reference band take their share from the nearest band where it
    is positive, else an equal share, and each bin's shares are renormalised to sum to 1
    (:func:`share_out_fallback`): no pixel of a bin is left NaN. (The original multiplied
    the bin value by the root of a sum of squared S/N ratios, giving errors of tens of dex.)

Surface densities
    With the redshift and pixel scale known, ``log_sigma_mass`` (M☉ kpc⁻²),
    ``log_sigma_sfr`` (M☉ yr⁻¹ kpc⁻²) and ``log_sigma_dustmass`` are added for the bins
    (bin value / bin area) and the pixels (pixel value / pixel area), errors unchanged.

Quality flags
    ``PropertyMaps.flags`` (y, x), written as the ``BIN_FLAG`` extension (int16) and as the
    ``flag`` column of ``BIN_TABLE``, holds bit flags per pixel (0 = good, or outside the
    bins):

    ========  ==============================  ==========================================
    bit       constant                        meaning
    ========  ==============================  ==========================================
    1         :data:`FLAG_LEFTOVER`           pixel of the leftover bin (pixels that could
                                              not reach the binning S/N target)
    2         :data:`FLAG_NOT_CONVERGED`      the fit did not converge
                                              (``FitResult.converged`` is False)
    4         :data:`FLAG_FAILED`             failed fit (no model entered the posterior)
    8         :data:`FLAG_NOT_FITTED`         the bin has no fit result (NaN in every map)
    ========  ==============================  ==========================================

    The leftover bin is not fitted by default (``fit_binmap(fit_leftover=False)``,
    ``[fitting] fit_leftover = false``): its pixels are NaN in every map and flagged 1 + 8.
    When it is fitted its values are painted like any bin's and flagged 1. The bits are
    also described by the ``FLAGB<n>`` cards of the ``BIN_FLAG`` header.

File layout (the original's, extended): ``PRIMARY`` header with GAL_Z, NBINS, NHDU,
HDU1… (names of the extensions that follow), FITMETH, KPCPIX, PIXSIZE, REFBANDS, FILn,
PFVERSN, PFKIND; ``GALAXY_REGION`` (0/1); then one 2-D image per map, named as above, with
its unit in ``BUNIT`` (astropy strings, :data:`QUANTITY_UNITS`: ``dex(solMass)`` for
``log_mass``, ``dex(solMass / (yr kpc2))`` for ``log_sigma_sfr``, ``dex`` for ``logzsol``
and for the ``mean_err`` of any log quantity, ``""`` for dimensionless ones such as
``dust2``);
then ``BIN_MAP`` (bin ids), ``BIN_FLAG`` (quality flags, above) and ``BIN_TABLE``
(per-bin values of every bin map and the ``flag`` of each bin).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table
from numpy.typing import ArrayLike, NDArray

from .._paths import atomic_path
from ..cosmology import kpc_per_pixel
from ..cubes import BinnedCube, FluxCube, SpecPhotCube, read_cube
from ..fitting.results import FitResult, ResultStore

__all__ = [
    "FLAG_BITS",
    "FLAG_FAILED",
    "FLAG_LEFTOVER",
    "FLAG_NOT_CONVERGED",
    "FLAG_NOT_FITTED",
    "PIXEL_QUANTITIES",
    "PropertyMaps",
    "compare_with_truth",
    "get_bestfit_params",
    "load_fit_results",
    "maps_parameters",
    "quantity_unit",
    "share_out",
    "share_out_fallback",
]

PathLike = str | os.PathLike[str]
SCHEMA_VERSION = 1
_KIND = "PropertyMaps"
_LN10 = math.log(10.0)

#: Additive quantities shared out to pixels, and their surface-density names.
PIXEL_QUANTITIES: dict[str, str] = {
    "log_mass": "log_sigma_mass",
    "log_sfr": "log_sigma_sfr",
    "log_dustmass": "log_sigma_dustmass",
}
_VALUE_STATS = ("mean", "p16", "p50", "p84")

#: Quality-flag bits of :attr:`PropertyMaps.flags` (module docstring).
FLAG_LEFTOVER = 1
FLAG_NOT_CONVERGED = 2
FLAG_FAILED = 4
FLAG_NOT_FITTED = 8
#: Bit → meaning, as written to the ``FLAGB<n>`` cards of ``BIN_FLAG``.
FLAG_BITS: dict[int, str] = {
    FLAG_LEFTOVER: "leftover bin: pixels below the binning S/N target",
    FLAG_NOT_CONVERGED: "fit did not converge",
    FLAG_FAILED: "failed fit: no model in the posterior",
    FLAG_NOT_FITTED: "bin not fitted: NaN in every map",
}

_MASS = "dex(solMass)"
_SFR = "dex(solMass / yr)"
#: Units of the mapped quantities, as astropy generic unit strings (``dex(X)`` = log10 of X;
#: "" = dimensionless). Written to each map's ``BUNIT``.
QUANTITY_UNITS: dict[str, str] = {
    "log_mass": _MASS, "log_mass_formed": _MASS, "log_mass_living": _MASS,
    "log_dustmass": _MASS,
    "log_sfr": _SFR, "log_sfr10": _SFR, "log_sfr100": _SFR,
    "log_sigma_mass": "dex(solMass / kpc2)", "log_sigma_dustmass": "dex(solMass / kpc2)",
    "log_sigma_sfr": "dex(solMass / (yr kpc2))",
    "log_age": "dex(Gyr)", "log_tau": "dex(Gyr)", "log_t0": "dex(Gyr)",
    "log_mw_age": "dex(Gyr)",
    "log_lbol": "dex(solLum)",
    "logzsol": "dex",  # log10(Z / Z☉)
    "gas_logu": "dex", "log_umin": "dex", "log_gamma": "dex", "log_qpah": "dex(%)",
    "log_alpha": "dex", "log_beta": "dex", "log_fagn": "dex", "log_tauagn": "dex",
    "log_fagn_bol": "dex",
    "dust1": "", "dust2": "", "dust_index": "",  # optical depths, power-law index
    "z": "", "chi2": "", "n_used": "",
}
_STAT_SOURCE = {"mean": "mean", "mean_err": "std", "p16": "p16", "p50": "p50", "p84": "p84"}

#: Values of an original piXedfit map file below which a map value is missing (-99 and
#: the pixel maps derived from it).
_ORIGINAL_MISSING_BELOW = -90.0


def load_fit_results(fits_in: Any) -> dict[int, FitResult]:
    """Fit results keyed by bin id from a mapping (the
    :class:`~pixedfit.fitting.results.FitResults` of ``fit_binmap``), a
    :class:`ResultStore` or its folder (keys ``bin<id>``)."""
    if isinstance(fits_in, Mapping):
        out = {}
        for key, res in fits_in.items():
            if not isinstance(res, FitResult):
                raise TypeError(f"fits: value for bin {key!r} is not a FitResult")
            out[int(str(key).removeprefix("bin"))] = res
        return out
    if isinstance(fits_in, str | os.PathLike):
        if not Path(fits_in).is_dir():
            raise FileNotFoundError(f"fits: result folder {fits_in} not found")
        fits_in = ResultStore(fits_in)
    if isinstance(fits_in, ResultStore):
        out = {}
        for key in fits_in.keys():
            if key.startswith("bin") and key[3:].isdigit():
                out[int(key[3:])] = fits_in.load(key)
        return out
    raise TypeError("fits: expected a mapping bin id → FitResult (fit_binmap's FitResults), a "
                    "ResultStore or its folder")


def get_bestfit_params(fit: FitResult | PathLike, stat: str | None = None) -> dict[str, float]:
    """Summary value of every statistic of a fit: name → value.

    Parameters
    ----------
    fit : FitResult or path
        A result object or file (our HDF5 or the original's FITS layout).
    stat : {"mean", "p50", "best", "std", "p16", "p84"}, optional
        Which statistic; default ``mean`` for RDSPS and ``p50`` for MCMC results.
    """
    res = fit if isinstance(fit, FitResult) else FitResult.read_any(fit)
    stat = stat or ("p50" if res.method == "mcmc" else "mean")
    if stat not in ("mean", "std", "p16", "p50", "p84", "best"):
        raise ValueError(f"stat: unknown statistic {stat!r}")
    values = getattr(res, stat)
    return {name: float(v) for name, v in zip(res.names, values, strict=True)}


def share_out(
    flux: NDArray[np.float64], flux_err: NDArray[np.float64], bin_map: NDArray[np.int32],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Share of each pixel in its bin's flux, and the error of log10 of that share.

    Parameters
    ----------
    flux, flux_err : ndarray (y, x)
        Reference-band flux and 1σ error of every pixel (any unit).
    bin_map : ndarray of int (y, x)
        Bin ids (0 = no bin).

    Returns
    -------
    log_w, sigma_log_w : ndarray (y, x)
        log10(f_p / F_bin) and its 1σ error (module docstring); NaN outside bins and where
        ``f_p <= 0`` or ``F_bin <= 0``.
    """
    inside = bin_map > 0
    ids = bin_map[inside]
    nb = int(bin_map.max()) if inside.any() else 0
    f = np.where(inside, flux, 0.0)
    v = np.where(inside, flux_err**2, 0.0)
    F = np.bincount(ids, weights=f[inside], minlength=nb + 1)
    V = np.bincount(ids, weights=v[inside], minlength=nb + 1)
    log_w = np.full(bin_map.shape, np.nan)
    sig = np.full(bin_map.shape, np.nan)
    fp, sp2 = f[inside], v[inside]
    Fb, Vb = F[ids], V[ids]
    ok = (fp > 0) & (Fb > 0)
    r = Fb - fp
    vr = np.maximum(Vb - sp2, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.sqrt((r * np.sqrt(sp2) / (fp * Fb)) ** 2 + vr / Fb**2)
        lw = np.log10(fp / Fb)
    log_w[inside] = np.where(ok, lw, np.nan)
    sig[inside] = np.where(ok, rel / _LN10, np.nan)
    return log_w, sig


class PropertyMaps:
    """Bin and pixel maps of fitted and derived properties.

    Attributes
    ----------
    maps : dict of str to ndarray (y, x)
        ``bin-<param>-<stat>`` and ``pix-<param>-<stat>`` maps (NaN where undefined).
    region : ndarray of bool (y, x)
    bin_map : ndarray of int32 (y, x)
        Bin ids (0 outside bins).
    z : float or None
    method : str
        Fitting method of the results (``rdsps`` or ``mcmc``).
    kpc_per_pixel, pixel_scale : float or None
        Pixel size in kpc and arcsec.
    filters : list of str
    refbands : dict of str to str
        Reference band of every pixel quantity.
    flags : ndarray of int16 (y, x)
        Quality bit flags of every pixel (:data:`FLAG_BITS`; 0 = good or outside the bins).
    """

    def __init__(self, maps: Mapping[str, NDArray[np.float64]], region: NDArray[np.bool_],
                 bin_map: NDArray[np.int32], z: float | None = None, method: str = "rdsps",
                 kpc_per_pixel: float | None = None, pixel_scale: float | None = None,
                 filters: Sequence[str] = (), refbands: Mapping[str, str] | None = None,
                 flags: ArrayLike | None = None):
        self.region = np.asarray(region, dtype=bool)
        self.bin_map = np.asarray(bin_map, dtype=np.int32)
        if self.bin_map.shape != self.region.shape:
            raise ValueError("bin_map and region must have the same shape")
        if flags is None:
            self.flags = np.zeros(self.region.shape, np.int16)
        else:
            f = np.asarray(flags)
            if f.shape != self.region.shape:
                raise ValueError(f"flags: shape {f.shape}, expected {self.region.shape}")
            if not np.issubdtype(f.dtype, np.integer) or f.min(initial=0) < 0 or \
                    f.max(initial=0) >= 2 * max(FLAG_BITS):
                raise ValueError(f"flags: expected non-negative integer bit flags below "
                                 f"{2 * max(FLAG_BITS)}")
            self.flags = f.astype(np.int16)
        self.maps: dict[str, NDArray[np.float64]] = {}
        for name, arr in maps.items():
            a = np.asarray(arr, dtype=np.float64)
            if a.shape != self.region.shape:
                raise ValueError(f"map {name!r} has shape {a.shape}, expected "
                                 f"{self.region.shape}")
            if not name.startswith(("bin-", "pix-")) or name.count("-") < 2:
                raise ValueError(f"map name {name!r} is not bin-<param>-<stat> or "
                                 "pix-<param>-<stat>")
            self.maps[name] = a
        self.z = z
        self.method = method
        self.kpc_per_pixel = kpc_per_pixel
        self.pixel_scale = pixel_scale
        self.filters = list(filters)
        self.refbands = dict(refbands or {})

    @property
    def nbins(self) -> int:
        """Number of bins."""
        return int(self.bin_map.max())

    def params(self, kind: str = "bin") -> list[str]:
        """Quantities with maps of ``kind`` ("bin" or "pix"), in file order."""
        out: list[str] = []
        for name in self.maps:
            k, p, _ = _split(name)
            if k == kind and p not in out:
                out.append(p)
        return out

    def stats(self, param: str, kind: str = "bin") -> list[str]:
        """Statistics available for ``param``.

        Parameters
        ----------
        param : str
            Quantity (e.g. ``"log_mass"``).
        kind : {"bin", "pix"}
            Kind of map.

        Returns
        -------
        list of str
        """
        return [s for k, p, s in map(_split, self.maps) if k == kind and p == param]

    def get(self, param: str, stat: str = "p50", kind: str = "bin") -> NDArray[np.float64]:
        """The map ``<kind>-<param>-<stat>``.

        Parameters
        ----------
        param : str
            Quantity (e.g. ``"log_mass"``).
        stat : str
            Statistic (``"p50"``, ``"mean"``, …; see :meth:`stats`).
        kind : {"bin", "pix"}
            Map of the bins' values, or of the values per pixel.

        Returns
        -------
        ndarray, shape (ny, nx)
            In the unit of :func:`quantity_unit`; NaN outside the fitted bins.
        """
        key = f"{kind}-{param}-{stat}"
        if key not in self.maps:
            raise KeyError(f"no map {key!r}; available for {param!r}: "
                           f"{self.stats(param, kind)}")
        return self.maps[key]

    def bin_values(self, param: str, stat: str = "p50") -> NDArray[np.float64]:
        """Per-bin values (nbins,) of a bin map (row k = bin k + 1).

        Parameters
        ----------
        param : str
            Quantity (e.g. ``"log_mass"``).
        stat : str
            Statistic (``"p50"``, ``"mean"``, …; see :meth:`stats`).

        Returns
        -------
        ndarray, shape (nbins,)
            NaN for bins without a value.
        """
        m = self.get(param, stat, "bin")
        out = np.full(self.nbins, np.nan)
        ids = self.bin_map[self.bin_map > 0]
        out[ids - 1] = m[self.bin_map > 0]
        return out

    def bin_flags(self) -> NDArray[np.int16]:
        """Quality flags per bin (nbins,) (row k = bin k + 1)."""
        out = np.zeros(self.nbins, np.int16)
        inside = self.bin_map > 0
        np.bitwise_or.at(out, self.bin_map[inside] - 1, self.flags[inside])
        return out

    def flag_summary(self) -> dict[int, tuple[int, int]]:
        """Flag bit → (number of bins, number of pixels) carrying it (bits that occur)."""
        per_bin = self.bin_flags()
        out = {}
        for bit in FLAG_BITS:
            npix = int(np.count_nonzero(self.flags & bit))
            if npix:
                out[bit] = (int(np.count_nonzero(per_bin & bit)), npix)
        return out

    def __repr__(self) -> str:
        return (f"PropertyMaps(nbins={self.nbins}, shape={self.region.shape}, "
                f"method={self.method!r}, maps={len(self.maps)})")

    # ------------------------------------------------------------------ I/O
    def write(self, path: PathLike, overwrite: bool = False) -> None:
        """Write the FITS layout of the module docstring (atomically).

        Parameters
        ----------
        path : path-like
            FITS file to write.
        overwrite : bool
            Replace an existing file (else FileExistsError).
        """
        if os.path.exists(path) and not overwrite:
            raise FileExistsError(f"{path} exists (use overwrite=True)")
        hdr = fits.Header()
        hdr["PFVERSN"] = (SCHEMA_VERSION, "pixedfit file-layout version")
        hdr["PFKIND"] = (_KIND, "pixedfit object stored in this file")
        hdr["GAL_Z"] = -99.0 if self.z is None else float(self.z)
        hdr["NBINS"] = self.nbins
        hdr["FITMETH"] = self.method
        if self.kpc_per_pixel is not None:
            hdr["KPCPIX"] = (float(self.kpc_per_pixel), "kpc per pixel")
        if self.pixel_scale is not None:
            hdr["PIXSIZE"] = (float(self.pixel_scale), "arcsec per pixel")
        hdr["REFBANDS"] = ",".join(f"{k}:{v}" for k, v in self.refbands.items())
        hdr["NFILTERS"] = len(self.filters)
        for i, f in enumerate(self.filters):
            hdr[f"FIL{i}"] = f
        names = ["GALAXY_REGION", *self.maps, "BIN_MAP", "BIN_FLAG", "BIN_TABLE"]
        hdr["NHDU"] = (len(names), "extensions after the primary")
        for i, n in enumerate(names, start=1):
            hdr[f"HDU{i}"] = n
        hdus: list[Any] = [fits.PrimaryHDU(header=hdr),
                           fits.ImageHDU(self.region.astype(np.int16), name="GALAXY_REGION")]
        for name, arr in self.maps.items():
            image = fits.ImageHDU(arr, name=name)
            unit = quantity_unit(*_split(name)[1:])
            if unit is not None:
                image.header["BUNIT"] = (unit, "astropy unit; dex(X) = log10 of X")
            hdus.append(image)
        hdus.append(fits.ImageHDU(self.bin_map, name="BIN_MAP"))
        flag = fits.ImageHDU(self.flags.astype(np.int16), name="BIN_FLAG")
        flag.header["FLAGDOC"] = "bit flags, 0 = good or outside the bins"
        for bit, text in FLAG_BITS.items():
            flag.header[f"FLAGB{bit}"] = (text, f"bit {bit}")
        hdus.append(flag)
        table = Table({"bin_id": np.arange(1, self.nbins + 1, dtype=np.int32),
                       "flag": self.bin_flags()})
        for name in self.maps:
            kind, p, s = _split(name)
            if kind == "bin":
                table[f"{p}-{s}"] = self.bin_values(p, s)
        hdus.append(fits.BinTableHDU(table, name="BIN_TABLE"))
        with atomic_path(path) as tmp:
            fits.HDUList(hdus).writeto(tmp, overwrite=True)

    @classmethod
    def read(cls, path: PathLike) -> PropertyMaps:
        """Read maps written by pixedfit or by piXedfit's ``maps_parameters`` (whose −99
        values of missing bins become NaN)."""
        try:
            hdul = fits.open(path, memmap=False)
        except (OSError, TypeError) as exc:
            raise ValueError(f"{path}: not a readable FITS file ({exc})") from exc
        with hdul:
            hdr = hdul[0].header
            if "GALAXY_REGION" not in hdul:
                raise ValueError(f"{path}: no GALAXY_REGION extension (not a property map "
                                 "file)")
            region = np.asarray(hdul["GALAXY_REGION"].data) > 0
            maps = {}
            for hdu in hdul[1:]:
                name = hdu.name.lower() if hdu.name.lower().startswith(("bin-", "pix-")) \
                    else hdu.name
                if name.startswith(("bin-", "pix-")):
                    arr = np.array(hdu.data, dtype=np.float64)
                    if "PFKIND" not in hdr:
                        # original file: 0 outside the region; a missing bin holds -99, and
                        # its pixel maps log10(10^-99 × f_pix/f_bin) = -99 + a log ratio
                        # (spec §2.8): no map of log quantities comes near -90 otherwise
                        arr[arr < _ORIGINAL_MISSING_BELOW] = np.nan
                        arr[~region] = np.nan
                    maps[_case(name, hdu.header)] = arr
            if not maps:
                raise ValueError(f"{path}: no bin-/pix- map extensions")
            if "BIN_MAP" in hdul:
                bin_map = np.asarray(hdul["BIN_MAP"].data, dtype=np.int32)
            else:
                bin_map = _bins_from_maps(region, maps)
            if "BIN_FLAG" in hdul:
                flags = np.asarray(hdul["BIN_FLAG"].data, dtype=np.int16)
            else:  # written before flags existed, or by piXedfit: mark unfitted bins
                unfitted = np.all([~np.isfinite(v) for k, v in maps.items()
                                   if k.startswith("bin-")] or [np.zeros(region.shape, bool)],
                                  axis=0)
                flags = np.where((bin_map > 0) & unfitted, FLAG_NOT_FITTED,
                                 0).astype(np.int16)
            z = float(hdr.get("GAL_Z", -99.0))
            filters = [str(hdr[f"FIL{i}"]) for i in range(int(hdr.get("NFILTERS", 0)))]
            refbands = dict(item.split(":", 1) for item in str(hdr.get("REFBANDS", "")).split(",")
                            if ":" in item)
            method = str(hdr.get("FITMETH", "mcmc" if any(k.endswith("-p50") for k in maps)
                                 else "rdsps"))
            return cls(maps, region, bin_map, z=None if z <= 0 else z, method=method,
                       kpc_per_pixel=hdr.get("KPCPIX"), pixel_scale=hdr.get("PIXSIZE"),
                       filters=filters, refbands=refbands, flags=flags)


def quantity_unit(param: str, stat: str = "p50") -> str | None:
    """Unit of the map ``<kind>-<param>-<stat>`` (astropy generic string) or None if unknown.

    Values and percentiles carry the quantity's unit (``dex(solMass)`` for ``log_mass``);
    the posterior standard deviation ``mean_err`` of a logarithmic quantity is in ``dex``.

    Parameters
    ----------
    param : str
        Quantity (e.g. ``"log_mass"``).
    stat : str
        Statistic (``"p50"``, ``"mean_err"``, …).

    Returns
    -------
    str or None
    """
    unit = QUANTITY_UNITS.get(param)
    if unit is not None and stat in ("mean_err", "std") and unit.startswith("dex"):
        return "dex"
    return unit


def _split(name: str) -> tuple[str, str, str]:
    kind, rest = name.split("-", 1)
    param, stat = rest.rsplit("-", 1)
    return kind, param, stat


def _case(name: str, header: fits.Header) -> str:
    """FITS upper-cases EXTNAME; the original's names are lower case, so restore it."""
    return name if name == name.lower() else name.lower()


def _bins_from_maps(region: NDArray[np.bool_], maps: Mapping[str, NDArray]) -> NDArray[np.int32]:
    """Bin ids reconstructed from the constant-valued bin maps (files without BIN_MAP)."""
    first = next((v for k, v in maps.items() if k.startswith("bin-")), None)
    out = np.zeros(region.shape, np.int32)
    if first is None:
        return out
    _, inv = np.unique(np.where(region, first, np.inf)[region], return_inverse=True)
    out[region] = inv.astype(np.int32) + 1
    return out


def _band_index(filters: Sequence[str], band: int | str | None, default: int) -> int:
    if band is None:
        return default % len(filters)
    if isinstance(band, str):
        if band not in filters:
            raise ValueError(f"reference band {band!r} is not one of {list(filters)}")
        return list(filters).index(band)
    if not -len(filters) <= int(band) < len(filters):
        raise ValueError(f"reference band index {band} outside 0..{len(filters) - 1}")
    return int(band) % len(filters)


def share_out_fallback(
    flux: NDArray[np.float64], flux_err: NDArray[np.float64], band: int,
    bin_map: NDArray[np.int32],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """:func:`share_out` in the reference ``band``, with a per-pixel fallback so that no
    pixel of a bin is left NaN.

    A pixel whose reference-band flux (or whose bin's total) is ≤ 0 — sky-dominated pixels
    of faint bins — takes its share from the band nearest to ``band`` in the cube's order
    in which both are > 0. Pixels with no such band get an equal share 1/N of their bin's
    N pixels, with an error of log10(N) dex (unknown within a factor N). The shares of
    each bin are then renormalised to sum to 1, so the pixel values of an additive
    quantity add up to the bin's.

    Parameters
    ----------
    flux, flux_err : ndarray (band, y, x)
        Cube fluxes and errors (NaN outside the region is allowed).
    band : int
        Reference band.
    bin_map : ndarray of int (y, x)
        Bin ids (0 = no bin).

    Returns
    -------
    log_w, sigma_log_w : ndarray (y, x)
        As :func:`share_out`; finite for every pixel of a bin.
    """
    nb = flux.shape[0]
    order = sorted(range(nb), key=lambda b: (abs(b - band), b))
    log_w = np.full(bin_map.shape, np.nan)
    sig = np.full(bin_map.shape, np.nan)
    inside = bin_map > 0
    for b in order:
        todo = inside & ~np.isfinite(log_w)
        if not todo.any():
            break
        lw, sw = share_out(np.nan_to_num(flux[b]), np.nan_to_num(flux_err[b], nan=0.0),
                           bin_map)
        take = todo & np.isfinite(lw)
        log_w[take], sig[take] = lw[take], sw[take]
    todo = inside & ~np.isfinite(log_w)
    if todo.any():
        count = np.bincount(bin_map[inside], minlength=int(bin_map.max()) + 1)
        n = count[bin_map[todo]].astype(float)
        log_w[todo] = -np.log10(n)
        sig[todo] = np.log10(np.maximum(n, 2.0))
    # shares from several bands, or next to negative pixels, need not sum to 1: renormalise
    total = np.bincount(bin_map[inside], weights=10.0 ** log_w[inside],
                        minlength=int(bin_map.max()) + 1)
    log_w[inside] -= np.log10(total[bin_map[inside]])
    return log_w, sig


def maps_parameters(
    binned: BinnedCube | PathLike,
    fits_in: Any,
    fluxmap: FluxCube | SpecPhotCube | PathLike | None = None,
    ref_band_sfr: int | str | None = None,
    ref_band_mass: int | str | None = None,
    ref_band_dust_mass: int | str | None = None,
    output: PathLike | None = None,
    cosmo: Any = None,
    H0: float = 70.0,
    Om0: float = 0.3,
) -> PropertyMaps:
    """Maps of every fitted and derived property (see the module docstring).

    Parameters
    ----------
    binned : BinnedCube or path
        The binned cube that was fitted.
    fits_in : dict bin id → FitResult, ResultStore or folder
        Results of :func:`pixedfit.fitting.fit_binmap` (or MCMC results of the same form).
    fluxmap : FluxCube, SpecPhotCube or path, optional
        The unbinned cube, for the pixel maps (default: no pixel maps).
    ref_band_sfr, ref_band_mass, ref_band_dust_mass : int or str, optional
        Reference bands (index or filter name) for sharing SFR (default the bluest band),
        stellar mass and dust mass (default the reddest).
    output : path-like, optional
        Write the maps there.
    cosmo, H0, Om0
        Cosmology of the pixel size in kpc.

    Returns
    -------
    PropertyMaps
    """
    cube = binned if isinstance(binned, BinnedCube) else BinnedCube.read(binned)
    results = load_fit_results(fits_in)
    if not results:
        raise ValueError("fits: no fit result given")
    bad = [b for b in results if not 1 <= b <= cube.nbins]
    if bad:
        raise ValueError(f"fits: bin ids {bad} outside 1..{cube.nbins}")
    first = results[min(results)]
    names = list(first.names)
    method = first.method
    for b, res in results.items():
        if list(res.names) != names:
            raise ValueError(f"fits: bin {b} has different statistics from bin {min(results)}")
    shape = cube.bin_map.shape
    inside = cube.bin_map > 0
    ids = cube.bin_map[inside]

    def paint(values: NDArray[np.float64]) -> NDArray[np.float64]:
        out = np.full(shape, np.nan)
        out[inside] = values[ids - 1]
        return out

    table: dict[str, NDArray[np.float64]] = {}
    for stat, attr in _STAT_SOURCE.items():
        arr = np.full((cube.nbins, len(names)), np.nan)
        for b, res in results.items():
            arr[b - 1] = getattr(res, attr)
        for k, p in enumerate(names):
            if np.isfinite(arr[:, k]).any():
                table[f"{p}-{stat}"] = arr[:, k]
    chi2 = np.full(cube.nbins, np.nan)
    nused = np.full(cube.nbins, np.nan)
    for b, res in results.items():
        chi2[b - 1], nused[b - 1] = res.chi2_min, res.n_used
    table["chi2-best"] = chi2
    table["n_used-best"] = nused

    kpc = None
    if cube.z is not None and cube.z > 0 and cube.pixel_scale is not None:
        kpc = float(kpc_per_pixel(cube.z, cube.pixel_scale, cosmo, H0, Om0))
        log_area_bin = np.log10(cube.bin_npix * kpc**2)
        for q, sq in PIXEL_QUANTITIES.items():
            for stat in ("mean", "mean_err", "p16", "p50", "p84"):
                if f"{q}-{stat}" in table:
                    v = table[f"{q}-{stat}"]
                    table[f"{sq}-{stat}"] = v if stat == "mean_err" else v - log_area_bin

    maps = {f"bin-{key}": paint(v) for key, v in table.items()}
    refbands: dict[str, str] = {}
    if fluxmap is not None:
        phot = read_cube(fluxmap) if isinstance(fluxmap, str | os.PathLike) else fluxmap
        if isinstance(phot, SpecPhotCube):
            phot = phot.photometry
        if phot.flux.shape[1:] != shape:
            raise ValueError(f"fluxmap: shape {phot.flux.shape[1:]} differs from the bin map "
                             f"{shape}")
        if list(phot.filters) != list(cube.filters):
            raise ValueError("fluxmap: filters differ from the binned cube's")
        nb = len(cube.filters)
        choice = {"log_sfr": _band_index(cube.filters, ref_band_sfr, 0),
                  "log_mass": _band_index(cube.filters, ref_band_mass, nb - 1),
                  "log_dustmass": _band_index(cube.filters, ref_band_dust_mass, nb - 1)}
        for q, band in choice.items():
            if f"{q}-p50" not in table and f"{q}-mean" not in table:
                continue
            refbands[q] = cube.filters[band]
            log_w, sig_w = share_out_fallback(phot.flux, phot.flux_err, band, cube.bin_map)
            pix: dict[str, NDArray[np.float64]] = {}
            if f"{q}-mean" in table:
                pix["mean"] = maps[f"bin-{q}-mean"] + log_w
                if f"{q}-mean_err" in table:
                    pix["mean_err"] = np.hypot(maps[f"bin-{q}-mean_err"], sig_w)
            if f"{q}-p50" in table:
                p50 = maps[f"bin-{q}-p50"]
                pix["p50"] = p50 + log_w
                if f"{q}-p16" in table:
                    pix["p16"] = pix["p50"] - np.hypot(p50 - maps[f"bin-{q}-p16"], sig_w)
                if f"{q}-p84" in table:
                    pix["p84"] = pix["p50"] + np.hypot(maps[f"bin-{q}-p84"] - p50, sig_w)
            for stat, arr in pix.items():
                maps[f"pix-{q}-{stat}"] = arr
            if kpc is not None:
                for stat, arr in pix.items():
                    maps[f"pix-{PIXEL_QUANTITIES[q]}-{stat}"] = (
                        arr if stat == "mean_err" else arr - 2 * np.log10(kpc))
    out = PropertyMaps(maps, cube.region, cube.bin_map, z=cube.z, method=method,
                       kpc_per_pixel=kpc, pixel_scale=cube.pixel_scale,
                       filters=cube.filters, refbands=refbands,
                       flags=_flag_map(cube, results))
    if output is not None:
        out.write(output, overwrite=True)
    return out


def _flag_map(cube: BinnedCube, results: Mapping[int, FitResult]) -> NDArray[np.int16]:
    """Quality flags (y, x) of the bins of ``cube`` given its fit ``results``."""
    per_bin = np.where(cube.leftover, FLAG_LEFTOVER, 0).astype(np.int16)
    for b in range(1, cube.nbins + 1):
        res = results.get(b)
        if res is None:
            per_bin[b - 1] |= FLAG_NOT_FITTED
        else:
            if res.converged is False:
                per_bin[b - 1] |= FLAG_NOT_CONVERGED
            if not res.ok:
                per_bin[b - 1] |= FLAG_FAILED
    flags = np.zeros(cube.bin_map.shape, np.int16)
    inside = cube.bin_map > 0
    flags[inside] = per_bin[cube.bin_map[inside] - 1]
    return flags


def compare_with_truth(
    maps: PropertyMaps | PathLike,
    binned: BinnedCube | PathLike,
    truth: PathLike,
    snr_bands: Sequence[str] | None = None,
    min_snr: float = 10.0,
    stat: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Recovered bin values against true maps (e.g. of the demo).

    Parameters
    ----------
    maps : PropertyMaps or path
    binned : BinnedCube or path
    truth : path
        FITS file on the same grid with ``MASS`` (M☉ per pixel) and ``SFR`` (M☉ yr⁻¹ per
        pixel) — at the resolution of the data — and optionally ``DUST2`` (τ_V, averaged
        over the bin weighted by ``MASS``).
    snr_bands : sequence of str, optional
        Bands in which a bin must reach ``min_snr`` to be compared (default all).
    min_snr : float
        S/N threshold; the leftover bin is always excluded.
    stat : str, optional
        Recovered statistic (default ``p50`` for MCMC, ``mean`` for RDSPS).

    Returns
    -------
    dict
        ``log_sigma_mass`` and ``log_sigma_sfr`` (dex) and ``A_V`` (mag, from dust2 with
        A_V = 1.0857 τ_V): each a dict with ``bins``, ``true``, ``recovered``, ``delta``
        (arrays) and ``median_abs``, ``median`` and ``n``.
    """
    pm = maps if isinstance(maps, PropertyMaps) else PropertyMaps.read(maps)
    cube = binned if isinstance(binned, BinnedCube) else BinnedCube.read(binned)
    with fits.open(truth) as hdul:
        data = {h.name: np.asarray(h.data, dtype=np.float64) for h in hdul[1:]
                if h.data is not None}
    for key in ("MASS", "SFR"):
        if key not in data:
            raise ValueError(f"truth: no {key} extension in {truth}")
        if data[key].shape != cube.bin_map.shape:
            raise ValueError(f"truth: {key} has shape {data[key].shape}, the bin map "
                             f"{cube.bin_map.shape}")
    bands = list(cube.filters) if snr_bands is None else list(snr_bands)
    idx = [cube.filters.index(b) for b in bands]
    good = ~cube.leftover & np.all(cube.bin_snr[:, idx] >= min_snr, axis=1)
    stat = stat or ("p50" if pm.method == "mcmc" else "mean")
    bm = cube.bin_map
    nb = cube.nbins

    def bin_sum(arr: NDArray) -> NDArray:
        return np.bincount(bm[bm > 0], weights=arr[bm > 0], minlength=nb + 1)[1:]

    mass = bin_sum(data["MASS"])
    area = cube.bin_npix * (pm.kpc_per_pixel or 1.0) ** 2
    out: dict[str, dict[str, Any]] = {}
    pairs = [("log_sigma_mass", "log_mass", mass), ("log_sigma_sfr", "log_sfr",
                                                    bin_sum(data["SFR"]))]
    for key, param, true_sum in pairs:
        with np.errstate(divide="ignore"):
            true = np.log10(true_sum / area)
        rec = pm.bin_values(param, stat) - np.log10(area)
        out[key] = _stats(good, true, rec)
    if "DUST2" in data and "dust2" in pm.params("bin"):
        av = 2.5 / math.log(10.0)
        true = av * bin_sum(data["DUST2"] * data["MASS"]) / mass
        out["A_V"] = _stats(good, true, av * pm.bin_values("dust2", stat))
    return out


def _stats(good: NDArray[np.bool_], true: NDArray, rec: NDArray) -> dict[str, Any]:
    ok = good & np.isfinite(true) & np.isfinite(rec)
    delta = rec - true
    return {"bins": np.nonzero(ok)[0] + 1, "true": true[ok], "recovered": rec[ok],
            "delta": delta[ok], "n": int(ok.sum()),
            "median_abs": float(np.median(np.abs(delta[ok]))) if ok.any() else math.nan,
            "median": float(np.median(delta[ok])) if ok.any() else math.nan}
