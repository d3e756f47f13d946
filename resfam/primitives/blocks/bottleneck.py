"""Bottleneck block: 1x1 reduce, 3x3 (grouped), 1x1 expand.

Covers ResNet-50/101/152 (He et al. 2016, Table 1), ResNeXt's cardinality as grouped 3x3 convs
(Xie et al. 2017, Fig. 3c) and Wide ResNet-50-2 (wider 3x3). The inner width follows
torchvision: ``mid = out / expansion * base_width / 64 * groups``; with ``group_width`` it follows
AnyNet / RegNet (Radosavovic et al. 2020, Sec. 3.1, Fig. 4): ``mid = out / expansion`` (their
bottleneck ratio b is ``expansion``) and ``groups = mid / group_width``.
"""
from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import Field
from torch import nn

from .. import layers
from ..antialias import AAType
from ..selective_kernel import SKParams
from ..split_attention import SplatParams, SplitAttention
from .base import (BlockParams, KeyProblem, Unit, check_sk, exact_div, planes, register_block,
                   strided_conv)


@register_block("bottleneck")
class Bottleneck(BlockParams):
    type: Literal["bottleneck"] = "bottleneck"
    expansion: Union[int, float] = Field(4, gt=0, description="output width / bottleneck 'planes' "
                                         "width; below 1 an inverted bottleneck (RegNetZ's 0.25: "
                                         "the 3x3 four times as wide as the output)")
    groups: int = Field(1, ge=1, description="cardinality C of the 3x3 conv (ResNeXt)")
    base_width: int = Field(64, ge=1, description="width per group at 'planes' = 64 "
                                                  "(ResNeXt d; 128 for Wide ResNet-50-2)")
    group_width: Optional[int] = Field(None, ge=1, description="width g of each group of the 3x3 "
                                       "(AnyNet / RegNet): inner width = output / expansion (or "
                                       "the block's widths), groups = inner / g, instead of "
                                       "groups and base_width")
    stride_on: Literal["3x3", "1x1"] = Field("3x3", description="which conv strides: 3x3 "
                                             "(torchvision / 'pytorch' style) or first 1x1 ('caffe')")
    aa: AAType = Field("none", description="anti-aliased downsampling of the strided 3x3: none, "
                                           "avg or blur (resfam.primitives.antialias)")
    reduce_first: int = Field(1, ge=1, description="the first 1x1 outputs inner width / this "
                                                   "(SENet-154's 2; timm's block_reduce_first)")

    sk: Optional[SKParams] = Field(None, description="the 3x3 as a selective kernel conv "
                                   "(SKNet; resfam.primitives.selective_kernel), order post")
    splat: Optional[SplatParams] = Field(None, description="the 3x3 as a split-attention conv "
                                         "(ResNeSt; resfam.primitives.split_attention), order post")
    widths: Optional[list[list[int]]] = Field(
        None, description="per block of the stage, [first 1x1's width, 3x3's width] instead of "
                          "the derived inner width (channel-pruned nets: timm's *_pruned, Li et "
                          "al. 2020 'EagleEye'); one pair per block")
    extra_3x3: bool = Field(False, description="a second 3x3 (grouped alike, stride 1) after the "
                                               "first: four units (NFNet-F, Brock et al. 2021b, "
                                               "Fig. 6: timm's extra_conv)")
    avd: Literal["none", "first", "last"] = Field(
        "none", description="ResNeSt's average-pool downsampling: where the 3x3 would stride, it "
                            "runs at stride 1 and a 3x3 average pool (padding 1) strides before "
                            "(first) or after (last) it")

    @property
    def n_units(self) -> int:  # noqa: D401 (the base's ClassVar, per instance here)
        return 4 if self.extra_3x3 else 3

    def supports(self, order):
        plain = self.sk is None and self.splat is None
        return super().supports(order) and (plain or order == "post")

    def cardinality(self, out_ch: int) -> int:
        """The 3x3's groups at output width ``out_ch``: ``groups``, or inner / ``group_width``
        (the block's own inner width where ``widths`` gives it)."""
        if self.group_width is None:
            return self.groups
        mid = self.widths[0][1] if self.widths else planes(out_ch, self.expansion)
        return max(mid // self.group_width, 1)

    def mid_channels(self, out_ch: int) -> int:
        if self.group_width is not None:
            return planes(out_ch, self.expansion)
        mid = planes(out_ch, self.expansion) * self.base_width * self.groups
        mid = exact_div(mid, 64, "base_width", "planes * base_width * groups",
                        "the inner width is planes * base_width / 64 * groups; pick base_width so "
                        "it is a whole number")
        return mid

    def derived_inner_width(self, out_ch: int) -> Optional[int]:
        return None if self.widths is not None else self.mid_channels(out_ch)

    def inner_widths(self, out_ch: int) -> tuple[int, int]:
        """(first 1x1's output, 3x3's output): ``widths`` where given (one block's pair, see
        :meth:`at`), else ``mid / reduce_first`` and ``mid``."""
        if self.widths:
            first, mid = self.widths[0]
            return first, mid
        mid = self.mid_channels(out_ch)
        return mid // self.reduce_first, mid

    def at(self, index):
        return self if not self.widths else self.model_copy(update={"widths": [self.widths[index]]})

    def check_depth(self, depth):
        if self.widths is not None and len(self.widths) != depth:
            raise KeyProblem("widths", f"has {len(self.widths)} pairs for a stage of {depth} blocks",
                             "give one [1x1 width, 3x3 width] pair per block")

    def _check_widths(self):
        for j, pair in enumerate(self.widths):
            if len(pair) != 2 or min(pair) < 1:
                raise KeyProblem("widths", f"block {j}: {pair} is not a pair of positive widths",
                                 "give [first 1x1's width, 3x3's width] per block")
            if self.group_width is not None and pair[1] % self.group_width:
                raise KeyProblem("widths", f"block {j}: the 3x3's width {pair[1]} is not "
                                 f"divisible by group_width={self.group_width}",
                                 "choose 3x3 widths that group_width divides")
            groups = self.groups if self.group_width is None else pair[1] // self.group_width
            if pair[0] % groups or pair[1] % groups:
                raise KeyProblem("widths", f"block {j}: {pair} is not divisible by "
                                 f"groups={groups}", "choose widths that groups divide")
        if self.sk is not None or self.splat is not None or self.reduce_first != 1:
            raise KeyProblem("widths", "explicit widths replace the derived ones of a plain 3x3",
                             "drop sk / splat / reduce_first, or widths")

    def check(self, in_ch, out_ch, stride):
        if self.aa != "none" and self.stride_on == "1x1":
            raise KeyProblem("aa", "anti-aliasing follows the strided 3x3, and this block strides "
                             "its 1x1", "use stride_on: 3x3 with aa")
        if self.avd != "none" and (self.stride_on == "1x1" or self.aa != "none"):
            raise KeyProblem("avd", "avd replaces the 3x3's stride, and this block strides its 1x1 "
                             "or anti-aliases already", "use stride_on: 3x3 and aa: none with avd")
        if self.group_width is not None and (self.groups != 1 or self.base_width != 64 or self.sk
                                             or self.splat or self.reduce_first != 1):
            raise KeyProblem("group_width", "group_width sets the groups (and, without widths, "
                             "the inner width) itself",
                             "drop groups / base_width / sk / splat / reduce_first, or group_width")
        if self.extra_3x3 and (self.sk is not None or self.splat is not None or self.aa != "none"
                               or self.avd != "none"):
            raise KeyProblem("extra_3x3", "the second 3x3 follows a plain 3x3",
                             "drop sk / splat / aa / avd, or extra_3x3")
        if self.widths is not None:  # explicit widths: nothing is derived from the stage width
            return self._check_widths()
        if self.group_width is not None:
            mid = self.mid_channels(out_ch)
            if mid % self.group_width:
                raise KeyProblem("group_width", f"inner width {mid} (output {out_ch} / expansion "
                                 f"{self.expansion}) is not divisible by group_width={self.group_width}",
                                 "pick stage widths that it divides (resfam.space's 'compatible' "
                                 "rule adjusts them as pycls does)")
            return
        mid = self.mid_channels(out_ch)
        if mid % self.groups:
            raise KeyProblem("groups", f"inner width {mid} is not divisible by groups={self.groups}",
                             "choose groups that divide the inner width")
        first = exact_div(mid, self.reduce_first, "reduce_first", "inner width",
                          "pick a reduce_first that divides the inner width")
        check_sk(self, first)
        if self.splat is not None and self.sk is not None:
            raise KeyProblem("splat", "the 3x3 is either split-attention or selective kernel",
                             "keep one of splat and sk")
        if first % self.groups:
            raise KeyProblem("reduce_first", f"the first 1x1's width {first} is not divisible by "
                             f"groups={self.groups}", "lower reduce_first or groups")
        if self.splat is not None:  # SplitAttention's grouped convs (Zhang et al. 2020, Fig. 2)
            cardinal = self.groups * self.splat.radix
            if first % cardinal:
                raise KeyProblem("splat.radix", f"the split-attention conv's input width {first} "
                                 f"is not divisible by groups x radix = {cardinal}",
                                 "raise base_width, or lower groups or radix")
            p = self.splat
            attn = layers.reduced_channels(first * p.radix, p.rd_ratio, p.rd_divisor, p.min_width)
            if attn % self.groups:
                raise KeyProblem("splat.rd_ratio", f"the attention width {attn} is not divisible "
                                 f"by groups={self.groups}", "change rd_ratio, rd_divisor or "
                                 "min_width")

    def units(self, in_ch, out_ch, stride, dilation, first_dilation, norm, act):
        first, mid = self.inner_widths(out_ch)
        s1, s3 = (stride, 1) if self.stride_on == "1x1" else (1, stride)
        pool = nn.AvgPool2d(3, s3, padding=1) if self.avd != "none" and s3 > 1 else None
        if pool is not None:
            s3 = 1
        if self.splat is not None:
            middle = Unit(SplitAttention(self.splat, first, mid, s3, first_dilation, self.groups,
                                         norm, act), mid, normed=True)
        else:
            middle = strided_conv(first, mid, s3, dilation, first_dilation, self.aa, self.cardinality(out_ch),
                                  self.sk, norm, act)
        reduce = Unit(layers.conv(in_ch, first, 1, s1), first)
        if self.avd == "first":
            reduce = reduce._replace(aa=pool)
        elif pool is not None:
            middle = middle._replace(aa=pool)
        extra = ([Unit(layers.conv(mid, mid, 3, 1, dilation, groups=self.cardinality(out_ch)), mid)]
                 if self.extra_3x3 else [])
        return [reduce, middle, *extra, Unit(layers.conv(mid, out_ch, 1), out_ch)]
