"""Pixel binning: invariants (hypothesis), the original's trap case, agreement with the
reference re-implementation of the original, parameters and validation."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage

import pixedfit
from pixedfit import _core
from pixedfit.binning import (
    BinnedCube,
    bin_pixels,
    bin_with_map,
    reduced_chi2,
    systematic_error_factor,
)
from pixedfit.cubes import FluxCube

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / \
    "original_algorithms"


def check_invariants(cube: FluxCube, res: BinnedCube, snr, chi2_limit: float,
                     connected: bool) -> None:
    """The properties every binning must have (see the binning module docstring)."""
    bm = res.bin_map
    nb = res.nbins
    # every region pixel in exactly one bin, nothing outside, ids 1..nbins without gaps
    assert np.all(bm[cube.region] >= 1) and np.all(bm[~cube.region] == 0)
    assert set(np.unique(bm[cube.region])) == set(range(1, nb + 1))
    # at most one leftover bin, the last one
    assert res.leftover.sum() <= 1
    if res.leftover.any():
        assert res.leftover[-1] and res.leftover_bin == nb
    else:
        assert res.leftover_bin == 0
    # bin SED = sum of the pixel SEDs, errors in quadrature
    for k in range(1, nb + 1):
        pix = bm == k
        np.testing.assert_allclose(res.bin_flux[k - 1], cube.flux[:, pix].sum(axis=1),
                                   rtol=1e-10, atol=1e-12 * np.abs(cube.flux[:, pix]).sum())
        np.testing.assert_allclose(res.bin_flux_err[k - 1],
                                   np.sqrt((cube.flux_err[:, pix] ** 2).sum(axis=1)), rtol=1e-10)
    thr = np.broadcast_to(np.asarray(5.0 if snr is None else snr, float), (cube.nbands,))
    k_sys = res.sys_err_factor
    for k in np.flatnonzero(~res.leftover) + 1:
        # S/N reached in every band with a requirement (exactly as the kernel decided)
        s = res.bin_snr[k - 1]
        assert np.all((s >= thr) | (thr == 0)), (k, s, thr)
        # every pixel passes the shape test against the bin's seed
        sy, sx = res.seed[k - 1]
        assert bm[sy, sx] == k
        ys, xs = np.nonzero(bm == k)
        f1 = cube.flux[:, sy, sx]
        s1 = np.hypot(cube.flux_err[:, sy, sx], k_sys * f1)
        f2 = cube.flux[:, ys, xs].T
        s2 = np.hypot(cube.flux_err[:, ys, xs], k_sys * cube.flux[:, ys, xs]).T
        chi = np.atleast_1d(reduced_chi2(f1, s1, f2, s2))
        assert np.all(chi <= chi2_limit * (1 + 1e-9) + 1e-12), (k, chi.max())
        assert np.all(res.pixel_chi2[ys, xs] <= chi2_limit)
        if connected:
            _, ncomp = ndimage.label(bm == k)  # 4-connectivity (the stricter one)
            assert ncomp == 1, (k, ncomp)


# ------------------------------------------------------------------ property tests


@st.composite
def cubes(draw):
    nb = draw(st.integers(1, 5))
    ny = draw(st.integers(1, 14))
    nx = draw(st.integers(1, 14))
    seed = draw(st.integers(0, 2**31 - 1))
    kind = draw(st.sampled_from(["random", "gradient", "constant", "twoseds", "sparse",
                                 "dynamic"]))
    rng = np.random.default_rng(seed)
    err = rng.uniform(0.2, 2.0, (nb, ny, nx))
    if kind == "random":
        flux = rng.normal(draw(st.floats(-2, 20)), draw(st.floats(0.1, 10)), (nb, ny, nx))
    elif kind == "gradient":  # bright centre, faint (partly negative) outskirts
        yy, xx = np.mgrid[0:ny, 0:nx]
        prof = 50 * np.exp(-np.hypot(yy - ny / 2, xx - nx / 2) / 2)
        flux = prof[None] * rng.uniform(0.2, 1.5, nb)[:, None, None]
        flux = flux + rng.normal(0, 1, flux.shape) * err
    elif kind == "constant":  # ties everywhere
        flux = np.full((nb, ny, nx), draw(st.sampled_from([0.0, 1.0, 7.0])))
        err = np.ones_like(flux)
    elif kind == "twoseds":  # two SED shapes in a checkerboard-like pattern
        sed_a = np.geomspace(0.1, 10, nb)
        sed_b = sed_a[::-1]
        pick = rng.random((ny, nx)) < 0.5
        flux = np.where(pick[None], sed_a[:, None, None], sed_b[:, None, None]) * 10
        flux = flux + rng.normal(0, 0.1, flux.shape)
    elif kind == "dynamic":  # 20 decades of flux, signs mixed, tiny and huge errors
        flux = 10.0 ** rng.uniform(-10, 10, (nb, ny, nx)) * rng.choice([-1, 1], (nb, ny, nx))
        err = np.abs(flux) * 10.0 ** rng.uniform(-3, 1, flux.shape) + 1e-12
    else:  # mostly empty with a few bright isolated pixels
        flux = rng.normal(0, 1, (nb, ny, nx))
        for _ in range(3):
            flux[:, rng.integers(ny), rng.integers(nx)] += rng.uniform(5, 100)
    region_kind = draw(st.sampled_from(["all", "random", "holes"]))
    if region_kind == "all":
        region = np.ones((ny, nx), bool)
    elif region_kind == "random":
        region = rng.random((ny, nx)) < 0.7
    else:
        region = np.ones((ny, nx), bool)
        region[::3, ::2] = False
    if not region.any():
        region[ny // 2, nx // 2] = True
    return FluxCube(flux, err, [f"b{i}" for i in range(nb)], region=region)


params = st.fixed_dictionaries({
    "min_bin_diameter": st.sampled_from([0.0, 1.0, 2.5, 4.0, 6.0]),
    "del_r": st.sampled_from([0.5, 1.0, 2.0, 3.0]),
    "snr_target": st.one_of(st.none(), st.floats(0.0, 12.0)),
    "max_reduced_chi2": st.sampled_from([0.3, 1.0, 4.0, 20.0]),
    "connected": st.booleans(),
    "absorb_leftover": st.booleans(),
})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cube=cubes(), p=params)
def test_invariants_hold(cube, p):
    before = (cube.flux.copy(), cube.flux_err.copy())
    res = bin_pixels(cube, **p)
    np.testing.assert_array_equal(cube.flux, before[0])  # the input is never modified
    np.testing.assert_array_equal(cube.flux_err, before[1])
    check_invariants(cube, res, p["snr_target"], p["max_reduced_chi2"], p["connected"])


@settings(max_examples=40, deadline=None)
@given(cube=cubes(), per_band=st.lists(st.sampled_from([0.0, 2.0, 5.0]), min_size=5,
                                       max_size=5))
def test_invariants_per_band_snr(cube, per_band):
    snr = per_band[: cube.nbands]
    res = bin_pixels(cube, snr_target=snr, min_bin_diameter=2.0, del_r=1.0)
    check_invariants(cube, res, snr, 4.0, True)


def test_deterministic_and_thread_independent():
    rng = np.random.default_rng(3)
    flux = rng.normal(3, 2, (4, 40, 40))
    err = rng.uniform(0.5, 1, flux.shape)
    cube = FluxCube(flux, err, ["a", "b", "c", "d"])
    r1 = bin_pixels(cube, threads=1)
    r2 = bin_pixels(cube, threads=2)
    r3 = bin_pixels(cube, threads=1)
    for a, b in ((r1, r2), (r1, r3)):
        assert np.array_equal(a.bin_map, b.bin_map)
        assert np.array_equal(a.bin_flux, b.bin_flux)


# ------------------------------------------------------------------ the trap case


def _trap_cube() -> FluxCube:
    """Bright red blob (first seed); an isolated faint red pixel (S/N 4) cut off by a ring
    of non-region pixels; everything else blue with S/N 10 per pixel. The original loops
    forever on it (spec §1, peer runs)."""
    nb, n = 12, 30
    red = np.geomspace(0.01, 1.0, nb)
    blue = red[::-1]
    y, x = np.mgrid[0:n, 0:n]
    flux = np.repeat(blue[:, None, None], n * n, axis=1).reshape(nb, n, n).copy()
    err = 0.1 * flux
    blob = np.hypot(x - 7, y - 7) <= 3
    flux[:, blob] = 100.0 * red[:, None]
    err[:, blob] = 0.01 * flux[:, blob] + 0.01
    flux[:, 22, 22] = 10.0 * red
    err[:, 22, 22] = 2.5 * red
    ring = np.hypot(x - 22, y - 22)
    region = ~((ring >= 1) & (ring <= 2.5))
    return FluxCube(flux, err, [f"b{i}" for i in range(nb)], region=region)


@pytest.mark.parametrize("connected", [True, False])
def test_trap_terminates(connected):
    cube = _trap_cube()
    res = bin_pixels(cube, ref_band=6, connected=connected)
    check_invariants(cube, res, None, 4.0, connected)
    k = res.bin_map[22, 22]
    assert res.leftover[k - 1]  # the isolated pixel can never reach S/N: leftover
    assert res.bin_npix[k - 1] == 1
    assert res.params["n_failed_seeds"] >= 1


def test_max_radius_bounds_growth():
    cube = _trap_cube()
    res = bin_pixels(cube, ref_band=6, connected=False, max_radius=3.0)
    check_invariants(cube, res, None, 4.0, False)
    for k in np.flatnonzero(~res.leftover) + 1:
        sy, sx = res.seed[k - 1]
        ys, xs = np.nonzero(res.bin_map == k)
        assert np.hypot(ys - sy, xs - sx).max() <= 3.0 + 2.0  # last ring starts < 3


# ------------------------------------------------------------------ against the original


@pytest.fixture(scope="module")
def reference():
    if not (REFERENCE / "ref_binning.py").is_file():
        pytest.skip(f"reference implementation not found at {REFERENCE}")
    sys.path.insert(0, str(REFERENCE))
    try:
        import make_cube
        import ref_binning
    finally:
        sys.path.remove(str(REFERENCE))
    return make_cube, ref_binning


@pytest.mark.parametrize(("npix", "noise", "snr"), [(100, 1.0, None), (100, 4.0, None),
                                                     (100, 1.0, 10.0)])
def test_original_mode_reproduces_original(reference, npix, noise, snr):
    """connected=False, no first-circle test nor absorption, negative-replaced fluxes, the
    original's factor:
    the bin map equals the original's (its reference re-implementation) exactly."""
    make_cube, ref_binning = reference
    flux, err, region, filters = make_cube.make_fluxmap(npix, seed=1, noise=noise)
    snr_list = None if snr is None else [snr] * 12
    bm, bf, _, info = ref_binning.original_binning(flux, err, region, 4, SNR=snr_list,
                                                   return_info=True)
    cube = FluxCube(info["flux_replaced"], err, filters, region=region)
    res = bin_pixels(cube, ref_band=4, snr_target=snr, connected=False,
                     shape_test_first_circle=False, absorb_leftover=False,
                     sys_err_factor=info["factor"])
    assert np.array_equal(res.bin_map, bm)
    np.testing.assert_allclose(res.bin_flux, bf, rtol=1e-12)
    assert res.leftover[-1]


