"""resfam against timm / torchvision on the same network, with identical weights.

    python benchmarks/vs_reference.py                      # every variant timm builds too
    python benchmarks/vs_reference.py resnet50 res2net50_26w_4s --batch-sizes 1 8 --runs 7

For each variant: the reference (timm's, or torchvision's with --ref torchvision) and the resfam
build loaded with the reference's weights, both in eval mode under inference_mode, are timed
alternately in one process (A B A B ...) on the same input with the same threads, so drift in
the machine's speed hits both. Prints the median img/s of each and the ratio resfam / reference;
outputs are checked equal first.
"""
from __future__ import annotations

import argparse
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*")
    p.add_argument("--ref", choices=["timm", "torchvision"], default="timm")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    names = args.models or resfam.list_models(reference=args.ref)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {device}, {torch.get_num_threads()} threads, "
          f"{args.img_size}x{args.img_size}, eval + inference_mode, median of {args.runs} "
          f"alternating runs after {args.warmup} warm-up; reference: {args.ref}")
    print("| model | batch | reference img/s | resfam img/s | resfam / reference |")
    print("|---|---|---|---|---|")
    ratios = []
    for name in names:
        ref = reference(name, args.ref).eval().to(device)
        ours = resfam.build(name).eval().to(device)
        ours.load_state_dict(resfam.convert_state_dict(ref.state_dict(), name))
        for batch in args.batch_sizes:
            x = torch.randn(batch, 3, args.img_size, args.img_size, device=device)
            with torch.inference_mode():  # same network: equal up to float rounding at its scale
                a, b = ours(x), ref(x)
                assert (a - b).abs().max() <= 1e-4 * b.abs().max().clamp_min(1.0), name
            t_ref, t_ours = alternate(ref, ours, x, args.runs, args.warmup)
            ratio = t_ref / t_ours
            ratios.append(ratio)
            print(f"| {name} | {batch} | {batch / t_ref:.2f} | {batch / t_ours:.2f} | {ratio:.3f} |", flush=True)
        del ref, ours
    print(f"\nmedian ratio {statistics.median(ratios):.3f}, min {min(ratios):.3f} over {len(ratios)} rows")


if __name__ == "__main__":
    main()
