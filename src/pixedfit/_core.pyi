"""Type stubs of the compiled extension pixedfit._core (private API).

Checked against the built extension by ``python -m mypy.stubtest pixedfit._core`` (.ci/run).
The array arguments are ``py::array_t<T, c_style | forcecast>`` in the bindings: any array-like
is accepted and converted to a C-contiguous array of the named dtype, hence ``ArrayLike``;
the arrays returned are fresh arrays of the dtype shown. The results of ``bin_pixels`` and
``rdsps_fit`` are bound classes with read-only attributes; the kernels' codes are pybind11
enums (``SfhForm``, ``DustLaw``, ``Likelihood``).
"""

from typing import ClassVar

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
class BinPixelsResult:
    # (ny, nx): 0 outside the region, bins numbered from 1
    @property
    def bin_map(self) -> NDArray[np.int32]: ...
    @property
    def bin_flux(self) -> NDArray[np.float64]: ...  # (nbins, nbands): sums of the fluxes
    @property
    def bin_var(self) -> NDArray[np.float64]: ...  # (nbins, nbands): sums of err²
    # (nbins,): flat index of the seed, -1 for the leftover
    @property
    def seed(self) -> NDArray[np.int64]: ...
    # (ny, nx): reduced χ² vs the bin's seed, NaN if none
    @property
    def pixel_chi2(self) -> NDArray[np.float64]: ...
    @property
    def has_leftover(self) -> bool: ...
    @property
    def n_failed_seeds(self) -> int: ...
    @property
    def n_absorbed(self) -> int: ...

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
) -> BinPixelsResult: ...
def bin_sums(
    values: ArrayLike,
    bin_map: ArrayLike,
    nbins: int,
    quadrature: bool,
    threads: int = 0,
) -> NDArray[np.float64]: ...
def shape_reduced_chi2(f1: ArrayLike, s1: ArrayLike, f2: ArrayLike, s2: ArrayLike) -> float: ...

# --- RDSPS grid fit (bind_rdsps.cpp)
class _Enum:
    """A pybind11 enum (py::enum_): built from its int code, compared with its members."""

    __members__: ClassVar[dict[str, object]]
    def __init__(self, value: int) -> None: ...
    def __int__(self) -> int: ...
    def __index__(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def value(self) -> int: ...

class Likelihood(_Enum):
    GAUSSIAN: ClassVar[Likelihood]
    STUDENT_T: ClassVar[Likelihood]

class RdspsFitResult:
    @property
    def mean(self) -> NDArray[np.float64]: ...  # (nsed, nstat): nstat = npar, + 1 (z) when nz > 1
    @property
    def std(self) -> NDArray[np.float64]: ...  # (nsed, nstat)
    @property
    def p16(self) -> NDArray[np.float64]: ...  # (nsed, nstat)
    @property
    def p50(self) -> NDArray[np.float64]: ...  # (nsed, nstat)
    @property
    def p84(self) -> NDArray[np.float64]: ...  # (nsed, nstat)
    @property
    def best_model(self) -> NDArray[np.int64]: ...  # (nsed,)
    @property
    def best_z(self) -> NDArray[np.int64]: ...  # (nsed,)
    @property
    def best_scale(self) -> NDArray[np.float64]: ...  # (nsed,)
    @property
    def chi2_min(self) -> NDArray[np.float64]: ...  # (nsed,)
    @property
    def ln_evidence(self) -> NDArray[np.float64]: ...  # (nsed,)
    @property
    def n_used(self) -> NDArray[np.int64]: ...  # (nsed,)
    @property
    def z_posterior(self) -> NDArray[np.float64]: ...  # (nsed, nz)
    @property
    def weights(self) -> NDArray[np.float32] | None: ...  # (nsed, nz * nmod) when return_weights

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
    likelihood: Likelihood = ...,
    dof: float = 3.0,
    perc_chi2: float = 100.0,
    nhist: int = 4096,
    return_weights: bool = False,
    threads: int = 0,
    upper: ArrayLike | None = None,
) -> RdspsFitResult: ...
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
SPS_PARAM_NAMES: tuple[str, ...]
SPS_DERIVED_NAMES: tuple[str, ...]
SPS_COMPONENT_NAMES: tuple[str, ...]

class SfhForm(_Enum):
    TAU: ClassVar[SfhForm]
    DELAYED_TAU: ClassVar[SfhForm]
    LOG_NORMAL: ClassVar[SfhForm]
    GAUSSIAN: ClassVar[SfhForm]
    DOUBLE_POWER_LAW: ClassVar[SfhForm]

class DustLaw(_Enum):
    CHARLOT_FALL: ClassVar[DustLaw]
    CALZETTI: ClassVar[DustLaw]

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

def knot_stencils(
    x: ArrayLike,
    row_begin: ArrayLike,
    row_count: ArrayLike,
    weight_begin: ArrayLike,
    weights: ArrayLike,
    knot_off: ArrayLike,
    knots: ArrayLike,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]: ...
def project_stencils(
    row_begin: ArrayLike,
    row_count: ArrayLike,
    knot_off: ArrayLike,
    first: ArrayLike,
    weights: ArrayLike,
    blocks: ArrayLike,
    m: int,
    split: int,
    upper: bool,
    tail: ArrayLike | None = None,
    upper_tail: ArrayLike | None = None,
) -> tuple[NDArray[np.float32], NDArray[np.float32] | None]: ...

PROJECTION_BLOCK: int

def band_sums(
    row_begin: ArrayLike,
    row_count: ArrayLike,
    weight_begin: ArrayLike,
    weights: ArrayLike,
    table: ArrayLike,
) -> NDArray[np.float64]: ...
def csp_spectra(
    grid: CSPGrid,
    params: ArrayLike,
    sfh_form: SfhForm,
    dust_law: DustLaw,
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
    sfh_form: SfhForm,
    dust_law: DustLaw,
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
    sfh_form: SfhForm,
    dust_law: DustLaw,
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
    form: SfhForm, shape: ArrayLike, age: float, edges: ArrayLike, t_bc: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], float]: ...
def sfh_mass_between(form: SfhForm, shape: ArrayLike, t_lo: float, t_hi: float) -> float: ...
def sfh_first_moment(form: SfhForm, shape: ArrayLike, age: float) -> float: ...
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
def box_fractions(
    chols: ArrayLike, means: ArrayLike, normals: ArrayLike
) -> NDArray[np.float64]: ...

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
