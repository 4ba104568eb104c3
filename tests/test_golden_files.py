"""Golden files: every file layout pixedfit reads, frozen in ``tests/data/golden``.

Two kinds (see ``tests/data/golden/README.md``):

* ours, one file per layout and schema version (``*_v1.*``), written once by pixedfit's
  writers: reading them guards against a change of our layout that breaks files users
  already have; each is also written again from what was read and read back (round trip);
* the original piXedfit's (``orig_*``), written by the generator directly with astropy /
  h5py from the spec, not with pixedfit's writers: reading them guards against a misread
  spec (a writer and a reader of ours that agree with each other but not with piXedfit).

Every expected value comes from ``tests/_golden_inputs.py`` (the tiny inputs the generator
wrote) or is written out here; nothing is read back from a file to be compared with itself.
FITS and HDF5 files are stored gzip-compressed; the ``golden`` fixture decompresses them, so
the readers see the very bytes the writers made.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

import _golden_inputs as g
from pixedfit.analysis.maps import (
    FLAG_NOT_FITTED,
    PropertyMaps,
    get_bestfit_params,
)
from pixedfit.cubes import BinnedCube, FluxCube, SpecPhotCube, read_cube
from pixedfit.filters import (
    UnknownFilterError,
    add_filter,
    cwave_filters,
    get_filter_curve,
    list_filters,
)
from pixedfit.fitting.results import FitResult, ResultStore, StaleStoreError, input_digest
from pixedfit.ifs.calibration import read_spectral_correction, write_spectral_correction
from pixedfit.ifs.spatial import SpectralNoise
from pixedfit.images import read_noise_correlation
from pixedfit.library import ModelLibrary, read_library
from pixedfit.sps.grids import read_grid, write_grid

GOLDEN = g.GOLDEN_DIR

#: Every golden file (a new one must be added here, to README.md and to a test).
OURS_V1 = [
    "fluxmap_v1.fits.gz", "specphot_v1.fits.gz", "speccorr_v1.fits.gz",
    "binned_phot_v1.fits.gz", "binned_specphot_v1.fits.gz", "fluxmap_noise_v1.fits.gz",
    "specnoise_v1.fits.gz", "library_v1.h5.gz", "library_nospec_v1.h5.gz",
    "fitresult_rdsps_v1.h5.gz", "fitresult_mcmc_v1.h5.gz", "resultstore_v1/store.json",
    "resultstore_v1/bin1.h5.gz", "propmaps_v1.fits.gz", "sspgrid_v1.h5.gz", "chain_v1.h5.gz",
    "filters_registry_v1.json", "pipeline_record_v1.json",
]
ORIGINAL = [
    "orig_fluxmap.fits.gz", "orig_fluxmap_fluxprimary.fits.gz", "orig_specphot.fits.gz",
    "orig_binned_phot.fits.gz", "orig_binned_specphot.fits.gz",
    "orig_binned_oldlayout.fits.gz", "orig_library.h5.gz", "orig_rdsps.fits.gz",
    "orig_mcmc.fits.gz", "orig_maps_rdsps.fits.gz", "orig_maps_mcmc.fits.gz",
]
NOT_DATA = {"make_golden.py", "README.md"}
MAX_FILE_BYTES = 50_000
MAX_TOTAL_BYTES = 500_000


@pytest.fixture
def golden(tmp_path):
    """Path of a plain copy of a golden file (decompressed when stored as ``.gz``)."""

    def get(name: str) -> Path:
        src = GOLDEN / name
        plain = name[:-3] if name.endswith(".gz") else name
        dest = tmp_path / "golden" / plain
        dest.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".gz"):
            dest.write_bytes(gzip.decompress(src.read_bytes()))
        else:
            shutil.copyfile(src, dest)
        return dest

    return get


def _nan_equal(a, b) -> None:
    """Equal, NaN where NaN. Floating-point inputs that _golden_inputs computes with
    transcendental functions (np.geomspace, powers, exponentials) differ in the last bit
    between CPUs (numpy's SIMD paths: 31997.157113203662 against 31997.15711320366 from
    np.geomspace on AVX-512 and AVX2), so floats are compared to 1e-13 relative: a few
    units in the last place, far below any format's rounding (float32: 6e-8)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind == "f" and b.dtype.kind == "f":
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=0.0, equal_nan=True)
    else:
        np.testing.assert_array_equal(a, b)


def _layout(path: Path) -> list[str]:
    with fits.open(path) as hdul:
        return [h.name for h in hdul]


# =========================================================================== the set
def test_golden_set_is_complete_small_and_documented():
    present = sorted(str(p.relative_to(GOLDEN)) for p in GOLDEN.rglob("*")
                     if p.is_file() and p.name not in NOT_DATA
                     and "__pycache__" not in p.parts)
    assert present == sorted(OURS_V1 + ORIGINAL)
    sizes = {name: (GOLDEN / name).stat().st_size for name in present}
    assert max(sizes.values()) <= MAX_FILE_BYTES, sizes
    assert sum(sizes.values()) <= MAX_TOTAL_BYTES
    readme = (GOLDEN / "README.md").read_text(encoding="utf-8")
    assert "make_golden.py" in readme
    for name in present:
        assert f"`{name}`" in readme, f"{name} is not described in README.md"
    for name in present:  # compressed files are plain gzip streams of FITS / HDF5 bytes
        if name.endswith(".gz"):
            head = gzip.decompress((GOLDEN / name).read_bytes())[:8]
            assert head.startswith(b"SIMPLE") or head == b"\x89HDF\r\n\x1a\n", name


# =========================================================================== ours: cubes
def _check_photometry(cube: FluxCube, extra: dict | None = None) -> None:
    assert isinstance(cube, FluxCube)
    assert cube.filters == list(g.FILTERS)
    assert cube.shape == (g.NY, g.NX) and cube.nbands == g.NB
    _nan_equal(cube.region, g.REGION)
    _nan_equal(cube.flux, g.inside(g.PIX_FLUX, g.REGION))
    _nan_equal(cube.flux_err, g.inside(g.PIX_ERR, g.REGION))
    assert cube.flux[2, 1, 3] == 3.0 * (2.0 + 0.5 + 0.75)  # band i, y=1, x=3, written out
    assert cube.unit == 1e-17 and cube.z == 0.02 and cube.pixel_scale == 1.0
    assert cube.gal_ebv == 0.03
    _nan_equal(cube.stamp, g.STAMP)
    ref = WCS(g.wcs_header())
    assert list(cube.wcs.wcs.ctype) == ["RA---TAN", "DEC--TAN"]
    np.testing.assert_allclose(cube.wcs.wcs.crval, [150.1, 2.2], rtol=0, atol=1e-12)
    np.testing.assert_allclose(cube.wcs.wcs.crpix, [3.0, 2.5])
    np.testing.assert_allclose(cube.wcs.pixel_to_world_values([0, 4], [0, 3]),
                               ref.pixel_to_world_values([0, 4], [0, 3]), rtol=0, atol=1e-12)
    for key, value in (extra or {}).items():
        assert cube.header[key] == value, key


def _assert_same_cube(a: FluxCube, b: FluxCube) -> None:
    for name in ("flux", "flux_err", "region", "stamp"):
        _nan_equal(getattr(a, name), getattr(b, name))
    assert (a.filters, a.unit, a.z, a.pixel_scale, a.gal_ebv) == \
        (b.filters, b.unit, b.z, b.pixel_scale, b.gal_ebv)
    assert a.wcs.to_header() == b.wcs.to_header()
    assert list(a.header.items()) == list(b.header.items())


def test_fluxmap_v1(golden, tmp_path):
    path = golden("fluxmap_v1.fits.gz")
    cube = FluxCube.read(path)
    _check_photometry(cube, g.FLUXMAP_EXTRA)
    assert type(read_cube(path)) is FluxCube
    assert _layout(path) == ["PRIMARY", "FLUX", "FLUX_ERR", "GALAXY_REGION", "STAMP_IMAGE"]
    with fits.open(path) as hdul:
        hdr = hdul[0].header
        assert hdul[0].data is None
        assert (hdr["PFVERSN"], hdr["PFKIND"], hdr["NFILTERS"], hdr["UNIT"]) == \
            (1, "FluxCube", 3, 1e-17)
        assert (hdr["BUNIT"], hdr["STRUCT"], hdr["SPECPHOT"]) == \
            ("erg/s/cm^2/A", "(band,y,x)", 0)
        assert [hdr[f"FIL{i}"] for i in range(3)] == list(g.FILTERS)
        assert (hdr["Z"], hdr["PIXSIZE"], hdr["GALEBV"]) == (0.02, 1.0, 0.03)
        assert hdul["GALAXY_REGION"].data.dtype.kind == "i"
    cube.write(tmp_path / "again.fits")
    _assert_same_cube(FluxCube.read(tmp_path / "again.fits"), cube)


