"""BinnedCube: FITS round trips (photometric and spectrophotometric), the original's layout,
bin-level tables, image-list binning and the plots."""

from __future__ import annotations

import warnings

import matplotlib
import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from pixedfit.binning import BinnedCube, bin_file, bin_images, bin_pixels
from pixedfit.cosmology import kpc_per_pixel
from pixedfit.cubes import FluxCube, SpecPhotCube, read_cube

matplotlib.use("Agg")

FILTERS = ["galex_fuv", "sdss_u", "sdss_g", "sdss_r", "sdss_i", "sdss_z"]


def _cube(n: int = 24, seed: int = 0) -> FluxCube:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:n, 0:n]
    r = np.hypot(yy - n / 2, xx - n / 2)
    red = np.array([0.05, 0.3, 0.7, 1.0, 1.1, 1.1])
    blue = np.array([0.8, 0.9, 1.0, 1.0, 0.9, 0.8])
    model = 60 * np.exp(-r / 2)[None] * red[:, None, None] + \
        15 * np.exp(-r / 6)[None] * blue[:, None, None]
    err = np.sqrt(0.5 ** 2 + 0.02 * model)
    flux = model + rng.normal(size=model.shape) * err
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [n / 2, n / 2]
    w.wcs.cdelt = [-1e-4, 1e-4]
    return FluxCube(flux, err, FILTERS, region=r < 0.45 * n, z=0.02, pixel_scale=1.5,
                    gal_ebv=0.03, wcs=w)


def _specphot(cube: FluxCube, seed: int = 1) -> SpecPhotCube:
    rng = np.random.default_rng(seed)
    n = cube.shape[0]
    wave = np.linspace(3700.0, 9000.0, 80)
    base = np.nan_to_num(cube.flux[3])[None] * np.linspace(0.8, 1.2, 80)[:, None, None]
    spec = base + rng.normal(0, 0.5, base.shape)
    serr = np.full(spec.shape, 0.5)
    yy, xx = np.mgrid[0:n, 0:n]
    sreg = cube.region & (np.hypot(yy - n / 2, xx - n / 2) < 6)
    return SpecPhotCube(cube, wave, spec, serr, spec_region=sreg, ifs_survey="manga")


def test_table_quantities():
    cube = _cube()
    res = bin_pixels(cube, snr_target=10)
    t = res.table()
    assert len(t) == res.nbins
    assert np.array_equal(t["npix"], np.bincount(res.bin_map.ravel())[1:])
    assert t["npix"].sum() == cube.npix_region
    kpc = kpc_per_pixel(0.02, 1.5)
    np.testing.assert_allclose(t["area_kpc2"], t["npix"] * kpc**2, rtol=1e-12)
    for k in (1, res.nbins):
        ys, xs = np.nonzero(res.bin_map == k)
        assert t["y_cent"][k - 1] == pytest.approx(ys.mean())
        assert t["x_cent"][k - 1] == pytest.approx(xs.mean())
    np.testing.assert_allclose(t["snr"], res.bin_flux / res.bin_flux_err)
    assert t["radius_pix"][0] < 1.5  # bin 1 sits on the brightest pixel, the default centre


def test_area_needs_metadata():
    cube = _cube()
    bare = FluxCube(cube.flux, cube.flux_err, FILTERS, region=cube.region)
    res = bin_pixels(bare)
    with pytest.raises(ValueError, match="pixel_scale"):
        _ = res.bin_area_kpc2
    assert np.all(np.isnan(res.table()["area_kpc2"]))


def test_photometric_round_trip(tmp_path):
    res = bin_pixels(_cube(), snr_target=[5, 5, 0, 5, 5, 5])
    path = tmp_path / "binned.fits"
    res.write(path)
    back = BinnedCube.read(path)
    assert np.array_equal(back.bin_map, res.bin_map)
    np.testing.assert_array_equal(back.bin_flux, res.bin_flux)
    np.testing.assert_array_equal(back.bin_flux_err, res.bin_flux_err)
    assert np.array_equal(back.leftover, res.leftover) and np.array_equal(back.seed, res.seed)
    np.testing.assert_array_equal(back.pixel_chi2, res.pixel_chi2)
    assert back.filters == FILTERS and back.unit == res.unit and back.z == 0.02
    assert back.pixel_scale == 1.5 and back.gal_ebv == 0.03 and back.wcs is not None
    for key in ("ref_band", "min_bin_diameter", "del_r", "max_reduced_chi2", "connected",
                "sys_err_factor"):
        assert back.params[key] == res.params[key], key
    np.testing.assert_array_equal(back.params["snr_target"], res.params["snr_target"])
    assert not back.specphot
    with fits.open(path) as hdul:
        names = [h.name for h in hdul]
        assert names[:5] == ["PRIMARY", "FLUX", "FLUX_ERR", "GALAXY_REGION", "PHOTO_BIN_MAP"]
        h = hdul[0].header
        assert h["NBINS"] == res.nbins == h["NBINSPH"] and h["SPECPHOT"] == 0
        assert h["REFBAND"] == 2 and h["FIL0"] == "galex_fuv"
        # original layout: every pixel of a bin carries the bin's SED
        k = res.nbins
        pix = res.bin_map == k
        assert np.all(hdul["FLUX"].data[:, pix] == res.bin_flux[k - 1][:, None])
        assert np.all(np.isnan(hdul["FLUX"].data[:, res.bin_map == 0]))
    with pytest.raises(FileExistsError):
        res.write(path)


