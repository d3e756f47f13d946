"""Stem primitives, registered on the network as direct children ``conv1 / bn1 / act1 / maxpool``
(the torchvision / timm layout that checkpoints and IntermediateLayerGetter rely on).

| type | layers | used by |
|---|---|---|
| conv7_maxpool | 7x7/2 conv, BN, ReLU, 3x3/2 max-pool | ResNet v1 (He et al. 2016, Table 1 "conv1") |
| deep_maxpool | three 3x3 convs (first /2), BN, ReLU, max-pool | ResNet-C (He et al. 2019, Fig. 2b); timm's tiered stem with two deep widths |
| deep_convpool | three 3x3 convs (first /2), BN, ReLU, then a 3x3/2 conv, BN, ReLU for the pool | ResNet-RS (Bello et al. 2021, Sec. 4.1, "replace the max-pool") |
| deep_avgpool | three 3x3 convs (first /2), BN, ReLU, 2x2/2 average pool | CLIP's ModifiedResNet (Radford et al. 2021, Sec. 2.4: "3 stem convolutions ... with an average pool") |
| deep_strided | three 3x3 convs (first and last /2), BN, ReLU, no pool | timm's byobnet tiered stem without a pool (resnet32ts, resnet33ts) |
| conv7 | 7x7/2 conv, BN, ReLU, no pool | iResNet (Duta et al. 2020, Sec. 3.1) |
| cifar | 3x3/1 conv, BN, ReLU | CIFAR nets (He et al. 2016, Sec. 4.2) |
| conv3 | 3x3/2 conv, BN, ReLU, no pool | AnyNet / RegNet's stem (Radosavovic et al. 2020, Sec. 3.1, Fig. 3a: "stride-two 3x3 conv", width 32) |
| preact_conv3 | 3x3/2 conv only | RegNet's stem, pre-activated (timm's regnetv_*) |
| preact_conv7_maxpool | 7x7/2 conv, max-pool, no BN/ReLU | ResNet v2 (the first block pre-activates) |
| preact_deep_maxpool | three 3x3 convs (first /2), max-pool, no BN/ReLU after the last conv | ResNet v2 with the ResNet-C stem (timm's resnetv2_*d) |
| preact_deep_strided | three (or, with three deep widths, four) 3x3 convs, the first and last /2, activations between, no norm, no pool | NFNet-F's stem (Brock et al. 2021b, Fig. 7: four convs 16, 32, 64, 128) |
| preact_cifar | 3x3/1 conv only | pre-act CIFAR nets, WRN |
| preact_conv7_fixedpool | 7x7/2 conv, zero padding, 3x3/2 max-pool, no BN/ReLU | BiT (Kolesnikov et al. 2020; timm's ``stem_type='fixed'``) |
| space_to_depth | 4x4 space-to-depth (16x the channels at 1/4 the side), 3x3/1 conv, BN, act | TResNet (Ridnik et al. 2021, Sec. 3.1, "SpaceToDepth stem"; timm's ``tresnet_*``) |
| lenet | 5x5/1 conv without padding, BN, ReLU, 2x2/2 max-pool | LeNet-5's pattern (LeCun et al. 1998); the seeds' MNIST ResNet, also between its stages (``stages.entry``) |
| layers | the listed ``layers`` (convs, pools and concat layers of branches: :mod:`resfam.primitives.inception`), children ``stem1..stemN`` | Inception-ResNet-v2's stem (Szegedy et al. 2017, Fig. 3 and 14: seven layers and the Inception-A of Inception-v3, timm's ``mixed_5b``) |
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Literal, NamedTuple, Optional, Union

import torch.fx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from torch import nn

from . import layers, norms
from .antialias import AAType, stem_pool
from .inception import Layer


class _Preset(NamedTuple):
    kernel: int
    stride: int
    deep: bool
    norm: bool
    pool: Optional[str]  # None, "max" (3x3/2 max-pool), "max_fixed" (the same after a zero pad),
    #                      "max2" (2x2/2), "avg2" (2x2/2 average) or "conv" (3x3/2 conv,
    #                      norm, act)
    valid: bool = False  # no padding (LeNet), instead of 'same'
    last_stride: int = 1  # deep stems: the third conv's stride (2 where no pool follows)
    s2d: int = 1  # space-to-depth block size before the conv (TResNet: 4)


PRESETS = {
    "conv7_maxpool": _Preset(7, 2, False, True, "max"),
    "deep_maxpool": _Preset(3, 2, True, True, "max"),
    "deep_convpool": _Preset(3, 2, True, True, "conv"),
    "deep_strided": _Preset(3, 2, True, True, None, last_stride=2),
    "deep_avgpool": _Preset(3, 2, True, True, "avg2"),
    "conv7": _Preset(7, 2, False, True, None),
    "cifar": _Preset(3, 1, False, True, None),
    "conv3": _Preset(3, 2, False, True, None),
    "preact_conv3": _Preset(3, 2, False, False, None),
    "preact_conv7_maxpool": _Preset(7, 2, False, False, "max"),
    "preact_deep_maxpool": _Preset(3, 2, True, False, "max"),
    "preact_deep_strided": _Preset(3, 2, True, False, None, last_stride=2),
    "preact_cifar": _Preset(3, 1, False, False, None),
    "preact_conv7_fixedpool": _Preset(7, 2, False, False, "max_fixed"),
    "lenet": _Preset(5, 1, False, True, "max2", valid=True),
    "space_to_depth": _Preset(3, 1, False, True, None, s2d=4),
}


ACT_NAMES = tuple(layers.ACTS)  # (the field ``layers`` below hides the module in the class)


class StemParams(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    type: Literal[(*PRESETS, "layers")] = Field(description="stem preset, or layers: the listed "
                                                "layers (see resfam.primitives.stems)")
    width: int = Field(64, ge=1, description="output channels of the stem")
    deep_width: Union[int, list[int]] = Field(
        32, description="deep stems: width of the 3x3 convs before the last, one value for two "
                        "convs, or a list of two (timm's tiered stem: [24, 32]) or three (four "
                        "convs: NFNet-F's stem, [16, 32, 64])")

    linear: int = Field(0, ge=0, le=3, description="deep stems: the first this many convs have "
                                                  "no norm or activation (timm's 'quad2' stem, "
                                                  "resnet51q: 2)")
    caffe_pool: bool = Field(False, description="max-pool without padding, in ceil mode (Caffe's; "
                                                "the original SENet models)")
    act: Optional[Literal[ACT_NAMES]] = Field(
        None, description="the stem's activation where it differs from the network's (TResNet: "
                          "leaky_relu, its blocks leaky_relu_1e-3)")
    aa: AAType = Field("none", description="anti-aliased max-pool: avg (a 2x2 average pool "
                                           "instead) or blur (max-pool at stride 1, then a blur "
                                           "pool); resfam.primitives.antialias")
    layers: Optional[list[Layer]] = Field(None, min_length=1, description="type layers: convs, "
                                          "pools and concat layers in turn "
                                          "(resfam.primitives.inception)")

    @model_validator(mode="after")
    def _layers_with_type(self):
        if (self.type == "layers") != (self.layers is not None):
            raise ValueError("type: layers and a layers list go together")
        preset_only = sorted(self.model_fields_set & {"deep_width", "linear", "caffe_pool", "aa"})
        if self.layers is not None and preset_only:
            raise ValueError(f"{', '.join(preset_only)} shape the presets; a stem of layers takes "
                             "width, act and layers")
        return self

    @field_validator("deep_width")
    @classmethod
    def _two_widths(cls, v):
        widths = [v] if isinstance(v, int) else v
        if not 1 <= len(widths) <= 3 or any(w < 1 for w in widths):
            raise ValueError("give one width >= 1, or a list of two or three")
        return v

    @property
    def deep_widths(self) -> tuple[int, ...]:
        """The widths of the deep stem's convs before its last (two, or three)."""
        w = self.deep_width
        if isinstance(w, int) or len(w) == 1:
            w = w if isinstance(w, int) else w[0]
            return (w, w)
        return tuple(w)

    @property
    def reduction(self) -> int:
        if self.layers is not None:
            return math.prod(layer.stride for layer in self.layers)
        p = PRESETS[self.type]
        return p.s2d * p.stride * (2 if p.pool else 1) * p.last_stride

    def layer_widths(self, in_chans: int) -> list[int]:
        """type layers: each layer's output width."""
        out = []
        for layer in self.layers:
            in_chans = layer.out_width(in_chans)
            out.append(in_chans)
        return out

    def feature_level(self, in_chans: int) -> dict:
        """The stem's feature level (level 0 of ``features_only``): the output of the layer
        before its last strided one (ResNet's ``act1``, before the max-pool; Inception-ResNet-v2's
        ``conv2d_4a``, timm's level at stride 4), or its output where only the first layer
        strides."""
        strided = [i for i, layer in enumerate(self.layers) if layer.stride > 1]
        at = strided[-1] - 1 if strided and strided[-1] > 0 else len(self.layers) - 1
        reduction = math.prod(layer.stride for layer in self.layers[:at + 1])
        return dict(num_chs=self.layer_widths(in_chans)[at], reduction=reduction,
                    module=f"stem{at + 1}")


