"""resfam backbones in detectron2, configured the way detectron2's own ResNet is.

    from resfam.integrations.detectron2 import add_resfam_config  # registers the builders
    cfg = get_cfg()
    add_resfam_config(cfg)
    cfg.merge_from_file("configs/COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml")
    cfg.MODEL.BACKBONE.NAME = "build_resfam_fpn_backbone"   # C4: "build_resfam_backbone"
    cfg.MODEL.RESFAM.ARCH = "res2net50_26w_4s"

``MODEL.RESFAM.ARCH`` picks the network (a name or a spec file); everything else is read from
detectron2's own keys, with detectron2's meaning:

| key | meaning |
|---|---|
| ``MODEL.RESNETS.OUT_FEATURES`` | ``stem`` (stride 2, before the max-pool), ``res2`` .. ``res5``; no stage past the last is built |
| ``MODEL.BACKBONE.FREEZE_AT`` | 1 freezes the stem, 2 the stem and res2, ...; frozen BatchNorms become FrozenBN |
| ``MODEL.RESNETS.NORM`` | ``FrozenBN``, ``BN``, ``SyncBN`` (also ``nnSyncBN``, ``naiveSyncBN``), ``GN`` (32 groups), ``""`` (none) |
| ``MODEL.RESNETS.STRIDE_IN_1X1`` | a bottleneck strides its first 1x1 (MSRA / caffe weights; other blocks ignore it) |
| ``MODEL.RESNETS.RES5_DILATION`` | 2: res5 does not stride, every block dilated by 2 |
| ``MODEL.FPN.*`` | as for ``build_resnet_fpn_backbone``; the RetinaNet builder adds P6/P7 from the last stage |

``DEPTH``, ``NUM_GROUPS``, ``WIDTH_PER_GROUP``, ``RES2_OUT_CHANNELS`` and
``STEM_OUT_CHANNELS`` are the arch's to decide and are not read; deformable stages are an error.
State-dict keys are detectron2's (``stem.conv1.norm.weight``, ``res2.0.conv1.weight``,
``res2.0.shortcut.norm.bias``, ...), so detectron2 checkpoints, and its ImageNet ``R-50.pkl``
through the checkpointer's name matching, load into a ``resnet50`` arch by name.
``MODEL.WEIGHTS`` naming a classification checkpoint (torchvision, timm or resfam layout:
``.pth`` / ``.pt`` / ``.safetensors``) is loaded into the backbone when it is built, and the
report logged; detector checkpoints and ``.pkl`` files are left to ``DetectionCheckpointer``.
"""
from __future__ import annotations

import logging
import os
import re
from typing import NamedTuple, Sequence

import torch
from torch import nn

from ..errors import BuildArgumentError
from ..factory import build
from ..primitives import norms
from ..spec.registry import SpecRef, get_spec
from ..weights.checkpoint import load_state, read_checkpoint
from .keys import use_framework_keys
from .switches import with_switches

try:  # detectron2 is not on PyPI; the adapter is usable wherever it is installed
    from detectron2.layers import FrozenBatchNorm2d, ShapeSpec
    from detectron2.modeling import BACKBONE_REGISTRY, Backbone
    from detectron2.modeling.backbone.fpn import FPN, LastLevelMaxPool, LastLevelP6P7
except ImportError:  # exercised where detectron2 is missing
    BACKBONE_REGISTRY = Backbone = FrozenBatchNorm2d = None

    class ShapeSpec(NamedTuple):  # detectron2's fields
        channels: int = None
        height: int = None
        width: int = None
        stride: int = None

logger = logging.getLogger(__name__)

NORMS = {"FrozenBN": "frozen_bn", "BN": "bn", "SyncBN": "syncbn", "nnSyncBN": "syncbn",
         "naiveSyncBN": "syncbn", "GN": "gn", "": "none"}
STEM = {"conv1": "stem.conv1", "bn1": "stem.conv1.norm"}
DEEP_STEM = {"conv1.0": "stem.conv1", "conv1.1": "stem.conv1.norm", "conv1.3": "stem.conv2",
             "conv1.4": "stem.conv2.norm", "conv1.6": "stem.conv3", "bn1": "stem.conv3.norm"}


