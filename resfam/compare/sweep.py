"""``resfam.compare``: count and measure builds one at a time, returning one dict per model."""
from __future__ import annotations

import fnmatch
import gc
import os
import platform
import sys
from typing import Callable, Iterable, Optional, Sequence, Union

import torch

from ..errors import ArgumentError, ResfamError, UnknownModelError, did_you_mean, short_repr
from ..factory import build
from ..registry import get_spec, is_spec_path, list_families, list_models
from . import timing
from .counting import count_params, default_counter

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def select(models: Optional[Iterable[str]] = None, family: Optional[Union[str, Sequence[str]]] = None) -> list[str]:
    """Expand names, fnmatch patterns and spec paths (kept as given) into an ordered list; no
    models and no family means the whole zoo. Unknown names raise UnknownModelError."""
    families = [family] if isinstance(family, str) else list(family or [])
    models = [models] if isinstance(models, str) else list(models or [])
    bad = [m for m in [*models, *families] if not isinstance(m, str)]
    if bad:
        raise ArgumentError(f"model names, patterns, paths and families are strings, got "
                            f"{short_repr(bad[0])}")
    known = list_models()
    for fam in families:
        if not list_models(family=fam):
            hint = did_you_mean(fam, list_families()) or f"families: {', '.join(list_families())}"
            raise ResfamError(f"unknown family '{fam}': {hint}")
    out: list[str] = []
    for ref in (models or []):
        if is_spec_path(ref):  # a broken file fails its own row; the sweep goes on
            out.append(ref)
            continue
        matched = [n for n in known if fnmatch.fnmatchcase(n, ref)]
        if not matched:
            raise UnknownModelError(ref, known)
        out += [m for m in matched if m not in out]
    for fam in families:
        out += [m for m in list_models(family=fam) if m not in out]
    return out if (models or families) else known


def environment(device: torch.device, dtype: str, batch_size: int, img_size: Optional[int],
                channels_last: bool) -> dict:
    size = f"{img_size}x{img_size}" if img_size else "native (224, CIFAR nets 32)"
    return {"torch": torch.__version__, "device": str(device),
            "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                            else platform.processor() or platform.machine()),
            "threads": torch.get_num_threads(), "dtype": dtype, "batch_size": batch_size,
            "input": size, "channels_last": channels_last}


def _pct(value: Optional[float], reference: Optional[float]) -> Optional[float]:
    if value is None or not reference:
        return None
    return round((value / reference - 1.0) * 100.0, 2) + 0.0  # no "-0.0"


