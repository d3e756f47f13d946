"""resfam backbones in mmdetection 3.x (via mmengine's registry).

Override the backbone of any stock config::

    _base_ = "mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py"
    custom_imports = dict(imports=["resfam.integrations.mmdet"], allow_failed_imports=False)
    model = dict(backbone=dict(type="ResFamBackbone", arch="res2net50_26w_4s",
                               init_cfg=dict(type="Pretrained", checkpoint="res2net50.pth")))

mmengine merges the base config's ResNet keys (``depth=50``, ``norm_cfg``, ``norm_eval``,
``style``, ``init_cfg``, ...) into this dict, so the adapter takes mmdet ResNet's whole argument
list, with mmdet's defaults (``norm_eval=True``, ``zero_init_residual=True``), and ResNeXt's and
Res2Net's (``groups``, ``base_width``, ``scales``: accepted where they agree with the arch, an
error where they do not). What the arch decides (``depth``, ``base_channels``,
``stem_channels``) is ignored with a warning where it disagrees; what resfam cannot build
(``dcn``, ``plugins``, a ``conv_cfg`` other than plain convs) is an error. ``_delete_=True`` in
the backbone dict drops the inherited keys instead.

mmdet's Res2Net differs from the official one (and timm's, and resfam's): the first block of
layer1 passes its last split through instead of pooling it. ``stage_pool="strided"`` builds
mmdet's; a checkpoint in mmdet's Res2Net layout (``stem.*`` with ``convs``) is refused unless
``stage_pool`` says which network it is for. C4 (``num_stages=3``): the shared head is
``ResFamResLayer`` (below), the arch's own last stage.

The rest means what it means in mmdet: ``out_indices`` count stages from 0 (layer1) and no stage
past the last is built; ``num_stages``, ``strides`` and ``dilations`` (every block of a dilated
stage, its first included); ``frozen_stages``; ``norm_cfg`` (BN / SyncBN / GN with
``num_groups``; ``requires_grad=False`` freezes only the affine terms); ``style="caffe"``
strides a bottleneck's first 1x1; ``deep_stem`` and ``avg_down`` (ResNetV1d); ``with_cp``.
Module paths and state-dict keys are mmdet ResNet's (``conv1, bn1 | gn1, layer1.0.conv1, ...``,
``stem.0`` .. ``stem.8`` for a deep stem, Res2Net's ``convs``), so mmdet checkpoints load by name
and ``paramwise_cfg.custom_keys`` match the parameters they match in mmdet.
"""
from __future__ import annotations

import logging
import re
import warnings
from typing import Optional, Sequence

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch import nn

from ..errors import BuildArgumentError, CheckpointError
from ..network.model import ResFamNet, run_stage
from ..primitives import norms
from ..primitives.blocks.residual import MAX_UNITS, ResidualBlock
from ..spec.registry import get_spec
from ..weights.checkpoint import load_state
from .arch_keys import arch_values, disagreements, nominal_depth
from .keys import own_keys, own_names, rename_children, to_module_keys, use_framework_keys
from .switches import with_switches

NORMS = {"BN": "bn", "BN2d": "bn", "SyncBN": "syncbn", "GN": "gn", "FrozenBN": "frozen_bn"}
NORM_KEYS = {"type", "requires_grad", "num_groups", "eps", "momentum"}

def _error(msg: str, arch, key: str, hint: str = "") -> BuildArgumentError:
    return BuildArgumentError(msg, variant=str(arch), key=key, hint=hint)


def _spec_for(arch, style: str, deep_stem: bool, avg_down: bool, strides, dilations, conv_cfg,
              num_stages: int, stage_pool: Optional[str] = None):
    """The arch's spec with mmdet's structural switches applied."""
    spec = get_spec(arch)
    n = len(spec.stages)
    if isinstance(num_stages, bool) or not isinstance(num_stages, int) or not 1 <= num_stages <= n:
        raise _error(f"is {num_stages!r}; {spec.name} has {n} stages", arch, "num_stages")
    kinds = {p.block.type for p in spec.stages}
    if stage_pool is not None and (kinds != {"res2"} or stage_pool not in ("always", "strided")):
        raise _error(f"is {stage_pool!r} for {spec.name} ({', '.join(sorted(kinds))} blocks)", arch,
                     "stage_pool", "'strided' (mmdet's Res2Net) or 'always' (the official one), "
                     "for Res2Net archs only")
    if style == "caffe":
        if kinds != {"bottleneck"}:
            raise _error(f"style='caffe' strides a bottleneck's first 1x1; {spec.name} has "
                         f"{', '.join(sorted(kinds))} blocks", arch, "style", "use style='pytorch'")
    elif style != "pytorch":
        raise _error(f"must be 'pytorch' or 'caffe', got {style!r}", arch, "style")
    stages = {}
    for key, given in (("stride", strides), ("dilation", dilations)):
        if given is not None:
            if len(given) != num_stages:  # mmdet's ResNet asserts the same
                raise _error(f"has {len(given)} entries for num_stages={num_stages}", arch,
                             key + "s", "one entry per built stage (num_stages)")
            stages[key] = given
    if conv_cfg is not None and conv_cfg.get("type") not in ("Conv", "Conv2d"):
        raise _error(f"{conv_cfg.get('type')!r} convs are not a resfam primitive", arch,
                     "conv_cfg", "leave conv_cfg=None (plain convs), or use mmdet's ResNet")
    return with_switches(
        spec, stride_on_1x1=style == "caffe", stages=stages,
        block={"stage_pool": stage_pool} if stage_pool else None,
        stem={"type": "deep_maxpool", "width": spec.stem.width} if deep_stem else None,
        shortcut={"type": "avgpool_conv1x1"} if avg_down else None)


