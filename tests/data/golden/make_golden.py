"""Write the golden files of this folder (see README.md here). Run it once per new schema
version, from the repository root::

    PYTHONPATH=src python tests/data/golden/make_golden.py

The tests never run it. Files of earlier versions are never rewritten: a new schema version
adds files (``*_v2.*``) beside the old ones, so that the tests keep reading what users
already have. ``--force`` rewrites existing files of this version (only while a version is
being introduced).

Two kinds of files:

* **ours** (``*_v<N>.*``): written by pixedfit's own writers from the tiny deterministic
  inputs of ``tests/_golden_inputs.py``;
* **the original piXedfit's** (``orig_*``): written directly with astropy / h5py following
  ``shared/reference/pixedfit_original_spec.md`` (spec of piXedfit at 3957fb4), never with
  pixedfit's writers, so that a misread spec cannot pass on both sides. Each writer below
  names the spec section it follows and says what it assumes where the spec is silent.

FITS and HDF5 files are stored gzip-compressed (``.fits.gz``, ``.h5.gz``; deterministic: no
time stamp, no name): a FITS HDU takes at least two 2880-byte blocks and HDF5 keeps
per-dataset metadata and free space, which would make these files 30–170 kB each; the tests
decompress them and read the very bytes the writers made.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import hashlib
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import h5py
import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from astropy.wcs import WCS

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/, for _golden_inputs

import _golden_inputs as g
from pixedfit.cubes import BinnedCube, FluxCube, SpecPhotCube

OUT = g.GOLDEN_DIR
VERSION = 1


# =========================================================================== helpers
class Writer:
    """Writes into a temporary folder, then stores each file in OUT (FITS gzip-compressed)."""

    def __init__(self, tmp: Path, force: bool):
        self.tmp = tmp
        self.force = force
        self.written: list[str] = []

    def path(self, name: str) -> Path:
        return self.tmp / name

    def store(self, name: str, target: str | None = None) -> None:
        src = self.tmp / name
        target = target or name
        if target.endswith((".fits", ".h5")):
            target += ".gz"
        dest = OUT / target
        if dest.exists() and not self.force:
            raise FileExistsError(f"{dest} exists: golden files are frozen (--force only "
                                  "while introducing a schema version)")
        dest.parent.mkdir(parents=True, exist_ok=True)
        data = src.read_bytes()
        if target.endswith(".gz"):
            data = gzip.compress(data, compresslevel=9, mtime=0)
        dest.write_bytes(data)
        self.written.append(target)


def _orig_header(cards: list[tuple[str, object]]) -> fits.Header:
    """A header from (key, value) pairs as the original sets them (``hdr[key] = value``;
    astropy upper-cases the keys and makes keys longer than 8 characters HIERARCH cards)."""
    hdr = fits.Header()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VerifyWarning)
        for key, value in cards:
            hdr[key] = value
    return hdr


def _writeto(hdul: fits.HDUList, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VerifyWarning)
        hdul.writeto(path, overwrite=True)


# =========================================================================== ours
def ours_cubes(w: Writer) -> None:
    hdr = fits.Header()
    for key, value in g.FLUXMAP_EXTRA.items():
        hdr[key] = value
    cube = FluxCube(g.inside(g.PIX_FLUX, g.REGION), g.inside(g.PIX_ERR, g.REGION), g.FILTERS,
                    region=g.REGION, unit=g.UNIT, wcs=g.wcs_header(), z=g.Z,
                    pixel_scale=g.PIXSIZE, gal_ebv=g.GALEBV, header=hdr, stamp=g.STAMP)
    cube.write(w.path(f"fluxmap_v{VERSION}.fits"))
    w.store(f"fluxmap_v{VERSION}.fits")
    sp = SpecPhotCube(cube, g.WAVE, g.SPEC_OURS, g.SPEC_ERR_OURS, spec_region=g.SPEC_REGION,
                      ifs_survey=g.IFS_SURVEY)
    sp.write(w.path(f"specphot_v{VERSION}.fits"))
    w.store(f"specphot_v{VERSION}.fits")

    from pixedfit.ifs.calibration import write_spectral_correction

    write_spectral_correction(w.path(f"speccorr_v{VERSION}.fits"), sp, g.CORR_FACTOR,
                              g.CORR_MODEL)
    w.store(f"speccorr_v{VERSION}.fits")

    extra = fits.Header()
    for key, value in g.BINNED_EXTRA.items():
        extra[key] = value
    common = dict(unit=g.UNIT, region=g.REGION, leftover=g.LEFTOVER, seed=g.SEEDS,
                  pixel_chi2=g.PIXEL_CHI2, params=g.BIN_PARAMS, z=g.Z, pixel_scale=g.PIXSIZE,
                  gal_ebv=g.GALEBV, wcs=WCS(g.wcs_header()), header=extra,
                  calib_err=g.CALIB_ERR)
    BinnedCube(g.BIN_MAP, g.BIN_FLUX, g.BIN_FLUX_ERR, g.FILTERS, **common).write(
        w.path(f"binned_phot_v{VERSION}.fits"))
    w.store(f"binned_phot_v{VERSION}.fits")
    BinnedCube(g.BIN_MAP, g.BIN_FLUX, g.BIN_FLUX_ERR, g.FILTERS, **common, wave=g.WAVE,
               bin_spec_flux=g.BIN_SPEC_OURS, bin_spec_err=g.BIN_SPEC_ERR_OURS,
               bin_has_spec=g.BIN_HAS_SPEC, spec_region=g.SPEC_REGION).write(
        w.path(f"binned_specphot_v{VERSION}.fits"))
    w.store(f"binned_specphot_v{VERSION}.fits")


def ours_noise(w: Writer) -> None:
    """The noise-correlation file of the image stage (``<fluxmap>_noise.fits``) has no writer
    of its own: ImageSet.flux_map writes it. Run a tiny ImageSet (two 9 × 11 SDSS images,
    no PSF matching, no reprojection), set each band's noise (ρ, pixel factor) to the golden
    values, and let flux_map write the file (a 5 × 5 stamp: ImageSet's smallest; the
    noise file does not depend on the grid)."""
    from pixedfit.images.align import ChainNoise
    from pixedfit.images.process import ImageSet

    hdr = g.wcs_header()
    hdr["CRPIX1"], hdr["CRPIX2"] = 6.0, 5.0
    yy, xx = np.mgrid[0:9, 0:11]
    sci = {f: (50.0 + 2.0 * yy + xx + 10.0 * i, hdr) for i, f in enumerate(g.NOISE_RHO)}
    var = {f: np.full((9, 11), 0.25) for f in g.NOISE_RHO}
    folder = w.path("imageset")
    iset = ImageSet(list(g.NOISE_RHO), sci, g.RA, g.DEC, folder, var_img=var,
                    stamp_size=(5, 5), psf_match=False, reproject=False,
                    noise_realisations=0)
    iset.process(write=False)
    for f, rho in g.NOISE_RHO.items():
        iset.stamps[f] = dataclasses.replace(iset.stamps[f],
                                             noise=ChainNoise(g.NOISE_FACTOR[f], rho))
    iset.flux_map(region=np.ones((5, 5), bool), gal_ebv=0.0, dustmap=None, name_out="fluxmap.fits")
    shutil.copyfile(folder / "fluxmap_noise.fits", w.path(f"fluxmap_noise_v{VERSION}.fits"))
    w.store(f"fluxmap_noise_v{VERSION}.fits")


def ours_specnoise(w: Writer) -> None:
    from pixedfit.ifs.spatial import SpectralNoise

    SpectralNoise(g.SPECNOISE_GROUP, g.SPECNOISE_RHO).write(
        w.path(f"specnoise_v{VERSION}.fits"))
    w.store(f"specnoise_v{VERSION}.fits")


def ours_library(w: Writer) -> None:
    from pixedfit.library import ModelLibrary

    lib = ModelLibrary(params=dict(g.LIB_PARAMS), derived=dict(g.LIB_DERIVED),
                       config=dict(g.LIB_CONFIG), ranges=dict(g.LIB_RANGES), seed=g.LIB_SEED,
                       wave=g.LIB_WAVE.copy(), spectra=g.LIB_SPECTRA.astype(np.float32))
    lib.write(w.path(f"library_v{VERSION}.h5"))
    w.store(f"library_v{VERSION}.h5")
    lib.write(w.path(f"library_nospec_v{VERSION}.h5"), spectra=False)
    w.store(f"library_nospec_v{VERSION}.h5")


def rdsps_result():
    from pixedfit.fitting.results import FitResult

    return FitResult(method="rdsps", names=g.FIT_NAMES, mean=g.FIT_MEAN, std=g.FIT_STD,
                     p16=g.FIT_P16, p50=g.FIT_P50, p84=g.FIT_P84, best=g.FIT_BEST,
                     filters=g.FILTERS, obs_flux=g.OBS_FLUX, obs_flux_err=g.OBS_FLUX_ERR,
                     bfit_photo=g.BFIT_PHOTO, z=g.Z, chi2_min=2.5, ln_evidence=-12.25,
                     n_used=20, n_bands_used=3, config=g.FIT_CONFIG_RDSPS,
                     bfit_wave=g.BFIT_WAVE, bfit_spec=g.BFIT_SPEC,
                     diagnostics=g.FIT_DIAG_RDSPS, ess=12.5, n_model_evaluations=1000,
                     rounds=3, converged=True)


def ours_fit_results(w: Writer) -> None:
    from pixedfit.fitting.results import FitResult

    rdsps_result().write(w.path(f"fitresult_rdsps_v{VERSION}.h5"))
    w.store(f"fitresult_rdsps_v{VERSION}.h5")
    FitResult(method="mcmc", names=g.MC_NAMES, mean=g.MC_MEAN, std=g.MC_STD, p16=g.MC_P16,
              p50=g.MC_P50, p84=g.MC_P84, best=g.MC_BEST, filters=g.FILTERS,
              obs_flux=g.OBS_FLUX, obs_flux_err=g.OBS_FLUX_ERR, bfit_photo=g.BFIT_PHOTO,
              z=None, chi2_min=3.75, ln_evidence=float("nan"), n_used=12, n_bands_used=3,
              config=g.FIT_CONFIG_MCMC, bfit_wave=g.BFIT_WAVE, bfit_spec=g.BFIT_SPEC,
              z_grid=g.MC_ZGRID, z_posterior=g.MC_ZPOST, samples=g.MC_SAMPLES,
              photo_pct=g.MC_PHOTO_PCT, sed_wave=g.MC_SED_WAVE, sed_pct=g.MC_SED_PCT,
              spectrum=g.MC_SPECTRUM, diagnostics=g.FIT_DIAG_MCMC, ess=48.0,
              n_model_evaluations=4800, rounds=2, converged=False).write(
        w.path(f"fitresult_mcmc_v{VERSION}.h5"))
    w.store(f"fitresult_mcmc_v{VERSION}.h5")


def ours_store(w: Writer) -> None:
    """A result store: its record (store.json) and one result (bin1.h5)."""
    from pixedfit.fitting.results import ResultStore, input_digest

    folder = w.path("store")
    store = ResultStore(folder)
    with store.session(g.STORE_RUN, {"bin1": input_digest(g.OBS_FLUX, g.OBS_FLUX_ERR)}):
        store.save("bin1", rdsps_result())
    for name in ("store.json", "bin1.h5"):
        shutil.copyfile(folder / name, w.path(name))
        w.store(name, f"resultstore_v{VERSION}/{name}")


def ours_maps(w: Writer) -> None:
    from pixedfit.analysis.maps import PropertyMaps

    PropertyMaps(g.maps_expected(), g.REGION, g.BIN_MAP, z=g.Z, method="mcmc",
                 kpc_per_pixel=g.MAPS_KPCPIX, pixel_scale=g.PIXSIZE, filters=g.FILTERS,
                 refbands=g.MAPS_REFBANDS, flags=g.MAPS_FLAGS).write(
        w.path(f"propmaps_v{VERSION}.fits"))
    w.store(f"propmaps_v{VERSION}.fits")


def ours_grid(w: Writer) -> None:
    from pixedfit.sps.grids import (
        AGNTemplates,
        DustEmissionGrid,
        NebularGrid,
        SSPGrid,
        write_grid,
    )

    grid = SSPGrid(
        wave=g.SSP_WAVE, age=g.SSP_AGE, zmet=g.SSP_ZMET, ssp=g.SSP_SPEC.astype(np.float32),
        mass_living=g.SSP_MASS_LIVING, mass_remnant=g.SSP_MASS_REMNANT, zsun=g.SSP_ZSUN,
        imf=g.SSP_IMF, source=g.SSP_SOURCE, extra_attrs=dict(g.SSP_EXTRA_ATTRS),
        nebular=NebularGrid(g.NEB_LOGU, g.NEB_AGE_EDGES, g.NEB_LINE_WAVE,
                            list(g.NEB_LINE_NAME), g.NEB_LINE_LUM,
                            g.NEB_CONT.astype(np.float32), source="golden nebular"),
        dust_emission=DustEmissionGrid(g.DUST_QPAH, g.DUST_UMIN, g.DUST_WAVE, g.DUST_DELTA,
                                       g.DUST_POWERLAW, g.DUST_TO_H, source="golden DL07"),
        agn=AGNTemplates(g.AGN_TAU, g.AGN_WAVE, g.AGN_FNU, source="golden torus"))
    write_grid(grid, w.path(f"sspgrid_v{VERSION}.h5"))
    w.store(f"sspgrid_v{VERSION}.h5")


def ours_chain(w: Writer) -> None:
    """An MCMC chain file: emcee's HDF5 backend under the group run_mcmc uses ("mcmc"),
    filled step by step with fixed positions (instead of sampled ones, so that the tests
    know them), then compacted as run_mcmc leaves a finished chain."""
    import emcee

    from pixedfit.fitting.mcmc import compact_chain_file

    path = w.path(f"chain_v{VERSION}.h5")
    backend = emcee.backends.HDFBackend(str(path), name="mcmc")
    backend.reset(g.CHAIN_NWALKERS, g.CHAIN_NDIM)
    backend.grow(g.CHAIN_NSTEPS, None)
    state = np.random.RandomState(3).get_state()
    for i in range(g.CHAIN_NSTEPS):
        accepted = (i < g.CHAIN_ACCEPTED).astype(int)
        backend.save_step(emcee.State(g.CHAIN[i], log_prob=g.CHAIN_LNPROB[i],
                                      random_state=state), accepted)
    compact_chain_file(path)
    w.store(path.name)


def ours_filters(w: Writer) -> None:
    from pixedfit.filters import add_filter, remove_filter, rename_filter

    folder = w.path("userdata")
    add_filter(*g.USER_BOX, data_dir=folder)
    name, wave, trans, cwave = g.USER_TRI
    add_filter(name, wave, trans, cwave=cwave, data_dir=folder)
    rename_filter(*g.RENAMED, data_dir=folder)
    remove_filter(g.REMOVED, data_dir=folder)
    shutil.copyfile(folder / "filters.json", w.path(f"filters_registry_v{VERSION}.json"))
    w.store(f"filters_registry_v{VERSION}.json")


def ours_record(w: Writer) -> None:
    """A stage record of a pipeline run: the images stage whose output is the golden flux
    map (the digest is that of the decompressed fluxmap_v<N>.fits)."""
    from pixedfit.pipeline import Pipeline, StageRecord

    run = w.path("run")
    fluxmap = w.path(f"fluxmap_v{VERSION}.fits")
    pipe = Pipeline(config={"run": {"output_dir": str(run)},
                            "images": {"fluxmap": str(fluxmap)}})
    digest = hashlib.sha256(fluxmap.read_bytes()).hexdigest()
    pipe._write_record(StageRecord(**g.RECORD, digests={"images/fluxmap.fits": digest}))
    shutil.copyfile(run / ".pixedfit" / "images.json",
                    w.path(f"pipeline_record_v{VERSION}.json"))
    w.store(f"pipeline_record_v{VERSION}.json")


# =========================================================================== the original's
def _orig_fluxmap_cards() -> list[tuple[str, object]]:
    """Primary-header cards of flux_map, in its order (spec §5.1)."""
    cards: list[tuple[str, object]] = [
        ("nfilters", g.NB), ("RA", g.RA), ("DEC", g.DEC), ("z", g.Z), ("unit", g.UNIT),
        ("bunit", "erg/s/cm^2/A"), ("GalEBV", g.GALEBV), ("struct", "(band,y,x)"),
        ("fsamp", "sdss_r"), ("pixsize", g.PIXSIZE), ("fpsfmtch", "sdss_g"),
        ("psffwhm", g.PSFFWHM), ("specphot", 0)]
    cards += [(f"fil{i}", f) for i, f in enumerate(g.FILTERS)]
    return cards


def _orig_flux_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flux, error (−99/unit outside the region, spec §5.1 and weakness 21) and region
    (float 0/1, as galaxy_region returns it: the spec does not give its type)."""
    flux = np.where(g.REGION, g.PIX_FLUX, g.ORIG_OUTSIDE)
    err = np.where(g.REGION, g.PIX_ERR, g.ORIG_OUTSIDE)  # assumed: errors get −99 too
    return flux, err, g.REGION.astype(np.float64)


