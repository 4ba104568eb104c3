"""MCMC SED fitting: speed of a full emcee fit, its accuracy on mocks, and the Legendre kernel.

1. **Speed**: one photometric MCMC fit — 100 walkers × 600 steps, 12 bands FUV … W2, 7 free
   parameters (delayed-τ SFH, Charlot & Fall dust: logzsol, log_tau, log_age, dust_index,
   dust1, dust2, log_mass; nebular emission on, gas_logu fixed), z = 0.05 — started from an
   RDSPS pass over a 5000-model library, including the posterior products (derived
   quantities of the samples, SED percentiles). Printed beside the time that the same number
   of model evaluations takes with bagpipes' ``model_galaxy.update`` (its photometry
   configuration of ``bench_sps.py``, measured in the same run) as a ratio.
2. **Accuracy** (``--nmocks``, default 20): mocks drawn independently of the library,
   S/N 20, MCMC with 50 walkers × 1000 steps (300 burn-in): the fraction of (mock,
   parameter) pairs whose truth lies inside the MCMC 68 % interval (nominal 0.68), and the
   agreement of MCMC and RDSPS on the same mocks (fraction with |p50_MCMC − p50_RDSPS| <
   the quadrature sum of their half 68 % widths).
3. **Spectrophotometric calibration** (``--ntilt``, default 8): mocks with a smooth ±15 %
   calibration tilt on their spectrum (4000 pixels 3800–9000 Å, S/N 30, σ = 70 km/s) plus
   photometry at S/N 20 and at S/N 50: the share of (mock, parameter) pairs whose truth
   lies inside the MCMC 68 % interval, and the rms and worst-pixel error of the
   posterior-mean correction (the photometry inside the spectral range sets its
   precision).
4. **Real spectra**: the SDSS spectra of NGC 3073 and NGC 3522 (``../shared/data``),
   spectrum only (3700–8800 Å observed, lines masked ±15 Å, Legendre order 8, LSF from
   ``wdisp``, velocity dispersion ``VDISP``), RDSPS and MCMC (50 walkers × 400 steps)
   with a 5000-model library (delayed τ, Calzetti): mass-weighted age, metallicity, time;
   then RDSPS χ² and age for other assumed broadenings of the models.
5. **Legendre kernel** against numpy.polynomial.legendre on 10⁴ spectra: runs
   ``bench_legendre.py`` (the same measurement, not duplicated here).

Run: ``python benchmarks/bench_mcmc.py [--nmocks 20] [--ntilt 8] [--skip-legendre]
[--skip-sdss]``
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

from pixedfit.fitting import (
    McmcSettings,
    MCMCShortChainWarning,
    ObservedSpectrum,
    Parallelism,
    RdspsSettings,
    Resolution,
    SpectralOptions,
    fit_sed,
)
from pixedfit.library import generate_library
from pixedfit.sps import SEDModel
from pixedfit.units import C_AA_PER_S

sys.path.insert(0, str(Path(__file__).parent))
import bench_legendre
import bench_sps

FILTERS = bench_sps.FILTERS
Z = 0.05
RANGES = {"log_age": (-1.0, 1.1), "logzsol": (-1.0, 0.2), "dust1": (0.0, 2.0),
          "dust2": (0.0, 1.5), "gas_logu": (-2.0, -2.0)}
CHECK = ("logzsol", "log_age", "dust2", "log_mass")
ONE = Parallelism(threads=1)
C_KMS = C_AA_PER_S * 1e-13  # speed of light, km/s


def mock(model, truth: dict, seed: int, snr: float = 20.0):
    flux = model.photometry(truth, Z, FILTERS)
    err = flux / snr
    return flux + np.random.default_rng(seed).normal(0, err), err


def fit(model, library, obs, err, method: str | McmcSettings, seed: int = 0, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCMCShortChainWarning)
        return fit_sed(obs, err, FILTERS, z=Z, library=library, model=model, method=method,
                       seed=seed, **kw)


def speed(model, library, threads: int) -> tuple[float, float, dict]:
    truth = {k: float(v[17]) for k, v in library.params.items()} | {"log_mass": 10.0}
    obs, err = mock(model, truth, 1)
    t0, c0 = time.perf_counter(), time.process_time()
    res = fit(model, library, obs, err, McmcSettings(nwalkers=100, nsteps=600, nsteps_cut=100),
              parallel=Parallelism(threads=threads))
    return time.perf_counter() - t0, time.process_time() - c0, res.diagnostics


def accuracy(model, library, nmocks: int) -> tuple[float, float]:
    truths = generate_library(model, nmocks, seed=99, ranges=RANGES).params
    inside = agree = total = 0
    for i in range(nmocks):
        truth = {k: float(v[i]) for k, v in truths.items()} | {"log_mass": 10.0}
        obs, err = mock(model, truth, 100 + i)
        mc = fit(model, library, obs, err, McmcSettings(nwalkers=50, nsteps=1000, nsteps_cut=300),
                 seed=i, parallel=ONE)
        rd = fit(model, library, obs, err, "rdsps", parallel=ONE)
        for name in CHECK:
            k = mc.names.index(name)
            inside += mc.p16[k] <= truth[name] <= mc.p84[k]
            j = rd.names.index(name)
            width = math.hypot(0.5 * (mc.p84[k] - mc.p16[k]), 0.5 * (rd.p84[j] - rd.p16[j]))
            agree += abs(mc.p50[k] - rd.p50[j]) <= width
            total += 1
    return inside / total, agree / total


def tilt_recovery(model, library, phot_snr: float, index: int, seed: int
                  ) -> tuple[list[float], float, float, float]:
    """One mock with a +15 % tilt (the library model ``index``, noise from ``seed``): the
    parameters' offsets from the truth in units of their 68 % half-widths, the
    posterior-mean correction's rms and worst-pixel error, and its median posterior std."""
    truth = {k: float(v[index]) for k, v in library.params.items()} | {"log_mass": 10.0}
    obs, err = mock(model, truth, seed, snr=phot_snr)
    dlog = 1e-4
    wave = 10 ** np.arange(np.log10(3800.0), np.log10(9000.0), dlog)
    mw, mf = model.spectrum(truth, Z)
    smooth = gaussian_filter1d(np.interp(wave, mw, mf), 70.0 / (dlog * math.log(10) * 2.998e5))
    x = 2 * (wave - wave[0]) / (wave[-1] - wave[0]) - 1
    factor = 1 + 0.15 * x
    flux = smooth * factor
    serr = flux / 30
    spec = ObservedSpectrum(wave, flux + np.random.default_rng(seed + 1).normal(0, serr), serr,
                            resolution=Resolution.velocity(70.0, instrumental=False))
    res = fit(model, library, obs, err, McmcSettings(nwalkers=50, nsteps=300, nsteps_cut=150),
              seed=3, spectrum=spec, spectral=SpectralOptions(poly_order=3), parallel=ONE)
    pulls = []
    for name in CHECK:
        k = res.names.index(name)
        pulls.append(float((res.p50[k] - truth[name]) / (0.5 * (res.p84[k] - res.p16[k]))))
    rel = res.spectrum["factor_mean"] / np.interp(res.spectrum["wave"], wave, factor) - 1
    return (pulls, float(np.sqrt(np.mean(rel**2))), float(np.max(np.abs(rel))),
            float(np.median(res.spectrum["factor_std"])))


