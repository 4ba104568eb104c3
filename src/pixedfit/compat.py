"""piXedfit's public names as thin wrappers over pixedfit, so an old script runs after

    from pixedfit.compat import *     # instead of the piXedfit imports

Argument names and defaults follow piXedfit (``pixedfit_original_spec.md``; the pixedfit
API has PEP 8 names, e.g. ``bin_pixels(min_bin_diameter, snr_target, max_reduced_chi2)``
for ``pixel_binning(Dmin_bin, SNR, redc_chi2_limit)`` and ``SEDModel(dust_emission)`` for
``duste_switch``, and the wrappers translate); the work is done by pixedfit, so the
documented bugs of the original are *not* reproduced: outputs are written atomically, fits
run in-process (``nproc`` and other MPI settings are accepted and ignored — run the script
under ``mpiexec`` instead), random draws are seeded, RDSPS has no hidden error floor and the
pixel error maps are correct. Differences a script may notice:

* :func:`save_models_rest_spec` writes pixedfit's library layout (read by every fitting
  function here) with the IMF of the SSP grid (BC03: Kroupa, ``imf_type=2``); another
  ``imf_type`` gives a warning.
* Fit results are written in the original FITS layout (``FIT_PARAMS`` rows mean/std for
  RDSPS, p16/p50/p84 for MCMC), without the ``SAMPLERS`` table; :func:`plot_corner` and
  :func:`plot_sfh_mcmc` rebuild RDSPS posteriors from the library (``models_spec=``) or read
  a ``SAMPLERS`` table when the file has one.
* Names of outputs default to the original's, in the current directory.

Nothing else lives here: new code should use the pixedfit API.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import filters as _filters

__all__ = [
    "SEDfit_from_binmap",
    "add_filter",
    "change_filter_name",
    "cwave_filters",
    "get_bestfit_params",
    "get_filter_curve",
    "images_processing",
    "kpc_per_pixel",
    "list_filters",
    "maps_parameters",
    "open_binmap_fits",
    "pixel_binning",
    "plot_SED",
    "plot_corner",
    "plot_sfh_mcmc",
    "remove_filter",
    "save_models_rest_spec",
    "singleSEDfit",
]

PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------- filters
def list_filters() -> list[str]:
    """Names of all filters (:func:`pixedfit.filters.list_filters`)."""
    return _filters.list_filters()


def add_filter(filter_name: str, filter_wave: Any, filter_transmission: Any,
               filter_cwave: float | None = None) -> None:
    """Add a filter curve (:func:`pixedfit.filters.add_filter`)."""
    _filters.add_filter(filter_name, filter_wave, filter_transmission, cwave=filter_cwave)


def remove_filter(filter_name: str) -> None:
    """Remove a filter (:func:`pixedfit.filters.remove_filter`)."""
    _filters.remove_filter(filter_name)


def change_filter_name(old_filter_name: str, new_filter_name: str) -> None:
    """Rename a filter (:func:`pixedfit.filters.rename_filter`)."""
    _filters.rename_filter(old_filter_name, new_filter_name)


def get_filter_curve(filter_name: str) -> tuple[NDArray, NDArray]:
    """Wavelength (Å) and transmission of a filter."""
    return _filters.get_filter_curve(filter_name)


def cwave_filters(filters: Any) -> Any:
    """Central (pivot) wavelengths in Å."""
    return _filters.cwave_filters(filters)


def kpc_per_pixel(z: float, arcsec_per_pix: float, cosmo: Any = "flat_LCDM",
                  H0: float = 70.0, Om0: float = 0.3) -> float:
    """Proper kpc per pixel (:func:`pixedfit.cosmology.kpc_per_pixel`)."""
    from .cosmology import kpc_per_pixel as _kpc

    return float(_kpc(z, arcsec_per_pix, None if cosmo in (0, "flat_LCDM") else cosmo,
                      H0, Om0))


# --------------------------------------------------------------------------- images
class images_processing:  # noqa: N801 - the original's name
    """piXedfit's image-processing object over :class:`pixedfit.images.ImageSet`.

    ``sci_img``/``var_img`` map filters to file names (in ``dir_images``); ``img_unit`` and
    ``img_scale`` override the native unit and its scale; ``kernels`` are arrays or FITS
    files. Outputs go to ``output_dir`` (default: the current directory, as the original).
    """

    def __init__(self, filters: Sequence[str], sci_img: Mapping[str, Any],
                 var_img: Mapping[str, Any], gal_ra: float, gal_dec: float,
                 dir_images: PathLike | None = None, img_unit: Mapping[str, str] | None = None,
                 img_scale: Mapping[str, float] | None = None,
                 img_pixsizes: Mapping[str, float] | None = None,
                 run_image_processing: bool = True, flag_psfmatch: int = 0,
                 flag_reproject: int = 0, flag_crop: int = 0,
                 kernels: Mapping[str, Any] | None = None, gal_z: float | None = None,
                 stamp_size: Sequence[int] = (101, 101), remove_files: bool = True,
                 idfil_align: str | None = None, verbose: bool = False,
                 convolve_var_img: bool = True, output_dir: PathLike | None = None) -> None:
        from .images import ImageSet

        base = Path(dir_images) if dir_images else Path(".")

        def resolve(v: Any) -> Any:
            return str(base / v) if isinstance(v, str) else v

        overrides: dict[str, dict[str, Any]] = {}
        for f, unit in (img_unit or {}).items():
            overrides.setdefault(f, {})["unit"] = {"erg/s/cm2/A": "erg/s/cm2/A", "Jy": "Jy",
                                                   "MJy/sr": "MJy/sr"}.get(unit, unit)
        for f, scale in (img_scale or {}).items():
            overrides.setdefault(f, {})["unit_scale"] = float(scale)
        kern = None
        if kernels:
            kern = {}
            for f, k in kernels.items():
                if k is None:
                    continue
                if isinstance(k, str | os.PathLike):
                    from astropy.io import fits

                    k = fits.getdata(resolve(k))
                kern[f] = np.asarray(k, dtype=np.float64)
        self.filters = list(filters)
        self._set = ImageSet(
            filters, {f: resolve(v) for f, v in sci_img.items()}, gal_ra, gal_dec,
            output_dir=output_dir if output_dir is not None else os.getcwd(),
            var_img={f: resolve(v) for f, v in (var_img or {}).items()}, z=gal_z,
            stamp_size=tuple(int(v) for v in stamp_size), instruments=overrides or None,
            kernels=kern, align_filter=idfil_align, psf_match=not flag_psfmatch,
            reproject=not flag_reproject)
        self.output_stamps: list[str] | None = None
        if run_image_processing:
            self.reduced_stamps()

    def reduced_stamps(self) -> list[str]:
        """Cut, PSF-match and align; returns the stamp file names (one per filter)."""
        self._set.process(write=True)
        self.output_stamps = [str(self._set.output_dir / f"stamp_{f}.fits")
                              for f in self._set.filters]
        return self.output_stamps

    def segmentation_sep(self, output_stamps: Any = None, thresh: float = 1.5,
                         minarea: int = 30, deblend_nthresh: int = 32,
                         deblend_cont: float = 0.005) -> list[NDArray]:
        """Per band, the segment containing the stamp centre (list of 0/1 maps)."""
        segs = self._set.segmentation(thresh=thresh, minarea=minarea,
                                      deblend_nthresh=deblend_nthresh,
                                      deblend_cont=deblend_cont)
        return [segs[f].astype(int) for f in self._set.filters]

    def galaxy_region(self, segm_maps_ids: Sequence[int] | None = None,
                      use_ellipse: bool = False, x_cent: float | None = None,
                      y_cent: float | None = None, ell: float = 0.0, pa: float = 45.0,
                      radius_sma: float = 30.0) -> NDArray:
        """Galaxy region (0/1 map): union of segments (band indices) or an ellipse."""
        if use_ellipse:
            reg = self._set.galaxy_region(use_ellipse=True, x_cent=x_cent, y_cent=y_cent,
                                          ell=ell, pa=pa, radius_sma=radius_sma)
        else:
            bands = None if segm_maps_ids is None else [self._set.filters[i]
                                                        for i in segm_maps_ids]
            reg = self._set.galaxy_region(bands=bands)
        return reg.astype(int)

    def flux_map(self, gal_region: Any, output_stamps: Any = None, Gal_EBV: float | None = None,
                 scale_unit: float = 1e-17, mag_zp_2mass: float | None = None,
                 unit_spire: str = "Jy_per_beam", name_out_fits: PathLike | None = None) -> str:
        """Write the flux map (default ``fluxmap.fits``); returns its file name."""
        if mag_zp_2mass is not None:
            self._set.zeropoints.update({f: float(mag_zp_2mass) for f in self._set.filters
                                         if f.startswith("2mass")})
        name = str(name_out_fits or "fluxmap.fits")
        out = Path(name)
        out_dir = out.parent if out.is_absolute() or out.parent != Path(".") else None
        if out_dir is not None:
            self._set.output_dir = out_dir
        self._set.flux_map(region=np.asarray(gal_region) > 0, gal_ebv=Gal_EBV,
                           scale_unit=scale_unit, name_out=out.name)
        return str(self._set.output_dir / out.name)


# --------------------------------------------------------------------------- binning
def pixel_binning(fits_fluxmap: PathLike, ref_band: int | None = None, Dmin_bin: float = 4.0,
                  SNR: Any = None, redc_chi2_limit: float = 4.0, del_r: float = 2.0,
                  pixbin_map: Any = None, name_out_fits: PathLike | None = None) -> str:
    """Bin a flux map (:func:`pixedfit.binning.bin_pixels`); returns the output file name
    (default ``pixbin_<fluxmap>``)."""
    from .binning import bin_pixels, bin_with_map
    from .cubes import read_cube

    cube = read_cube(fits_fluxmap)
    if pixbin_map is not None:
        binned = bin_with_map(cube, pixbin_map)
    else:
        binned = bin_pixels(cube, ref_band=ref_band, min_bin_diameter=Dmin_bin,
                            snr_target=SNR, max_reduced_chi2=redc_chi2_limit, del_r=del_r)
    name = str(name_out_fits or f"pixbin_{Path(fits_fluxmap).name}")
    binned.write(name, overwrite=True)
    return name


def open_binmap_fits(fits_binmap: PathLike) -> dict[str, Any]:
    """Contents of a binned cube as a dict (bin_map, bin_flux, bin_flux_err [erg/s/cm²/Å],
    filters, z, nbins)."""
    from .cubes import BinnedCube

    b = BinnedCube.read(fits_binmap)
    return {"bin_map": b.bin_map, "bin_flux": b.bin_flux * b.unit,
            "bin_flux_err": b.bin_flux_err * b.unit, "filters": b.filters, "z": b.z,
            "nbins": b.nbins, "unit": b.unit}


# --------------------------------------------------------------------------- models
def save_models_rest_spec(imf_type: int = 1, sfh_form: int = 4, dust_law: int = 1,
                          duste_switch: int = 0, add_neb_emission: int = 1, add_agn: int = 0,
                          nmodels: int = 100000, nproc: int = 5, smooth_velocity: bool = True,
                          sigma_smooth: float = 0.0, smooth_lsf: bool = False,
                          lsf_wave: Any = None, lsf_sigma: Any = None,
                          params_range: Mapping[str, Sequence[float]] | None = None,
                          name_out: PathLike | None = None, seed: int = 0) -> str:
    """Generate a model library (:func:`pixedfit.library.generate_library`); returns its
    file name (default ``random_model_rest_spectra.hdf5``, pixedfit's layout)."""
    from .library import generate_library
    from .sps import SEDModel
    from .sps.grids import IMF_NAMES

    model = SEDModel(sfh_form=sfh_form, dust_law=dust_law, dust_emission=bool(duste_switch),
                     add_neb_emission=bool(add_neb_emission), add_agn=bool(add_agn),
                     smooth_velocity=smooth_velocity, sigma_smooth=sigma_smooth,
                     smooth_lsf=smooth_lsf, lsf_wave=lsf_wave, lsf_sigma=lsf_sigma)
    if IMF_NAMES.get(int(imf_type)) != model.grid.imf:
        warnings.warn(f"imf_type={imf_type} ignored: the SSP grid's IMF is {model.grid.imf}",
                      UserWarning, stacklevel=2)
    ranges = dict(params_range or {})
    free = set(model.free_params())
    ranges = {k: v for k, v in ranges.items() if k in free}
    name = str(name_out or "random_model_rest_spectra.hdf5")
    generate_library(model, int(nmodels), ranges=ranges, seed=seed, path=name)
    return name


# --------------------------------------------------------------------------- fitting
def _priors(params_ranges: Mapping[str, Sequence[float]] | None,
            params_priors: Any) -> Any:
    from .fitting import PriorSet, Uniform

    items = []
    for name, (lo, hi) in (params_ranges or {}).items():
        if name in ("z", "log_mass"):
            continue
        items.append(Uniform(name, float(lo), float(hi)))
    if params_priors:
        items.extend(params_priors if isinstance(params_priors, list | tuple)
                     else [params_priors])
    return PriorSet(items) if items else None


def _errors(likelihood: str, dof: float, perc_chi2: float) -> Any:
    """The error model of the original's fitting arguments."""
    from .fitting.options import ErrorModel

    return ErrorModel(likelihood=likelihood, dof=dof, perc_chi2=perc_chi2)


def _cosmology(cosmo: Any, H0: float, Om0: float) -> Any:
    """The cosmology of the original's arguments (code 0 / "flat_LCDM": flat ΛCDM)."""
    from .cosmology import CosmologyParams

    return CosmologyParams(None if cosmo in (0, "flat_LCDM") else cosmo, H0, Om0)


def singleSEDfit(  # noqa: N802 - the original name
        obs_flux: Any, obs_flux_err: Any, filters: Sequence[str],
                 models_spec: PathLike, params_ranges: Mapping | None = None,
                 params_priors: Any = None, fit_method: str = "mcmc",
                 gal_z: float | None = None, likelihood: str = "gauss", dof: float = 2.0,
                 perc_chi2: float = 90.0, cosmo: Any = 0, H0: float = 70.0,
                 Om0: float = 0.3, name_out_fits: PathLike | None = None,
                 **ignored: Any) -> str:
    """Fit one SED (:func:`pixedfit.fitting.fit_sed`); writes the original's FITS layout
    and returns its name (default ``<method>_fit.fits``)."""
    from .fitting import fit_sed

    res = fit_sed(obs_flux, obs_flux_err, filters, z=gal_z if gal_z and gal_z > 0 else None,
                  library=models_spec, priors=_priors(params_ranges, params_priors),
                  method=fit_method, errors=_errors(likelihood, dof, perc_chi2),
                  cosmology=_cosmology(cosmo, H0, Om0))
    name = str(name_out_fits or f"{fit_method}_fit.fits")
    res.write_pixedfit(name)
    return name


def SEDfit_from_binmap(  # noqa: N802 - the original name
        fits_binmap: PathLike, binid_range: Sequence[int] | None = None,
                       bin_ids: Sequence[int] | None = None, models_spec: PathLike | None = None,
                       params_ranges: Mapping | None = None, params_priors: Any = None,
                       fit_method: str = "mcmc", gal_z: float | None = None,
                       likelihood: str = "gauss", dof: float = 3.0, perc_chi2: float = 90.0,
                       cosmo: Any = 0, H0: float = 70.0, Om0: float = 0.3,
                       name_out_fits: Sequence[PathLike] | None = None,
                       **ignored: Any) -> list[str]:
    """Fit bins of a binned cube (:func:`pixedfit.fitting.fit_binmap`). ``bin_ids`` are
    0-based as in the original; outputs ``<method>_bin<id+1>.fits`` (original layout).
    Returns the file names."""
    from .cubes import BinnedCube
    from .fitting import fit_binmap

    cube = BinnedCube.read(fits_binmap)
    if bin_ids is not None:
        ids = [int(b) + 1 for b in bin_ids]
    elif binid_range is not None:
        ids = [b + 1 for b in range(int(binid_range[0]), int(binid_range[1]))]
    else:
        ids = list(range(1, cube.nbins + 1))
    if name_out_fits is not None and len(name_out_fits) != len(ids):
        raise ValueError("name_out_fits: one name per fitted bin")
    results = fit_binmap(cube, bin_ids=ids, library=models_spec,
                         priors=_priors(params_ranges, params_priors), method=fit_method,
                         z=gal_z if gal_z and gal_z > 0 else None,
                         errors=_errors(likelihood, dof, perc_chi2),
                         cosmology=_cosmology(cosmo, H0, Om0),
                         fit_leftover=True)  # the original fits every bin it is given
    names = []
    for i, b in enumerate(ids):
        name = str(name_out_fits[i]) if name_out_fits is not None else \
            f"{fit_method}_bin{b}.fits"
        results[b].write_pixedfit(name)
        names.append(name)
    return names


def get_bestfit_params(name_sampler_fits: PathLike) -> tuple[list[str], list[float]]:
    """Parameter names and their summary values (mean for RDSPS, median for MCMC)."""
    from .analysis.maps import get_bestfit_params as _best

    values = _best(name_sampler_fits)
    return list(values), list(values.values())


# --------------------------------------------------------------------------- maps
def maps_parameters(fits_binmap: PathLike, bin_ids: Sequence[int],
                    name_sampler_fits: Sequence[PathLike], fits_fluxmap: PathLike,
                    refband_SFR: int | None = None, refband_SM: int | None = None,
                    refband_Mdust: int | None = None,
                    name_out_fits: PathLike | None = None) -> str:
    """Property maps (:func:`pixedfit.analysis.maps.maps_parameters`) from fit files of the
    0-based ``bin_ids``; returns the output name (default ``fitres_<binmap>``)."""
    from .analysis.maps import maps_parameters as _maps
    from .fitting import FitResult

    if len(bin_ids) != len(name_sampler_fits):
        raise ValueError("bin_ids and name_sampler_fits must have the same length")
    results = {int(b) + 1: FitResult.read_any(n)
               for b, n in zip(bin_ids, name_sampler_fits, strict=True)}
    name = str(name_out_fits or f"fitres_{Path(fits_binmap).name}")
    _maps(fits_binmap, results, fits_fluxmap, ref_band_sfr=refband_SFR,
          ref_band_mass=refband_SM, ref_band_dust_mass=refband_Mdust, output=name)
    return name


# --------------------------------------------------------------------------- plots
def _samples(name: PathLike, models_spec: PathLike | None) -> Any:
    from astropy.io import fits
    from astropy.table import Table

    from .analysis.plots import PosteriorSamples, posterior_samples
    from .fitting import FitResult
    from .fitting.results import original_rdsps_weights

    with fits.open(name) as hdul:
        if "SAMPLERS" in hdul:
            t = Table(hdul["SAMPLERS"].data)
            hdr = hdul[0].header
            weights = None
            if str(hdr.get("fitmethod", "rdsps")) == "rdsps":
                # the original's RDSPS table: every library model and its posterior
                weights = original_rdsps_weights(t, float(hdr.get("perc_chi2", 100.0)))
            cols = [c for c in t.colnames if c not in ("id", "chi2", "lnprob")]
            vals = np.column_stack([np.asarray(t[c], float) for c in cols])
            if weights is None:
                weights = np.full(len(vals), 1.0 / len(vals))
            keep = weights > 0
            if "log_sfr" in cols:  # the original's plot_corner drops SFR <= 1e-29
                keep &= vals[:, cols.index("log_sfr")] > -29
            if not keep.any():
                raise ValueError(f"{name}: no sample of the SAMPLERS table has weight and "
                                 "log_sfr > -29")
            return PosteriorSamples(tuple(cols), vals[keep], weights[keep] / weights[keep].sum())
    if models_spec is None:
        raise ValueError(f"{name} has no SAMPLERS table: pass models_spec= (the library) to "
                         "rebuild the RDSPS posterior")
    return posterior_samples(FitResult.read_any(name), models_spec)


def plot_SED(  # noqa: N802 - the original name
        name_sampler_fits: PathLike, logscale_x: bool = False, logscale_y: bool = True,
             xrange: Any = None, yrange: Any = None, wunit: str = "micron",
             funit: str = "erg/s/cm2/A", decompose: int = 0,
             name_plot: PathLike | None = None, models_spec: PathLike | None = None,
             **ignored: Any) -> str:
    """Observed and best-fit SED with residuals (:func:`pixedfit.analysis.plots.plot_sed`);
    spectra and components need ``models_spec``. Returns the plot file name."""
    from .analysis.plots import plot_sed
    from .fitting import FitResult

    res = FitResult.read_any(name_sampler_fits)
    model = None
    if models_spec is not None:
        from .library import read_library

        model = read_library(models_spec, spectra=False).model()
    name = str(name_plot or f"sed_{Path(name_sampler_fits).stem}.png")
    fig = plot_sed(res, model=model, decompose=bool(decompose), wunit=wunit)
    ax = fig.axes[0]
    if xrange is not None:
        ax.set_xlim(*xrange)
    if yrange is not None:
        ax.set_ylim(*yrange)
    from .analysis.plots import save_figure

    save_figure(fig, name)
    return name


def plot_corner(name_sampler_fits: PathLike, params: Sequence[str] | None = None,
                label_params: Any = None, params_ranges: Any = None, factor: float = 1.0,
                nbins: int = 12, name_plot: PathLike | None = None,
                models_spec: PathLike | None = None, **ignored: Any) -> str:
    """Corner plot (:func:`pixedfit.analysis.plots.plot_corner`); returns the file name."""
    from .analysis.plots import plot_corner as _corner

    samples = _samples(name_sampler_fits, models_spec)
    if factor != 1.0:
        for k, n in enumerate(samples.names):
            if n in ("log_mass", "log_sfr", "log_dustmass"):
                samples.values[:, k] += np.log10(factor)
    name = str(name_plot or f"corner_{Path(name_sampler_fits).stem}.png")
    _corner(samples, params=params, bins=nbins, path=name)
    return name


def plot_sfh_mcmc(name_sampler_fits: PathLike, nchains: int = 200, del_t: float = 0.05,
                  lbacktime_max: float | None = None, name_plot: PathLike | None = None,
                  models_spec: PathLike | None = None, **ignored: Any
                  ) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    """SFH percentiles; returns (look-back time [Gyr], p16, p50, p84 [M☉/yr]) and saves the
    plot (default ``sfh_<fits>.png``). Works for MCMC and RDSPS results."""
    from astropy.io import fits

    from .analysis.plots import plot_sfh, sfh_percentiles

    samples = _samples(name_sampler_fits, models_spec)
    sfh_form = int(fits.getheader(name_sampler_fits).get("SFH_FORM", -1))
    if sfh_form < 0 and models_spec is not None:
        from .library import read_library

        lib = read_library(models_spec, spectra=False)
        # ours: the model configuration; the original's layout: the file's /mod attribute
        form = lib.config.get("sfh_form")
        form = lib.original_attrs.get("sfh_form") if form is None else form
        sfh_form = -1 if form is None else int(form)
    if sfh_form < 0:
        raise ValueError("unknown SFH form (no SFH_FORM in the header and none in models_spec)")
    tmax = lbacktime_max
    if tmax is None:
        tmax = float(np.max(10 ** samples.column("log_age")))
    lbt = np.arange(0.0, tmax + del_t, del_t)
    out = sfh_percentiles(samples, sfh_form, nchains, lbt=lbt)
    plot_sfh(samples, sfh_form, nchains,
             path=name_plot or f"sfh_{Path(name_sampler_fits).stem}.png")
    return out
