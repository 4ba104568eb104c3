"""Instrument table and native-unit conversions."""

from __future__ import annotations

import math
import re

import pytest
from astropy.io import fits

from pixedfit.filters import (
    UnknownFilterError,
    builtin_curve_name,
    builtin_filter_names,
    cwave_filters,
)
from pixedfit.images.instruments import (
    SR_TO_ARCSEC2,
    flux_conversion_factor,
    get_instrument,
    list_instruments,
    worst_resolution,
)
from pixedfit.instruments import UnknownInstrumentError, instrument_aliases, instrument_key
from pixedfit.units import C_AA_PER_S

REQUIRED = [
    "galex_fuv", "galex_nuv", "sdss_u", "sdss_g", "sdss_r", "sdss_i", "sdss_z",
    "2mass_j", "2mass_h", "2mass_k", "wise_w1", "wise_w2", "wise_w3", "wise_w4",
    "spitzer_irac_36", "spitzer_irac_45", "spitzer_irac_58", "spitzer_irac_80",
    "spitzer_mips_24", "spitzer_mips_70", "spitzer_mips_160", "herschel_pacs_70",
    "herschel_pacs_100", "herschel_pacs_160", "herschel_spire_250", "herschel_spire_350",
    "herschel_spire_500", "hst_wfc3_ir_f160w", "jwst_nircam_f200w", "jwst_miri_f770w",
]


def approx(expected, rel=1e-6):
    """``pytest.approx`` without its absolute tolerance of 1e-12, which would pass any two
    conversion factors (1e-20 … 1e-11 erg s⁻¹ cm⁻² Å⁻¹ per native unit)."""
    return pytest.approx(expected, rel=rel, abs=0)


def test_table_complete_and_valid():
    names = [i.filter for i in list_instruments()]
    for f in REQUIRED:
        assert f in names
    for f in names:
        inst = get_instrument(f)
        assert inst.pixel_scale > 0 and inst.psf_fwhm > 0
        assert 0 <= inst.calib_err < 0.2
        assert inst.notes and inst.instrument  # every value has a source
        if builtin_curve_name(f) is not None:
            assert cwave_filters(f) > 0
        else:  # only the families no PyPI package ships curves for
            assert f.startswith(("hst_wfpc2_", "euclid_")), f
    # values of the piXedfit documentation
    assert get_instrument("galex_nuv").psf_fwhm == 5.05
    assert get_instrument("herschel_spire_500").psf_fwhm == 36.09
    assert get_instrument("wise_w3").jy_per_dn == approx(1.8326e-6)  # not the 2.9045e-6 bug
    for f in ("spitzer_mips_70", "spitzer_mips_160", "herschel_pacs_100", "herschel_spire_500"):
        assert get_instrument(f).unit  # the original had no unit for these


def _jy(f):
    return 1e-23 * C_AA_PER_S / cwave_filters(f) ** 2


