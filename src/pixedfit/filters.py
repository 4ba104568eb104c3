"""Filter library and broadband photometry.

Filter curves come from three places, looked up in this order:

1. **User filters** added with :func:`add_filter`, kept in ``filters.json`` inside the user
   data folder (see :func:`pixedfit._paths.user_data_dir`; ``PIXEDFIT_DATA_DIR`` or a
   ``data_dir=`` argument redirects it). Renamed built-in filters are recorded there too.
2. **piXedfit names** (``galex_fuv``, ``sdss_r``, ``2mass_k``, ``wise_w1``,
   ``spitzer_irac_36``, ``herschel_spire_250``, ``hst_wfc3_ir_f160w``, ``jwst_nircam_f200w``...)
   that map onto a curve of astro-sedpy.
3. **astro-sedpy names** (``galex_FUV``, ``sdss_r0``, ``twomass_Ks``...): the ``.par`` files
   shipped inside the installed ``sedpy`` package, read in place.

Built-in curves are cleaned when read: rows with non-finite values are dropped, samples are
sorted by wavelength, repeated wavelengths are merged and negative transmissions (noise in a
few published curves) are set to zero. User curves must be clean already: bad input raises.

Photometry follows piXedfit's convention: the band flux of a spectrum is the photon-weighted
mean flux density ``<f_λ> = ∫ f_λ T λ dλ / ∫ T λ dλ``, in the units of f_λ (normally
erg s⁻¹ cm⁻² Å⁻¹). The matching wavelength for unit conversions is the pivot wavelength
``λ_p = sqrt(∫ T λ dλ / ∫ T / λ dλ)``, for which ``<f_ν> = <f_λ> λ_p² / c`` holds exactly.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _core
from ._paths import FileLock, atomic_path, package_data_dir, user_data_dir
from .parallel import resolve_threads

__all__ = [
    "MIN_FILTER_COVERAGE",
    "FilterWeights",
    "PartialCoverageWarning",
    "UnknownFilterError",
    "add_filter",
    "builtin_curve_name",
    "builtin_filter_names",
    "cwave_filters",
    "filter_family",
    "filter_weights",
    "get_filter_curve",
    "list_filters",
    "photometry",
    "pivot_wavelength",
    "remove_filter",
    "rename_filter",
]

PathLike = str | os.PathLike[str]
_REGISTRY_NAME = "filters.json"
_REGISTRY_SCHEMA = 1
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.+\-]+$")


class UnknownFilterError(ValueError):
    """Raised for a filter name that is neither built in nor added by the user."""


# --------------------------------------------------------------------------- built-in curves


@functools.cache
def _sedpy_filter_dir() -> Path:
    return package_data_dir("sedpy", "data", "filters")


@functools.cache
def _sedpy_names() -> frozenset[str]:
    return frozenset(p.stem for p in _sedpy_filter_dir().glob("*.par"))


@functools.cache
def _pixedfit_aliases() -> dict[str, str]:
    """piXedfit filter name → sedpy filter name (package data)."""
    path = Path(__file__).with_name("data") / "filter_aliases.tsv"
    aliases: dict[str, str] = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("#") or line.startswith("pixedfit_name"):
                continue
            pix, sed = line.rstrip("\n").split("\t")
            aliases[pix] = sed
    return aliases


def _clean_curve(wave: NDArray[np.float64], trans: NDArray[np.float64]) -> tuple[NDArray, NDArray]:
    """Drop non-finite rows, sort, merge repeated wavelengths, clip negative T to 0."""
    good = np.isfinite(wave) & np.isfinite(trans)
    wave, trans = wave[good], trans[good]
    order = np.argsort(wave, kind="stable")
    wave, trans = wave[order], trans[order]
    uniq, inverse, counts = np.unique(wave, return_inverse=True, return_counts=True)
    if uniq.size != wave.size:
        trans = np.bincount(inverse, weights=trans) / counts
        wave = uniq
    return wave, np.clip(trans, 0.0, None)


@functools.cache
def _read_sedpy_curve(sedpy_name: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    path = _sedpy_filter_dir() / f"{sedpy_name}.par"
    rows: list[tuple[float, float]] = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            fields = line.split("#", 1)[0].split()
            if len(fields) >= 2:
                rows.append((float(fields[0]), float(fields[1])))
    data = np.asarray(rows, dtype=np.float64).reshape(-1, 2)
    wave, trans = _clean_curve(data[:, 0], data[:, 1])
    if wave.size < 2 or not np.any(trans > 0):
        raise ValueError(f"the sedpy filter file {path} holds no usable transmission curve")
    wave.setflags(write=False)
    trans.setflags(write=False)
    return wave, trans


# --------------------------------------------------------------------------- user registry


def _registry_path(data_dir: PathLike | None) -> Path:
    return user_data_dir(data_dir) / _REGISTRY_NAME


def _empty_registry() -> dict[str, Any]:
    return {"schema_version": _REGISTRY_SCHEMA, "filters": {}, "aliases": {}, "hidden": []}


def _load_registry(data_dir: PathLike | None) -> dict[str, Any]:
    path = _registry_path(data_dir)
    if not path.exists():
        return _empty_registry()
    try:
        registry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"the user filter registry {path} is unreadable: {exc}") from exc
    if registry.get("schema_version") != _REGISTRY_SCHEMA:
        raise ValueError(
            f"the user filter registry {path} has schema_version "
            f"{registry.get('schema_version')!r}; this pixedfit reads version {_REGISTRY_SCHEMA}"
        )
    for key, default in _empty_registry().items():
        registry.setdefault(key, default)
    return registry


#: Seconds a registry change waits for another process's change to finish.
_REGISTRY_WAIT = 60.0


def _registry_lock(data_dir: PathLike | None) -> FileLock:
    """Lock of the registry's read-modify-write (``filters.json.lock`` next to it).

    Two processes adding, removing or renaming filters at once take turns, so neither
    change is lost (see :class:`pixedfit._paths.FileLock`: ``flock`` on POSIX, an
    exclusive lock file elsewhere).
    """
    path = _registry_path(data_dir)
    return FileLock(path.with_name(path.name + ".lock"), f"the user filter registry {path}",
                    wait=_REGISTRY_WAIT)


def _save_registry(registry: dict[str, Any], data_dir: PathLike | None) -> None:
    registry["hidden"] = sorted(set(registry["hidden"]))
    with atomic_path(_registry_path(data_dir)) as tmp:
        tmp.write_text(json.dumps(registry, indent=1, sort_keys=True), encoding="utf-8")


def _builtin_names() -> set[str]:
    return set(_pixedfit_aliases()) | set(_sedpy_names())


def builtin_filter_names() -> list[str]:
    """Every built-in filter name (piXedfit names and astro-sedpy names), sorted; user
    additions and renames are not included (see :func:`list_filters`)."""
    return sorted(_builtin_names())


def builtin_curve_name(name: str) -> str | None:
    """The astro-sedpy curve file (without ``.par``) behind a built-in filter name, or
    None for a name that is not built in. Two names with the same curve are the same band.
    """
    return _builtin_target(name)


# Filter families: a pattern on the name (or on the sedpy file behind it) → a description
# with the survey names users search for (``pixedfit filters list --match des``).
_FAMILIES: tuple[tuple[str, str], ...] = (
    (r"^galex_", "GALEX (ultraviolet)"),
    (r"^sdss_", "SDSS imaging camera"),
    (r"^(2mass|twomass)_", "2MASS"),
    (r"^wise_", "WISE / unWISE"),
    (r"^spitzer_irac", "Spitzer IRAC"),
    (r"^spitzer_(mips|irs)", "Spitzer MIPS / IRS"),
    (r"^herschel_pacs", "Herschel PACS"),
    (r"^herschel_spire", "Herschel SPIRE"),
    (r"^(ctio_)?decam_", "CTIO Blanco DECam (DES, DECaLS, DELVE)"),
    (r"^mayall_mosaic|^ctio_mosaic", "Mayall/CTIO MOSAIC"),
    (r"^(pan-starrs|panstarrs)_", "Pan-STARRS1 (PS1)"),
    (r"^hsc_", "Subaru Hyper Suprime-Cam (HSC-SSP)"),
    (r"^(cfht_mega|cfht_megacam)_", "CFHT MegaCam (CFHTLS, MegaPipe)"),
    (r"^cfht_wircam_", "CFHT WIRCam"),
    (r"^(wfcam|ukirt_wfcam)_", "UKIRT WFCAM (UKIDSS)"),
    (r"^(vircam|vista_vircam)_", "VISTA VIRCAM (VHS, VIKING, VIDEO)"),
    (r"^(hst_acs|acs_wfc)_", "HST ACS/WFC"),
    (r"^(hst_wfc3_uvis|wfc3_uvis)_", "HST WFC3/UVIS"),
    (r"^(hst_wfc3_ir|wfc3_ir)_", "HST WFC3/IR"),
    (r"^hst_wfpc3_", "HST WFC3 (piXedfit name)"),
    (r"^hst_wfpc2_", "HST WFPC2"),
    (r"^jwst_niriss_", "JWST NIRISS"),
    (r"^jwst_miri_|^jwst_f(560|770|1000|1130|1280|1500|1800|2100|2550)w", "JWST MIRI"),
    (r"^jwst_", "JWST NIRCam"),
    (r"^euclid_", "Euclid VIS / NISP"),
    (r"^(lsst|lsst_baseline)_", "Rubin LSST"),
    (r"^(roman|wfirst)_", "Roman WFI"),
    (r"^(bass|mzls)_", "DESI Legacy Surveys (BASS, MzLS)"),
    (r"^subaru_", "Subaru Suprime-Cam / MOIRCS"),
    (r"^(newfirm|mayall_newfirm)_", "Mayall NEWFIRM"),
    (r"^gaia_", "Gaia"),
    (r"^uvot_", "Swift UVOT"),
    (r"^(johnson|bessell|stromgren|hipparcos)", "standard photometric system"),
)


def filter_family(name: str) -> str:
    """The instrument/survey family of a filter name (``""`` when not known).

    Examples
    --------
    >>> filter_family("decam_g")
    'CTIO Blanco DECam (DES, DECaLS, DELVE)'
    """
    candidates = [name]
    target = _builtin_target(name)
    if target is not None:
        candidates.append(target)
    for pattern, family in _FAMILIES:
        if any(re.search(pattern, c, flags=re.IGNORECASE) for c in candidates):
            return family
    return ""


def _builtin_target(name: str) -> str | None:
    """sedpy name behind a built-in name, or None."""
    aliases = _pixedfit_aliases()
    if name in aliases:
        return aliases[name]
    if name in _sedpy_names():
        return name
    return None


@dataclass(frozen=True)
class _Resolved:
    name: str
    wave: NDArray[np.float64]
    trans: NDArray[np.float64]
    cwave: float | None  # user-given central wavelength, if any
    builtin: str | None = None  # the sedpy curve's name, for a built-in filter


def _unknown(name: str, registry: dict[str, Any]) -> UnknownFilterError:
    by_lower: dict[str, list[str]] = {}
    for candidate in sorted(_available_names(registry)):
        by_lower.setdefault(candidate.lower(), []).append(candidate)
    close = difflib.get_close_matches(str(name).lower(), list(by_lower), n=5, cutoff=0.6)
    suggestions = [c for key in close for c in by_lower[key]]
    hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
    return UnknownFilterError(
        f"unknown filter {name!r}.{hint} See pixedfit.filters.list_filters() for the "
        "available names, or register your own curve with pixedfit.filters.add_filter(name, "
        "wave, trans)."
    )


def _available_names(registry: dict[str, Any]) -> set[str]:
    hidden = set(registry["hidden"])
    names = (_builtin_names() - hidden) | set(registry["aliases"]) | set(registry["filters"])
    return names


def _resolve(name: str, registry: dict[str, Any]) -> _Resolved:
    if not isinstance(name, str):
        raise TypeError(f"filter names must be str, got {type(name).__name__}")
    user = registry["filters"].get(name)
    if user is not None:
        wave = np.asarray(user["wave"], dtype=np.float64)
        trans = np.asarray(user["trans"], dtype=np.float64)
        cwave = user.get("cwave")
        return _Resolved(name, wave, trans, None if cwave is None else float(cwave))
    target = registry["aliases"].get(name)
    if target is None and name not in registry["hidden"]:
        target = _builtin_target(name)
    if target is None:
        raise _unknown(name, registry)
    wave, trans = _read_sedpy_curve(target)
    return _Resolved(name, wave, trans, None, target)


def _as_name_list(filters: str | Iterable[str]) -> list[str]:
    if isinstance(filters, str):
        return [filters]
    names = list(filters)
    if not names:
        raise ValueError("filters: at least one filter name is needed")
    return names


# --------------------------------------------------------------------------- public library API


def list_filters(data_dir: PathLike | None = None, match: str | None = None) -> list[str]:
    """Names of all available filters, sorted.

    Parameters
    ----------
    data_dir : path-like, optional
        User data folder holding added or renamed filters (default: see module docstring).
    match : str, optional
        Keep the names containing this text, or whose family (:func:`filter_family`, e.g.
        "DES", "UKIDSS", "NIRCam") contains it; case insensitive.

    Returns
    -------
    list of str
        piXedfit names, astro-sedpy names and user filters.
    """
    names = sorted(_available_names(_load_registry(data_dir)))
    if match:
        text = match.lower()
        names = [n for n in names if text in n.lower() or text in filter_family(n).lower()]
    return names


def get_filter_curve(
    name: str, data_dir: PathLike | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Transmission curve of a filter.

    Parameters
    ----------
    name : str
        Filter name (piXedfit, sedpy or user name).
    data_dir : path-like, optional
        User data folder.

    Returns
    -------
    wave : ndarray, shape (m,)
        Wavelengths in Å, strictly increasing.
    trans : ndarray, shape (m,)
        Transmission (per photon; arbitrary normalisation), >= 0.

    Raises
    ------
    UnknownFilterError
        For an unknown name, with close matches suggested.
    """
    res = _resolve(name, _load_registry(data_dir))
    return res.wave.copy(), res.trans.copy()


