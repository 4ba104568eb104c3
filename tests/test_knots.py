"""Photometry through transmission knots (pixedfit.sps.knots, cpp/src/csp_knots.cpp).

The knot path must equal the coarse-grid kernel it replaces up to the interpolation of the
dust transmission between knots: exactly (to the float32 rounding of the projections)
without dust, and within bounds that depend on how strongly a band is attenuated with it.
"""

from __future__ import annotations

import gc
import hashlib
import platform
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

from pixedfit import _core
from pixedfit.library import GENERATION_RANGES
from pixedfit.sps import SEDModel
from pixedfit.sps.knots import CALZETTI_BREAKS, knot_arrays, lagrange4

BANDS = ["galex_fuv", "galex_nuv", "sdss_u", "sdss_g", "sdss_r", "sdss_i", "sdss_z",
         "2mass_j", "2mass_h", "2mass_k", "wise_w1", "wise_w2", "wise_w3", "wise_w4",
         "spitzer_irac_ch1", "spitzer_mips_24", "herschel_pacs_70", "herschel_pacs_160",
         "herschel_spire_250", "herschel_spire_500"]

CONFIGS = [
    {"sfh_form": 1, "dust_law": 0, "dust_emission": True, "add_neb_emission": True},
    {"sfh_form": 0, "dust_law": 1, "dust_emission": True, "add_neb_emission": True,
     "add_igm_absorption": True},
    {"sfh_form": 2, "dust_law": 0, "dust_emission": False, "add_neb_emission": False},
]


