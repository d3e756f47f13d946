"""Short, reproducible training studies: the degradation problem measured (He et al. 2016, Fig. 1
and Fig. 6: deeper *plain* nets reach a higher training error; residual ones do not).

Every run trains one build on one data set with one seed under the same recipe: SGD with momentum
and weight decay (He et al. 2016, Sec. 3.4 / 4.2), a cosine (Loshchilov & Hutter 2017) or step
schedule (/10 at 50% and 75% of training, the CIFAR recipe's 32k and 48k of 64k iterations), an
optional linear warm-up (Goyal et al. 2017), and the CIFAR augmentation where it applies
(:func:`resfam.trainability.data.augment`). Training error is the running error of the epoch in
training mode, as the papers plot it (``log_every`` also logs it every N iterations); test error
is measured in eval mode after each epoch, and after the last one the training set's error in
eval mode too (``train_eval_err``: the weights' final error, without dropout or the epoch's
drift). From pretrained weights, ``finetune`` retrains all, the last stages or the head
(:func:`resfam.trainability.finetune.prepare_finetune`).

Everything random is seeded from (seed, epoch): initialisation, order, augmentation, dropout. A run
checkpoints after every epoch, and ``resume=True`` continues it exactly (same numbers as an
uninterrupted run). The same numbers need the same arithmetic too: the thread count, the device,
the process count and the torch version change float rounding (1 thread and 2 differ from the
first epoch), so every record keeps them (``env``) and a resume under others is refused. Under ``torchrun`` the study uses every process: ``distribute='ddp'`` trains
each run with DistributedDataParallel (each rank takes its slice of every global batch; without
BatchNorm this is the single-process run up to float rounding, with BatchNorm each rank
normalises with its own slice's statistics, as DDP always does), ``distribute='runs'`` deals
whole runs out to the ranks.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable, Iterable, Literal, Optional, Union

import torch
import torch.distributed as dist
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import distributed
from ..errors import ArgumentError, CheckpointError, ResfamError, did_you_mean, first_line, short_repr
from ..factory import build
from ..files import check_output, make_folder, replace_atomically, write_text_atomically
from .options import MAX_EPOCHS, MAX_SEEDS, TRAIN_MAX_SEED
from ..spec.registry import get_spec
from ..spec.schema import Spec
from . import data as datasets

REQUIRED_FIELDS = ("model", "seed", "epoch", "lr", "train_loss", "train_err", "test_loss", "test_err",
                   "seconds", "images_per_s")
# the training set's loss and error in eval mode: the last epoch's row only (None before it)
EPOCH_FIELDS = REQUIRED_FIELDS + ("train_eval_loss", "train_eval_err")
ITER_FIELDS = ("model", "seed", "iteration", "epoch", "train_loss", "train_err")




class TrainConfig(BaseModel):
    """The recipe, shared by every run of a study (and checked again on resume)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    data: str = Field("mnist5k", description="data set (resfam.trainability.data)")
    epochs: int = Field(10, ge=1, le=MAX_EPOCHS)
    batch_size: int = Field(128, ge=1, le=65_536, description="global batch, over all processes")
    lr: float = Field(0.1, gt=0.0, le=10.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(1e-4, ge=0.0, lt=1.0)
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    warmup_epochs: float = Field(0.0, ge=0.0, le=10_000)
    augment: Literal["auto", "none", "crop", "crop-flip"] = Field(
        "auto", description="auto: crop + flip for photographs, none for digits")
    img_size: Optional[int] = Field(None, ge=8, le=1024, description="input side (default: the spec's)")
    norm_layer: Optional[str] = Field(None, description="override the spec's norm (e.g. 'none')")
    zero_init_last: bool = Field(False, description="zero each residual branch's last norm (or conv, "
                                                    "without norms: SkipInit, De & Smith 2020)")
    amp: bool = Field(False, description="autocast: bfloat16 on CPU, float16 + loss scaling on CUDA")
    distribute: Literal["ddp", "runs"] = "ddp"
    log_every: int = Field(0, ge=0, le=1_000_000, description="also log the running training "
                           "error every N iterations (0: per epoch only)")
    pretrained: Union[bool, str] = Field(False, description="start from published or local "
                                         "weights (resfam.build's pretrained=)")
    finetune: Optional[Literal["full", "last", "head"]] = Field(
        None, description="with pretrained: what to retrain (prepare_finetune's mode)")
    finetune_stages: int = Field(1, ge=1, le=64, description="finetune='last': how many stages")
    backbone_lr_scale: float = Field(0.1, ge=0.0, le=1.0, description="finetune: the backbone's "
                                     "learning rate / the head's")


@dataclass
class Study:
    """What :func:`train` returns: per-epoch rows, one summary row per model, the environment,
    and with ``log_every`` the per-iteration rows."""

    epochs: list[dict] = field(default_factory=list)
    summary: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    iterations: list[dict] = field(default_factory=list)
    tests: list[dict] = field(default_factory=list)  # compare_pair results, one per named pair


def environment(device: torch.device, processes: int) -> dict:
    """What the arithmetic depends on beyond the recipe and seed: a resumed run must match."""
    from .._version import __version__

    return dict(torch=str(torch.__version__), resfam=__version__, threads=torch.get_num_threads(),
                device=device.type, processes=processes)


def make_config(**options) -> TrainConfig:
    """A TrainConfig from keyword options; a bad one is an ArgumentError naming the option."""
    try:
        return TrainConfig(**options)
    except ValidationError as err:
        e = err.errors()[0]
        key = ".".join(str(p) for p in e["loc"])
        raise ArgumentError(f"train option {key!r}: {e['msg']} (got {short_repr(e.get('input'))})") from None


def lr_at(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """The learning rate for optimiser step ``step`` (0-based): warm-up, then the schedule."""
    total = cfg.epochs * steps_per_epoch
    warm = round(cfg.warmup_epochs * steps_per_epoch)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    if cfg.schedule == "cosine":
        t = (step - warm) / max(total - warm, 1)
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * t))
    if cfg.schedule == "step":
        return cfg.lr * 0.1 ** sum(step >= total * f for f in (0.5, 0.75))
    return cfg.lr


