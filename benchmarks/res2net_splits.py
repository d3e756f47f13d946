"""Does running a Res2Net 'stage' block's independent splits as one grouped conv pay?

    python benchmarks/res2net_splits.py

Times, per split shape of res2net50_26w_4s's stage blocks, the (scale - 1) separate 3x3 convs
that timm and resfam run against one grouped conv over the same channels (weights
concatenated), batch 1; then prints where a res2net50_26w_4s forward spends its time
(torch.profiler, top ops by self CPU time).
"""
from __future__ import annotations

import os
import time

import torch
import torch.nn.functional as F

import resfam


def per_call_us(fn, n=100) -> float:
    with torch.inference_mode():
        for _ in range(10):
            fn()
        start = time.perf_counter()
        for _ in range(n):
            fn()
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    os.environ.setdefault("KINETO_LOG_LEVEL", "5")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 1")
    print("| split width | input side | stride | 3 separate convs us | one grouped conv us |\n|---|---|---|---|---|")
    for width, side, stride in [(26, 56, 1), (52, 56, 2), (104, 28, 2), (208, 14, 2)]:
        convs = [torch.nn.Conv2d(width, width, 3, stride, 1, bias=False).eval() for _ in range(3)]
        x = torch.randn(1, 4 * width, side, side)
        parts = torch.split(x, width, 1)
        weight = torch.cat([c.weight for c in convs], 0)
        separate = per_call_us(lambda: [c(p) for c, p in zip(convs, parts)])
        grouped = per_call_us(lambda: F.conv2d(x[:, :3 * width], weight, None, stride, 1, 1, 3))
        print(f"| {width} | {side} | {stride} | {separate:.0f} | {grouped:.0f} |")
    from torch.profiler import ProfilerActivity, profile

    model = resfam.build("res2net50_26w_4s").eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        for _ in range(3):
            model(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(5):
                model(x)
    print("\nres2net50_26w_4s, batch 1, 224, 5 forwards:")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))


if __name__ == "__main__":
    main()
