"""resfam backbones in detectron2, configured the way detectron2's own ResNet is.

    from resfam.integrations.detectron2 import add_resfam_config  # registers the builders
    cfg = get_cfg()
    add_resfam_config(cfg)
    cfg.merge_from_file("configs/COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml")
    cfg.MODEL.BACKBONE.NAME = "build_resfam_fpn_backbone"   # C4: "build_resfam_backbone"
    cfg.MODEL.RESFAM.ARCH = "res2net50_26w_4s"

``MODEL.RESFAM.ARCH`` picks the network (a name or a spec file); everything else is read from
detectron2's own keys, with detectron2's meaning:

| key | meaning |
|---|---|
| ``MODEL.RESNETS.OUT_FEATURES`` | ``stem`` (the whole stem, its max-pool included: stride 4 as detectron2's), ``res2`` .. ``res5``; no stage past the last is built |
| ``MODEL.BACKBONE.FREEZE_AT`` | 1 freezes the stem, 2 the stem and res2, ...; frozen BatchNorms become FrozenBN |
| ``MODEL.RESNETS.NORM`` | ``FrozenBN``, ``BN``, ``SyncBN`` / ``nnSyncBN`` (``nn.SyncBatchNorm``), ``naiveSyncBN`` / ``naiveSyncBN_N`` (detectron2's ``NaiveSyncBatchNorm``: any backend, CPU gloo too), ``GN`` (32 groups), ``""`` (none) |
| ``MODEL.RESNETS.STRIDE_IN_1X1`` | a bottleneck strides its first 1x1 (MSRA / caffe weights; other blocks ignore it) |
| ``MODEL.RESNETS.RES5_DILATION`` | 2: res5 does not stride, every block dilated by 2 |
| ``MODEL.FPN.*`` | as for ``build_resnet_fpn_backbone``; the RetinaNet builder adds P6/P7 from the last stage |

``DEPTH``, ``NUM_GROUPS`` and ``WIDTH_PER_GROUP`` are the arch's to decide: a value that
disagrees with it is ignored with a warning; ``RES2_OUT_CHANNELS`` and ``STEM_OUT_CHANNELS`` are
not read; deformable stages are an error. State-dict keys are detectron2's
(``stem.conv1.norm.weight``, ``res2.0.conv1.weight``, ``res2.0.shortcut.norm.bias``, ...), so
detectron2 checkpoints, and its ImageNet ``R-50.pkl`` through the checkpointer's name matching,
load into a ``resnet50`` arch by name. A cross stage's (CSPNet's) units follow the same rule:
``res2.conv_exp.weight``, ``res2.conv_exp.norm.weight``, its blocks ``res2.0.conv1.weight``.

C4 detectors: ``MODEL.ROI_HEADS.NAME = "ResFamRes5ROIHeads"`` is detectron2's ``Res5ROIHeads``
with the arch's own last stage as its res5 (detectron2's builds a plain ResNet stage from
``MODEL.RESNETS``, whatever the arch, so a resfam backbone refuses to pair with it).

``MODEL.WEIGHTS`` naming a classification checkpoint (torchvision, timm or resfam layout:
``.pth`` / ``.pt`` / ``.safetensors``) is loaded into the backbone and the res5 head when they
are built, and the report logged; detector checkpoints and ``.pkl`` files are left to
``DetectionCheckpointer``. When the checkpointer then reads the same file (``DefaultTrainer``,
``DefaultPredictor``), it finds none of the backbone's names in it: every tensor it does not
find stays as it is (detectron2's FrozenBN would otherwise reset the statistics it does not
find to 0 / 1, a shim for its old checkpoints, which hold the affine terms without them).
"""
from __future__ import annotations

import logging
import os
import re
import warnings
from typing import NamedTuple, Sequence

import torch
from torch import nn

from ..errors import BuildArgumentError
from ..factory import build
from ..primitives import norms
from ..primitives.cross_stage import CrossStage
from ..spec.registry import SpecRef, get_spec
from ..spec.schema import Spec
from ..weights.checkpoint import load_state, read_checkpoint
from .arch_keys import disagreements
from .keys import use_framework_keys
from .switches import with_switches

try:  # detectron2 is not on PyPI; the adapter is usable wherever it is installed
    from detectron2.layers import FrozenBatchNorm2d, ShapeSpec, get_norm
    from detectron2.modeling import BACKBONE_REGISTRY, ROI_HEADS_REGISTRY, Backbone
    from detectron2.modeling.backbone.fpn import FPN, LastLevelMaxPool, LastLevelP6P7
    from detectron2.modeling.roi_heads import Res5ROIHeads
