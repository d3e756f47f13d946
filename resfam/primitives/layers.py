"""Small shared layers: convolutions, activations, stochastic depth (norms:
:mod:`resfam.primitives.norms`)."""
from __future__ import annotations

import contextlib
import math
from contextvars import ContextVar
from typing import Annotated, Literal, NamedTuple, Optional, Union

import torch
import torch.fx
import torch.nn.functional as F
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from torch import nn

def int_choice(*values: int):
    """A schema type for one of ``values``, taking ints only: pydantic's ``Literal[1, 2]`` takes
    ``True`` for 1 and ``16.0`` for 16 even in strict mode (a stride of ``true`` would be 1)."""

    def whole(value):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"should be {' or '.join(map(str, values))}, a whole number, not a "
                             f"{type(value).__name__}")
        return value

    return Annotated[Literal[values], BeforeValidator(whole)]


class LeakyReLU1e3(nn.LeakyReLU):
    """Leaky ReLU with negative slope 1e-3: TResNet's blocks (Ridnik et al. 2021, Sec. 3.1,
    InplaceABN's ``activation_param``); the plain ``leaky_relu`` is PyTorch's and timm's 1e-2."""

    def __init__(self, inplace: bool = False):
        super().__init__(1e-3, inplace)


class Activation(NamedTuple):
    """One activation kind: its module, the op it runs (the counters' name), whether the module
    has an in-place form (nn.GELU has none), and gamma = 1 / std(g(z)), z ~ N(0, 1): the factor
    that keeps its output at unit variance (Brock et al. 2021a, Sec. 4 and App. D)."""

    module: type
    op: str
    inplace: bool
    gamma: float


def _leaky_gamma(slope: float) -> float:
    """A leaky ReLU's gamma in closed form (DeepMind published none)."""
    return 1.0 / ((1 + slope * slope) / 2 - (1 - slope) ** 2 / (2 * math.pi)) ** 0.5


# The gammas of relu, silu and gelu are DeepMind's published sampled estimates (the nfnets code's
# nonlinearity table, which timm uses), kept as published so that networks trained with them
# reproduce; tests/test_nf.py checks every gamma against the exact integral.
ACTS = {"relu": Activation(nn.ReLU, "relu", True, 1.7139588594436646),
        "silu": Activation(nn.SiLU, "silu", True, 1.7881293296813965),
        "gelu": Activation(nn.GELU, "gelu", False, 1.7015043497085571),
        "leaky_relu": Activation(nn.LeakyReLU, "leaky_relu", True, _leaky_gamma(1e-2)),
        "leaky_relu_1e-3": Activation(LeakyReLU1e3, "leaky_relu", True, _leaky_gamma(1e-3)),
        # identity: the norm applies its own (norms.NormAct)
        "identity": Activation(nn.Identity, "identity", False, 1.0)}


