"""The forward model and the adaptive sampler's kernels give the same bits on their
AVX-512 and AVX2 paths, and the model's kernels leave the caller's floating-point mode alone.

The SSP block sums, the dust transmissions, the nebular line sums, the Gaussian-mixture EM
and the proposal densities have variants for AVX-512 CPUs (16 floats, 8 doubles per
vector), chosen at run time unless ``PIXEDFIT_DISABLE_AVX512`` is set; both do the same
operations in the same order. The block sums treat subnormal floats as zero
(MXCSR's DAZ and FTZ bits for their scope: on Intel CPUs every vector instruction that
meets one took a microcode assist, and the projected knot rows hold some), and must put
the mode back: numpy in the calling thread still computes with subnormals.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pixedfit
from pixedfit.sps import SEDModel

BANDS = ["galex_fuv", "sdss_u", "sdss_r", "2mass_k", "wise_w1", "wise_w3", "spitzer_mips_24",
         "herschel_pacs_100", "herschel_spire_250", "herschel_spire_500"]

# Prints a digest of the model's photometry on every path (the knots, the coarse grid, a
# redshift grid), of its rest-frame spectra, of an EM mixture fit, of a proposal's log
# densities and of box kernels' in-box shares (point counts that leave partial blocks and
# vectors), for the parent to compare.
_SCRIPT = """
import hashlib, numpy as np
from pixedfit import _core
from pixedfit.sps import SEDModel
m = SEDModel(sfh_form=1, dust_law=0, dust_emission=True, add_neb_emission=True)
rng = np.random.default_rng(5)
n = 37
p = {"logzsol": rng.uniform(-1.9, 0.19, n), "log_tau": rng.uniform(-1, 1.5, n),
     "log_age": rng.uniform(-1, 1.1, n), "dust1": rng.uniform(0, 3, n),
     "dust2": rng.uniform(0, 3, n), "dust_index": rng.uniform(-2, 0.3, n),
     "gas_logu": rng.uniform(-4, -1, n), "log_mass": np.full(n, 10.0)}
bands = %r
out = [m.photometry(p, z=0.005, filters=bands, knots=True, threads=1),
       m.photometry(p, z=0.005, filters=bands, threads=2),
       m.photometry_zgrid(p, np.array([0.01, 0.3]), bands, threads=1),
       m.rest_spectrum(p).flux]
d = 6
x = rng.standard_normal((701, d)) @ rng.standard_normal((d, d))
w = rng.random(701)
w /= w.sum()
cov = np.cov(x.T)
em = _core.em_gaussian_mixture(x, w, x[:5].copy(), cov / 5 ** (2 / d), np.full(d, 1e-4),
                               200.0, 2.0 * d, 8, 1e-12)
assert em[3] > 1
out += list(em[:3])
chol = np.linalg.cholesky(cov)
u = 1 / (1 + np.exp(-x[:4]))
density = _core.ProposalDensity(20.0, np.stack([chol, 0.5 * chol]), np.array([0, 3, 5]),
                                x[10:15].copy(), np.log(np.full(5, 0.18)),
                                np.stack([0.2 * np.eye(d)] * 4), u, np.full(4, -1.5),
                                np.log(0.05))
y = rng.standard_normal((203, d)) * 2
out.append(density.log_density(y, -np.sum(np.logaddexp(0, y) + np.logaddexp(0, -y), axis=1)))
out.append(_core.box_fractions(np.stack([0.3 * chol, 0.1 * chol]), u[:2],
                               rng.standard_normal((133, d))))
h = hashlib.sha256()
for a in out:
    h.update(np.ascontiguousarray(np.asarray(a, dtype=np.float64)).tobytes())
print(h.hexdigest())
"""


def _digest(env_extra: dict[str, str]) -> str:
    env = {**os.environ, **env_extra}
    # the pixedfit this process imported (installed, or a source tree with its extension)
    here = str(Path(pixedfit.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([here, env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", _SCRIPT % (BANDS,)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _has_avx512() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return all(f" {f}" in flags for f in ("avx512f", "avx512vl", "avx512bw", "avx512dq"))


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64") or not _has_avx512(),
                    reason="no AVX-512 on this CPU: the two paths are the same path here")
def test_avx512_and_avx2_paths_give_the_same_bits():
    """Unset, empty or "0", ``PIXEDFIT_DISABLE_AVX512`` leaves the AVX-512 path on; "1"
    turns it off: the same bits either way."""
    fast = _digest({"PIXEDFIT_DISABLE_AVX512": "0"})
    assert fast == _digest({"PIXEDFIT_DISABLE_AVX512": "1"})
    assert fast == _digest({"PIXEDFIT_DISABLE_AVX512": ""})


def test_model_calls_leave_subnormal_arithmetic_on_in_the_calling_thread():
    m = SEDModel(sfh_form=1, dust_law=0, dust_emission=True, add_neb_emission=True)
    p = {"log_age": np.array([0.3, 1.0]), "dust2": np.array([0.5, 2.0]),
         "log_mass": np.array([10.0, 10.0])}
    m.photometry(p, z=0.005, filters=BANDS, knots=True, threads=1)
    m.photometry(p, z=0.005, filters=BANDS, threads=1)
    tiny = np.array([1e-39], dtype=np.float32)  # subnormal in single precision
    assert tiny[0] > 0 and (tiny * np.float32(0.5))[0] > 0
    assert (np.array([1e-310]) * 0.5)[0] > 0  # and in double precision