def pivot_wavelength(wave: ArrayLike, trans: ArrayLike) -> float:
    """Pivot wavelength ``sqrt(∫ T λ dλ / ∫ T / λ dλ)`` of a curve, in Å.

    Integrals are exact for a piecewise-linear T (trapezoid rule is not used: each segment
    is integrated analytically).

    Parameters
    ----------
    wave : array_like, shape (m,)
        Wavelengths in Å, strictly increasing, > 0.
    trans : array_like, shape (m,)
        Transmission, >= 0, not all zero.
    """
    lam, t = _validate_curve(wave, trans, "curve")
    a, b = lam[:-1], lam[1:]
    ta, tb = t[:-1], t[1:]
    h = b - a
    # T(x) = ta + s (x - a), s = (tb - ta) / h
    s = (tb - ta) / h
    num = np.sum(ta * (b**2 - a**2) / 2 + s * ((b**3 - a**3) / 3 - a * (b**2 - a**2) / 2))
    # ∫ (ta + s (x - a)) / x dx = (ta - s a) ln(b/a) + s h
    den = np.sum((ta - s * a) * np.log(b / a) + s * h)
    return float(np.sqrt(num / den))


@functools.cache
def _builtin_pivot(sedpy_name: str) -> float:
    """:func:`pivot_wavelength` of a built-in curve, computed once (the curves are cached
    and never change; a fit of a catalogue asks for its bands' pivots once per SED)."""
    return pivot_wavelength(*_read_sedpy_curve(sedpy_name))


