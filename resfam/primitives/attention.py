"""Channel attention: the block's attention slot, after the residual branch's last norm and before
the merge (``y = A(F(x)) + x``), as SENet and timm place it, or with ``after: 3x3`` inside the
branch after the bottleneck's 3x3 (RegNetY, Radosavovic et al. 2020, Sec. 4: SE "following the
3x3 conv"). The spec's ``attn`` section, a scalar or one entry per stage.

- ``none``: no attention.
- ``se``: squeeze-and-excitation (Hu et al. 2018, "Squeeze-and-Excitation Networks", Eq. (2)-(4)):
  ``s = sigmoid(W2 relu(W1 avgpool(u)))``, ``A(u) = u * s``; W1 reduces C channels to
  ``C * rd_ratio`` rounded to a multiple of ``rd_divisor`` (timm's rounding), 1x1 convs with
  biases. rd_ratio 1/16 is the paper's r = 16; ResNet-RS uses 1/4; ``rd_min`` floors the
  reduced width (TResNet's 64, Ridnik et al. 2021, Sec. 3.2). With ``rd_of: input`` the
  reduced width is ``round(rd_ratio * w_in)`` of the block's *input* width ``w_in`` (RegNetY's
  ``se_ratio``; Python's rounding, half to even, as pycls; ``rd_divisor`` unused).
- ``eca``: efficient channel attention (Wang et al. 2020, "ECA-Net", Eq. (12) and Sec. 3.3):
  a 1-D convolution across the pooled channels, no reduction, kernel size
  ``k = |log2(C) / gamma + b / gamma|`` made odd (gamma 2, b 1), at least 3.

- ``gc``: global context (Cao et al. 2019, "GCNet: Non-local Networks Meet Squeeze-Excitation
  Networks and Beyond", Eq. (4) and Fig. 4(d)): ``A(u) = u + W2 relu(LN(W1 c))`` with the
  context ``c = sum_j softmax_j(W_k u_j) u_j``, an attention-weighted pool over positions
  (``W_k`` a 1x1 conv to one channel); W1 reduces to ``rd_ratio`` of the channels (timm's gcresnet:
  1/8, ``rd_divisor`` 1), the LayerNorm's eps is 1e-6 (timm's; GCNet's code uses PyTorch's 1e-5).
  Children ``conv_attn`` and ``mlp_add.fc1 / norm / fc2`` as timm names them.
- ``bat``: bilinear attentional transform (Chi et al. 2020, "Non-Local Neural Networks With
  Grouped Bilinear Attentional Transforms", Eq. (3)-(6); timm's ``BatNonLocalAttn``):
  ``A(u) = u + drop(g(T(f(u))))`` with ``f``, ``g`` 1x1 conv-norm-act units to and from
  ``rd_ratio`` of the channels and ``T(v) = P v Q``: ``P`` (H x H) and ``Q`` (W x W) are
  ``block_size`` x ``block_size`` matrices, one pair per group of channels (``groups``), each
  Kronecker-expanded by the identity to the map (``P = p (x) I_(H / block_size)``), so the map's
  sides must be multiples of ``block_size``. ``p`` comes from a 1x1 conv-norm-act to ``groups``
  channels, max-pooled to ``block_size`` x 1, a (``block_size`` x 1) conv with bias, a sigmoid and
  rows normalised to sum 1 (``q`` likewise along the other axis, columns normalised). The
  Kronecker product is applied as a contraction over blocks (``block_size`` multiplies per
  output, not H: the same arithmetic as timm's dense matrices, less of it). ``dropout``: a
  channel dropout (timm's 0.2) in training. Children ``conv1``, ``ba.conv1 / conv_p / conv_q /
  conv2``, ``conv2`` as timm names them; its own activation (``act``, ReLU) and the network's
  norm.

The module is registered as ``se`` in the block (timm's name for every attention type), so
timm's ``seresnet*`` / ``ecaresnet*`` checkpoints load by name.
"""
from __future__ import annotations

import math
from typing import Literal, Optional

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from .blocks.base import KeyProblem
from . import norms
from .layers import ACTS, act, reduced_channels

ATTN_TYPES = ("none", "se", "eca", "gc", "bat")


