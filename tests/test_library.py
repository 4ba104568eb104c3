"""Model libraries: reproducible draws, both file layouts, photometry at a redshift."""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import pixedfit.library as lib_mod
from pixedfit.fitting import RdspsSettings, fit_catalog
from pixedfit.library import (
    GENERATION_RANGES,
    ModelLibrary,
    derived_table,
    derived_table_of_batch,
    generate_library,
    read_library,
)
from pixedfit.sps import DERIVED_NAMES, SEDModel

FILTERS = ["galex_fuv", "sdss_u", "sdss_r", "2mass_k", "wise_w1"]
REF_DIR = (
    Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "original_algorithms"
)


@pytest.fixture(scope="module")
def model():
    return SEDModel(sfh_form=1, dust_law=1, dust_emission=True, add_neb_emission=False)


@pytest.fixture(scope="module")
def library(model):
    return generate_library(model, 300, seed=3, spectra=True, chunk=128)


def test_draws_are_seeded_within_ranges_and_thread_invariant(model, library):
    assert library.nmodels == 300
    assert list(library.params) == [*[p for p in model.free_params() if p != "log_mass"],
                                    "log_mass"]
    for name, (lo, hi) in library.ranges.items():
        assert lo <= library.params[name].min() and library.params[name].max() <= hi
    assert library.ranges["log_age"] == GENERATION_RANGES["log_age"]
    assert np.all(library.params["log_mass"] == 0)
    again = generate_library(model, 300, seed=3, chunk=77, threads=1, spectra=True)
    for name in library.params:
        np.testing.assert_array_equal(again.params[name], library.params[name])
    for name in library.derived:
        np.testing.assert_array_equal(again.derived[name], library.derived[name])
    # without spectra the derived quantities come from the photometry grid: <= 3e-4
    fast = generate_library(model, 300, seed=3)
    for name in library.derived:
        np.testing.assert_allclose(fast.derived[name], library.derived[name], atol=1.5e-4)
    other = generate_library(model, 300, seed=4)
    assert not np.array_equal(other.params["log_age"], library.params["log_age"])


def test_derived_quantities_are_per_solar_mass_surviving(model, library):
    # The living mass is below the surviving (living + remnants) mass of 1 Msun, formed above.
    assert np.all(library.derived["log_mass_living"] <= 1e-9)
    assert np.all(library.derived["log_mass_formed"] >= -1e-9)
    # mass-weighted ages never exceed the age since the onset of star formation
    assert np.all(library.derived["log_mw_age"] <= library.params["log_age"] + 1e-9)
    assert "log_dustmass" in library.derived and "log_fagn_bol" not in library.derived
    # one model recomputed directly agrees
    i = 17
    p = {k: v[i] for k, v in library.params.items()}
    rest = model.rest_spectrum(p)
    assert np.log10(rest.derived["sfr"]) == pytest.approx(library.derived["log_sfr"][i], abs=1e-9)
    np.testing.assert_allclose(library.spectra[i], rest.flux.astype(np.float32), rtol=1e-6)


def test_derived_table_of_a_batch_is_the_derived_table(model, library):
    """The log quantities of the kernels' (n, len(DERIVED_NAMES)) array of a batch are
    those of its mapping, bit for bit (a zero star-formation rate at its floor)."""
    params = {k: v[:7] for k, v in library.params.items()}
    derived = model.properties(params)
    derived["sfr_10myr"][2] = 0.0
    batch = np.column_stack([derived[k] for k in DERIVED_NAMES])
    expect = derived_table(model, derived)
    out = derived_table_of_batch(model, batch)
    assert list(out) == list(expect) and "log_dustmass" in out
    for name, v in expect.items():
        np.testing.assert_array_equal(out[name], v)
    assert out["log_sfr10"][2] == -33.0


def test_round_trip_our_layout(library, tmp_path):
    path = tmp_path / "lib.h5"
    library.write(path)
    back = read_library(path)
    assert back.names == library.names and back.seed == 3 and back.config == library.config
    np.testing.assert_array_equal(back.table()[1], library.table()[1])
    np.testing.assert_array_equal(back.spectra, library.spectra)
    assert back.ranges == library.ranges
    nospec = ModelLibrary.read(path, spectra=False)
    assert nospec.spectra is None and nospec.nmodels == 300


def test_original_layout_round_trip_and_reference_reader(library, tmp_path):
    path = tmp_path / "orig.hdf5"
    library.write_pixedfit(path)
    back = read_library(path)
    free = [n for n in library.params if n != "log_mass"]
    assert list(back.params)[:-1] == free
    for name in [*free, "log_mass"]:
        np.testing.assert_array_equal(back.params[name], library.params[name])
    for name in ("log_sfr", "log_mw_age", "log_dustmass"):
        np.testing.assert_array_equal(back.derived[name], library.derived[name])
    np.testing.assert_allclose(back.spectra, library.spectra, rtol=1e-7)
    with h5py.File(path) as f:
        assert f["mod"].attrs[f"par{len(free)}"] == "log_mass"
        assert f["mod/spec/f299"].shape == library.wave.shape
    if REF_DIR.is_dir():  # the original's own reading code path, re-implemented
        sys.path.insert(0, str(REF_DIR))
        try:
            import ref_rdsps

            reader = ref_rdsps.Hdf5ModelReader(str(path))
            assert reader.nmodels == 300
            assert reader.params[: len(free) + 3] == [*free, "log_mass", "log_sfr", "log_mw_age"]
            np.testing.assert_allclose(reader.spectrum(5), library.spectra[5], rtol=1e-7)
        finally:
            sys.path.remove(str(REF_DIR))


