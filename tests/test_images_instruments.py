"""Instrument table and native-unit conversions."""

from __future__ import annotations

import math

import pytest
from astropy.io import fits

from pixedfit.filters import cwave_filters
from pixedfit.images.instruments import (
    SR_TO_ARCSEC2,
    flux_conversion_factor,
    get_instrument,
    list_instruments,
    worst_resolution,
)
from pixedfit.units import C_AA_PER_S

REQUIRED = [
    "galex_fuv", "galex_nuv", "sdss_u", "sdss_g", "sdss_r", "sdss_i", "sdss_z",
    "2mass_j", "2mass_h", "2mass_k", "wise_w1", "wise_w2", "wise_w3", "wise_w4",
    "spitzer_irac_36", "spitzer_irac_45", "spitzer_irac_58", "spitzer_irac_80",
    "spitzer_mips_24", "spitzer_mips_70", "spitzer_mips_160", "herschel_pacs_70",
    "herschel_pacs_100", "herschel_pacs_160", "herschel_spire_250", "herschel_spire_350",
    "herschel_spire_500", "hst_wfc3_ir_f160w", "jwst_nircam_f200w", "jwst_miri_f770w",
]


def test_table_complete_and_valid():
    names = list_instruments()
    for f in REQUIRED:
        assert f in names
    for f in names:
        inst = get_instrument(f)
        assert inst.pixel_scale > 0 and inst.psf_fwhm > 0
        assert 0 <= inst.calib_err < 0.2
        assert cwave_filters(f) > 0  # every entry is a known filter
    # values of the piXedfit documentation
    assert get_instrument("galex_nuv").psf_fwhm == 5.05
    assert get_instrument("herschel_spire_500").psf_fwhm == 36.09
    assert get_instrument("wise_w3").jy_per_dn == pytest.approx(1.8326e-6)  # not the 2.9045e-6 bug
    for f in ("spitzer_mips_70", "spitzer_mips_160", "herschel_pacs_100", "herschel_spire_500"):
        assert get_instrument(f).unit  # the original had no unit for these


def _jy(f):
    return 1e-23 * C_AA_PER_S / cwave_filters(f) ** 2


def test_conversions_analytic():
    assert flux_conversion_factor(get_instrument("sdss_r"), 0.396) == pytest.approx(
        3.631e-6 * _jy("sdss_r"))
    # 1 MJy/sr over one 1"x1" pixel = 2.350443e-5 Jy
    f = flux_conversion_factor(get_instrument("spitzer_irac_36"), 1.0)
    assert f / _jy("spitzer_irac_36") == pytest.approx(2.350443e-5, rel=1e-6)
    assert 1e6 / SR_TO_ARCSEC2 == pytest.approx(2.350443e-5, rel=1e-6)
    # a beam worth of 1 Jy/beam pixels sums to 1 Jy
    inst = get_instrument("herschel_spire_250")
    per_pix = flux_conversion_factor(inst, 6.0)
    assert per_pix * inst.beam_area / 36.0 == pytest.approx(_jy("herschel_spire_250"))
    assert flux_conversion_factor(get_instrument("galex_fuv"), 1.5) == 1.40e-15
    # AB zero point 8.90 -> 1 count = 1 Jy
    des = get_instrument("ctio_decam_g")
    assert flux_conversion_factor(des, 0.263, zeropoint=8.90) == pytest.approx(_jy("ctio_decam_g"))
    hdr = fits.Header({"MAGZERO": 30.0})
    assert flux_conversion_factor(des, 0.263, header=hdr) == pytest.approx(
        10 ** (-0.4 * 21.1) * _jy("ctio_decam_g"))
    ps1 = get_instrument("pan-starrs_r")
    f = flux_conversion_factor(ps1, 0.25, header=fits.Header({"EXPTIME": 100.0}))
    assert f == pytest.approx(10 ** (-0.4 * (30.0 - 8.90)) * _jy("pan-starrs_r"))
    # 2MASS: DN = 10^(0.4 MAGZP) is a zero-magnitude source -> F0 (W cm^-2 um^-1) * 1e3
    tm = get_instrument("2mass_k")
    f = flux_conversion_factor(tm, 1.0, header=fits.Header({"MAGZP": 20.0}))
    assert f * 10 ** (0.4 * 20.0) == pytest.approx(4.283e-14 * 1e3)
    hst = get_instrument("hst_wfc3_ir_f105w")
    assert flux_conversion_factor(hst, 0.06, header=fits.Header({"PHOTFLAM": 3e-20})) == 3e-20


def test_user_defined_and_overrides():
    inst = get_instrument("my_band", pixel_scale=0.5, psf_fwhm=1.0, unit="Jy", calib_err=0.02)
    assert inst.survey == "user" and inst.unit == "Jy"
    assert get_instrument("galex_nuv", {"unit": "Jy"}).unit == "Jy"
    with pytest.raises(KeyError, match="no built-in instrument"):
        get_instrument("my_band", pixel_scale=0.5)
    with pytest.raises(ValueError, match="unknown native unit"):
        get_instrument("sdss_r", unit="furlongs")
    with pytest.raises(ValueError, match="psf_fwhm"):
        get_instrument("sdss_r", psf_fwhm=-1.0)


def test_missing_header_keyword_is_an_error():
    with pytest.raises(ValueError, match="MAGZP"):
        flux_conversion_factor(get_instrument("2mass_j"), 1.0, header=fits.Header())
    with pytest.raises(ValueError, match="PHOTFLAM"):
        flux_conversion_factor(get_instrument("hst_acs_f814w"), 0.05)
    with pytest.raises(ValueError, match="pixel_scale"):
        flux_conversion_factor(get_instrument("sdss_r"), math.nan)


def test_worst_resolution():
    assert worst_resolution(["sdss_r", "galex_nuv", "2mass_j"]) == "galex_nuv"
    assert worst_resolution(["sdss_r", "galex_nuv"], {"sdss_r": 9.0}) == "sdss_r"
