"""Cut-outs, flux-conserving reprojection and the noise correlation of the chain."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.wcs import WCS

from pixedfit.images.align import (
    binned_variance,
    box_variance_factor,
    chain_noise_correlation,
    cutout,
    fix_cutout_wcs,
    reproject_image,
    target_grid,
)
from pixedfit.images.psf import convolve_image, gaussian_psf, kernel_noise_correlation

RA, DEC = 150.0, 2.0


def make_wcs(scale_arcsec, shape, rot_deg=0.0, offset=(0.0, 0.0)):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [RA, DEC]
    w.wcs.crpix = [(shape[1] - 1) / 2 + 1 + offset[0], (shape[0] - 1) / 2 + 1 + offset[1]]
    s = scale_arcsec / 3600.0
    t = np.radians(rot_deg)
    w.wcs.cd = [[-s * np.cos(t), s * np.sin(t)], [s * np.sin(t), s * np.cos(t)]]
    w.wcs.set()
    return w


def galaxy(shape, scale, re_arcsec=4.0, total=1000.0):
    ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx]
    r = np.hypot(x - (nx - 1) / 2, (y - (ny - 1) / 2) / 0.7) * scale
    img = np.exp(-r / (re_arcsec / 1.678))
    return img * total / img.sum()


def test_cutout_centre_and_errors():
    shape = (101, 121)
    w = make_wcs(0.5, shape)
    img = np.arange(shape[0] * shape[1], dtype=float).reshape(shape)
    cut, var, wc = cutout(img, w, RA, DEC, (21, 21), variance=np.ones(shape))
    # target exactly on the central pixel, no one-pixel shift
    assert cut[10, 10] == img[50, 60]
    x, y = wc.world_to_pixel_values(RA, DEC)
    assert x == pytest.approx(10.0) and y == pytest.approx(10.0)
    assert var.shape == (21, 21)
    # partially outside -> NaN border
    cut2, _, _ = cutout(img, w, *w.pixel_to_world_values(2, 50), (21, 21))
    assert np.isnan(cut2[10, :5]).all() and np.isfinite(cut2[10, 10:]).all()
    with pytest.raises(ValueError, match="does not cover the target"):
        cutout(img, w, RA + 1.0, DEC, (21, 21))
    with pytest.raises(ValueError, match="no WCS"):
        cutout(img, None, RA, DEC, (21, 21))
    from astropy.io import fits

    with pytest.raises(ValueError, match="celestial WCS"):
        cutout(img, fits.Header({"NAXIS": 2}), RA, DEC, (21, 21))


def test_fix_cutout_wcs():
    w = make_wcs(0.4, (500, 500))
    hdr = w.to_header()
    fixed = WCS(fix_cutout_wcs(hdr, (200, 150)))
    assert np.allclose(fixed.pixel_to_world_values(0, 0), w.pixel_to_world_values(200, 150))


@pytest.mark.parametrize("rot", [0.0, 17.0])
def test_reprojection_conserves_aperture_flux(rot):
    shape_in, s_in = (301, 301), 0.3
    w_in = make_wcs(s_in, shape_in)
    img = galaxy(shape_in, s_in)
    w_out = target_grid(w_in, shape_in, RA, DEC, (61, 61))
    w_out = make_wcs(1.1, (61, 61), rot_deg=rot, offset=(0.3, -0.2))
    out, var = reproject_image(img, w_in, w_out, (61, 61), variance=np.ones(shape_in))
    # aperture of 20" radius
    def ap(im, w, r=20.0):
        yy, xx = np.indices(im.shape)
        xc, yc = w.world_to_pixel_values(RA, DEC)
        scale = np.sqrt(abs(np.linalg.det(w.pixel_scale_matrix))) * 3600
        return np.nansum(im[np.hypot(xx - xc, yy - yc) * scale <= r])

    assert ap(out, w_out) == pytest.approx(ap(img, w_in), rel=0.01)
    # variance reprojected like flux: the large-area total is conserved
    area_ratio = (1.1 / 0.3) ** 2
    assert np.nanmedian(var) == pytest.approx(area_ratio, rel=0.02)
    # surface-brightness images are not rescaled
    sb, _ = reproject_image(np.full(shape_in, 3.0), w_in, w_out, (61, 61),
                            surface_brightness=True)
    assert np.nanmedian(sb) == pytest.approx(3.0)


def test_binned_variance_with_kernel_correlation():
    k = gaussian_psf(3.0)
    rho = kernel_noise_correlation(k, half=8)
    var = np.full((30, 30), 2.0 * np.sum(k**2))
    mask = np.zeros((30, 30), bool)
    mask[5:25, 5:25] = True
    # large box: correlated variance approaches the input variance per pixel (ΣK = 1)
    v = binned_variance(var, mask, rho)
    assert v / (400 * 2.0) == pytest.approx(1.0, rel=0.15)
    assert binned_variance(var, mask) == pytest.approx(400 * var[0, 0])
    assert box_variance_factor(rho, 1) == 1.0
    assert box_variance_factor(rho, 20) == pytest.approx(v / binned_variance(var, mask), rel=1e-6)
    with pytest.raises(ValueError, match="empty"):
        binned_variance(var, np.zeros((30, 30), bool), rho)


@pytest.mark.slow
def test_noise_only_injections_give_unit_pulls():
    """Noise-only images through PSF matching + reprojection: binned pulls have σ ≈ 1."""
    shape_in, s_in, s_out, shape_out = (260, 260), 0.4, 1.0, (90, 90)
    w_in = make_wcs(s_in, shape_in)
    w_out = make_wcs(s_out, shape_out, rot_deg=8.0, offset=(0.37, 0.21))
    _, xx = np.indices(shape_in)
    var_in = 1.0 + 0.5 * xx / shape_in[1]
    k = gaussian_psf(4.0)

    def apply(noise):
        conv, _ = convolve_image(noise, None, k)
        out, _ = reproject_image(conv, w_in, w_out, shape_out)
        return out

    _, var_conv = convolve_image(np.zeros(shape_in), var_in, k)
    _, var_out = reproject_image(np.zeros(shape_in), w_in, w_out, shape_out, variance=var_conv)
    chain = chain_noise_correlation(var_in, var_out, apply, half=6, seed=0)
    var_true = var_out * chain.pixel_factor
    rng = np.random.default_rng(123)
    pulls = {1: [], 4: [], 10: []}
    naive = {10: []}
    for _ in range(6):
        out = apply(rng.standard_normal(shape_in) * np.sqrt(var_in))
        for side in pulls:
            for y0 in range(5, shape_out[0] - side - 5, side + 1):
                for x0 in range(5, shape_out[1] - side - 5, side + 1):
                    m = np.zeros(shape_out, bool)
                    m[y0 : y0 + side, x0 : x0 + side] = True
                    if not np.all(np.isfinite(out[m])):
                        continue
                    s = out[m].sum()
                    pulls[side].append(s / np.sqrt(binned_variance(var_true, m, chain.rho)))
                    if side in naive:
                        naive[side].append(s / np.sqrt(binned_variance(var_true, m)))
    for side, p in pulls.items():
        assert np.std(p) == pytest.approx(1.0, abs=0.1), side
    # ignoring the correlation would underestimate binned errors badly
    assert np.std(naive[10]) > 1.5
