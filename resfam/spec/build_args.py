"""The keyword arguments of ``resfam.build`` and ``ResFamNet``: one schema, checked in one place
before any tensor exists (the adapters, which call ``ResFamNet`` directly, get the same checks).

Two of them are policies rather than facts about the network: ``max_param_bytes`` and
``max_blocks`` refuse a spec whose parameters and buffers would not fit in memory, or whose
depth would take minutes to build, with an error naming the spec key responsible. Both are
keywords a user can raise (or set to ``None``) to build anyway.
"""
from __future__ import annotations

from typing import Any, Literal, Optional, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import BuildArgumentError, did_you_mean, short_repr
from ..primitives.layers import int_choice
from ..primitives.norms import NORMS

DEFAULT_MAX_PARAM_BYTES = 8 * 2 ** 30  # 8 GiB: 2.1e9 float32 parameters (regnety_2560: 4.78 GiB)
DEFAULT_MAX_BLOCKS = 2000  # ResNet-1202 has 600 blocks; ~1 ms of build time per block on a CPU


class BuildArgs(BaseModel):
    """What a build may override or switch on; the defaults are the spec's."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    num_classes: Optional[int] = Field(None, ge=0, description="classifier outputs (0: no "
                                       "classifier); default: the spec's head.num_classes")
    in_chans: Optional[int] = Field(None, ge=1, description="input channels; default: the spec's")
    drop_rate: Optional[float] = Field(None, ge=0.0, lt=1.0, description="dropout before the "
                                       "classifier; default: the spec's head.drop_rate")
    drop_path_rate: float = Field(0.0, ge=0.0, lt=1.0, description="stochastic depth at the "
                                  "last block, rising linearly from 0 (Huang et al. 2016)")
    zero_init_last: bool = Field(False, description="zero the last norm (or conv) of every "
                                 "residual branch (Goyal et al. 2017)")
    output_stride: int_choice(8, 16, 32) = Field(32, description="later strides become dilations")
    features_only: bool = Field(False, description="return feature maps, build no classifier")
    out_indices: Optional[Sequence[int]] = Field(None, description="levels to return: 0 = stem, "
                                                 "1..N = stages; negative counts from the end")
    as_dict: bool = Field(False, description="features_only: a dict by module name, not a list")
    frozen_stages: int = Field(-1, ge=-1, description="-1 none, 0 the stem, k the stem and "
                               "stages 1..k (mmdet's meaning)")
    norm_eval: bool = Field(False, description="keep every norm in eval mode while training")
    norm_layer: Optional[Literal[tuple(NORMS)]] = Field(None, description="norm overriding "
                                                        "the spec's")
    norm_groups: Optional[int] = Field(None, ge=1, description="groups of the gn layers "
                                       "(default 32; gcd(groups, channels) where they differ)")
    max_param_bytes: Optional[int] = Field(DEFAULT_MAX_PARAM_BYTES, ge=1, description="refuse "
                                           "a network whose parameters and buffers exceed this "
                                           "many bytes (None: no limit)")
    max_blocks: Optional[int] = Field(DEFAULT_MAX_BLOCKS, ge=1, description="refuse a network "
                                      "with more residual blocks than this (None: no limit)")


ARG_NAMES = tuple(BuildArgs.model_fields)

_TYPE_HINTS = {"int_type": "a Python int", "bool_type": "True or False",
               "float_type": "a Python float", "literal_error": "one of the listed values"}


def _error(err: ValidationError, variant: str) -> BuildArgumentError:
    e = err.errors(include_url=False)[0]
    key = str(e["loc"][0]) if e["loc"] else None
    if e["type"] == "extra_forbidden":
        hint = did_you_mean(key, ARG_NAMES) or f"accepted: {', '.join(ARG_NAMES)}"
        return BuildArgumentError("unknown argument", variant=variant, key=key, hint=hint)
    msg = e["msg"].replace("Input should be", "should be").removeprefix("Value error, ")
    return BuildArgumentError(f"{msg}, got {short_repr(e.get('input'))}", variant=variant,
                              key=key, hint=_TYPE_HINTS.get(e["type"], ""))


def check_build_args(spec: Any, given: dict) -> BuildArgs:
    """Validate ``given`` (keyword name -> value) for ``spec``; raises BuildArgumentError naming
    the variant, the argument and the fix. Runs before anything is allocated."""
    from .schema import Spec

    if not isinstance(spec, Spec):
        raise BuildArgumentError(f"ResFamNet takes a resolved Spec, got {type(spec).__name__}",
                                 hint="use resfam.build(name_or_path) or ResFamNet(resfam.get_spec(...))")
    bad_names = [k for k in given if not isinstance(k, str)]
    if bad_names:
        raise BuildArgumentError(f"argument names must be strings, got {short_repr(bad_names[0])}",
                                 variant=spec.name)
    try:
        args = BuildArgs.model_validate(given)
    except ValidationError as err:
        raise _error(err, spec.name) from None
    stem = spec.model.stem
    if stem.layers is not None and args.in_chans is not None \
            and stem.layer_widths(args.in_chans)[-1] != stem.width:
        raise BuildArgumentError(
            f"is {args.in_chans}, and the stem's layers pass the input's channels through (a "
            f"pool branch): its width would be {stem.layer_widths(args.in_chans)[-1]}, not "
            f"{stem.width}", variant=spec.name, key="in_chans",
            hint=f"use in_chans={spec.model.in_chans}, or a stem whose first layer is a conv")
    reduction = spec.geometry(args.output_stride)[-1].reduction
    if args.output_stride < 32 and reduction > args.output_stride:  # (32, the default: as built)
        fits = [o for o in (8, 16, 32) if o >= reduction]
        raise BuildArgumentError(
            f"is {args.output_stride}, but the network's stem and stage entries subsample "
            f"{reduction}x by themselves (only a stage's strided blocks can become dilated)",
            variant=spec.name, key="output_stride",
            hint=f"use output_stride={fits[0] if fits else 32}")
    levels = len(spec.stages) + 1
    if args.out_indices is not None:
        idx = list(args.out_indices)
        if not idx:
            raise BuildArgumentError("is empty", variant=spec.name, key="out_indices",
                                     hint="leave it out for every level, or name at least one")
        bad = [i for i in idx if not -levels <= i < levels]
        if bad:
            raise BuildArgumentError(f"{bad} out of range", variant=spec.name, key="out_indices",
                                     hint=f"levels are 0 (the stem) to {levels - 1} (its "
                                          f"{levels - 1} stages), or -{levels} to -1")
        wrapped = [i % levels for i in idx]
        if len(set(wrapped)) != len(wrapped):
            raise BuildArgumentError(f"{idx} names a level twice", variant=spec.name,
                                     key="out_indices", hint="give each level once")
    if args.frozen_stages > levels - 1:
        raise BuildArgumentError(f"is {args.frozen_stages} but the network has {levels - 1} "
                                 "stages", variant=spec.name, key="frozen_stages",
                                 hint=f"use -1 (none) to {levels - 1} (all)")
    blocks = sum(p.depth for p in spec.stages)
    if args.max_blocks is not None and blocks > args.max_blocks:
        deepest = max(range(len(spec.stages)), key=lambda i: spec.stages[i].depth)
        raise BuildArgumentError(
            f"has {blocks} residual blocks, more than max_blocks={args.max_blocks} (building "
            f"takes about 1 ms a block); the deepest stage is stages.depth[{deepest}]="
            f"{spec.stages[deepest].depth}", variant=spec.name, key="max_blocks",
            file=spec.file if spec.file != "<dict>" else None,
            hint="reduce stages.depth, or pass max_blocks=None to build it anyway")
    return args
