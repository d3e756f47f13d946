"""The one residual block: units (from the block type) + placement (from the order) + shortcut +
merge. Every family's block is an instance of this class.

Module names follow torchvision: ``conv1..convN`` are the units, ``bn{i}`` normalises the output
of ``conv{i}`` and ``bn0`` the block input (pre-activation), ``se`` is the attention slot (after
the branch, or after ``conv2`` with ``attn.after: 3x3``), ``downsample`` the projection shortcut
and ``gate`` the highway gate. ResNet v1 checkpoints therefore load by name.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .. import layers, norms
from ..merges import HighwayGate, MergeParams
from ..orders import Placement
from .base import BlockParams


MAX_UNITS = 4  # convs in a residual branch: basic 2, bottleneck and res2 3, NFNet-F's 4


def run_blocks(blocks: nn.Sequential, x: torch.Tensor, checkpointed: bool) -> torch.Tensor:
    """A stage's blocks on ``x``; with ``checkpointed`` (and gradients on) each block's
    activations are recomputed in the backward pass (Chen et al. 2016) instead of stored."""
    if checkpointed and torch.is_grad_enabled() and not torch.jit.is_scripting():
        for block in blocks:
            x = checkpoint(block, x, use_reentrant=False)
        return x
    return blocks(x)


def _gained(out: torch.Tensor, gain: Optional[float]) -> torch.Tensor:
    """The attention slot's output times its gain where the spec gives one (attn.gain)."""
    return out if gain is None else gain * out