def _check_specphot(sp: SpecPhotCube, spec, err, extra=None) -> None:
    assert isinstance(sp, SpecPhotCube)
    _check_photometry(sp.photometry, extra)
    _nan_equal(sp.wave, g.WAVE)
    assert sp.wave[0] == 4000.0 and sp.wave[-1] == 6950.0
    _nan_equal(sp.spec_region, g.SPEC_REGION)
    _nan_equal(sp.spec_flux, spec)
    _nan_equal(sp.spec_err, err)
    assert sp.ifs_survey == "manga"


def _assert_same_specphot(a: SpecPhotCube, b: SpecPhotCube) -> None:
    _assert_same_cube(a.photometry, b.photometry)
    for name in ("wave", "spec_flux", "spec_err", "spec_region"):
        _nan_equal(getattr(a, name), getattr(b, name))
    assert a.ifs_survey == b.ifs_survey


def test_specphot_v1(golden, tmp_path):
    path = golden("specphot_v1.fits.gz")
    sp = read_cube(path)
    _check_specphot(sp, g.SPEC_OURS, g.SPEC_ERR_OURS, g.FLUXMAP_EXTRA)
    assert np.isnan(sp.spec_flux[5, 1, 1]) and np.isnan(sp.spec_err[5, 1, 1])
    assert sp.spec_flux[6, 1, 1] == (1 + 6 / 64) * (1 + 1 / 8 + 1 / 16)
    assert _layout(path) == ["PRIMARY", "PHOTO_FLUX", "PHOTO_FLUXERR", "WAVE", "SPEC_FLUX",
                             "SPEC_FLUXERR", "SPEC_REGION", "PHOTO_REGION", "STAMP_IMAGE"]
    with fits.open(path) as hdul:
        hdr = hdul[0].header
        assert (hdr["PFKIND"], hdr["SPECPHOT"], hdr["IFSSURVE"]) == ("SpecPhotCube", 1, "manga")
        assert (hdr["STRUCTPH"], hdr["STRUCTSP"]) == ("(band,y,x)", "(wavelength,y,x)")
    sp.write(tmp_path / "again.fits")
    _assert_same_specphot(SpecPhotCube.read(tmp_path / "again.fits"), sp)


def test_spectral_correction_v1(golden, tmp_path):
    path = golden("speccorr_v1.fits.gz")
    cube, factor, model = read_spectral_correction(path)
    _check_specphot(cube, g.SPEC_OURS, g.SPEC_ERR_OURS, g.FLUXMAP_EXTRA)
    _nan_equal(factor, g.CORR_FACTOR)
    _nan_equal(model, g.CORR_MODEL)
    assert _layout(path)[-2:] == ["CORR_FACTOR", "MOD_FLUX"]
    write_spectral_correction(tmp_path / "again.fits", cube, factor, model)
    c2, f2, m2 = read_spectral_correction(tmp_path / "again.fits")
    _assert_same_specphot(c2, cube)
    _nan_equal(f2, factor)
    _nan_equal(m2, model)


# =========================================================================== ours: binned
def _check_binned_common(b: BinnedCube) -> None:
    assert b.nbins == 3 and b.filters == list(g.FILTERS)
    _nan_equal(b.bin_map, g.BIN_MAP)
    _nan_equal(b.bin_flux, g.BIN_FLUX)
    _nan_equal(b.bin_flux_err, g.BIN_FLUX_ERR)
    assert b.bin_flux[0, 0] == 12.5  # bin 1, band g: 4 pixels (2.75 + 3 + 3.25 + 3.5)
    _nan_equal(b.bin_npix, g.BIN_NPIX)
    assert b.unit == 1e-17 and b.z == 0.02 and b.pixel_scale == 1.0 and b.gal_ebv == 0.03
    _nan_equal(b.region, g.REGION)


def _check_binned_ours(b: BinnedCube) -> None:
    _check_binned_common(b)
    _nan_equal(b.leftover, g.LEFTOVER)
    assert b.leftover_bin == 3
    _nan_equal(b.seed, g.SEEDS)
    _nan_equal(b.pixel_chi2, g.PIXEL_CHI2)
    _nan_equal(b.calib_err, g.CALIB_ERR)
    assert set(b.params) == set(g.BIN_PARAMS)
    for key, value in g.BIN_PARAMS.items():
        _nan_equal(b.params[key], value)
    assert b.sys_err_factor == 0.02
    np.testing.assert_allclose(b.wcs.wcs.crval, [150.1, 2.2], rtol=0, atol=1e-12)
    for key, value in g.BINNED_EXTRA.items():
        assert b.header[key] == value


def _check_binned_header(hdr: fits.Header, specphot: int) -> None:
    assert (hdr["PFVERSN"], hdr["PFKIND"], hdr["NBINS"], hdr["NBINSPH"], hdr["SPECPHOT"]) == \
        (1, "BinnedCube", 3, 3, specphot)
    assert (hdr["REFBAND"], hdr["LEFTOVER"], hdr["BDMIN"], hdr["BCHI2LIM"], hdr["BDELR"]) == \
        (1, 3, 2.0, 4.0, 1.0)
    assert (hdr["BCONNECT"], hdr["BSHAPE1"], hdr["BABSORB"], hdr["BNOISEC"]) == \
        (True, False, False, False)
    assert (hdr["BSYSERR"], hdr["BMAXRAD"]) == (0.02, 10.0)
    assert [hdr[f"BSNR{i}"] for i in range(3)] == [5.0, 5.0, 3.0]
    assert [hdr[f"CALERR{i}"] for i in range(3)] == [0.02, 0.03, 0.05]


def _assert_same_binned(a: BinnedCube, b: BinnedCube) -> None:
    for name in ("bin_map", "bin_flux", "bin_flux_err", "region", "leftover", "seed",
                 "pixel_chi2", "calib_err", "bin_has_spec", "wave", "bin_spec_flux",
                 "bin_spec_err", "spec_region"):
        va, vb = getattr(a, name), getattr(b, name)
        assert (va is None) == (vb is None), name
        if va is not None:
            _nan_equal(va, vb)
    assert (a.filters, a.unit, a.z, a.pixel_scale, a.gal_ebv) == \
        (b.filters, b.unit, b.z, b.pixel_scale, b.gal_ebv)
    assert set(a.params) == set(b.params)
    for key in a.params:
        _nan_equal(a.params[key], b.params[key])


def test_binned_phot_v1(golden, tmp_path):
    path = golden("binned_phot_v1.fits.gz")
    b = BinnedCube.read(path)
    _check_binned_ours(b)
    assert not b.specphot and b.wave is None
    assert _layout(path) == ["PRIMARY", "FLUX", "FLUX_ERR", "GALAXY_REGION", "PHOTO_BIN_MAP",
                             "BIN_TABLE", "PIXEL_CHI2", "STAMP_IMAGE"]
    with fits.open(path) as hdul:
        _check_binned_header(hdul[0].header, 0)
        _nan_equal(hdul["FLUX"].data, g.paint(g.BIN_FLUX))  # each bin's SED on its pixels
        _nan_equal(hdul["PHOTO_BIN_MAP"].data, g.BIN_MAP)
        table = hdul["BIN_TABLE"].data
        _nan_equal(table["bin_id"], [1, 2, 3])
        _nan_equal(table["npix"], g.BIN_NPIX)
        _nan_equal(table["leftover"], g.LEFTOVER)
        _nan_equal(table["flux"], g.BIN_FLUX)
    b.write(tmp_path / "again.fits")
    _assert_same_binned(BinnedCube.read(tmp_path / "again.fits"), b)
    with fits.open(tmp_path / "again.fits") as hdul:  # the same cards as the golden file
        _check_binned_header(hdul[0].header, 0)


def test_binned_v1_parameters_read_with_pep8_keys(golden):
    """The golden binned cubes, written before the binning parameters had PEP 8 names,
    give them under the new names (the header cards did not change)."""
    for name in ("binned_phot_v1.fits.gz", "binned_specphot_v1.fits.gz"):
        params = BinnedCube.read(golden(name)).params
        assert params["min_bin_diameter"] == 2.0 and params["max_reduced_chi2"] == 4.0
        _nan_equal(params["snr_target"], [5.0, 5.0, 3.0])
        assert not {"Dmin_bin", "SNR", "redc_chi2_limit"} & set(params)


