"""match_imgifs_spectral: photometric RDSPS fits per pixel → model spectra → correction."""

from __future__ import annotations

import numpy as np
import pytest

from pixedfit.cubes import FluxCube, SpecPhotCube
from pixedfit.ifs.matching import match_imgifs_spectral
from pixedfit.library import generate_library
from pixedfit.sps import SEDModel

FILTERS = ["galex_nuv", "sdss_u", "sdss_g", "sdss_r", "sdss_i", "sdss_z", "2mass_j", "2mass_k"]
Z = 0.03
UNIT = 1e-17


@pytest.fixture(scope="module")
def setup():
    model = SEDModel(sfh_form=1, dust_law=1, add_neb_emission=True)
    lib = generate_library(model, 400, seed=4, ranges={"log_age": (-1.0, 1.0)})
    picks = np.array([[3, 50], [120, 333]])
    wave = np.arange(3700.0, 9000.0, 2.0)
    x = 2 * (wave - wave[0]) / (wave[-1] - wave[0]) - 1
    tilt = 1.0 + 0.15 * x  # a smooth calibration error of the IFS spectra, ±15 %
    flux = np.empty((len(FILTERS), 2, 2))
    spec = np.empty((wave.size, 2, 2))
    truth = np.empty_like(spec)
    for (iy, ix), k in np.ndenumerate(picks):
        p = {n: v[k] for n, v in lib.params.items()}
        p["log_mass"] = 9.0
        flux[:, iy, ix] = model.photometry(p, Z, FILTERS) / UNIT
        w, f = model.spectrum(p, Z)
        truth[:, iy, ix] = np.interp(wave, w, f) / UNIT
        spec[:, iy, ix] = truth[:, iy, ix] * tilt
    phot = FluxCube(flux, flux * 0.02, FILTERS, unit=UNIT, z=Z)
    cube = SpecPhotCube(phot, wave, spec, spec * 0.01)
    return model, lib, cube, picks, truth, tilt


def test_tilted_spectra_are_corrected_to_the_photometry(setup):
    model, lib, cube, picks, truth, tilt = setup
    res = match_imgifs_spectral(cube, lib, model=model)
    np.testing.assert_array_equal(res.best_model, picks)  # exact photometry: the true model
    assert np.all(res.correction.ok)
    corrected = res.cube.spec_flux
    rel = np.abs(corrected / truth - 1)
    assert np.nanmedian(rel) < 0.005
    assert np.nanpercentile(rel, 90) < 0.02
    # the factor undoes the tilt; errors are scaled by the same factor
    np.testing.assert_allclose(res.factor[:, 0, 0], 1 / tilt, rtol=0.02)
    np.testing.assert_allclose(res.cube.spec_err / res.cube.spec_flux,
                               cube.spec_err / cube.spec_flux, rtol=1e-10)


def test_bad_input(setup):
    model, lib, cube, *_ = setup
    with pytest.raises(TypeError, match="SpecPhotCube"):
        match_imgifs_spectral(cube.photometry, lib, model=model)
    with pytest.raises(ValueError, match="sigma_aa"):
        match_imgifs_spectral(cube, lib, model=model, sigma_aa=-1.0)
    nz = SpecPhotCube(FluxCube(cube.photometry.flux, cube.photometry.flux_err, FILTERS,
                               unit=UNIT), cube.wave, cube.spec_flux, cube.spec_err)
    with pytest.raises(ValueError, match="redshift"):
        match_imgifs_spectral(nz, lib, model=model)


def test_model_galaxy_in_the_manga_layout(tmp_path, setup):
    from astropy.wcs import WCS

    from pixedfit.ifs.generators import ModelGalaxy, manga_wave_grid, write_manga_logcube
    from pixedfit.ifs.readers import read_manga

    model = setup[0]
    gal = ModelGalaxy(z=Z, model=model,
                      bulge_params={"log_mass": 10.0, "log_age": 0.9, "dust2": 0.1},
                      disc_params={"log_mass": 9.5, "log_age": -0.5, "dust2": 0.4})
    wave = manga_wave_grid(step=8)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [gal.ra, gal.dec]
    wcs.wcs.crpix = [21.0, 21.0]
    wcs.wcs.cdelt = [-0.5 / 3600, 0.5 / 3600]
    flux = gal.cube(wave, wcs, (41, 41), psf_fwhm=2.5)
    write_manga_logcube(tmp_path / "manga.fits", wave, flux, flux * 0.02 + 1e-20, wcs)
    cube = read_manga(tmp_path / "manga.fits")
    total = np.nansum(cube.flux, axis=(1, 2))
    expected = gal.component_spectra(wave).sum(axis=0)
    # the 41x41 0.5" field holds nearly all of the light (disc r_eff 4")
    ratio = total / expected
    assert 0.9 < np.median(ratio) <= 1.0 + 1e-6
    assert np.std(ratio) < 0.01


