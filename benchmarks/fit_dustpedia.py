"""Fit the DustPedia galaxies and compare log M* and log SFR with the published CIGALE values.

Data: ../shared/data/dustpedia_catalogues (600 galaxies): aperture photometry in Jy with
flags (Clark et al. 2018), HyperLEDA distances, CIGALE results (Nersesian et al. 2019).

* Bands: every band of the 27 from GALEX FUV to SPIRE 500 with an empty flag, a positive
  flux and a positive error. The fluxes are used as they are: the DustPedia photometry
  (CAAPR) is already corrected for Galactic extinction (for NGC 5705 the catalogue-to-raw-
  map NUV ratio is 1.340, the SFD + Fitzpatrick 1999 factor 1.356; SPIRE 250 1.003), and
  its uncertainties already include the calibration uncertainty (Clark et al. 2018), so no
  calibration term is added.
* Jy → f_λ: the CAAPR fluxes are not colour-corrected, so each band is read in its survey's
  own convention (``--jy-convention instrument``, the default: WISE F_ν at the isophotal
  wavelengths for ν⁻², IRAC, PACS and SPIRE for ν⁻¹, MIPS for a 10⁴ K blackbody, through
  :func:`pixedfit.instruments.catalog_flux_to_flam`; the other bands at their pivot
  wavelengths). ``--jy-convention pivot`` converts every band at its pivot wavelength (the
  benchmark's former conversion: WISE W3 9 % and MIPS 70 7 % too faint in f_λ).
* Redshift: the cosmological redshift of ``dist_best`` (flat ΛCDM, H0 = 70, Ωm = 0.3), so
  that the model's luminosity distance equals the catalogue distance.
* Model: delayed-τ SFH, Charlot & Fall dust, nebular and DL07 dust emission, BC03 (Kroupa
  IMF); RDSPS with a library of ``--nmod`` models refined to a converged posterior
  (adaptive RDSPS, the default; ``--plain`` for the library pass alone); a 5 % systematic
  error floor (explicit). ``--fix-logzsol`` fixes log Z/Z☉ = 0, as CIGALE did.
* Seed stability: the fits are run with two libraries that differ only in their seed
  (``--seeds``), and the per-galaxy differences of log M* and log SFR are reported.
* CIGALE used a Salpeter IMF: its masses and SFRs are converted to Kroupa with
  −0.19 dex (M*) and −0.17 dex (SFR) (Madau & Dickinson 2014, factors 0.66 and 0.67).

Usage: python benchmarks/fit_dustpedia.py [--nmod 100000] [--limit 600] [--names A,B]
       [--seeds 7 8] [--plain] [--fix-logzsol] [--jy-convention instrument|pivot]
       [--threads N] [--out table.csv]
       python benchmarks/fit_dustpedia.py --compare seed7.csv seed8.csv
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import time
import warnings
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.cosmology import FlatLambdaCDM, z_at_value

from pixedfit.fitting import ErrorModel, Parallelism, RdspsSettings, fit_catalog
from pixedfit.fitting.adaptive import ConvergenceWarning
from pixedfit.instruments import JY_CONVENTIONS, catalog_flux_to_flam
from pixedfit.library import generate_library
from pixedfit.sps import SEDModel

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dustpedia_catalogues"
BANDS = {
    "GALEX_FUV": "galex_fuv", "GALEX_NUV": "galex_nuv", "SDSS_u": "sdss_u", "SDSS_g": "sdss_g",
    "SDSS_r": "sdss_r", "SDSS_i": "sdss_i", "SDSS_z": "sdss_z", "2MASS_J": "2mass_j",
    "2MASS_H": "2mass_h", "2MASS_Ks": "2mass_k", "WISE_3.4": "wise_w1", "WISE_4.6": "wise_w2",
    "WISE_12": "wise_w3", "WISE_22": "wise_w4", "Spitzer_3.6": "spitzer_irac_36",
    "Spitzer_4.5": "spitzer_irac_45", "Spitzer_5.8": "spitzer_irac_58",
    "Spitzer_8.0": "spitzer_irac_80", "Spitzer_24": "spitzer_mips_24",
    "Spitzer_70": "spitzer_mips_70", "Spitzer_160": "spitzer_mips_160",
    "PACS_70": "herschel_pacs_70", "PACS_100": "herschel_pacs_100",
    "PACS_160": "herschel_pacs_160", "SPIRE_250": "herschel_spire_250",
    "SPIRE_350": "herschel_spire_350", "SPIRE_500": "herschel_spire_500",
}
#: The catalogues (files in DATA): aperture photometry, HyperLEDA distances, CIGALE results.
PHOT_CSV = "DustPedia_Aperture_Photometry_2.2.csv"
LEDA_CSV = "DustPedia_HyperLEDA_Herschel.csv"
CIGALE_CSV = "dustpedia_cigale_results_final_version.csv"
#: Library ranges that differ from the model's defaults (ages up to the age of the universe).
RANGES = {"log_age": (-1.0, 1.14)}
#: Options of every fit_catalog call: the library's redshift step (finer than the default:
#: these galaxies lie within z < 0.016) and bands without a valid flux or error dropped.
FIT_OPTIONS = {"dz": 0.002, "errors": ErrorModel(mask_invalid=True)}
SALPETER_TO_KROUPA_MASS = np.log10(0.66)
SALPETER_TO_KROUPA_SFR = np.log10(0.67)


def read_rows(name: str, comment_header: bool = False) -> dict[str, dict[str, str]]:
    with open(DATA / name, encoding="utf-8") as fh:
        lines = [ln for ln in fh if not (ln.startswith("# downloaded"))]
    if comment_header:
        lines[0] = lines[0].lstrip("# ")
    reader = csv.DictReader(lines)
    key = reader.fieldnames[0]
    return {row[key]: row for row in reader}


def as_float(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return np.nan


def galaxy_seds(names: list[str], phot: dict[str, dict[str, str]] | None = None,
                leda: dict[str, dict[str, str]] | None = None,
                jy_convention: str = "instrument"
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fluxes and errors (erg s⁻¹ cm⁻² Å⁻¹, shape (ngal, nband), NaN for flagged, missing or
    non-positive entries; bands in ``BANDS`` order) and redshifts (from the HyperLEDA
    distance, NaN without one) of the catalogue galaxies ``names``. ``phot`` and ``leda``
    are the catalogues as read by :func:`read_rows` (read here when not given); the Jy are
    converted in ``jy_convention`` (:func:`pixedfit.instruments.catalog_flux_to_flam`)."""
    phot = read_rows(PHOT_CSV) if phot is None else phot
    leda = read_rows(LEDA_CSV) if leda is None else leda
    cosmo = FlatLambdaCDM(H0=70, Om0=0.3)
    jy = np.full((len(names), len(BANDS)), np.nan)
    jy_err = np.full_like(jy, np.nan)
    zs = np.full(len(names), np.nan)
    for i, name in enumerate(names):
        row = phot[name]
        for b, band in enumerate(BANDS):
            f, e = as_float(row.get(band)), as_float(row.get(band + "_err"))
            if row.get(band + "_flag", "") or not (f > 0 and e > 0):
                continue
            jy[i, b], jy_err[i, b] = f, e
        dist = as_float(leda[name]["dist_best"])
        if dist > 0:
            zs[i] = z_at_value(cosmo.luminosity_distance, dist * u.Mpc).value
    flux, err = catalog_flux_to_flam(jy, list(BANDS.values()), "Jy", flux_err=jy_err,
                                     convention=jy_convention)
    return flux, err, zs


