"""The adaptive refinement gives, for a fixed seed, the numbers it gave before its numpy
work was made faster (caching of the proposal densities and Jacobians, in-place mixture
densities, sorts done once): the same samples, weights, effective sample sizes, rounds,
evaluations and stopping decisions, to float rounding.

The constants below were computed by the code of ``main`` at commit 6a8af8f, before those
changes (script: the cases of this file). Float quantities are compared to 1e-10 relative,
integers and flags exactly. Cases: two photometric fits of a mock (library start, Laplace
modes, mass-conditional proposal; two and five rounds), a non-photometric correlated
Gaussian, and a narrow one that goes through the annealing stage.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import logistic, multivariate_normal, multivariate_t

from _sps_shared import FILTERS_12 as FILTERS
from _sps_shared import library as shared_library
from _sps_shared import model as shared_model
from pixedfit.fitting import fit_sed
from pixedfit.fitting.adaptive import (
    AdaptiveSettings,
    _Box,
    _logsumexp_rows,
    _Proposal,
    _Workspace,
    run_adaptive,
    weighted_quantiles,
)

RTOL = 1e-10

PINNED = {
    "A": dict(
        ess=609.0027498521715, evaluations=6394, rounds=2, ln_evidence=-17.624422798092468,
        history_ess=[0.0, 19.24539548671144, 609.0027498521715],
        p16=[-0.86692929430914, -0.6336679793278812, -0.4041247715788289,
         3.452058482023631, 9.935916253554483, 1.3109422837961642, 1.3114742006465585,
         1.3278657862411674, -0.8024621356896141, 9.903375878103176,
         10.046852051902286, 10.12916424992252],
        p50=[-0.6463051781513327, 0.21397839714687236, -0.1783816312715683,
         3.585248362276084, 10.006939894006289, 1.4626739306716123,
         1.4614258842297405, 1.460849967330631, -0.5915145060437943,
         9.969864947600389, 10.132337689321679, 10.137343488488382],
        p84=[-0.42822083929770866, 1.020182939843013, 0.031798397196849966,
         3.7122040497539985, 10.071060973565935, 1.6131973493370946,
         1.6113118869367644, 1.5896999789229214, -0.4057397289737159,
         10.029191432972526, 10.207147957879762, 10.146676456421966],
        median_errors={"log_mass": 0.003974648967334838,
                       "log_sfr": 0.0074008944012823276,
                       "log_sfr100": 0.007508180378130079},
        pareto_k=0.1719742064348085),
    "A2": dict(
        ess=3072.330629827226, evaluations=18394, rounds=5, ln_evidence=-17.5634651762386,
        history_ess=[0.0, 19.24539548671144, 609.0027498521715, 1465.6699032359004,
         2231.77665288229, 3072.330629827226],
        p16=[-0.8884390211164063, -0.6118188672347341, -0.40050187016971145,
         3.4591974831519146, 9.936651374184981, 1.3109652705850054, 1.312460673603831,
         1.332739173956458, -0.8033095603534829, 9.90452400651851, 10.047214443239884,
         10.129702418547625],
        p50=[-0.655936939659123, 0.23302200068020754, -0.18275089933555794,
         3.5867467559078765, 10.00716446848533, 1.4643081926939232, 1.464257115842841,
         1.4617999622529756, -0.5932422622644513, 9.969952385962415,
         10.131953573797036, 10.138346945020656],
        p84=[-0.436240356836051, 1.0886912261433241, 0.029407960736957714,
         3.716861188982238, 10.071527905861094, 1.617267040961215, 1.6151360819575864,
         1.5947431160635757, -0.4044075971809678, 10.029828403110665,
         10.208062166945611, 10.14666733993436],
        median_errors={"log_mass": 0.0016809741019783565,
                       "log_sfr": 0.0034609148258262262,
                       "log_sfr100": 0.0029893655863493635},
        pareto_k=0.10129941025642178),
    "B": dict(
        ess=2104.818203287763, evaluations=9000, rounds=3, ln_evidence=-11.511552411757291,
        samples=9000, log_weight_sum=-512051.06917659374,
        history_ess=[1.5261711484085412, 103.43376710069604, 2104.818203287763],
        mean=[0.22982811330865185, 0.04183631950616065, -0.22251679981740163,
         -0.338732343990769, 0.47974737450746047]),
    "C": dict(
        ess=2175.686372149789, evaluations=25000, rounds=3, ln_evidence=-11.495809069066508,
        samples=9000, log_weight_sum=-47842636.82689339,
        history_ess=[1.0, 1.0000000000013145, 1.0000000000013145, 2175.686372149789],
        mean=[0.2260266035039047, 0.041248861720804116, -0.22316523028696353,
         -0.3393496180074061, 0.469773666666668]),
}


class _Target:
    """A log density with the interface of LogProbability (evaluate, ncalls, ndim)."""

    def __init__(self, logpdf, ndim: int, lo: np.ndarray, hi: np.ndarray):
        self.logpdf, self.ndim, self.lo, self.hi = logpdf, ndim, lo, hi
        self.ncalls = 0

    def evaluate(self, theta, extras=False):
        theta = np.atleast_2d(theta)
        inside = np.all((theta >= self.lo) & (theta <= self.hi), axis=1)
        idx = np.flatnonzero(inside)
        self.ncalls += idx.size
        lnp = np.full(theta.shape[0], -np.inf)
        lnp[idx] = self.logpdf(theta[idx])
        out = {"index": idx, "chi2": -2 * lnp[idx], "photometry": None,
               "values": {f"p{j}": theta[idx, j] for j in range(self.ndim)}}
        return lnp, out


@pytest.mark.parametrize("case", ["A", "A2"])
def test_photometric_fit_is_unchanged(case):
    model = shared_model(sfh_form=1, dust_law=1, add_neb_emission=False)
    lib = shared_library(model, 6000, 21)
    p = {k: v[31] for k, v in lib.params.items()}
    p["log_mass"] = 10.0
    flux = model.photometry(p, 0.05, FILTERS)
    err = flux / 20.0
    obs = flux + np.random.default_rng(4).normal(0, err)
    refine = True if case == "A" else AdaptiveSettings(target_ess=3000, seed=5)
    res = fit_sed(obs, err, FILTERS, z=0.05, library=lib, model=model, seed=5, refine=refine)
    ref = PINNED[case]
    assert (res.n_model_evaluations, res.rounds, res.converged) == (
        ref["evaluations"], ref["rounds"], True)
    assert res.ess == pytest.approx(ref["ess"], rel=RTOL)
    assert res.ln_evidence == pytest.approx(ref["ln_evidence"], rel=RTOL)
    np.testing.assert_allclose([h["ess"] for h in res.diagnostics["history"]],
                               ref["history_ess"], rtol=RTOL)
    for q in ("p16", "p50", "p84"):
        np.testing.assert_allclose(getattr(res, q), ref[q], rtol=RTOL, err_msg=q)
    got = res.diagnostics["median_errors"]
    assert got.keys() == ref["median_errors"].keys()
    for k, v in ref["median_errors"].items():
        assert got[k] == pytest.approx(v, rel=RTOL), k
    assert res.diagnostics["pareto_k"] == pytest.approx(ref["pareto_k"], rel=RTOL)


@pytest.mark.parametrize("case", ["B", "C"])
def test_gaussian_run_is_unchanged(case):
    """B: a correlated Gaussian (no photometry: no Laplace start, no mass draw); C: one so
    narrow that the library rounds make no headway and the annealing stage runs."""
    rng = np.random.default_rng(1)
    d = 5
    a = rng.normal(size=(d, d))
    narrow = case == "C"
    cov = a @ a.T * (0.0005 if narrow else 0.02) + np.eye(d) * (1e-4 if narrow else 0.01)
    mu = rng.uniform(-0.5, 0.5, d)
    lo, hi = np.full(d, -5.0), np.full(d, 5.0)
    target = _Target(lambda x: multivariate_normal(mu, cov).logpdf(x), d, lo, hi)
    cand = rng.uniform(lo, hi, (20000, d))
    lw = target.logpdf(cand)
    run = run_adaptive(target, lo, hi, cand, np.exp(lw - lw.max()),
                       [f"p{j}" for j in range(d)], AdaptiveSettings(target_ess=2000, seed=3))
    ref = PINNED[case]
    assert (run.n_evaluations, run.rounds, run.converged, run.theta.shape[0]) == (
        ref["evaluations"], ref["rounds"], True, ref["samples"])
    assert narrow == any("tempering_steps" in h for h in run.history)
    assert run.ess == pytest.approx(ref["ess"], rel=RTOL)
    assert run.ln_evidence == pytest.approx(ref["ln_evidence"], rel=RTOL)
    np.testing.assert_allclose([h["ess"] for h in run.history], ref["history_ess"], rtol=RTOL)
    finite = np.isfinite(run.log_weight)
    assert run.log_weight[finite].sum() == pytest.approx(ref["log_weight_sum"], rel=RTOL)
    np.testing.assert_allclose(run.normalised_weights() @ run.theta, ref["mean"], rtol=RTOL)


# --------------------------------------------------------------------------- kernels
def _reference_logpdf(proposal, y):
    """The proposal density from scipy: each group an equal-weight mixture of multivariate
    Student-t kernels, plus the box prior (a product of standard logistics)."""
    parts = []
    for weight, centres, chol, _, _ in proposal.groups:
        cov = chol @ chol.T
        lk = np.column_stack([multivariate_t(c, cov, df=proposal.df).logpdf(y)
                              for c in centres])
        parts.append(np.log(weight) + logsumexp(lk, axis=1) - np.log(len(centres)))
    parts.append(np.log(proposal.defensive) + logistic.logpdf(y).sum(axis=1))
    return logsumexp(np.column_stack(parts), axis=1)


@pytest.mark.parametrize("d, k", [(2, 3), (5, 40), (9, 128)])
def test_mixture_density_matches_scipy(d, k):
    rng = np.random.default_rng(d * 100 + k)
    a = rng.normal(size=(d, d))
    groups = [(0.45, rng.normal(size=(k, d)), a @ a.T * 0.05 + np.eye(d) * 0.01),
              (0.45, rng.normal(size=(1, d)), np.eye(d) * 0.7),
              (0.1, rng.normal(size=(2, d)), np.diag(rng.uniform(0.1, 2.0, d)))]
    proposal = _Proposal(groups, 5.0, 0.05)
    y = np.asfortranarray(rng.normal(size=(3001, d)) * 2.0)
    ref = _reference_logpdf(proposal, y)
    got = proposal.logpdf(y)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    # the box-prior term given by the caller, and scratch memory reused across calls of
    # other sizes, change nothing
    work = _Workspace()
    proposal.logpdf(rng.normal(size=(5000, d)), work=work)
    np.testing.assert_array_equal(proposal.logpdf(y, _Box.log_logistic(y), work), got)
    np.testing.assert_array_equal(proposal.logpdf(y[:7], work=work), proposal.logpdf(y[:7]))


@pytest.mark.parametrize("ncol", [1, 3, 7, 8, 12])
def test_row_logsumexp_any_layout(ncol):
    rng = np.random.default_rng(ncol)
    a = rng.normal(size=(2000, ncol)) * np.exp(rng.normal(size=(2000, ncol)) * 3)
    a[rng.random(a.shape) < 0.05] = -np.inf
    a[0] = -np.inf
    ref = logsumexp(a, axis=1)
    got = {}
    for order in "CF":
        arr = np.asarray(a, order=order)
        got[order] = _logsumexp_rows(arr.copy(order="K"))
        np.testing.assert_allclose(got[order], ref, rtol=1e-13, atol=1e-14)
        assert got[order][0] == -np.inf
        np.testing.assert_array_equal(_logsumexp_rows(arr.copy(order="K"), overwrite=True),
                                      got[order])
    if ncol < 8:  # what _Proposal.logpdf relies on: either layout, the same bits
        np.testing.assert_array_equal(got["C"], got["F"])


def test_weighted_quantiles_with_ties_follow_the_stable_order():
    """Tied values fall back to the stable sort: the quantiles are those of the stable
    order of the samples (the interpolation between the midpoints of tied weights)."""
    rng = np.random.default_rng(3)
    vals = rng.integers(0, 6, size=(500, 2)).astype(float)
    vals[:, 1] += rng.normal(size=500)  # no ties in this column
    w = rng.random(500)
    q = np.array([0.16, 0.4, 0.5, 0.6, 0.84])
    got = weighted_quantiles(vals, w, q)
    for j in range(2):
        order = np.argsort(vals[:, j], kind="stable")
        x, ww = vals[order, j], w[order]
        cw = np.cumsum(ww)
        np.testing.assert_array_equal(got[:, j], np.interp(q, (cw - 0.5 * ww) / cw[-1], x))