def tilt_ensemble(model, library, phot_snr: float, nmock: int) -> dict[str, float]:
    """``nmock`` tilted mocks at one photometric S/N: the share of (mock, parameter) pairs
    whose truth lies inside the 68 % interval (nominal 0.68; one mock and four parameters
    say little), the median |pull| (nominal 0.67 for Gaussian posteriors), and the median
    rms and worst-pixel error of the correction against its posterior std."""
    pulls, rms, worst, sd = [], [], [], []
    for i in range(nmock):
        p, r, w, s = tilt_recovery(model, library, phot_snr, 33 + 7 * i, 7 + 10 * i)
        pulls.append(p)
        rms.append(r)
        worst.append(w)
        sd.append(s)
        print(f"  tilt mock {i}, photometry S/N {phot_snr:.0f}: pulls "
              + " ".join(f"{n} {v:+.2f}" for n, v in zip(CHECK, p, strict=True))
              + f"; correction rms {100 * r:.2f} %, worst {100 * w:.2f} %, std {100 * s:.2f} %")
    arr = np.abs(np.array(pulls))
    return {"cover68": float(np.mean(arr <= 1.0)), "abs_pull_median": float(np.median(arr)),
            "corr_rms_pct": 100 * float(np.median(rms)),
            "corr_worst_pct": 100 * float(np.median(worst)),
            "corr_std_pct": 100 * float(np.median(sd))}


