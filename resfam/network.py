"""The one network class: stem -> stages -> head, assembled from a resolved :class:`Spec`.

Children are registered in forward order with the torchvision / timm names
(``conv1, bn1, act1, maxpool, layer1..layerN, norm, fc``), so torchvision's
``IntermediateLayerGetter`` sees the stages in order and v1 checkpoints load by name.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from . import layers
from .blocks import ResidualBlock
from .merges import HighwayGate
from .orders import placement
from .shortcuts import build_shortcut
from .spec import Spec
from .stems import build_stem


class ResFamNet(nn.Module):
    """A ResNet-family network built from a spec.

    Args:
        spec: the resolved spec (``resfam.get_spec``).
        num_classes, in_chans, drop_rate: override the spec's head / input (0 classes: no fc).
        drop_path_rate: stochastic depth, rising linearly over blocks to this rate (Huang et al.
            2016, Eq. (4)); timm's rule.
        zero_init_last: zero the last norm (or conv) of every residual branch (Goyal et al. 2017).
        output_stride: 8, 16 or 32; later strides become dilations (DeepLab, timm's rule).
    """

    def __init__(self, spec: Spec, *, num_classes: Optional[int] = None,
                 in_chans: Optional[int] = None, drop_rate: Optional[float] = None,
                 drop_path_rate: float = 0.0, zero_init_last: bool = False,
                 output_stride: int = 32):
        super().__init__()
        m = spec.model
        self.spec = spec
        self.num_classes = m.head.num_classes if num_classes is None else num_classes
        self.in_chans = m.in_chans if in_chans is None else in_chans
        self.drop_rate = m.head.drop_rate if drop_rate is None else drop_rate
        self.stem_names = []
        for name, module in build_stem(m.stem, self.in_chans, m.norm, m.act).items():
            self.add_module(name, module)
            self.stem_names.append(name)
        stem_feat = "act1" if "act1" in self.stem_names else "conv1"
        first_stride = m.stem.reduction // (2 if "maxpool" in self.stem_names else 1)
        self.feature_info = [dict(num_chs=m.stem.width, reduction=first_stride, module=stem_feat)]

        total = sum(p.depth for p in spec.stages)
        net_stride, dilation, index, in_ch = m.stem.reduction, 1, 0, m.stem.width
        self.stage_names = []
        for i, plan in enumerate(spec.stages):
            stride, first_dilation = plan.stride, dilation
            if net_stride * stride > output_stride:
                dilation, stride = dilation * stride, 1
            net_stride *= stride
            blocks = []
            for j in range(plan.depth):
                s, cin = (stride, in_ch) if j == 0 else (1, plan.width)
                blocks.append(ResidualBlock(
                    plan.block, cin, plan.width, stride=s, dilation=dilation,
                    first_dilation=first_dilation if j == 0 else dilation,
                    placement=placement(m.order, j, plan.depth),
                    shortcut=build_shortcut(plan.shortcut, cin, plan.width, s, dilation, m.norm),
                    merge=plan.merge, norm=m.norm, act=m.act,
                    drop_path=drop_path_rate * index / max(total - 1, 1)))
                index += 1
            name = f"layer{i + 1}"
            self.add_module(name, nn.Sequential(*blocks))
            self.stage_names.append(name)
            self.feature_info.append(dict(num_chs=plan.width, reduction=net_stride, module=name))
            in_ch = plan.width
        self.num_features = in_ch
        self.norm = layers.norm(m.norm, in_ch) if m.head.norm else None
        self.final_act = layers.act(m.act) if m.head.norm else None
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.head_drop = nn.Dropout(self.drop_rate) if self.drop_rate > 0 else nn.Identity()
        self.fc = nn.Linear(in_ch, self.num_classes) if self.num_classes > 0 else nn.Identity()
        self.init_weights(zero_init_last)

    def init_weights(self, zero_init_last: bool = False) -> None:
        """He init for convs (He et al. 2015, fan-out), unit BN, highway biases as the spec says."""
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)
            elif isinstance(mod, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(mod.weight)
                nn.init.zeros_(mod.bias)
        for mod in self.modules():
            if isinstance(mod, HighwayGate):
                mod.reset_parameters()
            elif zero_init_last and isinstance(mod, ResidualBlock):
                nn.init.zeros_(mod.last_norm_or_conv().weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.stem_names:
            x = getattr(self, name)(x)
        for name in self.stage_names:
            x = getattr(self, name)(x)
        if self.norm is not None:
            x = self.final_act(self.norm(x))
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(torch.flatten(self.global_pool(x), 1))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
