"""Map timm / torchvision / official-iResNet state dicts onto resfam's module names.

torchvision and timm's ``resnet.py`` (v1, ResNeXt, Wide) already share resfam's names. The rest:

| source | source key | resfam key |
|---|---|---|
| timm res2net | ``layerI.J.convs.K`` / ``bns.K`` | ``layerI.J.conv2.convs.K`` / ``conv2.bns.K`` |
| timm resnetv2 | ``stem.conv`` | ``conv1`` |
| timm resnetv2 | deep stem ``stem.conv1..3`` / ``stem.norm1..2`` | ``conv1.0 / .3 / .6`` / ``conv1.1 / .4`` |
| timm resnetv2 | ``stages.I.blocks.J.normK`` | ``layer{I+1}.J.bn{K-1}`` (bnK normalises convK's output) |
| timm resnetv2 | ``...downsample.conv`` / ``.norm`` | ``...downsample.0`` / ``.1``, or ``.1`` / ``.2`` after a pool |
| timm resnetv2 | ``head.fc`` (a 1x1 conv) | ``fc`` (its weight flattened) |
| iduta/iresnet | end block ``bn3`` (after the add) | ``bn_out`` |
| timm senet (legacy SENet) | ``layer0.conv1`` / ``bn1`` (7x7 stem) | ``conv1`` / ``bn1`` |
| timm senet (legacy SENet) | ``layer0.conv1..3`` / ``bn1..3`` (3x3 stem) | ``conv1.0 / .3 / .6`` / ``conv1.1 / .4``, ``bn1`` |
| timm senet (legacy SENet) | ``...se_module``, ``last_linear`` | ``...se``, ``fc`` |
| timm sknet | ``layerI.J.convK.conv`` / ``.bn`` (conv-norm-act units) | ``layerI.J.convK`` / ``bnK`` |
| timm regnet | ``stem.conv`` / ``stem.bn``, ``head.fc`` | ``conv1`` / ``bn1``, ``fc`` |
| timm regnet | ``sI.bJ.convK.conv`` / ``.bn``, ``...downsample.conv`` / ``.bn`` | ``layerI.{J-1}.convK`` / ``bnK``, ``...downsample.0`` / ``.1`` |
| timm regnetv (pre-activated) | ``stem.weight``, ``sI.bJ.normK``, ``...downsample.weight`` | ``conv1.weight``, ``layerI.{J-1}.bn{K-1}``, ``...downsample.0.weight`` |
| timm tresnet | ``body.conv1.conv`` / ``.bn``, ``head.fc`` | ``conv1`` / ``bn1``, ``fc`` |
| timm tresnet | ``body.layerI.J.convK.conv`` / ``.bn``, ``...downsample.{0,1}.conv`` / ``.bn`` | ``layerI.J.convK`` / ``bnK``, ``...downsample.1`` / ``.2`` |
| timm cspnet | ``stem.conv1.conv`` / ``.bn`` (deep: ``stem.conv1..3``), ``head.fc`` | ``conv1`` / ``bn1`` (deep: ``conv1.0 / .3 / .6``, ``conv1.1 / .4``, ``bn1``), ``fc`` |
| timm cspnet | ``stages.I.conv_exp`` etc., ``stages.I.blocks.J.convK.conv`` / ``.bn`` | ``layer{I+1}.conv_exp`` etc., ``layer{I+1}.blocks.J.convK`` / ``bnK`` |
| timm inception_resnet_v2 | ``conv2d_1a`` ... ``mixed_5b`` (the stem's eight layers) | ``stem1`` ... ``stem8`` |
| timm inception_resnet_v2 | ``repeat.J`` / ``repeat_1.J`` / ``repeat_2.J``, ``block8`` with ``branchK``, ``conv2d`` | ``layer{1,2,3}.J``, ``layer3.9`` (the last) with ``conv1.branchK``, ``conv2`` |
| timm inception_resnet_v2 | ``mixed_6a`` / ``mixed_7a``, ``conv2d_7b``, ``classif`` | ``layer2.entry`` / ``layer3.entry``, ``final_conv``, ``fc`` |
| torchvision regnet | ``stem.0`` / ``stem.1`` | ``conv1`` / ``bn1`` |
| torchvision regnet | ``trunk_output.blockI.blockI-J.f.{a,b,c}.{0,1}``, ``f.se``, ``proj.{0,1}`` | ``layerI.J.conv{1,2,3}`` / ``bn{1,2,3}``, ``se``, ``downsample.{0,1}`` |
"""
from __future__ import annotations

