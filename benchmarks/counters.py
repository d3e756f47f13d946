"""The three counters timed in one run: the analytic counter (from the spec, no model), fvcore
(build + TorchScript trace) and torch's FlopCounterMode (build + one dispatched forward).

    python benchmarks/counters.py                      # the zoo, and 1,000 generated specs
    python benchmarks/counters.py --designs 200 --sample 20

Two workloads, counted at each network's native input:
1. the bundled zoo (every variant);
2. a design-space sweep: ``--designs`` specs sampled from NDS's ResNeXt-A space (``resfam-space
   sample resnext_a``, :func:`resfam.space.sample`),
   written to one YAML file as ``resfam-compare designs.yaml`` would
   read it. The analytic counter counts all of them; fvcore and FlopCounterMode, which must build
   and run each network, count a random ``--sample`` of the same specs (their time per spec is
   printed, and the whole sweep's time extrapolated from it, marked as such).
Every count the slow counters make is checked equal to the analytic one first.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
import yaml

import resfam
from resfam.comparison.analytic import tally
from resfam.comparison.counting import FlopCounterModeCounter, FvcoreCounter
import resfam.space


def write_designs(n: int, seed: int, path: Path) -> list[str]:
    (drawn,) = resfam.space.sample("resnext_a", n, seed=seed)
    variants = {d.name: d.spec for d in drawn.designs}
    path.write_text(yaml.safe_dump({"variants": variants}, sort_keys=False))
    return [f"{path}:{name}" for name in variants]


def slow_count(counter, spec) -> tuple[float, int]:
    start = time.perf_counter()
    model = resfam.build(spec)
    x = torch.randn(1, model.in_chans, spec.input_size, spec.input_size)
    macs = counter.count(model, x).macs
    return time.perf_counter() - start, macs


def run(label: str, specs: list, sample: list) -> list[str]:
    start = time.perf_counter()
    analytic = {id(s): tally(s).macs for s in specs}
    t_analytic = time.perf_counter() - start
    lines = [f"| {label}: analytic, all {len(specs)} | {t_analytic:.3f} s | "
             f"{t_analytic / len(specs) * 1e3:.2f} ms |"]
    for counter in (FvcoreCounter(), FlopCounterModeCounter()):
        times = []
        for spec in sample:
            seconds, macs = slow_count(counter, spec)
            assert macs == analytic[id(spec)], (spec.name, counter.name, macs, analytic[id(spec)])
            times.append(seconds)
        per = statistics.mean(times)
        lines.append(f"| {label}: {counter.name}, {len(sample)} of them | {sum(times):.1f} s | "
                     f"{per * 1e3:.0f} ms (all {len(specs)}: ~{per * len(specs):.0f} s, extrapolated) |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--designs", type=int, default=1000)
    p.add_argument("--sample", type=int, default=25, help="specs the slow counters count")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    warnings.simplefilter("ignore")
    rng = random.Random(args.seed)
    zoo = [resfam.get_spec(n) for n in resfam.list_models()]
    with tempfile.TemporaryDirectory() as tmp:
        refs = write_designs(args.designs, args.seed, Path(tmp) / "designs.yaml")
        start = time.perf_counter()
        designs = [resfam.get_spec(r) for r in refs]
        t_resolve = time.perf_counter() - start
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, native inputs; "
          f"resolving the {len(designs)} design specs (YAML, extends, validation): {t_resolve:.2f} s")
    print("| workload: counter | time | per network |")
    print("|---|---|---|")
    for line in run("zoo", zoo, rng.sample(zoo, min(args.sample, len(zoo)))):
        print(line)
    for line in run("designs", designs, rng.sample(designs, min(args.sample, len(designs)))):
        print(line)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