def _validate_curve(wave: ArrayLike, trans: ArrayLike, what: str) -> tuple[NDArray, NDArray]:
    lam = np.asarray(wave, dtype=np.float64)
    t = np.asarray(trans, dtype=np.float64)
    if lam.ndim != 1 or t.ndim != 1:
        raise ValueError(f"{what}: wave and trans must be 1-D arrays")
    if lam.shape != t.shape:
        raise ValueError(
            f"{what}: wave and trans have different lengths ({lam.size} and {t.size})"
        )
    if lam.size < 2:
        raise ValueError(f"{what}: a filter curve needs at least 2 samples")
    if not np.all(np.isfinite(lam)) or not np.all(np.isfinite(t)):
        raise ValueError(f"{what}: wave and trans must not contain NaN or infinite values")
    if np.any(lam <= 0):
        raise ValueError(f"{what}: wavelengths must be > 0 Å")
    if np.any(np.diff(lam) <= 0):
        raise ValueError(f"{what}: wavelengths must be strictly increasing")
    if np.any(t < 0):
        raise ValueError(f"{what}: transmission must be >= 0 (found {t.min():g})")
    if not np.any(t > 0):
        raise ValueError(f"{what}: transmission is zero everywhere")
    return lam, t


def _validate_name(name: str, what: str = "name") -> str:
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        raise ValueError(
            f"{what}: filter names are non-empty strings of letters, digits and _ . + - "
            f"(got {name!r})"
        )
    return name