def test_binned_specphot_v1(golden, tmp_path):
    path = golden("binned_specphot_v1.fits.gz")
    b = BinnedCube.read(path)
    _check_binned_ours(b)
    assert b.specphot
    _nan_equal(b.wave, g.WAVE)
    _nan_equal(b.bin_has_spec, g.BIN_HAS_SPEC)
    _nan_equal(b.spec_region, g.SPEC_REGION)
    _nan_equal(b.bin_spec_flux, g.BIN_SPEC_OURS)
    _nan_equal(b.bin_spec_err, g.BIN_SPEC_ERR_OURS)
    assert np.isnan(b.bin_spec_flux[0, 5]) and np.all(np.isnan(b.bin_spec_flux[2]))
    assert _layout(path) == ["PRIMARY", "PHOTO_FLUX", "PHOTO_FLUXERR", "SPEC_WAVE",
                             "SPEC_FLUX", "SPEC_FLUXERR", "SPEC_REGION", "PHOTO_REGION",
                             "PHOTO_BIN_MAP", "SPEC_BIN_MAP", "BIN_TABLE", "PIXEL_CHI2",
                             "STAMP_IMAGE"]
    with fits.open(path) as hdul:
        _check_binned_header(hdul[0].header, 1)
        assert hdul[0].header["NBINSSP"] == 2
        _nan_equal(hdul["SPEC_BIN_MAP"].data, np.where(g.BIN_MAP == 3, 0, g.BIN_MAP))
    b.write(tmp_path / "again.fits")
    _assert_same_binned(BinnedCube.read(tmp_path / "again.fits"), b)


# =========================================================================== ours: noise
def test_noise_correlation_v1(golden):
    path = golden("fluxmap_noise_v1.fits.gz")
    noise = read_noise_correlation(path)
    assert list(noise) == ["sdss_g", "sdss_r"]
    for f, rho in g.NOISE_RHO.items():
        _nan_equal(noise[f].rho, rho)
        assert noise[f].pixel_factor == g.NOISE_FACTOR[f]
    assert noise["sdss_r"].rho[1, 0] == 0.375 and noise["sdss_r"].rho[0, 1] == 0.0
    assert _layout(path) == ["PRIMARY", "RHO", "RHO"]
    # the binning reads it too: ρ(Δy, Δx) indexed [Δy + 1, Δx + 1] (rows are y)
    from pixedfit.binning import bin_with_map

    cube = FluxCube(g.inside(g.PIX_FLUX, g.REGION), g.inside(g.PIX_ERR, g.REGION), g.FILTERS,
                    region=g.REGION)
    binned = bin_with_map(cube, g.BIN_MAP, noise_correlation=path)
    for b, f in enumerate(g.FILTERS):
        rho = g.NOISE_RHO.get(f, np.pad([[1.0]], 1))  # sdss_i: uncorrelated
        for k in range(3):
            ys, xs = np.nonzero(g.BIN_MAP == k + 1)
            s = g.PIX_ERR[b, ys, xs]
            var = 0.0
            for i in range(ys.size):
                for j in range(ys.size):
                    dy, dx = ys[j] - ys[i], xs[j] - xs[i]
                    if abs(dy) <= 1 and abs(dx) <= 1:
                        var += rho[dy + 1, dx + 1] * s[i] * s[j]
            assert binned.bin_flux_err[k, b] == pytest.approx(math.sqrt(var), rel=1e-12)


def test_spectral_noise_v1(golden, tmp_path):
    path = golden("specnoise_v1.fits.gz")
    noise = SpectralNoise.read(path)
    _nan_equal(noise.group, g.SPECNOISE_GROUP)
    _nan_equal(noise.rho, g.SPECNOISE_RHO)
    assert noise.group.dtype == np.int64 and noise.rho.shape == (3, 3, 3)
    assert _layout(path) == ["PRIMARY", "GROUP", "RHO"]
    noise.write(tmp_path / "again.fits")
    again = SpectralNoise.read(tmp_path / "again.fits")
    _nan_equal(again.group, noise.group)
    _nan_equal(again.rho, noise.rho)


# =========================================================================== ours: library
def _check_library(lib: ModelLibrary, spectra: bool) -> None:
    assert lib.nmodels == 20
    assert list(lib.params) == [*g.LIB_FREE, "log_mass"]
    assert list(lib.derived) == list(g.LIB_DERIVED)
    for name, values in {**g.LIB_PARAMS, **g.LIB_DERIVED}.items():
        _nan_equal({**lib.params, **lib.derived}[name], values)
    assert lib.params["log_age"][10] == 0.0 and lib.derived["log_sfr"][4] == -9.875
    assert lib.config == g.LIB_CONFIG
    assert lib.ranges == g.LIB_RANGES and lib.seed == 7
    if spectra:
        _nan_equal(lib.wave, g.LIB_WAVE)
        assert lib.spectra.dtype == np.float32
        _nan_equal(lib.spectra, g.LIB_SPECTRA.astype(np.float32))
    else:
        assert lib.wave is None and lib.spectra is None


def _assert_same_library(a: ModelLibrary, b: ModelLibrary) -> None:
    assert list(a.params) == list(b.params) and list(a.derived) == list(b.derived)
    for name in a.names:
        _nan_equal({**a.params, **a.derived}[name], {**b.params, **b.derived}[name])
    assert (a.config, a.ranges, a.seed) == (b.config, b.ranges, b.seed)
    for name in ("wave", "spectra"):
        va, vb = getattr(a, name), getattr(b, name)
        assert (va is None) == (vb is None)
        if va is not None:
            _nan_equal(va, vb)


@pytest.mark.parametrize("name, spectra", [("library_v1.h5.gz", True),
                                           ("library_nospec_v1.h5.gz", False)])
def test_library_v1(golden, tmp_path, name, spectra):
    path = golden(name)
    lib = read_library(path)
    _check_library(lib, spectra)
    _check_library(ModelLibrary.read(path, spectra=False), False)
    with h5py.File(path, "r") as f:
        assert (f.attrs["schema_version"], f.attrs["kind"], f.attrs["nmodels"]) == \
            (1, "pixedfit-model-library", 20)
        assert f.attrs["funit"] == "L_sun/A"
        assert sorted(f["params"]) == sorted([*g.LIB_FREE, "log_mass"])
        assert ("spectra" in f) is spectra
        if spectra:
            assert f["spectra/flux"].dtype == np.float32
            assert f["spectra/flux"].shape == (20, 12)
    lib.write(tmp_path / "again.h5")
    _assert_same_library(read_library(tmp_path / "again.h5"), lib)


#: library_digest of the golden libraries, as computed before SEDModel's dust-emission
#: switch was renamed: the record in the files and the digest (which result stores check)
#: must not change.
LIBRARY_DIGESTS = {
    "library_v1.h5.gz": "34e4dc45648dcda23775d718c0cd7c19569e031b0a76c4b10eb5e1ab5b27b167",
    "library_nospec_v1.h5.gz":
        "a6b208023d7f38e56bacc53fd97416b28d8457a9b1a81e90a0c2e541e15dda39",
}


@pytest.mark.parametrize("name", sorted(LIBRARY_DIGESTS))
def test_library_v1_model_config_record(golden, tmp_path, name):
    """The golden library's configuration record (key ``duste_switch``) rebuilds an SEDModel
    with ``dust_emission``; the record and the library digest are those of earlier
    versions, and a library written now records the same key."""
    from pixedfit.fitting.results import library_digest
    from pixedfit.library import model_config
    from pixedfit.sps.grids import grid_digest

    lib = read_library(golden(name))
    assert library_digest(lib) == LIBRARY_DIGESTS[name]
    model = lib.model()
    assert model.dust_emission is False and model.sfh_form == 1 and model.igm_type == 1
    record = model_config(model)
    made_with = record.pop("ssp_grid")  # a record made now also names its SSP grid
    assert record == g.LIB_CONFIG
    assert made_with == {"source": model.grid.source, "digest": grid_digest(model.grid)}
    lib.config["duste_switch"] = True
    assert lib.model().dust_emission is True
    assert lib.model(dust_emission=False).dust_emission is False
    lib.write(tmp_path / "again.h5")
    with h5py.File(tmp_path / "again.h5", "r") as f:
        assert json.loads(f.attrs["config"])["duste_switch"] is True


