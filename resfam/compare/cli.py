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
from .sweep import DTYPES, OPTION_MINIMA, compare, environment, select
from .timing import usable_device


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line with close matches."""

    def error(self, message: str):  # noqa: D401
        hint = ""
        if "unrecognized arguments:" in message:
            bad = message.split(":", 1)[1].split()[0].split("=")[0]
            hint = did_you_mean(bad, [o for a in self._actions for o in a.option_strings])
        self.exit(2, f"{self.prog}: error: {message}{' (' + hint + ')' if hint else ''}\n")


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    parse.__name__ = f"int >= {low}"
    return parse


MAX_INPUT_BYTES = 2 * 2 ** 30  # one float32 input batch; activations are larger still
PLOT_SUFFIXES = (".png", ".pdf", ".svg")


def _check_writable(path: str, flag: str) -> None:
    """Open ``path`` for appending (and remove it again if it was not there) so that a bad
    --output / --plot fails in a second, not after the whole sweep."""
    if os.path.isdir(path):
        raise ResfamError(f"{flag} {path}: is a directory; give a file name")
    existed = os.path.exists(path)
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as e:
        raise ResfamError(f"{flag} {path}: cannot write there ({e.strerror})") from None
    if not existed:
        os.remove(path)


def plot_path(path: str) -> str:
    """The file --plot writes: a directory gets resfam-compare.png inside it, a name without a
    suffix gets .png (matplotlib would add it silently); other suffixes are refused."""
    if os.path.isdir(path):
        return os.path.join(path, "resfam-compare.png")
    root, suffix = os.path.splitext(path)
    if not suffix:
        return path + ".png"
    if suffix.lower() not in PLOT_SUFFIXES:
        raise ResfamError(f"--plot {path}: unsupported image type {suffix!r}; use one of "
                          f"{', '.join(PLOT_SUFFIXES)}")
    return path


def check_outputs(args) -> None:
    """``--output`` and ``--plot`` checked before any work: writable, a known image type, and
    matplotlib installed (``args.plot`` becomes the file that will be written)."""
    if args.output:
        _check_writable(args.output, "--output")
    if args.plot:
        args.plot = plot_path(args.plot)
        _check_writable(args.plot, "--plot")
        from .plot import require_matplotlib

        require_matplotlib()


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
    p.add_argument("--batch-size", type=_int_at_least(OPTION_MINIMA["batch_size"]), default=1)
    p.add_argument("--img-size", type=_int_at_least(OPTION_MINIMA["img_size"]), default=None, help="input side (default: each "
                   "model's native size, 224 or 32 for CIFAR nets)")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--threads", type=_int_at_least(1), default=None, help="torch CPU threads")
    p.add_argument("--warmup", type=_int_at_least(OPTION_MINIMA["warmup"]), default=3)
    p.add_argument("--runs", type=_int_at_least(OPTION_MINIMA["runs"]), default=10)
    p.add_argument("--format", default="table", choices=["table", "csv", "json", "markdown"])
    p.add_argument("--output", help="write the report to this file instead of stdout")
    p.add_argument("--sort", help="sort by a column key: --sort gmacs, or descending --sort=-throughput")
    p.add_argument("--plot", help="write a plot of GMACs vs latency (implies --flops --latency): "
                   ".png, .pdf or .svg; a folder gets resfam-compare.png")
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
    try:  # every usage error before the first model is built
        refs = select(args.models, args.family)
        device = usable_device(args.device)
        if args.batch_size * 3 * (args.img_size or 224) ** 2 * 4 > MAX_INPUT_BYTES:
            raise ResfamError(f"--batch-size {args.batch_size} --img-size {args.img_size or 224}: the "
                              f"input batch alone would take more than "
                              f"{MAX_INPUT_BYTES // 2 ** 30} GiB; use a smaller batch or input")
        check_outputs(args)
    except (ResfamError, RuntimeError) as e:
        print(f"resfam-compare: error: {e}", file=sys.stderr)
        return 2
    meta = environment(device, args.dtype, args.batch_size, args.img_size, args.channels_last)
    if args.format not in ("table", "markdown") or args.output:  # else the table carries it
        print("\n".join(report.header_lines(meta)), file=sys.stderr)
    rows: list[dict] = []
    interrupted = False
    try:
        compare(refs, device=args.device, progress=not args.no_progress and sys.stderr.isatty(),
                on_row=rows.append,
                params=args.params or not any(measured), flops=args.flops, acts=args.acts,
                latency=args.latency, throughput=args.throughput, memory=args.memory,
                train=args.train, dtype=args.dtype, batch_size=args.batch_size,
                img_size=args.img_size, channels_last=args.channels_last,
                warmup=args.warmup, runs=args.runs)
    except KeyboardInterrupt:  # keep what was measured: a long sweep is not thrown away
        interrupted = True
        print(f"\nresfam-compare: interrupted after {len(rows)} of {len(refs)} models; "
              "reporting those", file=sys.stderr)
    rows = report.sort_rows(rows, args.sort)
    text = report.render(rows, args.format, meta)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"resfam-compare: wrote {len(rows)} rows to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if args.plot and rows:
        from .plot import plot

        plot(rows, args.plot, meta)
        print(f"resfam-compare: wrote {args.plot}", file=sys.stderr)
    if interrupted:
        return 130
    failed = [r for r in rows if r.get("error")]
    if failed:
        print(f"resfam-compare: {len(failed)} of {len(rows)} models failed: "
              f"{', '.join(r['model'] for r in failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