def add_filter(
    name: str,
    wave: ArrayLike,
    trans: ArrayLike,
    cwave: float | None = None,
    overwrite: bool = False,
    data_dir: PathLike | None = None,
) -> None:
    """Register a new filter curve in the user data folder.

    Parameters
    ----------
    name : str
        New filter name (letters, digits, ``_ . + -``).
    wave : array_like, shape (m,)
        Wavelengths in Å, strictly increasing.
    trans : array_like, shape (m,)
        Transmission per photon (any normalisation), >= 0.
    cwave : float, optional
        Central wavelength in Å to report for this filter; by default the pivot wavelength
        is computed from the curve.
    overwrite : bool
        Replace an existing filter of the same name (a built-in one is shadowed).
    data_dir : path-like, optional
        User data folder.

    Raises
    ------
    ValueError
        Bad curve, bad name, or the name exists and ``overwrite`` is False.
    """
    _validate_name(name)
    lam, t = _validate_curve(wave, trans, "add_filter")
    if cwave is not None:
        cwave = float(cwave)
        if not np.isfinite(cwave) or cwave <= 0:
            raise ValueError("cwave: the central wavelength must be finite and > 0 Å")
    with _registry_lock(data_dir):
        registry = _load_registry(data_dir)
        if name in _available_names(registry) and not overwrite:
            raise ValueError(
                f"a filter named {name!r} already exists; pass overwrite=True to replace it "
                "or choose another name"
            )
        registry["aliases"].pop(name, None)
        registry["filters"][name] = {"wave": lam.tolist(), "trans": t.tolist(), "cwave": cwave}
        _save_registry(registry, data_dir)


