"""Pixel binning: pixedfit (C++) against the original algorithm (numpy reference) and
plain Voronoi binning (Cappellari & Copin 2003).

Run: python benchmarks/bench_binning.py [--sizes 100 200 400 800] [--ref-max 400]
                                         [--quality-size 100] [--repeat 3]

* Timing, on the synthetic 12-band cubes of the original's peer runs (make_cube.py,
  seed 1, S/N 5, ref band 4, min_bin_diameter 4, chi2 limit 4, del_r 2):
  - "ref": the faithful numpy re-implementation of the original
    (``original_binning(..., emulate_original_cost=True)``, ≈ the original's own time; the
    original took 0.12 / 1.2 / 12 s at 100² / 200² / 400² on this machine);
  - "ours": ``pixedfit.binning.bin_pixels`` with its defaults (connected bins, shape test
    in the first circle, unmodified fluxes), FluxCube construction excluded;
  - "ours-orig": the same kernel in the original's mode (connected=False, no first-circle
    test, no absorption, negative-replaced fluxes, the original's factor), whose bin map
    must equal the reference's (checked and printed).
* Quality, on one cube: S/N scatter and within-bin SED-shape scatter of our bins, the
  original's, and Voronoi bins (``vorbin`` if installed, target S/N 5 in the band with the
  lowest median S/N). Shape scatter uses the noise-free model SEDs (make_fluxmap with
  noise=0): for each bin the rms over its pixels and bands of ln(m̂_pixel / m̂_bin), m̂ the
  model SED normalised to unit sum; reported as the pixel-weighted mean over bins (and,
  for ours, without the flagged leftover bin).

The reference lives outside the repository (../shared/reference/original_algorithms); the
benchmark exits with a message when it is absent. Ends with one ``RESULT key=value`` line.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import pixedfit
from pixedfit.binning import bin_pixels
from pixedfit.cubes import FluxCube

REF_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / \
    "original_algorithms"


def _load_reference():
    if not (REF_DIR / "ref_binning.py").is_file():
        print(f"SKIP: reference implementation not found at {REF_DIR} "
              "(the shared/ folder next to the repository is needed for this benchmark)")
        sys.exit(0)
    sys.path.insert(0, str(REF_DIR))
    import make_cube
    import ref_binning

    return make_cube, ref_binning


def _best_time(fn, repeat: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _replace_negative(flux: np.ndarray, region: np.ndarray) -> np.ndarray:
    """The original's in-place negative-flux replacement, on a copy."""
    out = flux.copy()
    for b in range(out.shape[0]):
        plane = out[b]
        pos = (plane > 0) & region
        if pos.any():
            plane[(plane < 0) & region] = plane[pos].min()
    return out


