"""Inception-ResNet's residual block (Szegedy et al. 2017, "Inception-v4, Inception-ResNet and the
Impact of Residual Connections on Learning", Fig. 16, 17 and 19: Inception-ResNet-A, -B, -C of
Inception-ResNet-v2): branches of conv-norm-act units on the block input, concatenated, then a 1x1
conv "without activation" back to the block's width. That conv has a bias and no norm (the
official TF-slim code, timm's ``conv2d``), so the block adds none after it; the residual scaling of
Sec. 3.3 ("scaling down the residuals before adding them", 0.1 to 0.3) is ``merge.alpha``.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from .. import layers
from ..inception import Branch, Concat, as_branch, branch_size, branch_width
from .base import BlockParams, KeyProblem, Unit, register_block


@register_block("inception")
class InceptionBlock(BlockParams):
    type: Literal["inception"] = "inception"
    n_units = 2
    orders = ("post",)

    branches: list[Branch] = Field(min_length=1, description="the branches (each a list of ops, "
                                   "resfam.primitives.inception), concatenated before the 1x1 "
                                   "conv; per stage, so a list with one entry per stage")

    @field_validator("branches", mode="before")
    @classmethod
    def _branches(cls, v):
        return [as_branch(b) for b in v] if isinstance(v, list) else v

    @field_validator("branches")
    @classmethod
    def _same_size(cls, v):
        if any(not b for b in v):
            raise ValueError("every branch needs at least one op")
        if any(branch_size(b, n, n) != (n, n) for b in v for n in (17, 18)):
            raise ValueError("a block's branches keep the map's size (stride 1, no 'valid' "
                             "padding): a stage changes size in its entry")
        return v  # (branches that all keep the size concatenate at every size)

    def check(self, in_ch, out_ch, stride):
        if stride != 1:
            raise KeyProblem("type", "an inception block keeps its input's size, but this stage "
                             f"strides its first block by {stride}",
                             "use stages.stride 1 and a strided stages.entry (a concat layer)")

    def units(self, in_ch, out_ch, stride, dilation, first_dilation, norm, act):
        width = sum(branch_width(b, in_ch) for b in self.branches)
        return [Unit(Concat(self.branches, in_ch, norm, act), width, normed=True),
                Unit(layers.conv(width, out_ch, 1, bias=True), out_ch, normed=True)]
