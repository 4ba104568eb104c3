"""The observational error model of every fit: calibration errors, an explicit floor and
upper limits.

One module decides how observed fluxes and errors enter a likelihood; RDSPS
(:func:`pixedfit.fitting.rdsps.rdsps`, whose C++ kernel evaluates the same terms) and the
vectorised log posterior :class:`pixedfit.fitting.posterior.LogProbability` (MCMC and every
sampler built on it) use it alike.

Total error of a band
---------------------
σ_b² = σ_stat,b² + (c_b · |f_b|)² + (floor · |f_b|)²

* σ_stat — the statistical (noise) error given with the data;
* c_b — the fractional **calibration** error of band b (``calibration=``, on by default);
* floor — an explicit extra fractional error (``error_floor=``, default 0), e.g. for the
  model's own systematic uncertainty; it is never hidden inside the calibration term;
* f_b — the observed flux (the limit ``f_lim`` for an upper limit).

Calibration errors (``calibration=``)
-------------------------------------
``"auto"`` (default; ``True`` is the same)
    Catalogue and single-SED fits (``fit_sed``, ``fit_catalog``, ``pixedfit fit``): the
    instrument table, :func:`pixedfit.instruments.get_instrument` (filter) ``.calib_err``.
    Binned cubes (``fit_binmap``, ``pixedfit run``): the cube's per-band fractions
    (:attr:`pixedfit.cubes.BinnedCube.calib_err`, carried from the flux map's
    ``CALERR<i>`` header cards); cubes without them (files written before, or built
    without a flux map) fall back to the instrument table.
    A filter with no instrument entry gets **0**, with a :class:`CalibrationWarning` naming
    it: give its value with a mapping (below) or set ``calibration=False`` to silence it.
``False``, ``None`` or ``0``
    No calibration term.
a number
    The same fraction in every band.
a mapping ``{filter: fraction}``
    These bands as given, the others as ``"auto"`` (a key that is not a fitted filter
    raises).
a sequence of ``nband`` numbers
    One fraction per band, in band order.

Fractions must be finite and within [0, 1).

Calibration errors are one multiplicative offset per band for a whole image: fully
correlated across the pixels of the band. They do not average down when pixels are
summed, so they are **not** added per pixel: flux maps keep them in the header, bins sum
pixel fluxes with their statistical errors, and the fit adds c_b · |F_bin| to the binned
SED. The S/N targets of the binning (:func:`pixedfit.binning.bin_pixels`) therefore use the
statistical errors only. Fits of different bins treat the offsets as independent (each
bin's likelihood sees the same c_b, not one shared random offset).

Upper limits (Sawicki 2012, PASP 124, 1208)
-------------------------------------------
A band flagged as a non-detection enters the likelihood through the Gaussian CDF: the
probability that a model flux ``a m`` observed with noise σ falls below the limit,

    ln L_b = ln Φ((f_lim − a m) / σ_b),     i.e.  χ²_b = −2 ln Φ((f_lim − a m) / σ_b),

so that the reported χ² is Σ_detected ((f − a m)/σ)² − 2 Σ_limits ln Φ(...) (≥ 0, equal to
the usual χ² without limits). Which bands are limits:

``upper_limits=`` (explicit; shape (nband,) or (nsed, nband) of bool)
    ``True`` marks a limit. The flux value is the limit ``f_lim`` itself (e.g. a 3σ
    limit) and the error the 1σ noise σ_stat of that band.
``upper_limit_nsigma=n`` (rule; default None: off)
    Every band with a measured flux below n σ_stat (S/N < n) becomes a limit at
    f_lim = n σ_stat; and a NaN flux with a finite error > 0 means "not detected, noise
    σ_stat": a limit at n σ_stat.

Without ``upper_limit_nsigma`` a NaN flux is invalid: it raises, or with
``mask_invalid=True`` the band is dropped (so is an explicitly flagged band with a NaN flux:
give its limit as the flux). The default keeps every measured flux, even a negative one, in
the Gaussian term: for a measured flux and its error that likelihood is exact, and turning
it into a limit discards information; limits are for catalogues that report only a limit,
or for a deliberate choice with ``upper_limit_nsigma``.

In RDSPS the analytic normalisation of every model is fitted to the detected bands only
(it stays a closed-form least-squares scale); the limits then weigh each model at that
scale. A model whose shape violates a limit is penalised rather than scaled down, which
differs from a likelihood maximised (or marginalised, as MCMC does with ``log_mass``) over
the scale when a limit is close to the model: the two agree when the limits lie well above
the models the detections favour, the usual case. An SED whose bands are all limits has no
normalisation: RDSPS returns ``n_used = 0`` for it.

Goodness of fit
---------------
:func:`fit_quality` gives χ²/dof with ndof = (bands in the likelihood, limits included) −
(free parameters: the library parameters that vary, the normalisation, the redshift when
free); ``chi2_dof`` is NaN when ndof ≤ 0. Drivers put both in ``FitResult.diagnostics``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import log_ndtr

from ..instruments import get_instrument

__all__ = [
    "BandChi2",
    "CalibrationWarning",
    "Observations",
    "calibration_fractions",
    "chi2_terms",
    "fit_quality",
    "library_free_parameters",
    "observations",
    "scale_fit",
]


class CalibrationWarning(UserWarning):
    """A fitted band has no known calibration error (it gets 0)."""


def _fraction(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{what} must be a fraction in [0, 1), got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and 0.0 <= v < 1.0):
        raise ValueError(f"{what} must be a fraction in [0, 1), got {value!r}")
    return v


def _table_fractions(filters: Sequence[str]) -> NDArray[np.float64]:
    """Calibration fractions from the instrument table (0 and a warning when unknown)."""
    out = np.zeros(len(filters))
    unknown = []
    for b, name in enumerate(filters):
        try:
            out[b] = get_instrument(name).calib_err
        except KeyError:
            unknown.append(name)
    if unknown:
        warnings.warn(
            f"no instrument entry, hence no calibration error, for {', '.join(unknown)}: "
            "these bands get 0 (give calibration={band: fraction} or calibration=False)",
            CalibrationWarning, stacklevel=4)
    return out


def calibration_fractions(
    filters: Sequence[str],
    calibration: Any = "auto",
    cube: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Per-band calibration fractions of a fit (see the module docstring for the rules).

    Parameters
    ----------
    filters : sequence of str
        The fitted bands, in order.
    calibration : "auto", bool, None, float, mapping or sequence
        The user's choice: ``"auto"``/``True``, ``False``/``None``/``0``, one fraction, a
        mapping ``{filter: fraction}`` (others ``"auto"``) or ``nband`` fractions.
    cube : array_like, shape (nband,), optional
        Fractions stored with a binned cube (NaN where unknown): the ``"auto"`` source for
        binned fits; unknown bands fall back to the instrument table.

    Returns
    -------
    ndarray, shape (nband,)
        Fractions in [0, 1).

    Raises
    ------
    ValueError
        A fraction outside [0, 1), a mapping key that is not a fitted filter, or a
        sequence of the wrong length (all naming ``calibration``).
    """
    names = [str(f) for f in filters]
    nband = len(names)

    def auto(subset: list[int]) -> NDArray[np.float64]:
        out = np.full(nband, np.nan)
        if cube is not None:
            c = np.asarray(cube, dtype=np.float64).ravel()
            if c.size != nband:
                raise ValueError(f"the cube holds {c.size} calibration fractions for {nband} "
                                 "bands")
            out[:] = c
        need = [b for b in subset if not np.isfinite(out[b])]
        if need:
            out[need] = _table_fractions([names[b] for b in need])
        for b in subset:
            _fraction(out[b], f"calibration error of {names[b]}")
        return out

    if isinstance(calibration, str):
        if calibration.lower() != "auto":
            raise ValueError(f"calibration must be 'auto', False, a fraction, a mapping "
                             f"{{band: fraction}} or one fraction per band, got {calibration!r}")
        return auto(list(range(nband)))
    if calibration is True:
        return auto(list(range(nband)))
    if calibration is None or calibration is False:
        return np.zeros(nband)
    if isinstance(calibration, Mapping):
        unknown = [k for k in calibration if str(k) not in names]
        if unknown:
            raise ValueError(f"calibration: {unknown} are not fitted filters ({names})")
        given = {names.index(str(k)): _fraction(v, f"calibration[{k!r}]")
                 for k, v in calibration.items()}
        out = auto([b for b in range(nband) if b not in given])
        for b, v in given.items():
            out[b] = v
        return out
    if isinstance(calibration, int | float | np.integer | np.floating):
        return np.full(nband, _fraction(calibration, "calibration"))
    values = np.asarray(calibration, dtype=object).ravel()
    if values.size != nband:
        raise ValueError(f"calibration: {values.size} fractions for {nband} bands")
    return np.array([_fraction(v, f"calibration[{b}]") for b, v in enumerate(values)])


