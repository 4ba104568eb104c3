"""JWST/NIRCam end to end on the shared CEERS cut-outs, and the defaults that fit real data
(stamp from the footprint, background on small images, noise Monte Carlo, pixel shares)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from pixedfit.cubes import BinnedCube
from pixedfit.fitting import ErrorModel, fit_sed
from pixedfit.images import ImageSet
from pixedfit.images.align import chain_noise_correlation, reproject_image, set_pixel_scale
from pixedfit.images.psf import convolve_image, gaussian_psf, kernel_noise_correlation
from pixedfit.images.regions import RegionWarning
from pixedfit.library import read_library

CEERS = "jwst_ceers_nircam_cutouts"
BANDS = ("f115w", "f150w", "f200w", "f277w", "f356w", "f410m", "f444w")
GALAXIES = {"6414": (214.89001, 52.81749, 0.355), "10766": (214.87391, 52.83556, 0.462)}


def _name(b):
    return f"jwst_nircam_{b}"


def _scale(b):
    return 0.02 if int(b[1:4]) < 250 else 0.04


def _inputs(folder, bands=BANDS):
    sci = {_name(b): folder / f"{b}.fits" for b in bands}
    var = {_name(b): fits.getdata(folder / f"{b}_err.fits").astype(float) ** 2 for b in bands}
    mask = {_name(b): folder / f"{b}_mask.fits" for b in bands}
    psf = {_name(b): folder / "PSF" / f"{b.upper()}_hybrid.fits" for b in bands}
    return sci, var, mask, psf


def test_ceers_wcs_defect_is_caught_and_the_stated_scale_fixes_it(shared_data, tmp_path):
    folder = shared_data / CEERS / "6414"
    ra, dec, z = GALAXIES["6414"]
    sci, var, mask, _ = _inputs(folder, ("f150w", "f444w"))
    with pytest.raises(ValueError, match=r"jwst_nircam_f150w.*rotation terms of PC were "
                                         r"probably lost.*pixel_scale"):
        ImageSet(list(sci), sci, ra, dec, tmp_path, var_img=var, z=z)
    with pytest.warns(UserWarning, match="rotation terms"):
        ImageSet(list(sci), sci, ra, dec, tmp_path, var_img=var, z=z,
                 pixel_scale_check="warn")
    s = ImageSet(list(sci), sci, ra, dec, tmp_path, var_img=var, z=z, mask_img=mask,
                 pixel_scale={_name("f150w"): 0.02, _name("f444w"): 0.04})
    assert s.pixel_scales[_name("f150w")] == pytest.approx(0.02, rel=1e-9)
    assert s.pixel_scales[_name("f444w")] == pytest.approx(0.04, rel=1e-9)
    # the target stays on its pixel and the orientation is the diagonal's (RA to the left)
    w = s._wcs[_name("f444w")]
    crval = w.wcs.crval
    assert np.allclose(w.world_to_pixel_values(*crval), (50.0, 50.0), atol=1e-6)
    x1, _ = w.world_to_pixel_values(crval[0] + 0.0001, crval[1])
    assert x1 < 50.0
    # masked pixels are NaN and out of reach of the region
    m = fits.getdata(folder / "f444w_mask.fits") != 0
    assert np.all(np.isnan(s._images[_name("f444w")][m]))
    with pytest.raises(ValueError, match="scale"):
        set_pixel_scale(w, -1.0)


@pytest.mark.slow
def test_noise_factor_is_positive_and_matches_a_large_monte_carlo(shared_data):
    """CEERS F150W error map, kernel to F444W and reprojection 0.02" → 0.04": the adaptive
    estimate agrees with 400 realisations within 4 %; convolution alone gives factor 1 and
    the kernel's autocorrelation (analytic)."""
    folder = shared_data / CEERS / "6414"
    var = fits.getdata(folder / "f150w_err.fits").astype(float) ** 2
    hdr = fits.getheader(folder / "f150w.fits")
    win = set_pixel_scale(hdr, 0.02)
    wout = set_pixel_scale(fits.getheader(folder / "f444w.fits"), 0.04)
    k = gaussian_psf(7.5)

    def apply(x):
        return reproject_image(convolve_image(x, None, k)[0], win, wout, (101, 101),
                               surface_brightness=True)[0]

    _, vconv = convolve_image(np.zeros_like(var), var, k)
    vout = reproject_image(np.zeros_like(var), win, wout, (101, 101), variance=vconv,
                           surface_brightness=True)[1]
    quick = chain_noise_correlation(var, vout, apply, half=4, seed=1)
    ref = chain_noise_correlation(var, vout, apply, half=4, seed=2, n_realisations=400,
                                  max_realisations=400)
    assert quick.pixel_factor > 0 and 8 <= quick.n_realisations < 400
    assert quick.pixel_factor == pytest.approx(ref.pixel_factor, rel=0.04)
    assert ref.pixel_factor == pytest.approx(3.7, rel=0.15)  # 2x2 averages of correlated px
    np.testing.assert_allclose(quick.rho, ref.rho, atol=0.05)
    # convolution only: the propagated K² variance is exact and ρ is K's autocorrelation
    conv = chain_noise_correlation(var, vconv, lambda x: convolve_image(x, None, k)[0],
                                   half=4, seed=3, rtol=0.005, max_realisations=400)
    assert conv.pixel_factor == pytest.approx(1.0, rel=0.015)
    np.testing.assert_allclose(conv.rho, kernel_noise_correlation(k, half=4), atol=0.03)


