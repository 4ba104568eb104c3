"""SEDModel instances, libraries and the broad-band filter set shared by the tests (a model
costs ~1 s to build, a library of a few thousand models ~1 s to generate), and an analytic
target for the adaptive sampler."""

from __future__ import annotations

import numpy as np

from pixedfit.library import ModelLibrary, generate_library
from pixedfit.sps.bc03 import load_bc03
from pixedfit.sps.model import SEDModel

#: GALEX FUV … WISE W2: the 12 bands of the fitting tests' mocks.
FILTERS_12 = ["galex_fuv", "galex_nuv", "sdss_u", "sdss_g", "sdss_r", "sdss_i", "sdss_z",
              "2mass_j", "2mass_h", "2mass_k", "wise_w1", "wise_w2"]

#: Generation ranges of the fitting tests' libraries.
RANGES = {"log_age": (-1.0, 1.1), "logzsol": (-1.0, 0.2)}

_MODELS: dict = {}
_LIBRARIES: dict = {}


def model(**cfg) -> SEDModel:
    """The BC03 SEDModel with configuration ``cfg``, built once per session."""
    key = tuple(sorted((k, repr(v)) for k, v in cfg.items()))
    if key not in _MODELS:
        _MODELS[key] = SEDModel(grid=load_bc03(), **cfg)
    return _MODELS[key]


def library(sed_model: SEDModel, nmodels: int, seed: int,
            ranges: dict | None = None) -> ModelLibrary:
    """A library of ``sed_model`` over ``ranges`` (default :data:`RANGES`), generated once
    per session (treat it as read-only)."""
    ranges = RANGES if ranges is None else ranges
    key = (id(sed_model), nmodels, seed, tuple(sorted(ranges.items())))
    if key not in _LIBRARIES:
        _LIBRARIES[key] = generate_library(sed_model, nmodels, seed=seed, ranges=ranges)
    return _LIBRARIES[key]


class Target:
    """A log density with the interface of LogProbability (evaluate, ncalls, ndim), for
    driving the adaptive sampler with analytic targets."""

    def __init__(self, logpdf, ndim: int, lo: np.ndarray, hi: np.ndarray):
        self.logpdf, self.ndim, self.lo, self.hi = logpdf, ndim, lo, hi
        self.ncalls = 0

    def evaluate(self, theta, extras=False, values=True):
        theta = np.atleast_2d(theta)
        inside = np.all((theta >= self.lo) & (theta <= self.hi), axis=1)
        idx = np.flatnonzero(inside)
        self.ncalls += idx.size
        lnp = np.full(theta.shape[0], -np.inf)
        lnp[idx] = self.logpdf(theta[idx])
        out = {"index": idx, "chi2": -2 * lnp[idx], "photometry": None}
        if values:
            out["values"] = {f"p{j}": theta[idx, j] for j in range(self.ndim)}
        return lnp, out
