"""``resfam-space``: design spaces from the shell, as resfam-compare and resfam-train behave (one
line per usage error and exit 2, progress on stderr, 130 when interrupted with what was finished
kept, output formats from ``--output``'s suffix).

    resfam-space list
    resfam-space sample vanilla resnet -n 100 --gmacs 0.005,0.01 --out study
    resfam-space train study --data digits --epochs 3        # --resume continues it exactly
    resfam-space compare study --bins 10 --plot study/compare.png --output study/compare.md
"""
from __future__ import annotations

import sys
import time
from typing import Optional, Sequence

from ..comparison import report
from ..comparison.cli import _int_at_least, _Parser, check_outputs, one_line_errors
from ..comparison.options import MAX_THREADS
from ..errors import ResfamError
from ..files import write_text_atomically

PROG = "resfam-space"
FORMATS = ["table", "csv", "json", "markdown"]
SPACE_COLUMNS = [("space", "space"), ("models", "models"), ("best", "best %"), ("q1", "q1 %"),
                 ("median", "median %"), ("q3", "q3 %"), ("search_1", "E[min] k=1"),
                 ("search_8", "k=8"), ("search_32", "k=32"), ("search_128", "k=128")]
PAIR_COLUMNS = [("a", "space A"), ("b", "space B"), ("D", "KS D (normalized)"), ("p", "p"),
                ("D_plain", "KS D (plain)"), ("p_plain", "p (plain)")]
KEY_COLUMNS = [("space", "space"), ("key", "key"), ("best", "best model's"), ("mode", "bootstrap mode"),
               ("share", "mode share"), ("low", "95% low"), ("high", "95% high")]
LIST_COLUMNS = [("space", "space"), ("paper", "paper"), ("band", "band"), ("keys", "drawn keys"),
                ("description", "description")]