def read_catalogues() -> tuple[dict, dict, dict]:
    """The aperture photometry, HyperLEDA and CIGALE tables, each keyed by galaxy name."""
    return read_rows(PHOT_CSV), read_rows(LEDA_CSV), read_rows(CIGALE_CSV, comment_header=True)


def dustpedia_model() -> SEDModel:
    """The model of the fits: delayed-τ SFH, Charlot & Fall dust, nebular and DL07 dust
    emission, BC03 (Kroupa IMF)."""
    return SEDModel(sfh_form=1, dust_law=0, dust_emission=True, add_neb_emission=True)


def catalogue_names(phot: dict, leda: dict, cig: dict) -> list[str]:
    """The galaxies in all three catalogues, in the photometry's order."""
    return [n for n in phot if n in leda and n in cig]


def usable(flux: np.ndarray, zs: np.ndarray) -> np.ndarray:
    """Galaxies (rows of :func:`galaxy_seds`) with a distance and at least 8 good bands."""
    return np.isfinite(zs) & (np.isfinite(flux).sum(axis=1) >= 8)


def nmad(d: np.ndarray) -> float:
    """Normalised median absolute deviation (σ of a Gaussian)."""
    return float(1.4826 * np.median(np.abs(d - np.median(d))))


def _table_rows(names: list[str], seed: int, results: list,
                jy_convention: str = "instrument") -> list[dict[str, object]]:
    """One row per galaxy: percentiles of log M* and log SFR, the convergence figures and
    the Jy convention of the fluxes."""
    rows = []
    for name, res in zip(names, results, strict=True):
        row: dict[str, object] = {"name": name, "seed": seed, "jy_convention": jy_convention}
        for q in ("log_mass", "log_sfr", "log_sfr100"):
            k = res.names.index(q)
            row.update({f"{q}_p16": res.p16[k], f"{q}_p50": res.p50[k],
                        f"{q}_p84": res.p84[k]})
        row.update({"ess": res.ess, "evaluations": res.n_model_evaluations,
                    "rounds": res.rounds, "converged": int(bool(res.converged)),
                    "chi2_min": res.chi2_min})
        rows.append(row)
    return rows


