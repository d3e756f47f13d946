"""A design space as data: a ``space:`` YAML file (docs/design_spaces.md).

A space is a *base* spec (any spec mapping, ``extends:`` a bundled variant if it likes), the
*keys* drawn for each sample (a dotted spec key and how it is drawn: ``choice``, ``int``,
``log_int``, ``float`` or ``log_float`` ranges, optionally ``multiple_of`` and ``per_stage``),
*rules* that derive keys from others (RegNet's widths, Eq. 2-3; pycls's width / group
compatibility; widths doubling per stage), and *constraints*: a ``gmacs`` / ``params`` / ``acts``
band (GMACs, millions, millions; the analytic counter's numbers at ``input_size``) and keys that
may not decrease from stage to stage (AnyNetX D and E). Radosavovic et al. 2019 ("On Network
Design Spaces for Visual Recognition", NDS, Sec. 3) and 2020 ("Designing Network Design
Spaces", RegNet, Sec. 3) define spaces this way.

Files are read as spec files are (:mod:`resfam.spec.loading`: safe YAML, bounded size); every
mistake is a :class:`resfam.errors.SpecError` naming the file, the space and the key, raised at
load, before anything is sampled. Loading also draws probe samples (every choice and both ends of
every range, then seeded random draws) and validates each as a spec, so a space that can produce
an invalid network fails at load, naming the drawn keys.
"""
from __future__ import annotations

import math
import os
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import SpecError, did_you_mean, short_repr
from ..spec.registry import SPECS_DIR

SPACES_DIR = SPECS_DIR / "spaces"

IntPair = Annotated[list[int], Field(min_length=2, max_length=2)]
FloatPair = Annotated[list[float], Field(min_length=2, max_length=2)]
KINDS = ("choice", "int", "log_int", "float", "log_float")
MAX_STAGES = 8
MAX_KEYS = 64


class Draw(BaseModel):
    """How one key is drawn: exactly one of the kinds, uniform (``log_``: uniform in the log)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    choice: Optional[list[Any]] = Field(None, description="one of these values, each equally likely")
    int_: Optional[IntPair] = Field(None, alias="int", description="a whole number in [low, high]")
    log_int: Optional[IntPair] = Field(None, description="a whole number in [low, high], log-uniform")
    float_: Optional[FloatPair] = Field(None, alias="float", description="a number in [low, high]")
    log_float: Optional[FloatPair] = Field(None, description="a number in [low, high], log-uniform")
    multiple_of: Optional[int] = Field(None, ge=1, description="round a drawn number to a multiple of this")
    per_stage: bool = Field(False, description="one value per stage (a list), else one for all stages")

    def _range(self, kind: str):
        return getattr(self, {"int": "int_", "float": "float_"}.get(kind, kind))

    @model_validator(mode="after")
    def _one_kind(self):
        given = [k for k in KINDS if self._range(k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(KINDS)} (got {', '.join(given) or 'none'})")
        kind = given[0]
        if kind == "choice":
            if not self.choice:
                raise ValueError("choice: give at least one value")
            if self.multiple_of is not None:
                raise ValueError("multiple_of rounds drawn numbers; list the values of a choice as they are")
        else:
            low, high = self._range(kind)
            if not low <= high:
                raise ValueError(f"{kind}: [{low}, {high}] is not a range (low <= high)")
            if kind.startswith("log") and low <= 0:
                raise ValueError(f"{kind}: a log-uniform range must be positive, got [{low}, {high}]")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if self._range(k) is not None)

    def corners(self) -> list:
        """The values a load check tries: every choice, both ends of a range."""
        if self.choice is not None:
            return list(self.choice)
        low, high = self._range(self.kind)
        return [self._finish(low), self._finish(high)]

    def _finish(self, value):
        if self.multiple_of:
            value = max(self.multiple_of, round(value / self.multiple_of) * self.multiple_of)
        return int(value) if self.kind in ("int", "log_int") or self.multiple_of else float(value)

    def draw(self, rng) -> Any:
        """One value from ``rng`` (a random.Random)."""
        kind = self.kind
        if kind == "choice":
            return rng.choice(self.choice)
        low, high = self._range(kind)
        if kind == "int":
            return self._finish(rng.randint(low, high))
        if kind == "log_int":  # floor of a log-uniform number in [low, high + 1)
            return self._finish(min(high, int(math.exp(rng.uniform(math.log(low), math.log(high + 1))))))
        if kind == "float":
            return self._finish(rng.uniform(low, high))
        return self._finish(math.exp(rng.uniform(math.log(low), math.log(high))))


Value = Union[Draw, int, float]


class RegNetRule(BaseModel):
    """``stages.depth`` and ``stages.width`` from (w0, wa, wm, depth) by RegNet's Eq. (2)-(3)
    (:mod:`resfam.spec.regnet`); every stage strides ``stride`` (2 in RegNet, Fig. 3)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    rule: Literal["regnet"]
    w0: Value
    wa: Value
    wm: Value
    depth: Value
    quantum: int = Field(8, ge=1)
    stride: int = Field(2, ge=1, le=2)
    max_stages: int = Field(4, ge=1, le=MAX_STAGES, description="RegNet keeps 4 stages: a draw "
                            "giving more is redrawn")


