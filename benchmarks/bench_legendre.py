"""Legendre correction kernel: batched C++ fits against numpy.polynomial.legendre.legfit.

10⁴ spectra of 4000 points (a MaNGA-like grid), order 10 (the original's default
``poly_order``), weights 1/σ². The reference loops legfit over the spectra, as the
original's per-pixel code does.

Usage: python benchmarks/bench_legendre.py [--nspec 10000] [--npix 4000] [--order 10]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from numpy.polynomial import legendre as npleg

from pixedfit import _core
from pixedfit.fitting.legendre import fit_legendre


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nspec", type=int, default=10_000)
    parser.add_argument("--npix", type=int, default=4000)
    parser.add_argument("--order", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    wave = np.geomspace(3600.0, 10300.0, args.npix)
    x = 2 * (wave - wave[0]) / (wave[-1] - wave[0]) - 1
    a1 = rng.normal(0, 0.05, (args.nspec, 1))
    a2 = rng.normal(0, 0.03, (args.nspec, 1))
    tilt = 1 + a1 * x + a2 * x**2
    sigma = 0.02
    y = tilt + rng.normal(0, sigma, (args.nspec, args.npix))
    w = np.full(y.shape, 1 / sigma**2)

    start = time.perf_counter()
    ref = np.array([npleg.legfit(x, y[s], args.order, w=np.sqrt(w[s])) for s in range(args.nspec)])
    t_np = time.perf_counter() - start
    # ours: coefficients only (as legfit), best of 3; then with the fitted series on the
    # grid (a 10^4 x 4000 array, whose first-touch page faults cost as much as the fits)
    times = {}
    for threads in (1, 2):
        best = np.inf
        for _ in range(3):
            start = time.perf_counter()
            fit_legendre(wave, y, w, order=args.order, threads=threads, return_model=False)
            best = min(best, time.perf_counter() - start)
        times[threads] = best
    start = time.perf_counter()
    res = fit_legendre(wave, y, w, order=args.order, threads=2)
    t_model = time.perf_counter() - start
    model_ref = npleg.legval(x, ref.T)
    max_diff = float(np.max(np.abs(res.model - model_ref)))
    print(f"machine: {os.cpu_count()} cores, OpenMP max threads {_core.max_threads()}")
    print(f"{args.nspec} spectra x {args.npix} points, order {args.order}")
    print(f"numpy legfit loop: {t_np:.2f} s")
    print(f"ours, 1 thread: {times[1]:.3f} s ({t_np / times[1]:.1f}x); "
          f"2 threads: {times[2]:.3f} s ({t_np / times[2]:.1f}x)")
    print(f"ours with the fitted series returned, 2 threads: {t_model:.3f} s")
    print(f"max |model difference|: {max_diff:.1e} (relative to a ~1 correction)")
    print(f"RESULT nspec={args.nspec} npix={args.npix} order={args.order} t_numpy_s={t_np:.2f} "
          f"t_ours_1thr_s={times[1]:.3f} t_ours_2thr_s={times[2]:.3f} "
          f"speedup_1thr={t_np / times[1]:.1f} speedup_2thr={t_np / times[2]:.1f} "
          f"t_ours_with_model_2thr_s={t_model:.3f} "
          f"max_model_diff={max_diff:.1e}")


if __name__ == "__main__":
    main()
