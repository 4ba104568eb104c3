"""The instrument table, for the image stage (it lives in :mod:`pixedfit.instruments`, a
core module, so that the fitting layer can read calibration errors without importing the
image stage)."""

from ..instruments import (
    NATIVE_UNITS,
    SR_TO_ARCSEC2,
    SURFACE_BRIGHTNESS_UNITS,
    Instrument,
    UnknownInstrumentError,
    check_header_unit,
    conversion_wavelength,
    flux_conversion_factor,
    get_instrument,
    instrument_aliases,
    instrument_key,
    list_instruments,
    worst_resolution,
)

__all__ = [
    "NATIVE_UNITS",
    "SR_TO_ARCSEC2",
    "SURFACE_BRIGHTNESS_UNITS",
    "Instrument",
    "UnknownInstrumentError",
    "check_header_unit",
    "conversion_wavelength",
    "flux_conversion_factor",
    "get_instrument",
    "instrument_aliases",
    "instrument_key",
    "list_instruments",
    "worst_resolution",
]
