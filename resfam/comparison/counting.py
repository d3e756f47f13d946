"""Counting: parameters, multiply-accumulates, the other ops, activations.

Conventions (stated in every output):

- **GMACs**: conv + linear multiply-accumulates, fvcore's unit (1 MAC = 1 "flop" in fvcore),
  the convention of torchvision's published ``_ops`` and timm's ``gmacs``. BatchNorm is not
  counted: it folds into the preceding conv at inference.
- **other ops (M)**: the element-wise work fvcore skips by default and that tells the families
  apart: additions (residual, Res2Net's split sums), multiplies and ``1 - T`` (Highway gates),
  sigmoids, activations (1 per output element), pooling (k*k per pooled output; the global pools,
  1 per input element). Padding, slicing and concatenation move data and count 0. Whatever
  fvcore still cannot count is reported as ``unsupported`` (op -> occurrences), never hidden.
- **GFLOPs**, where shown, is exactly ``2 * (GMACs + other)``.

fvcore is the primary counter (TorchScript tracing); :class:`FlopCounterModeCounter` counts the
same quantities with ``torch.utils.flop_counter.FlopCounterMode`` for torch builds where tracing
fails. Both run on a ``deepcopy(model).eval()`` under ``no_grad``: tracing executes the forward,
which in train mode would move BatchNorm statistics.
"""
from __future__ import annotations

import copy
import math
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

MAC_KEYS = ("conv", "linear", "addmm", "matmul", "mm", "bmm", "einsum")


@dataclass
class Counts:
    macs: int                      # conv + linear multiply-accumulates
    other: int                     # the element-wise ops listed above
    by_op: dict = field(default_factory=dict)
    unsupported: dict = field(default_factory=dict)
    counter: str = "fvcore"


def _numel(shape) -> int:
    return int(math.prod(shape)) if shape else 0


def _eval_copy(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).eval()


# --- fvcore ------------------------------------------------------------------------------

def _jit_shape(value) -> list[int]:
    from fvcore.nn.jit_handles import get_shape

    return get_shape(value) or []


def _jit_out(inputs, outputs) -> int:
    return _numel(_jit_shape(outputs[0]))


def _jit_in(inputs, outputs) -> int:
    return _numel(_jit_shape(inputs[0]))


def _jit_zero(inputs, outputs) -> int:
    return 0


def _jit_constant_list(value) -> list[int]:
    """A traced int-list argument: a constant, or a prim::ListConstruct of constants."""
    const = value.toIValue()
    if const is None:
        const = [v.toIValue() for v in value.node().inputs()]
    return list(const) if isinstance(const, (list, tuple)) else [const]


def _jit_pool(inputs, outputs) -> int:
    kernel = _jit_constant_list(inputs[1])
    kernel = kernel * 2 if len(kernel) == 1 else kernel
    return _numel(_jit_shape(outputs[0])) * _numel(kernel)


FVCORE_OTHER_HANDLES: dict[str, Callable] = {
    **{op: _jit_out for op in ("aten::add", "aten::add_", "aten::mul", "aten::mul_", "aten::rsub",
                               "aten::sub", "aten::sigmoid", "aten::sigmoid_", "aten::relu",
                               "aten::relu_", "aten::silu", "aten::silu_", "aten::gelu",
                               "aten::leaky_relu", "aten::leaky_relu_")},
    "aten::max_pool2d": _jit_pool,
    "aten::avg_pool2d": _jit_pool,
    "aten::adaptive_avg_pool2d": _jit_in,
    "aten::mean": _jit_in,           # the squeeze of SE / ECA / SK / split attention: a global pool
    "aten::batch_norm": _jit_zero,   # folded into convs at inference (fvcore's None handle
    "aten::pad": _jit_zero,          # does not skip it; a 0 handle does)
    "aten::constant_pad_nd": _jit_zero,
}
FVCORE_ZERO = {"batch_norm", "pad", "constant_pad_nd"}


def _import_fvcore():
    with warnings.catch_warnings():  # fvcore imports torch.jit APIs that warn
        warnings.simplefilter("ignore")
        from fvcore.nn import ActivationCountAnalysis, FlopCountAnalysis
    return FlopCountAnalysis, ActivationCountAnalysis


