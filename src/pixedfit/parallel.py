"""Threads inside kernels and MPI across SEDs, bins or galaxies.

* Threads: every function with a ``threads=`` argument reads it the same way, through
  :func:`resolve_threads`: ``None``, 0 or any negative number means all the cores available
  to the process (its CPU affinity; ``OMP_NUM_THREADS`` can lower it), and a positive count
  is capped at that number of cores (:func:`available_cores`), so an oversized request
  neither fails nor slows the run down. The C++ kernels apply the same cap themselves when
  called directly from :mod:`pixedfit._core`. Results never depend on the thread count.
* MPI: pixedfit never launches ``mpirun`` itself. Run your script or the ``pixedfit``
  command under ``mpiexec -n N`` and pass a pool from :func:`get_pool` (or let the drivers
  pick one). The pools follow emcee's convention — an object with ``.map(func, tasks)`` —
  but work in SPMD style: every rank calls ``map`` with the same task list, computes the
  tasks ``rank, rank + size, ...`` and all ranks receive every result, in task order. The
  result is therefore identical for any number of ranks. Use ``pool.is_master`` to write
  files from one rank only. ``map_balanced`` does the same with the tasks handed out as
  ranks come free (when all ranks share one node), for tasks whose cost varies: the fits.

mpi4py is optional (``pip install "pixedfit[mpi]"`` installs it with the ``mpich`` wheel,
so no system MPI is needed); it is imported only when an MPI launch is detected or asked
for.
"""

from __future__ import annotations

import functools
import os
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar

import numpy as np

__all__ = [
    "MPIPool",
    "Parallelism",
    "Pool",
    "SerialPool",
    "TaskError",
    "available_cores",
    "get_pool",
    "mpi_launched",
    "resolve_threads",
    "single_blas_thread",
    "thread_count",
    "with_single_blas_thread",
]

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")

_BLAS_LOCAL = threading.local()


@dataclass(frozen=True, kw_only=True)
class Parallelism:
    """How a run of work is spread: OpenMP threads per process, an MPI pool, a progress bar.

    Attributes
    ----------
    threads : int, optional
        Threads per process (see :func:`resolve_threads`; None: all available cores).
    pool : SerialPool or MPIPool, optional
        Distributes the work over MPI ranks (see :func:`get_pool`); None: this process.
    progress : bool
        Show a progress bar (only on a terminal).
    """

    threads: int | None = None
    pool: Any = None
    progress: bool = False


@contextmanager
def single_blas_thread() -> Iterator[None]:
    """Run the enclosed code with BLAS (OpenBLAS, MKL, …) on one thread.

    OpenBLAS splits a matrix product differently with its thread count and rounds it
    differently, and the samplers magnify rounding about 10⁶ times (a Student-t draw far in
    a tail); so without this a fit would depend on ``OMP_NUM_THREADS`` (measured: a
    DustPedia mass moved by 4e-9 dex, a few fits took other paths). The fits' matrices are
    small, so one BLAS thread costs nothing. Nests; each Python thread sets and restores
    its own limit (OpenBLAS 0.3.31 keeps the setting per calling thread once a thread has
    set it; threads started inside see the limit of the thread that started them).
    """
    from threadpoolctl import threadpool_limits

    depth = getattr(_BLAS_LOCAL, "depth", 0)
    if depth == 0:
        _BLAS_LOCAL.limiter = threadpool_limits(limits=1, user_api="blas")
    _BLAS_LOCAL.depth = depth + 1
    try:
        yield
    finally:
        _BLAS_LOCAL.depth -= 1
        if _BLAS_LOCAL.depth == 0:
            _BLAS_LOCAL.limiter.restore_original_limits()
            _BLAS_LOCAL.limiter = None


def with_single_blas_thread(func: Callable[P, R]) -> Callable[P, R]:
    """Decorator: ``func`` runs inside :func:`single_blas_thread` (its signature kept)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with single_blas_thread():
            return func(*args, **kwargs)

    return wrapper

# Environment variables set by common MPI launchers (MPICH/Hydra, Open MPI, PMIx, Slurm).
_LAUNCH_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")


def available_cores() -> int:
    """Number of CPU cores this process may run on (its affinity mask where the system
    has one, else ``os.cpu_count()``), at least 1: the cap of every ``threads`` argument."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def resolve_threads(threads: int | None) -> int:
    """Read a ``threads`` argument the one way every function of the package does.

    Parameters
    ----------
    threads : int or None
        None, 0 or a negative number: all available cores; a positive count is capped at
        :func:`available_cores`.

    Returns
    -------
    int
        0 for "all cores" (the kernels then use every core they may), otherwise the count,
        between 1 and :func:`available_cores`.

    Raises
    ------
    TypeError
        If ``threads`` is not an int or None (a float or a string is refused rather than
        truncated).
    """
    if threads is None:
        return 0
    if isinstance(threads, bool) or not isinstance(threads, int | np.integer):
        raise TypeError(f"threads must be an int or None (None, 0 or < 0 = all cores), "
                        f"got {threads!r}")
    if threads <= 0:
        return 0
    return min(int(threads), available_cores())


