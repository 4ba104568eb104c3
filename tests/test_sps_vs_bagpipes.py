"""pixedfit's SPS engine against bagpipes, run as an independent reference.

bagpipes is run in a subprocess (its import writes an IGM grid into its own install folder;
nothing of it is imported into the test process). Same BC03 grid, same Kroupa IMF, formed
mass matched (bagpipes' ``massformed``; pixedfit's ``log_mass`` is the surviving mass, so it
is set from pixedfit's formed/surviving ratio), Calzetti dust (A_V = 1.0857 dust2), nebular
emission (logU), DL07 dust emission (q_PAH, U_min, γ), Inoue et al. (2014) IGM, flat ΛCDM
70/0.3, L☉ = 3.826e33 erg/s in both.

Known differences, which set the tolerances:

* bagpipes resamples the SSPs onto its own age bins (Δlog age = 0.1, time-averaged SSPs) and
  evaluates the SFH on a fine grid before histogramming it; pixedfit integrates the SFH
  exactly over the 221 native BC03 ages. The difference is largest for young populations,
  where the spectrum changes fastest with age (hence 5 % below 100 Myr, 2 % above).
* bagpipes interpolates the SSPs linearly onto an R = 100 grid for photometry (not
  flux-conserving), which shifts its g and r fluxes by up to 1.7 % from those of its own
  R = 1000 spectrum; the reference is therefore run with ``config.R_phot = 1000``.
  pixedfit averages onto its photometry grid and adds lines exactly.
* Metallicity: bagpipes interpolates linearly in Z, pixedfit in log Z; the test uses grid
  metallicities, where both are exact.
* Nebular lines: bagpipes puts each line in one pixel; pixedfit gives them a 50 km/s
  Gaussian (flux-conserving). The spectrum comparison is a median over 1000–10000 Å.
* Wavelength scale: bagpipes uses the grid's wavelengths as they are (air above 2000 Å);
  pixedfit puts them on the vacuum scale. The spectra are compared on the same physical
  bins (bagpipes' bins converted to vacuum): median differences 0.27–0.47 % over the five
  cases, 0.39–0.64 % if the scales are mixed up (hence the 0.6 % bound).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from _sps_shared import model
from pixedfit.filters import get_filter_curve
from pixedfit.lines import air_to_vacuum
from pixedfit.sps.model import SEDModel

FILTERS = ["galex_fuv", "galex_nuv", "sdss_u", "sdss_g", "sdss_r", "sdss_i", "sdss_z",
           "2mass_j", "2mass_h", "2mass_k", "wise_w1", "wise_w2", "wise_w3", "wise_w4"]
Z = 0.5
# (sfh, age Gyr, tau Gyr, Z/Zsun, A_V, logU)
CASES = [
    ("exponential", 3.0, 1.0, 1.0, 0.5, -2.5),
    ("delayed", 1.0, 0.5, 0.4, 0.3, -3.0),
    ("delayed", 6.0, 2.0, 2.5, 0.8, -2.0),
    ("exponential", 0.3, 0.1, 1.0, 0.2, -2.0),
    ("exponential", 0.05, 0.5, 0.2, 0.4, -2.5),
]
QPAH, UMIN, GAMMA = 2.5, 1.0, 0.01

_RUNNER = textwrap.dedent("""
    import json, sys
    import numpy as np
    import bagpipes as pipes
    cfg = json.load(open(sys.argv[1]))
    # bagpipes samples its photometry grid at R_phot = 100 by linear interpolation, which
    # alone moves g and r by up to 1.7 % (measured against its own R = 1000 spectrum);
    # R = 1000 makes it a sharper reference.
    pipes.config.R_phot = cfg["r_phot"]
    phot, spec = [], []
    for sfh, age, tau, met, av, logu in cfg["cases"]:
        comp = {"redshift": cfg["z"],
                sfh: {"age": age, "tau": tau, "massformed": 10.0, "metallicity": met},
                "dust": {"type": "Calzetti", "Av": av, "qpah": cfg["qpah"],
                         "umin": cfg["umin"], "gamma": cfg["gamma"]},
                "nebular": {"logU": logu}}
        m = pipes.model_galaxy(comp, filt_list=cfg["filters"])
        phot.append(np.asarray(m.photometry).tolist())
        ms = pipes.model_galaxy(comp, spec_wavs=np.asarray(cfg["spec_wavs"]))
        spec.append(ms.spectrum[:, 1].tolist())
    json.dump({"phot": phot, "spec": spec}, open(sys.argv[2], "w"))
