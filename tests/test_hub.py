"""``build(pretrained=...)`` through timm's and torchvision's own caches, offline.

Each test writes a small random checkpoint exactly where the owning library looks (a Hugging Face
cache layout under ``HF_HOME``, torch.hub's ``TORCH_HOME/hub/checkpoints``) and runs resfam in a
fresh interpreter with ``HF_HUB_OFFLINE=1`` (the libraries read those variables at import), so
nothing touches the network.
"""
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
import timm
import torch
import torchvision

import resfam
import resfam.weights.hub  # monkeypatched below: resfam loads it lazily, on first use
from conftest import randomize_norms, warm_hf_cache

def run_offline(tmp_path, code):
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf"), TORCH_HOME=str(tmp_path / "torch"),
               HF_HUB_OFFLINE="1")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    return proc, time.perf_counter() - start


def reference_output(model, size=64):
    torch.manual_seed(0)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        return model.eval()(x)


LOAD = """
import json, torch, resfam, timm.data
m = resfam.build({name!r}, pretrained={pretrained!r})
torch.manual_seed(0)
x = torch.randn(2, 3, 64, 64)
with torch.no_grad():
    y = m.eval()(x)
torch.save(y, "out.pt")
cfg = resfam.data_config(m)
transform = timm.data.create_transform(**cfg)
print(json.dumps(dict(cfg=m.pretrained_cfg, data=cfg, report=str(m.load_report),
                      transform=str(transform))))
"""


def test_timm_weights_from_a_warm_hugging_face_cache(tmp_path):
    ref = randomize_norms(timm.create_model("resnet18"))
    warm_hf_cache(tmp_path / "hf", "timm/resnet18.a1_in1k", ref.state_dict())
    proc, _ = run_offline(tmp_path, LOAD.format(name="resnet18", pretrained=True))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    torch.testing.assert_close(torch.load(tmp_path / "out.pt"), reference_output(ref), atol=1e-4, rtol=1e-4)
    assert out["cfg"]["source"] == "timm" and out["cfg"]["tag"] == "resnet18.a1_in1k"
    assert out["cfg"]["crop_pct"] == timm.models.get_pretrained_cfg("resnet18.a1_in1k").crop_pct
    assert out["data"]["interpolation"] == "bicubic" and f"loaded {len(ref.state_dict())} tensors" in out["report"]


def test_torchvision_weights_from_a_warm_torch_hub_cache(tmp_path):
    ref = randomize_norms(torchvision.models.resnet18())
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    torch.save(ref.state_dict(), folder / os.path.basename(url))
    proc, _ = run_offline(tmp_path, LOAD.format(name="resnet18", pretrained="tv:IMAGENET1K_V1"))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    torch.testing.assert_close(torch.load(tmp_path / "out.pt"), reference_output(ref), atol=1e-4, rtol=1e-4)
    assert out["cfg"]["source"] == "torchvision" and out["cfg"]["tag"] == "ResNet18_Weights.IMAGENET1K_V1"
    assert out["data"]["crop_pct"] == round(224 / 256, 4) and "Resize(size=256" in out["transform"]


def test_offline_without_a_cache_fails_fast_and_says_where_it_looked(tmp_path):
    """Offline, resfam asks no host anything: no DNS look-up, no connection, so no retries
    (counted, not timed)."""
    code = """
    import socket
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args[:1])
        raise OSError("the network was used")

    socket.getaddrinfo = socket.create_connection = refuse
    socket.socket.connect = lambda self, *a: refuse(*a)
    import resfam
    for pretrained in (True, "torchvision"):
        try:
            resfam.build("resnet50", pretrained=pretrained)
        except resfam.ResfamError as e:
            print(type(e).__name__, e)
    print("network calls:", len(calls))
    """
    proc, _ = run_offline(tmp_path, code)
    assert proc.returncode == 0, proc.stderr
    timm_line, tv_line, calls = proc.stdout.strip().splitlines()
    assert calls == "network calls: 0"
    assert timm_line.startswith("PretrainedError timm:resnet50.a1_in1k: not in the Hugging Face cache")
    assert str(tmp_path / "hf" / "hub" / "models--timm--resnet50.a1_in1k") in timm_line and "offline" in timm_line
    assert tv_line.startswith("PretrainedError torchvision:ResNet50_Weights.IMAGENET1K_V2: not in the torch.hub cache")
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / "resnet50-11ad3fa6.pth") in tv_line


@pytest.mark.parametrize("pretrained,fragment", [
    ("timm:nope", "no timm weights tagged 'nope'"),
    ("hf", "no weights from 'hf'"),
    (5, "should be a bool, a source, a tag or a path"),
])
def test_bad_pretrained_values(monkeypatch, pretrained, fragment):
    monkeypatch.setattr(resfam.weights.hub, "fetch", lambda w: pytest.fail("fetched despite a bad value"))
    with pytest.raises(resfam.ResfamError, match=fragment):
        resfam.build("resnet50", pretrained=pretrained)


def test_a_variant_without_weights_lists_those_with():
    with pytest.raises(resfam.ResfamError, match=r"resnet20: no published weights.*resnet50d"):
        resfam.build("resnet20", pretrained=True)
    with pytest.raises(resfam.ResfamError, match=r"mine: no published weights"):  # a user's spec
        resfam.build({"name": "mine", "extends": "resnet18"}, pretrained=True)
    with_weights = resfam.list_models(pretrained=True)
    assert "resnet50" in with_weights and "iresnet50" not in with_weights and "resnet20" not in with_weights
    assert "torchvision:ResNet50_Weights.IMAGENET1K_V2" in resfam.list_pretrained("resnet50")


def test_bad_build_arguments_fail_before_fetching(monkeypatch):
    monkeypatch.setattr(resfam.weights.hub, "fetch", lambda w: pytest.fail("fetched despite bad arguments"))
    with pytest.raises(resfam.BuildArgumentError, match="drop_rate"):
        resfam.build("resnet50", pretrained=True, drop_rate=2.0)


def test_local_checkpoint_into_another_head_and_another_in_chans(tmp_path):
    ref = randomize_norms(torchvision.models.resnet18())
    torch.save(ref.state_dict(), tmp_path / "r18.pth")
    model = resfam.build("resnet18", pretrained=tmp_path / "r18.pth", num_classes=10, in_chans=1)
    report = model.load_report
    assert report.adapted == ["conv1.weight"] and report.dropped == ["fc.weight", "fc.bias"]
    # timm's adapt_input_conv: one channel is the sum over RGB
    torch.testing.assert_close(model.conv1.weight, ref.conv1.weight.sum(1, keepdim=True))
    assert torch.equal(model.layer4[1].conv2.weight, ref.layer4[1].conv2.weight)
    assert model.pretrained_cfg["source"] == "file" and resfam.data_config(model)["input_size"] == (1, 224, 224)
    assert len(resfam.data_config(model)["mean"]) == 1
    backbone = resfam.build("resnet18", pretrained=str(tmp_path / "r18.pth"), features_only=True)
    assert backbone.load_report.dropped == ["fc.weight", "fc.bias"]
