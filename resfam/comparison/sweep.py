"""``resfam.compare()``: count and measure builds one at a time, returning one dict per model."""
from __future__ import annotations

import gc
import os
import platform
import statistics
import sys
import warnings
from typing import Callable, Iterable, Optional, Union

import torch

from ..errors import ArgumentError, ResfamError, did_you_mean, short_repr
from . import timing
from .analytic import AnalyticCounter, tally
from .counting import FlopCounterModeCounter, FvcoreCounter, count_params, default_counter
from .options import (COUNTERS, DTYPE_NAMES, FLAGS, IMG_SIZES, MAX_WORKERS, OPTION_MAXIMA,
                      OPTION_MINIMA, batch_sizes, describe_input, input_side)
from .targets import LIBRARIES, Target, build_target, model_list, resolve, select_targets

DTYPES = {name: getattr(torch, name) for name in DTYPE_NAMES}


def make_counter(name: str):
    """``analytic`` (from the spec, :mod:`resfam.comparison.analytic`), ``fvcore`` or ``torch``
    (FlopCounterMode, :mod:`resfam.comparison.counting`)."""
    if name == "analytic":
        return AnalyticCounter()
    return FvcoreCounter() if name == "fvcore" else FlopCounterModeCounter()


def select(models=None, family=None) -> list[str]:
    """resfam refs only (names and ``file.yaml:variant``), for tools that build resfam nets."""
    targets = select_targets(models, family)
    foreign = [t.label for t in targets if t.library != "resfam"]
    if foreign:
        raise ResfamError(f"{foreign[0]} is another library's model; only resfam-compare "
                          "measures those")
    return [t.spec if t.spec is not None else t.ref for t in targets]


def environment(device: torch.device, dtype: str, batch_size: int, img_size, channels_last: bool) -> dict:
    size = describe_input(img_size)
    return {"torch": torch.__version__, "device": str(device),
            "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                            else platform.processor() or platform.machine()),
            "threads": torch.get_num_threads(), "dtype": dtype, "batch_size": batch_size,
            "input": size, "channels_last": channels_last}


def _pct(value: Optional[float], reference: Optional[float]) -> Optional[float]:
    if value is None or not reference:
        return None
    return round((value / reference - 1.0) * 100.0, 2) + 0.0  # no "-0.0"


def paper_columns(row: dict, spec, size: int) -> None:
    """The paper's figures, one accuracy convention (top-1 %, from the error where the paper
    prints that), and how resfam's counts differ from them: GMACs at the input the paper counts
    at (``paper_input``; analytic, where the row was measured at another)."""
    rep = spec.reported
    if rep is None:
        return
    top1 = rep.top1 if rep.top1 is not None else (round(100.0 - rep.error, 2) if rep.error is not None else None)
    row.update(paper_source=rep.source, paper_dataset=rep.dataset, paper_protocol=rep.protocol,
               paper_params_m=rep.params_m, paper_gmacs=rep.gflops, paper_top1=top1,
               paper_note=rep.note)
    if "params" in row:
        row["params_vs_paper_pct"] = _pct(row["params"] / 1e6, rep.params_m)
    paper_size = rep.gflops_at or spec.input_size
    if rep.gflops is not None:
        row["paper_input"] = paper_size
    if "gmacs" in row and rep.gflops is not None:
        gmacs = row["gmacs"] if size == paper_size else tally(spec, paper_size).macs / 1e9
        row["paper_input_gmacs"] = round(gmacs, 4)
        row["gmacs_vs_paper_pct"] = _pct(row["paper_input_gmacs"], rep.gflops)