def measure_one(ref: str, *, params: bool = True, flops: bool = False, acts: bool = False,
                latency: bool = False, throughput: bool = False, memory: bool = False,
                train: bool = False, device: Optional[torch.device] = None, dtype: str = "float32",
                batch_size: int = 1, img_size: Optional[int] = None, channels_last: bool = False,
                warmup: int = 3, runs: int = 10, counter=None) -> dict:
    """One row. Errors become the row's ``error`` (the caller's sweep goes on)."""
    device = device or timing.device_of(None)
    row: dict = {"model": ref}
    model = None
    try:
        spec = get_spec(ref)
        row.update(model=spec.name, family=spec.family)
        size = img_size or spec.input_size
        row["input"] = size
        model = build(spec)
        num_classes = model.num_classes
        if params:
            row["params"], row["params_trainable"] = count_params(model)
        x = torch.randn(batch_size, model.in_chans, size, size)
        if flops or acts:
            counter = counter or default_counter()
            if flops:
                counts = counter.count(model, x)
                row["gmacs"] = round(counts.macs / batch_size / 1e9, 4)
                row["other_mops"] = round(counts.other / batch_size / 1e6, 3)
                row["gflops"] = round(2 * (counts.macs + counts.other) / batch_size / 1e9, 4)
                row["unsupported"] = ";".join(f"{k}={v}" for k, v in sorted(counts.unsupported.items()))
                row["counter"] = counter.name
            if acts:
                row["acts_m"] = round(counter.activations(model, x) / batch_size / 1e6, 3)
        if latency or throughput or memory:
            model = model.to(device=device, dtype=DTYPES[dtype])
            x = x.to(device=device, dtype=DTYPES[dtype])
            if channels_last:
                model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
            if latency or throughput:
                t = timing.inference_latency(model, x, warmup, runs)
                row["latency_ms"], row["latency_iqr_ms"] = round(t.median_ms, 3), round(t.iqr_ms, 3)
                row["throughput"] = round(t.throughput(batch_size), 2)
                if train:
                    tt = timing.train_latency(model, x, num_classes, max(1, warmup // 2), max(2, runs // 2))
                    row["train_throughput"] = round(tt.throughput(batch_size), 2)
            if memory:
                row["peak_mem_mb"] = round(timing.forward_memory_mb(model, x), 2)
                if train:
                    row["train_peak_mem_mb"] = round(timing.train_memory_mb(model, x, num_classes), 2)
        rep = spec.reported
        if rep is not None:
            row.update(paper_source=rep.source, paper_params_m=rep.params_m, paper_gflops=rep.gflops,
                       paper_top1=rep.top1, paper_error=rep.error, paper_dataset=rep.dataset)
            if "params" in row:
                row["params_vs_paper_pct"] = _pct(row["params"] / 1e6, rep.params_m)
            if "gmacs" in row and size == spec.input_size:
                row["gmacs_vs_paper_pct"] = _pct(row["gmacs"], rep.gflops)
    except Exception as e:  # noqa: BLE001 - a failing model marks its row; the sweep goes on
        row["error"] = f"{type(e).__name__}: {e}".splitlines()[0]
    finally:
        del model
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return row


# the smallest value each numeric option takes (the CLI's argparse types read the same table)
OPTION_MINIMA = {"batch_size": 1, "runs": 1, "warmup": 0, "img_size": 1}
FLAGS = ("params", "flops", "acts", "latency", "throughput", "memory", "train", "channels_last")


def check_options(options: dict) -> None:
    """ArgumentError for an option :func:`measure_one` does not take, or a value it cannot use."""
    accepted = set(OPTION_MINIMA) | set(FLAGS) | {"dtype"}
    for key, value in options.items():
        if key not in accepted:
            hint = did_you_mean(key, sorted(accepted)) or f"accepted: {', '.join(sorted(accepted))}"
            raise ArgumentError(f"compare(): unknown option '{key}' ({hint})")
        if key in FLAGS and not isinstance(value, bool):
            raise ArgumentError(f"compare(): {key} must be True or False, got {short_repr(value)}")
        if key in OPTION_MINIMA and not (value is None and key == "img_size"):
            if isinstance(value, bool) or not isinstance(value, int) or value < OPTION_MINIMA[key]:
                raise ArgumentError(f"compare(): {key} must be an int >= {OPTION_MINIMA[key]}, "
                                    f"got {short_repr(value)}")
        if key == "dtype" and value not in DTYPES:
            raise ArgumentError(f"compare(): dtype must be one of {', '.join(DTYPES)}, got "
                                f"{short_repr(value)}")


def compare(models: Optional[Iterable[str]] = None, *, family=None, progress: bool = False,
            on_row: Optional[Callable[[dict], None]] = None, device: Optional[str] = None,
            **options) -> list[dict]:
    """Count and measure every selected build on one backend; see :func:`measure_one` for the
    options (``params``, ``flops``, ``acts``, ``latency``, ``throughput``, ``memory``, ``train``,
    ``dtype``, ``batch_size``, ``img_size``, ``channels_last``, ``warmup``, ``runs``).

    Models are built, measured and freed one at a time, so peak memory stays near that of the
    largest single model.
    """
    check_options(options)
    if isinstance(models, str):
        models = [models]
    refs = select(models, family)
    dev = timing.device_of(device)
    counter = default_counter() if options.get("flops") or options.get("acts") else None
    rows = []
    iterator = refs
    if progress:
        from tqdm import tqdm

        iterator = tqdm(refs, desc="resfam-compare", unit="model", file=sys.stderr, dynamic_ncols=True)
    for ref in iterator:
        if progress:
            iterator.set_postfix_str(os.path.basename(ref))
        row = measure_one(ref, device=dev, counter=counter, **options)
        rows.append(row)
        if on_row:
            on_row(row)
    return rows
