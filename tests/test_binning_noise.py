"""Binning with correlated pixel noise (after PSF matching / reprojection): honest bin
errors against a Monte Carlo, and S/N targets met for the correlated noise."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from scipy.signal import fftconvolve

from pixedfit.binning import bin_pixels, bin_with_map, correlated_bin_variance
from pixedfit.cubes import FluxCube

FILTERS = ("sdss_g", "sdss_r")
SHAPE = (48, 48)
KERNEL_SIGMA = 1.5  # pixels: white noise smoothed like a PSF-matching kernel


def _kernel() -> np.ndarray:
    y, x = np.mgrid[-6:7, -6:7]
    k = np.exp(-0.5 * (x**2 + y**2) / KERNEL_SIGMA**2)
    return k / k.sum()


def _rho(k: np.ndarray) -> np.ndarray:
    """Correlation of white noise convolved with k: its autocorrelation, normalised."""
    auto = fftconvolve(k, k[::-1, ::-1], mode="full")
    c = auto.shape[0] // 2
    auto = auto[c - 6 : c + 7, c - 6 : c + 7]
    return auto / auto[6, 6]


def _noise(rng: np.random.Generator, k: np.ndarray, n: int = 1) -> np.ndarray:
    """n realisations (n, ny, nx) of unit-variance correlated noise."""
    white = rng.normal(0.0, 1.0, (n, SHAPE[0] + 24, SHAPE[1] + 24))
    out = np.array([fftconvolve(w, k, mode="same")[12:-12, 12:-12] for w in white])
    return out / np.sqrt(np.sum(k**2))


def _cube(rng, k) -> FluxCube:
    level = np.array([3.0, 6.0])[:, None, None]
    sigma = np.array([0.8, 1.2])[:, None, None] * np.ones(SHAPE)
    noise = np.stack([_noise(rng, k)[0], _noise(rng, k)[0]])
    return FluxCube(level + sigma * noise, sigma, FILTERS, unit=1.0)


def test_bin_errors_match_a_monte_carlo_of_correlated_noise():
    """Measured (this seed): quadrature binning makes 213 bins whose errors are 0.40 of the
    Monte Carlo scatter (true S/N down to 3.7 for a target of 8); with ρ, 20 bins, errors
    0.995 of it, true S/N ≥ 9.8."""
    rng = np.random.default_rng(0)
    k = _kernel()
    rho = _rho(k)
    cube = _cube(rng, k)
    plain = bin_pixels(cube, snr_target=8.0, max_reduced_chi2=np.inf, min_bin_diameter=2.0)
    res = bin_pixels(cube, snr_target=8.0, max_reduced_chi2=np.inf, min_bin_diameter=2.0,
                     noise_correlation={f: rho for f in FILTERS})
    assert res.params["noise_correlation"] and not plain.params["noise_correlation"]
    # bins are larger (the quadrature S/N overstated the real one), so fewer
    assert res.nbins < plain.nbins
    # Monte Carlo: the scatter of each bin's noise sum over fresh realisations
    reps = _noise(rng, k, n=300)
    bm = res.bin_map
    sums = np.array([np.bincount(bm.ravel(), weights=(1.2 * r).ravel(),
                                 minlength=res.nbins + 1)[1:] for r in reps])
    mc_err = sums.std(axis=0)
    ratio = res.bin_flux_err[:, 1] / mc_err
    assert abs(np.median(ratio) - 1.0) < 0.08, np.median(ratio)
    # the quadrature sum underestimates it several times over
    quad = np.sqrt(np.bincount(bm.ravel(), weights=np.full(bm.size, 1.2**2),
                               minlength=res.nbins + 1)[1:])
    assert np.median(mc_err / quad) > 2.0
    # every regular bin meets its target with the honest errors
    regular = ~res.leftover
    snr = res.bin_flux[regular] / res.bin_flux_err[regular]
    assert np.all(snr >= 8.0 - 1e-9)
    # ... and with the Monte Carlo errors (the quadrature binning misses it by far)
    assert np.all(res.bin_flux[regular, 1] / mc_err[regular] > 0.85 * 8.0)


def test_uncorrelated_rho_changes_nothing_and_variance_formula():
    rng = np.random.default_rng(1)
    cube = _cube(rng, _kernel())
    delta = np.zeros((3, 3))
    delta[1, 1] = 1.0
    a = bin_pixels(cube, snr_target=6.0, max_reduced_chi2=np.inf)
    b = bin_pixels(cube, snr_target=6.0, max_reduced_chi2=np.inf,
                   noise_correlation={"sdss_g": delta})
    np.testing.assert_array_equal(a.bin_map, b.bin_map)
    np.testing.assert_allclose(a.bin_flux_err, b.bin_flux_err, rtol=1e-12)
    # a 2-pixel bin: var = s1^2 + s2^2 + 2 rho(0, 1) s1 s2
    bm = np.zeros((3, 4), int)
    bm[1, 1:3] = 1
    err = np.full((1, 3, 4), np.nan)
    err[0, 1, 1], err[0, 1, 2] = 2.0, 3.0
    rho = np.array([[0.0, 0.1, 0.0], [0.5, 1.0, 0.5], [0.0, 0.1, 0.0]])
    var = correlated_bin_variance(err, bm, [rho])
    assert var[0, 0] == pytest.approx(4.0 + 9.0 + 2 * 0.5 * 6.0)


def test_noise_file_and_bad_input(tmp_path):
    rng = np.random.default_rng(2)
    k = _kernel()
    rho = _rho(k)
    cube = _cube(rng, k)
    path = tmp_path / "fluxmap_noise.fits"
    hdus = [fits.PrimaryHDU()]
    for f in FILTERS:
        h = fits.ImageHDU(rho, name="RHO")
        h.header["FILTER"] = f
        h.header["NOISEFAC"] = 1.0
        hdus.append(h)
    fits.HDUList(hdus).writeto(path)
    a = bin_pixels(cube, snr_target=8.0, max_reduced_chi2=np.inf, noise_correlation=path)
    b = bin_pixels(cube, snr_target=8.0, max_reduced_chi2=np.inf,
                   noise_correlation={f: rho for f in FILTERS})
    np.testing.assert_array_equal(a.bin_map, b.bin_map)
    # the same errors when a cube is binned with that map
    again = bin_with_map(cube, a.bin_map, noise_correlation=path)
    np.testing.assert_allclose(again.bin_flux_err, a.bin_flux_err, rtol=1e-12)
    a.write(tmp_path / "binned.fits")
    back = type(a).read(tmp_path / "binned.fits")
    assert back.params["noise_correlation"] is True
    np.testing.assert_allclose(back.bin_flux_err, a.bin_flux_err)
    with pytest.raises(ValueError, match="not bands"):
        bin_pixels(cube, noise_correlation={"wise_w1": rho})
    with pytest.raises(ValueError, match="odd square"):
        bin_pixels(cube, noise_correlation={"sdss_g": np.ones((2, 2))})
    bad = rho.copy()
    bad[6, 6] = 0.5
    with pytest.raises(ValueError, match="rho"):
        bin_pixels(cube, noise_correlation={"sdss_g": bad})
