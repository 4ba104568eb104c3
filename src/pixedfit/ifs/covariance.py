"""Spatial covariance of the spaxels of IFS cubes: :class:`SpaxelCovariance`.

Reduced IFS cubes are resampled from fibres or slices onto a spaxel grid, so neighbouring
spaxels share noise. The variance of a sum of N spaxels is then larger than the sum of
their variances (the "naive" propagation); the ratio of the errors
β(N) = σ_real / σ_naive depends on the instrument and the reduction. Three kinds of model
are used wherever spaxels of a cube are combined (:func:`pixedfit.ifs.match_imgifs_spatial`,
:class:`pixedfit.ifs.spatial.SpectralNoise`, :func:`pixedfit.ifs.registration.blur_cube`):

* ``"independent"`` — β = 1 (what the code did before; ``covariance=None`` gives it).
* ``"relation"`` — β(N) = 1 + α log10(min(N, n_sat)) for a sum of N *adjacent* spaxels:

  - **MaNGA** (:func:`manga_covariance`): α = 1.62, constant beyond N = 100 (Law et al.
    2016, AJ 152, 83, §9.3; SDSS DR13+ "MaNGA caveats": n_covar / n_no-covar =
    1 + 1.62 log10 N_bin for N_bin ≤ 100 and 4.2 above, the added spaxels then being
    uncorrelated with the first ones; valid for adjacent spaxels only). Note the relation
    is an empirical calibration for bins, not a correlation function: at N = 2 it exceeds
    the √2 that fully correlated spaxels would give.
  - **CALIFA** (:func:`califa_covariance`): the same form (García-Benito et al. 2015,
    A&A 576, A135; Sánchez et al. 2016, A&A 594, A36). α is calibrated from the cube's
    ``ERRWEIGHT`` extension when present: ERRWEIGHT is the factor by which the error of
    every pixel is to be multiplied when all valid spaxels of the cube are co-added, so
    β(N_valid) = √(Σ (ERRWEIGHT·err)² / Σ err²) and α = (β(N_valid) − 1) / log10 N_valid
    (median over channels), with no saturation below N_valid. Without ERRWEIGHT α takes
    :data:`CALIFA_ALPHA` (per setup).

  For a weighted combination (PSF matching, reprojection) N is the effective number of
  spaxels (Σw)² / Σw².
* ``"kernel"`` — a correlation function ρ(Δy, Δx) of the spaxels (lags −h…h), propagated
  exactly through the linear operators for noise of uniform amplitude. **MUSE and generic
  cubes** (:func:`measure_covariance`): ρ is measured on the cube itself from the
  spectral second differences r = f_λ − (f_{λ−2} + f_{λ+2}) / 2 (which remove continua
  and sources, leaving noise), normalised by their propagated errors and clipped at 5σ
  (emission lines, cosmic rays): ρ at each lag is the correlation coefficient of the
  normalised residuals of spaxel pairs at that lag. On the real MUSE UDF sub-cube ρ = 0.127
  (Δx = 1), 0.118 (Δy = 1) and |ρ| < 0.003 beyond: the errors of sums of 3×3 spaxels are
  ×1.15 (1.16 measured directly on box sums) and ×1.22 for large areas.

Every matched cube records its model in the header (:meth:`SpaxelCovariance.header_cards`:
``IFSCOV`` kind, ``IFSCOVS`` source, ``IFSCOVA``/``IFSCOVN`` α and N_sat, ``IFSCOVH`` and
``IFSCR<a><b>`` the kernel) together with the median error factor applied (``IFSCOVF``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.io import fits
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "CALIFA_ALPHA",
    "SpaxelCovariance",
    "califa_covariance",
    "independent_covariance",
    "manga_covariance",
    "measure_covariance",
    "resolve_covariance",
]

#: Law et al. (2016) MaNGA relation: slope α and the N beyond which β is constant.
MANGA_ALPHA, MANGA_NSAT = 1.62, 100.0
#: α of β(N) = 1 + α log10 N used for CALIFA cubes without an ERRWEIGHT extension
#: (range 1.0–1.4 of the CALIFA DR2/DR3 papers; the larger value for V1200 and COMB).
CALIFA_ALPHA = {"V500": 1.0, "V1200": 1.4, "COMB": 1.4}
#: Largest lag (spaxels) of measured correlation functions.
MAX_HALF = 4


@dataclass(frozen=True)
class SpaxelCovariance:
    """Model of the spatial noise covariance of the spaxels of a cube.

    Attributes
    ----------
    kind : {"independent", "relation", "kernel"}
        See the module docstring.
    source : str
        Where the model comes from (recorded in the output headers).
    alpha : float
        Slope α of β(N) = 1 + α log10 N (``"relation"``).
    n_sat : float
        N beyond which β(N) is constant (``"relation"``; inf = never).
    rho : ndarray, shape (2h + 1, 2h + 1), or None
        Correlation coefficient of spaxels at lags (Δy, Δx) = −h…h (``"kernel"``;
        ρ(0, 0) = 1, symmetric).
    func : callable or None
        A user's β(N) replacing the relation (``"relation"``; not written to headers).
    """

    kind: str
    source: str
    alpha: float = 0.0
    n_sat: float = math.inf
    rho: NDArray[np.float64] | None = None
    func: Callable[[NDArray[np.float64]], NDArray[np.float64]] | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("independent", "relation", "kernel"):
            raise ValueError(f"kind: 'independent', 'relation' or 'kernel', got {self.kind!r}")
        if not (np.isfinite(self.alpha) and self.alpha >= 0):
            raise ValueError(f"alpha: must be finite and >= 0, got {self.alpha}")
        if not self.n_sat >= 1:
            raise ValueError(f"n_sat: must be >= 1, got {self.n_sat}")
        if self.kind == "kernel":
            object.__setattr__(self, "rho", _check_rho(self.rho, "rho"))

    @property
    def independent(self) -> bool:
        """True when the model changes nothing (β = 1)."""
        return self.kind == "independent" or (
            self.kind == "relation" and self.func is None and self.alpha == 0)

    def factor(self, n: ArrayLike) -> NDArray[np.float64]:
        """β(N) = σ_real / σ_naive of the sum of N adjacent spaxels of equal errors.

        Parameters
        ----------
        n : array_like
            Numbers of spaxels (>= 1; an effective number may be fractional). For a
            ``"kernel"`` model N is taken as a square box of side √N.

        Returns
        -------
        ndarray
            The ratios (>= 1 for the survey relations), same shape as ``n``.
        """
        nn = np.clip(np.asarray(n, dtype=np.float64), 1.0, None)
        if self.kind == "independent":
            return np.ones_like(nn)
        if self.kind == "relation":
            if self.func is not None:
                out = np.asarray(self.func(nn), dtype=np.float64)
                if out.shape != nn.shape or not np.all(np.isfinite(out) & (out > 0)):
                    raise ValueError("covariance: the callable must return finite ratios > 0 "
                                     "of the shape of its argument")
                return out
            return 1.0 + self.alpha * np.log10(np.minimum(nn, self.n_sat))
        r = np.asarray(self.rho)
        h = r.shape[0] // 2
        d = np.arange(-h, h + 1)

        def box(side: float) -> float:
            w = np.clip(side - np.abs(d), 0.0, None)
            return float(np.sqrt(np.sum(r * np.outer(w, w)) / side**2))

        return np.vectorize(lambda v: box(math.sqrt(v)))(nn).astype(np.float64)

    def header_cards(self) -> list[tuple[str, Any, str]]:
        """FITS cards describing the model (see the module docstring)."""
        cards: list[tuple[str, Any, str]] = [
            ("IFSCOV", self.kind, "IFS spaxel covariance model"),
            ("IFSCOVS", self.source[:44], "covariance model source"),
        ]
        if self.kind == "relation":
            if self.func is not None:
                cards.append(("IFSCOVA", -1.0, "user beta(N) function (not stored)"))
            else:
                cards.append(("IFSCOVA", self.alpha, "beta(N) = 1 + IFSCOVA log10 N"))
                if np.isfinite(self.n_sat):
                    cards.append(("IFSCOVN", self.n_sat, "N beyond which beta is constant"))
        elif self.kind == "kernel":
            r = np.asarray(self.rho)
            h = r.shape[0] // 2
            cards.append(("IFSCOVH", h, "half size of the spaxel correlation kernel"))
            for a in range(2 * h + 1):
                for b in range(2 * h + 1):
                    cards.append((f"IFSCR{a}{b}", round(float(r[a, b]), 6),
                                  f"spaxel correlation at lag ({a - h},{b - h})"))
        return cards

    @classmethod
    def from_header(cls, header: fits.Header) -> SpaxelCovariance | None:
        """The model written by :meth:`header_cards`, or None when the header has none."""
        kind = header.get("IFSCOV")
        if kind is None:
            return None
        source = str(header.get("IFSCOVS", "header"))
        if kind == "relation":
            alpha = float(header.get("IFSCOVA", 0.0))
            if alpha < 0:
                return None  # a user's function: not reproducible from the header
            return cls("relation", source, alpha=alpha,
                       n_sat=float(header.get("IFSCOVN", math.inf)))
        if kind == "kernel":
            h = int(header["IFSCOVH"])
            rho = np.array([[float(header[f"IFSCR{a}{b}"]) for b in range(2 * h + 1)]
                            for a in range(2 * h + 1)])
            return cls("kernel", source, rho=rho)
        return cls("independent", source)


def _check_rho(rho: Any, name: str) -> NDArray[np.float64]:
    try:
        r = np.array(rho, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected an array of correlation coefficients") from exc
    if r.ndim != 2 or r.shape[0] != r.shape[1] or r.shape[0] % 2 == 0:
        raise ValueError(f"{name}: expected an odd square (2h+1, 2h+1) array of lags, got "
                         f"shape {r.shape}")
    h = r.shape[0] // 2
    if not (np.all(np.isfinite(r)) and abs(r[h, h] - 1.0) < 1e-9 and np.all(np.abs(r) <= 1)):
        raise ValueError(f"{name}: correlation coefficients with rho(0, 0) = 1 and |rho| <= 1")
    return 0.5 * (r + r[::-1, ::-1])


def independent_covariance(source: str = "independent spaxels assumed") -> SpaxelCovariance:
    """β = 1: spaxels treated as independent (the behaviour before the models)."""
    return SpaxelCovariance("independent", source)


def manga_covariance() -> SpaxelCovariance:
    """MaNGA DRP cubes: β(N) = 1 + 1.62 log10 N, constant beyond N = 100 (Law+2016)."""
    return SpaxelCovariance("relation", "MaNGA: Law+2016 1+1.62log10(N), N<=100",
                            alpha=MANGA_ALPHA, n_sat=MANGA_NSAT)


def califa_covariance(setup: str, err: ArrayLike | None = None,
                      errweight: ArrayLike | None = None,
                      valid: ArrayLike | None = None) -> SpaxelCovariance:
    """CALIFA cubes: β(N) = 1 + α log10 N, α from ERRWEIGHT when given.

    Parameters
    ----------
    setup : {"V500", "V1200", "COMB"}
        The setup (default α, :data:`CALIFA_ALPHA`).
    err : array_like, shape (nwave, ny, nx), optional
        1σ errors of the cube (any unit).
    errweight : array_like, shape (nwave, ny, nx) or (ny, nx), optional
        The ``ERRWEIGHT`` extension: factor of every pixel's error when all valid spaxels
        are co-added.
    valid : array_like of bool, shape of ``err``, optional
        Valid values (default: finite errors > 0 and finite weights > 0).

    Returns
    -------
    SpaxelCovariance
    """
    s = str(setup).upper()
    if s not in CALIFA_ALPHA:
        raise ValueError(f"setup: expected one of {sorted(CALIFA_ALPHA)}, got {setup!r}")
    if errweight is None or err is None:
        return SpaxelCovariance("relation", f"CALIFA {s}: default alpha (no ERRWEIGHT)",
                                alpha=CALIFA_ALPHA[s])
    e = np.asarray(err, dtype=np.float64)
    w = np.broadcast_to(np.asarray(errweight, dtype=np.float64), e.shape)
    ok = np.isfinite(e) & (e > 0) & np.isfinite(w) & (w > 0)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    n = ok.reshape(e.shape[0], -1).sum(axis=1)
    use = n >= 2
    if not use.any():
        raise ValueError("ERRWEIGHT: no channel has two valid spaxels")
    num = np.sum(np.where(ok, (e * w) ** 2, 0.0).reshape(e.shape[0], -1), axis=1)[use]
    den = np.sum(np.where(ok, e**2, 0.0).reshape(e.shape[0], -1), axis=1)[use]
    beta = np.sqrt(num / den)
    alpha = float(np.median((beta - 1.0) / np.log10(n[use])))
    if not (np.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"ERRWEIGHT: implies alpha = {alpha:.3g} (< 0 or not finite); the "
                         f"extension does not hold error factors >= 1")
    return SpaxelCovariance("relation", f"CALIFA {s}: ERRWEIGHT, N_valid={int(np.median(n))}",
                            alpha=alpha)


def noise_cube_pair(flux: ArrayLike, err: ArrayLike, lag: int
                    ) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
    """A cube and its errors as float64 arrays, and a checked channel step.

    Parameters
    ----------
    flux, err : array_like, shape (nwave, ny, nx)
        Values and 1σ errors.
    lag : int
        Channel step of second differences, 1 <= lag < nwave / 2.

    Returns
    -------
    (flux, err, lag) : (ndarray, ndarray, int)

    Raises
    ------
    ValueError
        Shapes or ``lag`` out of range (naming them).
    """
    f = np.asarray(flux, dtype=np.float64)
    e = np.asarray(err, dtype=np.float64)
    if f.ndim != 3 or e.shape != f.shape:
        raise ValueError("flux, err: two (nwave, ny, nx) cubes of the same shape expected")
    k = int(lag)
    if k < 1 or f.shape[0] <= 2 * k:
        raise ValueError(f"lag: needs 1 <= lag < nwave / 2, got {lag}")
    return f, e, k


def second_differences(flux: NDArray[np.float64], err: NDArray[np.float64], lag: int,
                       channels: NDArray[np.intp] | None = None) -> NDArray[np.float64]:
    """Spectral second differences ``r_i = f_i − (f_{i−k} + f_{i+k}) / 2`` (k = ``lag``)
    divided by their errors for independent noise, ``√(e_i² + (e_{i−k}² + e_{i+k}²) / 4)``:
    locally linear continua cancel and the noise is left, of unit variance when the errors
    describe it.

    Parameters
    ----------
    flux, err : ndarray, shape (nwave, ...)
        Values and 1σ errors along axis 0 (NaN = masked).
    lag : int
        Channel step k, 1 <= k < nwave / 2.
    channels : ndarray of int, optional
        The channels i (k <= i < nwave − k) to compute; default all.

    Returns
    -------
    ndarray, shape (nchannels, ...)
        The normalised differences (NaN or ±inf where a value or error is missing or 0).
    """
    k = lag
    if channels is None:
        n = flux.shape[0]
        mid, lo, hi = slice(k, n - k), slice(0, n - 2 * k), slice(2 * k, n)
        f0, fl, fh, e0, el, eh = flux[mid], flux[lo], flux[hi], err[mid], err[lo], err[hi]
    else:
        f0, fl, fh = flux[channels], flux[channels - k], flux[channels + k]
        e0, el, eh = err[channels], err[channels - k], err[channels + k]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (f0 - 0.5 * (fl + fh)) / np.sqrt(e0**2 + 0.25 * (el**2 + eh**2))


def robust_sigma(values: NDArray[np.float64]) -> float:
    """1.4826 × the median absolute deviation: the standard deviation of Gaussian values,
    insensitive to a minority of outliers."""
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def measure_covariance(flux: ArrayLike, err: ArrayLike, half: int = 2, lag: int = 2,
                       max_channels: int = 400, source: str = "measured on the cube"
                       ) -> SpaxelCovariance:
    """Correlation function of the spaxel noise, measured on the cube itself.

    The spectral second differences ``r = f_i − (f_{i−k} + f_{i+k}) / 2`` (k = ``lag``)
    remove continua (sources, sky residual levels) and leave the noise; divided by their
    propagated errors and clipped at 5 robust σ (lines, cosmic rays) they give, for every
    lag (Δy, Δx) with |Δ| ≤ ``half``, the correlation coefficient over all spaxel pairs
    at that lag and all channels used.

    Parameters
    ----------
    flux, err : array_like, shape (nwave, ny, nx)
        Values and 1σ errors (NaN = masked).
    half : int
        Largest lag, spaxels (1…:data:`MAX_HALF`).
    lag : int
        Channel step of the second differences (2 skips the correlation that the spectral
        resampling leaves between adjacent channels).
    max_channels : int
        Channels used at most (evenly spaced).
    source : str
        Description recorded in the model.

    Returns
    -------
    SpaxelCovariance
        ``"kernel"`` model (lags with fewer than 100 pairs, or a coefficient below its
        3σ noise 3 / √n_pairs, get ρ = 0).
    """
    f, e, k = noise_cube_pair(flux, err, lag)
    h = int(half)
    if not 1 <= h <= MAX_HALF:
        raise ValueError(f"half: must be within 1..{MAX_HALF}, got {half}")
    step = max(1, math.ceil((f.shape[0] - 2 * k) / max_channels))
    z = second_differences(f, e, k, np.arange(k, f.shape[0] - k, step))
    fin = z[np.isfinite(z)]
    if fin.size < 100:
        raise ValueError("flux, err: too few valid values to measure the spaxel covariance")
    with np.errstate(invalid="ignore"):
        z = np.where(np.abs(z) < 5.0 * robust_sigma(fin), z, np.nan)
    ny, nx = z.shape[1:]
    rho = np.zeros((2 * h + 1, 2 * h + 1))
    for dy in range(0, h + 1):
        for dx in range(-h, h + 1):
            if dy == 0 and dx <= 0:
                continue
            a = z[:, 0:ny - dy, max(0, -dx):nx - max(0, dx)]
            b = z[:, dy:ny, max(0, dx):nx + min(0, dx)]
            m = np.isfinite(a) & np.isfinite(b)
            if m.sum() < 100:
                continue
            c = float(np.sum(a[m] * b[m]) / math.sqrt(np.sum(a[m] ** 2) * np.sum(b[m] ** 2)))
            if abs(c) < 3.0 / math.sqrt(m.sum()):  # not significant: no correlation
                c = 0.0
            rho[h + dy, h + dx] = rho[h - dy, h - dx] = c
    rho[h, h] = 1.0
    return SpaxelCovariance("kernel", source, rho=rho)


def resolve_covariance(spec: Any, cube_covariance: SpaxelCovariance | None,
                       measure: Callable[[], SpaxelCovariance]) -> SpaxelCovariance:
    """The covariance model asked for by a ``covariance=`` argument.

    Parameters
    ----------
    spec : None, str, float, array_like, callable or SpaxelCovariance
        ``None`` or ``"independent"``: β = 1 (the old behaviour). ``"auto"``: the cube's
        own model (set by its reader) or, when it has none, one measured on the cube
        (independent, with a warning, when the cube is too small to measure it).
        ``"measure"``: measured on the cube. A number α >= 0: β(N) = 1 + α log10 N. A
        (2h+1, 2h+1) array: a correlation function ρ of the spaxels. A callable: β(N).
    cube_covariance : SpaxelCovariance or None
        The model the cube carries.
    measure : callable
        Measures a model on the cube (for ``"auto"``/``"measure"``).

    Returns
    -------
    SpaxelCovariance
    """
    if spec is None:
        return independent_covariance("independent (covariance=None)")
    if isinstance(spec, SpaxelCovariance):
        return spec
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key == "independent":
            return independent_covariance("independent (covariance='independent')")
        if key == "auto":
            if cube_covariance is not None:
                return cube_covariance
            try:
                return measure()
            except ValueError as exc:
                warnings.warn(f"covariance='auto': the spaxel covariance cannot be measured "
                              f"on this cube ({exc}); spaxels treated as independent",
                              UserWarning, stacklevel=3)
                return independent_covariance("independent (not measurable)")
        if key == "measure":
            return measure()
        raise ValueError(f"covariance: 'auto', 'measure', 'independent', None, a number, an "
                         f"array or a callable; got {spec!r}")
    if callable(spec):
        return SpaxelCovariance("relation", "user beta(N) function", func=spec)
    if isinstance(spec, int | float | np.floating | np.integer) and not isinstance(spec, bool):
        return SpaxelCovariance("relation", f"user alpha = {float(spec):.4g}",
                                alpha=float(spec))
    if isinstance(spec, list | tuple | np.ndarray):
        return SpaxelCovariance("kernel", "user correlation kernel",
                                rho=np.asarray(spec, dtype=np.float64))
    raise TypeError(f"covariance: unsupported value of type {type(spec).__name__}")
