"""Shortcut primitives: what a block adds its residual branch to.

The identity is used wherever a block keeps the shape; the spec's ``shortcut.type`` says what
replaces it where the shape changes:

- ``conv1x1``: strided 1x1 conv + BN, He et al. 2016 option B (Eq. (2), "projection").
- ``conv3x3``: strided 3x3 conv + BN, a 1x1 where only the channels change (SENet-154 as its
  official model and timm build it; timm's ``down_kernel_size=3``).
- ``avgpool_conv1x1``: 2x2 avg-pool, then 1x1 conv + BN (ResNet-D, He et al. 2019, Fig. 2c). In
  a stage whose stride became a dilation (``output_stride``) the pool stays, at stride 1 with
  'same' padding (timm's rule).
- ``maxpool_conv1x1``: 3x3 max-pool stride 2, then 1x1 conv + BN (iResNet, Duta et al. 2020,
  Fig. 4 "improved projection shortcut").
- ``zero_pad``: subsample + zero channel padding, parameter-free (He et al. 2016 option A, the
  CIFAR nets of Sec. 4.2).
- ``identity``: never projects (a spec whose shape changes with it is an error).
- ``none``: no shortcut at all (the "plain" baselines of He et al. 2016, Fig. 4 left).
"""
from __future__ import annotations

from typing import Literal, Optional

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from . import layers, norms
from .blocks.base import KeyProblem

SHORTCUT_TYPES = ("conv1x1", "conv3x3", "avgpool_conv1x1", "maxpool_conv1x1", "zero_pad", "identity",
                  "drop", "none")


class ShortcutParams(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    type: Literal[SHORTCUT_TYPES] = Field("conv1x1", description="what replaces the identity "
                                          "where a block changes shape; drop: nothing, that block "
                                          "merges nothing (timm's RegNet with downsample None, "
                                          "RegNetZ); none: no shortcut in any block (plain nets)")
    norm: bool = Field(True, description="norm after the projection conv (ResNet v2 projects "
                                         "the pre-activated input and has none)")
    reads: Literal["auto", "preact"] = Field(
        "auto", description="order pre: auto, a projection reads the pre-activated input and the "
                            "identity the block input (ResNet v2); preact, both read the "
                            "pre-activated input (timm's pre-activation RegNet, regnetv_*)")

    def check(self, in_ch: int, out_ch: int, stride: int) -> None:
        if self.type == "identity" and (stride > 1 or in_ch != out_ch):
            raise KeyProblem("type", f"an identity shortcut cannot map {in_ch} channels at stride "
                             f"{stride} to {out_ch}", "use conv1x1, zero_pad or another projection")
        if self.type == "zero_pad" and out_ch < in_ch:
            raise KeyProblem("type", f"zero padding cannot reduce {in_ch} channels to {out_ch}",
                             "use a conv1x1 shortcut")


class ZeroPad(nn.Module):
    """Option A: ``x[:, :, ::s, ::s]`` with the new channels zero (split evenly on both sides)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.stride, self.before = stride, (out_ch - in_ch) // 2
        self.after = out_ch - in_ch - self.before

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, self.before, self.after))


class AvgPoolSame2x2(nn.Module):
    """2x2 average pool at stride 1 keeping the size: one zero row and column after the input,
    counted in the mean (TensorFlow's 'SAME'; timm's ``AvgPool2dSame(2, 1)``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.pad(x, (0, 1, 0, 1)), 2, 1)


def merges(p: ShortcutParams, in_ch: int, out_ch: int, stride: int) -> bool:
    """Whether a block of this shape has a shortcut to merge (``drop``: not where it reshapes)."""
    return p.type != "none" and not (p.type == "drop" and (stride > 1 or in_ch != out_ch))


def build_shortcut(p: ShortcutParams, in_ch: int, out_ch: int, stride: int, dilation: int,
                   norm: str, first_dilation: int = 1) -> Optional[nn.Module]:
    """The projection for a block of this shape, or None where the identity (or nothing) is used."""
    reshape = stride > 1 or in_ch != out_ch
    if p.type in ("none", "identity", "drop") or not reshape:
        return None
    if p.type == "zero_pad":
        return ZeroPad(in_ch, out_ch, stride)
    mods: list[nn.Module] = []
    conv_stride = stride
    if p.type == "avgpool_conv1x1":
        if stride > 1:
            mods.append(nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False))
        else:  # the network turned this stage's stride into a dilation, or it never strided
            mods.append(AvgPoolSame2x2() if dilation > 1 else nn.Identity())
        conv_stride = 1
    elif p.type == "maxpool_conv1x1":
        if stride > 1 and in_ch == out_ch:  # stride only: the pool alone (official iResNet code)
            return nn.MaxPool2d(3, stride, padding=1)
        # an Identity where a dilated stage does not stride keeps the state-dict names stable
        mods.append(nn.MaxPool2d(3, stride, padding=1) if stride > 1 else nn.Identity())
        conv_stride = 1
    if p.type == "conv3x3" and (stride > 1 or dilation > 1):  # 1x1 where only channels change
        mods.append(layers.conv(in_ch, out_ch, 3, conv_stride, first_dilation))
    else:
        mods.append(layers.conv(in_ch, out_ch, 1, conv_stride))
    if p.norm:
        mods.append(norms.norm(norm, out_ch))
    return nn.Sequential(*mods)