except ImportError:  # exercised where detectron2 is missing
    BACKBONE_REGISTRY = Backbone = FrozenBatchNorm2d = Res5ROIHeads = get_norm = None

    class ShapeSpec(NamedTuple):  # detectron2's fields
        channels: int = None
        height: int = None
        width: int = None
        stride: int = None

logger = logging.getLogger(__name__)

NORMS = {"FrozenBN": "frozen_bn", "BN": "bn", "SyncBN": "syncbn", "nnSyncBN": "syncbn",
         "naiveSyncBN": "syncbn", "naiveSyncBN_N": "syncbn", "GN": "gn", "": "none"}
NAIVE_SYNC = ("naiveSyncBN", "naiveSyncBN_N")  # detectron2's own class (all-reduce on any backend)
STEM = {"conv1": "stem.conv1", "bn1": "stem.conv1.norm"}
DEEP_STEM = {"conv1.0": "stem.conv1", "conv1.1": "stem.conv1.norm", "conv1.3": "stem.conv2",
             "conv1.4": "stem.conv2.norm", "conv1.6": "stem.conv3", "bn1": "stem.conv3.norm"}
ARCH_KEYS = {"depth": "DEPTH", "groups": "NUM_GROUPS", "width_per_group": "WIDTH_PER_GROUP"}


def feature_names(ref: SpecRef) -> list[str]:
    """detectron2 names for a variant's levels: stem, res2, res3, ..."""
    return ["stem"] + [f"res{i + 2}" for i in range(len(get_spec(ref).stages))]


def d2_key(key: str, net: nn.Module) -> str:
    """detectron2's name for one of a resfam network's keys (``net``: the network holding it)."""
    stem = DEEP_STEM if isinstance(getattr(net, "conv1", None), nn.Sequential) else STEM
    for own, theirs in stem.items():
        if key.startswith(own + "."):
            return theirs + key[len(own):]
    parts = key.split(".")
    if not (parts[0].startswith("layer") and len(parts) > 3):
        return "stem." + key  # another stem module (none holds weights in the presets)
    blocks = getattr(net, parts[0])
    if isinstance(blocks, CrossStage):  # its conv-norm units as detectron2 names a conv + norm
        if parts[1] != "blocks":
            unit, kind, *tail = parts[1:]
            return ".".join([f"res{int(parts[0][5:]) + 1}", unit, *(["norm"] if kind == "bn" else []), *tail])
        blocks, parts = blocks.blocks, [parts[0], *parts[2:]]  # its blocks: numbered as a stage's
    stage, j, name, *tail = parts
    if j == "entry":  # a layer group opening the stage (Inception-ResNet's reductions): its names
        return ".".join([f"res{int(stage[5:]) + 1}", j, name, *tail])
    block = blocks[int(j)]
    unit = re.fullmatch(r"bn(\d)", name)
    if unit:
        name = f"conv{unit.group(1)}.norm"
    elif name == "downsample":
        mod = block.downsample[int(tail[0])]
        name = "shortcut" if isinstance(mod, nn.Conv2d) else "shortcut.norm"  # pools hold none
        tail = tail[1:]
    return ".".join([f"res{int(stage[5:]) + 1}", j, name, *tail])


def _build_norm(norm: str, arch) -> str:
    """The ``norm_layer`` to build with for detectron2's ``norm``: BatchNorm2d where
    :func:`_use_d2_norms` then swaps in detectron2's own class, else resfam's equivalent."""
    if norm not in NORMS:
        raise BuildArgumentError(f"is {norm!r}", variant=str(arch), key="MODEL.RESNETS.NORM",
                                 hint=f"one of {', '.join(map(repr, NORMS))}")
    d2_own = FrozenBatchNorm2d is not None and (norm == "FrozenBN" or norm in NAIVE_SYNC)
    return "bn" if d2_own else NORMS[norm]


