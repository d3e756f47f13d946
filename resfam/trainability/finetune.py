"""Transfer learning from pretrained weights: how much of the network to retrain.

The three modes of the usual recipe (Yosinski et al. 2014; the cs231n transfer-learning notes):

| mode | trains | frozen (no gradients, norms in eval mode: fixed statistics) |
|---|---|---|
| ``"full"`` | everything; the backbone at ``lr * backbone_lr_scale`` | nothing |
| ``"last"`` | the last ``stages`` stages and the head | the stem and the stages before |
| ``"head"`` | the classifier only (a new one with ``num_classes``) | everything else, a pre-activation net's final norm included |

Freezing reuses the network's own ``frozen_stages`` (re-applied by every ``.train()``), so a
frozen part stays frozen through the training loop.
"""
from __future__ import annotations

import math
from typing import Optional

from torch import nn

from ..errors import ArgumentError, did_you_mean
from ..spec.build_args import DEFAULT_MAX_PARAM_BYTES

MODES = ("full", "last", "head")


def prepare_finetune(model: nn.Module, mode: str = "full", *, stages: int = 1,
                     num_classes: Optional[int] = None, lr: float = 0.01,
                     backbone_lr_scale: float = 0.1) -> list[dict]:
    """Set a resfam ``model`` up for one transfer-learning mode; returns the optimizer's
    parameter groups (``[{'params', 'lr', 'name'}, ...]``, trainable tensors only).

    Args:
        mode: ``"full"``, ``"last"`` (the last ``stages`` stages + head) or ``"head"``.
        num_classes: replace the classifier by a new one of this size (required for a model
            built without one).
        lr: the head's learning rate; trainable backbone tensors get ``lr * backbone_lr_scale``.
    """
    from ..network.model import ResFamNet

    if not isinstance(model, ResFamNet):
        raise ArgumentError(f"prepare_finetune expects a resfam model (resfam.build), got "
                            f"{type(model).__name__}")
    if mode not in MODES:
        raise ArgumentError(f"unknown mode {mode!r}; {did_you_mean(str(mode), MODES) or 'use one of: ' + ', '.join(MODES)}")
    n = len(model.stage_names)
    if mode == "last" and (isinstance(stages, bool) or not isinstance(stages, int) or not 1 <= stages <= n):
        raise ArgumentError(f"stages must be an int in 1..{n} for {model.spec.name}, got {stages!r}")
    for key, value in (("lr", lr), ("backbone_lr_scale", backbone_lr_scale)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
            raise ArgumentError(f"{key} must be a number >= 0, and finite, got {value!r}")
    if model.features_only:
        raise ArgumentError(f"{model.spec.name} was built with features_only=True: it has no head "
                            "to fine-tune; build it without features_only")
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ArgumentError(f"num_classes must be an int >= 1, got {num_classes!r}")
        head_bytes = (model.num_features + 1) * num_classes * 4
        if head_bytes > DEFAULT_MAX_PARAM_BYTES:
            raise ArgumentError(f"num_classes={num_classes}: the new classifier alone would take "
                                f"{head_bytes / 2 ** 30:.3g} GiB, more than a whole build may "
                                f"({DEFAULT_MAX_PARAM_BYTES // 2 ** 30} GiB)")
        model.reset_classifier(num_classes)
    elif model.num_classes == 0:
        raise ArgumentError(f"{model.spec.name} has no classifier: pass num_classes")

    for p in model.parameters():
        p.requires_grad_(True)
    model.frozen_stages = {"full": -1, "last": n - stages, "head": n}[mode]
    model.train()  # applies the freezing: frozen modules in eval mode, without gradients
    head = [p for p in model.get_classifier().parameters() if p.requires_grad]
    seen = {id(p) for p in head}
    backbone = [p for p in model.parameters() if p.requires_grad and id(p) not in seen]
    groups = [dict(name="head", params=head, lr=lr)]
    if backbone:
        groups.insert(0, dict(name="backbone", params=backbone, lr=lr * backbone_lr_scale))
    return groups
