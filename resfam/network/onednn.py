"""Convolutions handed to oneDNN directly, with weights packed once and ReLU fused.

Eager PyTorch chooses a convolution kernel per call. On CPU with one thread and a batch under
16 it sends every 1x1 convolution (a ResNet bottleneck's two of three) to
``_slow_conv2d_forward`` (im2col + the BLAS gemm), and a oneDNN convolution reorders its
weight into oneDNN's blocked layout on every call. Measured on this project's 2-vCPU machine
(``benchmarks/engines.py``, docs/performance.md) those two account for most of the distance
between eager resnet50 (~120 GFLOP/s) and ONNX Runtime (~250 GFLOP/s).

:func:`pack_convolutions` replaces each ``nn.Conv2d`` (zero padding, float32, CPU) with a
:class:`PackedConv2d` that calls oneDNN's convolution (the op ``torch.compile``'s CPU backend
uses) on a weight reordered once, and folds an activation that is the convolution's only
consumer into it as a oneDNN post-op: ``y = max(0, W * x + b)`` in one pass over the output (a
ReLU; also a sigmoid, as the highway gate's ``T = sigmoid(W_T x + b_T)`` and an SE gate's, and a
SiLU). A residual
block's last convolution takes the addition of the shortcut (and the ReLU after it) the same
way, ``y = max(0, W * x + b + s)`` (He et al. 2016, Eq. 1 and the ReLU after it), so the
block's output is written once instead of three times. The numbers are
the same convolution's up to float rounding (tests/test_engines.py holds every family to 1e-4 of
eager's scale).

Outside inference (autograd recording) or for another dtype or device, a packed convolution
runs the plain ``F.conv2d`` on the weight it keeps, so the module stays correct anywhere.
"""
from __future__ import annotations

import operator
from typing import Optional

import torch
import torch.nn.functional as F
from torch import fx, nn

from . import dataflow


def available() -> bool:
    """oneDNN's convolution is in this torch build (every x86 and Arm CPU wheel)."""
    return bool(torch.backends.mkldnn.is_available()) and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


def packable(conv: nn.Module) -> bool:
    return (type(conv) is nn.Conv2d and conv.padding_mode == "zeros"
            and not isinstance(conv.padding, str) and conv.weight.dtype == torch.float32
            and conv.weight.device.type == "cpu")


ACTIVATIONS = {"relu": F.relu, "sigmoid": torch.sigmoid, "swish": F.silu}  # oneDNN's names


