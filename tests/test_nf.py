"""Normaliser-free ResNets (Brock et al. 2021a): the pieces the parity tests cannot isolate. The
activation gammas against their defining integral, the predicted block-input stds against a hand
computation, the scaled weight standardisation against its equation, zero-init of the branch's
last gain, the spec checks, and the signal propagation the scheme exists to produce."""
import math

import pytest
import torch
from scipy import integrate

import resfam
from resfam.primitives import layers
from resfam.primitives.merges import expected_stds
from resfam.trainability.probe import probe

ACTS = {"relu": lambda z: max(z, 0.0),
        "silu": lambda z: z / (1.0 + math.exp(-z)),
        "gelu": lambda z: 0.5 * z * (1.0 + math.erf(z / math.sqrt(2.0))),
        "leaky_relu": lambda z: max(z, 0.01 * z), "leaky_relu_1e-3": lambda z: max(z, 1e-3 * z)}


@pytest.mark.parametrize("kind", sorted(ACTS))
def test_gamma_is_one_over_the_std_of_the_activation_of_a_standard_normal(kind):
    """gamma = 1 / sqrt(Var g(z)), z ~ N(0, 1) (Brock et al. 2021a, Sec. 4). The table holds
    DeepMind's sampled estimates, which networks were trained with: within 0.1% of the integral
    (the leaky ReLUs', which DeepMind did not publish, are their closed form)."""
    g = ACTS[kind]
    density = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    mean = integrate.quad(lambda z: g(z) * density(z), -30, 30, limit=200)[0]
    second = integrate.quad(lambda z: g(z) ** 2 * density(z), -30, 30, limit=200)[0]
    exact = 1.0 / math.sqrt(second - mean ** 2)
    assert layers.ACTS[kind].gamma == pytest.approx(exact, rel=1e-3)
    if kind == "relu":  # closed form: Var relu(z) = 1/2 - 1/(2 pi)
        assert exact == pytest.approx(1 / math.sqrt(0.5 - 1 / (2 * math.pi)), rel=1e-9)


def test_expected_stds_grow_by_alpha_squared_and_reset_after_each_stage_first_block():
    a2 = 0.2 ** 2
    stds = expected_stds([(2, 0.2), (3, 0.2)])
    assert [len(s) for s in stds] == [2, 3]
    assert stds[0] + stds[1] == pytest.approx(
        [1.0, math.sqrt(1 + a2), math.sqrt(1 + 2 * a2), math.sqrt(1 + a2), math.sqrt(1 + 2 * a2)])


def test_scaled_std_conv_is_gain_times_gamma_times_the_standardised_weight_over_sqrt_fan_in():
    torch.manual_seed(0)
    conv = layers.ScaledStdConv2d(6, 4, 3, padding=1, gamma=1.7, eps=1e-5).double()
    with torch.no_grad():
        conv.gain.copy_(torch.rand(4, 1, 1, 1) + 0.5)
    w = conv.weight.detach()
    n = w[0].numel()
    mean = w.mean(dim=(1, 2, 3), keepdim=True)
    var = w.var(dim=(1, 2, 3), unbiased=False, keepdim=True)
    expected = conv.gain.detach() * 1.7 * (w - mean) / torch.sqrt(var + 1e-5) / math.sqrt(n)
    torch.testing.assert_close(conv.standardized_weight().detach(), expected, rtol=1e-12, atol=1e-12)
    x = torch.randn(2, 6, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(conv(x), torch.nn.functional.conv2d(x, expected, conv.bias, padding=1))


def test_zero_init_last_zeroes_each_branch_last_gain_so_blocks_start_as_their_shortcut():
    model = resfam.build("nf_resnet26", zero_init_last=True).eval()
    gains = [b.conv3.gain for stage in (model.layer1, model.layer2) for b in stage]
    assert all(bool((g == 0).all()) for g in gains)
    block = model.layer2[1]  # an identity shortcut: the block returns its input
    x = torch.randn(1, block.conv1.in_channels, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(block(x), x)


@pytest.mark.parametrize("name", ["nf_seresnet26", "dm_nfnet_f0"])
def test_inference_folding_keeps_the_output(name):
    """The standardised weights are computed once; DeepMind's layout keeps its SAME padding
    (an odd input side, where it differs from symmetric padding)."""
    from conftest import randomize_norms

    model = randomize_norms(resfam.build(name)).eval()
    fast = resfam.optimize_for_inference(model)
    x = torch.randn(1, 3, 63, 63)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("merge, order, key", [({"alpha": 0.2, "beta": "expected_std"}, "post", "merge.beta"),
                                               ({"type": "gate", "alpha": 0.2}, "pre", "merge.alpha")])
def test_spec_checks_name_the_key(merge, order, key):
    raw = dict(resfam.get_spec("nf_resnet26").raw, name="mine", merge=merge, order=order)
    with pytest.raises(resfam.SpecError) as err:
        resfam.get_spec(raw)
    assert key in str(err.value)


def _steps(result, model, scale):
    """Per block after a stage's first: (Var x_{l+1} - Var x_l) / (scale * Var F(x_l))."""
    rows = [r for r in result.blocks if r["model"] == model]
    return [(b["avg_var"] - a["avg_var"]) / (scale * b["branch_var"])
            for a, b in zip(rows, rows[1:]) if a["stage"] == b["stage"]]


def _transitions(result, model):
    rows = [r for r in result.blocks if r["model"] == model]
    return [(a["avg_var"], b["avg_var"]) for a, b in zip(rows, rows[1:]) if a["stage"] != b["stage"]]


def test_nf_resnet_signal_propagation_mimics_a_batchnorm_preactivation_resnet():
    """Brock et al. 2021a, Fig. 1-2: in a BN pre-activation ResNet the block-input variance grows
    by the branch's variance per block and resets at each stage's first block; an NF-ResNet
    reproduces that shape without any norm, growing by alpha^2 Var F(x) per block."""
    result = probe(["nf_resnet50", "resnetv2_50"], batch_size=16, img_size=64, seed=0)
    nf, bn = _steps(result, "nf_resnet50", 0.2 ** 2), _steps(result, "resnetv2_50", 1.0)
    assert len(nf) == len(bn) == 12
    assert all(0.8 < s < 1.25 for s in nf + bn), (nf, bn)
    for before, after in _transitions(result, "nf_resnet50") + _transitions(result, "resnetv2_50"):
        assert after < 0.75 * before  # the reset: not an accumulation across stages


def test_explicit_widths_with_a_group_width_are_checked_per_block():
    """NF-RegNet lists each block's inner width and groups it by 8 channels: a width that 8 does
    not divide is refused with the key, before anything is built."""
    raw = dict(resfam.get_spec("nf_regnet_b0").raw, name="mine")
    raw.pop("extends", None)
    raw["block"] = dict(raw["block"], widths=[[[40, 40]], [[88, 88], [180, 180], [184, 184]],
                                              *raw["block"]["widths"][2:]])
    with pytest.raises(resfam.SpecError) as err:
        resfam.get_spec(raw)
    assert "block.widths" in str(err.value) and "group_width=8" in str(err.value)
    model = resfam.build("nf_regnet_b0")
    assert [b.conv2.groups for b in model.layer2] == [11, 23, 23]  # 88 / 8, 184 / 8
