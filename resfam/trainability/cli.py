"""``resfam-probe`` and ``resfam-train``: the command-line faces of :func:`resfam.probe` and
:func:`resfam.train`. Exit codes as resfam-compare: 0 done, 2 a usage error (one line, no
traceback), 130 interrupted (what was finished is kept)."""
from __future__ import annotations

import os
import sys
import time
from typing import Optional, Sequence

from ..comparison import report
from ..comparison.cli import _int_at_least, _Parser, check_outputs, one_line_errors
from ..comparison.options import MAX_THREADS
from .. import distributed
from ..errors import ResfamError
from ..files import write_text_atomically
from .options import MAX_EPOCHS, MAX_SEEDS, MIN_IMG_SIZE, PROBE_MAX_SEED

FORMATS = ["table", "csv", "json", "markdown"]
PROGRESS_S = 10.0  # resfam-train: a progress line within an epoch at most this often
BLOCK_COLUMNS = [("model", "model"), ("block", "block"), ("stage", "stage"),
                 ("avg_sq_mean", "avg ch sq mean"), ("avg_var", "avg ch var"),
                 ("branch_var", "branch var"), ("gate_mean", "gate mean")]
GRAD_COLUMNS = [("model", "model"), ("part", "part"), ("grad_norm", "grad norm"), ("grad_rms", "grad RMS")]
SUMMARY_COLUMNS = [("model", "model"), ("params", "params"), ("seeds", "seeds"), ("epochs", "epochs"),
                   ("train_err", "train err %"), ("train_err_ci95", "±95%"),
                   ("train_eval_err", "eval train err %"), ("train_eval_err_ci95", "±95%"),
                   ("test_err", "test err %"), ("test_err_ci95", "±95%"),
                   ("best_test_err", "best test err %"), ("seconds", "s per run"), ("images_per_s", "img/s")]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _fmt(key, value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if key in ("avg_sq_mean", "avg_var", "branch_var", "gate_mean",
                                         "grad_norm", "grad_rms") else f"{value:.2f}"
    return value


def _common(p) -> None:
    p.add_argument("models", nargs="+", help="names, fnmatch patterns ('plain*') or spec files")
    p.add_argument("--img-size", type=_int_at_least(MIN_IMG_SIZE), default=None,
                   help="input side (default: each model's native size)")
    p.add_argument("--norm", default=None, help="override every model's norm: bn, gn, none, ...")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 (default: cuda if present)")
    p.add_argument("--format", default="table", choices=FORMATS)


def probe_parser() -> _Parser:
    p = _Parser(prog="resfam-probe", allow_abbrev=False, description="Signal propagation at "
                "initialisation: per-block output and residual-branch statistics (Brock et al. "
                "2021) and per-stage gradient norms, for a standard-normal batch.")
    _common(p)
    p.add_argument("--batch-size", type=_int_at_least(2), default=64)
    p.add_argument("--seed", type=_int_at_least(0, PROBE_MAX_SEED), default=0)
    p.add_argument("--zero-init-last", action="store_true", help="zero each branch's last norm")
    p.add_argument("--output", help="write the report to this file instead of stdout")
    p.add_argument("--plot", help="signal propagation plots: .png, .pdf or .svg")
    return p


@one_line_errors("resfam-probe")
def probe_main(argv: Optional[Sequence[str]] = None) -> int:
    args = probe_parser().parse_args(argv)
    from ..comparison.timing import usable_device
    from .probe import probe

    try:
        kwargs = {"norm_layer": args.norm} if args.norm else {}
        if args.zero_init_last:
            kwargs["zero_init_last"] = True
        check_outputs(args)
        result = probe(args.models, batch_size=args.batch_size, img_size=args.img_size,
                       seed=args.seed, device=usable_device(args.device), **kwargs)
    except ResfamError as e:
        print(f"resfam-probe: error: {e}", file=sys.stderr)
        return 2
    if args.format == "json":
        import json

        text = json.dumps({"meta": result.meta, "blocks": result.blocks, "grads": result.grads}, indent=2) + "\n"
    elif args.format == "csv":
        rows = [dict(kind="block", **r) for r in result.blocks] + [dict(kind="grad", **r) for r in result.grads]
        fields = ["kind", *dict.fromkeys(k for r in rows for k in r if k != "kind")]
        text = report.render_rows(rows, [(f, f) for f in fields], "csv", result.meta, [])
    else:
        head = [f"resfam-probe | torch {result.meta['torch']} | {result.meta['device']} | batch "
                f"{result.meta['batch_size']} of N(0, 1) | seed {result.meta['seed']} | training mode",
                "per block: channel statistics over batch and positions, averaged over channels"]
        text = report.render_rows(result.blocks, BLOCK_COLUMNS, args.format, result.meta, head, cell=_fmt)
        text += "\n" + report.render_rows(result.grads, GRAD_COLUMNS, args.format, result.meta,
                                          ["gradient of cross-entropy on random labels, per part"], cell=_fmt)
    _emit(text, args.output, "resfam-probe", f"{len(result.blocks)} block rows")
    if args.plot:
        from .plot import plot_probe

        plot_probe(result.blocks, result.grads, args.plot, result.meta)
        print(f"resfam-probe: wrote {args.plot}", file=sys.stderr)
    return 0


def _emit(text: str, output: Optional[str], prog: str, what: str) -> None:
    if output:
        write_text_atomically(output, text)
        print(f"{prog}: wrote {what} to {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def recipe_options(p) -> None:
    """The training recipe's options, shared by resfam-train and resfam-space train."""
    p.add_argument("--data", default="mnist5k", help="mnist5k, digits, cifar10:ROOT, cifar100:ROOT, "
                   "folder:ROOT (default: mnist5k)")
    p.add_argument("--epochs", type=_int_at_least(1, MAX_EPOCHS), default=10)
    p.add_argument("--seeds", type=_int_at_least(1, MAX_SEEDS), default=1, help="runs per model, seeds 0..N-1")
    p.add_argument("--batch-size", type=_int_at_least(1), default=128, help="global batch")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--schedule", default="cosine", choices=["cosine", "step", "constant"])
    p.add_argument("--warmup-epochs", type=float, default=0.0)
    p.add_argument("--augment", default="auto", choices=["auto", "none", "crop", "crop-flip"])
    p.add_argument("--zero-init-last", action="store_true", help="zero each residual branch's "
                   "last norm (or conv, without norms)")
    p.add_argument("--amp", action="store_true", help="mixed precision (bfloat16 on CPU)")
    p.add_argument("--distribute", default="ddp", choices=["ddp", "runs"], help="under torchrun: "
                   "DDP for every run, or whole runs dealt out to the processes")


def recipe_kwargs(args) -> dict:
    """:func:`resfam.train`'s recipe keywords from the options :func:`recipe_options` added."""
    return dict(data=args.data, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                momentum=args.momentum, weight_decay=args.weight_decay, schedule=args.schedule,
                warmup_epochs=args.warmup_epochs, augment=args.augment,
                zero_init_last=args.zero_init_last, amp=args.amp, distribute=args.distribute)


def progress_lines(prog: str, speaks: bool):
    """(on_epoch, on_step) for :func:`resfam.train`: a line per epoch, and within an epoch a line
    at most every PROGRESS_S seconds, on stderr (when ``speaks``: one process of several)."""
    last_line = [time.monotonic()]

    def progress(row: dict) -> None:
        if speaks:
            print(f"{prog}: {row['model']} seed {row['seed']} epoch {row['epoch']}: train err "
                  f"{row['train_err']:.2f}% loss {row['train_loss']:.4f}, test err {row['test_err']:.2f}% "
                  f"({row['seconds']:.1f} s)", file=sys.stderr, flush=True)
            last_line[0] = time.monotonic()

    def step(s: dict) -> None:  # within an epoch: a line at most every PROGRESS_S seconds
        if speaks and s["step"] < s["steps"] and time.monotonic() - last_line[0] >= PROGRESS_S:
            print(f"{prog}: {s['model']} seed {s['seed']} epoch {s['epoch']}: batch "
                  f"{s['step']}/{s['steps']}", file=sys.stderr, flush=True)
            last_line[0] = time.monotonic()

    return progress, step


def train_parser() -> _Parser:
    p = _Parser(prog="resfam-train", allow_abbrev=False, description="Short, reproducible "
                "training studies: every model, every seed, one recipe; per-epoch training and "
                "test error, a summary, and a plot in the style of He et al. 2016, Fig. 6.")
    _common(p)
    recipe_options(p)
    p.add_argument("--out", default="resfam-train", help="folder for checkpoints and results")
    p.add_argument("--resume", action="store_true", help="continue the study in --out")
    p.add_argument("--threads", type=_int_at_least(1, MAX_THREADS), default=None, help="torch CPU "
                   "threads (recorded: a resume under another count is refused, the numbers would differ)")
    p.add_argument("--log-every", type=_int_at_least(0), default=0, help="also log the running "
                   "training error every N iterations (iterations.csv; curves.png per iteration)")
    p.add_argument("--pretrained", default=None, help="start from weights: 'true' (the default "
                   "published ones), a tag (timm:a1_in1k) or a checkpoint file")
    p.add_argument("--finetune", choices=["full", "last", "head"], default=None, help="with "
                   "--pretrained: retrain everything (the backbone at --backbone-lr-scale), the last "
                   "--finetune-stages stages and the head, or the head only")
    p.add_argument("--finetune-stages", type=_int_at_least(1, 64), default=1)
    p.add_argument("--backbone-lr-scale", type=float, default=0.1)
    p.add_argument("--test", action="append", default=[], metavar="A,B", help="test model A against "
                   "B on the final test and eval-mode training errors: paired by seed, else Welch's t "
                   "(repeatable)")
    p.add_argument("--no-plot", action="store_true", help="skip curves.png")
    return p


@one_line_errors("resfam-train")
def train_main(argv: Optional[Sequence[str]] = None) -> int:
    args = train_parser().parse_args(argv)
    import torch

    from .train import train

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        rank = distributed.from_env().rank
    except ResfamError as e:
        print(f"resfam-train: error: {e}", file=sys.stderr)
        return 2

    progress, step = progress_lines("resfam-train", rank == 0 or args.distribute == "runs")

    pairs = []
    for text in args.test:
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 2 or not all(parts):
            print(f"resfam-train: error: --test {text}: name two models, A,B", file=sys.stderr)
            return 2
        pairs.append(tuple(parts))
    pretrained = {"true": True, "false": False}.get((args.pretrained or "false").lower(), args.pretrained)

    try:
        if not args.no_plot:
            from ..comparison.plot import require_matplotlib

            require_matplotlib()
        study = train(args.models, seeds=args.seeds, out=args.out, resume=args.resume,
                      device=args.device, on_epoch=progress, on_step=step, pairs=pairs,
                      log_every=args.log_every, pretrained=pretrained,
                      finetune=args.finetune, finetune_stages=args.finetune_stages,
                      backbone_lr_scale=args.backbone_lr_scale,
                      img_size=args.img_size, norm_layer=args.norm, **recipe_kwargs(args))
    except ResfamError as e:
        print(f"resfam-train: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nresfam-train: interrupted; finished epochs are in {args.out}/runs (--resume "
              "continues)", file=sys.stderr)
        return 130
    if rank != 0:
        return 0
    if not args.no_plot:
        from .plot import plot_curves

        plot_curves(study.epochs, os.path.join(args.out, "curves.png"),
                    f"{study.meta['data']}, {_count(study.meta['epochs'], 'epoch')}, "
                    f"{_count(len(study.meta['seeds']), 'seed')}, {study.meta['threads']} threads",
                    iterations=study.iterations)
    m = study.meta
    head = [f"resfam-train | torch {m['torch']} | {m['device']} x {m['processes']} | {m['threads']} "
            f"threads | {m['data']} | {_count(m['epochs'], 'epoch')} | batch {m['batch_size']} | lr {m['lr']} "
            f"{m['schedule']} | seeds {len(m['seeds'])}",
            "errors: final epoch, mean over seeds ± the half-width of its 95% confidence interval "
            "(Student t); train err: running, in training mode; (eval): the final weights, eval mode"]
    text = report.render_rows(study.summary, SUMMARY_COLUMNS, args.format, m, head, cell=_fmt)
    if study.tests and args.format in ("table", "markdown"):
        from .stats import describe

        text += "\n" + "\n".join(describe(t) for t in study.tests) + "\n"
    sys.stdout.write(text)
    print(f"resfam-train: wrote epochs.csv/json, summary.csv/json"
          f"{', iterations.csv' if study.iterations else ''}{'' if args.no_plot else ', curves.png'} "
          f"to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(train_main())
