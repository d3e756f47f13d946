"""resfam backbones for torchvision's detectors (Faster R-CNN, RetinaNet, Mask R-CNN, ...).

    det_bb = resfam.detection.torchvision_fpn_backbone("resnet50", weights=True)
    model = torchvision.models.detection.FasterRCNN(det_bb, num_classes=91)

torchvision's own ``resnet_fpn_backbone`` semantics: an FPN over the returned stages, a
max-pooled extra level (Faster R-CNN) or P6/P7 (RetinaNet, pass ``extra_blocks``), the stem and
the first ``num_stages - trainable_layers`` stages frozen. The defaults depend on whether weights
were loaded, as in torchvision's detection builders (``fasterrcnn_resnet50_fpn``):

| | with ``weights`` | from scratch (``weights=None``) |
|---|---|---|
| norm | frozen BatchNorm (the weights' statistics) | BatchNorm (batch statistics) |
| trainable stages | 3 (stem, layer1 frozen) | all |
| ``zero_init_last`` | (the weights decide) | True: every residual branch starts at zero (Goyal et al. 2017; timm's default) |

Frozen BatchNorm without weights is a trap: its statistics are the identity, nothing normalises,
and a Res2Net-50's stage-4 features start with a standard deviation of ~580 instead of ~0.6
(tests/test_detection.py measures it).
"""
from __future__ import annotations

from typing import Optional, Sequence

from torch import nn

from ..errors import BuildArgumentError
from ..factory import Pretrained, build
from ..spec.registry import SpecRef, get_spec


def torchvision_fpn_backbone(ref: SpecRef, trainable_layers: Optional[int] = None,
                             returned_layers: Optional[Sequence[int]] = None,
                             out_channels: int = 256, extra_blocks: Optional[nn.Module] = None,
                             norm_layer: Optional[str] = None, weights: Pretrained = None,
                             **build_kwargs) -> nn.Module:
    """A ``torchvision.models.detection.backbone_utils.BackboneWithFPN`` over a resfam build.

    Args:
        ref: a model name, spec file or spec mapping.
        weights: what :func:`resfam.build`'s ``pretrained`` takes (True, ``"timm"``,
            ``"tv:IMAGENET1K_V2"``, a local checkpoint path), or None to train from scratch.
        trainable_layers: stages (counted from the last) left trainable; the stem counts as one
            more, as in torchvision (0 freezes everything, ``num_stages + 1`` nothing).
            Default: 3 with weights, all without.
        norm_layer: default ``frozen_bn`` with weights, ``bn`` without.
        returned_layers: stage numbers (1 = layer1) the FPN reads (default: all stages).
        build_kwargs: passed to :func:`resfam.build` (``output_stride``, ``drop_path_rate``...);
            ``zero_init_last`` defaults to True without weights.
    """
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    trained = weights is not None and weights is not False
    spec = get_spec(ref)
    stages = len(spec.stages)
    if trainable_layers is None:
        trainable_layers = 3 if trained else stages + 1
    if isinstance(trainable_layers, bool) or not isinstance(trainable_layers, int) \
            or not 0 <= trainable_layers <= stages + 1:
        raise BuildArgumentError(f"trainable_layers must be in [0, {stages + 1}], got "
                                 f"{trainable_layers!r}", variant=spec.name,
                                 key="trainable_layers")
    if isinstance(out_channels, bool) or not isinstance(out_channels, int) or out_channels < 1:
        raise BuildArgumentError(f"out_channels must be a whole number >= 1 (the FPN's width), got "
                                 f"{out_channels!r}", variant=spec.name, key="out_channels")
    returned = list(returned_layers or range(1, stages + 1))
    if not all(isinstance(i, int) and 1 <= i <= stages for i in returned):
        raise BuildArgumentError(f"returned_layers must be stage numbers in 1..{stages}, got "
                                 f"{returned}", variant=spec.name, key="returned_layers")
    if not trained:
        build_kwargs.setdefault("zero_init_last", True)
    model = build(spec, pretrained=weights if trained else False,
                  norm_layer=norm_layer or ("frozen_bn" if trained else "bn"),
                  features_only=True, out_indices=returned,  # no stage past the last returned
                  frozen_stages=stages - trainable_layers,  # -1: nothing frozen, 0: the stem
                  **build_kwargs)
    return_layers = {model.stage_names[i - 1]: str(k) for k, i in enumerate(returned)}
    in_channels = [model.feature_info.channels(i) for i in returned]
    return BackboneWithFPN(model, return_layers, in_channels, out_channels,
                           extra_blocks=extra_blocks or LastLevelMaxPool())
