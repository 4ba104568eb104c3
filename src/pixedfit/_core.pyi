"""Type stubs of the compiled extension pixedfit._core (private API)."""

from typing import ClassVar

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

class BinPixelsResult:
    @property
    def bin_map(self) -> NDArray[np.int32]: ...
    @property
    def bin_flux(self) -> NDArray[np.float64]: ...
    @property
    def bin_var(self) -> NDArray[np.float64]: ...
    @property
    def seed(self) -> NDArray[np.int64]: ...
    @property
    def pixel_chi2(self) -> NDArray[np.float64]: ...
    @property
    def has_leftover(self) -> bool: ...
    @property
    def n_failed_seeds(self) -> int: ...
    @property
    def n_absorbed(self) -> int: ...

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
    rho: NDArray[np.float64] | None = None,
    threads: int = 0,
) -> BinPixelsResult: ...
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
    def mean(self) -> NDArray[np.float64]: ...
    @property
    def std(self) -> NDArray[np.float64]: ...
    @property
    def p16(self) -> NDArray[np.float64]: ...
    @property
    def p50(self) -> NDArray[np.float64]: ...
    @property
    def p84(self) -> NDArray[np.float64]: ...
    @property
    def best_model(self) -> NDArray[np.int64]: ...
    @property
    def best_z(self) -> NDArray[np.int64]: ...
    @property
    def best_scale(self) -> NDArray[np.float64]: ...
    @property
    def chi2_min(self) -> NDArray[np.float64]: ...
    @property
    def ln_evidence(self) -> NDArray[np.float64]: ...
    @property
    def n_used(self) -> NDArray[np.int64]: ...
    @property
    def z_posterior(self) -> NDArray[np.float64]: ...
    @property
    def weights(self) -> NDArray[np.float32] | None: ...

def rdsps_fit(
    obs: NDArray[np.float64],
    ivar: NDArray[np.float64],
    model_flux: NDArray[np.float64],
    params: NDArray[np.float64],
    mass_scaled: NDArray[np.uint8],
    ln_prior_model: NDArray[np.float64] | None = None,
    ln_prior_z: NDArray[np.float64] | None = None,
    z_values: NDArray[np.float64] | None = None,
    mass_offset: NDArray[np.float64] | None = None,
    tabulated: list[tuple[int, float, float, list[float]]] = ...,
    joint: list[tuple[int, int, list[float], list[float], float]] = ...,
    likelihood: Likelihood = ...,
    dof: float = 3.0,
    perc_chi2: float = 100.0,
    nhist: int = 4096,
    return_weights: bool = False,
    threads: int = 0,
    upper: NDArray[np.uint8] | None = None,
) -> RdspsFitResult: ...
def log_norm_cdf(x: float) -> float: ...
def legendre_fit(
    wave: NDArray[np.float64],
    y: NDArray[np.float64],
    w: NDArray[np.float64],
    order: int,
    clip: float = 0.0,
    max_iter: int = 1,
    return_model: bool = True,
    threads: int = 0,
) -> tuple[
    NDArray[np.float64], NDArray[np.float64] | None, NDArray[np.uint8], NDArray[np.int32]
]: ...
def legendre_eval(
    wave: NDArray[np.float64], coeffs: NDArray[np.float64], threads: int = 0
) -> NDArray[np.float64]: ...

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

def project_rows(
    indptr: NDArray[np.int64],
    indices: NDArray[np.int64],
    data: NDArray[np.float64],
    ncol: int,
    source: NDArray[np.float32] | NDArray[np.float64],
    row_begin: int,
    row_end: int,
) -> NDArray[np.float64]: ...
def csp_spectra(
    grid: CSPGrid,
    params: NDArray[np.float64],
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
    params: NDArray[np.float64],
    sfh_form: SfhForm,
    dust_law: DustLaw,
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
def csp_photometry_knots(
    grid: CSPGrid,
    knots: KnotGrid,
    params: NDArray[np.float64],
    sfh_form: SfhForm,
    dust_law: DustLaw,
    duste: bool,
    nebular: bool,
    agn: bool,
    dust1_index: float,
    t_bc: float,
    scale: float,
    line_weights: NDArray[np.float64] | None,
    threads: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]: ...
def sfh_bin_masses(
    form: SfhForm, shape: NDArray[np.float64], age: float, edges: NDArray[np.float64], t_bc: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], float]: ...
def sfh_mass_between(
    form: SfhForm, shape: NDArray[np.float64], t_lo: float, t_hi: float
) -> float: ...
def sfh_first_moment(form: SfhForm, shape: NDArray[np.float64], age: float) -> float: ...
def smooth_gaussian(
    wave: NDArray[np.float64], flux: NDArray[np.float64], sigma: NDArray[np.float64],
    threads: int = 0,
) -> NDArray[np.float64]: ...

# --- Gaussian mixtures (bind_mixture.cpp)
def em_gaussian_mixture(
    points: NDArray[np.float64],
    weights: NDArray[np.float64],
    start_means: NDArray[np.float64],
    start_cov: NDArray[np.float64],
    ridge: NDArray[np.float64],
    ess: float,
    min_points: float,
    max_iter: int,
    tol: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], int]: ...

class ProposalDensity:
    def __init__(
        self,
        df: float,
        t_chols: NDArray[np.float64],
        t_offsets: NDArray[np.int64],
        t_centres: NDArray[np.float64],
        t_log_coef: NDArray[np.float64],
        box_chols: NDArray[np.float64],
        box_means: NDArray[np.float64],
        box_log_coef: NDArray[np.float64],
        log_defensive: float,
    ) -> None: ...
    def log_density(
        self, y: NDArray[np.float64], log_box: NDArray[np.float64]
    ) -> NDArray[np.float64]: ...
    @property
    def dim(self) -> int: ...