def test_noise_factor_positive_with_zero_variance_pixels():
    """GALEX-like maps (most pixels of zero variance): the ratio estimator stays positive
    and stable between seeds, where z = o/σ blew up on near-zero propagated variances."""
    rng = np.random.default_rng(1)
    var = rng.poisson(0.02, (60, 60)).astype(float)
    k = gaussian_psf(2.0)
    _, vout = convolve_image(np.zeros((60, 60)), var, k)
    factors = [chain_noise_correlation(var, vout, lambda x: convolve_image(x, None, k)[0],
                                       half=3, seed=s).pixel_factor for s in range(4)]
    assert min(factors) > 0 and max(factors) / min(factors) < 1.3
    with pytest.raises(ValueError, match="no noise"):
        chain_noise_correlation(np.zeros((20, 20)), np.ones((20, 20)), lambda x: x)


def test_stamp_from_footprint_and_warning_for_empty_stamps(shared_data, tmp_path):
    folder = shared_data / CEERS / "10766"
    ra, dec, z = GALAXIES["10766"]
    sci, var, _, psf = _inputs(folder, ("f277w", "f444w"))
    scales = {_name("f277w"): 0.04, _name("f444w"): 0.04}
    s = ImageSet(list(sci), sci, ra, dec, tmp_path, var_img=var, z=z, pixel_scale=scales,
                 psfs=psf, noise_realisations=0)
    ny, nx = s.stamp_size  # the 101x101 images less the kernel margin
    assert ny % 2 == 1 and nx % 2 == 1 and 71 <= min(ny, nx) and max(ny, nx) <= 101
    s.process(write=False)
    assert all(np.isfinite(st.image).mean() > 0.95 for st in s.stamps.values())
    big = ImageSet(list(sci), sci, ra, dec, tmp_path, var_img=var, z=z, pixel_scale=scales,
                   psfs=psf, stamp_size=(201, 201), noise_realisations=0)
    with pytest.warns(UserWarning, match="most of the 201x201 stamp has no data"):
        big.process(write=False)


def test_background_on_small_images_and_band_named_on_failure(tmp_path):
    """A 24x24 image: the box adapts (Background2D refused the old default); a failure
    names the band and the TOML keys."""
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [12.5, 12.5]
    w.wcs.cdelt = [-0.4 / 3600, 0.4 / 3600]
    rng = np.random.default_rng(0)
    img = rng.normal(0.0, 1.0, (24, 24))
    s = ImageSet(["sdss_r"], {"sdss_r": (img, w.to_header())}, 150.0, 2.0, tmp_path,
                 stamp_size=(11, 11), noise_realisations=0)
    assert np.nanmedian(s._variances["sdss_r"]) == pytest.approx(1.0, rel=0.3)
    tiny = np.full((6, 6), np.nan)
    tiny[2:4, 2:4] = 1.0
    w.wcs.crpix = [3.5, 3.5]
    with pytest.raises(ValueError, match=r"sdss_r: variance from the background estimation "
                                         r"failed.*background_options\.sdss_r"):
        ImageSet(["sdss_r"], {"sdss_r": (tiny, w.to_header())}, 150.0, 2.0, tmp_path,
                 stamp_size=(5, 5))


def test_pixel_shares_leave_no_pixel_nan():
    """Sky pixels of a faint bin with negative reference-band flux: share_out gave NaN; the
    fallback takes the next band, and every bin's shares sum to 1."""
    from pixedfit.analysis.maps import share_out, share_out_fallback

    bin_map = np.array([[1, 1, 2], [1, 2, 2]], dtype=np.int32)
    flux = np.array([[[1.0, -0.5, 2.0], [3.0, 1.0, 1.0]],      # band 0
                     [[1.0, 0.5, -2.0], [2.0, 1.0, -1.0]]])    # band 1 (reference)
    err = np.ones_like(flux)
    lw, _ = share_out(flux[1], err[1], bin_map)
    assert np.isnan(lw).sum() == 3  # the defect: bin 2 sums negative in band 1
    lw, sig = share_out_fallback(flux, err, 1, bin_map)
    assert np.all(np.isfinite(lw)) and np.all(np.isfinite(sig))
    for b in (1, 2):
        assert np.sum(10 ** lw[bin_map == b]) == pytest.approx(1.0)
    # bin 2 is negative in band 1 as a whole: band 0 shares 2:1:1
    np.testing.assert_allclose(10 ** lw[bin_map == 2], [0.5, 0.25, 0.25])


