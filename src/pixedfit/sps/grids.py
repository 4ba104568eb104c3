"""The SSP-grid file format of pixedfit (HDF5), and its reader and writer.

Every model pixedfit computes starts from one of these files: a grid of simple stellar
population (SSP) spectra with the nebular, dust-emission and (optionally) AGN templates that
go with it. Files are built once by an importer (:mod:`pixedfit.sps.bc03`,
:mod:`pixedfit.sps.fsps_builder`) into the user cache and reused.

Layout (schema version 1)
-------------------------
Root attributes:

``format``          ``"pixedfit-ssp-grid"``
``schema_version``  1
``source``          free text: where the spectra come from (library, file, version)
``imf``             IMF label (e.g. ``"kroupa01"``)
``zsun``            the solar metallicity of this grid (``logzsol = log10(Z / zsun)``)
``wave_unit``       ``"Angstrom"``; ``spectra_unit`` ``"Lsun/Angstrom per Msun formed"``
``wave_medium``     ``"vacuum"`` or ``"air"``: the wavelength scale of ``wave`` and of the
                    nebular ``line_wave`` (air above 2000 Å, vacuum below, the convention
                    of :mod:`pixedfit.lines`). Files without it are read as vacuum. Models
                    always work in vacuum (the scale of filter curves and of the spectra
                    pixedfit fits): :meth:`SSPGrid.in_vacuum` converts an air grid.

Datasets:

``wave``            (nwave,) float64, Å, strictly increasing
``age``             (nage,) float64, SSP ages in Gyr, increasing (first may be 0)
``zmet``            (nz,) float64, absolute metallicity Z, increasing
``ssp``             (nz, nage, nwave) float32 (the SSP spectra are stored in single
                    precision: 7 significant digits, far below model uncertainties),
                    L☉ Å⁻¹ per M☉ formed
``mass_living``     (nz, nage) float64, mass in living stars per M☉ formed
``mass_remnant``    (nz, nage) float64, mass in remnants (WD, NS, BH) per M☉ formed

Group ``nebular`` (optional; attribute ``source``):

``logu``            (nu,) ionisation parameters log U, increasing
``age_edges``       (nage_neb + 1,) Gyr: the nebular grid refers to stars formed with a
                    constant rate inside each of these age bins
``line_wave``       (nline,) Å; ``line_name`` (nline,) str
``line_lum``        (nu, nz, nage_neb, nline) float64, L☉ per M☉ formed in the bin
``cont``            (nu, nz, nage_neb, nwave) float32, L☉ Å⁻¹ per M☉ formed in the bin,
                    on the SSP ``wave`` grid

Group ``dust_emission`` (optional; Draine & Li 2007):

``qpah``            (nq,) PAH mass fraction in per cent, increasing
``umin``            (numin,) minimum radiation-field intensity U_min, increasing
``wave``            (nwd,) Å
``delta``           (nq, numin, nwd) emission for a δ-function U = U_min,
                    erg s⁻¹ Å⁻¹ per H nucleon
``powerlaw``        (nq, numin, nwd) same for dU/dM ∝ U⁻² between U_min and 10⁶
``dust_to_h``       (nq,) dust-to-hydrogen mass ratio of each q_PAH model

Group ``agn`` (optional; torus templates):

``tau``             (ntau,) torus optical depth τ_V, increasing
``wave``            (nwa,) Å
``fnu``             (ntau, nwa) template f_ν, arbitrary normalisation

Readers check ``format`` and ``schema_version`` and every shape.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import KW_ONLY, dataclass, field, replace
from pathlib import Path

import h5py
import numpy as np
from numpy.typing import NDArray

from .._paths import hdf5_atomic, open_hdf5
from ..lines import air_per_vacuum_step, air_to_vacuum

__all__ = [
    "IMF_NAMES",
    "SCHEMA_VERSION",
    "WAVE_MEDIA",
    "AGNTemplates",
    "DustEmissionGrid",
    "NebularGrid",
    "SSPGrid",
    "age_edges",
    "grid_digest",
    "read_grid",
    "write_grid",
]

#: FSPS ``imf_type`` codes and the IMF names grids record (:attr:`SSPGrid.imf`).
IMF_NAMES = {0: "salpeter55", 1: "chabrier03", 2: "kroupa01", 3: "vandokkum08",
              4: "dave08", 5: "tabulated"}


def age_edges(age: NDArray[np.float64]) -> NDArray[np.float64]:
    """Edges (Gyr, ``age.size + 1``) of the SSP age bins: 0, the geometric midpoints
    between ages (half the next age after an age of 0), and the last age times half its
    logarithmic step."""
    edges = np.empty(age.size + 1)
    edges[0] = 0.0
    for i in range(1, age.size):
        a, b = age[i - 1], age[i]
        edges[i] = 0.5 * b if a <= 0 else np.sqrt(a * b)
    edges[-1] = age[-1] * (np.sqrt(age[-1] / age[-2]) if age.size > 1 and age[-2] > 0 else 1.1)
    if edges[1] <= 0:
        raise ValueError("SSP grid: ages must be distinct")
    return edges

SCHEMA_VERSION = 1
FORMAT_NAME = "pixedfit-ssp-grid"
#: The wavelength scales a grid may declare (root attribute ``wave_medium``).
WAVE_MEDIA = ("vacuum", "air")


@dataclass
class NebularGrid:
    """Nebular lines and continuum for young populations (see module docstring)."""

    logu: NDArray[np.float64]
    age_edges: NDArray[np.float64]
    line_wave: NDArray[np.float64]
    line_name: list[str]
    line_lum: NDArray[np.float64]
    cont: NDArray[np.float32]
    source: str = ""


@dataclass
class DustEmissionGrid:
    """Draine & Li (2007) dust-emission templates per H nucleon (see module docstring)."""

    qpah: NDArray[np.float64]
    umin: NDArray[np.float64]
    wave: NDArray[np.float64]
    delta: NDArray[np.float64]
    powerlaw: NDArray[np.float64]
    dust_to_h: NDArray[np.float64]
    source: str = ""


@dataclass
class AGNTemplates:
    """AGN torus templates f_ν(λ) for a set of optical depths τ_V."""

    tau: NDArray[np.float64]
    wave: NDArray[np.float64]
    fnu: NDArray[np.float64]
    source: str = ""


@dataclass
class SSPGrid:
    """An SSP grid with its companion templates (see module docstring for units)."""

    wave: NDArray[np.float64]
    age: NDArray[np.float64]
    zmet: NDArray[np.float64]
    ssp: NDArray[np.float32]
    mass_living: NDArray[np.float64]
    mass_remnant: NDArray[np.float64]
    zsun: float
    imf: str
    source: str
    _: KW_ONLY
    nebular: NebularGrid | None = None
    dust_emission: DustEmissionGrid | None = None
    agn: AGNTemplates | None = None
    extra_attrs: dict = field(default_factory=dict)
    wave_medium: str = "vacuum"

    @property
    def logzsol(self) -> NDArray[np.float64]:
        """log10(Z / zsun) of the grid metallicities."""
        return np.log10(self.zmet / self.zsun)

    def in_vacuum(self) -> SSPGrid:
        """This grid on vacuum wavelengths: itself if it is already, else a converted copy.

        ``wave`` and the nebular ``line_wave`` go through :func:`pixedfit.lines.air_to_vacuum`
        (air above 2000 Å); the spectra per Å (SSP and nebular continuum) are multiplied by
        ``dλ_air/dλ_vac`` so that every flux integral is unchanged. Line luminosities, masses
        and the dust-emission and AGN templates (computed, vacuum, infrared) are kept.
        """
        if self.wave_medium == "vacuum":
            return self
        self.validate()
        wave = np.asarray(air_to_vacuum(self.wave))
        jac = np.asarray(air_per_vacuum_step(wave))
        nebular = self.nebular
        if nebular is not None:
            nebular = replace(
                nebular, line_wave=np.asarray(air_to_vacuum(nebular.line_wave)),
                cont=(nebular.cont * jac).astype(np.float32))
        return replace(
            self, wave=wave, ssp=(self.ssp * jac).astype(np.float32), nebular=nebular,
            wave_medium="vacuum",
            source=f"{self.source}; air wavelengths converted to vacuum (Morton 2000)")

    def validate(self) -> None:
        """Check shapes and values; raise ValueError naming the problem."""
        _check(self.wave_medium in WAVE_MEDIA,
               f"wave_medium must be one of {WAVE_MEDIA}, got {self.wave_medium!r}")
        nz, nage, nwave = self.zmet.size, self.age.size, self.wave.size
        _check(self.wave.ndim == 1 and nwave >= 2, "wave must be 1-D with >= 2 points")
        _check(bool(np.all(np.diff(self.wave) > 0)), "wave must be strictly increasing")
        _check(bool(np.all(np.diff(self.age) > 0)) and self.age[0] >= 0,
               "age must be >= 0 and strictly increasing")
        _check(bool(np.all(np.diff(self.zmet) > 0)) and self.zmet[0] > 0,
               "zmet must be > 0 and strictly increasing")
        _check(self.ssp.shape == (nz, nage, nwave),
               f"ssp has shape {self.ssp.shape}, expected {(nz, nage, nwave)}")
        for name in ("mass_living", "mass_remnant"):
            arr = getattr(self, name)
            _check(arr.shape == (nz, nage), f"{name} has shape {arr.shape}, expected {(nz, nage)}")
            _check(bool(np.all(np.isfinite(arr)) and np.all(arr >= 0)), f"{name}: bad values")
        _check(bool(np.all(np.isfinite(self.ssp))), "ssp contains NaN or infinite values")
        _check(np.isfinite(self.zsun) and self.zsun > 0, "zsun must be > 0")
        if self.nebular is not None:
            n = self.nebular
            nu, nneb, nline = n.logu.size, n.age_edges.size - 1, n.line_wave.size
            _check(n.line_lum.shape == (nu, nz, nneb, nline),
                   f"nebular/line_lum has shape {n.line_lum.shape}")
            _check(n.cont.shape == (nu, nz, nneb, nwave), f"nebular/cont has shape {n.cont.shape}")
            _check(len(n.line_name) == nline, "nebular/line_name length differs from line_wave")
            _check(bool(np.all(np.diff(n.logu) > 0)), "nebular/logu must increase")
            _check(bool(np.all(np.diff(n.age_edges) > 0)), "nebular/age_edges must increase")
        if self.dust_emission is not None:
            d = self.dust_emission
            shape = (d.qpah.size, d.umin.size, d.wave.size)
            _check(d.delta.shape == shape and d.powerlaw.shape == shape,
                   "dust_emission templates must have shape (nq, numin, nwave)")
            _check(d.dust_to_h.shape == (d.qpah.size,), "dust_emission/dust_to_h shape")
            _check(bool(np.all(np.diff(d.qpah) > 0) and np.all(np.diff(d.umin) > 0)),
                   "dust_emission qpah and umin must increase")
        if self.agn is not None:
            a = self.agn
            _check(a.fnu.shape == (a.tau.size, a.wave.size), "agn/fnu must be (ntau, nwave)")


def grid_digest(grid: SSPGrid) -> str:
    """SHA-256 of the content of an SSP grid (every array and the source, IMF, Z☉ and
    wavelength scale): equal for the same grid wherever it was read from, different after
    any change of a value (e.g. the same grid on the air and on the vacuum scale). Takes
    ≈ 0.1 s for the BC03 grid, once per grid object (grids are not changed after they are
    built or read); result stores and model libraries record it."""
    memo = _DIGESTS.get(id(grid))
    if memo is not None and memo[0] is grid:
        return memo[1]
    h = hashlib.sha256()
    meta = [grid.source, grid.imf, repr(float(grid.zsun)), grid.wave_medium]

    def put(name: str, values: object) -> None:
        arr = np.ascontiguousarray(values)
        h.update(f"{name}/{arr.shape}/{arr.dtype.str}".encode())
        h.update(arr.reshape(-1).data.cast("B"))

    for name in ("wave", "age", "zmet", "ssp", "mass_living", "mass_remnant"):
        put(name, getattr(grid, name))
    parts: list[tuple[str, object]] = [("nebular", grid.nebular),
                                       ("dust_emission", grid.dust_emission),
                                       ("agn", grid.agn)]
    for group, value in parts:
        if value is None:
            continue
        for key, item in vars(value).items():
            if isinstance(item, str):
                meta.append(f"{group}/{key}={item}")
            elif isinstance(item, list):
                meta.append(f"{group}/{key}={'|'.join(map(str, item))}")
            else:
                put(f"{group}/{key}", item)
    h.update("\n".join(meta).encode())
    if len(_DIGESTS) >= 4:
        _DIGESTS.pop(next(iter(_DIGESTS)))
    _DIGESTS[id(grid)] = (grid, h.hexdigest())
    return _DIGESTS[id(grid)][1]


#: Digests already computed, by grid object (the object is kept, so its id stays its own).
_DIGESTS: dict[int, tuple[SSPGrid, str]] = {}


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(f"SSP grid: {message}")


def write_grid(grid: SSPGrid, path: str | os.PathLike[str]) -> Path:
    """Write ``grid`` to an HDF5 file atomically: built in memory, then written to a
    temporary file and renamed (a full disk gives a one-line error and no file).

    Parameters
    ----------
    grid : SSPGrid
        The grid (validated first).
    path : path-like
        The HDF5 file.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    grid.validate()
    path = Path(path)
    with hdf5_atomic(path) as f:
        f.attrs["format"] = FORMAT_NAME
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["source"] = grid.source
        f.attrs["imf"] = grid.imf
        f.attrs["zsun"] = float(grid.zsun)
        f.attrs["wave_unit"] = "Angstrom"
        f.attrs["wave_medium"] = grid.wave_medium
        f.attrs["age_unit"] = "Gyr"
        f.attrs["spectra_unit"] = "Lsun/Angstrom per Msun formed"
        for key, val in grid.extra_attrs.items():
            f.attrs[key] = val
        f["wave"] = grid.wave
        f["age"] = grid.age
        f["zmet"] = grid.zmet
        f.create_dataset("ssp", data=grid.ssp.astype(np.float32), chunks=(1, 1, grid.wave.size))
        f["mass_living"] = grid.mass_living
        f["mass_remnant"] = grid.mass_remnant
        if grid.nebular is not None:
            n = grid.nebular
            g = f.create_group("nebular")
            g.attrs["source"] = n.source
            g["logu"] = n.logu
            g["age_edges"] = n.age_edges
            g["line_wave"] = n.line_wave
            g["line_name"] = np.array(n.line_name, dtype=h5py.string_dtype())
            g["line_lum"] = n.line_lum
            g.create_dataset("cont", data=n.cont.astype(np.float32),
                             chunks=(1, 1, 1, grid.wave.size))
        if grid.dust_emission is not None:
            d = grid.dust_emission
            g = f.create_group("dust_emission")
            g.attrs["source"] = d.source
            for key in ("qpah", "umin", "wave", "delta", "powerlaw", "dust_to_h"):
                g[key] = getattr(d, key)
        if grid.agn is not None:
            a = grid.agn
            g = f.create_group("agn")
            g.attrs["source"] = a.source
            for key in ("tau", "wave", "fnu"):
                g[key] = getattr(a, key)
    return path