def remove_filter(name: str, data_dir: PathLike | None = None) -> None:
    """Remove a filter from the library.

    A user filter is deleted; a built-in filter is hidden (its name no longer resolves)
    in this user data folder. Nothing in site-packages is touched.

    Parameters
    ----------
    name : str
        The filter's name.
    data_dir : path-like, optional
        User data folder (default: pixedfit's, see :mod:`pixedfit._paths`).

    Raises
    ------
    UnknownFilterError
        If no filter of that name is available.
    """
    with _registry_lock(data_dir):
        registry = _load_registry(data_dir)
        if name not in _available_names(registry):
            raise _unknown(name, registry)
        removed = registry["filters"].pop(name, None) is not None
        removed = registry["aliases"].pop(name, None) is not None or removed
        if _builtin_target(name) is not None:
            registry["hidden"].append(name)
        elif not removed:  # pragma: no cover - defensive, available names come from these sets
            raise _unknown(name, registry)
        _save_registry(registry, data_dir)


def rename_filter(old: str, new: str, data_dir: PathLike | None = None) -> None:
    """Give a filter a new name; the old name stops resolving.

    Parameters
    ----------
    old : str
        The filter's current name.
    new : str
        Its new name.
    data_dir : path-like, optional
        User data folder (default: pixedfit's, see :mod:`pixedfit._paths`).

    Raises
    ------
    UnknownFilterError
        If ``old`` is not available.
    ValueError
        If ``new`` is not a valid name or already exists.
    """
    _validate_name(new, "new")
    with _registry_lock(data_dir):
        registry = _load_registry(data_dir)
        available = _available_names(registry)
        if old not in available:
            raise _unknown(old, registry)
        if new in available:
            raise ValueError(f"cannot rename {old!r} to {new!r}: a filter named {new!r} exists")
        if old in registry["filters"]:
            registry["filters"][new] = registry["filters"].pop(old)
        else:
            target = registry["aliases"].pop(old, None) or _builtin_target(old)
            registry["aliases"][new] = target
        if _builtin_target(old) is not None:
            registry["hidden"].append(old)
        if new in registry["hidden"]:
            registry["hidden"].remove(new)
        _save_registry(registry, data_dir)


