"""``pixedfit models generate`` and ``pixedfit fit``: model libraries and catalogue fits.

Catalogue format for ``pixedfit fit`` (also in ``pixedfit fit --help``): any table astropy
reads (FITS, ECSV, CSV, ...) with, for every filter ``F`` given by ``--filters``, a flux
column ``F`` and an error column ``F_err`` in the unit ``--unit`` (default f_λ, erg s⁻¹ cm⁻²
Å⁻¹; AB magnitudes are converted at the filters' pivot wavelengths, Jy and µJy by
:func:`pixedfit.instruments.catalog_flux_to_flam` in the convention ``--jy-convention``:
``instrument``, the default, reads the WISE, Spitzer and Herschel bands as those surveys quote
F_ν, for their reference spectra, as in DustPedia's photometry; ``pivot`` converts every
band at its pivot wavelength, for F_ν already colour-corrected), a redshift column
(``--z-column``, default ``z``) unless ``--z`` fixes one redshift for all, and optionally an
``id`` column and, per filter, a boolean column ``F_ul`` (True: ``F`` holds an upper limit
and ``F_err`` its 1σ noise). Errors follow :mod:`pixedfit.fitting.errors`: calibration
errors from the instrument table by default (``--calibration-errors``), an optional
``--error-floor``, and upper limits (``F_ul`` columns, or ``--upper-limit-nsigma``) through
the Gaussian CDF. With ``--distance-column D`` a row whose column ``D`` holds a finite
luminosity distance (Mpc) is fitted at the redshift of that distance instead (nearby
galaxies with a negative or peculiar-velocity-dominated redshift); the redshift column may
then be absent. The output table records the flux unit and the Jy convention (FITS header
and ECSV metadata ``FLUXUNIT`` and ``JYCONV``; CSV, which holds no metadata, as the columns
``flux_unit`` and ``jy_convention``). It has one row per SED: id, z, chi2_min, n_used and
``<param>_<stat>`` columns (``--method mcmc`` fits with emcee instead, the library giving
the model and the start; ``--method nested`` with nautilus, adding ``ln_evidence``,
``ln_evidence_err``, ``ess`` and ``converged`` columns). ``--compare other.h5`` (repeatable,
needs ``--method nested``) fits every SED with each library too, prints the table of
evidences and Bayes factors of each SED and adds ``ln_evidence_<name>``,
``ln_evidence_err_<name>``, ``ln_bayes_<name>`` (relative to the best model of that SED) and
``best_model`` columns, ``<name>`` being each library's file stem. Under ``mpiexec -n N``
the SEDs are shared among the ranks and rank 0 writes the table.

Errors name the flag that set the value (:data:`FLAGS`).

"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is imported by the commands, not by `--help`
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["CATALOG_HELP", "FLAGS", "RANGE_DEFAULTS", "add_subcommands"]


#: Parameters ``--range`` accepts and their default ranges (the same as
#: :data:`pixedfit.library.GENERATION_RANGES`, kept here so ``--help`` imports nothing; a
#: test keeps the two equal). Which are free depends on the model options.
RANGE_DEFAULTS: dict[str, tuple[float, float]] = {
    "logzsol": (-2.0, 0.2), "log_tau": (-1.0, 1.5), "log_age": (-2.0, 1.14),
    "log_t0": (-1.0, 1.14), "log_alpha": (-2.0, 2.0), "log_beta": (-2.0, 2.0),
    "dust_index": (-2.2, 0.4), "dust1": (0.0, 4.0), "dust2": (0.0, 4.0),
    "log_gamma": (-4.0, 0.0), "log_umin": (-1.0, 1.39), "log_qpah": (-1.0, 0.66),
    "log_fagn": (-5.0, 0.48), "log_tauagn": (0.7, 2.18), "gas_logu": (-4.0, -1.0),
}

_RANGE_HELP = (
    "parameter range NAME=LO,HI (repeatable; LO = HI fixes it). Names and defaults: "
    + ", ".join(f"{k} [{lo:g}, {hi:g}]" for k, (lo, hi) in RANGE_DEFAULTS.items())
    + ". Ages and timescales in log Gyr, logzsol = log Z/Z☉, dust1/dust2 optical depths; "
    "log_t0 only for --sfh-form 2/3, log_alpha/log_beta for 4, dust_index/dust1 for "
    "--dust-law 0, log_gamma/log_umin/log_qpah with --dust-emission, log_fagn/log_tauagn "
    "with --agn, gas_logu unless --no-nebular")

#: Catalogue columns, shown by ``pixedfit fit --help``.
CATALOG_HELP = """catalogue columns (any table astropy reads: FITS, ECSV, CSV, ...):
  <filter>       flux in every band named by --filters, in --unit
  <filter>_err   its 1-sigma error, same unit (NaN flux or error <= 0: band not used)
  z              redshift (column name: --z-column), unless --z gives one for all
  id             optional name of the row (default: the row number)
  <filter>_ul    optional boolean: True when <filter> holds an upper limit
                 (<filter>_err is then its 1-sigma noise)
  D              luminosity distance in Mpc, with --distance-column D (rows with a
                 finite value are fitted at that distance's redshift)
output table: FLUXUNIT and JYCONV (--unit, --jy-convention) in its FITS header or ECSV
metadata (CSV: columns flux_unit, jy_convention); one row per SED with id, z,
chi2_min, n_used and <param>_<stat> columns
(stat = mean, std, p16, p50, p84 for every fitted and derived quantity; masses in
log M☉, SFR in log M☉/yr, ages in log Gyr). Under mpiexec -n N the SEDs are shared
among the ranks and rank 0 writes the table."""


def _parse_range(text: str) -> tuple[str, tuple[float, float]]:
    try:
        name, values = text.split("=", 1)
        lo, hi = (float(v) for v in values.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"ranges look like NAME=LO,HI (got {text!r}); names: "
            f"{', '.join(RANGE_DEFAULTS)}") from exc
    name = name.strip()
    if name not in RANGE_DEFAULTS and name != "log_mass":
        raise argparse.ArgumentTypeError(
            f"unknown parameter {name!r}; names: {', '.join(RANGE_DEFAULTS)}")
    return name, (lo, hi)


def _number(kind: type, low: float | None = None, high: float | None = None,
            low_open: bool = False) -> Any:
    """An argparse type: ``kind`` within [low, high] (``low_open``: (low, high])."""

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
            ) from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
        if low is not None and (value <= low if low_open else value < low):
            raise argparse.ArgumentTypeError(f"must be {'>' if low_open else '>='} {low:g}, "
                                             f"got {text}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be <= {high:g}, got {text}")
        return value

    convert.__name__ = kind.__name__  # argparse names the type in its messages
    return convert


#: API argument names → the flags that set them (:func:`pixedfit.cli.user_message` names the
#: flag in error messages).
FLAGS = {
    "nwalkers": "--nwalkers", "nsteps_cut": "--nsteps-cut", "nsteps": "--nsteps",
    "max_steps": "--max-steps", "mcmc_options": "--max-steps",
    "thin": "--thin", "dof": "--dof", "perc_chi2": "--perc-chi2",
    "error_floor": "--error-floor", "likelihood": "--likelihood", "threads": "--threads",
    "chunk": "--chunk", "seed": "--seed", "ranges": "--range", "n": "--n",
    "calibration_errors": "--calibration-errors", "calib_err": "--calibration-errors",
    "upper_limit_nsigma": "--upper-limit-nsigma", "distance_column": "--distance-column",
    "refine": "--no-refine", "nested": "--nlive/--target-ess/--max-calls",
    "unit": "--unit", "convention": "--jy-convention",
    # the option objects the command builds (pixedfit.fitting.options)
    "errors.likelihood": "--likelihood", "errors.dof": "--dof",
    "errors.perc_chi2": "--perc-chi2", "errors.error_floor": "--error-floor",
    "errors.upper_limit_nsigma": "--upper-limit-nsigma", "NestedSettings.n_live": "--nlive",
    "NestedSettings.target_ess": "--target-ess", "NestedSettings.max_calls": "--max-calls",
}


def _cmd_models_generate(args: argparse.Namespace) -> int:
    from ..library import generate_library
    from ..parallel import get_pool
    from ..sps import SEDModel

    model = SEDModel(sfh_form=args.sfh_form, dust_law=args.dust_law,
                     dust_emission=args.dust_emission, add_neb_emission=not args.no_nebular,
                     add_agn=args.agn, add_igm_absorption=args.igm, igm_type=args.igm_type,
                     agn_templates=args.agn_templates)
    pool = get_pool()
    library = generate_library(model, args.n, ranges=dict(args.range or []), seed=args.seed,
                               path=args.out, spectra=args.spectra, pool=pool, chunk=args.chunk,
                               threads=args.threads, progress=not args.quiet)
    if pool.is_master:
        print(f"wrote {library.nmodels} models ({', '.join(library.params)}) to {args.out}")
    return 0


def _read_catalog(path: str, filters: list[str], unit: str, z_column: str, z_fixed: float | None,
                  distance_column: str | None = None, jy_convention: str = "instrument"
                  ) -> tuple[list[str], NDArray[np.float64], NDArray[np.float64],
                             NDArray[np.float64], NDArray[np.bool_] | None,
                             NDArray[np.float64] | None]:
    import numpy as np
    from astropy.table import Table

    from ..instruments import catalog_flux_to_flam

    try:
        table = Table.read(path)
    except Exception as exc:  # astropy raises many types for unreadable tables
        raise ValueError(f"cannot read the catalogue {path}: {exc}") from exc
    missing = [c for f in filters for c in (f, f"{f}_err") if c not in table.colnames]
    if missing:
        raise ValueError(f"catalogue {path} lacks the columns {missing}")
    flux = np.column_stack([np.asarray(table[f], dtype=np.float64) for f in filters])
    err = np.column_stack([np.asarray(table[f"{f}_err"], dtype=np.float64) for f in filters])
    if unit.lower() not in ("erg/s/cm2/a", "flam"):
        # NaN stays NaN (a NaN flux with an error can be an upper limit) and an error <= 0
        # stays <= 0 (the band is not used), in every unit
        flux, err = catalog_flux_to_flam(flux, filters, unit, flux_err=err,
                                         convention=jy_convention)
    dist = None
    if distance_column is not None:
        if distance_column not in table.colnames:
            raise ValueError(f"catalogue {path} has no distance column {distance_column!r} "
                             f"(--distance-column)")
        dist = np.asarray(table[distance_column], dtype=np.float64)
    if z_fixed is not None:
        z = np.full(len(table), float(z_fixed))
    elif z_column in table.colnames:
        z = np.asarray(table[z_column], dtype=np.float64)
    elif dist is not None:
        z = np.full(len(table), np.nan)
    else:
        raise ValueError(f"catalogue {path} has no redshift column {z_column!r}; pass --z "
                         f"or --distance-column")
    ids = ([str(v) for v in table["id"]] if "id" in table.colnames
           else [str(i) for i in range(len(table))])
    upper = None
    if any(f"{f}_ul" in table.colnames for f in filters):
        upper = np.zeros(flux.shape, bool)
        for b, f in enumerate(filters):
            if f"{f}_ul" in table.colnames:
                col = np.asarray(table[f"{f}_ul"])
                if col.dtype != bool and not (np.issubdtype(col.dtype, np.integer)
                                              and np.all((col == 0) | (col == 1))):
                    raise ValueError(f"catalogue {path}: column {f}_ul must be boolean "
                                     "(True: an upper limit)")
                upper[:, b] = col.astype(bool)
    return ids, flux, err, z, upper, dist


def _parse_calibration(text: str) -> object:
    """``--calibration-errors``: auto | off | a fraction | band=fraction,band=fraction."""
    t = text.strip()
    if t.lower() == "auto":
        return "auto"
    if t.lower() in ("off", "none", "false", "no"):
        return False
    if "=" not in t:
        try:
            return float(t)
        except ValueError:
            pass
    else:
        out = {}
        try:
            for item in t.split(","):
                band, value = item.split("=", 1)
                out[band.strip()] = float(value)
        except ValueError:
            pass
        else:
            return out
    raise argparse.ArgumentTypeError(
        f"--calibration-errors: expected auto, off, a fraction or band=fraction,... "
        f"(got {text!r})")


def _cmd_fit(args: argparse.Namespace) -> int:
    import numpy as np
    from astropy.table import Table

    from ..fitting import fit_catalog
    from ..fitting.mcmc import McmcSettings
    from ..fitting.nested import NestedSettings
    from ..fitting.options import ErrorModel, RdspsSettings, SamplerSettings
    from ..fitting.results import ResultStore
    from ..library import read_library
    from ..parallel import Parallelism, get_pool

    filters = [f.strip() for f in args.filters.split(",") if f.strip()]
    compare = list(args.compare or [])
    if compare and args.method != "nested":
        raise ValueError("--compare compares evidences: it needs --method nested")
    ids, flux, err, z, upper, dist = _read_catalog(args.catalog, filters, args.unit,
                                                   args.z_column, args.z, args.distance_column,
                                                   args.jy_convention)
    paths = [args.library, *compare]
    names = [Path(p).stem for p in paths]
    if len(set(names)) != len(names):
        raise ValueError(f"--library and --compare need libraries of distinct file names, "
                         f"got {names}")
    if args.method == "nested":
        method: SamplerSettings = NestedSettings(
            n_live=args.nlive, target_ess=args.target_ess, max_calls=args.max_calls,
            discard_exploration=not args.keep_exploration)
    elif args.method == "mcmc":
        method = McmcSettings(nwalkers=args.nwalkers, nsteps=args.nsteps,
                              nsteps_cut=args.nsteps_cut, thin=args.thin,
                              max_steps=args.max_steps,
                              start="library" if args.no_refine else "refined")
    else:
        method = RdspsSettings(refine=not args.no_refine)
    errors = ErrorModel(likelihood=args.likelihood, dof=args.dof, perc_chi2=args.perc_chi2,
                        error_floor=args.error_floor, mask_invalid=True,
                        calibration=args.calibration_errors,
                        upper_limit_nsigma=args.upper_limit_nsigma)
    pool = get_pool()
    parallel = Parallelism(threads=args.threads, pool=pool, progress=not args.quiet)
    runs = []
    for k, path in enumerate(paths):
        store = None
        if args.store:
            store = ResultStore(Path(args.store) / names[k] if compare else args.store,
                                refit=args.refit)
        results = fit_catalog(
            flux, err, filters, z, library=read_library(path, spectra=False), ids=ids,
            method=method, seed=args.seed, errors=errors, upper_limits=upper,
            distance_mpc=dist, store=store, parallel=parallel)
        runs.append(list(results.values()))
    if pool.is_master:
        from ..fitting.comparison import ModelComparison

        rows = []
        for i, (key, zi) in enumerate(zip(ids, z, strict=True)):
            res = runs[0][i]
            zfit = float(res.z) if res.z is not None else float(zi)
            row = {"id": key, "z": zfit, "chi2_min": res.chi2_min,
                   "chi2_dof": res.diagnostics.get("chi2_dof", np.nan),
                   "ndof": res.diagnostics.get("ndof", -1), "n_used": res.n_used,
                   "ess": res.ess, "n_model_evaluations": res.n_model_evaluations,
                   "converged": -1 if res.converged is None else int(res.converged)}
            if args.method == "nested":
                row.update(ln_evidence=res.ln_evidence,
                           ln_evidence_err=res.diagnostics["ln_evidence_err"])
            for name, stats in res.summary.items():
                for stat, value in stats.items():
                    row[f"{name}_{stat}"] = value
            if compare:
                fits = [run[i] for run in runs]
                cmp = ModelComparison.from_evidences(
                    names, [f.ln_evidence for f in fits],
                    [f.diagnostics["ln_evidence_err"] for f in fits])
                print(f"SED {key} (z = {float(zi):g}):\n{cmp.table()}")
                for k, name in enumerate(names):
                    row[f"ln_evidence_{name}"] = cmp.ln_evidence[k]
                    row[f"ln_evidence_err_{name}"] = cmp.ln_evidence_err[k]
                    row[f"ln_bayes_{name}"] = cmp.ln_bayes[k]
                row["best_model"] = cmp.best
            rows.append(row)
        from .._paths import atomic_path

        out = Path(args.out)
        fmt = _table_format(out)
        if fmt == "ascii.csv":  # no metadata in CSV: the conversion settings as columns
            for row in rows:
                row.update(flux_unit=args.unit, jy_convention=args.jy_convention)
        table = Table(rows=rows)
        table.meta.update(FLUXUNIT=args.unit, JYCONV=args.jy_convention)
        with atomic_path(out) as tmp:
            table.write(tmp, format=fmt, overwrite=True)
        print(f"fitted {len(rows)} SEDs; wrote {out}")
    return 0


def _table_format(path: Path) -> str:
    suffix = path.suffix.lower()
    return {".fits": "fits", ".csv": "ascii.csv", ".ecsv": "ascii.ecsv"}.get(suffix, "ascii.ecsv")


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    """Register ``models`` and ``fit`` on the ``pixedfit`` sub-command parser."""
    positive_int = _number(int, 1)
    threads_help = ("OpenMP threads per process (default: all cores; with mpiexec, set it "
                    "to cores / ranks)")
    models = sub.add_parser("models", help="model libraries")
    msub = models.add_subparsers(dest="models_command", required=True)
    gen = msub.add_parser("generate", help="draw a random model library (HDF5)",
                          description="Draw a model library: parameters uniform within "
                          "their ranges, properties (and optionally rest-frame spectra) "
                          "computed by the C++ engine from the BC03 grids.")
    gen.add_argument("--n", type=positive_int, required=True, help="number of models")
    gen.add_argument("--out", required=True, help="output HDF5 file")
    gen.add_argument("--sfh-form", type=int, default=4, choices=range(5),
                     help="0 tau, 1 delayed tau, 2 log-normal, 3 Gaussian, 4 double power law")
    gen.add_argument("--dust-law", type=int, default=1, choices=(0, 1),
                     help="0 Charlot & Fall, 1 Calzetti")
    gen.add_argument("--dust-emission", action="store_true", help="DL07 dust emission")
    gen.add_argument("--no-nebular", action="store_true", help="no nebular emission")
    gen.add_argument("--agn", action="store_true", help="AGN torus (needs its template file)")
    gen.add_argument("--agn-templates", default=None, help="Nenkova08 template file or folder")
    gen.add_argument("--igm", action="store_true", help="IGM absorption")
    gen.add_argument("--igm-type", type=int, default=0, choices=(0, 1),
                     help="0 Madau 1995, 1 Inoue+2014")
    gen.add_argument("--range", type=_parse_range, action="append", metavar="NAME=LO,HI",
                     help=_RANGE_HELP)
    gen.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    gen.add_argument("--spectra", action="store_true", help="also store rest-frame spectra")
    gen.add_argument("--chunk", type=positive_int, default=5000,
                     help="models per batched call (the unit of work shared among MPI ranks)")
    gen.add_argument("--threads", type=_number(int, 0), default=None, help=threads_help)
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    gen.set_defaults(func=_cmd_models_generate, arg_names=FLAGS)

    fit = sub.add_parser("fit", help="fit a catalogue of SEDs with a model library (RDSPS, "
                                     "MCMC or nested sampling)",
                         description="Fit every SED (row) of a catalogue with a model library "
                         "(adaptive RDSPS: the library refined to a converged posterior; MCMC; or "
                         "nested sampling).",
                         epilog=CATALOG_HELP,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    fit.add_argument("catalog", help="input table of fluxes (columns below)")
    fit.add_argument("--library", required=True, help="model library (HDF5, either layout)")
    fit.add_argument("--filters", required=True, help="comma-separated filter names")
    fit.add_argument("--out", required=True, help="output table (.fits, .csv or .ecsv)")
    fit.add_argument("--unit", default="erg/s/cm2/A",
                     help="flux unit of the catalogue: erg/s/cm2/A (f_lambda, default), Jy, "
                          "uJy, AB (magnitudes); AB is converted at the filters' pivot "
                          "wavelengths, Jy and uJy as --jy-convention says")
    fit.add_argument("--jy-convention", default="instrument", choices=("instrument", "pivot"),
                     help="how the catalogue's Jy/uJy were quoted: 'instrument' (default) in "
                          "each survey's own convention, F_nu at a nominal wavelength for a "
                          "reference spectrum (WISE nu^-2; Spitzer IRAC, Herschel PACS/SPIRE "
                          "nu^-1; MIPS 10^4 K blackbody), not colour-corrected, as DustPedia "
                          "(CAAPR) and the survey catalogues quote them; other bands at their "
                          "pivot wavelengths. 'pivot': every band at its pivot wavelength, for "
                          "fluxes already colour-corrected to the band-mean F_nu (AB-like). "
                          "Recorded in the output table (FLUXUNIT, JYCONV)")
    fit.add_argument("--z-column", default="z", help="redshift column (default z)")
    fit.add_argument("--z", type=_number(float, 0.0, low_open=True), default=None,
                     help="one redshift for every SED (instead of the column)")
    fit.add_argument("--distance-column", default=None,
                     help="luminosity-distance column (Mpc): rows with a finite value are "
                          "fitted at the redshift of that distance instead of their z")
    fit.add_argument("--store", default=None,
                     help="folder of per-SED results: a rerun resumes it; it refuses to be "
                          "reused with other settings or another library (see --refit)")
    fit.add_argument("--refit", action="store_true",
                     help="discard the --store results made with other settings or another "
                          "library and fit again")
    fit.add_argument("--likelihood", default="gauss", choices=("gauss", "student_t"),
                     help="gauss: exp(-chi2/2); student_t: heavier tails that down-weight "
                          "outlying bands (default gauss)")
    fit.add_argument("--dof", type=_number(float, 0.0, low_open=True), default=3.0,
                     help="degrees of freedom of the Student-t likelihood (default 3)")
    fit.add_argument("--perc-chi2", type=_number(float, 0.0, 100.0, low_open=True),
                     default=100.0,
                     help="RDSPS: keep the models with the lowest chi2 up to this percentile "
                          "(default 100 = all)")
    fit.add_argument("--error-floor", type=_number(float, 0.0), default=0.0,
                     help="extra fractional error added in quadrature, on top of the "
                          "calibration errors (default 0)")
    fit.add_argument("--calibration-errors", type=_parse_calibration, default="auto",
                     metavar="auto|off|FRAC|BAND=FRAC,...",
                     help="per-band calibration errors added in quadrature: 'auto' (default) "
                          "from the instrument table (bands without an entry get 0 with a "
                          "warning), 'off', one fraction for every band, or band=fraction "
                          "pairs overriding the table")
    fit.add_argument("--upper-limit-nsigma", type=float, default=None, metavar="N",
                     help="treat fluxes below N sigma, and NaN fluxes with an error, as upper "
                          "limits at N sigma (default: off; explicit limits come from "
                          "boolean F_ul columns)")
    fit.add_argument("--method", default="rdsps", choices=("rdsps", "mcmc", "nested"),
                     help="RDSPS over the library refined to a converged posterior (adaptive "
                          "RDSPS), MCMC (emcee) with models made on the fly (started from the "
                          "refined RDSPS posterior, stopped on the autocorrelation time), or "
                          "nested sampling (nautilus; gives the Bayesian evidence)")
    fit.add_argument("--no-refine", action="store_true",
                     help="RDSPS: the original's plain RDSPS (the library pass only, not "
                          "refined; its effective sample size is usually far below a "
                          "converged posterior's); MCMC: start the walkers from the "
                          "library models")
    fit.add_argument("--nwalkers", type=_number(int, 2), default=32,
                     help="MCMC walkers (at least twice the free parameters; default 32)")
    fit.add_argument("--nsteps", type=positive_int, default=None,
                     help="MCMC steps per walker, a fixed count (default: stop when the chain "
                          "after burn-in is 50 autocorrelation times long and they are stable)")
    fit.add_argument("--max-steps", type=positive_int, default=20000,
                     help="MCMC steps per walker at most without --nsteps (default 20000)")
    fit.add_argument("--nsteps-cut", type=_number(int, 0), default=50,
                     help="MCMC burn-in steps dropped (default 50)")
    fit.add_argument("--thin", type=positive_int, default=1, help="MCMC thinning (default 1)")
    fit.add_argument("--seed", type=int, default=0,
                     help="random seed of adaptive RDSPS, MCMC and nested sampling (one per "
                          "SED derived from it; default 0)")
    fit.add_argument("--nlive", type=int, default=500, help="nested sampling: live points")
    fit.add_argument("--target-ess", type=int, default=1000,
                     help="nested sampling: stop at this effective sample size")
    fit.add_argument("--max-calls", type=int, default=100000,
                     help="nested sampling: at most this many likelihood calls per SED "
                          "(the fit is then flagged unconverged)")
    fit.add_argument("--keep-exploration", action="store_true",
                     help="nested sampling: keep the points of the exploration phase (fewer "
                          "calls, slightly biased posterior and evidence)")
    fit.add_argument("--compare", action="append", metavar="LIBRARY",
                     help="another model library (repeatable): fit every SED with each "
                          "library by nested sampling and print evidences and Bayes factors")
    fit.add_argument("--threads", type=_number(int, 0), default=None, help=threads_help)
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    fit.set_defaults(func=_cmd_fit, arg_names=FLAGS)
