"""RDSPS: pixedfit's fused C++ kernel against the original's per-model loop, side by side.

The library is synthetic (the model-library generator arrives with the SPS engine): 10⁵
models × 12 bands (GALEX FUV … WISE W2), parameters named as the original averages them
(``dust1``, ``dust2``, ``dust_index`` in linear units, ``log_mass`` = 0 per model), model
spectra = a blackbody of temperature 3000 + 5000 · dust1 K attenuated by
dust2 · (λ/5500)^dust_index magnitudes.

Timed in one run:

* the original's per-model loop (``original_rdsps_loop`` of
  ../shared/reference/original_algorithms: one HDF5 spectrum read, redshift, 1-Å filter
  integration and single-element parameter reads per model), on ``--nref`` models of a
  library in the original's HDF5 layout, extrapolated per model to 10⁵;
* the original's statistics vectorised with numpy on precomputed photometry
  (``rdsps_fixed_z``);
* ours, library photometry precomputed: one SED (1 and 2 threads) and a 1000-SED map.

Accuracy: posterior means of the linear parameters against ``rdsps_fixed_z`` with the
original's quirks switched off (no error floor, no inflation, same chi2 cut).

Usage: python benchmarks/bench_rdsps.py [--nmod 100000] [--nsed 1000] [--nref 1500]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from pixedfit import _core, filters
from pixedfit.demo import DEMO_FILTERS, blackbody_flambda
from pixedfit.fitting import ModelPhotometry, rdsps

REF_DIR = (
    Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "original_algorithms"
)
NAMES = ("dust1", "dust2", "dust_index", "log_mass")


def library_params(nmod: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(0, 2, nmod), rng.uniform(0, 2, nmod),
                            rng.uniform(-1, 0, nmod), np.zeros(nmod)])


def spectra(wave: np.ndarray, params: np.ndarray) -> np.ndarray:
    temp = 3000.0 + 5000.0 * params[:, 0]
    att = params[:, 1:2] * (wave / 5500.0) ** params[:, 2:3]
    return np.array([blackbody_flambda(wave, t) for t in temp]) * 10 ** (-0.4 * att) * 1e-4


def model_photometry(params: np.ndarray, fw: filters.FilterWeights, chunk: int = 4000):
    out = np.empty((params.shape[0], fw.nbands))
    for start in range(0, params.shape[0], chunk):
        out[start:start + chunk] = fw.apply(spectra(fw.wave, params[start:start + chunk]))
    return out


def write_original_layout(path: Path, wave: np.ndarray, params: np.ndarray) -> None:
    """A model file in the original's HDF5 layout (one dataset per spectrum)."""
    spec = spectra(wave, params)
    with h5py.File(path, "w") as f:
        mod = f.create_group("mod")
        mod.attrs["nmodels"] = params.shape[0]
        mod.attrs["nparams_all"] = len(NAMES)
        for i, name in enumerate(NAMES):
            mod.attrs[f"par{i}"] = name
            f.create_dataset(f"mod/par/{name}", data=params[:, i])
        f.create_dataset("mod/spec/wave", data=wave)
        for i in range(params.shape[0]):
            f.create_dataset(f"mod/spec/f{i}", data=spec[i], compression="gzip")


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
    parser.add_argument("--nref", type=int, default=1500)
    args = parser.parse_args()
    if not REF_DIR.is_dir():
        sys.exit(f"reference implementation not found at {REF_DIR}")
    sys.path.insert(0, str(REF_DIR))
    import ref_rdsps

    names = list(DEMO_FILTERS)
    wave = np.geomspace(500.0, 80000.0, 6000)  # rest-frame grid of the synthetic library
    fw = filters.filter_weights(names, wave)
    params = library_params(args.nmod)
    phot = model_photometry(params, fw)
    rng = np.random.default_rng(42)
    truth_idx = rng.integers(0, args.nmod, args.nsed)
    log_mass = rng.uniform(8, 11, args.nsed)
    truth = phot[truth_idx] * 10 ** log_mass[:, None]
    err = truth / 20.0
    obs = truth + rng.normal(0, err)
    print(f"machine: {os.cpu_count()} cores, OpenMP max threads {_core.max_threads()}")
    print(f"library: {args.nmod} models x {len(names)} bands; {args.nsed} SEDs")

    # --- the original: per-model loop on an HDF5 library in its layout (z = 0 rest frame
    # photometry would need D_L = 0, so the loop redshifts to z = 0.01).
    z = 0.01
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "models.hdf5"
        write_original_layout(path, wave, params[: args.nref])
        reader = ref_rdsps.Hdf5ModelReader(str(path))
        grids = ref_rdsps.filter_grids_1A([filters.get_filter_curve(n) for n in names])
        start = time.perf_counter()
        ref_rdsps.original_rdsps_loop(reader, grids, obs[0], err[0], z, inflate=False)
        t_loop = time.perf_counter() - start
    per_model_orig = t_loop / args.nref
    t_orig_full = per_model_orig * args.nmod

    # --- the original's statistics, vectorised, photometry precomputed
    pdict = {n: params[:, i] for i, n in enumerate(NAMES)}
    t_np, ref = timed(lambda: ref_rdsps.rdsps_fixed_z(phot, pdict, obs[0], err[0],
                                                      sys_err_floor=0.0, inflate=False,
                                                      perc_chi2=90.0), repeat=2)

    # --- ours
    models = ModelPhotometry.from_arrays(phot, params, NAMES, filters=names)
    t1, ours = timed(lambda: rdsps(obs[0], err[0], models, perc_chi2=90.0, threads=1))
    t2, _ = timed(lambda: rdsps(obs[0], err[0], models, perc_chi2=90.0, threads=2))
    tmap, fit_map = timed(lambda: rdsps(obs, err, models, threads=2), repeat=1)
    pairs_per_s = args.nsed * args.nmod / tmap
    per_sed_core = tmap * 2 / args.nsed

    lin = [0, 1, 2]
    dmean = np.abs(ours.mean[0, lin] - np.array([ref["mean"][n] for n in NAMES[:3]]))
    mass_bias = np.median(fit_map.mean[:, 3] - log_mass)
    mass_scatter = np.std(fit_map.mean[:, 3] - log_mass)

    print(f"original per-model loop: {per_model_orig * 1e3:.3f} ms/model "
          f"(measured on {args.nref} models) -> {t_orig_full:.1f} s per SED for {args.nmod}")
    print(f"original statistics, numpy vectorised: {t_np * 1e3:.1f} ms per SED")
    print(f"ours, one SED, 1 thread:  {t1 * 1e3:.2f} ms  ({t_orig_full / t1:,.0f}x the loop, "
          f"{t_np / t1:.1f}x numpy)")
    print(f"ours, one SED, 2 threads: {t2 * 1e3:.2f} ms  ({t_orig_full / t2:,.0f}x the loop)")
    print(f"ours, {args.nsed}-SED map, 2 threads: {tmap:.2f} s = {per_sed_core * 1e3:.2f} ms "
          f"per SED per core, {pairs_per_s:.3g} model-SED pairs/s")
    print(f"max |mean difference| vs the numpy reference (dust1, dust2, dust_index): "
          f"{dmean.max():.2e}")
    print(f"mock recovery over {args.nsed} SEDs: log M* bias {mass_bias:+.4f} dex, "
          f"scatter {mass_scatter:.4f} dex")
    print(
        f"RESULT nmod={args.nmod} nband={len(names)} orig_ms_per_model={per_model_orig * 1e3:.3f} "
        f"orig_s_per_sed={t_orig_full:.1f} numpy_ms_per_sed={t_np * 1e3:.1f} "
        f"ours_ms_per_sed_1thr={t1 * 1e3:.2f} ours_ms_per_sed_2thr={t2 * 1e3:.2f} "
        f"speedup_vs_loop_1thr={t_orig_full / t1:.0f} speedup_vs_numpy_1thr={t_np / t1:.1f} "
        f"map_{args.nsed}_s={tmap:.2f} ms_per_sed_per_core={per_sed_core * 1e3:.2f} "
        f"pairs_per_s={pairs_per_s:.3g} max_mean_diff={dmean.max():.1e}"
    )


if __name__ == "__main__":
    main()
