"""The one network class: stem -> stages -> head, assembled from a resolved :class:`Spec`.

Children are registered in forward order with the torchvision / timm names
(``conv1, bn1, act1, maxpool, layer1..layerN, norm, fc``), so torchvision's
``IntermediateLayerGetter`` sees the stages in order and v1 checkpoints load by name.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Optional, Sequence, Union

import torch
from torch import nn
from torch.func import functional_call

from ..primitives import layers, norms
from ..primitives.attention_pool import AttentionPool2d
from ..primitives.blocks import ResidualBlock
from ..primitives.blocks.residual import run_blocks
from ..primitives.cross_stage import CrossStage
from ..primitives.inception import Layer
from ..primitives.merges import HighwayGate, expected_stds
from ..primitives.orders import placement
from ..primitives.shortcuts import build_shortcut, merges
from ..primitives.stems import StemParams, build_stem
from ..spec.build_args import (DEFAULT_MAX_BLOCKS, DEFAULT_MAX_PARAM_BYTES, BuildArgs,
                               check_build_args)
from ..spec.schema import Spec
from .features import FeatureInfo
from .preprocessing import default_cfg
from .size import check_size


def run_stage(stage: nn.Module, x: torch.Tensor, checkpointed: bool) -> torch.Tensor:
    """One stage on ``x`` (its blocks, or a cross stage around them); with ``checkpointed``
    (and gradients on) each block's activations are recomputed in the backward pass (Chen et
    al. 2016) instead of stored."""
    if isinstance(stage, CrossStage):
        return stage(x, checkpointed)
    return run_blocks(stage, x, checkpointed)


class ResFamNet(nn.Module):
    """A ResNet-family network built from a spec.

    Args:
        spec: the resolved spec (``resfam.get_spec``).
        num_classes, in_chans, drop_rate: override the spec's head / input (0 classes: no fc).
        drop_path_rate: stochastic depth, rising linearly over blocks to this rate (Huang et al.
            2016, Eq. (4)); timm's rule.
        zero_init_last: zero the last norm (or conv) of every residual branch (Goyal et al. 2017).
        output_stride: 8, 16 or 32; later strides become dilations (DeepLab, timm's rule).
        features_only: return the feature maps at ``out_indices`` instead of logits; the
            classifier head is not built (timm's ``features_only``).
        out_indices: levels to return, 0 = the stride-2 stem output, 1..N = stages
            (default: all levels).
        as_dict: with features_only, return ``{module name: tensor}`` instead of a list.
        frozen_stages: mmdet's meaning: -1 none, 0 the stem, k the stem and stages 1..k; frozen
            modules get no gradients and stay in eval mode after ``.train()``.
        norm_eval: keep every norm layer in eval mode (fixed statistics) during training.
        norm_layer: bn, syncbn, frozen_bn or gn, overriding the spec's ``norm``.
        norm_groups: the number of groups of ``gn`` layers (default 32; gcd(groups, C) for
            C channels, as mmdet's and detectron2's GN configs set it).
        max_param_bytes, max_blocks: refuse a network larger or deeper than this before
            allocating it (``None``: no limit); see :mod:`resfam.spec.build_args`.

    Every argument is checked (:func:`resfam.spec.build_args.check_build_args`) and the network's
    size counted before the first tensor is allocated; mistakes raise
    :class:`resfam.BuildArgumentError`.
    """

    def __init__(self, spec: Spec, *, num_classes: Optional[int] = None,
                 in_chans: Optional[int] = None, drop_rate: Optional[float] = None,
                 drop_path_rate: float = 0.0, zero_init_last: bool = False,
                 output_stride: int = 32, features_only: bool = False,
                 out_indices: Optional[Sequence[int]] = None, as_dict: bool = False,
                 frozen_stages: int = -1, norm_eval: bool = False,
                 norm_layer: Optional[str] = None, norm_groups: Optional[int] = None,
                 max_param_bytes: Optional[int] = DEFAULT_MAX_PARAM_BYTES,
                 max_blocks: Optional[int] = DEFAULT_MAX_BLOCKS):
        given = {k: v for k, v in locals().items() if k not in ("self", "spec", "__class__")}
        args = check_build_args(spec, given)  # every argument, before any tensor exists
        check_size(spec, args, ResFamNet.skeleton)  # parameters and buffers, on the meta device
        super().__init__()
        self._assemble(spec, args)

    @classmethod
    def skeleton(cls, spec: Spec, args: BuildArgs) -> "ResFamNet":
        """The network's parts on the current device, with no argument or size checks: what the
        size check (:mod:`resfam.network.size`) measures on the meta device."""
        net = cls.__new__(cls)
        nn.Module.__init__(net)
        net._assemble(spec, args)
        return net

    def _assemble(self, spec: Spec, args: BuildArgs) -> None:
        groups = norms.group_count(args.norm_groups, spec.model.gn_group_size)
        with layers.conv_style(spec.model.conv, spec.model.act), groups, layers.init_later(), \
                norms.norm_eps(spec.model.norm_eps):
            self._assemble_parts(spec, args)

    def _assemble_parts(self, spec: Spec, args: BuildArgs) -> None:
        m = spec.model
        norm = args.norm_layer or m.norm
        self.spec = spec
        self.num_classes = m.head.num_classes if args.num_classes is None else args.num_classes
        self.in_chans = m.in_chans if args.in_chans is None else args.in_chans
        self.drop_rate = m.head.drop_rate if args.drop_rate is None else args.drop_rate
        drop_path_rate, output_stride = args.drop_path_rate, args.output_stride
        self.stem_names = []
        for name, module in build_stem(m.stem, self.in_chans, norm, m.act).items():
            self.add_module(name, module)
            self.stem_names.append(name)
        if m.stem.layers is not None:
            levels = [m.stem.feature_level(self.in_chans)]
        else:
            stem_feat = "act1" if "act1" in self.stem_names else "conv1"
            first_stride = m.stem.reduction // (2 if "maxpool" in self.stem_names else 1)
            levels = [dict(num_chs=m.stem.width, reduction=first_stride, module=stem_feat)]

        total = sum(p.depth for p in spec.stages)
        n_levels = len(spec.stages) + 1
        out_indices = sorted(i % n_levels for i in (range(n_levels) if args.out_indices is None
                                                    else args.out_indices))
        # a feature extractor builds no stage past the last level it returns (as timm's)
        built = spec.stages[:out_indices[-1]] if args.features_only else spec.stages
        index, in_ch = 0, m.stem.width
        stds = expected_stds([(p.depth, p.merge.alpha) for p in spec.stages])
        self.stage_names = []
        for i, (plan, geo) in enumerate(zip(built, spec.geometry(output_stride))):
            blocks = OrderedDict()
            if isinstance(plan.entry, Layer):  # a layer opening the stage (Inception's reduction)
                blocks["entry"] = plan.entry.build(in_ch, norm, m.act)
                in_ch = plan.width
            elif plan.entry:  # a plain layer group opening the stage (stems.py presets)
                entry = StemParams(type=plan.entry, width=plan.width)
                blocks["entry"] = nn.Sequential(build_stem(entry, in_ch, norm, m.act))
                in_ch = plan.width
            stride, first_dilation = plan.first_block(geo)
            width = plan.block_width
            for j in range(plan.depth):
                s, cin, first = (stride, plan.block_input(in_ch), first_dilation) if j == 0 else \
                    (1, width, geo.dilation)
                blocks[str(j)] = ResidualBlock(
                    plan.block.at(j), cin, width, stride=s, dilation=geo.dilation,
                    first_dilation=first, placement=placement(m.order, j, plan.depth),
                    shortcut=build_shortcut(plan.shortcut, cin, width, s, geo.dilation, norm, first),
                    merge=plan.merge.block(j, plan.depth).at(merges(plan.shortcut, cin, width, s)),
                    attn=plan.attn, norm=norm, act=m.act,
                    shortcut_reads_preact=plan.shortcut.reads == "preact",
                    input_std=stds[i][j] if plan.merge.beta == "expected_std" else None,
                    drop_path=drop_path_rate * index / max(total - 1, 1))
                index += 1
            name = f"layer{i + 1}"
            stage = nn.Sequential(blocks)
            if plan.cross.on:
                stage = CrossStage(plan.cross, in_ch, plan.width, stage, geo.stride,
                                   geo.first_dilation, plan.stride > 1, norm, m.act)
            self.add_module(name, stage)
            self.stage_names.append(name)
            levels.append(dict(num_chs=plan.width, reduction=geo.reduction, module=name))
            in_ch = plan.width
        self.num_features = in_ch
        self.feature_info = FeatureInfo(levels, out_indices)
        self.features_only, self.as_dict = args.features_only, args.as_dict
        self.frozen_stages, self.norm_eval = args.frozen_stages, args.norm_eval
        self.grad_checkpointing = False
        if args.features_only:
            self.num_classes = 0
            self.norm = self.final_act = self.final_conv = None
            self.global_pool = self.head_drop = self.fc = None
            self.head_norm = self.pre_logits = None
        else:
            self.norm = norms.norm(norm, in_ch) if m.head.norm else None
            self.final_act = layers.act(m.act) if m.head.norm or m.head.act else None
            self.final_conv = None
            if m.head.conv:  # timm's final_conv (ConvNormAct): conv, bn, act
                self.final_conv = norms.ConvNormAct(layers.conv(in_ch, m.head.conv, 1), norm, m.act)
                self.num_features = in_ch = m.head.conv
            self.global_pool = nn.AdaptiveAvgPool2d(1) if m.head.pool == "avg" else nn.Identity()
            if m.head.pool == "attention":  # CLIP's: on the native input's grid
                grid = max(m.input_size // levels[-1]["reduction"], 1)
                self.global_pool = AttentionPool2d(in_ch, m.head.heads, grid)
            if m.head.pool == "flatten":  # the classifier sees every position
                self.num_features = in_ch * self._flat_size(m.input_size)
            self.head_norm = self.pre_logits = None
            if m.head.mlp:  # pooled features -> norm -> linear + act (timm's NormMlpClassifierHead)
                self.head_norm = norms.norm(norm, in_ch)
                self.pre_logits = nn.Sequential(OrderedDict(fc=nn.Linear(in_ch, m.head.mlp),
                                                            act=layers.act(m.act, inplace=False)))
                self.num_features = m.head.mlp
            self.head_drop = nn.Dropout(self.drop_rate) if self.drop_rate > 0 else nn.Identity()
            self.reset_classifier(self.num_classes)
        first = next(self.parameters(), None)
        if first is None or not first.is_meta:  # (meta tensors hold no values to set)
            self.init_weights(args.zero_init_last)
        self._freeze()
        # timm's preprocessing keys; resfam.build(pretrained=...) replaces them with the weights'
        self.pretrained_cfg = default_cfg(m.input_size, self.num_classes, self.in_chans)
        self.load_report = None

    def _flat_size(self, input_size: int) -> int:
        """Positions of the last feature map for a flatten head: one dry forward of the stem
        and stages in eval mode on the meta device, with meta stand-ins for their parameters and
        buffers (shapes only: nothing is allocated, whatever ``input_size`` asks for)."""
        x = torch.empty(1, self.in_chans, input_size, input_size, device="meta")
        was_training = self.training
        nn.Module.train(self, False)
        try:
            with torch.no_grad():
                for name in self.stem_names + self.stage_names:
                    part = getattr(self, name)
                    tensors = {**dict(part.named_parameters()), **dict(part.named_buffers())}
                    x = functional_call(part, {k: torch.empty_like(v, device="meta")
                                               for k, v in tensors.items()}, (x,))
        finally:
            nn.Module.train(self, was_training)
        return x.shape[-2] * x.shape[-1]

    @property
    def default_cfg(self) -> dict:  # timm's older name, read by some of its tools
        return self.pretrained_cfg

    def group_matcher(self, coarse: bool = False) -> dict:
        """Parameter groups for timm's layer-wise learning-rate decay: the stem, then each stage
        (``coarse``) or each block, in forward order (timm's ResNet convention)."""
        stem = r"^(?:" + "|".join(self.stem_names) + r")\."  # no capture: timm reads groups as numbers
        if coarse:
            return dict(stem=stem, blocks=r"^layer(\d+)")
        if not any(isinstance(getattr(self, n), CrossStage) for n in self.stage_names):
            return dict(stem=stem, blocks=r"^layer(\d+)\.(\d+)")
        # a cross stage: its down and expanding convs open the stage, its transitions close it
        return dict(stem=stem, blocks=[(r"^layer(\d+)\.blocks\.(\d+)", None),
                                       (r"^layer(\d+)\.conv_transition", (99999,)),
                                       (r"^layer(\d+)\.", (0,))])

    def init_weights(self, zero_init_last: bool = False) -> None:
        """He init for convs (He et al. 2015, fan-out), unit gains of scaled standardised convs,
        unit BN, highway biases as the spec says."""
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)
                if isinstance(mod, layers.ScaledStdConv2d):
                    nn.init.ones_(mod.gain)  # (Brock et al. 2021a, Eq. 5: a unit gain)
            elif norms.is_norm(mod) and getattr(mod, "weight", None) is not None:
                nn.init.ones_(mod.weight)
                nn.init.zeros_(mod.bias)
        for mod in self.modules():
            if isinstance(mod, HighwayGate):
                mod.reset_parameters()
            elif zero_init_last and isinstance(mod, ResidualBlock):
                last = mod.last_norm_or_conv()  # a scaled-std conv: its gain (timm's gain_init 0)
                nn.init.zeros_(last.gain if isinstance(last, layers.ScaledStdConv2d) else last.weight)

    # --- freezing and norms (mmdet's frozen_stages / norm_eval) -------------------------------

    def frozen_module_names(self) -> list[str]:
        """The stem's modules (frozen_stages >= 0) and stages 1..frozen_stages; with every stage
        frozen, a pre-activation net's final norm too (all but the classifier)."""
        if self.frozen_stages < 0:
            return []
        names = self.stem_names + self.stage_names[:self.frozen_stages]
        if self.frozen_stages >= len(self.stage_names) and self.norm is not None:
            names.append("norm")
        return names

    def frozen_modules(self) -> list[nn.Module]:
        return [getattr(self, n) for n in self.frozen_module_names()]

    def _freeze(self) -> None:
        for mod in self.frozen_modules():
            mod.eval()
            for p in mod.parameters():
                p.requires_grad_(False)
        if self.norm_eval and self.training:
            norms.eval_norms(self)

    def train(self, mode: bool = True) -> "ResFamNet":
        super().train(mode)
        self._freeze()
        return self

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in the backward pass instead of storing them
        (Chen et al. 2016): the same gradients for less activation memory."""
        self.grad_checkpointing = enable

    # --- forward ---------------------------------------------------------------------------

    def _run_stage(self, stage: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        return run_stage(stage, x, self.grad_checkpointing)

    def forward_levels(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        """The feature maps at ``feature_info.out_indices``, by module name; stops after the
        last one needed."""
        wanted = set(self.feature_info.out_indices)
        last = max(wanted)
        out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
        stem_feat = self.feature_info[0]["module"]
        for name in self.stem_names:
            x = getattr(self, name)(x)
            if name == stem_feat and 0 in wanted:
                out[name] = x
        for level, name in enumerate(self.stage_names, start=1):
            if level > last:
                break
            x = self._run_stage(getattr(self, name), x)
            if level in wanted:
                out[name] = x
        return out

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.stem_names:
            x = getattr(self, name)(x)
        for name in self.stage_names:
            x = self._run_stage(getattr(self, name), x)
        if self.norm is not None:
            x = self.norm(x)
        if self.final_act is not None:
            x = self.final_act(x)
        if self.final_conv is not None:
            x = self.final_conv(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x)
        if self.head_norm is not None:
            x = self.pre_logits(torch.flatten(self.head_norm(x), 1))
        x = self.head_drop(torch.flatten(x, 1))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, list, dict]:
        if self.features_only:
            feats = self.forward_levels(x)
            return feats if self.as_dict else list(feats.values())
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
