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
    [samples]     float64[nsamp, nstat]  posterior samples (MCMC), columns ``names``
    [photo_pct]   float64[3, nband]      p16/p50/p84 of the model photometry (MCMC)
    [sed/wave, sed/<component>]  float64[nwave], float64[3, nwave]: observed-frame λ (Å)
                  and p16/p50/p84 of the model f_λ, components total, stellar, nebular,
                  dust, agn (MCMC)
    [spectrum/<key>]  fitted spectrum: wave, flux, flux_err (f_λ), used (uint8: pixel in
                  the likelihood), model (best model after the correction), factor (the
                  multiplicative Legendre correction of the best model), [factor_mean,
                  factor_std] (MCMC: posterior mean and std of the correction)
    attrs diagnostics (JSON): MCMC acceptance fraction, autocorrelation times, settings

The original's RDSPS FITS layout (spec §2.3: ``PRIMARY`` header, [``SAMPLERS``],
``FIT_PARAMS`` with rows mean/std, ``MINCHI2_PARAMS``, ``OBS_PHOTO``, ``BFIT_PHOTO``,
``BFIT_MOD_SPEC``) and MCMC layout (spec §2.6: ``PRIMARY``, [``SAMPLERS``], ``FIT_PARAMS``
rows p16/p50/p84, ``OBS_PHOTO``, ``BFIT_PHOTO`` with columns wave, p16, p50, p84,
``BFIT_MOD_SPEC`` with wave, tot_p16 … and stellar_, nebe_, duste_, agn_ percentiles) are
written by :meth:`FitResult.write_pixedfit` and read by :meth:`FitResult.read_pixedfit`.
``SAMPLERS`` (written when the result has samples, ``storesamp=1``) holds ``id`` and one
column per name; the original's RDSPS table (every model of the library) also has ``chi2``
and ``lnprob``: the reader turns it into equal-weight samples of the posterior the
original's statistics used (systematic resampling with the weights of
:func:`original_rdsps_weights`), so the writer, whose samples are equal-weight, writes
neither column. pixedfit appends ``MINCHI2_PARAMS`` to MCMC files and, for
spectral fits, ``OBS_SPEC`` and ``BFIT_SPEC`` (extensions the original's readers ignore).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import math
import os
import re
import shutil
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
from astropy.io import fits
from astropy.table import Table
from numpy.typing import NDArray

from .. import __version__
from .._paths import FileLock, atomic_path, hdf5_atomic, open_hdf5, remove_stale_temporaries
from ..filters import cwave_filters

__all__ = [
    "SCHEMA_VERSION",
    "FitResult",
    "FitResults",
    "ResultStore",
    "StaleStoreError",
    "StoreWarning",
    "input_digest",
    "library_digest",
]

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


@dataclass(kw_only=True)
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
    samples : ndarray, shape (nsamp, nstat), or None
        Posterior samples (MCMC), columns ``names``.
    photo_pct : ndarray, shape (3, nband), or None
        p16/p50/p84 of the model photometry over the posterior (MCMC).
    sed_wave : ndarray, shape (nwave,), or None
        Observed-frame wavelengths (Å) of ``sed_pct``.
    sed_pct : dict of str to ndarray (3, nwave), or None
        p16/p50/p84 of the model f_λ: ``total`` and the components ``stellar``,
        ``nebular``, ``dust``, ``agn`` present in the model (MCMC).
    spectrum : dict of str to ndarray, or None
        Spectral fits: the fitted pixels ``wave``, ``flux``, ``flux_err``, ``used`` (in the
        likelihood after line masking and clipping), ``model`` (best model times its
        correction) and ``factor`` (the multiplicative correction of that model); MCMC fits
        add ``factor_mean`` and ``factor_std``, the posterior mean and standard deviation of
        the correction per pixel (the estimate of the calibration error).
    diagnostics : dict
        Sampler diagnostics, e.g. MCMC: ``acceptance`` (mean), ``autocorr`` (per sampled
        parameter), ``sampled`` (their names), ``nwalkers``, ``nsteps``, ``nsteps_cut``,
        ``thin``, ``seed``, ``warnings``; adaptive RDSPS: ``library_ess``, ``history``
        (ESS after each round), ``box``, ``warnings``.
    ess : float
        Effective sample size of the posterior (adaptive RDSPS: Kish's ESS of the
        importance weights; library-only RDSPS: that of the library weights; MCMC: samples
        after burn-in divided by the longest integrated autocorrelation time).
    n_model_evaluations : int
        Forward-model evaluations made for this fit (a library pass evaluates none: its
        models were computed once for all fits).
    rounds : int
        Adaptive rounds (RDSPS) or chain segments (MCMC) run.
    converged : bool or None
        Whether the sampler reached its convergence target (None: not recorded, e.g. files
        from older versions or the original's layout).
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
    samples: NDArray[np.float64] | None = None
    photo_pct: NDArray[np.float64] | None = None
    sed_wave: NDArray[np.float64] | None = None
    sed_pct: dict[str, NDArray[np.float64]] | None = None
    spectrum: dict[str, NDArray] | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)
    ess: float = math.nan
    n_model_evaluations: int = 0
    rounds: int = 0
    converged: bool | None = None

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
        with hdf5_atomic(path) as f:
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
            f.attrs["ess"] = float(self.ess)
            f.attrs["n_model_evaluations"] = int(self.n_model_evaluations)
            f.attrs["rounds"] = int(self.rounds)
            f.attrs["converged"] = -1 if self.converged is None else int(bool(self.converged))
            f.attrs["config"] = json.dumps(self.config, default=_json_default)
            f.attrs["created_by"] = f"pixedfit {__version__}"
            f["stats"] = np.vstack([getattr(self, s) for s in _STATS])
            f["best"] = self.best
            f["obs"] = np.vstack([self.obs_flux, self.obs_flux_err])
            f["bfit_photo"] = self.bfit_photo
            if self.bfit_spec is not None:
                # a best-fit spectrum comes with its wavelengths
                f["bfit_spec"] = np.vstack([cast("NDArray[np.float64]", self.bfit_wave),
                                            self.bfit_spec])
            if self.z_grid is not None:
                f["z_grid"] = self.z_grid
                f["z_posterior"] = self.z_posterior
            f.attrs["diagnostics"] = json.dumps(self.diagnostics, default=_json_default)
            if self.samples is not None:
                f.create_dataset("samples", data=self.samples, compression="gzip")
            if self.photo_pct is not None:
                f["photo_pct"] = self.photo_pct
            if self.sed_pct is not None:
                g = f.create_group("sed")
                g["wave"] = self.sed_wave
                for key, value in self.sed_pct.items():
                    g.create_dataset(key, data=value, compression="gzip")
            if self.spectrum is not None:
                g = f.create_group("spectrum")
                for key, value in self.spectrum.items():
                    arr = np.asarray(value)
                    g[key] = arr.astype(np.uint8) if arr.dtype == bool else arr

    @classmethod
    def read(cls, path: PathLike) -> FitResult:
        """Read our HDF5 layout (use :meth:`read_any` for either layout)."""
        with open_hdf5(path) as f:
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
                    samples=f["samples"][()] if "samples" in f else None,
                    photo_pct=f["photo_pct"][()] if "photo_pct" in f else None,
                    sed_wave=f["sed/wave"][()] if "sed" in f else None,
                    sed_pct={k: f["sed"][k][()] for k in f["sed"] if k != "wave"}
                    if "sed" in f else None,
                    spectrum=_read_spectrum(f["spectrum"]) if "spectrum" in f else None,
                    diagnostics=json.loads(f.attrs.get("diagnostics", "{}")),
                    ess=float(f.attrs.get("ess", math.nan)),
                    n_model_evaluations=int(f.attrs.get("n_model_evaluations", 0)),
                    rounds=int(f.attrs.get("rounds", 0)),
                    converged=_converged(f.attrs.get("converged", -1)),
                )
            except (KeyError, OSError) as exc:
                raise ValueError(f"{path}: incomplete fit-result file ({exc})") from exc

    @classmethod
    def read_any(cls, path: PathLike) -> FitResult:
        """Read either our HDF5 layout or the original's FITS layout (also gzip-compressed,
        ``.fits.gz``, which astropy opens)."""
        with open(path, "rb") as fh:
            magic = fh.read(8)
        if magic.startswith((b"SIMPLE", b"\x1f\x8b")):
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

        put("IMF", int(cfg.get("imf_type", 2)))  # our SSP grids (BC03): Kroupa, FSPS code 2
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
        put("COSMO", _cosmo_card(self.config.get("cosmo")))
        put("H0", float(self.config.get("H0", 70.0)))
        put("OM0", float(self.config.get("Om0", 0.3)))
        put("NROWS", 0)
        nb = max(self.n_bands_used, 1)
        put("redcd_chi2", float(self.chi2_min) / nb if np.isfinite(self.chi2_min) else -99.0)
        put("perc_chi2", float(self.config.get("perc_chi2", 100.0)))
        for i, name in enumerate(self.names):
            put(f"PARAM{i}", name)
        if self.method == "mcmc":
            fixed = self.diagnostics.get("fixed", {}) or {}
            put("NFIXPAR", len(fixed))
            for i, (name, value) in enumerate(fixed.items()):
                put(f"FPAR{i}", name)
                put(f"FPAR{i}_val", float(value))
            put("free_gas_logz", int(cfg.get("free_gas_logz", 0)))
        put("fitmethod", self.method)
        put("ESS", float(self.ess) if math.isfinite(self.ess) else -99.0)
        put("NMODEVAL", int(self.n_model_evaluations))
        put("NROUNDS", int(self.rounds))
        put("CONVERGD", -1 if self.converged is None else int(bool(self.converged)))
        put("storesamp", int(self.samples is not None))
        put("SPECPHOT", int(self.spectrum is not None and len(self.filters) > 0))
        put("smooth_velocity", cfg.get("smooth_velocity", 1))
        put("sigma_smooth", float(cfg.get("sigma_smooth", 0.0)))
        put("smooth_lsf", cfg.get("smooth_lsf", 0))
        if "name_file_lsf" in cfg:
            put("name_file_lsf", str(cfg["name_file_lsf"]))
        primary = fits.PrimaryHDU(header=hdr)
        mcmc = self.method == "mcmc"
        if mcmc:
            rows = ["p16", "p50", "p84"]
            values = [self.p16, self.p50, self.p84]
        else:
            rows = ["mean", "std"]
            values = [self.mean, self.std]
        cols: dict[str, Any] = {"rows": rows}
        cols.update({name: [float(v[k]) for v in values] for k, name in enumerate(self.names)})
        hdus = [primary]
        if self.samples is not None:  # storesamp=1 (RDSPS too); plot_corner reads HDU 1
            samp = {"id": np.arange(1, self.samples.shape[0] + 1)}
            samp.update({name: self.samples[:, k] for k, name in enumerate(self.names)})
            hdus.append(fits.BinTableHDU(Table(samp), name="SAMPLERS"))
        hdus.append(fits.BinTableHDU(Table(cols), name="FIT_PARAMS"))
        minchi2 = fits.BinTableHDU(
            Table({name: [float(self.best[k])] for k, name in enumerate(self.names)}),
            name="MINCHI2_PARAMS")
        if not mcmc:
            hdus.append(minchi2)
        hdus.append(fits.BinTableHDU(Table({"flux": self.obs_flux, "flux_err": self.obs_flux_err}),
                                     name="OBS_PHOTO"))
        cwave = cwave_filters(list(self.filters)) if self.filters else np.zeros(0)
        if mcmc and self.photo_pct is not None:
            photo = {"wave": cwave, "p16": self.photo_pct[0], "p50": self.photo_pct[1],
                     "p84": self.photo_pct[2], "flux": self.bfit_photo}
        else:
            photo = {"wave": cwave, "flux": self.bfit_photo}
        hdus.append(fits.BinTableHDU(Table(photo), name="BFIT_PHOTO"))
        if mcmc and self.sed_pct is not None:
            spec = {"wave": self.sed_wave}
            for comp, arr in self.sed_pct.items():
                for i, stat in enumerate(("p16", "p50", "p84")):
                    spec[f"{_COMP_FITS[comp]}_{stat}"] = arr[i]
            hdus.append(fits.BinTableHDU(Table(spec), name="BFIT_MOD_SPEC"))
        elif self.bfit_spec is not None:
            hdus.append(fits.BinTableHDU(Table({"wave": self.bfit_wave, "flux": self.bfit_spec}),
                                         name="BFIT_MOD_SPEC"))
        if mcmc:
            hdus.append(minchi2)
        if self.spectrum is not None:
            sp = self.spectrum
            hdus.append(fits.BinTableHDU(Table({
                "wave": sp["wave"], "flux": sp["flux"], "flux_err": sp["flux_err"],
                "used": np.asarray(sp["used"]).astype(np.uint8)}), name="OBS_SPEC"))
            cols = {"wave": sp["wave"], "flux": sp["model"], "factor": sp["factor"]}
            cols.update({k: sp[k] for k in _SPEC_EXTRA if k in sp})
            hdus.append(fits.BinTableHDU(Table(cols), name="BFIT_SPEC"))
        with atomic_path(path) as tmp:
            fits.HDUList(hdus).writeto(tmp, overwrite=True)

    @classmethod
    def read_pixedfit(cls, path: PathLike) -> FitResult:
        """Read a fit-result FITS file in the original layout (RDSPS or MCMC).

        The primary header's model cards (IMF, SFH_FORM, DUST_LAW, duste_stat, ...) go to
        ``config["model"]``, its settings (COSMO, H0, OM0, DOF, perc_chi2) to ``config``
        and an MCMC file's fixed parameters (NFIXPAR, FPARn, FPARn_val) to
        ``diagnostics["fixed"]``, where :meth:`write_pixedfit` finds them. The original's
        RDSPS ``SAMPLERS`` table (every library model with its ``lnprob``) becomes
        equal-weight posterior samples (:func:`original_rdsps_weights`), and ``ess`` the
        Kish effective sample size of those weights.
        """
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
                photo_pct = None
                if "p50" in bfit.colnames:
                    photo_pct = np.array([np.asarray(bfit[c], dtype=np.float64)
                                          for c in ("p16", "p50", "p84")])
                wave = spec = sed_pct = None
                if "BFIT_MOD_SPEC" in hdul:
                    st = Table(hdul["BFIT_MOD_SPEC"].data)
                    wave = np.asarray(st["wave"], dtype=np.float64)
                    key = "flux" if "flux" in st.colnames else "tot_p50"
                    spec = np.asarray(st[key], dtype=np.float64)
                    if "tot_p50" in st.colnames:
                        sed_pct = {comp: np.array([np.asarray(st[f"{short}_{s}"], dtype=float)
                                                   for s in ("p16", "p50", "p84")])
                                   for comp, short in _COMP_FITS.items()
                                   if f"{short}_p50" in st.colnames}
                samples = None
                library_ess = math.nan
                if "SAMPLERS" in hdul:
                    sm = Table(hdul["SAMPLERS"].data)
                    samples = np.column_stack([
                        np.asarray(sm[n], dtype=np.float64) if n in sm.colnames
                        else np.full(len(sm), np.nan) for n in names])
                    weights = (original_rdsps_weights(sm, float(hdr.get("perc_chi2", 100.0)))
                               if method == "rdsps" else None)
                    if weights is not None:
                        # the original's RDSPS table is the library with each model's
                        # posterior: equal-weight samples of it, as FitResult.samples are,
                        # and the Kish ESS of its weights (as for a library-only RDSPS fit)
                        samples = samples[systematic_indices(weights, len(sm), 0.5)]
                        library_ess = float(1.0 / np.sum(weights**2))
                spectrum = None
                if "OBS_SPEC" in hdul and "BFIT_SPEC" in hdul:
                    os_, bs = Table(hdul["OBS_SPEC"].data), Table(hdul["BFIT_SPEC"].data)
                    spectrum = {
                        "wave": np.asarray(os_["wave"], dtype=np.float64),
                        "flux": np.asarray(os_["flux"], dtype=np.float64),
                        "flux_err": np.asarray(os_["flux_err"], dtype=np.float64),
                        "used": np.asarray(os_["used"]).astype(bool),
                        "model": np.asarray(bs["flux"], dtype=np.float64),
                        "factor": np.asarray(bs["factor"], dtype=np.float64)}
                    spectrum.update({k: np.asarray(bs[k], dtype=np.float64)
                                     for k in _SPEC_EXTRA if k in bs.colnames})
                settings = _header_config(hdr)
                diagnostics = _header_fixed(hdr)
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
                config={"source": "piXedfit layout", "likelihood": hdr.get("likelihood_form"),
                        **settings},
                bfit_wave=wave,
                bfit_spec=spec,
                samples=samples,
                photo_pct=photo_pct,
                sed_wave=wave if sed_pct is not None else None,
                sed_pct=sed_pct,
                spectrum=spectrum,
                ess=float(hdr["ESS"]) if float(hdr.get("ESS", -99.0)) >= 0 else library_ess,
                n_model_evaluations=int(hdr.get("NMODEVAL", 0)),
                rounds=int(hdr.get("NROUNDS", 0)),
                converged=_converged(hdr.get("CONVERGD", -1)),
                diagnostics=diagnostics,
            )


