"""Split attention (Zhang et al. 2020, "ResNeSt: Split-Attention Networks", Sec. 3.1-3.2, Fig. 2):
the bottleneck's 3x3 conv runs ``radix`` times per cardinal group (one grouped conv of
``width * radix`` outputs, norm, act); the splits of each group are summed, pooled, reduced by a
grouped 1x1 (+ norm, act) and expanded by another to one weight per split and channel; a softmax
across the splits (a sigmoid when radix is 1) weights their sum: ``V_k = sum_i a_i^k U_{R(k-1)+i}``
(Eq. 1-3).

The attention width is ``in_width * radix * rd_ratio`` rounded to ``rd_divisor``, at least
``min_width`` (timm's rounding). Module names follow timm's ``SplitAttn`` (``conv``, ``bn0``,
``fc1``, ``bn1``, ``fc2``), so ResNeSt checkpoints load by name. The unit normalises and activates
itself, so the block adds no norm after it.
"""
from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from . import layers, norms
from .layers import reduced_channels


class SplatParams(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    radix: int = Field(2, ge=1, le=8, description="splits per cardinal group (R)")
    rd_ratio: float = Field(0.25, gt=0.0, le=1.0, description="attention width / (input width * radix)")
    rd_divisor: int = Field(8, ge=1, description="the attention width is rounded to a multiple of this")
    min_width: int = Field(32, ge=1, description="smallest attention width")


class SplitAttention(nn.Module):
    def __init__(self, p: SplatParams, in_ch: int, out_ch: int, stride: int, dilation: int,
                 groups: int, norm: str, act: str):
        super().__init__()
        self.radix, self.groups = p.radix, groups
        width = out_ch * p.radix
        attn = reduced_channels(in_ch * p.radix, p.rd_ratio, p.rd_divisor, p.min_width)
        self.conv = layers.conv(in_ch, width, 3, stride, dilation, groups=groups * p.radix)
        self.bn0 = norms.norm(norm, width)
        self.act0 = layers.act(act)
        self.fc1 = nn.Conv2d(out_ch, attn, 1, groups=groups)
        self.bn1 = norms.norm(norm, attn)
        self.act1 = layers.act(act, plain=True)
        self.fc2 = nn.Conv2d(attn, width, 1, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.act0(self.bn0(self.conv(x)))
        n, rc, h, w = u.shape
        c = rc // self.radix  # channels [i*c, (i+1)*c) are split i of every group
        # Eq. 1's sum over splits after the global pool, not before: the same value, and no
        # reduction across a channels_last tensor's splits (28% of resnest50d's time on the
        # inference path when it was summed first, docs/performance.md)
        pooled = u.mean((2, 3), keepdim=True)
        if self.radix > 1:
            pooled = pooled.view(n, self.radix, c, 1, 1).sum(1)
        a = self.fc2(self.act1(self.bn1(self.fc1(pooled))))  # per group: its R splits' logits
        if self.radix == 1:
            return u * torch.sigmoid(a)
        a = a.view(n, self.groups, self.radix, -1).transpose(1, 2).softmax(dim=1)  # over splits
        weighted = u * a.reshape(n, rc, 1, 1)
        out = weighted[:, :c]
        for i in range(1, self.radix):  # Eq. 3: the attention-weighted splits, summed
            out = out + weighted[:, i * c:(i + 1) * c]
        return out
