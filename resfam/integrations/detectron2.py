"""resfam backbones in detectron2.

    from resfam.integrations import detectron2  # registers build_resfam_backbone
    cfg.MODEL.BACKBONE.NAME = "build_resfam_backbone"
    cfg.MODEL.RESFAM = CfgNode({"ARCH": "iresnet50", "OUT_FEATURES": ["res2", "res3", "res4", "res5"],
                                "NORM": "frozen_bn", "FREEZE_AT": 2})
    cfg.MODEL.FPN.IN_FEATURES = ["res2", "res3", "res4", "res5"]   # for build_resnet_fpn_backbone-style heads

Outputs are named as detectron2's ResNet names them: ``stem`` (stride 2 here; detectron2's own
stem feature is after its max-pool), ``res2`` .. ``res5`` for layer1 .. layer4 (CIFAR nets: res2
.. res4). ``FREEZE_AT`` is detectron2's: 1 freezes the stem, 2 the stem and res2, ...
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import nn

from ..factory import build
from ..registry import SpecRef, get_spec

try:  # detectron2 is not on PyPI; the adapter is usable wherever it is installed
    from detectron2.layers import ShapeSpec
    from detectron2.modeling import BACKBONE_REGISTRY, Backbone
except ImportError:  # pragma: no cover - exercised where detectron2 is missing
    BACKBONE_REGISTRY = Backbone = None

    class ShapeSpec(NamedTuple):  # detectron2's fields
        channels: int = None
        height: int = None
        width: int = None
        stride: int = None


def feature_names(ref: SpecRef) -> list[str]:
    """detectron2 names for a variant's levels: stem, res2, res3, ..."""
    return ["stem"] + [f"res{i + 2}" for i in range(len(get_spec(ref).stages))]


def make_backbone_class(base: type) -> type:
    """The adapter on top of ``base`` (detectron2's Backbone; nn.Module to test the contract)."""

    class ResFamD2Backbone(base):
        def __init__(self, ref: SpecRef, out_features: Sequence[str] = ("res2", "res3", "res4", "res5"),
                     freeze_at: int = 0, norm: str = "bn", **build_kwargs):
            super().__init__()
            names = feature_names(ref)
            unknown = [n for n in out_features if n not in names]
            if unknown:
                raise ValueError(f"out_features {unknown} not in {names}")
            self._out_features = list(out_features)
            self.body = build(ref, features_only=True, out_indices=[names.index(n) for n in out_features],
                              norm_layer=norm, frozen_stages=freeze_at - 1, as_dict=True, **build_kwargs)
            info = self.body.feature_info
            self._out_feature_channels = {n: info.channels(names.index(n)) for n in out_features}
            self._out_feature_strides = {n: info.reduction(names.index(n)) for n in out_features}
            self._rename = {info.module_names(names.index(n)): n for n in out_features}

        def forward(self, x: torch.Tensor) -> dict:
            return {self._rename[k]: v for k, v in self.body(x).items()}

        def output_shape(self) -> dict:
            return {n: ShapeSpec(channels=self._out_feature_channels[n], stride=self._out_feature_strides[n])
                    for n in self._out_features}

        @property
        def size_divisibility(self) -> int:
            return max(self._out_feature_strides.values())

    return ResFamD2Backbone


ResFamD2Backbone = make_backbone_class(Backbone if Backbone is not None else nn.Module)

if BACKBONE_REGISTRY is not None:  # pragma: no cover - needs detectron2
    @BACKBONE_REGISTRY.register()
    def build_resfam_backbone(cfg, input_shape):
        c = cfg.MODEL.RESFAM
        return ResFamD2Backbone(c.ARCH, out_features=c.OUT_FEATURES, freeze_at=c.get("FREEZE_AT", 0),
                                norm=c.get("NORM", "frozen_bn"), in_chans=input_shape.channels)
