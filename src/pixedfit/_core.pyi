"""Type stubs of the compiled extension pixedfit._core (private API)."""

from typing import Any

import numpy as np
from numpy.typing import NDArray

def band_weights(
    grid: NDArray[np.float64], fwave: NDArray[np.float64], ftrans: NDArray[np.float64]
) -> tuple[int, NDArray[np.float64]]: ...
def apply_band_weights(
    flux: NDArray[np.float64],
    starts: NDArray[np.int64],
    offsets: NDArray[np.int64],
    weights: NDArray[np.float64],
    threads: int = 0,
) -> NDArray[np.float64]: ...
def max_threads() -> int: ...
def bin_pixels(
    flux: NDArray[np.float64],
    err: NDArray[np.float64],
    region: NDArray[np.uint8],
    ref_band: int,
    snr: NDArray[np.float64],
    r_first: float,
    del_r: float,
    chi2_limit: float,
    sys_factor: float,
    max_radius: float,
    connected: bool,
    shape_test_first_circle: bool,
    absorb_leftover: bool,
    threads: int = 0,
) -> dict[str, Any]: ...
def bin_sums(
    values: NDArray[np.float64],
    bin_map: NDArray[np.int32],
    nbins: int,
    quadrature: bool,
    threads: int = 0,
) -> NDArray[np.float64]: ...
def shape_reduced_chi2(
    f1: NDArray[np.float64], s1: NDArray[np.float64], f2: NDArray[np.float64],
    s2: NDArray[np.float64]
) -> float: ...
