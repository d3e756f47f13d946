"""The mmdet and detectron2 adapters against the real frameworks and their own ResNet.

Neither framework installs from a wheel for this torch (mmcv's ops need building; detectron2 is
not on PyPI): `bash tests/install_detection_frameworks.sh [detectron2 checkout]` builds both
into the current environment (about 6 minutes on two cores), and these tests run wherever
they import. .ci/run does not build them; there the tests skip and say so.

Every comparison holds resfam's adapter against the framework's own ResNet-50 (or detector)
carrying the same weights: state-dict keys, the trainable set, outputs in float64 in eval and
train mode, a detector's losses and detections, checkpoints loaded the framework's way, and a
two-process DDP run.
"""
from __future__ import annotations

import importlib
import logging
import os
import pickle
import re
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import resfam


def _importable(*names: str) -> bool:
    try:
        for name in names:
            importlib.import_module(name)
        return True
    except Exception:  # noqa: BLE001 - a half-installed framework fails in many ways
        return False


INSTALL = "build it with: bash tests/install_detection_frameworks.sh"
needs_mmdet = pytest.mark.skipif(not _importable("mmcv.ops", "mmdet.models"),
                                 reason=f"mmdet 3.x with mmcv's compiled ops is not installed; {INSTALL}")
needs_d2 = pytest.mark.skipif(not _importable("detectron2.modeling"),
                              reason=f"detectron2 is not installed (not on PyPI); {INSTALL} <checkout>")


def _perturbed(state: dict, seed: int = 0, scale: float = 0.1) -> dict:
    """The same keys with random values: norm statistics away from 0 / 1, so every term counts
    (``scale``: the noise added to the other tensors)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in state.items():
        if not v.is_floating_point():
            out[k] = v
        elif k.endswith("running_var"):
            out[k] = torch.rand(v.shape, generator=g) + 0.5
        else:
            out[k] = v + scale * torch.randn(v.shape, generator=g)
    return out


def _same_outputs(ref, mine, x, train: bool) -> None:
    ref.train(train)
    mine.train(train)
    a, b = ref(x), mine(x)
    if isinstance(a, dict):
        assert list(a) == list(b)
        a, b = list(a.values()), list(b.values())
    assert len(a) == len(b)
    for p, q in zip(a, b):
        assert p.shape == q.shape
        torch.testing.assert_close(q, p, rtol=1e-12, atol=0)


def _same_network(ref, mine, x) -> None:
    """With the same random weights and norm statistics (loaded by the framework's names): the
    same outputs in float64 in eval and train mode, and the same trainable tensors."""
    state = _perturbed(ref.state_dict())
    ref.load_state_dict(state)
    mine.load_state_dict(state)
    ref.double(), mine.double()
    _same_outputs(ref, mine, x, train=False)
    _same_outputs(ref, mine, x, train=True)  # norm_eval, frozen stages, batch statistics
    names = _param_keys(mine)
    assert {names[n] for n, p in mine.named_parameters() if p.requires_grad} == \
        {n for n, p in ref.named_parameters() if p.requires_grad}


def _same_losses(theirs: dict, ours: dict) -> None:
    """A detector's loss dict, term by term (float32: equal up to summation order)."""
    assert list(ours) == list(theirs)
    for k in theirs:
        torch.testing.assert_close(ours[k], theirs[k], rtol=1e-5, atol=1e-6)


def _param_keys(module) -> dict:
    """parameter name -> its state-dict key (the framework's name)."""
    keys = [k for k, v in module.state_dict(keep_vars=True).items() if isinstance(v, torch.nn.Parameter)]
    return dict(zip([n for n, _ in module.named_parameters()], keys))


def _norms_in_train_mode(module) -> set:
    """State-dict names of the BatchNorms that normalise with batch statistics."""
    key_of = {id(v): k for k, v in module.state_dict(keep_vars=True).items()}
    return {key_of[id(m.running_mean)].rsplit(".", 1)[0] for m in module.modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.training}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- mmdetection ---------------------------------------------------------------------------

MMDET_CASES = {
    "resnet50": dict(depth=50),
    "gn16": dict(depth=50, norm_cfg=dict(type="GN", num_groups=16, requires_grad=True)),
    "c4-caffe-frozen-affine": dict(depth=50, style="caffe", num_stages=3, strides=(1, 2, 2),
                                   dilations=(1, 1, 1), out_indices=(2,), frozen_stages=1,
                                   norm_cfg=dict(type="BN", requires_grad=False)),
    "dc5": dict(depth=50, strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2)),
    "v1d": dict(depth=50, deep_stem=True, avg_down=True),
    "resnet18-batch-stats": dict(depth=18, norm_eval=False, frozen_stages=2),
    "frozen-affine-batch-stats": dict(depth=50, norm_eval=False,
                                      norm_cfg=dict(type="BN", requires_grad=False)),
}


def _mmdet_pair(kw: dict):
    from mmdet.models.backbones import ResNet

    from resfam.integrations.mmdet import ResFamBackbone

    ref = ResNet(**kw)
    ref.init_weights()
    mine = ResFamBackbone(arch=f"resnet{kw['depth']}", **kw)
    return ref, mine


@needs_mmdet
@pytest.mark.parametrize("case", list(MMDET_CASES))
def test_mmdet_resnet_keys_outputs_and_trainable_set(case):
    """Same keys in the same order, the same trainable tensors, the same maps (float64)."""
    ref, mine = _mmdet_pair(MMDET_CASES[case])
    assert list(mine.state_dict()) == list(ref.state_dict())
    _same_network(ref, mine, torch.randn(2, 3, 64, 64, dtype=torch.float64))  # strict loads: mmdet's names
    for name, buf in ref.state_dict().items():  # running statistics moved the same way
        torch.testing.assert_close(mine.state_dict()[name], buf, rtol=1e-12, atol=0)


@needs_mmdet
@pytest.mark.parametrize("frozen_stages", [-1, 0, 1, 2, 3, 4])
@pytest.mark.parametrize("requires_grad", [True, False])
@pytest.mark.parametrize("norm", ["BN", "SyncBN", "GN"])
def test_mmdet_trainable_sets_for_every_freezing(frozen_stages, requires_grad, norm):
    norm_cfg = dict(type=norm, requires_grad=requires_grad, **({"num_groups": 32} if norm == "GN" else {}))
    kw = dict(depth=50, frozen_stages=frozen_stages, norm_cfg=norm_cfg)
    ref, mine = _mmdet_pair(kw)
    ref.train(), mine.train()
    names = _param_keys(mine)
    assert {names[n] for n, p in mine.named_parameters() if p.requires_grad} == \
        {n for n, p in ref.named_parameters() if p.requires_grad}
    assert _norms_in_train_mode(mine) == _norms_in_train_mode(ref)


