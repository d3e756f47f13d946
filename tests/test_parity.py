"""Parity with the reference implementations: same parameter count, and after loading the
reference's weights (norm statistics randomised) the same outputs.

The variants held against timm / torchvision are those whose spec says ``reference:``; the
coverage test computes timm's ResNet-family names at test time, so a name timm adds shows up
as a failure, not as silence."""
import re
from unittest import mock

import pytest
import timm
import torch
import torchvision
from timm.models import _registry

import resfam
from conftest import GIANTS, n_params, randomize_norms

TIMM = resfam.list_models(reference="timm")
TORCHVISION = resfam.list_models(reference="torchvision")
# over ~60M parameters or ~150 blocks: marked slow (still run in CI)
SLOW = {"resnext101_32x8d", "resnext101_64x4d", "wide_resnet101_2", "resnet152", "resnetv2_152",
        "resnetv2_152d", "resnet152c", "resnet152d", "resnet152s", "resnet200", "resnet200d",
        "seresnet152", "seresnet152d", "seresnet200d", "seresnet269d", "seresnext101_32x8d",
        "seresnext101d_32x8d", "seresnext101_64x4d", "ecaresnet200d", "ecaresnet269d",
        "resnest200e", "resnest269e", "resnetrs152", "resnetrs200", "resnetrs270", "resnetrs350", "resnetrs420",
        "seresnextaa101d_32x8d", "seresnextaa201d_32x8d", "senet154", "legacy_senet154",
        "legacy_seresnet152", "legacy_seresnext101_32x4d", "legacy_seresnet101",
        "regnetx_120", "regnetx_160", "regnetx_320", "regnety_120", "regnety_160", "regnety_320",
        "regnet_x_16gf", "regnet_x_32gf", "regnet_y_16gf", "regnet_y_32gf", "nfnet_f0",
        "eca_nfnet_l3", "dm_nfnet_f0", "resnet50x4_clip", "resnet50x4_clip_gap", "tresnet_xl"}
SHAPES_ONLY = GIANTS  # shapes only, on the meta device, for both builds

TIMM_MODULES = ("resnet", "resnetv2", "res2net", "resnest", "sknet", "senet", "regnet", "nfnet",
                "tresnet", "inception_resnet_v2")
BYOBNET_RESNETS = r"resne[tx]"  # byobnet's ResNet-named networks (the module builds others too)
CSPNET_RESNETS = r"^cspresne[tx]"  # cspnet's (its darknets are another lineage)
# timm ResNet-family names resfam cannot build yet, and the primitive each one needs
NOT_YET: dict[str, str] = {}  # timm names not bundled yet, each with the primitive it needs


def timm_family() -> list[str]:
    module = _registry._model_to_module.get
    return sorted(n for n in timm.list_models()
                  if (module(n) in TIMM_MODULES and n not in ("test_resnet", "test_nfnet"))
                  or (module(n) == "byobnet" and re.search(BYOBNET_RESNETS, n))
                  or (module(n) == "cspnet" and re.search(CSPNET_RESNETS, n)))


def _params(names):
    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in names]


def build_to_load(name: str, **kwargs) -> torch.nn.Module:
    """resfam's network for a state dict that sets every tensor: built on the meta device (no
    init to overwrite), its tensors then the loaded ones (``assign``); a network with buffers no
    state dict holds (anti-aliasing's fixed filter) is built as usual."""
    with torch.device("meta"):
        model = resfam.build(name, **kwargs)
    if any(m._non_persistent_buffers_set for m in model.modules()):
        model = resfam.build(name, **kwargs)
    return model.eval()


