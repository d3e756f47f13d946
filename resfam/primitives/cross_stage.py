"""Cross Stage Partial stages (Wang et al. 2020, "CSPNet", Sec. 3.1, Fig. 2(b); CSPResNe(X)t,
Fig. 5 and Table 4).

A CSP stage splits its input's channels in two: one part goes through the stage's residual
blocks and a 1x1 transition, the other crosses the stage untouched; the two are concatenated
and mixed by a second 1x1 transition. The gradient of the crossing part is not duplicated
through the blocks, and the blocks run at part of the width (the paper's point: fewer
computations, the accuracy kept). As timm builds CSPResNet / CSPResNeXt (its ``CrossStage``):

    x  = down(x)                       3x3 stride-2 conv + norm + act, where the stage strides
    x  = exp(x)                        1x1 to round(width * expand_ratio) (act unless linear)
    xs, xb = x[:half], x[half:]        the split
    xb = transition_b(blocks(xb))      the residual blocks, then 1x1 back to half
    y  = transition(cat(xs, xb))       1x1 to the stage's width

The spec's ``cross`` section (scalar or per stage) turns a stage into one; its blocks are the
spec's ``block`` at width round(width * block_ratio), stride 1, the first reading half the
expanded width. The network's one stage loop builds the blocks; this module only wraps them.
"""
from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from . import layers, norms
from .blocks.base import KeyProblem
from .blocks.residual import run_blocks

CROSS_TYPES = ("none", "csp")


class CrossParams(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    type: Literal[CROSS_TYPES] = Field("none", description="none: the blocks are the stage; csp: "
                                       "a cross stage partial stage around them "
                                       "(resfam.primitives.cross_stage)")
    expand_ratio: float = Field(1.0, gt=0.0, description="csp: the 1x1 after the down conv "
                                "outputs round(width * this) channels, split in two halves "
                                "(timm's expand_ratio: 2 for CSPResNet-50, 1 for CSPResNeXt-50)")
    block_ratio: float = Field(1.0, gt=0.0, description="csp: the blocks' width, "
                               "round(width * this) (timm's block_ratio)")
    linear: bool = Field(False, description="csp: the expanding 1x1 has no activation after "
                                            "its norm (timm's cross_linear)")
    down_groups: int = Field(1, ge=1, description="csp: groups of the strided 3x3 down conv "
                                                  "(CSPResNeXt-50: 32, the blocks' cardinality)")

    @property
    def on(self) -> bool:
        return self.type != "none"

    def expanded(self, width: int) -> int:
        return int(round(width * self.expand_ratio))

    def block_width(self, width: int) -> int:
        """The blocks' output width in a stage of ``width`` channels."""
        return int(round(width * self.block_ratio)) if self.on else width

    def block_input(self, in_ch: int, width: int) -> int:
        """What the stage's first block reads: half the expanded width, or the stage input."""
        return self.expanded(width) // 2 if self.on else in_ch

    def check(self, in_ch: int, width: int, stride: int) -> None:
        if not self.on:
            return
        exp = self.expanded(width)
        if exp < 2 or exp % 2:
            raise KeyProblem("expand_ratio", f"width {width} x expand_ratio {self.expand_ratio} = "
                             f"{exp} channels do not split into two equal halves",
                             "choose an expand_ratio that makes an even channel count")
        if self.block_width(width) < 1:
            raise KeyProblem("block_ratio", f"width {width} x block_ratio {self.block_ratio} "
                             "leaves the blocks no channels", "use a larger block_ratio")
        if stride > 1 and in_ch % self.down_groups:
            raise KeyProblem("down_groups", f"{in_ch} input channels do not split into "
                             f"{self.down_groups} groups", "choose groups that divide the "
                             "stage's input width")


class CrossStage(nn.Module):
    """The module docstring's stage: ``conv_down`` (where the stage strides), ``conv_exp``,
    ``blocks`` (built by the network's stage loop), ``conv_transition_b``, ``conv_transition``
    (timm's names; each a conv-norm-act unit)."""

    def __init__(self, p: CrossParams, in_ch: int, width: int, blocks: nn.Sequential, stride: int,
                 first_dilation: int, strided: bool, norm: str, act: str):
        super().__init__()
        exp = p.expanded(width)
        self.half = half = exp // 2
        self.conv_down = None
        if strided:  # where the spec strides (under output_stride: a dilated conv at stride 1)
            self.conv_down = norms.ConvNormAct(
                layers.conv(in_ch, in_ch, 3, stride, first_dilation, groups=p.down_groups), norm, act)
        self.conv_exp = norms.ConvNormAct(layers.conv(in_ch, exp, 1), norm,
                                          "identity" if p.linear else act)
        self.blocks = blocks
        self.conv_transition_b = norms.ConvNormAct(layers.conv(p.block_width(width), half, 1), norm, act)
        self.conv_transition = norms.ConvNormAct(layers.conv(exp, width, 1), norm, act)

    def forward(self, x: torch.Tensor, checkpointed: bool = False) -> torch.Tensor:
        if self.conv_down is not None:
            x = self.conv_down(x)
        x = self.conv_exp(x)
        xs, xb = x[:, :self.half], x[:, self.half:]
        if checkpointed and not torch.jit.is_scripting():  # (TorchScript: never checkpointed)
            xb = run_blocks(self.blocks, xb, checkpointed)
        else:
            xb = self.blocks(xb)
        xb = self.conv_transition_b(xb)
        return self.conv_transition(torch.cat([xs, xb], dim=1))
