"""``resfam-compare``: the command-line face of :func:`resfam.compare`.

Exit codes: 0 all rows measured; 1 some row failed (its ``error`` column says why);
2 a usage error (unknown flag, model or family), printed as one line without a traceback.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from typing import Optional, Sequence

from .._version import __version__
from .. import distributed
from ..errors import ResfamError, did_you_mean, short_repr
from ..files import AppendLog, check_output, write_text_atomically
from ..network.preprocessing import MAX_INPUT_BYTES, input_bytes
from . import report
from .options import (COMMON_SIDE, COUNTERS, DTYPE_NAMES, IMG_SIZES, MAX_THREADS, MAX_WORKERS, OPTION_MAXIMA,
                      OPTION_MINIMA, batch_sizes)
from .targets import select_targets
from ..engines.names import ENGINE_NAMES, EXTRA, missing


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line with close matches, and --help shows defaults."""

    def add_argument(self, *args, **kwargs):
        """Every option's help ends with its default (not None, not a flag's False, not
        suppressed as --help's is) where the help does not state it already; argparse's
        ArgumentDefaultsHelpFormatter skips options without help text."""
        default, text = kwargs.get("default"), kwargs.get("help") or ""
        if args[0].startswith("-") and default is not None and default is not False \
                and argparse.SUPPRESS not in (default, text) and "default:" not in text:
            kwargs["help"] = f"{text} (default: %(default)s)".strip()
        return super().add_argument(*args, **kwargs)

    def error(self, message: str):  # noqa: D401
        hint = ""
        if "unrecognized arguments:" in message:
            bad = message.split(":", 1)[1].split()[0].split("=")[0]
            hint = did_you_mean(bad, [o for a in self._actions for o in a.option_strings])
        self.exit(2, f"{self.prog}: error: {message}{' (' + hint + ')' if hint else ''}\n")


def _int_at_least(low: int, high: Optional[int] = None):
    """An argparse type: a whole number >= ``low`` and, where given, <= ``high`` (a bound on the
    work a flag can ask for: ``--runs 1e9`` would run for ever without a word)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f">= {low}" if high is None else f">= {low} and <= {high}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {short_repr(value)}")
        return value

    parse.__name__ = f"int >= {low}"
    return parse


def _batch_sizes(text: str):
    """--batch-size: one size, or several comma-separated (``1,8,32``: a row per size)."""
    parse = _int_at_least(OPTION_MINIMA["batch_size"], OPTION_MAXIMA["batch_size"])
    sizes = [parse(part.strip()) for part in text.split(",")]
    if len(set(sizes)) != len(sizes):
        raise argparse.ArgumentTypeError(f"a batch size is repeated in {text!r}")
    return sizes[0] if len(sizes) == 1 else sizes


_batch_sizes.__name__ = "sizes"


def _img_size(text: str):
    """--img-size: 'common', 'native' or a side in pixels."""
    if text in IMG_SIZES:
        return text
    try:
        return _int_at_least(OPTION_MINIMA["img_size"], OPTION_MAXIMA["img_size"])(text)
    except argparse.ArgumentTypeError as e:
        raise argparse.ArgumentTypeError(f"{e}; or one of: {', '.join(IMG_SIZES)}") from None


_img_size.__name__ = "side"


def _engines(text: str) -> list[str]:
    """--engine: engine names, comma-separated, each known and installed (the extra that brings
    a missing one is named)."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"no engine named; use some of {','.join(ENGINE_NAMES)}")
    for name in names:
        if name not in ENGINE_NAMES:
            hint = did_you_mean(name, ENGINE_NAMES) or f"use some of {','.join(ENGINE_NAMES)}"
            raise argparse.ArgumentTypeError(f"unknown engine {short_repr(name)} ({hint})")
        lacking = missing(name)
        if lacking:
            raise argparse.ArgumentTypeError(f"engine {name} needs {', '.join(lacking)}, not "
                                             f"installed: pip install \"resfam[{EXTRA}]\"")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"an engine is repeated in {text!r}")
    return names


_engines.__name__ = "engines"


