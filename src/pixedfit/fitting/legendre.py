"""Multiplicative Legendre corrections between model and observed spectra.

Spectra and photometry rarely agree perfectly in their flux calibration: a smooth,
multiplicative factor absorbs the difference. :func:`fit_legendre` fits, for many spectra
sharing one wavelength grid at once (one C++ call, OpenMP over spectra), the Legendre series
``P(λ) = Σ_k c_k P_k(x)``, ``x = 2 (λ − λ₀)/(λ_{n−1} − λ₀) − 1``, that best matches
``y`` (e.g. the ratio observed/model) in the weighted least-squares sense, optionally with
iterative sigma clipping. Used by spectral fitting and by the spectral matching of imaging
and IFS data, where the correction is applied multiplicatively to fluxes and errors alike
(the original fitted it additively but scaled errors multiplicatively).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import _core
from ..parallel import resolve_threads

__all__ = ["LegendreFit", "eval_legendre", "fit_legendre"]

#: Status codes of :class:`LegendreFit`.
STATUS = {0: "ok", 1: "too few valid points", 2: "singular system"}


@dataclass(frozen=True)
class LegendreFit:
    """Result of :func:`fit_legendre`.

    Attributes
    ----------
    wave : ndarray, shape (n,)
        Wavelength grid in Å (defines the mapping to [-1, 1]).
    coeffs : ndarray, shape (nspec, order + 1)
        Legendre coefficients (NaN where the fit failed).
    model : ndarray, shape (nspec, n), or None
        The fitted series on the grid (None with ``return_model=False``).
    used : ndarray of bool, shape (nspec, n)
        Points that entered the final fit (after clipping).
    status : ndarray of int, shape (nspec,)
        0 ok, 1 too few valid points, 2 singular system (see :data:`STATUS`).
    """

    wave: NDArray[np.float64]
    coeffs: NDArray[np.float64]
    model: NDArray[np.float64] | None
    used: NDArray[np.bool_]
    status: NDArray[np.int32]

    @property
    def ok(self) -> NDArray[np.bool_]:
        """True for spectra whose fit succeeded."""
        return self.status == 0


def _grid(wave: ArrayLike) -> NDArray[np.float64]:
    lam = np.asarray(wave, dtype=np.float64)
    if lam.ndim != 1 or lam.size < 2:
        raise ValueError("wave must be a 1-D array of at least 2 wavelengths")
    if not np.all(np.isfinite(lam)) or np.any(np.diff(lam) <= 0):
        raise ValueError("wave must be finite and strictly increasing")
    return lam


def fit_legendre(
    wave: ArrayLike,
    y: ArrayLike,
    weights: ArrayLike | None = None,
    order: int = 3,
    clip: float | None = None,
    max_iter: int = 10,
    threads: int | None = None,
    return_model: bool = True,
) -> LegendreFit:
    """Weighted least-squares Legendre fits of one or many spectra on a common grid.

    Parameters
    ----------
    wave : array_like, shape (n,)
        Wavelengths in Å, strictly increasing.
    y : array_like, shape (n,) or (nspec, n)
        Values to fit (e.g. observed/model flux ratios). NaN values are ignored.
    weights : array_like, same shape as ``y``, optional
        Weights w = 1/σ² of ``y``; 0 (or NaN) drops a point. Default: all 1.
    order : int
        Highest Legendre degree (0 = a constant factor).
    clip : float, optional
        Sigma-clipping threshold on normalised residuals (None: no clipping).
    max_iter : int
        Maximum number of fits when clipping.
    threads : int, optional
        OpenMP threads (None: all cores).
    return_model : bool
        Also evaluate the fitted series on the grid (``model``; None otherwise).

    Returns
    -------
    LegendreFit
        With 1-D input, arrays still carry a leading axis of length 1.
    """
    lam = _grid(wave)
    arr = np.asarray(y, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != lam.size:
        raise ValueError(
            f"y must have shape ({lam.size},) or (nspec, {lam.size}), got {arr.shape}"
        )
    if weights is None:
        w = np.ones_like(arr)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim == 1:
            w = w[None]
        if w.shape != arr.shape:
            raise ValueError(f"weights must have the shape of y {arr.shape}, got {w.shape}")
        if np.any(w < 0):
            raise ValueError("weights must be >= 0 (use 0 to drop a point)")
    if isinstance(order, bool) or not isinstance(order, int | np.integer) or not 0 <= order <= 64:
        raise ValueError(f"order must be an integer within 0..64, got {order!r}")
    if clip is not None and not clip > 0:
        raise ValueError(f"clip must be > 0 or None, got {clip}")
    if max_iter < 1:
        raise ValueError("max_iter must be >= 1")
    # points with a NaN value or weight are dropped by the kernel itself
    coeffs, model, used, status = _core.legendre_fit(
        lam,
        np.ascontiguousarray(arr),
        np.ascontiguousarray(w),
        int(order),
        clip=0.0 if clip is None else float(clip),
        max_iter=int(max_iter) if clip is not None else 1,
        return_model=bool(return_model),
        threads=resolve_threads(threads),
    )
    return LegendreFit(wave=lam, coeffs=coeffs, model=model, used=used.view(bool),
                       status=status)


def eval_legendre(wave: ArrayLike, coeffs: ArrayLike, threads: int | None = None
                  ) -> NDArray[np.float64]:
    """Evaluate Legendre series (nspec, order + 1) on ``wave`` (mapped to [-1, 1] by its ends).

    Parameters
    ----------
    wave : array_like, shape (n,)
        Wavelengths (Å; any increasing axis), mapped to [-1, 1] by their ends.
    coeffs : array_like, shape (nspec, order + 1) or (order + 1,)
        Coefficients of the series, lowest order first (as :func:`fit_legendre` returns).
    threads : int, optional
        OpenMP threads (None: all).

    Returns
    -------
    ndarray, shape (nspec, n)
    """
    lam = _grid(wave)
    c = np.asarray(coeffs, dtype=np.float64)
    if c.ndim == 1:
        c = c[None]
    if c.ndim != 2 or c.shape[1] < 1:
        raise ValueError("coeffs must have shape (nspec, order + 1)")
    return _core.legendre_eval(lam, np.ascontiguousarray(c), threads=resolve_threads(threads))
