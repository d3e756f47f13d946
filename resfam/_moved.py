"""Module paths from before the layered layout (docs/architecture.md), each failing on import with
one line that names where it went. ``resfam.detection``, the path README's detectors use, keeps
working: it is :mod:`resfam.integrations.torchvision` under a second name (:data:`ALIASES`)."""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

_PRIMITIVES = ("layers", "norms", "antialias", "stems", "shortcuts", "attention", "merges",
               "orders", "selective_kernel", "split_attention", "blocks")
MOVED = {
    **{f"resfam.{m}": f"resfam.primitives.{m}" for m in _PRIMITIVES},
    "resfam.registry": "resfam.spec.registry",
    "resfam.build_args": "resfam.spec.build_args",
    "resfam.spec_doc": "resfam.spec.reference",
    "resfam.size": "resfam.network.size",
    "resfam.features": "resfam.network.features",
    "resfam.inference": "resfam.network.inference",
    "resfam.hub": "resfam.weights.hub",
    "resfam.pretrained": "resfam.weights.checkpoint",
    "resfam.convert": "resfam.weights.convert",
    "resfam.finetune": "resfam.trainability.finetune",
    "resfam.compare": "resfam.comparison",
}

ALIASES = {"resfam.detection": "resfam.integrations.torchvision"}


class MovedModuleError(ModuleNotFoundError):
    """An import of a module path that moved (a ModuleNotFoundError, so ``except ImportError``
    still catches it)."""


def new_path(name: str) -> str | None:
    """Where the old module ``name`` (or a submodule of one) lives now; None if it never moved."""
    for old, new in MOVED.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old):]
    return None


class _MovedFinder(importlib.abc.MetaPathFinder):
    """Last on ``sys.meta_path``: consulted only for a resfam module no other finder found."""

    def find_spec(self, name, path=None, target=None):
        if name in ALIASES:
            return importlib.util.spec_from_loader(name, _AliasLoader(ALIASES[name]))
        new = new_path(name)
        if new is None:
            return None
        what = ("resfam.compare is the function resfam.compare(); the resfam-compare package is "
                f"resfam.comparison: import {new}" if name.startswith("resfam.compare")
                else f"{name} moved to {new}")
        raise MovedModuleError(f"{what} (see docs/architecture.md)", name=name)


class _AliasLoader(importlib.abc.Loader):
    """Imports a module under a second name: both names give the same module object."""

    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        return importlib.import_module(self.target)

    def exec_module(self, module) -> None:  # the target's import ran its code
        pass


def install() -> None:
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
