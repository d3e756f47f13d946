"""The registry: names, patterns, inheritance, user spec files and dicts, the installed wheel."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import resfam

ISSUE_TABLE = """resnet18 resnet34 resnet50 resnet101 resnet152 resnet20 resnet32 resnet44 resnet56
resnet110 resnet1202 plain18 plain34 plain20 plain56 resnetv2_50 resnetv2_101 resnetv2_152
preact_resnet164 preact_resnet1001 wide_resnet50_2 wide_resnet101_2 wrn_16_8 wrn_28_10 wrn_40_4
resnext50_32x4d resnext101_32x4d resnext101_32x8d resnext101_64x4d res2net50_26w_4s
res2net50_26w_6s res2net50_26w_8s res2net50_48w_2s res2net50_14w_8s res2net101_26w_4s res2next50
iresnet50 iresnet101 iresnet152 iresnet200 highway20 highway56 highway_resnet50""".split()


def test_every_variant_of_the_table_is_listed():
    names = resfam.list_models()
    assert names == sorted(names)
    assert set(ISSUE_TABLE) <= set(names)
    assert len(resfam.list_models(family="hybrid")) >= 2


def test_patterns_and_families():
    # a hybrid belongs to its parents' families too (its spec's also_in)
    assert resfam.list_models("res2net*", family="res2net") == sorted(
        [n for n in ISSUE_TABLE if n.startswith("res2net")] + ["res2net101d", "res2net50_iresnet",
                                                               "res2net50d"])
    assert resfam.list_models(["iresnet5*", "resnet1?"]) == ["iresnet50", "resnet18"]
    assert resfam.list_models(family="iresnet") == ["iresnet101", "iresnet152", "iresnet200",
                                                    "iresnet50", "res2net50_iresnet", "se_iresnet50"]
    assert resfam.list_models(family="highway") == ["highway20", "highway56", "highway_resnet50",
                                                    "highway_resnext50_32x4d"]
    assert "highway_resnext50_32x4d" in resfam.list_models(family="hybrid")
    assert resfam.get_spec("highway_resnext50_32x4d").family == "hybrid"  # its row's colour
    assert "highway" in resfam.list_families()


def test_get_spec_resolves_inheritance():
    spec = resfam.get_spec("resnext101_32x4d")  # resnext101 <- resnet101 <- resnet50
    assert spec.family == "resnext" and spec.name == "resnext101_32x4d"
    assert spec.stages[2].depth == 23
    assert spec.stages[0].block.groups == 32 and spec.stages[0].block.base_width == 4
    assert "extends" not in spec.raw
    # a block whose type changes replaces the parent's: no 'groups' leaks from bottleneck to res2
    hybrid = resfam.get_spec("res2net50_iresnet")
    assert hybrid.stages[0].block.type == "res2" and hybrid.order == "iresnet"
    assert hybrid.stages[0].shortcut.type == "maxpool_conv1x1"


@pytest.mark.parametrize("hybrid,base", [("se_res2net50_26w_4s", "res2net50_26w_4s"),
                                         ("se_res2next50", "res2next50"), ("se_iresnet50", "iresnet50")])
def test_se_hybrids_add_exactly_one_se_module_per_block(hybrid, base):
    """The seeds' Res2Net + SE and SE-iResNet hybrids: the base network plus, on every block of
    output width C, Hu et al. 2018's excitation W1 (C -> C/16, rounded to 8) and W2 (back to C),
    each with a bias, and nothing else."""
    def n(model):
        return sum(p.numel() for p in model.parameters())

    spec = resfam.get_spec(hybrid)
    extra = 0
    for plan in spec.stages:
        c = plan.width
        r = max(8, int(c / 16 + 4) // 8 * 8)
        extra += plan.depth * (c * r + r + r * c + c)
    with torch.device("meta"):
        assert n(resfam.build(hybrid)) - n(resfam.build(base)) == extra


def test_build_from_a_user_file_extending_a_bundled_spec(tmp_path):
    path = tmp_path / "my_hybrid.yaml"
    path.write_text(textwrap.dedent("""
        name: my_hybrid
        extends: res2net50_26w_4s
        family: hybrid
        shortcut: {type: avgpool_conv1x1}
        stages: {depth: [2, 2, 2, 2]}
        block: {scale: [4, 4, 6, 8]}
    """))
    model = resfam.build(str(path), num_classes=5)
    assert model.spec.name == "my_hybrid"
    assert [len(model.layer2[0].conv2.convs), len(model.layer4[0].conv2.convs)] == [3, 7]
    assert isinstance(model.layer2[0].downsample[0], torch.nn.AvgPool2d)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 5)


def test_multi_variant_user_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("family: mine\nvariants:\n  small: {extends: resnet18, stages: {depth: [1, 1, 1, 1]}}\n"
                    "  smaller: {extends: small, stages: {width: [32, 64, 128, 256]}}\n")
    model = resfam.build(f"{path}:smaller")
    assert model.spec.family == "mine" and model.num_features == 256
    assert len(model.layer1) == 1


def test_build_from_a_dict():
    spec = {"name": "tiny", "family": "custom", "stem": {"type": "cifar", "width": 8},
            "stages": {"depth": [1, 1], "width": [8, 16], "stride": [1, 2]},
            "block": {"type": "basic"}, "shortcut": {"type": "zero_pad"}, "head": {"num_classes": 3}}
    assert resfam.build(spec)(torch.randn(2, 3, 16, 16)).shape == (2, 3)


def test_build_arguments():
    model = resfam.build("resnet50", num_classes=10, in_chans=1, drop_path_rate=0.1, zero_init_last=True)
    assert model.conv1.in_channels == 1 and model.fc.out_features == 10
    assert model.layer4[-1].drop_path.p == pytest.approx(0.1)
    assert torch.all(model.layer1[0].bn3.weight == 0)
    assert model(torch.randn(2, 1, 64, 64)).shape == (2, 10)
    v2 = resfam.build("resnetv2_50", zero_init_last=True)  # no norm after the last conv: zero it
    assert torch.all(v2.layer1[0].conv3.weight == 0)


def test_determinism():
    torch.manual_seed(0)
    a = resfam.build("res2next50").state_dict()
    torch.manual_seed(0)
    b = resfam.build("res2next50").state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_installed_wheel_finds_its_specs(tmp_path):
    """`pip install .` (not editable): run from another folder, the bundled specs are found."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(target), root], check=True, timeout=600)
    code = "import resfam, pathlib; print(resfam.__file__); print(len(resfam.list_models())); " \
           "print(resfam.spec.registry.SPECS_DIR)"
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    assert out[0].startswith(str(target))
    assert int(out[1]) == len(resfam.list_models())
    assert out[2] == str(target / "resfam" / "specs")


@pytest.mark.parametrize("name, hint", [
    ("resnet50.a1_in1k", "a pretrained tag is not part of the name: build('resnet50', pretrained='timm:a1_in1k')"),
    ("timm:resnet50", "resfam's own name is 'resnet50' (the 'timm:' prefix names timm's model"),
    ("tv:resnet50", "(the 'tv:' prefix names torchvision's model"),
    ("ResNet50", "did you mean 'resnet50'? (names are lower case, without spaces)"),
    ("seresnet50 ", "did you mean 'seresnet50'?"),
])
def test_a_near_miss_name_says_which_registered_name_it_means(name, hint):
    with pytest.raises(resfam.UnknownModelError) as e:
        resfam.build(name)
    assert hint in str(e.value)


def test_names_that_continue_the_word_come_first_in_suggestions():
    with pytest.raises(resfam.UnknownModelError, match=r"did you mean 'res2net50d', 'res2net50_26w_4s'"):
        resfam.get_spec("res2net50")
