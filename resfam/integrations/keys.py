"""State-dict keys in a detection framework's layout.

A framework's checkpoints name a ResNet's tensors its own way (mmdet's ``gn1`` and
``stem.0``, detectron2's ``res2.0.conv1.norm``). An adapter renames its keys once, from the
keys its modules actually hold: ``state_dict()`` then writes the framework's names, and
``load_state_dict`` reads them (the module's own names load too), so the framework's
checkpoints and its full-detector checkpoints load by name, with nothing missing silently.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Mapping

from torch import nn


def use_framework_keys(module: nn.Module, rename: Callable[[str], str]) -> dict[str, str]:
    """Make ``module``'s state dict use ``rename(key)`` for each of its keys; returns the map
    framework key -> module key (for checkpoints read outside ``load_state_dict``)."""
    forward = {k: rename(k) for k in module.state_dict()}
    forward = {k: v for k, v in forward.items() if k != v}
    inverse = {v: k for k, v in forward.items()}
    if len(inverse) != len(forward):
        raise ValueError("two keys would get the same framework name")

    def save(mod, state, prefix, _meta):
        if mod._resfam_own_keys:
            return
        for key in [k for k in state if k.startswith(prefix)]:  # in order: re-insert each
            local = key[len(prefix):]
            state[prefix + forward.get(local, local)] = state.pop(key)

    def load(mod, state, prefix, *_):
        for key in [k for k in state if k.startswith(prefix) and k[len(prefix):] in inverse]:
            state[prefix + inverse[key[len(prefix):]]] = state.pop(key)

    module._resfam_own_keys = False
    module.register_state_dict_post_hook(save)
    module.register_load_state_dict_pre_hook(load)
    return inverse


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
