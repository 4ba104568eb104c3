"""``pixedfit models generate`` and ``pixedfit fit``: model libraries and catalogue fits.

Catalogue format for ``pixedfit fit``: any table astropy reads (FITS, ECSV, CSV, ...) with,
for every filter ``F`` given by ``--filters``, a flux column ``F`` and an error column
``F_err`` in the unit ``--unit`` (default f_λ, erg s⁻¹ cm⁻² Å⁻¹; Jy, µJy and AB are
converted with the filters' pivot wavelengths), a redshift column (``--z-column``, default
``z``) unless ``--z`` fixes one redshift for all, and optionally an ``id`` column and, per
filter, a boolean column ``F_ul`` (True: ``F`` holds an upper limit and ``F_err`` its 1σ
noise). Errors follow :mod:`pixedfit.fitting.errors`: calibration errors from the instrument
table by default (``--calibration-errors``), an optional ``--error-floor``, and upper limits
(``F_ul`` columns, or ``--upper-limit-nsigma``) through the Gaussian CDF. The
output table has one row per SED: id, z, chi2_min, n_used and ``<param>_<stat>`` columns
(``--method mcmc`` fits with emcee instead, the library giving the model and the start).
Under ``mpiexec -n N`` the SEDs are shared among the ranks and rank 0 writes the table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

__all__ = ["add_subcommands"]


def _parse_range(text: str) -> tuple[str, tuple[float, float]]:
    try:
        name, values = text.split("=", 1)
        lo, hi = (float(v) for v in values.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"ranges look like name=lo,hi (got {text!r})") from exc
    return name.strip(), (lo, hi)


def _cmd_models_generate(args: argparse.Namespace) -> int:
    from .library import generate_library
    from .parallel import get_pool
    from .sps import SEDModel

    model = SEDModel(sfh_form=args.sfh_form, dust_law=args.dust_law,
                     duste_switch=args.dust_emission, add_neb_emission=not args.no_nebular,
                     add_agn=args.agn, add_igm_absorption=args.igm, igm_type=args.igm_type,
                     agn_templates=args.agn_templates)
    pool = get_pool()
    library = generate_library(model, args.n, ranges=dict(args.range or []), seed=args.seed,
                               path=args.out, spectra=args.spectra, pool=pool, chunk=args.chunk,
                               threads=args.threads, quiet=args.quiet)
    if pool.is_master:
        print(f"wrote {library.nmodels} models ({', '.join(library.params)}) to {args.out}")
    return 0


def _read_catalog(path: str, filters: list[str], unit: str, z_column: str, z_fixed: float | None):
    from astropy.table import Table

    from .filters import cwave_filters
    from .units import convert_flux_unit

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
        wave = cwave_filters(filters)
        good = np.isfinite(flux) & np.isfinite(err)
        conv_f = np.full_like(flux, np.nan)
        conv_e = np.full_like(err, np.nan)
        f, e = convert_flux_unit(np.where(good, flux, 1.0), np.broadcast_to(wave, flux.shape),
                                 unit, "erg/s/cm2/A", flux_err=np.where(good, np.abs(err), 1.0))
        conv_f[good], conv_e[good] = f[good], e[good]
        flux, err = conv_f, conv_e
    if z_fixed is not None:
        z = np.full(len(table), float(z_fixed))
    elif z_column in table.colnames:
        z = np.asarray(table[z_column], dtype=np.float64)
    else:
        raise ValueError(f"catalogue {path} has no redshift column {z_column!r}; pass --z")
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
    return ids, flux, err, z, upper


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
    from astropy.table import Table

    from .fitting import fit_catalog
    from .fitting.results import ResultStore
    from .library import read_library
    from .parallel import get_pool

    filters = [f.strip() for f in args.filters.split(",") if f.strip()]
    ids, flux, err, z, upper = _read_catalog(args.catalog, filters, args.unit, args.z_column,
                                             args.z)
    library = read_library(args.library, spectra=False)
    pool = get_pool()
    store = ResultStore(args.store) if args.store else None
    results = fit_catalog(flux, err, filters, z, library=library, ids=ids, store=store,
                          pool=pool, likelihood=args.likelihood, dof=args.dof,
                          perc_chi2=args.perc_chi2, error_floor=args.error_floor,
                          calibration=args.calibration_errors, upper_limits=upper,
                          upper_limit_nsigma=args.upper_limit_nsigma, mask_invalid=True,
                          threads=args.threads, quiet=args.quiet,
                          method=args.method, nwalkers=args.nwalkers, nsteps=args.nsteps,
                          nsteps_cut=args.nsteps_cut, thin=args.thin, seed=args.seed)
    if pool.is_master:
        rows = []
        for key, zi, res in zip(ids, z, results, strict=True):
            row = {"id": key, "z": float(zi), "chi2_min": res.chi2_min,
                   "chi2_dof": res.diagnostics.get("chi2_dof", np.nan),
                   "ndof": res.diagnostics.get("ndof", -1), "n_used": res.n_used}
            for name, stats in res.summary.items():
                for stat, value in stats.items():
                    row[f"{name}_{stat}"] = value
            rows.append(row)
        from ._paths import atomic_path

        out = Path(args.out)
        with atomic_path(out) as tmp:
            Table(rows=rows).write(tmp, format=_table_format(out), overwrite=True)
        print(f"fitted {len(rows)} SEDs; wrote {out}")
    return 0


def _table_format(path: Path) -> str:
    suffix = path.suffix.lower()
    return {".fits": "fits", ".csv": "ascii.csv", ".ecsv": "ascii.ecsv"}.get(suffix, "ascii.ecsv")


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    """Register ``models`` and ``fit`` on the ``pixedfit`` sub-command parser."""
    models = sub.add_parser("models", help="model libraries")
    msub = models.add_subparsers(dest="models_command", required=True)
    gen = msub.add_parser("generate", help="draw a random model library (HDF5)")
    gen.add_argument("--n", type=int, required=True, help="number of models")
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
    gen.add_argument("--range", type=_parse_range, action="append",
                     help="parameter range, e.g. log_age=-1,1.1 (repeatable)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--spectra", action="store_true", help="also store rest-frame spectra")
    gen.add_argument("--chunk", type=int, default=5000,
                     help="models per batched call (the unit of work shared among MPI ranks)")
    gen.add_argument("--threads", type=int, default=None)
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    gen.set_defaults(func=_cmd_models_generate)

    fit = sub.add_parser("fit", help="fit a catalogue of SEDs with a model library (RDSPS)")
    fit.add_argument("catalog", help="input table (see the module docstring for columns)")
    fit.add_argument("--library", required=True, help="model library (HDF5, either layout)")
    fit.add_argument("--filters", required=True, help="comma-separated filter names")
    fit.add_argument("--out", required=True, help="output table (.fits, .csv or .ecsv)")
    fit.add_argument("--unit", default="erg/s/cm2/A", help="flux unit: erg/s/cm2/A, Jy, uJy")
    fit.add_argument("--z-column", default="z", help="redshift column (default z)")
    fit.add_argument("--z", type=float, default=None, help="one redshift for every SED")
    fit.add_argument("--store", default=None, help="folder of per-SED results (resumable)")
    fit.add_argument("--likelihood", default="gauss", choices=("gauss", "student_t"))
    fit.add_argument("--dof", type=float, default=3.0)
    fit.add_argument("--perc-chi2", type=float, default=100.0)
    fit.add_argument("--error-floor", type=float, default=0.0,
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
    fit.add_argument("--method", default="rdsps", choices=("rdsps", "mcmc"),
                     help="RDSPS over the library, or MCMC (emcee) with models made on the fly "
                          "(started from the library's best models)")
    fit.add_argument("--nwalkers", type=int, default=100, help="MCMC walkers")
    fit.add_argument("--nsteps", type=int, default=600, help="MCMC steps per walker")
    fit.add_argument("--nsteps-cut", type=int, default=50, help="MCMC burn-in steps dropped")
    fit.add_argument("--thin", type=int, default=1, help="MCMC thinning")
    fit.add_argument("--seed", type=int, default=0, help="MCMC random seed")
    fit.add_argument("--threads", type=int, default=None)
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    fit.set_defaults(func=_cmd_fit)
