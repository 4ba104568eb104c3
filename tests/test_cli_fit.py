"""`pixedfit models generate` and `pixedfit fit`, in process and under mpiexec."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from pixedfit.cli import main
from pixedfit.library import read_library
from pixedfit.sps import SEDModel

FILTERS = ["galex_nuv", "sdss_u", "sdss_g", "sdss_r", "sdss_i", "2mass_j", "2mass_k", "wise_w1"]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli_fit")
    lib_path = base / "lib.h5"
    assert main(["models", "generate", "--n", "1500", "--out", str(lib_path), "--sfh-form",
                 "1", "--no-nebular", "--range", "log_age=-1,1", "--seed", "2",
                 "--quiet"]) == 0
    lib = read_library(lib_path)
    model = SEDModel(sfh_form=1, add_neb_emission=False)
    params = {k: v[:6].copy() for k, v in lib.params.items()}
    params["log_mass"] = np.linspace(9, 10.5, 6)
    z = np.array([0.05, 0.1, 0.15, 0.2, 0.25, 0.3])
    flux = model.photometry(params, z, FILTERS)
    err = flux / 15
    table = Table({"id": [f"g{i}" for i in range(6)], "z": z})
    for b, name in enumerate(FILTERS):
        table[name] = flux[:, b]
        table[f"{name}_err"] = err[:, b]
    table["sdss_u"][2] = np.nan  # a missing band is masked, not fatal
    path = base / "cat.ecsv"
    table.write(path)
    return base, lib_path, path, params


def test_generate_and_fit_in_process(catalog, capsys):
    base, lib_path, path, params = catalog
    out = base / "out.fits"
    assert main(["fit", str(path), "--library", str(lib_path), "--filters", ",".join(FILTERS),
                 "--out", str(out), "--store", str(base / "store"), "--quiet"]) == 0
    assert "fitted 6 SEDs" in capsys.readouterr().out
    result = Table.read(out)
    assert list(result["id"]) == [f"g{i}" for i in range(6)]
    d = result["log_mass_mean"] - params["log_mass"]
    assert np.all(np.abs(d) < 3 * result["log_mass_std"] + 0.1)
    assert sorted(p.name for p in (base / "store").glob("*.h5")) == [f"g{i}.h5" for i in range(6)]


@pytest.mark.filterwarnings("ignore::pixedfit.fitting.MCMCShortChainWarning")
def test_fit_with_mcmc(catalog, tmp_path, capsys):
    _base, lib_path, path, params = catalog
    out = tmp_path / "mcmc.csv"
    assert main(["fit", str(path), "--library", str(lib_path), "--filters", ",".join(FILTERS),
                 "--out", str(out), "--method", "mcmc", "--nwalkers", "16", "--nsteps", "60",
                 "--nsteps-cut", "20", "--seed", "3", "--threads", "1", "--quiet"]) == 0
    assert "fitted 6 SEDs" in capsys.readouterr().out
    result = Table.read(out)
    # MCMC summaries are percentiles of samples: p16 <= p50 <= p84, and the truth is near
    assert np.all(result["log_mass_p16"] <= result["log_mass_p50"])
    assert np.all(result["log_mass_p50"] <= result["log_mass_p84"])
    half = 0.5 * (result["log_mass_p84"] - result["log_mass_p16"])
    assert np.all(np.abs(result["log_mass_p50"] - params["log_mass"]) < 3 * half + 0.1)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::pixedfit.fitting.MCMCShortChainWarning")
def test_fit_with_mcmc_stopping_on_the_autocorrelation_time(catalog, tmp_path, capsys):
    """Without --nsteps the chain stops on the autocorrelation criterion, at --max-steps at
    the latest (here reached: the fits say converged = False); --no-refine starts the
    walkers from the library."""
    from pixedfit.fitting import ResultStore

    _base, lib_path, path, _ = catalog
    out = tmp_path / "mcmc.csv"
    assert main(["fit", str(path), "--library", str(lib_path), "--filters", ",".join(FILTERS),
                 "--out", str(out), "--method", "mcmc", "--nwalkers", "16", "--max-steps",
                 "200", "--seed", "3", "--threads", "1", "--quiet", "--no-refine",
                 "--store", str(tmp_path / "store")]) == 0
    res = ResultStore(tmp_path / "store").load("g1")
    d = res.diagnostics
    assert d["stop"] == "autocorr" and d["nsteps"] == 200 and d["start"] == "library"
    assert res.converged is False and res.rounds == 2
    with pytest.raises(SystemExit):
        main(["fit", str(path), "--library", str(lib_path), "--filters", ",".join(FILTERS),
              "--out", str(out), "--method", "mcmc", "--max-steps", "0"])
    assert "--max-steps" in capsys.readouterr().err


def test_fit_errors_are_reported(catalog, tmp_path, capsys):
    _base, lib_path, path, _ = catalog
    assert main(["fit", str(path), "--library", str(lib_path), "--filters", "sdss_g,nope_band",
                 "--out", str(tmp_path / "o.fits")]) == 2
    assert "lacks the columns" in capsys.readouterr().err
    assert main(["models", "generate", "--n", "10", "--out", str(tmp_path / "x.h5"),
                 "--range", "log_fagn=-2,-1"]) == 2
    assert "does not use" in capsys.readouterr().err


@pytest.mark.slow
def test_mpi_ranks_give_identical_results(catalog, tmp_path):
    pytest.importorskip("mpi4py", reason="mpi4py not installed (pip install 'pixedfit[mpi]')")
    mpiexec = Path(sys.executable).with_name("mpiexec")
    mpiexec = str(mpiexec) if mpiexec.exists() else shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("no mpiexec next to the interpreter or on PATH")
    _base, lib_path, path, _ = catalog
    args = ["-m", "pixedfit.cli", "fit", str(path), "--library", str(lib_path), "--filters",
            ",".join(FILTERS), "--quiet", "--threads", "1"]
    subprocess.run([sys.executable, *args, "--out", str(tmp_path / "one.fits")], check=True,
                   capture_output=True, timeout=300)
    proc = subprocess.run([mpiexec, "-n", "2", sys.executable, *args, "--out",
                           str(tmp_path / "two.fits")], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    one, two = Table.read(tmp_path / "one.fits"), Table.read(tmp_path / "two.fits")
    for col in one.colnames:
        if one[col].dtype.kind == "f":
            np.testing.assert_array_equal(one[col], two[col])


@pytest.mark.slow
def test_mpi_library_generation_matches_serial(tmp_path):
    pytest.importorskip("mpi4py", reason="mpi4py not installed (pip install 'pixedfit[mpi]')")
    mpiexec = Path(sys.executable).with_name("mpiexec")
    mpiexec = str(mpiexec) if mpiexec.exists() else shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("no mpiexec next to the interpreter or on PATH")
    args = ["-m", "pixedfit.cli", "models", "generate", "--n", "700", "--sfh-form", "0",
            "--no-nebular", "--seed", "5", "--quiet", "--threads", "1", "--chunk", "100"]
    subprocess.run([sys.executable, *args, "--out", str(tmp_path / "one.h5")], check=True,
                   capture_output=True, timeout=300)
    proc = subprocess.run([mpiexec, "-n", "2", sys.executable, *args, "--out",
                           str(tmp_path / "two.h5")], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    one, two = read_library(tmp_path / "one.h5"), read_library(tmp_path / "two.h5")
    np.testing.assert_array_equal(one.table()[1], two.table()[1])
    assert one.seed == two.seed == 5


def test_errors_inside_the_fits_name_the_flag(catalog, tmp_path, capsys):
    _base, lib_path, path, _params = catalog
    out = tmp_path / "o.fits"
    assert main(["fit", str(path), "--library", str(lib_path), "--filters",
                 ",".join(FILTERS), "--out", str(out), "--method", "mcmc", "--nwalkers", "4",
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pixedfit: error: --nwalkers must be >= 2 x the number")
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def _jansky_catalog(path, catalog_path):
    """The f_λ catalogue written in Jy as WISE quotes W1 (ν⁻², i.e. flat f_λ, at the
    isophotal 3.3526 µm: F_ν = f_λ λ₀² / c) and the AB bands at their pivot wavelengths."""
    from pixedfit.filters import cwave_filters

    table = Table.read(catalog_path)
    lam = {f: (33526.0 if f == "wise_w1" else cwave_filters(f)) for f in FILTERS}
    for f in FILTERS:
        for col in (f, f"{f}_err"):
            table[col] = table[col] * lam[f] ** 2 / 2.99792458e18 / 1e-23
    table.write(path)
    return path


def test_jansky_catalogue_in_the_survey_convention(catalog, tmp_path):
    """--unit Jy reads WISE W1 in WISE's convention by default (0.93 % brighter in f_λ than
    at the pivot), AB bands at the pivot; --jy-convention pivot converts all at the pivot."""
    from pixedfit.cli.fit import _read_catalog

    _base, _lib, path, _params = catalog
    jy = _jansky_catalog(tmp_path / "jy.ecsv", path)
    _, flam, flam_err, *_ = _read_catalog(str(path), FILTERS, "erg/s/cm2/A", "z", None)
    _, f, e, *_ = _read_catalog(str(jy), FILTERS, "Jy", "z", None)
    np.testing.assert_allclose(f, flam, rtol=1e-12, atol=0)  # NaN (sdss_u row 2) included
    np.testing.assert_allclose(e, flam_err, rtol=1e-12, atol=0)
    _, f, e, *_ = _read_catalog(str(jy), FILTERS, "Jy", "z", None, jy_convention="pivot")
    w1 = FILTERS.index("wise_w1")
    others = [b for b in range(len(FILTERS)) if b != w1]
    np.testing.assert_allclose(f[:, others], flam[:, others], rtol=1e-12, atol=0)
    np.testing.assert_allclose(f[:, w1] / flam[:, w1], 1 / 1.0093, rtol=2e-4, atol=0)


def test_jy_convention_recorded_in_the_output_table(catalog, tmp_path, capsys):
    _base, lib_path, path, _params = catalog
    jy = _jansky_catalog(tmp_path / "jy.ecsv", path)
    common = ["fit", str(jy), "--library", str(lib_path), "--filters", ",".join(FILTERS),
              "--unit", "Jy", "--threads", "1", "--quiet"]
    assert main([*common, "--out", str(tmp_path / "jy.fits")]) == 0
    result = Table.read(tmp_path / "jy.fits")
    assert result.meta["FLUXUNIT"] == "Jy" and result.meta["JYCONV"] == "instrument"
    assert len(result) == 6 and np.all(np.isfinite(result["log_mass_p50"]))
    # CSV holds no metadata: the settings are columns
    assert main([*common, "--jy-convention", "pivot", "--out", str(tmp_path / "p.csv")]) == 0
    csv = Table.read(tmp_path / "p.csv")
    assert set(csv["jy_convention"]) == {"pivot"} and set(csv["flux_unit"]) == {"Jy"}
    ecsv_out = tmp_path / "p.ecsv"
    assert main([*common, "--jy-convention", "pivot", "--out", str(ecsv_out)]) == 0
    assert Table.read(ecsv_out).meta["JYCONV"] == "pivot"
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main([*common, "--jy-convention", "colour", "--out", str(tmp_path / "x.fits")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--jy-convention: invalid choice: 'colour'" in err
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    assert "--jy-convention {instrument,pivot}" in capsys.readouterr().out
