"""Inception's layers as data: a conv or pool op, and a *concat* layer whose branches (each a
chain of ops) run side by side on one input and are concatenated along the channels (Szegedy
et al. 2015, Sec. 4, Fig. 2; Szegedy et al. 2017, "Inception-v4, Inception-ResNet and the Impact
of Residual Connections on Learning", Fig. 3-20).

One schema serves three places: a stem of listed layers (``stem: {type: layers}``), a stage's
``entry`` (Inception-ResNet's reduction modules, Fig. 7 and 18) and the ``inception`` block type's
branches (Fig. 16, 17, 19). In a spec::

    {conv: 64, k: 3}                     # 3x3 conv (stride 1, 'same' padding) + norm + act
    {conv: 160, k: [1, 7]}               # a 1x7 conv (the paper's factorised 7x7)
    {conv: 384, k: 3, s: 2, valid: true} # stride 2, no padding (the paper's 'V')
    {pool: max, k: 3, s: 2, valid: true} # max-pool
    {pool: avg, k: 3}                    # average pool, stride 1, padding not counted
    {concat: [[op, ...], [op, ...]]}     # branches, concatenated

Module names follow timm's Inception-ResNet-v2: a concat layer holds ``branch0..N``, each the op
itself or a ``Sequential`` of ops; a conv op is ``conv`` / ``bn`` / ``act``.
"""
from __future__ import annotations

from typing import Literal, Optional, Union

import torch
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator
from torch import nn

from . import layers, norms

Kernel = Union[int, tuple[int, int]]


class Op(BaseModel):
    """One conv-norm-act unit or one pool."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    conv: Optional[int] = Field(None, ge=1, description="a conv + norm + act with this many "
                                                        "output channels")
    pool: Optional[Literal["max", "avg"]] = Field(None, description="a max or average pool (the "
                                                  "average does not count padding, as "
                                                  "TensorFlow's 'SAME' pools)")
    k: Kernel = Field(1, description="kernel size, or [height, width] (a 1x7 conv: [1, 7])")
    s: layers.int_choice(1, 2) = Field(1, description="stride")
    valid: bool = Field(False, description="no padding (the paper's 'V'), instead of 'same'")

    @field_validator("k", mode="before")
    @classmethod
    def _kernel(cls, v):
        if isinstance(v, list):
            v = tuple(v)
        sides = v if isinstance(v, tuple) else (v,)
        if not 1 <= len(sides) <= 2 or any(isinstance(k, bool) or not isinstance(k, int) or
                                           not 1 <= k <= 15 for k in sides):
            raise ValueError("should be a kernel size 1 to 15, or [height, width] of them")
        return v

    @model_validator(mode="after")
    def _one_kind(self):
        if (self.conv is None) == (self.pool is None):
            raise ValueError("an op is either a conv (conv: width) or a pool (pool: max | avg)")
        if not self.valid and any(k % 2 == 0 for k in self.kernel):
            raise ValueError(f"an even kernel {self.k} has no 'same' padding: use odd sides, or "
                             "valid: true")
        return self

    @property
    def kernel(self) -> tuple[int, int]:
        return self.k if isinstance(self.k, tuple) else (self.k, self.k)

    @property
    def padding(self) -> tuple[int, int]:
        return (0, 0) if self.valid else (self.kernel[0] // 2, self.kernel[1] // 2)

    def out_width(self, in_ch: int) -> int:
        return in_ch if self.conv is None else self.conv

    def out_size(self, h: int, w: int) -> tuple[int, int]:
        """The output's height and width (PyTorch's formula; < 1: the input is too small)."""
        return tuple((n + 2 * p - k) // self.s + 1 for n, k, p in zip((h, w), self.kernel, self.padding))

    def build(self, in_ch: int, norm: str, act: str) -> nn.Module:
        if self.pool == "max":
            return nn.MaxPool2d(self.kernel, self.s, self.padding)
        if self.pool == "avg":
            return nn.AvgPool2d(self.kernel, self.s, self.padding, count_include_pad=False)
        return norms.ConvNormAct(layers.conv(in_ch, self.conv, self.kernel, self.s,
                                             padding=self.padding), norm, act)


def as_branch(v):
    """A branch given as one op mapping is a chain of one."""
    return [v] if isinstance(v, dict) else v


Branch = list[Op]


class Layer(BaseModel):
    """A conv or pool op (its keys), or a concat layer of branches (``concat:``)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    conv: Optional[int] = Field(None, description=Op.model_fields["conv"].description)
    pool: Optional[str] = Field(None, description=Op.model_fields["pool"].description)
    k: Optional[Union[int, list[int]]] = Field(None, description=Op.model_fields["k"].description)
    s: Optional[int] = Field(None, description=Op.model_fields["s"].description)
    valid: Optional[bool] = Field(None, description=Op.model_fields["valid"].description)
    concat: Optional[list[Branch]] = Field(None, min_length=1, description="branches (each a list "
                                           "of ops run in turn) on one input, concatenated")

    @field_validator("concat", mode="before")
    @classmethod
    def _branches(cls, v):
        return [as_branch(b) for b in v] if isinstance(v, list) else v

    _branches_of: list[Branch] = PrivateAttr()  # what ops() returns, validated once

    @model_validator(mode="after")
    def _one_kind(self):
        given = {k: v for k, v in self if k != "concat" and v is not None}
        if self.concat is None:
            self._branches_of = [[Op.model_validate(given)]]  # its errors name the key
            return self
        if given:
            raise ValueError("a concat layer's keys are its branches' (give conv / pool / k / s / "
                             "valid inside them)")
        if any(not b for b in self.concat):
            raise ValueError("every branch of a concat needs at least one op")
        problem = check_branches(self.concat)
        if problem:
            raise ValueError(problem)
        self._branches_of = self.concat
        return self

    def ops(self) -> list[Branch]:
        """The branches (a plain op: one branch of one op)."""
        return self._branches_of

    def out_width(self, in_ch: int) -> int:
        return sum(branch_width(b, in_ch) for b in self.ops())

    def out_size(self, h: int, w: int) -> tuple[int, int]:
        """The first branch's output size (:func:`check_branches` holds the others to it)."""
        return branch_size(self.ops()[0], h, w)

    @property
    def stride(self) -> int:
        return branch_stride(self.ops()[0])

    def build(self, in_ch: int, norm: str, act: str) -> nn.Module:
        if self.concat is None:
            return self.ops()[0][0].build(in_ch, norm, act)
        return Concat(self.concat, in_ch, norm, act)


