"""Every build as a detection / segmentation backbone: features, output stride, freezing, norms."""
import pytest
import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

import resfam
from conftest import randomize_norms, shape_device

ONE_PER_FAMILY = ["resnet18", "plain18", "resnetv2_50", "wrn_16_8", "resnext50_32x4d",
                  "res2net50_26w_4s", "iresnet50", "highway20", "res2net50_iresnet", "regnety_002"]


# every variant's feature_info against its stage outputs: tests/test_shapes.py (the full build);
# here the features_only build of one network per family and primitive
FEATURE_NETS = ONE_PER_FAMILY + ["resnest14d", "skresnet18", "nf_resnet26", "resnet50_clip",
                                 "tresnet_m", "cspresnet50d", "resnetblur18", "resnetrs50"]


@pytest.mark.parametrize("name", FEATURE_NETS)
def test_feature_info_matches_the_outputs(name):
    size = 32 if resfam.get_spec(name).input_size == 32 else 128
    device = shape_device(name)
    with torch.device(device):
        model = resfam.build(name, features_only=True).eval()
    with torch.no_grad():
        feats = model(torch.randn(1, 3, size, size, device=device))
    info = model.feature_info
    assert len(feats) == len(info) == len(model.stage_names) + 1
    assert [f.shape[1] for f in feats] == info.channels()
    assert [size // f.shape[-1] for f in feats] == info.reduction()
    assert info.module_names()[1:] == model.stage_names
    assert model.fc is None and not any(k.startswith("fc.") for k in model.state_dict())


def test_out_indices_and_as_dict():
    model = resfam.build("iresnet50", features_only=True, out_indices=(0, 2, -1), as_dict=True).eval()
    with torch.no_grad():
        feats = model(torch.randn(1, 3, 64, 64))
    assert list(feats) == ["act1", "layer2", "layer4"] == model.feature_info.module_names()
    assert [f.shape[1] for f in feats.values()] == model.feature_info.channels() == [64, 512, 2048]
    assert model.feature_info.reduction() == [2, 8, 32]
    with pytest.raises(resfam.BuildArgumentError, match=r"argument .out_indices.: \[5\] out of range"):
        resfam.build("resnet18", features_only=True, out_indices=(1, 5))


def test_features_stop_at_the_last_level_returned(tmp_path):
    """No stage past the last returned level is built (timm's features_only does the same; DDP
    fails on parameters without gradients otherwise); a whole-network checkpoint still loads,
    strictly, the unbuilt stages' keys reported as dropped; the maps equal timm's."""
    import timm

    ref = randomize_norms(timm.create_model("resnet50", features_only=True, out_indices=(1, 2)).eval())
    model = resfam.build("resnet50", features_only=True, out_indices=(1, 2)).eval()
    assert model.stage_names == ["layer1", "layer2"] and not hasattr(model, "layer3")
    assert {k for k in model.state_dict()} == {k for k in ref.state_dict()}
    from resfam.spec.build_args import check_build_args
    from resfam.network.model import ResFamNet
    from resfam.network.size import part_bytes

    spec = resfam.get_spec("resnet50")  # the size check counts only what is built
    estimate = part_bytes(spec, check_build_args(spec, dict(features_only=True, out_indices=(1, 2))),
                          ResFamNet.skeleton)
    assert sum(estimate.values()) == sum(t.numel() * t.element_size()
                                         for t in [*model.parameters(), *model.buffers()])
    full = tmp_path / "resnet50.pth"
    torch.save(resfam.build("resnet50").state_dict(), full)
    report = resfam.load_pretrained(model, full)  # strict
    assert report.missing == [] and any(k.startswith("layer4.") for k in report.dropped)
    model.load_state_dict(ref.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(model(x), ref(x)):
            assert torch.equal(a, b)


@pytest.mark.parametrize("name", ["resnet50", "res2net50_26w_4s", "iresnet50", "resnetv2_50"])
def test_output_stride_8_16_32(name):
    keys = {k: v.shape for k, v in resfam.build(name, features_only=True).state_dict().items()}
    for os_, last in ((32, 2), (16, 4), (8, 8)):
        model = resfam.build(name, features_only=True, output_stride=os_).eval()
        assert {k: v.shape for k, v in model.state_dict().items()} == keys
        with torch.no_grad():
            assert model(torch.randn(1, 3, 64, 64))[-1].shape[-1] == last
        assert max(model.feature_info.reduction()) == os_


def test_frozen_stages_get_no_gradient_and_stay_in_eval():
    model = resfam.build("resnet18", frozen_stages=1).train()
    assert not model.bn1.training and not model.layer1.training and model.layer2.training
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model(torch.randn(2, 3, 64, 64)).sum().backward()
    frozen = [n for n, p in model.named_parameters() if n.startswith(("conv1", "bn1", "layer1."))]
    assert frozen and all(model.get_parameter(n).grad is None for n in frozen)
    assert model.layer2[0].conv1.weight.grad is not None
    after = model.state_dict()
    assert torch.equal(before["layer1.0.bn1.running_mean"], after["layer1.0.bn1.running_mean"])
    assert not torch.equal(before["layer2.0.bn1.running_mean"], after["layer2.0.bn1.running_mean"])


def test_norm_eval_keeps_statistics():
    model = resfam.build("res2net50_26w_4s", norm_eval=True).train()
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    model(torch.randn(2, 3, 64, 64)).sum().backward()
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert model.layer1[0].conv1.weight.grad is not None  # the weights still train


@pytest.mark.parametrize("norm,cls", [("frozen_bn", FrozenBatchNorm2d), ("gn", nn.GroupNorm),
                                      ("syncbn", nn.SyncBatchNorm)])
def test_norm_choice(norm, cls):
    model = resfam.build("res2net50_iresnet", norm_layer=norm).eval()
    found = [m for m in model.modules() if resfam.primitives.norms.is_norm(m)]
    assert found and all(isinstance(m, cls) for m in found)
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(1, 3, 64, 64))).all()
    # gn's groups divide the CIFAR widths too
    assert resfam.build("resnet20", norm_layer="gn").bn1.num_groups == 16


