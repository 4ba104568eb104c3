"""compat wrappers on files in the original piXedfit layouts (golden files)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from pixedfit import compat
from pixedfit.library import read_library

GOLDEN = Path(__file__).parent / "data" / "golden"


def _plain(name: str, tmp_path: Path) -> Path:
    out = tmp_path / name.removesuffix(".gz")
    out.write_bytes(gzip.decompress((GOLDEN / name).read_bytes()))
    return out


def test_plot_sfh_mcmc_takes_the_sfh_form_of_an_original_library(tmp_path):
    """A fit file without SFH_FORM and a library in the original's layout (whose
    config holds no sfh_form: the file's /mod attribute is in original_attrs)."""
    fit_file = _plain("orig_mcmc.fits.gz", tmp_path)
    library = _plain("orig_library.h5.gz", tmp_path)
    with fits.open(fit_file) as hdul:
        form = int(hdul[0].header["SFH_FORM"])
        del hdul[0].header["SFH_FORM"]
        hdul.writeto(tmp_path / "no_form.fits")
    lib = read_library(library, spectra=False)
    assert lib.config["sfh_form"] is None and lib.original_attrs["sfh_form"] == form
    want = compat.plot_sfh_mcmc(fit_file, name_plot=tmp_path / "a.png")
    got = compat.plot_sfh_mcmc(tmp_path / "no_form.fits", models_spec=library,
                               name_plot=tmp_path / "b.png")
    for a, b in zip(want, got, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="SFH form"):
        compat.plot_sfh_mcmc(tmp_path / "no_form.fits", name_plot=tmp_path / "c.png")


def test_fits_with_an_original_library_write_its_model_cards(tmp_path):
    """write_pixedfit of a fit made with a library in the original's layout gives the
    library's SFH form and IMF (the original's plot_sfh_mcmc needs SFH_FORM)."""
    from pixedfit.fitting import ErrorModel, RdspsSettings, fit_sed

    lib = read_library(_plain("orig_library.h5.gz", tmp_path))
    filters = ["sdss_g", "sdss_r", "sdss_i", "2mass_j"]
    phot = lib.photometry(filters, 0.05)
    flux = phot.flux[0, :, 3]
    res = fit_sed(flux, 0.05 * flux, filters, z=0.05, library=lib,
                  method=RdspsSettings(refine=False),
                  errors=ErrorModel(calibration=False))
    res.write_pixedfit(tmp_path / "fit.fits")
    header = fits.getheader(tmp_path / "fit.fits")
    assert header["SFH_FORM"] == lib.original_attrs["sfh_form"] >= 0
    assert header["IMF"] == lib.original_attrs["imf_type"]
    assert lib.config["sfh_form"] is None  # the library itself is unchanged