def _mmdet_config(tmp_path, text: str):
    from mmengine.config import Config

    path = tmp_path / "cfg.py"
    path.write_text(text)
    return Config.fromfile(str(path))


def _mmdet_batch():
    from mmdet.testing import demo_mm_inputs

    torch.manual_seed(0)
    return demo_mm_inputs(batch_size=2, image_shapes=[(3, 128, 160), (3, 128, 160)], num_items=[3, 2],
                          num_classes=80)


def _mmdet_losses(model, data, seed=0):
    torch.manual_seed(seed)
    return model(**model.data_preprocessor(data, True), mode="loss")


def _mmdet_train_steps(model, steps: int = 2):
    """``steps`` SGD steps on the demo batch with finite losses; returns the batch."""
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    data = _mmdet_batch()
    model.train()
    for step in range(steps):
        losses = _mmdet_losses(model, data, seed=step)
        total = sum(v if torch.is_tensor(v) else sum(v) for v in losses.values())
        assert torch.isfinite(total)
        opt.zero_grad()
        total.backward()
        opt.step()
    return data


def _mmdet_predict(model, data):
    return model(**model.data_preprocessor(data, False), mode="predict")


def _in_hub(tmp_path, monkeypatch, filename: str, state: dict) -> None:
    """``state`` where mmengine's and torchvision's loaders look for ``filename`` (the hub cache)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True, exist_ok=True)
    torch.save(state, hub / filename)


def _tv_resnet50():
    import torchvision

    return torchvision.models.resnet50().state_dict()


def _mmdet_backbone_state(kind: str, **kw):
    from mmdet.models import backbones

    return getattr(backbones, kind)(**kw).state_dict()


# stock config, the backbone keys a user sets, and the file its init_cfg names (in the hub cache)
MMDET_STOCK = {
    "faster_rcnn_r50": ("faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py", "arch='resnet50'",
                        "resnet50-0676ba61.pth", _tv_resnet50),
    "regnetx_3.2gf": ("regnet/faster-rcnn_regnetx-3.2GF_fpn_1x_coco.py", "arch='regnetx_032'",
                      "regnetx_3.2gf-c2599b0f.pth",
                      lambda: _mmdet_backbone_state("RegNet", arch="regnetx_3.2gf")),
    "res2net101": ("res2net/faster-rcnn_res2net-101_fpn_2x_coco.py", "arch='res2net101d', stage_pool='strided'",
                   "res2net101_v1d_26w_4s_mmdetv2-f0a600f9.pth",
                   lambda: _mmdet_backbone_state("Res2Net", depth=101, scales=4, base_width=26)),
}


@needs_mmdet
@pytest.mark.parametrize("name", list(MMDET_STOCK))
def test_mmdet_stock_base_config_overridden_with_a_resfam_backbone(tmp_path, monkeypatch, name):
    """A stock config with only `type`/`arch` set: the inherited keys (depth, norm_cfg,
    norm_eval, style, ResNeXt's / Res2Net's own, and init_cfg naming torchvision:// or
    open-mmlab:// weights) merge in and mean what they mean in mmdet; with the same file the
    backbone holds the same tensors and the detector's losses and detections are mmdet's.
    Res2Net: mmdet's network (stage_pool='strided') on mmdet's Res2Net weights; RegNet: mmdet's
    RegNet config with timm's name for the same network."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    base, keys, filename, make_state = MMDET_STOCK[name]
    # (101 layers of weights 0.1 off their init overflow the detector's losses: less noise there)
    _in_hub(tmp_path, monkeypatch, filename, _perturbed(make_state(), seed=1, scale=0.01 if "101" in name else 0.1))
    register_all_modules()
    stock_cfg = _mmdet_config(tmp_path, f"_base_ = 'mmdet::{base}'\n")
    ours_cfg = _mmdet_config(tmp_path, f"_base_ = 'mmdet::{base}'\n"
                             "custom_imports = dict(imports=['resfam.integrations.mmdet'], allow_failed_imports=False)\n"
                             f"model = dict(backbone=dict(type='ResFamBackbone', {keys}))\n")
    stock, ours = MODELS.build(stock_cfg.model), MODELS.build(ours_cfg.model)
    stock.init_weights()
    ours.init_weights()  # the same file from the hub cache, converted by name
    assert sorted(ours.state_dict()) == sorted(stock.state_dict())
    for k, v in stock.backbone.state_dict().items():
        assert torch.equal(ours.backbone.state_dict()[k], v), k
    assert ours.backbone.load_report.missing == []
    ours.load_state_dict(stock.state_dict())  # the neck and heads too: one network
    data = _mmdet_batch()
    stock.train(), ours.train()
    _same_losses(_mmdet_losses(stock, data), _mmdet_losses(ours, data))
    stock.eval(), ours.eval()
    with torch.no_grad():
        pa, pb = _mmdet_predict(stock, data), _mmdet_predict(ours, data)
    for x, y in zip(pa, pb):
        torch.testing.assert_close(y.pred_instances.bboxes, x.pred_instances.bboxes, rtol=1e-4, atol=1e-3)
        assert torch.equal(y.pred_instances.labels, x.pred_instances.labels)


@needs_mmdet
def test_mmdet_res2net_checkpoints_need_stage_pool(tmp_path):
    """mmdet's Res2Net checkpoints load with no key missing into any Res2Net arch, but mmdet's
    network differs (layer1[0] passes its last split through): refused unless stage_pool says
    which network; 'strided' equals mmdet's Res2Net (float64), 'always' is the official one.
    The arch's own deep stem takes mmdet's stem.* keys without deep_stem=True."""
    from mmdet.models.backbones import Res2Net

    from resfam.errors import CheckpointError
    from resfam.integrations.mmdet import ResFamBackbone

    ref = Res2Net(depth=50, scales=4, base_width=26)
    state = _perturbed(ref.state_dict())
    ref.load_state_dict(state)
    ckpt = tmp_path / "mmdet_res2net50.pth"
    torch.save(state, ckpt)
    init = dict(type="Pretrained", checkpoint=str(ckpt))
    with pytest.raises(CheckpointError, match="stage_pool='strided'"):
        ResFamBackbone("res2net50d", init_cfg=init).init_weights()
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    ref.double().eval()
    for stage_pool in ("strided", "always"):
        mine = ResFamBackbone("res2net50d", stage_pool=stage_pool, init_cfg=init)
        mine.init_weights()
        assert mine.load_report.missing == [] and mine.load_report.unexpected == []
        mine.double().eval()
        same = torch.allclose(mine(x)[0], ref(x)[0], rtol=1e-10, atol=0)
        assert same == (stage_pool == "strided")
    with pytest.raises(resfam.BuildArgumentError, match="stage_pool"):
        ResFamBackbone("resnet50", stage_pool="strided")


@needs_mmdet
def test_mmdet_resnext_and_res2net_keys_agree_with_the_arch_or_fail(tmp_path):
    """Stock ResNeXt / Res2Net configs with only `type` and `arch` changed build (their
    groups / base_width / scales describe the arch); keys that contradict the arch fail in one
    resfam error naming the key."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    register_all_modules()
    for base, arch, wrong in [("faster_rcnn/faster-rcnn_x101-32x4d_fpn_1x_coco.py", "resnext101_32x4d", "resnext101_32x8d"),
                              ("res2net/faster-rcnn_res2net-101_fpn_2x_coco.py", "res2net101d", "resnet101")]:
        def cfg(a):
            return _mmdet_config(tmp_path, f"_base_ = 'mmdet::{base}'\n"
                                 "custom_imports = dict(imports=['resfam.integrations.mmdet'], allow_failed_imports=False)\n"
                                 f"model = dict(backbone=dict(type='ResFamBackbone', arch='{a}'))\n")
        model = MODELS.build(cfg(arch).model)
        assert type(model.backbone).__name__ == "ResFamBackbone"
        with pytest.raises(resfam.BuildArgumentError, match="groups|base_width|scales"):
            MODELS.build(cfg(wrong).model)
    from resfam.integrations.mmdet import ResFamBackbone

    ResFamBackbone("resnet50", groups=1, base_width=4)  # mmdet ignores base_width with one group
    with pytest.raises(resfam.BuildArgumentError, match="scales"):
        ResFamBackbone("res2net50_26w_4s", scales=8)


@needs_mmdet
@pytest.mark.parametrize("arch", ["res2net50_26w_4s", "iresnet50", "cspresnext50"])
def test_mmdet_stock_configs_train_with_other_archs(tmp_path, arch):
    """Faster R-CNN FPN and RetinaNet stock configs with another arch (its own checkpoint,
    and `_delete_=True` for the second): two optimiser steps, finite losses, detections."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    register_all_modules()
    ckpt = tmp_path / f"{arch}.pth"
    # a from-scratch checkpoint with each block's last norm at zero (Goyal et al. 2017, as one
    # trains from scratch): with He init alone a 2-step SGD run of Faster R-CNN on Res2Net's
    # random features diverged for some seeds (losses 1e20, then NaN), which tests the seed
    torch.save(resfam.build(arch, zero_init_last=True).state_dict(), ckpt)
    for base, override in [
        ("faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py",
         f"dict(type='ResFamBackbone', arch='{arch}', init_cfg=dict(type='Pretrained', checkpoint='{ckpt}'))"),
        ("retinanet/retinanet_r50_fpn_1x_coco.py",
         f"dict(_delete_=True, type='ResFamBackbone', arch='{arch}', frozen_stages=1,"
         f" init_cfg=dict(type='Pretrained', checkpoint='{ckpt}'))"),
    ]:
        cfg = _mmdet_config(tmp_path, f"_base_ = 'mmdet::{base}'\n"
                            "custom_imports = dict(imports=['resfam.integrations.mmdet'], allow_failed_imports=False)\n"
                            f"model = dict(backbone={override})\n")
        model = MODELS.build(cfg.model)
        model.init_weights()
        assert model.backbone.load_report.loaded > 0 and not model.backbone.load_report.missing
        data = _mmdet_train_steps(model)
        model.eval()
        with torch.no_grad():
            assert len(_mmdet_predict(model, data)) == 2


@needs_mmdet
def test_mmdet_faster_rcnn_over_inception_resnet_v2(tmp_path):
    """A three-stage arch at strides 8, 16, 32 whose sides are not halves (unpadded layers):
    the stock config's four stages are refused by name; with num_stages 3, the neck's widths
    and the heads' strides set, mmdet's FPN (which resizes to each level's size) trains."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    from resfam.integrations.mmdet import ResFamBackbone

    register_all_modules()
    with pytest.raises(resfam.BuildArgumentError, match="num_stages.*has 3 stages"):
        ResFamBackbone("inception_resnet_v2", num_stages=4, out_indices=(0, 1, 2, 3))
    cfg = _mmdet_config(tmp_path, "_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'\n"
                        "custom_imports = dict(imports=['resfam.integrations.mmdet'], allow_failed_imports=False)\n"
                        "model = dict(backbone=dict(_delete_=True, type='ResFamBackbone', arch='inception_resnet_v2',"
                        " num_stages=3, out_indices=(0, 1, 2), frozen_stages=1),\n"
                        "    neck=dict(in_channels=[320, 1088, 2080], num_outs=4),\n"
                        "    rpn_head=dict(anchor_generator=dict(strides=[8, 16, 32, 64])),\n"
                        "    roi_head=dict(bbox_roi_extractor=dict(featmap_strides=[8, 16, 32, 64])))\n")
    model = MODELS.build(cfg.model)
    model.init_weights()
    data = _mmdet_train_steps(model)
    assert all(not p.requires_grad for n, p in model.backbone.named_parameters()
               if n.startswith(("stem", "layer1.")))
    model.eval()
    with torch.no_grad():
        assert len(_mmdet_predict(model, data)) == 2


@needs_mmdet
def test_mmdet_gn_and_deep_stem_checkpoints_load_by_name(tmp_path, caplog):
    """mmdet's own GN / ResNetV1d checkpoints (``gn1``, ``stem.0``) load fully through
    init_cfg, and what does not load is logged, not dropped silently."""
    from mmdet.models.backbones import ResNet

    from resfam.integrations.mmdet import ResFamBackbone

    for kw in (dict(norm_cfg=dict(type="GN", num_groups=32, requires_grad=True)),
               dict(deep_stem=True, avg_down=True)):
        ref = ResNet(depth=50, **kw)
        state = _perturbed(ref.state_dict())
        ckpt = tmp_path / "mmdet.pth"
        torch.save({"state_dict": {"backbone." + k: v for k, v in state.items()}, "meta": {}}, ckpt)
        for init in (dict(type="Pretrained", checkpoint=str(ckpt), prefix="backbone."),
                     dict(type="Pretrained", checkpoint=str(ckpt))):  # mmdet's ResNet loads nothing here
            mine = ResFamBackbone("resnet50", init_cfg=init, **kw)
            mine.init_weights()
            assert mine.load_report.missing == [] and mine.load_report.unexpected == []
            for k, v in state.items():
                assert torch.equal(mine.state_dict()[k], v), k
    partial = tmp_path / "partial.pth"
    torch.save({k: v for k, v in resfam.build("resnet50").state_dict().items() if not k.startswith("layer4.")}, partial)
    mine = ResFamBackbone("resnet50", init_cfg=dict(type="Pretrained", checkpoint=str(partial)))
    with caplog.at_level(logging.WARNING):
        mine.init_weights()
    assert len(mine.load_report.missing) > 0 and "missing" in str(mine.load_report)


@needs_mmdet
@pytest.mark.parametrize("kw", [dict(deep_stem=True, avg_down=True),
                                dict(norm_cfg=dict(type="GN", num_groups=32, requires_grad=True))],
                         ids=["deep-stem", "gn"])
def test_mmdet_custom_keys_reach_the_same_parameters(kw):
    """mmengine's optimizer constructor matches paramwise_cfg.custom_keys against module paths:
    'backbone.stem' (a deep stem), 'backbone.gn1' and 'layer1.0.gn2' (GN) give the same
    parameters the same learning rate in mmdet's ResNet and in ResFamBackbone."""
    from mmdet.models.backbones import ResNet
    from mmengine.optim import DefaultOptimWrapperConstructor

    from resfam.integrations.mmdet import ResFamBackbone

    keys = {"backbone.stem": 0.1, "backbone.gn1": 0.2, "layer1.0.gn2": 0.3, "backbone.layer4": 0.4}
    constructor = DefaultOptimWrapperConstructor(
        dict(optimizer=dict(type="SGD", lr=1.0)),
        paramwise_cfg=dict(custom_keys={k: dict(lr_mult=v) for k, v in keys.items()}))

    def numel_per_lr(backbone) -> dict:
        holder = torch.nn.Module()
        holder.backbone = backbone
        out = {}
        for group in constructor(holder).optimizer.param_groups:
            out[group["lr"]] = out.get(group["lr"], 0) + sum(p.numel() for p in group["params"])
        return out

    theirs, ours = numel_per_lr(ResNet(depth=50, **kw)), numel_per_lr(ResFamBackbone("resnet50", **kw))
    assert ours == theirs
    assert set(theirs) >= {1.0, 0.4} and len(theirs) >= 3  # some of the keys matched something


@needs_mmdet
def test_mmdet_arguments_it_cannot_honour_fail_or_warn():
    from resfam.errors import BuildArgumentError
    from resfam.integrations.mmdet import ResFamBackbone

    with pytest.raises(BuildArgumentError, match="dcn"):
        ResFamBackbone("resnet50", dcn=dict(type="DCNv2"), stage_with_dcn=(False, True, True, True))
    with pytest.raises(BuildArgumentError, match="plugins"):
        ResFamBackbone("resnet50", plugins=[dict(cfg=dict(type="ContextBlock"), position="after_conv3")])
    with pytest.raises(BuildArgumentError, match="out_indices"):
        ResFamBackbone("resnet50", num_stages=3, out_indices=(3,))
    with pytest.raises(BuildArgumentError, match="caffe"):
        ResFamBackbone("res2net50_26w_4s", style="caffe")
    with pytest.warns(UserWarning, match="depth=101 ignored"):
        ResFamBackbone("resnet50", depth=101)
    bb = ResFamBackbone("resnet50", num_stages=3, out_indices=(2,))
    assert not hasattr(bb, "layer4")  # C4: the stage the detector never reads is not built


@needs_mmdet
def test_mmdet_c4_shared_head_is_mmdets_reslayer_for_resnet50():
    """ResFamResLayer('resnet50') with the stock C4 head's arguments is mmdet's ResLayer: the
    keys, the trainable set, the outputs in float64 in eval and train mode (norm_eval)."""
    from mmdet.models.roi_heads.shared_heads import ResLayer

    from resfam.integrations.mmdet import ResFamResLayer

    kw = dict(depth=50, stage=3, stride=2, dilation=1, style="caffe",
              norm_cfg=dict(type="BN", requires_grad=False), norm_eval=True)
    ref = ResLayer(**kw)
    ref.init_weights()
    mine = ResFamResLayer("resnet50", **kw)
    mine.init_weights()
    assert list(mine.state_dict()) == list(ref.state_dict())
    _same_network(ref, mine, torch.randn(2, 1024, 14, 14, dtype=torch.float64))


@needs_mmdet
def test_mmdet_c4_detector_with_the_archs_own_head(tmp_path):
    """The stock C4 Faster R-CNN with a ResNeXt arch in the backbone and in ResFamResLayer, both
    from one torchvision .pth: the head holds the file's layer4 (groups 32) and the detector
    trains and predicts; a ResNet-18 head (512 channels) predicts; the backbone warns when a
    non-ResNet arch is cut for C4 (mmdet's ResLayer would be a plain ResNet stage)."""
    import torchvision
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    register_all_modules()
    tv = _perturbed(torchvision.models.resnext50_32x4d().state_dict(), seed=6, scale=0.01)
    ckpt = tmp_path / "resnext50.pth"
    torch.save(tv, ckpt)

    def c4(arch, extra="", rpn=""):
        init = f"init_cfg=dict(type='Pretrained', checkpoint='{ckpt}')" if arch.startswith("resnext") else "init_cfg=None"
        return _mmdet_config(tmp_path, "_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50-caffe_c4-1x_coco.py'\n"
                             "custom_imports = dict(imports=['resfam.integrations.mmdet'], allow_failed_imports=False)\n"
                             f"model = dict(backbone=dict(type='ResFamBackbone', arch='{arch}', style='pytorch', {init}),\n"
                             f"             roi_head=dict(shared_head=dict(type='ResFamResLayer', arch='{arch}', "
                             f"style='pytorch', {init}){extra}){rpn})\n").model

    model = MODELS.build(c4("resnext50_32x4d"))
    model.init_weights()
    head = model.roi_head.shared_head
    assert head.layer4[0].conv2.groups == 32 and head.load_report.missing == []
    for k, v in head.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            assert torch.equal(v, tv[k]), k
    data = _mmdet_train_steps(model, steps=1)
    r18 = MODELS.build(c4("resnet18", ", bbox_roi_extractor=dict(out_channels=256), bbox_head=dict(in_channels=512)",
                          ", rpn_head=dict(in_channels=256, feat_channels=256)"))  # its own widths
    r18.init_weights()
    r18.eval()
    with torch.no_grad():
        assert len(_mmdet_predict(r18, data)) == 2
    from resfam.integrations.mmdet import ResFamBackbone

    with pytest.warns(UserWarning, match="ResFamResLayer"):
        ResFamBackbone("resnext50_32x4d", num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 1), out_indices=(2,))