def _attr_str(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_grid(path: str | os.PathLike[str]) -> SSPGrid:
    """Read an SSP-grid file written by :func:`write_grid`.

    Raises
    ------
    FileNotFoundError
        Missing file.
    ValueError
        Not a pixedfit SSP grid, unsupported schema version, truncated or inconsistent file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SSP grid file not found: {path}")
    with open_hdf5(path) as f:
        if _attr_str(f.attrs.get("format", "")) != FORMAT_NAME:
            raise ValueError(f"{path}: not a pixedfit SSP grid (format attribute missing)")
        version = int(f.attrs.get("schema_version", -1))
        if version != SCHEMA_VERSION:
            raise ValueError(
                f"{path}: SSP-grid schema version {version} is not supported "
                f"(this pixedfit reads version {SCHEMA_VERSION}); rebuild the grid"
            )
        try:
            known = {"format", "schema_version", "source", "imf", "zsun", "wave_unit",
                     "age_unit", "spectra_unit", "wave_medium"}
            grid = SSPGrid(
                wave=f["wave"][...].astype(np.float64),
                age=f["age"][...].astype(np.float64),
                zmet=f["zmet"][...].astype(np.float64),
                ssp=f["ssp"][...].astype(np.float32),
                mass_living=f["mass_living"][...].astype(np.float64),
                mass_remnant=f["mass_remnant"][...].astype(np.float64),
                zsun=float(f.attrs["zsun"]),
                imf=_attr_str(f.attrs["imf"]),
                source=_attr_str(f.attrs["source"]),
                extra_attrs={k: v for k, v in f.attrs.items() if k not in known},
                wave_medium=_attr_str(f.attrs.get("wave_medium", "vacuum")),
            )
            if "nebular" in f:
                g = f["nebular"]
                grid.nebular = NebularGrid(
                    logu=g["logu"][...], age_edges=g["age_edges"][...],
                    line_wave=g["line_wave"][...],
                    line_name=[_attr_str(s) for s in g["line_name"][...]],
                    line_lum=g["line_lum"][...], cont=g["cont"][...].astype(np.float32),
                    source=_attr_str(g.attrs.get("source", "")),
                )
            if "dust_emission" in f:
                g = f["dust_emission"]
                grid.dust_emission = DustEmissionGrid(
                    **{k: g[k][...] for k in ("qpah", "umin", "wave", "delta", "powerlaw",
                                                "dust_to_h")},
                    source=_attr_str(g.attrs.get("source", "")),
                )
            if "agn" in f:
                g = f["agn"]
                grid.agn = AGNTemplates(
                    tau=g["tau"][...], wave=g["wave"][...], fnu=g["fnu"][...],
                    source=_attr_str(g.attrs.get("source", "")),
                )
        except (KeyError, OSError) as exc:
            raise ValueError(f"{path}: truncated or incomplete SSP grid ({exc})") from exc
    grid.validate()
    return grid
