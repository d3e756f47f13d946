"""A measured ceiling: the best float32 rate several dense kernels reach in this process, on
this machine, with the threads set now.

A nominal peak (cores x clock x FMA units x SIMD lanes) assumes a clock and a datapath width the
host may not have (``/proc/cpuinfo``'s MHz is the base clock; an AVX-512 core may have 256- or
512-bit pipes). So the yardstick is measured: the best of a large matrix product (``torch.mm``,
the BLAS torch links), oneDNN 3x3 and 1x1 convolutions in channels_last with packed weights,
each timed ``runs`` times after a warm-up, best time kept. A network that beats this figure
shows the ceiling is too low (a kernel family it misses), and the report says so.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Ceiling:
    gflops: float       # the best of the kernels, GFLOP/s
    kernel: str         # which one reached it
    threads: int
    rates: tuple        # (kernel, GFLOP/s) for each kernel timed

    def describe(self) -> str:
        return (f"{self.gflops:.0f} GFLOP/s fp32 ({self.kernel}; best of "
                f"{', '.join(f'{k} {r:.0f}' for k, r in self.rates)}; {self.threads} threads)")


def _best_seconds(fn, runs: int) -> float:
    fn()
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _kernels(device: torch.device):
    """(name, FLOPs, function) for each kernel measured."""
    n = 2048
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    yield f"mm {n}^3", 2 * n ** 3, lambda: torch.mm(a, b)
    for name, (batch, cin, cout, k, side) in {"conv3x3 256ch 28^2": (8, 256, 256, 3, 28),
                                              "conv1x1 1024->256 14^2": (8, 1024, 256, 1, 14)}.items():
        x = torch.randn(batch, cin, side, side, device=device).contiguous(memory_format=torch.channels_last)
        conv = torch.nn.Conv2d(cin, cout, k, padding=k // 2, bias=False).to(device).eval()
        flops = 2 * batch * cout * cin * k * k * side * side
        if device.type == "cpu":
            from ..network.onednn import PackedConv2d, available

            if available():
                conv = PackedConv2d(conv)
        yield name, flops, (lambda c, t: (lambda: c(t)))(conv, x)


@functools.lru_cache(maxsize=None)
def _measure(device: str, threads: int, runs: int) -> Ceiling:
    dev = torch.device(device)
    rates = []
    with torch.inference_mode():
        for name, flops, fn in _kernels(dev):
            if dev.type == "cuda":
                def fn_synced(f=fn):
                    f()
                    torch.cuda.synchronize(dev)
                seconds = _best_seconds(fn_synced, runs)
            else:
                seconds = _best_seconds(fn, runs)
            rates.append((name, round(flops / seconds / 1e9, 1)))
    kernel, best = max(rates, key=lambda r: r[1])
    return Ceiling(best, kernel, threads, tuple(rates))


def measured_ceiling(device: torch.device | str = "cpu", runs: int = 5) -> Ceiling:
    """The ceiling for ``device`` with ``torch.get_num_threads()`` threads, measured once per
    process (about a second on a 2-core CPU)."""
    return _measure(str(torch.device(device)), torch.get_num_threads(), runs)
