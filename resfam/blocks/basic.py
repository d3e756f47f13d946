"""Basic block: two 3x3 convs (He et al. 2016, Fig. 5 left; WRN's B(3,3), Zagoruyko & Komodakis
2016, Table 1)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from .. import layers
from ..antialias import AAType
from .base import BlockParams, Unit, register_block, strided_conv


@register_block("basic")
class Basic(BlockParams):
    type: Literal["basic"] = "basic"
    n_units = 2
    aa: AAType = Field("none", description="anti-aliased downsampling of the strided conv: none, "
                                           "avg or blur (resfam.antialias)")

    def units(self, in_ch, out_ch, stride, dilation, first_dilation, norm, act):
        return [strided_conv(in_ch, out_ch, stride, dilation, first_dilation, self.aa),
                Unit(layers.conv(out_ch, out_ch, 3, 1, dilation), out_ch)]
