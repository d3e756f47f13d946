"""mmdet / mmengine and detectron2 adapters without the frameworks. mmengine installs from PyPI and
is tested for real (registry build from a config with custom_imports); mmdet needs mmcv's
compiled ops and detectron2 is not on PyPI, so here their contracts are tested on their own;
tests/test_frameworks.py holds them against the real frameworks wherever those are installed."""
import pytest
import torch

import resfam


def test_mmengine_registry_round_trip_from_a_config(tmp_path):
    mmengine = pytest.importorskip("mmengine")
    from mmengine.config import Config
    from mmengine.registry import MODELS

    cfg_file = tmp_path / "det.py"
    cfg_file.write_text(
        "custom_imports = dict(imports=['resfam.integrations.mmdet'], allow_failed_imports=False)\n"
        "backbone = dict(type='ResFamBackbone', arch='res2net50_26w_4s', out_indices=(0, 1, 2, 3),\n"
        "                frozen_stages=1, norm_cfg=dict(type='BN', requires_grad=True), norm_eval=True)\n")
    cfg = Config.fromfile(str(cfg_file))  # processes custom_imports, as mmdet's tools do
    backbone = MODELS.build(cfg.backbone)
    assert type(backbone).__name__ == "ResFamBackbone"
    backbone.init_weights()
    backbone.train()
    assert not backbone.layer1.training and backbone.layer2.training
    assert all(not m.training for m in backbone.modules() if isinstance(m, torch.nn.BatchNorm2d))
    feats = backbone(torch.randn(1, 3, 64, 64))
    assert isinstance(feats, tuple) and [f.shape[1] for f in feats] == [256, 512, 1024, 2048]
    assert [64 // f.shape[-1] for f in feats] == [4, 8, 16, 32]
    # mmdet ResNet's key layout: its checkpoints load by name
    assert "layer1.0.downsample.0.weight" in backbone.state_dict() and "conv1.weight" in backbone.state_dict()


def test_mmdet_options_map_to_specs(tmp_path):
    pytest.importorskip("mmengine")
    from resfam.integrations.mmdet import ResFamBackbone

    bb = ResFamBackbone("resnet50", style="caffe", deep_stem=True, avg_down=True, out_indices=(3,),
                        norm_cfg=dict(type="BN", requires_grad=False), with_cp=True)
    assert bb.layer2[0].conv1.stride == (2, 2) and bb.layer2[0].conv2.stride == (1, 1)
    assert len(bb.stem) == 9 and isinstance(bb.layer2[0].downsample[0], torch.nn.AvgPool2d)  # mmdet's modules
    # requires_grad=False: a BatchNorm that still normalises, its affine terms fixed (mmdet's)
    assert bb.grad_checkpointing and type(bb.stem[7]) is torch.nn.BatchNorm2d
    assert not bb.stem[7].weight.requires_grad and bb.layer1[0].conv1.weight.requires_grad
    keys = list(bb.state_dict())  # mmdet ResNetV1d's names
    assert keys[:3] == ["stem.0.weight", "stem.1.weight", "stem.1.bias"]
    assert "stem.7.num_batches_tracked" in keys and "conv1.0.weight" not in keys
    assert len(bb(torch.randn(1, 3, 64, 64))) == 1
    ckpt = tmp_path / "r50.pth"
    torch.save({"state_dict": {"backbone." + k: v for k, v in resfam.build("resnet50").state_dict().items()}}, ckpt)
    pretrained = ResFamBackbone("resnet50", init_cfg=dict(type="Pretrained", checkpoint=str(ckpt)))
    pretrained.init_weights()
    ref = torch.load(ckpt, weights_only=True)["state_dict"]
    assert torch.equal(pretrained.layer3[0].conv2.weight, ref["backbone.layer3.0.conv2.weight"])
    assert pretrained.load_report.missing == [] and pretrained.load_report.unexpected == []


def test_mmdet_base_config_keys_defaults_gn_and_c4():
    """What a stock `_base_` config merges in is accepted; mmdet's defaults; GN's group count
    and names; C4's stages; dilated stages."""
    pytest.importorskip("mmengine")
    from resfam.integrations.mmdet import ResFamBackbone

    base = dict(depth=50, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=1, style="pytorch",
                norm_cfg=dict(type="BN", requires_grad=True), norm_eval=True, dcn=None,
                stage_with_dcn=(False, False, False, False), plugins=None, conv_cfg=None)
    bb = ResFamBackbone("res2net50_26w_4s", **base)  # depth=50 agrees with the arch: no warning
    assert bb.norm_eval and all(float(b.bn3.weight.abs().sum()) == 0 for b in bb.layer1)  # zero_init_residual
    with pytest.warns(UserWarning, match="depth=18 ignored"):
        ResFamBackbone("resnet50", depth=18)
    gn = ResFamBackbone("resnet50", norm_cfg=dict(type="GN", num_groups=16, requires_grad=True))
    assert gn.gn1.num_groups == 16 and gn.layer4[2].gn3.num_groups == 16
    assert "gn1.weight" in gn.state_dict() and "layer1.0.gn3.bias" in gn.state_dict()
    c4 = ResFamBackbone("resnet50", num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 1), out_indices=(2,))
    assert not hasattr(c4, "layer4") and c4(torch.randn(1, 3, 64, 64))[0].shape == (1, 1024, 4, 4)
    dc5 = ResFamBackbone("resnet50", strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2))
    assert dc5.layer4[0].conv2.dilation == (2, 2) and dc5.layer4[0].conv2.stride == (1, 1)
    assert dc5(torch.randn(1, 3, 64, 64))[3].shape == (1, 2048, 4, 4)
    for bad, key in [(dict(dcn=dict(type="DCNv2")), "dcn"), (dict(conv_cfg=dict(type="ConvWS")), "conv_cfg"),
                     (dict(norm_cfg=dict(type="LN")), "norm_cfg"), (dict(strides=(1, 2, 2, 2, 2)), "strides")]:
        with pytest.raises(resfam.BuildArgumentError, match=key):
            ResFamBackbone("resnet50", **bad)


