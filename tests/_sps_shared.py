"""SEDModel instances shared by the SPS tests (each costs ~1 s to build)."""

from __future__ import annotations

from pixedfit.sps.bc03 import load_bc03
from pixedfit.sps.model import SEDModel

_MODELS: dict = {}


def model(**cfg) -> SEDModel:
    """The BC03 SEDModel with configuration ``cfg``, built once per session."""
    key = tuple(sorted((k, repr(v)) for k, v in cfg.items()))
    if key not in _MODELS:
        _MODELS[key] = SEDModel(grid=load_bc03(), **cfg)
    return _MODELS[key]
