"""Small shared layers: convolutions, activations, stochastic depth (norms: :mod:`resfam.norms`)."""
from __future__ import annotations

from torch import nn

ACTS = {"relu": nn.ReLU, "silu": nn.SiLU, "gelu": nn.GELU,
        "identity": nn.Identity}  # identity: the norm applies its own (norms.NormAct)


def conv(in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, dilation: int = 1,
         groups: int = 1, bias: bool = False) -> nn.Conv2d:
    """A 'same'-padded convolution (padding = dilation * (k - 1) / 2, as torchvision and timm)."""
    padding = dilation * (kernel_size - 1) // 2
    return nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=padding,
                     dilation=dilation, groups=groups, bias=bias)


def act(kind: str, inplace: bool = True) -> nn.Module:
    return ACTS[kind](inplace=inplace) if kind == "relu" else ACTS[kind]()


def drop_path(p: float) -> nn.Module:
    """Stochastic depth (Huang et al. 2016) on a residual branch, per sample ('row' mode, the
    same rule as timm's DropPath); an Identity when ``p`` is 0."""
    if p <= 0.0:
        return nn.Identity()
    from torchvision.ops import StochasticDepth  # imported only when used

    return StochasticDepth(p, mode="row")


def reduced_channels(channels: int, ratio: float, divisor: int, minimum: int = 0) -> int:
    """``channels * ratio`` to the nearest multiple of ``divisor``, at least ``minimum`` (default
    ``divisor``), and one multiple more where rounding lost over 10% (timm's ``make_divisible``)."""
    wanted = channels * ratio
    out = max(minimum or divisor, int(wanted + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * wanted else out
