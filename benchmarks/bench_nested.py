"""Nested sampling (nautilus) vs MCMC (emcee) on the same SEDs, evidence scatter, Bayes factors.

Mocks: 12 bands (FUV … W2), S/N 20, z = 0.05, delayed-τ SFH + Calzetti dust, no nebular
emission; the fitted model adds an AGN torus (7 free parameters: logzsol, log_tau, log_age,
dust2, log_fagn, log_tauagn, log_mass). Everything runs on one core (threads=1); times are
CPU seconds of this process (``time.process_time``) and wall seconds.

Measured:

* per SED: likelihood calls, CPU and wall seconds, ESS of nested (default settings) and of
  MCMC (defaults: 32 walkers started from the adaptive RDSPS posterior, stopped at 50 τ;
  ESS = walkers × steps after burn-in / the longest autocorrelation time);
* ln Z scatter over ``--seeds`` seeds of one SED (and the mean reported error);
* Bayes-factor success: ``--nmocks`` mocks without and with a detectable torus, each fitted
  with and without the torus; success = ``ModelComparison.preferred()`` (highest evidence,
  unless the simpler model is within ln B = 1) is the true model.

Usage: ``python benchmarks/bench_nested.py [--nsed 3] [--seeds 5] [--nmocks 4]
[--mock-seed 0]`` (needs the Nenkova08 torus templates in ../shared/data or $SPS_HOME).
Ends with one line ``RESULT key=value ...``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from pixedfit.fitting import (
    MCMCShortChainWarning,
    NestedSamplingWarning,
    Parallelism,
    compare_models,
    fit_sed,
)
from pixedfit.library import generate_library
from pixedfit.sps import SEDModel

FILTERS = ["galex_fuv", "galex_nuv", "sdss_u", "sdss_g", "sdss_r", "sdss_i", "sdss_z",
           "2mass_j", "2mass_h", "2mass_k", "wise_w1", "wise_w2"]
RANGES = {"log_age": (-1.0, 1.1), "logzsol": (-1.0, 0.2), "dust2": (0.0, 2.0)}
Z = 0.05
AGN_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "agn_torus_nenkova08"
ONE = Parallelism(threads=1)


def mock(model, rng, with_agn):
    p = {"logzsol": rng.uniform(-0.8, 0.1), "log_tau": rng.uniform(-0.5, 1.0),
         "log_age": rng.uniform(0.0, 1.0), "dust2": rng.uniform(0.05, 1.0), "log_mass": 10.0}
    if with_agn:
        p.update(log_fagn=rng.uniform(-1.2, -0.5), log_tauagn=rng.uniform(1.0, 2.0))
    flux = model.photometry(p, Z, FILTERS)
    err = flux / 20.0
    return flux + rng.normal(0, err), err


def timed(fn):
    t0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - t0, time.perf_counter() - w0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nsed", type=int, default=3, help="SEDs timed with both samplers")
    ap.add_argument("--seeds", type=int, default=5, help="seeds for the ln Z scatter")
    ap.add_argument("--nmocks", type=int, default=4, help="mocks per case (AGN or not)")
    ap.add_argument("--mock-seed", type=int, default=0, help="seed of the mocks")
    args = ap.parse_args()
    agn_dir = AGN_DIR if AGN_DIR.is_dir() else None
    plain = SEDModel(sfh_form=1, dust_law=1, add_neb_emission=False, threads=1)
    agn = SEDModel(sfh_form=1, dust_law=1, add_neb_emission=False, add_agn=True,
                   agn_templates=agn_dir, threads=1)
    libs = {"stars": generate_library(plain, 300, seed=5, ranges=RANGES),
            "stars+agn": generate_library(agn, 300, seed=5, ranges=RANGES)}
    models = {"stars": plain, "stars+agn": agn}
    rng = np.random.default_rng(args.mock_seed)
    warnings.simplefilter("ignore", MCMCShortChainWarning)
    warnings.simplefilter("ignore", NestedSamplingWarning)

    # ---- nested vs MCMC, same SEDs, 7 parameters
    rows = []
    for i in range(args.nsed):
        obs, err = mock(agn, rng, with_agn=True)
        kw = {"flux": obs, "flux_err": err, "filters": FILTERS, "z": Z,
              "library": libs["stars+agn"], "model": agn, "parallel": ONE, "seed": i}
        nres, ncpu, nwall = timed(lambda kw=kw: fit_sed(method="nested", **kw))
        mres, mcpu, mwall = timed(lambda kw=kw: fit_sed(method="mcmc", **kw))
        tau = np.nanmax(mres.diagnostics["autocorr"])
        m_ess = mres.ess  # walkers × steps after burn-in / τ_max (thinned samples are fewer)
        nd = nres.diagnostics
        k = nres.names.index("log_mass")
        j = mres.names.index("log_mass")
        dm = (nres.p50[k] - mres.p50[j]) / nres.std[k]
        rows.append((nd["n_likelihood_calls"], ncpu, nwall, nd["ess"], nd["converged"],
                     mres.diagnostics["n_model_evaluations"], mcpu, mwall, m_ess, dm))
        print(f"SED {i}: nested {nd['n_likelihood_calls']} calls {ncpu:.1f} s cpu "
              f"({nwall:.1f} s wall) ESS {nd['ess']:.0f} converged {nd['converged']} | "
              f"MCMC {mres.diagnostics['n_model_evaluations']} calls {mcpu:.1f} s cpu "
              f"({mwall:.1f} s wall) ESS {m_ess:.0f} (tau {tau:.0f}, converged "
              f"{mres.converged}) | "
              f"log M* nested-MCMC {dm:+.2f} sigma", flush=True)
    r = np.array(rows, dtype=float)

    # ---- ln Z over seeds, one SED
    obs, err = mock(agn, rng, with_agn=True)
    lnz, lnz_err = [], []
    for s in range(args.seeds):
        res = fit_sed(obs, err, FILTERS, z=Z, library=libs["stars+agn"], model=agn,
                      method="nested", seed=100 + s, parallel=ONE)
        lnz.append(res.ln_evidence)
        lnz_err.append(res.diagnostics["ln_evidence_err"])
    print(f"ln Z over {args.seeds} seeds: {np.round(lnz, 3)} (std {np.std(lnz, ddof=1):.3f}, "
          f"mean reported error {np.mean(lnz_err):.3f})", flush=True)

    # ---- Bayes factors
    good = {False: [], True: []}
    for with_agn in (False, True):
        for _ in range(args.nmocks):
            obs, err = mock(models["stars+agn" if with_agn else "stars"], rng, with_agn)
            cmp = compare_models(obs, err, FILTERS, Z, libraries=libs, models=models,
                                 seed=int(rng.integers(1 << 30)), parallel=ONE)
            lnb = cmp.ln_evidence[1] - cmp.ln_evidence[0]
            good[with_agn].append(cmp.preferred() == ("stars+agn" if with_agn else "stars"))
            print(f"mock agn={with_agn}: ln Z(stars+agn) - ln Z(stars) = {lnb:+.2f}",
                  flush=True)
    ok0, ok1 = np.mean(good[False]), np.mean(good[True])
    print(f"RESULT nested_calls={np.median(r[:, 0]):.0f} nested_cpu_s={np.median(r[:, 1]):.2f} "
          f"nested_wall_s={np.median(r[:, 2]):.2f} nested_ess={np.median(r[:, 3]):.0f} "
          f"nested_converged={int(r[:, 4].sum())}/{len(r)} "
          f"mcmc_calls={np.median(r[:, 5]):.0f} mcmc_cpu_s={np.median(r[:, 6]):.2f} "
          f"mcmc_wall_s={np.median(r[:, 7]):.2f} mcmc_ess={np.median(r[:, 8]):.0f} "
          f"cpu_ratio_mcmc_over_nested={np.median(r[:, 6]) / np.median(r[:, 1]):.2f} "
          f"max_abs_logM_diff_sigma={np.max(np.abs(r[:, 9])):.2f} "
          f"lnZ_seed_std={np.std(lnz, ddof=1):.3f} lnZ_err_mean={np.mean(lnz_err):.3f} "
          f"bayes_success_noagn={ok0:.2f} bayes_success_agn={ok1:.2f} "
          f"nmocks={args.nmocks}")


if __name__ == "__main__":
    main()
