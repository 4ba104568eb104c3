"""AGN dusty-torus templates (Nenkova et al. 2008 CLUMPY models, FSPS's scheme).

FSPS adds a torus of luminosity ``fagn × L_bol,stars`` (the intrinsic stellar bolometric
luminosity) with the template interpolated linearly in the torus optical depth τ_V
(``agn_tau``). The template file is FSPS's ``dust/Nenkova08_y010_torusg_n10_q2.0.dat``: it is
taken from ``$SPS_HOME/dust/`` or from an explicit path; the torus is not attenuated by the
galaxy's dust.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from .grids import AGNTemplates
from .nebular import trapezoid_weights

__all__ = ["AGN_TEMPLATE_NAME", "find_agn_templates", "read_agn_templates", "resample_agn"]

AGN_TEMPLATE_NAME = "Nenkova08_y010_torusg_n10_q2.0.dat"


def find_agn_templates(path: str | os.PathLike[str] | None = None) -> Path:
    """Locate the torus template file: ``path`` (a file or a folder holding it), else
    ``$SPS_HOME/dust/``.

    Raises
    ------
    FileNotFoundError
        With the places searched and where to put the file.
    """
    tried = []
    if path is not None:
        p = Path(path).expanduser()
        cand = p / AGN_TEMPLATE_NAME if p.is_dir() else p
        if cand.is_file():
            return cand
        tried.append(str(cand))
    sps_home = os.environ.get("SPS_HOME")
    if sps_home:
        cand = Path(sps_home) / "dust" / AGN_TEMPLATE_NAME
        if cand.is_file():
            return cand
        tried.append(str(cand))
    raise FileNotFoundError(
        f"add_agn needs the AGN torus templates {AGN_TEMPLATE_NAME} (FSPS, MIT licence): "
        f"pass agn_templates=<file or folder> or put it in $SPS_HOME/dust/"
        + (f" (looked in: {', '.join(tried)})" if tried else " (SPS_HOME is not set)")
    )


def read_agn_templates(path: str | os.PathLike[str]) -> AGNTemplates:
    """Read FSPS's torus template file (λ in Å, 9 columns f_ν for τ_V = 5 … 150)."""
    path = Path(path)
    lines = path.read_text().splitlines()
    taus = None
    rows = []
    for line in lines:
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        vals = [float(v) for v in s.split()]
        if taus is None:
            taus = np.array(vals)
            continue
        rows.append(vals)
    data = np.array(rows)
    if taus is None or data.ndim != 2 or data.shape[1] != taus.size + 1:
        raise ValueError(f"{path}: not an FSPS AGN torus template file")
    return AGNTemplates(tau=taus, wave=data[:, 0], fnu=data[:, 1:].T.copy(),
                        source=f"Nenkova et al. (2008) via FSPS: {path.name}")


def resample_agn(agn: AGNTemplates, wave: NDArray[np.float64]) -> NDArray[np.float64]:
    """Templates as f_λ on ``wave``, each with unit integral (Å⁻¹); log–log interpolation.

    Parameters
    ----------
    agn : AGNTemplates
        The torus templates (f_ν on their own wavelengths, one per optical depth).
    wave : ndarray, shape (nwave,)
        Rest-frame model wavelengths, Å, increasing.

    Returns
    -------
    ndarray, shape (ntau, nwave)
        f_λ of each template, Å⁻¹ (zero outside the template's range).
    """
    flam = agn.fnu / agn.wave**2
    out = np.zeros((agn.tau.size, wave.size))
    inside = (wave >= agn.wave[0]) & (wave <= agn.wave[-1])
    lw = np.log(wave[inside])
    for t in range(agn.tau.size):
        pos = flam[t] > 0
        vals = np.exp(np.interp(lw, np.log(agn.wave[pos]), np.log(flam[t][pos])))
        vals[wave[inside] < agn.wave[pos][0]] = 0.0
        out[t, inside] = vals
    integ = out @ trapezoid_weights(wave)
    return out / integ[:, None]
