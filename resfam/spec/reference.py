"""The spec reference (docs/specs.md), rendered from the same pydantic models the validator uses,
so the documentation cannot drift from what is accepted."""
from __future__ import annotations

import collections.abc
import sys
from typing import Annotated, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from ..primitives import inception
from ..primitives.attention import AttnParams
from ..primitives.layers import ConvParams
from ..primitives.blocks import BLOCKS
from ..primitives.cross_stage import CrossParams
from ..primitives.merges import MergeParams
from ..primitives.selective_kernel import SKParams
from ..primitives.shortcuts import ShortcutParams
from ..primitives.split_attention import SplatParams
from ..primitives.stems import PRESETS, StemParams
from .build_args import BuildArgs
from .schema import HeadParams, RegNetWidths, Reported, SpecModel, StagesParams


def _type(ann) -> str:
    origin, args = get_origin(ann), get_args(ann)
    if origin is Annotated:  # a constrained type: its base type
        return _type(args[0])
    if origin is Literal:
        return " \\| ".join(repr(a) for a in args)
    if origin is Union:
        return " or ".join(_type(a) for a in args if a is not type(None)) + " (optional)"
    if origin in (list, collections.abc.Sequence):
        item = get_args(args[0]) if get_origin(args[0]) is Union else ()
        if type(None) in item:  # entries may be null
            return f"list of {' or '.join(_type(a) for a in item if a is not type(None))} or null"
        return f"list of {_type(args[0])}"
    if origin is dict or ann is dict:
        return "mapping"
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return "mapping (below)"
    return getattr(ann, "__name__", str(ann))


def _default(field) -> str:
    if field.is_required():
        return "required"
    value = field.default_factory() if field.default_factory is not None else field.default
    return "see below" if isinstance(value, BaseModel) else f"`{value!r}`"


def _table(model: type[BaseModel], skip: tuple = ()) -> str:
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        rows.append(f"| `{name}` | {_type(field.annotation)} | {_default(field)} | {field.description or ''} |")
    return "\n".join(rows)


def reference_markdown() -> str:
    parts = ["# Spec reference",
             "",
             "Generated from the validator's own schema by `python docs/generate.py` "
             "(tests/test_docs.py fails when this page and the schema disagree).",
             "",
             "A spec file holds one variant (these keys at top level) or several under "
             "`variants:` (name -> spec) with an optional file-level `family:`. `extends:` names a "
             "parent in the same file or the bundled registry; mappings deep-merge, a mapping whose "
             "`type` changes replaces the parent's, `reported:` is never inherited. Keys under "
             "`block`, `shortcut`, `merge`, `attn` and `cross` take one value for all stages or a list "
             "with one value per stage.",
             "",
             "## Top level", "", _table(SpecModel), "",
             "## `stem`", "", _table(StemParams), "",
             "Stem types: " + ", ".join(f"`{k}`" for k in PRESETS)
             + ", and `layers`, the listed `layers` (see `resfam/primitives/stems.py`).", "",
             "### Layers: `stem.layers`, `stages.entry`, `block.branches` (inception)", "",
             (inception.__doc__ or "").strip().split("\n\n")[0].replace("\n", " "), "",
             "An op:", "", _table(inception.Op), "",
             "A layer is an op, or `concat: [branch, ...]`: branches (each a list of ops, or one "
             "op) on one input, concatenated; they must agree in output size.", "",
             "## `stages`", "", _table(StagesParams), "",
             "### `stages.regnet`", "", (RegNetWidths.__doc__ or "").strip().replace("\n    ", " "),
             "", _table(RegNetWidths), "",
             "## `block`", ""]
    for name, cls in BLOCKS.items():
        doc = (sys.modules[cls.__module__].__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        orders = ", ".join(cls.orders)
        parts += [f"### `type: {name}`", "", f"Orders: {orders}. {doc}".strip(), "", _table(cls), ""]
    parts += ["### `block.sk` (basic, bottleneck)", "", _table(SKParams), "",
              "### `block.splat` (bottleneck)", "", _table(SplatParams), "",
              "## `shortcut`", "", _table(ShortcutParams), "",
              "## `merge`", "", _table(MergeParams), "",
              "## `attn`", "", _table(AttnParams), "",
              "## `cross`", "", _table(CrossParams), "",
              "## `head`", "", _table(HeadParams), "",
              "## `conv`", "", _table(ConvParams), "",
              "## `reported`", "", _table(Reported), "",
              "## Build arguments", "",
              "Keyword arguments of `resfam.build(ref, **kwargs)` and `resfam.ResFamNet(spec, "
              "**kwargs)`, checked by the same kind of schema before anything is allocated "
              "(types are strict: `'10'` is not an int, `0` is not a bool). A mistake raises "
              "`resfam.BuildArgumentError` naming the variant and the argument. "
              "`max_param_bytes` and `max_blocks` are limits, not facts about the network: raise "
              "them, or pass `None`, to build something larger (see [reliability](reliability.md)).",
              "", _table(BuildArgs), ""]
    return "\n".join(parts)
