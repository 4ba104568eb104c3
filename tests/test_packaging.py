"""The repository a new user clones: README commands, test requirements, licence."""

from __future__ import annotations

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def _requirements() -> list[str]:
    lines = (ROOT / "requirements-test.txt").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def test_test_requirements_equal_the_test_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert sorted(_requirements()) == sorted(project["optional-dependencies"]["test"])


def test_readme_commands_are_the_ones_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    cmd1 = [ln for ln in readme.splitlines() if re.match(r"^pip install \. ", ln)]
    cmd2 = [ln for ln in readme.splitlines()
            if re.match(r"^pip install -r requirements-test\.txt", ln)]
    assert cmd1 and cmd2
    # command 2 installs the test tools only: it does not build the package again
    assert cmd2[0] == "pip install -r requirements-test.txt && pytest -n auto"
    assert "\\[test\\]" not in ci and "requirements-test" in ci and "ctest" in ci
    assert not any(re.match(r'^pip install "\.\[test\]"', ln) for ln in readme.splitlines())


def test_licence_file_matches_the_metadata():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"]["text"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
