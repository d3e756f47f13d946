"""``resfam.deploy(model, engine=...)``: the network on an inference engine, checked against eager.

Every engine is built for one input shape (ONNX Runtime and OpenVINO compile static shapes;
inductor specialises too) and checked on an input of that shape against the eager network: the
largest absolute difference of any output, over the largest eager magnitude (at least 1), must
stay within :data:`TOLERANCE` (1e-4 in float32; 1e-10 in float64, which the torch engines run).
An input of another shape builds and checks the engine again for it (seconds, once per shape).
``engine='auto'`` builds every installed engine, times them alternately on the example (the way
``resfam-compare --engine`` does) and keeps the fastest; its ``timings`` say what it measured.
"""
from __future__ import annotations

import copy
import statistics
from typing import Optional, Sequence

import torch
from torch import nn

from ..errors import ArgumentError, ResfamError, short_repr
from .names import EXTRA, missing
from .runners import RUNNERS, one_export

ENGINES = (*RUNNERS, "auto")
TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-10}


class EngineError(ResfamError):
    """An engine's outputs differ from eager's beyond the tolerance, or it failed to build."""


def installed(engines: Sequence[str] = tuple(RUNNERS)) -> list[str]:
    """The engines whose packages are importable here (``eager``, ``resfam`` and ``compile``
    always are)."""
    return [e for e in engines if not missing(e)]


def check_engine(engine) -> str:
    if not isinstance(engine, str) or engine not in ENGINES:
        from ..errors import did_you_mean

        hint = did_you_mean(engine, ENGINES) if isinstance(engine, str) else ""
        raise ArgumentError(f"engine {short_repr(engine)} is not one of {', '.join(ENGINES)}"
                            + (f" ({hint})" if hint else ""))
    lacking = missing(engine)
    if lacking:
        raise ArgumentError(f"engine {engine!r} needs {', '.join(lacking)}, not installed: "
                            f"pip install \"resfam[{EXTRA}]\"")
    return engine


def outputs_differ(eager: list, other: list) -> float:
    """Largest absolute difference of any output over the largest eager magnitude (at least 1);
    infinity where the outputs' number or shapes differ."""
    if len(eager) != len(other) or any(a.shape != b.shape for a, b in zip(eager, other)):
        return float("inf")
    scale = max([1.0] + [a.abs().max().item() for a in eager if a.numel()])
    return max([0.0] + [(a.double() - b.to(a.device).double()).abs().max().item()
                        for a, b in zip(eager, other) if a.numel()]) / scale


class Deployed:
    """A network on one engine: call it like the network (``deployed(x)``); ``engine`` names
    the engine, ``error`` is the checked difference from eager on the example (see
    :func:`outputs_differ`), ``timings`` (``auto`` only) each candidate's median ms."""

    def __init__(self, engine: str, model: nn.Module, example: torch.Tensor, check: bool):
        self.engine, self._model, self._check = engine, model, check
        self.dtype, self.device = example.dtype, example.device
        self.timings: dict[str, float] = {}
        self._runners: dict = {}
        self.error = self._prepare(example)

    def _prepare(self, example: torch.Tensor) -> float:
        with torch.inference_mode():
            out = self._model(example)
        flat, self._structure = torch.utils._pytree.tree_flatten(out)
        try:
            runner = RUNNERS[self.engine](self._model, example)
            with torch.inference_mode():
                got = runner(example)
        except ArgumentError:
            raise
        except Exception as e:  # noqa: BLE001 - an exporter's or engine's own failure, named
            raise EngineError(f"engine {self.engine!r} could not run this network at input "
                              f"{tuple(example.shape)}: {type(e).__name__}: "
                              f"{str(e).strip().splitlines()[0] if str(e).strip() else ''}") from e
        error = outputs_differ(flat, got)
        if self._check and error > TOLERANCE[example.dtype]:
            raise EngineError(f"engine {self.engine!r}: outputs differ from eager by {error:.3g} of "
                              f"their scale at input {tuple(example.shape)} (tolerance "
                              f"{TOLERANCE[example.dtype]:g} in {str(example.dtype)[6:]}); use "
                              "engine 'eager' for this network")
        self._runners[tuple(example.shape)] = runner
        return error

    def runner(self, x: torch.Tensor):
        """The flat-output function for ``x``'s shape (built and checked on first use)."""
        if not isinstance(x, torch.Tensor) or x.dtype != self.dtype or x.device != self.device:
            raise ArgumentError(f"deployed network ({self.engine}) takes a {str(self.dtype)[6:]} "
                                f"tensor on {self.device}, got {short_repr(x)}")
        shape = tuple(x.shape)
        if shape not in self._runners:
            self._prepare(torch.randn_like(x))
        return self._runners[shape]

    def __call__(self, x: torch.Tensor):
        run = self.runner(x)
        with torch.inference_mode():
            return torch.utils._pytree.tree_unflatten(run(x), self._structure)

    def __repr__(self) -> str:
        shapes = ", ".join(str(s) for s in self._runners)
        return f"Deployed(engine={self.engine!r}, shapes=[{shapes}], error={self.error:.2g})"


