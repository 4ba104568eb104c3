"""The pixedfit command line."""

from __future__ import annotations

import subprocess
import sys

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
    assert "central wavelength: 355" in out


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