def _band_type(text: str) -> list[float]:
    """--gmacs / --params / --acts: LOW,HIGH."""
    import argparse

    try:
        low, high = (float(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give LOW,HIGH, e.g. 0.36,0.40") from None
    if not 0 <= low <= high:
        raise argparse.ArgumentTypeError(f"{text!r}: 0 <= LOW <= HIGH")
    return [low, high]


def parser() -> _Parser:
    from ..trainability.cli import recipe_options

    p = _Parser(prog=PROG, allow_abbrev=False, description="Design spaces as data (Radosavovic "
                "et al. 2019, 2020): sample flops-matched designs, train them under one recipe, "
                "compare the spaces by their error distributions.")
    from .._version import __version__

    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="{list,sample,train,compare}")
    ls = sub.add_parser("list", help="the bundled spaces", allow_abbrev=False)
    ls.add_argument("--format", default="table", choices=FORMATS)
    s = sub.add_parser("sample", help="draw designs into a study folder", allow_abbrev=False)
    s.add_argument("spaces", nargs="+", help="bundled names (resfam-space list) or space files")
    s.add_argument("-n", "--models", type=_int_at_least(1, 100_000), default=100, help="designs per space")
    s.add_argument("--seed", type=_int_at_least(0, 2 ** 63 - 1), default=0)
    s.add_argument("--gmacs", type=_band_type, help="band LOW,HIGH in GMACs (default: the space's)")
    s.add_argument("--params", type=_band_type, help="band LOW,HIGH in millions of parameters")
    s.add_argument("--acts", type=_band_type, help="band LOW,HIGH in millions of activations")
    s.add_argument("--img-size", type=_int_at_least(8, 1024), default=None,
                   help="side the band is counted at (default: each space's)")
    s.add_argument("--max-draws", type=_int_at_least(1), default=None,
                   help="give up after this many draws per space (default: 1,000 + 200 per "
                   "design; 2,000 if none is in the band by then)")
    s.add_argument("--out", required=True, help="the study folder (new)")
    t = sub.add_parser("train", help="train every design of a study under one recipe", allow_abbrev=False)
    t.add_argument("study", help="a folder resfam-space sample wrote")
    recipe_options(t)
    t.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 (default: cuda if present)")
    t.add_argument("--resume", action="store_true", help="continue an interrupted training")
    t.add_argument("--threads", type=_int_at_least(1, MAX_THREADS), default=None,
                   help="torch CPU threads (recorded; a resume under another count is refused)")
    c = sub.add_parser("compare", help="EDFs, KS tests, bootstrap and random search", allow_abbrev=False)
    c.add_argument("studies", nargs="+", help="trained study folders (or population.json files)")
    c.add_argument("--metric", default="best_test_err", choices=["best_test_err", "test_err",
                   "train_eval_err", "train_err"], help="the error compared (NDS: the best test error)")
    c.add_argument("--complexity", default="gmacs", choices=["gmacs", "params", "acts"],
                   help="what the normalized EDF equalises")
    c.add_argument("--bins", type=_int_at_least(0, 1000), default=10,
                   help="complexity bins of the normalized EDF (NDS Fig. 6: 10; 0: plain EDFs)")
    c.add_argument("--key", default=None, help="the drawn key the figure's fourth panel plots "
                   "(default: blocks, the total depth)")
    c.add_argument("--reps", type=_int_at_least(1, 100_000), default=2500, help="bootstrap resamples")
    c.add_argument("--output", help="write the tables here; the format follows the suffix "
                   "(.csv .json .md), else a table")
    c.add_argument("--format", default=None, choices=FORMATS)
    c.add_argument("--plot", help="the comparison figure: .png, .pdf or .svg")
    return p


@one_line_errors(PROG)
def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        return {"list": _list, "sample": _sample, "train": _train, "compare": _compare}[args.command](args)
    except ResfamError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted; what was finished is kept (resfam-space train --resume "
              "continues a training)", file=sys.stderr)
        return 130


def _list(args) -> int:
    from .definition import list_spaces, read_space

    rows = []
    for name in list_spaces():
        d = read_space(name).d
        c = d.constraints
        rows.append(dict(space=name, paper=d.paper, band=c.describe() + (
            f"; nondecreasing {', '.join(c.nondecreasing)}" if c.nondecreasing else ""),
            keys=", ".join(list(d.keys) + [r.rule for r in d.rules]), description=d.description))
    sys.stdout.write(report.render_rows(rows, LIST_COLUMNS, args.format, {}, [
        f"{PROG}: {len(rows)} bundled design spaces (specs/spaces/; docs/design_spaces.md)"]))
    return 0


def _sample(args) -> int:
    from .._version import __version__
    from .population import write_samples
    from .sampling import sample

    band = {k: getattr(args, k) for k in ("gmacs", "params", "acts") if getattr(args, k) is not None}
    last = [time.monotonic()]

    def tick(space: str, draws: int, accepted: int) -> None:
        if time.monotonic() - last[0] >= 10.0:
            print(f"{PROG}: {space}: {accepted} designs from {draws:,} draws", file=sys.stderr, flush=True)
            last[0] = time.monotonic()

    samples = sample(args.spaces, args.models, seed=args.seed, band=band or None, img_size=args.img_size,
                     max_draws=args.max_draws, on_draw=tick)
    write_samples(args.out, samples, dict(resfam=__version__, seed=args.seed, img_size=args.img_size,
                                          models=args.models, band_override=band or None))
    for s in samples:
        print(f"{PROG}: {s.space}: {len(s.designs)} designs from {s.draws:,} draws "
              f"({100 * s.acceptance:.1f}% in {s.band})", file=sys.stderr)
    print(f"{PROG}: wrote designs.yaml, designs.csv, space-study.json to {args.out}", file=sys.stderr)
    return 0


def _train(args) -> int:
    import torch

    from .. import distributed
    from ..trainability.cli import progress_lines, recipe_kwargs
    from .population import train

    if args.threads:
        torch.set_num_threads(args.threads)
    rank = distributed.from_env().rank
    progress, step = progress_lines(PROG, rank == 0 or args.distribute == "runs")
    rows = train(args.study, seeds=args.seeds, resume=args.resume, device=args.device,
                 on_epoch=progress, on_step=step, **recipe_kwargs(args))
    if rank == 0:
        print(f"{PROG}: trained {len(rows)} designs; wrote population.csv/json, epochs.csv, "
              f"summary.csv/json to {args.study}", file=sys.stderr)
    return 0


def _fmt(key, value):
    if value is None:
        return ""
    if isinstance(value, float):
        if key in ("p", "p_plain"):
            return f"{value:.2g}"
        return f"{value:.3f}" if key in ("D", "D_plain", "share") else f"{value:.4g}"
    return value


def _compare(args) -> int:
    import os

    from .analysis import compare, drawn_keys
    from .population import read_population

    check_outputs(args)
    by_suffix = report.FORMATS_BY_SUFFIX.get(os.path.splitext(args.output or "")[1].lower())
    fmt = args.format or (by_suffix if by_suffix in FORMATS else "table")
    rows, metas = [], []
    for study in args.studies:
        meta, population = read_population(study)
        rows += population
        metas.append(meta)
    key = args.key or "blocks"
    known = drawn_keys(rows)
    if key not in known:
        from ..errors import did_you_mean

        raise ResfamError(f"--key {key}: not a drawn key of these studies ("
                          f"{did_you_mean(key, known) or 'keys: ' + ', '.join(known)})")
    c = compare(rows, metric=args.metric, complexity=args.complexity, bins=args.bins, reps=args.reps)
    meta = dict(c.meta, studies=args.studies, recipes=[m.get("recipe") for m in metas])
    recipe = metas[0].get("recipe") or {}
    head = [f"{PROG} compare | {args.metric} | {len(rows)} models | "
            + (f"normalized EDFs over {args.bins} {args.complexity} bins in [{c.meta['range'][0]:.4g}, "
               f"{c.meta['range'][1]:.4g}]" if args.bins else "plain EDFs")
            + (f" | trained on {recipe.get('data')}, {recipe.get('epochs')} epochs" if recipe else "")]
    if fmt == "json":
        import json

        text = json.dumps({"meta": meta, "spaces": c.spaces, "pairs": c.pairs, "keys": c.keys},
                          indent=2, default=str) + "\n"
    elif fmt == "csv":
        text = report.render_rows([dict(table="space", **r) for r in c.spaces] +
                                  [dict(table="pair", **r) for r in c.pairs] +
                                  [dict(table="key", **r) for r in c.keys],
                                  [(k, k) for k in dict.fromkeys(k for r in c.spaces + c.pairs + c.keys
                                                                 for k in ["table", *r])], "csv", meta, [])
    else:
        text = report.render_rows(c.spaces, SPACE_COLUMNS, fmt, meta, head, cell=_fmt)
        if c.pairs:
            text += "\n" + report.render_rows(c.pairs, PAIR_COLUMNS, fmt, meta, [
                "Kolmogorov-Smirnov tests of the error distributions (NDS Sec. 3.3)"], cell=_fmt)
        text += "\n" + report.render_rows(c.keys, KEY_COLUMNS, fmt, meta, [
            f"best value of each drawn key: {args.reps} bootstrap resamples of a quarter of the models "
            "(RegNet Sec. 3.1)"], cell=_fmt)
    if args.output:
        write_text_atomically(args.output, text)
        print(f"{PROG}: wrote the comparison to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if args.plot:
        from .plot import plot_comparison

        plot_comparison(c, rows, args.plot, key, title=head[0].replace(f"{PROG} compare | ", ""))
        print(f"{PROG}: wrote {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
