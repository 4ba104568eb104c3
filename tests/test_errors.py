"""The error model: calibration errors, the explicit floor, upper limits (Sawicki 2012),
χ²/dof, and the calibration fractions carried from the flux map to the fit."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.special import log_ndtr, logsumexp

from pixedfit import _core
from pixedfit.binning import bin_pixels
from pixedfit.cubes import BinnedCube, FluxCube, SpecPhotCube
from pixedfit.fitting import (
    ErrorModel,
    McmcSettings,
    Parallelism,
    RdspsSettings,
    fit_binmap,
    fit_catalog,
    fit_sed,
)
from pixedfit.fitting.errors import (
    BandChi2,
    CalibrationWarning,
    _row_sums,
    calibration_fractions,
    chi2_terms,
    error_settings,
    fit_quality,
    observations,
)
from pixedfit.fitting.mcmc import MCMCShortChainWarning
from pixedfit.fitting.posterior import LogProbability
from pixedfit.fitting.priors import PriorSet
from pixedfit.fitting.rdsps import ModelPhotometry, rdsps
from pixedfit.instruments import get_instrument
from pixedfit.library import generate_library
from pixedfit.sps import SEDModel

FILTERS = ["galex_fuv", "galex_nuv", "sdss_u", "sdss_g", "sdss_r", "sdss_i", "sdss_z",
           "2mass_j", "2mass_h", "2mass_k", "wise_w1", "wise_w2"]
RANGES = {"log_age": (-1.0, 1.1), "logzsol": (-1.0, 0.2), "dust2": (0.0, 2.0)}
SDSS = ["sdss_u", "sdss_g", "sdss_r", "sdss_i", "sdss_z"]


@pytest.fixture(scope="module")
def model(fit_model):
    return fit_model


@pytest.fixture(scope="module")
def library(fit_library):
    return fit_library(1500, 11, RANGES)


# ------------------------------------------------------------------ calibration fractions
def test_calibration_fractions_rules():
    table = np.array([get_instrument(f).calib_err for f in SDSS])
    assert table[0] == pytest.approx(0.013)  # DustPedia's SDSS u
    np.testing.assert_array_equal(calibration_fractions(SDSS), table)
    np.testing.assert_array_equal(calibration_fractions(SDSS, True), table)
    np.testing.assert_array_equal(calibration_fractions(SDSS, False), 0.0)
    np.testing.assert_array_equal(calibration_fractions(SDSS, None), 0.0)
    np.testing.assert_array_equal(calibration_fractions(SDSS, 0), 0.0)
    np.testing.assert_array_equal(calibration_fractions(SDSS, 0.05), 0.05)
    over = calibration_fractions(SDSS, {"sdss_u": 0.1})
    np.testing.assert_array_equal(over, np.r_[0.1, table[1:]])
    np.testing.assert_array_equal(calibration_fractions(SDSS, [0.01, 0.02, 0.03, 0.04, 0.05]),
                                  [0.01, 0.02, 0.03, 0.04, 0.05])
    # a binned cube's fractions win; a NaN (unknown) falls back to the table
    cube = np.array([0.2, np.nan, 0.2, 0.2, 0.2])
    np.testing.assert_array_equal(calibration_fractions(SDSS, "auto", cube),
                                  [0.2, table[1], 0.2, 0.2, 0.2])


def test_unknown_filter_warns_and_gets_zero():
    filters = ["sdss_r", "my_narrow_band"]
    with pytest.warns(CalibrationWarning, match="my_narrow_band"):
        out = calibration_fractions(filters)
    assert out[1] == 0.0 and out[0] == get_instrument("sdss_r").calib_err
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = calibration_fractions(filters, {"my_narrow_band": 0.04})
    assert out[1] == 0.04


@pytest.mark.parametrize("value, match", [
    (1.5, "calibration"), (-0.1, "calibration"), (np.nan, "calibration"),
    ("table", "calibration"), ({"sdss_q": 0.1}, "sdss_q"), ([0.1, 0.1], "calibration"),
    ({"sdss_u": 2.0}, "sdss_u"),
])
def test_bad_calibration_raises(value, match):
    with pytest.raises(ValueError, match=match):
        calibration_fractions(SDSS, value)


# ------------------------------------------------------------------ total errors
def test_total_sigma_matches_numpy():
    rng = np.random.default_rng(0)
    f = rng.normal(5.0, 3.0, (4, 5))
    e = rng.uniform(0.1, 1.0, (4, 5))
    c = np.array([0.01, 0.02, 0.05, 0.0, 0.1])
    obs = observations(f, e, 5, calibration=c, error_floor=0.03)
    np.testing.assert_allclose(obs.sigma, np.sqrt(e**2 + (c * f) ** 2 + (0.03 * f) ** 2),
                               rtol=1e-15)
    assert not obs.upper.any() and obs.used.all()


def test_rdsps_chi2_with_calibration_matches_numpy():
    rng = np.random.default_rng(1)
    m = rng.uniform(0.5, 2.0, (1, 6))
    models = ModelPhotometry.from_arrays(m, np.zeros((1, 1)), ["log_mass"])
    d = 3.0 * m[0] * rng.normal(1.0, 0.05, 6)
    e = 0.02 * d
    c = np.full(6, 0.05)
    res = rdsps(d, e, models, calibration=c)
    w = 1.0 / (e**2 + (c * d) ** 2)
    a = (d * m[0] * w).sum() / (m[0] ** 2 * w).sum()
    assert res.chi2_min[0] == pytest.approx(((d - a * m[0]) ** 2 * w).sum(), rel=1e-12)
    np.testing.assert_allclose(res.obs_sigma[0], 1.0 / np.sqrt(w), rtol=1e-15)
    # without calibration errors the same data give a larger chi2
    assert rdsps(d, e, models).chi2_min[0] > res.chi2_min[0]


# ------------------------------------------------------------------ upper limits
def test_upper_limit_conventions():
    f = np.array([10.0, 0.5, np.nan, 2.0, -1.0])
    e = np.ones(5)
    explicit = observations(np.where(np.isnan(f), 0.0, f), e, 5,
                            upper_limits=[False, False, True, True, False])
    np.testing.assert_array_equal(explicit.upper[0], [False, False, True, True, False])
    assert explicit.flux[0, 3] == 2.0  # the flux of a flagged band is the limit itself
    rule = observations(f, e, 5, upper_limit_nsigma=3.0)
    # S/N < 3 and the NaN flux with an error become limits at 3 sigma
    np.testing.assert_array_equal(rule.upper[0], [False, True, True, True, True])
    np.testing.assert_array_equal(rule.flux[0], [10.0, 3.0, 3.0, 3.0, 3.0])
    # without the rule a NaN flux is invalid: raises, or is dropped with mask_invalid
    with pytest.raises(ValueError, match="upper_limit_nsigma"):
        observations(f, e, 5)
    dropped = observations(f, e, 5, mask_invalid=True)
    assert not dropped.used[0, 2] and np.isinf(dropped.sigma[0, 2]) and dropped.ivar[0, 2] == 0
    with pytest.raises(ValueError, match="upper_limits flags this band"):
        observations(f, e, 5, upper_limits=[False, False, True, False, False])


@pytest.mark.parametrize("kwargs, match", [
    ({"upper_limits": [1, 0, 2]}, "upper_limits"),
    ({"upper_limits": np.ones((2, 3), bool)}, "upper_limits"),
    ({"upper_limit_nsigma": -1.0}, "upper_limit_nsigma"),
    ({"upper_limit_nsigma": True}, "upper_limit_nsigma"),
    ({"error_floor": -0.1}, "error_floor"),
    ({"calibration": np.array([0.1, 0.1])}, "calibration"),
])
def test_bad_error_model_inputs_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        observations(np.ones(3), np.ones(3), 3, **kwargs)


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=-1e4, max_value=40.0, allow_nan=False))
def test_log_norm_cdf_matches_scipy(x):
    expect = stats.norm.logcdf(x)
    got = _core.log_norm_cdf(x)
    assert got == pytest.approx(expect, rel=1e-11, abs=1e-300)


def _numpy_rdsps(d, sigma, upper, m, likelihood="gauss", dof=3.0):
    """Direct evaluation of every pair: a from the detected bands, chi2 with the limit
    terms, ln p (flat priors)."""
    det = ~upper
    w = 1.0 / sigma**2
    a = (d[det] * m[:, det] * w[det]).sum(1) / (m[:, det] ** 2 * w[det]).sum(1)
    r = (d - a[:, None] * m) / sigma
    ln_lim = stats.norm.logcdf(r[:, upper]).sum(1)
    chi2 = (r[:, det] ** 2).sum(1) - 2 * ln_lim
    if likelihood == "gauss":
        lnp = -0.5 * np.log(2 * np.pi * sigma[det] ** 2).sum() - 0.5 * chi2
    else:
        lnp = stats.t.logpdf(r[:, det], dof).sum(1) + ln_lim
    lnp = np.where(a > 0, lnp, -np.inf)
    return a, chi2, lnp


@pytest.mark.parametrize("likelihood", ["gauss", "student_t"])
def test_kernel_upper_limits_match_scipy(likelihood):
    rng = np.random.default_rng(3)
    nmod, nband = 3000, 7
    m = rng.uniform(0.2, 2.0, (nmod, nband))
    params = np.column_stack([np.zeros(nmod), rng.uniform(0, 1, nmod)])
    models = ModelPhotometry.from_arrays(m, params, ["log_mass", "x"])
    d = 4.0 * m[17] * rng.normal(1.0, 0.03, nband)
    e = 0.05 * d
    upper = np.zeros(nband, bool)
    upper[[0, 5]] = True
    d[0] = 1.5 * d[0]  # limits above and below the model's flux
    d[5] = 0.8 * d[5]
    res = rdsps(d, e, models, upper_limits=upper, likelihood=likelihood, return_weights=True)
    a, chi2, lnp = _numpy_rdsps(d, e, upper, m, likelihood)
    k = int(np.argmin(chi2))
    assert res.best_model[0] == k
    assert res.chi2_min[0] == pytest.approx(chi2[k], rel=1e-10)
    assert res.best_scale[0] == pytest.approx(a[k], rel=1e-12)
    assert res.ln_evidence[0] == pytest.approx(logsumexp(lnp) - np.log(nmod), rel=1e-10)
    w = np.exp(lnp - lnp.max())
    np.testing.assert_allclose(res.weights[0], w / w.sum(), rtol=2e-6, atol=1e-9)
    assert res.n_bands_used[0] == nband
    np.testing.assert_array_equal(res.upper[0], upper)


def test_kernel_limits_only_sed_has_no_normalisation():
    m = np.ones((4, 3))
    models = ModelPhotometry.from_arrays(m, np.zeros((4, 1)), ["log_mass"])
    res = rdsps(np.ones(3), np.ones(3), models, upper_limits=np.ones(3, bool))
    assert res.n_used[0] == 0 and np.isnan(res.mean[0, 0])


def test_kernel_upper_limits_are_thread_invariant():
    rng = np.random.default_rng(4)
    for nsed, nmod in ((1, 300_000), (13, 20_000)):  # split over models / over SEDs
        m = rng.uniform(0.2, 2.0, (nmod, 6))
        params = np.column_stack([np.zeros(nmod), rng.uniform(0, 1, nmod)])
        models = ModelPhotometry.from_arrays(m, params, ["log_mass", "x"])
        d = 3.0 * m[rng.integers(nmod, size=nsed)] * rng.normal(1.0, 0.05, (nsed, 6))
        e = 0.04 * np.abs(d)
        upper = rng.uniform(size=(nsed, 6)) < 0.3
        upper[:, 2] = False
        runs = [rdsps(d, e, models, upper_limits=upper, calibration=np.full(6, 0.03),
                      threads=t) for t in (1, 2)]
        for name in ("mean", "std", "p16", "p50", "p84", "chi2_min", "ln_evidence",
                     "best_model", "n_used"):
            np.testing.assert_array_equal(getattr(runs[0], name), getattr(runs[1], name))


def test_log_probability_matches_the_kernel_with_limits(model, library):
    """LogProbability (MCMC, nested) and the RDSPS kernel: the same posterior over the
    library's models, with calibration errors and upper limits."""
    z = 0.1
    models = library.photometry(FILTERS, z, model=model)
    truth = {k: float(v[40]) for k, v in library.params.items()}
    truth["log_mass"] = 10.0
    flux = model.photometry(truth, z, FILTERS)
    err = flux / 20
    upper = np.zeros(len(FILTERS), bool)
    upper[:2] = True
    obs = flux.copy()
    obs[:2] = 3 * err[:2]  # faint UV: limits at 3 sigma, near the model's flux
    calib = calibration_fractions(FILTERS)
    res = rdsps(obs, err, models, upper_limits=upper, calibration=calib, return_weights=True)
    fitted = observations(obs, err, len(FILTERS), calibration=calib, upper_limits=upper)
    # each library model at its kernel normalisation (detected bands), through LogProbability
    m = models.flux[0].T
    w = fitted.ivar[0] * ~upper
    a = (m * fitted.flux[0] * w).sum(1) / (m * m * w).sum(1)
    free = ["logzsol", "log_tau", "log_age", "dust2", "log_mass"]
    theta = np.column_stack([library.params[n] for n in free[:-1]]
                            + [library.params["log_mass"] + np.log10(a)])
    lp = LogProbability(model, free, theta.min(0) - 1, theta.max(0) + 1, {}, PriorSet(), z,
                        FILTERS, fitted.flux[0], fitted.sigma[0], age_limit=False, threads=1,
                        upper=upper)
    lnp, extras = lp.evaluate(theta, extras=True)
    # the MCMC chi2 is the direct numpy/scipy one
    r = (fitted.flux[0] - extras["photometry"]) / fitted.sigma[0]
    direct = (r[:, 2:] ** 2).sum(1) - 2 * stats.norm.logcdf(r[:, :2]).sum(1)
    np.testing.assert_allclose(extras["chi2"], direct, rtol=1e-12)
    # ... and gives the kernel's weights and evidence
    ln_norm = -0.5 * np.log(2 * np.pi * fitted.sigma[0, 2:] ** 2).sum()
    np.testing.assert_allclose(res.ln_evidence[0],
                               logsumexp(lnp + ln_norm) - np.log(library.nmodels), rtol=1e-6)
    wt = np.exp(lnp - lnp.max())
    np.testing.assert_allclose(res.weights[0], wt / wt.sum(), rtol=1e-4, atol=1e-7)