# =========================================================================== ours: fits
def _expected_rdsps() -> dict:
    return dict(method="rdsps", names=g.FIT_NAMES, mean=g.FIT_MEAN, std=g.FIT_STD,
                p16=g.FIT_P16, p50=g.FIT_P50, p84=g.FIT_P84, best=g.FIT_BEST,
                filters=g.FILTERS, obs_flux=g.OBS_FLUX, obs_flux_err=g.OBS_FLUX_ERR,
                bfit_photo=g.BFIT_PHOTO, z=0.02, chi2_min=2.5, ln_evidence=-12.25,
                n_used=20, n_bands_used=3, config=g.FIT_CONFIG_RDSPS, bfit_wave=g.BFIT_WAVE,
                bfit_spec=g.BFIT_SPEC, z_grid=None, z_posterior=None, samples=None,
                photo_pct=None, sed_wave=None, sed_pct=None, spectrum=None,
                diagnostics=g.FIT_DIAG_RDSPS, ess=12.5, n_model_evaluations=1000, rounds=3,
                converged=True)


def _expected_mcmc() -> dict:
    return dict(method="mcmc", names=g.MC_NAMES, mean=g.MC_MEAN, std=g.MC_STD, p16=g.MC_P16,
                p50=g.MC_P50, p84=g.MC_P84, best=g.MC_BEST, filters=g.FILTERS,
                obs_flux=g.OBS_FLUX, obs_flux_err=g.OBS_FLUX_ERR, bfit_photo=g.BFIT_PHOTO,
                z=None, chi2_min=3.75, ln_evidence=math.nan, n_used=12, n_bands_used=3,
                config=g.FIT_CONFIG_MCMC, bfit_wave=g.BFIT_WAVE, bfit_spec=g.BFIT_SPEC,
                z_grid=g.MC_ZGRID, z_posterior=g.MC_ZPOST, samples=g.MC_SAMPLES,
                photo_pct=g.MC_PHOTO_PCT, sed_wave=g.MC_SED_WAVE, sed_pct=g.MC_SED_PCT,
                spectrum=g.MC_SPECTRUM, diagnostics=g.FIT_DIAG_MCMC, ess=48.0,
                n_model_evaluations=4800, rounds=2, converged=False)


def _same_value(got, want, what: str) -> None:
    if want is None:
        assert got is None, what
    elif isinstance(want, dict) and want and isinstance(next(iter(want.values())),
                                                        np.ndarray):
        # (HDF5 groups list their members alphabetically: the order is not kept)
        assert got is not None and sorted(got) == sorted(want), what
        for key in want:
            _nan_equal(got[key], want[key])
            assert np.asarray(got[key]).dtype == np.asarray(want[key]).dtype, (what, key)
    elif isinstance(want, np.ndarray):
        _nan_equal(got, want)
    elif isinstance(want, float) and math.isnan(want):
        assert math.isnan(got), what
    elif isinstance(want, tuple):
        assert tuple(got) == want, what
    else:
        assert got == want, what


def _check_fit(res: FitResult, expected: dict) -> None:
    assert {f.name for f in dataclasses.fields(FitResult)} == set(expected)
    for key, want in expected.items():
        _same_value(getattr(res, key), want, key)


@pytest.mark.parametrize("name, expected", [("fitresult_rdsps_v1.h5.gz", _expected_rdsps),
                                            ("fitresult_mcmc_v1.h5.gz", _expected_mcmc)])
def test_fit_result_v1(golden, tmp_path, name, expected):
    path = golden(name)
    res = FitResult.read(path)
    _check_fit(res, expected())
    _check_fit(FitResult.read_any(path), expected())
    with h5py.File(path, "r") as f:
        assert (f.attrs["schema_version"], f.attrs["kind"]) == (1, "pixedfit-fit-result")
        assert f["stats"].shape == (5, len(res.names))
        assert f["obs"].shape == (2, 3)
    stat = "p50" if res.method == "mcmc" else "mean"
    assert get_bestfit_params(path) == dict(zip(res.names, getattr(res, stat).tolist(),
                                                strict=True))
    res.write(tmp_path / "again.h5")
    _check_fit(FitResult.read(tmp_path / "again.h5"), expected())


def test_result_store_v1(golden, tmp_path):
    golden("resultstore_v1/bin1.h5.gz")
    folder = golden("resultstore_v1/store.json").parent
    store = ResultStore(folder)
    assert store.keys() == ["bin1"] and store.has("bin1")
    assert store.files() == ["bin1.h5", "store.json"]
    _check_fit(store.load("bin1"), _expected_rdsps())
    table = store.summary_table()
    assert list(table["id"]) == ["bin1"] and table["dust2_mean"][0] == 0.375
    inputs = {"bin1": input_digest(g.OBS_FLUX, g.OBS_FLUX_ERR)}
    with store.session(g.STORE_RUN, inputs):  # the record matches: the result is kept
        assert store.has("bin1")
    _check_fit(store.load("bin1"), _expected_rdsps())
    other = {**g.STORE_RUN, "library": "another-library"}
    with pytest.raises(StaleStoreError, match="library"), store.session(other, inputs):
        pass


def test_pipeline_record_v1(golden, tmp_path):
    from pixedfit.pipeline import Pipeline, StageRecord

    out = tmp_path / "run"
    (out / ".pixedfit").mkdir(parents=True)
    (out / "images").mkdir()
    shutil.copyfile(golden("pipeline_record_v1.json"), out / ".pixedfit" / "images.json")
    fluxmap = golden("fluxmap_v1.fits.gz")
    shutil.copyfile(fluxmap, out / "images" / "fluxmap.fits")
    pipe = Pipeline(config={"run": {"output_dir": str(out)},
                            "images": {"fluxmap": str(fluxmap)}})
    rec = pipe._read_record("images")  # no public reader: the pipeline's own
    assert isinstance(rec, StageRecord)
    want = dict(g.RECORD)
    for key, value in want.items():
        assert getattr(rec, key) == value, key
    assert list(rec.digests) == ["images/fluxmap.fits"]
    assert pipe._intact(rec)  # the digest is that of the golden flux map's bytes
    pipe._write_record(rec)
    assert pipe._read_record("images") == rec


# =========================================================================== ours: maps
def test_property_maps_v1(golden, tmp_path):
    path = golden("propmaps_v1.fits.gz")
    pm = PropertyMaps.read(path)
    expected = g.maps_expected()
    assert list(pm.maps) == list(expected)
    for name, arr in expected.items():
        _nan_equal(pm.maps[name], arr)
    assert pm.get("log_mass", "p50")[1, 1] == 9.5
    _nan_equal(pm.region, g.REGION)
    _nan_equal(pm.bin_map, g.BIN_MAP)
    _nan_equal(pm.flags, g.MAPS_FLAGS)
    _nan_equal(pm.bin_flags(), [0, 2, 9])
    assert pm.flag_summary() == {1: (1, 7), 2: (1, 5), 8: (1, 7)}
    assert (pm.z, pm.method, pm.kpc_per_pixel, pm.pixel_scale) == (0.02, "mcmc", 0.4125, 1.0)
    assert pm.filters == list(g.FILTERS) and pm.refbands == g.MAPS_REFBANDS
    names = ["GALAXY_REGION", *[n.upper() for n in expected], "BIN_MAP", "BIN_FLAG",
             "BIN_TABLE"]
    assert _layout(path) == ["PRIMARY", *names]
    with fits.open(path) as hdul:
        hdr = hdul[0].header
        assert (hdr["PFVERSN"], hdr["PFKIND"], hdr["GAL_Z"], hdr["NBINS"], hdr["FITMETH"]) == \
            (1, "PropertyMaps", 0.02, 3, "mcmc")
        assert (hdr["KPCPIX"], hdr["PIXSIZE"], hdr["REFBANDS"]) == \
            (0.4125, 1.0, "log_mass:sdss_i,log_sfr:sdss_g")
        assert hdr["NHDU"] == len(names)
        assert [hdr[f"HDU{i}"] for i in range(1, len(names) + 1)] == \
            ["GALAXY_REGION", *expected, "BIN_MAP", "BIN_FLAG", "BIN_TABLE"]
        for name, unit in g.MAPS_BUNIT.items():
            assert hdul[name].header["BUNIT"] == unit, name
        assert hdul["BIN_FLAG"].header["FLAGB8"] == "bin not fitted: NaN in every map"
        table = hdul["BIN_TABLE"].data
        _nan_equal(table["flag"], [0, 2, 9])
        _nan_equal(table["log_mass-p50"], [9.5, 9.25, np.nan])
    pm.write(tmp_path / "again.fits")
    again = PropertyMaps.read(tmp_path / "again.fits")
    assert list(again.maps) == list(pm.maps)
    for name in pm.maps:
        _nan_equal(again.maps[name], pm.maps[name])
    for name in ("region", "bin_map", "flags"):
        _nan_equal(getattr(again, name), getattr(pm, name))
    assert (again.z, again.method, again.kpc_per_pixel, again.pixel_scale, again.filters,
            again.refbands) == (pm.z, pm.method, pm.kpc_per_pixel, pm.pixel_scale,
                                pm.filters, pm.refbands)


