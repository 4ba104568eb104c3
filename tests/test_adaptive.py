"""Adaptive RDSPS: importance-sampling refinement of the library pass to a converged posterior.

Analytic targets check the sampler itself (moments, evidence, two modes); real SPS mocks
check what the issue measured: the answer no longer depends on the library's seed, the same
seed gives the same result for any number of threads, and results files carry the
convergence figures.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.stats import kstest, logistic, multivariate_normal, norm
from scipy.stats import t as student_t

from _sps_shared import FILTERS_12 as FILTERS
from _sps_shared import Target
from _sps_shared import library as shared_library
from _sps_shared import model as shared_model
from pixedfit.fitting import (
    ErrorModel,
    FitResult,
    Parallelism,
    RdspsSettings,
    fit_catalog,
    fit_sed,
)
from pixedfit.fitting.adaptive import (
    AdaptiveSettings,
    ConvergenceWarning,
    _Box,
    _BoxMixture,
    _calibrated_laplace,
    _em_mixture,
    _laplace_modes,
    _MassProposal,
    _spread_starts,
    _tempering_exponent,
    effective_sample_size,
    median_errors,
    run_adaptive,
    weighted_quantiles,
)
from pixedfit.fitting.errors import chi2_terms, scale_fit
from pixedfit.fitting.posterior import LogProbability, _lowest_chi2, _smallest_first
from pixedfit.fitting.priors import Gaussian, PriorSet
from pixedfit.library import generate_library


# --------------------------------------------------------------------------- helpers
def _weighted_moments(run):
    w = run.normalised_weights()
    mean = w @ run.theta
    d = run.theta - mean
    return mean, (w[:, None] * d).T @ d


# --------------------------------------------------------------------------- kernels
def test_effective_sample_size_analytic():
    assert effective_sample_size(np.zeros(100)) == pytest.approx(100.0)
    # one weight e times the others: ESS = (n - 1 + e)^2 / (n - 1 + e^2)
    lw = np.zeros(10)
    lw[0] = 1.0
    e = math.e
    assert effective_sample_size(lw) == pytest.approx((9 + e) ** 2 / (9 + e * e))
    assert effective_sample_size(np.array([-np.inf, 0.0])) == pytest.approx(1.0)
    assert effective_sample_size(np.array([-np.inf])) == 0.0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=3, max_size=60),
       st.sampled_from([0.16, 0.5, 0.84]))
def test_weighted_quantiles_equal_weights_are_hazen_percentiles(values, q):
    x = np.array(values)
    got = weighted_quantiles(x[:, None], np.ones(x.size), np.array([q]))[0, 0]
    assert got == pytest.approx(np.percentile(x, 100 * q, method="hazen"), abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=3, max_size=30), st.integers(0, 2**31 - 1))
def test_integer_weights_equal_repeated_samples(counts, seed):
    x = np.random.default_rng(seed).normal(size=len(counts))
    rep = np.repeat(x, counts)
    got = weighted_quantiles(x[:, None], np.array(counts, float), np.array([0.16, 0.5, 0.84]))
    # the weighted CDF of distinct points and the CDF of the repeated sample agree at the
    # middle of every block; between blocks they interpolate differently: bound by the gap
    ref = np.percentile(rep, [16, 50, 84], method="hazen")
    gaps = np.diff(np.sort(x)).max()
    assert np.all(np.abs(got[:, 0] - ref) <= gaps + 1e-12)


# --------------------------------------------------------------------------- sampler
def test_correlated_gaussian_moments_and_evidence():
    rng = np.random.default_rng(1)
    d = 5
    a = rng.normal(size=(d, d))
    cov = a @ a.T * 0.02 + np.eye(d) * 0.01
    mu = rng.uniform(-0.5, 0.5, d)
    lo, hi = np.full(d, -5.0), np.full(d, 5.0)
    norm_const = 3.7  # an unnormalised target: ln Z = ln 3.7 - ln(box volume)
    target = Target(lambda t: math.log(norm_const) + multivariate_normal(mu, cov).logpdf(t),
                     d, lo, hi)
    # crude "library" candidates: uniform draws weighted by the target
    cand = rng.uniform(lo, hi, (20000, d))
    lw = target.logpdf(cand)
    w = np.exp(lw - lw.max())
    run = run_adaptive(target, lo, hi, cand, w, [f"p{j}" for j in range(d)],
                       AdaptiveSettings(target_ess=2000, seed=3))
    assert run.converged and run.ess >= 2000
    mean, c = _weighted_moments(run)
    sd = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(mean, mu, atol=0.1 * sd.max())
    np.testing.assert_allclose(np.sqrt(np.diag(c)), sd, rtol=0.1)
    corr = c / np.outer(np.sqrt(np.diag(c)), np.sqrt(np.diag(c)))
    np.testing.assert_allclose(corr, cov / np.outer(sd, sd), atol=0.08)
    # the evidence of the uniform-box prior: Z = 3.7 / volume (mass inside the box ~ 1)
    assert run.ln_evidence == pytest.approx(math.log(norm_const) - d * math.log(10.0),
                                            abs=0.05)


def test_em_mixture_recovers_a_mixture_from_weighted_points():
    """Importance-weighted points (uniform draws weighted by the mixture density) give the
    mixture back: EM must use the weights, not the points' own spread."""
    shares = np.array([0.3, 0.7])
    means = np.array([[-1.0, 0.5], [1.2, -0.4]])
    covs = np.array([[[0.09, 0.05], [0.05, 0.16]], [[0.25, -0.08], [-0.08, 0.06]]])
    rng = np.random.default_rng(2)
    y = rng.uniform(-3.0, 3.0, (1500, 2))
    dens = sum(p * multivariate_normal(m, c).pdf(y)
               for p, m, c in zip(shares, means, covs, strict=True))
    w = dens / dens.sum()
    fit = _em_mixture(y, w, 2, np.random.default_rng(0))
    assert len(fit) == 2
    fit.sort(key=lambda g: g[1][0])
    for (p, m, c), p0, m0, c0 in zip(fit, shares, means, covs, strict=True):
        assert p == pytest.approx(p0, abs=0.05)
        np.testing.assert_allclose(m, m0, atol=0.08)
        np.testing.assert_allclose(c, c0, atol=0.04)
    # the same draws give the same fit
    again = sorted(_em_mixture(y, w, 2, np.random.default_rng(0)), key=lambda g: g[1][0])
    for a, b in zip(fit, again, strict=True):
        np.testing.assert_array_equal(a[1], b[1])


def _em_reference(x, w, means, cov, ridge, ess, min_points, n_iter):
    """EM written out with scipy's Gaussian densities, for the compiled kernel."""
    shares = np.full(len(means), 1.0 / len(means))
    covs = [cov.copy() for _ in means]
    means = list(means)
    for _ in range(n_iter):
        log_r = np.array([math.log(p) + multivariate_normal(m, c).logpdf(x)
                          for p, m, c in zip(shares, means, covs, strict=True)])
        resp = np.exp(log_r - np.logaddexp.reduce(log_r, axis=0)) * w
        nk = resp.sum(axis=1)
        alive = nk * ess >= min_points
        resp, nk = resp[alive], nk[alive]
        means = [r @ x / s for r, s in zip(resp, nk, strict=True)]
        covs = [((x - m).T * r) @ (x - m) / s + np.diag(ridge)
                for r, s, m in zip(resp, nk, means, strict=True)]
        shares = nk / nk.sum()
    return shares, np.array(means), np.array(covs)


