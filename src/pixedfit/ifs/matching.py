"""``match_imgifs_spectral``: calibrate IFS spectra against the imaging, pixel by pixel.

For every pixel of the IFS region of a :class:`~pixedfit.cubes.SpecPhotCube`:

1. its photometry is fitted with a model library by RDSPS — all pixels in one batched call
   of the fused C++ kernel (:func:`pixedfit.fitting.rdsps.rdsps`), at the cube's redshift;
2. the minimum-χ² model, scaled by its fitted normalisation, is computed as an observed-frame
   spectrum with :class:`~pixedfit.sps.SEDModel` (batched), smoothed to the instrumental
   resolution if one is given, and interpolated onto the cube's wavelengths (the model
   wavelengths are vacuum: a cube in air, ``SpecPhotCube.wave_medium == "air"``, is
   compared at its wavelengths converted to vacuum);
3. the ratio model / observed outside ±``del_wave_nebem`` of the emission lines is fitted by
   a Legendre series of order ``order`` (the batched C++ kernel), and the spectrum and its
   errors are multiplied by it (:func:`pixedfit.ifs.calibration.correct_specphot_cube`).

The original fitted an additive correction but scaled the errors multiplicatively, kept only
points where the model exceeded the data, and read every model from disk for every pixel;
none of that is reproduced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import _core
from ..cubes import SpecPhotCube
from ..fitting.rdsps import rdsps
from ..library import ModelLibrary, read_library
from ..lines import to_vacuum
from ..parallel import resolve_threads
from ..sps import DEFAULTS, PARAM_NAMES
from .calibration import SpectralCorrection, correct_specphot_cube

__all__ = ["SpectralMatch", "match_imgifs_spectral"]


@dataclass(frozen=True)
class SpectralMatch:
    """Result of :func:`match_imgifs_spectral`.

    Attributes
    ----------
    cube : SpecPhotCube
        The corrected cube (pixels whose correction failed leave the IFS region).
    factor : ndarray, shape (nwave, ny, nx)
        Multiplicative correction applied to every spectrum (NaN outside the IFS region).
    model_spec : ndarray, shape (nwave, ny, nx)
        Best-fit model spectra in the cube's unit (NaN outside the IFS region).
    correction : SpectralCorrection
        Legendre coefficients and status of the IFS pixels (row-major order).
    best_model : ndarray of int, shape (ny, nx)
        Library index of each pixel's best model (-1 outside the IFS region or if none).
    chi2 : ndarray, shape (ny, nx)
        Minimum χ² of the photometric fit.
    """

    cube: SpecPhotCube
    factor: NDArray[np.float64]
    model_spec: NDArray[np.float64]
    correction: SpectralCorrection
    best_model: NDArray[np.int64]
    chi2: NDArray[np.float64]


def match_imgifs_spectral(
    cube: SpecPhotCube,
    library: Any,
    model: Any = None,
    z: float | None = None,
    del_wave_nebem: float = 10.0,
    order: int = 3,
    clip: float | None = 2.5,
    sigma_aa: float | None = None,
    threads: int | None = None,
) -> SpectralMatch:
    """Correct the spectra of a spectrophotometric cube to its photometry.

    Parameters
    ----------
    cube : SpecPhotCube
        From :func:`pixedfit.ifs.match_imgifs_spatial` (or read from a file).
    library : ModelLibrary or path
        Models fitted to each pixel's photometry.
    model : SEDModel, optional
        The model of the library (default: rebuilt from the library's configuration).
    z : float, optional
        Redshift (default: the cube's).
    del_wave_nebem : float
        Half-width (Å, rest frame) of the windows masked around emission lines.
    order : int
        Order of the Legendre correction.
    clip : float or None
        Sigma clipping of the ratio (None: none).
    sigma_aa : float, optional
        Instrumental Gaussian σ in Å (observed frame) the model spectra are brought to: the
        Gaussian applied is √(σ² − ((1+z) σ_template)²), the templates' own resolution
        (:attr:`pixedfit.sps.SEDModel.template_sigma`) subtracted.
    threads : int, optional
        OpenMP threads.

    Returns
    -------
    SpectralMatch

    Raises
    ------
    ValueError
        No redshift, a library that cannot be evaluated, or no pixel with a usable fit.
    """
    if not isinstance(cube, SpecPhotCube):
        raise TypeError(f"cube: expected a SpecPhotCube, got {type(cube).__name__}")
    lib = library if isinstance(library, ModelLibrary) else read_library(library)
    phot = cube.photometry
    redshift = z if z is not None else phot.z
    if redshift is None or not np.isfinite(redshift) or redshift <= 0:
        raise ValueError("z: the cube has no redshift; pass z= (> 0)")
    if sigma_aa is not None and not (np.isfinite(sigma_aa) and sigma_aa >= 0):
        raise ValueError(f"sigma_aa must be >= 0, got {sigma_aa}")
    sed_model = lib.model() if model is None else model
    nthreads = resolve_threads(threads)

    # 1. photometric RDSPS fits of every IFS pixel, in one batched kernel call
    ys, xs = np.nonzero(cube.spec_region)
    obs = phot.flux[:, ys, xs].T * phot.unit
    err = phot.flux_err[:, ys, xs].T * phot.unit
    models = lib.photometry(list(phot.filters), float(redshift), model=sed_model,
                            threads=threads)
    fit = rdsps(obs, err, models, mask_invalid=True, threads=threads)
    ok = fit.best_model >= 0
    if not ok.any():
        raise ValueError("no IFS pixel has a photometric fit (check fluxes and errors)")

    # 2. best-fit model spectra (observed frame), scaled, smoothed, on the cube's grid
    params = np.empty((int(ok.sum()), len(PARAM_NAMES)))
    for j, name in enumerate(PARAM_NAMES):
        column = lib.params.get(name)
        params[:, j] = DEFAULTS[name] if column is None else column[fit.best_model[ok]]
    params[:, PARAM_NAMES.index("log_mass")] = np.log10(fit.best_scale[ok])
    wave_obs, flux_obs = sed_model.spectrum(params, z=float(redshift), threads=threads)
    flux_obs = np.atleast_2d(flux_obs)
    if sigma_aa:
        # the templates already have their own resolution (MILES: 2.51 Å FWHM): only the
        # difference is added, σ² − ((1+z) σ_template)², as the spectral likelihood does
        s_t = np.asarray(sed_model.template_sigma) * (1.0 + float(redshift))
        sigma = np.sqrt(np.maximum(float(sigma_aa) ** 2 - s_t**2, 0.0))
        flux_obs = _core.smooth_gaussian(wave_obs, np.ascontiguousarray(flux_obs), sigma,
                                         nthreads)
    model_spec = np.full((cube.nwave, *phot.shape), np.nan)
    # models (and filters) are in vacuum: air wavelengths of the cube are converted
    wave_vac = to_vacuum(cube.wave, cube.wave_medium)
    interp = np.array([np.interp(wave_vac, wave_obs, f) for f in flux_obs]) / phot.unit
    model_spec[:, ys[ok], xs[ok]] = interp.T

    # 3. Legendre correction of every spectrum with a model
    if not ok.all():
        region = cube.spec_region.copy()
        region[ys[~ok], xs[~ok]] = False
        cube = SpecPhotCube(phot, cube.wave, cube.spec_flux, cube.spec_err, spec_region=region,
                            ifs_survey=cube.ifs_survey, wave_medium=cube.wave_medium)
    corrected, factor, correction = correct_specphot_cube(
        cube, model_spec, z=float(redshift), del_wave_nebem=del_wave_nebem, order=order,
        clip=clip, threads=threads)
    best = np.full(phot.shape, -1, dtype=np.int64)
    best[ys, xs] = fit.best_model
    chi2 = np.full(phot.shape, np.nan)
    chi2[ys, xs] = fit.chi2_min
    return SpectralMatch(cube=corrected, factor=factor, model_spec=model_spec,
                         correction=correction, best_model=best, chi2=chi2)
