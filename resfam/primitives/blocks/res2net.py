"""Res2Net's bottle2neck (Gao et al. 2019, Fig. 2(b) and Eq. (1)).

The 3x3 of a bottleneck becomes ``scale`` splits of ``w`` channels: ``y1 = x1``,
``y2 = K2(x2)``, ``y_i = K_i(x_i + y_{i-1})``, concatenated. In a ``stage`` block (the first
of a stage, which changes the shape) the splits are independent and the last split is
average-pooled instead of passed through, as in the official code and timm (mmdet's
Bottle2neck pools it only where the block strides: ``stage_pool: strided``).
"""
from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from .. import layers, norms
from .base import BlockParams, KeyProblem, Unit, exact_div, planes, register_block


class Res2Conv(nn.Module):
    """The hierarchical 3x3 of Eq. (1); each split conv is followed by its own norm + act."""

    def __init__(self, width: int, scale: int, stride: int, dilation: int, groups: int,
                 stage: bool, pool: bool, norm: str, act: str):
        super().__init__()
        self.width, self.scale, self.stage = width, scale, stage
        self.convs = nn.ModuleList(layers.conv(width, width, 3, stride, dilation, groups)
                                   for _ in range(scale - 1))
        self.bns = nn.ModuleList(norms.norm(norm, width) for _ in range(scale - 1))
        self.act = layers.act(act)
        self.pool = nn.AvgPool2d(3, stride, padding=1) if pool else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        splits = torch.split(x, self.width, 1)
        outs = []
        y = splits[0]
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            y = self.act(bn(conv(splits[i] if i == 0 or self.stage else y + splits[i])))
            outs.append(y)
        outs.append(self.pool(splits[-1]) if self.pool is not None else splits[-1])
        return torch.cat(outs, 1)


@register_block("res2")
class Res2(BlockParams):
    type: Literal["res2"] = "res2"
    orders = ("post", "iresnet")
    scale: int = Field(4, le=64, description="number of splits s (2 to 64; the paper uses "
                                             "up to 8)")
    base_width: int = Field(26, ge=1, description="split width w at 'planes' = 64")
    groups: int = Field(1, ge=1, description="cardinality of each split conv (Res2NeXt)")
    expansion: int = Field(4, ge=1, description="output width / 'planes' width")
    stype: Literal["auto", "stage", "normal"] = Field(
        "auto", description="'stage': independent splits, last split pooled; 'auto': stage for "
                            "the block that changes shape (the first of a stage)")
    stage_pool: Literal["always", "strided"] = Field(
        "always", description="when a 'stage' block pools its last split: 'always' (official code, "
                              "timm: a 3x3 average pool, stride 1 in the first stage too) or "
                              "'strided' (mmdet's Bottle2neck: only where the block strides; at "
                              "stride 1 the split passes through)")

    def split_width(self, out_ch: int) -> int:
        per_group = exact_div(planes(out_ch, self.expansion) * self.base_width, 64, "base_width",
                              "planes * base_width", "the split width is planes * base_width / 64")
        return per_group * self.groups  # each split conv has `groups` groups of per_group channels

    def check(self, in_ch, out_ch, stride):
        if self.scale < 2:
            raise KeyProblem("scale", f"scale={self.scale} leaves nothing to split",
                             "Res2Net needs scale >= 2; use a 'bottleneck' block for scale 1")
        if self.stype == "normal" and stride > 1:
            raise KeyProblem("stype", "a 'normal' block cannot stride (its last split passes "
                             "through unpooled)", "use stype 'auto' or 'stage'")
        self.split_width(out_ch)

    def is_stage(self, in_ch: int, out_ch: int, stride: int) -> bool:
        """Independent splits (the block that changes shape, or ``stype: stage``)."""
        return self.stype == "stage" or (self.stype == "auto" and (stride > 1 or in_ch != out_ch))

    def pools_last_split(self, in_ch: int, out_ch: int, stride: int) -> bool:
        return self.is_stage(in_ch, out_ch, stride) and (self.stage_pool == "always" or stride > 1)

    def units(self, in_ch, out_ch, stride, dilation, first_dilation, norm, act):
        width = self.split_width(out_ch)
        return [Unit(layers.conv(in_ch, width * self.scale, 1), width * self.scale),
                Unit(Res2Conv(width, self.scale, stride, first_dilation, self.groups,
                              self.is_stage(in_ch, out_ch, stride),
                              self.pools_last_split(in_ch, out_ch, stride), norm, act),
                     width * self.scale, normed=True),
                Unit(layers.conv(width * self.scale, out_ch, 1), out_ch)]
