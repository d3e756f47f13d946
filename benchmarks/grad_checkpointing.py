"""Activation memory of one training step with and without gradient checkpointing.

    python benchmarks/grad_checkpointing.py [model ...]

Peak memory is what torch's allocator held (CUDA: max_memory_allocated; CPU: the profiler's
memory events, see resfam/comparison/timing.py), batch 8 at 224 unless told otherwise.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import resfam
from resfam.comparison.timing import train_memory_mb, train_step_fn


def main() -> None:
    os.environ.setdefault("KINETO_LOG_LEVEL", "5")
    p = argparse.ArgumentParser()
    p.add_argument("models", nargs="*", default=["resnet50", "res2net50_26w_4s", "iresnet50"])
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--img-size", type=int, default=224)
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"torch {torch.__version__}, {device}, {torch.get_num_threads()} threads, "
          f"batch {args.batch_size} x 3 x {args.img_size}^2, one SGD step")
    print("| model | peak MiB | with checkpointing MiB | ratio | step s (median of 3) | with checkpointing s |")
    print("|---|---|---|---|---|---|")
    x = torch.randn(args.batch_size, 3, args.img_size, args.img_size, device=device)
    for name in args.models:
        row = []
        for ckpt in (False, True):
            model = resfam.build(name).to(device)
            model.set_grad_checkpointing(ckpt)
            row.append(train_memory_mb(model, x, model.num_classes))
            step = train_step_fn(model, x, model.num_classes)
            step()
            times = []
            for _ in range(3):
                start = time.perf_counter()
                step()
                times.append(time.perf_counter() - start)
            row.append(statistics.median(times))
        print(f"| {name} | {row[0]:.0f} | {row[2]:.0f} | {row[2] / row[0]:.2f} | {row[1]:.2f} | {row[3]:.2f} |")


if __name__ == "__main__":
    main()
