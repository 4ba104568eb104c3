"""The option objects of the fit drivers and the FitResults container (no fits run here)."""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest
from astropy.cosmology import Planck18

from pixedfit.cosmology import CosmologyParams, age_of_universe
from pixedfit.fitting import (
    AdaptiveSettings,
    ErrorModel,
    FitResult,
    FitResults,
    McmcSettings,
    NestedSettings,
    Parallelism,
    RdspsSettings,
    SpectralOptions,
    fit_binmap,
    fit_catalog,
    fit_sed,
)
from pixedfit.fitting.options import sampler_settings


def _result(mass: float, n_used: int = 10, converged: bool | None = True) -> FitResult:
    one = np.array([mass])
    return FitResult(method="rdsps", names=("log_mass",), mean=one, std=one * 0, p16=one,
                     p50=one, p84=one, best=one, filters=("sdss_r",), obs_flux=np.ones(1),
                     obs_flux_err=np.ones(1), bfit_photo=np.ones(1), n_used=n_used,
                     converged=converged)


def test_sampler_settings_by_name_give_the_defaults():
    assert sampler_settings("rdsps") == ("rdsps", RdspsSettings())
    assert sampler_settings("mcmc") == ("mcmc", McmcSettings())
    assert sampler_settings("nested") == ("nested", NestedSettings())


def test_sampler_settings_keep_an_instance_and_name_its_method():
    mcmc = McmcSettings(nwalkers=40, start="library")
    assert sampler_settings(mcmc) == ("mcmc", mcmc)
    rdsps = RdspsSettings(refine=AdaptiveSettings(target_ess=500))
    assert sampler_settings(rdsps) == ("rdsps", rdsps)


@pytest.mark.parametrize(("method", "error", "words"), [
    ("emcee", ValueError, "method"),
    (3, TypeError, "method"),
    (AdaptiveSettings(), TypeError, "method"),
    (RdspsSettings(refine="yes"), TypeError, "refine"),  # type: ignore[arg-type]
    (McmcSettings(nwalkers=14.5), TypeError, "nwalkers"),  # type: ignore[arg-type]
    (McmcSettings(nsteps=10, nsteps_cut=10), ValueError, "nsteps_cut"),
    (RdspsSettings(refine=AdaptiveSettings(target_ess=-1)), ValueError, "target_ess"),
])
def test_bad_sampler_settings_fail_naming_the_setting(method, error, words):
    with pytest.raises(error, match=words):
        sampler_settings(method)


def test_rdsps_settings_put_the_seed_into_the_refinement():
    assert RdspsSettings(refine=False).adaptive(5) is None
    assert RdspsSettings().adaptive(5) == AdaptiveSettings(seed=5)
    custom = AdaptiveSettings(target_ess=800, seed=1)
    assert RdspsSettings(refine=custom).adaptive(9) == dataclasses.replace(custom, seed=9)


def test_option_objects_are_frozen():
    for obj in (ErrorModel(), SpectralOptions(), RdspsSettings(), CosmologyParams(),
                Parallelism()):
        field = dataclasses.fields(obj)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, field, None)


def test_cosmology_params_from_any():
    default = CosmologyParams.from_any(None)
    assert default == CosmologyParams(None, 70.0, 0.3)
    assert default.astropy().H0.value == 70.0
    assert CosmologyParams.from_any("Planck18").astropy() is Planck18
    assert CosmologyParams.from_any(Planck18).astropy() is Planck18
    given = CosmologyParams(None, 67.0, 0.32)
    assert CosmologyParams.from_any(given) is given
    assert np.isclose(age_of_universe(0.0, None, 67.0, 0.32),
                      given.astropy().age(0).value)


@pytest.mark.parametrize(("value", "error", "words"), [
    ("Planck99", ValueError, "Planck99"),
    (CosmologyParams(None, -70.0, 0.3), ValueError, "H0"),
    (CosmologyParams(None, 70.0, 1.5), ValueError, "Om0"),
    (2.5, TypeError, "cosmo"),
])
def test_bad_cosmology_fails_naming_it(value, error, words):
    with pytest.raises(error, match=words):
        CosmologyParams.from_any(value)


