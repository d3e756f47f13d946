"""torchvision detectors over resfam backbones, for real: an eval forward and a training step."""
import pytest
import torch
import torchvision
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

import resfam

FAMILIES = ["resnet18", "plain18", "resnetv2_50", "wide_resnet50_2", "resnext50_32x4d",
            "res2net50_26w_4s", "iresnet50", "highway_resnet50", "res2net50_iresnet", "regnety_002"]


def images_and_targets():
    images = [torch.rand(3, 128, 128), torch.rand(3, 128, 160)]
    targets = [{"boxes": torch.tensor([[10.0, 20.0, 70.0, 90.0]]), "labels": torch.tensor([3])},
               {"boxes": torch.tensor([[5.0, 5.0, 60.0, 50.0], [70.0, 40.0, 120.0, 110.0]]),
                "labels": torch.tensor([1, 7])}]
    return images, targets


def train_and_eval(model):
    images, targets = images_and_targets()
    model.train()
    losses = model(images, targets)
    total = sum(losses.values())
    assert all(torch.isfinite(v) for v in losses.values()), losses
    total.backward()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    opt.step()
    model.eval()
    with torch.no_grad():
        out = model(images)
    assert len(out) == 2 and {"boxes", "scores", "labels"} <= set(out[0])
    return model


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_faster_rcnn(name):
    backbone = resfam.detection.torchvision_fpn_backbone(name, trainable_layers=3)
    assert backbone.out_channels == 256
    model = torchvision.models.detection.FasterRCNN(backbone, num_classes=91, min_size=128, max_size=160)
    train_and_eval(model)
    body = backbone.body
    assert all(not p.requires_grad for n, p in body.named_parameters() if n.startswith(("conv1", "layer1.")))
    assert any(p.grad is not None for n, p in body.named_parameters() if n.startswith("layer4."))


@pytest.mark.slow
def test_faster_rcnn_over_inception_resnet_v2():
    """Three stages at strides 8, 16, 32 whose sides are not halves of each other (unpadded
    layers: 13, 6, 2 at 128 px): torchvision's FPN resizes to each level's size, so it trains."""
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    backbone = resfam.detection.torchvision_fpn_backbone("inception_resnet_v2", trainable_layers=2)
    anchors = AnchorGenerator(((32,), (64,), (128,), (256,)), ((0.5, 1.0, 2.0),) * 4)  # 3 + pool
    model = torchvision.models.detection.FasterRCNN(backbone, num_classes=91, min_size=128,
                                                    max_size=160, rpn_anchor_generator=anchors)
    train_and_eval(model)
    body = backbone.body
    assert all(not p.requires_grad for n, p in body.named_parameters() if n.startswith(("stem", "layer1.")))
    assert any(p.grad is not None for n, p in body.named_parameters() if n.startswith("layer3."))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "iresnet50", "res2net50_26w_4s"])
def test_retinanet(name):
    backbone = resfam.detection.torchvision_fpn_backbone(
        name, trainable_layers=5, returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(256, 256))
    model = torchvision.models.detection.RetinaNet(backbone, num_classes=91, min_size=128, max_size=160)
    train_and_eval(model)
    assert all(p.requires_grad for p in backbone.body.parameters())


def test_bad_arguments():
    with pytest.raises(resfam.BuildArgumentError, match="trainable_layers must be in \\[0, 5\\]"):
        resfam.detection.torchvision_fpn_backbone("resnet18", trainable_layers=6)
    with pytest.raises(resfam.BuildArgumentError, match="returned_layers"):
        resfam.detection.torchvision_fpn_backbone("resnet20", returned_layers=[1, 4])


def test_defaults_from_scratch_normalise_and_zero_init():
    """Without weights: BatchNorm, every stage trainable, residual branches zero at init, so the
    features keep their scale; frozen BN without weights (the old default) lets them explode."""
    x = torch.randn(2, 3, 256, 256)
    backbone = resfam.detection.torchvision_fpn_backbone("res2net50_26w_4s")
    body = backbone.body
    assert all(p.requires_grad for p in body.parameters())
    assert isinstance(body.layer4[0].bn3, torch.nn.BatchNorm2d) and not body.layer4[0].bn3.weight.any()
    trap = resfam.detection.torchvision_fpn_backbone("res2net50_26w_4s", norm_layer="frozen_bn",
                                                     zero_init_last=False)
    with torch.no_grad():
        std = body.train()(x)["3"].std().item()
        trap_std = trap.body.train()(x)["3"].std().item()
    assert std < 5 and trap_std > 100, (std, trap_std)


def test_defaults_with_weights_freeze_bn_and_the_first_stages(tmp_path):
    ref = torchvision.models.resnet18()
    torch.save(ref.state_dict(), tmp_path / "r18.pth")
    backbone = resfam.detection.torchvision_fpn_backbone("resnet18", weights=tmp_path / "r18.pth")
    body = backbone.body
    assert isinstance(body.layer4[0].bn1, torchvision.ops.FrozenBatchNorm2d)
    trainable = {n.split(".")[0] for n, p in body.named_parameters() if p.requires_grad}
    assert trainable == {"layer2", "layer3", "layer4"}
    assert torch.equal(body.layer3[1].conv2.weight, ref.layer3[1].conv2.weight)
    assert torch.equal(body.layer1[0].bn1.running_var, ref.layer1[0].bn1.running_var)
