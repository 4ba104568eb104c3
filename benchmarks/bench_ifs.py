"""Spatial matching of an IFS cube to imaging: pixedfit against the per-slice method.

Run: python benchmarks/bench_ifs.py [--nwave 4563] [--nx 44] [--ref-channels 300]

* Data: a synthetic MaNGA LOGCUBE of the analytic galaxy (pixedfit.ifs.generators),
  ``nwave`` channels of the MaNGA log grid (every 4563 // nwave-th), ``nx``² spaxels of
  0.5″, per-band PSF 2.6–2.4″, onto a 1.0″ imaging grid rotated by 20° with a 3.0″ PSF.
* "ours": ``match_imgifs_spatial`` (grouped Gaussian kernels, one sparse reprojection
  matrix for all channels, exact variance propagation), file reading excluded.
* "ref": the original's structure with pixedfit's own image functions — for every channel
  ``convolve_image`` (flux with K, variance with K²) and ``reproject_image`` (flux and
  variance, two ``reproject_exact`` calls), the same kernels. Timed on ``ref_channels``
  channels and scaled linearly to the whole cube (each channel costs the same).
* Agreement of the fluxes on the timed channels is printed (the variances differ by design:
  the reference's Σ w v is not the variance of a reprojected pixel).

Ends with one ``RESULT key=value`` line.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

import pixedfit
from pixedfit.cubes import FluxCube
from pixedfit.ifs.generators import AnalyticGalaxy, manga_wave_grid, write_manga_logcube
from pixedfit.ifs.operators import psf_matching_kernels, reprojection_matrix, resampling_variance
from pixedfit.ifs.readers import read_manga
from pixedfit.ifs.spatial import match_imgifs_spatial
from pixedfit.images.align import reproject_image
from pixedfit.images.psf import convolve_image


def _wcs(scale: float, n: int, rot: float = 0.0, off: tuple[float, float] = (0, 0)) -> WCS:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [(n + 1) / 2 + off[0], (n + 1) / 2 + off[1]]
    c, s = np.cos(np.radians(rot)), np.sin(np.radians(rot))
    w.wcs.cd = np.array([[-c, s], [s, c]]) * scale / 3600.0
    w.wcs.set()
    return w


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nwave", type=int, default=4563)
    ap.add_argument("--nx", type=int, default=44)
    ap.add_argument("--ref-channels", type=int, default=300)
    args = ap.parse_args()

    step = max(1, 4563 // args.nwave)
    wave = manga_wave_grid(step)[: args.nwave]
    n = args.nx
    n_out = int(n * 0.5 / 1.0 * 0.9)
    wi, wo = _wcs(0.5, n), _wcs(1.0, n_out, 20.0, (0.37, -0.21))
    gal = AnalyticGalaxy(r_bulge=1.0, r_disc=2.0, r_lines=1.5)
    psf = np.interp(wave, (4686.0, 6166.0, 7480.0, 8932.0), (2.6, 2.5, 2.45, 2.4))
    clean = gal.cube(wave, wi, (n, n), psf)
    sig = np.full(clean.shape, 1e-3 * clean.max())
    noisy = clean + np.random.default_rng(1).normal(size=clean.shape) * sig
    filters = ["sdss_g", "sdss_r"]
    hdr = fits.Header()
    hdr["PSFFWHM"] = 3.0
    img = gal.image(filters, wo, (n_out, n_out), 3.0) / 1e-17
    phot = FluxCube(img, 0.02 * img + 1e-3, filters, wcs=wo, header=hdr)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "manga-1-1-LOGCUBE.fits"
        write_manga_logcube(path, wave, noisy, sig, wi)
        cube = read_manga(path)

    t0 = time.perf_counter()
    sp = match_imgifs_spatial(phot, cube, correct_extinction=False)
    t_ours = time.perf_counter() - t0

    # reference: per-channel convolve_image + reproject_image with the same kernels
    w_mat = reprojection_matrix(cube.wcs, (n, n), wo, (n_out, n_out))
    extra = resampling_variance(w_mat, (n, n), 0.25, sp.spec_region.ravel())
    group, kern = psf_matching_kernels(psf, 3.0, 0.5, extra_variance=extra)
    chans = np.linspace(0, wave.size - 1, min(args.ref_channels, wave.size)).astype(int)
    t0 = time.perf_counter()
    worst = 0.0
    for ch in chans:
        c, v = convolve_image(cube.flux[ch], cube.err[ch] ** 2, kern[group[ch]])
        r, _ = reproject_image(c, cube.wcs, wo, (n_out, n_out), variance=v)
        m = sp.spec_flux[ch] * 1e-17
        ok = np.isfinite(r) & np.isfinite(m) & sp.spec_region
        worst = max(worst, float(np.max(np.abs(m[ok] - r[ok])) / np.max(np.abs(r[ok]))))
    t_ref = (time.perf_counter() - t0) * wave.size / chans.size

    print(f"pixedfit {pixedfit.__version__}, {platform.processor() or platform.machine()}, "
          f"python {platform.python_version()}")
    print(f"cube: {wave.size} channels x {n}x{n} spaxels -> {n_out}x{n_out} pixels, "
          f"{len(kern)} kernel groups")
    print(f"ours : {t_ours:8.2f} s")
    print(f"ref  : {t_ref:8.2f} s (per-slice, {chans.size} channels timed, scaled)")
    print(f"speed-up: {t_ref / t_ours:.1f}x; max |ours - ref| / max|ref| on timed channels: "
          f"{worst:.2e}")
    print(f"RESULT nwave={wave.size} nx={n} ours_s={t_ours:.3f} ref_s={t_ref:.3f} "
          f"speedup={t_ref / t_ours:.2f} max_rel_diff={worst:.2e}")


if __name__ == "__main__":
    main()