# =========================================================================== ours: other
def test_ssp_grid_v1(golden, tmp_path):
    path = golden("sspgrid_v1.h5.gz")
    grid = read_grid(path)
    for name, want in (("wave", g.SSP_WAVE), ("age", g.SSP_AGE), ("zmet", g.SSP_ZMET),
                       ("mass_living", g.SSP_MASS_LIVING),
                       ("mass_remnant", g.SSP_MASS_REMNANT)):
        _nan_equal(getattr(grid, name), want)
    assert grid.ssp.dtype == np.float32
    _nan_equal(grid.ssp, g.SSP_SPEC.astype(np.float32))
    assert (grid.zsun, grid.imf, grid.source) == (0.02, "kroupa01", g.SSP_SOURCE)
    assert {k: str(v) for k, v in grid.extra_attrs.items()} == g.SSP_EXTRA_ATTRS
    np.testing.assert_allclose(grid.logzsol, [math.log10(0.2), 0.0])
    n = grid.nebular
    for name, want in (("logu", g.NEB_LOGU), ("age_edges", g.NEB_AGE_EDGES),
                       ("line_wave", g.NEB_LINE_WAVE), ("line_lum", g.NEB_LINE_LUM)):
        _nan_equal(getattr(n, name), want)
    _nan_equal(n.cont, g.NEB_CONT.astype(np.float32))
    assert n.line_name == g.NEB_LINE_NAME and n.source == "golden nebular"
    d = grid.dust_emission
    for name, want in (("qpah", g.DUST_QPAH), ("umin", g.DUST_UMIN), ("wave", g.DUST_WAVE),
                       ("delta", g.DUST_DELTA), ("powerlaw", g.DUST_POWERLAW),
                       ("dust_to_h", g.DUST_TO_H)):
        _nan_equal(getattr(d, name), want)
    assert d.source == "golden DL07"
    _nan_equal(grid.agn.tau, g.AGN_TAU)
    _nan_equal(grid.agn.wave, g.AGN_WAVE)
    _nan_equal(grid.agn.fnu, g.AGN_FNU)
    assert grid.agn.source == "golden torus"
    with h5py.File(path, "r") as f:
        assert (f.attrs["format"], f.attrs["schema_version"]) == ("pixedfit-ssp-grid", 1)
        assert f.attrs["spectra_unit"] == "Lsun/Angstrom per Msun formed"
    write_grid(grid, tmp_path / "again.h5")
    _assert_same_dataclass(read_grid(tmp_path / "again.h5"), grid)


def _assert_same_dataclass(a, b) -> None:
    assert type(a) is type(b)
    for f in dataclasses.fields(a):
        va, vb = getattr(a, f.name), getattr(b, f.name)
        if dataclasses.is_dataclass(va):
            _assert_same_dataclass(va, vb)
        elif isinstance(va, np.ndarray):
            _nan_equal(va, vb)
            assert va.dtype == vb.dtype, f.name
        else:
            assert va == vb, f.name


class _NeverCalled:
    """A log posterior that must not be evaluated (the chain is resumed, not extended)."""

    ndim = g.CHAIN_NDIM

    def __call__(self, x):
        raise AssertionError("the stored chain should have been resumed, not sampled")


def test_mcmc_chain_v1(golden):
    from pixedfit.fitting.mcmc import McmcSettings, run_mcmc

    path = golden("chain_v1.h5.gz")
    with h5py.File(path, "r") as f:
        assert list(f) == ["mcmc"]
        assert (f["mcmc"].attrs["nwalkers"], f["mcmc"].attrs["ndim"],
                f["mcmc"].attrs["iteration"]) == (4, 2, 6)
    settings = McmcSettings(nwalkers=4, nsteps=6, nsteps_cut=2, backend=path)
    for _ in range(2):  # the second resumes the chain file run_mcmc rewrote (compacted)
        run = run_mcmc(_NeverCalled(), None, settings)
        assert run["resumed_at"] == 6 and run["nsteps"] == 6 and run["burn"] == 2
        _nan_equal(run["chain"], g.CHAIN)
        _nan_equal(run["lnprob"], g.CHAIN_LNPROB)
        _nan_equal(run["samples"], g.CHAIN[2:].reshape(-1, 2))
        np.testing.assert_allclose(run["acceptance"], g.CHAIN_ACCEPTED / 6)


def test_filter_registry_v1(golden, tmp_path):
    data = tmp_path / "userdata"
    data.mkdir()
    shutil.copyfile(golden("filters_registry_v1.json"), data / "filters.json")
    name, wave, trans = g.USER_BOX
    w, t = get_filter_curve(name, data_dir=data)
    _nan_equal(w, wave)
    _nan_equal(t, trans)
    tri = g.USER_TRI
    _nan_equal(get_filter_curve(tri[0], data_dir=data)[0], tri[1])
    assert cwave_filters(tri[0], data_dir=data) == 7555.0
    grid = np.linspace(5000.0, 6000.0, 2_000_001)  # pivot of the box, independently
    tg = np.interp(grid, wave, trans)
    def integral(y):
        return float(np.sum((y[1:] + y[:-1]) * np.diff(grid)) / 2)

    pivot = math.sqrt(integral(tg * grid) / integral(tg / grid))
    assert cwave_filters(name, data_dir=data) == pytest.approx(pivot, rel=1e-9)
    empty = tmp_path / "empty"
    renamed, w_z = get_filter_curve("golden_z", data_dir=data), get_filter_curve(
        "sdss_z", data_dir=empty)
    _nan_equal(renamed[0], w_z[0])
    _nan_equal(renamed[1], w_z[1])
    for hidden in ("sdss_z", "sdss_u"):
        with pytest.raises(UnknownFilterError):
            get_filter_curve(hidden, data_dir=data)
    names = list_filters(data_dir=data)
    assert {"golden_box", "golden_tri", "golden_z"} <= set(names)
    assert "sdss_u" not in names and "sdss_z" not in names
    before = json.loads((data / "filters.json").read_text())
    add_filter("golden_extra", [1000.0, 2000.0], [1.0, 1.0], data_dir=data)  # rewrites it
    after = json.loads((data / "filters.json").read_text())
    del after["filters"]["golden_extra"]
    assert after == before
    _nan_equal(get_filter_curve(name, data_dir=data)[1], trans)


# =========================================================================== the original's
@pytest.mark.parametrize("name", ["orig_fluxmap.fits.gz", "orig_fluxmap_fluxprimary.fits.gz"])
def test_original_flux_map(golden, name):
    """Spec §5.1: −9.9e18 outside the region becomes NaN; the WCS and stamp come from
    STAMP_IMAGE; the primary header's keys are kept."""
    path = golden(name)
    cube = FluxCube.read(path)
    _check_photometry(cube, {"RA": 150.1, "DEC": 2.2, "FSAMP": "sdss_r",
                             "FPSFMTCH": "sdss_g", "PSFFWHM": 1.4})
    assert type(read_cube(path)) is FluxCube


def test_original_specphot_cube(golden):
    """Spec §6.1: PHOTO_FLUX is the primary HDU (data and header)."""
    path = golden("orig_specphot.fits.gz")
    with fits.open(path) as hdul:  # the golden file really has the original's odd layout
        assert hdul[0].name == "PHOTO_FLUX" and hdul[0].data.shape == (3, 4, 5)
    sp = read_cube(path)
    _check_specphot(sp, g.inside(g.PIX_SPEC, g.SPEC_REGION),
                    g.inside(g.PIX_SPEC_ERR, g.SPEC_REGION),
                    {"RA": 150.1, "DEC": 2.2, "FSAMP": "sdss_r", "PSFFWHM": 1.4})
    assert sp.photometry.header["FPSFMTCH"] == "sdss_g"


def _check_original_binned(b: BinnedCube) -> None:
    _check_binned_common(b)
    assert b.params == {"ref_band": 1}
    _nan_equal(b.leftover, [False, False, False])  # the original does not record it
    _nan_equal(b.seed, np.full((3, 2), -1))
    assert b.calib_err is None


