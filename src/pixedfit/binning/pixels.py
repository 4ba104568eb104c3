"""SED-shape-aware pixel binning (piXedfit's binning, Abdurro'uf et al. 2021, with fixes).

Bins reach a signal-to-noise target in every band while only pixels whose SED *shape* is
similar to the bin's seed are merged. The kernel is C++ (:func:`pixedfit._core.bin_pixels`);
this module validates inputs, derives the systematic error term and packages the result in
a :class:`~pixedfit.cubes.BinnedCube` (FITS I/O in piXedfit's binned-cube layout, bin-level
tables). Plots: :mod:`pixedfit.binning.plots`.

Algorithm
---------
All pixel coordinates are zero-based ``(y, x)``; distances are between pixel centres.

1. **Systematic error term** (used only in the shape test, never in S/N sums). Around the
   brightest region pixel of the reference band, its 8 neighbours inside the image and the
   region are compared with it; the factor ``k`` is the smallest of 0.01, 0.02, … such
   that the median reduced χ² of these pairs, with errors ``sqrt(err² + (k f)²)``, is
   ≤ 2 (capped at 1.0; 0.01 when the pixel has no neighbour). The original used the
   asymmetric offsets {−2, −1, +1}, wrapped around the image edge and added a further 0.01
   after the search; ``sys_err_factor`` overrides the search.
2. **Seeds** — the unbinned region pixel with the largest flux in ``ref_band`` (ties: the
   first in row-major order). Fluxes are used as given: the original replaced negative
   fluxes in place by the band's smallest positive flux, which inflated S/N and the
   written bin fluxes; here the input is never modified and bin fluxes are the sums of the
   real pixel fluxes (errors in quadrature).
3. **Growth** — first the pixels within ``min_bin_diameter / 2`` of the seed, then rings
   ``R < d ≤ R + del_r`` (R grows by ``del_r``). A candidate joins only when its reduced χ²
   against the seed's SED (seed scaled onto it by least squares, χ² / n_bands, errors with
   the systematic term) is ≤ ``max_reduced_chi2``; a rejected pixel is not reconsidered
   for this bin. The test also applies in the first circle (``shape_test_first_circle``;
   the original exempted it), so every pixel of a regular bin is similar to its seed.
4. **Connectivity** — by default (``connected=True``) a bin is the 4-connected component
   (pixels sharing a side; hence also 8-connected), containing the seed, of the similar
   unbinned pixels found so far (similar pixels not yet connected wait and join when a
   later ring links them). ``connected=False`` gives the original's behaviour: every
   similar pixel of the ring joins, wherever it is.
5. **Closing** — after every step, the bin closes when S/N_b = ΣF_b / sqrt(Σσ_b²) reaches
   ``snr_target[b]`` in every band with a non-zero threshold. With ``noise_correlation`` (the
   pixel correlation ρ left by PSF matching and reprojection) the variance is the exact
   Σ_{i,j} ρ(i − j) σ_i σ_j of the bin's pixels, here and in step 8 and in the bin errors;
   step 6 then uses the bound Σ|ρ| Σσ². Quadrature sums of correlated pixels overstate
   the S/N (by 2.5× for a Gaussian smoothing of σ = 1.5 pixels, tests/test_binning_noise.py).
6. **Leftover rule** (the original's) — after a ring that leaves the bin below target, if
   the sum of *all* unbinned region pixels fails the target in some band, no further bin
   is grown: the growth phase ends and the unbinned pixels go to steps 8–9.
7. **Termination** (the original could loop forever) — a growth stops without success when
   the next ring would start beyond ``max_radius`` (if given), beyond the farthest corner of
   the region's bounding box, or, for connected bins, more than 1.5 pixel beyond the bin's
   farthest pixel (no new pixel can touch the bin any more). Its pixels stay available to
   later bins but never seed a bin again. Every pixel seeds at most one growth, so the
   loop always ends.
8. **Absorption** (``absorb_leftover``, new) — after the growth phase, an unbinned pixel
   touching a bin (by a side) joins the most similar such bin whose seed it passes the
   shape test against, provided the bin keeps its S/N target; neighbours of absorbed
   pixels are examined again. This shrinks the leftover and keeps every property below.
9. **Leftover bin** — the pixels still unbinned form one last bin, flagged ``leftover``.

Hence: every region pixel is in exactly one bin; all bins except the last one, when it is
flagged ``leftover``, meet the S/N target; the leftover bin may be fragmented and mixes
SEDs. Bins are numbered from 1 in creation order; 0 in ``bin_map`` = outside the region.
The cost grows like (region pixels) × (bin size): each growth visits only its own disk (a
failed growth of ``connected=False`` may sweep the region once), the leftover rule uses
running totals, seeds come from one sort. OpenMP serves the O(N) data preparation and the
spectral sums of large cubes; the growth itself is sequential, since each bin depends on
the bins before it. The result is deterministic and independent of the number of threads.

Errors: every S/N decision above (targets, leftover rule, absorption) and the bin errors use
the statistical pixel errors only. Calibration errors are a common offset of all pixels of a
band: they do not average down in a bin, so no amount of binning can beat them and adding
them would make high-S/N targets unreachable. The cube keeps the per-band fractions
(:attr:`BinnedCube.calib_err`, from the flux map's ``CALERR<i>``) and the fit adds them to
the binned SEDs (:mod:`pixedfit.fitting.errors`).

With ``connected=False, shape_test_first_circle=False, absorb_leftover=False``, fluxes
whose negatives are replaced as the original did, and the original's factor, the bin map is
identical to the original's (tested against the reference re-implementation).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import _core
from .._fits import open_fits
from ..cubes import BinnedCube, FluxCube, SpecPhotCube, first_pixels, read_cube
from ..parallel import resolve_threads

__all__ = [
    "bin_file",
    "bin_images",
    "bin_pixels",
    "bin_with_map",
    "correlated_bin_variance",
    "reduced_chi2",
    "systematic_error_factor",
]

PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------- helpers


def reduced_chi2(
    f1: ArrayLike, s1: ArrayLike, f2: ArrayLike, s2: ArrayLike
) -> NDArray[np.float64] | float:
    """Reduced χ² of SED(s) ``f2`` against ``f1`` scaled onto them by least squares.

    ``a = Σ f1 f2 / s² / Σ f1² / s²``, ``χ² = Σ (f2 − a f1)² / s²`` with
    ``s² = s1² + s2²``, divided by the number of bands (last axis). Arrays broadcast.

    Parameters
    ----------
    f1, s1 : array_like, shape (..., nband)
        The reference SED(s) and their errors (any flux unit).
    f2, s2 : array_like, shape (..., nband)
        The SED(s) compared and their errors, in the same unit.

    Returns
    -------
    float or ndarray, shape (...)
        The reduced χ² (a float for 1-D inputs).

    Raises
    ------
    ValueError
        If ``s1² + s2²`` is not finite and > 0 in every band (zero errors give no χ²).
    """
    f1, s1, f2, s2 = (np.asarray(v, dtype=np.float64) for v in (f1, s1, f2, s2))
    var = s1 * s1 + s2 * s2
    if not np.all(np.isfinite(var) & (var > 0)):
        raise ValueError("s1, s2: the errors must be finite with s1² + s2² > 0 in every band "
                         "(all-zero errors give no reduced chi2)")
    den = np.sum(f1 * f1 / var, axis=-1)
    num = np.sum(f1 * f2 / var, axis=-1)
    a = np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)
    chi2 = np.sum((f2 - np.expand_dims(a, -1) * f1) ** 2 / var, axis=-1) / f1.shape[-1]
    return float(chi2) if np.ndim(chi2) == 0 else chi2


def systematic_error_factor(
    cube: FluxCube, ref_band: int | str | None = None, limit: float = 2.0,
    step: float = 0.01, max_factor: float = 1.0,
) -> float:
    """Systematic error fraction of the shape test, from the brightest pixel's neighbours.

    Parameters
    ----------
    cube : FluxCube
        The photometric cube.
    ref_band : int or str, optional
        Band defining the brightest pixel (default: the middle band).
    limit : float
        Median reduced χ² to reach (2, as the original).
    step, max_factor : float
        Grid step and cap of the factor.

    Returns
    -------
    float
        The smallest ``k`` on the grid ``step, 2 step, …`` with median reduced χ² ≤ limit
        between the brightest pixel and its 8 neighbours (in image and region), errors
        ``sqrt(err² + (k f)²)``; ``max_factor`` if none; ``step`` without neighbours.
    """
    b = _ref_band(cube, ref_band)
    ref = np.where(cube.region, cube.flux[b], -np.inf)
    yc, xc = np.unravel_index(int(np.argmax(ref)), ref.shape)
    ny, nx = cube.shape
    nbrs = [(yc + dy, xc + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
            if (dy or dx) and 0 <= yc + dy < ny and 0 <= xc + dx < nx
            and cube.region[yc + dy, xc + dx]]
    if not nbrs:
        return step
    ys, xs = np.array(nbrs).T
    f1, e1 = cube.flux[:, yc, xc], cube.flux_err[:, yc, xc]
    f2, e2 = cube.flux[:, ys, xs].T, cube.flux_err[:, ys, xs].T
    nsteps = round(max_factor / step)
    for i in range(1, nsteps + 1):
        k = i * step
        chi = reduced_chi2(f1, np.hypot(e1, k * f1), f2, np.hypot(e2, k * f2))
        if np.median(chi) <= limit:
            return k
    return max_factor


def _ref_band(cube: FluxCube, ref_band: int | str | None) -> int:
    if ref_band is None:
        return (cube.nbands - 1) // 2
    return cube.band_index(ref_band)


def _thresholds(snr_target: Any, nbands: int) -> NDArray[np.float64]:
    if snr_target is None:
        return np.full(nbands, 5.0)
    try:
        arr = np.array(snr_target, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError("snr_target: expected a number or one number per band, got "
                        f"{snr_target!r}") from exc
    if arr.ndim == 0:
        arr = np.full(nbands, float(arr))
    if arr.ndim != 1 or arr.size != nbands:
        raise ValueError(f"snr_target: expected one value per band ({nbands}), got shape "
                         f"{arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError("snr_target: thresholds must be finite and >= 0 (0 = no requirement)")
    return arr


def _positive(value: Any, name: str, allow_zero: bool = False, allow_inf: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected a number, got {value!r}") from exc
    ok = (v >= 0 if allow_zero else v > 0) and (np.isfinite(v) or (allow_inf and v > 0))
    if not ok:
        raise ValueError(f"{name}: must be {'>= 0' if allow_zero else '> 0'} and finite, got {v}")
    return v


def _threads(threads: int | None) -> int:
    return resolve_threads(threads)


# --------------------------------------------------------------------------- binning


def bin_pixels(
    cube: FluxCube | SpecPhotCube,
    ref_band: int | str | None = None,
    min_bin_diameter: float = 4.0,
    snr_target: float | Sequence[float] | None = None,
    max_reduced_chi2: float = 4.0,
    del_r: float = 2.0,
    *,
    connected: bool = True,
    shape_test_first_circle: bool = True,
    absorb_leftover: bool = True,
    sys_err_factor: float | None = None,
    max_radius: float | None = None,
    noise_correlation: Mapping[str, Any] | PathLike | None = None,
    threads: int | None = None,
    spectral_noise: Any = None,
) -> BinnedCube:
    """Bin the pixels of a cube so that every bin reaches S/N in every band (see module doc).

    Parameters
    ----------
    cube : FluxCube or SpecPhotCube
        Photometric cube (band, y, x), or spectrophotometric cube: the photometry (its
        region) is binned, then the spectra are summed on the same map; a bin has a spectrum
        when all its pixels lie in the IFS region.
    ref_band : int or str, optional
        Band (index or filter name) ordering the seeds; default the middle band
        ``(nbands − 1) // 2``.
    min_bin_diameter : float
        Diameter (pixels) of the first circle around the seed, >= 0.
    snr_target : float or sequence of float, optional
        S/N target: one value for all bands or one per band; 0 = no requirement in that
        band. Default 5 in every band. Statistical errors only (calibration errors are
        kept as ``calib_err`` and added by the fit).
    max_reduced_chi2 : float
        Maximum reduced χ² of a pixel's SED against the seed's (``np.inf`` disables the
        test).
    del_r : float
        Width (pixels) of the growth rings, > 0.
    connected : bool
        Keep bins 4-connected (default); ``False`` = the original's behaviour.
    shape_test_first_circle : bool
        Apply the shape test inside the first circle too (default; the original did not).
    absorb_leftover : bool
        After the growth phase, let unbinned pixels join a touching bin when they pass the
        shape test against its seed and the bin keeps its S/N target (default; the
        original had no such step).
    sys_err_factor : float, optional
        Systematic error fraction of the shape test; default from
        :func:`systematic_error_factor`.
    max_radius : float, optional
        Largest ring radius (pixels) a growth may start; default no limit beyond the
        region's extent.
    noise_correlation : mapping or path, optional
        The pixel noise correlation ρ(Δy, Δx) of each band after PSF matching and
        reprojection: a mapping filter name → ρ (odd square array, ρ(0, 0) = 1) or
        :class:`~pixedfit.images.align.ChainNoise`, or the ``<name>_noise.fits`` file the
        image processing writes. Bands without one are uncorrelated. With it, the S/N of
        growing and absorbing bins, and the bin errors, use the exact variance of the sum,
        Σ_{i,j ∈ bin} ρ(i − j) σ_i σ_j, instead of the quadrature sum (which overstates
        the S/N of correlated pixels); the rule that stops the growth phase when all free
        pixels together miss the target uses the bound Σ|ρ| Σσ².
    threads : int, optional
        OpenMP threads (None or <= 0: all cores); the result does not depend on it.
    spectral_noise : SpectralNoise, optional
        The noise model of the spectra of a spectrophotometric cube
        (:class:`pixedfit.ifs.spatial.SpectralNoise`, written by
        :func:`~pixedfit.ifs.match_imgifs_spatial` as ``<cube>_specnoise.fits``; any object
        with its ``bin_variances(spec_err, bin_map)``). The errors of the bin spectra then
        include the correlation of neighbouring pixels that PSF matching and reprojection
        make, and the covariance of the native spaxels; without it they are the quadrature
        sums, too small for any IFS cube (×1.2 for MUSE, ×2–4 for MaNGA bins).

    Returns
    -------
    BinnedCube
    """
    if isinstance(cube, SpecPhotCube):
        phot = cube.photometry
    elif isinstance(cube, FluxCube):
        phot = cube
    else:
        raise TypeError(f"cube: expected a FluxCube or SpecPhotCube, got {type(cube).__name__}")
    b = _ref_band(phot, ref_band)
    thr = _thresholds(snr_target, phot.nbands)
    dmin = _positive(min_bin_diameter, "min_bin_diameter", allow_zero=True)
    dr = _positive(del_r, "del_r")
    chi_lim = _positive(max_reduced_chi2, "max_reduced_chi2", allow_inf=True)
    if sys_err_factor is None:
        k = systematic_error_factor(phot, b)
    else:
        k = _positive(sys_err_factor, "sys_err_factor", allow_zero=True)
    rmax = 0.0 if max_radius is None else _positive(max_radius, "max_radius")
    nthreads = _threads(threads)
    rho = _noise_correlation(noise_correlation, phot.filters)
    rho_stack = None
    if rho is not None:  # one (nbands, 2h+1, 2h+1) array; uncorrelated bands get a delta
        h = max((r.shape[0] // 2 for r in rho if r is not None), default=0)
        rho_stack = np.zeros((phot.nbands, 2 * h + 1, 2 * h + 1))
        for i, r in enumerate(rho):
            if r is None:
                rho_stack[i, h, h] = 1.0
            else:
                d = h - r.shape[0] // 2
                rho_stack[i, d : d + r.shape[0], d : d + r.shape[0]] = r
    # NaN outside the region is never read by the kernel
    out = _core.bin_pixels(
        phot.flux, phot.flux_err,
        phot.region.astype(np.uint8), b, thr, 0.5 * dmin, dr,
        chi_lim, k, rmax,
        bool(connected), bool(shape_test_first_circle), bool(absorb_leftover),
        rho=rho_stack, threads=nthreads,
    )
    nbins = int(out.bin_map.max())
    seed_flat = out.seed
    seed = np.column_stack(np.divmod(np.where(seed_flat >= 0, seed_flat, 0), phot.shape[1]))
    seed[seed_flat < 0] = -1
    leftover = np.zeros(nbins, bool)
    if out.has_leftover:
        leftover[-1] = True
    params = {
        "ref_band": b, "min_bin_diameter": dmin, "snr_target": thr,
        "max_reduced_chi2": chi_lim, "del_r": dr,
        "connected": bool(connected), "shape_test_first_circle": bool(shape_test_first_circle),
        "absorb_leftover": bool(absorb_leftover), "sys_err_factor": k, "max_radius": max_radius,
        "n_failed_seeds": int(out.n_failed_seeds), "n_absorbed": int(out.n_absorbed),
        "noise_correlation": rho is not None,
    }
    bin_err = np.sqrt(out.bin_var)
    if rho is not None:
        var = correlated_bin_variance(phot.flux_err, out.bin_map, rho)
        bin_err = np.sqrt(np.maximum(var, 0.0))
    return _package(cube, phot, out.bin_map, out.bin_flux, bin_err,
                    leftover, seed, out.pixel_chi2, params, nthreads, spectral_noise)


def _spectral_noise(noise: Any, cube: FluxCube | SpecPhotCube) -> Any:
    """``noise`` when it applies to ``cube``'s spectra (None without spectra); TypeError or
    ValueError naming ``spectral_noise`` when it cannot."""
    if noise is None or not isinstance(cube, SpecPhotCube):
        return None
    if not callable(getattr(noise, "bin_variances", None)):
        raise TypeError("spectral_noise: expected a SpectralNoise (pixedfit.ifs.spatial), "
                        f"got {type(noise).__name__}")
    nwave = np.asarray(getattr(noise, "group", ())).size
    if nwave != cube.wave.size:
        raise ValueError(f"spectral_noise: a model of {nwave} channels for a cube of "
                         f"{cube.wave.size}: not this cube's")
    return noise


def _noise_correlation(spec: Any, filters: Sequence[str]) -> list[NDArray | None] | None:
    """ρ per band (None: uncorrelated) from a mapping or a ``*_noise.fits`` file."""
    if spec is None:
        return None
    if isinstance(spec, str | os.PathLike):
        from ..images import read_noise_correlation  # heavy (reproject): on use

        spec = read_noise_correlation(spec)
    if not isinstance(spec, Mapping):
        raise TypeError("noise_correlation: a mapping filter -> rho, or a *_noise.fits path")
    unknown = sorted(set(spec) - set(filters))
    if unknown:
        raise ValueError(f"noise_correlation: filters {unknown} are not bands of the cube")
    out: list[NDArray | None] = []
    for name in filters:
        value = spec.get(name)
        if value is None:
            out.append(None)
            continue
        r = np.asarray(getattr(value, "rho", value), dtype=np.float64)
        if r.ndim != 2 or r.shape[0] != r.shape[1] or r.shape[0] % 2 == 0:
            raise ValueError(f"noise_correlation[{name!r}]: an odd square array of lags")
        h = r.shape[0] // 2
        ok = np.all(np.isfinite(r)) and abs(r[h, h] - 1.0) < 1e-6
        if not (ok and np.all(np.abs(r) <= 1.0 + 1e-9)):
            raise ValueError(f"noise_correlation[{name!r}]: correlation coefficients with "
                             "rho(0, 0) = 1 and |rho| <= 1")
        out.append(r)
    return out


def correlated_bin_variance(flux_err: ArrayLike, bin_map: ArrayLike,
                            rho: Sequence[NDArray[np.float64] | None]
                            ) -> NDArray[np.float64]:
    """Variance of the flux summed over each bin, with correlated pixel noise.

    Parameters
    ----------
    flux_err : array_like, shape (nband, ny, x)
        Pixel errors σ (any flux unit); NaN outside the binned pixels is ignored.
    bin_map : array_like of int, shape (ny, nx)
        Bin ids 1…n (0: not binned).
    rho : sequence of (2h+1, 2h+1) arrays or None, one per band
        Noise correlation coefficient at pixel lags (Δy, Δx) = −h…h (None: uncorrelated).

    Returns
    -------
    ndarray, shape (nbins, nband)
        Σ_{i,j ∈ bin} ρ(i − j) σ_i σ_j, in the unit of σ².
    """
    err = np.asarray(flux_err, dtype=np.float64)
    bm = np.asarray(bin_map)
    nbins = int(bm.max())
    ny, nx = bm.shape
    out = np.zeros((nbins, err.shape[0]))
    flat = bm.ravel()
    for b in range(err.shape[0]):
        s = np.where(bm > 0, np.nan_to_num(err[b]), 0.0)
        r = rho[b]
        if r is None:
            out[:, b] = np.bincount(flat, weights=(s * s).ravel(), minlength=nbins + 1)[1:]
            continue
        h = r.shape[0] // 2
        acc = np.zeros(nbins + 1)
        # sum over lags of rho(d) * sum_i s_i s_{i+d} [same bin]; pairs counted both ways
        for dy in range(-h, h + 1):
            for dx in range(-h, h + 1):
                c = r[dy + h, dx + h]
                if c == 0.0:
                    continue
                y0, y1 = max(0, -dy), min(ny, ny - dy)
                x0, x1 = max(0, -dx), min(nx, nx - dx)
                if y0 >= y1 or x0 >= x1:
                    continue
                a = bm[y0:y1, x0:x1]
                o = bm[y0 + dy:y1 + dy, x0 + dx:x1 + dx]
                same = (a == o) & (a > 0)
                w = (s[y0:y1, x0:x1] * s[y0 + dy:y1 + dy, x0 + dx:x1 + dx])[same]
                acc += c * np.bincount(a[same], weights=w, minlength=nbins + 1)
        out[:, b] = acc[1:]
    return out


def _package(cube: FluxCube | SpecPhotCube, phot: FluxCube, bin_map: NDArray[np.int32],
             bin_flux: NDArray[np.float64], bin_err: NDArray[np.float64],
             leftover: NDArray[np.bool_], seed: NDArray[np.int64],
             pixel_chi2: NDArray[np.float64] | None, params: dict[str, Any],
             threads: int, spectral_noise: Any = None) -> BinnedCube:
    nbins = int(bin_map.max())
    spec: dict[str, Any] = {}
    noise = _spectral_noise(spectral_noise, cube)
    params["spectral_noise"] = noise is not None
    if isinstance(cube, SpecPhotCube):
        outside = np.bincount(bin_map.ravel(), weights=(~cube.spec_region).ravel(),
                              minlength=nbins + 1)[1:]
        has = outside == 0
        sf = _core.bin_sums(np.ascontiguousarray(cube.spec_flux), bin_map, nbins, False,
                            threads).T
        if noise is None:
            se = _core.bin_sums(np.ascontiguousarray(cube.spec_err), bin_map, nbins, True,
                                threads).T
        else:  # correlated pixels: Σ ρ σ_i σ_j over each bin
            se = np.sqrt(np.maximum(noise.bin_variances(cube.spec_err, bin_map), 0.0))
        sf[~has] = np.nan
        se[~has] = np.nan
        spec = {"wave": cube.wave, "bin_spec_flux": sf, "bin_spec_err": se,
                "bin_has_spec": has, "spec_region": cube.spec_region}
    header = phot.header
    if isinstance(cube, SpecPhotCube):  # the fits read the spectra's medium from here
        header = header.copy()
        header["SPECMED"] = (cube.wave_medium, "medium of the WAVE wavelengths")
    return BinnedCube(
        bin_map, bin_flux, bin_err, phot.filters, unit=phot.unit, region=phot.region,
        leftover=leftover, seed=seed, pixel_chi2=pixel_chi2, params=params, z=phot.z,
        pixel_scale=phot.pixel_scale, gal_ebv=phot.gal_ebv, wcs=phot.wcs, header=header,
        **spec,
    )


def bin_with_map(cube: FluxCube | SpecPhotCube, bin_map: ArrayLike,
                 threads: int | None = None,
                 noise_correlation: Mapping[str, Any] | PathLike | None = None,
                 spectral_noise: Any = None) -> BinnedCube:
    """Bin a cube with a given bin map (ids 1…n, 0 = not binned), e.g. one made on another
    cube; pixels of bins must lie in the cube's region. Sums fluxes; errors in quadrature,
    or with the pixel noise correlation.

    Parameters
    ----------
    cube : FluxCube or SpecPhotCube
        The cube to bin (spectra too, as :func:`bin_pixels`).
    bin_map : array_like of int, shape (ny, nx)
        Bin ids 1…n without gaps, 0 outside the bins.
    threads : int, optional
        OpenMP threads (None: all cores).
    noise_correlation : mapping or path, optional
        Pixel noise correlation of each band, as in :func:`bin_pixels`.
    spectral_noise : SpectralNoise, optional
        Noise model of the spectra, as in :func:`bin_pixels`.

    Returns
    -------
    BinnedCube
    """
    phot = cube.photometry if isinstance(cube, SpecPhotCube) else cube
    if not isinstance(phot, FluxCube):
        raise TypeError(f"cube: expected a FluxCube or SpecPhotCube, got {type(cube).__name__}")
    bm = np.asarray(bin_map)
    if bm.shape != phot.shape:
        raise ValueError(f"bin_map: expected shape {phot.shape}, got {bm.shape}")
    if not np.issubdtype(bm.dtype, np.number) or np.any(~np.isfinite(bm)) or \
            np.any(bm != np.round(bm)) or np.any(bm < 0):
        raise ValueError("bin_map: bin ids must be integers >= 0")
    top = bm.max() if bm.size else 0
    # numpy stubs: min() of an np.signedinteger and an int is not seen as comparable
    if top > min(np.count_nonzero(bm), np.iinfo(np.int32).max):  # type: ignore[operator]
        # ids run 1..n without gaps, so n cannot exceed the binned pixels (nor int32, whose
        # cast would wrap 2**32 + 1 to 1)
        raise ValueError(f"bin_map: bin ids must run 1..n without gaps; the largest id, "
                         f"{int(top)}, exceeds the {np.count_nonzero(bm)} binned pixels")
    bm = bm.astype(np.int32)
    if np.any((bm > 0) & ~phot.region):
        raise ValueError("bin_map: binned pixels outside the cube's region")
    nbins = int(bm.max())
    first_pixels(bm, nbins)  # checks ids run without gaps
    nthreads = _threads(threads)
    flux = _core.bin_sums(np.nan_to_num(phot.flux), bm, nbins, False, nthreads).T
    rho = _noise_correlation(noise_correlation, phot.filters)
    if rho is None:
        err = _core.bin_sums(np.nan_to_num(phot.flux_err), bm, nbins, True, nthreads).T
    else:
        err = np.sqrt(np.maximum(correlated_bin_variance(phot.flux_err, bm, rho), 0.0))
    return _package(cube, phot, bm, flux, err, np.zeros(nbins, bool),
                    np.full((nbins, 2), -1, np.int64), None,
                    {"noise_correlation": rho is not None}, nthreads, spectral_noise)


def bin_images(
    images: Sequence[ArrayLike | PathLike],
    var_images: Sequence[ArrayLike | PathLike],
    filters: Sequence[str] | None = None,
    region: ArrayLike | None = None,
    ref_band: int | str | None = None,
    min_bin_diameter: float = 2.0,
    snr_target: float | Sequence[float] | None = None,
    max_reduced_chi2: float = 4.0,
    del_r: float = 2.0,
    unit: float = 1.0,
    **kwargs: Any,
) -> BinnedCube:
    """Bin a list of aligned images with their variance images (piXedfit's
    ``pixel_binning_images``).

    Parameters
    ----------
    images, var_images : sequence of 2-D arrays or FITS paths (data of the first HDU with
        data), all of the same shape (y, x), one per band, in units of ``unit``.
    filters : sequence of str, optional
        Band names (default ``band0``, ``band1``, …).
    region : array_like of bool, optional
        Pixels to bin; default every pixel with finite values and variance > 0.
    ref_band, snr_target, max_reduced_chi2, del_r
        As :func:`bin_pixels`.
    min_bin_diameter : float
        As :func:`bin_pixels`, with the original's default of 2 pixels.
    unit : float
        f_λ (erg s⁻¹ cm⁻² Å⁻¹) of one image unit.
    **kwargs
        Further options of :func:`bin_pixels` (``connected``, ``threads``, …).

    Returns
    -------
    BinnedCube
    """
    if len(images) != len(var_images):
        raise ValueError(f"images, var_images: {len(images)} images but "
                         f"{len(var_images)} variance images")
    if len(images) == 0:
        raise ValueError("images: no image given")
    sci = np.stack([_image_data(im, f"images[{i}]") for i, im in enumerate(images)])
    var = np.stack([_image_data(v, f"var_images[{i}]") for i, v in enumerate(var_images)])
    if var.shape != sci.shape:
        raise ValueError("var_images: shapes differ from the images")
    if np.any(var[np.isfinite(var)] < 0):
        raise ValueError("var_images: negative variances")
    names = list(filters) if filters is not None else [f"band{i}" for i in range(len(sci))]
    with np.errstate(invalid="ignore"):
        err = np.sqrt(var)
    cube = FluxCube(sci, err, names, region=region, unit=unit)
    return bin_pixels(cube, ref_band=ref_band, min_bin_diameter=min_bin_diameter,
                      snr_target=snr_target, max_reduced_chi2=max_reduced_chi2, del_r=del_r,
                      **kwargs)


def _image_data(item: ArrayLike | PathLike, name: str) -> NDArray[np.float64]:
    if isinstance(item, str | os.PathLike):
        with open_fits(item) as hdul:
            for hdu in hdul:
                if hdu.data is not None:
                    data = np.asarray(hdu.data, np.float64)
                    break
            else:
                raise ValueError(f"{name}: {item} holds no image data")
    else:
        data = np.asarray(item, np.float64)
    if data.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D image, got shape {data.shape}")
    return data


def bin_file(path: PathLike, out_path: PathLike | None = None, overwrite: bool = False,
             **kwargs: Any) -> BinnedCube:
    """Bin the cube stored in a FITS file (flux map or spectrophotometric cube, pixedfit's or
    piXedfit's layout) and optionally write the binned cube.

    Parameters
    ----------
    path : path-like
        Input cube file.
    out_path : path-like, optional
        Where to write the :class:`BinnedCube` (atomically); nothing is written if None.
    overwrite : bool
        Replace an existing ``out_path``.
    **kwargs
        Passed to :func:`bin_pixels`.
    """
    res = bin_pixels(read_cube(path), **kwargs)
    if out_path is not None:
        res.write(out_path, overwrite=overwrite)
    return res
