"""Template resolution of SSP grids (pixedfit.sps.resolution)."""

from __future__ import annotations

import numpy as np
import pytest

from pixedfit.sps.resolution import FWHM_TO_SIGMA, MILES_FWHM_AA, MILES_RANGE_AA, template_fwhm


def test_miles_range_and_nyquist_elsewhere():
    wave = np.concatenate([np.arange(3000.0, 3540.0, 0.5), np.arange(3540.0, 7400.0, 0.9),
                           np.arange(7400.0, 9000.0, 10.0)])
    fwhm = template_fwhm(wave, "BC03 (2016 MILES update)")
    inside = (wave > MILES_RANGE_AA[0] + 5) & (wave < MILES_RANGE_AA[1] - 5)
    np.testing.assert_allclose(fwhm[inside], MILES_FWHM_AA)
    np.testing.assert_allclose(fwhm[wave < 3500], 1.0)  # 2 x 0.5 A steps
    np.testing.assert_allclose(fwhm[wave > 7500], 20.0)
    # an unknown library: the sampling alone
    other = template_fwhm(wave, "some library")
    np.testing.assert_allclose(other[inside], 1.8)
    assert FWHM_TO_SIGMA == pytest.approx(1 / 2.3548, rel=1e-4)


def test_bad_grid():
    with pytest.raises(ValueError, match="increasing"):
        template_fwhm([3.0, 2.0, 1.0], "miles")


def test_model_exposes_its_template_resolution():
    from pixedfit.sps import SEDModel

    model = SEDModel()
    sigma = model.template_sigma
    assert sigma.shape == model.wave.shape
    k = np.searchsorted(model.wave, 5000.0)
    assert sigma[k] == pytest.approx(MILES_FWHM_AA * FWHM_TO_SIGMA)
