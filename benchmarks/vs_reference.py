"""resfam against timm / torchvision on the same network, with identical weights.

    python benchmarks/vs_reference.py                      # every variant timm builds too
    python benchmarks/vs_reference.py resnet50 res2net50_26w_4s --batch-sizes 1 8 --runs 7

For each variant: the reference (timm's, or torchvision's with --ref torchvision) and the resfam
build loaded with the reference's weights, both in eval mode under inference_mode, are timed
alternately in one process (A B B A ...) on the same input with the same threads, so drift in
the machine's speed hits both; outputs are checked equal first. On a shared 2-core machine one
process's ratio still moves by +-5-10% from one process to the next, even between the reference
and an identical copy of it (the ``control`` column): each variant is therefore measured in
``--processes`` fresh processes, and the table gives the median img/s and the median of the
per-process ratios, their spread (min-max), and the control's median ratio (reference vs a deep
copy of itself: what "no difference" measures as on this machine).
"""
from __future__ import annotations

import argparse
import copy
import multiprocessing as mp
import statistics

import torch

import resfam
from resfam.compare.timing import alternate_latency


def reference(name: str, source: str) -> torch.nn.Module:
    if source == "timm":
        import timm

        return timm.create_model(name)
    import torchvision

    return getattr(torchvision.models, name)(weights=None)


def alternate(a, b, x, runs: int, warmup: int) -> tuple[float, float]:
    """Median seconds per call of a and b, timed alternately (resfam-compare --vs does the same)."""
    ta, tb = alternate_latency(a, b, x, warmup, runs)
    return ta.median_ms / 1e3, tb.median_ms / 1e3


def measure(name: str, args) -> dict:
    """One fresh process's timings of ``name``: per batch size (reference s, resfam s, control
    ratio)."""
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    ref = reference(name, args.ref).eval().to(device)
    ours = resfam.build(name).eval().to(device)
    ours.load_state_dict(resfam.convert_state_dict(ref.state_dict(), name))
    twin = copy.deepcopy(ref) if args.control else None
    out = {}
    for batch in args.batch_sizes:
        x = torch.randn(batch, 3, args.img_size, args.img_size, device=device)
        with torch.inference_mode():  # same network: equal up to float rounding at its scale
            a, b = ours(x), ref(x)
            assert (a - b).abs().max() <= 1e-4 * b.abs().max().clamp_min(1.0), name
        t_ref, t_ours = alternate(ref, ours, x, args.runs, args.warmup)
        control = None
        if twin is not None:
            t_a, t_b = alternate(ref, twin, x, args.runs, args.warmup)
            control = t_a / t_b
        out[batch] = (t_ref, t_ours, control)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*")
    p.add_argument("--ref", choices=["timm", "torchvision"], default="timm")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--processes", type=int, default=3, help="fresh processes per variant")
    p.add_argument("--no-control", dest="control", action="store_false",
                   help="skip timing the reference against a copy of itself")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    args.threads = torch.get_num_threads()
    names = args.models or resfam.list_models(reference=args.ref)
    print(f"torch {torch.__version__}, {args.device}, {args.threads} threads, "
          f"{args.img_size}x{args.img_size}, eval + inference_mode, median of {args.runs} "
          f"alternating (ABBA) runs after {args.warmup} warm-up, in each of {args.processes} fresh "
          f"processes; reference: {args.ref}")
    print("| model | batch | reference img/s | resfam img/s | resfam / reference | spread | control |")
    print("|---|---|---|---|---|---|---|")
    ratios = []
    ctx = mp.get_context("spawn")
    with ctx.Pool(1, maxtasksperchild=1) as pool:  # one fresh process per measurement
        for name in names:
            runs = [pool.apply(measure, (name, args)) for _ in range(args.processes)]
            for batch in args.batch_sizes:
                per = [r[batch] for r in runs]
                spread = [t_ref / t_ours for t_ref, t_ours, _ in per]
                ratio = statistics.median(spread)
                t_ref = statistics.median(r[0] for r in per)
                t_ours = statistics.median(r[1] for r in per)
                control = (f"{statistics.median(r[2] for r in per):.3f}" if args.control else "-")
                ratios.append(ratio)
                print(f"| {name} | {batch} | {batch / t_ref:.2f} | {batch / t_ours:.2f} | {ratio:.3f} "
                      f"| {min(spread):.2f}-{max(spread):.2f} | {control} |", flush=True)
    print(f"\nmedian ratio {statistics.median(ratios):.3f}, min {min(ratios):.3f} over {len(ratios)} rows")


if __name__ == "__main__":
    main()
