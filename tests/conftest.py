"""Shared fixtures: isolated user folders, the shared real-data folder, plotting backend."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

#: Real observations and templates used by tests (outside the repository).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Each test gets empty user data and cache folders (never the real user's)."""
    base = tmp_path_factory.mktemp("pixedfit_user")
    monkeypatch.setenv("PIXEDFIT_DATA_DIR", str(base / "data"))
    # The cache (converted grids) is expensive to rebuild, so it is shared by the session.
    monkeypatch.setenv("PIXEDFIT_CACHE_DIR", str(_session_cache(tmp_path_factory)))
    return base


_CACHE: dict[str, Path] = {}


def _session_cache(factory: pytest.TempPathFactory) -> Path:
    if "cache" not in _CACHE:
        _CACHE["cache"] = factory.mktemp("pixedfit_cache")
    return _CACHE["cache"]


@pytest.fixture(scope="session")
def fit_model():
    """The SED model of the fitting tests' mocks (BC03, delayed-tau SFH, Calzetti dust, no
    nebular emission, one thread): one instance per test process; treat it as read-only."""
    import _sps_shared

    return _sps_shared.model(sfh_form=1, dust_law=1, add_neb_emission=False, threads=1)


@pytest.fixture(scope="session")
def fit_library(fit_model):
    """``fit_library(n, seed, ranges)``: a library of :func:`fit_model`, generated once per
    test process for each (n, seed, ranges); treat it as read-only."""
    import _sps_shared

    return lambda n, seed, ranges: _sps_shared.library(fit_model, n, seed, ranges)


@pytest.fixture
def shared_data() -> Path:
    """Path of ../shared/data; the test is skipped with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (the shared/ folder is absent)")
    return SHARED_DATA
