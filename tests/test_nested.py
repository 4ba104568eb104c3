"""Nested sampling (nautilus): recovery, reproducibility, evidence, model comparison, CLI."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import logsumexp

from pixedfit.fitting import (
    Gaussian,
    McmcSettings,
    MCMCShortChainWarning,
    NestedSettings,
    Parallelism,
    PriorSet,
    compare_models,
    fit_catalog,
    fit_sed,
)
from pixedfit.fitting.comparison import ModelComparison
from pixedfit.fitting.nested import (
    NestedSamplingWarning,
    _nautilus_threads,
    log_mass_box,
    log_prior_normalisation,
)
from pixedfit.fitting.posterior import LogProbability
from pixedfit.library import generate_library
from pixedfit.sps import SEDModel

FILTERS = ["galex_fuv", "galex_nuv", "sdss_u", "sdss_g", "sdss_r", "sdss_i", "sdss_z",
           "2mass_j", "2mass_h", "2mass_k", "wise_w1", "wise_w2"]
RANGES = {"log_age": (-1.0, 1.1), "logzsol": (-1.0, 0.2), "dust2": (0.0, 2.0)}
Z = 0.05
KEYS = ("ess", "n_model_evaluations", "ln_evidence_err", "converged")
ONE = Parallelism(threads=1)


@pytest.fixture(scope="module")
def model(fit_model):
    return fit_model


@pytest.fixture(scope="module")
def library(fit_library):
    return fit_library(400, 11, RANGES)


def _mock(model, params, snr=20.0, seed=0, z=Z):
    flux = model.photometry(params, z, FILTERS)
    err = flux / snr
    return flux + np.random.default_rng(seed).normal(0, err), err


def _truth(library, index, log_mass=10.0):
    p = {k: float(v[index]) for k, v in library.params.items()}
    p["log_mass"] = log_mass
    return p


@pytest.fixture(scope="module")
def mock(model, library):
    p = _truth(library, 123)
    obs, err = _mock(model, p)
    return obs, err, p


@pytest.fixture(scope="module")
def fit_a(model, library, mock):
    obs, err, _ = mock
    return fit_sed(obs, err, FILTERS, z=Z, library=library, model=model, method="nested",
                   seed=1, parallel=ONE)


def test_recovery_and_diagnostics(fit_a, mock):
    _, _, p = mock
    res = fit_a
    d = res.diagnostics
    assert res.method == "nested"
    assert all(k in d for k in KEYS)
    assert d["converged"] is True and d["ess"] >= 1000
    assert 0 < d["n_model_evaluations"] <= 100_000
    assert 0 < d["ln_evidence_err"] < 0.1
    assert math.isfinite(res.ln_evidence)
    s = res.summary
    for name in ("logzsol", "log_tau", "log_age", "dust2", "log_mass"):
        sig = 0.5 * (s[name]["p84"] - s[name]["p16"])
        assert abs(s[name]["p50"] - p[name]) < 3 * sig + 0.02, name
    assert s["log_mass"]["std"] < 0.15
    # equal-weight samples inside the box; derived quantities present
    for name, (a, b) in d["box"].items():
        col = res.samples[:, res.names.index(name)]
        assert col.min() >= a and col.max() <= b
    assert res.samples.shape[0] == NestedSettings().max_derived_samples
    np.testing.assert_allclose(res.p50, np.percentile(res.samples, 50, axis=0), atol=1e-12)
    assert "log_sfr" in res.names and res.photo_pct.shape == (3, len(FILTERS))
    assert res.sed_pct["total"].shape == (3, res.sed_wave.size)
    # the mass box comes from the data: νL_ν,max and log(M/L) in (-4, 4)
    lo, hi = d["box"]["log_mass"]
    assert hi - lo == pytest.approx(8.0)


@pytest.mark.slow
def test_same_seed_identical_and_seeds_agree(model, library, mock, fit_a):
    obs, err, _ = mock
    again = fit_sed(obs, err, FILTERS, z=Z, library=library, model=model, method="nested",
                    seed=1, parallel=ONE)
    np.testing.assert_array_equal(again.samples, fit_a.samples)
    np.testing.assert_array_equal(again.p50, fit_a.p50)
    assert again.ln_evidence == fit_a.ln_evidence
    assert again.diagnostics["ess"] == fit_a.diagnostics["ess"]
    other = fit_sed(obs, err, FILTERS, z=Z, library=library, model=model, method="nested",
                    seed=2, parallel=ONE)
    assert other.ln_evidence != fit_a.ln_evidence
    assert abs(other.ln_evidence - fit_a.ln_evidence) < 0.1
    for name in ("log_mass", "log_age", "dust2"):
        k = fit_a.names.index(name)
        assert abs(other.p50[k] - fit_a.p50[k]) < 0.15 * fit_a.std[k] + 0.01, name


@pytest.mark.slow
def test_evidence_against_independent_importance_sampling(model, mock, fit_a):
    """ln Z of nautilus vs plain importance sampling from a kernel-density proposal."""
    obs, _, _ = mock
    d = fit_a.diagnostics
    free = d["sampled"]
    lo = np.array([d["box"][n][0] for n in free])
    hi = np.array([d["box"][n][1] for n in free])
    # the errors as fitted (statistical and calibration terms: fitting.errors)
    lnp = LogProbability(model, free, lo, hi, d["fixed"], PriorSet(), Z, FILTERS, obs,
                         fit_a.obs_flux_err, threads=1)
    rng = np.random.default_rng(3)
    samp = fit_a.samples[:, [fit_a.names.index(n) for n in free]]
    # 1000 kernel centres: the posterior has a secondary ridge (log τ ≈ −0.2 beside the
    # main peak at ≈ 1), which 400 centres with a global kernel shape cover too thinly (one
    # draw there then carries 15 % of the weight)
    nc = 1000
    centres = samp[rng.choice(samp.shape[0], nc, replace=False)]
    ndim = len(free)
    h = (4 / (ndim + 2)) ** (1 / (ndim + 4)) * nc ** (-1 / (ndim + 4))
    kernel = stats.multivariate_normal(np.zeros(ndim), np.cov(samp.T) * h * h)
    wide = stats.multivariate_t(samp.mean(axis=0), np.cov(samp.T) * 4, df=3, seed=rng)
    n = 20000
    nwide = n // 10
    x = np.vstack([centres[rng.integers(0, nc, n - nwide)] + kernel.rvs(n - nwide, rng),
                   wide.rvs(nwide)])
    log_kde = logsumexp(np.stack([kernel.logpdf(x - c) for c in centres]), axis=0) \
        - math.log(nc)
    log_q = np.logaddexp(math.log(0.9) + log_kde, math.log(0.1) + wide.logpdf(x))
    logw = lnp(x) - np.sum(np.log(hi - lo)) - log_q
    ln_z = logsumexp(logw) - math.log(n)
    w = np.exp(logw - logw.max())
    err_is = math.sqrt(np.sum((w / w.sum()) ** 2))  # ~ 1/sqrt(ESS)
    assert err_is < 0.05
    assert abs(ln_z - fit_a.ln_evidence) < 0.1


@pytest.mark.slow
def test_evidence_scales_with_the_prior_volume(model, library, mock, fit_a):
    """Widening the (data-derived) mass box by 25 % lowers ln Z by ln 1.25 exactly."""
    obs, err, _ = mock
    wide = fit_sed(obs, err, FILTERS, z=Z, library=library, model=model,
                   method=NestedSettings(log_mass_to_light=(-5.0, 5.0)), seed=1, parallel=ONE)
    assert wide.ln_evidence - fit_a.ln_evidence == pytest.approx(-math.log(1.25), abs=0.1)


def test_prior_normalisation_matches_quadrature(model):
    free = ["logzsol", "log_age", "dust2", "log_mass", "z"]
    lo = np.array([-1.0, -1.0, 0.0, 8.0, 0.01])
    hi = np.array([0.2, 1.1, 2.0, 12.0, 3.0])
    priors = PriorSet([Gaussian("dust2", 0.5, 0.3), Gaussian("log_tau", 0.2, 0.5)])
    lnp = LogProbability(model, free, lo, hi, {"log_tau": 0.4}, priors, None, FILTERS,
                         np.ones(12), np.ones(12), threads=1)
    got, ok = log_prior_normalisation(lnp)
    assert ok
    # dust2: mean over the box of N(0.5, 0.3); log_tau fixed: its density at 0.4;
    # (z, log_age): fraction of the box younger than the universe
    from pixedfit.cosmology import age_of_universe

    g = integrate.quad(lambda x: stats.norm.pdf(x, 0.5, 0.3), 0, 2)[0] / 2.0
    fixed = stats.norm.logpdf(0.4, 0.2, 0.5)
    frac = integrate.quad(lambda zz: (np.clip(np.log10(age_of_universe(zz)), -1.0, 1.1) + 1.0)
                          / 2.1, 0.01, 3.0, limit=200)[0] / 2.99
    assert got == pytest.approx(math.log(g) + fixed + math.log(frac), abs=2e-3)
    # a prior on a derived quantity cannot be normalised without models
    lnp2 = LogProbability(model, free, lo, hi, {}, PriorSet([Gaussian("log_sfr", 0, 1)]),
                          None, FILTERS, np.ones(12), np.ones(12), threads=1)
    assert log_prior_normalisation(lnp2)[1] is False


def test_log_mass_box_from_the_data():
    from pixedfit.cosmology import luminosity_distance
    from pixedfit.filters import cwave_filters
    from pixedfit.units import L_SUN_CGS, MPC_CM

    obs = np.array([1e-17, 3e-17, -1e-18])
    err = np.full(3, 1e-18)
    filt = ["sdss_g", "sdss_r", "2mass_k"]
    lo, hi = log_mass_box(obs, err, filt, 0.1, 0.1, (-4.0, 4.0))
    lam = cwave_filters(filt)
    ref = np.log10(4 * np.pi * (luminosity_distance(0.1) * MPC_CM) ** 2
                   * np.max(lam[:2] * obs[:2]) / L_SUN_CGS)
    assert (lo, hi) == pytest.approx((ref - 4.0, ref + 4.0))
    lo2, hi2 = log_mass_box(obs, err, filt, 0.05, 0.5, (-4.0, 4.0))
    assert lo2 < lo and hi2 > hi
    with pytest.raises(ValueError, match="flux"):
        log_mass_box(np.full(3, np.nan), err, filt, 0.1, 0.1, (-4.0, 4.0))


@pytest.mark.parametrize(("field", "value"), [
    ("n_live", 10), ("target_ess", 0), ("max_calls", 5), ("f_live", 1.5), ("seed", -1),
    ("log_mass_to_light", (2.0, 1.0)), ("hidden_layers", ()), ("n_update", 0),
    ("discard_exploration", "yes"), ("n_networks", 1.5), ("train_patience", 0),
])
def test_bad_settings_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        NestedSettings(**{field: value})


def test_bad_settings_through_the_drivers(model, library, mock):
    obs, err, _ = mock
    with pytest.raises(ValueError, match="bogus"):
        fit_sed(obs, err, FILTERS, z=Z, library=library, model=model,
                method=NestedSettings.from_any({"bogus": 1}))
    with pytest.raises(ValueError, match="n_live"):
        fit_catalog(obs[None], err[None], FILTERS, [Z], library=library, model=model,
                    method=NestedSettings.from_any({"n_live": 3}))
    with pytest.raises(ValueError, match="method"):
        fit_sed(obs, err, FILTERS, z=Z, library=library, model=model, method="nest")
    with pytest.raises(TypeError, match="method"):  # settings, not a mapping
        fit_sed(obs, err, FILTERS, z=Z, library=library, model=model, method={"n_live": 400})


def test_model_comparison_table():
    cmp = ModelComparison.from_evidences(["a", "b", "c"], [-10.0, -12.5, -10.2],
                                         [0.03, 0.04, 0.05])
    assert cmp.best == "a"
    np.testing.assert_allclose(cmp.ln_bayes, [0.0, -2.5, -0.2])
    np.testing.assert_allclose(cmp.ln_bayes_err, [0.0, 0.05, math.hypot(0.03, 0.05)])
    text = cmp.table()
    assert "<- best" in text.splitlines()[1] and len(text.splitlines()) == 4
    # Occam: a simpler model within the threshold is preferred
    from types import SimpleNamespace

    res = {n: SimpleNamespace(diagnostics={"sampled": ["p"] * k})
           for n, k in (("a", 7), ("b", 5), ("c", 6))}
    cmp = ModelComparison.from_evidences(["a", "b", "c"], [-10.0, -10.8, -10.5],
                                         [0.03] * 3, res)
    assert cmp.best == "a" and cmp.preferred() == "b" and cmp.preferred(0.6) == "c"
    assert cmp.preferred(0.0) == "a"
    with pytest.raises(ValueError, match="threshold"):
        cmp.preferred(-1)


# --------------------------------------------------------------------------- AGN or not
def _agn_setup(shared_data, nlib=300):
    agn_dir = shared_data / "agn_torus_nenkova08"
    plain = SEDModel(sfh_form=1, dust_law=1, add_neb_emission=False, threads=1)
    agn = SEDModel(sfh_form=1, dust_law=1, add_neb_emission=False, add_agn=True,
                   agn_templates=agn_dir, threads=1)
    libs = {"stars": generate_library(plain, nlib, seed=5, ranges=RANGES),
            "stars+agn": generate_library(agn, nlib, seed=5, ranges=RANGES)}
    return {"stars": plain, "stars+agn": agn}, libs


def _agn_mocks(models, n, seed):
    """n mocks without and n with a detectable torus (W2 raised by ≳ 30 %)."""
    rng = np.random.default_rng(seed)
    out = []
    for with_agn in (False, True):
        for _ in range(n):
            p = {"logzsol": rng.uniform(-0.8, 0.1), "log_tau": rng.uniform(-0.5, 1.0),
                 "log_age": rng.uniform(0.0, 1.0), "dust2": rng.uniform(0.05, 1.0),
                 "log_mass": 10.0}
            if with_agn:
                p.update(log_fagn=rng.uniform(-1.2, -0.5), log_tauagn=rng.uniform(1.0, 2.0))
            m = models["stars+agn" if with_agn else "stars"]
            obs, err = _mock(m, p, seed=int(rng.integers(1 << 30)))
            out.append((with_agn, obs, err))
    return out


def _success(shared_data, n, seed):
    models, libs = _agn_setup(shared_data)
    good = []
    lnb = []
    for k, (with_agn, obs, err) in enumerate(_agn_mocks(models, n, seed)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NestedSamplingWarning)
            cmp = compare_models(obs, err, FILTERS, Z, libraries=libs, models=models, seed=k,
                                 parallel=ONE)
        want = "stars+agn" if with_agn else "stars"
        good.append(cmp.preferred() == want)
        lnb.append(cmp.ln_evidence[1] - cmp.ln_evidence[0])
    return np.array(good), np.array(lnb)


@pytest.mark.slow
def test_bayes_factor_picks_the_model(shared_data):
    good, lnb = _success(shared_data, 1, seed=0)
    assert good.all(), lnb
    assert lnb[1] > 5.0  # a detectable torus is decisive


@pytest.mark.slow
def test_bayes_factor_success_rate(shared_data):
    good, lnb = _success(shared_data, 20, seed=1)
    n = good.size // 2
    assert good[:n].mean() >= 0.9, lnb[:n]
    assert good[n:].mean() >= 0.9, lnb[n:]


@pytest.mark.slow
def test_nested_and_mcmc_medians_agree(model, library):
    for k, index in enumerate((7, 55, 230)):
        p = _truth(library, index)
        obs, err = _mock(model, p, seed=k)
        nest = fit_sed(obs, err, FILTERS, z=Z, library=library, model=model,
                       method=NestedSettings(target_ess=3000), seed=k, parallel=ONE)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCMCShortChainWarning)
            mc = fit_sed(obs, err, FILTERS, z=Z, library=library, model=model,
                         method=McmcSettings(nwalkers=40, nsteps=3000, nsteps_cut=1000, thin=5),
                         seed=k, parallel=ONE,
                         priors={"log_mass": (nest.diagnostics["box"]["log_mass"][0],
                                              nest.diagnostics["box"]["log_mass"][1])})
        for name in ("logzsol", "log_age", "dust2", "log_mass", "log_sfr", "log_mw_age"):
            i = nest.names.index(name)
            j = mc.names.index(name)
            sig = 0.5 * (nest.p84[i] - nest.p16[i])
            assert abs(nest.p50[i] - mc.p50[j]) < 0.3 * sig, (index, name)


# --------------------------------------------------------------------------- CLI, config
@pytest.mark.slow
def test_cli_method_nested_and_compare(model, library, mock, tmp_path, capsys):
    from astropy.table import Table

    from pixedfit.cli import main

    obs, err, _ = mock
    cols = {"id": ["a"], "z": [Z]}
    for f, v, e in zip(FILTERS, obs, err, strict=True):
        cols[f], cols[f"{f}_err"] = [v], [e]
    Table(cols).write(tmp_path / "cat.ecsv")
    library.write(tmp_path / "lib.h5")
    other = generate_library(SEDModel(sfh_form=0, dust_law=1, add_neb_emission=False), 300,
                             seed=3, ranges=RANGES)
    other.write(tmp_path / "tau.h5")
    rc = main(["fit", str(tmp_path / "cat.ecsv"), "--library", str(tmp_path / "lib.h5"),
               "--filters", ",".join(FILTERS), "--out", str(tmp_path / "out.ecsv"),
               "--method", "nested", "--nlive", "300", "--target-ess", "500", "--quiet",
               "--threads", "1", "--compare", str(tmp_path / "tau.h5")])
    assert rc == 0
    out = Table.read(tmp_path / "out.ecsv")
    assert {"ln_evidence", "ln_evidence_err", "ess", "converged", "ln_evidence_tau",
            "ln_bayes_tau", "best_model"} <= set(out.colnames)
    assert out["best_model"][0] in ("lib", "tau")
    printed = capsys.readouterr().out
    assert "ln Z" in printed and "tau" in printed


def test_pipeline_config_accepts_nested(tmp_path):
    from pixedfit.pipeline import load_config

    base = {"images": {"fluxmap": str(tmp_path / "f.fits")}}
    cfg = load_config(config={**base, "fitting": {"method": "nested",
                                                  "nested": {"n_live": 400}}})
    assert cfg["fitting"]["method"] == "nested"
    with pytest.raises(ValueError, match=r"fitting\.method"):
        load_config(config={**base, "fitting": {"method": "emcee"}})
    with pytest.raises(ValueError, match="n_live"):
        load_config(config={**base, "fitting": {"method": "nested", "nested": {"n_live": 1}}})


def test_nautilus_thread_limits_use_the_cached_controller():
    """Inside a fit nautilus limits thread pools through threadpoolctl's cached controller
    (a new controller per shell re-read every loaded library: 15 % of the CPU time); the
    limits are the same, the block is re-entrant, and nautilus is left as it was."""
    import nautilus.bounds.basic
    import nautilus.sampler
    import threadpoolctl

    originals = (nautilus.sampler.threadpool_limits, nautilus.bounds.basic.threadpool_limits)
    with _nautilus_threads():
        patched = nautilus.sampler.threadpool_limits
        assert patched is not originals[0]
        assert nautilus.bounds.basic.threadpool_limits is patched
        with _nautilus_threads():  # re-entrant
            assert nautilus.sampler.threadpool_limits is patched
        assert nautilus.sampler.threadpool_limits is patched
        before = [lib["num_threads"] for lib in threadpoolctl.threadpool_info()]
        with patched(limits=1):
            inside = threadpoolctl.threadpool_info()
            assert all(lib["num_threads"] == 1 for lib in inside), inside
        assert [lib["num_threads"] for lib in threadpoolctl.threadpool_info()] == before
    assert (nautilus.sampler.threadpool_limits,
            nautilus.bounds.basic.threadpool_limits) == originals


def test_nested_fits_run_blas_on_one_thread():
    """Within a fit BLAS pools are limited to one thread (a fit is one thread unless
    ``threads`` is given; OpenMP of the model is not a BLAS pool and is left alone)."""
    import threadpoolctl

    before = threadpoolctl.threadpool_info()
    with _nautilus_threads():
        inside = threadpoolctl.threadpool_info()
        assert all(lib["num_threads"] == 1 for lib in inside if lib["user_api"] == "blas")
        assert ([lib["num_threads"] for lib in inside if lib["user_api"] != "blas"]
                == [lib["num_threads"] for lib in before if lib["user_api"] != "blas"])
        with _nautilus_threads():  # a second fit at the same time (drivers' threads)
            pass
        assert threadpoolctl.threadpool_info() == inside  # still limited for the first
    assert threadpoolctl.threadpool_info() == before
