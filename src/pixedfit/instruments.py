"""Instrument table: pixel scale, PSF FWHM, native unit and calibration of survey images.

All instrument data live in :data:`_TABLE` below (one place). Values are those of the
piXedfit documentation and source (PSF FWHM, unit conversions, SPIRE beam areas; see
``pixedfit_original_spec.md`` §5) with the bugs listed there fixed: WISE W3 uses the
published DN→Jy factor 1.8326e-6 Jy/DN (Wright et al. 2010; the original code used
2.9045e-6), and every far-IR band has a native unit (the original's ``flux_or_sb`` table
missed MIPS 70/160, PACS 100 and SPIRE 500). Calibration uncertainties are the fractional
values adopted by DustPedia (Clark et al. 2018, Table 1) for GALEX to SPIRE; for the optical
and near-IR surveys without a DustPedia value (DES, Pan-STARRS, HST, JWST) a nominal
1-3 % is given and marked ``assumed`` in :attr:`Instrument.notes`.

Native units understood by :func:`flux_conversion_factor` (per pixel unless stated):

``"erg/s/cm2/A"``   f_λ per pixel (times :attr:`Instrument.unit_scale`)
``"Jy"``            Jy per pixel
``"MJy/sr"``        surface brightness; × 2.350443e-5 × pixel area [arcsec²] → Jy/pixel
``"Jy/beam"``       × pixel area / beam area → Jy/pixel
``"nanomaggy"``     1 nanomaggy = 3.631e-6 Jy (SDSS)
``"counts/s"``      GALEX count rate; × :attr:`Instrument.flam_per_count` → f_λ
``"DN"``            WISE data numbers; × :attr:`Instrument.jy_per_dn` → Jy
``"DN_2mass"``      2MASS data numbers, zero point ``MAGZP`` from the header (Vega) and
                    the 2MASS zero-magnitude f_λ :attr:`Instrument.vega_flam` (W cm⁻² µm⁻¹)
``"e/s"``           HST count rate; × ``PHOTFLAM`` (header) → f_λ
``"counts_zp"``     counts with an AB zero point (``zeropoint`` argument, header keyword
                    :attr:`Instrument.zp_keyword`, or :attr:`Instrument.zeropoint`;
                    PS1 stacks: 25 + 2.5 log10(EXPTIME))
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .filters import cwave_filters
from .units import C_AA_PER_S, JY_CGS

__all__ = [
    "NATIVE_UNITS",
    "SR_TO_ARCSEC2",
    "Instrument",
    "check_header_unit",
    "flux_conversion_factor",
    "get_instrument",
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
    """

    filter: str
    survey: str
    pixel_scale: float
    psf_fwhm: float
    unit: str
    calib_err: float
    flam_per_count: float | None = None
    jy_per_dn: float | None = None
    vega_flam: float | None = None
    beam_area: float | None = None
    zeropoint: float | None = None
    zp_keyword: str | None = None
    unit_scale: float = 1.0
    notes: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def surface_brightness(self) -> bool:
        """True when pixel values are per unit area (MJy/sr, Jy/beam)."""
        return self.unit in SURFACE_BRIGHTNESS_UNITS


def _i(filt, survey, pix, fwhm, unit, calib, **kw) -> Instrument:
    return Instrument(filt, survey, pix, fwhm, unit, calib, **kw)


_DUSTPEDIA = "calibration error: DustPedia (Clark et al. 2018)"
_ASSUMED = "calibration error assumed"

