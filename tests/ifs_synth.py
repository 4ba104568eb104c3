"""Small synthetic IFS + imaging data shared by the tests of pixedfit.ifs."""

from __future__ import annotations

import numpy as np
from astropy.wcs import WCS

from pixedfit.cubes import FluxCube
from pixedfit.ifs.generators import AnalyticGalaxy


def tan_wcs(scale: float, shape: tuple[int, int], rot: float = 0.0,
            crval: tuple[float, float] = (150.0, 2.0),
            offset: tuple[float, float] = (0.0, 0.0)) -> WCS:
    """TAN WCS of a (ny, nx) grid centred near ``crval``; ``scale`` arcsec, ``rot`` deg,
    ``offset`` (x, y) pixels of the reference point from the grid centre."""
    ny, nx = shape
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = list(crval)
    w.wcs.crpix = [(nx + 1) / 2 + offset[0], (ny + 1) / 2 + offset[1]]
    c, s = np.cos(np.radians(rot)), np.sin(np.radians(rot))
    w.wcs.cd = np.array([[-c, s], [s, c]]) * scale / 3600.0
    w.wcs.set()
    return w


def galaxy() -> AnalyticGalaxy:
    """A compact galaxy (fits well inside a 20″ IFS field)."""
    return AnalyticGalaxy(r_bulge=1.0, r_disc=2.0, r_lines=1.5, line_sigma=6.0)


def imaging(gal: AnalyticGalaxy, filters: list[str], wcs: WCS, shape: tuple[int, int],
            psf_fwhm: float, unit: float = 1e-17) -> FluxCube:
    """Noise-free imaging FluxCube (2 % errors) of ``gal`` with header PSFFWHM."""
    from astropy.io import fits

    img = gal.image(filters, wcs, shape, psf_fwhm) / unit
    hdr = fits.Header()
    hdr["PSFFWHM"] = psf_fwhm
    return FluxCube(img, 0.02 * np.abs(img) + 1e-4, filters, unit=unit, wcs=wcs, z=gal.z,
                    pixel_scale=float(np.sqrt(abs(np.linalg.det(wcs.wcs.cd))) * 3600),
                    header=hdr)
