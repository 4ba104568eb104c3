"""PSF models, matching kernels, convolution of science and variance images."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from scipy.signal import fftconvolve

from pixedfit.images.psf import (
    center_psf,
    check_kernel,
    convolve_image,
    double_gaussian_psf,
    gaussian_kernel,
    gaussian_psf,
    kernel_noise_correlation,
    matching_kernel,
    moffat_psf,
    normalize_psf,
    psf_fwhm,
    resample_psf,
)


@pytest.mark.parametrize("make", [gaussian_psf, lambda f: moffat_psf(f, 3.0),
                                  lambda f: double_gaussian_psf(f, f, 0.5)])
def test_analytic_psf_fwhm(make):
    psf = make(6.0)
    assert psf.sum() == pytest.approx(1.0)
    assert psf_fwhm(psf) == pytest.approx(6.0, rel=0.03)


def test_resample_keeps_fwhm_in_arcsec():
    psf = gaussian_psf(8.0, 61)
    out = resample_psf(psf, 0.25, 0.6)
    assert out.shape[0] % 2 == 1
    assert psf_fwhm(out) * 0.6 == pytest.approx(8.0 * 0.25, rel=0.03)


def test_gaussian_matching_kernel_is_the_analytic_gaussian():
    src, tgt = gaussian_psf(4.0, 61), gaussian_psf(10.0, 61)
    k = matching_kernel(src, tgt, 1.0, 1.0, window=None, method="photutils")
    ref = gaussian_kernel(4.0, 10.0, 1.0, size=61)
    assert np.abs(k - ref).max() < 1e-2 * ref.max()  # pixel integration differs slightly
    chk = check_kernel(src, tgt, k)
    assert chk["max_rel_deviation"] < 0.01
    with pytest.raises(ValueError, match="sharpened"):
        gaussian_kernel(5.0, 4.0, 1.0)


def test_convolve_conserves_flux_and_propagates_variance_k2():
    rng = np.random.default_rng(3)
    n = 128
    k = gaussian_psf(3.0)
    img = np.zeros((n, n))
    img[40:80, 50:70] = 2.0
    out, _ = convolve_image(img, None, k)
    assert out.sum() == pytest.approx(img.sum(), rel=1e-6)
    var = np.full((n, n), 4.0)
    conv_noise = np.array([convolve_image(rng.normal(0, 2.0, (n, n)), None, k)[0]
                           for _ in range(20)])
    _, var_out = convolve_image(np.zeros((n, n)), var, k)
    inner = (slice(15, -15), slice(15, -15))
    assert np.median(var_out[inner]) == pytest.approx(4.0 * np.sum(k**2), rel=1e-6)
    assert conv_noise[:, 15:-15, 15:-15].var() == pytest.approx(4.0 * np.sum(k**2), rel=0.05)
    # noise correlation from the kernel autocorrelation vs the Monte Carlo
    rho = kernel_noise_correlation(k, half=3)
    z = conv_noise[:, 15:-15, 15:-15] / np.sqrt(var_out[inner])
    mc = np.mean(z[:, :, 1:] * z[:, :, :-1])
    assert rho[3, 4] == pytest.approx(mc, abs=0.02)
    assert rho[3, 3] == 1.0


def test_convolve_nan_border():
    img = np.ones((40, 40))
    img[:, :5] = np.nan
    out, var = convolve_image(img, np.ones((40, 40)), gaussian_psf(2.0))
    assert np.all(np.isnan(out[:, :5])) and np.allclose(out[:, 5:], 1.0)
    assert np.all(np.isfinite(var[:, 5:]))


def test_bad_kernels():
    with pytest.raises(ValueError, match="odd"):
        normalize_psf(np.ones((4, 5)))
    with pytest.raises(ValueError, match="positive sum"):
        normalize_psf(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        normalize_psf(np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="window"):
        matching_kernel(gaussian_psf(2.0), gaussian_psf(4.0), 1, 1, window="square",
                        method="photutils")
    with pytest.raises(ValueError, match="method"):
        matching_kernel(gaussian_psf(2.0), gaussian_psf(4.0), 1, 1, method="aniano")


def _load(path):
    return fits.getdata(path).astype(np.float64)


EMP = [("emp_psfs_galex_sdss_2mass/psf_emp_sdss_g.fits.gz", 0.25),
       ("emp_psfs_galex_sdss_2mass/psf_emp_sdss_z.fits.gz", 0.25),
       ("emp_psfs_galex_sdss_2mass/psf_emp_2mass_j.fits.gz", 0.25),
       ("emp_psfs_galex_sdss_2mass/psf_emp_galex_fuv.fits.gz", 0.25),
       ("psfs_irac_mips_pacs_spire/irac_ch1_flight.fits.gz", 0.30525),
       ("psfs_irac_mips_pacs_spire/irac_ch4_flight.fits.gz", 0.30525)]


@pytest.mark.parametrize(("source", "scale"), EMP)
def test_empirical_psfs_matched_within_5_percent(shared_data, source, scale):
    """Empirical PSFs matched to the GALEX NUV / MIPS 24 PSF: radial profiles within 5 %."""
    if "irac" in source:
        target, tscale = "psfs_irac_mips_pacs_spire/Aniano_MIPS_24_Small.fits.gz", 0.5
    else:
        target, tscale = "emp_psfs_galex_sdss_2mass/psf_emp_galex_nuv.fits.gz", 0.25
    src = _load(shared_data / source)
    tgt = _load(shared_data / target)
    if "fuv" in source:  # FUV is nearly as broad as NUV: match NUV to a broader Gaussian
        src, tgt = tgt, gaussian_psf(7.0 / 0.25, 121)
    k = matching_kernel(src, tgt, scale, tscale)
    tgt_on_src = resample_psf(center_psf(tgt), tscale, scale) if tscale != scale else tgt
    chk = check_kernel(src, tgt_on_src, k)
    assert chk["max_rel_deviation"] < 0.05
    assert chk["max_ee_deviation"] < 0.01


def test_far_ir_psfs_matched(shared_data):
    """PACS 100 (0.25"/px) matched to the SPIRE 250 beam (1"/px), on a 1"/px image."""
    base = shared_data / "psfs_irac_mips_pacs_spire"
    pacs = _load(base / "Aniano_PACS_100_Small.fits.gz")
    spire = _load(base / "SPIRE_250_Small.fits.gz")
    pacs1 = resample_psf(center_psf(pacs), 0.25, 1.0)
    k = matching_kernel(pacs1, spire, 1.0, 1.0)
    chk = check_kernel(pacs1, spire, k, rmax=80)
    assert chk["max_rel_deviation"] < 0.05
    conv = fftconvolve(pacs1, k, mode="same")
    assert psf_fwhm(center_psf(conv)) == pytest.approx(psf_fwhm(center_psf(spire)), rel=0.03)


