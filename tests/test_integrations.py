"""mmdet / mmengine and detectron2 adapters. mmengine installs from PyPI and is tested for real
(registry build from a config with custom_imports). mmdet needs mmcv, which has no wheel for this
torch on PyPI, and detectron2 is not on PyPI: their contracts are tested without them."""
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
    assert isinstance(bb.conv1, torch.nn.Sequential) and isinstance(bb.layer2[0].downsample[0], torch.nn.AvgPool2d)
    assert bb.grad_checkpointing and type(bb.bn1).__name__ == "FrozenBatchNorm2d"
    assert len(bb(torch.randn(1, 3, 64, 64))) == 1
    ckpt = tmp_path / "r50.pth"
    torch.save({"state_dict": {"backbone." + k: v for k, v in resfam.build("resnet50").state_dict().items()}}, ckpt)
    pretrained = ResFamBackbone("resnet50", init_cfg=dict(type="Pretrained", checkpoint=str(ckpt)))
    pretrained.init_weights()
    ref = torch.load(ckpt, weights_only=True)["state_dict"]
    assert torch.equal(pretrained.layer3[0].conv2.weight, ref["backbone.layer3.0.conv2.weight"])


def test_detectron2_backbone_contract():
    from resfam.integrations.detectron2 import ResFamD2Backbone

    bb = ResFamD2Backbone("iresnet50", out_features=("res3", "res5"), freeze_at=2)
    shapes = bb.output_shape()
    assert {k: (v.channels, v.stride) for k, v in shapes.items()} == {"res3": (512, 8), "res5": (2048, 32)}
    assert bb.size_divisibility == 32
    out = bb(torch.randn(1, 3, 64, 64))
    assert list(out) == ["res3", "res5"]
    assert {k: (v.shape[1], 64 // v.shape[-1]) for k, v in out.items()} == \
        {k: (s.channels, s.stride) for k, s in shapes.items()}
    assert not any(p.requires_grad for p in bb.body.layer1.parameters())
    assert all(p.requires_grad for p in bb.body.layer2.parameters())
    with pytest.raises(ValueError, match="res6"):
        ResFamD2Backbone("resnet18", out_features=("res6",))