class CompatibleRule(BaseModel):
    """``stages.width`` adjusted so that ``block.group_width`` divides each inner width
    ``width / block.expansion`` (pycls's compatibility, :func:`resfam.spec.regnet.compatible_widths`)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    rule: Literal["compatible"]


class DoublingRule(BaseModel):
    """``stages.width``: ``width * factor * 2 ** i`` for stage i (He et al. 2016's doubling)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    rule: Literal["doubling"]
    width: Value
    factor: int = Field(1, ge=1, description="e.g. 4 for bottleneck blocks' output widths")


RULES = {"regnet": RegNetRule, "compatible": CompatibleRule, "doubling": DoublingRule}
Rule = Annotated[Union[RegNetRule, CompatibleRule, DoublingRule], Field(discriminator="rule")]


class Band(BaseModel):
    """Complexity bands: a sample is kept when every given value lies in [low, high]."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    gmacs: Optional[FloatPair] = Field(None, description="multiply-accumulates, G (resfam-compare's GMACs)")
    params: Optional[FloatPair] = Field(None, description="parameters, M")
    acts: Optional[FloatPair] = Field(None, description="activations (conv and linear outputs), M")

    @model_validator(mode="after")
    def _ranges(self):
        for key in ("gmacs", "params", "acts"):
            band = getattr(self, key)
            if band is not None and not 0 <= band[0] <= band[1]:
                raise ValueError(f"{key}: [{band[0]}, {band[1]}] is not a band (0 <= low <= high)")
        return self

    def holds(self, values: dict) -> bool:
        return all(band is None or band[0] <= values[key] <= band[1]
                   for key, band in (("gmacs", self.gmacs), ("params", self.params), ("acts", self.acts)))

    def describe(self) -> str:
        units = {"gmacs": "GMACs", "params": "M params", "acts": "M acts"}
        parts = [f"{getattr(self, k)[0]:g}-{getattr(self, k)[1]:g} {u}" for k, u in units.items()
                 if getattr(self, k) is not None]
        return ", ".join(parts) or "no band"


class Constraints(Band):
    nondecreasing: list[str] = Field(default_factory=list, description="per-stage keys that may "
                                     "not decrease from one stage to the next (AnyNetX D: widths, E: depths)")


class SpaceDef(BaseModel):
    """The top level of a ``space:`` mapping."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    description: str = ""
    paper: str = Field("", description="where the space is defined (paper, section, table)")
    input_size: Optional[int] = Field(None, ge=8, le=1024, description="side the band is counted "
                                      "at (default: the base spec's input_size)")
    base: dict = Field(description="the spec every sample starts from")
    keys: dict[str, Draw] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    constraints: Constraints = Field(default_factory=Constraints)
    stages: Optional[Draw] = Field(None, description="the number of stages, drawn (default: the "
                                   "base's or the regnet rule's)")


class Space:
    """A loaded, checked design space."""

    def __init__(self, d: SpaceDef, file: str):
        self.d, self.file = d, file

    @property
    def name(self) -> str:
        return self.d.name

    def __repr__(self) -> str:
        return f"Space({self.name!r}, {self.file})"

    def error(self, message: str, key: Optional[str] = None, hint: str = "") -> SpecError:
        return SpecError(message, file=self.file, variant=f"space {self.name}", key=key, hint=hint)


def _located(err: ValidationError, file: str, name: Optional[str]) -> SpecError:
    e = err.errors()[0]
    key = ".".join(str(p) for p in e["loc"] if not str(p).startswith(("function-after", "tagged-union")))
    msg = e["msg"].removeprefix("Value error, ")
    hint = ""
    if e["type"] == "extra_forbidden":  # the keys of the mapping that holds the unknown one
        field = str(e["loc"][-1])
        parent = tuple(str(p) for p in e["loc"][:-1] if not str(p).startswith("function-after"))
        rule = parent[-1] if len(parent) == 3 and parent[0] == "rules" else None
        model = (SpaceDef if not parent else Constraints if parent == ("constraints",)
                 else RULES.get(rule, Draw))
        candidates = [f.alias or n for n, f in model.model_fields.items()]
        hint = did_you_mean(field, candidates) or f"keys: {', '.join(candidates)}"
    return SpecError(f"{msg} (got {short_repr(e.get('input'))})", file=file,
                     variant=f"space {name}" if name else None, key=key or None, hint=hint)


def list_spaces() -> list[str]:
    """The bundled spaces' names (``specs/spaces/*.yaml``)."""
    return sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))


