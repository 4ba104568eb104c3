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

# --- SPS forward model (bind_sps.cpp)
SPS_N_PARAMS: int
SPS_N_DERIVED: int

class CSPGrid:
    def __init__(self, arrays: dict[str, object]) -> None: ...
    @property
    def nwave(self) -> int: ...
    @property
    def nage(self) -> int: ...
    @property
    def nz(self) -> int: ...

def csp_spectra(
    grid: CSPGrid,
    params: NDArray[np.float64],
    sfh_form: int,
    dust_law: int,
    duste: bool,
    nebular: bool,
    agn: bool,
    dust1_index: float,
    t_bc: float,
    components: bool,
    threads: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64] | None, NDArray[np.float64]]: ...
def csp_photometry(
    grid: CSPGrid,
    params: NDArray[np.float64],
    sfh_form: int,
    dust_law: int,
    duste: bool,
    nebular: bool,
    agn: bool,
    dust1_index: float,
    t_bc: float,
    trans: NDArray[np.float64] | None,
    scale: float,
    starts: NDArray[np.int64],
    offsets: NDArray[np.int64],
    weights: NDArray[np.float64],
    line_weights: NDArray[np.float64] | None,
    threads: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]: ...
def sfh_bin_masses(
    form: int, shape: NDArray[np.float64], age: float, edges: NDArray[np.float64], t_bc: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], float]: ...
def sfh_mass_between(form: int, shape: NDArray[np.float64], t_lo: float, t_hi: float) -> float: ...
def sfh_first_moment(form: int, shape: NDArray[np.float64], age: float) -> float: ...
def smooth_gaussian(
    wave: NDArray[np.float64], flux: NDArray[np.float64], sigma: NDArray[np.float64],
    threads: int = 0,
) -> NDArray[np.float64]: ...
