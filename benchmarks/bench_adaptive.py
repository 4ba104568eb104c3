"""Time to a converged posterior: adaptive RDSPS against plain RDSPS, MCMC and nested sampling.

Mocks: ``--nmock`` models of a delayed-τ + Calzetti + nebular BC03 SEDModel at z = 0.05,
observed in 12 bands (GALEX FUV … WISE W2) at S/N 20 with 5 % calibration scatter, fitted
with 5 % calibration errors. Two libraries of ``--nmod`` models that differ only in their
seed give the seed stability of each RDSPS flavour (the defect of issue 13: the answer of
plain RDSPS depends on the library's seed). The same SEDs are fitted by MCMC (emcee,
default settings: 32 walkers started from the refined posterior, DE + snooker moves,
stopped on the autocorrelation criterion) and nested sampling (nautilus, default settings)
for the side-by-side time and agreement. One thread per fit.

Long runs can be split over processes: ``--mocks A:B`` fits mocks A … B−1 of the
``--nmock`` (the mocks do not depend on how the run is split), ``--out`` writes one row per
mock and fit, and ``--combine`` summarises such tables.

Usage: python benchmarks/bench_adaptive.py [--nmock 8] [--nmod 100000] [--no-samplers]
       [--mocks A:B] [--out part.csv]
       python benchmarks/bench_adaptive.py --combine part1.csv part2.csv ...
"""

from __future__ import annotations

import argparse
import csv
import time
import warnings

import numpy as np

FILTERS = ["galex_fuv", "galex_nuv", "sdss_u", "sdss_g", "sdss_r", "sdss_i", "sdss_z",
           "2mass_j", "2mass_h", "2mass_k", "wise_w1", "wise_w2"]
QUANTITIES = ("log_mass", "log_sfr", "log_mw_age", "dust2")
FITS = ("plain1", "plain2", "adaptive1", "adaptive2", "mcmc", "nested")


def mock_sed(model, truth, i: int, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray]:
    """Observed fluxes and errors (erg s⁻¹ cm⁻² Å⁻¹, shape (12,)) of model ``i`` of the
    ``truth`` library at log M* = 10, z = 0.05: S/N 20 plus 5 % calibration scatter."""
    p = {k: v[i] for k, v in truth.params.items()}
    p["log_mass"] = 10.0
    flux = model.photometry(p, 0.05, FILTERS)
    obs = flux * (1 + rng.normal(0, 0.05, flux.size)) + rng.normal(0, flux / 20)
    return obs, flux / 20


def row_of(mock: int, fit: str, result, seconds: float) -> dict[str, float | int | str]:
    """One table row: the fit's medians and standard deviations of QUANTITIES, time,
    evaluations, ESS and convergence (MCMC: also its autocorrelation diagnostics)."""
    row: dict[str, float | int | str] = {"mock": mock, "fit": fit, "seconds": seconds,
                                         "evaluations": result.n_model_evaluations,
                                         "ess": result.ess, "rounds": result.rounds,
                                         "converged": int(bool(result.converged))}
    for q in QUANTITIES:
        j = result.names.index(q)
        row[f"{q}_p50"] = result.p50[j]
        row[f"{q}_std"] = result.std[j]
    d = result.diagnostics or {}
    row["tau_max"] = max(d["autocorr"]) if d.get("autocorr") else np.nan
    row["nsteps"] = d.get("nsteps", -1)
    return row


def run(args: argparse.Namespace) -> list[dict]:
    """Fit the selected mocks; return the table rows."""
    from pixedfit.fitting import ErrorModel, Parallelism, RdspsSettings, fit_sed
    from pixedfit.library import generate_library
    from pixedfit.sps import SEDModel

    model = SEDModel(sfh_form=1, dust_law=1, add_neb_emission=True)
    ranges = {"log_age": (-1.0, 1.1)}
    libs = [generate_library(model, args.nmod, seed=s, ranges=ranges) for s in (1, 2)]
    rng = np.random.default_rng(3)
    truth = generate_library(model, args.nmock, seed=99, ranges=ranges)
    first, stop = args.mocks
    stop = args.nmock if stop is None else min(stop, args.nmock)
    rows = []
    for i in range(stop):
        obs, err = mock_sed(model, truth, i, rng)  # every mock drawn: the split is invisible
        if i < first:
            continue
        common = {"z": 0.05, "model": model, "errors": ErrorModel(calibration=0.05),
                  "parallel": Parallelism(threads=1), "seed": 7}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for k, lib in enumerate(libs):
                for name, refine in (("plain", False), ("adaptive", True)):
                    t = time.perf_counter()
                    r = fit_sed(obs, err, FILTERS, library=lib,
                                method=RdspsSettings(refine=refine), **common)
                    rows.append(row_of(i, f"{name}{k + 1}", r, time.perf_counter() - t))
            if not args.no_samplers:
                for name in ("mcmc", "nested"):
                    t = time.perf_counter()
                    r = fit_sed(obs, err, FILTERS, library=libs[0], method=name, **common)
                    rows.append(row_of(i, name, r, time.perf_counter() - t))
        print(f"mock {i}: done", flush=True)
    for r in rows:
        r["nmod"] = args.nmod
    return rows


