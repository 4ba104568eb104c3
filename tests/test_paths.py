"""Atomic writes: permissions follow the user's umask (they were always 0600)."""

from __future__ import annotations

import contextlib
import os
import stat

import numpy as np
import pytest

from pixedfit._paths import atomic_path
from pixedfit.analysis.plots import save_figure
from pixedfit.cubes import FluxCube
from pixedfit.filters import add_filter


@contextlib.contextmanager
def _umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_atomic_path_follows_umask(tmp_path, mask, expected):
    with _umask(mask):
        with atomic_path(tmp_path / "a.txt") as tmp:
            tmp.write_text("x")
        # replacing an existing file gives the same mode (not the old file's, not 0600)
        os.chmod(tmp_path / "a.txt", 0o600)
        with atomic_path(tmp_path / "a.txt") as tmp:
            tmp.write_text("y")
    assert (tmp_path / "a.txt").read_text() == "y"
    assert _mode(tmp_path / "a.txt") == expected
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]  # no temporary left behind


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "b.txt") as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o027, 0o640)])
def test_package_writers_follow_umask(tmp_path, mask, expected):
    """A flux map (astropy writeto), a figure (matplotlib) and the filter registry (json)."""
    from matplotlib.figure import Figure

    n = 8
    flux = np.ones((2, n, n))
    cube = FluxCube(flux, 0.1 * flux, ["sdss_g", "sdss_r"], region=np.ones((n, n), bool))
    with _umask(mask):
        cube.write(tmp_path / "fluxmap.fits")
        cube.write(tmp_path / "fluxmap.fits", overwrite=True)
        save_figure(Figure(figsize=(1, 1)), tmp_path / "fig.png")
        add_filter("box", [4000.0, 4001.0, 5000.0, 5001.0], [0.0, 1.0, 1.0, 0.0],
                   data_dir=tmp_path / "data")
    for path in (tmp_path / "fluxmap.fits", tmp_path / "fig.png",
                 tmp_path / "data" / "filters.json"):
        assert _mode(path) == expected, path
