"""Fit drivers, results files and the crash-safe store, on a small real SPS library."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

import pixedfit
from _sps_shared import FILTERS_12 as FILTERS
from _sps_shared import library as shared_library
from _sps_shared import model as shared_model
from pixedfit.fitting import FitResult, FitResults, Parallelism, ResultStore, fit_catalog, fit_sed
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
        assert [h.name for h in hdul][:5] == ["PRIMARY", "FIT_PARAMS", "MINCHI2_PARAMS",
                                              "OBS_PHOTO", "BFIT_PHOTO"]
        assert hdul[0].header["fitmethod"] == "rdsps" and hdul[0].header["GAL_Z"] == 0.1
        assert list(hdul["FIT_PARAMS"].data["rows"]) == ["mean", "std"]
    orig = FitResult.read_any(tmp_path / "r.fits")
    np.testing.assert_allclose(orig.mean, res.mean)
    np.testing.assert_allclose(orig.std, res.std)
    np.testing.assert_allclose(orig.best, res.best)
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