PLOT_SUFFIXES = (".png", ".pdf", ".svg")


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
        check_output(args.output, "--output")
    if args.plot:
        args.plot = plot_path(args.plot)
        check_output(args.plot, "--plot")
        from .plot import require_matplotlib

        require_matplotlib()


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="resfam-compare", allow_abbrev=False, description="Count and measure ResNet-family builds, and "
                "other libraries' models, side by side on one backend, beside the figures their papers report.")
    p.add_argument("models", nargs="*", help="names, fnmatch patterns ('res2net*'), spec files "
                   "(every variant; 'file.yaml:name' or 'file.yaml:*'), timm:NAME, tv:NAME; none: the whole zoo")
    p.add_argument("--family", action="append", help="add every variant of a family (repeatable)")
    p.add_argument("--list", action="store_true", help="list the matching names and exit")
    p.add_argument("--version", action="version", version=f"resfam {__version__}")
    p.add_argument("--params", action="store_true", help="parameters (always counted; kept for "
                   "scripts that pass it)")
    p.add_argument("--flops", action="store_true", help="GMACs and other ops")
    p.add_argument("--acts", action="store_true", help="activations (conv and linear outputs)")
    p.add_argument("--counter", default="analytic", choices=COUNTERS, help="analytic: from the spec, no "
                   "model built (default; other libraries' models fall back to fvcore); fvcore; "
                   "torch: FlopCounterMode")
    p.add_argument("--latency", action="store_true", help="inference latency, median and IQR")
    p.add_argument("--throughput", action="store_true", help="images/s at the batch size")
    p.add_argument("--memory", action="store_true", help="peak memory of one forward")
    p.add_argument("--train", action="store_true", help="also a training step (with --throughput "
                   "/ --latency / --memory)")
    p.add_argument("--vs", choices=["timm", "torchvision"], help="after each resfam row, the "
                   "same-name model of that library, timed alternately with it (column 'vs ref')")
    p.add_argument("--engine", type=_engines, default=None, metavar="ENGINES",
                   help="a row per inference engine, comma-separated from "
                   f"{','.join(ENGINE_NAMES)}, timed alternately with eager (implies --flops "
                   "--latency; columns: ratio to eager, GFLOP/s and %% of a ceiling measured here)")
    p.add_argument("--paper", action="store_true", help="the papers' figures: params, GMACs, top-1, "
                   "dataset, protocol, notes")
    p.add_argument("--columns", help="the table's columns, comma-separated keys (csv / json carry all)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: cuda if present)")
    p.add_argument("--dtype", default="float32", choices=sorted(DTYPE_NAMES))
    p.add_argument("--batch-size", type=_batch_sizes, default=1, help="images per forward; several, "
                   "comma-separated (1,8,32), give a row per size for timed models")
    p.add_argument("--img-size", type=_img_size, default="common", help=f"input side: 'common' puts "
                   f"every ImageNet-scale net at {COMMON_SIDE} (like with like, the side the papers' "
                   "complexity tables use; nets for small images keep their 32 or 28), 'native' each "
                   "net at its own (its pretrained config's: 160-480), a number every net at that side")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--threads", type=_int_at_least(1, MAX_THREADS), default=None, help="torch CPU threads")
    p.add_argument("--warmup", type=_int_at_least(OPTION_MINIMA["warmup"], OPTION_MAXIMA["warmup"]), default=3)
    p.add_argument("--runs", type=_int_at_least(OPTION_MINIMA["runs"], OPTION_MAXIMA["runs"]), default=10)
    p.add_argument("--format", default=None, choices=report.OUTPUT_FORMATS, help="default: from --output's suffix "
                   "(.csv .json .jsonl .md .tex .html), else table")
    p.add_argument("--output", help="write the report to this file instead of stdout; a .jsonl file "
                   "gets each row as it is measured")
    p.add_argument("--resume", action="store_true", help="with --output x.jsonl: skip the models "
                   "already measured there, append the rest")
    p.add_argument("--sort", help="sort by a column key: --sort gmacs, descending --sort -throughput")
    p.add_argument("--plot", help="write a plot of GMACs vs latency (implies --flops --latency), and "
                   "beside it one of the papers' top-1 vs GMACs: .png, .pdf or .svg; a folder gets "
                   "resfam-compare.png")
    p.add_argument("--workers", type=_int_at_least(1, MAX_WORKERS), default=1, help="measure in N worker processes "
                   "(counting sweeps; timings contend for the same cores)")
    p.add_argument("--isolate", action="store_true", help="every model in a fresh process (clean "
                   "timings and memory)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")
    return p


def _argv(argv: Optional[Sequence[str]]) -> list[str]:
    """``--sort -params`` works as ``--sort=-params`` (argparse would take -params for a flag)."""
    args = list(sys.argv[1:] if argv is None else argv)
    for i, a in enumerate(args[:-1]):
        if a == "--sort" and args[i + 1].startswith("-") and not args[i + 1].startswith("--"):
            args[i:i + 2] = [f"--sort={args[i + 1]}"]
            break
    return args


