"""Where a gap against timm comes from: one submodule of resfam's net and of timm's, op by op.

    python benchmarks/op_profile.py skresnext50_32x4d layer1.1 --batch 8
    python benchmarks/op_profile.py resnest50d layer2 --batch 1 --threads 2

Both nets are built with the same weights (resfam's converted from timm's state dict); the
submodule's input is what timm's net feeds it for one random image batch. The two submodules are
then profiled alternately (A B, B A, ...; ``--rounds`` profiles of ``--iters`` forwards each, eval
mode, inference_mode) and the torch profiler's self CPU time is summed per aten op and input
shapes. The table lists the ops with the largest time, each with both libraries' total and call
count; the same ops and counts with different times point at memory (a tensor kept alive longer,
a copy), different ops at different work.
"""
from __future__ import annotations

import argparse
import collections
import os
import sys

import timm
import torch
from torch.profiler import ProfilerActivity, profile

import resfam


def profiled(module, x, iters: int) -> tuple[collections.Counter, collections.Counter]:
    """Self CPU µs and calls per (op, input shapes) for ``iters`` forwards of ``module``."""
    time, calls = collections.Counter(), collections.Counter()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # the profiler's C++ side logs each start and stop to stderr
    try:
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            for _ in range(iters):
                module(x)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    for e in prof.key_averages(group_by_input_shape=True):
        key = (e.key, str(e.input_shapes))
        time[key] += e.self_cpu_time_total
        calls[key] += e.count
    return time, calls


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="a name both timm and resfam build")
    p.add_argument("path", help="a submodule, named as in timm's net (layer1, layer1.1.conv2 ...)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--iters", type=int, default=2)
    p.add_argument("--top", type=int, default=15)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    ref = timm.create_model(args.model).eval()
    ours = resfam.build(args.model).eval()
    ours.load_state_dict(resfam.convert_state_dict(ref.state_dict(), args.model))
    try:
        mods = (ref.get_submodule(args.path), ours.get_submodule(args.path))
    except AttributeError as e:
        sys.exit(f"op_profile.py: {e}")
    seen = {}
    hook = mods[0].register_forward_pre_hook(lambda m, a: seen.setdefault("x", a[0].clone()))
    with torch.inference_mode():
        ref(torch.randn(args.batch, 3, args.img_size, args.img_size))
        hook.remove()
        x = seen["x"]
        for m in mods:  # warm-up: oneDNN builds its kernels on the first call
            m(x)
            m(x)
        time = [collections.Counter(), collections.Counter()]
        calls = [collections.Counter(), collections.Counter()]
        for r in range(args.rounds):
            for k in ((0, 1) if r % 2 == 0 else (1, 0)):
                t, c = profiled(mods[k], x, args.iters)
                time[k].update(t)
                calls[k].update(c)
    n = args.rounds * args.iters
    print(f"torch {torch.__version__}, {args.threads} threads, {args.model} {args.path}, batch "
          f"{args.batch}, input {tuple(x.shape)}; self CPU ms over {n} forwards of each")
    print("| aten op | input shapes | timm ms | resfam ms | timm calls | resfam calls |")
    print("|---|---|---|---|---|---|")
    keys = sorted(set(time[0]) | set(time[1]), key=lambda k: -(time[0][k] + time[1][k]))
    for key in keys[:args.top]:
        print(f"| {key[0]} | {key[1][:70]} | {time[0][key] / 1e3:.1f} | {time[1][key] / 1e3:.1f} "
              f"| {calls[0][key]} | {calls[1][key]} |")
    print(f"| all ops | | {sum(time[0].values()) / 1e3:.1f} | {sum(time[1].values()) / 1e3:.1f} | | |")


if __name__ == "__main__":
    main()
