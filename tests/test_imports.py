"""Light imports: each module loads only what it uses (issue 15, "a new user's path").

Checked in a fresh interpreter through ``sys.modules`` (import timing is measured in the
report, not asserted: it depends on the machine and its disk cache).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

HEAVY = ("pixedfit.images", "pixedfit.ifs.readers", "pixedfit.ifs.spatial",
         "pixedfit.ifs.matching", "reproject", "photutils", "sep", "matplotlib")


def _loaded(statement: str) -> set[str]:
    code = (f"import json, sys\n{statement}\n"
            "print(json.dumps(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=True)
    return set(json.loads(proc.stdout.splitlines()[-1]))


@pytest.mark.parametrize("statement", [
    "import pixedfit.fitting",
    "from pixedfit.fitting import fit_sed, fit_catalog, PriorSet",
    "import pixedfit.library",
    "from pixedfit.library import read_library, generate_library",
    "from pixedfit.sps import SEDModel",
    "from pixedfit.analysis import maps_parameters",
])
def test_fitting_and_models_do_not_load_images_or_ifs(statement):
    loaded = _loaded(statement)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_every_fitting_module_loads_neither_images_nor_ifs():
    """The fitting layer sits below images and IFS matching (docs/architecture.md): none of
    its modules, imported all together, loads either package."""
    loaded = _loaded("import pkgutil, importlib, pixedfit.fitting as f\n"
                     "for m in pkgutil.iter_modules(f.__path__, 'pixedfit.fitting.'):\n"
                     "    importlib.import_module(m.name)")
    assert "pixedfit.fitting.drivers" in loaded and "pixedfit.fitting.nested" in loaded
    bad = sorted(m for m in loaded
                 if m.split(".")[:2] in (["pixedfit", "images"], ["pixedfit", "ifs"]))
    assert not bad, bad


def test_help_runs_within_a_second():
    """``pixedfit --help`` (issue 16: < 1 s; ≈ 0.15 s measured, the interpreter's start
    included). Best of three runs, so that a busy machine's one slow start does not fail it."""
    times = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pixedfit.cli", "--help"], capture_output=True,
                       timeout=60, check=True)
        times.append(time.perf_counter() - start)
    assert min(times) < 1.0, times


def test_cli_parser_imports_no_science_stack():
    loaded = _loaded("from pixedfit.cli import build_parser\nbuild_parser()")
    heavy = {"numpy", "astropy", "scipy", "h5py", "matplotlib", "pixedfit.fitting", "pixedfit.sps",
             "pixedfit.library", "pixedfit.images", "pixedfit.ifs"}
    assert not loaded & heavy, sorted(loaded & heavy)


def test_lazy_names_resolve_to_the_submodule_objects():
    import pixedfit.analysis as analysis
    import pixedfit.fitting as fitting
    import pixedfit.ifs as ifs
    import pixedfit.images as images
    import pixedfit.sps as sps
    from pixedfit.fitting.drivers import fit_sed
    from pixedfit.fitting.rdsps import rdsps

    for pkg in (analysis, fitting, ifs, images, sps):
        for name in pkg.__all__:
            assert getattr(pkg, name) is not None
        assert set(pkg.__all__) <= set(dir(pkg))
        with pytest.raises(AttributeError, match="no_such_name"):
            pkg.no_such_name  # noqa: B018
    assert fitting.fit_sed is fit_sed
    # the function, not the submodule of the same name
    assert fitting.rdsps is rdsps and callable(fitting.rdsps)