def branch_width(branch: Branch, in_ch: int) -> int:
    for op in branch:
        in_ch = op.out_width(in_ch)
    return in_ch


def branch_size(branch: Branch, h: int, w: int) -> tuple[int, int]:
    for op in branch:
        h, w = op.out_size(h, w)
    return h, w


def branch_stride(branch: Branch) -> int:
    out = 1
    for op in branch:
        out *= op.s
    return out


def check_branches(branches: list[Branch]) -> Optional[str]:
    """Why the branches' outputs cannot be concatenated, or None: they must agree in size at
    every input size (the same stride, and the same loss to unpadded kernels)."""
    strides = {branch_stride(b) for b in branches}
    if len(strides) > 1:
        return f"its branches stride differently ({sorted(strides)}), so they cannot be concatenated"
    probe = range(96, 96 + min(2 * strides.pop(), 64))  # the stride's residues (a chain of
    # strided ops stride 2^n: past 2^5, 64 sides stand for them, and bounded work for any spec)
    if len({tuple(branch_size(b, n, n) for n in probe) for b in branches}) > 1:
        return ("its branches' outputs differ in size (kernels, padding), so they cannot be "
                "concatenated: give 'valid' to all or none of the branches' strided ops")
    return None


class Concat(nn.Module):
    """Branches on one input, concatenated along the channels (an Inception module)."""

    def __init__(self, branches: list[Branch], in_ch: int, norm: str, act: str):
        super().__init__()
        self.n_branches = len(branches)
        for i, branch in enumerate(branches):
            mods, c = [], in_ch
            for op in branch:
                mods.append(op.build(c, norm, act))
                c = op.out_width(c)
            self.add_module(f"branch{i}", mods[0] if len(mods) == 1 else nn.Sequential(*mods))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.children()], 1)