def _check(args, meta_fields: list[str]) -> None:
    """Usage errors the parser cannot see, before any model is built."""
    if args.sort and args.sort.lstrip("-") not in meta_fields:
        hint = did_you_mean(args.sort.lstrip("-"), meta_fields) or f"one of: {', '.join(meta_fields)}"
        raise ResfamError(f"unknown sort column '{args.sort}' ({hint})")
    if args.columns:
        by_header = {h: k for k, h in report.HEADERS.items() if list(report.HEADERS.values()).count(h) == 1}
        args.columns = [by_header.get(c, c) if c not in meta_fields else c  # 'ms' as the table says
                        for c in (c.strip() for c in args.columns.split(",")) if c]
        for c in args.columns:
            if c not in meta_fields:
                hint = did_you_mean(c, meta_fields) or f"one of: {', '.join(meta_fields)}"
                raise ResfamError(f"--columns: unknown column '{c}' ({hint})")
    suffix = os.path.splitext(args.output or "")[1].lower()
    if args.format is None:
        args.format = report.FORMATS_BY_SUFFIX.get(suffix, "table")
    if args.engine and args.vs:
        raise ResfamError("--engine and --vs time different things (engines of one network, or "
                          "two libraries' networks): use one")
    if args.resume and not (args.output and args.format == "jsonl"):
        raise ResfamError("--resume continues a JSON-lines file: give --output rows.jsonl")
    side = args.img_size if isinstance(args.img_size, int) else None
    largest = max(batch_sizes(args.batch_size))
    if input_bytes(largest, side) > MAX_INPUT_BYTES:
        raise ResfamError(f"--batch-size {largest} --img-size {side or COMMON_SIDE}: the "
                          f"input batch alone would take more than "
                          f"{MAX_INPUT_BYTES // 2 ** 30} GiB; use a smaller batch or input")


def _done_rows(path: str) -> list[dict]:
    """Rows already in a JSON-lines file (``--resume``); a torn last line is dropped."""
    rows = []
    if os.path.exists(path):
        with open(path, encoding="utf-8", errors="replace") as f:  # a damaged line is skipped
            for line in f:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(row, dict) and isinstance(row.get("model"), str):
                    rows.append(row)
    return rows


def one_line_errors(prog: str):
    """A CLI's ``main``, printing a ResfamError that surfaces after its checks (writing the
    results to a disk that filled meanwhile) as one line with exit status 1, not a traceback."""
    def wrap(main):
        @functools.wraps(main)
        def run(argv: Optional[Sequence[str]] = None) -> int:
            try:
                return main(argv)
            except ResfamError as e:
                print(f"{prog}: error: {e}", file=sys.stderr)
                return 1

        return run

    return wrap


