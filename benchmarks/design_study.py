"""The design-space study of docs/design_spaces.md, produced whole by one command per part.

    python benchmarks/design_study.py nds       # NDS Fig. 6's question: Vanilla vs ResNet
    python benchmarks/design_study.py families  # ResNeXt vs Res2Net vs iResNet, same band

Each part samples ``--models`` designs per space into one complexity band (analytic GMACs at
``--img-size``), trains every design on an offline data set under one recipe (resfam-space
train, one thread), and compares the spaces (normalized EDFs over ``--bins`` bins, KS tests,
random search, bootstrap of the best depth). The study folder keeps every run (``--resume``
continues it); the tables and the figure are written to ``docs/design_spaces/<part>.md`` and
``.png``, with the wall time and the recipe.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from resfam.space.cli import main

DOCS = Path(__file__).resolve().parents[1] / "docs" / "design_spaces"
PARTS = {"nds": ["vanilla", "resnet"], "families": ["resnext", "res2net", "iresnet"]}


def run(argv: list[str]) -> None:
    print("$ resfam-space " + " ".join(argv), flush=True)
    code = main(argv)
    if code:
        sys.exit(code)


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("part", choices=sorted(PARTS))
    p.add_argument("--models", type=int, default=100)
    p.add_argument("--gmacs", default="0.002,0.004")
    p.add_argument("--img-size", type=int, default=16)
    p.add_argument("--data", default="digits")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--bins", type=int, default=10)
    p.add_argument("--out", default=None, help="study folder (default: design-study-<part>)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted study")
    p.add_argument("--docs", default=str(DOCS), help="where the tables and the figure go")
    return p.parse_args()


def main_study() -> None:
    args = parse()
    out = args.out or f"design-study-{args.part}"
    start = time.monotonic()
    if not args.resume:
        run(["sample", *PARTS[args.part], "-n", str(args.models), "--gmacs", args.gmacs,
             "--img-size", str(args.img_size), "--out", out])
    run(["train", out, "--data", args.data, "--epochs", str(args.epochs), "--batch-size",
         str(args.batch_size), "--threads", "1", *(["--resume"] if args.resume else [])])
    minutes = (time.monotonic() - start) / 60
    os.makedirs(args.docs, exist_ok=True)
    table, figure = os.path.join(args.docs, f"{args.part}.md"), os.path.join(args.docs, f"{args.part}.png")
    run(["compare", out, "--bins", str(args.bins), "--output", table, "--plot", figure])
    with open(table, "a", encoding="utf-8") as f:
        f.write(f"\n_{len(PARTS[args.part]) * args.models} models, {args.epochs} epochs each on "
                f"{args.data} at {args.img_size}x{args.img_size}, batch {args.batch_size}, one "
                f"thread: {minutes:.0f} min of sampling and training"
                f"{' (resumed: the last leg only)' if args.resume else ''}; "
                f"`python benchmarks/design_study.py {args.part}`_\n")


if __name__ == "__main__":
    main_study()
