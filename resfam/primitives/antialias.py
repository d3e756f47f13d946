"""Anti-aliased downsampling: a strided conv becomes a stride-1 conv followed by a low-pass
filter that subsamples (Zhang 2019, "Making Convolutional Networks Shift-Invariant Again",
Sec. 3.2: "BlurPool"), in the block (after the strided conv's norm and activation) and in the
stem (max-pool at stride 1, then the filter). timm's ``aa_layer``:

- ``avg``: a 2x2 average pool at the stride (timm's ``resnetaa*``; in the stem the 2x2 pool
  replaces the max-pool);
- ``blur``: the binomial filter [1, 2, 1] x [1, 2, 1] / 16, reflect-padded, per channel (Zhang's
  default "Tri-3"; timm's ``BlurPool2d``, ``resnetblur*``).
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

AA_TYPES = ("none", "avg", "blur")
AAType = Literal[AA_TYPES]


class BlurPool2d(nn.Module):
    """Depthwise binomial blur, then subsampling by ``stride``."""

    def __init__(self, channels: int, stride: int = 2):
        super().__init__()
        self.channels, self.stride = channels, stride
        taps = torch.tensor([1.0, 2.0, 1.0])
        kernel = (taps[:, None] * taps[None, :]) / 16.0
        # a fixed filter, not a weight: outside the state dict, as in timm
        self.register_buffer("filt", kernel.expand(channels, 1, 3, 3).clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (1, 1, 1, 1), mode="reflect")
        return F.conv2d(x, self.filt, stride=self.stride, groups=self.channels)


def antialias(kind: str, channels: int, stride: int) -> nn.Module:
    """The filter that takes over a conv's ``stride``."""
    if kind == "avg":
        return nn.AvgPool2d(2, stride) if stride > 1 else nn.Identity()
    return BlurPool2d(channels, stride)


def stem_pool(kind: str, channels: int) -> nn.Module:
    """The stem's max-pool, anti-aliased."""
    if kind == "avg":
        return nn.AvgPool2d(2)
    return nn.Sequential(nn.MaxPool2d(3, 1, padding=1), BlurPool2d(channels, 2))