@dataclass(frozen=True)
class Observations:
    """Fluxes and errors as they enter a likelihood.

    Attributes
    ----------
    flux : ndarray, shape (nsed, nband)
        The observed flux, or the limit f_lim of an upper limit; 0 where a band is not used.
    sigma : ndarray, shape (nsed, nband)
        Total 1σ error (statistical, calibration and floor in quadrature); +inf where a
        band is not used.
    upper : ndarray of bool, shape (nsed, nband)
        Bands entering as upper limits.
    used : ndarray of bool, shape (nsed, nband)
        Bands in the likelihood (detections and limits).
    """

    flux: NDArray[np.float64]
    sigma: NDArray[np.float64]
    upper: NDArray[np.bool_]
    used: NDArray[np.bool_]

    @property
    def ivar(self) -> NDArray[np.float64]:
        """1/σ² (0 for unused bands)."""
        return np.where(self.used, 1.0 / np.where(self.used, self.sigma, 1.0) ** 2, 0.0)

    def row(self, index: int) -> Observations:
        """The observations of SED ``index`` (arrays of shape (1, nband))."""
        sl = slice(index, index + 1)
        return Observations(self.flux[sl], self.sigma[sl], self.upper[sl], self.used[sl])


def observations(
    flux: ArrayLike,
    flux_err: ArrayLike,
    nband: int,
    calibration: ArrayLike | None = None,
    error_floor: float = 0.0,
    upper_limits: ArrayLike | None = None,
    upper_limit_nsigma: float | None = None,
    mask_invalid: bool = False,
) -> Observations:
    """Apply the error model to observed fluxes and statistical errors.

    Parameters
    ----------
    flux, flux_err : array_like, shape (nband,) or (nsed, nband)
        Observed fluxes (limits for flagged bands) and 1σ statistical errors, in any one
        unit.
    nband : int
        Number of bands.
    calibration : array_like, shape (nband,), optional
        Calibration fractions per band (from :func:`calibration_fractions`); None: 0.
    error_floor : float
        Extra fractional error, in quadrature.
    upper_limits : array_like of bool, shape (nband,) or (nsed, nband), optional
        Explicit upper-limit flags (flux = the limit, error = the 1σ noise).
    upper_limit_nsigma : float, optional
        S/N below which a measured flux becomes a limit at ``n σ``; also turns a NaN flux
        with a finite error > 0 into a limit at ``n σ``.
    mask_invalid : bool
        Drop bands with an unusable flux or error instead of raising.

    Returns
    -------
    Observations

    Raises
    ------
    ValueError
        Shapes, an invalid flux or error (unless ``mask_invalid``), bad fractions or flags,
        each naming the argument.
    """
    d = np.asarray(flux, dtype=np.float64)
    e = np.asarray(flux_err, dtype=np.float64)
    if d.ndim == 1:
        d = d[None]
    if e.ndim == 1:
        e = e[None]
    if d.ndim != 2 or d.shape[1] != nband:
        raise ValueError(f"flux must have shape ({nband},) or (nsed, {nband}), got {d.shape}")
    if e.shape != d.shape:
        raise ValueError(f"flux_err must have the shape of flux {d.shape}, got {e.shape}")
    if isinstance(error_floor, bool) or not (
            isinstance(error_floor, int | float | np.integer | np.floating)
            and math.isfinite(error_floor) and error_floor >= 0):
        raise ValueError(f"error_floor must be a fraction >= 0, got {error_floor!r}")
    calib = np.zeros(nband) if calibration is None else np.asarray(calibration, np.float64)
    if calib.shape != (nband,) or not np.all(np.isfinite(calib)) or np.any(calib < 0) \
            or np.any(calib >= 1):
        raise ValueError(f"calibration must hold {nband} fractions in [0, 1), got {calib!r}")
    nsig = None
    if upper_limit_nsigma is not None:
        if isinstance(upper_limit_nsigma, bool) or not isinstance(
                upper_limit_nsigma, int | float | np.integer | np.floating) or not (
                math.isfinite(upper_limit_nsigma) and upper_limit_nsigma > 0):
            raise ValueError(f"upper_limit_nsigma must be a number > 0 (or None), got "
                             f"{upper_limit_nsigma!r}")
        nsig = float(upper_limit_nsigma)
    if upper_limits is None:
        flagged = np.zeros(d.shape, bool)
    else:
        u = np.asarray(upper_limits)
        if u.dtype != bool and not (np.issubdtype(u.dtype, np.integer)
                                    and np.all((u == 0) | (u == 1))):
            raise ValueError("upper_limits must be booleans (True: the band is an upper limit)")
        try:
            flagged = np.broadcast_to(u.astype(bool), d.shape).copy()
        except ValueError:
            raise ValueError(f"upper_limits must have shape ({nband},) or {d.shape}, got "
                             f"{u.shape}") from None
    err_ok = np.isfinite(e) & (e > 0)
    value = d.copy()
    upper = flagged & err_ok & np.isfinite(d)
    nan_flux = ~np.isfinite(d) & err_ok
    if nsig is not None:
        rule = err_ok & np.isfinite(d) & ~flagged & (d < nsig * e)
        to_limit = rule | nan_flux
        value = np.where(to_limit, nsig * np.where(err_ok, e, 0.0), value)
        upper |= to_limit
    bad = ~err_ok | (~np.isfinite(value))
    if bad.any() and not mask_invalid:
        sed, band = np.argwhere(bad)[0]
        hint = ""
        if flagged[sed, band] and not np.isfinite(d[sed, band]):
            hint = (" (upper_limits flags this band: give the limit as its flux, or set "
                    "upper_limit_nsigma to place it at n sigma)")
        elif nan_flux[sed, band]:
            hint = " (set upper_limit_nsigma to read a NaN flux with an error as a limit)"
        raise ValueError(
            f"SED {sed}, band {band}: flux {d[sed, band]!r} with error {e[sed, band]!r} — "
            "fluxes must be finite and errors finite and > 0; pass mask_invalid=True to drop "
            f"such bands from the fit{hint}"
        )
    used = ~bad
    upper &= used
    f = np.where(used, value, 0.0)
    frac2 = calib[None, :] ** 2 + float(error_floor) ** 2
    with np.errstate(invalid="ignore"):
        sigma = np.sqrt(np.where(used, e, 0.0) ** 2 + frac2 * f * f)
    sigma = np.where(used, sigma, np.inf)
    return Observations(np.ascontiguousarray(f), np.ascontiguousarray(sigma),
                        np.ascontiguousarray(upper), np.ascontiguousarray(used))