import re
from typing import Mapping, Union

import torch
from torch import nn

from ..errors import ArgumentError, CheckpointError, short_repr
from ..spec.registry import SpecRef, get_spec
from ..spec.schema import Spec

WRAPPER_KEYS = ("state_dict", "model", "module", "model_state_dict")
PREFIXES = ("module.", "backbone.", "model.")


MAX_WRAPPERS = 8


def unwrap(state: Mapping) -> dict[str, torch.Tensor]:
    """Strip checkpoint wrappers (``{'state_dict': ...}``) and ``module.`` / ``backbone.``
    prefixes. Raises CheckpointError for anything that is not a mapping of names to tensors
    (a wrapper that contains itself included)."""
    for _ in range(MAX_WRAPPERS):
        if not isinstance(state, Mapping) or any(torch.is_tensor(v) for v in state.values()):
            break
        inner = next((state[k] for k in WRAPPER_KEYS if isinstance(state.get(k), Mapping)), None)
        if inner is None:
            break
        if inner is state:
            raise CheckpointError("the checkpoint's wrapper contains itself (state['state_dict'] "
                                  "is state), so it holds no weights")
        state = inner
    if not isinstance(state, Mapping):
        raise CheckpointError(f"expected a state dict (a mapping of names to tensors), got "
                              f"{type(state).__name__}")
    out = {}
    for key, value in state.items():
        if not isinstance(key, str):
            raise CheckpointError(f"state dict keys must be strings, got {short_repr(key)}")
        if not torch.is_tensor(value):
            raise CheckpointError(f"{short_repr(key)} holds a {type(value).__name__}, not a tensor",
                                  hint="save model.state_dict(), or a mapping with it under "
                                       "'state_dict' / 'model'")
        for prefix in PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        out[key] = value
    return out


# a 3x3 deep stem (conv, norm, act, conv, norm, act, conv) is one Sequential in resfam; its norm
# after the last conv, where there is one, is bn1. timm's resnetv2 names the norms normK, its
# legacy SENet bnK: both map by (conv | norm, K)
DEEP_STEM = {("conv", "1"): "conv1.0", ("norm", "1"): "conv1.1", ("conv", "2"): "conv1.3",
             ("norm", "2"): "conv1.4", ("conv", "3"): "conv1.6", ("norm", "3"): "bn1"}
SINGLE_STEM = {"conv": "conv1", "norm": "bn1"}  # timm resnetv2's stem.conv / stem.norm
POOL_FIRST = ("avgpool_conv1x1", "maxpool_conv1x1")  # shortcuts whose conv is downsample.1


def _deep_stem_key(kind: str, index: str, rest: str) -> str | None:
    """resfam's name for a deep stem's ``conv{index}`` / norm ``{index}``; None if it has none."""
    target = DEEP_STEM.get(("norm" if kind in ("norm", "bn") else kind, index))
    return f"{target}.{rest}" if target else None


def _norm_before_conv(rest: str) -> str:
    """A pre-activation block's ``normK`` (before ``convK``) as resfam's ``bn{K-1}`` (after
    ``conv{K-1}``; ``bn0`` normalises the block input): timm's resnetv2 and regnetv."""
    return re.sub(r"^norm(\d+)\.", lambda n: f"bn{int(n.group(1)) - 1}.", rest)