def test_original_binned_photometric(golden):
    """Spec §1.4: FLUX/FLUX_ERR with each bin's sums (0 outside), float PHOTO_BIN_MAP."""
    b = BinnedCube.read(golden("orig_binned_phot.fits.gz"))
    _check_original_binned(b)
    assert not b.specphot and b.wcs is None
    assert b.header["FSAMP"] == "sdss_r"


def test_original_binned_old_layout(golden):
    """Spec §1.4/§1.6: the older BIN_MAP, BIN_FLUX, BIN_FLUXERR names."""
    b = BinnedCube.read(golden("orig_binned_oldlayout.fits.gz"))
    assert b.nbins == 3 and b.filters == list(g.FILTERS) and b.params == {"ref_band": 1}
    _nan_equal(b.bin_map, g.BIN_MAP)
    _nan_equal(b.bin_flux, g.BIN_FLUX)
    np.testing.assert_allclose(b.bin_flux_err, g.BIN_FLUX_ERR, rtol=1e-15)
    _nan_equal(b.region, g.REGION)
    assert b.unit == 1e-17 and b.z == 0.02


def test_original_binned_spectrophotometric(golden, tmp_path):
    """Spec §1.4: WAVE (not SPEC_WAVE), float PHOTO_BIN_MAP and SPEC_BIN_MAP; only the IFS
    footprint is binned (§1.1) while PHOTO_REGION is the whole galaxy region."""
    path = golden("orig_binned_specphot.fits.gz")
    b = BinnedCube.read(path)
    bmap = g.ORIG_SP_BIN_MAP
    assert b.nbins == 3 and b.filters == list(g.FILTERS) and b.specphot
    _nan_equal(b.bin_map, bmap)
    _nan_equal(b.bin_npix, g.ORIG_SP_BIN_NPIX)
    np.testing.assert_allclose(b.bin_flux, g.bin_sum(g.PIX_FLUX, bin_map=bmap), rtol=1e-15)
    np.testing.assert_allclose(b.bin_flux_err, g.bin_sum(g.PIX_ERR, True, bmap), rtol=1e-15)
    assert b.bin_flux[2, 0] == 2.0 * 3 + 0.5 * 3 + 0.25 * 9  # bin 3: (0,3), (1,3), (2,3)
    _nan_equal(b.region, g.REGION)
    assert b.params == {"ref_band": 1} and b.unit == 1e-17 and b.z == 0.02
    _nan_equal(b.wave, g.WAVE)
    _nan_equal(b.bin_has_spec, [True, True, True])
    _nan_equal(b.spec_region, g.SPEC_REGION)
    np.testing.assert_allclose(b.bin_spec_flux, g.bin_sum(g.PIX_SPEC, bin_map=bmap),
                               rtol=1e-15)
    np.testing.assert_allclose(b.bin_spec_err, g.bin_sum(g.PIX_SPEC_ERR, True, bmap),
                               rtol=1e-15)
    # with astropy 8 the original drops PHOTO_FLUX (spec §1.4): no photometry to read
    broken = tmp_path / "no_photo_flux.fits"
    with fits.open(path) as hdul:
        del hdul["PHOTO_FLUX"]
        hdul.writeto(broken)
    with pytest.raises(ValueError, match="PHOTO_FLUX"):
        BinnedCube.read(broken)


def test_original_library(golden):
    """Spec §3.5: /mod attributes, /mod/par/<name>, one dataset per spectrum."""
    path = golden("orig_library.h5.gz")
    lib = read_library(path)
    assert lib.nmodels == 20
    assert list(lib.params) == [*g.LIB_FREE, "log_mass"]
    assert list(lib.derived) == ["log_sfr", "log_mw_age"]
    for name in (*g.LIB_FREE, "log_mass"):
        _nan_equal(lib.params[name], g.LIB_PARAMS[name])
    for name in ("log_sfr", "log_mw_age"):
        _nan_equal(lib.derived[name], g.LIB_DERIVED[name])
    assert lib.ranges == g.LIB_RANGES and lib.seed is None
    _nan_equal(lib.wave, g.LIB_WAVE)
    _nan_equal(lib.spectra, g.LIB_SPECTRA.astype(np.float32))
    assert (lib.config["dust_law"], lib.config["duste_switch"], lib.config["add_neb_emission"],
            lib.config["add_agn"]) == (1, 0, 0, 0)
    with pytest.raises(ValueError, match="original piXedfit layout"):
        ModelLibrary.read(path)


def _h5_structure(path: Path) -> tuple[dict, dict]:
    attrs, datasets = {}, {}
    with h5py.File(path, "r") as f:
        attrs = {k: (v.decode() if isinstance(v, bytes) else v)
                 for k, v in f["mod"].attrs.items()}

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                datasets[name] = (obj.dtype, obj.shape)

        f.visititems(visit)
    return attrs, datasets


def test_our_original_layout_library_writer_matches_the_spec_file(golden, tmp_path):
    """write_pixedfit of the library read from the spec-written file gives the same
    groups, datasets, dtypes and attributes (values of parameters and spectra too)."""
    path = golden("orig_library.h5.gz")
    read_library(path).write_pixedfit(tmp_path / "ours.h5")
    want_attrs, want_sets = _h5_structure(path)
    got_attrs, got_sets = _h5_structure(tmp_path / "ours.h5")
    assert set(got_attrs) == set(want_attrs)
    assert got_sets == want_sets
    for key in want_attrs:
        _nan_equal(got_attrs[key], want_attrs[key])
    with h5py.File(path, "r") as a, h5py.File(tmp_path / "ours.h5", "r") as b:
        for name in want_sets:
            if name.startswith("mod/par/") or name == "mod/spec/wave":
                _nan_equal(b[name][()], a[name][()])
            else:  # spectra pass through float32 in memory
                _nan_equal(b[name][()], a[name][()].astype(np.float32))


def test_original_library_round_trip_keeps_sfh_form_and_imf(golden, tmp_path):
    path = golden("orig_library.h5.gz")
    read_library(path).write_pixedfit(tmp_path / "ours.h5")
    with h5py.File(tmp_path / "ours.h5", "r") as f:
        assert (int(f["mod"].attrs["sfh_form"]), int(f["mod"].attrs["imf_type"])) == (1, 1)


def test_original_library_keeps_its_attributes_apart_from_the_model_configuration(
        golden, tmp_path):
    """The original's SFH form and IMF are kept outside ``config`` (whose ``sfh_form`` None
    makes fits use the stored spectra: the original's FSPS model cannot be rebuilt), and
    survive a trip through our layout."""
    lib = read_library(golden("orig_library.h5.gz"))
    assert lib.config["sfh_form"] is None
    assert lib.original_attrs == {"imf_type": 1, "sfh_form": 1, "free_gas_logz": 0,
                                  "smooth_velocity": 1, "sigma_smooth": 0.0, "smooth_lsf": 0}
    with pytest.raises(ValueError, match="complete SEDModel configuration"):
        lib.model()
    lib.write(tmp_path / "ours.h5")
    back = ModelLibrary.read(tmp_path / "ours.h5")
    assert back.config == lib.config and back.original_attrs == lib.original_attrs
    back.write_pixedfit(tmp_path / "orig.h5")
    with h5py.File(tmp_path / "orig.h5", "r") as f:
        assert (int(f["mod"].attrs["sfh_form"]), int(f["mod"].attrs["imf_type"])) == (1, 1)