@given(st.integers(0, 2**32 - 1), st.integers(1, 5), st.integers(1, 6))
@settings(max_examples=25, deadline=None)
def test_compiled_em_matches_a_scipy_reference(seed, k, d):
    """The compiled EM step for step against the same algorithm written with scipy's
    multivariate normal (fixed iteration count: no tolerance stop)."""
    from pixedfit import _core

    rng = np.random.default_rng(seed)
    n = 300
    x = rng.normal(size=(n, d)) * rng.uniform(0.5, 2.0, d) + rng.normal(size=d)
    x[: n // 3] += 2.5  # a second cluster
    w = rng.gamma(0.5, size=n)
    w /= w.sum()
    ess = 1.0 / float((w * w).sum())
    start = x[rng.choice(n, k, replace=False)]
    cov = np.cov(x.T, aweights=w).reshape(d, d) + 0.1 * np.eye(d)
    ridge = np.full(d, 1e-3)
    shares, means, covs, iters = _core.em_gaussian_mixture(
        x, w, start, cov, ridge, ess, 2.0 * d, 5, -1.0)
    ref = _em_reference(x, w, start, cov, ridge, ess, 2.0 * d, 5)
    assert iters == 5
    assert shares.shape == ref[0].shape
    np.testing.assert_allclose(shares, ref[0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(means, ref[1], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(covs, ref[2], rtol=1e-8, atol=1e-10)


def test_compiled_em_refuses_bad_shapes():
    from pixedfit import _core

    x = np.zeros((10, 2))
    with pytest.raises(ValueError, match="weights"):
        _core.em_gaussian_mixture(x, np.ones(9), x[:1], np.eye(2), np.zeros(2), 1.0, 1.0, 5,
                                  0.0)
    with pytest.raises(ValueError, match="start_cov"):
        _core.em_gaussian_mixture(x, np.ones(10), x[:1], np.eye(3), np.zeros(2), 1.0, 1.0, 5,
                                  0.0)


def _box_kernels():
    """Two kernels in the box coordinates: one piled against the edge u₀ = 0 (a third of it
    outside), one inside; and one almost wholly outside the box (dropped)."""
    return [(0.6, np.array([0.05, 0.5]), np.array([[0.01, 0.002], [0.002, 0.02]])),
            (0.4, np.array([0.7, 0.3]), np.array([[0.005, 0.0], [0.0, 0.004]])),
            (0.1, np.array([1.6, 0.5]), np.eye(2) * 0.01)]


def test_box_mixture_density_is_the_truncated_mixture_and_normalised():
    """ln q(y) is ln Σ π_k N(σ(y); m_k, C_k) / Z_k + ln |dσ/dy| (scipy), kernels with under
    5 % of their mass inside are dropped, and q integrates to 1 over the box."""
    rng = np.random.default_rng(3)
    mix = _BoxMixture(_box_kernels(), rng, n_norm=200_000)
    assert len(mix.kernels) == 2
    # the in-box masses: 2/3 of the first (u₀ > 0 beyond −0.5 sd), all of the second
    sd1 = math.sqrt(0.02)
    z0 = float((norm.cdf(0.95 / 0.1) - norm.cdf(-0.05 / 0.1))
               * (norm.cdf(0.5 / sd1) - norm.cdf(-0.5 / sd1)))
    assert mix.kernels[0][3] == pytest.approx(z0, abs=0.005)
    assert mix.kernels[1][3] == pytest.approx(1.0, abs=1e-3)
    y = rng.normal(size=(500, 2)) * 2.0
    u = 1.0 / (1.0 + np.exp(-y))
    ref = sum(w / z * multivariate_normal(m, c @ c.T).pdf(u) for w, m, c, z in mix.kernels)
    log_box = _Box.log_logistic(y)
    np.testing.assert_allclose(mix.logpdf(y, log_box), np.log(ref) + log_box, rtol=1e-10)
    # ∫ q_y dy = ∫ q_u du over the unit box (midpoint rule, 800²)
    g = (np.arange(800) + 0.5) / 800
    uu = np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2)
    yy = np.log(uu) - np.log1p(-uu)
    q_u = np.exp(mix.logpdf(yy, _Box.log_logistic(yy)) - _Box.log_logistic(yy))
    assert q_u.mean() == pytest.approx(1.0, abs=0.005)


def test_box_mixture_draws_follow_its_density():
    """Draws (by rejection to the box) have the moments of the density they are weighted by,
    in the box coordinates, and each kernel its share."""
    rng = np.random.default_rng(5)
    mix = _BoxMixture(_box_kernels(), rng, n_norm=200_000)
    u = 1.0 / (1.0 + np.exp(-mix.sample(40_000, rng)))
    assert np.all((u > 0) & (u < 1))
    g = (np.arange(600) + 0.5) / 600
    uu = np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2)
    yy = np.log(uu) - np.log1p(-uu)
    q = np.exp(mix.logpdf(yy, _Box.log_logistic(yy)) - _Box.log_logistic(yy))
    q /= q.sum()
    mean = q @ uu
    np.testing.assert_allclose(u.mean(axis=0), mean, atol=0.004)
    np.testing.assert_allclose(np.cov(u.T), ((uu - mean).T * q) @ (uu - mean), atol=0.002)
    assert np.mean(u[:, 0] > 0.45) == pytest.approx(0.4, abs=0.01)  # the second kernel


def test_box_mixture_takes_its_normalising_draws():
    """Given the standard normal draws the generator would make, the in-box masses are the
    same bits; draws of the wrong dimension are refused, naming them."""
    kernels = _box_kernels()
    drawn = _BoxMixture(kernels, np.random.default_rng(8), n_norm=5000)
    normals = np.random.default_rng(8).standard_normal((5000, 2))
    given_ = _BoxMixture(kernels, np.random.default_rng(99), normals=normals)
    assert [k[3] for k in given_.kernels] == [k[3] for k in drawn.kernels]
    with pytest.raises(ValueError, match="normals"):
        _BoxMixture(kernels, np.random.default_rng(8), normals=np.zeros((100, 3)))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(1, 5), st.integers(1, 300), st.integers(0, 2**32 - 1))
def test_compiled_box_shares_count_the_draws_inside_the_box(d, k, n, seed):
    """The share of draws μ_k + L_k z in the open unit box, counted by the compiled kernel,
    is numpy's count (kernels straddling the box's faces, point counts that leave partial
    blocks; the upper triangle of L_k is never read)."""
    from pixedfit import _core

    rng = np.random.default_rng(seed)
    a = rng.normal(size=(k, d, d)) * rng.uniform(0.02, 0.6, size=(k, 1, 1))
    chols = np.linalg.cholesky(a @ np.swapaxes(a, 1, 2) + 1e-4 * np.eye(d))
    means = rng.uniform(-0.3, 1.3, size=(k, d))
    normals = rng.standard_normal((n, d))
    u = np.einsum("krs,ns->knr", chols, normals) + means[:, None, :]
    want = np.all((u > 0.0) & (u < 1.0), axis=2).mean(axis=1)
    garbage = chols + np.triu(rng.normal(size=(d, d)), 1)  # never read
    np.testing.assert_array_equal(_core.box_fractions(garbage, means, normals), want)


def test_compiled_box_shares_refuse_bad_shapes():
    from pixedfit import _core

    chols, means = np.stack([np.eye(2)] * 3), np.zeros((3, 2))
    with pytest.raises(ValueError, match="chols"):
        _core.box_fractions(chols[:2], means, np.zeros((5, 2)))
    with pytest.raises(ValueError, match="normals"):
        _core.box_fractions(chols, means, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="normals"):
        _core.box_fractions(chols, means, np.zeros((0, 2)))


def test_every_round_of_a_fit_normalises_its_box_mixture_with_one_set_of_draws(monkeypatch):
    """run_adaptive draws the box mixtures' normalising normals once per fit, not once per
    round (a sixth of the cost of building a proposal), and a fit draws them again."""
    import pixedfit.fitting.adaptive as adaptive

    seen: list[NDArray | None] = []
    real = adaptive._BoxMixture

    def spy(kernels, rng, n_norm=adaptive._BOX_NORMALS, normals=None):
        seen.append(normals)
        return real(kernels, rng, n_norm=n_norm, normals=normals)

    monkeypatch.setattr(adaptive, "_BoxMixture", spy)
    d = 3
    lo, hi = np.full(d, -4.0), np.full(d, 4.0)
    target = Target(lambda t: multivariate_normal(np.zeros(d), np.eye(d) * 0.05).logpdf(t),
                    d, lo, hi)
    rng = np.random.default_rng(4)
    cand = rng.uniform(lo, hi, (3000, d))
    lw = target.logpdf(cand)
    for _ in range(2):
        before = len(seen)
        run = run_adaptive(target, lo, hi, cand, np.exp(lw - lw.max()), ["p0", "p1", "p2"],
                           AdaptiveSettings(target_ess=1500, batch=400, seed=1))
        mine = seen[before:]
        assert run.rounds >= 3 and len(mine) == run.rounds
        assert all(m is mine[0] for m in mine)
        assert mine[0].shape == (adaptive._BOX_NORMALS, d)
    assert seen[0] is not seen[-1]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 3000), scale=st.floats(0.01, 200.0), target=st.floats(1.0, 2000.0),
       skew=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_tempering_exponent_is_the_largest_beta_reaching_the_target(n, scale, target, skew,
                                                                     seed):
    """w^β with the returned β reaches the target ESS (capped at half the weights), and a
    β larger by 1e-6 does not: the answer of a bisection, found in far fewer steps."""
    rng = np.random.default_rng(seed)
    lw = -rng.exponential(scale, n) if skew else rng.normal(0.0, scale, n)
    lw[rng.random(n) < 0.1] = -np.inf  # dropped samples are ignored
    finite = lw[np.isfinite(lw)]
    beta = _tempering_exponent(lw, target)
    goal = min(target, 0.5 * finite.size)
    assert 0.0 <= beta <= 1.0
    if finite.size == 0:
        assert beta == 1.0
        return
    assert effective_sample_size(beta * finite) >= goal * (1.0 - 1e-9)
    if beta < 1.0:
        assert effective_sample_size(min(beta + 1e-6, 1.0) * finite) < goal * (1.0 + 1e-9)
    else:
        assert effective_sample_size(finite) >= goal


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-745.0, 745.0), min_size=1, max_size=40))
def test_logistic_terms_are_minus_the_logistic_log_density(values):
    """``_Box.logistic_terms`` = ln(1 + e^−y) + ln(1 + e^y) (scipy's logistic), symmetric,
    finite for any double (no overflow of e^y)."""
    y = np.array(values)
    got = _Box.logistic_terms(y)
    np.testing.assert_allclose(got, -logistic.logpdf(y), rtol=1e-13, atol=1e-300)
    np.testing.assert_array_equal(got, _Box.logistic_terms(-y))
    assert np.all(np.isfinite(_Box.logistic_terms(np.array([1e308, -1e308]))))