def test_faint_uv_mock_with_upper_limits(model, library):
    """GALEX at S/N < 3: with upper_limit_nsigma=3 the UV bands become limits, the fit is
    good and recovers the truth; RDSPS and MCMC agree."""
    z = 0.1
    truth = {k: float(v[123]) for k, v in library.params.items()}
    truth["log_mass"] = 10.0
    flux = model.photometry(truth, z, FILTERS)
    err = flux / 20
    err[:2] = np.maximum(flux[:2], 1e-30) / 0.8  # S/N 0.8 in FUV and NUV
    obs = flux + np.random.default_rng(8).normal(0, err)
    kw = {"library": library, "model": model, "errors": ErrorModel(upper_limit_nsigma=3.0)}
    res = fit_sed(obs, err, FILTERS, z=z, **kw)
    assert res.diagnostics["upper_limits"] == [True, True] + [False] * 10
    np.testing.assert_allclose(res.obs_flux[:2], 3 * err[:2], rtol=1e-12)
    assert 0.2 < res.diagnostics["chi2_dof"] < 3.0
    assert res.diagnostics["ndof"] == 12 - 5
    k = res.names.index("log_mass")
    assert abs(res.p50[k] - 10.0) < 3 * max(res.std[k], 0.02)
    with warnings.catch_warnings():  # a short chain, enough for the median
        warnings.simplefilter("ignore", MCMCShortChainWarning)
        mc = fit_sed(obs, err, FILTERS, z=z,
                     method=McmcSettings(nwalkers=24, nsteps=300, nsteps_cut=100), seed=1,
                     parallel=Parallelism(threads=1), **kw)
    j = mc.names.index("log_mass")
    assert mc.diagnostics["upper_limits"][:2] == [True, True]
    assert abs(mc.p50[j] - res.p50[k]) < 0.5 * max(res.std[k], mc.std[j])
    np.testing.assert_allclose(mc.obs_flux, res.obs_flux)


