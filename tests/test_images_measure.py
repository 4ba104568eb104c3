"""Measurements on cubes (apertures, SEDs, profiles) and plots."""

from __future__ import annotations

import numpy as np
import pytest

from pixedfit.cubes import FluxCube
from pixedfit.images.measure import (
    aperture_mask,
    aperture_photometry,
    brightest_central_pixel,
    flux_radial_profile,
    pixel_seds,
    snr_radial_profile,
    total_sed,
)
from pixedfit.images.plots import plot_flux_maps, plot_region, plot_segmentation, plot_stamps
from pixedfit.images.psf import gaussian_psf, kernel_noise_correlation


def _cube():
    n = 41
    y, x = np.mgrid[0:n, 0:n]
    base = np.exp(-0.5 * ((x - 21) ** 2 + (y - 19) ** 2) / 4.0**2)
    flux = np.stack([10 * base + 0.1, 20 * base + 0.1])
    err = np.full_like(flux, 0.5)
    region = np.hypot(x - 20, y - 20) <= 15
    return FluxCube(flux, err, ["sdss_g", "sdss_r"], region=region)


def test_sums_and_pixel_seds():
    cube = _cube()
    f, e = total_sed(cube)
    assert f[1] == pytest.approx(np.nansum(cube.flux[1]))
    assert e[0] == pytest.approx(0.5 * np.sqrt(cube.npix_region))
    ap = aperture_mask(cube.shape, 20, 20, 5)
    fa, ea = aperture_photometry(cube, 5)
    assert fa[0] == pytest.approx(cube.flux[0][ap].sum())
    # correlated noise makes summed errors larger
    rho = kernel_noise_correlation(gaussian_psf(3.0), half=6)
    _, ec = aperture_photometry(cube, 5, rho=[rho, rho])
    assert np.all(ec > 2 * ea)
    yy, xx, fl, er = pixel_seds(cube)
    assert fl.shape == (cube.npix_region, 2) and np.allclose(er, 0.5)
    assert fl[0, 1] == cube.flux[1, yy[0], xx[0]]
    assert brightest_central_pixel(cube, "sdss_r") == (19, 21)
    _, prof = flux_radial_profile(cube, 0, center=(21, 19))
    assert prof[0] > prof[3] > prof[6]
    _, snr = snr_radial_profile(cube, 1, center=(21, 19))
    assert snr[0] == pytest.approx(prof[0] * 2 / 0.5, rel=0.05)
    with pytest.raises(ValueError, match="no pixel"):
        aperture_photometry(cube, 2, x=0, y=0)


def test_plots(tmp_path):
    cube = _cube()
    fig = plot_flux_maps(cube, tmp_path / "maps.png")
    assert (tmp_path / "maps.png").stat().st_size > 1000 and len(fig.axes) >= 2
    plot_stamps([cube.flux[0]], ["g"], tmp_path / "s.png")
    plot_segmentation([cube.region.astype(int)], ["seg"], tmp_path / "seg.png")
    plot_region(cube.flux[0], cube.region, path=tmp_path / "reg.png")
    assert all((tmp_path / n).is_file() for n in ("s.png", "seg.png", "reg.png"))
    import matplotlib.pyplot as plt

    plt.close("all")
