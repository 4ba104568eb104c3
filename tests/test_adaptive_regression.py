"""The adaptive refinement gives, for a fixed seed, the numbers pinned here: the same
samples, weights, effective sample sizes, rounds, evaluations and stopping decisions. They
guard the numpy bookkeeping (cached proposal densities and Jacobians, in-place mixture
densities, sorts done once) against any change of result.

Pinned on the proposals with Gaussian-mixture kernels fitted by EM (``mixture_components``
16, half of the mixture share fitted in the box coordinates, ``max_components`` 32,
``anneal_after`` 8, rounds of ``batch`` while the ESS is below ``min_adapt_ess``); the
photometric cases on the model through the transmission knots.
Floats are compared to ``RTOL``, integers and flags exactly. Cases: two photometric fits of
a mock (library start, Laplace modes, mass-conditional proposal), a non-photometric
correlated Gaussian, and a narrow one that goes through the annealing stage.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import logistic, multivariate_normal, multivariate_t

from _sps_shared import FILTERS_12 as FILTERS
from _sps_shared import Target
from _sps_shared import library as shared_library
from _sps_shared import model as shared_model
from pixedfit.fitting import fit_sed
from pixedfit.fitting.adaptive import (
    AdaptiveSettings,
    _Box,
    _BoxMixture,
    _logsumexp_rows,
    _Proposal,
    _Workspace,
    run_adaptive,
    weighted_quantiles,
)

#: The refinement magnifies rounding-level differences about 10⁶ times (a Student-t draw far
#: in a tail, through its ppf): another CPU or BLAS can move the floats by ~1e-10, never
#: by 1e-6, while any change of the algorithm moves them by far more.
RTOL = 1e-6

PINNED = {
    "A": dict(
        ess=926.9866793346124, evaluations=5427, rounds=3, ln_evidence=-17.607504230726704,
        history_ess=[0.0, 24.36337874524542, 176.5231317994076, 926.9866793346124],
        p16=[-0.8740580838959281, -0.6752901877346772, -0.41079906267973637, 3.4497541003471808,
            9.93980400706893, 1.2958483671311862, 1.2983829977964623, 1.3220014470205497,
            -0.7940995677761573, 9.906304242539521, 10.049436608585138, 10.129015792409763],
        p50=[-0.6351442296021949, 0.14071479253564467, -0.196976124695907, 3.585595690011402,
            10.007486770222995, 1.4617534281719589, 1.4624358063842524, 1.4595716454812788,
            -0.6003799723481041, 9.970854929260598, 10.131921778718, 10.137839448008267],
        p84=[-0.42993738957277167, 0.994064127349041, 0.02173029745436424, 3.7102207455522187,
            10.070408225503787, 1.6073024644279406, 1.6050859367168164, 1.585302492906852,
            -0.4107416714924976, 10.028964474303951, 10.206095063451192, 10.146518948556654],
        median_errors={"log_mass": 0.002774150098431672, "log_sfr": 0.0064836807991133965,
            "log_sfr100": 0.00557120579132104},
        pareto_k=0.41254664264272894),
    "A2": dict(
        ess=3301.0604520707266, evaluations=10876, rounds=4, ln_evidence=-17.58965471673492,
        history_ess=[0.0, 24.36337874524542, 176.5231317994076, 1308.5258530645542,
            3301.0604520707266],
        p16=[-0.8898027502333973, -0.6238363652037223, -0.40204167533290563, 3.460209328634573,
            9.939235897400165, 1.3138606780025408, 1.3155700235528556, 1.3342555279322978,
            -0.7986082693527552, 9.906726040831128, 10.049956798965624, 10.129504017260652],
        p50=[-0.6536141219073653, 0.24975630776790356, -0.18463831719611945, 3.5860209082818404,
            10.008900060120475, 1.4623616553482557, 1.4617008861442033, 1.4624107790008913,
            -0.594972268961017, 9.972001721016914, 10.132725657467182, 10.13781700734708],
        p84=[-0.43053702638963354, 1.1124890301838206, 0.03888101374477756, 3.7203881617621026,
            10.068743997866946, 1.6176930208156333, 1.6156350568868878, 1.5944057339658153,
            -0.4060678949335068, 10.027593144250025, 10.204398191069364, 10.146719374873058],
        median_errors={"log_mass": 0.001551630186299424, "log_sfr": 0.003238118481880705,
            "log_sfr100": 0.0028216683677100714},
        pareto_k=0.3023889314037678),
    "B": dict(
        ess=2749.7104696847828, evaluations=7000, rounds=4, ln_evidence=-11.536517742941635,
        samples=7000, log_weight_sum=-329046.40599992534,
        history_ess=[3.7897447860714224, 30.093625651181455, 387.2928312957756,
            2749.7104696847828],
        mean=[0.2262571677176154, 0.04158240983447068, -0.22378401567217002, -0.33889523926408616,
            0.47518343070390484]),
    "C": dict(
        ess=2166.8545425500106, evaluations=23000, rounds=4, ln_evidence=-11.534041273229361,
        samples=7000, log_weight_sum=-33726466.50330929,
        history_ess=[1.0, 1.0000698258904521, 1.0000698258904521, 400.0398950899838,
            2166.8545425500106],
        mean=[0.22408143909285483, 0.0411952323551885, -0.22329971067826945, -0.3395976666858494,
            0.47034680529574924]),
}


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
    res = fit_sed(obs, err, FILTERS, z=0.05, library=lib, model=model, seed=5,
        refine=refine)
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
    # k̂ fits the tail of the largest weights: the most sensitive number here
    assert res.diagnostics["pareto_k"] == pytest.approx(ref["pareto_k"], rel=1e3 * RTOL)


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
    target = Target(lambda x: multivariate_normal(mu, cov).logpdf(x), d, lo, hi)
    cand = rng.uniform(lo, hi, (20000, d))
    lw = target.logpdf(cand)
    # C anneals after two rounds without headway (the default waits for eight)
    settings = AdaptiveSettings(target_ess=2000, seed=3, anneal_after=2 if narrow else 8)
    run = run_adaptive(target, lo, hi, cand, np.exp(lw - lw.max()),
                       [f"p{j}" for j in range(d)], settings)
    ref = PINNED[case]
    assert (run.n_evaluations, run.rounds, run.converged, run.theta.shape[0]) == (
        ref["evaluations"], ref["rounds"], True, ref["samples"])
    assert narrow == any("tempering_steps" in h for h in run.history)
    assert run.ess == pytest.approx(ref["ess"], rel=RTOL)
    assert run.ln_evidence == pytest.approx(ref["ln_evidence"], rel=RTOL)
    np.testing.assert_allclose([h["ess"] for h in run.history], ref["history_ess"],
        rtol=RTOL)
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
    if proposal.box_mixture is not None:  # truncated Gaussians in u = σ(y), times du/dy
        share, mix = proposal.box_mixture
        u = 1.0 / (1.0 + np.exp(-y))
        q_u = sum(w / z * multivariate_normal(m, c @ c.T).pdf(u) for w, m, c, z in mix.kernels)
        parts.append(np.log(share) + np.log(q_u) + logistic.logpdf(y).sum(axis=1))
    return logsumexp(np.column_stack(parts), axis=1)


@pytest.mark.parametrize("d, k", [(2, 3), (5, 40), (9, 128)])
@pytest.mark.parametrize("n_single", [0, 6])
@pytest.mark.parametrize("with_box", [False, True])
def test_mixture_density_matches_scipy(d, k, n_single, with_box):
    """Groups of many kernels, of one kernel (evaluated together), the box prior and the
    Gaussian mixture in the box coordinates."""
    rng = np.random.default_rng(d * 100 + k)
    a = rng.normal(size=(d, d))
    groups = [(0.45, rng.normal(size=(k, d)), a @ a.T * 0.05 + np.eye(d) * 0.01),
              (0.45, rng.normal(size=(1, d)), np.eye(d) * 0.7),
              (0.1, rng.normal(size=(2, d)), np.diag(rng.uniform(0.1, 2.0, d)))]
    for _ in range(n_single):  # Gaussian-mixture kernels: one centre, own covariance
        b = rng.normal(size=(d, d))
        groups.append((rng.uniform(0.01, 0.2), rng.normal(size=(1, d)),
                       b @ b.T * 0.1 + np.eye(d) * 0.05))
    box = None
    if with_box:
        kernels = [(0.5, rng.uniform(0.1, 0.9, d), np.eye(d) * 0.02),
                   (0.5, rng.uniform(0.0, 0.3, d), np.eye(d) * 0.01 + 0.002)]
        box = (0.3, _BoxMixture(kernels, rng))
    proposal = _Proposal(groups, 5.0, 0.05, box)
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
    if ncol == 1:  # returned as it is: the bits the max-shifted sum gives for one column
        col = a[:, 0]
        m = np.where(np.isfinite(col), col, 0.0)
        with np.errstate(divide="ignore"):
            summed = np.log(np.exp(col - m)) + m
        np.testing.assert_array_equal(got["C"], summed)
        np.testing.assert_array_equal(got["C"], col)


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
