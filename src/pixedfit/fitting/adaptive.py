"""Adaptive RDSPS: the library pass refined by importance sampling to a converged posterior.

Why. A library of 10⁵ random models samples an 8–10 dimensional parameter space far more
coarsely than the posterior of a well-measured SED is wide: a handful of models carry all
the weight, and which ones they are is luck (fits of one galaxy with two libraries that
differ only in their seed differ by ~0.13 dex in stellar mass). Speed per library pass is not
what matters; time to a posterior that does not depend on the seed is.

How. The library pass (:func:`pixedfit.fitting.rdsps.rdsps`, the original's method) is the
first round. Then, for each SED, rounds of adaptive importance sampling (population Monte
Carlo, Cappé et al. 2004; with the deterministic-mixture weights of AMIS, Cornuet et al.
2012) with the batched forward model, in the unbounded coordinates
``y = logit((θ − lo) / (hi − lo))`` of the prior box (where the uniform box prior is a
product of logistic densities, so unconstrained parameters are as easy to cover as the
constrained ones and no proposal falls outside the box):

0. **Modes and mass** (photometric fits) — Levenberg–Marquardt from ``n_starts`` library
   models finds the posterior modes (:func:`_laplace_modes`). The starts are the best
   model and then, again and again, the one farthest from those chosen among the 64 of
   lowest χ² (:func:`_spread_starts`; at one redshift, the χ² of every library model, not
   only of those the library pass left a weight: the starts must reach each mode of a
   posterior such as dust in birth clouds or in the diffuse medium). The Laplace
   (Gauss–Newton) covariance at each is then reshaped along its eigenvectors to where the
   posterior really falls by e⁻² on either side (:func:`_calibrated_laplace`: directions
   the data constrain weakly often end at a cliff long before the Gaussian would; with
   ``log_mass`` drawn from its conditional, as below, it is the other parameters'
   marginal that is calibrated, the mass profiled at every position), and these
   approximations, with the library kernels, make the first proposal. In every
   round ``log_mass`` is not proposed with the other parameters but drawn from its
   conditional posterior given them (:class:`_MassProposal`): the model photometry is
   proportional to the mass, so one model evaluation gives the best mass and its Fisher
   width, and the proposal works in one dimension fewer, the narrowest and most
   correlated one removed.
1. **Proposal** — a mixture of multivariate Student-t kernels (``df`` degrees of freedom):
   70 % from a Gaussian mixture of up to ``mixture_components`` kernels fitted by EM to
   the weighted samples of all rounds so far (:func:`_em_mixture`: the posteriors of
   galaxy SEDs are curved and skewed, e.g. along the age–τ–mass degeneracy, and a fitted
   mixture follows them; measured on DustPedia galaxies with proposals built from
   converged posteriors, 16 kernels yield 2–4× the ESS per sample of the kernel density
   estimate), half of it fitted in the unbounded coordinates ``y`` (kernels widened 1.2×)
   and half in the box coordinates ``u = σ(y)`` and truncated to the box
   (:class:`_BoxMixture`, kernels widened 1.3×: a posterior piled against an edge of the
   box — an age at the age of the universe, dust near zero — is an exponential tail in
   ``y`` but a cut bell in ``u``; with both, the 532 DustPedia galaxies need 28 % fewer
   evaluations and two library seeds put 1 % of the stellar masses more than 0.3 σ apart
   instead of 11 %); the rest from kernels centred on up to
   ``max_components`` points drawn from the weighted samples, sharing their weighted
   covariance shrunk by Silverman's factor (a kernel density estimate), and one kernel
   at their weighted mean with their covariance inflated 1.5²; and a ``defensive``
   fraction from the box prior itself, so that no region the prior allows has zero
   proposal density. While the weights are degenerate (effective sample size below
   ``min_adapt_ess``) they are tempered (``w^β``, β < 1) first, so that the proposal is
   a broadened version of the posterior, never a collapsed one, and rounds stay at
   ``batch`` samples, so that the proposal adapts again soon. The first proposal is built
   from the Laplace approximations (0.) or from the library models (each with its best
   normalisation) and their library weights.
2. **Annealing when needed** — if after ``anneal_after`` rounds the ESS is still below
   ``min_adapt_ess`` (a posterior far narrower than the library's spacing, or curved), a
   sequential Monte Carlo stage carries ``n_particles`` library models, tempered, to the
   posterior with differential-evolution Metropolis moves (:func:`_anneal`), and the next
   proposal is built from those particles.
3. **Weights** — every sample of every round gets the weight
   ``π(y) / (q_M(y) Σ_r (N_r / N) q_r(y))`` (``q_M`` the density of its drawn mass, 1
   without the mass-conditional draw), where π is the same unnormalised posterior as the MCMC
   (:class:`~pixedfit.fitting.posterior.LogProbability`: likelihood × priors × the prior box,
   mass sampled with a flat prior in log M like the other parameters) times the Jacobian
   of the coordinates, and the sum runs over all proposals so far. These weights are
   unbiased whatever the proposals were, and robust to a poor early round.
4. **Stop** when the effective sample size ``ESS = (Σw)² / Σw²`` of all rounds together
   reaches ``target_ess`` *and* the weights pass the Pareto-k̂ reliability test of PSIS
   (k̂ < 0.7; Vehtari et al. 2024) — an ESS alone can look large while a weight that
   has not been drawn yet would dominate — *and* the medians of log M* and log SFR are
   known to ``median_precision`` (0.02 dex Monte-Carlo error, :func:`median_errors`;
   posteriors with a 68 % half-width above ``precision_max_width``, 1 dex, are bounds, not
   held to it), or when
   ``max_evaluations`` model evaluations are spent (then the result says
   ``converged=False`` and a :class:`ConvergenceWarning` is raised). A round is drawn in
   chunks of ``batch / 2`` and the test is made after each, so a fit stops within half a
   batch of the sample that makes it converge instead of at the end of a round sized by
   an estimate (on the 532 DustPedia galaxies: 18 % fewer evaluations, the final ESS
   373 instead of 425 at the median). Smaller last chunks, sized to stop right at the
   target, save evaluations but not time, and make the ESS less honest: stopping at the
   first small chunk whose ESS passes picks the moments it is overestimated (measured,
   ``benchmarks/RESULTS.md``).

Limits (measured, ``benchmarks/RESULTS.md``): importance sampling cannot see a part of the
posterior that no proposal reaches. On the 11-parameter DustPedia model two library seeds
can still give stellar masses ≈ 1σ apart while both report convergence; nested sampling
(``method="nested"``) is the check for such models. The ESS is optimistic: fitted again
with new libraries, the medians of 41 DustPedia galaxies scatter by ≈ 1.5× the
Monte-Carlo error :func:`median_errors` reports, at a target ESS of 300 as of 1 200; with
one library and new seeds of the sampler, by ≈ 1.1–1.3×. The ESS nearly measures the
sampler's own randomness; where the library makes it start (the Levenberg–Marquardt
starts, the library kernels of the first proposal) adds about as much variance again,
which no statistic of one run's weights can see
(``benchmarks/bench_seed_honesty.py``; wider kernels, more starts or iterations and
reweighting without the early rounds do not change it: ``benchmarks/RESULTS.md``).

The default target, 300, puts the Monte-Carlo error of a posterior median at
``1.25 σ / √ESS`` ≈ 0.07 σ by the ESS, ≈ 0.1 σ as measured (above; 0.02 dex for
σ = 0.2 dex); the median-precision criterion raises the ESS a fit needs where log M* or
log SFR is broad but still measured (ESS ≈ 3 900 for a 68 % half-width of 1 dex), so
that two seeds rarely differ by more than 0.1 dex there. The seed of every SED is an
argument: the same seed gives the same result for any number of threads and MPI ranks on
one machine (another CPU, BLAS kernel or numpy SIMD path changes the last bits, and the
sampler magnifies them to Monte-Carlo differences).

Without an :class:`~pixedfit.sps.SEDModel` (a library read from the original's layout
records no complete model), there is nothing to refine with: the drivers then return the
library pass with its (usually small) effective sample size and ``converged=False``; pass
``model=`` to refine.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit, gammaln, logsumexp, poch, stdtr, stdtrit

from .. import _core
from .boxes import (
    DEFAULT_LOG_MASS_TO_LIGHT,
    MassBoxWarning,
    check_log_mass_to_light,
    mass_box_edge,
)
from .errors import fit_quality, scale_fit
from .posterior import FitContext, LibraryPass, LogProbability, sampling_problem
from .results import FitResult, systematic_indices

__all__ = ["AdaptiveSettings", "ConvergenceWarning", "ImportanceSamples", "refine"]


class ConvergenceWarning(UserWarning):
    """A fit stopped before its effective sample size reached the target."""


@dataclass(frozen=True, kw_only=True)
class AdaptiveSettings:
    """Settings of the adaptive refinement of RDSPS.

    Attributes
    ----------
    target_ess : float
        Effective sample size at which a fit has converged. The default, 300, puts the
        Monte-Carlo error of a median at 1.2533 / √300 = 0.07 σ of a Gaussian posterior
        (by the ESS; ≈ 1.5× that measured over new libraries: the module docstring);
        ``median_precision`` asks for more where that is above 0.02 dex (posteriors
        wider than ≈ 0.28 dex). On the 532 DustPedia galaxies two library seeds then give
        log M* medians with an NMAD of 0.013–0.014 dex at a median final ESS of 360–375
        (0.012 when the last round overshot the target to an ESS of 421; 0.010 with a
        target of 500, which took ≈ 1.25 × the evaluations: ``benchmarks/RESULTS.md``).
    max_evaluations : int
        Budget of forward-model evaluations per SED.
    batch : int
        Samples of the first adaptive round (later rounds are sized from the measured
        efficiency, between ``batch / 2`` and ``4 × batch``); every round is drawn in
        chunks of ``batch / 2``, after each of which the fit stops if it has converged.
    max_rounds : int
        Adaptive rounds at most (the default, 60, leaves ``max_evaluations`` the budget
        that binds: with 40, one of 1 064 DustPedia fits stopped unconverged after 40
        rounds of ≈ 1 000 samples, its ESS collapsing again and again).
    df : float
        Degrees of freedom of the Student-t kernels (and of the conditional mass draw). The
        default, 20, keeps polynomial tails; on 2 × 133 DustPedia galaxies it needs
        7–9 % fewer evaluations than 5 (a 10-dimensional t with few degrees of freedom
        puts many draws far out, where the defensive box-prior part already covers the
        posterior) and 2–5 % more than Gaussian kernels (``benchmarks/RESULTS.md``).
    defensive : float
        Fraction of every round drawn uniformly over the prior box.
    max_components : int
        Kernels of the kernel density part of a proposal at most.
    mixture_components : int
        Kernels of each of the two Gaussian mixtures fitted (by EM) to the weighted
        samples of the rounds so far, one in the unbounded and one in the box coordinates,
        which together make most of every later proposal (0: none, the kernel density and
        the Student-t at the mean alone: the earlier scheme).
    min_adapt_ess : float
        Weights are tempered until their ESS reaches this before a proposal is built from
        them (None: 10 × the number of sampled parameters).
    max_candidates : int
        Library models that seed the first proposal.
    n_particles : int
        Particles of the annealing stage that carries the library to the posterior when
        the importance rounds make no headway from it (0: never anneal).
    anneal_after : int
        Importance rounds after which, if the ESS is still below ``min_adapt_ess``, the
        annealing stage runs (once). On 2 × 133 DustPedia galaxies, 10 needs 6–8 % fewer
        evaluations than 8 (and 6 needs 10 % more): most of the fits that would anneal
        after 8 rounds get there by importance sampling; never annealing saves only 2 %
        more, and the stage stays for posteriors far narrower than the library's spacing.
    n_moves : int
        Random-walk Metropolis moves per tempering step (twice that at β = 1).
    max_tempering_steps : int
        Tempering steps at most.
    n_samples : int
        Equal-weight posterior samples kept in the result (resampled from the weighted
        ones; 0 keeps none).
    max_pareto_k : float
        A fit has converged only when, besides the ESS, the Pareto shape k̂ of its largest
        weights (:func:`pareto_k`) is below this: otherwise a few samples dominate and the
        ESS cannot be trusted.
    mass_conditional : bool
        Draw ``log_mass`` of every proposed position from its conditional posterior given
        the other parameters (:class:`_MassProposal`: photometric fits with a free mass),
        so that the adaptive proposal covers the other parameters only. False: the mass is
        one more dimension of the adaptive proposal (the earlier scheme, for comparison).
    n_starts : int
        Library models (spread among those of lowest χ²) from which Levenberg–Marquardt
        looks for the posterior modes whose Laplace approximations make the first proposal
        (photometric fits with a free mass; 0: start from the library models alone).
    max_newton_iter : int
        Levenberg–Marquardt iterations at most.
    median_precision : float
        A fit has converged only when, besides the ESS and k̂, the Monte-Carlo standard
        error of the posterior median of every quantity in ``precision_quantities`` is at
        most this (in the quantity's unit: dex for the log quantities). The error is the
        asymptotic one of a weighted median, ``sqrt(0.25 / ESS) / f(median)``, with the
        density ``f`` read from the 40th and 60th weighted percentiles
        (:func:`median_errors`). 0 disables the criterion.
    precision_max_width : float
        Quantities whose posterior half-width (p84 − p16) / 2 exceeds this are bounds
        rather than measurements (the SFR of a quenched galaxy can spread over 10 dex):
        their medians are held to ``target_ess`` only — reaching 0.02 dex would need an
        ESS of (1.25 × width / 0.02)². The default, 1 dex, makes the criterion ask for an
        ESS of at most ≈ 3 900.
    precision_quantities : tuple of str
        Parameters or derived quantities whose medians must be that precise (those the fit
        does not have are skipped).
    log_mass_to_light : (float, float)
        Range of log(M / νL_ν,max) [M☉ / L☉] that makes the ``log_mass`` prior box of a
        photometric fit (:mod:`pixedfit.fitting.boxes`; a ``log_mass`` prior with lo and hi
        replaces it).
    seed : int
        Seed of the proposals and the resampling.
    """

    target_ess: float = 300.0
    max_evaluations: int = 100_000
    batch: int = 1000
    max_rounds: int = 60
    df: float = 20.0
    defensive: float = 0.05
    max_components: int = 32
    mixture_components: int = 16
    min_adapt_ess: float | None = None
    max_candidates: int = 20000
    n_samples: int = 1000
    n_particles: int = 400
    anneal_after: int = 10
    n_moves: int = 3
    max_tempering_steps: int = 60
    max_pareto_k: float = 0.7
    mass_conditional: bool = True
    n_starts: int = 8
    max_newton_iter: int = 30
    median_precision: float = 0.02
    precision_max_width: float = 1.0
    precision_quantities: tuple[str, ...] = ("log_mass", "log_sfr", "log_sfr100")
    log_mass_to_light: tuple[float, float] = DEFAULT_LOG_MASS_TO_LIGHT
    seed: int = 0

    def check(self) -> None:
        """Raise ValueError naming the first invalid setting."""
        ints = ("max_evaluations", "batch", "max_rounds", "max_components", "max_candidates",
                "n_moves", "max_tempering_steps", "anneal_after", "max_newton_iter", "seed")
        for name in ints:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < (
                    0 if name == "seed" else 1):
                raise ValueError(f"AdaptiveSettings.{name} must be a positive integer, "
                                 f"got {v!r}")
        for name in ("n_samples", "n_particles", "n_starts", "mixture_components"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
                raise ValueError(f"AdaptiveSettings.{name} must be an integer >= 0, got "
                                 f"{v!r}")
        for name in ("target_ess", "df"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValueError(f"AdaptiveSettings.{name} must be a number > 0, got {v!r}")
        if not (isinstance(self.defensive, int | float) and 0 < self.defensive < 1):
            raise ValueError(f"AdaptiveSettings.defensive must be within (0, 1), got "
                             f"{self.defensive!r}")
        if not (isinstance(self.max_pareto_k, int | float) and self.max_pareto_k > 0):
            raise ValueError(f"AdaptiveSettings.max_pareto_k must be > 0, got "
                             f"{self.max_pareto_k!r}")
        if not isinstance(self.mass_conditional, bool | np.bool_):
            raise ValueError(f"AdaptiveSettings.mass_conditional must be True or False, got "
                             f"{self.mass_conditional!r}")
        for name in ("median_precision", "precision_max_width"):
            v = getattr(self, name)
            if isinstance(v, bool) or not (isinstance(v, int | float) and math.isfinite(v)
                                           and v >= 0):
                raise ValueError(f"AdaptiveSettings.{name} must be a number >= 0, got {v!r}")
        if (isinstance(self.precision_quantities, str)
                or not all(isinstance(q, str) for q in self.precision_quantities)):
            raise ValueError("AdaptiveSettings.precision_quantities must be a tuple of "
                             f"quantity names, got {self.precision_quantities!r}")
        if self.min_adapt_ess is not None and not self.min_adapt_ess >= 2:
            raise ValueError("AdaptiveSettings.min_adapt_ess must be >= 2 (or None)")
        check_log_mass_to_light(self.log_mass_to_light, "AdaptiveSettings")


def _logsumexp_columns(a: NDArray[np.float64]) -> NDArray[np.float64]:
    """``log Σ_k exp(a[k, i])`` of every column of ``a`` (K, n), which is used as the work
    space (its values are lost); −inf for a column of −inf. Kernels along the first axis:
    every pass runs over whole rows, far faster than a reduction along short rows."""
    m = a.max(axis=0)
    m = np.where(np.isfinite(m), m, 0.0)
    a -= m
    np.exp(a, out=a)
    with np.errstate(divide="ignore"):
        return np.log(a.sum(axis=0)) + m


def _logsumexp_rows(a: NDArray[np.float64], overwrite: bool = False) -> NDArray[np.float64]:
    """``log Σ_j exp(a[i, j])`` of every row of ``a`` (n, m); −inf for a row of −inf.
    ``overwrite``: ``a`` may be used as the work space (its values are lost).

    :func:`_logsumexp_columns` of the transpose, on a copy of the same memory layout (the
    layout decides numpy's summation order); plain numpy is ≈ 4× faster here than
    :func:`scipy.special.logsumexp` (same result to rounding). A single column (one
    proposal so far) is returned as it is: the same bits the sum would give."""
    if a.shape[1] == 1:
        return a[:, 0].copy()
    return _logsumexp_columns((a if overwrite else a.copy(order="K")).T)


def effective_sample_size(log_weights: NDArray[np.float64]) -> float:
    """Kish's effective sample size ``(Σw)² / Σw²`` of (unnormalised) log weights."""
    lw = np.asarray(log_weights, dtype=np.float64)
    lw = lw[np.isfinite(lw)]
    return _kish_ess(lw) if lw.size else 0.0


def _kish_ess(finite_log_weights: NDArray[np.float64]) -> float:
    """:func:`effective_sample_size` of log weights known to be finite (one or more)."""
    w = np.exp(finite_log_weights - finite_log_weights.max())  # largest 1: no overflow
    return float(w.sum() ** 2 / (w * w).sum())


def pareto_k(log_weights: NDArray[np.float64]) -> float:
    """Shape k̂ of a generalised Pareto distribution fitted to the largest importance
    weights: the reliability diagnostic of importance sampling (Vehtari et al. 2024,
    "Pareto smoothed importance sampling", JMLR 25, 72). k̂ < 0.7: the weighted estimates
    are reliable and their error shrinks as 1/√ESS; above, a few weights dominate and the
    ESS overstates the precision.

    The tail is the M = min(S/5, 3√S) largest of S weights above the next one; the fit is
    the empirical-Bayes estimator of Zhang & Stephens (2009, Technometrics 51, 316) with the
    weakly informative shrinkage of k̂ towards 0.5 (10 pseudo-observations) of Vehtari et
    al. Returns ``inf`` when there are too few weights to judge (< 10 in the tail)."""
    lw = np.asarray(log_weights, dtype=np.float64)
    lw = np.sort(lw[np.isfinite(lw)])
    size = lw.size
    m = int(min(0.2 * size, 3.0 * math.sqrt(size)))
    if m < 10:
        return math.inf
    w = np.exp(lw - lw[-1])
    x = w[-m:] - w[-m - 1]  # exceedances over the threshold, increasing
    x = x[x > 0]
    n = x.size
    if n < 10:
        return math.inf
    # candidate values θ_j of the profile likelihood in θ = −k/σ (Zhang & Stephens eq. 7)
    n_grid = 30 + int(math.sqrt(n))
    j = np.arange(1, n_grid + 1)
    quartile = x[max(int(n / 4 + 0.5) - 1, 0)]
    theta = 1.0 / x[-1] + (1.0 - np.sqrt(n_grid / (j - 0.5))) / (3.0 * quartile)
    # for fixed θ = −k/σ the maximum-likelihood shape is k(θ) = mean(ln(1 − θx)), and the
    # profile log likelihood n (ln(−θ / k(θ)) − k(θ) − 1)
    k_j = np.log1p(-theta[:, None] * x[None, :]).mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        loglik = n * (np.log(-theta / k_j) - k_j - 1.0)
    ok = np.isfinite(loglik)
    if not ok.any():
        return math.inf
    post = np.exp(loglik[ok] - logsumexp(loglik[ok]))
    theta_hat = float((theta[ok] * post).sum())
    k_hat = float(np.log1p(-theta_hat * x).mean())
    return (n * k_hat + 10 * 0.5) / (n + 10)


def _tempered(log_weights: NDArray[np.float64], min_ess: float) -> NDArray[np.float64]:
    """Normalised weights ``w^β`` with the largest β ≤ 1 whose ESS reaches ``min_ess``
    (or as close as the number of finite weights allows; :func:`_tempering_exponent`)."""
    lw = np.where(np.isfinite(log_weights), log_weights, -np.inf)
    finite = np.isfinite(lw)
    beta = _tempering_exponent(lw, min_ess)
    t = np.where(finite, beta * np.where(finite, lw, 0.0), -np.inf)
    if not finite.any():
        return np.full(t.size, np.nan)
    t -= t.max()
    w = np.exp(t)
    return w / w.sum()


class _Box:
    """The map between the prior box [lo, hi] and unbounded coordinates
    ``y = logit((θ − lo) / (hi − lo))``, in which the sampler works: a uniform prior over
    the box becomes a product of standard logistic densities (bell-shaped, unbounded), so
    parameters the data do not constrain are as easy to cover with Student-t kernels as
    the constrained ones, and no proposal mass falls outside the box."""

    def __init__(self, lo: NDArray, hi: NDArray):
        self.lo = np.asarray(lo, dtype=np.float64)
        self.width = np.asarray(hi, dtype=np.float64) - self.lo
        self.log_volume = float(np.log(self.width).sum())

    def to_y(self, theta: NDArray) -> NDArray[np.float64]:
        u = np.clip((np.asarray(theta, dtype=np.float64) - self.lo) / self.width, 1e-12,
                    1.0 - 1e-12)
        return np.log(u) - np.log1p(-u)

    def to_theta(self, y: NDArray) -> NDArray[np.float64]:
        return self.lo + self.width * expit(y)

    @staticmethod
    def logistic_terms(y: NDArray) -> NDArray[np.float64]:
        """Minus the standard logistic log density of every element of ``y``:
        ``ln(1 + e^−y) + ln(1 + e^y) = |y| + 2 ln(1 + e^−|y|)``."""
        a = np.abs(y)
        out = np.exp(-a)
        np.log1p(out, out=out)
        out *= 2.0
        out += a
        return out

    @staticmethod
    def log_logistic(y: NDArray) -> NDArray[np.float64]:
        """Σ over axes of the standard logistic log density (the uniform box prior)."""
        return -_Box.logistic_terms(y).sum(axis=-1)

    def log_jacobian(self, y: NDArray) -> NDArray[np.float64]:
        """ln |dθ/dy|."""
        return self.log_volume + self.log_logistic(y)


class _Proposal:
    """A mixture, in the unbounded coordinates, of groups of Student-t kernels (each
    group: centres sharing one scale matrix) plus the image of the uniform box prior (a
    product of standard logistics) with weight ``defensive``.

    ``groups`` is a list of (weight, centres (K, d), covariance (d, d)); the group weights
    are renormalised to ``1 − defensive``. :attr:`groups` keeps (weight, centres, lower
    Cholesky factor, log normalisation of one Student-t kernel) per group.
    """

    def __init__(self, groups: list[tuple[float, NDArray, NDArray]], df: float,
                 defensive: float, box_mixture: tuple[float, _BoxMixture] | None = None):
        self.df = float(df)
        self.defensive = float(defensive)
        self.box_mixture = None
        total = sum(g[0] for g in groups)
        if box_mixture is not None and box_mixture[1]:
            total += box_mixture[0]
            self.box_mixture = ((1.0 - self.defensive) * box_mixture[0] / total,
                                box_mixture[1])
        self.groups = []
        for weight, centres, cov in groups:
            centres = np.atleast_2d(np.asarray(centres, dtype=np.float64))
            chol = np.linalg.cholesky(cov)
            d = centres.shape[1]
            log_norm = (gammaln(0.5 * (self.df + d)) - gammaln(0.5 * self.df)
                        - 0.5 * d * math.log(self.df * math.pi)
                        - float(np.log(np.diag(chol)).sum()))
            self.groups.append(((1.0 - self.defensive) * weight / total, centres, chol,
                                log_norm))
        # the compiled density: one log coefficient (weight over the group's kernel count,
        # times the normalisation) per kernel, the kernels of a group contiguous
        d = self.groups[0][1].shape[1]
        sizes = [g[1].shape[0] for g in self.groups]
        log_coef = np.concatenate([np.full(k, math.log(g[0]) - math.log(k) + g[3])
                                   for g, k in zip(self.groups, sizes, strict=True)])
        if self.box_mixture is not None:
            share, mixture = self.box_mixture
            box = mixture.compiled_kernels(math.log(share))
        else:
            box = (np.zeros((0, d, d)), np.zeros((0, d)), np.zeros(0))
        self._density = _core.ProposalDensity(
            self.df, np.stack([g[2] for g in self.groups]),
            np.concatenate([[0], np.cumsum(sizes)]), np.concatenate([g[1] for g in self.groups]),
            log_coef, *box, math.log(self.defensive) if self.defensive > 0 else -math.inf)

    def sample(self, n: int, rng: np.random.Generator) -> NDArray[np.float64]:
        probs = [g[0] for g in self.groups] + [self.defensive]
        if self.box_mixture is not None:
            probs.append(self.box_mixture[0])
        counts = rng.multinomial(n, probs)
        out = []
        d = self.groups[0][1].shape[1]
        for (_, centres, chol, _), m in zip(self.groups, counts[:len(self.groups)],
                                                strict=True):
            comp = rng.integers(0, centres.shape[0], m)
            z = rng.standard_normal((m, d))
            chi = rng.chisquare(self.df, m)
            out.append(centres[comp] + (z @ chol.T) * np.sqrt(self.df / chi)[:, None])
        u = rng.random((counts[len(self.groups)], d))
        out.append(np.log(u) - np.log1p(-u))
        if self.box_mixture is not None:
            out.append(self.box_mixture[1].sample(int(counts[-1]), rng))
        return np.vstack(out)

    def logpdf(self, y: NDArray, log_box: NDArray | None = None) -> NDArray[np.float64]:
        """ln q(y) of every row of ``y`` (n, d); ``log_box`` is ``_Box.log_logistic(y)``
        when the caller has it (the box-prior component), computed here otherwise.

        Evaluated by the compiled :class:`pixedfit._core.ProposalDensity`: per group of
        kernels sharing the scale ``L Lᵀ``, the points are whitened once (``L⁻¹ y``, forward
        substitution) and compared with the whitened centres; the Student-t log densities,
        the box-prior term, the box mixture's truncated Gaussians and their log-sum are
        computed on blocks of points with every loop running over points."""
        if log_box is None:
            log_box = _Box.log_logistic(y)
        return self._density.log_density(np.ascontiguousarray(y, dtype=np.float64),
                                         np.ascontiguousarray(log_box, dtype=np.float64))


#: Standard normal draws that estimate the mass inside the box of a :class:`_BoxMixture`'s
#: kernels.
_BOX_NORMALS = 8000


class _BoxMixture:
    """A Gaussian mixture in the box coordinates ``u = σ(y) = (θ − lo) / (hi − lo)``,
    truncated to the unit box, as a proposal in the unbounded coordinates.

    Posteriors piled against an edge of the prior box (an age at the age of the universe,
    dust near zero) become exponential tails in ``y``, which Gaussian kernels there fit
    poorly; in ``u`` they are cut bells that a truncated Gaussian follows. Each kernel is
    drawn by rejection to the box; its mass inside the box, ``Z_k``, is estimated once from
    ``n_norm`` draws, the same standard normal ones for every kernel (the relative error,
    ≈ 1/√(n_norm Z_k), is what the proposal density is uncertain by: it rescales the
    weights of that kernel's share slightly, never their support). ``normals`` (n, d)
    passes those draws in, so that one set serves every round of a fit: each ``Z_k`` stays
    unbiased, with the same variance, and drawing them took a sixth of the time to build a
    proposal. Kernels with less than 5 % of their mass inside are dropped. The density in
    ``y`` is ``q_u(σ(y)) Π σ(y)(1 − σ(y))``."""

    def __init__(self, kernels: list[tuple[float, NDArray, NDArray]],
                 rng: np.random.Generator, n_norm: int = _BOX_NORMALS,
                 normals: NDArray | None = None):
        kept = []
        if kernels:
            # one set of standard normal draws serves every kernel (each Z_k stays
            # unbiased, with the same variance); kernel k's draws are μ_k + L_k z, counted
            # inside the box by the compiled kernel
            d = kernels[0][1].size
            if normals is None:
                normals = rng.standard_normal((n_norm, d))
            elif normals.ndim != 2 or normals.shape[1] != d:
                raise ValueError(f"normals must have shape (n, {d}), got {normals.shape}")
            chols = np.linalg.cholesky(np.stack([cov for _, _, cov in kernels]))
            shares = _core.box_fractions(chols, np.stack([mean for _, mean, _ in kernels]),
                                         np.ascontiguousarray(normals, dtype=np.float64))
            for (weight, mean, _), chol, inside in zip(kernels, chols, shares, strict=True):
                if inside >= 0.05:
                    kept.append((weight, mean, chol, float(inside)))
        total = sum(k[0] for k in kept)
        self.kernels = [(w / total, m, c, z) for w, m, c, z in kept]
        self._density: _core.ProposalDensity | None = None  # built by logpdf when asked

    def compiled_kernels(self, log_share: float) -> tuple[NDArray, NDArray, NDArray]:
        """The kernels as :class:`pixedfit._core.ProposalDensity` takes them: lower
        factors (K, d, d), means (K, d) and ``log_share`` + ln(weight / Z) minus the log
        normalisation of each (K,)."""
        chols = np.stack([c for _, _, c, _ in self.kernels])
        means = np.stack([m for _, m, _, _ in self.kernels])
        coef = np.array([log_share + math.log(w) - math.log(z)
                         - float(np.log(np.diag(c)).sum()) - 0.5 * m.size * math.log(2 * math.pi)
                         for w, m, c, z in self.kernels])
        return chols, means, coef

    def __bool__(self) -> bool:
        return bool(self.kernels)

    def sample(self, n: int, rng: np.random.Generator) -> NDArray[np.float64]:
        counts = rng.multinomial(n, [k[0] for k in self.kernels])
        out = []
        for (_, mean, chol, inside), m in zip(self.kernels, counts, strict=True):
            got: list[NDArray] = []
            need = int(m)
            while need > 0:
                u = mean + rng.standard_normal((int(need / inside) + 8, mean.size)) @ chol.T
                u = u[np.all((u > 0.0) & (u < 1.0), axis=1)][:need]
                got.append(u)
                need -= u.shape[0]
            if got:
                out.append(np.vstack(got))
        u = np.vstack(out) if out else np.empty((0, self.kernels[0][1].size))
        return np.log(u) - np.log1p(-u)

    def logpdf(self, y: NDArray, log_box: NDArray) -> NDArray[np.float64]:
        """ln q(y) of every row of ``y`` (n, d); ``log_box`` = ``_Box.log_logistic(y)``,
        the Jacobian ln |du/dy|. (A proposal evaluates its box mixture within its own
        compiled density, :meth:`compiled_kernels`; this one is built on first use.)"""
        if self._density is None:
            d = self.kernels[0][1].size
            self._density = _core.ProposalDensity(
                1.0, np.zeros((0, d, d)), np.zeros(1, dtype=np.int64), np.zeros((0, d)),
                np.zeros(0), *self.compiled_kernels(0.0), -math.inf)
        return self._density.log_density(np.ascontiguousarray(y, dtype=np.float64),
                                         np.ascontiguousarray(log_box, dtype=np.float64))


def _weighted_cov(y: NDArray, weights: NDArray) -> tuple[NDArray, NDArray]:
    """Weighted mean and (reliability-weighted, unbiased) covariance."""
    mean = weights @ y
    diff = y - mean
    cov = (weights[:, None] * diff).T @ diff / max(1.0 - float((weights**2).sum()), 1e-12)
    return mean, cov


def _regularised(cov: NDArray, min_sd: float = 1e-5, max_sd: float = 4.0) -> NDArray:
    """``cov`` (d, d), or a stack (..., d, d), symmetrised with its eigenvalues kept within
    [min_sd², max_sd²] (unbounded coordinates, where the box prior has a standard deviation
    of 1.8)."""
    c = 0.5 * (cov + np.swapaxes(cov, -1, -2))
    vals, vecs = np.linalg.eigh(c)
    vals = np.clip(np.nan_to_num(vals, nan=max_sd**2), min_sd**2, max_sd**2)
    return (vecs * vals[..., None, :]) @ np.swapaxes(vecs, -1, -2)


#: Share of an adaptive proposal (before the defensive part) in its Gaussian-mixture
#: kernels (:func:`_em_mixture`); the rest is the kernel density estimate and the Student-t
#: at the mean (:func:`_kde_groups`).
_MIXTURE_SHARE = 0.7
#: Part of that from the mixture fitted in the box coordinates (:class:`_BoxMixture`), and
#: its kernels' widening (screens of 2 × 133 DustPedia galaxies with 20-degree-of-freedom
#: kernels, evaluations relative to 1.5: 1.3 → 0.94–0.95, 1.15 → 0.89–0.92, 1.0 →
#: 0.94–0.96; on all 532 with two library seeds, log SFRs more than 0.3 σ apart: 2.3 % with
#: 1.5, 3.0 % with 1.3, 4.3 % with 1.15).
_BOX_SHARE = 0.5
_BOX_WIDEN = 1.3
#: Scale factor of the mixture kernels' covariances (slightly wider than the fit: a
#: proposal narrower than its target gives heavy-tailed weights).
_MIXTURE_WIDEN = 1.2
#: Points (largest weights first), EM iterations at most and the tolerance on the change of
#: the weighted mean log-likelihood of a mixture fit, and the effective points per
#: dimension each kernel needs.
_EM_POINTS = 1500
_EM_ITERATIONS = 10
_EM_TOLERANCE = 1e-5
_EM_POINTS_PER_DIM = 4.0
#: A round's size over the samples the last round's yield says the target needs (with the
#: rounds drawn in chunks that stop at convergence, 2 and 3 need 3–4 % more evaluations on
#: 133 DustPedia galaxies: fewer, larger rounds adapt the proposal less often).
_ROUND_MARGIN = 1.2


def _build_proposal(y: NDArray, weights: NDArray, settings: AdaptiveSettings,
                    rng: np.random.Generator, normals: NDArray | None = None) -> _Proposal:
    """Proposal from weighted points (weights normalised, tempered if needed): Student-t
    kernels shaped by a Gaussian mixture fitted to the points (:func:`_em_mixture`, the
    efficient proposal of a curved or skewed posterior), a kernel density mixture of the
    points and a Student-t at their weighted mean (:func:`_kde_groups`), and the defensive
    box prior. ``normals`` are the standard normal draws of the box mixture's
    normalisations (:class:`_BoxMixture`; None: new ones)."""
    groups = _kde_groups(y, weights, settings, rng)
    mixture = (_em_mixture(y, weights, settings.mixture_components, rng)
               if settings.mixture_components > 0 else [])
    box = None
    if mixture:
        u = expit(y)
        _, cov_u = _weighted_cov(u, weights)
        fitted = _em_mixture(u, weights, settings.mixture_components, rng,
                             ridge=1e-3 * np.diag(cov_u) + 1e-12)
        box_mixture = _BoxMixture([(p, mu, cov * _BOX_WIDEN**2) for p, mu, cov in fitted],
                                  rng, normals=normals)
        share = _MIXTURE_SHARE  # the mixture in y takes all of it when none fits in u
        if box_mixture:
            box = (_MIXTURE_SHARE * _BOX_SHARE, box_mixture)
            share *= 1.0 - _BOX_SHARE
        total = sum(g[0] for g in groups)
        groups = ([(share * p, mu[None], cov * _MIXTURE_WIDEN**2) for p, mu, cov in mixture]
                  + [((1.0 - _MIXTURE_SHARE) * g[0] / total, g[1], g[2]) for g in groups])
    return _Proposal(groups, settings.df, settings.defensive, box)


def _em_mixture(y: NDArray, weights: NDArray, max_components: int,
                rng: np.random.Generator, ridge: float | NDArray = 1e-4
                ) -> list[tuple[float, NDArray, NDArray]]:
    """Gaussian mixture fitted to weighted points by expectation–maximisation.

    The ``_EM_POINTS`` points of largest weight are kept (they carry nearly all of it).
    The number of kernels is at most ``max_components`` and at most the effective sample
    size over ``_EM_POINTS_PER_DIM × d`` (a full covariance needs that many points); the
    kernels start at weighted k-means++ seeds (Arthur & Vassilvitskii 2007, distances in
    units of the weighted standard deviations) with the points' covariance shrunk by
    ``K^(-2/d)``; at most ``_EM_ITERATIONS`` EM steps follow (the compiled
    :func:`pixedfit._core.em_gaussian_mixture`), each dropping kernels left with fewer
    than ``2d`` effective points, until the weighted mean log-likelihood changes by less
    than ``_EM_TOLERANCE``. Covariances are regularised like the other kernels'.

    Parameters
    ----------
    y : ndarray, shape (n, d)
        Points (unbounded coordinates).
    weights : ndarray, shape (n,)
        Their normalised weights.
    max_components : int
        Kernels at most.
    rng : numpy.random.Generator
        Source of the seeding draws.
    ridge : float or ndarray, shape (d,)
        Variance added to the diagonal of every kernel's covariance.

    Returns
    -------
    list of (float, ndarray (d,), ndarray (d, d))
        Weight, mean and covariance of every kernel (weights summing to 1); empty when the
        points are too few for one kernel.
    """
    d = y.shape[1]
    order = np.flatnonzero(weights > 0)
    if order.size > _EM_POINTS:
        order = order[np.argpartition(-weights[order], _EM_POINTS - 1)[:_EM_POINTS]]
    order = order[np.lexsort((order, -weights[order]))]  # largest first, ties by index
    w = weights[order]
    if order.size < 2 * d:
        return []
    pts = y[order]
    w = w / w.sum()
    ess = 1.0 / float((w * w).sum())
    k = int(min(max_components, max(1.0, ess // (_EM_POINTS_PER_DIM * d))))
    _, cov = _weighted_cov(pts, w)
    u = pts / np.sqrt(np.maximum(np.diag(cov), 1e-12))
    # squared distances to a seed s as |u|² − 2 u·u_s + |u_s|² (one matrix–vector product
    # per seed instead of an (n, d) temporary), clipped at 0 against rounding
    norm2 = np.einsum("ij,ij->i", u, u)

    def dist2(s: int) -> NDArray[np.float64]:
        out = u @ (-2.0 * u[s])
        out += norm2
        out += norm2[s]
        np.maximum(out, 0.0, out=out)
        out[s] = 0.0
        return out

    cum = np.cumsum(w)
    seeds = [int(min(np.searchsorted(cum, rng.random() * cum[-1]), w.size - 1))]
    d2 = dist2(seeds[0])
    for _ in range(1, k):
        cum = np.cumsum(w * d2)
        if not cum[-1] > 0:
            break
        seeds.append(int(min(np.searchsorted(cum, rng.random() * cum[-1]), w.size - 1)))
        np.minimum(d2, dist2(seeds[-1]), out=d2)
    # EM from the seeds in coordinates about the weighted mean (the compiled kernel)
    origin = w @ pts
    x = np.ascontiguousarray(pts - origin)
    shares, means, covs, _ = _core.em_gaussian_mixture(
        x, w, x[seeds], cov / len(seeds) ** (2.0 / d),
        np.broadcast_to(np.asarray(ridge, dtype=np.float64), (d,)).copy(), ess, 2.0 * d,
        _EM_ITERATIONS, _EM_TOLERANCE)
    return [(float(p), m + origin, c)
            for p, m, c in zip(shares, means, _regularised(covs), strict=True)]


def _kde_groups(y: NDArray, weights: NDArray, settings: AdaptiveSettings,
                rng: np.random.Generator) -> list[tuple[float, NDArray, NDArray]]:
    """The kernel groups of :func:`_build_proposal` (weights summing to 0.9)."""
    d = y.shape[1]
    ess = 1.0 / float((weights * weights).sum())
    k = int(min(settings.max_components, max(1, math.floor(ess))))
    idx = _systematic(weights, k, rng)  # low-variance choice of the centres
    mean, cov = _weighted_cov(y, weights)
    if ess < 2 * d:  # too few distinct points to trust their covariance: widen it
        cov = cov + np.eye(d) * 0.25
    h = (4.0 / (d + 2.0)) ** (1.0 / (d + 4.0)) * k ** (-1.0 / (d + 4.0))
    return [(0.45, y[idx], _regularised(cov * (h * h if k > 1 else 1.0))),
            (0.45, mean[None], _regularised(cov * 1.5**2))]


def _calibrated_laplace(lnprob: LogProbability, box: _Box, modes: NDArray, covs: NDArray,
                        log_post: NDArray, drop: float = 2.0, n_iter: int = 6,
                        mass: _MassProposal | None = None, im: int | None = None
                        ) -> tuple[NDArray, NDArray, int]:
    """The Laplace approximations at ``modes`` (m, d) reshaped to the posterior's real
    extent.

    The Gauss–Newton covariance is right near a mode but blind to what lies beyond:
    directions the data constrain weakly often end at a cliff (an age at the age of the
    universe, a dust law that stops fitting) a fraction of the way out. Along each
    eigenvector of a mode's covariance ``covs[i]``, on both sides, the distance at which
    the log posterior has fallen by ``drop`` below ``log_post[i]`` (2 is the 2σ point of a
    Gaussian) is found by bracketing and bisection in log distance, from 2√λ (all
    directions of all modes batched in one model call per step: each position's posterior
    does not depend on the others in its batch); the approximation then takes the midpoint
    of the two distances as its centre along that direction and a quarter of their sum as
    its standard deviation.

    With ``mass`` (the conditional proposal of ``log_mass``, coordinate ``im``), the
    approximations are those of the other parameters' marginal, which is what the
    proposal samples: the eigenvectors are those of the covariance without ``log_mass``,
    and at every position ``log_mass`` is set to its best value given the others
    (:meth:`_MassProposal.best`; the profile of a Gaussian along a subspace has the
    shape of its marginal). Along a direction of the joint covariance instead, the mass
    stays where the mode put it while the other parameters change what it should be, and
    the posterior falls far too early: measured on 34 DustPedia galaxies, the
    calibrated widths were then 2–4× narrower than the posterior's. The mass rows and
    columns of the returned covariances are those of ``covs``.

    Returns the centres (m, d), the covariances (m, d, d) and the model evaluations used."""
    modes = np.atleast_2d(np.asarray(modes, dtype=np.float64))
    covs = np.reshape(np.asarray(covs, dtype=np.float64), (modes.shape[0],) + modes.shape[1:] * 2)
    m, d = modes.shape
    keep = [j for j in range(d) if j != im] if mass is not None else list(range(d))
    k = len(keep)
    lam, vec = np.linalg.eigh(covs[:, keep][:, :, keep])  # (m, k), (m, k, k)
    lam = np.maximum(lam, 1e-12)
    vt = np.zeros((m, k, d))
    vt[:, :, keep] = np.swapaxes(vec, 1, 2)  # the directions, in all d coordinates
    dirs = np.concatenate([vt, -vt], axis=1)  # (m, 2k, d)
    lo_t = np.zeros((m, 2 * k))
    hi_t = np.full((m, 2 * k), np.inf)
    t = 2.0 * np.sqrt(np.concatenate([lam, lam], axis=1))
    floor = (np.asarray(log_post, dtype=np.float64) - drop)[:, None]
    before = lnprob.ncalls
    for _ in range(n_iter):
        y = (modes[:, None, :] + t[:, :, None] * dirs).reshape(m * 2 * k, d)
        if mass is None:
            lnp = lnprob.evaluate(box.to_theta(y))[0]
        else:
            theta = box.to_theta(y)
            lnp, ex = lnprob.evaluate(theta, extras=True, mass_proposal=mass.best,
                                      values=False)
            if ex and "theta" in ex:
                theta[ex["index"]] = ex["theta"]
                y = box.to_y(theta)
        lnp = (lnp + box.log_jacobian(y)).reshape(m, 2 * k)
        fell = ~(lnp > floor)  # NaN/-inf count as fallen
        hi_t = np.where(fell, t, hi_t)
        lo_t = np.where(fell, lo_t, t)
        t = np.where(np.isfinite(hi_t), np.where(lo_t > 0, np.sqrt(lo_t * np.maximum(hi_t, 1e-12)),
                                                  0.5 * hi_t), 2.0 * t)
    dist = np.where(np.isfinite(hi_t), 0.5 * (np.where(lo_t > 0, lo_t, 0.5 * hi_t) + hi_t), lo_t)
    dist = np.maximum(dist, 1e-6)
    centres = modes.copy()
    shapes = covs.copy()
    for i in range(m):
        plus, minus = dist[i, :k], dist[i, k:]
        centres[i, keep] = modes[i, keep] + vec[i] @ (0.5 * (plus - minus))
        sd = 0.25 * (plus + minus)
        shapes[i][np.ix_(keep, keep)] = (vec[i] * sd**2) @ vec[i].T
    return centres, shapes, lnprob.ncalls - before


def _distinct_modes(modes: NDArray, covs: NDArray, log_post: NDArray,
                    max_modes: int = 4) -> list[int]:
    """Indices of the distinct modes, best first: modes with a posterior below e⁻²⁰ of the
    best, and modes within one Mahalanobis unit of a better one, are dropped; at most
    ``max_modes``."""
    ok = np.flatnonzero(np.isfinite(log_post))
    order = ok[np.argsort(-log_post[ok], kind="stable")]
    kept: list[int] = []
    for i in order:
        if log_post[i] < log_post[order[0]] - 20.0 or len(kept) >= max_modes:
            break
        dup = False
        for j in kept:
            diff = modes[i] - modes[j]
            try:
                dup = float(diff @ np.linalg.solve(covs[j], diff)) < 1.0
            except np.linalg.LinAlgError:
                dup = False
            if dup:
                break
        if not dup:
            kept.append(int(i))
    return kept


def _laplace_proposal(centres: NDArray, covs: NDArray, log_post: NDArray, keep: list[int],
                      library_groups: list[tuple[float, NDArray, NDArray]],
                      settings: AdaptiveSettings) -> _Proposal:
    """First proposal from the (calibrated) Laplace approximations of distinct modes: one
    Student-t per mode (weights half by Laplace evidence ``π(mode) √det Σ``, half equal),
    75 % together, plus the library kernels (``library_groups``, 20 %) and the defensive box
    prior. Only the ``keep`` dimensions are proposed."""
    sub = [np.asarray(c)[np.ix_(keep, keep)] for c in covs]
    log_ev = np.array([lp + 0.5 * np.linalg.slogdet(c)[1] for lp, c in
                       zip(log_post, sub, strict=True)])
    w = np.exp(log_ev - logsumexp(log_ev))
    w = 0.5 * w + 0.5 / len(sub)
    groups = [(0.75 * float(wi), np.asarray(c0)[keep][None], _regularised(c))
              for wi, c0, c in zip(w, centres, sub, strict=True)]
    total = sum(g[0] for g in library_groups)
    groups += [(0.2 * g[0] / total, g[1], g[2]) for g in library_groups]
    return _Proposal(groups, settings.df, settings.defensive)


def median_errors(values: dict[str, NDArray], log_weights: NDArray, names: Any
                  ) -> dict[str, tuple[float, float]]:
    """Monte-Carlo standard error of the weighted posterior median of each quantity in
    ``names`` (those in ``values``), and the posterior half-width (p84 − p16) / 2.

    The error is the asymptotic one of a sample median, ``sqrt(0.25 / n) / f(median)``,
    with ``n`` the effective sample size of the weights that give the quantity a finite
    value and the density at the median estimated as ``0.2 / (p60 − p40)`` (exact for a
    Gaussian to 1 %, and honest where the median falls in a gap between two modes).

    Parameters
    ----------
    values : dict of str to ndarray, shape (n,)
        Quantities of every sample (NaN where undefined).
    log_weights : ndarray, shape (n,)
        Unnormalised log importance weights (-inf: zero weight).
    names : iterable of str

    Returns
    -------
    dict of str to (float, float)
        ``{name: (standard error, half-width)}`` in the quantity's unit.
    """
    out: dict[str, tuple[float, float]] = {}
    lw = np.asarray(log_weights, dtype=np.float64)
    for name in names:
        if name not in values:
            continue
        col = np.asarray(values[name], dtype=np.float64)
        ok = np.isfinite(col) & np.isfinite(lw)
        if ok.sum() < 2:
            continue
        w = np.exp(lw[ok] - lw[ok].max())
        ess = effective_sample_size(lw[ok])
        q16, q40, q60, q84 = weighted_quantiles(col[ok, None], w,
                                                np.array([0.16, 0.4, 0.6, 0.84]))[:, 0]
        out[name] = (float(math.sqrt(0.25 / ess) * (q60 - q40) / 0.2),
                     float(0.5 * (q84 - q16)))
    return out


def _precision_ess(errors: dict[str, tuple[float, float]], ess: float,
                   settings: AdaptiveSettings) -> float:
    """The effective sample size at which the median error of every measured quantity
    (half-width at most ``precision_max_width``) meets ``median_precision`` (the errors
    scale as ESS^-1/2); 0 when the criterion is off or nothing is watched."""
    if settings.median_precision <= 0 or not errors:
        return 0.0
    need = 0.0
    for se, half in errors.values():
        if math.isfinite(se) and se > 0 and half <= settings.precision_max_width:
            need = max(need, ess * (se / settings.median_precision) ** 2)
    return need


def _systematic(weights: NDArray, n: int, rng: np.random.Generator) -> NDArray[np.int64]:
    """Indices of ``n`` systematic resamples of normalised ``weights`` (a uniform offset)."""
    return systematic_indices(weights, n, rng.random())


def _anneal(log_target_parts: Any, y0: NDArray, lw_library: NDArray,
            settings: AdaptiveSettings, rng: np.random.Generator, budget: int
            ) -> tuple[NDArray[np.float64], int, int]:
    """Sequential Monte Carlo from the library to the posterior (Del Moral, Doucet & Jasra
    2006), in unbounded coordinates.

    The particles start as ``n_particles`` library models drawn with their library weights
    tempered to ``w^β₀`` (β₀ the largest exponent whose ESS reaches the number of
    particles: the library is a sample of the prior, so this is a sample of
    prior × likelihood^β₀, with the likelihood profiled over the normalisation). They are
    reweighted to the exact tempered posterior, then β rises to 1 in steps that keep the
    conditional ESS at half the particles; after each step the particles are resampled and
    moved by ``n_moves`` differential-evolution Metropolis sweeps (each half of the
    particles moves along differences of the other half, so the moves follow curved
    degeneracies such as age–τ–mass; step scale adapted to the acceptance rate).
    ``log_target_parts(y)`` returns (log prior incl. the Jacobian, log likelihood).
    Returns the particles at β = 1, the number of target evaluations and the number of
    tempering steps."""
    n = int(settings.n_particles)
    d = y0.shape[1]
    beta0 = _tempering_exponent(lw_library, n)
    w = np.exp(beta0 * (lw_library - lw_library.max()))
    idx = _systematic(w / w.sum(), n, rng)
    y = y0[idx].copy()
    log_prior, log_like = log_target_parts(y)
    n_eval = n
    # exact tempered target over the library's approximate one (profiled normalisation)
    with np.errstate(invalid="ignore"):
        logw = np.where(np.isfinite(log_like), beta0 * (log_like - lw_library[idx]), -np.inf)
    if not np.isfinite(logw).any():
        raise ValueError("no library model has a finite posterior once evaluated")
    beta = beta0
    scale = 2.38 / math.sqrt(2 * d)
    steps = 0
    while True:
        steps += 1
        if beta < 1.0:
            ll = np.where(np.isfinite(log_like), log_like, -np.inf)
            lo_b, hi_b = 0.0, 1.0 - beta
            if effective_sample_size(logw + hi_b * ll) >= 0.5 * n:
                delta = hi_b
            else:
                for _ in range(50):
                    mid = 0.5 * (lo_b + hi_b)
                    if effective_sample_size(logw + mid * ll) >= 0.5 * n:
                        lo_b = mid
                    else:
                        hi_b = mid
                delta = max(lo_b, 1e-6)
            logw = logw + delta * ll
            beta = min(beta + delta, 1.0)
        wn = np.exp(logw - logsumexp(logw))
        idx = _systematic(wn, n, rng)
        y, log_prior, log_like = y[idx].copy(), log_prior[idx].copy(), log_like[idx].copy()
        logw = np.zeros(n)
        moves = settings.n_moves * (3 if beta >= 1.0 else 1)
        half = np.arange(n) % 2  # two halves: each moves with partners from the other
        for _ in range(moves):
            if n_eval + n > budget:
                return y, n_eval, steps
            for side in (0, 1):
                mover = np.flatnonzero(half == side)
                other = np.flatnonzero(half != side)
                # differential-evolution move (ter Braak 2006): the difference of two
                # particles of the other half follows the posterior's own shape (ridges and
                # curved degeneracies), with a full jump (γ = 1) one move in ten for modes
                a = other[rng.integers(0, other.size, mover.size)]
                b = other[rng.integers(0, other.size, mover.size)]
                gamma = np.where(rng.random(mover.size) < 0.1, 1.0,
                                 scale * rng.uniform(0.5, 1.5, mover.size))
                prop = (y[mover] + gamma[:, None] * (y[a] - y[b])
                        + 1e-4 * rng.standard_normal((mover.size, d)))
                lp_new, ll_new = log_target_parts(prop)
                n_eval += mover.size
                cur = log_prior[mover] + beta * log_like[mover]
                new = lp_new + beta * ll_new
                accept = np.log(rng.random(mover.size)) < np.where(np.isfinite(new),
                                                                    new - cur, -np.inf)
                sel = mover[accept]
                y[sel] = prop[accept]
                log_prior[sel] = lp_new[accept]
                log_like[sel] = ll_new[accept]
                scale *= math.exp(float(accept.mean()) - 0.25)  # aim at ~25 % acceptance
        if beta >= 1.0 or steps >= settings.max_tempering_steps or n_eval + n > budget:
            return y, n_eval, steps


def _tempering_exponent(log_weights: NDArray, target: float, tol: float = 1e-7) -> float:
    """Largest β ≤ 1 whose tempered weights ``w^β`` have an ESS of at least ``target``, to
    ``tol`` in β.

    The ESS of ``w^β`` falls monotonically with β (its log has the derivative
    ``2 (E_β[ln w] − E_2β[ln w]) ≤ 0``), so the root of ``ln ESS(β) − ln target`` is
    bracketed and found by the Illinois variant of regula falsi (Dowell & Jarratt 1971),
    which keeps the bracket and converges superlinearly: ≈ 10 ESS evaluations instead of
    the 50 of a bisection to double precision. The lower end of the bracket, whose ESS
    reaches the target, is returned."""
    lw = log_weights[np.isfinite(log_weights)]
    if lw.size == 0:
        return 1.0
    target = min(float(target), 0.5 * lw.size)
    if effective_sample_size(lw) >= target:
        return 1.0
    log_target = math.log(target)
    lo, hi = 0.0, 1.0
    f_lo = math.log(lw.size) - log_target  # ESS(0) = the number of weights: > 0
    f_hi = math.log(_kish_ess(lw)) - log_target  # < 0
    excess = f_lo  # the true value at lo (f_lo may be halved by the Illinois rule)
    side = 0
    for _ in range(100):
        if hi - lo <= tol:
            break
        mid = (lo * f_hi - hi * f_lo) / (f_hi - f_lo)
        if not lo < mid < hi:  # (rounding) fall back to the midpoint
            mid = 0.5 * (lo + hi)
        f_mid = math.log(_kish_ess(mid * lw)) - log_target
        if f_mid >= 0.0:
            lo, f_lo, excess = mid, f_mid, f_mid
            if side == 1:  # the same end kept twice: halve the other's value (Illinois)
                f_hi *= 0.5
            side = 1
        else:
            hi, f_hi = mid, f_mid
            if side == -1:
                f_lo *= 0.5
            side = -1
        if excess < 1e-9:  # the ESS at lo is the target to 1e-9
            break
    return lo


@dataclass(kw_only=True)
class ImportanceSamples:
    """The weighted samples of an adaptive run.

    Attributes
    ----------
    theta : ndarray, shape (n, ndim)
        Positions (columns: the sampled parameters).
    log_weight : ndarray, shape (n,)
        Unnormalised log importance weights (deterministic-mixture).
    log_post : ndarray, shape (n,)
        Unnormalised log posterior.
    values : dict of str to ndarray, shape (n,)
        Parameters, fixed values and derived quantities of every sample (NaN where the
        posterior is zero).
    chi2 : ndarray, shape (n,)
    photometry : ndarray, shape (n, nband), or None
    ess : float
    n_evaluations : int
        Forward-model evaluations (samples inside the prior box).
    rounds : int
    converged : bool
    ln_evidence : float
        ln of the mean importance weight: the evidence for the prior that is uniform over
        the box (parameter units), times the explicit priors.
    """

    theta: NDArray[np.float64]
    log_weight: NDArray[np.float64]
    log_post: NDArray[np.float64]
    values: dict[str, NDArray[np.float64]]
    chi2: NDArray[np.float64]
    photometry: NDArray[np.float64] | None
    ess: float
    n_evaluations: int
    rounds: int
    converged: bool
    ln_evidence: float
    history: list[dict[str, float]] = field(default_factory=list)
    #: :func:`median_errors` of ``precision_quantities`` and :func:`pareto_k` of the final
    #: weights, when the run computed them for its last convergence check (None otherwise)
    final_median_errors: dict[str, tuple[float, float]] | None = None
    final_pareto_k: float | None = None

    def normalised_weights(self) -> NDArray[np.float64]:
        """Weights summing to one."""
        lw = np.where(np.isfinite(self.log_weight), self.log_weight, -np.inf)
        return np.exp(lw - logsumexp(lw))


def _student_t_logpdf(x: NDArray, df: float) -> NDArray[np.float64]:
    """ln of the standard Student-t density with ``df`` (finite) degrees of freedom at ``x``
    (the expression of ``scipy.stats.t.logpdf``, without its argument handling, which cost
    more than the arithmetic here; the distribution's CDF and inverse are
    ``scipy.special.stdtr`` and ``stdtrit``)."""
    return (math.log(poch(0.5 * df, 0.5)) - 0.5 * (math.log(df) + math.log(math.pi))
            - (df + 1) / 2 * np.log1p(x * x / df))


class _MassProposal:
    """The conditional proposal of ``log_mass`` given the other parameters.

    The model photometry is proportional to the mass, so for every proposed position the
    likelihood of the scale ``r`` (the mass over the position's own) is a Gaussian whose
    centre and width follow from one model evaluation (weighted linear least squares over
    the detected bands): ``s = Σ f o / σ² / Σ f² / σ²`` and ``σ_r = 1 / √(Σ f² / σ²)``.
    ``r`` is drawn from a Student-t (``df``) centred at ``s`` with ``widen`` × ``σ_r``,
    truncated to the prior box (``log_mass`` = the position's + log10 r), and, with
    probability ``ε``, ``log_mass`` uniformly over the box instead. ``ε`` is the share of
    the conditional posterior in its flat low-mass tail: in ``log_mass`` (flat prior) the
    Gaussian of ``r`` does not fall to zero towards ``r → 0`` but to ``e^(−s²/2σ_r²)``,
    held over every dex down to the box's edge, so
    ``ε = T / (T + B)`` with ``T = e^(−s²/2σ_r²) × (dex from the edge to the best mass)``
    and ``B = √(2π) σ_r / (s ln 10)`` (the bell's extent in dex). At a scale known to 20 %
    or better ``ε`` < 1e-4 (0 to double precision on nearly every DustPedia draw); for a
    poorly measured scale the uniform part holds the tail the Student-t cannot reach
    (an importance efficiency of the mass of 0.67–0.87 at σ_r/s = 0.3–2 over a box of
    4 dex, against < 0.4 without it). Where the data fix no mass (no detected band, a
    non-positive best scale, a box that holds less than 1e-9 of the Student-t) ``ε`` = 1.
    Where the box holds at least half of the Student-t, its draws are made by rejection
    (a Student-t variate as a normal over √(χ²/df), redrawn until inside), elsewhere
    through the inverse CDF; the box's share of the Student-t (its normalisation) is 1 to
    double precision, and not computed, where both edges lie beyond its ``1e-17``
    quantiles (nearly every draw of the DustPedia fits, where the inverse CDF and the two
    CDFs of every draw took 4 % of a fit). The density returned is that of the mixture
    per dex of ``log_mass`` (the Student-t's density of ``r`` times ``r ln 10``).

    With a flat prior in ``log_mass``, no upper limit and no prior on a mass-scaled
    quantity, this is the conditional posterior of ``log_mass`` up to the Student-t's
    heavier tails and the factor ``1/r`` across the bell (an importance efficiency of the
    mass above 0.98 at a scale known to 10 %, 0.95 at 20 %). A prior or an upper limit
    bends the conditional; the weights stay exact either way, since they divide by the
    density actually drawn from, and the Student-t tails keep them bounded. (Earlier the
    draws were a Student-t in ``log_mass`` of 1.5 × the Fisher width: ≈ 0.82 efficient
    at best, and ≈ 0 for a scale known to 20 % or worse over a wide box. On the 532
    DustPedia galaxies, two pairs of library seeds, the present draws need 7 % fewer
    model evaluations for the same seed stability: ``benchmarks/RESULTS.md``.) Sampling
    the narrowest and most correlated direction of a photometric posterior this way
    leaves the adaptive proposal one dimension fewer, all of them broad.
    """

    def __init__(self, obs: NDArray, err: NDArray, upper: NDArray | None, lo: float,
                 hi: float, rng: np.random.Generator, df: float, widen: float = 1.0):
        self.obs, self.err = obs, err
        self.use = None if upper is None else ~np.asarray(upper, dtype=bool)
        self.lo, self.hi = float(lo), float(hi)
        self.rng = rng
        self.df, self.widen = float(df), float(widen)
        # beyond this many scales from the centre the Student-t holds less than 1e-17
        self.far = float(-stdtrit(self.df, 1e-17))

    def best(self, phot: NDArray, log_mass: NDArray) -> tuple[NDArray, NDArray]:
        """The best-fitting ``log_mass`` given the photometry ``phot`` (m, nband) that the
        masses ``log_mass`` (m,) give, kept strictly inside the box (unchanged where no
        band fixes it), and zeros (m,) in place of proposal densities: the form
        :meth:`LogProbability.evaluate` takes as ``mass_proposal``."""
        s, _ = scale_fit(phot, self.obs, self.err, self.use)
        with np.errstate(divide="ignore", invalid="ignore"):
            mu = log_mass + np.log10(s)
        eps = 1e-9 * (self.hi - self.lo)
        mu = np.where(np.isfinite(mu), mu, log_mass)
        return np.clip(mu, self.lo + eps, self.hi - eps), np.zeros(np.shape(log_mass))

    def __call__(self, phot: NDArray, log_mass: NDArray) -> tuple[NDArray, NDArray]:
        s, b = scale_fit(phot, self.obs, self.err, self.use)
        width = self.hi - self.lo
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            sd_r = 1.0 / np.sqrt(b)
            # the box in units of each position's own mass
            r_lo = 10.0 ** (self.lo - log_mass)
            r_hi = 10.0 ** (self.hi - log_mass)
            # the uniform share: the flat low-mass tail of the conditional (its likelihood
            # e^(-s²/2σ²) from the box's lower edge to the best mass) over the tail plus
            # the bell (√(2π) σ / (s ln 10) dex wide)
            tail = np.exp(-0.5 * (s / sd_r) ** 2) * np.clip(
                log_mass + np.log10(s) - self.lo, 0.0, width)
            bell = math.sqrt(2.0 * math.pi) * sd_r / (s * math.log(10.0))
            share = tail / (tail + bell)
        ok = ((b > 0) & (s > 0) & np.isfinite(s) & np.isfinite(sd_r) & np.isfinite(r_hi)
              & (r_lo > 0))
        share = np.where(ok & np.isfinite(share), share, 1.0)
        mu = np.where(ok, s, 1.0)
        sd = np.where(ok, self.widen * sd_r, 1.0)
        za, zb = (r_lo - mu) / sd, (r_hi - mu) / sd
        # the box's share of each Student-t: 1 where both edges are far out
        fa = np.zeros(mu.size)
        mass_in_box = np.ones(mu.size)
        edge = np.flatnonzero(ok & ((za > -self.far) | (zb < self.far)))
        if edge.size:
            fa[edge] = stdtr(self.df, za[edge])
            mass_in_box[edge] = stdtr(self.df, zb[edge]) - fa[edge]
        ok &= mass_in_box > 1e-9  # the data's scale far outside the box: draw uniformly
        share = np.where(ok, share, 1.0)
        uniform = self.rng.random(mu.size) < share
        plain = np.flatnonzero(uniform)
        r = np.ones(mu.size)
        reject = ok & ~uniform & (mass_in_box >= 0.5)
        inverse = np.flatnonzero(ok & ~uniform & ~reject)
        todo = np.flatnonzero(reject)
        while todo.size:  # at least one in two draws is kept
            t = (self.rng.standard_normal(todo.size)
                 / np.sqrt(self.rng.chisquare(self.df, todo.size) / self.df))
            cand = mu[todo] + sd[todo] * t
            inside = (cand > r_lo[todo]) & (cand < r_hi[todo])
            r[todo[inside]] = cand[inside]
            todo = todo[~inside]
        x = np.empty(mu.size)
        if inverse.size or plain.size:
            u = self.rng.random(inverse.size + plain.size)
            r[inverse] = mu[inverse] + sd[inverse] * stdtrit(
                self.df, np.clip(fa[inverse] + u[:inverse.size] * mass_in_box[inverse],
                                 1e-300, 1.0))
            x[plain] = self.lo + u[inverse.size:] * width
        drawn = np.flatnonzero(~uniform)
        # (the inverse CDF can round onto an edge)
        x[drawn] = log_mass[drawn] + np.log10(np.clip(r[drawn], r_lo[drawn], r_hi[drawn]))
        # strictly inside the box (the logit coordinate must stay finite)
        eps = 1e-9 * width
        x = np.clip(x, self.lo + eps, self.hi - eps)
        # the density (per dex) of the mixture at every draw
        log_t = np.full(mu.size, -np.inf)
        at = np.flatnonzero(ok)
        r_at = 10.0 ** (x[at] - log_mass[at])
        log_t[at] = (_student_t_logpdf((r_at - mu[at]) / sd[at], self.df) - np.log(sd[at])
                     - np.log(mass_in_box[at]) + np.log(r_at * math.log(10.0)))
        with np.errstate(divide="ignore"):
            log_q = np.logaddexp(np.log(share) - math.log(width), np.log1p(-share) + log_t)
        return x, log_q


def _laplace_modes(lnprob: LogProbability, box: _Box, starts: NDArray, max_iter: int,
                   budget: int, step: float = 0.02) -> tuple[NDArray, NDArray, NDArray, int]:
    """Posterior modes near ``starts`` (K, d) in the unbounded coordinates, by
    Levenberg–Marquardt on the photometric χ² plus the box prior, and the Laplace
    (Gauss–Newton) covariance at each.

    Minimises ``Φ(y) = χ²(θ(y)) / 2 − ln |dθ/dy|`` (``−ln`` of the posterior in ``y``, the
    uniform box prior being the logistic Jacobian) with the Gauss–Newton Hessian
    ``H = J̃ᵀJ̃ + diag(2 σ(y)(1 − σ(y)))``, ``J̃ = ∂(F/σ)/∂y``. ``J̃`` is taken by forward
    differences of ``step`` at the starts (all starts and directions in one batched model
    call) and then kept up to date by Broyden's secant update from every trial step,
    kept or refused, ``J̃ ← J̃ + Δy (ΔF/σ − J̃ᵀΔy)ᵀ / |Δy|²`` (Broyden 1965; as in
    Madsen, Nielsen & Tingleff 2004, §3.4): an iteration costs one model evaluation per
    start instead of d + 1. At the end the forward differences are taken again at every
    mode, so the covariances are those of the exact Gauss–Newton Hessian there. (Measured
    on 133 DustPedia galaxies: the mode search takes 7 % of all evaluations instead of
    14 %, and the importance rounds after it as many as before.) A trial step is kept only
    when the exact log posterior (explicit priors and upper limits included) improves.
    Bands that are upper limits or have no finite error are left out of the Gauss–Newton
    model only. Iterations stop before ``budget`` model evaluations would be exceeded
    (the final Jacobians included). Returns the modes (K, d), their covariances ``H⁻¹``
    (K, d, d), their exact log posteriors in ``y`` (K,; −inf for a start outside the
    support) and the number of model evaluations.
    """
    k, d = starts.shape
    obs = np.asarray(lnprob.obs, dtype=np.float64)
    err = np.asarray(lnprob.err, dtype=np.float64)
    use = np.isfinite(obs) & np.isfinite(err) & (err > 0)
    if lnprob.upper is not None:
        use &= ~lnprob.upper
    sig = np.where(use, err, 1.0)
    before = lnprob.ncalls

    def model(y: NDArray) -> tuple[NDArray, NDArray]:
        lnp, ex = lnprob.evaluate(box.to_theta(y), extras=True, values=False)
        f = np.full((y.shape[0], obs.size), np.nan)
        if ex:
            f[ex["index"]] = ex["photometry"]
        return lnp + box.log_jacobian(y), f

    y = np.array(starts, dtype=np.float64)
    lnp, f = model(y)
    damping = np.full(k, 1e-3)
    active = np.isfinite(lnp)
    hess = np.tile(np.eye(d), (k, 1, 1))
    eye = np.eye(d)
    jac_all = np.zeros((k, d, obs.size))  # J̃ of every start at its current position

    def differences(idx: NDArray[np.int64]) -> None:
        # forward-difference Jacobians of the rows idx, in one batched model call
        shifted = (y[idx, None, :] + step * eye[None]).reshape(-1, d)
        _, fj = model(shifted)
        jf = (fj.reshape(idx.size, d, -1) - f[idx, None, :]) / step / sig
        jac_all[idx] = np.where(np.isfinite(jf) & use, jf, 0.0)

    def gauss_newton(idx: NDArray[np.int64]) -> tuple[NDArray, NDArray]:
        # gradient of Φ and Gauss–Newton Hessian of the rows idx
        jac = jac_all[idx]  # (m, d, nb)
        resid = np.where(use, (obs - f[idx]) / sig, 0.0)  # (m, nb)
        sy = expit(y[idx])
        grad = -np.einsum("mjb,mb->mj", jac, resid) + (2.0 * sy - 1.0)
        h = np.einsum("mjb,mkb->mjk", jac, jac) + np.einsum("mj,jk->mjk", 2 * sy * (1 - sy),
                                                             eye)
        return grad, h

    finite = np.flatnonzero(active)
    if finite.size and lnprob.ncalls - before + 2 * finite.size * d <= budget:
        differences(finite)
    else:
        active[:] = False
    for _ in range(max_iter):
        rows = np.flatnonzero(active)
        if rows.size == 0 or lnprob.ncalls - before + rows.size + finite.size * d > budget:
            break
        grad, h = gauss_newton(rows)
        diag = np.einsum("mjj->mj", h)
        a = h + damping[rows, None, None] * (diag[:, :, None] * eye)
        try:  # all starts in one call (LAPACK solves them one by one)
            trial = y[rows] - np.linalg.solve(a, grad[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:  # a singular system: that start stays where it is
            trial = np.empty((rows.size, d))
            for i in range(rows.size):
                try:
                    trial[i] = y[rows[i]] - np.linalg.solve(a[i], grad[i])
                except np.linalg.LinAlgError:
                    trial[i] = y[rows[i]]
        lnp_t, f_t = model(trial)
        # Broyden's update from every trial with finite model fluxes (a refused step tells
        # as much about the Jacobian at the current position as a kept one)
        dy = trial - y[rows]
        dy2 = np.einsum("mj,mj->m", dy, dy)
        with np.errstate(invalid="ignore"):
            df = np.where(use, (f_t - f[rows]) / sig, 0.0)
        secant = np.all(np.isfinite(df), axis=1) & (dy2 > 0)
        if secant.any():
            r, dys = rows[secant], dy[secant]
            miss = df[secant] - np.einsum("mj,mjb->mb", dys, jac_all[r])
            jac_all[r] += dys[:, :, None] * (miss / dy2[secant][:, None])[:, None, :]
        better = lnp_t > lnp[rows]
        gain = np.where(better, lnp_t - lnp[rows], 0.0)
        up = rows[better]
        y[up], lnp[up], f[up] = trial[better], lnp_t[better], f_t[better]
        damping[up] /= 3.0
        damping[rows[~better]] *= 4.0
        # converged: a kept step that gained little, or damping that no step survives
        done = (better & (gain < 1e-3)) | (damping[rows] > 1e6)
        active[rows[done]] = False
    if finite.size and lnprob.ncalls - before + finite.size * d <= budget:
        # the exact Gauss–Newton Hessian at every mode: new forward differences there
        differences(finite)
        hess[finite] = gauss_newton(finite)[1]
    cov = np.empty((k, d, d))
    for i in range(k):
        try:
            cov[i] = np.linalg.inv(hess[i])
        except np.linalg.LinAlgError:
            cov[i] = np.eye(d)
    return y, cov, lnp, lnprob.ncalls - before


def _evaluate(lnprob: LogProbability, theta: NDArray, names: list[str],
              mass_proposal: _MassProposal | None = None
              ) -> tuple[NDArray, NDArray, dict[str, NDArray], NDArray | None, int,
                         NDArray, NDArray]:
    """Log posterior, chi2, values and photometry of a batch (NaN/-inf outside), the
    positions (with the masses drawn by ``mass_proposal``) and the log density of those
    masses (NaN where none was drawn)."""
    n = theta.shape[0]
    theta = np.array(theta, dtype=np.float64)
    log_qm = np.full(n, np.nan)
    before = lnprob.ncalls
    if mass_proposal is None:
        lnp, ex = lnprob.evaluate(theta, extras=True)
    else:
        lnp, ex = lnprob.evaluate(theta, extras=True, mass_proposal=mass_proposal)
    nev = lnprob.ncalls - before
    if ex and "theta" in ex:
        theta[ex["index"]] = ex["theta"]
        log_qm[ex["index"]] = ex["log_q_mass"]
    chi2 = np.full(n, np.inf)
    values = {name: np.full(n, np.nan) for name in names}
    phot = None
    if ex:
        idx = ex["index"]
        chi2[idx] = ex["chi2"]
        for name in names:
            if name in ex["values"]:
                values[name][idx] = ex["values"][name]
        if ex.get("photometry") is not None:
            phot = np.full((n, ex["photometry"].shape[1]), np.nan)
            phot[idx] = ex["photometry"]
    return lnp, chi2, values, phot, nev, theta, log_qm


def _spread_starts(y: NDArray, n: int) -> list[int]:
    """``n`` rows of ``y`` (m, d), best first, spread out: the first row, then again and
    again the row farthest (Euclidean, in the unbounded coordinates) from those chosen."""
    chosen = [0]
    dist = ((y - y[0]) ** 2).sum(axis=1)
    while len(chosen) < min(n, y.shape[0]):
        i = int(np.argmax(dist))
        if dist[i] <= 0:
            break
        chosen.append(i)
        dist = np.minimum(dist, ((y - y[i]) ** 2).sum(axis=1))
    return chosen


def run_adaptive(lnprob: LogProbability, lo: NDArray, hi: NDArray, candidates: NDArray,
                 candidate_weights: NDArray, stat_names: list[str],
                 settings: AdaptiveSettings, starts: NDArray | None = None
                 ) -> ImportanceSamples:
    """Adaptive importance sampling of ``lnprob`` inside the box [lo, hi], started from
    weighted candidate positions (e.g. library models). See the module docstring.

    Parameters
    ----------
    lnprob : LogProbability
        The log posterior of the free parameters.
    lo, hi : ndarray, shape (d,)
        The box of the free parameters.
    candidates : ndarray, shape (m, d)
        Starting positions (e.g. the library models).
    candidate_weights : ndarray, shape (m,)
        Their weights (e.g. the library posterior).
    stat_names : list of str
        Quantities kept for every sample (parameters and derived quantities).
    settings : AdaptiveSettings
        Budget, seed and convergence targets.
    starts : ndarray, shape (m, d), optional
        Positions, best first, from which Levenberg–Marquardt looks for modes
        (``n_starts`` of them, spread out by :func:`_spread_starts`); by default the
        ``n_starts`` candidates of largest weight.

    Returns
    -------
    ImportanceSamples
    """
    settings.check()
    rng = np.random.default_rng(settings.seed)
    box = _Box(lo, hi)
    d = lnprob.ndim
    min_ess = settings.min_adapt_ess if settings.min_adapt_ess is not None else 10.0 * d
    w0 = np.asarray(candidate_weights, dtype=np.float64)
    with np.errstate(divide="ignore"):
        lw0 = np.log(np.where(w0 > 0, w0, 0.0))
    seed_y = box.to_y(np.clip(np.asarray(candidates, dtype=np.float64), lo, hi))
    photometric = (bool(getattr(lnprob, "filters", None))
                   and getattr(lnprob, "obs", None) is not None
                   and getattr(lnprob, "err", None) is not None)
    im = getattr(lnprob, "im", None) if settings.mass_conditional and photometric else None
    keep = [j for j in range(d) if j != im]  # the dimensions of the adaptive proposal
    mass_proposal = None
    if im is not None:
        # photometric: lnprob has observations and errors
        mass_proposal = _MassProposal(np.asarray(lnprob.obs, dtype=np.float64),
                                      cast("NDArray[np.float64]", lnprob.err),
                                      lnprob.upper, lo[im], hi[im], rng, df=settings.df)
    ys: list[NDArray] = []
    qms: list[NDArray] = []
    lnps: list[NDArray] = []
    ljs: list[NDArray] = []
    chi2s: list[NDArray] = []
    vals: list[dict[str, NDArray]] = []
    phots: list[NDArray | None] = []
    proposals: list[_Proposal] = []
    sizes: list[int] = []
    # log Σ_r N_r q_r(y_i) for every sample so far
    log_mix_sum = np.zeros(0)
    # the box-prior log density of every sample so far (the defensive component of every
    # proposal), computed once per sample
    log_box_keep = np.zeros(0)
    n_eval = 0
    history: list[dict[str, float]] = []
    ess = 0.0
    log_w = np.zeros(0)
    batch = int(settings.batch)
    chunk = max(int(settings.batch) // 2, 1)  # samples between two convergence checks
    converged = False
    final_errors: dict[str, tuple[float, float]] | None = None
    final_khat: float | None = None
    box_normals: NDArray | None = None

    def proposal_from(points: NDArray, weights: NDArray) -> _Proposal:
        # every round's box mixture is normalised with the same draws, made at the first
        nonlocal box_normals
        if box_normals is None and settings.mixture_components > 0:
            box_normals = rng.standard_normal((_BOX_NORMALS, len(keep)))
        return _build_proposal(points, weights, settings, rng, normals=box_normals)

    def parts(y: NDArray) -> tuple[NDArray, NDArray]:
        lnp, ex = lnprob.evaluate(box.to_theta(y), extras=True, values=False)
        log_like = np.full(y.shape[0], -np.inf)
        if ex:
            log_like[ex["index"]] = -0.5 * ex["chi2"]
        with np.errstate(invalid="ignore"):
            log_prior = np.where(np.isfinite(lnp), lnp - log_like, -np.inf)
        return log_prior + box.log_jacobian(y), log_like

    first = None
    if settings.n_starts > 0 and photometric and settings.max_evaluations >= 4 * batch:
        # Levenberg–Marquardt from the best library models to the posterior modes; their
        # Laplace approximations make the first proposal (most posteriors of photometry are
        # close to Gaussian in the unbounded coordinates once the modes are found)
        if starts is not None and len(starts) > 0:
            pool = box.to_y(starts)
            start_y = pool[_spread_starts(pool[:, keep], settings.n_starts)]
        else:
            top = np.argsort(-np.where(np.isfinite(lw0), lw0, -np.inf), kind="stable")
            start_y = seed_y[top[:settings.n_starts]]
        modes, covs, lp_modes, nev = _laplace_modes(lnprob, box, start_y,
                                                    settings.max_newton_iter,
                                                    settings.max_evaluations // 4)
        n_eval += nev
        distinct = _distinct_modes(modes, covs, lp_modes)
        if distinct:
            centres, shapes, nev = _calibrated_laplace(lnprob, box, modes[distinct],
                                                       covs[distinct], lp_modes[distinct],
                                                       mass=mass_proposal, im=im)
            n_eval += nev
            first = _laplace_proposal(centres, shapes, lp_modes[distinct],
                                      keep, _kde_groups(seed_y[:, keep],
                                                        _tempered(lw0, min_ess), settings, rng),
                                      settings)
        history.append({"n": 0.0, "ess": 0.0, "evaluations": float(n_eval),
                        "modes": float(len(distinct))})
    annealed = None
    for _ in range(settings.max_rounds):
        # the samples of the earlier rounds in the proposed dimensions (stacked once a round)
        earlier_keep = np.vstack(ys)[:, keep] if ys else None
        if (annealed is None and settings.n_particles > 0 and len(sizes) >= settings.anneal_after
                and ess < min_ess
                and settings.max_evaluations - n_eval >= 2 * settings.n_particles):
            # the importance rounds make no headway from the library (a posterior far
            # narrower than its spacing, or curved): anneal the library to the posterior
            before = lnprob.ncalls
            annealed, _, steps = _anneal(parts, seed_y, lw0, settings, rng,
                                         settings.max_evaluations - n_eval)
            n_eval += lnprob.ncalls - before
            history.append({"n": 0.0, "ess": ess, "evaluations": float(n_eval),
                            "tempering_steps": float(steps)})
            proposal = proposal_from(annealed[:, keep],
                                     np.full(annealed.shape[0], 1.0 / annealed.shape[0]))
        elif earlier_keep is not None:
            proposal = proposal_from(earlier_keep, _tempered(log_w, min_ess))
        elif first is not None:
            proposal = first
        else:
            proposal = proposal_from(seed_y[:, keep], _tempered(lw0, min_ess))
        n_round = int(min(batch, max(settings.max_evaluations - n_eval, 0)))
        if n_round < 1:
            break
        # this proposal's density at the samples of the earlier rounds (their mixture sum
        # gains n_r q_r as the round's samples come in)
        log_mix_before = log_mix_sum
        log_q_round = (proposal.logpdf(earlier_keep, log_box_keep)
                       if earlier_keep is not None else np.zeros(0))
        proposals.append(proposal)
        sizes.append(0)
        drawn_in_round = 0
        while drawn_in_round < n_round:
            # the round is drawn in chunks, and ends as soon as the fit has converged
            n = min(chunk, n_round - drawn_in_round)
            y = np.zeros((n, d))
            y[:, keep] = proposal.sample(n, rng)
            lnp, chi2, values, phot, nev, theta, log_qm = _evaluate(
                lnprob, box.to_theta(y), stat_names, mass_proposal)
            n_eval += nev
            drawn_in_round += n
            if im is not None:
                # the drawn masses, and their density in the unbounded coordinate
                drawn = np.isfinite(log_qm)
                u = (theta[drawn, im] - lo[im]) / box.width[im]
                y[drawn, im] = np.log(u) - np.log1p(-u)
                log_qm[drawn] += (math.log(box.width[im]) - np.logaddexp(0.0, -y[drawn, im])
                                  - np.logaddexp(0.0, y[drawn, im]))
            log_qm = np.where(np.isfinite(log_qm), log_qm, 0.0)
            # the new samples' densities under the earlier proposals and this one
            new_keep = y[:, keep]
            logistic = _Box.logistic_terms(y)
            new_box = -logistic[:, keep].sum(axis=-1)
            earlier = [math.log(m) + q.logpdf(new_keep, new_box)
                       for q, m in zip(proposals[:-1], sizes[:-1], strict=True)]
            log_mix_before = np.concatenate(
                [log_mix_before, _logsumexp_rows(np.column_stack(earlier)) if earlier
                 else np.full(n, -np.inf)])
            log_q_round = np.concatenate([log_q_round, proposal.logpdf(new_keep, new_box)])
            sizes[-1] += n
            log_mix_sum = np.logaddexp(log_mix_before, math.log(sizes[-1]) + log_q_round)
            log_box_keep = np.concatenate([log_box_keep, new_box])
            ys.append(y)
            qms.append(log_qm)
            lnps.append(lnp)
            ljs.append(box.log_volume - logistic.sum(axis=-1))
            chi2s.append(chi2)
            vals.append(values)
            phots.append(phot)
            total = sum(sizes)
            log_post = np.concatenate(lnps)
            log_target_y = log_post + np.concatenate(ljs)
            log_w = np.where(np.isfinite(log_post),
                             log_target_y - (log_mix_sum - math.log(total))
                             - np.concatenate(qms), -np.inf)
            ess_new = effective_sample_size(log_w)
            final_khat = pareto_k(log_w) if ess_new >= settings.target_ess else None
            khat = math.nan if final_khat is None else final_khat
            final_errors = None
            need_ess = settings.target_ess
            # the median errors mean something from min_ess on; within a round they can
            # only matter once the ESS has reached the target (the round's last chunk
            # needs them anyway, to size the next round)
            if ess_new >= min_ess and (ess_new >= need_ess or drawn_in_round >= n_round):
                errors = median_errors({k: np.concatenate([v[k] for v in vals])
                                        for k in settings.precision_quantities
                                        if k in vals[0]},
                                       log_w, settings.precision_quantities)
                final_errors = errors
                need_ess = max(need_ess, _precision_ess(errors, ess_new, settings))
            if ess_new >= need_ess and khat < settings.max_pareto_k:
                converged = True
                break
        history.append({"n": float(sizes[-1]), "ess": ess_new, "evaluations": float(n_eval),
                        "pareto_k": khat, "ess_needed": need_ess})
        gain = max(ess_new - ess, 0.0)
        ess = ess_new
        if converged:
            break
        # size the next round from this round's yield (ESS gained per sample)
        eff = max(gain / sizes[-1], 1e-3)
        need = (need_ess - ess) / eff
        batch = int(np.clip(need * _ROUND_MARGIN, settings.batch // 2, 4 * settings.batch))
        if ess < min_ess:
            # the proposal is still poor: adapt it again soon rather than draw many from it
            batch = int(settings.batch)
    log_post = np.concatenate(lnps)
    names = list(stat_names)
    values = {k: np.concatenate([v[k] for v in vals]) for k in names}
    phot_all = None if phots[0] is None else np.vstack(
        [p if p is not None else np.full((yc.shape[0], phots[0].shape[1]), np.nan)
         for p, yc in zip(phots, ys, strict=True)])
    finite = np.isfinite(log_w)
    # mean weight = ∫ π dθ; divided by the box volume: the evidence of the uniform prior
    ln_z = (float(logsumexp(log_w[finite]) - math.log(sum(sizes)) - box.log_volume)
            if finite.any() else -math.inf)
    return ImportanceSamples(theta=box.to_theta(np.vstack(ys)), log_weight=log_w,
                             log_post=log_post, values=values, chi2=np.concatenate(chi2s),
                             photometry=phot_all, ess=float(ess), n_evaluations=int(n_eval),
                             rounds=len(sizes), converged=converged, ln_evidence=ln_z,
                             history=history, final_median_errors=final_errors,
                             final_pareto_k=final_khat)


def weighted_quantiles(values: NDArray, weights: NDArray, q: NDArray) -> NDArray[np.float64]:
    """Quantiles ``q`` (0–1) of every column of ``values`` (n, m) under ``weights`` (n,):
    the inverse of the weighted empirical CDF with each sample at the middle of its weight
    (equal weights give numpy's "hazen" percentiles). NaN where a column has no finite value
    with weight.

    Parameters
    ----------
    values : ndarray, shape (n, m) or (n,)
        Samples (rows) of m quantities.
    weights : ndarray, shape (n,)
        Weights of the samples, >= 0.
    q : ndarray, shape (nq,)
        Quantile levels in [0, 1].

    Returns
    -------
    ndarray, shape (nq, m)
    """
    vals = np.atleast_2d(np.asarray(values, dtype=np.float64).T).T
    q = np.atleast_1d(q)
    weights = np.asarray(weights, dtype=np.float64)
    out = np.full((q.size, vals.shape[1]), np.nan)
    positive = weights > 0
    equal = bool(np.all(weights[positive] == weights.max(initial=0.0)))
    for j in range(vals.shape[1]):
        col = vals[:, j]
        ok = np.isfinite(col) & positive
        if not ok.any():
            continue
        x = col[ok]
        order = np.argsort(x)  # an unstable sort is several times faster ...
        xs = x[order]
        # ... and the same order unless values tie; with equal weights (resampled
        # posteriors) the order of tied samples changes nothing
        if not equal and (xs[1:] == xs[:-1]).any():
            order = np.argsort(x, kind="stable")
            xs = x[order]
        x, w = xs, weights[ok][order]
        cw = np.cumsum(w)
        mid = (cw - 0.5 * w) / cw[-1]
        out[:, j] = np.interp(q, mid, x)
    return out


def refine(ctx: FitContext, lp: LibraryPass, obs: NDArray | None, err: NDArray | None,
           z: float | None, spectral: Any, area_kpc2: float | None,
           settings: AdaptiveSettings, upper: NDArray | None = None) -> Any:
    """Adaptive RDSPS fit of one SED started from its library pass; returns a
    :class:`~pixedfit.fitting.results.FitResult` (``method="rdsps"``) whose ``ess``,
    ``n_model_evaluations``, ``rounds`` and ``converged`` describe the refinement.

    Parameters
    ----------
    ctx : fit context
        The fit context of :mod:`pixedfit.fitting.drivers` (library, model, priors,
        settings).
    lp : LibraryPass
        The SED's library pass (posterior weights of the library models).
    obs, err : ndarray, shape (nband,), or None
        Observations as fitted (f_λ, erg s⁻¹ cm⁻² Å⁻¹; total errors, +inf for a dropped
        band: :class:`~pixedfit.fitting.errors.Observations`); None for a spectrum alone.
    z : float or None
        Redshift (None: free, on the library's grid).
    spectral : SpectralLikelihood or None
        The spectrum's likelihood.
    area_kpc2 : float or None
        Area of the SED (kpc²), for surface-density priors.
    settings : AdaptiveSettings
        Budget, seed and convergence targets of the refinement.
    upper : ndarray of bool, shape (nband,), optional
        Bands fitted as upper limits.

    Returns
    -------
    FitResult
    """
    settings.check()
    has_phot = obs is not None
    prob = sampling_problem(ctx, lp, obs, err, z, spectral=spectral, area_kpc2=area_kpc2,
                            max_candidates=settings.max_candidates, upper=upper,
                            log_mass_to_light=settings.log_mass_to_light)
    run = run_adaptive(prob.lnprob, prob.lo, prob.hi, prob.candidates,
                       prob.candidate_weights, prob.stat_names, settings, starts=prob.starts)
    w = run.normalised_weights()
    names = prob.stat_names
    table = np.column_stack([run.values[n] for n in names])
    use = w > 0
    tw = w[use]
    tab = table[use]
    mean = np.array([np.average(tab[:, j][np.isfinite(tab[:, j])],
                                weights=tw[np.isfinite(tab[:, j])])
                     if np.isfinite(tab[:, j]).any() else np.nan for j in range(tab.shape[1])])
    var = np.array([np.average((tab[:, j][np.isfinite(tab[:, j])] - mean[j]) ** 2,
                               weights=tw[np.isfinite(tab[:, j])])
                    if np.isfinite(tab[:, j]).any() else np.nan for j in range(tab.shape[1])])
    levels = np.array([0.16, 0.5, 0.84])
    pct = weighted_quantiles(tab, tw, levels)
    ibest = int(np.argmin(np.where(np.isfinite(run.log_post), run.chi2, np.inf)))
    best = table[ibest]
    bfit = run.photometry[ibest] if (has_phot and run.photometry is not None) else np.zeros(0)
    rng = np.random.default_rng([settings.seed, 1])
    samples = drawn = None
    if settings.n_samples > 0:
        drawn = _systematic(w, settings.n_samples, rng)
        samples = table[drawn]
    photo_pct = None
    if has_phot and run.photometry is not None:
        # the model photometry's percentiles (for plots) from the equal-weight posterior
        # samples, like the MCMC's from its chain: sorting every band over all the weighted
        # samples took 2 % of a DustPedia fit
        rows, row_w = ((run.photometry[use], tw) if drawn is None
                       else (run.photometry[drawn], np.ones(drawn.size)))
        photo_pct = weighted_quantiles(rows, row_w, levels)
    spectrum = None
    if spectral is not None:
        _, bex = prob.lnprob.evaluate(run.theta[ibest:ibest + 1], extras=True)
        factor = bex["spec_factor"][0]
        spectrum = {"wave": spectral.wave, "flux": spectral.flux, "flux_err": spectral.err,
                    "used": spectral.use.copy(), "model": factor * bex["spec_model"][0],
                    "factor": factor / bex["scale"][0]}
        top = np.argsort(w)[::-1][:256]
        top = top[w[top] > 0]
        _, ex = prob.lnprob.evaluate(run.theta[top], extras=True)
        rel = ex["spec_factor"] / ex["scale"][:, None]
        wt = w[top][ex["index"]]
        wt = wt / wt.sum()
        fmean = wt @ rel
        spectrum["factor_mean"] = fmean
        spectrum["factor_std"] = np.sqrt(np.maximum(wt @ (rel * rel) - fmean**2, 0.0))
    z_grid = z_post = None
    if z is None and "z" in names and lp.models.z_grid is not None:
        # the redshift posterior on the library's grid: weights binned between its midpoints
        z_grid = np.asarray(lp.models.z_grid, dtype=np.float64)
        edges = np.concatenate([[-np.inf], 0.5 * (z_grid[1:] + z_grid[:-1]), [np.inf]])
        zs = run.values["z"]
        ok = np.isfinite(zs) & (w > 0)
        z_post, _ = np.histogram(zs[ok], bins=edges, weights=w[ok])
        z_post = z_post / z_post.sum() if z_post.sum() > 0 else z_post
    notes = []
    if not run.converged:
        needed = next((h["ess_needed"] for h in reversed(run.history) if "ess_needed" in h),
                      0.0)
        notes.append(f"effective sample size {run.ess:.0f} (needed "
                     f"{max(needed, settings.target_ess):.0f}: target_ess "
                     f"{settings.target_ess:g}, medians to {settings.median_precision:g}; "
                     f"Pareto k {pareto_k(run.log_weight):.2f}, at most "
                     f"{settings.max_pareto_k:g}) after {run.n_evaluations} model evaluations "
                     f"in {run.rounds} rounds: the posterior is not converged (raise "
                     "max_evaluations or max_rounds, or check the fit with method='nested')")
        if getattr(ctx, "warn_each", True):  # catalogues and bins warn once, at the end
            warnings.warn(notes[-1], ConvergenceWarning, stacklevel=3)
    edge = None
    if "log_mass" in prob.free:
        j = prob.free.index("log_mass")
        edge = mass_box_edge(run.values["log_mass"], w, prob.lo[j], prob.hi[j], ctx.priors,
                             settings.log_mass_to_light)
        if edge is not None:
            notes.append(edge)
            if getattr(ctx, "warn_each", True):
                warnings.warn(edge, MassBoxWarning, stacklevel=3)
    diagnostics = {
        "sampled": prob.free, "fixed": prob.fixed,
        "box": {n: [float(a), float(b)] for n, a, b in zip(prob.free, prob.lo, prob.hi,
                                                           strict=True)},
        "library_ess": float(1.0 / np.sum(np.asarray(lp.weights) ** 2)),
        "pareto_k": (run.final_pareto_k if run.final_pareto_k is not None
                     else pareto_k(run.log_weight)),
        "library_models": int(ctx.library.nmodels),
        "target_ess": float(settings.target_ess), "seed": int(settings.seed),
        "median_precision": float(settings.median_precision),
        "median_errors": {k: v[0] for k, v in (
            run.final_median_errors if run.final_median_errors is not None
            else median_errors(run.values, run.log_weight,
                               settings.precision_quantities)).items()},
        "history": run.history, "warnings": notes, "mass_box_edge": edge is not None,
        "spectral_pixels": None if spectral is None else spectral.npix,
        "spectral_clipped": lp.nclip,
        "spectral_template_limited": None if spectral is None else spectral.template_limited,
        **fit_quality(float(run.chi2[ibest]),
                      (int(np.isfinite(cast("NDArray", err)).sum()) if has_phot else 0)
                      + (spectral.npix if spectral is not None else 0), len(prob.free)),
    }
    return FitResult(
        method="rdsps", names=tuple(names), mean=mean, std=np.sqrt(var), p16=pct[0],
        p50=pct[1], p84=pct[2], best=best,
        filters=tuple(ctx.filters) if has_phot else (),
        obs_flux=cast("NDArray", obs) if has_phot else np.zeros(0),
        obs_flux_err=cast("NDArray", err) if has_phot else np.zeros(0),
        bfit_photo=bfit, z=z, chi2_min=float(run.chi2[ibest]), ln_evidence=run.ln_evidence,
        n_used=int(use.sum()), n_bands_used=len(ctx.filters) if has_phot else 0,
        config=ctx.config(), samples=samples, photo_pct=photo_pct, spectrum=spectrum,
        diagnostics=diagnostics, ess=run.ess, n_model_evaluations=run.n_evaluations,
        rounds=run.rounds, converged=run.converged, z_grid=z_grid, z_posterior=z_post)
