"""Instrument table: pixel scale, PSF FWHM, native unit and calibration of survey images.

All instrument data live in :data:`_TABLE` below (one place). Values are those of the
piXedfit documentation and source (PSF FWHM, unit conversions, SPIRE beam areas; see
``pixedfit_original_spec.md`` §5) with the bugs listed there fixed: WISE W3 uses the
published DN→Jy factor 1.8326e-6 Jy/DN (Wright et al. 2010; the original code used
2.9045e-6), and every far-IR band has a native unit (the original's ``flux_or_sb`` table
missed MIPS 70/160, PACS 100 and SPIRE 500). Calibration uncertainties are the fractional
values adopted by DustPedia (Clark et al. 2018, Table 1) for GALEX to SPIRE; for the other
surveys the published calibration accuracy or a nominal 1-3 % is given, marked
``assumed`` in :attr:`Instrument.notes` when nominal.

Native units understood by :func:`flux_conversion_factor` (per pixel unless stated):

``"erg/s/cm2/A"``   f_λ per pixel (times :attr:`Instrument.unit_scale`)
``"Jy"``            Jy per pixel
``"MJy/sr"``        surface brightness; × 2.350443e-5 × pixel area [arcsec²] → Jy/pixel
``"Jy/beam"``       × pixel area / beam area → Jy/pixel
``"nanomaggy"``     1 nanomaggy = 3.631e-6 Jy (SDSS)
``"counts/s"``      GALEX count rate; × :attr:`Instrument.flam_per_count` → f_λ
``"DN"``            WISE data numbers; × :attr:`Instrument.jy_per_dn` → Jy for the Atlas
                    zero points, × 10^(−0.4 (MAGZP − those)) for another header ``MAGZP``
``"DN_2mass"``      2MASS data numbers, zero point ``MAGZP`` from the header (Vega) and
                    the 2MASS zero-magnitude f_λ :attr:`Instrument.vega_flam` (W cm⁻² µm⁻¹)
``"e/s"``           HST count rate; × ``PHOTFLAM`` (header) → f_λ
``"counts_zp"``     counts with an AB zero point (``zeropoint`` argument, header keyword
                    :attr:`Instrument.zp_keyword`, or :attr:`Instrument.zeropoint`;
                    PS1 stacks: 25 + 2.5 log10(EXPTIME); HSC: 2.5 log10(FLUXMAG0))

Every entry is reached by its piXedfit filter name and by the astro-sedpy name of the same
curve (``decam_g`` for ``ctio_decam_g``, ``twomass_Ks`` for ``2mass_k``...), see
:func:`instrument_key`. Entries exist for GALEX, SDSS, 2MASS, WISE, Spitzer, Herschel,
DECam, Pan-STARRS, HSC, CFHT MegaCam/WIRCam, UKIRT WFCAM, VISTA VIRCAM, HST
ACS/WFC3/WFPC2, JWST NIRCam/MIRI and Euclid; each has the source of its values in
:attr:`Instrument.notes`. HST WFPC2 and Euclid curves are not shipped by astro-sedpy: add
them with :func:`pixedfit.filters.add_filter` under the entry's name
(``hst_wfpc2_f814w``, ``euclid_vis``...).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field, replace
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .filters import builtin_curve_name, builtin_filter_names, cwave_filters, get_filter_curve
from .filters import photometry as band_photometry
from .units import C_AA_PER_S, JY_CGS, canonical_flux_unit, convert_flux_unit

__all__ = [
    "JY_CONVENTIONS",
    "NATIVE_UNITS",
    "SR_TO_ARCSEC2",
    "Instrument",
    "UnknownInstrumentError",
    "catalog_conversion_wavelengths",
    "catalog_flux_to_flam",
    "check_header_unit",
    "conversion_wavelength",
    "flux_conversion_factor",
    "get_instrument",
    "instrument_aliases",
    "instrument_key",
    "list_instruments",
    "worst_resolution",
]

#: One steradian in arcsec² (so 1 MJy/sr = 1e6 / SR_TO_ARCSEC2 Jy/arcsec² = 2.350443e-5).
SR_TO_ARCSEC2 = (180.0 / math.pi * 3600.0) ** 2
#: Native image units understood by :func:`flux_conversion_factor`.
NATIVE_UNITS = (
    "erg/s/cm2/A",
    "Jy",
    "MJy/sr",
    "Jy/beam",
    "nanomaggy",
    "counts/s",
    "DN",
    "DN_2mass",
    "e/s",
    "counts_zp",
)
#: Units whose pixel values are surface brightnesses (reprojection keeps them per area).
SURFACE_BRIGHTNESS_UNITS = ("MJy/sr", "Jy/beam")
#: Units calibrated directly in f_λ (no Jy → f_λ conversion).
_FLAM_UNITS = ("erg/s/cm2/A", "counts/s", "DN_2mass", "e/s")


@dataclass(frozen=True)
class Instrument:
    """One band of one instrument.

    Attributes
    ----------
    filter : str
        pixedfit filter name (see :mod:`pixedfit.filters`).
    survey : str
        Survey or instrument family ("galex", "sdss", "2mass", "wise", ...).
    pixel_scale : float
        Typical pixel scale of the survey products, arcsec/pixel. Images carry their own
        scale in the WCS, which always takes precedence.
    psf_fwhm : float
        PSF full width at half maximum, arcsec.
    unit : str
        Native pixel unit, one of :data:`NATIVE_UNITS`.
    calib_err : float
        Fractional (1σ) absolute calibration uncertainty.
    flam_per_count, jy_per_dn, vega_flam, beam_area : float, optional
        Unit-conversion constants (see the module docstring).
    zeropoint : float, optional
        Default AB zero point of ``counts_zp`` images (when the header has none); for
        ``DN`` images (WISE) the Vega ``MAGZP`` for which :attr:`jy_per_dn` holds, so that
        images with another zero point in their header are scaled to it.
    zp_keyword : str, optional
        Header keyword holding the zero point or calibration (``MAGZERO``, ``PHOTZP``,
        ``FLUXMAG0``, ``MAGZP``, ``PHOTFLAM``; ``PS1_EXPTIME`` = 25 + 2.5 log10(EXPTIME)).
    unit_scale : float
        Extra factor applied to native values.
    ref_wave, ref_alpha, ref_temperature : float, optional
        The survey's flux-density convention, for bands whose calibrated Jy values are not
        those of a flat-F_ν source at the pivot wavelength: F_ν is quoted at ``ref_wave``
        (Å) for a reference spectrum F_ν ∝ ν^``ref_alpha`` (WISE: ν⁻² at the isophotal
        wavelengths; IRAC, PACS, SPIRE: ν⁻¹) or a blackbody of ``ref_temperature`` K (MIPS:
        10⁴ K). :func:`conversion_wavelength` turns it into the wavelength of the exact
        Jy → band-mean f_λ conversion. None (the default): the pivot wavelength, exact for
        AB-calibrated (flat-F_ν) bands.
    instrument : str
        Telescope and camera, for display.
    notes : str
        Where the values come from; nominal values are marked "assumed".
    """

    filter: str
    survey: str
    pixel_scale: float
    psf_fwhm: float
    unit: str
    calib_err: float
    _: KW_ONLY
    flam_per_count: float | None = None
    jy_per_dn: float | None = None
    vega_flam: float | None = None
    beam_area: float | None = None
    zeropoint: float | None = None
    zp_keyword: str | None = None
    unit_scale: float = 1.0
    ref_wave: float | None = None
    ref_alpha: float | None = None
    ref_temperature: float | None = None
    notes: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    instrument: str = ""

    @property
    def surface_brightness(self) -> bool:
        """True when pixel values are per unit area (MJy/sr, Jy/beam)."""
        return self.unit in SURFACE_BRIGHTNESS_UNITS

    @property
    def via_jansky(self) -> bool:
        """True when the native unit reaches f_λ through a flux density in Jy (at
        :func:`conversion_wavelength`); False for f_λ-calibrated units (erg/s/cm2/A,
        GALEX counts/s, 2MASS DN, HST e/s)."""
        return self.unit not in _FLAM_UNITS


def _i(filt: str, survey: str, pix: float, fwhm: float, unit: str, calib: float,
       **kw: Any) -> Instrument:
    return Instrument(filt, survey, pix, fwhm, unit, calib, **kw)


# Sources, one per family; "assumed" marks a nominal value (no published figure adopted).
_DUSTPEDIA = "calibration error: DustPedia (Clark et al. 2018, Table 1)"
_GALEX = ("GALEX: 1.5\"/px intensity maps, counts/s, f_λ per count s⁻¹ of the GALEX GR6 "
          "documentation; FWHM: piXedfit (Morrissey et al. 2007 give 4.2\"/5.3\"); "
          + _DUSTPEDIA)
_SDSS = ("SDSS: 0.396\"/px frames in nanomaggies (22.5 AB), SDSS DR data model, with the "
         "SDSS offsets to true AB, u_AB = u − 0.04 and z_AB = z + 0.02 (unit_scale); FWHM: "
         "piXedfit (typical seeing, assumed); " + _DUSTPEDIA)
_2MASS = ("2MASS: Atlas images 1\"/px, DN with header MAGZP (Vega) and the zero-magnitude "
          "f_λ of Cohen et al. 2003; FWHM: piXedfit; " + _DUSTPEDIA)
_WISE = ("WISE: Atlas images 1.375\"/px, DN → Jy factors of Wright et al. 2010 / the "
         "Explanatory Supplement, F_ν quoted at the isophotal wavelengths for F_ν ∝ ν⁻² "
         "(Wright et al. 2010, Table 1); FWHM: piXedfit; " + _DUSTPEDIA)
_SPITZER = ("Spitzer: SEIP/SINGS-like mosaics in MJy/sr; F_ν quoted at the nominal "
            "wavelengths for νF_ν = const (IRAC) or a 10⁴ K blackbody (MIPS) (IRAC and "
            "MIPS Instrument Handbooks); FWHM: piXedfit (Aniano et al. 2011 kernels); "
            + _DUSTPEDIA)
_HERSCHEL = ("Herschel: PACS maps in Jy/pixel, SPIRE in Jy/beam with the SPIRE Handbook "
             "beam areas, F_ν quoted at 70…500 µm for νF_ν = const (PACS and SPIRE "
             "Handbooks); FWHM: piXedfit (Aniano et al. 2011); " + _DUSTPEDIA)
_DECAM = ("DECam: 0.263\"/px; DES coadd tiles in counts with MAGZERO (= 30, AB); FWHM: DES "
          "DR1 median seeing (Abbott et al. 2018; u: assumed); calibration error 1 % "
          "assumed (DES DR1 uniformity < 3 mmag, absolute scale ~1 %)")
_PS1 = ("Pan-STARRS1: 0.25\"/px 3π stacks in counts, AB zero point 25 + 2.5 log10(EXPTIME) "
        "(PS1 image-server stacks; linear images, not the asinh-compressed ones); FWHM: "
        "median 3π seeing (Chambers et al. 2016); calibration error 1 % assumed (Schlafly "
        "et al. 2012: < 1 % uniformity)")
_HSC = ("Subaru HSC: 0.168\"/px HSC-SSP coadds, AB zero point 27.0 (header FLUXMAG0 = "
        "10^(0.4×27)); FWHM: HSC-SSP Wide median seeing (Aihara et al. 2018); calibration "
        "error 1 % assumed")
_MEGACAM = ("CFHT MegaCam: 0.187\"/px; MegaPipe stacks with PHOTZP (AB, normally 30); FWHM "
            "assumed (typical CFHT seeing); calibration error 2 % assumed")
_WIRCAM = ("CFHT WIRCam: 0.306\"/px; stacks with PHOTZP (AB); FWHM assumed (typical "
           "seeing); calibration error 2 % assumed")
_WFCAM = ("UKIRT WFCAM (UKIDSS): 0.4\"/px; CASU MAGZPT is Vega and per second: give the AB "
          "zero point of the image (AB − Vega: J 0.938, H 1.379, K 1.900, Hewett et al. "
          "2006); FWHM assumed (UKIDSS median seeing ~0.8\"); calibration error 2 % "
          "(Hodgkin et al. 2009: 1.5–2 %)")
_VIRCAM = ("VISTA VIRCAM (VHS, VIKING...): 0.339\"/px; CASU MAGZPT is Vega and per second: "
           "give the AB zero point of the image (AB − Vega: Z 0.502, Y 0.600, J 0.916, "
           "H 1.366, Ks 1.827, CASU); FWHM assumed (~0.9\" typical); calibration error 2 % "
           "assumed (González-Fernández et al. 2018)")
_ACS = ("HST ACS/WFC: 0.05\"/px drizzled, e⁻/s with PHOTFLAM; FWHM ~0.1\" (ACS Instrument "
        "Handbook); calibration error 2 % assumed")
_UVIS = ("HST WFC3/UVIS: 0.04\"/px drizzled, e⁻/s with PHOTFLAM; FWHM ~0.07–0.08\" (WFC3 "
         "Instrument Handbook); calibration error 2 % assumed")
_IR = ("HST WFC3/IR: 0.13\"/px native (mosaics are often 0.06\"), e⁻/s with PHOTFLAM; FWHM: "
       "WFC3 Instrument Handbook; calibration error 2 % assumed")
_WFPC2 = ("HST WFPC2: WF chips 0.0996\"/px (PC 0.0455\"), products in DN/s (or e⁻/s) with "
          "PHOTFLAM for that unit; FWHM assumed (undersampled by the WF pixels); "
          "calibration error 3 % assumed; no PyPI package ships the curves: add them with "
          "`pixedfit filters add` (see README)")
_NIRCAM = ("JWST NIRCam: 0.031\"/px (SW) and 0.063\"/px (LW) level-3 products in MJy/sr; "
           "FWHM: JDox PSF tables; calibration error 3 % assumed")
_MIRI = ("JWST MIRI: 0.11\"/px level-3 products in MJy/sr; FWHM: JDox PSF tables; "
         "calibration error 3 % assumed")
_EUCLID = ("Euclid: MER mosaics at 0.1\"/px for VIS and NISP (NISP's detector pixels are "
           "0.3\"), in µJy per pixel (AB zero point "
           "23.9, assumed: check the product's header); FWHM assumed (VIS ~0.16\", NISP "
           "~0.45\"); calibration error 1 % assumed; no PyPI package ships the curves: add "
           "them with `pixedfit filters add` (see README)")

_TABLE: dict[str, Instrument] = {
    i.filter: i
    for i in (
        _i("galex_fuv", "galex", 1.5, 4.48, "counts/s", 0.045, flam_per_count=1.40e-15,
           instrument="GALEX FUV", notes=_GALEX),
        _i("galex_nuv", "galex", 1.5, 5.05, "counts/s", 0.027, flam_per_count=2.06e-16,
           instrument="GALEX NUV", notes=_GALEX),
        *(_i(f"sdss_{b}", "sdss", 0.396, fw, "nanomaggy", cal, instrument="SDSS imaging",
             unit_scale=10.0 ** (-0.4 * ab), notes=_SDSS)
          for b, fw, cal, ab in (("u", 1.4, 0.013, -0.04), ("g", 1.4, 0.008, 0.0),
                                 ("r", 1.2, 0.008, 0.0), ("i", 1.2, 0.007, 0.0),
                                 ("z", 1.2, 0.008, 0.02))),
        *(_i(f"2mass_{b}", "2mass", 1.0, fw, "DN_2mass", cal, vega_flam=f0, zp_keyword="MAGZP",
             instrument="2MASS", notes=_2MASS)
          for b, fw, cal, f0 in (("j", 3.4, 0.017, 3.129e-13), ("h", 3.4, 0.019, 1.133e-13),
                                 ("k", 3.5, 0.019, 4.283e-14))),
        *(_i(f"wise_w{k}", "wise", 1.375, fw, "DN", cal, jy_per_dn=jy, ref_wave=iso,
             ref_alpha=-2.0, zeropoint=zp, zp_keyword="MAGZP", instrument="WISE",
             notes=_WISE)
          for k, fw, cal, jy, iso, zp in ((1, 5.79, 0.029, 1.9350e-6, 33526.0, 20.5),
                                          (2, 6.37, 0.034, 2.7048e-6, 46028.0, 19.5),
                                          (3, 6.60, 0.046, 1.8326e-6, 115608.0, 18.0),
                                          (4, 11.89, 0.056, 5.2269e-5, 220883.0, 13.0))),
        *(_i(f"spitzer_irac_{b}", "spitzer", 0.6, fw, "MJy/sr", 0.03, ref_wave=lam,
             ref_alpha=-1.0, instrument="Spitzer IRAC", notes=_SPITZER)
          for b, fw, lam in (("36", 1.9, 35500.0), ("45", 1.81, 44930.0),
                             ("58", 2.11, 57310.0), ("80", 2.82, 78720.0))),
        *(_i(f"spitzer_mips_{b}", "spitzer", pix, fw, "MJy/sr", cal, ref_wave=lam,
             ref_temperature=1e4, instrument="Spitzer MIPS", notes=_SPITZER)
          for b, pix, fw, cal, lam in (("24", 1.5, 6.43, 0.05, 236800.0),
                                       ("70", 4.5, 18.74, 0.10, 714200.0),
                                       ("160", 9.0, 38.78, 0.12, 1559000.0))),
        *(_i(f"herschel_pacs_{b}", "herschel", pix, fw, "Jy", 0.07, ref_wave=float(b) * 1e4,
             ref_alpha=-1.0, instrument="Herschel PACS", notes=_HERSCHEL)
          for b, pix, fw in (("70", 1.4, 5.67), ("100", 1.7, 7.04), ("160", 2.85, 11.18))),
        *(_i(f"herschel_spire_{b}", "herschel", pix, fw, "Jy/beam", 0.055, beam_area=beam,
             ref_wave=float(b) * 1e4, ref_alpha=-1.0, instrument="Herschel SPIRE",
             notes=_HERSCHEL)
          for b, pix, fw, beam in (("250", 6.0, 18.15, 469.3542), ("350", 8.0, 24.88, 831.275),
                                   ("500", 12.0, 36.09, 1804.3058))),
        *(_i(f"ctio_decam_{b}", "des", 0.263, fw, "counts_zp", 0.01, zp_keyword="MAGZERO",
             instrument="CTIO Blanco DECam", notes=_DECAM)
          for b, fw in (("u", 1.2), ("g", 1.12), ("r", 0.96), ("i", 0.88), ("z", 0.84),
                        ("Y", 0.90))),
        *(_i(f"pan-starrs_{b}", "ps1", 0.25, fw, "counts_zp", 0.01, zp_keyword="PS1_EXPTIME",
             instrument="Pan-STARRS1 GPC1", notes=_PS1)
          for b, fw in (("g", 1.31), ("r", 1.19), ("i", 1.11), ("z", 1.07), ("y", 1.02))),
        *(_i(f"hsc_{b}", "hsc", 0.168, fw, "counts_zp", 0.01, zp_keyword="FLUXMAG0",
             zeropoint=27.0, instrument="Subaru Hyper Suprime-Cam", notes=_HSC)
          for b, fw in (("g", 0.77), ("r", 0.76), ("i", 0.58), ("z", 0.68), ("y", 0.68))),
        *(_i(f"cfht_mega_{b}", "cfht", 0.187, fw, "counts_zp", 0.02, zp_keyword="PHOTZP",
             instrument="CFHT MegaCam", notes=_MEGACAM)
          for b, fw in (("u", 0.9), ("g", 0.8), ("r", 0.75), ("i", 0.7), ("z", 0.7))),
        *(_i(f"cfht_wircam_{b}", "cfht", 0.306, 0.7, "counts_zp", 0.02, zp_keyword="PHOTZP",
             instrument="CFHT WIRCam", notes=_WIRCAM)
          for b in ("j", "h", "ks")),
        *(_i(f"wfcam_{b}", "ukirt", 0.4, 0.8, "counts_zp", 0.02, instrument="UKIRT WFCAM",
             notes=_WFCAM)
          for b in ("j", "h", "k")),
        *(_i(f"vircam_{b}", "vista", 0.339, 0.9, "counts_zp", 0.02, instrument="VISTA VIRCAM",
             notes=_VIRCAM)
          for b in ("z", "y", "j", "h", "ks")),
        *(_i(f"hst_acs_{b}", "hst", 0.05, 0.10, "e/s", 0.02, zp_keyword="PHOTFLAM",
             instrument="HST ACS/WFC", notes=_ACS)
          for b in ("f435w", "f475w", "f555w", "f606w", "f625w", "f775w", "f814w", "f850lp")),
        *(_i(f"hst_wfc3_uvis_{b}", "hst", 0.04, fw, "e/s", 0.02, zp_keyword="PHOTFLAM",
             instrument="HST WFC3/UVIS", notes=_UVIS)
          for b, fw in (("f225w", 0.08), ("f275w", 0.08), ("f336w", 0.075), ("f390w", 0.075),
                        ("f475w", 0.07), ("f555w", 0.07), ("f606w", 0.07), ("f814w", 0.075))),
        *(_i(f"hst_wfc3_ir_{b}", "hst", 0.13, fw, "e/s", 0.02, zp_keyword="PHOTFLAM",
             instrument="HST WFC3/IR", notes=_IR)
          for b, fw in (("f098m", 0.13), ("f105w", 0.14), ("f110w", 0.14), ("f125w", 0.14),
                        ("f140w", 0.15), ("f160w", 0.15))),
        *(_i(f"hst_wfpc2_{b}", "hst", 0.0996, fw, "e/s", 0.03, zp_keyword="PHOTFLAM",
             instrument="HST WFPC2", notes=_WFPC2)
          for b, fw in (("f300w", 0.18), ("f336w", 0.18), ("f380w", 0.17), ("f439w", 0.17),
                        ("f450w", 0.17), ("f555w", 0.17), ("f569w", 0.17), ("f606w", 0.17),
                        ("f622w", 0.17), ("f675w", 0.17), ("f702w", 0.17), ("f791w", 0.18),
                        ("f814w", 0.18), ("f850lp", 0.19))),
        *(_i(f"jwst_nircam_{b}", "jwst", 0.031 if int(b[1:4]) < 250 else 0.063, fw, "MJy/sr",
             0.03, instrument="JWST NIRCam", notes=_NIRCAM)
          for b, fw in (("f070w", 0.030), ("f090w", 0.034), ("f115w", 0.040), ("f140m", 0.048),
                        ("f150w", 0.050), ("f150w2", 0.050), ("f162m", 0.055),
                        ("f182m", 0.062), ("f200w", 0.066), ("f210m", 0.071),
                        ("f250m", 0.084), ("f277w", 0.091), ("f300m", 0.100),
                        ("f322w2", 0.106), ("f335m", 0.111), ("f356w", 0.115),
                        ("f360m", 0.120), ("f410m", 0.137), ("f430m", 0.144),
                        ("f444w", 0.145), ("f460m", 0.155), ("f480m", 0.162))),
        *(_i(f"jwst_miri_{b}", "jwst", 0.11, fw, "MJy/sr", 0.03, instrument="JWST MIRI",
             notes=_MIRI)
          for b, fw in (("f560w", 0.207), ("f770w", 0.269), ("f1000w", 0.328),
                        ("f1130w", 0.375), ("f1280w", 0.420), ("f1500w", 0.488),
                        ("f1800w", 0.591), ("f2100w", 0.674), ("f2550w", 0.803))),
        _i("euclid_vis", "euclid", 0.1, 0.16, "counts_zp", 0.01, zeropoint=23.9,
           instrument="Euclid VIS", notes=_EUCLID),
        *(_i(f"euclid_nisp_{b}", "euclid", 0.1, 0.45, "counts_zp", 0.01, zeropoint=23.9,
             instrument="Euclid NISP", notes=_EUCLID)
          for b in ("y", "j", "h")),
    )
}

# Names of the same bands in other spellings (astro-sedpy files not reached through
# data/filter_aliases.tsv, piXedfit's "hst_wfpc3" names of WFC3 bands).
_EXTRA_ALIASES: dict[str, str] = {
    **{f"jwst_{m}_{b}": f"jwst_nircam_{b}"
       for m in ("moda", "modb")
       for b in ("f070w", "f090w", "f115w", "f140m", "f150w", "f150w2", "f162m", "f182m",
                 "f200w", "f210m", "f250m", "f277w", "f300m", "f322w2", "f335m", "f356w",
                 "f360m", "f410m", "f430m", "f444w", "f460m", "f480m")},
    "jwst_f150w2": "jwst_nircam_f150w2",
    "jwst_f322w2": "jwst_nircam_f322w2",
    **{f"vista_vircam_{b.upper() if b != 'ks' else 'Ks'}_FILTER": f"vircam_{b}"
       for b in ("z", "y", "j", "h", "ks")},
    "spitzer_mips_70_dpe": "spitzer_mips_70",
}


class UnknownInstrumentError(KeyError, ValueError):
    """A filter name without an instrument entry (and not enough fields to define one)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@functools.cache
