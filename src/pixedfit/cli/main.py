"""The ``pixedfit`` command line.

``pixedfit --version``; ``pixedfit demo``; ``pixedfit run config.toml``;
``pixedfit filters list|show|add|remove|rename``; ``pixedfit instruments list|show``;
``pixedfit models generate``;
``pixedfit fit`` (see :mod:`pixedfit.cli.fit`).
Errors in the input are reported on one line (``pixedfit: error: ...``) with exit status 2,
naming the command-line flag or the configuration key (``section.key``) that set the value
rather than the Python argument (:func:`user_message`). Output into a closed pipe
(``pixedfit filters list | head``) ends quietly. Each sub-command imports its modules when
it runs, so ``pixedfit --help`` loads none of the science stack.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings
from collections.abc import Mapping, Sequence

from .. import __version__
from .fit import add_subcommands

__all__ = ["main", "user_message"]


def user_message(exc: BaseException, names: Mapping[str, str] | None = None) -> str:
    """A line describing ``exc`` for the user of a command (plus the items of a list of
    problems, such as the configuration check gives).

    Parameters
    ----------
    exc : exception
        The error. For an error that wraps another (a failed pool or MPI task, a failed
        SED), the innermost cause is described.
    names : mapping, optional
        Python argument name → what the user wrote (a flag such as ``--dof`` or a
        configuration key such as ``fitting.dof``); whole-word occurrences followed by
        "must", "should", ":", "=" or "[" are replaced.
    """
    root = exc
    while isinstance(root, RuntimeError) and root.__cause__ is not None:
        root = root.__cause__
    text = str(root).strip()
    if text:  # the first line, and the items of a list of problems ("  - ...") if any
        lines = text.splitlines()
        text = "\n".join([lines[0], *(ln for ln in lines[1:] if ln.startswith("  - "))])
    else:
        text = type(root).__name__
    if names:
        pattern = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
        text = re.sub(rf"(?<![\w.\-'\"])({pattern})(?=\[| must| should|: | =)",
                      lambda m: names[m.group(1)], text)
    return text


def _config_keys() -> dict[str, str]:
    """Python argument names → ``section.key`` of the ``pixedfit run`` configuration."""
    from ..pipeline import DEFAULTS

    seen: dict[str, list[str]] = {}
    for section, values in DEFAULTS.items():
        for key in values:
            seen.setdefault(key, []).append(f"{section}.{key}")
    keys = {k: v[0] for k, v in seen.items() if len(v) == 1}
    keys.setdefault("n", "models.nmodels")
    for name in ("likelihood", "dof", "perc_chi2", "error_floor", "upper_limit_nsigma"):
        keys[f"errors.{name}"] = f"fitting.{name}"  # the fitting stage's ErrorModel
    return keys


def _cmd_filters_list(args: argparse.Namespace) -> int:
    from .. import filters as _filters

    for name in _filters.list_filters(match=args.match):
        print(f"{name:<28} {_filters.filter_family(name)}".rstrip())
    return 0


def _cmd_filters_show(args: argparse.Namespace) -> int:
    from .. import filters as _filters

    wave, trans = _filters.get_filter_curve(args.name)
    cwave = _filters.cwave_filters(args.name)
    pivot = _filters.pivot_wavelength(wave, trans)
    print(f"name: {args.name}")
    family = _filters.filter_family(args.name)
    if family:
        print(f"family: {family}")
    print(f"pivot wavelength: {pivot:.2f} A")
    if abs(cwave - pivot) > 1e-6 * pivot:
        print(f"central wavelength (given when it was added): {cwave:.2f} A")
    print(f"range: {wave[0]:.2f} - {wave[-1]:.2f} A ({wave.size} samples)")
    if args.curve:
        print("# wave[A] transmission")
        for w, t in zip(wave, trans, strict=True):
            print(f"{w:.6g} {t:.6g}")
    return 0


def _cmd_filters_add(args: argparse.Namespace) -> int:
    import numpy as np

    from .. import filters as _filters

    try:
        data = np.loadtxt(args.file, usecols=(0, 1), ndmin=2)
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"cannot read a two-column curve (wave [A], trans) from {args.file}: {exc}"
        ) from exc
    _filters.add_filter(
        args.name, data[:, 0], data[:, 1], cwave=args.cwave, overwrite=args.overwrite
    )
    print(f"added filter {args.name!r} ({data.shape[0]} samples)")
    return 0


def _cmd_filters_remove(args: argparse.Namespace) -> int:
    from .. import filters as _filters

    _filters.remove_filter(args.name)
    print(f"removed filter {args.name!r}")
    return 0


def _cmd_filters_rename(args: argparse.Namespace) -> int:
    from .. import filters as _filters

    _filters.rename_filter(args.old, args.new)
    print(f"renamed filter {args.old!r} to {args.new!r}")
    return 0


def _cmd_instruments_list(args: argparse.Namespace) -> int:
    from ..instruments import list_instruments

    rows = [("filter", "survey", "instrument", "pix[\"]", "FWHM[\"]", "unit", "calib",
             "zero point")]
    for inst in list_instruments(args.survey):
        zp = inst.zp_keyword or ("" if inst.zeropoint is None else f"{inst.zeropoint:g} AB")
        rows.append((inst.filter, inst.survey, inst.instrument, f"{inst.pixel_scale:g}",
                     f"{inst.psf_fwhm:g}", inst.unit, f"{100 * inst.calib_err:.1f}%", zp))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _cmd_instruments_show(args: argparse.Namespace) -> int:
    from .. import filters as _filters
    from ..instruments import (
        conversion_wavelength,
        get_instrument,
        instrument_aliases,
        instrument_key,
    )

    inst = get_instrument(args.name)
    key = instrument_key(args.name) or args.name
    print(f"filter: {inst.filter}" + (f" (entry {key})" if key != inst.filter else ""))
    print(f"survey: {inst.survey}")
    print(f"instrument: {inst.instrument}")
    print(f"pixel scale: {inst.pixel_scale:g} arcsec")
    print(f"PSF FWHM: {inst.psf_fwhm:g} arcsec")
    print(f"native unit: {inst.unit}")
    print(f"calibration error: {100 * inst.calib_err:.1f} %")
    for name in ("zp_keyword", "zeropoint", "flam_per_count", "jy_per_dn", "vega_flam",
                 "beam_area", "ref_wave", "ref_alpha", "ref_temperature"):
        value = getattr(inst, name)
        if value is not None:
            print(f"{name}: {value}")
    if inst.unit_scale != 1.0:
        print(f"unit_scale: {inst.unit_scale:.6g}")
    if inst.via_jansky and _filters.builtin_curve_name(inst.filter) is not None:
        print(f"Jy -> f_lambda at: {conversion_wavelength(inst):.1f} Angstrom")
    aliases = [a for a in instrument_aliases(key) if a != inst.filter]
    if key != inst.filter:
        aliases = [key, *aliases]
    print(f"other names: {', '.join(aliases) or 'none'}")
    curve = _filters.builtin_curve_name(inst.filter)
    print("filter curve: " + (f"astro-sedpy {curve}" if curve else
                              "not built in (add it: pixedfit filters add NAME FILE)"))
    print(f"sources: {inst.notes}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    result = run_demo(output_dir=args.output, seed=args.seed, stamp=args.stamp,
                      nmodels=args.nmodels, quiet=args.quiet)
    return 0 if result.passed else 1


def _cmd_run(args: argparse.Namespace) -> int:
    from ..pipeline import run_pipeline

    pipe = run_pipeline(args.config, quiet=args.quiet or None, output_dir=args.output)
    if pipe.pool.is_master and not args.quiet:
        ran = ", ".join(pipe.ran) or "nothing (all stages unchanged)"
        print(f"pixedfit run: ran {ran}; outputs in {pipe.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``pixedfit`` command."""
    parser = argparse.ArgumentParser(
        prog="pixedfit", description="Spatially resolved SED analysis of galaxies."
    )
    parser.add_argument("--version", action="version", version=f"pixedfit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="synthetic galaxy → full pipeline → report")
    demo.add_argument("--output", default="pixedfit_demo",
                      help="output folder (default ./pixedfit_demo)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--stamp", type=int, default=96,
                      help="stamp size in GALEX pixels of 1.5 arcsec (96)")
    demo.add_argument("--nmodels", type=int, default=5000, help="library size (5000)")
    demo.add_argument("--quiet", action="store_true", help="no progress output")
    demo.set_defaults(func=_cmd_demo)

    run = sub.add_parser("run", help="run the pipeline of a TOML configuration file")
    run.add_argument("config", help="configuration file (see the README)")
    run.add_argument("--output", default=None, metavar="DIR",
                     help="output folder (overrides run.output_dir of the configuration)")
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.set_defaults(func=_cmd_run, arg_names=None)

    add_subcommands(sub)

    inst = sub.add_parser("instruments", help="the instrument table (pixel scale, PSF, unit, "
                          "calibration error)")
    isub = inst.add_subparsers(dest="instruments_command", required=True)
    p = isub.add_parser("list", help="list the built-in instrument entries")
    p.add_argument("--survey", help="only this survey (galex, sdss, des, hst, jwst...)")
    p.set_defaults(func=_cmd_instruments_list)
    p = isub.add_parser("show", help="show one entry, its other names and its sources")
    p.add_argument("name")
    p.set_defaults(func=_cmd_instruments_show)

    filt = sub.add_parser("filters", help="manage the filter library")
    fsub = filt.add_subparsers(dest="filters_command", required=True)
    p = fsub.add_parser("list", help="list filter names")
    p.add_argument("--match", help="only names or families (e.g. DES, UKIDSS, NIRCam) "
                   "containing this text (case-insensitive)")
    p.set_defaults(func=_cmd_filters_list)
    p = fsub.add_parser("show", help="show a filter's pivot wavelength and range")
    p.add_argument("name")
    p.add_argument("--curve", action="store_true", help="also print the curve")
    p.set_defaults(func=_cmd_filters_show)
    p = fsub.add_parser("add", help="add a filter from a two-column text file (wave [A], trans)")
    p.add_argument("name")
    p.add_argument("file")
    p.add_argument("--cwave", type=float, default=None,
                   help="central wavelength in A to use instead of the pivot wavelength")
    p.add_argument("--overwrite", action="store_true", help="replace an existing filter")
    p.set_defaults(func=_cmd_filters_add)
    p = fsub.add_parser("remove", help="remove (or hide a built-in) filter")
    p.add_argument("name")
    p.set_defaults(func=_cmd_filters_remove)
    p = fsub.add_parser("rename", help="rename a filter")
    p.add_argument("old")
    p.add_argument("new")
    p.set_defaults(func=_cmd_filters_rename)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pixedfit`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.formatwarning = _format_warning
        try:
            return int(args.func(args))
        except BrokenPipeError:
            # the reader of our output went away (``pixedfit filters list | head``): stop
            # quietly, as Unix tools do, and keep Python from failing again on the final flush
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            except (OSError, ValueError):  # stdout without a file descriptor (tests)
                pass
            return 141  # 128 + SIGPIPE, the status of a tool stopped by a closed pipe
        except (ValueError, TypeError, OSError, RuntimeError) as exc:
            names = getattr(args, "arg_names", {})
            if names is None:  # pixedfit run: the configuration keys
                names = _config_keys()
            print(f"pixedfit: error: {user_message(exc, names)}", file=sys.stderr)
            return 2


def _format_warning(message: Warning | str, category: type[Warning], filename: str,
                    lineno: int, line: str | None = None) -> str:
    """Warnings on one line, like the errors (no source line of pixedfit's code)."""
    return f"pixedfit: warning: {message}\n"