def sdss(nlib: int) -> dict[str, str]:
    from pixedfit.fitting import read_sdss_spectrum

    folder = Path(__file__).resolve().parents[2] / "shared" / "data" / \
        "sdss_spectra_ngc3073_ngc3522"
    if not folder.is_dir():
        folder = Path("/work/shared/data/sdss_spectra_ngc3073_ngc3522")
    if not folder.is_dir():
        print("SDSS spectra not found: skipped")
        return {}
    model = SEDModel(sfh_form=1, dust_law=1, add_neb_emission=False)
    library = generate_library(model, nlib, seed=5, ranges={"log_age": (-1.0, 1.14),
                                                           "logzsol": (-1.5, 0.2),
                                                           "dust2": (0.0, 1.5)})
    out = {}
    for name in ("NGC3073", "NGC3522"):
        spec, z = read_sdss_spectrum(folder / f"{name}_SDSS_DR18.fits.gz",
                                     wave_range=(3700, 8800))
        for method, settings in (("rdsps", "rdsps"),
                                 ("mcmc", McmcSettings(nwalkers=50, nsteps=400,
                                                       nsteps_cut=200))):
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MCMCShortChainWarning)
                res = fit_sed(None, None, None, z=z, library=library, model=model,
                              spectrum=spec, spectral=SpectralOptions(poly_order=8),
                              method=settings, parallel=ONE)
            dt = time.perf_counter() - t0
            s = res.summary
            age = [10 ** s["log_mw_age"][q] for q in ("p16", "p50", "p84")]
            zs = [s["logzsol"][q] for q in ("p16", "p50", "p84")]
            npix = int(res.spectrum["used"].sum())
            print(f"{name} (z = {z:.5f}) {method}: mass-weighted age {age[1]:.2f} "
                  f"[{age[0]:.2f}, {age[2]:.2f}] Gyr, logzsol {zs[1]:+.2f} [{zs[0]:+.2f}, "
                  f"{zs[2]:+.2f}], dust2 {s['dust2']['p50']:.2f}, log M* (fibre) "
                  f"{s['log_mass']['p50']:.2f}, chi2/pixel {res.chi2_min / npix:.2f} "
                  f"({npix} pixels, {res.diagnostics.get('spectral_clipped', 0)} clipped), "
                  f"{dt:.1f} s")
            out[f"{name}_{method}_mwage_gyr"] = f"{age[1]:.2f}"
            out[f"{name}_{method}_logzsol"] = f"{zs[1]:+.2f}"
        # the wavelength scales of models and data agree: chi2 of the best library model
        # against a velocity offset dv of the models is lowest near dv = 0 (with the grid
        # left in air it was at +90-107 km/s)
        chi = []
        for dv in (-60.0, 0.0, 60.0):
            res = fit_sed(None, None, None, z=(1 + z) * (1 + dv / C_KMS) - 1,
                          library=library, model=model, spectrum=spec,
                          spectral=SpectralOptions(poly_order=8),
                          method=RdspsSettings(refine=False), parallel=ONE)
            chi.append(res.chi2_min / int(res.spectrum["used"].sum()))
        a, b, c = chi
        dv_min = 30.0 * (a - c) / (a - 2 * b + c) if a - 2 * b + c > 0 else math.nan
        print(f"  {name} chi2/pixel at dv = -60, 0, +60 km/s: {a:.2f}, {b:.2f}, {c:.2f}; "
              f"minimum at dv = {dv_min:+.0f} km/s")
        out[f"{name}_dv_min_kms"] = f"{dv_min:+.0f}"
        # how the assumed broadening matters: RDSPS with the old double broadening
        # (instrument on top of the templates) and with other velocity dispersions
        res0 = dataclasses.replace(spec.resolution, instrumental=False)
        trials = [("instrument on top of the templates, no dispersion",
                   dataclasses.replace(spec, resolution=res0, veldisp=0.0))]
        trials += [(f"instrument - templates, dispersion {v:.0f} km/s",
                    dataclasses.replace(spec, veldisp=v)) for v in (0.0, 60.0, 100.0, 120.0)]
        for label, sp in trials:
            res = fit_sed(None, None, None, z=z, library=library, model=model, spectrum=sp,
                          spectral=SpectralOptions(poly_order=8), parallel=ONE)
            npix = int(res.spectrum["used"].sum())
            print(f"  {name} broadening {label}: chi2/pixel {res.chi2_min / npix:.2f}, "
                  f"mass-weighted age {10 ** res.summary['log_mw_age']['p50']:.2f} Gyr")
    return out