@overload  # a str is also a Sequence[str]: this first overload takes it
def cwave_filters(  # type: ignore[overload-overlap]
    filters: str, data_dir: PathLike | None = None
) -> float: ...
@overload
def cwave_filters(
    filters: Sequence[str], data_dir: PathLike | None = None
) -> NDArray[np.float64]: ...
def cwave_filters(
    filters: str | Sequence[str], data_dir: PathLike | None = None
) -> float | NDArray[np.float64]:
    """Central (pivot) wavelengths of filters, in Å.

    Parameters
    ----------
    filters : str or sequence of str
        One name or a list of names.
    data_dir : path-like, optional
        User data folder.

    Returns
    -------
    float or ndarray
        A float for a single name, otherwise an array of shape (nbands,). The pivot
        wavelength of the curve (see :func:`pivot_wavelength`) unless a ``cwave`` was given
        to :func:`add_filter`.
    """
    registry = _load_registry(data_dir)
    values = []
    for name in _as_name_list(filters):
        res = _resolve(name, registry)
        if res.cwave is not None:
            pivot = res.cwave
        elif res.builtin is not None:
            pivot = _builtin_pivot(res.builtin)
        else:
            pivot = pivot_wavelength(res.wave, res.trans)
        values.append(pivot)
    if isinstance(filters, str):
        return values[0]
    return np.asarray(values, dtype=np.float64)


# --------------------------------------------------------------------------- photometry


@dataclass(frozen=True)
class FilterWeights:
    """Precomputed weights of a set of filters on one wavelength grid.

    Band fluxes of any number of spectra sampled on ``wave`` are then a single sparse
    product (one C++ call, OpenMP over spectra). Build with :func:`filter_weights`.

    Attributes
    ----------
    filters : tuple of str
        Filter names, in output order.
    wave : ndarray, shape (nwave,)
        Wavelength grid in Å.
    starts : ndarray of int64, shape (nbands,)
        First grid index carrying a weight, per band.
    offsets : ndarray of int64, shape (nbands + 1,)
        Band ``b`` uses ``weights[offsets[b]:offsets[b + 1]]``.
    weights : ndarray, shape (offsets[-1],)
        Concatenated weights; each band's weights sum to 1.
    missing : tuple of float
        Fraction of each filter's ∫ T λ dλ outside the grid (0 when fully covered; see
        :func:`filter_weights`).
    """

    filters: tuple[str, ...]
    wave: NDArray[np.float64]
    starts: NDArray[np.int64]
    offsets: NDArray[np.int64]
    weights: NDArray[np.float64]
    missing: tuple[float, ...] = ()

    @property
    def nbands(self) -> int:
        """Number of filters."""
        return len(self.filters)

    def apply(self, flux: ArrayLike, threads: int | None = None) -> NDArray[np.float64]:
        """Band fluxes of spectra on this grid.

        Parameters
        ----------
        flux : array_like, shape (nwave,) or (nspec, nwave)
            f_λ sampled on ``wave`` (any unit; the output has the same unit). NaN or
            infinite values inside a filter's range raise ValueError; values outside every
            filter's range do not enter the result and are not inspected.
        threads : int, optional
            OpenMP threads; None or <= 0 uses all cores. The result does not depend on it.

        Returns
        -------
        ndarray, shape (nbands,) or (nspec, nbands)
            Photon-weighted mean f_λ in each band.
        """
        arr = np.asarray(flux, dtype=np.float64)
        if arr.ndim not in (1, 2) or arr.shape[-1] != self.wave.size:
            raise ValueError(
                f"flux: expected shape ({self.wave.size},) or (nspec, {self.wave.size}) to "
                f"match the wavelength grid, got {arr.shape}"
            )
        out = _core.apply_band_weights(
            np.ascontiguousarray(arr.reshape(-1, self.wave.size)),
            self.starts,
            self.offsets,
            self.weights,
            threads=resolve_threads(threads),
        )
        # Any NaN or infinity inside a filter's range propagates to its band flux; values
        # outside every filter cannot change the result, so checking the output is exact
        # and far cheaper than scanning the whole input.
        bad = ~np.isfinite(out)
        if bad.any():
            spec, band = np.argwhere(bad)[0]
            raise ValueError(
                f"flux: NaN or infinite values inside the range of filter "
                f"{self.filters[band]!r} (spectrum {spec})"
            )
        return out[0] if arr.ndim == 1 else out