def _count(row: dict, spec, built, size: int, batch: int, counter, flops: bool, acts: bool,
           params: bool) -> None:
    """Counts by ``counter``; a model of another library (no spec) is counted by fvcore."""
    if counter.name == "analytic" and spec is None:
        counter = default_counter()
    if counter.name == "analytic":
        counts, n_params, n_acts = counter.count_spec(spec, size, batch)
        if params and "params" not in row:
            row["params"] = row["params_trainable"] = n_params
    else:
        x = torch.randn(batch, built.in_chans, size, size)
        counts = counter.count(built.model, x) if flops else None
        n_acts = counter.activations(built.model, x) if acts else None
    if flops:
        row["gmacs"] = round(counts.macs / batch / 1e9, 4)
        row["other_mops"] = round(counts.other / batch / 1e6, 3)
        row["gflops"] = round(2 * (counts.macs + counts.other) / batch / 1e9, 4)
        row["unsupported"] = ";".join(f"{k}={v}" for k, v in sorted(counts.unsupported.items()))
    if acts:
        row["acts_m"] = round(n_acts / batch / 1e6, 3)
    row["counter"] = counter.name


def is_oom(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and ("out of memory" in str(error) or "can't allocate" in str(error)))


def engine_rows(row: dict, model, x: torch.Tensor, engines: list[str], warmup: int, runs: int,
                memory: bool) -> list[dict]:
    """One row per engine (``eager`` first, the baseline), every engine deployed on ``x``
    (:func:`resfam.deploy`, checked against eager) and all timed alternately in this process
    (:func:`timing.alternate_many`): each row's ``speed_vs_eager`` is the median over rounds of
    eager's time / the engine's in the same round; ``gflops_per_s`` = 2 (MACs + other ops) x
    batch / median latency, against the ceiling measured here (:mod:`resfam.engines.ceiling`).
    Memory (``--memory``) is torch's allocator's peak, so only for the engines torch runs."""
    from ..engines.ceiling import measured_ceiling
    from ..engines.deployment import deploy
    from ..engines.runners import one_export

    names = ["eager", *[e for e in engines if e != "eager"]]
    with one_export():  # one ONNX export for ONNX Runtime and OpenVINO
        deployed = [deploy(model, name, example=x) for name in names]
    fns = [(lambda d: (lambda: d.runner(x)(x)))(d) for d in deployed]
    timings = timing.alternate_many(fns, x.device, warmup, runs)
    ceiling = measured_ceiling(x.device)
    batch = x.shape[0]
    rows = []
    for name, d, t in zip(names, deployed, timings):
        r = {**row, "engine": name, **timing.timing_columns(t, batch), "batch": batch,
             "engine_error": float(f"{d.error:.3g}")}
        ratios = timing.round_ratios(timings[0], t)
        q1, q3 = timing.quartiles(ratios)
        r["speed_vs_eager"], r["speed_vs_eager_iqr"] = round(statistics.median(ratios), 3), round(q3 - q1, 3)
        if row.get("gflops") is not None:
            rate = row["gflops"] * batch / (t.median_ms / 1e3)
            r.update(gflops_per_s=round(rate, 1), ceiling_gflops=ceiling.gflops,
                     ceiling_pct=round(100 * rate / ceiling.gflops, 1))
        if memory and name in ("eager", "resfam", "compile"):
            r["peak_mem_mb"] = round(timing.peak_memory_mb(lambda: d.runner(x)(x), x.device), 2)
        rows.append(r)
    return rows