def test_em_mixture_kernels_are_limited_by_the_effective_sample_size():
    rng = np.random.default_rng(3)
    y = rng.normal(size=(400, 3))
    w = np.full(400, 1.0 / 400)
    # ESS 400 over 4 × 3 effective points per kernel: 33 kernels at most
    assert 1 <= len(_em_mixture(y, w, 64, rng)) <= 33
    few = np.zeros(400)
    few[:20] = 1.0 / 20  # ESS 20: one kernel
    assert len(_em_mixture(y, few, 16, rng)) == 1
    none = np.zeros(400)
    none[:5] = 0.2  # fewer points than 2d
    assert _em_mixture(y, none, 16, rng) == []


def test_curved_posterior_quantiles_and_fewer_evaluations_with_the_mixture():
    """A banana (Haario et al. 1999): x₂ = z₂ + b (x₁² − σ₁²) with (x₁, z₂, x₃) Gaussian,
    drawn exactly for reference. The mixture proposal must give its quantiles, and reach
    the target ESS with fewer model evaluations than the kernel density alone (measured:
    10 500 against 40 655)."""
    d, b, s1 = 3, 1.5, 1.0
    # the box holds the banana's arms (x₂ reaches 30 only beyond |x₁| = 4.6 σ₁)
    lo, hi = np.full(d, -8.0), np.array([8.0, 30.0, 8.0])

    def logpdf(t):
        z2 = t[:, 1] - b * (t[:, 0] ** 2 - s1**2)
        return -0.5 * ((t[:, 0] / s1) ** 2 + (z2 / 0.1) ** 2 + (t[:, 2] / 0.5) ** 2)

    cand = np.random.default_rng(5).uniform(lo, hi, (20000, d))
    lw = logpdf(cand)
    runs = {}
    for k in (0, 16):
        target = Target(logpdf, d, lo, hi)
        runs[k] = run_adaptive(target, lo, hi, cand, np.exp(lw - lw.max()),
                               ["p0", "p1", "p2"],
                               AdaptiveSettings(target_ess=2000, seed=4,
                                                mixture_components=k))
        assert runs[k].converged
    # the quantiles of every coordinate against exact draws of the banana (its means sit
    # in a long χ²₁ tail that importance sampling under-represents, as any sampler would
    # at this ESS)
    rng = np.random.default_rng(0)
    x1 = rng.normal(0.0, s1, 1_000_000)
    exact = np.column_stack([x1, rng.normal(0.0, 0.1, x1.size) + b * (x1**2 - s1**2),
                             rng.normal(0.0, 0.5, x1.size)])
    q = np.array([0.16, 0.5, 0.84])
    got = weighted_quantiles(runs[16].theta, runs[16].normalised_weights(), q)
    ref = np.quantile(exact, q, axis=0)
    # 3 Monte-Carlo standard errors of a quantile: √(q(1 − q) / ESS) / f(x_q), with the
    # density f read from the exact draws
    h = 0.05
    dens = np.array([[np.mean(np.abs(exact[:, j] - ref[i, j]) < h) / (2 * h)
                      for j in range(d)] for i in range(q.size)])
    se = np.sqrt(q * (1 - q) / runs[16].ess)[:, None] / dens
    assert np.all(np.abs(got - ref) < 3 * se), (got, ref, se)
    assert runs[16].n_evaluations < runs[0].n_evaluations