class AttnParams(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    type: Literal[ATTN_TYPES] = Field("none", description="channel attention after the branch")
    rd_ratio: float = Field(1 / 16, gt=0.0, le=1.0, description="se, gc, bat: reduced width / "
                                                               "channels (the paper's 1/r)")
    rd_divisor: int = Field(8, ge=1, description="se, gc, bat: the reduced width is rounded to a "
                                                 "multiple of this")
    kernel_size: Optional[int] = Field(None, ge=1, description="eca: 1-D kernel size (default: "
                                                               "from the channel count, Eq. (12))")
    act: Literal[tuple(ACTS)] = Field("relu", description="se, gc, bat: the attention's own "
                                      "activation (timm's RegNets use the network's, e.g. silu)")
    after: Literal["branch", "3x3"] = Field(
        "branch", description="where the slot sits: after the residual branch (SENet), or after "
                              "the bottleneck's 3x3, its norm and activation (RegNetY)")
    gain: float = Field(1.0, gt=0.0, description="the slot's output times this (normaliser-free "
                                                 "nets: 2, undoing the sigmoid gate's mean of 1/2; "
                                                 "timm's attn_gain)")
    rd_min: int = Field(0, ge=0, description="se: the reduced width is at least this (TResNet: 64; "
                                             "0: rd_divisor)")
    block_size: int = Field(7, ge=1, le=64, description="bat: the side of each group's P and Q "
                                                        "(timm's bat_resnext26ts: 8); every map "
                                                        "the slot sees must be a multiple of it")
    groups: int = Field(2, ge=1, description="bat: groups of channels with their own P and Q; "
                                             "they divide the reduced width")
    dropout: float = Field(0.2, ge=0.0, lt=1.0, description="bat: channel dropout (Dropout2d) on "
                                                            "its output in training (timm's 0.2)")
    rd_of: Literal["channels", "input"] = Field(
        "channels", description="se: the reduced width is rd_ratio x the attended channels "
                                "(SENet), or round(rd_ratio x the block's input width) (RegNetY)")

    def check(self, in_ch: int, out_ch: int, stride: int) -> None:
        if self.type == "eca" and self.kernel_size is not None and self.kernel_size % 2 == 0:
            raise KeyProblem("kernel_size", f"an eca kernel must be odd, got {self.kernel_size}",
                             "use an odd kernel_size, or leave it out")

    def check_slot(self, channels: int) -> None:
        """The slot's own width (the branch's output, or the bottleneck's 3x3's)."""
        if self.type != "bat":  # (the only type whose keys depend on the width)
            return
        rd = reduced_channels(channels, self.rd_ratio, self.rd_divisor)
        if rd % self.groups:
            raise KeyProblem("groups", f"bat's {self.groups} groups do not divide its reduced "
                             f"width {rd} (rd_ratio {self.rd_ratio} of {channels} channels)",
                             "use groups that divide rd_ratio x the channels (timm: 2)")

    def input_multiple(self, reduction: int) -> int:
        """What the input's side must be a multiple of, for this slot in a stage at
        ``reduction`` (bat: its blocks tile every map it sees)."""
        return self.block_size * reduction if self.type == "bat" else 1


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduced: int, act_kind: str = "relu"):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, reduced, 1)
        self.act = act(act_kind, inplace=True, plain=True)
        self.fc2 = nn.Conv2d(reduced, channels, 1)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        s = self.fc2(self.act(self.fc1(u.mean((2, 3), keepdim=True))))
        return u * torch.sigmoid(s)


def eca_kernel_size(channels: int, gamma: float = 2.0, b: float = 1.0) -> int:
    t = int(abs(math.log2(channels) / gamma + b / gamma))
    return max(t if t % 2 else t + 1, 3)


class EfficientChannelAttention(nn.Module):
    def __init__(self, channels: int, kernel_size: Optional[int] = None):
        super().__init__()
        k = kernel_size or eca_kernel_size(channels)
        self.conv = nn.Conv1d(1, 1, k, padding=(k - 1) // 2, bias=False)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        w = self.conv(u.mean((2, 3)).unsqueeze(1))  # (N, 1, C): a conv across channels
        return u * torch.sigmoid(w).view(u.shape[0], -1, 1, 1)


class LayerNormChannels(nn.LayerNorm):
    """LayerNorm over the channels of an N x C x H x W tensor, at each position."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


class ContextTransform(nn.Module):
    """GCNet's transform ``W2 relu(LN(W1 c))``: a bottleneck of two 1x1 convs with biases."""

    def __init__(self, channels: int, reduced: int, act_kind: str = "relu"):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, reduced, 1)
        self.norm = LayerNormChannels(reduced, eps=1e-6)
        self.act = act(act_kind, inplace=True, plain=True)
        self.fc2 = nn.Conv2d(reduced, channels, 1)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.norm(self.fc1(c))))


class GlobalContext(nn.Module):
    def __init__(self, channels: int, reduced: int, act_kind: str = "relu"):
        super().__init__()
        self.conv_attn = nn.Conv2d(channels, 1, 1)
        self.mlp_add = ContextTransform(channels, reduced, act_kind)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        n, c, h, w = u.shape
        weights = torch.softmax(self.conv_attn(u).view(n, 1, h * w), dim=-1)  # over positions
        context = torch.bmm(u.view(n, c, h * w), weights.transpose(1, 2)).view(n, c, 1, 1)
        return u + self.mlp_add(context)  # fusion by addition, at every position