def test_specphot_binning_and_round_trip(tmp_path):
    cube = _cube()
    sp = _specphot(cube)
    sp.spec_flux[5, 12, 12] = np.nan  # one masked channel in one pixel
    res = bin_pixels(sp, snr_target=8)
    phot_only = bin_pixels(cube, snr_target=8)
    # the photometric region is binned (not the IFS footprint, the original's bug)
    assert np.array_equal(res.bin_map, phot_only.bin_map)
    assert res.specphot and res.wave.shape == (80,)
    for k in range(1, res.nbins + 1):
        pix = res.bin_map == k
        inside = bool(np.all(sp.spec_region[pix]))
        assert res.bin_has_spec[k - 1] == inside
        if inside:
            expect = sp.spec_flux[:, pix].sum(axis=1)
            np.testing.assert_allclose(res.bin_spec_flux[k - 1], expect, rtol=1e-12)
            np.testing.assert_allclose(res.bin_spec_err[k - 1],
                                       np.sqrt((sp.spec_err[:, pix] ** 2).sum(axis=1)))
        else:
            assert np.all(np.isnan(res.bin_spec_flux[k - 1]))
    assert res.bin_has_spec.any() and not res.bin_has_spec.all()
    kmask = res.bin_map[12, 12]
    if res.bin_has_spec[kmask - 1]:
        assert np.isnan(res.bin_spec_flux[kmask - 1, 5])
    path = tmp_path / "binned_sp.fits"
    res.write(path)
    back = BinnedCube.read(path)
    assert back.specphot and np.array_equal(back.bin_has_spec, res.bin_has_spec)
    np.testing.assert_array_equal(back.wave, res.wave)
    np.testing.assert_array_equal(back.bin_spec_flux, res.bin_spec_flux)
    np.testing.assert_array_equal(back.bin_spec_err, res.bin_spec_err)
    np.testing.assert_array_equal(back.bin_flux, res.bin_flux)
    assert np.array_equal(back.spec_region, sp.spec_region)
    with fits.open(path) as hdul:
        names = [h.name for h in hdul]
        for name in ("PHOTO_FLUX", "PHOTO_FLUXERR", "SPEC_WAVE", "SPEC_FLUX", "SPEC_FLUXERR",
                     "SPEC_REGION", "PHOTO_REGION", "PHOTO_BIN_MAP", "SPEC_BIN_MAP"):
            assert name in names, name
        assert hdul[0].data is None  # PHOTO_FLUX is not swallowed by the primary HDU
        h = hdul[0].header
        assert h["SPECPHOT"] == 1 and h["NBINSSP"] == int(res.bin_has_spec.sum())
        smap = hdul["SPEC_BIN_MAP"].data
        assert set(np.unique(smap[smap > 0])) == set(np.flatnonzero(res.bin_has_spec) + 1)


def test_reads_original_binned_layout(tmp_path):
    """Older piXedfit layout: BIN_MAP (float), BIN_FLUX/BIN_FLUXERR, 0 outside bins."""
    res = bin_pixels(_cube())
    hdr = fits.Header()
    hdr["NFILTERS"] = 6
    hdr["UNIT"] = 1e-17
    hdr["NBINS"] = res.nbins
    for i, f in enumerate(FILTERS):
        hdr[f"FIL{i}"] = f
    flux = np.nan_to_num(res.pixel_values(res.bin_flux))
    err = np.nan_to_num(res.pixel_values(res.bin_flux_err))
    path = tmp_path / "old.fits"
    fits.HDUList([fits.PrimaryHDU(header=hdr),
                  fits.ImageHDU(res.bin_map.astype(float), name="BIN_MAP"),
                  fits.ImageHDU(flux, name="BIN_FLUX"),
                  fits.ImageHDU(err, name="BIN_FLUXERR")]).writeto(path)
    back = BinnedCube.read(path)
    assert np.array_equal(back.bin_map, res.bin_map)
    np.testing.assert_array_equal(back.bin_flux, res.bin_flux)
    assert back.nbins == res.nbins and not back.leftover.any()


def test_truncated_binned_file(tmp_path):
    res = bin_pixels(_cube())
    path = tmp_path / "b.fits"
    res.write(path)
    raw = path.read_bytes()
    bad = tmp_path / "bad.fits"
    bad.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(ValueError, match="bad"):
        BinnedCube.read(bad)