def compare_tables(first: Path, second: Path) -> None:
    """Seed stability from two per-galaxy tables written by ``--out`` (runs made apart,
    e.g. one seed per run); prints the figures and a ``RESULT`` line."""
    def read(path: Path) -> dict[str, dict[str, str]]:
        with open(path, newline="") as fh:
            return {row["name"]: row for row in csv.DictReader(fh)}

    a, b = read(first), read(second)
    names = [n for n in a if n in b]

    def col(table: dict[str, dict[str, str]], key: str) -> np.ndarray:
        return np.array([float(table[n][key]) for n in names])

    def half_width(key: str) -> np.ndarray:
        return np.maximum(0.5 * (col(a, key + "_p84") - col(a, key + "_p16")),
                          0.5 * (col(b, key + "_p84") - col(b, key + "_p16")))

    dm = col(b, "log_mass_p50") - col(a, "log_mass_p50")
    ds = col(b, "log_sfr100_p50") - col(a, "log_sfr100_p50")
    hw_m, hw_s = half_width("log_mass"), half_width("log_sfr100")
    ok = np.isfinite(dm) & np.isfinite(ds)
    dm, ds, hw_m, hw_s = dm[ok], ds[ok], hw_m[ok], hw_s[ok]
    measured = hw_s <= 1.0  # wider log SFR posteriors are bounds (see the module docstring)
    conv = np.concatenate([col(a, "converged"), col(b, "converged")])
    print(f"{ok.sum()} galaxies in both tables; converged {conv.mean() * 100:.1f} % of fits")
    far_m, far_s = np.abs(dm) > 0.1, np.abs(ds[measured]) > 0.1
    print(f"log M*: NMAD {nmad(dm):.4f} dex, > 0.1 dex apart {far_m.mean() * 100:.1f} % "
          f"({far_m.sum()}); |Δ| / half-width median {np.median(np.abs(dm) / hw_m):.3f}")
    print(f"log SFR100: NMAD {nmad(ds):.4f} dex, > 0.1 dex apart "
          f"{np.mean(np.abs(ds) > 0.1) * 100:.1f} %; the {measured.sum()} measured (half-width "
          f"<= 1 dex): NMAD {nmad(ds[measured]):.4f} dex, > 0.1 dex apart "
          f"{far_s.mean() * 100:.1f} % ({far_s.sum()})")
    print(f"RESULT ngal={ok.sum()} converged={conv.mean():.4f} seed_dlogM_nmad={nmad(dm):.4f} "
          f"seed_dlogM_gt0p1={np.mean(np.abs(dm) > 0.1):.4f} "
          f"seed_dlogSFR_nmad={nmad(ds):.4f} seed_dlogSFR_gt0p1={np.mean(np.abs(ds) > 0.1):.4f} "
          f"n_sfr_measured={measured.sum()} seed_dlogSFR_measured_nmad={nmad(ds[measured]):.4f} "
          f"seed_dlogSFR_gt0p1_measured={np.mean(np.abs(ds[measured]) > 0.1):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nmod", type=int, default=100_000)
    parser.add_argument("--limit", type=int, default=600)
    parser.add_argument("--names", default=None,
                        help="fit only these galaxies (comma-separated catalogue names)")
    parser.add_argument("--floor", type=float, default=0.05)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8],
                        help="library seeds (two or more: seed stability is measured)")
    parser.add_argument("--plain", action="store_true",
                        help="the original's RDSPS (library pass only, no refinement)")
    parser.add_argument("--fix-logzsol", action="store_true", help="fix log Z/Zsun = 0")
    parser.add_argument("--jy-convention", choices=JY_CONVENTIONS,
                        default="instrument",
                        help="Jy -> f_lambda: each survey's convention (default; CAAPR fluxes "
                             "are not colour-corrected) or every band at its pivot wavelength")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--mpi", action="store_true",
                        help="fit over MPI ranks (run under mpiexec; rank 0 reports)")
    parser.add_argument("--out", type=Path, default=None,
                        help="write the per-galaxy results of every seed to this CSV file")
    parser.add_argument("--compare", type=Path, nargs=2, metavar="CSV", default=None,
                        help="only compare two tables written by --out (seed stability)")
    args = parser.parse_args()
    pool = None
    if args.mpi:
        from pixedfit.parallel import MPIPool

        pool = MPIPool()
    report = print if pool is None or pool.is_master else (lambda *a, **k: None)
    if args.compare is not None:
        compare_tables(*args.compare)
        return
    phot, leda, cig = read_catalogues()
    names = catalogue_names(phot, leda, cig)
    if args.names:
        wanted = args.names.split(",")
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            raise SystemExit(f"--names: not in the catalogues: {', '.join(unknown)}")
        names = [n for n in names if n in wanted]
    names = names[: args.limit]
    filters = list(BANDS.values())
    flux, err, zs = galaxy_seds(names, phot, leda, args.jy_convention)
    ok = usable(flux, zs)
    report(f"{ok.sum()} of {len(names)} galaxies with a distance and >= 8 good bands; Jy "
           f"converted in the {args.jy_convention} convention")

    model = dustpedia_model()
    ranges = dict(RANGES)
    if args.fix_logzsol:
        ranges["logzsol"] = (0.0, 0.0)
    sel = [n for n, good in zip(names, ok, strict=True) if good]
    cig_m = np.log10([as_float(cig[n]["Mstar__Msol"]) for n in sel]) + SALPETER_TO_KROUPA_MASS
    cig_s = np.log10([as_float(cig[n]["SFR__Msol_per_yr"]) for n in sel]) + SALPETER_TO_KROUPA_SFR
    runs = []
    rows: list[dict[str, object]] = []
    for seed in args.seeds:
        start = time.perf_counter()
        library = generate_library(model, args.nmod, seed=seed, ranges=ranges,
                                   threads=args.threads, pool=pool)
        t_lib = time.perf_counter() - start
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            options = {**FIT_OPTIONS, "errors": dataclasses.replace(
                FIT_OPTIONS["errors"], error_floor=args.floor)}
            fits = fit_catalog(flux[ok], err[ok], filters, zs[ok], library=library,
                               model=model, method=RdspsSettings(refine=not args.plain),
                               seed=seed, parallel=Parallelism(threads=args.threads,
                                                               pool=pool), **options)
        results = list(fits.values())
        t_fit = time.perf_counter() - start
        k_m = results[0].names.index("log_mass")
        k_s = results[0].names.index("log_sfr100")
        ours_m = np.array([r.p50[k_m] for r in results])
        ours_s = np.array([r.p50[k_s] for r in results])
        ess = np.array([r.ess for r in results])
        nev = np.array([r.n_model_evaluations for r in results])
        conv = np.array([bool(r.converged) for r in results])
        good_m = np.isfinite(cig_m) & np.isfinite(ours_m)
        good_s = np.isfinite(cig_s) & np.isfinite(ours_s)
        dm = ours_m[good_m] - cig_m[good_m]
        ds = ours_s[good_s] - cig_s[good_s]
        report(f"seed {seed}: library {args.nmod} models in {t_lib:.0f} s; {len(results)} fits "
              f"in {t_fit:.1f} s; ESS median {np.median(ess):.0f} (min {ess.min():.0f}); "
              f"model evaluations median {np.median(nev):.0f}; converged "
              f"{conv.sum()}/{conv.size}; {len(caught)} convergence warnings")
        report(f"  log M*: median offset ours - CIGALE(Kroupa) {np.median(dm):+.3f} dex, "
              f"NMAD {nmad(dm):.3f} dex, std {np.std(dm):.3f} dex, N = {dm.size}")
        report(f"  log SFR (100 Myr): median offset {np.median(ds):+.3f} dex, NMAD "
              f"{nmad(ds):.3f} dex, std {np.std(ds):.3f} dex, N = {ds.size}")
        sd_m = np.array([r.std[k_m] for r in results])
        sd_s = np.array([r.std[k_s] for r in results])
        hw_s = np.array([0.5 * (r.p84[k_s] - r.p16[k_s]) for r in results])
        if args.out is not None:
            rows.extend(_table_rows(sel, seed, results, args.jy_convention))
        runs.append({"m": ours_m, "s": ours_s, "t": t_fit, "dm": dm, "ds": ds, "ess": ess,
                     "conv": conv, "sd_m": sd_m, "sd_s": sd_s, "hw_s": hw_s})
    if args.out is not None and (pool is None or pool.is_master):
        with open(args.out, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        report(f"per-galaxy results: {args.out}")
    first, second = runs[0], runs[-1]
    line = (f"RESULT ngal={ok.sum()} nmod={args.nmod} refine={int(not args.plain)} "
            f"fix_logzsol={int(args.fix_logzsol)} jy_convention={args.jy_convention} "
            f"t_fit_s={first['t']:.1f} "
            f"ess_median={np.median(first['ess']):.0f} converged={first['conv'].mean():.3f} "
            f"dlogM_median={np.median(first['dm']):+.3f} dlogM_nmad={nmad(first['dm']):.3f} "
            f"dlogSFR_median={np.median(first['ds']):+.3f} dlogSFR_nmad={nmad(first['ds']):.3f}")
    if len(runs) < 2:  # one seed: no seed stability (compare two --out tables instead)
        report(line)
        return
    sm = second["m"] - first["m"]
    ss = second["s"] - first["s"]
    # the same differences in units of the posterior width (the Monte-Carlo error of a
    # median with ESS 300 is 0.072 σ per fit, 0.10 σ for a difference of two fits)
    zm = np.abs(sm) / np.hypot(first["sd_m"], second["sd_m"]) * np.sqrt(2)
    zs = np.abs(ss) / np.hypot(first["sd_s"], second["sd_s"]) * np.sqrt(2)
    # a log SFR posterior more than 1 dex wide (half-width of its 68 % interval) is a bound,
    # not a measurement (a quenched galaxy's SFR spreads over up to 15 dex): the refinement
    # holds its median to target_ess only (AdaptiveSettings.precision_max_width)
    narrow_s = np.isfinite(ss) & (np.maximum(first["hw_s"], second["hw_s"]) <= 1.0)
    sm, ss = sm[np.isfinite(sm)], ss[np.isfinite(ss)]
    zm, zs = zm[np.isfinite(zm)], zs[np.isfinite(zs)]
    ss_narrow = (second["s"] - first["s"])[narrow_s]
    report(f"seed stability (library seeds {args.seeds[0]} vs {args.seeds[-1]}): log M* NMAD "
          f"{nmad(sm):.4f} dex, > 0.1 dex apart: {np.mean(np.abs(sm) > 0.1) * 100:.1f} %; "
          f"log SFR NMAD {nmad(ss):.4f} dex, > 0.1 dex apart: "
          f"{np.mean(np.abs(ss) > 0.1) * 100:.1f} % (of the {ss_narrow.size} with a measured "
          f"SFR, 68 % half-width <= 1 dex: {np.mean(np.abs(ss_narrow) > 0.1) * 100:.1f} %, "
          f"NMAD {nmad(ss_narrow):.4f} dex)")
    report(f"  in units of σ: log M* median {np.median(zm):.3f}, > 0.3 σ: "
          f"{np.mean(zm > 0.3) * 100:.1f} %; log SFR median {np.median(zs):.3f}, > 0.3 σ: "
          f"{np.mean(zs > 0.3) * 100:.1f} %")
    report(f"{line} seed_dlogM_nmad={nmad(sm):.4f} seed_dlogSFR_nmad={nmad(ss):.4f} "
          f"seed_dlogM_gt0p1={np.mean(np.abs(sm) > 0.1):.4f} "
          f"seed_dlogSFR_gt0p1={np.mean(np.abs(ss) > 0.1):.4f} "
          f"seed_dlogSFR_gt0p1_measured={np.mean(np.abs(ss_narrow) > 0.1):.4f} "
          f"n_sfr_measured={ss_narrow.size} "
          f"seed_dlogM_gt0p3sigma={np.mean(zm > 0.3):.4f} "
          f"seed_dlogSFR_gt0p3sigma={np.mean(zs > 0.3):.4f}")


if __name__ == "__main__":
    main()