def _stamp_hdu() -> fits.ImageHDU:
    """STAMP_IMAGE: the first filter's stamp with its WCS header (spec §5.1)."""
    return fits.ImageHDU(data=g.STAMP, header=g.wcs_header(), name="stamp_image")


def orig_fluxmap(w: Writer) -> None:
    """Spec §5.1: header-only PRIMARY (cards above), FLUX, FLUX_ERR, GALAXY_REGION,
    STAMP_IMAGE."""
    flux, err, region = _orig_flux_arrays()
    hdul = fits.HDUList([fits.PrimaryHDU(header=_orig_header(_orig_fluxmap_cards())),
                         fits.ImageHDU(flux, name="flux"), fits.ImageHDU(err, name="flux_err"),
                         fits.ImageHDU(region, name="galaxy_region"), _stamp_hdu()])
    _writeto(hdul, w.path("orig_fluxmap.fits"))
    w.store("orig_fluxmap.fits")


def orig_fluxmap_fluxprimary(w: Writer) -> None:
    """A variant the spec does not describe for flux maps but describes for the
    spectrophotometric cube (§6.1): versions of flux_map in the original's history build an
    empty HDUList and append ``ImageHDU(map_flux, header=hdr, name='flux')`` first, which
    astropy turns into the primary HDU — FLUX is then HDU 0 (EXTNAME FLUX) with the header
    cards, and no header-only primary exists."""
    flux, err, region = _orig_flux_arrays()
    hdul = fits.HDUList()
    hdul.append(fits.ImageHDU(data=flux, header=_orig_header(_orig_fluxmap_cards()),
                              name="flux"))
    hdul.append(fits.ImageHDU(err, name="flux_err"))
    hdul.append(fits.ImageHDU(region, name="galaxy_region"))
    hdul.append(_stamp_hdu())
    _writeto(hdul, w.path("orig_fluxmap_fluxprimary.fits"))
    w.store("orig_fluxmap_fluxprimary.fits")