def test_detectron2_backbone_contract():
    from resfam.integrations.detectron2 import ResFamD2Backbone

    bb = ResFamD2Backbone("iresnet50", out_features=("res3", "res5"), freeze_at=2)
    shapes = bb.output_shape()
    assert {k: (v.channels, v.stride) for k, v in shapes.items()} == {"res3": (512, 8), "res5": (2048, 32)}
    out = bb(torch.randn(1, 3, 64, 64))
    assert list(out) == ["res3", "res5"]
    assert {k: (v.shape[1], 64 // v.shape[-1]) for k, v in out.items()} == \
        {k: (s.channels, s.stride) for k, s in shapes.items()}
    assert not any(p.requires_grad for p in bb.body.layer1.parameters())
    assert all(p.requires_grad for p in bb.body.layer2.parameters())
    with pytest.raises(resfam.BuildArgumentError, match="res6"):
        ResFamD2Backbone("resnet18", out_features=("res6",))


def _d2_like_cfg(**resnets):
    """detectron2's config keys the adapter reads, as plain attributes."""
    from types import SimpleNamespace as N

    r = dict(OUT_FEATURES=["res4"], NORM="FrozenBN", STRIDE_IN_1X1=True, RES5_DILATION=1,
             DEFORM_ON_PER_STAGE=[False] * 4, DEPTH=50, NUM_GROUPS=1, WIDTH_PER_GROUP=64)
    r.update(resnets)
    return N(MODEL=N(RESFAM=N(ARCH=r.pop("ARCH", "resnet50")), RESNETS=N(**r), BACKBONE=N(FREEZE_AT=2),
                     WEIGHTS=""))


def test_detectron2_keys_and_config_semantics():
    """detectron2's names (stem.conv1.norm, res2.0.shortcut, ...), its C4 default (no res5
    built), STRIDE_IN_1X1, RES5_DILATION and FrozenBN for frozen stages."""
    from types import SimpleNamespace as N

    from resfam.integrations.detectron2 import backbone_from_cfg

    c4 = backbone_from_cfg(_d2_like_cfg(), N(channels=3))
    keys = list(c4.state_dict())
    assert keys[:2] == ["stem.conv1.weight", "stem.conv1.norm.weight"]
    assert "res2.0.shortcut.weight" in keys and "res2.0.shortcut.norm.running_var" in keys
    assert "res4.5.conv3.norm.bias" in keys and not any(k.startswith("res5.") for k in keys)
    assert c4.body.layer2[0].conv1.stride == (2, 2)  # STRIDE_IN_1X1 (MSRA weights)
    fpn = backbone_from_cfg(_d2_like_cfg(OUT_FEATURES=["res2", "res3", "res4", "res5"], NORM="BN",
                                         STRIDE_IN_1X1=False, RES5_DILATION=2), N(channels=3))
    assert fpn.body.layer2[0].conv2.stride == (2, 2) and fpn.body.layer4[0].conv2.dilation == (2, 2)
    assert fpn.output_shape()["res5"].stride == 16
    assert type(fpn.body.layer1[0].bn1).__name__ == "FrozenBatchNorm2d"  # frozen: FREEZE_AT=2
    assert type(fpn.body.layer2[0].bn1) is torch.nn.BatchNorm2d
    res2 = backbone_from_cfg(_d2_like_cfg(ARCH="res2net50_26w_4s"), N(channels=3))  # not a bottleneck: no 1x1 stride
    assert res2.body.layer2[0].conv1.stride == (1, 1)
    with pytest.raises(resfam.BuildArgumentError, match="NORM"):
        backbone_from_cfg(_d2_like_cfg(NORM="LN"), N(channels=3))
