"""Units and conventions used everywhere in pixedfit, written once.

Conventions
-----------
* Wavelength: Angstrom (Å), vacuum unless a function says otherwise.
* Flux density: f_λ in erg s⁻¹ cm⁻² Å⁻¹. Band fluxes are photon-weighted means of f_λ,
  ``∫ f_λ T λ dλ / ∫ T λ dλ`` (see :func:`pixedfit.filters.photometry`).
* Data cubes: arrays ordered ``(band, y, x)`` (or ``(wavelength, y, x)``); pixel ``(y, x)``
  is row ``y``, column ``x``, zero-based.
* Ages and timescales: Gyr. Masses: M☉; stellar mass = surviving stars + remnants unless a
  name says otherwise. SFR: M☉ yr⁻¹. Luminosities: erg s⁻¹ or L☉ where stated.
* Rest-frame model spectra: L☉ Å⁻¹.
* Sky positions: degrees (ICRS); :func:`sky_position` also reads sexagesimal text.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "C_AA_PER_S",
    "FLUX_UNITS",
    "JY_CGS",
    "L_SUN_CGS",
    "MPC_CM",
    "canonical_flux_unit",
    "convert_flux_unit",
    "sky_position",
]

#: Speed of light in Å s⁻¹.
C_AA_PER_S = 2.99792458e18
#: One jansky in erg s⁻¹ cm⁻² Hz⁻¹.
JY_CGS = 1.0e-23
#: Solar luminosity in erg s⁻¹ (the value BC03 and bagpipes use for their L☉ units).
L_SUN_CGS = 3.826e33
#: One megaparsec in cm.
MPC_CM = 3.0856775814913673e24
#: AB magnitude zero point: m_AB = -2.5 log10(f_ν / erg s⁻¹ cm⁻² Hz⁻¹) - 48.60.
AB_ZEROPOINT = 48.60

# Canonical unit names and accepted spellings.
_ALIASES = {
    "flam": ("flam", "erg/s/cm2/a", "erg/s/cm^2/a", "erg s-1 cm-2 a-1", "erg/s/cm2/aa"),
    "lflam": ("lflam", "erg/s/cm2", "erg/s/cm^2", "erg s-1 cm-2", "nufnu", "lambda*flam"),
    "jy": ("jy", "jansky"),
    "ujy": ("ujy", "µjy", "μjy", "microjy", "micro-jy"),
    "ab": ("ab", "abmag", "ab mag", "mag", "mag_ab"),
}
#: Flux units understood by :func:`convert_flux_unit` (canonical names).
FLUX_UNITS = tuple(_ALIASES)


def canonical_flux_unit(unit: str, argname: str = "unit") -> str:
    """The canonical name of a flux unit: ``"flam"``, ``"lflam"``, ``"jy"``, ``"ujy"`` or
    ``"ab"`` (see :data:`FLUX_UNITS`).

    Parameters
    ----------
    unit : str
        Any accepted spelling (``"erg/s/cm2/A"``, ``"Jy"``, ``"uJy"``, ``"AB"``...;
        case-insensitive).
    argname : str
        Name of the argument (or flag) in the error message.

    Raises
    ------
    ValueError
        Unknown unit; the message names ``argname`` and lists the known units.
    """
    key = str(unit).strip().lower().replace("å", "a")
    for canonical, spellings in _ALIASES.items():
        if key in spellings:
            return canonical
    known = ", ".join(f"{c!r} ({', '.join(s[1:3])}...)" for c, s in _ALIASES.items())
    raise ValueError(f"{argname}: unknown flux unit {unit!r}; known units: {known}")


def _to_fnu(values: NDArray[np.float64], unit: str, wave: NDArray[np.float64]) -> NDArray:
    """Convert to f_ν in erg s⁻¹ cm⁻² Hz⁻¹."""
    if unit == "flam":
        return values * wave**2 / C_AA_PER_S
    if unit == "lflam":
        return values * wave / C_AA_PER_S
    if unit == "jy":
        return values * JY_CGS
    if unit == "ujy":
        return values * (1e-6 * JY_CGS)
    return 10.0 ** (-0.4 * (values + AB_ZEROPOINT))  # "ab"


def _from_fnu(fnu: NDArray[np.float64], unit: str, wave: NDArray[np.float64]) -> NDArray:
    if unit == "flam":
        return fnu * C_AA_PER_S / wave**2
    if unit == "lflam":
        return fnu * C_AA_PER_S / wave
    if unit == "jy":
        return fnu / JY_CGS
    if unit == "ujy":
        return fnu / (1e-6 * JY_CGS)
    return -2.5 * np.log10(fnu) - AB_ZEROPOINT  # "ab"


def convert_flux_unit(
    flux: ArrayLike,
    wave: ArrayLike,
    from_unit: str = "erg/s/cm2/A",
    to_unit: str = "Jy",
    flux_err: ArrayLike | None = None,
) -> NDArray[np.float64] | tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Convert flux densities between f_λ, λf_λ, Jy, µJy and AB magnitudes.

    Parameters
    ----------
    flux : array_like
        Values in ``from_unit``; any shape broadcastable with ``wave``.
    wave : array_like
        Wavelength in Å at which each value applies (for band fluxes, the filter's pivot
        wavelength, see :func:`pixedfit.filters.cwave_filters`); must be > 0.
    from_unit, to_unit : str
        One of ``"erg/s/cm2/A"`` (f_λ), ``"erg/s/cm2"`` (λ f_λ), ``"Jy"``, ``"uJy"`` (µJy)
        or ``"AB"`` (AB magnitude); case-insensitive.
    flux_err : array_like, optional
        1σ uncertainties in ``from_unit`` (for ``"AB"``: magnitude errors), propagated to
        first order.

    Returns
    -------
    ndarray or (ndarray, ndarray)
        The converted values, and the converted errors if ``flux_err`` was given.

    Raises
    ------
    ValueError
        Unknown unit, non-positive wavelength, non-finite input, or a non-positive flux to be
        expressed in AB magnitudes (which has no magnitude).
    """
    src = canonical_flux_unit(from_unit, "from_unit")
    dst = canonical_flux_unit(to_unit, "to_unit")
    values = np.asarray(flux, dtype=np.float64)
    lam = np.asarray(wave, dtype=np.float64)
    if not np.all(np.isfinite(lam)) or np.any(lam <= 0):
        raise ValueError("wave: wavelengths must be finite and > 0 Å")
    if not np.all(np.isfinite(values)):
        raise ValueError("flux: contains NaN or infinite values")
    fnu = _to_fnu(values, src, lam)
    if dst == "ab" and np.any(fnu <= 0):
        raise ValueError("flux: non-positive fluxes cannot be expressed as AB magnitudes")
    out = _from_fnu(fnu, dst, lam)
    out = np.broadcast_to(out, np.broadcast_shapes(values.shape, lam.shape)).astype(np.float64)
    if flux_err is None:
        return out
    err = np.asarray(flux_err, dtype=np.float64)
    if not np.all(np.isfinite(err)) or np.any(err < 0):
        raise ValueError("flux_err: uncertainties must be finite and >= 0")
    k = 2.5 / np.log(10.0)  # d(mag) = k * d(flux) / flux
    if src == "ab" and dst == "ab":
        out_err = err
    elif src == "ab":
        out_err = np.abs(out) * err / k
    elif dst == "ab":
        out_err = k * err / np.abs(values)
    else:  # linear to linear: the conversion is a multiplication by a positive factor
        out_err = err * _from_fnu(_to_fnu(np.ones_like(lam), src, lam), dst, lam)
    return out, np.broadcast_to(out_err, out.shape).astype(np.float64)


