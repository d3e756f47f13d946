"""``resfam.build``: a spec reference in, an ``nn.Module`` out."""
from __future__ import annotations

from .build_args import ARG_NAMES
from .errors import BuildArgumentError, did_you_mean
from .network import ResFamNet
from .registry import SpecRef, get_spec

BUILD_ARGS = ARG_NAMES


def build(ref: SpecRef, **kwargs) -> ResFamNet:
    """Build a variant: a registered name (``"resnext50_32x4d"``), a spec file (``"my.yaml"`` or
    ``"my.yaml:variant"``), a spec mapping, or a resolved Spec. Weights are randomly initialised.

    Keyword arguments are :class:`resfam.ResFamNet`'s: ``num_classes``, ``in_chans``,
    ``drop_rate``, ``drop_path_rate``, ``zero_init_last``, ``output_stride``, ``features_only``,
    ``out_indices``, ``as_dict``, ``frozen_stages``, ``norm_eval``, ``norm_layer``,
    ``max_param_bytes``, ``max_blocks``. The spec and every argument are checked, and the
    network's size counted, before anything is allocated.
    """
    spec = get_spec(ref)
    unknown = [k for k in kwargs if k not in ARG_NAMES]
    if unknown:
        hint = did_you_mean(unknown[0], ARG_NAMES) or f"accepted: {', '.join(ARG_NAMES)}"
        raise BuildArgumentError("unknown argument", variant=spec.name, key=unknown[0], hint=hint)
    return ResFamNet(spec, **kwargs)
