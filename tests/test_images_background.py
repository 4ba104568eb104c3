"""Background estimation with photutils Background2D and sep source masking."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from pixedfit.images.background import subtract_background


def _image(seed=0, n=200, sigma=0.5):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:n, 0:n]
    sky = 10.0 + 0.01 * x + 0.005 * y
    src = np.zeros((n, n))
    for xc, yc, a in ((50, 60, 50.0), (140, 120, 80.0), (100, 170, 30.0)):
        src += a * np.exp(-0.5 * ((x - xc) ** 2 + (y - yc) ** 2) / 3.0**2)
    return sky, src, sky + src + rng.normal(0, sigma, (n, n))


def test_recovers_gradient_and_rms(tmp_path):
    sky, _src, img = _image()
    res = subtract_background(img, box_size=25)
    assert res.source_mask[60, 50] and res.source_mask[120, 140]
    inner = (slice(20, 180), slice(20, 180))
    assert np.max(np.abs(res.background - sky)[inner]) < 0.25
    assert np.median(np.abs(res.background - sky)[inner]) < 0.05
    assert np.median(res.rms) == pytest.approx(0.5, rel=0.05)
    assert np.allclose(res.subtracted, img - res.background)
    # masking sources removes their bias on the background
    plain = subtract_background(img, box_size=25, mask_sources=False)
    assert np.abs(res.background - sky)[120, 140] < np.abs(plain.background - sky)[120, 140]
    paths = res.write(tmp_path, "img.fits")
    assert [p.name for p in paths] == ["skybg_img.fits", "skybgrms_img.fits", "skybgsub_img.fits"]
    assert np.allclose(fits.getdata(paths[2]), res.subtracted)


def test_nan_border_kept_and_bad_input():
    _, _, img = _image(n=120)
    img[:, :10] = np.nan
    res = subtract_background(img, box_size=20)
    assert np.all(np.isnan(res.subtracted[:, :10])) and np.all(np.isfinite(res.subtracted[:, 10:]))
    with pytest.raises(ValueError, match="no finite"):
        subtract_background(np.full((50, 50), np.nan))
    with pytest.raises(ValueError, match="2-D"):
        subtract_background(np.ones(10))
