"""The analytic counter (resfam.comparison.analytic) against what the built network does: for every
bundled variant its parameters equal the model's, its MACs and other ops equal fvcore's by
operator (and the ops fvcore cannot count are the same ones), its activations equal the conv and
linear outputs counted at torch's dispatcher; then user specs it has never seen (hypothesis)."""
import warnings
from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import resfam
from resfam.comparison.analytic import tally
from resfam.comparison.counting import MAC_KEYS, MAC_PACKETS, FlopCounterModeCounter, FvcoreCounter


def _cheap_build(spec):
    """The network with uninitialised storage (counting needs shapes, not values)."""
    with torch.device("meta"):
        model = resfam.build(spec)
    return model.to_empty(device="cpu").eval()


def _side(spec) -> int:
    """A small input (96: every stride of an anti-aliased net divides it), the native one for
    the CIFAR nets and a flatten head, rounded up to the spec's ``input_multiple()``; odd sizes
    are the user specs' below."""
    side = spec.input_size if spec.model.head.pool == "flatten" or spec.input_size < 96 else 96
    return spec.fit_side(side)  # (bat attention: a multiple of its blocks, 256 px)


# a variant whose weights take more than this is counted on the meta device only: building BiT's
# 152x4 (936M parameters, 3.7 GB) for real got a worker OOM-killed on a loaded 2-core machine
REAL_BUILD_BYTES = 2 ** 29  # (512 MiB: also keeps the suite's time with the NFNets and CLIP's x16)
FCM_OPS = {"relu_": "relu", "silu_": "silu", "leaky_relu_": "leaky_relu", "add_": "add",
           "max_pool2d_with_indices": "max_pool2d", "mean": "adaptive_avg_pool2d"}  # FlopCounterMode's op names -> the counter's


def check_on_meta(spec, size, t):
    """Parameters, MACs, activations and every op FlopCounterMode counts, on the meta device
    (shapes, no storage); the ops it does not count (group and layer norm) are the known ones."""
    with torch.device("meta"):
        model = resfam.build(spec).eval()
    x = torch.empty(1, model.in_chans, size, size, device="meta")
    assert t.params == sum(p.numel() for p in model.parameters())
    counts = FlopCounterModeCounter().count(model, x)
    assert t.macs == counts.macs
    by_op, ours = Counter(), Counter()
    for op, n in counts.by_op.items():
        if op not in MAC_PACKETS:
            by_op[FCM_OPS.get(op, op)] += n
    for op, n in t.other.items():  # the same names on both sides (SE's mean is a pool to FCM)
        ours[FCM_OPS.get(op, op)] += n
    assert {k: ours.get(k, 0) for k in by_op} == dict(by_op)
    assert set(ours) - set(by_op) <= {"group_norm", "layer_norm"}
    assert t.acts == FlopCounterModeCounter().activations(model, x)


def check(spec, size):
    t = tally(spec, size)
    if t.params * 4 > REAL_BUILD_BYTES:
        return check_on_meta(spec, size, t)
    model = _cheap_build(spec)
    x = torch.randn(1, model.in_chans, size, size)
    assert t.params == sum(p.numel() for p in model.parameters())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fv = FvcoreCounter().count(model, x)
    by_op = {}
    for op, n in fv.by_op.items():  # relu_ and relu, add_ and add: one op to the counter
        by_op[op.rstrip("_")] = by_op.get(op.rstrip("_"), 0) + n
    macs = sum(by_op.pop(k, 0) for k in MAC_KEYS)  # conv, linear, GCNet's bmm
    assert (t.macs, dict(t.other)) == (macs, {k: v for k, v in by_op.items() if v})
    assert dict(t.unsupported) == fv.unsupported
    assert t.acts == FlopCounterModeCounter().activations(model, x)


def three_blocks_per_stage(name):
    """The variant with at most three blocks per stage: its reshaping first block and, after it,
    a middle and an end block (iResNet's three placements), so every primitive and placement the
    variant has is counted, while fvcore traces a fraction of the deep ones' graphs. Variants
    whose depth is generated (RegNet) or whose keys are per block (pruned widths) stay whole."""
    spec = resfam.get_spec(name)
    depth = [min(p.depth, 3) for p in spec.stages]
    if (spec.model.stages.regnet is not None or depth == [p.depth for p in spec.stages]
            or "widths" in spec.model.block):
        return spec
    return resfam.get_spec({"name": f"{name}_3", "extends": name, "stages": {"depth": depth}})


