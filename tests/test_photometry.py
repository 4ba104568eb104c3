"""Photometry kernel: exactness, agreement with independent integrations and sedpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pixedfit import _core, filters
from pixedfit.demo import DEMO_FILTERS, blackbody_flambda
from pixedfit.units import C_AA_PER_S, convert_flux_unit

# A model-like grid from the far-UV to the sub-mm, fine enough that sampling the analytic
# spectra on it is exact to ~1e-8.
GRID = np.geomspace(500.0, 1.0e7, 300_000)


def _alias_table() -> dict[str, str]:
    path = Path(filters.__file__).with_name("data") / "filter_aliases.tsv"
    rows = [ln.split("\t") for ln in path.read_text().splitlines() if not ln.startswith("#")]
    return dict(rows[1:])


def _mapped_filters() -> list[str]:
    return list(_alias_table())


def _fine_reference(name: str, func) -> float:
    """∫ f T λ dλ / ∫ T λ dλ by the trapezoid rule on the curve's samples refined 32×."""
    w, t = filters.get_filter_curve(name)
    sub = np.linspace(0.0, 1.0, 33)[:-1]
    fine = np.concatenate([w[:-1, None] + (w[1:] - w[:-1])[:, None] * sub, [w[-1:]]], axis=None)
    tf = np.interp(fine, w, t)
    return np.trapezoid(func(fine) * tf * fine, fine) / np.trapezoid(tf * fine, fine)


SPECTRA = {
    "bb3000": lambda x: blackbody_flambda(x, 3000.0),
    "bb10000": lambda x: blackbody_flambda(x, 10000.0),
    "bb30000": lambda x: blackbody_flambda(x, 30000.0),
    "pl-2": lambda x: (x / 5000.0) ** -2.0,
    "pl0": lambda x: np.ones_like(x),
    "pl+1.5": lambda x: (x / 5000.0) ** 1.5,
}


@pytest.mark.parametrize("spec", list(SPECTRA))
def test_all_filters_agree_with_fine_grid_numpy_integration(spec):
    names = _mapped_filters()
    func = SPECTRA[spec]
    ours = filters.photometry(GRID, func(GRID), names)
    ref = np.array([_fine_reference(n, func) for n in names])
    rel = np.abs(ours / ref - 1)
    worst = names[int(np.argmax(rel))]
    assert rel.max() <= 1e-4, f"{spec}: worst filter {worst} rel diff {rel.max():.2e}"


def test_agrees_with_sedpy_projection():
    sedpy_obs = pytest.importorskip("sedpy.observate")
    names = [*DEMO_FILTERS, "hst_acs_f814w", "jwst_nircam_f200w", "spitzer_irac_80",
             "spitzer_mips_24", "herschel_pacs_160", "herschel_spire_250", "wise_w4"]
    table = _alias_table()
    sedpy_filters = sedpy_obs.load_filters([table[n] for n in names])
    for temp in (4000.0, 12000.0):
        flam = blackbody_flambda(GRID, temp) * 1e-20
        ours = filters.photometry(GRID, flam, names)
        # photon-weighted <f_lambda> -> <f_nu> through the pivot wavelength -> AB mag
        ours_ab = convert_flux_unit(ours, filters.cwave_filters(names), "erg/s/cm2/A", "AB")
        theirs_ab = np.array([f.ab_mag(GRID, flam) for f in sedpy_filters])
        rel = np.abs(10 ** (-0.4 * (ours_ab - theirs_ab)) - 1)
        assert rel.max() <= 1e-3, dict(zip(names, rel, strict=True))


def test_batched_equals_single_and_thread_invariant():
    rng = np.random.default_rng(3)
    wave = np.geomspace(900.0, 60000.0, 5000)
    flux = np.abs(rng.normal(1.0, 0.3, size=(301, wave.size))) * blackbody_flambda(wave, 7000.0)
    fw = filters.filter_weights(DEMO_FILTERS, wave)
    one = fw.apply(flux, threads=1)
    two = fw.apply(flux, threads=2)
    np.testing.assert_array_equal(one, two)
    assert one.shape == (301, 12)
    np.testing.assert_array_equal(fw.apply(flux[17]), one[17])
    np.testing.assert_array_equal(filters.photometry(wave, flux, list(DEMO_FILTERS)), one)
    assert filters.photometry(wave, flux[0], "sdss_r").shape == (1,)


