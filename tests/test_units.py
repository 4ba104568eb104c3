"""Flux-unit conversions: known values, round trips, error propagation, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixedfit.units import C_AA_PER_S, convert_flux_unit

UNITS = ["erg/s/cm2/A", "erg/s/cm2", "Jy", "uJy", "AB"]


def test_known_values():
    # 3631 Jy is AB magnitude 0 (to the precision of the 48.60 zero point).
    assert convert_flux_unit(3631.0, 5500.0, "Jy", "AB") == pytest.approx(0.0, abs=1e-3)
    assert convert_flux_unit(1.0, 1.0, "Jy", "uJy") == pytest.approx(1e6)
    # f_lambda = c f_nu / lambda^2
    flam = convert_flux_unit(1.0, 5000.0, "Jy", "erg/s/cm2/A")
    assert flam == pytest.approx(1e-23 * C_AA_PER_S / 5000.0**2, rel=1e-14, abs=0)
    assert convert_flux_unit(2.0, 5000.0, "erg/s/cm2/A", "erg/s/cm2") == pytest.approx(1e4)
    assert convert_flux_unit(23.9, 1.0, "AB", "uJy") == pytest.approx(1.0, rel=1e-3)


def test_arrays_broadcast_over_wavelengths():
    wave = np.array([1500.0, 6000.0, 30000.0])
    out = convert_flux_unit(np.ones((4, 3)), wave, "Jy", "erg/s/cm2/A")
    assert out.shape == (4, 3)
    np.testing.assert_allclose(out[2], 1e-23 * C_AA_PER_S / wave**2)


@settings(max_examples=60, deadline=None)
@given(
    flux=st.floats(1e-3, 1e6),
    wave=st.floats(100.0, 1e7),
    src=st.sampled_from(UNITS),
    dst=st.sampled_from(UNITS),
    rel_err=st.floats(1e-4, 0.5),
)
def test_round_trip_and_error_propagation(flux, wave, src, dst, rel_err):
    if src == "AB":
        flux = 25.0 - np.log10(flux)  # keep magnitudes in a sensible range
        err = rel_err
    else:
        err = rel_err * flux
    out, out_err = convert_flux_unit(flux, wave, src, dst, flux_err=err)
    back, back_err = convert_flux_unit(out, wave, dst, src, flux_err=out_err)
    assert back == pytest.approx(flux, rel=1e-10, abs=1e-10)
    assert back_err == pytest.approx(err, rel=1e-10)
    # First-order propagation agrees with a numerical derivative.
    h = 1e-6 * (abs(flux) if src != "AB" else 1.0)
    plus = convert_flux_unit(flux + h, wave, src, dst)
    minus = convert_flux_unit(flux - h, wave, src, dst)
    assert out_err == pytest.approx(abs(plus - minus) / (2 * h) * err, rel=1e-4, abs=0)


def test_zero_flux_linear_errors_are_finite():
    out, err = convert_flux_unit(0.0, 5000.0, "uJy", "erg/s/cm2/A", flux_err=1.0)
    assert out == 0.0 and np.isfinite(err) and err > 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"flux": 1.0, "wave": 5000.0, "from_unit": "furlong"}, "unknown flux unit"),
        ({"flux": 1.0, "wave": 5000.0, "to_unit": "W/m2"}, "unknown flux unit"),
        ({"flux": 1.0, "wave": -5.0}, "wave"),
        ({"flux": np.nan, "wave": 5000.0}, "NaN"),
        ({"flux": -1.0, "wave": 5000.0, "to_unit": "AB"}, "non-positive"),
        ({"flux": 1.0, "wave": 5000.0, "flux_err": -1.0}, "flux_err"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        convert_flux_unit(**kwargs)