def read_space(ref: Union[str, os.PathLike, dict, "Space"]) -> Space:
    """A bundled space by name, a ``space:`` YAML file, or a mapping (the ``space:`` value),
    checked for its structure (:func:`resfam.space.sampling.load` also draws the probe samples)."""
    from ..spec.loading import read_document

    if isinstance(ref, Space):
        return ref
    if isinstance(ref, dict):
        raw, file = ref, "<dict>"
    elif isinstance(ref, (str, os.PathLike)):
        text = os.fspath(ref)
        if not text.endswith((".yaml", ".yml")) and os.sep not in text and "/" not in text:
            path = SPACES_DIR / f"{text}.yaml"
            if not path.is_file():
                known = list_spaces()
                raise SpecError(f"unknown design space '{text}'", key=None,
                                hint=did_you_mean(text, known) or f"bundled: {', '.join(known)}; "
                                "or give a space file (.yaml)")
            text = str(path)
        doc = read_document(text)
        file = text
        if not isinstance(doc, dict) or set(doc) != {"space"}:
            raise SpecError("a design-space file holds one top-level key, 'space:'", file=file,
                            hint="see docs/design_spaces.md, or specs/spaces/resnet.yaml")
        raw = doc["space"]
    else:
        raise SpecError(f"a design space is a bundled name, a .yaml file or a mapping, got {short_repr(ref)}")
    if not isinstance(raw, dict):
        raise SpecError(f"'space:' must be a mapping, got {short_repr(raw)}", file=file)
    name = raw.get("name") if isinstance(raw.get("name"), str) else None
    if isinstance(raw.get("keys"), dict) and len(raw["keys"]) > MAX_KEYS:
        raise SpecError(f"{len(raw['keys'])} drawn keys; at most {MAX_KEYS}", file=file, key="keys")
    try:
        d = SpaceDef.model_validate(raw)
    except ValidationError as err:
        raise _located(err, file, name) from None
    space = Space(d, file)
    _check_structure(space)
    return space


def _check_structure(space: Space) -> None:
    d = space.d
    for key in d.keys:
        if not key.replace("_", "").replace(".", "").isalnum() or key.startswith(".") or ".." in key:
            raise space.error("a drawn key is a dotted spec key such as block.groups", key=f"keys.{key}")
        if key.split(".")[0] in ("name", "family", "extends", "reported", "reference"):
            raise space.error("this key names a design; it is not drawn", key=f"keys.{key}")
    derived = {"regnet": ("stages.depth", "stages.width"), "doubling": ("stages.width",),
               "compatible": ()}
    for i, rule in enumerate(d.rules):
        for key in derived[rule.rule]:
            if key in d.keys:
                raise space.error(f"{key} is both drawn and derived by the {rule.rule} rule",
                                  key=f"keys.{key}", hint="drop one of them")
        if rule.rule == "regnet" and (i != 0 or d.stages is not None):
            raise space.error("the regnet rule fixes the stages: it comes first, without 'stages:'",
                              key=f"rules.{i}")
    for key in d.constraints.nondecreasing:
        draw = d.keys.get(key)
        if not (key in ("stages.depth", "stages.width") or (draw is not None and draw.per_stage)):
            raise space.error(f"{key} is not a per-stage key", key="constraints.nondecreasing",
                              hint="name stages.depth, stages.width or a key drawn per_stage")
    stages = d.base.get("stages", {})
    if not isinstance(stages, dict):
        raise space.error(f"must be a mapping, got {short_repr(stages)}", key="base.stages")
    stride = stages.get("stride")
    regnet = bool(d.rules) and d.rules[0].rule == "regnet"
    if d.stages is None and not regnet and not (
            isinstance(stride, list) and 1 <= len(stride) <= MAX_STAGES):
        raise space.error(f"the number of stages is not known (stride {short_repr(stride)})",
                          key="base.stages.stride", hint=f"give base.stages.stride, a list of 1 to "
                          f"{MAX_STAGES} strides, a 'stages:' draw, or the regnet rule")
    if d.stages is not None:
        for n in d.stages.corners():
            if not isinstance(n, int) or not 1 <= n <= MAX_STAGES:
                raise space.error(f"a stage count of {n!r}; give whole numbers from 1 to {MAX_STAGES}",
                                  key="stages")