def test_original_rdsps_result(golden):
    """Spec §2.3: FIT_PARAMS rows mean/std, MINCHI2_PARAMS, OBS_PHOTO, BFIT_PHOTO,
    BFIT_MOD_SPEC, HIERARCH cards (redcd_chi2, fitmethod, likelihood_form)."""
    path = golden("orig_rdsps.fits.gz")
    res = FitResult.read_pixedfit(path)
    nan = np.full(7, np.nan)
    expected = dict(
        method="rdsps", names=g.FIT_NAMES, mean=g.ORIG_BIN_MEAN[0], std=g.ORIG_BIN_STD[0],
        p16=nan, p50=nan, p84=nan,
        best=np.array([g.ORIG_SAMPLER[p][7] for p in g.ORIG_LIB_ALL]), filters=g.FILTERS,
        obs_flux=g.OBS_FLUX, obs_flux_err=g.OBS_FLUX_ERR, bfit_photo=g.BFIT_PHOTO, z=0.02,
        ln_evidence=math.nan, n_used=1, n_bands_used=3,
        config={"source": "piXedfit layout", "likelihood": "gauss", "perc_chi2": 90.0,
                "cosmo": 0, "H0": 70.0, "Om0": 0.3,
                "model": {"imf_type": 1, "sfh_form": 1, "dust_law": 1, "duste_switch": 0,
                          "add_neb_emission": 0, "add_agn": 0, "add_igm_absorption": 1,
                          "igm_type": 1, "smooth_velocity": 1, "sigma_smooth": 0.0,
                          "smooth_lsf": 0}},
        bfit_wave=g.BFIT_WAVE,
        bfit_spec=g.BFIT_SPEC, z_grid=None, z_posterior=None,
        samples=np.column_stack([g.ORIG_SAMPLER[p] for p in g.ORIG_LIB_ALL])[
            _original_resampled()],
        photo_pct=None, sed_wave=None, sed_pct=None, spectrum=None, diagnostics={},
        # the Kish ESS of the posterior weights of the table's models
        ess=float(1.0 / np.sum(_original_weights() ** 2)), n_model_evaluations=0, rounds=0,
        converged=None)
    for key, want in expected.items():
        _same_value(getattr(res, key), want, key)
    assert res.chi2_min == pytest.approx(2.0, rel=1e-14)  # redcd_chi2 × NFILTERS
    assert res.best[4] == 9.0 + 7 * 0.03125  # log_mass of model 7
    _check_fit(FitResult.read_any(path), {**expected, "chi2_min": res.chi2_min})
    assert get_bestfit_params(path) == dict(zip(g.FIT_NAMES, g.ORIG_BIN_MEAN[0].tolist(),
                                                strict=True))


def _original_weights() -> np.ndarray:
    """The posterior weights of the 20 models of orig_rdsps.fits.gz, computed here as spec
    §2.3 describes: chi2 at most its 90th percentile, w ∝ exp(lnprob − max)."""
    chi2, lnprob = g.ORIG_SAMPLER_CHI2, g.ORIG_SAMPLER_LNPROB
    w = np.where(chi2 <= np.percentile(chi2, 90.0), np.exp(lnprob - lnprob.max()), 0.0)
    return w / w.sum()


def _original_resampled() -> np.ndarray:
    """The rows the reader should take: model i ⌊20 w_i⌉ times (systematic resampling
    with offset 1/2), in increasing order."""
    w = _original_weights()
    edges = np.concatenate([[0.0], np.cumsum(w)])
    u = (0.5 + np.arange(20)) / 20
    return np.array([int(np.searchsorted(edges, x, side="left")) - 1 for x in u])


def test_original_rdsps_samplers_are_posterior_samples(golden):
    """The original's RDSPS SAMPLERS table lists every library model with its lnprob: read
    as posterior samples it must be weighted (it was read as equally weighted, i.e. as the
    prior). Model 7 has the largest weight, the models beyond the 90th chi2 percentile
    none."""
    w = _original_weights()
    assert w.argmax() == 7 and w[g.ORIG_SAMPLER_CHI2 > np.percentile(g.ORIG_SAMPLER_CHI2,
                                                                         90.0)].sum() == 0
    res = FitResult.read_pixedfit(golden("orig_rdsps.fits.gz"))
    rows = _original_resampled()
    _nan_equal(res.samples, np.column_stack([g.ORIG_SAMPLER[p] for p in g.ORIG_LIB_ALL])[rows])
    counts = np.bincount(rows, minlength=20)
    assert np.all((counts == np.floor(20 * w)) | (counts == np.ceil(20 * w)))
    assert counts[19] == 0 and counts[7] >= 2
    # the equal-weight samples' mean of log_mass is the weighted one to 1/(2 n)
    k = g.ORIG_LIB_ALL.index("log_mass")
    assert res.samples[:, k].mean() == pytest.approx(
        float(np.sum(w * g.ORIG_SAMPLER["log_mass"])), abs=0.03125 * 20 / 40)
    # the corner plot of the compat layer uses the weights themselves
    from pixedfit.compat import _samples

    post = _samples(golden("orig_rdsps.fits.gz"), None)
    assert "lnprob" not in post.names and "chi2" not in post.names
    keep = w > 0
    _nan_equal(post.weights, w[keep] / w[keep].sum())
    _nan_equal(post.column("log_mass"), g.ORIG_SAMPLER["log_mass"][keep])


def test_systematic_indices_counts():
    from pixedfit.fitting.results import systematic_indices

    rng = np.random.default_rng(3)
    for _ in range(50):
        w = rng.dirichlet(np.full(9, 0.3))
        n = int(rng.integers(1, 200))
        idx = systematic_indices(w, n, float(rng.random()))
        counts = np.bincount(idx, minlength=9)
        assert counts.sum() == n and np.all(np.diff(idx) >= 0)
        assert np.all(np.abs(counts - n * w) < 1.0 + 1e-9)


def test_original_mcmc_result(golden):
    """Spec §2.6: FIT_PARAMS rows p16/p50/p84 (free parameters, then log_sfr and
    log_mw_age), SAMPLERS, BFIT_PHOTO percentiles, BFIT_MOD_SPEC components."""
    path = golden("orig_mcmc.fits.gz")
    res = FitResult.read_pixedfit(path)
    assert res.method == "mcmc" and res.names == g.ORIG_MC_ALL
    for stat in ("p16", "p50", "p84"):
        _nan_equal(getattr(res, stat), g.ORIG_MC_P[stat][0])
    for stat in ("mean", "std", "best"):
        assert np.all(np.isnan(getattr(res, stat)))
    _nan_equal(res.samples, g.ORIG_MC_SAMPLES)
    _nan_equal(res.photo_pct, g.MC_PHOTO_PCT)
    _nan_equal(res.bfit_photo, g.BFIT_PHOTO)
    _nan_equal(res.sed_wave, g.MC_SED_WAVE)
    _nan_equal(res.bfit_wave, g.MC_SED_WAVE)
    _nan_equal(res.bfit_spec, g.MC_SED_PCT["total"][1])
    assert list(res.sed_pct) == ["total", "stellar", "nebular"]
    for comp in res.sed_pct:
        _nan_equal(res.sed_pct[comp], g.MC_SED_PCT[comp])
    assert res.z == 0.02 and math.isnan(res.chi2_min) and res.filters == g.FILTERS
    _nan_equal(res.obs_flux, g.OBS_FLUX)
    assert res.diagnostics == {"fixed": {"gas_logu": -2.0}}  # NFIXPAR, FPAR0, fpar0_val
    assert res.config == {
        "source": "piXedfit layout", "likelihood": None, "cosmo": "flat_LCDM", "H0": 70.0,
        "Om0": 0.3, "model": {"imf_type": 1, "sfh_form": 1, "dust_law": 1, "duste_switch": 0,
                              "add_neb_emission": 1, "add_agn": 0, "add_igm_absorption": 1,
                              "igm_type": 1, "free_gas_logz": 0, "smooth_velocity": 1,
                              "sigma_smooth": 0.0, "smooth_lsf": 0}}
    assert get_bestfit_params(path) == dict(zip(g.ORIG_MC_ALL, g.ORIG_MC_P["p50"][0].tolist(),
                                                strict=True))


def _fits_structure(path: Path) -> tuple[list[str], dict[str, list[str]], fits.Header]:
    with fits.open(path) as hdul:
        names = [h.name for h in hdul]
        cols = {h.name: list(h.columns.names) for h in hdul[1:]
                if isinstance(h, fits.BinTableHDU)}
        return names, cols, hdul[0].header.copy()


