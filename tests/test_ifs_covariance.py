"""Spatial covariance of IFS spaxels, the medium of SpecPhotCube and the MUSE field PSFs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from scipy.signal import fftconvolve

from ifs_synth import tan_wcs
from pixedfit.cubes import FluxCube, SpecPhotCube
from pixedfit.ifs.covariance import (
    SpaxelCovariance,
    califa_covariance,
    manga_covariance,
    measure_covariance,
)
from pixedfit.ifs.generators import califa_wave_grid, write_califa_cube
from pixedfit.ifs.readers import IFSCube, read_califa, read_muse
from pixedfit.ifs.spatial import match_imgifs_spatial

MUSE_FILE = Path("muse_udf_subcube") / "subcub_mosaic.fits.gz"


def _robust_std(z: np.ndarray) -> float:
    z = z[np.isfinite(z)]
    return float(1.4826 * np.median(np.abs(z - np.median(z))))


def test_law2016_relation() -> None:
    """β(N) = 1 + 1.62 log10 N up to N = 100, constant (4.24) beyond (Law+2016 §9.3)."""
    cov = manga_covariance()
    np.testing.assert_allclose(cov.factor([1, 10, 50, 100, 400]),
                               [1.0, 2.62, 1 + 1.62 * np.log10(50), 4.24, 4.24], rtol=1e-12)
    back = SpaxelCovariance.from_header(fits.Header(
        [fits.Card(k, v, c) for k, v, c in cov.header_cards()]))
    assert back is not None and back.alpha == 1.62 and back.n_sat == 100.0


def _correlated_cube(nw: int = 400, seed: int = 0) -> tuple[IFSCube, np.ndarray]:
    """Unit-variance noise correlated by a known kernel; the errors say σ = 1 (naive)."""
    rng = np.random.default_rng(seed)
    k = np.array([[0.0, 0.5, 0.0], [0.5, 1.0, 0.5], [0.0, 0.5, 0.0]])
    k /= np.sqrt(np.sum(k**2))
    white = rng.normal(size=(nw, 34, 34))
    noise = fftconvolve(white, k[None], mode="valid", axes=(1, 2))  # (nw, 32, 32)
    acf = fftconvolve(k, k[::-1, ::-1], mode="full")  # true correlation ρ, ρ(0) = 1
    wave = np.linspace(5400.0, 6000.0, nw)
    cube = IFSCube(noise * 1e-18, np.full(noise.shape, 1e-18), wave,
                   np.zeros(noise.shape, bool), tan_wcs(0.2, (32, 32)), psf_fwhm=0.6)
    return cube, acf


def _matched(cube: IFSCube, pixel: float, n: int, **kwargs):
    """``cube`` matched without PSF matching onto an n×n grid of ``pixel``-arcsec pixels
    centred on it (photometry of ones)."""
    ra, dec = cube.wcs.pixel_to_world_values(15.5, 15.5)
    grid = tan_wcs(pixel, (n, n), crval=(float(ra), float(dec)))
    phot = FluxCube(np.ones((1, n, n)), np.full((1, n, n), 0.1), ["sdss_r"], wcs=grid,
                    unit=1e-18)
    return match_imgifs_spatial(phot, cube, psf_match=False, correct_extinction=False,
                                **kwargs)


def test_measured_correlation_recovers_the_kernel() -> None:
    cube, acf = _correlated_cube()
    cov = measure_covariance(cube.flux, cube.err)
    np.testing.assert_allclose(cov.rho[1:4, 1:4], acf[1:4, 1:4], atol=0.02)


def test_binned_errors_match_the_scatter_of_correlated_noise() -> None:
    """Each channel is one noise realisation: propagated errors of 3×3-spaxel sums (the
    0.6" output pixels) and of 2×2 bins of those pixels equal the scatter over channels."""
    cube, _ = _correlated_cube()
    sp, noise = _matched(cube, 0.6, 8, return_noise=True)
    old = _matched(cube, 0.6, 8, covariance=None)
    sel = sp.spec_region
    assert sel.sum() >= 36
    scatter = np.std(sp.spec_flux[:, sel], axis=0)
    assert np.median(scatter / sp.spec_err[0][sel]) == pytest.approx(1.0, abs=0.03)
    assert np.median(scatter / old.spec_err[0][sel]) > 1.3  # naive: far too small
    assert sp.photometry.header["IFSCOV"] == "kernel"
    assert sp.photometry.header["IFSCOVF"] > 1.3
    ys, xs = np.nonzero(sel)
    box = np.zeros(sel.shape, bool)
    box[ys.min():ys.min() + 2, xs.min():xs.min() + 2] = True
    sums = np.sum(sp.spec_flux[:, box], axis=1)
    var = noise.binned_variance(sp.spec_err, box)
    assert np.std(sums) / np.sqrt(np.median(var)) == pytest.approx(1.0, abs=0.06)


def test_relation_model_in_binned_sums() -> None:
    """A relation β(N): the error of a bin of output pixels is β(N_bin) × the naive one."""
    cube, _ = _correlated_cube(nw=20)
    cov = manga_covariance()
    sp, noise = _matched(cube, 0.6, 8, return_noise=True, covariance=cov)
    old, onoise = _matched(cube, 0.6, 8, return_noise=True, covariance=None)
    sel = sp.spec_region
    np.testing.assert_allclose(sp.spec_err[:, sel] / old.spec_err[:, sel],
                               cov.factor(9.0), rtol=1e-6)  # 3×3 spaxels per pixel
    box = np.zeros(sel.shape, bool)
    ys, xs = np.nonzero(sel)
    box[ys.min():ys.min() + 3, xs.min():xs.min() + 3] = True  # 81 spaxels
    ratio = np.sqrt(noise.binned_variance(sp.spec_err, box)
                    / onoise.binned_variance(old.spec_err, box))
    np.testing.assert_allclose(ratio, cov.factor(81.0), rtol=1e-6)


def test_bin_variances_equal_the_per_channel_sums() -> None:
    """All bins and channels at once equal Σ ρ σ_i σ_j bin by bin and channel by channel
    (images.align.binned_variance); a channel with a NaN error in a bin gives NaN there."""
    from pixedfit.ifs.spatial import SpectralNoise
    from pixedfit.images.align import binned_variance

    rng = np.random.default_rng(7)
    nw, ny, nx = 6, 9, 11
    rho = rng.uniform(-0.1, 0.4, (2, 5, 5))
    rho = 0.5 * (rho + rho[:, ::-1, ::-1])  # ρ(d) = ρ(−d)
    rho[:, 2, 2] = 1.0
    group = np.array([0, 0, 1, 1, 0, 1])
    err = rng.uniform(0.5, 2.0, (nw, ny, nx))
    err[3, 4, 5] = np.nan
    bins = rng.integers(0, 5, (ny, nx)).astype(np.int32)  # scattered bins 1-4, 0: none
    noise = SpectralNoise(group, rho)
    got = noise.bin_variances(err, bins)
    assert got.shape == (4, nw)
    for b in range(1, 5):
        m = bins == b
        for ch in range(nw):
            if not np.all(np.isfinite(err[ch][m])):
                assert np.isnan(got[b - 1, ch])
                continue
            want = binned_variance(np.where(m, err[ch] ** 2, 0.0), m, rho[group[ch]])
            assert got[b - 1, ch] == pytest.approx(want, rel=1e-10, abs=0)
    if bins[4, 5]:
        assert np.isnan(got[bins[4, 5] - 1, 3])


def test_binning_uses_the_spectral_noise_model(tmp_path: Path) -> None:
    """Bins of a matched cube of correlated noise: with the noise model the bin spectra's
    errors equal the scatter of their sums over channels; quadrature sums are too small.
    The binned cube records that it used it."""
    from pixedfit.binning import bin_with_map
    from pixedfit.cubes import BinnedCube

    cube, _ = _correlated_cube()
    sp, noise = _matched(cube, 0.4, 12, return_noise=True)
    sel = sp.spec_region
    ys, xs = np.nonzero(sel)
    bins = np.zeros(sel.shape, np.int32)
    for k, (y0, x0) in enumerate(((0, 0), (0, 3), (3, 0), (3, 3))):
        bins[ys.min() + y0:ys.min() + y0 + 3, xs.min() + x0:xs.min() + x0 + 3] = k + 1
    assert np.all(sel[bins > 0])
    honest = bin_with_map(sp, bins, spectral_noise=noise)
    naive = bin_with_map(sp, bins)
    for b in range(4):
        scatter = np.std(honest.bin_spec_flux[b])
        assert scatter / np.median(honest.bin_spec_err[b]) == pytest.approx(1.0, abs=0.1)
        assert scatter / np.median(naive.bin_spec_err[b]) > 1.2
    honest.write(tmp_path / "b.fits")
    assert BinnedCube.read(tmp_path / "b.fits").params["spectral_noise"] is True
    with pytest.raises(TypeError, match="spectral_noise"):
        bin_with_map(sp, bins, spectral_noise="noise.fits")


def test_califa_reader_reads_errweight(tmp_path: Path) -> None:
    wave = califa_wave_grid("V500")[::20]
    rng = np.random.default_rng(2)
    flux = 1.0 + 0.01 * rng.normal(size=(wave.size, 12, 12))
    err = np.full(flux.shape, 0.01)
    path = tmp_path / "NGC0001.V500.rscube.fits"
    write_califa_cube(path, wave, flux * 1e-16, err * 1e-16, tan_wcs(1.0, (12, 12)))
    with fits.open(path) as hdul:
        assert "ERRWEIGHT" in [h.name for h in hdul]  # the layout has the extension
        weight = 1.0 + 1.2 * np.log10(144)
        hdul["ERRWEIGHT"].data = np.full(flux.shape, weight, dtype=np.float32)
        hdul.writeto(tmp_path / "w.V500.rscube.fits")
    cube = read_califa(tmp_path / "w.V500.rscube.fits")
    assert cube.covariance is not None and cube.covariance.kind == "relation"
    assert cube.covariance.alpha == pytest.approx(1.2, rel=1e-5)
    assert "ERRWEIGHT" in cube.covariance.source
    assert califa_covariance("V1200").alpha == 1.4  # no ERRWEIGHT: the default


def test_muse_covariance_on_empty_sky(shared_data: Path) -> None:
    """Real MUSE cube: the measured correlation predicts the scatter of 3×3 sums of
    continuum-free residuals (the UDF sub-cube is mostly empty sky)."""
    cube = read_muse(shared_data / MUSE_FILE)
    cov = cube.covariance
    assert cov is not None and cov.kind == "kernel"
    h = cov.rho.shape[0] // 2
    assert 0.08 < cov.rho[h, h + 1] < 0.18 and 0.08 < cov.rho[h + 1, h] < 0.18
    k = 2
    f, e = cube.flux, cube.err
    r = f[k:-k] - 0.5 * (f[:-2 * k] + f[2 * k:])
    v = e[k:-k] ** 2 + 0.25 * (e[:-2 * k] ** 2 + e[2 * k:] ** 2)
    single = _robust_std(r / np.sqrt(v))
    z = [r[:, y:y + 3, x:x + 3].sum(axis=(1, 2)) / np.sqrt(v[:, y:y + 3, x:x + 3].sum(axis=(1, 2)))
         for y in range(0, 30, 3) for x in range(0, 30, 3)]
    measured = _robust_std(np.concatenate(z)) / single
    assert measured > 1.1  # the naive errors of sums are too small
    assert float(cov.factor(9.0)) == pytest.approx(measured, abs=0.03)


def test_muse_matched_errors_follow_the_scatter(shared_data: Path) -> None:
    """Matched onto aligned 0.6" pixels (3×3 spaxels): the errors describe the scatter of
    the matched spectra (second differences) like the native errors do; without the
    covariance they are ≈ 15 % too small."""
    cube = read_muse(shared_data / MUSE_FILE)
    grid = cube.wcs.deepcopy()  # 3x coarser, pixel edges on spaxel edges
    if grid.wcs.has_cd():
        grid.wcs.cd = grid.wcs.cd * 3.0
    else:
        grid.wcs.cdelt = grid.wcs.cdelt * 3.0
    grid.wcs.crpix = (grid.wcs.crpix + 1.0) / 3.0
    grid.wcs.set()
    phot = FluxCube(np.ones((1, 10, 10)), np.full((1, 10, 10), 0.1), ["sdss_g"], wcs=grid,
                    unit=1e-20)
    ratios = {}
    for key in ("auto", None):
        sp = match_imgifs_spatial(phot, cube, psf_match=False, covariance=key,
                                  correct_extinction=False)
        s, e = sp.spec_flux, sp.spec_err
        r = s[2:-2] - 0.5 * (s[:-4] + s[4:])
        v = e[2:-2] ** 2 + 0.25 * (e[:-4] ** 2 + e[4:] ** 2)
        ratios[key] = _robust_std(r / np.sqrt(v)) / cube.error_scale
    assert ratios["auto"] == pytest.approx(1.0, abs=0.04)
    assert ratios[None] > 1.1


def test_muse_psf_from_the_fields_covering_the_cube(shared_data: Path) -> None:
    """FIELDMAP: fields 6 (all spaxels) and 9 (122 spaxels) cover the sub-cube; the FSF is
    theirs, not the mean of the 9 fields (2-3 % wider)."""
    path = shared_data / MUSE_FILE
    cube = read_muse(path)
    with fits.open(path) as hdul:
        h, fmap = hdul[0].header, hdul["FIELDMAP"].data
    lam = cube.wave

    def fsf(i: int) -> np.ndarray:
        return h[f"FSF{i:02d}FWA"] + h[f"FSF{i:02d}FWB"] * lam

    only6 = np.sum(fmap == 64)
    both = np.sum(fmap == 64 + 512)
    assert only6 + both == 900
    expected = (only6 * fsf(6) + both * 0.5 * (fsf(6) + fsf(9))) / 900
    np.testing.assert_allclose(cube.psf_fwhm_per_wave(), expected, rtol=1e-12)
    all_fields = np.mean([fsf(i) for i in range(1, 10)], axis=0)
    assert np.all(all_fields / cube.psf_fwhm_per_wave() > 1.02)
    assert "FIELDMAP" in str(cube.psf_source)


def test_specphot_medium_round_trip(tmp_path: Path) -> None:
    phot = FluxCube(np.ones((1, 3, 3)), np.full((1, 3, 3), 0.1), ["sdss_r"])
    wave = np.linspace(5500.0, 6500.0, 11)
    cube = SpecPhotCube(phot, wave, np.ones((11, 3, 3)), np.full((11, 3, 3), 0.1),
                        wave_medium="air")
    assert "SPECMED" not in phot.header  # the caller's photometry is left as it was
    cube.write(tmp_path / "a.fits")
    back = SpecPhotCube.read(tmp_path / "a.fits")
    assert back.wave_medium == "air"
    from pixedfit.binning import bin_with_map

    binned = bin_with_map(back, np.ones((3, 3), np.int32))
    assert binned.header["SPECMED"] == "air"  # where the fits of the bins read it
    fresh = FluxCube(np.ones((1, 3, 3)), np.full((1, 3, 3), 0.1), ["sdss_r"])
    assert SpecPhotCube(fresh, wave, np.ones((11, 3, 3)), np.full((11, 3, 3), 0.1)
                        ).wave_medium == "vacuum"
    with pytest.raises(ValueError, match="wave_medium"):
        SpecPhotCube(phot, wave, np.ones((11, 3, 3)), np.full((11, 3, 3), 0.1),
                     wave_medium="water")
