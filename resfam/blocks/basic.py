"""Basic block: two 3x3 convs (He et al. 2016, Fig. 5 left; WRN's B(3,3), Zagoruyko & Komodakis
2016, Table 1)."""
from __future__ import annotations

from typing import Literal

from .. import layers
from .base import BlockParams, Unit, register_block


@register_block("basic")
class Basic(BlockParams):
    type: Literal["basic"] = "basic"
    n_units = 2

    def units(self, in_ch, out_ch, stride, dilation, first_dilation, norm, act):
        return [Unit(layers.conv(in_ch, out_ch, 3, stride, first_dilation), out_ch),
                Unit(layers.conv(out_ch, out_ch, 3, 1, dilation), out_ch)]
