"""Is the Monte-Carlo error that adaptive RDSPS reports the error it makes?

Every adaptive fit reports the Monte-Carlo standard error of its posterior medians
(``FitResult.diagnostics["median_errors"]``, from the effective sample size; the fit stops
when it is at most ``median_precision``). This benchmark measures the real error: it fits
the same DustPedia galaxies (``../shared/data/dustpedia_catalogues``, the bands, distances,
model and 5 % floor of ``fit_dustpedia.py``) again and again, and compares, galaxy by
galaxy, the standard deviation of the medians over the repeats with the root mean square
of the errors the fits reported. An honest error gives a root mean square of the ratios
of 1 and a median of √(median of χ²(S − 1) / (S − 1)) for ``S`` repeats (0.95 for 8): a
standard deviation from few repeats is more often below the truth than above.

Two kinds of repeat:

* ``--vary library`` (the default): every repeat draws a new library (seed ``s``) and
  fits with seed ``s``, as two users with different libraries would. The library decides
  where the sampler starts (the Levenberg–Marquardt starts and the library kernels of the
  first proposal).
* ``--vary sampler``: one library (``--library-seed``), a new fitting seed per repeat.
  This isolates the sampler's own randomness from that of its starting point.

Galaxies whose log M* posterior is wider than 0.3 dex (68 % half-width) are left out of
the log M* ratio, those whose log SFR posterior is wider than 1 dex out of the log SFR
ratio (bounds, not measurements).

Usage: python benchmarks/bench_seed_honesty.py [--every 13] [--repeats 8] [--nmod 100000]
       [--vary library|sampler] [--library-seed 7] [--threads 2] [--target-ess 300]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
import warnings

import numpy as np
from scipy.stats import chi2

from fit_dustpedia import (
    BANDS,
    FIT_OPTIONS,
    RANGES,
    catalogue_names,
    dustpedia_model,
    galaxy_seds,
    read_catalogues,
    usable,
)
from pixedfit.fitting import ErrorModel, Parallelism, RdspsSettings, fit_catalog
from pixedfit.fitting.adaptive import AdaptiveSettings
from pixedfit.library import generate_library

#: The quantities compared, and the 68 % half-width (dex) above which a posterior is a bound.
QUANTITIES = {"log_mass": 0.3, "log_sfr100": 1.0}


def galaxies(every: int) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Every ``every``-th DustPedia galaxy with a distance and ≥ 8 good bands: names,
    fluxes and errors (erg s⁻¹ cm⁻² Å⁻¹, shape (ngal, 27)) and redshifts (ngal,)."""
    phot, leda, cig = read_catalogues()
    names = catalogue_names(phot, leda, cig)[:600]
    flux, err, zs = galaxy_seds(names, phot, leda)
    ok = np.flatnonzero(usable(flux, zs))[::every]
    return [names[i] for i in ok], flux[ok], err[ok], zs[ok]


def fit_options() -> dict:
    """Keywords of fit_dustpedia's fit_catalog calls (``FIT_OPTIONS``) with its error
    model: the 5 % error floor, and bands without a valid flux or error dropped."""
    options = dict(FIT_OPTIONS)
    options["errors"] = dataclasses.replace(options.get("errors", ErrorModel()),
                                            error_floor=0.05, mask_invalid=True)
    return options


def honest_median(repeats: int) -> float:
    """Median of s / σ for the standard deviation s of ``repeats`` normal draws of
    standard deviation σ: √(median of χ²(repeats − 1) / (repeats − 1))."""
    return float(math.sqrt(chi2.median(repeats - 1) / (repeats - 1)))


