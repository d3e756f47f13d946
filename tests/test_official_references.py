"""resfam against independent references of the official iResNet and pre-activation ResNet-164
code (tests/references.py), weights transferred, outputs compared in float64."""
import pytest
import torch

import resfam
from conftest import n_params, randomize_norms
from references import OfficialIResNet, PreActCifarResNet


def assert_same_network(reference, name_or_spec, size, rename=None):
    reference = randomize_norms(reference).double().eval()
    model = resfam.build(name_or_spec).double().eval()
    assert n_params(model) == n_params(reference)
    state = reference.state_dict()
    state = ({rename(k): v for k, v in state.items()} if rename
             else resfam.convert_state_dict(state, model))
    model.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, size, size, dtype=torch.float64)
    with torch.no_grad():
        expected, got = reference(x), model(x)
    assert expected.abs().max() > 1e-2  # a real signal, not a vanished one
    torch.testing.assert_close(got, expected, atol=1e-10, rtol=1e-10)
    return model, reference


def test_iresnet50_computes_what_the_official_code_computes():
    assert_same_network(OfficialIResNet((3, 4, 6, 3)), "iresnet50", 64)


def test_iresnet_two_block_stages_add_the_activated_identity():
    """With two blocks a stage is a start and an end block; the end block has no leading BN and
    its in-place ReLU rewrites the identity as in the first middle block."""
    spec = {"name": "iresnet_2222", "extends": "iresnet50", "stages": {"depth": [2, 2, 2, 2]}}
    assert_same_network(OfficialIResNet((2, 2, 2, 2)), spec, 64)


def test_the_reference_can_tell_the_raw_identity_from_the_activated_one():
    """The check above can fail: adding the raw input in the first middle block (what resfam
    did before) changes iresnet50's output by far more than the tolerance."""
    reference = randomize_norms(OfficialIResNet((3, 4, 6, 3))).double().eval()
    model = resfam.build("iresnet50").double().eval()
    model.load_state_dict(resfam.convert_state_dict(reference.state_dict(), model))
    block = model.layer2[1]
    original = block.forward

    def raw_identity(x):
        out = block.conv1(torch.relu(x))
        out = block.conv2(torch.relu(block.bn1(out)))
        out = block.conv3(torch.relu(block.bn2(out)))
        return out + x

    block.forward = raw_identity
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        assert (model(x) - reference(x)).abs().max() > 1e-3
        block.forward = original
        torch.testing.assert_close(model(x), reference(x), atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("depth,name", [(164, "preact_resnet164"),
                                        pytest.param(1001, "preact_resnet1001", marks=pytest.mark.slow)])
def test_preact_cifar_resnet_matches_the_official_lua(depth, name):
    """Same names but for the projection (resfam's is a Sequential, as torchvision's); the test
    is what the weights compute: the bottleneck strides on its first 1x1 conv."""
    model, _ = assert_same_network(PreActCifarResNet(depth), name, 32,
                                   rename=lambda k: k.replace(".downsample.", ".downsample.0."))
    first = model.layer2[0]
    assert first.conv1.stride == (2, 2) and first.conv2.stride == (1, 1)


def test_preact_paper_parameter_counts():
    """He et al. 2016b, Table 3 print 1.7M and 10.2M: the conv + fc weights without the norms
    (10,178,490 for ResNet-1001;
    10,327,706 with them)."""
    for name, printed in (("preact_resnet164", 1.7), ("preact_resnet1001", 10.2)):
        model = resfam.build(name)
        weights = sum(m.weight.numel() + (m.bias.numel() if getattr(m, "bias", None) is not None else 0)
                      for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
        assert round(weights / 1e6, 1) == printed


def test_bit_weight_standardisation_and_fixed_stem_by_hand():
    """BiT (Kolesnikov et al. 2020): every conv standardises its weights per output channel
    (Qiao et al. 2019, Eq. 5: biased variance, eps 1e-8 in BiT), and the stem's 3x3/2 max-pool
    pads with zeros (TensorFlow 'SAME' on a non-negative-free input: the padding can win)."""
    model = resfam.build("resnetv2_50x1_bit").double().eval()
    conv = model.layer1[0].conv2
    w = conv.weight.detach()
    mean = w.mean(dim=(1, 2, 3), keepdim=True)
    var = ((w - mean) ** 2).mean(dim=(1, 2, 3), keepdim=True)
    x = torch.randn(2, conv.in_channels, 9, 9, dtype=torch.float64)
    expected = torch.nn.functional.conv2d(x, (w - mean) / torch.sqrt(var + 1e-8), padding=1)
    torch.testing.assert_close(conv(x), expected, atol=1e-10, rtol=1e-10)
    stem = torch.full((1, 64, 6, 6), -5.0, dtype=torch.float64)  # all negative: the zero pad wins
    assert model.maxpool(stem)[0, 0, 0, 0] == 0.0 and model.maxpool(stem)[0, 0, 1, 1] == -5.0
