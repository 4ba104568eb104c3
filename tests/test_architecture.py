"""The package's layers (docs/architecture.md), checked on the code itself.

* Imports run downward only: the import-linter contract in ``pyproject.toml`` (every
  import, including those inside functions, and indirect chains).
* No import cycle between any two modules (a cycle between modules of one package is how
  "import inside a function to dodge a loop" starts).
* No private name crosses a component: ``_name`` objects and ``_module`` modules are used
  only inside the component (top-level module or subpackage) that defines them. The
  package-wide toolkit (``pixedfit._core``, ``_paths``, ``_fits``, ``_lazy``) is private to
  ``pixedfit`` as a whole and may be used by every component.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import pixedfit

PACKAGE = Path(pixedfit.__file__).parent
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
TOOLKIT = {"pixedfit._core", "pixedfit._paths", "pixedfit._fits", "pixedfit._lazy"}


def _module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, package_dir: Path = PACKAGE) -> Iterator[tuple[int, str, str | None]]:
    """(line, absolute module, imported name or None) of every import in ``path``, those
    inside functions included."""
    name = _module_name(path, package_dir)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                yield node.lineno, module, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, None


def _modules(package: Path = PACKAGE) -> dict[str, Path]:
    return {_module_name(p, package): p for p in sorted(package.rglob("*.py"))}


def _component(module: str) -> str:
    """``pixedfit.fitting.adaptive`` → ``pixedfit.fitting``; ``pixedfit.units`` itself."""
    return ".".join(module.split(".")[:2])


def _resolve(module: str, name: str | None, modules: dict[str, Path]) -> str:
    """The module an import refers to (``from pkg import submodule`` → the submodule)."""
    if name is not None and f"{module}.{name}" in modules:
        return f"{module}.{name}"
    return module


def find_cycle(package: Path = PACKAGE) -> list[str] | None:
    """An import cycle between modules of ``package`` (package inits aside: they re-export
    their submodules lazily, by name), or None."""
    modules = _modules(package)
    graph: dict[str, list[str]] = {}
    for module, path in modules.items():
        targets = set()
        if path.name != "__init__.py":
            for _, target, name in _imports(path, package):
                target = _resolve(target, name, modules)
                if (target in modules and target != module
                        and modules[target].name != "__init__.py"):
                    targets.add(target)
        graph[module] = sorted(targets)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in graph:
        if root in state:
            continue
        state[root] = 1
        path = [root]
        stack = [iter(graph[root])]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(child) == 1:
                return [*path[path.index(child):], child]
            elif child not in state:
                state[child] = 1
                path.append(child)
                stack.append(iter(graph[child]))
    return None


def private_crossings(package: Path = PACKAGE) -> list[str]:
    """Imports of a private module or name from another component of ``package``."""
    modules = _modules(package)
    top = package.name
    toolkit = {f"{top}.{m.split('.', 1)[1]}" for m in TOOLKIT}
    found = []
    for module, path in modules.items():
        own = _component(module)
        for line, target, name in _imports(path, package):
            if not target.startswith(top) or f"{target}.{name}" in toolkit:
                continue
            target = _resolve(target, name, modules)
            if _component(target) == own or target in toolkit:
                continue
            private_module = any(part.startswith("_") and not part.startswith("__")
                                 for part in target.split(".")[1:])
            private_name = (name is not None and name.startswith("_")
                            and not name.startswith("__") and f"{target}.{name}" not in modules)
            if private_module or private_name:
                found.append(f"{path.relative_to(package.parent)}:{line}: "
                             f"{target}{'.' + name if private_name else ''}")
    return found


def test_layers_import_downward_only(capsys):
    from importlinter.cli import lint_imports

    if not PYPROJECT.exists():
        pytest.skip("pyproject.toml not found next to the tests (run from the source tree)")
    code = lint_imports(config_filename=str(PYPROJECT), no_cache=True, no_logo=True)
    assert code == 0, capsys.readouterr().out


def test_no_import_cycle_between_modules():
    cycle = find_cycle()
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_private_name_crosses_a_component():
    found = private_crossings()
    assert not found, "private names used across components:\n" + "\n".join(found)


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root / "pkg"


def test_the_checks_catch_violations_inside_functions(tmp_path):
    pkg = _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/_paths.py": "",
        "pkg/fit/__init__.py": "from .a import f\n",
        "pkg/fit/a.py": "from .b import g\n\ndef f():\n    return g\n",
        "pkg/fit/b.py": "def g():\n    from .a import f  # dodging the loop\n    return f\n",
        "pkg/img/__init__.py": "",
        "pkg/img/_checks.py": "def as_image():\n    pass\n",
        "pkg/img/ok.py": ("from ._checks import as_image\nfrom .._paths import x\n"
                          "from .. import _core\n"),
        "pkg/ifs.py": "def r():\n    from .img._checks import as_image\n"
                      "    from .img.ok import _hidden\n",
    })
    assert find_cycle(pkg) == ["pkg.fit.a", "pkg.fit.b", "pkg.fit.a"]
    found = private_crossings(pkg)
    assert found == ["pkg/ifs.py:2: pkg.img._checks", "pkg/ifs.py:3: pkg.img.ok._hidden"]
