"""Plots of fits and maps: corner, SED, SFH, bin map, property maps, filter curves, stamps
with the galaxy region.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (no global
state, nothing shown, the backend never changed) and writes it to ``path`` when given
(atomically; format from the file suffix).

Posterior samples
-----------------
Corner plots, SED percentile bands and SFH percentile bands need samples of the posterior.
:func:`posterior_samples` returns them as a :class:`PosteriorSamples` (values and weights):

* MCMC results that carry a chain (an attribute ``samples``, shape (nsamples, nstat), in the
  order of ``names``) give equally weighted samples;
* RDSPS results are re-evaluated against their library (one batched photometry call and one
  RDSPS call with ``return_weights=True``): every library model is a sample, weighted by its
  posterior weight, with the mass-scaled quantities shifted by its best normalisation.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from .._paths import atomic_path
from ..binning.plots import plot_bin_map as _draw_bin_map
from ..cosmology import age_of_universe
from ..filters import cwave_filters, get_filter_curve
from ..fitting.priors import MASS_SCALED
from ..fitting.rdsps import rdsps
from ..fitting.results import FitResult
from ..library import ModelLibrary, read_library
from ..sps import DEFAULTS, PARAM_NAMES
from ..sps.sfh import sfr_shape
from .maps import FLAG_FAILED, FLAG_LEFTOVER, FLAG_NOT_CONVERGED, quantity_unit

__all__ = [
    "LABELS",
    "PosteriorSamples",
    "log_axis_ticks",
    "plot_bin_map",
    "plot_corner",
    "plot_filters",
    "plot_maps",
    "plot_sed",
    "plot_sfh",
    "plot_stamp_region",
    "posterior_samples",
    "quantity_label",
    "save_figure",
    "sfh_percentiles",
]

PathLike = str | os.PathLike[str]

#: Axis labels of common quantities (plain Unicode: no mathtext to parse).
LABELS = {
    "log_mass": "log M* [M☉]",
    "log_mass_formed": "log M*,formed [M☉]",
    "log_sfr": "log SFR [M☉ yr⁻¹]",
    "log_sfr10": "log SFR(10 Myr) [M☉ yr⁻¹]",
    "log_sfr100": "log SFR(100 Myr) [M☉ yr⁻¹]",
    "log_mw_age": "log age_MW [Gyr]",
    "log_age": "log age [Gyr]",
    "log_tau": "log τ [Gyr]",
    "logzsol": "log Z/Z☉",
    "dust2": "τ̂₂ (diffuse dust)",
    "dust1": "τ̂₁ (birth clouds)",
    "log_dustmass": "log M_dust [M☉]",
    "log_sigma_mass": "log Σ* [M☉ kpc⁻²]",
    "log_sigma_sfr": "log Σ_SFR [M☉ yr⁻¹ kpc⁻²]",
    "log_sigma_dustmass": "log Σ_dust [M☉ kpc⁻²]",
}


def quantity_label(name: str, stat: str | None = None) -> str:
    """Axis or colour-bar label of a quantity, with its unit.

    From :data:`LABELS` when listed, else the name and the unit of
    :data:`pixedfit.analysis.maps.QUANTITY_UNITS` (``log X`` for ``dex(X)``). The
    ``mean_err`` of a logarithmic quantity is labelled in dex.

    Parameters
    ----------
    name : str
        The quantity (e.g. ``"log_mass"``).
    stat : str, optional
        Its statistic (``"p50"``, ``"mean_err"``, …; default ``"p50"``).

    Returns
    -------
    str
    """
    unit = quantity_unit(name, stat or "p50")
    if stat in ("mean_err", "std"):
        err_unit = quantity_unit(name, stat)
        base = LABELS.get(name, name).split(" [")[0]
        if err_unit == "dex":
            return f"σ({base}) [dex]"
        return f"σ({base})" + (f" [{_unit_text(err_unit)}]" if err_unit else "")
    if name in LABELS:
        return LABELS[name]
    if unit is None:
        return name
    if unit == "":
        return f"{name} (dimensionless)"
    return f"{name} [{_unit_text(unit)}]"


def _unit_text(unit: str) -> str:
    import astropy.units as u

    value = u.Unit(unit)
    if isinstance(value, u.DexUnit):
        return "log " + value.physical_unit.to_string("unicode")
    return value.to_string("unicode")


def _tick_text(value: float, _pos: Any = None) -> str:
    return f"{value:g}"


def log_axis_ticks(ax: Any, lo: float, hi: float, axis: str = "x") -> None:
    """Readable tick labels on a log axis spanning [lo, hi]: at least 4 labelled ticks (when
    the span allows) at 1, 1-3, 1-2-5 or denser steps, written as plain numbers; no labels
    on the minor ticks.

    Parameters
    ----------
    ax : matplotlib Axes
        The axes.
    lo, hi : float
        Span of the axis, > 0.
    axis : {"x", "y"}
        Which axis.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ticks: list[float] = []
    decades = range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
    for subs in ((1.0,), (1.0, 3.0), (1.0, 2.0, 5.0), (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)):
        ticks = [round(m * 10.0**d, 12) for d in decades for m in subs
                 if lo <= m * 10.0**d <= hi]
        if len(ticks) >= 4:
            break
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(FixedLocator(ticks))
    target.set_major_formatter(FuncFormatter(_tick_text))
    target.set_minor_formatter(NullFormatter())


