"""IFS on real cubes: variance units, error-scale check, PSF fallback, partial filter
coverage, blurring and registration (real MUSE sub-cube + synthetic cubes)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits

from ifs_synth import galaxy, imaging, tan_wcs
from pixedfit.filters import (
    PartialCoverageWarning,
    add_filter,
    filter_weights,
    get_filter_curve,
    photometry,
)
from pixedfit.ifs.generators import (
    califa_wave_grid,
    manga_wave_grid,
    write_califa_cube,
    write_manga_logcube,
)
from pixedfit.ifs.readers import (
    ErrorScaleWarning,
    IFSCube,
    error_scale,
    read_califa,
    read_generic,
    read_manga,
    read_muse,
)
from pixedfit.ifs.registration import (
    band_image,
    blur_cube,
    blur_image,
    blur_photometry,
    register_cube,
)
from pixedfit.ifs.spatial import match_imgifs_spatial
from pixedfit.images.align import reproject_image
from pixedfit.images.psf import gaussian_psf

MUSE_FILE = Path("muse_udf_subcube") / "subcub_mosaic.fits.gz"
TOPHAT = "muse_tophat_5050"
ESO_STAT = "(10**(-20)*erg/s/cm**2/Angstrom)**2"
BAD_STAT = "10**(-20)*erg/s/cm**2/Angstrom**2"


def _muse_copy(src: Path, dest: Path, stat_bunit: str | None = None,
               data_bunit: str = "10**(-20)*erg/s/cm**2/Angstrom", stat_factor: float = 1.0,
               primary: dict | None = None, drop_fsf: bool = False) -> Path:
    with fits.open(src) as h:
        h["DATA"].header["BUNIT"] = data_bunit
        if stat_bunit is not None:
            h["STAT"].header["BUNIT"] = stat_bunit
        h["STAT"].data = (h["STAT"].data * stat_factor).astype(np.float32)
        hdr = h[0].header
        if drop_fsf:
            for key in [k for k in hdr if k.startswith("FSF")]:
                del hdr[key]
        for key, val in (primary or {}).items():
            hdr[key] = val
        h.writeto(dest)
    return dest


def _tophat() -> None:
    wave = np.linspace(4790.0, 5310.0, 53)
    add_filter(TOPHAT, wave, ((wave > 4800.0) & (wave < 5300.0)).astype(float))


# --------------------------------------------------------------------------- units


def test_muse_stat_bunit_variants(shared_data: Path, tmp_path: Path) -> None:
    """The defect: a STAT BUNIT '10**(-20)*erg/s/cm**2/Angstrom**2' was read as a variance
    scale of 1e-20 (errors 1e10 too large). Every spelling now gives the same errors."""
    src = shared_data / MUSE_FILE
    with fits.open(src) as h:
        stat = h["STAT"].data[100].astype(float)
    expect = np.sqrt(stat) * 1e-20
    eso = read_muse(_muse_copy(src, tmp_path / "eso.fits", ESO_STAT))
    np.testing.assert_allclose(eso.err[100], expect, rtol=1e-6)
    with pytest.warns(u.UnitsWarning, match="STAT BUNIT .* read as the square"):
        bad = read_muse(_muse_copy(src, tmp_path / "bad.fits", BAD_STAT))
    np.testing.assert_allclose(bad.err[100], expect, rtol=1e-6)
    assert bad.error_scale == pytest.approx(1.0, abs=0.2)
    # an explicit scale overrides the header
    over = read_muse(tmp_path / "bad.fits", var_unit=1e-40)
    np.testing.assert_allclose(over.err[100], expect, rtol=1e-6)
    with pytest.raises(ValueError, match=r"HDU STAT BUNIT 'adu\*\*2'.*var_unit"):
        read_muse(_muse_copy(src, tmp_path / "adu.fits", "adu**2"))
    with pytest.raises(ValueError, match="HDU DATA: BUNIT 'adu'"):
        read_muse(_muse_copy(src, tmp_path / "adu2.fits", ESO_STAT, data_bunit="adu"))
    # 'A' is Angstrom in BUNITs, never Ampere
    gen = read_generic(_muse_copy(src, tmp_path / "a.fits", "1e-40 erg**2/s**2/cm**4/A**2",
                                  data_bunit="1e-20 erg/s/cm2/A"),
                       flux_ext="DATA", var_ext="STAT", psf_fwhm=0.7)
    np.testing.assert_allclose(gen.err[100], expect, rtol=1e-6)


# --------------------------------------------------------------------------- error scale


def test_error_scale_real_muse(shared_data: Path) -> None:
    """Real MUSE pixel-error pulls: standard deviation within 20 % of 1 (and 1e-10 with the
    old variance scale)."""
    cube = read_muse(shared_data / MUSE_FILE)
    assert cube.error_scale == pytest.approx(1.0, abs=0.2)
    ratio, n = error_scale(cube.flux, cube.err * 1e10)
    assert ratio == pytest.approx(cube.error_scale * 1e-10, rel=1e-9, abs=0) and n > 400_000
    # independent check: pulls about a 31-channel running median
    from scipy.ndimage import median_filter

    smooth = median_filter(cube.flux, size=(31, 1, 1), mode="nearest")
    pull = ((cube.flux - smooth) / cube.err)[20:-20]
    assert 0.8 < np.std(pull) < 1.2


def test_error_scale_estimator_is_robust() -> None:
    rng = np.random.default_rng(7)
    wave = np.linspace(4000.0, 7000.0, 800)
    cont = (1 + 0.3 * np.sin(wave / 300.0))[:, None, None] * np.ones((1, 6, 6))
    sigma = 0.02
    flux = cont + rng.normal(size=cont.shape) * sigma
    clean = error_scale(flux, np.full(flux.shape, sigma))[0]
    flux[::100] += 5.0  # emission lines / cosmic rays in 1 % of the channels
    assert error_scale(flux, np.full(flux.shape, sigma))[0] == pytest.approx(clean, rel=0.05)
    for k in (0.2, 1.0, 5.0):
        ratio, _ = error_scale(flux, np.full(flux.shape, sigma * k))
        assert ratio == pytest.approx(1.0 / k, rel=0.06)


def _noisy(shape: tuple[int, int, int], seed: int, level: float) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape) * level


@pytest.mark.parametrize("survey", ["manga", "califa", "muse", "generic"])
def test_every_reader_warns_on_wrong_errors(survey: str, tmp_path: Path,
                                            shared_data: Path) -> None:
    """Errors 5x too small: a warning naming the file, the ratio kept on the cube."""
    wcs = tan_wcs(0.5, (8, 8))
    sig = 1e-18
    if survey == "manga":
        wave = manga_wave_grid(10)
        flux = 1e-17 + _noisy((wave.size, 8, 8), 1, sig)
        path = tmp_path / "manga.fits"
        write_manga_logcube(path, wave, flux, np.full(flux.shape, sig / 5), wcs)
        good = read_manga
    elif survey == "califa":
        wave = califa_wave_grid("V500")[::4]
        flux = 1e-17 + _noisy((wave.size, 8, 8), 2, sig)
        path = tmp_path / "g.V500.rscube.fits"
        write_califa_cube(path, wave, flux, np.full(flux.shape, sig / 5),
                          tan_wcs(1.0, (8, 8)), setup="V500")
        good = read_califa
    elif survey == "muse":
        path = _muse_copy(shared_data / MUSE_FILE, tmp_path / "m.fits", ESO_STAT,
                          stat_factor=1 / 25)
        good = read_muse
    else:
        wave = np.linspace(5000.0, 6000.0, 300)
        flux = 1.0 + _noisy((wave.size, 8, 8), 3, 0.1)
        hdr = wcs.to_header()
        hdr.update({"CTYPE3": "WAVE", "CRVAL3": 5000.0, "CD3_3": float(wave[1] - wave[0]),
                    "CRPIX3": 1.0, "CUNIT3": "Angstrom", "BUNIT": "1e-17 erg/s/cm2/Angstrom"})
        path = tmp_path / "gen.fits"
        fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(flux, hdr, name="SCI"),
                      fits.ImageHDU(np.full(flux.shape, 0.02), name="ERR")]).writeto(path)

        def good(p: Path, **kw: object) -> IFSCube:
            return read_generic(p, flux_ext="SCI", err_ext="ERR", psf_fwhm=1.0, **kw)

    with pytest.warns(ErrorScaleWarning, match=str(path.name)):
        cube = good(path)
    assert cube.error_scale == pytest.approx(5.0, rel=0.1)
    assert good(path, check_errors=False).error_scale is None


# --------------------------------------------------------------------------- PSF


def test_muse_psf_fallbacks(shared_data: Path, tmp_path: Path) -> None:
    """Without FSF keywords the PSF came out unknown and matching stopped; now the seeing
    keywords give it (reported), in a documented order."""
    src = shared_data / MUSE_FILE
    path = _muse_copy(src, tmp_path / "ia.fits", ESO_STAT, drop_fsf=True,
                      primary={"HIERARCH ESO TEL IA FWHM": 0.8})
    with pytest.warns(UserWarning, match="ESO TEL IA FWHM"):
        cube = read_muse(path)
    np.testing.assert_allclose(cube.psf_fwhm_per_wave(), 0.8 * (cube.wave / 5000.0) ** -0.2)
    assert "ESO TEL IA FWHM" in cube.psf_source
    # the real header has only a DIMM value (END = 0.79; START = -1 is invalid)
    with pytest.warns(UserWarning, match="AMBI FWHM"):
        dimm = read_muse(_muse_copy(src, tmp_path / "dimm.fits", ESO_STAT, drop_fsf=True))
    x = 0.5 * (1.031 + 1.011)
    np.testing.assert_allclose(dimm.psf_fwhm_per_wave(),
                               0.79 * x**0.6 * (dimm.wave / 5000.0) ** -0.2)
    with pytest.warns(UserWarning, match="SKY_RES"):
        p3 = read_muse(_muse_copy(src, tmp_path / "p3.fits", ESO_STAT, drop_fsf=True,
                                  primary={"SKY_RES": 0.66, "HIERARCH ESO TEL IA FWHM": 0.8}))
    assert p3.psf_fwhm_per_wave() == pytest.approx(0.66)
    arg = read_muse(tmp_path / "ia.fits", psf_fwhm=0.9)
    assert arg.psf_fwhm == 0.9 and arg.psf_source == "argument psf_fwhm"
    fsf = read_muse(src)
    assert fsf.psf_source.startswith("MPDAF FSF")
    none = _muse_copy(src, tmp_path / "none.fits", ESO_STAT, drop_fsf=True,
                      primary={"HIERARCH ESO TEL AMBI FWHM END": -1.0})
    unknown = read_muse(none)
    with pytest.raises(ValueError, match=r"ESO TEL IA FWHM.*pass psf_fwhm"):
        unknown.psf_fwhm_per_wave()


# --------------------------------------------------------------------------- coverage


def test_partial_filter_coverage(shared_data: Path) -> None:
    """photometry refused any spectrum missing a filter's negligible tails; now it uses the
    covered part above min_coverage, reports the missing weight and refuses below."""
    w, t = get_filter_curve("sdss_r")
    photon = t * w
    cum = np.concatenate(([0.0], np.cumsum(0.5 * np.diff(w) * (photon[1:] + photon[:-1]))))
    cut = float(np.interp(0.995 * cum[-1], cum, w))  # 0.5 % of the weight beyond
    lam = np.linspace(4000.0, cut, 3000)
    with pytest.warns(PartialCoverageWarning, match=r"'sdss_r': 0\.\d\d% of its"):
        fw = filter_weights("sdss_r", lam)
    # numpy reference on a fine grid (curve linear between its samples)
    full = np.linspace(w[0], w[-1], 400001)
    fine = full[full <= cut]
    tfull = np.interp(full, w, t)
    tf = tfull[full <= cut]
    ref_missing = 1 - np.trapezoid(tf * fine, fine) / np.trapezoid(tfull * full, full)
    assert 0.003 < ref_missing < 0.006
    assert fw.missing[0] == pytest.approx(ref_missing, abs=1e-5)
    # a linear spectrum: the photon-weighted mean over the covered part
    ref = np.trapezoid(fine * tf * fine, fine) / np.trapezoid(tf * fine, fine)
    with pytest.warns(PartialCoverageWarning):
        got = photometry(lam, lam, "sdss_r")
    assert got[0] == pytest.approx(ref, rel=1e-5)
    refused = r"'sdss_r'.*covers 99\.\d\d% .*below min_coverage = 99\.90%"
    with pytest.raises(ValueError, match=refused):
        photometry(lam, lam, "sdss_r", min_coverage=0.999)
    # the real MUSE range misses 4.6 % of HST F814W: refused by default, allowed at 95 %
    cube = read_muse(shared_data / MUSE_FILE)
    wide = np.linspace(4750.0, 9351.25, 3682)
    with pytest.raises(ValueError, match="acs_wfc_f814w"):
        photometry(wide, np.ones(wide.size), "acs_wfc_f814w")
    with pytest.warns(PartialCoverageWarning, match="4.6"):
        assert photometry(wide, np.ones(wide.size), "acs_wfc_f814w",
                          min_coverage=0.95)[0] == pytest.approx(1.0)
    assert cube.wave[-1] < 5400.0


# --------------------------------------------------------------------------- blurring


def _second_moment(img: np.ndarray) -> float:
    yy, xx = np.indices(img.shape)
    s = img.sum()
    cy, cx = (yy * img).sum() / s, (xx * img).sum() / s
    return float((((yy - cy) ** 2 + (xx - cx) ** 2) * img).sum() / s / 2)


def test_blur_image_reaches_target_and_propagates_variance() -> None:
    scale, own, target = 0.2, 0.6, 1.4
    psf = gaussian_psf(own / scale, 81)
    out, _ = blur_image(psf, None, own, target, scale)
    sigma_t = target / scale / (2 * math.sqrt(2 * math.log(2)))
    assert _second_moment(out) == pytest.approx(sigma_t**2 + 1 / 12, rel=0.01)
    assert out.sum() == pytest.approx(1.0, rel=1e-6)
    rng = np.random.default_rng(3)
    noise = rng.normal(size=(400, 400)) * 2.0
    blurred, var = blur_image(noise, np.full(noise.shape, 4.0), own, target, scale)
    inner = (slice(40, -40), slice(40, -40))
    assert np.var(blurred[inner]) == pytest.approx(np.median(var[inner]), rel=0.05)
    with pytest.raises(ValueError, match="cannot be sharpened"):
        blur_image(psf, None, 1.5, 1.0, scale)


def test_blur_cube_and_photometry(shared_data: Path) -> None:
    cube = read_muse(shared_data / MUSE_FILE)
    out = blur_cube(cube, 1.2)
    assert np.all(out.psf_fwhm_per_wave() == 1.2) and "blurred" in out.psf_source
    # errors: variance ⊗ K² is exact for independent spaxels (test above); MUSE spaxels
    # are positively correlated by the pipeline's resampling, so the measured scatter of
    # the blurred cube exceeds the propagated errors somewhat (1.22 measured)
    ratio, _ = error_scale(out.flux, out.err)
    assert 1.0 < ratio < 1.4
    assert np.nanmedian(out.err) < 0.5 * np.nanmedian(cube.err)
    gal = galaxy()
    phot = imaging(gal, ["sdss_r"], tan_wcs(0.5, (30, 30)), (30, 30), 1.0)
    wide = blur_photometry(phot, 2.0)
    assert wide.header["PSFFWHM"] == 2.0 and wide.header["PSFBLUR"] == 1.0
    truth = imaging(gal, ["sdss_r"], tan_wcs(0.5, (30, 30)), (30, 30), 2.0)
    peak = truth.flux[0].max()
    assert np.max(np.abs(wide.flux[0] - truth.flux[0])[5:-5, 5:-5]) < 0.01 * peak


# --------------------------------------------------------------------------- registration


def test_register_recovers_a_known_shift() -> None:
    gal = galaxy()
    wave = manga_wave_grid(8)
    true = tan_wcs(0.5, (30, 30))
    flux = gal.cube(wave, true, (30, 30), 1.5)
    err = np.full(flux.shape, 0.01 * flux.max())
    noise = np.random.default_rng(1).normal(size=flux.shape) * err
    wimg = tan_wcs(0.2, (80, 80), rot=20)
    img = gal.image(["sdss_r"], wimg, (80, 80), 0.8)[0]
    for off in ((0.37, -0.62), (2.3, 1.4)):
        declared = tan_wcs(0.5, (30, 30), offset=off)
        cube = IFSCube(flux + noise, err, wave, np.zeros(flux.shape, bool), declared,
                       psf_fwhm=1.5)
        reg = register_cube(cube, img, wimg, "sdss_r", 0.8)
        assert reg.shift_pix == pytest.approx((-off[0], -off[1]), abs=0.02)
        sky = true.pixel_to_world_values(12.3, 17.1)
        np.testing.assert_allclose(reg.cube.wcs.pixel_to_world_values(12.3, 17.1), sky,
                                   atol=0.02 * 0.5 / 3600)
        assert reg.correlation > 0.99 and "sdss_r" in str(reg)
    with pytest.raises(ValueError, match="exceeds max_shift"):
        register_cube(cube, img, wimg, "sdss_r", 0.8, max_shift=0.5)


def _muse_image(cube: IFSCube, dra: float, ddec: float, fwhm: float
                ) -> tuple[np.ndarray, object, object]:
    """An image synthesised from the cube (tophat band, blurred to ``fwhm``, on a rotated
    0.1" grid, 3 % noise) whose WCS claims positions offset by (dra, ddec) arcsec."""
    ref, _ = band_image(cube, TOPHAT)
    ra, dec = cube.wcs.pixel_to_world_values(14.5, 14.5)
    shape = (50, 50)
    true = tan_wcs(0.1, shape, rot=-30, crval=(float(ra), float(dec)))
    b, _ = blur_image(ref, None, float(np.median(cube.psf_fwhm_per_wave())), fwhm, 0.2)
    img, _ = reproject_image(b, cube.wcs, true, shape)
    img = img + np.random.default_rng(4).normal(size=shape) * 0.03 * np.nanmax(img)
    declared = true.deepcopy()
    declared.wcs.crval = [true.wcs.crval[0] + dra / 3600 / math.cos(math.radians(dec)),
                          true.wcs.crval[1] + ddec / 3600]
    declared.wcs.set()
    return img, true, declared


def test_register_real_muse_on_offset_image(shared_data: Path) -> None:
    _tophat()
    cube = read_muse(shared_data / MUSE_FILE)
    for dra, ddec in ((0.4, -0.25), (-1.2, 0.3)):
        img, _, declared = _muse_image(cube, dra, ddec, 1.0)
        reg = register_cube(cube, img, declared, TOPHAT, 1.0)
        assert reg.offset_arcsec == pytest.approx((dra, ddec), abs=0.03)


def test_match_with_registration_and_blurred_photometry(shared_data: Path) -> None:
    """A sharper (0.8") image with a 0.5" WCS error: matching used to stop (IFS PSF broader
    than the image's) and ignore the offset; now the bands are blurred to the cube's PSF,
    the cube registered, and its synthetic band agrees with the image within 5 %."""
    from pixedfit.cubes import FluxCube

    _tophat()
    native = read_muse(shared_data / MUSE_FILE)
    img, _, declared = _muse_image(native, 0.5, 0.0, 0.8)
    cube = blur_cube(native, 1.0)  # the cube is now the broadest
    sub = (slice(10, 40), slice(10, 40))
    grid = declared[sub[0], sub[1]]
    hdr = fits.Header()
    hdr["PSFFWHM"] = 0.8
    phot = FluxCube(img[sub][None] / 1e-20, np.full((1, 30, 30), 0.03 * np.nanmax(img) / 1e-20),
                    [TOPHAT], unit=1e-20, wcs=grid, header=hdr, pixel_scale=0.1)
    with pytest.raises(ValueError, match="blur_photometry=True"):
        match_imgifs_spatial(phot, cube)
    sp = match_imgifs_spatial(phot, cube, blur_photometry=True, register=True)
    h = sp.photometry.header
    assert h["REGDRA"] == pytest.approx(0.5, abs=0.05) and h["REGBAND"] == TOPHAT
    assert h["PSFFWHM"] == pytest.approx(1.0) and h["PSFBLUR"] == 0.8
    assert "blurred" in h["IFSPSRC"]
    sel = sp.spec_region
    syn = photometry(sp.wave, sp.spec_flux[:, sel].T, TOPHAT)[:, 0]
    obs = sp.photometry.flux[0][sel]
    bright = obs > 0.3 * obs.max()
    assert bright.sum() >= 5
    assert np.median(np.abs(syn[bright] / obs[bright] - 1)) < 0.05
