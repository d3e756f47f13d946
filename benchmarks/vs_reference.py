"""resfam against timm / torchvision on the same network, with identical weights.

    python benchmarks/vs_reference.py                      # every variant timm builds too
    python benchmarks/vs_reference.py resnet50 res2net50_26w_4s --batch-sizes 1 8 --runs 9

For each variant: the reference (timm's, or torchvision's with --ref torchvision) and the resfam
build loaded with the reference's weights, both in eval mode under inference_mode, are timed
alternately (A B B A ...) on the same input with the same threads, so drift in the machine's
speed hits both; outputs are checked equal first. Each round's ratio is reference's time /
resfam's time in that round: a slow spell of the machine hits both runs of a round and cancels.
Each variant is measured in ``--processes`` fresh processes (odd ones build resfam's net first),
and the table gives the median img/s, the median of every round's ratio (all processes pooled),
the spread of the processes' own median ratios (min-max), and the control: the reference against
a deep copy of itself, measured the same way (what "no difference" measures as on this machine).

Threads: one by default on CPU. The ratio compares the same aten ops either way; on a 2-vCPU
machine a second thread waits whenever anything else runs, and one row's processes spread over
up to 0.23 with two threads against at most 0.09 with one (docs/performance.md). ``--threads 2``
measures that way.
"""
from __future__ import annotations

import argparse
import copy
import multiprocessing as mp
import statistics

import torch

import resfam
from resfam.comparison.timing import alternate_latency, round_ratios


def reference(name: str, source: str) -> torch.nn.Module:
    if source == "timm":
        import timm

        return timm.create_model(name)
    import torchvision

    return getattr(torchvision.models, name)(weights=None)


def measure(name: str, args, k: int) -> dict:
    """One fresh process's timings of ``name``: per batch size (reference s, resfam s, per-round
    reference / resfam time ratios, per-round reference / copy ratios (the control)). Process
    ``k`` builds resfam's net first when odd, the reference's when even, so that neither always
    gets the memory allocated first."""
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if k % 2:
        ours = resfam.build(name).eval().to(device)
        ref = reference(name, args.ref).eval().to(device)
    else:
        ref = reference(name, args.ref).eval().to(device)
        ours = resfam.build(name).eval().to(device)
    ours.load_state_dict(resfam.convert_state_dict(ref.state_dict(), name))
    twin = copy.deepcopy(ref) if args.control else None
    out = {}
    side = resfam.get_spec(name).fit_side(args.img_size)  # (bat_resnext26ts: 256)
    for batch in args.batch_sizes:
        x = torch.randn(batch, 3, side, side, device=device)
        with torch.inference_mode():  # same network: equal up to float rounding at its scale
            a, b = ours(x), ref(x)
            assert (a - b).abs().max() <= 1e-4 * b.abs().max().clamp_min(1.0), name
        t_ref, t_ours = alternate_latency(ref, ours, x, args.warmup, args.runs)
        control = (round_ratios(*alternate_latency(ref, twin, x, args.warmup, args.runs))
                   if twin is not None else [])
        out[batch] = (t_ref.median_ms / 1e3, t_ours.median_ms / 1e3, round_ratios(t_ref, t_ours),
                      control)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*")
    p.add_argument("--ref", choices=["timm", "torchvision"], default="timm")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--runs", type=int, default=9)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--processes", type=int, default=3, help="fresh processes per variant")
    p.add_argument("--no-control", dest="control", action="store_false",
                   help="skip timing the reference against a copy of itself")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: 1 on CPU, see above; torch's default on CUDA)")
    args = p.parse_args()
    if args.threads is None:
        args.threads = 1 if args.device == "cpu" else torch.get_num_threads()
    names = args.models or resfam.list_models(reference=args.ref)
    print(f"torch {torch.__version__}, {args.device}, {args.threads} threads, "
          f"{args.img_size}x{args.img_size} (or the next side a net takes), eval + inference_mode, {args.runs} alternating (ABBA) "
          f"rounds after {args.warmup} warm-up, in each of {args.processes} fresh processes; ratio: "
          f"median of every round's time ratio; reference: {args.ref}")
    print("| model | batch | reference img/s | resfam img/s | resfam / reference | spread | control |")
    print("|---|---|---|---|---|---|---|")
    ratios = []
    ctx = mp.get_context("spawn")
    with ctx.Pool(1, maxtasksperchild=1) as pool:  # one fresh process per measurement
        for name in names:
            runs = [pool.apply(measure, (name, args, k)) for k in range(args.processes)]
            for batch in args.batch_sizes:
                per = [r[batch] for r in runs]
                spread = [statistics.median(r[2]) for r in per]  # each process's own ratio
                ratio = statistics.median(q for r in per for q in r[2])  # every round, pooled
                t_ref = statistics.median(r[0] for r in per)
                t_ours = statistics.median(r[1] for r in per)
                control = (f"{statistics.median(q for r in per for q in r[3]):.3f}"
                           if args.control else "-")
                ratios.append(ratio)
                print(f"| {name} | {batch} | {batch / t_ref:.2f} | {batch / t_ours:.2f} | {ratio:.3f} "
                      f"| {min(spread):.2f}-{max(spread):.2f} | {control} |", flush=True)
    print(f"\nmedian ratio {statistics.median(ratios):.3f}, min {min(ratios):.3f} over {len(ratios)} rows")


if __name__ == "__main__":
    main()