class ResidualBlock(nn.Module):
    """``y = merge(A(F(x)), C(x))``, where F is the block type's units with the norms and
    activations the order places, A the attention slot and C the shortcut (see the module
    docstring for the names). Absent pieces are ``None``, so forward reads top to bottom and
    TorchScript compiles it."""

    def __init__(self, params: BlockParams, in_ch: int, out_ch: int, *, stride: int = 1,
                 dilation: int = 1, first_dilation: Optional[int] = None,
                 placement: Placement, shortcut: Optional[nn.Module], merge: MergeParams,
                 attn=None, norm: str = "bn", act: str = "relu",
                 drop_path: float = 0.0, shortcut_reads_preact: bool = False,
                 input_std: Optional[float] = None):
        super().__init__()
        units = params.units(in_ch, out_ch, stride, dilation, first_dilation or dilation, norm, act)
        if not 1 <= len(units) <= MAX_UNITS:
            raise ValueError(f"a block type gave {len(units)} units; 1 to {MAX_UNITS} are supported")
        self.placement = placement  # what the order placed (forward reads the flags below)
        self.shortcut_preact = placement.shortcut_preact
        self.identity_preact = shortcut_reads_preact and placement.pre_norm
        self.has_merge = merge.type != "none"
        # normaliser-free blocks (resfam.primitives.merges): the pre-activated input times
        # 1 / beta_l, the branch times alpha
        self.beta = None if input_std is None else 1.0 / input_std
        self.alpha = merge.alpha if merge.alpha != 1.0 else None
        # SkipInit (De & Smith 2020): the branch times a learned scalar, 0 at initialisation
        self.skipinit_gain = (nn.Parameter(torch.zeros(())) if merge.skipinit and merge.type == "add"
                              else None)
        self.bn0 = norms.norm(norm, in_ch) if placement.pre_norm else None
        # in place only on the norm's own output: iResNet's first middle block activates its
        # input and adds relu(x) as the identity (the official in-place ReLU), and norm 'none' is
        # an Identity that hands back x itself; both times a new tensor, so the identity the
        # block adds and the caller's x stay as they were
        self.act0 = (layers.act(act, inplace=placement.pre_norm and not isinstance(self.bn0, nn.Identity))
                     if placement.pre_norm or placement.pre_act else None)
        self.drop = nn.Dropout(params.dropout) if params.dropout > 0 else None
        self.n_units = len(units)
        self.aa = next((u.aa for u in units if u.aa is not None), None)  # timm's name
        self.aa_after = next((i for i, u in enumerate(units, start=1) if u.aa is not None), 0)
        for i in range(1, MAX_UNITS + 1):  # conv{i}, its norm bn{i} and activation act{i}
            unit = units[i - 1] if i <= len(units) else None
            inner = i < len(units)
            needs_norm = unit is not None and not unit.normed and (inner or placement.last_norm)
            acts = unit is not None and not unit.normed and (
                inner or (params.act_last and placement.last_norm))
            setattr(self, f"conv{i}", unit.module if unit is not None else None)
            setattr(self, f"bn{i}", norms.norm(norm, unit.out_channels) if needs_norm else None)
            setattr(self, f"act{i}", layers.act(act) if acts else None)
        # the attention slot (resfam.primitives.attention; timm's name for it): after the branch
        # (se_site 0), or after the second unit (the bottleneck's 3x3, RegNetY): after its norm
        # and activation in order post (2), right after the conv where the order puts the next
        # norm before the next conv (1: pre-activation, timm's regnetv_*)
        # (``attn``: resfam.primitives.attention.AttnParams, None for none)
        from ..attention import build_attn  # (attention imports this package's KeyProblem)

        after_3x3 = attn is not None and attn.after == "3x3"
        self.se_site = 0 if not after_3x3 else (1 if placement.pre_norm else 2)
        self.se = None if attn is None else build_attn(
            attn, units[1].out_channels if after_3x3 else out_ch, in_ch, norm)
        self.attn_gain = attn.gain if self.se is not None and attn.gain != 1.0 else None
        self.downsample = shortcut
        self.gate = (HighwayGate(in_ch, out_ch, stride, merge.kernel_size, merge.bias_init)
                     if merge.type == "gate" else None)
        self.bn_out = norms.norm(norm, out_ch) if placement.merge_norm else None
        self.act = layers.act(merge.act_kind(act)) if placement.merge_act and merge.act else None
        self.drop_path = layers.drop_path(drop_path)

    def last_norm_or_conv(self) -> nn.Module:
        """The module whose weight ``zero_init_last`` zeroes (Goyal et al. 2017, Sec. 5.1)."""
        bn = getattr(self, f"bn{self.n_units}")
        return bn if norms.is_norm(bn) else getattr(self, f"conv{self.n_units}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut_in = x
        out = x
        if self.bn0 is not None and self.act0 is not None:  # pre-activation
            out = self.act0(self.bn0(x))
            if self.beta is not None:
                out = out * self.beta
            if (self.shortcut_preact and self.downsample is not None) or self.identity_preact:
                shortcut_in = out
        elif self.act0 is not None:  # iResNet (official code): F(relu x) + relu x
            x = self.act0(x)
            shortcut_in = out = x

        # the residual branch F: each unit's conv, norm and activation
        out = self.conv1(out)
        if self.bn1 is not None:
            out = self.bn1(out)
        if self.act1 is not None:
            out = self.act1(out)
        if self.drop is not None:  # WRN's dropout between the convs
            out = self.drop(out)
        if self.aa is not None and self.aa_after == 1:
            out = self.aa(out)
        if self.conv2 is not None:
            out = self.conv2(out)
            if self.se is not None and self.se_site == 1:
                out = _gained(self.se(out), self.attn_gain)
            if self.bn2 is not None:
                out = self.bn2(out)
            if self.act2 is not None:
                out = self.act2(out)
            if self.aa is not None and self.aa_after == 2:
                out = self.aa(out)
            if self.se is not None and self.se_site == 2:
                out = _gained(self.se(out), self.attn_gain)
        if self.conv3 is not None:
            out = self.conv3(out)
            if self.bn3 is not None:
                out = self.bn3(out)
            if self.act3 is not None:
                out = self.act3(out)
        if self.conv4 is not None:
            out = self.conv4(out)
            if self.bn4 is not None:
                out = self.bn4(out)
            if self.act4 is not None:
                out = self.act4(out)

        if self.se is not None and self.se_site == 0:
            out = _gained(self.se(out), self.attn_gain)
        out = self.drop_path(out)  # always called: its output is F(x) (resfam.probe hooks it)
        if self.skipinit_gain is not None:
            out = out * self.skipinit_gain
        if self.has_merge:
            carry = shortcut_in if self.downsample is None else self.downsample(shortcut_in)
            if self.gate is not None:
                out = self.gate(out, carry, x)
            elif self.alpha is not None:
                out = out * self.alpha + carry
            else:
                out += carry  # in place, as torchvision and timm: `out` is this block's own tensor
        if self.bn_out is not None:
            out = self.bn_out(out)
        if self.act is not None:
            out = self.act(out)
        return out