@dataclass
class _World:
    rank: int = 0
    size: int = 1

    @classmethod
    def current(cls) -> "_World":
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    def sum(self, values: list[float]) -> list[float]:
        if self.size == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return t.tolist()


def spec_digest(spec: Spec) -> str:
    """A short hash of the resolved spec's content: two networks that differ (a user spec that
    redefines a bundled name, or two names that clean to the same file name) never share a run
    file."""
    text = json.dumps(spec.raw, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _run_path(out: str, spec: Spec, seed: int) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", spec.name)
    return os.path.join(out, "runs", f"{name}-{spec_digest(spec)}-seed{seed}.pt")


def _record_problem(state) -> str:
    """What is wrong with a run record read back ('' when nothing): a damaged or foreign file
    must not reach load_state_dict or the summary."""
    if not isinstance(state, dict):
        return f"it holds a {type(state).__name__}"
    kinds = dict(config=dict, model=str, seed=int, rows=list, params=int, model_state=dict,
                 optim_state=dict, env=dict)
    for key, kind in kinds.items():
        if not isinstance(state.get(key), kind):
            return f"'{key}' is missing or not a {kind.__name__}"
    for row in state["rows"]:
        if not isinstance(row, dict) or any(k not in row for k in REQUIRED_FIELDS):
            return "a row of its epochs lacks a field"
    return ""


def _load_run(path: str, cfg: TrainConfig, env: Optional[dict] = None) -> Optional[dict]:
    if not os.path.lexists(path):
        return None
    if not os.path.isfile(path):  # a FIFO would block torch.load for ever
        raise CheckpointError(f"{path}: not a regular file; delete it to start that run again")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a damaged file is the user's to remove
        raise CheckpointError(f"{path}: cannot be read ({type(e).__name__}: {first_line(e)[:200]}); "
                              "delete it to start that run again") from None
    problem = _record_problem(state)
    if problem:
        raise CheckpointError(f"{path}: not a resfam-train run record ({problem}); delete it to "
                              "start that run again")
    if state.get("config") != cfg.model_dump():
        saved = state.get("config") or {}
        diff = sorted(k for k in cfg.model_dump() if saved.get(k) != getattr(cfg, k))
        raise ResfamError(f"{path} was trained with other options ({', '.join(diff)}); resume with "
                          "the same options, or write this study to another --out")
    if env is not None and state["env"] != env:
        saved = state["env"]
        diff = ", ".join(f"{k} {saved.get(k)} (now {env[k]})" for k in env if saved.get(k) != env[k])
        raise ResfamError(f"{path} was trained under {diff}: the numbers of a resumed run would "
                          "differ from an uninterrupted one; resume under the same (--threads "
                          f"{saved.get('threads')}), or write this study to another --out")
    return state


def _batches(n: int, batch: int, world: int) -> int:
    """Steps per epoch; a last batch too small to give every process a sample is dropped."""
    return n // batch + (1 if n % batch >= world else 0)


@torch.enable_grad()  # training, whatever grad mode the caller is in
def train_run(name: Union[str, Spec], seed: int, raw: datasets.Data, cfg: TrainConfig, out: str, *,
              device: torch.device, world: _World, resume: bool = False,
              on_epoch: Optional[Callable[[dict], None]] = None,
              on_step: Optional[Callable[[dict], None]] = None,
              on_record: Optional[Callable[[list[dict], list[dict]], None]] = None) -> list[dict]:
    """Train one build (a name, spec file or resolved Spec) with one seed (see the module
    docstring); returns its epoch rows. ``on_epoch`` gets each new epoch's row, ``on_step``
    (model, seed, epoch, step, steps) after every optimiser step, ``on_record`` the run's epoch
    and iteration rows so far after each epoch (resumed ones included)."""
    spec = get_spec(name)
    side = cfg.img_size or spec.input_size
    d = datasets.prepare(raw, side)
    ddp = world.size > 1 and cfg.distribute == "ddp"
    env = environment(device, world.size if ddp else 1)
    path = _run_path(out, spec, seed)
    state = _load_run(path, cfg, env) if resume else None
    torch.manual_seed(seed)
    kwargs = {"norm_layer": cfg.norm_layer} if cfg.norm_layer else {}
    if cfg.pretrained:
        kwargs["pretrained"] = cfg.pretrained
    model = build(spec, num_classes=raw.num_classes, in_chans=raw.channels,
                  zero_init_last=cfg.zero_init_last, **kwargs).to(device)
    if cfg.finetune:
        from .finetune import prepare_finetune

        groups = prepare_finetune(model, cfg.finetune, stages=cfg.finetune_stages, lr=cfg.lr,
                                  backbone_lr_scale=cfg.backbone_lr_scale)
    else:
        groups = [dict(params=list(model.parameters()), lr=cfg.lr)]
    for group in groups:  # the schedule scales each group's own rate
        group["lr_scale"] = group["lr"] / cfg.lr
    opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    rows: list[dict] = []
    iters: list[dict] = []
    window = [0.0, 0.0, 0.0]  # loss sum, errors, samples since the last iteration row (log_every)
    if state is not None:
        if (state["model"], state["seed"]) != (spec.name, seed):
            raise CheckpointError(f"{path}: holds {state['model']} seed {state['seed']}, not "
                                  f"{spec.name} seed {seed}; delete it to start that run again")
        try:
            model.load_state_dict(state["model_state"])
            opt.load_state_dict(state["optim_state"])
        except (RuntimeError, KeyError, ValueError, TypeError) as e:
            first = first_line(e)
            raise CheckpointError(f"{path}: does not fit {spec.name} ({first[:200]}); delete it "
                                  "to start that run again") from None
        rows = list(state["rows"])
        iters = list(state.get("iters", []))
        if not ddp or world.rank == 0:  # under DDP rank 0 holds the window's global sums
            window = list(state.get("window", [0.0, 0.0, 0.0]))
    if on_record is not None:
        on_record(rows, iters)
    if len(rows) >= cfg.epochs:
        return rows
    net = torch.nn.parallel.DistributedDataParallel(model) if ddp else model
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp and device.type == "cuda")
    pad = {"none": 0, "auto": 4 if raw.natural else 0}.get(cfg.augment, 4)
    flip = cfg.augment == "crop-flip" or (cfg.augment == "auto" and raw.natural)
    n, batch = len(d.y_train), cfg.batch_size
    steps = _batches(n, batch, world.size if ddp else 1)
    if steps == 0:
        raise ArgumentError(f"batch_size {batch} leaves no batch in {n} training images")
    parts = world.size if ddp else 1
    part = world.rank if ddp else 0
    for epoch in range(len(rows), cfg.epochs):
        gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        torch.manual_seed(seed * 1_000_003 + epoch)  # dropout, drop path
        order = torch.randperm(n, generator=gen)
        net.train()
        totals = [0.0, 0.0, 0.0]  # loss sum, errors, samples
        start = time.perf_counter()
        for step in range(steps):
            idx = order[step * batch:(step + 1) * batch]
            x = datasets.augment(d.x_train[idx], pad, flip, gen)  # the whole global batch, every rank
            x, y = x.tensor_split(parts)[part].to(device), d.y_train[idx].tensor_split(parts)[part].to(device)
            for group in opt.param_groups:
                group["lr"] = lr_at(cfg, epoch * steps + step, steps) * group["lr_scale"]
            with torch.autocast(device.type, dtype=amp_dtype) if cfg.amp else nullcontext():
                logits = net(x)
                loss_sum = F.cross_entropy(logits.float(), y, reduction="sum")
            # the mean over the *global* batch; DDP averages gradients over ranks, hence * parts
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss_sum * parts / len(idx)).backward()
            scaler.step(opt)
            scaler.update()
            now = [float(loss_sum.detach()), float((logits.argmax(1) != y).sum()), len(y)]
            totals = [t + v for t, v in zip(totals, now)]
            window = [t + v for t, v in zip(window, now)]
            iteration = epoch * steps + step + 1
            if cfg.log_every and (iteration % cfg.log_every == 0 or iteration == cfg.epochs * steps):
                w_loss, w_err, w_seen = world.sum(window) if ddp else window
                iters.append(dict(model=spec.name, seed=seed, iteration=iteration, epoch=epoch + (step + 1) / steps,
                                  train_loss=w_loss / w_seen, train_err=100.0 * w_err / w_seen))
                window = [0.0, 0.0, 0.0]
            if on_step is not None:
                on_step(dict(model=spec.name, seed=seed, epoch=epoch + 1, step=step + 1, steps=steps))
        seconds = time.perf_counter() - start
        loss, errors, seen = world.sum(totals) if ddp else totals
        if ddp and cfg.log_every:  # the window's global sums on rank 0, as its record keeps them
            summed = world.sum(window)  # every rank takes part
            window = summed if world.rank == 0 else [0.0, 0.0, 0.0]
        evaluated = world if ddp else _World()
        test_loss, test_err = evaluate(model, d.x_test, d.y_test, device, evaluated,
                                       amp_dtype if cfg.amp else None)
        train_eval_loss = train_eval_err = None
        if epoch + 1 == cfg.epochs:  # the final weights on the training set, in eval mode
            train_eval_loss, train_eval_err = evaluate(model, d.x_train, d.y_train, device, evaluated,
                                                       amp_dtype if cfg.amp else None)
        rows.append(dict(model=spec.name, seed=seed, epoch=epoch + 1, lr=opt.param_groups[-1]["lr"],
                         train_loss=loss / seen, train_err=100.0 * errors / seen,
                         test_loss=test_loss, test_err=test_err, seconds=seconds,
                         images_per_s=seen / seconds, train_eval_loss=train_eval_loss,
                         train_eval_err=train_eval_err))
        if not ddp or world.rank == 0:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            record = dict(config=cfg.model_dump(), model=spec.name, seed=seed, rows=rows, iters=iters, window=window,
                          params=sum(p.numel() for p in model.parameters()), env=env,
                          model_state=model.state_dict(), optim_state=opt.state_dict())
            replace_atomically(path, lambda tmp: torch.save(record, tmp))  # never half-written
        if on_record is not None:  # the files first: a callback that stops the study finds them
            on_record(rows, iters)
        if on_epoch is not None:
            on_epoch(rows[-1])
    if ddp:
        _check_replicas(model, world)
    return rows


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device,
             world: _World, amp_dtype=None, batch: int = 500) -> tuple[float, float]:
    """(mean loss, error %) in eval mode; each process takes its slice, sums are all-reduced."""
    was = model.training
    model.eval()
    xs, ys = x.tensor_split(world.size)[world.rank], y.tensor_split(world.size)[world.rank]
    loss = errors = 0.0
    for i in range(0, len(ys), batch):
        xb, yb = xs[i:i + batch].to(device), ys[i:i + batch].to(device)
        with torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext():
            logits = model(xb).float()
        loss += float(F.cross_entropy(logits, yb, reduction="sum"))
        errors += float((logits.argmax(1) != yb).sum())
    model.train(was)
    loss, errors = world.sum([loss, errors])
    return loss / len(y), 100.0 * errors / len(y)