def distinct_networks() -> dict[str, list[str]]:
    """Every bundled variant at three blocks a stage, keyed by the first name of each distinct
    network (names, descriptions and papers' figures aside): at that depth ResNet-101 and -152
    are ResNet-50's network, counted once (about one variant in six is such a copy)."""
    groups: dict[tuple, list[str]] = {}
    for name in resfam.list_models():
        spec = three_blocks_per_stage(name)
        net = spec.model.model_dump(exclude={"name", "description", "reported", "reference",
                                             "family", "also_in", "extends"})
        groups.setdefault((repr(net), _side(spec)), []).append(name)
    return {names[0]: names for names in groups.values()}


DISTINCT = distinct_networks()


@pytest.mark.slow
@pytest.mark.parametrize("name", DISTINCT)
def test_every_bundled_variant(name):
    """``name``'s network, and every variant with the same one (``DISTINCT[name]``)."""
    spec = three_blocks_per_stage(name)
    check(spec, _side(spec))


def test_every_bundled_variant_is_counted_once():
    names = [n for group in DISTINCT.values() for n in group]
    assert sorted(names) == resfam.list_models()
    assert len(DISTINCT) < len(names)  # (the deep ones' shallow copies: ResNet-101 is ResNet-50's)
    assert {"resnet50", "resnet101", "resnet152"} <= next(set(g) for g in DISTINCT.values() if "resnet50" in g)
    assert not any({"resnet50", "resnet50d"} <= set(g) for g in DISTINCT.values())  # a deep stem differs


# whole networks, block for block: the deepest of each order and of the families whose blocks
# differ along a stage (the rest are the same blocks repeated, held above)
FULL_DEPTH = ["resnet110", "preact_resnet164", "iresnet101", "res2net101_26w_4s", "seresnext101_32x4d",
              "resnest101e", "resnetv2_101x1_bit", "nfnet_f1", "tresnet_l", "cspresnext50"]


@pytest.mark.slow
@pytest.mark.parametrize("name", FULL_DEPTH)
def test_whole_networks(name):
    spec = resfam.get_spec(name)
    assert three_blocks_per_stage(name) is not spec  # deeper than the test above counts it
    check(spec, _side(spec))


@pytest.mark.parametrize("name,size", [("resnet50", 224), ("res2net50_26w_4s", 224),
                                       ("resnest50d", 224), ("resnetblur50", 224)])