def write_rows(path: str, rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        out = csv.DictWriter(fh, fieldnames=list(rows[0]))
        out.writeheader()
        out.writerows(rows)


def read_rows(paths: list[str]) -> list[dict]:
    rows = []
    for path in paths:
        with open(path, newline="") as fh:
            for r in csv.DictReader(fh):
                rows.append({k: (v if k == "fit" else float(v)) for k, v in r.items()})
    return rows


def summarise(rows: list[dict], nmod: int | None) -> str:
    """Print the comparison; return the RESULT line."""
    by_fit: dict[str, dict[int, dict]] = {f: {} for f in FITS}
    for r in rows:
        by_fit[r["fit"]][int(r["mock"])] = r
    mocks = sorted(set(by_fit["adaptive1"]))
    if not mocks:
        raise SystemExit("no adaptive fits in the tables")

    def col(fit: str, key: str) -> np.ndarray:
        return np.array([by_fit[fit][m][key] for m in mocks], dtype=np.float64)

    out = {}
    for name in ("plain", "adaptive"):
        a, b = f"{name}1", f"{name}2"
        t = np.concatenate([col(a, "seconds"), col(b, "seconds")])
        ess = np.concatenate([col(a, "ess"), col(b, "ess")])
        nev = np.concatenate([col(a, "evaluations"), col(b, "evaluations")])
        conv = np.concatenate([col(a, "converged"), col(b, "converged")])
        print(f"{name}: median time {np.median(t):.2f} s per SED, ESS median "
              f"{np.median(ess):.0f}, model evaluations median {np.median(nev):.0f}, "
              f"converged {conv.mean():.2f}")
        for q in QUANTITIES:
            d = np.abs(col(a, f"{q}_p50") - col(b, f"{q}_p50"))
            s = col(a, f"{q}_std")
            print(f"   {q}: library-seed |Δ median| median {np.median(d):.4f} "
                  f"(max {np.max(d):.4f}); in σ: median {np.median(d / s):.3f}, "
                  f"max {np.max(d / s):.3f}")
        out[name] = (np.median(t), np.median(ess),
                     np.median(np.abs(col(a, "log_mass_p50") - col(b, "log_mass_p50"))))
    line = (f"RESULT nmock={len(mocks)} nmod={nmod} "
            f"t_plain_s={out['plain'][0]:.2f} t_adaptive_s={out['adaptive'][0]:.2f} "
            f"ess_plain={out['plain'][1]:.0f} ess_adaptive={out['adaptive'][1]:.0f} "
            f"seed_dlogM_plain={out['plain'][2]:.4f} seed_dlogM_adaptive={out['adaptive'][2]:.4f}")
    if all(m in by_fit["mcmc"] and m in by_fit["nested"] for m in mocks):
        sig = {q: col("adaptive1", f"{q}_std") for q in QUANTITIES}
        ref = {q: col("adaptive1", f"{q}_p50") for q in QUANTITIES}
        for name in ("mcmc", "nested"):
            dev = np.array([np.abs(col(name, f"{q}_p50") - ref[q]) / sig[q]
                            for q in QUANTITIES])  # (quantity, mock)
            worst = dev.max(axis=0)
            frac = float(np.mean(worst < 0.3))
            t = col(name, "seconds")
            print(f"{name}: median time {np.median(t):.2f} s per SED, model evaluations "
                  f"median {np.median(col(name, 'evaluations')):.0f}, converged "
                  f"{col(name, 'converged').mean():.2f}; medians within 0.3 σ of adaptive "
                  f"RDSPS for {frac:.3f} of the mocks (per quantity: "
                  + ", ".join(f"{q} {np.mean(dev[k] < 0.3):.3f}"
                              for k, q in enumerate(QUANTITIES)) + ")")
            for k in np.flatnonzero(worst >= 0.3):
                print(f"   mock {mocks[k]}: |Δ median|/σ "
                      + " ".join(f"{q} {dev[j, k]:.2f}" for j, q in enumerate(QUANTITIES))
                      + (f"; tau_max {col(name, 'tau_max')[k]:.1f} steps "
                         f"{col(name, 'nsteps')[k]:.0f}" if name == "mcmc" else ""))
            if name == "mcmc":
                line += (f" mcmc_converged={col(name, 'converged').mean():.2f}"
                         f" mcmc_steps_median={np.median(col(name, 'nsteps')):.0f}"
                         f" mcmc_eval_median={np.median(col(name, 'evaluations')):.0f}")
            line += f" t_{name}_s={np.median(t):.2f} agree_{name}_0p3sigma={frac:.3f}"
        both = np.mean([
            max(abs(by_fit[a][m][f"{q}_p50"] - by_fit[b][m][f"{q}_p50"])
                / by_fit["adaptive1"][m][f"{q}_std"]
                for a, b in (("adaptive1", "mcmc"), ("adaptive1", "nested"), ("mcmc", "nested"))
                for q in QUANTITIES) < 0.3 for m in mocks])
        print(f"all three samplers pairwise within 0.3 σ: {both:.3f} of the mocks")
        line += f" agree_all_0p3sigma={both:.3f}"
    print(line)
    return line


def parse_range(text: str) -> tuple[int, int | None]:
    a, _, b = text.partition(":")
    return int(a or 0), (int(b) if b else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nmock", type=int, default=8)
    parser.add_argument("--nmod", type=int, default=100_000)
    parser.add_argument("--no-samplers", action="store_true", help="skip MCMC and nested")
    parser.add_argument("--mocks", type=parse_range, default=(0, None), metavar="A:B",
                        help="fit mocks A … B-1 only")
    parser.add_argument("--out", help="write one row per mock and fit to this CSV")
    parser.add_argument("--combine", nargs="+", metavar="CSV",
                        help="summarise tables written by --out instead of fitting")
    args = parser.parse_args()
    if args.combine:
        rows = read_rows(args.combine)
        nmods = {int(r["nmod"]) for r in rows if "nmod" in r}
        summarise(rows, nmods.pop() if len(nmods) == 1 else None)
        return
    rows = run(args)
    if args.out:
        write_rows(args.out, rows)
    summarise(rows, args.nmod)


if __name__ == "__main__":
    main()
