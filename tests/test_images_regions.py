"""Segmentation with sep, merged regions, ellipses, rectangles and star masks."""

from __future__ import annotations

import numpy as np
import pytest

from pixedfit.images.regions import (
    central_segment,
    ellipse_region,
    galaxy_region,
    mask_stars,
    rectangular_region,
    segmentation_map,
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
