"""numpydoc parameters: every public function and method with two or more parameters documents
each of them in a ``Parameters`` section.

Public: names not starting with ``_`` (function, method and every part of the module path),
defined in the module that is walked (not re-exported). ``pixedfit.compat`` is left out: its
wrappers keep piXedfit's names and point to piXedfit's documentation. ``self`` and ``cls``
do not count; ``*args`` / ``**kwargs`` may be documented as ``*args`` / ``**kwargs``.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Callable, Iterator

import pytest

import pixedfit

EXCLUDED = {"pixedfit.compat"}

_SECTION = re.compile(r"^\s*([A-Z][A-Za-z ]+)\n\s*-{3,}\s*$", re.MULTILINE)


def public_modules() -> list[str]:
    """Every public module of the package (no part of its name starts with ``_``)."""
    names = ["pixedfit"]
    for info in pkgutil.walk_packages(pixedfit.__path__, "pixedfit."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        if info.name not in EXCLUDED:
            names.append(info.name)
    return sorted(names)


def public_callables(module_name: str) -> Iterator[tuple[str, Callable[..., object]]]:
    """(qualified name, function) of the public functions and methods defined in a module."""
    module = importlib.import_module(module_name)
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or getattr(obj, "__module__", None) != module_name:
            continue
        if inspect.isfunction(obj):
            yield name, obj
        elif inspect.isclass(obj):
            for mname, member in sorted(vars(obj).items()):
                if mname.startswith("_"):
                    continue
                if isinstance(member, staticmethod | classmethod):
                    member = member.__func__
                if inspect.isfunction(member):
                    yield f"{name}.{mname}", member


def parameter_names(func: Callable[..., object]) -> list[str]:
    """The parameters to document, as numpydoc writes them (``*args``, ``**kwargs``)."""
    out = []
    for p in inspect.signature(func).parameters.values():
        if p.name in ("self", "cls"):
            continue
        prefix = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        out.append(prefix + p.name)
    return out


def documented_parameters(doc: str) -> set[str] | None:
    """Names listed in the numpydoc ``Parameters`` section (None without one)."""
    doc = inspect.cleandoc(doc)
    sections = list(_SECTION.finditer(doc))
    for i, m in enumerate(sections):
        if m.group(1).strip() != "Parameters":
            continue
        end = sections[i + 1].start() if i + 1 < len(sections) else len(doc)
        names: set[str] = set()
        for line in doc[m.end():end].splitlines():
            if not line.strip() or line.startswith((" ", "\t")):
                continue  # blank, or a description (indented under its name)
            head = line.split(" : ", 1)[0].strip()
            for name in head.split(","):
                names.add(name.strip())
        return names
    return None


def missing_parameters(func: Callable[..., object]) -> list[str] | None:
    """The parameters of ``func`` its docstring does not document (None: nothing to check,
    fewer than two parameters)."""
    params = parameter_names(func)
    if len(params) < 2:
        return None
    documented = documented_parameters(func.__doc__ or "")
    if documented is None:
        return params
    return [p for p in params if p not in documented and p.lstrip("*") not in documented]


def undocumented(module_names: list[str] | tuple[str, ...]) -> dict[str, list[str]]:
    """Qualified name → missing parameters, over the modules."""
    out = {}
    for module_name in module_names:
        for name, func in public_callables(module_name):
            missing = missing_parameters(func)
            if missing:
                out[f"{module_name}.{name}"] = missing
    return out


def coverage(module_names: list[str] | tuple[str, ...]) -> tuple[int, int]:
    """(functions with every parameter documented, functions with >= 2 parameters)."""
    total = complete = 0
    for module_name in module_names:
        for _, func in public_callables(module_name):
            missing = missing_parameters(func)
            if missing is None:
                continue
            total += 1
            complete += not missing
    return complete, total


def test_public_modules_are_walked():
    names = public_modules()
    assert {"pixedfit.fitting.drivers", "pixedfit.sps.model", "pixedfit.cubes.flux"} <= set(names)
    assert "pixedfit.compat" not in names and not any("._" in n for n in names)


@pytest.mark.parametrize("module_name", public_modules())
def test_parameters_documented(module_name):
    missing = undocumented([module_name])
    assert not missing, "undocumented parameters:\n" + "\n".join(
        f"  {name}: {', '.join(params)}" for name, params in missing.items())


def test_section_parser():
    def f(a, b, *args, c=1, **kwargs):
        """Summary.

        Parameters
        ----------
        a, b : float
            Two numbers.
        *args
            More.
        c : int, optional
            A count.

            Still about c.
        **kwargs
            Options.

        Returns
        -------
        d : float
        """

    def g(a, b):
        """Summary without sections."""

    def h(x, y):
        """Summary.

        Parameters
        ----------
        x : float
        """

    assert missing_parameters(f) == []
    assert missing_parameters(g) == ["a", "b"]
    assert missing_parameters(h) == ["y"]
    assert missing_parameters(lambda self, x: x) is None


#: Most positional-or-keyword parameters a public function or constructor may take: the
#: rest are keyword-only (options by name, or option objects; issue 16).
MAX_POSITIONAL = 10


def positional_count(func: Callable[..., object]) -> int:
    """Parameters that may be passed by position (``self``/``cls`` not counted)."""
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
               and p.name not in ("self", "cls")
               for p in inspect.signature(func).parameters.values())


def too_many_positional(module_name: str) -> dict[str, int]:
    """Public functions, methods and class constructors of a module over the limit."""
    module = importlib.import_module(module_name)
    found = dict(public_callables(module_name))
    for name, obj in vars(module).items():
        if (inspect.isclass(obj) and not name.startswith("_")
                and obj.__module__ == module_name and "__init__" in vars(obj)):
            found[f"{name}.__init__"] = obj.__init__  # dataclasses' generated ones too
    return {name: n for name, func in found.items()
            if (n := positional_count(func)) > MAX_POSITIONAL}


@pytest.mark.parametrize("module_name", public_modules())
def test_few_positional_parameters(module_name):
    assert too_many_positional(module_name) == {}


def test_positional_count_sees_dataclass_constructors():
    import dataclasses

    @dataclasses.dataclass
    class Wide:
        a: int = 0
        b: int = 0

    @dataclasses.dataclass(kw_only=True)
    class Narrow:
        a: int = 0
        b: int = 0

    assert positional_count(Wide.__init__) == 2 and positional_count(Narrow.__init__) == 0