@one_line_errors("resfam-compare")
def main(argv: Optional[Sequence[str]] = None) -> int:
    """resfam-compare; its exit codes: 0 every row measured, 1 a row failed or the report could
    not be written (a disk that filled during the sweep), 2 a usage error, 130 interrupted."""
    os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the CPU memory profiler is chatty
    args = parser().parse_args(_argv(argv))
    if args.plot:
        args.flops = args.latency = True
    try:  # every usage error before the first model is built
        ranks = distributed.from_env()
        rank, world = ranks.rank, ranks.world
        _check(args, report.FIELDS)
        targets = select_targets(args.models, args.family)
        if args.list:  # names only: no model library imported
            print("\n".join(t.label for t in targets))
            return 0
        import torch

        from .sweep import environment, run_targets
        from .timing import usable_device

        if args.threads:
            torch.set_num_threads(args.threads)
        device = usable_device(args.device)
        if world > 1 and device.type == "cuda":
            device = torch.device("cuda", ranks.local_rank % torch.cuda.device_count())
        if rank == 0:
            check_outputs(args)
        if world > 1:  # every process here before any measures: a missing one is found now
            distributed.join(ranks, "gloo")
    except (ResfamError, RuntimeError) as e:
        print(f"resfam-compare: error: {e}", file=sys.stderr)
        return 2
    sizes = batch_sizes(args.batch_size)
    meta = environment(device, args.dtype, sizes[0] if len(sizes) == 1 else ",".join(map(str, sizes)),
                       args.img_size, args.channels_last)
    if world > 1:
        meta["ranks"] = world
    if args.engine:
        from ..engines.ceiling import measured_ceiling

        meta["ceiling"] = measured_ceiling(device).describe()
    options = dict(params=True, flops=args.flops, acts=args.acts,
                   latency=args.latency, throughput=args.throughput, memory=args.memory,
                   train=args.train, dtype=args.dtype, batch_size=args.batch_size,
                   img_size=args.img_size, channels_last=args.channels_last, warmup=args.warmup,
                   runs=args.runs, counter=args.counter, vs=args.vs, engines=args.engine)
    done: list[dict] = []
    if args.resume:
        done = [r for r in _done_rows(args.output) if not r.get("error")]
        seen = {r.get("target") or r["model"] for r in done}
        targets = [t for t in targets if t.label not in seen and t.ref not in seen]
        print(f"resfam-compare: resuming: {len(seen)} rows in {args.output}, {len(targets)} models to go",
              file=sys.stderr)
    if args.format not in ("table", "markdown") or args.output:  # else the table carries it
        if rank == 0:
            print("\n".join(report.header_lines(meta)), file=sys.stderr)
    stream = None  # rows go to a .jsonl file as measured (several ranks: merged, at the end)
    if args.output and args.format == "jsonl" and rank == 0:
        try:
            stream = AppendLog(args.output, resume=args.resume)
        except ResfamError as e:
            print(f"resfam-compare: error: {e}", file=sys.stderr)
            return 2
    try:  # the .jsonl's lock is released however the sweep ends
        mine = targets[rank::world]
        progress = _Progress(len(mine), enabled=not args.no_progress and rank == 0)
        groups: list[list[dict]] = []  # per model: its row (and its --vs reference's)
        noisy_warned = False

        def on_rows(got: list[dict]) -> None:
            nonlocal noisy_warned
            groups.append(got)
            progress.step(got[0]["model"])
            if stream is not None and world == 1:
                stream.write_lines([report.json_line(r, meta) for r in got])
            for r in got:
                if (r.get("ceiling_pct") or 0) > 100:
                    progress.message(f"resfam-compare: warning: {r['model']} on {r['engine']} runs at "
                                     f"{r['gflops_per_s']:.0f} GFLOP/s, above the measured ceiling "
                                     f"({r['ceiling_gflops']:.0f}): the ceiling misses a faster kernel")
            if not noisy_warned and any(r.get("noisy") for r in got):
                noisy_warned = True
                progress.message("resfam-compare: warning: a timing varies by more than 10% between "
                                 "runs (marked *); the machine may be busy: re-measure with more --runs")

        interrupted = False
        try:
            run_targets(mine, device=device, options=options, workers=args.workers,
                        isolate=args.isolate, on_rows=on_rows)
        except KeyboardInterrupt:  # keep what was measured: a long sweep is not thrown away
            interrupted = True
            print(f"\nresfam-compare: interrupted after {progress.count} of {len(mine)} models; "
                  "reporting those", file=sys.stderr)
        finally:
            progress.close()
        if world > 1:
            groups = _gather(groups, rank, world, len(targets))
            if rank != 0:
                return 0
        rows = [r for got in groups for r in got]
        if stream is not None:
            if world > 1:
                stream.write_lines([report.json_line(r, meta) for r in rows])
            stream.close()  # before the summary line: the file is complete
        rows = report.sort_rows(done + rows, args.sort)
        if args.format == "jsonl" and args.output:
            print(f"resfam-compare: {args.output} holds {len(rows)} rows", file=sys.stderr)
        else:
            text = report.render(rows, args.format, meta, args.columns, args.paper)
            if args.output:
                write_text_atomically(args.output, text)
                print(f"resfam-compare: wrote {len(rows)} rows to {args.output}", file=sys.stderr)
            else:
                sys.stdout.write(text)
        if args.plot and rows:
            from .plot import plot

            written = plot(rows, args.plot, meta)
            print(f"resfam-compare: wrote {', '.join(written)}", file=sys.stderr)
        if interrupted:
            return 130
        failed = [r for r in rows if r.get("error")]
        if failed:
            print(f"resfam-compare: {len(failed)} of {len(rows)} rows failed: "
                  f"{', '.join(r['model'] for r in failed)}", file=sys.stderr)
            return 1
        return 0
    finally:
        if stream is not None:
            stream.close()


def _gather(groups: list[list[dict]], rank: int, world: int, n: int) -> list[list[dict]]:
    """Every rank's per-model rows on rank 0, in the order of the model list (torchrun): model i
    was the (i // world)-th that rank i % world measured (an interrupted rank has fewer)."""
    import torch.distributed as dist

    parts = [None] * world if rank == 0 else None
    dist.gather_object(groups, parts, dst=0)
    dist.barrier()  # no rank tears gloo down while another's gather is still in flight (an abort)
    dist.destroy_process_group()
    if rank != 0:
        return []
    return [parts[i % world][i // world] for i in range(n) if i // world < len(parts[i % world])]


class _Progress:
    """A tqdm bar on a terminal; elsewhere (a log, CI) a plain line per model on stderr."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.count, self.bar = total, 0, None
        self.enabled, self.start = enabled, time.perf_counter()
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="resfam-compare", unit="model", file=sys.stderr,
                            dynamic_ncols=True)

    def step(self, name: str) -> None:
        self.count += 1
        if self.bar is not None:
            self.bar.set_postfix_str(os.path.basename(name))
            self.bar.update(1)
        elif self.enabled:
            print(f"resfam-compare: [{self.count}/{self.total}] {name} "
                  f"({time.perf_counter() - self.start:.1f} s)", file=sys.stderr, flush=True)

    def message(self, text: str) -> None:
        (self.bar.write if self.bar is not None else lambda t: print(t, file=sys.stderr))(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