#: Primary-header cards of the original's fit files that describe the model, and their
#: keys in ``config["model"]`` (the library's configuration for pixedfit's fits).
_MODEL_CARDS = (("IMF", "imf_type"), ("SFH_FORM", "sfh_form"), ("DUST_LAW", "dust_law"),
                ("duste_stat", "duste_switch"), ("add_neb_emission", "add_neb_emission"),
                ("ADD_AGN", "add_agn"), ("add_igm_absorption", "add_igm_absorption"),
                ("IGM_TYPE", "igm_type"), ("free_gas_logz", "free_gas_logz"),
                ("smooth_velocity", "smooth_velocity"), ("sigma_smooth", "sigma_smooth"),
                ("smooth_lsf", "smooth_lsf"), ("name_file_lsf", "name_file_lsf"))
#: Cards of the fit settings, and their keys in ``config``.
_SETTING_CARDS = (("DOF", "dof"), ("perc_chi2", "perc_chi2"), ("COSMO", "cosmo"),
                  ("H0", "H0"), ("OM0", "Om0"))


def systematic_indices(weights: NDArray, n: int, offset: float) -> NDArray[np.int64]:
    """Indices of ``n`` systematic resamples of ``weights``.

    Sample ``i`` takes the row where the cumulative weight first reaches
    ``(offset + i) / n``: each row appears ``floor`` or ``ceil`` of ``n × weight`` times.

    Parameters
    ----------
    weights : ndarray, shape (m,)
        Normalised weights (sum 1), >= 0.
    n : int
        Number of resamples.
    offset : float
        Position in [0, 1) of the first sample within its stratum (uniform random for an
        unbiased resampling; 0.5 for a deterministic one).

    Returns
    -------
    ndarray of int64, shape (n,)
        Row indices, in increasing order.
    """
    u = (offset + np.arange(n)) / n
    return np.minimum(np.searchsorted(np.cumsum(weights), u), weights.size - 1)


