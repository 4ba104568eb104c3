"""The leftover bin (pixels that could not reach the S/N target, issue #14): not fitted by
default, or fitted with a flag; the flag map of the property maps, its file round trip,
the plots and the report text."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from pixedfit.analysis.maps import (
    FLAG_BITS,
    FLAG_FAILED,
    FLAG_LEFTOVER,
    FLAG_NOT_CONVERGED,
    FLAG_NOT_FITTED,
    PropertyMaps,
    maps_parameters,
)
from pixedfit.analysis.plots import plot_maps
from pixedfit.binning import bin_with_map
from pixedfit.cubes import BinnedCube, FluxCube, LeftoverWarning
from pixedfit.fitting import RdspsSettings, fit_binmap
from pixedfit.fitting.results import FitResult
from pixedfit.pipeline import load_config

FILTERS = ("sdss_g", "sdss_r", "sdss_i", "sdss_z")
NAMES = ("logzsol", "log_mass", "log_sfr", "log_mw_age")
RANGES = {"log_age": (-1.0, 1.1), "logzsol": (-1.0, 0.2), "dust2": (0.0, 2.0)}


def _bin_map() -> np.ndarray:
    """Two contiguous regular bins in the centre; the leftover (bin 3) is four scattered
    corner pixels, as the binning leaves it on real stamps."""
    bm = np.zeros((6, 6), np.int32)
    bm[1:5, 1:3] = 1
    bm[1:5, 3:5] = 2
    bm[0, 0] = bm[0, 5] = bm[5, 0] = bm[5, 5] = 3
    return bm


def _binned() -> tuple[FluxCube, BinnedCube]:
    rng = np.random.default_rng(4)
    bm = _bin_map()
    flux = np.full((4, 6, 6), 2.0) + rng.uniform(0.0, 1.0, (4, 6, 6))
    edge = bm == 3
    flux[3][edge] = -0.4  # sky-dominated corners: negative summed flux in sdss_z
    flux[:3][:, edge] = 0.1
    err = np.full((4, 6, 6), 0.3)
    cube = FluxCube(flux, err, FILTERS, region=bm > 0, z=0.05, pixel_scale=1.0)
    binned = bin_with_map(cube, bm)
    binned.leftover = np.array([False, False, True])
    return cube, binned


def _result(b: int, converged: bool | None = True, n_used: int = 100) -> FitResult:
    base = np.array([-0.1 * b, 9.0 + 0.1 * b, -0.5 + 0.05 * b, 0.3])
    std = np.array([0.1, 0.05, 0.2, 0.1])
    return FitResult(method="rdsps", names=NAMES, mean=base, std=std, p16=base - std,
                     p50=base, p84=base + std, best=base, filters=FILTERS,
                     obs_flux=np.ones(4), obs_flux_err=np.ones(4) * 0.1,
                     bfit_photo=np.ones(4), z=0.05, chi2_min=1.0, n_used=n_used,
                     converged=converged)


def test_negative_bands():
    _, binned = _binned()
    assert binned.negative_bands(3) == ["sdss_z"]
    assert binned.negative_bands(1) == []
    with pytest.raises(ValueError, match="bin_id"):
        binned.negative_bands(4)


@pytest.fixture(scope="module")
def library(fit_model, fit_library):
    return fit_model, fit_library(300, 2, RANGES)


def test_fit_binmap_leaves_the_leftover_out_unless_asked(library):
    model, lib = library
    _, binned = _binned()
    plain = RdspsSettings(refine=False)
    res = fit_binmap(binned, library=lib, model=model, method=plain)
    assert list(res) == [1, 2]
    with pytest.raises(ValueError, match=r"bin_ids: bin 3 is the leftover bin.*fit_leftover"):
        fit_binmap(binned, bin_ids=[1, 3], library=lib, model=model, method=plain)
    with pytest.warns(LeftoverWarning, match=r"leftover bin 3 \(4 pixels\).*negative.*sdss_z"):
        both = fit_binmap(binned, library=lib, model=model, method=plain, fit_leftover=True)
    assert list(both) == [1, 2, 3]
    # the regular bins do not depend on the leftover option
    np.testing.assert_array_equal(both[1].mean, res[1].mean)
    # a cube that is nothing but a leftover bin says so instead of fitting nothing
    only = BinnedCube(np.ones((2, 2), np.int32), binned.bin_flux[2:], binned.bin_flux_err[2:],
                      FILTERS, leftover=[True], z=0.05, pixel_scale=1.0)
    with pytest.raises(ValueError, match="only the leftover bin"):
        fit_binmap(only, library=lib, model=model, method=plain)


def test_leftover_pixels_are_blank_and_flagged(tmp_path):
    cube, binned = _binned()
    bm = binned.bin_map
    pm = maps_parameters(binned, {1: _result(1), 2: _result(2, converged=False)}, cube)
    left = bm == 3
    for name, arr in pm.maps.items():
        assert np.all(np.isnan(arr[left])), name  # no value, shared out or painted
        assert np.all(np.isfinite(arr[bm == 1])), name
    assert np.all(pm.flags[left] == FLAG_LEFTOVER | FLAG_NOT_FITTED)
    assert np.all(pm.flags[bm == 1] == 0)
    assert np.all(pm.flags[bm == 2] == FLAG_NOT_CONVERGED)
    assert np.all(pm.flags[bm == 0] == 0)
    np.testing.assert_array_equal(pm.bin_flags(), [0, FLAG_NOT_CONVERGED, 9])
    assert pm.flag_summary() == {FLAG_LEFTOVER: (1, 4), FLAG_NOT_CONVERGED: (1, 8),
                                 FLAG_NOT_FITTED: (1, 4)}

    # fitted on request: painted (mass shared out to its pixels) and flagged; a failed fit
    fitted = maps_parameters(binned, {1: _result(1, n_used=0), 2: _result(2),
                                      3: _result(3)}, cube)
    assert np.all(np.isfinite(fitted.maps["pix-log_mass-mean"][left]))
    np.testing.assert_allclose(
        np.log10(np.sum(10 ** fitted.maps["pix-log_mass-mean"][left])), 9.3, rtol=1e-12)
    assert np.all(fitted.flags[left] == FLAG_LEFTOVER)
    assert np.all(fitted.flags[bm == 1] == FLAG_FAILED)


def test_flag_map_round_trip(tmp_path):
    cube, binned = _binned()
    pm = maps_parameters(binned, {1: _result(1), 2: _result(2, converged=False)}, cube,
                         output=tmp_path / "maps.fits")
    back = PropertyMaps.read(tmp_path / "maps.fits")
    np.testing.assert_array_equal(back.flags, pm.flags)
    assert back.flags.dtype == np.int16
    with fits.open(tmp_path / "maps.fits") as hdul:
        hdr = hdul["BIN_FLAG"].header
        for bit, text in FLAG_BITS.items():
            assert hdr[f"FLAGB{bit}"] == text
        np.testing.assert_array_equal(hdul["BIN_TABLE"].data["flag"], [0, 2, 9])
        assert "BIN_FLAG" in [hdul[0].header[f"HDU{i}"]
                              for i in range(1, hdul[0].header["NHDU"] + 1)]
        # a file written before the flag map existed: unfitted bins are still found
        del hdul["BIN_FLAG"]
        hdul.writeto(tmp_path / "old.fits")
    old = PropertyMaps.read(tmp_path / "old.fits")
    np.testing.assert_array_equal(old.flags, np.where(binned.bin_map == 3, FLAG_NOT_FITTED, 0))
    with pytest.raises(ValueError, match="flags"):
        PropertyMaps(pm.maps, pm.region, pm.bin_map, flags=np.full(pm.region.shape, 0.5))
    with pytest.raises(ValueError, match="flags"):
        PropertyMaps(pm.maps, pm.region, pm.bin_map, flags=np.zeros((2, 2), int))


def test_plot_marks_the_leftover():
    cube, binned = _binned()
    pm = maps_parameters(binned, {1: _result(1), 2: _result(2, converged=False)}, cube)
    fig = plot_maps(pm, params=["log_mass", "logzsol"])
    texts = " ".join(t.get_text() for t in fig.texts)
    assert "leftover bin (4 pixels" in texts and "red outline" in texts
    hatched = [c for ax in fig.axes for c in ax.collections
               if "////" in (getattr(c, "hatches", None) or [])]
    assert len(hatched) >= 2  # one per property panel
    plain = plot_maps(pm, params=["log_mass"], flags=False)
    assert not plain.texts


def test_config_key():
    cfg = load_config(config={"images": {"fluxmap": "f.fits"}})
    assert cfg["fitting"]["fit_leftover"] is False
    with pytest.raises(ValueError, match=r"fitting\.fit_leftover"):
        load_config(config={"images": {"fluxmap": "f.fits"}, "fitting": {"fit_leftover": 1}})


def test_report_text_counts_flagged_pixels():
    from pixedfit.analysis.report import _flag_text, _leftover_text

    cube, binned = _binned()
    pm = maps_parameters(binned, {1: _result(1), 2: _result(2, converged=False)}, cube)
    text = _leftover_text(binned, pm)
    assert text.startswith("leftover bin 3: 4 pixels that could not reach the S/N target")
    assert "not fitted, blank in the maps" in text and "negative in sdss_z" in text
    table = _flag_text(pm)
    assert "<td>1</td><td class='wrap'>leftover bin: pixels below the binning S/N target" \
        "</td><td>1</td><td>4</td>" in table
    assert "<td>2</td><td class='wrap'>fit did not converge</td><td>1</td><td>8</td>" in table
    fitted = maps_parameters(binned, {1: _result(1), 2: _result(2), 3: _result(3)}, cube)
    assert "fitted but flagged" in _leftover_text(binned, fitted)
    clean = maps_parameters(binned, {1: _result(1), 2: _result(2), 3: _result(3)}, cube)
    clean.flags[:] = 0
    assert _flag_text(clean) == "<p>No pixel of the maps is flagged.</p>"
