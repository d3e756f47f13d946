"""resfam backbones for torchvision's detectors (Faster R-CNN, RetinaNet, Mask R-CNN, ...).

    det_bb = resfam.detection.torchvision_fpn_backbone("iresnet50", trainable_layers=3)
    model = torchvision.models.detection.FasterRCNN(det_bb, num_classes=91)

torchvision's own ``resnet_fpn_backbone`` semantics: frozen BatchNorm by default, the stem and the
first ``num_stages - trainable_layers`` stages frozen, an FPN over the returned stages, a
max-pooled extra level (Faster R-CNN) or P6/P7 (RetinaNet, pass ``extra_blocks``).
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

from torch import nn

from .errors import BuildArgumentError
from .factory import build
from .pretrained import load_pretrained
from .registry import SpecRef


def torchvision_fpn_backbone(ref: SpecRef, trainable_layers: int = 3,
                             returned_layers: Optional[Sequence[int]] = None,
                             out_channels: int = 256, extra_blocks: Optional[nn.Module] = None,
                             norm_layer: str = "frozen_bn", weights: Optional[str] = None,
                             **build_kwargs) -> nn.Module:
    """A ``torchvision.models.detection.backbone_utils.BackboneWithFPN`` over a resfam build.

    Args:
        ref: a model name, spec file or spec mapping.
        trainable_layers: stages (counted from the last) left trainable; the stem counts as one
            more, as in torchvision (0 freezes everything, ``num_stages + 1`` nothing).
        returned_layers: stage numbers (1 = layer1) the FPN reads (default: all stages).
        weights: a local checkpoint file to load before freezing (see :func:`load_pretrained`).
        build_kwargs: passed to :func:`resfam.build` (``output_stride``, ``drop_path_rate``...).
    """
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    model = build(ref, norm_layer=norm_layer, num_classes=0, **build_kwargs)
    if weights:
        load_pretrained(model, os.fspath(weights), strict=False)
    stages = len(model.stage_names)
    if not 0 <= trainable_layers <= stages + 1:
        raise BuildArgumentError(f"trainable_layers must be in [0, {stages + 1}] for "
                                 f"{model.spec.name}, got {trainable_layers}")
    model.frozen_stages = stages - trainable_layers  # -1: nothing frozen, 0: the stem
    model.train()  # applies the freezing
    returned = list(returned_layers or range(1, stages + 1))
    if not all(1 <= i <= stages for i in returned):
        raise BuildArgumentError(f"returned_layers must be stage numbers in 1..{stages}, got {returned}")
    return_layers = {model.stage_names[i - 1]: str(k) for k, i in enumerate(returned)}
    in_channels = [model.feature_info.channels(i) for i in returned]
    return BackboneWithFPN(model, return_layers, in_channels, out_channels,
                           extra_blocks=extra_blocks or LastLevelMaxPool())