# ------------------------------------------------------------------ chi2/dof and drivers
def test_fit_quality():
    assert fit_quality(14.0, 12, 5) == {"chi2_dof": 2.0, "ndof": 7}
    out = fit_quality(3.0, 4, 5)
    assert np.isnan(out["chi2_dof"]) and out["ndof"] == -1


def test_chi2_terms_without_limits_is_chi2():
    rng = np.random.default_rng(2)
    m = rng.normal(size=(5, 4))
    f, s = rng.normal(size=4), rng.uniform(0.5, 1, 4)
    np.testing.assert_allclose(chi2_terms(m, f, s), (((f - m) / s) ** 2).sum(1))
    s[1] = np.inf  # a dropped band
    np.testing.assert_allclose(chi2_terms(m, f, s, np.zeros(4, bool)),
                               (((f - m)[:, [0, 2, 3]] / s[[0, 2, 3]]) ** 2).sum(1))


def _assert_bits(a, b):
    """Equal arrays, bit for bit (NaN where NaN, the same signed zeros)."""
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.signbit(a), np.signbit(b))


@pytest.mark.parametrize("n", [1, 7, 128, 129, 600])
def test_chi2_is_summed_band_after_band(n):
    """BandChi2 (and chi2_terms through it) adds the bands one after the other from 0 for
    any number of models (a running sum for a few, one addition per band for many): a
    model's χ² does not depend on the others evaluated with it."""
    rng = np.random.default_rng(n)
    nb = 9
    model = rng.normal(1.0, 0.5, (n, nb))
    flux, sigma = rng.normal(1.0, 0.5, nb), rng.uniform(0.05, 0.2, nb)
    sigma[4] = np.inf  # a dropped band
    model[0, 2] = np.nan
    upper = np.zeros(nb, dtype=bool)
    upper[[1, 6]] = True
    r = (flux - model) / sigma
    for lim in (None, upper):
        detected, limits = np.zeros(n), np.zeros(n)
        for b in range(nb):
            if np.isfinite(sigma[b]) and (lim is None or not lim[b]):
                detected += r[:, b] ** 2
            elif np.isfinite(sigma[b]):
                limits += log_ndtr(r[:, b])
        expect = detected if lim is None else detected - 2.0 * limits
        chi2 = BandChi2(flux, sigma, lim)
        _assert_bits(chi2(model), expect)
        _assert_bits(chi2_terms(model, flux, sigma, lim), expect)
        _assert_bits(np.array([chi2(row)[0] for row in model]), expect)