# The table. FWHM: piXedfit documentation/source; JWST/HST: instrument handbooks (typical).
_TABLE: dict[str, Instrument] = {
    i.filter: i
    for i in (
        _i("galex_fuv", "galex", 1.5, 4.48, "counts/s", 0.045, flam_per_count=1.40e-15,
           notes=_DUSTPEDIA),
        _i("galex_nuv", "galex", 1.5, 5.05, "counts/s", 0.027, flam_per_count=2.06e-16,
           notes=_DUSTPEDIA),
        _i("sdss_u", "sdss", 0.396, 1.4, "nanomaggy", 0.013, notes=_DUSTPEDIA),
        _i("sdss_g", "sdss", 0.396, 1.4, "nanomaggy", 0.008, notes=_DUSTPEDIA),
        _i("sdss_r", "sdss", 0.396, 1.2, "nanomaggy", 0.008, notes=_DUSTPEDIA),
        _i("sdss_i", "sdss", 0.396, 1.2, "nanomaggy", 0.007, notes=_DUSTPEDIA),
        _i("sdss_z", "sdss", 0.396, 1.2, "nanomaggy", 0.008, notes=_DUSTPEDIA),
        _i("2mass_j", "2mass", 1.0, 3.4, "DN_2mass", 0.017, vega_flam=3.129e-13,
           notes=_DUSTPEDIA),
        _i("2mass_h", "2mass", 1.0, 3.4, "DN_2mass", 0.019, vega_flam=1.133e-13,
           notes=_DUSTPEDIA),
        _i("2mass_k", "2mass", 1.0, 3.5, "DN_2mass", 0.019, vega_flam=4.283e-14,
           notes=_DUSTPEDIA),
        _i("wise_w1", "wise", 1.375, 5.79, "DN", 0.029, jy_per_dn=1.9350e-6, notes=_DUSTPEDIA),
        _i("wise_w2", "wise", 1.375, 6.37, "DN", 0.034, jy_per_dn=2.7048e-6, notes=_DUSTPEDIA),
        _i("wise_w3", "wise", 1.375, 6.60, "DN", 0.046, jy_per_dn=1.8326e-6, notes=_DUSTPEDIA),
        _i("wise_w4", "wise", 1.375, 11.89, "DN", 0.056, jy_per_dn=5.2269e-5, notes=_DUSTPEDIA),
        _i("spitzer_irac_36", "spitzer", 0.6, 1.9, "MJy/sr", 0.03, notes=_DUSTPEDIA),
        _i("spitzer_irac_45", "spitzer", 0.6, 1.81, "MJy/sr", 0.03, notes=_DUSTPEDIA),
        _i("spitzer_irac_58", "spitzer", 0.6, 2.11, "MJy/sr", 0.03, notes=_DUSTPEDIA),
        _i("spitzer_irac_80", "spitzer", 0.6, 2.82, "MJy/sr", 0.03, notes=_DUSTPEDIA),
        _i("spitzer_mips_24", "spitzer", 1.5, 6.43, "MJy/sr", 0.05, notes=_DUSTPEDIA),
        _i("spitzer_mips_70", "spitzer", 4.5, 18.74, "MJy/sr", 0.10, notes=_DUSTPEDIA),
        _i("spitzer_mips_160", "spitzer", 9.0, 38.78, "MJy/sr", 0.12, notes=_DUSTPEDIA),
        _i("herschel_pacs_70", "herschel", 1.4, 5.67, "Jy", 0.07, notes=_DUSTPEDIA),
        _i("herschel_pacs_100", "herschel", 1.7, 7.04, "Jy", 0.07, notes=_DUSTPEDIA),
        _i("herschel_pacs_160", "herschel", 2.85, 11.18, "Jy", 0.07, notes=_DUSTPEDIA),
        _i("herschel_spire_250", "herschel", 6.0, 18.15, "Jy/beam", 0.055, beam_area=469.3542,
           notes=_DUSTPEDIA),
        _i("herschel_spire_350", "herschel", 8.0, 24.88, "Jy/beam", 0.055, beam_area=831.275,
           notes=_DUSTPEDIA),
        _i("herschel_spire_500", "herschel", 12.0, 36.09, "Jy/beam", 0.055,
           beam_area=1804.3058, notes=_DUSTPEDIA),
        # Ground-based optical surveys used with the SDSS host data.
        _i("ctio_decam_g", "des", 0.263, 1.1, "counts_zp", 0.01, zp_keyword="MAGZERO",
           notes=_ASSUMED),
        _i("ctio_decam_r", "des", 0.263, 0.95, "counts_zp", 0.01, zp_keyword="MAGZERO",
           notes=_ASSUMED),
        _i("ctio_decam_i", "des", 0.263, 0.9, "counts_zp", 0.01, zp_keyword="MAGZERO",
           notes=_ASSUMED),
        _i("ctio_decam_z", "des", 0.263, 0.9, "counts_zp", 0.01, zp_keyword="MAGZERO",
           notes=_ASSUMED),
        _i("pan-starrs_g", "ps1", 0.25, 1.31, "counts_zp", 0.01, zp_keyword="PS1_EXPTIME",
           notes=_ASSUMED),
        _i("pan-starrs_r", "ps1", 0.25, 1.19, "counts_zp", 0.01, zp_keyword="PS1_EXPTIME",
           notes=_ASSUMED),
        _i("pan-starrs_i", "ps1", 0.25, 1.11, "counts_zp", 0.01, zp_keyword="PS1_EXPTIME",
           notes=_ASSUMED),
        _i("pan-starrs_z", "ps1", 0.25, 1.07, "counts_zp", 0.01, zp_keyword="PS1_EXPTIME",
           notes=_ASSUMED),
        # HST (drizzled products, e-/s with PHOTFLAM).
        *(
            _i(f"hst_acs_{b}", "hst", 0.05, 0.10, "e/s", 0.02, notes=_ASSUMED)
            for b in ("f435w", "f475w", "f555w", "f606w", "f625w", "f775w", "f814w", "f850lp")
        ),
        *(
            _i(f"hst_wfc3_uvis_{b}", "hst", 0.04, 0.08, "e/s", 0.02, notes=_ASSUMED)
            for b in ("f225w", "f275w", "f336w", "f390w")
        ),
        *(
            _i(f"hst_wfc3_ir_{b}", "hst", 0.13, fw, "e/s", 0.02, notes=_ASSUMED)
            for b, fw in (("f098m", 0.13), ("f105w", 0.14), ("f110w", 0.14), ("f125w", 0.14),
                          ("f140w", 0.15), ("f160w", 0.15))
        ),
        # JWST (level-3 products in MJy/sr); FWHM from JDox PSF tables.
        *(
            _i(f"jwst_nircam_{b}", "jwst", 0.031 if int(b[1:4]) < 250 else 0.063, fw,
               "MJy/sr", 0.03, notes=_ASSUMED)
            for b, fw in (("f070w", 0.030), ("f090w", 0.034), ("f115w", 0.040), ("f140m", 0.048),
                          ("f150w", 0.050), ("f162m", 0.055), ("f182m", 0.062),
                          ("f200w", 0.066), ("f210m", 0.071), ("f250m", 0.084),
                          ("f277w", 0.091), ("f300m", 0.100), ("f335m", 0.111),
                          ("f356w", 0.115), ("f360m", 0.120), ("f410m", 0.137),
                          ("f430m", 0.144), ("f444w", 0.145), ("f460m", 0.155),
                          ("f480m", 0.162))
        ),
        *(
            _i(f"jwst_miri_{b}", "jwst", 0.11, fw, "MJy/sr", 0.03, notes=_ASSUMED)
            for b, fw in (("f560w", 0.207), ("f770w", 0.269), ("f1000w", 0.328),
                          ("f1130w", 0.375), ("f1280w", 0.420), ("f1500w", 0.488),
                          ("f1800w", 0.591), ("f2100w", 0.674), ("f2550w", 0.803))
        ),
    )
}


