"""Emission-line table and air/vacuum conversion."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pixedfit.lines import (
    EMISSION_LINES,
    air_to_vacuum,
    emission_line_mask,
    line_wavelengths,
    vacuum_to_air,
)


@pytest.mark.parametrize(("vac", "air"), [
    (6564.61, 6562.80),  # Halpha (air value of the NIST/SDSS tables)
    (5008.24, 5006.84),  # [OIII]
    (4862.68, 4861.33),  # Hbeta (air 4861.3)
    (6585.27, 6583.45),  # [NII]
])
def test_vacuum_to_air_known_lines(vac: float, air: float) -> None:
    assert vacuum_to_air(vac) == pytest.approx(air, abs=0.03)
    assert air_to_vacuum(air) == pytest.approx(vac, abs=0.03)


@given(st.floats(min_value=1000.0, max_value=50000.0))
def test_round_trip(lam: float) -> None:
    assert air_to_vacuum(vacuum_to_air(lam)) == pytest.approx(lam, abs=1e-7)


def test_uv_unchanged_and_arrays() -> None:
    assert vacuum_to_air(1215.67) == 1215.67
    w = np.array([1500.0, 5000.0, 9000.0])
    assert vacuum_to_air(w).shape == (3,)
    assert np.all(vacuum_to_air(w)[1:] < w[1:])


def test_table_is_sane() -> None:
    names = [ln.name for ln in EMISSION_LINES]
    assert len(set(names)) == len(names)
    assert {"Halpha", "Hbeta", "[OIII]_5008", "[NII]_6585", "[OII]_3727"} <= set(names)
    vac = line_wavelengths("vacuum")
    air = line_wavelengths("air")
    assert np.all(air <= vac)
    ha = next(ln for ln in EMISSION_LINES if ln.name == "Halpha")
    assert ha.wave_air == pytest.approx(6562.80, abs=0.03)


def test_emission_line_mask() -> None:
    wave = np.arange(6000.0, 7000.0, 1.0)
    z = 0.01
    m = emission_line_mask(wave, z, del_wave=10.0)
    ha = 6564.61 * 1.01
    assert m[np.argmin(np.abs(wave - ha))]
    assert m[np.argmin(np.abs(wave - (ha + 9.5)))]
    # 6700 is far from every redshifted line ([NII] 6651, HeI 6747)
    assert not m[np.argmin(np.abs(wave - 6700.0))]
    m_air = emission_line_mask(wave, z, del_wave=1.0, medium="air")
    assert m_air[np.argmin(np.abs(wave - 6562.80 * 1.01))]
    custom = emission_line_mask(wave, 0.0, 5.0, lines=[6500.0])
    assert custom.sum() == 11


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="medium"):
        line_wavelengths("glass")
    with pytest.raises(ValueError, match="z"):
        emission_line_mask([5000.0], -2.0)
    with pytest.raises(ValueError, match="del_wave"):
        emission_line_mask([5000.0], 0.0, del_wave=-1)
    with pytest.raises(ValueError, match="wave_vac"):
        vacuum_to_air([np.nan])