@pytest.mark.parametrize("n", [3, 200])
def test_row_sums_start_from_zero(n):
    """Rows of −0 sum to +0 (a sum from 0), NaN stays NaN, either way of summing."""
    a = np.full((n, 5), -0.0)
    a[0, 3] = np.nan
    out = _row_sums(a)
    assert np.isnan(out[0]) and np.all(out[1:] == 0) and not np.signbit(out[1:]).any()
    assert _row_sums(np.zeros((n, 0))).shape == (n,)


def test_driver_arguments_are_checked(library, model):
    obs = np.ones(len(FILTERS))
    with pytest.raises(ValueError, match="upper_limits"):
        fit_sed(obs, obs * 0.1, FILTERS, z=0.1, library=library, model=model,
                upper_limits=np.ones(3, bool))
    with pytest.raises(ValueError, match="calibration"):
        fit_sed(obs, obs * 0.1, FILTERS, z=0.1, library=library, model=model,
                errors=ErrorModel(calibration={"sdss_q": 0.1}))
    with pytest.raises(ValueError, match="upper_limit_nsigma"):
        fit_sed(obs, obs * 0.1, FILTERS, z=0.1, library=library, model=model,
                errors=ErrorModel(upper_limit_nsigma=0.0))
    with pytest.raises(ValueError, match="upper_limits"):
        fit_catalog(np.ones((2, 12)), np.ones((2, 12)), FILTERS, [0.1, 0.1],
                    library=library, model=model, upper_limits=np.ones((3, 12), bool))
    with pytest.raises(ValueError, match="upper_limit_nsigma"):
        error_settings(FILTERS, upper_limit_nsigma=0.0)


