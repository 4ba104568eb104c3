"""Cosmology helpers against astropy and the angular-diameter relation."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import cosmology as ac
from astropy import units as u

from pixedfit import cosmology


def test_default_is_flat_lcdm_70_03():
    ref = ac.FlatLambdaCDM(H0=70, Om0=0.3)
    assert cosmology.luminosity_distance(0.5) == pytest.approx(
        ref.luminosity_distance(0.5).to_value(u.Mpc), rel=1e-12
    )
    assert cosmology.age_of_universe(0.0) == pytest.approx(ref.age(0).to_value(u.Gyr), rel=1e-12)


@pytest.mark.parametrize(("code", "name"), list(cosmology.COSMOLOGY_CODES.items())[1:])
def test_named_cosmologies_by_name_and_code(code, name):
    ref = getattr(ac, name)
    z = np.array([0.01, 0.3, 2.0])
    expected = ref.luminosity_distance(z).to_value(u.Mpc)
    np.testing.assert_allclose(cosmology.luminosity_distance(z, cosmo=name), expected, rtol=1e-12)
    np.testing.assert_allclose(cosmology.luminosity_distance(z, cosmo=code), expected, rtol=1e-12)
    assert cosmology.get_cosmology(name.lower()) is ref


def test_kpc_per_pixel_is_angular_diameter_distance_times_angle():
    z, scale = 0.05, 1.5
    cosmo = cosmology.get_cosmology("Planck18")
    da_kpc = cosmo.angular_diameter_distance(z).to_value(u.kpc)
    expected = da_kpc * scale * np.pi / (180 * 3600)
    assert cosmology.kpc_per_pixel(z, scale, cosmo="Planck18") == pytest.approx(expected, rel=1e-9)
    custom = cosmology.kpc_per_pixel(z, scale, H0=100.0, Om0=0.3)
    assert custom == pytest.approx(
        cosmology.kpc_per_pixel(z, scale, H0=70.0, Om0=0.3) * 0.7, rel=1e-9
    )


def test_astropy_instance_is_accepted():
    cosmo = ac.FlatLambdaCDM(H0=67.0, Om0=0.32)
    assert cosmology.get_cosmology(cosmo) is cosmo
    assert cosmology.age_of_universe(1.0, cosmo) == pytest.approx(cosmo.age(1.0).to_value(u.Gyr))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: cosmology.luminosity_distance(-0.1), ">= 0"),
        (lambda: cosmology.luminosity_distance(np.nan), "finite"),
        (lambda: cosmology.kpc_per_pixel(0.0, 1.0), "> 0"),
        (lambda: cosmology.kpc_per_pixel(0.1, -1.0), "arcsec_per_pix"),
        (lambda: cosmology.get_cosmology("Planck99"), "unknown cosmology"),
        (lambda: cosmology.get_cosmology(9), "unknown cosmology code"),
        (lambda: cosmology.get_cosmology("flat_LCDM", H0=-1), "H0"),
        (lambda: cosmology.get_cosmology("flat_LCDM", Om0=2), "Om0"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