def save_figure(fig: Any, path: PathLike | None, dpi: int = 100, tight: bool = True) -> Any:
    """Write ``fig`` to ``path`` atomically (format from the suffix); returns ``fig``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    path : path-like or None
        Output file (None: not written).
    dpi : int
        Resolution of raster formats.
    tight : bool
        Crop to the drawn content (one extra layout pass); figures that place their axes
        themselves pass False.

    Returns
    -------
    matplotlib.figure.Figure
        ``fig``.
    """
    if path is not None:
        fmt = Path(path).suffix.lstrip(".").lower() or "png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight" if tight else None)
    return fig


def _figure(figsize: tuple[float, float]) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


@dataclass
class PosteriorSamples:
    """Weighted posterior samples.

    Attributes
    ----------
    names : tuple of str
        Quantities (columns of ``values``).
    values : ndarray, shape (nsamples, nnames)
    weights : ndarray, shape (nsamples,)
        Normalised weights (sum 1).
    """

    names: tuple[str, ...]
    values: NDArray[np.float64]
    weights: NDArray[np.float64]

    def column(self, name: str) -> NDArray[np.float64]:
        """Values of one quantity."""
        if name not in self.names:
            raise KeyError(f"no samples of {name!r}; have {list(self.names)}")
        return self.values[:, self.names.index(name)]

    def draw(self, n: int, seed: int = 0) -> NDArray[np.int64]:
        """Indices of ``n`` samples drawn with probability ∝ weight (seeded).

        Parameters
        ----------
        n : int
            Number of draws (with replacement).
        seed : int
            Seed of the draws.

        Returns
        -------
        ndarray of int, shape (n,)
        """
        rng = np.random.default_rng(seed)
        return rng.choice(self.weights.size, size=n, p=self.weights)

    def percentiles(self, name: str, q: Sequence[float] = (16, 50, 84)) -> NDArray[np.float64]:
        """Weighted percentiles of one quantity.

        Parameters
        ----------
        name : str
            The quantity (a column of the samples).
        q : sequence of float
            Percentiles, 0–100.

        Returns
        -------
        ndarray, shape (len(q),)
        """
        return weighted_percentiles(self.column(name), self.weights, q)


def weighted_percentiles(values: NDArray[np.float64], weights: NDArray[np.float64],
                         q: Sequence[float]) -> NDArray[np.float64]:
    """Percentiles ``q`` (0–100) of weighted samples (interpolated on the weighted CDF).

    Parameters
    ----------
    values : ndarray, shape (n,)
        Samples.
    weights : ndarray, shape (n,)
        Their weights (> 0 in total).
    q : sequence of float
        Percentiles, 0–100.

    Returns
    -------
    ndarray, shape (len(q),)
    """
    order = np.argsort(values)
    v, w = values[order], weights[order]
    cdf = np.cumsum(w) - 0.5 * w
    cdf /= w.sum()
    return np.interp(np.asarray(q, dtype=np.float64) / 100.0, cdf, v)