def _quality(name, bin_map, flux, err, model, region, snr_target=5.0, leftover_id=0):
    """S/N statistics and SED-shape scatter of a bin map (ids >= 1, 0 outside)."""
    ids = bin_map[region]
    nbins = int(ids.max())
    f = flux[:, region]
    e2 = err[:, region] ** 2
    m = model[:, region]
    bf = np.stack([np.bincount(ids, weights=f[b], minlength=nbins + 1)[1:]
                   for b in range(f.shape[0])], axis=1)
    bv = np.stack([np.bincount(ids, weights=e2[b], minlength=nbins + 1)[1:]
                   for b in range(f.shape[0])], axis=1)
    snr = bf / np.sqrt(bv)
    ok = np.all(snr >= snr_target, axis=1)
    weakest = int(np.argmin(np.median(snr, axis=0)))
    s = snr[:, weakest]
    bm = np.stack([np.bincount(ids, weights=m[b], minlength=nbins + 1)[1:]
                   for b in range(m.shape[0])], axis=1)
    mhat_pix = m / m.sum(axis=0)
    mhat_bin = bm / bm.sum(axis=1, keepdims=True)
    logr2 = np.sum(np.log(mhat_pix / mhat_bin[ids - 1].T) ** 2, axis=0) / m.shape[0]
    npix = np.bincount(ids, minlength=nbins + 1)[1:]
    shape_rms = np.sqrt(np.bincount(ids, weights=logr2, minlength=nbins + 1)[1:] /
                        np.maximum(npix, 1))
    regular = np.ones(nbins, bool)
    if leftover_id:
        regular[leftover_id - 1] = False
    out = {
        "nbins": nbins,
        "shape_rms_regular": float(np.sum((shape_rms * npix)[regular]) / npix[regular].sum()),
        "frac_bins_ok": float(ok.mean()),
        "frac_pix_in_ok": float(npix[ok].sum() / npix.sum()),
        "snr_weak_cv": float(np.std(s[ok]) / np.mean(s[ok])) if ok.any() else np.nan,
        "snr_weak_median": float(np.median(s)),
        "shape_rms_pixw": float(np.sum(shape_rms * npix) / npix.sum()),
    }
    print(f"  {name:<9s} bins {nbins:5d}  bins meeting S/N in all bands "
          f"{100 * out['frac_bins_ok']:5.1f}% (pixels {100 * out['frac_pix_in_ok']:5.1f}%)  "
          f"S/N[{weakest}] median {out['snr_weak_median']:6.2f} scatter(cv, ok bins) "
          f"{out['snr_weak_cv']:.3f}  shape rms (pixel-weighted): all bins "
          f"{out['shape_rms_pixw']:.4f}" + (f", without the leftover bin "
                                            f"{out['shape_rms_regular']:.4f}"
                                            if leftover_id else ""))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 200, 400, 800])
    ap.add_argument("--ref-max", type=int, default=400,
                    help="largest size for which the (slow) reference is timed")
    ap.add_argument("--quality-size", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    make_cube, ref_binning = _load_reference()
    print(f"pixedfit {pixedfit.__version__}, numpy {np.__version__}, python "
          f"{platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"OpenMP threads {pixedfit._core.max_threads()}")
    result: dict[str, str] = {}

    print("== timing (S/N 5 all bands, ref_band 4, min_bin_diameter 4, chi2 limit 4, del_r 2)")
    for n in args.sizes:
        flux, err, region, filters = make_cube.make_fluxmap(n, seed=1)
        cube = FluxCube(flux, err, filters, region=region)
        repeat = args.repeat if n <= 400 else 1
        t_ours, res = _best_time(lambda cube=cube: bin_pixels(cube, ref_band=4), repeat)
        line = (f"  {n:4d}^2: ours {t_ours:8.4f} s ({res.nbins} bins, leftover "
                f"{int(res.bin_npix[-1]) if res.leftover.any() else 0} px)")
        result[f"ours_{n}"] = f"{t_ours:.4g}"
        if n <= args.ref_max:
            t_ref, ref = _best_time(
                lambda flux=flux, err=err, region=region: ref_binning.original_binning(
                    flux, err, region, 4, return_info=True, emulate_original_cost=True),
                1 if n >= 400 else repeat)
            info = ref[3]
            orig_cube = FluxCube(_replace_negative(flux, region), err, filters, region=region)
            t_orig, mine = _best_time(
                lambda orig_cube=orig_cube, info=info: bin_pixels(
                    orig_cube, ref_band=4, connected=False, shape_test_first_circle=False,
                    absorb_leftover=False, sys_err_factor=info["factor"]), repeat)
            same = bool(np.array_equal(mine.bin_map, ref[0]))
            line += (f" | ref {t_ref:8.3f} s ({int(ref[0].max())} bins) | ours-orig "
                     f"{t_orig:8.4f} s, same map {same} | speed-up ref/ours "
                     f"{t_ref / t_ours:7.1f}x, ref/ours-orig {t_ref / t_orig:7.1f}x")
            result[f"ref_{n}"] = f"{t_ref:.4g}"
            result[f"speedup_{n}"] = f"{t_ref / t_ours:.1f}"
            result[f"same_map_orig_mode_{n}"] = str(same)
        print(line, flush=True)

    n = args.quality_size
    print(f"== quality on the {n}^2 cube (target S/N 5)")
    flux, err, region, filters = make_cube.make_fluxmap(n, seed=1)
    model = make_cube.make_fluxmap(n, seed=1, noise=0.0)[0]
    cube = FluxCube(flux, err, filters, region=region)
    ours = bin_pixels(cube, ref_band=4)
    q = _quality("pixedfit", ours.bin_map, flux, err, model, region,
                 leftover_id=ours.nbins if ours.leftover.any() else 0)
    ref_map = ref_binning.original_binning(flux, err, region, 4)[0]
    qr = _quality("original", ref_map, flux, err, model, region)
    result.update({"q_ours_shape": f"{q['shape_rms_pixw']:.4f}",
                   "q_ours_shape_noleftover": f"{q['shape_rms_regular']:.4f}",
                   "q_ours_snr_cv": f"{q['snr_weak_cv']:.3f}",
                   "q_ours_ok_pix": f"{q['frac_pix_in_ok']:.3f}",
                   "q_orig_shape": f"{qr['shape_rms_pixw']:.4f}",
                   "q_orig_snr_cv": f"{qr['snr_weak_cv']:.3f}"})
    try:
        from vorbin.voronoi_2d_binning import voronoi_2d_binning
    except ImportError:
        print("  voronoi   skipped: vorbin is not installed (pip install vorbin)")
    else:
        weakest = int(np.argmin(np.median(flux[:, region] / err[:, region], axis=1)))
        ys, xs = np.nonzero(region)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vb = voronoi_2d_binning(xs.astype(float), ys.astype(float), flux[weakest, ys, xs],
                                    err[weakest, ys, xs], 5.0, plot=False, quiet=True,
                                    pixelsize=1.0)
        t_vb = time.perf_counter() - t0
        vmap = np.zeros(region.shape, np.int64)
        vmap[ys, xs] = vb[0] + 1
        qv = _quality("voronoi", vmap, flux, err, model, region)
        print(f"  (vorbin on band {weakest}: {t_vb:.2f} s)")
        result.update({"q_vor_shape": f"{qv['shape_rms_pixw']:.4f}",
                       "q_vor_snr_cv": f"{qv['snr_weak_cv']:.3f}"})
    print("RESULT " + " ".join(f"{k}={v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
