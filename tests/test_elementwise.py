"""The merges optimize_for_inference runs as one elementwise op (resfam.network.elementwise): the
rewritten graphs, their values in float64, and when a carry may be written over."""
import operator

import pytest
import torch
from torch import fx, nn

import resfam
from conftest import randomize_norms
from resfam.network import elementwise
from resfam.network.inference import optimize_for_inference


def merges(model):
    """The fused merge calls of an optimized model's graph, as (name, reuse) pairs."""
    return [(n.target.__name__, n.args[-1]) for n in model.inner.graph.nodes
            if n.op == "call_function" and n.target in (elementwise.gate, elementwise.scaled_add)]


def arithmetic(model):
    return [n.target for n in model.inner.graph.nodes
            if n.op == "call_function" and n.target in (operator.mul, operator.sub, operator.add, operator.iadd)]


@pytest.mark.parametrize("name, kind, count", [("highway20", "gate", 9), ("highway_resnet50", "gate", 16),
                                               ("seresnet50", "scaled_add", 16),
                                               ("nf_resnet50", "scaled_add", 16)])
def test_merges_become_one_op_and_equal_eager_in_float64(name, kind, count):
    """Srivastava et al.'s gate F T + C (1 - T) and SE's / NF's u s + C: one call per block, no
    product, difference or sum left beside them, and the network's value unchanged (float64)."""
    model = randomize_norms(resfam.build(name).eval()).double()
    fast = optimize_for_inference(model)
    found = merges(fast)
    assert [k for k, _ in found] == [kind] * count
    assert sum(reuse for _, reuse in found) >= count // 2  # most carries are dead, fresh tensors
    if kind == "gate":
        assert not arithmetic(fast)
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), model(x), rtol=1e-10, atol=1e-10)


class Gated(nn.Module):
    """A highway-style gate whose carry is a convolution's output, then (``again``) used again."""

    def __init__(self, again: bool):
        super().__init__()
        self.again = again
        self.f, self.c, self.t = (nn.Conv2d(3, 4, 3, padding=1) for _ in range(3))

    def forward(self, x):
        c, t = self.c(x), torch.sigmoid(self.t(x))
        y = self.f(x) * t + c * (1 - t)
        return y + c if self.again else y


class ScaledOntoInput(nn.Module):
    """``u * s + x`` where x is the network's input: x belongs to the caller."""

    def __init__(self):
        super().__init__()
        self.u = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return self.u(x) * x.mean((2, 3), keepdim=True) + x


@pytest.mark.parametrize("module, reuse", [(Gated(again=False), True), (Gated(again=True), False),
                                           (ScaledOntoInput(), False)])
def test_a_carry_is_written_over_only_when_dead_and_fresh(module, reuse):
    module = module.eval()
    fast = optimize_for_inference(module, channels_last=False)  # the traced graph itself
    calls = [n for n in fast.graph.nodes if n.op == "call_function"
             and n.target in (elementwise.gate, elementwise.scaled_add)]
    assert [n.args[-1] for n in calls] == [reuse]
    x = torch.randn(2, 3, 8, 8)
    kept = x.clone()
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), module(x), rtol=1e-5, atol=1e-5)
    assert torch.equal(x, kept)


def test_only_a_true_gate_becomes_lerp():
    """``a t + c (2 - t)`` and ``a t + c (1 - t2)`` are no gates (they may still become one
    scaled addition); every rewrite keeps the value."""
    class NotAGate(nn.Module):
        def forward(self, a, c, t, t2):
            return a * t + c * (2 - t), a * t + c * (1 - t2), (a * t) * 2 + c * (1 - t)

    traced = elementwise.fuse_merges(fx.symbolic_trace(NotAGate()))
    targets = [n.target for n in traced.graph.nodes]
    assert elementwise.gate not in targets and targets.count(elementwise.scaled_add) == 3
    args = [torch.randn(2, 3, 4, 4) for _ in range(4)]
    for got, want in zip(traced(*args), NotAGate()(*args)):
        torch.testing.assert_close(got, want)


def test_under_autograd_nothing_is_written_in_place():
    carry = torch.randn(2, 3, 4, 4, requires_grad=True)
    branch, t = torch.randn(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    out = elementwise.gate(carry, branch, t, reuse=True)
    out.sum().backward()
    torch.testing.assert_close(carry.grad, 1 - t)
    u, s = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 1, 1)
    c = torch.randn(2, 3, 4, 4)
    keep = c.clone()
    assert elementwise.scaled_add(c, u, s, reuse=False) is not c
    assert torch.equal(c, keep)
    small = torch.randn(2, 3, 1, 1)  # a carry smaller than the result cannot take it
    torch.testing.assert_close(elementwise.scaled_add(small.clone(), u, s, reuse=True), u * s + small)
    torch.testing.assert_close(elementwise.scaled_add(c.clone(), u, 0.2, reuse=True), u * 0.2 + keep)