class FvcoreCounter:
    name = "fvcore"

    def count(self, model: nn.Module, inputs: torch.Tensor) -> Counts:
        FlopCountAnalysis, _ = _import_fvcore()
        model = _eval_copy(model)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fca = FlopCountAnalysis(model, inputs).set_op_handle(**FVCORE_OTHER_HANDLES)
            fca.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            by_op = dict(fca.by_operator())
            unsupported = dict(fca.unsupported_ops())
        macs = sum(v for k, v in by_op.items() if k in MAC_KEYS)
        other = sum(v for k, v in by_op.items() if k not in MAC_KEYS)
        return Counts(int(macs), int(other), by_op, unsupported, self.name)

    def activations(self, model: nn.Module, inputs: torch.Tensor) -> int:
        _, ActivationCountAnalysis = _import_fvcore()
        model = _eval_copy(model)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            aca = ActivationCountAnalysis(model, inputs)
            aca.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            return int(aca.total())


# --- torch.utils.flop_counter ---------------------------------------------------------------

def _fc_out(*args, out_shape=None, **kwargs) -> int:
    return _numel(out_shape)


def _fc_in(x_shape, *args, out_shape=None, **kwargs) -> int:
    return _numel(x_shape)


def _fc_pool(x_shape, kernel_size, *args, out_shape=None, **kwargs) -> int:
    out = out_shape[0] if isinstance(out_shape, (tuple, list)) and isinstance(out_shape[0], (tuple, list, torch.Size)) else out_shape
    kernel = kernel_size if isinstance(kernel_size, (list, tuple)) else [kernel_size, kernel_size]
    if len(kernel) == 1:
        kernel = [kernel[0], kernel[0]]
    return _numel(out) * _numel(kernel)


def _flop_counter_other_mapping() -> dict:
    """Formulas keyed by op packet (FlopCounterMode looks ops up by their overload packet)."""
    aten = torch.ops.aten
    elementwise = [aten.add, aten.add_, aten.mul, aten.mul_, aten.rsub, aten.sub, aten.sigmoid,
                   aten.sigmoid_, aten.relu, aten.relu_, aten.silu, aten.silu_, aten.gelu,
                   aten.leaky_relu, aten.leaky_relu_]
    mapping: dict[Any, Callable] = {op: _fc_out for op in elementwise}
    mapping[aten.max_pool2d_with_indices] = _fc_pool
    mapping[aten.avg_pool2d] = _fc_pool
    mapping[aten.mean] = _fc_in                 # the global average pool
    mapping[aten._adaptive_avg_pool2d] = _fc_in
    return mapping


MAC_PACKETS = ("convolution", "addmm", "mm", "bmm", "_convolution")


class FlopCounterModeCounter:
    """The same counts with torch's own dispatcher-level counter (no TorchScript)."""

    name = "torch"

    def count(self, model: nn.Module, inputs: torch.Tensor) -> Counts:
        from torch.utils.flop_counter import FlopCounterMode

        model = _eval_copy(model)
        other_ops = _flop_counter_other_mapping()
        with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=other_ops) as fc:
            model(inputs)
        by_op = Counter()
        for op, n in fc.get_flop_counts()["Global"].items():
            by_op[getattr(op, "__name__", str(op)).split(".")[0]] += n
        macs = sum(v for k, v in by_op.items() if k in MAC_PACKETS) // 2  # it counts 2 per MAC
        other = sum(v for k, v in by_op.items() if k not in MAC_PACKETS)
        return Counts(int(macs), int(other), dict(by_op), {}, self.name)

    def activations(self, model: nn.Module, inputs: torch.Tensor) -> int:
        """The outputs of convolutions and matrix products, counted at the dispatcher (fvcore's
        ``ActivationCountAnalysis`` convention)."""
        model, counting = _eval_copy(model), _OutputCount()
        with torch.no_grad(), counting:
            model(inputs)
        return counting.total


class _OutputCount(TorchDispatchMode):
    OPS = {torch.ops.aten.convolution.default, torch.ops.aten.addmm.default,
           torch.ops.aten.mm.default, torch.ops.aten.bmm.default}

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func in self.OPS:
            self.total += out.numel()
        return out


def default_counter():
    """fvcore where it imports and traces; FlopCounterMode otherwise."""
    try:
        _import_fvcore()
        return FvcoreCounter()
    except Exception:  # pragma: no cover - fvcore missing or broken on this torch
        return FlopCounterModeCounter()


def count_params(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameters."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable
