"""Spatial matching of IFS cubes to imaging: operators, conservation, errors, end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ifs_synth import galaxy, imaging, tan_wcs
from pixedfit.binning import bin_pixels
from pixedfit.cubes import FluxCube, SpecPhotCube, read_cube
from pixedfit.filters import photometry
from pixedfit.ifs.generators import (
    califa_wave_grid,
    manga_wave_grid,
    write_califa_cube,
    write_manga_logcube,
)
from pixedfit.ifs.operators import (
    convolution_matrix,
    discrete_gaussian_kernel,
    psf_matching_kernels,
    reprojection_matrix,
    resampling_variance,
    smooth_spectra,
)
from pixedfit.ifs.readers import IFSCube, read_manga
from pixedfit.ifs.spatial import match_imgifs_spatial
from pixedfit.images.align import reproject_image
from pixedfit.images.extinction import f99_extinction
from pixedfit.images.psf import convolve_image

BANDS = ["sdss_g", "sdss_r", "sdss_i", "galex_nuv"]


# ----------------------------------------------------------------- operators


def test_reprojection_matrix_matches_reproject_image() -> None:
    wi, wo = tan_wcs(0.5, (30, 30)), tan_wcs(0.8, (24, 24), rot=25, offset=(0.3, -0.2))
    img = np.random.default_rng(0).random((30, 30))
    w = reprojection_matrix(wi, (30, 30), wo, (24, 24))
    ref, _ = reproject_image(img, wi, wo, (24, 24))
    mine = (w @ img.ravel()).reshape(24, 24)
    ok = np.isfinite(ref)
    assert ok.sum() > 250
    np.testing.assert_allclose(mine[ok], ref[ok], rtol=1e-8)
    # flux conservation: every input pixel lying well inside the output grid is fully spread
    frac = np.asarray(w.sum(axis=0)).ravel().reshape(30, 30)
    assert frac[12:18, 12:18] == pytest.approx(1.0, abs=1e-9)
    assert frac.max() <= 1.0 + 1e-9


def test_reprojection_matrix_finer_output() -> None:
    wi, wo = tan_wcs(1.0, (10, 10)), tan_wcs(0.4, (20, 20), rot=10)
    img = np.random.default_rng(1).random((10, 10))
    w = reprojection_matrix(wi, (10, 10), wo, (20, 20))
    ref, _ = reproject_image(img, wi, wo, (20, 20))
    ok = np.isfinite(ref)
    np.testing.assert_allclose((w @ img.ravel()).reshape(20, 20)[ok], ref[ok], rtol=1e-8)


def test_convolution_matrix_equals_fft() -> None:
    from scipy.signal import fftconvolve

    k = discrete_gaussian_kernel(3.0)
    img = np.random.default_rng(2).random((15, 17))
    c = convolution_matrix(k, img.shape)
    np.testing.assert_allclose((c @ img.ravel()).reshape(img.shape),
                               fftconvolve(img, k, mode="same"), atol=1e-12)


def test_discrete_kernel_second_moment() -> None:
    for fwhm in (2.0, 4.0, 7.0):
        k = discrete_gaussian_kernel(fwhm)
        c = (k.shape[0] - 1) / 2
        _, x = np.indices(k.shape)
        var = np.sum(k * (x - c) ** 2)
        # within the 5x sub-sampling of gaussian_psf (box variance (1 - 1/25)/12)
        assert var == pytest.approx((fwhm / 2.3548200450309493) ** 2, rel=6e-3)
    assert discrete_gaussian_kernel(0.3).shape == (1, 1)


def test_resampling_variance() -> None:
    wi = tan_wcs(0.5, (40, 40))
    aligned = tan_wcs(1.0, (20, 20))
    w = reprojection_matrix(wi, (40, 40), aligned, (20, 20))
    assert resampling_variance(w, (40, 40), 0.25) == pytest.approx(0.0, abs=1e-6)
    rotated = tan_wcs(1.0, (14, 14), rot=20, offset=(0.37, -0.21))
    w = reprojection_matrix(wi, (40, 40), rotated, (14, 14))
    assert 0.1 < resampling_variance(w, (40, 40), 0.25) < 0.25


def test_kernel_groups() -> None:
    psf = np.linspace(2.6, 2.4, 200)
    group, kern = psf_matching_kernels(psf, 3.0, 0.5, fwhm_tolerance=0.01)
    assert group.shape == (200,) and 5 < len(kern) < 40
    assert np.all(np.diff(group) >= 0)  # monotonic PSF -> ordered groups
    for k in kern:
        assert k.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="cannot be sharpened"):
        psf_matching_kernels(psf, 2.0, 0.5)


def test_smooth_spectra_conserves_line_flux_and_variance() -> None:
    wave = np.linspace(5000.0, 6000.0, 1001)
    line = np.exp(-0.5 * ((wave - 5500.0) / 2.0) ** 2)[:, None]
    var = np.full_like(line, 0.04)
    f, v = smooth_spectra(wave, line, var, 3.0)
    assert np.trapezoid(f[:, 0], wave) == pytest.approx(np.trapezoid(line[:, 0], wave), rel=1e-6)
    sig_tot = np.sqrt(2.0**2 + 3.0**2)
    assert f.max() == pytest.approx(2.0 / sig_tot, rel=1e-3)
    # white noise: variance reduced by sum of squared weights = 1/(2 sqrt(pi) sigma/dlam)
    assert v[500, 0] == pytest.approx(0.04 / (2 * np.sqrt(np.pi) * 3.0), rel=1e-3)
    lm = line.copy()
    lm[10] = np.nan
    f2, _ = smooth_spectra(wave, lm, var, 3.0)
    assert np.isnan(f2[10, 0]) and np.isfinite(f2[11, 0])
    with pytest.raises(ValueError, match="kernel_sigma"):
        smooth_spectra(wave, line, var, 0.0)


# ----------------------------------------------------------------- agreement


def _small_cube(nw: int = 12) -> tuple[IFSCube, FluxCube]:
    wi, wo = tan_wcs(0.5, (30, 30)), tan_wcs(0.8, (24, 24), rot=25, offset=(0.3, -0.2))
    rng = np.random.default_rng(1)
    wave = np.linspace(5000.0, 6000.0, nw)
    flux = rng.random((nw, 30, 30)) * 1e-17 + 1e-17
    flux[min(3, nw - 1), 10, 10] = np.nan
    cube = IFSCube(flux, np.full_like(flux, 1e-18), wave, np.zeros(flux.shape, bool), wi,
                   psf_fwhm=1.5)
    phot = FluxCube(np.ones((2, 24, 24)), np.full((2, 24, 24), 0.1), ["sdss_g", "sdss_r"],
                    wcs=wo)
    return cube, phot


def test_matches_per_slice_image_functions() -> None:
    """Kernel + reprojection equal pixedfit.images' convolve_image + reproject_image."""
    cube, phot = _small_cube()
    k = discrete_gaussian_kernel(np.sqrt(2.0**2 - 1.5**2) / 0.5)
    sp = match_imgifs_spatial(phot, cube, psf_fwhm_target=2.0, kernels=k)
    for ch in (0, 3):
        c, _ = convolve_image(cube.flux[ch], None, k)
        r, _ = reproject_image(c, cube.wcs, phot.wcs, phot.shape)
        m = sp.spec_flux[ch] * phot.unit
        assert np.array_equal(np.isfinite(r), np.isfinite(m))
        ok = np.isfinite(r)
        np.testing.assert_allclose(m[ok], r[ok], rtol=1e-8)
    # the masked spaxel removes the image pixels it overlaps in that channel only
    assert np.isfinite(sp.spec_flux[3]).sum() < np.isfinite(sp.spec_flux[2]).sum()


