"""Spectral likelihood: resolution, smoothing, line masks, Legendre step, clipping, fits."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from pixedfit.fitting import (
    ErrorModel,
    FitResult,
    McmcSettings,
    MCMCShortChainWarning,
    ObservedSpectrum,
    Parallelism,
    RdspsSettings,
    Resolution,
    SpectralOptions,
    fit_sed,
    read_sdss_spectrum,
)
from pixedfit.fitting.spectral_likelihood import SpectralLikelihood
from pixedfit.library import generate_library

FILTERS = ["galex_fuv", "galex_nuv", "sdss_u", "sdss_g", "sdss_r", "sdss_i", "sdss_z",
           "2mass_j", "2mass_h", "2mass_k", "wise_w1", "wise_w2"]
C_KMS = 299792.458
Z = 0.05
# The mocks are the models smoothed on top of their templates' resolution: their LSF
# applies to the models as it is.
MOCK_LSF = Resolution.velocity(70.0, instrumental=False)
MOCK_LSF_150 = Resolution.velocity(150.0, instrumental=False)
ONE_THREAD = Parallelism(threads=1)
POLY3 = SpectralOptions(poly_order=3)
SHORT_MCMC = McmcSettings(nwalkers=24, nsteps=120, nsteps_cut=60)


@pytest.fixture(scope="module")
def model(fit_model):
    return fit_model


@pytest.fixture(scope="module")
def library(fit_library):
    return fit_library(1500, 11, {"log_age": (-1.0, 1.1), "logzsol": (-1.0, 0.2)})


def _truth(library, index=123, log_mass=10.0):
    p = {k: float(v[index]) for k, v in library.params.items()}
    p["log_mass"] = log_mass
    return p


def _mock_spectrum(model, p, sigma_kms=70.0, tilt=0.0, snr=30.0, seed=0):
    """Independent mock: numpy Gaussian smoothing on a log-λ grid (constant velocity)."""
    dlog = 1e-4
    wave = 10 ** np.arange(np.log10(3800.0), np.log10(9000.0), dlog)
    mw, mf = model.spectrum(p, Z)
    fine = np.interp(wave, mw, mf)
    dv = dlog * math.log(10.0) * C_KMS
    smooth = gaussian_filter1d(fine, sigma_kms / dv)
    x = 2 * (wave - wave[0]) / (wave[-1] - wave[0]) - 1
    truth_factor = 1.0 + tilt * x
    flux = smooth * truth_factor
    err = flux / snr
    noisy = flux + np.random.default_rng(seed).normal(0, err)
    return wave, noisy, err, smooth, truth_factor


def test_resolution_forms():
    lam = np.array([4000.0, 6000.0])
    np.testing.assert_allclose(Resolution.velocity(100).sigma_at(lam), lam * 100 / C_KMS,
                               rtol=1e-6)
    np.testing.assert_allclose(Resolution.resolving_power(2000).sigma_at(lam),
                               lam / 2000 / (2 * math.sqrt(2 * math.log(2))))
    np.testing.assert_allclose(Resolution.angstrom(1.5).sigma_at(lam), 1.5)
    tab = Resolution.tabulated([3000, 7000], [1.0, 3.0])
    np.testing.assert_allclose(tab.sigma_at(lam), [1.5, 2.5])
    with pytest.raises(ValueError, match="R"):
        Resolution.resolving_power(0)
    with pytest.raises(ValueError, match="increasing"):
        Resolution.tabulated([3000, 2000], [1, 1])


def test_observed_spectrum_validation():
    w = np.linspace(4000, 5000, 50)
    with pytest.raises(ValueError, match="flux_err"):
        ObservedSpectrum(w, np.ones(50), np.ones(49))
    with pytest.raises(ValueError, match="increasing"):
        ObservedSpectrum(w[::-1], np.ones(50), np.ones(50))
    with pytest.raises(ValueError, match="infinite"):
        ObservedSpectrum(w, np.full(50, np.inf), np.ones(50))
    with pytest.raises(ValueError, match="medium"):
        ObservedSpectrum(w, np.ones(50), np.ones(50), medium="water")
    with pytest.raises(ValueError, match="wave_range"):
        ObservedSpectrum(w, np.ones(50), np.ones(50), wave_range=(5000, 4000))
    err = np.ones(50)
    err[3] = 0.0
    flux = np.ones(50)
    flux[5] = np.nan
    mask = np.zeros(50, bool)
    mask[7] = True
    s = ObservedSpectrum(w, flux, err, mask=mask, wave_range=(4000, 4900))
    valid = s.valid()
    assert not valid[3] and not valid[5] and not valid[7] and not valid[-1] and valid[0]


def test_smoothing_matches_independent_convolution(model, library):
    p = _truth(library)
    wave, _, err, smooth, _ = _mock_spectrum(model, p, sigma_kms=150.0)
    spec = ObservedSpectrum(wave, smooth, err, resolution=MOCK_LSF_150)
    lik = SpectralLikelihood(spec, model, Z, del_wave_nebem=0.0, poly_order=None, clip=None)
    from pixedfit.sps.model import DEFAULTS, PARAM_NAMES

    arr = np.array([[p.get(n, DEFAULTS[n]) for n in PARAM_NAMES]])
    mod, derived = lik.model_on_pixels(arr)
    assert derived["stellar_mass"][0] == pytest.approx(1e10, rel=1e-6)
    inner = (lik.wave > 4000) & (lik.wave < 8800)
    rel = mod[0, inner] / smooth[lik.pixels][inner] - 1
    assert np.max(np.abs(rel)) < 0.02 and abs(np.median(rel)) < 2e-3
    # unsmoothed model differs by much more in absorption features
    lik0 = SpectralLikelihood(ObservedSpectrum(wave, smooth, err), model, Z, 0.0, None, None)
    rel0 = lik0.model_on_pixels(arr)[0][0, inner] / smooth[lik0.pixels][inner] - 1
    assert np.max(np.abs(rel0)) > 3 * np.max(np.abs(rel))


def test_instrumental_resolution_subtracts_the_template_resolution(model, library):
    """An instrumental LSF of 3 Å (σ) broadens the models only by what their MILES
    templates (2.51 Å FWHM, σ = 1.066 Å rest frame) lack: sqrt(3² − (1.066 (1+z))²)."""
    from pixedfit.sps.model import DEFAULTS, PARAM_NAMES
    from pixedfit.sps.resolution import FWHM_TO_SIGMA, MILES_FWHM_AA

    p = _truth(library)
    wave = np.arange(3900.0, 7600.0, 0.5)  # rest 3714–7238 Å: inside the MILES range
    mw, mf = model.spectrum(p, Z)
    fine = np.interp(wave, mw, mf)
    s_t = MILES_FWHM_AA * FWHM_TO_SIGMA * (1 + Z)
    extra = math.sqrt(3.0**2 - s_t**2)
    truth = gaussian_filter1d(fine, extra / 0.5)
    err = truth / 100
    arr = np.array([[p.get(n, DEFAULTS[n]) for n in PARAM_NAMES]])
    inner = slice(200, -200)
    spec = ObservedSpectrum(wave, truth, err, resolution=Resolution.angstrom(3.0))
    lik = SpectralLikelihood(spec, model, Z, del_wave_nebem=0.0, poly_order=None, clip=None)
    rel = lik.model_on_pixels(arr)[0][0] / truth[lik.pixels] - 1
    assert np.max(np.abs(rel[inner])) < 5e-3 and lik.template_limited == 0
    # applied as given (instrumental=False), the model is too broad in absorption lines
    spec_as_is = ObservedSpectrum(wave, truth, err,
                                  resolution=Resolution.angstrom(3.0, instrumental=False))
    lik2 = SpectralLikelihood(spec_as_is, model, Z, 0.0, None, None)
    rel2 = lik2.model_on_pixels(arr)[0][0] / truth[lik2.pixels] - 1
    assert np.max(np.abs(rel2[inner])) > 2 * np.max(np.abs(rel[inner]))
    # the galaxy's velocity dispersion adds in quadrature: σ² = 3² + (λ v / c)² − σ_t²
    spec_v = ObservedSpectrum(wave, truth, err, resolution=Resolution.angstrom(3.0),
                              veldisp=120.0)
    lik_v = SpectralLikelihood(spec_v, model, Z, 0.0, None, None)
    lam = lik_v.model_wave_obs
    inside = (lam / (1 + Z) > 3600) & (lam / (1 + Z) < 7300)
    expect = np.sqrt(9.0 + (lam * 120.0 / C_KMS) ** 2 - s_t**2)
    np.testing.assert_allclose(lik_v.smooth_sigma[inside], expect[inside], rtol=1e-6)
    with pytest.raises(ValueError, match="veldisp"):
        ObservedSpectrum(wave, truth, err, veldisp=-5.0)
    # an instrument sharper than the templates: the model stays as it is, and is counted
    sharp = ObservedSpectrum(wave, truth, err, resolution=Resolution.angstrom(0.5))
    lik3 = SpectralLikelihood(sharp, model, Z, 0.0, None, None)
    assert lik3.template_limited == lik3.pixels.size and lik3.smooth_sigma is None


@pytest.mark.slow
def test_mcmc_samples_the_velocity_dispersion(model, library, tmp_path):
    """A spectrum broadened by 150 km/s (on top of the templates) and photometry: MCMC with
    veldisp_range recovers the dispersion; RDSPS refuses the range."""
    p = _truth(library, index=300, log_mass=10.0)
    flux = model.photometry(p, Z, FILTERS)
    err = flux / 30
    wave, spec_flux, spec_err, _, _ = _mock_spectrum(model, p, sigma_kms=150.0, seed=9)
    spec = ObservedSpectrum(wave, spec_flux, spec_err,
                            resolution=Resolution.velocity(0.0, instrumental=False),
                            veldisp=80.0, veldisp_range=(20.0, 400.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCMCShortChainWarning)
        res = fit_sed(flux, err, FILTERS, z=Z, library=library, model=model, spectrum=spec,
                      spectral=POLY3, method=SHORT_MCMC, seed=2, parallel=ONE_THREAD)
    s = res.summary["veldisp"]
    assert "veldisp" in res.diagnostics["sampled"]
    assert abs(s["p50"] - 150.0) < max(15.0, 3 * 0.5 * (s["p84"] - s["p16"])), s
    res.write(tmp_path / "v.h5")
    res.write_pixedfit(tmp_path / "v.fits")
    for back in (FitResult.read(tmp_path / "v.h5"), FitResult.read_pixedfit(tmp_path / "v.fits")):
        assert back.summary["veldisp"]["p50"] == pytest.approx(s["p50"])
    # the library pass alone cannot sample it (refined RDSPS and MCMC do)
    with pytest.raises(ValueError, match="veldisp_range"):
        fit_sed(flux, err, FILTERS, z=Z, library=library, model=model, spectrum=spec,
                spectral=POLY3, parallel=ONE_THREAD, method=RdspsSettings(refine=False))
    with pytest.raises(ValueError, match="veldisp_range"):
        ObservedSpectrum(wave, spec_flux, spec_err, veldisp_range=(300.0, 100.0))


def test_legendre_step_line_mask_and_clipping(model, library):
    p = _truth(library)
    wave, _, err, smooth, factor = _mock_spectrum(model, p, tilt=0.15)
    data = smooth * factor
    data[100] *= 3.0  # an outlier
    spec = ObservedSpectrum(wave, data, err, resolution=MOCK_LSF)
    lik = SpectralLikelihood(spec, model, Z, del_wave_nebem=15.0, poly_order=3, clip=4.0)
    # pixels near redshifted H-alpha (vacuum 6564.6 A) are masked
    halpha = 6564.61 * (1 + Z)
    assert np.all(np.abs(lik.wave - halpha) > 15.0)
    assert np.any(np.abs(wave - halpha) < 15.0)
    model_pix = smooth[lik.pixels][None] / 1.0
    nclip = lik.clip_outliers(model_pix[0])
    assert nclip >= 1 and not lik.use[np.searchsorted(lik.pixels, 100)]
    cmp = lik.compare(model_pix)
    np.testing.assert_allclose(cmp["factor"][0][lik.use], factor[lik.pixels][lik.use],
                               rtol=1e-8)
    assert cmp["chi2"][0] < 1e-8 * lik.npix
    # spectrum alone: the profiled scale is the mean of the correction
    alone = SpectralLikelihood(spec, model, Z, 15.0, poly_order=3, clip=None,
                               has_photometry=False)
    c = alone.compare(0.5 * model_pix)
    assert c["scale"][0] == pytest.approx(2.0, rel=1e-3)
    with pytest.raises(ValueError, match="fixed redshift"):
        SpectralLikelihood(spec, model, None)
    with pytest.raises(ValueError, match="poly_order"):
        SpectralLikelihood(spec, model, Z, poly_order=-1)


@pytest.mark.slow
def test_spectrophotometric_tilt_recovery_mcmc(model, library):
    """A ±15 % calibration tilt: parameters within 1σ, the correction within 2 %."""
    p = _truth(library)
    flux = model.photometry(p, Z, FILTERS)
    err = flux / 20
    rng = np.random.default_rng(3)
    obs = flux + rng.normal(0, err)
    wave, spec_flux, spec_err, _, factor = _mock_spectrum(model, p, tilt=0.15, seed=4)
    spec = ObservedSpectrum(wave, spec_flux, spec_err, resolution=MOCK_LSF)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCMCShortChainWarning)
        # the mock photometry has no calibration offsets: no calibration term in the fit
        res = fit_sed(obs, err, FILTERS, z=Z, library=library, model=model, spectrum=spec,
                      spectral=POLY3, method=SHORT_MCMC, seed=2, parallel=ONE_THREAD,
                      errors=ErrorModel(calibration=False))
    s = res.summary
    for name in ("logzsol", "log_age", "dust2", "log_mass"):
        sig = max(0.5 * (s[name]["p84"] - s[name]["p16"]), 0.01)
        assert abs(s[name]["p50"] - p[name]) < 1.5 * sig + 0.02, name
    rel = res.spectrum["factor"] / np.interp(res.spectrum["wave"], wave, factor) - 1
    assert np.max(np.abs(rel)) < 0.02
    assert res.spectrum["used"].sum() == res.diagnostics["spectral_pixels"]


def test_spectral_rdsps_and_spectrum_only(model, library, tmp_path):
    p = _truth(library, 40, 9.5)
    wave, spec_flux, spec_err, _, _ = _mock_spectrum(model, p, seed=5)
    spec = ObservedSpectrum(wave, spec_flux, spec_err, resolution=MOCK_LSF)
    # no polynomial: a constant scale only, so that dust is constrained by the continuum;
    # the library pass alone, whose best model is the true one (a library model)
    res = fit_sed(None, None, None, z=Z, library=library, model=model, spectrum=spec,
                  spectral=SpectralOptions(poly_order=None),
                  parallel=ONE_THREAD, method=RdspsSettings(refine=False))
    assert res.method == "rdsps" and res.filters == () and res.n_bands_used == 0
    best = res.bestfit_params()
    # an old model: the best match is near the truth; the mass is the profiled scale
    assert best["log_age"] == pytest.approx(p["log_age"], abs=0.05)
    assert best["log_mass"] == pytest.approx(9.5, abs=0.1)
    assert res.chi2_min < 1.3 * res.spectrum["used"].sum()
    res.write(tmp_path / "s.h5")
    back = FitResult.read(tmp_path / "s.h5")
    for key in ("wave", "flux", "model", "factor", "used"):
        np.testing.assert_array_equal(back.spectrum[key], res.spectrum[key])
    res.write_pixedfit(tmp_path / "s.fits")
    back = FitResult.read_pixedfit(tmp_path / "s.fits")
    np.testing.assert_allclose(back.spectrum["model"], res.spectrum["model"])
    with pytest.raises(ValueError, match="fixed redshift"):
        fit_sed(None, None, None, z=None, library=library, model=model, spectrum=spec)
    with pytest.raises(ValueError, match="photometry"):
        fit_sed(None, None, None, z=Z, library=library, model=model)


def test_sdss_spectrum_and_models_share_the_vacuum_scale(fit_library, shared_data):
    """NGC 3522's SDSS spectrum (vacuum wavelengths, pipeline redshift and dispersion) is
    fitted best at its own redshift: χ²/pixel of the best library model against a velocity
    offset dv of the models is lowest near dv = 0. With the BC03 grid left in air the models
    sat 1.8 Å blue at Hα and the minimum was at dv ≈ +90 km/s (χ²/pixel 1.72 at dv = 0,
    0.81 at +90; measured with 3000 models)."""
    lib = fit_library(1000, 5, {"log_age": (-1.0, 1.14), "logzsol": (-1.5, 0.2),
                                "dust2": (0.0, 1.5)})
    path = shared_data / "sdss_spectra_ngc3073_ngc3522" / "NGC3522_SDSS_DR18.fits.gz"
    spec, z = read_sdss_spectrum(path, wave_range=(3700, 8800))
    dvs = np.array([-60.0, 0.0, 60.0])
    chi = []
    for dv in dvs:
        res = fit_sed(None, None, None, z=(1 + z) * (1 + dv / C_KMS) - 1, library=lib,
                      spectrum=spec, spectral=SpectralOptions(poly_order=8),
                      method=RdspsSettings(refine=False), parallel=ONE_THREAD)
        chi.append(res.chi2_min / res.spectrum["used"].sum())
    a, b, c = chi
    assert b < min(a, c), chi
    assert abs(30.0 * (a - c) / (a - 2 * b + c)) < 30.0, chi  # parabola's minimum, km/s
    assert b < 1.2, chi


@pytest.mark.slow
def test_sdss_spectra_fit(model, shared_data):
    """Real SDSS spectra (vacuum, 1e-17 units, LSF from wdisp): spectrum-only RDSPS."""
    lib = generate_library(model, 1500, seed=5, ranges={"log_age": (-1.0, 1.14),
                                                       "logzsol": (-1.5, 0.2),
                                                       "dust2": (0.0, 1.5)})
    out = {}
    for name in ("NGC3073", "NGC3522"):
        path = shared_data / "sdss_spectra_ngc3073_ngc3522" / f"{name}_SDSS_DR18.fits.gz"
        spec, z = read_sdss_spectrum(path, wave_range=(3700, 8800))
        assert spec.resolution is not None and spec.resolution.instrumental
        assert 0.002 < z < 0.006
        # the SDSS pipeline's stellar velocity dispersion (NGC 3073: unresolved, 0)
        assert spec.veldisp == (pytest.approx(97.36, abs=0.01) if name == "NGC3522" else 0.0)
        res = fit_sed(None, None, None, z=z, library=lib, model=model, spectrum=spec,
                      spectral=SpectralOptions(poly_order=8), parallel=ONE_THREAD)
        s = res.summary
        assert res.chi2_min < 3 * res.spectrum["used"].sum()
        out[name] = (s["log_mw_age"]["p50"], s["logzsol"]["p50"])
        assert -1.5 <= s["logzsol"]["p50"] <= 0.2
    # NGC 3522 (elliptical) is older than NGC 3073 (dwarf S0 with young stars)
    assert out["NGC3522"][0] > out["NGC3073"][0] + 0.3
    assert out["NGC3522"][0] > 0.7  # > 5 Gyr


@pytest.mark.slow
def test_tilt_recovery_ensemble(model, library):
    """±15 % tilts on 8 spectrophotometric mocks (spectrum S/N 30 per pixel, photometry
    S/N 50, about SDSS's ugriz for bright galaxies): parameters inside their 68 % intervals
    at no less than 0.4 (below the nominal rate: see the measurements at the end), every
    posterior-mean correction within 2 %, and its posterior std an honest error bar. (One
    mock can miss 1σ in one of four parameters by chance — 1 − 0.68⁴ ≈ 79 % of the time —
    so the check is on an ensemble.)

    The correction's absolute level and tilt over 3800–9000 Å come from the photometry
    inside that range (the polynomial absorbs every smooth shape of the spectrum): with S/N
    20 photometry its posterior std is ≈ 1.5 % and errors of 1–3 % are expected; at S/N 50
    it is 0.6–0.9 %.
    """
    inside, rms, worst, ratio = [], [], [], []
    for j, index in enumerate((123, 40, 300, 777, 1000, 1200, 555, 900)):
        p = _truth(library, index=index, log_mass=9.5 + 0.1 * j)
        flux = model.photometry(p, Z, FILTERS)
        err = flux / 50
        obs = flux + np.random.default_rng(100 + j).normal(0, err)
        tilt = 0.15 if j % 2 == 0 else -0.15
        wave, spec_flux, spec_err, _, factor = _mock_spectrum(model, p, tilt=tilt, seed=200 + j)
        spec = ObservedSpectrum(wave, spec_flux, spec_err, resolution=MOCK_LSF)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCMCShortChainWarning)
            res = fit_sed(obs, err, FILTERS, z=Z, library=library, model=model, spectrum=spec,
                          spectral=POLY3, method=SHORT_MCMC, seed=10 + j,
                          parallel=ONE_THREAD)
        s = res.summary
        for name in ("logzsol", "log_age", "dust2", "log_mass"):
            inside.append(s[name]["p16"] <= p[name] <= s[name]["p84"])
        sp = res.spectrum
        rel = sp["factor_mean"] / np.interp(sp["wave"], wave, factor) - 1
        rms.append(np.sqrt(np.mean(rel**2)))
        worst.append(np.max(np.abs(rel)))
        ratio.append(rms[-1] / np.median(sp["factor_std"]))
    # Measured (this seed set): rms 0.24–1.73 %, worst pixel 0.46–1.93 %; error /
    # posterior std 0.3–2.0. Coverage: 0.69 when the walkers started from the library; since
    # they start from the refined RDSPS posterior, 0.50 (code of 2026-12-06) and 0.44 (the
    # mass proposal of 2026-12-07, whose refined posteriors here agree with the earlier ones
    # to 0.01 in every p16/p50/p84). The converged refined posteriors themselves cover 0.56–
    # 0.59 with either code (log_age 0.1 dex off at 3 σ in one mock, dust2 just outside in
    # five), and 0.625 when the mock spectra are made by the fit's own smoothing instead of
    # numpy's (0.04–0.13 % apart): the shortfall is in the posteriors, not the sampler's
    # noise, and 32 correlated outcomes cannot tell it from chance. The bound catches a
    # collapse of the intervals, not a 10–20 % shortfall.
    assert max(rms) < 0.02 and max(worst) < 0.025, (rms, worst)
    assert np.median(ratio) < 1.5 and max(ratio) < 3.0, ratio
    assert 0.4 <= np.mean(inside) <= 0.9, np.mean(inside)


@pytest.mark.slow
def test_posterior_mean_correction_round_trips(tmp_path, model, library):
    """factor_mean / factor_std of an RDSPS spectrophotometric fit: present, positive std,
    and kept by both file layouts."""
    p = _truth(library)
    flux = model.photometry(p, Z, FILTERS)
    err = flux / 30
    wave, spec_flux, spec_err, _, _ = _mock_spectrum(model, p, tilt=0.1, seed=3)
    spec = ObservedSpectrum(wave, spec_flux, spec_err, resolution=MOCK_LSF)
    res = fit_sed(flux, err, FILTERS, z=Z, library=library, model=model, spectrum=spec,
                  spectral=POLY3, parallel=ONE_THREAD)
    sp = res.spectrum
    assert sp["factor_mean"].shape == sp["wave"].shape
    assert np.all(sp["factor_std"] >= 0) and np.all(np.isfinite(sp["factor_mean"]))
    res.write(tmp_path / "r.h5")
    res.write_pixedfit(tmp_path / "r.fits")
    for back in (FitResult.read(tmp_path / "r.h5"), FitResult.read_pixedfit(tmp_path / "r.fits")):
        np.testing.assert_allclose(back.spectrum["factor_mean"], sp["factor_mean"])
        np.testing.assert_allclose(back.spectrum["factor_std"], sp["factor_std"])
    # a masked band (mask_invalid=True) does not spoil the normalisation or the correction
    holed = flux.copy()
    holed[4] = np.nan
    res2 = fit_sed(holed, err, FILTERS, z=Z, library=library, model=model, spectrum=spec,
                   spectral=POLY3, parallel=ONE_THREAD,
                   errors=ErrorModel(mask_invalid=True))
    assert np.isfinite(res2.chi2_min) and np.all(np.isfinite(res2.spectrum["factor_mean"]))
    assert res2.summary["log_mass"]["p50"] == pytest.approx(10.0, abs=0.1)