def test_native_inputs_and_the_fvcore_and_torch_activation_counts_agree(name, size):
    spec = resfam.get_spec(name)
    check(spec, size)
    model = _cheap_build(spec)
    x = torch.randn(1, 3, size, size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert FvcoreCounter().activations(model, x) == tally(spec, size).acts


def test_the_zoo_is_counted_without_building_or_running_anything():
    """What makes a whole-zoo count take a fraction of a second (benchmarks/counters.py times
    it): no module is constructed and no tensor operation runs."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Ops.count += 1
            return func(*args, **(kwargs or {}))

    specs = [resfam.get_spec(n) for n in resfam.list_models()]
    made = []
    init = torch.nn.Module.__init__

    def counting_init(self, *args, **kwargs):
        made.append(type(self).__name__)
        init(self, *args, **kwargs)

    torch.nn.Module.__init__ = counting_init
    try:
        with Ops():
            totals = [tally(spec).macs for spec in specs]
    finally:
        torch.nn.Module.__init__ = init
    assert made == [] and Ops.count == 0 and all(m > 0 for m in totals)


# user specs: the primitives recombined as no bundled variant does
blocks = st.one_of(
    st.fixed_dictionaries({"type": st.just("basic"), "aa": st.sampled_from(["none", "avg", "blur"]),
                           "kernel2": st.sampled_from([3, 1])}),
    st.fixed_dictionaries({"type": st.just("bottleneck"), "groups": st.sampled_from([1, 2, 4]),
                           "expansion": st.sampled_from([4, 1, 0.25]),
                           "stride_on": st.sampled_from(["3x3", "1x1"]),
                           "avd": st.sampled_from(["none", "first", "last"]),
                           "sk": st.one_of(st.none(), st.fixed_dictionaries({"split_input": st.booleans()})),
                           "splat": st.one_of(st.none(), st.fixed_dictionaries({"radix": st.integers(1, 2)}))}),
    st.fixed_dictionaries({"type": st.just("res2"), "scale": st.integers(2, 5),
                           "stype": st.sampled_from(["auto", "stage"]),
                           "stage_pool": st.sampled_from(["always", "strided"])}),
)


@st.composite
def user_specs(draw):
    n = draw(st.integers(1, 3))
    block = draw(blocks)
    if block["type"] == "bottleneck":
        block = {k: v for k, v in block.items() if v is not None}
        if "sk" in block and "splat" in block:
            del block["sk"]
        if block["stride_on"] == "1x1":
            block["avd"] = "none"
    special = block["type"] == "bottleneck" and (block["avd"] != "none" or "sk" in block or "splat" in block)
    order = draw(st.sampled_from(["post"] if special else ["post", "iresnet"] if block["type"] == "res2"
                                 else ["post", "pre", "iresnet"]))
    if block["type"] == "res2":
        block["base_width"] = 16
    attn = dict(draw(st.sampled_from([
        {"type": "none"}, {"type": "se"}, {"type": "eca"},
        {"type": "se", "after": "3x3", "rd_of": "input", "rd_ratio": 0.25},
        {"type": "eca", "after": "3x3"}, {"type": "se", "gain": 2.0},
        {"type": "se", "after": "3x3", "gain": 2.0}, {"type": "gc", "rd_ratio": 0.125, "rd_divisor": 1},
        {"type": "gc", "after": "3x3", "rd_ratio": 0.25},
        {"type": "bat", "after": "3x3", "block_size": 2, "rd_ratio": 0.25},
        {"type": "bat", "block_size": 1, "groups": 1}])))
    if block["type"] == "basic":  # no middle 3x3 to follow
        attn.pop("after", None)
    return {
        "name": "fuzzed", "family": "fuzz",
        "stem": {"type": draw(st.sampled_from(["conv7_maxpool", "deep_maxpool", "cifar", "deep_convpool"])),
                 "width": 16, "deep_width": 8},
        "stages": {"depth": draw(st.lists(st.integers(1, 3), min_size=n, max_size=n)),
                   "width": [64 * 2 ** i for i in range(n)],
                   "stride": [1] + draw(st.lists(st.sampled_from([1, 2]), min_size=n - 1, max_size=n - 1)),
                   "dilation": draw(st.lists(st.sampled_from([1, 2]), min_size=n, max_size=n))},
        "block": block,
        "shortcut": {"type": draw(st.sampled_from(["conv1x1", "conv3x3", "avgpool_conv1x1", "maxpool_conv1x1",
                                                   "drop"]))},
        "merge": {"type": draw(st.sampled_from(["add", "gate"])), "act": draw(st.booleans()),
                  **draw(st.sampled_from([{}, {"alpha": 0.2, "beta": "expected_std"}, {"alpha": 0.5},
                                          {"alpha": 0.2, "beta": "expected_std", "skipinit": True}]))},
        "conv": draw(st.sampled_from([{"type": "plain"}, {"type": "std"},
                                      {"type": "scaled_std", "bias": True}, {"type": "plain", "bias": True},
                                      {"type": "plain", "padding": "same"},
                                      {"type": "scaled_std", "bias": True, "padding": "same",
                                       "act_gamma": True, "gamma": 1.0}])),
        "attn": attn,
        "cross": draw(st.sampled_from([{"type": "none"}, {"type": "csp", "expand_ratio": 2.0, "linear": True},
                                       {"type": "csp", "block_ratio": 0.5, "down_groups": 2}])),
        "order": order,
        "norm": draw(st.sampled_from(["bn", "gn", "frn", "evonorm_s0", "none"])),
        "act": "relu",
        "head": {"num_classes": draw(st.integers(0, 20)), "norm": draw(st.booleans()),
                 "conv": draw(st.sampled_from([None, 24])), "mlp": draw(st.sampled_from([None, 16]))},
    }


@settings(max_examples=40, deadline=None)
@given(user_specs(), st.integers(17, 70))
def test_user_specs(raw, size):
    if raw["norm"] in ("frn", "evonorm_s0"):
        raw["act"] = "identity"
    try:
        spec = resfam.get_spec(raw)
    except resfam.SpecError:  # a combination the spec checks refuse: nothing to count
        return
    size = spec.fit_side(size)  # (bat attention tiles its maps: a multiple of its blocks)
    try:
        _cheap_build(spec)(torch.zeros(1, 3, size, size))
    except (RuntimeError, ValueError):  # too small an input for its strides; GroupNorm of one value
        return
    check(spec, size)


@pytest.mark.parametrize("name, low, high", [("resnet50", 0.5, 0.6), ("resnetv2_50x1_bit", 3.3, 3.5)])
def test_fvcore_total_exceeds_conv_plus_linear_by_what_the_docs_say(name, low, high):
    """"Equal to fvcore" means conv + linear (what GMACs are); fvcore's ``.total()`` adds batch
    norm, group norm and pooling, 0.5-3.4% more (README, docs/compare.md): BiT's weight
    standardisation traces as batch_norm."""
    from fvcore.nn import FlopCountAnalysis

    spec = resfam.get_spec(name)
    model = resfam.build(spec).eval()
    analysis = FlopCountAnalysis(model, torch.randn(1, 3, 224, 224))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    by_op = analysis.by_operator()
    conv_linear = by_op["conv"] + by_op["linear"]
    assert conv_linear == pytest.approx(tally(spec, 224).macs)
    assert low <= (analysis.total() / conv_linear - 1) * 100 <= high


# Inception's layers as data (resfam.primitives.inception): stems of listed ops, concat entries
# whose branches each end in the same strided op, inception blocks of size-keeping branches
KERNELS = st.sampled_from([1, 3, 5, [1, 3], [3, 1], [1, 5]])
keep_size = st.one_of(st.fixed_dictionaries({"conv": st.integers(2, 12), "k": KERNELS}),
                      st.fixed_dictionaries({"pool": st.sampled_from(["max", "avg"]), "k": st.just(3)}))


@st.composite
def strided_concat(draw):
    """Branches of size-keeping ops, each ending in a 3x3 stride-2 op with the same padding."""
    valid = draw(st.booleans())
    ends = st.one_of(st.fixed_dictionaries({"conv": st.integers(2, 12)}),
                     st.fixed_dictionaries({"pool": st.sampled_from(["max", "avg"])}))
    branches = []
    for _ in range(draw(st.integers(1, 3))):
        end = {**draw(ends), "k": 3, "s": 2, "valid": valid}
        branches.append(draw(st.lists(keep_size, max_size=2)) + [end])
    return {"concat": branches}


@st.composite
def inception_specs(draw):
    from resfam.primitives.inception import Layer

    stem = draw(st.lists(st.one_of(keep_size, strided_concat(),
                                   st.fixed_dictionaries({"conv": st.integers(4, 12), "k": st.just(3),
                                                          "s": st.just(2), "valid": st.booleans()})),
                         min_size=1, max_size=3))
    width = 3
    for layer in stem:
        width = Layer.model_validate(layer).out_width(width)
    stem_width = width
    n = draw(st.integers(1, 2))
    entries, widths, branches = [], [], []
    for i in range(n):
        entry = draw(st.one_of(st.none(), strided_concat())) if i else None
        if entry is not None:
            width = Layer.model_validate(entry).out_width(width)
        else:
            width = draw(st.sampled_from([width, 16]))  # 16: a projection shortcut where it differs
        entries.append(entry)
        widths.append(width)
        branches.append(draw(st.lists(st.lists(keep_size, min_size=1, max_size=2), min_size=1, max_size=3)))
    return {
        "name": "fuzzed_inception", "family": "fuzz",
        "stem": {"type": "layers", "width": stem_width, "layers": stem},
        "stages": {"depth": draw(st.lists(st.integers(1, 3), min_size=n, max_size=n)), "width": widths,
                   "stride": [1] * n, "entry": entries},
        "block": {"type": "inception", "branches": branches},
        "merge": {"alpha": draw(st.sampled_from([1.0, 0.2])),
                  "last": draw(st.sampled_from([None, {"alpha": 1.0, "act": False}]))},
        "norm": draw(st.sampled_from(["bn", "gn", "none"])),
        "norm_eps": draw(st.sampled_from([None, 0.001])),
        "head": {"num_classes": draw(st.integers(0, 20)), "conv": draw(st.sampled_from([None, 24]))},
    }


@settings(max_examples=30, deadline=None)
@given(inception_specs(), st.integers(9, 48))
def test_user_inception_specs(raw, size):
    """Any spec of Inception layers: its analytic counts equal the built model's and fvcore's
    (check()), at a side its unpadded layers fit."""
    raw = {k: v for k, v in raw.items() if v is not None}
    raw["merge"] = {k: v for k, v in raw["merge"].items() if v is not None}
    spec = resfam.get_spec(raw)  # every drawn spec is a valid one
    size = spec.fit_side(size)
    try:
        _cheap_build(spec)(torch.zeros(1, 3, size, size))
    except ValueError:  # GroupNorm of one value per group on a 1x1 map
        return
    check(spec, size)
