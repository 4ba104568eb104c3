"""The real MUSE sub-cube (HUDF) matched onto a synthetic imaging grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from ifs_synth import tan_wcs
from pixedfit.binning import bin_pixels
from pixedfit.cubes import FluxCube, SpecPhotCube
from pixedfit.filters import add_filter, photometry
from pixedfit.ifs.operators import discrete_gaussian_kernel
from pixedfit.ifs.readers import read_muse
from pixedfit.ifs.spatial import match_imgifs_spatial
from pixedfit.images.align import reproject_image
from pixedfit.images.psf import convolve_image
from pixedfit.lines import air_to_vacuum

MUSE_FILE = Path("muse_udf_subcube") / "subcub_mosaic.fits.gz"
BAND = "muse_tophat_5050"
TARGET_FWHM = 1.2
SHAPE = (10, 10)


@pytest.fixture
def muse(shared_data: Path) -> dict:
    cube = read_muse(shared_data / MUSE_FILE)
    wave = np.linspace(4790.0, 5310.0, 53)
    trans = ((wave > 4800.0) & (wave < 5300.0)).astype(float)
    add_filter(BAND, wave, trans)
    ra, dec = cube.wcs.pixel_to_world_values(14.5, 14.5)
    grid = tan_wcs(0.4, SHAPE, rot=10.0, crval=(float(ra), float(dec)), offset=(0.3, 0.2))
    # imaging synthesised from the cube with the image-processing functions, slice-free:
    # band image of every spaxel, one PSF-matching kernel, exact reprojection
    vac = np.asarray(air_to_vacuum(cube.wave))
    band = photometry(vac, cube.flux.reshape(cube.wave.size, -1).T, BAND)[:, 0]
    band_var = photometry(vac, (cube.err**2).reshape(cube.wave.size, -1).T, BAND)[:, 0]
    psf = float(np.mean(cube.psf_fwhm_per_wave()))
    k = discrete_gaussian_kernel(np.sqrt(TARGET_FWHM**2 - psf**2) / cube.pixel_scale)
    conv, var = convolve_image(band.reshape(30, 30), band_var.reshape(30, 30), k)
    img, ivar = reproject_image(conv, cube.wcs, grid, SHAPE, variance=var)
    hdr = fits.Header()
    hdr["PSFFWHM"] = TARGET_FWHM
    phot = FluxCube(img[None] / 1e-20, np.sqrt(ivar)[None] / 1e-20, [BAND], unit=1e-20,
                    wcs=grid, header=hdr, pixel_scale=0.4)
    return {"cube": cube, "phot": phot, "kernel": k}


def test_muse_matches_with_the_image_kernel_exactly(muse: dict) -> None:
    sp = match_imgifs_spatial(muse["phot"], muse["cube"], kernels=muse["kernel"])
    assert sp.spec_region.all()  # the grid lies inside the MUSE field
    p = photometry(sp.wave, sp.spec_flux.reshape(sp.nwave, -1).T, BAND)[:, 0]
    np.testing.assert_allclose(p.reshape(SHAPE), muse["phot"].flux[0], rtol=1e-6,
                               atol=1e-6 * np.abs(muse["phot"].flux[0]).max())


def test_muse_per_wavelength_psf_produces_valid_cube(muse: dict, tmp_path: Path) -> None:
    path = tmp_path / "muse_specphoto.fits"
    sp = match_imgifs_spatial(muse["phot"], muse["cube"], output=path)
    assert sp.ifs_survey == "muse" and sp.photometry.header["SPECMED"] == "vacuum"
    assert np.all(np.isfinite(sp.spec_flux)) and np.all(sp.spec_err > 0)
    # FSF varies 0.705" → 0.686": per-channel kernels differ little from the mean one
    p = photometry(sp.wave, sp.spec_flux.reshape(sp.nwave, -1).T, BAND)[:, 0]
    img = muse["phot"].flux[0].ravel()
    assert p.sum() / img.sum() == pytest.approx(1.0, abs=0.01)
    assert np.max(np.abs(p - img)) < 0.02 * np.max(np.abs(img))
    # noise: matched pixels average ~ (kernel + regrid) many spaxels, so their errors are
    # far below the native ones but consistent with the scatter between channels
    native = np.nanmedian(muse["cube"].err) / 1e-20
    assert np.median(sp.spec_err) < native
    resid = np.diff(sp.spec_flux, axis=0) / np.sqrt(sp.spec_err[1:] ** 2 + sp.spec_err[:-1] ** 2)
    assert 0.7 < np.std(resid) < 1.3
    back = SpecPhotCube.read(path)
    np.testing.assert_allclose(back.spec_flux, sp.spec_flux)
    assert back.ifs_survey == "muse"
    binned = bin_pixels(back, ref_band=0, min_bin_diameter=2.0, snr_target=[20.0])
    assert binned.nbins >= 1 and binned.bin_has_spec.all()
