"""Signal propagation at initialisation, before any data: what a network does to a random input.

Per residual block, the statistics of Brock, De & Smith 2021 ("Characterizing signal propagation
to close the performance gap in unnormalized ResNets", Sec. 3 and Fig. 1, *signal propagation
plots*), measured on a standard-normal batch in training mode (batch statistics, as at the first
step of training), each averaged over channels with the mean / variance taken over batch and
positions:

- ``avg_sq_mean``: average channel squared mean of the block's output,
- ``avg_var``: average channel variance of the block's output,
- ``branch_var``: average channel variance of the residual branch F(x) before the merge (None
  for a block without a shortcut: a plain net's),
- ``gate_mean``: the mean highway gate T(x) (Srivastava et al. 2015, Eq. (3)), gated blocks only.

Per part (stem, each stage, head) and for the input, the gradient norm of a cross-entropy loss on
random labels: the vanishing / exploding gradient argument (He et al. 2016, Sec. 1; Glorot &
Bengio 2010) read off one backward pass. ``grad_rms`` divides by the square root of the part's
size, so that parts of different sizes compare.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Optional, Union

import torch
from torch import nn

from ..errors import ArgumentError, short_repr
from ..factory import build
from ..network.model import ResFamNet
from ..network.preprocessing import MAX_INPUT_BYTES, input_bytes
from ..primitives.blocks import ResidualBlock
from ..spec.registry import get_spec
from ..spec.schema import Spec
from .options import MIN_IMG_SIZE, PROBE_MAX_SEED

BLOCK_FIELDS = ("model", "block", "stage", "name", "avg_sq_mean", "avg_var", "branch_var", "gate_mean")
GRAD_FIELDS = ("model", "part", "grad_norm", "grad_rms")


@dataclass
class Probe:
    """What :func:`probe` returns: one row per block and one per part, as plain dicts."""

    blocks: list[dict] = field(default_factory=list)
    grads: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)


def channel_stats(x: torch.Tensor) -> tuple[float, float]:
    """(average channel squared mean, average channel variance) of an NCHW tensor; the variance
    is the population one, both in float64."""
    x = x.detach().double()
    mean = x.mean(dim=(0, 2, 3))
    var = x.var(dim=(0, 2, 3), unbiased=False)
    return float((mean ** 2).mean()), float(var.mean())


def _blocks(model: nn.Module) -> list[tuple[str, int, ResidualBlock]]:
    """(name, stage number, block) in forward order; stage 0 where there are no stages."""
    out = []
    for name, mod in model.named_modules():
        if isinstance(mod, ResidualBlock):
            stage = name.split(".")[0]
            out.append((name, int(stage[5:]) if stage.startswith("layer") else 0, mod))
    return out


def _parts(model: nn.Module) -> list[tuple[str, list[nn.Parameter]]]:
    if isinstance(model, ResFamNet):
        stem = [p for n in model.stem_names for p in getattr(model, n).parameters()]
        parts = [("stem", stem)]
        parts += [(n, list(getattr(model, n).parameters())) for n in model.stage_names]
        head = [p for m in (model.norm, model.fc) if m is not None for p in m.parameters()]
        return parts + [("head", head)]
    return [(n, list(m.parameters())) for n, m in model.named_children()]


@torch.enable_grad()  # a backward pass, whatever grad mode the caller is in
def probe_model(model: nn.Module, *, name: str, x: torch.Tensor, num_classes: int,
                generator: torch.Generator) -> Probe:
    """The statistics of one built model for the input batch ``x`` (see the module docstring)."""
    result = Probe()
    rows: dict[int, dict] = {}
    hooks = []

    def on_output(index, block_name, stage):
        def hook(module, args, output):
            sq_mean, var = channel_stats(output)
            rows[index].update(model=name, block=index + 1, stage=stage, name=block_name,
                               avg_sq_mean=sq_mean, avg_var=var)
        return hook

    def on_branch(index):
        def hook(module, args, output):  # drop_path's output is the branch, before the merge
            rows[index]["branch_var"] = channel_stats(output)[1]
        return hook

    def on_gate(index):
        def hook(module, args, output):
            rows[index]["gate_mean"] = float(torch.sigmoid(output.detach().double()).mean())
        return hook

    for i, (block_name, stage, block) in enumerate(_blocks(model)):
        rows[i] = {"gate_mean": None, "branch_var": None}
        hooks.append(block.register_forward_hook(on_output(i, block_name, stage)))
        if block.has_merge:  # a plain net's block is all branch: no residual branch to measure
            hooks.append(block.drop_path.register_forward_hook(on_branch(i)))
        if block.gate is not None:
            hooks.append(block.gate.conv.register_forward_hook(on_gate(i)))
    model.train()
    x = x.clone().requires_grad_(True)
    try:
        logits = model(x)
    finally:
        for h in hooks:
            h.remove()
    labels = torch.randint(num_classes, (x.shape[0],), generator=generator).to(x.device)
    nn.functional.cross_entropy(logits, labels).backward()
    result.blocks = [{k: rows[i].get(k) for k in BLOCK_FIELDS} for i in sorted(rows)]
    for part, params in _parts(model) + [("input", [x])]:
        grads = [p.grad.detach().double().flatten() for p in params if p.grad is not None]
        if not grads:
            continue
        g = torch.cat(grads)
        result.grads.append(dict(model=name, part=part, grad_norm=float(g.norm()),
                                 grad_rms=float(g.norm() / g.numel() ** 0.5)))
    return result


def probe(models: Union[str, nn.Module, Iterable[Union[str, nn.Module]]], *, batch_size: int = 64,
          img_size: Optional[int] = None, seed: int = 0, device: Union[str, torch.device] = "cpu",
          **build_kwargs) -> Probe:
    """Signal propagation of each model at initialisation (seeded: the same numbers every run).

    Args:
        models: names, fnmatch patterns, spec files or mappings, or built models (named by
            class).
        batch_size: samples in the standard-normal batch.
        img_size: input side (default: each spec's native input size; 224 for a built module).
        seed: seeds the initialisation, the input and the random labels.
        build_kwargs: passed to :func:`resfam.build` for named models (e.g. ``norm_layer='none'``
            for an unnormalised net, ``zero_init_last=True``).
    """
    from ..comparison.sweep import select

    single = (str, dict, Spec, nn.Module)
    if not isinstance(models, (*single, list, tuple)):
        raise ArgumentError(f"probe() takes a model name, spec, module or a list of them, got "
                            f"{short_repr(models)}")
    items = [models] if isinstance(models, single) else list(models)
    if not items:
        raise ArgumentError("probe() needs at least one model")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 2:
        raise ArgumentError(f"batch_size must be a whole number >= 2 (variances over the batch), "
                            f"got {short_repr(batch_size)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= PROBE_MAX_SEED:
        raise ArgumentError(f"seed must be a whole number from 0 to 2**63 - 1, got {short_repr(seed)}")
    if img_size is not None and (not isinstance(img_size, int) or isinstance(img_size, bool)
                                 or img_size < MIN_IMG_SIZE):
        raise ArgumentError(f"img_size must be a whole number >= {MIN_IMG_SIZE} (or None: each "
                            f"spec's own), got {short_repr(img_size)}")
    if input_bytes(batch_size, img_size) > MAX_INPUT_BYTES:
        raise ArgumentError(f"batch_size {batch_size} x img_size {img_size or 224}: the input batch "
                            f"alone would take more than {MAX_INPUT_BYTES // 2 ** 30} GiB; use a "
                            "smaller batch or input")
    todo: list = []  # names and patterns expanded, every spec resolved before the first build
    for item in items:
        if isinstance(item, str):
            todo += [get_spec(n) for n in select([item])]
        elif isinstance(item, nn.Module):
            todo.append(item)
        else:
            todo.append(get_spec(item))
    device = torch.device(device)
    out = Probe(meta=dict(torch=torch.__version__, device=str(device), batch_size=batch_size,
                          seed=seed, input="native" if img_size is None else img_size,
                          build_kwargs={k: repr(v) for k, v in build_kwargs.items()}))
    for item in todo:
        torch.manual_seed(seed)
        if isinstance(item, nn.Module):
            model, name = item, type(item).__name__
            size, in_chans = img_size or 224, getattr(item, "in_chans", 3)
        else:
            model, name = build(item, **build_kwargs), item.name
            size, in_chans = img_size or item.input_size, model.in_chans
        model.to(device)
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(batch_size, in_chans, size, size, generator=gen).to(device)
        num_classes = getattr(model, "num_classes", None) or 10
        one = probe_model(model, name=name, x=x, num_classes=num_classes, generator=gen)
        out.blocks += one.blocks
        out.grads += one.grads
    return out