def test_conversions_analytic():
    assert flux_conversion_factor(get_instrument("sdss_r"), 0.396) == approx(
        3.631e-6 * _jy("sdss_r"))
    # 1 MJy/sr over one 1"x1" pixel = 2.350443e-5 Jy
    # (JWST's MJy/sr is a flat-F_ν calibration: converted at the pivot wavelength)
    f = flux_conversion_factor(get_instrument("jwst_nircam_f200w"), 1.0)
    assert f / _jy("jwst_nircam_f200w") == approx(2.350443e-5, rel=1e-6)
    assert 1e6 / SR_TO_ARCSEC2 == approx(2.350443e-5, rel=1e-6)
    # a beam worth of 1 Jy/beam pixels sums to 1 Jy (converted at the band's wavelength of
    # the Jy → f_λ conversion: SPIRE quotes F_ν for νF_ν = const at 250 µm)
    from pixedfit.instruments import conversion_wavelength

    inst = get_instrument("herschel_spire_250")
    per_pix = flux_conversion_factor(inst, 6.0)
    assert per_pix * inst.beam_area / 36.0 == approx(
        1e-23 * C_AA_PER_S / conversion_wavelength(inst) ** 2)
    assert flux_conversion_factor(get_instrument("galex_fuv"), 1.5) == 1.40e-15
    # AB zero point 8.90 -> 1 count = 1 Jy
    des = get_instrument("ctio_decam_g")
    assert flux_conversion_factor(des, 0.263, zeropoint=8.90) == approx(_jy("ctio_decam_g"))
    hdr = fits.Header({"MAGZERO": 30.0})
    assert flux_conversion_factor(des, 0.263, header=hdr) == approx(
        10 ** (-0.4 * 21.1) * _jy("ctio_decam_g"))
    ps1 = get_instrument("pan-starrs_r")
    f = flux_conversion_factor(ps1, 0.25, header=fits.Header({"EXPTIME": 100.0}))
    assert f == approx(10 ** (-0.4 * (30.0 - 8.90)) * _jy("pan-starrs_r"))
    # 2MASS: DN = 10^(0.4 MAGZP) is a zero-magnitude source -> F0 (W cm^-2 um^-1) * 1e3
    tm = get_instrument("2mass_k")
    f = flux_conversion_factor(tm, 1.0, header=fits.Header({"MAGZP": 20.0}))
    assert f * 10 ** (0.4 * 20.0) == approx(4.283e-14 * 1e3)
    hst = get_instrument("hst_wfc3_ir_f105w")
    assert flux_conversion_factor(hst, 0.06, header=fits.Header({"PHOTFLAM": 3e-20})) == 3e-20


def test_user_defined_and_overrides():
    inst = get_instrument("my_band", pixel_scale=0.5, psf_fwhm=1.0, unit="Jy", calib_err=0.02)
    assert inst.survey == "user" and inst.unit == "Jy"
    assert get_instrument("galex_nuv", {"unit": "Jy"}).unit == "Jy"
    with pytest.raises(KeyError, match="no built-in instrument"):
        get_instrument("my_band", pixel_scale=0.5)
    with pytest.raises(ValueError, match="unknown instrument fields"):
        get_instrument("sdss_r", pixel_size=0.4)
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


# astro-sedpy curve files of the instrument families that have entries
_KNOWN_SEDPY = re.compile(
    r"^(galex_|sdss_|twomass_|wise_|spitzer_irac|spitzer_mips|herschel_|decam_|panstarrs_|"
    r"hsc_|cfht_megacam_|cfht_wircam_|ukirt_wfcam_|vista_vircam_|acs_wfc_|wfc3_|"
    r"jwst_(f|moda_|modb_))")


def test_every_sedpy_name_of_a_known_instrument_has_an_entry():
    """The defect: ``decam_g`` (a valid astro-sedpy name) raised a raw KeyError."""
    sedpy = [n for n in builtin_filter_names()
             if n == builtin_curve_name(n) and _KNOWN_SEDPY.match(n)]
    assert len(sedpy) > 100
    for name in sedpy:
        inst = get_instrument(name)
        assert inst.filter == name  # the curve of the name asked for is used
        key = instrument_key(name)
        # same band as its entry: same curve, or a module/variant of the same filter
        assert builtin_curve_name(key) == builtin_curve_name(name) or \
            name.startswith(("jwst_mod", "vista_vircam_", "spitzer_mips_70_")), name
    g = get_instrument("decam_g")
    assert (g.survey, g.pixel_scale, g.zp_keyword) == ("des", 0.263, "MAGZERO")
    assert instrument_aliases("ctio_decam_g") == ["decam_g"]
    assert get_instrument("twomass_Ks").vega_flam == get_instrument("2mass_k").vega_flam
    assert get_instrument("jwst_moda_f200w").psf_fwhm == get_instrument("jwst_f200w").psf_fwhm
    # piXedfit's "hst_wfpc3" names are WFC3 bands
    assert get_instrument("hst_wfpc3_f814w").survey == "hst"
    assert instrument_key("hst_wfpc3_f160w") == "hst_wfc3_ir_f160w"


