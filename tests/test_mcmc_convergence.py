"""MCMC stopping on the autocorrelation criterion, refined start, moves and resume (issue 13)."""

from __future__ import annotations

import warnings

import emcee
import numpy as np
import pytest

from pixedfit.fitting import MCMCShortChainWarning, Parallelism, RdspsSettings, fit_sed
from pixedfit.fitting.mcmc import (
    MOVES,
    McmcSettings,
    chain_autocorr,
    check_chain,
    make_moves,
    run_mcmc,
)

FILTERS = ["galex_fuv", "galex_nuv", "sdss_u", "sdss_g", "sdss_r", "sdss_i", "sdss_z",
           "2mass_j", "2mass_h", "2mass_k", "wise_w1", "wise_w2"]
RANGES = {"log_age": (-1.0, 1.1), "logzsol": (-1.0, 0.2), "dust2": (0.0, 2.0)}

MEAN = np.array([1.0, -2.0, 0.5])
COV = np.array([[1.0, 0.8, 0.2], [0.8, 1.0, 0.1], [0.2, 0.1, 0.5]])


class Gaussian3D:
    """Vectorised log density of a correlated 3-D Gaussian (the analytic test target);
    raises KeyboardInterrupt at call ``kill_at`` (a simulated kill)."""

    ndim = 3

    def __init__(self, kill_at: int | None = None):
        self.icov = np.linalg.inv(COV)
        self.calls = 0
        self.rows = 0
        self.kill_at = kill_at

    def __call__(self, theta):
        self.calls += 1
        if self.kill_at is not None and self.calls >= self.kill_at:
            raise KeyboardInterrupt("simulated kill")
        d = np.atleast_2d(theta) - MEAN
        self.rows += d.shape[0]
        return -0.5 * np.einsum("ij,jk,ik->i", d, self.icov, d)


def _gauss_start(nwalkers, seed=0):
    return np.random.default_rng(seed).multivariate_normal(MEAN, COV, nwalkers)


def test_autocorr_stop_on_a_gaussian_matches_the_analytic_moments():
    settings = McmcSettings(nwalkers=16, seed=2)
    run = run_mcmc(Gaussian3D(), _gauss_start(16), settings)
    tau = run["autocorr"]
    n_after = run["nsteps"] - run["burn"]
    # stopped early, by the criterion: 50 tau after burn-in, tau stable to 2 %, at the first
    # check where both held (recomputed from the chain's prefixes; how many steps that takes
    # depends on the trajectory, i.e. also on the platform's rounding: 1.7-3.2 x 50 tau
    # over seeds 0-19 here)
    assert run["converged"] and run["nsteps"] < settings.max_steps
    assert n_after >= 50 * tau.max()
    prev = None
    for n in range(settings.check_every, run["nsteps"] + 1, settings.check_every):
        tau_n, burn_n = chain_autocorr(run["chain"][:n], settings)
        met = (prev is not None and bool(np.all(np.abs(tau_n - prev) < 0.02 * tau_n))
               and n - burn_n >= 50 * tau_n.max())
        assert met == (n == run["nsteps"]), n
        prev = tau_n
    assert run["burn"] >= 2 * np.max(tau) * 0.8 and run["thin"] >= 1
    assert run["segments"] == run["nsteps"] // settings.check_every
    assert len(run["tau_history"]) == run["segments"]
    h = run["tau_history"]
    assert abs(h[-1] - h[-2]) < 0.02 * h[-1]
    s = run["samples"]
    ess = 16 * n_after / tau.max()
    sd = np.sqrt(np.diag(COV))
    # the mean within 4 Monte-Carlo standard errors, the covariance within 15 %
    assert np.all(np.abs(s.mean(axis=0) - MEAN) < 4 * sd / np.sqrt(ess))
    np.testing.assert_allclose(np.cov(s.T), COV, atol=0.15 * COV.max())
    # the same seed gives the same chain
    again = run_mcmc(Gaussian3D(), _gauss_start(16), settings)
    np.testing.assert_array_equal(again["chain"], run["chain"])


def test_fixed_count_is_kept_when_nsteps_is_given():
    settings = McmcSettings(nwalkers=16, nsteps=137, nsteps_cut=20, thin=3, seed=2)
    target = Gaussian3D()
    run = run_mcmc(target, _gauss_start(16), settings)
    assert run["nsteps"] == 137 and run["chain"].shape == (137, 16, 3)
    assert run["burn"] == 20 and run["thin"] == 3 and run["segments"] == 1
    assert run["samples"].shape == (len(range(20, 137, 3)) * 16, 3)
    assert target.rows == 16 * 137 + 16  # one evaluation per walker and step, + the start


def test_max_steps_reached_is_not_converged_and_warns():
    settings = McmcSettings(nwalkers=16, seed=2, max_steps=150, check_every=50)
    run = run_mcmc(Gaussian3D(), _gauss_start(16), settings)
    assert not run["converged"] and run["nsteps"] == 150 and run["segments"] == 3
    with pytest.warns(MCMCShortChainWarning, match="max_steps"):
        notes = check_chain(run, settings, ["a", "b", "c"])
    assert any("too short" in n for n in notes)