def _ddp_worker(rank, world, port, build, steps, errors):
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        model, batch, loss_of = build()
        ddp = torch.nn.parallel.DistributedDataParallel(model)  # find_unused_parameters=False
        opt = torch.optim.SGD([p for p in ddp.parameters() if p.requires_grad], lr=1e-4)
        for step in range(steps):
            torch.manual_seed(step)
            loss = loss_of(ddp, batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
    except Exception as e:  # noqa: BLE001 - report to the parent
        errors.put(f"rank {rank}: {type(e).__name__}: {str(e)[:400]}")
    finally:
        dist.destroy_process_group()


def _ddp(build, steps=2):
    """Run ``build`` (a module-level function: model, batch, loss_of) in 2 gloo processes."""
    import torch.multiprocessing as mp

    port = _free_port()
    ctx = mp.get_context("spawn")
    errors = ctx.Queue()
    procs = [ctx.Process(target=_ddp_worker, args=(r, 2, port, build, steps, errors)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(600)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert not found, found
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]


def mmdet_c4_model():
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    import resfam.integrations.mmdet  # noqa: F401 - registers ResFamBackbone

    register_all_modules()
    cfg = Config.fromstring("_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50-caffe_c4-1x_coco.py'\n"
                            "model = dict(backbone=dict(type='ResFamBackbone', arch='resnet50', init_cfg=None),\n"
                            "             roi_head=dict(shared_head=dict(init_cfg=None)))\n", ".py")
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()

    def loss_of(ddp, data):
        losses = ddp(**ddp.module.data_preprocessor(data, True), mode="loss")
        return sum(v if torch.is_tensor(v) else sum(v) for v in losses.values())

    return model, _mmdet_batch(), loss_of


@needs_mmdet
@pytest.mark.slow
def test_mmdet_c4_trains_under_ddp():
    """mmdet's C4 Faster R-CNN (num_stages=3, out_indices=(2,)) in 2 gloo processes: no stage
    without gradients, so DDP's default find_unused_parameters=False works."""
    _ddp(mmdet_c4_model)


# --- detectron2 ----------------------------------------------------------------------------

def d2_cfg(config: str | None = None, **keys):
    from detectron2 import model_zoo
    from detectron2.config import get_cfg

    from resfam.integrations.detectron2 import add_resfam_config

    cfg = get_cfg()
    add_resfam_config(cfg)
    if config:
        cfg.merge_from_file(model_zoo.get_config_file(config))
    cfg.MODEL.DEVICE = "cpu"
    cfg.merge_from_list([x for k, v in keys.items() for x in (k.replace("__", "."), v)])
    return cfg


D2_CASES = {
    "c4-frozenbn": dict(),
    "fpn-bn-freeze2": dict(MODEL__RESNETS__OUT_FEATURES=["res2", "res3", "res4", "res5"],
                           MODEL__RESNETS__NORM="BN"),
    "gn-pytorch-style": dict(MODEL__RESNETS__OUT_FEATURES=["res2", "res3", "res4", "res5"],
                             MODEL__RESNETS__NORM="GN", MODEL__RESNETS__STRIDE_IN_1X1=False,
                             MODEL__BACKBONE__FREEZE_AT=0),
    "res5-dilation": dict(MODEL__RESNETS__OUT_FEATURES=["res3", "res5"], MODEL__RESNETS__RES5_DILATION=2,
                          MODEL__BACKBONE__FREEZE_AT=3, MODEL__RESNETS__NORM="BN"),
    "stem-naive-sync": dict(MODEL__RESNETS__OUT_FEATURES=["stem", "res3"], MODEL__RESNETS__NORM="naiveSyncBN",
                            MODEL__BACKBONE__FREEZE_AT=0),
    "r18": dict(MODEL__RESNETS__DEPTH=18, MODEL__RESNETS__RES2_OUT_CHANNELS=64, MODEL__RESFAM__ARCH="resnet18",
                MODEL__RESNETS__OUT_FEATURES=["res2", "res5"], MODEL__RESNETS__NORM="BN",
                MODEL__BACKBONE__FREEZE_AT=1),
}


@needs_d2
@pytest.mark.parametrize("case", list(D2_CASES))
def test_d2_resnet_keys_outputs_and_trainable_set(case):
    from detectron2.layers import ShapeSpec
    from detectron2.modeling.backbone.resnet import build_resnet_backbone

    from resfam.integrations.detectron2 import backbone_from_cfg

    cfg = d2_cfg(**D2_CASES[case])
    ref = build_resnet_backbone(cfg, ShapeSpec(channels=3))
    mine = backbone_from_cfg(cfg, ShapeSpec(channels=3))
    assert set(mine.state_dict()) == set(ref.state_dict())
    assert mine.output_shape() == ref.output_shape()
    assert sum(p.numel() for p in mine.parameters()) == sum(p.numel() for p in ref.parameters())
    _same_network(ref, mine, torch.randn(2, 3, 64, 64, dtype=torch.float64))


def _d2_batch(n=2):
    from detectron2.structures import Boxes, Instances

    g = torch.Generator().manual_seed(0)
    batch = []
    for i in range(n):
        inst = Instances((128, 160))
        inst.gt_boxes = Boxes(torch.tensor([[10.0, 12.0, 90.0, 100.0], [40.0, 30.0, 150.0, 120.0]]))
        inst.gt_classes = torch.tensor([i, 3])
        batch.append({"image": torch.randint(0, 255, (3, 128, 160), generator=g).float(),
                      "height": 128, "width": 160, "instances": inst})
    return batch


def _d2_losses(model, batch, seed=0) -> dict:
    from detectron2.utils.events import EventStorage

    torch.manual_seed(seed)
    with EventStorage():  # detectron2's training forward logs into one
        return model(batch)


D2_DETECTORS = {  # model-zoo config, the keys a user changes for a resfam backbone
    "faster_rcnn_fpn": ("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml",
                        dict(MODEL__BACKBONE__NAME="build_resfam_fpn_backbone")),
    "retinanet": ("COCO-Detection/retinanet_R_50_FPN_1x.yaml",
                  dict(MODEL__BACKBONE__NAME="build_retinanet_resfam_fpn_backbone")),
    "faster_rcnn_c4": ("COCO-Detection/faster_rcnn_R_50_C4_1x.yaml",
                       dict(MODEL__BACKBONE__NAME="build_resfam_backbone",
                            MODEL__ROI_HEADS__NAME="ResFamRes5ROIHeads")),
}


@needs_d2
@pytest.mark.parametrize("name", list(D2_DETECTORS))
def test_d2_stock_config_by_name_matches_detectron2(name):
    """A model-zoo config with only BACKBONE.NAME and RESFAM.ARCH changed is detectron2's own
    detector: the same keys, and with the same weights the same losses and detections."""
    from detectron2.modeling import build_model

    config, keys = D2_DETECTORS[name]
    stock_cfg = d2_cfg(config)
    ours_cfg = d2_cfg(config, MODEL__RESFAM__ARCH="resnet50", **keys)
    torch.manual_seed(0)
    stock = build_model(stock_cfg)
    ours = build_model(ours_cfg)
    assert set(ours.state_dict()) == set(stock.state_dict())
    ours.load_state_dict(_perturbed(stock.state_dict()))
    stock.load_state_dict(ours.state_dict())
    batch = _d2_batch()
    stock.train(), ours.train()
    _same_losses(_d2_losses(stock, batch), _d2_losses(ours, batch))
    stock.eval(), ours.eval()
    with torch.no_grad():
        pa, pb = stock(batch), ours(batch)
    for x, y in zip(pa, pb):
        torch.testing.assert_close(y["instances"].pred_boxes.tensor, x["instances"].pred_boxes.tensor,
                                   rtol=1e-4, atol=1e-3)


def _c2_blobs(tv_state: dict) -> dict:
    """A torchvision ResNet-50 state dict in the Caffe2 blob names of detectron2's ImageNet
    ``R-50.pkl`` (conv1_w, res_conv1_bn_s/_b, res2_0_branch2a_w, ..._branch1_bn_s, fc1000_w);
    affine-only norms, numpy arrays, as those files hold them."""
    blobs = {"conv1_w": tv_state["conv1.weight"], "res_conv1_bn_s": tv_state["bn1.weight"],
             "res_conv1_bn_b": tv_state["bn1.bias"], "fc1000_w": tv_state["fc.weight"],
             "fc1000_b": tv_state["fc.bias"]}
    for key, value in tv_state.items():
        parts = key.split(".")
        if not parts[0].startswith("layer") or parts[-1] not in ("weight", "bias"):
            continue
        stage, block, name = int(parts[0][5:]) + 1, parts[1], parts[2]
        if name == "downsample":
            branch, is_bn = "branch1", parts[3] == "1"
        else:
            branch, is_bn = "branch2" + "abc"[int(name[-1]) - 1], name.startswith("bn")
        suffix = ("_bn_s" if parts[-1] == "weight" else "_bn_b") if is_bn else "_w"
        blobs[f"res{stage}_{block}_{branch}{suffix}"] = value
    return {k: v.numpy() for k, v in blobs.items()}


@needs_d2
def test_d2_model_weights_load_every_layout(tmp_path):
    """MODEL.WEIGHTS as detectron2 uses it (DetectionCheckpointer.load): detectron2's own
    R-50.pkl layout, a torchvision or timm classification .pth, and a detectron2
    detector checkpoint all load into a resfam backbone, every backbone tensor."""
    import torchvision
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    config, keys = D2_DETECTORS["faster_rcnn_fpn"]
    tv = _perturbed(torchvision.models.resnet50().state_dict())
    for k in [k for k in tv if "running" in k]:  # R-50.pkl: affine-only norms
        tv[k] = torch.zeros_like(tv[k]) if "mean" in k else torch.ones_like(tv[k])
    pkl = tmp_path / "R-50.pkl"
    pkl.write_bytes(pickle.dumps(_c2_blobs(tv)))
    stock = build_model(d2_cfg(config))
    DetectionCheckpointer(stock).load(str(pkl))

    def ours_with(weights):
        cfg = d2_cfg(config, MODEL__RESFAM__ARCH="resnet50", MODEL__WEIGHTS=weights, **keys)
        model = build_model(cfg)
        DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
        return model

    ours = ours_with(str(pkl))  # name matching, as for detectron2's own ResNet
    for k, v in stock.backbone.bottom_up.state_dict().items():
        assert torch.equal(ours.backbone.bottom_up.state_dict()[k], v), k
    pth = tmp_path / "r50.pth"
    torch.save(tv, pth)
    ours = ours_with(str(pth))
    body = ours.backbone.bottom_up.body.state_dict()
    for k, v in tv.items():
        if not k.startswith("fc.") and not k.endswith("num_batches_tracked"):  # FrozenBN has none
            assert torch.equal(body[k], v), k
    import timm

    timm_state = _perturbed(timm.create_model("resnet50d").state_dict(), seed=2)  # deep stem, avg-pool shortcuts
    timm_ckpt = tmp_path / "resnet50d.pth"
    torch.save(timm_state, timm_ckpt)
    cfg = d2_cfg(config, MODEL__RESFAM__ARCH="resnet50d", MODEL__WEIGHTS=str(timm_ckpt), **keys)
    body = build_model(cfg).backbone.bottom_up.body
    assert torch.equal(body.conv1[3].weight, timm_state["conv1.3.weight"])
    assert torch.equal(body.layer3[0].downsample[1].weight, timm_state["layer3.0.downsample.1.weight"])
    d2_ckpt = tmp_path / "model_final.pth"
    torch.save({"model": _perturbed(stock.state_dict(), seed=3)}, d2_ckpt)
    ours = ours_with(str(d2_ckpt))
    saved = torch.load(d2_ckpt, weights_only=True)["model"]
    for k, v in ours.state_dict().items():
        assert torch.equal(v, saved[k]), k


def _timm_weights(arch: str, tmp_path, seed: int = 5):
    """A timm classification checkpoint with random weights and norm statistics away from 0 / 1
    (the file MODEL.WEIGHTS names), and timm's network holding it in float64 (the reference)."""
    import timm

    ref = timm.create_model(arch)
    state = _perturbed(ref.state_dict(), seed)
    ref.load_state_dict(state)
    path = tmp_path / f"{arch}.pth"
    torch.save(state, path)
    return ref.double().eval(), str(path)


def _timm_levels(ref, x) -> dict:
    """timm's stage outputs res2..res5 (float64, eval): its intermediates after the stem's."""
    levels = ref.forward_intermediates(x, intermediates_only=True)
    assert len(levels) == 5
    return {f"res{i + 1}": y for i, y in enumerate(levels[1:], start=1)}


class _TrainerWithoutData:
    """detectron2's DefaultTrainer, its data loader left out (resume_or_load is what is tested)."""

    @staticmethod
    def make(cfg):
        from detectron2.engine import DefaultTrainer

        class Trainer(DefaultTrainer):
            @classmethod
            def build_train_loader(cls, cfg):
                return []

        return Trainer(cfg)


@needs_d2
def test_d2_inception_resnet_v2_levels_and_its_fpn_refused():
    """detectron2's names for Inception-ResNet-v2's levels: the whole stem (stride 8, 320
    channels) and res2..res4 at 8, 16, 32, with shapes as output_shape() says; its entries' keys
    under res3/res4.entry load back. detectron2's FPN, which adds 2x-upsampled maps, cannot take
    its unpadded sides (13, 6, 2 at 128 px): refused before building, naming what works."""
    from detectron2.modeling import build_backbone

    from resfam.integrations.detectron2 import ResFamD2Backbone

    b = ResFamD2Backbone("inception_resnet_v2", out_features=["stem", "res2", "res3", "res4"],
                         freeze_at=2, norm="FrozenBN").eval()
    out = b(torch.randn(1, 3, 128, 128))
    for name, shape in b.output_shape().items():
        assert (out[name].shape[1], shape.stride) == (shape.channels, {"stem": 8, "res2": 8, "res3": 16, "res4": 32}[name])
    state = b.state_dict()
    assert "res3.entry.branch0.conv.weight" in state and "stem.stem1.conv.weight" in state
    assert not b.load_state_dict(state).missing_keys
    cfg = d2_cfg(MODEL__RESFAM__ARCH="inception_resnet_v2", MODEL__BACKBONE__NAME="build_resfam_fpn_backbone",
                 MODEL__RESNETS__OUT_FEATURES=["res2", "res3", "res4"], MODEL__FPN__IN_FEATURES=["res2", "res3", "res4"])
    with pytest.raises(resfam.BuildArgumentError, match="MODEL.BACKBONE.NAME.*not halves.*build_resfam_backbone"):
        build_backbone(cfg)


@needs_d2
@pytest.mark.parametrize("arch,route,detector", [
    (arch, route, detector) for arch in ("res2net50_26w_4s",)
    for route in ("DefaultPredictor", "DefaultTrainer") for detector in ("faster_rcnn_fpn", "faster_rcnn_c4")
] + [("cspresnext50", "DefaultPredictor", "faster_rcnn_fpn"), ("cspresnext50", "DefaultTrainer", "faster_rcnn_c4")])
def test_d2_classification_weights_survive_the_checkpointer(tmp_path, arch, route, detector):
    """docs/backbone.md's route: MODEL.WEIGHTS = a timm .pth. After DefaultPredictor (or
    DefaultTrainer.resume_or_load) the backbone and the C4 res5 head hold the file's weights
    and norm statistics: their outputs equal timm's network's on the same file (float64).
    detectron2's FrozenBN alone would reset every statistic the checkpointer does not find.
    A CSP net's stages (cross stages, res5 the C4 head) take the same route."""
    from detectron2.engine import DefaultPredictor

    ref, path = _timm_weights(arch, tmp_path)
    config, keys = D2_DETECTORS[detector]
    cfg = d2_cfg(config, MODEL__RESFAM__ARCH=arch, MODEL__WEIGHTS=path, MODEL__RESNETS__STRIDE_IN_1X1=False,
                 OUTPUT_DIR=str(tmp_path / "out"), **keys)
    if route == "DefaultPredictor":
        model = DefaultPredictor(cfg).model
    else:
        trainer = _TrainerWithoutData.make(cfg)
        trainer.resume_or_load(resume=False)
        model = trainer.model
    model.eval().double()
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    want = _timm_levels(ref, x)
    bottom_up = model.backbone.bottom_up if detector.endswith("fpn") else model.backbone
    got = bottom_up(x)
    for name in got:
        torch.testing.assert_close(got[name], want[name], rtol=1e-9, atol=1e-9 * float(want[name].abs().max()))
    if detector.endswith("c4"):
        res5 = model.roi_heads.res5(want["res4"])
        torch.testing.assert_close(res5, want["res5"], rtol=1e-9, atol=1e-9 * float(want["res5"].abs().max()))


@needs_d2
def test_d2_c4_head_is_the_archs_last_stage(tmp_path):
    """ResFamRes5ROIHeads' res5 is the arch's own last stage (ResNeXt's groups, a ResNet-18's
    basic blocks and 512 channels), loaded from a torchvision .pth (every tensor of layer4);
    detectron2's Res5ROIHeads with a resfam backbone is refused in one line."""
    import torchvision
    from detectron2.modeling import build_model

    from resfam.errors import BuildArgumentError

    config, keys = D2_DETECTORS["faster_rcnn_c4"]
    tv = _perturbed(torchvision.models.resnext50_32x4d().state_dict(), seed=4)
    pth = tmp_path / "resnext50.pth"
    torch.save(tv, pth)
    model = build_model(d2_cfg(config, MODEL__RESFAM__ARCH="resnext50_32x4d", MODEL__WEIGHTS=str(pth),
                               MODEL__RESNETS__STRIDE_IN_1X1=False, **keys))
    res5 = model.roi_heads.res5
    assert res5[0].conv2.groups == 32 and sum(1 for m in res5.modules() if isinstance(m, torch.nn.Conv2d)) == 10
    held = {**dict(res5.named_parameters()), **dict(res5.named_buffers())}
    loaded = {k[len("layer4."):]: v for k, v in tv.items() if k.startswith("layer4.") and "num_batches" not in k}
    assert set(loaded) == set(held)
    for k, v in loaded.items():
        assert torch.equal(held[k], v), k
    assert next(iter(res5.state_dict())) == "0.conv1.weight" and "0.shortcut.norm.running_var" in res5.state_dict()
    r18 = build_model(d2_cfg(config, MODEL__RESFAM__ARCH="resnet18", **keys))
    assert r18.roi_heads.box_predictor.cls_score.in_features == 512
    r18.eval()
    with torch.no_grad():
        r18(_d2_batch(1))  # detectron2's own head fails here with a shape error
    with pytest.raises(BuildArgumentError, match="ResFamRes5ROIHeads"):
        build_model(d2_cfg(config, MODEL__RESFAM__ARCH="resnet50", MODEL__BACKBONE__NAME="build_resfam_backbone"))


def _d2_regnet_to_resnet_names(key: str) -> str:
    """detectron2's RegNet names (detectron2/modeling/backbone/regnet.py: stem.conv / stem.bn,
    s{i}.b{j}.proj / .bn, .f.a / .f.a_bn / .f.b / .f.c) in the names of its ResNet."""
    key = re.sub(r"^stem\.conv\.", "stem.conv1.", key)
    key = re.sub(r"^stem\.bn\.", "stem.conv1.norm.", key)
    m = re.match(r"s(\d)\.b(\d+)\.(.*)", key)
    if not m:
        return key
    rest = m.group(3)
    for theirs, ours in (("f.a_bn.", "conv1.norm."), ("f.b_bn.", "conv2.norm."), ("f.c_bn.", "conv3.norm."),
                         ("f.a.", "conv1."), ("f.b.", "conv2."), ("f.c.", "conv3."),
                         ("proj.", "shortcut."), ("bn.", "shortcut.norm.")):
        if rest.startswith(theirs):
            rest = ours + rest[len(theirs):]
            break
    return f"res{int(m.group(1)) + 1}.{int(m.group(2)) - 1}.{rest}"


@needs_d2
def test_d2_regnet_lazy_config_with_a_resfam_bottom_up():
    """detectron2's RegNetX-4GF LazyConfig (new_baselines) with its bottom-up swapped for
    L(ResFamD2Backbone)(ref="regnetx_040", ...): with detectron2's RegNet weights (renamed) the
    stage outputs equal detectron2's RegNet's in float64, and the Mask R-CNN instantiates and
    predicts with only the bottom-up and the FPN's in_features changed."""
    from detectron2 import model_zoo
    from detectron2.config import LazyCall as L
    from detectron2.config import instantiate

    from resfam.integrations.detectron2 import ResFamD2Backbone

    cfg = model_zoo.get_config("new_baselines/mask_rcnn_regnetx_4gf_dds_FPN_100ep_LSJ.py")
    cfg.model.backbone.bottom_up.update(norm="FrozenBN", freeze_at=2)
    theirs = instantiate(cfg.model.backbone.bottom_up)
    levels = ["res2", "res3", "res4", "res5"]
    ours = ResFamD2Backbone("regnetx_040", out_features=levels, freeze_at=2, norm="FrozenBN")
    weights = _perturbed(theirs.state_dict())
    state = {_d2_regnet_to_resnet_names(k): v for k, v in weights.items()}
    assert set(state) == set(ours.state_dict())
    theirs.load_state_dict(weights)
    ours.load_state_dict(state)
    theirs.double().eval(), ours.double().eval()
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    a, b = theirs(x), ours(x)
    for s_name, r_name in zip(["s1", "s2", "s3", "s4"], levels):
        torch.testing.assert_close(b[r_name], a[s_name], rtol=1e-10, atol=1e-10 * float(a[s_name].abs().max()))
    assert [ours.output_shape()[n].channels for n in levels] == \
        [theirs.output_shape()[n].channels for n in ["s1", "s2", "s3", "s4"]]
    cfg.model.backbone.bottom_up = L(ResFamD2Backbone)(ref="regnetx_040", out_features=levels, freeze_at=2,
                                                       norm="FrozenBN")
    cfg.model.backbone.in_features = levels
    model = instantiate(cfg.model).eval()
    with torch.no_grad():
        out = model(_d2_batch(1))
    assert out[0]["instances"].image_size == (128, 160)


@needs_d2
def test_d2_config_keys_and_errors(tmp_path):
    from detectron2.config import get_cfg

    from resfam.errors import BuildArgumentError
    from resfam.integrations.detectron2 import add_resfam_config, backbone_from_cfg

    yaml_file = tmp_path / "mine.yaml"
    yaml_file.write_text("MODEL:\n  BACKBONE:\n    NAME: build_resfam_fpn_backbone\n  RESFAM:\n    ARCH: iresnet50\n")
    cfg = get_cfg()
    with pytest.raises(KeyError, match="RESFAM"):
        cfg.merge_from_file(str(yaml_file))
    cfg = get_cfg()
    add_resfam_config(cfg)
    cfg.merge_from_file(str(yaml_file))
    assert cfg.MODEL.RESFAM.ARCH == "iresnet50"
    from detectron2.layers import ShapeSpec

    for key, value, match in [("MODEL.RESNETS.NORM", "LN", "NORM"),
                              ("MODEL.RESNETS.OUT_FEATURES", ["res6"], "OUT_FEATURES"),
                              ("MODEL.RESNETS.DEFORM_ON_PER_STAGE", [False, True, False, False], "DEFORM")]:
        bad = d2_cfg(**{key.replace(".", "__"): value})
        with pytest.raises(BuildArgumentError, match=match):
            backbone_from_cfg(bad, ShapeSpec(channels=3))
    c4 = backbone_from_cfg(d2_cfg(), ShapeSpec(channels=3))  # OUT_FEATURES ['res4']
    assert not hasattr(c4.body, "layer4")
    # the keys the arch decides: ignored with a warning where a config contradicts the arch
    with pytest.warns(UserWarning, match="NUM_GROUPS=1 ignored"):
        backbone_from_cfg(d2_cfg(MODEL__RESFAM__ARCH="resnext50_32x4d"), ShapeSpec(channels=3))
    with pytest.warns(UserWarning, match="DEPTH=101 ignored"):
        backbone_from_cfg(d2_cfg(MODEL__RESNETS__DEPTH=101), ShapeSpec(channels=3))
    with warnings.catch_warnings():  # a stock R-50 config's keys agree with these (or mean nothing)
        warnings.simplefilter("error")
        for arch in ("resnet50", "res2net50_26w_4s", "seresnet50"):
            backbone_from_cfg(d2_cfg(MODEL__RESFAM__ARCH=arch), ShapeSpec(channels=3))


def d2_model(config: str, keys: dict):
    from detectron2.modeling import build_model

    import resfam.integrations.detectron2  # noqa: F401 - registers the builders

    model = build_model(d2_cfg(config, MODEL__RESFAM__ARCH="resnet50", **keys))
    model.train()

    def loss_of(ddp, batch):
        return sum(_d2_losses(ddp, batch, seed=torch.initial_seed()).values())

    return model, _d2_batch(1), loss_of


def d2_c4_model():
    return d2_model(*D2_DETECTORS["faster_rcnn_c4"])


def d2_fpn_model():
    return d2_model(*D2_DETECTORS["faster_rcnn_fpn"])


def d2_naive_sync_model():
    """The FPN detector with NORM naiveSyncBN and nothing frozen: batch statistics all-reduced
    over the gloo processes by detectron2's NaiveSyncBatchNorm."""
    config, keys = D2_DETECTORS["faster_rcnn_fpn"]
    return d2_model(config, dict(keys, MODEL__RESNETS__NORM="naiveSyncBN", MODEL__BACKBONE__FREEZE_AT=0))


@needs_d2
@pytest.mark.slow
@pytest.mark.parametrize("build", [d2_c4_model, d2_fpn_model, d2_naive_sync_model], ids=["c4", "fpn", "naive-sync-bn"])
def test_d2_detectors_train_under_ddp(build):
    """Two gloo processes, DDP's default find_unused_parameters=False, two iterations: every
    built parameter gets a gradient (the C4 model builds no res5 in its backbone)."""
    _ddp(build)


# --- the recipes in docs/backbone.md, as a user copies them --------------------------------

def _recipes(section: str) -> list[str]:
    page = (Path(__file__).resolve().parent.parent / "docs" / "backbone.md").read_text()
    body = page.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```py\n(.*?)```", body, re.S)


def _run_recipes(blocks: list[str], cwd) -> None:
    for code in blocks:
        first = code.splitlines()[0]
        if first.startswith("# ") and first.endswith(".py"):  # a config file the next block reads
            (cwd / first[2:]).write_text(code)
            continue
        proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, f"{code}\n{proc.stderr[-3000:]}"


@needs_mmdet
def test_docs_mmdet_recipe_runs(tmp_path):
    blocks = _recipes("mmdetection")
    assert len(blocks) == 3
    _run_recipes(blocks, tmp_path)
    # the C4 config file the page writes out: it builds, and its head is the arch's own
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    register_all_modules()
    torch.save(resfam.build("resnext50_32x4d").state_dict(), tmp_path / "resnext50_32x4d.pth")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        model = MODELS.build(_mmdet_config(tmp_path, (tmp_path / "my_c4.py").read_text()).model)
        model.init_weights()
    finally:
        os.chdir(cwd)
    assert model.roi_head.shared_head.layer4[0].conv2.groups == 32
    assert model.roi_head.shared_head.load_report.missing == []


@needs_d2
def test_docs_detectron2_recipe_runs(tmp_path):
    blocks = _recipes("detectron2")
    assert len(blocks) == 2  # the yacs recipe, the RegNet LazyConfig
    _run_recipes(blocks, tmp_path)
