"""The pixedfit command line."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

import pixedfit
from pixedfit.cli import main


def test_version_in_a_subprocess():
    out = subprocess.run(
        [sys.executable, "-m", "pixedfit.cli", "--version"], capture_output=True, text=True,
        check=True,
    )
    assert out.stdout.strip() == f"pixedfit {pixedfit.__version__}"


def test_filters_list_and_show(capsys):
    assert main(["filters", "list", "--match", "GALEX"]) == 0
    names = capsys.readouterr().out.split()
    assert {"galex_fuv", "galex_nuv", "galex_FUV", "galex_NUV"} <= set(names)
    assert main(["filters", "show", "sdss_u"]) == 0
    out = capsys.readouterr().out
    assert "pivot wavelength: 355" in out


def test_filters_add_rename_remove(tmp_path, capsys):
    curve = tmp_path / "curve.txt"
    curve.write_text("# wave trans\n6000 0\n6100 1\n6200 0\n")
    assert main(["filters", "add", "cli_nb", str(curve), "--cwave", "6100"]) == 0
    assert main(["filters", "rename", "cli_nb", "cli_nb2"]) == 0
    assert main(["filters", "show", "cli_nb2"]) == 0
    assert "6100.00" in capsys.readouterr().out
    assert main(["filters", "remove", "cli_nb2"]) == 0
    assert main(["filters", "show", "cli_nb2"]) == 2
    assert "unknown filter" in capsys.readouterr().err


def test_bad_curve_file_is_a_clean_error(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("6000 0\n5900 1\n6200 0\n")
    assert main(["filters", "add", "bad_nb", str(bad)]) == 2
    assert "strictly increasing" in capsys.readouterr().err
    assert main(["filters", "add", "bad_nb", str(tmp_path / "missing.txt")]) == 2


def _run_cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pixedfit.cli", *args], capture_output=True,
                          text=True, timeout=300, **kw)


def _sub(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return actions[0].choices[name]


def test_output_into_a_closed_pipe_ends_quietly():
    # `pixedfit filters list | head`: the reader goes away before the list is written
    proc = subprocess.Popen([sys.executable, "-m", "pixedfit.cli", "filters", "list"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 141
    assert err == ""  # no "[Errno 32] Broken pipe", no "Exception ignored" at exit


def test_help_documents_every_fit_option_and_the_catalogue_columns():
    from pixedfit.cli import build_parser

    fit = _sub(build_parser(), "fit")
    undocumented = [a.option_strings for a in fit._actions if a.help in (None, "")]
    assert undocumented == []
    text = fit.format_help()
    assert "module docstring" not in text
    for words in ("--likelihood", "Student-t", "--dof", "--threads", "<filter>_err",
                  "redshift", "id ", "pivot"):
        assert words in text, words


def test_models_generate_help_lists_the_range_names():
    from pixedfit.cli import build_parser
    from pixedfit.cli.fit import RANGE_DEFAULTS
    from pixedfit.library import GENERATION_RANGES

    assert RANGE_DEFAULTS == GENERATION_RANGES  # the help's copy is the library's table
    gen = _sub(_sub(build_parser(), "models"), "generate")
    text = " ".join(gen.format_help().split())
    for name, (lo, hi) in GENERATION_RANGES.items():
        assert f"{name} [{lo:g}, {hi:g}]" in text
    undocumented = [a.option_strings for a in gen._actions if a.help in (None, "")]
    assert undocumented == []


def test_bad_values_name_the_flag(tmp_path):
    out = str(tmp_path / "lib.h5")
    for args, flag in ((["--chunk", "0"], "--chunk"), (["--n", "-5"], "--n"),
                       (["--threads", "-1"], "--threads"),
                       (["--range", "log_agee=0,1"], "--range")):
        argv = ["models", "generate", "--n", "10", "--out", out, *args]
        proc = _run_cli(*argv)
        assert proc.returncode == 2
        assert f"argument {flag}" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    proc = _run_cli("models", "generate", "--n", "10", "--out", out, "--range", "log_age=0")
    assert "log_age" in proc.stderr and "NAME=LO,HI" in proc.stderr  # shows the names
    assert not (tmp_path / "lib.h5").exists()


def test_user_message_names_flags_and_configuration_keys():
    from pixedfit.cli.fit import FLAGS
    from pixedfit.cli.main import _config_keys, user_message
    from pixedfit.parallel import SerialPool, TaskError

    def fail(_):
        try:
            raise ValueError("dof must be > 0, got 0.0")
        except ValueError as exc:
            raise RuntimeError(f"SED 'a': {exc}") from exc

    with pytest.raises(TaskError) as info:
        SerialPool().map(fail, [0])
    assert user_message(info.value, FLAGS) == "--dof must be > 0, got 0.0"
    keys = _config_keys()
    assert keys["error_floor"] == "fitting.error_floor"
    assert keys["snr_target"] == "binning.snr_target"
    msg = user_message(ValueError("error_floor must be a fraction >= 0, got -1.0"), keys)
    assert msg == "fitting.error_floor must be a fraction >= 0, got -1.0"
    # words inside other names or text are left alone
    assert user_message(ValueError("the dof_extra must be 1"), FLAGS) == "the dof_extra must be 1"


def test_no_progress_bar_in_a_redirected_log(tmp_path):
    log = tmp_path / "log.txt"
    with open(log, "w") as handle:
        proc = subprocess.run([sys.executable, "-m", "pixedfit.cli", "models", "generate",
                               "--n", "40", "--chunk", "20", "--out", str(tmp_path / "l.h5")],
                              stdout=handle, stderr=subprocess.STDOUT, timeout=300)
    assert proc.returncode == 0
    text = log.read_text()
    assert "wrote 40 models" in text
    assert "\r" not in text and "chunk/s" not in text and "it/s" not in text


def test_instruments_list_and_show(capsys):
    assert main(["instruments", "list", "--survey", "des"]) == 0
    out = capsys.readouterr().out
    assert "ctio_decam_g" in out and "MAGZERO" in out and "CTIO Blanco DECam" in out
    assert "sdss_r" not in out
    assert main(["instruments", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("galex_fuv", "hsc_i", "hst_wfpc2_f814w", "jwst_miri_f770w", "euclid_vis"):
        assert name in out
    assert main(["instruments", "show", "decam_g"]) == 0
    out = capsys.readouterr().out
    assert "entry ctio_decam_g" in out and "0.263" in out and "sources: DECam" in out
    assert main(["instruments", "show", "hst_wfpc2_f814w"]) == 0
    assert "not built in (add it: pixedfit filters add" in capsys.readouterr().out
    # the survey's flux convention and the wavelength of its Jy → f_λ conversion
    assert main(["instruments", "show", "wise_w3"]) == 0
    out = capsys.readouterr().out
    assert "ref_alpha: -2.0" in out and "Jy -> f_lambda at: 115608.0 Angstrom" in out
    assert main(["instruments", "show", "decam_gg"]) == 2
    err = capsys.readouterr().err
    assert "Close matches: decam_g" in err and "Traceback" not in err


def test_filters_list_matches_survey_names(capsys):
    """The defect: ``--match des`` did not reveal the DECam curves."""
    assert main(["filters", "list", "--match", "des"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert {"ctio_decam_g", "decam_g", "decam_z"} <= set(names)
    assert main(["filters", "list", "--match", "ukidss"]) == 0
    assert {"wfcam_k", "ukirt_wfcam_K"} <= set(capsys.readouterr().out.split())
    assert main(["filters", "show", "decam_r"]) == 0
    assert "family: CTIO Blanco DECam" in capsys.readouterr().out
