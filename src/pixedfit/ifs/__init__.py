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
* :mod:`~pixedfit.ifs.registration` — registration of a cube on images (cross-correlation
  of its synthetic band image), blurring of images or cubes to a broader PSF
* :mod:`~pixedfit.ifs.lines` — emission-line table, air/vacuum conversion
* :mod:`~pixedfit.ifs.generators` — synthetic galaxies and MaNGA/CALIFA files
"""

from __future__ import annotations

from .lines import EMISSION_LINES, air_to_vacuum, emission_line_mask, vacuum_to_air
from .matching import SpectralMatch, match_imgifs_spectral
from .readers import (
    ErrorScaleWarning,
    IFSCube,
    error_scale,
    read_califa,
    read_generic,
    read_ifs,
    read_manga,
    read_muse,
)
from .registration import (
    Registration,
    blur_cube,
    blur_image,
    blur_photometry,
    register_cube,
    register_to_photometry,
)
from .spatial import match_imgifs_spatial
from .spectral import SpectralCorrection, apply_legendre_correction, correct_specphot_cube

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
