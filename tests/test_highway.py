"""Highway semantics (Srivastava et al. 2015, Eq. (3)): y = H(x) T(x) + C(x) (1 - T(x))."""
import math

import torch

import resfam
from resfam.primitives.merges import HighwayGate


def gates(model):
    return [m for m in model.modules() if isinstance(m, HighwayGate)]


def test_gate_starts_at_sigmoid_of_bias():
    for name, bias in (("highway20", -1.0), ("highway56", -3.0), ("highway_resnet50", -2.0)):
        model = resfam.build(name)
        assert gates(model), name
        for gate in gates(model):
            x = torch.zeros(1, gate.conv.in_channels, 8, 8)
            t = torch.sigmoid(gate.conv(x))
            assert torch.allclose(t.mean(), torch.tensor(1 / (1 + math.exp(-bias)))), name


def test_bias_is_configurable_from_a_spec():
    spec = dict(resfam.get_spec("highway20").raw, merge={"type": "gate", "bias_init": -2.5})
    assert all(torch.all(g.conv.bias == -2.5) for g in gates(resfam.build(spec)))


def test_very_negative_bias_carries_the_input():
    spec = dict(resfam.get_spec("highway20").raw, merge={"type": "gate", "bias_init": -40.0})
    model = resfam.build(spec).eval()
    block = model.layer2[1]  # keeps its shape: the carry is x itself
    x = torch.relu(torch.randn(2, 32, 16, 16))  # a post-activation input, as in the net
    with torch.no_grad():
        assert torch.allclose(block(x), x, atol=1e-6)
        # while with the default bias the block transforms its input
        assert not torch.allclose(resfam.build("highway20").eval().layer2[1](x), x, atol=1e-3)


def test_gradients_reach_the_first_layer_of_highway56():
    model = resfam.build("highway56")
    x = torch.randn(8, 3, 32, 32)
    loss = torch.nn.functional.cross_entropy(model(x), torch.arange(8) % 10)
    loss.backward()
    first, last = model.conv1.weight.grad, model.layer3[-1].conv2.weight.grad
    assert torch.isfinite(first).all() and first.norm() > 1e-3 * last.norm()
