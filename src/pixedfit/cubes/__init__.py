"""Data objects of the package and their FITS layouts.

* :mod:`~pixedfit.cubes.flux` — :class:`FluxCube` (multi-band flux maps) and
  :class:`SpecPhotCube` (flux maps plus IFS spectra on the same pixels), :func:`read_cube`
* :mod:`~pixedfit.cubes.binned` — :class:`BinnedCube`, the result of
  :mod:`pixedfit.binning` (bin map, per-bin SEDs and spectra)

Both read and write piXedfit's layouts (``pixedfit_original_spec.md``) as well as ours.
"""

from __future__ import annotations

from .binned import BinnedCube, LeftoverWarning, first_pixels
from .flux import SCHEMA_VERSION, FluxCube, SpecPhotCube, read_cube

__all__ = ["SCHEMA_VERSION", "BinnedCube", "FluxCube", "LeftoverWarning", "SpecPhotCube",
           "first_pixels", "read_cube"]
