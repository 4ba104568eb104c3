"""IGM check values, AGN torus, smoothing and the observed-frame pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from _sps_shared import model
from pixedfit.sps.agn import find_agn_templates, read_agn_templates
from pixedfit.sps.bc03 import load_bc03
from pixedfit.sps.igm import igm_transmission, inoue14_transmission, madau95_transmission
from pixedfit.sps.model import SEDModel

REST = np.array([900.0, 1100.0, 1200.0, 1210.0, 1300.0])


def test_igm_check_values():
    # spec §3.6: z = 3, rest 900/1100/1200/1210/1300 A
    np.testing.assert_allclose(madau95_transmission(REST * 4, 3.0),
                               [0.4657, 0.7348, 0.6594, 0.6515, 1.0], atol=1e-4)
    np.testing.assert_allclose(inoue14_transmission(REST * 4, 3.0),
                               [0.5465, 0.7579, 0.6823, 0.6742, 1.0], atol=1e-4)


@pytest.mark.parametrize("z", [0.5, 1.5, 3.0, 5.5])
def test_igm_limits(z):
    lam = np.geomspace(300, 3000, 500) * (1 + z)
    for t in (0, 1):
        tr = igm_transmission(lam, z, t)
        assert np.all((tr >= 0) & (tr <= 1))
        assert np.all(tr[lam > 1216 * (1 + z)] == 1.0)
    # more absorption at higher redshift for the same rest wavelength
    assert inoue14_transmission([1100 * (1 + z)], z)[0] > inoue14_transmission(
        [1100 * (1 + z + 1)], z + 1)[0]
    with pytest.raises(ValueError, match="igm_type"):
        igm_transmission(lam, z, 3)


def test_observed_spectrum_applies_igm():
    plain = model(sfh_form=1, add_neb_emission=False)
    igm = model(sfh_form=1, add_neb_emission=False, add_igm_absorption=True, igm_type=1)
    w, f0 = plain.spectrum({"log_age": 0.0}, z=3.0)
    _, f1 = igm.spectrum({"log_age": 0.0}, z=3.0)
    np.testing.assert_allclose(f1, f0 * inoue14_transmission(w, 3.0), rtol=1e-12)


@pytest.fixture
def agn_file(shared_data):
    return shared_data / "agn_torus_nenkova08"


def test_agn_requires_templates(monkeypatch, tmp_path):
    monkeypatch.delenv("SPS_HOME", raising=False)
    with pytest.raises(FileNotFoundError, match=r"SPS_HOME.*|agn_templates"):
        SEDModel(add_agn=True, grid=load_bc03())
    monkeypatch.setenv("SPS_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="Nenkova08"):
        find_agn_templates()


def test_agn_torus(agn_file, monkeypatch, tmp_path):
    tmpl = read_agn_templates(find_agn_templates(agn_file))
    assert tmpl.tau.tolist() == [5, 10, 20, 30, 40, 60, 80, 100, 150]
    # found through $SPS_HOME/dust as well
    (tmp_path / "dust").mkdir()
    (tmp_path / "dust" / find_agn_templates(agn_file).name).write_bytes(
        find_agn_templates(agn_file).read_bytes())
    monkeypatch.setenv("SPS_HOME", str(tmp_path))
    assert find_agn_templates().parent == tmp_path / "dust"

    g = load_bc03()
    m = SEDModel(sfh_form=1, add_agn=True, add_neb_emission=False, agn_templates=agn_file,
                 grid=g)
    p = {"log_age": 0.5, "dust2": 0.0, "log_fagn": -0.5, "log_tauagn": np.log10(20.0)}
    r = m.rest_spectrum(p, components=True)
    c = r.components
    l_agn = np.trapezoid(c["agn"], m.wave)
    l_star = np.trapezoid(c["stellar"], m.wave)  # no dust: intrinsic
    assert l_agn == pytest.approx(10**-0.5 * l_star, rel=1e-4)
    assert r.derived["fagn_bol"] == pytest.approx(l_agn / r.derived["lbol"], rel=1e-6)
    # template shape at tau = 20 (a grid node): f_lambda = f_nu / lambda^2
    j = 2
    flam = tmpl.fnu[j] / tmpl.wave**2
    sel = (tmpl.wave > 2e4) & (tmpl.wave < 3e5)
    ratio = np.interp(tmpl.wave[sel], m.wave, c["agn"]) / flam[sel]
    np.testing.assert_allclose(ratio / np.median(ratio), 1.0, rtol=2e-3)
    # without AGN the component is zero and fagn_bol = 0
    m0 = model(sfh_form=1, add_neb_emission=False)
    r0 = m0.rest_spectrum(p, components=True)
    assert np.all(r0.components["agn"] == 0) and r0.derived["fagn_bol"] == 0
    np.testing.assert_allclose(r0.flux, c["stellar"], rtol=1e-12)


def test_velocity_and_lsf_smoothing():
    g = load_bc03()
    base = model(sfh_form=1)
    smooth = SEDModel(sfh_form=1, grid=g, sigma_smooth=200.0)
    p = {"log_age": -1.5, "dust2": 0.0}
    f0 = base.rest_spectrum(p).flux
    f1 = smooth.rest_spectrum(p).flux
    w = base.wave
    sel = (w > 4000) & (w < 7000)
    # flux is conserved, the H-alpha peak is lowered
    assert np.trapezoid(f1[sel], w[sel]) == pytest.approx(np.trapezoid(f0[sel], w[sel]), rel=1e-3)
    ha = np.argmin(abs(w - 6562.8))
    win = slice(ha - 5, ha + 6)
    assert f1[win].max() < 0.5 * f0[win].max()
    # the kernel: a Gaussian of sigma = lambda * 200 km/s / c at every pixel
    from pixedfit import _core
    ref = _core.smooth_gaussian(w, f0[None, :], w * 200.0 / 299792.458)[0]
    np.testing.assert_allclose(f1, ref, rtol=1e-12)
    lsf = SEDModel(sfh_form=1, grid=g, smooth_lsf=True, lsf_wave=[3000, 9000],
                   lsf_sigma=[2.0, 2.0])
    f2 = lsf.rest_spectrum(p).flux
    assert f2[win].max() < f0[win].max()
    with pytest.raises(ValueError, match="lsf"):
        SEDModel(grid=g, smooth_lsf=True)


def test_spectrum_batch_with_several_redshifts():
    m = model(sfh_form=0, add_neb_emission=False)
    w, f = m.spectrum({"log_age": [0.0, 0.1, 0.2]}, z=[0.1, 0.2, 0.1])
    assert w.shape == f.shape == (3, m.wave.size)
    w1, f1 = m.spectrum({"log_age": 0.1}, z=0.2)
    np.testing.assert_allclose(f[1], f1)
    np.testing.assert_allclose(w[1], w1)
    ph = m.photometry({"log_age": [0.0, 0.1, 0.2]}, [0.1, 0.2, 0.1], ["sdss_r", "sdss_g"])
    ph1 = m.photometry({"log_age": 0.1}, 0.2, ["sdss_r", "sdss_g"])
    np.testing.assert_allclose(ph[1], ph1, rtol=1e-12)


def test_observed_components_sum_to_the_spectrum(agn_file):
    m = SEDModel(sfh_form=4, dust_law=0, dust_emission=True, add_agn=True,
                 agn_templates=agn_file, add_igm_absorption=True, grid=load_bc03())
    p = {"log_age": 0.2, "log_fagn": -1.0, "log_mass": 10.0}
    w, comps = m.observed_components(p, z=0.8)
    w2, f = m.spectrum(p, z=0.8)
    np.testing.assert_allclose(w, w2)
    np.testing.assert_allclose(comps["total"], f, rtol=1e-12)
    total = comps["stellar"] + comps["nebular"] + comps["dust"] + comps["agn"]
    np.testing.assert_allclose(total, f, rtol=1e-9, atol=1e-300)
    assert all(np.any(comps[k] > 0) for k in ("stellar", "nebular", "dust", "agn"))