def test_photometry_from_model_and_from_spectra_agree(model, library):
    phot = library.photometry(FILTERS, 0.1, model=model)
    assert phot.flux.shape == (1, len(FILTERS), 300)
    assert phot.param_names == tuple(library.names)
    via_spectra = library.photometry(FILTERS, 0.1, use_spectra=True)
    # float32 storage and the coarse photometry grid of the model: < 0.5 %
    np.testing.assert_allclose(via_spectra.flux, phot.flux, rtol=5e-3)
    grid = library.photometry(FILTERS, [0.05, 0.1, 0.2], model=model)
    assert grid.flux.shape == (3, len(FILTERS), 300)
    np.testing.assert_allclose(grid.flux[1], phot.flux[0], rtol=1e-12)


class _TwoRankPool:
    """A pool as an MPI pool of two ranks behaves: rank r evaluates tasks r, r + 2, ...,
    here the second rank's tasks first, and every caller gets all results in task order."""

    def __init__(self) -> None:
        self.done: list[int] = []

    def map(self, func, tasks):
        items = list(tasks)
        results = {}
        for rank in (1, 0):
            for index in range(rank, len(items), 2):
                results[index] = func(items[index])
                self.done.append(index)
        return [results[i] for i in range(len(items))]


def test_photometry_shared_over_a_pool_is_the_same(model):
    """Blocks of 4096 models shared over the ranks of a pool give the same bits as one
    process (a model's photometry never depends on its block)."""
    lib = generate_library(model, 9000, seed=5)
    alone = lib.photometry(FILTERS, [0.02, 0.04], model=model, threads=1)
    pool = _TwoRankPool()
    shared = lib.photometry(FILTERS, [0.02, 0.04], model=model, threads=1, pool=pool)
    assert sorted(pool.done) == [0, 1, 2] and pool.done[0] == 1
    np.testing.assert_array_equal(shared.flux, alone.flux)
    np.testing.assert_array_equal(shared.params, alone.params)


def test_library_rebuilds_its_model_only_on_its_own_grid(model, library):
    """A library records the SSP grid that made it; rebuilding its model on another grid is
    refused (its derived quantities would belong to other models)."""
    from copy import deepcopy

    from pixedfit.sps.grids import grid_digest

    assert library.config["ssp_grid"]["digest"] == grid_digest(model.grid)
    assert grid_digest(library.model().grid) == grid_digest(model.grid)
    other = deepcopy(library)
    other.config["ssp_grid"]["digest"] = "f" * 64
    with pytest.raises(ValueError, match=r"generated with the SSP grid .*generate the library"):
        other.model()


def test_bad_input(model, library, tmp_path):
    with pytest.raises(ValueError, match="positive integer"):
        generate_library(model, 0)
    with pytest.raises(ValueError, match="does not use"):
        generate_library(model, 10, ranges={"log_fagn": (-2, -1)})
    with pytest.raises(ValueError, match="lo <= hi"):
        generate_library(model, 10, ranges={"log_age": (1.0, 0.0)})
    with pytest.raises(ValueError, match="z must be"):
        library.photometry(FILTERS, -0.1, model=model)
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(ValueError, match="not a readable HDF5"):
        ModelLibrary.read(bad)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    with pytest.raises(ValueError, match="not a pixedfit model library"):
        ModelLibrary.read(other)
    nospec = ModelLibrary(params=library.params, derived=library.derived)
    with pytest.raises(ValueError, match="stores spectra"):
        nospec.write_pixedfit(tmp_path / "x.hdf5")


def test_photometry_planes_larger_than_half_the_memory_are_refused(model, library,
                                                                   monkeypatch):
    """A redshift grid whose photometry would take more than half the machine's memory is
    refused before any work, with the sizes and what to change; within it, it is made."""
    grid = np.linspace(0.01, 0.05, 5)
    need = 8 * grid.size * len(FILTERS) * library.nmodels  # 60 kB
    calls = []

    def fake_photometry_zgrid(*args, **kwargs):  # the work that must not start
        calls.append(1)
        raise AssertionError("photometry computed despite the memory check")

    monkeypatch.setattr(lib_mod, "_physical_memory_bytes", lambda: 2 * need - 2)
    monkeypatch.setattr(model, "photometry_zgrid", fake_photometry_zgrid)
    with pytest.raises(ValueError, match=r"z: .*300 models in 5 bands at 5 redshifts.*dz"):
        library.photometry(FILTERS, grid, model=model)
    obs = np.full((2, len(FILTERS)), 1e-15)
    with pytest.raises(ValueError, match=r"z: .*larger dz"):
        fit_catalog(obs, obs * 0.1, FILTERS, [0.01, 0.04], library=library, model=model,
                    dz=0.01, method=RdspsSettings(refine=False))
    assert calls == []
    monkeypatch.undo()
    monkeypatch.setattr(lib_mod, "_physical_memory_bytes", lambda: 2 * need)
    assert library.photometry(FILTERS, grid, model=model).flux.shape[0] == grid.size
    monkeypatch.setattr(lib_mod, "_physical_memory_bytes", lambda: None)  # OS says nothing
    assert library.photometry(FILTERS, grid, model=model).flux.shape[0] == grid.size


def test_photometry_table_at_fixed_redshift(model, library, tmp_path):
    from astropy.table import Table

    table = library.photometry_table(FILTERS, 0.2, model=model)
    assert len(table) == 300 and table.meta["Z"] == 0.2
    phot = library.photometry(FILTERS, 0.2, model=model)
    np.testing.assert_array_equal(table["sdss_r"], phot.flux[0, 2])
    table.write(tmp_path / "photo.fits")
    back = Table.read(tmp_path / "photo.fits")
    assert back.meta["FIL4"] == "wise_w1"
    np.testing.assert_array_equal(back["log_age"], library.params["log_age"])
