"""State-dict keys and module names in a detection framework's layout.

A framework's checkpoints name a ResNet's tensors its own way (mmdet's ``gn1`` and
``stem.0``, detectron2's ``res2.0.conv1.norm``). An adapter renames its keys once, from the
keys its modules actually hold: ``state_dict()`` then writes the framework's names, and
``load_state_dict`` reads them (the resfam names load too), so the framework's checkpoints and
its full-detector checkpoints load by name, with nothing missing silently.

Where a framework's configs match *parameter names* (mmengine's ``paramwise_cfg.custom_keys``
reads module paths), an adapter can also register modules under the framework's names
(:func:`rename_children`); their resfam names stay what :func:`own_keys` writes.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Callable, Mapping, Optional

from torch import nn


def use_framework_keys(module: nn.Module, rename: Callable[[str], str],
                       own: Optional[Callable[[str], str]] = None) -> dict[str, str]:
    """Make ``module``'s state dict use ``rename(key)`` for each of its keys, and, inside
    :func:`own_keys`, ``own(key)`` (the resfam name of a tensor the module holds under another
    path; default: the key itself). Both spellings load. Returns the map framework key ->
    resfam key (for checkpoints read outside ``load_state_dict``)."""
    keys = list(module.state_dict())
    forward = {k: rename(k) for k in keys}
    owned = {k: own(k) for k in keys} if own else {k: k for k in keys}
    to_module: dict[str, str] = {}
    for mapping in (forward, owned):
        for k, name in mapping.items():
            if to_module.setdefault(name, k) != k:
                raise ValueError(f"two keys would get the same name {name!r}")

    def save(mod, state, prefix, _meta):
        names = owned if mod._resfam_own_keys else forward
        for key in [k for k in state if k.startswith(prefix)]:  # in order: re-insert each
            local = key[len(prefix):]
            state[prefix + names.get(local, local)] = state.pop(key)

    def load(mod, state, prefix, *_):
        for key in [k for k in state if k.startswith(prefix)]:
            local = key[len(prefix):]
            if to_module.get(local, local) != local:
                state[prefix + to_module[local]] = state.pop(key)

    module._resfam_own_keys = False
    module.register_state_dict_post_hook(save)
    module.register_load_state_dict_pre_hook(load)
    return {forward[k]: owned[k] for k in keys}


@contextlib.contextmanager
def own_keys(module: nn.Module):
    """While active, ``module.state_dict()`` uses the module's own (resfam) names."""
    module._resfam_own_keys = True
    try:
        yield module
    finally:
        module._resfam_own_keys = False


def to_module_keys(state: Mapping, inverse: Mapping[str, str]) -> dict:
    """A checkpoint's keys in the framework's names, renamed to the module's own."""
    return {inverse.get(k, k): v for k, v in state.items()}


def rename_children(module: nn.Module, renames: Mapping[str, str]) -> None:
    """Register children of ``module`` under other names (``{old: new}``, order kept):
    ``state_dict``, ``named_parameters`` and ``named_children`` use the new names, and the
    module's code still reads ``self.old`` (its class becomes a subclass that resolves the old
    names; modules not renamed keep their class and its speed)."""
    renames = {old: new for old, new in renames.items() if old in module._modules}
    if not renames:
        return
    if not getattr(type(module), "_resfam_aliased", False):
        module.__class__ = _aliased(type(module))
    module._modules = {renames.get(k, k): v for k, v in module._modules.items()}
    module.__dict__.setdefault("_resfam_aliases", {}).update(renames)


@functools.lru_cache(maxsize=None)
def _aliased(cls: type) -> type:
    def __getattr__(self, name):
        return super(sub, self).__getattr__(self.__dict__.get("_resfam_aliases", {}).get(name, name))

    sub = type(cls.__name__, (cls,), {"__getattr__": __getattr__, "_resfam_aliased": True,
                                      "__module__": cls.__module__, "__qualname__": cls.__qualname__})
    return sub


def own_names(root: nn.Module, before: Mapping[int, str]) -> Callable[[str], str]:
    """``key -> its resfam key`` after modules moved: ``before`` maps ``id(module)`` to its path
    before (from ``named_modules``); a key is renamed by the longest module path holding it."""
    moved = {name: before[id(mod)] for name, mod in root.named_modules() if name and id(mod) in before
             and before[id(mod)] != name}

    def own(key: str) -> str:
        parts = key.split(".")
        for i in range(len(parts) - 1, 0, -1):
            path = ".".join(parts[:i])
            if path in moved:
                return ".".join([moved[path], *parts[i:]])
        return key
    return own
