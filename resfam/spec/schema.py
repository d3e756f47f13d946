"""The block-spec schema and its validation.

A spec (one variant) is a mapping with the keys of :class:`SpecModel`. ``block``, ``shortcut``,
``merge`` and ``attn`` keys may be a scalar (all stages) or a list with one entry per stage; a
``null`` entry leaves that stage's key at its default (or out, where the stage's type has no such
key), and ``block.type`` itself may be one type per stage. Every problem is
raised as :class:`resfam.SpecError` naming the file, the variant and the key path, before any
tensor is allocated.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import SpecError, did_you_mean, short_repr, short_str
from ..primitives.attention import AttnParams
from ..primitives.blocks import BLOCKS, BlockParams
from ..primitives.blocks.base import KeyProblem
from ..primitives.layers import ACTS, ConvParams, int_choice
from ..primitives.merges import MergeParams
from ..primitives.norms import NORMS
from ..primitives.orders import ORDERS
from ..primitives.shortcuts import ShortcutParams
from ..primitives.stems import PRESETS as STEM_PRESETS, StemParams


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class StagesParams(_Model):
    depth: list[int] = Field(min_length=1, description="blocks per stage")
    width: list[int] = Field(min_length=1, description="output channels per stage")
    stride: list[int_choice(1, 2)] = Field(min_length=1, description="stride of each stage's "
                                                                  "first block")
    dilation: Optional[list[Annotated[int, Field(ge=1)]]] = Field(
        None, description="dilation of every 3x3 conv in each stage, its first block included "
                          "(mmdet's `dilations`, detectron2's RES5_DILATION; DeepLab's atrous "
                          "stages); null: 1 everywhere")
    entry: Optional[list[Optional[Literal[tuple(STEM_PRESETS)]]]] = Field(
        None, description="a plain stem-like layer group (a stem preset, e.g. lenet) that opens "
                          "a stage and changes its width, before the stage's blocks; null: none "
                          "(the seeds' MNIST ResNet: conv 5x5 + max-pool between stages)")


class HeadParams(_Model):
    num_classes: int = Field(1000, ge=0, description="classifier outputs (0: no classifier)")
    drop_rate: float = Field(0.0, ge=0.0, lt=1.0, description="dropout before the classifier")
    norm: bool = Field(False, description="norm + act on the last stage's output before pooling "
                                          "(pre-activation nets)")
    pool: Literal["avg", "flatten"] = Field("avg", description="global average pool, or flatten "
                                            "the last feature map (a fixed input_size; LeNet-style "
                                            "heads)")


class Reported(_Model):
    """Figures as the paper prints them; ``resfam-compare`` sets its counts beside them."""

    source: str = Field(description="paper and table, e.g. 'He et al. 2016, Table 6'")
    dataset: str = Field("ImageNet-1k", description="where top1 / error was measured")
    protocol: Optional[str] = Field(None, description="how: '10-crop', 'single 224 crop', "
                                                      "'median of 5 runs', ...")
    params_m: Optional[float] = Field(None, description="parameters, millions")
    gflops: Optional[float] = Field(None, description="GFLOPs as printed (papers mean "
                                                      "multiply-adds)")
    gflops_at: Optional[int] = Field(None, ge=8, description="the input side the paper counts "
                                     "its GFLOPs at, where not the variant's input_size "
                                     "(resfam-compare --paper compares at it)")
    top1: Optional[float] = Field(None, description="top-1 accuracy, %")
    error: Optional[float] = Field(None, description="top-1 error, % (CIFAR papers)")
    note: Optional[str] = Field(None, description="anything needed to read the figures")


class SpecModel(_Model):
    name: str = Field(description="variant name")
    family: str = Field(description="family the variant belongs to (for selection and plots)")
    description: str = Field("", description="one line for listings")
    also_in: list[str] = Field(default_factory=list, description="other families this variant "
                               "belongs to (a hybrid's parents): selecting one of them by family "
                               "selects it too")
    extends: Optional[str] = Field(None, description="parent variant whose keys this one "
                                                     "overrides (resolved before validation)")
    in_chans: int = Field(3, ge=1, description="input channels")
    input_size: int = Field(224, ge=8, description="native input resolution (the paper's or "
                                                   "the pretrained weights'): resfam-compare "
                                                   "--img-size native, build's default_cfg")
    stem: StemParams
    stages: StagesParams
    block: dict[str, Any] = Field(description="block type and its keys (see the block types)")
    shortcut: dict[str, Any] = Field(default_factory=lambda: {"type": "conv1x1"},
                                     description="shortcut type where a block changes shape")
    merge: dict[str, Any] = Field(default_factory=lambda: {"type": "add"},
                                  description="how branch and shortcut join")
    attn: dict[str, Any] = Field(default_factory=lambda: {"type": "none"},
                                 description="channel attention after the branch, before the "
                                             "merge (see resfam.primitives.attention)")
    order: Literal[ORDERS] = Field("post", description="norm/act placement: post (v1), pre (v2), "
                                                        "iresnet (start/middle/end blocks)")
    norm: Literal[tuple(NORMS)] = Field("bn", description="normalisation layer")
    conv: ConvParams = Field(default_factory=ConvParams, description="plain or weight-standardised "
                             "convs (stem, branches, shortcuts)")
    act: Literal[tuple(ACTS)] = Field("relu", description="activation")
    head: HeadParams = Field(default_factory=HeadParams)
    reported: Optional[Reported] = None
    reference: list[Literal["timm", "torchvision"]] = Field(
        default_factory=list, description="libraries that build this very network under the "
        "same name: the parity tests hold it against them, and their weights load (not inherited)")


@dataclass(frozen=True)
class StagePlan:
    """One stage, fully resolved: what the network's single stage loop consumes."""

    depth: int
    width: int
    stride: int
    dilation: int
    entry: Optional[str]
    block: BlockParams
    shortcut: ShortcutParams
    merge: MergeParams
    attn: AttnParams


