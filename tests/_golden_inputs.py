"""The tiny deterministic content of the golden files in ``tests/data/golden``.

``tests/data/golden/make_golden.py`` writes these values into the files (once);
``tests/test_golden_files.py`` reads the files with pixedfit's readers and compares what they
return with these values. Nothing here reads a golden file. Changing a value here without
regenerating the files makes the golden tests fail, which is the point: the files are frozen
and the values are their specification.

Grid: 4 × 5 pixels (y, x), 3 bands, a 16-pixel galaxy region, 3 bins (bin 3 is the leftover
bin and has no fit result in the property maps), an IFS footprint covering bins 1 and 2
entirely and bin 3 partly, 60 spectral channels, libraries of 20 models.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

GOLDEN_DIR = Path(__file__).resolve().parent / "data" / "golden"

# --------------------------------------------------------------------------- cube metadata
FILTERS = ("sdss_g", "sdss_r", "sdss_i")
#: piXedfit's tabulated central wavelengths of FILTERS (its filter table), Å.
ORIG_CWAVE = (4686.0, 6166.0, 7480.0)
NB = 3
NY, NX = 4, 5
UNIT = 1e-17
Z = 0.02
PIXSIZE = 1.0
GALEBV = 0.03
RA, DEC = 150.1, 2.2
PSFFWHM = 1.4
#: What piXedfit's flux_map writes outside the region: −99 divided by the unit.
ORIG_OUTSIDE = -99.0 / UNIT

REGION = np.array([[0, 1, 1, 1, 0],
                   [1, 1, 1, 1, 1],
                   [1, 1, 1, 1, 1],
                   [0, 1, 1, 1, 0]], dtype=bool)
BIN_MAP = np.array([[0, 2, 2, 3, 0],
                    [2, 1, 1, 3, 3],
                    [2, 1, 1, 3, 3],
                    [0, 2, 3, 3, 0]], dtype=np.int32)
NBINS = 3
#: Row-major first pixel (y, x) of bins 1, 2, 3.
FIRST_PIXEL = ((1, 1), (0, 1), (0, 3))
BIN_NPIX = (4, 5, 7)
#: IFS footprint: bins 1 and 2 entirely, bin 3 in part (so bin 3 has no binned spectrum).
SPEC_REGION = np.array([[0, 1, 1, 1, 0],
                        [1, 1, 1, 1, 0],
                        [1, 1, 1, 1, 0],
                        [0, 1, 0, 0, 0]], dtype=bool)
BIN_HAS_SPEC = (True, True, False)
#: piXedfit bins only the IFS footprint of a spectrophotometric cube (spec §1.1: without
#: GALAXY_REGION it bins SPEC_REGION), so its binned spectrophotometric cube has these bins
#: (bin 3 reduced to its 3 IFS pixels), every one with a spectrum.
ORIG_SP_BIN_MAP = np.where(SPEC_REGION, BIN_MAP, 0).astype(np.int32)
ORIG_SP_BIN_NPIX = (4, 5, 3)
NWAVE = 60
WAVE = 4000.0 + 50.0 * np.arange(NWAVE)
#: Channel and pixel masked (NaN) in our spectrophotometric cube.
MASKED_CHANNEL = (5, 1, 1)

_Y, _X = np.mgrid[0:NY, 0:NX]
_B = np.arange(NB)[:, None, None]
_W = np.arange(NWAVE)[:, None, None]

#: Pixel fluxes and errors (band, y, x) in units of UNIT, defined on every pixel (binary
#: fractions: exact in float64).
PIX_FLUX = (_B + 1.0) * (2.0 + 0.5 * _Y + 0.25 * _X)
PIX_ERR = 0.125 + 0.0625 * _B + 0.03125 * ((_Y + _X) % 3)
#: Spectra and errors (wavelength, y, x) in units of UNIT, defined on every pixel.
PIX_SPEC = (1.0 + _W / 64.0) * (1.0 + _Y / 8.0 + _X / 16.0)
PIX_SPEC_ERR = 0.0625 + 0.0078125 * ((_W + _Y + _X) % 4)
#: Image written as STAMP_IMAGE (y, x).
STAMP = 10.0 + 5.0 * _Y + 1.0 * _X


def wcs_header() -> fits.Header:
    """Celestial TAN WCS of the 4 × 5 grid (1″ pixels)."""
    h = fits.Header()
    h["WCSAXES"] = 2
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    h["CRVAL1"], h["CRVAL2"] = RA, DEC
    h["CRPIX1"], h["CRPIX2"] = 3.0, 2.5
    h["CDELT1"], h["CDELT2"] = -1.0 / 3600.0, 1.0 / 3600.0
    h["CUNIT1"], h["CUNIT2"] = "deg", "deg"
    return h


def inside(arr: np.ndarray, mask: np.ndarray, fill: float = np.nan) -> np.ndarray:
    """``arr`` (…, y, x) with ``fill`` outside ``mask``."""
    return np.where(mask, arr, fill)


def bin_sum(arr: np.ndarray, quadrature: bool = False, bin_map: np.ndarray = BIN_MAP
            ) -> np.ndarray:
    """Per-bin sums (nbins, n) of a (n, y, x) cube over ``bin_map`` (NaN propagates);
    ``quadrature``: root of the sum of squares."""
    out = np.empty((NBINS, arr.shape[0]))
    for k in range(NBINS):
        sel = arr[:, bin_map == k + 1]
        out[k] = np.sqrt(np.sum(sel**2, axis=1)) if quadrature else np.sum(sel, axis=1)
    return out


def paint(values: np.ndarray, fill: float = np.nan, bins: tuple[int, ...] = (1, 2, 3),
          bin_map: np.ndarray = BIN_MAP) -> np.ndarray:
    """Per-bin rows (nbins, n) painted on the bins' pixels: (n, y, x), ``fill`` elsewhere."""
    v = np.asarray(values, dtype=np.float64)
    out = np.full((v.shape[1], NY, NX), fill)
    for k in bins:
        out[:, bin_map == k] = v[k - 1][:, None]
    return out


