"""``load_pretrained``: weights from a local timm / torchvision / official-iResNet checkpoint.

Nothing is downloaded here: the file is one the user already has (``resfam.build(name,
pretrained=...)`` fetches published weights through :mod:`resfam.weights.hub`, then loads them with
:func:`load_state`). ``.pth`` / ``.pt`` / ``.bin`` files
are read with ``torch.load(weights_only=True)`` (no pickled code runs), ``.safetensors`` with
safetensors. Keys are unwrapped (``state_dict`` / ``model`` wrappers, ``module.`` /
``backbone.`` prefixes) and renamed (:func:`resfam.convert_state_dict`). Every key and shape is
checked before any tensor is copied, so a file that does not fit leaves the model untouched.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Union

import torch
from torch import nn

from ..errors import ArgumentError, CheckpointError, first_line
from ..spec.schema import Spec
from .convert import convert_state_dict

HEAD_PREFIXES = ("fc.", "norm.")  # the classifier, and pre-activation nets' final norm


@dataclass
class LoadReport:
    """What a load did: ``missing`` keys kept their initial values, ``unexpected`` ones were
    ignored, ``dropped`` were left out on purpose (a classifier of another size), ``adapted``
    were converted (an RGB stem conv for another number of input channels), ``suspicious`` were
    loaded but hold values no trained network has (NaN, Inf, a negative running variance; each
    also a warning)."""

    path: str
    loaded: int
    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    dropped: list = field(default_factory=list)
    adapted: list = field(default_factory=list)  # stem conv adapted to another in_chans
    suspicious: list = field(default_factory=list)  # loaded, but NaN / Inf / a negative variance

    def __str__(self) -> str:
        parts = [f"{self.path}: loaded {self.loaded} tensors"]
        for name in ("missing", "unexpected", "dropped", "adapted", "suspicious"):
            keys = getattr(self, name)
            if keys:
                shown = ", ".join(keys[:6]) + (f" ... (+{len(keys) - 6})" if len(keys) > 6 else "")
                parts.append(f"{name} {len(keys)}: {shown}")
        return "; ".join(parts)


def read_checkpoint(path: Union[str, os.PathLike]) -> dict:
    """The raw mapping stored in ``path`` (safely)."""
    if not isinstance(path, (str, os.PathLike)):
        raise ArgumentError(f"a checkpoint path must be a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    if not isinstance(path, str):
        raise ArgumentError("a checkpoint path must be text, not bytes")
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    if not os.path.isfile(path):  # a FIFO or a device would block or never end
        raise CheckpointError(f"{path}: not a regular file")
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            return load_file(path, device="cpu")
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - every reader failure means the same to the user
        first = first_line(e)
        raise CheckpointError(f"{path}: cannot read the checkpoint ({first}); resfam reads .pth "
                              "files saved with torch.save(state_dict) and .safetensors files") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a state dict; save "
                              "model.state_dict() rather than the model")
    return state


def _unfit(key: str, value: torch.Tensor, own: torch.Tensor) -> str:
    """Why ``value`` cannot be copied into ``own`` ('' when it can)."""
    if value.shape != own.shape:
        return f"{key} {tuple(value.shape)} vs {tuple(own.shape)}"
    if value.layout != torch.strided or value.is_quantized:
        return f"{key} is a {value.layout} tensor" if value.layout != torch.strided else \
            f"{key} is quantized"
    if value.is_meta:
        return f"{key} has no data (a meta tensor)"
    if value.is_complex() or (own.is_floating_point() and not value.is_floating_point()) \
            or (not own.is_floating_point() and (value.is_floating_point() or value.dtype == torch.bool)):
        return f"{key} is {value.dtype} where the model has {own.dtype}"
    return ""


def _other_classes(value: torch.Tensor, own: torch.Tensor) -> bool:
    """A classifier tensor for another number of classes: the same shape but for dim 0 (the
    classes). A tensor of any other shape is not a classifier of this network's."""
    return value.ndim == own.ndim and value.ndim >= 1 and value.shape[1:] == own.shape[1:] \
        and value.shape[0] != own.shape[0]


def _suspicious(state: dict) -> list[str]:
    """Keys holding values no trained network has: NaN / Inf, or a negative running variance."""
    out = []
    for key, value in state.items():
        if not value.is_floating_point():
            continue
        if not bool(torch.isfinite(value).all()):
            out.append(f"{key} (NaN or Inf)")
        elif key.endswith("running_var") and bool((value < 0).any()):
            out.append(f"{key} (negative variance)")
    return out