def _orig_specphot_cards() -> list[tuple[str, object]]:
    """Header of match_imgifs_spatial's output (spec §6.1), in its order."""
    cards: list[tuple[str, object]] = [
        ("nfilters", g.NB), ("z", g.Z), ("RA", g.RA), ("DEC", g.DEC), ("GalEBV", g.GALEBV),
        ("unit", g.UNIT), ("bunit", "erg/s/cm^2/A"), ("structph", "(band,y,x)"),
        ("structsp", "(wavelength,y,x)"), ("fsamp", "sdss_r"), ("pixsize", g.PIXSIZE),
        ("fpsfmtch", "sdss_g"), ("psffwhm", g.PSFFWHM), ("specphot", 1),
        ("ifssurve", g.IFS_SURVEY)]
    cards += [(f"fil{i}", f) for i, f in enumerate(g.FILTERS)]
    return cards


def _orig_specphot_arrays():
    """Photometry: the full flux map kept (−99/unit outside the region; the IFS unit 1e-17
    equals the flux map's, so no rescaling). Spectra: 0 outside SPEC_REGION (assumed: the
    spec does not say what the reprojection leaves outside the IFS footprint)."""
    flux, err, region = _orig_flux_arrays()
    spec = np.where(g.SPEC_REGION, g.PIX_SPEC, 0.0)
    serr = np.where(g.SPEC_REGION, g.PIX_SPEC_ERR, 0.0)
    return flux, err, region, spec, serr


