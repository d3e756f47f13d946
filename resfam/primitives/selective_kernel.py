"""Selective kernel convolution (Li et al. 2019, "Selective Kernel Networks", Sec. 3.1, Eq. (1)-(6)):
the block's 3x3 conv becomes several conv-norm-act *paths* with growing receptive fields (a 3x3,
and a 3x3 dilated by 2 for the paper's 5x5), *fused* by summing and global pooling, reduced by a
1x1 conv, norm and act to ``d`` channels, and *selected* by a softmax across the paths per
channel: ``V = sum_m softmax_m(A_m z) * U_m``.

As timm builds SKNets (``timm/layers/selective_kernel.py``): ``split_input`` gives each path its
own slice of the input channels (fewer parameters; skresnet18/34/50), ``d`` is the output width
times ``rd_ratio`` rounded to ``rd_divisor``. The unit normalises and activates its own paths, so
the block adds no norm after it. Module names follow timm's (``paths.K.conv / bn``,
``attn.fc_reduce / bn / fc_select``), so its checkpoints load by name.
"""
from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from . import layers, norms
from .layers import reduced_channels


class SKParams(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    paths: int = Field(2, ge=2, le=4, description="paths: 3x3 convs dilated 1, 2, ... (kernels 3, 5, ...)")
    rd_ratio: float = Field(1 / 16, gt=0.0, le=1.0, description="attention width d / output width")
    rd_divisor: int = Field(8, ge=1, description="d is rounded to a multiple of this")
    split_input: bool = Field(True, description="each path reads its own slice of the input channels")


class SelectiveKernelAttn(nn.Module):
    """Fuse and select (Eq. (1)-(5)): per-channel softmax weights over the paths."""

    def __init__(self, channels: int, paths: int, reduced: int, norm: str, act: str):
        super().__init__()
        self.paths = paths
        self.fc_reduce = nn.Conv2d(channels, reduced, 1, bias=False)
        self.bn = norms.norm(norm, reduced)
        self.act = layers.act(act, plain=True)
        self.fc_select = nn.Conv2d(reduced, channels * paths, 1, bias=False)

    def forward(self, u: list[torch.Tensor]) -> torch.Tensor:
        """``u``: the paths' outputs U_m (N x C x H x W each); returns N x paths x C x 1 x 1."""
        s = u[0]
        for um in u[1:]:  # Eq. (1): U = sum_m U_m
            s = s + um
        z = self.act(self.bn(self.fc_reduce(s.mean((2, 3), keepdim=True))))  # Eq. (2), (3)
        a = self.fc_select(z)
        return torch.softmax(a.view(a.shape[0], self.paths, -1, 1, 1), dim=1)  # Eq. (5)


class SelectiveKernel(nn.Module):
    def __init__(self, p: SKParams, in_ch: int, out_ch: int, stride: int, dilation: int,
                 groups: int, norm: str, act: str):
        super().__init__()
        self.split = in_ch // p.paths if p.split_input else 0  # input channels per path; 0: all
        path_in = self.split or in_ch
        groups = min(out_ch, groups)
        self.paths = nn.ModuleList(
            norms.ConvNormAct(layers.conv(path_in, out_ch, 3, stride, dilation * (k + 1), groups), norm, act)
            for k in range(p.paths))
        self.attn = SelectiveKernelAttn(out_ch, p.paths, reduced_channels(out_ch, p.rd_ratio, p.rd_divisor),
                                        norm, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u: list[torch.Tensor] = []
        for k, path in enumerate(self.paths):
            u.append(path(x.narrow(1, k * self.split, self.split) if self.split else x))
        a = self.attn(u)
        # Eq. (6): V = sum_m a_m U_m, path by path. timm stacks the paths into one N x paths x C x
        # H x W tensor and multiplies and sums over it: the same numbers (bit-exact, the parity
        # test), with a copy of every path written and read again (4% slower at batch 8)
        v = u[0] * a[:, 0]
        for m in range(1, len(u)):
            v = v + u[m] * a[:, m]
        return v