def _use_d2_norms(module: nn.Module, norm: str) -> nn.Module:
    """detectron2's own classes where ``norm`` (its name) asks for one: FrozenBN everywhere
    (its checkpoints' layout and defaults), NaiveSyncBatchNorm for naiveSyncBN*; the module
    was built with BatchNorm2d for both."""
    if FrozenBatchNorm2d is None:
        return module
    if norm == "FrozenBN":
        module = FrozenBatchNorm2d.convert_frozen_batchnorm(module)
        for mod in module.modules():
            if isinstance(mod, FrozenBatchNorm2d):
                mod.num_batches_tracked = None  # as detectron2's FrozenBN is built
    elif norm in NAIVE_SYNC:
        for parent in list(module.modules()):
            for name, child in parent.named_children():
                if isinstance(child, nn.modules.batchnorm._BatchNorm):
                    naive = get_norm(norm, child.num_features)
                    naive.load_state_dict(child.state_dict())
                    setattr(parent, name, naive)
    return module


def _keep_what_checkpoints_lack(module: nn.Module) -> None:
    """A checkpoint that holds none of a FrozenBN's tensors leaves its statistics as they are
    (plain ``strict=False`` semantics). detectron2's FrozenBN inserts mean 0 / var 1 for any it
    does not find, for its old checkpoints; a classification file, read by the checkpointer
    after the adapter loaded it, would otherwise reset every one. Register after the key map."""
    if FrozenBatchNorm2d is None:
        return
    frozen = {name: mod for name, mod in module.named_modules() if isinstance(mod, FrozenBatchNorm2d)}

    def hook(_mod, state, prefix, *_):
        for name, bn in frozen.items():
            at = prefix + name + "."
            if not any(at + t in state for t in ("weight", "bias", "running_mean", "running_var")):
                state[at + "running_mean"], state[at + "running_var"] = bn.running_mean, bn.running_var

    module.register_load_state_dict_pre_hook(hook)


def make_backbone_class(base: type) -> type:
    """The adapter on top of ``base`` (detectron2's Backbone; nn.Module to test the contract)."""

    class ResFamD2Backbone(base):
        """``norm``, ``freeze_at`` and ``out_features`` as detectron2's ResNet and RegNet take
        them (for a LazyConfig: ``L(ResFamD2Backbone)(ref="regnetx_040", ...)``)."""

        def __init__(self, ref: SpecRef, out_features: Sequence[str] = ("res2", "res3", "res4", "res5"),
                     freeze_at: int = 0, norm: str = "BN", **build_kwargs):
            super().__init__()
            names = feature_names(ref)
            label = ref.name if isinstance(ref, Spec) else str(ref)  # (the config's spec: its name)
            unknown = [n for n in out_features if n not in names]
            if unknown or not out_features:
                raise BuildArgumentError(f"{list(out_features)}: {unknown or 'empty'}",
                                         variant=label, key="OUT_FEATURES",
                                         hint=f"choose from {names}")
            norm_layer = _build_norm(norm, label)
            self._out_features = list(out_features)
            self.body = build(ref, features_only=True, out_indices=[names.index(n) for n in out_features],
                              norm_layer=norm_layer, frozen_stages=freeze_at - 1,
                              as_dict=True, **build_kwargs)
            stem = self.body.feature_info.levels[0]  # detectron2's stem ends with its max-pool
            whole = get_spec(ref).model.stem  # (the whole stem: a stem of layers may end wider)
            stem.update(module=self.body.stem_names[-1], reduction=whole.reduction, num_chs=whole.width)
            self.body = _use_d2_norms(self.body, norm)
            freeze = (FrozenBatchNorm2d.convert_frozen_batchnorm if FrozenBatchNorm2d is not None
                      else norms.freeze_batch_norm)
            for name in self.body.frozen_module_names():  # detectron2 freezes a BatchNorm as FrozenBN
                setattr(self.body, name, freeze(getattr(self.body, name)))
            info = self.body.feature_info
            self._out_feature_channels = {n: info.channels(names.index(n)) for n in out_features}
            self._out_feature_strides = {n: info.reduction(names.index(n)) for n in out_features}
            self._rename = {info.module_names(names.index(n)): n for n in out_features}
            self._d2_keys = use_framework_keys(self, lambda k: d2_key(k[len("body."):], self.body))
            _keep_what_checkpoints_lack(self)

        def forward(self, x: torch.Tensor) -> dict:
            return {self._rename[k]: v for k, v in self.body(x).items()}

        def output_shape(self) -> dict:
            return {n: ShapeSpec(channels=self._out_feature_channels[n], stride=self._out_feature_strides[n])
                    for n in self._out_features}

    return ResFamD2Backbone


ResFamD2Backbone = make_backbone_class(Backbone if Backbone is not None else nn.Module)


