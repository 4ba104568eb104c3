"""RDSPS: pixedfit's fused C++ kernel against the original's per-model loop, side by side.

Library: ``--nmod`` models (default 10⁵) drawn with :func:`pixedfit.library.generate_library`
from a real SEDModel (delayed-τ SFH, Calzetti dust, nebular emission, BC03), 12 bands
(GALEX FUV … WISE W2), fixed z = 0.05; mock SEDs are library models × 10^(8…11) with S/N 20.

Timed in one run:

* the original's per-model loop (``original_rdsps_loop`` of
  ../shared/reference/original_algorithms: one HDF5 spectrum read, redshift, 1-Å filter
  integration and single-element parameter reads per model), on ``--nref`` models of a
  library written in the original's HDF5 layout, scaled per model to ``--nmod``;
* the original's statistics vectorised with numpy on precomputed photometry
  (``rdsps_fixed_z``);
* ours, library photometry precomputed: one SED (1 and 2 threads; with the original's
  ``perc_chi2=90`` cut and without a cut, our default) and a ``--nsed`` map (no cut);
* ours, a catalogue of ``--ncat`` galaxies each at its own redshift (0 < z < 1), including
  the library photometry on the redshift grid (dz = 0.01, interpolated per galaxy).

Accuracy: posterior mean of dust2 (averaged linearly by both) against ``rdsps_fixed_z``
with the original's quirks switched off (no error floor, no inflation, same chi2 cut).

Usage: python benchmarks/bench_rdsps.py [--nmod 100000] [--nsed 1000] [--nref 1000]
                                        [--ncat 10000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pixedfit import _core, filters
from pixedfit.demo import DEMO_FILTERS
from pixedfit.fitting import Parallelism, fit_catalog, rdsps
from pixedfit.library import generate_library
from pixedfit.sps import SEDModel

REF_DIR = (
    Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "original_algorithms"
)


def timed(func, repeat: int = 3):
    best, out = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        out = func()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nmod", type=int, default=100_000)
    parser.add_argument("--nsed", type=int, default=1000)
    parser.add_argument("--nref", type=int, default=1000)
    parser.add_argument("--ncat", type=int, default=10_000)
    args = parser.parse_args()
    if not REF_DIR.is_dir():
        sys.exit(f"reference implementation not found at {REF_DIR}")
    sys.path.insert(0, str(REF_DIR))
    import ref_rdsps

    names = list(DEMO_FILTERS)
    z = 0.05
    model = SEDModel(sfh_form=1, dust_law=1, add_neb_emission=True)
    start = time.perf_counter()
    library = generate_library(model, args.nmod, seed=0)
    t_gen = time.perf_counter() - start
    start = time.perf_counter()
    models = library.photometry(names, z, model=model)
    t_phot = time.perf_counter() - start
    phot = models.flux[0].T  # (nmod, nband)
    rng = np.random.default_rng(42)
    idx = rng.integers(0, args.nmod, args.nsed)
    log_mass = rng.uniform(8, 11, args.nsed)
    truth = phot[idx] * 10 ** log_mass[:, None]
    err = truth / 20.0
    obs = truth + rng.normal(0, err)
    print(f"machine: {os.cpu_count()} cores, OpenMP max threads {_core.max_threads()}")
    print(f"library: {args.nmod} models x {len(names)} bands, generated in {t_gen:.1f} s, "
          f"photometry at z={z} in {t_phot:.1f} s ({t_phot / args.nmod * 1e6:.0f} us/model)")

    # --- the original: per-model loop on a library in its HDF5 layout
    ref_lib = generate_library(model, args.nref, seed=1, spectra=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "models.hdf5"
        ref_lib.write_pixedfit(path)
        reader = ref_rdsps.Hdf5ModelReader(str(path))
        grids = ref_rdsps.filter_grids_1A([filters.get_filter_curve(n) for n in names])
        start = time.perf_counter()
        ref_rdsps.original_rdsps_loop(reader, grids, obs[0], err[0], z, inflate=False)
        t_loop = time.perf_counter() - start
    per_model_orig = t_loop / args.nref
    t_orig_full = per_model_orig * args.nmod

    # --- the original's statistics, vectorised, photometry precomputed
    table_names, table = library.table()
    pdict = {n: table[:, i] for i, n in enumerate(table_names)}
    t_np, ref = timed(lambda: ref_rdsps.rdsps_fixed_z(phot, pdict, obs[0], err[0],
                                                      sys_err_floor=0.0, inflate=False,
                                                      perc_chi2=90.0), repeat=2)

    # --- ours: one SED with the original's chi2 cut (perc_chi2=90, as the numpy reference)
    # and with ours (none, the default)
    t1, ours = timed(lambda: rdsps(obs[0], err[0], models, perc_chi2=90.0, threads=1), 10)
    t2, _ = timed(lambda: rdsps(obs[0], err[0], models, perc_chi2=90.0, threads=2), 10)
    t1d, _ = timed(lambda: rdsps(obs[0], err[0], models, threads=1), 10)
    tmap, fit_map = timed(lambda: rdsps(obs, err, models, threads=2), repeat=1)
    pairs_per_s = args.nsed * args.nmod / tmap
    per_sed_core = tmap * 2 / args.nsed
    k_d2 = ours.names.index("dust2")
    dmean = abs(ours.mean[0, k_d2] - ref["mean"]["dust2"])
    k_m = fit_map.names.index("log_mass")
    mass_bias = np.median(fit_map.mean[:, k_m] - log_mass)
    mass_scatter = np.std(fit_map.mean[:, k_m] - log_mass)

    # --- a catalogue at individual redshifts
    t_cat = np.nan
    if args.ncat:
        zc = rng.uniform(0.01, 1.0, args.ncat)
        idc = rng.integers(0, args.nmod, args.ncat)
        pc = {k: v[idc] for k, v in library.params.items()}
        pc["log_mass"] = rng.uniform(9, 11, args.ncat)
        fc = model.photometry(pc, zc, names)
        ec = fc / 20.0
        oc = fc + rng.normal(0, ec)
        start = time.perf_counter()
        fit_catalog(oc, ec, names, zc, library=library, model=model, dz=0.01,
                    parallel=Parallelism(threads=2))
        t_cat = time.perf_counter() - start

    print(f"original per-model loop: {per_model_orig * 1e3:.3f} ms/model "
          f"(measured on {args.nref} models) -> {t_orig_full:.1f} s per SED for {args.nmod}")
    print(f"original statistics, numpy vectorised: {t_np * 1e3:.1f} ms per SED")
    print(f"ours, one SED, 1 thread:  {t1 * 1e3:.2f} ms  ({t_orig_full / t1:,.0f}x the loop, "
          f"{t_np / t1:.1f}x numpy); without the chi2 cut (default): {t1d * 1e3:.2f} ms")
    print(f"ours, one SED, 2 threads: {t2 * 1e3:.2f} ms  ({t_orig_full / t2:,.0f}x the loop)")
    print(f"ours, {args.nsed}-SED map, 2 threads: {tmap:.2f} s = {per_sed_core * 1e3:.2f} ms "
          f"per SED per core, {pairs_per_s:.3g} model-SED pairs/s")
    print(f"|dust2 posterior mean difference| vs the numpy reference: {dmean:.1e}")
    print(f"mock recovery over {args.nsed} SEDs: log M* bias {mass_bias:+.4f} dex, "
          f"scatter {mass_scatter:.4f} dex")
    if args.ncat:
        print(f"catalogue of {args.ncat} galaxies at their own z (0.01-1) against {args.nmod} "
              f"models, incl. z-grid photometry: {t_cat:.0f} s")
    print(
        f"RESULT nmod={args.nmod} nband={len(names)} orig_ms_per_model={per_model_orig * 1e3:.3f} "
        f"orig_s_per_sed={t_orig_full:.1f} numpy_ms_per_sed={t_np * 1e3:.1f} "
        f"ours_ms_per_sed_1thr={t1 * 1e3:.2f} ours_ms_per_sed_2thr={t2 * 1e3:.2f} "
        f"ours_ms_per_sed_1thr_nocut={t1d * 1e3:.2f} "
        f"speedup_vs_loop_1thr={t_orig_full / t1:.0f} speedup_vs_numpy_1thr={t_np / t1:.1f} "
        f"map_{args.nsed}_s={tmap:.2f} ms_per_sed_per_core={per_sed_core * 1e3:.2f} "
        f"pairs_per_s={pairs_per_s:.3g} dust2_mean_diff={dmean:.1e} "
        f"catalog_{args.ncat}_s={t_cat:.0f}"
    )


if __name__ == "__main__":
    main()
