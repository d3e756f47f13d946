"""A variant with a detection framework's structural switches applied: mmdet's ``style``,
``strides``, ``dilations``, ``deep_stem``, ``avg_down``, ``stage_pool``; detectron2's ``STRIDE_IN_1X1`` and
``RES5_DILATION``. Both adapters re-resolve the arch's spec through this one function."""
from __future__ import annotations

from typing import Optional, Sequence

from ..spec.registry import get_spec
from ..spec.schema import Spec


def with_switches(spec: Spec, *, stride_on_1x1: bool = False, stem: Optional[dict] = None,
                  shortcut: Optional[dict] = None, block: Optional[dict] = None,
                  stages: Optional[dict[str, Sequence[int]]] = None) -> Spec:
    """``spec`` with its bottlenecks striding their first 1x1 (caffe style), another ``stem`` /
    ``shortcut`` section, more ``block`` keys (mmdet's Res2Net: ``stage_pool``), and per-stage
    ``stages`` lists (``stride``, ``dilation``) given for the first stages, the rest kept;
    ``spec`` itself when nothing changes."""
    raw = dict(spec.raw)
    if stride_on_1x1:
        raw["block"] = dict(raw["block"], stride_on="1x1")
    if block:
        raw["block"] = dict(raw["block"], **block)
    if stem is not None:
        raw["stem"] = stem
    if shortcut is not None:
        raw["shortcut"] = shortcut
    for key, given in (stages or {}).items():
        kept = [getattr(p, key) for p in spec.stages][len(given):]
        raw["stages"] = dict(raw["stages"], **{key: list(given) + kept})
    return get_spec(raw) if raw != spec.raw else spec
