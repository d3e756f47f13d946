"""Normalisation layers by name, and the conversions detection code bases expect.

| name | layer | use |
|---|---|---|
| ``bn`` | ``nn.BatchNorm2d`` | training from scratch |
| ``syncbn`` | ``nn.SyncBatchNorm`` | multi-GPU training (statistics over all replicas; CUDA only in training) |
| ``frozen_bn`` | ``torchvision.ops.FrozenBatchNorm2d`` | fine-tuning detectors: fixed statistics and affine terms |
| ``gn`` | ``nn.GroupNorm(gcd(32, C), C)`` | small per-device batches (Wu & He 2018, 32 groups) |
| ``none`` | ``nn.Identity`` | unnormalised nets: the signal-propagation and degradation studies (Brock et al. 2021) |
"""
from __future__ import annotations

import math

import torch
from torch import nn


def _frozen(channels: int) -> nn.Module:
    from torchvision.ops import FrozenBatchNorm2d

    return FrozenBatchNorm2d(channels)


NORMS = {
    "bn": nn.BatchNorm2d,
    "syncbn": nn.SyncBatchNorm,
    "frozen_bn": _frozen,
    "gn": lambda c: nn.GroupNorm(math.gcd(32, c), c),
    "none": lambda c: nn.Identity(),
}
BATCH_NORMS = (nn.BatchNorm2d, nn.SyncBatchNorm)


def norm(kind: str, channels: int) -> nn.Module:
    return NORMS[kind](channels)


def is_norm(module: nn.Module) -> bool:
    from torchvision.ops import FrozenBatchNorm2d

    return isinstance(module, (nn.modules.batchnorm._NormBase, nn.GroupNorm, FrozenBatchNorm2d))


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
