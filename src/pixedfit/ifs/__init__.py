"""Integral-field spectroscopy: cube readers, spatial and spectral matching to imaging.

Modules (each with one job):

* :mod:`~pixedfit.ifs.readers` — MaNGA, CALIFA, MUSE and generic cubes → :class:`IFSCube`
  (f_λ in erg s⁻¹ cm⁻² Å⁻¹, (wavelength, y, x), masks, WCS, PSF, resolution)
* :mod:`~pixedfit.ifs.spatial` — :func:`match_imgifs_spatial`: PSF matching and
  flux-conserving reprojection onto the imaging grid → :class:`pixedfit.cube.SpecPhotCube`
* :mod:`~pixedfit.ifs.spectral` — the multiplicative Legendre correction of spectra to
  model spectra fitted to the photometry
* :mod:`~pixedfit.ifs.matching` — :func:`match_imgifs_spectral`: RDSPS fits of every
  pixel's photometry, best-fit model spectra, the correction
* :mod:`~pixedfit.ifs.lines` — emission-line table, air/vacuum conversion
* :mod:`~pixedfit.ifs.generators` — synthetic galaxies and MaNGA/CALIFA files
"""

from __future__ import annotations

from .._lazy import lazy_attributes

# Public names, imported from their submodule on first use (keeps imports light).
_LAZY = {
    "EMISSION_LINES": "lines",
    "air_to_vacuum": "lines",
    "emission_line_mask": "lines",
    "vacuum_to_air": "lines",
    "SpectralMatch": "matching",
    "match_imgifs_spectral": "matching",
    "IFSCube": "readers",
    "read_califa": "readers",
    "read_generic": "readers",
    "read_ifs": "readers",
    "read_manga": "readers",
    "read_muse": "readers",
    "match_imgifs_spatial": "spatial",
    "SpectralCorrection": "spectral",
    "apply_legendre_correction": "spectral",
    "correct_specphot_cube": "spectral",
}

__all__ = [
    "EMISSION_LINES",
    "IFSCube",
    "SpectralCorrection",
    "SpectralMatch",
    "air_to_vacuum",
    "apply_legendre_correction",
    "correct_specphot_cube",
    "emission_line_mask",
    "match_imgifs_spatial",
    "match_imgifs_spectral",
    "read_califa",
    "read_generic",
    "read_ifs",
    "read_manga",
    "read_muse",
    "vacuum_to_air",
]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
