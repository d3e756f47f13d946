"""Published weights for bundled variants, fetched through their owners' own loaders.

| source | which variants | tags | where the file is cached |
|---|---|---|---|
| ``timm`` | the variants timm builds under the same name (``reference: [timm]``, parity-tested) | timm's pretrained tags (``resnet50.a1_in1k``); the default is timm's | the Hugging Face Hub cache (``HF_HOME/hub``), read with ``huggingface_hub`` |
| ``torchvision`` | the variants torchvision builds under the same name (``reference: [torchvision]``) | the ``Weights`` enum members (``IMAGENET1K_V2``); the default is ``DEFAULT`` | the torch.hub cache (``TORCH_HOME/hub/checkpoints``), read with ``Weights.get_state_dict`` |

A cached file is read without touching the network. A missing one is downloaded by the owning
library, unless the machine is offline (``HF_HUB_OFFLINE=1``, which resfam honours for both
sources, or the host does not resolve): then the error says at once where the file was looked
for. Files are read with
``weights_only=True`` or safetensors.
"""
from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from typing import Optional

from ..errors import CheckpointError, first_line, short_repr
from ..spec.registry import list_models, references

SOURCES = ("timm", "torchvision")
ALIASES = {"tv": "torchvision", "timm": "timm", "torchvision": "torchvision"}


class PretrainedError(CheckpointError):
    """Published weights that cannot be named, found or fetched."""


@dataclass(frozen=True)
class Weights:
    """One set of published weights for a resfam variant: ``source:tag``."""

    variant: str
    source: str  # timm | torchvision
    tag: str     # timm: 'resnet50.a1_in1k'; torchvision: 'ResNet50_Weights.IMAGENET1K_V2'

    def __str__(self) -> str:
        return f"{self.source}:{self.tag}"


def _timm_weights(variant: str) -> list[Weights]:
    if "timm" not in references(variant):
        return []
    import timm

    default = timm.models.get_pretrained_cfg(variant)
    tags = timm.list_pretrained(f"{variant}.*")
    first = f"{variant}.{default.tag}" if default is not None and default.tag else None
    ordered = ([first] if first in tags else []) + [t for t in tags if t != first]
    return [Weights(variant, "timm", t) for t in ordered]


def _torchvision_weights(variant: str) -> list[Weights]:
    if "torchvision" not in references(variant):
        return []
    import torchvision

    enum = torchvision.models.get_model_weights(variant)
    default = enum.DEFAULT
    members = [default] + [w for w in enum if w is not default]
    return [Weights(variant, "torchvision", f"{enum.__name__}.{w.name}") for w in members]


def published(variant: str) -> list[Weights]:
    """Every published weight set of a bundled variant, the default first (timm's, then
    torchvision's)."""
    return _timm_weights(variant) + _torchvision_weights(variant)


def list_pretrained(pattern: str = "*") -> list[str]:
    """``source:tag`` of every published weight set of the variants matching ``pattern``."""
    return [str(w) for name in list_models(pattern) for w in published(name)]


def resolve(variant: str, pretrained) -> Weights:
    """The weight set that ``pretrained`` names for ``variant``: True (the default), a source
    (``"timm"``, ``"torchvision"`` / ``"tv"``), or ``source:tag`` where the tag may be short
    (``"timm:a1_in1k"``, ``"tv:IMAGENET1K_V2"``) or full."""
    available = published(variant)
    if not available:
        have = [n for n in list_models() if published(n)]
        raise PretrainedError(f"{variant}: no published weights",
                              hint=f"variants with weights: {', '.join(have)}; or pass a local "
                                   "checkpoint path as pretrained=")
    if pretrained is True:
        return available[0]
    source, _, tag = str(pretrained).partition(":")
    source = ALIASES.get(source.lower())
    candidates = [w for w in available if w.source == source]
    if source is None or not candidates:
        raise PretrainedError(f"{variant}: no weights from {short_repr(pretrained)}",
                              hint="published: " + ", ".join(str(w) for w in available))
    if not tag:
        return candidates[0]
    for w in candidates:
        if tag in (w.tag, w.tag.split(".", 1)[-1]):
            return w
    raise PretrainedError(f"{variant}: no {source} weights tagged {short_repr(tag)}",
                          hint="published: " + ", ".join(str(w) for w in candidates))


# --- the owners' configs ----------------------------------------------------------------------