@pytest.mark.parametrize("model", ["moffat", "double_gaussian"])
def test_analytic_model_kernels(model):
    if model == "moffat":
        src, tgt = moffat_psf(4.0, 3.0, 61), moffat_psf(9.0, 3.0, 61)
    else:
        src, tgt = double_gaussian_psf(4.0, 8.0, 0.1, 61), double_gaussian_psf(9.0, 18.0, 0.1, 61)
    k = matching_kernel(src, tgt, 1.0, 1.0, window=None)
    chk = check_kernel(src, tgt, k)
    assert chk["max_rel_deviation"] < 0.05 and chk["max_ee_deviation"] < 0.005


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(fwhm=st.floats(1.0, 6.0), seed=st.integers(0, 10_000), scale=st.floats(0.1, 10.0))
def test_convolution_invariants(fwhm, seed, scale):
    """Flux is conserved by K, variance images scale with K² and stay >= 0."""
    rng = np.random.default_rng(seed)
    img = np.zeros((64, 64))
    img[24:40, 24:40] = rng.uniform(0, scale, (16, 16))
    k = gaussian_psf(fwhm)
    out, var = convolve_image(img, np.full((64, 64), scale), k)
    assert out.sum() == pytest.approx(img.sum(), rel=1e-6)
    assert np.all(var >= 0)
    assert var[32, 32] == pytest.approx(scale * np.sum(k**2), rel=1e-6)
    rho = kernel_noise_correlation(k, half=4)
    assert rho[4, 4] == 1.0 and np.allclose(rho, rho[::-1, ::-1]) and np.all(rho <= 1.0 + 1e-12)