def test_unknown_name_lists_close_matches_and_the_override():
    with pytest.raises(UnknownInstrumentError) as info:
        get_instrument("decam_gg")
    text = str(info.value)
    assert "decam_g" in text and "instruments={'decam_gg'" in text
    assert "[images.instruments." in text and "psf_fwhm" in text
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)


def test_list_instruments_gives_entries_with_their_survey():
    entries = list_instruments()
    assert all(hasattr(i, "survey") and hasattr(i, "filter") for i in entries)
    families = {i.instrument for i in entries}
    for fam in ("GALEX FUV", "SDSS imaging", "2MASS", "WISE", "Spitzer IRAC", "Spitzer MIPS",
                "Herschel PACS", "Herschel SPIRE", "CTIO Blanco DECam", "Pan-STARRS1 GPC1",
                "Subaru Hyper Suprime-Cam", "CFHT MegaCam", "CFHT WIRCam", "UKIRT WFCAM",
                "VISTA VIRCAM", "HST ACS/WFC", "HST WFC3/UVIS", "HST WFC3/IR", "HST WFPC2",
                "JWST NIRCam", "JWST MIRI", "Euclid VIS", "Euclid NISP"):
        assert fam in families, fam
    hst = list_instruments("HST")
    assert hst and all(i.survey == "hst" for i in hst)
    assert all("assumed" in i.notes for i in list_instruments("jwst"))
    with pytest.raises(ValueError, match="survey: unknown"):
        list_instruments("hubble")


def test_zero_points_from_headers():
    hsc = get_instrument("hsc_i")
    f27 = flux_conversion_factor(hsc, 0.168)  # the HSC-SSP default AB zero point 27
    assert f27 == approx(10 ** (-0.4 * (27.0 - 8.90)) * _jy("hsc_i"))
    hdr = fits.Header({"FLUXMAG0": 10 ** (0.4 * 30.0)})
    assert flux_conversion_factor(hsc, 0.168, header=hdr) == approx(
        10 ** (-0.4 * (30.0 - 8.90)) * _jy("hsc_i"))
    mega = get_instrument("cfht_mega_r")
    assert flux_conversion_factor(mega, 0.187, header=fits.Header({"PHOTZP": 30.0})) == \
        approx(10 ** (-0.4 * 21.1) * _jy("cfht_mega_r"))
    with pytest.raises(ValueError, match=r"PHOTZP.*absent.*zeropoint"):
        flux_conversion_factor(mega, 0.187, header=fits.Header())
    with pytest.raises(ValueError, match=r"AB zero point.*Vega and per second"):
        flux_conversion_factor(get_instrument("vircam_ks"), 0.339)


def test_des_image_through_the_sedpy_name(shared_data):
    hdr = fits.getheader(shared_data / "hostphot_sn2006bh_griz" / "DES_g.fits.gz", 0)
    a = flux_conversion_factor(get_instrument("decam_g"), 0.263, header=hdr)
    b = flux_conversion_factor(get_instrument("ctio_decam_g"), 0.263, header=hdr)
    assert a == approx(b, rel=1e-12)
    assert a == approx(10 ** (-0.4 * (hdr["MAGZERO"] - 8.90)) * _jy("decam_g"))


def test_wfpc2_needs_a_user_curve(tmp_path, monkeypatch):
    """HST WFPC2: the entry exists, the curve must be added (no PyPI package ships it)."""
    from pixedfit.filters import add_filter

    monkeypatch.setenv("PIXEDFIT_DATA_DIR", str(tmp_path))
    inst = get_instrument("hst_wfpc2_f814w")
    hdr = fits.Header({"PHOTFLAM": 2.5e-18})
    assert flux_conversion_factor(inst, 0.1, header=hdr) == 2.5e-18  # needs no curve
    with pytest.raises(UnknownFilterError, match=r"add_filter\(name, wave, trans\)"):
        cwave_filters("hst_wfpc2_f814w")
    wave = [6900.0, 7000.0, 9500.0, 9600.0]
    add_filter("hst_wfpc2_f814w", wave, [0.0, 1.0, 1.0, 0.0])
    assert 7000 < cwave_filters("hst_wfpc2_f814w") < 9500