def _alias_map() -> dict[str, str]:
    """Every other name of a band with an entry → the entry's key."""
    aliases = dict(_EXTRA_ALIASES)
    by_curve: dict[str, str] = {}
    for key in _TABLE:
        curve = builtin_curve_name(key)
        if curve is not None:
            by_curve.setdefault(curve, key)
    for name in builtin_filter_names():
        if name in _TABLE or name in aliases:
            continue
        curve = builtin_curve_name(name)
        if curve in by_curve:
            aliases[name] = by_curve[curve]
    return aliases


def instrument_key(name: str) -> str | None:
    """The key of the instrument entry for a filter name (piXedfit, astro-sedpy or other
    known spelling), or None."""
    if name in _TABLE:
        return name
    return _alias_map().get(name)


def instrument_aliases(key: str) -> list[str]:
    """The other filter names that share the instrument entry ``key``, sorted."""
    return sorted(a for a, k in _alias_map().items() if k == key)


def list_instruments(survey: str | None = None) -> list[Instrument]:
    """The built-in instrument entries, sorted by survey and filter name.

    Parameters
    ----------
    survey : str, optional
        Only this survey/family (``"galex"``, ``"sdss"``, ``"des"``, ``"hst"``...; case
        insensitive).

    Returns
    -------
    list of Instrument
        Each with its ``survey``, ``instrument``, values and source ``notes``.
    """
    entries = sorted(_TABLE.values(), key=lambda i: (i.survey, i.filter))
    if survey is not None:
        entries = [i for i in entries if i.survey == survey.lower()]
        if not entries:
            surveys = sorted({i.survey for i in _TABLE.values()})
            raise ValueError(f"survey: unknown {survey!r}; known: {', '.join(surveys)}")
    return entries


