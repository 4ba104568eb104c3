"""``pixedfit demo``: a synthetic galaxy observed in 12 bands, analysed end to end.

The demo builds an observation from known property maps and runs the whole pipeline on it:

1. **Truth.** A bulge (Sérsic n = 1.5) plus an exponential disk, inclined (b/a = 0.65), at
   z = 0.02. Every point has one stellar population of the fitted model family (delayed-τ
   SFH, Calzetti dust, nebular emission, BC03) whose parameters follow the local bulge
   fraction and the radius: an old, metal-rich, little-dusty bulge and a disk that gets
   younger, more metal-poor and less dusty outwards — hence gradients in age, metallicity,
   dust and specific SFR. Model photometry per solar mass is computed with
   :class:`~pixedfit.sps.SEDModel` on a fine radial grid and interpolated.
2. **Images.** For each of GALEX FUV/NUV, SDSS ugriz, 2MASS JHKs and WISE W1/W2 an image
   on the survey's own pixel grid (1.5″, 0.396″, 1″, 1.375″) is integrated over
   sub-pixels, convolved with the survey PSF (Gaussian of the instrument table's FWHM),
   converted to the survey's native unit (counts/s, nanomaggies, 2MASS DN with MAGZP,
   WISE DN) and given Gaussian sky noise; variance images are written alongside.
3. **Pipeline.** ``pixedfit run`` on the generated ``demo.toml``: image processing (PSF
   matching to W2, reprojection to the GALEX grid), segmentation, binning (S/N 10, GALEX 3),
   a 5000-model library, RDSPS fits, maps and the HTML report. The default stamp
   (:data:`DEMO_STAMP`) holds the galaxy's region with sky around it; much smaller stamps
   (as in quick tests) are filled by the galaxy and raise a
   :class:`~pixedfit.images.regions.RegionWarning`, as they should.
4. **Comparison.** True maps on the flux map's grid, PSF-matched like the data (mass and SFR
   are additive, so their PSF-convolved maps are the truth at the data's resolution), are
   summed over every bin and compared with the recovered bin values
   (:func:`pixedfit.analysis.maps.compare_with_truth`).

Documented tolerances (bins with S/N ≥ 10 in every band but GALEX, leftover excluded):
median |Δ log Σ*| < 0.1 dex, median |Δ log Σ_SFR| < 0.3 dex, median |Δ A_V| < 0.2 mag.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from numpy.typing import NDArray
from scipy import ndimage

from ._paths import atomic_path

if TYPE_CHECKING:
    from .sps import SEDModel

__all__ = [
    "DEMO_FILTERS",
    "DEMO_STAMP",
    "TOLERANCES",
    "DemoResult",
    "GalaxyModel",
    "blackbody_flambda",
    "make_observation",
    "run_demo",
]

#: Twelve bands from the far-UV to the mid-IR, by their piXedfit names.
DEMO_FILTERS = (
    "galex_fuv", "galex_nuv", "sdss_u", "sdss_g", "sdss_r", "sdss_i", "sdss_z",
    "2mass_j", "2mass_h", "2mass_k", "wise_w1", "wise_w2",
)
#: Default stamp (GALEX pixels of 1.5″, i.e. 144″ across): the galaxy's region (about
#: 1900 pixels at the demo's depth) then covers about a fifth of the stamp and leaves sky
#: all around it, as a real stamp should (64 pixels: 46 %, just under the region check's
#: 50 %; without the noise-correlation Monte Carlo the region filled that stamp).
DEMO_STAMP = 96
#: Documented tolerances of the demo (median absolute differences over good bins).
TOLERANCES = {"log_sigma_mass": 0.1, "log_sigma_sfr": 0.3, "A_V": 0.2}
#: A_V = 2.5 log10(e) τ_V for the Calzetti law (dust2 is τ_V).
AV_PER_DUST2 = 2.5 / math.log(10.0)

_RA, _DEC = 150.1, 2.2
_TWO_MASS_MAGZP = 20.0
# Sky noise per native pixel as a fraction of the PSF-convolved central pixel value.
_NOISE = {"galex": 0.3, "sdss": 0.25, "2mass": 0.15, "wise": 0.04}


_H = 6.62607015e-27  # erg s
_C = 2.99792458e10  # cm / s
_K = 1.380649e-16  # erg / K


def blackbody_flambda(wave: NDArray[np.float64], temperature: float) -> NDArray[np.float64]:
    """Planck function B_λ in erg s⁻¹ cm⁻² Å⁻¹ sr⁻¹ (a smooth test spectrum used by the
    photometry tests and benchmarks).

    Parameters
    ----------
    wave : ndarray
        Wavelengths in Å.
    temperature : float
        Temperature in K.
    """
    lam_cm = np.asarray(wave, dtype=np.float64) * 1e-8
    x = _H * _C / (lam_cm * _K * temperature)
    return 2.0 * _H * _C**2 / lam_cm**5 / np.expm1(x) * 1e-8


@dataclass(frozen=True)
class GalaxyModel:
    """Structure and stellar populations of the synthetic galaxy.

    Lengths in arcsec; surface densities in M☉ arcsec⁻² of surviving stellar mass.
    """

    z: float = 0.02
    disk_h: float = 7.0
    disk_sigma0: float = 9.0e7
    bulge_re: float = 3.0
    bulge_n: float = 1.5
    bulge_sigma_re: float = 6.0e7
    axis_ratio: float = 0.65
    pa_deg: float = 35.0

    def radius(self, x: NDArray, y: NDArray) -> NDArray[np.float64]:
        """Elliptical radius (arcsec) of offsets x, y (arcsec) from the centre.

        Parameters
        ----------
        x, y : ndarray
            Offsets from the centre along RA and Dec, arcsec (broadcast together).

        Returns
        -------
        ndarray
            The radius along the major axis, arcsec.
        """
        pa = math.radians(self.pa_deg)
        a = x * math.cos(pa) + y * math.sin(pa)
        b = -x * math.sin(pa) + y * math.cos(pa)
        return np.hypot(a, b / self.axis_ratio)

    def components(self, r: NDArray) -> tuple[NDArray, NDArray]:
        """Bulge and disk surface densities (M☉ arcsec⁻²) at elliptical radius r."""
        n = self.bulge_n
        bn = 2.0 * n - 1.0 / 3.0 + 0.009876 / n
        rs = np.sqrt(r**2 + 0.25)  # soften the cusp below the smallest pixel
        bulge = self.bulge_sigma_re * np.exp(-bn * ((rs / self.bulge_re) ** (1.0 / n) - 1.0))
        disk = self.disk_sigma0 * np.exp(-r / self.disk_h)
        return bulge, disk

    def params(self, r: NDArray) -> dict[str, NDArray]:
        """Model parameters (per 1 M☉) of the population at elliptical radius r."""
        bulge, disk = self.components(r)
        fb = bulge / (bulge + disk)
        x = np.minimum(r / self.disk_h, 3.0)
        return {
            "log_age": fb * 1.0 + (1 - fb) * (math.log10(5.0) - 0.25 * x),
            "log_tau": fb * -0.3 + (1 - fb) * 0.5,
            "logzsol": fb * 0.1 + (1 - fb) * (0.0 - 0.2 * x),
            "dust2": fb * 0.2 + (1 - fb) * (0.15 + 0.7 * np.exp(-r / (1.5 * self.disk_h))),
            "gas_logu": np.full(np.shape(r), -2.0),
            "log_mass": np.zeros(np.shape(r)),
        }


def demo_model() -> SEDModel:
    """The SEDModel of the demo (truth and fits): delayed τ, Calzetti, nebular, BC03."""
    from .sps import SEDModel

    return SEDModel(sfh_form=1, dust_law=1, add_neb_emission=True, dust_emission=False)


class _RadialTable:
    """Photometry and properties per 1 M☉ on a radial grid, interpolated in log r."""

    def __init__(self, galaxy: GalaxyModel, model: Any, filters: tuple[str, ...],
                 rmax: float, threads: int | None = None):
        self.r = np.concatenate([[0.0], np.geomspace(0.02, rmax, 400)])
        params = galaxy.params(self.r)
        flux, derived = model.photometry(params, z=galaxy.z, filters=list(filters),
                                         return_derived=True, threads=threads)
        self.log_flux = np.log(flux)  # (nr, nband), per 1 M☉ surviving
        self.sfr = np.asarray(derived["sfr"])  # M☉/yr per M☉
        self.params = params
        self.filters = filters

    def _interp(self, table: NDArray, r: NDArray) -> NDArray:
        return np.interp(np.ravel(r), self.r, table).reshape(np.shape(r))

    def flux(self, band: int, r: NDArray) -> NDArray[np.float64]:
        """f_λ per M☉ (erg s⁻¹ cm⁻² Å⁻¹) in band ``band`` at radius r."""
        return np.exp(self._interp(self.log_flux[:, band], r))

    def value(self, name: str, r: NDArray) -> NDArray[np.float64]:
        """A parameter (or ``sfr`` per M☉) at radius r."""
        table = self.sfr if name == "sfr" else self.params[name]
        return self._interp(table, r)


def _tan_wcs(n: tuple[int, int], scale: float, ra: float = _RA, dec: float = _DEC) -> WCS:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [(n[1] + 1) / 2.0, (n[0] + 1) / 2.0]
    w.wcs.cdelt = [-scale / 3600.0, scale / 3600.0]
    w.wcs.cunit = ["deg", "deg"]
    return w


def _offsets(wcs: WCS, shape: tuple[int, int], oversample: int) -> tuple[NDArray, NDArray]:
    """Offsets (arcsec, x west-positive like the pixel axis, y north) of the sub-pixel centres
    of a grid, shape (ny*os, nx*os)."""
    ny, nx = shape
    sub = (np.arange(oversample) + 0.5) / oversample - 0.5
    ys = (np.arange(ny)[:, None] + sub[None, :]).ravel()
    xs = (np.arange(nx)[:, None] + sub[None, :]).ravel()
    xx, yy = np.meshgrid(xs, ys)
    ra, dec = wcs.pixel_to_world_values(xx, yy)
    ref = _tan_wcs((1, 1), 1.0)
    ox, oy = ref.world_to_pixel_values(ra, dec)
    return ox, oy


def _block_sum(arr: NDArray, k: int) -> NDArray:
    ny, nx = arr.shape[0] // k, arr.shape[1] // k
    return arr.reshape(ny, k, nx, k).sum(axis=(1, 3))


def _surface(galaxy: GalaxyModel, r: NDArray) -> NDArray:
    bulge, disk = galaxy.components(r)
    return bulge + disk


def _native_image(galaxy: GalaxyModel, table: _RadialTable, band: int, wcs: WCS,
                  shape: tuple[int, int], scale: float) -> NDArray[np.float64]:
    """Noise-free f_λ per native pixel (before the PSF)."""
    k = max(1, math.ceil(scale / 0.25))
    ox, oy = _offsets(wcs, shape, k)
    r = galaxy.radius(ox, oy)
    mass = _surface(galaxy, r) * (scale / k) ** 2
    return _block_sum(mass * table.flux(band, r), k)


def truth_maps(galaxy: GalaxyModel, table: _RadialTable, wcs: WCS, shape: tuple[int, int],
               scale: float, psf_fwhm: float) -> dict[str, NDArray[np.float64]]:
    """True maps on a grid: per-pixel mass (M☉) and SFR (M☉/yr), PSF-matched (Gaussian
    ``psf_fwhm`` arcsec) and intrinsic, and mass-weighted dust2.

    Parameters
    ----------
    galaxy : GalaxyModel
        The synthetic galaxy.
    table : _RadialTable
        Its properties per M☉ on a radial grid.
    wcs : astropy.wcs.WCS
        WCS of the grid.
    shape : (ny, nx)
        Shape of the grid, pixels.
    scale : float
        Pixel scale of the grid, arcsec.
    psf_fwhm : float
        FWHM of the Gaussian PSF, arcsec.

    Returns
    -------
    dict of str to ndarray (ny, nx)
        ``MASS`` and ``SFR`` (PSF-matched), ``DUST2`` (mass-weighted, PSF-matched),
        ``MASS_INTRINSIC`` and ``SFR_INTRINSIC``.
    """
    k = 5
    sig = psf_fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0))) / scale
    pad = math.ceil(4 * sig)
    big = (shape[0] + 2 * pad, shape[1] + 2 * pad)
    wbig = wcs.deepcopy()
    wbig.wcs.crpix = [wcs.wcs.crpix[0] + pad, wcs.wcs.crpix[1] + pad]
    ox, oy = _offsets(wbig, big, k)
    r = galaxy.radius(ox, oy)
    mass_sub = _surface(galaxy, r) * (scale / k) ** 2
    mass = _block_sum(mass_sub, k)
    sfr = _block_sum(mass_sub * table.value("sfr", r), k)
    dust_m = _block_sum(mass_sub * table.value("dust2", r), k)
    inner = (slice(pad, pad + shape[0]), slice(pad, pad + shape[1]))
    conv = {name: ndimage.gaussian_filter(arr, sig, mode="constant")[inner]
            for name, arr in (("mass", mass), ("sfr", sfr), ("dust_m", dust_m))}
    mass, sfr = mass[inner], sfr[inner]
    return {
        "MASS": conv["mass"], "SFR": conv["sfr"],
        "DUST2": conv["dust_m"] / conv["mass"],
        "MASS_INTRINSIC": mass, "SFR_INTRINSIC": sfr,
    }


def make_observation(folder: str | os.PathLike[str], stamp: int = DEMO_STAMP, seed: int = 0,
                     nmodels: int = 5000, noise_realisations: int = 4,
                     galaxy: GalaxyModel | None = None, threads: int | None = None,
                     model: Any = None, refine: bool = True) -> Path:
    """Write the synthetic images, variance images and ``demo.toml`` into ``folder``.

    Parameters
    ----------
    folder : path-like
        Created if needed; images go to ``folder/inputs``.
    stamp : int
        Size of the analysed stamp in GALEX pixels (1.5″).
    seed : int
        Seed of the noise (and of the library and pipeline).
    nmodels : int
        Size of the model library of the fits.
    refine : bool
        Refine every bin's RDSPS fit to a converged posterior (``[fitting] refine``;
        False: the library pass only, e.g. for quick checks of the pipeline's mechanics).
    noise_realisations : int
        Monte Carlo realisations of the image-processing noise correlation.
    galaxy : GalaxyModel, optional
        The synthetic galaxy (default: :class:`GalaxyModel`'s defaults).
    threads : int, optional
        Threads of the model computations (None: all cores).
    model : SEDModel, optional
        The model of the galaxy and of the fits (default :func:`demo_model`).

    Returns
    -------
    Path
        The configuration file.
    """
    from .images.instruments import flux_conversion_factor, get_instrument

    if stamp < 16:
        raise ValueError("stamp: at least 16 pixels")
    galaxy = galaxy or GalaxyModel()
    model = model or demo_model()
    out = Path(folder)
    inputs = out / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    target_fwhm = max(get_instrument(f).psf_fwhm for f in DEMO_FILTERS)
    field = stamp * 1.5 * 1.25 + 8 * target_fwhm
    table = _RadialTable(galaxy, model, DEMO_FILTERS, rmax=field, threads=threads)
    sci: dict[str, str] = {}
    var: dict[str, str] = {}
    for b, name in enumerate(DEMO_FILTERS):
        inst = get_instrument(name)
        scale = inst.pixel_scale
        n = math.ceil(field / scale) | 1
        wcs = _tan_wcs((n, n), scale)
        img = _native_image(galaxy, table, b, wcs, (n, n), scale)
        img = ndimage.gaussian_filter(img, inst.psf_fwhm / 2.3548 / scale, mode="constant")
        hdr = wcs.to_header()
        if inst.unit == "DN_2mass":
            hdr["MAGZP"] = (_TWO_MASS_MAGZP, "2MASS zero point (Vega)")
        factor = flux_conversion_factor(inst, scale, hdr)
        native = img / factor
        sigma = _NOISE[inst.survey] * native.max()
        noisy = native + rng.normal(0.0, sigma, native.shape)
        hdr["FILTER"] = name
        hdr["SURVEY"] = inst.survey
        hdr["NATUNIT"] = (inst.unit, "native unit of the pixel values")
        for kind, data, store in (("sci", noisy, sci), ("var", np.full_like(noisy, sigma**2),
                                                       var)):
            path = inputs / f"{name}_{kind}.fits"
            with atomic_path(path) as tmp:
                fits.PrimaryHDU(data.astype(np.float32), header=hdr).writeto(tmp)
            store[name] = f"inputs/{path.name}"
    # truth on the analysis grid (GALEX pixels centred on the target)
    grid = _tan_wcs((stamp, stamp), 1.5)
    truth = truth_maps(galaxy, table, grid, (stamp, stamp), 1.5, target_fwhm)
    thdr = grid.to_header()
    thdr["Z"] = galaxy.z
    thdr["PSFFWHM"] = (target_fwhm, "[arcsec] PSF of MASS, SFR, DUST2")
    hdus = [fits.PrimaryHDU(header=thdr)]
    for key, arr in truth.items():
        hdus.append(fits.ImageHDU(arr, header=grid.to_header(), name=key))
    with atomic_path(inputs / "truth.fits") as tmp:
        fits.HDUList(hdus).writeto(tmp)
    config = _config_text(stamp, seed, nmodels, noise_realisations, galaxy.z, sci, var,
                          refine)
    cfg_path = out / "demo.toml"
    with atomic_path(cfg_path) as tmp:
        tmp.write_text(config)
    return cfg_path


def _config_text(stamp: int, seed: int, nmodels: int, noise_realisations: int, z: float,
                 sci: dict[str, str], var: dict[str, str], refine: bool = True) -> str:
    snr = [3.0 if f.startswith("galex") else 10.0 for f in DEMO_FILTERS]
    lines = [
        "# pixedfit demo configuration (generated by `pixedfit demo`)",
        "[run]", 'name = "pixedfit demo galaxy"', 'output_dir = "run"',
        "",
        "[images]",
        f"filters = {json.dumps(list(DEMO_FILTERS))}",
        f"ra = {_RA}", f"dec = {_DEC}", f"z = {z}",
        f"stamp_size = [{stamp}, {stamp}]",
        'psf_model = "gaussian"',
        f"noise_realisations = {noise_realisations}",
        "gal_ebv = 0.0",
        f"seed = {seed}",
        "segmentation_thresh = 3.0",
        "",
        "[images.sci]", *(f'{k} = "{v}"' for k, v in sci.items()),
        "",
        "[images.var]", *(f'{k} = "{v}"' for k, v in var.items()),
        "",
        "[binning]", 'ref_band = "sdss_z"', "min_bin_diameter = 2.0", f"snr_target = {snr}",
        "max_reduced_chi2 = 4.0", "del_r = 2.0",
        "",
        "[models]", f"nmodels = {nmodels}", f"seed = {seed + 1}", "sfh_form = 1",
        "dust_law = 1", "add_neb_emission = true", "dust_emission = false",
        "",
        "[models.ranges]", "log_age = [-0.4, 1.1]", "log_tau = [-0.6, 1.0]",
        "logzsol = [-0.9, 0.25]", "dust2 = [0.0, 1.3]", "gas_logu = [-2.0, -2.0]",
        "",
        "[fitting]", 'method = "rdsps"', 'likelihood = "gauss"',
        f"refine = {'true' if refine else 'false'}",
        "",
        "[maps]", 'ref_band_mass = "sdss_z"', 'ref_band_sfr = "sdss_u"',
        "",
        "[report]", 'truth = "inputs/truth.fits"', "n_examples = 3",
        f"truth_snr_bands = {json.dumps(list(DEMO_FILTERS[2:]))}",
        "",
    ]
    return "\n".join(lines)


@dataclass
class DemoResult:
    """What the demo measured.

    Attributes
    ----------
    report : Path
        The HTML report.
    metrics : dict
        Per quantity: median |Δ|, median Δ and the number of bins compared.
    seconds : float
        Wall-clock time of the whole demo.
    passed : bool
        All metrics within :data:`TOLERANCES`.
    """

    report: Path | None
    metrics: dict[str, dict[str, float]]
    seconds: float
    passed: bool


def run_demo(output_dir: str | os.PathLike[str] = "pixedfit_demo", seed: int = 0,
             stamp: int = DEMO_STAMP, nmodels: int = 5000, noise_realisations: int = 4,
             quiet: bool = False, pool: Any = None, report: bool = True,
             refine: bool = True) -> DemoResult:
    """Make the synthetic observation, run the pipeline and compare with the truth.

    Parameters
    ----------
    output_dir : path-like
        Folder of everything the demo writes (inputs, pipeline outputs, report).
    seed : int
        Seed of the noise, library and pipeline.
    stamp, nmodels, noise_realisations
        Size of the problem (smaller values make a faster, rougher run).
    quiet : bool
        No progress output.
    pool : SerialPool or MPIPool, optional
        MPI pool (default from the launch).
    report : bool
        Write the HTML report.
    refine : bool
        Refine every bin's fit to a converged posterior (adaptive RDSPS, the default).
    """
    from .analysis.maps import compare_with_truth
    from .pipeline import Pipeline

    start = time.perf_counter()
    out = Path(output_dir)
    if not quiet:
        print(f"pixedfit demo: synthetic galaxy in 12 bands (GALEX to WISE) → {out}/")
    cfg_path = out / "demo.toml"
    if pool is None:
        from .parallel import get_pool

        pool = get_pool()
    if pool.is_master:
        make_observation(out, stamp=stamp, seed=seed, nmodels=nmodels, refine=refine,
                         noise_realisations=noise_realisations)
    pool.barrier()
    pipe = Pipeline(cfg_path, pool=pool, quiet=quiet)
    if not report:
        pipe.cfg["report"]["enabled"] = False
    pipe.run()
    metrics = compare_with_truth(pipe.path("maps", "maps.fits"),
                                 pipe.path("binning", "binned.fits"),
                                 out / "inputs" / "truth.fits",
                                 snr_bands=list(DEMO_FILTERS[2:]))
    summary = {k: {"median_abs": v["median_abs"], "median": v["median"], "n": v["n"]}
               for k, v in metrics.items()}
    passed = all(summary[k]["median_abs"] < tol for k, tol in TOLERANCES.items()
                 if k in summary)
    seconds = time.perf_counter() - start
    if pool.is_master:
        with atomic_path(out / "comparison.json") as tmp:
            tmp.write_text(json.dumps({"metrics": summary, "tolerances": TOLERANCES,
                                       "passed": passed, "seconds": seconds}, indent=1))
    report_path = pipe.path("report", "index.html") if report else None
    if not quiet and pool.is_master:
        print("recovered vs true (bins with S/N >= 10 in every band but GALEX):")
        units = {"log_sigma_mass": "dex", "log_sigma_sfr": "dex", "A_V": "mag"}
        for key, tol in TOLERANCES.items():
            if key in summary:
                s = summary[key]
                print(f"  {key:<15} median |Δ| = {s['median_abs']:.3f} {units[key]} "
                      f"(bias {s['median']:+.3f}, {s['n']} bins; tolerance {tol})")
        print(f"{'all within tolerance' if passed else 'OUTSIDE TOLERANCE'}; "
              f"{seconds:.0f} s; report: {report_path}")
    return DemoResult(report_path, summary, seconds, passed)
