"""Which emcee moves and how many walkers mix fastest on SED posteriors (issue 13).

Mocks as in ``bench_adaptive.py`` (delayed-τ + Calzetti + nebular BC03 at z = 0.05, 12
bands, S/N 20, 5 % calibration scatter, fitted with 5 % calibration errors). Each mock is
fitted with a fixed chain of ``--nsteps`` steps started from the adaptive RDSPS posterior,
for every move set and walker count; the integrated autocorrelation time τ of every
parameter is measured on the chain after ``--burn`` steps. The cost of a converged chain
is nwalkers × (50 + 2) × τ_max model evaluations (50 τ after a 2 τ burn-in).

Usage: python benchmarks/bench_mcmc_moves.py [--nmock 3] [--nsteps 3000] [--walkers 16,32,64]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from bench_adaptive import FILTERS, mock_sed
from pixedfit.fitting import ErrorModel, McmcSettings, Parallelism, fit_sed
from pixedfit.library import generate_library
from pixedfit.sps import SEDModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nmock", type=int, default=3)
    parser.add_argument("--nmod", type=int, default=30_000)
    parser.add_argument("--nsteps", type=int, default=3000)
    parser.add_argument("--burn", type=int, default=300)
    parser.add_argument("--walkers", default="16,32,64")
    parser.add_argument("--moves", default="stretch,de,de-snooker,de-stretch")
    args = parser.parse_args()
    walkers = [int(w) for w in args.walkers.split(",")]
    moves = args.moves.split(",")
    model = SEDModel(sfh_form=1, dust_law=1, add_neb_emission=True)
    ranges = {"log_age": (-1.0, 1.1)}
    lib = generate_library(model, args.nmod, seed=1, ranges=ranges)
    truth = generate_library(model, args.nmock, seed=99, ranges=ranges)
    rng = np.random.default_rng(3)
    table: dict[tuple[str, int], list] = {}
    for i in range(args.nmock):
        obs, err = mock_sed(model, truth, i, rng)
        for mv in moves:
            for nw in walkers:
                t = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    r = fit_sed(obs, err, FILTERS, z=0.05, library=lib, model=model,
                                errors=ErrorModel(calibration=0.05),
                                parallel=Parallelism(threads=1), seed=7,
                                method=McmcSettings(nwalkers=nw, nsteps=args.nsteps,
                                                    nsteps_cut=args.burn, moves=mv))
                dt = time.perf_counter() - t
                tau = np.array(r.diagnostics["autocorr"])
                worst = r.diagnostics["sampled"][int(np.argmax(tau))]
                cost = nw * 52 * tau.max()
                table.setdefault((mv, nw), []).append((tau.max(), cost, dt, r.diagnostics[
                    "acceptance"]))
                print(f"mock {i} {mv:10s} nwalkers {nw:3d}: tau_max {tau.max():6.1f} "
                      f"({worst}) acc {r.diagnostics['acceptance']:.2f} evaluations to 50 tau "
                      f"{cost:8.0f}  time {dt:5.1f} s  us/eval "
                      f"{1e6 * dt / (nw * args.nsteps):.0f}", flush=True)
    print("median over mocks:")
    line = "RESULT"
    for (mv, nw), rows in table.items():
        a = np.array(rows)
        med = np.median(a, axis=0)
        print(f"  {mv:10s} nwalkers {nw:3d}: tau_max {med[0]:6.1f}  evaluations to 50 tau "
              f"{med[1]:8.0f}  acceptance {med[3]:.2f}")
        line += f" {mv}_{nw}_tau={med[0]:.1f} {mv}_{nw}_eval50={med[1]:.0f}"
    print(line)


if __name__ == "__main__":
    main()
