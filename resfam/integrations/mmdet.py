"""resfam backbones in mmdetection (via mmengine's registry).

In an mmdet 3.x config::

    custom_imports = dict(imports=["resfam.integrations.mmdet"], allow_failed_imports=False)
    model = dict(backbone=dict(
        type="ResFamBackbone", arch="res2net50_26w_4s", out_indices=(0, 1, 2, 3),
        frozen_stages=1, norm_cfg=dict(type="BN", requires_grad=True), norm_eval=True,
        style="pytorch", init_cfg=dict(type="Pretrained", checkpoint="res2net50.pth")))

The keyword arguments are mmdet ResNet's: ``out_indices`` count stages from 0 (layer1),
``frozen_stages`` / ``norm_eval`` / ``with_cp`` / ``zero_init_residual`` mean what they mean
there, ``style`` "caffe" strides the first 1x1 of a bottleneck, ``deep_stem`` and ``avg_down``
switch to the ResNet-D stem and shortcuts. The module names equal mmdet ResNet's
(``conv1, bn1, layer1.0.conv1, ...``), so mmdet ResNet checkpoints load by name.
"""
from __future__ import annotations

from typing import Optional, Sequence

from mmengine.registry import MODELS

from ..errors import BuildArgumentError
from ..network import ResFamNet
from ..pretrained import load_pretrained
from ..registry import get_spec

NORMS = {"BN": "bn", "BN2d": "bn", "SyncBN": "syncbn", "GN": "gn", "FrozenBN": "frozen_bn"}


def _spec_for(arch, style: str, deep_stem: bool, avg_down: bool):
    spec = get_spec(arch)
    if style == "pytorch" and not deep_stem and not avg_down:
        return spec
    raw = dict(spec.raw)
    if style == "caffe":
        if raw["block"].get("type") != "bottleneck":
            raise BuildArgumentError(f"style='caffe' needs a bottleneck block; {spec.name} has "
                                     f"{raw['block'].get('type')!r}")
        raw["block"] = dict(raw["block"], stride_on="1x1")
    elif style != "pytorch":
        raise BuildArgumentError(f"style must be 'pytorch' or 'caffe', got {style!r}")
    if deep_stem:
        raw["stem"] = {"type": "deep_maxpool", "width": raw["stem"].get("width", 64)}
    if avg_down:
        raw["shortcut"] = {"type": "avgpool_conv1x1"}
    return raw


@MODELS.register_module()
class ResFamBackbone(ResFamNet):
    """Any resfam variant (or spec file) as an mmdet backbone returning a tuple of stage maps."""

    def __init__(self, arch: str, out_indices: Sequence[int] = (0, 1, 2, 3), frozen_stages: int = -1,
                 norm_cfg: Optional[dict] = None, norm_eval: bool = False, with_cp: bool = False,
                 style: str = "pytorch", deep_stem: bool = False, avg_down: bool = False,
                 zero_init_residual: bool = False, output_stride: int = 32,
                 init_cfg: Optional[dict] = None, pretrained: Optional[str] = None):
        norm_cfg = norm_cfg or {"type": "BN", "requires_grad": True}
        if norm_cfg.get("type") not in NORMS:
            raise BuildArgumentError(f"norm_cfg type must be one of {', '.join(NORMS)}, got {norm_cfg.get('type')!r}")
        norm = NORMS[norm_cfg["type"]]
        if norm == "bn" and norm_cfg.get("requires_grad") is False:
            norm = "frozen_bn"
        super().__init__(get_spec(_spec_for(arch, style, deep_stem, avg_down)), features_only=True,
                         out_indices=[i + 1 for i in out_indices], frozen_stages=frozen_stages,
                         norm_eval=norm_eval, norm_layer=norm, zero_init_last=zero_init_residual,
                         output_stride=output_stride)
        self.init_cfg = init_cfg or ({"type": "Pretrained", "checkpoint": pretrained} if pretrained else None)
        self._zero_init_residual = zero_init_residual
        self.set_grad_checkpointing(with_cp)

    def init_weights(self, zero_init_last: Optional[bool] = None) -> None:
        """mmengine calls this with no argument: load ``init_cfg``'s checkpoint, or re-initialise."""
        cfg = getattr(self, "init_cfg", None)
        if zero_init_last is None and cfg and cfg.get("type") == "Pretrained":
            load_pretrained(self, cfg["checkpoint"], strict=False)
            return
        super().init_weights(self._zero_init_residual if zero_init_last is None else zero_init_last)

    def forward(self, x):
        return tuple(super().forward(x))