def pretrained_cfg(w: Weights) -> dict:
    """Preprocessing and provenance of a weight set, in timm's ``pretrained_cfg`` keys."""
    if w.source == "timm":
        import timm

        cfg = timm.models.get_pretrained_cfg(w.tag).to_dict()
        return dict(source="timm", tag=w.tag, mean=tuple(cfg["mean"]), std=tuple(cfg["std"]),
                    input_size=tuple(cfg["input_size"]), crop_pct=cfg["crop_pct"],
                    crop_mode=cfg.get("crop_mode", "center"), interpolation=cfg["interpolation"],
                    num_classes=cfg["num_classes"], license=cfg.get("license"),
                    hf_hub_id=cfg.get("hf_hub_id"), url=cfg.get("url") or None,
                    test_input_size=cfg.get("test_input_size"))
    import torchvision

    weights = torchvision.models.get_weight(w.tag)
    t = weights.transforms()
    crop, resize = t.crop_size[0], t.resize_size[0]
    return dict(source="torchvision", tag=w.tag, mean=tuple(t.mean), std=tuple(t.std),
                input_size=(3, crop, crop), crop_pct=round(crop / resize, 4), crop_mode="center",
                interpolation=t.interpolation.value, num_classes=len(weights.meta["categories"]),
                license="BSD-3-Clause (torchvision's weights; ImageNet's terms apply)",
                url=weights.url, recipe=weights.meta.get("recipe"))


# --- fetching ----------------------------------------------------------------------------------

def _resolves(host: str, seconds: float = 3.0) -> bool:
    """Whether ``host`` resolves within a few seconds (a DNS failure here is immediate)."""
    found: list = []

    def look():
        try:
            socket.getaddrinfo(host, 443)
            found.append(True)
        except OSError:
            pass

    t = threading.Thread(target=look, daemon=True)
    t.start()
    t.join(seconds)
    return bool(found)


def _hf_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _fetch_timm(w: Weights) -> dict:
    import timm
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache

    from .checkpoint import read_checkpoint

    cfg = timm.models.get_pretrained_cfg(w.tag)
    if not cfg.hf_hub_id:
        return _fetch_url(w, cfg.url)
    names = [cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]
    for name in names:
        path = try_to_load_from_cache(cfg.hf_hub_id, name)
        if isinstance(path, str):
            return read_checkpoint(path)
    where = os.path.join(constants.HF_HUB_CACHE, f"models--{cfg.hf_hub_id.replace('/', '--')}")
    if _hf_offline() or not _resolves("huggingface.co"):
        raise PretrainedError(f"{w}: not in the Hugging Face cache ({where}) and this machine is "
                              "offline", hint="set HF_HOME to a cache that holds it, or run once "
                              f"online: python -c \"import timm; timm.create_model('{w.tag}', "
                              "pretrained=True)\"")
    errors = []
    for name in names:
        try:
            return read_checkpoint(hf_hub_download(cfg.hf_hub_id, name))
        except CheckpointError:
            raise
        except Exception as e:  # noqa: BLE001 - the hub's errors, reported together
            errors.append(f"{name}: {first_line(e)}")
    raise PretrainedError(f"{w}: download from the Hugging Face Hub failed ({'; '.join(errors)})")


def _cached_url_file(url: str) -> str:
    import torch
    from urllib.parse import urlparse

    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(urlparse(url).path))


def _fetch_url(w: Weights, url: Optional[str], load=None) -> dict:
    from urllib.parse import urlparse

    import torch

    if not url:
        raise PretrainedError(f"{w}: its config names no file to fetch")
    cached = _cached_url_file(url)
    if not os.path.isfile(cached) and (_hf_offline() or not _resolves(urlparse(url).hostname or "")):
        raise PretrainedError(f"{w}: not in the torch.hub cache ({cached}) and this machine is "
                              "offline", hint="set TORCH_HOME to a cache that holds it, or run "
                              "once online")
    try:
        state = load() if load else torch.hub.load_state_dict_from_url(
            url, map_location="cpu", progress=False, weights_only=True)
    except Exception as e:  # noqa: BLE001 - unreadable or failed download: one resfam error
        first = first_line(e)
        raise PretrainedError(f"{w}: cannot load {cached} ({first})") from None
    if not isinstance(state, dict):
        raise PretrainedError(f"{w}: {cached} holds a {type(state).__name__}, not a state dict")
    return state


def fetch(w: Weights) -> dict:
    """The state dict of ``w``, from its owner's cache (or downloaded by its owner)."""
    if w.source == "timm":
        return _fetch_timm(w)
    import torchvision

    weights = torchvision.models.get_weight(w.tag)
    return _fetch_url(w, weights.url, load=lambda: weights.get_state_dict(
        progress=False, map_location="cpu", weights_only=True))
