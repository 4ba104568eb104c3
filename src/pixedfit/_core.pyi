"""Type stubs of the compiled extension pixedfit._core (private API).

Checked against the built extension by ``python -m mypy.stubtest pixedfit._core`` (.ci/run).
The array arguments are ``py::array_t<T, c_style | forcecast>`` in the bindings: any array-like
is accepted and converted to a C-contiguous array of the named dtype, hence ``ArrayLike``;
the arrays returned are fresh arrays of the dtype shown. The dicts returned are plain dicts
with the fixed keys of the TypedDicts below.
"""

from typing import TypedDict, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

# --- photometry (bind_photometry.cpp)
def band_weights(
    grid: ArrayLike, fwave: ArrayLike, ftrans: ArrayLike
) -> tuple[int, NDArray[np.float64]]: ...
def apply_band_weights(
    flux: ArrayLike,
    starts: ArrayLike,
    offsets: ArrayLike,
    weights: ArrayLike,
    threads: int = 0,
) -> NDArray[np.float64]: ...
def max_threads() -> int: ...

# --- binning (bind_binning.cpp)
class _BinPixelsResult(TypedDict):
    bin_map: NDArray[np.int32]  # (ny, nx): 0 outside the region, bins numbered from 1
    bin_flux: NDArray[np.float64]  # (nbins, nbands): sums of the fluxes
    bin_var: NDArray[np.float64]  # (nbins, nbands): sums of err²
    seed: NDArray[np.int64]  # (nbins,): flat index of the seed, -1 for the leftover
    pixel_chi2: NDArray[np.float64]  # (ny, nx): reduced χ² vs the bin's seed, NaN if none
    has_leftover: bool
    n_failed_seeds: int
    n_absorbed: int

def bin_pixels(
    flux: ArrayLike,
    err: ArrayLike,
    region: ArrayLike,
    ref_band: int,
    snr: ArrayLike,
    r_first: float,
    del_r: float,
    chi2_limit: float,
    sys_factor: float,
    max_radius: float,
    connected: bool,
    shape_test_first_circle: bool,
    absorb_leftover: bool,
    rho: ArrayLike | None = None,
    threads: int = 0,
) -> _BinPixelsResult: ...
def bin_sums(
    values: ArrayLike,
    bin_map: ArrayLike,
    nbins: int,
    quadrature: bool,
    threads: int = 0,
) -> NDArray[np.float64]: ...
def shape_reduced_chi2(f1: ArrayLike, s1: ArrayLike, f2: ArrayLike, s2: ArrayLike) -> float: ...

# --- RDSPS grid fit (bind_rdsps.cpp)
class _RdspsResult(TypedDict):
    mean: NDArray[np.float64]  # (nsed, nstat): nstat = npar, + 1 (z) when nz > 1
    std: NDArray[np.float64]  # (nsed, nstat)
    p16: NDArray[np.float64]  # (nsed, nstat)
    p50: NDArray[np.float64]  # (nsed, nstat)
    p84: NDArray[np.float64]  # (nsed, nstat)
    best_model: NDArray[np.int64]  # (nsed,)
    best_z: NDArray[np.int64]  # (nsed,)
    best_scale: NDArray[np.float64]  # (nsed,)
    chi2_min: NDArray[np.float64]  # (nsed,)
    ln_evidence: NDArray[np.float64]  # (nsed,)
    n_used: NDArray[np.int64]  # (nsed,)
    z_posterior: NDArray[np.float64]  # (nsed, nz)
    weights: NDArray[np.float32] | None  # (nsed, nz * nmod) when return_weights