def _band_mean(filt, f_lambda):
    """Photon-weighted band mean of f_λ(λ) by direct quadrature on the filter curve (an
    independent check of the conversion wavelengths)."""
    import numpy as np

    from pixedfit.filters import get_filter_curve

    wave, trans = get_filter_curve(filt)
    lam = np.linspace(wave[0], wave[-1], 200001)
    t = np.interp(lam, wave, trans)
    return np.trapezoid(f_lambda(lam) * lam * t, lam) / np.trapezoid(lam * t, lam)


@pytest.mark.parametrize("filt", ["wise_w1", "wise_w3", "wise_w4", "spitzer_irac_80",
                                  "spitzer_mips_24", "spitzer_mips_70", "herschel_pacs_160",
                                  "herschel_spire_250", "herschel_spire_500", "sdss_r"])
def test_jy_conversion_follows_the_survey_reference_spectrum(filt):
    """A source of the survey's reference spectrum with F_ν = 1 Jy at the reference
    wavelength (WISE: ν⁻² at the isophotal λ; IRAC, PACS, SPIRE: ν⁻¹; MIPS: a 10⁴ K
    blackbody; SDSS: flat F_ν) has the band-mean f_λ the Jy → f_λ factor gives. At the
    pivot wavelength WISE W3 was 8.3 % low and MIPS 70 6.8 % low."""
    import dataclasses

    inst = get_instrument(filt)
    lam0 = inst.ref_wave if inst.ref_wave is not None else cwave_filters(filt)
    if inst.ref_temperature is not None:
        def shape(x):
            return x**-5.0 / np.expm1(1.4387769e8 / (x * inst.ref_temperature))
    else:
        alpha = inst.ref_alpha if inst.ref_alpha is not None else 0.0

        def shape(x):
            return (x / lam0) ** (-2.0 - alpha)
    import numpy as np

    # f_λ of the reference spectrum normalised to F_ν(λ0) = 1 Jy
    norm = 1e-23 * C_AA_PER_S / lam0**2 / shape(np.array([lam0]))[0]
    want = _band_mean(filt, lambda x: norm * shape(x))
    per_jy = flux_conversion_factor(dataclasses.replace(inst, unit="Jy"), 1.0)
    assert per_jy == approx(want, rel=2e-5)


def test_conversion_wavelengths_against_the_original():
    """WISE quotes F_ν at the isophotal wavelengths for a flat f_λ: exactly those; MIPS's
    10⁴ K blackbody gives the original's stored cwave values (232096, 684448, 1525902 Å:
    spec §5, pixedfit_filters.tsv) to 0.05 %; AB bands keep the pivot."""
    from pixedfit.instruments import conversion_wavelength

    for filt, iso in (("wise_w1", 33526.0), ("wise_w3", 115608.0), ("wise_w4", 220883.0)):
        assert conversion_wavelength(get_instrument(filt)) == approx(iso, rel=1e-9)
    for filt, orig in (("spitzer_mips_24", 232096.0), ("spitzer_mips_70", 684447.6),
                       ("spitzer_mips_160", 1525902.3)):
        assert conversion_wavelength(get_instrument(filt)) == approx(orig, rel=5e-4)
    for filt in ("sdss_r", "galex_nuv", "jwst_nircam_f200w", "hst_acs_f814w"):
        assert conversion_wavelength(get_instrument(filt)) == cwave_filters(filt)
    with pytest.raises(ValueError, match="ref_alpha or ref_temperature"):
        conversion_wavelength(get_instrument("sdss_r", ref_wave=6000.0))
    with pytest.raises(ValueError, match="ref_wave must be"):
        conversion_wavelength(get_instrument("sdss_r", ref_wave=-1.0, ref_alpha=0.0))


