"""Fit drivers, results files and the crash-safe store, on a small real SPS library."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from astropy.io import fits

import pixedfit
from _sps_shared import FILTERS_12 as FILTERS
from _sps_shared import library as shared_library
from _sps_shared import model as shared_model
from pixedfit.cubes import BinnedCube
from pixedfit.fitting import (
    AdaptiveSettings,
    ConvergenceWarning,
    ErrorModel,
    FitResult,
    FitResults,
    McmcSettings,
    Parallelism,
    RdspsSettings,
    ResultStore,
    SpectralOptions,
    fit_binmap,
    fit_catalog,
    fit_sed,
)
from pixedfit.parallel import SerialPool


@pytest.fixture(scope="module")
def model():
    return shared_model(sfh_form=1, dust_law=1, add_neb_emission=False)


@pytest.fixture(scope="module")
def library(model):
    return shared_library(model, 4000, 11)


def _mock(model, library, index, z, log_mass=10.0, snr=20.0, seed=0):
    p = {k: v[index] for k, v in library.params.items()}
    p["log_mass"] = log_mass
    flux = model.photometry(p, z, FILTERS)
    err = flux / snr
    return flux + np.random.default_rng(seed).normal(0, err), err


def test_fit_sed_recovers_a_library_model(model, library):
    obs, err = _mock(model, library, 123, 0.05)
    res = pixedfit.fit_sed(obs, err, FILTERS, z=0.05, library=library, model=model)
    assert res.ok and res.z == 0.05 and res.names[: len(library.params)] == tuple(library.params)
    s = res.summary
    assert abs(s["log_mass"]["mean"] - 10.0) < 3 * s["log_mass"]["std"] + 0.05
    assert s["log_mass"]["p16"] <= s["log_mass"]["p50"] <= s["log_mass"]["p84"]
    assert res.chi2_min < 40
    np.testing.assert_allclose(res.bfit_photo, obs, rtol=0.3)
    best = res.bestfit_params()
    assert best["log_mass"] == pytest.approx(10.0, abs=0.3)


def test_age_of_universe_prior(model, library):
    obs, err = _mock(model, library, 7, 3.0)
    res = fit_sed(obs, err, FILTERS, z=3.0, library=library, model=model)
    limit = np.log10(pixedfit.cosmology.age_of_universe(3.0))
    k = res.names.index("log_age")
    assert res.p84[k] <= limit + 1e-9 and res.best[k] <= limit + 1e-9


def test_free_redshift(model, library):
    obs, err = _mock(model, library, 42, 0.3, snr=30)
    res = fit_sed(obs, err, FILTERS, z=None, library=library, model=model, dz=0.02,
                  priors={"z": (0.02, 0.6)})
    assert res.z is None and res.names[-1] == "z"
    assert res.z_posterior.sum() == pytest.approx(1.0)
    assert abs(res.summary["z"]["mean"] - 0.3) < 0.1


def test_results_round_trip_both_layouts(model, library, tmp_path):
    obs, err = _mock(model, library, 5, 0.1)
    res = fit_sed(obs, err, FILTERS, z=0.1, library=library, model=model)
    res.write(tmp_path / "r.h5")
    back = FitResult.read_any(tmp_path / "r.h5")
    for name in ("mean", "std", "p16", "p50", "p84", "best", "obs_flux", "bfit_photo"):
        np.testing.assert_array_equal(getattr(back, name), getattr(res, name))
    assert back.names == res.names and back.filters == res.filters and back.z == 0.1
    assert back.config["likelihood"] == "gauss"
    res.write_pixedfit(tmp_path / "r.fits")
    with fits.open(tmp_path / "r.fits") as hdul:
        assert [h.name for h in hdul][:6] == ["PRIMARY", "SAMPLERS", "FIT_PARAMS",
                                              "MINCHI2_PARAMS", "OBS_PHOTO", "BFIT_PHOTO"]
        assert hdul[0].header["fitmethod"] == "rdsps" and hdul[0].header["GAL_Z"] == 0.1
        assert hdul[0].header["storesamp"] == 1
        assert hdul[0].header["COSMO"] == "flat_LCDM"  # cosmo=None (the default): flat ΛCDM
        assert list(hdul["FIT_PARAMS"].data["rows"]) == ["mean", "std"]
    orig = FitResult.read_any(tmp_path / "r.fits")
    np.testing.assert_allclose(orig.mean, res.mean)
    np.testing.assert_allclose(orig.std, res.std)
    np.testing.assert_allclose(orig.best, res.best)
    np.testing.assert_array_equal(orig.samples, res.samples)
    assert orig.filters == res.filters and orig.names == res.names
    with pytest.raises(ValueError, match="not a readable HDF5"):
        FitResult.read(tmp_path / "r.fits")


def test_catalog_store_resume_and_interpolation(model, library, tmp_path):
    zs = np.array([0.03, 0.117, 0.25, 0.41])
    data = [_mock(model, library, 100 + i, z, seed=i) for i, z in enumerate(zs)]
    obs = np.array([d[0] for d in data])
    err = np.array([d[1] for d in data])
    store = ResultStore(tmp_path / "store")
    first = fit_catalog(obs[:2], err[:2], FILTERS, zs[:2], library=library, model=model,
                        store=store, ids=["a", "b"])
    assert store.keys() == ["a", "b"]
    mtime = store.path("a").stat().st_mtime_ns
    full = fit_catalog(obs, err, FILTERS, zs, library=library, model=model, store=store,
                       ids=["a", "b", "c", "d"], parallel=Parallelism(pool=SerialPool()))
    assert store.path("a").stat().st_mtime_ns == mtime  # skipped, not refitted
    assert isinstance(full, FitResults) and list(full) == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(full["a"].mean, first["a"].mean)
    # interpolated model photometry in z vs an exact fit at that z
    exact = fit_sed(obs[1], err[1], FILTERS, z=zs[1], library=library, model=model)
    k = exact.names.index("log_mass")
    assert abs(full["b"].mean[k] - exact.mean[k]) < 0.02
    table = store.summary_table()
    assert len(table) == 4 and "log_mass_mean" in table.colnames


def test_bad_input(model, library, tmp_path):
    obs, err = _mock(model, library, 1, 0.1)
    with pytest.raises(ValueError, match="library"):
        fit_sed(obs, err, FILTERS, z=0.1)
    with pytest.raises(ValueError, match="one value per filter"):
        fit_sed(obs[:3], err[:3], FILTERS, z=0.1, library=library, model=model)
    with pytest.raises(ValueError, match="method"):
        fit_sed(obs, err, FILTERS, z=0.1, library=library, model=model, method="bayesian")
    with pytest.raises(ValueError, match="z must be > 0"):
        fit_sed(obs, err, FILTERS, z=-1.0, library=library, model=model)
    with pytest.raises(ValueError, match="does not overlap"):
        fit_sed(obs, err, FILTERS, z=0.1, library=library, model=model,
                priors={"log_age": (1.2, 1.3)})
    with pytest.raises(ValueError, match="same galaxies"):
        fit_catalog(np.vstack([obs, obs]), np.vstack([err, err]), FILTERS, [0.1],
                    library=library, model=model)
    with pytest.raises(ValueError, match="keys"):
        ResultStore(tmp_path / "s").path("../evil")


def test_crash_and_resume_gives_the_same_result(model, library, tmp_path, monkeypatch):
    from pixedfit.fitting import drivers
    from pixedfit.parallel import TaskError

    zs = np.array([0.05, 0.06, 0.065, 0.07, 0.08])
    data = [_mock(model, library, 200 + i, z, seed=i) for i, z in enumerate(zs)]
    obs = np.array([d[0] for d in data])
    err = np.array([d[1] for d in data])
    clean = fit_catalog(obs, err, FILTERS, zs, library=library, model=model)
    real = drivers._run_rdsps
    calls = {"n": 0}

    def crashing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(drivers, "_run_rdsps", crashing)
    store = ResultStore(tmp_path / "resume")
    with pytest.raises(TaskError, match="SED '2': simulated crash"):
        fit_catalog(obs, err, FILTERS, zs, library=library, model=model, store=store,
                    parallel=Parallelism(threads=1))
    assert store.keys() == ["0", "1"]
    assert not list((tmp_path / "resume").glob(".*"))  # no half-written temporary file left
    monkeypatch.setattr(drivers, "_run_rdsps", real)
    resumed = fit_catalog(obs, err, FILTERS, zs, library=library, model=model, store=store)
    assert list(clean) == list(resumed) == [0, 1, 2, 3, 4]
    for a, b in zip(clean.values(), resumed.values(), strict=True):
        np.testing.assert_array_equal(a.mean, b.mean)
        np.testing.assert_array_equal(a.p84, b.p84)


def test_redshift_interpolation_error_is_small(model, library):
    """Interpolated library photometry vs exact photometry at the same redshift."""
    from pixedfit.fitting.drivers import _interpolated

    settings = {"cosmo": None, "H0": 70.0, "Om0": 0.3}
    sub = library.photometry(FILTERS, [0.002, 0.012, 0.022], model=model)
    for z, tol in ((0.005, 0.003), (0.0171, 0.003)):
        interp = _interpolated(sub, z, settings).flux[0]
        exact = library.photometry(FILTERS, z, model=model).flux[0]
        rel = np.abs(interp / exact - 1)
        assert np.percentile(rel, 99) < tol, (z, np.percentile(rel, 99, axis=1))
    far = library.photometry(FILTERS, [0.49, 0.50], model=model)
    rel = np.abs(_interpolated(far, 0.4953, settings).flux[0]
                 / library.photometry(FILTERS, 0.4953, model=model).flux[0] - 1)
    assert np.percentile(rel, 99) < 0.005, np.percentile(rel, 99, axis=1)


def test_redshift_interpolation_in_blocks_is_the_linear_interpolation(monkeypatch):
    """Blocks of models (a last one shorter) give the bits of one pass, and the values of
    the linear interpolation of the undimmed planes times the dimming."""
    import pixedfit.fitting.drivers as drivers
    from pixedfit.fitting import ModelPhotometry

    rng = np.random.default_rng(3)
    flux = rng.uniform(1.0, 2.0, (3, 50, 4))  # (nz, nmod, nband)
    base = ModelPhotometry.from_arrays(flux, rng.random((50, 2)), ["a", "b"],
                                       z_grid=np.array([0.01, 0.02, 0.03]))
    settings = {"cosmo": None, "H0": 70.0, "Om0": 0.3}
    one = drivers._ZInterpolator(base, settings)(0.0237).flux
    monkeypatch.setattr(drivers, "_INTERP_BLOCK", 7)
    blocks = drivers._ZInterpolator(base, settings)(0.0237).flux
    np.testing.assert_array_equal(blocks, one)
    dim = drivers._dimming(np.array([0.02, 0.03, 0.0237]), settings)
    t = 0.37
    ref = ((1 - t) * base.flux[1] / dim[0] + t * base.flux[2] / dim[1]) * dim[2]
    np.testing.assert_allclose(one[0], ref, rtol=1e-12)


# --------------------------------------------------------------------------- option objects


def _catalogue(model, library, n=3, z=0.05):
    data = [_mock(model, library, 300 + i, z, seed=i) for i in range(n)]
    return np.array([d[0] for d in data]), np.array([d[1] for d in data])


@pytest.mark.parametrize("keyword, value", [
    ("errors", {"likelihood": "student_t"}),
    ("errors", "gauss"),
    ("spectral", {"poly_order": 3}),
    ("spectral", 3),
    ("parallel", 4),
    ("parallel", {"threads": 1}),
])
def test_option_of_the_wrong_type_names_the_keyword(model, library, keyword, value):
    _every_driver_refuses(model, library, rf"^{keyword} must be a ", {keyword: value})


def _every_driver_refuses(model, library, pattern: str, kwargs: dict) -> None:
    """fit_sed, fit_catalog and fit_binmap raise TypeError matching ``pattern`` (fit_binmap
    before its cube is read)."""
    obs, err = _mock(model, library, 1, 0.1)
    with pytest.raises(TypeError, match=pattern):
        fit_sed(obs, err, FILTERS, z=0.1, library=library, model=model, **kwargs)
    with pytest.raises(TypeError, match=pattern):
        fit_catalog([obs], [err], FILTERS, [0.1], library=library, model=model, **kwargs)
    with pytest.raises(TypeError, match=pattern):
        fit_binmap("unused.fits", library=library, model=model, **kwargs)


@pytest.mark.parametrize("method", [McmcSettings, {"nwalkers": 16}, 3, ("mcmc",)])
def test_method_of_the_wrong_type_names_method(model, library, method):
    obs, err = _mock(model, library, 1, 0.1)
    with pytest.raises(TypeError, match=r"^method must be"):
        fit_sed(obs, err, FILTERS, z=0.1, library=library, model=model, method=method)
    with pytest.raises(TypeError, match=r"^method must be"):
        fit_binmap("unused.fits", method=method)


@pytest.mark.parametrize("keyword, value", [
    ("nwalkers", 16), ("nsteps", 100), ("nsteps_cut", 10), ("thin", 2), ("refine", False),
    ("mcmc_options", {"max_steps": 100}), ("nested", {"n_live": 100}), ("backend", "c.h5"),
    ("progress", True), ("threads", 1), ("pool", None), ("quiet", True),
    ("likelihood", "student_t"), ("dof", 3.0), ("perc_chi2", 90.0), ("error_floor", 0.1),
    ("mask_invalid", True), ("calibration", False), ("upper_limit_nsigma", 3.0),
    ("del_wave_nebem", 10.0), ("poly_order", 3), ("spec_clip", None), ("cosmo", "Planck18"),
    ("H0", 67.0), ("Om0", 0.3),
])
def test_removed_flat_keywords_raise_naming_them(model, library, keyword, value):
    _every_driver_refuses(model, library, rf"unexpected keyword argument '{keyword}'",
                          {keyword: value})


def test_fit_sed_takes_no_pool(model, library):
    obs, err = _mock(model, library, 1, 0.1)
    with pytest.raises(ValueError, match=r"^parallel\.pool: fit_sed fits one SED"):
        fit_sed(obs, err, FILTERS, z=0.1, library=library, model=model,
                parallel=Parallelism(pool=SerialPool()))


def test_many_fits_refuse_one_chain_backend(model, library, tmp_path):
    obs, err = _catalogue(model, library, n=2)
    method = McmcSettings(nwalkers=16, nsteps=20, nsteps_cut=5, backend=tmp_path / "c.h5")
    with pytest.raises(ValueError, match=r"^McmcSettings\.backend: .*one chain per SED"):
        fit_catalog(obs, err, FILTERS, [0.05, 0.05], library=library, model=model,
                    method=method)
    # before any work: a library that does not exist is never opened
    with pytest.raises(ValueError, match=r"^McmcSettings\.backend"):
        fit_catalog(obs, err, FILTERS, [0.05, 0.05], library=tmp_path / "absent.h5",
                    method=method)
    cube = BinnedCube(np.array([[1, 2]]), obs, err, FILTERS, unit=1.0, z=0.05)
    with pytest.raises(ValueError, match=r"^McmcSettings\.backend"):
        fit_binmap(cube, library=library, model=model, method=method)
    assert not (tmp_path / "c.h5").exists()


def test_fit_results_keys(model, library):
    obs, err = _catalogue(model, library)
    plain = RdspsSettings(refine=False)
    rows = fit_catalog(obs, err, FILTERS, np.full(3, 0.05), library=library, model=model,
                       method=plain)
    named = fit_catalog(obs, err, FILTERS, np.full(3, 0.05), library=library, model=model,
                        method=plain, ids=["m51", 7, "ngc628"])
    assert isinstance(rows, FitResults) and isinstance(named, FitResults)
    assert list(rows) == [0, 1, 2] and list(rows.keys()) == [0, 1, 2] and len(rows) == 3
    assert list(named) == ["m51", 7, "ngc628"]  # the ids as given, not as strings
    assert all(isinstance(r, FitResult) for r in named.values())
    for (key, a), b in zip(named.items(), rows.values(), strict=True):
        np.testing.assert_array_equal(a.mean, b.mean)
        assert named[key] is a
    assert 0 in rows and 0 not in named and "m51" in named
    with pytest.raises(KeyError):
        named[0]
    with pytest.raises(TypeError):  # read-only
        named["m51"] = rows[0]  # type: ignore[index]
    # plain RDSPS (the library pass only) reports converged=False, as the maps flag it
    assert rows.failed == [] and rows.unconverged == [0, 1, 2]
    assert repr(rows) == "FitResults(3 fits, 0 failed, 3 not converged)"
    cube = BinnedCube(np.array([[1, 2, 3]]), obs, err, FILTERS, unit=1.0, z=0.05)
    bins = fit_binmap(cube, library=library, model=model, method=plain)
    assert isinstance(bins, FitResults) and list(bins) == [1, 2, 3]
    assert list(fit_binmap(cube, library=library, model=model, method=plain,
                           bin_ids=[3, 1])) == [3, 1]


def test_fit_results_table_failed_and_unconverged(model, library):
    obs, err = _catalogue(model, library, n=2)
    budget = RdspsSettings(refine=AdaptiveSettings(target_ess=1e5, max_evaluations=1500,
                                                   batch=500))
    with pytest.warns(ConvergenceWarning, match="2 of 2 fits did not reach"):
        res = fit_catalog(obs, err, FILTERS, [0.05, 0.05], library=library, model=model,
                          method=budget, ids=["x", "y"])
    assert res.unconverged == ["x", "y"] and res.failed == []
    table = res.table()
    assert list(table["id"]) == ["x", "y"]
    assert list(table["converged"]) == [0, 0]
    for row, r in zip(table, res.values(), strict=True):
        assert row["chi2_min"] == r.chi2_min and row["n_used"] == r.n_used
        assert row["ess"] == r.ess and row["n_model_evaluations"] == r.n_model_evaluations
        for name, stats in r.summary.items():
            for stat, value in stats.items():
                assert row[f"{name}_{stat}"] == value
    # failed fits (no model in the posterior) and fits without a convergence record
    a, b = res["x"], res["y"]
    failed = dataclasses.replace(a, n_used=0, converged=True)
    mixed = FitResults(["none", "bad", "slow"],
                       [dataclasses.replace(a, converged=None), failed, b])
    assert mixed.failed == ["bad"] and mixed.unconverged == ["slow"]
    assert list(mixed.table()["converged"]) == [-1, 1, 0]
    assert len(FitResults([], []).table()) == 0
    with pytest.raises(ValueError, match="unique"):
        FitResults(["a", "a"], [a, b])
    with pytest.raises(ValueError, match="differ in length"):
        FitResults(["a"], [a, b])


def test_options_reach_the_fit_and_defaults_are_the_none_options(model, library):
    obs, err = _mock(model, library, 9, 0.1)
    kw = {"library": library, "model": model, "method": RdspsSettings(refine=False)}
    ref = fit_sed(obs, err, FILTERS, z=0.1, **kw)
    same = fit_sed(obs, err, FILTERS, z=0.1, errors=ErrorModel(), spectral=SpectralOptions(),
                   parallel=Parallelism(), cosmology=None, **kw)
    np.testing.assert_array_equal(same.mean, ref.mean)
    np.testing.assert_equal(same.config, ref.config)
    res = fit_sed(obs, err, FILTERS, z=0.1, errors=ErrorModel(likelihood="student_t", dof=5.0,
                                                              perc_chi2=90.0,
                                                              error_floor=0.02),
                  spectral=SpectralOptions(line_mask_width=7.0, poly_order=None, clip=None),
                  cosmology="Planck18", **kw)
    c = res.config
    assert (c["likelihood"], c["dof"], c["perc_chi2"], c["error_floor"]) == (
        "student_t", 5.0, 90.0, 0.02)
    assert (c["del_wave_nebem"], c["poly_order"], c["spec_clip"]) == (7.0, None, None)
    assert c["cosmo"] == "Planck18" and not np.array_equal(res.mean, ref.mean)
    with pytest.raises(ValueError, match="cosmolog"):
        fit_sed(obs, err, FILTERS, z=0.1, cosmology="Planck99", **kw)


@pytest.mark.parametrize("method", ["rdsps", RdspsSettings(refine=False)])
def test_catalogue_and_binned_cube_give_the_same_fits(model, library, method):
    """fit_catalog and fit_binmap share one implementation: a binned cube whose bins are
    the catalogue's rows gives the same fits. Row i and bin b = i are seeded alike, so the
    catalogue's row 0 has no bin. The refined fits are bit-identical; plain RDSPS differs
    by rounding only (the catalogue interpolates the library photometry in z between grid
    planes, the cube's single redshift has it exactly)."""
    z = 0.05
    obs, err = _catalogue(model, library, n=3, z=z)
    cat = fit_catalog(obs, err, FILTERS, np.full(3, z), library=library, model=model,
                      method=method)
    cube = BinnedCube(np.array([[1, 0], [0, 2]]), obs[1:], err[1:], FILTERS, unit=1.0, z=z)
    bins = fit_binmap(cube, library=library, model=model, method=method)
    assert list(bins) == [1, 2]
    for b in (1, 2):
        x, y = cat[b], bins[b]
        assert x.names == y.names and x.filters == y.filters and x.z == y.z
        np.testing.assert_array_equal(x.obs_flux, y.obs_flux)
        np.testing.assert_array_equal(x.obs_flux_err, y.obs_flux_err)
        assert (x.n_used, x.n_model_evaluations, x.converged) == (
            y.n_used, y.n_model_evaluations, y.converged)
        for name in ("mean", "std", "p16", "p50", "p84", "best", "bfit_photo"):
            if method == "rdsps":
                np.testing.assert_array_equal(getattr(x, name), getattr(y, name), name)
            else:
                np.testing.assert_allclose(getattr(x, name), getattr(y, name), rtol=1e-9,
                                           atol=1e-30, err_msg=name)
        if method == "rdsps":
            assert (x.chi2_min, x.ess) == (y.chi2_min, y.ess)
        else:
            assert x.chi2_min == pytest.approx(y.chi2_min, rel=1e-9)


@pytest.mark.filterwarnings("ignore::pixedfit.fitting.MCMCShortChainWarning")
def test_the_seed_keyword_replaces_the_seed_of_the_settings(model, library):
    obs, err = _mock(model, library, 17, 0.05)
    kw = {"library": library, "model": model}
    ref = fit_sed(obs, err, FILTERS, z=0.05, seed=5, **kw)
    for held in (5, 99):
        res = fit_sed(obs, err, FILTERS, z=0.05, seed=5,
                      method=RdspsSettings(refine=AdaptiveSettings(seed=held)), **kw)
        np.testing.assert_array_equal(res.mean, ref.mean)
    other = fit_sed(obs, err, FILTERS, z=0.05, seed=6, **kw)
    assert not np.array_equal(other.mean, ref.mean)
    short = {"nwalkers": 16, "nsteps": 20, "nsteps_cut": 5, "start": "library"}
    a = fit_sed(obs, err, FILTERS, z=0.05, seed=3, method=McmcSettings(seed=3, **short), **kw)
    b = fit_sed(obs, err, FILTERS, z=0.05, seed=3, method=McmcSettings(seed=8, **short), **kw)
    assert a.method == "mcmc" and a.samples is not None
    np.testing.assert_array_equal(a.samples, b.samples)
    np.testing.assert_array_equal(a.mean, b.mean)


def test_free_redshift_posterior_rejects_walkers_below_zero(model):
    """A walker proposed at z < 0 (outside the z box) has −inf log posterior; the age limit
    at its redshift was computed before the box was applied and raised (free-z MCMC fits
    stopped with "z: redshifts must be >= 0")."""
    from pixedfit.fitting.posterior import LogProbability
    from pixedfit.fitting.priors import PriorSet

    obs = model.photometry({"log_age": 0.2}, 0.3, FILTERS)
    lp = LogProbability(model, ["log_age", "z"], np.array([-1.0, 0.05]), np.array([1.0, 0.6]),
                        {}, PriorSet(), None, FILTERS, obs, obs / 20, threads=1)
    assert lp.age_limit
    # below the box, inside, above the box, and 10 Gyr at z = 0.6 (older than the universe)
    theta = np.array([[0.2, -0.1], [0.2, 0.3], [0.2, 0.7], [1.0, 0.6]])
    lnp = lp.evaluate(theta)[0]
    assert np.isneginf(lnp[[0, 2, 3]]).all() and np.isfinite(lnp[1])
    np.testing.assert_array_equal(lp.evaluate(theta[1:2])[0], lnp[1:2])
    assert np.isneginf(lp.evaluate(theta[[0]])[0]).all()