def _digest(arrays: dict) -> str:
    """SHA-256 of the arrays of a knot grid: every name, dtype, shape and byte."""
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _fused_multiply_adds() -> bool:
    """Whether the compiled projections fuse their multiply-adds on this CPU: x86-64 with
    AVX2 and FMA, where the kernels run their x86-64-v3 (or AVX-512) variants."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx2" in flags and "fma" in flags


#: (model, redshift, breaks, :func:`_digest` of the knot arrays for BANDS) as the projection
#: gave them when this test was written: nebular and not, CF00 and Calzetti (with its
#: breaks) with the IGM, and at z = 2.5 the ionising wavelengths in the GALEX bands.
PINNED = [
    (CONFIGS[0], 0.3, (), "40c8d6439cc107ef6a23eaf6c7492d439265d8e585c22ddd9b533167bbb96151"),
    (CONFIGS[1], 2.5, CALZETTI_BREAKS,
     "cc9557931c16e36d07dfd7191c477e6e2c362a78d161afac270e98a1d31c273d"),
    (CONFIGS[2], 0.005, (), "bf080a80d294c48b264eb75d7e1de877c5022a4d6f217e311f8bd81a661b6dab"),
]


def _params(model: SEDModel, n: int, seed: int, **fixed) -> dict:
    """Random parameters over the library's generation ranges (dust up to τ_V = 4,
    dust_index −2.2 … 0.4: far beyond what galaxies need, on purpose)."""
    rng = np.random.default_rng(seed)
    limits = model.param_limits()
    p = {}
    for k in model.free_params():
        if k in GENERATION_RANGES:
            lo, hi = GENERATION_RANGES[k]
            lo, hi = max(lo, limits.get(k, (lo, hi))[0]), min(hi, limits.get(k, (lo, hi))[1])
            p[k] = rng.uniform(lo, hi, n)
    p["log_mass"] = np.full(n, 10.0)
    p.update({k: np.full(n, v) for k, v in fixed.items()})
    return p


@settings(max_examples=40, deadline=None)
@given(st.integers(4, 12), st.integers(0, 2**31 - 1))
def test_lagrange4_reproduces_cubics(nk, seed):
    """Piecewise-cubic Lagrange weights sum to one and reproduce any cubic exactly."""
    rng = np.random.default_rng(seed)
    knots = np.cumsum(rng.uniform(0.05, 1.0, nk))
    x = rng.uniform(knots[0], knots[-1], 200)
    first, w = lagrange4(knots, x)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    c = rng.normal(size=4)
    cubic = np.polynomial.polynomial.Polynomial(c)
    vals = cubic(knots)[first[:, None] + np.arange(4)]
    np.testing.assert_allclose((w * vals).sum(axis=1), cubic(x), rtol=1e-9,
                               atol=1e-9 * np.abs(c).sum() * (1 + knots[-1]) ** 3)


def test_lagrange4_refuses_too_few_knots():
    with pytest.raises(ValueError, match="knots"):
        lagrange4(np.array([0.0, 1.0, 2.0]), np.array([0.5]))


@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("z", [0.01, 0.6, 2.5])
def test_exact_without_dust(cfg, z):
    """Σ_j φ_j = 1: with no dust the projection is the coarse-grid sum itself."""
    m = SEDModel(**cfg, threads=1)
    p = _params(m, 300, 1, dust1=0.0, dust2=0.0)
    knots, dk = m.photometry(p, z, BANDS, return_derived=True, knots=True)
    coarse, dc = m.photometry(p, z, BANDS, return_derived=True)
    # bands that see only IGM-absorbed ionising light are ~0 in both
    np.testing.assert_allclose(knots, coarse, rtol=2e-6, atol=1e-9 * coarse.max())
    for key in dc:
        np.testing.assert_allclose(dk[key], dc[key], rtol=2e-6, atol=1e-300, err_msg=key)


@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("z", [0.005, 0.5, 2.0])
def test_error_bounds_with_dust(cfg, z):
    """Bounds documented in pixedfit.sps.knots, by the band's attenuation A = −2.5 log10
    (F / F_dust-free): relative error ≤ 1e-4 for A ≤ 5 mag, 2e-3 to 8 mag, 1e-2 to
    12 mag; anywhere ≤ 1e-5 of the dust-free flux (plus 1e-4 of the flux: the dust
    emission carries the relative error of the absorbed luminosity); never negative."""
    m = SEDModel(**cfg, threads=2)
    p = _params(m, 4000, 2)
    free = {**p, "dust1": np.zeros(4000), "dust2": np.zeros(4000)}
    knots = m.photometry(p, z, BANDS, knots=True)
    coarse = m.photometry(p, z, BANDS)
    dust_free = m.photometry(free, z, BANDS)
    ok = dust_free > 1e-12 * dust_free.max()  # not wiped out by the IGM alone
    assert np.all(knots >= 0)
    att = -2.5 * np.log10(np.maximum(coarse, 1e-300) / np.where(ok, dust_free, 1.0))
    rel = np.abs(knots / np.where(coarse > 0, coarse, 1.0) - 1)
    for limit, bound in ((5.0, 1e-4), (8.0, 2e-3), (12.0, 1e-2)):
        sel = ok & (att <= limit) & (coarse > 0)
        assert rel[sel].max() <= bound, (limit, rel[sel].max())
    assert np.all(np.abs(knots - coarse)[ok] <= 1e-5 * dust_free[ok] + 1e-4 * coarse[ok])


def test_derived_quantities():
    """SFH quantities are those of the coarse kernel to rounding; the absorbed luminosity,
    dust mass and L_bol to the interpolation of the transmission (≤ 1e-4)."""
    m = SEDModel(**CONFIGS[0], threads=1)
    p = _params(m, 2000, 3)
    _, dk = m.photometry(p, 0.1, BANDS, return_derived=True, knots=True)
    _, dc = m.photometry(p, 0.1, BANDS, return_derived=True)
    for key in ("stellar_mass", "sfr", "sfr_100myr", "mw_age"):
        np.testing.assert_allclose(dk[key], dc[key], rtol=1e-12, err_msg=key)
    for key in ("l_absorbed", "dust_mass", "lbol"):
        np.testing.assert_allclose(dk[key], dc[key], rtol=1e-4, atol=1e-30, err_msg=key)


def test_agn_torus(shared_data):
    """The torus enters through its band fluxes: exact without dust, bounded with it."""
    m = SEDModel(sfh_form=1, dust_law=0, add_neb_emission=True, add_agn=True,
                 agn_templates=shared_data / "agn_torus_nenkova08", threads=1)
    p = _params(m, 500, 4, log_fagn=0.0)
    knots, dk = m.photometry(p, 0.05, BANDS, return_derived=True, knots=True)
    coarse, dc = m.photometry(p, 0.05, BANDS, return_derived=True)
    mid = BANDS.index("wise_w3")  # torus-dominated for fagn = 1
    np.testing.assert_allclose(knots[:, mid], coarse[:, mid], rtol=1e-4)
    np.testing.assert_allclose(dk["fagn_bol"], dc["fagn_bol"], rtol=1e-4)


def test_threads_batches_and_cache():
    """Same numbers for any thread count and batch split; one projection per (bands, z)."""
    m = SEDModel(**CONFIGS[0])
    p = _params(m, 257, 5)
    one = m.photometry(p, 0.3, BANDS, threads=1, knots=True)
    two = m.photometry(p, 0.3, BANDS, threads=2, knots=True)
    np.testing.assert_array_equal(one, two)
    part = m.photometry({k: v[100:101] for k, v in p.items()}, 0.3, BANDS, threads=1,
                        knots=True)
    np.testing.assert_array_equal(part, one[100:101])
    grid = m._knot_grid(tuple(BANDS), 0.3)
    assert m._knot_grid(tuple(BANDS), 0.3) is grid
    assert m._knot_grid(tuple(BANDS), 0.31) is not grid


@pytest.mark.skipif(not _fused_multiply_adds(),
                    reason="the pinned bits are those of fused multiply-adds (AVX2 and FMA)")
@pytest.mark.parametrize(("cfg", "z", "breaks", "digest"), PINNED)
def test_projection_bits_are_pinned(cfg, z, breaks, digest):
    """The knot arrays have the same bits as ever (every weight, knot, column and the order
    of every sum), so that fits give the same numbers: any change shows here."""
    m = SEDModel(**cfg)
    fw, trans, _, _ = m._phot_weights(tuple(BANDS), z)
    assert _digest(knot_arrays(m._phot_arrays, fw, trans, breaks)) == digest


def test_knot_grid_checks_sizes():
    """A malformed projection is refused with the array named, never read out of bounds."""
    m = SEDModel(**CONFIGS[0])
    fw, trans, _, _ = m._phot_weights(tuple(BANDS), 0.1)
    arrays = knot_arrays(m._phot_arrays, fw, trans)
    _core.KnotGrid(m._grid_phot, arrays)
    bad = {**arrays, "ssp": arrays["ssp"][:-1]}
    with pytest.raises(ValueError, match="ssp"):
        _core.KnotGrid(m._grid_phot, bad)
    bad = {**arrays, "band_off": arrays["band_off"][:-1]}
    with pytest.raises(ValueError, match="band_off"):
        _core.KnotGrid(m._grid_phot, bad)
    bad = {k: v for k, v in arrays.items() if k != "ssp_young"}
    with pytest.raises(ValueError, match="ssp_young"):
        _core.KnotGrid(m._grid_phot, bad)


def test_knot_grid_shares_the_projections():
    """The projections are read-only, so that a KnotGrid shares them instead of copying
    them (and keeps them when the arrays are gone); from writeable copies it copies: the
    same photometry either way."""
    m = SEDModel(**CONFIGS[0], threads=1)
    fw, trans, scale, lw = m._phot_weights(tuple(BANDS), 0.1)
    arrays = knot_arrays(m._phot_arrays, fw, trans)
    tables = ("ssp", "ssp_young", "neb")
    assert not any(arrays[key].flags.writeable for key in tables)
    with pytest.raises(ValueError, match="read-only"):
        arrays["ssp"][0, 0] = 1.0
    copied = _core.KnotGrid(m._grid_phot,
                            {**arrays, **{key: arrays[key].copy() for key in tables}})
    shared = _core.KnotGrid(m._grid_phot, arrays)
    del arrays
    gc.collect()
    params, _ = m._param_array(_params(m, 5, 3))
    fluxes = [_core.csp_photometry_knots(m._grid_phot, grid, params, *m._cfg(), scale, lw, 1)[0]
              for grid in (shared, copied)]
    np.testing.assert_array_equal(fluxes[0], fluxes[1])


def test_pieces_never_cross_calzetti_breaks():
    """With the Calzetti curve no interpolation stencil spans 6300 Å, where k(λ) changes
    formula: the r band (5400–7000 Å) stays at the 1e-4 level at τ_V = 4."""
    m = SEDModel(sfh_form=1, dust_law=1, add_neb_emission=False, threads=1)
    p = _params(m, 500, 6, dust2=4.0)
    knots = m.photometry(p, 0.005, ["sdss_r", "sdss_i"], knots=True)
    coarse = m.photometry(p, 0.005, ["sdss_r", "sdss_i"])
    assert np.abs(knots / coarse - 1).max() < 1e-4


def test_projection_does_not_depend_on_blas_threads():
    """Every process builds the same projection bits (an MPI rank with one BLAS thread and
    a serial run with several must fit identically)."""
    threadpool_limits = pytest.importorskip("threadpoolctl").threadpool_limits
    m = SEDModel(**CONFIGS[0])
    fw, trans, _, _ = m._phot_weights(tuple(BANDS), 0.02)
    with threadpool_limits(1):
        one = knot_arrays(m._phot_arrays, fw, trans)
    with threadpool_limits(4):
        many = knot_arrays(m._phot_arrays, fw, trans)
    for key, value in one.items():
        np.testing.assert_array_equal(np.asarray(value), np.asarray(many[key]), err_msg=key)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_projection_with_kept_columns_is_the_same(cfg):
    """The wavelength-major rows and the energy-knot projections kept between calls
    (``columns``) change no bit of the projection, are made once and reused (also at
    another redshift); the young rows (without the ionising wavelengths) and all rows
    (those plus the ionising ones) agree with the direct projection of the float64 grid to
    float32 rounding."""
    from pixedfit.sps.knots import _band_columns, _energy_columns

    m = SEDModel(**cfg)
    fw, trans, _, _ = m._phot_weights(tuple(BANDS), 0.3)
    plain = knot_arrays(m._phot_arrays, fw, trans)
    kept: dict = {}
    first = knot_arrays(m._phot_arrays, fw, trans, (), kept)
    held = {k: id(v) for k, v in kept.items()}
    assert "ssp" in held and ("neb" in held) == ("neb_cont" in m._phot_arrays)
    assert [k for k in held if k.startswith("energy")] == ["energy()"]
    fw2, trans2, _, _ = m._phot_weights(tuple(BANDS), 0.7)
    second = knot_arrays(m._phot_arrays, fw2, trans2, (), kept)
    assert {k: id(v) for k, v in kept.items()} == held  # reused, not converted again
    for key, value in plain.items():
        np.testing.assert_array_equal(np.asarray(first[key]), np.asarray(value), err_msg=key)
    np.testing.assert_array_equal(second["ssp"], knot_arrays(m._phot_arrays, fw2, trans2)["ssp"])
    base = m._phot_arrays
    x = np.log(np.asarray(base["wave"], dtype=np.float64))

    mat = sparse.hstack([_matrix(_band_columns(x, fw, trans, np.zeros(0))[0], x.size),
                         _matrix(_energy_columns(x, np.asarray(base["dwave"]),
                                                 int(base["n_ionising"]), np.zeros(0))[0],
                                 x.size)],
                        format="csr")
    ssp = np.asarray(base["ssp"], dtype=np.float64)
    flat = ssp.reshape(-1, ssp.shape[-1])
    direct = (mat.T @ flat.T).T
    np.testing.assert_allclose(first["ssp"], direct, rtol=1e-6, atol=1e-30)
    if "neb_cont" in base:
        n_ion = int(base["n_ionising"])
        young = (mat[n_ion:].T @ flat[:, n_ion:].T).T
        np.testing.assert_allclose(first["ssp_young"][:, :-1], young[:, :-1], rtol=1e-6,
                                   atol=1e-30)


def test_knots_on_request_and_for_several_redshifts():
    """The grid sum by default (a model's photometry never depends on the other models of
    its batch); knots=True projects per redshift of the batch."""
    m = SEDModel(**CONFIGS[0], threads=1)
    p = _params(m, 6, 7)
    zz = np.array([0.1, 0.1, 0.1, 0.2, 0.2, 0.2])
    mixed = m.photometry(p, zz, BANDS)
    one = m.photometry({k: v[:3] for k, v in p.items()}, 0.1, BANDS)
    np.testing.assert_array_equal(mixed[:3], one)
    knots = m.photometry(p, zz, BANDS, knots=True)
    np.testing.assert_array_equal(
        knots[3:], m.photometry({k: v[3:] for k, v in p.items()}, 0.2, BANDS, knots=True))
    assert not np.array_equal(knots, mixed)
    # (deeply attenuated bands are only bounded relative to the dust-free flux)
    assert np.all(np.abs(knots - mixed) <= 1e-4 * mixed + 1e-5 * mixed.max(axis=0))


def test_projection_cache_under_threads():
    """Fits of a catalogue share one model across Python threads: concurrent calls at many
    redshifts (more than the cache holds) give the single-threaded numbers, and no error."""
    from concurrent.futures import ThreadPoolExecutor

    m = SEDModel(**CONFIGS[2], threads=1)
    p = _params(m, 20, 8)
    zs = np.round(np.linspace(0.01, 0.3, 24), 4)
    alone = {z: m.photometry(p, z, BANDS[:6], knots=True) for z in zs[:4]}
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda z: (z, m.photometry(p, z, BANDS[:6], knots=True)),
                            list(zs) * 2))
    for z, flux in got:
        if z in alone:
            np.testing.assert_array_equal(flux, alone[z])
    assert len(m._knot_cache) <= 8


def _matrix(stencils: tuple, nrow: int) -> sparse.csr_matrix:
    """The sparse (nrow, ncol) matrix of pieces and their rows' stencils (the arguments of
    ``_core.project_stencils`` before the table)."""
    row_begin, row_count, knot_off, first, weights = stencils
    rows, cols, values = [], [], []
    at = 0
    for p in range(row_begin.size):
        r = np.arange(row_begin[p], row_begin[p] + row_count[p])
        width = 1 if knot_off[p + 1] - knot_off[p] == 1 else 4
        for a in range(width):
            rows.append(r)
            cols.append(first[at:at + r.size] + a)
            values.append(weights[at:at + r.size, a])
        at += r.size
    return sparse.csr_matrix((np.concatenate(values), (np.concatenate(rows),
                                                        np.concatenate(cols))),
                             shape=(nrow, knot_off[-1]))


def _random_stencils(rng: np.random.Generator, nrow: int) -> tuple:
    """Stencils of pieces of 7, 5, 1 and 4 knots over rows of random positions, with a
    piece of one knot over all the rows (a bolometric column) and random weights."""
    from pixedfit.sps.knots import _Ranges, _stencils

    x = np.sort(rng.uniform(8.0, 12.0, nrow))
    begin = np.array([10, 61, 151, 160, 0])
    count = np.array([51, 90, 1, 100, nrow])
    sizes = [7, 5, 1, 4, 1]
    knots = [np.linspace(x[b], x[b + c - 1], k)
             for b, c, k in zip(begin, count, sizes, strict=True)]
    knot_off = np.cumsum([0] + [k.size for k in knots])
    weights = rng.uniform(0.0, 1.0, nrow)
    return _stencils(x, _Ranges(begin, count, begin, weights), knot_off, np.concatenate(knots))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_projection_matches_scipy(dtype):
    """``_core.project_stencils`` against scipy's sparse product, with tables in either
    precision (the float32 SSP grids), blocked (``_blocked``): the sums over the rows from
    ``split`` on and, added to them, over those below, to single-precision rounding, with
    the tails beside them."""
    from pixedfit.sps.knots import _blocked

    rng = np.random.default_rng(5)
    stencils = _random_stencils(rng, 300)
    mat = _matrix(stencils, 300)
    ncol = mat.shape[1]
    spectra = rng.normal(size=(700, 300)).astype(dtype)
    blocks, m = _blocked(spectra)
    wide = spectra.astype(np.float64).T
    tail = rng.normal(size=(700, 3)).astype(np.float32)
    for split in (0, 17, 120, 300):
        out, upper = _core.project_stencils(*stencils, blocks, m, split, True, tail, 2 * tail)
        assert out.dtype == np.float32 and out.shape == (700, ncol + 3)
        above = np.asarray(mat[split:].T @ wide[split:]).T
        below = np.asarray(mat[:split].T @ wide[:split]).T
        np.testing.assert_allclose(upper[:, :ncol], above, rtol=1e-7, atol=1e-12)
        np.testing.assert_allclose(out[:, :ncol], above + below, rtol=1e-7, atol=1e-12)
        np.testing.assert_array_equal(out[:, ncol:], tail)
        np.testing.assert_array_equal(upper[:, ncol:], 2 * tail)
    out, upper = _core.project_stencils(*stencils, blocks, m, 0, False)
    assert upper is None and out.shape == (700, ncol)


def test_compiled_projection_sums_in_order():
    """Every output element sums its column's rows in increasing order from 0 in double
    precision, the rows below ``split`` apart, then adds the two: with 1, 10¹⁶ and −10¹⁶
    (10¹⁶ + 1 rounds to 10¹⁶) the order shows in the result, in a piece of one knot
    (column 0) and of 4 (column 1; its other columns 0). Every spectrum (whole blocks of
    the kernel and the rest) gets the same."""
    from pixedfit.sps.knots import _blocked

    weights = np.zeros((16, 4))
    weights[[2, 5, 7], 0] = 1.0  # piece 0 (rows 0-7): column 0
    weights[[10, 13, 15], 0] = 1.0  # piece 1 (rows 0-7 again): column 1 of 1-4
    stencils = (np.array([0, 0]), np.array([8, 8]), np.array([0, 1, 5]),
                np.array([0] * 8 + [1] * 8), weights)
    spectra = np.zeros((101, 8))
    spectra[:, [2, 5, 7]] = [1.0, 1e16, -1e16]
    blocks, m = _blocked(spectra)
    for split, total, above in [(0, 0.0, 0.0), (3, 1.0, 0.0), (6, 0.0, -1e16), (8, 0.0, 0.0)]:
        out, upper = _core.project_stencils(*stencils, blocks, m, split, True)
        np.testing.assert_array_equal(out, np.float32([[total, total, 0, 0, 0]] * 101))
        np.testing.assert_array_equal(upper, np.float32([[above, above, 0, 0, 0]] * 101))


def test_compiled_projection_refuses_bad_input():
    """Rows outside the table, stencils outside their piece's columns or going back, blocks
    of the wrong shape and tails of the wrong shape are refused."""
    from pixedfit.sps.knots import _blocked

    blocks, m = _blocked(np.ones((40, 10), dtype=np.float32))
    begin, count, knot_off = np.array([0, 2]), np.array([3, 8]), np.array([0, 1, 5])
    first, weights = np.array([0, 0, 0] + [1] * 8), np.ones((11, 4))
    _core.project_stencils(begin, count, knot_off, first, weights, blocks, m, 0, False)
    with pytest.raises(ValueError, match="piece 1"):  # rows 3-10 of a table of 10
        _core.project_stencils(np.array([0, 3]), count, knot_off, first, weights, blocks, m, 0,
                               False)
    with pytest.raises(ValueError, match="piece 1"):  # a piece of 3 knots
        _core.project_stencils(begin, count, np.array([0, 1, 4]), first, weights, blocks, m, 0,
                               False)
    # a stencil past its piece's columns, one going back, one in another piece's column
    for f in ([0, 0, 0] + [2] * 8, [0, 0, 0] + [1] * 7 + [0], [0, 0, 1] + [1] * 8):
        with pytest.raises(ValueError, match="piece"):
            _core.project_stencils(begin, count, knot_off, np.array(f), weights, blocks, m, 0,
                                   False)
    with pytest.raises(ValueError, match="blocks"):
        _core.project_stencils(begin, count, knot_off, first, weights, blocks, m + 32, 0, False)
    with pytest.raises(ValueError, match="tail"):
        _core.project_stencils(begin, count, knot_off, first, weights, blocks, m, 0, False,
                               np.ones((3, 2)))
    with pytest.raises(ValueError, match="upper_tail"):
        _core.project_stencils(begin, count, knot_off, first, weights, blocks, m, 0, False,
                               None, np.ones((m, 2)))


def test_compiled_knot_stencils_match_lagrange4():
    """``_core.knot_stencils`` gives every wavelength of a piece the first knot of its
    stencil and its weight times the cardinal weights of :func:`lagrange4` (to the bit), and
    in a piece of one knot that knot and the weight itself; pieces of 2 or 3 knots and
    knots or positions that do not increase are refused."""
    rng = np.random.default_rng(3)
    x = np.sort(rng.uniform(8.0, 12.0, 200))
    weights = rng.uniform(0.0, 1.0, 200)
    knots = [np.linspace(x[10], x[60], 7), np.linspace(x[61], x[150], 5), x[151:152]]
    begin, count = np.array([10, 61, 151]), np.array([51, 90, 1])
    knot_off = np.cumsum([0] + [len(k) for k in knots])
    first, w = _core.knot_stencils(x, begin, count, begin, weights, knot_off,
                                   np.concatenate(knots))
    at = 0
    for p in range(2):
        r = np.arange(begin[p], begin[p] + count[p])
        f, cw = lagrange4(knots[p], x[r])
        np.testing.assert_array_equal(first[at:at + r.size], knot_off[p] + f)
        np.testing.assert_array_equal(w[at:at + r.size], weights[r, None] * cw)
        at += r.size
    assert first[at] == knot_off[2] and np.array_equal(w[at], [weights[151], 0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="1 or at least 4 knots"):
        _core.knot_stencils(x, begin[:1], count[:1], begin[:1], weights, [0, 3], knots[0][:3])
    with pytest.raises(ValueError, match="must increase"):
        _core.knot_stencils(x, begin[:1], count[:1], begin[:1], weights, [0, 7], knots[0][::-1])
    with pytest.raises(ValueError, match="x must increase"):
        _core.knot_stencils(x[::-1].copy(), begin[:1], count[:1], begin[:1], weights, [0, 7],
                            knots[0])


def test_compiled_band_sums_match_scipy():
    """``_core.band_sums`` gives the bits of scipy's sparse product (the same order, each
    product rounded before it is added), an empty band 0."""
    rng = np.random.default_rng(4)
    table = rng.normal(size=(300, 37))
    weights = rng.uniform(0.0, 1.0, 500)
    begin, count = np.array([5, 100, 0, 250]), np.array([80, 120, 0, 50])
    wbegin = np.array([0, 80, 200, 200])
    got = _core.band_sums(begin, count, wbegin, weights, table)
    indices = np.concatenate([np.arange(b, b + c) for b, c in zip(begin, count, strict=True)])
    data = np.concatenate([weights[w:w + c] for w, c in zip(wbegin, count, strict=True)])
    mat = sparse.csr_matrix((data, indices, np.concatenate([[0], np.cumsum(count)])),
                            shape=(4, 300))
    np.testing.assert_array_equal(got, np.asarray(mat @ table).T)
    assert np.all(got[:, 2] == 0.0)
