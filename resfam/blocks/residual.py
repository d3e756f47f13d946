"""The one residual block: units (from the block type) + placement (from the order) + shortcut +
merge. Every family's block is an instance of this class.

Module names follow torchvision: ``conv1..convN`` are the units, ``bn{i}`` normalises the output
of ``conv{i}`` and ``bn0`` the block input (pre-activation), ``se`` is the attention slot,
``downsample`` the projection shortcut and ``gate`` the highway gate. ResNet v1 checkpoints therefore load by name.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .. import layers, norms
from ..merges import HighwayGate, MergeParams
from ..orders import Placement
from .base import BlockParams


class ResidualBlock(nn.Module):
    def __init__(self, params: BlockParams, in_ch: int, out_ch: int, *, stride: int = 1,
                 dilation: int = 1, first_dilation: Optional[int] = None,
                 placement: Placement, shortcut: Optional[nn.Module], merge: MergeParams,
                 attn: Optional[nn.Module] = None, norm: str = "bn", act: str = "relu",
                 drop_path: float = 0.0):
        super().__init__()
        units = params.units(in_ch, out_ch, stride, dilation, first_dilation or dilation, norm, act)
        self.placement = placement
        self.merge_type = merge.type
        self.bn0 = norms.norm(norm, in_ch) if placement.pre_norm else None
        # iResNet's first middle block activates its input and adds relu(x) as the identity
        # (the official in-place ReLU); a new tensor, so the caller's x is left as it was
        self.act0 = (layers.act(act, inplace=not placement.pre_act)
                     if placement.pre_norm or placement.pre_act else None)
        self.act = layers.act(act)
        self.drop = nn.Dropout(params.dropout) if params.dropout > 0 else None
        self.n_units = len(units)
        self.aa = next((u.aa for u in units if u.aa is not None), None)  # timm's name
        plan = []  # (conv name, norm name or None, act after, dropout after, aa after), for forward
        for i, unit in enumerate(units, start=1):
            inner = i < len(units)
            needs_norm = (inner and not unit.normed) or (not inner and placement.last_norm)
            setattr(self, f"conv{i}", unit.module)
            setattr(self, f"bn{i}", norms.norm(norm, unit.out_channels) if needs_norm else None)
            act_after = (inner or (params.act_last and placement.last_norm)) and not unit.normed
            plan.append((f"conv{i}", f"bn{i}" if needs_norm else None, act_after,
                         i == 1 and self.drop is not None, unit.aa is not None))
        # names, not module references: swaps such as SyncBatchNorm.convert_sync_batchnorm
        # replace entries of _modules, and forward sees them
        self._plan = tuple(plan)
        self.se = attn  # the attention slot (resfam.attention), timm's name for it
        self.downsample = shortcut
        self.gate = (HighwayGate(in_ch, out_ch, stride, merge.kernel_size, merge.bias_init)
                     if merge.type == "gate" else None)
        self.bn_out = norms.norm(norm, out_ch) if placement.merge_norm else None
        self.drop_path = layers.drop_path(drop_path)

    def last_norm_or_conv(self) -> nn.Module:
        """The module whose weight ``zero_init_last`` zeroes (Goyal et al. 2017, Sec. 5.1)."""
        bn = getattr(self, f"bn{self.n_units}")
        return bn if norms.is_norm(bn) else getattr(self, f"conv{self.n_units}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mods = self._modules
        shortcut_in = x
        out = x
        if self.bn0 is not None:
            out = self.act0(self.bn0(x))
            if self.placement.shortcut_preact and self.downsample is not None:
                shortcut_in = out
        elif self.act0 is not None:  # iResNet (official code): F(relu x) + relu x
            x = self.act0(x)
            shortcut_in = out = x
        for conv, bn, act, drop, aa in self._plan:
            out = mods[conv](out)
            if bn is not None:
                out = mods[bn](out)
            if act:
                out = self.act(out)
            if drop:
                out = self.drop(out)
            if aa:
                out = self.aa(out)
        if self.se is not None:
            out = self.se(out)
        out = self.drop_path(out)  # always called: its output is the branch F(x) (resfam.probe hooks it)
        if self.merge_type != "none":
            carry = shortcut_in if self.downsample is None else self.downsample(shortcut_in)
            if self.gate is not None:
                out = self.gate(out, carry, x)
            else:
                out += carry  # in place, as torchvision and timm: `out` is this block's own tensor
        if self.bn_out is not None:
            out = self.bn_out(out)
        if self.placement.merge_act:
            out = self.act(out)
        return out
