"""Catalogue flux densities (Jy, µJy, AB) → band-mean f_λ, in each survey's convention."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import simpson

from pixedfit.filters import UnknownFilterError, cwave_filters, get_filter_curve
from pixedfit.instruments import catalog_conversion_wavelengths, catalog_flux_to_flam
from pixedfit.units import convert_flux_unit

C_AA = 2.99792458e18  # Å/s
HC_OVER_K = 1.4387769e8  # Å K

#: Published calibration conventions, written out here (not read from the instrument table):
#: band → (λ₀ in Å, ("alpha", α) for F_ν ∝ ν^α or ("bb", T) for a blackbody of T K).
#: WISE: Wright et al. (2010) Table 1 (isophotal wavelengths, ν⁻²); IRAC: IRAC Instrument
#: Handbook (3.550, 4.493, 5.731, 7.872 µm, ν⁻¹); MIPS: MIPS Instrument Handbook (23.68,
#: 71.42, 155.9 µm, 10⁴ K blackbody); PACS and SPIRE: νF_ν = const at 70 ... 500 µm.
REFERENCE = {
    "wise_w1": (33526.0, ("alpha", -2.0)), "wise_w2": (46028.0, ("alpha", -2.0)),
    "wise_w3": (115608.0, ("alpha", -2.0)), "wise_w4": (220883.0, ("alpha", -2.0)),
    "spitzer_irac_36": (35500.0, ("alpha", -1.0)), "spitzer_irac_45": (44930.0, ("alpha", -1.0)),
    "spitzer_irac_58": (57310.0, ("alpha", -1.0)), "spitzer_irac_80": (78720.0, ("alpha", -1.0)),
    "spitzer_mips_24": (236800.0, ("bb", 1e4)), "spitzer_mips_70": (714200.0, ("bb", 1e4)),
    "spitzer_mips_160": (1559000.0, ("bb", 1e4)),
    "herschel_pacs_70": (700000.0, ("alpha", -1.0)),
    "herschel_pacs_100": (1000000.0, ("alpha", -1.0)),
    "herschel_pacs_160": (1600000.0, ("alpha", -1.0)),
    "herschel_spire_250": (2500000.0, ("alpha", -1.0)),
    "herschel_spire_350": (3500000.0, ("alpha", -1.0)),
    "herschel_spire_500": (5000000.0, ("alpha", -1.0)),
}
#: Flat-F_ν (AB-like) calibrations: converted at the pivot wavelength in either convention.
AB_BANDS = ["galex_fuv", "galex_nuv", "sdss_u", "sdss_r", "sdss_z", "2mass_j", "2mass_k",
            "twomass_Ks", "hst_wfc3_ir_f160w", "jwst_nircam_f200w", "jwst_miri_f770w"]


def approx(expected, rel):
    """``pytest.approx`` without its absolute tolerance of 1e-12 (f_λ of 1 Jy is ~1e-17)."""
    return pytest.approx(expected, rel=rel, abs=0)


def _reference_flam(band: str, fnu_jy: float = 1.0) -> float:
    """Band-mean f_λ of a source of the band's reference spectrum whose F_ν at λ₀ is
    ``fnu_jy``: numerical integration over a fine linear grid of the filter curve."""
    lam0, (kind, value) = REFERENCE[band]
    wave, trans = get_filter_curve(band)
    lam = np.linspace(wave[0], wave[-1], 400_001)
    t = np.interp(lam, wave, trans)

    def fnu_shape(x):  # F_ν(λ), arbitrary normalisation
        if kind == "alpha":
            return (x / lam0) ** (-value)  # ν^α = (c/λ)^α
        return x**-3 / np.expm1(HC_OVER_K / (x * value))  # B_ν ∝ ν³ / (e^{hν/kT} − 1)

    scale = fnu_jy * 1e-23 / fnu_shape(np.array(lam0))  # erg s⁻¹ cm⁻² Hz⁻¹
    flam = scale * fnu_shape(lam) * C_AA / lam**2
    return float(simpson(flam * lam * t, x=lam) / simpson(lam * t, x=lam))


@pytest.mark.parametrize("band", sorted(REFERENCE))
def test_instrument_convention_against_integration_of_the_reference_spectrum(band):
    """1 Jy quoted for the reference spectrum is that spectrum's band mean, not the
    pivot conversion (the factors instrument / pivot range from 0.99 to 1.09)."""
    expected = _reference_flam(band)
    got = catalog_flux_to_flam([1.0], [band])
    assert got[0] == approx(expected, rel=1e-6)
    pivot = catalog_flux_to_flam([1.0], [band], convention="pivot")[0]
    assert pivot == approx(1e-23 * C_AA / cwave_filters(band) ** 2, rel=1e-12)
    # the pivot (the former conversion) is >= 0.13 % away: it fails the first assertion
    assert abs(expected / pivot - 1) > 1e-3


def test_factors_of_the_bands_that_matter():
    """WISE W3 +9 %, MIPS 70 +7 %, SPIRE 250 −1 %: far beyond the agreement with the
    integration (< 1e-8)."""
    bands = ["wise_w3", "spitzer_mips_70", "herschel_spire_250", "spitzer_irac_80"]
    ratio = catalog_flux_to_flam(np.ones(4), bands) / catalog_flux_to_flam(
        np.ones(4), bands, convention="pivot")
    expected = [_reference_flam(b) / (1e-23 * C_AA / cwave_filters(b) ** 2) for b in bands]
    np.testing.assert_allclose(ratio, expected, rtol=1e-6, atol=0)
    assert ratio[0] > 1.08 and ratio[1] > 1.06 and ratio[2] < 0.99


def test_ab_bands_unchanged_in_either_convention():
    """AB-calibrated bands (and their other spellings) keep the pivot conversion exactly,
    and "pivot" is exactly the former conversion for every band."""
    rng = np.random.default_rng(1)
    bands = AB_BANDS + sorted(REFERENCE)
    flux = rng.uniform(1e-4, 10.0, (5, len(bands)))
    err = flux / 10
    old_f, old_e = convert_flux_unit(flux, cwave_filters(bands), "Jy", "erg/s/cm2/A",
                                     flux_err=err)
    f, e = catalog_flux_to_flam(flux, bands, "Jy", flux_err=err, convention="pivot")
    assert np.array_equal(f, old_f) and np.array_equal(e, old_e)
    nab = len(AB_BANDS)
    f, e = catalog_flux_to_flam(flux, bands, "Jy", flux_err=err)
    assert np.array_equal(f[:, :nab], old_f[:, :nab])
    assert np.array_equal(e[:, :nab], old_e[:, :nab])
    assert np.all(f[:, nab:] != old_f[:, nab:])
    # AB magnitudes are flat-F_ν by definition: the pivot in both conventions
    mag = 25.0 - 2.5 * np.log10(flux)
    old = convert_flux_unit(mag, cwave_filters(bands), "AB", "erg/s/cm2/A", flux_err=0.1)
    for convention in ("instrument", "pivot"):
        got = catalog_flux_to_flam(mag, bands, "AB", flux_err=0.1, convention=convention)
        assert np.array_equal(got[0], old[0]) and np.array_equal(got[1], old[1])


def test_micro_jansky_errors_and_missing_values():
    bands = ["sdss_r", "wise_w3", "herschel_pacs_160"]
    jy = np.array([[2e-3, 5e-2, 1.5], [np.nan, 4e-2, 1.0]])
    err = np.array([[1e-4, -1.0, 0.1], [1e-4, np.nan, 0.0]])
    f_jy, e_jy = catalog_flux_to_flam(jy, bands, "Jy", flux_err=err)
    f_u, e_u = catalog_flux_to_flam(jy * 1e6, bands, "uJy", flux_err=err * 1e6)
    np.testing.assert_allclose(f_u, f_jy, rtol=1e-12, atol=0)
    np.testing.assert_allclose(e_u, e_jy, rtol=1e-12, atol=0)
    factor = catalog_flux_to_flam(np.ones(3), bands)
    # errors scale by the same factor as the fluxes, their sign kept (<= 0: not used)
    assert e_jy[0, 0] == approx(1e-4 * factor[0], rel=1e-12)
    assert e_jy[0, 1] == approx(-factor[1], rel=1e-12) and e_jy[1, 2] == 0.0
    # NaN stays NaN, each on its own: a NaN flux keeps its error (an upper limit)
    assert np.isnan(f_jy[1, 0]) and e_jy[1, 0] == approx(1e-4 * factor[0], rel=1e-12)
    assert np.isnan(e_jy[1, 1]) and f_jy[1, 1] == approx(4e-2 * factor[1], rel=1e-12)
    # f_λ input passes through
    f, e = catalog_flux_to_flam(f_jy, bands, "erg/s/cm2/A", flux_err=e_jy)
    assert np.array_equal(f, f_jy, equal_nan=True) and np.array_equal(e, e_jy, equal_nan=True)


def test_conversion_wavelengths():
    bands = ["sdss_r", "wise_w3", "spitzer_irac_ch3", "spitzer_mips_24"]
    pivots = cwave_filters(bands)
    assert np.array_equal(catalog_conversion_wavelengths(bands, "pivot"), pivots)
    lam = catalog_conversion_wavelengths(bands)
    assert lam[0] == pivots[0]
    assert lam[1] == approx(115608.0, rel=1e-9)  # ν⁻² at its isophotal wavelength
    # the astro-sedpy name of IRAC 5.8 µm reaches the IRAC entry (ν⁻¹ at 5.731 µm)
    assert lam[2] == catalog_conversion_wavelengths(["spitzer_irac_58"])[0] != pivots[2]
    assert lam[3] < pivots[3]


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"convention": "colour-corrected"}, ValueError, "convention: unknown 'colour-corrected'"),
    ({"convention": None}, ValueError, "convention: unknown None"),
    ({"unit": "mJy"}, ValueError, "unit: unknown flux unit 'mJy'"),
    ({"flux": [1.0, 2.0, 3.0]}, ValueError, "flux: the last axis holds 3 bands but filters"),
    ({"flux_err": [1.0, 2.0, 3.0]}, ValueError, "flux_err: shape"),
    ({"filters": "sdss_r"}, TypeError, "filters: expected a sequence"),
    ({"filters": ["sdss_r", "no_such_band"]}, UnknownFilterError, "no_such_band"),
])
def test_bad_input_names_the_argument(kwargs, error, match):
    args = {"flux": [1.0, 2.0], "filters": ["sdss_r", "wise_w3"], "unit": "Jy",
            "flux_err": None, "convention": "instrument", **kwargs}
    with pytest.raises(error, match=match):
        catalog_flux_to_flam(**args)
    if "convention" in kwargs:
        with pytest.raises(ValueError, match="convention: unknown"):
            catalog_conversion_wavelengths(["sdss_r"], kwargs["convention"])
