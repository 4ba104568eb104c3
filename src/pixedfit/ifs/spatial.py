"""Spatial matching of an IFS cube to a photometric cube: :func:`match_imgifs_spatial`.

The IFS cube is brought to the PSF and pixel grid of the imaging data, channel by channel:

1. **Region** — spaxels with valid data in more than ``min_good_fraction`` of the channels
   form the native IFS region; outside it the cube is treated as missing.
2. **Galactic extinction** — spectra not yet corrected (MaNGA, MUSE) are multiplied by
   10^(0.4 A(λ)) with the Fitzpatrick (1999) law
   (:func:`pixedfit.images.extinction.f99_extinction`) and the file's E(B−V), or, when the
   file has none, the photometry's ``gal_ebv`` (the value its fluxes were corrected with).
   CALIFA DR3 spectra are already corrected and left alone.
3. **Spectral smoothing** (optional) — a Gaussian of σ = ``kernel_sigma`` Å along wavelength
   (exact weights on the actual, possibly log-spaced, grid; variances with the squared
   weights; masked channels excluded and left masked).
4. **PSF matching** — per channel, a Gaussian kernel of FWHM ``sqrt(FWHM_img² −
   FWHM_ifs(λ)²)`` (channels whose kernels differ by less than ``fwhm_tolerance`` share
   one) or the kernels supplied. The Gaussian kernels are built for *discrete* convolution
   of pixelated data (:func:`discrete_gaussian_kernel`: second moment σ², not σ² + 1/12 px²
   as a pixel-integrated Gaussian would give) and narrowed by the mean blur that the
   reprojection adds (:func:`resampling_variance`: second moment of the overlap weights
   beyond what the change of pixel size implies; 0 for aligned grids with an integer
   pixel ratio, 0.17 px² for a rotated 2× coarser grid). Without this the matched cube is
   measurably broader than the images (−2.6 % at the peak of a compact galaxy). Flux is
   convolved as in :func:`pixedfit.images.psf.convolve_image` (normalised convolution:
   masked spaxels are excluded and stay masked).
5. **Reprojection** — onto the imaging grid with exact spherical-polygon overlaps
   (``reproject_exact``), flux-conserving: the fraction of every IFS spaxel falling in every
   image pixel is computed once as a sparse matrix W (impulse images on a lattice whose
   spacing keeps their footprints apart) and applied to all channels. An image pixel is
   kept only when the region covers ≥ 99.9 % of it and no masked spaxel overlaps it (the
   rule of :func:`pixedfit.images.align.reproject_image`).
6. **Errors** — the variance of every output value is propagated exactly for independent
   input spaxels: with M = W · diag(1/D) · C · diag(g) (C the convolution, g the region,
   D = C g the normalisation), ``var_out = (M ∘ M) var_in``. (The original convolved the
   variance with K and reprojected it like a flux, which is neither.) Channels with extra
   masked spaxels inside the region use the region's normalisation in this formula (their
   flux uses the exact one). The native spaxels are not independent: their covariance
   model (``covariance=``, :mod:`pixedfit.ifs.covariance`) multiplies every output
   variance by γ_j = (M R Mᵀ)_jj / (M Mᵀ)_jj for a correlation function R, or by
   β(N_j)², N_j = (Σ_i M_ji)² / Σ_i M_ji², for a survey relation β(N) (exact for noise of
   uniform amplitude). Neighbouring output pixels are correlated; the correlation
   (:class:`SpectralNoise`) is returned with ``return_noise`` and written next to the
   output.

The result is a :class:`pixedfit.cubes.SpecPhotCube` in the photometry's flux unit, with the
IFS region on the imaging grid (``spec_region`` = covered pixels of the photometric region),
the wavelengths converted to the requested medium (vacuum by default) and header keys
``IFSSURVE``, ``SPECMED`` (medium), ``IFSPSF`` (median native IFS PSF FWHM, arcsec),
``IFSPIX`` (IFS spaxel, arcsec), ``SPECSIG`` (smoothing σ, Å; 0 = none), ``IFSEBV``,
``IFSCOV``… (covariance model of the spaxels) and ``IFSCOVF`` (median error factor).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from numpy.typing import ArrayLike, NDArray
from scipy import sparse
from scipy.signal import fftconvolve

from .._paths import atomic_path
from ..cubes import FluxCube, SpecPhotCube
from ..filters import get_filter_curve
from ..images.extinction import f99_extinction
from ..images.psf import normalize_psf
from ..lines import air_to_vacuum, vacuum_to_air
from ..validation import pixel_scale_arcsec
from .covariance import SpaxelCovariance, measure_covariance, resolve_covariance
from .operators import (
    COVER,
    convolution_matrix,
    psf_matching_kernels,
    reprojection_matrix,
    resampling_variance,
    smooth_spectra,
)
from .readers import IFSCube, read_ifs
from .registration import blur_photometry as blur_photometry_to
from .registration import register_to_photometry

__all__ = ["SpectralNoise", "match_imgifs_spatial"]

PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------- noise


@dataclass(frozen=True)
class SpectralNoise:
    """Noise correlation between the pixels of a matched cube.

    PSF matching and reprojection make neighbouring output pixels correlated, so the
    variance of a spectrum summed over a bin is not the sum of the pixel variances (for
    3×3 bins of a MaNGA cube matched to a rotated 1″ grid it is ≈ 3.9 times that sum,
    before the covariance of the native spaxels themselves).

    Attributes
    ----------
    group : ndarray of int, shape (nwave,)
        Kernel group of every channel.
    rho : ndarray, shape (ngroups, 2h + 1, 2h + 1)
        Correlation coefficient ρ(Δy, Δx) between output pixels per group, averaged over
        the IFS region (exact for uniform input noise; ρ(0, 0) = 1). With a ``"kernel"``
        spaxel covariance it includes the native correlation.
    native : SpaxelCovariance or None
        Covariance model of the native spaxels (None: independent).
    rowsum, selfvar : ndarray, shape (ngroups, ny, nx), or None
        Per output pixel, Σ_i M_ji and Σ_i M_ji² of its weights on the native spaxels
        (used with a ``"relation"`` model: effective numbers of spaxels combined).
    """

    group: NDArray[np.int64]
    rho: NDArray[np.float64]
    native: SpaxelCovariance | None = None
    rowsum: NDArray[np.float64] | None = None
    selfvar: NDArray[np.float64] | None = None

    def binned_variance(self, spec_err: ArrayLike, mask: ArrayLike) -> NDArray[np.float64]:
        """Variance (nwave,) of the spectrum summed over the pixels of ``mask`` (y, x): the
        one-bin case of :meth:`bin_variances`.

        Parameters
        ----------
        spec_err : array_like, shape (nwave, ny, nx)
            Pixel errors of the spectra (the cube's flux unit).
        mask : array_like of bool, shape (ny, nx)
            The pixels of the bin.

        Returns
        -------
        ndarray, shape (nwave,)
            Variance of the summed spectrum (unit²); NaN for channels with a non-finite
            error in the bin.
        """
        m = np.asarray(mask, dtype=bool)
        if not m.any():
            raise ValueError("mask: empty region")
        return self.bin_variances(spec_err, m.astype(np.int32))[0]

    def bin_variances(self, spec_err: ArrayLike, bin_map: ArrayLike) -> NDArray[np.float64]:
        """Variances of the spectra summed over every bin of ``bin_map``, with the
        correlation ρ of the output pixels: ``Σ_{i,j ∈ bin} ρ(i − j) σ_i σ_j`` per channel
        (what :func:`pixedfit.images.align.binned_variance` gives for one bin and channel,
        for all bins and channels at once).

        With a ``"relation"`` model β(N) of the native spaxels, the pixel errors are first
        divided by their own β(N_j) (back to independent spaxels), the sum is propagated
        with ρ, and the result is multiplied by β(N_bin)², N_bin = (Σ_j Σ_i M_ji)² /
        Var(Σ_j M_j · unit noise) the effective number of native spaxels of the bin.

        Parameters
        ----------
        spec_err : array_like, shape (nwave, ny, nx)
            Pixel errors of the spectra (the cube's flux unit).
        bin_map : array_like of int, shape (ny, nx)
            Bin ids 1…nbins (0: not binned).

        Returns
        -------
        ndarray, shape (nbins, nwave)
            Variance of each bin's summed spectrum (unit²); NaN for a channel with a
            non-finite error in the bin.
        """
        err = np.asarray(spec_err, dtype=np.float64)
        bm = np.asarray(bin_map)
        if err.ndim != 3 or err.shape[0] != self.group.size or err.shape[1:] != bm.shape:
            raise ValueError("spec_err, bin_map: expected (nwave, y, x) and (y, x) shapes "
                             f"matching {self.group.size} channels")
        nbins = int(bm.max(initial=0))
        nwave = err.shape[0]
        pairs = _same_bin_pairs(bm, self.rho.shape[-1] // 2)
        inside = bm > 0
        bad = ~np.isfinite(err[:, inside])  # (nwave, npix)
        nbad = np.zeros((nwave, nbins + 1))
        for ch in np.flatnonzero(bad.any(axis=1)):
            nbad[ch] = np.bincount(bm[inside][bad[ch]], minlength=nbins + 1)
        e = np.where(np.isfinite(err), err, 0.0)
        relation = (self.native is not None and self.native.kind == "relation"
                    and self.rowsum is not None and self.selfvar is not None)
        if relation:
            assert self.native is not None and self.rowsum is not None
            assert self.selfvar is not None
            rs, sv = self.rowsum, self.selfvar  # (ngroups, ny, nx)
            with np.errstate(invalid="ignore", divide="ignore"):
                neff = np.where(sv > 0, rs**2 / sv, 1.0)
            pix_beta = self.native.factor(neff)  # (ngroups, ny, nx)
            e = e / pix_beta[self.group]
            ngroup = rs.shape[0]
            vb = _lag_sums(np.sqrt(np.clip(sv, 0.0, None)).reshape(ngroup, -1), pairs,
                           self.rho, np.arange(ngroup), nbins)  # (ngroups, nbins + 1)
            tot = np.stack([np.bincount(bm.ravel(), weights=rs[g].ravel(),
                                        minlength=nbins + 1) for g in range(ngroup)])
            with np.errstate(invalid="ignore", divide="ignore"):
                nbin = np.where(vb > 0, tot**2 / vb, 1.0)
            bin_beta = self.native.factor(nbin)  # (ngroups, nbins + 1)
        out = _lag_sums(e.reshape(nwave, -1), pairs, self.rho, self.group, nbins)
        if relation:
            out *= bin_beta[self.group] ** 2
        out[nbad > 0] = np.nan
        return np.ascontiguousarray(out[:, 1:].T)

    def write(self, path: PathLike, overwrite: bool = False) -> None:
        """Write ``GROUP`` and ``RHO`` extensions (atomically).

        Parameters
        ----------
        path : path-like
            FITS file to write.
        overwrite : bool
            Replace an existing file (else FileExistsError).
        """
        if os.path.exists(path) and not overwrite:
            raise FileExistsError(f"{path} exists (use overwrite=True)")
        prim = fits.PrimaryHDU()
        hdus = [prim, fits.ImageHDU(self.group, name="GROUP"),
                fits.ImageHDU(self.rho, name="RHO")]
        if self.native is not None:
            for key, val, com in self.native.header_cards():
                prim.header[key] = (val, com)
        if self.rowsum is not None and self.selfvar is not None:
            hdus += [fits.ImageHDU(self.rowsum, name="ROWSUM"),
                     fits.ImageHDU(self.selfvar, name="SELFVAR")]
        with atomic_path(path) as tmp:
            fits.HDUList(hdus).writeto(tmp, overwrite=True)

    @classmethod
    def read(cls, path: PathLike) -> SpectralNoise:
        """Read a file written by :meth:`write`."""
        with fits.open(path, memmap=False) as hdul:
            try:
                group = np.array(hdul["GROUP"].data, dtype=np.int64)
                rho = np.array(hdul["RHO"].data, dtype=np.float64)
            except KeyError as exc:
                raise ValueError(f"{path}: not a spectral-noise file ({exc})") from None
            native = SpaxelCovariance.from_header(hdul[0].header)
            names = [h.name for h in hdul]
            rowsum = selfvar = None
            if "ROWSUM" in names and "SELFVAR" in names:
                rowsum = np.array(hdul["ROWSUM"].data, dtype=np.float64)
                selfvar = np.array(hdul["SELFVAR"].data, dtype=np.float64)
        if rho.ndim != 3 or group.max() >= rho.shape[0]:
            raise ValueError(f"{path}: inconsistent GROUP and RHO extensions")
        return cls(group, rho, native, rowsum, selfvar)


def _median_over_channels(groups: list[tuple[NDArray[np.float64], int]]) -> float:
    """Median over every (channel, pixel) value when each group's pixel values hold for its
    number of channels (np.median of the repeated values, without repeating them); 1 when
    there are none."""
    if not groups:
        return 1.0
    vals = np.concatenate([v for v, _ in groups])
    counts = np.concatenate([np.full(v.size, n) for v, n in groups])
    order = np.argsort(vals, kind="stable")
    vals, cum = vals[order], np.cumsum(counts[order])
    total = int(cum[-1])

    def nth(i: int) -> float:  # the i-th (0-based) of the sorted repeated values
        return float(vals[np.searchsorted(cum, i, side="right")])

    half = total // 2
    return nth(half) if total % 2 else 0.5 * (nth(half - 1) + nth(half))


def _same_bin_pairs(bin_map: NDArray, half: int
                    ) -> list[tuple[int, int, NDArray[np.intp], NDArray[np.intp],
                                    NDArray[np.intp], NDArray[np.intp]]]:
    """For every lag (Δy, Δx) = −half…half, the flat pixel indices (a, b = a + lag) of the
    pairs inside one bin, sorted by bin, with the bins present and where each starts."""
    ny, nx = bin_map.shape
    flat = np.arange(ny * nx).reshape(ny, nx)
    out = []
    for dy in range(-half, half + 1):
        for dx in range(-half, half + 1):
            y0, y1 = max(0, -dy), min(ny, ny - dy)
            x0, x1 = max(0, -dx), min(nx, nx - dx)
            if y0 >= y1 or x0 >= x1:
                continue
            a = bin_map[y0:y1, x0:x1]
            same = (a == bin_map[y0 + dy:y1 + dy, x0 + dx:x1 + dx]) & (a > 0)
            ia = flat[y0:y1, x0:x1][same]
            ib = flat[y0 + dy:y1 + dy, x0 + dx:x1 + dx][same]
            bins = a[same]
            order = np.argsort(bins, kind="stable")
            present, starts = np.unique(bins[order], return_index=True)
            out.append((dy + half, dx + half, ia[order], ib[order], present, starts))
    return out


def _lag_sums(values: NDArray[np.float64], pairs: list, rho: NDArray[np.float64],
              group: NDArray[np.int64], nbins: int, chunk: int = 256) -> NDArray[np.float64]:
    """``Σ_lag ρ_g(lag) Σ_{pairs of the lag in a bin} v_a v_b`` for every row of ``values``
    (rows, npix; row r with the ρ of group ``group[r]``) and bin: shape (rows, nbins + 1),
    column 0 unused. Rows are done ``chunk`` at a time (the pair products of one lag take
    rows × pairs floats)."""
    rows = values.shape[0]
    out = np.zeros((rows, nbins + 1))
    for lo in range(0, rows, chunk):
        v = values[lo:lo + chunk]
        g = group[lo:lo + chunk]
        for jy, jx, ia, ib, present, starts in pairs:
            c = rho[g, jy, jx]
            if ia.size == 0 or not np.any(c):
                continue
            sums = np.add.reduceat(v[:, ia] * v[:, ib], starts, axis=1)
            out[lo:lo + chunk, present] += c[:, None] * sums
    return out


def _lag_correlation(cov_mat: sparse.spmatrix, shape_out: tuple[int, int],
                     sel: NDArray[np.bool_], half: int) -> NDArray[np.float64]:
    """Mean correlation ρ(Δy, Δx) over pixel pairs inside ``sel`` of a covariance matrix
    of the output pixels (M Mᵀ for independent input, M R Mᵀ for correlated input)."""
    cov = sparse.coo_matrix(cov_mat)
    d = np.asarray(cov.diagonal())
    nxo = shape_out[1]
    r, c, v = cov.row, cov.col, cov.data
    flat = sel.ravel()
    keep = flat[r] & flat[c] & (d[r] > 0) & (d[c] > 0)
    r, c, v = r[keep], c[keep], v[keep]
    dy, dx = r // nxo - c // nxo, r % nxo - c % nxo
    near = (np.abs(dy) <= half) & (np.abs(dx) <= half)
    n = 2 * half + 1
    sums = np.zeros((n, n))
    np.add.at(sums, (dy[near] + half, dx[near] + half),
              v[near] / np.sqrt(d[r[near]] * d[c[near]]))
    s = sel.astype(float)
    pairs = fftconvolve(s, s[::-1, ::-1], mode="full")
    pairs = _lag_window(pairs, sel.shape[0] - 1, sel.shape[1] - 1, half)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(pairs > 0, sums / pairs, 0.0)
    rho[half, half] = 1.0
    return 0.5 * (rho + rho[::-1, ::-1])


def _lag_window(pairs: NDArray[np.float64], cy: int, cx: int, half: int) -> NDArray:
    """Lags −half..half around (cy, cx) of a full autocorrelation (0 beyond its edge)."""
    out = np.zeros((2 * half + 1, 2 * half + 1))
    for a in range(-half, half + 1):
        for b in range(-half, half + 1):
            y, x = cy + a, cx + b
            if 0 <= y < pairs.shape[0] and 0 <= x < pairs.shape[1]:
                out[a + half, b + half] = round(pairs[y, x])
    return out


# --------------------------------------------------------------------------- checks


def _check_filters(filters: Sequence[str], wave: NDArray[np.float64]) -> list[str]:
    """Bands whose curve overlaps the spectral range; ValueError when none does."""
    overlapping, covered = [], []
    for name in filters:
        w, t = get_filter_curve(name)
        sig = w[t > 0.01 * t.max()]
        if sig[-1] > wave[0] and sig[0] < wave[-1]:
            overlapping.append(name)
        if sig[0] >= wave[0] and sig[-1] <= wave[-1]:
            covered.append(name)
    if not overlapping:
        raise ValueError(
            f"the IFS wavelength range {wave[0]:.0f}-{wave[-1]:.0f} Å lies outside every "
            f"filter of the photometry ({', '.join(filters)})")
    return covered


def _target_fwhm(phot: FluxCube, psf_target: float | None) -> float:
    if psf_target is not None:
        val = float(psf_target)
    else:
        raw = phot.header.get("PSFFWHM")
        if raw is None or not float(raw) > 0:
            raise ValueError(
                "psf_fwhm_target: the photometry header has no PSFFWHM > 0 (images not "
                "PSF-matched?): pass psf_fwhm_target (arcsec)")
        val = float(raw)
    if not (np.isfinite(val) and val > 0):
        raise ValueError(f"psf_fwhm_target: must be finite and > 0, got {psf_target}")
    return val


def _supplied_kernels(kernels: ArrayLike, nwave: int
                      ) -> tuple[NDArray[np.int64], list[NDArray[np.float64]]]:
    k = np.asarray(kernels, dtype=np.float64)
    if k.ndim == 2:
        return np.zeros(nwave, dtype=np.int64), [normalize_psf(k, "kernels")]
    if k.ndim != 3 or k.shape[0] != nwave:
        raise ValueError(
            f"kernels: expected one 2-D kernel or shape ({nwave}, ky, kx), got {k.shape}")
    seen: dict[bytes, int] = {}
    out: list[NDArray[np.float64]] = []
    group = np.empty(nwave, dtype=np.int64)
    for i in range(nwave):
        key = k[i].tobytes()
        if key not in seen:
            seen[key] = len(out)
            out.append(normalize_psf(k[i], f"kernels[{i}]"))
        group[i] = seen[key]
    return group, out


# --------------------------------------------------------------------------- main


def match_imgifs_spatial(
    photometry: FluxCube | PathLike,
    ifs: IFSCube | PathLike,
    *,
    ifs_survey: str | None = None,
    psf_fwhm_target: float | None = None,
    kernels: ArrayLike | None = None,
    psf_match: bool = True,
    spec_smoothing: bool = False,
    kernel_sigma: float = 3.5,
    min_good_fraction: float = 0.8,
    correct_extinction: bool = True,
    wave_medium: str = "vacuum",
    fwhm_tolerance: float = 0.01,
    resampling_correction: bool = True,
    output: PathLike | None = None,
    overwrite: bool = False,
    reader_kwargs: dict[str, Any] | None = None,
    return_noise: bool = False,
    covariance: Any = "auto",
    register: bool = False,
    register_band: str | None = None,
    max_shift: float = 3.0,
    blur_photometry: bool = False,
) -> SpecPhotCube | tuple[SpecPhotCube, SpectralNoise]:
    """PSF-match and reproject an IFS cube onto a photometric cube's grid.

    Parameters
    ----------
    photometry : FluxCube or path
        PSF-matched, aligned multi-band flux maps (with a WCS).
    ifs : IFSCube or path
        The IFS cube, or its file read with :func:`pixedfit.ifs.readers.read_ifs`
        (``ifs_survey`` required then; ``reader_kwargs`` passed on).
    ifs_survey : str, optional
        ``"manga"``, ``"califa"``, ``"muse"`` or ``"generic"`` (file input), stored as
        ``IFSSURVE``; defaults to the cube's survey.
    psf_fwhm_target : float, optional
        FWHM (arcsec) of the imaging PSF; default the photometry header's PSFFWHM.
    kernels : array_like, optional
        PSF-matching kernel(s) sampled on the IFS spaxel grid: one 2-D kernel or one per
        channel (nwave, ky, kx); replaces the Gaussian kernels.
    psf_match : bool
        False: skip PSF matching (cube already at the imaging resolution).
    spec_smoothing : bool
        Smooth the spectra with a Gaussian of σ = ``kernel_sigma`` Å first.
    kernel_sigma : float
        σ of that Gaussian, Å.
    min_good_fraction : float
        A spaxel belongs to the IFS region when valid in more than this fraction of channels.
    correct_extinction : bool
        Correct spectra not yet corrected for Galactic extinction, with the cube's E(B−V)
        or else the photometry's ``gal_ebv``.
    wave_medium : {"vacuum", "air"}
        Medium of the output wavelengths.
    fwhm_tolerance : float
        Relative kernel-FWHM difference below which channels share a kernel.
    resampling_correction : bool
        Narrow the Gaussian kernels by the mean blur of the reprojection
        (:func:`resampling_variance`), so that the matched cube reaches the imaging PSF.
    output : path-like, optional
        Write the result there (atomically), and the noise correlation next to it as
        ``<stem>_specnoise.fits`` (:class:`SpectralNoise`).
    overwrite : bool
        Replace an existing output file.
    reader_kwargs : dict, optional
        Keyword arguments of the survey reader (file input).
    return_noise : bool
        Also return the :class:`SpectralNoise` (pixel-to-pixel correlation per kernel
        group) for honest errors of binned spectra.
    covariance : "auto", "measure", "independent", None, float, array, callable or SpaxelCovariance
        Spatial covariance of the native spaxels (:mod:`pixedfit.ifs.covariance`), used
        for the errors of every output pixel (each a weighted sum of spaxels) and stored
        in the noise model of binned sums. ``"auto"``: the cube's model (MaNGA Law+2016,
        CALIFA ERRWEIGHT, MUSE/generic measured on the cube), measured on the cube when it
        has none. ``None``/``"independent"``: spaxels independent (the errors are then
        underestimated by the factor β). A number α: β(N) = 1 + α log10 N; an array: the
        correlation function ρ(Δy, Δx) of the spaxels; a callable: β(N). Recorded in the
        header (``IFSCOV``… and ``IFSCOVF``, the median error factor applied).
    register : bool
        First register the cube on the photometry
        (:func:`pixedfit.ifs.registration.register_to_photometry`: cross-correlation of
        the cube's band image with the band ``register_band``, default the band the cube
        covers best); the offset found is applied to the cube's WCS and written to the
        header (``REGBAND``, ``REGDRA``, ``REGDDEC``, arcsec).
    register_band : str, optional
        The band of the registration (default: the band the cube covers best).
    max_shift : float
        Largest registration offset accepted, arcsec (larger: ValueError).
    blur_photometry : bool
        When the IFS PSF is broader than the imaging PSF, blur every band to the IFS's
        broadest PSF first (:func:`pixedfit.ifs.registration.blur_photometry`) instead of
        raising; the output's PSFFWHM is then that FWHM.

    Returns
    -------
    SpecPhotCube, or (SpecPhotCube, SpectralNoise) with ``return_noise``

    Raises
    ------
    ValueError
        Non-overlapping footprints, wavelengths outside every filter, unknown survey,
        unknown or too broad IFS PSF, bad arguments.
    TypeError
        Wrong argument types.
    """
    phot = FluxCube.read(photometry) if isinstance(photometry, str | os.PathLike) else photometry
    if not isinstance(phot, FluxCube):
        raise TypeError(f"photometry: expected a FluxCube or a path, got {type(photometry)}")
    if phot.wcs is None:
        raise ValueError("photometry: the flux maps carry no WCS: cannot place the IFS cube")
    if isinstance(ifs, str | os.PathLike):
        if ifs_survey is None:
            raise ValueError("ifs_survey: required to read an IFS file (manga, califa, muse, "
                             "generic)")
        cube = read_ifs(ifs, ifs_survey, **(reader_kwargs or {}))
    elif isinstance(ifs, IFSCube):
        cube = ifs
    else:
        raise TypeError(f"ifs: expected an IFSCube or a path, got {type(ifs).__name__}")
    survey = str(ifs_survey if ifs_survey is not None else cube.survey).strip().lower()
    if wave_medium not in ("vacuum", "air"):
        raise ValueError(f"wave_medium: 'vacuum' or 'air', got {wave_medium!r}")
    if not 0 <= min_good_fraction < 1:
        raise ValueError("min_good_fraction: must be within [0, 1)")

    if psf_match and kernels is None and blur_photometry:
        worst = float(np.max(cube.psf_fwhm_per_wave()))
        own = _target_fwhm(phot, psf_fwhm_target)
        if worst > own:
            phot = blur_photometry_to(phot, worst, fwhm=own)
            psf_fwhm_target = worst
    reg = None
    if register:
        reg = register_to_photometry(cube, phot, band=register_band, max_shift=max_shift,
                                     psf_fwhm=psf_fwhm_target)
        cube = reg.cube

    wave = cube.wave
    if cube.wave_medium != wave_medium:
        wave = np.asarray(air_to_vacuum(wave) if wave_medium == "vacuum"
                          else vacuum_to_air(wave))
    wave_vac = wave if wave_medium == "vacuum" else np.asarray(air_to_vacuum(wave))
    _check_filters(phot.filters, wave_vac)

    nw, ny, nx = cube.shape
    shape_out = phot.shape
    region_in = cube.region(min_good_fraction)
    if not region_in.any():
        raise ValueError(
            f"ifs: no spaxel has valid data in more than {min_good_fraction:.0%} of channels")
    w_mat = reprojection_matrix(cube.wcs, (ny, nx), phot.wcs, shape_out)
    a_ratio = (pixel_scale_arcsec(cube.wcs) / pixel_scale_arcsec(phot.wcs)) ** 2
    g0 = region_in.ravel().astype(float)
    coverage = (w_mat @ g0) * a_ratio
    covered = (coverage >= COVER).reshape(shape_out)
    if w_mat.nnz == 0 or not covered.any():
        raise ValueError("the IFS footprint does not overlap the imaging grid (no image pixel "
                         "is covered by the IFS region)")
    spec_region = covered & phot.region
    if not spec_region.any():
        raise ValueError("the IFS footprint does not overlap the photometric region")

    # fluxes and variances (wave, npix) on the native grid, region only
    flux = np.where(region_in[None], cube.flux, np.nan).reshape(nw, -1)
    var = np.where(region_in[None], cube.err**2, np.nan).reshape(nw, -1)
    ebv_used = 0.0
    ebv = cube.gal_ebv if cube.gal_ebv is not None else phot.gal_ebv
    if correct_extinction and ebv and not cube.extinction_corrected:
        corr = 10.0 ** (0.4 * f99_extinction(wave_vac, ebv))
        flux = flux * corr[:, None]
        var = var * (corr**2)[:, None]
        ebv_used = float(ebv)
    if spec_smoothing:
        cols = np.nonzero(region_in.ravel())[0]
        fs, vs = smooth_spectra(wave, flux[:, cols], var[:, cols], kernel_sigma)
        flux[:, cols], var[:, cols] = fs, vs

    scale = pixel_scale_arcsec(cube.wcs)
    if not psf_match:
        group, kern = np.zeros(nw, dtype=np.int64), [np.ones((1, 1))]
    elif kernels is not None:
        group, kern = _supplied_kernels(kernels, nw)
    else:
        target = _target_fwhm(phot, psf_fwhm_target)
        extra = (resampling_variance(w_mat, (ny, nx), a_ratio, spec_region.ravel())
                 if resampling_correction else 0.0)
        group, kern = psf_matching_kernels(cube.psf_fwhm_per_wave(), target, scale,
                                           fwhm_tolerance, extra_variance=extra)

    cov_model = resolve_covariance(
        covariance, cube.covariance,
        lambda: measure_covariance(cube.flux, cube.err, source=f"{survey}: measured on "
                                   f"the cube"))
    r_mat = None
    if cov_model.kind == "kernel":
        r_mat = convolution_matrix(np.asarray(cov_model.rho), (ny, nx))
    n_out = shape_out[0] * shape_out[1]
    rowsum = np.zeros((len(kern), *shape_out))
    selfvar = np.zeros((len(kern), *shape_out))
    factors: list[tuple[NDArray[np.float64], int]] = []  # per group: pixels, channels
    half = max(1, min(15, math.ceil(
        (max(k.shape[0] for k in kern) / 2 + 1) * scale / pixel_scale_arcsec(phot.wcs)) + 1))
    rho = np.zeros((len(kern), 2 * half + 1, 2 * half + 1))
    out_f = np.full((nw, n_out), np.nan)
    out_v = np.full((nw, n_out), np.nan)
    sel_out = spec_region.ravel()
    for gi, k in enumerate(kern):
        chans = np.nonzero(group == gi)[0]
        if chans.size == 0:
            continue
        c_mat = convolution_matrix(k, (ny, nx))
        d0 = c_mat @ g0
        with np.errstate(divide="ignore"):
            inv_d = np.where(d0 > 1e-6, 1.0 / d0, 0.0) * g0
        m_mat = (w_mat @ sparse.diags(inv_d) @ c_mat @ sparse.diags(g0)).tocsr()
        m2 = m_mat.multiply(m_mat).tocsr()
        d_ind = np.asarray(m2.sum(axis=1)).ravel()
        rs = np.asarray(m_mat.sum(axis=1)).ravel()
        rowsum[gi], selfvar[gi] = rs.reshape(shape_out), d_ind.reshape(shape_out)
        if r_mat is not None:  # exact propagation of the spaxel correlation
            cov_mat = m_mat @ r_mat @ m_mat.T
            with np.errstate(invalid="ignore", divide="ignore"):
                gamma = np.where(d_ind > 0, cov_mat.diagonal() / d_ind, 1.0)
        else:
            cov_mat = m_mat @ m_mat.T
            with np.errstate(invalid="ignore", divide="ignore"):
                neff = np.where(d_ind > 0, rs**2 / d_ind, 1.0)
            gamma = cov_model.factor(neff) ** 2
        rho[gi] = _lag_correlation(cov_mat, shape_out, spec_region, half)
        factors.append((np.sqrt(gamma[sel_out]), chans.size))
        for start in range(0, chans.size, 256):
            ch = chans[start:start + 256]
            f = flux[ch].reshape(ch.size, ny, nx)
            good = np.isfinite(f)
            num = fftconvolve(np.where(good, f, 0.0), k[None], mode="same", axes=(1, 2))
            den = fftconvolve(good.astype(float), k[None], mode="same", axes=(1, 2))
            with np.errstate(invalid="ignore", divide="ignore"):
                conv = np.where(good & (den > 1e-6), num / den, np.nan)
            conv = conv.reshape(ch.size, -1)
            bad = ~np.isfinite(conv)
            fo = (w_mat @ np.where(bad, 0.0, conv).T).T
            badfrac = (w_mat @ (bad & (g0 > 0)[None]).T.astype(float)).T * a_ratio
            v = np.where(np.isfinite(var[ch]) & ~bad, var[ch], 0.0)
            vo = (m2 @ v.T).T * gamma[None]
            keep = (badfrac <= 1.0 - COVER) & sel_out[None]
            out_f[ch] = np.where(keep, fo, np.nan)
            out_v[ch] = np.where(keep & (vo > 0), vo, np.nan)
    out_f[~np.isfinite(out_v)] = np.nan
    unit = phot.unit
    spec = out_f.reshape(nw, *shape_out) / unit
    err = np.sqrt(out_v).reshape(nw, *shape_out) / unit
    spec_region &= np.any(np.isfinite(spec), axis=0)
    if not spec_region.any():
        raise ValueError("no image pixel received valid IFS data")

    hdr = phot.header.copy()
    hdr["SPECMED"] = (wave_medium, "medium of the WAVE wavelengths")
    psf_arr = np.asarray(cube.psf_fwhm, dtype=float) if cube.psf_fwhm is not None else None
    if psf_arr is not None:
        hdr["IFSPSF"] = (float(np.median(psf_arr)), "median native IFS PSF FWHM [arcsec]")
    hdr["IFSPIX"] = (scale, "native IFS spaxel [arcsec]")
    if cube.psf_source:
        hdr["IFSPSRC"] = (cube.psf_source[:48], "IFS PSF source")
    if cube.error_scale is not None:
        hdr["IFSERRSC"] = (cube.error_scale, "IFS noise / reported errors")
    if reg is not None:
        hdr["REGBAND"] = (reg.band, "band of the IFS registration")
        hdr["REGDRA"] = (reg.offset_arcsec[0], "[arcsec] IFS WCS shift dRA cos(dec)")
        hdr["REGDDEC"] = (reg.offset_arcsec[1], "[arcsec] IFS WCS shift dDec")
    for key, val, com in cov_model.header_cards():
        hdr[key] = (val, com)
    hdr["IFSCOVF"] = (_median_over_channels(factors),
                      "median error factor for spaxel covariance")
    hdr["SPECSIG"] = (float(kernel_sigma) if spec_smoothing else 0.0,
                      "Gaussian smoothing sigma of the spectra [A]")
    hdr["IFSEBV"] = (ebv_used, "Galactic E(B-V) corrected in the spectra")
    if not psf_match:
        hdr["IFSPSFM"] = (False, "IFS cube not PSF-matched by pixedfit")
    new_phot = FluxCube(phot.flux, phot.flux_err, phot.filters, region=phot.region,
                        unit=phot.unit, wcs=phot.wcs, z=phot.z, pixel_scale=phot.pixel_scale,
                        gal_ebv=phot.gal_ebv, header=_as_header(hdr), stamp=phot.stamp)
    result = SpecPhotCube(new_phot, wave, spec, err, spec_region=spec_region,
                          ifs_survey=survey, wave_medium=wave_medium)
    noise = SpectralNoise(group.astype(np.int64), rho,
                          None if cov_model.independent else cov_model, rowsum, selfvar)
    if output is not None:
        out = Path(output)
        noise_path = out.with_name(out.stem + "_specnoise.fits")
        if noise_path.exists() and not overwrite:  # checked before anything is written
            raise FileExistsError(f"{noise_path} exists (use overwrite=True)")
        result.write(output, overwrite=overwrite)
        noise.write(noise_path, overwrite=True)
    return (result, noise) if return_noise else result


def _as_header(hdr: fits.Header) -> fits.Header:
    out = fits.Header()
    for card in hdr.cards:
        out.append(card)
    return out