def mmdet_key(key: str) -> str:
    """mmdet's name for one of the adapter's state-dict keys, where its module path is not
    mmdet's already (:meth:`ResFamBackbone._use_mmdet_names`): Res2Net's split convs, which
    mmdet's Bottle2neck holds itself (``layer1.0.convs.0``)."""
    parts = key.split(".")
    if parts[0].startswith("layer") and len(parts) > 4 and parts[2] == "conv2" and parts[3] in ("convs", "bns"):
        del parts[2]
    return ".".join(parts)


@MODELS.register_module()
class ResFamBackbone(ResFamNet):
    """Any resfam variant (or spec file) as an mmdet backbone returning a tuple of stage maps;
    the arguments are mmdet ResNet's (module docstring), plus ``arch`` and ``output_stride``."""

    def __init__(self, arch: str, depth: Optional[int] = None, in_channels: int = 3,
                 stem_channels: Optional[int] = None, base_channels: int = 64,
                 num_stages: Optional[int] = None, strides: Optional[Sequence[int]] = None,
                 dilations: Optional[Sequence[int]] = None,
                 out_indices: Sequence[int] = (0, 1, 2, 3), style: str = "pytorch",
                 deep_stem: bool = False, avg_down: bool = False, frozen_stages: int = -1,
                 conv_cfg: Optional[dict] = None, norm_cfg: Optional[dict] = None,
                 norm_eval: bool = True, dcn: Optional[dict] = None,
                 stage_with_dcn: Sequence[bool] = (False, False, False, False),
                 plugins: Optional[list] = None, with_cp: bool = False,
                 zero_init_residual: bool = True, pretrained: Optional[str] = None,
                 init_cfg: Optional[dict] = None, output_stride: int = 32,
                 groups: Optional[int] = None, base_width: Optional[int] = None,
                 scales: Optional[int] = None, stage_pool: Optional[str] = None):
        norm_cfg = dict(norm_cfg or {"type": "BN", "requires_grad": True})
        for key, value, hint in (("dcn", dcn, "deformable convs"), ("plugins", plugins, "plugins")):
            if value is not None:
                raise _error(f"{hint} are not a resfam primitive", arch, key,
                             f"leave {key}=None, or use mmdet's ResNet for {hint}")
        if norm_cfg.get("type") not in NORMS:
            raise _error(f"type must be one of {', '.join(NORMS)}, got {norm_cfg.get('type')!r}",
                         arch, "norm_cfg")
        unknown = set(norm_cfg) - NORM_KEYS
        if unknown:
            raise _error(f"unknown keys {sorted(unknown)}", arch, "norm_cfg",
                         f"accepted: {', '.join(sorted(NORM_KEYS))}")
        if init_cfg and pretrained:
            raise _error("init_cfg and pretrained cannot both be set", arch, "pretrained",
                         "use init_cfg=dict(type='Pretrained', checkpoint=...)")
        num_stages = len(get_spec(arch).stages) if num_stages is None else num_stages
        spec = _spec_for(arch, style, deep_stem, avg_down, strides, dilations, conv_cfg, num_stages,
                         stage_pool)
        _check_family_keys(spec, arch, groups, base_width, scales)
        if num_stages < len(spec.stages) and spec.name not in PLAIN:
            warnings.warn(f"ResFamBackbone({arch!r}) builds {num_stages} of {len(spec.stages)} stages "
                          "(C4): give the detector roi_head.shared_head=dict(type='ResFamResLayer', "
                          f"arch={arch!r}); mmdet's ResLayer is a plain ResNet stage", stacklevel=2)
        if not out_indices or min(out_indices) < 0 or max(out_indices) >= num_stages:
            raise _error(f"{tuple(out_indices)} must name stages 0 to num_stages - 1 = "
                         f"{num_stages - 1}", arch, "out_indices", "mmdet counts stages from "
                         "0: 0 is layer1; the stem is not an output")
        ignored = {"depth": (depth, nominal_depth(spec.name)), "base_channels": (base_channels, 64),
                   "stem_channels": (stem_channels, spec.stem.width)}
        for key, (given, own) in ignored.items():
            if given is not None and given != own:
                warnings.warn(f"ResFamBackbone({arch!r}): {key}={given} ignored, the arch "
                              "decides it", stacklevel=2)
        kind = NORMS[norm_cfg["type"]]
        super().__init__(spec, features_only=True, in_chans=in_channels,
                         out_indices=[i + 1 for i in out_indices], frozen_stages=frozen_stages,
                         norm_eval=norm_eval, norm_layer=kind, zero_init_last=zero_init_residual,
                         norm_groups=norm_cfg.get("num_groups"), output_stride=output_stride)
        self._norm_cfg = norm_cfg
        self._configure_norms()
        self.init_cfg = init_cfg or ({"type": "Pretrained", "checkpoint": pretrained} if pretrained else None)
        self._zero_init_residual = zero_init_residual
        self.set_grad_checkpointing(with_cp)
        self._stage_pool = stage_pool
        before = {id(mod): name for name, mod in self.named_modules()}
        self._use_mmdet_names(gn=kind == "gn")
        self._mmdet_keys = use_framework_keys(self, mmdet_key, own_names(self, before))

    def _use_mmdet_names(self, gn: bool) -> None:
        """Register modules under mmdet ResNet's paths, so its checkpoints' keys and the
        parameter names its configs match (``paramwise_cfg.custom_keys``) are mmdet's: a deep
        stem (the arch's own or ``deep_stem=True``) is one ``stem`` Sequential (conv, norm, relu
        x3), and under GN the norms are ``gn1``, ``gn2``, ... in the stem and every block."""
        if self.stem_names[:3] == ["conv1", "bn1", "act1"] and isinstance(self.conv1, nn.Sequential):
            stem = nn.Sequential(*self.conv1, self.bn1, self.act1)
            rest = {k: v for k, v in self._modules.items() if k not in ("conv1", "bn1", "act1")}
            self._modules = {"stem": stem, **rest}
            self.stem_names = ["stem", *self.stem_names[3:]]
            self.feature_info.levels[0]["module"] = "stem"
        elif gn:
            self._modules = {("gn1" if k == "bn1" else k): v for k, v in self._modules.items()}
            self.stem_names = ["gn1" if n == "bn1" else n for n in self.stem_names]
        if gn:
            for block in self.modules():
                if isinstance(block, ResidualBlock):
                    rename_children(block, {f"bn{i}": f"gn{i}" for i in range(MAX_UNITS + 1)})

    def _configure_norms(self) -> None:
        """norm_cfg's eps / momentum, and requires_grad=False: fixed affine terms (the norm
        still normalises, and BN still tracks statistics unless norm_eval)."""
        for mod in self.modules():
            if not norms.is_norm(mod):
                continue
            for attr in ("eps", "momentum"):
                if attr in self._norm_cfg and hasattr(mod, attr):
                    setattr(mod, attr, self._norm_cfg[attr])
            if self._norm_cfg.get("requires_grad", True) is False:
                for p in mod.parameters(recurse=False):
                    p.requires_grad_(False)

    def init_weights(self, zero_init_last: Optional[bool] = None) -> None:
        """mmengine calls this with no argument: load ``init_cfg``'s checkpoint (any scheme
        mmengine reads: a path, ``torchvision://``, ``open-mmlab://``, a URL), or re-initialise."""
        cfgs = getattr(self, "init_cfg", None) or []
        cfg = next((c for c in (cfgs if isinstance(cfgs, list) else [cfgs])
                    if c.get("type") == "Pretrained"), None)  # mmengine allows a list
        if zero_init_last is None and cfg:
            from mmengine.runner.checkpoint import CheckpointLoader

            raw = CheckpointLoader.load_checkpoint(cfg["checkpoint"], map_location="cpu")
            raw = raw.get("state_dict", raw) if isinstance(raw, dict) else raw
            prefix = cfg.get("prefix") or ("backbone." if any(k.startswith("backbone.") for k in raw)
                                           else None)  # a detector's file: its backbone (mmdet: nothing)
            if prefix:
                raw = {k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix)}
            self._check_res2net_layout(raw, cfg["checkpoint"])
            with own_keys(self):  # mmdet's names -> resfam's, then resfam's converters
                report = load_state(self, to_module_keys(raw, self._mmdet_keys), cfg["checkpoint"],
                                    strict=False)
            self.load_report = report
            print_log(f"ResFamBackbone: {report}", logger="current",
                      level=logging.WARNING if report.missing or report.unexpected else logging.INFO)
            return
        super().init_weights(self._zero_init_residual if zero_init_last is None else zero_init_last)

    def _check_res2net_layout(self, raw: dict, label: str) -> None:
        """mmdet's Res2Net checkpoints (``stem.*`` and ``convs``) load by name into a Res2Net
        arch whichever network it runs: refuse them unless ``stage_pool`` says which."""
        names = [k.split("backbone.", 1)[-1] for k in raw]
        if (self._stage_pool is None and any(".convs." in k for k in names)
                and any(re.match(r"stem\.\d", k) for k in names)):
            raise CheckpointError(
                f"{label} is in mmdet's Res2Net layout: mmdet's Bottle2neck passes the last split "
                f"of layer1's first block through, where {self.spec.name} (the official code, timm) "
                "pools it", hint="pass stage_pool='strided' to run mmdet's Res2Net on it (as mmdet "
                "trains and tests these weights), or stage_pool='always' for the official network")

    def forward(self, x):
        return tuple(super().forward(x))