def orig_specphot(w: Writer) -> None:
    """Spec §6.1: PHOTO_FLUX appended first as an ImageHDU carrying the header (astropy
    makes it the primary HDU, data included), PHOTO_FLUXERR, WAVE, SPEC_FLUX (wave, y, x),
    SPEC_FLUXERR, SPEC_REGION, PHOTO_REGION, STAMP_IMAGE."""
    flux, err, region, spec, serr = _orig_specphot_arrays()
    hdul = fits.HDUList()
    hdul.append(fits.ImageHDU(data=flux, header=_orig_header(_orig_specphot_cards()),
                              name="photo_flux"))
    for data, name in ((err, "photo_fluxerr"), (g.WAVE, "wave"), (spec, "spec_flux"),
                       (serr, "spec_fluxerr"), (g.SPEC_REGION.astype(np.float64),
                                                "spec_region"), (region, "photo_region")):
        hdul.append(fits.ImageHDU(data, name=name))
    hdul.append(_stamp_hdu())
    _writeto(hdul, w.path("orig_specphot.fits"))
    w.store("orig_specphot.fits")


def _orig_rebin(cube: np.ndarray, err: bool, bin_map: np.ndarray = g.BIN_MAP,
                bins: tuple[int, ...] = (1, 2, 3)) -> np.ndarray:
    """pixel_binning's re-binning of a 3-D extension (spec §1.4): every pixel of a bin gets
    the bin's nansum (errors: root of the nansum of squares), 0 outside the bins (and, for
    spectra, outside the bins listed in the spectral bin map)."""
    out = np.zeros_like(cube)
    for k in bins:
        sel = bin_map == k
        vals = np.sqrt(np.nansum(cube[:, sel] ** 2, axis=1)) if err else \
            np.nansum(cube[:, sel], axis=1)
        out[:, sel] = vals[:, None]
    return out