def check_parity(reference: torch.nn.Module, name: str, dtype=torch.float32, tol=1e-4,
                 **kwargs) -> None:
    reference = randomize_norms(reference.eval())
    model = build_to_load(name, **kwargs)
    assert n_params(model) == n_params(reference)
    model.load_state_dict(resfam.convert_state_dict(reference.state_dict(), name), strict=True,
                          assign=True)
    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])
    reference, model = reference.to(dtype), model.to(dtype)
    side = resfam.get_spec(name).fit_side(64)  # (bat_resnext26ts: 256, what its blocks tile)
    x = torch.randn(2, 3, side, side, dtype=dtype)
    with torch.no_grad():
        expected, got = reference(x), model(x)
    torch.testing.assert_close(got, expected, atol=tol, rtol=tol)


@pytest.mark.parametrize("name", _params([n for n in TIMM if n not in SHAPES_ONLY]))
def test_timm_parity(name):
    check_parity(timm.create_model(name), name)


def _meta_reference(name: str) -> torch.nn.Module:
    """The reference library's build on the meta device. torchvision's RegNet builders compute
    their widths with tensors (``.tolist()``), which the meta device cannot: those widths are
    taken from the builder first, and only the network is built on meta."""
    if "timm" in resfam.get_spec(name).reference:
        with torch.device("meta"):
            return timm.create_model(name)
    from torchvision.models import regnet

    with mock.patch.object(regnet, "_regnet", lambda params, *args, **kwargs: params):
        params = getattr(torchvision.models, name)(weights=None)
    with torch.device("meta"):
        return regnet.RegNet(params)


@pytest.mark.parametrize("name", sorted(SHAPES_ONLY))
def test_timm_parity_of_shapes_for_the_largest(name):
    reference = _meta_reference(name)
    with torch.device("meta"):  # regnety_2560's 4.8 GiB is above the default size guard
        model = resfam.build(name, max_param_bytes=None)
    converted = resfam.convert_state_dict(reference.state_dict(), name)
    assert {k: v.shape for k, v in converted.items()} == {k: v.shape for k, v in model.state_dict().items()}


def test_timm_family_coverage():
    """Every ResNet-family name timm registers is bundled with ``reference: [timm]`` or listed
    in NOT_YET with the primitive it needs; a new timm name, or a newly bundled one, fails here
    until this file says so."""
    names = set(timm_family())
    bundled = set(TIMM)
    assert bundled <= names
    assert names - bundled == set(NOT_YET), (sorted(names - bundled - set(NOT_YET)),
                                             sorted(set(NOT_YET) - (names - bundled)))
    print(f"{len(names & bundled)} of {len(names)} timm ResNet-family networks bundled and exact")


@pytest.mark.parametrize("name", _params([n for n in TORCHVISION if n not in SHAPES_ONLY]))
def test_torchvision_parity(name):
    check_parity(getattr(torchvision.models, name)(weights=None), name)


@pytest.mark.parametrize("output_stride", [8, 16])
@pytest.mark.parametrize("name", ["resnet50d", "resnet18", "res2net50_26w_4s", "resnetv2_50",
                                  "resnest50d", "skresnet18", "regnety_016", "cspresnext50",
                                  "bat_resnext26ts"])
def test_timm_parity_with_dilation(name, output_stride):
    """output_stride turns late strides into dilations; the ResNet-D shortcut keeps its pool at
    stride 1 with 'same' padding there (timm's AvgPool2dSame)."""
    check_parity(timm.create_model(name, output_stride=output_stride), name,
                 output_stride=output_stride)


# one network per family and primitive: the same arithmetic as timm's, so equal in float64 to
# 1e-10 (float32 parity above is equality up to float32 rounding, 1e-4)
FLOAT64_EXACT = ["resnet18", "resnet50d", "resnet50s", "resnext50_32x4d", "wide_resnet50_2",
                 "resnet33ts", "eca_resnext26ts",
                 "seresnet50", "ecaresnet50d", "resnetblur50", "resnetaa50d", "resnetrs50",
                 "res2net50_26w_4s", "res2next50", "res2net50d", "resnest14d", "skresnet18",
                 "skresnext50_32x4d", "legacy_seresnet18", "legacy_seresnext26_32x4d",
                 "resnetv2_50", "resnetv2_50x1_bit", "resnetv2_50d_gn",
                 "nf_resnet26", "nf_seresnet26", "nf_ecaresnet26", "nf_regnet_b0", "nfnet_l0", "eca_nfnet_l0", "dm_nfnet_f0", "gcresnext26ts",
                 "resnet50_clip", "resnet50_clip_gap", "resnet50_mlp", "resnet51q", "resnet61q",
                 "tresnet_m", "cspresnet50d", "cspresnext50", "bat_resnext26ts",
                 "inception_resnet_v2"]