def test_variance_is_exact_propagation() -> None:
    """var_out = Σ_k M_jk² var_k: checked against a dense brute-force operator."""
    cube, phot = _small_cube(4)
    k = discrete_gaussian_kernel(2.5)
    # 0.5: the spaxel masked in one of the 4 channels stays in the region
    sp = match_imgifs_spatial(phot, cube, kernels=k, min_good_fraction=0.5,
                              covariance=None)  # the independent-spaxel formula
    n = 30 * 30
    w = reprojection_matrix(cube.wcs, (30, 30), phot.wcs, phot.shape)
    cols = []
    for i in range(n):
        e = np.zeros(n)
        e[i] = 1.0
        c, _ = convolve_image(e.reshape(30, 30), None, k)
        cols.append(w @ c.ravel())
    m = np.array(cols).T  # (n_out, n_in)
    var_ref = (m**2 @ (cube.err[0].ravel() ** 2)).reshape(phot.shape)
    ok = np.isfinite(sp.spec_err[0])
    np.testing.assert_allclose((sp.spec_err[0][ok] * phot.unit) ** 2, var_ref[ok], rtol=1e-8)


# ----------------------------------------------------------------- synthetic MaNGA


@pytest.fixture(scope="module")
def manga(tmp_path_factory: pytest.TempPathFactory) -> dict:
    gal = galaxy()
    wi = tan_wcs(0.5, (44, 44))
    wo = tan_wcs(1.0, (26, 26), rot=20, offset=(0.37, -0.21))
    wave = manga_wave_grid(4)
    psf = np.interp(wave, (4686.0, 6166.0, 7480.0, 8932.0), (2.6, 2.5, 2.45, 2.4))
    clean = gal.cube(wave, wi, (44, 44), psf)
    ebv = 0.05  # the true E(B−V); the file's EBVGAL is SFD98's, 1 / 0.86 of it (SF11)
    red = 10 ** (-0.4 * f99_extinction(wave, ebv))[:, None, None]
    sig = np.full(clean.shape, 1e-3 * clean.max())
    noisy = clean * red + np.random.default_rng(3).normal(size=clean.shape) * sig
    d = tmp_path_factory.mktemp("manga_match")
    write_manga_logcube(d / "clean.fits", wave, clean * red, sig, wi, ebv=ebv / 0.86)
    write_manga_logcube(d / "noisy.fits", wave, noisy, sig, wi, ebv=ebv / 0.86)
    phot = imaging(gal, BANDS, wo, (26, 26), 3.0)
    sp = match_imgifs_spatial(phot, d / "clean.fits", ifs_survey="manga",
                              output=d / "specphoto.fits",
                              reader_kwargs={"check_errors": False})  # noise-free
    # the synthetic noise is independent between spaxels: covariance=None (real MaNGA
    # cubes get the Law+2016 relation, tested in test_ifs_covariance.py)
    spn, noise = match_imgifs_spatial(phot, read_manga(d / "noisy.fits"), return_noise=True,
                                      covariance=None)
    return {"clean": clean, "wave": wave, "phot": phot, "sp": sp, "spn": spn, "dir": d,
            "noise": noise,
            "ifs": read_manga(d / "clean.fits", check_errors=False)}