def orig_binned(w: Writer) -> None:
    """Spec §1.4, photometric: PRIMARY = the flux map's primary header with EXTNAME
    'PRIMARY', REFBAND, NBINS, NBINSPH added (SPECPHOT=0 kept); the input extensions in
    input order except PRIMARY and STAMP_IMAGE (FLUX, FLUX_ERR re-binned; GALAXY_REGION
    copied); PHOTO_BIN_MAP (float, 0 = no bin)."""
    flux, err, region = _orig_flux_arrays()
    hdr = _orig_header([*_orig_fluxmap_cards(), ("EXTNAME", "PRIMARY"), ("REFBAND", 1),
                        ("NBINS", g.NBINS), ("NBINSPH", g.NBINS)])
    hdul = fits.HDUList([fits.PrimaryHDU(header=hdr),
                         fits.ImageHDU(_orig_rebin(flux, False), name="FLUX"),
                         fits.ImageHDU(_orig_rebin(err, True), name="FLUX_ERR"),
                         fits.ImageHDU(region, name="GALAXY_REGION"),
                         fits.ImageHDU(g.BIN_MAP.astype(np.float64), name="PHOTO_BIN_MAP")])
    _writeto(hdul, w.path("orig_binned_phot.fits"))
    w.store("orig_binned_phot.fits")


