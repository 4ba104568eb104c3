"""IFS cube readers: MaNGA and CALIFA layouts (synthetic files), MUSE (real sub-cube),
generic cubes, and their errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from ifs_synth import galaxy, tan_wcs
from pixedfit.ifs.generators import (
    califa_wave_grid,
    manga_wave_grid,
    write_califa_cube,
    write_manga_logcube,
)
from pixedfit.ifs.readers import (
    IFSCube,
    flux_unit_scale,
    read_califa,
    read_generic,
    read_ifs,
    read_manga,
    read_muse,
)

MUSE_FILE = Path("muse_udf_subcube") / "subcub_mosaic.fits.gz"


@pytest.fixture(scope="module")
def manga_case(tmp_path_factory: pytest.TempPathFactory) -> dict:
    gal = galaxy()
    wcs = tan_wcs(0.5, (20, 20), rot=0.0)
    wave = manga_wave_grid(8)
    flux = gal.cube(wave, wcs, (20, 20), 2.5)
    err = np.full(flux.shape, 1e-19)
    mask = np.zeros(flux.shape, dtype=np.int32)
    mask[:, 0, :] = 1  # NOCOV along one edge
    mask[100, 5, 5] = 1 << 10  # DONOTUSE
    mask[200, 6, 6] = 1 << 5  # a bit that is not masked by default
    path = tmp_path_factory.mktemp("manga") / "manga-9999-12701-LOGCUBE.fits"
    write_manga_logcube(path, wave, flux, err, wcs, mask=mask, ebv=0.03,
                        psf_fwhm=(2.6, 2.5, 2.45, 2.4))
    return {"path": path, "flux": flux, "err": err, "wave": wave, "wcs": wcs}


def test_manga_layout_and_units(manga_case: dict) -> None:
    with fits.open(manga_case["path"]) as h:
        names = [x.name for x in h]
        assert names[:7] == ["PRIMARY", "FLUX", "IVAR", "MASK", "WAVE", "SPECRES", "SPECRESD"]
        assert {"GIMG", "RIMG", "IIMG", "ZIMG"} <= set(names)
        assert h["FLUX"].header["CTYPE3"] == "WAVE-LOG"
        assert h[0].header["EBVGAL"] == 0.03
    cube = read_manga(manga_case["path"], check_errors=False)  # noise-free synthetic
    assert cube.survey == "manga" and cube.wave_medium == "vacuum"
    np.testing.assert_allclose(cube.wave, manga_case["wave"], rtol=1e-12)
    good = ~cube.mask
    np.testing.assert_allclose(cube.flux[good], manga_case["flux"][good], rtol=2e-6)
    np.testing.assert_allclose(cube.err[good], 1e-19, rtol=2e-6)
    # EBVGAL is SFD98: put on the Schlafly & Finkbeiner (2011) scale, as the images' E(B−V)
    assert cube.gal_ebv == pytest.approx(0.86 * 0.03, rel=1e-12)
    assert not cube.extinction_corrected
    assert cube.pixel_scale == pytest.approx(0.5)
    assert cube.resolution is not None and cube.resolution.shape == cube.wave.shape
    psf = cube.psf_fwhm_per_wave()
    assert psf[0] == pytest.approx(2.6) and psf[-1] == pytest.approx(2.4)
    assert np.all(np.diff(psf) <= 0)


def test_manga_mask_bits(manga_case: dict) -> None:
    cube = read_manga(manga_case["path"], check_errors=False)  # noise-free synthetic
    assert cube.mask[:, 0, :].all() and np.isnan(cube.flux[:, 0, :]).all()
    assert cube.mask[100, 5, 5] and np.isnan(cube.flux[100, 5, 5])
    assert not cube.mask[200, 6, 6]
    strict = read_manga(manga_case["path"], mask_bits=(0, 5, 10), check_errors=False)
    assert strict.mask[200, 6, 6]
    assert cube.region().sum() == 20 * 19


def test_manga_reconstructed_image_matches_cube(manga_case: dict) -> None:
    from pixedfit.filters import get_filter_curve, photometry, pivot_wavelength
    from pixedfit.units import C_AA_PER_S

    with fits.open(manga_case["path"]) as h:
        gimg = h["GIMG"].data.astype(float)
    f = photometry(manga_case["wave"], manga_case["flux"][:, 10, 10], "sdss_g")
    piv = pivot_wavelength(*get_filter_curve("sdss_g"))
    assert gimg[10, 10] == pytest.approx(f * piv**2 / C_AA_PER_S / 3.631e-29, rel=1e-5)


@pytest.mark.parametrize("setup", ["V500", "COMB"])
def test_califa_round_trip(tmp_path: Path, setup: str) -> None:
    wave = califa_wave_grid(setup)[::6]
    wcs = tan_wcs(1.0, (12, 14))
    rng = np.random.default_rng(1)
    flux = rng.uniform(1, 2, (wave.size, 12, 14)) * 1e-17
    err = np.full(flux.shape, 2e-18)
    bad = np.zeros(flux.shape, dtype=bool)
    bad[:, 0, 0] = True
    bad[10, 3, 4] = True
    path = tmp_path / f"NGC0001.{setup}.rscube.fits"
    write_califa_cube(path, wave, flux, err, wcs, badpix=bad, setup=setup)
    with fits.open(path) as h:
        assert [x.name for x in h] == ["PRIMARY", "ERROR", "ERRWEIGHT", "BADPIX", "FIBCOVER"]
        assert h[0].header["CDELT1"] == pytest.approx(-1 / 3600)
    cube = read_califa(path)
    assert cube.survey == "califa" and cube.wave_medium == "air"
    assert cube.extinction_corrected and cube.gal_ebv is None
    np.testing.assert_allclose(cube.wave, wave)
    np.testing.assert_array_equal(cube.mask, bad)
    np.testing.assert_allclose(cube.flux[~bad], flux[~bad], rtol=1e-6)
    np.testing.assert_allclose(cube.err[~bad], 2e-18, rtol=1e-6)
    assert cube.resolution == pytest.approx(wave / 6.0)
    assert cube.psf_fwhm == 2.5 and cube.pixel_scale == pytest.approx(1.0)
    raw = read_califa(path, extinction_corrected=False, gal_ebv=0.02, psf_fwhm=2.7)
    assert not raw.extinction_corrected and raw.gal_ebv == 0.02 and raw.psf_fwhm == 2.7
    sky = wcs.pixel_to_world_values(3.0, 4.0)
    np.testing.assert_allclose(cube.wcs.pixel_to_world_values(3.0, 4.0), sky, atol=1e-10)


def test_califa_setup_inference(tmp_path: Path) -> None:
    wave = califa_wave_grid("V500")
    wcs = tan_wcs(1.0, (3, 3))
    f = np.ones((wave.size, 3, 3)) * 1e-17
    p = tmp_path / "x.fits"
    write_califa_cube(p, wave, f, f * 0.1, wcs, setup="V500")
    with fits.open(p, mode="update") as h:
        del h[0].header["SETUP"]
    quiet = {"check_errors": False}  # noise-free synthetic cube
    assert read_califa(p, **quiet).resolution[0] == pytest.approx(wave[0] / 6.0)
    assert read_califa(p, setup="V1200", **quiet).resolution[0] == pytest.approx(wave[0] / 2.3)
    with pytest.raises(ValueError, match="setup"):
        read_califa(p, setup="V9")


def test_generic_reader(tmp_path: Path) -> None:
    wcs = tan_wcs(0.3, (5, 6))
    hdr = wcs.to_header()
    hdr["CTYPE3"], hdr["CRVAL3"], hdr["CDELT3"], hdr["CRPIX3"] = "AWAV", 5000.0, 2.0, 1.0
    hdr["CUNIT3"] = "Angstrom"
    hdr["BUNIT"] = "1e-18 erg / (s cm2 Angstrom)"
    data = np.ones((7, 5, 6))
    var = np.full((7, 5, 6), 4.0)
    mask = np.zeros((7, 5, 6), dtype=np.uint8)
    mask[2, 1, 1] = 1
    path = tmp_path / "g.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, hdr, name="SCI"),
                  fits.ImageHDU(var, name="VAR"), fits.ImageHDU(mask, name="DQ")]
                 ).writeto(path)
    cube = read_generic(path, flux_ext="SCI", var_ext="VAR", mask_ext="DQ", psf_fwhm=1.0,
                        resolution=3000.0)
    assert cube.wave_medium == "air"
    np.testing.assert_allclose(cube.wave, 5000.0 + 2.0 * np.arange(7))
    assert np.nanmax(cube.flux) == pytest.approx(1e-18, rel=1e-9, abs=0)
    assert np.nanmax(cube.err) == pytest.approx(2e-18, rel=1e-9, abs=0)
    assert cube.mask[2, 1, 1] and cube.mask.sum() == 1
    via = read_ifs(path, "generic", flux_ext="SCI", ivar_ext="VAR", wave_medium="vacuum")
    assert np.nanmax(via.err) == pytest.approx(0.5e-18, rel=1e-9, abs=0)
    with pytest.raises(ValueError, match="exactly one"):
        read_generic(path, flux_ext="SCI")
    with pytest.raises(ValueError, match="missing"):
        read_generic(path, flux_ext="NOPE", err_ext="VAR")


def test_muse_real_subcube(shared_data: Path) -> None:
    path = shared_data / MUSE_FILE
    cube = read_muse(path)
    assert cube.shape == (500, 30, 30) and cube.survey == "muse"
    assert cube.wave_medium == "air"
    assert cube.wave[0] == pytest.approx(4750.0) and cube.wave[-1] == pytest.approx(5373.75)
    assert cube.pixel_scale == pytest.approx(0.2, rel=1e-3)
    with fits.open(path) as h:
        raw = h["DATA"].data[250].astype(float)
        stat = h["STAT"].data[250].astype(float)
    np.testing.assert_allclose(cube.flux[250], raw * 1e-20, rtol=1e-6)
    np.testing.assert_allclose(cube.err[250], np.sqrt(stat) * 1e-20, rtol=1e-6)
    psf = cube.psf_fwhm_per_wave()
    assert 0.6 < psf.min() < psf.max() < 0.8  # MPDAF FSF: ~0.7" Moffat FWHM
    fwhm = cube.wave / cube.resolution
    assert 2.4 < fwhm.min() < fwhm.max() < 3.1  # MUSE LSF FWHM (Bacon et al. 2017)
    assert cube.region().all()


def test_unit_parsing() -> None:
    # abs=0: pytest.approx's default absolute tolerance (1e-12) would pass any such scale
    assert flux_unit_scale("1E-17 erg/s/cm^2/Ang/spaxel", None, "x") == pytest.approx(
        1e-17, rel=1e-12, abs=0)
    assert flux_unit_scale("10**(-20)*erg/s/cm**2/Angstrom", None, "x") == pytest.approx(
        1e-20, rel=1e-12, abs=0)
    assert flux_unit_scale(None, 1e-16, "x") == 1e-16
    with pytest.raises(ValueError, match="not an f_λ unit"):
        flux_unit_scale("Jy", None, "x")
    with pytest.raises(ValueError, match="no BUNIT"):
        flux_unit_scale("", None, "x")


def test_bad_files(tmp_path: Path, manga_case: dict) -> None:
    with pytest.raises(ValueError, match="unknown IFS survey"):
        read_ifs(manga_case["path"], "sami")
    with pytest.raises(FileNotFoundError):
        read_manga(tmp_path / "none.fits")
    trunc = tmp_path / "trunc.fits"
    trunc.write_bytes(Path(manga_case["path"]).read_bytes()[:20000])
    with pytest.raises(ValueError, match="not a readable FITS"):
        read_manga(trunc)
    nofl = tmp_path / "noflux.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones((2, 2, 2)), name="IVAR")]
                 ).writeto(nofl)
    with pytest.raises(ValueError, match="'FLUX' missing"):
        read_manga(nofl)
    with pytest.raises(ValueError, match="primary HDU"):
        read_califa(nofl)


def test_ifscube_validation() -> None:
    wcs = tan_wcs(0.5, (2, 2))
    ok = np.ones((3, 2, 2))
    with pytest.raises(ValueError, match="wave"):
        IFSCube(ok, ok, [1.0, 3.0, 2.0], np.zeros(ok.shape, bool), wcs)
    with pytest.raises(ValueError, match="err"):
        IFSCube(ok, np.ones((3, 2, 3)), [1.0, 2.0, 3.0], np.zeros(ok.shape, bool), wcs)
    with pytest.raises(ValueError, match="no valid"):
        IFSCube(ok, -ok, [1.0, 2.0, 3.0], np.zeros(ok.shape, bool), wcs)
    with pytest.raises(ValueError, match="psf_fwhm"):
        IFSCube(ok, ok, [1.0, 2.0, 3.0], np.zeros(ok.shape, bool), wcs, psf_fwhm=-1.0)
    c = IFSCube(ok, ok, [1.0, 2.0, 3.0], np.zeros(ok.shape, bool), wcs)
    with pytest.raises(ValueError, match="pass psf_fwhm"):
        c.psf_fwhm_per_wave()


def test_manga_specresd_is_not_taken_for_the_resolution(manga_case: dict, tmp_path) -> None:
    """SPECRESD is the standard deviation of R; a file with neither SPECRES nor PRESPECRES
    has no resolution (SPECRESD was read as R: 20x too coarse)."""
    with fits.open(manga_case["path"]) as h:
        kept = fits.HDUList([x.copy() for x in h if x.name not in ("SPECRES", "PRESPECRES")])
        assert "SPECRESD" in [x.name for x in kept]
        kept.writeto(tmp_path / "nospecres.fits")
    cube = read_manga(tmp_path / "nospecres.fits", check_errors=False)
    assert cube.resolution is None
    full = read_manga(manga_case["path"], check_errors=False)
    with fits.open(manga_case["path"]) as h:
        np.testing.assert_allclose(full.resolution, np.asarray(h["SPECRES"].data, float))
