"""The pipeline: stages, caching (nothing reruns unless its inputs changed), config errors,
and an MPI run identical to the serial one."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pixedfit.analysis.maps import PropertyMaps
from pixedfit.cli import main
from pixedfit.demo import make_observation
from pixedfit.parallel import SerialPool
from pixedfit.pipeline import load_config, run_pipeline

# The demo galaxy fills these small test stamps: its region is flagged with a RegionWarning
# (checked in test_images_process.py / test_compat.py); here the other stages are tested.
_FILLS_STAMP = pytest.mark.filterwarnings("ignore::pixedfit.images.regions.RegionWarning")


@pytest.fixture(scope="module")
def observation(tmp_path_factory):
    folder = tmp_path_factory.mktemp("obs")
    cfg = make_observation(folder, stamp=24, seed=3, nmodels=500, noise_realisations=0,
                           refine=False)  # the stages' mechanics, not convergence
    text = cfg.read_text().replace("[report]", "[report]\nenabled = false")
    cfg.write_text(text)
    return cfg


def _mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")
            if p.is_file() and ".pixedfit" not in p.parts}


def _edit(cfg: Path, pattern: str, new: str) -> None:
    text, n = re.subn(pattern, new, cfg.read_text(), flags=re.MULTILINE)
    assert n == 1
    cfg.write_text(text)


@_FILLS_STAMP
def test_stages_cache_and_rerun_downstream_only(observation, tmp_path, monkeypatch):
    cfg = tmp_path / "run.toml"
    shutil.copy(observation, cfg)
    for sub in ("inputs",):
        (tmp_path / sub).symlink_to(observation.parent / sub)
    pipe = run_pipeline(cfg, pool=SerialPool(), quiet=True)
    assert pipe.ran == ["images", "binning", "models", "fitting", "maps"]
    out = pipe.out
    nbins = pipe.records["binning"].info["nbins"]
    leftover = pipe.records["binning"].info["leftover"]
    # one file per bin, except the leftover bin, which is not fitted by default
    assert pipe.records["fitting"].info["leftover_fitted"] is False
    assert len(list((out / "fitting").glob("bin*.h5"))) == nbins - bool(leftover)
    maps = PropertyMaps.read(out / "maps" / "maps.fits")
    assert maps.nbins == nbins and "pix-log_sigma_mass-mean" in maps.maps
    if leftover:
        assert np.all(np.isnan(maps.maps["pix-log_sigma_mass-mean"][maps.bin_map == leftover]))
        assert np.all(maps.flags[maps.bin_map == leftover] == 9)
    before = _mtimes(out)

    again = run_pipeline(cfg, pool=SerialPool(), quiet=True)
    assert again.ran == []
    assert all(r.cached for r in again.records.values())
    assert _mtimes(out) == before  # no file touched

    notes = out / "fitting" / "my_notes.txt"  # a user's file in an output folder
    notes.write_text("mine")
    _edit(cfg, r"^snr_target = .*$", "snr_target = 20.0")
    changed = run_pipeline(cfg, pool=SerialPool(), quiet=True)
    assert notes.read_text() == "mine"  # never deleted: pixedfit did not write it
    assert changed.ran == ["binning", "fitting", "maps"]
    after = _mtimes(out)
    for name in ("images/fluxmap.fits", "models/library.h5"):
        assert after[name] == before[name]
    new_bins = changed.records["binning"].info["nbins"]
    assert new_bins < nbins
    # stale results of the old bins are gone
    assert len(list((out / "fitting").glob("bin*.h5"))) == \
        new_bins - bool(changed.records["binning"].info["leftover"])

    _edit(cfg, r"^likelihood = .*$", 'likelihood = "student_t"')
    assert run_pipeline(cfg, pool=SerialPool(), quiet=True).ran == ["fitting", "maps"]

    # an interrupted fitting stage (pending fingerprint, no record) resumes from the stored
    # bins
    record = out / ".pixedfit" / "fitting.json"
    fp = json.loads(record.read_text())["fingerprint"]
    (out / ".pixedfit" / "fitting.pending").write_text(fp)
    record.unlink()
    (out / "fitting" / "bin1.h5").unlink()
    kept = (out / "fitting" / "bin2.h5").stat().st_mtime_ns
    resumed = run_pipeline(cfg, pool=SerialPool(), quiet=True)
    assert resumed.ran == ["fitting"]  # maps: same fingerprint as before, outputs exist
    assert (out / "fitting" / "bin1.h5").is_file()
    assert (out / "fitting" / "bin2.h5").stat().st_mtime_ns == kept

    # another SSP grid (as the BC03 grid before it was put on the vacuum scale): the models
    # and every fit made with them are stale, the images and bins are not
    import pixedfit.sps.bc03 as bc03

    monkeypatch.setattr(bc03, "bc03_grid_id", lambda: "bc03_miles_kroupa01_v1.h5 (air)")
    assert run_pipeline(cfg, pool=SerialPool(), quiet=True).ran == ["models", "fitting",
                                                                     "maps"]


def test_config_errors(tmp_path, capsys):
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[binning\nsnr_target = 5")
    with pytest.raises(ValueError, match="invalid TOML"):
        load_config(bad)
    bad.write_text("[binning]\nsnr = 5\n[images]\nfluxmap = 'x.fits'\n")
    with pytest.raises(ValueError, match=r"unknown key binning\.snr"):
        load_config(bad)
    with pytest.raises(ValueError, match=r"unknown section \[fitter\]; did you mean \[fitting\]"):
        load_config(config={"fitter": {}})
    with pytest.raises(ValueError, match=r"images\.filters"):
        load_config(config={"images": {}})
    with pytest.raises(ValueError, match="no image for"):
        load_config(config={"images": {"filters": ["sdss_r"], "ra": 1, "dec": 2}})
    with pytest.raises(ValueError, match=r"fitting\.method"):
        load_config(config={"images": {"fluxmap": "f.fits"}, "fitting": {"method": "x"}})
    cfg = load_config(config={"images": {"fluxmap": "f.fits"}, "_base": str(tmp_path)})
    assert cfg["images"]["fluxmap"] == str(tmp_path / "f.fits")
    assert cfg["binning"]["min_bin_diameter"] == 4.0
    assert main(["run", str(bad)]) == 2
    assert "unknown key binning.snr" in capsys.readouterr().err


def test_fingerprints_keep_the_key_names_of_earlier_versions():
    """Stage fingerprints see the renamed (PEP 8) configuration keys under their names of
    earlier versions, so an output folder of an earlier version keeps its stages (and the
    fits of its result store) after the configuration is updated to the new names."""
    from pixedfit.pipeline import DEFAULTS, _fingerprint_settings

    assert _fingerprint_settings("binning", DEFAULTS["binning"]) == {
        "ref_band": None, "Dmin_bin": 4.0, "SNR": 5.0, "redc_chi2_limit": 4.0, "del_r": 2.0,
        "connected": True, "absorb_leftover": True, "noise_correlation": True}
    models = _fingerprint_settings("models", DEFAULTS["models"])
    assert models["duste_switch"] is False and "dust_emission" not in models
    assert _fingerprint_settings("maps", DEFAULTS["maps"]) == {
        "refband_SFR": None, "refband_SM": None, "refband_Mdust": None}
    for stage in ("images", "ifs", "fitting", "report"):
        assert _fingerprint_settings(stage, DEFAULTS.get(stage, {})) == DEFAULTS.get(stage, {})
    assert _fingerprint_settings("models", {"library": "x.h5"}) == {"library": "x.h5"}


def _mpiexec() -> str | None:
    exe = Path(sys.executable).parent / "mpiexec"
    if exe.is_file():
        return str(exe)
    return shutil.which("mpiexec")


@_FILLS_STAMP
def test_mpi_run_matches_serial(observation, tmp_path):
    pytest.importorskip("mpi4py")
    mpiexec = _mpiexec()
    if mpiexec is None:
        pytest.skip("no mpiexec found")
    serial = tmp_path / "serial.toml"
    text = observation.read_text()
    serial.write_text(text.replace('output_dir = "run"', 'output_dir = "serial"'))
    parallel = tmp_path / "mpi.toml"
    parallel.write_text(text.replace('output_dir = "run"', 'output_dir = "mpi"'))
    (tmp_path / "inputs").symlink_to(observation.parent / "inputs")
    run_pipeline(serial, pool=SerialPool(), quiet=True)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([mpiexec, "-n", "2", sys.executable, "-m", "pixedfit.cli", "run",
                           str(parallel), "--quiet"], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    a = PropertyMaps.read(tmp_path / "serial" / "maps" / "maps.fits")
    b = PropertyMaps.read(tmp_path / "mpi" / "maps" / "maps.fits")
    assert set(a.maps) == set(b.maps)
    for key in a.maps:
        np.testing.assert_array_equal(a.maps[key], b.maps[key])


@pytest.mark.slow
def test_ifs_stage_with_an_existing_flux_map(tmp_path):
    from ifs_synth import galaxy, imaging, tan_wcs
    from pixedfit.cubes import BinnedCube
    from pixedfit.ifs.generators import manga_wave_grid, write_manga_logcube

    gal = galaxy()
    bands = ["sdss_g", "sdss_r", "sdss_i", "sdss_z"]
    wi, wo = tan_wcs(0.5, (44, 44)), tan_wcs(1.0, (26, 26))
    wave = manga_wave_grid(4)
    clean = gal.cube(wave, wi, (44, 44), np.full(wave.size, 2.5))
    sig = np.full(clean.shape, 1e-3 * clean.max())
    noisy = clean + np.random.default_rng(5).normal(size=clean.shape) * sig
    write_manga_logcube(tmp_path / "manga.fits", wave, noisy, sig, wi)
    imaging(gal, bands, wo, (26, 26), 3.0).write(tmp_path / "fluxmap.fits")
    cfg = {"_base": str(tmp_path),
           "run": {"output_dir": "out", "quiet": True},
           "images": {"fluxmap": "fluxmap.fits"},
           "ifs": {"cube": "manga.fits", "survey": "manga"},
           "binning": {"snr_target": 10.0, "min_bin_diameter": 2.0},
           "models": {"nmodels": 300, "sfh_form": 1,
                      "ranges": {"gas_logu": [-2.0, -2.0], "log_age": [-0.5, 1.0]}},
           "report": {"enabled": False}}
    pipe = run_pipeline(cfg, pool=SerialPool())
    assert pipe.ran == ["images", "ifs", "binning", "models", "fitting", "maps"]
    binned = BinnedCube.read(tmp_path / "out" / "binning" / "binned.fits")
    assert binned.specphot and binned.bin_has_spec.any()
    # the bin spectra's errors include the correlation of the matched pixels (the IFS
    # stage's noise model): larger than the quadrature sums of the same bins
    from pixedfit.binning import bin_with_map
    from pixedfit.cubes import read_cube

    assert binned.params["spectral_noise"] is True
    naive = bin_with_map(read_cube(tmp_path / "out" / "ifs" / "specphot.fits"), binned.bin_map)
    big = binned.bin_has_spec & (np.bincount(binned.bin_map.ravel())[1:] >= 4)
    ratio = np.nanmedian(binned.bin_spec_err[big] / naive.bin_spec_err[big], axis=1)
    assert big.any() and np.all(ratio > 1.5), ratio
    assert (tmp_path / "out" / "maps" / "maps.fits").is_file()
    assert run_pipeline(cfg, pool=SerialPool()).ran == []


def test_region_options_in_the_config(tmp_path):
    base = {"images": {"filters": ["sdss_r"], "sci": {"sdss_r": "r.fits"}, "ra": 1.0,
                       "dec": 2.0}, "_base": str(tmp_path)}
    cfg = load_config(config=base)
    assert cfg["images"]["segmentation_thresh"] == 2.0 and cfg["images"]["region_mask"] is None
    masked = json.loads(json.dumps(base))
    masked["images"].update(region="mask", region_mask="masks/region.fits")
    cfg = load_config(config=masked)
    assert cfg["images"]["region_mask"] == str(tmp_path / "masks" / "region.fits")
    for bad in ({"region": "mask"}, {"region_mask": "m.fits"}, {"region": "blob"}):
        wrong = json.loads(json.dumps(base))
        wrong["images"].update(bad)
        with pytest.raises(ValueError, match=r"images\.region"):
            load_config(config=wrong)
