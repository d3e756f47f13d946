"""The counters: GMACs against torch's FlopCounterMode and torchvision's published figures, the
'other ops' handles against matching FlopCounterMode formulas, and the user's model untouched."""
import pytest
import torch
from torch import nn

import resfam
from resfam.comparison.counting import FlopCounterModeCounter, FvcoreCounter

# one variant per family, at a size that keeps the suite fast
PER_FAMILY = [("resnet20", 32), ("plain20", 32), ("preact_resnet164", 32), ("wrn_16_8", 32),
              ("resnext50_32x4d", 64), ("res2net50_26w_4s", 64), ("iresnet50", 64),
              ("highway20", 32), ("res2net50_iresnet", 64), ("resnetv2_50", 64), ("regnety_002", 64)]


@pytest.mark.parametrize("name,size", PER_FAMILY)
def test_gmacs_equal_flop_counter_mode_conv_and_mm(name, size):
    from torch.utils.flop_counter import FlopCounterMode

    model = resfam.build(name).eval()
    x = torch.randn(1, 3, size, size)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:  # its defaults: conv / mm only
        model(x)
    reference = sum(fc.get_flop_counts()["Global"].values())
    assert FvcoreCounter().count(model, x).macs * 2 == reference


@pytest.mark.parametrize("name,size", PER_FAMILY)
def test_other_ops_equal_matching_flop_counter_mode_formulas(name, size):
    model = resfam.build(name)
    x = torch.randn(1, 3, size, size)
    fv, fc = FvcoreCounter().count(model, x), FlopCounterModeCounter().count(model, x)
    assert fv.other == fc.other > 0, (fv.by_op, fc.by_op)
    assert fv.unsupported == {}


@pytest.mark.parametrize("name,gmacs", [("resnet50", 4_089_184_256), ("resnext50_32x4d", 4_230_479_872),
                                        ("wide_resnet50_2", 11_398_021_120)])
def test_torchvision_published_gmacs(name, gmacs):
    """torchvision's model docs: 4.09 / 4.23 / 11.4 GFLOPS (its _ops field, in MACs)."""
    counts = FvcoreCounter().count(resfam.build(name), torch.randn(1, 3, 224, 224))
    assert counts.macs == gmacs
    assert round(counts.macs / 1e9, 3) == {"resnet50": 4.089, "resnext50_32x4d": 4.230,
                                            "wide_resnet50_2": 11.398}[name]


def test_grouped_conv_matches_the_analytic_formula():
    conv = nn.Conv2d(128, 256, 3, stride=2, padding=1, groups=32, bias=False)
    x = torch.randn(1, 128, 28, 28)
    expected = (128 // 32) * 256 * 3 * 3 * 14 * 14   # Cin/g * Cout * k * k * Hout * Wout
    assert FvcoreCounter().count(conv, x).macs == expected
    assert FlopCounterModeCounter().count(conv, x).macs == expected


def test_other_ops_by_hand_for_one_highway_block():
    """A same-shape highway basic block on 16x16x16: add, sigmoid, 2 mul, rsub, 2 ReLU per element."""
    block = resfam.build("highway20").layer1[1]
    x = torch.relu(torch.randn(1, 16, 16, 16))
    n = 16 * 16 * 16
    counts = FvcoreCounter().count(block, x)
    assert counts.by_op == {"conv": 2 * 16 * 16 * 9 * 256 + 16 * 16 * 256, "relu_": 2 * n,
                            "sigmoid": n, "mul": 2 * n, "rsub": n, "add": n}, counts.by_op


def test_counting_leaves_the_model_untouched():
    model = resfam.build("resnet20").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    FvcoreCounter().count(model, torch.randn(4, 3, 32, 32))
    FlopCounterModeCounter().count(model, torch.randn(4, 3, 32, 32))
    FvcoreCounter().activations(model, torch.randn(4, 3, 32, 32))
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    # the same forward in train mode would have moved them: the check above can fail
    model(torch.randn(4, 3, 32, 32))
    assert not torch.equal(before["bn1.running_mean"], model.bn1.running_mean)


def test_activations_count_conv_and_linear_outputs():
    """fvcore's activation count: output elements of every conv and linear layer."""
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 16 * 16, 10))
    assert FvcoreCounter().activations(model, torch.randn(1, 3, 16, 16)) == 8 * 16 * 16 + 10
    acts = FvcoreCounter().activations(resfam.build("resnet20"), torch.randn(1, 3, 32, 32))
    # stem conv + 18 convs of 3 stages (16x32x32, 32x16x16, 64x8x8 per conv) + fc
    assert acts == 16 * 32 * 32 + 6 * (16 * 32 * 32 + 32 * 16 * 16 + 64 * 8 * 8) + 10