# --------------------------------------------------------------------------- flux map
#: Extra primary-header cards of our flux map (what the image stage records).
FLUXMAP_EXTRA = {
    "RA": RA, "DEC": DEC, "FSAMP": "sdss_r", "FPSFMTCH": "sdss_g", "PSFFWHM": PSFFWHM,
    "CALERR0": 0.02, "CALERR1": 0.03, "CALERR2": 0.05,
    "VCF0": 1.25, "VCF1": 1.5, "VCF2": 1.75,
    "AEXT0": 0.1125, "AEXT1": 0.0825, "AEXT2": 0.0625,
    "REGFRAC": 0.8, "REGEDGE": 2, "REGFLAG": False, "REGMETH": "segmentation",
}
CALIB_ERR = (0.02, 0.03, 0.05)
IFS_SURVEY = "manga"

# --------------------------------------------------------------------------- binned cube
BIN_FLUX = bin_sum(PIX_FLUX)
BIN_FLUX_ERR = bin_sum(PIX_ERR, quadrature=True)
LEFTOVER = (False, False, True)
SEEDS = ((1, 1), (0, 1), (-1, -1))
PIXEL_CHI2 = np.where(np.isin(BIN_MAP, (1, 2)), 0.25 * (_Y + 1) + 0.125 * _X, np.nan)
#: BinnedCube.params (the golden files, written before the PEP 8 renaming, hold the same
#: header cards: BDMIN, BSNR<i>, BCHI2LIM...).
BIN_PARAMS = {"ref_band": 1, "min_bin_diameter": 2.0, "snr_target": np.array([5.0, 5.0, 3.0]),
              "max_reduced_chi2": 4.0, "del_r": 1.0, "connected": True,
              "shape_test_first_circle": False, "absorb_leftover": False,
              "sys_err_factor": 0.02, "max_radius": 10.0, "noise_correlation": False}
