"""The analytic counter: parameters, MACs, other ops and activations from a resolved spec's shapes
alone, with no module built and nothing traced (pycls's ``complexity()`` is the precedent,
Radosavovic et al. 2020).

Each primitive contributes a function that walks its layers as :mod:`resfam.network` assembles
them and adds to a :class:`Tally` what fvcore counts for them under
:data:`resfam.comparison.counting.FVCORE_OTHER_HANDLES` (one MAC per multiply-accumulate of a conv
or linear layer; the element-wise ops and pools by their fvcore formulas; activations = conv and
linear outputs, fvcore's ``ActivationCountAnalysis``). The ops fvcore cannot count are tallied as
``unsupported`` occurrences, as fvcore reports them. tests/test_analytic.py holds every bundled
variant to fvcore's counts and to the built model's parameter count, exactly.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from ..primitives.attention import eca_kernel_size, se_reduced
from ..primitives.inception import Layer
from ..primitives.blocks.base import BlockParams
from ..primitives.layers import ACTS, reduced_channels
from ..primitives.orders import Placement, placement
from ..primitives.shortcuts import merges
from ..primitives.stems import PRESETS, StemParams
from ..spec.build_args import check_build_args
from .counting import Counts


@dataclass
class Tally:
    """Per image: parameters, conv + linear MACs, other ops by fvcore op name, activations."""

    params: int = 0
    macs: int = 0
    acts: int = 0
    other: Counter = field(default_factory=Counter)
    unsupported: Counter = field(default_factory=Counter)
    once: Counter = field(default_factory=Counter)  # the part of ``other`` done once per forward
    conv_bias: bool = False     # the spec's conv: every conv through layers.conv has a bias,
    scaled_std: bool = False    # and is a scaled weight-standardised one (its gain * scale)
    act_gamma: bool = False     # the network's activations are times their gamma

    def op(self, name: str, count: int, per_forward: bool = False) -> None:
        """``count`` of fvcore's op ``name`` per image, or once per forward (``per_forward``:
        work on weights, not on the batch)."""
        self.other[name] += count
        if per_forward:
            self.once[name] += count

    def skip(self, *names: str) -> None:
        for name in names:
            self.unsupported[f"aten::{name}"] += 1


@dataclass(frozen=True)
class Shape:
    c: int
    h: int
    w: int

    @property
    def numel(self) -> int:
        return self.c * self.h * self.w

    def at(self, c: int) -> "Shape":
        return Shape(c, self.h, self.w)


def _out(size: int, k: int, s: int, p: int, d: int = 1, ceil: bool = False) -> int:
    """Output length of a conv / pool window (PyTorch's formula, ceil mode included)."""
    span = size + 2 * p - d * (k - 1) - 1
    n = (-(-span // s) if ceil else span // s) + 1
    if ceil and (n - 1) * s >= size + p:  # the last window must start inside the input
        n -= 1
    return n


# --- layers -----------------------------------------------------------------------------------

def conv(t: Tally, x: Shape, out: int, k: int | tuple[int, int], stride: int = 1,
         dilation: int = 1, groups: int = 1, bias: bool = False,
         padding: int | tuple[int, int] | None = None, plain: bool = False) -> Shape:
    """A conv (``k``: a side, or (height, width)); ``padding`` None: 'same'
    (resfam.primitives.layers.conv, styled by the spec's ``conv`` unless ``plain``: an nn.Conv2d
    the attention modules build themselves)."""
    kh, kw = (k, k) if isinstance(k, int) else k
    ph, pw = (padding, padding) if isinstance(padding, int) else padding or (None, None)
    ph = dilation * (kh - 1) // 2 if ph is None else ph
    pw = dilation * (kw - 1) // 2 if pw is None else pw
    y = Shape(out, _out(x.h, kh, stride, ph, dilation), _out(x.w, kw, stride, pw, dilation))
    weights = out * (x.c // groups) * kh * kw
    if not plain:
        bias = bias or t.conv_bias
        if t.scaled_std:  # layers.ScaledStdConv2d: a gain per output channel, times the scale
            t.params += out
            t.op("mul", out, per_forward=True)
    t.params += weights + (out if bias else 0)
    t.macs += weights * y.h * y.w
    t.acts += y.numel
    return y


def act(t: Tally, kind: str, x: Shape, plain: bool = False) -> None:
    """An activation; times its gamma under the spec's ``conv.act_gamma`` unless ``plain`` (an
    attention module's own)."""
    if kind != "identity":
        t.op(ACTS[kind].op, x.numel)
        if t.act_gamma and not plain:
            t.op("mul", x.numel)


def norm(t: Tally, kind: str, x: Shape) -> None:
    """resfam.primitives.norms: BatchNorm folds into the conv at inference (counted 0, as
    fvcore's handle)."""
    c, n = x.c, x.numel
    if kind in ("bn", "syncbn"):
        t.params += 2 * c
    elif kind == "gn":
        t.params += 2 * c
        t.op("group_norm", 5 * n)           # fvcore's norm_flop_counter, with affine
    elif kind == "frozen_bn":                # torchvision: x * scale + bias, from buffers
        t.op("add", c + n)
        t.op("mul", 2 * c + n)
        t.op("sub", c)
        t.skip("rsqrt")
    elif kind == "evonorm_s0":
        t.params += 3 * c
        groups = math.gcd(32, c)
        t.op("mul", 3 * n)
        t.op("sigmoid", n)
        t.op("add", n + groups)
        t.skip("var", "sqrt", "div")
    elif kind == "frn":
        t.params += 3 * c
        t.op("mean", n)
        t.op("add", c + n)
        t.op("mul", 2 * n)
        t.skip("square", "rsqrt", "maximum")


def pool(t: Tally, kind: str, x: Shape, k: int, stride: int, padding: int = 0,
         ceil: bool = False) -> Shape:
    y = Shape(x.c, _out(x.h, k, stride, padding, ceil=ceil), _out(x.w, k, stride, padding, ceil=ceil))
    t.op(f"{kind}_pool2d", y.numel * k * k)
    return y


def layer(t: Tally, p: Layer, x: Shape, norm_kind: str, act_kind: str) -> Shape:
    """resfam.primitives.inception: a conv-norm-act or pool op, or a concat of branches (the
    concatenation moves data: 0)."""
    outs = []
    for branch in p.ops():
        y = x
        for op in branch:
            if op.pool is not None:
                kh, kw = op.kernel
                h, w = op.out_size(y.h, y.w)
                y = Shape(y.c, h, w)
                t.op(f"{op.pool}_pool2d", y.numel * kh * kw)
            else:
                y = conv(t, y, op.conv, op.kernel, op.s, padding=op.padding)
                norm(t, norm_kind, y)
                act(t, act_kind, y)
        outs.append(y)
    return Shape(sum(y.c for y in outs), outs[0].h, outs[0].w)


def blur(t: Tally, x: Shape, stride: int) -> Shape:
    """resfam.primitives.antialias.BlurPool2d: reflect padding (no count), a depthwise 3x3 (a
    conv to fvcore)."""
    y = conv(t, x, x.c, 3, stride, groups=x.c, padding=1, plain=True)
    t.params -= 9 * x.c  # the filter is a buffer
    return y


def antialias(t: Tally, kind: str, x: Shape, stride: int) -> Shape:
    if kind == "avg":
        return pool(t, "avg", x, 2, stride) if stride > 1 else x
    return blur(t, x, stride)


# --- attention slot, selective kernel, split attention -----------------------------------------

def attention(t: Tally, p, x: Shape, in_ch: int, norm_kind: str = "bn") -> None:
    """resfam.primitives.attention: SE (Hu et al. 2018, Eq. 2-4), ECA (Wang et al. 2020,
    Eq. 12), GC or BAT, on ``x`` in a block whose input has ``in_ch`` channels."""
    if p.type == "none":
        return
    if p.type == "bat":  # BAT (Chi et al. 2020, Eq. 3-6): f, T = P v Q, g, plus the input
        def unit(s: Shape, out: int) -> Shape:  # a plain 1x1, its norm and activation
            y = conv(t, s, out, 1, plain=True)
            norm(t, norm_kind, y)
            act(t, p.act, y, plain=True)
            return y

        b, g = p.block_size, p.groups
        z = unit(x, reduced_channels(x.c, p.rd_ratio, p.rd_divisor))
        unit(z, g)
        for _ in range(2):  # P from the row maxima, Q from the column maxima
            t.skip("adaptive_max_pool2d", "sum", "div")
            weights = b * b * g * g * b             # a (b x 1) conv to b*b per group, biased
            t.params += weights + b * b * g
            t.macs += weights
            t.acts += b * b * g
            t.op("sigmoid", b * b * g)
            t.macs += z.numel * b                    # each output mixes b rows (then columns)
            t.acts += z.numel
        unit(z, z.c)
        unit(z, x.c)
        t.skip("feature_dropout")
        t.op("add", x.numel)
        return
    if p.type == "gc":  # GCNet (Cao et al. 2019, Eq. 4): attention pool, transform, add
        conv(t, x, 1, 1, bias=True, plain=True)     # W_k: one logit per position
        t.skip("softmax")
        t.macs += x.numel                            # the weighted sum over positions (a bmm)
        t.acts += x.c
        rd = reduced_channels(x.c, p.rd_ratio, p.rd_divisor)
        conv(t, Shape(x.c, 1, 1), rd, 1, bias=True, plain=True)
        t.params += 2 * rd
        t.op("layer_norm", 5 * rd)                   # fvcore's norm count, with affine
        act(t, p.act, Shape(rd, 1, 1), plain=True)
        conv(t, Shape(rd, 1, 1), x.c, 1, bias=True, plain=True)
        t.op("add", x.numel)
        return
    t.op("mean", x.numel)
    if p.type == "se":
        rd = se_reduced(p, x.c, in_ch)
        conv(t, Shape(x.c, 1, 1), rd, 1, bias=True, plain=True)
        act(t, p.act, Shape(rd, 1, 1), plain=True)
        conv(t, Shape(rd, 1, 1), x.c, 1, bias=True, plain=True)
    else:
        k = p.kernel_size or eca_kernel_size(x.c)
        t.params += k
        t.macs += k * x.c
        t.acts += x.c
    t.op("sigmoid", x.c)
    t.op("mul", x.numel)


def selective_kernel(t: Tally, p, x: Shape, out: int, stride: int, dilation: int, groups: int,
                     norm_kind: str, act_kind: str) -> Shape:
    """resfam.primitives.selective_kernel (Li et al. 2019, Eq. 1-6)."""
    path_in = x.c // p.paths if p.split_input else x.c
    for k in range(p.paths):
        y = conv(t, x.at(path_in), out, 3, stride, dilation * (k + 1), min(out, groups))
        norm(t, norm_kind, y)
        act(t, act_kind, y)
    rd = reduced_channels(out, p.rd_ratio, p.rd_divisor)
    t.op("add", (p.paths - 1) * y.numel)  # U = sum of the paths
    t.op("mean", y.numel)
    z = conv(t, Shape(out, 1, 1), rd, 1, plain=True)
    norm(t, norm_kind, z)
    act(t, act_kind, z, plain=True)
    conv(t, z, out * p.paths, 1, plain=True)
    t.skip("softmax")
    t.op("mul", p.paths * y.numel)
    t.op("add", (p.paths - 1) * y.numel)  # V = the weighted paths, summed
    return y


def split_attention(t: Tally, p, x: Shape, out: int, stride: int, dilation: int, groups: int,
                    norm_kind: str, act_kind: str) -> Shape:
    """resfam.primitives.split_attention (Zhang et al. 2020, Eq. 1-3)."""
    u = conv(t, x, out * p.radix, 3, stride, dilation, groups * p.radix)
    norm(t, norm_kind, u)
    act(t, act_kind, u)
    rd = reduced_channels(x.c * p.radix, p.rd_ratio, p.rd_divisor, p.min_width)
    t.op("mean", u.numel)  # pooled first, then the splits summed (a pooled-size sum)
    if p.radix > 1:
        t.skip("sum")
    a = conv(t, Shape(out, 1, 1), rd, 1, groups=groups, bias=True, plain=True)
    norm(t, norm_kind, a)
    act(t, act_kind, a, plain=True)
    conv(t, a, out * p.radix, 1, groups=groups, bias=True, plain=True)
    if p.radix == 1:
        t.op("sigmoid", out)
    else:
        t.skip("softmax")
    t.op("mul", u.numel)
    t.op("add", (p.radix - 1) * out * u.h * u.w)  # the weighted splits, summed
    return u.at(out)


# --- the residual branch: each block type's units, as resfam.primitives.blocks builds them ----

@dataclass
class BlockCtx:
    t: Tally
    norm: str
    act: str
    placement: Placement
    act_last: bool
    dilation: int
    first_dilation: int


def _strided(ctx: BlockCtx, bp, x: Shape, out: int, stride: int, groups: int = 1):
    """resfam.primitives.blocks.base.strided_conv: (output, normed, anti-aliasing step or None)."""
    if getattr(bp, "sk", None) is not None:
        return selective_kernel(ctx.t, bp.sk, x, out, stride, ctx.first_dilation, groups,
                                ctx.norm, ctx.act), True, None
    aa = getattr(bp, "aa", "none")
    if aa == "none" or not (stride == 2 or ctx.first_dilation != ctx.dilation):
        return conv(ctx.t, x, out, 3, stride, ctx.first_dilation, groups), False, None
    y = conv(ctx.t, x, out, 3, 1, ctx.first_dilation, groups)
    return y, False, lambda s: antialias(ctx.t, aa, s, stride)


def _units(ctx: BlockCtx, bp: BlockParams, x: Shape, out: int, stride: int, attn) -> Shape:
    """Run the branch's units (each: its module, norm, act, then any anti-aliasing filter, and
    after the second the attention slot where ``attn.after`` is 3x3)."""
    t, in_ch = ctx.t, x.c
    steps = []  # (callable on a Shape -> (Shape, normed, aa))
    if bp.type == "basic":
        steps = [lambda s: _strided(ctx, bp, s, out, stride),
                 lambda s: (conv(t, s, out, bp.kernel2, 1, ctx.dilation), False, None)]
    elif bp.type == "bottleneck":
        first, mid = bp.inner_widths(out)
        s1, s3 = (stride, 1) if bp.stride_on == "1x1" else (1, stride)
        avd = bp.avd != "none" and s3 > 1
        avd_stride, s3 = (s3, 1) if avd else (1, s3)
        avd_pool = (lambda s: pool(t, "avg", s, 3, avd_stride, 1)) if avd else None

        def middle(s):
            if bp.splat is not None:
                return split_attention(t, bp.splat, s, mid, s3, ctx.first_dilation, bp.groups,
                                       ctx.norm, ctx.act), True, (avd_pool if bp.avd == "last" else None)
            y, normed, aa = _strided(ctx, bp, s, mid, s3, bp.cardinality(out))
            return y, normed, (avd_pool if avd and bp.avd == "last" else aa)

        extra = [lambda s: (conv(t, s, mid, 3, 1, ctx.dilation, bp.cardinality(out)), False, None)]
        steps = [lambda s: (conv(t, s, first, 1, s1), False, avd_pool if bp.avd == "first" else None),
                 middle, *(extra if bp.extra_3x3 else []),
                 lambda s: (conv(t, s, out, 1), False, None)]
    elif bp.type == "res2":
        width = bp.split_width(out)
        stage, pooled = bp.is_stage(x.c, out, stride), bp.pools_last_split(x.c, out, stride)

        def res2(s):
            for i in range(bp.scale - 1):
                if i > 0 and not stage:
                    t.op("add", width * s.h * s.w)
                y = conv(t, s.at(width), width, 3, stride, ctx.first_dilation, bp.groups)
                norm(t, ctx.norm, y)
                act(t, ctx.act, y)
            if pooled:
                pool(t, "avg", s.at(width), 3, stride, 1)
            return y.at(width * bp.scale), True, None

        steps = [lambda s: (conv(t, s, width * bp.scale, 1), False, None), res2,
                 lambda s: (conv(t, s, out, 1), False, None)]
    elif bp.type == "inception":  # the branches' own norms and acts; a biased 1x1, no norm
        concat = Layer(concat=bp.branches)
        steps = [lambda s: (layer(t, concat, s, ctx.norm, ctx.act), True, None),
                 lambda s: (conv(t, s, out, 1, bias=True), True, None)]
    else:
        raise NotImplementedError(f"the analytic counter does not know block type {bp.type!r}")
    for i, step in enumerate(steps, start=1):
        inner = i < len(steps)
        x, normed, aa = step(x)
        if not normed and (inner or ctx.placement.last_norm):
            norm(t, ctx.norm, x)
        if not normed and (inner or (ctx.act_last and ctx.placement.last_norm)):
            act(t, ctx.act, x)
        if aa is not None:
            x = aa(x)
        if i == 2 and attn.after == "3x3":
            attention(t, attn, x, in_ch, ctx.norm)
            if attn.type != "none" and attn.gain != 1.0:
                t.op("mul", x.numel)
    return x


def shortcut(t: Tally, p, x: Shape, out: int, stride: int, dilation: int, first_dilation: int,
             norm_kind: str) -> None:
    """resfam.primitives.shortcuts.build_shortcut."""
    if p.type in ("none", "identity", "zero_pad") or not (stride > 1 or x.c != out):
        return  # the identity, or slicing and zero padding (data movement, counted 0)
    conv_stride = stride
    if p.type == "avgpool_conv1x1":
        if stride > 1:
            x = pool(t, "avg", x, 2, stride, ceil=True)
        elif dilation > 1:
            x = pool(t, "avg", Shape(x.c, x.h + 1, x.w + 1), 2, 1)
        conv_stride = 1
    elif p.type == "maxpool_conv1x1":
        if stride > 1:
            x = pool(t, "max", x, 3, stride, 1)
            if x.c == out:
                return
        conv_stride = 1
    if p.type == "conv3x3" and (stride > 1 or dilation > 1):
        y = conv(t, x, out, 3, conv_stride, first_dilation)
    else:
        y = conv(t, x, out, 1, conv_stride, padding=0)
    if p.norm:
        norm(t, norm_kind, y)


def block(t: Tally, plan, bp: BlockParams, m, x: Shape, stride: int, dilation: int,
          first_dilation: int, where: Placement, index: int = 0) -> Shape:
    """resfam.primitives.blocks.residual.ResidualBlock (block keys ``bp``), in eval mode (dropout
    and drop-path count 0)."""
    out = plan.block_width
    if where.pre_norm:
        norm(t, m.norm, x)
        act(t, m.act, x)
        if plan.merge.beta != "none":  # times 1 / beta_l (merges.expected_stds)
            t.op("mul", x.numel)
    elif where.pre_act:
        act(t, m.act, x)
    ctx = BlockCtx(t, m.norm, m.act, where, bp.act_last, dilation, first_dilation)
    y = _units(ctx, bp, x, out, stride, plan.attn)
    if plan.attn.after == "branch":
        attention(t, plan.attn, y, x.c, ctx.norm)
        if plan.attn.type != "none" and plan.attn.gain != 1.0:
            t.op("mul", y.numel)
    merge = plan.merge.block(index, plan.depth).at(merges(plan.shortcut, x.c, out, stride))
    if merge.type != "none":
        shortcut(t, plan.shortcut, x, out, stride, dilation, first_dilation, m.norm)
        if merge.type == "gate":  # merges.HighwayGate: T(x), then the two products
            conv(t, x, out, plan.merge.kernel_size, stride, bias=True)
            for op in ("sigmoid", "mul", "rsub", "mul", "add"):
                t.op(op, y.numel)
        else:
            if merge.skipinit:
                t.params += 1
                t.op("mul", y.numel)
            if merge.alpha != 1.0:
                t.op("mul", y.numel)
            t.op("add", y.numel)
    if where.merge_norm:
        norm(t, m.norm, y)
    if where.merge_act and merge.act:
        act(t, merge.act_kind(m.act), y)
    return y


def stem(t: Tally, p: StemParams, x: Shape, norm_kind: str, act_kind: str) -> Shape:
    """resfam.primitives.stems.build_stem."""
    if p.layers is not None:
        for each in p.layers:
            x = layer(t, each, x, norm_kind, p.act or act_kind)
        return x
    preset = PRESETS[p.type]
    act_kind = p.act or act_kind
    x = Shape(x.c * preset.s2d ** 2, x.h // preset.s2d, x.w // preset.s2d)  # moves data: 0 ops
    if preset.deep:
        for k, w in enumerate(p.deep_widths):
            x = conv(t, x, w, 3, 2 if k == 0 else 1)
            if k >= p.linear:
                norm(t, norm_kind, x)
                act(t, act_kind, x)
        x = conv(t, x, p.width, 3, preset.last_stride)
    else:
        x = conv(t, x, p.width, preset.kernel, preset.stride, padding=0 if preset.valid else None)
    if preset.norm:
        norm(t, norm_kind, x)
        act(t, act_kind, x)
    if preset.pool == "max":
        if p.aa == "avg":
            x = pool(t, "avg", x, 2, 2)
        elif p.aa == "blur":
            x = blur(t, pool(t, "max", x, 3, 1, 1), 2)
        elif p.caffe_pool:
            x = pool(t, "max", x, 3, 2, ceil=True)
        else:
            x = pool(t, "max", x, 3, 2, 1)
    elif preset.pool == "max_fixed":
        x = pool(t, "max", Shape(x.c, x.h + 2, x.w + 2), 3, 2)
    elif preset.pool == "max2":
        x = pool(t, "max", x, 2, 2)
    elif preset.pool == "avg2":
        x = pool(t, "avg", x, 2, 2)
    elif preset.pool == "conv":
        x = conv(t, x, p.width, 3, 2)
        norm(t, norm_kind, x)
        act(t, act_kind, x)
    return x


def attention_pool(t: Tally, x: Shape, heads: int, grid: int) -> None:
    """resfam.primitives.attention_pool (CLIP, Radford et al. 2021, Sec. 2.4): the mean token,
    the position embedding (resampled where the grid is not the native one), the mean token's
    query, every token's key and value, and the two products of one query with T tokens."""
    c, tokens = x.c, x.h * x.w + 1
    t.params += (grid * grid + 1) * c + 3 * (c * c + c)
    t.op("mean", x.numel)
    if (x.h, x.w) != (grid, grid):
        t.skip("_upsample_bicubic2d_aa")
    t.op("add", tokens * c)
    t.macs += c * c + 2 * tokens * c * c      # q (one token), k and v (every token)
    t.acts += c + 2 * tokens * c
    t.macs += 2 * tokens * c                  # q k^T and weights v, over the heads
    t.acts += heads * tokens + c
    t.op("mul", heads * tokens)
    t.skip("softmax")


def cross_open(t: Tally, plan, geo, x: Shape, m) -> Shape:
    """resfam.primitives.cross_stage.CrossStage up to its blocks: the down conv where the stage
    strides, the expanding 1x1; returns the half the blocks read (the split moves data: 0)."""
    p = plan.cross
    if plan.stride > 1:
        x = conv(t, x, x.c, 3, geo.stride, geo.first_dilation, groups=p.down_groups)
        norm(t, m.norm, x)
        act(t, m.act, x)
    x = conv(t, x, p.expanded(plan.width), 1)
    norm(t, m.norm, x)
    if not p.linear:
        act(t, m.act, x)
    return Shape(x.c // 2, x.h, x.w)


def cross_close(t: Tally, plan, x: Shape, m) -> Shape:
    """The rest of a cross stage: the blocks' 1x1 transition back to half the expanded width,
    the concatenation (0) and the 1x1 transition to the stage's width."""
    half = plan.cross.expanded(plan.width) // 2
    for x, width in ((x, half), (Shape(2 * half, x.h, x.w), plan.width)):
        y = conv(t, x, width, 1)
        norm(t, m.norm, y)
        act(t, m.act, y)
    return y


def tally(spec, img_size: int | None = None, output_stride: int = 32) -> Tally:
    """Everything :class:`resfam.network.ResFamNet` (default build arguments) computes for one
    image of side ``img_size`` (default: the spec's ``input_size``). A spec that build refuses
    for its depth (``max_blocks``) is refused here too, before the walk over its blocks."""
    check_build_args(spec, {"output_stride": output_stride})
    m = spec.model
    size = img_size or m.input_size
    t = Tally(conv_bias=m.conv.bias, scaled_std=m.conv.type == "scaled_std", act_gamma=m.conv.act_gamma)
    x = stem(t, m.stem, Shape(m.in_chans, size, size), m.norm, m.act)
    for plan, geo in zip(spec.stages, spec.geometry(output_stride)):
        if isinstance(plan.entry, Layer):
            x = layer(t, plan.entry, x, m.norm, m.act)
        elif plan.entry:
            x = stem(t, StemParams(type=plan.entry, width=plan.width), x, m.norm, m.act)
        if plan.cross.on:
            x = cross_open(t, plan, geo, x, m)
        stride, first_dilation = plan.first_block(geo)
        for j in range(plan.depth):
            s, first = (stride, first_dilation) if j == 0 else (1, geo.dilation)
            x = block(t, plan, plan.block.at(j), m, x, s, geo.dilation, first,
                      placement(m.order, j, plan.depth), j)
        if plan.cross.on:
            x = cross_close(t, plan, x, m)
    if m.head.norm:
        norm(t, m.norm, x)
    if m.head.norm or m.head.act:
        act(t, m.act, x)
    if m.head.conv:
        x = conv(t, x, m.head.conv, 1)
        norm(t, m.norm, x)
        act(t, m.act, x)
    features = x.c
    if m.head.pool == "avg":
        t.op("adaptive_avg_pool2d", x.numel)
    elif m.head.pool == "attention":
        attention_pool(t, x, m.head.heads, max(m.input_size // (size // x.h), 1) if x.h else 1)
    else:
        features = x.numel
    if m.head.mlp:  # norm on the pooled features, linear to the hidden width, act
        norm(t, m.norm, Shape(features, 1, 1))
        t.params += features * m.head.mlp + m.head.mlp
        t.macs += features * m.head.mlp
        t.acts += m.head.mlp
        act(t, m.act, Shape(m.head.mlp, 1, 1))
        features = m.head.mlp
    classes = m.head.num_classes
    if classes > 0:
        t.params += features * classes + classes
        t.macs += features * classes
        t.acts += classes
    return t


class AnalyticCounter:
    """Counts from the spec (``count_spec``); a built model is not needed."""

    name = "analytic"

    def count_spec(self, spec, img_size: int | None = None, batch: int = 1) -> tuple[Counts, int, int]:
        """(counts, parameters, activations) for ``batch`` images."""
        t = tally(spec, img_size)
        other = {k: v * batch - t.once[k] * (batch - 1) for k, v in t.other.items()}
        counts = Counts(t.macs * batch, sum(other.values()), {"conv+linear": t.macs * batch, **other},
                        dict(t.unsupported), self.name)
        return counts, t.params, t.acts * batch