def _validate_grid(wave: ArrayLike) -> NDArray[np.float64]:
    lam = np.asarray(wave, dtype=np.float64)
    if lam.ndim != 1 or lam.size < 2:
        raise ValueError("wave: the wavelength grid must be a 1-D array of at least 2 values")
    if not np.all(np.isfinite(lam)):
        raise ValueError("wave: the wavelength grid contains NaN or infinite values")
    if np.any(np.diff(lam) <= 0):
        raise ValueError("wave: the wavelength grid must be strictly increasing")
    return lam


#: Default of ``min_coverage``: the share of a filter's ∫ T λ dλ a grid must cover.
MIN_FILTER_COVERAGE = 0.99
#: Missing shares above this are reported with a :class:`PartialCoverageWarning`.
REPORT_MISSING = 1e-3


class PartialCoverageWarning(UserWarning):
    """A band flux was computed from the part of a filter that the spectrum covers."""


def _covered_curve(name: str, lam: NDArray[np.float64], fw: NDArray[np.float64],
                   ft: NDArray[np.float64], min_coverage: float
                   ) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
    """The filter curve cut to the grid, and the missing share of its ∫ T λ dλ."""
    nz = fw[ft > 0]
    if nz.size == 0 or (nz[0] >= lam[0] and nz[-1] <= lam[-1]):
        return fw, ft, 0.0
    lo, hi = max(lam[0], fw[0]), min(lam[-1], fw[-1])
    inside = (fw > lo) & (fw < hi)
    w2 = np.concatenate(([lo], fw[inside], [hi])) if hi > lo else np.array([lo, lo])
    t2 = np.interp(w2, fw, ft, left=0.0, right=0.0)
    def photon_integral(w: NDArray[np.float64], t: NDArray[np.float64]) -> float:
        return float(np.sum(0.5 * np.diff(w) * ((t * w)[1:] + (t * w)[:-1])))

    part = photon_integral(w2, t2) if w2[-1] > w2[0] else 0.0
    missing = 1.0 - part / photon_integral(fw, ft)
    if missing > 1.0 - min_coverage:
        raise ValueError(
            f"filter {name!r}: the spectrum ({lam[0]:.6g}-{lam[-1]:.6g} Å) covers "
            f"{1.0 - missing:.2%} of its transmission-weighted integral ∫T λ dλ "
            f"({nz[0]:.6g}-{nz[-1]:.6g} Å), below min_coverage = {min_coverage:.2%}")
    return w2, t2, missing