def _check_replicas(model: torch.nn.Module, world: _World) -> None:
    """DDP's promise, checked: every rank ends with the same weights."""
    flat = torch.cat([p.detach().double().flatten() for p in model.parameters()])
    sums = [torch.zeros(2, dtype=torch.float64) for _ in range(world.size)]
    dist.all_gather(sums, torch.stack([flat.sum(), (flat * flat).sum()]).cpu())
    if any(not torch.equal(s, sums[0]) for s in sums):
        raise ResfamError("DDP replicas diverged: the ranks hold different weights")


def summarise(rows: list[dict], params: dict[str, int]) -> list[dict]:
    """One row per model: final errors over seeds (mean, standard deviation and the half-width
    of the 95% confidence interval of the mean, :func:`.stats.interval`), the training error in
    eval mode, best test error, time."""
    from statistics import fmean, stdev

    from .stats import interval

    out = []
    for name in dict.fromkeys(r["model"] for r in rows):
        runs: dict[int, list[dict]] = {}
        for r in rows:
            if r["model"] == name:
                runs.setdefault(r["seed"], []).append(r)
        last = [rs[-1] for rs in runs.values()]
        row = dict(model=name, params=params.get(name), seeds=len(runs), epochs=last[0]["epoch"])
        for key in ("train_err", "test_err", "train_eval_err"):
            values = [r[key] for r in last if r.get(key) is not None]
            if values:
                row[key] = fmean(values)
                row[f"{key}_sd"] = stdev(values) if len(values) > 1 else 0.0
                row[f"{key}_ci95"] = interval(values)[1]
        row.update(best_test_err=fmean([min(r["test_err"] for r in rs) for rs in runs.values()]),
                   train_loss=fmean([r["train_loss"] for r in last]),
                   seconds=fmean([sum(r["seconds"] for r in rs) for rs in runs.values()]),
                   images_per_s=fmean([r["images_per_s"] for rs in runs.values() for r in rs]))
        out.append(row)
    return out


