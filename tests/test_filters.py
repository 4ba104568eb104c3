"""Filter library: names, curves, user filters that persist, and clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pixedfit import filters

ALIASES = Path(filters.__file__).with_name("data") / "filter_aliases.tsv"
REFERENCE_TSV = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "reference"
    / "filters_pixedfit_to_sedpy.tsv"
)


# Names added by pixedfit for bands with an instrument entry that piXedfit did not map.
PIXEDFIT_ONLY = {
    "hst_wfc3_uvis_f475w": "wfc3_uvis_f475w", "hst_wfc3_uvis_f555w": "wfc3_uvis_f555w",
    "hst_wfc3_uvis_f606w": "wfc3_uvis_f606w", "hst_wfc3_uvis_f814w": "wfc3_uvis_f814w",
    "jwst_nircam_f150w2": "jwst_f150w2", "jwst_nircam_f322w2": "jwst_f322w2",
}


def _alias_table() -> dict[str, str]:
    rows = [ln.split("\t") for ln in ALIASES.read_text().splitlines() if not ln.startswith("#")]
    return {pix: sed for pix, sed in rows[1:]}


def test_every_mapped_pixedfit_name_resolves_to_its_sedpy_curve():
    table = _alias_table()
    assert len(table) == 180 + len(PIXEDFIT_ONLY)
    available = set(filters.list_filters())
    for pix, sed in table.items():
        assert pix in available and sed in available
        w1, t1 = filters.get_filter_curve(pix)
        w2, t2 = filters.get_filter_curve(sed)
        np.testing.assert_array_equal(w1, w2)
        np.testing.assert_array_equal(t1, t2)
        assert np.all(np.diff(w1) > 0) and np.all(t1 >= 0) and t1.max() > 0


def test_alias_table_matches_the_reference_mapping():
    if not REFERENCE_TSV.exists():
        pytest.skip(f"reference mapping not found at {REFERENCE_TSV}")
    expected = {}
    for line in REFERENCE_TSV.read_text().splitlines()[1:]:
        cols = line.split("\t")
        if cols[1]:
            expected[cols[0]] = cols[1]
    assert _alias_table() == {**expected, **PIXEDFIT_ONLY}


def test_pivot_wavelengths_match_the_reference_mean_wavelengths():
    # The reference table lists sedpy's mean wavelengths; pivots are close to them (<3 %)
    # for every broadband filter, and sdss_u gets its real pivot (3557 Å), not the
    # original's stored typo 3351 Å.
    names = ["galex_fuv", "galex_nuv", "sdss_u", "sdss_g", "sdss_r", "sdss_i", "sdss_z",
             "2mass_j", "2mass_h", "2mass_k", "wise_w1", "wise_w2", "wise_w3", "wise_w4"]
    piv = filters.cwave_filters(names)
    assert piv.shape == (14,)
    assert abs(filters.cwave_filters("sdss_u") - 3557.0) < 5.0
    mean_wave = {}
    for name in names:
        w, t = filters.get_filter_curve(name)
        mean_wave[name] = np.trapezoid(w * t, w) / np.trapezoid(t, w)
    for name, p in zip(names, piv, strict=True):
        assert abs(p / mean_wave[name] - 1) < 0.03, name


def test_pivot_of_a_box_filter_is_analytic():
    a, b = 4000.0, 6000.0
    expected = np.sqrt((b**2 - a**2) / 2 / np.log(b / a))
    assert filters.pivot_wavelength([a, b], [1.0, 1.0]) == pytest.approx(expected, rel=1e-12)
    # A linear ramp: compare with a fine numerical integral.
    w = np.array([3000.0, 5000.0])
    t = np.array([0.2, 1.0])
    x = np.linspace(3000, 5000, 200001)
    tx = np.interp(x, w, t)
    num = np.trapezoid(tx * x, x) / np.trapezoid(tx / x, x)
    assert filters.pivot_wavelength(w, t) == pytest.approx(np.sqrt(num), rel=1e-9)


def test_builtin_pivots_are_computed_once_and_a_user_curve_of_the_same_name_wins(tmp_path):
    """The pivot of a built-in curve is cached (a catalogue fit asks once per SED): the
    same bits as computing it from the curve, and a user filter added under a built-in
    name gets its own pivot, not the cached one."""
    curve = filters.get_filter_curve("sdss_g")
    direct = filters.pivot_wavelength(*curve)
    assert filters.cwave_filters("sdss_g") == direct
    assert filters.cwave_filters(["sdss_g", "sdss_g"]).tolist() == [direct, direct]
    wave, trans = np.array([6400.0, 6500.0, 6600.0]), np.array([0.0, 1.0, 0.0])
    filters.add_filter("sdss_g", wave, trans, overwrite=True, data_dir=tmp_path)
    assert (filters.cwave_filters("sdss_g", data_dir=tmp_path)
            == filters.pivot_wavelength(wave, trans))
    assert filters.cwave_filters("sdss_g") == direct


def test_unknown_filter_suggests_close_matches_and_add_filter():
    with pytest.raises(filters.UnknownFilterError, match=r"sdss_r.*add_filter"):
        filters.get_filter_curve("sdss_rr")
    with pytest.raises(filters.UnknownFilterError, match="galex_fuv"):
        filters.cwave_filters(["sdss_g", "galex_fvu"])
    with pytest.raises(ValueError, match="unknown filter"):
        filters.photometry(np.linspace(1000, 10000, 100), np.ones(100), ["nope"])


def test_add_get_rename_remove_roundtrip(tmp_path):
    wave = np.array([6400.0, 6500.0, 6600.0, 6700.0])
    trans = np.array([0.0, 0.9, 1.0, 0.0])
    filters.add_filter("my_nb", wave, trans)
    assert "my_nb" in filters.list_filters()
    w, t = filters.get_filter_curve("my_nb")
    np.testing.assert_array_equal(w, wave)
    np.testing.assert_array_equal(t, trans)
    assert filters.cwave_filters("my_nb") == pytest.approx(filters.pivot_wavelength(wave, trans))
    with pytest.raises(ValueError, match="already exists"):
        filters.add_filter("my_nb", wave, trans)
    filters.add_filter("my_nb", wave, trans * 2, cwave=6550.0, overwrite=True)
    assert filters.cwave_filters("my_nb") == 6550.0

    filters.rename_filter("my_nb", "my_halpha")
    assert "my_nb" not in filters.list_filters()
    assert filters.cwave_filters("my_halpha") == 6550.0
    filters.remove_filter("my_halpha")
    assert "my_halpha" not in filters.list_filters()
    with pytest.raises(filters.UnknownFilterError):
        filters.remove_filter("my_halpha")


def test_builtin_filters_can_be_renamed_and_hidden_without_touching_site_packages():
    ref = filters.get_filter_curve("sdss_r")
    filters.rename_filter("sdss_r", "r_sdss")
    np.testing.assert_array_equal(filters.get_filter_curve("r_sdss")[1], ref[1])
    with pytest.raises(filters.UnknownFilterError):
        filters.get_filter_curve("sdss_r")
    # The sedpy name is a separate name and still resolves.
    np.testing.assert_array_equal(filters.get_filter_curve("sdss_r0")[1], ref[1])
    filters.remove_filter("r_sdss")
    assert "r_sdss" not in filters.list_filters()
    filters.remove_filter("galex_FUV")
    assert "galex_FUV" not in filters.list_filters()
    assert "galex_fuv" in filters.list_filters()


def test_explicit_data_dir_argument(tmp_path):
    filters.add_filter("only_here", [5000, 5100, 5200], [0, 1, 0], data_dir=tmp_path)
    assert "only_here" in filters.list_filters(data_dir=tmp_path)
    assert "only_here" not in filters.list_filters()
    assert (tmp_path / "filters.json").exists()


def test_user_filters_persist_across_processes(tmp_path):
    env = dict(os.environ, PIXEDFIT_DATA_DIR=str(tmp_path))
    code_add = (
        "from pixedfit import filters;"
        "filters.add_filter('persist_me', [7000, 7100, 7200], [0, 1, 0]);"
        "filters.rename_filter('sdss_g', 'g_band');"
        "filters.remove_filter('sdss_z')"
    )
    subprocess.run([sys.executable, "-c", code_add], env=env, check=True)
    code_check = (
        "from pixedfit import filters; n = set(filters.list_filters());"
        "print('persist_me' in n, 'g_band' in n, 'sdss_g' in n, 'sdss_z' in n)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code_check], env=env, check=True, capture_output=True, text=True
    )
    assert out.stdout.split() == ["True", "True", "False", "False"]


@pytest.mark.parametrize(
    ("wave", "trans", "match"),
    [
        ([5000, 4900, 5100], [0, 1, 0], "strictly increasing"),
        ([5000, 5000, 5100], [0, 1, 0], "strictly increasing"),
        ([5000, np.nan, 5100], [0, 1, 0], "NaN"),
        ([5000, 5050, 5100], [0, np.inf, 0], "NaN"),
        ([5000, 5050, 5100], [0, -0.1, 0], ">= 0"),
        ([5000, 5050, 5100], [0, 1], "different lengths"),
        ([5000, 5050, 5100], [0, 0, 0], "zero everywhere"),
        ([5000], [1], "at least 2"),
        ([-5, 5050, 5100], [0, 1, 0], "> 0"),
    ],
)
def test_add_filter_rejects_bad_curves(wave, trans, match):
    with pytest.raises(ValueError, match=match):
        filters.add_filter("bad_curve", wave, trans)
    assert "bad_curve" not in filters.list_filters()


@pytest.mark.parametrize("name", ["", "has space", "a/b", 3])
def test_add_filter_rejects_bad_names(name):
    with pytest.raises(ValueError, match="filter names"):
        filters.add_filter(name, [5000, 5100, 5200], [0, 1, 0])


def test_rename_to_existing_name_is_refused():
    with pytest.raises(ValueError, match="exists"):
        filters.rename_filter("sdss_g", "sdss_r")


def test_corrupt_registry_gives_a_clear_error(tmp_path):
    (tmp_path / "filters.json").write_text("{ not json")
    with pytest.raises(ValueError, match="unreadable"):
        filters.list_filters(data_dir=tmp_path)