@pytest.mark.slow
def test_end_to_end_specphot_cube_binning_and_spectrophotometric_fits(setup):
    """Matched cube → spectral correction → binning → RDSPS fits of bins with spectra."""
    from pixedfit.binning import bin_pixels
    from pixedfit.fitting import SpectralOptions, fit_binmap

    model, lib, _, picks, _, _ = setup
    rng = np.random.default_rng(8)
    ny, nx = 6, 6
    wave = np.arange(3700.0, 9000.0, 2.0)
    x = 2 * (wave - wave[0]) / (wave[-1] - wave[0]) - 1
    flux = np.empty((len(FILTERS), ny, nx))
    spec = np.empty((wave.size, ny, nx))
    mass = np.empty((ny, nx))
    for iy in range(ny):
        for ix in range(nx):
            k = picks[0, 0] if ix < nx // 2 else picks[1, 1]  # two populations
            p = {n: v[k] for n, v in lib.params.items()}
            p["log_mass"] = mass[iy, ix] = 8.0 + 0.05 * (iy + ix)
            flux[:, iy, ix] = model.photometry(p, Z, FILTERS) / UNIT
            w, f = model.spectrum(p, Z)
            spec[:, iy, ix] = np.interp(wave, w, f) / UNIT * (1.0 - 0.1 * x)
    ferr = flux * 0.03
    serr = spec * 0.03
    flux = flux + rng.normal(0, ferr)
    spec = spec + rng.normal(0, serr)
    cube = SpecPhotCube(FluxCube(flux, ferr, FILTERS, unit=UNIT, z=Z), wave, spec, serr)
    matched = match_imgifs_spectral(cube, lib, model=model)
    binned = bin_pixels(matched.cube, ref_band="sdss_r", min_bin_diameter=2.0, snr_target=60.0,
                        max_reduced_chi2=4.0)
    assert binned.bin_has_spec.any()
    ids = [int(b) + 1 for b in np.flatnonzero(binned.bin_has_spec)[:3]]
    fits_ = fit_binmap(binned, bin_ids=ids, library=lib, model=model, fit_spectra=True,
                       spectral=SpectralOptions(poly_order=3))
    for b in ids:
        res = fits_[b]
        assert res.ok and res.spectrum is not None
        k = res.names.index("log_mass")
        true_mass = np.log10(np.sum(10 ** mass[binned.bin_map == b]))
        assert abs(res.p50[k] - true_mass) < 0.2, (b, res.p50[k], true_mass)


def test_sigma_aa_adds_only_what_the_templates_lack(setup):
    """The model templates have their own resolution (MILES: 2.51 Å FWHM): an instrument
    σ at or below the templates' (times 1+z) adds no broadening; a larger one adds
    √(σ² − σ_t²) (it was applied in full, broadening the models twice)."""
    model, lib, cube, *_ = setup
    plain = match_imgifs_spectral(cube, lib, model=model)
    s_t = float(np.min(model.template_sigma)) * (1 + Z)
    same = match_imgifs_spectral(cube, lib, model=model, sigma_aa=0.9 * s_t)
    np.testing.assert_array_equal(same.model_spec, plain.model_spec)
    wider = match_imgifs_spectral(cube, lib, model=model, sigma_aa=3.0 * s_t)
    assert not np.allclose(wider.model_spec, plain.model_spec, equal_nan=True)


def test_air_cube_is_compared_with_vacuum_models(setup):
    """The same spectra on air wavelengths (wave_medium="air") get the same model spectra
    and correction as on vacuum ones: the models are evaluated at the vacuum wavelengths."""
    from pixedfit.lines import vacuum_to_air

    model, lib, cube, *_ = setup
    air = SpecPhotCube(cube.photometry, np.asarray(vacuum_to_air(cube.wave)), cube.spec_flux,
                       cube.spec_err, wave_medium="air")
    vac = match_imgifs_spectral(cube, lib, model=model)
    res = match_imgifs_spectral(air, lib, model=model)
    assert res.cube.wave_medium == "air"
    np.testing.assert_allclose(res.model_spec, vac.model_spec, rtol=2e-3)
    np.testing.assert_allclose(res.cube.spec_flux, vac.cube.spec_flux, rtol=2e-3)


def test_binned_fits_take_the_medium_of_the_cube(setup):
    """A binned cube whose spectra are in air (SPECMED = 'air', kept from its SpecPhotCube)
    is fitted on the air scale by default: the same χ² as the same spectra on vacuum
    wavelengths; read as vacuum, the models sit 1.6-2 Å off and χ² grows."""
    from pixedfit.binning import bin_with_map
    from pixedfit.fitting import RdspsSettings, SpectralOptions, fit_binmap
    from pixedfit.lines import vacuum_to_air

    model, lib, cube, *_ = setup
    bins = np.array([[1, 2], [1, 2]], np.int32)
    air = SpecPhotCube(cube.photometry, np.asarray(vacuum_to_air(cube.wave)), cube.spec_flux,
                       cube.spec_err, wave_medium="air")
    kwargs = dict(library=lib, model=model, fit_spectra=True, method=RdspsSettings(refine=False),
                  spectral=SpectralOptions(poly_order=3))
    vac_fit = fit_binmap(bin_with_map(cube, bins), **kwargs)
    air_fit = fit_binmap(bin_with_map(air, bins), **kwargs)
    wrong = fit_binmap(bin_with_map(air, bins), spec_medium="vacuum", **kwargs)
    for b in (1, 2):
        assert air_fit[b].chi2_min == pytest.approx(vac_fit[b].chi2_min, rel=1e-6)
        assert wrong[b].chi2_min > 1.5 * vac_fit[b].chi2_min