def feature_names(ref: SpecRef) -> list[str]:
    """detectron2 names for a variant's levels: stem, res2, res3, ..."""
    return ["stem"] + [f"res{i + 2}" for i in range(len(get_spec(ref).stages))]


def d2_key(key: str, body: nn.Module) -> str:
    """detectron2's name for one of the adapter's keys (``body.`` + a resfam key)."""
    key = key[len("body."):]
    stem = DEEP_STEM if isinstance(getattr(body, "conv1", None), nn.Sequential) else STEM
    for own, theirs in stem.items():
        if key.startswith(own + "."):
            return theirs + key[len(own):]
    parts = key.split(".")
    if not (parts[0].startswith("layer") and len(parts) > 3):
        return "stem." + key  # another stem module (none holds weights in the presets)
    stage, j, name, *tail = parts
    block = getattr(body, stage)[int(j)]
    unit = re.fullmatch(r"bn(\d)", name)
    if unit:
        name = f"conv{unit.group(1)}.norm"
    elif name == "downsample":
        mod = block.downsample[int(tail[0])]
        name = "shortcut" if isinstance(mod, nn.Conv2d) else "shortcut.norm"  # pools hold none
        tail = tail[1:]
    return ".".join([f"res{int(stage[5:]) + 1}", j, name, *tail])


def make_backbone_class(base: type) -> type:
    """The adapter on top of ``base`` (detectron2's Backbone; nn.Module to test the contract)."""

    class ResFamD2Backbone(base):
        def __init__(self, ref: SpecRef, out_features: Sequence[str] = ("res2", "res3", "res4", "res5"),
                     freeze_at: int = 0, norm: str = "bn", **build_kwargs):
            super().__init__()
            names = feature_names(ref)
            unknown = [n for n in out_features if n not in names]
            if unknown or not out_features:
                raise BuildArgumentError(f"{list(out_features)}: {unknown or 'empty'}",
                                         variant=str(ref), key="OUT_FEATURES",
                                         hint=f"choose from {names}")
            self._out_features = list(out_features)
            own_frozen = norm == "frozen_bn" and FrozenBatchNorm2d is not None
            self.body = build(ref, features_only=True, out_indices=[names.index(n) for n in out_features],
                              norm_layer="bn" if own_frozen else norm, frozen_stages=freeze_at - 1,
                              as_dict=True, **build_kwargs)
            if own_frozen:  # detectron2's FrozenBN (its checkpoints' layout and defaults)
                self.body = FrozenBatchNorm2d.convert_frozen_batchnorm(self.body)
                for mod in self.body.modules():
                    if isinstance(mod, FrozenBatchNorm2d):
                        mod.num_batches_tracked = None  # as detectron2's FrozenBN is built
            freeze = (FrozenBatchNorm2d.convert_frozen_batchnorm if FrozenBatchNorm2d is not None
                      else norms.freeze_batch_norm)
            for name in self.body.frozen_module_names():  # detectron2 freezes a BatchNorm as FrozenBN
                setattr(self.body, name, freeze(getattr(self.body, name)))
            info = self.body.feature_info
            self._out_feature_channels = {n: info.channels(names.index(n)) for n in out_features}
            self._out_feature_strides = {n: info.reduction(names.index(n)) for n in out_features}
            self._rename = {info.module_names(names.index(n)): n for n in out_features}
            self._d2_keys = use_framework_keys(self, lambda k: d2_key(k, self.body))

        def forward(self, x: torch.Tensor) -> dict:
            return {self._rename[k]: v for k, v in self.body(x).items()}

        def output_shape(self) -> dict:
            return {n: ShapeSpec(channels=self._out_feature_channels[n], stride=self._out_feature_strides[n])
                    for n in self._out_features}

    return ResFamD2Backbone


ResFamD2Backbone = make_backbone_class(Backbone if Backbone is not None else nn.Module)


def add_resfam_config(cfg) -> None:
    """Add ``MODEL.RESFAM`` (``ARCH``) to a detectron2 config, so YAML files that set it merge."""
    cfg.MODEL.RESFAM = type(cfg)()
    cfg.MODEL.RESFAM.ARCH = "resnet50"