BINNED_EXTRA = {"RA": RA, "DEC": DEC, "FSAMP": "sdss_r"}
#: Our spectrophotometric cube: spectra NaN outside the IFS region and at MASKED_CHANNEL.
SPEC_OURS = inside(PIX_SPEC, SPEC_REGION)
SPEC_ERR_OURS = inside(PIX_SPEC_ERR, SPEC_REGION)
SPEC_OURS[MASKED_CHANNEL] = np.nan
SPEC_ERR_OURS[MASKED_CHANNEL] = np.nan
#: Binned spectra of our layout (NaN row for bin 3; channel 5 of bin 1 is masked).
BIN_SPEC_OURS = np.where(np.array(BIN_HAS_SPEC)[:, None], bin_sum(SPEC_OURS), np.nan)
BIN_SPEC_ERR_OURS = np.where(np.array(BIN_HAS_SPEC)[:, None],
                             bin_sum(SPEC_ERR_OURS, quadrature=True), np.nan)

# --------------------------------------------------------------------------- libraries
NMOD = 20
_I = np.arange(NMOD, dtype=np.float64)
LIB_FREE = ("logzsol", "log_tau", "log_age", "dust2")
LIB_PARAMS = {
    "logzsol": -1.5 + 0.0625 * _I,
    "log_tau": -0.5 + 0.09375 * _I,
    "log_age": -1.0 + 0.1 * _I,
    "dust2": 0.125 * (_I % 8),
    "log_mass": np.zeros(NMOD),
}
LIB_DERIVED = {
    "log_sfr": -10.0 + 0.03125 * _I,
    "log_sfr10": -10.25 + 0.03125 * _I,
    "log_sfr100": -10.5 + 0.03125 * _I,
    "log_mw_age": -1.25 + 0.09 * _I,
    "log_mass_living": -0.125 - 0.001 * _I,
    "log_mass_formed": 0.25 + 0.002 * _I,
    "log_lbol": 0.5 + 0.0078125 * _I,
}
LIB_RANGES = {"logzsol": (-2.0, 0.2), "log_tau": (-1.0, 1.5), "log_age": (-1.0, 1.14),
              "dust2": (0.0, 1.0)}
LIB_CONFIG = {"sfh_form": 1, "dust_law": 1, "duste_switch": False, "add_neb_emission": True,
              "add_agn": False, "add_igm_absorption": True, "igm_type": 1, "H0": 70.0,
              "Om0": 0.3, "cosmo": None}
LIB_SEED = 7
LIB_NWAVE = 12
LIB_WAVE = np.geomspace(1000.0, 30000.0, LIB_NWAVE)
#: Rest-frame spectra (nmodels, nwave), L☉ Å⁻¹ per M☉; both layouts store them (ours as
#: float32, the original's as float64); readers return float32.
LIB_SPECTRA = (1e-4 * (1.0 + _I[:, None]) * (LIB_WAVE[None, :] / 5000.0) ** -1.5
               * np.exp(-0.1 * np.arange(LIB_NWAVE))[None, :])

#: The original's /mod library (spec §3.5): the same models, parameters in its order.
ORIG_LIB_ALL = (*LIB_FREE, "log_mass", "log_sfr", "log_mw_age")
ORIG_LIB_ATTRS = {"imf_type": 1, "sfh_form": 1, "dust_law": 1, "duste_switch": 0,
                  "add_neb_emission": 0, "add_agn": 0, "free_gas_logz": 0,
                  "smooth_velocity": 1, "sigma_smooth": 0.0, "smooth_lsf": 0}

# --------------------------------------------------------------------------- fit results
FIT_NAMES = ("logzsol", "log_tau", "log_age", "dust2", "log_mass", "log_sfr", "log_mw_age")
_K = np.arange(len(FIT_NAMES), dtype=np.float64)
FIT_MEAN = np.array([-0.5, 0.25, 0.5, 0.375, 9.5, -0.25, 0.3125])
FIT_STD = 0.0625 + 0.015625 * _K
FIT_P16 = FIT_MEAN - 0.125
FIT_P50 = FIT_MEAN + 0.015625
FIT_P84 = FIT_MEAN + 0.125
FIT_BEST = FIT_MEAN + 0.03125
OBS_FLUX = np.array([1.5e-16, 2.5e-16, 3.25e-16])
OBS_FLUX_ERR = np.array([1.5e-17, 2.0e-17, 3.0e-17])
BFIT_PHOTO = np.array([1.4e-16, 2.6e-16, 3.2e-16])
BFIT_WAVE = np.linspace(3000.0, 9000.0, 13)
BFIT_SPEC = 1e-16 * (1.0 + BFIT_WAVE / 9000.0)
FIT_CONFIG_RDSPS = {"method": "rdsps", "likelihood": "gauss", "dof": 3.0, "perc_chi2": 90.0,
                    "cosmo": "flat_LCDM", "H0": 70.0, "Om0": 0.3,
                    "model": {"sfh_form": 1, "dust_law": 1, "duste_switch": False,
                              "add_neb_emission": True, "add_agn": False,
                              "add_igm_absorption": True, "igm_type": 1},
                    "priors": {"dust2": [0.0, 1.0]}}
