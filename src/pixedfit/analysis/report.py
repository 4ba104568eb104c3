"""One static HTML page per pipeline run (``report/index.html`` + ``report/img/*.png``).

Sections: run metadata and stage timings; inputs (filters and their curves); the flux-map
stamps of every band with the galaxy region; the bin map; the property maps; example SED
fits with their corner plots and SFHs; and, when the configuration names a truth file, the
recovered-versus-true comparison. Everything is a relative link, so the folder can be
moved or archived as a whole. Nothing is fetched from the network.
"""

from __future__ import annotations

import html
import json
import math
import os
import platform
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from .. import __version__
from .._paths import atomic_path

__all__ = ["choose_examples", "config_toml", "format_value", "write_report"]

PathLike = str | os.PathLike[str]

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;
color:#222}
h1{border-bottom:2px solid #446}h2{margin-top:2em;border-bottom:1px solid #aac}
table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccd;padding:3px 8px;
text-align:right}th{background:#eef}td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #ddd;margin:4px 0}
td.wrap{text-align:left;white-space:normal;overflow-wrap:anywhere;max-width:40em}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f8f8fb;padding:0.6em;
border:1px solid #ddd}
.grid{display:flex;flex-wrap:wrap;gap:6px}.grid figure{margin:0;width:180px}
figcaption{font-size:small;text-align:center}.ok{color:#060}.bad{color:#a00}
code{background:#f4f4f8;padding:1px 3px}
.banner{background:#fee;border:2px solid #a00;padding:0.6em 1em;color:#600}
"""


def choose_examples(binned: Any, results: Mapping[int, Any], n: int = 3) -> list[int]:
    """Bins to show: the brightest, the faintest regular bin and ones in between (by the
    reference-band flux per pixel), skipping failed fits and the leftover bin.

    Parameters
    ----------
    binned : BinnedCube
        The binning (bin fluxes, leftover flags).
    results : mapping int → FitResult or bool
        Bin id → its fit, or → whether the fit succeeded (so that the results themselves
        need not all be read).
    n : int
        How many bins to pick.

    Returns
    -------
    list of int
        Bin ids, brightest first (fewer than ``n`` when fewer bins qualify).
    """
    ok = [b for b, r in sorted(results.items())
          if (bool(r) if isinstance(r, bool | np.bool_) else r.ok)
          and not binned.leftover[b - 1]]
    if not ok or n <= 0:
        return []
    ref = int(binned.params.get("ref_band", binned.nbands // 2))
    flux = np.array([binned.bin_flux[b - 1, ref] / binned.bin_npix[b - 1] for b in ok])
    order = [ok[i] for i in np.argsort(-flux)]
    picks = np.unique(np.linspace(0, len(order) - 1, min(n, len(order))).round().astype(int))
    return [order[i] for i in picks]


def _img(rel: str, alt: str) -> str:
    return f'<img src="{html.escape(rel)}" alt="{html.escape(alt)}" loading="eager">'


def _table(header: list[str], rows: list[list[Any]], wrap: Sequence[int] = ()) -> str:
    """An HTML table; the columns ``wrap`` hold long text that wraps."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(("<td class='wrap'>" if k in wrap else "<td>")
                         + f"{html.escape(str(c))}</td>" for k, c in enumerate(row)) + "</tr>"
        for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def format_value(value: Any) -> str:
    """A value as a person reads it: floats to 6 significant digits (1.5000000000000118 →
    1.5), sequences comma-separated in full, mappings as key=value."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float | np.floating):
        return f"{float(value):.6g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={format_value(v)}" for k, v in value.items())
    if isinstance(value, list | tuple | np.ndarray):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        value = float(value)
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str | os.PathLike):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, list | tuple | np.ndarray):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()
                               if v is not None) + "}"
    return json.dumps(str(value))


def _toml_key(key: Any) -> str:
    key = str(key)
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _wrap_toml(line: str, width: int) -> list[str]:
    """Split a long ``key = [a, b, ...]`` line after commas (TOML arrays may span lines)."""
    if len(line) <= width or " = [" not in line or not line.endswith("]"):
        return [line]
    key, rest = line.split(" = [", 1)
    items = [i.strip() for i in re.split(r",(?=(?:[^\"]*\"[^\"]*\")*[^\"]*$)", rest[:-1])]
    out, current = [f"{key} = ["], "    "
    for item in items:
        if len(current) + len(item) + 2 > width and current.strip():
            out.append(current.rstrip())
            current = "    "
        current += item + ", "
    out.append(current.rstrip())
    out.append("]")
    return out


def config_toml(cfg: Mapping[str, Any], width: int = 88) -> str:
    """The configuration as TOML that ``pixedfit run`` reads back (unset keys, which TOML
    cannot hold, become comments; long arrays are wrapped at ``width`` characters).

    Parameters
    ----------
    cfg : mapping
        The configuration, section → {key: value} (keys starting with ``_`` are left out).
    width : int
        Line width of wrapped arrays, characters.

    Returns
    -------
    str
        The TOML text, ending with a newline.
    """
    lines: list[str] = []
    for section, values in cfg.items():
        if str(section).startswith("_") or not isinstance(values, Mapping):
            continue
        lines.append(f"[{_toml_key(section)}]")
        tables = []
        for key, value in values.items():
            if value is None:
                lines.append(f"# {_toml_key(key)} = (not set)")
            elif isinstance(value, Mapping) and value:
                tables.append((key, value))
            else:
                lines.extend(_wrap_toml(f"{_toml_key(key)} = {_toml_value(value)}", width))
        for key, value in tables:
            lines.append(f"[{_toml_key(section)}.{_toml_key(key)}]")
            for k, v in value.items():
                if v is None:
                    lines.append(f"# {_toml_key(k)} = (not set)")
                else:
                    lines.extend(_wrap_toml(f"{_toml_key(k)} = {_toml_value(v)}", width))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _stamps(cube: Any, folder: Path, stamp_dir: Path | None = None) -> list[tuple[str, str]]:
    """One PNG per band: the whole PSF-matched stamp (``stamp_<band>.fits`` of the image
    stage when present, else the flux map) with the region outlined."""
    from .plots import plot_stamp_region

    flagged = bool(cube.header.get("REGFLAG", False))
    out = []
    for b, name in enumerate(cube.filters):
        img = cube.flux[b]
        path = None if stamp_dir is None else stamp_dir / f"stamp_{name}.fits"
        if path is not None and path.is_file():
            from astropy.io import fits

            data = fits.getdata(path, 0)
            if data is not None and data.shape == cube.region.shape:
                img = np.asarray(data, dtype=np.float64)
        rel = f"img/stamp_{name}.png"
        plot_stamp_region(img, cube.region, flagged=flagged, path=folder / rel)
        out.append((name, rel))
    return out


def _region_banner(cube: Any) -> str:
    """A warning banner when the image stage flagged the galaxy region (else empty)."""
    hdr = cube.header
    if not hdr.get("REGFLAG", False):
        return ""
    frac = float(hdr.get("REGFRAC", np.mean(cube.region)))
    edge = int(hdr.get("REGEDGE", 0))
    what = f"covers {100 * frac:.1f} % of the stamp"
    if edge:
        what += f" and touches its edge ({edge} border pixels)"
    why = str(hdr.get("REGWHY", ""))
    return ("<p class='banner'><b>Galaxy region warning:</b> the region " + html.escape(what)
            + (f" (from the {html.escape(why)})" if why else "") + ". It probably includes "
            "sky, or the galaxy is larger than the stamp: enlarge <code>images.stamp_size"
            "</code>, raise <code>images.segmentation_thresh</code> or give "
            "<code>images.region = \"mask\"</code>.</p>")


def _error_budget(cube: Any, binned: Any) -> list[list[Any]]:
    """Per band: calibration error (flux-map header ``CALERR<i>``), the S/N ceiling it sets,
    and the median statistical S/N of the region's pixels and of the bins."""
    rows = []
    for i, name in enumerate(cube.filters):
        cal = cube.header.get(f"CALERR{i}")
        with np.errstate(divide="ignore", invalid="ignore"):
            snr = cube.flux[i][cube.region] / cube.flux_err[i][cube.region]
        rows.append([name, "n/a" if cal is None else f"{100 * float(cal):.1f}",
                     "n/a" if not cal else f"{1 / float(cal):.0f}",
                     f"{np.nanmedian(snr):.1f}", f"{np.nanmedian(binned.bin_snr[:, i]):.1f}"])
    return rows


def _truth_maps(pipe: Any, folder: Path, pm: Any) -> None:
    """True (PSF-matched) and recovered maps side by side, on common colour scales."""
    from astropy.io import fits
    from matplotlib.figure import Figure

    from .plots import save_figure

    kpc2 = (pm.kpc_per_pixel or 1.0) ** 2
    with fits.open(pipe.cfg["report"]["truth"]) as hdul:
        data = {h.name: np.asarray(h.data, float) for h in hdul[1:] if h.data is not None}
    stat = "p50" if pm.method == "mcmc" else "mean"
    with np.errstate(divide="ignore", invalid="ignore"):
        panels = [
            ("log Σ* [M☉/kpc²]", np.log10(data["MASS"] / kpc2),
             pm.get("log_sigma_mass", stat, "pix") if "log_sigma_mass" in pm.params("pix")
             else pm.get("log_sigma_mass", stat)),
            ("log Σ_SFR [M☉/yr/kpc²]", np.log10(data["SFR"] / kpc2),
             pm.get("log_sigma_sfr", stat, "pix") if "log_sigma_sfr" in pm.params("pix")
             else pm.get("log_sigma_sfr", stat)),
        ]
    if "DUST2" in data and "dust2" in pm.params("bin"):
        av = 2.5 / np.log(10.0)
        panels.append(("A_V [mag]", av * data["DUST2"], av * pm.get("dust2", stat)))
    fig = Figure(figsize=(8, 3.4 * len(panels)))
    axes = np.atleast_2d(fig.subplots(len(panels), 2))
    for row, (label, true, rec) in zip(axes, panels, strict=True):
        true = np.where(pm.region, true, np.nan)
        finite = true[np.isfinite(true)]
        vmin, vmax = np.percentile(finite, [2, 98]) if finite.size else (0, 1)
        for ax, arr, what in ((row[0], true, "true"), (row[1], rec, "recovered")):
            im = ax.imshow(arr, origin="lower", vmin=vmin, vmax=vmax, cmap="viridis",
                           interpolation="nearest")
            ax.set_title(f"{what} {label}", fontsize="small")
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, shrink=0.85)
    save_figure(fig, folder / "img/truth_maps.png")


def _comparison(pipe: Any, folder: Path, pm: Any) -> str:
    from matplotlib.figure import Figure

    from .maps import compare_with_truth
    from .plots import save_figure

    cfg = pipe.cfg["report"]
    metrics = compare_with_truth(pipe.path("maps", "maps.fits"),
                                 pipe.path("binning", "binned.fits"), cfg["truth"],
                                 snr_bands=cfg["truth_snr_bands"])
    fig = Figure(figsize=(4.2 * len(metrics), 4))
    axes = np.atleast_1d(fig.subplots(1, len(metrics)))
    units = {"log_sigma_mass": "dex", "log_sigma_sfr": "dex", "A_V": "mag"}
    rows = []
    for ax, (key, m) in zip(axes, metrics.items(), strict=True):
        if m["n"]:
            ax.plot(m["true"], m["recovered"], "o", ms=4, alpha=0.7)
            lo = min(m["true"].min(), m["recovered"].min())
            hi = max(m["true"].max(), m["recovered"].max())
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel(f"true {key}")
        ax.set_ylabel(f"recovered {key}")
        ax.set_title(f"median |Δ| = {m['median_abs']:.3f} {units.get(key, '')}",
                     fontsize="small")
        rows.append([key, m["n"], f"{m['median_abs']:.3f}", f"{m['median']:+.3f}",
                     units.get(key, "")])
    fig.tight_layout()
    save_figure(fig, folder / "img/truth_comparison.png")
    _truth_maps(pipe, folder, pm)
    snr = cfg["truth_snr_bands"] or "all bands"
    return (f"<h2>Recovered versus true</h2><p>Bins with S/N ≥ 10 in {html.escape(str(snr))}"
            f" (leftover excluded); truth: <code>{html.escape(str(cfg['truth']))}</code>.</p>"
            + _table(["quantity", "bins", "median |Δ|", "median Δ", "unit"], rows)
            + _img("img/truth_comparison.png", "recovered versus true")
            + _img("img/truth_maps.png", "true and recovered maps"))


def write_report(pipe: Any, folder: PathLike) -> Path:
    """Write the report of a finished :class:`~pixedfit.pipeline.Pipeline` run.

    Parameters
    ----------
    pipe : Pipeline
        The run (its configuration, stage records and output paths).
    folder : path-like
        Output folder (``index.html`` and ``img/``).

    Returns
    -------
    Path
        The HTML page.
    """
    from ..cubes import BinnedCube, FluxCube, read_cube
    from ..filters import cwave_filters
    from ..fitting.results import ResultStore
    from ..library import read_library
    from .maps import PropertyMaps, load_fit_results
    from .plots import (
        plot_bin_map,
        plot_corner,
        plot_filters,
        plot_maps,
        plot_sed,
        plot_sfh,
        posterior_samples,
    )

    folder = Path(folder)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    cfg = pipe.cfg
    cube = read_cube(pipe.cube_path())
    phot = cast(FluxCube, getattr(cube, "photometry", cube))  # the cube's photometry
    binned = BinnedCube.read(pipe.path("binning", "binned.fits"))
    pm = PropertyMaps.read(pipe.path("maps", "maps.fits"))
    store = ResultStore(pipe.path("fitting"))
    status = _fit_status(pm)  # from the maps: only the example fits are read below
    if status is None:
        status = {b: r.ok for b, r in load_fit_results(store).items()}
    parts: list[str] = []
    title = html.escape(str(cfg["run"]["name"]))
    parts.append(f"<h1>pixedfit report: {title}</h1>")
    parts.append(_region_banner(phot))

    # ---- metadata and timings
    meta: list[list[Any]] = [
        ["pixedfit", __version__],
        ["written", time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())],
        ["python", platform.python_version()], ["machine", platform.platform()],
        ["MPI ranks", getattr(pipe.pool, "size", 1)], ["output", str(pipe.out)],
        ["redshift", format_value(phot.z)],
        ["pixel scale [arcsec]", format_value(phot.pixel_scale)],
        ["kpc per pixel", f"{pm.kpc_per_pixel:.4f}" if pm.kpc_per_pixel else "n/a"],
        ["bins", binned.nbins], ["fit method", cfg["fitting"]["method"]]]
    parts.append("<h2>Run</h2>" + _table(["item", "value"], meta))
    rows = []
    total = 0.0
    for name, rec in pipe.records.items():
        if name == "report":
            continue
        rows.append([name, f"{rec.seconds:.1f}", rec.finished, "cached" if rec.cached else
                     "ran", format_value(dict(rec.info))])
        total += rec.seconds
    parts.append("<h3>Stages</h3>" + _table(["stage", "seconds", "finished", "this run",
                                               "info"], rows, wrap=(4,))
                 + f"<p>Total of the recorded stage times: {total:.1f} s.</p>")

    # ---- inputs
    waves = cwave_filters(list(phot.filters))
    rows = [[f, f"{w:.0f}", f"{np.nanmedian(binned.bin_snr[:, i]):.1f}"]
            for i, (f, w) in enumerate(zip(phot.filters, waves, strict=True))]
    plot_filters(phot.filters, path=folder / "img/filters.png")
    parts.append("<h2>Inputs</h2>" + _table(["filter", "pivot [Å]", "median bin S/N"], rows)
                 + _img("img/filters.png", "filter curves"))
    parts.append("<h3>Error budget</h3><p>Calibration (zero-point) error of each band, the "
                 "S/N it caps a flux at, and the median statistical S/N of the region's "
                 "pixels and of the bins.</p>"
                 + _table(["filter", "calibration error [%]", "S/N ceiling",
                           "median pixel S/N", "median bin S/N"], _error_budget(phot, binned)))
    stamps = _stamps(phot, folder, pipe.path("images"))
    parts.append("<h2>Stamps and galaxy region</h2><p>PSF-matched stamps (asinh scale); "
                 f"the region ({int(phot.region.sum())} pixels, "
                 f"{100 * float(np.mean(phot.region)):.0f} % of the stamp) is outlined.</p>"
                 "<div class='grid'>" + "".join(
                     f"<figure>{_img(rel, name)}<figcaption>{html.escape(name)}</figcaption>"
                     "</figure>" for name, rel in stamps) + "</div>")

    # ---- bins and maps
    plot_bin_map(binned, path=folder / "img/bin_map.png")
    parts.append(f"<h2>Bins</h2><p>{binned.nbins} bins ({_leftover_text(binned, pm)}).</p>"
                 + _img("img/bin_map.png", "bin map"))
    plot_maps(pm, path=folder / "img/maps.png")
    parts.append("<h2>Property maps</h2><p>Pixel maps of additive quantities (mass and SFR "
                 "shared out by reference-band flux), bin maps otherwise; units on the colour "
                 "bars and in each map's <code>BUNIT</code> in <code>maps/maps.fits</code>."
                 "</p>" + _flag_text(pm)
                 + _img("img/maps.png", "property maps"))

    # ---- example fits
    examples = choose_examples(binned, status, int(cfg["report"]["n_examples"]))
    results = {b: store.load(f"bin{b}") for b in examples}
    if examples:
        library = read_library(pipe.library_path(), spectra=False)
        model = None
        try:
            model = library.model()
        except ValueError:
            pass
        sfh_form = library.config.get("sfh_form")
        parts.append("<h2>Example fits</h2>")
        photometry: dict[Any, Any] = {}  # one library photometry per (bands, z), shared
        for b in examples:
            res = results[b]
            samples = None
            try:
                key = (tuple(res.filters), res.z)
                if (getattr(res, "samples", None) is None and res.method == "rdsps"
                        and res.z is not None and key not in photometry):
                    photometry[key] = library.photometry(list(res.filters), res.z,
                                                         threads=pipe.threads)
                samples = posterior_samples(res, library, models=photometry.get(key),
                                            threads=pipe.threads)
            except ValueError:
                pass
            plot_sed(res, model=model, samples=samples, title=f"bin {b}",
                     path=folder / f"img/sed_bin{b}.png")
            block = [f"<h3>Bin {b}</h3><p>χ²<sub>min</sub> = {res.chi2_min:.2f} "
                     f"({res.n_bands_used} bands); {_sample_text(res, samples)}.</p>",
                     _img(f"img/sed_bin{b}.png", f"SED of bin {b}")]
            if samples is not None:
                plot_corner(samples, params=cfg["report"]["corner_params"],
                            path=folder / f"img/corner_bin{b}.png")
                block.append(_img(f"img/corner_bin{b}.png", f"corner plot of bin {b}"))
                if sfh_form is not None:
                    plot_sfh(samples, int(sfh_form), title=f"bin {b}",
                             path=folder / f"img/sfh_bin{b}.png")
                    block.append(_img(f"img/sfh_bin{b}.png", f"SFH of bin {b}"))
            parts.append("".join(block))

    if cfg["report"]["truth"]:
        parts.append(_comparison(pipe, folder, pm))

    parts.append("<h2>Configuration</h2><p>As TOML (<code>pixedfit run</code> reads it "
                 "back), with every default filled in.</p><pre>"
                 + html.escape(config_toml(cfg)) + "</pre>")
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>pixedfit report: {title}</title><style>{_CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")
    path = folder / "index.html"
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path


def _leftover_text(binned: Any, pm: Any) -> str:
    """The leftover bin in words: its size, whether it was fitted, negative bands."""
    from .maps import FLAG_NOT_FITTED

    b = binned.leftover_bin
    if not b:
        return "no leftover bin"
    npix = int(binned.bin_npix[b - 1])
    fitted = not bool(pm.bin_flags()[b - 1] & FLAG_NOT_FITTED) if b <= pm.nbins else False
    text = (f"leftover bin {b}: {npix} pixels that could not reach the S/N target, "
            + ("fitted but flagged (<code>[fitting] fit_leftover = true</code>)" if fitted
               else "not fitted, blank in the maps"))
    negative = binned.negative_bands(b)
    if negative:
        text += "; its summed flux is negative in " + html.escape(", ".join(negative))
    return text


def _flag_text(pm: Any) -> str:
    """How many pixels and bins the maps flag, and why (empty when none is flagged)."""
    from .maps import FLAG_BITS

    summary = pm.flag_summary()
    if not summary:
        return "<p>No pixel of the maps is flagged.</p>"
    rows = [[bit, FLAG_BITS[bit], nbins, npix] for bit, (nbins, npix) in summary.items()]
    return ("<p>Flagged pixels (<code>BIN_FLAG</code> in <code>maps/maps.fits</code>, bit "
            "flags; the leftover bin is hatched on the maps, failed or unconverged fits are "
            "outlined in red):</p>"
            + _table(["bit", "meaning", "bins", "pixels"], rows, wrap=(1,)))


def _fit_status(pm: Any) -> dict[int, bool] | None:
    """Bin id → the fit succeeded (a model entered the posterior), from the ``n_used`` map
    of the property maps; None when the maps lack it."""
    try:
        n_used = pm.bin_values("n_used", "best")
    except KeyError:
        return None
    return {b: bool(v > 0) for b, v in enumerate(n_used, start=1) if np.isfinite(v)}


def _sample_text(res: Any, samples: Any) -> str:
    """How well the posterior is sampled: the effective sample size, not the number of
    models that were evaluated."""
    ess = getattr(res, "ess", None)
    if ess is None and samples is not None and res.method == "rdsps":
        w = np.asarray(samples.weights, dtype=np.float64)
        ess = 1.0 / float(np.sum(w * w)) if w.size else None  # Kish, of the weights
    if ess is not None and np.isfinite(ess):
        text = f"effective sample size of the posterior {float(ess):.0f}"
        if res.method == "rdsps":
            text += f" (from {res.n_used} library models)"
        if float(ess) < 10:
            text += ": fewer than 10, the posterior is not well sampled (use a larger library)"
        return text
    if samples is not None:
        return f"{samples.values.shape[0]} posterior samples"
    return f"{res.n_used} models evaluated"
