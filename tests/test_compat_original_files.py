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
