"""Image processing: per-band survey images → PSF-matched, aligned photometric data cube.

Modules (each with one job):

* :mod:`~pixedfit.images.instruments` — pixel scales, PSF FWHM, native units, calibration
* :mod:`~pixedfit.images.background` — sky background (photutils Background2D, sep masks)
* :mod:`~pixedfit.images.variance` — variance images per survey
* :mod:`~pixedfit.images.psf` — PSF models, matching kernels, convolution (K and K²)
* :mod:`~pixedfit.images.align` — cut-outs, reprojection, noise correlation of the chain
* :mod:`~pixedfit.images.regions` — segmentation and galaxy regions
* :mod:`~pixedfit.images.extinction` — Galactic E(B−V) and Fitzpatrick (1999) corrections
* :mod:`~pixedfit.images.fluxmap` — native stamps → :class:`pixedfit.cubes.FluxCube`
* :mod:`~pixedfit.images.measure` — apertures, total and pixel SEDs, radial profiles
* :mod:`~pixedfit.images.plots` — stamps, segmentation, region and flux-map plots
* :mod:`~pixedfit.images.process` — the :class:`ImageSet` pipeline

Arrays are (y, x) images or (band, y, x) cubes; pixel coordinates are zero-based.
"""

from __future__ import annotations

from .._lazy import lazy_attributes

# Public names, imported from their submodule on first use (keeps imports light).
_LAZY = {
    "binned_variance": "align",
    "box_variance_factor": "align",
    "ebv_foreground_dust": "extinction",
    "Instrument": "instruments",
    "get_instrument": "instruments",
    "list_instruments": "instruments",
    "ImageSet": "process",
    "StampBand": "process",
    "read_noise_correlation": "process",
}

__all__ = [
    "ImageSet",
    "Instrument",
    "StampBand",
    "binned_variance",
    "box_variance_factor",
    "ebv_foreground_dust",
    "get_instrument",
    "list_instruments",
    "read_noise_correlation",
]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
