"""The vectorised log posterior's fast path: a box the model accepts whole is checked once
and the model then called unchecked; it gives the very numbers (bit for bit) of the checked
public path, which still refuses invalid input."""

from __future__ import annotations

import numpy as np
import pytest

from pixedfit.fitting.posterior import LogProbability
from pixedfit.fitting.priors import Gaussian, PriorSet
from pixedfit.sps import DERIVED_NAMES

FILTERS = ["galex_fuv", "galex_nuv", "sdss_u", "sdss_g", "sdss_r", "sdss_i", "sdss_z",
           "2mass_j", "2mass_h", "2mass_k", "wise_w1", "wise_w2"]
FREE = ["logzsol", "log_tau", "log_age", "dust2", "log_mass"]
Z = 0.05


@pytest.fixture(scope="module")
def model(fit_model):
    return fit_model


def _observations(model):
    """Photometry of one model at Z with 5 % errors, two bands dropped (infinite errors)."""
    p = {"logzsol": -0.3, "log_tau": 0.4, "log_age": 0.7, "dust2": 0.4, "log_mass": 10.0}
    obs = model.photometry(p, Z, FILTERS)
    err = 0.05 * obs
    err[[1, 7]] = np.inf
    return obs * np.random.default_rng(0).normal(1.0, 0.05, obs.size), err


def _boxes(model):
    """A box inside the model's valid ranges and the same box reaching beyond the grid's
    metallicities (which the model refuses)."""
    lo = np.array([-1.0, -1.0, -1.0, 0.0, 8.0])
    hi = np.array([0.2, 1.5, 1.1, 2.0, 12.0])
    wide = hi.copy()
    wide[0] = model.param_limits()["logzsol"][1] + 0.5
    return lo, hi, wide


def _positions(lo, hi, n=40, seed=3):
    theta = lo + np.random.default_rng(seed).uniform(0, 1, (n, lo.size)) * (hi - lo)
    theta[5, 3] = -0.1  # outside the box
    return theta


def _assert_same(a, b):
    """Equal arrays, bit for bit (NaN where NaN, the same signed zeros)."""
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.signbit(a), np.signbit(b))


@pytest.mark.parametrize("priors", [PriorSet(), PriorSet([Gaussian("log_sfr", 0.5, 0.6)])])
def test_unchecked_model_calls_give_the_checked_numbers(model, priors):
    """The box inside the model's ranges takes the unchecked path, the wider one the public
    SEDModel.photometry; at the same positions every output is the same to the bit."""
    obs, err = _observations(model)
    lo, hi, wide = _boxes(model)
    fast = LogProbability(model, FREE, lo, hi, {}, priors, Z, FILTERS, obs, err, threads=1)
    checked = LogProbability(model, FREE, lo, wide, {}, priors, Z, FILTERS, obs, err,
                             threads=1)
    assert fast._unchecked and not checked._unchecked
    theta = _positions(lo, hi)
    for n in (1, 8, 40):  # one model, a few, a batch (sums of either length)
        lnp, ex = fast.evaluate(theta[:n], extras=True)
        lnp2, ex2 = checked.evaluate(theta[:n], extras=True)
        _assert_same(lnp, lnp2)
        assert ex.keys() == ex2.keys() and ex["values"].keys() == ex2["values"].keys()
        for key in ("index", "chi2", "photometry", "scale"):
            _assert_same(ex[key], ex2[key])
        for key, v in ex["values"].items():
            _assert_same(v, ex2["values"][key])
    assert np.isfinite(lnp).sum() == 39 and ex["index"].size == 39


def test_the_public_paths_still_refuse_invalid_parameters(model):
    """A position beyond the grid's metallicities inside the wider box reaches the model's
    check, which names the parameter; the model's public photometry refuses it too, and its
    unchecked call computes the public numbers for valid ones."""
    obs, err = _observations(model)
    lo, _, wide = _boxes(model)
    checked = LogProbability(model, FREE, lo, wide, {}, PriorSet(), Z, FILTERS, obs, err,
                             threads=1)
    theta = np.array([[wide[0] - 0.1, 0.4, 0.7, 0.4, 10.0]])
    with pytest.raises(ValueError, match="logzsol"):
        checked.evaluate(theta)
    arr, _ = checked.param_array(theta)
    with pytest.raises(ValueError, match="logzsol"):
        model.photometry(arr, Z, FILTERS, return_derived=True, knots=True)
    arr[0, 1] = -0.3  # (column 1: logzsol)
    flux, derived = model.photometry(arr, Z, FILTERS, return_derived=True, knots=True)
    flux2, derived2 = model._photometry_at(arr, Z, tuple(FILTERS), False, True, 1)
    _assert_same(flux, flux2)
    for i, name in enumerate(DERIVED_NAMES):
        _assert_same(derived[name], derived2[:, i])


def test_outputs_without_values_are_the_same(model):
    """``values=False`` leaves out the values only."""
    obs, err = _observations(model)
    lo, hi, _ = _boxes(model)
    lp = LogProbability(model, FREE, lo, hi, {}, PriorSet(), Z, FILTERS, obs, err, threads=1)
    theta = _positions(lo, hi)
    lnp, ex = lp.evaluate(theta, extras=True)
    lnp2, ex2 = lp.evaluate(theta, extras=True, values=False)
    _assert_same(lnp, lnp2)
    _assert_same(lnp, lp(theta))
    assert set(ex) - set(ex2) == {"values"}
    for key, v in ex2.items():
        _assert_same(v, ex[key])
