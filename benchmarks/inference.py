"""resfam's inference path against plain eager timm: img/s, achieved GFLOP/s, share of a ceiling
measured here.

    python benchmarks/inference.py                    # resnet50 and res2net50_26w_4s, batch 1 and 8
    python benchmarks/inference.py resnet50 --batch-sizes 8 --compile

Rows: eager timm; eager resfam; resfam.optimize_for_inference (weight standardisation done once,
BN folded, channels_last); the same with onednn=True (convolutions on oneDNN, weights packed,
ReLU and residual additions fused: resfam.deploy's 'resfam' engine on CPU); with --compile also
optimize_for_inference plus torch.compile (compile time printed). Achieved GFLOP/s counts 2 x
(conv + linear MACs) per image (fvcore), i.e. the useful arithmetic.

Ceiling: the best rate of several dense kernels measured in this process
(resfam.engines.ceiling), not a nominal peak: cores x "cpu MHz" x lanes x FMA units assumes a
clock and a datapath the host may not have (docs/performance.md). For engines beyond torch
(ONNX Runtime, OpenVINO) see benchmarks/engines.py.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

import resfam
from resfam.comparison.counting import FvcoreCounter
from resfam.engines.ceiling import measured_ceiling


def median_time(fn, x, runs, warmup) -> float:
    with torch.inference_mode():
        for _ in range(warmup):
            fn(x)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    import timm

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", default=["resnet50", "res2net50_26w_4s"])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--compile", action="store_true")
    args = p.parse_args()
    ceiling = measured_ceiling("cpu")
    peak = ceiling.gflops
    print(f"torch {torch.__version__}, cpu, {torch.get_num_threads()} threads; ceiling {ceiling.describe()}")
    print("| model | batch | variant | img/s | vs eager timm | GFLOP/s | % of ceiling |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models:
        ref = timm.create_model(name).eval()
        ours = resfam.build(name).eval()
        ours.load_state_dict(resfam.convert_state_dict(ref.state_dict(), name))
        macs = FvcoreCounter().count(ours, torch.randn(1, 3, 224, 224)).macs
        variants = [("eager timm", ref), ("eager resfam", ours),
                    ("resfam optimize_for_inference", resfam.optimize_for_inference(ours)),
                    ("+ onednn=True", resfam.optimize_for_inference(ours, onednn=True))]
        if args.compile:
            start = time.perf_counter()
            compiled = resfam.optimize_for_inference(ours, compile=True)
            with torch.inference_mode():
                compiled(torch.randn(args.batch_sizes[0], 3, 224, 224))
            variants.append((f"+ torch.compile ({time.perf_counter() - start:.0f} s to compile)", compiled))
        for batch in args.batch_sizes:
            x = torch.randn(batch, 3, 224, 224)
            with torch.inference_mode():
                expected = ref(x)
                for label, fn in variants[1:]:
                    torch.testing.assert_close(fn(x), expected, atol=1e-3, rtol=1e-3)
            base = None
            for label, fn in variants:
                t = median_time(fn, x, args.runs, args.warmup)
                ips = batch / t
                base = base or ips
                gflops = 2 * macs * batch / t / 1e9
                print(f"| {name} | {batch} | {label} | {ips:.2f} | {ips / base:.2f}x | {gflops:.0f} | "
                      f"{100 * gflops / peak:.0f}% |", flush=True)


if __name__ == "__main__":
    main()