def _unknown_instrument(filt: str, missing: set[str]) -> UnknownInstrumentError:
    names = {n.lower(): n for n in (*_TABLE, *_alias_map())}
    close = [names[c] for c in difflib.get_close_matches(str(filt).lower(), list(names),
                                                          n=5, cutoff=0.6)]
    hint = f" Close matches: {', '.join(close)}." if close else ""
    return UnknownInstrumentError(
        f"filter {filt!r} has no built-in instrument entry.{hint} To use it, define "
        f"{', '.join(sorted(missing))} (and calib_err, a fraction) as an override: in Python "
        f"instruments={{{filt!r}: {{'pixel_scale': 0.2, 'psf_fwhm': 1.0, 'unit': 'Jy', "
        f"'calib_err': 0.02}}}}; in the TOML a table [images.instruments.{filt!r}]. "
        "`pixedfit instruments list` shows the built-in entries.")


def get_instrument(
    filt: str, overrides: Mapping[str, Any] | None = None, **kwargs: Any
) -> Instrument:
    """The instrument entry of a filter, optionally modified or user-defined.

    Parameters
    ----------
    filt : str
        Filter name: a piXedfit name (``ctio_decam_g``), an astro-sedpy name of the same
        curve (``decam_g``) or another known spelling; the returned entry carries ``filt``
        as its :attr:`Instrument.filter`, so the curve of that name is used.
    overrides : mapping, optional
        Field values replacing the built-in ones (e.g. ``{"unit": "Jy"}`` for maps
        already converted to Jy/pixel). For a filter without a built-in entry, these
        define it and must include ``pixel_scale``, ``psf_fwhm`` and ``unit``.
    **kwargs
        Same as ``overrides``.

    Raises
    ------
    UnknownInstrumentError
        (a KeyError and ValueError) Unknown filter without enough fields to define it; the
        message lists close matches and how to pass an override.
    ValueError
        Unknown unit or non-positive scale/FWHM.
    """
    fields = dict(overrides or {})
    fields.update(kwargs)
    unknown_fields = set(fields) - {f.name for f in dataclasses.fields(Instrument)}
    if unknown_fields:
        raise ValueError(f"{filt}: unknown instrument fields {sorted(unknown_fields)}")
    key = instrument_key(filt)
    if key is not None:
        fields.setdefault("filter", filt)
        inst = replace(_TABLE[key], **fields)
    else:
        missing = {"pixel_scale", "psf_fwhm", "unit"} - set(fields)
        if missing:
            raise _unknown_instrument(filt, missing)
        fields.setdefault("survey", "user")
        fields.setdefault("calib_err", 0.0)
        fields.setdefault("filter", filt)
        inst = Instrument(**fields)
    if inst.unit not in NATIVE_UNITS:
        raise ValueError(f"{filt}: unknown native unit {inst.unit!r}; known: {NATIVE_UNITS}")
    for name in ("pixel_scale", "psf_fwhm"):
        value = getattr(inst, name)
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise ValueError(f"{filt}: {name} must be a positive number, got {value!r}")
    if not (0 <= inst.calib_err < 1):
        raise ValueError(f"{filt}: calib_err must be a fraction in [0, 1)")
    return inst