@pytest.mark.parametrize("name", ["orig_rdsps.fits.gz", "orig_mcmc.fits.gz"])
def test_our_original_layout_fit_writer_matches_the_spec_file(golden, tmp_path, name):
    """write_pixedfit of the result read from a spec-written file has the file's
    extensions in its order (pixedfit may add extensions and cards), the same table
    columns (MCMC: plus BFIT_PHOTO's flux), the same FIT_PARAMS rows, and every primary
    card of the file (values: see the test below; RDSPS SAMPLERS: without chi2, lnprob)."""
    path = golden(name)
    FitResult.read_pixedfit(path).write_pixedfit(tmp_path / "ours.fits")
    want_names, want_cols, want_hdr = _fits_structure(path)
    got_names, got_cols, got_hdr = _fits_structure(tmp_path / "ours.fits")
    if name == "orig_rdsps.fits.gz":  # FitResult.samples: the parameter columns only
        want_cols["SAMPLERS"] = [c for c in want_cols["SAMPLERS"] if c not in ("chi2", "lnprob")]
    assert [n for n in got_names if n in want_names] == want_names
    for ext in want_names[1:]:
        extra = {"flux"} if (ext == "BFIT_PHOTO" and "p50" in want_cols[ext]) else set()
        if ext == "BFIT_MOD_SPEC":  # pixedfit keeps no nebular-continuum percentiles
            want_cols[ext] = [c for c in want_cols[ext] if not c.startswith("nebe_cont")]
        assert set(got_cols[ext]) == set(want_cols[ext]) | extra, ext
    missing = [k for k in want_hdr if k not in got_hdr]
    assert missing == [], missing
    with fits.open(path) as a, fits.open(tmp_path / "ours.fits") as b:
        assert list(b["FIT_PARAMS"].data["rows"]) == list(a["FIT_PARAMS"].data["rows"])
        for col in want_cols["FIT_PARAMS"][1:]:
            _nan_equal(b["FIT_PARAMS"].data[col], a["FIT_PARAMS"].data[col])
        for key in ("NFILTERS", "FIL0", "FIL2", "GAL_Z", "FREE_Z", "PARAM0", "fitmethod"):
            assert b[0].header[key] == a[0].header[key], key


def test_original_rdsps_round_trip_keeps_samplers(golden, tmp_path):
    FitResult.read_pixedfit(golden("orig_rdsps.fits.gz")).write_pixedfit(tmp_path / "o.fits")
    assert FitResult.read_pixedfit(tmp_path / "o.fits").samples is not None
    # spec §2.3: SAMPLERS right after PRIMARY (the original's plot_corner reads HDU 1)
    assert _layout(tmp_path / "o.fits")[1] == "SAMPLERS"
    with fits.open(tmp_path / "o.fits") as hdul:
        assert hdul[0].header["storesamp"] == 1
        table = hdul["SAMPLERS"].data
        _nan_equal(table["id"], np.arange(1, 21))
        for name in g.ORIG_LIB_ALL:  # the posterior's equal-weight samples
            _nan_equal(table[name], g.ORIG_SAMPLER[name][_original_resampled()])
    # and they read back as they are (no lnprob column: equal weights)
    _nan_equal(FitResult.read_pixedfit(tmp_path / "o.fits").samples,
               FitResult.read_pixedfit(golden("orig_rdsps.fits.gz")).samples)


#: Primary cards of the original's fit files that describe the model and the fit.
MODEL_CARDS = ("IMF", "SFH_FORM", "DUST_LAW", "duste_stat", "add_neb_emission", "ADD_AGN",
               "add_igm_absorption", "IGM_TYPE", "COSMO")
#: ... and the other settings they record.
SETTING_CARDS = ("H0", "OM0", "perc_chi2", "free_gas_logz", "smooth_velocity", "sigma_smooth",
                 "smooth_lsf")


@pytest.mark.parametrize("name", ["orig_rdsps.fits.gz", "orig_mcmc.fits.gz"])
def test_original_fit_round_trip_keeps_model_cards(golden, tmp_path, name):
    path = golden(name)
    FitResult.read_pixedfit(path).write_pixedfit(tmp_path / "o.fits")
    with fits.open(path) as a, fits.open(tmp_path / "o.fits") as b:
        want, got = a[0].header, b[0].header
        keys = [k for k in (*MODEL_CARDS, *SETTING_CARDS, "NFIXPAR", "FPAR0", "fpar0_val")
                if k in want]
        assert {k: got.get(k) for k in keys} == {k: want[k] for k in keys}
        assert type(got["COSMO"]) is type(want["COSMO"])  # RDSPS: a code, MCMC: a name


def test_original_fit_cosmo_none_of_earlier_versions(golden, tmp_path):
    """pixedfit once wrote COSMO='None' for the default cosmology (flat ΛCDM): read as None,
    written back as 'flat_LCDM'."""
    path = tmp_path / "none.fits"
    with fits.open(golden("orig_mcmc.fits.gz")) as hdul:
        hdul[0].header["COSMO"] = "None"
        hdul.writeto(path)
    res = FitResult.read_pixedfit(path)
    assert res.config["cosmo"] is None
    res.write_pixedfit(tmp_path / "o.fits")
    assert fits.getheader(tmp_path / "o.fits")["COSMO"] == "flat_LCDM"


def _original_maps_expected(params, stats, values, rdsps):
    per_bin = {s: np.vstack([values[s], np.full((1, len(params)), -99.0)]) for s in stats}
    maps = {}
    for j, p in enumerate(params):
        for s in stats:
            maps[f"bin-{p}-{s}"] = g.paint(per_bin[s][:, j:j + 1], bins=(1, 2))[0]
    pix = g.orig_pixel_maps(per_bin, params, stats, rdsps)
    maps.update({k: np.where(np.isin(g.BIN_MAP, (1, 2)), v, np.nan) for k, v in pix.items()})
    return maps


MAPS_CASES = [
    ("orig_maps_rdsps.fits.gz", g.ORIG_LIB_ALL, ("mean", "mean_err"),
     {"mean": g.ORIG_BIN_MEAN, "mean_err": g.ORIG_BIN_STD}, True),
    ("orig_maps_mcmc.fits.gz", g.ORIG_MC_ALL, ("p16", "p50", "p84"), g.ORIG_MC_P, False),
]


@pytest.mark.parametrize("name, params, stats, values, rdsps", MAPS_CASES)
def test_original_property_maps(golden, name, params, stats, values, rdsps):
    """Spec §2.8: lower-case map names, −99 for the unfitted bin 3 and 0 outside the
    region become NaN; the bins are rebuilt from the maps (the file has no bin map)."""
    pm = PropertyMaps.read(golden(name))
    expected = _original_maps_expected(params, stats, values, rdsps)
    assert list(pm.maps) == list(expected)
    for key, arr in expected.items():
        bins12 = np.isin(g.BIN_MAP, (1, 2))
        np.testing.assert_allclose(pm.maps[key][bins12], arr[bins12], rtol=1e-13, err_msg=key)
        assert np.all(np.isnan(pm.maps[key][~g.REGION])), key
        if key.startswith("bin-"):
            assert np.all(np.isnan(pm.maps[key][g.BIN_MAP == 3])), key
    assert pm.method == ("rdsps" if rdsps else "mcmc")
    assert pm.z == 0.02 and pm.filters == [] and pm.kpc_per_pixel is None
    _nan_equal(pm.region, g.REGION)
    # bins rebuilt from the values of the first map: the same partition (ids may differ)
    assert pm.nbins == 3
    pairs = {(int(a), int(b)) for a, b in zip(g.BIN_MAP.ravel(), pm.bin_map.ravel(),
                                              strict=True)}
    assert len(pairs) == 4 and len({a for a, _ in pairs}) == 4 and \
        len({b for _, b in pairs}) == 4
    assert (0, 0) in pairs
    _nan_equal(pm.flags, np.where(g.BIN_MAP == 3, FLAG_NOT_FITTED, 0))


@pytest.mark.parametrize("name", ["orig_maps_rdsps.fits.gz", "orig_maps_mcmc.fits.gz"])
def test_original_pixel_maps_of_unfitted_bins_are_missing(golden, name):
    """The original's pixel maps of an unfitted bin hold log10(10^-99 × f_pix/f_bin) =
    -99.x (spec §2.8): missing, like the bin maps' -99 (once read as finite values)."""
    pm = PropertyMaps.read(golden(name))
    for key in pm.maps:
        assert np.all(np.isnan(pm.maps[key][g.BIN_MAP == 3])), key


# =========================================================================== compressed input
def test_readers_open_gzip_compressed_fits_directly():
    """The FITS readers accept ``.fits.gz`` files (astropy decompresses them)."""
    _check_photometry(FluxCube.read(GOLDEN / "orig_fluxmap.fits.gz"))
    assert BinnedCube.read(GOLDEN / "orig_binned_phot.fits.gz").nbins == 3
    assert PropertyMaps.read(GOLDEN / "orig_maps_rdsps.fits.gz").method == "rdsps"
    assert FitResult.read_pixedfit(GOLDEN / "orig_rdsps.fits.gz").method == "rdsps"


def test_read_any_opens_a_gzip_compressed_original_fit():
    """A gzip-compressed original fit file (*.fits.gz) is FITS, not HDF5 (read_any once
    told them apart by the bytes 'SIMPLE' alone and refused it)."""
    assert FitResult.read_any(GOLDEN / "orig_rdsps.fits.gz").method == "rdsps"
