"""Thread arguments and the MPI pool (run under mpiexec when mpi4py is available)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from pixedfit import parallel
from pixedfit.parallel import (
    SerialPool,
    available_cores,
    get_pool,
    mpi_launched,
    resolve_threads,
)


def test_resolve_threads(monkeypatch):
    assert resolve_threads(None) == 0
    # <= 0 means all cores everywhere; a count is capped at the available cores
    assert resolve_threads(0) == resolve_threads(-1) == resolve_threads(-100) == 0
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: set(range(4)))
    assert available_cores() == 4
    assert resolve_threads(3) == 3
    assert resolve_threads(np.int64(2)) == 2
    assert resolve_threads(5) == resolve_threads(10**6) == 4
    with pytest.raises(TypeError, match="threads"):
        resolve_threads(1.5)
    with pytest.raises(TypeError, match="threads"):
        resolve_threads(True)


def test_serial_pool_and_autodetection(monkeypatch):
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"):
        monkeypatch.delenv(var, raising=False)
    assert not mpi_launched()
    pool = get_pool()
    assert isinstance(pool, SerialPool) and pool.is_master
    assert pool.map(lambda x: x * x, range(5)) == [0, 1, 4, 9, 16]
    monkeypatch.setenv("PMI_SIZE", "1")
    assert not mpi_launched()
    monkeypatch.setenv("PMI_SIZE", "4")
    assert mpi_launched()


SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from pixedfit.parallel import get_pool, TaskError
    from pixedfit.filters import photometry

    pool = get_pool()
    wave = np.geomspace(1000, 30000, 3000)

    def task(i):
        flux = (wave / 5000.0) ** (-1 + 0.1 * i)
        return photometry(wave, flux, ["sdss_g", "2mass_k"], threads=1).tolist()

    out = pool.map(task, range(7))
    try:
        pool.map(lambda i: 1 // (i - 3), range(5))
        err = None
    except TaskError as exc:
        err = str(exc)
    if pool.is_master:
        print(json.dumps({"size": pool.size, "out": out, "err": err}))
    """
)


def test_mpi_pool_gives_the_serial_result(tmp_path: Path):
    pytest.importorskip("mpi4py", reason="mpi4py not installed (pip install 'pixedfit[mpi]')")
    mpiexec = Path(sys.executable).with_name("mpiexec")
    mpiexec = str(mpiexec) if mpiexec.exists() else shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("no mpiexec found next to the Python interpreter or on PATH")
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    proc = subprocess.run([mpiexec, "-n", "2", sys.executable, str(script)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    import json

    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["size"] == 2
    serial = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=120, check=True)
    expected = json.loads(serial.stdout.strip().splitlines()[-1])
    assert result["out"] == expected["out"]  # bit-identical for 1 and 2 ranks
    assert "task 3 failed on rank 1" in result["err"] and "ZeroDivisionError" in result["err"]
    assert "task 3 failed on rank 0" in expected["err"]