def test_default_mode_on_synthetic_cube(reference):
    make_cube, _ = reference
    flux, err, region, filters = make_cube.make_fluxmap(100, seed=1)
    cube = FluxCube(flux, err, filters, region=region)
    res = bin_pixels(cube, ref_band=4)
    check_invariants(cube, res, None, 4.0, True)
    assert res.nbins > 50
    # the input flux has negative pixels: bins are sums of the real, unreplaced values
    assert np.any(cube.flux[:, region] < 0)


# ------------------------------------------------------------------ parameters


def _small_cube(seed: int = 0, nb: int = 5) -> FluxCube:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:20, 0:24]
    prof = 30 * np.exp(-np.hypot(yy - 10, xx - 12) / 3)
    flux = prof[None] * np.linspace(0.5, 1.5, nb)[:, None, None]
    err = np.full(flux.shape, 1.0)
    flux = flux + rng.normal(0, 1, flux.shape)
    return FluxCube(flux, err, [f"f{i}" for i in range(nb)], z=0.05, pixel_scale=0.5)


def test_ref_band_default_name_and_snr_forms():
    cube = _small_cube()
    a = bin_pixels(cube)
    assert a.params["ref_band"] == 2
    b = bin_pixels(cube, ref_band="f2")
    assert np.array_equal(a.bin_map, b.bin_map)
    c = bin_pixels(cube, snr_target=[5, 5, 5, 5, 5])
    assert np.array_equal(a.bin_map, c.bin_map)
    d = bin_pixels(cube, snr_target=5.0)
    assert np.array_equal(a.bin_map, d.bin_map)
    # zero = no requirement in that band
    e = bin_pixels(cube, snr_target=[0, 0, 0, 0, 8])
    check_invariants(cube, e, [0, 0, 0, 0, 8], 4.0, True)
    assert np.all(e.bin_snr[~e.leftover, 4] >= 8)