CONV_NORM_ACT_UNIT = r"conv(\d)\.(conv|bn)\."  # timm's ``convK.conv`` / ``convK.bn`` units


def _v2_key(key: str, spec: Spec) -> str:
    m = re.match(r"^stem\.(conv|norm)(\d?)\.(.*)$", key)
    if m:
        kind, index, rest = m.groups()
        renamed = _deep_stem_key(kind, index, rest) if index else f"{SINGLE_STEM[kind]}.{rest}"
        if renamed:
            return renamed
    m = re.match(r"^stages\.(\d+)\.blocks\.(\d+)\.(.*)$", key)
    if m:
        stage, block, rest = int(m.group(1)), m.group(2), m.group(3)
        rest = _norm_before_conv(rest)
        pool = stage < len(spec.stages) and spec.stages[stage].shortcut.type in POOL_FIRST
        rest = re.sub(r"^downsample\.(conv|norm)\.",
                      lambda d: f"downsample.{(d.group(1) == 'norm') + pool}.", rest)
        key = f"layer{stage + 1}.{block}.{rest}"
    return key


def _projection(rest: str, name: str) -> str:
    """A projection shortcut held as a conv-norm unit ``<name>.conv / .bn`` -> resfam's
    ``downsample.0 / .1``."""
    return re.sub(rf"^{name}\.(conv|bn)\.", lambda u: f"downsample.{int(u.group(1) == 'bn')}.", rest)


REGNET_UNITS = {"a": "1", "b": "2", "c": "3"}  # torchvision's f.a / f.b / f.c


def _regnet_key(key: str) -> str:
    """timm's and torchvision's RegNet names (the table above)."""
    key = re.sub(r"^stem\.weight$", "conv1.weight", key)  # the pre-activated stem: a bare conv
    key = re.sub(r"^stem\.(conv|0)\.", "conv1.", key)
    key = re.sub(r"^stem\.(bn|1)\.", "bn1.", key)
    m = re.match(r"^s(\d+)\.b(\d+)\.(.*)$", key)  # timm
    if m:
        rest = re.sub("^" + CONV_NORM_ACT_UNIT, r"\2\1.", m.group(3))
        rest = _projection(rest, "downsample")
        rest = re.sub(r"^downsample\.weight$", "downsample.0.weight", rest)  # pre-activated: a bare conv
        rest = _norm_before_conv(rest)
        return f"layer{m.group(1)}.{int(m.group(2)) - 1}.{rest}"
    m = re.match(r"^trunk_output\.block(\d+)\.block\d+-(\d+)\.(.*)$", key)  # torchvision
    if m:
        rest = re.sub(r"^f\.([abc])\.([01])\.",
                      lambda u: f"{'conv' if u.group(2) == '0' else 'bn'}{REGNET_UNITS[u.group(1)]}.",
                      m.group(3))
        rest = re.sub(r"^f\.se\.", "se.", rest)
        rest = re.sub(r"^proj\.", "downsample.", rest)
        return f"layer{m.group(1)}.{m.group(2)}.{rest}"
    return key


BYOB_UNITS = {"conv1_1x1": 1, "conv2_kxk": 2, "conv3_1x1": 3,
              "conv1_kxk": 1, "conv2_1x1": 2}  # bottleneck; edge (3x3 then 1x1)


def _deep_stem_positions(stem) -> list[int]:
    """Where each conv of a deep stem sits in resfam's ``conv1`` Sequential (a conv followed by
    its norm and act, or alone for ``linear`` ones; the last conv's norm is ``bn1``)."""
    positions, at = [], 0
    for k in range(len(stem.deep_widths)):
        positions.append(at)
        at += 1 if k < stem.linear else 3
    return positions + [at]