def scale_fit(model: NDArray, flux: NDArray, sigma: NDArray, use: NDArray | None = None
              ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Weighted least-squares normalisation of model photometry to observed fluxes.

    Parameters
    ----------
    model : ndarray, shape (n, nband)
        Model fluxes (any units; non-finite values count as 0).
    flux, sigma : ndarray, shape (nband,)
        Observed fluxes and their 1σ errors (the same units).
    use : ndarray of bool, shape (nband,), optional
        Bands to use; always restricted to a finite flux and a finite error > 0.

    Returns
    -------
    scale : ndarray, shape (n,)
        ``s = Σ m f / σ² / Σ m² / σ²`` (NaN where no band constrains it).
    fisher : ndarray, shape (n,)
        ``Σ m² / σ²``: the 1σ error of the scale is ``1 / √fisher``.
    """
    ok = np.isfinite(flux) & np.isfinite(sigma) & (sigma > 0)
    if use is not None:
        ok &= np.asarray(use, dtype=bool)
    # only the bands used, summed band after band (see _row_sums): a masked band must not
    # change the result, nor the number of models scaled together
    ivar = 1.0 / sigma[ok] ** 2
    d = flux[ok]
    sub = np.atleast_2d(model)[:, ok]
    m = np.where(np.isfinite(sub), sub, 0.0)
    fisher = _row_sums(m * m * ivar)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _row_sums(m * d * ivar) / fisher, fisher


def chi2_terms(model: ArrayLike, flux: ArrayLike, sigma: ArrayLike,
               upper: ArrayLike | None = None) -> NDArray[np.float64]:
    """Generalised χ² of model photometry: Σ_det ((f − m)/σ)² − 2 Σ_lim ln Φ((f − m)/σ).

    Parameters
    ----------
    model : array_like, shape (n, nband)
        Model fluxes (already scaled).
    flux, sigma : array_like, shape (nband,)
        Observations as fitted (:class:`Observations` rows); σ = inf drops a band.
    upper : array_like of bool, shape (nband,), optional
        Upper-limit flags.

    Returns
    -------
    ndarray, shape (n,)
    """
    return BandChi2(flux, sigma, upper)(model)


class BandChi2:
    """:func:`chi2_terms` against fixed observations, the bands' selection made once: for
    a likelihood evaluated batch after batch (the same operations on the same values).

    Parameters
    ----------
    flux, sigma : array_like, shape (nband,)
        Observations as fitted (:class:`Observations` rows; f_λ in erg s⁻¹ cm⁻² Å⁻¹ or any
        unit of the model fluxes); σ = inf drops a band.
    upper : array_like of bool, shape (nband,), optional
        Upper-limit flags.
    """

    def __init__(self, flux: ArrayLike, sigma: ArrayLike, upper: ArrayLike | None = None):
        f = np.asarray(flux, dtype=np.float64).ravel()
        s = np.asarray(sigma, dtype=np.float64).ravel()
        used = np.isfinite(s)
        # the model's columns of the used bands (None: all of them, no selection)
        self._used = None if used.all() else np.flatnonzero(used)
        self._flux, self._sigma = f[used], s[used]
        self._limits: tuple[NDArray[np.intp], NDArray[np.intp]] | None = None
        if upper is not None:
            lim = np.asarray(upper, dtype=bool).ravel()[used]
            self._limits = np.flatnonzero(~lim), np.flatnonzero(lim)

    def __call__(self, model: ArrayLike) -> NDArray[np.float64]:
        """χ² of model fluxes ``model`` (n, nband), already scaled: an array (n,)."""
        m = np.atleast_2d(np.asarray(model, dtype=np.float64))
        r = (self._flux - (m if self._used is None else m[:, self._used])) / self._sigma
        if self._limits is None:
            return _row_sums(r * r)
        detected, lim = self._limits
        return _row_sums(r[:, detected] ** 2) - 2.0 * _row_sums(log_ndtr(r[:, lim]))


#: Rows up to which :func:`_row_sums` takes the running sums along each row (one call);
#: beyond, a vector addition per band is faster.
_ROW_SUMS_RUNNING = 128


def _row_sums(a: NDArray[np.float64]) -> NDArray[np.float64]:
    """Sums over the bands (axis 1), band after band: numpy's ``sum(axis=1)`` picks its
    order from the array's shape, so a model's χ² would change in the last bit with the
    number of models evaluated with it. Both ways below add the same numbers in the same
    order, from 0."""
    if a.shape[1] == 0 or a.shape[0] > _ROW_SUMS_RUNNING:
        out = np.zeros(a.shape[0])
        for j in range(a.shape[1]):
            out += a[:, j]
        return out
    # a running sum starts at the first band, not at 0: + 0.0 turns a −0 total into the
    # +0 of a sum from 0 (0 + x is x for every other x)
    return np.cumsum(a, axis=1)[:, -1] + 0.0


def fit_quality(chi2_min: float, n_bands: int, n_free: int) -> dict[str, float | int]:
    """χ²/dof of a fit: ``{"chi2_dof": χ²_min / ndof (NaN when ndof <= 0), "ndof": ndof}``
    with ndof = bands in the likelihood − free parameters.

    Parameters
    ----------
    chi2_min : float
        The fit's smallest χ².
    n_bands : int
        Bands (and spectral pixels) in the likelihood.
    n_free : int
        Free parameters of the fit.

    Returns
    -------
    dict
    """
    ndof = int(n_bands) - int(n_free)
    value = float(chi2_min) / ndof if ndof > 0 and math.isfinite(chi2_min) else math.nan
    return {"chi2_dof": value, "ndof": ndof}


def library_free_parameters(params: Mapping[str, ArrayLike], free_z: bool) -> int:
    """Free parameters of a library fit: the library parameters that vary (``log_mass``
    excluded), the normalisation, and the redshift when free.

    Parameters
    ----------
    params : mapping name → array_like
        The library's parameter columns.
    free_z : bool
        Whether the redshift is fitted.

    Returns
    -------
    int
    """
    n = sum(1 for name, v in params.items()
            if name != "log_mass" and np.ptp(np.asarray(v, dtype=np.float64)) > 0)
    return n + 1 + int(free_z)


def error_settings(
    filters: Sequence[str],
    calibration: Any = "auto",
    upper_limits: ArrayLike | None = None,
    upper_limit_nsigma: float | None = None,
    nsed: int | None = None,
    cube_calibration: ArrayLike | None = None,
) -> dict[str, Any]:
    """The error-model settings of a run of fits, validated once.

    Parameters
    ----------
    filters : sequence of str
        Fitted bands.
    calibration : see :func:`calibration_fractions`
    upper_limits : array_like of bool, shape (nband,) or (nsed, nband), optional
        Upper-limit flags for every SED, or per SED (row ``i`` for SED ``i``).
    upper_limit_nsigma : float, optional
    nsed : int, optional
        Number of SEDs of the run (checks a 2-D ``upper_limits``).
    cube_calibration : array_like, shape (nband,), optional
        Fractions stored with a binned cube.

    Returns
    -------
    dict
        ``calibration`` (ndarray (nband,)), ``upper_limits`` (bool ndarray or None),
        ``upper_limit_nsigma`` (float or None), to merge into a driver's settings.
    """
    nband = len(filters)
    calib = calibration_fractions(filters, calibration, cube_calibration)
    up = None
    if upper_limits is not None:
        up = np.asarray(upper_limits)
        if up.dtype != bool and not (np.issubdtype(up.dtype, np.integer)
                                     and np.all((up == 0) | (up == 1))):
            raise ValueError("upper_limits must be booleans (True: the band is an upper limit)")
        up = up.astype(bool)
        rows = (nsed,) if nsed is not None else ()
        if up.shape != (nband,) and not (up.ndim == 2 and up.shape == (*rows, nband)
                                         and nsed is not None):
            raise ValueError(f"upper_limits must have shape ({nband},)"
                             + (f" or ({nsed}, {nband})" if nsed is not None else "")
                             + f", got {up.shape}")
    if upper_limit_nsigma is not None:
        observations(np.ones(nband), np.ones(nband), nband,
                     upper_limit_nsigma=upper_limit_nsigma)  # validates the value
        upper_limit_nsigma = float(upper_limit_nsigma)
    return {"calibration": calib, "upper_limits": up, "upper_limit_nsigma": upper_limit_nsigma}


def error_kwargs(settings: Mapping[str, Any], index: int | None = None) -> dict[str, Any]:
    """Keyword arguments of :func:`observations` / :func:`pixedfit.fitting.rdsps.rdsps`
    from a driver's settings, with the upper-limit flags of SED ``index``.

    Parameters
    ----------
    settings : mapping
        The driver's settings (``calibration``, ``error_floor``, ``upper_limits``,
        ``upper_limit_nsigma``).
    index : int, optional
        Row of per-SED upper-limit flags (nsed, nband) to take (None: the first).

    Returns
    -------
    dict
        ``calibration``, ``error_floor``, ``upper_limits`` and ``upper_limit_nsigma``.
    """
    up = settings.get("upper_limits")
    if up is not None and np.ndim(up) == 2:
        up = up[0 if index is None else index]
    return {"calibration": settings.get("calibration"),
            "error_floor": settings.get("error_floor", 0.0),
            "upper_limits": up,
            "upper_limit_nsigma": settings.get("upper_limit_nsigma")}


def error_diagnostics(settings: Mapping[str, Any], upper: ArrayLike | None, chi2_min: float,
                      n_bands: int, n_free: int) -> dict[str, Any]:
    """Diagnostics of the error model of one fit: ``chi2_dof``, ``ndof``, the calibration
    fractions used and the bands fitted as upper limits.

    Parameters
    ----------
    settings : mapping
        The driver's settings (their ``calibration`` fractions).
    upper : array_like of bool, shape (nband,), or None
        Bands fitted as upper limits.
    chi2_min : float
        The fit's smallest χ².
    n_bands : int
        Bands (and spectral pixels) in the likelihood.
    n_free : int
        Free parameters of the fit.

    Returns
    -------
    dict
        ``chi2_dof``, ``ndof`` (:func:`fit_quality`), ``calibration`` (list of float or
        None) and ``upper_limits`` (list of bool or None).
    """
    calib = settings.get("calibration")
    return {
        **fit_quality(chi2_min, n_bands, n_free),
        "calibration": None if calib is None else [float(c) for c in calib],
        "upper_limits": None if upper is None else [bool(u) for u in np.ravel(upper)],
    }
