"""FluxCube / SpecPhotCube: validation and FITS round trips (pixedfit and piXedfit layouts)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

import pixedfit
from pixedfit.cubes import FluxCube, SpecPhotCube

FILTERS = ["sdss_u", "sdss_g", "sdss_r", "sdss_i", "sdss_z"]


def _cube(ny: int = 12, nx: int = 15, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    flux = rng.normal(10.0, 3.0, size=(len(FILTERS), ny, nx))
    err = rng.uniform(0.5, 1.5, size=flux.shape)
    yy, xx = np.mgrid[0:ny, 0:nx]
    region = np.hypot(yy - ny / 2, xx - nx / 2) < 5
    return flux, err, region


def _wcs(ny: int, nx: int) -> WCS:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [nx / 2, ny / 2]
    w.wcs.cdelt = [-1.5 / 3600, 1.5 / 3600]
    return w


def test_construct_and_nan_outside_region():
    flux, err, region = _cube()
    flux_in = flux.copy()
    cube = FluxCube(flux, err, FILTERS, region=region, z=0.02, pixel_scale=1.5)
    assert np.array_equal(flux, flux_in)  # the input is not modified
    assert cube.nbands == 5 and cube.shape == (12, 15)
    assert np.all(np.isnan(cube.flux[:, ~region])) and np.all(np.isnan(cube.flux_err[:, ~region]))
    assert np.array_equal(cube.flux[:, region], flux[:, region])
    assert cube.band_index("sdss_r") == 2 and cube.band_index(-1) == 4
    assert pixedfit.FluxCube is FluxCube


def test_region_none_uses_finite_pixels():
    flux, err, _ = _cube()
    flux[:, 0, 0] = np.nan
    err[2, 3, 3] = 0.0
    cube = FluxCube(flux, err, FILTERS)
    assert not cube.region[0, 0] and not cube.region[3, 3]
    assert cube.npix_region == flux.shape[1] * flux.shape[2] - 2


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda f, e, r: (f[:, 0], e, r), "flux: expected a 3-D"),
        (lambda f, e, r: (f, e[:, :, :-1], r), "flux_err: shape"),
        (lambda f, e, r: (f, e, r[:, :-1]), "region: expected shape"),
        (lambda f, e, r: (f, e, np.zeros_like(r)), "region: the galaxy region is empty"),
        (lambda f, e, r: (np.where(r, np.nan, f), e, r), "non-finite fluxes"),
        (lambda f, e, r: (f, np.where(r, -1.0, e), r), "<= 0 errors"),
    ],
)
def test_bad_input_raises(mutate, match):
    flux, err, region = _cube()
    f, e, r = mutate(flux, err, region)
    with pytest.raises(ValueError, match=match):
        FluxCube(f, e, FILTERS, region=r)


def test_bad_metadata_raises():
    flux, err, region = _cube()
    with pytest.raises(ValueError, match="filters"):
        FluxCube(flux, err, FILTERS[:3], region=region)
    with pytest.raises(TypeError, match="filters"):
        FluxCube(flux, err, "sdss_r", region=region)
    with pytest.raises(ValueError, match="pixel_scale"):
        FluxCube(flux, err, FILTERS, region=region, pixel_scale=-1)
    with pytest.raises(ValueError, match="unit"):
        FluxCube(flux, err, FILTERS, region=region, unit=0)
    with pytest.raises(TypeError, match="wcs"):
        FluxCube(flux, err, FILTERS, region=region, wcs="nope")


def test_fits_round_trip(tmp_path):
    flux, err, region = _cube()
    hdr = fits.Header()
    hdr["RA"] = 150.0
    hdr["FPSFMTCH"] = "sdss_u"
    cube = FluxCube(flux, err, FILTERS, region=region, unit=1e-18, wcs=_wcs(12, 15), z=0.03,
                    pixel_scale=0.4, gal_ebv=0.05, header=hdr)
    path = tmp_path / "fluxmap.fits"
    cube.write(path)
    with pytest.raises(FileExistsError):
        cube.write(path)
    back = FluxCube.read(path)
    assert back.filters == FILTERS and back.unit == 1e-18 and back.z == 0.03
    assert back.pixel_scale == 0.4 and back.gal_ebv == 0.05
    assert back.header["RA"] == 150.0 and back.header["FPSFMTCH"] == "sdss_u"
    assert np.array_equal(back.region, region)
    np.testing.assert_array_equal(back.flux, cube.flux)  # NaN outside compare equal
    np.testing.assert_array_equal(back.flux_err, cube.flux_err)
    assert back.wcs is not None
    assert np.allclose(back.wcs.pixel_to_world_values(3, 4), cube.wcs.pixel_to_world_values(3, 4))
    with fits.open(path) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "FLUX", "FLUX_ERR", "GALAXY_REGION",
                                          "STAMP_IMAGE"]
        assert hdul[0].header["FIL2"] == "sdss_r" and hdul[0].header["SPECPHOT"] == 0


def test_reads_original_fluxmap_layout(tmp_path):
    """The original's flux map: -9.9e18 outside the region, float 0/1 region, no WCS."""
    flux, err, region = _cube()
    f = flux.copy()
    e = err.copy()
    f[:, ~region] = -9.9e18
    e[:, ~region] = -9.9e18
    hdr = fits.Header()
    for key, val in (("NFILTERS", 5), ("RA", 1.0), ("DEC", 2.0), ("Z", 0.02), ("UNIT", 1e-17),
                     ("BUNIT", "erg/s/cm^2/A"), ("GALEBV", 0.01), ("STRUCT", "(band,y,x)"),
                     ("PIXSIZE", 1.5), ("SPECPHOT", 0)):
        hdr[key] = val
    for i, name in enumerate(FILTERS):
        hdr[f"FIL{i}"] = name
    path = tmp_path / "orig.fits"
    fits.HDUList([fits.PrimaryHDU(header=hdr), fits.ImageHDU(f, name="FLUX"),
                  fits.ImageHDU(e, name="FLUX_ERR"),
                  fits.ImageHDU(region.astype(float), name="GALAXY_REGION")]).writeto(path)
    cube = FluxCube.read(path)
    assert np.array_equal(cube.region, region)
    assert np.all(np.isnan(cube.flux[:, ~region]))
    assert np.array_equal(cube.flux[:, region], flux[:, region])
    assert cube.z == 0.02 and cube.pixel_scale == 1.5 and cube.unit == 1e-17


