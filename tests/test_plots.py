"""Plots: posterior samples (RDSPS weights, MCMC chains), SFH percentiles, every figure."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from pixedfit.analysis.maps import maps_parameters
from pixedfit.analysis.plots import (
    PosteriorSamples,
    plot_bin_map,
    plot_corner,
    plot_filters,
    plot_maps,
    plot_sed,
    plot_sfh,
    plot_stamp_region,
    posterior_samples,
    sfh_percentiles,
    weighted_percentiles,
)
from pixedfit.binning import bin_with_map
from pixedfit.cubes import FluxCube
from pixedfit.demo import demo_model
from pixedfit.fitting import ErrorModel, RdspsSettings, fit_sed
from pixedfit.fitting.results import FitResult
from pixedfit.library import generate_library

FILTERS = ["galex_nuv", "sdss_u", "sdss_g", "sdss_r", "sdss_i", "sdss_z", "2mass_k", "wise_w1"]
RANGES = {"log_age": (-0.3, 1.0), "log_tau": (-0.5, 1.0), "logzsol": (-0.5, 0.2),
          "dust2": (0.0, 1.0), "gas_logu": (-2.0, -2.0)}


@pytest.fixture(scope="module")
def setup():
    model = demo_model()
    lib = generate_library(model, 600, ranges=RANGES, seed=4)
    truth = {"log_mass": 9.0, "log_age": 0.5, "log_tau": 0.2, "logzsol": -0.1, "dust2": 0.4,
             "gas_logu": -2.0}
    flux = model.photometry(truth, z=0.03, filters=FILTERS)
    err = 0.03 * flux
    fit = fit_sed(flux, err, FILTERS, z=0.03, library=lib)
    return model, lib, fit, truth


def test_rdsps_posterior_samples_reproduce_the_fit(setup):
    _model, lib, fit, truth = setup
    k = fit.names.index("log_mass")
    # a refined fit stores equal-weight posterior samples: their mean is the fit's
    # posterior mean up to the Monte-Carlo error of 1000 resampled draws
    s = posterior_samples(fit)
    assert np.isclose(s.weights.sum(), 1.0) and s.values.shape[0] == fit.samples.shape[0]
    mean = np.sum(s.weights * s.column("log_mass"))
    assert mean == pytest.approx(fit.mean[k], abs=4 * fit.std[k] / np.sqrt(1000))
    assert abs(mean - truth["log_mass"]) < 0.2
    # the library pass alone keeps no samples: they are the library models, re-weighted
    plain = fit_sed(fit.obs_flux, fit.obs_flux_err, FILTERS, z=0.03, library=lib,
                    method=RdspsSettings(refine=False), errors=ErrorModel(calibration=False))
    s = posterior_samples(plain, lib)
    assert np.isclose(s.weights.sum(), 1.0)
    mean = np.sum(s.weights * s.column("log_mass"))
    assert mean == pytest.approx(plain.mean[k], abs=1e-3)  # the same weights
    p16, p50, p84 = s.percentiles("log_mass")
    assert p16 <= p50 <= p84
    with pytest.raises(ValueError, match="library"):
        posterior_samples(plain)


def test_weighted_percentiles_equal_weights_match_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=20001)
    w = np.full(x.size, 1.0 / x.size)
    np.testing.assert_allclose(weighted_percentiles(x, w, [16, 50, 84]),
                               np.percentile(x, [16, 50, 84]), atol=1e-3)


def test_sfh_percentiles_conserve_formed_mass():
    # one delayed-tau model of known formed mass: the SFH integrates to it
    names = ("log_age", "log_tau", "log_mass_formed")
    s = PosteriorSamples(names, np.array([[0.8, 0.3, 10.0]]), np.array([1.0]))
    lbt, p16, p50, p84 = sfh_percentiles(s, 1, nsamples=5,
                                         lbt=np.linspace(0, 10**0.8, 4001))
    np.testing.assert_array_equal(p16, p84)
    formed = np.trapezoid(p50, lbt) * 1e9
    assert formed == pytest.approx(1e10, rel=2e-3)
    # SFR(lbt) of a delayed tau peaks at t = tau after the onset
    t_peak = 10**0.8 - lbt[np.argmax(p50)]
    assert t_peak == pytest.approx(10**0.3, rel=0.01)


def test_mcmc_chain_samples_are_used(tmp_path):
    fit = FitResult(method="mcmc", names=("log_mass", "log_age", "log_tau"),
                    mean=np.full(3, np.nan), std=np.full(3, np.nan), p16=np.zeros(3),
                    p50=np.zeros(3), p84=np.zeros(3), best=np.zeros(3),
                    filters=("sdss_r",), obs_flux=np.ones(1), obs_flux_err=np.ones(1),
                    bfit_photo=np.ones(1), z=0.1)
    rng = np.random.default_rng(1)
    fit.samples = np.column_stack([rng.normal(10, 0.1, 500), rng.normal(0.5, 0.05, 500),
                                   rng.normal(0.0, 0.1, 500)])
    s = posterior_samples(fit)
    assert s.values.shape == (500, 3) and np.allclose(s.weights, 1 / 500)
    fig = plot_sfh(s, 1, nsamples=50, path=tmp_path / "sfh.png")
    assert isinstance(fig, Figure) and imread(tmp_path / "sfh.png").shape[2] in (3, 4)
    fig = plot_corner(s, params=["log_mass", "log_age"], path=tmp_path / "c.png")
    assert len(fig.axes) == 4
    # fewer samples than dimensions: the samples themselves, sized by weight
    fig = plot_corner(PosteriorSamples(("a", "b"), np.array([[0.0, 1.0], [1.0, 2.0]]),
                                       np.array([0.3, 0.7])), ["a", "b"])
    assert "2 posterior sample(s)" in fig._suptitle.get_text()


def test_figures_are_written(setup, tmp_path):
    model, lib, fit, truth = setup
    s = posterior_samples(fit, lib)
    fig = plot_sed(fit, model=model, samples=s, nspec=20, path=tmp_path / "sed.png")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert {"best fit", "observed", "stellar", "nebular", "model 16–84 %"} <= set(labels)
    plot_sed(fit, path=tmp_path / "sed_phot.svg")  # photometry only, other format
    assert (tmp_path / "sed_phot.svg").read_text().lstrip().startswith("<?xml")
    plot_corner(s, truths=truth, path=tmp_path / "corner.png")
    plot_sfh(s, 1, nsamples=30, path=tmp_path / "sfh.png")
    plot_filters(FILTERS, path=tmp_path / "filters.png")
    for name in ("sed.png", "corner.png", "sfh.png", "filters.png"):
        img = imread(tmp_path / name)
        assert img.shape[0] > 100 and img.std() > 0
    with pytest.raises(ValueError):
        plot_sed(fit, wunit="nm")


def test_map_plots(tmp_path):
    rng = np.random.default_rng(0)
    cube = FluxCube(rng.uniform(1, 2, (2, 4, 4)), np.full((2, 4, 4), 0.1),
                    ["sdss_g", "sdss_r"], z=0.05, pixel_scale=1.0)
    bm = np.repeat(np.arange(1, 5), 4).reshape(4, 4)
    binned = bin_with_map(cube, bm)
    results = {b: FitResult(method="rdsps", names=("log_mass", "log_sfr", "dust2"),
                            mean=np.array([9.0 + b, -1.0, 0.1 * b]), std=np.full(3, 0.1),
                            p16=np.zeros(3), p50=np.array([9.0 + b, -1.0, 0.1 * b]),
                            p84=np.ones(3), best=np.zeros(3), filters=("sdss_g", "sdss_r"),
                            obs_flux=np.ones(2), obs_flux_err=np.ones(2),
                            bfit_photo=np.ones(2), z=0.05, n_used=1) for b in range(1, 5)}
    pm = maps_parameters(binned, results, cube)
    fig = plot_maps(pm, path=tmp_path / "maps.png", extra={"truth": np.ones((4, 4))})
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert "pix: log_sigma_mass (p50)" in titles and "bin: dust2 (p50)" in titles
    assert "truth" in titles
    fig = plot_bin_map(binned, path=tmp_path / "bins.png")
    assert (tmp_path / "bins.png").stat().st_size > 1000
    with pytest.raises(ValueError):
        plot_maps(pm, params=[])


def _boxes(fig, texts):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    return [t.get_window_extent(renderer) for t in texts if t.get_visible() and t.get_text()]


def _overlaps(boxes):
    return [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a.overlaps(b)]


def test_corner_axes_ignore_a_floor_and_titles_do_not_collide():
    from pixedfit.analysis.plots import corner_range

    rng = np.random.default_rng(2)
    n = 4000
    # 3 % of the weight at the library's floor for log SFR of models with no star formation
    sfr = np.where(rng.uniform(size=n) < 0.03, -33.0, rng.normal(-1.0, 0.1, n))
    mass = rng.normal(9.5, 0.05, n)
    age = rng.normal(0.4, 0.2, n)
    s = PosteriorSamples(("log_mass", "log_sfr", "log_mw_age"),
                         np.column_stack([mass, sfr, age]), np.full(n, 1.0 / n))
    lo, hi = corner_range(sfr, s.weights)
    assert -2.0 < lo < -1.3 and -0.7 < hi < 0.0
    fig = plot_corner(s)
    axes = np.array(fig.axes).reshape(3, 3)
    assert axes[1, 1].get_xlim()[0] > -2.0 and axes[1, 0].get_ylim()[0] > -2.0
    assert "off axis" in axes[1, 1].get_title()  # the cut weight is reported
    titles = [axes[i, i].title for i in range(3)]
    title_boxes = _boxes(fig, titles)
    assert len(title_boxes) == 3 and not _overlaps(title_boxes)
    # no title runs into another panel, and no tick label into another one
    visible = [ax for ax in fig.axes if ax.axison]
    for box in title_boxes:
        hits = [ax for ax in visible if box.overlaps(ax.get_window_extent())]
        assert hits == []
    labels = [t for ax in visible for t in ax.get_xticklabels() + ax.get_yticklabels()]
    assert not _overlaps(_boxes(fig, labels))


def test_filter_plot_ticks_and_legend_are_readable(tmp_path):
    fig = plot_filters([*FILTERS, "galex_fuv", "2mass_h", "wise_w2"])
    ax = fig.axes[0]
    labels = [t for t in ax.get_xticklabels() if t.get_text()]
    lo, hi = ax.get_xlim()
    shown = [t for t in labels if lo <= t.get_position()[0] <= hi]
    assert len(shown) >= 4
    assert not _overlaps(_boxes(fig, shown))
    # the legend sits beside the axes, not on the curves
    legend_box = _boxes(fig, [ax.get_legend().get_texts()[0]])[0]
    assert legend_box.x0 > ax.get_window_extent().x1


def test_sed_wavelength_axis_has_several_labels(setup):
    model, _lib, fit, _truth = setup
    fig = plot_sed(fit, model=model)
    axr = fig.axes[1]
    lo, hi = axr.get_xlim()
    texts = [t for t in axr.get_xticklabels() if t.get_text()
             and lo <= t.get_position()[0] <= hi]
    assert len(texts) >= 3
    assert not _overlaps(_boxes(fig, texts))


def test_map_colour_bars_state_units():
    rng = np.random.default_rng(0)
    cube = FluxCube(rng.uniform(1, 2, (2, 4, 4)), np.full((2, 4, 4), 0.1),
                    ["sdss_g", "sdss_r"], z=0.05, pixel_scale=1.0)
    binned = bin_with_map(cube, np.repeat(np.arange(1, 5), 4).reshape(4, 4))
    names = ("log_mass", "log_sfr", "log_mw_age", "logzsol", "dust2")
    results = {b: FitResult(method="rdsps", names=names, mean=np.full(5, 0.1 * b),
                            std=np.full(5, 0.1), p16=np.zeros(5), p50=np.full(5, 0.1 * b),
                            p84=np.ones(5), best=np.zeros(5), filters=("sdss_g", "sdss_r"),
                            obs_flux=np.ones(2), obs_flux_err=np.ones(2),
                            bfit_photo=np.ones(2), z=0.05, n_used=1) for b in range(1, 5)}
    pm = maps_parameters(binned, results, cube)
    fig = plot_maps(pm)
    bars = {ax.get_ylabel() for ax in fig.axes if ax.get_label() == "<colorbar>"}
    assert {"log Σ* [M☉ kpc⁻²]", "log Σ_SFR [M☉ yr⁻¹ kpc⁻²]", "log age_MW [Gyr]",
            "log Z/Z☉"} <= bars
    assert any(b.startswith("τ̂₂") for b in bars)


def test_stamp_region_outline_is_visible(tmp_path):
    """The report used a 0.6-pt cyan contour on a region-only image; the new outline is a
    1.6-pt line with a black edge over the whole stamp, sky included."""
    rng = np.random.default_rng(0)
    n = 64
    y, x = np.mgrid[:n, :n]
    r = np.hypot(x - 32, y - 32)
    img = 30 * np.exp(-r / 6) + rng.normal(0, 1, (n, n))
    region = r <= 20
    plot_stamp_region(img, region, title="sdss_r", path=tmp_path / "ok.png", size=2.4)
    plot_stamp_region(img, region, flagged=True, path=tmp_path / "flag.png", size=2.4)
    ok = imread(tmp_path / "ok.png")[..., :3]
    flag = imread(tmp_path / "flag.png")[..., :3]
    lime = (ok[..., 1] > 0.8) & (ok[..., 0] < 0.3) & (ok[..., 2] < 0.3)
    red = (flag[..., 0] > 0.8) & (flag[..., 1] < 0.3) & (flag[..., 2] < 0.3)
    # perimeter 2π·20 stamp pixels = 2π·20·(240/64) ≈ 470 image pixels, ≥ 1.5 pixels wide
    for mask in (lime, red):
        assert mask.sum() > 1.5 * 470
        ys, xs = np.nonzero(mask)
        # 240 drawn pixels (2.4 in at 100 dpi) for 64 stamp pixels, centred in the PNG
        radius = np.hypot(xs - mask.shape[1] / 2, ys - mask.shape[0] / 2) * n / 240
        assert np.median(radius) == pytest.approx(20, abs=1.5)
    # the sky is drawn: the corners are not blank (all-white) pixels
    assert ok[:20, :20].std() > 0.02
    # a region filling the stamp is still outlined (along the stamp edge)
    plot_stamp_region(img, np.ones((n, n), bool), flagged=True, path=tmp_path / "all.png")
    full = imread(tmp_path / "all.png")[..., :3]
    assert ((full[..., 0] > 0.8) & (full[..., 1] < 0.3) & (full[..., 2] < 0.3)).sum() > 400
    with pytest.raises(ValueError, match="region"):
        plot_stamp_region(img, region[:10])