def add_resfam_config(cfg) -> None:
    """Add ``MODEL.RESFAM`` (``ARCH``) to a detectron2 config, so YAML files that set it merge."""
    cfg.MODEL.RESFAM = type(cfg)()
    cfg.MODEL.RESFAM.ARCH = "resnet50"


def spec_from_cfg(cfg) -> Spec:
    """``MODEL.RESFAM.ARCH`` with detectron2's structural keys applied (``STRIDE_IN_1X1``,
    ``RES5_DILATION``), after checking the keys the adapter does not honour."""
    arch, r = cfg.MODEL.RESFAM.ARCH, cfg.MODEL.RESNETS
    _build_norm(r.NORM, arch)
    if any(r.DEFORM_ON_PER_STAGE):
        raise BuildArgumentError("deformable convs are not a resfam primitive", variant=str(arch),
                                 key="MODEL.RESNETS.DEFORM_ON_PER_STAGE", hint="set all False")
    spec = get_spec(arch)
    if r.RES5_DILATION not in (1, 2):
        raise BuildArgumentError(f"is {r.RES5_DILATION}", variant=str(arch),
                                 key="MODEL.RESNETS.RES5_DILATION", hint="1 or 2")
    if r.RES5_DILATION == 2 and len(spec.stages) != 4:
        raise BuildArgumentError(f"{spec.name} has no res5", variant=str(arch),
                                 key="MODEL.RESNETS.RES5_DILATION", hint="leave it 1")
    given = {k: getattr(r, key) for k, key in ARCH_KEYS.items()}
    for k, (value, own) in disagreements(spec, given).items():
        if own is None and k == "width_per_group":
            continue  # detectron2's key has no meaning for the block (Res2Net): nothing to ignore
        warnings.warn(f"resfam backbone {spec.name!r}: MODEL.RESNETS.{ARCH_KEYS[k]}={value} ignored, "
                      f"the arch decides it ({own if own is not None else 'it has no such key'})",
                      stacklevel=3)
    return with_switches(
        spec, stride_on_1x1=r.STRIDE_IN_1X1 and all(p.block.type == "bottleneck" for p in spec.stages),
        stages={"stride": [p.stride for p in spec.stages[:3]] + [1], "dilation": [1, 1, 1, 2]}
        if r.RES5_DILATION == 2 else None)


def backbone_from_cfg(cfg, input_shape, base: type = None) -> nn.Module:
    """The adapter configured from detectron2's keys (module docstring); ``base`` is for tests."""
    spec = spec_from_cfg(cfg)
    r = cfg.MODEL.RESNETS
    cls = base or ResFamD2Backbone
    backbone = cls(spec, out_features=r.OUT_FEATURES, freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT,
                   norm=r.NORM, in_chans=input_shape.channels)
    _load_classification_weights(backbone.body, cfg.MODEL.WEIGHTS, "resfam backbone")
    return backbone


def check_c4_head(cfg) -> None:
    """A detector whose ROI heads detectron2 builds as ``Res5ROIHeads`` gets a plain ResNet res5
    whatever the arch (and none of a classification MODEL.WEIGHTS): refuse it, naming the fix."""
    if cfg.MODEL.META_ARCHITECTURE == "GeneralizedRCNN" and cfg.MODEL.ROI_HEADS.NAME == "Res5ROIHeads":
        arch = cfg.MODEL.RESFAM.ARCH
        raise BuildArgumentError(
            f"detectron2's Res5ROIHeads builds its res5 from MODEL.RESNETS (a plain ResNet stage), "
            f"not from {arch}'s last stage", variant=str(arch), key="MODEL.ROI_HEADS.NAME",
            hint="set it to 'ResFamRes5ROIHeads' (the arch's own res5, loaded from MODEL.WEIGHTS)")


def res5_from_cfg(cfg) -> tuple[nn.Module, int]:
    """The arch's last stage as a C4 head's res5 (detectron2's keys ``0.conv1.weight``, ...,
    its norm), with MODEL.WEIGHTS's classification weights; and its output channels."""
    spec = spec_from_cfg(cfg)
    if len(spec.stages) != 4:
        raise BuildArgumentError(f"{spec.name} has {len(spec.stages)} stages, no res5",
                                 variant=str(cfg.MODEL.RESFAM.ARCH), key="MODEL.ROI_HEADS.NAME",
                                 hint="a C4 head needs a four-stage arch; use an FPN config")
    norm = cfg.MODEL.RESNETS.NORM
    net = build(spec, features_only=True, out_indices=[4], norm_layer=_build_norm(norm, spec.name))
    _load_classification_weights(net, cfg.MODEL.WEIGHTS, "resfam res5 head")
    res5 = _use_d2_norms(net.layer4, norm)
    use_framework_keys(res5, lambda k: d2_key("layer4." + k, net).split(".", 1)[1])
    _keep_what_checkpoints_lack(res5)
    return res5, spec.stages[-1].width