def posterior_samples(fit: FitResult, library: Any = None, priors: Any = None,
                      min_weight: float = 0.0, threads: int | None = None,
                      models: Any = None) -> PosteriorSamples:
    """Posterior samples of a fit (see the module docstring).

    Parameters
    ----------
    fit : FitResult
    library : ModelLibrary or path, optional
        The library an RDSPS result was fitted with (required for RDSPS).
    priors : PriorSet, mapping or sequence, optional
        The priors of the fit, if not flat (RDSPS).
    min_weight : float
        RDSPS models with a smaller weight are dropped.
    threads : int, optional
        OpenMP threads.
    models : ModelPhotometry, optional
        ``library.photometry(fit.filters, fit.z)`` computed beforehand (RDSPS), to share it
        among the fits of one redshift (the bins of a galaxy).
    """
    chain = getattr(fit, "samples", None)
    if chain is not None:
        vals = np.atleast_2d(np.asarray(chain, dtype=np.float64))
        names = tuple(getattr(fit, "sample_names", None) or fit.names)
        if vals.shape[1] != len(names):
            raise ValueError("fit.samples must have one column per name")
        return PosteriorSamples(names, vals, np.full(vals.shape[0], 1.0 / vals.shape[0]))
    if fit.method != "rdsps":
        raise ValueError(f"a {fit.method!r} result without stored samples has no posterior "
                         "to plot")
    if library is None:
        raise ValueError("library: RDSPS posteriors are rebuilt from the fitted library")
    if fit.z is None:
        raise ValueError("posterior samples of free-redshift RDSPS fits are not supported")
    lib = library if isinstance(library, ModelLibrary) else read_library(library, spectra=False)
    if models is None:
        models = lib.photometry(list(fit.filters), fit.z, threads=threads)
    elif models.flux.shape != (1, len(fit.filters), lib.nmodels):
        raise ValueError("models: photometry of the library in the fit's bands at one z "
                         f"expected, got flux of shape {models.flux.shape}")
    cfg = fit.config
    extra = None
    if cfg.get("max_age_universe", True) and "log_age" in lib.params:
        limit = np.log10(age_of_universe(fit.z, cfg.get("cosmo"), cfg.get("H0", 70.0),
                                         cfg.get("Om0", 0.3)))
        extra = np.where(lib.params["log_age"] <= limit, 0.0, -np.inf)
    res = rdsps(fit.obs_flux, fit.obs_flux_err, models, priors=priors,
                likelihood=cfg.get("likelihood", "gauss"), dof=cfg.get("dof", 3.0),
                perc_chi2=cfg.get("perc_chi2", 100.0), ln_prior_extra=extra,
                return_weights=True, threads=threads)
    # return_weights=True: the weights are there
    w = np.asarray(cast("NDArray[np.float32]", res.weights)[0], dtype=np.float64)
    flux = models.flux[0]  # (nband, nmod)
    ivar = 1.0 / fit.obs_flux_err**2
    num = (flux * (fit.obs_flux * ivar)[:, None]).sum(axis=0)
    den = (flux**2 * ivar[:, None]).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_a = np.log10(num / den)
    keep = (w > min_weight) & np.isfinite(log_a)
    if not keep.any():
        raise ValueError("no library model has posterior weight for this SED")
    vals = models.params[keep].copy()
    for k, name in enumerate(models.param_names):
        if name in MASS_SCALED:
            vals[:, k] += log_a[keep]
    ww = w[keep] / w[keep].sum()
    return PosteriorSamples(tuple(models.param_names), vals, ww)


def corner_range(values: NDArray[np.float64], weights: NDArray[np.float64]
                 ) -> tuple[float, float]:
    """Axis range of one quantity in a corner plot: the 0.5–99.5 % weighted range, cut
    at 4 × the 16–84 % width beyond those percentiles (so a few samples at a floor value,
    such as log SFR of a model with no star formation, do not stretch the axis to −30),
    padded by 5 %.

    Parameters
    ----------
    values : ndarray, shape (n,)
        Samples of the quantity.
    weights : ndarray, shape (n,)
        Their weights.

    Returns
    -------
    (float, float)
        The axis range.
    """
    lo, p16, p84, hi = weighted_percentiles(values, weights, (0.5, 16, 84, 99.5))
    width = max(p84 - p16, 1e-3 * (abs(p16) + abs(p84)), 1e-6)
    lo, hi = max(lo, p16 - 4 * width), min(hi, p84 + 4 * width)
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.05 * (hi - lo)
    return float(lo - pad), float(hi + pad)


def _credible_levels(hist: NDArray[np.float64], fractions: Sequence[float]) -> list[float]:
    """Density levels enclosing ``fractions`` of a 2-D histogram's weight (increasing)."""
    flat = np.sort(hist.ravel())[::-1]
    cum = np.cumsum(flat)
    if cum[-1] <= 0:
        return []
    cum /= cum[-1]
    # numpy stubs: min() of an np.intp and an int is not seen as an index
    levels = [float(flat[min(np.searchsorted(cum, f), flat.size - 1)])  # type: ignore[call-overload]
              for f in fractions]
    return sorted(set(v for v in levels if v > 0))