def original_rdsps_weights(table: Table, perc_chi2: float) -> NDArray[np.float64] | None:
    """Posterior weights of the models in an original RDSPS ``SAMPLERS`` table.

    The table lists every library model with its ``chi2`` and ``lnprob`` (log likelihood
    plus log prior); the original weighed them as its summary statistics did (spec §2.3):
    the models with ``chi2`` at most the ``perc_chi2`` percentile and a finite ``lnprob``,
    ``w ∝ exp(lnprob − max)``. Reading the rows as equally weighted samples would give the
    library's prior instead of the posterior.

    Parameters
    ----------
    table : astropy.table.Table
        The ``SAMPLERS`` table.
    perc_chi2 : float
        The file's ``perc_chi2`` card (percent; 100 keeps every model).

    Returns
    -------
    ndarray, shape (nrow,), or None
        Normalised weights; None when the table has no ``lnprob`` column (pixedfit's own
        tables hold equal-weight samples) or no model has a finite one.
    """
    if "lnprob" not in table.colnames:
        return None
    lnprob = np.asarray(table["lnprob"], dtype=np.float64)
    keep = np.isfinite(lnprob)
    if "chi2" in table.colnames:
        chi2 = np.asarray(table["chi2"], dtype=np.float64)
        keep &= np.isfinite(chi2)
        if keep.any() and perc_chi2 < 100.0:
            keep &= chi2 <= np.percentile(chi2[keep], perc_chi2)
    if not keep.any():
        return None
    w = np.zeros(lnprob.size)
    w[keep] = np.exp(lnprob[keep] - lnprob[keep].max())
    return w / w.sum()


