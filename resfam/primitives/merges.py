"""How a block joins its residual branch F(x) and its shortcut C(x).

- ``add``: ``y = F(x) + C(x)`` (He et al. 2016, Eq. (1)).
- ``gate``: the highway gate ``y = F(x) * T(x) + C(x) * (1 - T(x))`` with
  ``T(x) = sigmoid(W_T x + b_T)`` and ``b_T`` initialised negative so that blocks start close to
  carrying their input (Srivastava et al. 2015, "Training Very Deep Networks", Eq. (3) and Sec.
  2.2: "a negative bias initialization ... such as -1 and -3").
- ``none``: ``y = F(x)`` (the plain baselines; needs ``shortcut: none``).

Normaliser-free residual blocks (Brock et al. 2021a, "Characterizing signal propagation to close
the performance gap in unnormalized ResNets", Sec. 4): ``x_{l+1} = x_l + alpha f_l(x_l / beta_l)``
with ``alpha`` the ``alpha`` key and, with ``beta: expected_std``, ``beta_l = sqrt(Var(x_l))``
predicted analytically: ``Var(x_{l+1}) = Var(x_l) + alpha^2``, and 1 + alpha^2 after a stage's
first block, whose shortcut is a projection of the normalised input (so the variance resets).
The branch divides its pre-activated input by ``beta_l``; a projection shortcut reads it too.
"""
from __future__ import annotations

from typing import Literal, Optional, Union

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn

from . import layers

MERGE_TYPES = ("add", "gate", "none")


class LastBlockMerge(BaseModel):
    """A stage's last block's own merge keys (``merge.last``)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    alpha: Optional[float] = Field(None, gt=0.0, description="its alpha")
    act: Optional[Union[bool, Literal[tuple(layers.ACTS)]]] = Field(
        None, description="its activation after the merge (false: none)")


class MergeParams(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    type: Literal[MERGE_TYPES] = Field("add", description="how the branch and shortcut join")
    bias_init: float = Field(-2.0, le=0.0, description="gate: initial transform-gate bias b_T "
                                                        "(negative: start by carrying)")
    kernel_size: layers.int_choice(1, 3) = Field(1, description="gate: kernel of the conv computing T(x)")
    act: Union[bool, Literal[tuple(layers.ACTS)]] = Field(
        True, description="the activation after the merge where the order puts one (post): true, "
                          "the network's; false, none (a linear block output: RegNetZ, timm's "
                          "linear_out); or an activation of its own (TResNet: relu after the "
                          "add, leaky_relu_1e-3 in the branch)")

    @field_validator("act", mode="before")
    @classmethod
    def _act(cls, v):
        if not isinstance(v, bool) and not (isinstance(v, str) and v in layers.ACTS):
            raise ValueError(f"should be true, false or an activation: {', '.join(layers.ACTS)}")
        return v

    def act_kind(self, network_act: str) -> str:
        """The activation after the merge, given the network's (when ``act`` is not false)."""
        return self.act if isinstance(self.act, str) else network_act

    alpha: float = Field(1.0, gt=0.0, description="add: y = C(x) + alpha F(x) (normaliser-free "
                                                  "nets: 0.2, the branch's variance per block)")
    beta: Literal["none", "expected_std"] = Field(
        "none", description="expected_std: the branch reads its pre-activated input / beta_l, "
                            "beta_l the predicted std of the block input (NF-ResNets; the "
                            "variance grows by alpha^2 per block and resets at each stage)")

    skipinit: bool = Field(False, description="add: the branch times a learned scalar that starts "
                                              "at 0 (SkipInit, De & Smith 2020; DeepMind's NFNets)")
    last: Optional[LastBlockMerge] = Field(None, description="the stage's last block merges "
                                           "otherwise: its own alpha and act (Inception-ResNet-v2's "
                                           "last block, unscaled and linear: {alpha: 1.0, act: "
                                           "false})")

    def at(self, merges: bool) -> "MergeParams":
        """This merge for a block that has a shortcut to merge (``merges``), else type none."""
        return self if merges else self.model_copy(update={"type": "none"})

    def block(self, index: int, depth: int) -> "MergeParams":
        """The merge of the stage's block ``index`` of ``depth`` (``last`` applied to the last)."""
        if self.last is None or index != depth - 1:
            return self
        return self.model_copy(update=self.last.model_dump(exclude_none=True))


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


def expected_stds(stages: list[tuple[int, float]]) -> list[list[float]]:
    """beta_l = sqrt(Var(x_l)) for every block of stages given as (depth, alpha) (module
    docstring): Var starts at 1 (the stem's output) and is 1 + alpha^2 after a stage's first
    block."""
    var, stds = 1.0, []
    for depth, alpha in stages:
        stage = []
        for j in range(depth):
            stage.append(var ** 0.5)
            var = (1.0 if j == 0 else var) + alpha ** 2
        stds.append(stage)
    return stds