def orig_binned_specphot(w: Writer) -> None:
    """Spec §1.4, spectrophotometric input (the cube of orig_specphot). The input has no
    GALAXY_REGION, so pixel_binning bins SPEC_REGION only (spec §1.1): the bins are
    ORIG_SP_BIN_MAP, all inside the IFS footprint. PRIMARY = the input's primary header
    (EXTNAME set to 'PRIMARY', data-describing cards dropped) with REFBAND, NBINS, NBINSPH,
    NBINSSP; the input extensions in input order — PHOTO_FLUX, PHOTO_FLUXERR re-binned as
    photometry (3 ≤ 50 planes), WAVE copied, SPEC_FLUX, SPEC_FLUXERR re-binned as spectra
    (60 > 50 planes), SPEC_REGION, PHOTO_REGION copied (PHOTO_REGION is the whole galaxy
    region, larger than the binned area); PHOTO_BIN_MAP, SPEC_BIN_MAP (float, equal here).

    Assumed: PHOTO_FLUX kept, as with an astropy that does not alias 'PRIMARY' to HDU 0.
    With astropy 8 the original drops it (spec §1.4, weakness 5): such a file has no
    photometry at all; the tests derive it from this one."""
    flux, err, region, spec, serr = _orig_specphot_arrays()
    bmap = g.ORIG_SP_BIN_MAP
    hdr = _orig_header([*_orig_specphot_cards(), ("EXTNAME", "PRIMARY"), ("REFBAND", 1),
                        ("NBINS", g.NBINS), ("NBINSPH", g.NBINS), ("NBINSSP", g.NBINS)])
    hdul = fits.HDUList([
        fits.PrimaryHDU(header=hdr),
        fits.ImageHDU(_orig_rebin(flux, False, bmap), name="PHOTO_FLUX"),
        fits.ImageHDU(_orig_rebin(err, True, bmap), name="PHOTO_FLUXERR"),
        fits.ImageHDU(g.WAVE, name="WAVE"),
        fits.ImageHDU(_orig_rebin(spec, False, bmap), name="SPEC_FLUX"),
        fits.ImageHDU(_orig_rebin(serr, True, bmap), name="SPEC_FLUXERR"),
        fits.ImageHDU(g.SPEC_REGION.astype(np.float64), name="SPEC_REGION"),
        fits.ImageHDU(region, name="PHOTO_REGION"),
        fits.ImageHDU(bmap.astype(np.float64), name="PHOTO_BIN_MAP"),
        fits.ImageHDU(bmap.astype(np.float64), name="SPEC_BIN_MAP")])
    _writeto(hdul, w.path("orig_binned_specphot.fits"))
    w.store("orig_binned_specphot.fits")


def orig_binned_old(w: Writer) -> None:
    """The older binned layout (pixbin_old.py; spec §1.4 names BIN_MAP, BIN_FLUX,
    BIN_FLUXERR and §1.6 the header keys readers use: SPECPHOT, NBINS, FILn, UNIT).
    Assumed: header-only PRIMARY with NFILTERS, UNIT, Z, REFBAND, NBINS, SPECPHOT, FILn;
    no GALAXY_REGION; 0 outside the bins."""
    flux, err, _ = _orig_flux_arrays()
    cards = [("nfilters", g.NB), ("unit", g.UNIT), ("z", g.Z), ("refband", 1),
             ("nbins", g.NBINS), ("specphot", 0)]
    cards += [(f"fil{i}", f) for i, f in enumerate(g.FILTERS)]
    hdul = fits.HDUList([fits.PrimaryHDU(header=_orig_header(cards)),
                         fits.ImageHDU(g.BIN_MAP.astype(np.float64), name="bin_map"),
                         fits.ImageHDU(_orig_rebin(flux, False), name="bin_flux"),
                         fits.ImageHDU(_orig_rebin(err, True), name="bin_fluxerr")])
    _writeto(hdul, w.path("orig_binned_oldlayout.fits"))
    w.store("orig_binned_oldlayout.fits")


def orig_library(w: Writer) -> None:
    """Spec §3.5: group /mod with the attributes listed there (no name_file_lsf: smooth_lsf
    = 0), /mod/par/<name> for every par<i> (gzip; log_mass all 0), /mod/spec/wave and one
    dataset f<i> per model (float64, gzip). Attributes are written as the original's
    Python values (int, float, str)."""
    path = w.path("orig_library.h5")
    with h5py.File(path, "w") as f:
        m = f.create_group("mod")
        for key, value in g.ORIG_LIB_ATTRS.items():
            m.attrs[key] = value
        m.attrs["funit"] = "L_sun/A"
        m.attrs["nmodels"] = g.NMOD
        m.attrs["nparams"] = len(g.LIB_FREE)
        for i, name in enumerate(g.ORIG_LIB_ALL):
            m.attrs[f"par{i}"] = name
        m.attrs["nparams_all"] = len(g.ORIG_LIB_ALL)
        for name in g.LIB_FREE:
            m.attrs[f"pr_{name}_min"] = g.LIB_RANGES[name][0]
            m.attrs[f"pr_{name}_max"] = g.LIB_RANGES[name][1]
        p = m.create_group("par")
        for name in g.ORIG_LIB_ALL:
            values = g.LIB_PARAMS[name] if name in g.LIB_PARAMS else g.LIB_DERIVED[name]
            p.create_dataset(name, data=np.array(values, dtype=np.float64), compression="gzip")
        s = m.create_group("spec")
        s.create_dataset("wave", data=g.LIB_WAVE, compression="gzip")
        for i in range(g.NMOD):
            s.create_dataset(f"f{i}", data=g.LIB_SPECTRA[i], compression="gzip")
    w.store(path.name)


def _table(name: str, cols: list[tuple[str, str, object]]) -> fits.BinTableHDU:
    return fits.BinTableHDU.from_columns(
        fits.ColDefs([fits.Column(name=n, format=fmt, array=np.asarray(a)) for n, fmt, a
                      in cols]), name=name)