def test_no_requirement_gives_first_circles():
    cube = _small_cube()
    res = bin_pixels(cube, snr_target=0, min_bin_diameter=0.0)
    assert res.nbins == cube.npix_region and not res.leftover.any()  # one pixel per bin
    res = bin_pixels(cube, snr_target=0, min_bin_diameter=3.0, max_reduced_chi2=np.inf)
    assert res.bin_npix.max() <= 9 and not res.leftover.any()


def test_systematic_factor():
    cube = _small_cube()
    k = systematic_error_factor(cube)
    assert 0.01 <= k <= 1.0
    assert abs(k / 0.01 - round(k / 0.01)) < 1e-9
    # identical shapes (noise-free): the first step passes
    flux = np.ones((4, 5, 5)) * np.arange(1, 5)[:, None, None]
    same = FluxCube(flux, np.full(flux.shape, 0.1), list("abcd"))
    assert systematic_error_factor(same) == 0.01
    single = FluxCube(np.ones((3, 1, 1)), np.ones((3, 1, 1)), list("abc"))
    assert systematic_error_factor(single) == 0.01


def test_reduced_chi2_matches_kernel_and_analytic():
    f1 = np.array([1.0, 2.0, 3.0])
    s = np.array([0.1, 0.1, 0.1])
    assert reduced_chi2(f1, s, 2 * f1, s) == pytest.approx(0.0, abs=1e-20)  # same shape
    f2 = np.array([1.0, 2.0, 4.0])
    val = reduced_chi2(f1, s, f2, s)
    assert val == pytest.approx(_core.shape_reduced_chi2(f1, s, f2, s), rel=1e-14)
    a = np.sum(f1 * f2) / np.sum(f1 * f1)
    assert val == pytest.approx(np.sum((f2 - a * f1) ** 2) / 0.02 / 3, rel=1e-12)