FIT_DIAG_RDSPS = {"library_ess": 12.5, "history": [3.0, 8.0, 12.5],
                  "box": {"dust2": [0.0, 1.0]}, "warnings": []}

#: An MCMC fit with a free redshift, posterior samples, SED percentiles and a spectrum.
MC_NAMES = ("log_age", "dust2", "log_mass", "z", "log_sfr", "log_mw_age")
_M = np.arange(len(MC_NAMES), dtype=np.float64)
MC_MEAN = np.array([0.5, 0.25, 9.25, 0.0625, -0.5, 0.375])
MC_STD = 0.03125 + 0.0078125 * _M
MC_P16, MC_P50, MC_P84 = MC_MEAN - 0.0625, MC_MEAN + 0.0078125, MC_MEAN + 0.0625
MC_BEST = MC_MEAN - 0.015625
MC_SAMPLES = MC_MEAN[None, :] + 0.015625 * (np.arange(12)[:, None] - 5.5) * (1.0 + _M[None, :])
MC_ZGRID = np.array([0.04, 0.05, 0.06, 0.07, 0.08])
MC_ZPOST = np.array([0.125, 0.25, 0.375, 0.1875, 0.0625])
MC_PHOTO_PCT = np.vstack([BFIT_PHOTO * 0.9, BFIT_PHOTO, BFIT_PHOTO * 1.1])
MC_SED_WAVE = np.linspace(3000.0, 9000.0, 10)
MC_SED_PCT = {comp: np.vstack([s * 0.9, s, s * 1.1])
              for comp, s in (("total", 1e-16 * (1 + MC_SED_WAVE / 9000.0)),
                              ("stellar", 0.8e-16 * (1 + MC_SED_WAVE / 9000.0)),
                              ("nebular", 0.2e-16 * np.ones(10)))}
MC_SPECTRUM = {"wave": np.linspace(4000.0, 4700.0, 8),
               "flux": 1e-16 * (1.0 + 0.01 * np.arange(8)),
               "flux_err": np.full(8, 1e-18),
               "used": np.array([True, True, False, True, True, True, False, True]),
               "model": 1e-16 * (1.0 + 0.011 * np.arange(8)),
               "factor": 1.0 + 0.001 * np.arange(8),
               "factor_mean": 1.0 + 0.0011 * np.arange(8),
               "factor_std": np.full(8, 0.002)}
FIT_CONFIG_MCMC = {"method": "mcmc", "likelihood": "gauss", "cosmo": "flat_LCDM",
                   "model": {"sfh_form": 1, "dust_law": 1, "duste_switch": False,
                             "add_neb_emission": True, "add_agn": False,
                             "add_igm_absorption": True, "igm_type": 1}}
FIT_DIAG_MCMC = {"acceptance": 0.375, "autocorr": [10.5, 12.25, 9.0, 11.0],
                 "sampled": ["log_age", "dust2", "log_mass", "z"],
                 "fixed": {"logzsol": 0.0}, "nwalkers": 4, "nsteps": 12,
                 "nsteps_cut": 3, "thin": 1, "seed": 3, "warnings": ["chain too short"]}

#: The original's RDSPS fit of bin 1 (spec §2.3): 20 sampled models.
ORIG_NS = 20
ORIG_SAMPLER = {name: LIB_PARAMS[name] if name in LIB_PARAMS else LIB_DERIVED[name]
                for name in ORIG_LIB_ALL}