def list_instruments() -> list[str]:
    """Filter names with a built-in instrument entry, sorted."""
    return sorted(_TABLE)


def get_instrument(
    filt: str, overrides: Mapping[str, Any] | None = None, **kwargs: Any
) -> Instrument:
    """The instrument entry of a filter, optionally modified or user-defined.

    Parameters
    ----------
    filt : str
        pixedfit filter name.
    overrides : mapping, optional
        Field values replacing the built-in ones (e.g. ``{"unit": "Jy"}`` for maps
        already converted to Jy/pixel). For a filter without a built-in entry, these
        define it and must include ``pixel_scale``, ``psf_fwhm`` and ``unit``.
    **kwargs
        Same as ``overrides``.

    Raises
    ------
    KeyError
        Unknown filter without enough fields to define it.
    ValueError
        Unknown unit or non-positive scale/FWHM.
    """
    fields = dict(overrides or {})
    fields.update(kwargs)
    if filt in _TABLE:
        inst = replace(_TABLE[filt], **fields) if fields else _TABLE[filt]
    else:
        missing = {"pixel_scale", "psf_fwhm", "unit"} - set(fields)
        if missing:
            raise KeyError(
                f"filter {filt!r} has no built-in instrument entry; define it with "
                f"{sorted(missing)} (and optionally calib_err) in the instrument overrides"
            )
        fields.setdefault("survey", "user")
        fields.setdefault("calib_err", 0.0)
        inst = Instrument(filter=filt, **fields)
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
    """The filter with the largest PSF FWHM (the default PSF-matching target)."""
    fwhm = dict(fwhm or {})
    values = {f: fwhm.get(f, None) for f in filters}
    for f in filters:
        if values[f] is None:
            values[f] = get_instrument(f).psf_fwhm
    return max(filters, key=lambda f: values[f])