def test_catalog_rows_of_upper_limits(library, model):
    z = 0.1
    models = library.photometry(FILTERS, z, model=model)
    flux = 1e3 * models.flux[0, :, :3].T
    err = 0.05 * flux
    upper = np.zeros((3, 12), bool)
    upper[1, 0] = True
    # the library pass alone: the same numbers row by row (refined fits are seeded per row)
    res = fit_catalog(flux, err, FILTERS, np.full(3, z), library=library, model=model,
                      upper_limits=upper, method=RdspsSettings(refine=False))
    assert res[0].diagnostics["upper_limits"] == [False] * 12
    assert res[1].diagnostics["upper_limits"] == [True] + [False] * 11
    one = fit_sed(flux[1], err[1], FILTERS, z=z, library=library, model=model,
                  upper_limits=upper[1], method=RdspsSettings(refine=False))
    assert one.chi2_min == pytest.approx(res[1].chi2_min, rel=1e-9)
    # default: the instrument table's calibration errors are in the fit
    calib = calibration_fractions(FILTERS)
    np.testing.assert_allclose(res[0].obs_flux_err, np.hypot(err[0], calib * flux[0]))
    assert res[0].diagnostics["calibration"] == list(calib)
    off = fit_sed(flux[0], err[0], FILTERS, z=z, library=library, model=model,
                  errors=ErrorModel(calibration=False))
    np.testing.assert_allclose(off.obs_flux_err, err[0])