def plot_corner(samples: PosteriorSamples, params: Sequence[str] | None = None,
                truths: dict[str, float] | None = None, bins: int = 20,
                path: PathLike | None = None) -> Any:
    """Corner plot of weighted samples: histograms with the 16/50/84 % marked (and given
    above each column), 2-D histograms with the 39 % and 86 % (1σ, 2σ) contours.

    Parameters
    ----------
    samples : PosteriorSamples
    params : sequence of str, optional
        Quantities to show (default: log_mass, log_sfr, log_mw_age, logzsol, dust2 when
        present).
    truths : dict, optional
        True values to mark.
    bins : int
        Histogram bins per axis.
    path : path-like, optional
        Output file (format from the suffix).

    Notes
    -----
    Axis ranges come from :func:`corner_range`; the share of the weight outside them is
    given in the column title when above 1 %.
    """
    from matplotlib.ticker import MaxNLocator
    from scipy.ndimage import gaussian_filter

    default = ("log_mass", "log_sfr", "log_mw_age", "logzsol", "dust2")
    names = list(params) if params is not None else [n for n in default if n in samples.names]
    if len(names) < 1:
        raise ValueError("params: nothing to plot")
    data = np.column_stack([samples.column(n) for n in names])
    if data.shape[0] <= data.shape[1]:
        # too few samples for histograms (e.g. a sharp RDSPS posterior that only a handful
        # of library models reach): show the samples themselves, sized by weight
        return save_figure(_sparse_corner(data, samples.weights, names, truths), path)
    w = samples.weights
    n = len(names)
    ranges = [corner_range(data[:, j], w) for j in range(n)]
    size = 1.9 * n + 1.0
    fig = _figure((size, size))
    axes = np.atleast_2d(fig.subplots(n, n, squeeze=False))
    margin_l, margin_b = 0.9 / size, 0.85 / size
    fig.subplots_adjust(left=margin_l, bottom=margin_b, right=1 - 0.15 / size,
                        top=1 - 0.45 / size, wspace=0.06, hspace=0.06)
    for i in range(n):
        for j in range(n):
            ax = axes[i, j]
            if j > i:
                ax.set_axis_off()
                continue
            xlo, xhi = ranges[j]
            if i == j:
                hist, edges = np.histogram(data[:, j], bins=bins, range=ranges[j], weights=w)
                ax.stairs(hist, edges, color="k", lw=1.0)
                q16, q50, q84 = weighted_percentiles(data[:, j], w, (16, 50, 84))
                for q in (q16, q50, q84):
                    ax.axvline(q, color="k", ls="--", lw=0.8)
                outside = float(w[(data[:, j] < xlo) | (data[:, j] > xhi)].sum())
                title = f"{q50:.2f} +{q84 - q50:.2f} −{q50 - q16:.2f}"
                if outside > 0.01:
                    title += f"\n({100 * outside:.0f} % off axis)"
                ax.set_title(title, fontsize=8, pad=3)
                ax.set_ylim(0, 1.1 * hist.max() if hist.max() > 0 else 1)
                if truths and names[j] in truths and truths[names[j]] is not None:
                    ax.axvline(truths[names[j]], color="C0", lw=1.2)
            else:
                hist, xe, ye = np.histogram2d(data[:, j], data[:, i], bins=bins,
                                              range=[ranges[j], ranges[i]], weights=w)
                hist = gaussian_filter(hist, 0.8)
                ax.imshow(hist.T, origin="lower", aspect="auto", cmap="Greys",
                          extent=(xe[0], xe[-1], ye[0], ye[-1]), interpolation="nearest")
                levels = _credible_levels(hist, (0.865, 0.393))
                if len(levels) >= 1 and hist.max() > levels[0]:
                    centres_x = 0.5 * (xe[1:] + xe[:-1])
                    centres_y = 0.5 * (ye[1:] + ye[:-1])
                    ax.contour(centres_x, centres_y, hist.T, levels=levels, colors="k",
                               linewidths=0.8)
                ax.set_ylim(*ranges[i])
                if truths and names[i] in truths and names[j] in truths:
                    ax.plot(truths[names[j]], truths[names[i]], "s", color="C0", ms=5)
            ax.set_xlim(xlo, xhi)
            ax.xaxis.set_major_locator(MaxNLocator(3, prune="both"))
            ax.yaxis.set_major_locator(MaxNLocator(3, prune="both"))
            ax.tick_params(labelsize=7, direction="in")
            if i == j:
                ax.set_yticks([])
            if i == n - 1:
                ax.set_xlabel(LABELS.get(names[j], names[j]), fontsize=8)
                ax.tick_params(axis="x", labelrotation=45)
            else:
                ax.tick_params(labelbottom=False)
            if j == 0 and i > 0:
                ax.set_ylabel(LABELS.get(names[i], names[i]), fontsize=8)
            elif i != j:
                ax.tick_params(labelleft=False)
    return save_figure(fig, path, tight=False)


