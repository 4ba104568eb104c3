"""RDSPS kernel against a plain numpy implementation of the same posterior, and its rules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from pixedfit import _core
from pixedfit.fitting import (
    Gaussian,
    JointWithMass,
    ModelPhotometry,
    PriorSet,
    StudentT,
    Uniform,
    rdsps,
)

NB = 8


def toy_library(nmod: int = 3000, seed: int = 0, nz: int = 1):
    """Models f_b = 10^(log_mass) * exp(slope * x_b + curv * x_b^2) (log_mass = 0 stored)."""
    rng = np.random.default_rng(seed)
    x = np.linspace(-1.0, 1.0, NB)
    slope = rng.uniform(-1.0, 1.0, nmod)
    curv = rng.uniform(-0.5, 0.5, nmod)
    log_sfr = rng.uniform(-2.0, 0.0, nmod)
    params = np.column_stack([slope, curv, np.zeros(nmod), log_sfr])
    base = np.exp(slope[:, None] * x + curv[:, None] * x**2)
    if nz == 1:
        flux = base
        z_grid = None
    else:
        z_grid = np.linspace(0.0, 1.0, nz)
        # A break that moves through the bands with redshift makes z identifiable.
        flux = np.stack([base * (1 - 0.6 / (1 + np.exp(-(x - (2 * z - 1)) / 0.15))) / (1 + z) ** 2
                         for z in z_grid])
    names = ["slope", "curv", "log_mass", "log_sfr"]
    return ModelPhotometry.from_arrays(flux, params, names, z_grid=z_grid), flux, params


def reference_posterior(obs, err, flux, params, mass_cols, lnprior=None, student_dof=None,
                        perc=100.0):
    """Straightforward numpy: every pair, weights, weighted mean / std / exact quantiles."""
    w = 1.0 / err**2
    a = (flux * obs * w).sum(-1) / (flux**2 * w).sum(-1)
    resid = obs - a[:, None] * flux
    chi2 = (resid**2 * w).sum(-1)
    if student_dof is None:
        lnl = -0.5 * chi2 - 0.5 * np.log(2 * np.pi * err**2).sum()
    else:
        lnl = stats.t.logpdf(resid / err, student_dof).sum(-1)
    lnp = lnl + (0.0 if lnprior is None else lnprior)
    lnp = np.where(a > 0, lnp, -np.inf)
    if perc < 100:
        valid = np.isfinite(lnp)
        thr = np.percentile(chi2[valid], perc)
        lnp = np.where(chi2 <= thr, lnp, -np.inf)
    wt = np.exp(lnp - lnp.max())
    wt /= wt.sum()
    vals = params.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        vals[:, mass_cols] += np.log10(a)[:, None]
    mean = (wt[:, None] * np.where(wt[:, None] > 0, vals, 0)).sum(0)
    std = np.sqrt((wt[:, None] * np.where(wt[:, None] > 0, vals - mean, 0) ** 2).sum(0))
    quant = []
    for k in range(vals.shape[1]):
        order = np.argsort(vals[:, k])
        cdf = np.cumsum(wt[order])
        quant.append([vals[order, k][np.searchsorted(cdf, q)] for q in (0.16, 0.5, 0.84)])
    return mean, std, np.array(quant).T, int(np.argmin(np.where(a > 0, chi2, np.inf))), wt


def mock(flux, idx, log_mass=3.0, snr=20.0, seed=1):
    rng = np.random.default_rng(seed)
    truth = flux[idx] * 10**log_mass
    err = truth / snr
    return truth + rng.normal(0, err), err


def test_matches_numpy_reference_gaussian():
    models, flux, params = toy_library()
    obs, err = mock(flux, 17)
    res = rdsps(obs, err, models)
    mean, std, quant, best, _ = reference_posterior(obs, err, flux, params, [2, 3])
    np.testing.assert_allclose(res.mean[0], mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res.std[0], std, rtol=1e-6, atol=1e-12)
    # Histogram percentiles: within a bin width of the exact weighted quantiles, plus the
    # spacing between the discrete model values around them.
    width = (params.max(0) - params.min(0) + 0.1) / 4096 * 4
    for row, exact in zip((res.p16[0], res.p50[0], res.p84[0]), quant, strict=True):
        assert np.all(np.abs(row - exact) <= np.maximum(width, 0.25 * std)), (row, exact)
    assert res.best_model[0] == best
    assert res.n_used[0] == 3000
    assert res.names == ("slope", "curv", "log_mass", "log_sfr")
    # The truth is recovered.
    assert abs(res.mean[0, 2] - 3.0) < 3 * res.std[0, 2] + 0.01


def test_matches_numpy_reference_student_t_and_chi2_cut():
    models, flux, params = toy_library(seed=5)
    obs, err = mock(flux, 3, snr=10, seed=2)
    res = rdsps(obs, err, models, likelihood="student_t", dof=3.0, perc_chi2=90.0)
    mean, std, _, _, _ = reference_posterior(obs, err, flux, params, [2, 3], student_dof=3.0,
                                             perc=90.0)
    np.testing.assert_allclose(res.mean[0], mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res.std[0], std, rtol=1e-6, atol=1e-12)
    assert res.n_used[0] == pytest.approx(0.9 * 3000, abs=2)


@pytest.mark.parametrize("perc", [0.5, 37.0, 90.0, 99.95])
def test_chi2_cut_matches_numpy_percentile_with_ties(perc):
    # Every model twice (tied chi2 values) and a wide chi2 range: the kernel's selection of
    # the cut (a radix select) must give numpy.percentile's interpolated threshold.
    models, flux, params = toy_library(nmod=2000, seed=11)
    flux2 = np.concatenate([flux, flux])
    params2 = np.concatenate([params, params])
    models2 = ModelPhotometry.from_arrays(flux2, params2, models.param_names)
    obs, err = mock(flux2, 5, snr=30, seed=4)
    res = rdsps(obs, err, models2, perc_chi2=perc)
    mean, std, _, _, _ = reference_posterior(obs, err, flux2, params2, [2, 3], perc=perc)
    np.testing.assert_allclose(res.mean[0], mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res.std[0], std, rtol=1e-6, atol=1e-12)
    w = 1.0 / err**2
    a = (flux2 * obs * w).sum(-1) / (flux2**2 * w).sum(-1)
    chi2 = ((obs - a[:, None] * flux2) ** 2 * w).sum(-1)
    thr = np.percentile(chi2[a > 0], perc)
    assert res.n_used[0] == np.count_nonzero((chi2 <= thr) & (a > 0))


def test_priors_match_reference_including_mass_and_joint_priors():
    models, flux, params = toy_library(seed=7)
    obs, err = mock(flux, 40, log_mass=2.0, snr=8, seed=3)
    priors = PriorSet([
        Gaussian("slope", loc=0.2, scale=0.3),
        StudentT("curv", df=2, loc=0.0, scale=0.2, lo=-0.4, hi=0.4),
        Gaussian("log_mass", loc=2.1, scale=0.2, lo=0.0, hi=4.0),
        JointWithMass("log_sfr", log_mass=[0.0, 4.0], param_values=[-0.5, 1.5], scale=0.5,
                      mass_surface_density=True),
    ])
    area = 2.0
    res = rdsps(obs, err, models, priors=priors, area_kpc2=area, return_weights=True)
    w = 1.0 / err**2
    a = (flux * obs * w).sum(-1) / (flux**2 * w).sum(-1)
    logm = np.log10(np.where(a > 0, a, np.nan))
    lnprior = (stats.norm.logpdf(params[:, 0], 0.2, 0.3)
               + np.where(np.abs(params[:, 1]) <= 0.4, stats.t.logpdf(params[:, 1], 2, 0, 0.2),
                          -np.inf)
               + np.where((logm >= 0) & (logm <= 4), stats.norm.logpdf(logm, 2.1, 0.2), -np.inf))
    mu = np.interp(logm - np.log10(area), [0.0, 4.0], [-0.5, 1.5])
    lnprior = lnprior + stats.norm.logpdf(params[:, 3] + logm, mu, 0.5)
    lnprior = np.where(np.isfinite(lnprior), lnprior, -np.inf)
    mean, std, _, _, wt = reference_posterior(obs, err, flux, params, [2, 3], lnprior=lnprior)
    np.testing.assert_allclose(res.mean[0], mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(res.std[0], std, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(res.weights[0], wt, atol=1e-6)
    assert res.weights[0].sum() == pytest.approx(1.0, rel=1e-5)


def test_free_redshift_grid_recovers_z_and_reports_its_posterior():
    models, flux, _ = toy_library(nmod=2000, seed=11, nz=21)
    iz, im = 8, 123
    rng = np.random.default_rng(4)
    truth = flux[iz, im] * 1e3
    err = truth / 30
    obs = truth + rng.normal(0, err)
    res = rdsps(obs, err, models, priors={"z": (0.0, 1.0)})
    assert res.names[-1] == "z"
    zpost = res.z_posterior[0]
    assert zpost.sum() == pytest.approx(1.0, rel=1e-9)
    assert abs(res.mean[0, -1] - models.z_grid[iz]) < 3 * res.std[0, -1] + 0.05
    assert abs(models.z_grid[np.argmax(zpost)] - models.z_grid[iz]) <= 0.1 + 1e-9
    assert res.mean[0, -1] == pytest.approx((zpost * models.z_grid).sum(), rel=1e-9)


def test_thread_count_and_batching_do_not_change_results():
    models, flux, _ = toy_library(nmod=5000, seed=2)
    obs = np.array([mock(flux, i, seed=i)[0] for i in range(5)])
    err = np.abs(obs) / 15
    one = rdsps(obs, err, models, threads=1)
    two = rdsps(obs, err, models, threads=2)
    single = [rdsps(obs[i], err[i], models, threads=2) for i in range(5)]
    for name in ("mean", "std", "p16", "p50", "p84", "chi2_min", "ln_evidence"):
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name))
        np.testing.assert_array_equal(
            getattr(one, name), np.vstack([getattr(s, name) for s in single]).reshape(
                getattr(one, name).shape)
        )


def test_negative_fluxes_and_masking():
    models, flux, _ = toy_library(nmod=1000)
    obs, err = mock(flux, 5, snr=5)
    # An SED anti-correlated with every model: nothing fits, NaN statistics, not a crash.
    res = rdsps(-np.abs(obs), err, models)
    assert res.n_used[0] == 0 and np.all(np.isnan(res.mean[0])) and res.best_model[0] == -1
    # A few negative fluxes in a faint SED are fine.
    faint = obs.copy()
    faint[:2] = -0.1 * np.abs(faint[:2])
    assert rdsps(faint, err, models).n_used[0] > 0
    bad = obs.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="SED 0, band 3"):
        rdsps(bad, err, models)
    err0 = err.copy()
    err0[4] = 0.0
    with pytest.raises(ValueError, match="mask_invalid"):
        rdsps(obs, err0, models)
    masked = rdsps(bad, err0, models, mask_invalid=True)
    assert masked.n_bands_used[0] == NB - 2
    keep = np.r_[0:3, 5:NB]
    sub = ModelPhotometry.from_arrays(flux[:, keep], models.params, models.param_names)
    ref = rdsps(obs[keep], err[keep], sub)
    np.testing.assert_allclose(masked.mean, ref.mean, rtol=1e-12)


def test_error_floor_is_explicit():
    models, flux, params = toy_library(nmod=800)
    obs, err = mock(flux, 9)
    res = rdsps(obs, err, models, error_floor=0.1)
    mean, _, _, _, _ = reference_posterior(obs, np.sqrt(err**2 + (0.1 * obs) ** 2), flux,
                                           params, [2, 3])
    np.testing.assert_allclose(res.mean[0], mean, rtol=1e-9, atol=1e-12)


def test_prior_errors_are_clear():
    models, flux, _ = toy_library(nmod=500)
    obs, err = mock(flux, 1)
    with pytest.raises(ValueError, match=r"'slope' \[2, 3\] does not overlap"):
        rdsps(obs, err, models, priors={"slope": (2.0, 3.0)})
    with pytest.raises(ValueError, match="not a parameter"):
        rdsps(obs, err, models, priors={"gas_logu": (-3, -1)})
    with pytest.raises(ValueError, match="area_kpc2"):
        rdsps(obs, err, models, priors=[JointWithMass("slope", [0, 1], [0, 1], 0.1, True)])
    with pytest.raises(ValueError, match="finite range"):
        rdsps(obs, err, models, priors=[Gaussian("log_mass", 3.0, 0.1)])
    with pytest.raises(ValueError, match="likelihood"):
        rdsps(obs, err, models, likelihood="poisson")
    with pytest.raises(ValueError, match="perc_chi2"):
        rdsps(obs, err, models, perc_chi2=0)
    with pytest.raises(ValueError, match="shape"):
        rdsps(obs[:3], err[:3], models)


def test_uniform_prior_on_mass_restricts_the_normalisation():
    models, flux, _ = toy_library(nmod=1000)
    obs, err = mock(flux, 2, log_mass=3.0)
    free = rdsps(obs, err, models)
    res = rdsps(obs, err, models, priors=[Uniform("log_mass", 2.999, 5.0)])
    # The normalisation is fitted, not sampled: the prior removes pairs below the edge.
    assert 0 < res.n_used[0] < free.n_used[0]
    assert res.p16[0, 2] >= 2.999 - 1e-3 and res.mean[0, 2] > free.mean[0, 2]
    # No model can be normalised into a range far from the data: an empty posterior.
    assert rdsps(obs, err, models, priors=[Uniform("log_mass", 5.0, 6.0)]).n_used[0] == 0


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(-3.0, 3.0), snr=st.floats(3.0, 100.0))
def test_property_mass_shift_invariance(seed, scale, snr):
    """Scaling the data by 10^s shifts mass-scaled statistics by s and nothing else."""
    models, flux, _ = toy_library(nmod=600, seed=seed % 7)
    obs, err = mock(flux, seed % 600, snr=snr, seed=seed)
    base = rdsps(obs, err, models, threads=1)
    moved = rdsps(obs * 10**scale, err * 10**scale, models, threads=2)
    np.testing.assert_allclose(moved.mean[0, [0, 1]], base.mean[0, [0, 1]], atol=1e-9)
    np.testing.assert_allclose(moved.mean[0, [2, 3]], base.mean[0, [2, 3]] + scale, atol=1e-9)
    np.testing.assert_allclose(moved.std[0], base.std[0], atol=1e-7)
    assert moved.best_model[0] == base.best_model[0]
    for q in ("p16", "p50", "p84"):
        lo, hi = getattr(base, q)[0], getattr(moved, q)[0]
        assert np.all(np.abs(hi - lo - np.array([0, 0, scale, scale])) < 2e-3)


@pytest.mark.parametrize("excluded", [0.4, 0.9])
def test_excluded_models_with_or_without_the_copy(excluded, monkeypatch):
    """Models a prior excludes (ln prior -inf, e.g. older than the universe) are neither the
    best model nor weighted, whether the pass copies the allowed ones out (few allowed) or
    hands the kernel the whole library; both ways agree with the numpy reference."""
    import importlib

    mod = importlib.import_module("pixedfit.fitting.rdsps")
    models, flux, params = toy_library(seed=11)
    obs, err = mock(flux, 25, log_mass=2.0, snr=15, seed=2)
    w = 1.0 / err**2
    a = (flux * obs * w).sum(-1) / (flux**2 * w).sum(-1)
    chi2 = ((obs - a[:, None] * flux) ** 2 * w).sum(-1)
    rng = np.random.default_rng(5)
    extra = np.where(rng.random(flux.shape[0]) < excluded, -np.inf, 0.0)
    extra[np.argmin(np.where(a > 0, chi2, np.inf))] = -np.inf  # the best model is excluded
    mean, std, _, _, wt = reference_posterior(obs, err, flux, params, [2, 3], lnprior=extra)
    best = int(np.argmin(np.where((a > 0) & np.isfinite(extra), chi2, np.inf)))
    runs = []
    for below in (0.0, 1.01):  # never copy / copy whenever any model is excluded
        monkeypatch.setattr(mod, "_SUBSET_BELOW", below)
        res = rdsps(obs, err, models, ln_prior_extra=extra, return_weights=True)
        assert res.best_model[0] == best and np.isfinite(extra[res.best_model[0]])
        assert res.chi2_min[0] == pytest.approx(chi2[best], rel=1e-9)
        assert res.n_used[0] == np.isfinite(extra).sum()
        np.testing.assert_allclose(res.mean[0], mean, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(res.std[0], std, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(res.weights[0], wt, atol=1e-6)
        assert np.all(res.weights[0][~np.isfinite(extra)] == 0)
        runs.append(res)
    for name in ("mean", "std", "p16", "p50", "p84", "best_scale", "ln_evidence"):
        np.testing.assert_allclose(getattr(runs[0], name), getattr(runs[1], name), rtol=1e-12,
                                   err_msg=name)


def test_kernel_takes_a_likelihood_enum_and_returns_a_read_only_object():
    models, flux, _ = toy_library(nmod=200, seed=2)
    obs, err = mock(flux, 10)
    args = (obs[None], 1.0 / err[None] ** 2, models.flux, models.params,
            np.array([0, 0, 1, 1], np.uint8))
    out = _core.rdsps_fit(*args, likelihood=_core.Likelihood.STUDENT_T, return_weights=True)
    assert isinstance(out, _core.RdspsFitResult)
    assert out.mean.shape == out.p50.shape == (1, 4) and out.weights.shape == (1, 200)
    assert out.weights.dtype == np.float32 and out.n_used[0] > 0
    assert _core.rdsps_fit(*args).weights is None  # the Gaussian default, no weights
    with pytest.raises(AttributeError):
        out.mean = None
    with pytest.raises(TypeError):  # an int is not a Likelihood
        _core.rdsps_fit(*args, likelihood=1)
