"""FITS reading helpers shared by the readers of the package's file layouts (data cubes,
binned cubes, IFS cubes): open a file completely or fail with its name, find extensions by
name, read filter names and the celestial WCS from headers.

Package-internal (used by :mod:`pixedfit.cubes`, :mod:`pixedfit.binning` and
:mod:`pixedfit.ifs`); not part of the public API.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

__all__ = ["filters_from_header", "find_data", "find_optional", "hdu_names", "open_fits",
           "positive_or_none", "read_wcs", "wcs_from_header"]

PathLike = str | os.PathLike[str]


def wcs_from_header(header: fits.Header) -> WCS | None:
    """The celestial 2-D WCS of ``header``, or None when it has none or a malformed one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header, naxis=2)
        except Exception:  # malformed WCS keys: treat as absent
            return None
    if not wcs.has_celestial:
        return None
    return wcs.celestial


def open_fits(path: PathLike) -> fits.HDUList:
    """Open ``path`` and read every HDU now (a truncated file fails here, naming ``path``);
    FileNotFoundError or ValueError otherwise."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        hdul = fits.open(path, memmap=False)
    except (OSError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable FITS file ({exc})") from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # astropy warns on truncated data: make it fatal
            for h in hdul:
                _ = h.data  # force reading: a truncated file raises here, not later
    except (OSError, TypeError, ValueError, Warning) as exc:
        hdul.close()
        raise ValueError(f"{path}: not a readable FITS file ({exc})") from exc
    return hdul


def hdu_names(hdul: fits.HDUList) -> list[str]:
    """Upper-case EXTNAME of every HDU (``PRIMARY`` for an unnamed first one)."""
    return [str(h.header.get("EXTNAME", "PRIMARY" if i == 0 else "")).upper()
            for i, h in enumerate(hdul)]


def find_optional(hdul: fits.HDUList, names: Sequence[str]) -> Any:
    """Data of the first extension in ``names`` that holds data, or None."""
    present = hdu_names(hdul)
    for name in names:
        if name in present:
            data = hdul[present.index(name)].data
            if data is not None:
                return data
    return None


def find_data(hdul: fits.HDUList, names: Sequence[str], path: PathLike,
               primary_fallback: bool = False) -> Any:
    """Data of the first extension in ``names`` (or of a 3-D primary HDU with
    ``primary_fallback``); ValueError naming ``path`` when none is found."""
    data = find_optional(hdul, names)
    if data is None and primary_fallback and hdul[0].data is not None and hdul[0].data.ndim == 3:
        data = hdul[0].data  # piXedfit spectrophotometric files: PHOTO_FLUX became PRIMARY
    if data is None:
        raise ValueError(f"{path}: none of the extensions {list(names)} found")
    return data


def filters_from_header(header: fits.Header, nbands: int, path: PathLike) -> list[str]:
    """Filter names FIL0..FIL<n-1> of ``header``, checked against NFILTERS and ``nbands``."""
    n = header.get("NFILTERS", nbands)
    if int(n) != nbands:
        raise ValueError(f"{path}: NFILTERS={n} but the flux cube has {nbands} bands")
    try:
        return [str(header[f"FIL{i}"]) for i in range(nbands)]
    except KeyError as exc:
        raise ValueError(f"{path}: filter name keyword {exc} missing from the header") from exc


def read_wcs(hdul: fits.HDUList) -> WCS | None:
    """Celestial WCS of the first of STAMP_IMAGE, FLUX, PHOTO_FLUX that has one."""
    names = hdu_names(hdul)
    for name in ("STAMP_IMAGE", "FLUX", "PHOTO_FLUX"):
        if name in names:
            wcs = wcs_from_header(hdul[names.index(name)].header)
            if wcs is not None:
                return wcs
    return None


def positive_or_none(value: Any) -> float | None:
    """``value`` as a float if finite and > 0, else None."""
    if value is None:
        return None
    v = float(value)
    return v if np.isfinite(v) and v > 0 else None
