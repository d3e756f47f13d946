"""Public names that load on first use (PEP 562), so that a command's ``--help``, ``--version``
and ``--list`` answer without importing torch (1.7 s) or timm (3.7 s)."""
from __future__ import annotations

import importlib
import sys


def lazy_exports(package: str, names: dict[str, str], modules: dict[str, str] | None = None):
    """``__getattr__`` and ``__dir__`` for ``package``: ``names`` maps each public name to the
    module (relative to the package) that defines it, ``modules`` a public name to a module that
    is the value itself. tests/test_architecture.py reads these tables as imports."""
    modules = modules or {}

    def __getattr__(name: str):
        if name in names:
            value = getattr(importlib.import_module(names[name], package), name)
        elif name in modules:
            value = importlib.import_module(modules[name], package)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names) | set(modules))

    return __getattr__, __dir__