# ------------------------------------------------------------------ CALERR round trip
def _flux_map(tmp_path, calib):
    """A flux map made by the image stage (build_flux_cube) with these calibration errors."""
    from pixedfit.images.fluxmap import FluxMapInput, build_flux_cube

    ny = nx = 24
    yy, xx = np.mgrid[0:ny, 0:nx]
    profile = np.exp(-np.hypot(yy - 11.5, xx - 11.5) / 4.0)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [12.0, 12.0]
    wcs.wcs.cdelt = [-0.396 / 3600, 0.396 / 3600]
    rng = np.random.default_rng(6)
    bands = []
    for i, f in enumerate(SDSS):
        inst = get_instrument(f, calib_err=calib[i])
        img = 50.0 * (1 + 0.2 * i) * profile + rng.normal(0, 0.05, (ny, nx))
        bands.append(FluxMapInput(inst, img, np.full((ny, nx), 0.05**2)))
    region = profile > 0.05
    cube = build_flux_cube(bands, region, wcs, 0.396, 150.0, 2.0, z=0.05, gal_ebv=0.0)
    path = tmp_path / "fluxmap.fits"
    cube.write(path)
    return path


@pytest.mark.parametrize("specphot", [False, True])
def test_calerr_round_trip_flux_map_to_fit(tmp_path, specphot):
    calib = [0.013, 0.05, 0.008, 0.1, 0.02]
    phot = FluxCube.read(_flux_map(tmp_path, calib))
    cube = phot
    if specphot:
        wave = np.linspace(4000.0, 8000.0, 20)
        spec = np.repeat(phot.flux[2][None], 20, axis=0) * np.linspace(0.9, 1.1, 20)[:, None,
                                                                                      None]
        cube = SpecPhotCube(phot, wave, spec, np.abs(spec) * 0.05 + 1e-3)
    binned = bin_pixels(cube, snr_target=10.0, threads=1)
    np.testing.assert_array_equal(binned.calib_err, calib)
    path = tmp_path / "binned.fits"
    binned.write(path)
    with fits.open(path) as hdul:
        assert [hdul[0].header[f"CALERR{i}"] for i in range(5)] == calib
        assert ("PHOTO_FLUX" in hdul) == specphot
    back = BinnedCube.read(path)
    np.testing.assert_array_equal(back.calib_err, calib)
    # binning decisions and bin errors are statistical only
    np.testing.assert_array_equal(back.bin_flux_err, binned.bin_flux_err)
    lib_model = SEDModel(sfh_form=1, dust_law=1, add_neb_emission=False, threads=1)
    library = generate_library(lib_model, 300, seed=2, ranges=RANGES)
    res = fit_binmap(path, bin_ids=[1, 2], library=library, model=lib_model)
    for b, r in res.items():
        assert r.diagnostics["calibration"] == calib
        f = back.bin_flux[b - 1] * back.unit
        e = back.bin_flux_err[b - 1] * back.unit
        np.testing.assert_allclose(r.obs_flux_err, np.sqrt(e**2 + (np.array(calib) * f) ** 2),
                                   rtol=1e-12)
    # an explicit override wins over the cube
    over = fit_binmap(path, bin_ids=[1], library=library, model=lib_model,
                      errors=ErrorModel(calibration={"sdss_g": 0.0}))
    assert over[1].diagnostics["calibration"] == [0.013, 0.0, 0.008, 0.1, 0.02]