def _sparse_corner(data: NDArray[np.float64], weights: NDArray[np.float64],
                   names: Sequence[str], truths: dict[str, float] | None) -> Any:
    n = len(names)
    fig = _figure((2.2 * n + 0.5, 2.2 * n + 0.5))
    axes = np.atleast_2d(fig.subplots(n, n))
    size = 20 + 200 * weights / weights.max()
    for i in range(n):
        for j in range(n):
            ax = axes[i, j]
            if j > i:
                ax.set_axis_off()
                continue
            if i == j:
                ax.vlines(data[:, i], 0, weights, color="k")
                ax.set_yticks([])
            else:
                ax.scatter(data[:, j], data[:, i], s=size, color="k", alpha=0.6)
                if truths and names[i] in truths and names[j] in truths:
                    ax.plot(truths[names[j]], truths[names[i]], "s", color="C0")
            if i == n - 1:
                ax.set_xlabel(LABELS.get(names[j], names[j]))
            if j == 0 and i > 0:
                ax.set_ylabel(LABELS.get(names[i], names[i]))
    fig.suptitle(f"{data.shape[0]} posterior sample(s): the posterior is narrower than the "
                 "library's sampling", fontsize="small")
    return fig


def _model_params(names: Sequence[str], values: NDArray[np.float64]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, name in enumerate(names):
        if name in PARAM_NAMES:
            out[name] = values[..., k]
    return out


def plot_sed(fit: FitResult, model: Any = None, samples: PosteriorSamples | None = None,
             nspec: int = 100, decompose: bool = True, wunit: str = "micron",
             seed: int = 0, title: str | None = None, path: PathLike | None = None) -> Any:
    """Observed SED, best-fit model, 16–84 % model band, components and residuals.

    Parameters
    ----------
    fit : FitResult
    model : SEDModel, optional
        The forward model of the fit (for spectra; without it only photometry is drawn).
    samples : PosteriorSamples, optional
        Posterior samples: ``nspec`` weighted draws give the 16–84 % band of the spectrum.
    nspec : int
        Number of those draws.
    decompose : bool
        Draw the stellar, nebular, dust and AGN components of the best fit.
    wunit : {"micron", "angstrom"}
        Unit of the wavelength axis.
    seed : int
        Seed of the draws.
    title : str, optional
        Title of the figure.
    path : path-like, optional
        Output file (format from the suffix).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if wunit not in ("micron", "angstrom"):
        raise ValueError("wunit: use 'micron' or 'angstrom'")
    scale = 1e-4 if wunit == "micron" else 1.0
    fig = _figure((8, 6))
    ax, axr = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1],
                                                           "hspace": 0.05})
    wave = np.asarray(cwave_filters(list(fit.filters)), float)
    z = fit.z if fit.z is not None else float(fit.best[list(fit.names).index("z")])
    if model is not None and np.all(np.isfinite(fit.best)):
        params = _model_params(fit.names, fit.best)
        if samples is not None:
            idx = samples.draw(nspec, seed)
            batch = _model_params(samples.names, samples.values[idx])
            lam, spec = model.spectrum(batch, z=z)
            lo, hi = np.percentile(spec, [16, 84], axis=0)
            ax.fill_between(lam * scale, lo, hi, color="C0", alpha=0.3, lw=0,
                            label="model 16–84 %")
        lam, comps = model.observed_components(params, z=z)
        ax.plot(lam * scale, comps["total"], color="C0", lw=0.8, label="best fit")
        if decompose:
            for key, colour in (("stellar", "C2"), ("nebular", "C4"), ("dust", "C3"),
                                ("agn", "C5")):
                if np.any(comps[key] > 0):
                    ax.plot(lam * scale, comps[key], color=colour, lw=0.6, ls="--",
                            label=key)
    ax.plot(wave * scale, fit.bfit_photo, "s", mfc="none", color="C0", ms=8,
            label="model photometry")
    ax.errorbar(wave * scale, fit.obs_flux, yerr=fit.obs_flux_err, fmt="o", color="k",
                ms=4, capsize=2, label="observed")
    good = fit.obs_flux > 0
    if good.any():
        lo = fit.obs_flux[good].min() / 5
        hi = fit.obs_flux[good].max() * 5
        ax.set_ylim(lo, hi)
        ax.set_yscale("log")
    ax.set_xscale("log")
    xlim = (wave.min() * scale / 1.5, wave.max() * scale * 1.5)
    ax.set_xlim(*xlim)
    ax.set_ylabel(r"f$_\lambda$ [erg s$^{-1}$ cm$^{-2}$ Å$^{-1}$]")
    ax.legend(fontsize="x-small", ncol=2)
    if title:
        ax.set_title(title)
    with np.errstate(divide="ignore", invalid="ignore"):
        resid = (fit.obs_flux - fit.bfit_photo) / fit.obs_flux
        rerr = fit.obs_flux_err / np.abs(fit.obs_flux)
    axr.errorbar(wave * scale, resid, yerr=rerr, fmt="o", color="k", ms=4, capsize=2)
    axr.axhline(0.0, color="grey", lw=0.8)
    log_axis_ticks(axr, *xlim)
    axr.set_ylabel("(D−M)/D")
    axr.set_xlabel("observed wavelength [" + ("µm" if wunit == "micron" else "Å") + "]")
    return save_figure(fig, path)


def sfh_percentiles(samples: PosteriorSamples, sfh_form: int, nsamples: int = 200,
                    lbt: NDArray[np.float64] | None = None, seed: int = 0
                    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64],
                               NDArray[np.float64]]:
    """16/50/84 % of SFR(look-back time) over weighted posterior draws.

    Each draw's SFH (:func:`pixedfit.sps.sfh.sfr_shape`) is normalised to its formed mass
    (``log_mass_formed`` when sampled, else ``log_mass``), so SFR is in M☉/yr.

    Parameters
    ----------
    samples : PosteriorSamples
        Weighted posterior samples (with the SFH parameters).
    sfh_form : int
        SFH form of the model (0–4).
    nsamples : int
        Posterior draws.
    lbt : ndarray, optional
        Look-back times, Gyr (default: 300 from 0 to the oldest age drawn).
    seed : int
        Seed of the draws.

    Returns
    -------
    lbt, p16, p50, p84 : ndarray
        Look-back time (Gyr) and the SFR percentiles (M☉/yr).
    """
    idx = samples.draw(nsamples, seed)

    def col(name: str) -> NDArray[np.float64]:
        if name in samples.names:
            return samples.column(name)[idx]
        return np.full(idx.size, DEFAULTS[name])

    age = 10 ** col("log_age")
    mass_name = "log_mass_formed" if "log_mass_formed" in samples.names else "log_mass"
    mass = 10 ** col(mass_name)
    tau, t0 = 10 ** col("log_tau"), 10 ** col("log_t0")
    alpha, beta = 10 ** col("log_alpha"), 10 ** col("log_beta")
    if lbt is None:
        lbt = np.linspace(0.0, float(age.max()), 300)
    sfr = np.zeros((idx.size, lbt.size))
    for i in range(idx.size):
        t = np.linspace(0.0, age[i], 2001)
        shape = sfr_shape(t, sfh_form, tau[i], t0[i], alpha[i], beta[i])
        norm = np.trapezoid(shape, t) * 1e9  # Gyr → yr
        if norm > 0:
            sfr[i] = np.interp(age[i] - lbt, t, shape, left=0.0, right=0.0) * mass[i] / norm
    p16, p50, p84 = np.percentile(sfr, [16, 50, 84], axis=0)
    return lbt, p16, p50, p84


def plot_sfh(samples: PosteriorSamples, sfh_form: int, nsamples: int = 200,
             truth: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None,
             title: str | None = None, path: PathLike | None = None) -> Any:
    """SFR against look-back time: median and 16–84 % band (MCMC chains or RDSPS weights).

    Parameters
    ----------
    samples : PosteriorSamples
        Weighted posterior samples (with the SFH parameters).
    sfh_form : int
        SFH form of the model (0–4, :func:`pixedfit.sps.sfh.sfr_shape`).
    nsamples : int
        Posterior draws.
    truth : (ndarray, ndarray), optional
        True look-back time (Gyr) and SFR (M☉/yr), drawn dashed.
    title : str, optional
        Title of the figure.
    path : path-like, optional
        Output file (format from the suffix).

    Returns
    -------
    matplotlib.figure.Figure
    """
    lbt, p16, p50, p84 = sfh_percentiles(samples, sfh_form, nsamples)
    fig = _figure((7, 4))
    ax = fig.subplots()
    ax.fill_between(lbt, p16, p84, color="C1", alpha=0.35, lw=0, label="16–84 %")
    ax.plot(lbt, p50, color="C1", label="median")
    if truth is not None:
        ax.plot(truth[0], truth[1], "k--", lw=1, label="truth")
    ax.set_xlabel("look-back time [Gyr]")
    ax.set_ylabel(r"SFR [M$_\odot$ yr$^{-1}$]")
    ax.set_xlim(lbt.max(), 0)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def plot_bin_map(binned: Any, path: PathLike | None = None) -> Any:
    """Bin map of a :class:`~pixedfit.cubes.BinnedCube` (see
    :func:`pixedfit.binning.plots.plot_bin_map`).

    Parameters
    ----------
    binned : BinnedCube
        The binning.
    path : path-like, optional
        Output file (format from the suffix).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = _figure((6, 5))
    _draw_bin_map(binned, ax=fig.subplots())
    return save_figure(fig, path)


def plot_maps(maps: Any, params: Sequence[str] | None = None, kind: str = "pix",
              stat: str | None = None, ncols: int = 3, path: PathLike | None = None,
              extra: dict[str, NDArray[np.float64]] | None = None, flags: bool = True) -> Any:
    """A panel of property maps (:class:`~pixedfit.analysis.maps.PropertyMaps`).

    Parameters
    ----------
    maps : PropertyMaps
        The maps.
    params : sequence of str, optional
        Quantities (default: surface densities of mass and SFR when present, then
        log_mw_age, logzsol, dust2).
    kind : {"pix", "bin"}
        Pixel maps where they exist (else the bin map of the quantity).
    stat : str, optional
        Statistic (default ``p50``, else ``mean``).
    ncols : int
        Panels per row.
    path : path-like, optional
        Output file (format from the suffix).
    extra : dict name → (y, x) array, optional
        Further panels (e.g. true maps).
    flags : bool
        Mark flagged pixels (:attr:`PropertyMaps.flags`) on every property panel: the
        leftover bin hatched (``////``) and outlined in black, bins whose fit failed or did
        not converge outlined in red; a legend line under the panels counts them.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if params is None:
        params = [p for p in ("log_sigma_mass", "log_sigma_sfr", "log_mass", "log_sfr",
                              "log_mw_age", "logzsol", "dust2") if p in maps.params("bin")]
        if "log_sigma_mass" in params:
            params = [p for p in params if p not in ("log_mass", "log_sfr")]
    panels: list[tuple[str, NDArray[np.float64], str]] = []  # (title, map, colour-bar label)
    for p in params:
        use_kind = kind if p in maps.params(kind) else "bin"
        stats = maps.stats(p, use_kind)
        s = stat or ("p50" if "p50" in stats else "mean")
        panels.append((f"{use_kind}: {p} ({s})", maps.get(p, s, use_kind),
                       quantity_label(p, s)))
    for name, arr in (extra or {}).items():
        panels.append((name, np.asarray(arr), name))
    if not panels:
        raise ValueError("params: no map to draw")
    ncols = min(ncols, len(panels))
    nrows = -(-len(panels) // ncols)
    fig = _figure((4.6 * ncols, 3.6 * nrows))
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for ax, (name, arr, label) in zip(axes, panels, strict=False):
        finite = arr[np.isfinite(arr)]
        vmin, vmax = (np.percentile(finite, [2, 98]) if finite.size else (0, 1))
        im = ax.imshow(arr, origin="lower", cmap="viridis", vmin=vmin, vmax=vmax,
                       interpolation="nearest")
        bar = fig.colorbar(im, ax=ax, shrink=0.85)
        bar.set_label(label, fontsize="small")
        ax.set_title(name, fontsize="small")
        ax.set_xticks([])
        ax.set_yticks([])
    flag_map = getattr(maps, "flags", None)
    if flags and flag_map is not None and np.any(flag_map):
        leftover = (flag_map & FLAG_LEFTOVER) > 0
        bad = (flag_map & (FLAG_FAILED | FLAG_NOT_CONVERGED)) > 0
        for ax in axes[:len(params)]:
            _mark_pixels(ax, leftover, "black", hatch="////")
            _mark_pixels(ax, bad & ~leftover, "red")
        legend = []
        if leftover.any():
            legend.append(f"hatched: leftover bin ({int(leftover.sum())} pixels below the "
                          "S/N target)")
        if (bad & ~leftover).any():
            legend.append(f"red outline: failed or unconverged fits "
                          f"({int((bad & ~leftover).sum())} pixels)")
        if legend:
            fig.text(0.01, 0.005, "; ".join(legend), fontsize="small", va="bottom")
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    return save_figure(fig, path)


def _mark_pixels(ax: Any, mask: NDArray[np.bool_], colour: str, hatch: str | None = None,
                 oversample: int = 8) -> None:
    """Outline (and optionally hatch) the pixels of ``mask`` (y, x) on an ``imshow`` axis,
    along the pixel edges."""
    if not mask.any():
        return
    ny, nx = mask.shape
    up = np.pad(np.kron(mask.astype(float), np.ones((oversample, oversample))), 1)
    step = 1.0 / oversample
    x = -0.5 - step / 2 + step * np.arange(up.shape[1])
    y = -0.5 - step / 2 + step * np.arange(up.shape[0])
    if hatch:
        ax.contourf(x, y, up, levels=[0.5, 1.5], colors="none", hatches=[hatch])
    ax.contour(x, y, up, levels=[0.5], colors=colour, linewidths=0.9)
    ax.set_xlim(-0.5, nx - 0.5)
    ax.set_ylim(-0.5, ny - 0.5)


def plot_filters(filters: Sequence[str], path: PathLike | None = None) -> Any:
    """Transmission curves of ``filters`` against wavelength (µm, log axis); the legend
    sits beside the axes, never on the curves.

    Parameters
    ----------
    filters : str or sequence of str
        Filter names.
    path : path-like, optional
        Output file (format from the suffix).

    Returns
    -------
    matplotlib.figure.Figure
    """
    names = [filters] if isinstance(filters, str) else list(filters)
    if not names:
        raise ValueError("filters: give at least one filter")
    ncol = 1 + (len(names) - 1) // 14
    fig = _figure((8 + 1.6 * ncol, 3.5))
    ax = fig.subplots()
    lo, hi = np.inf, 0.0
    for i, name in enumerate(names):
        wave, trans = get_filter_curve(name)
        t = np.asarray(trans, float)
        w = np.asarray(wave, float) * 1e-4
        inside = t > 0.01 * t.max()
        lo, hi = min(lo, w[inside].min()), max(hi, w[inside].max())
        colour = f"C{i % 10}"
        ax.fill_between(w, t / t.max(), alpha=0.35, lw=0, color=colour)
        ax.plot(w, t / t.max(), lw=0.8, color=colour, label=name)
    ax.set_xscale("log")
    xlim = (lo / 1.08, hi * 1.08)
    ax.set_xlim(*xlim)
    ax.set_ylim(0, 1.05)
    log_axis_ticks(ax, *xlim)
    ax.set_xlabel("wavelength [µm]")
    ax.set_ylabel("normalised transmission")
    ax.legend(fontsize="x-small", ncol=ncol, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              borderaxespad=0.0, frameon=False)
    return save_figure(fig, path)


def plot_stamp_region(image: NDArray[np.float64], region: NDArray[np.bool_],
                      title: str | None = None, flagged: bool = False,
                      path: PathLike | None = None, size: float = 2.4) -> Any:
    """A stamp (asinh grey scale, sky included) with the galaxy region outlined.

    The outline is a 1.6-pt line (lime, red when flagged) over a 3-pt black one, visible on
    any background.

    Parameters
    ----------
    image : ndarray (y, x)
        The whole stamp (any flux unit); NaN pixels are shown blank.
    region : ndarray of bool (y, x)
        Galaxy region.
    title : str, optional
        Written in the top-left corner.
    flagged : bool
        Draw the outline in red (the region was flagged: edge contact or most of the stamp).
    path : path-like, optional
        Output file.
    size : float
        Figure size, inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib import patheffects

    img = np.asarray(image, dtype=np.float64)
    reg = np.asarray(region, dtype=bool)
    if img.shape != reg.shape:
        raise ValueError(f"region: shape {reg.shape} differs from the image {img.shape}")
    fig = _figure((size, size))
    ax = fig.add_axes((0, 0, 1, 1))
    finite = img[np.isfinite(img)]
    if finite.size:
        sky = img[~reg & np.isfinite(img)]
        ref = sky if sky.size > 10 else finite
        level = float(np.median(ref))
        spread = float(1.4826 * np.median(np.abs(ref - level))) or float(np.std(finite)) or 1.0
        top = float(np.percentile(finite, 99.5))
        scaled = np.arcsinh((img - level) / spread)
        ax.imshow(scaled, origin="lower", cmap="Greys_r", interpolation="nearest",
                  vmin=-2.0, vmax=max(float(np.arcsinh((top - level) / spread)), 1.0))
    colour = "red" if flagged else "lime"
    # a False border so that the outline also runs along the stamp edge where the region
    # reaches it (a region covering the whole stamp would otherwise have no outline)
    ny, nx = reg.shape
    padded = np.pad(reg, 1).astype(float)
    ax.contour(np.arange(-1, nx + 1), np.arange(-1, ny + 1), padded, levels=[0.5],
               colors=colour, linewidths=1.6,
               path_effects=[patheffects.withStroke(linewidth=3.0, foreground="black")])
    ax.set_xlim(-0.5, nx - 0.5)
    ax.set_ylim(-0.5, ny - 0.5)
    if title:
        ax.text(0.03, 0.97, title, transform=ax.transAxes, va="top", ha="left",
                color="white", fontsize="small",
                path_effects=[patheffects.withStroke(linewidth=2.0, foreground="black")])
    ax.set_axis_off()
    return save_figure(fig, path)