# timm computes these norms' statistics in float32 whatever the input's dtype: equal to that
# rounding only (differences up to ~1e-5 in float64, measured)
FLOAT32_STATISTICS = ["resnetv2_50d_frn", "resnetv2_50d_evos"]


@pytest.mark.parametrize("name", FLOAT64_EXACT)
def test_timm_parity_in_float64(name):
    """What "equal" means, one family at a time: in float64 a misplaced norm, activation or
    pool, or a different padding or rounding of widths, cannot hide in float32 rounding."""
    check_parity(timm.create_model(name), name, dtype=torch.float64, tol=1e-10)


def test_clip_attention_pool_at_its_native_size_in_float64():
    """At 224 the position embedding is CLIP's own (the 64-pixel tests above resample it)."""
    reference = randomize_norms(timm.create_model("resnet50_clip").eval()).double()
    model = resfam.build("resnet50_clip").eval().double()
    model.load_state_dict(resfam.convert_state_dict(reference.state_dict(), "resnet50_clip"))
    x = torch.randn(1, 3, 224, 224, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("name", FLOAT32_STATISTICS)
def test_timm_parity_in_float64_up_to_float32_statistics(name):
    check_parity(timm.create_model(name), name, dtype=torch.float64, tol=1e-4)


@pytest.mark.parametrize("name", ["regnety_002", "regnetv_040", "regnety_040_sgn", "regnetz_005",
                                  "regnetz_040"])
def test_regnet_parity_in_float64(name):
    """RegNetY's SE after the 3x3 (after its BN-ReLU in order post, right after the conv in
    timm's pre-activated regnetv, whose shortcut reads the pre-activated input even where it is
    the identity), SiLU inside the SE, GroupNorm by group size; RegNetZ's inverted bottleneck,
    linear output, no shortcut where the shape changes and final 1x1 conv: equal in float64,
    where a misplaced norm or activation cannot hide in float32 rounding."""
    check_parity(timm.create_model(name), name, dtype=torch.float64, tol=1e-10)


def test_regnet_features_only_equal_timm():
    """A RegNet backbone: timm's feature levels (the stride-2 stem, then each stage) and maps,
    after the weight transfer."""
    ref = randomize_norms(timm.create_model("regnetx_004", features_only=True).eval())
    model = resfam.build("regnetx_004", features_only=True).eval()
    assert model.feature_info.channels() == ref.feature_info.channels() == [32, 32, 64, 160, 384]
    assert model.feature_info.reduction() == ref.feature_info.reduction()
    model.load_state_dict(resfam.convert_state_dict(ref.state_dict(), "regnetx_004"), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for expected, got in zip(ref(x), model(x), strict=True):
            torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_cross_stage_features_equal_timm_intermediates():
    """A CSP backbone: the stem's and each cross stage's output (after its transition) equal
    timm's intermediates, level by level, after the weight transfer."""
    ref = randomize_norms(timm.create_model("cspresnet50d").eval())
    model = resfam.build("cspresnet50d", features_only=True).eval()
    assert model.feature_info.channels() == [64, 128, 256, 512, 1024]
    assert model.feature_info.reduction() == [2, 4, 8, 16, 32]
    state = resfam.convert_state_dict(ref.state_dict(), "cspresnet50d")
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not missing and set(unexpected) == {"fc.weight", "fc.bias"}
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = ref.forward_intermediates(x, intermediates_only=True)
        for want, got in zip(expected, model(x), strict=True):
            torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


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
