"""Latency, throughput and peak memory, measured the same way for every build on one backend.

- Latency: per-batch wall time of ``model(x)`` in ``torch.inference_mode()`` on an eval model,
  ``warmup`` untimed runs, then ``runs`` timed ones (Python's garbage collector paused, as
  :mod:`timeit` does); median and interquartile range. On CUDA every timed run is bracketed by
  ``torch.cuda.synchronize()``.
- Throughput: ``batch / median latency`` (images/s); with ``train=True`` also one training step
  (forward + cross-entropy + backward + SGD step) per timed run, on a copy in train mode.
- Peak memory, CUDA: ``torch.cuda.max_memory_allocated`` above the allocation before the run.
  CPU: the torch profiler with ``profile_memory=True`` records every allocation (each op's own,
  ``self_cpu_memory_usage``) and free (``[memory]`` events) of torch's CPU allocator; the peak
  of their running sum in time order is what torch itself held at most during the run, not
  the process's RSS. The profiler's own C++ log lines (``profiler_start`` / ``profiler_stop``,
  ``Memory block of unknown size``) are silenced.
- A timing is flagged ``noisy`` where its IQR exceeds :data:`NOISY_IQR` of its median (a loaded
  machine, frequency scaling): compare such rows only after re-measuring.
"""
from __future__ import annotations

import contextlib
import copy
import gc
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
from torch import nn