def _stem_unit_key(key: str, spec: Spec) -> str:
    """A stem of ``stem.convK`` units (conv-norm-act, or bare convs) as resfam's: ``conv1`` /
    ``bn1`` for a single conv, a deep stem's positions in ``conv1`` (its last norm ``bn1``)."""
    m = re.match(r"^stem\.conv(\d)\.(?:(conv|bn)\.)?(.*)$", key)
    if not m:
        return key
    k, unit, rest = int(m.group(1)) - 1, m.group(2), m.group(3)
    if not spec.model.stem.type.startswith(("deep", "preact_deep")):
        return f"{'bn1' if unit == 'bn' else 'conv1'}.{rest}" if k == 0 else key
    where = _deep_stem_positions(spec.model.stem)
    if unit == "bn":
        return ("bn1." if k == len(where) - 1 else f"conv1.{where[k] + 1}.") + rest
    return f"conv1.{where[k]}.{rest}"


def _byob_key(key: str, spec: Spec) -> str:
    """timm's byobnet ResNets: ``stem.convK`` (conv-norm-act units or bare convs: a deep stem),
    ``stages.I.J`` with ``conv1_1x1 / conv2_kxk / conv2b_kxk / conv3_1x1`` (bottleneck) or
    ``conv1_kxk / conv2_1x1`` (edge) conv-norm-act units, ``attn`` (after the 3x3) and a
    ``shortcut`` conv-norm unit, ``final_conv``, ``head.fc``."""
    if spec.model.stem.type.startswith(("deep", "preact_deep")):
        key = _stem_unit_key(key, spec)
    key = re.sub(r"^head\.proj\.", "fc.", key)  # CLIP: the attention pool's projection
    key = re.sub(r"^head\.(norm|pre_logits)\.", lambda h: "head_norm." if h.group(1) == "norm"
                 else "pre_logits.", key)  # an MLP head
    key = re.sub(r"^head\.(q|k|v|pos_embed)\b", r"global_pool.\1", key)
    m = re.match(r"^stages\.(\d+)\.(\d+)\.(.*)$", key)
    if not m:
        return key
    rest = re.sub(r"^shortcut\.conv\.(conv|bn)\.",  # an average pool, then conv-norm (CLIP)
                  lambda u: f"downsample.{1 + (u.group(1) == 'bn')}.", m.group(3))
    stage = int(m.group(1))
    units = dict(BYOB_UNITS)
    if stage < len(spec.stages) and spec.stages[stage].block.n_units == 4:  # a second 3x3
        units.update(conv2b_kxk=3, conv3_1x1=4)
    rest = re.sub(r"^(conv\w+?_(?:1x1|kxk))\.(conv|bn)\.",
                  lambda u: f"{u.group(2)}{units[u.group(1)]}.", rest)
    rest = re.sub(r"^attn\.", "se.", rest)
    rest = _projection(rest, "shortcut")
    return f"layer{int(m.group(1)) + 1}.{m.group(2)}.{rest}"


def _nf_key(key: str, spec: Spec) -> str:
    """timm's nfnet: ``stem.conv``, ``stages.I.J`` with ``conv1..3``, ``attn_last`` (after the
    branch) or ``attn`` (after the 3x3) and ``downsample.conv`` (after its pool), a bare
    ``final_conv``, ``head.fc``."""
    key = re.sub(r"^stem\.conv\.", "conv1.", key)
    if spec.model.stem.type.startswith(("deep", "preact_deep")):  # stem.convK: NFNet-F's four
        where = _deep_stem_positions(spec.model.stem)
        key = re.sub(r"^stem\.conv(\d)\.", lambda c: f"conv1.{where[int(c.group(1)) - 1]}.", key)
    key = re.sub(r"^final_conv\.(weight|bias|gain)$", r"final_conv.conv.\1", key)
    m = re.match(r"^stages\.(\d+)\.(\d+)\.(.*)$", key)
    if not m:
        return key
    stage, rest = int(m.group(1)), re.sub(r"^attn(_last)?\.", "se.", m.group(3))
    if re.match(r"^conv2b\.", rest):  # NFNet-F's second 3x3: the third of four units
        rest = "conv3." + rest[len("conv2b."):]
    elif re.match(r"^conv3\.", rest) and stage < len(spec.stages) and spec.stages[stage].block.n_units == 4:
        rest = "conv4." + rest[len("conv3."):]
    pool = stage < len(spec.stages) and spec.stages[stage].shortcut.type in POOL_FIRST
    rest = re.sub(r"^downsample\.conv\.", f"downsample.{int(pool)}.", rest)
    return f"layer{stage + 1}.{m.group(2)}.{rest}"