def test_kernel_result_is_a_read_only_object():
    cube = _small_cube(1)
    out = _core.bin_pixels(cube.flux, cube.flux_err, cube.region.astype(np.uint8), 0,
                           np.full(cube.nbands, 5.0), 1.0, 2.0, 4.0, 0.0, 0.0, True, True,
                           True)
    assert isinstance(out, _core.BinPixelsResult)
    assert out.bin_map.shape == cube.flux.shape[1:] and out.bin_map.dtype == np.int32
    nbins = int(out.bin_map.max())
    assert out.bin_flux.shape == out.bin_var.shape == (nbins, cube.nbands)
    assert out.seed.shape == (nbins,) and out.pixel_chi2.shape == cube.flux.shape[1:]
    assert isinstance(out.has_leftover, bool) and out.n_failed_seeds >= 0
    with pytest.raises(AttributeError):
        out.bin_map = None


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"del_r": 0}, ValueError, "del_r"),
        ({"min_bin_diameter": -1}, ValueError, "min_bin_diameter"),
        ({"snr_target": [5, 5]}, ValueError, "snr_target"),
        ({"snr_target": -1}, ValueError, "snr_target"),
        ({"snr_target": "high"}, TypeError, "snr_target"),
        ({"max_reduced_chi2": 0}, ValueError, "max_reduced_chi2"),
        ({"max_reduced_chi2": np.nan}, ValueError, "max_reduced_chi2"),
        ({"ref_band": 9}, ValueError, "band index"),
        ({"ref_band": "nope"}, ValueError, "nope"),
        ({"sys_err_factor": -0.1}, ValueError, "sys_err_factor"),
        ({"max_radius": 0}, ValueError, "max_radius"),
        ({"threads": 1.5}, TypeError, "threads"),
    ],
)
def test_bad_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        bin_pixels(_small_cube(), **kwargs)


