"""Lazy public names of a package: ``__getattr__``/``__dir__`` that import on first use.

A package ``__init__`` lists ``name -> submodule`` and gets a module ``__getattr__`` (PEP 562)
that imports the submodule only when the name is first asked for, so that importing one
module of a package (``pixedfit.fitting.rdsps``, ``pixedfit.lines``) does not import
all its siblings and their heavy dependencies (reproject, photutils, matplotlib, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(package: str, names: Mapping[str, str]
                    ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` whose public ``names`` live in
    submodules.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    names : mapping
        Public name → submodule (relative to ``package``, without the dot), or an absolute
        module name starting with ``pixedfit.`` for a name re-exported from a lower layer.

    Returns
    -------
    getattr, dir : callables
        Assign them to the package's ``__getattr__`` and ``__dir__``.
    """
    table = dict(names)

    def __getattr__(name: str) -> Any:  # noqa: N807 - the PEP 562 hook
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        if not module.startswith("pixedfit."):
            module = f"{package}.{module}"
        return getattr(import_module(module), name)

    def __dir__() -> list[str]:  # noqa: N807 - the PEP 562 hook
        pkg = import_module(package)
        return sorted(set(vars(pkg)) | set(table))

    return __getattr__, __dir__
