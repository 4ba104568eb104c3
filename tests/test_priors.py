"""Prior forms against scipy, truncation, the joint-with-mass relation and input checks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pixedfit.fitting import (
    DEFAULT_RANGES,
    Gamma,
    Gaussian,
    JointWithMass,
    PriorSet,
    StudentT,
    Tabulated,
    Uniform,
)

X = np.linspace(-3, 3, 61)


def _differences_constant(a, b):
    finite = np.isfinite(a)
    assert np.array_equal(finite, np.isfinite(b))
    d = a[finite] - b[finite]
    np.testing.assert_allclose(d, d[0], atol=1e-10)


def test_forms_agree_with_scipy_up_to_a_constant():
    _differences_constant(Gaussian("p", 0.5, 0.7).logpdf(X), stats.norm.logpdf(X, 0.5, 0.7))
    _differences_constant(StudentT("p", 3, 0.1, 0.5).logpdf(X), stats.t.logpdf(X, 3, 0.1, 0.5))
    _differences_constant(Gamma("p", 2.5, -1.0, 0.4).logpdf(X),
                          stats.gamma.logpdf(X, 2.5, -1.0, 0.4))
    assert np.all(Uniform("p").logpdf(X) == 0)


def test_truncation_and_tabulated():
    g = Gaussian("p", 0.0, 1.0, lo=-1.0, hi=2.0)
    out = g.logpdf(X)
    assert np.all(np.isneginf(out[(X < -1) | (X > 2)]))
    assert np.all(np.isfinite(out[(X >= -1) & (X <= 2)]))
    t = Tabulated("p", [0.0, 1.0, 2.0], [0.0, 2.0, 1.0])
    np.testing.assert_allclose(np.exp(t.logpdf([0.5, 1.0, 1.5])), [1.0, 2.0, 1.5])
    assert np.isneginf(t.logpdf(0.0)) and np.isneginf(t.logpdf(2.5))
    assert (t.lo, t.hi) == (0.0, 2.0)


def test_joint_with_mass_follows_the_relation():
    j = JointWithMass("logzsol", log_mass=[8.0, 11.0], param_values=[-1.0, 0.0], scale=0.2)
    at_rel = j.logpdf_given_mass([-1.0, -0.5, 0.0], [8.0, 9.5, 11.0])
    assert np.ptp(at_rel) < 1e-12  # on the relation, the density is the peak value
    off = j.logpdf_given_mass(-0.6, 9.5)
    assert at_rel[0] - off == pytest.approx(0.5 * (0.1 / 0.2) ** 2)
    ps = PriorSet([j, Uniform("log_age", -1, 1)])
    total = ps.log_prior({"logzsol": -0.5, "log_mass": 9.5, "log_age": 0.0})
    assert total == pytest.approx(at_rel[1])
    assert np.isneginf(ps.log_prior({"logzsol": -0.5, "log_mass": 9.5, "log_age": 2.0}))
    sd = PriorSet([JointWithMass("logzsol", [8, 11], [-1, 0], 0.2, mass_surface_density=True)])
    with pytest.raises(ValueError, match="area_kpc2"):
        sd.log_prior({"logzsol": 0.0, "log_mass": 9.0})
    # log(M / area): a mass of 10^9.5 over 10 kpc^2 sits at 8.5 on the relation.
    value = sd.log_prior({"logzsol": -5 / 6, "log_mass": 9.5}, area_kpc2=10.0)
    assert value == pytest.approx(j.logpdf_given_mass(-5 / 6, 8.5))
    assert value == pytest.approx(at_rel[0])


def test_prior_set_from_mapping_and_errors():
    ps = PriorSet({"log_age": (-1.0, 1.0), "dust2": Gaussian("dust2", 0.3, 0.2, 0, 4)})
    assert ps.names == ["log_age", "dust2"]
    assert isinstance(ps["log_age"], Uniform)
    with pytest.raises(ValueError, match="declared for"):
        PriorSet({"dust1": Gaussian("dust2", 0.3, 0.2)})
    with pytest.raises(ValueError, match="two priors"):
        PriorSet([Uniform("a", 0, 1), Uniform("a", 0, 2)])
    with pytest.raises(ValueError, match="no value"):
        ps.log_prior({"log_age": 0.0})
    with pytest.raises(ValueError, match="empty"):
        Uniform("a", 1.0, 0.0)
    with pytest.raises(ValueError, match="scale"):
        Gaussian("a", 0.0, -1.0)
    with pytest.raises(ValueError, match="increasing"):
        Tabulated("a", [0, 2, 1], [1, 1, 1])
    with pytest.raises(ValueError, match="not all zero"):
        Tabulated("a", [0, 1], [0, 0])


def test_default_ranges_fix_the_gas_logu_trap():
    assert "gas_logu" not in DEFAULT_RANGES  # the original's [-2, -2] selected zero models
    assert DEFAULT_RANGES["logzsol"] == (-2.0, 0.2)