@pytest.mark.parametrize(("value", "filt", "ok"), [
    ("electron / s", "hst_wfc3_ir_f105w", True),   # astropy's spelling (real HFF header)
    ("ELECTRONS/S", "hst_wfc3_ir_f105w", True),
    ("electrons s^-1", "hst_wfc3_ir_f105w", True),
    ("MJy / sr", "spitzer_irac_36", True),
    ("MJy sr-1", "jwst_nircam_f200w", True),
    ("MJy / sr", "sdss_r", False),
    ("Jy / beam", "herschel_spire_250", True),
    ("Jy / beam", "herschel_pacs_70", False),  # was read as Jy: 13x too much flux
    ("Jy/pix   / per pixel", "herschel_pacs_70", True),  # a comment inside the value
    ("Jy/pix   / per pixel", "galex_nuv", False),
    ("furlongs", "sdss_r", True),  # unknown spellings are not judged
])
def test_header_unit_spellings(value, filt, ok):
    from pixedfit.instruments import check_header_unit

    hdr = fits.Header({"BUNIT": value})
    if ok:
        check_header_unit(get_instrument(filt), hdr)
    else:
        with pytest.raises(ValueError, match="wrong units"):
            check_header_unit(get_instrument(filt), hdr)


def test_real_hst_headers_pass_the_unit_check(shared_data):
    """Both HFF cut-outs of the shared data (BUNIT 'electron / s' and 'ELECTRONS/S') are
    WFC3/IR count rates: the first was refused as counts."""
    from pixedfit.instruments import check_header_unit

    base = shared_data / "petrofit_hff_a2744_f105w"
    for name in ("abell_2744_cd_galaxy_f105w", "abell_2744_dwarf_galaxy_f105w"):
        check_header_unit(get_instrument("hst_wfc3_ir_f105w"),
                          fits.getheader(base / f"{name}.fits.gz"))


def test_wise_zero_point_from_the_header():
    """WISE's DN → Jy factors hold for the Atlas images' MAGZP (20.5, 19.5, 18.0, 13.0);
    an image with another MAGZP in its header (unWISE coadds: 22.5) scales with it (it
    was ignored: a unWISE W1 image came out 6.3× too bright)."""
    for filt, atlas in (("wise_w1", 20.5), ("wise_w4", 13.0)):
        inst = get_instrument(filt)
        plain = flux_conversion_factor(inst, 1.375)
        assert flux_conversion_factor(inst, 1.375, header=fits.Header({"MAGZP": atlas})) \
            == approx(plain, rel=1e-14)
        unwise = flux_conversion_factor(inst, 1.375, header=fits.Header({"MAGZP": 22.5}))
        assert unwise == approx(plain * 10 ** (-0.4 * (22.5 - atlas)), rel=1e-12)
        # the zeropoint argument overrides the header
        assert flux_conversion_factor(inst, 1.375, header=fits.Header({"MAGZP": 22.5}),
                                      zeropoint=atlas) == approx(plain, rel=1e-14)


def test_sdss_u_and_z_are_put_on_the_ab_system():
    """SDSS nanomaggies are AB but for u (u_AB = u − 0.04) and z (z_AB = z + 0.02), SDSS
    data model: 1 nanomaggy of u is 3.7 % more flux than 3.631 µJy, of z 1.8 % less."""
    for b, offset in (("u", -0.04), ("g", 0.0), ("r", 0.0), ("z", 0.02)):
        f = f"sdss_{b}"
        assert flux_conversion_factor(get_instrument(f), 0.396) == approx(
            3.631e-6 * _jy(f) * 10 ** (-0.4 * offset), rel=1e-12)