def test_spread_starts_best_first_then_farthest():
    y = np.array([[0.0, 0.0], [0.1, 0.0], [3.0, 0.0], [0.0, 2.0], [2.9, 0.1]])
    assert _spread_starts(y, 3) == [0, 2, 3]
    # never more than the distinct rows
    assert _spread_starts(np.zeros((4, 2)), 3) == [0]


def test_lowest_chi2_agrees_with_the_direct_computation():
    """The closed form χ² = Σf²/σ² − a²/b against scaling every model and summing."""
    from types import SimpleNamespace

    rng = np.random.default_rng(8)
    nb, nmod = 6, 500
    flux = rng.uniform(0.5, 2.0, (1, nb, nmod))
    flux[0, :, 7] = -flux[0, :, 7]  # a model that fits only with a negative scale
    obs = flux[0, :, 42] * 3.0 * (1 + 0.02 * rng.standard_normal(nb))
    err = 0.05 * obs
    err[2] = np.inf  # a dropped band
    upper = np.zeros(nb, dtype=bool)
    upper[4] = True  # an upper limit: not in the ranking
    extra = np.zeros(nmod)
    extra[11] = -np.inf  # beyond the age of the universe
    lp = SimpleNamespace(models=SimpleNamespace(flux=flux))
    idx, scale = _lowest_chi2(lp, obs, err, upper, extra, 20)
    assert idx[0] == 42 and 7 not in idx and 11 not in idx
    m = flux[0].T
    det = ~upper
    s_ref = scale_fit(m, obs, err, det)[0]
    e_det = np.where(det, err, np.inf)
    chi2_ref = chi2_terms(m * s_ref[:, None], obs, e_det)
    ok = (s_ref > 0) & np.isfinite(extra)
    ref = np.flatnonzero(ok)[np.argsort(chi2_ref[ok], kind="stable")[:20]]
    np.testing.assert_array_equal(idx, ref)
    np.testing.assert_allclose(scale, s_ref[idx], rtol=1e-12)


@given(st.lists(st.integers(0, 6), min_size=0, max_size=60), st.integers(1, 70))
@settings(max_examples=200, deadline=None)
def test_smallest_first_is_the_head_of_a_stable_sort(values, n):
    """Many ties (values from 6 levels, and NaN): the selection must break them by index
    and put NaN last exactly as a stable sort does."""
    v = np.asarray(values, dtype=np.float64) * 0.5
    v[v == 3.0] = np.nan
    np.testing.assert_array_equal(_smallest_first(v, n), np.argsort(v, kind="stable")[:n])


def test_two_modes_keep_their_masses():
    d = 3
    lo, hi = np.full(d, -4.0), np.full(d, 4.0)
    m1, m2 = np.full(d, -1.5), np.full(d, 1.5)
    s = 0.15

    def logpdf(t):
        a = multivariate_normal(m1, s**2 * np.eye(d)).logpdf(t) + math.log(0.3)
        b = multivariate_normal(m2, s**2 * np.eye(d)).logpdf(t) + math.log(0.7)
        return np.logaddexp(a, b)

    target = Target(logpdf, d, lo, hi)
    cand = np.random.default_rng(0).uniform(lo, hi, (30000, d))
    lw = logpdf(cand)
    run = run_adaptive(target, lo, hi, cand, np.exp(lw - lw.max()), ["p0", "p1", "p2"],
                       AdaptiveSettings(target_ess=1500, seed=1))
    w = run.normalised_weights()
    assert run.converged
    assert w[run.theta[:, 0] < 0].sum() == pytest.approx(0.3, abs=0.04)


def test_budget_exhausted_is_reported():
    d = 4
    lo, hi = np.full(d, -1.0), np.full(d, 1.0)
    target = Target(lambda t: -0.5 * (t**2).sum(axis=1) / 0.01**2, d, lo, hi)
    cand = np.zeros((5, d))
    run = run_adaptive(target, lo, hi, cand, np.ones(5), [f"p{j}" for j in range(d)],
                       AdaptiveSettings(target_ess=1e6, max_evaluations=3000, batch=1000))
    assert not run.converged and run.n_evaluations <= 3000 and run.rounds >= 2


class _LinearPhotometry:
    """A photometric problem whose model fluxes are linear in the unbounded coordinates
    ``y`` of the box: F = A y + b, with the LogProbability attributes the Laplace start
    reads (obs, err, upper, evaluate with photometry extras)."""

    def __init__(self, a, b, obs, err, lo, hi):
        self.a, self.b, self.obs, self.err = a, b, obs, err
        self.lo, self.hi, self.upper, self.filters = lo, hi, None, ["x"] * obs.size
        self.box = _Box(lo, hi)
        self.ndim = a.shape[1]
        self.ncalls = 0

    def flux(self, y):
        return y @ self.a.T + self.b

    def evaluate(self, theta, extras=False, values=True):
        theta = np.atleast_2d(theta)
        inside = np.all((theta > self.lo) & (theta < self.hi), axis=1)
        idx = np.flatnonzero(inside)
        self.ncalls += idx.size
        f = self.flux(self.box.to_y(theta[idx]))
        chi2 = (((f - self.obs) / self.err) ** 2).sum(axis=1)
        lnp = np.full(theta.shape[0], -np.inf)
        lnp[idx] = -0.5 * chi2  # uniform box prior
        return lnp, {"index": idx, "chi2": chi2, "photometry": f,
                     **({"values": {}} if values else {})}


def test_laplace_modes_agree_with_scipy_minimisation():
    rng = np.random.default_rng(4)
    d, nb = 4, 9
    a = rng.normal(size=(nb, d))
    b = rng.normal(size=nb)
    err = np.full(nb, 0.1)
    y_true = rng.uniform(-1, 1, d)
    obs = a @ y_true + b + rng.normal(0, 0.1, nb)
    lo, hi = np.full(d, -3.0), np.full(d, 3.0)
    prob = _LinearPhotometry(a, b, obs, err, lo, hi)
    box = _Box(lo, hi)
    starts = np.array([np.zeros(d), np.full(d, 1.5), np.full(d, -2.0)])
    modes, covs, lp_modes, nev = _laplace_modes(prob, box, starts, 50, 10**6)

    def phi(y):  # minus the log posterior in y: chi2/2 - ln|dθ/dy|
        return 0.5 * ((((a @ y + b) - obs) / err) ** 2).sum() - float(
            box.log_jacobian(y[None])[0])

    ref = minimize(phi, np.zeros(d), method="BFGS", options={"gtol": 1e-9})
    for m in modes:
        np.testing.assert_allclose(m, ref.x, atol=2e-3)
    np.testing.assert_allclose(-lp_modes, ref.fun, atol=1e-4)
    # Gauss-Newton covariance: (AᵀA/σ² + diag(2σ(y)(1-σ(y))))⁻¹, exact for this model
    sy = 1 / (1 + np.exp(-ref.x))
    expect = np.linalg.inv(a.T @ a / 0.01 + np.diag(2 * sy * (1 - sy)))
    np.testing.assert_allclose(covs[0], expect, rtol=0.02, atol=1e-8)
    assert 0 < nev == prob.ncalls