ORIG_SAMPLER["log_mass"] = 9.0 + 0.03125 * _I  # + log10(normalisation)
ORIG_SAMPLER_CHI2 = 2.0 + (_I - 7.0) ** 2 / 8.0
ORIG_SAMPLER_LNPROB = -0.5 * ORIG_SAMPLER_CHI2 - 3.25
ORIG_BEST_INDEX = 7
ORIG_RDSPS_REDCHI2 = 0.6875
#: Per-bin statistics of the original fits of bins 1 and 2 (bin 3 unfitted): row k = bin k+1.
ORIG_BIN_MEAN = np.array([[-0.3, 0.25, 0.5, 0.375, 9.5, -0.25, 0.3125],
                          [-0.6, 0.125, 0.75, 0.5, 9.25, -0.5, 0.5]])
ORIG_BIN_STD = np.array([0.0625 + 0.015625 * _K, 0.125 + 0.015625 * _K])
#: The original's MCMC fit (spec §2.6): free parameters, then the derived ones.
ORIG_MC_FREE = ("logzsol", "log_tau", "log_age", "dust2", "log_mass")
ORIG_MC_ALL = (*ORIG_MC_FREE, "log_sfr", "log_mw_age")
ORIG_MC_NS = 12
ORIG_MC_SAMPLES = (ORIG_BIN_MEAN[0][None, :]
                   + 0.03125 * (np.arange(ORIG_MC_NS)[:, None] - 5.5) / 5.5)
ORIG_MC_P = {"p16": ORIG_BIN_MEAN - 0.125, "p50": ORIG_BIN_MEAN + 0.0078125,
             "p84": ORIG_BIN_MEAN + 0.125}  # (bins 1, 2) × ORIG_MC_ALL
ORIG_MC_COMPONENTS = ("tot", "stellar", "nebe", "nebe_cont")

# --------------------------------------------------------------------------- property maps
#: Our property maps: per-bin values (rows: bins 1, 2, 3; bin 3 = leftover, not fitted).
MAPS_BIN_VALUES = {
    "bin-log_mass-mean": (9.5, 9.25, np.nan),
    "bin-log_mass-mean_err": (0.0625, 0.125, np.nan),
    "bin-log_mass-p16": (9.375, 9.125, np.nan),
    "bin-log_mass-p50": (9.5, 9.25, np.nan),
    "bin-log_mass-p84": (9.625, 9.375, np.nan),
    "bin-dust2-p50": (0.375, 0.5, np.nan),
    "bin-log_sigma_mass-p50": (8.25, 7.75, np.nan),
    "bin-chi2-best": (2.5, 3.25, np.nan),
    "bin-n_used-best": (20.0, 18.0, np.nan),
}
MAPS_PIX_LOG_MASS_P50 = np.where(BIN_MAP == 1, 8.875 + 0.03125 * _X,
                                 np.where(BIN_MAP == 2, 8.5 + 0.0625 * _Y, np.nan))
MAPS_PIX_LOG_SIGMA_MASS_P50 = MAPS_PIX_LOG_MASS_P50 - 0.5
#: BUNIT of each of our maps (quantity_unit of pixedfit.analysis.maps).
MAPS_BUNIT = {"bin-log_mass-mean": "dex(solMass)", "bin-log_mass-mean_err": "dex",
              "bin-log_mass-p16": "dex(solMass)", "bin-log_mass-p50": "dex(solMass)",
              "bin-log_mass-p84": "dex(solMass)", "bin-dust2-p50": "",
              "bin-log_sigma_mass-p50": "dex(solMass / kpc2)", "bin-chi2-best": "",
              "bin-n_used-best": "", "pix-log_mass-p50": "dex(solMass)",
              "pix-log_sigma_mass-p50": "dex(solMass / kpc2)"}
#: Quality flags: bin 3 is the leftover bin (1) and was not fitted (8); bin 2 did not
#: converge (2).
MAPS_FLAGS = np.select([BIN_MAP == 3, BIN_MAP == 2], [9, 2], 0).astype(np.int16)
MAPS_KPCPIX = 0.4125
MAPS_REFBANDS = {"log_mass": "sdss_i", "log_sfr": "sdss_g"}


