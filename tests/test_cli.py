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