def worst_resolution(filters: list[str], fwhm: Mapping[str, float] | None = None) -> str:
    """The filter with the largest PSF FWHM (the default PSF-matching target).

    Parameters
    ----------
    filters : list of str
        Filter names.
    fwhm : mapping name → float, optional
        PSF FWHM (arcsec) overriding the instrument table's.

    Returns
    -------
    str
        The name of that filter.
    """
    fwhm = dict(fwhm or {})
    values = {f: fwhm.get(f, None) for f in filters}
    for f in filters:
        if values[f] is None:
            values[f] = get_instrument(f).psf_fwhm
    return max(filters, key=lambda f: cast(float, values[f]))  # all set above


def _header_value(header: Mapping[str, Any] | None, key: str, filt: str) -> float:
    if header is None or key not in header:
        raise ValueError(f"{filt}: header keyword {key!r} is needed for the unit conversion")
    value = float(header[key])
    if not math.isfinite(value):
        raise ValueError(f"{filt}: header keyword {key!r} is not finite")
    return value


#: hc/k in Å K (blackbody reference spectra).
_HC_OVER_K = 1.4387769e8


@functools.lru_cache(maxsize=256)
def _reference_wavelength(filt: str, ref_wave: float, ref_alpha: float | None,
                          ref_temperature: float | None) -> float:
    curve_wave, _ = get_filter_curve(filt)
    lam = np.geomspace(curve_wave[0], curve_wave[-1], 20001)
    if ref_temperature is not None:
        def shape(x: NDArray[np.float64]) -> NDArray[np.float64]:
            return x**-5.0 / np.expm1(_HC_OVER_K / (x * ref_temperature))
    else:
        index = -2.0 - float(cast(float, ref_alpha))  # F_ν ∝ ν^α → f_λ ∝ λ^(−α−2)

        def shape(x: NDArray[np.float64]) -> NDArray[np.float64]:
            return (x / ref_wave) ** index
    mean = float(band_photometry(lam, shape(lam), filt, threads=1)[0])
    at_ref = float(shape(np.array([ref_wave]))[0])
    return ref_wave * math.sqrt(at_ref / mean)


