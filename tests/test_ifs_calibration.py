"""Spectral matching core: multiplicative Legendre correction of spectra to models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ifs_synth import galaxy, imaging, tan_wcs
from pixedfit.filters import photometry
from pixedfit.fitting.legendre import eval_legendre
from pixedfit.ifs.calibration import (
    apply_legendre_correction,
    correct_specphot_cube,
    read_spectral_correction,
    write_spectral_correction,
)
from pixedfit.ifs.generators import califa_wave_grid, write_califa_cube
from pixedfit.ifs.spatial import match_imgifs_spatial


def _calibration_error(wave: np.ndarray, nspec: int, seed: int = 0) -> np.ndarray:
    """Smooth multiplicative errors (cubic in λ, ±10 %) differing per spectrum."""
    rng = np.random.default_rng(seed)
    coeffs = np.column_stack([rng.uniform(0.9, 1.1, nspec), rng.uniform(-0.08, 0.08, nspec),
                              rng.uniform(-0.04, 0.04, nspec), rng.uniform(-0.02, 0.02, nspec)])
    return eval_legendre(wave, coeffs)


def test_recovers_injected_calibration_error() -> None:
    gal = galaxy()
    wave = np.linspace(3800.0, 9000.0, 1500)
    model = gal.component_spectra(wave).sum(axis=0)
    nspec = 40
    true = np.tile(model, (nspec, 1)) * np.linspace(0.5, 2.0, nspec)[:, None]
    calib = _calibration_error(wave, nspec)
    rng = np.random.default_rng(5)
    err = 0.01 * true
    obs = true / calib + rng.normal(size=true.shape) * err / calib
    res = apply_legendre_correction(wave, obs, err / calib, true, gal.z, del_wave_nebem=15.0)
    assert res.ok.all()
    np.testing.assert_allclose(res.factor, calib, rtol=0.005)
    # corrected spectra agree with the truth (the photometry's model) within noise
    assert np.median(np.abs(res.flux / true - 1)) < 0.01
    # errors scaled by the same factor: pulls stay ~N(0, 1)
    pull = (res.flux - true) / res.err
    assert np.std(pull) == pytest.approx(1.0, abs=0.05)
    # line windows excluded from the fit
    assert res.line_mask.any() and not res.used[:, res.line_mask].any()


def test_emission_lines_do_not_bias_the_fit() -> None:
    gal = galaxy()
    wave = np.linspace(4000.0, 8000.0, 1200)
    spec = gal.component_spectra(wave)
    continuum_model = spec[0] + spec[1]  # a model without emission lines
    obs = (spec.sum(axis=0) / 1.2)[None]  # data with strong lines, calibration off by 1.2
    err = 1e-3 * obs
    res = apply_legendre_correction(wave, obs, err, continuum_model[None], gal.z,
                                    del_wave_nebem=20.0, order=0, clip=None)
    assert res.factor[0, 0] == pytest.approx(1.2, rel=1e-3)
    bad = apply_legendre_correction(wave, obs, err, continuum_model[None], gal.z,
                                    del_wave_nebem=0.0, order=0, clip=None)
    assert abs(bad.factor[0, 0] - 1.2) > abs(res.factor[0, 0] - 1.2)


def test_failures_are_flagged() -> None:
    wave = np.linspace(5000.0, 6000.0, 50)
    obs = np.ones((3, 50))
    obs[1, 3:] = np.nan  # too few points
    model = np.ones((3, 50)) * 2
    model[2] = -1.0  # no usable point
    res = apply_legendre_correction(wave, obs, np.full((3, 50), 0.1), model, 0.0)
    assert res.status.tolist() == [0, 1, 1]
    assert np.isnan(res.flux[1:]).all() and np.isnan(res.factor[1:]).all()
    np.testing.assert_allclose(res.flux[0], 2.0)
    np.testing.assert_allclose(res.err[0], 0.2)


def test_bad_input() -> None:
    wave = np.linspace(5000.0, 6000.0, 10)
    ok = np.ones((2, 10))
    with pytest.raises(ValueError, match="flux_err"):
        apply_legendre_correction(wave, ok, -ok, ok, 0.0)
    with pytest.raises(ValueError, match="model_flux"):
        apply_legendre_correction(wave, ok, ok, np.ones((2, 9)), 0.0)
    with pytest.raises(ValueError, match="wave"):
        apply_legendre_correction(wave[::-1], ok, ok, ok, 0.0)
    with pytest.raises(ValueError, match="order"):
        apply_legendre_correction(wave, ok, ok, ok, 0.0, order=-1)
    with pytest.raises(ValueError, match="z"):
        apply_legendre_correction(wave, ok, ok, ok, np.nan)


def test_cube_level_correction_round_trip(tmp_path: Path) -> None:
    """Synthetic IFS with an injected smooth calibration error, matched to imaging and
    corrected with the true model: spectra agree with the photometry within 2 %."""
    gal = galaxy()
    wi = tan_wcs(1.0, (20, 20))
    wave = califa_wave_grid("V500")[::2]
    clean = gal.cube(wave, wi, (20, 20), 2.5, medium="air")
    calib = _calibration_error(wave, 1, seed=2)[0]
    ifs_path = tmp_path / "g.V500.rscube.fits"
    write_califa_cube(ifs_path, wave, clean / calib[:, None, None],
                      np.full(clean.shape, 1e-20), wi, setup="V500")
    wo = tan_wcs(1.0, (16, 16), rot=0)
    phot = imaging(gal, ["sdss_r"], wo, (16, 16), 3.0)
    noise_free = {"check_errors": False}
    sp = match_imgifs_spatial(phot, ifs_path, ifs_survey="califa", wave_medium="air",
                              reader_kwargs=noise_free)
    # the "best-fit model" of every pixel: the true spectra matched the same way
    truth = match_imgifs_spatial(phot, write_true(tmp_path, wave, clean, wi),
                                 ifs_survey="califa", wave_medium="air",
                                 reader_kwargs=noise_free)
    sel = sp.spec_region
    off = photometry(sp.wave, sp.spec_flux[:, sel].T, "sdss_r")[:, 0] / phot.flux[0][sel]
    assert np.median(np.abs(off - 1)) > 0.03  # the injected error is visible
    corr, factor, res = correct_specphot_cube(sp, truth.spec_flux, z=gal.z,
                                              del_wave_nebem=15.0)
    assert res.ok.all()
    sel = corr.spec_region
    p = photometry(corr.wave, corr.spec_flux[:, sel].T, "sdss_r")[:, 0]
    bright = phot.flux[0][sel] > 0.02 * phot.flux[0][sel].max()
    assert np.max(np.abs(p[bright] / phot.flux[0][sel][bright] - 1)) < 0.02
    np.testing.assert_allclose(factor[:, sel].mean(axis=1), calib, rtol=0.01)
    path = tmp_path / "corr.fits"
    write_spectral_correction(path, corr, factor, truth.spec_flux)
    back, f2, m2 = read_spectral_correction(path)
    np.testing.assert_allclose(back.spec_flux, corr.spec_flux, equal_nan=True)
    np.testing.assert_allclose(f2, factor, equal_nan=True)
    np.testing.assert_allclose(m2, truth.spec_flux, equal_nan=True)
    with pytest.raises(FileExistsError):
        write_spectral_correction(path, corr, factor, truth.spec_flux)
    with pytest.raises(ValueError, match="spectral-correction"):
        read_spectral_correction(_plain(tmp_path, corr))


def write_true(tmp_path: Path, wave: np.ndarray, clean: np.ndarray, wcs) -> Path:
    path = tmp_path / "true.V500.rscube.fits"
    write_califa_cube(path, wave, clean, np.full(clean.shape, 1e-20), wcs, setup="V500")
    return path


def _plain(tmp_path: Path, cube) -> Path:
    path = tmp_path / "plain.fits"
    cube.write(path)
    return path