class _CurvedPhotometry(_LinearPhotometry):
    """F = A exp(y / 2) + b: a curved problem on which Levenberg–Marquardt refuses steps.
    Every batch of positions it is asked for is kept (in the unbounded coordinates)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.batches = []

    def flux(self, y):
        return np.exp(0.5 * y) @ self.a.T + self.b

    def evaluate(self, theta, extras=False, values=True):
        self.batches.append(self.box.to_y(np.atleast_2d(theta)))
        return super().evaluate(theta, extras, values)


def test_laplace_modes_difference_only_at_the_starts_and_the_modes():
    """Forward differences are taken twice per start, at the start and at its mode; in
    between, Broyden's update keeps the Jacobian, so an iteration costs one evaluation per
    start. The modes and the Gauss-Newton covariances are still those of the exact
    problem (a curved one, on which Levenberg-Marquardt refuses steps)."""
    rng = np.random.default_rng(8)
    d, nb, step = 3, 8, 0.02
    a = rng.normal(size=(nb, d))
    b = rng.normal(size=nb)
    err = np.full(nb, 0.05)
    obs = np.exp(0.5 * rng.uniform(-1, 1, d)) @ a.T + b
    lo, hi = np.full(d, -4.0), np.full(d, 4.0)
    prob = _CurvedPhotometry(a, b, obs, err, lo, hi)
    box = _Box(lo, hi)
    starts = np.array([np.full(d, 2.5), np.full(d, -2.5), [2.0, -2.0, 0.5]])
    modes, covs, lp_modes, nev = _laplace_modes(prob, box, starts, 60, 10**6, step=step)
    differenced, trials = [], 0
    for y in prob.batches[1:]:
        groups = y.reshape(-1, d, d) if y.shape[0] % d == 0 else None
        if groups is not None and np.allclose(
                groups - (groups[:, :1] - step * np.eye(d)[0]), step * np.eye(d), atol=1e-9):
            differenced.append(groups[:, 0] - step * np.eye(d)[0])
        else:
            trials += y.shape[0]
    assert len(differenced) == 2
    np.testing.assert_allclose(differenced[0], starts, atol=1e-9)
    np.testing.assert_allclose(differenced[1], modes, atol=1e-9)
    assert trials > 10 * starts.shape[0]  # many iterations, one evaluation per start each
    assert nev == prob.ncalls == starts.shape[0] * (1 + 2 * d) + trials

    def phi(y):  # minus the log posterior in y
        return 0.5 * ((((np.exp(0.5 * y) @ a.T + b) - obs) / err) ** 2).sum() - float(
            box.log_jacobian(y[None])[0])

    ref = minimize(phi, np.zeros(d), method="BFGS", options={"gtol": 1e-9})
    best = int(np.argmax(lp_modes))
    np.testing.assert_allclose(modes[best], ref.x, atol=2e-3)
    np.testing.assert_allclose(-lp_modes[best], ref.fun, atol=1e-4)
    # the exact Gauss-Newton Hessian at the mode: J = A diag(exp(y/2) / 2) / σ
    jac = a * (0.5 * np.exp(0.5 * modes[best]))[None] / err[:, None]
    sy = 1 / (1 + np.exp(-modes[best]))
    expect = np.linalg.inv(jac.T @ jac + np.diag(2 * sy * (1 - sy)))
    np.testing.assert_allclose(covs[best], expect, rtol=0.05, atol=1e-8)


def test_calibrated_laplace_recovers_a_gaussian_and_cuts_a_cliff():
    d = 3
    lo, hi = np.full(d, -10.0), np.full(d, 10.0)
    box = _Box(lo, hi)
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    cov = q @ np.diag([0.04, 0.25, 1.0]) @ q.T
    mu = np.array([0.3, -0.2, 0.1])
    icov = np.linalg.inv(cov)

    class Gauss:
        ncalls = 0
        cliff = None

        def evaluate(self, theta, extras=False):
            y = box.to_y(np.atleast_2d(theta))
            self.ncalls += y.shape[0]
            dy = y - mu
            out = -0.5 * np.einsum("ni,ij,nj->n", dy, icov, dy) - box.log_jacobian(y)
            if self.cliff is not None:  # a wall: nothing beyond y·v > c
                out = np.where(y @ self.cliff[0] > self.cliff[1], -np.inf, out)
            return out, {}

    g = Gauss()
    # a guessed covariance 5x too broad; the calibration brings it back to the truth
    centre, shape, nev = _calibrated_laplace(g, box, mu[None], cov[None] * 25.0,
                                             np.zeros(1), n_iter=12)
    np.testing.assert_allclose(centre[0], mu, atol=0.02)
    np.testing.assert_allclose(shape[0], cov, rtol=0.05, atol=0.005)
    assert nev == g.ncalls > 0
    # a wall at +0.5σ along the broadest direction: the approximation shrinks and moves away
    v = np.linalg.eigh(cov)[1][:, -1]
    g.cliff = (v, float(mu @ v) + 0.5)
    walled, walled_shape, _ = _calibrated_laplace(g, box, mu[None], cov[None], np.zeros(1),
                                                  n_iter=12)
    sd_v = math.sqrt(float(v @ walled_shape[0] @ v))
    assert sd_v < 0.75 and float((walled[0] - mu) @ v) < -0.3
    # several modes in one call: each exactly as on its own, for the sum of the evaluations
    starts = np.array([mu, mu + 0.3, mu - 0.2])
    guesses = np.array([cov, cov * 4.0, cov * 0.25])
    lps = np.array([0.0, -0.5, -0.1])
    g.ncalls = 0
    together, shapes, nev = _calibrated_laplace(g, box, starts, guesses, lps)
    assert nev == g.ncalls
    for i in range(3):
        one, one_shape, nev_one = _calibrated_laplace(g, box, starts[i:i + 1],
                                                      guesses[i:i + 1], lps[i:i + 1])
        np.testing.assert_array_equal(together[i], one[0])
        np.testing.assert_array_equal(shapes[i], one_shape[0])
        assert 3 * nev_one == nev


def test_calibrated_laplace_profiles_the_mass_on_a_curved_ridge():
    """Photometry ``10^m exp(k_b x + c x²)``: the best mass given the shape parameter x
    follows a curved ridge. Along x with the mass held at the mode's value the posterior
    falls long before the marginal of x does; with the mass profiled (``mass``) the
    calibrated width is the marginal's (from a grid), and the unprofiled one is far
    narrower."""
    k_b, c = np.array([-0.3, 0.0, 0.3, 0.6]), 100.0
    lo, hi = np.array([-20.0, 0.0]), np.array([20.0, 20.0])
    box = _Box(lo, hi)
    x0, m0 = 0.0, 10.0
    truth = 10**m0 * np.exp(k_b * x0 + c * x0 * x0)
    err = 0.01 * truth

    class Curved:
        ncalls = 0
        filters = ("a", "b", "c", "d")
        obs, upper, im, ndim = truth, None, 1, 2

        def __init__(self):
            self.err = err

        def evaluate(self, theta, extras=False, mass_proposal=None, values=True):
            theta = np.array(np.atleast_2d(theta), dtype=float)
            self.ncalls += theta.shape[0]
            phot = 10 ** theta[:, 1:2] * np.exp(k_b * theta[:, :1] + c * theta[:, :1] ** 2)
            if mass_proposal is not None:
                new, _ = mass_proposal(phot, theta[:, 1].copy())
                phot = phot * 10 ** (new - theta[:, 1])[:, None]
                theta[:, 1] = new
            lnp = -0.5 * (((phot - truth) / err) ** 2).sum(axis=1)
            ex = {"index": np.arange(theta.shape[0]), "theta": theta,
                  "log_q_mass": np.zeros(theta.shape[0])} if extras else {}
            return lnp, ex

    prob = Curved()
    mass = _MassProposal(truth, err, None, lo[1], hi[1], np.random.default_rng(0), df=20.0)
    # the posterior on a grid of y, its marginal in y_x
    yx = np.linspace(-0.02, 0.02, 801)
    ym = box.to_y(np.array([[0.0, m0]]))[0, 1] + np.linspace(-0.04, 0.01, 1601)
    gy = np.stack(np.meshgrid(yx, ym, indexing="ij"), axis=-1).reshape(-1, 2)
    lp = (prob.evaluate(box.to_theta(gy))[0] + box.log_jacobian(gy)).reshape(801, 1601)
    marg = np.exp(lp - lp.max()).sum(axis=1)
    marg /= marg.sum()
    sd_x = math.sqrt(float((marg * yx**2).sum() - (marg * yx).sum() ** 2))
    mode = box.to_y(np.array([[x0, m0]]))
    lp_mode = prob.evaluate(box.to_theta(mode))[0] + box.log_jacobian(mode)
    guess = np.diag([sd_x**2, 1e-6])[None]
    _, joint, _ = _calibrated_laplace(prob, box, mode, guess, lp_mode, n_iter=12)
    _, prof, nev = _calibrated_laplace(prob, box, mode, guess, lp_mode, n_iter=12,
                                       mass=mass, im=1)
    assert nev == 12 * 2  # one direction each way: the mass is not a direction
    assert math.sqrt(prof[0, 0, 0]) == pytest.approx(sd_x, rel=0.1)
    assert math.sqrt(joint[0, 0, 0]) < 0.5 * sd_x
    assert prof[0, 1, 1] == guess[0, 1, 1]  # the mass row is the given covariance's


def _scale_problem(noise: float, seed: int = 0):
    """Model photometry (8 bands) at log_mass = 9, observations of 10^0.7 times it with
    relative errors ``noise`` (band 2 an upper limit, far above), the best scale and its
    Fisher width (σ_r)."""
    rng = np.random.default_rng(seed)
    f = rng.uniform(1, 5, 8)
    err = noise * 10**0.7 * f
    obs = 10**0.7 * f + rng.normal(0, err)
    up = np.zeros(8, bool)
    up[2] = True  # an upper limit takes no part in the proposal
    obs[2] = 1e3
    use = ~up
    s_best = np.linalg.lstsq((f / err)[use, None], (obs / err)[use], rcond=None)[0][0]
    sd_r = 1.0 / math.sqrt(((f / err)[use] ** 2).sum())
    return f, obs, err, up, s_best, sd_r


@pytest.mark.parametrize(("df", "lo", "hi"), [
    (5.0, 8.0, 11.0),  # the box holds nearly all: drawn by rejection, its share computed
    (20.0, 8.0, 11.0),  # the edges beyond the 1e-17 quantile: the share is 1
    (5.0, 9.705, 11.0),  # the centre below the box: the inverse CDF
    (20.0, 6.0, 9.702),  # the centre near the upper edge: by rejection, cut
])
def test_mass_proposal_draws_the_truncated_student_t_of_the_scale(df, lo, hi):
    """A well-measured scale (2 % errors): the mass is 9 + log10 r with r drawn from the
    Student-t around the best scale with its Fisher width, truncated to the box; the
    density is that Student-t's times r ln 10 (per dex); no uniform share."""
    f, obs, err, up, s_best, sd_r = _scale_problem(0.02)
    widen = 1.3
    mp = _MassProposal(obs, err, up, lo, hi, np.random.default_rng(1), df=df, widen=widen)
    n = 20000
    x, log_q = mp(np.tile(f, (n, 1)), np.full(n, 9.0))
    assert 9.0 + math.log10(s_best) == pytest.approx(9.7, abs=0.01)
    sd = widen * sd_r
    r_lo, r_hi = 10 ** (lo - 9.0), 10 ** (hi - 9.0)
    fa, fb = student_t.cdf((r_lo - s_best) / sd, df), student_t.cdf((r_hi - s_best) / sd, df)

    def cdf(v):
        return (student_t.cdf((10 ** (v - 9.0) - s_best) / sd, df) - fa) / (fb - fa)

    assert kstest(x, cdf).pvalue > 1e-3
    r = 10 ** (x - 9.0)
    np.testing.assert_allclose(log_q, student_t.logpdf((r - s_best) / sd, df) - math.log(sd)
                               - math.log(fb - fa) + np.log(r * math.log(10)),
                               rtol=1e-9, atol=1e-12)
    assert np.all((x > lo) & (x < hi))
    # no detected band: uniform over the box
    x0, lq0 = mp(np.zeros((100, 8)), np.full(100, 9.0))
    np.testing.assert_allclose(lq0, -math.log(hi - lo))
    assert np.all((x0 > lo) & (x0 < hi))
    # a negative best scale (the model anticorrelated with the data): uniform too
    _, lq1 = mp(np.tile(-f, (100, 1)), np.full(100, 9.0))
    np.testing.assert_allclose(lq1, -math.log(hi - lo))


