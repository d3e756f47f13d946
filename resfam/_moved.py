"""Module paths from before the layered layout (docs/architecture.md), each failing on import with
one line that names where it went. ``resfam.detection``, the path README's detectors use, keeps
working: :mod:`resfam` aliases it to :mod:`resfam.integrations.torchvision`."""
from __future__ import annotations

import importlib.abc
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
        new = new_path(name)
        if new is None:
            return None
        what = ("resfam.compare is the function resfam.compare(); the resfam-compare package is "
                f"resfam.comparison: import {new}" if name.startswith("resfam.compare")
                else f"{name} moved to {new}")
        raise MovedModuleError(f"{what} (see docs/architecture.md)", name=name)


def install() -> None:
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