_ANGLE_HELP = ("decimal degrees, or sexagesimal text such as '10:00:28.6' or '10h00m28.6s' "
               "for ra (hours) and '+02:12:21' or '+02d12m21s' for dec (degrees)")


def _angle_degrees(value: object, name: str, hours: bool) -> float:
    """One coordinate in degrees from a number or a decimal / sexagesimal string."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer |
                                                        np.floating | str):
        raise TypeError(f"{name} must be a number or a string ({_ANGLE_HELP}), got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        try:
            degrees = float(text)
        except ValueError:
            from astropy import units as u
            from astropy.coordinates import Angle

            has_units = any(c in text.lower() for c in "hdms°'\"")
            try:
                angle = Angle(text) if has_units else Angle(
                    text, unit=u.hourangle if hours else u.deg)
                degrees = float(angle.to_value(u.deg))
            except (ValueError, TypeError, u.UnitsError, Warning) as exc:
                raise ValueError(f"{name}: cannot read {value!r} as an angle "
                                 f"({_ANGLE_HELP})") from exc
    else:
        degrees = float(value)
    if not np.isfinite(degrees):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return degrees


def sky_position(ra: object, dec: object, names: tuple[str, str] = ("ra", "dec")
                 ) -> tuple[float, float]:
    """(RA, Dec) in degrees from numbers (degrees) or text, decimal or sexagesimal.

    Sexagesimal RA without unit letters is read in hours (``"10:00:28.6"``), Dec in degrees
    (``"+02:12:21"``); text with units (``"10h00m28.6s"``, ``"150.1d"``) is read as written.

    Parameters
    ----------
    ra, dec : float or str
        The position.
    names : (str, str)
        Names of the two arguments (or configuration keys) in error messages.

    Raises
    ------
    TypeError
        A value that is neither a number nor a string.
    ValueError
        Unreadable text, a non-finite value, |RA| > 360° or |Dec| > 90°; the message names
        the argument.
    """
    ra_deg = _angle_degrees(ra, names[0], hours=True)
    dec_deg = _angle_degrees(dec, names[1], hours=False)
    if not -360.0 <= ra_deg <= 360.0:
        raise ValueError(f"{names[0]} must lie within [-360, 360] degrees (sky coordinates "
                         f"in degrees), got {ra!r}")
    if not -90.0 <= dec_deg <= 90.0:
        raise ValueError(f"{names[1]} must lie within [-90, 90] degrees (sky coordinates "
                         f"in degrees), got {dec!r}")
    return ra_deg, dec_deg
