"""The stellar-mass prior box: from the data alone, the same for every sampler, and reported
when the posterior reaches it.

The defect (found on DustPedia): adaptive RDSPS and MCMC sampled log M* inside the best
library model's mass ± 1.5 dex. The box moved with the library's seed and cut broad
posteriors: UGC 07916, seen only in the UV and far-IR, got log M* = 7.48 with one library
and 7.26 with another (nested sampling, whose box came from the data: 7.25).
"""

from __future__ import annotations

import csv
import warnings

import numpy as np
import pytest

from _sps_shared import FILTERS_12 as FILTERS
from _sps_shared import library as shared_library
from _sps_shared import model as shared_model
from pixedfit.fitting import (
    ErrorModel,
    MassBoxWarning,
    McmcSettings,
    Parallelism,
    RdspsSettings,
    fit_catalog,
    fit_sed,
)
from pixedfit.fitting.adaptive import AdaptiveSettings
from pixedfit.fitting.boxes import log_mass_box, mass_box_edge
from pixedfit.fitting.priors import PriorSet, Uniform
from pixedfit.library import generate_library
from pixedfit.sps import SEDModel


@pytest.fixture(scope="module")
def model():
    return shared_model(sfh_form=1, dust_law=1, add_neb_emission=False)


@pytest.fixture(scope="module")
def libraries(model):
    return [shared_library(model, 4000, seed) for seed in (31, 32)]


def _mock(model, library, index, z=0.05, snr=20.0):
    p = {k: v[index] for k, v in library.params.items()}
    p["log_mass"] = 10.0
    flux = model.photometry(p, z, FILTERS)
    err = flux / snr
    return flux + np.random.default_rng(index).normal(0, err), err


def test_mass_box_comes_from_the_data_for_every_sampler(model, libraries):
    obs, err = _mock(model, libraries[0], 7)
    want = log_mass_box(obs, err, FILTERS, 0.05, 0.05, (-4.0, 4.0))
    boxes = [fit_sed(obs, err, FILTERS, z=0.05, library=lib, model=model, seed=1)
             .diagnostics["box"]["log_mass"] for lib in libraries]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a chain this short warns that it is short
        boxes.append(fit_sed(obs, err, FILTERS, z=0.05, library=libraries[1], model=model,
                             method=McmcSettings(nsteps=60, nsteps_cut=10), seed=1)
                     .diagnostics["box"]["log_mass"])
    for box in boxes:  # neither the library nor the sampler moves it
        assert box == pytest.approx(want, abs=1e-9)
    # a narrower log_mass_to_light narrows it
    res = fit_sed(obs, err, FILTERS, z=0.05, library=libraries[0], model=model,
                  method=RdspsSettings(refine=AdaptiveSettings(log_mass_to_light=(-3.0, 2.0))))
    assert res.diagnostics["box"]["log_mass"] == pytest.approx(
        log_mass_box(obs, err, FILTERS, 0.05, 0.05, (-3.0, 2.0)), abs=1e-9)
    assert not res.diagnostics["mass_box_edge"]


def test_a_prior_that_cuts_the_mass_posterior_is_reported(model, libraries):
    obs, err = _mock(model, libraries[0], 11)  # log M* = 10 ± ~0.05
    with pytest.warns(MassBoxWarning, match=r"upper edge .*log_mass prior's lo and hi"):
        res = fit_sed(obs, err, FILTERS, z=0.05, library=libraries[0], model=model, seed=2,
                      priors=[Uniform("log_mass", 8.0, 9.9)])
    assert res.diagnostics["mass_box_edge"]
    assert any("edge of its box" in note for note in res.diagnostics["warnings"])
    assert res.p84[res.names.index("log_mass")] <= 9.9


def test_a_catalogue_warns_once_naming_the_fits_at_the_box_edge(model, libraries):
    mocks = [_mock(model, libraries[0], i) for i in (11, 12)]
    obs = np.array([m[0] for m in mocks])
    err = np.array([m[1] for m in mocks])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fit_catalog(obs, err, FILTERS, [0.05, 0.05], library=libraries[0], model=model,
                          seed=3, priors=[Uniform("log_mass", 8.0, 9.9)])
    edge = [w for w in caught if issubclass(w.category, MassBoxWarning)]
    assert len(edge) == 1 and "2 of 2 fits" in str(edge[0].message)
    assert all(r.diagnostics["mass_box_edge"] for r in res.values())


