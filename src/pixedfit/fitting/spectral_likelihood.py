"""Spectroscopic and spectrophotometric likelihoods: instrument smoothing, masks, Legendre step.

An observed spectrum (:class:`ObservedSpectrum`: f_λ and 1σ errors on its own wavelength
grid, optional bad-pixel mask, vacuum or air wavelengths, instrumental resolution) is
compared with model spectra as follows (:class:`SpectralLikelihood`):

1. **Pixels** kept: finite flux, finite error > 0, not masked, inside ``wave_range`` and the
   model's coverage, and farther than ``del_wave_nebem`` Å (observed frame) from the
   redshifted strong emission lines of :data:`pixedfit.lines.EMISSION_LINES` (the
   nebular-line strengths of the models are the least reliable part of them).
2. **Smoothing to the instrument**: the observed-frame model spectrum (λ(1+z), f_λ) is
   convolved, in a window around the observed range only, with a Gaussian of
   wavelength-dependent width σ(λ) (:class:`Resolution`: a velocity dispersion in km s⁻¹, a
   width in Å, a resolving power R = λ/FWHM, or a tabulated line-spread function σ(λ) in Å),
   with the batched C++ kernel ``smooth_gaussian`` (OpenMP over models), then linearly
   interpolated to the observed pixels (air wavelengths are converted to vacuum first).
   An instrumental σ is first reduced by the templates' own resolution,
   σ² − ((1+z) σ_template)² (:mod:`pixedfit.sps.resolution`; BC03-MILES: 2.51 Å FWHM in
   the optical), so that the model is not broadened twice; where the instrument resolves
   more than the templates hold (e.g. the blue end of SDSS) the model is left as it is and
   the count of such pixels is reported (``template_limited``). The galaxy's stellar
   velocity dispersion (``ObservedSpectrum.veldisp``, km s⁻¹; SDSS: ``VDISP``) is added in
   quadrature.
3. **Calibration**: a multiplicative Legendre polynomial ``P(λ)`` of degree ``poly_order``
   is fitted between model and data — the exact weighted least-squares solution of
   ``f_obs ≈ P(λ) f_mod`` (fitted as ``y = f_obs / f_mod`` with weights ``f_mod² / σ²``),
   for all models of a batch in one call of the C++ kernel
   :func:`pixedfit.fitting.legendre.fit_legendre` (OpenMP over models). With photometry the
   model is normalised by the photometry (the sampled or fitted stellar mass) and ``P``
   measures the spectrum's calibration relative to it; its mean (coefficient ``c₀``) is free.
   Spectrum alone, the normalisation is degenerate with ``c₀``: the model's mass is then
   *profiled* — ``log_mass = log10(c₀)`` for a model of unit mass — and ``P / c₀`` is the
   shape correction. ``poly_order=None`` compares the model directly (spectrum alone: with
   the best constant scale only).
4. **Outliers** are sigma-clipped once, against the best model of the initial (RDSPS) pass:
   pixels whose normalised residual departs from the mean by more than ``clip`` standard
   deviations (iterated) are excluded for the rest of the fit. The data set of a likelihood
   must not change from one model to the next, so clipping is not repeated per model.
5. **Likelihood**: Gaussian, ``ln L = −½ (χ²_phot + χ²_spec)`` over the kept pixels and bands.

Differences from the original (spec §2.5, §2.6): the spectral smoothing setting is actually
passed (its RDSPS scripts crashed on a missing ``spec_sigma`` key); MCMC uses the same
Legendre step and smoothing as RDSPS (the original's MCMC compared unsmoothed, uncorrected
models); a single polynomial fit replaces the order-``n`` / order-3 pair; no hidden 10 %
error floor; spectrum-only fits exist for both methods.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypedDict, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import _core
from ..lines import emission_line_mask, to_vacuum
from ..parallel import resolve_threads
from ..units import C_AA_PER_S
from .legendre import fit_legendre

if TYPE_CHECKING:
    from ..sps import SEDModel


class SpectralComparison(TypedDict):
    """What :meth:`SpectralLikelihood.compare` returns, for n model spectra."""

    chi2: NDArray[np.float64]  # (n,)
    factor: NDArray[np.float64]  # (n, npix): the multiplicative correction of each model
    scale: NDArray[np.float64]  # (n,): profiled normalisation c₀ (spectrum-only fits), or 1
    coeffs: NDArray[np.float64] | None  # (n, order + 1) Legendre coefficients, or None
    ok: NDArray[np.bool_]  # (n,)

__all__ = ["ObservedSpectrum", "Resolution", "SpectralLikelihood", "library_spectral_chi2",
           "read_sdss_spectrum"]

_FWHM = 2.0 * math.sqrt(2.0 * math.log(2.0))
_C_KMS = C_AA_PER_S * 1e-13


@dataclass(frozen=True)
class Resolution:
    """Gaussian line-spread function of an observed spectrum, observed frame.

    Build with :meth:`velocity`, :meth:`angstrom`, :meth:`resolving_power` or
    :meth:`tabulated`. ``instrumental=True`` (the default) means the LSF of the instrument:
    the models, which already have their templates' resolution
    (:attr:`pixedfit.sps.SEDModel.template_sigma`), are broadened by the difference in
    quadrature only. ``instrumental=False`` means a broadening to apply to the models as it
    is (e.g. data simulated from the models).
    """

    kind: str
    value: float = 0.0
    wave: NDArray[np.float64] | None = field(default=None, repr=False)
    sigma: NDArray[np.float64] | None = field(default=None, repr=False)
    instrumental: bool = True

    @classmethod
    def velocity(cls, sigma_kms: float, instrumental: bool = True) -> Resolution:
        """Constant velocity dispersion σ (km s⁻¹).

        Parameters
        ----------
        sigma_kms : float
            σ, km s⁻¹, >= 0.
        instrumental : bool
            The instrument's LSF (see the class), or a broadening applied as it is.

        Returns
        -------
        Resolution
        """
        return cls("velocity", _positive(sigma_kms, "sigma_kms", zero_ok=True),
                   instrumental=bool(instrumental))

    @classmethod
    def angstrom(cls, sigma_aa: float, instrumental: bool = True) -> Resolution:
        """Constant Gaussian σ in Å (observed frame).

        Parameters
        ----------
        sigma_aa : float
            σ, Å, >= 0.
        instrumental : bool
            The instrument's LSF (see the class), or a broadening applied as it is.

        Returns
        -------
        Resolution
        """
        return cls("angstrom", _positive(sigma_aa, "sigma_aa", zero_ok=True),
                   instrumental=bool(instrumental))

    @classmethod
    def resolving_power(cls, R: float, instrumental: bool = True) -> Resolution:
        """Resolving power R = λ / FWHM (σ = λ / (2.355 R)).

        Parameters
        ----------
        R : float
            Resolving power, > 0.
        instrumental : bool
            The instrument's LSF (see the class), or a broadening applied as it is.

        Returns
        -------
        Resolution
        """
        return cls("R", _positive(R, "R"), instrumental=bool(instrumental))

    @classmethod
    def tabulated(cls, wave: ArrayLike, sigma: ArrayLike,
                  instrumental: bool = True) -> Resolution:
        """σ(λ) in Å tabulated at observed wavelengths ``wave`` (Å, increasing).

        Parameters
        ----------
        wave : array_like, shape (n,)
            Observed wavelengths, Å, increasing (n >= 2).
        sigma : array_like, shape (n,)
            σ at ``wave``, Å, >= 0 (linear in between).
        instrumental : bool
            The instrument's LSF (see the class), or a broadening applied as it is.

        Returns
        -------
        Resolution
        """
        w = np.asarray(wave, dtype=np.float64)
        s = np.asarray(sigma, dtype=np.float64)
        if w.ndim != 1 or w.shape != s.shape or w.size < 2:
            raise ValueError("Resolution.tabulated: wave and sigma must be 1-D, same length >= 2")
        if not (np.all(np.isfinite(w)) and np.all(np.diff(w) > 0)):
            raise ValueError("Resolution.tabulated: wave must be finite and increasing")
        if not (np.all(np.isfinite(s)) and np.all(s >= 0)):
            raise ValueError("Resolution.tabulated: sigma must be finite and >= 0")
        return cls("lsf", 0.0, w, s, instrumental=bool(instrumental))

    def sigma_at(self, wave_obs: ArrayLike) -> NDArray[np.float64]:
        """Gaussian σ (Å) at observed wavelengths ``wave_obs`` (Å)."""
        lam = np.asarray(wave_obs, dtype=np.float64)
        if self.kind == "velocity":
            return lam * self.value / _C_KMS
        if self.kind == "angstrom":
            return np.full_like(lam, self.value)
        if self.kind == "R":
            return lam / (_FWHM * self.value)
        if self.kind == "lsf":
            # a tabulated LSF has its wavelengths and sigmas
            return np.interp(lam, cast("NDArray[np.float64]", self.wave),
                             cast("NDArray[np.float64]", self.sigma))
        raise ValueError(f"unknown resolution kind {self.kind!r}")


def _positive(value: float, name: str, zero_ok: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a number, got {value!r}") from exc
    if not math.isfinite(v) or v < 0 or (v == 0 and not zero_ok):
        raise ValueError(f"{name} must be finite and {'>=' if zero_ok else '>'} 0, got {value}")
    return v


@dataclass(frozen=True)
class ObservedSpectrum:
    """An observed spectrum.

    Attributes
    ----------
    wave : ndarray, shape (npix,)
        Observed-frame wavelengths (Å), strictly increasing.
    flux, flux_err : ndarray, shape (npix,)
        f_λ and 1σ errors (erg s⁻¹ cm⁻² Å⁻¹, the unit of the photometry and the models).
        Pixels with NaN flux or non-positive / non-finite errors are ignored.
    mask : ndarray of bool, shape (npix,), optional
        True for pixels to exclude.
    medium : {"vacuum", "air"}
        Medium of ``wave`` (SDSS: vacuum; most IFS data: air).
    resolution : Resolution, optional
        Instrumental resolution (default: none; the model is compared unsmoothed).
    wave_range : (float, float), optional
        Observed wavelength range to fit (Å).
    veldisp : float
        Stellar velocity dispersion of the galaxy (km s⁻¹, ≥ 0): the models are broadened
        by it in quadrature with the resolution (default 0: unresolved).
    veldisp_range : (float, float), optional
        Sample the velocity dispersion (km s⁻¹) in MCMC fits, with a flat prior on this
        range (``veldisp`` is then the starting value, clipped to the range; the library
        pass that starts the walkers uses it). RDSPS fits keep ``veldisp`` fixed.
    """

    wave: NDArray[np.float64]
    flux: NDArray[np.float64]
    flux_err: NDArray[np.float64]
    mask: NDArray[np.bool_] | None = None
    medium: str = "vacuum"
    resolution: Resolution | None = None
    wave_range: tuple[float, float] | None = None
    veldisp: float = 0.0
    veldisp_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        wave = np.asarray(self.wave, dtype=np.float64)
        if wave.ndim != 1 or wave.size < 10:
            raise ValueError("spectrum wave: a 1-D array of at least 10 wavelengths")
        if not (np.all(np.isfinite(wave)) and np.all(np.diff(wave) > 0)):
            raise ValueError("spectrum wave: must be finite and strictly increasing")
        flux = np.asarray(self.flux, dtype=np.float64)
        err = np.asarray(self.flux_err, dtype=np.float64)
        if flux.shape != wave.shape or err.shape != wave.shape:
            raise ValueError(f"spectrum flux {flux.shape} and flux_err {err.shape} must match "
                             f"wave {wave.shape}")
        if np.any(np.isinf(flux)):
            raise ValueError("spectrum flux: infinite values (use NaN or the mask)")
        mask = None
        if self.mask is not None:
            mask = np.asarray(self.mask)
            if mask.shape != wave.shape or mask.dtype != bool:
                raise ValueError("spectrum mask: a boolean array of the shape of wave")
        if self.medium not in ("vacuum", "air"):
            raise ValueError(f"spectrum medium: 'vacuum' or 'air', got {self.medium!r}")
        if self.resolution is not None and not isinstance(self.resolution, Resolution):
            raise TypeError("spectrum resolution: a Resolution (e.g. Resolution.velocity(70))")
        rng = None
        if self.wave_range is not None:
            lo, hi = (float(v) for v in self.wave_range)
            if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
                raise ValueError(f"spectrum wave_range: (lo, hi) with hi > lo, got "
                                 f"{self.wave_range}")
            rng = (lo, hi)
        object.__setattr__(self, "wave", wave)
        object.__setattr__(self, "flux", flux)
        object.__setattr__(self, "flux_err", err)
        object.__setattr__(self, "mask", mask)
        object.__setattr__(self, "wave_range", rng)
        veldisp = _positive(self.veldisp, "spectrum veldisp", zero_ok=True)
        vrange = None
        if self.veldisp_range is not None:
            try:
                vlo, vhi = (float(v) for v in self.veldisp_range)
            except (TypeError, ValueError) as exc:
                raise ValueError("spectrum veldisp_range: (lo, hi) in km/s") from exc
            if not (math.isfinite(vlo) and math.isfinite(vhi) and 0 <= vlo < vhi):
                raise ValueError(f"spectrum veldisp_range: 0 <= lo < hi, got "
                                 f"{self.veldisp_range}")
            vrange = (vlo, vhi)
            veldisp = min(max(veldisp, vlo), vhi)
        object.__setattr__(self, "veldisp", veldisp)
        object.__setattr__(self, "veldisp_range", vrange)

    def valid(self) -> NDArray[np.bool_]:
        """Pixels with usable data inside ``wave_range`` (before line masking)."""
        ok = np.isfinite(self.flux) & np.isfinite(self.flux_err) & (self.flux_err > 0)
        if self.mask is not None:
            ok &= ~self.mask
        if self.wave_range is not None:
            ok &= (self.wave >= self.wave_range[0]) & (self.wave <= self.wave_range[1])
        return ok


def read_sdss_spectrum(path: str, wave_range: tuple[float, float] | None = None
                       ) -> tuple[ObservedSpectrum, float]:
    """Read an SDSS ``spec-*.fits`` file (plain or gzipped).

    Parameters
    ----------
    path : str
        The FITS file.
    wave_range : (float, float), optional
        Observed wavelength range to fit, Å.

    Returns
    -------
    spectrum : ObservedSpectrum
        Vacuum wavelengths; f_λ in erg s⁻¹ cm⁻² Å⁻¹; pixels with ``ivar = 0`` or a
        non-zero ``and_mask`` masked; the tabulated instrumental line-spread function from
        ``wdisp``, in units of the 10⁻⁴ dex pixels; the stellar velocity dispersion
        ``VDISP`` of the SDSS pipeline, 0 when unresolved.
    z : float
        The SDSS redshift.
    """
    from astropy.io import fits

    try:
        with fits.open(path, memmap=False) as hdul:
            coadd = hdul[1].data
            loglam = np.asarray(coadd["loglam"], dtype=np.float64)
            flux = np.asarray(coadd["flux"], dtype=np.float64) * 1e-17
            ivar = np.asarray(coadd["ivar"], dtype=np.float64)
            and_mask = np.asarray(coadd["and_mask"])
            wdisp = np.asarray(coadd["wdisp"], dtype=np.float64)
            z = float(hdul[2].data["Z"][0])
            names = hdul[2].data.columns.names
            vdisp = float(hdul[2].data["VDISP"][0]) if "VDISP" in names else 0.0
    except (OSError, KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"{path}: not a readable SDSS spectrum ({exc})") from exc
    wave = 10.0**loglam
    good = ivar > 0
    err = np.where(good, 1e-17 / np.sqrt(np.where(good, ivar, 1.0)), np.nan)
    sigma = wdisp * wave * math.log(10.0) * 1e-4
    lsf_ok = good & np.isfinite(sigma) & (sigma > 0)
    res = Resolution.tabulated(wave[lsf_ok], sigma[lsf_ok])
    spec = ObservedSpectrum(wave, flux, err, mask=~good | (and_mask != 0), medium="vacuum",
                            resolution=res, wave_range=wave_range,
                            veldisp=vdisp if math.isfinite(vdisp) and vdisp > 0 else 0.0)
    return spec, z


class SpectralLikelihood:
    """The spectral part of a fit at a fixed redshift (see the module docstring).

    Parameters
    ----------
    spectrum : ObservedSpectrum
    model : SEDModel
        Forward model (vacuum rest-frame wavelengths).
    z : float
        Redshift (> 0).
    del_wave_nebem : float
        Half-width (Å, observed frame) of the windows excluded around emission lines
        (0: none).
    poly_order : int or None
        Degree of the multiplicative Legendre correction (None: none).
    clip : float or None
        Sigma-clipping threshold applied once by :meth:`clip_outliers` (None: none).
    has_photometry : bool
        True when photometry fixes the normalisation (spectrophotometric fit).
    threads : int, optional
        OpenMP threads of the kernels.
    """

    def __init__(self, spectrum: ObservedSpectrum, model: SEDModel, z: float,
                 del_wave_nebem: float = 15.0, poly_order: int | None = 8,
                 clip: float | None = 4.0, has_photometry: bool = True,
                 threads: int | None = None) -> None:
        if not isinstance(spectrum, ObservedSpectrum):
            raise TypeError("spectrum must be an ObservedSpectrum")
        if not (z is not None and math.isfinite(z) and z > 0):
            raise ValueError(f"spectroscopic fits need a fixed redshift z > 0, got {z}")
        if poly_order is not None and (isinstance(poly_order, bool) or not isinstance(
                poly_order, int | np.integer) or not 0 <= poly_order <= 40):
            raise ValueError(f"poly_order must be None or an integer 0..40, got {poly_order!r}")
        if clip is not None and not clip > 0:
            raise ValueError(f"clip must be > 0 or None, got {clip}")
        self.spectrum = spectrum
        self.model = model
        self.z = float(z)
        self.has_photometry = bool(has_photometry)
        self.poly_order = poly_order
        if poly_order is None and not has_photometry:
            self.poly_order = 0  # profile the normalisation
        self.use_poly = self.poly_order is not None
        self.clip = clip
        self.del_wave_nebem = float(del_wave_nebem)
        self.threads = resolve_threads(threads)
        lam = spectrum.wave
        keep = spectrum.valid()
        if self.del_wave_nebem > 0:
            keep &= ~emission_line_mask(lam, self.z, self.del_wave_nebem, spectrum.medium)
        vac = to_vacuum(lam, spectrum.medium)
        model_obs = np.asarray(model.wave) * (1.0 + self.z)
        res = spectrum.resolution
        vmax = spectrum.veldisp if spectrum.veldisp_range is None else spectrum.veldisp_range[1]
        sig_pix = np.hypot(res.sigma_at(lam) if res is not None else 0.0, lam * vmax / _C_KMS)
        margin = 6.0 * float(np.max(sig_pix, initial=0.0)) + 20.0
        keep &= (vac > model_obs[0] + margin) & (vac < model_obs[-1] - margin)
        if keep.sum() < max(10, (self.poly_order or 0) + 5):
            raise ValueError(f"spectrum: only {int(keep.sum())} usable pixels after masking "
                             "(check wave_range, the mask and the redshift)")
        self.pixels = np.flatnonzero(keep)
        self.wave = lam[self.pixels]
        self.wave_vac = vac[self.pixels]
        self.flux = spectrum.flux[self.pixels]
        self.err = spectrum.flux_err[self.pixels]
        self.ivar = 1.0 / self.err**2
        self.use = np.ones(self.pixels.size, dtype=bool)
        lo = np.searchsorted(model_obs, self.wave_vac[0] - margin) - 1
        hi = np.searchsorted(model_obs, self.wave_vac[-1] + margin) + 1
        self.window = slice(max(int(lo), 0), min(int(hi), model_obs.size))
        self.model_wave_obs = np.ascontiguousarray(model_obs[self.window])
        # Broadening σ² of the models (observed frame, Å²) apart from the velocity
        # dispersion: the instrument's, less the templates' own resolution when the
        # instrument's is given (or when none is: the dispersion alone broadens the data).
        self._s2_fixed = np.zeros(self.model_wave_obs.size)
        if res is not None:
            self._s2_fixed += res.sigma_at(self.model_wave_obs) ** 2
        subtract_templates = res is None or res.instrumental
        if subtract_templates and (res is not None or spectrum.veldisp > 0
                                   or spectrum.veldisp_range is not None):
            s_t = np.asarray(model.template_sigma)[self.window] * (1.0 + self.z)
            self._s2_fixed -= s_t * s_t
        self.fit_veldisp = spectrum.veldisp_range is not None
        self.smooth_sigma = None
        self.template_limited = 0
        if res is not None or spectrum.veldisp > 0:
            s2 = self._sigma2(spectrum.veldisp)
            # pixels where the data resolve more than the templates hold
            sharp = np.interp(self.wave_vac, self.model_wave_obs, (s2 < 0).astype(float))
            self.template_limited = int(np.count_nonzero(sharp > 0.5))
            s = np.sqrt(np.maximum(s2, 0.0))
            if np.any(s > 0):
                self.smooth_sigma = np.ascontiguousarray(s)
        self._factor = np.asarray(model._observed_factor(self.z))[self.window]
        # linear interpolation from the model window to the pixels: indices and weights
        j = np.clip(np.searchsorted(self.model_wave_obs, self.wave_vac) - 1, 0,
                    self.model_wave_obs.size - 2)
        x0, x1 = self.model_wave_obs[j], self.model_wave_obs[j + 1]
        self._interp = (j, (self.wave_vac - x0) / (x1 - x0))

    def _sigma2(self, veldisp: float) -> NDArray[np.float64]:
        """Broadening σ² (Å², observed frame, on the model window) for a velocity
        dispersion (km s⁻¹); negative where the templates are coarser than the data."""
        return self._s2_fixed + (self.model_wave_obs * veldisp / _C_KMS) ** 2

    @property
    def npix(self) -> int:
        """Pixels in the likelihood (after line masking and clipping)."""
        return int(self.use.sum())

    def model_on_pixels(self, params: NDArray[np.float64],
                        veldisp: NDArray[np.float64] | None = None
                        ) -> tuple[NDArray, dict]:
        """Observed-frame, smoothed model spectra (n, npix) of parameter arrays (n, 16).

        Parameters
        ----------
        params : ndarray, shape (n, 16)
            Parameter arrays (columns :attr:`SEDModel.param_names`).
        veldisp : ndarray, shape (n,), optional
            A velocity dispersion per model (km s⁻¹) instead of the spectrum's.

        Returns
        -------
        flux : ndarray, shape (n, npix)
            f_λ on the spectrum's pixels, erg s⁻¹ cm⁻² Å⁻¹ per unit normalisation.
        derived : dict
            The derived quantities of the batch (see ``SEDModel.rest_spectrum``).
        """
        rest = self.model.rest_spectrum(params, threads=self.threads)
        flux = np.atleast_2d(rest.flux)[:, self.window] * self._factor
        if veldisp is not None:
            v = np.broadcast_to(np.asarray(veldisp, dtype=np.float64), (flux.shape[0],))
            flux = np.ascontiguousarray(flux)
            for i in range(flux.shape[0]):
                s = np.sqrt(np.maximum(self._sigma2(float(v[i])), 0.0))
                if np.any(s > 0):
                    flux[i] = _core.smooth_gaussian(self.model_wave_obs, flux[i : i + 1],
                                                    np.ascontiguousarray(s), self.threads)[0]
        elif self.smooth_sigma is not None:
            flux = _core.smooth_gaussian(self.model_wave_obs, np.ascontiguousarray(flux),
                                         self.smooth_sigma, self.threads)
        j, t = self._interp
        out = flux[:, j] * (1.0 - t) + flux[:, j + 1] * t
        derived = {k: np.atleast_1d(v) for k, v in rest.derived.items()}
        return out, derived

    def compare(self, model_pix: NDArray[np.float64]) -> SpectralComparison:
        """χ² of model spectra (n, npix) against the data, with the Legendre step.

        Returns a dict: ``chi2`` (n,), ``factor`` (n, npix) the multiplicative correction
        applied to the model (ones without polynomial), ``scale`` (n,) the profiled
        normalisation c₀ (spectrum-only fits; 1 otherwise), ``coeffs`` (n, order + 1) or
        None, ``ok`` (n,) bool.
        """
        m = np.atleast_2d(model_pix)
        n = m.shape[0]
        w = np.where(self.use, self.ivar, 0.0)
        if not self.use_poly:
            factor = np.ones_like(m)
            coeffs = None
            ok = np.ones(n, dtype=bool)
        else:
            pos = m > 0
            with np.errstate(divide="ignore", invalid="ignore"):
                y = np.where(pos, self.flux / np.where(pos, m, 1.0), 0.0)
            weights = np.where(pos, m * m * w, 0.0)
            fit = fit_legendre(self.wave, y, weights,
                               order=int(cast(int, self.poly_order)),  # use_poly: an order
                               threads=self.threads)
            factor = cast("NDArray[np.float64]", fit.model)  # return_model=True (default)
            coeffs = fit.coeffs
            ok = fit.ok & np.all(np.isfinite(factor), axis=1)
            factor = np.where(ok[:, None], factor, 1.0)
        resid = (self.flux - factor * m) ** 2 * w
        chi2 = np.where(ok, resid.sum(axis=1), np.inf)
        scale = np.ones(n)
        if not self.has_photometry:
            scale = coeffs[:, 0] if coeffs is not None else np.ones(n)
            bad = ~(scale > 0)
            chi2 = np.where(bad, np.inf, chi2)
            ok &= ~bad
        return {"chi2": chi2, "factor": factor, "scale": scale, "coeffs": coeffs, "ok": ok}

    def clip_outliers(self, model_pix: NDArray[np.float64], max_iter: int = 10) -> int:
        """Sigma-clip pixels against one (best) model spectrum (npix,); returns the count.

        The clipped pixels stay excluded for all later evaluations.

        Parameters
        ----------
        model_pix : ndarray, shape (npix,)
            The model on the spectrum's pixels (:meth:`model_on_pixels`).
        max_iter : int
            Clipping iterations, at most.

        Returns
        -------
        int
            Pixels clipped.
        """
        if self.clip is None:
            return 0
        m = np.asarray(model_pix, dtype=np.float64).reshape(1, -1)
        cmp = self.compare(m)
        chi = (self.flux - cmp["factor"][0] * m[0]) / self.err
        keep = self.use.copy()
        for _ in range(max_iter):
            mu, sd = chi[keep].mean(), chi[keep].std()
            new = self.use & (np.abs(chi - mu) <= self.clip * sd)
            if np.array_equal(new, keep):
                break
            keep = new
        nclip = int(self.use.sum() - keep.sum())
        if keep.sum() < max(10, (self.poly_order or 0) + 5):
            raise ValueError("spectrum: sigma clipping left too few pixels")
        self.use = keep
        return nclip


def library_spectral_chi2(lik: SpectralLikelihood, params: NDArray[np.float64],
                          chunk: int = 256, pilot: int = 512
                          ) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
    """Spectral χ² and profiled scales of library models (RDSPS with spectra).

    Parameters
    ----------
    lik : SpectralLikelihood
    params : ndarray, shape (nmod, 16)
        Model parameter arrays (normalised models, ``log_mass = 0``).
    chunk : int
        Models per batched call.
    pilot : int
        Models (evenly spaced) of the pilot pass whose best model sets the sigma clipping.

    Returns
    -------
    chi2 : ndarray, shape (nmod,)
        Spectral χ² (``inf`` where the Legendre fit failed). With photometry it does not
        depend on the model's normalisation.
    scale : ndarray, shape (nmod,)
        Profiled normalisation c₀ (spectrum-only fits; ones otherwise).
    nclip : int
        Pixels removed by sigma clipping.
    """
    nmod = params.shape[0]
    nclip = 0
    if lik.clip is not None:
        sel = np.unique(np.linspace(0, nmod - 1, min(pilot, nmod)).astype(np.int64))
        chi2_p, _ = _chunks(lik, params[sel], chunk)
        best = int(sel[np.argmin(chi2_p)])
        mod, _ = lik.model_on_pixels(params[best : best + 1])
        nclip = lik.clip_outliers(mod[0])
    chi2, scale = _chunks(lik, params, chunk)
    return chi2, scale, nclip


def _chunks(lik: SpectralLikelihood, params: NDArray, chunk: int) -> tuple[NDArray, NDArray]:
    chi2 = np.empty(params.shape[0])
    scale = np.empty(params.shape[0])
    for start in range(0, params.shape[0], chunk):
        mod, _ = lik.model_on_pixels(np.ascontiguousarray(params[start : start + chunk]))
        cmp = lik.compare(mod)
        chi2[start : start + chunk] = cmp["chi2"]
        scale[start : start + chunk] = cmp["scale"]
    return chi2, scale