@pytest.mark.slow
def test_resume_after_a_kill_gives_the_identical_chain(tmp_path):
    """A run interrupted mid-chain resumes from its HDF5 backend; the decisions of the
    stopping rule are replayed on the stored steps, so the chain and samples equal those of
    an uninterrupted run."""
    settings = McmcSettings(nwalkers=16, seed=4, check_every=40)
    full = run_mcmc(Gaussian3D(), _gauss_start(16), settings)  # in memory, uninterrupted
    assert full["converged"] and full["nsteps"] > 200
    killed = McmcSettings(**{**settings.__dict__, "backend": tmp_path / "part.h5"})
    with pytest.raises(KeyboardInterrupt):
        run_mcmc(Gaussian3D(kill_at=2 * 173), _gauss_start(16), killed)
    stored = int(emcee.backends.HDFBackend(tmp_path / "part.h5", name="mcmc",
                                           read_only=True).iteration)
    assert 100 < stored < 200  # killed inside the 5th segment

    def no_start():
        raise AssertionError("a resumed run must not draw new starting positions")

    resumed = run_mcmc(Gaussian3D(), no_start, killed)
    assert resumed["resumed_at"] == stored
    np.testing.assert_array_equal(resumed["chain"], full["chain"])
    np.testing.assert_array_equal(resumed["samples"], full["samples"])
    assert resumed["nsteps"] == full["nsteps"] and resumed["converged"]
    # a finished chain is reused as it is
    again = run_mcmc(Gaussian3D(kill_at=1), no_start, killed)
    np.testing.assert_array_equal(again["samples"], full["samples"])


@pytest.mark.parametrize("name", MOVES)
def test_move_sets(name):
    moves = make_moves(name)
    assert abs(sum(p for _, p in moves) - 1) < 1e-12
    run = run_mcmc(Gaussian3D(), _gauss_start(16),
                   McmcSettings(nwalkers=16, seed=1, nsteps=50, moves=name))
    assert np.isfinite(run["chain"]).all()


@pytest.mark.parametrize(("key", "value"), [
    ("tau_factor", 0.5), ("tau_rtol", 0.0), ("tau_rtol", 1.5), ("check_every", 0),
    ("max_steps", 0), ("burn_tau", -1.0), ("moves", "gibbs"), ("start", "best"),
    ("nsteps_cut", 20000), ("nsteps", 0),
])
def test_bad_settings_name_the_setting(key, value):
    with pytest.raises(ValueError, match=key):
        McmcSettings(**{key: value}).check()


# ------------------------------------------------------------------ fits of mock SEDs
@pytest.fixture(scope="module")
def model(fit_model):
    return fit_model


@pytest.fixture(scope="module")
def library(fit_library):
    return fit_library(3000, 11, RANGES)


def _mock(model, library, index, z, snr=20.0, seed=0):
    p = {k: float(v[index]) for k, v in library.params.items()}
    p["log_mass"] = 10.0
    flux = model.photometry(p, z, FILTERS)
    err = flux / snr
    return flux + np.random.default_rng(seed).normal(0, err), err, p


def test_bad_mcmc_settings_name_the_setting(model, library):
    obs, err, _ = _mock(model, library, 5, 0.1)
    kw = {"flux": obs, "flux_err": err, "filters": FILTERS, "z": 0.1, "library": library,
          "model": model, "parallel": Parallelism(threads=1)}
    with pytest.raises(TypeError, match="bogus"):
        fit_sed(**kw, method=McmcSettings(bogus=1))
    with pytest.raises(ValueError, match="tau_rtol"):
        fit_sed(**kw, method=McmcSettings(tau_rtol=2.0))
    with pytest.raises(TypeError, match="method"):  # settings, not a list of pairs
        fit_sed(**kw, method=[("moves", "de")])
    with pytest.raises(TypeError, match="refine"):
        fit_sed(**kw, method=McmcSettings(refine="yes"))
    with pytest.raises(TypeError, match="refine"):
        fit_sed(**kw, method=RdspsSettings(refine="yes"))


@pytest.mark.slow
def test_default_mcmc_converges_on_a_mock(model, library):
    """Default settings: walkers from the refined posterior, the chain stops on the
    autocorrelation criterion, and the truth is inside the credible interval."""
    obs, err, p = _mock(model, library, 123, 0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MCMCShortChainWarning)
        res = fit_sed(obs, err, FILTERS, z=0.05, library=library, model=model,
                      method="mcmc", seed=1, parallel=Parallelism(threads=1))
    d = res.diagnostics
    tau = np.array(d["autocorr"])
    assert res.converged is True and d["start"] == "refined" and d["stop"] == "autocorr"
    assert d["nsteps"] - d["nsteps_cut"] >= 50 * tau.max() and d["nsteps"] < 20000
    assert res.rounds == len(d["tau_history"]) == d["nsteps"] // 100
    assert res.ess == pytest.approx(d["nwalkers"] * (d["nsteps"] - d["nsteps_cut"]) / tau.max())
    assert res.ess > 1000
    assert res.n_model_evaluations >= d["start_evaluations"] + d["nwalkers"] * d["nsteps"] // 2
    s = res.summary
    for name in ("logzsol", "log_age", "dust2", "log_mass"):
        half = 0.5 * (s[name]["p84"] - s[name]["p16"])
        assert abs(s[name]["p50"] - p[name]) < 2.5 * half, name


def test_library_start_and_short_fit_warns(model, library):
    """start="library" starts from the library models; a chain cut at max_steps is
    flagged."""
    obs, err, _ = _mock(model, library, 40, 0.05)
    with pytest.warns(MCMCShortChainWarning, match="max_steps"):
        res = fit_sed(obs, err, FILTERS, z=0.05, library=library, model=model,
                      method=McmcSettings(nwalkers=16, start="library", max_steps=200,
                                          check_every=100),
                      seed=1, parallel=Parallelism(threads=1))
    d = res.diagnostics
    assert res.converged is False and d["start"] == "library" and d["nsteps"] == 200
    assert res.rounds == 2 and "start_evaluations" not in d
    assert res.n_model_evaluations <= 16 * 200 + 4 * 16