def test_truncated_file_raises(tmp_path):
    flux, err, region = _cube()
    path = tmp_path / "c.fits"
    FluxCube(flux, err, FILTERS, region=region).write(path)
    raw = path.read_bytes()
    (tmp_path / "t.fits").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"t\.fits"):
        FluxCube.read(tmp_path / "t.fits")
    with pytest.raises(FileNotFoundError):
        FluxCube.read(tmp_path / "missing.fits")


def _specphot(seed: int = 1) -> SpecPhotCube:
    flux, err, region = _cube(seed=seed)
    phot = FluxCube(flux, err, FILTERS, region=region, z=0.01, pixel_scale=0.5)
    rng = np.random.default_rng(seed)
    wave = np.linspace(3600.0, 9000.0, 60)
    spec = rng.normal(5.0, 1.0, size=(60, *region.shape))
    serr = np.full(spec.shape, 0.3)
    yy, xx = np.mgrid[0:12, 0:15]
    sreg = region & (np.hypot(yy - 6, xx - 7.5) < 3.5)
    spec[10, 6, 7] = np.nan  # a masked channel
    return SpecPhotCube(phot, wave, spec, serr, spec_region=sreg, ifs_survey="manga")


def test_specphot_round_trip(tmp_path):
    cube = _specphot()
    path = tmp_path / "specphoto.fits"
    cube.write(path)
    with fits.open(path) as hdul:
        assert hdul[0].data is None  # header-only primary: PHOTO_FLUX is an extension
        assert "PHOTO_FLUX" in [h.name for h in hdul] and hdul[0].header["SPECPHOT"] == 1
    back = SpecPhotCube.read(path)
    assert back.ifs_survey == "manga" and back.photometry.filters == FILTERS
    np.testing.assert_array_equal(back.wave, cube.wave)
    np.testing.assert_array_equal(back.spec_flux, cube.spec_flux)
    np.testing.assert_array_equal(back.spec_err, cube.spec_err)
    np.testing.assert_array_equal(back.photometry.flux, cube.photometry.flux)
    assert np.array_equal(back.spec_region, cube.spec_region)
    assert np.isnan(back.spec_flux[10, 6, 7]) and np.isnan(back.spec_err[10, 6, 7])


def test_reads_original_specphot_layout(tmp_path):
    """The original wrote PHOTO_FLUX as the first HDU (astropy makes it the primary)."""
    cube = _specphot()
    p = cube.photometry
    hdr = fits.Header()
    hdr["EXTNAME"] = "PHOTO_FLUX"
    hdr["NFILTERS"] = 5
    hdr["UNIT"] = 1e-17
    hdr["SPECPHOT"] = 1
    for i, name in enumerate(FILTERS):
        hdr[f"FIL{i}"] = name
    path = tmp_path / "orig_sp.fits"
    fits.HDUList([fits.PrimaryHDU(np.nan_to_num(p.flux, nan=-99.0), header=hdr),
                  fits.ImageHDU(np.nan_to_num(p.flux_err, nan=-99.0), name="PHOTO_FLUXERR"),
                  fits.ImageHDU(cube.wave, name="WAVE"),
                  fits.ImageHDU(np.nan_to_num(cube.spec_flux), name="SPEC_FLUX"),
                  fits.ImageHDU(np.nan_to_num(cube.spec_err), name="SPEC_FLUXERR"),
                  fits.ImageHDU(cube.spec_region.astype(float), name="SPEC_REGION"),
                  fits.ImageHDU(p.region.astype(float), name="PHOTO_REGION")]).writeto(path)
    back = SpecPhotCube.read(path)
    np.testing.assert_array_equal(back.photometry.flux, p.flux)
    assert np.array_equal(back.spec_region, cube.spec_region)
    assert np.array_equal(back.photometry.region, p.region)


def test_specphot_validation():
    cube = _specphot()
    p = cube.photometry
    spec = np.ones((5, *p.shape))
    with pytest.raises(ValueError, match="wave"):
        SpecPhotCube(p, [3, 2, 1, 4, 5], spec, spec)
    with pytest.raises(ValueError, match="spec_flux: expected shape"):
        SpecPhotCube(p, np.arange(1.0, 7.0), spec, spec)
    with pytest.raises(ValueError, match="spec_region: IFS pixels outside"):
        SpecPhotCube(p, np.arange(1.0, 6.0), spec, spec, spec_region=np.ones(p.shape, bool))
    with pytest.raises(ValueError, match="spec_err"):
        SpecPhotCube(p, np.arange(1.0, 6.0), spec, -spec)
    with pytest.raises(TypeError, match="photometry"):
        SpecPhotCube("x", np.arange(1.0, 6.0), spec, spec)