def space_to_depth(x, block: int):
    """(One call to fx: its shape arithmetic stays out of a traced graph.)"""
    n, c, h, w = x.shape
    x = x.view(n, c, h // block, block, w // block, block).permute(0, 3, 5, 1, 2, 4)
    return x.reshape(n, c * block * block, h // block, w // block)


torch.fx.wrap("space_to_depth")


class SpaceToDepth(nn.Module):
    """Each ``block x block`` patch folded into the channels: ``(N, C, H, W)`` to
    ``(N, block^2 C, H / block, W / block)``, channel ``(i * block + j) * C + c`` holding pixel
    ``(i, j)`` of channel ``c``'s patch (TResNet's order, which its first conv's weights assume;
    ``pixel_unshuffle`` orders ``c`` first). No parameters, no arithmetic."""

    def __init__(self, block: int = 4):
        super().__init__()
        self.block = block

    def forward(self, x):
        return space_to_depth(x, self.block)

    def extra_repr(self) -> str:
        return f"block={self.block}"


def build_stem(p: StemParams, in_chans: int, norm: str, act: str) -> "OrderedDict[str, nn.Module]":
    """The stem's named modules, in forward order."""
    if p.layers is not None:
        mods = OrderedDict()
        for i, layer in enumerate(p.layers, start=1):
            mods[f"stem{i}"] = layer.build(in_chans, norm, p.act or act)
            in_chans = layer.out_width(in_chans)
        return mods
    preset = PRESETS[p.type]
    act = p.act or act
    mods: "OrderedDict[str, nn.Module]" = OrderedDict()
    if preset.s2d > 1:  # TResNet: timm's body.s2d
        mods["s2d"] = SpaceToDepth(preset.s2d)
        in_chans *= preset.s2d ** 2
    if preset.deep:  # conv-norm-act for each deep width (the first strides 2), then the last conv
        seq, cin = [], in_chans
        for k, w in enumerate(p.deep_widths):
            seq.append(layers.conv(cin, w, 3, 2 if k == 0 else 1))
            if k >= p.linear:
                seq += [norms.norm(norm, w), layers.act(act)]
            cin = w
        mods["conv1"] = nn.Sequential(*seq, layers.conv(cin, p.width, 3, preset.last_stride))
    elif preset.valid:
        mods["conv1"] = layers.conv(in_chans, p.width, preset.kernel, preset.stride, padding=0)
    else:
        mods["conv1"] = layers.conv(in_chans, p.width, preset.kernel, preset.stride)
    if preset.norm:
        mods["bn1"] = norms.norm(norm, p.width)
        mods["act1"] = layers.act(act)
    if preset.pool == "max":
        if p.aa != "none":
            mods["maxpool"] = stem_pool(p.aa, p.width)
        else:
            mods["maxpool"] = (nn.MaxPool2d(3, 2, ceil_mode=True) if p.caffe_pool
                               else nn.MaxPool2d(3, 2, padding=1))
    elif preset.pool == "max_fixed":  # BiT: the pool's padding is zeros, not -inf
        mods["maxpool"] = nn.Sequential(nn.ConstantPad2d(1, 0.0), nn.MaxPool2d(3, 2))
    elif preset.pool == "max2":
        mods["maxpool"] = nn.MaxPool2d(2, 2)
    elif preset.pool == "avg2":  # CLIP's stem ends in a 2x2 average pool (timm keeps 'maxpool')
        mods["maxpool"] = nn.AvgPool2d(2, 2)
    elif preset.pool == "conv":  # timm keeps the name 'maxpool' for it
        mods["maxpool"] = nn.Sequential(layers.conv(p.width, p.width, 3, 2),
                                        norms.norm(norm, p.width), layers.act(act))
    return mods
