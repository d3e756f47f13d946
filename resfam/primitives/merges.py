"""How a block joins its residual branch F(x) and its shortcut C(x).

- ``add``: ``y = F(x) + C(x)`` (He et al. 2016, Eq. (1)).
- ``gate``: the highway gate ``y = F(x) * T(x) + C(x) * (1 - T(x))`` with
  ``T(x) = sigmoid(W_T x + b_T)`` and ``b_T`` initialised negative so that blocks start close to
  carrying their input (Srivastava et al. 2015, "Training Very Deep Networks", Eq. (3) and Sec.
  2.2: "a negative bias initialization ... such as -1 and -3").
- ``none``: ``y = F(x)`` (the plain baselines; needs ``shortcut: none``).
"""
from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from . import layers

MERGE_TYPES = ("add", "gate", "none")


class MergeParams(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    type: Literal[MERGE_TYPES] = Field("add", description="how the branch and shortcut join")
    bias_init: float = Field(-2.0, le=0.0, description="gate: initial transform-gate bias b_T "
                                                        "(negative: start by carrying)")
    kernel_size: layers.int_choice(1, 3) = Field(1, description="gate: kernel of the conv computing T(x)")
    act: bool = Field(True, description="the activation after the merge where the order puts one "
                                        "(post); false: a linear block output (RegNetZ, timm's "
                                        "linear_out)")

    def at(self, merges: bool) -> "MergeParams":
        """This merge for a block that has a shortcut to merge (``merges``), else type none."""
        return self if merges else self.model_copy(update={"type": "none"})


class HighwayGate(nn.Module):
    """T(x) = sigmoid(conv(x) + b), one gate value per output channel and position."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, kernel_size: int, bias_init: float):
        super().__init__()
        self.conv = layers.conv(in_ch, out_ch, kernel_size, stride, bias=True)
        self.bias_init = bias_init
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.constant_(self.conv.bias, self.bias_init)

    def forward(self, branch: torch.Tensor, carry: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        t = torch.sigmoid(self.conv(x))
        return branch * t + carry * (1.0 - t)