def _resfam_spec(model) -> Spec:
    spec = getattr(model, "spec", None) if isinstance(model, nn.Module) else None
    if not isinstance(spec, Spec):
        raise ArgumentError(f"load_pretrained expects a resfam model (resfam.build), got "
                            f"{type(model).__name__}; for another library's model use its own "
                            "load_state_dict")
    return spec


def _adapt_input_conv(state: dict, own: dict) -> list[str]:
    """An RGB stem conv loaded into a model of another ``in_chans``: timm's
    ``adapt_input_conv`` (1 channel: the sum over RGB; more: RGB repeated and rescaled)."""
    from timm.models import adapt_input_conv

    key = next((k for k, v in own.items() if v.ndim == 4), None)  # the stem's first conv
    if key is None or key not in state or state[key].ndim != 4:
        return []
    have, want = state[key].shape, own[key].shape
    # an RGB conv only (timm's rule; another channel count stays a shape mismatch)
    if have == want or have[1] != 3 or have[0] != want[0] or have[2:] != want[2:]:
        return []
    state[key] = adapt_input_conv(want[1], state[key].float()).to(state[key].dtype)
    return [key]


def load_state(model: nn.Module, state: dict, label: str, strict: bool = True) -> LoadReport:
    """Load a checkpoint mapping (already read) into a resfam ``model``; see :func:`load_pretrained`.
    ``label`` names the checkpoint in messages (a path, or ``timm:resnet50.a1_in1k``)."""
    spec = _resfam_spec(model)
    if not isinstance(strict, bool):
        raise ArgumentError(f"strict must be True or False, got {type(strict).__name__}")
    state = convert_state_dict(state, model)
    own = model.state_dict()
    adapted = _adapt_input_conv(state, own)
    # stages a feature extractor does not build (past its last returned level)
    unbuilt = tuple(f"layer{i}." for i in range(len(model.stage_names) + 1, len(spec.stages) + 1))
    dropped = [k for k in state if k.startswith(unbuilt) or (k.startswith(HEAD_PREFIXES) and (
        k not in own or (k.startswith("fc.") and _other_classes(state[k], own[k]))))]
    for key in dropped:
        del state[key]
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")
               and not k.startswith(HEAD_PREFIXES)]
    unexpected = [k for k in state if k not in own and not k.endswith("num_batches_tracked")]
    wrong = [why for k in state if k in own for why in [_unfit(k, state[k], own[k])] if why]
    if wrong:
        shapes = all(" vs " in w for w in wrong)
        raise CheckpointError(f"{label}: {len(wrong)} tensors do not fit {spec.name}: "
                              f"{'; '.join(wrong[:4])}",
                              hint="is this a checkpoint of another variant?" if shapes else
                              "save dense float tensors that hold data (not sparse, meta, "
                              "quantized or complex ones)")
    if strict and (missing or unexpected):
        report = LoadReport(label, 0, missing, unexpected, dropped)
        raise CheckpointError(f"{report} -- the checkpoint is not {spec.name}'s; pass "
                              "strict=False to load the keys that match")
    state = {k: v for k, v in state.items() if k in own}
    suspicious = _suspicious(state)
    backup = {k: own[k].detach().clone() for k in state}
    try:
        model.load_state_dict(state, strict=False)
    except BaseException as e:  # Ctrl-C too: restore whatever was copied, then report or re-raise
        with torch.no_grad():
            for k, v in backup.items():
                own[k].copy_(v)
        if not isinstance(e, Exception):
            raise
        first = first_line(e)
        raise CheckpointError(f"{label}: loading failed ({first}); the model is unchanged") from None
    if suspicious:
        warnings.warn(f"{label}: loaded {len(suspicious)} tensors with values no trained network "
                      f"has: {', '.join(suspicious[:4])}", stacklevel=3)
    return LoadReport(label, len(state), missing, unexpected, dropped, adapted, suspicious)


def load_pretrained(model: nn.Module, path: Union[str, os.PathLike], strict: bool = True) -> LoadReport:
    """Load a local checkpoint into a resfam ``model``.

    The head is dropped (left at its initial values) where the model's differs: a classifier
    of another ``num_classes``, or a ``features_only`` model, which has no classifier and no
    final norm (nor the stages past its last returned level). An RGB checkpoint loads into a
    model of another ``in_chans`` through timm's ``adapt_input_conv``. With ``strict`` any other
    missing or unexpected key is an error
    naming the keys; with ``strict=False`` they are reported in the returned
    :class:`LoadReport`.

    All or nothing: every key, shape, dtype and layout is checked before the first tensor is
    copied, and should copying fail all the same, the model's previous values are restored.
    """
    _resfam_spec(model)
    state = read_checkpoint(path)
    return load_state(model, state, os.fspath(path), strict)