def _mass_efficiency(noise: float, lo: float, hi: float, widen: float = 1.0,
                     n: int = 40000) -> tuple[float, NDArray, NDArray]:
    """Importance efficiency (ESS / n) of the mass draws against the exact conditional
    posterior of log_mass (flat prior, Gaussian likelihood of the detected bands), and
    the draws with their normalised weights."""
    f, obs, err, up, _, _ = _scale_problem(noise, seed=3)
    mp = _MassProposal(obs, err, up, lo, hi, np.random.default_rng(2), df=20.0, widen=widen)
    x, log_q = mp(np.tile(f, (n, 1)), np.full(n, 9.0))
    use = ~up
    model = 10 ** (x[:, None] - 9.0) * f[use]
    log_post = -0.5 * (((obs[use] - model) / err[use]) ** 2).sum(axis=1)
    log_w = log_post - log_q
    w = np.exp(log_w - log_w.max())
    return float(w.sum() ** 2 / (w * w).sum() / n), x, w / w.sum()


@pytest.mark.parametrize(("noise", "floor"), [(0.01, 0.97), (0.05, 0.97), (0.3, 0.85),
                                               (1.0, 0.6), (3.0, 0.5)])
def test_mass_proposal_matches_the_conditional_posterior(noise, floor):
    """The draws are nearly the exact conditional posterior of log_mass at any S/N of the
    scale: ESS/n above 0.97 for a scale known to 1–5 % (drawn 1.5 × wider, as the earlier
    proposal was: ≈ 0.82), and still above 0.5 where the flat low-mass tail of a poorly
    measured scale holds much of the posterior (σ_r / s ≈ 0.4–1.1 here). The weighted
    draws give the posterior's median."""
    lo, hi = 6.0, 11.0
    eff, x, w = _mass_efficiency(noise, lo, hi)
    assert eff > floor
    if noise <= 0.05:
        old, _, _ = _mass_efficiency(noise, lo, hi, widen=1.5)
        assert old < 0.9 * eff  # the earlier widening costs evaluations
    # the exact posterior median by quadrature on a fine grid of log_mass
    f, obs, err, up, _, _ = _scale_problem(noise, seed=3)
    grid = np.linspace(lo, hi, 200001)
    use = ~up
    chi2 = ((((obs[use] - 10 ** (grid[:, None] - 9.0) * f[use]) / err[use]) ** 2).sum(axis=1))
    post = np.exp(-0.5 * (chi2 - chi2.min()))
    cdf = np.cumsum(post) / post.sum()
    median = grid[np.searchsorted(cdf, 0.5)]
    order = np.argsort(x)
    est = x[order][np.searchsorted(np.cumsum(w[order]), 0.5)]
    spread = grid[np.searchsorted(cdf, 0.84)] - grid[np.searchsorted(cdf, 0.16)]
    assert abs(est - median) < 0.05 * spread


