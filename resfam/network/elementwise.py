"""A block's merge of branch and shortcut as one elementwise pass, on the traced network.

Eager, each arithmetic operator reads and writes a whole feature map. Two merges the specs build
are one fused op each:

- the highway gate ``F * T + C * (1 - T)`` (Srivastava et al. 2015, Eq. 3) is
  ``lerp(C, F, T) = C + T (F - C)``: one pass instead of four (two products, ``1 - T``, the sum);
- a scaled branch joining its shortcut, ``u * s + C``: an SE / ECA gate's ``s`` (Hu et al. 2018,
  Eq. 4) before the residual addition (He et al. 2016, Eq. 1), or a normaliser-free block's
  ``alpha`` (Brock et al. 2021a, Sec. 4), is ``addcmul(C, u, s)`` (``add(C, u, alpha=s)`` for a
  number): one pass, and no product held to be added.

:func:`fuse_merges` rewrites both patterns in an fx graph (what BatchNorm folding returns). The
result is written into ``C`` where ``C`` is a tensor of the output's shape that no later op reads
and no one else holds (a convolution's or pool's fresh output), as the oneDNN convolution's fused
addition is. Values equal eager's up to float rounding; ONNX export is untouched (it traces the
network itself, and ONNX's ``lerp`` would lower to nine ops).
"""
from __future__ import annotations

import numbers
import operator

import torch
from torch import fx

from . import dataflow

ADDS = (operator.add, operator.iadd, torch.add)
MULS = (operator.mul, torch.mul)


def _reusable(carry: torch.Tensor, *others) -> bool:
    """``carry`` can take the result in place: its shape and dtype are the result's and no
    autograd graph needs it."""
    if carry.requires_grad and torch.is_grad_enabled():
        return False
    shapes = [o.shape for o in others if isinstance(o, torch.Tensor)]
    return (all(o.dtype == carry.dtype for o in others if isinstance(o, torch.Tensor))
            and torch.broadcast_shapes(carry.shape, *shapes) == carry.shape)


def gate(carry: torch.Tensor, branch: torch.Tensor, t: torch.Tensor, reuse: bool = False) -> torch.Tensor:
    """``branch * t + carry * (1 - t)`` as ``carry + t (branch - carry)``, one pass."""
    if reuse and _reusable(carry, branch, t):
        return carry.lerp_(branch, t)
    return torch.lerp(carry, branch, t)


def scaled_add(carry: torch.Tensor, u: torch.Tensor, s, reuse: bool = False) -> torch.Tensor:
    """``u * s + carry``, one pass (``s`` a tensor or a number)."""
    if not isinstance(s, torch.Tensor):
        return carry.add_(u, alpha=s) if reuse and _reusable(carry, u) else torch.add(carry, u, alpha=s)
    if reuse and _reusable(carry, u, s):
        return carry.addcmul_(u, s)
    return torch.addcmul(carry, u, s)


gate.fresh_output = scaled_add.fresh_output = True  # a new tensor or the dead, fresh carry


def _call(node, targets) -> bool:
    return (isinstance(node, fx.Node) and node.op == "call_function" and node.target in targets
            and len(node.args) == 2 and not node.kwargs)


def _only_user(node: fx.Node, user: fx.Node) -> bool:
    return list(node.users) == [user]


def _gate_terms(add: fx.Node):
    """(carry, branch, t, dead nodes) where ``add`` is ``branch * t + carry * (1 - t)`` in any
    operand order, else None."""
    for first, second in (add.args, add.args[::-1]):
        if not (_call(first, MULS) and _call(second, MULS) and _only_user(first, add)
                and _only_user(second, add)):
            continue
        for one_minus in second.args:
            if not (_call(one_minus, (operator.sub, torch.sub)) and one_minus.args[0] in (1, 1.0)
                    and isinstance(one_minus.args[1], fx.Node) and _only_user(one_minus, second)):
                continue
            t = one_minus.args[1]
            carry = second.args[1] if second.args[0] is one_minus else second.args[0]
            if t in first.args and isinstance(carry, fx.Node):
                branch = first.args[1] if first.args[0] is t else first.args[0]
                if isinstance(branch, fx.Node) and branch is not t:
                    return carry, branch, t, (first, second, one_minus)
    return None


def _scaled_terms(add: fx.Node):
    """(carry, u, s, dead nodes) where ``add`` is ``u * s + carry``, else None."""
    for product, carry in (add.args, add.args[::-1]):
        if _call(product, MULS) and _only_user(product, add) and isinstance(carry, fx.Node):
            u, s = product.args
            if not isinstance(u, fx.Node):
                u, s = s, u
            if isinstance(u, fx.Node) and u is not carry and (isinstance(s, fx.Node) or (
                    isinstance(s, numbers.Real) and not isinstance(s, bool))):
                return carry, u, s, (product,)
    return None


def fuse_merges(model: fx.GraphModule) -> fx.GraphModule:
    """``model`` with every highway gate and scaled addition (module docstring) as one call, in
    place; ``model`` is returned."""
    graph, modules = model.graph, dict(model.named_modules())
    dataflow.drop_identities(model, modules)  # drop path at inference: between a product and its sum
    for node in list(graph.nodes):
        if not _call(node, ADDS) or not all(isinstance(a, fx.Node) for a in node.args):
            continue
        for terms, fn in ((_gate_terms(node), gate), (_scaled_terms(node), scaled_add)):
            if terms is None:
                continue
            carry, *operands, dead = terms
            reuse = dataflow.fresh(carry, modules) and dataflow.dead_after(carry, node)
            with graph.inserting_before(node):
                new = graph.call_function(fn, (carry, *operands, reuse))
            node.replace_all_uses_with(new)
            graph.erase_node(node)
            for d in dead:
                graph.erase_node(d)
            break
    graph.lint()
    model.recompile()
    return model
