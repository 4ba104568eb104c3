"""Plots of a :class:`~pixedfit.binning.BinnedCube`: bin map, bin SEDs, S/N against radius.

Every function draws on ``ax`` (a new figure when ``None``) and returns the Axes; nothing
is shown or saved and the matplotlib backend is never changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from ..cubes import BinnedCube
from ..filters import cwave_filters

__all__ = ["plot_bin_map", "plot_bin_seds", "plot_bin_snr_radius"]


def _axes(ax: Any) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6, 5))[1]


def plot_bin_map(binned: BinnedCube, ax: Any = None, spectra: bool = False,
                 cmap: str = "nipy_spectral_r") -> Any:
    """Image of the bin map (bin ids; pixels outside bins blank).

    Parameters
    ----------
    binned : BinnedCube
    ax : matplotlib Axes, optional
    spectra : bool
        Show only bins with spectra, over the IFS region in grey.
    cmap : str
        Colour map (one colour per bin).
    """
    import matplotlib.pyplot as plt

    ax = _axes(ax)
    shown = binned.bin_map.astype(float)  # a copy: the BinnedCube is never modified
    if spectra:
        if not binned.specphot:
            raise ValueError("spectra=True needs a spectrophotometric BinnedCube")
        keep = np.zeros(binned.nbins + 1, bool)
        keep[1:] = binned.bin_has_spec
        shown[~keep[binned.bin_map]] = np.nan
        if binned.spec_region is not None:
            ax.imshow(np.where(binned.spec_region, 1.0, np.nan), origin="lower", cmap="Greys",
                      vmin=0, vmax=2)
    shown[binned.bin_map == 0] = np.nan
    colours = plt.get_cmap(cmap, max(binned.nbins, 1))
    im = ax.imshow(shown, origin="lower", cmap=colours, vmin=0.5,
                   vmax=max(binned.nbins, 1) + 0.5, interpolation="nearest")
    ax.figure.colorbar(im, ax=ax, label="bin id")
    ax.set_xlabel("x [pixel]")
    ax.set_ylabel("y [pixel]")
    ax.set_title(f"{binned.nbins} bins" + (" with spectra" if spectra else ""))
    return ax


def plot_bin_seds(binned: BinnedCube, bin_ids: Sequence[int], ax: Any = None,
                  spectra: bool = True) -> Any:
    """SEDs (f_λ in erg s⁻¹ cm⁻² Å⁻¹ against wavelength in Å) of chosen bins.

    Parameters
    ----------
    binned : BinnedCube
    bin_ids : sequence of int
        Bin ids (1-based, as in ``bin_map``).
    ax : matplotlib Axes, optional
    spectra : bool
        Also draw the binned spectrum of bins that have one.
    """
    ids = [int(k) for k in bin_ids]
    if not ids or any(k < 1 or k > binned.nbins for k in ids):
        raise ValueError(f"bin_ids: ids must be within 1..{binned.nbins}, got {list(bin_ids)}")
    try:
        wave = np.asarray(cwave_filters(binned.filters), float)
        xlabel = "wavelength [Å]"
    except ValueError:  # filters unknown to the library: plot against band index
        wave = np.arange(binned.nbands, dtype=float)
        xlabel = "band index"
    ax = _axes(ax)
    for k in ids:
        f = binned.bin_flux[k - 1] * binned.unit
        e = binned.bin_flux_err[k - 1] * binned.unit
        label = f"bin {k}" + (" (leftover)" if binned.leftover[k - 1] else "")
        ax.errorbar(wave, f, yerr=e, fmt="o", ms=4, capsize=2, label=label)
        if spectra and binned.specphot and binned.bin_has_spec[k - 1]:
            ax.plot(binned.wave, cast("NDArray", binned.bin_spec_flux)[k - 1] * binned.unit,
                    lw=0.7,
                    color=ax.lines[-1].get_color() if ax.lines else None)
    if np.all(binned.bin_flux[np.array(ids) - 1] > 0):
        ax.set_yscale("log")
    if xlabel.startswith("wave"):
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("f$_\\lambda$ [erg s$^{-1}$ cm$^{-2}$ Å$^{-1}$]")
    ax.legend(fontsize="small")
    return ax


def plot_bin_snr_radius(binned: BinnedCube, ax: Any = None,
                        center: tuple[float, float] | None = None,
                        bands: Sequence[int] | None = None) -> Any:
    """S/N of every bin in each band against the distance of its centroid from ``center``.

    The distance is in kpc when the cube has z and a pixel scale, else in pixels; the
    leftover bin is drawn with open symbols and the per-band S/N targets as dotted lines.

    Parameters
    ----------
    binned : BinnedCube
        The binning result.
    ax : matplotlib Axes, optional
        Axes to draw on (default: a new figure's).
    center : (y, x), optional
        Centre in pixels (default: the seed of bin 1, see
        :meth:`~pixedfit.cubes.BinnedCube.bin_radius`).
    bands : sequence of int, optional
        Band indices to draw (default all).

    Returns
    -------
    matplotlib Axes
    """
    ax = _axes(ax)
    r = binned.bin_radius(center)
    try:
        r = r * binned.kpc_per_pixel()
        xlabel = "radius [kpc]"
    except ValueError:
        xlabel = "radius [pixel]"
    snr = binned.bin_snr
    which = range(binned.nbands) if bands is None else [int(b) for b in bands]
    regular = ~binned.leftover
    targets = binned.params.get("snr_target")
    for b in which:
        pts = ax.plot(r[regular], snr[regular, b], "o", ms=3, label=binned.filters[b])
        colour = pts[0].get_color()
        if binned.leftover.any():
            ax.plot(r[~regular], snr[~regular, b], "o", ms=5, mfc="none", color=colour)
        if targets is not None and np.ndim(targets) == 1 and targets[b] > 0:
            ax.axhline(targets[b], ls=":", lw=0.8, color=colour)
    if np.all(snr[:, list(which)] > 0):
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("S/N of the bin")
    ax.legend(fontsize="x-small", ncol=2)
    return ax
