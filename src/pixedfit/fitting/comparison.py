"""Bayesian model comparison of one SED: the evidences of several models (libraries, e.g.
with and without an AGN torus, or two SFH forms) from nested-sampling fits of the same data
(:func:`compare_models`), and their Bayes factors (:class:`ModelComparison`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .drivers import fit_sed
from .nested import NestedSamplingWarning, NestedSettings

__all__ = ["ModelComparison", "check_comparable", "compare_models"]


@dataclass
class ModelComparison:
    """Evidences of several models of one SED and their Bayes factors.

    Attributes
    ----------
    names : tuple of str
        Model names, in the order given.
    ln_evidence, ln_evidence_err : ndarray, shape (nmodel,)
        ln Z and its 1σ error.
    ln_bayes : ndarray, shape (nmodel,)
        ln Z − ln Z of the best model (0 for the best, negative for the others).
    ln_bayes_err : ndarray, shape (nmodel,)
        Its error (errors of both evidences in quadrature; 0 for the best).
    results : dict of str to FitResult
        The nested-sampling fit of every model.
    """

    names: tuple[str, ...]
    ln_evidence: NDArray[np.float64]
    ln_evidence_err: NDArray[np.float64]
    ln_bayes: NDArray[np.float64]
    ln_bayes_err: NDArray[np.float64]
    results: dict[str, Any]

    @property
    def best(self) -> str:
        """Name of the model with the highest evidence."""
        return self.names[int(np.argmax(self.ln_evidence))]

    def preferred(self, threshold: float = 1.0) -> str:
        """The model to adopt: the one of highest evidence, unless models with fewer
        sampled parameters come within ``threshold`` in ln Z — then the simplest of those
        (highest ln Z among equals). A threshold of 1 requires "positive" evidence
        (Kass & Raftery 1995: 2 ln B > 2) before a more complex model is preferred: an
        extra parameter whose prior is mostly "no effect" (e.g. a torus fraction down to
        10⁻⁵) costs little evidence, so ln B of order ±0.5 is no reason to adopt it.
        """
        if not threshold >= 0:
            raise ValueError(f"threshold must be >= 0, got {threshold!r}")
        top = float(np.max(self.ln_evidence))
        close = [k for k in range(len(self.names)) if self.ln_evidence[k] >= top - threshold]
        npar = [len(self.results[self.names[k]].diagnostics.get("sampled", ()))
                if self.names[k] in self.results else 0 for k in close]
        fewest = min(npar)
        cand = [k for k, n in zip(close, npar, strict=True) if n == fewest]
        return self.names[max(cand, key=lambda k: self.ln_evidence[k])]

    @classmethod
    def from_evidences(cls, names: Sequence[str], ln_z: ArrayLike, ln_z_err: ArrayLike,
                       results: Mapping[str, Any] | None = None) -> ModelComparison:
        """Bayes factors relative to the best of the given evidences.

        Parameters
        ----------
        names : sequence of str
            Model names, one per evidence.
        ln_z, ln_z_err : array_like, shape (nmodel,)
            ln evidences and their 1σ errors.
        results : mapping name → FitResult, optional
            The fits behind the evidences, kept for reference.

        Returns
        -------
        ModelComparison
        """
        ln_z = np.asarray(ln_z, dtype=np.float64)
        err = np.asarray(ln_z_err, dtype=np.float64)
        k = int(np.nanargmax(ln_z))
        ln_b = ln_z - ln_z[k]
        ln_b_err = np.sqrt(err**2 + err[k] ** 2)
        ln_b_err[k] = 0.0
        return cls(tuple(names), ln_z, err, ln_b, ln_b_err, dict(results or {}))

    def table(self) -> str:
        """A plain-text table: model, ln Z ± error, ln B relative to the best, B."""
        lines = [f"{'model':<20} {'ln Z':>12} {'± err':>7} {'ln B':>9} {'± err':>7} "
                 f"{'B':>10}"]
        for k, name in enumerate(self.names):
            b = math.exp(self.ln_bayes[k]) if self.ln_bayes[k] > -700 else 0.0
            lines.append(f"{name:<20} {self.ln_evidence[k]:12.3f} {self.ln_evidence_err[k]:7.3f}"
                         f" {self.ln_bayes[k]:9.3f} {self.ln_bayes_err[k]:7.3f} {b:10.3g}"
                         + ("   <- best" if k == int(np.argmax(self.ln_evidence)) else ""))
        return "\n".join(lines)


def check_comparable(results: Mapping[str, Any]) -> list[str]:
    """Reasons why the evidences of these fits of one SED may not be comparable: different
    prior boxes of shared parameters, or priors that could not be normalised."""
    notes = []
    boxes: dict[str, tuple[str, list[float]]] = {}
    for name, res in results.items():
        d = res.diagnostics
        if not d.get("prior_normalised", True):
            notes.append(f"{name}: priors on derived quantities are not normalised; its "
                         "evidence carries their (model-dependent) normalisation")
        for par, b in d.get("box", {}).items():
            if par in boxes and not np.allclose(boxes[par][1], b, rtol=0, atol=1e-9):
                notes.append(f"prior box of {par!r} differs between {boxes[par][0]} "
                             f"{boxes[par][1]} and {name} {b}: the Bayes factor includes "
                             "the difference of prior volumes")
            boxes.setdefault(par, (name, list(b)))
    return notes


def compare_models(flux: ArrayLike | None, flux_err: ArrayLike | None,
                   filters: Sequence[str] | None, z: float | None,
                   libraries: Mapping[str, Any], models: Mapping[str, Any] | None = None,
                   priors: Any = None, settings: NestedSettings | Mapping | None = None,
                   seed: int = 0, **fit_kwargs: Any) -> ModelComparison:
    """Compare models of one SED by their Bayesian evidence (nested sampling).

    Parameters
    ----------
    flux, flux_err : array_like, shape (nband,), or None
        Observed f_λ and 1σ errors (erg s⁻¹ cm⁻² Å⁻¹).
    filters : sequence of str
        Bands.
    z : float or None
        Redshift (None: free, on the ``z`` prior's range).
    libraries : mapping name → ModelLibrary or path
        One library per model (it gives the model configuration and the parameter boxes —
        use the same generation ranges for the parameters the models share).
    models : mapping name → SEDModel, optional
        Forward models (default: rebuilt from each library).
    priors : PriorSet, mapping or sequence of Prior, optional
        Priors shared by every model (a prior on a parameter that a model lacks raises).
    settings : NestedSettings or mapping, optional
        Sampler settings (``seed`` is taken from ``seed``).
    seed : int
        Seed of every fit.
    **fit_kwargs
        Passed to :func:`pixedfit.fitting.fit_sed` (``errors``, ``spectrum``, ...).

    Returns
    -------
    ModelComparison
        ln Z ± error per model and ln Bayes factors relative to the best
        (``.table()`` prints them; ``.preferred()`` applies Occam's threshold). Raises a
        :class:`NestedSamplingWarning` when the evidences are not strictly comparable (see
        :func:`check_comparable`).
    """
    if not isinstance(libraries, Mapping) or len(libraries) < 2:
        raise ValueError("libraries: give a mapping name -> library of at least two models")
    models = dict(models or {})
    unknown = sorted(set(models) - set(libraries))
    if unknown:
        raise ValueError(f"models: {unknown} are not among the libraries "
                         f"{sorted(libraries)}")
    if "method" in fit_kwargs:
        raise ValueError("compare_models: 'method' is set by compare_models (nested "
                         "sampling with settings=)")
    nested = NestedSettings.from_any(settings)
    results = {}
    for name, lib in libraries.items():
        results[name] = fit_sed(flux, flux_err, filters, z=z, library=lib, priors=priors,
                                model=models.get(name), method=nested, seed=seed,
                                **fit_kwargs)
    for note in check_comparable(results):
        warnings.warn(note, NestedSamplingWarning, stacklevel=2)
    names = list(results)
    return ModelComparison.from_evidences(
        names, [results[n].ln_evidence for n in names],
        [results[n].diagnostics["ln_evidence_err"] for n in names], results)
