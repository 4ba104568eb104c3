"""Property maps: painting, sharing out to pixels with honest errors, I/O round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.io import fits

from pixedfit.analysis.maps import (
    PropertyMaps,
    get_bestfit_params,
    maps_parameters,
    share_out,
)
from pixedfit.binning import bin_with_map
from pixedfit.cubes import FluxCube
from pixedfit.fitting.results import FitResult, ResultStore

FILTERS = ("sdss_g", "sdss_r", "sdss_i")
NAMES = ("logzsol", "log_mass", "log_sfr", "log_mw_age")


def _cube(seed: int = 0) -> FluxCube:
    rng = np.random.default_rng(seed)
    flux = rng.uniform(1.0, 5.0, (3, 6, 8))
    err = rng.uniform(0.05, 0.3, (3, 6, 8))
    region = np.ones((6, 8), bool)
    region[0, 0] = False
    return FluxCube(flux, err, FILTERS, region=region, z=0.05, pixel_scale=1.0)


def _bin_map() -> np.ndarray:
    bm = np.zeros((6, 8), np.int32)
    bm[:3, :4] = 1
    bm[:3, 4:] = 2
    bm[3:, :4] = 3
    bm[3:, 4:7] = 4
    bm[3:, 7] = 5
    bm[5, 7] = 6  # a one-pixel bin
    bm[0, 0] = 0
    return bm


def _result(b: int, method: str = "rdsps") -> FitResult:
    base = np.array([-0.1 * b, 9.0 + 0.1 * b, -0.5 + 0.05 * b, 0.3])
    std = np.array([0.1, 0.05, 0.2, 0.1])
    nan = np.full(4, np.nan)
    return FitResult(
        method=method, names=NAMES,
        mean=base if method == "rdsps" else nan, std=std if method == "rdsps" else nan,
        p16=base - std, p50=base, p84=base + 2 * std, best=base,
        filters=FILTERS, obs_flux=np.ones(3), obs_flux_err=np.ones(3) * 0.1,
        bfit_photo=np.ones(3), z=0.05, chi2_min=1.5 * b, n_used=100)


def test_bin_maps_pixel_sharing_and_conservation(tmp_path):
    cube = _cube()
    binned = bin_with_map(cube, _bin_map())
    results = {b: _result(b) for b in range(1, 7) if b != 4}  # bin 4 missing
    pm = maps_parameters(binned, results, cube, output=tmp_path / "maps.fits")
    bm = binned.bin_map
    # bin maps: bin value on every pixel, NaN outside and for the missing bin
    assert np.all(pm.get("log_mass", "mean")[bm == 2] == pytest.approx(9.2))
    assert np.all(np.isnan(pm.get("log_mass", "mean")[bm == 4]))
    assert np.isnan(pm.get("log_mass", "mean")[0, 0])
    assert pm.get("chi2", "best")[bm == 3][0] == pytest.approx(4.5)
    # mass shared by the last band, SFR by the first; the pixels add up to the bin value
    for q, band in (("log_mass", 2), ("log_sfr", 0)):
        assert pm.refbands[q] == FILTERS[band]
        pix = pm.get(q, "mean", "pix")
        for b in (1, 2, 3, 5, 6):
            total = np.sum(10 ** pix[bm == b])
            assert math.log10(total) == pytest.approx(results[b].mean[NAMES.index(q)],
                                                      abs=1e-12)
        ratio = 10 ** (pix[bm == 1] - pix[bm == 1][0])
        f = cube.flux[band][bm == 1]
        np.testing.assert_allclose(ratio, f / f[0], rtol=1e-12)
    # the one-pixel bin inherits its values and errors
    one = bm == 6
    assert pm.get("log_mass", "mean", "pix")[one][0] == pytest.approx(9.6)
    assert pm.get("log_mass", "mean_err", "pix")[one][0] == pytest.approx(0.05)
    assert pm.get("log_mass", "p16", "pix")[one][0] == pytest.approx(9.55)
    assert pm.get("log_mass", "p84", "pix")[one][0] == pytest.approx(9.7)
    # errors are at least the bin's and never the original's tens of dex
    err = pm.get("log_mass", "mean_err", "pix")[bm == 1]
    assert np.all(err >= 0.05) and np.all(err < 0.2)
    # surface densities: kpc per pixel from z and the pixel scale
    kpc = pm.kpc_per_pixel
    assert kpc == pytest.approx(0.98, rel=0.02)
    np.testing.assert_allclose(pm.get("log_sigma_mass", "mean", "pix")[one],
                               9.6 - 2 * np.log10(kpc))
    sig_bin = pm.get("log_sigma_mass", "p50")[bm == 1][0]
    assert sig_bin == pytest.approx(9.1 - np.log10(np.sum(bm == 1) * kpc**2))


def test_share_error_matches_monte_carlo():
    rng = np.random.default_rng(3)
    flux = np.array([[4.0, 1.0, 2.0, 0.5]])
    err = np.array([[0.12, 0.06, 0.1, 0.04]])
    bm = np.ones((1, 4), np.int32)
    log_w, sig = share_out(flux, err, bm)
    draws = flux + err * rng.standard_normal((200000, 1, 4))
    share = draws / draws.sum(axis=2, keepdims=True)
    mc = np.std(np.log10(share), axis=0)
    np.testing.assert_allclose(sig, mc, rtol=0.05)
    np.testing.assert_allclose(log_w, np.log10(flux / flux.sum()))
    # non-positive pixel fluxes have no share
    log_w, sig = share_out(np.array([[1.0, -1.0, 3.0]]), np.ones((1, 3)), np.ones((1, 3), int))
    assert np.isnan(log_w[0, 1]) and np.isnan(sig[0, 1]) and np.isfinite(log_w[0, 0])


def test_round_trip_and_store_input(tmp_path):
    cube = _cube()
    binned = bin_with_map(cube, _bin_map())
    store = ResultStore(tmp_path / "fits")
    for b in range(1, 7):
        store.save(f"bin{b}", _result(b, "mcmc"))
    pm = maps_parameters(binned, tmp_path / "fits", cube)
    assert pm.method == "mcmc"
    assert "mean" not in pm.stats("log_mass")  # MCMC-like: percentiles only
    assert set(pm.stats("log_mass", "pix")) == {"p16", "p50", "p84"}
    pm.write(tmp_path / "m.fits")
    with pytest.raises(FileExistsError):
        pm.write(tmp_path / "m.fits")
    back = PropertyMaps.read(tmp_path / "m.fits")
    assert set(back.maps) == set(pm.maps)
    for key in pm.maps:
        np.testing.assert_array_equal(back.maps[key], pm.maps[key])
    np.testing.assert_array_equal(back.bin_map, pm.bin_map)
    assert back.z == pytest.approx(0.05) and back.refbands == pm.refbands
    np.testing.assert_allclose(back.bin_values("log_mass", "p50"),
                               [9.0 + 0.1 * b for b in range(1, 7)])
    with fits.open(tmp_path / "m.fits") as hdul:
        names = [hdul[0].header[f"HDU{i}"] for i in range(1, hdul[0].header["NHDU"] + 1)]
        assert [n.upper() for n in names] == [h.name for h in hdul[1:]]
        assert "bin-log_mass-p50" in names


def test_reads_the_original_layout(tmp_path):
    region = np.array([[0, 1, 1], [1, 1, 1]], np.int16)
    mass = np.array([[0.0, 9.5, 9.5], [8.0, 8.0, -99.0]])
    hdr = fits.Header()
    hdr["GAL_Z"] = 0.03
    hdr["NBINS"] = 3
    hdus = fits.HDUList([fits.PrimaryHDU(header=hdr),
                         fits.ImageHDU(region, name="GALAXY_REGION"),
                         fits.ImageHDU(mass, name="bin-log_mass-mean"),
                         fits.ImageHDU(mass * 0 + 0.1, name="bin-log_mass-mean_err")])
    hdus.writeto(tmp_path / "orig.fits")
    pm = PropertyMaps.read(tmp_path / "orig.fits")
    assert pm.method == "rdsps" and pm.z == pytest.approx(0.03)
    m = pm.get("log_mass", "mean")
    assert np.isnan(m[0, 0]) and np.isnan(m[1, 2]) and m[0, 1] == 9.5
    assert pm.nbins == 3


def test_bad_inputs(tmp_path):
    cube = _cube()
    binned = bin_with_map(cube, _bin_map())
    with pytest.raises(ValueError, match="outside"):
        maps_parameters(binned, {9: _result(1)})
    with pytest.raises(ValueError, match="no fit result"):
        maps_parameters(binned, {})
    with pytest.raises(TypeError, match="FitResult"):
        maps_parameters(binned, {1: "x"})
    with pytest.raises(ValueError, match="reference band"):
        maps_parameters(binned, {1: _result(1)}, cube, ref_band_mass="wise_w1")
    with pytest.raises(FileNotFoundError):
        maps_parameters(binned, tmp_path / "nothing")
    with pytest.raises(ValueError, match="GALAXY_REGION"):
        fits.HDUList([fits.PrimaryHDU()]).writeto(tmp_path / "x.fits")
        PropertyMaps.read(tmp_path / "x.fits")


def test_get_bestfit_params(tmp_path):
    res = _result(2)
    assert get_bestfit_params(res)["log_mass"] == pytest.approx(9.2)
    res.write(tmp_path / "r.h5")
    assert get_bestfit_params(tmp_path / "r.h5", "p84")["log_sfr"] == pytest.approx(-0.0)
    assert get_bestfit_params(_result(1, "mcmc"))["log_mass"] == pytest.approx(9.1)
    with pytest.raises(ValueError):
        get_bestfit_params(res, "median")


def test_every_map_has_its_unit_in_bunit(tmp_path):
    import astropy.units as u

    cube = _cube()
    binned = bin_with_map(cube, _bin_map())
    pm = maps_parameters(binned, {b: _result(b) for b in range(1, 7)}, cube)
    pm.write(tmp_path / "m.fits")
    expected = {
        ("log_mass", "p50"): u.solMass, ("log_sfr", "mean"): u.solMass / u.yr,
        ("log_mw_age", "p84"): u.Gyr, ("log_sigma_mass", "p16"): u.solMass / u.kpc**2,
        ("log_sigma_sfr", "p50"): u.solMass / u.yr / u.kpc**2,
    }
    with fits.open(tmp_path / "m.fits") as hdul:
        images = [h for h in hdul[1:] if h.name not in ("GALAXY_REGION", "BIN_MAP",
                                                          "BIN_FLAG", "BIN_TABLE")]
        assert len(images) == len(pm.maps)
        for hdu in images:
            assert "BUNIT" in hdu.header, hdu.name
            unit = u.Unit(hdu.header["BUNIT"])  # astropy reads every one of them
            _kind, rest = hdu.name.lower().split("-", 1)
            param, stat = rest.rsplit("-", 1)
            if (param, stat) in expected:
                assert isinstance(unit, u.DexUnit)
                assert unit.physical_unit == expected[param, stat], hdu.name
            if stat == "mean_err" and param.startswith("log"):
                assert unit == u.dex, hdu.name  # a width in dex, not a log of a unit
            if param in ("chi2", "n_used"):
                assert unit == u.dimensionless_unscaled
        zsol = hdul["BIN-LOGZSOL-P50"].header["BUNIT"]
        assert u.Unit(zsol) == u.dex