def _timed(row: dict, built, size: int, batch: int, device, dtype: str, channels_last: bool,
           latency: bool, throughput: bool, memory: bool, train: bool, warmup: int, runs: int,
           other=None, engines: Optional[list] = None) -> Optional[list]:
    """Latency / throughput / memory at ``batch``; an out-of-memory batch is halved and retried
    (timm's benchmark does the same), and the batch used goes into the row. With ``other``
    (a second built model: --vs) both are timed alternately and the other's numbers returned."""
    model = built.model.to(device=device, dtype=DTYPES[dtype])
    if other is not None:
        other = other.to(device=device, dtype=DTYPES[dtype])
    while True:
        try:
            x = torch.randn(batch, built.in_chans, size, size, device=device, dtype=DTYPES[dtype])
            if channels_last:
                model = model.to(memory_format=torch.channels_last)
                x = x.contiguous(memory_format=torch.channels_last)
            out, out_other = {}, {}
            if engines:
                return engine_rows(row, model, x, engines, warmup, runs, memory)
            if latency or throughput:
                if other is None:
                    t = timing.inference_latency(model, x, warmup, runs)
                else:
                    t, t_other = timing.alternate_latency(model, other, x, warmup, runs)
                    out_other = timing.timing_columns(t_other, batch)
                    ratios = timing.round_ratios(t_other, t)
                    q1, q3 = timing.quartiles(ratios)
                    out["speed_vs_ref"] = round(statistics.median(ratios), 3)
                    out["speed_vs_ref_iqr"] = round(q3 - q1, 3)
                out.update(timing.timing_columns(t, batch))
                if train:
                    tt = timing.train_latency(model, x, built.num_classes, max(1, warmup // 2), max(2, runs // 2))
                    out["train_throughput"] = round(tt.throughput(batch), 2)
            if memory:
                out["peak_mem_mb"] = round(timing.forward_memory_mb(model, x), 2)
                if train:
                    out["train_peak_mem_mb"] = round(timing.train_memory_mb(model, x, built.num_classes), 2)
            row.update(out, batch=batch)
            return out_other
        except Exception as e:  # noqa: BLE001
            if not is_oom(e) or batch == 1:
                raise
            batch //= 2
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()


def measure_rows(ref, *, params: bool = True, flops: bool = False, acts: bool = False,
                latency: bool = False, throughput: bool = False, memory: bool = False,
                train: bool = False, device: Optional[torch.device] = None, dtype: str = "float32",
                batch_size: int = 1, img_size: Union[int, str, None] = "common", channels_last: bool = False,
                warmup: int = 3, runs: int = 10, counter=None, vs: Optional[str] = None,
                engines: Optional[list] = None, _built=None) -> list[dict]:
    """The rows of one target: its own, and with ``vs`` ('timm' / 'torchvision') the same-name
    reference's right after it (timed alternately with it; ``speed_vs_ref``: the median over
    rounds of the reference's time / resfam's time in the same round,
    :func:`timing.round_ratios`). Errors become a row's ``error`` (the caller's sweep goes on).
    ``img_size``: a side, ``"common"`` (the default: 224 for every ImageNet-scale net, like with
    like; nets made for small images keep their 32 or 28) or ``"native"`` (each net's own side,
    as its pretrained config gives it: 160-480). ``_built``: the target already built (the
    reference of a ``vs`` pair, built once for its row and its timing). ``engines``: a row per
    inference engine instead of one (:func:`engine_rows`; implies latency)."""
    target = ref if isinstance(ref, Target) else Target("resfam", ref)
    device = device or timing.device_of(None)
    counter = counter if counter is not None else make_counter("analytic")
    row: dict = {"model": target.label, "library": target.library}
    rows = [row]
    built, other = _built, None
    timed = latency or throughput or memory or bool(engines)
    flops = flops or bool(engines)  # an engine's GFLOP/s needs the count
    try:
        spec = resolve(target)
        ref_target = None
        if spec is not None:
            row.update(model=spec.name, family=spec.family)
            if spec.name != target.label:  # a spec file's variant: what was asked for, kept
                row["target"] = target.label  # (--resume recognises the row by it)
            if vs and vs in spec.reference:
                ref_target = Target(vs, spec.name)
        needs_model = timed or spec is None or counter.name != "analytic"
        if needs_model:
            built = built or build_target(target, spec)
            row.setdefault("family", built.family)
            if params:
                row["params"], row["params_trainable"] = count_params(built.model)
        size = input_side(spec.input_size if spec is not None else built.input_size, img_size)
        if spec is not None and size % spec.input_multiple():  # (bat attention tiles its maps)
            if not isinstance(img_size, str) and img_size is not None:
                raise ArgumentError(f"{spec.name} runs on sides that are multiples of "
                                    f"{spec.input_multiple()} (its attention tiles every map in "
                                    f"blocks), not {size}: use --img-size {spec.fit_side(size)}")
            size = spec.fit_side(size)  # the common or native side, rounded up: the px column
        row["input"] = size
        if flops or acts or (params and not needs_model):
            _count(row, spec, built, size, batch_size, counter, flops, acts, params)
        if ref_target is not None:
            ref_built = None
            if timed:
                try:
                    ref_built = build_target(ref_target)
                except Exception:  # noqa: BLE001 - its own row says why
                    pass
            ref_row = measure_rows(ref_target, params=params, flops=flops, acts=acts, device=device,
                                   img_size=size, batch_size=batch_size, counter=counter,
                                   _built=ref_built)[0]
            ref_row["ref_for"] = row["model"]
            rows.append(ref_row)
            if ref_built is not None and not ref_row.get("error"):
                other = ref_built.model
        if timed:
            theirs = _timed(row, built, size, batch_size, device, dtype, channels_last,
                            latency, throughput, memory, train, warmup, runs, other, engines)
            if engines:
                if spec is not None:
                    paper_columns(row, spec, size)
                rows[0:1] = theirs
                return rows
            if other is not None:
                rows[1].update(theirs, batch=row["batch"])
        if spec is not None:
            paper_columns(row, spec, size)
    except Exception as e:  # noqa: BLE001 - a failing model marks its row; the sweep goes on
        row["error"] = f"{type(e).__name__}: {e}".splitlines()[0]
    finally:
        if built is not None and _built is None:  # free the model before the next is built (a
            del built, other  # collection costs ~0.2 s with timm imported: not after a count
            # from the spec, nor for a model the caller built and frees)
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return rows


def measure_one(ref, **options) -> dict:
    """One target's row (see :func:`measure_rows`; no ``vs`` reference)."""
    return measure_rows(ref, **{**options, "vs": None})[0]



def check_options(options: dict) -> None:
    """ArgumentError for an option :func:`measure_one` does not take, or a value it cannot use."""
    accepted = set(OPTION_MINIMA) | set(FLAGS) | {"dtype", "counter", "vs", "engines"}
    for key, value in options.items():
        if key not in accepted:
            hint = did_you_mean(key, sorted(accepted)) or f"accepted: {', '.join(sorted(accepted))}"
            raise ArgumentError(f"compare(): unknown option '{key}' ({hint})")
        if key in FLAGS and not isinstance(value, bool):
            raise ArgumentError(f"compare(): {key} must be True or False, got {short_repr(value)}")
        if key == "img_size" and (value is None or value in IMG_SIZES):
            continue
        if key == "batch_size" and isinstance(value, (list, tuple)) and value:  # several sizes
            for size in value:
                check_options({"batch_size": size})
            continue
        if key in OPTION_MINIMA:
            if isinstance(value, bool) or not isinstance(value, int) or \
                    not OPTION_MINIMA[key] <= value <= OPTION_MAXIMA[key]:
                named = f" or one of {', '.join(map(repr, IMG_SIZES))}" if key == "img_size" else ""
                raise ArgumentError(f"compare(): {key} must be an int >= {OPTION_MINIMA[key]} and <= "
                                    f"{OPTION_MAXIMA[key]}{named}, got {short_repr(value)}")
        if key == "dtype" and value not in DTYPES:
            raise ArgumentError(f"compare(): dtype must be one of {', '.join(DTYPES)}, got "
                                f"{short_repr(value)}")
        if key == "counter" and value not in COUNTERS:
            raise ArgumentError(f"compare(): counter must be one of {', '.join(COUNTERS)}, got "
                                f"{short_repr(value)}")
        if key == "vs" and value is not None and value not in ("timm", "torchvision"):
            raise ArgumentError(f"compare(): vs must be 'timm' or 'torchvision', got {short_repr(value)}")
        if key == "engines" and value is not None:
            check_engines(value)
    if options.get("engines") and options.get("vs"):
        raise ArgumentError("compare(): engines and vs time different things (engines of one "
                            "network, or two libraries' networks): use one")


def check_engines(value) -> list[str]:
    """``engines``: a list of engine names (:data:`resfam.engines.ENGINES` but ``auto``), each
    installed; ArgumentError naming the one that is not and the extra that brings it."""
    from ..engines.deployment import ENGINES, check_engine

    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
        raise ArgumentError(f"compare(): engines must be a list of engine names ("
                            f"{', '.join(e for e in ENGINES if e != 'auto')}), got {short_repr(value)}")
    for name in value:
        if name == "auto":
            raise ArgumentError("compare(): engines lists engines to time side by side; 'auto' "
                                "picks one of them: list them instead")
        check_engine(name)
    return list(value)


def measure_batches(target, *, device, counter, **options) -> list[dict]:
    """A target's rows at each of its batch sizes where it is timed (latency, throughput or
    memory depend on the batch; counts are per image, so measured once)."""
    sizes = batch_sizes(options.pop("batch_size", 1))
    timed = any(options.get(k) for k in ("latency", "throughput", "memory", "engines"))
    rows: list[dict] = []
    for size in sizes if timed else sizes[:1]:
        rows += measure_rows(target, device=device, counter=counter, batch_size=size, **options)
    return rows


def _task(args) -> list[dict]:
    """One target in a worker process (``--workers`` / ``--isolate``)."""
    target, options, device = args
    torch.set_num_threads(options.pop("_threads"))
    warnings.simplefilter("ignore")
    counter = make_counter(options.pop("counter", "analytic"))
    return measure_batches(target, device=torch.device(device), counter=counter, **options)


def run_targets(targets: list[Target], *, device: torch.device, options: dict,
                workers: int = 1, isolate: bool = False,
                on_rows: Optional[Callable[[list[dict]], None]] = None) -> list[dict]:
    """Measure ``targets`` in order, here or in worker processes (``workers`` at a time; with
    ``isolate`` every target in a fresh process), calling ``on_rows`` as each finishes."""
    def collect(results: Iterable[list[dict]]) -> list[dict]:
        rows: list[dict] = []
        for got in results:  # in order: the table does not depend on who finished first
            rows += got
            if on_rows:
                on_rows(got)
        return rows

    if workers == 1 and not isolate:
        counter = make_counter(options.get("counter", "analytic"))
        opts = {k: v for k, v in options.items() if k != "counter"}
        return collect(measure_batches(t, device=device, counter=counter, **opts) for t in targets)
    import multiprocessing as mp

    threads = max(1, torch.get_num_threads() // workers)
    jobs = [(t, {**options, "_threads": threads}, str(device)) for t in targets]
    with mp.get_context("spawn").Pool(workers, maxtasksperchild=1 if isolate else None) as pool:
        return collect(pool.imap(_task, jobs))


def compare(models: Optional[Iterable[str]] = None, *, family=None, progress: bool = False,
            on_row: Optional[Callable[[dict], None]] = None, device: Optional[str] = None,
            workers: int = 1, isolate: bool = False, **options) -> list[dict]:
    """Count and measure every selected build on one backend; see :func:`measure_one` for the
    options (``params``, ``flops``, ``acts``, ``latency``, ``throughput``, ``memory``, ``train``,
    ``dtype``, ``batch_size`` (one, or a list: a row per size for timed models), ``img_size``, ``channels_last``, ``warmup``, ``runs``,
    ``counter`` = analytic / fvcore / torch, ``vs`` = timm / torchvision, ``engines`` = a list
    of inference engines, a row each: :func:`engine_rows`).

    Models are built, measured and freed one at a time, so peak memory stays near that of the
    largest single model.
    """
    check_options(options)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise ArgumentError(f"workers must be a whole number from 1 to {MAX_WORKERS}, got "
                            f"{short_repr(workers)}")
    asked = None if models is None else model_list(models)
    if asked == [] and family is None:  # an empty list comes from a filter, not a wish for all
        raise ArgumentError("compare([]): no models; pass None (or nothing) for the whole zoo, or "
                            "name some")
    targets = select_targets(asked, family)
    dev = timing.device_of(device)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(targets), desc="resfam-compare", unit="model", file=sys.stderr,
                   dynamic_ncols=True)

    def done(got: list[dict]) -> None:
        if bar is not None:
            bar.set_postfix_str(os.path.basename(got[0]["model"]))
            bar.update(1)
        for row in got:
            if on_row:
                on_row(row)

    try:
        return run_targets(targets, device=dev, options=options, workers=workers, isolate=isolate,
                           on_rows=done)
    finally:
        if bar is not None:
            bar.close()


__all__ = ["compare", "measure_one", "measure_rows", "select", "select_targets", "environment", "LIBRARIES"]
