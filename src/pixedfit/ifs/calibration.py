"""Spectral matching core: a smooth multiplicative correction of IFS spectra to photometry.

Given, for every pixel with a spectrum, a model spectrum that reproduces the pixel's
*photometry* (found by the photometric SED fit, wired in by the caller), the IFS flux
calibration is corrected by the smooth factor ``P(λ)`` that best matches the ratio
model / observed outside emission lines:

1. wavelengths within ``±del_wave_nebem`` Å (observed frame) of a redshifted strong line of
   :data:`pixedfit.lines.EMISSION_LINES` are excluded (the models' nebular lines are not
   to be trusted at that level), as are non-positive or masked observed values and
   non-positive model values;
2. ``r = model / observed`` is fitted with a Legendre series of degree ``order`` (3 by
   default) by weighted least squares with σ_r = r σ_obs / obs and iterative ``clip``-σ
   clipping, all spectra at once with the batched C++ kernel
   :func:`pixedfit.fitting.legendre.fit_legendre`;
3. fluxes **and errors** are multiplied by ``P(λ)`` (the original piXedfit fitted an
   additive difference, kept only points where the model exceeded the data, and then scaled
   the errors by the additive term).

Spectra whose fit fails (too few points, singular system, or a factor that is not positive
over the whole grid) get NaN corrections and a non-zero ``status``; nothing is silently
left uncorrected.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from astropy.io import fits
from numpy.typing import ArrayLike, NDArray

from .._paths import atomic_path
from ..cubes import FluxCube, SpecPhotCube
from ..fitting.legendre import fit_legendre
from ..lines import emission_line_mask

__all__ = [
    "STATUS",
    "SpectralCorrection",
    "apply_legendre_correction",
    "correct_specphot_cube",
    "read_spectral_correction",
    "write_spectral_correction",
]

PathLike = str | os.PathLike[str]

#: Status codes of :class:`SpectralCorrection`.
STATUS = {0: "ok", 1: "too few valid points", 2: "singular system",
          3: "correction factor not positive everywhere"}


@dataclass(frozen=True)
class SpectralCorrection:
    """Result of :func:`apply_legendre_correction` (spectra along the first axis).

    Attributes
    ----------
    wave : (nwave,) Å
    flux, err : (nspec, nwave)
        Corrected spectra and errors (same unit as the input); NaN where the fit failed.
    factor : (nspec, nwave)
        Multiplicative correction P(λ) applied.
    coeffs : (nspec, order + 1)
        Legendre coefficients (:func:`pixedfit.fitting.legendre.eval_legendre` convention).
    used : (nspec, nwave) bool
        Points entering the final fit.
    status : (nspec,) int
        See :data:`STATUS`.
    line_mask : (nwave,) bool
        Wavelengths excluded around emission lines.
    """

    wave: NDArray[np.float64]
    flux: NDArray[np.float64]
    err: NDArray[np.float64]
    factor: NDArray[np.float64]
    coeffs: NDArray[np.float64]
    used: NDArray[np.bool_]
    status: NDArray[np.int32]
    line_mask: NDArray[np.bool_]

    @property
    def ok(self) -> NDArray[np.bool_]:
        """True for the spectra whose correction succeeded."""
        return self.status == 0


def _spectra(value: ArrayLike, name: str, nwave: int) -> NDArray[np.float64]:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected a numeric array ({exc})") from None
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != nwave:
        raise ValueError(f"{name}: expected shape (nspec, {nwave}), got {np.shape(value)}")
    if np.any(np.isinf(arr)):
        raise ValueError(f"{name}: contains infinite values")
    return arr


def apply_legendre_correction(
    wave: ArrayLike,
    flux: ArrayLike,
    flux_err: ArrayLike,
    model_flux: ArrayLike,
    z: float,
    *,
    del_wave_nebem: float = 10.0,
    order: int = 3,
    clip: float | None = 2.5,
    max_iter: int = 10,
    wave_medium: str = "vacuum",
    lines: ArrayLike | None = None,
    threads: int | None = None,
) -> SpectralCorrection:
    """Fit and apply multiplicative Legendre corrections model/observed to many spectra.

    Parameters
    ----------
    wave : array_like, shape (nwave,)
        Observed-frame wavelengths in Å (``wave_medium``), strictly increasing.
    flux, flux_err : array_like, shape (nspec, nwave) or (nwave,)
        Observed spectra and 1σ errors (any common f_λ unit); NaN = masked.
    model_flux : array_like, same shape
        Model spectrum per spectrum on the same wavelengths and unit (the best fit to the
        photometry, smoothed to the IFS resolution by the caller).
    z : float
        Redshift (places the emission-line windows).
    del_wave_nebem : float
        Half-width (Å, observed frame) of the windows excluded around emission lines.
    order : int
        Legendre degree (3 as the original).
    clip : float or None
        Sigma-clipping threshold of the fit (None: no clipping).
    max_iter : int
        Maximum number of clipping iterations.
    wave_medium : {"vacuum", "air"}
        Medium of ``wave`` (the line list is converted to it).
    lines : array_like, optional
        Rest-frame line wavelengths (Å, ``wave_medium``) replacing the built-in list.
    threads : int, optional
        OpenMP threads of the kernel (None: all cores).

    Returns
    -------
    SpectralCorrection
    """
    lam = np.asarray(wave, dtype=np.float64)
    if lam.ndim != 1 or lam.size < 2:
        raise ValueError("wave: a 1-D array of at least 2 wavelengths")
    if not np.all(np.isfinite(lam)) or np.any(np.diff(lam) <= 0):
        raise ValueError("wave: must be finite and strictly increasing")
    obs = _spectra(flux, "flux", lam.size)
    err = _spectra(flux_err, "flux_err", lam.size)
    mod = _spectra(model_flux, "model_flux", lam.size)
    if err.shape != obs.shape or mod.shape != obs.shape:
        raise ValueError(f"flux_err, model_flux: shapes {err.shape}, {mod.shape} must equal "
                         f"flux's {obs.shape}")
    fin = np.isfinite(obs)
    if np.any(fin & ~(np.isfinite(err) & (err > 0))):
        raise ValueError("flux_err: non-finite or <= 0 errors where flux is finite")
    if isinstance(order, bool) or not isinstance(order, int | np.integer) or order < 0:
        raise ValueError(f"order: a non-negative integer, got {order!r}")
    lmask = emission_line_mask(lam, z, del_wave_nebem, wave_medium, lines)
    use = fin & np.isfinite(mod) & (obs > 0) & (mod > 0) & ~lmask[None]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(use, mod / np.where(use, obs, 1.0), np.nan)
        sig = ratio * err / np.where(use, obs, 1.0)
        weights = np.where(use, 1.0 / sig**2, 0.0)
    fit = fit_legendre(lam, ratio, weights, order=int(order), clip=clip, max_iter=max_iter,
                       threads=threads)
    factor = np.array(fit.model, dtype=np.float64)
    status = np.array(fit.status, dtype=np.int32)
    bad_factor = (status == 0) & ~np.all(np.isfinite(factor) & (factor > 0), axis=1)
    status[bad_factor] = 3
    failed = status != 0
    factor[failed] = np.nan
    return SpectralCorrection(
        wave=lam, flux=obs * factor, err=err * factor, factor=factor,
        coeffs=np.where(failed[:, None], np.nan, fit.coeffs), used=fit.used & ~failed[:, None],
        status=status, line_mask=lmask)


def correct_specphot_cube(
    cube: SpecPhotCube,
    model_spec: ArrayLike,
    z: float | None = None,
    del_wave_nebem: float = 10.0,
    order: int = 3,
    clip: float | None = 2.5,
    threads: int | None = None,
) -> tuple[SpecPhotCube, NDArray[np.float64], SpectralCorrection]:
    """Correct every spectrum of a spectrophotometric cube with its model.

    Parameters
    ----------
    cube : SpecPhotCube
    model_spec : array_like, shape (nwave, ny, nx)
        Model spectra on ``cube.wave`` in the cube's unit (NaN outside the IFS region).
    z : float, optional
        Redshift (default: the cube's).
    del_wave_nebem : float
        Half width (Å, observed frame) of the masks around emission lines.
    order : int
        Degree of the Legendre correction.
    clip : float or None
        Sigma clipping of the residuals (None: none).
    threads : int, optional
        OpenMP threads of the fits (None: all).

    Returns
    -------
    (corrected cube, correction factor cube (nwave, ny, nx), SpectralCorrection of the
    IFS-region pixels in row-major order). Pixels whose fit failed keep no spectrum: they
    leave the IFS region of the corrected cube.
    """
    if not isinstance(cube, SpecPhotCube):
        raise TypeError(f"cube: expected a SpecPhotCube, got {type(cube).__name__}")
    model = np.asarray(model_spec, dtype=np.float64)
    if model.shape != cube.spec_flux.shape:
        raise ValueError(f"model_spec: expected shape {cube.spec_flux.shape}, got {model.shape}")
    zz = cube.photometry.z if z is None else z
    if zz is None:
        raise ValueError("z: the cube has no redshift: pass z")
    medium = cube.wave_medium
    sel = cube.spec_region
    res = apply_legendre_correction(
        cube.wave, cube.spec_flux[:, sel].T, cube.spec_err[:, sel].T, model[:, sel].T, zz,
        del_wave_nebem=del_wave_nebem, order=order, clip=clip, wave_medium=medium,
        threads=threads)
    flux = np.full_like(cube.spec_flux, np.nan)
    err = np.full_like(cube.spec_err, np.nan)
    factor = np.full_like(cube.spec_flux, np.nan)
    flux[:, sel] = res.flux.T
    err[:, sel] = res.err.T
    factor[:, sel] = res.factor.T
    region = sel.copy()
    region[sel] = res.ok
    if not region.any():
        raise ValueError("the spectral correction failed for every pixel")
    p = cube.photometry
    phot = FluxCube(p.flux, p.flux_err, p.filters, region=p.region, unit=p.unit, wcs=p.wcs,
                    z=p.z, pixel_scale=p.pixel_scale, gal_ebv=p.gal_ebv, header=p.header,
                    stamp=p.stamp)
    out = SpecPhotCube(phot, cube.wave, np.where(region[None], flux, np.nan),
                       np.where(region[None], err, np.nan), spec_region=region,
                       ifs_survey=cube.ifs_survey, wave_medium=cube.wave_medium)
    return out, factor, res


def write_spectral_correction(
    path: PathLike, cube: SpecPhotCube, factor: ArrayLike, model_spec: ArrayLike,
    overwrite: bool = False,
) -> None:
    """Write a corrected cube in the spectrophotometric layout plus ``CORR_FACTOR`` and
    ``MOD_FLUX`` (nwave, y, x) extensions (the original's names; both on ``WAVE``).

    Parameters
    ----------
    path : path-like
        FITS file to write (atomically).
    cube : SpecPhotCube
        The corrected cube (:func:`correct_specphot_cube`).
    factor : array_like, shape (nwave, ny, nx)
        The correction factor of each spectrum.
    model_spec : array_like, shape (nwave, ny, nx)
        The model spectra, in the cube's unit.
    overwrite : bool
        Replace an existing file (else FileExistsError).
    """
    f = np.asarray(factor, dtype=np.float64)
    m = np.asarray(model_spec, dtype=np.float64)
    if f.shape != cube.spec_flux.shape or m.shape != cube.spec_flux.shape:
        raise ValueError("factor, model_spec: must have the cube's spectral shape")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists (use overwrite=True)")
    with atomic_path(path) as tmp:
        cube.write(tmp, overwrite=True)
        with fits.open(tmp, mode="append") as hdul:
            hdul.append(fits.ImageHDU(f, name="CORR_FACTOR"))
            hdul.append(fits.ImageHDU(m, name="MOD_FLUX"))


def read_spectral_correction(path: PathLike
                             ) -> tuple[SpecPhotCube, NDArray[np.float64], NDArray[np.float64]]:
    """Read a file of :func:`write_spectral_correction`: (cube, factor, model spectra)."""
    cube = SpecPhotCube.read(path)
    with fits.open(path, memmap=False) as hdul:
        try:
            factor = np.array(hdul["CORR_FACTOR"].data, dtype=np.float64)
            model = np.array(hdul["MOD_FLUX"].data, dtype=np.float64)
        except KeyError as exc:
            raise ValueError(f"{path}: not a spectral-correction file ({exc})") from None
    return cube, factor, model