def _unit(in_ch: int, out_ch: int, norm_kind: str, act_kind: str) -> nn.Module:
    """A plain 1x1 conv, its norm and the attention's own activation (timm's ``ConvNormAct``)."""
    return norms.ConvNormAct(nn.Conv2d(in_ch, out_ch, 1, bias=False), norm_kind, act_kind, plain=True)


class BilinearTransform(nn.Module):
    """``T(v) = P v Q`` (Chi et al. 2020, Eq. 3-6): one ``block_size``-square P and Q per group
    of channels, from the map's row and column maxima, Kronecker-expanded to the map."""

    def __init__(self, channels: int, block_size: int, groups: int, norm_kind: str, act_kind: str):
        super().__init__()
        self.block_size, self.groups = block_size, groups
        self.size_rule = (f"bat attention (block_size {block_size}) tiles its map in blocks: give "
                          "the network an input whose height and width are multiples of its "
                          "spec's input_multiple() (bat_resnext26ts: 256)")
        self.conv1 = _unit(channels, groups, norm_kind, act_kind)
        self.conv_p = nn.Conv2d(groups, block_size * block_size * groups, (block_size, 1))
        self.conv_q = nn.Conv2d(groups, block_size * block_size * groups, (1, block_size))
        self.conv2 = _unit(channels, channels, norm_kind, act_kind)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        n, c, h, w = v.shape
        b, g = self.block_size, self.groups
        torch._assert((h % b == 0) & (w % b == 0), self.size_rule)  # (&: fx traces it)
        z = self.conv1(v)
        p = torch.sigmoid(self.conv_p(F.adaptive_max_pool2d(z, (b, 1))).view(n, g, b, b))
        q = torch.sigmoid(self.conv_q(F.adaptive_max_pool2d(z, (1, b))).view(n, g, b, b))
        p = p / p.sum(dim=3, keepdim=True)  # each row of P sums to 1
        q = q / q.sum(dim=2, keepdim=True)  # each column of Q
        # (p (x) I) v (q (x) I): row i*t+a of the map is sum_j p[i, j] row j*t+a (t = h / b),
        # column k*s+l is sum_j q[j, k] column j*s+l (s = w / b): matmuls over the block index,
        # each group's P and Q shared by its channels (expanded views)
        cg = c // g
        p = p.view(n, g, 1, b, b).expand(n, g, cg, b, b)
        q = q.view(n, g, 1, 1, b, b).expand(n, g, cg, 1, b, b)
        x = torch.matmul(p, v.reshape(n, g, cg, b, (h // b) * w))                  # rows
        x = torch.matmul(x.view(n, g, cg, h, b, w // b).transpose(-1, -2), q)      # columns
        x = x.transpose(-1, -2)
        return self.conv2(x.reshape(n, c, h, w))


class BilinearAttention(nn.Module):
    """BAT's slot ``u + drop(g(T(f(u))))`` (timm's ``BatNonLocalAttn``)."""

    def __init__(self, channels: int, reduced: int, p: AttnParams, norm_kind: str):
        super().__init__()
        self.conv1 = _unit(channels, reduced, norm_kind, p.act)
        self.ba = BilinearTransform(reduced, p.block_size, p.groups, norm_kind, p.act)
        self.conv2 = _unit(reduced, channels, norm_kind, p.act)
        self.dropout = nn.Dropout2d(p.dropout)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return u + self.dropout(self.conv2(self.ba(self.conv1(u))))


def se_reduced(p: AttnParams, channels: int, in_ch: int) -> int:
    """The squeeze width of an ``se`` slot on ``channels`` in a block whose input has ``in_ch``:
    timm's rounding to ``rd_divisor``, or with ``rd_of: input`` pycls's ``round(w_in * se_r)``
    (half to even, as timm's and torchvision's RegNets)."""
    if p.rd_of == "input":
        return max(1, round(in_ch * p.rd_ratio))
    return reduced_channels(channels, p.rd_ratio, p.rd_divisor, p.rd_min)


def build_attn(p: AttnParams, channels: int, in_ch: Optional[int] = None,
               norm_kind: str = "bn") -> Optional[nn.Module]:
    """The slot's module on ``channels`` (``in_ch``: the block's input width, for ``rd_of``;
    ``norm_kind``: the network's norm, which bat's units use)."""
    if p.type == "se":
        return SqueezeExcite(channels, se_reduced(p, channels, in_ch or channels), p.act)
    if p.type == "eca":
        return EfficientChannelAttention(channels, p.kernel_size)
    if p.type == "gc":
        return GlobalContext(channels, reduced_channels(channels, p.rd_ratio, p.rd_divisor), p.act)
    if p.type == "bat":
        return BilinearAttention(channels, reduced_channels(channels, p.rd_ratio, p.rd_divisor), p,
                                 norm_kind)
    return None