def _tresnet_key(key: str) -> str:
    """timm's tresnet: ``body.conv1`` (the conv-norm-act after ``body.s2d``), ``body.layerI.J``
    with ``convK.conv / .bn`` units and a ``downsample`` whose conv-norm unit follows its pool
    (or, at stride 1, stands alone), ``head.fc``."""
    key = re.sub(r"^body\.conv1\.(conv|bn)\.", lambda u: "conv1." if u.group(1) == "conv" else "bn1.", key)
    m = re.match(r"^body\.(layer\d+\.\d+)\.(.*)$", key)
    if not m:
        return key
    rest = re.sub("^" + CONV_NORM_ACT_UNIT, r"\2\1.", m.group(2))
    rest = re.sub(r"^downsample\.\d\.(conv|bn)\.",  # resfam's avg-pool shortcut keeps its pool
                  lambda u: f"downsample.{1 + (u.group(1) == 'bn')}.", rest)  # slot (an Identity)
    return f"{m.group(1)}.{rest}"


def _csp_key(key: str, spec: Spec) -> str:
    """timm's cspnet: ``stem.convK`` conv-norm-act units, ``stages.I`` holding ``conv_down``,
    ``conv_exp``, ``conv_transition_b`` and ``conv_transition`` (resfam's names too) and
    ``blocks.J`` with ``convK.conv / .bn`` units, ``head.fc``."""
    key = _stem_unit_key(key, spec)
    m = re.match(r"^stages\.(\d+)\.(.*)$", key)
    if not m:
        return key
    rest = re.sub(r"^(blocks\.\d+\.)" + CONV_NORM_ACT_UNIT, r"\1\3\2.", m.group(2))
    return f"layer{int(m.group(1)) + 1}.{rest}"


INCEPTION_STEM = ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a",
                  "maxpool_5a", "mixed_5b")  # timm's names of the stem's layers, in order
INCEPTION_STAGES = {"repeat": "layer1", "repeat_1": "layer2", "repeat_2": "layer3"}
INCEPTION_ENTRIES = {"mixed_6a": "layer2.entry", "mixed_7a": "layer3.entry"}


def _inception_key(key: str, spec: Spec) -> str:
    """timm's inception_resnet_v2 (the table above)."""
    head, _, rest = key.partition(".")
    if head in INCEPTION_STEM:
        return f"stem{INCEPTION_STEM.index(head) + 1}.{rest}"
    if head in INCEPTION_ENTRIES:
        return f"{INCEPTION_ENTRIES[head]}.{rest}"
    if head in INCEPTION_STAGES or head == "block8":  # block8: the last stage's last block
        where = f"layer3.{spec.stages[2].depth - 1}.{rest}" if head == "block8" else \
            f"{INCEPTION_STAGES[head]}.{rest}"
        where = re.sub(r"^(layer\d\.\d+)\.branch", r"\1.conv1.branch", where)
        return re.sub(r"^(layer\d\.\d+)\.conv2d\.", r"\1.conv2.", where)
    return {"conv2d_7b": "final_conv", "classif": "fc"}.get(head, head) + (f".{rest}" if rest else "")