def conversion_wavelength(inst: Instrument) -> float:
    """Wavelength λ_x (Å) at which ``f_λ = F_ν c / λ_x²`` turns the band's calibrated
    flux density F_ν into the photon-weighted band-mean f_λ that pixedfit fits.

    For a band calibrated with a reference spectrum S (F_ν quoted at λ₀ for a source of
    S's shape: :attr:`Instrument.ref_wave`, ``ref_alpha``, ``ref_temperature``), a source
    of that shape has ``<f_λ> = F_ν(λ₀) (c / λ₀²) <S_λ> / S_λ(λ₀)``, so
    ``λ_x = λ₀ √(S_λ(λ₀) / <S_λ>)``, with ``<·>`` the band mean over the filter curve
    (:func:`pixedfit.filters.photometry`). Without a reference spectrum it is the pivot
    wavelength, exact for flat-F_ν (AB) calibrations. Examples: WISE W3 (ν⁻² at 11.5608
    µm) 115 608 Å instead of its pivot; MIPS 24 (10⁴ K blackbody at 23.68 µm) ≈ 23.2 µm.

    Parameters
    ----------
    inst : Instrument
        The band.

    Returns
    -------
    float
        λ_x in Å.
    """
    if inst.ref_wave is None:
        return float(cwave_filters(inst.filter))
    if (inst.ref_alpha is None) == (inst.ref_temperature is None):
        raise ValueError(f"{inst.filter}: ref_wave needs one of ref_alpha or ref_temperature")
    if not (math.isfinite(inst.ref_wave) and inst.ref_wave > 0):
        raise ValueError(f"{inst.filter}: ref_wave must be a positive wavelength in Å")
    if inst.ref_temperature is not None and not inst.ref_temperature > 0:
        raise ValueError(f"{inst.filter}: ref_temperature must be > 0 K")
    return _reference_wavelength(inst.filter, float(inst.ref_wave), inst.ref_alpha,
                                 inst.ref_temperature)