def filter_weights(
    filters: str | Sequence[str], wave: ArrayLike, data_dir: PathLike | None = None,
    min_coverage: float = MIN_FILTER_COVERAGE,
) -> FilterWeights:
    """Precompute photometry weights of filters on a wavelength grid.

    Parameters
    ----------
    filters : str or sequence of str
        Filter names.
    wave : array_like, shape (nwave,)
        Wavelength grid in Å, strictly increasing. A filter whose curve reaches beyond
        it is accepted when the grid covers at least ``min_coverage`` of the filter's
        transmission-weighted integral ∫ T λ dλ: its band flux is then the photon-weighted
        mean f_λ over the covered part (the same as the full band for a spectrum that is
        flat across it; wrong by ≈ missing × the relative difference of the mean f_λ
        outside and inside otherwise), the missing share is kept in
        ``FilterWeights.missing`` and, above 0.1 %, reported with a
        :class:`PartialCoverageWarning`.
    data_dir : path-like, optional
        User data folder.
    min_coverage : float
        Share (0–1] of ∫ T λ dλ the grid must cover (default 0.99).

    Returns
    -------
    FilterWeights

    Raises
    ------
    ValueError
        Bad grid, or a filter whose covered share is below ``min_coverage`` (the name is
        given).
    UnknownFilterError
        Unknown filter name.
    """
    lam = _validate_grid(wave)
    if not 0.0 < min_coverage <= 1.0:
        raise ValueError(f"min_coverage: must be within (0, 1], got {min_coverage}")
    registry = _load_registry(data_dir)
    names = _as_name_list(filters)
    starts, chunks, missing = [], [], []
    for name in names:
        res = _resolve(name, registry)
        fw, ft, miss = _covered_curve(name, lam, res.wave, res.trans, min_coverage)
        missing.append(miss)
        if miss > REPORT_MISSING:
            warnings.warn(f"filter {name!r}: {miss:.2%} of its transmission-weighted "
                          f"integral lies outside the spectrum ({lam[0]:.6g}-{lam[-1]:.6g} "
                          f"Å); band flux from the covered part", PartialCoverageWarning,
                          stacklevel=3)
        try:
            start, w = _core.band_weights(lam, fw, ft)
        except ValueError as exc:
            raise ValueError(f"filter {name!r}: {exc}") from exc
        starts.append(start)
        chunks.append(w)
    offsets = np.zeros(len(names) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([c.size for c in chunks])
    lam = lam.copy()
    lam.setflags(write=False)
    return FilterWeights(
        filters=tuple(names),
        wave=lam,
        starts=np.asarray(starts, dtype=np.int64),
        offsets=offsets,
        weights=np.concatenate(chunks),
        missing=tuple(missing),
    )


def photometry(
    wave: ArrayLike,
    flux: ArrayLike,
    filters: str | Sequence[str],
    threads: int | None = None,
    data_dir: PathLike | None = None,
    min_coverage: float = MIN_FILTER_COVERAGE,
) -> NDArray[np.float64]:
    """Band fluxes of one or many spectra: photon-weighted mean f_λ in each filter.

    ``<f_λ> = ∫ f_λ T λ dλ / ∫ T λ dλ``, exact for spectra and curves that are linear
    between their samples (piXedfit's convention; the 1-Å Riemann sum of the original is
    replaced by exact integration).

    Parameters
    ----------
    wave : array_like, shape (nwave,)
        Wavelengths in Å, strictly increasing, covering at least ``min_coverage`` of
        every filter's ∫ T λ dλ (partial coverage: see :func:`filter_weights`).
    flux : array_like, shape (nwave,) or (nspec, nwave)
        f_λ (normally erg s⁻¹ cm⁻² Å⁻¹); the output has the same unit.
    filters : str or sequence of str
        Filter names.
    threads : int, optional
        OpenMP threads (None: all cores); the result does not depend on it.
    data_dir : path-like, optional
        User data folder.
    min_coverage : float
        Share of each filter's ∫ T λ dλ the spectrum must cover (default 0.99).

    Returns
    -------
    ndarray, shape (nbands,) or (nspec, nbands)
        Band fluxes; 1-D input gives 1-D output.
    """
    lam = _validate_grid(wave)
    arr = np.asarray(flux, dtype=np.float64)
    if arr.ndim not in (1, 2) or arr.shape[-1] != lam.size:
        raise ValueError(
            f"flux: expected shape ({lam.size},) or (nspec, {lam.size}) to match wave, "
            f"got {arr.shape}"
        )
    return filter_weights(filters, lam, data_dir=data_dir,
                          min_coverage=min_coverage).apply(arr, threads=threads)