class ConvParams(BaseModel):
    """The spec's ``conv``: how every conv built through :func:`conv` computes (stem, residual
    branches, shortcuts, the highway gate); the attention modules' 1x1s stay plain."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    type: Literal["plain", "std", "scaled_std"] = Field(
        "plain", description="plain; std: weight-standardised (Qiao et al. 2019; BiT, Kolesnikov "
                             "et al. 2020); scaled_std: standardised, times gamma / sqrt(fan-in) "
                             "and a learned gain per output channel (NF-ResNets, Brock et al. "
                             "2021a, Eq. 5)")
    eps: float = Field(1e-6, gt=0.0, le=1.0, description="std, scaled_std: added to each output "
                                                         "channel's weight variance (BiT: 1e-8)")
    gamma: Union[float, Literal["act"]] = Field(
        "act", description="scaled_std: the weights' scale; act: the network activation's gamma "
                           "(ACTS[act].gamma: 1 / std of act(N(0, 1)), so activations keep unit variance)")
    bias: bool = Field(False, description="every conv built through conv() has a bias (networks "
                                          "without norms: NF-ResNets)")
    padding: Literal["symmetric", "same"] = Field(
        "symmetric", description="symmetric: dilation * (k - 1) / 2 on each side (PyTorch's); "
                                 "same: TensorFlow's SAME, a strided conv's odd pixel of padding "
                                 "at the end (DeepMind's JAX NFNets)")
    act_gamma: bool = Field(False, description="the network's activations are multiplied by their "
                                               "gamma instead of the convs' weights (DeepMind's "
                                               "NFNets; give gamma: 1.0 then)")

    def scale(self, act_kind: str) -> float:
        """gamma for ``scaled_std``, the spec's number or the activation's."""
        return ACTS[act_kind].gamma if self.gamma == "act" else self.gamma


def same_padding(size: int, k: int, stride: int, dilation: int) -> list[int]:
    """TensorFlow's SAME padding of one side-length: (before, after), the odd one after."""
    total = max(((size + stride - 1) // stride - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return [total // 2, total - total // 2]


def pad_same(x: torch.Tensor, kernel_size: list[int], stride: list[int],
             dilation: list[int]) -> torch.Tensor:
    """``x`` zero-padded for a conv of these sizes as TensorFlow's SAME pads it (one call to fx:
    the sizes are the input's)."""
    h = same_padding(x.shape[-2], kernel_size[0], stride[0], dilation[0])
    w = same_padding(x.shape[-1], kernel_size[1], stride[1], dilation[1])
    return F.pad(x, [w[0], w[1], h[0], h[1]])


torch.fx.wrap("pad_same")


class Conv2dSame(nn.Conv2d):
    """A conv whose padding is TensorFlow's SAME, computed from each input's size (where the
    stride makes it depend on it); ``padding`` is 0."""

    def forward(self, x):
        return super().forward(pad_same(x, list(self.kernel_size), list(self.stride), list(self.dilation)))


class StdConv2d(nn.Conv2d):
    """Weight standardisation (Qiao et al. 2019, "Micro-Batch Training with Batch-Channel
    Normalization and Weight Standardization", Eq. 5): each output channel's weights become
    ``(W - mean) / sqrt(var + eps)`` (biased variance over its fan-in) before the convolution.
    Computed as a batch norm over the ``(1, out, fan_in)`` view, so counters see a norm (folded at
    inference, counted 0) rather than element-wise work."""

    def __init__(self, *args, eps: float = 1e-6, same: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.eps, self.same = eps, same  # same: TensorFlow's SAME padding (Conv2dSame.pad)

    def weight_scale(self) -> Optional[torch.Tensor]:
        """Per output channel, what the standardised weight is multiplied by (None: 1)."""
        return None

    def standardized_weight(self):
        return F.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None,
                            weight=self.weight_scale(), training=True, momentum=0.0,
                            eps=self.eps).reshape(self.weight.shape)

    def forward(self, x):
        if self.same:
            x = pad_same(x, list(self.kernel_size), list(self.stride), list(self.dilation))
        return self._conv_forward(x, self.standardized_weight(), self.bias)


class ScaledStdConv2d(StdConv2d):
    """Scaled weight standardisation (Brock et al. 2021a, "Characterizing signal propagation to
    close the performance gap in unnormalized ResNets", Eq. 5): ``W' = gain * gamma *
    (W - mean) / (std * sqrt(N))``, N the fan-in, so that a conv of unit-variance inputs keeps
    unit variance through the activation of gain ``gamma``. ``gain`` is learned, one per output
    channel (shape out x 1 x 1 x 1, as the published checkpoints hold it). Here the variance gets
    ``eps`` and the 1 / sqrt(N) is folded into the scale (timm's ``ScaledStdConv2d``)."""

    def __init__(self, *args, gamma: float = 1.0, eps: float = 1e-6, same: bool = False, **kwargs):
        super().__init__(*args, eps=eps, same=same, **kwargs)
        self.gain = nn.Parameter(torch.ones(self.out_channels, 1, 1, 1))
        self.scale = gamma * self.weight[0].numel() ** -0.5

    def weight_scale(self) -> Optional[torch.Tensor]:
        return (self.gain * self.scale).view(-1)


_CONV: ContextVar[Optional[tuple[ConvParams, str]]] = ContextVar("resfam_conv", default=None)
_INIT_LATER: ContextVar[bool] = ContextVar("resfam_init_later", default=False)


@contextlib.contextmanager
def init_later():
    """While a network is assembled whose ``init_weights`` then sets every conv's weight, bias
    and (scaled standardised convs) gain, :func:`conv` allocates them without torch's default
    init (a kaiming-uniform draw the network would overwrite: about half of a build's time)."""
    token = _INIT_LATER.set(True)
    try:
        yield
    finally:
        _INIT_LATER.reset(token)


@contextlib.contextmanager
def conv_style(p: Optional[ConvParams], act_kind: str = "relu"):
    """While a network is assembled, :func:`conv` builds its convs as ``p`` says (``act_kind``:
    the network's activation, whose gamma ``scaled_std`` uses)."""
    plain = p is None or (p.type == "plain" and not p.bias and p.padding == "symmetric"
                          and not p.act_gamma)
    token = _CONV.set(None if plain else (p, act_kind))
    try:
        yield
    finally:
        _CONV.reset(token)


def conv(in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, dilation: int = 1,
         groups: int = 1, bias: bool = False, padding: Optional[int] = None) -> nn.Conv2d:
    """A 'same'-padded convolution (padding = dilation * (k - 1) / 2, as torchvision and timm;
    ``padding`` overrides it), weight-standardised inside :func:`conv_style` ``std``."""
    style = _CONV.get()
    same = (padding is None and style is not None and style[0].padding == "same"
            and (stride > 1 or dilation * (kernel_size - 1) % 2))  # else SAME is symmetric
    if padding is None:
        padding = 0 if same else dilation * (kernel_size - 1) // 2
    cls, extra = nn.Conv2d, {}
    if style is not None:
        p, act_kind = style
        bias = bias or p.bias
        if p.type == "std":
            cls, extra = StdConv2d, {"eps": p.eps, "same": same}
        elif p.type == "scaled_std":
            cls, extra = ScaledStdConv2d, {"eps": p.eps, "gamma": p.scale(act_kind), "same": same}
        elif same:
            cls = Conv2dSame
    args = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias, **extra)
    if not _INIT_LATER.get():
        return cls(in_ch, out_ch, kernel_size, **args)
    device = torch.empty(0).device  # the one a default build would use (a device context's)
    return cls(in_ch, out_ch, kernel_size, device="meta", **args).to_empty(device=device)


class GammaAct(nn.Module):
    """``act(x) * gamma`` (Brock et al. 2021a, Sec. 4: the activation rescaled to keep unit
    variance; DeepMind's NFNets apply gamma here rather than in the convs)."""

    def __init__(self, inner: nn.Module, gamma: float):
        super().__init__()
        self.inner, self.gamma = inner, gamma

    def forward(self, x):
        return self.inner(x) * self.gamma


def act(kind: str, inplace: bool = True, plain: bool = False) -> nn.Module:
    """An activation module; in place where the kind has an in-place form and ``inplace`` (the
    callers pass a tensor nothing else reads: a norm's or an addition's own output). Inside
    :func:`conv_style` with ``act_gamma``, times its gamma unless ``plain`` (an attention
    module's own activation)."""
    entry = ACTS[kind]
    module = entry.module(inplace=inplace) if entry.inplace else entry.module()
    style = _CONV.get()
    if style is not None and style[0].act_gamma and not plain and kind != "identity":
        return GammaAct(module, entry.gamma)
    return module


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