def test_manga_total_flux_conserved(manga: dict) -> None:
    sp, ifs = manga["sp"], manga["ifs"]
    region = ifs.region()
    for lam in (4500.0, 5500.0, 6650.0 * 1.03 / 1.03, 8000.0):
        ch = int(np.argmin(np.abs(manga["wave"] - lam)))
        t_in = np.sum(manga["clean"][ch][region])  # extinction-corrected input
        t_out = np.nansum(sp.spec_flux[ch][sp.spec_region]) * sp.photometry.unit
        assert t_out / t_in == pytest.approx(1.0, abs=0.01)


def test_manga_spectra_reproduce_imaging(manga: dict) -> None:
    """Photometry of the matched spectra equals the images (PSF, grid, extinction)."""
    sp, phot = manga["sp"], manga["phot"]
    sel = sp.spec_region
    p = photometry(sp.wave, sp.spec_flux[:, sel].T, BANDS[:3])
    im = phot.flux[:3][:, sel].T
    rel = np.abs(p / im - 1)
    bright = im[:, 1] > 0.01 * im[:, 1].max()
    assert bright.sum() > 50
    assert np.median(rel[bright]) < 0.006
    assert rel[bright].max() < 0.025
    assert np.median(rel) < 0.01


def test_manga_pulls(manga: dict) -> None:
    pull = (manga["spn"].spec_flux - manga["sp"].spec_flux) / manga["spn"].spec_err
    pull = pull[np.isfinite(pull)]
    assert pull.size > 100000
    assert np.std(pull) == pytest.approx(1.0, abs=0.02)
    assert abs(np.mean(pull)) < 0.02


