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
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._paths import atomic_path
from ..fitting.results import FitResult

__all__ = [
    "PosteriorSamples",
    "plot_bin_map",
    "plot_corner",
    "plot_filters",
    "plot_maps",
    "plot_sed",
    "plot_sfh",
    "plot_stamp_region",
    "posterior_samples",
    "save_figure",
    "sfh_percentiles",
]

PathLike = str | os.PathLike[str]

#: Axis labels of common quantities.
LABELS = {
    "log_mass": r"$\log M_*$ [M$_\odot$]",
    "log_sfr": r"$\log$ SFR [M$_\odot$/yr]",
    "log_mw_age": r"$\log$ age$_{\rm MW}$ [Gyr]",
    "log_age": r"$\log$ age [Gyr]",
    "log_tau": r"$\log \tau$ [Gyr]",
    "logzsol": r"$\log Z/Z_\odot$",
    "dust2": r"$\hat\tau_2$",
    "log_sigma_mass": r"$\log \Sigma_*$ [M$_\odot$ kpc$^{-2}$]",
    "log_sigma_sfr": r"$\log \Sigma_{\rm SFR}$ [M$_\odot$ yr$^{-1}$ kpc$^{-2}$]",
}


def save_figure(fig: Any, path: PathLike | None, dpi: int = 100) -> Any:
    """Write ``fig`` to ``path`` atomically (format from the suffix); returns ``fig``."""
    if path is not None:
        fmt = Path(path).suffix.lstrip(".").lower() or "png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
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
        """Indices of ``n`` samples drawn with probability ∝ weight (seeded)."""
        rng = np.random.default_rng(seed)
        return rng.choice(self.weights.size, size=n, p=self.weights)

    def percentiles(self, name: str, q: Sequence[float] = (16, 50, 84)) -> NDArray[np.float64]:
        """Weighted percentiles of one quantity."""
        return weighted_percentiles(self.column(name), self.weights, q)


def weighted_percentiles(values: NDArray[np.float64], weights: NDArray[np.float64],
                         q: Sequence[float]) -> NDArray[np.float64]:
    """Percentiles ``q`` (0–100) of weighted samples (interpolated on the weighted CDF)."""
    order = np.argsort(values)
    v, w = values[order], weights[order]
    cdf = np.cumsum(w) - 0.5 * w
    cdf /= w.sum()
    return np.interp(np.asarray(q, dtype=np.float64) / 100.0, cdf, v)


def posterior_samples(fit: FitResult, library: Any = None, priors: Any = None,
                      min_weight: float = 0.0, threads: int | None = None
                      ) -> PosteriorSamples:
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
    from ..cosmology import age_of_universe
    from ..fitting.priors import MASS_SCALED
    from ..fitting.rdsps import rdsps
    from ..library import ModelLibrary, read_library

    lib = library if isinstance(library, ModelLibrary) else read_library(library, spectra=False)
    models = lib.photometry(list(fit.filters), fit.z, threads=threads)
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
    w = np.asarray(res.weights[0], dtype=np.float64)
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


def plot_corner(samples: PosteriorSamples, params: Sequence[str] | None = None,
                truths: dict[str, float] | None = None, bins: int = 20,
                path: PathLike | None = None) -> Any:
    """Corner plot (the ``corner`` package) of weighted samples, 16/50/84 % marked.

    Parameters
    ----------
    samples : PosteriorSamples
    params : sequence of str, optional
        Quantities to show (default: log_mass, log_sfr, log_mw_age, logzsol, dust2 when
        present).
    truths : dict, optional
        True values to mark.
    """
    import corner

    default = ("log_mass", "log_sfr", "log_mw_age", "logzsol", "dust2")
    names = list(params) if params is not None else [n for n in default if n in samples.names]
    if len(names) < 1:
        raise ValueError("params: nothing to plot")
    data = np.column_stack([samples.column(n) for n in names])
    if data.shape[0] <= data.shape[1]:
        # too few samples for histograms (e.g. a sharp RDSPS posterior that only a handful
        # of library models reach): show the samples themselves, sized by weight
        return save_figure(_sparse_corner(data, samples.weights, names, truths), path)
    # corner needs a non-zero range in every dimension
    rng = []
    for j in range(data.shape[1]):
        lo, hi = weighted_percentiles(data[:, j], samples.weights, (0.5, 99.5))
        if not hi > lo:
            lo, hi = lo - 0.5, hi + 0.5
        pad = 0.1 * (hi - lo)
        rng.append((lo - pad, hi + pad))
    n = len(names)
    fig = _figure((2.2 * n + 0.5, 2.2 * n + 0.5))
    fig.subplots(n, n)
    corner.corner(data, weights=samples.weights, labels=[LABELS.get(p, p) for p in names],
                  bins=bins, range=rng, quantiles=(0.16, 0.5, 0.84), show_titles=True,
                  title_fmt=".2f", truths=None if truths is None else
                  [truths.get(p) for p in names], smooth=1.0, fig=fig,
                  hist_kwargs={"density": False})
    return save_figure(fig, path)


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
    from ..sps import PARAM_NAMES

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
    decompose : bool
        Draw the stellar, nebular, dust and AGN components of the best fit.
    wunit : {"micron", "angstrom"}
    """
    from ..filters import cwave_filters

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
    ax.set_xlim(wave.min() * scale / 1.5, wave.max() * scale * 1.5)
    ax.set_ylabel(r"f$_\lambda$ [erg s$^{-1}$ cm$^{-2}$ Å$^{-1}$]")
    ax.legend(fontsize="x-small", ncol=2)
    if title:
        ax.set_title(title)
    with np.errstate(divide="ignore", invalid="ignore"):
        resid = (fit.obs_flux - fit.bfit_photo) / fit.obs_flux
        rerr = fit.obs_flux_err / np.abs(fit.obs_flux)
    axr.errorbar(wave * scale, resid, yerr=rerr, fmt="o", color="k", ms=4, capsize=2)
    axr.axhline(0.0, color="grey", lw=0.8)
    from matplotlib.ticker import NullFormatter

    axr.xaxis.set_minor_formatter(NullFormatter())
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

    Returns
    -------
    lbt, p16, p50, p84 : ndarray
        Look-back time (Gyr) and the SFR percentiles (M☉/yr).
    """
    from ..sps import DEFAULTS
    from ..sps.sfh import sfr_shape

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
    """SFR against look-back time: median and 16–84 % band (MCMC chains or RDSPS weights)."""
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
    """Bin map of a :class:`~pixedfit.binned.BinnedCube` (see
    :func:`pixedfit.binning_plots.plot_bin_map`)."""
    from ..binning_plots import plot_bin_map as _draw

    fig = _figure((6, 5))
    _draw(binned, ax=fig.subplots())
    return save_figure(fig, path)