def _header_config(hdr: fits.Header) -> dict[str, Any]:
    """The fit settings and the model configuration recorded in an original-layout primary
    header (the cards present), as :meth:`FitResult.write_pixedfit` writes them back."""
    out: dict[str, Any] = {key: hdr[card] for card, key in _SETTING_CARDS if card in hdr}
    if out.get("cosmo") == "None":  # written by earlier pixedfit versions for the default
        out["cosmo"] = None
    model = {key: hdr[card] for card, key in _MODEL_CARDS if card in hdr}
    if model:
        out["model"] = model
    return out


def _header_fixed(hdr: fits.Header) -> dict[str, Any]:
    """``{"fixed": {name: value}}`` from the MCMC cards NFIXPAR, FPARn, FPARn_val (spec
    §2.6; pixedfit's MCMC diagnostics hold the fixed parameters the same way), else {}."""
    if "NFIXPAR" not in hdr:
        return {}
    return {"fixed": {str(hdr[f"FPAR{i}"]): float(hdr[f"FPAR{i}_val"])
                      for i in range(int(hdr["NFIXPAR"]))}}


def _cosmo_card(cosmo: Any) -> int | str:
    """The COSMO card: the original's RDSPS scripts write an integer code, its MCMC scripts
    a name; None means flat ΛCDM."""
    if cosmo is None:
        return "flat_LCDM"
    if isinstance(cosmo, int | np.integer) and not isinstance(cosmo, bool):
        return int(cosmo)
    return str(cosmo)