def _header_value(header: Mapping[str, Any] | None, key: str, filt: str) -> float:
    if header is None or key not in header:
        raise ValueError(f"{filt}: header keyword {key!r} is needed for the unit conversion")
    value = float(header[key])
    if not math.isfinite(value):
        raise ValueError(f"{filt}: header keyword {key!r} is not finite")
    return value


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
        Wavelength (Å) of the Jy → f_λ conversion; default the filter's pivot wavelength.
    zeropoint : float, optional
        AB zero point for ``"counts_zp"`` images (overrides the header).

    Returns
    -------
    float
        Multiply native pixel values (and their 1σ errors) by this.
    """
    if not (math.isfinite(pixel_scale) and pixel_scale > 0):
        raise ValueError("pixel_scale: must be a positive number of arcsec/pixel")
    lam = float(cwave) if cwave is not None else float(cwave_filters(inst.filter))
    jy_to_flam = JY_CGS * C_AA_PER_S / lam**2
    unit = inst.unit
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
            elif inst.zp_keyword is not None and header is not None and inst.zp_keyword in header:
                zeropoint = _header_value(header, inst.zp_keyword, inst.filter)
            else:
                zeropoint = inst.zeropoint
        if zeropoint is None:
            raise ValueError(f"{inst.filter}: counts_zp images need an AB zero point")
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


def check_header_unit(inst: Instrument, header: Mapping[str, Any] | None) -> None:
    """Raise ValueError when the header's BUNIT/SIGUNIT contradicts the instrument unit.

    Unknown or absent header units are accepted (many survey products carry none).
    """
    if header is None:
        return
    for key in ("BUNIT", "SIGUNIT"):
        if key not in header:
            continue
        raw = str(header[key]).split("/ ")[0].strip()
        family = _HEADER_FAMILIES.get(raw.lower().replace(" ", ""))
        if family is None:
            continue
        expected = _UNIT_FAMILY[inst.unit]
        if family != expected:
            raise ValueError(
                f"{inst.filter}: wrong units: header {key} = {raw!r} but the instrument "
                f"entry expects {inst.unit!r}; pass instruments={{{inst.filter!r}: "
                f"{{'unit': ...}}}} with the image's real unit"
            )