def orig_rdsps(w: Writer) -> None:
    """Spec §2.3 (rd_fz.py, store_full_samplers=1): PRIMARY header cards in the order
    store_to_fits sets them, SAMPLERS (id K; parameters, chi2, lnprob D), FIT_PARAMS (a
    'rows' column 4A = mean, std — the spec says "2 rows: mean, std", the column name and
    format are the original's source — then one D column per parameter), MINCHI2_PARAMS,
    OBS_PHOTO, BFIT_PHOTO (wave = the original's tabulated cwave), BFIT_MOD_SPEC. No
    DOF (gauss likelihood); IGM_TYPE since add_igm_absorption=1."""
    cards: list[tuple[str, object]] = [
        ("imf", 1), ("nparams", len(g.ORIG_LIB_ALL)), ("sfh_form", 1), ("dust_law", 1),
        ("nfilters", g.NB), ("duste_stat", 0), ("add_neb_emission", 0), ("add_agn", 0),
        ("add_igm_absorption", 1), ("likelihood_form", "gauss"), ("igm_type", 1)]
    cards += [(f"fil{i}", f) for i, f in enumerate(g.FILTERS)]
    cards += [("gal_z", g.Z), ("free_z", 0), ("cosmo", 0), ("H0", 70.0), ("Om0", 0.3),
              ("nrows", g.ORIG_NS), ("redcd_chi2", float(g.ORIG_SAMPLER_CHI2.min()) / g.NB),
              ("perc_chi2", 90.0)]
    cards += [(f"param{i}", p) for i, p in enumerate(g.ORIG_LIB_ALL)]
    cards += [("fitmethod", "rdsps"), ("storesamp", 1), ("specphot", 0),
              ("smooth_velocity", 1), ("sigma_smooth", 0.0), ("smooth_lsf", 0)]
    samplers = [("id", "K", np.arange(1, g.ORIG_NS + 1))]
    samplers += [(p, "D", g.ORIG_SAMPLER[p]) for p in g.ORIG_LIB_ALL]
    samplers += [("chi2", "D", g.ORIG_SAMPLER_CHI2), ("lnprob", "D", g.ORIG_SAMPLER_LNPROB)]
    fitp = [("rows", "4A", ["mean", "std"])]
    fitp += [(p, "D", [g.ORIG_BIN_MEAN[0, j], g.ORIG_BIN_STD[0, j]])
             for j, p in enumerate(g.ORIG_LIB_ALL)]
    minchi = [(p, "D", [g.ORIG_SAMPLER[p][g.ORIG_BEST_INDEX]]) for p in g.ORIG_LIB_ALL]
    hdul = fits.HDUList([
        fits.PrimaryHDU(header=_orig_header(cards)), _table("samplers", samplers),
        _table("fit_params", fitp), _table("minchi2_params", minchi),
        _table("obs_photo", [("flux", "D", g.OBS_FLUX), ("flux_err", "D", g.OBS_FLUX_ERR)]),
        _table("bfit_photo", [("wave", "D", g.ORIG_CWAVE), ("flux", "D", g.BFIT_PHOTO)]),
        _table("bfit_mod_spec", [("wave", "D", g.BFIT_WAVE), ("flux", "D", g.BFIT_SPEC)])])
    _writeto(hdul, w.path("orig_rdsps.fits"))
    w.store("orig_rdsps.fits")


