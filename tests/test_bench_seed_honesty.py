"""The statistics of benchmarks/bench_seed_honesty.py: real against reported Monte-Carlo
error of repeated fits, checked on draws whose real error is known."""

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import bench_seed_honesty as bench


def _repeats(rng, n_gal, repeats, inflation):
    """Medians drawn around each galaxy's truth with a real error ``inflation`` times the
    reported one (which varies a little from repeat to repeat, as fits report it)."""
    reported_sd = rng.uniform(0.003, 0.02, n_gal)
    reported = reported_sd * rng.uniform(0.9, 1.1, (repeats, n_gal))
    p50 = rng.uniform(8, 11, n_gal) + rng.normal(0, inflation * reported_sd, (repeats, n_gal))
    half = np.full((repeats, n_gal), 0.1)
    return p50, reported, half


def test_honest_median_is_that_of_a_chi_distribution():
    # s / σ = √(χ²(k) / k): its median, and a check by simulation for 8 repeats
    assert bench.honest_median(8) == pytest.approx(np.sqrt(stats.chi2.median(7) / 7), rel=1e-12)
    sd = np.random.default_rng(1).normal(size=(200_000, 8)).std(axis=1, ddof=1)
    assert np.median(sd) == pytest.approx(bench.honest_median(8), abs=3e-3)


@pytest.mark.parametrize("inflation", [1.0, 1.5])
def test_ratio_recovers_the_inflation_of_the_real_error(inflation):
    p50, reported, half = _repeats(np.random.default_rng(2), 3000, 8, inflation)
    h = bench.honesty(p50, reported, half, max_half=0.3)
    assert h["n"] == 3000
    # the rms of the ratio estimates the inflation (the reported errors vary by ±10 %:
    # their rms is within 0.5 % of the truth), the median that times the honest median
    assert h["ratio_rms"] == pytest.approx(inflation, rel=0.03)
    assert h["ratio_median"] == pytest.approx(inflation * bench.honest_median(8), rel=0.03)
    assert h["honest_median"] == bench.honest_median(8)


def test_wide_and_undefined_galaxies_are_left_out():
    p50, reported, half = _repeats(np.random.default_rng(3), 50, 6, 1.0)
    half[:, :10] = 0.5  # bounds, not measurements
    p50[2, 10] = np.nan  # a fit without a median
    reported[0, 11] = 0.0  # a fit that reported no error
    h = bench.honesty(p50, reported, half, max_half=0.3)
    assert h["n"] == 38
