"""The seeds' MNIST ResNet (specs/mnist.yaml) against an independent plain-PyTorch module written
from its description: conv 5x5 (1->16) + max-pool, a residual block of two 3x3 convs at 16
channels, conv 5x5 (16->32) + max-pool, a residual block at 32, flatten, linear 512->10; and the
primitives it needed (the lenet stem, ``stages.entry``, ``head.pool: flatten``, ``norm: none``)."""
import pytest
import torch
from torch import nn

import resfam


class Block(nn.Module):
    """y = relu(x + conv(relu(conv(x)))) with an optional BN after each conv."""

    def __init__(self, c: int, bn: bool):
        super().__init__()
        self.c1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.n1 = nn.BatchNorm2d(c) if bn else nn.Identity()
        self.c2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.n2 = nn.BatchNorm2d(c) if bn else nn.Identity()

    def forward(self, x):
        return torch.relu(x + self.n2(self.c2(torch.relu(self.n1(self.c1(x))))))


class SeedNet(nn.Module):
    def __init__(self, bn: bool):
        super().__init__()
        norm = (lambda c: nn.BatchNorm2d(c)) if bn else (lambda c: nn.Identity())
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 5, bias=False), norm(16), nn.ReLU(), nn.MaxPool2d(2), Block(16, bn),
            nn.Conv2d(16, 32, 5, bias=False), norm(32), nn.ReLU(), nn.MaxPool2d(2), Block(32, bn))
        self.fc = nn.Linear(32 * 4 * 4, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


def _transfer(src: nn.Module, dst: nn.Module) -> None:
    """Copy tensors in registration order, checking shapes (both follow the forward order)."""
    a, b = list(src.state_dict().values()), list(dst.state_dict().values())
    assert [t.shape for t in a] == [t.shape for t in b]
    with torch.no_grad():
        for s, d in zip(a, b):
            d.copy_(s)


@pytest.mark.parametrize("name,bn", [("mnist_resnet", False), ("mnist_resnet_bn", True)])
def test_matches_an_independent_module_in_float64(name, bn):
    ours = resfam.build(name).double()
    ref = SeedNet(bn).double()
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())
    _transfer(ours, ref)
    if bn:  # non-trivial statistics, so that eval mode is tested too
        for m in ours.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        _transfer(ours, ref)
    x = torch.randn(4, 1, 28, 28, dtype=torch.float64)
    for mode in (False, True):
        ours.train(mode), ref.train(mode)
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-12, atol=1e-12)


def test_primitives_shapes_and_counts():
    model = resfam.build("mnist_resnet")
    assert model.fc.in_features == 512 and model.in_chans == 1
    assert sum(p.numel() for p in model.parameters()) == 41_370  # 400 + 4,608 + 12,800 + 18,432 + 5,130
    feats = resfam.build("mnist_resnet", features_only=True)(torch.randn(2, 1, 28, 28))
    assert [tuple(f.shape[1:]) for f in feats] == [(16, 24, 24), (16, 12, 12), (32, 4, 4)]
    assert list(dict(model.layer2.named_children())) == ["entry", "0"]
    assert "layer2.0.conv1.weight" in model.state_dict()  # blocks keep their numbering
    with torch.device("meta"):  # the flatten head is sized on the meta device too
        assert resfam.build("mnist_resnet").fc.in_features == 512


def test_entry_and_head_errors_name_the_key():
    spec = dict(resfam.get_spec("mnist_resnet").to_dict(), name="bad")
    with pytest.raises(resfam.SpecError, match=r"key 'stages.entry': has 1 entries but stages.depth has 2"):
        resfam.get_spec(dict(spec, stages=dict(spec["stages"], entry=["lenet"])))
    with pytest.raises(resfam.SpecError, match=r"stages.entry"):
        resfam.get_spec(dict(spec, stages=dict(spec["stages"], entry=[None, "lenett"])))
    with pytest.raises(resfam.SpecError, match=r"head.pool"):
        resfam.get_spec(dict(spec, head={"pool": "max"}))


def test_norm_none_preactivation_adds_the_raw_input():
    """With norm 'none' the pre-activation norm is an Identity that returns its input itself: the
    ReLU after it must not run in place, or the identity the block adds becomes relu(x)."""
    spec = dict(name="preact_none", family="test", input_size=8, norm="none", order="pre",
                stem={"type": "preact_cifar", "width": 4},
                stages={"depth": [2], "width": [4], "stride": [1]}, block={"type": "basic"},
                shortcut={"type": "zero_pad"}, head={"num_classes": 2, "norm": True})
    block = resfam.build(spec).layer1[1]
    x = torch.randn(2, 4, 8, 8)
    x_before = x.clone()
    with torch.no_grad():
        expected = x + block.conv2(torch.relu(block.conv1(torch.relu(x))))
        out = block(x)
    assert torch.equal(x, x_before) and (x < 0).any()
    torch.testing.assert_close(out, expected)