def test_binned_cube_without_calerr(tmp_path):
    """Files written before the calibration fractions were recorded still read; their fits
    take the instrument table."""
    bm = np.array([[1, 1], [2, 2]])
    old = BinnedCube(bm, np.ones((2, 5)), 0.1 * np.ones((2, 5)), SDSS, z=0.05)
    assert old.calib_err is None
    path = tmp_path / "old.fits"
    old.write(path)
    with fits.open(path) as hdul:
        assert not any(k.startswith("CALERR") for k in hdul[0].header)
    back = BinnedCube.read(path)
    assert back.calib_err is None
    settings_ = error_settings(back.filters, "auto",
                               cube_calibration=back.calib_err)
    np.testing.assert_array_equal(settings_["calibration"],
                                  [get_instrument(f).calib_err for f in SDSS])
    with pytest.raises(ValueError, match="calib_err"):
        BinnedCube(bm, np.ones((2, 5)), np.ones((2, 5)), SDSS, calib_err=[0.1, 2.0, 0, 0, 0])
    with pytest.raises(ValueError, match="calib_err"):
        BinnedCube(bm, np.ones((2, 5)), np.ones((2, 5)), SDSS, calib_err=[0.1])


# ------------------------------------------------------------------ calibrated mocks
@pytest.mark.slow
def test_calibration_errors_give_honest_fits_of_calibrated_mocks(model):
    """50 mocks, 12 bands, S/N 20 plus a 5 % calibration scatter per band: fitted with 5 %
    calibration errors, chi2/dof ≈ 1 and the 68 % intervals hold the truth ≈ 68 % of the
    time; without them chi2/dof ≈ 2 and the intervals are too narrow."""
    n = 50
    library = generate_library(model, 20000, seed=1, ranges=RANGES)
    truth = generate_library(model, n, seed=77, ranges=RANGES)
    rng = np.random.default_rng(12)
    params = {k: v.copy() for k, v in truth.params.items()}
    params["log_mass"] = rng.uniform(9.0, 11.0, n)
    z = 0.1
    flux = model.photometry(params, z, FILTERS)
    err = flux / 20.0
    obs = flux * (1 + 0.05 * rng.normal(size=flux.shape)) + rng.normal(0.0, err)
    out = {}
    for calib in (0.05, False):
        res = list(fit_catalog(obs, err, FILTERS, np.full(n, z), library=library,
                               model=model, errors=ErrorModel(calibration=calib)).values())
        chi2_dof = np.array([r.diagnostics["chi2_dof"] for r in res])
        cover = []
        for name in ("log_mass", "log_age", "dust2"):
            k = res[0].names.index(name)
            t = params[name]
            cover.append(np.mean([(r.p16[k] <= ti <= r.p84[k]) for r, ti in zip(res, t,
                                                                                strict=True)]))
        out[calib] = (float(np.median(chi2_dof)), cover)
    med, cover = out[0.05]
    print("calibrated:", out[0.05], "uncalibrated:", out[False])
    assert 0.7 < med < 1.4, out
    assert 0.55 <= np.mean(cover) <= 0.82, out
    assert out[False][0] > 1.5 * med
    assert np.mean(out[False][1]) < np.mean(cover)


