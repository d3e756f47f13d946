"""Transfer-learning modes on real data that ships offline (scikit-learn's 1,797 8x8 digits),
starting from a checkpoint the test writes: what trains, what stays exactly as loaded."""
import pytest
import torch

import resfam

load_digits = pytest.importorskip("sklearn.datasets", reason="scikit-learn (the 'data' extra) "
                                  "ships the digits data set").load_digits


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = torch.nn.functional.interpolate(x, size=16, mode="bilinear", align_corners=False)
    return (x - 0.5) / 0.5, torch.tensor(d.target)


@pytest.fixture
def checkpoint(tmp_path):
    """A 'pretrained' resnet20 with a 100-class head and non-trivial norm statistics."""
    source = resfam.build("resnet20", num_classes=100, in_chans=1).train()
    with torch.no_grad():
        for _ in range(3):
            source(torch.randn(32, 1, 16, 16))  # running statistics move away from 0 / 1
    path = tmp_path / "resnet20_pretrained.pth"
    torch.save(source.state_dict(), path)
    return path


def train(model, groups, digits, steps=30, batch=64):
    x, y = digits
    opt = torch.optim.SGD(groups, momentum=0.9, weight_decay=5e-4)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, len(x), (batch,), generator=g)
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def changed(before, model):
    return {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}


def test_head_only_leaves_every_backbone_tensor_as_loaded(checkpoint, digits):
    model = resfam.build("resnet20", pretrained=checkpoint, in_chans=1)  # head of 10 dropped
    assert model.load_report.dropped == ["fc.weight", "fc.bias"]
    groups = resfam.prepare_finetune(model, "head", num_classes=10, lr=0.1)
    assert [g["name"] for g in groups] == ["head"]
    before = snapshot(model)
    losses = train(model, groups, digits)
    assert sum(losses[-5:]) < sum(losses[:5])
    assert changed(before, model) == {"fc.weight", "fc.bias"}  # BN statistics included


def test_last_stage_trains_only_the_last_stage_and_the_head(checkpoint, digits):
    model = resfam.build("resnet20", pretrained=checkpoint, in_chans=1, num_classes=10)
    groups = resfam.prepare_finetune(model, "last", stages=1, lr=0.1, backbone_lr_scale=0.5)
    assert [(g["name"], g["lr"]) for g in groups] == [("backbone", 0.05), ("head", 0.1)]
    before = snapshot(model)
    losses = train(model, groups, digits)
    assert sum(losses[-5:]) < sum(losses[:5])
    moved = changed(before, model)
    assert moved and all(k.startswith(("layer3.", "fc.")) for k in moved)
    assert any(k.startswith("layer3.") and "running_mean" in k for k in moved)  # trains in train mode
    assert not model.layer2.training and model.layer3.training


def test_full_fine_tuning_trains_everything_at_two_learning_rates(checkpoint, digits):
    model = resfam.build("resnet20", pretrained=checkpoint, in_chans=1, num_classes=10)
    groups = resfam.prepare_finetune(model, "full", lr=0.08)
    assert [(g["name"], g["lr"]) for g in groups] == [("backbone", 0.08 * 0.1), ("head", 0.08)]
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    before = snapshot(model)
    train(model, groups, digits, steps=3)
    assert any(k.startswith("conv1.") for k in changed(before, model))


def test_head_only_freezes_a_preactivation_nets_final_norm():
    model = resfam.build("preact_resnet164", num_classes=10)
    resfam.prepare_finetune(model, "head")
    assert not model.norm.training and not model.norm.weight.requires_grad
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["fc.weight", "fc.bias"]


@pytest.mark.parametrize("kwargs,fragment", [
    (dict(mode="heads"), "did you mean 'head'"),
    (dict(mode="last", stages=4), "stages must be an int in 1..3"),
    (dict(mode="full", lr=-1), "lr must be a number >= 0"),
    (dict(mode="head", num_classes=0), "num_classes must be an int >= 1"),
])
def test_bad_arguments_are_resfam_errors(kwargs, fragment):
    with pytest.raises(resfam.ArgumentError, match=fragment):
        resfam.prepare_finetune(resfam.build("resnet20"), **kwargs)
    with pytest.raises(resfam.ArgumentError, match="expects a resfam model"):
        resfam.prepare_finetune(torch.nn.Linear(2, 2))
