"""Fit results: the :class:`FitResult` object, its files, and a crash-safe result store.

Files
-----
Our layout (HDF5, ``schema_version`` 1, ``kind = "pixedfit-fit-result"``)::

    attrs   method, names (JSON), filters (JSON), z (NaN if free), free_z, chi2_min,
            ln_evidence, n_used, n_bands_used, config (JSON), created_by
    stats   float64[5, nstat]  rows mean, std, p16, p50, p84
    best    float64[nstat]     minimum-chi2 model (mass-scaled values normalised)
    obs     float64[2, nband]  flux, flux_err as fitted (erg s⁻¹ cm⁻² Å⁻¹)
    bfit_photo    float64[nband]   best-fit model photometry
    [bfit_spec]   float64[2, nwave] observed-frame λ (Å), f_λ of the best fit
    [z_grid, z_posterior]  float64[nz] for free-redshift fits

The original's RDSPS FITS layout (spec §2.3: ``PRIMARY`` header, ``FIT_PARAMS`` with rows
mean/std, ``MINCHI2_PARAMS``, ``OBS_PHOTO``, ``BFIT_PHOTO``, ``BFIT_MOD_SPEC``) and MCMC
layout (``FIT_PARAMS`` rows p16/p50/p84) are written by :meth:`FitResult.write_pixedfit` and
read by :meth:`FitResult.read_pixedfit`.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from astropy.io import fits
from astropy.table import Table
from numpy.typing import NDArray

from .. import __version__
from .._paths import atomic_path

__all__ = ["SCHEMA_VERSION", "FitResult", "ResultStore"]

PathLike = str | os.PathLike[str]
SCHEMA_VERSION = 1
_KIND = "pixedfit-fit-result"
_STATS = ("mean", "std", "p16", "p50", "p84")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return repr(value)


@dataclass
class FitResult:
    """Posterior summary of one SED fit.

    Attributes
    ----------
    method : str
        ``"rdsps"`` or ``"mcmc"``.
    names : tuple of str
        Statistic names: model parameters, derived quantities (log_sfr, log_mw_age, ...) and
        ``z`` for free-redshift fits. Mass-scaled quantities are for the fitted mass.
    mean, std, p16, p50, p84 : ndarray, shape (nstat,)
        Posterior statistics in the stored units (dex for log quantities).
    best : ndarray, shape (nstat,)
        The minimum-chi2 model.
    filters : tuple of str
        Bands fitted.
    obs_flux, obs_flux_err : ndarray, shape (nband,)
        Observations as fitted (f_λ, erg s⁻¹ cm⁻² Å⁻¹; errors including any floor).
    bfit_photo : ndarray, shape (nband,)
        Best-fit model photometry.
    z : float or None
        Fixed redshift, or None for a free-redshift fit.
    chi2_min, ln_evidence : float
    n_used, n_bands_used : int
        Models (pairs) in the posterior; bands in the likelihood.
    config : dict
        Fit settings and the model configuration.
    bfit_wave, bfit_spec : ndarray or None
        Best-fit observed-frame spectrum (Å, f_λ).
    z_grid, z_posterior : ndarray or None
        Redshift posterior of free-redshift fits.
    """

    method: str
    names: tuple[str, ...]
    mean: NDArray[np.float64]
    std: NDArray[np.float64]
    p16: NDArray[np.float64]
    p50: NDArray[np.float64]
    p84: NDArray[np.float64]
    best: NDArray[np.float64]
    filters: tuple[str, ...]
    obs_flux: NDArray[np.float64]
    obs_flux_err: NDArray[np.float64]
    bfit_photo: NDArray[np.float64]
    z: float | None = None
    chi2_min: float = math.nan
    ln_evidence: float = math.nan
    n_used: int = 0
    n_bands_used: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    bfit_wave: NDArray[np.float64] | None = None
    bfit_spec: NDArray[np.float64] | None = None
    z_grid: NDArray[np.float64] | None = None
    z_posterior: NDArray[np.float64] | None = None

    @property
    def summary(self) -> dict[str, dict[str, float]]:
        """Parameter → {mean, std, p16, p50, p84}."""
        return {
            name: {stat: float(getattr(self, stat)[k]) for stat in _STATS}
            for k, name in enumerate(self.names)
        }

    @property
    def ok(self) -> bool:
        """True when at least one model entered the posterior."""
        return self.n_used > 0

    def bestfit_params(self) -> dict[str, float]:
        """Name → value of the minimum-chi2 model."""
        return {name: float(v) for name, v in zip(self.names, self.best, strict=True)}

    # ------------------------------------------------------------------ our layout
    def write(self, path: PathLike) -> None:
        """Write our HDF5 layout (atomically)."""
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            f.attrs["schema_version"] = SCHEMA_VERSION
            f.attrs["kind"] = _KIND
            f.attrs["method"] = self.method
            f.attrs["names"] = json.dumps(list(self.names))
            f.attrs["filters"] = json.dumps(list(self.filters))
            f.attrs["z"] = math.nan if self.z is None else float(self.z)
            f.attrs["free_z"] = self.z is None
            f.attrs["chi2_min"] = float(self.chi2_min)
            f.attrs["ln_evidence"] = float(self.ln_evidence)
            f.attrs["n_used"] = int(self.n_used)
            f.attrs["n_bands_used"] = int(self.n_bands_used)
            f.attrs["config"] = json.dumps(self.config, default=_json_default)
            f.attrs["created_by"] = f"pixedfit {__version__}"
            f["stats"] = np.vstack([getattr(self, s) for s in _STATS])
            f["best"] = self.best
            f["obs"] = np.vstack([self.obs_flux, self.obs_flux_err])
            f["bfit_photo"] = self.bfit_photo
            if self.bfit_spec is not None:
                f["bfit_spec"] = np.vstack([self.bfit_wave, self.bfit_spec])
            if self.z_grid is not None:
                f["z_grid"] = self.z_grid
                f["z_posterior"] = self.z_posterior

    @classmethod
    def read(cls, path: PathLike) -> FitResult:
        """Read our HDF5 layout (use :meth:`read_any` for either layout)."""
        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            raise ValueError(f"{path}: not a readable HDF5 file ({exc})") from exc
        with f:
            if f.attrs.get("kind") != _KIND:
                raise ValueError(f"{path} is not a pixedfit fit result")
            if int(f.attrs["schema_version"]) > SCHEMA_VERSION:
                raise ValueError(f"{path}: written by a newer pixedfit (schema "
                                 f"{int(f.attrs['schema_version'])})")
            try:
                stats = f["stats"][()]
                spec = f["bfit_spec"][()] if "bfit_spec" in f else None
                obs = f["obs"][()]
                z = float(f.attrs["z"])
                return cls(
                    method=str(f.attrs["method"]),
                    names=tuple(json.loads(f.attrs["names"])),
                    **{s: stats[i] for i, s in enumerate(_STATS)},
                    best=f["best"][()],
                    filters=tuple(json.loads(f.attrs["filters"])),
                    obs_flux=obs[0],
                    obs_flux_err=obs[1],
                    bfit_photo=f["bfit_photo"][()],
                    z=None if bool(f.attrs["free_z"]) else z,
                    chi2_min=float(f.attrs["chi2_min"]),
                    ln_evidence=float(f.attrs["ln_evidence"]),
                    n_used=int(f.attrs["n_used"]),
                    n_bands_used=int(f.attrs["n_bands_used"]),
                    config=json.loads(f.attrs["config"]),
                    bfit_wave=None if spec is None else spec[0],
                    bfit_spec=None if spec is None else spec[1],
                    z_grid=f["z_grid"][()] if "z_grid" in f else None,
                    z_posterior=f["z_posterior"][()] if "z_posterior" in f else None,
                )
            except (KeyError, OSError) as exc:
                raise ValueError(f"{path}: incomplete fit-result file ({exc})") from exc

    @classmethod
    def read_any(cls, path: PathLike) -> FitResult:
        """Read either our HDF5 layout or the original's FITS layout."""
        with open(path, "rb") as fh:
            magic = fh.read(8)
        if magic.startswith(b"SIMPLE"):
            return cls.read_pixedfit(path)
        return cls.read(path)

    # ------------------------------------------------------------------ original layout
    def write_pixedfit(self, path: PathLike) -> None:
        """Write the original piXedfit fit-result FITS layout (spec §2.3 / §2.6)."""
        cfg = self.config.get("model", {})
        hdr = fits.Header()

        def put(key: str, value: Any) -> None:
            card_key = key if len(key) <= 8 and re.fullmatch(r"[A-Z0-9_-]+", key) else (
                f"HIERARCH {key}")
            hdr[card_key] = value

        put("IMF", 2)
        put("NPARAMS", len(self.names))
        put("SFH_FORM", int(cfg.get("sfh_form", -1) if cfg.get("sfh_form") is not None else -1))
        put("DUST_LAW", int(cfg.get("dust_law", -1) if cfg.get("dust_law") is not None else -1))
        put("NFILTERS", len(self.filters))
        put("duste_stat", int(bool(cfg.get("duste_switch", False))))
        put("add_neb_emission", int(bool(cfg.get("add_neb_emission", False))))
        put("ADD_AGN", int(bool(cfg.get("add_agn", False))))
        put("add_igm_absorption", int(bool(cfg.get("add_igm_absorption", False))))
        put("likelihood_form", str(self.config.get("likelihood", "gauss")))
        put("DOF", float(self.config.get("dof", 3.0)))
        put("IGM_TYPE", int(cfg.get("igm_type", 0) or 0))
        for i, name in enumerate(self.filters):
            put(f"FIL{i}", name)
        if self.z is None:
            put("FREE_Z", 1)
        else:
            put("GAL_Z", float(self.z))
            put("FREE_Z", 0)
        put("COSMO", str(self.config.get("cosmo", "flat_LCDM")))
        put("H0", float(self.config.get("H0", 70.0)))
        put("OM0", float(self.config.get("Om0", 0.3)))
        put("NROWS", 0)
        nb = max(self.n_bands_used, 1)
        put("redcd_chi2", float(self.chi2_min) / nb if np.isfinite(self.chi2_min) else -99.0)
        put("perc_chi2", float(self.config.get("perc_chi2", 100.0)))
        for i, name in enumerate(self.names):
            put(f"PARAM{i}", name)
        put("fitmethod", self.method)
        put("storesamp", 0)
        put("SPECPHOT", 0)
        put("smooth_velocity", 1)
        put("sigma_smooth", 0.0)
        put("smooth_lsf", 0)
        primary = fits.PrimaryHDU(header=hdr)
        if self.method == "mcmc":
            rows = ["p16", "p50", "p84"]
            values = [self.p16, self.p50, self.p84]
        else:
            rows = ["mean", "std"]
            values = [self.mean, self.std]
        cols = {"rows": rows}
        cols.update({name: [float(v[k]) for v in values] for k, name in enumerate(self.names)})
        hdus = [primary, fits.BinTableHDU(Table(cols), name="FIT_PARAMS")]
        hdus.append(fits.BinTableHDU(
            Table({name: [float(self.best[k])] for k, name in enumerate(self.names)}),
            name="MINCHI2_PARAMS"))
        hdus.append(fits.BinTableHDU(Table({"flux": self.obs_flux, "flux_err": self.obs_flux_err}),
                                     name="OBS_PHOTO"))
        from ..filters import cwave_filters

        hdus.append(fits.BinTableHDU(
            Table({"wave": cwave_filters(list(self.filters)), "flux": self.bfit_photo}),
            name="BFIT_PHOTO"))
        if self.bfit_spec is not None:
            hdus.append(fits.BinTableHDU(Table({"wave": self.bfit_wave, "flux": self.bfit_spec}),
                                         name="BFIT_MOD_SPEC"))
        with atomic_path(path) as tmp:
            fits.HDUList(hdus).writeto(tmp, overwrite=True)

    @classmethod
    def read_pixedfit(cls, path: PathLike) -> FitResult:
        """Read a fit-result FITS file in the original layout (RDSPS or MCMC)."""
        try:
            hdul = fits.open(path, memmap=False)
        except (OSError, TypeError) as exc:
            raise ValueError(f"{path}: not a readable FITS file ({exc})") from exc
        with hdul:
            try:
                hdr = hdul[0].header
                method = str(hdr.get("fitmethod", "rdsps"))
                table = Table(hdul["FIT_PARAMS"].data)
                names = tuple(table.colnames[1:])
                rows = [r.strip() if isinstance(r, str) else r.decode().strip()
                        for r in table[table.colnames[0]]]
                values = {row: np.array([float(table[n][i]) for n in names])
                          for i, row in enumerate(rows)}
                nan = np.full(len(names), np.nan)
                best = nan.copy()
                if "MINCHI2_PARAMS" in hdul:
                    mt = Table(hdul["MINCHI2_PARAMS"].data)
                    best = np.array([float(mt[n][0]) if n in mt.colnames else np.nan
                                     for n in names])
                nfil = int(hdr["NFILTERS"])
                filters = tuple(str(hdr[f"FIL{i}"]) for i in range(nfil))
                obs = Table(hdul["OBS_PHOTO"].data)
                bfit = Table(hdul["BFIT_PHOTO"].data)
                bflux = np.asarray(bfit["flux"] if "flux" in bfit.colnames else bfit["p50"],
                                   dtype=np.float64)
                wave = spec = None
                if "BFIT_MOD_SPEC" in hdul:
                    st = Table(hdul["BFIT_MOD_SPEC"].data)
                    wave = np.asarray(st["wave"], dtype=np.float64)
                    key = "flux" if "flux" in st.colnames else "tot_p50"
                    spec = np.asarray(st[key], dtype=np.float64)
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"{path}: not a piXedfit fit-result file ({exc})") from exc
            free_z = int(hdr.get("FREE_Z", 0)) == 1
            redcd = float(hdr.get("redcd_chi2", np.nan))
            return cls(
                method=method,
                names=names,
                mean=values.get("mean", nan),
                std=values.get("std", nan),
                p16=values.get("p16", nan),
                p50=values.get("p50", nan),
                p84=values.get("p84", nan),
                best=best,
                filters=filters,
                obs_flux=np.asarray(obs["flux"], dtype=np.float64),
                obs_flux_err=np.asarray(obs["flux_err"], dtype=np.float64),
                bfit_photo=bflux,
                z=None if free_z else float(hdr.get("GAL_Z", np.nan)),
                chi2_min=redcd * nfil if np.isfinite(redcd) and redcd > -99 else np.nan,
                n_used=1,
                n_bands_used=nfil,
                config={"source": "piXedfit layout", "likelihood": hdr.get("likelihood_form")},
                bfit_wave=wave,
                bfit_spec=spec,
            )


