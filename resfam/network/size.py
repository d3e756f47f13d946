"""How many bytes a build's parameters and buffers take, known before anything is allocated.

The network's parts are assembled on PyTorch's ``meta`` device (shapes, no storage) by the
``skeleton`` function the caller passes (``ResFamNet.skeleton``: this module does not know the
network class), with every stage cut to at most four blocks (first, second, one repeated, last:
iResNet's first middle block differs from the others); the blocks a stage repeats are identical, so the full count is the cut
network's plus ``depth - 4`` copies of each stage's third block (a stage with per-block keys,
such as pruned widths, is built whole). Exact for every bundled variant, and milliseconds
whatever the depth or width asked for.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Callable

import torch
from torch import nn

from ..errors import BuildArgumentError

if TYPE_CHECKING:  # pragma: no cover
    from ..spec.build_args import BuildArgs
    from ..spec.schema import Spec

    Skeleton = Callable[[Spec, BuildArgs], nn.Module]

KEPT = 4  # blocks per stage built on the meta device


def _nbytes(module: nn.Module) -> int:
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def part_bytes(spec: "Spec", args: "BuildArgs", skeleton: "Skeleton") -> dict[str, int]:
    """Bytes of parameters + buffers per top-level part (``conv1``, ``layer3``, ``fc``, ...) of
    the network ``spec`` and ``args`` describe, whose parts ``skeleton(spec, args)`` assembles
    (with no checks of its own) on the current device; raises BuildArgumentError when a size does
    not even fit PyTorch's 64-bit size arithmetic."""
    cut = dataclasses.replace(spec, stages=tuple(
        p if p.block.at(0) is not p.block else dataclasses.replace(p, depth=min(p.depth, KEPT))
        for p in spec.stages))  # per-block keys (pruned widths): every block differs, keep all
    try:
        with torch.device("meta"):
            net = skeleton(cut, args)
    except (RuntimeError, OverflowError, TypeError, ValueError) as e:
        if "overflow" not in str(e).lower() and not isinstance(e, OverflowError):
            raise
        sizes = [(f"stages.width[{i}]", p.width) for i, p in enumerate(spec.stages)]
        sizes += [("stem.width", spec.model.stem.width), ("num_classes", args.num_classes or 0),
                  ("in_chans", args.in_chans or 0)]
        key, value = max(sizes, key=lambda kv: kv[1])
        raise BuildArgumentError(
            f"a tensor of this network would hold more than 2**63 bytes (largest size: "
            f"{key}={value})", variant=spec.name, key="max_param_bytes", file=_file(spec),
            hint="check the spec's widths and block keys, num_classes and in_chans") from None
    out = {name: _nbytes(child) for name, child in net.named_children()}
    for i, name in enumerate(net.stage_names):  # the stages built (features_only stops early)
        if cut.stages[i].depth < spec.stages[i].depth:
            stage = getattr(net, name)
            blocks = getattr(stage, "blocks", stage)  # a cross stage holds its blocks
            third = blocks.get_submodule("2")  # by name: an entry comes first
            out[name] += (spec.stages[i].depth - KEPT) * _nbytes(third)
    return out


def _file(spec: "Spec"):
    """The user's spec file, where the sizes came from one ('<dict>' for a mapping)."""
    return spec.file if spec.file != "<dict>" else None


def _gib(n: int) -> str:
    return f"{n / 2 ** 30:.3g} GiB" if n >= 2 ** 30 else f"{n / 2 ** 20:.3g} MiB"


def check_size(spec: "Spec", args: "BuildArgs", skeleton: "Skeleton") -> int:
    """Total parameter + buffer bytes; BuildArgumentError above ``args.max_param_bytes``, naming
    the part that holds the most and the spec key behind it."""
    if args.max_param_bytes is None:
        return 0
    parts = part_bytes(spec, args, skeleton)
    total = sum(parts.values())
    if total <= args.max_param_bytes:
        return total
    name, largest = max(parts.items(), key=lambda kv: kv[1])
    if name.startswith("layer"):
        i = int(name[5:]) - 1
        key = f"stages.width[{i}]={spec.stages[i].width}, stages.depth[{i}]={spec.stages[i].depth}"
    elif name == "fc":
        key = f"num_classes={args.num_classes if args.num_classes is not None else spec.model.head.num_classes}"
        if spec.model.head.pool == "flatten":  # the classifier sees every position
            key += f", input_size={spec.model.input_size} with head.pool flatten"
    else:
        key = f"stem.width={spec.model.stem.width}, in_chans={args.in_chans or spec.model.in_chans}"
    raise BuildArgumentError(
        f"its parameters and buffers would take {_gib(total)}, more than max_param_bytes="
        f"{args.max_param_bytes} ({_gib(args.max_param_bytes)}); {name} holds "
        f"{100 * largest / total:.0f}% of it ({key})", variant=spec.name, key="max_param_bytes",
        file=_file(spec),
        hint="reduce that key, or pass a larger max_param_bytes (None: no limit) to build anyway")
