"""CLIP's attention pooling head (Radford et al. 2021, "Learning Transferable Visual Models From
Natural Language Supervision", Sec. 2.4): global average pooling replaced by "a single layer of
transformer-style multi-head QKV attention where the query is conditioned on the global
average-pooled representation of the image".

The last feature map's positions become tokens, the mean token is put first, a learned absolute
position embedding (one per position of the native grid, plus one for the mean token) is added,
and the mean token alone queries every token (itself included) with ``heads`` heads of width
C / heads: ``softmax(q k^T / sqrt(d)) v``, heads concatenated. Only the mean token's query is
computed (the other queries' outputs are discarded by CLIP's code). The classifier (``fc``, CLIP's
``c_proj``) follows. At an input whose grid is not the native one the embedding is resampled
bicubically (with antialiasing, in float32), as timm does; CLIP's own code needs the native size.
Children ``q``, ``k``, ``v`` and ``pos_embed`` as timm names them.
"""
from __future__ import annotations

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn


def position_embedding(pos_embed: torch.Tensor, grid: int, h: int, w: int) -> torch.Tensor:
    """(1 + h * w) x C: the mean token's embedding, then the native grid's, resampled to h x w
    where that differs (one call to fx: the sizes are the input's)."""
    if h == grid and w == grid:
        return pos_embed
    first, rest = pos_embed[:1], pos_embed[1:]
    c = rest.shape[-1]
    rest = rest.float().reshape(1, grid, grid, c).permute(0, 3, 1, 2)
    rest = F.interpolate(rest, size=(h, w), mode="bicubic", antialias=True)
    rest = rest.permute(0, 2, 3, 1).reshape(h * w, c).to(pos_embed.dtype)
    return torch.cat([first, rest])


torch.fx.wrap("position_embedding")


class AttentionPool2d(nn.Module):
    def __init__(self, channels: int, heads: int, grid: int):
        super().__init__()
        self.heads, self.grid = heads, grid
        self.width = channels // heads
        self.scale = self.width ** -0.5  # 1 / sqrt(head width)
        self.q, self.k, self.v = (nn.Linear(channels, channels) for _ in range(3))
        self.pos_embed = nn.Parameter(torch.randn(grid * grid + 1, channels) * channels ** -0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        tokens = x.flatten(2).transpose(1, 2)                       # N x HW x C
        tokens = torch.cat([tokens.mean(1, keepdim=True), tokens], dim=1)
        tokens = tokens + position_embedding(self.pos_embed, self.grid, x.shape[2], x.shape[3])
        q = self.q(tokens[:, :1]).reshape(n, 1, self.heads, self.width).transpose(1, 2)  # N x h x 1 x d
        k = self.k(tokens).reshape(n, -1, self.heads, self.width).transpose(1, 2)        # N x h x T x d
        v = self.v(tokens).reshape(n, -1, self.heads, self.width).transpose(1, 2)
        weights = torch.softmax(q @ k.transpose(-2, -1) * self.scale, dim=-1)
        return (weights @ v).transpose(1, 2).reshape(n, self.heads * self.width)