""")


@pytest.fixture(scope="module")
def bagpipes_results(tmp_path_factory):
    pytest.importorskip("bagpipes")
    tmp = tmp_path_factory.mktemp("bagpipes")
    files = []
    for name in FILTERS:
        w, t = get_filter_curve(name)
        path = tmp / f"{name}.dat"
        np.savetxt(path, np.column_stack([w, t]))
        files.append(str(path))
    spec_wavs = np.arange(1000.0, 10000.0, 5.0) * (1 + Z)
    cfg = {"cases": CASES, "z": Z, "filters": files, "spec_wavs": spec_wavs.tolist(),
           "qpah": QPAH, "umin": UMIN, "gamma": GAMMA, "r_phot": 1000.0}
    (tmp / "cfg.json").write_text(json.dumps(cfg))
    (tmp / "run.py").write_text(_RUNNER)
    proc = subprocess.run([sys.executable, str(tmp / "run.py"), str(tmp / "cfg.json"),
                           str(tmp / "out.json")], capture_output=True, text=True,
                          cwd=tmp, timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"bagpipes failed:\n{proc.stderr[-3000:]}")
    out = json.loads((tmp / "out.json").read_text())
    return np.array(out["phot"]), np.array(out["spec"]), spec_wavs


def _our_params(model: SEDModel, case) -> dict:
    _, age, tau, met, av, logu = case
    p = {"log_age": np.log10(age), "log_tau": np.log10(tau), "logzsol": np.log10(met),
         "dust2": av / 1.0857, "gas_logu": logu, "log_qpah": np.log10(QPAH),
         "log_umin": np.log10(UMIN), "log_gamma": np.log10(GAMMA), "log_mass": 0.0}
    formed_per_surv = model.properties(p)["formed_mass"]
    p["log_mass"] = 10.0 - np.log10(formed_per_surv)  # 1e10 Msun formed, as bagpipes
    return p


def _models():
    kw = {"dust_law": 1, "dust_emission": True, "add_neb_emission": True,
          "add_igm_absorption": True, "igm_type": 1}
    return {"exponential": model(sfh_form=0, **kw), "delayed": model(sfh_form=1, **kw)}


def _rebin(wave, flux, edges):
    """Mean of a piecewise-linear spectrum over bins (flux-conserving)."""
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (flux[1:] + flux[:-1]) * np.diff(wave))])
    c = np.interp(edges, wave, cum)
    return np.diff(c) / np.diff(edges)


def test_against_bagpipes(bagpipes_results):
    phot_bp, spec_bp, spec_wavs = bagpipes_results
    models = _models()
    report = []
    for case, pb, sb in zip(CASES, phot_bp, spec_bp, strict=True):
        m = models[case[0]]
        p = _our_params(m, case)
        ours = m.photometry(p, Z, FILTERS)
        rel = ours / pb - 1
        tol = 0.02 if case[1] >= 0.1 else 0.05
        wave, flux = m.spectrum(p, Z)
        half = np.diff(spec_wavs)[0] / 2
        edges = np.concatenate([spec_wavs - half, [spec_wavs[-1] + half]])
        # bagpipes works on its grid's air scale: its bins are air wavelengths, ours vacuum
        vac = np.asarray(air_to_vacuum(edges))
        ours_s = _rebin(wave, flux, vac) * np.diff(vac) / np.diff(edges)  # per air Å
        med = np.median(np.abs(ours_s / sb - 1))
        report.append((case, tol, rel, med))
    print("\n" + "\n".join(f"{c}: median spectrum {100 * med:.2f} %, bands (%) "
                            f"{dict(zip(FILTERS, np.round(100 * r, 2), strict=True))}"
                            for c, _, r, med in report))
    for case, tol, rel, med in report:
        # FUV...W2 (the 12 bands of the requirement); W3/W4 (dust emission) are loose: the
        # two codes resample the DL07 templates differently onto coarse grids
        info = (case, dict(zip(FILTERS, rel.round(4), strict=True)))
        assert np.all(np.abs(rel[:12]) < tol), info
        assert np.all(np.abs(rel[12:]) < 0.05), info
        assert med < 0.006, (case, med)
