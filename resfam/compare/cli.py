"""``resfam-compare``: the command-line face of :func:`resfam.compare`.

Exit codes: 0 all rows measured; 1 some row failed (its ``error`` column says why);
2 a usage error (unknown flag, model or family), printed as one line without a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

from ..errors import ResfamError, did_you_mean
from . import report
from .sweep import DTYPES, compare, environment, select
from .timing import device_of


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line with close matches."""

    def error(self, message: str):  # noqa: D401
        hint = ""
        if "unrecognized arguments:" in message:
            bad = message.split(":", 1)[1].split()[0].split("=")[0]
            hint = did_you_mean(bad, [o for a in self._actions for o in a.option_strings])
        self.exit(2, f"resfam-compare: error: {message}{' (' + hint + ')' if hint else ''}\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="resfam-compare", allow_abbrev=False, description="Count and measure ResNet-family builds side "
                "by side on one backend, beside the figures their papers report.")
    p.add_argument("models", nargs="*", help="names, fnmatch patterns ('res2net*') or spec files; "
                   "none: the whole zoo")
    p.add_argument("--family", action="append", help="add every variant of a family (repeatable)")
    p.add_argument("--params", action="store_true", help="parameters (always on when nothing else is)")
    p.add_argument("--flops", action="store_true", help="GMACs and other ops (fvcore)")
    p.add_argument("--acts", action="store_true", help="activations (fvcore)")
    p.add_argument("--latency", action="store_true", help="inference latency, median and IQR")
    p.add_argument("--throughput", action="store_true", help="images/s at the batch size")
    p.add_argument("--memory", action="store_true", help="peak memory of one forward")
    p.add_argument("--train", action="store_true", help="also a training step (with --throughput "
                   "/ --latency / --memory)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: cuda if present)")
    p.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--img-size", type=int, default=None, help="input side (default: each "
                   "model's native size, 224 or 32 for CIFAR nets)")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--format", default="table", choices=["table", "csv", "json", "markdown"])
    p.add_argument("--output", help="write the report to this file instead of stdout")
    p.add_argument("--sort", help="sort by a column key: --sort gmacs, or descending --sort=-throughput")
    p.add_argument("--plot", help="write a PNG of GMACs vs latency (implies --flops --latency)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the CPU memory profiler is chatty
    args = parser().parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.plot:
        args.flops = args.latency = True
    if args.sort and args.sort.lstrip("-") not in report.FIELDS:
        hint = did_you_mean(args.sort.lstrip("-"), report.FIELDS) or f"one of: {', '.join(report.FIELDS)}"
        print(f"resfam-compare: error: unknown sort column '{args.sort}' ({hint})", file=sys.stderr)
        return 2
    measured = (args.flops, args.acts, args.latency, args.throughput, args.memory)
    try:
        refs = select(args.models, args.family)
        device = device_of(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ResfamError(f"--device {args.device}: CUDA is not available on this machine")
    except (ResfamError, RuntimeError) as e:
        print(f"resfam-compare: error: {e}", file=sys.stderr)
        return 2
    meta = environment(device, args.dtype, args.batch_size, args.img_size, args.channels_last)
    if args.format not in ("table", "markdown") or args.output:  # else the table carries it
        print("\n".join(report.header_lines(meta)), file=sys.stderr)
    rows = compare(refs, device=args.device, progress=not args.no_progress and sys.stderr.isatty(),
                   params=args.params or not any(measured), flops=args.flops, acts=args.acts,
                   latency=args.latency, throughput=args.throughput, memory=args.memory,
                   train=args.train, dtype=args.dtype, batch_size=args.batch_size,
                   img_size=args.img_size, channels_last=args.channels_last,
                   warmup=args.warmup, runs=args.runs)
    rows = report.sort_rows(rows, args.sort)
    text = report.render(rows, args.format, meta)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"resfam-compare: wrote {len(rows)} rows to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if args.plot:
        from .plot import plot

        try:
            plot(rows, args.plot, meta)
        except ResfamError as e:
            print(f"resfam-compare: error: {e}", file=sys.stderr)
            return 2
        print(f"resfam-compare: wrote {args.plot}", file=sys.stderr)
    failed = [r for r in rows if r.get("error")]
    if failed:
        print(f"resfam-compare: {len(failed)} of {len(rows)} models failed: "
              f"{', '.join(r['model'] for r in failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