def plot_maps(maps: Any, params: Sequence[str] | None = None, kind: str = "pix",
              stat: str | None = None, ncols: int = 3, path: PathLike | None = None,
              extra: dict[str, NDArray[np.float64]] | None = None) -> Any:
    """A panel of property maps (:class:`~pixedfit.analysis.maps.PropertyMaps`).

    Parameters
    ----------
    params : sequence of str, optional
        Quantities (default: surface densities of mass and SFR when present, then
        log_mw_age, logzsol, dust2).
    kind : {"pix", "bin"}
        Pixel maps where they exist (else the bin map of the quantity).
    stat : str, optional
        Statistic (default ``p50``, else ``mean``).
    extra : dict name → (y, x) array, optional
        Further panels (e.g. true maps).
    """
    if params is None:
        params = [p for p in ("log_sigma_mass", "log_sigma_sfr", "log_mass", "log_sfr",
                              "log_mw_age", "logzsol", "dust2") if p in maps.params("bin")]
        if "log_sigma_mass" in params:
            params = [p for p in params if p not in ("log_mass", "log_sfr")]
    panels: list[tuple[str, NDArray[np.float64]]] = []
    for p in params:
        use_kind = kind if p in maps.params(kind) else "bin"
        stats = maps.stats(p, use_kind)
        s = stat or ("p50" if "p50" in stats else "mean")
        panels.append((f"{use_kind}: {p} ({s})", maps.get(p, s, use_kind)))
    for name, arr in (extra or {}).items():
        panels.append((name, np.asarray(arr)))
    if not panels:
        raise ValueError("params: no map to draw")
    ncols = min(ncols, len(panels))
    nrows = -(-len(panels) // ncols)
    fig = _figure((4.2 * ncols, 3.6 * nrows))
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for ax, (name, arr) in zip(axes, panels, strict=False):
        finite = arr[np.isfinite(arr)]
        vmin, vmax = (np.percentile(finite, [2, 98]) if finite.size else (0, 1))
        im = ax.imshow(arr, origin="lower", cmap="viridis", vmin=vmin, vmax=vmax,
                       interpolation="nearest")
        fig.colorbar(im, ax=ax, shrink=0.85)
        ax.set_title(name, fontsize="small")
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    return save_figure(fig, path)


def plot_filters(filters: Sequence[str], path: PathLike | None = None) -> Any:
    """Transmission curves of ``filters`` against wavelength (µm, log axis)."""
    from ..filters import get_filter_curve

    names = [filters] if isinstance(filters, str) else list(filters)
    if not names:
        raise ValueError("filters: give at least one filter")
    fig = _figure((8, 3.5))
    ax = fig.subplots()
    for i, name in enumerate(names):
        wave, trans = get_filter_curve(name)
        t = np.asarray(trans, float)
        ax.fill_between(np.asarray(wave) * 1e-4, t / t.max(), alpha=0.35, lw=0,
                        color=f"C{i % 10}")
        ax.plot(np.asarray(wave) * 1e-4, t / t.max(), lw=0.8, color=f"C{i % 10}", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("wavelength [µm]")
    ax.set_ylabel("normalised transmission")
    ax.legend(fontsize="x-small", ncol=4)
    return save_figure(fig, path)


def plot_stamp_region(image: NDArray[np.float64], region: NDArray[np.bool_],
                      title: str | None = None, flagged: bool = False,
                      path: PathLike | None = None, size: float = 2.4) -> Any:
    """A stamp (asinh grey scale, sky included) with the galaxy region outlined.

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

    The outline is a 1.6-pt line (lime, red when flagged) over a 3-pt black one, visible on
    any background.
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