STUDY_FILES = ("epochs.csv", "epochs.json", "summary.csv", "summary.json", "iterations.csv", "curves.png")
SUMMARY_FIELDS = ("model", "params", "seeds", "epochs", "train_err", "train_err_sd", "train_err_ci95",
                  "train_eval_err", "train_eval_err_sd", "train_eval_err_ci95", "test_err", "test_err_sd",
                  "test_err_ci95", "best_test_err", "train_loss", "seconds", "images_per_s")


def write_rows(out: str, epochs: list[dict], iterations: list[dict]) -> None:
    """``epochs.csv`` (and ``iterations.csv`` with ``log_every``), each replaced whole: written
    after every epoch, so a long study's progress can be read (and plotted) while it runs."""
    from ..comparison.report import render_rows

    write_text_atomically(os.path.join(out, "epochs.csv"),
                          render_rows(epochs, [(f, f) for f in EPOCH_FIELDS], "csv", {}, []))
    if iterations:
        write_text_atomically(os.path.join(out, "iterations.csv"),
                              render_rows(iterations, [(f, f) for f in ITER_FIELDS], "csv", {}, []))


def write_study(out: str, study: Study) -> None:
    """The study's result files: epochs and summary as csv and json (json with the environment
    and the pair tests), iterations.csv with ``log_every``."""
    from ..comparison.report import render_rows

    write_rows(out, study.epochs, study.iterations)
    write_text_atomically(os.path.join(out, "epochs.json"),
                          render_rows(study.epochs, [(f, f) for f in EPOCH_FIELDS], "json", study.meta, []))
    write_text_atomically(os.path.join(out, "summary.csv"),
                          render_rows(study.summary, [(f, f) for f in SUMMARY_FIELDS], "csv", study.meta, []))
    write_text_atomically(os.path.join(out, "summary.json"),
                          json.dumps({"meta": study.meta, "rows": study.summary, "tests": study.tests},
                                     indent=2, default=str) + "\n")