@pytest.mark.parametrize("name", ONE_PER_FAMILY)
def test_frozen_and_sync_conversions_keep_outputs(name):
    size = resfam.get_spec(name).input_size // (4 if resfam.get_spec(name).input_size > 32 else 1)
    model = randomize_norms(resfam.build(name)).eval()
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        expected = model(x)
        sync = nn.SyncBatchNorm.convert_sync_batchnorm(resfam.build(name)).eval()
        sync.load_state_dict(model.state_dict())
        assert any(isinstance(m, nn.SyncBatchNorm) for m in sync.modules())
        torch.testing.assert_close(sync(x), expected)
        frozen = resfam.primitives.norms.freeze_batch_norm(model)
        assert not any(isinstance(m, nn.BatchNorm2d) for m in frozen.modules())
        torch.testing.assert_close(frozen(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["res2net50_26w_4s", "cspresnext50"])
def test_grad_checkpointing_gives_the_same_gradients(name):
    torch.manual_seed(0)
    model = resfam.build(name, num_classes=10, drop_path_rate=0.1)
    x, y = torch.randn(2, 3, 64, 64), torch.tensor([1, 2])

    def grads(checkpointing):
        model.zero_grad()
        model.set_grad_checkpointing(checkpointing)
        torch.manual_seed(1)  # the same drop-path draws
        nn.functional.cross_entropy(model(x), y).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    plain, ckpt = grads(False), grads(True)
    for n in plain:
        torch.testing.assert_close(ckpt[n], plain[n], atol=1e-5, rtol=1e-4, msg=n)


def test_output_stride_past_what_entries_subsample():
    """Inception-ResNet-v2's reduction modules are its stages' entries: their strides cannot
    become dilations (timm asserts output stride 32 too), so 16 is refused by name."""
    with pytest.raises(resfam.BuildArgumentError, match=r"output_stride.*subsample 32x.*"
                                                        r"use output_stride=32"):
        resfam.build("inception_resnet_v2", output_stride=16)


def test_in_chans_that_would_change_a_stem_of_layers():
    """A stem whose first layer passes the input's channels through a pool branch would change
    width with in_chans: refused by name; Inception-ResNet-v2's (a conv first) takes any."""
    spec = {"name": "pooled", "family": "x", "in_chans": 3,
            "stem": {"type": "layers", "width": 7, "layers": [{"concat": [{"conv": 4, "k": 3, "s": 2},
                                                                          {"pool": "max", "k": 3, "s": 2}]}]},
            "stages": {"depth": [1], "width": [7], "stride": [1]}, "block": {"type": "basic"}}
    with pytest.raises(resfam.BuildArgumentError, match="in_chans.*width would be 5, not 7"):
        resfam.build(spec, in_chans=1)
    assert resfam.build(spec, in_chans=3).num_features == 7
    model = resfam.build("inception_resnet_v2", in_chans=1, num_classes=0).eval()
    assert model(torch.randn(1, 1, 75, 75)).shape == (1, 1536)