def test_manga_binned_errors_with_correlation(manga: dict) -> None:
    """Errors of spectra summed over 3x3 bins: ρ gives pulls ~1, quadrature sums do not."""
    sp, spn, noise = manga["sp"], manga["spn"], manga["noise"]
    assert noise.rho.shape[0] == noise.group.max() + 1
    z_rho, z_quad = [], []
    for y0 in range(6, 18, 3):
        for x0 in range(6, 18, 3):
            box = np.zeros(sp.spec_region.shape, dtype=bool)
            box[y0:y0 + 3, x0:x0 + 3] = True
            if not sp.spec_region[box].all():
                continue
            diff = np.sum((spn.spec_flux - sp.spec_flux)[:, box], axis=1)
            var = noise.binned_variance(spn.spec_err, box)
            z_rho.append(diff / np.sqrt(var))
            z_quad.append(diff / np.sqrt(np.sum(spn.spec_err[:, box] ** 2, axis=1)))
    assert len(z_rho) >= 9
    assert np.std(np.concatenate(z_rho)) == pytest.approx(1.0, abs=0.05)
    assert np.std(np.concatenate(z_quad)) > 1.5
    back = type(noise).read(manga["dir"] / "specphoto_specnoise.fits")
    assert back.rho.shape[1:] == noise.rho.shape[1:]


def test_manga_output_file(manga: dict) -> None:
    path = manga["dir"] / "specphoto.fits"
    cube = read_cube(path)
    assert isinstance(cube, SpecPhotCube)
    assert cube.ifs_survey == "manga"
    np.testing.assert_allclose(cube.spec_flux, manga["sp"].spec_flux, equal_nan=True)
    np.testing.assert_array_equal(cube.spec_region, manga["sp"].spec_region)
    h = cube.photometry.header
    assert cube.wave_medium == "vacuum" and h["IFSEBV"] == pytest.approx(0.05)
    assert h["IFSPIX"] == pytest.approx(0.5)
    from astropy.io import fits

    with fits.open(path) as hdul:
        assert hdul[0].data is None and hdul[1].name == "PHOTO_FLUX"


def test_manga_binning_end_to_end(manga: dict) -> None:
    """SpecPhotCube → binning: bins inside the IFS footprint carry summed spectra."""
    sp = manga["sp"]
    phot = sp.photometry
    region = sp.spec_region
    cube = SpecPhotCube(
        FluxCube(phot.flux[:3], phot.flux_err[:3], phot.filters[:3], region=region,
                 unit=phot.unit, wcs=phot.wcs, z=phot.z),
        sp.wave, sp.spec_flux, sp.spec_err, spec_region=region, ifs_survey="manga")
    binned = bin_pixels(cube, ref_band=1, min_bin_diameter=2.0, snr_target=[30, 30, 30])
    assert binned.nbins >= 3
    has = binned.bin_has_spec
    assert has.sum() == binned.nbins
    b = 0
    pix = binned.bin_map == b + 1
    np.testing.assert_allclose(binned.bin_spec_flux[b],
                               np.nansum(sp.spec_flux[:, pix], axis=1), rtol=1e-10)


# ----------------------------------------------------------------- CALIFA + options


def test_califa_comb_to_specphot(tmp_path: Path) -> None:
    gal = galaxy()
    wi = tan_wcs(1.0, (24, 24))
    wave = califa_wave_grid("COMB")[::3]
    clean = gal.cube(wave, wi, (24, 24), 2.5, medium="air")
    bad = np.zeros(clean.shape, dtype=bool)
    bad[:, :, :6] = True  # a masked strip (x < 5.5)
    path = tmp_path / "g.COMB.rscube.fits"
    write_califa_cube(path, wave, clean, np.full(clean.shape, 1e-19), wi, badpix=bad,
                      setup="COMB")
    wo = tan_wcs(0.6, (36, 36), rot=-15)
    phot = imaging(gal, ["sdss_g", "sdss_r"], wo, (36, 36), 3.0)
    sp = match_imgifs_spatial(phot, path, ifs_survey="califa", wave_medium="vacuum",
                              reader_kwargs={"check_errors": False})  # noise-free
    assert sp.ifs_survey == "califa"
    assert sp.wave[0] > wave[0]  # converted to vacuum
    sel = sp.spec_region
    p = photometry(sp.wave, sp.spec_flux[:, sel].T, ["sdss_r"])[:, 0]  # g starts < 3701 Å
    im = phot.flux[1][sel]
    # upsampling 1" spaxels to 0.6" pixels is blocky (flux-conserving reprojection keeps
    # a spaxel's surface brightness constant): compare apertures, not single pixels
    assert p.sum() / im.sum() == pytest.approx(1.0, abs=0.005)
    ys, xs = np.nonzero(sel)
    cy, cx = wo.world_to_pixel_values(gal.ra, gal.dec)[::-1]
    for radius in (2.0, 4.0, 6.0):
        inside = np.hypot(ys - float(cy), xs - float(cx)) * 0.6 <= radius
        assert p[inside].sum() / im[inside].sum() == pytest.approx(1.0, abs=0.01)
    # no image pixel of the spectral region overlaps the masked strip
    ra, dec = wo.pixel_to_world_values(xs, ys)
    x_ifs, _ = wi.world_to_pixel_values(ra, dec)
    assert np.min(x_ifs) > 5.5
    assert np.max(x_ifs) > 15.0


