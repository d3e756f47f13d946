"""optimize_for_inference keeps the outputs (BN folded, channels_last, optionally compiled)."""
import pytest
import torch
from torch import nn

import resfam
from conftest import randomize_norms
from resfam.network.inference import optimize_for_inference
from resfam.primitives.layers import StdConv2d

FAMILIES = ["resnet50", "plain18", "resnetv2_50", "wrn_16_8", "resnext50_32x4d",
            "res2net50_26w_4s", "iresnet50", "highway20", "res2net50_iresnet"]


@pytest.mark.parametrize("name", FAMILIES)
def test_folded_channels_last_outputs_equal_eager(name):
    size = 32 if resfam.get_spec(name).input_size == 32 else 64
    model = randomize_norms(resfam.build(name)).eval()
    fast = optimize_for_inference(model)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), atol=1e-4, rtol=1e-4)
    # every conv -> BN pair is folded: at most the norms that follow an activation or an add
    # remain (a pre-activation block's bn0 right after a stem conv folds too)
    left = [m for m in fast.modules() if isinstance(m, nn.BatchNorm2d)]
    not_after_conv = sum(1 for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)
                         and (n.endswith((".bn0", ".bn_out")) or n == "norm"))
    assert len(left) <= not_after_conv
    assert model.training is False and any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_features_only_models_optimize_too():
    model = randomize_norms(resfam.build("iresnet50", features_only=True, out_indices=(2, 4))).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(optimize_for_inference(model)(x), model(x)):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name, conv", [("resnetv2_50x1_bit", None), ("resnet18", {"type": "std"})])
def test_weight_standardisation_done_once(name, conv):
    """BiT's weight-standardised convs become plain convs holding the standardised weights; after
    a BN (a user's resnet18 with std convs) the BN then folds into them too."""
    model = resfam.build({"extends": name, "name": "mine", "conv": conv} if conv else name)
    # float64: unit-variance std weights under random BN statistics grow activations to ~1e17
    model = randomize_norms(model).eval().double()
    assert any(isinstance(m, StdConv2d) for m in model.modules())
    fast = optimize_for_inference(model)
    assert not any(isinstance(m, StdConv2d) for m in fast.modules())
    assert any(isinstance(m, StdConv2d) for m in model.modules())  # the original is untouched
    if conv:
        assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        want = model(x)
        torch.testing.assert_close(fast(x), want, rtol=1e-9, atol=1e-9 * want.abs().max().item())


@pytest.mark.slow
def test_compiled_outputs_equal_eager():
    model = randomize_norms(resfam.build("resnet20")).eval()
    fast = optimize_for_inference(model, compile=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), atol=1e-4, rtol=1e-4)