def backbone_from_cfg(cfg, input_shape, base: type = None) -> nn.Module:
    """The adapter configured from detectron2's keys (module docstring); ``base`` is for tests."""
    arch, r = cfg.MODEL.RESFAM.ARCH, cfg.MODEL.RESNETS
    if r.NORM not in NORMS:
        raise BuildArgumentError(f"is {r.NORM!r}", variant=str(arch), key="MODEL.RESNETS.NORM",
                                 hint=f"one of {', '.join(map(repr, NORMS))}")
    if any(r.DEFORM_ON_PER_STAGE):
        raise BuildArgumentError("deformable convs are not a resfam primitive", variant=str(arch),
                                 key="MODEL.RESNETS.DEFORM_ON_PER_STAGE", hint="set all False")
    spec = get_spec(arch)
    if r.RES5_DILATION not in (1, 2):
        raise BuildArgumentError(f"is {r.RES5_DILATION}", variant=str(arch),
                                 key="MODEL.RESNETS.RES5_DILATION", hint="1 or 2")
    if r.RES5_DILATION == 2 and len(spec.stages) != 4:
        raise BuildArgumentError(f"{spec.name} has no res5", variant=str(arch),
                                 key="MODEL.RESNETS.RES5_DILATION", hint="leave it 1")
    spec = with_switches(
        spec, stride_on_1x1=r.STRIDE_IN_1X1 and all(p.block.type == "bottleneck" for p in spec.stages),
        stages={"stride": [p.stride for p in spec.stages[:3]] + [1], "dilation": [1, 1, 1, 2]}
        if r.RES5_DILATION == 2 else None)
    cls = base or ResFamD2Backbone
    backbone = cls(spec, out_features=r.OUT_FEATURES, freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT,
                   norm=NORMS[r.NORM], in_chans=input_shape.channels)
    _load_classification_weights(backbone.body, cfg.MODEL.WEIGHTS)
    return backbone


def _load_classification_weights(body: nn.Module, path: str) -> None:
    """``MODEL.WEIGHTS`` when it is a local classification checkpoint (no detector keys)."""
    if not path or not os.path.isfile(path) or not path.endswith((".pth", ".pt", ".safetensors")):
        return
    state = read_checkpoint(path)
    state = state.get("model", state.get("state_dict", state))
    if not isinstance(state, dict) or any(k.startswith(("backbone.", "roi_heads.", "proposal_generator."))
                                          for k in state):
        return  # a detector checkpoint: DetectionCheckpointer loads it by name
    report = load_state(body, state, path, strict=False)
    logger.log(logging.WARNING if report.missing or report.unexpected else logging.INFO,
               "resfam backbone: %s", report)


def _fpn(cfg, input_shape, top_block):
    bottom_up = backbone_from_cfg(cfg, input_shape)
    return FPN(bottom_up=bottom_up, in_features=cfg.MODEL.FPN.IN_FEATURES,
               out_channels=cfg.MODEL.FPN.OUT_CHANNELS, norm=cfg.MODEL.FPN.NORM,
               top_block=top_block(bottom_up), fuse_type=cfg.MODEL.FPN.FUSE_TYPE)


if BACKBONE_REGISTRY is not None:
    @BACKBONE_REGISTRY.register()
    def build_resfam_backbone(cfg, input_shape):
        """C4-style: the stages named by MODEL.RESNETS.OUT_FEATURES."""
        return backbone_from_cfg(cfg, input_shape)

    @BACKBONE_REGISTRY.register()
    def build_resfam_fpn_backbone(cfg, input_shape):
        """``build_resnet_fpn_backbone`` with a resfam bottom-up: an FPN and a max-pooled P6."""
        return _fpn(cfg, input_shape, lambda _: LastLevelMaxPool())

    @BACKBONE_REGISTRY.register()
    def build_retinanet_resfam_fpn_backbone(cfg, input_shape):
        """``build_retinanet_resnet_fpn_backbone`` with a resfam bottom-up: P6/P7 from the last
        stage."""
        def p6p7(bottom_up):
            last = bottom_up._out_features[-1]
            return LastLevelP6P7(bottom_up.output_shape()[last].channels,
                                 cfg.MODEL.FPN.OUT_CHANNELS, in_feature=last)
        return _fpn(cfg, input_shape, p6p7)