def orig_mcmc(w: Writer) -> None:
    """Spec §2.6 (mc_p2.py): PRIMARY header (one fixed parameter, gas_logu; COSMO as a
    string), SAMPLERS (id K, free parameters, log_sfr, log_mw_age), FIT_PARAMS ('rows' 3A =
    p16, p50, p84 — format from the original's source), OBS_PHOTO, BFIT_PHOTO (wave, p16,
    p50, p84), BFIT_MOD_SPEC (wave, then tot_, stellar_, nebe_, nebe_cont_ p16/p50/p84:
    nebular emission on, no dust emission, no AGN). The spec gives no card order for
    smooth_* and IGM_TYPE: the order listed there is used."""
    cards: list[tuple[str, object]] = [
        ("imf", 1), ("nparams", len(g.ORIG_MC_FREE)), ("sfh_form", 1), ("dust_law", 1),
        ("nfilters", g.NB), ("duste_stat", 0), ("add_neb_emission", 1), ("add_agn", 0),
        ("add_igm_absorption", 1), ("free_gas_logz", 0), ("cosmo", "flat_LCDM"),
        ("H0", 70.0), ("Om0", 0.3), ("smooth_velocity", 1), ("sigma_smooth", 0.0),
        ("smooth_lsf", 0), ("igm_type", 1)]
    cards += [(f"fil{i}", f) for i, f in enumerate(g.FILTERS)]
    cards += [("gal_z", g.Z), ("free_z", 0), ("nrows", g.ORIG_MC_NS)]
    cards += [(f"param{i}", p) for i, p in enumerate(g.ORIG_MC_FREE)]
    cards += [("nfixpar", 1), ("fpar0", "gas_logu"), ("fpar0_val", -2.0),
              ("fitmethod", "mcmc"), ("storesamp", 1), ("specphot", 0)]
    samplers = [("id", "K", np.arange(1, g.ORIG_MC_NS + 1))]
    samplers += [(p, "D", g.ORIG_MC_SAMPLES[:, j]) for j, p in enumerate(g.ORIG_MC_ALL)]
    fitp = [("rows", "3A", ["p16", "p50", "p84"])]
    fitp += [(p, "D", [g.ORIG_MC_P[s][0, j] for s in ("p16", "p50", "p84")])
             for j, p in enumerate(g.ORIG_MC_ALL)]
    photo = [("wave", "D", g.ORIG_CWAVE)]
    photo += [(s, "D", g.MC_PHOTO_PCT[i]) for i, s in enumerate(("p16", "p50", "p84"))]
    comps = {"tot": g.MC_SED_PCT["total"], "stellar": g.MC_SED_PCT["stellar"],
             "nebe": g.MC_SED_PCT["nebular"], "nebe_cont": 0.5 * g.MC_SED_PCT["nebular"]}
    spec = [("wave", "D", g.MC_SED_WAVE)]
    spec += [(f"{c}_{s}", "D", comps[c][i]) for c in g.ORIG_MC_COMPONENTS
             for i, s in enumerate(("p16", "p50", "p84"))]
    hdul = fits.HDUList([
        fits.PrimaryHDU(header=_orig_header(cards)), _table("samplers", samplers),
        _table("fit_params", fitp),
        _table("obs_photo", [("flux", "D", g.OBS_FLUX), ("flux_err", "D", g.OBS_FLUX_ERR)]),
        _table("bfit_photo", photo), _table("bfit_mod_spec", spec)])
    _writeto(hdul, w.path("orig_mcmc.fits"))
    w.store("orig_mcmc.fits")


def orig_maps(w: Writer, name: str, params: tuple[str, ...], stats: tuple[str, ...],
              values: dict[str, np.ndarray], rdsps: bool) -> None:
    """Spec §2.8 (maps_parameters; bins 1 and 2 fitted, bin 3 missing → −99): PRIMARY with
    GAL_Z, NBINS, HDU2… (the map names, numbered from 2 as the original counts) and NHDU
    (its final counter); GALAXY_REGION (the flux map's, float); ``bin-<p>-<stat>`` for every
    parameter and statistic (0 outside the bins); then ``pix-<p>-<stat>`` of log_mass and
    log_sfr in parameter order (formulas in _golden_inputs.orig_pixel_maps)."""
    per_bin = {s: np.vstack([values[s], np.full((1, len(params)), -99.0)]) for s in stats}
    names = [f"bin-{p}-{s}" for p in params for s in stats]
    pix = g.orig_pixel_maps(per_bin, params, stats, rdsps)
    names += list(pix)
    cards: list[tuple[str, object]] = [("gal_z", g.Z), ("nbins", g.NBINS)]
    cards += [(f"HDU{i}", n) for i, n in enumerate(names, start=2)]
    cards += [("nHDU", len(names) + 2)]
    hdul = fits.HDUList()
    hdul.append(fits.PrimaryHDU(header=_orig_header(cards)))
    hdul.append(fits.ImageHDU(g.REGION.astype(np.float64), name="galaxy_region"))
    for p in params:
        j = params.index(p)
        for s in stats:
            hdul.append(fits.ImageHDU(g.paint(per_bin[s][:, j:j + 1], fill=0.0)[0],
                                      name=f"bin-{p}-{s}"))
    for key, arr in pix.items():
        hdul.append(fits.ImageHDU(arr, name=key))
    _writeto(hdul, w.path(name))
    w.store(name)


# =========================================================================== main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true",
                        help="rewrite existing files of this version")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        w = Writer(Path(tmp), args.force)
        ours_cubes(w)
        ours_noise(w)
        ours_specnoise(w)
        ours_library(w)
        ours_fit_results(w)
        ours_store(w)
        ours_maps(w)
        ours_grid(w)
        ours_chain(w)
        ours_filters(w)
        ours_record(w)
        orig_fluxmap(w)
        orig_fluxmap_fluxprimary(w)
        orig_specphot(w)
        orig_binned(w)
        orig_binned_specphot(w)
        orig_binned_old(w)
        orig_library(w)
        orig_rdsps(w)
        orig_mcmc(w)
        orig_maps(w, "orig_maps_rdsps.fits", g.ORIG_LIB_ALL, ("mean", "mean_err"),
                  {"mean": g.ORIG_BIN_MEAN, "mean_err": g.ORIG_BIN_STD}, rdsps=True)
        orig_maps(w, "orig_maps_mcmc.fits", g.ORIG_MC_ALL, ("p16", "p50", "p84"),
                  g.ORIG_MC_P, rdsps=False)
    total = 0
    for name in w.written:
        size = (OUT / name).stat().st_size
        total += size
        print(f"{size:8d}  {name}")
    print(f"{total:8d}  total")


if __name__ == "__main__":
    main()