class ResultStore:
    """A folder of per-SED result files that survives crashes.

    Every finished fit is written atomically to ``<folder>/<key>.h5``; :meth:`has` tells a
    rerun which keys are done. Keys are strings of letters, digits and ``_ . -``.

    Parameters
    ----------
    folder : path-like
        Created if needed.
    """

    def __init__(self, folder: PathLike):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def _check_key(key: str) -> str:
        key = str(key)
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", key) or key.startswith("."):
            raise ValueError(f"result keys are letters, digits and _ . - (got {key!r})")
        return key

    def path(self, key: str) -> Path:
        """File of ``key``."""
        return self.folder / f"{self._check_key(key)}.h5"

    def has(self, key: str) -> bool:
        """True when a complete result for ``key`` exists."""
        return self.path(key).is_file()

    def save(self, key: str, result: FitResult) -> Path:
        """Write ``result`` atomically; returns its path."""
        path = self.path(key)
        result.write(path)
        return path

    def load(self, key: str) -> FitResult:
        """Read the result of ``key``."""
        return FitResult.read(self.path(key))

    def keys(self) -> list[str]:
        """Keys with a stored result, sorted."""
        return sorted(p.stem for p in self.folder.glob("*.h5") if not p.name.startswith("."))

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def summary_table(self, keys: list[str] | None = None) -> Table:
        """One row per stored result: key, then <param>_<stat> columns."""
        rows: list[Mapping[str, Any]] = []
        for key in keys if keys is not None else self.keys():
            res = self.load(key)
            row: dict[str, Any] = {"id": key, "chi2_min": res.chi2_min, "n_used": res.n_used}
            for name, stats in res.summary.items():
                for stat, value in stats.items():
                    row[f"{name}_{stat}"] = value
            rows.append(row)
        return Table(rows=rows) if rows else Table()