def test_fit_results_is_a_read_only_mapping_in_input_order():
    res = FitResults(["b", "a", "c"], [_result(1.0), _result(2.0, n_used=0),
                                       _result(3.0, converged=False)])
    assert list(res) == ["b", "a", "c"]
    assert [r.p50[0] for r in res.values()] == [1.0, 2.0, 3.0]
    assert res["c"].p50[0] == 3.0 and len(res) == 3 and "a" in res
    assert res.failed == ["a"] and res.unconverged == ["c"]
    assert repr(res) == "FitResults(3 fits, 1 failed, 1 not converged)"
    with pytest.raises(TypeError):
        res["d"] = _result(4.0)  # type: ignore[index]
    table = res.table()
    assert list(table["id"]) == ["b", "a", "c"]
    assert list(table["log_mass_p50"]) == [1.0, 2.0, 3.0]
    assert list(table["converged"]) == [1, 1, 0]
    assert len(FitResults([], []).table()) == 0


def test_fit_results_refuse_mismatched_or_repeated_keys():
    with pytest.raises(ValueError, match="length"):
        FitResults([1, 2], [_result(1.0)])
    with pytest.raises(ValueError, match="unique"):
        FitResults([1, 1], [_result(1.0), _result(2.0)])


@pytest.mark.parametrize("driver", [fit_sed, fit_catalog, fit_binmap])
def test_drivers_take_few_positional_parameters_and_option_objects(driver):
    params = inspect.signature(driver).parameters.values()
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    assert len(positional) <= 4
    names = {p.name for p in params}
    assert {"method", "seed", "errors", "spectral", "cosmology", "parallel"} <= names
    # the flattened settings of before are gone (their home: the option objects)
    assert not names & {"nwalkers", "nsteps", "likelihood", "error_floor", "threads", "pool",
                        "quiet", "progress", "refine", "nested", "mcmc_options", "cosmo",
                        "H0", "Om0", "del_wave_nebem", "spec_clip"}


@pytest.mark.parametrize(("options", "error", "words"), [
    (ErrorModel(likelihood="cauchy"), ValueError, "errors.likelihood"),
    (ErrorModel(dof=0), ValueError, "errors.dof"),
    (ErrorModel(dof="3"), TypeError, "errors.dof"),  # type: ignore[arg-type]
    (ErrorModel(perc_chi2=120), ValueError, "errors.perc_chi2"),
    (ErrorModel(error_floor=-0.1), ValueError, "errors.error_floor"),
    (ErrorModel(error_floor=float("nan")), ValueError, "errors.error_floor"),
    (ErrorModel(mask_invalid="yes"), TypeError, "errors.mask_invalid"),  # type: ignore[arg-type]
    (ErrorModel(upper_limit_nsigma=0), ValueError, "errors.upper_limit_nsigma"),
    (SpectralOptions(line_mask_width=-1), ValueError, "spectral.line_mask_width"),
    (SpectralOptions(poly_order=2.5), ValueError, "spectral.poly_order"),  # type: ignore[arg-type]
    (SpectralOptions(clip=0), ValueError, "spectral.clip"),
])
def test_bad_error_model_and_spectral_options_name_the_setting(options, error, words):
    with pytest.raises(error, match=words):
        options.check()


def test_good_options_pass_their_checks():
    ErrorModel(likelihood="student_t", dof=2.5, perc_chi2=90, error_floor=0.05,
               mask_invalid=True, upper_limit_nsigma=3).check()
    SpectralOptions(line_mask_width=0, poly_order=None, clip=None).check()


def test_command_line_messages_name_the_flags():
    from pixedfit.cli.fit import FLAGS
    from pixedfit.cli.main import user_message

    with pytest.raises(ValueError) as info:
        ErrorModel(dof=-1).check()
    assert user_message(info.value, FLAGS) == "--dof must be > 0, got -1"
    with pytest.raises(ValueError) as info:
        NestedSettings.from_any({"n_live": 5})
    assert user_message(info.value, FLAGS).startswith("--nlive must be >= 100")


@pytest.mark.parametrize(("seed", "error"), [(-1, ValueError), (1.5, ValueError),
                                             (True, ValueError), (2**32, ValueError)])
def test_bad_mcmc_seed_fails_before_any_work(seed, error):
    """The library is never read: the seed is checked with the other options."""
    with pytest.raises(error, match="seed"):
        fit_sed([1.0], [0.1], ["sdss_r"], 0.05, library="/nonexistent/library.h5",
                method="mcmc", seed=seed)
