"""``optimize_for_inference``: the same network, arranged for fast inference.

0. Weight-standardised convs (BiT's, ``conv: {type: std}``) become plain convs holding the
   standardised weight, computed once: eager, each forward standardises every weight again.
1. BatchNorm folded into the conv before it (``W' = W * g / sqrt(v + eps)``,
   ``b' = (b - m) * g / sqrt(v + eps) + beta``), by torch.fx's conv-bn fusion pass, which
   traces the model and fuses every Conv2d whose only consumer is a BatchNorm2d. On that
   graph the highway gate and an attention-scaled branch's addition to its shortcut become one
   elementwise op each (:mod:`.elementwise`).
2. channels_last memory format (NHWC), which oneDNN on CPU and cuDNN on GPU run faster for most
   convs; inputs are converted on the way in.
3. Optionally (``onednn=True``, CPU float32) every convolution handed to oneDNN with its weight
   packed once and a following ReLU, sigmoid or SiLU fused, and the residual addition with its
   ReLU where the convolution ends the branch (:mod:`.onednn`): the fastest torch path on CPU.
4. Optionally ``torch.compile``.

Outputs equal eager ones up to float rounding (the tests hold them within 1e-4).
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import ArgumentError, short_repr


class _ChannelsLast(nn.Module):
    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor):
        return self.inner(x.contiguous(memory_format=torch.channels_last))


def standardize_once(model: nn.Module) -> nn.Module:
    """Every :class:`~resfam.primitives.layers.StdConv2d` in ``model`` replaced, in place, by a
    plain ``nn.Conv2d`` (``Conv2dSame`` where it pads as TensorFlow) whose weight is the standardised one (Qiao et al. 2019, Eq. 5), as its
    forward computes it; the model is returned."""
    from ..primitives.layers import Conv2dSame, StdConv2d

    for name, child in model.named_children():
        if isinstance(child, StdConv2d):  # TensorFlow's SAME padding stays (Conv2dSame)
            plain = (Conv2dSame if child.same else nn.Conv2d)(child.in_channels, child.out_channels, child.kernel_size,
                              stride=child.stride, padding=child.padding, dilation=child.dilation,
                              groups=child.groups, bias=child.bias is not None,
                              padding_mode=child.padding_mode, device=child.weight.device,
                              dtype=child.weight.dtype)
            with torch.no_grad():
                plain.weight.copy_(child.standardized_weight())
                if child.bias is not None:
                    plain.bias.copy_(child.bias)
            setattr(model, name, plain)
        else:
            standardize_once(child)
    return model


def fold_batch_norm(model: nn.Module) -> nn.Module:
    """An fx GraphModule of ``model`` (eval) with every conv -> BatchNorm pair fused; it reuses
    ``model``'s modules (pass a copy)."""
    from torch.fx.experimental.optimization import fuse

    return fuse(model.eval(), inplace=True)


def optimize_for_inference(model: nn.Module, *, fold_bn: bool = True, channels_last: bool = True,
                           onednn: bool = False, compile: bool = False, **compile_kwargs) -> nn.Module:
    """A copy of ``model`` for inference (the original is left as it is). ``onednn`` needs the
    model on the CPU in float32 (it packs the weights there): move it first."""
    if not isinstance(model, nn.Module):
        raise ArgumentError(f"optimize_for_inference expects an nn.Module (resfam.build), got "
                            f"{type(model).__name__}")
    for key, value in (("fold_bn", fold_bn), ("channels_last", channels_last), ("onednn", onednn),
                       ("compile", compile)):
        if not isinstance(value, bool):
            raise ArgumentError(f"{key} must be True or False, got {short_repr(value)}")
    out = standardize_once(copy.deepcopy(model).eval())
    if fold_bn:
        from .elementwise import fuse_merges

        out = fuse_merges(fold_batch_norm(out))
    if onednn:
        from . import onednn as packing

        if not packing.available():
            raise ArgumentError("onednn=True: this torch build has no oneDNN (MKLDNN) convolution; "
                                "use onednn=False")
        out = packing.pack_convolutions(out)
    if channels_last:
        out = _ChannelsLast(out.to(memory_format=torch.channels_last))
    if compile:
        out = torch.compile(out, **compile_kwargs)
    return out
