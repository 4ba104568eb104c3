"""A piXedfit-style script runs with pixedfit.compat after changing only its imports."""

from __future__ import annotations

import runpy

import numpy as np
import pytest
from astropy.io import fits

from pixedfit.analysis.maps import PropertyMaps
from pixedfit.demo import make_observation
from pixedfit.images.regions import RegionWarning

# A script written for piXedfit. Its original imports were
#   from piXedfit.piXedfit_images import images_processing
#   from piXedfit.piXedfit_bin import pixel_binning
#   from piXedfit.piXedfit_model import save_models_rest_spec
#   from piXedfit.piXedfit_fitting import SEDfit_from_binmap, singleSEDfit, \
#       maps_parameters, get_bestfit_params
#   from piXedfit.piXedfit_analysis import plot_SED, plot_corner, plot_sfh_mcmc
#   from piXedfit.utils.filtering import list_filters, add_filter, remove_filter, \
#       change_filter_name, cwave_filters
SCRIPT = '''
from pixedfit.compat import *

filters = ["galex_fuv", "galex_nuv", "sdss_u", "sdss_g", "sdss_r", "sdss_i", "sdss_z",
           "2mass_j", "2mass_h", "2mass_k", "wise_w1", "wise_w2"]
sci_img = {f: f + "_sci.fits" for f in filters}
var_img = {f: f + "_var.fits" for f in filters}
gal_ra, gal_dec, gal_z = 150.1, 2.2, 0.02

img_process = images_processing(filters, sci_img, var_img, gal_ra, gal_dec,
                                dir_images="inputs", gal_z=gal_z, stamp_size=[24, 24])
segm_maps = img_process.segmentation_sep(thresh=3.0)
gal_region = img_process.galaxy_region()
flux_maps_fits = img_process.flux_map(gal_region, Gal_EBV=0.0, name_out_fits="fluxmap.fits")

SNR = [3, 3, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10]
pixbin = pixel_binning(flux_maps_fits, ref_band=6, Dmin_bin=2.0, SNR=SNR,
                       redc_chi2_limit=4.0, del_r=2.0, name_out_fits="pixbin.fits")

params_range = {"log_age": [-0.4, 1.1], "log_tau": [-0.6, 1.0], "logzsol": [-0.9, 0.25],
                "dust2": [0.0, 1.3], "gas_logu": [-2.0, -2.0]}
models = save_models_rest_spec(imf_type=2, sfh_form=1, dust_law=1, duste_switch=0,
                               add_neb_emission=1, add_agn=0, nmodels=2000, nproc=2,
                               params_range=params_range, name_out="models.hdf5")

fit_files = SEDfit_from_binmap(pixbin, binid_range=[0, 4], models_spec=models,
                               fit_method="rdsps", nproc=2)
maps = maps_parameters(pixbin, bin_ids=[0, 1, 2, 3], name_sampler_fits=fit_files,
                       fits_fluxmap=flux_maps_fits, name_out_fits="maps.fits")
params, values = get_bestfit_params(fit_files[0])
plot_SED(fit_files[0], name_plot="sed.png")
plot_corner(fit_files[0], models_spec=models, name_plot="corner.png")
lbt, p16, p50, p84 = plot_sfh_mcmc(fit_files[0], models_spec=models, name_plot="sfh.png")

from astropy.io import fits
with fits.open(pixbin) as bins:
    flux = bins["FLUX"].data[:, 12, 12] * bins[0].header["UNIT"]
    err = bins["FLUX_ERR"].data[:, 12, 12] * bins[0].header["UNIT"]
single = singleSEDfit(flux, err, filters, models_spec=models, fit_method="rdsps",
                      gal_z=gal_z, name_out_fits="single.fits")

add_filter("my_box", [5000.0, 5001.0, 5999.0, 6000.0], [0.0, 1.0, 1.0, 0.0], 5500.0)
change_filter_name("my_box", "my_box2")
cw = cwave_filters(["my_box2"])
names_after = list_filters()
remove_filter("my_box2")
'''


