"""Bad input: every case of the outside probe (issue 15, "Bad input") raises an exception
naming the argument, file or configuration key — no crash, no silent clamping, no NaN.

Each case was reproduced before the fix: huge thread counts crashed the process
(segmentation fault), grid parameters were clamped to the grid edge, the others raised
cryptic errors (ZeroDivisionError, "not enough values to unpack", ...) or were accepted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

import pixedfit
from pixedfit.binning import bin_with_map, reduced_chi2
from pixedfit.cosmology import luminosity_distance, redshift_at_distance
from pixedfit.cubes import FluxCube
from pixedfit.fitting import (
    McmcSettings,
    Parallelism,
    RdspsSettings,
    fit_binmap,
    fit_catalog,
    fit_sed,
)
from pixedfit.fitting.priors import PriorSet
from pixedfit.ifs.readers import read_generic
from pixedfit.images import ImageSet
from pixedfit.library import GENERATION_RANGES, check_generation_ranges, generate_library
from pixedfit.parallel import available_cores, resolve_threads, thread_count
from pixedfit.pipeline import Pipeline, load_config
from pixedfit.sps import SEDModel
from pixedfit.units import sky_position

FILTERS = ["sdss_u", "sdss_g", "sdss_r", "sdss_i", "sdss_z"]
# The child process imports the very package this session imports (installed or source).
PACKAGE_ROOT = Path(pixedfit.__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model():
    return SEDModel(sfh_form=1, dust_law=1, add_neb_emission=False)


@pytest.fixture(scope="module")
def library(model):
    return generate_library(model, 300, seed=3)


@pytest.fixture(scope="module")
def sed(model):
    flux = model.photometry({"log_mass": 9.0}, 0.05, FILTERS)
    return flux, flux / 20


# --------------------------------------------------------------------------- threads

_THREADS_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from pixedfit import _core, filters
    from pixedfit.fitting import Parallelism, fit_sed
    from pixedfit.library import generate_library
    from pixedfit.sps import SEDModel

    HUGE = (10**5, 10**6)
    F = ["sdss_u", "sdss_g", "sdss_r", "sdss_i", "sdss_z"]
    m = SEDModel(sfh_form=1, dust_law=1)
    lib = generate_library(m, 200, seed=1, threads=1)
    obs = m.photometry({"log_mass": 9.0}, 0.05, F, threads=1)
    wave = np.linspace(2500.0, 12000.0, 600)
    spec = 1.0 + np.sin(wave / 500.0)[None, :] * np.linspace(0.1, 1, 7)[:, None]
    fw = filters.filter_weights(F, wave)
    arr = m._param_array({"log_age": np.linspace(-1, 1, 9)})[0]
    cases = {
        "filters.photometry": lambda t: filters.photometry(wave, spec, F, threads=t),
        "SEDModel.photometry": lambda t: m.photometry(
            {"log_age": np.linspace(-1, 1, 9)}, 0.1, F, threads=t),
        "fit_sed": lambda t: fit_sed(obs, obs / 20, F, z=0.05, library=lib, model=m,
                                     parallel=Parallelism(threads=t)).mean,
        "generate_library": lambda t: generate_library(
            m, 50, seed=2, threads=t).derived["log_lbol"],
        "_core.csp_spectra": lambda t: _core.csp_spectra(
            m._grid_full, arr, *m._cfg(), False, t)[0],
        "apply_band_weights": lambda t: _core.apply_band_weights(
            spec, fw.starts, fw.offsets, fw.weights, t),
    }
    out = {}
    for name, call in cases.items():
        ref = np.asarray(call(1))
        out[name] = all(np.array_equal(np.asarray(call(t)), ref) for t in HUGE)
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def huge_thread_runs(tmp_path_factory):
    """Every entry point at threads=1, 10**5 and 10**6, in a child process (a crash there
    fails these tests instead of killing the test session)."""
    path = os.pathsep.join([str(PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path)
    proc = subprocess.run([sys.executable, "-c", _THREADS_SCRIPT], capture_output=True,
                          text=True, env=env, timeout=600,
                          cwd=tmp_path_factory.mktemp("threads"))
    return proc


@pytest.mark.parametrize("entry", ["filters.photometry", "SEDModel.photometry", "fit_sed",
                                   "generate_library", "_core.csp_spectra",
                                   "apply_band_weights"])
def test_huge_thread_counts_give_the_single_thread_answer(huge_thread_runs, entry):
    proc = huge_thread_runs
    assert proc.returncode == 0, f"child process failed ({proc.returncode}): {proc.stderr}"
    assert json.loads(proc.stdout.strip().splitlines()[-1])[entry] is True


def test_threads_mean_the_same_everywhere(model, library, sed):
    assert resolve_threads(None) == resolve_threads(0) == resolve_threads(-1) == 0
    assert resolve_threads(10**6) == available_cores() == thread_count(-5) == thread_count(0)
    assert resolve_threads(1) == 1
    with pytest.raises(TypeError, match="threads"):
        resolve_threads(1.5)
    with pytest.raises(TypeError, match="threads"):
        SEDModel(threads="4")
    one = model.photometry({"log_age": 0.3}, 0.1, FILTERS, threads=1)
    np.testing.assert_array_equal(model.photometry({"log_age": 0.3}, 0.1, FILTERS,
                                                   threads=-1), one)
    flux, err = sed
    ref = fit_sed(flux, err, FILTERS, z=0.05, library=library, model=model,
                  parallel=Parallelism(threads=1))
    res = fit_sed(flux, err, FILTERS, z=0.05, library=library, model=model,
                  parallel=Parallelism(threads=-1))
    np.testing.assert_array_equal(res.mean, ref.mean)
    with pytest.raises(TypeError, match=r"^threads"):  # checked before any work
        fit_sed(flux, err, FILTERS, z=0.05, library=library, model=model,
                parallel=Parallelism(threads=1.5))


# --------------------------------------------------------------------------- model grids

@pytest.fixture(scope="module")
def full_model():
    return SEDModel(sfh_form=1, dust_law=0, dust_emission=True, add_neb_emission=True)


@pytest.mark.parametrize("name, value, valid", [
    ("gas_logu", 0.5, r"\[-4, 0\]"),
    ("gas_logu", -4.5, r"\[-4, 0\]"),
    ("log_qpah", 1.5, r"\[-1, 0\.6609\]"),
    ("log_umin", 1.6, r"\[-1, 1\.398\]"),
    ("log_umin", -1.2, r"\[-1, 1\.398\]"),
])
def test_grid_parameters_outside_the_grid_raise(full_model, name, value, valid):
    with pytest.raises(ValueError, match=rf"{name} = {value:g} is outside .*{valid}"):
        full_model.photometry({name: value}, 0.05, ["sdss_r", "wise_w3"])
    lo, hi = full_model.param_limits()[name]
    with pytest.raises(ValueError, match=rf"ranges\['{name}'\].*{valid}"):
        generate_library(full_model, 10, ranges={name: (min(lo, value), max(hi, value))})
    # the edges themselves are inside
    edge = full_model.photometry({name: hi if value > hi else lo}, 0.05, ["sdss_r"])
    assert np.all(np.isfinite(edge)) and np.all(edge > 0)


@pytest.mark.slow
def test_grid_limits_follow_the_grids(full_model, shared_data):
    grid = full_model.grid
    limits = full_model.param_limits()
    assert limits["gas_logu"] == (grid.nebular.logu[0], grid.nebular.logu[-1])
    assert limits["log_qpah"][1] == pytest.approx(np.log10(grid.dust_emission.qpah[-1]))
    assert limits["log_umin"][0] == pytest.approx(np.log10(grid.dust_emission.umin[0]))
    agn = SEDModel(sfh_form=1, add_agn=True,
                   agn_templates=shared_data / "agn_torus_nenkova08")
    lo, hi = agn.param_limits()["log_tauagn"]
    assert (lo, hi) == pytest.approx((np.log10(5.0), np.log10(150.0)))
    with pytest.raises(ValueError, match=r"log_tauagn = 2\.18 is outside"):
        agn.properties({"log_tauagn": 2.18})
    # the default generation range (the original's, up to 2.18) is narrowed to the grid
    assert GENERATION_RANGES["log_tauagn"][1] > hi
    assert check_generation_ranges(agn, None)["log_tauagn"] == (0.7, hi)


# --------------------------------------------------------------------------- fitting


def _cases(model, library, sed):
    flux, err = sed
    two = ([flux, flux], [err, err])
    return {
        "z string": (lambda: fit_sed(flux, err, FILTERS, z="0.05", library=library,
                                     model=model), TypeError, r"^z must be a number"),
        "dz=0 free z": (lambda: fit_sed(flux, err, FILTERS, z=None, library=library,
                                        model=model, dz=0), ValueError, r"^dz must"),
        "dz=0 catalogue": (lambda: fit_catalog(*two, FILTERS, [0.05, 0.1], library=library,
                                               model=model, dz=0), ValueError, r"^dz must"),
        "dz tiny": (lambda: fit_catalog(*two, FILTERS, [0.05, 0.5], library=library,
                                        model=model, dz=1e-8), ValueError, r"^dz = 1e-08"),
        "empty catalogue": (lambda: fit_catalog(np.zeros((0, 5)), np.zeros((0, 5)), FILTERS,
                                                [], library=library, model=model),
                            ValueError, "catalogue is empty"),
        "negative z row": (lambda: fit_catalog(*two, FILTERS, [0.05, -0.001],
                                               library=library, model=model,
                                               ids=["a", "b"]),
                           ValueError, r"z of row 1 \(id 'b'\).*distance_mpc"),
        "ids length": (lambda: fit_catalog(*two, FILTERS, [0.05, 0.1], library=library,
                                           model=model, ids=["a"]),
                       ValueError, r"^ids must hold one id per row"),
        "nwalkers float": (lambda: fit_sed(flux, err, FILTERS, z=0.05, library=library,
                                           model=model, method=McmcSettings(nwalkers=14.5)),
                           TypeError, r"^nwalkers must be an integer"),
        "nwalkers float catalogue": (lambda: fit_catalog(*two, FILTERS, [0.05, 0.1],
                                                         library=library, model=model,
                                                         method=McmcSettings(nwalkers=14.5)),
                                     TypeError, r"^nwalkers must be an integer"),
        "nwalkers float binmap": (lambda: fit_binmap("unused.fits",
                                                     method=McmcSettings(nwalkers=14.5)),
                                  TypeError, r"^nwalkers must be an integer"),
        "nsteps_cut": (lambda: fit_sed(flux, err, FILTERS, z=0.05, library=library,
                                       model=model, method=McmcSettings(nsteps=10,
                                                                        nsteps_cut=10)),
                       ValueError, r"^nsteps_cut"),
        "refine": (lambda: fit_sed(flux, err, FILTERS, z=0.05, library=library, model=model,
                                   method=RdspsSettings(refine="yes")),
                   TypeError, r"^RdspsSettings\.refine must be"),
        "mcmc seed": (lambda: fit_sed(flux, err, FILTERS, z=0.05, library=library,
                                      model=model, method="mcmc", seed=2**40),
                      ValueError, r"^seed must be < 2\*\*32"),
        "seed": (lambda: fit_catalog(*two, FILTERS, [0.05, 0.1], library=library,
                                     model=model, seed=-1), ValueError, r"^seed must be"),
        "binmap z string": (lambda: fit_binmap("unused.fits", z="0.1"), TypeError,
                            r"^z must be a number"),
        "ranges scalar": (lambda: generate_library(model, 10, ranges={"log_age": 0.5}),
                          TypeError, r"^ranges\['log_age'\] must be a pair"),
        "ranges not a mapping": (lambda: generate_library(model, 10, ranges=[1, 2]),
                                 TypeError, r"^ranges must be a mapping"),
        "chunk 0": (lambda: generate_library(model, 10, chunk=0), ValueError, r"^chunk"),
        "chunk -3": (lambda: generate_library(model, 10, chunk=-3), ValueError, r"^chunk"),
        "chunk float": (lambda: generate_library(model, 10, chunk=2.5), ValueError, r"^chunk"),
        "library seed": (lambda: generate_library(model, 10, seed=-1), ValueError, r"^seed"),
        "prior one value": (lambda: PriorSet({"log_age": (1.0,)}), TypeError,
                            r"^priors\['log_age'\]"),
    }


_CASE_NAMES = ["z string", "dz=0 free z", "dz=0 catalogue", "dz tiny", "empty catalogue",
               "negative z row", "ids length", "nwalkers float", "nwalkers float catalogue",
               "nwalkers float binmap", "nsteps_cut", "refine", "mcmc seed", "seed",
               "binmap z string", "ranges scalar", "ranges not a mapping", "chunk 0",
               "chunk -3", "chunk float", "library seed", "prior one value"]


@pytest.mark.parametrize("case", _CASE_NAMES)
def test_fitting_and_library_arguments(model, library, sed, case):
    call, exc, pattern = _cases(model, library, sed)[case]
    with pytest.raises(exc, match=pattern):
        call()


def test_mcmc_settings_check_names_each_setting():
    for kwargs, exc, name in [({"nwalkers": 14.5}, TypeError, "nwalkers"),
                              ({"thin": 0}, ValueError, "thin"),
                              ({"seed": 2**40}, ValueError, "seed"),
                              ({"init_spread": "a"}, TypeError, "init_spread"),
                              ({"dz_interp": 0.0}, ValueError, "dz_interp"),
                              ({"backend": 3}, TypeError, "backend")]:
        with pytest.raises(exc, match=f"^{name}"):
            McmcSettings(**kwargs).check()
    McmcSettings().check()  # the defaults are valid
    with pytest.raises(ValueError, match="nwalkers must be >= 2 x"):
        McmcSettings(nwalkers=10).check(ndim=6)


def test_catalogue_rows_may_give_a_distance_instead_of_z(model, library, sed):
    flux, err = sed
    res = fit_catalog([flux, flux], [err, err], FILTERS, [0.05, -0.001], library=library,
                      model=model, distance_mpc=[np.nan, 16.5])
    assert res[0].z == 0.05
    assert res[1].z == pytest.approx(redshift_at_distance(16.5), rel=1e-12)
    assert luminosity_distance(res[1].z) == pytest.approx(16.5, rel=1e-9)
    with pytest.raises(ValueError, match=r"distance_mpc of row 0 \(id '0'\)"):
        fit_catalog([flux], [err], FILTERS, [0.05], library=library, model=model,
                    distance_mpc=[-3.0])


def test_redshift_at_distance_inverts_the_luminosity_distance():
    z = np.array([1e-5, 1e-3, 0.05, 1.0, 7.0])
    for cosmo in (None, "Planck18"):
        back = redshift_at_distance(luminosity_distance(z, cosmo), cosmo)
        np.testing.assert_allclose(back, z, rtol=1e-9)
    with pytest.raises(ValueError, match="d_mpc"):
        redshift_at_distance(0.0)
    with pytest.raises(TypeError, match="d_mpc"):
        redshift_at_distance("far")


def test_cli_catalogue_with_a_distance_column(model, library, sed, tmp_path, capsys):
    from astropy.table import Table

    from pixedfit.cli import main

    flux, err = sed
    table = Table({"id": ["near", "far"], "z": [-0.0005, 0.05], "dist": [16.5, np.nan]})
    for i, f in enumerate(FILTERS):
        table[f] = [flux[i], flux[i]]
        table[f"{f}_err"] = [err[i], err[i]]
    cat, lib = tmp_path / "cat.ecsv", tmp_path / "lib.h5"
    table.write(cat)
    library.write(lib, spectra=False)
    args = ["fit", str(cat), "--library", str(lib), "--filters", ",".join(FILTERS),
            "--quiet"]
    assert main([*args, "--out", str(tmp_path / "a.ecsv")]) == 2
    assert "z of row 0 (id 'near')" in capsys.readouterr().err
    assert not (tmp_path / "a.ecsv").exists()
    assert main([*args, "--out", str(tmp_path / "b.ecsv"), "--distance-column", "dist"]) == 0
    out = Table.read(tmp_path / "b.ecsv")
    assert out["z"][0] == pytest.approx(redshift_at_distance(16.5)) and out["z"][1] == 0.05


# --------------------------------------------------------------------------- images, IFS


def _image(path: Path, shape=(60, 60)) -> Path:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [shape[1] / 2, shape[0] / 2]
    wcs.wcs.cdelt = [-0.4 / 3600, 0.4 / 3600]
    hdr = wcs.to_header()
    hdr["BUNIT"] = "nanomaggy"
    noise = np.random.default_rng(7).normal(0.0, 0.1, shape)
    fits.PrimaryHDU(1.0 + noise, hdr).writeto(path, overwrite=True)
    return path


@pytest.mark.parametrize("kwargs, exc, pattern", [
    ({"ra": "abc"}, ValueError, r"^ra: cannot read 'abc'"),
    ({"dec": "north"}, ValueError, r"^dec: cannot read 'north'"),
    ({"ra": None}, TypeError, r"^ra must be a number or a string"),
    ({"dec": 95.0}, ValueError, r"^dec must lie within"),
    ({"noise_realisations": -3}, ValueError, r"^noise_realisations must be >= 0"),
    ({"noise_realisations": 2.5}, TypeError, r"^noise_realisations must be an integer"),
    ({"stamp_size": 51}, ValueError, r"^stamp_size"),
])
def test_image_set_arguments(tmp_path, kwargs, exc, pattern):
    args = {"filters": ["sdss_r"], "sci_img": {"sdss_r": _image(tmp_path / "r.fits")},
            "ra": 150.0, "dec": 2.0, "output_dir": tmp_path / "out"} | kwargs
    with pytest.raises(exc, match=pattern):
        ImageSet(**args)


def test_galactic_extinction_coordinates():
    from pixedfit.images.extinction import ebv_foreground_dust

    with pytest.raises(ValueError, match=r"^ra: cannot read 'abc'"):
        ebv_foreground_dust("abc", 2.0)
    with pytest.raises(ValueError, match=r"^dec must lie within"):
        ebv_foreground_dust(150.0, -91.0)
    assert ebv_foreground_dust("10:00:00", "+02:00:00") == pytest.approx(
        ebv_foreground_dust(150.0, 2.0), rel=1e-12)


def test_image_shorter_than_its_header_names_the_file(tmp_path):
    full = _image(tmp_path / "r.fits")
    data = full.read_bytes()
    short = tmp_path / "short.fits"
    short.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"sci_img\[sdss_r\].*short\.fits.*truncated"):
        ImageSet(["sdss_r"], {"sdss_r": short}, ra=150.0, dec=2.0, output_dir=tmp_path / "o")


def test_image_set_reads_sexagesimal_coordinates(tmp_path):
    iset = ImageSet(["sdss_r"], {"sdss_r": _image(tmp_path / "r.fits")}, ra="10:00:00.5",
                    dec="+02:00:01", output_dir=tmp_path / "o")
    ref = SkyCoord("10h00m00.5s", "+02d00m01s")
    assert iset.ra == pytest.approx(ref.ra.deg, abs=1e-12)
    assert iset.dec == pytest.approx(ref.dec.deg, abs=1e-12)


@pytest.mark.parametrize("text, hours, degrees", [
    ("10:00:28.6", True, 150.119166666666), ("10h00m28.6s", True, 150.119166666666),
    ("150.5", True, 150.5), ("-02:12:21", False, -2.205833333333),
    ("+2d12m21s", False, 2.205833333333), (33, False, 33.0)])
def test_sky_position_parses_like_astropy(text, hours, degrees):
    ra, dec = sky_position(text, 0.0) if hours else sky_position(0.0, text)
    assert (ra if hours else dec) == pytest.approx(degrees, abs=1e-9)


def _ifs_cube(path: Path, nwave: int = 7) -> Path:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.cdelt = [-0.5 / 3600, 0.5 / 3600]
    hdr = wcs.to_header()
    hdr["CTYPE3"], hdr["CRVAL3"], hdr["CDELT3"], hdr["CRPIX3"] = "WAVE", 5000.0, 2.0, 1.0
    hdr["CUNIT3"], hdr["BUNIT"] = "Angstrom", "1e-17 erg / (s cm2 Angstrom)"
    cube = np.ones((nwave, 4, 5))
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(cube, hdr, name="SCI"),
                  fits.ImageHDU(cube * 0.01, name="VAR")]).writeto(path)
    return path


@pytest.mark.parametrize("resolution, exc, pattern", [
    ([3000.0, 3100.0], ValueError, r"^resolution must be one R or one per wavelength.*"
                                   r"7 wavelengths.*shape \(2,\)"),
    (np.full((7, 2), 3000.0), ValueError, r"^resolution must be one R"),
    ("high", TypeError, r"^resolution must be a number"),
    (-5.0, ValueError, r"^resolution: .*> 0"),
])
def test_read_generic_resolution(tmp_path, resolution, exc, pattern):
    path = _ifs_cube(tmp_path / "c.fits")
    with pytest.raises(exc, match=pattern):
        read_generic(path, flux_ext="SCI", var_ext="VAR", resolution=resolution)
    cube = read_generic(path, flux_ext="SCI", var_ext="VAR", resolution=np.arange(1.0, 8.0))
    np.testing.assert_array_equal(cube.resolution, np.arange(1.0, 8.0))


# --------------------------------------------------------------------------- binning


def _flux_cube(shape=(4, 4)) -> FluxCube:
    rng = np.random.default_rng(1)
    flux = rng.uniform(1.0, 2.0, (2, *shape))
    return FluxCube(flux=flux, flux_err=0.1 * flux, filters=["sdss_g", "sdss_r"])


@pytest.mark.parametrize("big", [2**31, 2**32 + 1, 2**40])
def test_bin_with_map_refuses_ids_that_do_not_fit(big):
    cube = _flux_cube()
    bm = np.zeros(cube.shape, dtype=np.int64)
    bm[0, 0], bm[1, 1] = 1, big
    with pytest.raises(ValueError, match=rf"^bin_map: .*largest id, {big}"):
        bin_with_map(cube, bm)
    bm[1, 1] = 2
    binned = bin_with_map(cube, bm)
    np.testing.assert_allclose(binned.bin_flux[1], cube.flux[:, 1, 1])


def test_reduced_chi2_refuses_zero_errors():
    f = np.array([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"^s1, s2: .*> 0"):
        reduced_chi2(f, np.zeros(3), 2 * f, np.zeros(3))
    with pytest.raises(ValueError, match=r"^s1, s2"):
        reduced_chi2(f, np.array([0.1, np.nan, 0.1]), f, np.full(3, 0.1))
    # a zero error in one SED only is fine: the other carries the variance
    s = np.full(3, 0.1)
    assert reduced_chi2(f, np.zeros(3), f * 2, s) == pytest.approx(0.0, abs=1e-20)


# --------------------------------------------------------------------------- pipeline


def _config(tmp_path: Path, **sections) -> dict:
    for f in ("sdss_g", "sdss_r"):
        _image(tmp_path / f"{f}.fits")
    cfg = {"_base": str(tmp_path),
           "run": {"output_dir": "out"},
           "images": {"filters": ["sdss_g", "sdss_r"],
                      "sci": {"sdss_g": "sdss_g.fits", "sdss_r": "sdss_r.fits"},
                      "ra": 150.0, "dec": 2.0, "z": 0.02}}
    for section, values in sections.items():
        cfg.setdefault(section, {}).update(values)
    return cfg


@pytest.mark.parametrize("section, values, pattern", [
    ("binning", {"ref_band": "sdss_i"},
     r"binning\.ref_band = 'sdss_i' is not among the filters \(sdss_g, sdss_r\)"),
    ("binning", {"ref_band": 5}, r"binning\.ref_band = 5 is not a band index"),
    ("binning", {"snr": 5}, r"unknown key binning\.snr; did you mean binning\.snr_target\?"),
    ("binning", {"snr_target": [5, 5, 5]}, r"binning\.snr_target lists 3 values for 2 filters"),
    ("binning", {"min_bin_diameter": "4"},
     r"binning\.min_bin_diameter must be a finite number"),
    ("images", {"stampsize": [51, 51]},
     r"unknown key images\.stampsize; did you mean images\.stamp_size\?"),
    ("images", {"ra": "abc"}, r"images\.ra: cannot read 'abc'"),
    ("images", {"dec": 100}, r"images\.dec must lie within"),
    ("images", {"noise_realisations": -3}, r"images\.noise_realisations must be >= 0"),
    ("images", {"stamp_size": [3, 3]}, r"images\.stamp_size must be \[ny, nx\]"),
    ("images", {"psf_target": "sdss_z"}, r"images\.psf_target = 'sdss_z' is not among"),
    ("images", {"var": {"sdss_i": "x.fits"}}, r"images\.var\.sdss_i = 'sdss_i' is not among"),
    ("images", {"ellipse": {"radius": 3}}, r"unknown key images\.ellipse\.radius"),
    ("images", {"z": -0.1}, r"images\.z must be > 0"),
    ("maps", {"ref_band_mass": "wise_w1"}, r"maps\.ref_band_mass = 'wise_w1' is not among"),
    ("models", {"ranges": {"log_age": 0.5}}, r"models\.ranges\.log_age must be \[lo, hi\]"),
    ("models", {"sfh_form": 7}, r"models\.sfh_form must be <= 4"),
    ("models", {"nmodels": 10.5}, r"models\.nmodels must be an integer"),
    ("fitting", {"method": "emcee"}, r"fitting\.method must be one of 'rdsps', 'mcmc'"),
    ("fitting", {"cosmo": "Planck99"}, r"fitting\.cosmo: .*unknown cosmology"),
    ("fitting", {"perc_chi2": 0}, r"fitting\.perc_chi2 must be > 0"),
    ("run", {"quiet": "yes"}, r"run\.quiet must be true or false"),
    ("report", {"n_examples": -1}, r"report\.n_examples must be >= 0"),
    ("fiting", {"method": "rdsps"}, r"unknown section \[fiting\]; did you mean \[fitting\]"),
])
def test_config_is_checked_before_any_work(tmp_path, section, values, pattern):
    cfg = _config(tmp_path, **{section: values})
    with pytest.raises(ValueError, match=pattern):
        Pipeline(cfg)
    assert not (tmp_path / "out").exists()


def test_config_lists_every_problem_at_once(tmp_path):
    cfg = _config(tmp_path, binning={"ref_band": "sdss_i", "del_r": -1},
                  images={"ra": "xyz"}, fitting={"likelihood": "cauchy"})
    with pytest.raises(ValueError, match=r"4 problem\(s\)") as info:
        load_config(config=cfg)
    for key in ("binning.ref_band", "binning.del_r", "images.ra", "fitting.likelihood"):
        assert key in str(info.value)


@pytest.mark.parametrize(("section", "old", "new", "value"), [
    ("binning", "Dmin_bin", "min_bin_diameter", 2.0),
    ("binning", "SNR", "snr_target", 10.0),
    ("binning", "redc_chi2_limit", "max_reduced_chi2", 4.0),
    ("models", "duste_switch", "dust_emission", True),
    ("maps", "refband_SFR", "ref_band_sfr", "sdss_g"),
    ("maps", "refband_SM", "ref_band_mass", "sdss_r"),
    ("maps", "refband_Mdust", "ref_band_dust_mass", "sdss_r"),
])
def test_config_keys_of_earlier_versions_name_their_new_name(tmp_path, section, old, new,
                                                             value):
    """A key renamed to its PEP 8 name is an error naming the old and the new key (not
    silently ignored): nothing runs, and a TOML file gives the same message."""
    cfg = _config(tmp_path, **{section: {old: value}})
    message = rf"{section}\.{old} is now called {section}\.{new}"
    with pytest.raises(ValueError, match=message):
        load_config(config=cfg)
    with pytest.raises(ValueError, match=message):
        Pipeline(cfg)
    assert not (tmp_path / "out").exists()
    toml = tmp_path / "old.toml"
    toml.write_text(f"[{section}]\n{old} = {value!r}\n".replace("True", "true")
                    .replace("'", '"'))
    with pytest.raises(ValueError, match=message):
        load_config(toml)
    # the new name is accepted
    assert load_config(config=_config(tmp_path, **{section: {new: value}}))[section][new] \
        == value


def test_config_old_keys_in_other_case_suggest_the_new_name(tmp_path):
    with pytest.raises(ValueError, match=r"unknown key binning\.snr; did you mean "
                                         r"binning\.snr_target\?"):
        load_config(config=_config(tmp_path, binning={"snr": 5.0}))


def test_config_reads_sexagesimal_coordinates(tmp_path):
    cfg = load_config(config=_config(tmp_path, images={"ra": "10h00m00.5s",
                                                      "dec": "+02:00:01"}))
    ref = SkyCoord("10h00m00.5s", "+02d00m01s")
    assert cfg["images"]["ra"] == pytest.approx(ref.ra.deg, abs=1e-12)
    assert cfg["images"]["dec"] == pytest.approx(ref.dec.deg, abs=1e-12)


def test_config_files_filters_and_grids_are_checked_before_any_work(tmp_path):
    def fails(pattern, **sections):
        pipe = Pipeline(_config(tmp_path, **sections))
        with pytest.raises(ValueError, match=pattern):
            pipe.run()
        assert not (tmp_path / "out").exists()

    fails(r"images\.sci\.sdss_r: file .*missing\.fits not found",
          images={"sci": {"sdss_g": "sdss_g.fits", "sdss_r": "missing.fits"}})
    fails(r"images\.filters: unknown filter 'sdss_rr'; did you mean sdss_r",
          images={"filters": ["sdss_g", "sdss_rr"],
                  "sci": {"sdss_g": "sdss_g.fits", "sdss_rr": "sdss_r.fits"}})
    fails(r"models\.ranges\['gas_logu'\] = \(-2\.0, 0\.5\) leaves .*\[-4, 0\]",
          models={"ranges": {"gas_logu": [-2.0, 0.5]}})
    fails(r"models\.ranges given for parameters this model does not use: \['log_qpah'\]",
          models={"ranges": {"log_qpah": [-1.0, 0.5]}})
    # a flux map: its filters are read from the file
    fmap = tmp_path / "fmap.fits"
    hdr = fits.Header({"NFILTERS": 2, "FIL0": "sdss_g", "FIL1": "sdss_r"})
    fits.PrimaryHDU(header=hdr).writeto(fmap)
    cfg = {"_base": str(tmp_path), "run": {"output_dir": "out"},
           "images": {"fluxmap": "fmap.fits"}, "binning": {"ref_band": "sdss_z"}}
    with pytest.raises(ValueError, match=r"binning\.ref_band = 'sdss_z' is not among the "
                                         r"flux map's filters \(sdss_g, sdss_r\)"):
        Pipeline(cfg).run()
    assert not (tmp_path / "out").exists()
