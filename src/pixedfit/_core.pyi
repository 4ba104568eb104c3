"""Type stubs of the compiled extension pixedfit._core (private API)."""

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
