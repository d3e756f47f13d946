"""Bad input gives an error a person can act on, raised before any tensor is allocated."""
import textwrap

import pytest

import resfam
from resfam.network.model import ResFamNet


@pytest.fixture(autouse=True)
def no_allocation(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a network was allocated for a bad spec")

    monkeypatch.setattr(ResFamNet, "__init__", refuse)


def test_unknown_model_lists_close_matches():
    with pytest.raises(resfam.UnknownModelError) as e:
        resfam.build("resnet5")
    assert isinstance(e.value, KeyError)
    assert "'resnet50'" in str(e.value) and "unknown model 'resnet5'" in str(e.value)


def write(tmp_path, text, name="bad.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


BASE = """
    name: mynet
    family: custom
    stem: {type: conv7_maxpool, width: 64}
    stages: {depth: [2, 2], width: [256, 512], stride: [1, 2]}
    block: {type: bottleneck, groups: 1}
"""

IR = "extends: inception_resnet_v2\nname: mynet\n"

CASES = {
    "unknown key": ("extends: resnet50\nname: mynet\nblock: {groupz: 32}\n", "block.groupz", "groups"),
    "unknown top key": (BASE + "    depth: 3\n", "depth", "unknown key"),
    "wrong type": (BASE.replace("width: 64", "width: '64'"), "stem.width", "valid integer"),
    "unequal stage lists": (BASE.replace("width: [256, 512]", "width: [256, 512, 1024]"),
                            "stages.width", "stages.depth has 2"),
    "width not divisible by groups": (
        BASE.replace("width: [256, 512]", "width: [64, 128]").replace("groups: 1", "groups: 4, base_width: 2"),
        "block.groups", "inner width 2 is not divisible by groups=4"),
    "scale < 2": (BASE.replace("type: bottleneck, groups: 1", "type: res2, scale: 1"),
                  "block.scale", "scale >= 2"),
    "negative depth": (BASE.replace("depth: [2, 2]", "depth: [2, -1]"), "stages.depth[1]", ">= 1"),
    "per-stage list of wrong length": (BASE.replace("groups: 1", "groups: [1, 1, 1]"),
                                       "block.groups", "3 entries for 2 stages"),
    "per-stage value wrong": (BASE.replace("groups: 1", "groups: [1, 0]"), "block.groups[1]",
                              "greater than or equal to 1"),
    "unknown block type": (BASE.replace("type: bottleneck", "type: bottlenek"), "block.type",
                           "'bottleneck'"),
    "plain needs no merge": (BASE + "    shortcut: {type: none}\n", "merge.type", "merge: {type: none}"),
    "missing parent": ("extends: resnet5O\nname: mynet\n", "extends", "'resnet50'"),
    "act_last outside post order": (BASE.replace("groups: 1", "groups: 1, act_last: true") +
                                    "    order: pre\n", "block.act_last", "use order: post"),
    "selective kernel with anti-aliasing": (BASE.replace("groups: 1", "groups: 1, aa: avg, sk: {}"),
                                            "block.sk", "cannot take an anti-aliasing filter"),
    "selective kernel outside post order": (BASE.replace("groups: 1", "groups: 1, sk: {}") +
                                            "    order: pre\n", "order", "supported: post"),
    "selective kernel split": (BASE.replace("groups: 1", "groups: 1, sk: {paths: 3}"),
                               "block.sk.split_input", "does not split into 3 paths"),
    "split attention and selective kernel": (BASE.replace("groups: 1", "groups: 1, splat: {}, sk: {}"),
                                             "block.splat", "keep one of splat and sk"),
    "avd on a 1x1-strided block": (BASE.replace("groups: 1", "groups: 1, avd: last, stride_on: 1x1"),
                                   "block.avd", "use stride_on: 3x3"),
    "pruned widths per block": (BASE.replace("groups: 1", "groups: 1, widths: [[[10, 8], [12, 8]], [[20, 16]]]"),
                                "block.widths[1]", "has 1 pairs for a stage of 2 blocks"),
    "pruned widths not a pair": (BASE.replace("groups: 1", "groups: 1, widths: [[[10], [12, 8]], [[20, 16], [8, 8]]]"),
                                 "block.widths", "block 0: [10] is not a pair"),
    "stage dilation of zero": (BASE.replace("stride: [1, 2]", "stride: [1, 2], dilation: [1, 0]"),
                               "stages.dilation[1]", "greater than or equal to 1"),
    "entry per stage": (BASE.replace("stride: [1, 2]", "stride: [1, 2], entry: [lenet]"),
                        "stages.entry", "stages.depth has 2"),
    "attention after a 3x3 a basic block lacks": (
        BASE.replace("type: bottleneck, groups: 1", "type: basic") + "    attn: {type: se, after: 3x3}\n",
        "attn.after", "use after: branch"),
    "bat groups that do not divide its reduced width": (
        BASE + "    attn: {type: bat, after: 3x3, block_size: 4, groups: 3, rd_ratio: 0.25}\n",
        "attn.groups", "3 groups do not divide its reduced width 16"),
    "bat block of size 0": (BASE + "    attn: {type: bat, block_size: 0}\n", "attn.block_size",
                            "greater than or equal to 1"),
    "regnet rule beside listed stages": (
        BASE.replace("stride: [1, 2]}", "stride: [1, 2], regnet: {w0: 24, wa: 36, wm: 2.5, depth: 13}}"),
        "stages", "give either regnet or depth and width"),
    "regnet multiplier of 1": ("extends: regnetx_002\nname: mynet\nstages: {regnet: {wm: 1.0}}\n",
                               "stages.regnet.wm", "greater than 1"),
    "stages without depth": (BASE.replace("depth: [2, 2], ", ""), "stages", "stages needs depth"),
    "a merge activation of its own in order pre": (
        BASE + "    merge: {act: relu}\n    order: pre\n", "merge.act", "use order: post"),
    "an unknown merge activation": (BASE + "    merge: {act: leaky}\n", "merge.act", "leaky_relu"),
    "an unknown stem activation": (BASE.replace("width: 64}", "width: 64, act: lrelu}"), "stem.act",
                                   "leaky_relu"),
    "a cross stage whose expanded width does not halve": (
        BASE + "    cross: {type: csp, expand_ratio: 1.004}\n", "cross.expand_ratio", "two equal halves"),
    "a cross stage down conv whose groups do not divide": (
        BASE + "    cross: {type: csp, down_groups: 3}\n", "cross.down_groups", "do not split into 3"),
    "a cross stage key misspelt": (BASE + "    cross: {type: csp, expand: 2}\n", "cross.expand",
                                   "expand_ratio"),
    "an unknown cross stage type": (BASE + "    cross: {type: cps}\n", "cross.type", "csp"),
    "a stage with an entry that is also a cross stage": (
        BASE.replace("stride: [1, 2]}", "stride: [1, 2], entry: [null, lenet]}")
        + "    cross: {type: csp}\n", "cross.type", "not both"),
    # Inception's layers as data (resfam.primitives.inception)
    "a stem width its layers do not give": (IR + "stem: {width: 300}\n", "stem.width",
                                            "set stem.width: 320"),
    "an even kernel with 'same' padding": (
        IR + "block: {branches: [[{conv: 32, k: 2}], null, null]}\n",
        "block.branches[0][0][0]", "use odd sides, or valid: true"),
    "a block branch that strides": (
        IR + "block: {branches: [[{conv: 32, k: 3, s: 2}], null, null]}\n",
        "block.branches[0]", "a stage changes size in its entry"),
    "an entry whose width is not the stage's": (
        IR + "stages: {width: [320, 1000, 2080]}\n", "stages.entry[1]",
        "set stages.width[1] to 1088"),
    "a concat whose branches differ in size": (
        IR + "stages: {entry: [null, {concat: [{conv: 384, k: 3, s: 2, valid: true}, "
             "{conv: 704, k: 3, s: 2}]}, null]}\n", "stages.entry[1]",
        "give 'valid' to all or none"),
    "an op that is a conv and a pool": (IR + "stem: {layers: [{conv: 32, pool: max}]}\n",
                                        "stem.layers[0]", "either a conv (conv: width) or a pool"),
    "an op key misspelt": (IR + "stem: {layers: [{conv: 32, kernel: 3}]}\n",
                           "stem.layers[0].kernel", "accepted keys: conv, pool, k, s, valid, concat"),
    "a concat layer with a kernel of its own": (
        IR + "stages: {entry: [null, {concat: [{conv: 3}], k: 3}, null]}\n",
        "stages.entry[1]", "give conv / pool / k / s / valid inside them"),
    "an inception stage that strides its blocks": (
        IR + "stages: {stride: [1, 2, 1]}\n", "block.type", "a strided stages.entry"),
    "a last block merge on a gate": (
        BASE + "    merge: {type: gate, last: {act: false}}\n", "merge.last", "belong to an added merge"),
    "a preset's key on a stem of layers": (IR + "stem: {aa: blur}\n", "stem",
                                          "aa shape the presets"),
    "an entry preset misspelt": ("extends: mnist_resnet\nname: mynet\nstages: {entry: [null, lenett]}\n",
                                 "stages.entry[1]", "'lenet'"),
    "shortcut reading a pre-activation a post block lacks": (
        BASE + "    shortcut: {reads: preact}\n", "shortcut.reads", "use order: pre"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_spec_names_file_variant_and_key(tmp_path, case):
    text, key, fragment = CASES[case]
    path = write(tmp_path, text)
    with pytest.raises(resfam.SpecError) as e:
        resfam.build(str(path))
    msg = str(e.value)
    assert str(path) in msg and "variant 'mynet'" in msg and f"key '{key}'" in msg, msg
    assert fragment in msg, msg
    assert e.value.key == key and e.value.variant == "mynet" and e.value.file == str(path)


def test_extends_cycle(tmp_path):
    path = write(tmp_path, """
        variants:
          a: {extends: b}
          b: {extends: c}
          c: {extends: a}
    """)
    with pytest.raises(resfam.SpecError, match=r"'extends' cycle: a -> b -> c -> a") as e:
        resfam.build(f"{path}:a")
    assert e.value.key == "extends" and e.value.file == str(path)


def test_missing_file():
    with pytest.raises(resfam.SpecError, match="spec file not found"):
        resfam.build("no/such/spec.yaml")


def test_malformed_yaml_names_the_line(tmp_path):
    path = write(tmp_path, "name: x\nstages: {depth: [1, 2}\n")
    with pytest.raises(resfam.SpecError, match=r"malformed YAML at line 2") as e:
        resfam.build(str(path))
    assert e.value.file == str(path)


def test_yaml_is_loaded_safely(tmp_path):
    path = write(tmp_path, "name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(resfam.SpecError, match="malformed YAML"):
        resfam.build(str(path))


def test_multi_variant_file_needs_a_variant(tmp_path):
    path = write(tmp_path, "variants:\n  a: {extends: resnet18}\n  b: {extends: resnet34}\n")
    with pytest.raises(resfam.SpecError, match=r"name one as '.*:<variant>', one of: a, b"):
        resfam.build(str(path))


def test_unknown_build_argument():
    with pytest.raises(resfam.BuildArgumentError, match="did you mean 'num_classes'"):
        resfam.build("resnet18", num_clases=10)