def maps_expected() -> dict[str, np.ndarray]:
    """Our property maps, name → (y, x) (NaN outside the bins and on bin 3)."""
    out = {name: paint(np.array(v)[:, None])[0] for name, v in MAPS_BIN_VALUES.items()}
    out["pix-log_mass-p50"] = MAPS_PIX_LOG_MASS_P50
    out["pix-log_sigma_mass-p50"] = MAPS_PIX_LOG_SIGMA_MASS_P50
    return out


def orig_pixel_maps(stat_values: dict[str, np.ndarray], params: tuple[str, ...],
                    stats: tuple[str, ...], rdsps: bool) -> dict[str, np.ndarray]:
    """The original's ``pix-<p>-<stat>`` maps (spec §2.8) of log_mass (reference band: the
    last) and log_sfr (the first), in parameter order, from per-bin statistics
    ``stat_values[stat]`` (3 bins × params; −99 for the unfitted bin 3): pixel value =
    log10(10^bin × f_pix / f_bin) in the reference band; for RDSPS ``mean_err`` the
    original's formula bin·sqrt(bin²/err² + (F/σF)² + (f/σf)²) with bin = 10^mean and
    err = 10^mean_err. 0 outside the bins."""
    out = {}
    fb = paint(BIN_FLUX, fill=1.0) * UNIT
    eb = paint(BIN_FLUX_ERR, fill=1.0) * UNIT
    fp, ep = PIX_FLUX * UNIT, PIX_ERR * UNIT
    inbin = BIN_MAP > 0
    for p in params:
        if p not in ("log_mass", "log_sfr", "log_dustmass"):
            continue
        band = 0 if p == "log_sfr" else NB - 1
        j = params.index(p)
        for stat in stats:
            if rdsps and stat == "mean_err":
                val = 10.0 ** paint(stat_values["mean"][:, j:j + 1], fill=0.0)[0]
                err = 10.0 ** paint(stat_values["mean_err"][:, j:j + 1], fill=0.0)[0]
                pix = val * np.sqrt(val**2 / err**2 + fb[band] ** 2 / eb[band] ** 2
                                    + fp[band] ** 2 / ep[band] ** 2)
            else:
                val = 10.0 ** paint(stat_values[stat][:, j:j + 1], fill=0.0)[0]
                pix = val * fp[band] / fb[band]
            out[f"pix-{p}-{stat}"] = np.where(inbin, np.log10(pix), 0.0)
    return out


# --------------------------------------------------------------------------- other files
#: Noise correlation ρ (3 × 3, asymmetric so that a transposition shows) and pixel variance
#: factor per band, as the image stage writes them next to the flux map.
NOISE_RHO = {"sdss_g": np.array([[0.0, 0.125, 0.0625], [0.25, 1.0, 0.5], [0.03125, 0.1875, 0.0]]),
             "sdss_r": np.array([[0.0625, 0.0, 0.0], [0.375, 1.0, 0.125], [0.0, 0.25, 0.5]])}
