"""Batched Legendre fits against numpy.polynomial.legendre, clipping and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.polynomial import legendre as npleg

from pixedfit.fitting.legendre import eval_legendre, fit_legendre

WAVE = np.linspace(3600.0, 9000.0, 800)
X = 2 * (WAVE - WAVE[0]) / (WAVE[-1] - WAVE[0]) - 1


def test_matches_numpy_legfit_with_weights():
    rng = np.random.default_rng(0)
    y = 1 + 0.1 * X - 0.05 * X**2 + rng.normal(0, 0.02, (50, WAVE.size))
    w = rng.uniform(0.5, 2.0, y.shape)
    res = fit_legendre(WAVE, y, w, order=5, threads=2)
    assert np.all(res.ok)
    for s in range(50):
        ref = npleg.legfit(X, y[s], 5, w=np.sqrt(w[s]))
        np.testing.assert_allclose(res.coeffs[s], ref, rtol=1e-8, atol=1e-11)
        np.testing.assert_allclose(res.model[s], npleg.legval(X, ref), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(eval_legendre(WAVE, res.coeffs), res.model, rtol=1e-12)


@pytest.mark.parametrize("order", [12, 25, 40])
def test_high_orders_match_numpy_with_uneven_weights_and_a_gap(order):
    # The normal matrix is built from linearised products of Legendre polynomials (moments
    # up to degree 2 order): it must stay as accurate as numpy's QR-based lstsq.
    wave = np.linspace(3600.0, 9000.0, 4000)
    x = 2 * (wave - wave[0]) / (wave[-1] - wave[0]) - 1
    rng = np.random.default_rng(order)
    y = 1 + 0.2 * np.sin(3 * x) + rng.normal(0, 0.01, (4, wave.size))
    w = rng.uniform(0.1, 10.0, y.shape)
    w[:, 1200:1500] = 0.0  # a masked stretch
    res = fit_legendre(wave, y, w, order=order, threads=1)
    assert np.all(res.ok)
    for s in range(4):
        ref = npleg.legfit(x, y[s], order, w=np.sqrt(w[s]))
        np.testing.assert_allclose(res.model[s], npleg.legval(x, ref), rtol=0, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(order=st.integers(0, 8), seed=st.integers(0, 10_000))
def test_property_exact_polynomials_are_recovered(order, seed):
    rng = np.random.default_rng(seed)
    c = rng.normal(0, 1, order + 1)
    y = npleg.legval(X, c)
    res = fit_legendre(WAVE, y, order=order, threads=1)
    np.testing.assert_allclose(res.coeffs[0], c, atol=1e-8 * (1 + np.abs(c).max()))


def test_thread_invariance_and_one_dimensional_input():
    rng = np.random.default_rng(1)
    y = 2 + rng.normal(0, 0.1, (33, WAVE.size))
    a = fit_legendre(WAVE, y, order=4, threads=1)
    b = fit_legendre(WAVE, y, order=4, threads=2)
    np.testing.assert_array_equal(a.coeffs, b.coeffs)
    single = fit_legendre(WAVE, y[7], order=4)
    np.testing.assert_array_equal(single.coeffs[0], a.coeffs[7])


def test_sigma_clipping_rejects_outliers():
    rng = np.random.default_rng(2)
    truth = 1.0 + 0.2 * X
    y = truth + rng.normal(0, 0.01, WAVE.size)
    spikes = rng.choice(WAVE.size, 20, replace=False)
    y[spikes] += 1.0  # emission-line-like outliers
    plain = fit_legendre(WAVE, y, np.full(WAVE.size, 1e4), order=1)
    clipped = fit_legendre(WAVE, y, np.full(WAVE.size, 1e4), order=1, clip=4.0)
    assert not clipped.used[0, spikes].any()
    assert clipped.used[0].sum() >= WAVE.size - 25
    assert np.abs(clipped.model[0] - truth).max() < 0.003
    assert np.abs(plain.model[0] - truth).max() > 0.01


def test_nan_and_zero_weight_points_are_ignored_and_failures_reported():
    y = 1 + 0.3 * X
    y_bad = y.copy()
    y_bad[::3] = np.nan
    res = fit_legendre(WAVE, y_bad, order=2)
    np.testing.assert_allclose(res.coeffs[0], [1, 0.3, 0], atol=1e-10)
    assert not res.used[0, ::3].any()
    w = np.zeros(WAVE.size)
    w[:2] = 1
    few = fit_legendre(WAVE, y, w, order=3)
    assert few.status[0] == 1 and np.all(np.isnan(few.coeffs[0])) and not few.ok[0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"wave": WAVE[::-1]}, "strictly increasing"),
        ({"y": np.ones(5)}, "shape"),
        ({"weights": -np.ones(WAVE.size)}, ">= 0"),
        ({"order": -1}, "order"),
        ({"order": 2.5}, "order"),
        ({"clip": 0.0}, "clip"),
    ],
)
def test_bad_input(kwargs, match):
    args = {"wave": WAVE, "y": np.ones(WAVE.size)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fit_legendre(**args)