def check_study_folder(out) -> None:
    """``out`` checked before any training: a folder (made here if missing) where the study's
    files can be written; ``runs`` a folder; its result files regular files, if they exist."""
    out = make_folder(out, "runs")
    for name in STUDY_FILES:
        check_output(os.path.join(out, name), "--out")


def _init_from_env(device: torch.device, ranks: distributed.Ranks) -> bool:
    """Join the process group torchrun describes (``ranks``, checked by
    :func:`resfam.distributed.from_env`) when it has more than one process; True when this call
    did."""
    if ranks.world <= 1 or (dist.is_available() and dist.is_initialized()):
        return False
    if device.type == "cuda":
        torch.cuda.set_device(ranks.local_rank)
    distributed.join(ranks, "nccl" if device.type == "cuda" else "gloo")
    return True


def train(models: Union[str, Iterable[str]], *, seeds: Union[int, Iterable[int]] = 1,
          out: str = "resfam-train", resume: bool = False, device: Union[str, torch.device] = "cpu",
          on_epoch: Optional[Callable[[dict], None]] = None,
          on_step: Optional[Callable[[dict], None]] = None,
          pairs: Iterable[tuple[str, str]] = (), **options) -> Study:
    """Train every model with every seed under one recipe (``options``: :class:`TrainConfig`'s
    fields) and summarise; checkpoints and results go to ``out`` (``epochs.csv`` after every
    epoch, the rest at the end: :func:`write_study`). ``pairs``: (model A, model B) to test
    against each other on the final test and training errors (:func:`.stats.compare_pair`).
    Every argument is checked, and the data loaded, before the first model is built."""
    from ..comparison.sweep import select
    from ..comparison.timing import usable_device
    from .stats import compare_pair

    cfg = make_config(**options)
    if cfg.finetune and not cfg.pretrained:
        raise ArgumentError("finetune needs pretrained weights: pass pretrained=True, a tag or a "
                            "checkpoint path (--pretrained)")
    if not isinstance(models, (str, list, tuple)):
        raise ArgumentError(f"train() takes a model name, pattern or spec path, or a list of them, "
                            f"got {short_repr(models)}")
    requested = [models] if isinstance(models, str) else list(models)
    if not requested:  # select([]) means every bundled model: a study names its own
        raise ArgumentError("train() needs at least one model")
    names = select(requested)
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seed_list = list(range(seeds)) if seeds <= MAX_SEEDS else []
    else:
        seed_list = list(seeds) if isinstance(seeds, Iterable) and not isinstance(seeds, (str, bytes, dict)) else []
    if not seed_list or len(seed_list) > MAX_SEEDS or any(
            not isinstance(s, int) or isinstance(s, bool) or not 0 <= s <= TRAIN_MAX_SEED for s in seed_list):
        raise ArgumentError(f"seeds: a count from 1 to {MAX_SEEDS}, or a list of at most {MAX_SEEDS} "
                            f"whole numbers from 0 to 2**32 - 1, got {short_repr(seeds)}")
    if len(set(seed_list)) != len(seed_list):
        raise ArgumentError(f"seeds: {short_repr(seeds)} names a seed twice; each run is one "
                            "(model, seed) pair")
    specs = [get_spec(n) for n in names]  # every spec error before training starts
    pairs = [tuple(p) for p in pairs] if isinstance(pairs, (list, tuple)) else None
    known = [s.name for s in specs]
    if pairs is None or any(len(p) != 2 or not all(isinstance(m, str) for m in p) for p in pairs):
        raise ArgumentError("pairs: a list of (model A, model B) name pairs, e.g. "
                            "[('resnet56', 'resnet20')]")
    for a, b in pairs:
        for m in (a, b):
            if m not in known:
                hint = did_you_mean(m, known) or f"the study's models: {', '.join(known)}"
                raise ArgumentError(f"pairs: {m!r} is not a model of this study ({hint})")
    by_name: dict[str, Spec] = {}
    for spec in specs:  # rows and the summary are keyed by name: one network per name
        other = by_name.setdefault(spec.name, spec)
        if other is not spec:
            same = spec_digest(other) == spec_digest(spec)
            raise ArgumentError(f"two models of this study are both named {spec.name!r} ("
                                f"{other.file} and {spec.file})" + (
                                    ": the same network twice; list it once" if same else
                                    ", and they differ; give one of them another name: its "
                                    "spec's 'name:'"))
    if cfg.pretrained:  # a missing or foreign checkpoint, before the first run
        from ..factory import check_pretrained

        for spec in specs:
            check_pretrained(spec, cfg.pretrained)
    ranks = distributed.from_env()  # leftover torchrun variables, before anything is written
    check_study_folder(out)
    runs_dir = os.path.join(out, "runs")
    if not resume and os.path.isdir(runs_dir) and any(f.endswith(".pt") for f in os.listdir(runs_dir)):
        raise ResfamError(f"{out} already holds a study's runs; pass resume=True (--resume) to "
                          "continue it, or choose another out directory")
    device = usable_device(str(device))
    raw = datasets.load(cfg.data)
    for spec in specs:  # the data set is resized in memory at once, for each input side
        datasets.check_prepared_size(raw, cfg.img_size or spec.input_size)
    joined = _init_from_env(device, ranks)
    world = _World.current()
    if device.type == "cuda" and world.size > 1:
        device = torch.device("cuda", torch.cuda.current_device())
    live: dict[tuple[str, int], tuple[list, list]] = {}  # (model, seed) -> its rows so far

    def recorder(spec: Spec, seed: int):
        def update(rows: list[dict], iters: list[dict]) -> None:
            live[(spec.name, seed)] = (list(rows), list(iters))
            if world.rank == 0:
                write_rows(out, [r for rs, _ in live.values() for r in rs],
                           [r for _, its in live.values() for r in its])
        return update

    try:
        runs = [(s, seed) for s in specs for seed in seed_list]  # specs: a user file's too
        mine = runs if cfg.distribute == "ddp" or world.size == 1 else runs[world.rank::world.size]
        for spec, seed in mine:
            train_run(spec, seed, raw, cfg, out, device=device, world=world, resume=resume,
                      on_epoch=on_epoch, on_step=on_step, on_record=recorder(spec, seed))
        if world.size > 1:
            dist.barrier()
        rows, iterations, params = [], [], {}
        for spec, seed in runs:  # every run's record, whichever process trained it
            state = _load_run(_run_path(out, spec, seed), cfg)
            rows += state["rows"]
            iterations += state.get("iters", [])
            params[spec.name] = state["params"]
    finally:
        if joined:
            dist.destroy_process_group()
    meta = dict(torch=torch.__version__, device=str(device), processes=world.size,
                threads=torch.get_num_threads(), seeds=seed_list, **cfg.model_dump(),
                env=environment(device, world.size if cfg.distribute == "ddp" else 1),
                versions=_versions("torch", "timm", "numpy", "scipy"))
    tests = [compare_pair(rows, a, b, key) for a, b in pairs for key in ("test_err", "train_eval_err")]
    study = Study(epochs=rows, summary=summarise(rows, params), meta=meta, iterations=iterations, tests=tests)
    if world.rank == 0:
        write_study(out, study)
    return study


def _versions(*packages: str) -> dict[str, str]:
    """The installed version of each of ``packages`` (those not installed left out)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in packages:
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            pass
    return out
