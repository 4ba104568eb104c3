"""The FSPS grid builder (skipped without python-fsps and SPS_HOME)."""

from __future__ import annotations

import numpy as np
import pytest

from pixedfit.sps.fsps_builder import build_fsps_grid, fsps_available
from pixedfit.sps.grids import read_grid

OK, WHY = fsps_available()


def test_unavailable_fsps_gives_a_reason(monkeypatch):
    monkeypatch.delenv("SPS_HOME", raising=False)
    ok, why = fsps_available()
    assert not ok and "SPS_HOME" in why
    with pytest.raises(RuntimeError, match="SPS_HOME"):
        build_fsps_grid()


@pytest.mark.skipif(not OK, reason=f"FSPS grid builder not testable here: {WHY}")
@pytest.mark.slow
def test_fsps_grid(tmp_path):
    from pixedfit.sps.model import SEDModel

    path = build_fsps_grid(imf_type=1, nebular=False, path=tmp_path / "fsps.h5")
    g = read_grid(path)
    assert g.imf == "chabrier03" and 0.014 <= g.zsun <= 0.02
    assert np.all(g.mass_living + g.mass_remnant <= 1.0 + 1e-6)
    m = SEDModel(grid=g, add_neb_emission=False, sfh_form=1)
    assert m.properties({"log_mass": 10})["stellar_mass"] == pytest.approx(1e10)
