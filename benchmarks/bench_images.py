"""Image processing: SDSS variance (vectorised vs the original's per-pixel loop) and the
ImageSet pipeline on the SN 2006bh host (SDSS + DES + PS1 griz, 12 bands).

The reference is a per-pixel Python loop doing what the original ``var_img_sdss`` does
(bilinear sky, DN, gain/dark variance per pixel), written here for the comparison.
Run: python benchmarks/bench_images.py  (needs ../shared/data).
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from pixedfit.images.align import fix_cutout_wcs
from pixedfit.images.process import ImageSet
from pixedfit.images.variance import (
    sdss_cutout_origin,
    sdss_gain_dark_variance,
    variance_from_weight,
    variance_sdss_frame,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hostphot_sn2006bh_griz"
RA, DEC = 27.952, 0.2635


def loop_reference(img, calib, allsky, xi, yi, band, camcol, origin):
    gain, dark = sdss_gain_dark_variance(band, camcol)
    ny, nx = img.shape
    out = np.empty_like(img)
    nsy, nsx = allsky.shape
    for y in range(ny):
        for x in range(nx):
            sx = min(max(xi[x + origin[0]], 0.0), nsx - 1.0)
            sy = min(max(yi[y + origin[1]], 0.0), nsy - 1.0)
            x0, y0 = min(int(sx), nsx - 2), min(int(sy), nsy - 2)
            fx, fy = sx - x0, sy - y0
            sky = ((1 - fx) * (1 - fy) * allsky[y0, x0] + fx * (1 - fy) * allsky[y0, x0 + 1]
                   + (1 - fx) * fy * allsky[y0 + 1, x0] + fx * fy * allsky[y0 + 1, x0 + 1])
            c = calib[x + origin[0]]
            dn = img[y, x] / c + sky
            out[y, x] = (abs(dn) / gain + dark) * c**2
    return out


def main() -> int:
    if not DATA.is_dir():
        print("shared data not found", file=sys.stderr)
        return 1
    with fits.open(DATA / "SDSS_r.fits.gz") as h:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w = WCS(h[0].header)
        origin = sdss_cutout_origin(w, RA, DEC, h[0].data.shape)
        t0 = time.perf_counter()
        for _ in range(20):
            ours = variance_sdss_frame(h, origin=origin)
        t_ours = (time.perf_counter() - t0) / 20
        allsky = np.asarray(h[2].data["ALLSKY"][0], float).reshape(192, 256)
        t0 = time.perf_counter()
        ref = loop_reference(h[0].data.astype(float), h[1].data.astype(float), allsky,
                             h[2].data["XINTERP"][0], h[2].data["YINTERP"][0], "r", 4, origin)
        t_ref = time.perf_counter() - t0
    agree = float(np.max(np.abs(ours / ref - 1)))
    print(f"SDSS variance 240x240: ours {t_ours * 1e3:.2f} ms, per-pixel loop "
          f"{t_ref * 1e3:.0f} ms, speed-up {t_ref / t_ours:.0f}x, max rel diff {agree:.1e}")

    sci, var = {}, {}
    for b in "griz":
        with fits.open(DATA / f"SDSS_{b}.fits.gz") as h:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                w = WCS(h[0].header)
            o = sdss_cutout_origin(w, RA, DEC, h[0].data.shape)
            var[f"sdss_{b}"] = variance_sdss_frame(h, origin=o)
            sci[f"sdss_{b}"] = (h[0].data.astype(float), fix_cutout_wcs(h[0].header, o))
        with fits.open(DATA / f"DES_{b}.fits.gz") as h:
            sci[f"ctio_decam_{b}"] = (h[0].data.astype(float), h[0].header)
            var[f"ctio_decam_{b}"] = variance_from_weight(h[1].data)
        sci[f"pan-starrs_{b}"] = DATA / f"PS1_{b}.fits.gz"
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        s = ImageSet(list(sci), sci, RA, DEC, tmp, var_img=var, stamp_size=(101, 101))
        s.process()
        s.galaxy_region()
        s.flux_map(gal_ebv=0.0)
        t_pipe = time.perf_counter() - t0
    print(f"ImageSet 12 bands, 101x101 stamps, 4 noise realisations: {t_pipe:.2f} s")
    print(f"RESULT sdss_var_ms={t_ours * 1e3:.2f} sdss_var_loop_ms={t_ref * 1e3:.0f} "
          f"speedup={t_ref / t_ours:.0f} max_rel_diff={agree:.1e} pipeline_12band_s={t_pipe:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