PLAIN = {f"resnet{d}" for d in (18, 34, 50, 101, 152)}  # mmdet's ResLayer is their last stage


def _check_family_keys(spec, arch, groups, base_width, scales) -> None:
    """mmdet ResNeXt's ``groups`` / ``base_width`` and Res2Net's ``scales`` / ``base_width``,
    merged in from a stock config: they must describe the arch (mmdet ignores ``base_width``
    for a bottleneck with one group)."""
    own = arch_values(spec)
    if (groups or 1) == 1 and own.get("groups") == 1 and "scales" not in own:
        base_width = None
    for key, (value, theirs) in disagreements(
            spec, {"groups": groups, "base_width": base_width, "scales": scales}).items():
        raise _error(f"is {value}, but {spec.name} has " + (f"{key}={theirs}" if theirs is not None
                     else f"no {key}"), arch, key, "drop the key (the arch decides it), or pick the "
                     "arch it describes")


@MODELS.register_module()
class ResFamResLayer(BaseModule):
    """mmdet's ``ResLayer`` shared head (C4 detectors) as the arch's own stage ``stage + 1``,
    with mmdet ResLayer's arguments (``depth`` as for the backbone); ``init_cfg``'s checkpoint
    is read as the backbone reads it and the stage's tensors kept. Keys: ``layer4.0.conv1.weight``..."""

    def __init__(self, arch: str, depth: Optional[int] = None, stage: int = 3, stride: int = 2,
                 dilation: int = 1, style: str = "pytorch", norm_cfg: Optional[dict] = None,
                 norm_eval: bool = True, with_cp: bool = False, dcn: Optional[dict] = None,
                 pretrained: Optional[str] = None, init_cfg: Optional[dict] = None,
                 stage_pool: Optional[str] = None):
        super().__init__()
        spec = get_spec(arch)
        if isinstance(stage, bool) or not isinstance(stage, int) or not 0 <= stage < len(spec.stages):
            raise _error(f"is {stage!r}; {spec.name} has stages 0 to {len(spec.stages) - 1}", arch, "stage")
        self._kwargs = dict(
            arch=arch, depth=depth, num_stages=stage + 1, out_indices=(stage,), style=style,
            strides=[p.stride for p in spec.stages[:stage]] + [stride],
            dilations=[1] * stage + [dilation], norm_cfg=norm_cfg, norm_eval=norm_eval, dcn=dcn,
            pretrained=pretrained, init_cfg=init_cfg, zero_init_residual=False, stage_pool=stage_pool)
        self._stage, self.norm_eval, self.with_cp = f"layer{stage + 1}", norm_eval, with_cp
        self.load_report = None
        self.add_module(self._stage, getattr(self._backbone(), self._stage))
        self._mmdet_keys = use_framework_keys(self, mmdet_key)

    def _backbone(self) -> ResFamBackbone:
        with warnings.catch_warnings():  # its C4 advice is for the backbone, not this head
            warnings.simplefilter("ignore", UserWarning)
            return ResFamBackbone(**self._kwargs)

    def init_weights(self) -> None:
        """The arch's stage from ``init_cfg``'s checkpoint (read as ResFamBackbone reads it), or
        freshly initialised as the backbone initialises it."""
        net = self._backbone()
        net.init_weights()
        getattr(self, self._stage).load_state_dict(getattr(net, self._stage).state_dict())
        self.load_report = net.load_report
        if net.load_report is not None:
            print_log(f"ResFamResLayer: {net.load_report}", logger="current", level=logging.INFO)

    def train(self, mode: bool = True) -> "ResFamResLayer":
        super().train(mode)
        if self.norm_eval and mode:
            norms.eval_norms(self)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_stage(getattr(self, self._stage), x, self.with_cp)
