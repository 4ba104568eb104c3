"""PSF-matching kernels from real JWST/NIRCam PSFs and their encircled-energy check."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from astropy.io import fits

from pixedfit.images.psf import (
    center_psf,
    gaussian_kernel,
    gaussian_psf,
    kernel_encircled_energy,
    matching_kernel,
    psf_fwhm,
    resample_psf,
    wiener_kernel,
)

CEERS = "jwst_ceers_nircam_cutouts"
SCALE = {"F115W": 0.02, "F150W": 0.02, "F200W": 0.02, "F277W": 0.04, "F356W": 0.04,
         "F410M": 0.04, "F444W": 0.04}  # pixel scales of the cut-outs (their README)


def _psf(shared_data, galaxy, band):
    return fits.getdata(shared_data / CEERS / galaxy / "PSF" / f"{band}_hybrid.fits").astype(float)


def _negative_part(k):
    return float(-k[k < 0].sum() / k.sum())


@pytest.mark.parametrize("galaxy", ["6414", "10766"])
def test_nircam_kernels_to_f444w_pass_the_encircled_energy_check(shared_data, galaxy):
    """Every CEERS band matched to F444W: EE of PSF ⊗ K within 2 % of F444W's at r ≥ FWHM,
    with kernels free of the huge negative lobes of the unregularised division."""
    tgt = _psf(shared_data, galaxy, "F444W")
    fwhm_arcsec = psf_fwhm(tgt) * SCALE["F444W"]
    assert fwhm_arcsec == pytest.approx(0.16, abs=0.02)  # NIRCam F444W
    for band in ("F115W", "F150W", "F200W", "F277W", "F356W", "F410M"):
        src, s = _psf(shared_data, galaxy, band), SCALE[band]
        k = matching_kernel(src, tgt, s, SCALE["F444W"], image_scale=s)
        tgt_on_src = resample_psf(center_psf(tgt), SCALE["F444W"], s) if s != 0.04 else tgt
        chk = kernel_encircled_energy(src, tgt_on_src, k, fwhm_arcsec / s)
        assert chk.passed and chk.max_deviation < 0.01, (band, chk.max_deviation)
        assert chk.min_radius == pytest.approx(fwhm_arcsec / s)
        assert chk.radius[0] >= chk.min_radius
        assert _negative_part(k) < 1.5, band
    # the defect: an OTF-threshold division without enough regularisation passes the EE
    # test on noiseless PSFs but its kernel is tens of times its own sum in negative lobes
    bad = matching_kernel(_psf(shared_data, galaxy, "F410M"), tgt, 0.04, 0.04,
                          method="photutils")
    assert _negative_part(bad) > 10.0


def test_encircled_energy_check_agrees_with_an_aniano_kernel(shared_data):
    """The published F150W → Gaussian 0.85" kernel (Aniano algorithm, WebbPSF PSFs), put on
    the 0.02"/px grid, passes the check on the CEERS F150W PSF; our Wiener kernel to the
    same target gives the same encircled energies within 2 % (the reference was built for
    the WebbPSF model of F150W, not these PSFs; ours is within 0.1 % of the Gaussian target
    where the reference is 1 % low); a kernel to the wrong target
    fails it."""
    path = shared_data / "jwst_kernels_aniano_method" / "f150w_to_gauss0p85.fits.gz"
    with gzip.open(path) as fh, fits.open(fh) as hdul:
        ref = np.array(hdul[0].data, dtype=float)
        ref_scale = abs(float(hdul[0].header["CDELT1"])) * 3600.0
    assert ref_scale == pytest.approx(0.007775, rel=1e-3)
    s = 0.02
    ref = resample_psf(ref / ref.sum(), ref_scale, s)
    src = _psf(shared_data, "6414", "F150W")
    tgt = gaussian_psf(0.85 / s, size=301)
    chk_ref = kernel_encircled_energy(src, tgt, ref, 0.85 / s)
    assert chk_ref.passed, chk_ref.max_deviation
    ours = matching_kernel(src, tgt, s, s)
    chk = kernel_encircled_energy(src, tgt, ours, 0.85 / s)
    assert chk.passed
    np.testing.assert_allclose(chk.ee_convolved, chk_ref.ee_convolved, rtol=0.02)
    assert chk.max_deviation < 0.002 < chk_ref.max_deviation
    wrong = gaussian_kernel(0.06, 0.50, s, size=301)
    bad = kernel_encircled_energy(src, tgt, wrong, 0.85 / s)
    assert not bad.passed and bad.max_deviation > 0.025


def test_wiener_kernel_between_gaussians_and_bad_input():
    src, tgt = gaussian_psf(4.0, 61), gaussian_psf(10.0, 61)
    k = wiener_kernel(src, tgt)
    ref = gaussian_kernel(4.0, 10.0, 1.0, size=61)
    assert np.abs(k - ref).max() < 0.02 * ref.max()
    assert kernel_encircled_energy(src, tgt, k, 10.0).max_deviation < 0.005
    with pytest.raises(ValueError, match="source_psf, target_psf"):
        wiener_kernel(gaussian_psf(2.0, 21), gaussian_psf(4.0, 31))
    with pytest.raises(ValueError, match="noise_to_signal"):
        wiener_kernel(src, tgt, noise_to_signal=0.0)
    with pytest.raises(ValueError, match="lowpass"):
        wiener_kernel(src, tgt, lowpass=(1.0, 0.5))
    with pytest.raises(ValueError, match="tolerance"):
        kernel_encircled_energy(src, tgt, k, tolerance=0.0)