@pytest.mark.slow
def test_pixedfit_script_runs_with_compat(tmp_path, monkeypatch):
    make_observation(tmp_path, stamp=24, seed=5, nmodels=100, noise_realisations=0,
                     refine=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "script.py").write_text(SCRIPT)
    # the synthetic galaxy fills the 24-pixel stamp: the region is flagged as such
    with pytest.warns(RegionWarning, match="touches the stamp edge"):
        ns = runpy.run_path(str(tmp_path / "script.py"))
    for name in ("fluxmap.fits", "pixbin.fits", "models.hdf5", "rdsps_bin1.fits",
                 "rdsps_bin4.fits", "maps.fits", "sed.png", "corner.png", "sfh.png",
                 "single.fits"):
        assert (tmp_path / name).is_file(), name
    assert ns["fit_files"] == [f"rdsps_bin{b}.fits" for b in (1, 2, 3, 4)]
    with fits.open(tmp_path / "rdsps_bin1.fits") as hdul:
        assert hdul[0].header["fitmethod"] == "rdsps" and "FIT_PARAMS" in hdul
    maps = PropertyMaps.read(tmp_path / "maps.fits")
    fitted = maps.bin_values("log_mass", "mean")
    assert np.all(np.isfinite(fitted[:4])) and np.all(np.isnan(fitted[4:]))
    assert "log_mass" in ns["params"] and len(ns["values"]) == len(ns["params"])
    assert np.all(ns["p16"] <= ns["p84"]) and ns["lbt"][0] == 0.0
    assert "my_box2" in ns["names_after"] and ns["cw"] == pytest.approx(5500.0, rel=0.05)
    assert len(ns["segm_maps"]) == 12


def test_other_imf_warns(tmp_path):
    from pixedfit.compat import save_models_rest_spec

    with pytest.warns(UserWarning, match="IMF"):
        save_models_rest_spec(imf_type=1, sfh_form=0, nmodels=10,
                              name_out=str(tmp_path / "m.h5"))


def test_original_argument_names_reach_the_pep8_api(tmp_path):
    """pixel_binning(Dmin_bin, SNR, redc_chi2_limit) bins as bin_pixels(min_bin_diameter,
    snr_target, max_reduced_chi2); save_models_rest_spec(duste_switch) sets
    SEDModel.dust_emission."""
    from pixedfit.binning import bin_pixels
    from pixedfit.compat import pixel_binning, save_models_rest_spec
    from pixedfit.cubes import BinnedCube, FluxCube
    from pixedfit.library import read_library

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:16, 0:16]
    flux = 40 * np.exp(-np.hypot(yy - 8, xx - 8) / 3)[None] * np.array([0.6, 1.0, 1.3])[
        :, None, None]
    err = np.full(flux.shape, 1.0)
    cube = FluxCube(flux + rng.normal(size=flux.shape), err, ["sdss_g", "sdss_r", "sdss_i"])
    cube.write(tmp_path / "fm.fits")
    name = pixel_binning(str(tmp_path / "fm.fits"), ref_band=1, Dmin_bin=3.0,
                         SNR=[8, 8, 4], redc_chi2_limit=2.5, del_r=1.5,
                         name_out_fits=str(tmp_path / "pb.fits"))
    got = BinnedCube.read(name)
    want = bin_pixels(cube, ref_band=1, min_bin_diameter=3.0, snr_target=[8, 8, 4],
                      max_reduced_chi2=2.5, del_r=1.5)
    assert np.array_equal(got.bin_map, want.bin_map)
    assert got.params["min_bin_diameter"] == 3.0 and got.params["max_reduced_chi2"] == 2.5
    np.testing.assert_array_equal(got.params["snr_target"], [8, 8, 4])

    lib = save_models_rest_spec(imf_type=2, sfh_form=0, duste_switch=1, nmodels=5,
                                name_out=str(tmp_path / "m.h5"))
    assert read_library(lib).model().dust_emission is True