def thread_count(threads: int | None) -> int:
    """The number of threads :func:`resolve_threads` stands for (all cores resolved)."""
    return resolve_threads(threads) or available_cores()


class Pool(Protocol):
    """What the drivers need from a pool."""

    rank: int
    size: int

    @property
    def is_master(self) -> bool: ...

    def map(self, func: Callable[[T], R], tasks: Iterable[T]) -> list[R]:
        """Results of ``func`` over ``tasks``, in task order, on every rank.

        Parameters
        ----------
        func : callable
            Called on one task.
        tasks : iterable
            The tasks.

        Returns
        -------
        list
        """
        ...

    def barrier(self) -> None: ...


class TaskError(RuntimeError):
    """A task failed on some rank; raised on every rank so none is left waiting."""


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


class SerialPool:
    """A pool of one process: ``map`` is a plain loop."""

    rank = 0
    size = 1

    @property
    def is_master(self) -> bool:
        """Always True."""
        return True

    def map(self, func: Callable[[T], R], tasks: Iterable[T]) -> list[R]:
        """Results of ``func`` over ``tasks``, in order.

        Parameters
        ----------
        func : callable
            Called on one task.
        tasks : iterable
            The tasks.

        Returns
        -------
        list

        Raises
        ------
        TaskError
            Naming the first task that failed (as :class:`MPIPool` does), chained to the
            original exception.
        """
        results = []
        for index, task in enumerate(tasks):
            try:
                results.append(func(task))
            except Exception as exc:
                raise TaskError(f"task {index} failed on rank 0: {_describe(exc)}") from exc
        return results

    def map_balanced(self, func: Callable[[T], R], tasks: Iterable[T]) -> list[R]:
        """The same as :meth:`map` (one process has nothing to balance).

        Parameters
        ----------
        func : callable
            Called on one task.
        tasks : iterable
            The tasks.

        Returns
        -------
        list
        """
        return self.map(func, tasks)

    def barrier(self) -> None:
        """Nothing to wait for."""

    def __repr__(self) -> str:
        return "SerialPool()"