def test_bad_cube_type():
    with pytest.raises(TypeError, match="cube"):
        bin_pixels(np.ones((3, 4, 4)))


def test_public_names():
    assert pixedfit.BinnedCube is BinnedCube
    assert pixedfit.binning.bin_pixels is bin_pixels
    res = pixedfit.binning.bin_pixels(_small_cube())
    assert res.bin_map.dtype.kind == "i" and res.bin_map.shape == (20, 24)
    assert res.bin_flux.shape == (res.nbins, 5) and res.bin_flux_err.shape == (res.nbins, 5)


def test_bin_with_map_reproduces_sums():
    cube = _small_cube()
    res = bin_pixels(cube)
    again = bin_with_map(cube, res.bin_map)
    np.testing.assert_allclose(again.bin_flux, res.bin_flux, rtol=1e-12)
    np.testing.assert_allclose(again.bin_flux_err, res.bin_flux_err, rtol=1e-12)
    with pytest.raises(ValueError, match="gaps"):
        bin_with_map(cube, np.where(res.bin_map == 1, 0, res.bin_map))
    with pytest.raises(ValueError, match="shape"):
        bin_with_map(cube, res.bin_map[:-1])


def test_invariant_checker_detects_violations():
    """The checker used above fails on corrupted results (guards against a vacuous test)."""
    cube = _small_cube()
    res = bin_pixels(cube)
    check_invariants(cube, res, None, 4.0, True)
    moved = BinnedCube(res.bin_map.copy(), res.bin_flux, res.bin_flux_err, res.filters,
                       leftover=res.leftover, seed=res.seed, pixel_chi2=res.pixel_chi2,
                       params=res.params)
    ys, xs = np.nonzero(res.bin_map == 1)
    moved.bin_map[ys[0], xs[0]] = 2  # one pixel changes bin: sums no longer match
    with pytest.raises(AssertionError):
        check_invariants(cube, moved, None, 4.0, True)
    loose = bin_pixels(cube, snr_target=20, connected=False, max_reduced_chi2=50)
    with pytest.raises(AssertionError):
        check_invariants(cube, loose, 20, 1.0, False)  # a tighter limit than used


def test_absorption_shrinks_leftover_and_keeps_invariants(reference):
    make_cube, _ = reference
    flux, err, region, filters = make_cube.make_fluxmap(100, seed=1)
    cube = FluxCube(flux, err, filters, region=region)
    without = bin_pixels(cube, ref_band=4, absorb_leftover=False)
    with_ = bin_pixels(cube, ref_band=4)
    check_invariants(cube, without, None, 4.0, True)
    check_invariants(cube, with_, None, 4.0, True)
    left = [int(r.bin_npix[-1]) if r.leftover.any() else 0 for r in (without, with_)]
    assert left[1] < left[0]
    assert with_.params["n_absorbed"] == left[0] - left[1]
    # absorption only adds pixels to bins: bins created by the growth keep their seeds
    assert np.array_equal(with_.seed[: without.nbins - 1], without.seed[: without.nbins - 1])


@pytest.mark.parametrize("connected", [True, False])
def test_trap_without_excluded_ring(connected):
    """The peer-run trap: an isolated red pixel (S/N 4) amid blue pixels of S/N 10, no
    region cut. Nothing similar can ever join it; the original grew its radius forever."""
    nb, n = 12, 40
    red = np.geomspace(0.01, 1.0, nb)
    blue = red[::-1]
    y, x = np.mgrid[0:n, 0:n]
    flux = np.broadcast_to(blue[:, None, None], (nb, n, n)).copy()
    err = 0.1 * flux
    blob = np.hypot(x - 8, y - 8) <= 3
    flux[:, blob] = 100.0 * red[:, None]
    err[:, blob] = 0.01 * flux[:, blob] + 0.01
    flux[:, 30, 30] = 10.0 * red
    err[:, 30, 30] = 2.5 * red
    cube = FluxCube(flux, err, [f"b{i}" for i in range(nb)])
    res = bin_pixels(cube, ref_band=6, connected=connected)
    check_invariants(cube, res, None, 4.0, connected)
    k = res.bin_map[30, 30]
    assert res.leftover[k - 1] and res.bin_npix[k - 1] == 1
