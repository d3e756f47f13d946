"""load_pretrained on checkpoint files the tests write themselves (nothing is downloaded)."""
import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file

import resfam
from conftest import randomize_norms


def outputs_match(model, reference, size=64):
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), reference.eval()(x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "module.", "backbone."])
def test_torchvision_pth_with_wrappers(tmp_path, wrap):
    ref = randomize_norms(torchvision.models.resnet50())
    state = ref.state_dict()
    if wrap == "state_dict":
        state = {"state_dict": state, "epoch": 90}
    elif wrap != "plain":
        state = {wrap + k: v for k, v in state.items()}
    path = tmp_path / "resnet50.pth"
    torch.save(state, path)
    model = resfam.build("resnet50")
    report = resfam.load_pretrained(model, path)
    assert report.loaded == len(ref.state_dict()) and not report.missing and not report.unexpected
    outputs_match(model, ref)


@pytest.mark.parametrize("name", ["res2net50_26w_4s", "resnetv2_50", "resnext50_32x4d"])
def test_timm_safetensors(tmp_path, name):
    ref = randomize_norms(timm.create_model(name))
    path = tmp_path / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(path))
    model = resfam.build(name)
    resfam.load_pretrained(model, path)
    outputs_match(model, ref)


def test_classifier_of_another_size_is_dropped(tmp_path):
    ref = randomize_norms(timm.create_model("resnet18"))
    torch.save(ref.state_dict(), tmp_path / "r18.pth")
    model = resfam.build("resnet18", num_classes=10)
    fc_before = model.fc.weight.clone()
    report = resfam.load_pretrained(model, tmp_path / "r18.pth")
    assert report.dropped == ["fc.weight", "fc.bias"] and torch.equal(model.fc.weight, fc_before)
    assert torch.equal(model.layer4[1].conv2.weight, ref.layer4[1].conv2.weight)
    backbone = resfam.build("resnet18", features_only=True)
    assert resfam.load_pretrained(backbone, tmp_path / "r18.pth").dropped == ["fc.weight", "fc.bias"]
    assert "dropped 2" in str(report)
    # a pre-activation net's final norm belongs to the head too: a backbone has none
    v2 = randomize_norms(timm.create_model("resnetv2_50"))
    torch.save(v2.state_dict(), tmp_path / "v2.pth")
    v2_backbone = resfam.build("resnetv2_50", features_only=True)
    report = resfam.load_pretrained(v2_backbone, tmp_path / "v2.pth")
    assert report.dropped == ["norm.weight", "norm.bias", "norm.running_mean", "norm.running_var",
                              "norm.num_batches_tracked", "fc.weight", "fc.bias"]
    assert torch.equal(v2_backbone.layer4[2].conv3.weight, v2.stages[3].blocks[2].conv3.weight)


def test_mismatched_checkpoint_leaves_the_model_untouched(tmp_path):
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "r18.pth")
    model = resfam.build("resnet50")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(resfam.CheckpointError, match="tensors do not fit resnet50") as e:
        resfam.load_pretrained(model, tmp_path / "r18.pth")
    assert "r18.pth" in str(e.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_missing_keys_are_named(tmp_path):
    state = torchvision.models.resnet18().state_dict()
    del state["layer3.1.conv2.weight"]
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(resfam.CheckpointError, match=r"missing 1: layer3\.1\.conv2\.weight.*strict=False"):
        resfam.load_pretrained(resfam.build("resnet18"), tmp_path / "partial.pth")
    report = resfam.load_pretrained(resfam.build("resnet18"), tmp_path / "partial.pth", strict=False)
    assert report.missing == ["layer3.1.conv2.weight"]


def test_corrupt_and_unsafe_files(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint at all")
    with pytest.raises(resfam.CheckpointError, match="cannot read the checkpoint"):
        resfam.load_pretrained(resfam.build("resnet18"), tmp_path / "junk.pth")
    torch.save(torchvision.models.resnet18(), tmp_path / "whole_model.pth")  # a pickled module
    with pytest.raises(resfam.CheckpointError, match="cannot read the checkpoint"):
        resfam.load_pretrained(resfam.build("resnet18"), tmp_path / "whole_model.pth")
    with pytest.raises(resfam.CheckpointError, match="no such checkpoint file"):
        resfam.load_pretrained(resfam.build("resnet18"), tmp_path / "nope.pth")