@dataclass
class Timing:
    median_ms: float
    iqr_ms: float
    min_ms: float
    runs: int
    samples: tuple[float, ...] = field(default=(), repr=False)  # each timed run, ms, in order

    def throughput(self, batch: int) -> float:
        return batch / (self.median_ms / 1000.0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _ms(fn: Callable[[], object], device: torch.device) -> float:
    """One timed call, in ms, synchronised before and after on CUDA."""
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return (time.perf_counter() - start) * 1000.0


@contextlib.contextmanager
def _gc_paused():
    """Python's garbage collector off while timed runs go (as :mod:`timeit` does); whatever the
    caller had is restored."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def time_fn(fn: Callable[[], object], device: torch.device, warmup: int, runs: int) -> Timing:
    for _ in range(warmup):
        fn()
    with _gc_paused():
        return _summary([_ms(fn, device) for _ in range(runs)])


NOISY_IQR = 0.10  # IQR / median above which a timing is flagged


def timing_columns(t: Timing, batch: int) -> dict:
    """A timing's row columns; ``noisy`` where the IQR is large against the median."""
    q1, q3 = quartiles(t.samples) if t.samples else (t.median_ms, t.median_ms)
    return {"latency_ms": round(t.median_ms, 3), "latency_iqr_ms": round(t.iqr_ms, 3),
            "latency_q1_ms": round(q1, 3), "latency_q3_ms": round(q3, 3),
            "throughput": round(t.throughput(batch), 2),
            "noisy": t.iqr_ms > NOISY_IQR * t.median_ms}


def alternate_latency(a: nn.Module, b: nn.Module, x: torch.Tensor, warmup: int = 3,
                      runs: int = 10) -> tuple[Timing, Timing]:
    """Two models timed alternately on one input in one process (:func:`alternate_many`), eval
    mode. Run ``i`` of ``a`` and of ``b`` (``samples[i]``) are neighbours in time:
    :func:`round_ratios` compares them pair by pair."""
    a.eval()
    b.eval()
    ta, tb = alternate_many([lambda: a(x), lambda: b(x)], x.device, warmup, runs)
    return ta, tb


def alternate_many(fns: list[Callable[[], object]], device: torch.device, warmup: int = 3,
                   runs: int = 10) -> list[Timing]:
    """Several functions timed alternately in one process, so that drift in the machine's speed
    hits all of them, in forward then reverse order each round (a b c, c b a, ...: ABBA for
    two), so that none always runs right after another; under inference_mode, Python's garbage
    collector paused while timing (as :mod:`timeit` does)."""
    times: list[list[float]] = [[] for _ in fns]
    order = list(range(len(fns)))
    with torch.inference_mode():
        for _ in range(warmup):
            for fn in fns:
                fn()
        with _gc_paused():
            for i in range(runs):
                for k in (order if i % 2 == 0 else order[::-1]):
                    times[k].append(_ms(fns[k], device))
    return [_summary(t) for t in times]


def round_ratios(a: Timing, b: Timing) -> list[float]:
    """``a``'s time / ``b``'s time in each round of :func:`alternate_latency` (> 1 where b is
    faster). A slow spell of the machine hits both runs of a round, so it cancels in their ratio:
    the median of these moves less between processes than the ratio of the two medians."""
    return [ta / tb for ta, tb in zip(a.samples, b.samples, strict=True)]


def quartiles(values) -> tuple[float, float]:
    """First and third quartile (statistics.quantiles' default method); one value is both."""
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return q[0], q[2]


def _summary(times: list[float]) -> Timing:
    q1, q3 = quartiles(times)
    return Timing(statistics.median(times), q3 - q1, min(times), len(times), tuple(times))


def inference_latency(model: nn.Module, x: torch.Tensor, warmup: int = 3, runs: int = 10) -> Timing:
    model.eval()
    with torch.inference_mode():
        return time_fn(lambda: model(x), x.device, warmup, runs)


def train_step_fn(model: nn.Module, x: torch.Tensor, num_classes: int) -> Callable[[], None]:
    """One SGD step on a train-mode copy (the caller's model is not touched)."""
    model = copy.deepcopy(model).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    target = torch.arange(x.shape[0], device=x.device) % max(num_classes, 1)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        out = model(x)
        loss = nn.functional.cross_entropy(out, target) if num_classes > 0 else out.float().mean()
        loss.backward()
        opt.step()

    return step


def train_latency(model: nn.Module, x: torch.Tensor, num_classes: int, warmup: int = 1,
                  runs: int = 5) -> Timing:
    return time_fn(train_step_fn(model, x, num_classes), x.device, warmup, runs)


def peak_memory_mb(fn: Callable[[], object], device: torch.device) -> float:
    """Peak bytes torch allocated while ``fn`` ran, in MiB (see the module docstring)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    # each op's own allocations (+) and the allocator's frees ("[memory]" events, -), in time order
    deltas = sorted(((e.time_range.start, e.self_cpu_memory_usage) for e in prof.events()
                     if e.self_cpu_memory_usage), key=lambda t: t[0])
    running = peak = 0
    for _, delta in deltas:
        running += delta
        peak = max(peak, running)
    return peak / 2**20


@contextlib.contextmanager
def _quiet_stderr():
    """File descriptor 2 to /dev/null while the profiler runs: its C++ side logs there."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def forward_memory_mb(model: nn.Module, x: torch.Tensor) -> float:
    model.eval()

    def run():
        with torch.inference_mode():
            model(x)

    return peak_memory_mb(run, x.device)


def train_memory_mb(model: nn.Module, x: torch.Tensor, num_classes: int) -> float:
    step = train_step_fn(model, x, num_classes)
    step()  # the optimizer state exists before the measured step, as in training
    return peak_memory_mb(step, x.device)


DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")


def device_of(name: Optional[str]) -> torch.device:
    """``auto`` (CUDA if present), or a device that can run and time a model; others (``meta``,
    a misspelt name) raise ResfamError."""
    from ..errors import ResfamError

    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ResfamError(f"--device {name!r} is not a device: use auto, cpu, cuda or cuda:N") from None
    if device.type not in DEVICE_TYPES:
        raise ResfamError(f"--device {name!r} cannot run a model to measure it: use auto, cpu, "
                          "cuda or cuda:N")
    return device


def usable_device(name: Optional[str]) -> torch.device:
    """:func:`device_of`, and a ResfamError where that device's backend is not on this machine."""
    from ..errors import ResfamError

    device = device_of(name)
    if device.type == "cpu":
        return device
    backend = torch.backends.mps if device.type == "mps" else getattr(torch, device.type, None)
    if backend is None or not backend.is_available():
        raise ResfamError(f"--device {name}: {device.type.upper()} is not available on this machine")
    return device