@dataclass(frozen=True)
class Spec:
    """A validated, inheritance-resolved variant."""

    name: str
    family: str
    file: str
    model: SpecModel
    stages: tuple[StagePlan, ...]
    raw: dict = field(repr=False, compare=False)

    # the whole-network keys, validated; per-stage sections (block, shortcut, merge, attn) are
    # read resolved from ``stages[i]`` (the raw mappings stay on ``model``)
    @property
    def description(self) -> str:
        return self.model.description

    @property
    def in_chans(self) -> int:
        return self.model.in_chans

    @property
    def input_size(self) -> int:
        return self.model.input_size

    @property
    def stem(self) -> StemParams:
        return self.model.stem

    @property
    def order(self) -> str:
        return self.model.order

    @property
    def norm(self) -> str:
        return self.model.norm

    @property
    def act(self) -> str:
        return self.model.act

    @property
    def head(self) -> HeadParams:
        return self.model.head

    @property
    def reported(self) -> Optional[Reported]:
        return self.model.reported

    @property
    def reference(self) -> list[str]:
        return self.model.reference

    def to_dict(self) -> dict:
        return self.model.model_dump(exclude_none=True)

    def geometry(self, output_stride: int = 32) -> list["StageGeometry"]:
        """Each stage's strides and dilations once ``output_stride`` is applied: a stride that
        would take the network past it becomes a dilation of the later blocks (DeepLab; timm's
        rule: the first block keeps the dilation it had), times the stage's own ``dilation``."""
        net_stride, dilation, out = self.model.stem.reduction, 1, []
        for plan in self.stages:
            stride, first = plan.stride, dilation
            if net_stride * stride > output_stride:
                dilation, stride = dilation * stride, 1
            net_stride *= stride
            if plan.entry:
                net_stride *= StemParams(type=plan.entry, width=plan.width).reduction
            out.append(StageGeometry(stride, dilation * plan.dilation, first * plan.dilation,
                                     net_stride))
        return out