def test_mass_shift_is_the_same_posterior_as_a_new_model_evaluation(model, libraries):
    """The mass-conditional proposal rescales the photometry of one model evaluation; the
    log posterior, photometry and mass-scaled derived values must be those of evaluating
    the new positions afresh (priors on mass-scaled quantities included)."""
    obs, err, _ = _mock(model, libraries[0], 12, seed=1)
    free = ["logzsol", "log_tau", "log_age", "dust2", "log_mass"]
    lo = np.array([-1.0, -1.0, -1.0, 0.0, 8.0])
    hi = np.array([0.2, 1.5, 1.1, 2.0, 12.0])
    priors = PriorSet([Gaussian("log_sfr", 0.5, 0.6)])
    lp = LogProbability(model, free, lo, hi, {}, priors, 0.05, FILTERS, obs, err, threads=1)
    theta = lo + np.random.default_rng(3).uniform(0, 1, (40, 5)) * (hi - lo)
    mp = _MassProposal(obs, err, None, 8.0, 12.0, np.random.default_rng(5), df=5.0)
    lnp, ex = lp.evaluate(theta, extras=True, mass_proposal=mp)
    new = theta.copy()
    new[ex["index"]] = ex["theta"]
    assert not np.allclose(new[:, 4], theta[:, 4])
    np.testing.assert_array_equal(new[:, :4], theta[:, :4])
    lnp2, ex2 = lp.evaluate(new, extras=True)
    np.testing.assert_array_equal(ex["index"], ex2["index"])
    np.testing.assert_allclose(lnp, lnp2, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ex["photometry"], ex2["photometry"], rtol=1e-10)
    for name in ("log_mass", "log_sfr", "log_mass_formed"):
        np.testing.assert_allclose(ex["values"][name], ex2["values"][name], atol=1e-10)


@pytest.mark.parametrize("field, value", [("target_ess", 0), ("max_evaluations", 0),
                                          ("batch", 2.5), ("defensive", 1.0), ("df", -1.0),
                                          ("n_samples", -1), ("min_adapt_ess", 1.0),
                                          ("n_starts", -1), ("max_newton_iter", 0),
                                          ("mass_conditional", "yes"),
                                          ("mixture_components", -1),
                                          ("median_precision", -0.1),
                                          ("precision_max_width", float("nan")),
                                          ("precision_quantities", "log_mass")])
def test_bad_settings_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        AdaptiveSettings(**{field: value}).check()


@pytest.mark.parametrize("shape", ["gaussian", "skewed"])
def test_median_error_matches_the_scatter_of_weighted_medians(shape):
    """The predicted Monte-Carlo error of a weighted median equals the scatter of the
    medians over independent importance-sampling runs (Student-t proposal, 600 draws)."""
    rng = np.random.default_rng(5)
    medians, predicted = [], []
    for _ in range(400):
        x = student_t.rvs(4, loc=0.3, scale=1.5, size=600, random_state=rng)
        log_q = student_t.logpdf(x, 4, loc=0.3, scale=1.5)
        if shape == "gaussian":
            log_p = -0.5 * x**2
        else:  # a log-normal shape: the median sits where the density is not the peak's
            u = np.log(np.where(x > -3, x + 3, np.nan))
            log_p = np.where(x > -3, -0.5 * u**2 - u, -np.inf)
        lw = log_p - log_q
        w = np.exp(lw - lw.max())
        medians.append(weighted_quantiles(x[:, None], w, np.array([0.5]))[0, 0])
        predicted.append(median_errors({"x": x}, lw, ["x"])["x"][0])
    assert np.std(medians) == pytest.approx(np.mean(predicted), rel=0.15)


def test_broad_quantities_raise_the_effective_sample_size_a_fit_needs():
    """A quantity 1 wide needs ESS ≈ (1.2533 / 0.02)² ≈ 3 900 for a 0.02 median error; with
    the criterion off, or for a quantity wider than precision_max_width (a bound, not a
    measurement), the default target_ess is enough. (The width is held well away from
    precision_max_width either way: the estimate of a 1-wide posterior scatters by a few
    per cent around the default, 1.)"""
    lo, hi = np.array([-6.0, -1.0]), np.array([6.0, 1.0])
    target = Target(lambda t: -0.5 * (t[:, 0] ** 2 + (t[:, 1] / 0.05) ** 2), 2, lo, hi)
    rng = np.random.default_rng(2)
    cand = rng.uniform(lo, hi, (20000, 2))
    w = np.exp(target.logpdf(cand) - target.logpdf(cand).max())
    runs = {}
    for label, extra in {"absolute": {"precision_max_width": 1.5},
                         "off": {"median_precision": 0.0, "precision_max_width": 1.5},
                         "bound": {"precision_max_width": 0.9}}.items():
        cfg = AdaptiveSettings(seed=4, precision_quantities=("p0", "p1", "absent"), **extra)
        runs[label] = run_adaptive(target, lo, hi, cand, w, ["p0", "p1"], cfg)
        assert runs[label].converged
    errs = median_errors(runs["absolute"].values, runs["absolute"].log_weight, ["p0", "p1"])
    assert errs["p0"][0] <= 0.02
    assert errs["p0"][1] == pytest.approx(1.0, rel=0.05)
    assert runs["absolute"].ess > 3000
    target = AdaptiveSettings().target_ess
    assert target <= runs["off"].ess < 3 * target
    assert target <= runs["bound"].ess < 3 * target
    assert runs["absolute"].n_evaluations > 2 * runs["off"].n_evaluations


# --------------------------------------------------------------------------- real models
@pytest.fixture(scope="module")
def model():
    return shared_model(sfh_form=1, dust_law=1, add_neb_emission=False)


@pytest.fixture(scope="module")
def libraries(model):
    return [shared_library(model, 6000, seed) for seed in (21, 22)]


def _mock(model, library, index, z=0.05, snr=20.0, seed=0):
    p = {k: v[index] for k, v in library.params.items()}
    p["log_mass"] = 10.0
    flux = model.photometry(p, z, FILTERS)
    err = flux / snr
    return flux + np.random.default_rng(seed).normal(0, err), err, p


