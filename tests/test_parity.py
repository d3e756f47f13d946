"""Parity with the reference implementations: same parameter count, and after loading the
reference's weights (norm statistics randomised) the same outputs."""
import pytest
import timm
import torch
import torchvision

import resfam
from resfam.convert import TIMM_NAMES, TORCHVISION_NAMES
from conftest import n_params, randomize_norms

TIMM, TORCHVISION = TIMM_NAMES, TORCHVISION_NAMES
SLOW = {"resnext101_32x8d", "resnext101_64x4d", "wide_resnet101_2", "resnet152", "resnetv2_152"}


def _params(names):
    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in names]


def check_parity(reference: torch.nn.Module, name: str, **kwargs) -> None:
    reference = randomize_norms(reference.eval())
    model = resfam.build(name, **kwargs).eval()
    assert n_params(model) == n_params(reference)
    model.load_state_dict(resfam.convert_state_dict(reference.state_dict(), name), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected, got = reference(x), model(x)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", _params(TIMM))
def test_timm_parity(name):
    check_parity(timm.create_model(name), name)


@pytest.mark.parametrize("name", _params(TORCHVISION))
def test_torchvision_parity(name):
    check_parity(getattr(torchvision.models, name)(weights=None), name)


@pytest.mark.parametrize("output_stride", [8, 16])
@pytest.mark.parametrize("name", ["resnet50d", "resnet18", "res2net50_26w_4s", "resnetv2_50"])
def test_timm_parity_with_dilation(name, output_stride):
    """output_stride turns late strides into dilations; the ResNet-D shortcut keeps its pool at
    stride 1 with 'same' padding there (timm's AvgPool2dSame)."""
    check_parity(timm.create_model(name, output_stride=output_stride), name,
                 output_stride=output_stride)


def test_v1_checkpoints_load_by_name_without_conversion():
    """torchvision's key layout is resfam's: no renaming at all for the v1 families."""
    ref = torchvision.models.resnext50_32x4d(weights=None)
    model = resfam.build("resnext50_32x4d")
    assert list(model.state_dict()) == list(ref.state_dict())


def test_parity_detects_a_misplaced_norm():
    """The parity check can fail: swapping two norms' statistics changes the output."""
    ref = randomize_norms(timm.create_model("resnet18").eval())
    sd = resfam.convert_state_dict(ref.state_dict(), "resnet18")
    sd["layer1.0.bn1.running_mean"], sd["layer1.0.bn2.running_mean"] = (
        sd["layer1.0.bn2.running_mean"], sd["layer1.0.bn1.running_mean"])
    model = resfam.build("resnet18").eval()
    model.load_state_dict(sd)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(model(x), ref(x), atol=1e-4)
