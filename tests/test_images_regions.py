"""Segmentation with sep, merged regions, ellipses, rectangles and star masks."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from pixedfit.images.regions import (
    RegionWarning,
    background_noise,
    central_segment,
    check_region,
    ellipse_region,
    galaxy_region,
    mask_stars,
    read_region_mask,
    rectangular_region,
    segmentation_map,
    warn_region,
)


def _blobs(seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:101, 0:101]
    img = 20 * np.exp(-0.5 * ((x - 50) ** 2 + (y - 50) ** 2) / 6.0**2)
    img += 15 * np.exp(-0.5 * ((x - 85) ** 2 + (y - 15) ** 2) / 2.0**2)
    return img + rng.normal(0, 0.5, img.shape)


def test_segmentation_and_central_segment():
    img = _blobs()
    segm, objects = segmentation_map(img, thresh=3.0, err=0.5, minarea=5)
    assert len(objects) == 2
    central = central_segment(segm)
    assert central[50, 50] and not central[15, 85]
    # the central segment is roughly the 3σ isophote of the Gaussian: r = 6 sqrt(2 ln(40/1.5))
    r = 6.0 * np.sqrt(2 * np.log(20 / 1.5))
    assert central.sum() == pytest.approx(np.pi * r**2, rel=0.15)
    # with a variance map and a NaN border
    img[:, :3] = np.nan
    segm2, _ = segmentation_map(img, thresh=3.0, variance=np.full(img.shape, 0.25), minarea=5)
    assert segm2[50, 50] > 0 and np.all(segm2[:, :3] == 0)
    assert not central_segment(segm, x=5, y=95).any()
    with pytest.raises(ValueError, match="thresh"):
        segmentation_map(img, thresh=0)


def test_union_ellipse_rectangle_stars():
    a = np.zeros((20, 20), bool)
    b = np.zeros((20, 20), bool)
    a[2:5, 2:5] = True
    b[10:12, 10:15] = True
    assert galaxy_region([a, b]).sum() == 9 + 10
    with pytest.raises(ValueError, match="one shape"):
        galaxy_region([a, np.zeros((3, 3))])
    circ = ellipse_region((201, 201), radius_sma=50)
    assert circ.sum() == pytest.approx(np.pi * 50**2, rel=0.01)
    ell = ellipse_region((201, 201), ell=0.5, pa=0.0, radius_sma=60)
    assert ell.sum() == pytest.approx(np.pi * 60 * 30, rel=0.01)
    assert ell[100, 155] and not ell[155, 100]  # major axis along x for pa = 0
    rot = ellipse_region((201, 201), ell=0.5, pa=90.0, radius_sma=60)
    assert rot[155, 100] and not rot[100, 155]
    rect = rectangular_region((50, 60), x=10, y=5, width=20, height=7)
    assert rect.sum() == 140 and rect[5, 10] and not rect[12, 10]
    masked = mask_stars(circ, [(100, 100, 10)])
    assert masked.sum() == pytest.approx(circ.sum() - np.pi * 100, rel=0.05)
    with pytest.raises(ValueError, match="ell"):
        ellipse_region((10, 10), ell=1.0)
    with pytest.raises(ValueError, match="corner"):
        rectangular_region((10, 10), 20, 0, 2, 2)


# ---------------------------------------------------------------- background-σ thresholds


def _galaxy_on_sky(seed=1, n=151, scale=8.0, sky=0.3, sigma=1.0):
    """Exponential disc (peak 50σ) on a sky offset with white noise σ."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:n, 0:n]
    r = np.hypot(x - n // 2, y - n // 2)
    model = 50.0 * sigma * np.exp(-r / scale)
    return model, model + sky + rng.normal(0, sigma, (n, n)), r


def test_matched_filter_threshold_was_not_in_noise_units():
    """The defect: with a variance array sep's matched filter made ``thresh=1.5`` detect
    1 % of pure-noise pixels; in units of the measured background σ it detects none."""
    rng = np.random.default_rng(3)
    noise = rng.normal(0, 1.0, (200, 200))
    segm_old, _ = segmentation_map(noise, 1.5, variance=np.ones_like(noise), minarea=1)
    assert (segm_old > 0).mean() > 0.005
    bkg = background_noise(noise, variance=np.ones_like(noise))
    assert bkg.method == "measured" and bkg.sigma == pytest.approx(1.0, rel=0.03)
    segm, _ = segmentation_map(noise - bkg.level, 1.5, err=bkg.sigma, minarea=1)
    assert (segm > 0).mean() < 1e-3


def test_background_noise_measured_on_the_sky():
    _, img, _ = _galaxy_on_sky()
    bkg = background_noise(img)
    assert bkg.method == "measured" and bkg.n_sky > 0.5 * img.size
    assert bkg.sigma == pytest.approx(1.0, rel=0.05)
    # the level includes the faint wings of the disc beyond the masks (~0.1σ here)
    assert bkg.level == pytest.approx(0.3, abs=0.15)
    # threshold 2σ on the 3x3-smoothed image: the isophote where the model is ~2σ
    segm, _ = segmentation_map(img - bkg.level, 2.0, err=bkg.sigma, minarea=30)
    central = central_segment(segm)
    r_iso = 8.0 * np.log(50.0 / 2.0)
    assert central.sum() == pytest.approx(np.pi * r_iso**2, rel=0.2)
    assert not check_region(central).flagged
    # with the variance map given, the measured value still wins (it agrees)
    assert background_noise(img, variance=np.full(img.shape, 1.1)).method == "measured"


def test_background_noise_without_sky_uses_the_variance_map():
    """A galaxy filling the stamp: its outskirts are not sky; σ comes from the variance."""
    rng = np.random.default_rng(5)
    n = 81
    y, x = np.mgrid[0:n, 0:n]
    img = 40.0 * np.exp(-np.hypot(x - 40, y - 40) / 40.0) + rng.normal(0, 1.0, (n, n))
    bkg = background_noise(img, variance=np.ones((n, n)))
    assert bkg.method == "variance map" and bkg.sigma == pytest.approx(1.0)
    assert bkg.level == 0.0 and bkg.n_sky == 0
    # no variance map and (almost) no sky pixel: the lower half of the pixel distribution
    lower = background_noise(img, min_sky_fraction=0.99)
    assert lower.method == "lower half" and lower.level == 0.0 and lower.sigma > 0
    with pytest.raises(ValueError, match="finite"):
        background_noise(np.full((5, 5), np.nan))
    with pytest.raises(ValueError, match="mask"):
        background_noise(img, mask=np.zeros((3, 3), bool))


def test_check_region_and_warning():
    reg = np.zeros((10, 10), bool)
    reg[3:7, 3:7] = True
    c = check_region(reg)
    assert c.fraction == pytest.approx(0.16) and c.edge_pixels == 0 and not c.flagged
    warn_region(c, "test")  # silent
    reg[0, 4:6] = True
    c = check_region(reg)
    assert c.edge_pixels == 2 and c.touches_edge and c.flagged and not c.covers_most
    big = np.ones((10, 10), bool)
    big[0], big[-1], big[:, 0], big[:, -1] = False, False, False, False
    c = check_region(big)
    assert c.fraction == pytest.approx(0.64) and c.covers_most and not c.touches_edge
    with pytest.warns(RegionWarning, match=r"covers 64.0 % of the stamp.*band_x"):
        warn_region(c, "segments of band_x")
    assert issubclass(RegionWarning, UserWarning)
    with pytest.raises(ValueError, match="max_fraction"):
        check_region(reg, max_fraction=0)


def _wcs_header(n, crval=(150.0, 2.0), scale=1.0):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crpix = [(n + 1) / 2, (n + 1) / 2]
    w.wcs.crval = list(crval)
    w.wcs.cdelt = [-scale / 3600, scale / 3600]
    return w


def test_read_region_mask(tmp_path):
    n = 30
    w = _wcs_header(n)
    mask = ellipse_region((n, n), radius_sma=8)
    path = tmp_path / "mask.fits"
    fits.PrimaryHDU(mask.astype(np.int16), header=w.to_header()).writeto(path)
    back = read_region_mask(path, (n, n), w)
    assert np.array_equal(back, mask)
    # no WCS in the file: the shape decides
    bare = tmp_path / "bare.fits"
    fits.PrimaryHDU(mask.astype(np.float32)).writeto(bare)
    assert np.array_equal(read_region_mask(bare, (n, n), w), mask)
    with pytest.raises(ValueError, match=r"mask\.fits: shape \(30, 30\) differs"):
        read_region_mask(path, (31, 31), w)
    shifted = _wcs_header(n, crval=(150.0 + 3 / 3600, 2.0))
    with pytest.raises(ValueError, match=r"mask\.fits: its WCS is not the stamp grid"):
        read_region_mask(path, (n, n), shifted)
    empty = tmp_path / "empty.fits"
    fits.PrimaryHDU(np.zeros((n, n))).writeto(empty)
    with pytest.raises(ValueError, match=r"empty\.fits: no non-zero"):
        read_region_mask(empty, (n, n))
    with pytest.raises(FileNotFoundError, match=r"nothere\.fits"):
        read_region_mask(tmp_path / "nothere.fits", (n, n))
    text = tmp_path / "text.fits"
    text.write_text("not a FITS file")
    with pytest.raises(ValueError, match=r"text\.fits"):
        read_region_mask(text, (n, n))