def test_bin_images_arrays_and_files(tmp_path):
    cube = _cube()
    sci = [np.nan_to_num(cube.flux[b]) for b in range(6)]
    var = [np.nan_to_num(cube.flux_err[b], nan=1.0) ** 2 for b in range(6)]
    res = bin_images(sci, var, filters=FILTERS, region=cube.region, min_bin_diameter=4.0)
    ref = bin_pixels(cube)
    assert np.array_equal(res.bin_map, ref.bin_map)
    paths_s, paths_v = [], []
    for b in range(6):
        ps, pv = tmp_path / f"s{b}.fits", tmp_path / f"v{b}.fits"
        fits.PrimaryHDU(sci[b]).writeto(ps)
        fits.PrimaryHDU(var[b]).writeto(pv)
        paths_s.append(ps)
        paths_v.append(pv)
    res2 = bin_images(paths_s, paths_v, filters=FILTERS, region=cube.region, min_bin_diameter=4.0)
    assert np.array_equal(res2.bin_map, ref.bin_map)
    whole = bin_images(sci, var)  # default: every pixel, min_bin_diameter = 2
    assert whole.filters[0] == "band0" and np.all(whole.bin_map > 0)
    with pytest.raises(ValueError, match="var_images"):
        bin_images(sci, var[:-1])
    with pytest.raises(ValueError, match="negative"):
        bin_images(sci, [-v for v in var])


def test_plots(tmp_path):
    from pixedfit.binning.plots import plot_bin_map, plot_bin_seds, plot_bin_snr_radius

    sp = _specphot(_cube())
    res = bin_pixels(sp, snr_target=8)
    ax = plot_bin_map(res)
    assert ax.images and ax.images[0].get_array().shape == res.bin_map.shape
    ax.figure.savefig(tmp_path / "map.png")
    ax = plot_bin_map(res, spectra=True)
    ax = plot_bin_seds(res, [1, 2])
    assert len(ax.lines) + len(ax.containers) >= 2
    ax.figure.savefig(tmp_path / "sed.png")
    ax = plot_bin_snr_radius(res)
    ax.figure.savefig(tmp_path / "snr.png")
    assert (tmp_path / "snr.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="bin_ids"):
        plot_bin_seds(res, [0])


def test_bin_file_dispatches_on_cube_kind(tmp_path):
    cube = _cube()
    sp = _specphot(cube)
    cube.write(tmp_path / "phot.fits")
    sp.write(tmp_path / "sp.fits")
    assert isinstance(read_cube(tmp_path / "phot.fits"), FluxCube)
    assert isinstance(read_cube(tmp_path / "sp.fits"), SpecPhotCube)
    a = bin_file(tmp_path / "phot.fits", tmp_path / "phot_bin.fits", snr_target=8)
    b = bin_file(tmp_path / "sp.fits", tmp_path / "sp_bin.fits", snr_target=8)
    assert not a.specphot and b.specphot
    assert np.array_equal(a.bin_map, bin_pixels(cube, snr_target=8).bin_map)
    assert np.array_equal(b.bin_map, a.bin_map)
    back = BinnedCube.read(tmp_path / "sp_bin.fits")
    np.testing.assert_array_equal(back.bin_spec_flux, b.bin_spec_flux)


def test_real_muse_cube_spectrophotometric_binning(shared_data, tmp_path):
    """Real VLT/MUSE spectra (UDF sub-cube): pseudo-photometry in 4 boxes of the cube,
    spectra binned on the photometric map; invariants, spectral sums and a round trip."""
    from astropy.wcs import FITSFixedWarning

    from test_binning import check_invariants

    path = shared_data / "muse_udf_subcube" / "subcub_mosaic.fits.gz"
    with fits.open(path) as hdul:
        data = hdul["DATA"].data.astype(np.float64)
        var = hdul["STAT"].data.astype(np.float64)
        hdr = hdul["DATA"].header
    wave = hdr["CRVAL3"] + hdr["CD3_3"] * (np.arange(data.shape[0]) + 1 - hdr["CRPIX3"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(hdr).celestial
    boxes = [slice(0, 125), slice(125, 250), slice(250, 375), slice(375, 500)]
    flux = np.stack([data[b].mean(axis=0) for b in boxes])
    err = np.stack([np.sqrt(var[b].sum(axis=0)) / 125 for b in boxes])
    phot = FluxCube(flux, err, ["muse_b1", "muse_b2", "muse_b3", "muse_b4"], unit=1e-20,
                    wcs=wcs, pixel_scale=0.2)
    yy, xx = np.mgrid[0:30, 0:30]
    sreg = np.hypot(yy - 14.5, xx - 14.5) < 10
    sp = SpecPhotCube(phot, wave, data, np.sqrt(var), spec_region=sreg, ifs_survey="muse")
    res = bin_pixels(sp, snr_target=5, min_bin_diameter=2)
    check_invariants(phot, res, 5, 4.0, True)
    assert 5 < res.nbins < 900
    for k in np.flatnonzero(res.bin_has_spec)[:20] + 1:
        pix = res.bin_map == k
        np.testing.assert_allclose(res.bin_spec_flux[k - 1], data[:, pix].sum(axis=1),
                                   rtol=1e-10)
    out = tmp_path / "muse_binned.fits"
    res.write(out)
    back = BinnedCube.read(out)
    np.testing.assert_array_equal(back.bin_spec_flux, res.bin_spec_flux)
    assert back.unit == 1e-20 and back.wcs is not None
