"""``resfam.build``: a spec reference in, an ``nn.Module`` out (with published or local weights
when asked); ``resfam.list_models``: the names it builds.

The top of the library's core: it joins the spec layer (what a network is), the network layer
(the module) and the weights layer (what it starts from)."""
from __future__ import annotations

import os
from typing import Iterable, Optional, Union

from .errors import BuildArgumentError, did_you_mean, short_repr
from .network.model import ResFamNet
from .network.size import check_size
from .spec import registry
from .spec.build_args import ARG_NAMES, check_build_args
from .spec.registry import SpecRef, get_spec
from .weights import hub
from .weights.checkpoint import load_state, read_checkpoint

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".ckpt")
Pretrained = Union[bool, str, os.PathLike, None]


def _is_local(pretrained) -> bool:
    if isinstance(pretrained, os.PathLike):
        return True
    text = str(pretrained)
    return text.endswith(CHECKPOINT_SUFFIXES) or "/" in text or os.sep in text


def build(ref: SpecRef, pretrained: Pretrained = False, **kwargs) -> ResFamNet:
    """Build a variant: a registered name (``"resnext50_32x4d"``), a spec file (``"my.yaml"`` or
    ``"my.yaml:variant"``), a spec mapping, or a resolved Spec.

    ``pretrained``: False (random init); True (the variant's default published weights: timm's,
    else torchvision's); a source (``"timm"``, ``"torchvision"``/``"tv"``); a tag
    (``"timm:resnet50.a1_in1k"``, ``"tv:IMAGENET1K_V2"``); or a local checkpoint path. Published
    weights come through timm's / torchvision's own caches (:mod:`resfam.weights.hub`) and are
    loaded strictly (a classifier of another ``num_classes`` is left out; an RGB stem adapts to
    another ``in_chans``). The model's ``pretrained_cfg`` then says the weights' preprocessing
    (:func:`resfam.data_config`) and its ``load_report`` what was loaded.

    Keyword arguments are :class:`resfam.ResFamNet`'s: ``num_classes``, ``in_chans``,
    ``drop_rate``, ``drop_path_rate``, ``zero_init_last``, ``output_stride``, ``features_only``,
    ``out_indices``, ``as_dict``, ``frozen_stages``, ``norm_eval``, ``norm_layer``,
    ``max_param_bytes``, ``max_blocks``. The spec and every argument are checked, the network's
    size counted and the weights fetched before the network is allocated.
    """
    spec = get_spec(ref)
    unknown = [k for k in kwargs if k not in ARG_NAMES]
    if unknown:
        hint = did_you_mean(unknown[0], ARG_NAMES + ("pretrained",)) or f"accepted: {', '.join(ARG_NAMES)}"
        raise BuildArgumentError("unknown argument", variant=spec.name, key=unknown[0], hint=hint)
    if pretrained is None or pretrained is False:
        return ResFamNet(spec, **kwargs)
    _check_pretrained_type(spec, pretrained)
    check_size(spec, check_build_args(spec, kwargs), ResFamNet.skeleton)  # before any download
    if pretrained is not True and _is_local(pretrained):
        label, cfg, state = os.fspath(pretrained), None, read_checkpoint(pretrained)
    else:
        weights = hub.resolve(spec.name, pretrained)
        label, cfg, state = str(weights), hub.pretrained_cfg(weights), hub.fetch(weights)
    model = ResFamNet(spec, **kwargs)
    model.load_report = load_state(model, state, label, strict=True)
    if cfg is not None:
        model.pretrained_cfg = dict(cfg, num_classes=model.num_classes)
    else:
        model.pretrained_cfg = dict(model.pretrained_cfg, source="file", tag=label)
    return model


def _check_pretrained_type(spec, pretrained) -> None:
    if not isinstance(pretrained, (bool, str, os.PathLike)):
        raise BuildArgumentError(f"should be a bool, a source, a tag or a path, got "
                                 f"{short_repr(pretrained)}", variant=spec.name, key="pretrained",
                                 hint="True, 'timm', 'torchvision', 'timm:resnet50.a1_in1k' or "
                                      "'weights.pth'")


def check_pretrained(ref: SpecRef, pretrained: Pretrained) -> None:
    """What :func:`build` would refuse about ``pretrained``, found before anything is built (a
    study checks it before its first run): a local file that is not a readable checkpoint, a
    source or tag without published weights for the variant."""
    if pretrained is None or pretrained is False:
        return
    spec = get_spec(ref)
    _check_pretrained_type(spec, pretrained)
    if pretrained is not True and _is_local(pretrained):
        read_checkpoint(pretrained)
    else:
        hub.resolve(spec.name, pretrained)


def list_models(pattern: Union[str, Iterable[str]] = "*", family: Optional[str] = None,
                pretrained: bool = False, reference: Optional[str] = None) -> list[str]:
    """Sorted registered names matching any of the fnmatch ``pattern``s, of ``family``, built
    under the same name by ``reference`` (``"timm"``, ``"torchvision"``)
    (:func:`resfam.spec.registry.list_models`); with ``pretrained``, only those with published
    weights (:func:`resfam.weights.hub.published`)."""
    names = registry.list_models(pattern, family=family, reference=reference)
    return [n for n in names if hub.published(n)] if pretrained else names
