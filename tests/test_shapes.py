"""Every variant: stride-4/8/16/32 (ImageNet nets, at 64x64) or 1/2/4 (CIFAR, 32) stage outputs
with the channels its spec documents, and logits of the right size; and no weight or buffer left
uninitialised by the build (its convs skip torch's default init for the network's own)."""
import contextlib

import pytest
import torch

import resfam
from conftest import FAMILY_NETS, same_padded_models, shape_device

HEAVY = {"wide_resnet101_2", "resnext101_32x8d", "resnext101_64x4d", "iresnet200",
         "resnet1202", "preact_resnet1001", "resnetv2_152", "iresnet152", "resnet152"}


def _params():
    return [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in same_padded_models()]


@contextlib.contextmanager
def uninitialised_memory_is_nan():
    """torch fills every uninitialised float tensor with NaN while this holds (its deterministic
    mode's ``fill_uninitialized_memory``), so a weight nothing set shows up as NaN."""
    was = torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True)
    torch.utils.deterministic.fill_uninitialized_memory = True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was[0])
        torch.utils.deterministic.fill_uninitialized_memory = was[1]


def unset_tensors(model) -> list[str]:
    """The state-dict keys still NaN after a build under :func:`uninitialised_memory_is_nan`."""
    return [k for k, v in model.state_dict().items() if v.is_floating_point() and v.isnan().any()]


# unpadded ('valid') layers: the sides the paper gives at its input size, level by level
# (Szegedy et al. 2017, Fig. 15 and 3: 35x35, 17x17 and 8x8 grids at 299 px; the stem's level
# at stride 4 is TF-slim's Conv2d_4a, 71x71), and the stages' reductions (three stages: the stem
# ends at stride 8)
UNPADDED = {"inception_resnet_v2": (299, [71, 35, 17, 8], [8, 16, 32])}


@pytest.mark.parametrize("name", _params())
def test_stage_shapes(name):
    spec = resfam.get_spec(name)
    cifar = spec.input_size == 32
    size = 32 if cifar else spec.fit_side(64)  # 64 keeps every stage >= 2x2 (bat: 256)
    size, sides, expected_reductions = UNPADDED.get(name, (size, None, None))
    device = shape_device(name)
    with torch.device(device), uninitialised_memory_is_nan():
        model = resfam.build(name).eval()
    if device != "meta":
        unset = unset_tensors(model)
        assert not unset, f"{name}: left uninitialised by the build: {unset[:5]}"
    seen = {}
    for info in model.feature_info:
        getattr(model, info["module"]).register_forward_hook(
            lambda mod, inp, out, key=info["module"]: seen.__setitem__(key, out.shape))
    with torch.no_grad():
        logits = model(torch.randn(1, 3, size, size, device=device))
    # no classifier (num_classes 0: CLIP's _gap towers): the pooled features, as timm's
    assert logits.shape == (1, spec.head.num_classes or model.num_features)
    expected_reductions = expected_reductions or ([1, 2, 4] if cifar else [4, 8, 16, 32])
    assert [i["reduction"] for i in model.feature_info[1:]] == expected_reductions
    sides = sides or [size // i["reduction"] for i in model.feature_info]
    for info, plan, side in zip(model.feature_info[1:], spec.stages, sides[1:]):
        assert seen[info["module"]] == (1, plan.width, side, side), info
        assert info["num_chs"] == plan.width
    stem = model.feature_info[0]
    assert seen[stem["module"]] == (1, stem["num_chs"], sides[0], sides[0])
    assert model.feature_info.module_names()[1:] == model.stage_names  # one level per stage


# plain convs, weight-standardised ones (BiT) and NF-ResNets' scaled ones with their gains; and
# a user spec with SAME padding (timm's Conv2dSame), which no bundled variant has in plain convs
SAME_PADDED = {"name": "resnet18_same", "extends": "resnet18", "conv": {"padding": "same"}}


@pytest.mark.parametrize("spec", FAMILY_NETS + [SAME_PADDED], ids=str)
def test_a_build_initialises_every_weight_and_buffer(spec):
    with uninitialised_memory_is_nan():
        model = resfam.build(spec)
    unset = unset_tensors(model)
    assert not unset, f"left uninitialised by the build: {unset[:5]}"
    if spec is SAME_PADDED:
        assert "Conv2dSame" in {type(m).__name__ for m in model.modules()}


def test_intermediate_layer_getter_sees_stages_in_order():
    from torchvision.models._utils import IntermediateLayerGetter

    model = resfam.build("iresnet50")
    getter = IntermediateLayerGetter(model, {"layer1": "c2", "layer4": "c5"})
    out = getter(torch.randn(1, 3, 64, 64))
    assert out["c2"].shape == (1, 256, 16, 16) and out["c5"].shape == (1, 2048, 2, 2)


@pytest.mark.parametrize("output_stride,expected", [(32, 2), (16, 4), (8, 8)])
def test_output_stride_dilates_without_changing_weights(output_stride, expected):
    base = resfam.build("resnet50")
    model = resfam.build("resnet50", output_stride=output_stride, num_classes=0)
    assert {k: v.shape for k, v in model.state_dict().items() if not k.startswith("fc")} == \
        {k: v.shape for k, v in base.state_dict().items() if not k.startswith("fc")}
    assert model.forward_features(torch.randn(1, 3, 64, 64)).shape[-1] == expected


def test_bat_needs_sides_its_blocks_tile_and_says_which():
    """BAT's P and Q tile each map in block_size blocks (Chi et al. 2020, Eq. 6): the side must
    be a multiple of block_size x the stride at every slot; the spec says which, the network
    says so when given another."""
    spec = resfam.get_spec("bat_resnext26ts")
    assert (spec.input_multiple(), spec.input_multiple(16), spec.input_multiple(8)) == (256, 128, 64)
    assert (spec.fit_side(64), spec.fit_side(256), spec.fit_side(257)) == (256, 256, 512)
    assert resfam.get_spec("resnet50").input_multiple() == 1 and resfam.get_spec("resnet50").fit_side(97) == 97
    with torch.device("meta"):
        model = resfam.build(spec).eval()
        assert model(torch.empty(1, 3, 256, 512)).shape == (1, 1000)
        with pytest.raises(AssertionError, match=r"multiples of its spec's input_multiple\(\)"):
            model(torch.empty(1, 3, 224, 224))

