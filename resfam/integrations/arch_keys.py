"""The keys a detection framework's ResNet takes that an arch decides: mmdet's ``depth``,
``groups``, ``base_width``, ``scales``; detectron2's ``DEPTH``, ``NUM_GROUPS``,
``WIDTH_PER_GROUP``. Both adapters read the arch's own values here and compare a config's
(a stock config merges them in) against them, so that none is ignored silently."""
from __future__ import annotations

import re
from typing import Optional

from ..spec.schema import Spec


def nominal_depth(name) -> Optional[int]:
    """The depth a variant's name states (``resnext101_32x8d`` -> 101), None where it states none."""
    m = re.search(r"[a-z_](\d{2,4})(?=[a-z_]|$)", name) if isinstance(name, str) else None
    return int(m.group(1)) if m else None


def arch_values(spec: Spec) -> dict:
    """``depth`` (from the name), ``groups`` (cardinality of the 3x3), ``base_width`` (a
    ResNeXt bottleneck's width per group at 64 planes, or a Res2Net split's width) and
    ``scales`` (Res2Net's splits), ``width_per_group`` (detectron2's: a ResNet or ResNeXt
    bottleneck's base width), for the arch's last stage; absent keys have no meaning for it."""
    block = spec.stages[-1].block
    out = {"depth": nominal_depth(spec.name)}
    if block.type in ("basic", "bottleneck", "res2"):
        out["groups"] = getattr(block, "groups", 1)
    if block.type == "bottleneck" and block.group_width is None:
        out["base_width"] = out["width_per_group"] = block.base_width
    elif block.type == "basic":
        out["base_width"] = out["width_per_group"] = 64
    elif block.type == "res2":  # mmdet's Res2Net: base_width is a split's width
        out["base_width"], out["scales"] = block.base_width, block.scale
    return out


def disagreements(spec: Spec, given: dict) -> dict:
    """{key: (given, the arch's)} for each given (not None) key whose value the arch contradicts
    or cannot honour (a key the arch has no meaning for: its value is None)."""
    own = arch_values(spec)
    return {k: (v, own.get(k)) for k, v in given.items()
            if v is not None and v != own.get(k) and not (k == "depth" and own["depth"] is None)}
