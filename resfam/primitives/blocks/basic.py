"""Basic block: two 3x3 convs (He et al. 2016, Fig. 5 left; WRN's B(3,3), Zagoruyko & Komodakis
2016, Table 1)."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from .. import layers
from ..antialias import AAType
from ..selective_kernel import SKParams
from .base import BlockParams, Unit, check_sk, register_block, strided_conv


@register_block("basic")
class Basic(BlockParams):
    type: Literal["basic"] = "basic"
    n_units = 2
    aa: AAType = Field("none", description="anti-aliased downsampling of the strided conv: none, "
                                           "avg or blur (resfam.primitives.antialias)")
    kernel2: layers.int_choice(1, 3) = Field(3, description="the second conv's kernel: 3, or 1 "
                                             "(a 3x3 then a 1x1: timm's byobnet EdgeBlock)")

    sk: Optional[SKParams] = Field(None, description="the first 3x3 as a selective kernel conv "
                                   "(SKNet; resfam.primitives.selective_kernel), order post")

    def check(self, in_ch, out_ch, stride):
        check_sk(self, in_ch)

    def supports(self, order):
        return super().supports(order) and (self.sk is None or order == "post")

    def units(self, in_ch, out_ch, stride, dilation, first_dilation, norm, act):
        return [strided_conv(in_ch, out_ch, stride, dilation, first_dilation, self.aa, sk=self.sk,
                             norm=norm, act=act),
                Unit(layers.conv(out_ch, out_ch, self.kernel2, 1, dilation), out_ch)]
