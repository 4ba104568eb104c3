"""Variance images of the survey helpers."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from pixedfit.images.background import subtract_background
from pixedfit.images.variance import (
    sdss_cutout_origin,
    sdss_gain_dark_variance,
    variance_2mass,
    variance_from_background,
    variance_from_uncertainty,
    variance_from_weight,
    variance_galex,
    variance_sdss,
    variance_sdss_frame,
    variance_wise,
)

RA, DEC = 27.952, 0.2635


def test_sdss_analytic():
    img = np.full((4, 5), 2.0)
    calib = np.full(10, 0.005)
    sky = np.full((3, 4), 100.0)
    xi = np.linspace(0, 3, 10)
    yi = np.linspace(0, 2, 8)
    var = variance_sdss(img, calib, sky, xi, yi, "r", camcol=3, origin=(2, 1))
    gain, dark = sdss_gain_dark_variance("r", 3)
    dn = 2.0 / 0.005 + 100.0
    assert np.allclose(var, (dn / gain + dark) * 0.005**2)
    with pytest.raises(ValueError, match="does not fit"):
        variance_sdss(img, calib, sky, xi, yi, "r", camcol=3, origin=(8, 0))
    with pytest.raises(ValueError, match="run"):
        sdss_gain_dark_variance("i", 2)
    assert sdss_gain_dark_variance("u", 2, run=4073)[0] == 1.825
    with pytest.raises(ValueError, match="camcol"):
        sdss_gain_dark_variance("g", 7)


@pytest.mark.parametrize("band", ["g", "r", "i", "z"])
def test_sdss_frame_matches_sky_noise(shared_data, band):
    """Frame-model variance of the hostphot SDSS cut-outs agrees with the measured sky RMS."""
    with fits.open(shared_data / "hostphot_sn2006bh_griz" / f"SDSS_{band}.fits.gz") as hdul:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wcs = WCS(hdul[0].header)
        origin = sdss_cutout_origin(wcs, RA, DEC, hdul[0].data.shape)
        var = variance_sdss_frame(hdul, origin=origin)
        img = hdul[0].data
    assert var.shape == img.shape and np.all(var > 0)
    bkg = subtract_background(img)
    sky = ~bkg.source_mask
    ratio = np.median(var[sky]) / np.median(bkg.rms[sky]) ** 2
    assert ratio == pytest.approx(1.0, abs=0.12)
    # galaxy pixels carry extra Poisson noise
    assert var[120, 120] > np.median(var[sky])


def test_galex_poisson_monte_carlo():
    rng = np.random.default_rng(1)
    t = 1500.0
    rate = np.full((200, 200), 0.02)
    counts = rng.poisson(rate * t) / t
    var = variance_galex(counts, t)
    assert np.mean(var) == pytest.approx(np.var(counts), rel=0.05)
    with pytest.raises(ValueError, match="exptime"):
        variance_galex(counts, 0.0)


def test_simple_helpers_and_errors():
    assert np.allclose(variance_from_uncertainty(np.full((3, 3), 2.0)), 4.0)
    w = np.array([[4.0, 0.0], [-1.0, 0.5]])
    v = variance_from_weight(w)
    assert v[0, 0] == 0.25 and np.isnan(v[0, 1]) and np.isnan(v[1, 0]) and v[1, 1] == 2.0
    assert np.allclose(variance_wise(np.full((2, 2), 3.0), 4.0), 25.0)
    v2 = variance_2mass(np.full((2, 2), 60.0), 1.0)
    assert np.allclose(v2, 1.0 + (3.4) ** 2 + 0.024**2)
    assert np.allclose(variance_from_background(np.array([[-1.0, 8.0]]), 2.0, gain=2.0),
                       [[4.0, 8.0]])
    with pytest.raises(ValueError, match="uncertainty"):
        variance_from_uncertainty(-np.ones((2, 2)))
    with pytest.raises(ValueError, match="2-D"):
        variance_from_uncertainty(np.ones(3))
    with pytest.raises(ValueError, match="infinite"):
        variance_from_weight(np.full((2, 2), np.inf))


def test_sdss_cutout_origin_matches_cutout2d():
    from astropy.nddata import Cutout2D

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [30.0, 1.0]
    w.wcs.crpix = [1025.0, 745.0]
    w.wcs.cd = [[0.0, 0.396 / 3600], [0.396 / 3600, 0.0]]
    w.wcs.set()
    frame = np.zeros((1489, 2048))
    for ra, dec, shape in ((30.01, 1.02, (240, 240)), (29.97, 0.99, (101, 60))):
        x, y = w.world_to_pixel_values(ra, dec)
        cut = Cutout2D(frame, (float(x), float(y)), shape, wcs=w)
        assert sdss_cutout_origin(w, ra, dec, shape) == cut.origin_original
