"""Short, reproducible training studies: the degradation problem measured (He et al. 2016, Fig. 1
and Fig. 6: deeper *plain* nets reach a higher training error; residual ones do not).

Every run trains one build on one data set with one seed under the same recipe: SGD with momentum
and weight decay (He et al. 2016, Sec. 3.4 / 4.2), a cosine (Loshchilov & Hutter 2017) or step
schedule (/10 at 50% and 75% of training, the CIFAR recipe's 32k and 48k of 64k iterations), an
optional linear warm-up (Goyal et al. 2017), and the CIFAR augmentation where it applies
(:func:`resfam.trainability.data.augment`). Training error is the running error of the epoch in
training mode, as the papers plot it; test error is measured in eval mode after each epoch.

Everything random is seeded from (seed, epoch): initialisation, order, augmentation, dropout. A run
checkpoints after every epoch, and ``resume=True`` continues it exactly (same numbers as an
uninterrupted run). Under ``torchrun`` the study uses every process: ``distribute='ddp'`` trains
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
from ..errors import ArgumentError, CheckpointError, ResfamError, first_line, short_repr
from ..factory import build
from ..files import check_output, replace_atomically
from .options import MAX_EPOCHS, MAX_SEEDS, TRAIN_MAX_SEED
from ..spec.registry import get_spec
from ..spec.schema import Spec
from . import data as datasets

EPOCH_FIELDS = ("model", "seed", "epoch", "lr", "train_loss", "train_err", "test_loss", "test_err",
                "seconds", "images_per_s")


MAX_SEED = TRAIN_MAX_SEED


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


@dataclass
class Study:
    """What :func:`train` returns: per-epoch rows, one summary row per model, the environment."""

    epochs: list[dict] = field(default_factory=list)
    summary: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)


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
                 optim_state=dict)
    for key, kind in kinds.items():
        if not isinstance(state.get(key), kind):
            return f"'{key}' is missing or not a {kind.__name__}"
    for row in state["rows"]:
        if not isinstance(row, dict) or any(k not in row for k in EPOCH_FIELDS):
            return "a row of its epochs lacks a field"
    return ""


def _load_run(path: str, cfg: TrainConfig) -> Optional[dict]:
    if not os.path.lexists(path):
        return None
    if not os.path.isfile(path):  # a FIFO would block torch.load for ever
        raise CheckpointError(f"{path}: not a regular file; delete it to start that run again")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a damaged file is the user's to remove
        raise CheckpointError(f"{path}: cannot be read ({type(e).__name__}: {e}); delete it to "
                              "start that run again") from None
    problem = _record_problem(state)
    if problem:
        raise CheckpointError(f"{path}: not a resfam-train run record ({problem}); delete it to "
                              "start that run again")
    if state.get("config") != cfg.model_dump():
        saved = state.get("config") or {}
        diff = sorted(k for k in cfg.model_dump() if saved.get(k) != getattr(cfg, k))
        raise ResfamError(f"{path} was trained with other options ({', '.join(diff)}); resume with "
                          "the same options, or write this study to another --out")
    return state


def _batches(n: int, batch: int, world: int) -> int:
    """Steps per epoch; a last batch too small to give every process a sample is dropped."""
    return n // batch + (1 if n % batch >= world else 0)


@torch.enable_grad()  # training, whatever grad mode the caller is in
def train_run(name: Union[str, Spec], seed: int, raw: datasets.Data, cfg: TrainConfig, out: str, *,
              device: torch.device, world: _World, resume: bool = False,
              on_epoch: Optional[Callable[[dict], None]] = None) -> list[dict]:
    """Train one build (a name, spec file or resolved Spec) with one seed (see the module
    docstring); returns its epoch rows."""
    spec = get_spec(name)
    side = cfg.img_size or spec.input_size
    d = datasets.prepare(raw, side)
    ddp = world.size > 1 and cfg.distribute == "ddp"
    path = _run_path(out, spec, seed)
    state = _load_run(path, cfg) if resume else None
    torch.manual_seed(seed)
    kwargs = {"norm_layer": cfg.norm_layer} if cfg.norm_layer else {}
    model = build(spec, num_classes=raw.num_classes, in_chans=raw.channels,
                  zero_init_last=cfg.zero_init_last, **kwargs).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay)
    rows: list[dict] = []
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
                group["lr"] = lr_at(cfg, epoch * steps + step, steps)
            with torch.autocast(device.type, dtype=amp_dtype) if cfg.amp else nullcontext():
                logits = net(x)
                loss_sum = F.cross_entropy(logits.float(), y, reduction="sum")
            # the mean over the *global* batch; DDP averages gradients over ranks, hence * parts
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss_sum * parts / len(idx)).backward()
            scaler.step(opt)
            scaler.update()
            totals[0] += float(loss_sum.detach())
            totals[1] += float((logits.argmax(1) != y).sum())
            totals[2] += len(y)
        seconds = time.perf_counter() - start
        loss, errors, seen = world.sum(totals) if ddp else totals
        test_loss, test_err = evaluate(model, d.x_test, d.y_test, device, world if ddp else _World(),
                                       amp_dtype if cfg.amp else None)
        rows.append(dict(model=spec.name, seed=seed, epoch=epoch + 1, lr=opt.param_groups[0]["lr"],
                         train_loss=loss / seen, train_err=100.0 * errors / seen,
                         test_loss=test_loss, test_err=test_err, seconds=seconds,
                         images_per_s=seen / seconds))
        if not ddp or world.rank == 0:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            record = dict(config=cfg.model_dump(), model=spec.name, seed=seed, rows=rows,
                          params=sum(p.numel() for p in model.parameters()),
                          model_state=model.state_dict(), optim_state=opt.state_dict())
            replace_atomically(path, lambda tmp: torch.save(record, tmp))  # never half-written
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
    """One row per model: final errors (mean and spread over seeds), best test error, time."""
    out = []
    for name in dict.fromkeys(r["model"] for r in rows):
        runs: dict[int, list[dict]] = {}
        for r in rows:
            if r["model"] == name:
                runs.setdefault(r["seed"], []).append(r)
        last = [rs[-1] for rs in runs.values()]
        t = torch.tensor

        def stat(values):
            v = t(values, dtype=torch.float64)
            return float(v.mean()), (float(v.std()) if len(v) > 1 else 0.0)

        tr, tr_sd = stat([r["train_err"] for r in last])
        te, te_sd = stat([r["test_err"] for r in last])
        best = stat([min(r["test_err"] for r in rs) for rs in runs.values()])[0]
        out.append(dict(model=name, params=params.get(name), seeds=len(runs), epochs=last[0]["epoch"],
                        train_err=tr, train_err_sd=tr_sd, test_err=te, test_err_sd=te_sd,
                        best_test_err=best, train_loss=stat([r["train_loss"] for r in last])[0],
                        seconds=stat([sum(r["seconds"] for r in rs) for rs in runs.values()])[0],
                        images_per_s=stat([r["images_per_s"] for rs in runs.values() for r in rs])[0]))
    return out


STUDY_FILES = ("epochs.csv", "epochs.json", "summary.csv", "summary.json", "curves.png")


def check_study_folder(out) -> None:
    """``out`` checked before any training: a folder (made here if missing) where the study's
    files can be written; ``runs`` a folder; its result files regular files, if they exist."""
    if not isinstance(out, (str, os.PathLike)) or not os.fspath(out):
        raise ArgumentError(f"out must be a folder path, got {short_repr(out)}")
    out = os.fspath(out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise ResfamError(f"--out {out}: is a file, not a folder; give a folder for the study")
    try:
        os.makedirs(os.path.join(out, "runs"), exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ResfamError(f"--out {out}: {os.path.join(out, 'runs')} is a file, not a folder; "
                          "move it, or give another --out") from None
    except OSError as e:
        raise ResfamError(f"--out {out}: cannot make the study's folders ({e.strerror})") from None
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
          on_epoch: Optional[Callable[[dict], None]] = None, **options) -> Study:
    """Train every model with every seed under one recipe (``options``: :class:`TrainConfig`'s
    fields) and summarise; checkpoints and results go to ``out``. Every argument is checked, and
    the data loaded, before the first model is built."""
    from ..comparison.sweep import select
    from ..comparison.timing import usable_device

    cfg = make_config(**options)
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
            not isinstance(s, int) or isinstance(s, bool) or not 0 <= s <= MAX_SEED for s in seed_list):
        raise ArgumentError(f"seeds: a count from 1 to {MAX_SEEDS}, or a list of at most {MAX_SEEDS} "
                            f"whole numbers from 0 to 2**32 - 1, got {short_repr(seeds)}")
    if len(set(seed_list)) != len(seed_list):
        raise ArgumentError(f"seeds: {short_repr(seeds)} names a seed twice; each run is one "
                            "(model, seed) pair")
    specs = [get_spec(n) for n in names]  # every spec error before training starts
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
    try:
        runs = [(s, seed) for s in specs for seed in seed_list]  # specs: a user file's too
        mine = runs if cfg.distribute == "ddp" or world.size == 1 else runs[world.rank::world.size]
        for spec, seed in mine:
            train_run(spec, seed, raw, cfg, out, device=device, world=world, resume=resume,
                      on_epoch=on_epoch)
        if world.size > 1:
            dist.barrier()
        rows, params = [], {}
        for spec, seed in runs:  # every run's record, whichever process trained it
            state = _load_run(_run_path(out, spec, seed), cfg)
            rows += state["rows"]
            params[spec.name] = state["params"]
    finally:
        if joined:
            dist.destroy_process_group()
    meta = dict(torch=torch.__version__, device=str(device), processes=world.size,
                threads=torch.get_num_threads(), seeds=seed_list, **cfg.model_dump())
    return Study(epochs=rows, summary=summarise(rows, params), meta=meta)