NOISE_FACTOR = {"sdss_g": 1.25, "sdss_r": 1.5}
#: Spectral-noise groups (per channel) and ρ per group.
SPECNOISE_GROUP = (np.arange(NWAVE) // 20).astype(np.int64)
SPECNOISE_RHO = np.stack([np.array([[0.0, 0.125, 0.0], [0.25, 1.0, 0.375],
                                    [0.0, 0.0625, 0.0]]) + 0.03125 * g * np.eye(3)
                          for g in range(3)])
SPECNOISE_RHO[:, 1, 1] = 1.0
#: Spectral correction of our spectrophotometric cube.
CORR_FACTOR = inside(np.broadcast_to(1.0 + 0.001 * _W, (NWAVE, NY, NX)), SPEC_REGION)
CORR_MODEL = inside(0.875 * PIX_SPEC, SPEC_REGION)

#: A tiny SSP grid (2 metallicities, 3 ages, 10 wavelengths) with all companion groups.
SSP_WAVE = np.geomspace(900.0, 50000.0, 10)
SSP_AGE = np.array([0.0, 0.01, 1.0])
SSP_ZMET = np.array([0.004, 0.02])
SSP_SPEC = (np.arange(2)[:, None, None] + 1.0) * (np.arange(3)[None, :, None] + 0.5) \
    * (SSP_WAVE[None, None, :] / 1e4) ** -2.0
SSP_MASS_LIVING = np.array([[1.0, 0.95, 0.6], [1.0, 0.94, 0.58]])
SSP_MASS_REMNANT = np.array([[0.0, 0.01, 0.15], [0.0, 0.012, 0.16]])
SSP_ZSUN = 0.02
SSP_IMF = "kroupa01"
SSP_SOURCE = "golden test grid (tests/data/golden/make_golden.py)"
SSP_EXTRA_ATTRS = {"builder": "make_golden", "version_note": "schema 1"}
NEB_LOGU = np.array([-3.0, -2.0])
NEB_AGE_EDGES = np.array([0.0, 0.005, 0.02])
NEB_LINE_WAVE = np.array([4862.7, 5008.2, 6564.6])
NEB_LINE_NAME = ["H  1 4861.32A", "O  3 5006.84A", "H  1 6562.80A"]
NEB_LINE_LUM = (np.arange(2 * 2 * 2 * 3, dtype=np.float64).reshape(2, 2, 2, 3) + 1.0) * 1e-3
NEB_CONT = (np.arange(2 * 2 * 2 * 10, dtype=np.float64).reshape(2, 2, 2, 10) + 1.0) * 1e-6
DUST_QPAH = np.array([0.47, 2.5])
DUST_UMIN = np.array([0.1, 1.0])
DUST_WAVE = np.array([1e4, 1e5, 1e6, 1e7])
DUST_DELTA = (np.arange(16, dtype=np.float64).reshape(2, 2, 4) + 1.0) * 1e-30
DUST_POWERLAW = DUST_DELTA * 0.5
DUST_TO_H = np.array([0.01, 0.0125])
AGN_TAU = np.array([5.0, 50.0])
AGN_WAVE = np.array([1e3, 1e4, 1e5, 1e6])
AGN_FNU = np.array([[1.0, 2.0, 3.0, 0.5], [0.5, 1.5, 4.0, 1.0]])

#: An emcee chain (group "mcmc", as run_mcmc keeps it): nsteps × nwalkers × ndim positions.
CHAIN_NSTEPS, CHAIN_NWALKERS, CHAIN_NDIM = 6, 4, 2
CHAIN = (np.arange(CHAIN_NSTEPS)[:, None, None] * 0.125
         + np.arange(CHAIN_NWALKERS)[None, :, None] * 0.5
         + np.arange(CHAIN_NDIM)[None, None, :] * 10.0)
CHAIN_LNPROB = -0.5 * np.sum(CHAIN**2, axis=2)
CHAIN_ACCEPTED = np.array([3, 4, 5, 6])

#: User filter registry: two added curves, a renamed and a removed built-in filter.
USER_BOX = ("golden_box", np.array([5000.0, 5000.5, 5999.5, 6000.0]),
            np.array([0.0, 1.0, 1.0, 0.0]))
USER_TRI = ("golden_tri", np.array([7000.0, 7500.0, 8000.0]), np.array([0.0, 0.5, 0.0]), 7555.0)
RENAMED = ("sdss_z", "golden_z")
REMOVED = "sdss_u"

#: Result store: one stored fit (bin1) and the record of what made it.
STORE_RUN = {"method": "rdsps", "filters": list(FILTERS), "library": "golden-library",
             "priors": {"dust2": [0.0, 1.0]}}

#: A pipeline stage record (images stage; its output is the golden flux map).
RECORD = {"name": "images", "fingerprint": "0" * 63 + "1",
          "outputs": ["images/fluxmap.fits"], "seconds": 1.5,
          "finished": "2026-01-02 03:04:05 UTC", "cached": False,
          "info": {"bands": list(FILTERS), "region_pixels": 16}}