class _FileCounter:
    """A counter shared by the processes of one node: an 8-byte file that each process
    locks (``fcntl.flock``), reads and increments in turn. It is made in the temporary
    directory by :meth:`create` and removed by whoever created it (:meth:`remove`)."""

    def __init__(self, path: str):
        self.path = path
        self._fd = os.open(path, os.O_RDWR)

    @staticmethod
    def create() -> str:
        """A new counter file holding 0; returns its path."""
        import tempfile

        fd, path = tempfile.mkstemp(prefix="pixedfit-tasks-", suffix=".counter")
        try:
            os.write(fd, (0).to_bytes(8, "little"))
        finally:
            os.close(fd)
        return path

    def take(self) -> int:
        """The counter's value, which is then incremented (atomically across processes)."""
        import fcntl

        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            value = int.from_bytes(os.pread(self._fd, 8, 0), "little")
            os.pwrite(self._fd, (value + 1).to_bytes(8, "little"), 0)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        return value

    def close(self) -> None:
        """Close this process's handle."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def remove(self) -> None:
        """Delete the file (by the process that created it, once all have closed it)."""
        self.remove_path(self.path)

    @staticmethod
    def remove_path(path: str) -> None:
        """Delete a counter file made by :meth:`create`, if it is still there."""
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


class MPIPool:
    """SPMD pool over an MPI communicator (default ``MPI.COMM_WORLD``).

    Every rank must call :meth:`map` with the same tasks; rank r evaluates tasks
    r, r + size, ... and the results are exchanged so that every rank returns the full,
    ordered list. An exception in any task is re-raised on every rank as
    :class:`TaskError` naming the task, so no rank hangs.
    """

    def __init__(self, comm: Any = None):
        try:
            from mpi4py import MPI
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "MPI needs mpi4py: pip install 'pixedfit[mpi]' (brings the mpich wheel)"
            ) from exc
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank = int(self.comm.Get_rank())
        self.size = int(self.comm.Get_size())

    @property
    def is_master(self) -> bool:
        """True on rank 0."""
        return self.rank == 0

    def map(self, func: Callable[[T], R], tasks: Iterable[T]) -> list[R]:
        """Results of ``func`` over ``tasks``, in task order, on every rank (rank r computes
        tasks r, r + size, ...: task 0 always runs on rank 0).

        Parameters
        ----------
        func : callable
            Called on one task; its results must pickle.
        tasks : iterable
            The tasks (every rank must pass the same ones).

        Returns
        -------
        list
        """
        items = list(tasks)
        return self._gather(len(items), [self._run(func, items, index)
                                         for index in range(self.rank, len(items), self.size)])

    def map_balanced(self, func: Callable[[T], R], tasks: Iterable[T]) -> list[R]:
        """The results of :meth:`map`, with the tasks handed out as ranks come free.

        When every rank runs on one node, a task counter in a small file that all ranks
        lock in turn (``fcntl``; MPI's one-sided atomics would wait for the rank holding
        the counter to enter MPI, which a rank inside a fit does not) gives each rank its
        next task the moment it finishes one, so ranks that drew cheap tasks take more;
        the results, gathered in task order, are the same as :meth:`map`'s. Across nodes,
        or where no such file can be shared, the tasks are assigned as in :meth:`map`.
        Which rank runs a task is then unknown in advance: do not use it for a task that
        must run on rank 0.

        Parameters
        ----------
        func : callable
            Called on one task; its results must pickle.
        tasks : iterable
            The tasks (every rank must pass the same ones).

        Returns
        -------
        list
        """
        items = list(tasks)
        counter = self._counter()
        if counter is None:
            return self.map(func, items)
        mine = []
        try:
            while (index := counter.take()) < len(items):
                mine.append(self._run(func, items, index))
        finally:
            counter.close()
            self.comm.Barrier()  # every rank is done with the file before it goes
            if self.rank == 0:
                counter.remove()
        return self._gather(len(items), mine)

    def _counter(self) -> _FileCounter | None:
        """A task counter shared by all ranks, or None when they span several nodes, have
        no ``fcntl`` or cannot open one file (collective)."""
        from mpi4py import MPI

        try:
            import fcntl  # noqa: F401  (POSIX only: elsewhere the static assignment)
        except ImportError:
            together = False
        else:
            node = self.comm.Split_type(MPI.COMM_TYPE_SHARED)
            try:
                together = node.Get_size() == self.size
            finally:
                node.Free()
        if not self.comm.allreduce(int(together), op=MPI.MIN):
            return None
        path = None
        if self.rank == 0:
            try:
                path = _FileCounter.create()
            except OSError:
                path = None
        path = self.comm.bcast(path, root=0)
        if path is None:
            return None
        try:
            counter: _FileCounter | None = _FileCounter(path)
        except OSError:
            counter = None
        if not self.comm.allreduce(int(counter is not None), op=MPI.MIN):
            if counter is not None:
                counter.close()
            self.comm.Barrier()
            if self.rank == 0:
                _FileCounter.remove_path(path)
            return None
        return counter

    def _run(self, func: Callable[[T], R], items: list[T], index: int
             ) -> tuple[int, int, bool, Any]:
        try:
            return index, self.rank, True, func(items[index])
        except Exception as exc:  # re-raised on every rank by _gather
            return index, self.rank, False, _describe(exc)

    def _gather(self, n: int, mine: list[tuple[int, int, bool, Any]]) -> list[Any]:
        """Every rank's (index, rank, ok, value) records, in task order on every rank; a
        failed task raises TaskError on every rank (the first failed task is named)."""
        results: list[Any] = [None] * n
        failures = []
        for part in self.comm.allgather(mine):
            for index, rank, ok, value in part:
                if ok:
                    results[index] = value
                else:
                    failures.append((index, rank, value))
        if failures:
            index, rank, detail = min(failures)
            raise TaskError(f"task {index} failed on rank {rank}: {detail}")
        return results

    def barrier(self) -> None:
        """Wait for every rank."""
        self.comm.Barrier()

    def __repr__(self) -> str:
        return f"MPIPool(rank={self.rank}, size={self.size})"


def mpi_launched() -> bool:
    """True when this process was started by an MPI launcher with more than one rank."""
    for var in _LAUNCH_VARS:
        value = os.environ.get(var)
        if value is not None:
            try:
                return var in ("PMIX_RANK",) or int(value) > 1
            except ValueError:
                return True
    return False


def get_pool(mpi: bool | None = None) -> SerialPool | MPIPool:
    """The pool to use: MPI when asked for, or when launched by ``mpiexec -n N`` (N > 1).

    Parameters
    ----------
    mpi : bool, optional
        True forces an :class:`MPIPool` (error without mpi4py), False a
        :class:`SerialPool`; None detects an MPI launch.
    """
    if mpi is False or (mpi is None and not mpi_launched()):
        return SerialPool()
    pool = MPIPool()
    if pool.size == 1 and mpi is None:
        return SerialPool()
    return pool