def test_mass_box_edge_quantiles():
    x = np.linspace(0.0, 1.0, 1001)
    assert mass_box_edge(x, None, -1.0, 2.0, PriorSet(), (-4.0, 4.0)) is None
    assert "lower edge" in mass_box_edge(x, None, 0.0, 2.0, PriorSet(), (-4.0, 4.0))
    # weight only far from the edges: not reported; weight at the edge: reported
    w = np.where(x < 0.5, 1.0, 0.0)
    assert mass_box_edge(x, w, -1.0, 0.7, PriorSet(), (-4.0, 4.0)) is None
    assert "upper edge" in mass_box_edge(x, 1.0 - w, -1.0, 1.0, PriorSet(), (-4.0, 4.0))
    assert mass_box_edge(np.full(3, np.nan), None, 0.0, 1.0, PriorSet(), (-4.0, 4.0)) is None


@pytest.mark.parametrize("make", [
    lambda v: AdaptiveSettings(log_mass_to_light=v).check(),
    lambda v: McmcSettings(log_mass_to_light=v).check(),
])
@pytest.mark.parametrize("value", [(1.0, 0.0), (0.0, np.inf), "wide", (1.0,)])
def test_bad_log_mass_to_light_names_the_setting(make, value):
    with pytest.raises(ValueError, match="log_mass_to_light"):
        make(value)


@pytest.mark.slow
def test_dustpedia_uv_and_far_ir_galaxy_mass_independent_of_the_library(shared_data):
    """UGC 07916 (FUV, NUV and 3–500 µm only): two library seeds, the same log M*."""
    from astropy import units as u
    from astropy.cosmology import FlatLambdaCDM, z_at_value

    from pixedfit.filters import cwave_filters
    from pixedfit.units import convert_flux_unit

    base = shared_data / "dustpedia_catalogues"
    bands = {"GALEX_FUV": "galex_fuv", "GALEX_NUV": "galex_nuv", "WISE_12": "wise_w3",
             "WISE_22": "wise_w4", "Spitzer_24": "spitzer_mips_24",
             "PACS_100": "herschel_pacs_100", "PACS_160": "herschel_pacs_160",
             "SPIRE_250": "herschel_spire_250", "SPIRE_350": "herschel_spire_350",
             "SPIRE_500": "herschel_spire_500"}

    def row(name, path):  # the first column names the galaxy (``name``, ``objname``)
        with open(base / path, newline="", encoding="utf-8") as fh:
            lines = [ln for ln in fh if not ln.startswith("# downloaded")]
        return next(r for r in csv.DictReader(lines) if next(iter(r.values())) == name)

    phot = row("UGC07916", "DustPedia_Aperture_Photometry_2.2.csv")
    dist = float(row("UGC07916", "DustPedia_HyperLEDA_Herschel.csv")["dist_best"])
    filters = list(bands.values())
    piv = cwave_filters(filters)
    obs, err = np.empty(len(filters)), np.empty(len(filters))
    for b, key in enumerate(bands):
        assert not phot[key + "_flag"], key
        obs[b], err[b] = convert_flux_unit(float(phot[key]), piv[b], "Jy", "erg/s/cm2/A",
                                           flux_err=float(phot[key + "_err"]))
    z = z_at_value(FlatLambdaCDM(H0=70, Om0=0.3).luminosity_distance, dist * u.Mpc).value
    model = SEDModel(sfh_form=1, dust_law=0, dust_emission=True, add_neb_emission=True)
    fits = []
    for seed in (7, 8):
        lib = generate_library(model, 30000, seed=seed, ranges={"log_age": (-1.0, 1.14)})
        with warnings.catch_warnings():
            warnings.simplefilter("error", MassBoxWarning)
            fits.append(fit_sed(obs, err, filters, z=float(z), library=lib, model=model,
                                errors=ErrorModel(error_floor=0.05), seed=seed,
                                parallel=Parallelism(threads=1)))
    k = fits[0].names.index("log_mass")
    for f in fits:
        assert f.converged
        lo, hi = f.diagnostics["box"]["log_mass"]
        # the posterior is broad (no optical or near-IR band) but well inside its box
        assert f.p84[k] - f.p16[k] > 0.6
        assert lo + 1.0 < f.p16[k] - 2 * f.std[k] and f.p84[k] + 2 * f.std[k] < hi - 1.0
    assert abs(fits[0].p50[k] - fits[1].p50[k]) < 0.1
