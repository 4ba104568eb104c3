"""Strong emission lines of galaxy spectra and air/vacuum wavelength conversion.

The table holds rest-frame **vacuum** wavelengths in Å of the standard strong UV, optical and
near-IR emission lines of star-forming galaxies and AGN. Values were compiled by the pixedfit
team from the NIST Atomic Spectra Database (Ritz wavelengths, vacuum) as tabulated in the
SDSS spectroscopic line list (vacuum wavelengths, rounded to 0.01 Å); doublets are listed as
their separate components. Air wavelengths are not tabulated but computed with
:func:`vacuum_to_air`, so the two sets are always consistent.

Conversion (IAU standard, Morton 2000, ApJS 130, 403, eq. 3 with the Edlén/Birch & Downs
refractivity of standard dry air at 15 °C): with ``σ = 10⁴ / λ_vac`` (µm⁻¹),
``n − 1 = 8.34254e-5 + 2.406147e-2 / (130 − σ²) + 1.5998e-4 / (38.9 − σ²)`` and
``λ_air = λ_vac / n``. Below 2000 Å air and vacuum wavelengths are taken as equal (the usual
convention: UV lines are always quoted in vacuum). :func:`air_to_vacuum` inverts the
relation by fixed-point iteration to < 1e-8 Å, so ``air_to_vacuum(vacuum_to_air(λ)) == λ``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "EMISSION_LINES",
    "EmissionLine",
    "air_per_vacuum_step",
    "air_to_vacuum",
    "emission_line_mask",
    "line_wavelengths",
    "to_vacuum",
    "vacuum_to_air",
]

_AIR_LIMIT = 2000.0


@dataclass(frozen=True)
class EmissionLine:
    """One emission line: ``name`` and rest-frame vacuum wavelength ``wave_vac`` (Å)."""

    name: str
    wave_vac: float

    @property
    def wave_air(self) -> float:
        """Rest-frame air wavelength (Å), from :func:`vacuum_to_air`."""
        return float(vacuum_to_air(self.wave_vac))


#: Strong emission lines, rest-frame vacuum wavelengths in Å (see module docstring).
EMISSION_LINES: tuple[EmissionLine, ...] = tuple(
    EmissionLine(n, w)
    for n, w in (
        ("Lyalpha", 1215.67),
        ("NV_1240", 1240.14),
        ("SiIV_1397", 1397.61),
        ("CIV_1548", 1548.19),
        ("CIV_1551", 1550.77),
        ("HeII_1640", 1640.42),
        ("OIII]_1663", 1663.48),
        ("CIII]_1909", 1908.73),
        ("CII]_2326", 2326.44),
        ("MgII_2796", 2796.35),
        ("MgII_2804", 2803.53),
        ("[NeV]_3427", 3426.84),
        ("[OII]_3727", 3727.09),
        ("[OII]_3730", 3729.88),
        ("H9", 3836.48),
        ("[NeIII]_3870", 3869.86),
        ("H8", 3890.17),
        ("[NeIII]_3969", 3968.59),
        ("Hepsilon", 3971.20),
        ("[SII]_4070", 4069.75),
        ("[SII]_4078", 4077.50),
        ("Hdelta", 4102.89),
        ("Hgamma", 4341.68),
        ("[OIII]_4364", 4364.44),
        ("HeI_4473", 4472.73),
        ("HeII_4687", 4687.02),
        ("[ArIV]_4713", 4712.69),
        ("[ArIV]_4742", 4741.45),
        ("Hbeta", 4862.68),
        ("[OIII]_4960", 4960.30),
        ("[OIII]_5008", 5008.24),
        ("[NI]_5200", 5199.35),
        ("[NI]_5202", 5201.71),
        ("[FeVII]_5722", 5722.30),
        ("HeI_5877", 5877.29),
        ("[FeVII]_6088", 6087.98),
        ("[OI]_6302", 6302.05),
        ("[SIII]_6314", 6313.81),
        ("[OI]_6366", 6365.54),
        ("[NII]_6550", 6549.86),
        ("Halpha", 6564.61),
        ("[NII]_6585", 6585.27),
        ("HeI_6680", 6679.99),
        ("[SII]_6718", 6718.29),
        ("[SII]_6733", 6732.67),
        ("HeI_7067", 7067.14),
        ("[ArIII]_7138", 7137.77),
        ("[OII]_7322", 7321.94),
        ("[OII]_7332", 7332.21),
        ("[ArIII]_7753", 7753.19),
        ("[SIII]_9071", 9071.10),
        ("Paepsilon", 9548.59),
        ("[SIII]_9533", 9533.20),
        ("Padelta", 10052.13),
        ("HeI_10833", 10833.31),
        ("Pagamma", 10941.09),
        ("Pabeta", 12821.59),
        ("Paalpha", 18756.13),
    )
)


def _refractive_index(wave_vac: NDArray[np.float64]) -> NDArray[np.float64]:
    s2 = (1.0e4 / wave_vac) ** 2
    return 1.0 + 8.34254e-5 + 2.406147e-2 / (130.0 - s2) + 1.5998e-4 / (38.9 - s2)


def _refractive_slope(wave_vac: NDArray[np.float64]) -> NDArray[np.float64]:
    """dn/dλ_vac (Å⁻¹) of :func:`_refractive_index`."""
    s2 = (1.0e4 / wave_vac) ** 2
    dn_ds2 = 2.406147e-2 / (130.0 - s2) ** 2 + 1.5998e-4 / (38.9 - s2) ** 2
    return dn_ds2 * (-2.0 * s2 / wave_vac)


def _as_wave(wave: ArrayLike, name: str) -> NDArray[np.float64]:
    lam = np.asarray(wave, dtype=np.float64)
    if not np.all(np.isfinite(lam)) or np.any(lam <= 0):
        raise ValueError(f"{name}: wavelengths must be finite and > 0 (Å)")
    return lam


def vacuum_to_air(wave_vac: ArrayLike) -> NDArray[np.float64] | float:
    """Air wavelengths (Å) of vacuum wavelengths ``wave_vac`` (Å); unchanged below 2000 Å."""
    lam = _as_wave(wave_vac, "wave_vac")
    out = np.where(lam >= _AIR_LIMIT, lam / _refractive_index(np.maximum(lam, _AIR_LIMIT)), lam)
    return float(out) if out.ndim == 0 else out


def air_to_vacuum(wave_air: ArrayLike) -> NDArray[np.float64] | float:
    """Vacuum wavelengths (Å) of air wavelengths ``wave_air`` (Å); exact inverse of
    :func:`vacuum_to_air` (fixed-point iteration)."""
    lam = _as_wave(wave_air, "wave_air")
    vac = lam.copy()
    big = lam >= vacuum_to_air(_AIR_LIMIT)
    for _ in range(20):
        new = np.where(big, lam * _refractive_index(np.maximum(vac, _AIR_LIMIT)), lam)
        done = np.all(np.abs(new - vac) < 1e-9)
        vac = new
        if done:
            break
    return float(vac) if vac.ndim == 0 else vac


def air_per_vacuum_step(wave_vac: ArrayLike) -> NDArray[np.float64] | float:
    """dλ_air / dλ_vac at vacuum wavelengths ``wave_vac`` (Å): the Jacobian that keeps a
    flux density per Å integrating to the same flux when its wavelengths are converted,
    ``f_λ,vac = f_λ,air · dλ_air/dλ_vac``. From the derivative of ``λ_vac / n(λ_vac)``
    (the relation of :func:`vacuum_to_air`): ``1/n − λ n′/n²``, ≈ 0.99972 in the optical;
    exactly 1 below 2000 Å, where the two scales are the same."""
    lam = _as_wave(wave_vac, "wave_vac")
    safe = np.maximum(lam, _AIR_LIMIT)
    n = _refractive_index(safe)
    out = np.where(lam >= _AIR_LIMIT, 1.0 / n - safe * _refractive_slope(safe) / n**2, 1.0)
    return float(out) if out.ndim == 0 else out


def to_vacuum(wave: ArrayLike, medium: str) -> NDArray[np.float64]:
    """Wavelengths on the vacuum scale.

    Parameters
    ----------
    wave : array_like
        Wavelengths in Å.
    medium : {"vacuum", "air"}
        The scale of ``wave``: vacuum wavelengths are returned as they are, air ones
        through :func:`air_to_vacuum`.

    Returns
    -------
    ndarray
        Vacuum wavelengths, Å.
    """
    if medium == "vacuum":
        return np.asarray(wave, dtype=np.float64)
    if medium == "air":
        return np.asarray(air_to_vacuum(wave))
    raise ValueError(f"medium: expected 'vacuum' or 'air', got {medium!r}")


def line_wavelengths(medium: str = "vacuum") -> NDArray[np.float64]:
    """Rest-frame wavelengths (Å) of :data:`EMISSION_LINES` in ``"vacuum"`` or ``"air"``."""
    vac = np.array([ln.wave_vac for ln in EMISSION_LINES])
    if medium == "vacuum":
        return vac
    if medium == "air":
        return np.asarray(vacuum_to_air(vac))
    raise ValueError(f"medium: expected 'vacuum' or 'air', got {medium!r}")


def emission_line_mask(
    wave: ArrayLike,
    z: float,
    del_wave: float = 10.0,
    medium: str = "vacuum",
    lines: ArrayLike | None = None,
) -> NDArray[np.bool_]:
    """True where an observed wavelength lies within ``±del_wave`` Å of a redshifted line.

    Parameters
    ----------
    wave : array_like, shape (nwave,)
        Observed-frame wavelengths in Å (``medium``).
    z : float
        Redshift (> −1).
    del_wave : float
        Half-width of the excluded window in Å, observed frame (the original's
        ``del_wave_nebem``).
    medium : {"vacuum", "air"}
        Medium of ``wave``; the line table is converted to it.
    lines : array_like, optional
        Rest-frame line wavelengths (Å, in ``medium``) replacing the built-in table.
    """
    lam = _as_wave(wave, "wave")
    if not (np.isfinite(z) and z > -1):
        raise ValueError(f"z: must be finite and > -1, got {z}")
    if not (np.isfinite(del_wave) and del_wave >= 0):
        raise ValueError(f"del_wave: must be finite and >= 0, got {del_wave}")
    rest = line_wavelengths(medium) if lines is None else _as_wave(lines, "lines").ravel()
    obs = rest * (1.0 + z)
    near = np.abs(lam.reshape(-1, 1) - obs.reshape(1, -1)) <= del_wave
    return near.any(axis=1).reshape(lam.shape)