def honesty(p50: np.ndarray, reported: np.ndarray, half: np.ndarray, max_half: float
            ) -> dict[str, float]:
    """Real against reported Monte-Carlo error of the medians.

    Parameters
    ----------
    p50, reported, half : ndarray, shape (repeats, ngal)
        Posterior medians, reported standard errors of the medians and 68 % half-widths
        (the quantity's unit).
    max_half : float
        Galaxies whose mean half-width is above this are left out.

    Returns
    -------
    dict
        ``n`` galaxies kept; per galaxy the ratio of the medians' standard deviation over
        the repeats to the root mean square of the reported errors: its median
        (``ratio_median``; ``honest_median`` if the errors are honest) and its root mean
        square (``ratio_rms``, 1 if honest, which outliers weigh more); the medians'
        standard deviation: median and root mean square over galaxies (``sd_median``,
        ``sd_rms``).
    """
    keep = (half.mean(axis=0) <= max_half) & np.all(np.isfinite(p50), axis=0) & np.all(
        np.isfinite(reported) & (reported > 0), axis=0)
    sd = p50[:, keep].std(axis=0, ddof=1)
    rms = np.sqrt((reported[:, keep] ** 2).mean(axis=0))
    ratio = sd / rms
    return {"n": int(keep.sum()), "ratio_median": float(np.median(ratio)),
            "honest_median": honest_median(p50.shape[0]),
            "ratio_rms": float(np.sqrt(np.mean(ratio**2))),
            "sd_median": float(np.median(sd)), "sd_rms": float(np.sqrt(np.mean(sd**2)))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=13)
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--nmod", type=int, default=100_000)
    parser.add_argument("--vary", choices=("library", "sampler"), default="library")
    parser.add_argument("--library-seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--target-ess", type=float, default=300.0)
    args = parser.parse_args()
    if args.repeats < 3:
        raise SystemExit("--repeats: at least 3 repeats are needed for a standard deviation")
    if args.every < 1 or args.nmod < 1:
        raise SystemExit("--every and --nmod must be positive integers")
    names, flux, err, zs = galaxies(args.every)
    model = dustpedia_model()
    method = RdspsSettings(refine=AdaptiveSettings(target_ess=args.target_ess))
    options = fit_options()
    shape = (args.repeats, len(names))
    p50 = {q: np.full(shape, np.nan) for q in QUANTITIES}
    reported = {q: np.full(shape, np.nan) for q in QUANTITIES}
    half = {q: np.full(shape, np.nan) for q in QUANTITIES}
    evaluations = np.zeros(shape)
    converged = np.zeros(shape, dtype=bool)
    library = None
    start = time.perf_counter()
    for r in range(args.repeats):
        seed = r + 1
        if library is None or args.vary == "library":
            library = generate_library(model, args.nmod, ranges=RANGES, threads=args.threads,
                                       seed=seed if args.vary == "library"
                                       else args.library_seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence is counted below
            results = fit_catalog(flux, err, list(BANDS.values()), zs, library=library,
                                  model=model, method=method, seed=seed,
                                  parallel=Parallelism(threads=args.threads), **options)
        for g, res in enumerate(results.values()):
            errors = res.diagnostics["median_errors"]
            for q in QUANTITIES:
                j = res.names.index(q)
                p50[q][r, g] = res.p50[j]
                half[q][r, g] = 0.5 * (res.p84[j] - res.p16[j])
                reported[q][r, g] = errors.get(q, np.nan)
            evaluations[r, g] = res.n_model_evaluations
            converged[r, g] = bool(res.converged)
        print(f"repeat {r + 1}/{args.repeats}: {len(results)} fits, "
              f"{time.perf_counter() - start:.0f} s so far", flush=True)
    line = (f"RESULT vary={args.vary} ngal={len(names)} repeats={args.repeats} "
            f"nmod={args.nmod} target_ess={args.target_ess:g} "
            f"evaluations_mean={evaluations.mean():.0f} converged={converged.mean():.3f}")
    for q, max_half in QUANTITIES.items():
        h = honesty(p50[q], reported[q], half[q], max_half)
        print(f"{q}: {h['n']} galaxies (68 % half-width <= {max_half} dex): real / reported "
              f"Monte-Carlo error of the median: median {h['ratio_median']:.2f}, rms "
              f"{h['ratio_rms']:.2f} (if honest: median {h['honest_median']:.2f}, rms "
              f"1); standard deviation of the medians: median "
              f"{h['sd_median']:.4f} dex, rms {h['sd_rms']:.4f} dex")
        line += (f" {q}_ratio_median={h['ratio_median']:.2f} {q}_ratio_rms="
                 f"{h['ratio_rms']:.2f} {q}_sd_median={h['sd_median']:.4f}")
    print(line)


if __name__ == "__main__":
    main()