#: Conventions of catalogue flux densities (Jy, µJy) understood by
#: :func:`catalog_flux_to_flam`: each survey's own (reference spectrum and wavelength of its
#: calibration, for the bands that have one) or the pivot wavelength of every band.
JY_CONVENTIONS = ("instrument", "pivot")


def _jy_convention(convention: object) -> str:
    """The canonical name of a catalogue Jy convention; ValueError naming the argument."""
    key = convention.strip().lower() if isinstance(convention, str) else None
    if key not in JY_CONVENTIONS:
        raise ValueError(
            f"convention: unknown {convention!r}; expected 'instrument' (F_ν as each survey "
            "quotes it: WISE, Spitzer and Herschel bands for their reference spectra, the "
            "pivot wavelength otherwise) or 'pivot' (F_ν already colour-corrected to the "
            "photon-weighted band mean, AB-like)")
    return key


def catalog_conversion_wavelengths(
    filters: Sequence[str], convention: str = "instrument"
) -> NDArray[np.float64]:
    """Wavelengths (Å) at which ``f_λ = F_ν c / λ²`` turns each band's catalogue flux
    density F_ν into the photon-weighted band-mean f_λ.

    Parameters
    ----------
    filters : sequence of str
        Filter names (piXedfit, astro-sedpy or user-added).
    convention : {"instrument", "pivot"}
        ``"instrument"``: for a band whose instrument entry has a reference spectrum
        (:attr:`Instrument.ref_wave`: WISE, Spitzer IRAC and MIPS, Herschel PACS and SPIRE)
        :func:`conversion_wavelength`, otherwise (AB-calibrated bands, filters without an
        entry) the pivot wavelength. ``"pivot"``: the pivot wavelength of every band
        (:func:`pixedfit.filters.cwave_filters`).

    Returns
    -------
    ndarray, shape (nband,)
        λ in Å.

    Raises
    ------
    ValueError
        Unknown ``convention``; unknown filter names raise
        :class:`pixedfit.filters.UnknownFilterError`.
    """
    conv = _jy_convention(convention)
    names = _filter_list(filters)
    out = np.asarray(cwave_filters(names), dtype=np.float64).copy()
    if conv == "instrument":
        for b, name in enumerate(names):
            if instrument_key(name) is not None:
                out[b] = conversion_wavelength(get_instrument(name))
    return out


def _filter_list(filters: Sequence[str]) -> list[str]:
    if isinstance(filters, str) or not all(isinstance(f, str) for f in filters):
        raise TypeError(f"filters: expected a sequence of filter names, got {filters!r}")
    return list(filters)


