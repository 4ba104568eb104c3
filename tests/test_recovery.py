"""Recovery of known parameters from mocks made with SEDModel (issue #4 acceptance)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from pixedfit.fitting import ErrorModel, fit_catalog, fit_sed
from pixedfit.fitting.adaptive import ConvergenceWarning
from pixedfit.library import generate_library
from pixedfit.sps import SEDModel

FILTERS = ["galex_fuv", "galex_nuv", "sdss_u", "sdss_g", "sdss_r", "sdss_i", "sdss_z",
           "2mass_j", "2mass_h", "2mass_k", "wise_w1", "wise_w2"]
RANGES = {"log_age": (-1.0, 1.1), "logzsol": (-1.0, 0.2), "dust2": (0.0, 2.0)}


@pytest.fixture(scope="module")
def setup():
    model = SEDModel(sfh_form=1, dust_law=1, add_neb_emission=False)
    library = generate_library(model, 20000, seed=1, ranges=RANGES)
    truth = generate_library(model, 200, seed=99, ranges=RANGES)  # independent draws
    rng = np.random.default_rng(5)
    params = {k: v.copy() for k, v in truth.params.items()}
    params["log_mass"] = rng.uniform(9.0, 11.0, 200)
    return model, library, params, rng


@pytest.mark.slow
def test_fixed_redshift_recovery_of_stellar_mass(setup):
    """200 mocks, converged (adaptive RDSPS) fits: bias, scatter and 68 % coverage."""
    model, library, params, rng = setup
    z = 0.1
    flux = model.photometry(params, z, FILTERS)
    err = flux / 20.0
    obs = flux + rng.normal(0.0, err)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        results = list(fit_catalog(obs, err, FILTERS, np.full(200, z), library=library,
                                   model=model, errors=ErrorModel(calibration=False)).values())
    # a fit that did not converge says so, in its result and in one catalogue warning
    unconverged = [i for i, r in enumerate(results) if not r.converged]
    assert len(unconverged) <= 4, unconverged  # ≥ 98 % converged
    named = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert (len(named) == 1) == bool(unconverged)
    k = results[0].names.index("log_mass")
    mean = np.array([r.mean[k] for r in results])
    p16 = np.array([r.p16[k] for r in results])
    p84 = np.array([r.p84[k] for r in results])
    d = mean - params["log_mass"]
    coverage = np.mean((params["log_mass"] >= p16) & (params["log_mass"] <= p84))
    assert abs(np.median(d)) < 0.05, np.median(d)
    assert np.std(d) < 0.15, np.std(d)
    assert 0.60 <= coverage <= 0.76, coverage


def test_fixed_redshift_recovery_quick(setup):
    """The default run's check: 40 of the mocks, the same bounds widened for 40 draws."""
    model, library, params, _ = setup
    n, z = 40, 0.1
    sub = {k: v[:n] for k, v in params.items()}
    flux = model.photometry(sub, z, FILTERS)
    err = flux / 20.0
    obs = flux + np.random.default_rng(8).normal(0.0, err)
    results = list(fit_catalog(obs, err, FILTERS, np.full(n, z), library=library, model=model,
                               errors=ErrorModel(calibration=False)).values())
    k = results[0].names.index("log_mass")
    d = np.array([r.p50[k] for r in results]) - sub["log_mass"]
    inside = [(r.p16[k] <= t <= r.p84[k]) for r, t in zip(results, sub["log_mass"],
                                                           strict=True)]
    assert all(r.converged for r in results)
    assert abs(np.median(d)) < 0.05 and np.std(d) < 0.15
    assert 0.5 <= np.mean(inside) <= 0.86, np.mean(inside)


@pytest.mark.slow
def test_free_redshift_recovery(setup):
    model, library, params, rng = setup
    n = 30
    z_true = rng.uniform(0.04, 0.28, n)
    sub = {k: v[:n] for k, v in params.items()}
    flux = model.photometry(sub, z_true, FILTERS)
    err = flux / 20.0
    obs = flux + rng.normal(0.0, err)
    grid = np.arange(0.01, 0.315, 0.01)
    models = library.photometry(FILTERS, grid, model=model)  # computed once for all mocks
    zk, zs, mk = [], [], []
    for i in range(n):
        res = fit_sed(obs[i], err[i], FILTERS, z=None, library=library, model=model,
                      photometry=models)
        zk.append(res.summary["z"]["mean"])
        zs.append(res.summary["z"]["std"])
        mk.append(res.summary["log_mass"]["mean"])
    dz = np.abs(np.array(zk) - z_true) / (1 + z_true)
    pull = (np.array(zk) - z_true) / np.hypot(np.array(zs), 0.005)  # grid step 0.01
    # Most mocks within 0.02 (1 + z) (12 broad bands, S/N 20: the photo-z scatter itself is
    # ~0.02), and the redshift errors are honest.
    assert np.mean(dz < 0.02) > 0.5, np.sort(dz)
    assert np.mean(np.abs(pull) < 2) >= 0.85, np.sort(np.abs(pull))
    assert abs(np.median(np.array(mk) - sub["log_mass"])) < 0.1


@pytest.mark.slow
def test_coverage_with_calibration_errors():
    """Issue 13's coverage check: 600 mocks of a delayed-τ + Calzetti + nebular model in
    12 bands at S/N 20 whose fluxes also scatter by 5 % calibration errors, fitted with
    ``calibration=0.05``: the 68 % intervals of log M*, log SFR, the mass-weighted age and
    the dust contain the truth for 0.68 ± 0.05 of the mocks. The truths are drawn from the
    fit's own prior box, so calibrated posteriors give this coverage exactly on average.

    600 mocks, not the issue's minimum of 200: the binomial error of a coverage from 200
    mocks is 0.033, so ±0.05 is 1.5 σ and a calibrated sampler fails on about one mock set
    in eight (the 200 of truth seed 99 gave log SFR 0.725–0.750 with two code versions and
    two fit seeds; these 600 give 0.678, with log M*, age and dust 0.665–0.673). From 600
    the error is 0.019 and ±0.05 is 2.6 σ."""
    n, z = 600, 0.05
    ranges = {"log_age": (-1.0, 1.1)}
    model = SEDModel(sfh_form=1, dust_law=1, add_neb_emission=True)
    library = generate_library(model, 100_000, seed=1, ranges=ranges)
    truth = generate_library(model, n, seed=99, ranges=ranges)  # independent draws
    params = {k: v.copy() for k, v in truth.params.items()}
    params["log_mass"] = np.full(n, 10.0)
    rng = np.random.default_rng(3)
    flux = model.photometry(params, z, FILTERS)
    obs = flux * (1 + rng.normal(0.0, 0.05, flux.shape)) + rng.normal(0.0, flux / 20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # counted below
        results = list(fit_catalog(obs, flux / 20, FILTERS, np.full(n, z), library=library,
                                   model=model, errors=ErrorModel(calibration=0.05),
                                   seed=7).values())
    assert sum(not r.converged for r in results) <= 0.02 * n
    true_values = {"log_mass": params["log_mass"], "dust2": params["dust2"],
                   # the library's models are made for log M* = 0: SFR scales with the mass
                   "log_sfr": truth.derived["log_sfr"] + 10.0 - truth.params["log_mass"],
                   "log_mw_age": truth.derived["log_mw_age"]}
    for name, true in true_values.items():
        k = results[0].names.index(name)
        inside = [r.p16[k] <= t <= r.p84[k] for r, t in zip(results, true, strict=True)]
        assert abs(np.mean(inside) - 0.68) <= 0.05, (name, np.mean(inside))

