"""``load_pretrained``: weights from a local timm / torchvision / official-iResNet checkpoint.

Nothing is downloaded: the file is one the user already has. ``.pth`` / ``.pt`` / ``.bin`` files
are read with ``torch.load(weights_only=True)`` (no pickled code runs), ``.safetensors`` with
safetensors. Keys are unwrapped (``state_dict`` / ``model`` wrappers, ``module.`` /
``backbone.`` prefixes) and renamed (:func:`resfam.convert_state_dict`). Every key and shape is
checked before any tensor is copied, so a file that does not fit leaves the model untouched.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Union

import torch
from torch import nn

from .convert import convert_state_dict
from .errors import CheckpointError

HEAD_PREFIXES = ("fc.", "norm.")  # the classifier, and pre-activation nets' final norm


@dataclass
class LoadReport:
    """What a load did: ``missing`` keys kept their initial values, ``unexpected`` ones were
    ignored, ``dropped`` were left out on purpose (a classifier of another size)."""

    path: str
    loaded: int
    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    dropped: list = field(default_factory=list)

    def __str__(self) -> str:
        parts = [f"{self.path}: loaded {self.loaded} tensors"]
        for name in ("missing", "unexpected", "dropped"):
            keys = getattr(self, name)
            if keys:
                shown = ", ".join(keys[:6]) + (f" ... (+{len(keys) - 6})" if len(keys) > 6 else "")
                parts.append(f"{name} {len(keys)}: {shown}")
        return "; ".join(parts)


def read_checkpoint(path: Union[str, os.PathLike]) -> dict:
    """The raw mapping stored in ``path`` (safely)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            return load_file(path, device="cpu")
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - every reader failure means the same to the user
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: cannot read the checkpoint ({first}); resfam reads .pth "
                              "files saved with torch.save(state_dict) and .safetensors files") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a state dict; save "
                              "model.state_dict() rather than the model")
    return state


def load_pretrained(model: nn.Module, path: Union[str, os.PathLike], strict: bool = True) -> LoadReport:
    """Load a local checkpoint into a resfam ``model``.

    The head is dropped (left at its initial values) where the model's differs: a classifier
    of another ``num_classes``, or a ``features_only`` model, which has no classifier and no
    final norm. With ``strict`` any other
    missing or unexpected key is an error naming the keys; with ``strict=False`` they are
    reported in the returned :class:`LoadReport`.
    """
    path = os.fspath(path)
    state = convert_state_dict(read_checkpoint(path), model)
    own = model.state_dict()
    dropped = [k for k in state if k.startswith(HEAD_PREFIXES)
               and (k not in own or own[k].shape != state[k].shape)]
    for key in dropped:
        del state[key]
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")
               and not k.startswith(HEAD_PREFIXES)]
    unexpected = [k for k in state if k not in own and not k.endswith("num_batches_tracked")]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in state
             if k in own and state[k].shape != own[k].shape]
    if wrong:
        raise CheckpointError(f"{path}: {len(wrong)} tensors do not fit {model.spec.name}: "
                              f"{'; '.join(wrong[:4])}; is this a checkpoint of another variant?")
    if strict and (missing or unexpected):
        report = LoadReport(path, 0, missing, unexpected, dropped)
        raise CheckpointError(f"{report} -- the checkpoint is not {model.spec.name}'s; pass "
                              "strict=False to load the keys that match")
    state = {k: v for k, v in state.items() if k in own}
    model.load_state_dict(state, strict=False)
    return LoadReport(path, len(state), missing, unexpected, dropped)