def test_weights_sum_to_one_per_band():
    fw = filters.filter_weights(DEMO_FILTERS, np.geomspace(900.0, 60000.0, 777))
    sums = np.add.reduceat(fw.weights, fw.offsets[:-1])
    np.testing.assert_allclose(sums, 1.0, rtol=1e-13)


@settings(max_examples=40, deadline=None)
@given(
    level=st.floats(1e-30, 1e30),
    scale=st.floats(1e-5, 1e5),
    seed=st.integers(0, 2**32 - 1),
    npts=st.integers(20, 400),
)
def test_property_constant_linearity_and_bounds(level, scale, seed, npts):
    rng = np.random.default_rng(seed)
    wave = np.sort(rng.uniform(1000.0, 30000.0, npts))
    wave = np.concatenate([[900.0], np.unique(wave), [31000.0]])
    names = ["sdss_g", "2mass_j", "galex_nuv"]
    # A constant spectrum comes back unchanged.
    np.testing.assert_allclose(
        filters.photometry(wave, np.full(wave.size, level), names), level, rtol=1e-12
    )
    # Linearity and positivity bounds for a random positive spectrum.
    f = rng.uniform(0.1, 2.0, wave.size)
    base = filters.photometry(wave, f, names)
    scaled = filters.photometry(wave, scale * f, names)
    np.testing.assert_allclose(scaled, scale * base, rtol=1e-12)
    assert np.all(base >= f.min() * (1 - 1e-12)) and np.all(base <= f.max() * (1 + 1e-12))


def test_pivot_gives_exact_fnu_of_a_flat_fnu_spectrum():
    # A flat f_nu spectrum (f_lambda = c f_nu / lambda^2) returns f_nu exactly via the pivot.
    fnu = 3.631e-20
    names = ["sdss_u", "2mass_k", "wise_w1"]
    wave = np.geomspace(2000.0, 60000.0, 200_000)
    flam = filters.photometry(wave, C_AA_PER_S * fnu / wave**2, names)
    piv = filters.cwave_filters(names)
    np.testing.assert_allclose(flam * piv**2 / C_AA_PER_S, fnu, rtol=1e-6)


@pytest.mark.parametrize(
    ("wave", "flux", "match"),
    [
        (np.linspace(10000, 1000, 50), np.ones(50), "strictly increasing"),
        (np.r_[np.nan, np.linspace(1000, 10000, 49)], np.ones(50), "NaN"),
        (np.linspace(1000, 10000, 50), np.ones(49), "expected shape"),
        (np.linspace(1000, 10000, 50), np.ones((2, 3, 50)), "expected shape"),
        (np.linspace(1000, 10000, 50), np.r_[np.ones(20), np.nan, np.ones(29)], "'sdss_g'"),
        (np.linspace(1000, 10000, 50), np.r_[np.ones(20), np.inf, np.ones(29)], "infinite"),
        (np.linspace(5000, 6000, 50), np.ones(50), "below min_coverage"),
    ],
)
def test_bad_photometry_input(wave, flux, match):
    with pytest.raises(ValueError, match=match):
        filters.photometry(wave, flux, ["sdss_g"])


def test_nan_outside_every_filter_cannot_change_the_result():
    wave = np.linspace(1000, 10000, 50)
    flux = np.ones(50)
    flux[0] = np.nan  # 1000 Å: outside sdss_g
    assert filters.photometry(wave, flux, "sdss_g")[0] == pytest.approx(1.0, rel=1e-14)
    with pytest.raises(ValueError, match="spectrum 1"):
        filters.photometry(wave, np.vstack([np.ones(50), np.full(50, np.nan)]), "sdss_g")


def test_uncovered_filter_error_names_the_filter():
    with pytest.raises(ValueError, match="'wise_w2'"):
        filters.photometry(np.linspace(1000, 40000, 100), np.ones(100), ["sdss_g", "wise_w2"])


def test_threads_argument_is_checked():
    with pytest.raises(TypeError, match="threads"):
        filters.photometry(np.linspace(1000, 10000, 100), np.ones(100), "sdss_g", threads=1.5)


def test_core_kernel_checks_sizes_itself():
    with pytest.raises(ValueError, match="offsets"):
        _core.apply_band_weights(np.ones((2, 10)), np.array([0]), np.array([0, 20]), np.ones(5))
    with pytest.raises(ValueError, match="do not fit"):
        _core.apply_band_weights(np.ones((2, 10)), np.array([8]), np.array([0, 5]), np.ones(5))