def rdsps_fit(
    obs: ArrayLike,
    ivar: ArrayLike,
    model_flux: ArrayLike,
    params: ArrayLike,
    mass_scaled: ArrayLike,
    ln_prior_model: ArrayLike | None = None,
    ln_prior_z: ArrayLike | None = None,
    z_values: ArrayLike | None = None,
    mass_offset: ArrayLike | None = None,
    tabulated: list[tuple[int, float, float, list[float]]] = ...,
    joint: list[tuple[int, int, list[float], list[float], float]] = ...,
    likelihood: int = 0,
    dof: float = 3.0,
    perc_chi2: float = 100.0,
    nhist: int = 4096,
    return_weights: bool = False,
    threads: int = 0,
    upper: ArrayLike | None = None,
) -> _RdspsResult: ...
def log_norm_cdf(x: float) -> float: ...

# --- Legendre continua (bind_legendre.cpp)
def legendre_fit(
    wave: ArrayLike,
    y: ArrayLike,
    w: ArrayLike,
    order: int,
    clip: float = 0.0,
    max_iter: int = 1,
    return_model: bool = True,
    threads: int = 0,
) -> tuple[
    NDArray[np.float64], NDArray[np.float64] | None, NDArray[np.uint8], NDArray[np.int32]
]: ...
def legendre_eval(wave: ArrayLike, coeffs: ArrayLike, threads: int = 0) -> NDArray[np.float64]: ...

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

class KnotGrid:
    def __init__(self, grid: CSPGrid, arrays: dict[str, object]) -> None: ...
    @property
    def ncol(self) -> int: ...
    @property
    def nbands(self) -> int: ...

@overload
def project_rows(
    indptr: ArrayLike,
    indices: ArrayLike,
    data: ArrayLike,
    ncol: int,
    source: NDArray[np.float32],
    row_begin: int,
    row_end: int,
) -> NDArray[np.float64]: ...
@overload
def project_rows(
    indptr: ArrayLike,
    indices: ArrayLike,
    data: ArrayLike,
    ncol: int,
    source: ArrayLike,
    row_begin: int,
    row_end: int,
) -> NDArray[np.float64]: ...
def csp_spectra(
    grid: CSPGrid,
    params: ArrayLike,
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
    params: ArrayLike,
    sfh_form: int,
    dust_law: int,
    duste: bool,
    nebular: bool,
    agn: bool,
    dust1_index: float,
    t_bc: float,
    trans: ArrayLike | None,
    scale: float,
    starts: ArrayLike,
    offsets: ArrayLike,
    weights: ArrayLike,
    line_weights: ArrayLike | None,
    threads: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]: ...
def csp_photometry_knots(
    grid: CSPGrid,
    knots: KnotGrid,
    params: ArrayLike,
    sfh_form: int,
    dust_law: int,
    duste: bool,
    nebular: bool,
    agn: bool,
    dust1_index: float,
    t_bc: float,
    scale: float,
    line_weights: ArrayLike | None,
    threads: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]: ...
def sfh_bin_masses(
    form: int, shape: ArrayLike, age: float, edges: ArrayLike, t_bc: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], float]: ...
def sfh_mass_between(form: int, shape: ArrayLike, t_lo: float, t_hi: float) -> float: ...
def sfh_first_moment(form: int, shape: ArrayLike, age: float) -> float: ...
def smooth_gaussian(
    wave: ArrayLike, flux: ArrayLike, sigma: ArrayLike, threads: int = 0
) -> NDArray[np.float64]: ...

# --- Gaussian mixtures (bind_mixture.cpp)
def em_gaussian_mixture(
    points: ArrayLike,
    weights: ArrayLike,
    start_means: ArrayLike,
    start_cov: ArrayLike,
    ridge: ArrayLike,
    ess: float,
    min_points: float,
    max_iter: int,
    tol: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], int]: ...

class ProposalDensity:
    def __init__(
        self,
        df: float,
        t_chols: ArrayLike,
        t_offsets: ArrayLike,
        t_centres: ArrayLike,
        t_log_coef: ArrayLike,
        box_chols: ArrayLike,
        box_means: ArrayLike,
        box_log_coef: ArrayLike,
        log_defensive: float,
    ) -> None: ...
    def log_density(self, y: ArrayLike, log_box: ArrayLike) -> NDArray[np.float64]: ...
    @property
    def dim(self) -> int: ...