def _converged(value: Any) -> bool | None:
    """The stored convergence flag: 1, 0 or -1 (unknown)."""
    v = int(value)
    return None if v < 0 else bool(v)


def _read_spectrum(group: Any) -> dict[str, NDArray]:
    out = {k: group[k][()] for k in group}
    if "used" in out:
        out["used"] = out["used"].astype(bool)
    return out


#: Optional per-pixel columns of a fitted spectrum (MCMC: posterior mean and std of the
#: multiplicative correction).
_SPEC_EXTRA = ("factor_mean", "factor_std")

#: Component names of the original's BFIT_MOD_SPEC columns.
_COMP_FITS = {"total": "tot", "stellar": "stellar", "nebular": "nebe", "dust": "duste",
              "agn": "agn"}


class StaleStoreError(ValueError):
    """A result store holds results made with other settings, another library or data."""


class StoreWarning(UserWarning):
    """A result store discarded results (damaged, or made from other data) to refit them."""


def _canonical(value: Any, depth: int = 0) -> Any:
    """JSON-able form of settings (numpy values, tuples, objects by their fields)."""
    if depth > 6:
        return repr(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else repr(float(value))
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, np.ndarray):
        return {"array": hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest(),
                "shape": list(value.shape), "dtype": value.dtype.str}
    if isinstance(value, Mapping):
        return {str(k): _canonical(v, depth + 1) for k, v in sorted(value.items(),
                                                                    key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_canonical(v, depth + 1) for v in value]
    if dataclasses.is_dataclass(value):  # fields (a dataclass repr shortens arrays)
        return {"type": type(value).__name__, **{
            f.name: _canonical(getattr(value, f.name), depth + 1)
            for f in dataclasses.fields(value)}}
    # e.g. astropy cosmologies (mypy: type(Any).__repr__ is taken for a bound method)
    if type(value).__repr__ is not object.__repr__:  # type: ignore[comparison-overlap]
        return repr(value)
    if hasattr(value, "__dict__"):
        return {"type": type(value).__name__, **{
            k: _canonical(v, depth + 1) for k, v in sorted(vars(value).items())}}
    return repr(value)


def input_digest(*values: Any) -> str:
    """SHA-256 of the data of one SED (arrays by content, scalars, spectra by their fields).

    Used by :meth:`ResultStore.session` to tell which stored fits were made from other data.
    """
    return hashlib.sha256(json.dumps(_canonical(list(values)), sort_keys=True).encode()
                          ).hexdigest()


def library_digest(library: Any) -> str:
    """SHA-256 of the content of a model library (parameters, derived quantities, spectra,
    configuration, ranges and seed): the same library gives the same digest wherever its
    file lives; any change of a value gives another."""
    h = hashlib.sha256()
    arr: NDArray[Any] | None
    for group in ("params", "derived"):
        for name, values in sorted((getattr(library, group, None) or {}).items()):
            arr = np.ascontiguousarray(values, dtype=np.float64)
            h.update(f"{group}/{name}/{arr.shape}".encode())
            h.update(arr.tobytes())
    for name in ("wave", "spectra"):
        arr = getattr(library, name, None)
        if arr is not None:
            arr = np.ascontiguousarray(arr)
            h.update(f"{name}/{arr.shape}/{arr.dtype.str}".encode())
            h.update(arr.tobytes())
    meta = {k: getattr(library, k, None) for k in ("config", "ranges", "seed")}
    h.update(json.dumps(_canonical(meta), sort_keys=True).encode())
    return h.hexdigest()


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value and "array" not in value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def _changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """``key: old -> new`` for every entry that differs (at most 6 listed)."""
    a, b = _flatten(dict(old)), _flatten(dict(new))
    diff = []
    for key in sorted(set(a) | set(b)):
        if a.get(key, "<unset>") != b.get(key, "<unset>"):
            if key == "library":
                diff.append("library: another model library (content differs)")
            else:
                diff.append(f"{key}: {a.get(key, '<unset>')!r} -> {b.get(key, '<unset>')!r}")
    more = f" (and {len(diff) - 6} more)" if len(diff) > 6 else ""
    return "; ".join(diff[:6]) + more


class ResultStore:
    """A folder of per-SED result files that survives crashes and refuses stale results.

    Every finished fit is written atomically to ``<folder>/<key>.h5``; :meth:`has` tells a
    rerun which keys are done. Keys are strings of letters, digits and ``_ . -``. MCMC
    chains of unfinished fits are kept in ``<folder>/chains/<key>.h5``.

    The fitting drivers open a :meth:`session` for a run: it locks the store (a second run
    on the same store stops with a message naming the running one), removes temporary files
    an interrupted run left, and checks the record ``store.json`` of what produced the
    results — the fit settings, the model library (by content) and the data of every SED:

    * other settings or another library: :class:`StaleStoreError` naming the store and what
      changed, unless the store was opened with ``refit=True``, which discards its results
      and fits again;
    * SEDs whose data changed, and damaged (truncated) result or chain files: those results
      are discarded and refitted, with a :class:`StoreWarning` listing them.

    Only files the store wrote are ever removed (:meth:`clear`).

    Parameters
    ----------
    folder : path-like
        Created if needed.
    refit : bool
        Discard results made with other settings or another library instead of refusing.
    """

    #: File recording what produced the results.
    MANIFEST = "store.json"
    _MANIFEST_KIND = "pixedfit-result-store"

    def __init__(self, folder: PathLike, refit: bool = False):
        self.folder = Path(folder)
        self.refit = bool(refit)
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
        """Write ``result`` atomically; returns its path.

        Parameters
        ----------
        key : str
            Name of the SED in the store (e.g. ``"bin12"``).
        result : FitResult
            The fit to store.

        Returns
        -------
        Path
            The HDF5 file written.
        """
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

    def chain_path(self, key: str) -> Path:
        """MCMC chain file of ``key`` (``<folder>/chains/<key>.h5``)."""
        return self.folder / "chains" / f"{self._check_key(key)}.h5"

    # ------------------------------------------------------------------ provenance
    def _read_manifest(self) -> dict[str, Any] | None:
        path = self.folder / self.MANIFEST
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("kind") != self._MANIFEST_KIND:
            return None
        data.setdefault("inputs", {})
        return data

    def _write_manifest(self, run: Mapping[str, Any], inputs: Mapping[str, str]) -> None:
        data = {"kind": self._MANIFEST_KIND, "schema_version": SCHEMA_VERSION,
                "created_by": f"pixedfit {__version__}", "run": run, "inputs": dict(inputs)}
        with atomic_path(self.folder / self.MANIFEST) as tmp:
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")

    @staticmethod
    def _readable(path: Path, kind: str | None) -> bool:
        """True when ``path`` opens as HDF5 (and is a fit result when ``kind`` is given)."""
        try:
            with open_hdf5(path) as f:
                return kind is None or (f.attrs.get("kind") == kind and "stats" in f)
        except (ValueError, OSError, KeyError):
            return False

    def files(self) -> list[str]:
        """Files the store wrote (paths relative to its folder), sorted."""
        manifest = self._read_manifest()
        known = set(manifest["inputs"]) if manifest else set()
        out = [self.MANIFEST] if manifest else []
        for p in self.folder.glob("*.h5"):
            if not p.name.startswith(".") and (p.stem in known or self._readable(p, _KIND)):
                out.append(p.name)
        chains = self.folder / "chains"
        if chains.is_dir():
            out += [f"chains/{p.name}" for p in chains.glob("*.h5")
                    if not p.name.startswith(".") and (p.stem in known
                                                       or self._readable(p, None))]
        return sorted(out)

    def clear(self) -> list[str]:
        """Remove every file the store wrote (results, chains, its record, temporaries
        of interrupted writes, its lock file unless a run holds it) and nothing else; empty
        folders it made go too.

        Returns
        -------
        list of str
            The removed files, relative to the folder.
        """
        removed = self.files()
        for rel in removed:
            (self.folder / rel).unlink(missing_ok=True)
        removed += [p.name for p in remove_stale_temporaries(self.folder, "*")]
        removed += [f"chains/{p.name}"
                    for p in remove_stale_temporaries(self.folder / "chains", "*")]
        lock = self.folder / ".lock"
        if lock.is_file():  # left by a killed run; kept while a run (this one too) holds it
            with contextlib.suppress(OSError), FileLock(lock, "store"):
                removed.append(lock.name)
        for folder in (self.folder / "chains", self.folder):
            with contextlib.suppress(OSError):  # not empty: the user's files stay
                folder.rmdir()
        return removed

    def _check_space(self, inputs: Mapping[str, str], chain_bytes: int,
                     chain_overhead: int = 0, concurrent: int = 1) -> None:
        """Refuse to start chains the device cannot hold (the HDF5 chain files are written
        by emcee step by step; a full disk inside HDF5 can crash the interpreter).

        Every pending SED needs ``chain_bytes`` (its finished, compacted chain file, less
        what its file already holds), and each of the ``concurrent`` chains being written at
        once ``chain_overhead`` more."""
        if chain_bytes <= 0:
            return
        pending = [k for k in inputs if not self.path(k).exists()]
        need = sum(max(chain_bytes - (self.chain_path(k).stat().st_size
                                      if self.chain_path(k).exists() else 0), 0)
                   for k in pending)
        need += min(len(pending), max(int(concurrent), 1)) * max(int(chain_overhead), 0)
        free = shutil.disk_usage(self.folder).free
        if need > free:
            full = OSError(f"result store {self.folder}: the MCMC chains of {len(pending)} SEDs "
                           f"need about {need / 1e6:.1f} MB but the device has "
                           f"{free / 1e6:.1f} MB free; free some space or use a store on "
                           f"another device")
            full.errno = errno.ENOSPC
            raise full

    def _begin(self, run: Mapping[str, Any], inputs: Mapping[str, str],
               chain_bytes: int = 0, chain_overhead: int = 0,
               concurrent: int = 1) -> list[str]:
        """Check and update the record under the lock; returns the messages to warn."""
        notes = []
        self.folder.mkdir(parents=True, exist_ok=True)
        temps = (remove_stale_temporaries(self.folder, "*")
                 + remove_stale_temporaries(self.folder / "chains", "*"))
        if temps:
            notes.append(f"removed {len(temps)} temporary file(s) of an interrupted run")
        run = _canonical(run)
        manifest = self._read_manifest()
        old_inputs: dict[str, str] = {}
        how = ("use a new store folder, or refit (pixedfit fit --refit; "
               "ResultStore(folder, refit=True) in Python) to discard them and fit again")
        if manifest is None:
            held = self.files()
            if held and not self.refit:
                raise StaleStoreError(
                    f"result store {self.folder}: holds {len(held)} results without a record "
                    f"of the settings, library and data that made them ({self.MANIFEST} "
                    f"missing or unreadable); {how}")
            if held:
                self.clear()
                notes.append(f"discarded {len(held)} results of unknown origin (refit)")
        elif manifest.get("run") != run:
            changes = _changes(manifest.get("run") or {}, run)
            if not self.refit:
                raise StaleStoreError(f"result store {self.folder} was made with other "
                                      f"settings ({changes}); {how}")
            dropped = self.clear()
            notes.append(f"discarded {len(dropped)} files made with other settings "
                         f"({changes}) (refit)")
        else:
            old_inputs = dict(manifest["inputs"])
        self.folder.mkdir(parents=True, exist_ok=True)
        changed, damaged = [], []
        for key, digest in inputs.items():
            result, chain = self.path(key), self.chain_path(key)
            if old_inputs.get(key) != digest:
                if result.exists() or chain.exists():
                    changed.append(key)
                    result.unlink(missing_ok=True)
                    chain.unlink(missing_ok=True)
                continue
            if result.exists() and not self._readable(result, _KIND):
                damaged.append(key)
                result.unlink()
            if not result.exists() and chain.exists() and not self._readable(chain, None):
                damaged.append(key)
                chain.unlink()

        def listing(keys: list[str]) -> str:
            return ", ".join(keys[:10]) + (f" and {len(keys) - 10} more" if len(keys) > 10
                                           else "")

        if changed:
            notes.append(f"the data of {len(changed)} SEDs differ from those of their stored "
                         f"results: refitting {listing(changed)}")
        if damaged:
            notes.append(f"{len(damaged)} damaged (truncated?) result or chain files "
                         f"removed: refitting {listing(damaged)}")
        self._check_space(inputs, chain_bytes, chain_overhead, concurrent)
        self._write_manifest(run, {**old_inputs, **inputs})
        return notes

    @contextlib.contextmanager
    def session(self, run: Mapping[str, Any], inputs: Mapping[str, str],
                pool: Any = None, chain_bytes: int = 0,
                chain_overhead: int = 0) -> Iterator[ResultStore]:
        """Lock the store for a run and check what produced its results (see the class).

        Parameters
        ----------
        run : mapping
            Everything that decides the results besides each SED's data: method,
            settings, filters, priors, the library's :func:`library_digest`, ...
        inputs : mapping of str to str
            Key → :func:`input_digest` of the data of each SED of the run.
        pool : SerialPool or MPIPool, optional
            Under MPI rank 0 locks and checks, and every rank raises its error.
        chain_bytes : int
            Size of the finished MCMC chain file of one SED (0: no chains); a run whose
            unfinished chains do not fit on the device is refused before it starts.
        chain_overhead : int
            Extra size of a chain file while it is written (counted once per chain that
            can run at once: the MPI ranks, or the CPUs without MPI).

        Raises
        ------
        StaleStoreError
            Results made with other ``run`` settings (and ``refit`` is False).
        pixedfit._paths.LockedError
            (an :class:`OSError`) Another process has the store open.
        OSError
            Not enough free space for the chains (errno ``ENOSPC``).
        """
        lock = FileLock(self.folder / ".lock", f"the result store {self.folder}")
        is_master = pool is None or pool.is_master

        def begin(_: int) -> tuple[BaseException | None, list[str]]:
            try:
                lock.acquire()
            except OSError as exc:
                return exc, []
            try:
                concurrent = getattr(pool, "size", None) or os.cpu_count() or 1
                return None, self._begin(run, inputs, chain_bytes, chain_overhead,
                                         concurrent)
            except Exception as exc:  # handed to every rank below
                lock.release()
                return exc, []

        error, notes = begin(0) if pool is None else pool.map(begin, [0])[0]
        if error is not None:
            raise error
        if is_master:
            for note in notes:
                warnings.warn(f"result store {self.folder}: {note}", StoreWarning,
                              stacklevel=3)
        try:
            yield self
        finally:
            lock.release()

    def summary_table(self, keys: list[str] | None = None) -> Table:
        """One row per stored result: key, then <param>_<stat> columns."""
        rows = [_summary_row(key, self.load(key))
                for key in (keys if keys is not None else self.keys())]
        return Table(rows=rows) if rows else Table()


def _summary_row(key: Any, res: FitResult) -> dict[str, Any]:
    """One row of a summary table: id, fit quality, then ``<param>_<stat>`` columns."""
    row: dict[str, Any] = {"id": key, "chi2_min": res.chi2_min, "n_used": res.n_used,
                           "ess": res.ess, "n_model_evaluations": res.n_model_evaluations,
                           "converged": -1 if res.converged is None else int(res.converged)}
    for name, stats in res.summary.items():
        for stat, value in stats.items():
            row[f"{name}_{stat}"] = value
    return row


class FitResults(Mapping[Any, FitResult]):
    """The results of a run of fits: one :class:`FitResult` per SED, in input order.

    :func:`~pixedfit.fitting.fit_catalog` keys them by the catalogue's ids (row numbers,
    0-based, without ids) and :func:`~pixedfit.fitting.fit_binmap` by bin id (from 1).
    A read-only mapping: ``results[key]``, ``results.items()``; ``list(results.values())``
    gives them in input order.

    Parameters
    ----------
    keys : sequence
        One unique key per result.
    results : sequence of FitResult
        The results, in the order of ``keys``.
    """

    def __init__(self, keys: Sequence[Any], results: Sequence[FitResult]) -> None:
        if len(keys) != len(results):
            raise ValueError(f"keys ({len(keys)}) and results ({len(results)}) differ in "
                             "length")
        self._results = dict(zip(keys, results, strict=True))
        if len(self._results) != len(keys):
            raise ValueError("keys must be unique")

    def __getitem__(self, key: Any) -> FitResult:
        return self._results[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._results)

    def __len__(self) -> int:
        return len(self._results)

    def __repr__(self) -> str:
        return (f"FitResults({len(self)} fits, {len(self.failed)} failed, "
                f"{len(self.unconverged)} not converged)")

    @property
    def failed(self) -> list[Any]:
        """Keys of the fits in which no model entered the posterior."""
        return [k for k, r in self._results.items() if not r.ok]

    @property
    def unconverged(self) -> list[Any]:
        """Keys of the fits whose sampler did not reach its convergence target."""
        return [k for k, r in self._results.items() if r.converged is False]

    def table(self) -> Table:
        """One row per fit: ``id`` (the key), ``chi2_min``, ``n_used``, ``ess``,
        ``n_model_evaluations``, ``converged`` (−1: not recorded), then
        ``<param>_<stat>`` columns (as :meth:`ResultStore.summary_table`).

        Returns
        -------
        astropy.table.Table
        """
        rows = [_summary_row(k, r) for k, r in self._results.items()]
        return Table(rows=rows) if rows else Table()
