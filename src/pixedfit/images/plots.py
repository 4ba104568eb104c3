"""Quick-look plots of image processing: stamps, segmentation maps, the galaxy region and
flux maps (log scale, origin lower left; pixel (y, x) at row y, column x).

Every function returns the matplotlib figure and saves it atomically to ``path`` when one
is given (format from the extension).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._paths import atomic_path
from ..cubes import FluxCube

if TYPE_CHECKING:  # matplotlib is imported when a plot is made
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PathLike = str | os.PathLike[str]

__all__ = ["plot_flux_maps", "plot_region", "plot_segmentation", "plot_stamps"]


def _grid_axes(n: int, ncols: int = 4) -> tuple[Figure, NDArray[np.object_]]:
    import matplotlib.pyplot as plt

    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3 * ncols, 3 * nrows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, axes.ravel()


def _show(ax: Axes, img: ArrayLike, title: str, cmap: str = "viridis",
          log: bool = True) -> None:
    data = np.asarray(img, dtype=float)
    if log:
        finite = data[np.isfinite(data) & (data > 0)]
        vmin, vmax = (np.percentile(finite, [5, 99.5]) if finite.size else (None, None))
        from matplotlib.colors import LogNorm

        norm = LogNorm(vmin, vmax) if finite.size else None
        ax.imshow(np.where(data > 0, data, np.nan), origin="lower", cmap=cmap, norm=norm)
    else:
        ax.imshow(data, origin="lower", cmap=cmap, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_stamps(images: Sequence[ArrayLike], titles: Sequence[str],
                path: PathLike | None = None) -> Figure:
    """Grid of stamps (log scale); saved to ``path`` if given. Returns the figure.

    Parameters
    ----------
    images : sequence of array_like, shape (ny, nx)
        The stamps.
    titles : sequence of str
        One title per stamp.
    path : path-like, optional
        Image file to write (format from the extension).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = _grid_axes(len(images))
    for ax, img, t in zip(axes, images, titles, strict=True):
        _show(ax, img, t)
    return _finish(fig, path)


def plot_segmentation(segms: Sequence[ArrayLike], titles: Sequence[str],
                      path: PathLike | None = None) -> Figure:
    """Grid of segmentation maps. Returns the figure.

    Parameters
    ----------
    segms : sequence of array_like, shape (ny, nx)
        Segmentation maps (0: background, k: object k).
    titles : sequence of str
        One title per map.
    path : path-like, optional
        Image file to write (format from the extension).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = _grid_axes(len(segms))
    for ax, seg, t in zip(axes, segms, titles, strict=True):
        _show(ax, seg, t, cmap="tab20", log=False)
    return _finish(fig, path)


def plot_region(image: ArrayLike, region: ArrayLike, title: str = "region",
                path: PathLike | None = None) -> Figure:
    """An image with the galaxy region outlined. Returns the figure.

    Parameters
    ----------
    image : array_like, shape (ny, nx)
        The image (log scale).
    region : array_like of bool, shape (ny, nx)
        The region, outlined in white.
    title : str
        Title of the panel.
    path : path-like, optional
        Image file to write (format from the extension).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = _grid_axes(1)
    _show(axes[0], image, title)
    axes[0].contour(np.asarray(region, dtype=float), levels=[0.5], colors="w", linewidths=1)
    return _finish(fig, path)


def plot_flux_maps(cube: FluxCube, path: PathLike | None = None) -> Figure:
    """Flux maps of every band of a cube (log scale). Returns the figure.

    Parameters
    ----------
    cube : FluxCube
        The flux maps (band, y, x).
    path : path-like, optional
        Image file to write (format from the extension).

    Returns
    -------
    matplotlib.figure.Figure
    """
    return plot_stamps(list(cube.flux), cube.filters, path)


def _finish(fig: Figure, path: PathLike | None) -> Figure:
    fig.tight_layout()
    if path is not None:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=str(path).rsplit(".", 1)[-1], dpi=100)
    return fig
