"""Build time: resfam.build against timm.create_model for every variant timm builds too.

    python benchmarks/build_time.py [model ...] [--repeats 3]

Median wall time of constructing the model (random init included) after one warm-up build of
each, alternating A B A B; spec parsing is cached after the first load, whose cost is printed
separately (the registry's first load of all bundled YAML files).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    start = time.perf_counter()
    import resfam

    import_s = time.perf_counter() - start
    start = time.perf_counter()
    resfam.list_models()
    [resfam.get_spec(n) for n in resfam.list_models()]
    first_load = time.perf_counter() - start
    import timm

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; import resfam {import_s:.2f} s; "
          f"first load + validation of all {len(resfam.list_models())} specs {first_load * 1000:.0f} ms")
    print("| model | timm ms | resfam ms | resfam / timm |\n|---|---|---|---|")
    ratios = []
    for name in args.models or resfam.list_models(reference="timm"):
        timm.create_model(name), resfam.build(name)
        ta, tb = [], []
        for _ in range(args.repeats):
            for fn, acc in ((lambda: timm.create_model(name), ta), (lambda: resfam.build(name), tb)):
                start = time.perf_counter()
                fn()
                acc.append(time.perf_counter() - start)
        a, b = statistics.median(ta), statistics.median(tb)
        ratios.append(b / a)
        print(f"| {name} | {a * 1000:.0f} | {b * 1000:.0f} | {b / a:.2f} |", flush=True)
    print(f"\nmedian resfam/timm {statistics.median(ratios):.2f}, max {max(ratios):.2f}")


if __name__ == "__main__":
    main()