def _load_classification_weights(net: nn.Module, path: str, what: str) -> None:
    """``MODEL.WEIGHTS`` when it is a local classification checkpoint (no detector keys)."""
    if not path or not os.path.isfile(path) or not path.endswith((".pth", ".pt", ".safetensors")):
        return
    state = read_checkpoint(path)
    state = state.get("model", state.get("state_dict", state))
    if not isinstance(state, dict) or any(k.startswith(("backbone.", "roi_heads.", "proposal_generator."))
                                          for k in state):
        return  # a detector checkpoint: DetectionCheckpointer loads it by name
    report = load_state(net, state, path, strict=False)
    logger.log(logging.WARNING if report.missing or report.unexpected else logging.INFO,
               "%s: %s", what, report)


def check_fpn_levels(cfg) -> None:
    """detectron2's FPN adds each level's map upsampled by exactly 2 to the level below: an arch
    with unpadded ('valid') layers (Inception-ResNet-v2's) has levels whose sides are not halves
    (13, 6, 2 at 128 px) and would fail in the first forward. Refused before building, with the
    ways that work."""
    spec = spec_from_cfg(cfg)
    if spec.min_side() > 1:
        raise BuildArgumentError(
            "its unpadded ('valid') layers give feature maps whose sides are not halves of each "
            "other, and detectron2's FPN upsamples each level by exactly 2",
            variant=spec.name, key="MODEL.BACKBONE.NAME",
            hint="use build_resfam_backbone (C4-style levels), or the torchvision / mmdet FPN, "
                 "which resize to the level's size")


def _fpn(cfg, input_shape, top_block):
    check_fpn_levels(cfg)
    bottom_up = backbone_from_cfg(cfg, input_shape)
    return FPN(bottom_up=bottom_up, in_features=cfg.MODEL.FPN.IN_FEATURES,
               out_channels=cfg.MODEL.FPN.OUT_CHANNELS, norm=cfg.MODEL.FPN.NORM,
               top_block=top_block(bottom_up), fuse_type=cfg.MODEL.FPN.FUSE_TYPE)


if BACKBONE_REGISTRY is not None:
    @BACKBONE_REGISTRY.register()
    def build_resfam_backbone(cfg, input_shape):
        """C4-style: the stages named by MODEL.RESNETS.OUT_FEATURES (with ResFamRes5ROIHeads)."""
        check_c4_head(cfg)
        return backbone_from_cfg(cfg, input_shape)

    @BACKBONE_REGISTRY.register()
    def build_resfam_fpn_backbone(cfg, input_shape):
        """``build_resnet_fpn_backbone`` with a resfam bottom-up: an FPN and a max-pooled P6."""
        return _fpn(cfg, input_shape, lambda _: LastLevelMaxPool())

    @BACKBONE_REGISTRY.register()
    def build_retinanet_resfam_fpn_backbone(cfg, input_shape):
        """``build_retinanet_resnet_fpn_backbone`` with a resfam bottom-up: P6/P7 from the last
        stage."""
        def p6p7(bottom_up):
            last = bottom_up._out_features[-1]
            return LastLevelP6P7(bottom_up.output_shape()[last].channels,
                                 cfg.MODEL.FPN.OUT_CHANNELS, in_feature=last)
        return _fpn(cfg, input_shape, p6p7)

    @ROI_HEADS_REGISTRY.register()
    class ResFamRes5ROIHeads(Res5ROIHeads):
        """detectron2's C4 ``Res5ROIHeads`` with ``MODEL.RESFAM.ARCH``'s own last stage as res5
        (``MODEL.RESNETS.NORM`` and ``STRIDE_IN_1X1`` as for the backbone), loaded from a
        classification ``MODEL.WEIGHTS`` like the backbone; detectron2's res5 keys."""

        @classmethod
        def _build_res5_block(cls, cfg):
            return res5_from_cfg(cfg)