def catalog_flux_to_flam(
    flux: ArrayLike,
    filters: Sequence[str],
    unit: str = "Jy",
    flux_err: ArrayLike | None = None,
    convention: str = "instrument",
) -> NDArray[np.float64] | tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Catalogue band fluxes → the photon-weighted band-mean f_λ that pixedfit fits.

    pixedfit's model flux in a band is ``<f_λ> = ∫ f_λ λ T dλ / ∫ λ T dλ``
    (erg s⁻¹ cm⁻² Å⁻¹). An AB-calibrated F_ν (SDSS, GALEX, HST, JWST, 2MASS converted
    from its zero points...) is the photon-weighted mean F_ν, and ``<f_λ> = F_ν c / λ_p²``
    exactly at the pivot wavelength λ_p. Infrared surveys quote F_ν instead at a nominal
    wavelength λ₀ for a reference spectrum: WISE F_ν ∝ ν⁻² (Wright et al. 2010), Spitzer
    IRAC, Herschel PACS and SPIRE νF_ν = const, MIPS a 10⁴ K blackbody. Such an F_ν,
    not colour-corrected, gives ``<f_λ> = F_ν c / λ_x²`` with λ_x the band's
    :func:`conversion_wavelength`, for any source spectrum (the measured signal is
    proportional to <f_λ>; the model's band mean does the colour correction). Catalogues
    that keep each survey's convention, as DustPedia's CAAPR photometry (Clark et al.
    2018), need ``convention="instrument"``; the pivot would make WISE W3 9 % too faint.

    Parameters
    ----------
    flux : array_like, shape (..., nband)
        Band fluxes, the last axis in the order of ``filters``, in ``unit``. NaN and
        infinite values (missing bands) stay NaN.
    filters : sequence of str
        Filter names, one per band.
    unit : str
        ``"Jy"``, ``"uJy"`` (µJy), ``"AB"`` (magnitudes), ``"erg/s/cm2/A"`` (f_λ, returned
        as it is) or ``"erg/s/cm2"`` (λ f_λ, divided by the pivot wavelength); any spelling
        :func:`pixedfit.units.convert_flux_unit` accepts. Only Jy and µJy depend on
        ``convention``: AB magnitudes are flat-F_ν by definition and are converted at the
        pivot wavelength.
    flux_err : array_like, optional
        1σ errors in ``unit`` (AB: magnitude errors), broadcastable to ``flux``; converted
        with the same factor (AB: to first order, where the magnitude is finite). Their
        sign is kept, so that an error ≤ 0 still marks a band not to be used; NaN stays
        NaN.
    convention : {"instrument", "pivot"}
        How Jy and µJy were quoted. ``"instrument"`` (default): in each survey's own
        convention (:func:`catalog_conversion_wavelengths`: the reference wavelength and
        spectrum of the band's instrument entry, :attr:`Instrument.ref_wave`; the pivot for
        bands without one, and for filters without an instrument entry) — the flux
        densities of survey catalogues and of compilations such as DustPedia that quote them
        without colour corrections. ``"pivot"``: every band at its pivot wavelength — for
        catalogues whose F_ν are already colour-corrected to the photon-weighted band mean
        (AB-like F_ν in every band).

    Returns
    -------
    ndarray or (ndarray, ndarray)
        f_λ in erg s⁻¹ cm⁻² Å⁻¹, shape of ``flux``; and the errors when ``flux_err`` is
        given.

    Raises
    ------
    ValueError
        Unknown ``unit`` or ``convention``; ``flux`` whose last axis does not match
        ``filters``; ``flux_err`` that does not broadcast to ``flux``.
    TypeError
        ``filters`` not a sequence of names.
    """
    conv = _jy_convention(convention)
    canon = canonical_flux_unit(unit, "unit")
    names = _filter_list(filters)
    values = np.asarray(flux, dtype=np.float64)
    if values.ndim == 0 or values.shape[-1] != len(names):
        raise ValueError(f"flux: the last axis holds {values.shape[-1] if values.ndim else 0} "
                         f"bands but filters names {len(names)}")
    if canon in ("jy", "ujy"):
        wave = catalog_conversion_wavelengths(names, conv)
    else:
        wave = np.asarray(cwave_filters(names), dtype=np.float64)
    lam = np.broadcast_to(wave, values.shape)
    good = np.isfinite(values)
    out = np.full(values.shape, np.nan)
    if canon == "flam":
        out[good] = values[good]
    else:
        out[good] = convert_flux_unit(values[good], lam[good], unit, "erg/s/cm2/A")
    if flux_err is None:
        return out
    try:
        err = np.broadcast_to(np.asarray(flux_err, dtype=np.float64), values.shape)
    except ValueError as exc:
        raise ValueError(f"flux_err: shape {np.shape(flux_err)} does not broadcast to flux's "
                         f"{values.shape}") from exc
    ok = np.isfinite(err)
    out_err = np.full(values.shape, np.nan)
    if canon == "flam":
        out_err[ok] = err[ok]
    elif canon == "ab":  # depends on the magnitude: only where both are finite
        ok &= good
        _, e = convert_flux_unit(values[ok], lam[ok], unit, "erg/s/cm2/A",
                                 flux_err=np.abs(err[ok]))
        out_err[ok] = np.copysign(e, err[ok])
    else:  # linear units: the errors scale by the same positive factor as the fluxes
        out_err[ok] = err[ok] * convert_flux_unit(np.ones(int(ok.sum())), lam[ok], unit,
                                                  "erg/s/cm2/A")
    return out, out_err


def flux_conversion_factor(
    inst: Instrument,
    pixel_scale: float,
    header: Mapping[str, Any] | None = None,
    cwave: float | None = None,
    zeropoint: float | None = None,
) -> float:
    """Factor turning native pixel values into f_λ per pixel (erg s⁻¹ cm⁻² Å⁻¹).

    Parameters
    ----------
    inst : Instrument
        The band (see :func:`get_instrument`).
    pixel_scale : float
        Pixel scale of the image being converted, arcsec/pixel (used by MJy/sr and
        Jy/beam).
    header : mapping, optional
        FITS header of the image (for MAGZP, PHOTFLAM, MAGZERO, EXPTIME).
    cwave : float, optional
        Wavelength (Å) of the Jy → f_λ conversion; default :func:`conversion_wavelength`
        (the pivot wavelength unless the band's calibration has a reference spectrum).
    zeropoint : float, optional
        Overrides the header's zero point: the AB zero point of ``"counts_zp"`` images, the
        Vega ``MAGZP`` of 2MASS (``"DN_2mass"``) and WISE (``"DN"``) images.

    Returns
    -------
    float
        Multiply native pixel values (and their 1σ errors) by this.
    """
    if not (math.isfinite(pixel_scale) and pixel_scale > 0):
        raise ValueError("pixel_scale: must be a positive number of arcsec/pixel")
    unit = inst.unit
    if not inst.via_jansky:
        jy_to_flam = math.nan  # not needed: these units do not go through Jy
    else:
        lam = float(cwave) if cwave is not None else conversion_wavelength(inst)
        jy_to_flam = JY_CGS * C_AA_PER_S / lam**2
    if unit == "erg/s/cm2/A":
        factor = 1.0
    elif unit == "Jy":
        factor = jy_to_flam
    elif unit == "MJy/sr":
        factor = 1e6 / SR_TO_ARCSEC2 * pixel_scale**2 * jy_to_flam
    elif unit == "Jy/beam":
        if not inst.beam_area:
            raise ValueError(f"{inst.filter}: Jy/beam needs beam_area (arcsec²)")
        factor = pixel_scale**2 / inst.beam_area * jy_to_flam
    elif unit == "nanomaggy":
        factor = 3.631e-6 * jy_to_flam
    elif unit == "counts/s":
        if inst.flam_per_count is None:
            raise ValueError(f"{inst.filter}: counts/s needs flam_per_count")
        factor = inst.flam_per_count
    elif unit == "DN":
        if inst.jy_per_dn is None:
            raise ValueError(f"{inst.filter}: DN needs jy_per_dn")
        factor = inst.jy_per_dn * jy_to_flam
        if inst.zeropoint is not None:
            # jy_per_dn holds for the zero point ``inst.zeropoint`` (WISE Atlas images:
            # MAGZP 20.5, 19.5, 18.0, 13.0); images with another (unWISE: 22.5) scale by it
            magzp = zeropoint
            if magzp is None and inst.zp_keyword and header is not None \
                    and inst.zp_keyword in header:
                magzp = _header_value(header, inst.zp_keyword, inst.filter)
            if magzp is not None:
                factor *= 10.0 ** (-0.4 * (magzp - inst.zeropoint))
    elif unit == "DN_2mass":
        if inst.vega_flam is None:
            raise ValueError(f"{inst.filter}: DN_2mass needs vega_flam")
        magzp = zeropoint if zeropoint is not None else _header_value(header, "MAGZP", inst.filter)
        # f = F0 10^(-0.4 (MAGZP - 2.5 log10 DN)) W cm^-2 um^-1; 1 W cm^-2 um^-1 = 1e3 f_λ.
        factor = inst.vega_flam * 10.0 ** (-0.4 * magzp) * 1e3
    elif unit == "e/s":
        factor = _header_value(header, "PHOTFLAM", inst.filter)
    else:  # counts_zp
        if zeropoint is None:
            if inst.zp_keyword == "PS1_EXPTIME":
                zeropoint = 25.0 + 2.5 * math.log10(_header_value(header, "EXPTIME", inst.filter))
            elif inst.zp_keyword == "FLUXMAG0" and header is not None and "FLUXMAG0" in header:
                fluxmag0 = _header_value(header, "FLUXMAG0", inst.filter)
                if fluxmag0 <= 0:
                    raise ValueError(f"{inst.filter}: header FLUXMAG0 must be > 0")
                zeropoint = 2.5 * math.log10(fluxmag0)
            elif inst.zp_keyword is not None and header is not None and inst.zp_keyword in header:
                zeropoint = _header_value(header, inst.zp_keyword, inst.filter)
            else:
                zeropoint = inst.zeropoint
        if zeropoint is None:
            where = (f"header keyword {inst.zp_keyword!r} absent" if inst.zp_keyword
                     else "no header keyword is defined for it")
            raise ValueError(
                f"{inst.filter}: counts_zp images need an AB zero point ({where}); pass it "
                "as zeropoint (ImageSet(zeropoints={...}) or an instrument override "
                "{'zeropoint': ...})" + (f". Note: {inst.notes}" if inst.notes else ""))
        factor = 10.0 ** (-0.4 * (zeropoint - 8.90)) * jy_to_flam
    return factor * inst.unit_scale


# Header unit spellings (BUNIT / SIGUNIT, lower case, spaces removed) → unit family.
_HEADER_FAMILIES = {
    "nanomaggy": "nanomaggy", "nanomaggies": "nanomaggy", "nmgy": "nanomaggy",
    "mjy/sr": "MJy/sr", "jy/beam": "Jy/beam",
    "jy": "Jy", "jy/pix": "Jy", "jy/pixel": "Jy",
    "erg/s/cm2/a": "erg/s/cm2/A", "erg/s/cm^2/a": "erg/s/cm2/A", "ergs/s/cm^2/a": "erg/s/cm2/A",
    "electrons/s": "rate", "electron/s": "rate", "e-/s": "rate", "e/s": "rate",
    "counts/s": "rate", "cps": "rate", "count/s": "rate",
    "electrons": "counts", "electron": "counts", "counts": "counts", "count": "counts",
    "adu": "counts", "dn": "counts",
}
_UNIT_FAMILY = {
    "erg/s/cm2/A": "erg/s/cm2/A", "Jy": "Jy", "MJy/sr": "MJy/sr", "Jy/beam": "Jy/beam",
    "nanomaggy": "nanomaggy", "counts/s": "rate", "e/s": "rate", "DN": "counts",
    "DN_2mass": "counts", "counts_zp": "counts",
}


def _header_family(raw: str) -> str | None:
    """The unit family of a BUNIT/SIGUNIT value, or None when unknown.

    Spaces are ignored (astropy writes ``"electron / s"``, ``"MJy / sr"``), ``X-1``,
    ``X^-1`` and ``X**-1`` read as ``/X`` (``"MJy sr-1"``), and a trailing comment that
    some writers put into the value (``"Jy/pix   / per pixel"``) is dropped: the longest
    leading run of ``/``-separated parts that is a known spelling decides.
    """
    text = re.sub(r"[\s.]*\b([a-z]+)(?:\*\*|\^)?-1\b", r"/\1", raw.lower())
    parts = text.split("/")
    for k in range(len(parts), 0, -1):
        family = _HEADER_FAMILIES.get("/".join(parts[:k]).replace(" ", ""))
        if family is not None:
            return family
    return None


def check_header_unit(inst: Instrument, header: Mapping[str, Any] | None) -> None:
    """Raise ValueError when the header's BUNIT/SIGUNIT contradicts the instrument unit.

    Unknown or absent header units are accepted (many survey products carry none).

    Parameters
    ----------
    inst : Instrument
        The band's instrument entry.
    header : mapping or None
        The image's FITS header (None: nothing to check).
    """
    if header is None:
        return
    for key in ("BUNIT", "SIGUNIT"):
        if key not in header:
            continue
        raw = str(header[key]).strip()
        family = _header_family(raw)
        if family is None:
            continue
        expected = _UNIT_FAMILY[inst.unit]
        if family != expected:
            raise ValueError(
                f"{inst.filter}: wrong units: header {key} = {raw!r} but the instrument "
                f"entry expects {inst.unit!r}; pass instruments={{{inst.filter!r}: "
                f"{{'unit': ...}}}} with the image's real unit"
            )
