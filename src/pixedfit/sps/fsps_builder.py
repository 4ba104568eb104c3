"""Build an SSP grid in pixedfit's format from python-fsps (optional).

Needs ``python-fsps`` (``pip install fsps``) and its data (``$SPS_HOME``). Every IMF that
FSPS offers can be used (``imf_type`` 0 Salpeter, 1 Chabrier, 2 Kroupa, 3 van Dokkum 2008,
4 Davé 2008, 5 tabulated). The grid holds, for each of FSPS's metallicities (``zmet``) and
SSP ages:

* the SSP spectra (L☉ Å⁻¹ per M☉ formed, ``get_spectrum(peraa=True)``);
* the mass in living stars and the mass in remnants (FSPS's ``stellar_mass`` with and
  without ``add_stellar_remnants``);
* ``zsun`` = the solar metallicity of FSPS's isochrone set (MIST 0.0142, Padova 0.019,
  PARSEC 0.01524, BaSTI/Geneva 0.020), so that ``logzsol`` means what it means in FSPS;
* optionally FSPS's nebular emission (Byler et al. 2017), as the difference of the spectra
  with and without it for the young SSPs, per M☉ formed at each SSP age, for log U = −4 … −1
  (step 0.5; gas metallicity = stellar). Lines are kept inside that spectrum on FSPS's grid
  (``line_lum`` is empty);
* the Draine & Li (2007) templates of the BC03 grid (same DL07 models FSPS uses).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .._paths import cache_dir
from .bc03 import load_bc03
from .grids import IMF_NAMES, NebularGrid, SSPGrid, age_edges, write_grid

__all__ = ["build_fsps_grid", "fsps_available"]

_ZSUN = {"mist": 0.0142, "padova": 0.019, "parsec": 0.01524, "basti": 0.020, "geneva": 0.020,
         "prsc": 0.01524, "pdva": 0.019}


def fsps_available() -> tuple[bool, str]:
    """Whether python-fsps can be used here, and why not."""
    if not os.environ.get("SPS_HOME"):
        return False, "SPS_HOME is not set (python-fsps needs its data folder)"
    try:
        import fsps  # noqa: F401
    except Exception as exc:  # ImportError, or fsps failing to find its data
        return False, f"python-fsps cannot be imported ({exc})"
    return True, ""


def build_fsps_grid(imf_type: int = 1, nebular: bool = True, max_neb_age_gyr: float = 0.03,
                    path: str | os.PathLike[str] | None = None,
                    dust_emission_from_bc03: bool = True) -> Path:
    """Build an SSP grid from python-fsps and write it (atomically).

    Parameters
    ----------
    imf_type : int
        FSPS IMF code (0–5).
    nebular : bool
        Also tabulate FSPS's nebular emission for ages below ``max_neb_age_gyr``.
    max_neb_age_gyr : float
        Oldest SSP age (Gyr) with nebular emission.
    path : path-like, optional
        Output file (default: ``<cache>/grids/fsps_<isochrones>_<imf>_v1.h5``).
    dust_emission_from_bc03 : bool
        Copy the DL07 templates of the BC03 grid into this grid.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    RuntimeError
        python-fsps or its data is unavailable (the reason is given).
    """
    ok, why = fsps_available()
    if not ok:
        raise RuntimeError(f"cannot build an FSPS grid: {why}")
    import fsps

    if imf_type not in IMF_NAMES:
        raise ValueError(f"imf_type must be one of {sorted(IMF_NAMES)}, got {imf_type}")
    sp = fsps.StellarPopulation(zcontinuous=0, imf_type=imf_type, sfh=0, add_neb_emission=False,
                                add_stellar_remnants=True, vactoair_flag=False)
    iso = str(sp.libraries[0]).lower().replace("b'", "").replace("'", "")
    zsun = next((v for k, v in _ZSUN.items() if iso.startswith(k)), 0.019)
    zmet = np.asarray(sp.zlegend, dtype=np.float64)
    age = 10 ** (np.asarray(sp.ssp_ages, dtype=np.float64) - 9.0)
    specs, living, surv = [], [], []
    wave: Any = None  # sp.get_spectrum's wavelengths (python-fsps is untyped): set below
    for iz in range(zmet.size):
        sp.params["zmet"] = iz + 1
        sp.params["add_stellar_remnants"] = True
        wave, spec = sp.get_spectrum(peraa=True)
        surv.append(np.asarray(sp.stellar_mass, dtype=np.float64))
        sp.params["add_stellar_remnants"] = False
        living.append(np.asarray(sp.stellar_mass, dtype=np.float64))
        specs.append(np.asarray(spec, dtype=np.float32))
    living_a, surv_a = np.array(living), np.array(surv)
    grid = SSPGrid(
        wave=np.asarray(wave, dtype=np.float64), age=age, zmet=zmet, ssp=np.array(specs),
        mass_living=living_a, mass_remnant=np.clip(surv_a - living_a, 0.0, None), zsun=zsun,
        imf=IMF_NAMES[imf_type],
        source=f"python-fsps {getattr(fsps, '__version__', '?')}, isochrones {iso}, "
               f"libraries {sp.libraries}",
        wave_medium="vacuum",  # FSPS works in vacuum (vactoair_flag=False above)
    )
    if nebular:
        logu = np.arange(-4.0, -0.99, 0.5)
        young = np.nonzero(age <= max_neb_age_gyr)[0]
        edges = age_edges(age)[: young[-1] + 2]
        cont = np.zeros((logu.size, zmet.size, young.size, wave.size), dtype=np.float32)
        for iu, u in enumerate(logu):
            for iz in range(zmet.size):
                sp.params["zmet"] = iz + 1
                sp.params["gas_logz"] = np.log10(zmet[iz] / zsun)
                sp.params["gas_logu"] = u
                sp.params["add_neb_emission"] = False
                _, s0 = sp.get_spectrum(peraa=True)
                sp.params["add_neb_emission"] = True
                _, s1 = sp.get_spectrum(peraa=True)
                cont[iu, iz] = np.clip(s1 - s0, 0.0, None)[young]
        sp.params["add_neb_emission"] = False
        grid.nebular = NebularGrid(
            logu=logu, age_edges=edges, line_wave=np.zeros(0), line_name=[],
            line_lum=np.zeros((logu.size, zmet.size, young.size, 0)), cont=cont,
            source="FSPS nebular emission (Byler et al. 2017), lines included in cont",
        )
    if dust_emission_from_bc03:
        grid.dust_emission = load_bc03().dust_emission
    if path is None:
        path = cache_dir() / "grids" / f"fsps_{iso}_{IMF_NAMES[imf_type]}_v1.h5"
    return write_grid(grid, path)