@dataclass(frozen=True)
class StageGeometry:
    """Where a stage sits once ``output_stride`` is applied (:meth:`Spec.geometry`)."""

    stride: int  # of the first block
    dilation: int  # of the later blocks
    first_dilation: int  # of the first block
    reduction: int  # the network's stride after the stage


def _key_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    for part in loc:
        ann = model.model_fields.get(part) if isinstance(part, str) else None
        sub = getattr(ann, "annotation", None)
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            model = sub
    return list(model.model_fields)


def _from_validation(err: ValidationError, model: type[BaseModel], prefix: str = "",
                     index: Optional[int] = None) -> SpecError:
    e = err.errors()[0]
    loc = tuple(e["loc"])
    key = ".".join(p for p in (prefix, _key_path(loc)) if p)
    if index is not None:
        key += f"[{index}]"
    if e["type"] == "extra_forbidden":
        accepted = _fields_at(model, loc[:-1])
        hint = did_you_mean(str(loc[-1]), accepted) or f"accepted keys: {', '.join(accepted)}"
        return SpecError("unknown key", key=key, hint=hint)
    if e["type"] == "missing":
        return SpecError("required key is missing", key=key)
    msg = e["msg"].removeprefix("Value error, ")
    return SpecError(f"{msg} (got {short_repr(e.get('input'))})", key=key)


def _stage_classes(section: str, kind: Any, n: int, classes: dict[str, type[BaseModel]]
                   ) -> list[type[BaseModel]]:
    """The parameter model of each stage: ``type`` is one registered name, or one per stage
    (a hybrid such as ``[bottleneck, bottleneck, bottleneck, res2]``)."""
    kinds = kind if isinstance(kind, list) else [kind] * n
    if len(kinds) != n:
        raise SpecError(f"per-stage list has {len(kinds)} entries for {n} stages",
                        key=f"{section}.type", hint="give one type per stage or a single type")
    out = []
    for i, k in enumerate(kinds):
        key = f"{section}.type" + (f"[{i}]" if isinstance(kind, list) else "")
        if k is None:
            raise SpecError("required key is missing", key=key, hint=f"one of: {', '.join(classes)}")
        if not isinstance(k, str):
            raise SpecError(f"must be a type name, got {short_repr(k)}", key=key,
                            hint=f"one of: {', '.join(classes)}")
        if k not in classes:
            raise SpecError(f"unknown {section} type {short_repr(k)}", key=key,
                            hint=did_you_mean(k, classes) or f"one of: {', '.join(classes)}")
        out.append(classes[k])
    return out


def _per_stage(section: str, raw: dict, n: int, classes: dict[str, type[BaseModel]],
               default_cls: Optional[type[BaseModel]] = None) -> list[BaseModel]:
    """Broadcast a section's scalar / per-stage-list keys and validate each stage's values."""
    if not isinstance(raw, dict):
        raise SpecError(f"must be a mapping, got {type(raw).__name__}", key=section)
    stage_cls = [default_cls] * n if default_cls else _stage_classes(section, raw.get("type"), n, classes)
    for key, value in raw.items():
        if isinstance(value, list) and len(value) != n:
            raise SpecError(f"per-stage list has {len(value)} entries for {n} stages",
                            key=f"{section}.{short_str(key)}", hint="give one value per stage or a scalar")
        for i, cls in enumerate(stage_cls):
            if key not in cls.model_fields and not (isinstance(value, list) and value[i] is None):
                kind = raw["type"][i] if isinstance(raw.get("type"), list) else raw.get("type")
                accepted = list(cls.model_fields)
                where = f" (stage {i + 1})" if isinstance(raw.get("type"), list) else ""
                hint = did_you_mean(key, accepted) or f"accepted keys: {', '.join(accepted)}"
                if where:
                    hint += f"; or give a per-stage list with null for stage {i + 1}"
                raise SpecError(f"unknown key for {section} type {short_repr(kind)}{where}",
                                key=f"{section}.{short_str(key)}", hint=hint)
    out = []
    for i, cls in enumerate(stage_cls):
        values = {k: (v[i] if isinstance(v, list) else v) for k, v in raw.items()
                  if not (isinstance(v, list) and v[i] is None)}  # null: not given for this stage
        try:
            out.append(cls.model_validate(values))
        except ValidationError as err:
            bad = err.errors()[0]["loc"][0]
            per_stage = isinstance(raw.get(bad), list)
            raise _from_validation(err, cls, section, i if per_stage else None) from None
    return out