def legendre() -> dict[str, str]:
    buf = io.StringIO()
    argv = sys.argv
    try:
        sys.argv = ["bench_legendre.py"]
        with contextlib.redirect_stdout(buf):
            bench_legendre.main()
    finally:
        sys.argv = argv
    lines = buf.getvalue().splitlines()
    for line in lines[:-1]:
        print("  legendre: " + line)
    return dict(item.split("=") for item in lines[-1].split()[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nmocks", type=int, default=20)
    ap.add_argument("--nlib", type=int, default=5000)
    ap.add_argument("--ntilt", type=int, default=8,
                    help="spectrophotometric mocks with a calibration tilt, per S/N")
    ap.add_argument("--skip-legendre", action="store_true")
    ap.add_argument("--skip-sdss", action="store_true")
    args = ap.parse_args()
    model = SEDModel(sfh_form=1, dust_law=0, add_neb_emission=True)
    t0 = time.perf_counter()
    library = generate_library(model, args.nlib, seed=1, ranges=RANGES)
    t_lib = time.perf_counter() - t0
    print(f"library: {args.nlib} models in {t_lib:.1f} s (made once, not part of the fit)")

    wall1, cpu1, diag = speed(model, library, threads=1)
    wall2, _, _ = speed(model, library, threads=2)
    nev = diag["n_model_evaluations"]
    with tempfile.TemporaryDirectory() as tmp:
        t_bp = bench_sps.bagpipes_time(30, Path(tmp))
    t_bp_total = nev * t_bp
    print(f"MCMC 100 walkers x 600 steps, {len(diag['sampled'])} free parameters "
          f"({', '.join(diag['sampled'])}), 12 bands: {nev} model evaluations")
    print(f"  ours, 1 thread: {wall1:.1f} s wall ({cpu1:.1f} s CPU); 2 threads: {wall2:.1f} s "
          f"wall; acceptance {diag['acceptance']:.2f}, max autocorrelation time "
          f"{max(diag['autocorr']):.0f} steps")
    print(f"  bagpipes model_galaxy.update (bench_sps configuration, CPU time): "
          f"{1e3 * t_bp:.2f} ms each -> {t_bp_total:.0f} s for the same evaluations "
          f"({t_bp_total / wall1:.1f}x our wall time, {t_bp_total / cpu1:.1f}x our CPU time); "
          f"{100 * 600} proposals (those outside the prior box are not evaluated)")

    cover, agree = accuracy(model, library, args.nmocks)
    print(f"mocks ({args.nmocks} x {len(CHECK)} parameters): truth inside the MCMC 68 % "
          f"interval {cover:.2f} (nominal 0.68); MCMC and RDSPS agree within 1 sigma "
          f"{agree:.2f}")
    tilt = {}
    for snr in (20.0, 50.0):
        tilt[snr] = t = tilt_ensemble(model, library, snr, args.ntilt)
        print(f"spectrophotometric mocks, +15 % tilt, photometry S/N {snr:.0f} ({args.ntilt} "
              f"x {len(CHECK)} parameters): truth inside the 68 % interval {t['cover68']:.2f} "
              f"(nominal 0.68), median |pull| {t['abs_pull_median']:.2f} (0.67); "
              f"posterior-mean correction error rms {t['corr_rms_pct']:.2f} %, worst pixel "
              f"{t['corr_worst_pct']:.2f} % (its posterior std {t['corr_std_pct']:.2f} %; "
              "medians over the mocks)")
    real = {} if args.skip_sdss else sdss(args.nlib)
    leg = {}
    if not args.skip_legendre:
        leg = legendre()
    print(f"RESULT mcmc_wall_1thr_s={wall1:.1f} mcmc_cpu_1thr_s={cpu1:.1f} "
          f"mcmc_wall_2thr_s={wall2:.1f} n_eval={nev} bagpipes_ms={1e3 * t_bp:.1f} "
          f"bagpipes_equiv_s={t_bp_total:.0f} ratio_wall={t_bp_total / wall1:.1f} "
          f"ratio_cpu={t_bp_total / cpu1:.1f} "
          f"coverage68={cover:.2f} mcmc_rdsps_agree={agree:.2f}"
          + f" tilt_nmock={args.ntilt}"
          + "".join(f" tilt_snr{snr:.0f}_{k}={v:.2f}" for snr, t in tilt.items()
                    for k, v in t.items())
          + "".join(f" {k}={v}" for k, v in real.items())
          + "".join(f" legendre_{k}={v}" for k, v in leg.items()))


if __name__ == "__main__":
    main()