def test_smoothing_option_and_no_psf_match() -> None:
    cube, phot = _small_cube()
    a = match_imgifs_spatial(phot, cube, psf_fwhm_target=2.0, spec_smoothing=True,
                             kernel_sigma=100.0)
    assert a.photometry.header["SPECSIG"] == 100.0
    b = match_imgifs_spatial(phot, cube, psf_match=False)
    assert b.photometry.header["IFSPSFM"] is False
    assert np.nanstd(a.spec_flux[:, a.spec_region], axis=0).mean() < np.nanstd(
        b.spec_flux[:, b.spec_region], axis=0).mean()


def test_extinction_from_photometry_when_cube_has_none() -> None:
    cube, phot = _small_cube()
    reddened = FluxCube(phot.flux, phot.flux_err, phot.filters, wcs=phot.wcs, gal_ebv=0.1)
    a = match_imgifs_spatial(reddened, cube, psf_fwhm_target=2.0)
    b = match_imgifs_spatial(phot, cube, psf_fwhm_target=2.0)
    expect = 10 ** (0.4 * f99_extinction(cube.wave, 0.1))
    ratio = np.nanmedian((a.spec_flux / b.spec_flux).reshape(cube.wave.size, -1), axis=1)
    np.testing.assert_allclose(ratio, expect, rtol=1e-6)
    assert a.photometry.header["IFSEBV"] == pytest.approx(0.1)
    c = match_imgifs_spatial(reddened, cube, psf_fwhm_target=2.0, correct_extinction=False)
    np.testing.assert_allclose(c.spec_flux, b.spec_flux, equal_nan=True)


# ----------------------------------------------------------------- bad input


def test_errors() -> None:
    cube, phot = _small_cube()
    far = FluxCube(np.ones((1, 10, 10)), np.ones((1, 10, 10)), ["sdss_r"],
                   wcs=tan_wcs(0.8, (10, 10), crval=(151.0, 2.0)))
    with pytest.raises(ValueError, match="does not overlap"):
        match_imgifs_spatial(far, cube, psf_fwhm_target=2.0)
    ir = FluxCube(np.ones((2, 24, 24)), np.ones((2, 24, 24)), ["wise_w1", "wise_w2"],
                  wcs=phot.wcs)
    with pytest.raises(ValueError, match="outside every filter"):
        match_imgifs_spatial(ir, cube, psf_fwhm_target=2.0)
    with pytest.raises(ValueError, match="unknown IFS survey"):
        match_imgifs_spatial(phot, "whatever.fits", ifs_survey="kmos")
    with pytest.raises(ValueError, match="ifs_survey: required"):
        match_imgifs_spatial(phot, "whatever.fits")
    with pytest.raises(ValueError, match="PSFFWHM"):
        match_imgifs_spatial(phot, cube)
    with pytest.raises(ValueError, match="cannot be sharpened"):
        match_imgifs_spatial(phot, cube, psf_fwhm_target=1.0)
    nowcs = FluxCube(np.ones((1, 4, 4)), np.ones((1, 4, 4)), ["sdss_r"])
    with pytest.raises(ValueError, match="no WCS"):
        match_imgifs_spatial(nowcs, cube, psf_fwhm_target=2.0)
    with pytest.raises(TypeError, match="IFSCube"):
        match_imgifs_spatial(phot, np.ones(3))
    with pytest.raises(ValueError, match="kernels"):
        match_imgifs_spatial(phot, cube, kernels=np.ones((2, 3, 3)))
    unknown = IFSCube(cube.flux, cube.err, cube.wave, cube.mask, cube.wcs)
    with pytest.raises(ValueError, match="PSF FWHM"):
        match_imgifs_spatial(phot, unknown, psf_fwhm_target=2.0)
