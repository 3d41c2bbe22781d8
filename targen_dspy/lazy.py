"""Package exports imported at first use (PEP 562), so that importing one light submodule of a package
(a constant for the command line) does not import DSPy through the package's `__init__`: `targen --help`
would otherwise spend seconds of CPU importing what it never uses."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, modules: Mapping[str, tuple[str, ...]]
) -> tuple[Callable[[str], Any], list[str]]:
    """`__getattr__` for `package` answering each name in `modules` (submodule -> names) from its
    submodule, imported then, and the package's `__all__`."""
    where = {name: f"{package}.{module}" for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(where[name]), name)

    return __getattr__, sorted(where)