def _toml(cfg, prefix=""):
    """A TOML text of nested dicts of str/float/bool/list (enough for these configs)."""
    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v + '"'
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return repr(v)

    lines, subs = [], []
    for k, v in cfg.items():
        (subs if isinstance(v, dict) else lines).append((k, v))
    text = "".join(f"{k} = {val(v)}\n" for k, v in lines)
    for k, v in subs:
        name = f"{prefix}.{k}" if prefix else k
        text += f"\n[{name}]\n" + _toml(v, name)
    return text


def _config(folder, ra, dec, z, out):
    files = lambda suffix: {_name(b): str(folder / f"{b}{suffix}.fits") for b in BANDS}  # noqa: E731
    return {
        "run": {"name": folder.name, "output_dir": str(out), "quiet": True},
        "images": {"filters": [_name(b) for b in BANDS], "ra": ra, "dec": dec, "z": z,
                   "gal_ebv": 0.0, "sci": files(""), "err": files("_err"),
                   "mask": files("_mask"),
                   "psf": {_name(b): str(folder / "PSF" / f"{b.upper()}_hybrid.fits")
                           for b in BANDS},
                   "pixel_scale": {_name(b): _scale(b) for b in BANDS}},
        "models": {"nmodels": 400},
        "report": {"enabled": False},
    }


@pytest.mark.slow
@pytest.mark.parametrize("galaxy", ["6414", "10766"])
def test_ceers_galaxy_through_pixedfit_run(shared_data, tmp_path, galaxy):
    """Both CEERS galaxies, as a user would: TOML with error maps, masks, PSF files and the
    stated pixel scales → `pixedfit run --output` → property maps."""
    from pixedfit.cli import main

    ra, dec, z = GALAXIES[galaxy]
    folder = shared_data / CEERS / galaxy
    toml = tmp_path / "ceers.toml"
    toml.write_text(_toml(_config(folder, ra, dec, z, "ignored")))
    out = tmp_path / "out"
    # the cut-outs are 4″ across and the galaxies fill them: the region must say so
    with pytest.warns(RegionWarning, match="touches the stamp edge"):
        assert main(["run", str(toml), "--output", str(out), "--quiet"]) == 0
    assert not (tmp_path / "ignored").exists()
    with fits.open(out / "images" / "fluxmap.fits") as hdul:
        hdr = hdul[0].header
        dev = [hdr[f"KEEDEV{i}"] for i in range(6)]
    assert max(dev) < 0.02  # every kernel within 2 % of F444W's encircled energy
    with fits.open(out / "maps" / "maps.fits") as hdul:
        region = hdul["GALAXY_REGION"].data.astype(bool)
        pix = hdul["PIX-LOG_MASS-P50"].data
        bins = hdul["BIN_MAP"].data
        binm = hdul["BIN-LOG_MASS-P50"].data
        flags = hdul["BIN_FLAG"].data
    cube = BinnedCube.read(out / "binning" / "binned.fits")
    fitted = region & (flags & 1 == 0)  # every pixel but the (unfitted) leftover's
    assert np.all(np.isfinite(pix[fitted]))
    assert np.all(np.isnan(pix[region & ~fitted]))
    ids = [b for b in range(1, cube.nbins + 1) if not cube.leftover[b - 1]]
    total_bins = np.log10(sum(10 ** binm[bins == i][0] for i in ids))
    total_pix = np.log10(np.sum(10 ** pix[fitted]))
    assert total_pix == pytest.approx(total_bins, abs=0.01)
    assert 8.0 < total_bins < 11.5
    # the resolved mass against a fit of the same pixels' integrated SED (issue 14)
    rows = np.array(ids) - 1
    flux = cube.bin_flux[rows].sum(axis=0) * cube.unit
    err = np.sqrt((cube.bin_flux_err[rows] ** 2).sum(axis=0)) * cube.unit
    library = read_library(out / "models" / "library.h5")
    whole = fit_sed(flux, err, list(cube.filters), z=cube.z, library=library,
                    model=library.model(), errors=ErrorModel(calibration=cube.calib_err),
                    seed=1)
    k = whole.names.index("log_mass")
    assert whole.converged
    assert abs(total_bins - whole.p50[k]) < 0.15
    print(f"CEERS {galaxy}: log M* = {total_bins:.3f} ({len(ids)} bins); integrated SED "
          f"{whole.p50[k]:.3f} ± {whole.std[k]:.3f}")