def test_library_seed_no_longer_changes_the_answer(model, libraries):
    """The defect: two libraries that differ only in their seed gave medians 0.13 dex apart.
    Refined, they agree to the Monte-Carlo precision of their ESS (≥ target_ess)."""
    obs, err, _ = _mock(model, libraries[0], 31, seed=4)
    fits = [fit_sed(obs, err, FILTERS, z=0.05, library=lib, model=model, seed=5)
            for lib in libraries]
    plain = [fit_sed(obs, err, FILTERS, z=0.05, library=lib, model=model,
                     method=RdspsSettings(refine=False)) for lib in libraries]
    target = AdaptiveSettings().target_ess
    for f in fits:
        assert f.converged and f.ess >= target and f.n_model_evaluations > 0 and f.rounds >= 1
    for p in plain:
        assert p.converged is False and p.ess < target and p.n_model_evaluations == 0
    for name in ("log_mass", "log_sfr", "log_age", "dust2"):
        k = fits[0].names.index(name)
        sigma = max(fits[0].std[k], 1e-3)
        # Monte-Carlo error of a median with ESS 300: 1.25 σ / √300 = 0.072 σ per fit
        assert abs(fits[0].p50[k] - fits[1].p50[k]) < 0.3 * sigma, name


def test_same_seed_same_answer_for_any_threads(model, libraries):
    lib = libraries[0]
    mocks = [_mock(model, lib, i, seed=i) for i in (3, 8, 15)]
    obs = np.array([m[0] for m in mocks])
    err = np.array([m[1] for m in mocks])
    a = fit_catalog(obs, err, FILTERS, [0.05] * 3, library=lib, model=model,
                    parallel=Parallelism(threads=1), seed=9)
    b = fit_catalog(obs, err, FILTERS, [0.05] * 3, library=lib, model=model,
                    parallel=Parallelism(threads=2), seed=9)
    for x, y in zip(a.values(), b.values(), strict=True):
        np.testing.assert_array_equal(x.p50, y.p50)
        np.testing.assert_array_equal(x.samples, y.samples)
        assert x.ess == y.ess and x.n_model_evaluations == y.n_model_evaluations
    c = fit_catalog(obs, err, FILTERS, [0.05] * 3, library=lib, model=model, seed=10)
    assert not np.array_equal(a[0].p50, c[0].p50)


def test_refined_posterior_covers_the_truth(model, libraries):
    obs, err, truth = _mock(model, libraries[1], 77, seed=2)
    res = fit_sed(obs, err, FILTERS, z=0.05, library=libraries[0], model=model)
    for name in ("log_mass", "log_age", "dust2"):
        k = res.names.index(name)
        assert res.p50[k] - 3.5 * res.std[k] <= truth[name] <= res.p50[k] + 3.5 * res.std[k]
    assert res.samples.shape == (1000, len(res.names))
    k = res.names.index("log_mass")
    assert np.median(res.samples[:, k]) == pytest.approx(res.p50[k], abs=0.3 * res.std[k])
    assert res.chi2_min < 3 * len(FILTERS)
    # the model photometry's percentiles (from the equal-weight samples) bracket the data
    pct = res.photo_pct
    assert pct.shape == (3, len(FILTERS)) and np.all(pct[0] <= pct[1])
    assert np.all(pct[1] <= pct[2]) and np.all(pct[2] > pct[0])
    assert np.all(np.abs(pct[1] - obs) < 3.5 * err)


def test_budget_warning_and_flag(model, libraries):
    obs, err, _ = _mock(model, libraries[0], 5)
    with pytest.warns(ConvergenceWarning, match="not converged"):
        res = fit_sed(obs, err, FILTERS, z=0.05, library=libraries[0], model=model,
                      method=RdspsSettings(refine=AdaptiveSettings(
                          target_ess=1e5, max_evaluations=1500, batch=500)))
    assert res.converged is False and res.n_model_evaluations <= 1500
    assert "not converged" in res.diagnostics["warnings"][0]


def test_masked_band_refined(model, libraries):
    obs, err, _ = _mock(model, libraries[0], 12)
    obs[0] = np.nan
    res = fit_sed(obs, err, FILTERS, z=0.05, library=libraries[0], model=model,
                  errors=ErrorModel(mask_invalid=True))
    assert res.converged and res.n_bands_used == len(FILTERS) - 1
    assert np.isnan(res.obs_flux[0]) and np.all(np.isfinite(res.p50))


def test_convergence_figures_survive_both_file_layouts(model, libraries, tmp_path):
    obs, err, _ = _mock(model, libraries[0], 40)
    res = fit_sed(obs, err, FILTERS, z=0.05, library=libraries[0], model=model)
    res.write(tmp_path / "r.h5")
    back = FitResult.read(tmp_path / "r.h5")
    assert (back.ess, back.n_model_evaluations, back.rounds, back.converged) == (
        res.ess, res.n_model_evaluations, res.rounds, True)
    np.testing.assert_array_equal(back.samples, res.samples)
    res.write_pixedfit(tmp_path / "r.fits")
    old = FitResult.read_pixedfit(tmp_path / "r.fits")
    assert old.ess == pytest.approx(res.ess)
    assert (old.n_model_evaluations, old.rounds, old.converged) == (
        res.n_model_evaluations, res.rounds, True)


def test_original_layout_library_without_model_warns(model, libraries, tmp_path):
    """A library without a model configuration cannot be refined: the fit says so."""
    lib = generate_library(model, 800, seed=3, spectra=True)
    lib.write_pixedfit(tmp_path / "orig.hdf5")
    from pixedfit.library import read_library

    orig = read_library(tmp_path / "orig.hdf5")
    obs, err, _ = _mock(model, lib, 10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fit_sed(obs, err, FILTERS, z=0.05, library=orig)
    assert any(issubclass(w.category, ConvergenceWarning) for w in caught)
    assert res.converged is False and res.n_model_evaluations == 0 and res.ok


@pytest.mark.slow
def test_dustpedia_two_dust_modes_found_and_agree_with_nested(shared_data):
    """IC 691 (27 DustPedia bands): its posterior has two dust modes — dust in birth clouds
    (dust1 ≈ 2.5, the highest density, where all the models the library pass weights lie)
    and in the diffuse medium (dust1 ≈ 0, most of the mass). Started from the best-weighted
    library models alone, the refinement converged on the first for one fit seed (log M*
    9.54 against 9.65). Starts spread among the lowest-χ² models reach both; both seeds then
    agree with nested sampling (an independent sampler) to 0.3 σ."""
    import sys
    from pathlib import Path

    from pixedfit.sps import SEDModel

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    import fit_dustpedia as fd

    flux, err, zs = fd.galaxy_seds(["IC0691"])
    obs, err, z = flux[0], err[0], zs[0]
    filters = list(fd.BANDS.values())
    model = SEDModel(sfh_form=1, dust_law=0, dust_emission=True, add_neb_emission=True)
    lib = generate_library(model, 100000, seed=7, ranges={"log_age": (-1.0, 1.14)})
    kw = dict(z=float(z), library=lib, model=model,
              errors=ErrorModel(error_floor=0.05, mask_invalid=True),
              parallel=Parallelism(threads=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nested = fit_sed(obs, err, filters, method="nested", seed=1, **kw)
        fits = [fit_sed(obs, err, filters, seed=s, **kw) for s in (7, 8)]
    k = nested.names.index("log_mass")
    sigma = 0.5 * (nested.p84[k] - nested.p16[k])
    for f in fits:
        assert f.converged
        assert abs(f.p50[k] - nested.p50[k]) < 0.3 * sigma, (f.p50[k], nested.p50[k])