# ------------------------------------------------------------------ CLI and configuration
def test_cli_fit_error_options(tmp_path, model, library, capsys):
    from astropy.table import Table

    from pixedfit.cli import main

    lib_path = tmp_path / "lib.h5"
    library.write(lib_path)
    z = 0.1
    models = library.photometry(FILTERS, z, model=model)
    flux = 1e3 * models.flux[0, :, :3].T
    err = 0.05 * flux
    table = Table({"id": ["a", "b", "c"], "z": np.full(3, z)})
    for b, name in enumerate(FILTERS):
        table[name] = flux[:, b]
        table[f"{name}_err"] = err[:, b]
    table["galex_fuv_ul"] = [False, True, False]
    cat = tmp_path / "cat.ecsv"
    table.write(cat)
    out = tmp_path / "out.ecsv"
    base = ["fit", str(cat), "--library", str(lib_path), "--filters", ",".join(FILTERS),
            "--out", str(out), "--quiet", "--threads", "1"]
    assert main([*base, "--calibration-errors", "sdss_u=0.2"]) == 0
    res = Table.read(out)
    assert "chi2_dof" in res.colnames and np.all(res["ndof"] == 12 - 5)
    direct = fit_catalog(flux, err, FILTERS, np.full(3, z), library=library, model=model,
                         errors=ErrorModel(calibration={"sdss_u": 0.2}),
                         upper_limits=np.array(table["galex_fuv_ul"])[:, None]
                         & (np.arange(12) == 0)[None])
    np.testing.assert_allclose(res["chi2_min"], [r.chi2_min for r in direct.values()],
                               rtol=1e-9)
    assert main([*base, "--calibration-errors", "off", "--upper-limit-nsigma", "3"]) == 0
    with pytest.raises(SystemExit):
        main([*base, "--calibration-errors", "lots"])
    assert "--calibration-errors" in capsys.readouterr().err


@pytest.mark.parametrize("fitting, match", [
    ({"calibration_errors": "table"}, "calibration_errors"),
    ({"calibration_errors": True}, "calibration_errors"),
    ({"upper_limit_nsigma": -1}, "upper_limit_nsigma"),
])
def test_config_error_keys_are_checked(fitting, match):
    from pixedfit.pipeline import load_config

    cfg = {"images": {"fluxmap": "fluxmap.fits"}, "fitting": fitting}
    with pytest.raises(ValueError, match=match):
        load_config(config=cfg)
    ok = load_config(config={"images": {"fluxmap": "f.fits"},
                             "fitting": {"calibration_errors": {"sdss_u": 0.05},
                                         "upper_limit_nsigma": 3}})
    assert ok["fitting"]["calibration_errors"] == {"sdss_u": 0.05}