def validate_spec(raw: dict) -> tuple[SpecModel, tuple[StagePlan, ...]]:
    """Validate one resolved variant mapping; raises SpecError without file/variant filled in."""
    if not isinstance(raw, dict):
        raise SpecError(f"a spec must be a mapping, got {type(raw).__name__}")
    try:
        model = SpecModel.model_validate(raw)
    except ValidationError as err:
        raise _from_validation(err, SpecModel) from None
    st = model.stages
    n = len(st.depth)
    for key in ("width", "stride", "dilation", "entry"):
        if getattr(st, key) is not None and len(getattr(st, key)) != n:
            raise SpecError(f"has {len(getattr(st, key))} entries but stages.depth has {n}",
                            key=f"stages.{key}", hint="every per-stage list needs one entry per stage")
    for i, d in enumerate(st.depth):
        if d < 1:
            raise SpecError(f"depth must be >= 1, got {d}", key=f"stages.depth[{i}]")
        if model.order == "iresnet" and d < 2:
            raise SpecError("an iresnet stage needs a start and an end block", key=f"stages.depth[{i}]",
                            hint="use depth >= 2")
    for i, w in enumerate(st.width):
        if w < 1:
            raise SpecError(f"width must be >= 1, got {w}", key=f"stages.width[{i}]")

    blocks = _per_stage("block", model.block, n, BLOCKS)
    shortcuts = _per_stage("shortcut", model.shortcut, n, {}, ShortcutParams)
    merges = _per_stage("merge", model.merge, n, {}, MergeParams)
    attns = _per_stage("attn", model.attn, n, {}, AttnParams)

    in_ch = model.stem.width
    plans = []
    for i in range(n):
        b, s, m, a = blocks[i], shortcuts[i], merges[i], attns[i]
        entry = st.entry[i] if st.entry else None
        if entry:  # the entry already brings the input to the stage's width
            in_ch = st.width[i]
        if b.act_last and model.order != "post":
            raise SpecError("act_last needs order 'post' (the other orders end the branch in a "
                            "conv)", key="block.act_last", hint="remove it, or use order: post")
        if not b.supports(model.order):
            raise SpecError(f"block type {b.type!r} does not support order {model.order!r}",
                            key="order", hint=f"supported: {', '.join(o for o in ORDERS if b.supports(o))}")
        if (s.type == "none") != (m.type == "none"):
            raise SpecError("a block without a shortcut has nothing to merge, and a merge needs a "
                            "shortcut", key="merge.type",
                            hint="use shortcut: {type: none} together with merge: {type: none}")
        try:
            b.check_depth(st.depth[i])
        except KeyProblem as p:
            raise SpecError(p.message, key=f"block.{p.key}[{i}]", hint=p.hint) from None
        for j in range(2):  # first block (may change shape) and the rest (keep it)
            cin, stride = (in_ch, st.stride[i]) if j == 0 else (st.width[i], 1)
            for section, params in (("block", b), ("shortcut", s), ("attn", a)):
                try:
                    params.check(cin, st.width[i], stride)
                except KeyProblem as p:
                    raise SpecError(p.message, key=f"{section}.{p.key}", hint=p.hint) from None
        dilation = st.dilation[i] if st.dilation else 1
        plans.append(StagePlan(st.depth[i], st.width[i], st.stride[i], dilation, entry, b, s, m, a))
        in_ch = st.width[i]
    return model, tuple(plans)