class PackedConv2d(nn.Module):
    """``conv`` (then ``+ other`` where ``add=True``, then ``act``, one of
    :data:`ACTIVATIONS`, where given; after an addition only ``relu``) on oneDNN with its weight
    packed on the first call, for that call's input size (oneDNN reorders for other sizes
    itself)."""

    fresh_output = True  # a new tensor, or the dead, fresh ``other`` written over (dataflow.fresh)

    def __init__(self, conv: nn.Conv2d, act: Optional[str] = None, add: bool = False,
                 inplace: bool = False):
        super().__init__()
        if act is not None and (act not in ACTIVATIONS or (add and act != "relu")):
            raise ValueError(f"PackedConv2d: act {act!r} is not one of {sorted(ACTIVATIONS)} "
                             "(after an addition: relu)")
        self.add, self.inplace = add, inplace  # inplace: the sum is written into ``other``
        self.weight = nn.Parameter(conv.weight.detach().clone(), requires_grad=False)
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().clone(),
                                                                requires_grad=False)
        self.stride, self.padding = list(conv.stride), list(conv.padding)
        self.dilation, self.groups = list(conv.dilation), conv.groups
        self.act = act
        self._packed: Optional[torch.Tensor] = None

    def extra_repr(self) -> str:
        out, inp, kh, kw = self.weight.shape
        return (f"{inp * self.groups}, {out}, kernel_size=({kh}, {kw}), stride={tuple(self.stride)}, "
                f"padding={tuple(self.padding)}, groups={self.groups}, add={self.add}, "
                f"act={self.act}")

    def _out_shape(self, x: torch.Tensor) -> tuple[int, int, int, int]:
        h, w = ((x.shape[2 + i] + 2 * self.padding[i] - self.dilation[i] * (self.weight.shape[2 + i] - 1)
                 - 1) // self.stride[i] + 1 for i in range(2))
        return (x.shape[0], self.weight.shape[0], h, w)

    def _plain(self, x: torch.Tensor, other: Optional[torch.Tensor]) -> torch.Tensor:
        y = F.conv2d(x, self.weight.to(x.dtype), None if self.bias is None else self.bias.to(x.dtype),
                     self.stride, self.padding, self.dilation, self.groups)
        if other is not None:
            y = y + other
        return ACTIVATIONS[self.act](y) if self.act else y

    def forward(self, x: torch.Tensor, other: Optional[torch.Tensor] = None) -> torch.Tensor:
        if (x.dtype != torch.float32 or x.device.type != "cpu" or x.dim() != 4
                or (torch.is_grad_enabled() and x.requires_grad)
                or (other is not None and (other.dtype != x.dtype or other.dim() != 4
                                           or tuple(other.shape) != self._out_shape(x)))):
            return self._plain(x, other)  # (a broadcasting add, as GCNet's, is not fused)
        if self._packed is None:
            self._packed = torch._C._nn.mkldnn_reorder_conv2d_weight(
                self.weight.detach().to_mkldnn(), self.padding, self.stride, self.dilation,
                self.groups, list(x.shape))
        if other is None:
            return torch.ops.mkldnn._convolution_pointwise(
                x, self._packed, self.bias, self.padding, self.stride, self.dilation, self.groups,
                self.act or "none", [], "")
        unary = self.act
        if self.inplace and other.is_contiguous(memory_format=torch.channels_last):
            return torch.ops.mkldnn._convolution_pointwise_.binary(
                other, x, self._packed, self.bias, self.padding, self.stride, self.dilation,
                self.groups, "add", 1.0, unary, [], "")
        return torch.ops.mkldnn._convolution_pointwise.binary(
            x, other, self._packed, self.bias, self.padding, self.stride, self.dilation,
            self.groups, "add", None, unary, [], "")

    def __deepcopy__(self, memo):  # a packed (oneDNN) tensor cannot be copied: pack again
        twin = PackedConv2d.__new__(PackedConv2d)
        nn.Module.__init__(twin)
        twin.weight = nn.Parameter(self.weight.detach().clone(), requires_grad=False)
        twin.bias = None if self.bias is None else nn.Parameter(self.bias.detach().clone(),
                                                                requires_grad=False)
        twin.stride, twin.padding, twin.dilation = list(self.stride), list(self.padding), list(self.dilation)
        twin.groups, twin.act, twin.add, twin.inplace = self.groups, self.act, self.add, self.inplace
        twin._packed = None
        return twin


MODULE_ACTS = {nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.SiLU: "swish"}
FUNCTION_ACTS = {F.relu: "relu", torch.relu: "relu", torch.relu_: "relu", torch.sigmoid: "sigmoid",
                 F.sigmoid: "sigmoid", F.silu: "swish"}


def _activation(node: fx.Node, modules: dict) -> Optional[str]:
    """oneDNN's name for the activation ``node`` applies to its one input, else None."""
    if node.op == "call_module":
        return MODULE_ACTS.get(type(modules.get(node.target)))
    if node.op != "call_function" or len(node.args) != 1 or set(node.kwargs) - {"inplace"}:
        return None
    return FUNCTION_ACTS.get(node.target)


def _is_add(node: fx.Node) -> bool:
    return (node.op == "call_function" and node.target in (operator.add, operator.iadd, torch.add)
            and len(node.args) == 2 and not node.kwargs
            and all(isinstance(a, fx.Node) for a in node.args))


def pack_convolutions(model: nn.Module) -> nn.Module:
    """Every packable convolution of ``model`` (in place) as a :class:`PackedConv2d`; on an fx
    GraphModule (what BatchNorm folding returns) a ReLU that is a convolution's only consumer is
    fused into it, and so is an addition that is its only consumer (with the ReLU after that).
    ``model`` is returned."""
    if not isinstance(model, fx.GraphModule):
        return _swap(model)
    modules = dict(model.named_modules())
    dataflow.drop_identities(model, modules)
    graph = model.graph
    for node in list(graph.nodes):
        conv = modules.get(node.target) if node.op == "call_module" else None
        if conv is None or not packable(conv) or len(node.args) != 1:
            continue
        user = dataflow.single_user(node)
        add = user if user is not None and _is_add(user) else None
        last = add or node
        after = dataflow.single_user(last)
        act = None if after is None else _activation(after, modules)
        if add is not None and act != "relu":  # oneDNN's conv + add takes a ReLU after it
            act = None
        other = None if add is None else add.args[1] if add.args[0] is node else add.args[0]
        inplace = other is not None and dataflow.fresh(other, modules) and dataflow.dead_after(other, add)
        fused = PackedConv2d(conv, act=act, add=add is not None, inplace=inplace)
        _replace(model, node.target, fused)
        modules[node.target] = fused
        if add is None:
            if act:
                after.replace_all_uses_with(node)
                graph.erase_node(after)
            continue
        with graph.inserting_before(add):
            new = graph.call_module(node.target, (node.args[0], other))
        (after if act else add).replace_all_uses_with(new)
        if act:
            graph.erase_node(after)
        graph.erase_node(add)
        graph.erase_node(node)
    graph.eliminate_dead_code()
    graph.lint()
    model.recompile()
    return _swap(model)  # convolutions fx kept inside a leaf module (none in resfam's nets)


def _replace(root: nn.Module, target: str, new: nn.Module) -> None:
    parent, _, name = target.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, name, new)


def _swap(module: nn.Module) -> nn.Module:
    for name, child in module.named_children():
        if packable(child):
            setattr(module, name, PackedConv2d(child))
        else:
            _swap(child)
    return module