def default_example(model: nn.Module) -> torch.Tensor:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    size = cfg.get("input_size") if isinstance(cfg, dict) else None
    if not size:
        raise ArgumentError("deploy(): this model has no pretrained_cfg['input_size']; pass "
                            "example=torch.randn(1, 3, H, W) at the shape it will run")
    p = next(iter(model.parameters()), None)
    return torch.randn(1, *size, device=p.device if p is not None else "cpu",
                       dtype=p.dtype if p is not None else torch.float32)


def deploy(model: nn.Module, engine: str = "auto", *, example: Optional[torch.Tensor] = None,
           check: bool = True, candidates: Optional[Sequence[str]] = None, runs: int = 5) -> Deployed:
    """``model`` on ``engine`` (one of :data:`ENGINES`), built for ``example``'s shape (default:
    one image at the model's pretrained input size) and checked against eager there (``check``);
    ``auto`` times ``candidates`` (default: every installed engine) on the example, ``runs``
    alternating rounds, and keeps the fastest. The caller's model is not changed."""
    if not isinstance(model, nn.Module):
        raise ArgumentError(f"deploy() expects an nn.Module (resfam.build), got {type(model).__name__}")
    check_engine(engine)
    if not isinstance(check, bool):
        raise ArgumentError(f"check must be True or False, got {short_repr(check)}")
    if isinstance(runs, bool) or not isinstance(runs, int) or not 1 <= runs <= 1000:
        raise ArgumentError(f"runs must be a whole number from 1 to 1000, got {short_repr(runs)}")
    if example is None:
        example = default_example(model)
    if not isinstance(example, torch.Tensor) or example.dim() != 4:
        raise ArgumentError(f"example must be an image batch (N, C, H, W), got {short_repr(example)}")
    if model.training:
        model = copy.deepcopy(model).eval()
    if engine != "auto":
        return Deployed(engine, model, example, check)
    names = list(candidates) if candidates is not None else installed()
    for name in names:
        if name == "auto":
            raise ArgumentError("candidates: 'auto' cannot be its own candidate")
        check_engine(name)
    built = {}
    with one_export():  # ONNX Runtime and OpenVINO read one export
        for name in names:
            try:
                built[name] = Deployed(name, model, example, check)
            except ArgumentError:  # float64, a GPU: not this engine's case; the others go on
                if candidates is not None:
                    raise
    from ..comparison.timing import alternate_many

    fns = [(lambda d: (lambda: d.runner(example)(example)))(d) for d in built.values()]
    timings = alternate_many(fns, example.device, warmup=2, runs=runs)
    medians = {name: statistics.median(t.samples) for name, t in zip(built, timings)}
    best = min(medians, key=medians.get)
    chosen = built[best]
    chosen.timings = {k: round(v, 3) for k, v in medians.items()}
    return chosen
