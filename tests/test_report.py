"""The HTML report: every section, every image present and readable, relative links; and a
real headless browser (Debian ``chromium``, if installed) loads every image."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from matplotlib.image import imread

from pixedfit.demo import run_demo
from pixedfit.images.regions import RegionWarning


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.src: list[str] = []
        self.headings: list[str] = []
        self._h = False

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.src.append(dict(attrs)["src"])
        self._h = tag in ("h2",)

    def handle_data(self, data):
        if self._h:
            self.headings.append(data.strip())
            self._h = False


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report_run")
    # the demo galaxy fills this small stamp: the region is flagged (banner tested below)
    with pytest.warns(RegionWarning, match="touches the stamp edge"):
        result = run_demo(out, stamp=24, nmodels=2500, noise_realisations=0, quiet=True,
                          refine=False)
    assert result.report is not None
    return result.report


def test_report_sections_and_images(report):
    parser = _Images()
    parser.feed(report.read_text())
    for section in ("Run", "Inputs", "Stamps and galaxy region", "Bins", "Property maps",
                    "Example fits", "Recovered versus true", "Configuration"):
        assert section in parser.headings
    assert len(parser.src) >= 12 + 5
    for src in parser.src:
        assert not re.match(r"^[a-z]+:", src) and not src.startswith("/")  # relative
        img = imread(report.parent / src)
        assert img.shape[0] > 20 and img.std() > 0
    assert any("corner_bin" in s for s in parser.src)
    assert any("sfh_bin" in s for s in parser.src)
    assert any("sed_bin" in s for s in parser.src)
    text = report.read_text()
    assert "Stages" in text and "seconds" in text


def test_report_region_banner_outline_and_error_budget(report):
    """The region flag of the flux map reaches the page; the outline is drawn thick and in
    red over the whole stamp (sky included); the error budget lists calibration errors."""
    text = report.read_text()
    assert "class='banner'" in text and "Galaxy region warning" in text
    assert re.search(r"covers \d+\.\d % of the stamp and touches its edge", text)
    assert "Error budget" in text
    # sdss_r: 0.8 % calibration error (DustPedia) -> S/N ceiling 125
    row = re.search(r"<tr><td>sdss_r</td><td>([\d.]+)</td><td>(\d+)</td>", text)
    assert row and row.group(1) == "0.8" and row.group(2) == "125"
    img = imread(report.parent / "img" / "stamp_sdss_r.png")[..., :3]
    red = (img[..., 0] > 0.8) & (img[..., 1] < 0.25) & (img[..., 2] < 0.25)
    assert red.sum() > 0.01 * red.size  # a visible outline, not a hairline


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_report_loads_in_a_headless_browser(report, tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip("no Debian chromium installed (apt install chromium); the test installs "
                    "nothing")
    probe = report.parent / "_probe.html"
    script = ("<script>window.addEventListener('load',()=>{const bad=[...document.images]"
              ".filter(i=>!(i.complete&&i.naturalWidth>0)).map(i=>i.getAttribute('src'));"
              "document.body.setAttribute('data-n',document.images.length);"
              "document.body.setAttribute('data-bad',JSON.stringify(bad));});</script>")
    probe.write_text(report.read_text().replace("</body>", script + "</body>"))
    try:
        proc = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu",
             f"--user-data-dir={tmp_path / 'profile'}", "--allow-file-access-from-files",
             "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
            capture_output=True, text=True, timeout=120)
    finally:
        probe.unlink()
    assert proc.returncode == 0, proc.stderr[-1000:]
    n = int(re.search(r'data-n="(\d+)"', proc.stdout).group(1))
    bad = json.loads(re.search(r"data-bad=\"([^\"]*)\"", proc.stdout).group(1)
                     .replace("&quot;", '"'))
    assert n >= 17
    assert bad == []


def test_report_reads_as_a_person_would(report):
    text = report.read_text()
    assert "models in the posterior" not in text
    assert "effective sample size of the posterior" in text
    # numbers formatted for reading: no float noise such as 1.5000000000000118
    assert not re.search(r"\d\.\d{10,}", text.split("<h2>Configuration")[0])
    # the stage info is complete (it used to be cut at 120 characters, mid-list)
    records = json.loads((report.parent.parent / ".pixedfit" / "binning.json").read_text())
    from pixedfit.analysis.report import format_value

    info = format_value(records["info"])
    assert html_escape(info) in text


def html_escape(value: str) -> str:
    import html

    return html.escape(value)


def test_configuration_is_shown_as_toml_that_reads_back(report):
    import html
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    from pixedfit.pipeline import load_config

    text = report.read_text()
    block = text.split("<h2>Configuration</h2>", 1)[1].split("<pre>", 1)[1].split("</pre>")[0]
    toml_text = html.unescape(block)
    parsed = tomllib.loads(toml_text)
    cfg = load_config(report.parent.parent.parent / "demo.toml")

    def without_none(value):
        if isinstance(value, dict):
            return {k: without_none(v) for k, v in value.items() if v is not None}
        if isinstance(value, tuple):
            return [without_none(v) for v in value]
        return value

    expected = {k: without_none(v) for k, v in cfg.items() if not k.startswith("_")}
    assert parsed == expected
    assert max(len(line) for line in toml_text.splitlines()) <= 100


def test_format_value():
    from pixedfit.analysis.report import format_value

    assert format_value(1.5000000000000118) == "1.5"
    assert format_value([1, 2.25, "a"]) == "[1, 2.25, a]"
    assert format_value({"nbins": 124, "snr_target": [3.0, 10.0]}) == \
        "nbins=124, snr_target=[3, 10]"


@pytest.mark.slow
def test_report_reads_only_the_example_fits(report, tmp_path, monkeypatch):
    from pixedfit.analysis.report import write_report
    from pixedfit.fitting.results import FitResult
    from pixedfit.pipeline import Pipeline

    pipe = Pipeline(report.parent.parent.parent / "demo.toml", quiet=True)
    for stage in ("images", "ifs", "binning", "models", "fitting", "maps"):
        getattr(pipe, stage)()  # all cached: nothing is recomputed
    assert pipe.ran == []
    reads = []
    original = FitResult.read.__func__

    def counting(cls, path):
        reads.append(path)
        return original(cls, path)

    monkeypatch.setattr(FitResult, "read", classmethod(counting))
    page = write_report(pipe, tmp_path / "again")
    nbins = len(list((report.parent.parent / "fitting").glob("bin*.h5")))
    assert nbins > 3 and len(reads) == 3  # the three example fits, not every bin
    assert page.read_text().count("<h3>Bin ") == 3
