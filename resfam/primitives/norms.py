"""Normalisation layers by name, and the conversions detection code bases expect.

| name | layer | use |
|---|---|---|
| ``bn`` | ``nn.BatchNorm2d`` | training from scratch |
| ``syncbn`` | ``nn.SyncBatchNorm`` | multi-GPU training (statistics over all replicas; CUDA only in training) |
| ``frozen_bn`` | ``torchvision.ops.FrozenBatchNorm2d`` | fine-tuning detectors: fixed statistics and affine terms |
| ``gn`` | ``nn.GroupNorm(gcd(G, C), C)``, G = 32 or the build's ``norm_groups`` | small per-device batches (Wu & He 2018, 32 groups) |
| ``none`` | ``nn.Identity`` | unnormalised nets: the signal-propagation and degradation studies (Brock et al. 2021) |
| ``evonorm_s0`` | :class:`EvoNormS0` (norm *and* activation: use ``act: identity``) | batch-independent (Liu et al. 2020) |
| ``frn`` | :class:`FilterResponseNorm` with TLU (norm *and* activation: ``act: identity``) | batch-independent (Singh & Krishnan 2020) |
"""
from __future__ import annotations

import contextlib
import contextvars
import math

import torch
from torch import nn

from . import layers


class NormAct(nn.Module):
    """A layer that normalises and applies its own non-linearity (the spec's ``act`` is then
    ``identity``); per-channel ``weight`` and ``bias`` as a norm's."""

    def __init__(self, channels: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def affine(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class EvoNormS0(NormAct):
    """EvoNorm-S0 (Liu et al. 2020, "Evolving Normalization-Activation Layers", Table 1):
    ``y = x * sigmoid(v * x) / sqrt(group_var(x) + eps) * gamma + beta``, the variance over
    each of 32 channel groups and the positions of one sample (as GroupNorm's; gcd(32, C) groups
    where C is not a multiple of 32, as resfam's ``gn``)."""

    def __init__(self, channels: int, groups: int = 32, eps: float = 1e-5):
        super().__init__(channels, eps)
        self.groups = math.gcd(groups, channels)
        self.v = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        grouped = x.reshape(n, self.groups, c // self.groups, h, w)
        std = (grouped.var(dim=(2, 3, 4), unbiased=False, keepdim=True) + self.eps).sqrt()
        std = std.expand(grouped.shape).reshape(n, c, h, w)
        return self.affine(x * torch.sigmoid(x * self.v.view(1, -1, 1, 1)) / std)


class FilterResponseNorm(NormAct):
    """Filter Response Normalisation with its thresholded linear unit (Singh & Krishnan 2020,
    Eq. (1)-(3)): ``y = max(gamma * x / sqrt(mean_hw(x^2) + eps) + beta, tau)``."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__(channels, eps)
        self.tau = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * torch.rsqrt(x.square().mean(dim=(2, 3), keepdim=True) + self.eps)
        return torch.maximum(self.affine(x), self.tau.view(1, -1, 1, 1))


_GN_GROUPS = contextvars.ContextVar("gn_groups", default=32)  # a count, or ("size", channels)


@contextlib.contextmanager
def group_count(groups: int | None, group_size: int | None = None):
    """While a network is assembled, ``gn`` layers use ``groups`` groups, or without a count
    groups of ``group_size`` channels (timm's ``group_size``), else 32 groups."""
    token = _GN_GROUPS.set(groups or (("size", group_size) if group_size else 32))
    try:
        yield
    finally:
        _GN_GROUPS.reset(token)


def _group_norm(channels: int, eps: float = 1e-5) -> nn.Module:
    groups = _GN_GROUPS.get()
    if isinstance(groups, tuple):  # groups of a given size: channels / size of them
        groups = max(1, channels // groups[1])
    return nn.GroupNorm(math.gcd(groups, channels), channels, eps=eps)


def _frozen(channels: int, eps: float = 1e-5) -> nn.Module:
    from torchvision.ops import FrozenBatchNorm2d

    return FrozenBatchNorm2d(channels, eps=eps)


_EPS = contextvars.ContextVar("norm_eps", default=None)


@contextlib.contextmanager
def norm_eps(eps: float | None):
    """While a network is assembled, norm layers add ``eps`` to the variance (None: each
    layer's default, 1e-5; Inception's BatchNorm: 1e-3, the spec's ``norm_eps``)."""
    token = _EPS.set(eps)
    try:
        yield
    finally:
        _EPS.reset(token)


NORMS = {
    "bn": nn.BatchNorm2d,
    "syncbn": nn.SyncBatchNorm,
    "frozen_bn": _frozen,
    "gn": _group_norm,
    "none": lambda c: nn.Identity(),
    "evonorm_s0": EvoNormS0,
    "frn": FilterResponseNorm,
}
BATCH_NORMS = (nn.BatchNorm2d, nn.SyncBatchNorm)


def norm(kind: str, channels: int) -> nn.Module:
    eps = _EPS.get()
    if eps is None or kind == "none":
        return NORMS[kind](channels)
    return NORMS[kind](channels, eps=eps)


class ConvNormAct(nn.Sequential):
    """``conv``, its norm and activation as one module (timm's ``ConvNormAct`` names:
    ``conv``, ``bn``, ``act``)."""

    def __init__(self, conv: nn.Conv2d, norm_kind: str, act: str, plain: bool = False):
        super().__init__()
        self.conv, self.bn = conv, norm(norm_kind, conv.out_channels)
        self.act = layers.act(act, plain=plain)  # (plain: an attention module's own activation)


def is_norm(module: nn.Module) -> bool:
    from torchvision.ops import FrozenBatchNorm2d

    return isinstance(module, (nn.modules.batchnorm._NormBase, nn.GroupNorm, FrozenBatchNorm2d, NormAct))


def eval_norms(module: nn.Module) -> None:
    """Every norm layer under ``module`` to eval mode (``norm_eval``: statistics fixed while the
    rest trains)."""
    for mod in module.modules():
        if is_norm(mod):
            mod.eval()


def freeze_batch_norm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm / SyncBatchNorm in ``module`` by a FrozenBatchNorm2d holding the
    same statistics and affine terms (in place where possible; returns the converted module)."""
    from torchvision.ops import FrozenBatchNorm2d

    if isinstance(module, BATCH_NORMS):
        frozen = FrozenBatchNorm2d(module.num_features, eps=module.eps)
        with torch.no_grad():
            if module.affine:
                frozen.weight.copy_(module.weight)
                frozen.bias.copy_(module.bias)
            frozen.running_mean.copy_(module.running_mean)
            frozen.running_var.copy_(module.running_var)
        return frozen.to(module.running_mean.device)
    for name, child in module.named_children():
        new = freeze_batch_norm(child)
        if new is not child:
            setattr(module, name, new)
    return module
