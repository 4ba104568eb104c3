"""Integral-field spectroscopy: cube readers, spatial and spectral matching to imaging.

Modules (each with one job):

* :mod:`~pixedfit.ifs.readers` — MaNGA, CALIFA, MUSE and generic cubes → :class:`IFSCube`
  (f_λ in erg s⁻¹ cm⁻² Å⁻¹, (wavelength, y, x), masks, WCS, PSF, resolution)
* :mod:`~pixedfit.ifs.spatial` — :func:`match_imgifs_spatial`: PSF matching and
  flux-conserving reprojection onto the imaging grid → :class:`pixedfit.cubes.SpecPhotCube`
* :mod:`~pixedfit.ifs.calibration` — the multiplicative Legendre correction of spectra to
  model spectra fitted to the photometry
* :mod:`~pixedfit.ifs.matching` — :func:`match_imgifs_spectral`: RDSPS fits of every
  pixel's photometry, best-fit model spectra, the correction
* :mod:`~pixedfit.ifs.registration` — registration of a cube on images (cross-correlation
  of its synthetic band image), blurring of images or cubes to a broader PSF
* :mod:`~pixedfit.ifs.generators` — synthetic galaxies and MaNGA/CALIFA files

The emission-line table and the air/vacuum conversion live in :mod:`pixedfit.lines`
(re-exported here).
"""

from __future__ import annotations

from .._lazy import lazy_attributes

# Public names, imported from their submodule on first use (keeps imports light).
_LAZY = {
    "EMISSION_LINES": "pixedfit.lines",
    "air_to_vacuum": "pixedfit.lines",
    "emission_line_mask": "pixedfit.lines",
    "vacuum_to_air": "pixedfit.lines",
    "SpectralMatch": "matching",
    "match_imgifs_spectral": "matching",
    "ErrorScaleWarning": "readers",
    "IFSCube": "readers",
    "error_scale": "readers",
    "read_califa": "readers",
    "read_generic": "readers",
    "read_ifs": "readers",
    "read_manga": "readers",
    "read_muse": "readers",
    "Registration": "registration",
    "blur_cube": "registration",
    "blur_image": "registration",
    "blur_photometry": "registration",
    "register_cube": "registration",
    "register_to_photometry": "registration",
    "match_imgifs_spatial": "spatial",
    "SpectralCorrection": "calibration",
    "apply_legendre_correction": "calibration",
    "correct_specphot_cube": "calibration",
}

__all__ = [
    "EMISSION_LINES",
    "ErrorScaleWarning",
    "IFSCube",
    "Registration",
    "SpectralCorrection",
    "SpectralMatch",
    "air_to_vacuum",
    "apply_legendre_correction",
    "blur_cube",
    "blur_image",
    "blur_photometry",
    "correct_specphot_cube",
    "emission_line_mask",
    "error_scale",
    "match_imgifs_spatial",
    "match_imgifs_spectral",
    "read_califa",
    "read_generic",
    "read_ifs",
    "read_manga",
    "read_muse",
    "register_cube",
    "register_to_photometry",
    "vacuum_to_air",
]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
