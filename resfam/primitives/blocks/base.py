"""What a block type contributes: a validated parameter model and its residual-branch units.

A block type is one pydantic model (the keys a spec's ``block:`` accepts) with two methods:
``check`` (width arithmetic, run before any tensor is allocated) and ``units`` (the convs of the
residual branch F in Eq. (1) of He et al. 2016, ``y = F(x) + x``). Where norms and activations
sit around those units is the stage's ``order`` (see :mod:`resfam.primitives.orders`); the
shortcut and the merge are separate primitives.
:class:`resfam.primitives.blocks.residual.ResidualBlock` assembles them.
"""
from __future__ import annotations

from typing import ClassVar, NamedTuple, Optional

from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from .. import layers


class KeyProblem(ValueError):
    """A bad value found by arithmetic on a block's keys; the spec loader adds file and variant."""

    def __init__(self, key: str, message: str, hint: str = ""):
        super().__init__(message)
        self.key, self.message, self.hint = key, message, hint


class Unit(NamedTuple):
    """One conv of the residual branch. ``normed``: the unit applies its own norm + act
    (Res2Net's multi-scale 3x3), or, as the last unit, wants none (Inception-ResNet's biased 1x1),
    so the block adds none after it. ``aa``: an anti-aliasing
    filter that takes over the conv's stride, after its norm and activation
    (:mod:`resfam.primitives.antialias`)."""

    module: nn.Module
    out_channels: int
    normed: bool = False
    aa: Optional[nn.Module] = None


def check_sk(params, sk_in: int) -> None:
    """A selective kernel conv brings its own paths: no anti-aliasing filter after it, and a
    split input must divide among them."""
    sk = params.sk
    if sk is not None and params.aa != "none":
        raise KeyProblem("sk", "a selective kernel conv cannot take an anti-aliasing filter",
                         "drop aa, or sk")
    if sk is not None and sk.split_input and sk_in % sk.paths:
        raise KeyProblem("sk.split_input", f"its input width {sk_in} does not split into "
                         f"{sk.paths} paths", "use split_input: false, or another number of paths")


class BlockParams(BaseModel):
    """Keys every block type accepts."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    orders: ClassVar[tuple[str, ...]] = ("post", "pre", "iresnet")
    n_units: ClassVar[int] = 3  # convs in the residual branch

    type: str = Field(description="block type (a registered name)")
    dropout: float = Field(0.0, ge=0.0, lt=1.0,
                           description="dropout after the first unit's activation "
                                       "(WRN: 'between convolutions and after ReLU')")
    act_last: bool = Field(False, description="order post: an activation after the last norm too, "
                                              "before attention and the merge (the original "
                                              "SE-ResNet-18/34, timm's legacy_seresnet18/34)")

    def check(self, in_ch: int, out_ch: int, stride: int) -> None:
        """Raise :class:`KeyProblem` when the widths do not work out."""

    def derived_inner_width(self, out_ch: int) -> Optional[int]:
        """The width of the branch's middle unit where the stage width ``out_ch`` alone sets it
        (the bottleneck's 3x3, where attention ``after: 3x3`` sits); None for blocks without one
        or with per-block ``widths``."""
        return None

    def supports(self, order: str) -> bool:
        """Whether these keys work with the stage's ``order`` (resfam.primitives.orders)."""
        return order in self.orders

    def check_depth(self, depth: int) -> None:
        """Raise :class:`KeyProblem` when per-block keys do not fit a stage of ``depth`` blocks."""

    def at(self, index: int) -> "BlockParams":
        """The keys of the stage's block ``index`` (per-block keys resolved)."""
        return self

    def units(self, in_ch: int, out_ch: int, stride: int, dilation: int,
              first_dilation: int, norm: str, act: str) -> list[Unit]:
        raise NotImplementedError


BLOCKS: dict[str, type[BlockParams]] = {}


def register_block(name: str):
    """Register a block parameter model under the spec name ``name``."""

    def add(cls: type[BlockParams]) -> type[BlockParams]:
        BLOCKS[name] = cls
        return cls

    return add


def exact_div(value: int, by: int, key: str, what: str, hint: str) -> int:
    """``value / by`` when exact, else a :class:`KeyProblem` (widths are never floored)."""
    if value % by:
        raise KeyProblem(key, f"{what} {value} is not divisible by {by}", hint)
    return value // by


def strided_conv(in_ch: int, out_ch: int, stride: int, dilation: int, first_dilation: int,
                 aa: str, groups: int = 1, sk=None, norm: str = "bn", act: str = "relu") -> Unit:
    """A block's strided 3x3 unit; with ``aa`` the conv runs at stride 1 and a filter subsamples
    after it (where timm puts one: a stride of 2, or the first block of a dilated stage); with
    ``sk`` (:class:`resfam.primitives.selective_kernel.SKParams`) a selective kernel conv, which
    applies its own norms and activations."""
    from ..antialias import antialias

    if sk is not None:
        from ..selective_kernel import SelectiveKernel

        return Unit(SelectiveKernel(sk, in_ch, out_ch, stride, first_dilation, groups, norm, act),
                    out_ch, normed=True)
    if aa == "none" or not (stride == 2 or first_dilation != dilation):
        return Unit(layers.conv(in_ch, out_ch, 3, stride, first_dilation, groups=groups), out_ch)
    return Unit(layers.conv(in_ch, out_ch, 3, 1, first_dilation, groups=groups), out_ch,
                aa=antialias(aa, out_ch, stride))


def planes(out_ch: int, expansion) -> int:
    """torchvision's 'planes': a bottleneck-style block's output width / expansion (a fraction
    for an inverted bottleneck: 0.25 gives four times the output width)."""
    if float(expansion).is_integer():
        return exact_div(out_ch, int(expansion), "expansion", "stage width",
                         "make every stages.width a multiple of block.expansion")
    inner = out_ch / expansion
    if not inner.is_integer():
        raise KeyProblem("expansion", f"stage width {out_ch} / expansion {expansion} is not a "
                         "whole number", "pick an expansion whose inverse is a whole number (0.25, 0.5)")
    return int(inner)
