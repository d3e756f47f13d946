"""``resfam.build``: a spec reference in, an ``nn.Module`` out."""
from __future__ import annotations

import inspect

from .errors import BuildArgumentError, did_you_mean
from .network import ResFamNet
from .registry import SpecRef, get_spec

BUILD_ARGS = tuple(p for p in inspect.signature(ResFamNet.__init__).parameters
                   if p not in ("self", "spec"))


def build(ref: SpecRef, **kwargs) -> ResFamNet:
    """Build a variant: a registered name (``"resnext50_32x4d"``), a spec file (``"my.yaml"`` or
    ``"my.yaml:variant"``), a spec mapping, or a resolved Spec. Weights are randomly initialised.

    Keyword arguments are :class:`resfam.ResFamNet`'s: ``num_classes``, ``in_chans``,
    ``drop_rate``, ``drop_path_rate``, ``zero_init_last``, ``output_stride``, ``features_only``,
    ``out_indices``, ``as_dict``, ``frozen_stages``, ``norm_eval``, ``norm_layer``.
    """
    unknown = [k for k in kwargs if k not in BUILD_ARGS]
    if unknown:
        hint = did_you_mean(unknown[0], BUILD_ARGS) or f"accepted: {', '.join(BUILD_ARGS)}"
        raise BuildArgumentError(f"resfam.build({ref!r}): unknown argument '{unknown[0]}' ({hint})")
    if kwargs.get("output_stride", 32) not in (8, 16, 32):
        raise BuildArgumentError(f"resfam.build({ref!r}): output_stride must be 8, 16 or 32, "
                                 f"got {kwargs['output_stride']!r}")
    return ResFamNet(get_spec(ref), **kwargs)