def _legacy_senet(state: dict) -> dict:
    """timm's senet.py (the original Caffe models' layout): ``layer0`` is the stem, a 7x7
    ``conv1`` / ``bn1`` or a 3x3 deep stem (conv1..3, bn1..3)."""
    deep = "layer0.conv3.weight" in state
    out = {}
    for key, value in state.items():
        m = re.match(r"^layer0\.(conv|bn)(\d)\.(.*)$", key)
        if m:
            kind, index, rest = m.groups()
            renamed = _deep_stem_key(kind, index, rest) if deep else \
                f"{SINGLE_STEM['norm' if kind == 'bn' else kind]}.{rest}"
            key = renamed or key  # a stem key with no resfam counterpart stays (unexpected)
        key = re.sub(r"\.se_module\.", ".se.", key)
        key = re.sub(r"^last_linear\.", "fc.", key)
        out[key] = value
    return out


def convert_state_dict(state: Mapping, target: Union[SpecRef, nn.Module]) -> dict[str, torch.Tensor]:
    """A timm / torchvision / official iResNet state dict renamed for the resfam build of
    ``target`` (a name, spec, or resfam model). Values are not copied."""
    if isinstance(target, nn.Module):
        spec = getattr(target, "spec", None)
        if not isinstance(spec, Spec):
            raise ArgumentError(f"expected a resfam model (resfam.build), got "
                                f"{type(target).__name__}; for another library's model use its "
                                "own load_state_dict")
    else:
        spec = get_spec(target)
    state = unwrap(state)
    if any(k.startswith(("s1.b1.", "trunk_output.")) for k in state):
        state = {_regnet_key(k): v for k, v in state.items()}
    elif any(".conv_exp." in k for k in state):  # cspnet, before resnetv2's stages. test
        state = {_csp_key(k, spec): v for k, v in state.items()}
    elif any(".conv1_1x1." in k for k in state):  # before resnetv2's stages./stem. test
        state = {_byob_key(k, spec): v for k, v in state.items()}
    elif any(k.startswith("stages.") and k.endswith(".gain") for k in state):  # NF nets
        state = {_nf_key(k, spec): v for k, v in state.items()}
    elif any(k.startswith(("stages.", "stem.")) for k in state):
        state = {_v2_key(k, spec): v for k, v in state.items()}
    elif any(k.startswith("mixed_5b.") for k in state):
        state = {_inception_key(k, spec): v for k, v in state.items()}
    elif any(k.startswith("layer0.") for k in state):
        state = _legacy_senet(state)
    elif any(k.startswith("body.layer1.") for k in state):
        state = {_tresnet_key(k): v for k, v in state.items()}
    out = {}
    last = {f"layer{i + 1}": p.depth - 1 for i, p in enumerate(spec.stages)}
    sknet = any(getattr(p.block, "sk", None) is not None for p in spec.stages)
    for key, value in state.items():
        key = re.sub(r"^head\.fc\.", "fc.", key)  # timm's classifier head, in every layout that has one
        key = re.sub(r"^(layer\d+\.\d+)\.(convs|bns)\.", r"\1.conv2.\2.", key)
        if sknet:  # conv-norm-act units (not ResNeSt's conv2.conv, which keeps its name)
            key = re.sub(r"^(layer\d+\.\d+)\." + CONV_NORM_ACT_UNIT, r"\1.\3\2.", key)
        m = re.match(r"^(layer\d+)\.(\d+)\.bn(\d+)\.(.*)$", key)
        if spec.order == "iresnet" and m and int(m.group(2)) == last.get(m.group(1)) \
                and int(m.group(3)) == spec.stages[int(m.group(1)[5:]) - 1].block.n_units:
            key = f"{m.group(1)}.{m.group(2)}.bn_out.{m.group(4)}"
        if key == "fc.weight" and value.ndim == 4 and value.shape[2:] == (1, 1):  # timm v2's 1x1 conv
            value = value.flatten(1)
        out[key] = value
    return out
